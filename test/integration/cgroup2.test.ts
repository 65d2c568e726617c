// cgroup v2, the layout most users run. This host is hybrid, so the test puts the unified
// hierarchy at /sys/fs/cgroup in a private mount namespace (unshare -m) and runs
// berth-runtime there; berth then sees a pure v2 host.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { requires, RUNTIME, TestEnv } from '../helpers';

const unified = '/sys/fs/cgroup/unified';
const skip = requires('root') ?? (fs.existsSync('/sys/fs/cgroup/cgroup.controllers') || fs.existsSync(`${unified}/cgroup.procs`)
  ? undefined : 'needs a cgroup2 mount');

describe('cgroup v2', { skip }, () => {
  let env: TestEnv;
  // On a pure v2 host the hierarchy is already at /sys/fs/cgroup; here it is beside v1.
  const v2root = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : unified;
  before(() => {
    env = new TestEnv('cgroup2');
  });
  after(() => env.cleanup());

  const rtV2 = (args: string[]) => {
    const script = v2root === unified ? 'mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && exec "$@"' : 'exec "$@"';
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', RUNTIME, '--root', env.root, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('runs a container in its own v2 cgroup and cgroup namespace, and removes it', () => {
    const b = env.bundle('v2', (c) => {
      c.process.args = ['sh', '-c', 'cat /proc/self/cgroup; test -f /sys/fs/cgroup/cgroup.procs && echo v2-mounted'];
      delete c.linux.resources;
    });
    const r = rtV2(['run', '--bundle', b, 'v2']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.includes('0::/'), r.stdout);
    assert.ok(lines.includes('v2-mounted'), r.stdout);
    assert.equal(fs.existsSync(`${v2root}${env.cgParent}/v2`), false, 'cgroup left behind');
  });

  it('says which controller is missing when a limit cannot be applied', () => {
    const controllers = fs.readFileSync(`${v2root}/cgroup.controllers`, 'utf8');
    if (controllers.includes('pids')) return; // a full v2 host: nothing is missing
    const b = env.bundle('nopids', (c) => {
      c.linux.resources = { pids: { limit: 10 } };
    });
    const r = rtV2(['create', '--bundle', b, 'nopids']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the pids cgroup controller is not available for .*nopids \(no pids\.max\)/);
    assert.equal(fs.existsSync(`${v2root}${env.cgParent}/nopids`), false, 'cgroup left behind');
  });
});
