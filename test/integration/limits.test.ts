// linux.resources enforced by the kernel: memory and pids limits on real containers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv } from '../helpers';

const skip = requires('root');

describe('resource limits', { skip }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('limits');
  });
  after(() => env.cleanup());

  it('kills a process that goes over its memory limit', () => {
    const b = env.bundle('oom', (c) => {
      // sort holds its input in memory: one 256 MiB line of it, under a 32 MiB limit.
      c.process.args = ['sh', '-c', 'head -c 268435456 /dev/zero | tr "\\0" a | sort >/dev/null; echo "sort status $?"'];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    });
    const r = env.rt(['run', '--bundle', b, 'oom']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sort status 137/, 'sort was not killed (SIGKILL) by the OOM killer');
  });

  it('stops a fork bomb at the pids limit', async () => {
    const b = env.bundle('pids', (c) => {
      // busybox sh exits when fork fails, so the bomb runs in a subshell and PID 1 lives on.
      c.process.args = ['sh', '-c', '(for i in $(seq 60); do sleep 20 & done) 2>/dev/null; exec sleep 30'];
      c.linux.resources = { ...c.linux.resources, pids: { limit: 16 } };
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'pids']).status, 0);
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    const dir = v2 ? `/sys/fs/cgroup${env.cgParent}/pids` : `/sys/fs/cgroup/pids${env.cgParent}/pids`;
    const count = () => fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').trim().split('\n').length;
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      peak = Math.max(peak, count());
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(peak <= 16, `${peak} processes under a limit of 16`);
    assert.ok(peak >= 8, `only ${peak} processes: something other than the limit stopped them`);
    assert.equal(env.rt(['delete', '--force', 'pids']).status, 0);
  });

  it('writes the limits into the container\'s cgroup', () => {
    const b = env.bundle('cg', (c) => {
      c.process.args = ['sleep', '30'];
      c.linux.resources = { ...c.linux.resources, memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 42 },
        cpu: { quota: 50000, period: 100000 } };
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'cg']).status, 0);
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    const base = (ctl: string) => v2 ? `/sys/fs/cgroup${env.cgParent}/cg` : `/sys/fs/cgroup/${ctl}${env.cgParent}/cg`;
    const read = (ctl: string, f: string) => fs.readFileSync(`${base(ctl)}/${f}`, 'utf8').trim();
    if (v2) {
      assert.equal(read('memory', 'memory.max'), String(64 * 1024 * 1024));
      assert.equal(read('pids', 'pids.max'), '42');
      assert.equal(read('cpu', 'cpu.max'), '50000 100000');
    } else {
      assert.equal(read('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
      assert.equal(read('pids', 'pids.max'), '42');
      assert.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
    }
    assert.equal(env.rt(['delete', '--force', 'cg']).status, 0);
    assert.equal(fs.existsSync(base('pids')), false, 'cgroup left after delete');
  });

  it('takes net.* sysctls for a joined network namespace of its own, not for the host\'s', () => {
    // A namespace made here (as berth's network/ makes one), bind-mounted, then joined by path.
    const nsFile = `${env.dir}/netns-own`;
    fs.writeFileSync(nsFile, '');
    assert.equal(spawnSync('unshare', [`--net=${nsFile}`, 'true']).status, 0);
    try {
      for (const [name, ns, ok] of [['own', nsFile, true], ['host', '/proc/1/ns/net', false]] as const) {
        const b = env.bundle(`sysctl-${name}`, (c) => {
          c.process.args = ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'];
          c.linux.namespaces = [...c.linux.namespaces.filter((n: any) => n.type !== 'network'), { type: 'network', path: ns }];
          c.linux.sysctl = { 'net.ipv4.ip_unprivileged_port_start': '99' };
        });
        const r = env.rt(['run', '--bundle', b, `sysctl-${name}`]);
        if (ok) {
          assert.equal(r.status, 0, r.stderr);
          assert.equal(r.stdout, '99\n');
        } else {
          assert.notEqual(r.status, 0);
          assert.match(r.stderr, /sysctl "net\.ipv4\.ip_unprivileged_port_start" is not namespaced by a namespace this container owns/);
        }
        env.rt(['delete', '--force', `sysctl-${name}`]);
      }
    } finally {
      spawnSync('umount', [nsFile]);
    }
  });
});
