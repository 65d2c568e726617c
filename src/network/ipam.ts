// IPv4 address management for bridge networks: subnet and gateway parsing, overlap checks,
// the pool that user-defined networks take a /24 from, and picking a container's address.
// Pure functions; network/networks.ts keeps the leases on disk under the network lock.
import { BerthError } from '../common/errors';

export interface Subnet {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

// berth's pool: 10.213.0.0/16, one /24 per network. Chosen to stay clear of podman
// (10.88.0.0/16 default, 10.89.0.0/16 for its user-defined networks), Docker
// (172.17.0.0/16 and up) and libvirt (192.168.122.0/24); a host route that overlaps
// makes berth take the next /24 anyway.
export const POOL: Subnet = { base: ipToNumber('10.213.0.0'), prefix: 16 };
export const POOL_PREFIX = 24;

export function ipToNumber(ip: string): number {
  const parts = ip.split('.');
  // No leading zeros: `ip` (inet_aton) reads "010" as octal 8, so the bridge would get
  // another address than the record says (Docker refuses them too).
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return NaN;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIPv4(ip: string): boolean {
  return !Number.isNaN(ipToNumber(ip));
}

const size = (s: Subnet): number => 2 ** (32 - s.prefix);

export function formatSubnet(s: Subnet): string {
  return `${numberToIp(s.base)}/${s.prefix}`;
}

/**
 * "10.1.2.0/24" -> Subnet. Host bits must be zero, as Docker requires.
 * @throws BerthError NETWORK_SUBNET_INVALID
 */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  const base = m ? ipToNumber(m[1]) : NaN;
  const prefix = m ? Number(m[2]) : NaN;
  if (Number.isNaN(base) || !(prefix >= 1 && prefix <= 30)) {
    throw new BerthError('NETWORK_SUBNET_INVALID', `subnet "${cidr}" is not an IPv4 CIDR with a prefix of 1 to 30`, {
      hint: 'write it as ADDRESS/PREFIX, e.g. 10.213.7.0/24 (IPv6 is not supported yet)',
    });
  }
  const s = { base, prefix };
  if (base % size(s) !== 0) {
    throw new BerthError('NETWORK_SUBNET_INVALID', `subnet "${cidr}" has host bits set`, {
      hint: `did you mean ${formatSubnet({ base: base - (base % size(s)), prefix })}?`,
    });
  }
  return s;
}

// Ranges that are not a network a bridge may own: 127/8 is the host's loopback (the main
// routing table that the overlap check reads does not list it: it lives in the local
// table, and a bridge holding 127.0.0.1 takes that address from lo when it goes), 0/8
// means "this host", 224/4 is multicast and 240/4 is reserved (with the broadcast address).
const RESERVED: { net: Subnet; what: string }[] = [
  { net: { base: 0, prefix: 8 }, what: '"this host" (0.0.0.0/8)' },
  { net: { base: 127 * 2 ** 24, prefix: 8 }, what: 'the host\'s loopback (127.0.0.0/8)' },
  { net: { base: 224 * 2 ** 24, prefix: 4 }, what: 'multicast (224.0.0.0/4)' },
  { net: { base: 240 * 2 ** 24, prefix: 4 }, what: 'reserved (240.0.0.0/4)' },
];

/** What S overlaps that no bridge may use, or undefined. */
export function reservedRange(s: Subnet): string | undefined {
  return RESERVED.find((r) => overlaps(r.net, s))?.what;
}

export function contains(s: Subnet, ip: number): boolean {
  return ip >= s.base && ip < s.base + size(s);
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.base < b.base + size(b) && b.base < a.base + size(a);
}

/** The host addresses of S: not the network address and not the broadcast address. */
export function isHostAddress(s: Subnet, ip: number): boolean {
  return contains(s, ip) && ip !== s.base && ip !== s.base + size(s) - 1;
}

/**
 * The gateway of S: GATEWAY when given (checked), else the first host address.
 * @throws BerthError NETWORK_GATEWAY_INVALID
 */
export function gatewayOf(s: Subnet, gateway?: string): string {
  if (gateway === undefined) return numberToIp(s.base + 1);
  const n = ipToNumber(gateway);
  if (Number.isNaN(n)) {
    throw new BerthError('NETWORK_GATEWAY_INVALID', `gateway "${gateway}" is not an IPv4 address`, { hint: 'e.g. --gateway 10.213.7.1' });
  }
  if (!isHostAddress(s, n)) {
    throw new BerthError('NETWORK_GATEWAY_INVALID', `gateway ${gateway} is not a host address of subnet ${formatSubnet(s)}`, {
      hint: 'choose an address inside the subnet that is neither its network nor its broadcast address',
    });
  }
  return gateway;
}

/** The first /24 of the pool that overlaps none of TAKEN, or undefined when all are used. */
export function nextFreeSubnet(taken: Subnet[]): Subnet | undefined {
  const step = 2 ** (32 - POOL_PREFIX);
  for (let base = POOL.base; base < POOL.base + size(POOL); base += step) {
    const s = { base, prefix: POOL_PREFIX };
    if (!taken.some((t) => overlaps(t, s))) return s;
  }
  return undefined;
}

/**
 * Picks a free host address of S that is not the gateway nor in USED, starting after LAST
 * (round robin, so that an address just released is not handed out again at once while a
 * peer may still hold it in its ARP cache). Undefined when the subnet is full.
 */
export function pickAddress(s: Subnet, gateway: number, used: Set<number>, last?: number): number | undefined {
  const first = s.base + 1;
  const count = size(s) - 2;
  const start = last !== undefined && isHostAddress(s, last) ? last - first + 1 : 0;
  for (let i = 0; i < count; i++) {
    const ip = first + ((start + i) % count);
    if (ip !== gateway && !used.has(ip)) return ip;
  }
  return undefined;
}

/** Parses `ip -j -4 route` output into the subnets of its routes (the default route left out). */
export function routeSubnets(json: string): Subnet[] {
  const out: Subnet[] = [];
  for (const r of JSON.parse(json || '[]') as { dst?: string }[]) {
    if (!r.dst || r.dst === 'default') continue;
    const [addr, p] = r.dst.split('/');
    const base = ipToNumber(addr);
    if (Number.isNaN(base)) continue;
    const prefix = p === undefined ? 32 : Number(p);
    const sz = 2 ** (32 - prefix);
    out.push({ base: base - (base % sz), prefix });
  }
  return out;
}
