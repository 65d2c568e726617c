// Many berth commands at once against one --root, as scripts and orchestrators issue
// them: 50 `run -d` then 50 `rm -f` in parallel, and runs that race for one --name. Every
// command must succeed or fail cleanly, and nothing may be left behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, engineRoot, processesWith, requires, TOP, waitFor, type Result } from '../helpers';

const skip = requires('root');
const N = 50;



describe('concurrent berth commands on one --root', { skip }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]): Promise<Result> => berthAsync(root, args);
  /** What containers could have left: mounts, cgroups, records, runtime state, processes. */
  const leftovers = (ids: string[]): string[] => {
    const out: string[] = [];
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    const hierarchies = fs.readdirSync('/sys/fs/cgroup');
    for (const id of ids) {
      for (const l of mounts) if (l.includes(id)) out.push(`mount: ${l}`);
      for (const d of [path.join('/sys/fs/cgroup', 'berth', id), ...hierarchies.map((h) => path.join('/sys/fs/cgroup', h, 'berth', id))]) {
        if (fs.existsSync(d)) out.push(`cgroup: ${d}`);
      }
    }
    for (const sub of ['containers', 'runtime', 'names']) {
      const d = path.join(root, sub);
      for (const n of fs.existsSync(d) ? fs.readdirSync(d) : []) out.push(`state: ${path.join(d, n)}`);
    }
    for (const l of mounts) if (l.includes(dir)) out.push(`mount: ${l}`);
    for (const p of processesWith(root)) out.push(`process: ${p}`);
    return out;
  };

  before(() => {
    ({ dir, root } = engineRoot('concurrency'));
  });
  after(async () => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await waitFor(() => processesWith(root).length === 0, 15_000);
    const left = leftovers(ids);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(left, []);
  });

  it(`${N} run -d at once, then ${N} rm -f at once: all succeed, nothing is left`, async () => {
    // sleep 300, not 30: under a loaded test suite 50 starts can take longer than 30 s,
    // and ps must still see every one running; rm -f ends them anyway.
    const runs = await Promise.all(Array.from({ length: N }, () => berth(['run', '-d', 'busybox', 'sleep', '300'])));
    for (const r of runs) {
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    }
    const ids = runs.map((r) => r.stdout.trim());
    assert.equal(new Set(ids).size, N, 'ids are not unique');

    const ps = await berth(['ps', '-q', '--no-trunc']);
    assert.equal(ps.status, 0, ps.stderr);
    assert.deepEqual(ps.stdout.trim().split('\n').sort(), [...ids].sort());
    const inspect = await berth(['inspect', ...ids]);
    assert.equal(inspect.status, 0, inspect.stderr);
    const recs = JSON.parse(inspect.stdout) as any[];
    assert.equal(recs.length, N);
    assert.equal(new Set(recs.map((c) => c.Name)).size, N, 'names are not unique');
    for (const c of recs) assert.equal(c.State.Status, 'running', `${c.Id}: ${c.State.Status}`);
    assert.equal(fs.readdirSync(path.join(root, 'names')).length, N);

    const rms = await Promise.all(ids.map((id) => berth(['rm', '-f', id])));
    for (const r of rms) assert.equal(r.status, 0, r.stderr);
    // The monitors' exit commands (berth container cleanup) may still be finishing.
    await waitFor(() => leftovers(ids).length === 0, 15_000);
    assert.deepEqual(leftovers(ids), []);
    assert.equal((await berth(['ps', '-a', '-q'])).stdout, '');
  });

  it('10 run --rm --name same at once: one holds the name at a time, the others fail cleanly', async () => {
    const runs = await Promise.all(Array.from({ length: 10 }, () => berth(['run', '--rm', '--name', 'same', 'busybox', 'true'])));
    const won = runs.filter((r) => r.status === 0);
    assert.ok(won.length >= 1, `no run got the name:\n${runs.map((r) => r.stderr).join('')}`);
    for (const r of runs) {
      if (r.status === 0) {
        assert.equal(r.stderr, '');
        continue;
      }
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, /^berth: the name "same" is already in use by container [0-9a-f( ]/);
      assert.match(r.stderr, /hint: .*berth rm same/);
    }
    assert.deepEqual(leftovers([]), []);
  });
});
