// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 and
// a free port, and images built with umoci and pushed with skopeo. Only loopback is used.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { sleep } from './helpers';

export interface Registry {
  host: string;
  storage: string;
  proc: ChildProcess;
}

export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRegistry(dir: string, name: string, extra = ''): Promise<Registry> {
  const port = await freePort();
  const storage = path.join(dir, `${name}-storage`);
  const config = path.join(dir, `${name}.yml`);
  fs.writeFileSync(config, [
    'version: 0.1',
    'log:', '  level: error', '  accesslog:', '    disabled: true',
    'storage:', '  filesystem:', `    rootdirectory: ${storage}`,
    'http:', `  addr: 127.0.0.1:${port}`,
    extra,
  ].join('\n') + '\n');
  const logFd = fs.openSync(path.join(dir, `${name}.log`), 'w');
  const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) break;
    try {
      await fetch(`http://${host}/v2/`);
      return { host, storage, proc };
    } catch {
      await sleep(50);
    }
  }
  proc.kill('SIGKILL');
  throw new Error(`docker-registry did not answer on ${host}: ${fs.readFileSync(path.join(dir, `${name}.log`), 'utf8')}`);
}

export async function stopRegistry(r: Registry | undefined): Promise<void> {
  if (!r || r.proc.exitCode !== null || r.proc.pid === undefined) return;
  const exited = new Promise((res) => r.proc.once('exit', res));
  process.kill(r.proc.pid, 'SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (r.proc.exitCode === null && r.proc.signalCode === null) process.kill(r.proc.pid, 'SIGKILL');
}

/** Builds LAYOUT:TAG with one layer per file, and the given architecture. */
export function buildImage(layout: string, tag: string, files: Record<string, string | Buffer>, arch?: string): void {
  if (!fs.existsSync(layout)) run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:${tag}`]);
  const src = fs.mkdtempSync(path.join(path.dirname(layout), 'src-'));
  for (const [name, content] of Object.entries(files)) {
    fs.writeFileSync(path.join(src, name), content);
    run('umoci', ['insert', '--image', `${layout}:${tag}`, path.join(src, name), `/${name}`]);
  }
  if (arch) run('umoci', ['config', '--image', `${layout}:${tag}`, '--architecture', arch]);
}

export function push(layout: string, tag: string, dest: string, extra: string[] = []): void {
  run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', ...extra, `oci:${layout}:${tag}`, `docker://${dest}`]);
}

