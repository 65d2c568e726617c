// Id-mapped layers for containers in a user namespace (--userns, engine/userns.ts): each
// lower dir is cloned as a detached mount (open_tree(2) OPEN_TREE_CLONE) and id-mapped
// with the container's maps (mount_setattr(2) MOUNT_ATTR_IDMAP; the maps are carried by a
// user namespace made only to hold them). overlayfs takes the detached mounts as lower dirs
// through /proc/self/fd/N and keeps private clones of them, so the fds are closed right
// after the overlay mount, and nothing was ever attached to the host's mount tree: a berth
// killed at any moment leaves no mount behind. Called by storage/overlay.ts; Node host.
//
// So a file stored as uid 0 in a layer is seen (by the container, and by overlayfs' copy
// up) as the container root's host uid, and uid 1000 as host uid + 1000. The upper dir is
// not id-mapped: what the container writes is stored with its real host ids, so on the
// host a file root inside wrote belongs to the unprivileged host id it maps to
// (Documentation/filesystems/idmappings.rst, overlayfs.rst "Idmapped layers").
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { native } from '../common/native';

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface IdMaps {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

const OPEN_TREE_CLONE = 1;
const MOUNT_ATTR_IDMAP = 0x100000;

const mapText = (maps: IdMapping[]): string => maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

/** Detached, id-mapped clones of DIRS; close them once overlayfs holds its own. */
export interface IdmappedLayers {
  /** One per dir, in order: names overlayfs resolves to the mapped mounts. */
  paths: string[];
  close(): void;
}

/**
 * Clones each of DIRS as a detached mount that shows its files through MAPS.
 * @throws BerthError STORAGE_IDMAP_UNSUPPORTED (the kernel or the layers' filesystem
 *   cannot id-map), STORAGE_IDMAP (another failure; context.syscall names the call)
 */
export function idmapLayers(dirs: string[], maps: IdMaps): IdmappedLayers {
  const n = native();
  const fds: number[] = [];
  const close = () => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
  };
  let userns: number;
  try {
    userns = n.usernsCreate(mapText(maps.uidMappings), mapText(maps.gidMappings));
  } catch (err) {
    throw wrapSystemError('STORAGE_IDMAP', 'make a user namespace for the id-mapped layers', err,
      'the maps must be valid for /proc/PID/uid_map (user_namespaces(7))');
  }
  try {
    for (const dir of dirs) {
      const fd = n.openTree(path.resolve(dir), OPEN_TREE_CLONE);
      fds.push(fd);
      try {
        n.mountSetattr(fd, MOUNT_ATTR_IDMAP, 0, userns);
      } catch (err) {
        // EINVAL: the filesystem does not support id-mapped mounts; ENOSYS/EPERM: the kernel.
        if (isErrno(err, 'EINVAL') || isErrno(err, 'ENOSYS') || isErrno(err, 'EOPNOTSUPP') || isErrno(err, 'EPERM')) {
          throw new BerthError('STORAGE_IDMAP_UNSUPPORTED', `id-map layer "${dir}": the kernel refused mount_setattr `
            + `MOUNT_ATTR_IDMAP (${(err as NodeJS.ErrnoException).code})`, {
            cause: err, context: { path: dir, syscall: 'mount_setattr' },
            hint: 'id-mapped mounts need Linux 5.12+ and a filesystem that supports them for the berth root '
              + '(ext4, xfs, btrfs, tmpfs); run without --userns, or move --root to such a filesystem',
          });
        }
        throw err;
      }
    }
  } catch (err) {
    close();
    if (err instanceof BerthError) throw err;
    throw wrapSystemError('STORAGE_IDMAP', 'id-map the image\'s layers', err);
  } finally {
    fs.closeSync(userns);
  }
  return { paths: fds.map((fd) => `/proc/self/fd/${fd}`), close };
}

/**
 * Whether overlayfs over id-mapped layers works here (`berth info`): mounts a tiny overlay
 * over an id-mapped temp dir in BASE (the berth root: its filesystem is the layers') and
 * unmounts it again.
 * @returns undefined when it works, else why not
 */
export function probeIdmappedOverlay(base = os.tmpdir()): string | undefined {
  let dir: string;
  try {
    dir = fs.mkdtempSync(path.join(base, '.idmap-probe-'));
  } catch (err) {
    return (err as Error).message;
  }
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'lower', 'f'), '');
    const layers = idmapLayers([path.join(dir, 'lower')], {
      uidMappings: [{ containerID: 0, hostID: 4000000000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 4000000000, size: 1 }],
    });
    try {
      native().mount('overlay', path.join(dir, 'merged'), 'overlay', 0,
        `lowerdir=${layers.paths[0]},upperdir=${path.join(dir, 'upper')},workdir=${path.join(dir, 'work')},index=off`);
    } catch (err) {
      return `overlayfs refused id-mapped lower dirs: ${(err as Error).message}`;
    } finally {
      layers.close();
    }
    const uid = fs.statSync(path.join(dir, 'merged', 'f')).uid;
    native().umount2(path.join(dir, 'merged'), 0);
    return uid === 4000000000 ? undefined : `an id-mapped layer showed uid ${uid}, not the mapped one`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
