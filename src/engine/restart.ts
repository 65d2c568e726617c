// --restart for detached containers: after the monitor's exit command (`berth container
// cleanup ID`, lifecycle.ts) has finished an exited container, the policy may start it
// again: same id, same config.json and upper dir, a new monitor. Runs in that cleanup
// process (Node host), holding the engine lock except while it waits out the back-off.
//
// Docker's semantics, kept: on-failure restarts on a non-zero status, at most N times when
// N is given; always and unless-stopped restart whatever the status; nothing restarts
// after `berth stop`, `kill` or `rm -f` (Docker's "manually stopped"); the delay starts at
// 100 ms and doubles per restart (reset after 10 s of running), up to 1 minute.
// Differences: there is no daemon, so nothing restarts at boot (always and unless-stopped
// behave alike), and a foreground `berth run` refuses --restart (no monitor to apply it).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { monitorPath } from '../common/paths';
import { openStores } from '../image/stores';
import { create } from '../runtime/create';
import { nativeError } from '../runtime/native';
import { start } from '../runtime/start';
import { pidStartTime } from '../runtime/state';
import { mountOverlay, unmountOverlay } from '../storage/overlay';
import { ContainerRecord, ContainerStore, RestartPolicy } from './containers';
import { consoleSocket, monitorArgs } from './detached';
import { exitFile, pidFile, runtimeContext, withEngineLock } from './lifecycle';
import { detachContainerNetwork, reattachContainerNetwork } from './network-attach';
import type { EngineRunOptions } from './run';
import { takeExitFds } from '../network/helpers';

const MAX_DELAY_MS = 60_000;

/**
 * "no", "on-failure[:N]", "always", "unless-stopped" -> the policy.
 * @throws BerthError USAGE
 */
export function parseRestartPolicy(v: string | undefined, autoRemove: boolean): RestartPolicy {
  const m = /^(no|on-failure|always|unless-stopped)(?::(\d+))?$/.exec(v ?? 'no');
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) {
    throw new BerthError('USAGE', `--restart "${v}" is not a restart policy`, { hint: 'use no, on-failure[:N], always or unless-stopped' });
  }
  const policy: RestartPolicy = { name: m[1] as RestartPolicy['name'], maximumRetryCount: Number(m[2] ?? 0) };
  if (autoRemove && policy.name !== 'no') {
    throw new BerthError('USAGE', 'conflicting options: --restart and --rm', { hint: 'a container that restarts cannot be removed when it exits' });
  }
  return policy;
}

function wantsRestart(rec: ContainerRecord): boolean {
  const p = rec.hostConfig?.restartPolicy;
  if (!p || p.name === 'no' || rec.manuallyStopped || rec.autoRemove) return false;
  if (p.name === 'on-failure') {
    return rec.state.exitCode !== 0 && (p.maximumRetryCount === 0 || (rec.restartCount ?? 0) < p.maximumRetryCount);
  }
  return true;
}

function delayMs(rec: ContainerRecord): number {
  const ran = Date.parse(rec.state.finishedAt ?? '') - Date.parse(rec.state.startedAt ?? '');
  if (ran >= 10_000) return 100;
  return Math.min(MAX_DELAY_MS, 100 * 2 ** Math.min(rec.restartCount ?? 0, 20));
}

const monitorKey = (rec: ContainerRecord): string => `${rec.monitor?.pid}:${rec.monitor?.startTime}`;

/**
 * Marks REC stopped by the user, so that its restart policy leaves it down. Takes the
 * engine lock; a container that is gone is ignored.
 */
export async function markManuallyStopped(root: string, id: string): Promise<void> {
  const cs = new ContainerStore(root);
  await withEngineLock(root, () => {
    try {
      const rec = cs.read(id);
      if (!rec.hostConfig?.restartPolicy || rec.hostConfig.restartPolicy.name === 'no' || rec.manuallyStopped) return;
      cs.write({ ...rec, manuallyStopped: true });
    } catch {
      // removed meanwhile
    }
  });
}

/**
 * Applies ID's restart policy to the exit its monitor has just recorded; called by the
 * monitor's exit command once the container is finished. Each monitor's exit is handled
 * once, whoever else looked at the container meanwhile. Failures are logged, not thrown:
 * the container then stays exited.
 */
export async function applyRestartPolicy(root: string, id: string, log: Logger): Promise<void> {
  const cs = new ContainerStore(root);
  const decided = await withEngineLock(root, () => {
    let rec: ContainerRecord;
    try {
      rec = cs.read(id);
    } catch {
      return undefined;
    }
    if (rec.state.status !== 'exited' || !rec.monitor || rec.restartHandled === monitorKey(rec)) return undefined;
    const key = monitorKey(rec);
    cs.write({ ...rec, restartHandled: key });
    return wantsRestart(rec) ? { key, delay: delayMs(rec) } : undefined;
  });
  if (!decided) return;
  await new Promise((r) => setTimeout(r, decided.delay));

  await withEngineLock(root, async () => {
    let rec: ContainerRecord;
    try {
      rec = cs.read(id);
    } catch {
      return; // removed meanwhile
    }
    // stop, kill or rm -f during the delay, or someone else restarted it
    if (rec.state.status !== 'exited' || rec.manuallyStopped || rec.restartHandled !== decided.key) return;
    try {
      await restartExited(root, cs, rec, log);
    } catch (err) {
      log.error(`restart container ${id.slice(0, 12)}: ${(err as Error).message}`, { id });
    }
  });
}

/**
 * Starts exited container REC again under a new monitor. Call with the engine lock held.
 * @throws BerthError IMAGE_NOT_FOUND, STORAGE_*, RUNTIME_* (REC then stays exited)
 */
export async function restartExited(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger,
  byPolicy = true, beforeStart?: (rec: ContainerRecord) => Promise<void>): Promise<void> {
  const stores = openStores(root);
  const img = stores.images.resolve(rec.imageId);
  const dir = cs.path(rec.id);
  const rootfs = path.join(dir, 'rootfs');
  // The new monitor waits for a pid file, and an exit file would say it already exited.
  fs.rmSync(exitFile(cs, rec.id), { force: true });
  fs.rmSync(pidFile(cs, rec.id), { force: true });
  mountOverlay([...img.layers].reverse().map((c) => stores.layers.path(c)), path.join(dir, 'upper'), path.join(dir, 'work'), rootfs,
    rec.userns);
  const ctx = runtimeContext(root, log);
  let created;
  try {
    // A new namespace and helpers: the old ones went when it exited (network-attach.ts).
    await reattachContainerNetwork(root, cs, rec, log);
    const opts = { log, interactive: !!rec.config?.interactive, tty: !!rec.config?.tty } as EngineRunOptions;
    created = await create(ctx, {
      id: rec.id, bundle: dir, pidFile: pidFile(cs, rec.id), wrap: { command: monitorPath(), args: monitorArgs(root, cs, rec.id, opts), inherit: takeExitFds() },
      consoleSocket: opts.tty ? consoleSocket(cs, rec.id) : undefined,
    });
  } catch (err) {
    await detachContainerNetwork(root, cs, rec, log);
    unmountOverlay(rootfs);
    throw err;
  }
  const monitorPid = created.init.child.pid!;
  // RestartCount counts the policy's restarts, as Docker's; `berth start` does not add one.
  const count = (rec.restartCount ?? 0) + (byPolicy ? 1 : 0);
  rec = {
    ...rec, monitor: { pid: monitorPid, startTime: pidStartTime(monitorPid) }, restartCount: count,
    manuallyStopped: byPolicy ? rec.manuallyStopped : false,
    state: { ...rec.state, status: 'running', pid: created.rec.pid!, exitCode: 0, oomKilled: false, startedAt: new Date().toISOString() },
  };
  cs.write(rec);
  // start -a: its client connects to the new monitor now, so none of the output is missed.
  // A client that fails still leaves the container started, as a plain start would.
  let hookError: unknown;
  if (beforeStart) await beforeStart(rec).catch((err) => { hookError = err; });
  try {
    start(ctx, rec.id);
    for (let m = await created.init.next(); m !== null; m = await created.init.next()) {
      if (m.type === 'error') log.error(nativeError(m, rec.id).message, { id: rec.id });
    }
  } finally {
    created.init.close(true);
  }
  log.info('container restarted', { id: rec.id, restartCount: count });
  if (hookError) throw hookError;
}
