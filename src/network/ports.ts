// Published ports, shared by every driver: `-p`/`--publish` and `-P`/`--publish-all` parsed
// into PortMapping[] (network/types.ts), the conflict check against other containers'
// records, free-port picking for `-p 80` (hostPort 0), and `berth port`'s lines. Called by
// network/index.ts while the engine prepares a container. Node host process.
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { BerthError } from '../common/errors';
import type { PortMapping } from './types';

const PUBLISH_HINT = 'use -p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp], -p IP::CONTAINERPORT or -p CONTAINERPORT; ports are 1-65535';

/** "8080" or "8080-8090" -> [first, last]; null when it is not a port or range. */
function portRange(s: string, allowZero: boolean): [number, number] | null {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) return null;
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a;
  const min = allowZero && m[2] === undefined ? 0 : 1;
  if (a < min || b < a || b > 65535) return null;
  return [a, b];
}

/** The host address of a -p: "127.0.0.1", "[::1]" (brackets dropped) or "" (all). */
function hostAddress(s: string, spec: string): string {
  const v = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  if (v !== '' && net.isIP(v) === 0) {
    throw new BerthError('NETWORK_PORT_INVALID', `-p "${spec}": "${s}" is not an IP address`, { hint: PUBLISH_HINT });
  }
  return v;
}

/**
 * One -p value -> its mappings (a range gives one per port). An empty host address means
 * every IPv4 address, "0.0.0.0", as Docker's; hostPort 0 means a free port chosen at setup.
 * @throws BerthError NETWORK_PORT_INVALID
 */
export function parsePublish(spec: string): PortMapping[] {
  const bad = (why: string) => new BerthError('NETWORK_PORT_INVALID', `-p "${spec}": ${why}`, { hint: PUBLISH_HINT });
  let rest = spec;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw bad(`protocol "${p}" is not tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  // The host address may be an IPv6 one in brackets: split off the last two fields.
  let ip = '';
  let hostPart = '';
  let ctrPart: string;
  const last = rest.lastIndexOf(':');
  if (last < 0) ctrPart = rest;
  else {
    ctrPart = rest.slice(last + 1);
    const head = rest.slice(0, last);
    const mid = head.lastIndexOf(':');
    if (mid < 0 || (head.startsWith('[') && head.endsWith(']'))) hostPart = head;
    else {
      ip = hostAddress(head.slice(0, mid), spec);
      hostPart = head.slice(mid + 1);
    }
    if (head.startsWith('[') && head.endsWith(']')) throw bad('a host address needs a host port field after it (IP::PORT)');
  }
  const ctr = portRange(ctrPart, false);
  if (!ctr) throw bad(`container port "${ctrPart}" is not a port (1-65535) or a range`);
  let host: [number, number] = [0, 0];
  if (hostPart !== '') {
    const h = portRange(hostPart, true);
    if (!h) throw bad(`host port "${hostPart}" is not a port (1-65535) or a range`);
    host = h;
  }
  const n = ctr[1] - ctr[0] + 1;
  if (hostPart !== '' && host[1] - host[0] + 1 !== n && !(host[0] === 0 && n === 1)) {
    throw bad('the host and container port ranges differ in length');
  }
  const out: PortMapping[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ hostIp: ip || '0.0.0.0', hostPort: host[0] === 0 ? 0 : host[0] + i, containerPort: ctr[0] + i, protocol });
  }
  return out;
}

/**
 * --expose PORT[-PORT][/tcp|udp] flags -> ExposedPorts keys ("80/tcp"), which -P publishes
 * with the image's own.
 * @throws BerthError NETWORK_PORT_INVALID
 */
export function parseExpose(flags: string[]): Record<string, object> {
  const out: Record<string, object> = {};
  for (const f of flags) {
    const [p, proto = 'tcp', extra] = f.toLowerCase().split('/');
    const r = portRange(p, false);
    if (!r || extra !== undefined || (proto !== 'tcp' && proto !== 'udp')) {
      throw new BerthError('NETWORK_PORT_INVALID', `--expose "${f}" is not a port`, { hint: 'give PORT, PORT/udp or FIRST-LAST: --expose 8080, --expose 5000-5002/udp' });
    }
    for (let port = r[0]; port <= r[1]; port++) out[`${port}/${proto}`] = {};
  }
  return out;
}

/** The image's ExposedPorts ({"80/tcp": {}}) -> container ports for -P. */
export function exposedPorts(exposed: Record<string, unknown> | undefined | null): { port: number; protocol: 'tcp' | 'udp' }[] {
  const out: { port: number; protocol: 'tcp' | 'udp' }[] = [];
  for (const key of Object.keys(exposed ?? {})) {
    const [p, proto = 'tcp'] = key.split('/');
    const r = portRange(p, false);
    if (!r || (proto !== 'tcp' && proto !== 'udp')) continue; // an image's odd entry is not the user's error
    for (let port = r[0]; port <= r[1]; port++) out.push({ port, protocol: proto });
  }
  return out;
}

const key = (m: PortMapping): string => `${m.hostIp}:${m.hostPort}/${m.protocol}`;

/** Whether two host bindings collide: same port and protocol, and one address is a wildcard or both are equal. */
export function overlaps(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol || a.hostPort !== b.hostPort || a.hostPort === 0) return false;
  const wild = (ip: string) => ip === '0.0.0.0' || ip === '::' || ip === '';
  return a.hostIp === b.hostIp || wild(a.hostIp) || wild(b.hostIp);
}

/**
 * All of a container's -p values plus, with -P, every exposed port on a free host port.
 * @throws BerthError NETWORK_PORT_INVALID (also for two -p claiming one host port)
 */
export function parsePorts(publish: string[], publishAll: boolean, exposed?: Record<string, unknown> | null): PortMapping[] {
  const out = publish.flatMap(parsePublish);
  if (publishAll) {
    for (const e of exposedPorts(exposed)) {
      if (!out.some((m) => m.containerPort === e.port && m.protocol === e.protocol)) {
        out.push({ hostIp: '0.0.0.0', hostPort: 0, containerPort: e.port, protocol: e.protocol });
      }
    }
  }
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < i; j++) {
      if (overlaps(out[i], out[j])) {
        throw new BerthError('NETWORK_PORT_INVALID', `host port ${key(out[i])} is published twice`, { hint: 'give each -p its own host port' });
      }
    }
  }
  return out;
}

/**
 * A free host port for M (bind to port 0 and let the kernel choose, then release it). The
 * helper binds it a moment later; a race with another program is reported by the helper
 * as NETWORK_PORT_IN_USE.
 * @throws BerthError NETWORK_PORT_IN_USE when nothing can be bound on M's address
 */
export async function pickFreePort(m: PortMapping): Promise<number> {
  try {
    if (m.protocol === 'udp') {
      const s = dgram.createSocket(net.isIPv6(m.hostIp) ? 'udp6' : 'udp4');
      await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(0, m.hostIp, () => res()); });
      const port = s.address().port;
      s.close();
      return port;
    }
    const srv = net.createServer();
    await new Promise<void>((res, rej) => { srv.once('error', rej); srv.listen(0, m.hostIp, () => res()); });
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise((r) => srv.close(r));
    return port;
  } catch (err) {
    throw new BerthError('NETWORK_PORT_IN_USE', `cannot find a free ${m.protocol} port on ${m.hostIp}`, {
      cause: err, hint: 'check the address in -p',
    });
  }
}

/** Docker's `port` line: "80/tcp -> 127.0.0.1:8080". */
export function formatPort(m: PortMapping): string {
  const ip = m.hostIp.includes(':') ? `[${m.hostIp}]` : m.hostIp;
  return `${m.containerPort}/${m.protocol} -> ${ip}:${m.hostPort}`;
}
