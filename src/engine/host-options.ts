// run/create flags that reach past the container's own namespaces or add to its config.json:
// --ipc, --pid and --uts (host), --sysctl, --device, --group-add,
// --shm-size, --oom-score-adj and --domainname, checked as Docker checks them before the
// container is made. Node host process; config.json is only written (runtime/ applies it).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import { deviceNumbers } from '../common/native';
import { sysctlNamespace } from '../runtime/build-plan';
import type { DeviceRule, Spec } from '../runtime/spec';
import { parseBytes, readInRoot } from './spec';

export interface HostOptions {
  /** --ipc private (default) | shareable | host; --pid private | host; --uts private | host. */
  ipc?: string;
  pid?: string;
  uts?: string;
  /** --sysctl KEY=VALUE (repeatable). */
  sysctl?: string[];
  /** --device HOST[:CONTAINER][:rwm] (repeatable). */
  device?: string[];
  /** --group-add GROUP (a name in the image's /etc/group, or a number; repeatable). */
  groupAdd?: string[];
  shmSize?: string;
  oomScoreAdj?: string;
  domainname?: string;
}

/** What the checks need to know besides the flags. */
export interface HostContext {
  rootfs: string;
  /** --network host (its net.* sysctls are the host's). */
  hostNetwork: boolean;
  /** --network container:NAME (its network settings are that container's). */
  sharedNetwork?: boolean;
  /** -h/--hostname was given. */
  hostnameGiven: boolean;
  /** --userns: a user namespace of its own. */
  userns: boolean;
}

const usage = (message: string, hint: string) => new BerthError('USAGE', message, { hint });

/** Applies O to SPEC (buildSpec's output). @throws BerthError USAGE, USAGE_UNSUPPORTED, USER_NOT_FOUND */
export function applyHostOptions(spec: Spec, o: HostOptions, ctx: HostContext): void {
  const linux = spec.linux!;
  const proc = spec.process!;
  // container:NAME is not taken: its namespace's path (/proc/PID/ns/...) would go stale in
  // config.json when that container restarts, and a reused PID would name another's.
  const shares = (flag: string, v: string | undefined, type: 'ipc' | 'pid' | 'uts', modes: string[]) => {
    if (v === undefined || v === 'private' || (type === 'ipc' && v === 'shareable')) return;
    if (v.startsWith('container:') && type !== 'uts') {
      throw new BerthError('USAGE_UNSUPPORTED', `${flag} ${v} is not supported by berth`, {
        hint: `use ${flag} host, or run the command in that container with berth exec`,
      });
    }
    if (v !== 'host') throw usage(`${flag} "${v}" is not a mode`, `use ${flag} ${modes.join(' or ')}`);
    if (ctx.userns) {
      throw usage(`${flag} host does not go with --userns`, 'a container in its own user namespace cannot share the host\'s namespaces here');
    }
    linux.namespaces = linux.namespaces!.filter((n) => n.type !== type);
  };
  shares('--ipc', o.ipc, 'ipc', ['private', 'shareable', 'host']);
  shares('--pid', o.pid, 'pid', ['private', 'host']);
  shares('--uts', o.uts, 'uts', ['private', 'host']);
  const has = (type: string) => linux.namespaces!.some((n) => n.type === type && !n.path);
  const joined = (type: string) => linux.namespaces!.some((n) => n.type === type);

  if (o.uts === 'host') {
    if (ctx.hostnameGiven) throw usage('--hostname does not go with --uts host', 'the container uses the host\'s name; leave out one of them');
    delete spec.hostname;
  }
  if (o.domainname !== undefined) {
    if (!has('uts')) throw usage('--domainname does not go with --uts host', 'it would rename the host\'s domain');
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(o.domainname)) {
      throw usage(`--domainname "${o.domainname}" is not a domain name`, 'use up to 64 letters, digits, "." and "-"');
    }
    spec.domainname = o.domainname;
  }
  if (o.ipc === 'host') {
    // Its /dev/shm is the host's, as its System V IPC is.
    if (o.shmSize !== undefined) throw usage('--shm-size does not go with --ipc host', 'the container uses the host\'s /dev/shm as it is');
    spec.mounts = spec.mounts!.map((m) => (m.destination === '/dev/shm' ? { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'nodev', 'noexec'] } : m));
  }
  if (o.shmSize !== undefined) {
    const bytes = parseBytes('--shm-size', o.shmSize);
    if (bytes < 1) throw usage(`--shm-size "${o.shmSize}" is too small`, 'give a size such as 64m or 1g');
    spec.mounts = spec.mounts!.map((m) => (m.destination === '/dev/shm'
      ? { ...m, options: [...(m.options ?? []).filter((x) => !x.startsWith('size=')), `size=${Math.ceil(bytes / 1024)}k`] } : m));
  }

  const sysctl: Record<string, string> = {};
  for (const s of o.sysctl ?? []) {
    const i = s.indexOf('=');
    const k = i > 0 ? s.slice(0, i).trim() : '';
    if (!k || !/^[a-z0-9_]+(\.[a-z0-9_-]+)+$/.test(k)) throw usage(`--sysctl "${s}" is not KEY=VALUE`, 'e.g. --sysctl net.ipv4.ip_forward=1');
    const ns = sysctlNamespace(k);
    if (ns === 'ipc' && !has('ipc')) throw usage(`--sysctl ${k} would change the host's (or another container's) IPC settings`, 'leave out --ipc, or the sysctl');
    else if (ns === 'network' && ctx.sharedNetwork) {
      throw usage(`--sysctl ${k} would change the network settings of the container whose network this one joins`, 'set it on that container, or leave it out');
    } else if (ns === 'network' && (ctx.hostNetwork || !joined('network'))) {
      throw usage(`--sysctl ${k} would change the host's network settings (--network host)`, 'use another --network, or leave the sysctl out');
    } else if (ns !== 'ipc' && ns !== 'network') {
      throw usage(`--sysctl ${k} is not namespaced: setting it would change the host`, 'only IPC (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) and network (net.*) sysctls are per container');
    }
    sysctl[k] = s.slice(i + 1);
  }
  if (Object.keys(sysctl).length) linux.sysctl = sysctl;

  for (const g of o.groupAdd ?? []) {
    let gid: number;
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = (readInRoot(ctx.rootfs, '/etc/group') ?? '').split('\n').map((l) => l.split(':')).find((r) => r[0] === g);
      if (!row) throw new BerthError('USER_NOT_FOUND', `--group-add: group "${g}" is not in the image's /etc/group`, { hint: 'give a numeric gid, or a group the image has' });
      gid = Number(row[2]);
    }
    if (!(gid <= 2147483647)) throw usage(`--group-add "${g}" is out of range`, 'gids go from 0 to 2147483647');
    const user = proc.user!;
    if (gid !== user.gid && !(user.additionalGids ?? []).includes(gid)) user.additionalGids = [...(user.additionalGids ?? []), gid];
  }

  if (o.oomScoreAdj !== undefined) {
    const n = Number(o.oomScoreAdj);
    if (!/^-?\d+$/.test(o.oomScoreAdj.trim()) || n < -1000 || n > 1000) {
      throw usage(`--oom-score-adj "${o.oomScoreAdj}" is not a number from -1000 to 1000`, 'higher makes the OOM killer pick the container sooner');
    }
    proc.oomScoreAdj = n;
  }

  for (const d of o.device ?? []) addDevice(spec, d);
}

/** --device HOST[:CONTAINER][:PERMISSIONS]: the node, made in the container, and a devices cgroup rule that lets it be used. */
function addDevice(spec: Spec, flag: string): void {
  const parts = flag.split(':');
  const hostPath = parts[0];
  let ctrPath = hostPath;
  let access = 'rwm';
  if (parts.length === 3) [, ctrPath, access] = parts;
  else if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1])) access = parts[1];
    else ctrPath = parts[1];
  } else if (parts.length > 3) throw usage(`--device "${flag}" is not HOST[:CONTAINER][:rwm]`, 'e.g. --device /dev/fuse or --device /dev/sdb:/dev/xvdc:r');
  if (!hostPath.startsWith('/') || !ctrPath.startsWith('/') || !/^[rwm]{1,3}$/.test(access)) {
    throw usage(`--device "${flag}" is not HOST[:CONTAINER][:rwm]`, 'paths are absolute, permissions some of r, w and m');
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(hostPath);
  } catch {
    throw new BerthError('USAGE', `--device "${flag}": ${hostPath} does not exist on this host`, { hint: 'give a device node the host has (ls -l /dev)' });
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) {
    throw usage(`--device "${flag}": ${hostPath} is not a device node`, 'use -v to bind a file or a directory');
  }
  if (!ctrPath.startsWith('/dev/') || ctrPath.split('/').includes('..') || !/[^/.]/.test(ctrPath.slice(5))) {
    throw usage(`--device "${flag}": the container's path ${ctrPath} is not under /dev/`, `name it: --device ${hostPath}:/dev/NAME`);
  }
  // The node is made after the mounts: on one under /dev (the host's /dev/shm with --ipc
  // host, a -v bind) it would land in that mount's source, on the host.
  const clean = path.posix.normalize(ctrPath).replace(/\/+$/, '');
  const over = (spec.mounts ?? []).find((m) => {
    const dst = path.posix.normalize(m.destination).replace(/\/+$/, '');
    return dst === '/dev' ? m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')
      : clean === dst || clean.startsWith(`${dst}/`);
  });
  if (over) {
    throw usage(`--device "${flag}": ${ctrPath} is on the container's mount at ${over.destination}`, `name it outside that mount: --device ${hostPath}:/dev/NAME`);
  }
  ctrPath = clean;
  const type = st.isCharacterDevice() ? 'c' : 'b';
  const { major, minor } = deviceNumbers(st.rdev);
  const linux = spec.linux!;
  linux.devices = [...(linux.devices ?? []), { type, path: ctrPath, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid }];
  const rule: DeviceRule = { allow: true, type, major, minor, access };
  linux.resources = { ...linux.resources, devices: [...(linux.resources?.devices ?? []), rule] };
}
