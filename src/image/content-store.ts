// The content store: `<root>/blobs/sha256/<hex>`, blobs exactly as registries serve them
// (docs/images.md). Written by pull/load/import in the berth process under the store lock;
// a blob is hashed while it streams to `tmp/`, and only a verified one is renamed in.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { isDigest } from './reference';
import { tmpName } from '../common/tmp';

export interface PutOptions {
  /** Bytes the blob must have (the descriptor's size); a longer stream is cut off early. */
  expectedSize?: number;
  /** Called after each chunk is written, with the bytes written so far. */
  onProgress?: (bytes: number) => void;
}

export class ContentStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobDir = path.join(root, 'blobs', 'sha256');
    this.tmpDir = path.join(root, 'tmp');
  }

  /**
   * Where the blob DIGEST is, or would be. Validates DIGEST, so that no caller can make a
   * path outside `blobs/` from a digest a registry sent.
   * @throws BerthError IMAGE_DIGEST_INVALID
   */
  path(digest: string): string {
    if (!isDigest(digest)) {
      throw new BerthError('IMAGE_DIGEST_INVALID', `digest "${digest}" is not valid`, {
        hint: 'a digest is "sha256:" and 64 lower-case hex digits',
      });
    }
    return path.join(this.blobDir, digest.slice('sha256:'.length));
  }

  has(digest: string): boolean {
    return fs.existsSync(this.path(digest));
  }

  /**
   * Size of a stored blob in bytes.
   * @throws BerthError IMAGE_BLOB_NOT_FOUND, IMAGE_DIGEST_INVALID
   */
  size(digest: string): number {
    try {
      return fs.statSync(this.path(digest)).size;
    } catch (err) {
      throw this.readError(digest, err);
    }
  }

  /**
   * A stream of a stored blob; not verified here (see `readJSON` for small blobs).
   * @throws BerthError IMAGE_BLOB_NOT_FOUND, IMAGE_DIGEST_INVALID
   */
  read(digest: string): Readable {
    const file = this.path(digest);
    if (!fs.existsSync(file)) throw this.readError(digest, Object.assign(new Error('ENOENT'), { code: 'ENOENT' }));
    return fs.createReadStream(file);
  }

  /**
   * Reads a small blob (manifest, index, config), checks its digest again, parses it.
   * @throws BerthError IMAGE_BLOB_NOT_FOUND, IMAGE_BLOB_CORRUPT, IMAGE_BLOB_NOT_JSON
   */
  readJSON<T = unknown>(digest: string): T {
    let data: Buffer;
    try {
      data = fs.readFileSync(this.path(digest));
    } catch (err) {
      throw this.readError(digest, err);
    }
    const actual = 'sha256:' + createHash('sha256').update(data).digest('hex');
    if (actual !== digest) {
      throw new BerthError('IMAGE_BLOB_CORRUPT', `stored blob ${digest} has digest ${actual}`, {
        hint: 'the content store was modified outside berth; remove the image and pull it again',
        context: { path: this.path(digest) },
      });
    }
    try {
      return JSON.parse(data.toString('utf8')) as T;
    } catch (err) {
      throw new BerthError('IMAGE_BLOB_NOT_JSON', `blob ${digest} is not valid JSON`, { cause: err });
    }
  }

  /**
   * Stores the blob read from SOURCE if its sha256 is EXPECTED: streamed to `tmp/` and
   * hashed on the way, fsync'd, renamed to `blobs/sha256/<hex>`, its directory fsync'd.
   * Memory use does not depend on the blob's size. On any failure nothing is stored and
   * the temporary file is removed; errors of SOURCE itself are passed on unchanged.
   * @param expected "sha256:<hex>"
   * @returns the size in bytes
   * @throws BerthError IMAGE_DIGEST_MISMATCH (naming both digests), IMAGE_SIZE_MISMATCH,
   *   IMAGE_DIGEST_INVALID, IMAGE_BLOB_WRITE
   */
  async put(expected: string, source: Readable | AsyncIterable<Buffer>, opts: PutOptions = {}): Promise<number> {
    const dest = this.path(expected);
    const tmp = path.join(this.tmpDir, tmpName(`blob-${expected.slice(7, 19)}`));
    const hash = createHash('sha256');
    let size = 0;
    let stored = false;
    try {
      try {
        fs.mkdirSync(this.tmpDir, { recursive: true });
        fs.mkdirSync(this.blobDir, { recursive: true });
      } catch (err) {
        throw wrapSystemError('IMAGE_BLOB_WRITE', `create content store directories under "${this.root}"`, err);
      }
      const fh = await this.open(tmp);
      try {
        for await (const chunk of source) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          size += buf.length;
          if (opts.expectedSize !== undefined && size > opts.expectedSize) throw this.sizeError(expected, opts.expectedSize, size, true);
          hash.update(buf);
          await this.writeAll(fh, buf, tmp);
          opts.onProgress?.(size);
        }
        await fh.sync().catch((err) => {
          throw wrapSystemError('IMAGE_BLOB_WRITE', `fsync "${tmp}"`, err);
        });
      } finally {
        await fh.close();
      }

      const actual = 'sha256:' + hash.digest('hex');
      if (actual !== expected) {
        throw new BerthError('IMAGE_DIGEST_MISMATCH', `blob has digest ${actual}, expected ${expected}`, {
          hint: 'the registry or the file sent different content than its manifest names; nothing was stored',
        });
      }
      if (opts.expectedSize !== undefined && size !== opts.expectedSize) throw this.sizeError(expected, opts.expectedSize, size, false);

      try {
        fs.renameSync(tmp, dest);
        stored = true;
        this.syncDir(this.blobDir);
      } catch (err) {
        throw wrapSystemError('IMAGE_BLOB_WRITE', `store blob ${expected} as "${dest}"`, err);
      }
      return size;
    } finally {
      if (!stored) fs.rmSync(tmp, { force: true });
      // An unread or half-read source (a failure before or while reading) holds a socket.
      if (typeof (source as Readable).destroy === 'function' && !(source as Readable).readableEnded) (source as Readable).destroy();
    }
  }

  /** Removes a blob; absent is fine. @throws BerthError IMAGE_BLOB_WRITE */
  remove(digest: string): void {
    try {
      fs.rmSync(this.path(digest), { force: true });
    } catch (err) {
      throw wrapSystemError('IMAGE_BLOB_WRITE', `remove blob ${digest}`, err);
    }
  }

  /** Digests of every stored blob. */
  list(): string[] {
    try {
      return fs.readdirSync(this.blobDir).map((h) => `sha256:${h}`).filter(isDigest);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw wrapSystemError('IMAGE_BLOB_WRITE', `list "${this.blobDir}"`, err);
    }
  }

  private async open(tmp: string): Promise<fs.promises.FileHandle> {
    try {
      return await fs.promises.open(tmp, 'wx', 0o644);
    } catch (err) {
      throw wrapSystemError('IMAGE_BLOB_WRITE', `create "${tmp}"`, err);
    }
  }

  private async writeAll(fh: fs.promises.FileHandle, buf: Buffer, tmp: string): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      try {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      } catch (err) {
        throw wrapSystemError('IMAGE_BLOB_WRITE', `write "${tmp}"`, err, 'check free space in the berth root');
      }
    }
  }

  // The rename is durable only once the directory entry is on disk too (fsync(2) NOTES).
  private syncDir(dir: string): void {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  private sizeError(digest: string, expected: number, actual: number, early: boolean): BerthError {
    const got = early ? `more than ${expected}` : String(actual);
    return new BerthError('IMAGE_SIZE_MISMATCH', `blob ${digest} has ${got} bytes, expected ${expected}`, {
      hint: 'the registry or the file sent different content than its manifest names; nothing was stored',
    });
  }

  private readError(digest: string, err: unknown): BerthError {
    if (isErrno(err, 'ENOENT')) {
      return new BerthError('IMAGE_BLOB_NOT_FOUND', `blob ${digest} is not in the content store`, {
        context: { path: this.path(digest) }, cause: err,
      });
    }
    if (err instanceof BerthError) return err;
    return wrapSystemError('IMAGE_BLOB_READ', `read blob ${digest}`, err);
  }
}
