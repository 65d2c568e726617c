// top, pause/unpause, rename, diff, export, cp, container prune and info on detached
// containers of the embedded busybox image, checked as a user would: the processes top
// lists, a counter that stops while paused, the A/C/D lines, the tar's names, files that
// make the round trip, and symlinks in the container that must not reach the host.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, berthSync, engineRoot, requires, sleep, TOP, type Result } from '../helpers';

const skip = requires('root');


describe('berth top, pause, rename, diff, export, cp, container prune, info', { skip }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[], input?: string): Result => berthSync(root, args, { input });
  const ok = (args: string[], input?: string): string => {
    const r = berth(args, input);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const fails = (args: string[], message: RegExp): void => {
    const r = berth(args);
    assert.equal(r.status, 125, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
  };
  const mountsOf = (text: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(text));

  before(() => {
    ({ dir, root } = engineRoot('ctrops'));
  });
  after(() => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    // A frozen (cgroup v1) process takes no SIGKILL until it is thawed.
    for (const i of ids) berth(['unpause', i]);
    if (ids.length) berth(['rm', '-f', ...ids]);
    const mounts = mountsOf(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('top lists the container\'s processes, with ps options; refuses a stopped container', () => {
    ok(['run', '-d', '--name', 'topper', 'busybox', 'sh', '-c', 'sleep 301 & sleep 302']);
    const t = ok(['top', 'topper']);
    const lines = t.trimEnd().split('\n');
    assert.match(lines[0], /PID/);
    assert.ok(lines.some((l) => l.endsWith('sleep 301')), t);
    assert.ok(lines.some((l) => l.endsWith('sleep 302')), t);
    // The header and the two sleeps (sh execs the last one), nothing of the host.
    assert.equal(lines.length, 3, t);
    const custom = ok(['top', 'topper', '-o', 'pid,comm']);
    assert.match(custom, /^\s*PID COMMAND\n/);
    assert.match(custom, /^\s*\d+ sleep$/m);
    ok(['rm', '-f', 'topper']);
    fails(['top', 'topper'], /^berth: no such container: "topper"$/m);
    const done = ok(['run', '-d', 'busybox', 'true']).trim();
    ok(['wait', done]);
    fails(['top', done], /cannot list the processes of container "\w+": it is not running/);
    ok(['rm', done]);
  });

  it('pause stops a counter from advancing; ps and inspect show it; unpause lets it go on', async () => {
    ok(['run', '-d', '--name', 'counter', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done']);
    const count = (): number => {
      const out = path.join(dir, `count-${process.hrtime.bigint()}`);
      ok(['cp', 'counter:/count', out]); // cp reads the root filesystem from the host: it works paused
      return Number(fs.readFileSync(out, 'utf8'));
    };
    await sleep(300);
    assert.equal(ok(['pause', 'counter']), 'counter\n');
    const frozen = count();
    await sleep(700);
    assert.equal(count(), frozen);
    assert.match(ok(['ps']), /Up (\d+ seconds?|Less than a second) \(Paused\) +counter$/m);
    assert.equal(JSON.parse(ok(['inspect', 'counter']))[0].State.Paused, true);
    fails(['pause', 'counter'], /cannot pause container "counter": it is already paused/);
    assert.match(ok(['top', 'counter']), /sleep 0.05|sh -c/);
    assert.equal(ok(['unpause', 'counter']), 'counter\n');
    await sleep(500);
    assert.ok(count() > frozen, 'the counter goes on after unpause');
    assert.doesNotMatch(ok(['ps']), /Paused/);
    assert.equal(JSON.parse(ok(['inspect', 'counter']))[0].State.Paused, false);
    fails(['unpause', 'counter'], /cannot unpause container "counter": it is not paused/);
    ok(['rm', '-f', 'counter']);
    fails(['pause', 'counter'], /no such container: "counter"/);
    // A paused container still stops and goes away (SIGKILL thaws it, as Docker's kill).
    for (const [name, verb] of [['frozen-rm', ['rm', '-f']], ['frozen-stop', ['stop', '-t', '1']]] as const) {
      ok(['run', '-d', '--name', name, 'busybox', 'sleep', '300']);
      ok(['pause', name]);
      const t0 = Date.now();
      ok([...verb, name]);
      assert.ok(Date.now() - t0 < 8000, `${verb.join(' ')} of a paused container took ${Date.now() - t0} ms`);
    }
    assert.match(ok(['ps', '-a']), /Exited \(137\) .* frozen-stop$/m);
    ok(['rm', 'frozen-stop']);
  });

  it('rename: the new name resolves, the old one is free; names stay unique', () => {
    const id = ok(['run', '-d', '--name', 'before', 'busybox', 'sleep', '300']).trim();
    ok(['run', '-d', '--name', 'taken', 'busybox', 'sleep', '300']);
    ok(['rename', 'before', 'after']);
    assert.equal(JSON.parse(ok(['inspect', 'after']))[0].Id, id);
    assert.equal(JSON.parse(ok(['inspect', 'after']))[0].Name, '/after');
    assert.match(ok(['ps']), / after$/m);
    fails(['inspect', 'before'], /no such container: "before"/);
    fails(['rename', 'after', 'taken'], /the name "taken" is already used by container/);
    fails(['rename', 'after', 'after'], /is already named "after"/); // as Docker's: an error, not a no-op
    fails(['rename', 'after', 'bad/name'], /container name "bad\/name" is not valid/);
    fails(['rename', 'ghost', 'x'], /no such container: "ghost"/);
    // The old name can be used again.
    ok(['run', '-d', '--name', 'before', 'busybox', 'sleep', '300']);
    ok(['rm', '-f', 'before', 'after', 'taken']);
  });

  it('inspect -f, ps --format and images --format take Go templates, as Docker\'s', () => {
    const id = ok(['run', '-d', '--name', 'fmt1', '-l', 'tier=web', '-e', 'X=1', 'busybox', 'sleep', '300']).trim();
    ok(['create', '--name', 'fmt2', 'busybox', 'true']);
    const pid = Number(ok(['inspect', '-f', '{{.State.Pid}}', 'fmt1']).trim());
    assert.ok(pid > 1 && fs.existsSync(`/proc/${pid}`), `State.Pid ${pid} is a live host process`);
    assert.equal(ok(['inspect', '--format', '{{.Name}} {{.State.Running}} {{index .Config.Labels "tier"}}', 'fmt1', 'fmt2']),
      '/fmt1 true web\n/fmt2 false <no value>\n');
    assert.equal(ok(['inspect', '-f', '{{range .Config.Env}}{{if eq . "X=1"}}{{.}}{{end}}{{end}}', 'fmt1']), 'X=1\n');
    assert.equal(JSON.parse(ok(['inspect', '-f', '{{json .State}}', 'fmt1'])).Pid, pid);
    // Rows: one line each; "table" adds the header and aligns the columns.
    assert.equal(ok(['ps', '--format', '{{.ID}} {{.Names}} {{.State}} {{.Labels}}']), `${id.slice(0, 12)} fmt1 running tier=web\n`);
    assert.deepEqual(ok(['ps', '-a', '--format', '{{.Names}}']).trim().split('\n').sort(), ['fmt1', 'fmt2']);
    // Newest first; -l and -n look at every state (fmt2 is only created).
    assert.equal(ok(['ps', '-l', '--format', '{{.Names}}']), 'fmt2\n');
    assert.equal(ok(['ps', '-n', '2', '--format', '{{.Names}}']), 'fmt2\nfmt1\n');
    fails(['ps', '-n', 'two'], /--last "two" is not a number/);
    // Docker's ancestor, before, since and exited filters.
    const names = (args: string[]) => ok(['ps', ...args, '--format', '{{.Names}}']);
    assert.equal(names(['-a', '--filter', 'ancestor=busybox']), 'fmt2\nfmt1\n');
    assert.equal(names(['-a', '--filter', 'ancestor=no-such-image']), '');
    assert.equal(names(['--filter', 'before=fmt2']), 'fmt1\n');
    assert.equal(names(['--filter', 'since=fmt1']), 'fmt2\n');
    assert.equal(berth(['run', '--name', 'fmt3', 'busybox', 'sh', '-c', 'exit 3']).status, 3);
    assert.equal(names(['--filter', 'exited=3']), 'fmt3\n');
    assert.equal(names(['--filter', 'exited=0']), '');
    fails(['ps', '--filter', 'before=ghost'], /no such container: "ghost"/);
    ok(['rm', 'fmt3']);
    // -n 0 and -n -1 (Docker's default) set no limit: the running ones, as plain ps.
    assert.equal(ok(['ps', '-n', '0', '--format', '{{.Names}}']), 'fmt1\n');
    assert.equal(ok(['ps', '-n', '-1', '--format', '{{.Names}}']), 'fmt1\n');
    const t = ok(['ps', '-a', '--format', 'table {{.Names}}\\t{{.Status}}']).trimEnd().split('\n');
    assert.match(t[0], /^NAMES {3}STATUS$/);
    assert.ok(t.some((l) => /^fmt2 {4}Created$/.test(l)), t.join('\n'));
    assert.equal(ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), 'localhost/busybox:latest\n');
    assert.equal(ok(['image', 'inspect', '-f', '{{.Config.Cmd}}', 'busybox']), '[sh]\n');
    // inspect finds an image by a name no container has, as Docker's; --type narrows it.
    assert.equal(ok(['inspect', '-f', '{{.RepoTags}}', 'busybox']), '[localhost/busybox:latest]\n');
    fails(['inspect', '--type', 'container', 'busybox'], /no such container: "busybox"/);
    assert.equal(ok(['inspect', '--type', 'image', '-f', '{{.Os}}', 'busybox']), 'linux\n');
    // A bad template or a missing field: exit 125, naming it; nothing printed on stdout.
    const r = berth(['inspect', '-f', '{{.State.Nope}}', 'fmt1']);
    assert.equal(r.status, 125);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no field "Nope" at \.State\.Nope/);
    fails(['ps', '--format', '{{if .Names}}'], /missing \{\{end\}\}/);
    ok(['rm', '-f', 'fmt1', 'fmt2']);
  });

  it('stats --no-stream: CPU, memory against the limit, processes; json and templates; refuses a stopped container', () => {
    ok(['run', '-d', '--name', 'busy', '-m', '64m', 'busybox', 'sh', '-c', 'sleep 300 & while :; do :; done']);
    ok(['create', '--name', 'idle', 'busybox', 'true']);
    const rows = ok(['stats', '--no-stream', '--format', 'json', 'busy']).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.length, 1);
    const busy = rows[0];
    assert.equal(busy.Name, 'busy');
    assert.ok(parseFloat(busy.CPUPerc) > 5, `a busy loop uses some CPU: ${busy.CPUPerc}`);
    assert.match(busy.MemUsage, /^[\d.]+(B|KiB|MiB) \/ 64MiB$/);
    assert.equal(busy.PIDs, '2'); // sh and its sleep
    const table = ok(['stats', '--no-stream']);
    assert.match(table, /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS\n/);
    assert.match(table, /^[0-9a-f]{12} +busy +[\d.]+% /m);
    assert.doesNotMatch(table, / idle /, 'only running containers');
    assert.equal(ok(['stats', '--no-stream', '--format', '{{.Name}}:{{.PIDs}}', 'busy']), 'busy:2\n');
    fails(['stats', '--no-stream', 'idle'], /container "idle" is not running/);
    ok(['rm', '-f', 'busy', 'idle']);
  });

  it('diff shows added (A), changed (C) and deleted (D) paths, not the engine\'s own files', () => {
    ok(['run', '-d', '--name', 'differ', 'busybox', 'sleep', '300']);
    assert.equal(ok(['diff', 'differ']), '');
    ok(['exec', 'differ', 'sh', '-c', 'rm /bin/ls; echo more >> /etc/passwd; mkdir -p /newdir/sub; echo a > /newdir/sub/a; rm -r /tmp; mkdir /tmp']);
    assert.equal(ok(['diff', 'differ']), [
      'C /bin', 'D /bin/ls', 'C /etc', 'C /etc/passwd', 'A /newdir', 'A /newdir/sub', 'A /newdir/sub/a', 'C /tmp', '',
    ].join('\n'));
    // Still there once it has exited.
    ok(['stop', '-t', '0', 'differ']);
    assert.match(ok(['diff', 'differ']), /^D \/bin\/ls$/m);
    fails(['diff', 'ghost'], /no such container: "ghost"/);
    ok(['rm', 'differ']);
  });

  it('export writes the merged root filesystem as a tar, running or exited', () => {
    ok(['run', '-d', '--name', 'exporter', 'busybox', 'sleep', '300']);
    ok(['exec', 'exporter', 'sh', '-c', 'echo hello > /hello; rm /bin/ls']);
    const tarball = path.join(dir, 'exported.tar');
    ok(['export', '-o', tarball, 'exporter']);
    const names = spawnSync('tar', ['-tf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(names.includes('bin/busybox'), names.slice(0, 10).join(' '));
    assert.ok(names.includes('hello'));
    assert.ok(!names.includes('bin/ls'), 'a deleted file is not exported');
    assert.equal(spawnSync('tar', ['-xOf', tarball, 'hello'], { encoding: 'utf8' }).stdout, 'hello\n');
    // An exited container's overlay is mounted for the export and unmounted after.
    ok(['stop', '-t', '0', 'exporter']);
    const id = JSON.parse(ok(['inspect', 'exporter']))[0].Id;
    assert.deepEqual(mountsOf(id), []);
    const r = spawnSync(BERTH, ['--root', root, 'export', 'exporter'], { maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, String(r.stderr));
    fs.writeFileSync(tarball, r.stdout);
    assert.ok(spawnSync('tar', ['-tf', tarball], { encoding: 'utf8' }).stdout.split('\n').includes('hello'));
    assert.deepEqual(mountsOf(id), []);
    fails(['export', '-o', tarball, 'ghost'], /no such container: "ghost"/);
    ok(['rm', 'exporter']);
  });

  it('cp: a round trip through exec -i, directories both ways, Docker\'s destination rules, clear errors', () => {
    ok(['run', '-d', '--name', 'copier', 'busybox', 'sleep', '300']);
    ok(['exec', '-i', 'copier', 'sh', '-c', 'cat > /f'], 'data\n');
    const host = path.join(dir, 'cp');
    fs.mkdirSync(host);
    ok(['cp', 'copier:/f', path.join(host, 'f')]);
    assert.equal(fs.readFileSync(path.join(host, 'f'), 'utf8'), 'data\n');
    // Into an existing directory: under the source's name.
    ok(['cp', 'copier:/etc/passwd', host]);
    assert.match(fs.readFileSync(path.join(host, 'passwd'), 'utf8'), /^root:/);

    // A host directory in, with a symlink kept as a symlink, then out again.
    const src = path.join(host, 'tree');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'file'), 'in the tree\n');
    fs.chmodSync(path.join(src, 'sub', 'file'), 0o640);
    fs.symlinkSync('sub/file', path.join(src, 'link'));
    ok(['cp', src, 'copier:/tmp']);
    assert.equal(ok(['exec', 'copier', 'cat', '/tmp/tree/link']), 'in the tree\n');
    assert.match(ok(['exec', 'copier', 'ls', '-l', '/tmp/tree/sub/file']), /^-rw-r----- +1 root +root /);
    ok(['cp', src, 'copier:/renamed']); // a new name: the directory becomes it
    assert.equal(ok(['exec', 'copier', 'cat', '/renamed/sub/file']), 'in the tree\n');
    ok(['cp', 'copier:/renamed', path.join(host, 'back')]);
    assert.equal(fs.readFileSync(path.join(host, 'back', 'sub', 'file'), 'utf8'), 'in the tree\n');
    assert.equal(fs.readlinkSync(path.join(host, 'back', 'link')), 'sub/file');

    fails(['cp', 'copier:/no/such/file', host], /^berth: container path "copier:\/no\/such\/file": no such file or directory$/m);
    fails(['cp', path.join(host, 'f'), 'copier:/no/such/dir/f'], /container path "copier:\/no\/such\/dir\/f": no such file or directory/);
    fails(['cp', path.join(host, 'nothing'), 'copier:/tmp'], /host path ".*nothing": no such file or directory/);
    fails(['cp', 'copier:/f', path.join(host, 'missing-dir', 'f')], /its directory does not exist/);
    fails(['cp', 'ghost:/f', host], /no such container: "ghost"/);
    fails(['cp', host, path.join(host, 'x')], /cp needs one side as CONTAINER:PATH/);

    // Files copied out of an exited container (its overlay is mounted for the copy).
    ok(['stop', '-t', '0', 'copier']);
    ok(['cp', 'copier:/f', path.join(host, 'f2')]);
    assert.equal(fs.readFileSync(path.join(host, 'f2'), 'utf8'), 'data\n');
    ok(['rm', 'copier']);
  });

  it('export -o into a missing directory or onto a full disk fails in one line and leaves no file', () => {
    ok(['create', '--name', 'nospace', 'busybox', 'true']);
    fails(['export', '-o', path.join(dir, 'no-such-dir', 'x.tar'), 'nospace'], /^berth: export container "nospace": cannot write in .*no-such-dir: no such file or directory$/m);
    const small = path.join(dir, 'small');
    fs.mkdirSync(small);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]).status, 0);
    try {
      fs.writeFileSync(path.join(small, 'x.tar'), 'the archive before\n');
      const r = berth(['export', '-o', path.join(small, 'x.tar'), 'nospace']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /^berth: export container "nospace" to ".*x\.tar": (Cannot write: No space left on device|Wrote only \d+ of \d+ bytes)\n$/);
      // The file that was there is untouched, and no partial archive is left beside it.
      assert.deepEqual(fs.readdirSync(small), ['x.tar']);
      assert.equal(fs.readFileSync(path.join(small, 'x.tar'), 'utf8'), 'the archive before\n');
    } finally {
      spawnSync('umount', [small]);
    }
    ok(['rm', 'nospace']);
  });

  it('export and cp - into a pipe whose reader leaves (| head -c 100) end quietly with 141', () => {
    ok(['create', '--name', 'piped', 'busybox', 'true']);
    for (const cmd of ['export piped', 'cp piped:/bin -']) {
      // Before, export said 'export container "piped" to "-": tar exit null', with 125.
      const r = spawnSync('bash', ['-c', `"${BERTH}" --root "${root}" ${cmd} | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`],
        { encoding: 'utf8' });
      assert.equal(r.stdout, '141\n', `${cmd}: ${r.stderr}`);
      assert.equal(r.stderr, '', cmd);
    }
    ok(['rm', 'piped']); // a created container goes without -f, as Docker's (before: "is created")
    assert.equal(berth(['inspect', 'piped']).status, 125);
  });

  it('cp with "-": a tar archive on stdout out of the container, and from stdin into it (Docker\'s)', () => {
    ok(['run', '-d', '--name', 'tarcp', 'busybox', 'sh', '-c', 'mkdir -p /d/sub; echo one > /d/sub/f; sleep 300']);
    const host = path.join(dir, 'tarcp');
    fs.mkdirSync(host);
    // Before, "-" was taken as a host path: a directory named "-" in the current one.
    const out = spawnSync('sh', ['-c', `"${BERTH}" --root "${root}" cp tarcp:/d - | tar -C "${host}" -xf -`], { cwd: host, encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(fs.readFileSync(path.join(host, 'd', 'sub', 'f'), 'utf8'), 'one\n');
    assert.equal(fs.existsSync(path.join(host, '-')), false);
    const tin = path.join(host, 'in');
    fs.mkdirSync(path.join(tin, 'x'), { recursive: true });
    fs.writeFileSync(path.join(tin, 'x', 'g'), 'two\n');
    const inr = spawnSync('sh', ['-c', `tar -C "${tin}" -cf - . | "${BERTH}" --root "${root}" cp - tarcp:/d`], { encoding: 'utf8' });
    assert.equal(inr.status, 0, inr.stderr);
    assert.equal(ok(['exec', 'tarcp', 'cat', '/d/x/g', '/d/sub/f']), 'two\none\n');
    fails(['cp', 'tarcp:/no/such', '-'], /no such file or directory/);
    ok(['rm', '-f', 'tarcp']);
  });

  it('cp resolves container paths inside the container: its symlinks cannot reach the host', () => {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'host secret\n');
    ok(['run', '-d', '--name', 'hostile', 'busybox', 'sleep', '300']);
    // Absolute and ".." symlinks that would name the host directory if the host resolved them.
    ok(['exec', 'hostile', 'sh', '-c', `ln -s ${outside} /abs; ln -s ../../../../../../../../..${outside} /tmp/up; ln -s ${outside}/secret /file-link`]);
    fails(['cp', 'hostile:/abs/secret', path.join(dir, 'stolen')], /container path "hostile:\/abs\/secret": no such file or directory/);
    fails(['cp', 'hostile:/tmp/up/secret', path.join(dir, 'stolen')], /no such file or directory/);
    assert.ok(!fs.existsSync(path.join(dir, 'stolen')));
    // Copying the link itself copies a symlink, not the host file it names.
    ok(['cp', 'hostile:/file-link', path.join(dir, 'link-copy')]);
    assert.ok(fs.lstatSync(path.join(dir, 'link-copy')).isSymbolicLink());

    const payload = path.join(dir, 'payload');
    fs.writeFileSync(payload, 'planted\n');
    fails(['cp', payload, 'hostile:/abs/'], /no such directory/);
    fails(['cp', payload, 'hostile:/tmp/up/planted'], /no such file or directory/);
    // Onto the symlink /file-link: the link is replaced inside the container.
    ok(['cp', payload, 'hostile:/file-link']);
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'host secret\n');
    assert.deepEqual(fs.readdirSync(outside), ['secret']);
    assert.equal(ok(['exec', 'hostile', 'cat', '/file-link']), 'planted\n');
    ok(['rm', '-f', 'hostile']);
  });

  it('container prune removes exited containers only; info counts what there is', () => {
    const running = ok(['run', '-d', '--name', 'keeper', 'busybox', 'sleep', '300']).trim();
    const a = ok(['run', '-d', 'busybox', 'sh', '-c', 'echo x > /big; exit 1']).trim();
    const b = ok(['run', '-d', 'busybox', 'true']).trim();
    ok(['wait', a, b]);
    const info = JSON.parse(ok(['info', '--format', 'json']));
    assert.equal(info.storageDriver, 'overlay');
    assert.equal(info.images, 1);
    assert.deepEqual(info.containers, { total: 3, running: 1, paused: 0, stopped: 2 });
    assert.ok([1, 2].includes(info.cgroupVersion));
    assert.equal(info.root, root);
    const text = ok(['info']);
    assert.match(text, /^Containers: 3\n Running: 1\n Paused: 0\n Stopped: 2\nImages: 1\nStorage Driver: overlay$/m);
    assert.match(text, /^Cgroup Version: [12]$/m);
    assert.match(text, /^Runtimes: berth \(.*berth-runtime\)$/m);

    const pruned = ok(['container', 'prune', '-f']);
    assert.match(pruned, /^Deleted Containers:\n/);
    assert.ok(pruned.includes(`${a}\n`) && pruned.includes(`${b}\n`), pruned);
    assert.ok(!pruned.includes(running));
    assert.match(pruned, /Total reclaimed space: \d/);
    assert.equal(ok(['ps', '-a', '-q', '--no-trunc']), `${running}\n`);
    assert.equal(ok(['container', 'prune']), 'Total reclaimed space: 0B\n');
    ok(['rm', '-f', 'keeper']);
  });

  it('system prune removes exited containers, unused networks and (with --volumes) anonymous volumes; keeps what is in use', () => {
    const net = (name: string) => ok(['network', 'create', name]).trim();
    net('sp-used');
    net('sp-unused');
    const keeper = ok(['run', '-d', '--network', 'sp-used', '-v', 'sp-named:/n', '-v', '/anon-kept', 'busybox', 'sleep', '300']).trim();
    const done = ok(['run', '-d', '-v', '/anon-freed', 'busybox', 'true']).trim();
    ok(['wait', done]);
    ok(['volume', 'create', 'sp-idle']);
    const volumesOf = (id: string) => JSON.parse(ok(['inspect', id]))[0].Mounts.filter((m: any) => m.Type === 'volume').map((m: any) => m.Name);
    const freed = volumesOf(done)[0];
    const kept = volumesOf(keeper).filter((n: string) => n !== 'sp-named')[0];
    try {
      const out = ok(['system', 'prune', '-f', '--volumes']);
      assert.match(out, new RegExp(`^Deleted Containers:\n${done}\n\nDeleted Networks:\nsp-unused\n\nDeleted Volumes:\n${freed}\n\n`));
      assert.match(out, /Total reclaimed space: \d/);
      assert.equal(ok(['ps', '-a', '-q', '--no-trunc']), `${keeper}\n`);
      assert.deepEqual(ok(['network', 'ls', '--format', 'json']).includes('sp-used'), true);
      assert.ok(ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']).split('\n').includes('sp-used bridge'));
      assert.match(ok(['volume', 'ls', '--format', 'table {{.Name}}\\t{{.Driver}}']), /^VOLUME NAME +DRIVER\n(.*\n)*sp-named +local\n/);
      assert.equal(berth(['network', 'inspect', 'sp-unused']).status, 125);
      const vols = ok(['volume', 'ls', '-q']).trim().split('\n').sort();
      assert.deepEqual(vols, [kept, 'sp-idle', 'sp-named'].sort()); // named ones stay, as Docker's
      assert.equal(ok(['images', '--format', '{{.Repository}}']), 'localhost/busybox\n', 'a tagged image stays without -a');
      // Nothing more to do: a second run reports only the total.
      assert.equal(ok(['system', 'prune', '-f']), 'Total reclaimed space: 0B\n');
    } finally {
      berth(['rm', '-f', '-v', keeper]);
      berth(['network', 'rm', 'sp-used']);
      berth(['volume', 'rm', 'sp-named', 'sp-idle']);
    }
  });
});
