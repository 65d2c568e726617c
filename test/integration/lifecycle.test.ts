// The runc verbs on one container each: create, start, state, kill, delete, exec, ps,
// list, pause and resume, and hooks with the state on stdin.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv, waitFor } from '../helpers';

const skip = requires('root');

describe('lifecycle', { skip, concurrency: 2 }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('lifecycle');
  });
  after(() => env.cleanupAndCheck());

  const status = (id: string) => JSON.parse(env.rt(['state', id]).stdout).status;

  it('goes created -> running -> stopped -> deleted, with the OCI state JSON', async () => {
    const b = env.bundle('life', (c) => {
      c.process.args = ['sh', '-c', 'touch /started; sleep 30'];
    });
    const pidFile = path.join(env.dir, 'life.pid');
    const c = env.rt(['create', '--bundle', b, '--pid-file', pidFile, 'life']);
    assert.equal(c.status, 0, c.stderr);
    const st = JSON.parse(env.rt(['state', 'life']).stdout);
    assert.equal(st.status, 'created');
    assert.equal(st.id, 'life');
    assert.equal(st.bundle, b);
    assert.equal(String(st.pid), fs.readFileSync(pidFile, 'utf8'));
    assert.equal(fs.existsSync(path.join(b, 'rootfs/started')), false, 'the process ran before start');

    assert.equal(env.rt(['start', 'life']).status, 0);
    assert.equal(status('life'), 'running');
    assert.ok(await waitFor(() => fs.existsSync(path.join(b, 'rootfs/started'))));

    const list = JSON.parse(env.rt(['list', '--format', 'json']).stdout);
    assert.ok(list.some((x: any) => x.id === 'life' && x.status === 'running'));

    assert.equal(env.rt(['kill', 'life', 'KILL']).status, 0);
    assert.ok(await waitFor(() => status('life') === 'stopped'));
    assert.equal(env.rt(['delete', 'life']).status, 0);
    assert.equal(env.rt(['state', 'life']).status, 1);
  });

  it('execs into a running container, in its namespaces', () => {
    const b = env.bundle('ex', (c) => {
      c.process.args = ['sleep', '30'];
      c.hostname = 'exec-host';
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'ex']).status, 0);
    const r = env.rt(['exec', 'ex', 'sh', '-c', 'hostname; cat /proc/1/cmdline; echo; ls /sys/class/net; exit 5']);
    assert.equal(r.status, 5, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['exec-host', 'sleep\u000030\u0000', 'lo']);

    const ps = JSON.parse(env.rt(['ps', '--format', 'json', 'ex']).stdout);
    assert.equal(ps.length, 1);
    const table = env.rt(['ps', 'ex']).stdout;
    assert.match(table, /PID/);
    assert.match(table, /sleep 30/);

    const missing = env.rt(['exec', 'ex', 'no-such-tool']);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /executable "no-such-tool" not found/);
    assert.equal(env.rt(['delete', '--force', 'ex']).status, 0);
  });

  it('pauses and resumes through the freezer', async () => {
    const b = env.bundle('frz', (c) => {
      c.process.args = ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done'];
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'frz']).status, 0);
    const count = () => Number(fs.readFileSync(path.join(b, 'rootfs/tmp/count'), 'utf8') || 0);
    assert.ok(await waitFor(() => fs.existsSync(path.join(b, 'rootfs/tmp/count'))));
    assert.equal(env.rt(['pause', 'frz']).status, 0);
    assert.equal(status('frz'), 'paused');
    const frozen = count();
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(count(), frozen, 'the container ran while paused');
    assert.equal(env.rt(['resume', 'frz']).status, 0);
    assert.equal(status('frz'), 'running');
    assert.ok(await waitFor(() => count() > frozen));
    assert.equal(env.rt(['delete', '--force', 'frz']).status, 0);
  });

  it('runs every hook kind with the state on stdin', () => {
    const log = path.join(env.dir, 'hooks.log');
    const hook = path.join(env.dir, 'hook.sh');
    fs.writeFileSync(hook, `#!/bin/sh\nread -r state\necho "$1 $state" >> ${log}\n`, { mode: 0o755 });
    const b = env.bundle('hooks', (c) => {
      c.process.args = ['true'];
      c.hooks = Object.fromEntries(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']
        .map((k) => [k, [{ path: hook, args: ['hook.sh', k] }]]));
      // startContainer runs inside the container: give it the same script there.
      fs.mkdirSync(path.join(env.dir, 'hooks-rootfs-dir'), { recursive: true });
    });
    fs.mkdirSync(path.join(b, 'rootfs', path.dirname(hook)), { recursive: true });
    fs.copyFileSync(hook, path.join(b, 'rootfs', hook));
    fs.mkdirSync(path.join(b, 'rootfs', env.dir), { recursive: true });
    const r = env.rt(['run', '--bundle', b, 'hooks']);
    assert.equal(r.status, 0, r.stderr);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ')[0]),
      ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
    for (const l of lines) assert.equal(JSON.parse(l.slice(l.indexOf(' ') + 1)).id, 'hooks');
    // startContainer ran in the container's mount namespace: it wrote the rootfs's copy.
    const inside = fs.readFileSync(path.join(b, 'rootfs', log), 'utf8');
    assert.match(inside, /^startContainer \{/);
  });

  it('fails create when a hook fails, and leaves nothing', () => {
    const b = env.bundle('badhook', (c) => {
      c.hooks = { createRuntime: [{ path: '/bin/false' }] };
    });
    const r = env.rt(['create', '--bundle', b, 'badhook']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /createRuntime hook \/bin\/false failed: exit status 1/);
    assert.equal(fs.existsSync(path.join(env.root, 'badhook')), false);
  });
});
