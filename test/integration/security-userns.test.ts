// Security group: --userns=auto and --uidmap/--gidmap (engine/userns.ts, storage/idmap.ts).
// Root in the container is an unprivileged id on the host, taken from the ranges
// /etc/subuid and /etc/subgid give to "containers" (setup.sh adds them); the image's files
// still look right inside through id-mapped layers; writes land with the mapped host ids;
// ranges never overlap and are released. Real containers from the embedded busybox image.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, berthSync, engineRoot, requires, TOP, waitFor } from '../helpers';

interface Range {
  start: number;
  count: number;
}

/** The ranges FILE gives to "containers" (what --userns=auto may use). */
function subids(file: string): Range[] {
  return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.split(':'))
    .filter((f) => f.length === 3 && f[0] === 'containers').map((f) => ({ start: Number(f[1]), count: Number(f[2]) }));
}

const skip = requires('root') ?? (fs.existsSync('/etc/subuid') && subids('/etc/subuid').length && subids('/etc/subgid').length
  ? undefined : 'needs "containers" ranges in /etc/subuid and /etc/subgid (run setup.sh)');

/** "0 1048576 65536" lines of /proc/PID/uid_map -> [containerID, hostID, size][]. */
const parseMap = (text: string): number[][] => text.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
const inRanges = (ranges: Range[], start: number, size: number) =>
  ranges.some((r) => start >= r.start && start + size <= r.start + r.count);

describe('security: user namespaces (--userns)', { skip }, () => {
  let dir: string;
  let root: string;
  let uidRanges: Range[];
  let gidRanges: Range[];
  const berth = (args: string[]) => berthSync(root, args);
  const allocations = () => fs.readdirSync(path.join(root, 'userns')).filter((f) => f.endsWith('.json'));
  const mountsOf = (text: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(text));

  /** Runs a detached container; returns its id. */
  const runDetached = (args: string[]) => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const inspect = (id: string) => JSON.parse(berth(['inspect', id]).stdout)[0];

  before(() => {
    ({ dir, root } = engineRoot('userns'));
    // The container's init runs as the mapped host id and must reach its root filesystem.
    fs.chmodSync(dir, 0o755);
    uidRanges = subids('/etc/subuid');
    gidRanges = subids('/etc/subgid');
    // An image with a file that belongs to uid 1000, as many images have.
    const rootfs = path.join(dir, 'rootfs');
    fs.mkdirSync(rootfs);
    assert.equal(spawnSync('tar', ['-xf', path.join(TOP, 'build', 'busybox-rootfs.tar'), '-C', rootfs]).status, 0);
    fs.mkdirSync(path.join(rootfs, 'home', 'user'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'home', 'user', 'owned'), 'mine\n');
    fs.chownSync(path.join(rootfs, 'home', 'user'), 1000, 1000);
    fs.chownSync(path.join(rootfs, 'home', 'user', 'owned'), 1000, 1000);
    assert.equal(spawnSync('tar', ['-cf', `${rootfs}.tar`, '-C', rootfs, '.']).status, 0);
    const r = berth(['import', `${rootfs}.tar`, 'localhost/userns-owned:1', '-c', 'CMD ["sh"]']);
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    const mounts = mountsOf(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('maps root inside to a host range from /etc/subuid and /etc/subgid', () => {
    const r = berth(['run', '--rm', '--userns=auto', 'busybox', 'sh', '-c', 'id -u; id -g; echo; cat /proc/self/uid_map; echo; cat /proc/self/gid_map']);
    assert.equal(r.status, 0, r.stderr);
    const [ids, uidMap, gidMap] = r.stdout.split('\n\n');
    assert.deepEqual(ids.trim().split('\n'), ['0', '0']);
    const [[cu, hu, su]] = parseMap(uidMap);
    const [[cg, hg, sg]] = parseMap(gidMap);
    assert.deepEqual([cu, su, cg, sg], [0, 65536, 0, 65536]);
    assert.ok(hu >= 100000 && inRanges(uidRanges, hu, su), `uid range ${hu}+${su} is not a "containers" subuid range`);
    assert.ok(hg >= 100000 && inRanges(gidRanges, hg, sg), `gid range ${hg}+${sg} is not a "containers" subgid range`);
    // The default is still no user namespace: root is the host's root.
    const host = berth(['run', '--rm', 'busybox', 'cat', '/proc/self/uid_map']);
    assert.deepEqual(parseMap(host.stdout), [[0, 0, 4294967295]]);
  });

  it('root inside is unprivileged on the host: its uid there, a root-only file, a host process', async () => {
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, 'host secret\n', { mode: 0o600 });
    const mine = path.join(dir, 'mapped-file');
    fs.writeFileSync(mine, 'for the container\n', { mode: 0o600 });
    const id = runDetached(['--userns=auto', '-v', `${secret}:/secret`, '-v', `${mine}:/mine`, 'busybox', 'sleep', '120']);
    const c = inspect(id);
    const hostUid = Number(c.HostConfig.IDMappings.UidMap[0].split(':')[1]);
    const hostGid = Number(c.HostConfig.IDMappings.GidMap[0].split(':')[1]);
    fs.chownSync(mine, hostUid, hostGid);

    // The kernel's view of the container's PID 1: every uid and gid is the mapped one.
    const status = fs.readFileSync(`/proc/${c.State.Pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${hostUid}\\s+${hostUid}\\s+${hostUid}\\s+${hostUid}$`, 'm'));
    assert.match(status, new RegExp(`^Gid:\\s+${hostGid}\\s+${hostGid}\\s+${hostGid}\\s+${hostGid}$`, 'm'));

    // A host file of root's, mode 0600, bind-mounted read-write: nobody's inside, unreadable.
    let r = berth(['exec', id, 'sh', '-c', 'stat -c %u:%g /secret; cat /secret; echo status=$?; echo x >> /secret; echo write=$?']);
    assert.match(r.stdout, /^65534:65534\n/, r.stdout);
    assert.match(r.stdout, /status=1\n/);
    assert.match(r.stdout, /write=1\n/);
    assert.equal(fs.readFileSync(secret, 'utf8'), 'host secret\n');
    // One owned by the mapped id is root's inside.
    r = berth(['exec', id, 'sh', '-c', 'stat -c %u:%g /mine; cat /mine']);
    assert.equal(r.stdout, '0:0\nfor the container\n');

    // A host root process put into the container's PID namespace (not its user namespace):
    // root inside sees it but cannot signal it.
    const intruder = spawn('nsenter', ['--target', String(c.State.Pid), '--pid', '--', 'sleep', '120'], { stdio: 'ignore' });
    try {
      let inner = '';
      assert.ok(await waitFor(() => {
        inner = berth(['exec', id, 'sh', '-c', 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] && '
          + '[ "$(stat -c %u $p)" = 65534 ] && echo ${p#/proc/}; done']).stdout.trim();
        return inner !== '';
      }), 'the host process never showed up inside');
      r = berth(['exec', id, 'sh', '-c', `kill -9 ${inner}; echo kill=$?`]);
      assert.match(r.stdout, /kill=1/, r.stdout + r.stderr);
      assert.match(r.stderr, /not permitted/i);
      assert.equal(intruder.exitCode, null, 'the host process was killed from inside');
    } finally {
      intruder.kill('SIGKILL');
    }
    assert.equal(berth(['rm', '-f', id]).status, 0);
  });

  it('shows the image\'s files with their own ids inside, and writes land with the mapped host ids', () => {
    const r = berth(['run', '--userns=auto', '--name', 'files', 'localhost/userns-owned:1', 'sh', '-c',
      'ls -lnd / /bin /etc /etc/passwd | awk \'{print $3":"$4" "$NF}\'; stat -c "%u:%g %n" /home/user/owned; '
      + 'head -1 /etc/passwd; id; touch /new /new2; chown 1000:1000 /new2; echo x >> /etc/passwd; mkdir /dir']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['0:0 /', '0:0 /bin', '0:0 /etc', '0:0 /etc/passwd']);
    assert.equal(lines[4], '1000:1000 /home/user/owned');
    assert.equal(lines[5], 'root:x:0:0:root:/root:/bin/sh');
    assert.match(lines[6], /^uid=0\(root\) gid=0\(root\)/);

    const c = inspect('files');
    const hostUid = Number(c.HostConfig.IDMappings.UidMap[0].split(':')[1]);
    const hostGid = Number(c.HostConfig.IDMappings.GidMap[0].split(':')[1]);
    const upper = path.join(root, 'containers', c.Id, 'upper');
    const owner = (p: string) => { const st = fs.statSync(path.join(upper, p)); return [st.uid, st.gid]; };
    assert.deepEqual(owner('new'), [hostUid, hostGid]);
    assert.deepEqual(owner('new2'), [hostUid + 1000, hostGid + 1000]);
    assert.deepEqual(owner('dir'), [hostUid, hostGid]);
    // Copied up from the layer (stored there as 0:0) with the mapped ids.
    assert.deepEqual(owner('etc/passwd'), [hostUid, hostGid]);
    // The layer itself is unchanged.
    const layers = fs.readdirSync(path.join(root, 'layers'));
    const owned = layers.map((l) => path.join(root, 'layers', l, 'diff', 'home', 'user', 'owned')).find((p) => fs.existsSync(p))!;
    assert.deepEqual([fs.statSync(owned).uid, fs.statSync(path.dirname(path.dirname(owned))).uid], [1000, 0]);
    assert.equal(berth(['rm', 'files']).status, 0);
  });

  it('runs detached: exec, stop, start again and rm, leaving no mounts and no allocation', () => {
    const id = runDetached(['--userns=auto:size=2000', 'busybox', 'sh', '-c', 'echo started >> /log; sleep 120']);
    const dirOf = path.join(root, 'containers', id);
    assert.equal(inspect(id).HostConfig.UsernsMode, 'auto');
    let r = berth(['exec', id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
    assert.equal(r.status, 0, r.stderr);
    const [uid, map] = r.stdout.trim().split('\n');
    assert.equal(uid, '0');
    assert.deepEqual(parseMap(map)[0].filter((_, i) => i !== 1), [0, 2000]);
    assert.equal(berth(['stop', '-t', '1', id]).status, 0);
    assert.deepEqual(mountsOf(dirOf), [], 'the stopped container\'s root filesystem stays mounted');
    // Same id, same upper dir, the same maps on the layers.
    assert.equal(berth(['start', id]).status, 0);
    r = berth(['exec', id, 'sh', '-c', 'cat /log; stat -c %u /log /bin']);
    assert.equal(r.stdout, 'started\nstarted\n0\n0\n');
    assert.equal(allocations().length, 1);
    assert.equal(berth(['rm', '-f', id]).status, 0);
    assert.deepEqual(mountsOf(dirOf), []);
    assert.deepEqual(mountsOf(root), []);
    assert.deepEqual(allocations(), []);
  });

  it('gives concurrent containers disjoint ranges, and removal releases them', async () => {
    const runs = await Promise.all([0, 1, 2, 3].map(() => berthAsync(root, ['run', '-d', '--userns=auto:size=100000', 'busybox', 'sleep', '120'])));
    for (const r of runs) assert.equal(r.status, 0, r.stderr);
    const ids = runs.map((r) => r.stdout.trim());
    const uid = ids.map((id) => inspect(id).HostConfig.IDMappings.UidMap[0].split(':').map(Number));
    const gid = ids.map((id) => inspect(id).HostConfig.IDMappings.GidMap[0].split(':').map(Number));
    for (const maps of [uid, gid]) {
      const sorted = [...maps].sort((a, b) => a[1] - b[1]);
      for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i][1] >= sorted[i - 1][1] + sorted[i - 1][2], `overlap: ${JSON.stringify(sorted)}`);
    }
    // What the kernel applied is what was recorded.
    const pid = inspect(ids[2]).State.Pid;
    assert.deepEqual(parseMap(fs.readFileSync(`/proc/${pid}/uid_map`, 'utf8')), [uid[2]]);
    assert.equal(allocations().length, 4);

    // Freed ranges are handed out again: first fit puts the next one at the lowest.
    const lowest = Math.min(...uid.map((m) => m[1]));
    assert.equal(berth(['rm', '-f', ...ids]).status, 0);
    assert.deepEqual(allocations(), []);
    const again = runDetached(['--userns=auto:size=100000', 'busybox', 'sleep', '120']);
    assert.equal(Number(inspect(again).HostConfig.IDMappings.UidMap[0].split(':')[1]), lowest);
    assert.equal(berth(['rm', '-f', again]).status, 0);
  });

  it('reclaims the range of a container that is gone without releasing it (a crash)', () => {
    // What a berth killed between the allocation and its container's removal leaves: a
    // record whose container directory is gone.
    const first = runDetached(['--userns=auto', 'busybox', 'sleep', '120']);
    const taken = inspect(first).HostConfig.IDMappings.UidMap[0];
    const ghost = 'f'.repeat(64);
    fs.copyFileSync(path.join(root, 'userns', `${first}.json`), path.join(root, 'userns', `${ghost}.json`));
    assert.equal(berth(['rm', '-f', first]).status, 0);
    assert.deepEqual(allocations(), [`${ghost}.json`]);
    const next = runDetached(['--userns=auto', 'busybox', 'sleep', '120']);
    assert.equal(inspect(next).HostConfig.IDMappings.UidMap[0], taken);
    assert.deepEqual(allocations(), [`${next}.json`]);
    assert.equal(berth(['rm', '-f', next]).status, 0);
  });

  it('takes explicit --uidmap/--gidmap maps inside the subordinate ranges, never over an auto allocation', () => {
    const last = uidRanges[uidRanges.length - 1];
    const lastG = gidRanges[gidRanges.length - 1];
    const h = last.start + last.count - 70000;
    const g = lastG.start + lastG.count - 70000;
    let r = berth(['run', '--rm', '--uidmap', `0:${h}:65536`, '--gidmap', `0:${g}:65536`, 'busybox', 'sh', '-c',
      'cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /etc/passwd']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(parseMap(lines.slice(0, 2).join('\n')), [[0, h, 65536], [0, g, 65536]]);
    assert.equal(lines[2], '0:0');

    const auto = runDetached(['--userns=auto', 'busybox', 'sleep', '120']);
    const held = inspect(auto).HostConfig.IDMappings.UidMap[0].split(':').map(Number);
    r = berth(['run', '--rm', '--uidmap', `0:${held[1] + 10}:100`, 'busybox', 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /--uidmap 0:\d+:100: those host uids belong to a container run with --userns=auto/);
    assert.equal(berth(['rm', '-f', auto]).status, 0);
  });

  it('refuses bad input before anything is created', () => {
    const before = fs.readdirSync(path.join(root, 'containers'));
    const big = Math.max(...uidRanges.map((x) => x.count)) + 1;
    for (const [args, msg] of [
      [['--uidmap', '0:1048576'], /--uidmap "0:1048576": not CONTAINER_ID:HOST_ID:COUNT/],
      [['--uidmap', '0:x:10'], /not CONTAINER_ID:HOST_ID:COUNT/],
      [['--uidmap', '0:100000:0'], /COUNT must be at least 1/],
      [['--uidmap', '0:1000:65536'], /host uids 1000-66535 are not in the ranges \/etc\/subuid gives to "containers"/],
      [['--uidmap', '0:0:1'], /host uids 0-0 are not in the ranges/],
      [['--userns', `auto:size=${big}`], /the largest uid range for "containers" in \/etc\/subuid holds \d+ ids/],
      [['--userns', 'auto:uidmapping=0:1:1'], /option "uidmapping=0:1:1" is not supported/],
      [['--userns', 'keep-id'], /--userns=keep-id is not supported/],
      [['--userns', 'auto', '--uidmap', `0:${uidRanges[0].start}:10`], /cannot be combined/],
      [['--userns', 'auto', '-v', 'userns-vol:/data'], /-v "userns-vol:\/data": volumes are not supported with --userns yet/],
    ] as [string[], RegExp][]) {
      const r = berth(['run', '--rm', ...args, 'busybox', 'true']);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.match(r.stderr, /hint: /, `${args.join(' ')} gives no hint`);
    }
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')), before);
    assert.deepEqual(allocations(), []);
    assert.ok(!fs.existsSync(path.join(root, 'volumes', 'userns-vol')), 'the refused volume was created');
  });
});
