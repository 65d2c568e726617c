// Shared by the integration tests: a private --root, a private cgroup parent and busybox
// bundles per test file, and cleanup of everything they made.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const TOP = process.env.BERTH_TOP ?? path.resolve(__dirname, '..', '..');
export const RUNTIME = path.join(TOP, 'bin', 'berth-runtime');
export const BERTH = path.join(TOP, 'bin', 'berth');
const TEMPLATE = path.join(TOP, 'build', 'busybox-bundle');

/** Why a test cannot run here, or undefined (runc's `requires`). */
export function requires(...what: ('root' | 'podman' | 'runc' | 'python3' | 'docker-registry' | 'skopeo' | 'umoci')[]): string | undefined {
  for (const w of what) {
    if (w === 'root' && process.getuid?.() !== 0) return 'needs root';
    if (w !== 'root' && spawnSync('sh', ['-c', `command -v ${w}`]).status !== 0) return `needs ${w}`;
  }
  return undefined;
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class TestEnv {
  readonly dir: string;
  readonly root: string;
  readonly cgParent: string;

  constructor(name: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-test-${name}-`));
    this.root = path.join(this.dir, 'state');
    this.cgParent = `/berth-test-${name}-${process.pid}`;
  }

  /** A bundle NAME with a writable copy of the busybox rootfs; EDIT changes config.json. */
  bundle(name: string, edit?: (c: any) => void): string {
    const b = path.join(this.dir, name);
    fs.mkdirSync(b);
    const r = spawnSync('cp', ['-a', path.join(TEMPLATE, 'rootfs'), path.join(b, 'rootfs')]);
    if (r.status !== 0) throw new Error(`copy rootfs: ${r.stderr}`);
    const c = JSON.parse(fs.readFileSync(path.join(TEMPLATE, 'config.json'), 'utf8'));
    c.root.readonly = false;
    c.linux.cgroupsPath = `${this.cgParent}/${name}`;
    edit?.(c);
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(c, null, 2));
    return b;
  }

  /** Runs berth-runtime. Output goes through files, not pipes: a detached container keeps
   * the stdio it inherited, and a pipe would make this wait for the container to exit. */
  rt(args: string[], opts: { timeout?: number } = {}): Result {
    const out = path.join(this.dir, `.out-${process.hrtime.bigint()}`);
    const err = out + '.err';
    const fo = fs.openSync(out, 'w');
    const fe = fs.openSync(err, 'w');
    try {
      const r = spawnSync(RUNTIME, ['--root', this.root, ...args], {
        stdio: ['ignore', fo, fe], timeout: opts.timeout ?? 60_000,
      });
      return { status: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(fo);
      fs.closeSync(fe);
      fs.rmSync(out, { force: true });
      fs.rmSync(err, { force: true });
    }
  }

  rtAsync(args: string[]): ReturnType<typeof spawn> {
    return spawn(RUNTIME, ['--root', this.root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Container cgroups of this env that still exist, in any hierarchy. */
  leftoverCgroups(): string[] {
    const parents = [path.join('/sys/fs/cgroup', this.cgParent),
      ...fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h, this.cgParent))];
    const out: string[] = [];
    for (const p of parents) {
      if (!fs.existsSync(p)) continue;
      for (const n of fs.readdirSync(p)) if (fs.statSync(path.join(p, n)).isDirectory()) out.push(path.join(p, n));
    }
    return out;
  }

  leftoverMounts(): string[] {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(this.dir));
  }

  /**
   * Cleans up, then fails if a container cgroup or a mount was left behind. With
   * DELETECONTAINERS false, containers still recorded count as left behind too.
   */
  cleanupAndCheck(deleteContainers = true): void {
    if (deleteContainers) for (const id of fs.existsSync(this.root) ? fs.readdirSync(this.root) : []) this.rt(['delete', '--force', id]);
    const cgroups = this.leftoverCgroups();
    const mounts = this.leftoverMounts();
    this.cleanup();
    if (cgroups.length || mounts.length) {
      throw new Error(`left behind: cgroups ${JSON.stringify(cgroups)}, mounts ${JSON.stringify(mounts)}`);
    }
  }

  /** Fails if the runtime state of container ID still exists. */
  assertNoState(id: string): void {
    if (fs.existsSync(path.join(this.root, id))) throw new Error(`state of "${id}" was left behind`);
  }

  cleanup(): void {
    for (const id of fs.existsSync(this.root) ? fs.readdirSync(this.root) : []) this.rt(['delete', '--force', id]);
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      for (const d of [path.join('/sys/fs/cgroup', h, this.cgParent), path.join('/sys/fs/cgroup', this.cgParent)]) {
        try {
          fs.rmdirSync(d);
        } catch {
          // absent, or not a cgroup mount
        }
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `berth --root ROOT ARGS` to the end; stdin is INPUT (default: empty). */
export function berthSync(root: string, args: string[], opts: { input?: string; timeout?: number } = {}): Result {
  const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', timeout: opts.timeout ?? 60_000, input: opts.input ?? '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like berthSync, without blocking this process (for commands run side by side). */
export function berthAsync(root: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const c = spawn(BERTH, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A temp dir NAME with a private engine root holding the embedded busybox image. */
export function engineRoot(name: string): { dir: string; root: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-test-${name}-`));
  const root = path.join(dir, 'root');
  const r = spawnSync('bash', [path.join(TOP, 'scripts', 'make-busybox-image.sh'), root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make-busybox-image.sh: ${r.stderr}`);
  return { dir, root };
}

/** Host processes (not zombies) whose command line mentions TEXT. */
export function processesWith(text: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (/\) [ZX] /.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(pred: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(20);
  }
  return pred();
}

/**
 * The end of a test file with an engine root (engineRoot): removes every container left
 * in ROOT (rm -f), waits for their processes, removes DIR, then fails if a mount under DIR
 * or a process naming ROOT was still there.
 */
export async function removeEngineRoot(dir: string, root: string): Promise<void> {
  const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
  if (ids.length) berthSync(root, ['rm', '-f', ...ids]);
  await waitFor(() => processesWith(root).length === 0, 10_000);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
  const procs = processesWith(root);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(mounts, []);
  assert.deepEqual(procs, []);
}
