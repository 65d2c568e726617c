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

const bad = (template: string, why: string) => new BerthError('USAGE', `template "${template}": ${why}`, {
  hint: 'Go template syntax, as Docker\'s: {{.State.Pid}}, {{json .Config}}, {{range .Mounts}}{{.Source}} {{end}}',
});

/** Parses TEMPLATE; the result renders one value at a time. @throws BerthError USAGE */
export function compileTemplate(template: string): (data: Value) => string {
  const nodes = parse(template);
  return (data) => {
    const out: string[] = [];
    exec(template, nodes, data, new Map([['$', data]]), out);
    return out.join('');
  };
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
        nodes.push(control(kw, pipe(src, word![2])));
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
      if (chained && kw === 'if') other = [control('if', pipe(src, chained[1]))];
      else if (rest) throw bad(src, `unexpected "{{${body.end}}}"`);
      else other = block(['end']).nodes;
    }
    if (kw === 'range') return { k: 'range', p: { ...p, decl: [] }, vars: p.decl, body: body.nodes, else: other };
    return { k: kw, p, then: body.nodes, else: other };
  };
  return block([]).nodes;
}

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
  const re = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|:=|\||\(|\)|,|[^\s|(),"`]+)\s*/y;
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
        const p = parsePipe(')');
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
  if (t.startsWith('"')) return { k: 'lit', v: JSON.parse(t) };
  if (t.startsWith('`')) return { k: 'lit', v: t.slice(1, -1) };
  if (t === 'true' || t === 'false') return { k: 'lit', v: t === 'true' };
  if (t === 'nil') return { k: 'lit', v: null };
  if (/^-?\d+(\.\d+)?$/.test(t)) return { k: 'lit', v: Number(t) };
  if (/^\w+$/.test(t)) {
    if (!(t in FUNCS)) throw bad(src, `function "${t}" not defined`);
    return { k: 'fn', name: t };
  }
  throw bad(src, `cannot read "${t}"`);
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
        const items: [Value, Value][] = Array.isArray(v) ? v.map((x, j) => [j, x])
          : isObject(v) ? Object.keys(v).sort().map((key) => [key, v[key]])
            : typeof v === 'number' ? Array.from({ length: Math.max(0, v) }, (_, j) => [j, j])
              : v == null ? [] : (() => { throw bad(src, `range can't iterate over ${show(v)}`); })();
        if (!items.length) exec(src, n.else, dot, new Map(vars), out);
        for (const [key, item] of items) {
          const scope = new Map(vars);
          if (n.vars.length === 1) scope.set(n.vars[0], item);
          if (n.vars.length === 2) {
            scope.set(n.vars[0], key);
            scope.set(n.vars[1], item);
          }
          exec(src, n.body, item, scope, out);
        }
        break;
      }
    }
  }
}

function runPipe(src: string, p: Pipe, dot: Value, vars: Vars): Value {
  let last: Value;
  p.cmds.forEach((cmd, j) => {
    const head = cmd[0];
    const args = cmd.slice(1).map((a) => evalArg(src, a, dot, vars));
    if (j > 0) args.push(last);
    if (head.k === 'fn') {
      last = FUNCS[head.name](src, ...args);
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
      return FUNCS[a.name](src);
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
    if (!(f in v)) throw bad(src, `no field "${f}" at ${at}`);
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

function printf(src: string, format: unknown, ...args: Value[]): string {
  let n = 0;
  return String(format).replace(/%([-0 +]*)(\d*)([svdqt%])/g, (all, flags: string, width: string, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s = verb === 'q' ? JSON.stringify(show(a)) : verb === 'd' ? String(Math.trunc(Number(a))) : show(a);
    const w = Number(width || 0);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb === 'd' ? '0' : ' ');
    return s;
  });
}

const cmp = (src: string, a: Value, b: Value): number => {
  if (typeof a !== typeof b) throw bad(src, `cannot compare ${show(a)} with ${show(b)}`);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
};

const FUNCS: Record<string, (src: string, ...args: Value[]) => Value> = {
  json: (_s, v) => JSON.stringify(v ?? null),
  index: (src, v, ...keys) => {
    for (const key of keys) {
      if (Array.isArray(v) && typeof key === 'number') v = v[key];
      else if (isObject(v)) v = v[String(key)];
      else if (v === null || v === undefined) return undefined;
      else throw bad(src, `cannot index ${show(v)} with ${show(key)}`);
    }
    return v;
  },
  len: (src, v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    if (v === null || v === undefined) return 0;
    throw bad(src, `len of ${show(v)}`);
  },
  join: (_s, list, sep) => (Array.isArray(list) ? list.map(show).join(String(sep ?? '')) : show(list)),
  split: (_s, s, sep) => String(s).split(String(sep)),
  lower: (_s, s) => show(s).toLowerCase(),
  upper: (_s, s) => show(s).toUpperCase(),
  title: (_s, s) => show(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  truncate: (_s, s, n) => show(s).slice(0, Number(n)),
  pad: (_s, s, l, r) => `${' '.repeat(Number(l))}${show(s)}${' '.repeat(Number(r))}`,
  print: (_s, ...a) => a.map(show).join(' '),
  println: (_s, ...a) => `${a.map(show).join(' ')}\n`,
  printf: (src, f, ...a) => printf(src, f, ...a),
  not: (_s, v) => !truthy(v),
  and: (_s, ...a) => a.find((v) => !truthy(v)) ?? a[a.length - 1],
  or: (_s, ...a) => a.find((v) => truthy(v)) ?? a[a.length - 1],
  eq: (_s, a, ...bs) => bs.some((b) => a === b),
  ne: (_s, a, b) => a !== b,
  lt: (src, a, b) => cmp(src, a, b) < 0,
  le: (src, a, b) => cmp(src, a, b) <= 0,
  gt: (src, a, b) => cmp(src, a, b) > 0,
  ge: (src, a, b) => cmp(src, a, b) >= 0,
};

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
