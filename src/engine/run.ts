// `berth run` in the foreground: image -> overlay root filesystem -> config.json -> the
// OCI runtime (in process) -> exit status, then cleanup (everything with --rm). Detached
// containers (detached.ts) share prepareContainer and run under native/monitor.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import type { Logger } from '../common/log';
import { parseSignal } from '../common/signals';
import { ImageConfig } from '../image/commit';
import type { Stores } from '../image/stores';
import { makeContext } from '../runtime/context';
import { runForeground } from '../runtime/run';
import { pidStartTime } from '../runtime/state';
import { mountOverlay, unmountOverlay } from '../storage/overlay';
import { ContainerRecord, ContainerStore } from './containers';
import { parseRestartPolicy } from './restart';
import { withEngineLockSync } from './lifecycle';
import { buildSpec, containerHostname, RunOptions } from './spec';
import { applyHostOptions, HostOptions } from './host-options';
import { allocateUserns, checkUserMapped, checkUsernsMounts, checkUsernsRequest, parseUsernsOptions, prepareContainerDirs } from './userns';
import { MountRecord, removeAnonymousVolumes, resolveMounts } from './volumes';
import { attachContainerNetwork, detachContainerNetwork, planNetwork } from './network-attach';
import { netnsEntry, parseExpose } from '../network';

export interface EngineRunOptions extends RunOptions, HostOptions {
  name?: string;
  rm: boolean;
  /** -i: keep the container's stdin open (detached: a pipe the monitor holds). */
  interactive?: boolean;
  /** --restart no|on-failure[:N]|always|unless-stopped (detached containers only). */
  restart?: string;
  /** --stop-signal and --stop-timeout (seconds): what `berth stop` sends and waits. */
  stopSignal?: string;
  stopTimeout?: string;
  /** --label K=V, on top of the image's labels. */
  labels?: string[];
  /** --network MODE (undefined: the configured default), -p and -P (network/). */
  network?: string;
  publish?: string[];
  publishAll?: boolean;
  /** --expose PORT[/proto]: more ports for -P. */
  expose?: string[];
  /** --cidfile FILE: the new container's id is written there (it must not exist). */
  cidfile?: string;
  /** --dns, --dns-search, --dns-option, --add-host (network/index.ts parseDnsFlags). */
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  addHost?: string[];
  /** Pulls the image (cli/ shows progress): when it is not local, or always with --pull always. */
  pull: (name: string, missing: boolean) => Promise<void>;
  /** --pull missing (the default), always or never. */
  pullPolicy?: string;
  log: Logger;
}

function etcFiles(dir: string, hostname: string): [string, string][] {
  const hosts = path.join(dir, 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`);
  const hn = path.join(dir, 'hostname');
  fs.writeFileSync(hn, `${hostname}\n`);
  // No network yet but lo (issue: networking): name resolution has nowhere to go, and an
  // empty resolv.conf says so rather than pointing at a server that cannot be reached.
  const resolv = path.join(dir, 'resolv.conf');
  fs.writeFileSync(resolv, '# berth: this container has no network yet (only lo)\n');
  return [['/etc/hosts', hosts], ['/etc/hostname', hn], ['/etc/resolv.conf', resolv]];
}

/** `--label K=V` (or K alone, an empty value) -> a map. */
function parseLabels(flags: string[]): Record<string, string> {
  return Object.fromEntries(flags.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
}

/** @throws BerthError USAGE */
function stopTimeoutOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new BerthError('USAGE', `--stop-timeout "${v}" must be a whole number of seconds`);
  return Number(v);
}

/** A container made ready to run: its directory, mounted root filesystem and config.json. */
export interface Prepared {
  rec: ContainerRecord;
  dir: string;
  rootfs: string;
  containers: ContainerStore;
  /** Removes the network, unmounts the root filesystem and removes the container (after a failure). */
  discard(): Promise<void>;
}

/**
 * Resolves (pulling if needed) the image, claims the name, mounts the overlay root
 * filesystem, writes config.json and the engine's record (status "created").
 * @throws BerthError CONTAINER_NAME_*, STORAGE_*, USAGE, USER_NOT_FOUND, RUN_NO_COMMAND, USERNS_*
 */
export async function prepareContainer(stores: Stores, opts: EngineRunOptions, foreground = false): Promise<Prepared> {
  const policy = opts.pullPolicy ?? 'missing';
  if (!['missing', 'always', 'never'].includes(policy)) {
    throw new BerthError('USAGE', `--pull "${policy}" is not a pull policy`, { hint: 'use --pull missing (the default), always or never' });
  }
  let img = stores.images.find(opts.image);
  if (!img && policy === 'never') {
    throw new BerthError('IMAGE_NOT_FOUND', `image "${opts.image}" is not here, and --pull never forbids pulling it`, {
      hint: `pull it first (berth pull ${opts.image}), or leave out --pull never`,
    });
  }
  if (!img || policy === 'always') {
    await opts.pull(opts.image, !img);
    img = stores.images.resolve(opts.image);
  }
  const config = (stores.content.readJSON<ImageConfig>(img.configDigest).config ?? {}) as Record<string, any>;
  const containers = new ContainerStore(stores.root);
  // Before the container exists: a bad --network/-p, a missing helper or a taken port
  // leaves nothing behind.
  const exposed = { ...(config.ExposedPorts ?? {}), ...parseExpose(opts.expose ?? []) };
  const net = planNetwork(containers, opts, exposed);
  if (opts.cidfile !== undefined && fs.existsSync(opts.cidfile)) {
    throw new BerthError('USAGE', `--cidfile ${opts.cidfile} already exists`, { hint: 'remove it, or name another file: berth writes the new container\'s id there' });
  }
  const usernsRequest = parseUsernsOptions(opts.userns, opts.uidmap, opts.gidmap);
  checkUsernsRequest(usernsRequest);
  checkUsernsMounts(usernsRequest, opts.volumes, opts.mounts ?? []);
  const { id, name } = containers.create(opts.name);
  const dir = containers.path(id);
  // An image prune or rmi from here on sees the image as used; one that ran since the
  // lookup above may have taken it, which this check finds: they look for users and remove
  // under the engine lock (not the store lock, which a pull holds while it unpacks).
  try {
    containers.markImage(id, img.id);
    const found = img.id;
    withEngineLockSync(stores.root, () => {
      if (!stores.images.find(found)) {
        throw new BerthError('IMAGE_NOT_FOUND', `image "${opts.image}" was removed while the container was being made`, {
          hint: 'run it again (an image prune or rmi ran at the same time)',
        });
      }
    });
  } catch (err) {
    containers.remove({ id, name });
    throw err;
  }
  const rootfs = path.join(dir, 'rootfs');
  let mounted = false;
  let mountRecords: MountRecord[] = [];
  let rec: ContainerRecord | undefined;
  const discard = async () => {
    if (rec) await detachContainerNetwork(stores.root, undefined, rec, opts.log);
    removeAnonymousVolumes(stores.root, { id, name, mounts: mountRecords } as ContainerRecord);
    if (mounted) {
      try {
        unmountOverlay(rootfs);
      } catch (err) {
        opts.log.warn(`root filesystem of ${id.slice(0, 12)} stays mounted: ${(err as Error).message}`, { path: rootfs });
        return; // never remove a directory with a mount in it
      }
    }
    containers.remove({ id, name });
  };
  try {
    for (const d of ['upper', 'work', 'rootfs']) fs.mkdirSync(path.join(dir, d));
    const lowers = [...img.layers].reverse().map((c) => stores.layers.path(c));
    const hostname = containerHostname(opts, id);
    // --userns: the ids are taken (released by containers.remove) before the layers are
    // id-mapped with them.
    const userns = await allocateUserns(stores.root, id, usernsRequest);
    const etc = etcFiles(dir, hostname);
    if (userns) prepareContainerDirs(dir, path.join(dir, 'upper'), etc.map(([, f]) => f), userns);
    mountOverlay(lowers, path.join(dir, 'upper'), path.join(dir, 'work'), rootfs, userns);
    mounted = true;
    const restartPolicy = parseRestartPolicy(opts.restart, opts.rm);
    const stopTimeout = stopTimeoutOf(opts.stopTimeout);
    if (opts.stopSignal) parseSignal(opts.stopSignal);
    const resolved = resolveMounts(stores.root, rootfs, opts.volumes, opts.mounts ?? []);
    mountRecords = resolved.records;
    const spec = buildSpec({ id, rootfs, image: config, opts, etcFiles: etc, volumeMounts: resolved.mounts,
      netns: netnsEntry(net.source, dir), userns });
    applyHostOptions(spec, opts, { rootfs, hostNetwork: net.request.mode === 'host', sharedNetwork: net.request.mode === 'container', hostnameGiven: opts.hostname !== undefined, userns: !!userns });
    if (userns) checkUserMapped(userns, spec.process!.user);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 1));
    const entrypoint = opts.entrypoint !== undefined ? (opts.entrypoint ? [opts.entrypoint] : []) : config.Entrypoint ?? null;
    rec = {
      owner: { pid: process.pid, startTime: pidStartTime(process.pid) },
      id, name, image: opts.image, imageId: img.id, command: spec.process!.args!.slice(opts.init ? 2 : 0), created: new Date().toISOString(),
      state: { status: 'created', pid: 0, exitCode: 0, oomKilled: false }, autoRemove: opts.rm,
      config: {
        hostname, env: spec.process!.env ?? [], entrypoint: entrypoint?.length ? entrypoint : null,
        cmd: opts.args.length ? opts.args : opts.entrypoint !== undefined ? null : config.Cmd ?? null,
        workingDir: spec.process!.cwd, user: opts.user ?? config.User ?? '', tty: opts.tty,
        stopSignal: opts.stopSignal ?? (typeof config.StopSignal === 'string' ? config.StopSignal : undefined),
        stopTimeout, labels: { ...(config.Labels ?? {}), ...parseLabels(opts.labels ?? []) },
      },
      mounts: mountRecords,
      hostConfig: {
        memory: spec.linux?.resources?.memory?.limit ?? 0, nanoCpus: opts.cpus ? Math.round(Number(opts.cpus) * 1e9) : 0,
        pidsLimit: spec.linux?.resources?.pids?.limit ?? 0, readOnly: opts.readOnly, privileged: opts.privileged,
        memorySwap: spec.linux?.resources?.memory?.swap ?? 0, memoryReservation: spec.linux?.resources?.memory?.reservation ?? 0,
        cpuShares: spec.linux?.resources?.cpu?.shares ?? 0, cpusetCpus: spec.linux?.resources?.cpu?.cpus ?? '',
        cpusetMems: spec.linux?.resources?.cpu?.mems ?? '',
        capAdd: opts.capAdd, capDrop: opts.capDrop, binds: opts.volumes, tmpfs: opts.tmpfs,
        restartPolicy, ulimits: opts.ulimits ?? [], init: !!opts.init,
      },
      ...(userns ? { userns } : {}),
    };
    containers.write(rec);
    await attachContainerNetwork(stores.root, containers, rec, net.request, net.source, foreground);
    if (opts.cidfile !== undefined) {
      try {
        fs.writeFileSync(opts.cidfile, id, { flag: 'wx', mode: 0o644 });
      } catch (err) {
        throw wrapSystemError('USAGE', `--cidfile ${opts.cidfile}: cannot write the container id`, err, 'give a new file in a directory that exists');
      }
    }
    return { rec, dir, rootfs, containers, discard };
  } catch (err) {
    await discard();
    throw err;
  }
}

/**
 * Runs a container in the foreground and returns Docker's exit status: the process's own,
 * 128+n for signal n, 126/127 when it cannot be executed.
 * @throws BerthError (exit 125 in cli/) for anything that fails before the process runs
 */
export async function runContainer(stores: Stores, opts: EngineRunOptions): Promise<number> {
  if (parseRestartPolicy(opts.restart, opts.rm).name !== 'no') {
    throw new BerthError('USAGE', `--restart ${opts.restart} needs a detached container`, {
      hint: 'add -d (or use berth create + berth start): the restart policy is applied by the container\'s monitor',
    });
  }
  const { rec, dir, rootfs, containers } = await prepareContainer(stores, opts, true);
  const { id } = rec;
  // Others change the record while it runs (rename, network connect, pause): each write
  // starts from what is on disk, under the engine lock, so none of theirs is lost.
  // Call with the engine lock held; false: the record is gone (removed meanwhile).
  const reread = (): boolean => {
    try {
      Object.assign(rec, containers.read(id));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      // unreadable: ours stands
    }
    return true;
  };
  const update = (change?: (cur: ContainerRecord) => void) => withEngineLockSync(stores.root, () => {
    if (reread() && change) {
      change(rec);
      containers.write(rec);
    }
  });
  try {
    const ctx = makeContext(path.join(stores.root, 'runtime'), opts.log);
    const r = await runForeground(ctx, { id, bundle: dir }, false, (pid) => {
      update((c) => { c.state = { ...c.state, status: 'running', pid, startedAt: new Date().toISOString() }; });
    });
    if (r.late) process.stderr.write(`berth: ${r.late.message}\n`);
    update((c) => { c.state = { ...c.state, status: 'exited', pid: 0, paused: undefined, exitCode: r.status, oomKilled: r.oomKilled, finishedAt: new Date().toISOString() }; });
    return r.status;
  } finally {
    if (rec.state.status !== 'exited') update();
    // Not written by detachContainerNetwork: a rename made while the network is torn down
    // would be undone by our copy (leaving its new name's file to another name).
    const attached = !!rec.network;
    await detachContainerNetwork(stores.root, undefined, rec, opts.log);
    if (attached) update((c) => { c.network = undefined; });
    let unmounted = true;
    try {
      unmountOverlay(rootfs);
    } catch (err) {
      unmounted = false;
      opts.log.warn(`root filesystem of ${id.slice(0, 12)} stays mounted: ${(err as Error).message}`, { path: rootfs });
    }
    // A failed run leaves nothing; --rm removes the container once it exited.
    if (unmounted && (opts.rm || rec.state.status !== 'exited')) {
      // Under the lock, by the name it has now (renamed meanwhile, the old one is not its).
      withEngineLockSync(stores.root, () => {
        reread();
        containers.remove({ id, name: rec.name });
      });
      for (const f of removeAnonymousVolumes(stores.root, rec)) opts.log.warn(`anonymous volume stays: ${f}`);
    }
  }
}
