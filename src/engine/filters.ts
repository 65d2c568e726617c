// `berth ps --filter KEY=VALUE`: which containers a filter keeps, as Docker's: filters with
// different keys must all match, values of one key are alternatives. Called by cli/.
import { BerthError } from '../common/errors';
import type { ContainerRecord } from './containers';

const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/** "label=K", "label=K=V", "status=S", "name=N" (a substring, as Docker's), "id=PREFIX". */
export interface ContainerFilter {
  byKey: Map<string, string[]>;
}

/** @throws BerthError USAGE for an unknown key or status */
export function parseFilters(flags: string[]): ContainerFilter {
  const byKey = new Map<string, string[]>();
  for (const f of flags) {
    const i = f.indexOf('=');
    const key = i < 0 ? f : f.slice(0, i);
    const value = i < 0 ? '' : f.slice(i + 1);
    if (!['label', 'status', 'name', 'id'].includes(key) || !value) {
      throw new BerthError('USAGE', `--filter "${f}" is not a filter`, { hint: 'use label=KEY[=VALUE], status=STATUS, name=NAME or id=ID' });
    }
    if (key === 'status' && !STATUSES.includes(value)) {
      throw new BerthError('USAGE', `--filter "${f}": status is one of ${STATUSES.join(', ')}`);
    }
    byKey.set(key, [...(byKey.get(key) ?? []), value]);
  }
  return { byKey };
}

function matchOne(c: ContainerRecord, key: string, value: string): boolean {
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
    const ok = key === 'label' ? values.every((v) => matchOne(c, key, v)) : values.some((v) => matchOne(c, key, v));
    if (!ok) return false;
  }
  return true;
}
