// `berth system df`: images, containers and local volumes, with what is in use and what
// pruning would free, measured on real containers writing known amounts of data.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, processesWith, requires, waitFor, type Result } from '../helpers';

const skip = requires('root');
const KB = 1024;

describe('berth system df', { skip }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]): Result => berthSync(root, args);
  const ok = (args: string[]): string => {
    const r = berth(args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const df = () => JSON.parse(ok(['system', 'df', '--format', 'json']));
  /** N bytes (within a little: directories and the shell's own files count too). */
  const about = (actual: number, n: number, what: string) =>
    assert.ok(actual >= n && actual < n + 64 * KB, `${what}: ${actual} bytes, expected about ${n}`);

  before(() => {
    ({ dir, root } = engineRoot('systemdf'));
  });
  after(async () => {
    for (const id of berth(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)) berth(['rm', '-f', '-v', id]);
    for (const v of berth(['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean)) berth(['volume', 'rm', '-f', v]);
    const gone = await waitFor(() => processesWith(root).length === 0, 15_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    if (gone && !mounts.length) fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(gone);
    assert.deepEqual(mounts, []);
  });

  it('an empty engine: the image only, nothing active', () => {
    const d = df();
    assert.deepEqual([d.images.total, d.images.active], [1, 0]);
    assert.ok(d.images.size > 1000 * KB, `busybox is a few MB: ${d.images.size}`);
    assert.equal(d.images.reclaimable, d.images.size, 'an image no container uses can be pruned');
    assert.deepEqual(d.containers, { total: 0, active: 0, size: 0, reclaimable: 0 });
    assert.deepEqual(d.volumes, { total: 0, active: 0, size: 0, reclaimable: 0 });
  });

  it('counts containers, their writable layers, volumes and what pruning frees', async () => {
    // A volume no container uses any more, holding 100 KiB.
    ok(['run', '--rm', '-v', 'idle:/d', 'busybox', 'dd', 'if=/dev/zero', 'of=/d/f', `bs=${KB}`, 'count=100']);
    // An exited container that wrote 200 KiB into its root filesystem.
    ok(['run', '--name', 'done', 'busybox', 'dd', 'if=/dev/zero', 'of=/big', `bs=${KB}`, 'count=200']);
    // A running one: 50 KiB in its layer, 300 KiB in the volume it uses.
    ok(['run', '-d', '--name', 'up', '-v', 'used:/data', 'busybox', 'sh', '-c',
      `dd if=/dev/zero of=/small bs=${KB} count=50; dd if=/dev/zero of=/data/f bs=${KB} count=300; echo ready > /data/ready; sleep 600`]);
    assert.ok(await waitFor(() => fs.existsSync(path.join(root, 'volumes', 'used', '_data', 'ready')), 10_000));

    const d = df();
    assert.deepEqual([d.images.total, d.images.active, d.images.reclaimable], [1, 1, 0]);
    assert.deepEqual([d.containers.total, d.containers.active], [2, 1]);
    about(d.containers.size, 250 * KB, 'containers');
    about(d.containers.reclaimable, 200 * KB, 'the exited container');
    assert.deepEqual([d.volumes.total, d.volumes.active], [2, 1]);
    about(d.volumes.size, 400 * KB, 'volumes');
    about(d.volumes.reclaimable, 100 * KB, 'the unused volume');

    // The table, as Docker's.
    const lines = ok(['system', 'df']).trimEnd().split('\n');
    assert.match(lines[0], /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    assert.match(lines[1], /^Images\s+1\s+1\s+\S+MB\s+0B \(0%\)$/);
    assert.match(lines[2], /^Containers\s+2\s+1\s+2\d\dkB\s+2\d\dkB \(8\d%\)$/);
    assert.match(lines[3], /^Local Volumes\s+2\s+1\s+4\d\dkB\s+1\d\dkB \(2\d%\)$/);

    // -v: each one.
    const v = ok(['system', 'df', '-v']);
    assert.match(v, /^localhost\/busybox\s+latest\s+[0-9a-f]{12}\s+.*\s+\S+MB\s+2$/m);
    assert.match(v, /^[0-9a-f]{12}\s+busybox\s+"sh -c dd .*"\s+1\s+5\d\.?\d*kB\s+.*Up .*\s+up$/m);
    assert.match(v, /^[0-9a-f]{12}\s+busybox\s+"dd .*"\s+0\s+20\d\.?\d*kB\s+.*Exited \(0\).*\s+done$/m);
    assert.match(v, /^used\s+1\s+30\d\.?\d*kB$/m);
    assert.match(v, /^idle\s+0\s+10\d\.?\d*kB$/m);

    // What it said was reclaimable is what the prunes take.
    ok(['container', 'prune']);
    ok(['volume', 'prune', '-a']);
    const after = df();
    assert.deepEqual([after.containers.total, after.containers.reclaimable], [1, 0]);
    assert.deepEqual([after.volumes.total, after.volumes.reclaimable], [1, 0]);
    ok(['rm', '-f', 'up']);
  });
});
