// A container's files from the host: `berth diff` (its overlay upper dir against the
// image's layers), `berth export` (a tar of the merged root filesystem, by GNU tar) and
// `berth cp` both ways. Called by cli/commands/containers-ops.ts. Node host process, root.
//
// cp's threat model: the container (running, or its image) controls every name in its
// root filesystem, so a path inside it is never resolved by the host's lookup. Each step is
// openat2(RESOLVE_IN_ROOT) from the root (symlinks, "..", absolute names stay inside it)
// for the parent, then one plain name under /proc/self/fd/<parent fd>, opened with
// O_NOFOLLOW: a symlink planted there cannot send a read or a write outside the root.
//
// Which root: a running container's own, /proc/<pid>/root, so cp sees what the container
// sees (volumes, binds, tmpfs, the generated /etc/hosts, hostname and resolv.conf: the
// kernel follows its mounts). A stopped one's overlay, with its bind mounts (volumes,
// binds, the /etc files, from config.json) laid over by path; its tmpfs mounts are gone.
// Export is Docker's: the root filesystem alone, without what is mounted on it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import type { Logger } from '../common/log';
import { AT_FDCWD, native, O_PATH } from '../common/native';
import type { Stores } from '../image/stores';
import { pidStartTime } from '../runtime/state';
import { mountOverlay, unmountOverlay } from '../storage/overlay';
import { ContainerRecord, ContainerStore } from './containers';
import { isActive, resolveContainer, runtimeContext, withEngineLock } from './lifecycle';
import { hostIdOf } from './userns';

// ---- the merged root filesystem ------------------------------------------------------

function isMountpoint(dir: string): boolean {
  try {
    return fs.lstatSync(dir).dev !== fs.lstatSync(path.dirname(dir)).dev;
  } catch {
    return false;
  }
}

function imageLowerDirs(stores: Stores, rec: ContainerRecord): string[] {
  const img = stores.images.resolve(rec.imageId);
  return [...img.layers].reverse().map((c) => stores.layers.path(c));
}

/**
 * Runs FN with the container's merged root filesystem. A container that has exited has it
 * unmounted: it is mounted for FN and unmounted after, all under the engine lock, so that
 * no `rm` or `start` runs meanwhile.
 * @throws BerthError STORAGE_MOUNT, STORAGE_UNMOUNT, IMAGE_NOT_FOUND
 */
export async function withRootfs<T>(stores: Stores, rec: ContainerRecord, fn: (rootfs: string) => Promise<T> | T): Promise<T> {
  const cs = new ContainerStore(stores.root);
  const rootfs = cs.path(rec.id, 'rootfs');
  if (isActive(rec) && isMountpoint(rootfs)) return fn(rootfs);
  return withEngineLock(stores.root, async () => {
    if (isMountpoint(rootfs)) return fn(rootfs);
    mountOverlay(imageLowerDirs(stores, rec), cs.path(rec.id, 'upper'), cs.path(rec.id, 'work'), rootfs, rec.userns);
    try {
      return await fn(rootfs);
    } finally {
      unmountOverlay(rootfs);
    }
  });
}

// ---- diff ----------------------------------------------------------------------------

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

const isWhiteout = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

function isOpaque(dir: string): boolean {
  try {
    return native().lgetxattr(AT_FDCWD, dir, 'trusted.overlay.opaque')?.toString() === 'y';
  } catch {
    return false;
  }
}

/** True if REL is in the image the layers LOWERS (top first) make, as overlayfs merges them. */
function inImage(lowers: string[], rel: string): boolean {
  const parts = rel.split('/').filter(Boolean);
  for (const layer of lowers) {
    let p = layer;
    let stop = false;
    let found = true;
    for (let i = 0; i < parts.length; i++) {
      p = path.join(p, parts[i]);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        found = false;
        break;
      }
      // A whiteout or a non-directory hides the name in every layer below.
      if (isWhiteout(st)) return false;
      if (i < parts.length - 1) {
        if (!st.isDirectory()) return false;
        if (isOpaque(p)) stop = true;
      }
    }
    if (found) return true;
    if (stop) return false;
  }
  return false;
}

/**
 * `berth diff`: what the container changed against its image, from its overlay upper dir:
 * whiteouts are D, names the image lacks are A, names it has are C (a directory only when
 * something under it changed, or it was made opaque). The files the engine bind-mounts
 * (/etc/hosts, ...) and the mount points it made are left out, as Docker's init layer does.
 * @throws BerthError CONTAINER_NOT_FOUND, IMAGE_NOT_FOUND
 */
export async function diffContainer(stores: Stores, ref: string, log: Logger): Promise<Change[]> {
  const rec = await resolveContainer(stores.root, ref, log);
  const cs = new ContainerStore(stores.root);
  const upper = cs.path(rec.id, 'upper');
  const lowers = imageLowerDirs(stores, rec);
  let mountPoints = new Set<string>();
  try {
    const spec = JSON.parse(fs.readFileSync(cs.path(rec.id, 'config.json'), 'utf8')) as { mounts?: { destination: string }[] };
    mountPoints = new Set((spec.mounts ?? []).map((m) => path.posix.normalize(m.destination)));
  } catch {
    // no config.json: report everything
  }
  // A running container changes its files meanwhile: what is gone by the time it is read
  // is left out, as if the walk had come a moment later.
  const gone = (err: unknown) => isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR');
  const walk = (rel: string): Change[] => {
    const out: Change[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(path.join(upper, rel)).sort();
    } catch (err) {
      if (gone(err)) return out;
      throw err;
    }
    for (const name of names) {
      const r = path.posix.join(rel, name);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(upper, r));
      } catch (err) {
        if (gone(err)) continue;
        throw err;
      }
      const skip = mountPoints.has(r);
      if (isWhiteout(st)) {
        if (!skip) out.push({ kind: 'D', path: r });
        continue;
      }
      const had = inImage(lowers, r);
      if (!st.isDirectory()) {
        if (!skip) out.push({ kind: had ? 'C' : 'A', path: r });
        continue;
      }
      const below = walk(r);
      if (!skip && (!had || below.length || isOpaque(path.join(upper, r)))) out.push({ kind: had ? 'C' : 'A', path: r });
      out.push(...below);
    }
    return out;
  };
  return walk('/');
}

// ---- export --------------------------------------------------------------------------

/**
 * `berth export`: a tar of the container's root filesystem (GNU tar, numeric owners, not
 * crossing mounts) to OUTPUT, or to stdout when OUTPUT is undefined. As `docker export`,
 * volumes, binds and tmpfs mounts are not in it (the directory under a mount point is),
 * and neither is the content of the engine's /etc files: the host's view of the overlay
 * has none of the container's mounts.
 * @throws BerthError CONTAINER_NOT_FOUND, EXPORT_FAILED, STORAGE_MOUNT
 */
export async function exportContainer(stores: Stores, ref: string, output: string | undefined, log: Logger): Promise<{ outputClosed: boolean }> {
  const rec = await resolveContainer(stores.root, ref, log);
  let outputClosed = false;
  // -o FILE: tar writes a temporary file beside it, renamed over FILE once whole, so a
  // failed or killed export (a full disk, a bad path) never leaves a truncated archive.
  const dest = output ? path.resolve(output) : undefined;
  const tmp = dest ? path.join(path.dirname(dest), `.${path.basename(dest)}.berth-${process.pid}`) : undefined;
  if (tmp) {
    try {
      fs.closeSync(fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644));
    } catch (err) {
      throw wrapSystemError('EXPORT_FAILED', `export container "${rec.name}": cannot write in ${path.dirname(dest!)}`, err,
        'give -o a file in a directory that exists and is writable');
    }
  }
  try {
    await withRootfs(stores, rec, (rootfs) => new Promise<void>((resolve, reject) => {
      const names = fs.readdirSync(rootfs).sort();
      const args = ['--numeric-owner', '--one-file-system', '-C', rootfs, '-cf', tmp ?? '-',
        ...(names.length ? ['--', ...names] : ['-T', '/dev/null'])];
      log.debug('export', { id: rec.id, tar: args.join(' ') });
      const { spawn } = require('node:child_process') as typeof import('node:child_process');
      const tar = spawn('tar', args, { stdio: ['ignore', tmp ? 'ignore' : 'inherit', 'pipe'] });
      let err = '';
      tar.stderr!.on('data', (d) => (err += d));
      tar.on('error', (e) => reject(new BerthError('EXPORT_FAILED', `export container "${rec.name}": ${e.message}`, {
        hint: 'berth export needs GNU tar on the host',
      })));
      tar.on('close', (code, signal) => {
        // The reader of stdout went away (`berth export c | head`): not an export error.
        if (!tmp && signal === 'SIGPIPE') {
          outputClosed = true;
          resolve();
          return;
        }
        // 1: a file changed while it was read (a running container); the archive is whole.
        if (code === 0 || code === 1) {
          if (code === 1) log.warn(`export of "${rec.name}": ${err.trim()}`);
          resolve();
        } else {
          // tar's first line says why ("...: Cannot write: No space left on device").
          const why = err.trim().split('\n')[0]?.replace(/^tar: /, '').replace(`${tmp}: `, '');
          reject(new BerthError('EXPORT_FAILED', `export container "${rec.name}" to "${output ?? '-'}": ${why || (signal ? `tar killed by ${signal}` : `tar exit ${code}`)}`));
        }
      });
    }));
    if (tmp) fs.renameSync(tmp, dest!);
  } catch (err) {
    if (tmp) fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { outputClosed };
}

// ---- cp ------------------------------------------------------------------------------

const procFd = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

function cpError(what: string, err: unknown): BerthError {
  return wrapSystemError('CP_PATH', what, err);
}

/** Opens the directory DIR of the container's root (RESOLVE_IN_ROOT) as an O_PATH fd. */
function openDirInRoot(rootfd: number, dir: string, shown: string): number {
  try {
    return native().openat2(rootfd, dir, O_PATH | fs.constants.O_DIRECTORY);
  } catch (err) {
    throw cpError(`container path "${shown}"`, err);
  }
}

function copyFileData(from: number, to: number): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const n = fs.readSync(from, buf, 0, buf.length, null);
    if (n === 0) return;
    let off = 0;
    while (off < n) off += fs.writeSync(to, buf, off, n - off);
  }
}

// statfs(2) f_type of proc, sysfs, cgroup, cgroup2, devpts, mqueue, securityfs, debugfs,
// tracefs, bpf (linux/magic.h).
const KERNEL_FS = new Set([0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x1cd1, 0x19800202, 0x73636673, 0x64626720,
  0x74726163, 0xcafe4a11]);

/** A bind mount of a stopped container (config.json): a host path over a container path. */
interface BindMount {
  destination: string;
  source: string;
  readonly: boolean;
}

/** The bind mounts a stopped container would have: volumes, -v binds, /etc files. */
function bindMounts(cs: ContainerStore, rec: ContainerRecord): BindMount[] {
  let spec: { mounts?: { destination: string; source?: string; type?: string; options?: string[] }[] };
  try {
    spec = JSON.parse(fs.readFileSync(cs.path(rec.id, 'config.json'), 'utf8'));
  } catch {
    return [];
  }
  return (spec.mounts ?? [])
    .filter((m) => m.source && (m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')))
    .map((m) => ({ destination: path.posix.normalize(m.destination), source: m.source!, readonly: (m.options ?? []).includes('ro') }));
}

/** The mount under which container path CPATH lies (the deepest), and CPATH inside it. */
function mountOf(mounts: BindMount[], cpath: string): { m: BindMount; rel: string } | undefined {
  let best: { m: BindMount; rel: string } | undefined;
  for (const m of mounts) {
    const inside = cpath === m.destination || cpath.startsWith(m.destination === '/' ? '/' : `${m.destination}/`);
    if (inside && (!best || m.destination.length > best.m.destination.length)) {
      best = { m, rel: cpath.slice(m.destination.length) || '/' };
    }
  }
  return best;
}

/** Where a stopped container's mount points are redirected to while copying out. */
interface Redirects {
  mounts: BindMount[];
  /** The container path of the entry being copied. */
  cpath: string;
}

/**
 * Copies NAME under the directory fd PARENT (in the container) to the host path DEST.
 * DEST's own name is never followed: a symlink there (one an earlier cp copied out of the
 * container, say) is replaced, not written through, and a directory's entries are named
 * under an O_NOFOLLOW fd of it, so a host path swapped meanwhile is not followed either.
 */
function copyOutEntry(parent: number, name: string, dest: string, log: Logger, at?: Redirects): void {
  const src = procFd(parent, name);
  const st = fs.lstatSync(src);
  if (st.isDirectory()) {
    const fd = fs.openSync(src, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    let destFd: number | undefined;
    try {
      const old = fs.lstatSync(dest, { throwIfNoEntry: false });
      if (old && !old.isDirectory()) fs.unlinkSync(dest);
      if (!old || !old.isDirectory()) fs.mkdirSync(dest, { mode: 0o700 });
      destFd = fs.openSync(dest, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
      const destDir = procFd(destFd);
      // A running container's /proc, /sys and the like are the kernel's, not its files:
      // their mount points are copied empty, as from a stopped container.
      const kernelFs = KERNEL_FS.has(fs.statfsSync(procFd(fd)).type);
      for (const n of kernelFs ? [] : fs.readdirSync(procFd(fd)).sort()) {
        const child = at && { ...at, cpath: path.posix.join(at.cpath, n) };
        const m = child && at!.mounts.find((b) => b.destination === child.cpath);
        if (!m) {
          copyOutEntry(fd, n, path.join(destDir, n), log, child);
          continue;
        }
        // A mount point of the stopped container: what is mounted there is copied (the
        // source is the engine's or the user's host path, not the container's to name).
        const srcParent = fs.openSync(path.dirname(m.source), O_PATH | fs.constants.O_DIRECTORY);
        try {
          copyOutEntry(srcParent, path.basename(m.source), path.join(destDir, n), log, child);
        } finally {
          fs.closeSync(srcParent);
        }
      }
      // As `cp -a`: owner, mode and times of the container's directory, set through the fd.
      fs.fchownSync(destFd, st.uid, st.gid);
      fs.fchmodSync(destFd, st.mode & 0o7777);
      fs.futimesSync(destFd, st.atime, st.mtime);
    } finally {
      fs.closeSync(fd);
      if (destFd !== undefined) fs.closeSync(destFd);
    }
    return;
  } else if (st.isFile()) {
    // An O_PATH fd first: the container may swap the file for a device node it made (a
    // real open would run that device's driver as host root, outside its devices cgroup);
    // only what is still a regular file is then opened, through that very fd.
    const pathFd = fs.openSync(src, O_PATH | fs.constants.O_NOFOLLOW);
    let fd: number;
    try {
      if (!fs.fstatSync(pathFd).isFile()) throw new BerthError('CP_PATH', `"${name}" changed while it was copied`);
      fd = fs.openSync(procFd(pathFd), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } finally {
      fs.closeSync(pathFd);
    }
    try {
      try {
        if (!fs.lstatSync(dest).isDirectory()) fs.unlinkSync(dest);
      } catch {
        // absent
      }
      // O_EXCL|O_CREAT never follows a symlink at DEST (open(2)).
      const out = fs.openSync(dest, 'wx', 0o600);
      try {
        copyFileData(fd, out);
        fs.fchownSync(out, st.uid, st.gid);
        fs.fchmodSync(out, st.mode & 0o7777);
        fs.futimesSync(out, st.atime, st.mtime);
      } finally {
        fs.closeSync(out);
      }
    } finally {
      fs.closeSync(fd);
    }
  } else if (st.isSymbolicLink()) {
    fs.rmSync(dest, { force: true });
    fs.symlinkSync(fs.readlinkSync(src), dest);
    fs.lchownSync(dest, st.uid, st.gid);
  } else {
    log.warn(`cp: skipped "${name}": not a file, directory or symlink`);
  }
}

/** Who owns what cp writes into a container: its root, as the host sees it. */
interface Owner {
  uid: number;
  gid: number;
}

/**
 * Root inside a container: host root, or with --userns the host ids root maps to (files of
 * host root would be nobody's inside, and root there could not change them).
 */
function containerRoot(rec: ContainerRecord): Owner {
  if (!rec.userns) return { uid: 0, gid: 0 };
  return { uid: hostIdOf(rec.userns.uidMappings, 0) ?? 0, gid: hostIdOf(rec.userns.gidMappings, 0) ?? 0 };
}

/** Copies the host path SRC to NAME under the directory fd PARENT (in the container). */
function copyInEntry(src: string, parent: number, name: string, log: Logger, owner: Owner): void {
  const st = fs.lstatSync(src);
  const dest = procFd(parent, name);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.lstatSync(dest);
  } catch {
    existing = undefined;
  }
  if (existing?.isDirectory() && !st.isDirectory()) {
    throw new BerthError('CP_PATH', `cannot overwrite directory "${name}" with a non-directory`);
  }
  if (existing && !existing.isDirectory() && st.isDirectory()) {
    throw new BerthError('CP_PATH', `cannot overwrite non-directory "${name}" with a directory`);
  }
  if (existing && !existing.isDirectory()) fs.unlinkSync(dest);
  if (st.isDirectory()) {
    if (!existing) fs.mkdirSync(dest, { mode: 0o700 });
    const fd = fs.openSync(dest, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    try {
      for (const n of fs.readdirSync(src).sort()) copyInEntry(path.join(src, n), fd, n, log, owner);
      if (!existing) fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fchmodSync(fd, st.mode & 0o7777);
      fs.futimesSync(fd, st.atime, st.mtime);
    } finally {
      fs.closeSync(fd);
    }
  } else if (st.isFile()) {
    const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      const from = fs.openSync(src, 'r');
      try {
        copyFileData(from, fd);
      } finally {
        fs.closeSync(from);
      }
      // Before the mode: chown clears set-user-ID and set-group-ID bits.
      fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fchmodSync(fd, st.mode & 0o7777);
      fs.futimesSync(fd, st.atime, st.mtime);
    } finally {
      fs.closeSync(fd);
    }
  } else if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src), dest);
    fs.lchownSync(dest, owner.uid, owner.gid);
  } else {
    log.warn(`cp: skipped "${src}": not a file, directory or symlink`);
  }
}

export interface CopyRequest {
  /** Which side is the container's. */
  direction: 'from-container' | 'to-container';
  ref: string;
  /** The path inside the container (absolute, or relative to its root). */
  containerPath: string;
  hostPath: string;
  log: Logger;
  /** Set by copyFiles: the container's root, who owns what is copied in. */
  owner?: Owner;
}

/**
 * `berth cp`, with Docker's rules for the destination: an existing directory receives the
 * source under its own name; anything else is the new name (its parent must exist).
 * Symlinks are copied as symlinks. Into the container, files belong to root (Docker's
 * default); out of it, they keep the container's owners, as `cp -a`.
 * @throws BerthError CONTAINER_NOT_FOUND, CP_PATH (a missing or unusable path, either side)
 */
export async function copyFiles(stores: Stores, req: CopyRequest): Promise<void> {
  const rec = await resolveContainer(stores.root, req.ref, req.log);
  req = { ...req, owner: containerRoot(rec) };
  const cpath = path.posix.normalize(`/${req.containerPath}`);
  const shown = `${req.ref}:${req.containerPath}`;
  const running = openRunningRoot(stores.root, rec, req.log);
  if (running !== undefined) {
    try {
      copyWithin(running, cpath, cpath, shown, req);
    } finally {
      fs.closeSync(running);
    }
    return;
  }
  const mounts = bindMounts(new ContainerStore(stores.root), rec);
  await withRootfs(stores, rec, (rootfs) => {
    // A path on a bind mount (a volume, an /etc file) is resolved in that mount's source.
    const on = mountOf(mounts, cpath);
    if (on && req.direction === 'to-container' && on.m.readonly) {
      throw new BerthError('CP_PATH', `container path "${shown}" is on a read-only mount`, { context: { path: on.m.destination } });
    }
    let top: number;
    let inTop = cpath;
    if (on && fs.statSync(on.m.source).isDirectory()) {
      top = fs.openSync(on.m.source, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      inTop = on.rel;
    } else if (on) {
      // A file mounted on its own: its directory on the host is the root to name it in.
      top = fs.openSync(path.dirname(on.m.source), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      inTop = `/${path.basename(on.m.source)}`;
    } else {
      top = fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    }
    try {
      copyWithin(top, inTop, cpath, shown, req, on ? undefined : mounts);
    } finally {
      fs.closeSync(top);
    }
  });
}

/**
 * A running container's root as its processes see it (an fd on /proc/<pid>/root), or
 * undefined when it does not run. The pid is checked after the open: a pid reused by
 * another process would give that process's root.
 */
function openRunningRoot(root: string, rec: ContainerRecord, log: Logger): number | undefined {
  if (rec.state.status !== 'running' || !rec.state.pid) return undefined;
  let rt;
  try {
    rt = runtimeContext(root, log).state.read(rec.id);
  } catch {
    return undefined;
  }
  if (!rt.pid || !rt.pidStartTime) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${rt.pid}/root`, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return undefined; // exited meanwhile
  }
  if (pidStartTime(rt.pid) !== rt.pidStartTime) {
    fs.closeSync(fd);
    return undefined;
  }
  return fd;
}

/** The copy itself, with ROOTFD the root that CPATH is resolved in (RESOLVE_IN_ROOT);
 * ORIG is the path the user named (for names and messages); MOUNTS, for a stopped
 * container's root filesystem, the mount points to copy the mounts' content from. */
function copyWithin(rootfd: number, cpath: string, orig: string, shown: string, req: CopyRequest, mounts?: BindMount[]): void {
  const fds: number[] = [];
  try {
    if (req.direction === 'from-container') {
      const parent = openDirInRoot(rootfd, path.posix.dirname(cpath), shown);
      fds.push(parent);
      const name = cpath === '/' ? '.' : path.posix.basename(cpath);
      try {
        fs.lstatSync(procFd(parent, name));
      } catch (err) {
        throw cpError(`container path "${shown}"`, err);
      }
      let dest = path.resolve(req.hostPath);
      const destSt = fs.statSync(dest, { throwIfNoEntry: false });
      if (destSt?.isDirectory()) dest = path.join(dest, orig === '/' ? 'rootfs' : path.posix.basename(orig));
      else if (!fs.existsSync(path.dirname(dest))) {
        throw new BerthError('CP_PATH', `host path "${req.hostPath}": its directory does not exist`, { hint: 'create it first' });
      }
      try {
        copyOutEntry(parent, name, dest, req.log, mounts && { mounts, cpath: orig });
      } catch (err) {
        throw err instanceof BerthError ? err : cpError(`copy "${shown}" to "${req.hostPath}"`, err);
      }
      return;
    }
    if (!fs.existsSync(req.hostPath) && !fs.lstatSync(req.hostPath, { throwIfNoEntry: false })) {
      throw new BerthError('CP_PATH', `host path "${req.hostPath}": no such file or directory`);
    }
    let parent: number | undefined;
    let name = path.basename(path.resolve(req.hostPath));
    try {
      const fd = native().openat2(rootfd, cpath, O_PATH);
      fds.push(fd);
      if (fs.fstatSync(fd).isDirectory()) parent = fd;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw cpError(`container path "${shown}"`, err);
    }
    if (parent === undefined) {
      if (req.containerPath.endsWith('/')) {
        throw new BerthError('CP_PATH', `container path "${shown}": no such directory`, { hint: 'create it first, or leave out the final "/"' });
      }
      parent = openDirInRoot(rootfd, path.posix.dirname(cpath), shown);
      fds.push(parent);
      name = path.posix.basename(cpath);
    }
    try {
      copyInEntry(req.hostPath, parent, name, req.log, req.owner ?? { uid: 0, gid: 0 });
    } catch (err) {
      throw err instanceof BerthError ? err : cpError(`copy "${req.hostPath}" to "${shown}"`, err);
    }
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}
