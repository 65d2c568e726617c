// What a container is, checked from inside and outside on real bundles: its own PID 1,
// ps, /proc, hostname, mounts, network; host processes out of reach.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv, waitFor } from '../helpers';

const skip = requires('root');

describe('isolation', { skip, concurrency: 2 }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('isolation');
    // The user namespace test's root (host uid 200000) must reach its rootfs.
    fs.chmodSync(env.dir, 0o755);
  });
  // Every test above deleted its container: nothing of theirs may be left.
  after(() => env.cleanupAndCheck(false));

  const runIn = (name: string, script: string, edit?: (c: any) => void) => {
    const b = env.bundle(name, (c) => {
      c.process.args = ['sh', '-c', script];
      edit?.(c);
    });
    return env.rt(['run', '--bundle', b, name]);
  };

  it('runs the process as PID 1 of its own pid namespace', () => {
    const r = runIn('pid1', 'echo $$; cat /proc/1/cmdline | tr "\\0" " "');
    assert.equal(r.status, 0, r.stderr);
    const [pid, cmdline] = r.stdout.trim().split('\n');
    assert.equal(pid, '1');
    assert.match(cmdline, /^sh -c echo \$\$/);
  });

  it('ps inside lists only the container\'s processes', () => {
    const r = runIn('ps', 'sleep 30 & sleep 0.3; ps -o pid,args');
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim());
    // busybox sh execs its last command, so ps itself is PID 1.
    assert.equal(rows.length, 2, r.stdout);
    assert.match(rows[0], /^1 \{ps\} sh -c sleep 30/);
    assert.match(rows[1], /^\d+ sleep 30$/);
    assert.ok(fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length > 10, 'the host has more processes');
  });

  it('mounts a fresh /proc, and the host\'s processes are not in it', () => {
    const r = runIn('proc', `grep ' /proc proc ' /proc/mounts; test -e /proc/${process.pid} && echo host-visible || echo host-hidden`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^proc \/proc proc /m);
    assert.match(r.stdout, /host-hidden/);
  });

  it('has the bundle\'s hostname, and the host keeps its own', () => {
    const host = fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
    const r = runIn('uts', 'hostname; hostname changed-inside; hostname', (c) => {
      c.hostname = 'berth-uts-test';
      c.process.capabilities.bounding.push('CAP_SYS_ADMIN');
      c.process.capabilities.effective.push('CAP_SYS_ADMIN');
      c.process.capabilities.permitted.push('CAP_SYS_ADMIN');
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['berth-uts-test', 'changed-inside']);
    assert.equal(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(), host);
  });

  it('keeps a mount made inside off the host\'s mount table', async () => {
    const b = env.bundle('mnt', (c) => {
      c.process.args = ['sh', '-c', 'mount -t tmpfs berth-marker-mount /mnt && touch /tmp/mounted && sleep 30'];
      for (const s of ['bounding', 'effective', 'permitted']) c.process.capabilities[s].push('CAP_SYS_ADMIN');
    });
    const r = env.rt(['run', '--detach', '--bundle', b, 'mnt']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await waitFor(() => fs.existsSync(`${b}/rootfs/tmp/mounted`)), 'the container did not mount');
    const st = JSON.parse(env.rt(['state', 'mnt']).stdout);
    const inside = fs.readFileSync(`/proc/${st.pid}/mountinfo`, 'utf8');
    assert.match(inside, /berth-marker-mount/);
    assert.doesNotMatch(fs.readFileSync('/proc/self/mountinfo', 'utf8'), /berth-marker-mount/);
    assert.equal(env.rt(['delete', '--force', 'mnt']).status, 0);
  });

  it('cannot signal a host process', () => {
    const r = runIn('kill', `kill -0 ${process.pid} && echo reached || echo unreachable`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /unreachable/);
  });

  it('sees only lo in a new network namespace', () => {
    const r = runIn('net', 'ls /sys/class/net');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'lo');
  });

  it('masks /proc paths and makes /proc/sys read-only', () => {
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].filter((p) => fs.existsSync(p));
    assert.ok(masked.length > 0, 'no maskable /proc file on this host');
    const r = runIn('mask', `for f in ${masked.join(' ')}; do wc -c < $f; done; ` +
      'echo 1 > /proc/sys/kernel/panic_on_oops && echo wrote || echo refused');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [...masked.map(() => '0'), 'refused']);
  });

  it('runs as the configured user with no capabilities', () => {
    const r = runIn('user', 'id -u; id -g; grep CapEff /proc/self/status', (c) => {
      c.process.user = { uid: 65534, gid: 65534 };
      c.process.capabilities = {};
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['65534', '65534', 'CapEff:\t0000000000000000']);
  });

  it('maps root to an unprivileged host uid in a user namespace', () => {
    const r = runIn('userns', 'id -u; cat /proc/self/uid_map', (c) => {
      c.linux.namespaces.push({ type: 'user' });
      c.linux.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.linux.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      c.mounts = c.mounts.filter((m: any) => m.destination !== '/sys' && m.destination !== '/sys/fs/cgroup');
      c.mounts.find((m: any) => m.destination === '/dev/pts').options = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
      delete c.linux.resources;
    });
    assert.equal(r.status, 0, r.stderr);
    const [uid, map] = r.stdout.trim().split('\n');
    assert.equal(uid, '0');
    assert.match(map, /^\s*0\s+200000\s+65536$/);
  });

  it('reports the exit status, and 128+n for a signal', async () => {
    assert.equal(runIn('exit7', 'exit 7').status, 7);
    const b = env.bundle('sig', (c) => {
      c.process.args = ['sleep', '60'];
    });
    const child = env.rtAsync(['run', '--bundle', b, 'sig']);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    assert.ok(await waitFor(() => /"running"/.test(env.rt(['state', 'sig']).stdout)), 'never running');
    assert.equal(env.rt(['kill', 'sig', 'KILL']).status, 0);
    assert.equal(await exited, 137);
  });

});
