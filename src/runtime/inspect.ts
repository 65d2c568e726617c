// Read-only verbs: state, list, ps; and pause/resume through the cgroup freezer.
import { BerthError } from '../common/errors';
import { openCgroup } from '../cgroups/driver';
import type { RuntimeContext } from './context';
import { ociState, statusOf } from './state';

export function state(ctx: RuntimeContext, id: string): Record<string, unknown> {
  const rec = ctx.state.read(id);
  return ociState(rec, statusOf(ctx.state, rec));
}

export function list(ctx: RuntimeContext): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const id of ctx.state.list()) {
    try {
      const rec = ctx.state.read(id);
      const s = ociState(rec, statusOf(ctx.state, rec));
      out.push({ id, pid: s.pid, status: s.status, bundle: rec.bundle, created: rec.created, owner: rec.owner, annotations: rec.annotations });
    } catch {
      out.push({ id, pid: 0, status: 'unknown', bundle: '', created: '', owner: '' });
    }
  }
  return out;
}

export function pids(ctx: RuntimeContext, id: string): number[] {
  const rec = ctx.state.read(id);
  return openCgroup(rec.cgroup).pids();
}

/** `ps` as runc does it: the host's ps(1) output, keeping the header and our pids' rows. */
export function psTable(ctx: RuntimeContext, id: string, psArgs: string[]): string {
  const mine = new Set(pids(ctx, id));
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new BerthError('PS_FAILED', `ps ${psArgs.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  }
  const lines = r.stdout.split('\n');
  const header = lines[0];
  const col = header.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new BerthError('PS_FAILED', 'ps output has no PID column', { hint: 'keep the PID column in the ps options' });
  return [header, ...lines.slice(1).filter((l) => l.trim() && mine.has(Number(l.trim().split(/\s+/)[col])))].join('\n') + '\n';
}

/** @throws BerthError CONTAINER_NOT_RUNNING, CGROUP_CONTROLLER_MISSING */
export function setPaused(ctx: RuntimeContext, id: string, paused: boolean): void {
  const rec = ctx.state.read(id);
  const status = statusOf(ctx.state, rec);
  const want = paused ? 'running' : 'paused';
  if (status !== want) {
    throw new BerthError(paused ? 'CONTAINER_NOT_RUNNING' : 'CONTAINER_NOT_PAUSED',
      `cannot ${paused ? 'pause' : 'resume'} container "${id}": it is ${status}`, { context: { containerId: id } });
  }
  openCgroup(rec.cgroup).freeze(paused);
}
