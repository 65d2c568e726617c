// Hooks that run in the runtime's namespaces, from the Node host process: prestart and
// createRuntime (sync 2 of create), poststart (after start) and poststop (at delete).
// createContainer and startContainer run from the container's child (native/init/hooks.c).
import { BerthError } from '../common/errors';
import type { Hook } from './spec';

/**
 * Runs HOOKS in order with STATE on stdin; the first failure stops the rest.
 * @throws BerthError HOOK_FAILED
 */
export function runHooks(kind: string, hooks: Hook[] | undefined, state: Record<string, unknown>): void {
  for (const h of hooks ?? []) {
    const [argv0, ...args] = h.args?.length ? h.args : [h.path];
    const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
    const r = spawnSync(h.path, args, {
      argv0, input: JSON.stringify(state), env: Object.fromEntries((h.env ?? []).map((e) => {
        const i = e.indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      })), timeout: h.timeout ? h.timeout * 1000 : undefined, stdio: ['pipe', 'inherit', 'pipe'],
    });
    // A hook need not read the state: one that exits first makes the write fail with EPIPE,
    // which says nothing about the hook; its exit status does.
    const error = (r.error as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && (r.status !== null || r.signal) ? undefined : r.error;
    if (error || r.status !== 0) {
      const why = error ? error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
      const stderr = r.stderr?.toString().trim();
      throw new BerthError('HOOK_FAILED', `${kind} hook ${h.path} failed: ${why}${stderr ? `: ${stderr}` : ''}`, {
        cause: error, context: { path: h.path, stage: kind },
      });
    }
  }
}
