// Unpacks one image layer (a tar stream, gzip, zstd or plain) into a directory in overlay's
// format, safely against hostile layers. Called by LayerStore.ensure (layer-store.ts) in
// the Node host process; the layer's bytes come straight from the registry or an archive.
//
// Threat model: the tar is written by whoever published the image. Its names may hold
// "..", be absolute, or pass through symlinks planted by earlier entries; hardlinks may
// point anywhere. Every path is therefore resolved by the kernel with
// openat2(RESOLVE_IN_ROOT) relative to an fd on DEST, so nothing can land outside DEST, and
// the last component is always created with an *at call that does not follow symlinks.
// Lexical escapes ("../x") and hardlinks that leave the layer are refused outright rather
// than clamped: a layer that tries them is not one we want to half-apply.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import * as tar from 'tar-stream';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { native, O_PATH, RESOLVE_NO_SYMLINKS, type NativeAddon } from '../common/native';

export interface UnpackResult {
  /** "sha256:<hex>" of the uncompressed tar stream (the OCI diffID). */
  diffID: string;
  /** Bytes of regular file content written (hardlinks counted once), as Docker's layer size. */
  size: number;
}

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const SCHILY_XATTR = 'SCHILY.xattr.';
/** Raw PAX xattr values, attached to tar-stream's pax object (see rawPaxXattrs). */
const RAW_XATTRS = Symbol('berth.rawXattrs');
/** One entry of tar-stream's extractor: a (streamx) readable with its header. */
type Entry = tar.Extract extends AsyncIterable<infer S> ? S : never;
type Pax = Record<string, string> & { [RAW_XATTRS]?: Map<string, Buffer> };
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_RDONLY, S_IFCHR, S_IFBLK, S_IFIFO } =
  fs.constants;

/**
 * Unpacks the layer tar read from INPUT into DEST (created when missing; it should be
 * empty), in overlay's format: `.wh.NAME` becomes a 0:0 character device NAME and
 * `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. Owners, modes
 * (setuid included), nanosecond mtimes and PAX xattrs (SCHILY.xattr.*) are kept; directory
 * mtimes are set after their contents. Streams: memory use does not grow with the layer.
 *
 * On failure DEST holds a partial layer: the caller unpacks into a staging directory and
 * removes it.
 * @param input the layer blob as stored (compression detected from its first bytes)
 * @param dest absolute path of the directory to fill
 * @throws BerthError LAYER_CORRUPT (bad gzip/zstd data, a malformed or truncated tar, empty input),
 *   LAYER_HOSTILE_ENTRY (a name escaping DEST with "..", a hardlink to a target outside the
 *   layer or through a symlink; context.path is the entry name), LAYER_UNSUPPORTED_ENTRY
 *   (a tar entry type berth cannot represent), LAYER_UNPACK (a syscall failed; context has
 *   path, syscall, errno). An error of INPUT itself is rethrown unchanged.
 */
export async function unpackLayer(input: Readable, dest: string): Promise<UnpackResult> {
  let inputError: unknown;
  input.once('error', (err) => { inputError = err; });

  const { source, head } = await peek(input, 6);
  if (inputError) throw inputError;
  if (head.length === 0) throw new BerthError('LAYER_CORRUPT', 'read layer: empty input', { context: { path: dest } });

  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  fs.chmodSync(dest, 0o755);
  const rootFd = fs.openSync(dest, O_RDONLY | O_DIRECTORY);
  const writer = new LayerWriter(native(), rootFd, dest);
  const hash = createHash('sha256');
  const extract = rawXattrExtract();
  const format = formatOf(head);
  const streamed = pipeline(source, decompressor(format), tapHash(hash), extract);
  // Settled below either way; this keeps Node from reporting it as unhandled meanwhile.
  streamed.catch(() => undefined);

  try {
    for await (const entry of extract) await writer.entry(entry);
    await streamed;
    writer.finish();
  } catch (err) {
    // If a stream failed on its own (bad gzip, truncated tar), that is the root cause and
    // an entry cut short only its symptom. Leaving the loop early closes the extractor,
    // which the pipeline reports as a premature close: that one is our doing, not a cause.
    extract.destroy(err as Error);
    const streamErr = await streamed.then(() => undefined, (e: unknown) => e);
    if (inputError) throw inputError;
    const own = streamErr === undefined || streamErr === err
      || (streamErr as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
    const cause = own ? err : streamErr;
    if (cause instanceof BerthError) throw cause;
    throw new BerthError('LAYER_CORRUPT', `read ${format} layer: ${errMessage(cause)}`, {
      cause, context: { path: dest },
    });
  } finally {
    fs.closeSync(rootFd);
  }
  return { diffID: `sha256:${hash.digest('hex')}`, size: writer.size };
}

/** Reads at least N bytes (or all of a shorter input) and returns a stream that starts
 * again from the first byte, plus those bytes. Never reads more than the first chunks. */
async function peek(input: Readable, n: number): Promise<{ source: Readable; head: Buffer }> {
  const it = input[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  const first = head;
  const source = Readable.from((async function* () {
    try {
      if (first.length) yield first;
      while (!ended) {
        const r = await it.next();
        if (r.done) return;
        yield Buffer.from(r.value);
      }
    } finally {
      await it.return?.();
    }
  })(), { objectMode: false });
  return { source, head };
}

type Format = 'gzip' | 'zstd' | 'tar';

/** The format of a blob by its magic bytes: gzip 1f 8b, zstd 28 b5 2f fd, else plain tar. */
function formatOf(head: Buffer): Format {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'tar';
}

function decompressor(format: Format): Transform {
  if (format === 'gzip') return zlib.createGunzip();
  if (format === 'zstd') return zstdStream();
  return new PassThrough();
}

/** fzstd's push decoder as a Transform; it keeps only the frame's window in memory. */
function zstdStream(): Transform {
  const out: Buffer[] = [];
  const z = new ZstdDecompress((chunk) => { out.push(Buffer.from(chunk)); });
  const flush = (t: Transform) => { for (const b of out.splice(0)) t.push(b); };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        z.push(chunk);
        flush(this);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        z.push(new Uint8Array(0), true);
        flush(this);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}

function tapHash(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/**
 * A tar-stream extractor that also keeps PAX xattr values as raw bytes. tar-stream decodes
 * every PAX value as UTF-8, which mangles binary values such as security.capability
 * (cap_setuid is byte 0x80). It has no hook for this, so the instance's long-header decoder
 * is wrapped; if a future tar-stream renames it, values fall back to tar-stream's strings.
 */
function rawXattrExtract(): tar.Extract {
  const ex = tar.extract() as tar.Extract & { _decodeLongHeader?: (buf: Buffer) => void };
  const original = ex._decodeLongHeader;
  if (typeof original !== 'function') return ex;
  ex._decodeLongHeader = function (this: any, buf: Buffer) {
    original.call(this, buf);
    const type = this._header?.type;
    if (type === 'pax-header' && this._pax) this._pax[RAW_XATTRS] = rawPaxXattrs(buf);
    if (type === 'pax-global-header' && this._paxGlobal) this._paxGlobal[RAW_XATTRS] = rawPaxXattrs(buf);
  };
  return ex;
}

/** SCHILY.xattr.* records of a PAX header ("<len> <key>=<value>\n"), values as bytes. */
function rawPaxXattrs(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    const space = buf.indexOf(0x20, off);
    const len = space < 0 ? 0 : parseInt(buf.toString('latin1', off, space), 10);
    if (!len || off + len > buf.length) break;
    const record = buf.subarray(space + 1, off + len - 1);
    const eq = record.indexOf(0x3d);
    const key = eq < 0 ? '' : record.toString('utf8', 0, eq);
    if (key.startsWith(SCHILY_XATTR)) out.set(key.slice(SCHILY_XATTR.length), Buffer.from(record.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/** A library's error message, with a lower-case start as berth's own (STYLE.md). */
function errMessage(err: unknown): string {
  const m = (err as Error)?.message ?? String(err);
  return m.charAt(0).toLowerCase() + m.slice(1);
}

interface Times {
  atime: [number, number];
  mtime: [number, number];
}

/** Writes tar entries below one root fd. Every fd it opens it closes before returning. */
class LayerWriter {
  size = 0;
  /** Directory mtimes, applied by finish() once nothing more is written into them. */
  private dirTimes = new Map<string, Times>();

  constructor(private readonly sys: NativeAddon, private readonly rootFd: number,
    private readonly dest: string) {}

  async entry(entry: Entry): Promise<void> {
    const h = entry.header;
    const parts = cleanPath(h.name, h.name);
    const base = parts[parts.length - 1];
    try {
      if (parts.length === 0) {
        await drain(entry);
        if (h.type !== 'directory') throw hostile(h.name, 'is the layer root but not a directory');
        this.metadata('.', this.rootFd, '.', h);
        return;
      }
      if (base === WHITEOUT_OPAQUE || base.startsWith(WHITEOUT_PREFIX)) {
        await drain(entry);
        this.whiteout(parts, h.name);
        return;
      }
      await this.create(parts, entry);
    } catch (err) {
      entry.resume();
      throw this.wrap(err, h.name);
    }
  }

  /** Sets the deferred directory mtimes, deepest first so a parent's is not disturbed. */
  finish(): void {
    const dirs = [...this.dirTimes.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, t] of dirs) {
      try {
        if (rel === '.') {
          this.sys.utimensat(this.rootFd, '.', ...t.atime, ...t.mtime);
          continue;
        }
        const parts = rel.split('/');
        const base = parts[parts.length - 1];
        this.withParent(parts, false, (pfd) => this.sys.utimensat(pfd, base, ...t.atime, ...t.mtime));
      } catch (err) {
        throw this.wrap(err, rel);
      }
    }
  }

  private async create(parts: string[], entry: Entry): Promise<void> {
    const h = entry.header;
    const base = parts[parts.length - 1];
    const rel = parts.join('/');
    if (h.type === 'link') {
      await drain(entry);
      this.hardlink(parts, h.linkname ?? '', h.name);
      return;
    }
    await this.withParentAsync(parts, async (pfd) => {
      this.clear(pfd, base, h.type === 'directory');
      switch (h.type) {
        case 'file':
        case 'contiguous-file':
          await this.writeFile(pfd, base, entry);
          break;
        case 'directory':
          await drain(entry);
          if (!this.exists(pfd, base)) this.sys.mkdirat(pfd, base, 0o700);
          break;
        case 'symlink':
          await drain(entry);
          this.sys.symlinkat(h.linkname ?? '', pfd, base);
          break;
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          await drain(entry);
          const type = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
          this.sys.mknodat(pfd, base, type | 0o600, h.devmajor ?? 0, h.devminor ?? 0);
          break;
        }
        default:
          await drain(entry);
          throw new BerthError('LAYER_UNSUPPORTED_ENTRY', `unpack "${h.name}": unsupported tar entry type`,
            { context: { path: h.name } });
      }
      this.metadata(rel, pfd, base, h);
    });
  }

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears file capabilities),
   * then times; a directory's times wait for finish(). */
  private metadata(rel: string, pfd: number, base: string, h: tar.Header): void {
    const pax = (h.pax ?? undefined) as Pax | undefined;
    const uid = pax?.uid !== undefined ? Number(pax.uid) : h.uid ?? 0;
    const gid = pax?.gid !== undefined ? Number(pax.gid) : h.gid ?? 0;
    this.sys.fchownat(pfd, base, uid, gid);
    if (h.type !== 'symlink') this.sys.fchmodat(pfd, base, (h.mode ?? 0o644) & 0o7777);

    for (const [key, value] of xattrsOf(pax)) {
      // Overlay's own attributes (redirect, metacopy, origin, ...) would change how the
      // kernel reads this layer; only whiteout entries may set opaque, below.
      if (key.startsWith('trusted.overlay.')) continue;
      this.sys.lsetxattr(pfd, base, key, value);
    }

    const mtime = paxTime(pax?.mtime) ?? dateTime(h.mtime);
    const times: Times = { mtime, atime: paxTime(pax?.atime) ?? mtime };
    if (h.type === 'directory') this.dirTimes.set(rel, times);
    else this.sys.utimensat(pfd, base, ...times.atime, ...times.mtime);
  }

  private whiteout(parts: string[], name: string): void {
    const base = parts[parts.length - 1];
    this.withParent(parts, true, (pfd) => {
      if (base === WHITEOUT_OPAQUE) {
        this.sys.lsetxattr(pfd, '', OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
        return;
      }
      // Other ".wh..wh." names are aufs bookkeeping (.wh..wh.plnk); Docker skips them too.
      if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return;
      const victim = base.slice(WHITEOUT_PREFIX.length);
      if (victim === '' || victim === '.' || victim === '..') throw hostile(name, 'whiteout names no file');
      this.clear(pfd, victim, false);
      this.sys.mknodat(pfd, victim, S_IFCHR, 0, 0);
    });
  }

  /** Links PARTS to the entry LINKNAME names. The target is resolved inside the root without
   * following any symlink: a tar records a hardlink target by its real path, so a symlink
   * on the way means a crafted layer; and it must already exist in this layer. */
  private hardlink(parts: string[], linkname: string, name: string): void {
    const target = cleanPath(linkname, name);
    if (target.length === 0) throw hostile(name, `hardlink to "${linkname}" names the layer root`);
    const tbase = target[target.length - 1];
    let tfd: number;
    try {
      tfd = this.sys.openat2(this.rootFd, parentOf(target), O_PATH | O_DIRECTORY, 0, RESOLVE_NO_SYMLINKS);
    } catch (err) {
      if (isErrno(err, 'ELOOP')) throw hostile(name, `hardlink to "${linkname}" passes through a symlink`);
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) {
        throw hostile(name, `hardlink to "${linkname}" outside the layer`);
      }
      throw err;
    }
    try {
      const st = lstatAt(tfd, tbase);
      if (!st) throw hostile(name, `hardlink to "${linkname}" outside the layer`);
      if (st.isDirectory()) throw hostile(name, `hardlink to directory "${linkname}"`);
      if (target.join('/') === parts.join('/')) return;
      this.withParent(parts, true, (pfd) => {
        this.clear(pfd, parts[parts.length - 1], false);
        this.sys.linkat(tfd, tbase, pfd, parts[parts.length - 1]);
      });
    } finally {
      fs.closeSync(tfd);
    }
  }

  private async writeFile(pfd: number, base: string, entry: Entry): Promise<void> {
    const fd = this.sys.openat2(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of entry) {
        const buf = chunk as Buffer;
        // Synchronous: a threadpool round trip per chunk made unpacking twice as slow.
        for (let off = 0; off < buf.length;) off += fs.writeSync(fd, buf, off, buf.length - off);
        this.size += buf.length;
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes whatever is at BASE unless both it and the new entry are directories (a
   * later entry replaces an earlier one, as tar does). Never writes through old files, so
   * a hardlink made earlier cannot be used to change its target. */
  private clear(pfd: number, base: string, keepDir: boolean): void {
    const st = lstatAt(pfd, base);
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDir) return;
      // The /proc path pins the parent by fd; rm does not follow symlinks it meets inside.
      fs.rmSync(`/proc/self/fd/${pfd}/${base}`, { recursive: true, force: true });
      return;
    }
    this.sys.unlinkat(pfd, base, 0);
  }

  private exists(pfd: number, base: string): boolean {
    return lstatAt(pfd, base) !== null;
  }

  /** Calls FN with an O_PATH fd on the parent directory of PARTS, resolved in the root and
   * created (0755, root-owned, like Docker's implied directories) when MKDIR is set. */
  private withParent<T>(parts: string[], mkdir: boolean, fn: (pfd: number) => T): T {
    const pfd = this.openDir(parts.slice(0, -1), mkdir);
    try {
      return fn(pfd);
    } finally {
      fs.closeSync(pfd);
    }
  }

  private async withParentAsync(parts: string[], fn: (pfd: number) => Promise<void>): Promise<void> {
    const pfd = this.openDir(parts.slice(0, -1), true);
    try {
      await fn(pfd);
    } finally {
      fs.closeSync(pfd);
    }
  }

  /** Each prefix is resolved from the root, so a symlink among them (for example
   * "lib -> usr/lib") is followed as the container would, and stays inside DEST. */
  private openDir(dirs: string[], mkdir: boolean): number {
    const flags = O_PATH | O_DIRECTORY;
    try {
      return this.sys.openat2(this.rootFd, dirs.join('/') || '.', flags);
    } catch (err) {
      if (!mkdir || !isErrno(err, 'ENOENT')) throw err;
    }
    let fd = this.sys.openat2(this.rootFd, '.', flags);
    try {
      for (let i = 0; i < dirs.length; i++) {
        const prefix = dirs.slice(0, i + 1).join('/');
        let next: number;
        try {
          next = this.sys.openat2(this.rootFd, prefix, flags);
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
          this.sys.mkdirat(fd, dirs[i], 0o755);
          next = this.sys.openat2(fd, dirs[i], flags, 0, RESOLVE_NO_SYMLINKS);
        }
        fs.closeSync(fd);
        fd = next;
      }
      return fd;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  private wrap(err: unknown, name: string): BerthError {
    if (err instanceof BerthError) return err;
    const e = wrapSystemError('LAYER_UNPACK', `unpack "${name}" into "${this.dest}"`, err);
    e.context.path = `${this.dest}/${name.replace(/^\/+/, '')}`;
    return e;
  }
}

/**
 * The components of a tar name, relative to the layer root: "/" and "." dropped, ".."
 * applied lexically (as Docker and containerd clean names). An absolute name is taken as
 * relative to the root; a ".." that would climb above it is refused.
 * @throws BerthError LAYER_HOSTILE_ENTRY
 */
function cleanPath(name: string, entryName: string): string[] {
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) throw hostile(entryName, `"${name}" escapes the layer`);
      parts.pop();
      continue;
    }
    parts.push(c);
  }
  return parts;
}

function parentOf(parts: string[]): string {
  return parts.slice(0, -1).join('/') || '.';
}

function hostile(name: string, why: string): BerthError {
  return new BerthError('LAYER_HOSTILE_ENTRY', `unpack "${name}": ${why}`, {
    context: { path: name }, hint: 'the layer is malformed or malicious; it was not stored',
  });
}

function lstatAt(pfd: number, base: string): fs.Stats | null {
  try {
    return fs.lstatSync(`/proc/self/fd/${pfd}/${base}`);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** Consumes an entry's data (needed before tar-stream yields the next entry). A directory's
 * stream never carries data and, with a bogus non-zero size, would never end: skipped. */
function drain(entry: Entry): Promise<void> {
  if (entry.header.type === 'directory') return Promise.resolve();
  return new Promise((resolve, reject) => {
    entry.on('end', resolve);
    entry.on('error', reject);
    entry.resume();
  });
}

function xattrsOf(pax: Pax | undefined): [string, Buffer][] {
  if (!pax) return [];
  const raw = pax[RAW_XATTRS];
  if (raw) return [...raw.entries()];
  return Object.entries(pax)
    .filter(([k]) => k.startsWith(SCHILY_XATTR))
    .map(([k, v]) => [k.slice(SCHILY_XATTR.length), Buffer.from(v, 'utf8')]);
}

/** "1700000000.123456789" -> [sec, nsec], exactly (a float would lose the nanoseconds). */
function paxTime(v: string | undefined): [number, number] | undefined {
  const m = v === undefined ? null : /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(v.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number((m[2] ?? '').padEnd(9, '0'))];
}

function dateTime(d: Date | undefined): [number, number] {
  const ms = d?.getTime() ?? 0;
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}
