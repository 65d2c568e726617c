// Containers as the engine records them: <root>/containers/<id>/container.json (written
// atomically), and unique names as <root>/names/<name> files created with O_EXCL, so two
// concurrent `berth run --name x` cannot both win. Node host process.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno } from '../common/errors';
import type { NetworkAttachment, NetworkRequest } from '../network/types';
import type { MountRecord } from './volumes';
import { releaseUserns, UsernsConfig } from './userns';

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

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
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
   * Makes a new container directory and claims its name (generated when absent).
   * @throws BerthError CONTAINER_NAME_IN_USE, CONTAINER_NAME_INVALID
   */
  create(name: string | undefined): { id: string; name: string } {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.mkdirSync(this.namesDir, { recursive: true });
    const id = randomBytes(32).toString('hex');
    if (name !== undefined && !NAME_RE.test(name)) {
      throw new BerthError('CONTAINER_NAME_INVALID', `container name "${name}" is not valid`, {
        hint: 'use letters, digits, "_", "." and "-", starting with a letter or digit',
      });
    }
    for (let attempt = 0; ; attempt++) {
      const n = name ?? `${ADJECTIVES[randomBytes(1)[0] % 20]}_${NOUNS[randomBytes(1)[0] % 20]}${attempt > 5 ? attempt : ''}`;
      try {
        fs.writeFileSync(path.join(this.namesDir, n), id, { flag: 'wx' });
        fs.mkdirSync(this.path(id), { mode: 0o700 });
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
          throw new BerthError('CONTAINER_NAME_IN_USE', `the name "${n}" is already in use by container ${owner || '(being created)'}`, {
            hint: `remove that container (berth rm ${n}) or choose another --name`,
          });
        }
      }
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
        // being created or removed right now
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
      return this.read(id);
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
        hint: 'use letters, digits, "_", "." and "-", starting with a letter or digit',
      });
    }
    if (name === rec.name) return rec;
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
