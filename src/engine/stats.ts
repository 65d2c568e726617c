// `berth stats`: what a running container uses, read from its cgroups (v1 or v2, found
// through its init's /proc/PID/cgroup) and its network namespace (/proc/PID/net/dev).
// Node host process; reads only.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { isUnifiedHost } from '../cgroups/driver';
import type { ContainerRecord } from './containers';

export interface ContainerStats {
  id: string;
  name: string;
  /** Percent of one CPU (200 = two CPUs busy), over the sampling interval. */
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  memPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

/** A cumulative reading: CPU nanoseconds and when it was taken. */
interface Sample {
  cpuNs: number;
  at: bigint;
}

const read = (f: string): string | undefined => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};
const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s.trim()) || 0);

type Files = (ctl: string, name: string) => string;

/** The container's cgroup files: FILE(controller, name) -> path, for v1 or v2. */
function cgroupFiles(pid: number): Files | undefined {
  const text = read(`/proc/${pid}/cgroup`);
  if (!text) return undefined;
  const lines = text.trim().split('\n').map((l) => l.split(':'));
  if (isUnifiedHost()) {
    const p = lines.find((l) => l[0] === '0')?.[2] ?? '/';
    return (_ctl, name) => `/sys/fs/cgroup${p}/${name}`;
  }
  return (ctl, name) => {
    const l = lines.find((x) => x[1].split(',').includes(ctl));
    return l ? `/sys/fs/cgroup/${l[1]}${l[2]}/${name}` : '/nonexistent';
  };
}

function field(stat: string | undefined, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(stat ?? '');
  return m ? Number(m[1]) : 0;
}

function cpuNs(file: Files): number {
  const v1 = read(file('cpuacct', 'cpuacct.usage'));
  if (v1 !== undefined) return num(v1);
  return field(read(file('cpu', 'cpu.stat')), 'usage_usec') * 1000;
}

function sample(file: Files): Sample {
  return { cpuNs: cpuNs(file), at: process.hrtime.bigint() };
}

/** Everything but CPU, now. */
function snapshot(rec: ContainerRecord, pid: number, file: Files): Omit<ContainerStats, 'cpuPercent'> {
  const v2 = isUnifiedHost();
  // As Docker's: usage without the page cache the kernel can drop (inactive file pages).
  let memUsage: number;
  let memLimit: number;
  if (v2) {
    memUsage = num(read(file('memory', 'memory.current'))) - field(read(file('memory', 'memory.stat')), 'inactive_file');
    const max = read(file('memory', 'memory.max'))?.trim();
    memLimit = max && max !== 'max' ? Number(max) : os.totalmem();
  } else {
    memUsage = num(read(file('memory', 'memory.usage_in_bytes'))) - field(read(file('memory', 'memory.stat')), 'total_inactive_file');
    const limit = num(read(file('memory', 'memory.limit_in_bytes')));
    memLimit = limit > 0 && limit < os.totalmem() ? limit : os.totalmem();
  }
  memUsage = Math.max(0, memUsage);
  let blockRead = 0;
  let blockWrite = 0;
  if (v2) {
    for (const line of (read(file('io', 'io.stat')) ?? '').split('\n')) {
      blockRead += Number(/rbytes=(\d+)/.exec(line)?.[1] ?? 0);
      blockWrite += Number(/wbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
  } else {
    for (const line of (read(file('blkio', 'blkio.throttle.io_service_bytes_recursive')) ?? '').split('\n')) {
      const m = /^\S+ (Read|Write) (\d+)$/.exec(line);
      if (m?.[1] === 'Read') blockRead += Number(m[2]);
      if (m?.[1] === 'Write') blockWrite += Number(m[2]);
    }
  }
  let netRx = 0;
  let netTx = 0;
  // --network host shows the host's counters, as Docker's does not; leave them at 0 there.
  if (rec.networkRequest?.mode !== 'host') {
    for (const line of (read(`/proc/${pid}/net/dev`) ?? '').split('\n').slice(2)) {
      const [ifname, rest] = line.split(':');
      if (!rest || ifname.trim() === 'lo') continue;
      const cols = rest.trim().split(/\s+/).map(Number);
      netRx += cols[0];
      netTx += cols[8];
    }
  }
  return {
    id: rec.id, name: rec.name, memUsage, memLimit, memPercent: memLimit ? (memUsage / memLimit) * 100 : 0,
    netRx, netTx, blockRead, blockWrite, pids: num(read(file('pids', 'pids.current'))),
  };
}

/**
 * Stats of the running containers RECS (record, host pid of its init), CPU measured over
 * INTERVAL ms. A container that ended meanwhile is left out.
 */
export async function containerStats(recs: [ContainerRecord, number][], intervalMs: number): Promise<ContainerStats[]> {
  const files = recs.map(([, pid]) => cgroupFiles(pid));
  const first = files.map((f) => (f ? sample(f) : undefined));
  await new Promise((r) => setTimeout(r, intervalMs));
  const out: ContainerStats[] = [];
  recs.forEach(([rec, pid], i) => {
    const a = first[i];
    const file = files[i];
    // Ended meanwhile: its /proc entry (and so its cgroup) is gone.
    if (!a || !file || !fs.existsSync(`/proc/${pid}`)) return;
    const b = sample(file);
    const snap = snapshot(rec, pid, file);
    const cpuPercent = Number(b.at - a.at) > 0 ? Math.max(0, ((b.cpuNs - a.cpuNs) / Number(b.at - a.at)) * 100) : 0;
    out.push({ ...snap, cpuPercent });
  });
  return out;
}
