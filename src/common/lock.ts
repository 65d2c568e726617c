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
  let fd: number;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(path.join(dir, 'lock'), 'a', 0o600);
    native().flock(fd, LOCK_EX);
  } catch (err) {
    throw wrapSystemError('STORAGE_LOCK', `lock ${path.join(dir, 'lock')}`, err);
  }
  try {
    return await fn();
  } finally {
    try {
      native().flock(fd, LOCK_UN);
    } finally {
      fs.closeSync(fd);
    }
  }
}
