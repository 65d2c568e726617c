// Turns a validated config.json into the plan that native/init carries out (plan.h):
// which namespaces to make or join, every mount with its flags, devices, the process.
// Runs in the Node host process; everything here is decided, nothing is executed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import type { Cgroup } from '../cgroups/driver';
import { deviceNumbers } from '../common/native';
import { capMask, hostBoundingSet } from './capabilities';
import { compileSeccomp } from './seccomp';
import { CLONE_NEWCGROUP, CLONE_NEWUSER, hex, NAMESPACE_FLAGS, Plan } from './plan';
import type { Device, Hook, Mount, Spec } from './spec';

const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40,
  DIRSYNC: 0x80, NOSYMFOLLOW: 0x100, NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, MOVE: 0x2000,
  REC: 0x4000, UNBINDABLE: 0x20000, PRIVATE: 0x40000, SLAVE: 0x80000, SHARED: 0x100000,
  RELATIME: 0x200000, STRICTATIME: 0x1000000, LAZYTIME: 0x2000000,
};

/** mount(8) option -> [set, clear] flags. */
const FLAG_OPTIONS: Record<string, [number, number]> = {
  ro: [MS.RDONLY, 0], rw: [0, MS.RDONLY], nosuid: [MS.NOSUID, 0], suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0], dev: [0, MS.NODEV], noexec: [MS.NOEXEC, 0], exec: [0, MS.NOEXEC],
  sync: [MS.SYNCHRONOUS, 0], async: [0, MS.SYNCHRONOUS], dirsync: [MS.DIRSYNC, 0],
  remount: [MS.REMOUNT, 0], mand: [MS.MANDLOCK, 0], nomand: [0, MS.MANDLOCK],
  atime: [0, MS.NOATIME], noatime: [MS.NOATIME, 0], diratime: [0, MS.NODIRATIME],
  nodiratime: [MS.NODIRATIME, 0], bind: [MS.BIND, 0], rbind: [MS.BIND | MS.REC, 0],
  relatime: [MS.RELATIME, 0], norelatime: [0, MS.RELATIME], strictatime: [MS.STRICTATIME, 0],
  nostrictatime: [0, MS.STRICTATIME], lazytime: [MS.LAZYTIME, 0], nolazytime: [0, MS.LAZYTIME],
  nosymfollow: [MS.NOSYMFOLLOW, 0], symfollow: [0, MS.NOSYMFOLLOW], defaults: [0, 0],
};
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

export interface ParsedOptions {
  flags: number;
  propagation: number[];
  data: string[];
  /** Options berth accepts without acting on them, named so callers can say so. */
  ignored: string[];
}

/** Splits mount options into flags, propagation changes and filesystem data (mount(8)). */
export function parseMountOptions(options: string[] = []): ParsedOptions {
  const out: ParsedOptions = { flags: 0, propagation: [], data: [], ignored: [] };
  for (const opt of options) {
    if (opt in FLAG_OPTIONS) {
      const [set, clear] = FLAG_OPTIONS[opt];
      out.flags = (out.flags & ~clear) | set;
    } else if (opt in PROPAGATION) {
      out.propagation.push(PROPAGATION[opt]);
    } else if (opt === 'tmpcopyup' || opt === 'copy-symlink' || opt === 'idmap' || opt === 'ridmap') {
      out.ignored.push(opt);
    } else {
      out.data.push(opt);
    }
  }
  return out;
}

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const DEFAULT_DEVICES: Device[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666 },
];
const DEV_SYMLINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'], ['pts/ptmx', '/dev/ptmx'],
];

function cleanDest(dest: string, i: number): string {
  if (!dest.startsWith('/')) {
    throw new BerthError('CONFIG_SCHEMA', `mounts[${i}].destination "${dest}" must be an absolute path`, {
      context: { field: `mounts[${i}].destination` },
    });
  }
  const dst = path.posix.normalize(dest);
  if (dst === '/') {
    throw new BerthError('CONFIG_SCHEMA', `mounts[${i}].destination "${dest}" is the container's root directory`, {
      context: { field: `mounts[${i}].destination` }, hint: 'the root filesystem is root.path; mount onto a directory inside it',
    });
  }
  return dst;
}

export interface PlanInput {
  id: string;
  spec: Spec;
  /** The bundle directory: relative bind mount sources are relative to it (OCI config.md). */
  bundle?: string;
  rootfs: string;
  cgroup: Cgroup;
  fifo?: string;
  foreground: boolean;
  consoleSocket?: string;
  noPivot: boolean;
  preserveFds: number;
  logLevel: number;
  warn: (msg: string) => void;
}

/**
 * Builds the plan for `create`.
 * @throws BerthError CONFIG_SCHEMA, CONFIG_UNSUPPORTED, CONFIG_UNKNOWN_CAPABILITY
 */
export function buildCreatePlan(input: PlanInput): Plan {
  const { spec, rootfs } = input;
  const linux = spec.linux ?? {};
  const plan = new Plan();
  plan.add('mode', 'create').add('loglevel', input.logLevel).add('foreground', input.foreground ? 1 : 0);
  if (input.fifo) plan.add('fifo', input.fifo);
  for (const f of input.cgroup.procsFiles()) plan.add('cgroup', f);

  let cloneFlags = 0;
  const newNs = new Set<string>();
  // Namespaces the container has apart from the host's: new ones, and joined ones that are
  // not the host's own (the engine's bind-mounted network namespace); their sysctls are
  // the container's to set.
  const ownNs = new Set<string>();
  for (const ns of linux.namespaces ?? []) {
    const flag = NAMESPACE_FLAGS[ns.type];
    if (ns.path) {
      plan.add('join', hex(flag), ns.path);
      if (!isHostNamespace(ns.type, ns.path)) ownNs.add(ns.type);
    } else {
      cloneFlags |= flag;
      newNs.add(ns.type);
      ownNs.add(ns.type);
    }
  }
  plan.add('clone', hex(cloneFlags));
  const userns = (cloneFlags & CLONE_NEWUSER) !== 0;
  const joinsUserns = (linux.namespaces ?? []).some((n) => n.type === 'user' && n.path);
  if (userns) {
    if (!linux.uidMappings?.length || !linux.gidMappings?.length) {
      throw new BerthError('CONFIG_SCHEMA', 'a new user namespace needs linux.uidMappings and linux.gidMappings', {
        context: { field: 'linux.uidMappings' },
      });
    }
    for (const m of linux.uidMappings) plan.add('uidmap', m.containerID, m.hostID, m.size);
    for (const m of linux.gidMappings) plan.add('gidmap', m.containerID, m.hostID, m.size);
  }
  const hooks = spec.hooks ?? {};
  if (hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length || hooks.startContainer?.length) {
    plan.add('synchooks', 1);
  }

  plan.add('rootfs', rootfs);
  const rootProp = linux.rootfsPropagation ?? 'rslave';
  const prop = PROPAGATION[rootProp];
  if (prop === undefined) {
    throw new BerthError('CONFIG_SCHEMA', `linux.rootfsPropagation "${rootProp}" is not a propagation mode`, {
      context: { field: 'linux.rootfsPropagation' },
    });
  }
  // The host's mounts must not see ours: "/" is made a slave (or private) before any mount,
  // even when the config asks for shared; shared is applied to the new root after pivot.
  plan.add('rootprop', hex((prop & (MS.SHARED | MS.SLAVE)) ? MS.SLAVE | MS.REC : prop | MS.REC));
  if (rootProp === 'shared' || rootProp === 'rshared') plan.add('rootshared', 1);

  let devIsTmpfs = false;
  // Device nodes are made after the mounts: one on a bind mount would be made (after
  // unlinking what is there) in its source, on the host. A bind at /dev means no default
  // devices, as runc's; a device asked for on a bind is refused.
  let binds: string[] = [];
  (spec.mounts ?? []).forEach((m, i) => {
    const dst = cleanDest(m.destination, i);
    const bind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    const bare = dst.replace(/\/+$/, '');
    if (bare === '/dev') devIsTmpfs = !bind;
    binds = binds.filter((b) => b !== bare && !b.startsWith(`${bare}/`)); // covered by this one
    if (bind) binds.push(bare);
    addMount(plan, m, dst, i, input, newNs.has('cgroup'));
  });
  for (const d of linux.devices ?? []) {
    const p = path.posix.normalize(d.path);
    const over = binds.find((b) => p === b || p.startsWith(`${b}/`));
    if (over) {
      throw new BerthError('CONFIG_UNSUPPORTED', `linux.devices path "${d.path}" is on the bind mount at ${over}: the node would be made on the host`, {
        context: { field: 'linux.devices' },
      });
    }
  }

  if (devIsTmpfs) {
    for (const d of [...DEFAULT_DEVICES, ...(linux.devices ?? [])]) addDevice(plan, d, userns || joinsUserns);
    for (const [target, link] of DEV_SYMLINKS) plan.add('symlink', target, link);
    if (fs.existsSync('/proc/kcore')) plan.add('symlink', '/proc/kcore', '/dev/core');
  } else {
    for (const d of linux.devices ?? []) addDevice(plan, d, userns || joinsUserns);
  }

  for (const h of hooks.createContainer ?? []) addHook(plan, 'createContainer', h);
  for (const h of hooks.startContainer ?? []) addHook(plan, 'startContainer', h);

  plan.add('nopivot', input.noPivot ? 1 : 0);
  if (spec.root?.readonly) plan.add('rootreadonly', 1);
  for (const p of linux.readonlyPaths ?? []) plan.add('readonly', p);
  for (const p of linux.maskedPaths ?? []) plan.add('mask', p);
  for (const [k, v] of Object.entries(linux.sysctl ?? {})) {
    if (!/^[a-zA-Z0-9_.\-/]+$/.test(k) || k.includes('..')) {
      throw new BerthError('CONFIG_SCHEMA', `linux.sysctl key "${k}" is not a sysctl name`, { context: { field: 'linux.sysctl' } });
    }
    checkSysctlNamespaced(k, ownNs);
    plan.add('sysctl', '/proc/sys/' + k.replace(/\./g, '/'), v);
  }
  for (const field of ['hostname', 'domainname'] as const) {
    const v = spec[field];
    // HOST_NAME_MAX: sethostname(2) and setdomainname(2) refuse longer names.
    if (v && Buffer.byteLength(v) > 64) {
      throw new BerthError('CONFIG_SCHEMA', `${field} is ${Buffer.byteLength(v)} bytes long; Linux allows at most 64`, {
        context: { field },
      });
    }
  }
  if (spec.hostname) {
    if (!newNs.has('uts')) throw hostnameWithoutUts('hostname');
    plan.add('hostname', spec.hostname);
  }
  if (spec.domainname) {
    if (!newNs.has('uts')) throw hostnameWithoutUts('domainname');
    plan.add('domainname', spec.domainname);
  }
  if (input.consoleSocket) plan.add('consolesocket', input.consoleSocket);
  addProcess(plan, spec, input.preserveFds, userns || joinsUserns);
  if (linux.seccomp) plan.add('seccomp', compileSeccomp(linux.seccomp).toString('hex'));
  if ((cloneFlags & CLONE_NEWCGROUP) && !input.cgroup) throw new Error('internal error: cgroup namespace without cgroup');
  return plan;
}

function hostnameWithoutUts(field: string): BerthError {
  return new BerthError('CONFIG_SCHEMA', `${field} is set but the container has no new UTS namespace`, {
    context: { field }, hint: 'add {"type": "uts"} to linux.namespaces, or remove the field',
  });
}

/** Whether PATH is the host's (this process's) namespace of TYPE; unreadable counts as the host's. */
function isHostNamespace(type: string, path: string): boolean {
  const file = { network: 'net', mount: 'mnt' }[type] ?? type;
  try {
    const a = fs.statSync(path);
    const b = fs.statSync(`/proc/self/ns/${file}`);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return true;
  }
}

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall',
  'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/**
 * The namespace whose sysctl KEY is (the same list runc and crun accept), or undefined for
 * a sysctl of the whole host. Also engine/host-options.ts's check of --sysctl.
 */
export function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | undefined {
  if (IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.')) return 'ipc';
  if (key.startsWith('net.')) return 'network';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

function checkSysctlNamespaced(key: string, newNs: Set<string>): void {
  const ns = sysctlNamespace(key);
  if (!ns || !newNs.has(ns)) {
    throw new BerthError('CONFIG_UNSUPPORTED', `sysctl "${key}" is not namespaced by a namespace this container owns`, {
      context: { field: 'linux.sysctl' }, hint: 'setting it would change the host; only ipc, net and uts sysctls are allowed',
    });
  }
}

function addMount(plan: Plan, m: Mount, dst: string, i: number, input: PlanInput, cgroupns: boolean): void {
  const opts = parseMountOptions(m.options);
  const isBind = m.type === 'bind' || (opts.flags & MS.BIND) !== 0;
  for (const o of opts.ignored) {
    if (o !== 'tmpcopyup') {
      throw new BerthError('CONFIG_UNSUPPORTED', `mount option "${o}" on ${dst} is not supported`, {
        context: { field: `mounts[${i}].options` },
      });
    }
    input.warn(`mount option "tmpcopyup" on ${dst} is accepted, but the tmpfs starts empty`);
  }

  if (m.type === 'cgroup' || m.type === 'cgroup2') {
    const ro = opts.flags & MS.RDONLY;
    const sources = input.cgroup.mountSources();
    const base = MS.NOSUID | MS.NODEV | MS.NOEXEC;
    if (sources.length === 1 && sources[0][0] === '') {
      plan.add('mount', sources[0][1], dst, '', hex(MS.BIND | MS.REC), '', 'dir');
    } else {
      plan.add('mount', 'tmpfs', dst, 'tmpfs', hex(base), 'mode=755', 'dir');
      for (const [name, dir] of sources) {
        plan.add('mount', dir, `${dst}/${name}`, '', hex(MS.BIND | MS.REC), '', 'dir');
        plan.add('remount', `${dst}/${name}`, hex(MS.BIND | MS.REMOUNT | base | ro));
      }
    }
    if (ro) plan.add('remount', dst, hex(MS.BIND | MS.REMOUNT | base | MS.RDONLY));
    void cgroupns;
    return;
  }

  if (isBind) {
    // "Path values for bind mounts are either absolute or relative to the bundle", never
    // to the caller's working directory.
    const src = m.source && input.bundle ? path.resolve(input.bundle, m.source) : m.source ?? '';
    let st: fs.Stats;
    try {
      st = fs.statSync(src);
    } catch (err) {
      throw new BerthError('MOUNT_SOURCE_NOT_FOUND', `bind mount source "${src}" for ${dst} does not exist`, {
        cause: err, context: { path: src, field: `mounts[${i}].source` },
      });
    }
    plan.add('mount', src, dst, '', hex(MS.BIND | (opts.flags & MS.REC)), '', st.isDirectory() ? 'dir' : 'file');
    const rest = opts.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
    if (rest) plan.add('remount', dst, hex(MS.BIND | MS.REMOUNT | rest));
  } else {
    let data = opts.data.join(',');
    // Spec example configs pass mqueue/sysfs/proc with source = type.
    const src = m.source ?? m.type ?? 'none';
    plan.add('mount', src, dst, m.type ?? '', hex(opts.flags), data, 'dir');
    data = '';
  }
  for (const p of opts.propagation) plan.add('remount', dst, hex(p));
}

function addDevice(plan: Plan, d: Device, inUserns: boolean): void {
  if (!d.path.startsWith('/dev/')) {
    throw new BerthError('CONFIG_SCHEMA', `linux.devices path "${d.path}" must be under /dev`, { context: { field: 'linux.devices' } });
  }
  if (inUserns) {
    // mknod(2) needs CAP_MKNOD in the initial user namespace: bind the host's node instead,
    // the one at the same path (as runc's), which must be the device asked for.
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d.path);
    } catch {
      // refused below
    }
    const type = st?.isCharacterDevice() ? 'c' : st?.isBlockDevice() ? 'b' : st?.isFIFO() ? 'p' : undefined;
    const { major, minor } = deviceNumbers(st?.rdev ?? 0);
    if (!type || (d.type === 'u' ? 'c' : d.type) !== type || (type !== 'p' && ((d.major ?? 0) !== major || (d.minor ?? 0) !== minor))) {
      throw new BerthError('CONFIG_UNSUPPORTED', `linux.devices path "${d.path}" (${d.type} ${d.major ?? 0}:${d.minor ?? 0}) is not that device on the host: in a user namespace the host's node at the same path is bound`, {
        context: { field: 'linux.devices' }, hint: 'give the device its host path inside the container too',
      });
    }
    plan.add('bindnode', d.path, d.path);
    return;
  }
  const type = d.type === 'u' ? 'c' : d.type;
  plan.add('mknod', path.posix.normalize(d.path), type, d.major ?? 0, d.minor ?? 0,
    ((d.fileMode ?? 0o666) & 0o7777).toString(8), d.uid ?? 0, d.gid ?? 0);
}

function addHook(plan: Plan, kind: string, h: Hook): void {
  plan.add('hook', kind, h.timeout ?? 0, h.path);
  for (const a of h.args ?? []) plan.add('hookarg', a);
  for (const e of h.env ?? []) plan.add('hookenv', e);
}

/** The process part of a plan, shared by create and exec. */
export function addProcess(plan: Plan, spec: Spec, preserveFds: number, inUserns = false): void {
  const p = spec.process!;
  if (!p.args?.length || !p.args[0]) {
    throw new BerthError('CONFIG_SCHEMA', `process.args${p.args?.length ? '[0] is empty' : ' is missing or empty'}`, {
      context: { field: 'process.args' }, hint: 'process.args[0] is the program to run',
    });
  }
  if (p.terminal) plan.add('terminal', 1);
  for (const r of p.rlimits ?? []) {
    const n = RLIMITS[r.type];
    if (n === undefined) {
      throw new BerthError('CONFIG_SCHEMA', `unknown rlimit type "${r.type}"`, { context: { field: 'process.rlimits' } });
    }
    if (r.soft > r.hard) {
      throw new BerthError('CONFIG_SCHEMA', `rlimit ${r.type}: soft limit ${r.soft} is above hard limit ${r.hard}`, {
        context: { field: 'process.rlimits' },
      });
    }
    const lim = (v: number) => (v < 0 || v >= 2 ** 64 - 1 ? -1 : v);
    plan.add('rlimit', n, lim(r.soft), lim(r.hard));
  }
  if (p.oomScoreAdj !== undefined) plan.add('oomscoreadj', p.oomScoreAdj);
  const c = p.capabilities;
  if (c && !inUserns) {
    // capset(2) cannot grant what this process's bounding set lacks: say which, up front.
    const host = hostBoundingSet();
    const missing = [...new Set([...(c.bounding ?? []), ...(c.permitted ?? []), ...(c.effective ?? [])])]
      .filter((n) => !host.has(n.toUpperCase()));
    if (missing.length) {
      throw new BerthError('CONFIG_CAPABILITY_UNAVAILABLE',
        `capabilities ${missing.join(', ')} are not in this host's bounding set, so no container can have them`, {
          context: { field: 'process.capabilities' }, hint: 'drop them from the request (the runtime itself runs without them)',
        });
    }
  }
  if (c) {
    plan.add('caps', hex(capMask(c.bounding, 'process.capabilities.bounding')),
      hex(capMask(c.effective, 'process.capabilities.effective')),
      hex(capMask(c.permitted, 'process.capabilities.permitted')),
      hex(capMask(c.inheritable, 'process.capabilities.inheritable')),
      hex(capMask(c.ambient, 'process.capabilities.ambient')));
  } else {
    plan.add('caps', '0', '0', '0', '0', '0');
  }
  // Absent (the schema allows it) means root, as with runc.
  const u = p.user ?? { uid: 0, gid: 0 };
  for (const [k, v] of [['uid', u.uid], ['gid', u.gid]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new BerthError('CONFIG_SCHEMA', `process.user.${k} ${JSON.stringify(v)} is not a user or group id`, {
        context: { field: `process.user.${k}` }, hint: 'use a number from 0 to 4294967295',
      });
    }
  }
  plan.add('user', u.uid ?? 0, u.gid ?? 0, (u.additionalGids ?? []).join(',') || '');
  if (p.noNewPrivileges) plan.add('nonewprivs', 1);
  if (u.umask !== undefined) plan.add('umask', u.umask.toString(8));
  if (!p.cwd.startsWith('/')) {
    throw new BerthError('CONFIG_SCHEMA', `process.cwd "${p.cwd}" must be an absolute path`, { context: { field: 'process.cwd' } });
  }
  plan.add('cwd', p.cwd);
  if (preserveFds) plan.add('preservefds', preserveFds);
  for (const e of p.env ?? []) plan.add('env', e);
  for (const a of p.args ?? []) plan.add('arg', a);
}
