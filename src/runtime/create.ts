// `create`: bundle -> a container whose init waits on the exec fifo. Node host process.
// Steps: load config; claim the id; make the cgroup; record the state; start berth-init
// and follow its sync points (native/plan.h): 1 pid, 2 hooks, 3 ready. Any failure
// removes what was made, so a failed create leaves no state, cgroup or process behind.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError } from '../common/errors';
import { createCgroup, resolveCgroupPath } from '../cgroups/driver';
import { buildCreatePlan } from './build-plan';
import { loadConfig } from './config';
import type { RuntimeContext } from './context';
import { destroy } from './delete';
import { runHooks } from './hooks';
import { InitProcess, Launcher, nativeError, startInit } from './native';
import { ContainerRecord, ociState, pidStartTime } from './state';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
  /** `run` without --detach: stage 0 stays to report the exit status. */
  foreground?: boolean;
  /** Start berth-init under this program (native.ts Launcher), e.g. a monitor. */
  wrap?: Launcher;
}

export interface Created {
  rec: ContainerRecord;
  init: InitProcess;
}

/**
 * @throws BerthError CONTAINER_EXISTS, CONFIG_*, ROOTFS_NOT_FOUND, CGROUP_*, RUNTIME_*, HOOK_FAILED
 */
export async function create(ctx: RuntimeContext, opts: CreateOptions): Promise<Created> {
  const bundle = path.resolve(opts.bundle);
  const { spec, rootfs } = loadConfig(bundle);
  if (spec.process?.terminal && !opts.consoleSocket && !opts.foreground) {
    throw new BerthError('CONSOLE_SOCKET_REQUIRED', 'process.terminal is true but no --console-socket was given', {
      hint: 'pass --console-socket PATH, or set process.terminal to false',
    });
  }
  const cgPath = resolveCgroupPath(spec.linux?.cgroupsPath, opts.id, ctx.systemdCgroup);

  ctx.state.claim(opts.id);
  const rec: ContainerRecord = {
    id: opts.id, ociVersion: spec.ociVersion, bundle, rootfs, created: new Date().toISOString(),
    annotations: spec.annotations, cgroup: { version: 1, path: cgPath, dirs: [] }, hooks: spec.hooks,
    namespaces: (spec.linux?.namespaces ?? []).map((n) => n.type), owner: os.userInfo().username,
    process: spec.process, seccomp: spec.linux?.seccomp,
  };
  let init: InitProcess | undefined;
  try {
    ctx.state.write(rec);
    const cgroup = createCgroup(cgPath);
    // A cgroup with processes in it belongs to someone else (another container with the
    // same cgroupsPath, a service): delete and a failed create kill everything in the
    // container's cgroup, so it must never be adopted. Checked before rec.cgroup is set,
    // so that the rollback below leaves it alone.
    const squatters = cgroup.pids();
    if (squatters.length) {
      throw new BerthError('CGROUP_NOT_EMPTY', `cgroup ${cgPath} already has processes in it (pids ${squatters.slice(0, 5).join(', ')}${squatters.length > 5 ? ', ...' : ''})`, {
        context: { containerId: opts.id, path: cgPath, field: 'linux.cgroupsPath' },
        hint: 'each container needs a cgroup of its own: give linux.cgroupsPath a path no other container or service uses',
      });
    }
    rec.cgroup = cgroup.record;
    ctx.state.write(rec);
    cgroup.apply(spec.linux?.resources);

    const plan = buildCreatePlan({
      id: opts.id, spec, bundle, rootfs, cgroup, fifo: ctx.state.fifo(opts.id), foreground: !!opts.foreground,
      consoleSocket: opts.consoleSocket ? path.resolve(opts.consoleSocket) : undefined, noPivot: !!opts.noPivot,
      preserveFds: opts.preserveFds ?? 0, logLevel: ctx.log.levelNumber, warn: (m) => ctx.log.warn(m, { id: opts.id }),
    });
    init = startInit(plan, opts.preserveFds ?? 0, ctx.log, opts.wrap);

    for (;;) {
      const m = await init.next();
      if (m === null) {
        throw new BerthError('RUNTIME_INIT_DIED', `the container's init for "${opts.id}" exited before it was ready`, {
          context: { containerId: opts.id }, hint: 'run with --debug for the init\'s log',
        });
      }
      if (m.type === 'error') throw nativeError(m, opts.id);
      if (m.type === 'pid') {
        // Sync 1: from here on, delete --force can find and kill the init.
        rec.pid = m.child;
        rec.pidStartTime = pidStartTime(m.child!);
        ctx.state.write(rec);
        ctx.log.debug('container init started', { id: opts.id, pid: m.child });
      } else if (m.type === 'hooks') {
        // Sync 2: prestart (deprecated) and createRuntime hooks, in the runtime namespace.
        const st = ociState(rec, 'creating');
        runHooks('prestart', spec.hooks?.prestart, st);
        runHooks('createRuntime', spec.hooks?.createRuntime, st);
        init.reply(`ok ${JSON.stringify(ociState(rec, 'created'))}\n`);
      } else if (m.type === 'ready') {
        break; // Sync 3.
      }
    }
    if (opts.pidFile) writeFileAtomic(path.resolve(opts.pidFile), String(rec.pid), 0o644, false);
    ctx.log.info('container created', { id: opts.id, pid: rec.pid });
    return { rec, init };
  } catch (err) {
    init?.close();
    if (init?.child.pid && rec.pid === undefined) {
      try {
        process.kill(init.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    destroy(ctx, rec, { runPoststop: false });
    throw err;
  }
}

export function fifoExists(file: string): boolean {
  return fs.existsSync(file);
}
