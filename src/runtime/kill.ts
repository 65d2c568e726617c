// `kill`: sends a signal to a container's init, or with --all to every process in its
// cgroup. Node host process.
import { BerthError } from '../common/errors';
import { parseSignal } from '../common/signals';
import { openCgroup } from '../cgroups/driver';
import type { RuntimeContext } from './context';
import { statusOf } from './state';

/** @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, SIGNAL_UNKNOWN */
export function kill(ctx: RuntimeContext, id: string, signal: string, all: boolean): void {
  const sig = parseSignal(signal);
  const rec = ctx.state.read(id);
  const status = statusOf(ctx.state, rec);
  if (status === 'stopped' || status === 'creating') {
    throw new BerthError('CONTAINER_NOT_RUNNING', `cannot signal container "${id}": it is ${status}`, {
      context: { containerId: id },
    });
  }
  const pids = all ? openCgroup(rec.cgroup).pids() : [rec.pid!];
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  ctx.log.debug('signalled', { id, signal: sig, pids: pids.join(',') });
}
