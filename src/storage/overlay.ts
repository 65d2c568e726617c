// Container root filesystems: kernel overlayfs over a stack of layer diff dirs (lower,
// read-only) with a per-container upper and work dir. Called by the engine before it
// writes a bundle, and after the container is deleted. Node host process, as root.
//
// Many layers: mount(2) takes at most one page (4096 bytes) of options, and the kernel
// silently cuts longer ones. Absolute lower dirs cost ~90 bytes each
// (/var/lib/berth/layers/<64 hex>/diff), so about 40 layers fit, while images may have
// 127 and overlayfs stacks up to 500. So each lower dir gets a 1-2 character symlink
// ("0", "1", ..., "a", ..., "10") in a private directory made for this mount, and the
// kernel is given those names relative to it: 500 layers take under 1500 bytes. The
// relative names resolve against the addon's mount call running in that directory on a
// thread with its own cwd (berth-addon.c), so Node's cwd never moves. The kernel resolves
// the links at mount time and holds the real directories, so the link directory is
// removed right after. (Docker's overlay2 does the same with its l/ links and a chdir in a
// re-executed child.) The cost: /proc/self/mountinfo shows the short names, not the
// layers' paths; berth finds a container's layers from its own records, not from there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { native } from '../common/native';
import { IdMaps, idmapLayers } from './idmap';

/** overlayfs' own limit (OVL_MAX_STACK in fs/overlayfs/params.h). */
export const MAX_LOWER_LAYERS = 500;
const PAGE_SIZE = 4096;

/**
 * Mounts overlayfs on TARGET: LOWERDIFFDIRS read-only (top layer first, the order of
 * overlay's lowerdir and the reverse of an image's layer list), UPPER taking the writes,
 * WORK its scratch dir (empty, on UPPER's filesystem). All paths must exist. With no
 * lower dirs the container starts from an empty directory (an image with no layers).
 *
 * Options: index=off, so an upper dir is not tied to the lower dirs' inode numbers (the
 * kernel default may be on; Docker sets it off too).
 * With IDMAP (a container in a user namespace, --userns) each lower dir is id-mapped with
 * those maps first (storage/idmap.ts); UPPER is not, so writes keep their host ids.
 * @param lowerDiffDirs absolute paths, e.g. LayerStore.path(chainID), top first
 * @throws BerthError STORAGE_MOUNT (context: path = TARGET, errno), STORAGE_TOO_MANY_LAYERS,
 *   STORAGE_IDMAP, STORAGE_IDMAP_UNSUPPORTED
 */
export function mountOverlay(lowerDiffDirs: string[], upper: string, work: string, target: string, idmap?: IdMaps): void {
  if (lowerDiffDirs.length > MAX_LOWER_LAYERS) {
    throw new BerthError('STORAGE_TOO_MANY_LAYERS',
      `mount overlay on "${target}": ${lowerDiffDirs.length} layers, overlayfs stacks at most ${MAX_LOWER_LAYERS}`);
  }
  for (const p of [upper, work]) {
    // overlayfs splits options at "," and lower dirs at ":"; the lower dirs are our links.
    if (/[,:\\]/.test(p)) {
      throw new BerthError('STORAGE_MOUNT', `mount overlay on "${target}": path "${p}" has "," ":" or "\\"`, {
        context: { path: target }, hint: 'use a --root without those characters',
      });
    }
  }

  let links: string;
  try {
    links = fs.mkdtempSync(path.join(path.dirname(path.resolve(work)), '.lower-'));
  } catch (err) {
    throw wrapSystemError('STORAGE_MOUNT', `mount overlay on "${target}"`, err);
  }
  let mapped: ReturnType<typeof idmapLayers> | undefined;
  try {
    // The links then point at the id-mapped clones, /proc/self/fd/N: the mount runs on a
    // thread of this process, which shares our fds.
    if (idmap) mapped = idmapLayers(lowerDiffDirs, idmap);
    const names = lowerDiffDirs.map((dir, i) => {
      const name = i.toString(36);
      fs.symlinkSync(mapped ? mapped.paths[i] : path.resolve(dir), path.join(links, name));
      return name;
    });
    if (names.length === 0) {
      fs.mkdirSync(path.join(links, 'empty'), { mode: 0o755 });
      names.push('empty');
    }
    const data = `lowerdir=${names.join(':')},upperdir=${path.resolve(upper)},`
      + `workdir=${path.resolve(work)},index=off`;
    if (Buffer.byteLength(data) >= PAGE_SIZE) {
      throw new BerthError('STORAGE_MOUNT', `mount overlay on "${target}": options longer than a page`, {
        context: { path: target }, hint: 'use a shorter --root',
      });
    }

    const fd = fs.openSync(links, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      native().mount('overlay', path.resolve(target), 'overlay', 0, data, fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if (err instanceof BerthError) throw err;
    if (mapped && isErrno(err, 'EINVAL')) {
      // Kernels before overlayfs accepted detached mounts as layers say EINVAL here.
      throw new BerthError('STORAGE_IDMAP_UNSUPPORTED', `mount overlay on "${target}": overlayfs refused the id-mapped `
        + 'layers (EINVAL)', { cause: err, context: { path: target, syscall: 'mount' },
        hint: 'this kernel\'s overlayfs does not take detached id-mapped lower dirs (see `dmesg`; `berth info` checks); '
          + 'run without --userns, or on a newer kernel' });
    }
    throw wrapSystemError('STORAGE_MOUNT', `mount overlay on "${target}"`, err,
      isErrno(err, 'EINVAL') ? 'see `dmesg` for overlayfs\' reason (work dir on another filesystem, ...)' : undefined);
  } finally {
    mapped?.close();
    fs.rmSync(links, { recursive: true, force: true });
  }
}

/**
 * Unmounts the overlay on TARGET. Nothing mounted there is not an error, so a cleanup
 * after a crash can call it again.
 * @throws BerthError STORAGE_UNMOUNT (EBUSY: a process still uses it)
 */
export function unmountOverlay(target: string): void {
  try {
    native().umount2(path.resolve(target), 0);
  } catch (err) {
    if (isErrno(err, 'EINVAL') || isErrno(err, 'ENOENT')) return;
    throw wrapSystemError('STORAGE_UNMOUNT', `unmount overlay on "${target}"`, err,
      isErrno(err, 'EBUSY') ? 'a process still has files open in it' : undefined);
  }
}

/** docs/images.md's name for unmountOverlay. */
export const unmount = unmountOverlay;
