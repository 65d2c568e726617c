// `run` in the foreground: create, start, forward signals to the container's init, wait
// for it, and delete it (unless KEEP). Used by berth-runtime's `run` and by the engine's
// `berth run` (in process). Node host process.
import { BerthError } from '../common/errors';
import { wasOomKilled } from '../cgroups/driver';
import type { RuntimeContext } from './context';
import { create, CreateOptions } from './create';
import { destroy } from './delete';
import { nativeError } from './native';
import { start } from './start';

export interface ForegroundResult {
  /** The process's exit status (128+n for signal n). */
  status: number;
  /** An error the init reported after start (its process never ran): status is 126/127. */
  late?: BerthError;
  pid: number;
  /** The kernel's OOM killer killed a process of its cgroup (read before the cgroup goes). */
  oomKilled: boolean;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * @param onStarted called once the process runs, with the init's host pid
 * @throws BerthError from create and start (nothing is left behind then)
 */
export async function runForeground(ctx: RuntimeContext, opts: Omit<CreateOptions, 'foreground'>,
  keep = false, onStarted?: (pid: number) => void): Promise<ForegroundResult> {
  const { rec, init } = await create(ctx, { ...opts, foreground: true });
  const exited = new Promise<number>((resolve) => init.child.on('exit', (code) => resolve(code ?? 255)));
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(rec.pid!, sig);
    } catch {
      // already gone
    }
  };
  for (const s of FORWARDED) process.on(s, forward);
  try {
    try {
      start(ctx, opts.id);
    } catch (err) {
      destroy(ctx, rec, { runPoststop: true });
      throw err;
    }
    onStarted?.(rec.pid!);
    // Errors after start (a failed setuid or chdir) still arrive on the sync socket.
    let late: BerthError | undefined;
    for (let m = await init.next(); m !== null; m = await init.next()) {
      if (m.type === 'error') late = nativeError(m, opts.id);
    }
    init.close(false);
    let status = await exited;
    if (late) status = late.exitCode ?? 127;
    const oomKilled = wasOomKilled(rec.cgroup);
    if (!keep) destroy(ctx, rec, { runPoststop: true });
    return { status, late, pid: rec.pid!, oomKilled };
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
  }
}
