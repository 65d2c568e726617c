// Security group: regression tests from a hostile review of cp, --userns, --security-opt
// and attach. Each test reproduces a bug that was found (see its name) with real
// containers from the embedded busybox image, and checks what the user (or the host)
// would see.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, berthSync, engineRoot, processesWith, requires, RUNTIME, sleep, TOP, waitFor, type Result } from '../helpers';

const skip = requires('root');
/** How long a killed run's directory must be left alone (containers.ts ORPHAN_MIN_AGE_MS) and a bit. */
const ORPHAN_WAIT_MS = 2200;

const hasContainersRange = (file: string) =>
  fs.existsSync(file) && fs.readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith('containers:'));
const skipUserns = skip ?? (hasContainersRange('/etc/subuid') && hasContainersRange('/etc/subgid')
  ? undefined : 'needs "containers" ranges in /etc/subuid and /etc/subgid (run setup.sh)');

describe('security review: cp, userns, security-opt, attach', { skip }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[], input?: string): Result => berthSync(root, args, { input });
  const ok = (args: string[], input?: string): string => {
    const r = berth(args, input);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(() => {
    ({ dir, root } = engineRoot('secreview'));
    // A --userns container's init runs as an unprivileged host id and must reach its root.
    fs.chmodSync(dir, 0o755);
  });
  after(async () => {
    for (const id of berth(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)) berth(['rm', '-f', id]);
    const gone = await waitFor(() => processesWith(root).length === 0, 15_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    const allocations = fs.existsSync(path.join(root, 'userns'))
      ? fs.readdirSync(path.join(root, 'userns')).filter((f) => f.endsWith('.json')) : [];
    if (gone && !mounts.length) fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(gone);
    assert.deepEqual(mounts, []);
    assert.deepEqual(allocations, []);
  });

  it('cp out twice: a symlink the first cp copied out is not written through by the second', async () => {
    // Host files a hostile container would like to overwrite and open up.
    const victim = path.join(dir, 'victim');
    fs.mkdirSync(victim, { mode: 0o755 });
    fs.writeFileSync(path.join(victim, 'passwd'), 'host file\n');
    const out = path.join(dir, 'cp-out');
    fs.mkdirSync(out);
    ok(['run', '-d', '--name', 'cpsym', 'busybox', 'sh', '-c', `mkdir /data; ln -s ${victim} /data/x; sleep 600`]);
    assert.ok(await waitFor(() => berth(['exec', 'cpsym', 'test', '-L', '/data/x']).status === 0));

    ok(['cp', 'cpsym:/data', out]);
    assert.equal(fs.readlinkSync(path.join(out, 'data', 'x')), victim);
    // The container turns the symlink into a directory of the same name, then is copied again.
    ok(['exec', 'cpsym', 'sh', '-c', 'rm /data/x; mkdir /data/x; echo from-container > /data/x/passwd; chmod 777 /data/x']);
    ok(['cp', 'cpsym:/data', out]);

    assert.equal(fs.readFileSync(path.join(victim, 'passwd'), 'utf8'), 'host file\n');
    assert.equal(fs.statSync(victim).mode & 0o777, 0o755);
    // The copy itself is what the container has now: a real directory.
    assert.ok(fs.lstatSync(path.join(out, 'data', 'x')).isDirectory());
    assert.equal(fs.readFileSync(path.join(out, 'data', 'x', 'passwd'), 'utf8'), 'from-container\n');
    ok(['rm', '-f', 'cpsym']);
  });

  it('cp into a --userns container: what is copied in belongs to root inside, running or stopped', { skip: skipUserns }, () => {
    const src = path.join(dir, 'cp-in');
    fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'f'), 'in\n');
    fs.writeFileSync(path.join(dir, 'cp-in.txt'), 'in\n');
    ok(['run', '-d', '--name', 'cpuserns', '--userns=auto', 'busybox', 'sleep', '600']);
    ok(['cp', src, 'cpuserns:/tmp/']);
    ok(['cp', path.join(dir, 'cp-in.txt'), 'cpuserns:/tmp/running.txt']);
    assert.deepEqual(ok(['exec', 'cpuserns', 'stat', '-c', '%u:%g %n', '/tmp/cp-in', '/tmp/cp-in/sub', '/tmp/cp-in/sub/f',
      '/tmp/running.txt']).trim().split('\n'), ['0:0 /tmp/cp-in', '0:0 /tmp/cp-in/sub', '0:0 /tmp/cp-in/sub/f', '0:0 /tmp/running.txt']);
    // Root inside can change what was copied in.
    ok(['exec', 'cpuserns', 'sh', '-c', 'echo more >> /tmp/running.txt && rm -r /tmp/cp-in']);

    ok(['stop', '-t', '0', 'cpuserns']);
    ok(['cp', path.join(dir, 'cp-in.txt'), 'cpuserns:/root/stopped.txt']);
    ok(['start', 'cpuserns']);
    assert.equal(ok(['exec', 'cpuserns', 'stat', '-c', '%u:%g', '/root/stopped.txt']).trim(), '0:0');
    ok(['rm', '-f', 'cpuserns']);
  });

  it('--security-opt seccomp= a FIFO, /dev/zero or a profile with wrongly typed includes: exit 125 at once, nothing left', async () => {
    const before = fs.readdirSync(path.join(root, 'containers')).sort();
    const fifo = path.join(dir, 'profile.fifo');
    spawnSync('mkfifo', [fifo]);
    const typed = path.join(dir, 'typed.json');
    fs.writeFileSync(typed, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', includes: { caps: 'CAP_SYS_ADMIN' } }] }));
    for (const [profile, message] of [[fifo, /not a regular file/], ['/dev/zero', /not a regular file/],
      [typed, /includes: caps and arches must be lists of strings/]] as const) {
      const started = Date.now();
      const r = berthSync(root, ['run', '--rm', '--security-opt', `seccomp=${profile}`, 'busybox', 'true'], { timeout: 20_000 });
      assert.equal(r.status, 125, `${profile}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.ok(Date.now() - started < 15_000);
    }
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')).sort(), before);
  });

  it('--userns=auto:size=1 runs (devpts gets gid=5 only where it is mapped), with and without -t', { skip: skipUserns }, () => {
    assert.equal(ok(['run', '--rm', '--userns=auto:size=1', 'busybox', 'sh', '-c', 'id -u; wc -l < /proc/self/uid_map']).trim(), '0\n1');
    const r = berth(['run', '--rm', '-t', '--userns=auto:size=1', 'busybox', 'tty']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/0/);
    // Where gid 5 is mapped, the terminal still belongs to the tty group.
    assert.equal(ok(['run', '--rm', '-t', '--userns=auto:size=1024', 'busybox', 'stat', '-c', '%g', '/dev/pts/0']).trim(), '5');
  });

  it('--uidmap without root, or more maps than the kernel takes: a clear error (exit 125), nothing left', { skip: skipUserns }, () => {
    const before = fs.readdirSync(path.join(root, 'containers')).sort();
    let r = berth(['run', '--rm', '--uidmap', '1:2000000:100', 'busybox', 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /no map for container id 0/);
    r = berth(['run', '--rm', ...Array.from({ length: 400 }, (_, i) => ['--uidmap', `${i}:${2000000 + i}:1`]).flat(), 'busybox', 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /more than the kernel takes/);
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')).sort(), before);
  });

  it('berth-runtime: a config.json with more uid maps than fit in a page fails cleanly in berth-init', () => {
    const bundle = path.join(dir, 'many-maps');
    fs.cpSync(path.join(TOP, 'build', 'busybox-bundle'), bundle, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    config.process.args = ['true'];
    config.process.terminal = false;
    config.linux.namespaces.push({ type: 'user' });
    // 400 lines of about 17 bytes: berth-init's 4096-byte buffer used to be written past.
    config.linux.uidMappings = Array.from({ length: 400 }, (_, i) => ({ containerID: i * 10, hostID: 3000000000 + i * 10, size: 1 }));
    config.linux.gidMappings = [{ containerID: 0, hostID: 3000000000, size: 65536 }];
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
    const rtRoot = path.join(dir, 'rt-root');
    const r = spawnSync(RUNTIME, ['--root', rtRoot, 'run', '--bundle', bundle, 'secreview-maps'], { encoding: 'utf8', timeout: 30_000 });
    spawnSync(RUNTIME, ['--root', rtRoot, 'delete', '-f', 'secreview-maps']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /uid_map too long/);
  });

  it('attach: a reader that goes away ends it (141, no stack trace); a slow reader does not grow its memory', async () => {
    ok(['run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', 'sleep 1; while :; do echo line; sleep 0.05; done']);
    const piped = spawnSync('bash', ['-c', `"${BERTH}" --root "${root}" attach --no-stdin chatty | head -2; echo "rc=\${PIPESTATUS[0]}"`],
      { encoding: 'utf8', timeout: 30_000 });
    assert.equal(piped.stdout, 'line\nline\nrc=141\n');
    assert.doesNotMatch(piped.stderr, /Unhandled|EPIPE|at /);
    ok(['rm', '-f', 'chatty']);

    // A reader that takes nothing: berth attach must not buffer the container's output.
    ok(['run', '-d', '--name', 'flood', 'busybox', 'sh', '-c', 'sleep 1; yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx']);
    const attach = spawn(BERTH, ['--root', root, 'attach', '--no-stdin', 'flood'], { stdio: ['ignore', 'pipe', 'pipe'] });
    attach.stdout.pause();
    let peak = 0;
    for (let i = 0; i < 12; i++) {
      await sleep(500);
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${attach.pid}/status`, 'utf8'));
      peak = Math.max(peak, Number(m?.[1] ?? 0));
    }
    attach.kill('SIGKILL');
    ok(['rm', '-f', 'flood']);
    assert.ok(peak > 0 && peak < 150_000, `berth attach grew to ${peak} kB`);
  });

  it('cp out never opens a device node the container swaps in for a file (race)', () => {
    // 250:250 has no driver: opening it fails with ENXIO, so an open by cp shows in its error.
    ok(['run', '-d', '--name', 'cprace', 'busybox', 'sh', '-c',
      'while :; do echo data > /tmp/f.new; mv /tmp/f.new /tmp/f; mknod /tmp/d.new c 250 250; mv /tmp/d.new /tmp/f; done']);
    const out = path.join(dir, 'race-out');
    fs.mkdirSync(out);
    const seen = { opened: 0, refused: 0, copied: 0 };
    for (let i = 0; i < 200; i++) {
      fs.rmSync(path.join(out, 'f'), { force: true });
      const r = berth(['cp', 'cprace:/tmp/f', path.join(out, 'f')]);
      if (/ENXIO|no such device/i.test(r.stderr)) seen.opened++;
      else if (/changed while it was copied/.test(r.stderr)) seen.refused++;
      else if (r.status === 0 && fs.existsSync(path.join(out, 'f'))) seen.copied++;
    }
    ok(['rm', '-f', 'cprace']);
    assert.equal(seen.opened, 0, JSON.stringify(seen));
    assert.ok(seen.copied > 0, JSON.stringify(seen));
  });

  it('a berth run killed before it recorded its container: the next run frees its name, mount and --userns range', () => {
    // The state such a run leaves (a narrow window, so made by hand as crash.test.ts does):
    // its name, its directory with the root filesystem mounted, its --userns allocation.
    const id = randomBytes(32).toString('hex');
    const cdir = path.join(root, 'containers', id);
    for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(cdir, d), { recursive: true });
    fs.writeFileSync(path.join(root, 'names', 'secreview-orphan'), id);
    fs.mkdirSync(path.join(root, 'userns'), { recursive: true });
    fs.writeFileSync(path.join(root, 'userns', `${id}.json`), JSON.stringify({ mode: 'auto',
      uidMappings: [{ containerID: 0, hostID: 1048576, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 1048576, size: 65536 }] }));
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(cdir, 'rootfs')]).status, 0);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(cdir, old, old);

    // Before: "name in use by container ..." and "berth rm" could not find it, for ever.
    const r = berth(['run', '--rm', '--name', 'secreview-orphan', 'busybox', 'true']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!fs.existsSync(cdir));
    assert.ok(!fs.existsSync(path.join(root, 'userns', `${id}.json`)));
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(id));
  });

  it('a berth run --userns=auto killed at any instant leaves nothing the next commands do not clean', { skip: skipUserns }, async () => {
    for (let delay = 20; delay <= 200; delay += 25) {
      const child = spawn(BERTH, ['--root', root, 'run', '-d', '--name', 'secreview-killed', '--userns=auto', 'busybox', 'sleep', '60'],
        { stdio: 'ignore' });
      const closed = new Promise((res) => child.once('close', res));
      await sleep(delay);
      child.kill('SIGKILL');
      await closed;
      await sleep(ORPHAN_WAIT_MS);
      // The name is usable again (freeing what a killed run left), and rm cleans the rest.
      const r = berth(['run', '-d', '--name', 'secreview-killed', '--userns=auto', 'busybox', 'true']);
      if (r.status !== 0) {
        assert.match(r.stderr, /already in use/);
        ok(['rm', '-f', 'secreview-killed']); // a recorded container: an ordinary rm
        ok(['run', '-d', '--name', 'secreview-killed', '--userns=auto', 'busybox', 'true']);
      }
      ok(['rm', '-f', 'secreview-killed']);
    }
    const live = berth(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
    // Whatever is left must be a container ps shows, and every allocation must be one of them.
    const dirs = fs.readdirSync(path.join(root, 'containers'));
    const allocations = fs.readdirSync(path.join(root, 'userns')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, 64));
    for (const d of [...dirs, ...allocations]) {
      if (!live.includes(d)) {
        // An orphan only the next allocation reclaims: ask for one.
        ok(['run', '--rm', '--userns=auto', 'busybox', 'true']);
        break;
      }
    }
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')).filter((d) => !live.includes(d)), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'userns')).filter((f) => f.endsWith('.json') && !live.includes(f.slice(0, 64))), []);
  });

  it('berth system df and berth diff while containers create and remove files: no internal error', () => {
    const churn = 'while :; do for i in 1 2 3 4 5 6 7 8 9 10 11 12; do mkdir -p /t/$i/x/y; done; rm -rf /t; done';
    ok(['run', '-d', '--name', 'churn1', 'busybox', 'sh', '-c', churn]);
    ok(['run', '-d', '--name', 'churn2', 'busybox', 'sh', '-c', churn]);
    const failures: string[] = [];
    for (let i = 0; i < 100; i++) {
      const r = berth(['system', 'df']);
      if (r.status !== 0) failures.push(r.stderr.split('\n')[0]);
    }
    for (let i = 0; i < 40; i++) {
      const r = berth(['diff', 'churn1']);
      if (r.status !== 0) failures.push(r.stderr.split('\n')[0]);
    }
    ok(['rm', '-f', 'churn1', 'churn2']);
    assert.deepEqual(failures, []);
  });

  it('seccomp argument 18446744073709551615 (-1 as a u64) is refused, not compiled as 0 (berth run and berth-runtime)', () => {
    // JSON.parse reads it as 2^64, which compiled to a rule on 0: "deny kill with signal -1"
    // denied kill(pid, 0).
    const rule = '{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":18446744073709551615,"op":"SCMP_CMP_EQ"}]}';
    const profile = path.join(dir, 'u64max.json');
    fs.writeFileSync(profile, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[${rule}]}`);
    const r = berth(['run', '--rm', '--security-opt', `seccomp=${profile}`, 'busybox', 'sh', '-c', 'kill -0 $$ && echo allowed']);
    assert.equal(r.status, 125, r.stdout + r.stderr);
    assert.match(r.stderr, /not a 64-bit value JSON can carry exactly/);
    // An exact large value (2^64 - 2^32) still works.
    const exact = path.join(dir, 'exact.json');
    fs.writeFileSync(exact, '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kill"],"action":"SCMP_ACT_ERRNO","args":'
      + '[{"index":1,"value":18446744069414584320,"valueTwo":18446744069414584320,"op":"SCMP_CMP_MASKED_EQ"}]}]}');
    assert.equal(ok(['run', '--rm', '--security-opt', `seccomp=${exact}`, 'busybox', 'sh', '-c', 'kill -0 $$ && echo allowed']), 'allowed\n');

    const bundle = path.join(dir, 'u64-bundle');
    fs.cpSync(path.join(TOP, 'build', 'busybox-bundle'), bundle, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    config.process.args = ['sh', '-c', 'kill -0 $$ && echo allowed'];
    config.process.terminal = false;
    config.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: ['RULE'] };
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config).replace('"RULE"', rule));
    const rtRoot = path.join(dir, 'rt-root-u64');
    const rt = spawnSync(RUNTIME, ['--root', rtRoot, 'run', '--bundle', bundle, 'secreview-u64'], { encoding: 'utf8', timeout: 30_000 });
    spawnSync(RUNTIME, ['--root', rtRoot, 'delete', '-f', 'secreview-u64']);
    assert.notEqual(rt.status, 0, rt.stdout);
    assert.match(rt.stderr, /not a 64-bit unsigned integer/);
  });

  it('--user outside the --userns map: refused with a clear error (125), not exit 127 from setresuid', { skip: skipUserns }, () => {
    const before = fs.readdirSync(path.join(root, 'containers')).sort();
    for (const [user, kind] of [['5000', 'uid'], ['0:5000', 'gid']]) {
      const r = berth(['run', '--rm', '--userns=auto:size=1000', '--user', user, 'busybox', 'id']);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`${kind} 5000 is not mapped`));
    }
    assert.equal(ok(['run', '--rm', '--userns=auto:size=1000', '--user', '999:999', 'busybox', 'id', '-u']), '999\n');
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')).sort(), before);
  });
});
