// The part of Go's text/template that `docker inspect -f` and `docker ps --format` users
// write: {{.A.B}}, {{$}}, {{json .X}}, {{index .M "k"}}, {{range}}, {{if}}/{{else}},
// {{with}}, pipelines (|), variables ($v := ...), {{- -}} trimming, comments, and the
// functions Docker adds (json, join, split, lower, upper, title, truncate, pad). Values
// print as Go prints them: [a b] for lists, map[k:v] for objects, <no value> for nothing.
// Parsed once, run against plain JSON values; errors are BerthError USAGE (exit 125).
import { BerthError } from '../common/errors';

type Value = unknown;
type Node =
  | { k: 'text'; s: string }
  | { k: 'out'; p: Pipe }
  | { k: 'if' | 'with'; p: Pipe; then: Node[]; else: Node[] }
  | { k: 'range'; p: Pipe; vars: string[]; body: Node[]; else: Node[] };
type Pipe = { decl: string[]; cmds: Arg[][] };
type Arg =
  | { k: 'field'; base: 'dot' | string; path: string[] } // .A.B, $.A, $v.A
  | { k: 'lit'; v: Value }
  | { k: 'fn'; name: string }
  | { k: 'sub'; p: Pipe; path: string[] };

const bad = (template: string, why: string) => new BerthError('USAGE', `template "${template.length > 200 ? `${template.slice(0, 200)}...` : template}": ${why}`, {
  hint: 'Go template syntax, as Docker\'s: {{.State.Pid}}, {{json .Config}}, {{range .Mounts}}{{.Source}} {{end}}',
});

/** Parses TEMPLATE; the result renders one value at a time. @throws BerthError USAGE */
export function compileTemplate(template: string): (data: Value) => string {
  const nodes = guarded(template, () => parse(template));
  return (data) => guarded(template, () => {
    const out: string[] = [];
    exec(template, nodes, data, new Map([['$', data]]), out);
    return out.join('');
  });
}

/** FN's RangeError (a string or list too long for JavaScript) as a template error. */
function guarded<T>(template: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RangeError) throw bad(template, err.message);
    throw err;
  }
}

// --- parsing ---

function parse(src: string): Node[] {
  // Split into text and actions, applying {{- and -}} to the neighbouring text.
  const parts: ({ text: string } | { action: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      parts.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (/^- /.test(src.slice(start, start + 2)) || src.slice(start, start + 2) === '-\t' || src.slice(start, start + 2) === '-\n') {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    const close = findClose(src, start);
    if (close < 0) throw bad(src, 'unclosed action: a "{{" without "}}"');
    let end = close;
    let trimAfter = false;
    if (/\s-$/.test(src.slice(start, close))) {
      end = close - 1;
      trimAfter = true;
    }
    parts.push({ text }, { action: src.slice(start, end).trim() });
    i = close + 2;
    if (trimAfter) while (i < src.length && /\s/.test(src[i])) i++;
  }
  let pos = 0;
  let depth = 0;
  const block = (stop: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (pos < parts.length) {
      const part = parts[pos++];
      if ('text' in part) {
        if (part.text) nodes.push({ k: 'text', s: part.text });
        continue;
      }
      const a = part.action;
      if (a.startsWith('/*')) {
        if (!a.endsWith('*/')) throw bad(src, 'unclosed comment');
        continue;
      }
      const word = /^(\w+)\b\s*(.*)$/s.exec(a);
      const kw = word?.[1] ?? '';
      if (kw === 'end' || kw === 'else') {
        if (!stop.includes(kw)) throw bad(src, `unexpected {{${kw}}}`);
        return { nodes, end: a };
      }
      if (kw === 'if' || kw === 'with' || kw === 'range') {
        if (++depth > MAX_DEPTH) throw bad(src, `more than ${MAX_DEPTH} nested if, with or range`);
        nodes.push(control(kw, pipe(src, word![2])));
        depth--;
        continue;
      }
      nodes.push({ k: 'out', p: pipe(src, a) });
    }
    if (stop.length) throw bad(src, 'missing {{end}}');
    return { nodes, end: '' };
  };
  // The body and else branch of an if, with or range; {{else if X}} is an if in the
  // else branch that the same {{end}} closes.
  const control = (kw: 'if' | 'with' | 'range', p: Pipe): Node => {
    const body = block(['end', 'else']);
    let other: Node[] = [];
    if (body.end !== 'end') {
      const rest = body.end.replace(/^else\s*/, '');
      const chained = /^if\s+(.*)$/s.exec(rest);
      if (chained && kw === 'if') {
        if (++depth > MAX_DEPTH) throw bad(src, `more than ${MAX_DEPTH} nested if, with or range`);
        other = [control('if', pipe(src, chained[1]))];
        depth--;
      }
      else if (rest) throw bad(src, `unexpected "{{${body.end}}}"`);
      else other = block(['end']).nodes;
    }
    if (kw === 'range') return { k: 'range', p: { ...p, decl: [] }, vars: p.decl, body: body.nodes, else: other };
    return { k: kw, p, then: body.nodes, else: other };
  };
  return block([]).nodes;
}

/** How deep if/with/range and ( ) may nest: deeper ones would overflow the stack. */
const MAX_DEPTH = 1000;

/** The "}}" that closes an action starting at FROM, skipping quoted strings. */
function findClose(src: string, from: number): number {
  for (let i = from; i < src.length; i++) {
    const c = src[i];
    if (c === '"' || c === '`') {
      const q = c;
      for (i++; i < src.length && src[i] !== q; i++) if (q === '"' && src[i] === '\\') i++;
    } else if (c === '}' && src[i + 1] === '}') {
      return i;
    }
  }
  return -1;
}

function tokenize(src: string, s: string): string[] {
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|\||\(|\)|,|[^\s|(),"`:=]+|[:=])\s*/y;
  const out: string[] = [];
  while (re.lastIndex < s.length) {
    const at = re.lastIndex;
    const m = re.exec(s);
    if (!m) throw bad(src, `cannot read "${s.slice(at)}"`);
    out.push(m[1]);
  }
  return out;
}

function pipe(src: string, s: string): Pipe {
  const toks = tokenize(src, s);
  let i = 0;
  const decl: string[] = [];
  // $v := ..., or $k, $v := ... (range)
  const assign = toks.indexOf(':=');
  if (assign >= 0) {
    for (const t of toks.slice(0, assign)) {
      if (t === ',') continue;
      if (!/^\$\w+$/.test(t)) throw bad(src, `cannot assign to "${t}"`);
      decl.push(t);
    }
    i = assign + 1;
  }
  let parens = 0;
  const parsePipe = (closing: string | undefined): Pipe => {
    const cmds: Arg[][] = [[]];
    while (i < toks.length) {
      const t = toks[i++];
      if (t === closing) return { decl: [], cmds: check(cmds) };
      if (t === '|') {
        cmds.push([]);
        continue;
      }
      if (t === '(') {
        if (++parens > MAX_DEPTH) throw bad(src, `more than ${MAX_DEPTH} nested "("`);
        const p = parsePipe(')');
        parens--;
        let path: string[] = [];
        if (i < toks.length && toks[i].startsWith('.')) path = fields(toks[i++]);
        cmds[cmds.length - 1].push({ k: 'sub', p, path });
        continue;
      }
      cmds[cmds.length - 1].push(operand(src, t));
    }
    if (closing) throw bad(src, 'unclosed "("');
    return { decl: [], cmds: check(cmds) };
  };
  const check = (cmds: Arg[][]): Arg[][] => {
    if (cmds.some((c) => c.length === 0)) throw bad(src, 'missing value in the pipeline');
    return cmds;
  };
  const p = parsePipe(undefined);
  return { decl, cmds: p.cmds };
}

function fields(t: string): string[] {
  return t.split('.').slice(1).filter((f, j, all) => f !== '' || all.length > 1);
}

function operand(src: string, t: string): Arg {
  if (t === '.') return { k: 'field', base: 'dot', path: [] };
  if (t.startsWith('.')) {
    const path = fields(t);
    if (path.some((f) => !/^\w+$/.test(f))) throw bad(src, `bad field "${t}"`);
    return { k: 'field', base: 'dot', path };
  }
  if (t.startsWith('$')) {
    const [v, ...rest] = t.split('.');
    return { k: 'field', base: v, path: rest };
  }
  if (t.startsWith('"')) return { k: 'lit', v: unquote(src, t) };
  if (t.startsWith('`')) return { k: 'lit', v: t.slice(1, -1) };
  if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
  if (t === 'nil') return { k: 'lit', v: null };
  if (/^[-+]?\.?\d/.test(t)) {
    // Go's number literals: 42, -1.5, 1e3, 0x1F, 0o17 or 017, 0b101, 1_000.
    const [, sign, body] = /^([-+]?)(.*)$/s.exec(t.replace(/_/g, ''))!;
    const v = /^0[0-7]+$/.test(body) ? parseInt(body, 8) : /^[0-9.]/.test(body) && !/^0\d*[89]/.test(body) ? Number(body) : NaN;
    if (Number.isNaN(v) || !Number.isFinite(v)) throw bad(src, `bad number "${t}"`);
    return { k: 'lit', v: sign === '-' ? -v : v };
  }
  if (/^\w+$/.test(t)) {
    if (!(t in FUNCS)) throw bad(src, `function "${t}" not defined`);
    return { k: 'fn', name: t };
  }
  throw bad(src, `cannot read "${t}"`);
}

/** A Go "quoted string": its escapes are Go's (\x41, \101, \u00e9, \U0001f600, \a ...), not JSON's. */
function unquote(src: string, t: string): string {
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };
  return t.slice(1, -1).replace(/\\(?:([abfnrtv\\"'])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))/gs,
    (_all, c: string, x: string, o: string, u: string, U: string, other: string | undefined) => {
      if (c) return simple[c];
      if (x || o) return String.fromCharCode(parseInt(x ?? o, x ? 16 : 8));
      const cp = parseInt(u ?? U ?? 'x', 16);
      if (other !== undefined || !(cp <= 0x10ffff) || (cp >= 0xd800 && cp < 0xe000)) throw bad(src, `bad escape in ${t}`);
      return String.fromCodePoint(cp);
    });
}

// --- running ---

type Vars = Map<string, Value>;

function exec(src: string, nodes: Node[], dot: Value, vars: Vars, out: string[]): void {
  for (const n of nodes) {
    switch (n.k) {
      case 'text':
        out.push(n.s);
        break;
      case 'out': {
        const v = runPipe(src, n.p, dot, vars);
        if (!n.p.decl.length) out.push(show(v));
        break;
      }
      case 'if':
      case 'with': {
        const v = runPipe(src, n.p, dot, vars);
        if (truthy(v)) exec(src, n.then, n.k === 'with' ? v : dot, new Map(vars), out);
        else exec(src, n.else, dot, new Map(vars), out);
        break;
      }
      case 'range': {
        const v = runPipe(src, n.p, dot, vars);
        const items: Iterable<[Value, Value]> = Array.isArray(v) ? v.map((x, j) => [j, x])
          : isObject(v) ? Object.keys(v).sort().map((key) => [key, v[key]])
            : Number.isInteger(v) ? upTo(v as number)
              : v == null ? [] : (() => { throw bad(src, `range can't iterate over ${show(v)}`); })();
        let none = true;
        for (const [key, item] of items) {
          none = false;
          const scope = new Map(vars);
          if (n.vars.length === 1) scope.set(n.vars[0], item);
          if (n.vars.length === 2) {
            scope.set(n.vars[0], key);
            scope.set(n.vars[1], item);
          }
          exec(src, n.body, item, scope, out);
        }
        if (none) exec(src, n.else, dot, new Map(vars), out);
        break;
      }
    }
  }
}

function* upTo(n: number): Generator<[number, number]> {
  for (let j = 0; j < n; j++) yield [j, j];
}

function runPipe(src: string, p: Pipe, dot: Value, vars: Vars): Value {
  let last: Value;
  p.cmds.forEach((cmd, j) => {
    const head = cmd[0];
    const args = cmd.slice(1).map((a) => evalArg(src, a, dot, vars));
    if (j > 0) args.push(last);
    if (head.k === 'fn') {
      last = call(src, head.name, args);
    } else {
      if (args.length) throw bad(src, `${describe(head)} is not a function, but has arguments`);
      last = evalArg(src, head, dot, vars);
    }
  });
  for (const d of p.decl) vars.set(d, last);
  return last;
}

function evalArg(src: string, a: Arg, dot: Value, vars: Vars): Value {
  switch (a.k) {
    case 'lit':
      return a.v;
    case 'fn':
      return call(src, a.name, []);
    case 'sub':
      return walk(src, runPipe(src, a.p, dot, vars), a.path, '(...)');
    case 'field': {
      let base = dot;
      if (a.base !== 'dot') {
        if (!vars.has(a.base)) throw bad(src, `undefined variable "${a.base}"`);
        base = vars.get(a.base);
      }
      return walk(src, base, a.path, a.base === 'dot' ? '' : a.base);
    }
  }
}

function walk(src: string, v: Value, path: string[], start: string): Value {
  let at = start;
  for (const f of path) {
    at += `.${f}`;
    if (!isObject(v)) throw bad(src, `cannot read field ${f} of ${at.slice(0, -f.length - 1) || '.'} (${v === null || v === undefined ? 'no value' : typeof v})`);
    if (!Object.hasOwn(v, f)) throw bad(src, `no field "${f}" at ${at}`);
    v = v[f];
  }
  return v;
}

function describe(a: Arg): string {
  return a.k === 'field' ? `${a.base === 'dot' ? '' : a.base}.${a.path.join('.')}` : 'a value';
}

function isObject(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function truthy(v: Value): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return !!v;
}

/** As Go's fmt prints a decoded JSON value. */
export function show(v: Value): string {
  if (v === undefined || v === null) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(showInner).join(' ')}]`;
  if (isObject(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${showInner(v[k])}`).join(' ')}]`;
  return String(v);
}

function showInner(v: Value): string {
  return v === undefined || v === null ? '<nil>' : show(v);
}

/** The Go type a decoded JSON value has, as %T and fmt's %!verb(type=value) name it. */
function goType(v: Value): string {
  if (v === undefined || v === null) return '<nil>';
  if (Array.isArray(v)) return '[]interface {}';
  if (isObject(v)) return 'map[string]interface {}';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  return typeof v === 'boolean' ? 'bool' : 'string';
}

/**
 * Go's fmt.Sprintf for decoded JSON values: flags (-+ 0#), width, .precision and the
 * verbs v s d q t f F e E g G x X o b c T; an argument of the wrong type, an unknown
 * verb, a missing or an extra argument print as Go's do (%!d(string=x), %!d(MISSING),
 * %!(EXTRA int=1)). %s and %v take any value, as they print it.
 */
function printf(format: Value, args: Value[]): string {
  let n = 0;
  const out = String(format).replace(/%([-+ 0#]*)(\d*)(?:\.(\d*))?(.|$)/gs, (_all, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (!verb) return '%!(NOVERB)';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    const p = prec === undefined ? undefined : Number(prec || 0);
    const wrong = () => `%!${verb}(${goType(a)}=${showInner(a)})`;
    const int = typeof a === 'number' && Number.isInteger(a);
    const sign = (x: string) => (typeof a === 'number' && a >= 0 ? (flags.includes('+') ? '+' : flags.includes(' ') ? ' ' : '') : '') + x;
    let s: string;
    switch (verb) {
      case 'v': s = showInner(a); break;
      case 's': s = a === undefined || a === null ? wrong() : show(a); if (p !== undefined) s = [...s].slice(0, p).join(''); break;
      case 'q': s = typeof a === 'string' ? JSON.stringify(a) : int ? `'${String.fromCodePoint(a as number)}'` : wrong(); break;
      case 't': s = typeof a === 'boolean' ? String(a) : wrong(); break;
      case 'T': s = goType(a); break;
      case 'd': s = int ? sign(String(a)) : wrong(); break;
      case 'c': s = int && (a as number) >= 0 && (a as number) <= 0x10ffff ? String.fromCodePoint(a as number) : wrong(); break;
      case 'x': case 'X': case 'o': case 'b': {
        const base = { x: 16, X: 16, o: 8, b: 2 }[verb]!;
        if (int) s = sign((a as number) < 0 ? `-${(-(a as number)).toString(base)}` : (a as number).toString(base));
        else if (typeof a === 'string' && verb.toLowerCase() === 'x') s = Buffer.from(a).toString('hex');
        else { s = wrong(); break; }
        if (verb === 'X') s = s.toUpperCase();
        if (flags.includes('#') && base !== 2) s = s.replace(/^([-+ ]?)/, `$1${base === 8 ? '0' : verb === 'X' ? '0X' : '0x'}`);
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (typeof a !== 'number') { s = wrong(); break; }
        const v = verb.toLowerCase();
        s = v === 'f' ? a.toFixed(p ?? 6) : v === 'e' ? a.toExponential(p ?? 6).replace(/e([+-])(\d)$/, 'e$10$2')
          : p === undefined ? String(a) : a.toPrecision(p || 1);
        s = sign(verb === 'E' || verb === 'G' ? s.toUpperCase() : s);
        break;
      }
      default: s = wrong();
    }
    const w = Number(width || 0);
    if ([...s].length < w) {
      const fill = w - [...s].length;
      if (flags.includes('-')) s += ' '.repeat(fill);
      else if (flags.includes('0') && /[dfFeEgGxXob]/.test(verb) && typeof a === 'number') s = s.replace(/^([-+ ]?(?:0[xX])?)/, `$1${'0'.repeat(fill)}`);
      else s = ' '.repeat(fill) + s;
    }
    return s;
  });
  return n < args.length ? `${out}%!(EXTRA ${args.slice(n).map((a) => `${goType(a)}=${showInner(a)}`).join(', ')})` : out;
}

const cmp = (src: string, a: Value, b: Value): number => {
  const basic = (v: Value) => typeof v === 'number' || typeof v === 'string';
  if (!basic(a) || !basic(b)) throw bad(src, `cannot compare ${show(a)} with ${show(b)}: only numbers and strings compare`);
  if (typeof a !== typeof b) throw bad(src, `cannot compare ${show(a)} with ${show(b)}`);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
};

/** A whole number that a function takes as a count. */
const count = (src: string, fn: string, v: Value): number => {
  if (!Number.isInteger(v) || (v as number) < 0) throw bad(src, `${fn}: ${show(v)} is not a count`);
  return v as number;
};

const FUNCS: Record<string, (src: string, ...args: Value[]) => Value> = {
  json: (_s, v) => JSON.stringify(v ?? null),
  index: (src, v, ...keys) => {
    for (const key of keys) {
      if (Array.isArray(v) || typeof v === 'string') {
        if (!Number.isInteger(key)) throw bad(src, `cannot index ${show(v)} with ${show(key)}`);
        const bytes = typeof v === 'string' ? Buffer.from(v) : v;
        if ((key as number) < 0 || (key as number) >= bytes.length) throw bad(src, `index out of range: ${key}`);
        v = bytes[key as number];
      } else if (isObject(v)) {
        // Its own keys only: what a JavaScript object inherits is no key of a Go map.
        v = Object.hasOwn(v, String(key)) ? v[String(key)] : undefined;
      } else if (v === null || v === undefined) return undefined;
      else throw bad(src, `cannot index ${show(v)} with ${show(key)}`);
    }
    return v;
  },
  len: (src, v) => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    if (v === null || v === undefined) return 0;
    throw bad(src, `len of ${show(v)}`);
  },
  join: (_s, list, sep) => (Array.isArray(list) ? list.map(show).join(String(sep ?? '')) : show(list)),
  split: (_s, s, sep) => show(s).split(show(sep)),
  lower: (_s, s) => show(s).toLowerCase(),
  upper: (_s, s) => show(s).toUpperCase(),
  title: (_s, s) => show(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  truncate: (src, s, n) => [...show(s)].slice(0, count(src, 'truncate', n)).join(''),
  pad: (src, s, l, r) => `${' '.repeat(count(src, 'pad', l))}${show(s)}${' '.repeat(count(src, 'pad', r))}`,
  // Go's Sprint: a space between two operands only when neither is a string.
  print: (_s, ...a) => a.map((v, j) => (j && typeof v !== 'string' && typeof a[j - 1] !== 'string' ? ' ' : '') + showInner(v)).join(''),
  println: (_s, ...a) => `${a.map(showInner).join(' ')}\n`,
  printf: (_s, f, ...a) => printf(f, a),
  not: (_s, v) => !truthy(v),
  and: (_s, ...a) => {
    for (const v of a) if (!truthy(v)) return v;
    return a[a.length - 1];
  },
  or: (_s, ...a) => {
    for (const v of a) if (truthy(v)) return v;
    return a[a.length - 1];
  },
  eq: (_s, a, ...bs) => bs.some((b) => a === b),
  ne: (_s, a, b) => a !== b,
  lt: (src, a, b) => cmp(src, a, b) < 0,
  le: (src, a, b) => cmp(src, a, b) <= 0,
  gt: (src, a, b) => cmp(src, a, b) > 0,
  ge: (src, a, b) => cmp(src, a, b) >= 0,
};

/** How many arguments each function takes, as Go's and Docker's: [least, most]. */
const ARITY: Record<string, [number, number]> = {
  json: [1, 1], index: [1, Infinity], len: [1, 1], join: [2, 2], split: [2, 2], lower: [1, 1], upper: [1, 1],
  title: [1, 1], truncate: [2, 2], pad: [3, 3], print: [0, Infinity], println: [0, Infinity], printf: [1, Infinity],
  not: [1, 1], and: [1, Infinity], or: [1, Infinity], eq: [2, Infinity], ne: [2, 2], lt: [2, 2], le: [2, 2], gt: [2, 2], ge: [2, 2],
};

function call(src: string, name: string, args: Value[]): Value {
  const [least, most] = ARITY[name];
  if (args.length < least || args.length > most) {
    const want = least === most ? `${least}` : most === Infinity ? `at least ${least}` : `${least} to ${most}`;
    throw bad(src, `wrong number of args for ${name}: want ${want} got ${args.length}`);
  }
  return FUNCS[name](src, ...args);
}

/** Labels as a list row shows them, as Docker's: "k=v,k2=v2". */
export function labelList(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
}

/**
 * A list command's --format (ps, images, ...): "table" (the default) and "json" are the
 * caller's; any other FORMAT is a template run once per row, printed a line each; "table
 * TEMPLATE" also prints a header line (HEADERS names each field's column) and aligns the
 * columns that \t separates, as Docker's. Returns undefined for "table" and "json".
 * @throws BerthError USAGE
 */
export function renderRows(format: string, rows: Record<string, unknown>[], headers: Record<string, string>): string | undefined {
  if (format === 'table' || format === 'json') return undefined;
  const tabular = /^table\s/.test(format);
  // As Docker's: a \t or \n typed in the shell's quotes is a tab or a newline here.
  const body = (tabular ? format.replace(/^table\s+/, '') : format).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const render = compileTemplate(body);
  const lines = rows.map((r) => render(r));
  if (!tabular) return lines.map((l) => `${l}\n`).join('');
  const all = [render(headers), ...lines].map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const cells of all) cells.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return all.map((cells) => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i] + 3) : c)).join('').trimEnd() + '\n').join('');
}

/**
 * An inspect command's output: ITEMS as an indented JSON array, or each through FORMAT (a
 * Go template; "json" is {{json .}}), a line each, as Docker's inspect -f.
 * @throws BerthError USAGE
 */
export function renderInspect(items: unknown[], format: string | undefined): string {
  if (format === undefined) return JSON.stringify(items, null, 2) + '\n';
  const render = compileTemplate(format === 'json' ? '{{json .}}' : format);
  return items.map((i) => `${render(i)}\n`).join('');
}
