// The bridge network store: <root>/networks/<name>/network.json (the network) and
// leases.json (which container holds which address), both written atomically and changed
// only under the host-wide network lock, which also serialises subnet choice and host
// ports across every berth root on the machine. The default network "bridge" is made on
// first use. Node host process; called by network/bridge.ts and cli/commands/networks.ts.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno } from '../common/errors';
import { withLock } from '../common/lock';
import {
  formatSubnet, gatewayOf, nextFreeSubnet, overlaps, parseSubnet, reservedRange, routeSubnets, Subnet,
} from './ipam';

export const DEFAULT_NETWORK = 'bridge';
/** Host-wide: bridges, subnets and host ports belong to the machine, not to one --root. */
export const NETWORK_LOCK_DIR = '/run/berth-network';

export interface NetworkRecord {
  name: string;
  id: string;
  driver: 'bridge';
  subnet: string;
  gateway: string;
  /** The Linux bridge (<= 15 chars), unique per root and network. */
  bridge: string;
  /** The nftables table (family ip) holding this network's NAT and filter rules. */
  table: string;
  internal: boolean;
  labels: Record<string, string>;
  created: string;
}

export interface Lease {
  containerId: string;
  /** The container's name and hostname: what its peers resolve through /etc/hosts. */
  name: string;
  hostname: string;
  device: string;
  hostDevice: string;
  mac: string;
}

export interface LeaseFile {
  /** The address handed out last (round robin; ipam.pickAddress). */
  last?: string;
  leases: Record<string, Lease>;
}

export interface CreateOptions {
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Runs FN holding the host-wide network lock. @throws BerthError STORAGE_LOCK */
export function withNetworkLock<T>(fn: () => Promise<T> | T): Promise<T> {
  return withLock(NETWORK_LOCK_DIR, fn);
}

/** A short name derived from ROOT and ID, so test runs with other --roots never collide. */
export function shortName(prefix: string, root: string, id: string, len = 10): string {
  return prefix + createHash('sha256').update(`${path.resolve(root)}\0${id}`).digest('hex').slice(0, len);
}

/** The subnets of the host's IPv4 routes (main table), the default route left out. */
export function hostRouteSubnets(): Subnet[] {
  const r = spawnSync('ip', ['-j', '-4', 'route', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new BerthError('NETWORK_HOST_ROUTES', `list the host's routes: ${r.stderr.trim() || `ip exited ${r.status}`}`, {
      hint: 'berth needs iproute2 (`ip`) for bridge networks',
    });
  }
  return routeSubnets(r.stdout);
}

export class NetworkStore {
  readonly dir: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'networks');
  }

  private file(name: string, what: 'network.json' | 'leases.json'): string {
    return path.join(this.dir, name, what);
  }

  find(name: string): NetworkRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(name, 'network.json'), 'utf8')) as NetworkRecord;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  /**
   * A network by name, or by a unique prefix of its id (as Docker's). The default network
   * is made the first time anything asks for it (caller holds the network lock), unless
   * CREATE is false.
   * @throws BerthError NETWORK_NOT_FOUND
   */
  get(ref: string, create = true): NetworkRecord {
    const byName = NAME_RE.test(ref) ? this.find(ref) : undefined;
    if (byName) return byName;
    if (ref === DEFAULT_NETWORK && create) return this.create(DEFAULT_NETWORK, {});
    const byId = ref.length >= 3 ? this.list().filter((n) => n.id.startsWith(ref)) : [];
    if (byId.length === 1) return byId[0];
    throw new BerthError('NETWORK_NOT_FOUND', `network "${ref}" not found`, {
      hint: 'list networks with `berth network ls`, or make it with `berth network create`',
    });
  }

  list(): NetworkRecord[] {
    const names = fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : [];
    return names.map((n) => this.find(n)).filter((n): n is NetworkRecord => !!n).sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Records a new network after checking its name, subnet and gateway against this root's
   * networks and the host's routes (the caller holds the network lock and makes the bridge).
   * @throws BerthError NETWORK_NAME_INVALID, NETWORK_EXISTS, NETWORK_SUBNET_INVALID,
   *   NETWORK_SUBNET_OVERLAP, NETWORK_GATEWAY_INVALID, NETWORK_POOL_EXHAUSTED
   */
  create(name: string, opts: CreateOptions, hostRoutes: () => Subnet[] = hostRouteSubnets): NetworkRecord {
    if (!NAME_RE.test(name) || name.length > 64) {
      throw new BerthError('NETWORK_NAME_INVALID', `network name "${name}" is not valid`, {
        hint: 'use up to 64 letters, digits, "_", "." and "-", starting with a letter or digit',
      });
    }
    if (['none', 'host', 'slirp4netns', 'pasta', 'default'].includes(name)) {
      // `--network NAME` reads these as modes, so a network by that name could never be used.
      throw new BerthError('NETWORK_NAME_INVALID', `"${name}" is a network mode, not a name a network can have`, {
        hint: 'choose another name',
      });
    }
    if (this.find(name)) {
      throw new BerthError('NETWORK_EXISTS', `network "${name}" already exists`, {
        hint: `remove it first (berth network rm ${name}) or choose another name`,
      });
    }
    if (opts.gateway !== undefined && opts.subnet === undefined) {
      throw new BerthError('NETWORK_GATEWAY_INVALID', '--gateway needs --subnet', { hint: 'give the subnet the gateway belongs to' });
    }
    const mine = this.list().map((n) => ({ name: n.name, subnet: parseSubnet(n.subnet) }));
    const routes = hostRoutes();
    let subnet: Subnet;
    if (opts.subnet !== undefined) {
      subnet = parseSubnet(opts.subnet);
      const reserved = reservedRange(subnet);
      if (reserved) {
        throw new BerthError('NETWORK_SUBNET_INVALID', `subnet ${opts.subnet} overlaps ${reserved}`, {
          hint: 'choose a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), or leave --subnet out',
        });
      }
      const clash = mine.find((n) => overlaps(n.subnet, subnet));
      if (clash) {
        throw new BerthError('NETWORK_SUBNET_OVERLAP', `subnet ${opts.subnet} overlaps network "${clash.name}" (${formatSubnet(clash.subnet)})`, {
          hint: 'choose another --subnet, or leave it out to get a free one',
        });
      }
      const route = routes.find((r) => overlaps(r, subnet));
      if (route) {
        throw new BerthError('NETWORK_SUBNET_OVERLAP', `subnet ${opts.subnet} overlaps the host route to ${formatSubnet(route)}`, {
          hint: 'see `ip route`; choose another --subnet, or leave it out to get a free one',
        });
      }
    } else {
      const free = nextFreeSubnet([...mine.map((n) => n.subnet), ...routes]);
      if (!free) {
        throw new BerthError('NETWORK_POOL_EXHAUSTED', 'no free /24 is left in berth\'s pool 10.213.0.0/16', {
          hint: 'remove unused networks (berth network prune) or give --subnet',
        });
      }
      subnet = free;
    }
    const gateway = gatewayOf(subnet, opts.gateway);
    const id = randomBytes(32).toString('hex');
    const rec: NetworkRecord = {
      name, id, driver: 'bridge', subnet: formatSubnet(subnet), gateway,
      bridge: shortName('berth', this.root, id, 9), table: shortName('berth-', this.root, id, 12),
      internal: !!opts.internal, labels: opts.labels ?? {}, created: new Date().toISOString(),
    };
    fs.mkdirSync(path.join(this.dir, name), { recursive: true });
    writeFileAtomic(this.file(name, 'network.json'), JSON.stringify(rec, null, 1), 0o644);
    return rec;
  }

  /** Forgets NAME's record and leases (the caller has removed its bridge and rules). */
  remove(name: string): void {
    fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
  }

  readLeases(name: string): LeaseFile {
    try {
      return JSON.parse(fs.readFileSync(this.file(name, 'leases.json'), 'utf8')) as LeaseFile;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return { leases: {} };
      throw err;
    }
  }

  writeLeases(name: string, l: LeaseFile): void {
    writeFileAtomic(this.file(name, 'leases.json'), JSON.stringify(l, null, 1), 0o644, false);
  }

  /**
   * NAME's leases with the stale ones dropped (and the file rewritten if any was): a lease
   * is stale when its container's directory is gone or its host veth is (the kernel
   * removes a veth pair with the namespace it lives in, so a container whose namespace
   * died holds no address any more). That is how a crashed berth's leases come back.
   * The caller holds the network lock: a rewrite racing a lease being made would drop it
   * (two containers with one address).
   */
  liveLeases(name: string): LeaseFile {
    const l = this.readLeases(name);
    let changed = false;
    for (const [ip, lease] of Object.entries(l.leases)) {
      const ctrGone = !fs.existsSync(path.join(this.root, 'containers', lease.containerId));
      const vethGone = !fs.existsSync(path.join('/sys/class/net', lease.hostDevice));
      if (ctrGone || vethGone) {
        delete l.leases[ip];
        changed = true;
      }
    }
    if (changed) this.writeLeases(name, l);
    return l;
  }

  /** Containers (by name) holding an address on NAME. */
  users(name: string): string[] {
    return Object.values(this.liveLeases(name).leases).map((l) => l.name);
  }
}
