// Named and anonymous volumes: <root>/volumes/<name>/_data (the data) beside volume.json
// (what `volume inspect` shows), and the parsing of -v / --mount into OCI mounts. Called by
// cli/commands/volumes.ts, by engine/run.ts (prepareContainer) and by lifecycle.ts (rm -v,
// --rm). Node host process.
//
// Docker's rules kept: `-v NAME:/path` creates NAME on first use; an empty volume is seeded
// with the image's content at /path when it is mounted (unless volume-nocopy); a volume any
// container (running or not) refers to cannot be removed; `volume prune` removes unused
// anonymous volumes, and named ones too with --all (Docker 23+).
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import type { Mount } from '../runtime/spec';
import { ContainerRecord, ContainerStore } from './containers';
import { checkMountTarget, parseVolume } from './spec';

// A volume is a directory named after it, renamed to .removing-NAME-XXXXXXXX to remove it:
// 236 characters keep that within a file name's 255.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,235}$/;

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  /** Created by `-v /path` or `--mount type=volume` without a source. */
  Anonymous?: boolean;
}

/** What a container mounts, as recorded in its container.json and shown by inspect. */
export interface MountRecord {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  RW: boolean;
  Anonymous?: boolean;
}

/** A -v or --mount flag, parsed but not yet resolved. */
interface MountRequest {
  type: 'bind' | 'volume' | 'tmpfs';
  source?: string;
  target: string;
  readonly: boolean;
  noCopy?: boolean;
  tmpfsOptions?: string[];
  flag: string;
}

export class VolumeStore {
  readonly dir: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'volumes');
  }

  path(name: string, ...rest: string[]): string {
    return path.join(this.dir, name, ...rest);
  }

  /**
   * Creates volume NAME (a random one when absent); an existing NAME is returned as it is,
   * as Docker's `volume create` does. Returns the record and whether it was new.
   * @throws BerthError VOLUME_NAME_INVALID
   */
  create(name: string | undefined, opts: { labels?: Record<string, string>; anonymous?: boolean } = {}): { vol: VolumeRecord; isNew: boolean } {
    const n = name ?? randomBytes(32).toString('hex');
    if (!NAME_RE.test(n)) {
      throw new BerthError('VOLUME_NAME_INVALID', `volume name "${n}" is not valid`, {
        hint: 'use 2 to 236 letters, digits, "_", "." or "-", starting with a letter or digit; for a host directory give an absolute path',
      });
    }
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    try {
      fs.mkdirSync(this.path(n), { mode: 0o700 });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const existing = this.find(n);
      if (existing) return { vol: existing, isNew: false };
      // a directory without volume.json: a create that was interrupted; finish it
    }
    fs.mkdirSync(this.path(n, '_data'), { recursive: true, mode: 0o755 });
    const vol: VolumeRecord = {
      Name: n, Driver: 'local', Mountpoint: this.path(n, '_data'), CreatedAt: new Date().toISOString(),
      Labels: opts.labels ?? {}, Scope: 'local', Options: {}, ...(opts.anonymous ? { Anonymous: true } : {}),
    };
    writeFileAtomic(this.path(n, 'volume.json'), JSON.stringify(vol, null, 1), 0o600, false);
    return { vol, isNew: true };
  }

  find(name: string): VolumeRecord | undefined {
    if (!NAME_RE.test(name)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(this.path(name, 'volume.json'), 'utf8')) as VolumeRecord;
    } catch {
      return undefined;
    }
  }

  /** @throws BerthError VOLUME_NOT_FOUND */
  resolve(name: string): VolumeRecord {
    const v = this.find(name);
    if (!v) throw new BerthError('VOLUME_NOT_FOUND', `no such volume: "${name}"`, { hint: 'list volumes with `berth volume ls`' });
    return v;
  }

  list(): VolumeRecord[] {
    const names = fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : [];
    return names.map((n) => this.find(n)).filter((v): v is VolumeRecord => !!v).sort((a, b) => a.Name.localeCompare(b.Name));
  }

  /** Containers (in any state) whose mounts name volume NAME. */
  users(name: string): ContainerRecord[] {
    return new ContainerStore(this.root).list().filter((c) => (c.mounts ?? []).some((m) => m.Type === 'volume' && m.Name === name));
  }

  /**
   * Removes volume NAME and its data. FORCE does not override a container's use: Docker's
   * `volume rm -f` only ignores a volume that does not exist.
   * @throws BerthError VOLUME_NOT_FOUND, VOLUME_IN_USE
   */
  remove(name: string, force = false): boolean {
    if (!this.find(name)) {
      if (force) return false;
      this.resolve(name);
    }
    const users = this.users(name);
    if (users.length) {
      throw new BerthError('VOLUME_IN_USE', `volume "${name}" is in use by container ${users.map((c) => `"${c.name}"`).join(', ')}`, {
        hint: `remove the container first (berth rm ${users[0].name})`,
      });
    }
    // Rename first, so a half-removed volume is never seen as one with lost data.
    const gone = path.join(this.dir, `.removing-${name}-${randomBytes(4).toString('hex')}`);
    fs.renameSync(this.path(name), gone);
    fs.rmSync(gone, { recursive: true, force: true });
    return true;
  }

  /**
   * Removes the volumes no container (even an exited one) uses: anonymous ones, and named
   * ones too with ALL. Returns their names. Call with the engine lock held.
   */
  prune(all: boolean): string[] {
    const gone: string[] = [];
    for (const v of this.list()) {
      if ((v.Anonymous || all) && this.users(v.Name).length === 0 && this.remove(v.Name, true)) gone.push(v.Name);
    }
    return gone;
  }
}

/** Walks P inside ROOTFS, following symlinks as if ROOTFS were "/"; undefined if absent. */
function resolveInRootfs(rootfs: string, p: string): string | undefined {
  const parts = p.split('/').filter((s) => s && s !== '.');
  let cur = '';
  for (let hops = 0; parts.length; ) {
    const part = parts.shift()!;
    if (part === '..') {
      cur = path.posix.dirname(cur || '/');
      if (cur === '/') cur = '';
      continue;
    }
    const next = `${cur}/${part}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(rootfs + next);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = fs.readlinkSync(rootfs + next);
      if (target.startsWith('/')) cur = '';
      parts.unshift(...target.split('/').filter((s) => s && s !== '.'));
      continue;
    }
    cur = next;
  }
  return rootfs + cur;
}

/** Docker's copy-up: an empty volume gets what the image has at its mount point. */
function seedVolume(vol: VolumeRecord, rootfs: string, target: string): void {
  if (fs.readdirSync(vol.Mountpoint).length) return;
  const src = resolveInRootfs(rootfs, target);
  if (!src || !fs.statSync(src).isDirectory() || !fs.readdirSync(src).length) return;
  // cp -a copies symlinks as symlinks, so nothing outside the image is read. child_process
  // is required here, not at the top: it stays out of the start-up snapshot.
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync('cp', ['-a', '--', `${src}/.`, `${vol.Mountpoint}/`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new BerthError('VOLUME_SEED', `copy the image's ${target} into volume "${vol.Name}"`, {
      context: { path: vol.Mountpoint }, hint: (r.stderr || '').trim() || undefined,
    });
  }
  // The volume's root takes the ownership and mode of the image's directory, as Docker's.
  const st = fs.statSync(src);
  fs.chownSync(vol.Mountpoint, st.uid, st.gid);
  fs.chmodSync(vol.Mountpoint, st.mode & 0o7777);
}

export function parseVolumeFlag(v: string): MountRequest {
  const parts = v.split(':');
  if (parts.length === 1) {
    if (!v.startsWith('/')) throw new BerthError('USAGE', `-v "${v}": the container path must be absolute`);
    return { type: 'volume', target: v, readonly: false, flag: `-v "${v}"` };
  }
  const [src, dst, mode] = parts;
  if (parts.length > 3 || !src || !dst) {
    throw new BerthError('USAGE', `-v "${v}" must be HOST-PATH:CONTAINER-PATH[:ro|rw] or VOLUME:CONTAINER-PATH[:ro|rw]`);
  }
  if (!dst.startsWith('/')) throw new BerthError('USAGE', `-v "${v}": the container path "${dst}" must be absolute`);
  const modes = (mode ?? '').split(',').filter(Boolean);
  for (const m of modes) {
    if (!['ro', 'rw', 'nocopy'].includes(m)) throw new BerthError('USAGE', `-v "${v}": mode must be ro, rw or nocopy`);
  }
  if (src.startsWith('/') || src.startsWith('.')) return { type: 'bind', source: src, target: dst, readonly: modes.includes('ro'), flag: `-v "${v}"` };
  return { type: 'volume', source: src, target: dst, readonly: modes.includes('ro'), noCopy: modes.includes('nocopy'), flag: `-v "${v}"` };
}

/** `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly]...`, as Docker's. */
export function parseMountFlag(m: string): MountRequest {
  const flag = `--mount "${m}"`;
  const kv = new Map<string, string | undefined>();
  for (const field of m.split(',').filter(Boolean)) {
    const i = field.indexOf('=');
    kv.set((i < 0 ? field : field.slice(0, i)).toLowerCase(), i < 0 ? undefined : field.slice(i + 1));
  }
  const get = (...keys: string[]) => keys.map((k) => kv.get(k)).find((x) => x !== undefined);
  const type = (kv.get('type') ?? 'volume') as MountRequest['type'];
  if (!['bind', 'volume', 'tmpfs'].includes(type)) {
    throw new BerthError('USAGE', `${flag}: type must be bind, volume or tmpfs`);
  }
  const target = get('target', 'destination', 'dst');
  if (!target || !target.startsWith('/')) {
    throw new BerthError('USAGE', `${flag}: an absolute target is required`, { hint: 'add target=/path/in/container' });
  }
  const ro = kv.has('readonly') || kv.has('ro');
  const roValue = get('readonly', 'ro');
  const readonly = ro && (roValue === undefined || ['1', 'true'].includes(roValue.toLowerCase()));
  const source = get('source', 'src');
  for (const k of kv.keys()) {
    const known = ['type', 'target', 'destination', 'dst', 'source', 'src', 'readonly', 'ro', 'volume-nocopy',
      'bind-propagation', 'tmpfs-size', 'tmpfs-mode', 'consistency'];
    if (!known.includes(k)) throw new BerthError('USAGE', `${flag}: unknown option "${k}"`);
  }
  if (type === 'tmpfs') {
    if (source) throw new BerthError('USAGE', `${flag}: a tmpfs mount has no source`);
    const size = kv.get('tmpfs-size');
    const mode = kv.get('tmpfs-mode');
    const tmpfsOptions = ['nosuid', 'nodev', ...(size ? [`size=${size}`] : []), ...(mode ? [`mode=${mode}`] : []), ...(readonly ? ['ro'] : [])];
    return { type, target, readonly, tmpfsOptions, flag };
  }
  if (type === 'bind' && !source) throw new BerthError('USAGE', `${flag}: a bind mount needs source=/host/path`);
  if (type === 'bind' && !source!.startsWith('/')) throw new BerthError('USAGE', `${flag}: the bind source "${source}" must be absolute`);
  if (type === 'volume' && source?.startsWith('/')) {
    throw new BerthError('USAGE', `${flag}: a volume's source is a volume name`, { hint: 'for a host path use type=bind' });
  }
  return { type, source, target, readonly, noCopy: kv.has('volume-nocopy'), flag };
}

/**
 * Turns -v and --mount flags into OCI mounts, creating (and seeding from ROOTFS, the
 * container's mounted root filesystem) the named and anonymous volumes they need.
 * @throws BerthError USAGE, VOLUME_NAME_INVALID, VOLUME_SEED
 */
export function resolveMounts(root: string, rootfs: string, volumes: string[], mounts: string[]): { mounts: Mount[]; records: MountRecord[] } {
  const requests = [...volumes.map(parseVolumeFlag), ...mounts.map(parseMountFlag)];
  const seen = new Set<string>();
  const store = new VolumeStore(root);
  const out: Mount[] = [];
  const records: MountRecord[] = [];
  for (const r of requests) checkMountTarget(r.flag, r.target);
  try {
    for (const r of requests) {
      const dst = path.posix.normalize(r.target);
      if (seen.has(dst)) throw new BerthError('USAGE', `${r.flag}: duplicate mount point "${dst}"`);
      seen.add(dst);
      if (r.type === 'tmpfs') {
        out.push({ destination: dst, type: 'tmpfs', source: 'tmpfs', options: r.tmpfsOptions });
        records.push({ Type: 'tmpfs', Source: '', Destination: dst, RW: !r.readonly });
      } else if (r.type === 'bind') {
        // The -v form's checks and messages (spec.ts) hold for --mount type=bind too.
        const src = path.resolve(r.source!);
        if (!fs.existsSync(src)) {
          // As Docker's: -v makes a missing host directory, --mount refuses it.
          if (!r.flag.startsWith('-v')) {
            throw new BerthError('USAGE', `${r.flag}: the bind source "${src}" does not exist`, { hint: 'create it first (-v would make it)' });
          }
          try {
            fs.mkdirSync(src, { recursive: true, mode: 0o755 });
          } catch (err) {
            throw wrapSystemError('USAGE', `${r.flag}: cannot make the host directory "${src}"`, err, 'create it first, or give a path that exists');
          }
        }
        const m = parseVolume(`${src}:${dst}${r.readonly ? ':ro' : ''}`);
        out.push(m);
        records.push({ Type: 'bind', Source: m.source!, Destination: dst, RW: !r.readonly });
      } else {
        const { vol } = store.create(r.source, { anonymous: !r.source });
        out.push({ destination: dst, type: 'bind', source: vol.Mountpoint, options: ['rbind', 'rprivate', ...(r.readonly ? ['ro'] : [])] });
        records.push({ Type: 'volume', Name: vol.Name, Source: vol.Mountpoint, Destination: dst, RW: !r.readonly, ...(r.source ? {} : { Anonymous: true }) });
        if (!r.noCopy) seedVolume(vol, rootfs, dst);
      }
    }
  } catch (err) {
    // The anonymous volumes made so far belong to no container: take them away again.
    removeAnonymousVolumes(root, { id: '', mounts: records } as unknown as ContainerRecord);
    throw err;
  }
  return { mounts: out, records };
}

/**
 * Removes the anonymous volumes REC made (`rm -v`, `--rm`), unless another container uses
 * them too. Best effort: returns what could not be removed, with why.
 */
export function removeAnonymousVolumes(root: string, rec: ContainerRecord): string[] {
  const store = new VolumeStore(root);
  const failed: string[] = [];
  for (const m of rec.mounts ?? []) {
    if (m.Type !== 'volume' || !m.Anonymous || !m.Name) continue;
    try {
      if (store.users(m.Name).some((c) => c.id !== rec.id)) continue;
      const gone = path.join(store.dir, `.removing-${m.Name}-${randomBytes(4).toString('hex')}`);
      fs.renameSync(store.path(m.Name), gone);
      fs.rmSync(gone, { recursive: true, force: true });
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) failed.push(`${m.Name}: ${(err as Error).message}`);
    }
  }
  return failed;
}
