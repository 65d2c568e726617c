// Detached containers after they start: their status (engine record + runtime state + the
// monitor's exit file), stop, kill, wait, rm, and the cleanup once one has exited (the
// runtime record and cgroup, the overlay mount; the whole container with --rm). Called by
// cli/ and by `berth container cleanup`, the monitor's exit command. Node host process.
//
// Who finishes an exited container: the monitor's exit command, or else the first berth
// command that looks at it (ps, inspect, logs, wait, rm, ...). Both hold the engine lock
// (<root>/engine/lock), so it is done once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import { withLock, withLockSync } from '../common/lock';
import type { Logger } from '../common/log';
import { parseSignal } from '../common/signals';
import { openCgroup, wasOomKilled } from '../cgroups/driver';
import { makeContext, RuntimeContext } from '../runtime/context';
import { destroy } from '../runtime/delete';
import { kill as runtimeKill } from '../runtime/kill';
import { pidStartTime, statusOf } from '../runtime/state';
import { unmountOverlay } from '../storage/overlay';
import { ContainerRecord, ContainerStore } from './containers';
import { applyRestartPolicy, markManuallyStopped } from './restart';
import { removeAnonymousVolumes } from './volumes';
import { detachContainerNetwork } from './network-attach';

/** What the monitor writes when the container's init exits (native/monitor). */
export interface ExitRecord {
  exitCode: number;
  signal: number | null;
  finishedAt: string;
}

export const logFile = (cs: ContainerStore, id: string): string => cs.path(id, 'ctr.log');
export const exitFile = (cs: ContainerStore, id: string): string => cs.path(id, 'exit.json');
export const pidFile = (cs: ContainerStore, id: string): string => cs.path(id, 'init.pid');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runtimeContext(root: string, log: Logger): RuntimeContext {
  return makeContext(path.join(root, 'runtime'), log);
}

/** Runs FN holding the engine lock; it guards records of containers that change state. */
export function withEngineLock<T>(root: string, fn: () => Promise<T> | T): Promise<T> {
  return withLock(path.join(root, 'engine'), fn);
}

export function withEngineLockSync<T>(root: string, fn: () => T): T {
  return withLockSync(path.join(root, 'engine'), fn);
}

export function readExit(cs: ContainerStore, id: string): ExitRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(exitFile(cs, id), 'utf8')) as ExitRecord;
  } catch {
    return undefined;
  }
}

export function isMonitorAlive(rec: ContainerRecord): boolean {
  return !!rec.monitor && pidStartTime(rec.monitor.pid) === rec.monitor.startTime;
}

/**
 * A container whose berth was killed before it had a monitor (a foreground run, or a run -d
 * during setup): nobody will ever record its exit, so the next command that looks does.
 */
export function isAbandoned(rec: ContainerRecord): boolean {
  return !rec.monitor && !!rec.owner && pidStartTime(rec.owner.pid) !== rec.owner.startTime;
}

/** True while REC (detached) has not been seen to exit: created, running or paused. */
export function isActive(rec: ContainerRecord): boolean {
  return rec.state.status !== 'exited';
}

/**
 * Brings a detached container's record up to date: once its monitor has recorded the exit
 * (or is gone without a word and so is the init), marks it exited and releases what it
 * held. Call with the engine lock held. Foreground containers are left to their `run`.
 * @throws BerthError STORAGE_UNMOUNT (the container stays marked running)
 */
export async function finishIfExited(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger): Promise<ContainerRecord> {
  if (!(rec.monitor || isAbandoned(rec)) || !isActive(rec)) return rec;
  const ctx = runtimeContext(root, log);
  let exit = readExit(cs, rec.id);
  let rt;
  try {
    rt = ctx.state.read(rec.id);
  } catch {
    rt = undefined;
  }
  if (!exit) {
    if (rec.monitor && isMonitorAlive(rec)) return rec;
    // The monitor (or the foreground run) was killed, the container lives; but a runtime
    // create that a killed berth never finished stays "creating" for ever (its init, whose
    // pid it never recorded, goes when its sync socket closes).
    const status = rt ? statusOf(ctx.state, rt) : 'stopped';
    if (status !== 'stopped' && !(status === 'creating' && isAbandoned(rec))) return rec;
    // XXX: the monitor (or the run) died without recording the status (killed); Docker shows 255 too.
    exit = { exitCode: 255, signal: null, finishedAt: new Date().toISOString() };
  }
  const oomKilled = !!rt && wasOomKilled(rt.cgroup);
  if (rt) destroy(ctx, rt, { runPoststop: true });
  unmountOverlay(cs.path(rec.id, 'rootfs'));
  // Its network (helpers, namespace) goes with its process; start makes a new one.
  await detachContainerNetwork(root, undefined, rec, log);
  rec.state = { ...rec.state, status: 'exited', pid: 0, exitCode: exit.exitCode, oomKilled, finishedAt: exit.finishedAt };
  cs.write(rec);
  log.info('container exited', { id: rec.id, exitCode: exit.exitCode });
  return rec;
}

/** Re-reads REC and finishes it if it has exited, under the engine lock. */
export async function refresh(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger): Promise<ContainerRecord> {
  if (!(rec.monitor || isAbandoned(rec)) || !isActive(rec)) return rec;
  return withEngineLock(root, async () => {
    let cur: ContainerRecord;
    try {
      cur = cs.read(rec.id);
    } catch {
      return rec; // removed meanwhile
    }
    return finishAbandonedRm(root, cs, await finishIfExited(root, cs, cur, log), log);
  });
}

/**
 * An abandoned run --rm whose container has now exited (finishIfExited marked it): its
 * berth would have removed it, so it goes. The record is returned either way.
 */
function finishAbandonedRm(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger): ContainerRecord {
  if (rec.monitor || isActive(rec) || !rec.autoRemove || !isAbandoned(rec)) return rec;
  cs.remove(rec);
  for (const f of removeAnonymousVolumes(root, rec)) log.warn(`anonymous volume stays: ${f}`);
  return rec;
}

/** Every container, detached ones brought up to date. */
export async function listContainers(root: string, log: Logger): Promise<ContainerRecord[]> {
  const cs = new ContainerStore(root);
  const list = cs.list();
  if (!list.some((c) => (c.monitor || isAbandoned(c)) && isActive(c))) return list;
  return withEngineLock(root, async () => {
    const out: ContainerRecord[] = [];
    for (const c of cs.list()) {
      const f = finishAbandonedRm(root, cs, await finishIfExited(root, cs, c, log), log);
      if (fs.existsSync(cs.path(f.id, 'container.json'))) out.push(f);
    }
    return out;
  });
}

/** Resolves REF and brings it up to date. @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_AMBIGUOUS */
export async function resolveContainer(root: string, ref: string, log: Logger): Promise<ContainerRecord> {
  const cs = new ContainerStore(root);
  return refresh(root, cs, cs.resolve(ref), log);
}

/**
 * A foreground container (no monitor) has ended as its `berth run` records it: the record
 * says exited or is gone (--rm); with OWNERGONE, only once that berth has exited too (it
 * still unmounts and removes after writing the status). A run whose berth was killed is
 * finished here once its container has ended.
 */
async function foregroundEnded(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger,
  ownerGone: boolean): Promise<boolean> {
  let cur: ContainerRecord;
  try {
    cur = cs.read(rec.id);
  } catch {
    return true;
  }
  if (isAbandoned(cur)) return !isActive(await refresh(root, cs, cur, log));
  if (ownerGone && cur.owner) return false;
  return !isActive(cur);
}

/** Resolves once REC's exit is recorded (or its monitor is gone); false after MS. */
async function waitForExit(cs: ContainerStore, rec: ContainerRecord, ms: number,
  fg?: { root: string; log: Logger; ownerGone: boolean }): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (rec.monitor ? readExit(cs, rec.id) || !isMonitorAlive(rec)
      : fg && await foregroundEnded(fg.root, cs, rec, fg.log, fg.ownerGone)) return true;
    if (Date.now() >= end) return false;
    await sleep(25);
  }
}

function signalContainer(root: string, rec: ContainerRecord, signal: string, all: boolean, log: Logger): void {
  try {
    runtimeKill(runtimeContext(root, log), rec.id, signal, all);
    thawIfKilled(root, rec.id, signal, log);
  } catch (err) {
    // Exited between our look and the signal: nothing to do.
    if (!(err instanceof BerthError && (err.code === 'CONTAINER_NOT_RUNNING' || err.code === 'CONTAINER_NOT_FOUND'))) throw err;
  }
}

// berth pause (engine/container-ops.ts): on cgroup v1 a frozen process takes SIGKILL only
// once thawed, so a KILL thaws a paused container, as Docker's kill does.
function thawIfKilled(root: string, id: string, signal: string, log: Logger): void {
  if (parseSignal(signal) !== 9) return;
  try {
    const cg = openCgroup(runtimeContext(root, log).state.read(id).cgroup);
    if (cg.isFrozen()) cg.freeze(false);
  } catch {
    // gone meanwhile
  }
}

/**
 * Docker's stop: --stop-signal or the image's StopSignal (or SIGTERM), then SIGKILL after
 * TIMEOUT seconds (default: --stop-timeout, else 10). The restart policy leaves it down.
 * @throws BerthError CONTAINER_NOT_FOUND, SIGNAL_UNKNOWN
 */
export async function stopContainer(root: string, ref: string, timeout: number | undefined, log: Logger): Promise<ContainerRecord> {
  const cs = new ContainerStore(root);
  let rec = await resolveContainer(root, ref, log);
  // A foreground one too, as Docker's: its `berth run` sees it end and finishes it.
  if (rec.monitor) {
    await markManuallyStopped(root, rec.id);
    // Looked at again: a restart by the policy may have run just before the mark (it holds
    // the engine lock), and the record read above would call that new process exited.
    try {
      rec = await refresh(root, cs, cs.read(rec.id), log);
    } catch {
      return rec; // removed meanwhile
    }
  }
  const timeoutSec = timeout ?? rec.config?.stopTimeout ?? 10;
  if (!isActive(rec)) return rec;
  const signal = rec.config?.stopSignal ?? 'SIGTERM';
  parseSignal(signal);
  const fg = { root, log, ownerGone: false };
  signalContainer(root, rec, signal, false, log);
  if (!(await waitForExit(cs, rec, timeoutSec * 1000, fg))) {
    log.debug('container did not stop in time; killing it', { id: rec.id, timeout: timeoutSec });
    signalContainer(root, rec, 'KILL', !!rec.monitor, log);
    await waitForExit(cs, rec, 10_000, fg);
  }
  try {
    rec = cs.read(rec.id);
  } catch {
    return { ...rec, state: { ...rec.state, status: 'exited' } }; // a foreground run --rm removed it
  }
  rec = await refresh(root, cs, rec, log);
  return rec;
}

/** @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, SIGNAL_UNKNOWN */
export async function killContainer(root: string, ref: string, signal: string, log: Logger): Promise<ContainerRecord> {
  const rec = await resolveContainer(root, ref, log);
  parseSignal(signal);
  if (!isActive(rec)) {
    throw new BerthError('CONTAINER_NOT_RUNNING', `container "${rec.name}" is not running`, { context: { containerId: rec.id } });
  }
  // as Docker's kill: the restart policy leaves it down (a foreground one has none)
  if (rec.monitor) await markManuallyStopped(root, rec.id);
  runtimeKill(runtimeContext(root, log), rec.id, signal, false);
  thawIfKilled(root, rec.id, signal, log);
  return rec;
}

/**
 * Waits until the container exits; returns its exit code.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_REMOVED
 */
export async function waitContainer(root: string, ref: string, log: Logger): Promise<number> {
  const cs = new ContainerStore(root);
  let rec = await resolveContainer(root, ref, log);
  for (;;) {
    // An --rm container may be gone a moment after its exit file appears: read it first.
    const exit = rec.monitor ? readExit(cs, rec.id) : undefined;
    if (exit) return exit.exitCode;
    if (!isActive(rec)) return rec.state.exitCode;
    await sleep(50);
    try {
      rec = await refresh(root, cs, cs.read(rec.id), log);
    } catch {
      throw new BerthError('CONTAINER_REMOVED', `container "${rec.name}" was removed before its exit status was read`, {
        context: { containerId: rec.id },
      });
    }
  }
}

/**
 * Removes a container; FORCE kills a running one first (and waits for its monitor).
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_RUNNING, STORAGE_UNMOUNT
 */
export async function removeContainer(root: string, ref: string, force: boolean, log: Logger, volumes = false): Promise<void> {
  const cs = new ContainerStore(root);
  let rec = await resolveContainer(root, ref, log);
  // A container whose berth was killed before it had a monitor (a foreground run, or a
  // run -d during setup): nobody will ever finish it, so rm -f does.
  let abandoned = isAbandoned(rec);
  // As Docker's, a created container (never started) goes without -f.
  if (rec.state.status === 'created' && rec.monitor) force = true;
  if (isActive(rec) && !(abandoned && force)) {
    if (!force) {
      throw new BerthError('CONTAINER_RUNNING', `container "${rec.name}" is ${rec.state.status}`, {
        context: { containerId: rec.id },
        hint: `stop it first (berth stop ${rec.name}), or use \`berth rm --force\``,
      });
    }
    if (rec.monitor) await markManuallyStopped(root, rec.id);
    // Not --all for a foreground one: its berth-init waits in the cgroup for the status.
    signalContainer(root, rec, 'KILL', !!rec.monitor, log);
    // A foreground one: its berth run finishes it (and with --rm removes it); wait for
    // that berth to be gone, since it unmounts after recording the exit.
    await waitForExit(cs, rec, 10_000, { root, log, ownerGone: true });
    abandoned = isAbandoned(rec);
    // The monitor exits right after it records the status; let it finish writing.
    for (let i = 0; i < 200 && isMonitorAlive(rec); i++) await sleep(25);
  }
  await withEngineLock(root, async () => {
    try {
      rec = cs.read(rec.id);
    } catch {
      return; // removed meanwhile (--rm)
    }
    if ((rec.monitor || abandoned) && isActive(rec)) {
      rec = await finishIfExited(root, cs, rec, log);
      if (isActive(rec)) {
        // The monitor is gone but the init lives on (someone killed the monitor): take it down.
        const ctx = runtimeContext(root, log);
        try {
          destroy(ctx, ctx.state.read(rec.id), { runPoststop: true });
        } catch {
          // no runtime record
        }
        unmountOverlay(cs.path(rec.id, 'rootfs'));
      }
    }
    await detachContainerNetwork(root, undefined, rec, log);
    cs.remove(rec);
    // rm -v: the anonymous volumes go with it (named ones stay, as Docker's).
    if (volumes) for (const f of removeAnonymousVolumes(root, rec)) log.warn(`anonymous volume stays: ${f}`);
  });
}

/**
 * `berth container cleanup ID`, the monitor's exit command: finishes the container and,
 * with --rm, removes it. Quietly does nothing if it is already gone.
 */
export async function cleanupContainer(root: string, id: string, log: Logger): Promise<void> {
  const cs = new ContainerStore(root);
  // `rm -f` may have taken it already; then the lock (and its directory) is not wanted.
  if (!fs.existsSync(cs.path(id, 'container.json'))) return;
  await withEngineLock(root, async () => {
    let rec: ContainerRecord;
    try {
      rec = cs.read(id);
    } catch {
      return;
    }
    rec = await finishIfExited(root, cs, rec, log);
    if (!isActive(rec) && rec.autoRemove) {
      cs.remove(rec);
      for (const f of removeAnonymousVolumes(root, rec)) log.warn(`anonymous volume stays: ${f}`);
    }
  });
  await applyRestartPolicy(root, id, log);
}
