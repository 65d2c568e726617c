// The store lock (<root>/lock, docs/images.md): flock(2) held by every berth command while
// it changes the image index or the layer store. The kernel drops it when the holder dies,
// so a killed command never leaves the store locked.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { wrapSystemError } from './errors';
import { LOCK_EX, LOCK_UN, native } from './native';

/**
 * Runs FN with the lock on DIR/lock held exclusively; waits for other holders.
 * @throws BerthError STORAGE_LOCK
 */
export async function withLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const fd = lock(dir);
  try {
    return await fn();
  } finally {
    unlock(fd);
  }
}

/** withLock for a synchronous FN (callbacks that cannot wait). @throws BerthError STORAGE_LOCK */
export function withLockSync<T>(dir: string, fn: () => T): T {
  const fd = lock(dir);
  try {
    return fn();
  } finally {
    unlock(fd);
  }
}

function lock(dir: string): number {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(path.join(dir, 'lock'), 'a', 0o600);
    try {
      native().flock(fd, LOCK_EX);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    return fd;
  } catch (err) {
    throw wrapSystemError('STORAGE_LOCK', `lock ${path.join(dir, 'lock')}`, err);
  }
}

function unlock(fd: number): void {
  try {
    native().flock(fd, LOCK_UN);
  } finally {
    fs.closeSync(fd);
  }
}
