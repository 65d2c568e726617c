// The helper processes a network holds (slirp4netns, pasta): finding their binaries, and
// ending them by pid + start time, so that a recycled pid is never signalled. Used by the
// drivers and by network/index.ts at teardown. Node host process.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Stream } from 'node:stream';
import { pidStartTime } from '../runtime/state';
import type { HelperProcess } from './types';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * BIN's absolute path, or undefined: $BERTH_<BIN> when set (a binary elsewhere, or a
 * missing one for tests: then only that path counts), else $PATH plus the usual dirs.
 */
export function findBinary(bin: string): string | undefined {
  const override = process.env[`BERTH_${bin.toUpperCase()}`];
  if (override) {
    try {
      fs.accessSync(override, fs.constants.X_OK);
      return fs.statSync(override).isFile() ? override : undefined;
    } catch {
      return undefined;
    }
  }
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

// Helpers this process spawned, by pid: resolved when node has reaped them. endHelper
// waits on that instead of polling /proc (a reaped child is gone at once; polling added
// up to 10 ms to every `berth run --rm` with a helper).
const reaped = new Map<number, Promise<void>>();

/**
 * PID as a HelperProcess, or undefined when it is already gone. CHILD: the process when
 * this one spawned it.
 */
export function helperOf(what: string, pid: number, child?: ChildProcess): HelperProcess | undefined {
  if (child) {
    const gone = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
    reaped.set(pid, gone);
  }
  const st = pidStartTime(pid);
  return st === undefined ? undefined : { what, pid, startTime: Number(st) };
}

export function isHelperAlive(h: HelperProcess): boolean {
  return pidStartTime(h.pid) === String(h.startTime);
}

/**
 * Ends H: SIGTERM, then SIGKILL after MS. Quietly does nothing when the pid is gone or
 * belongs to another process now. Resolves once it is gone (or not ours).
 */
export async function endHelper(h: HelperProcess, ms = 2000): Promise<void> {
  if (!isHelperAlive(h)) return;
  try {
    process.kill(h.pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + ms;
  const gone = reaped.get(h.pid);
  if (gone) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise((r) => { timer = setTimeout(r, ms); })]);
    clearTimeout(timer);
    reaped.delete(h.pid);
  }
  for (let delay = 1; isHelperAlive(h); delay = Math.min(delay * 2, 10)) {
    if (Date.now() >= end) {
      try {
        process.kill(h.pid, 'SIGKILL');
      } catch {
        return;
      }
      for (let i = 0; i < 200 && isHelperAlive(h); i++) await sleep(10);
      return;
    }
    await sleep(delay);
  }
}

/** The last lines of a helper's log FILE that say why it failed ("" when none). */
export function lastLogLines(file: string, n = 3): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim())
      .filter((l) => l && !/^Failed to send \d+ bytes to syslog/.test(l)).slice(-n).join('; ');
  } catch {
    return '';
  }
}

// The berth-side ends of detached containers' helper exit pipes (slirp4netns --exit-fd),
// made during this process's network setup, waiting for the monitor that inherits them.
const exitFds: Stream[] = [];

export function holdExitFd(s: Stream): void {
  exitFds.push(s);
}

/** The ends held so far, for the monitor's stdio; this process keeps them open until it exits. */
export function takeExitFds(): Stream[] {
  return exitFds.splice(0);
}
