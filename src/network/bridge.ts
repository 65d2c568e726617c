// The bridge driver (`--network bridge` and user-defined networks): each network is a Linux
// bridge holding its gateway address, with an nftables table (network/nat.ts); a container
// gets a veth pair (eth0 in its namespace, the other end on the bridge), an address from
// the network's leases (network/networks.ts, ipam.ts), a default route via the gateway,
// and for published ports DNAT rules plus one berth-proxy process (native/proxy) for the
// host's own connections. Names of peers on user-defined networks go into each member's
// /etc/hosts. Node host process; every step runs under the host-wide network lock.
//
// Order in setup, each undone on failure: network record (the default one made on first
// use) -> bridge + table -> address lease -> veth into the namespace, configured -> lease
// written -> proxy (binds the host ports: a taken port fails here, before the container
// starts) -> DNAT rules -> peers' hosts files.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import { proxyPath } from '../common/paths';
import { endHelper, helperOf } from './helpers';
import { ipToNumber, numberToIp, parseSubnet, pickAddress } from './ipam';
import { addPortRules, enableForwarding, ensureNat, removeNat, removePortRules } from './nat';
import { DEFAULT_NETWORK, Lease, NetworkRecord, NetworkStore, shortName, withNetworkLock } from './networks';
import type { BridgeEndpoint, HelperProcess, NetworkAttachment, NetworkDriver, PortMapping, SetupContext } from './types';

const PROXY = 'berth-proxy';
/** The first line of the peers' part of a container's /etc/hosts (network/index.ts etcContents). */
export const HOSTS_MARK = '# berth: containers on the same networks';

function ip(args: string[], input?: string, netns?: string): void {
  const cmd = netns ? 'nsenter' : 'ip';
  const argv = netns ? [`--net=${netns}`, 'ip', ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', input });
  if (r.status !== 0) {
    throw new BerthError('NETWORK_SETUP', `ip ${args.join(' ')}${netns ? ` in ${netns}` : ''}: ${(r.stderr || r.error?.message || '').trim()}`, {
      hint: 'berth needs root and iproute2 for bridge networks; see docs/networking.md',
    });
  }
}

/** `ip -batch -` of LINES (one `ip` per call, not one per line). */
const ipBatch = (lines: string[], netns?: string): void => ip(['-batch', '-'], lines.join('\n') + '\n', netns);

const linkExists = (dev: string): boolean => fs.existsSync(path.join('/sys/class/net', dev));

function deleteLink(dev: string): void {
  if (linkExists(dev)) spawnSync('ip', ['link', 'del', dev], { stdio: 'ignore' });
}

/**
 * Makes NET's bridge (with the gateway address, up) and its nftables table unless they
 * exist; after a reboot both are gone while the record stays. Caller holds the lock.
 * @throws BerthError NETWORK_SETUP, NETWORK_NFT, NETWORK_FORWARDING
 */
export function ensureBridge(net: NetworkRecord): void {
  if (!linkExists(net.bridge)) {
    const prefix = net.subnet.split('/')[1];
    try {
      ipBatch([
        `link add ${net.bridge} type bridge`,
        `addr add ${net.gateway}/${prefix} dev ${net.bridge}`,
        `link set ${net.bridge} up`,
      ]);
    } catch (err) {
      deleteLink(net.bridge);
      throw err;
    }
  }
  ensureNat(net);
  if (!net.internal) enableForwarding();
}

/** Removes NET's bridge and table; quiet for parts already gone. @throws BerthError NETWORK_NFT */
export function removeBridge(net: NetworkRecord): void {
  deleteLink(net.bridge);
  removeNat(net.table);
}

/** The name servers of the host's resolv.conf that a container can reach (not loopback ones). */
function hostResolvConf(): string[] {
  let text = '';
  try {
    text = fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => {
    const [k, v] = l.split(/\s+/);
    if (k === 'search' || k === 'options') return true;
    return k === 'nameserver' && !!v && !v.startsWith('127.') && v !== '::1';
  });
}

interface Member {
  containerId: string;
  hostname: string;
  netnsPath: string;
}

/**
 * Joins MEMBER to network NAME as DEVICE: lease, veth, address, (PRIMARY:) default route.
 * Caller holds the lock; on failure nothing of this endpoint is left.
 * @throws BerthError NETWORK_NOT_FOUND, NETWORK_FULL, NETWORK_SETUP, NETWORK_NFT
 */
function joinNetwork(store: NetworkStore, name: string, member: Member & { name: string }, device: string, primary: boolean): BridgeEndpoint {
  const net = store.get(name);
  ensureBridge(net);
  const subnet = parseSubnet(net.subnet);
  const leases = store.liveLeases(net.name);
  const mine = Object.entries(leases.leases).find(([, l]) => l.containerId === member.containerId);
  if (mine) {
    throw new BerthError('NETWORK_ALREADY_CONNECTED', `container "${member.name}" is already on network "${net.name}"`, {
      hint: 'a container joins each network once',
    });
  }
  const used = new Set(Object.keys(leases.leases).map(ipToNumber));
  const addr = pickAddress(subnet, ipToNumber(net.gateway), used, leases.last ? ipToNumber(leases.last) : undefined);
  if (addr === undefined) {
    throw new BerthError('NETWORK_FULL', `network "${net.name}" (${net.subnet}) has no free address`, {
      hint: 'remove containers from it, or make a network with a larger --subnet',
    });
  }
  const address = numberToIp(addr);
  const key = `${member.containerId}/${net.id}`;
  const hostDevice = shortName('bveth', store.root, key, 9);
  const tmp = shortName('bvtmp', store.root, key, 9);
  // Locally administered, from the address (as Docker's): a reused address keeps its MAC,
  // so peers' ARP caches stay right.
  const mac = `02:be:${address.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
  const prefix = net.subnet.split('/')[1];
  deleteLink(hostDevice); // a crashed berth's, for this very container
  try {
    ip(['link', 'add', hostDevice, 'type', 'veth', 'peer', 'name', tmp]);
    // The namespace file's path (under --root) as an argument of its own: `ip -batch`
    // splits lines at spaces and cuts them at "#".
    ip(['link', 'set', tmp, 'netns', member.netnsPath]);
    ipBatch([
      `link set ${hostDevice} master ${net.bridge}`,
      `link set ${hostDevice} up`,
    ]);
    ipBatch([
      `link set ${tmp} name ${device}`,
      `link set ${device} address ${mac}`,
      `addr add ${address}/${prefix} dev ${device}`,
      `link set ${device} up`,
      `link set lo up`,
      ...(primary ? [`route add default via ${net.gateway} dev ${device}`] : []),
    ], member.netnsPath);
  } catch (err) {
    deleteLink(hostDevice);
    throw err;
  }
  const lease: Lease = { containerId: member.containerId, name: member.name, hostname: member.hostname, device, hostDevice, mac };
  store.writeLeases(net.name, { last: address, leases: { ...leases.leases, [address]: lease } });
  return { network: net.name, device, hostDevice, address: `${address}/${prefix}`, gateway: net.gateway, mac };
}

/** Releases CONTAINERID's lease on NAME and deletes its veth; quiet for parts already gone. */
function leaveNetwork(store: NetworkStore, name: string, containerId: string, hostDevice?: string): void {
  if (hostDevice) deleteLink(hostDevice);
  const net = store.find(name);
  if (!net) return;
  const l = store.readLeases(name);
  for (const [addr, lease] of Object.entries(l.leases)) {
    if (lease.containerId !== containerId) continue;
    deleteLink(lease.hostDevice);
    delete l.leases[addr];
  }
  store.writeLeases(name, l);
  removePortRules(net.table, containerId);
}

/**
 * Starts the port proxy for PORTS (to ADDRESS) and returns the ports with their host
 * ports as bound. WATCH is the container's directory: the proxy exits once it is gone.
 * @throws BerthError NETWORK_PORT_IN_USE, NETWORK_PROXY
 */
async function startProxy(ports: PortMapping[], address: string, watch: string): Promise<{ helper: HelperProcess; ports: PortMapping[] }> {
  const specs = ports.map((p) => `${p.protocol},${p.hostIp || '0.0.0.0'},${p.hostPort},${address},${p.containerPort}`);
  const child = spawn(proxyPath(), [watch, ...specs], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise<string>((resolve) => {
    let out = '';
    let err = '';
    const done = (s: string) => resolve(s);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) done(out.slice(0, out.indexOf('\n')));
    });
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', (e) => done(`error ${e.message}`));
    child.on('exit', (code) => done(out.split('\n')[0] || `error exited with status ${code}: ${err.trim()}`));
    setTimeout(() => done('error no answer within 10 s'), 10_000).unref();
  });
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  if (!line.startsWith('ready')) {
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const msg = line.replace(/^error /, '');
    if (/Address already in use/.test(msg)) {
      throw new BerthError('NETWORK_PORT_IN_USE', `host port is taken: ${msg.replace(/: Address already in use$/, '')}`, {
        hint: 'another container or program holds it; choose another host port with -p, or stop the one that holds it',
      });
    }
    throw new BerthError('NETWORK_PROXY', `start the port proxy: ${msg}`, { hint: `check that ${proxyPath()} is built (make -C native)` });
  }
  const bound = line.split(' ').slice(1).map(Number);
  const helper = helperOf(PROXY, child.pid!, child);
  if (!helper) throw new BerthError('NETWORK_PROXY', 'the port proxy exited right after it started', { hint: 'run with --debug' });
  return { helper, ports: ports.map((p, i) => ({ ...p, hostIp: p.hostIp || '0.0.0.0', hostPort: bound[i] })) };
}

/**
 * The /etc/hosts lines (HOSTS_MARK first) of container ID: every other member of the
 * user-defined networks it is on, by name and hostname. The default network gives no
 * names, as Docker's: it is shared by every container that asked for nothing.
 */
function peerLines(store: NetworkStore, id: string): string[] {
  const lines = new Set<string>();
  for (const net of store.list()) {
    if (net.name === DEFAULT_NETWORK) continue;
    const leases = Object.entries(store.liveLeases(net.name).leases);
    if (!leases.some(([, l]) => l.containerId === id)) continue;
    for (const [addr, l] of leases) {
      if (l.containerId === id) continue;
      lines.add(`${addr}\t${l.name}${l.hostname && l.hostname !== l.name ? ` ${l.hostname}` : ''}`);
    }
  }
  return lines.size ? [HOSTS_MARK, ...lines] : [];
}

/** A hosts file larger than this is left as it is: its container wrote it, not berth. */
const HOSTS_MAX = 1 << 20;

/**
 * Rewrites the peers' part of container ID's hosts file, in place (the file is
 * bind-mounted into the running container: a rename would not reach it). Best effort:
 * the file is writable from inside that container, which may have made it huge or (with
 * CAP_LINUX_IMMUTABLE) immutable, and that must not make other containers fail to join
 * or leave the network.
 */
function rewriteHosts(store: NetworkStore, id: string): void {
  const file = path.join(store.root, 'containers', id, 'hosts');
  try {
    if (fs.statSync(file).size > HOSTS_MAX) return;
    const text = fs.readFileSync(file, 'utf8');
    const cut = text.indexOf(`${HOSTS_MARK}\n`);
    const head = cut < 0 ? text : text.slice(0, cut);
    fs.writeFileSync(file, head + peerLines(store, id).map((l) => `${l}\n`).join(''));
  } catch {
    // not written yet (the engine writes it from the attachment), or see above
  }
}

/** rewriteHosts for every container on NETWORKS but SKIP. */
function refreshPeers(store: NetworkStore, networks: string[], skip?: string): void {
  const ids = new Set<string>();
  for (const n of networks) {
    if (n === DEFAULT_NETWORK || !store.find(n)) continue;
    for (const l of Object.values(store.liveLeases(n).leases)) ids.add(l.containerId);
  }
  for (const id of ids) if (id !== skip) rewriteHosts(store, id);
}

function withEndpoint(att: NetworkAttachment, eps: BridgeEndpoint[]): NetworkAttachment {
  const first = eps[0];
  return {
    ...att, endpoints: eps, hostDevices: eps.map((e) => e.hostDevice),
    network: first?.network, device: first?.device, address: first?.address, gateway: first?.gateway, mac: first?.mac,
  };
}

/** berth-proxy's MAX_PORTS: one process holds every published port of a container. */
export const MAX_PROXY_PORTS = 4096;

export const bridgeDriver: NetworkDriver & { validate(req: SetupContext['request']): void } = {
  validate(req) {
    if (req.ports.length > MAX_PROXY_PORTS) {
      throw new BerthError('NETWORK_PORT_INVALID', `${req.ports.length} published ports are more than a bridge network's port proxy takes (${MAX_PROXY_PORTS})`, {
        hint: 'publish fewer ports (a range counts one per port), or use --network slirp4netns or pasta',
      });
    }
  },

  async setup(ctx: SetupContext): Promise<NetworkAttachment> {
    const names = [...new Set([ctx.request.network ?? DEFAULT_NETWORK, ...(ctx.request.extraNetworks ?? [])])];
    const store = new NetworkStore(ctx.root);
    const member = { containerId: ctx.containerId, name: ctx.containerName, hostname: ctx.hostname, netnsPath: ctx.netnsPath };
    let att: NetworkAttachment = {
      mode: 'bridge', network: names[0], netnsPath: ctx.netnsPath, containerId: ctx.containerId, endpoints: [],
      hostDevices: [], ports: [], helpers: [], resolvConf: hostResolvConf(), hosts: [],
    };
    try {
      return await withNetworkLock(async () => {
        const eps: BridgeEndpoint[] = [];
        for (const [i, name] of names.entries()) {
          eps.push(joinNetwork(store, name, member, `eth${i}`, i === 0));
          att = withEndpoint(att, eps);
        }
        if (ctx.request.ports.length) {
          const addr = eps[0].address.split('/')[0];
          const { helper, ports } = await startProxy(ctx.request.ports, addr, ctx.dir);
          att.helpers.push(helper);
          ctx.onHelper?.(helper);
          att.ports = ports;
          addPortRules(store.get(eps[0].network), ctx.containerId, addr, ports);
        }
        att.hosts = peerLines(store, ctx.containerId);
        refreshPeers(store, names, ctx.containerId);
        return att;
      });
    } catch (err) {
      await bridgeDriver.teardown(ctx.root, att);
      throw err;
    }
  },

  async teardown(root: string, att: NetworkAttachment): Promise<void> {
    const store = new NetworkStore(root);
    await withNetworkLock(async () => {
      for (const h of att.helpers) if (h.what === PROXY) await endHelper(h);
      const names = new Set([...(att.endpoints ?? []).map((e) => e.network), ...(att.network ? [att.network] : [])]);
      for (const dev of att.hostDevices ?? []) deleteLink(dev);
      if (!att.containerId) return; // its leases go once their veths are gone (liveLeases)
      for (const n of names) leaveNetwork(store, n, att.containerId);
      refreshPeers(store, [...names]);
    });
  },
};

/**
 * `berth network connect` on a running container: joins NAME as the next ethN and returns
 * the attachment with the new endpoint.
 * @throws BerthError NETWORK_NOT_FOUND, NETWORK_ALREADY_CONNECTED, NETWORK_FULL, NETWORK_SETUP
 */
export async function connectRunning(root: string, att: NetworkAttachment, name: string, who: { name: string; hostname: string }): Promise<NetworkAttachment> {
  if (att.mode !== 'bridge' || !att.netnsPath || !att.containerId) {
    throw new BerthError('NETWORK_CONNECT_UNSUPPORTED', `container "${who.name}" is not on a bridge network (it has --network ${att.mode})`, {
      hint: 'only containers on bridge networks can join more networks',
    });
  }
  const store = new NetworkStore(root);
  return withNetworkLock(() => {
    const eps = [...(att.endpoints ?? [])];
    const used = new Set(eps.map((e) => e.device));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    eps.push(joinNetwork(store, name, { containerId: att.containerId!, netnsPath: att.netnsPath!, ...who }, `eth${n}`, false));
    const next = withEndpoint(att, eps);
    refreshPeers(store, eps.map((e) => e.network));
    next.hosts = peerLines(store, att.containerId!);
    rewriteHosts(store, att.containerId!);
    return next;
  });
}

/**
 * `berth network disconnect` on a running container: removes its interface on NAME (the
 * published ports go with eth0's network).
 * @throws BerthError NETWORK_NOT_CONNECTED
 */
export async function disconnectRunning(root: string, att: NetworkAttachment, name: string, who: string): Promise<NetworkAttachment> {
  const store = new NetworkStore(root);
  return withNetworkLock(async () => {
    const ep = (att.endpoints ?? []).find((e) => e.network === name);
    const id = att.containerId;
    if (!ep || !id) {
      throw new BerthError('NETWORK_NOT_CONNECTED', `container "${who}" is not on network "${name}"`, {
        hint: `see its networks with \`berth inspect ${who}\``,
      });
    }
    if (ep === att.endpoints![0] && att.ports.length) {
      for (const h of att.helpers) if (h.what === PROXY) await endHelper(h);
      att = { ...att, helpers: att.helpers.filter((h) => h.what !== PROXY), ports: [] };
    }
    leaveNetwork(store, name, id, ep.hostDevice);
    const rest = att.endpoints!.filter((e) => e !== ep);
    refreshPeers(store, [name, ...rest.map((e) => e.network)]);
    const next = withEndpoint(att, rest);
    next.hosts = peerLines(store, id);
    rewriteHosts(store, id);
    return next;
  });
}
