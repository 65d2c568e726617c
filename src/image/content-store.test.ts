// ContentStore on a temp dir: verified puts, refused mismatches, no debris in tmp/.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { ContentStore } from './content-store';

const digestOf = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const code = (c: string) => (e: unknown) => e instanceof BerthError && e.code === c;

describe('ContentStore', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cs-'));
  const store = new ContentStore(dir);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('stores a verified blob under its digest and reads it back', async () => {
    const data = Buffer.from(JSON.stringify({ hello: 'world' }));
    const d = digestOf(data);
    const seen: number[] = [];
    assert.equal(await store.put(d, Readable.from([data.subarray(0, 5), data.subarray(5)]), { expectedSize: data.length, onProgress: (n) => seen.push(n) }), data.length);
    assert.deepEqual(seen, [5, data.length]);
    assert.equal(store.has(d), true);
    assert.equal(store.path(d), path.join(dir, 'blobs', 'sha256', d.slice(7)));
    assert.equal(store.size(d), data.length);
    assert.deepEqual(store.readJSON(d), { hello: 'world' });
    assert.deepEqual(store.list(), [d]);
    store.remove(d);
    assert.equal(store.has(d), false);
    assert.throws(() => store.readJSON(d), code('IMAGE_BLOB_NOT_FOUND'));
  });

  it('refuses content that does not match, naming both digests, and stores nothing', async () => {
    const expected = digestOf('right');
    await assert.rejects(store.put(expected, Readable.from([Buffer.from('wrong')])), (e: BerthError) =>
      e.code === 'IMAGE_DIGEST_MISMATCH' && e.message.includes(expected) && e.message.includes(digestOf('wrong')));
    await assert.rejects(store.put(digestOf('right'), Readable.from([Buffer.from('right, and more')]), { expectedSize: 5 }),
      code('IMAGE_SIZE_MISMATCH'));
    assert.equal(store.has(expected), false);
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
  });

  it('passes on a source error and leaves no temporary file', async () => {
    const failing = new Readable({ read() { this.destroy(new Error('connection reset')); } });
    await assert.rejects(store.put(digestOf('x'), failing), /connection reset/);
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
  });

  it('refuses digests that are not sha256 hex, so no path leaves blobs/', () => {
    for (const bad of ['sha256:../../etc/passwd', 'sha512:' + 'a'.repeat(128), 'sha256:' + 'A'.repeat(64), '']) {
      assert.throws(() => store.path(bad), code('IMAGE_DIGEST_INVALID'));
    }
  });

  it('finds a blob changed on disk when reading it as JSON', async () => {
    const data = Buffer.from('{"a":1}');
    await store.put(digestOf(data), Readable.from([data]));
    fs.writeFileSync(store.path(digestOf(data)), '{"a":2}');
    assert.throws(() => store.readJSON(digestOf(data)), code('IMAGE_BLOB_CORRUPT'));
  });
});
