// Starting native/build/berth-init and speaking the sync protocol with it (native/plan.h).
// Shared by create (mode create) and exec (mode exec). Node host process.
import type { ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import type { Readable, Stream, Writable } from 'node:stream';
import { BerthError, errnoText } from '../common/errors';
import type { Logger } from '../common/log';
import { initPath } from '../common/paths';
import type { Plan } from './plan';


export interface SyncMessage {
  type: 'pid' | 'hooks' | 'ready' | 'error' | 'log';
  stage: string;
  pid: number;
  child?: number;
  op?: string;
  path?: string;
  errno?: number;
  level?: string;
  msg?: string;
}

/** Turns the init's {stage, op, path, errno} record into the error the user sees. */
export function nativeError(m: SyncMessage, id: string): BerthError {
  const context = { containerId: id, stage: m.stage, path: m.path, errno: m.errno, syscall: m.op };
  if (m.op === 'find executable in $PATH' || (m.op === 'exec' && m.errno === os.constants.errno.ENOENT)) {
    return new BerthError('RUNTIME_EXEC_NOT_FOUND',
      `executable "${m.path}" not found${m.op === 'exec' ? '' : ' in $PATH'} inside the container`, {
        context, exitCode: 127, hint: 'check the command name, and the PATH it is looked up in',
      });
  }
  if (m.op === 'exec' || (m.op === 'chdir to the process cwd')) {
    return new BerthError(m.op === 'exec' ? 'RUNTIME_EXEC_DENIED' : 'RUNTIME_CWD',
      `${m.op} "${m.path}": ${errnoText(m.errno ?? 0)}`, { context, exitCode: 126 });
  }
  const what = m.path ? `${m.op} ${m.path}` : `${m.op}`;
  const errText = errnoText(m.errno ?? 0);
  return new BerthError(`RUNTIME_${m.stage.toUpperCase()}`, `${what}${errText ? `: ${errText}` : ''}`, { context });
}

export interface InitProcess {
  child: ChildProcess;
  sync: Readable & Writable;
  /** Resolves with each message, in order; null at end of stream. */
  next(): Promise<SyncMessage | null>;
  reply(line: string): void;
  /** Stops listening; with DETACH, Node may also exit before berth-init does. */
  close(detach?: boolean): void;
}

/**
 * A program that berth-init is started under, as `COMMAND ...ARGS INIT-PATH PLANFD SYNCFD`:
 * it must exec (or fork and exec) those last three arguments with the two fds as it got
 * them. It runs in a session of its own with stdio on /dev/null, so it may outlive the
 * caller (the engine's per-container monitor is one).
 */
export interface Launcher {
  command: string;
  args: string[];
  /** Pipes the launcher inherits after berth-init's fds (a helper's exit-fd end to hold). */
  inherit?: Stream[];
}

/**
 * Spawns berth-init with PLAN, under LAUNCHER when given. Without one it shares the
 * caller's stdio. PRESERVE extra fds (3..) are passed through before the plan and sync fds.
 */
export function startInit(plan: Plan, preserveFds: number, log: Logger, launcher?: Launcher): InitProcess {
  const extra: number[] = [];
  for (let i = 0; i < preserveFds; i++) extra.push(3 + i);
  const planFd = 3 + preserveFds;
  const syncFd = planFd + 1;
  // Required here, not at the top: child_process stays out of the start-up snapshot.
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  const initArgs = [String(planFd), String(syncFd)];
  const child = launcher
    ? spawn(launcher.command, [...launcher.args, initPath(), ...initArgs], {
      stdio: ['ignore', 'ignore', 'ignore', ...extra, 'pipe', 'pipe', ...(launcher.inherit ?? [])], detached: true,
    })
    : spawn(initPath(), initArgs, { stdio: ['inherit', 'inherit', 'inherit', ...extra, 'pipe', 'pipe'] });
  const planStream = child.stdio[planFd] as Writable;
  const sync = child.stdio[syncFd] as Readable & Writable;
  log.debug('plan', { plan: plan.toString() });
  planStream.end(plan.toString());

  let buf = '';
  const queue: (SyncMessage | null)[] = [];
  const waiters: ((m: SyncMessage | null) => void)[] = [];
  const push = (m: SyncMessage | null) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  };
  sync.setEncoding('utf8');
  sync.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let m: SyncMessage;
      try {
        m = JSON.parse(line) as SyncMessage;
      } catch {
        log.warn('unreadable line from berth-init', { line });
        continue;
      }
      if (m.type === 'log') {
        log.log((m.level ?? 'debug') as 'debug', m.msg ?? '', { stage: m.stage, pid: m.pid });
        continue;
      }
      push(m);
    }
  });
  sync.on('end', () => push(null));
  sync.on('error', () => push(null));
  child.on('error', (err) => {
    log.error('cannot start berth-init', { path: launcher?.command ?? initPath(), error: err.message });
    push(null);
  });

  return {
    child,
    sync,
    next: () => new Promise((resolve) => {
      if (queue.length) resolve(queue.shift()!);
      else waiters.push(resolve);
    }),
    reply: (line: string) => {
      sync.write(line);
    },
    close: (detach = true) => {
      sync.destroy();
      if (detach) child.unref();
    },
  };
}
