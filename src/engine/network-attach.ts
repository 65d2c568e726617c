// The engine's side of networking (network/index.ts does the work): the request checked
// against the other containers before a container is made, the network attached to its
// record before its process starts, and detached again on every path where a container
// stops being alive (foreground run's end, the monitor's cleanup, rm -f, the next berth
// after a crash). Node host process.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { pidStartTime } from '../runtime/state';
import {
  attachNetwork, checkNetworkRequest, etcContents, parseDnsFlags, NetnsSource, NetworkAttachment, NetworkRequest, parseNetworkRequest,
  PeerContainer, teardownNetwork,
} from '../network';
import type { ContainerRecord, ContainerStore } from './containers';

/** Whether REC's process could be running (created, running, paused). */
const isLive = (rec: ContainerRecord): boolean => rec.state.status !== 'exited';

function peerOf(rec: ContainerRecord): PeerContainer {
  return { id: rec.id, name: rec.name, running: rec.state.status === 'running' && rec.state.pid > 0, pid: rec.state.pid, network: rec.network };
}

/** Linux's HOST_NAME_MAX; a label's characters as RFC 1123 has them, plus "_" (Docker's names). */
const HOSTNAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/**
 * --hostname goes into /etc/hosts lines, the container's and (on a user-defined network)
 * its peers': a space, tab or newline in it would add names or whole lines to other
 * containers' files.
 * @throws BerthError HOSTNAME_INVALID
 */
export function checkHostname(hostname: string | undefined): void {
  if (hostname === undefined || HOSTNAME_RE.test(hostname)) return;
  throw new BerthError('HOSTNAME_INVALID', `--hostname ${JSON.stringify(hostname)} is not a host name`, {
    hint: 'use up to 64 letters, digits, ".", "-" and "_", starting with a letter or digit',
  });
}

/**
 * --network/-p/-P (and --hostname, which the network's /etc/hosts files carry) -> the
 * request and where its namespace comes from, checked before the container exists.
 * @throws BerthError NETWORK_*, CONTAINER_NOT_FOUND, HOSTNAME_INVALID
 */
export function planNetwork(cs: ContainerStore, opts: {
  network?: string; publish?: string[]; publishAll?: boolean; hostname?: string;
  dns?: string[]; dnsSearch?: string[]; dnsOption?: string[]; addHost?: string[];
},
  exposed: Record<string, unknown> | null | undefined): { request: NetworkRequest; source: NetnsSource } {
  checkHostname(opts.hostname);
  const request = parseDnsFlags(parseNetworkRequest(opts.network, opts.publish ?? [], !!opts.publishAll, exposed), opts);
  const source = checkNetworkRequest(request, () => cs.list().filter(isLive).map(peerOf), (ref) => {
    const peer = cs.resolve(ref);
    // Its pid must still be the init we recorded (a stale record says "running").
    return { ...peerOf(peer), running: peerOf(peer).running && pidStartTime(peer.state.pid) !== undefined };
  });
  return { request, source };
}

/** Writes the container's resolv.conf and hosts (bind-mounted by config.json) from ATT. */
export function writeEtcFiles(dir: string, att: NetworkAttachment | undefined, hostname: string, request?: NetworkRequest): void {
  const c = etcContents(att, hostname, request);
  // In place (same inode): a running container's bind mount keeps pointing at it.
  fs.writeFileSync(`${dir}/resolv.conf`, c.resolvConf);
  fs.writeFileSync(`${dir}/hosts`, c.hosts);
}

/**
 * Attaches REC's network (recorded in REC as it is made) and writes its /etc files.
 * @throws BerthError NETWORK_* (the network is then removed again)
 */
export async function attachContainerNetwork(root: string, cs: ContainerStore, rec: ContainerRecord, request: NetworkRequest,
  source: NetnsSource, foreground: boolean): Promise<NetworkAttachment> {
  const dir = cs.path(rec.id);
  const hostname = rec.config?.hostname ?? rec.id.slice(0, 12);
  rec.networkRequest = request;
  const att = await attachNetwork({
    root, containerId: rec.id, containerName: rec.name, hostname, dir, request, source, foreground,
    record: (a) => {
      rec.network = a;
      cs.write(rec);
    },
  });
  writeEtcFiles(dir, att, hostname, request);
  return att;
}

/**
 * Removes REC's network if it still has one, and records that. Best effort: failures are
 * logged as warnings (what may be left) and the caller goes on.
 */
export async function detachContainerNetwork(root: string, cs: ContainerStore | undefined, rec: ContainerRecord, log: Logger): Promise<void> {
  if (!rec.network) return;
  for (const w of await teardownNetwork(root, rec.network)) log.warn(`network of ${rec.id.slice(0, 12)} may be left: ${w}`, { id: rec.id });
  rec.network = undefined;
  if (cs && fs.existsSync(cs.path(rec.id, 'container.json'))) cs.write(rec);
}

/**
 * The network again for a container that starts once more (berth start/restart, the
 * restart policy): same request, a fresh namespace and helpers. A container: peer is
 * looked up again, so config.json is rewritten with where its namespace is now.
 * @throws BerthError NETWORK_*, CONTAINER_NOT_FOUND
 */
export async function reattachContainerNetwork(root: string, cs: ContainerStore, rec: ContainerRecord, log: Logger): Promise<void> {
  await detachContainerNetwork(root, cs, rec, log); // a crashed earlier run's leftovers
  const request = rec.networkRequest;
  if (!request) return; // made by a berth without networking: only lo, as then
  const source = checkNetworkRequest(request, () => cs.list().filter((c) => c.id !== rec.id && isLive(c)).map(peerOf), (ref) => {
    const peer = cs.resolve(ref);
    return { ...peerOf(peer), running: peerOf(peer).running && pidStartTime(peer.state.pid) !== undefined };
  });
  const cfgPath = cs.path(rec.id, 'config.json');
  const spec = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const entry = source.kind === 'host' ? null : source.kind === 'join' ? source.path : `${cs.path(rec.id)}/netns`;
  const others = (spec.linux.namespaces as { type: string; path?: string }[]).filter((n) => n.type !== 'network');
  spec.linux.namespaces = entry === null ? others : [...others, { type: 'network', path: entry }];
  fs.writeFileSync(cfgPath, JSON.stringify(spec, null, 1));
  await attachContainerNetwork(root, cs, rec, request, source, false);
}
