// Atomic file writes: temp file, fsync, rename (DESIGN.md "State on disk"). A reader sees
// the old content or the new, never a torn file, even if the writer is killed.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes FILE atomically. DURABLE adds an fsync before the rename, for data that must
 * survive power loss (images, volumes); runtime state under /run does not outlive a reboot
 * anyway, and rename alone keeps it whole when a process is killed.
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644, durable = true): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
