// `--userns` and `--uidmap`/`--gidmap` for berth run/create: which host ids a container's
// user namespace maps to. Called by engine/run.ts before the container's root filesystem
// is mounted (the layers are id-mapped with the same maps, storage/overlay.ts) and by
// ContainerStore.remove, which releases the range. Node host process, as root.
//
// --userns=auto[:size=N] takes N ids (default 65536) from the ranges /etc/subuid and
// /etc/subgid give to the user "containers", as podman's rootful --userns=auto does. Each
// allocation is a record <root>/userns/<container id>.json; allocations are made under the
// lock <root>/userns/lock, so concurrent runs get disjoint ranges. A record whose
// container directory is gone (a berth killed between the two) is reclaimed by the next
// allocation. Explicit maps (--uidmap C:H:N) must lie inside the same subordinate ranges
// and may be shared by containers on purpose, but never overlap an auto allocation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno } from '../common/errors';
import { withLock } from '../common/lock';
import { probeIdmappedOverlay } from '../storage/idmap';
import { ContainerStore } from './containers';
import { parseMountFlag, parseVolumeFlag } from './volumes';

/** One line of linux.uidMappings / gidMappings (OCI). */
export interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

/** A container's user namespace as recorded (ContainerRecord.userns, the allocation file). */
export interface UsernsConfig {
  /** auto: allocated by berth; private: the maps given with --uidmap/--gidmap. */
  mode: 'auto' | 'private';
  uidMappings: IdMap[];
  gidMappings: IdMap[];
}

/** What the flags ask for; `host` (the default) is no user namespace. */
export type UsernsRequest =
  | { mode: 'host' }
  | { mode: 'auto'; size: number }
  | { mode: 'private'; uidMappings: IdMap[]; gidMappings: IdMap[] };

/** The user whose subordinate ids --userns=auto uses (podman's, for rootful containers). */
export const SUBID_USER = 'containers';
export const DEFAULT_AUTO_SIZE = 65536;
const MAX_ID = 2 ** 32 - 1; // (uid_t)-1 is never a valid id
const MAX_MAP_LINES = 340;

export interface SubidFiles {
  subuid: string;
  subgid: string;
}
const SYSTEM_SUBIDS: SubidFiles = { subuid: '/etc/subuid', subgid: '/etc/subgid' };

interface Range {
  start: number;
  count: number;
}

// ---- parsing ---------------------------------------------------------------------------

/** "C:H:N" (podman's --uidmap) -> a map line. @throws BerthError USERNS_INVALID_MAP */
export function parseIdMap(flag: string, v: string): IdMap {
  const m = /^(\d+):(\d+):(\d+)$/.exec(v.trim());
  const bad = (why: string) => new BerthError('USERNS_INVALID_MAP', `${flag} "${v}": ${why}`, {
    hint: `${flag} CONTAINER_ID:HOST_ID:COUNT, e.g. ${flag} 0:200000:65536`,
  });
  if (!m) throw bad('not CONTAINER_ID:HOST_ID:COUNT');
  const [containerID, hostID, size] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (size < 1) throw bad('COUNT must be at least 1');
  if (containerID + size > MAX_ID || hostID + size > MAX_ID) throw bad('the range goes past the last id (4294967294)');
  return { containerID, hostID, size };
}

function checkNoOverlap(flag: string, maps: IdMap[], side: 'containerID' | 'hostID'): void {
  const sorted = [...maps].sort((a, b) => a[side] - b[side]);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i][side] < sorted[i - 1][side] + sorted[i - 1].size) {
      throw new BerthError('USERNS_INVALID_MAP', `${flag}: the ${side === 'hostID' ? 'host' : 'container'} ranges of `
        + `${fmt(sorted[i - 1])} and ${fmt(sorted[i])} overlap`, { hint: 'each id may be mapped once (user_namespaces(7))' });
    }
  }
}

/** "0:100000:65536", as podman's inspect shows a map line. */
export const fmt = (m: IdMap): string => `${m.containerID}:${m.hostID}:${m.size}`;

/**
 * --userns, --uidmap and --gidmap -> what they ask for. Podman's rules: --uidmap alone also
 * maps the gids the same way; --userns=auto takes `size=N`.
 * @throws BerthError USAGE, USERNS_INVALID_MAP
 */
export function parseUsernsOptions(userns: string | undefined, uidmap: string[] = [], gidmap: string[] = []): UsernsRequest {
  const explicit = uidmap.length > 0 || gidmap.length > 0;
  const mode = userns ?? (explicit ? 'private' : 'host');
  const [name, ...optList] = mode.split(':');
  if (explicit && name !== 'private') {
    throw new BerthError('USAGE', `--userns=${mode} and --uidmap/--gidmap cannot be combined`, {
      hint: 'give either --userns=auto[:size=N] or explicit --uidmap/--gidmap maps',
    });
  }
  if (name === 'host' || name === '') {
    if (optList.length) throw new BerthError('USAGE', `--userns=${mode}: host takes no options`);
    return { mode: 'host' };
  }
  if (name === 'auto') {
    let size = DEFAULT_AUTO_SIZE;
    for (const o of optList.join(':').split(',').filter(Boolean)) {
      const m = /^size=(\d+)$/.exec(o);
      if (!m) {
        throw new BerthError('USAGE', `--userns=${mode}: option "${o}" is not supported`, {
          hint: 'berth supports --userns=auto[:size=N]; use --uidmap/--gidmap for explicit maps',
        });
      }
      size = Number(m[1]);
      if (size < 1 || size > MAX_ID) throw new BerthError('USERNS_SIZE', `--userns=${mode}: size must be from 1 to ${MAX_ID}`);
    }
    return { mode: 'auto', size };
  }
  if (name === 'private' && explicit) {
    const uids = uidmap.map((v) => parseIdMap('--uidmap', v));
    const gids = gidmap.length ? gidmap.map((v) => parseIdMap('--gidmap', v)) : uids.map((m) => ({ ...m }));
    if (!uids.length) throw new BerthError('USAGE', '--gidmap needs --uidmap too', { hint: 'give the uid maps with --uidmap C:H:N' });
    checkNoOverlap('--uidmap', uids, 'containerID');
    checkNoOverlap('--uidmap', uids, 'hostID');
    checkNoOverlap('--gidmap', gids, 'containerID');
    checkNoOverlap('--gidmap', gids, 'hostID');
    for (const [flag, maps] of [['--uidmap', uids], ['--gidmap', gids]] as const) {
      // The kernel takes at most 340 lines in uid_map and gid_map, written at once in less
      // than a page (user_namespaces(7)).
      if (maps.length > MAX_MAP_LINES || maps.reduce((n, m) => n + `${m.containerID} ${m.hostID} ${m.size}\n`.length, 0) >= 4096) {
        throw new BerthError('USERNS_INVALID_MAP', `${flag}: ${maps.length} maps are more than the kernel takes (${MAX_MAP_LINES} lines `
          + 'and 4095 bytes at most)', {
          hint: 'join adjacent ranges into one CONTAINER_ID:HOST_ID:COUNT',
        });
      }
      // The container's init becomes root inside before anything else: id 0 must be mapped.
      if (!maps.some((m) => m.containerID === 0)) {
        throw new BerthError('USERNS_INVALID_MAP', `${flag}: no map for container id 0 (root)`, {
          hint: `map id 0 too, e.g. ${flag} 0:${maps[0].hostID}:${maps[0].size}`,
        });
      }
    }
    return { mode: 'private', uidMappings: uids, gidMappings: gids };
  }
  throw new BerthError('USAGE', `--userns=${mode} is not supported`, {
    hint: 'use --userns=host (the default), --userns=auto[:size=N], or --uidmap/--gidmap',
  });
}

// ---- /etc/subuid and /etc/subgid -------------------------------------------------------

/**
 * The ranges FILE (subuid(5) format, "name-or-uid:start:count") gives to USER, sorted.
 * @throws BerthError USERNS_NO_SUBIDS when there is none
 */
export function readSubids(file: string, user = SUBID_USER): Range[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  const uid = userUid(user);
  const ranges = text.split('\n').map((l) => l.trim().split(':'))
    .filter((f) => f.length === 3 && (f[0] === user || (uid !== undefined && f[0] === String(uid)))
      && /^\d+$/.test(f[1]) && /^\d+$/.test(f[2]) && Number(f[2]) > 0)
    .map((f) => ({ start: Number(f[1]), count: Number(f[2]) }))
    .sort((a, b) => a.start - b.start);
  if (!ranges.length) {
    throw new BerthError('USERNS_NO_SUBIDS', `${file} has no range for the user "${user}"`, {
      context: { path: file },
      hint: `add a line such as "${user}:2147483647:2147483648" to /etc/subuid and /etc/subgid (setup.sh does)`,
    });
  }
  return ranges;
}

function userUid(user: string): number | undefined {
  try {
    const row = fs.readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === user);
    return row ? Number(row[2]) : undefined;
  } catch {
    return undefined;
  }
}

/** Adjacent or overlapping ranges joined, so that a map may span two lines. */
function merged(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && r.start <= last.start + last.count) last.count = Math.max(last.count, r.start + r.count - last.start);
    else out.push({ ...r });
  }
  return out;
}

function covered(ranges: Range[], m: IdMap): boolean {
  return merged(ranges).some((r) => m.hostID >= r.start && m.hostID + m.size <= r.start + r.count);
}

const overlaps = (a: Range, b: Range): boolean => a.start < b.start + b.count && b.start < a.start + a.count;

/**
 * Checks the request against /etc/subuid and /etc/subgid before anything is created:
 * their ranges for "containers" exist, explicit maps lie inside them, an auto size fits.
 * @throws BerthError USERNS_NO_SUBIDS, USERNS_NOT_SUBORDINATE, USERNS_SIZE
 */
export function checkUsernsRequest(req: UsernsRequest, files: SubidFiles = SYSTEM_SUBIDS): void {
  if (req.mode === 'host') return;
  for (const [file, kind] of [[files.subuid, 'uid'], [files.subgid, 'gid']] as const) {
    const ranges = readSubids(file);
    if (req.mode === 'auto') {
      const largest = Math.max(...merged(ranges).map((r) => r.count));
      if (req.size > largest) {
        throw new BerthError('USERNS_SIZE', `--userns=auto:size=${req.size}: the largest ${kind} range for "${SUBID_USER}" `
          + `in ${file} holds ${largest} ids`, { hint: `ask for at most size=${largest}, or give "${SUBID_USER}" a larger range in ${file}` });
      }
      continue;
    }
    for (const m of kind === 'uid' ? req.uidMappings : req.gidMappings) {
      if (!covered(ranges, m)) {
        throw new BerthError('USERNS_NOT_SUBORDINATE', `--${kind}map ${fmt(m)}: host ${kind}s ${m.hostID}-${m.hostID + m.size - 1} `
          + `are not in the ranges ${file} gives to "${SUBID_USER}"`, {
          context: { path: file },
          hint: `map host ids from ${merged(ranges).map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ')}, or use --userns=auto`,
        });
      }
    }
  }
}

// ---- allocation ------------------------------------------------------------------------

const allocDir = (root: string): string => path.join(root, 'userns');
const allocFile = (root: string, id: string): string => path.join(allocDir(root), `${id}.json`);

/** Every recorded allocation whose container still exists; stale records are removed. */
function liveAllocations(root: string): Map<string, UsernsConfig> {
  const out = new Map<string, UsernsConfig>();
  for (const f of fs.readdirSync(allocDir(root))) {
    const m = /^([0-9a-f]{64})\.json$/.exec(f);
    if (!m) continue;
    // The container directory exists before its allocation is written (run.ts), so a record
    // without one belongs to a container that is gone without releasing it (a crash).
    if (!fs.existsSync(path.join(root, 'containers', m[1]))) {
      fs.rmSync(path.join(allocDir(root), f), { force: true });
      continue;
    }
    // A directory whose creator was killed before it wrote container.json: removed (with
    // this record) once no berth holds it.
    if (new ContainerStore(root).reclaimOrphan(m[1])) continue;
    try {
      out.set(m[1], JSON.parse(fs.readFileSync(path.join(allocDir(root), f), 'utf8')) as UsernsConfig);
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

/** The first SIZE ids inside RANGES that overlap nothing in USED. */
function firstFree(ranges: Range[], used: Range[], size: number): number | undefined {
  for (const r of merged(ranges)) {
    let start = r.start;
    for (;;) {
      if (start + size > r.start + r.count) break;
      const hit = used.find((u) => overlaps(u, { start, count: size }));
      if (!hit) return start;
      start = hit.start + hit.count;
    }
  }
  return undefined;
}

const hostRanges = (maps: IdMap[]): Range[] => maps.map((m) => ({ start: m.hostID, count: m.size }));

/**
 * Gives container ID its user namespace and records it, under <root>/userns/lock; the
 * container's directory must exist already. Undefined for --userns=host.
 * @throws BerthError USERNS_NO_SUBIDS, USERNS_NOT_SUBORDINATE, USERNS_SIZE, USERNS_EXHAUSTED,
 *   USERNS_RANGE_IN_USE, STORAGE_LOCK
 */
export async function allocateUserns(root: string, id: string, req: UsernsRequest,
  files: SubidFiles = SYSTEM_SUBIDS): Promise<UsernsConfig | undefined> {
  if (req.mode === 'host') return undefined;
  checkUsernsRequest(req, files);
  return withLock(allocDir(root), () => {
    const others = [...liveAllocations(root)].filter(([other]) => other !== id).map(([, a]) => a);
    let conf: UsernsConfig;
    if (req.mode === 'auto') {
      // Any id another container maps (auto or explicit) is taken.
      const uid = firstFree(readSubids(files.subuid), others.flatMap((a) => hostRanges(a.uidMappings)), req.size);
      const gid = firstFree(readSubids(files.subgid), others.flatMap((a) => hostRanges(a.gidMappings)), req.size);
      if (uid === undefined || gid === undefined) {
        throw new BerthError('USERNS_EXHAUSTED', `no free range of ${req.size} ${uid === undefined ? 'uids' : 'gids'} `
          + `left for --userns=auto (${others.length} containers hold theirs)`, {
          hint: `remove containers that use --userns=auto, ask for a smaller size, or give "${SUBID_USER}" more ids in `
            + `${uid === undefined ? files.subuid : files.subgid}`,
        });
      }
      conf = { mode: 'auto', uidMappings: [{ containerID: 0, hostID: uid, size: req.size }],
        gidMappings: [{ containerID: 0, hostID: gid, size: req.size }] };
    } else {
      for (const a of others.filter((o) => o.mode === 'auto')) {
        for (const [kind, mine, theirs] of [['uid', req.uidMappings, a.uidMappings], ['gid', req.gidMappings, a.gidMappings]] as const) {
          const clash = mine.find((m) => hostRanges(theirs).some((t) => overlaps(t, { start: m.hostID, count: m.size })));
          if (clash) {
            throw new BerthError('USERNS_RANGE_IN_USE', `--${kind}map ${fmt(clash)}: those host ${kind}s belong to a container `
              + 'run with --userns=auto', { hint: 'choose host ids no --userns=auto container holds (berth inspect shows theirs)' });
          }
        }
      }
      conf = { mode: 'private', uidMappings: req.uidMappings, gidMappings: req.gidMappings };
    }
    writeFileAtomic(allocFile(root, id), JSON.stringify(conf), 0o600, false);
    return conf;
  });
}

/** Releases container ID's ids (nothing recorded is fine). No lock: the unlink is atomic. */
export function releaseUserns(root: string, id: string): void {
  fs.rmSync(allocFile(root, id), { force: true });
}

/**
 * Volumes live in <root>/volumes, which only host root may enter, and belong to host root:
 * a container whose root is an unprivileged host id could neither mount nor write them.
 * TODO(userns): id-map the volume's bind mount (or chown a new volume to the mapped root,
 * as podman does); until then a volume with --userns is refused before anything is made.
 * @throws BerthError USAGE
 */
export function checkUsernsMounts(req: UsernsRequest, volumes: string[], mounts: string[]): void {
  if (req.mode === 'host') return;
  const vol = [...volumes.map(parseVolumeFlag), ...mounts.map(parseMountFlag)].find((m) => m.type === 'volume');
  if (vol) {
    throw new BerthError('USAGE', `${vol.flag}: volumes are not supported with --userns yet`, {
      hint: 'bind-mount a host directory instead (-v /host/dir:/path), owned by the container\'s mapped ids '
        + '(berth inspect shows HostConfig.IDMappings)',
    });
  }
}

/**
 * The container's user (--user, or the image's) must be one its user namespace maps:
 * setresuid(2) to an unmapped id fails with EINVAL inside berth-init, after the container
 * was made, as a confusing exit 127.
 * @throws BerthError USERNS_USER_UNMAPPED
 */
export function checkUserMapped(conf: UsernsConfig, user: { uid: number; gid: number; additionalGids?: number[] } | undefined): void {
  if (!user) return;
  const ids: [string, number, IdMap[]][] = [['uid', user.uid, conf.uidMappings], ['gid', user.gid, conf.gidMappings],
    ...(user.additionalGids ?? []).map((g): [string, number, IdMap[]] => ['gid', g, conf.gidMappings])];
  for (const [kind, id, maps] of ids) {
    if (hostIdOf(maps, id) === undefined) {
      throw new BerthError('USERNS_USER_UNMAPPED', `the container's ${kind} ${id} is not mapped by its user namespace `
        + `(${maps.map(fmt).join(', ')})`, {
        hint: `run as a user inside the map, or map more ids (--userns=auto:size=N with N above ${id}, or --${kind}map)`,
      });
    }
  }
}

// ---- the container's files -------------------------------------------------------------

/** The host id that container id ID maps to, or undefined. */
export function hostIdOf(maps: IdMap[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.containerID && id < x.containerID + x.size);
  return m ? m.hostID + (id - m.containerID) : undefined;
}

/**
 * Makes the container's own files fit its user namespace: its directory searchable by its
 * root's group (mode 0710; the init, already in the namespace, must reach the root
 * filesystem and the generated /etc files there), and the upper dir (the root
 * filesystem's "/") and FILES owned by its root, so root inside owns them.
 */
export function prepareContainerDirs(dir: string, upper: string, files: string[], conf: UsernsConfig): void {
  const uid = hostIdOf(conf.uidMappings, 0);
  const gid = hostIdOf(conf.gidMappings, 0) ?? conf.gidMappings[0].hostID;
  fs.chownSync(dir, 0, gid);
  fs.chmodSync(dir, 0o710);
  if (uid === undefined) return; // root inside is not mapped: nothing inside can own them
  const rootGid = hostIdOf(conf.gidMappings, 0) ?? -1;
  for (const f of [upper, ...files]) fs.chownSync(f, uid, rootGid);
}

/** `berth info`: whether --userns can work here, and why not. */
export interface UsernsInfo {
  idMappedMounts: boolean;
  /** "yes" or the reason id-mapped layers do not work. */
  detail: string;
  /** The ranges for "containers", e.g. "1048576-68157439", or why there are none. */
  subuid: string;
  subgid: string;
}

/** Probes id-mapped overlay layers in ROOT (its filesystem is the layers'). */
export function usernsInfo(root: string, files: SubidFiles = SYSTEM_SUBIDS): UsernsInfo {
  const why = probeIdmappedOverlay(fs.existsSync(root) ? root : undefined);
  const ranges = (file: string) => {
    try {
      return readSubids(file).map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ');
    } catch (err) {
      return (err as Error).message;
    }
  };
  return { idMappedMounts: !why, detail: why ?? 'yes', subuid: ranges(files.subuid), subgid: ranges(files.subgid) };
}
