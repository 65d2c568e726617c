// `berth network ...` as the engine sees it: bridge networks (network/networks.ts) against
// the containers that use them. Create, remove and prune check users; connect and
// disconnect change a running container's interfaces (network/bridge.ts) or, for a
// stopped one, its request for the next start. Node host process; lock order is always
// the engine lock, then the network lock (never the other way round).
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { connectRunning, disconnectRunning, ensureBridge, removeBridge } from '../network/bridge';
import { CreateOptions, DEFAULT_NETWORK, NetworkRecord, NetworkStore, withNetworkLock } from '../network/networks';
import { ContainerRecord, ContainerStore } from './containers';
import { resolveContainer, withEngineLock } from './lifecycle';

/** The networks REC asks for (its request) or holds (its attachment). */
function networksOf(rec: ContainerRecord): string[] {
  const out = new Set<string>();
  const req = rec.networkRequest;
  if (req?.mode === 'bridge') for (const n of [req.network ?? DEFAULT_NETWORK, ...(req.extraNetworks ?? [])]) out.add(n);
  for (const e of rec.network?.endpoints ?? []) out.add(e.network);
  return [...out];
}

/** Names of containers (any state) that use network NAME, holders of a lease first. */
export function networkUsers(root: string, name: string): string[] {
  const users = new Set(new NetworkStore(root).users(name));
  for (const rec of new ContainerStore(root).list()) if (networksOf(rec).includes(name)) users.add(rec.name);
  return [...users];
}

/**
 * `network create`: the record, the bridge and its table, all or nothing.
 * @throws BerthError NETWORK_NAME_INVALID, NETWORK_EXISTS, NETWORK_SUBNET_*, NETWORK_GATEWAY_INVALID, NETWORK_SETUP
 */
export function createNetwork(root: string, name: string, opts: CreateOptions): Promise<NetworkRecord> {
  const store = new NetworkStore(root);
  return withNetworkLock(() => {
    const net = store.create(name, opts);
    try {
      ensureBridge(net);
    } catch (err) {
      try {
        removeBridge(net);
      } finally {
        store.remove(name);
      }
      throw err;
    }
    return net;
  });
}

/**
 * `network rm`: refused while any container uses it. Unlike Docker, the default network
 * may go too when unused (it comes back on next use): without a daemon, this is how its
 * bridge and rules leave the host (tests, uninstalling).
 * @throws BerthError NETWORK_NOT_FOUND, NETWORK_IN_USE
 */
export async function removeNetwork(root: string, ref: string): Promise<NetworkRecord> {
  return withEngineLock(root, () => withNetworkLock(() => {
    const store = new NetworkStore(root);
    const net = store.get(ref, false);
    const users = networkUsers(root, net.name);
    if (users.length) {
      throw new BerthError('NETWORK_IN_USE', `network "${net.name}" is used by container${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')}`, {
        hint: 'remove those containers (berth rm -f NAME) or disconnect them (berth network disconnect) first',
      });
    }
    removeBridge(net);
    store.remove(net.name);
    return net;
  }));
}

/** `network prune`: every user-defined network no container uses. */
export async function pruneNetworks(root: string): Promise<string[]> {
  return withEngineLock(root, () => withNetworkLock(() => {
    const store = new NetworkStore(root);
    const gone: string[] = [];
    for (const net of store.list()) {
      if (net.name === DEFAULT_NETWORK || networkUsers(root, net.name).length) continue;
      removeBridge(net);
      store.remove(net.name);
      gone.push(net.name);
    }
    return gone;
  }));
}

/**
 * `network connect NET CONTAINER`: a running container gets the next ethN now; a stopped
 * one joins at its next start. Either way its request remembers it.
 * @throws BerthError NETWORK_NOT_FOUND, CONTAINER_NOT_FOUND, NETWORK_CONNECT_UNSUPPORTED,
 *   NETWORK_ALREADY_CONNECTED, NETWORK_SETUP
 */
export async function connectNetwork(root: string, netRef: string, ctrRef: string, log: Logger): Promise<void> {
  const rec0 = await resolveContainer(root, ctrRef, log);
  await withEngineLock(root, async () => {
    const cs = new ContainerStore(root);
    const rec = cs.read(rec0.id);
    const net = await withNetworkLock(() => new NetworkStore(root).get(netRef));
    const req = rec.networkRequest;
    if (req?.mode !== 'bridge') {
      throw new BerthError('NETWORK_CONNECT_UNSUPPORTED', `container "${rec.name}" is not on a bridge network (--network ${req?.mode ?? 'none'})`, {
        hint: 'only containers started with --network bridge or a network\'s name can join more networks',
      });
    }
    if (networksOf(rec).includes(net.name)) {
      throw new BerthError('NETWORK_ALREADY_CONNECTED', `container "${rec.name}" is already on network "${net.name}"`, { hint: 'a container joins each network once' });
    }
    if (rec.state.status === 'running' && rec.network?.mode === 'bridge') {
      rec.network = await connectRunning(root, rec.network, net.name, { name: rec.name, hostname: rec.config?.hostname ?? rec.id.slice(0, 12) });
    }
    rec.networkRequest = { ...req, extraNetworks: [...(req.extraNetworks ?? []), net.name] };
    cs.write(rec);
  });
}

/**
 * `network disconnect NET CONTAINER`: the reverse; a container keeps at least one network.
 * @throws BerthError NETWORK_NOT_CONNECTED, CONTAINER_NOT_FOUND, NETWORK_LAST
 */
export async function disconnectNetwork(root: string, netRef: string, ctrRef: string, log: Logger): Promise<void> {
  const rec0 = await resolveContainer(root, ctrRef, log);
  await withEngineLock(root, async () => {
    const cs = new ContainerStore(root);
    const rec = cs.read(rec0.id);
    const store = new NetworkStore(root);
    const name = store.find(netRef)?.name ?? netRef;
    const nets = networksOf(rec);
    if (!nets.includes(name)) {
      throw new BerthError('NETWORK_NOT_CONNECTED', `container "${rec.name}" is not on network "${name}"`, { hint: `see its networks with \`berth inspect ${rec.name}\`` });
    }
    if (nets.length === 1) {
      throw new BerthError('NETWORK_LAST', `network "${name}" is the only network of container "${rec.name}"`, {
        hint: 'connect it to another network first, or remove the container',
      });
    }
    if (rec.network?.endpoints?.some((e) => e.network === name)) {
      rec.network = await disconnectRunning(root, rec.network, name, rec.name);
    }
    const req = rec.networkRequest!;
    const rest = nets.filter((n) => n !== name);
    rec.networkRequest = { ...req, network: rest[0], extraNetworks: rest.slice(1) };
    cs.write(rec);
  });
}
