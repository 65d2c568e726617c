// Typed access to native/build/berth.node (native/addon/berth-addon.c): the syscalls the
// engine needs from Node itself. Loaded lazily on first use, so commands that never touch
// storage do not pay for it. Node host process, main thread; every call is synchronous.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from './errors';
import { topDir } from './paths';

/**
 * The addon's functions. Each throws an Error shaped like Node's fs errors (`code`,
 * negative `errno`, `syscall`, `path`): wrap it with wrapSystemError().
 */
export interface NativeAddon {
  /** openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (+ EXTRARESOLVE) and O_CLOEXEC. */
  openat2(dirfd: number, path: string, flags: number, mode?: number, extraResolve?: number): number;
  mkdirat(dirfd: number, name: string, mode: number): void;
  /** MODE includes the file type (S_IFCHR, S_IFBLK, S_IFIFO). */
  mknodat(dirfd: number, name: string, mode: number, major: number, minor: number): void;
  symlinkat(target: string, dirfd: number, name: string): void;
  /** Never follows a symlink OLDNAME (flags 0). */
  linkat(olddirfd: number, oldname: string, newdirfd: number, newname: string): void;
  /** FLAGS 0 or AT_REMOVEDIR. */
  unlinkat(dirfd: number, name: string, flags: number): void;
  /** AT_SYMLINK_NOFOLLOW; NAME "" means DIRFD itself. */
  fchownat(dirfd: number, name: string, uid: number, gid: number): void;
  /** Never follows a symlink; fails on one (EOPNOTSUPP). */
  fchmodat(dirfd: number, name: string, mode: number): void;
  /** AT_SYMLINK_NOFOLLOW; times in seconds + nanoseconds. */
  utimensat(dirfd: number, name: string, atimeSec: number, atimeNsec: number, mtimeSec: number,
    mtimeNsec: number): void;
  /** Sets KEY on NAME itself (never a symlink's target). */
  lsetxattr(dirfd: number, name: string, key: string, value: Buffer): void;
  /** KEY of NAME itself, or null when it is not set. */
  lgetxattr(dirfd: number, name: string, key: string): Buffer | null;
  /** mount(2); with CWDFD relative paths in DATA resolve in that directory. */
  mount(source: string, target: string, fstype: string, flags: number, data?: string | null,
    cwdFd?: number): void;
  umount2(target: string, flags: number): void;
  /** flock(2); blocks the main thread unless OP has LOCK_NB. */
  flock(fd: number, op: number): void;
  /** A new network namespace bind-mounted on PATH (an existing file), lo up (src/network). */
  netnsCreate(path: string): void;
  /**
   * A new user namespace with these maps (/proc/PID/uid_map's format, "inside outside
   * count" lines), as an fd (close it); it only carries the maps (storage/idmap.ts).
   */
  usernsCreate(uidMap: string, gidMap: string): number;
  /** open_tree(2) of PATH with OPEN_TREE_CLOEXEC added; FLAGS e.g. OPEN_TREE_CLONE (1). */
  openTree(path: string, flags: number): number;
  /** mount_setattr(2) on the mount FD itself; USERNSFD with MOUNT_ATTR_IDMAP. */
  mountSetattr(fd: number, attrSet: number, attrClr: number, usernsFd?: number): void;
  /** move_mount(2) of the detached mount FD onto the directory TARGET. */
  moveMount(fd: number, target: string): void;
}

/** Constants the addon's callers need that Node's fs.constants lacks. */
/** A stat's rdev as its major (12 bits) and minor (20 bits) numbers. */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return { major: Number((d >> 8n) & 0xfffn), minor: Number((d & 0xffn) | ((d >> 12n) & 0xfff00n)) };
}

export const AT_FDCWD = -100;
export const AT_REMOVEDIR = 0x200;
export const O_PATH = 0o10000000;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const MNT_DETACH = 2;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

let addon: NativeAddon | undefined;

export const addonPath = (): string => path.join(topDir(), 'native', 'build', 'berth.node');

/**
 * The loaded addon.
 * @throws BerthError STORAGE_ADDON_MISSING when native/build/berth.node is not built or
 *   does not load (context.path).
 */
export function native(): NativeAddon {
  if (addon) return addon;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    throw new BerthError('STORAGE_ADDON_MISSING', `load native addon "${file}"`, {
      context: { path: file }, hint: 'build it with `make -C native`',
    });
  }
  try {
    // process.dlopen, not require: inside a V8 start-up snapshot (bin/berth's) require()
    // only reaches node's built-in modules. The addon is found at run time, never bundled.
    const mod = { exports: {} as NativeAddon };
    process.dlopen(mod, file);
    addon = mod.exports;
  } catch (err) {
    throw new BerthError('STORAGE_ADDON_MISSING', `load native addon "${file}"`, {
      cause: err, context: { path: file }, hint: 'rebuild it with `make -C native` for this node',
    });
  }
  return addon;
}
