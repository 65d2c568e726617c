// A berth-runtime killed at any point of `create`, followed by `delete --force`, leaves no
// process, mount, cgroup or state behind.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, sleep, TestEnv, waitFor } from '../helpers';

const skip = requires('root');

/** Host pids whose root is ROOTFS or whose cgroup is under CGPARENT. */
function leftoverProcesses(rootfs: string, cgParent: string): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const root = fs.readlinkSync(`/proc/${n}/root`);
      const cg = fs.readFileSync(`/proc/${n}/cgroup`, 'utf8');
      if (root === rootfs || cg.includes(cgParent + '/')) out.push(Number(n));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

describe('killed during create', { skip }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('crash');
  });
  after(() => env.cleanup());

  it('delete --force removes a cgroup that create made but was killed before recording', () => {
    // The state a create leaves when killed between mkdir of its cgroup and the state write
    // that names the directories (a narrow window the timed kills below only sometimes hit).
    const id = 'unrecorded';
    const cgPath = `${env.cgParent}/${id}`;
    fs.mkdirSync(path.join(env.root, id), { recursive: true });
    fs.writeFileSync(path.join(env.root, id, 'state.json'), JSON.stringify({
      id, ociVersion: '1.0.2', bundle: env.dir, rootfs: env.dir, created: new Date().toISOString(),
      cgroup: { version: 1, path: cgPath, dirs: [] }, namespaces: [], owner: 'root',
    }));
    const made: string[] = [];
    const bases = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? ['/sys/fs/cgroup']
      : fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h)).filter((d) => fs.existsSync(path.join(d, 'cgroup.procs')));
    for (const b of bases) {
      fs.mkdirSync(path.join(b, cgPath), { recursive: true });
      made.push(path.join(b, cgPath));
    }
    assert.ok(made.length > 0);
    const del = env.rt(['delete', '--force', id]);
    assert.equal(del.status, 0, del.stderr);
    assert.deepEqual(made.filter((d) => fs.existsSync(d)), []);
    assert.equal(fs.existsSync(path.join(env.root, id)), false);
  });

  for (const delay of [0, 15, 30, 45, 60, 75, 90, 110, 130, 160, 200]) {
    it(`leaves nothing after SIGKILL at ${delay} ms and delete --force`, async () => {
      const id = `crash${delay}`;
      const b = env.bundle(id, (c) => {
        c.process.args = ['sleep', '60'];
      });
      const child = env.rtAsync(['create', '--bundle', b, id]);
      const exited = new Promise((r) => child.on('exit', r));
      await sleep(delay);
      child.kill('SIGKILL');
      await exited;

      const del = env.rt(['delete', '--force', id]);
      assert.ok(del.status === 0 || /does not exist/.test(del.stderr), del.stderr);
      const rootfs = path.join(b, 'rootfs');
      // Whatever berth-init was doing notices its parent is gone and exits by itself.
      assert.ok(await waitFor(() => leftoverProcesses(rootfs, `${env.cgParent}/${id}`).length === 0, 5000),
        `processes left: ${leftoverProcesses(rootfs, `${env.cgParent}/${id}`)}`);
      assert.equal(fs.existsSync(path.join(env.root, id)), false, 'state left');
      assert.deepEqual(env.leftoverCgroups().filter((d) => d.endsWith('/' + id)), []);
      assert.deepEqual(env.leftoverMounts().filter((l) => l.includes(b)), []);
    });
  }
});
