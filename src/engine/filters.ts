// `berth ps --filter KEY=VALUE`: which containers a filter keeps, as Docker's: filters with
// different keys must all match, values of one key are alternatives. Called by cli/.
import { BerthError } from '../common/errors';
import type { ContainerRecord } from './containers';

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/**
 * "label=K", "label=K=V", "status=S", "name=N" (a substring, as Docker's), "id=PREFIX",
 * "exited=CODE", and, once the caller resolved them (resolveFilters), "ancestor=IMAGE",
 * "before=CONTAINER" and "since=CONTAINER".
 */
export interface ContainerFilter {
  byKey: Map<string, string[]>;
  /** ancestor: the image ids the values name; before/since: those containers' creation times. */
  resolved?: { ancestors: Set<string>; before?: string; since?: string };
}

const KEYS = ['label', 'status', 'name', 'id', 'exited', 'ancestor', 'before', 'since'];

/** @throws BerthError USAGE for an unknown key or status */
export function parseFilters(flags: string[]): ContainerFilter {
  const byKey = new Map<string, string[]>();
  for (const f of flags) {
    const i = f.indexOf('=');
    const key = i < 0 ? f : f.slice(0, i);
    const value = i < 0 ? '' : f.slice(i + 1);
    if (!KEYS.includes(key) || !value) {
      throw new BerthError('USAGE', `--filter "${f}" is not a filter`, {
        hint: 'use label=KEY[=VALUE], status=STATUS, name=NAME, id=ID, exited=CODE, ancestor=IMAGE, before=CONTAINER or since=CONTAINER',
      });
    }
    if (key === 'exited' && !/^\d+$/.test(value)) throw new BerthError('USAGE', `--filter "${f}": exited takes an exit code`);
    if (key === 'status' && !STATUSES.includes(value)) {
      throw new BerthError('USAGE', `--filter "${f}": status is one of ${STATUSES.join(', ')}`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return { byKey };
}

/**
 * Resolves FILTER's ancestor, before and since values with the caller's lookups: IMAGEID
 * (undefined for an unknown image, which matches nothing) and CREATED (a container's
 * creation time; throws for an unknown one, as Docker's).
 */
export function resolveFilters(filter: ContainerFilter, imageId: (ref: string) => string | undefined,
  created: (ref: string) => string): ContainerFilter {
  const ancestors = new Set((filter.byKey.get('ancestor') ?? []).map(imageId).filter((x): x is string => !!x));
  const before = filter.byKey.get('before')?.map(created).sort()[0];
  const since = filter.byKey.get('since')?.map(created).sort().reverse()[0];
  return { ...filter, resolved: { ancestors, before, since } };
}

function matchOne(c: ContainerRecord, key: string, value: string, r: ContainerFilter['resolved']): boolean {
  if (key === 'exited') return c.state.status === 'exited' && c.state.exitCode === Number(value);
  if (key === 'ancestor') return !!r?.ancestors.has(c.imageId) || c.image === value;
  if (key === 'before') return r?.before !== undefined && c.created < r.before;
  if (key === 'since') return r?.since !== undefined && c.created > r.since;
  if (key === 'status') return (c.state.paused ? 'paused' : c.state.status) === value;
  if (key === 'name') return c.name.includes(value);
  if (key === 'id') return c.id.startsWith(value);
  const labels = c.config?.labels ?? {};
  const i = value.indexOf('=');
  return i < 0 ? value in labels : labels[value.slice(0, i)] === value.slice(i + 1);
}

/** True when C passes every key of FILTER. Labels must all match; other keys any value. */
export function matchesFilter(c: ContainerRecord, filter: ContainerFilter): boolean {
  for (const [key, values] of filter.byKey) {
    const ok = key === 'label' ? values.every((v) => matchOne(c, key, v, filter.resolved)) : values.some((v) => matchOne(c, key, v, filter.resolved));
    if (!ok) return false;
  }
  return true;
}
