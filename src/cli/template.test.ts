// Unit tests for cli/template.ts: the outputs are what Go's text/template (and so docker
// inspect -f / ps --format) prints for the same template and JSON value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTemplate, renderInspect, renderRows } from './template';

const data = {
  Id: 'abc', Name: '/web',
  State: { Status: 'running', Pid: 4242, ExitCode: 0, Running: true, OOMKilled: false },
  Config: { Env: ['PATH=/bin', 'A=1'], Labels: { 'com.x': 'y', b: '2' }, Cmd: null, Tty: false },
  Mounts: [{ Source: '/h1', Destination: '/c1' }, { Source: '/h2', Destination: '/c2' }],
  NetworkSettings: { Ports: {} },
};
const run = (t: string, d: unknown = data) => compileTemplate(t)(d);

describe('compileTemplate', () => {
  it('prints fields, variables and literals as Go does', () => {
    const cases: [string, string][] = [
      ['{{.State.Pid}}', '4242'],
      ['{{.Name}} is {{.State.Status}}', '/web is running'],
      ['{{.State.Running}}/{{.State.OOMKilled}}', 'true/false'],
      ['{{.Config.Env}}', '[PATH=/bin A=1]'],
      ['{{.Config.Labels}}', 'map[b:2 com.x:y]'],
      ['{{.Config.Cmd}}', '<no value>'],
      ['{{.NetworkSettings.Ports}}', 'map[]'],
      ['{{$.Id}}', 'abc'],
      ['{{"quoted\\tstring"}} {{`raw`}} {{42}}', 'quoted\tstring raw 42'],
      ['a {{- " b " -}} c', 'a b c'],
      ['{{/* a comment */}}x', 'x'],
    ];
    for (const [t, want] of cases) assert.equal(run(t), want, t);
  });

  it('has Docker\'s functions and Go\'s builtins', () => {
    const cases: [string, string][] = [
      ['{{json .State}}', JSON.stringify(data.State)],
      ['{{json .Config.Cmd}}', 'null'],
      ['{{index .Config.Labels "com.x"}}', 'y'],
      ['{{index .Mounts 1 | json}}', '{"Source":"/h2","Destination":"/c2"}'],
      ['{{(index .Mounts 0).Source}}', '/h1'],
      ['{{len .Mounts}} {{len .Config.Labels}} {{len .Id}}', '2 2 3'],
      ['{{join .Config.Env ","}}', 'PATH=/bin,A=1'],
      ['{{upper .State.Status}} {{lower "AB"}} {{title "a b"}}', 'RUNNING ab A B'],
      ['{{split "a:b" ":"}}', '[a b]'],
      ['{{printf "%s=%d|%-5s|%5s|%q" .Name .State.Pid "x" "y" "z"}}', '/web=4242|x    |    y|"z"'],
      ['{{println .Id}}', 'abc\n'],
      ['{{.State.Status | printf "<%s>"}}', '<running>'],
      ['{{truncate .Name 2}}', '/w'],
      ['{{eq .State.Status "running"}} {{ne 1 2}} {{lt 1 2}} {{ge 1 2}}', 'true true true false'],
      ['{{and .State.Running .Name}} {{or .Config.Cmd "none"}} {{not .State.Running}}', '/web none false'],
    ];
    for (const [t, want] of cases) assert.equal(run(t), want, t);
  });

  it('runs if, else if, with and range (lists, maps, variables, else)', () => {
    const cases: [string, string][] = [
      ['{{if .State.Running}}up{{else}}down{{end}}', 'up'],
      ['{{if .Config.Cmd}}a{{else if eq .State.ExitCode 1}}b{{else if .State.Running}}c{{else}}d{{end}}', 'c'],
      ['{{with .State}}{{.Pid}}{{end}}', '4242'],
      ['{{with .Config.Cmd}}x{{else}}none{{end}}', 'none'],
      ['{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}', '/h1:/c1 /h2:/c2 '],
      ['{{range $i, $m := .Mounts}}{{$i}}={{$m.Source}}{{$.Name}};{{end}}', '0=/h1/web;1=/h2/web;'],
      ['{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}', 'b=2,com.x=y,'],
      ['{{range .Config.Cmd}}x{{else}}empty{{end}}', 'empty'],
      ['{{$p := .State.Pid}}{{$p}}', '4242'],
      ['{{range .Mounts -}}\n  {{.Source}}\n{{- end}}', '/h1/h2'],
    ];
    for (const [t, want] of cases) assert.equal(run(t), want, t);
  });

  it('refuses bad templates and missing fields with a message naming them', () => {
    const bad: [string, RegExp][] = [
      ['{{.State.Pid', /unclosed action/],
      ['{{if .State.Running}}x', /missing \{\{end\}\}/],
      ['{{end}}', /unexpected \{\{end\}\}/],
      ['{{nosuch .Id}}', /function "nosuch" not defined/],
      ['{{.Nope}}', /no field "Nope" at \.Nope/],
      ['{{.State.Pid.X}}', /cannot read field X of \.State\.Pid/],
      ['{{$x}}', /undefined variable "\$x"/],
      ['{{(.Id}}', /unclosed "\("/],
      ['{{.Id |}}', /missing value in the pipeline/],
      ['{{.Id "arg"}}', /not a function/],
    ];
    for (const [t, re] of bad) {
      assert.throws(() => run(t), (e: Error & { code?: string }) => re.test(e.message) && e.code === 'USAGE', t);
    }
  });
});

describe('compileTemplate with hostile input', () => {
  it('sees a value\'s own keys only, never what a JavaScript object inherits', () => {
    assert.equal(run('{{index . "constructor"}}|{{index .Config.Labels "toString"}}|{{index . "__proto__"}}'), '<no value>|<no value>|<no value>');
    for (const t of ['{{.constructor}}', '{{.__proto__}}', '{{.Config.Labels.hasOwnProperty}}', '{{$.constructor.name}}']) {
      assert.throws(() => run(t), /no field/, t);
    }
    // A JSON key named so is a key like any other.
    assert.equal(run('{{index . "__proto__"}} {{.constructor}}', JSON.parse('{"__proto__":"p","constructor":"c"}')), 'p c');
  });

  it('ends too deep or too large templates with a template error, not a crash', () => {
    const deep = [
      '{{if 1}}'.repeat(20000) + '{{end}}'.repeat(20000),
      `{{${'('.repeat(20000)}1${')'.repeat(20000)}}}`,
      `{{if 0}}${'{{else if 0}}'.repeat(20000)}{{end}}`,
      '{{pad 1 1000000000 1}}', '{{printf "%1000000000s" 1}}',
    ];
    for (const t of deep) assert.throws(() => run(t), (e: Error & { code?: string }) => e.code === 'USAGE' && e.message.length < 400, t.slice(0, 20));
    assert.equal(run(`${'{{if 1}}'.repeat(1000)}x${'{{end}}'.repeat(1000)}`), 'x');
    assert.equal(run('{{range 10000000}}{{end}}x'), 'x');
  });

  it('checks arguments as Go does: counts, indexes, escapes and numbers', () => {
    const bad: [string, RegExp][] = [
      ['{{printf}}', /wrong number of args for printf: want at least 1 got 0/],
      ['{{len}}', /wrong number of args for len: want 1 got 0/],
      ['{{json .Id .Name}}', /wrong number of args for json: want 1 got 2/],
      ['{{truncate .Id}}', /wrong number of args for truncate/],
      ['{{eq .Id}}', /wrong number of args for eq/],
      ['{{and}}', /wrong number of args for and/],
      ['{{pad .Id -1 2}}', /pad: -1 is not a count/],
      ['{{truncate .Id -1}}', /truncate: -1 is not a count/],
      ['{{index .Mounts 5}}', /index out of range: 5/],
      ['{{index .Mounts -1}}', /index out of range: -1/],
      ['{{index .Mounts "length"}}', /cannot index/],
      ['{{range 1.5}}{{end}}', /range can't iterate over 1.5/],
      ['{{"\\q"}}', /bad escape/],
      ['{{09}}', /bad number/],
      ['{{lt .State .State}}', /cannot compare/],
    ];
    for (const [t, re] of bad) {
      assert.throws(() => run(t), (e: Error & { code?: string }) => re.test(e.message) && e.code === 'USAGE', t);
    }
    const cases: [string, string][] = [
      ['{{"\\x41\\101\\u00e9\\U0001F600"}}', 'AAé😀'],
      ['{{$x:=.State.Pid}}{{$x}}', '4242'],
      ['{{1e3}} {{0x10}} {{1_000}} {{017}} {{0b101}} {{+2}}', '1000 16 1000 15 5 2'],
      ['{{index .Id 0}} {{len "é"}}', '97 2'],
      ['{{and .Config.Cmd "x"}}|{{or .Config.Cmd ""}}', '<no value>|'],
      ['{{print "a" "b" 1 2 .Config.Cmd}}', 'ab1 2 <nil>'],
    ];
    for (const [t, want] of cases) assert.equal(run(t), want, t);
  });

  it('printf: Go\'s verbs, and Go\'s marks for wrong, missing and extra arguments', () => {
    const cases: [string, string][] = [
      ['{{printf "%5.2f|%x|%X|%#x|%o|%b|%c|%T|%e" 1.5 255 255 255 8 5 65 "s" 1234.5}}', ' 1.50|ff|FF|0xff|10|101|A|string|1.234500e+03'],
      ['{{printf "%05d|%-4d|%+d|%08.3f|%.2s|%6.2f%%" 42 7 3 -3.14159 "abc" 12.345}}', '00042|7   |+3|-003.142|ab| 12.35%'],
      ['{{printf "%d" .Name}}', '%!d(string=/web)'],
      ['{{printf "%d %d" 1}}', '1 %!d(MISSING)'],
      ['{{printf "%d" 1 2}}', '1%!(EXTRA int=2)'],
      ['{{printf "%z" 1}}', '%!z(int=1)'],
      ['{{printf "%v" .Config.Cmd}}', '<nil>'],
    ];
    for (const [t, want] of cases) assert.equal(run(t), want, t);
  });
});

describe('renderRows and renderInspect', () => {
  const rows = [{ ID: 'a1', Names: 'web', Ports: '127.0.0.1:8080->80/tcp' }, { ID: 'b22', Names: 'db', Ports: '' }];
  const headers = { ID: 'CONTAINER ID', Names: 'NAMES', Ports: 'PORTS' };
  it('leaves table and json to the caller, prints a template a line per row', () => {
    assert.equal(renderRows('table', rows, headers), undefined);
    assert.equal(renderRows('json', rows, headers), undefined);
    assert.equal(renderRows('{{.Names}}={{.ID}}', rows, headers), 'web=a1\ndb=b22\n');
    // A \\t typed in shell quotes is a tab, as Docker's.
    assert.equal(renderRows('{{.Names}}\\t{{.ID}}', rows, headers), 'web\ta1\ndb\tb22\n');
  });
  it('table TEMPLATE: a header from the column names and aligned columns', () => {
    assert.equal(renderRows('table {{.ID}}\\t{{.Names}}\\t{{.Ports}}', rows, headers), [
      'CONTAINER ID   NAMES   PORTS',
      'a1             web     127.0.0.1:8080->80/tcp',
      'b22            db',
      '',
    ].join('\n'));
  });
  it('inspect: JSON by default, else a line per item', () => {
    assert.deepEqual(JSON.parse(renderInspect([{ a: 1 }], undefined)), [{ a: 1 }]);
    assert.equal(renderInspect([{ a: 1 }, { a: 2 }], '{{.a}}'), '1\n2\n');
    assert.equal(renderInspect([{ a: 1 }], 'json'), '{"a":1}\n');
  });
});
