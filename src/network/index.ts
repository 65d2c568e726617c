// The network layer's entry points for engine/: `--network` parsed into a NetworkRequest
// and checked before anything is made, the driver registry, the container's network
// namespace (a bind-mounted nsfs file), setup and teardown, and what `berth info` says
// about each mode. Node host process (engine/run.ts, detached.ts, lifecycle.ts,
// restart.ts).
//
// Order, as the engine calls it: parseNetworkRequest + checkNetworkRequest (before the
// container exists: a bad mode, option or port, a missing helper binary or a taken port is
// an error that leaves nothing behind) -> config.json names the namespace file ->
// createNetns -> the driver's setup (helpers reported as they start, so the record holds
// them) -> the container starts. Teardown reverses it: helpers, namespace mount, files.
//
// Why a bind-mounted namespace made here rather than the runtime's own new namespace:
// slirp4netns, pasta and the bridge driver need the namespace before the container's
// process runs (its network must be there when its program starts), and a file keeps it
// alive across restarts of the process and lets `container:` peers join it by path.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { MNT_DETACH, native } from '../common/native';
import { bridgeDriver } from './bridge';
import { loadConfig } from './config';
import { findBinary } from './helpers';
import { overlaps, parsePorts } from './ports';
import { pastaDriver } from './pasta';
import { slirp4netnsDriver } from './slirp4netns';
import type { NetworkAttachment, NetworkDriver, NetworkModeName, NetworkRequest, PortMapping, SetupContext } from './types';

export type { NetworkAttachment, NetworkRequest, PortMapping } from './types';

const MODES_HINT = 'use none, host, slirp4netns[:OPTIONS], pasta[:OPTIONS], bridge, container:NAME|ID or a network\'s name';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** none: the namespace with only lo (up), as Docker's. Nothing to run. */
const noneDriver: NetworkDriver = {
  async setup(ctx) {
    return { mode: 'none', netnsPath: ctx.netnsPath, ports: [], helpers: [], hosts: [], resolvConf: [] };
  },
  async teardown() {},
};

/** host: no namespace of its own; the host's resolv.conf and hosts. */
const hostDriver: NetworkDriver = {
  async setup() {
    return { mode: 'host', ports: [], helpers: [], hosts: [], resolvConf: [] };
  },
  async teardown() {},
};

/** container:<ref>: the other container's namespace, joined by path; nothing to make or remove. */
const containerDriver: NetworkDriver = {
  async setup(ctx) {
    return { mode: 'container', ports: [], helpers: [], hosts: [], resolvConf: [] };
  },
  async teardown() {},
};

/** Drivers by mode; a user-defined network is the bridge driver's. */
export const DRIVERS: Record<NetworkModeName, NetworkDriver & { validate?(req: NetworkRequest): void }> = {
  none: noneDriver,
  host: hostDriver,
  slirp4netns: slirp4netnsDriver,
  pasta: pastaDriver,
  bridge: bridgeDriver,
  container: containerDriver,
};

/** "k=v,k2=v2" -> a map ("k" alone is "k="). */
function parseOptions(mode: string, s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = i < 0 ? part : part.slice(0, i);
    if (!k) throw new BerthError('NETWORK_OPTION_INVALID', `--network ${mode}: option "${part}" has no name`, { hint: 'write options as KEY=VALUE,...' });
    out[k] = i < 0 ? '' : part.slice(i + 1);
  }
  return out;
}

/**
 * `--network` (undefined: the configured default, network/config.ts) and the ports of
 * -p/-P -> a request. Only the syntax is checked here; checkNetworkRequest does the rest.
 * @throws BerthError NETWORK_MODE_UNKNOWN, NETWORK_OPTION_INVALID, NETWORK_PORT_INVALID, CONFIG_INVALID
 */
export function parseNetworkRequest(mode: string | undefined, publish: string[], publishAll: boolean,
  exposed?: Record<string, unknown> | null): NetworkRequest {
  const value = mode ?? loadConfig().network.default;
  const ports = parsePorts(publish, publishAll, exposed);
  const colon = value.indexOf(':');
  const name = colon < 0 ? value : value.slice(0, colon);
  const rest = colon < 0 ? '' : value.slice(colon + 1);
  switch (name) {
    case 'none':
    case 'host':
    case 'bridge':
      if (colon >= 0) throw new BerthError('NETWORK_OPTION_INVALID', `--network ${name} takes no options ("${value}")`, { hint: MODES_HINT });
      return { mode: name, ...(name === 'bridge' ? { network: 'bridge' } : {}), options: {}, ports };
    case 'slirp4netns':
    case 'pasta':
      return { mode: name, options: parseOptions(name, rest), ports };
    case 'container':
      if (!rest) throw new BerthError('NETWORK_MODE_UNKNOWN', '--network container: needs a container\'s name or id', { hint: 'use --network container:NAME' });
      return { mode: 'container', container: rest, options: {}, ports };
    default:
      // Docker's --network NAME: a user-defined network (the bridge driver checks it exists).
      if (colon < 0 && NAME_RE.test(value) && value !== 'default') return { mode: 'bridge', network: value, options: {}, ports };
      throw new BerthError('NETWORK_MODE_UNKNOWN', `unknown network mode "${value}"`, { hint: MODES_HINT });
  }
}

/** What checkNetworkRequest needs to know about another container (the engine looks it up). */
export interface PeerContainer {
  id: string;
  name: string;
  running: boolean;
  pid: number;
  network?: NetworkAttachment;
}

/**
 * Each -p host address is a wildcard or an address of this host. Otherwise the helper's
 * bind failed only after the container was made, and the error blamed "another program"
 * holding the port (slirp4netns) or an unbuilt proxy (bridge).
 * @throws BerthError NETWORK_PORT_INVALID
 */
export function checkHostAddresses(ports: PortMapping[], local: () => Set<string> | undefined = localAddresses): void {
  let known: Set<string> | undefined;
  for (const p of ports) {
    const ip = p.hostIp.replace(/%.*$/, '');
    if (ip === '' || ip === '0.0.0.0' || ip === '::' || ip.startsWith('127.')) continue;
    known ??= local();
    if (!known || known.has(ip)) continue;
    throw new BerthError('NETWORK_PORT_INVALID', `-p ${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:${p.hostPort || ''}:${p.containerPort}: ${p.hostIp} is not an address of this host`, {
      hint: `publish on one of its addresses (see \`ip addr\`), or leave the address out for all of them`,
    });
  }
}

/**
 * Every address of every interface, up or not (undefined when `ip` cannot say). Not
 * os.networkInterfaces(): libuv leaves out interfaces without carrier, such as a bridge
 * whose last container has gone, whose gateway address is still the host's.
 */
function localAddresses(): Set<string> | undefined {
  const r = spawnSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  try {
    return new Set((JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[])
      .flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? '')).filter(Boolean));
  } catch {
    return undefined;
  }
}

/** Where the container's network namespace comes from. */
export type NetnsSource = { kind: 'own' } | { kind: 'host' } | { kind: 'join'; path: string; peer: string; peerNetwork?: NetworkAttachment };

/**
 * Checks REQ against this host and the other containers before anything is made: the
 * mode's helper is installed, its options are valid, -p is allowed for the mode, no other
 * container holds a requested host port, a container: peer runs.
 * @throws BerthError NETWORK_HELPER_MISSING, NETWORK_OPTION_INVALID, NETWORK_PORTS_UNSUPPORTED,
 *   NETWORK_PORT_IN_USE, NETWORK_CONTAINER_NOT_RUNNING, CONTAINER_NOT_FOUND (from LOOKUP)
 */
export function checkNetworkRequest(req: NetworkRequest, others: () => PeerContainer[],
  lookup: (ref: string) => PeerContainer): NetnsSource {
  if (req.ports.length && (req.mode === 'none' || req.mode === 'host' || req.mode === 'container')) {
    throw new BerthError('NETWORK_PORTS_UNSUPPORTED', `--network ${req.mode} cannot publish ports (-p/-P)`, {
      hint: req.mode === 'host' ? 'with the host\'s network the container binds host ports itself; leave out -p'
        : req.mode === 'container' ? 'publish the ports on the container whose network this one joins' : 'use slirp4netns, pasta or bridge to publish ports',
    });
  }
  DRIVERS[req.mode].validate?.(req);
  checkHostAddresses(req.ports);
  for (const p of req.ports) {
    for (const o of others()) {
      if (!o.running || !o.network) continue;
      const held = o.network.ports.find((q) => overlaps(p, q));
      if (held) {
        throw new BerthError('NETWORK_PORT_IN_USE', `host port ${p.hostIp}:${p.hostPort}/${p.protocol} is already published by container "${o.name}" (${o.id.slice(0, 12)})`, {
          hint: `choose another host port, or stop that container (berth stop ${o.name})`,
        });
      }
    }
  }
  if (req.mode === 'host') return { kind: 'host' };
  if (req.mode !== 'container') return { kind: 'own' };
  const peer = lookup(req.container!);
  if (!peer.running || !peer.pid) {
    throw new BerthError('NETWORK_CONTAINER_NOT_RUNNING', `container "${peer.name}" is not running: its network cannot be joined`, {
      context: { containerId: peer.id }, hint: `start it first (berth start ${peer.name})`,
    });
  }
  const n = peer.network;
  if (n?.mode === 'host') return { kind: 'host' };
  // Its namespace file outlives restarts of its process; /proc/PID/ns/net does not.
  const path = n?.netnsPath && fs.existsSync(n.netnsPath) ? n.netnsPath : `/proc/${peer.pid}/ns/net`;
  return { kind: 'join', path, peer: peer.id, peerNetwork: n };
}

/**
 * A new network namespace bind-mounted on FILE (created empty), lo up.
 * @throws BerthError NETWORK_NETNS
 */
export function createNetns(file: string): void {
  try {
    fs.writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw wrapSystemError('NETWORK_NETNS', `create ${file}`, err);
    removeNetns(file); // a crashed berth's: start over
    fs.writeFileSync(file, '', { mode: 0o600 });
  }
  try {
    native().netnsCreate(file);
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw wrapSystemError('NETWORK_NETNS', `create a network namespace on ${file}`, err, 'berth needs root (CAP_SYS_ADMIN) for this');
  }
}

/** Unmounts and removes a namespace file; idempotent. @throws BerthError NETWORK_NETNS */
export function removeNetns(file: string): void {
  try {
    // Detached: a helper that still has it open (pasta keeps an fd) must not make this fail.
    native().umount2(file, MNT_DETACH);
  } catch (err) {
    if (!isErrno(err, 'EINVAL') && !isErrno(err, 'ENOENT')) throw wrapSystemError('NETWORK_NETNS', `unmount ${file}`, err);
  }
  fs.rmSync(file, { force: true });
}

/**
 * Gives the namespace its network (the driver's setup). CTX.netnsPath must exist already
 * (createNetns) for every mode with its own namespace.
 * @throws BerthError NETWORK_* (the driver has undone its partial work)
 */
export async function setupNetwork(ctx: SetupContext, source: NetnsSource): Promise<NetworkAttachment> {
  const att = await DRIVERS[ctx.request.mode].setup(ctx);
  if (source.kind === 'join') {
    // The peer's network is this container's too: its name server and hosts apply.
    att.sharedWith = source.peer;
    att.resolvConf = source.peerNetwork?.resolvConf ?? [];
    att.hosts = source.peerNetwork?.hosts ?? [];
    att.address = source.peerNetwork?.address;
  }
  return att;
}

export interface AttachInput {
  root: string;
  containerId: string;
  containerName: string;
  hostname: string;
  /** The container's directory: the namespace file is DIR/netns. */
  dir: string;
  request: NetworkRequest;
  source: NetnsSource;
  foreground: boolean;
  /** Persists the attachment as it grows (the container's record), so a crash leaves it. */
  record(att: NetworkAttachment): void;
}

/** The namespace file of a container whose network has its own namespace. */
export const netnsFile = (dir: string): string => `${dir}/netns`;

/** The path config.json's network namespace entry names: null = none (host's network). */
export function netnsEntry(source: NetnsSource, dir: string): string | null {
  return source.kind === 'host' ? null : source.kind === 'join' ? source.path : netnsFile(dir);
}

/**
 * Everything a container's network needs before its process starts: the namespace (own
 * modes), then the driver's setup. Each step is recorded before the next may fail; on
 * failure what was made is removed again.
 * @throws BerthError NETWORK_* (nothing of the network is left)
 */
export async function attachNetwork(input: AttachInput): Promise<NetworkAttachment> {
  const { request, source } = input;
  const own = source.kind === 'own';
  const netnsPath = own ? netnsFile(input.dir) : source.kind === 'join' ? source.path : '';
  const partial: NetworkAttachment = {
    mode: request.mode, ...(request.network ? { network: request.network } : {}), ...(own ? { netnsPath } : {}),
    // bridge: the id tags the container's lease and DNAT rules, which teardown removes by
    // it; without it a berth killed during setup left DNAT rules to an address the next
    // container on the network may get.
    ...(request.mode === 'bridge' ? { containerId: input.containerId } : {}),
    ports: [], helpers: [], resolvConf: [], hosts: [],
  };
  input.record(partial);
  try {
    if (own) createNetns(netnsPath);
    const att = await setupNetwork({
      root: input.root, containerId: input.containerId, containerName: input.containerName, hostname: input.hostname,
      dir: input.dir, netnsPath, request, foreground: input.foreground,
      onHelper: (h) => {
        partial.helpers.push(h);
        input.record(partial);
      },
    }, source);
    input.record(att);
    return att;
  } catch (err) {
    await teardownNetwork(input.root, partial);
    throw err;
  }
}

/**
 * Removes everything ATT holds: the driver's part (helpers, host devices, files), then the
 * namespace file. Goes on past failures and returns them as warnings (best effort, as
 * every cleanup path calls it, including after a crash).
 */
export async function teardownNetwork(root: string, att: NetworkAttachment): Promise<string[]> {
  const warnings: string[] = [];
  try {
    await DRIVERS[att.mode].teardown(root, att);
  } catch (err) {
    warnings.push(`network ${att.mode}: ${(err as Error).message}`);
  }
  if (att.netnsPath && att.mode !== 'container' && att.mode !== 'host') {
    try {
      removeNetns(att.netnsPath);
    } catch (err) {
      warnings.push((err as Error).message);
    }
  }
  return warnings;
}

/**
 * --dns, --dns-search, --dns-option and --add-host, checked: name servers are IP
 * addresses, search domains and options single words, hosts NAME:ADDRESS (or
 * NAME:host-gateway with a network that has a gateway); none with --network container:,
 * whose files are its peer's (as Docker's).
 * @throws BerthError NETWORK_OPTION_INVALID
 */
export function parseDnsFlags(request: NetworkRequest, o: { dns?: string[]; dnsSearch?: string[]; dnsOption?: string[]; addHost?: string[] }): NetworkRequest {
  const invalid = (flag: string, value: string, hint: string) =>
    new BerthError('NETWORK_OPTION_INVALID', `${flag} ${JSON.stringify(value)} is not valid`, { hint });
  const given = (o.dns?.length ?? 0) + (o.dnsSearch?.length ?? 0) + (o.dnsOption?.length ?? 0) + (o.addHost?.length ?? 0);
  if (!given) return request;
  if (request.mode === 'container') {
    throw new BerthError('NETWORK_OPTION_INVALID', '--dns, --dns-search, --dns-option and --add-host do not go with --network container:', {
      hint: 'the container shares its peer\'s /etc/hosts and /etc/resolv.conf; give them to that container',
    });
  }
  for (const d of o.dns ?? []) if (!net.isIP(d)) throw invalid('--dns', d, 'give a name server\'s IP address: --dns 192.0.2.53');
  for (const d of o.dnsSearch ?? []) {
    // "." alone (as Docker's): no search domains at all.
    if (d !== '.' && !/^(?=.{1,253}$)([A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$/.test(d)) {
      throw invalid('--dns-search', d, 'give a domain name: --dns-search example.com (or . for none)');
    }
  }
  for (const d of o.dnsOption ?? []) if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(d)) throw invalid('--dns-option', d, 'give a resolver option: --dns-option ndots:2');
  const extraHosts = (o.addHost ?? []).map((h) => {
    // NAME:ADDRESS or NAME=ADDRESS; an IPv6 address has colons of its own.
    const m = /^([^:=\s]+)[:=](.+)$/.exec(h);
    const address = m?.[2].replace(/^\[(.*)\]$/, '$1');
    const hint = 'use --add-host NAME:ADDRESS (an IPv4 or IPv6 address without a %zone, or host-gateway)';
    // No IPv6 zone (fe80::1%eth0): /etc/hosts has no place for one, as Docker's refuses it.
    if (!m || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(m[1]) || !address || (address !== 'host-gateway' && (!net.isIP(address) || address.includes('%')))) {
      throw invalid('--add-host', h, hint);
    }
    if (address === 'host-gateway' && (request.mode === 'none' || request.mode === 'host')) {
      throw new BerthError('NETWORK_OPTION_INVALID', `--add-host ${h}: --network ${request.mode} has no gateway`, {
        hint: 'host-gateway is the address the host has on the container\'s network (slirp4netns, pasta, bridge); give an address instead',
      });
    }
    return { name: m[1], address };
  });
  return {
    ...request,
    ...(o.dns?.length ? { dns: o.dns } : {}), ...(o.dnsSearch?.length ? { dnsSearch: o.dnsSearch } : {}),
    ...(o.dnsOption?.length ? { dnsOptions: o.dnsOption } : {}), ...(extraHosts.length ? { extraHosts } : {}),
  };
}

/** resolv.conf and hosts contents for ATT (host mode: the host's own), with REQUEST's --dns and --add-host. */
export function etcContents(att: NetworkAttachment | undefined, hostname: string, request?: NetworkRequest): { resolvConf: string; hosts: string } {
  const base = `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
  const self = att?.address ? att.address.split('/')[0] : '127.0.1.1';
  const extra = (request?.extraHosts ?? []).map((h) => `${h.address === 'host-gateway' ? att?.gateway ?? '' : h.address}\t${h.name}\n`)
    .filter((l) => !l.startsWith('\t')).join('');
  let resolv: string;
  let hosts: string;
  if (att?.mode === 'host') {
    const read = (f: string) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
    resolv = read('/etc/resolv.conf');
    hosts = (read('/etc/hosts') || base).replace(/\n?$/, '\n') + extra;
  } else {
    hosts = `${base}${self}\t${hostname}\n${extra}${(att?.hosts ?? []).map((l) => `${l}\n`).join('')}`;
    // none (and container: before its peer's files are known): nothing to resolve with.
    resolv = att?.resolvConf.length ? att.resolvConf.map((l) => `${l}\n`).join('') : '# berth: this container has no network but lo: no name server\n';
  }
  return { resolvConf: request ? withDns(resolv, request) : resolv, hosts };
}

/** RESOLV with REQUEST's --dns, --dns-search and --dns-option in place of its own such lines. */
function withDns(resolv: string, request: NetworkRequest): string {
  const { dns, dnsSearch, dnsOptions } = request;
  if (!dns && !dnsSearch && !dnsOptions) return resolv;
  const drop = (l: string) => (dns && /^\s*nameserver\s/.test(l)) || (dnsSearch && /^\s*(search|domain)\s/.test(l))
    || (dnsOptions && /^\s*options\s/.test(l)) || (dns && l.startsWith('# berth: this container has no network'));
  const lines = resolv.split('\n').filter((l) => l && !drop(l));
  const domains = (dnsSearch ?? []).filter((d) => d !== '.');
  if (domains.length) lines.push(`search ${domains.join(' ')}`);
  for (const d of dns ?? []) lines.push(`nameserver ${d}`);
  if (dnsOptions) lines.push(`options ${dnsOptions.join(' ')}`);
  return lines.map((l) => `${l}\n`).join('');
}

/** For `berth info`: each mode, whether this host can use it, and why not. */
export function networkModes(): { mode: string; available: boolean; detail: string }[] {
  const slirp = findBinary('slirp4netns');
  const pasta = findBinary('pasta');
  let configured = '';
  try {
    const c = loadConfig();
    configured = `${c.network.default} (${c.found ? c.path : 'built in; no ' + c.path})`;
  } catch (err) {
    configured = `unreadable: ${(err as Error).message}`;
  }
  const hasDefaultRoute = (() => {
    try {
      return fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).some((l) => l.split('\t')[1] === '00000000');
    } catch {
      return false;
    }
  })();
  return [
    { mode: 'default', available: true, detail: configured },
    { mode: 'none', available: true, detail: 'only lo' },
    { mode: 'host', available: true, detail: `the host's network (${Object.keys(os.networkInterfaces()).join(', ')})` },
    { mode: 'slirp4netns', available: !!slirp, detail: slirp ?? 'slirp4netns is not installed (apt-get install slirp4netns)' },
    {
      mode: 'pasta', available: !!pasta && hasDefaultRoute,
      detail: !pasta ? 'pasta is not installed (apt-get install passt)' : hasDefaultRoute ? pasta : `${pasta}, but the host has no default route for pasta to copy`,
    },
    { mode: 'container', available: true, detail: 'container:NAME joins a running container\'s network' },
  ];
}

/** Docker's HostConfig.NetworkMode for a request. */
export function networkModeName(req: NetworkRequest | undefined): string {
  if (!req) return 'none';
  if (req.mode === 'container') return `container:${req.container}`;
  if (req.mode === 'bridge') return req.network ?? 'bridge';
  return req.mode;
}

export { formatPort, parseExpose } from './ports';
