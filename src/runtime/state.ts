// A container's record under the runtime root (<root>/<id>/state.json), and its OCI status
// derived from the kernel: is the init pid alive (and the same process), is the exec fifo
// still there, is its cgroup frozen. Written atomically; read by every command.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno } from '../common/errors';
import { CgroupRecord, openCgroup } from '../cgroups/driver';
import type { Hooks, Process, Seccomp } from './spec';

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface ContainerRecord {
  id: string;
  ociVersion: string;
  bundle: string;
  rootfs: string;
  pid?: number;
  /** Field 22 of /proc/PID/stat: tells a reused pid from ours. */
  pidStartTime?: string;
  created: string;
  annotations?: Record<string, string>;
  cgroup: CgroupRecord;
  hooks?: Hooks;
  /** Namespaces the init made, for exec: spec type -> joined (true) or own (false). */
  namespaces: string[];
  owner: string;
  /** The config's process: the defaults for exec. */
  process?: Process;
  /** The container's seccomp profile: exec'd processes get the same filter, as runc's. */
  seccomp?: Seccomp;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

/** @throws BerthError CONTAINER_ID_INVALID */
export function checkId(id: string): void {
  if (!ID_RE.test(id)) {
    throw new BerthError('CONTAINER_ID_INVALID', `container id "${id}" is not valid`, {
      hint: 'use letters, digits, "_", ".", "+" and "-", starting with a letter or digit, at most 128 characters',
    });
  }
}

export class StateDir {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  fifo(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /**
   * Makes the container's directory; fails if it exists (ids are unique).
   * @throws BerthError CONTAINER_EXISTS, STATE_ROOT
   */
  claim(id: string): void {
    checkId(id);
    try {
      fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
      fs.mkdirSync(this.dir(id), { mode: 0o700 });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        throw new BerthError('CONTAINER_EXISTS', `container "${id}" already exists`, {
          context: { containerId: id }, hint: `choose another id, or remove the old one with \`delete ${id}\``,
        });
      }
      throw new BerthError('STATE_ROOT', `create state directory ${this.dir(id)}: ${(err as Error).message}`, { cause: err });
    }
  }

  write(rec: ContainerRecord): void {
    writeFileAtomic(path.join(this.dir(rec.id), 'state.json'), JSON.stringify(rec), 0o600, false);
  }

  /** @throws BerthError CONTAINER_NOT_FOUND */
  read(id: string): ContainerRecord {
    checkId(id);
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir(id), 'state.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      if (isErrno(err, 'ENOENT') && fs.existsSync(this.dir(id))) {
        // Killed between claim() and the first write: nothing ran; only the directory is left.
        throw new BerthError('CONTAINER_INCOMPLETE', `container "${id}" was never fully created`, {
          context: { containerId: id }, hint: `remove it with \`delete --force ${id}\``,
        });
      }
      throw new BerthError('CONTAINER_NOT_FOUND', `container "${id}" does not exist`, {
        cause: err, context: { containerId: id }, hint: 'list containers with `list`',
      });
    }
  }

  list(): string[] {
    try {
      return fs.readdirSync(this.root).filter((n) => ID_RE.test(n)).sort();
    } catch {
      return [];
    }
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }
}

export function pidStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** True if REC's init process is still the one we started. */
export function isAlive(rec: ContainerRecord): boolean {
  return rec.pid !== undefined && pidStartTime(rec.pid) === rec.pidStartTime;
}

export function statusOf(state: StateDir, rec: ContainerRecord): Status {
  if (rec.pid === undefined) return 'creating';
  if (!isAlive(rec)) return 'stopped';
  if (fs.existsSync(state.fifo(rec.id))) return 'created';
  if (openCgroup(rec.cgroup).isFrozen()) return 'paused';
  return 'running';
}

/** The state JSON of the OCI runtime spec ("State"), as `state` prints and hooks read. */
export function ociState(rec: ContainerRecord, status: Status): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ociVersion: rec.ociVersion, id: rec.id, status, bundle: rec.bundle,
  };
  if (status !== 'stopped' && rec.pid !== undefined) out.pid = rec.pid;
  else out.pid = 0;
  out.rootfs = rec.rootfs;
  out.created = rec.created;
  out.owner = rec.owner;
  if (rec.annotations && Object.keys(rec.annotations).length) out.annotations = rec.annotations;
  return out;
}
