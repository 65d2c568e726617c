// Volumes as users see them (`berth volume ...`, `-v NAME:/path`, `--mount`, `rm -v`): data
// outlives its container, the image's content seeds an empty volume, ro is enforced, and a
// volume a container uses cannot be removed. Embedded busybox image, private --root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRoot, requires, TOP, waitFor } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root');

// One at a time: volume prune and ls see every test's volumes.
describe('berth volumes', { skip, concurrency: 1 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]) => {
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (args: string[]): string => {
    const r = berth(args);
    assert.equal(r.status, 0, `berth ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const volumeNames = (): string[] => ok(['volume', 'ls', '-q']).split('\n').filter(Boolean);

  before(() => {
    ({ dir, root } = engineRoot('volumes'));
  });
  after(async () => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    await waitFor(() => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 10_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('a named volume keeps its data for the next container; create, ls and inspect show it', () => {
    // Created on first use, as Docker's -v NAME:/path.
    assert.equal(ok(['run', '--rm', '-v', 'notes:/data', 'busybox', 'sh', '-c', 'echo kept > /data/file']), '');
    assert.equal(ok(['run', '--rm', '-v', 'notes:/srv', 'busybox', 'cat', '/srv/file']), 'kept\n');
    assert.ok(volumeNames().includes('notes'));
    const [v] = JSON.parse(ok(['volume', 'inspect', 'notes']));
    assert.equal(v.Name, 'notes');
    assert.equal(v.Driver, 'local');
    assert.equal(v.Mountpoint, path.join(root, 'volumes', 'notes', '_data'));
    assert.equal(fs.readFileSync(path.join(v.Mountpoint, 'file'), 'utf8'), 'kept\n');

    assert.equal(ok(['volume', 'create', 'made']), 'made\n');
    assert.equal(ok(['volume', 'create', 'made']), 'made\n'); // exists: no error, as Docker's
    assert.equal(ok(['run', '--rm', '--mount', 'type=volume,source=made,target=/m', 'busybox', 'sh', '-c', 'echo hi > /m/x; cat /m/x']), 'hi\n');
    assert.equal(ok(['volume', 'rm', 'made', 'notes']), 'made\nnotes\n');
    assert.ok(!volumeNames().includes('notes'));
    assert.equal(berth(['volume', 'inspect', 'notes']).status, 125);
    assert.equal(berth(['volume', 'rm', 'notes']).status, 125);
    assert.equal(berth(['volume', 'rm', '-f', 'notes']).status, 0);
  });

  it('an empty volume is seeded with the image\'s content at its mount point', () => {
    const out = ok(['run', '--rm', '-v', 'etc-copy:/etc', 'busybox', 'sh', '-c', 'echo added > /etc/added; ls /etc']);
    assert.match(out, /passwd/);
    const data = path.join(root, 'volumes', 'etc-copy', '_data');
    assert.ok(fs.readFileSync(path.join(data, 'passwd'), 'utf8').startsWith('root:'));
    // Seeded once: what the container changed is what the next one sees.
    fs.rmSync(path.join(data, 'group'));
    assert.equal(ok(['run', '--rm', '-v', 'etc-copy:/etc', 'busybox', 'sh', '-c', 'cat /etc/added; test -e /etc/group || echo no-group']),
      'added\nno-group\n');
    ok(['volume', 'rm', 'etc-copy']);
  });

  it('ro volumes and binds refuse writes; --mount bind and tmpfs work', () => {
    ok(['volume', 'create', 'frozen']);
    const r = berth(['run', '--rm', '-v', 'frozen:/data:ro', 'busybox', 'sh', '-c', 'echo x > /data/f']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Read-only file system/);
    assert.deepEqual(fs.readdirSync(path.join(root, 'volumes', 'frozen', '_data')), []);
    const host = fs.mkdtempSync(path.join(dir, 'bind-'));
    fs.writeFileSync(path.join(host, 'in'), 'from host\n');
    const b = berth(['run', '--rm', '--mount', `type=bind,source=${host},target=/h,readonly`,
      '--mount', 'type=tmpfs,target=/scratch,tmpfs-size=1m', 'busybox', 'sh', '-c',
      'cat /h/in; touch /h/new 2>/dev/null || echo bind-ro; grep " /scratch " /proc/mounts | cut -d" " -f3; echo y > /scratch/y && echo tmpfs-rw']);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(b.stdout, 'from host\nbind-ro\ntmpfs\ntmpfs-rw\n');
    assert.equal(berth(['run', '--rm', '--mount', 'type=bogus,target=/x', 'busybox', 'true']).status, 125);
    assert.equal(berth(['run', '--rm', '-v', 'x:relative', 'busybox', 'true']).status, 125);
    // -v makes a missing host directory, as Docker's; --mount type=bind does not.
    const made = path.join(dir, 'made-by-v', 'sub');
    assert.equal(ok(['run', '--rm', '-v', `${made}:/m`, 'busybox', 'sh', '-c', 'echo hi > /m/f; echo ok']), 'ok\n');
    assert.equal(fs.readFileSync(path.join(made, 'f'), 'utf8'), 'hi\n');
    const notMade = path.join(dir, 'not-made-by-mount');
    assert.equal(berth(['run', '--rm', '--mount', `type=bind,source=${notMade},target=/m`, 'busybox', 'true']).status, 125);
    assert.equal(fs.existsSync(notMade), false);
    ok(['volume', 'rm', 'frozen']);
  });

  it('volume rm is refused while a container (even an exited one) uses the volume', () => {
    const id = ok(['run', '-d', '--name', 'holder', '-v', 'busy:/data', 'busybox', 'sleep', '300']).trim();
    const r = berth(['volume', 'rm', 'busy']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /volume "busy" is in use by container "holder"/);
    assert.equal(berth(['volume', 'rm', '-f', 'busy']).status, 125);
    ok(['stop', '-t', '0', 'holder']);
    assert.equal(berth(['volume', 'rm', 'busy']).status, 125);
    ok(['volume', 'prune', '-a']);
    assert.ok(volumeNames().includes('busy'));
    ok(['rm', id]);
    assert.equal(ok(['volume', 'rm', 'busy']), 'busy\n');
  });

  it('anonymous volumes: rm -v and --rm remove them, plain rm and prune leave or take them', () => {
    const before = volumeNames();
    ok(['run', '--name', 'anon', '-v', '/cache', '--mount', 'type=volume,target=/more', 'busybox', 'sh', '-c', 'touch /cache/x /more/y']);
    const [c] = JSON.parse(ok(['inspect', 'anon']));
    const anon = c.Mounts.filter((m: any) => m.Type === 'volume').map((m: any) => m.Name);
    assert.equal(anon.length, 2);
    for (const n of anon) assert.match(n, /^[0-9a-f]{64}$/);
    assert.deepEqual(volumeNames().filter((n) => !before.includes(n)).sort(), [...anon].sort());
    ok(['rm', '-v', 'anon']);
    assert.deepEqual(volumeNames().filter((n) => !before.includes(n)), []);

    ok(['run', '--rm', '-v', '/tmpdata', 'busybox', 'true']);
    assert.deepEqual(volumeNames().filter((n) => !before.includes(n)), []);

    ok(['run', '--name', 'anon2', '-v', '/keep', 'busybox', 'true']);
    ok(['rm', 'anon2']);
    const left = volumeNames().filter((n) => !before.includes(n));
    assert.equal(left.length, 1);
    ok(['volume', 'create', 'named-stays']);
    assert.match(ok(['volume', 'prune']), new RegExp(left[0]));
    assert.ok(volumeNames().includes('named-stays'));
    ok(['volume', 'rm', 'named-stays']);
  });
});
