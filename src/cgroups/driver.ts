// One interface over cgroup v1 (including this project's hybrid hosts) and v2, used by the
// runtime from the Node host process: create a container's cgroup, apply
// linux.resources, list, freeze and remove it. v1.ts and v2.ts hold the file formats.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import type { Resources } from '../runtime/spec';
import { hierarchies, V1Cgroup } from './v1';
import { V2Cgroup } from './v2';

export interface CgroupRecord {
  version: 1 | 2;
  /** The cgroup path relative to each hierarchy root, e.g. "/berth/c1". */
  path: string;
  /** Absolute directories, one per hierarchy joined. */
  dirs: string[];
}

export interface Cgroup {
  readonly record: CgroupRecord;
  /** Files stage 0 writes "0" into to join, before it clones (cgroup.procs). */
  procsFiles(): string[];
  apply(res: Resources | undefined): void;
  pids(): number[];
  freeze(frozen: boolean): void;
  isFrozen(): boolean;
  remove(): void;
  /** Where a "cgroup" mount inside the container takes its content from: [name, hostDir]. */
  mountSources(): [string, string][];
  /** True if the memory controller recorded an OOM kill. */
  oomKilled(): boolean;
}

export const CGROUP_ROOT = '/sys/fs/cgroup';

export function isUnifiedHost(): boolean {
  return fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'));
}

/**
 * Resolves config's linux.cgroupsPath to a plain path ("/berth/<id>" when absent).
 * @throws BerthError CGROUP_SYSTEMD_UNSUPPORTED, CGROUP_PATH_INVALID
 */
export function resolveCgroupPath(cgroupsPath: string | undefined, id: string, systemd: boolean): string {
  if (systemd || (cgroupsPath && /^[^/:]*:[^:]*:[^:]*$/.test(cgroupsPath))) {
    throw new BerthError('CGROUP_SYSTEMD_UNSUPPORTED',
      `systemd cgroup paths are not supported (${cgroupsPath ?? '--systemd-cgroup'})`, {
        hint: 'berth manages cgroupfs directly; use the cgroupfs manager (podman: --cgroup-manager=cgroupfs)',
      });
  }
  const p = cgroupsPath ? (cgroupsPath.startsWith('/') ? cgroupsPath : `/berth/${cgroupsPath}`) : `/berth/${id}`;
  if (path.posix.normalize(p) !== p.replace(/\/+$/, '') || p.split('/').includes('..')) {
    throw new BerthError('CGROUP_PATH_INVALID', `cgroup path "${p}" must be normalised and must not contain ".."`);
  }
  return p;
}

export function createCgroup(cgPath: string): Cgroup {
  return isUnifiedHost() ? V2Cgroup.create(cgPath) : V1Cgroup.create(cgPath);
}

/** The directories that exist for CGPATH, in every hierarchy (v1) or the one (v2). */
export function existingDirs(cgPath: string): string[] {
  const dirs = isUnifiedHost() ? [path.join(CGROUP_ROOT, cgPath)] : hierarchies().map((h) => path.join(h, cgPath));
  return dirs.filter((d) => fs.existsSync(d));
}

export function openCgroup(record: CgroupRecord): Cgroup {
  return record.version === 2 ? new V2Cgroup(record) : new V1Cgroup(record);
}

/** Whether the OOM killer killed a process of RECORD's cgroup; false without a memory controller. Read it before the cgroup goes. */
export function wasOomKilled(record: CgroupRecord): boolean {
  try {
    return record.dirs.length > 0 && openCgroup(record).oomKilled();
  } catch {
    return false; // no memory controller: no OOM record
  }
}

/** Writes VALUE to DIR/FILE with an error that names both. */
export function writeControl(dir: string, file: string, value: string | number): void {
  try {
    fs.writeFileSync(path.join(dir, file), String(value));
  } catch (err) {
    const controller = file.split('.')[0];
    // cgroupfs answers EACCES, not ENOENT, for a control file that is not there.
    if (fs.existsSync(dir) && !fs.existsSync(path.join(dir, file))) {
      throw new BerthError('CGROUP_CONTROLLER_MISSING',
        `the ${controller} cgroup controller is not available for ${dir} (no ${file})`, {
          cause: err, context: { path: path.join(dir, file) },
          hint: `enable it for this hierarchy, or remove the ${controller} limits from linux.resources`,
        });
    }
    throw new BerthError('CGROUP_WRITE', `write "${value}" to ${path.join(dir, file)}: ${(err as Error).message}`, {
      cause: err, context: { path: path.join(dir, file) },
    });
  }
}

export function readPids(file: string): number[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** rmdir with retries: a cgroup stays busy for a moment after its last task exits. */
export function removeDir(dir: string): void {
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i === 49) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
