// Container verbs that do not change what runs: top (the runtime's ps), pause/unpause (the
// cgroup freezer), rename, container prune, and `info`'s facts. Called by
// cli/commands/containers-ops.ts. Node host process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BerthError, isErrno } from '../common/errors';
import type { Logger } from '../common/log';
import { topDir } from '../common/paths';
import { isUnifiedHost } from '../cgroups/driver';
import type { Stores } from '../image/stores';
import { psTable, setPaused } from '../runtime/inspect';
import { ContainerRecord, ContainerStore } from './containers';
import { requireRunning } from './exec';
import { isActive, listContainers, removeContainer, resolveContainer, runtimeContext, withEngineLock } from './lifecycle';

/**
 * `berth top`: the host's ps(1) rows of the container's processes (its cgroup's pids).
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, PS_FAILED
 */
export async function topContainer(root: string, ref: string, psArgs: string[], log: Logger): Promise<string> {
  const rec = await requireRunning(root, ref, 'list the processes of', log, true);
  return psTable(runtimeContext(root, log), rec.id, psArgs.length ? psArgs : ['-ef']);
}

/**
 * `berth pause` / `berth unpause`: freezes or thaws every process of the container and
 * records it, so `ps` and `inspect` show Paused.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, CONTAINER_PAUSED,
 *   CONTAINER_NOT_PAUSED, CGROUP_CONTROLLER_MISSING
 */
export async function setContainerPaused(root: string, ref: string, paused: boolean, log: Logger): Promise<ContainerRecord> {
  const rec = await requireRunning(root, ref, paused ? 'pause' : 'unpause', log, true);
  const cs = new ContainerStore(root);
  return withEngineLock(root, () => {
    const ctx = runtimeContext(root, log);
    try {
      setPaused(ctx, rec.id, paused);
    } catch (err) {
      if (err instanceof BerthError && (err.code === 'CONTAINER_NOT_RUNNING' || err.code === 'CONTAINER_NOT_PAUSED')) {
        throw new BerthError(paused ? 'CONTAINER_PAUSED' : 'CONTAINER_NOT_PAUSED',
          `cannot ${paused ? 'pause' : 'unpause'} container "${rec.name}": it is ${paused ? 'already paused' : 'not paused'}`, {
            context: { containerId: rec.id },
          });
      }
      throw err;
    }
    const cur = { ...cs.read(rec.id) };
    cur.state = { ...cur.state, paused };
    cs.write(cur);
    log.info(paused ? 'container paused' : 'container unpaused', { id: rec.id });
    return cur;
  });
}

/**
 * `berth rename OLD NEW`. A container in the foreground of a `berth run` is renamed too:
 * that command re-reads its record under the engine lock before each write.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NAME_IN_USE, CONTAINER_NAME_INVALID
 */
export async function renameContainer(root: string, ref: string, name: string, log: Logger): Promise<ContainerRecord> {
  const cs = new ContainerStore(root);
  const rec = await resolveContainer(root, ref, log);
  return withEngineLock(root, () => {
    let cur: ContainerRecord;
    try {
      cur = cs.read(rec.id);
    } catch (err) {
      // Removed since it was looked up (its berth run --rm ended).
      if (isErrno(err, 'ENOENT')) throw new BerthError('CONTAINER_NOT_FOUND', `no such container: "${ref}"`, { hint: 'list containers with `berth ps -a`' });
      throw err;
    }
    return cs.rename(cur, name);
  });
}

/** Bytes under DIR (apparent sizes, no symlinks followed; mount points are not crossed). */
export function dirSize(dir: string): number {
  let total = 0;
  let dev: number | undefined;
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    dev ??= st.dev;
    if (st.dev !== dev) return;
    if (!st.isDirectory()) {
      total += st.size;
      return;
    }
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch {
      return; // removed since the lstat: a running container changes its files meanwhile
    }
    for (const n of names) walk(path.join(p, n));
  };
  walk(dir);
  return total;
}

/**
 * `berth container prune`: removes every exited container.
 * @returns the removed ids and the bytes their writable layers held
 * @throws BerthError STORAGE_UNMOUNT
 */
export async function pruneContainers(root: string, log: Logger): Promise<{ removed: string[]; bytes: number }> {
  const removed: string[] = [];
  let bytes = 0;
  const cs = new ContainerStore(root);
  for (const c of await listContainers(root, log)) {
    if (c.state.status !== 'exited') continue;
    const size = dirSize(cs.path(c.id, 'upper'));
    try {
      await removeContainer(root, c.id, false, log);
    } catch (err) {
      // Started again or removed by someone else meanwhile: not ours to prune.
      if (err instanceof BerthError && (err.code === 'CONTAINER_RUNNING' || err.code === 'CONTAINER_NOT_FOUND')) continue;
      throw err;
    }
    removed.push(c.id);
    bytes += size;
  }
  return { removed, bytes };
}

export interface EngineInfo {
  version: string;
  root: string;
  storageDriver: string;
  backingFilesystem: string;
  cgroupVersion: 1 | 2;
  cgroupDriver: string;
  runtimes: Record<string, string>;
  defaultRuntime: string;
  containers: { total: number; running: number; paused: number; stopped: number };
  images: number;
  kernelVersion: string;
  operatingSystem: string;
  architecture: string;
  cpus: number;
  memTotal: number;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // no os-release
  }
  return os.type();
}

function fsType(dir: string): string {
  // /proc/self/mountinfo: the longest mount point that holds DIR names its filesystem.
  let best = '';
  let type = 'unknown';
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    const mp = f[4].replace(/\\040/g, ' ');
    if ((dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length >= best.length) {
      best = mp;
      type = f[sep + 1];
    }
  }
  return type;
}

/** `berth info`: what this engine is and holds. */
export async function engineInfo(stores: Stores, log: Logger): Promise<EngineInfo> {
  const list = await listContainers(stores.root, log);
  const running = list.filter((c) => c.state.status === 'running');
  const paused = running.filter((c) => c.state.paused).length;
  const pkg = JSON.parse(fs.readFileSync(path.join(topDir(), 'package.json'), 'utf8')) as { version: string };
  return {
    version: pkg.version,
    root: path.resolve(stores.root),
    storageDriver: 'overlay',
    backingFilesystem: fsType(path.resolve(stores.root)),
    cgroupVersion: isUnifiedHost() ? 2 : 1,
    cgroupDriver: 'cgroupfs',
    runtimes: { berth: path.join(topDir(), 'bin', 'berth-runtime') },
    defaultRuntime: 'berth',
    containers: { total: list.length, running: running.length - paused, paused, stopped: list.length - running.length },
    images: stores.images.list().length,
    kernelVersion: os.release(),
    operatingSystem: osName(),
    architecture: os.machine(),
    cpus: os.cpus().length,
    memTotal: os.totalmem(),
  };
}
