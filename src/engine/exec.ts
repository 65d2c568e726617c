// `berth exec`: another process in a running container, through the OCI runtime's exec
// (runtime/exec.ts) in this process: berth-init joins the container's namespaces and cgroup.
// The process starts from the container's own (config.json's process: env, user,
// capabilities, rlimits) with exec's flags on top. Node host process.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { exec as runtimeExec } from '../runtime/exec';
import type { Process } from '../runtime/spec';
import { statusOf } from '../runtime/state';
import { ContainerRecord, ContainerStore } from './containers';
import { resolveContainer, runtimeContext } from './lifecycle';
import { checkEnvFlag, checkWorkdir, resolveUser } from './spec';

export interface ExecRequest {
  args: string[];
  /** -e NAME=VALUE, or NAME alone for the host's value (as `run`). */
  env: string[];
  user?: string;
  workdir?: string;
  tty: boolean;
  detach: boolean;
  log: Logger;
}

/**
 * The running container REF, or an error that says why not.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_AMBIGUOUS, CONTAINER_NOT_RUNNING,
 *   CONTAINER_PAUSED (with ALLOWPAUSED false)
 */
export async function requireRunning(root: string, ref: string, verb: string, log: Logger,
  allowPaused = false): Promise<ContainerRecord> {
  const rec = await resolveContainer(root, ref, log);
  const ctx = runtimeContext(root, log);
  let status: string = rec.state.status;
  if (rec.state.status === 'running') {
    try {
      status = statusOf(ctx.state, ctx.state.read(rec.id));
    } catch {
      status = 'stopped';
    }
  }
  if (status === 'paused' && !allowPaused) {
    throw new BerthError('CONTAINER_PAUSED', `cannot ${verb} container "${rec.name}": it is paused`, {
      context: { containerId: rec.id }, hint: `berth unpause ${rec.name}`,
    });
  }
  if (status !== 'running' && status !== 'paused') {
    throw new BerthError('CONTAINER_NOT_RUNNING', `cannot ${verb} container "${rec.name}": it is not running`, {
      context: { containerId: rec.id }, hint: rec.state.status === 'created' ? `start it first: berth start ${rec.name}` : undefined,
    });
  }
  return rec;
}

/** BASE with -e's NAME=VALUE (or NAME: the host's value, dropped if unset) replacing by name. */
function mergeEnv(base: string[], flags: string[]): string[] {
  const env = new Map<string, string>();
  for (const e of base) {
    const i = e.indexOf('=');
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
  }
  for (const e of flags) {
    checkEnvFlag(e);
    const i = e.indexOf('=');
    if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
    else if (process.env[e] !== undefined) env.set(e, process.env[e]!);
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/**
 * Runs REQ.args in the running container REF. Resolves with the process's exit status
 * (128+n for signal n), or 0 once it runs with REQ.detach.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, CONTAINER_PAUSED, USAGE,
 *   USER_NOT_FOUND, RUNTIME_EXEC_NOT_FOUND (exit 127), RUNTIME_EXEC_DENIED and RUNTIME_CWD
 *   (exit 126), RUNTIME_*
 */
export async function execInContainer(root: string, ref: string, req: ExecRequest): Promise<number> {
  if (!req.args.length) throw new BerthError('USAGE', 'exec needs a command', { hint: 'berth exec CONTAINER COMMAND [ARG...]' });
  if (req.tty && req.detach) {
    throw new BerthError('UNSUPPORTED', 'exec -d cannot have a terminal (-t) yet', { hint: 'leave out -t with -d' });
  }
  if (req.workdir !== undefined) checkWorkdir(req.workdir);
  const rec = await requireRunning(root, ref, 'exec in', req.log);
  const ctx = runtimeContext(root, req.log);
  const rt = ctx.state.read(rec.id);
  const base: Process = rt.process ?? { cwd: '/', user: { uid: 0, gid: 0 } };
  const user = req.user !== undefined ? resolveUser(rt.rootfs, req.user) : undefined;
  const env = mergeEnv(base.env ?? [], [...(req.tty ? ['TERM=xterm'] : []), ...req.env]);
  const proc: Process = {
    ...base, terminal: req.tty, args: req.args, env, cwd: req.workdir ?? base.cwd ?? '/',
    user: user ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } : base.user,
  };
  delete proc.consoleSize;
  // The runtime's exec takes a full process as a file (as runc's --process): the schema
  // check applies, and the container's capabilities and rlimits carry over unchanged.
  const cs = new ContainerStore(root);
  const file = cs.path(rec.id, `exec-${randomBytes(6).toString('hex')}.json`);
  fs.writeFileSync(file, JSON.stringify(proc), { mode: 0o600 });
  try {
    return await runtimeExec(ctx, {
      id: rec.id, processFile: file, args: [], env: [], tty: req.tty, detach: req.detach, capAdd: [],
      // env(1) execs berth-init as it got it, in a session of its own with stdio on
      // /dev/null: a detached process must not hold berth's stdout open.
      launcher: req.detach ? { command: '/usr/bin/env', args: [] } : undefined,
    });
  } finally {
    fs.rmSync(file, { force: true });
  }
}
