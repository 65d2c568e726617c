// Regressions from a hostile review of berth-runtime: each case is a config, a process
// file or a container that once crashed the runtime, was silently mishandled, or let the
// container reach the host. Each leaves no state, cgroup or mount behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, RUNTIME, TestEnv } from '../helpers';

const skip = requires('root');

describe('runtime review regressions', { skip }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('review');
  });
  after(() => env.cleanupAndCheck());


  it('refuses a cgroupsPath that another container is using, and leaves that container alone', () => {
    const a = env.bundle('cgowner', (c) => {
      c.process.args = ['sleep', '60'];
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', a, 'cgowner']).status, 0);
    // The second create fails (no such command): its rollback used to SIGKILL everything in
    // the shared cgroup, the first container included, and remove the cgroup.
    const b = env.bundle('cgsquat', (c) => {
      c.linux.cgroupsPath = `${env.cgParent}/cgowner`;
      c.process.args = ['no-such-command'];
    });
    const r = env.rt(['create', '--bundle', b, 'cgsquat']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cgroup .*\/cgowner already has processes in it/);
    env.assertNoState('cgsquat');
    assert.equal(JSON.parse(env.rt(['state', 'cgowner']).stdout).status, 'running');
    assert.equal(env.rt(['delete', '--force', 'cgowner']).status, 0);
  });

  it('resolves a relative bind mount source against the bundle, not the caller\'s directory', () => {
    const b = env.bundle('relbind', (c) => {
      c.mounts.push({ destination: '/data', type: 'bind', source: 'data', options: ['rbind'] });
      c.process.args = ['cat', '/data/f'];
    });
    fs.mkdirSync(path.join(b, 'data'));
    fs.writeFileSync(path.join(b, 'data', 'f'), 'from the bundle\n');
    const elsewhere = path.join(env.dir, 'elsewhere');
    fs.mkdirSync(path.join(elsewhere, 'data'), { recursive: true });
    fs.writeFileSync(path.join(elsewhere, 'data', 'f'), 'from the caller\'s cwd\n');
    const r = spawnSync(RUNTIME, ['--root', env.root, 'run', '--bundle', b, 'relbind'], { cwd: elsewhere, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'from the bundle\n');
    env.assertNoState('relbind');
  });

  it('refuses a mount onto the container\'s root, spelled out or through an image symlink', () => {
    const b = env.bundle('slashdst', (c) => {
      c.mounts.push({ destination: '/proc/../..', type: 'tmpfs', source: 'tmpfs' });
    });
    const r = env.rt(['create', '--bundle', b, 'slashdst']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /mounts\[\d+\]\.destination "\/proc\/\.\.\/\.\." is the container's root directory/);
    env.assertNoState('slashdst');

    const l = env.bundle('slashlink', (c) => {
      c.mounts.push({ destination: '/data', type: 'tmpfs', source: 'tmpfs' });
    });
    fs.symlinkSync('/', path.join(l, 'rootfs', 'data'));
    const s = env.rt(['create', '--bundle', l, 'slashlink']);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /refused: mount onto the container's root directory through \/data/);
    env.assertNoState('slashlink');
  });

  it('runs a process without process.user as root instead of crashing', () => {
    const b = env.bundle('nouser', (c) => {
      delete c.process.user;
      c.process.args = ['id', '-u'];
    });
    const r = env.rt(['run', '--bundle', b, 'nouser']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '0\n');
    assert.doesNotMatch(r.stderr, /internal error/);
  });

  it('refuses process.user.username, empty args[0] and an over-long hostname by name', () => {
    const cases: [string, (c: any) => void, RegExp][] = [
      ['username', (c) => { c.process.user.username = 'nobody'; }, /process\.user\.username is not supported/],
      ['emptyarg', (c) => { c.process.args = ['']; }, /process\.args\[0\] is empty/],
      ['longhost', (c) => { c.hostname = 'h'.repeat(5000); }, /hostname is 5000 bytes long; Linux allows at most 64/],
    ];
    for (const [id, edit, want] of cases) {
      const r = env.rt(['create', '--bundle', env.bundle(id, edit), id]);
      assert.equal(r.status, 1, id);
      assert.match(r.stderr, want);
      assert.ok(r.stderr.length < 500, `${id}: message is ${r.stderr.length} bytes`);
      env.assertNoState(id);
    }
  });

  it('applies every one of 300 additional gids', () => {
    const gids = Array.from({ length: 300 }, (_, i) => 1000 + i);
    const b = env.bundle('manygids', (c) => {
      c.process.user.additionalGids = gids;
      c.process.args = ['sh', '-c', 'grep ^Groups: /proc/self/status'];
    });
    const r = env.rt(['run', '--bundle', b, 'manygids']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.replace('Groups:', '').trim().split(/\s+/).map(Number), gids);
  });

  it('validates an exec --process file instead of crashing or running as uid 0', () => {
    const b = env.bundle('execp', (c) => {
      c.process.args = ['sleep', '60'];
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'execp']).status, 0);
    const file = path.join(env.dir, 'process.json');
    const cases: [string, RegExp][] = [
      ['{}', /process file ".*" does not match the OCI runtime-spec schema: process must have required property 'cwd'/],
      ['null', /process must be object/],
      ['{"args":["id"],"cwd":"/","user":{"uid":"a","gid":0}}', /process\.user\.uid must be integer/],
      ['{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}', /process\.args is missing or empty/],
    ];
    for (const [text, want] of cases) {
      fs.writeFileSync(file, text);
      const r = env.rt(['exec', '--process', file, 'execp']);
      assert.equal(r.status, 1, text);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    fs.writeFileSync(file, '{"args":["id","-u"],"cwd":"/","user":{"uid":5,"gid":6}}');
    const ok = env.rt(['exec', '--process', file, 'execp']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, '5\n');
    assert.equal(env.rt(['delete', '--force', 'execp']).status, 0);
  });

  it('runs a hook that does not read its state on stdin', () => {
    // The state is bigger than a pipe: /bin/true exits before it is written, and the EPIPE
    // used to fail the create although the hook succeeded.
    const b = env.bundle('hookstdin', (c) => {
      c.annotations = { big: 'x'.repeat(256 * 1024) };
      c.hooks = { createRuntime: [{ path: '/bin/true' }] };
      c.process.args = ['true'];
    });
    const r = env.rt(['run', '--bundle', b, 'hookstdin']);
    assert.equal(r.status, 0, r.stderr);
    env.assertNoState('hookstdin');
    const f = env.bundle('hookfalse', (c) => {
      c.annotations = { big: 'x'.repeat(256 * 1024) };
      c.hooks = { createRuntime: [{ path: '/bin/false' }] };
    });
    const bad = env.rt(['create', '--bundle', f, 'hookfalse']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /createRuntime hook \/bin\/false failed: exit status 1/);
    env.assertNoState('hookfalse');
  });

  it('runs berth-init from a sealed in-memory copy, so /proc/PID/exe cannot reach the host binary', () => {
    // CVE-2019-5736: a container process that opened /proc/PID/exe of a berth-init (an exec,
    // or one it re-ran through "#!/proc/self/exe") could rewrite native/build/berth-init.
    const b = env.bundle('exe', (c) => {
      c.process.args = ['sleep', '60'];
    });
    assert.equal(env.rt(['create', '--bundle', b, 'exe']).status, 0);
    const pid = JSON.parse(env.rt(['state', 'exe']).stdout).pid as number;
    assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:berth-init/);
    // Writing through the link fails: the copy is sealed (and busy while it runs).
    assert.throws(() => fs.writeFileSync(`/proc/${pid}/exe`, 'x', { flag: 'a' }), /EPERM|ETXTBSY/);
    assert.equal(env.rt(['delete', '--force', 'exe']).status, 0);
  });
});
