// `berth create`, `berth start` and `berth run -d`: a container whose init runs under its
// own monitor (native/monitor/berth-monitor.c), so it outlives the berth command that
// started it. The monitor holds its stdio, writes <dir>/ctr.log (CRI format) and
// <dir>/exit.json, then runs `berth container cleanup ID` (lifecycle.ts). Node host process.
// With -t the runtime sends the pty's master to the monitor over <dir>/console.sock; the
// monitor serves `berth attach` (attach.ts) on <dir>/attach.sock.
//
// Order: prepare (overlay, config.json, record) -> runtime create under the monitor (the
// runtime writes <dir>/init.pid, which the monitor waits for) -> record the init's and the
// monitor's pids -> start -> wait for the sync socket's EOF, which reports an init that
// failed after start (setuid, chdir) as the foreground run does.
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { distPath, monitorPath } from '../common/paths';
import type { Stores } from '../image/stores';
import { create } from '../runtime/create';
import { InitProcess, nativeError } from '../runtime/native';
import { start } from '../runtime/start';
import { pidStartTime } from '../runtime/state';
import { ContainerRecord, ContainerStore } from './containers';
import { exitFile, isActive, logFile, pidFile, refresh, runtimeContext, withEngineLock } from './lifecycle';
import { restartExited } from './restart';
import { EngineRunOptions, prepareContainer } from './run';
import { takeExitFds } from '../network/helpers';

export const attachSocket = (cs: ContainerStore, id: string): string => cs.path(id, 'attach.sock');
export const consoleSocket = (cs: ContainerStore, id: string): string => cs.path(id, 'console.sock');

/** The monitor's command line up to its "--" (berth-init and its fds follow). */
export function monitorArgs(root: string, cs: ContainerStore, id: string, opts: EngineRunOptions): string[] {
  const exitCommand = [distPath('cli', 'berth-bin.js'), '--root', root,
    ...(opts.log.enabled('debug') ? ['--log-level', 'debug'] : []), 'container', 'cleanup', id];
  return [
    '--log', logFile(cs, id), '--exit-file', exitFile(cs, id), '--pid-file', pidFile(cs, id),
    ...(opts.interactive ? ['--stdin'] : []),
    ...(opts.tty ? ['--console-socket', consoleSocket(cs, id)] : []), '--attach-socket', attachSocket(cs, id),
    '--exit-command', process.execPath, ...exitCommand.flatMap((a) => ['--exit-command-arg', a]),
    '--',
  ];
}

async function createUnderMonitor(stores: Stores, opts: EngineRunOptions): Promise<{ rec: ContainerRecord; init: InitProcess }> {
  const prepared = await prepareContainer(stores, opts);
  const { rec, dir, containers: cs } = prepared;
  const ctx = runtimeContext(stores.root, opts.log);
  let created;
  try {
    created = await create(ctx, {
      id: rec.id, bundle: dir, pidFile: pidFile(cs, rec.id),
      wrap: { command: monitorPath(), args: monitorArgs(stores.root, cs, rec.id, opts), inherit: takeExitFds() },
      // -t: the container's init sends the pty's master to the monitor, which holds it.
      consoleSocket: opts.tty ? consoleSocket(cs, rec.id) : undefined,
    });
  } catch (err) {
    await prepared.discard();
    throw err;
  }
  const monitorPid = created.init.child.pid!;
  rec.monitor = { pid: monitorPid, startTime: pidStartTime(monitorPid) };
  rec.config = { ...rec.config!, interactive: !!opts.interactive };
  rec.state = { ...rec.state, pid: created.rec.pid! };
  cs.write(rec);
  return { rec, init: created.init };
}

/**
 * `berth create`: the container exists, its init waits for `berth start`.
 * @throws BerthError as prepareContainer and the runtime's create
 */
export async function createDetached(stores: Stores, opts: EngineRunOptions): Promise<ContainerRecord> {
  const { rec, init } = await createUnderMonitor(stores, opts);
  init.close(true);
  return rec;
}

function startCreated(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger): ContainerRecord {
  start(runtimeContext(root, log), rec.id);
  rec.state = { ...rec.state, status: 'running', startedAt: new Date().toISOString() };
  cs.write(rec);
  return rec;
}

/**
 * `berth run -d`: create and start; returns once the process runs.
 * @throws BerthError as createDetached; RUNTIME_EXEC_* (exit 126/127) when the process
 *   could not be executed after start
 */
export async function runDetached(stores: Stores, opts: EngineRunOptions): Promise<ContainerRecord> {
  const { rec, init } = await createUnderMonitor(stores, opts);
  const cs = new ContainerStore(stores.root);
  try {
    startCreated(stores.root, cs, rec, opts.log);
    let late: BerthError | undefined;
    for (let m = await init.next(); m !== null; m = await init.next()) {
      if (m.type === 'error') late = nativeError(m, rec.id);
    }
    if (late) throw late;
    return rec;
  } finally {
    init.close(true);
  }
}

/**
 * `berth start`: starts a created container, or an exited one again under a new monitor
 * (BEFORESTART runs once that monitor is up, before the container's process starts).
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_CREATED
 */
export async function startContainer(root: string, ref: string, log: Logger,
  beforeStart?: (rec: ContainerRecord) => Promise<void>): Promise<ContainerRecord> {
  const cs = new ContainerStore(root);
  const rec = await refresh(root, cs, cs.resolve(ref), log);
  if (rec.state.status === 'running') return rec; // Docker: starting a running container is a no-op
  if (rec.state.status === 'exited') {
    // As Docker's: the same container (id, config, upper dir) runs again, detached.
    await withEngineLock(root, async () => {
      const cur = cs.read(rec.id);
      if (cur.state.status === 'exited') await restartExited(root, cs, cur, log, false, beforeStart);
    });
    return cs.read(rec.id);
  }
  if (!rec.monitor || !isActive(rec)) {
    throw new BerthError('CONTAINER_NOT_CREATED', `container "${rec.name}" cannot be started in state ${rec.state.status}`, {
      context: { containerId: rec.id }, hint: `remove it (berth rm -f ${rec.name}) and run a new one`,
    });
  }
  return startCreated(root, cs, rec, log);
}
