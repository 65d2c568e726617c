// The OCI config.json the engine writes for a container: the image's config (Entrypoint,
// Cmd, Env, WorkingDir, User) overridden by `berth run` flags, with Docker's defaults for
// capabilities, masked paths and namespaces. engine/ -> runtime/ contract (DESIGN.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import { native } from '../common/native';
import { topDir } from '../common/paths';
import { CAPABILITIES, hostBoundingSet } from '../runtime/capabilities';
import { MASKED_PATHS, READONLY_PATHS } from '../runtime/default-spec';
import { containerSeccomp, parseSecurityOpts } from './security-opts';
import type { Mount, Spec } from '../runtime/spec';

/** Docker's default capability set (moby's oci/caps/defaults.go lists the same 14). */
export const DEFAULT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE'];
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunOptions {
  image: string;
  args: string[];
  entrypoint?: string;
  env: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty: boolean;
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  /** --memory-swap (memory plus swap; -1 unlimited), --memory-reservation (a soft limit). */
  memorySwap?: string;
  memoryReservation?: string;
  /** --cpu-shares (relative weight), --cpuset-cpus / --cpuset-mems ("0-2,4"). */
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  volumes: string[];
  tmpfs: string[];
  /** --mount flags (volumes.ts parses them with -v). */
  mounts?: string[];
  /** --init: berth-tini (native/tini) as PID 1. */
  init?: boolean;
  /** --ulimit NAME=SOFT[:HARD]. */
  ulimits?: string[];
  /** --security-opt seccomp=...|no-new-privileges|... (security-opts.ts). */
  securityOpts?: string[];
  /** --uts host: the host's hostname (host-options.ts). */
  uts?: string;
  /** --userns host|auto[:size=N], --uidmap/--gidmap C:H:N (userns.ts). */
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
}

export interface ImageConfigFields {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
}

/** -h, else the host's name with --uts host, else the id's first 12 characters. */
export function containerHostname(opts: { hostname?: string; uts?: string }, id: string): string {
  return opts.hostname ?? (opts.uts === 'host' ? os.hostname() : id.slice(0, 12));
}

/** "512m", "1g", "1024" -> bytes. @throws BerthError USAGE */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(v.trim());
  if (!m) throw new BerthError('USAGE', `${flag} "${v}" is not a size`, { hint: 'use a number with an optional unit: 512m, 2g, 65536k' });
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  // Past 2^53 a double no longer counts bytes exactly (and the OCI field is an int64).
  if (!Number.isSafeInteger(n)) throw new BerthError('USAGE', `${flag} "${v}" is too large`, { hint: 'give a smaller size (at most 8388607g), or leave the flag out for no limit' });
  return n;
}

/** Docker's (and the kernel's practical) floor: a smaller limit kills the init before it runs. */
const MIN_MEMORY = 6 * 1024 ** 2;

/** 2^64 - 1 as a double (2^64): the OCI spec's RLIM_INFINITY; the runtime maps it to infinity. */
const RLIM_INFINITY = 2 ** 64;

/** The kernel's ceiling for RLIMIT_NOFILE (fs.nr_open); setrlimit(2) fails with EPERM above it. */
function nrOpen(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/fs/nr_open', 'utf8').trim()) || 1048576;
  } catch {
    return 1048576;
  }
}

function capName(c: string): string {
  const up = c.toUpperCase();
  return up === 'ALL' ? up : up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/** Docker's rule: start from the defaults (or all), drop, then add. */
export function capabilities(opts: Pick<RunOptions, 'capAdd' | 'capDrop' | 'privileged'>): string[] {
  for (const c of [...opts.capAdd, ...opts.capDrop].map(capName)) {
    if (c !== 'ALL' && !CAPABILITIES.includes(c)) {
      throw new BerthError('USAGE', `unknown capability "${c}"`, { hint: 'names look like NET_ADMIN or CAP_NET_ADMIN (see capabilities(7))' });
    }
  }
  // What the host cannot give, no container gets: --privileged means all the host has.
  const host = hostBoundingSet();
  const unavailable = opts.capAdd.map(capName).filter((c) => c !== 'ALL' && !host.has(c));
  if (unavailable.length) {
    throw new BerthError('USAGE', `--cap-add ${unavailable.join(', ')}: not available on this host (not in berth's bounding set)`);
  }
  if (opts.privileged) return CAPABILITIES.filter((c) => host.has(c));
  const drop = opts.capDrop.map(capName);
  const add = opts.capAdd.map(capName);
  let caps = drop.includes('ALL') ? [] : DEFAULT_CAPS.filter((c) => !drop.includes(c));
  caps = add.includes('ALL') ? CAPABILITIES.filter((c) => host.has(c)) : [...new Set([...caps, ...add])];
  return caps.filter((c) => host.has(c));
}

/** Reads ROOTFS/PATH without following a symlink out of ROOTFS; undefined if absent. */
export function readInRoot(rootfs: string, file: string): string | undefined {
  const dirfd = fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const fd = native().openat2(dirfd, file, fs.constants.O_RDONLY);
    try {
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  } finally {
    fs.closeSync(dirfd);
  }
}

/**
 * -v, --mount and --tmpfs may not cover the container's root or its /proc (which the
 * runtime mounts and then masks): said up front (volumes.ts checks before it makes a named
 * volume), naming the flag, not as a config.json field or a failed mask of /sys/firmware.
 * @throws BerthError USAGE
 */
export function checkMountTarget(flag: string, target: string): void {
  const dst = path.posix.resolve('/', target);
  if (dst === '/' || dst === '/proc') {
    throw new BerthError('USAGE', `${flag}: cannot mount on "${target}": it is the container's ${dst === '/' ? 'root directory' : '/proc'}`, {
      hint: 'mount onto a directory inside the container, e.g. /data',
    });
  }
}

/**
 * One -e / --env-file entry, NAME=VALUE or NAME. As Docker's, a NAME that is empty or holds
 * white space is refused (`--env-file` with "KEY = value" passed "KEY " on), and so is a NUL,
 * which execve(2) would silently cut the variable at. @throws BerthError USAGE
 */
export function checkEnvFlag(e: string): void {
  const i = e.indexOf('=');
  const name = i < 0 ? e : e.slice(0, i);
  if (!name) throw new BerthError('USAGE', `environment variable "${e}" must be NAME=VALUE or NAME`);
  if (e.includes('\0')) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
    throw new BerthError('USAGE', `environment variable ${shown} holds a NUL byte`, { hint: 'an environment string cannot hold NUL; is --env-file a text file?' });
  }
  if (/\s/.test(name)) {
    throw new BerthError('USAGE', `environment variable ${JSON.stringify(e)}: the name ${JSON.stringify(name)} contains white space`, {
      hint: 'write NAME=VALUE, with no spaces around "="',
    });
  }
}

/** -w / --workdir: the runtime needs an absolute path. @throws BerthError USAGE */
export function checkWorkdir(dir: string): void {
  if (!dir.startsWith('/')) {
    throw new BerthError('USAGE', `--workdir "${dir}" is not an absolute path`, { hint: `give the directory from the container's root, e.g. -w /${dir || 'app'}` });
  }
}

/**
 * Resolves USER ("name", "uid", "name:group", "uid:gid") against the image's own
 * /etc/passwd and /etc/group, as Docker does.
 * @throws BerthError USER_NOT_FOUND
 */
export function resolveUser(rootfs: string, user: string | undefined): { uid: number; gid: number; additionalGids: number[]; home: string } {
  const passwdRows = (readInRoot(rootfs, '/etc/passwd') ?? '').split('\n').map((l) => l.split(':'));
  if (!user) return { uid: 0, gid: 0, additionalGids: [], home: passwdRows.find((p) => p[2] === '0')?.[5] || '/root' };
  const [u, g] = user.split(':');
  const passwd = passwdRows;
  const groups = (readInRoot(rootfs, '/etc/group') ?? '').split('\n').map((l) => l.split(':'));
  let uid: number;
  let gid = 0;
  let name: string | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = passwd.find((p) => p[2] === u);
    if (row) {
      gid = Number(row[3]);
      name = row[0];
    }
  } else {
    const row = passwd.find((p) => p[0] === u);
    if (!row) {
      throw new BerthError('USER_NOT_FOUND', `user "${u}" is not in the image's /etc/passwd`, { hint: 'give a numeric uid, or a user the image has' });
    }
    uid = Number(row[2]);
    gid = Number(row[3]);
    name = u;
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = groups.find((r) => r[0] === g);
      if (!row) throw new BerthError('USER_NOT_FOUND', `group "${g}" is not in the image's /etc/group`);
      gid = Number(row[2]);
    }
  }
  // As Docker's: ids past 2^31 - 1 are refused (the kernel's id_t is 32 bits, -1 is special).
  for (const [what, id] of [['uid', uid], ['gid', gid]] as const) {
    if (id > 2147483647) throw new BerthError('USAGE', `user "${user}": ${what} ${id} is out of range`, { hint: 'uids and gids go from 0 to 2147483647' });
  }
  const additionalGids = name ? groups.filter((r) => (r[3] ?? '').split(',').includes(name!)).map((r) => Number(r[2])).filter((x) => x !== gid) : [];
  return { uid, gid, additionalGids, home: passwd.find((p) => p[2] === String(uid))?.[5] || '/' };
}

export function parseVolume(v: string): Mount {
  const parts = v.split(':');
  const [src, dst, mode] = parts;
  if (parts.length < 2 || parts.length > 3 || !src || !dst) {
    throw new BerthError('USAGE', `-v "${v}" must be HOST-PATH:CONTAINER-PATH[:ro|rw]`);
  }
  if (!src.startsWith('/')) {
    throw new BerthError('USAGE', `-v "${v}": the host path "${src}" must be absolute`, {
      hint: 'give an absolute host path (-v "$PWD/data:/data") or a volume name (-v data:/data)',
    });
  }
  if (!dst.startsWith('/')) throw new BerthError('USAGE', `-v "${v}": the container path "${dst}" must be absolute`);
  if (mode && mode !== 'ro' && mode !== 'rw') throw new BerthError('USAGE', `-v "${v}": mode must be ro or rw`);
  if (!fs.existsSync(src)) {
    throw new BerthError('USAGE', `-v "${v}": the host path "${src}" does not exist`, { hint: 'create it first' });
  }
  return { destination: dst, type: 'bind', source: src, options: ['rbind', 'rprivate', ...(mode === 'ro' ? ['ro'] : [])] };
}

/** Where `--init` finds its init on the host, and where the container sees it (podman's). */
export const tiniPath = (): string => `${topDir()}/native/build/berth-tini`;
export const INIT_IN_CONTAINER = '/dev/init';

const RLIMIT_NAMES = ['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc',
  'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** /proc/self/limits rows, by --ulimit name. */
const LIMITS_ROWS: Record<string, string> = {
  as: 'Max address space', core: 'Max core file size', cpu: 'Max cpu time', data: 'Max data size', fsize: 'Max file size',
  locks: 'Max file locks', memlock: 'Max locked memory', msgqueue: 'Max msgqueue size', nice: 'Max nice priority',
  nofile: 'Max open files', nproc: 'Max processes', rss: 'Max resident set', rtprio: 'Max realtime priority',
  rttime: 'Max realtime timeout', sigpending: 'Max pending signals', stack: 'Max stack size',
};

/** This process's hard limit NAME (the container's init inherits it); undefined if unlimited or unknown. */
function hostHardLimit(name: string): number | undefined {
  try {
    const row = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(`${LIMITS_ROWS[name]}  `));
    const hard = row?.slice(LIMITS_ROWS[name].length).trim().split(/\s+/)[1];
    return hard && /^\d+$/.test(hard) ? Number(hard) : undefined;
  } catch {
    return undefined;
  }
}

/** `--ulimit nofile=1024[:2048]` (-1 or "unlimited": no limit) -> process.rlimits. @throws BerthError USAGE */
export function parseUlimits(flags: string[], inUserns = false): { type: string; soft: number; hard: number }[] {
  const canRaise = !inUserns && hostBoundingSet().has('CAP_SYS_RESOURCE');
  const out = new Map<string, { type: string; soft: number; hard: number }>();
  for (const f of flags) {
    const m = /^([a-z]+)=(-?\d+|unlimited)(?::(-?\d+|unlimited))?$/.exec(f.trim());
    if (!m || !RLIMIT_NAMES.includes(m[1])) {
      throw new BerthError('USAGE', `--ulimit "${f}" must be NAME=SOFT[:HARD]`, { hint: `NAME is one of ${RLIMIT_NAMES.join(', ')}` });
    }
    // -1 and "unlimited" are RLIM_INFINITY, as Docker's (--ulimit memlock=-1:-1).
    const num = (v: string) => {
      if (v === 'unlimited' || v === '-1') return RLIM_INFINITY;
      const n = Number(v);
      if (n < 0 || !Number.isSafeInteger(n)) {
        throw new BerthError('USAGE', `--ulimit "${f}": ${v} is not a limit`, { hint: 'give a number from 0 to 2^53 - 1, or -1 / unlimited for no limit' });
      }
      return n;
    };
    const soft = num(m[2]);
    const hard = m[3] !== undefined ? num(m[3]) : soft;
    if (soft > hard) throw new BerthError('USAGE', `--ulimit "${f}": the soft limit is above the hard limit`);
    if (m[1] === 'nofile' && hard > nrOpen()) {
      throw new BerthError('USAGE', `--ulimit "${f}": nofile cannot be ${hard === RLIM_INFINITY ? 'unlimited' : `above the kernel's maximum (fs.nr_open = ${nrOpen()})`}`, {
        hint: `give at most ${nrOpen()}, or raise fs.nr_open with sysctl`,
      });
    }
    // Raising a hard limit takes CAP_SYS_RESOURCE in the initial user namespace; without it
    // setrlimit(2) in the container's init fails with a bare EPERM: say which limit, here.
    if (!canRaise) {
      const ceiling = hostHardLimit(m[1]);
      if (ceiling !== undefined && hard > ceiling) {
        throw new BerthError('USAGE', `--ulimit "${f}": the hard limit is above this host's (${ceiling}), and berth cannot raise it (no CAP_SYS_RESOURCE${inUserns ? ' for a container in a user namespace' : ''})`, {
          hint: `give a hard limit of at most ${ceiling}`,
        });
      }
    }
    out.set(m[1], { type: `RLIMIT_${m[1].toUpperCase()}`, soft, hard });
  }
  return [...out.values()];
}

export interface SpecInput {
  id: string;
  rootfs: string;
  image: ImageConfigFields;
  opts: RunOptions;
  /** Files generated for the container: [container path, host path]. */
  etcFiles: [string, string][];
  /** -v and --mount resolved by volumes.ts (named volumes created); else -v is binds only. */
  volumeMounts?: Mount[];
  /**
   * The network namespace (network/index.ts): a path to join (the container's own
   * bind-mounted one, or a container: peer's), null for the host's, undefined for a new one.
   */
  netns?: string | null;
  /** A user namespace with these maps (--userns, userns.ts); none when undefined. */
  userns?: { uidMappings: { containerID: number; hostID: number; size: number }[];
    gidMappings: { containerID: number; hostID: number; size: number }[] };
}

/** @throws BerthError USAGE, USER_NOT_FOUND, RUN_NO_COMMAND */
export function buildSpec(input: SpecInput): Spec {
  const { opts, image } = input;
  const entrypoint = opts.entrypoint !== undefined ? (opts.entrypoint ? [opts.entrypoint] : []) : image.Entrypoint ?? [];
  const cmd = opts.args.length ? opts.args : opts.entrypoint !== undefined ? [] : image.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (!args.length) {
    throw new BerthError('RUN_NO_COMMAND', `image "${opts.image}" has no command, and none was given`, {
      hint: `berth run ${opts.image} COMMAND [ARG...]`,
    });
  }
  if (!args[0]) {
    // As Docker's: an empty program name is not found (127), said in the user's words.
    throw new BerthError('RUNTIME_EXEC_NOT_FOUND', 'the command to run is an empty string', {
      exitCode: 127, hint: `give a program: berth run ${opts.image} COMMAND, or --entrypoint PROGRAM`,
    });
  }
  const hostname = containerHostname(opts, input.id);
  const env = new Map<string, string>();
  // -e NAME alone passes the host's value on, or nothing when it is unset (as Docker's).
  opts.env.forEach(checkEnvFlag);
  const flagEnv = opts.env.flatMap((e) => (e.includes('=') ? [e] : process.env[e] !== undefined ? [`${e}=${process.env[e]}`] : []));
  for (const e of [DEFAULT_PATH, `HOSTNAME=${hostname}`, ...(opts.tty ? ['TERM=xterm'] : []), ...(image.Env ?? []), ...flagEnv]) {
    const i = e.indexOf('=');
    if (i <= 0) throw new BerthError('USAGE', `environment variable "${e}" must be NAME=VALUE or NAME`);
    env.set(e.slice(0, i), e.slice(i + 1));
  }
  if (opts.workdir !== undefined) checkWorkdir(opts.workdir);
  const user = resolveUser(input.rootfs, opts.user ?? image.User);
  if (!env.has('HOME')) env.set('HOME', user.home);
  const caps = capabilities(opts);
  const security = parseSecurityOpts(opts.securityOpts ?? []);
  const seccomp = containerSeccomp(security, caps, opts.privileged);

  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    // gid=5 (tty) only where it is mapped: devpts refuses an unmapped gid (--userns=auto:size=1).
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620',
      ...(!input.userns || input.userns.gidMappings.some((m) => m.containerID <= 5 && 5 < m.containerID + m.size) ? ['gid=5'] : [])] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // In a user namespace sysfs mounts only with a network namespace that namespace owns, and
    // the container's is made before it (network/): the host's /sys, read-only, as rootless
    // podman does.
    input.userns
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', opts.privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', opts.privileged ? 'rw' : 'ro'] },
    ...input.etcFiles.map(([dst, src]): Mount => ({ destination: dst, type: 'bind', source: src, options: ['rbind', 'rprivate'] })),
    ...opts.tmpfs.map((t): Mount => {
      const [dst, o] = t.split(':');
      if (!dst.startsWith('/')) throw new BerthError('USAGE', `--tmpfs "${t}": the path must be absolute`);
      checkMountTarget(`--tmpfs "${t}"`, dst);
      return { destination: dst, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(o ? o.split(',') : ['noexec'])] };
    }),
    ...(input.volumeMounts ?? opts.volumes.map(parseVolume)),
    ...(opts.init ? [{ destination: INIT_IN_CONTAINER, type: 'bind', source: tiniPath(), options: ['bind', 'ro', 'nosuid', 'nodev'] }] : []),
  ];

  const resources: NonNullable<NonNullable<Spec['linux']>['resources']> = { devices: [{ allow: false, access: 'rwm' }] };
  if (opts.memory) {
    const limit = parseBytes('--memory', opts.memory);
    if (limit < MIN_MEMORY) {
      throw new BerthError('USAGE', `--memory "${opts.memory}" is below the minimum of 6m`, { hint: 'give 6m or more; a smaller limit kills the container before it starts' });
    }
    resources.memory = { limit };
  }
  if (opts.pidsLimit) {
    if (!/^-?\d+$/.test(opts.pidsLimit)) throw new BerthError('USAGE', `--pids-limit "${opts.pidsLimit}" is not a number`);
    if (!Number.isSafeInteger(Number(opts.pidsLimit))) {
      throw new BerthError('USAGE', `--pids-limit "${opts.pidsLimit}" is too large`, { hint: 'give a number of processes, or -1 for no limit' });
    }
    resources.pids = { limit: Number(opts.pidsLimit) };
  }
  if (opts.cpus) {
    const n = Number(opts.cpus);
    const ncpu = os.cpus().length;
    if (opts.cpus.trim() === '' || Number.isNaN(n)) {
      throw new BerthError('USAGE', `--cpus "${opts.cpus}" is not a number`, { hint: `give a number of CPUs from 0.01 to ${ncpu}, e.g. --cpus 1.5` });
    }
    if (!(n >= 0.01 && n <= ncpu)) {
      throw new BerthError('USAGE', `--cpus "${opts.cpus}" is out of range: this host has ${ncpu} CPUs`, { hint: `give a number from 0.01 to ${ncpu}` });
    }
    resources.cpu = { quota: Math.round(n * 100000), period: 100000 };
  }
  moreResources(opts, resources);

  return {
    ociVersion: '1.0.2',
    process: {
      terminal: opts.tty, user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: opts.init ? [INIT_IN_CONTAINER, '--', ...args] : args, env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: opts.workdir ?? (image.WorkingDir || '/'),
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: security.noNewPrivileges,
      ...(opts.ulimits?.length ? { rlimits: parseUlimits(opts.ulimits, !!input.userns) } : {}),
    },
    root: { path: input.rootfs, readonly: opts.readOnly },
    hostname,
    mounts,
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' },
        ...(input.netns === null ? [] : [input.netns ? { type: 'network' as const, path: input.netns } : { type: 'network' as const }]),
        { type: 'cgroup' }, ...(input.userns ? [{ type: 'user' as const }] : [])],
      ...(input.userns ? { uidMappings: input.userns.uidMappings, gidMappings: input.userns.gidMappings } : {}),
      cgroupsPath: `/berth/${input.id}`,
      resources,
      maskedPaths: opts.privileged ? [] : MASKED_PATHS,
      readonlyPaths: opts.privileged ? [] : READONLY_PATHS,
      ...(seccomp ? { seccomp } : {}),
    },
  };
}

type Resources = NonNullable<NonNullable<Spec['linux']>['resources']>;

/** The highest CPU or memory node number this host has ("0-1,3" in a sysfs list). */
function lastOnline(file: string, fallback: number): number {
  try {
    return Math.max(...fs.readFileSync(file, 'utf8').trim().split(',').map((r) => Number(r.split('-').pop())));
  } catch {
    return fallback;
  }
}

/**
 * --memory-swap, --memory-reservation, --cpu-shares, --cpuset-cpus and --cpuset-mems into
 * RESOURCES, checked as Docker checks them.
 * @throws BerthError USAGE
 */
function moreResources(opts: RunOptions, resources: Resources): void {
  const limit = resources.memory?.limit;
  // As Docker's: 0 is "not set" for --memory-swap and --cpu-shares.
  if (opts.memorySwap !== undefined && opts.memorySwap.trim() !== '0') {
    if (limit === undefined) {
      throw new BerthError('USAGE', '--memory-swap needs --memory', { hint: '--memory-swap is memory plus swap: give both, e.g. -m 256m --memory-swap 512m' });
    }
    const swap = opts.memorySwap.trim() === '-1' ? -1 : parseBytes('--memory-swap', opts.memorySwap);
    if (swap !== -1 && swap < limit) {
      throw new BerthError('USAGE', `--memory-swap "${opts.memorySwap}" is less than --memory "${opts.memory}"`, {
        hint: '--memory-swap counts memory plus swap: give at least --memory, or -1 for unlimited swap',
      });
    }
    resources.memory = { ...resources.memory, swap };
  }
  if (opts.memoryReservation !== undefined) {
    const reservation = parseBytes('--memory-reservation', opts.memoryReservation);
    if (limit !== undefined && reservation > limit) {
      throw new BerthError('USAGE', `--memory-reservation "${opts.memoryReservation}" is more than --memory "${opts.memory}"`, {
        hint: 'the reservation is a soft limit below the hard one',
      });
    }
    resources.memory = { ...resources.memory, reservation };
  }
  const cpu: NonNullable<Resources['cpu']> = { ...resources.cpu };
  if (opts.cpuShares !== undefined && opts.cpuShares.trim() !== '0') {
    const n = Number(opts.cpuShares);
    if (!/^\d+$/.test(opts.cpuShares.trim()) || n < 2 || n > 262144) {
      throw new BerthError('USAGE', `--cpu-shares "${opts.cpuShares}" is not a number from 2 to 262144`, { hint: 'the default weight is 1024; half of it is 512' });
    }
    cpu.shares = n;
  }
  for (const [flag, v, file, what] of [
    ['--cpuset-cpus', opts.cpusetCpus, '/sys/devices/system/cpu/online', 'CPUs'],
    ['--cpuset-mems', opts.cpusetMems, '/sys/devices/system/node/online', 'memory nodes'],
  ] as const) {
    if (v === undefined) continue;
    const max = lastOnline(file, flag === '--cpuset-cpus' ? os.cpus().length - 1 : 0);
    const ranges = /^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v) ? v.split(',').map((r) => r.split('-').map(Number)) : undefined;
    if (!ranges || ranges.some(([a, b]) => (b !== undefined && b < a))) {
      throw new BerthError('USAGE', `${flag} "${v}" is not a list of ${what}`, { hint: `give numbers and ranges, e.g. ${flag} 0-1,3` });
    }
    if (ranges.some((r) => Math.max(...r) > max)) {
      throw new BerthError('USAGE', `${flag} "${v}" names ${what} this host does not have (0-${max})`, { hint: `give ${what} from 0 to ${max}` });
    }
    if (flag === '--cpuset-cpus') cpu.cpus = v;
    else cpu.mems = v;
  }
  if (Object.keys(cpu).length) resources.cpu = cpu;
}
