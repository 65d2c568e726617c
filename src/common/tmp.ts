// Names in a store's tmp/ carry the pid of the process that made them ("<pid>.<what>"), so
// cleanup removes only what dead processes left, never a concurrent command's work.
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';

/** A fresh name for PREFIX owned by this process. */
export function tmpName(prefix: string): string {
  return `${process.pid}.${prefix}-${randomBytes(6).toString('hex')}`;
}

/** True if NAME was made by a process that no longer runs (or by no berth process at all). */
export function isDebris(name: string): boolean {
  const m = /^(\d+)\./.exec(name);
  if (!m) return true;
  return Number(m[1]) !== process.pid && !fs.existsSync(`/proc/${m[1]}`);
}
