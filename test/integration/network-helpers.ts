// Shared by the network-*.test.ts files: a loopback HTTP server, free loopback ports, a
// container's recorded network (helper pids, namespace file), and what a removed
// container's network could have left behind. Traffic stays on 127.0.0.1.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { berthSync } from '../helpers';

/** A free TCP port on 127.0.0.1 (bound to 0, then released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** An HTTP server on 127.0.0.1 answering BODY; close() when done. */
export async function loopbackServer(body: string): Promise<{ port: number; close(): Promise<void> }> {
  const srv = http.createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

/** GET http://127.0.0.1:PORT/PATH -> its body (rejects on a connection error). */
export function httpGet(port: number, p = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 5000 }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The container record's network (container.json), or undefined. */
export function recordedNetwork(root: string, id: string): any {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'containers', id, 'container.json'), 'utf8')).network;
  } catch {
    return undefined;
  }
}

/** True while PID is a live (not zombie) process. */
export function isAlive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Mount lines under ROOT (overlays, namespace files). */
export function mountsUnder(root: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root));
}

/**
 * What container ID's network could have left after its removal: its helper processes
 * (PIDS, recorded while it ran), mounts naming it, its directory.
 */
export function networkLeftovers(root: string, id: string, pids: number[]): string[] {
  const out: string[] = [];
  for (const p of pids) if (isAlive(p)) out.push(`process ${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
  for (const l of mountsUnder(id)) out.push(`mount: ${l}`);
  if (fs.existsSync(path.join(root, 'containers', id))) out.push(`dir: ${fs.readdirSync(path.join(root, 'containers', id)).join(' ')}`);
  return out;
}

export const linkExists = (dev: string): boolean => fs.existsSync(path.join('/sys/class/net', dev));
export const tableExists = (t: string): boolean => spawnSync('nft', ['list', 'table', 'ip', t]).status === 0;

/** The network.json of each network in ROOT (unreadable ones left out). */
export function networkRecords(root: string): any[] {
  const d = path.join(root, 'networks');
  return (fs.existsSync(d) ? fs.readdirSync(d) : []).flatMap((n) => {
    try {
      return [JSON.parse(fs.readFileSync(path.join(d, n, 'network.json'), 'utf8'))];
    } catch {
      return [];
    }
  });
}

/**
 * The end of a bridge test: removes ROOT's containers (rm -f) and networks (network rm),
 * then by hand any bridge or nftables table the CLI left, and returns those: a test that
 * left one failed to clean up.
 */
export function removeContainersAndNetworks(root: string): string[] {
  const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
  if (ids.length) berthSync(root, ['rm', '-f', ...ids]);
  const nets = networkRecords(root);
  for (const n of nets) berthSync(root, ['network', 'rm', n.name]);
  const left: string[] = [];
  for (const n of nets) {
    if (linkExists(n.bridge)) {
      left.push(n.bridge);
      spawnSync('ip', ['link', 'del', n.bridge]);
    }
    if (tableExists(n.table)) {
      left.push(n.table);
      spawnSync('nft', ['delete', 'table', 'ip', n.table]);
    }
  }
  return left;
}
