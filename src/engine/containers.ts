// Containers as the engine records them: <root>/containers/<id>/container.json (written
// atomically), and unique names as <root>/names/<name> files created with O_EXCL, so two
// concurrent `berth run --name x` cannot both win. Node host process.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno } from '../common/errors';
import { LOCK_EX, LOCK_NB, MNT_DETACH, native } from '../common/native';
import type { NetworkAttachment, NetworkRequest } from '../network/types';
import type { MountRecord } from './volumes';
import { releaseUserns, UsernsConfig } from './userns';

/** Directories of the containers this process is creating, flocked (holdCreating). */
const creatingFds: number[] = [];
const ORPHAN_MIN_AGE_MS = 2000;

/** Whether P is a mount point (a bind mount of a file shows on the same device). */
function isMounted(p: string): boolean {
  const abs = path.resolve(p);
  try {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === abs);
  } catch {
    return false;
  }
}

export interface ContainerRecord {
  id: string;
  name: string;
  image: string;
  imageId: string;
  command: string[];
  created: string;
  state: {
    status: 'created' | 'running' | 'exited';
    pid: number;
    exitCode: number;
    oomKilled: boolean;
    startedAt?: string;
    finishedAt?: string;
    /** Frozen by `berth pause` (engine/container-ops.ts); status stays "running". */
    paused?: boolean;
  };
  autoRemove: boolean;
  /** Detached containers: their monitor (native/monitor), the parent of the init. */
  monitor?: { pid: number; startTime?: string };
  /** What `inspect` shows as Config; absent in records of older berth versions. */
  config?: {
    hostname: string;
    env: string[];
    cmd: string[] | null;
    entrypoint: string[] | null;
    workingDir: string;
    user: string;
    tty: boolean;
    interactive?: boolean;
    stopSignal?: string;
    /** --stop-timeout, in seconds: what `berth stop` waits without -t. */
    stopTimeout?: number;
    labels?: Record<string, string>;
  };
  /** What `inspect` shows as HostConfig. */
  hostConfig?: {
    memory: number;
    nanoCpus: number;
    pidsLimit: number;
    memorySwap?: number;
    memoryReservation?: number;
    cpuShares?: number;
    cpusetCpus?: string;
    cpusetMems?: string;
    readOnly: boolean;
    privileged: boolean;
    capAdd: string[];
    capDrop: string[];
    binds: string[];
    tmpfs: string[];
    restartPolicy?: RestartPolicy;
    ulimits?: string[];
    init?: boolean;
  };
  /** Volumes, binds and tmpfs from -v and --mount (engine/volumes.ts). */
  mounts?: MountRecord[];
  /** Times the restart policy started the container again (engine/restart.ts). */
  restartCount?: number;
  /** Set by stop, kill and rm -f: the restart policy leaves the container down. */
  manuallyStopped?: boolean;
  /** The monitor (pid:start time) whose exit the restart policy has already handled. */
  restartHandled?: string;
  /** --network, -p and -P as parsed (network/); kept to attach the network again at start. */
  networkRequest?: NetworkRequest;
  /** The network while the container is alive (recorded before its helpers finish starting). */
  network?: NetworkAttachment;
  /**
   * The berth process that made the container (a foreground run lives in it). When it is
   * gone and there is no monitor, the container was abandoned by a killed berth: rm -f
   * then cleans it up (lifecycle.ts).
   */
  owner?: { pid: number; startTime?: string };
  /** --userns / --uidmap: its user namespace's maps (engine/userns.ts); absent: the host's. */
  userns?: UsernsConfig;
}

/** --restart, as Docker's HostConfig.RestartPolicy. */
export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maximumRetryCount: number;
}

// A name is a file in names/: at most 255 bytes (NAME_MAX).
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;
const NAME_HINT = 'use up to 255 letters, digits, "_", "." and "-", starting with a letter or digit';
const ADJECTIVES = ['brave', 'calm', 'eager', 'fond', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nimble',
  'proud', 'quiet', 'sharp', 'sunny', 'tidy', 'vivid', 'witty', 'zesty', 'bold'];
const NOUNS = ['anchor', 'barge', 'buoy', 'cabin', 'canal', 'cargo', 'dock', 'ferry', 'harbor', 'hull', 'jetty', 'keel',
  'lock', 'mast', 'pier', 'quay', 'raft', 'sail', 'tide', 'wharf'];

export class ContainerStore {
  readonly dir: string;
  readonly namesDir: string;

  constructor(readonly root: string) {
    this.dir = path.join(root, 'containers');
    this.namesDir = path.join(root, 'names');
  }

  path(id: string, ...rest: string[]): string {
    return path.join(this.dir, id, ...rest);
  }

  /**
   * Records that container ID, made but not yet recorded, uses image IMAGEID: from here
   * on `image prune` and `rmi` count the image as in use (imagesInUse).
   */
  markImage(id: string, imageId: string): void {
    fs.writeFileSync(this.path(id, 'image-id'), imageId);
  }

  /** The ids of the images marked by markImage (containers being made, and made since marks). */
  markedImages(): Set<string> {
    const marked = new Set<string>();
    for (const id of fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : []) {
      try {
        marked.add(fs.readFileSync(this.path(id, 'image-id'), 'utf8'));
      } catch {
        // no mark: made before marks, or not far enough yet to use an image
      }
    }
    return marked;
  }

  /** The ids of the images containers use, those of containers still being made included. */
  imagesInUse(): Set<string> {
    return new Set([...this.list().map((c) => c.imageId), ...this.markedImages()]);
  }

  /**
   * Makes a new container directory and claims its name (generated when absent).
   * @throws BerthError CONTAINER_NAME_IN_USE, CONTAINER_NAME_INVALID
   */
  create(name: string | undefined): { id: string; name: string } {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.mkdirSync(this.namesDir, { recursive: true });
    const id = randomBytes(32).toString('hex');
    if (name !== undefined && !NAME_RE.test(name)) {
      throw new BerthError('CONTAINER_NAME_INVALID', `container name "${name}" is not valid`, {
        hint: NAME_HINT,
      });
    }
    for (let attempt = 0; ; attempt++) {
      const n = name ?? `${ADJECTIVES[randomBytes(1)[0] % 20]}_${NOUNS[randomBytes(1)[0] % 20]}${attempt > 5 ? attempt : ''}`;
      try {
        fs.writeFileSync(path.join(this.namesDir, n), id, { flag: 'wx' });
        fs.mkdirSync(this.path(id), { mode: 0o700 });
        this.holdCreating(id);
        return { id, name: n };
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
        if (name !== undefined) {
          // Concurrent runs: the owner may have just written an empty file (not its id
          // yet) or, with --rm, released the name again; then claim it once more.
          let owner: string;
          try {
            owner = fs.readFileSync(path.join(this.namesDir, n), 'utf8').slice(0, 12);
          } catch (e) {
            if (isErrno(e, 'ENOENT') && attempt < 100) continue;
            throw e;
          }
          // The owner's creator was killed before it recorded the container: free the name.
          if (attempt < 100 && owner && this.reclaimOrphan(fs.readFileSync(path.join(this.namesDir, n), 'utf8'))) continue;
          throw new BerthError('CONTAINER_NAME_IN_USE', `the name "${n}" is already in use by container ${owner || '(being created)'}`, {
            hint: `remove that container (berth rm ${n}) or choose another --name`,
          });
        }
      }
    }
  }

  /**
   * Marks container ID as being created by this process: an flock on its directory, held
   * until the process exits, so that the kernel drops it when berth is killed mid-create.
   */
  private holdCreating(id: string): void {
    const fd = fs.openSync(this.path(id), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    native().flock(fd, LOCK_EX);
    creatingFds.push(fd);
  }

  /**
   * Removes container ID if it is an orphan: a directory with no container.json whose creator
   * is gone (a `berth run` or `create` killed before it recorded the container; its flock is
   * free). Its overlay and netns mounts go first; its name and --userns range are released.
   * A directory younger than ORPHAN_MIN_AGE_MS is left alone: its creator may be between
   * mkdir and flock. Returns whether it was removed.
   */
  reclaimOrphan(id: string): boolean {
    if (!/^[0-9a-f]{64}$/.test(id)) return false;
    const dir = this.path(id);
    let fd: number;
    try {
      if (fs.existsSync(path.join(dir, 'container.json')) || Date.now() - fs.statSync(dir).mtimeMs < ORPHAN_MIN_AGE_MS) return false;
      fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    } catch {
      return false;
    }
    try {
      try {
        native().flock(fd, LOCK_EX | LOCK_NB);
      } catch {
        return false; // its creator is alive
      }
      if (fs.existsSync(path.join(dir, 'container.json'))) return false;
      for (const m of ['rootfs', 'netns']) {
        try {
          if (isMounted(path.join(dir, m))) native().umount2(path.join(dir, m), MNT_DETACH);
        } catch {
          // checked below
        }
      }
      // Never remove a directory through a mount that is still there.
      if (['rootfs', 'netns'].some((m) => isMounted(path.join(dir, m)))) return false;
      const names = fs.existsSync(this.namesDir) ? fs.readdirSync(this.namesDir) : [];
      const name = names.find((n) => {
        try {
          return fs.readFileSync(path.join(this.namesDir, n), 'utf8') === id;
        } catch {
          return false;
        }
      });
      this.remove({ id, name: name ?? '' });
      return true;
    } finally {
      fs.closeSync(fd);
    }
  }

  write(rec: ContainerRecord): void {
    writeFileAtomic(this.path(rec.id, 'container.json'), JSON.stringify(rec, null, 1), 0o600, false);
  }

  read(id: string): ContainerRecord {
    return JSON.parse(fs.readFileSync(this.path(id, 'container.json'), 'utf8')) as ContainerRecord;
  }

  list(): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const id of fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : []) {
      try {
        out.push(this.read(id));
      } catch {
        // Being created or removed right now; or an orphan, whose creator was killed before
        // it recorded the container: no one would name it again (its name may be a generated
        // one), so it goes here, with its mounts and name, once its creator is surely gone.
        if (!fs.existsSync(this.path(id, 'container.json'))) this.reclaimOrphan(id);
      }
    }
    return out.sort((a, b) => b.created.localeCompare(a.created));
  }

  /**
   * Finds a container by full name, full id, or unique id prefix.
   * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_AMBIGUOUS
   */
  resolve(ref: string): ContainerRecord {
    try {
      const id = fs.readFileSync(path.join(this.namesDir, ref), 'utf8');
      try {
        return this.read(id);
      } catch (err) {
        // A name whose container was never recorded (its creator was killed): free it.
        this.reclaimOrphan(id);
        throw err;
      }
    } catch {
      // not a name
    }
    const hits = /^[0-9a-f]+$/.test(ref) ? this.list().filter((c) => c.id.startsWith(ref)) : [];
    if (hits.length > 1) {
      throw new BerthError('CONTAINER_AMBIGUOUS', `"${ref}" matches ${hits.length} containers`, { hint: 'give more of the id, or the name' });
    }
    if (!hits.length) {
      throw new BerthError('CONTAINER_NOT_FOUND', `no such container: "${ref}"`, { hint: 'list containers with `berth ps -a`' });
    }
    return hits[0];
  }

  remove(rec: Pick<ContainerRecord, 'id' | 'name'>): void {
    fs.rmSync(this.path(rec.id), { recursive: true, force: true });
    releaseUserns(this.root, rec.id); // after the directory: a record without one is stale anyway
    try {
      if (fs.readFileSync(path.join(this.namesDir, rec.name), 'utf8') === rec.id) fs.rmSync(path.join(this.namesDir, rec.name));
    } catch {
      // already gone
    }
  }

  // --- rename (engine/container-ops.ts, `berth rename`) ---

  /**
   * Gives REC the name NEW: claims it (O_EXCL, as create), then releases the old one.
   * Call with the engine lock held.
   * @throws BerthError CONTAINER_NAME_IN_USE, CONTAINER_NAME_INVALID
   */
  rename(rec: ContainerRecord, name: string): ContainerRecord {
    if (!NAME_RE.test(name)) {
      throw new BerthError('CONTAINER_NAME_INVALID', `container name "${name}" is not valid`, {
        hint: NAME_HINT,
      });
    }
    if (name === rec.name) {
      throw new BerthError('CONTAINER_NAME_IN_USE', `container ${rec.id.slice(0, 12)} is already named "${name}"`, {
        hint: 'give a name it does not have',
      });
    }
    try {
      fs.writeFileSync(path.join(this.namesDir, name), rec.id, { flag: 'wx' });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const owner = fs.readFileSync(path.join(this.namesDir, name), 'utf8').slice(0, 12);
      throw new BerthError('CONTAINER_NAME_IN_USE', `the name "${name}" is already used by container ${owner}`, {
        hint: 'choose another name',
      });
    }
    const old = rec.name;
    const renamed = { ...rec, name };
    this.write(renamed);
    try {
      if (fs.readFileSync(path.join(this.namesDir, old), 'utf8') === rec.id) fs.rmSync(path.join(this.namesDir, old));
    } catch {
      // already gone
    }
    return renamed;
  }
}
