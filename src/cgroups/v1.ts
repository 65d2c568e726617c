// cgroup v1: one directory per mounted hierarchy (memory, pids, cpu, freezer, ...). On a
// hybrid host the cgroup2 mount at /sys/fs/cgroup/unified is joined too, as runc does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import type { DeviceRule, Resources } from '../runtime/spec';
import { CGROUP_ROOT, Cgroup, CgroupRecord, readPids, removeDir, writeControl } from './driver';

/** Mount points of cgroup hierarchies, from /proc/self/mountinfo. */
export function hierarchies(): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 0) continue;
    const fstype = parts[sep + 1];
    if ((fstype === 'cgroup' || fstype === 'cgroup2') && parts[4].startsWith(CGROUP_ROOT + '/')) out.push(parts[4]);
  }
  return out;
}

function deviceRule(r: DeviceRule): string {
  const num = (n: number | undefined) => (n === undefined || n < 0 ? '*' : String(n));
  return `${r.type ?? 'a'} ${num(r.major)}:${num(r.minor)} ${r.access ?? 'rwm'}`;
}

const DEFAULT_ALLOWED = [
  'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm',
  'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm',
];

export class V1Cgroup implements Cgroup {
  constructor(readonly record: CgroupRecord) {}

  static create(cgPath: string): V1Cgroup {
    const dirs: string[] = [];
    for (const mount of hierarchies()) {
      const dir = path.join(mount, cgPath);
      try {
        if (path.basename(mount).includes('cpuset')) mkdirCpuset(mount, cgPath);
        else fs.mkdirSync(dir, { recursive: true });
      } catch (err) {
        throw new BerthError('CGROUP_CREATE', `create cgroup ${dir}: ${(err as Error).message}`, { cause: err, context: { path: dir } });
      }
      dirs.push(dir);
    }
    return new V1Cgroup({ version: 1, path: cgPath, dirs });
  }

  private dir(controller: string): string | undefined {
    return this.record.dirs.find((d) => path.basename(d.slice(0, d.length - this.record.path.length))
      .split(',').includes(controller));
  }

  procsFiles(): string[] {
    return this.record.dirs.map((d) => path.join(d, 'cgroup.procs'));
  }

  apply(res: Resources | undefined): void {
    if (!res) return;
    const mem = this.dir('memory');
    if (res.memory && mem) {
      const m = res.memory;
      // The kernel refuses a memory limit above memsw, so order the two writes.
      if (m.limit !== undefined) {
        const hasSwap = fs.existsSync(path.join(mem, 'memory.memsw.limit_in_bytes'));
        if (m.swap !== undefined && hasSwap) {
          writeControl(mem, 'memory.memsw.limit_in_bytes', -1);
        }
        writeControl(mem, 'memory.limit_in_bytes', m.limit);
        if (m.swap !== undefined && hasSwap) writeControl(mem, 'memory.memsw.limit_in_bytes', m.swap);
      }
      if (m.reservation !== undefined) writeControl(mem, 'memory.soft_limit_in_bytes', m.reservation);
      if (m.swappiness !== undefined && m.swappiness <= 100) writeControl(mem, 'memory.swappiness', m.swappiness);
      if (m.disableOOMKiller) writeControl(mem, 'memory.oom_control', 1);
    }
    const pids = this.dir('pids');
    if (res.pids && pids) writeControl(pids, 'pids.max', res.pids.limit > 0 ? res.pids.limit : 'max');
    const cpu = this.dir('cpu');
    if (res.cpu && cpu) {
      const c = res.cpu;
      if (c.shares) writeControl(cpu, 'cpu.shares', c.shares);
      if (c.period) writeControl(cpu, 'cpu.cfs_period_us', c.period);
      if (c.quota !== undefined && c.quota !== 0) writeControl(cpu, 'cpu.cfs_quota_us', c.quota);
    }
    const cpuset = this.dir('cpuset');
    if (res.cpu && cpuset) {
      if (res.cpu.cpus) writeControl(cpuset, 'cpuset.cpus', res.cpu.cpus);
      if (res.cpu.mems) writeControl(cpuset, 'cpuset.mems', res.cpu.mems);
    }
    const devices = this.dir('devices');
    if (res.devices?.length && devices) {
      for (const r of res.devices) writeControl(devices, r.allow ? 'devices.allow' : 'devices.deny', deviceRule(r));
      // The devices every container gets (the runtime creates them in /dev), as runc does.
      for (const r of DEFAULT_ALLOWED) writeControl(devices, 'devices.allow', r);
    }
    if (res.unified && Object.keys(res.unified).length) {
      throw new BerthError('CONFIG_UNSUPPORTED', 'config.json field linux.resources.unified needs a cgroup v2 host', {
        context: { field: 'linux.resources.unified' },
      });
    }
  }

  pids(): number[] {
    const d = this.dir('pids') ?? this.dir('freezer') ?? this.record.dirs[0];
    return d ? readPids(path.join(d, 'cgroup.procs')) : [];
  }

  freeze(frozen: boolean): void {
    const d = this.dir('freezer');
    if (!d) throw new BerthError('CGROUP_CONTROLLER_MISSING', 'the freezer cgroup controller is not mounted');
    writeControl(d, 'freezer.state', frozen ? 'FROZEN' : 'THAWED');
    for (let i = 0; i < 200; i++) {
      const s = fs.readFileSync(path.join(d, 'freezer.state'), 'utf8').trim();
      if (s === (frozen ? 'FROZEN' : 'THAWED')) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }

  isFrozen(): boolean {
    const d = this.dir('freezer');
    try {
      return !!d && fs.readFileSync(path.join(d, 'freezer.state'), 'utf8').trim() === 'FROZEN';
    } catch {
      return false;
    }
  }

  remove(): void {
    for (const d of this.record.dirs) removeDir(d);
  }

  mountSources(): [string, string][] {
    return this.record.dirs.map((d) => [path.basename(d.slice(0, d.length - this.record.path.length)), d]);
  }

  oomKilled(): boolean {
    const mem = this.dir('memory');
    try {
      return !!mem && /oom_kill [1-9]/.test(fs.readFileSync(path.join(mem, 'memory.oom_control'), 'utf8'));
    } catch {
      return false;
    }
  }
}

/** cpuset v1 refuses tasks until cpuset.cpus and cpuset.mems are set: copy the parent's. */
function mkdirCpuset(mount: string, cgPath: string): void {
  let cur = mount;
  for (const part of cgPath.split('/').filter(Boolean)) {
    const next = path.join(cur, part);
    if (!fs.existsSync(next)) {
      fs.mkdirSync(next);
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const v = fs.readFileSync(path.join(cur, f), 'utf8').trim();
        if (v) fs.writeFileSync(path.join(next, f), v);
      }
    }
    cur = next;
  }
}
