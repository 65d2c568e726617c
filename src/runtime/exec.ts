// `exec`: runs another process in a running container. berth-init (mode exec) joins the
// container's cgroup and namespaces through /proc/<init pid>/ns, forks into its pid
// namespace and execs. Node host process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError } from '../common/errors';
import { openCgroup } from '../cgroups/driver';
import { addProcess } from './build-plan';
import { checkSchema, checkSupported } from './config';
import type { RuntimeContext } from './context';
import { Launcher, nativeError, startInit } from './native';
import { hex, NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES, Plan } from './plan';
import { compileSeccomp } from './seccomp';
import type { Process } from './spec';
import { statusOf } from './state';

export interface ExecOptions {
  id: string;
  processFile?: string;
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  tty: boolean;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  capAdd: string[];
  noNewPrivs?: boolean;
  /** Start berth-init under this (stdio on /dev/null, own session): a detached exec that
   * must not hold the caller's stdio, e.g. the engine's `berth exec -d`. */
  launcher?: Launcher;
}

function processFromOptions(base: Process | undefined, opts: ExecOptions): Process {
  if (opts.processFile) {
    let text: string;
    try {
      text = fs.readFileSync(opts.processFile, 'utf8');
    } catch (err) {
      throw new BerthError('CONFIG_NOT_FOUND', `cannot read process file "${opts.processFile}": ${(err as Error).message}`, { cause: err });
    }
    let proc: Process;
    try {
      proc = JSON.parse(text) as Process;
    } catch (err) {
      throw new BerthError('CONFIG_INVALID_JSON', `process file "${opts.processFile}" is not valid JSON: ${(err as Error).message}`);
    }
    // The same schema as config.json's "process": a wrong type must not become uid 0.
    checkSchema({ ociVersion: '1.0.2', process: proc }, `process file "${opts.processFile}"`, opts.processFile);
    return proc;
  }
  if (!opts.args.length) {
    throw new BerthError('USAGE', 'exec needs a command or --process FILE', { hint: 'berth-runtime exec ID COMMAND [ARG...]' });
  }
  const [uid, gid] = (opts.user ?? '0:0').split(':').map(Number);
  if (Number.isNaN(uid) || Number.isNaN(gid ?? 0)) {
    throw new BerthError('USAGE', `--user "${opts.user}" must be UID[:GID]`);
  }
  const caps = base?.capabilities ? { ...base.capabilities } : undefined;
  if (caps && opts.capAdd.length) {
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = [...(caps[set] ?? []), ...opts.capAdd];
  }
  return {
    terminal: opts.tty, user: { uid, gid: gid ?? 0 }, args: opts.args,
    env: [...(base?.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']), ...opts.env],
    cwd: opts.cwd ?? base?.cwd ?? '/', capabilities: caps, noNewPrivileges: opts.noNewPrivs ?? base?.noNewPrivileges,
    rlimits: base?.rlimits,
  };
}

/**
 * Runs the process; resolves with its exit status (foreground) or 0 once it runs (detach).
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, RUNTIME_*, CONSOLE_SOCKET_REQUIRED
 */
export async function exec(ctx: RuntimeContext, opts: ExecOptions): Promise<number> {
  const rec = ctx.state.read(opts.id);
  const status = statusOf(ctx.state, rec);
  if (status !== 'running' && status !== 'created') {
    throw new BerthError('CONTAINER_NOT_RUNNING', `cannot exec in container "${opts.id}": it is ${status}`, {
      context: { containerId: opts.id },
    });
  }
  const proc = processFromOptions(rec.process, opts);
  checkSupported({ ociVersion: rec.ociVersion, process: proc, linux: { namespaces: [{ type: 'mount' }] } });
  if (proc.terminal && opts.detach && !opts.consoleSocket) {
    throw new BerthError('CONSOLE_SOCKET_REQUIRED', 'a detached exec with a terminal needs --console-socket');
  }

  const plan = new Plan();
  plan.add('mode', 'exec').add('loglevel', ctx.log.levelNumber).add('foreground', opts.detach ? 0 : 1);
  for (const f of openCgroup(rec.cgroup).procsFiles()) plan.add('cgroup', f);
  for (const type of rec.namespaces) {
    const name = NAMESPACE_PROC_NAMES[type];
    if (name) plan.add('join', hex(NAMESPACE_FLAGS[type]), `/proc/${rec.pid}/ns/${name}`);
  }
  plan.add('clone', '0');
  if (opts.consoleSocket) plan.add('consolesocket', path.resolve(opts.consoleSocket));
  addProcess(plan, { ociVersion: rec.ociVersion, process: proc }, opts.preserveFds ?? 0);
  if (rec.seccomp) plan.add('seccomp', compileSeccomp(rec.seccomp).toString('hex'));

  const init = startInit(plan, opts.preserveFds ?? 0, ctx.log, opts.launcher);
  const exited = new Promise<number>((resolve) => init.child.on('exit', (code, sig) => resolve(code ?? 128)));
  let pid: number | undefined;
  for (;;) {
    const m = await init.next();
    if (m === null) break;
    if (m.type === 'error') {
      await exited;
      throw nativeError(m, opts.id);
    }
    if (m.type === 'pid') pid = m.child;
  }
  if (pid === undefined) {
    throw new BerthError('RUNTIME_INIT_DIED', `exec in "${opts.id}" failed before the process started`, {
      hint: 'run with --debug for the init\'s log',
    });
  }
  if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(pid), 0o644, false);
  if (opts.detach) {
    init.close();
    return 0;
  }
  const forward = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid!, sig);
    } catch {
      // gone
    }
  };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  for (const s of sigs) process.on(s, forward);
  const code = await exited;
  for (const s of sigs) process.off(s, forward);
  return code;
}
