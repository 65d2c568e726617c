// --userns parsing and the range allocator (userns.ts), on temp subuid/subgid files and a
// temp engine root: the flag table, a missing "containers" entry, first fit around other
// containers' ranges, exhaustion, stale records, explicit maps against auto ones. The
// containers themselves are tested in test/integration/security-userns.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { allocateUserns, checkUsernsRequest, parseUsernsOptions, readSubids, releaseUserns } from './userns';

const code = async (fn: () => unknown): Promise<string> => {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof BerthError, String(err));
    return err.code;
  }
  return 'no error';
};

describe('parseUsernsOptions', () => {
  it('reads podman\'s flags', () => {
    assert.deepEqual(parseUsernsOptions(undefined), { mode: 'host' });
    assert.deepEqual(parseUsernsOptions('host'), { mode: 'host' });
    assert.deepEqual(parseUsernsOptions('auto'), { mode: 'auto', size: 65536 });
    assert.deepEqual(parseUsernsOptions('auto:size=1024'), { mode: 'auto', size: 1024 });
    const m = { containerID: 0, hostID: 200000, size: 10 };
    // --uidmap alone maps gids the same way.
    assert.deepEqual(parseUsernsOptions(undefined, ['0:200000:10']), { mode: 'private', uidMappings: [m], gidMappings: [m] });
    assert.deepEqual(parseUsernsOptions(undefined, ['0:200000:10'], ['0:300000:10']),
      { mode: 'private', uidMappings: [m], gidMappings: [{ ...m, hostID: 300000 }] });
  });

  it('refuses what it does not know, with a code', async () => {
    for (const [userns, uid, gid, want] of [
      ['auto:size=0', [], [], 'USERNS_SIZE'], ['auto:size=x', [], [], 'USAGE'], ['keep-id', [], [], 'USAGE'],
      ['host:x', [], [], 'USAGE'], ['auto', ['0:1:1'], [], 'USAGE'], [undefined, ['0:1'], [], 'USERNS_INVALID_MAP'],
      [undefined, ['-1:1:1'], [], 'USERNS_INVALID_MAP'], [undefined, ['0:1:0'], [], 'USERNS_INVALID_MAP'],
      [undefined, ['0:4294967290:10'], [], 'USERNS_INVALID_MAP'], [undefined, [], ['0:1:1'], 'USAGE'],
      [undefined, ['0:100:10', '5:200:10'], [], 'USERNS_INVALID_MAP'], [undefined, ['0:100:10', '20:105:10'], [], 'USERNS_INVALID_MAP'],
      // Review: root unmapped failed late ("create mount point /dev/pts: EOVERFLOW"); more than
      // 340 maps failed with "file name too long".
      [undefined, ['1:200000:100'], [], 'USERNS_INVALID_MAP'], [undefined, ['0:200000:100'], ['1:200000:100'], 'USERNS_INVALID_MAP'],
      [undefined, Array.from({ length: 341 }, (_, i) => `${i}:${200000 + i}:1`), [], 'USERNS_INVALID_MAP'],
      [undefined, Array.from({ length: 300 }, (_, i) => `${i * 10}:${3000000000 + i * 10}:1`), [], 'USERNS_INVALID_MAP'],
    ] as [string | undefined, string[], string[], string][]) {
      assert.equal(await code(() => parseUsernsOptions(userns, uid, gid)), want, `${userns} ${uid} ${gid}`);
    }
  });
});

describe('the range allocator', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-userns-unit-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const files = { subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid') };
  const root = path.join(dir, 'root');
  let n = 0;
  /** A container directory, as ContainerStore.create makes one. */
  const container = () => {
    const id = (++n).toString(16).padStart(64, '0');
    fs.mkdirSync(path.join(root, 'containers', id), { recursive: true });
    // Recorded: a directory without container.json is an orphan once no berth holds it.
    fs.writeFileSync(path.join(root, 'containers', id, 'container.json'), '{}');
    return id;
  };

  it('needs a "containers" line, by name or by its uid', async () => {
    fs.writeFileSync(files.subuid, '# comment\nalice:100000:65536\n');
    fs.writeFileSync(files.subgid, 'alice:100000:65536\n');
    assert.equal(await code(() => readSubids(files.subuid)), 'USERNS_NO_SUBIDS');
    assert.equal(await code(() => checkUsernsRequest({ mode: 'auto', size: 10 }, files)), 'USERNS_NO_SUBIDS');
    fs.writeFileSync(files.subuid, 'alice:100000:65536\ncontainers:300000:1000\ncontainers:200000:1000\nbroken line\n');
    assert.deepEqual(readSubids(files.subuid), [{ start: 200000, count: 1000 }, { start: 300000, count: 1000 }]);
  });

  it('allocates first fit around what other containers hold, and reclaims stale records', async () => {
    fs.writeFileSync(files.subuid, 'containers:100000:3000\n');
    fs.writeFileSync(files.subgid, 'containers:500000:2000\ncontainers:502000:1000\n');
    const a = container();
    const b = container();
    const c = container();
    const first = await allocateUserns(root, a, { mode: 'auto', size: 1000 }, files);
    assert.deepEqual(first!.uidMappings, [{ containerID: 0, hostID: 100000, size: 1000 }]);
    assert.deepEqual(first!.gidMappings, [{ containerID: 0, hostID: 500000, size: 1000 }]);
    assert.equal((await allocateUserns(root, b, { mode: 'auto', size: 1500 }, files))!.uidMappings[0].hostID, 101000);
    assert.equal(await code(() => allocateUserns(root, c, { mode: 'auto', size: 1000 }, files)), 'USERNS_EXHAUSTED');
    assert.equal(await code(() => allocateUserns(root, c, { mode: 'auto', size: 3001 }, files)), 'USERNS_SIZE');
    // Adjacent subgid lines count as one range.
    assert.equal((await allocateUserns(root, c, { mode: 'auto', size: 500 }, files))!.gidMappings[0].hostID, 502500);
    releaseUserns(root, a);
    assert.equal((await allocateUserns(root, container(), { mode: 'auto', size: 1000 }, files))!.uidMappings[0].hostID, 100000);
    // b's directory is gone without a release (a crash): its ids are free again.
    fs.rmSync(path.join(root, 'containers', b), { recursive: true });
    assert.equal((await allocateUserns(root, container(), { mode: 'auto', size: 1500 }, files))!.uidMappings[0].hostID, 101000);
    assert.ok(!fs.existsSync(path.join(root, 'userns', `${b}.json`)));
  });

  it('takes explicit maps inside the ranges, apart from auto allocations', async () => {
    fs.writeFileSync(files.subuid, 'containers:100000:3000\n');
    fs.writeFileSync(files.subgid, 'containers:100000:3000\n');
    fs.rmSync(root, { recursive: true, force: true });
    const auto = await allocateUserns(root, container(), { mode: 'auto', size: 1000 }, files);
    assert.equal(auto!.uidMappings[0].hostID, 100000);
    const maps = (h: number) => ({ mode: 'private' as const, uidMappings: [{ containerID: 0, hostID: h, size: 100 }],
      gidMappings: [{ containerID: 0, hostID: h, size: 100 }] });
    assert.equal(await code(() => allocateUserns(root, container(), maps(100950), files)), 'USERNS_RANGE_IN_USE');
    assert.equal(await code(() => allocateUserns(root, container(), maps(99950), files)), 'USERNS_NOT_SUBORDINATE');
    // Two containers may share explicit maps on purpose; auto then goes around them.
    await allocateUserns(root, container(), maps(101000), files);
    await allocateUserns(root, container(), maps(101000), files);
    assert.equal((await allocateUserns(root, container(), { mode: 'auto', size: 1000 }, files))!.uidMappings[0].hostID, 101100);
  });
});
