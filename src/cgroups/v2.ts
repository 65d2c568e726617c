// cgroup v2 (unified): one directory; controllers enabled in each ancestor's
// cgroup.subtree_control. Resource values are converted from the spec's v1-style units.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import type { Resources } from '../runtime/spec';
import { CGROUP_ROOT, Cgroup, CgroupRecord, readPids, removeDir, writeControl } from './driver';

export class V2Cgroup implements Cgroup {
  constructor(readonly record: CgroupRecord) {}

  static create(cgPath: string): V2Cgroup {
    const dir = path.join(CGROUP_ROOT, cgPath);
    let cur = CGROUP_ROOT;
    try {
      const available = fs.readFileSync(path.join(CGROUP_ROOT, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
      const wanted = ['cpu', 'cpuset', 'memory', 'pids', 'io'].filter((c) => available.includes(c));
      for (const part of cgPath.split('/').filter(Boolean)) {
        const enable = wanted.map((c) => `+${c}`).join(' ');
        try {
          if (enable) fs.writeFileSync(path.join(cur, 'cgroup.subtree_control'), enable);
        } catch {
          // A cgroup with processes of its own cannot delegate ("no internal processes").
        }
        cur = path.join(cur, part);
        fs.mkdirSync(cur, { recursive: true });
      }
    } catch (err) {
      throw new BerthError('CGROUP_CREATE', `create cgroup ${dir}: ${(err as Error).message}`, { cause: err, context: { path: dir } });
    }
    return new V2Cgroup({ version: 2, path: cgPath, dirs: [dir] });
  }

  private get dir(): string {
    return this.record.dirs[0];
  }

  procsFiles(): string[] {
    return [path.join(this.dir, 'cgroup.procs')];
  }

  apply(res: Resources | undefined): void {
    if (!res) return;
    const d = this.dir;
    const m = res.memory;
    if (m?.limit !== undefined) writeControl(d, 'memory.max', m.limit > 0 ? m.limit : 'max');
    if (m?.reservation !== undefined) writeControl(d, 'memory.low', m.reservation);
    if (m?.swap !== undefined && m.limit !== undefined && fs.existsSync(path.join(d, 'memory.swap.max'))) {
      writeControl(d, 'memory.swap.max', m.swap < 0 ? 'max' : Math.max(0, m.swap - m.limit));
    }
    if (res.pids) writeControl(d, 'pids.max', res.pids.limit > 0 ? res.pids.limit : 'max');
    const c = res.cpu;
    if (c?.shares) {
      // The conversion the OCI runtimes share: shares 2..262144 onto weight 1..10000.
      writeControl(d, 'cpu.weight', Math.round(1 + ((c.shares - 2) * 9999) / 262142));
    }
    if (c && (c.quota !== undefined || c.period !== undefined)) {
      const quota = c.quota !== undefined && c.quota > 0 ? String(c.quota) : 'max';
      writeControl(d, 'cpu.max', `${quota} ${c.period ?? 100000}`);
    }
    if (c?.cpus) writeControl(d, 'cpuset.cpus', c.cpus);
    if (c?.mems) writeControl(d, 'cpuset.mems', c.mems);
    for (const [k, v] of Object.entries(res.unified ?? {})) {
      if (k.includes('/') || k.startsWith('.')) {
        throw new BerthError('CONFIG_SCHEMA', `linux.resources.unified key "${k}" is not a cgroup file name`);
      }
      writeControl(d, k, v);
    }
  }

  pids(): number[] {
    return readPids(path.join(this.dir, 'cgroup.procs'));
  }

  freeze(frozen: boolean): void {
    writeControl(this.dir, 'cgroup.freeze', frozen ? 1 : 0);
    for (let i = 0; i < 200; i++) {
      if (this.isFrozen() === frozen) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }

  isFrozen(): boolean {
    try {
      return /frozen 1/.test(fs.readFileSync(path.join(this.dir, 'cgroup.events'), 'utf8'));
    } catch {
      return false;
    }
  }

  remove(): void {
    removeDir(this.dir);
  }

  mountSources(): [string, string][] {
    return [['', this.dir]];
  }

  oomKilled(): boolean {
    try {
      return /oom_kill [1-9]/.test(fs.readFileSync(path.join(this.dir, 'memory.events'), 'utf8'));
    } catch {
      return false;
    }
  }
}
