// `delete`: removes a stopped container (or, with --force, kills it first): its processes,
// cgroup and state, then runs poststop hooks. Also the rollback of a failed create.
// Best effort past each failure, warning what may be left. Node host process.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import { existingDirs, openCgroup } from '../cgroups/driver';
import type { RuntimeContext } from './context';
import { runHooks } from './hooks';
import { ContainerRecord, isAlive, ociState, statusOf } from './state';

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** SIGKILL the init and everything in the cgroup, and wait (up to ~5 s) until they are gone. */
export function killAll(rec: ContainerRecord): void {
  const cg = rec.cgroup.dirs.length ? openCgroup(rec.cgroup) : undefined;
  try {
    if (cg?.isFrozen()) cg.freeze(false);
  } catch {
    // a missing freezer just means nothing was frozen
  }
  for (let i = 0; i < 500; i++) {
    const pids = new Set(cg?.pids() ?? []);
    if (isAlive(rec)) pids.add(rec.pid!);
    if (pids.size === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    sleep(10);
  }
}

export function destroy(ctx: RuntimeContext, rec: ContainerRecord,
  opts: { runPoststop: boolean; sweepUnrecordedCgroup?: boolean }): void {
  killAll(rec);
  if (opts.sweepUnrecordedCgroup && !rec.cgroup.dirs.length && rec.cgroup.path) {
    // Killed between making the cgroup and recording it: no process of ours ever joined it
    // (berth-init starts after the record), so only empty directories are ours to remove.
    for (const d of existingDirs(rec.cgroup.path)) {
      try {
        fs.rmdirSync(d);
      } catch {
        // not empty: another container's, or not ours
      }
    }
  }
  if (rec.cgroup.dirs.length) {
    try {
      openCgroup(rec.cgroup).remove();
    } catch (err) {
      ctx.log.warn(`cgroup of "${rec.id}" was not removed: ${(err as Error).message}`, { id: rec.id, path: rec.cgroup.path });
    }
  }
  if (opts.runPoststop) {
    try {
      runHooks('poststop', rec.hooks?.poststop, ociState(rec, 'stopped'));
    } catch (err) {
      ctx.log.warn((err as Error).message, { id: rec.id });
    }
  }
  ctx.state.remove(rec.id);
}

/** @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_RUNNING */
export function deleteContainer(ctx: RuntimeContext, id: string, force: boolean): void {
  let rec: ContainerRecord;
  try {
    rec = ctx.state.read(id);
  } catch (err) {
    if (err instanceof BerthError && err.code === 'CONTAINER_INCOMPLETE' && force) {
      ctx.state.remove(id);
      return;
    }
    // As runc: --force on a missing container succeeds. podman runs `delete --force` after
    // a failed create (which already removed everything) and would print this error.
    if (err instanceof BerthError && err.code === 'CONTAINER_NOT_FOUND' && force) return;
    throw err;
  }
  const status = statusOf(ctx.state, rec);
  if ((status === 'running' || status === 'paused' || status === 'creating') && !force) {
    throw new BerthError('CONTAINER_RUNNING', `cannot delete container "${id}": it is ${status}`, {
      context: { containerId: id }, hint: `stop it with \`kill ${id} KILL\` first, or use \`delete --force ${id}\``,
    });
  }
  // A create killed between making its cgroup and recording it left the cgroup unnamed in
  // the record; delete sweeps it (a failed create's own rollback must not: the cgroup may
  // be another container's, which is why that create failed).
  destroy(ctx, rec, { runPoststop: true, sweepUnrecordedCgroup: true });
  ctx.log.info('container deleted', { id });
}
