// The layer store, <root>/layers/<chain-hex>/{diff,layer.json} (docs/images.md): unpacked
// image layers in overlay's format, keyed by chainID. Called by src/image/ (pull, load,
// import) with the store lock held, and by the engine to find lower dirs. Node host.
//
// A layer appears in layers/ by one rename of a complete directory (diff + layer.json)
// from tmp/, so a reader never sees half a layer, and a killed unpack leaves only debris in
// tmp/ that cleanupDebris() removes.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { writeFileAtomic } from '../common/atomic';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { unpackLayer } from './unpack';
import { isDebris, tmpName } from '../common/tmp';

/** layer.json */
export interface LayerInfo {
  chainID: string;
  diffID: string;
  parent: string | null;
  /** Bytes of file content in the layer (see UnpackResult.size). */
  size: number;
}

const DIGEST = /^sha256:([0-9a-f]{64})$/;

/** chain(L0) = diffID(L0); chain(Ln) = sha256(chain(Ln-1) + " " + diffID(Ln)) (OCI image spec). */
export function chainIDOf(parent: string | null, diffID: string): string {
  if (parent === null) return diffID;
  return `sha256:${createHash('sha256').update(`${parent} ${diffID}`).digest('hex')}`;
}

export class LayerStore {
  readonly layersDir: string;
  readonly tmpDir: string;

  /** @param root the engine root (layers/ and tmp/ are below it) */
  constructor(readonly root: string) {
    this.layersDir = path.join(root, 'layers');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Whether the complete layer CHAINID is stored. */
  has(chainID: string): boolean {
    return fs.existsSync(path.join(this.dirOf(chainID), 'layer.json'));
  }

  /**
   * The layer's diff directory (an overlay lower dir); it exists only if has(CHAINID).
   * @throws BerthError LAYER_ID_INVALID when CHAINID is not "sha256:<64 hex>"
   */
  path(chainID: string): string {
    return path.join(this.dirOf(chainID), 'diff');
  }

  /**
   * The layer's layer.json.
   * @throws BerthError LAYER_NOT_FOUND, LAYER_ID_INVALID
   */
  info(chainID: string): LayerInfo {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dirOf(chainID), 'layer.json'), 'utf8')) as LayerInfo;
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw new BerthError('LAYER_NOT_FOUND', `read layer ${chainID}`, { cause: err });
    }
  }

  /**
   * Makes sure the layer on top of PARENT with the content OPEN() streams is stored, and
   * returns its chainID. With EXPECTEDDIFFID the layer is looked up first and OPEN is not
   * called when it is already there; after unpacking, the diffID must match it.
   *
   * Safe to run concurrently for the same layer (two commands, or a crash before): each
   * unpacks into its own tmp/ directory, and the loser of the final rename drops its copy.
   * @param parent chainID of the layer below, or null for the base layer
   * @param open returns the layer blob (gzip, zstd or plain tar); called at most once
   * @param expectedDiffID "sha256:<hex>" of the uncompressed tar, from the image config
   * @throws BerthError LAYER_DIFFID_MISMATCH (nothing stored), LAYER_PARENT_MISSING,
   *   LAYER_ID_INVALID, STORAGE_WRITE, and unpackLayer's LAYER_* codes
   */
  async ensure(parent: string | null, open: () => Readable, expectedDiffID?: string): Promise<string> {
    if (parent !== null && !this.has(parent)) {
      throw new BerthError('LAYER_PARENT_MISSING', `add layer on top of ${parent}: parent layer not stored`);
    }
    if (expectedDiffID !== undefined) {
      checkDigest(expectedDiffID);
      const known = chainIDOf(parent, expectedDiffID);
      if (this.has(known)) return known;
    }

    const staging = this.makeStaging();
    try {
      const { diffID, size } = await unpackLayer(open(), path.join(staging, 'diff'));
      if (expectedDiffID !== undefined && diffID !== expectedDiffID) {
        throw new BerthError('LAYER_DIFFID_MISMATCH',
          `verify layer: diffID is ${diffID}, the image config says ${expectedDiffID}`, {
            hint: 'the layer blob does not match the image config; the image is corrupt',
          });
      }
      const chainID = chainIDOf(parent, diffID);
      if (this.has(chainID)) return chainID;

      const info: LayerInfo = { chainID, diffID, parent, size };
      const json = path.join(staging, 'layer.json');
      this.write(() => writeFileAtomic(json, JSON.stringify(info) + '\n'), staging);
      this.publish(staging, chainID);
      return chainID;
    } finally {
      removeQuietly(staging);
    }
  }

  /**
   * Removes the layer CHAINID, if stored. It first leaves layers/ in one rename, so a crash
   * halfway through leaves debris in tmp/, never a half-deleted layer. The caller checks
   * that no image or container uses it.
   * @throws BerthError STORAGE_WRITE, LAYER_ID_INVALID
   */
  remove(chainID: string): void {
    const dir = this.dirOf(chainID);
    const trash = path.join(this.tmpDir, tmpName('remove'));
    try {
      fs.mkdirSync(this.tmpDir, { recursive: true });
      fs.renameSync(dir, trash);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw wrapSystemError('STORAGE_WRITE', `remove layer ${chainID}`, err);
    }
    removeQuietly(trash);
  }

  /**
   * Removes what killed commands left: tmp/ entries of processes that no longer run
   * (src/common/tmp.ts), and directories in layers/ without layer.json. Safe beside
   * concurrent commands: their entries carry live pids.
   */
  cleanupDebris(): void {
    for (const name of readdirQuietly(this.tmpDir)) if (isDebris(name)) removeQuietly(path.join(this.tmpDir, name));
    for (const name of readdirQuietly(this.layersDir)) {
      const dir = path.join(this.layersDir, name);
      if (!fs.existsSync(path.join(dir, 'layer.json'))) removeQuietly(dir);
    }
  }

  /** Every stored layer's chainID. */
  list(): string[] {
    return readdirQuietly(this.layersDir)
      .filter((n) => /^[0-9a-f]{64}$/.test(n) && fs.existsSync(path.join(this.layersDir, n, 'layer.json')))
      .map((n) => `sha256:${n}`);
  }

  private dirOf(chainID: string): string {
    return path.join(this.layersDir, checkDigest(chainID));
  }

  private makeStaging(): string {
    return this.write(() => {
      fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
      fs.mkdirSync(this.layersDir, { recursive: true, mode: 0o700 });
      return fs.mkdtempSync(path.join(this.tmpDir, `${process.pid}.layer-`));
    }, this.tmpDir);
  }

  /** Renames STAGING to layers/<hex>. A concurrent ensure may have won the race: its
   * layer is complete (it got there by the same rename), so ours is dropped. */
  private publish(staging: string, chainID: string): void {
    fs.chmodSync(staging, 0o755);
    try {
      fs.renameSync(staging, this.dirOf(chainID));
    } catch (err) {
      if ((isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST')) && this.has(chainID)) return;
      if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST')) {
        // Debris of a killed command (no layer.json): replace it.
        removeQuietly(this.dirOf(chainID));
        this.write(() => fs.renameSync(staging, this.dirOf(chainID)), this.dirOf(chainID));
        return;
      }
      throw wrapSystemError('STORAGE_WRITE', `store layer ${chainID}`, err);
    }
  }

  private write<T>(fn: () => T, where: string): T {
    try {
      return fn();
    } catch (err) {
      throw wrapSystemError('STORAGE_WRITE', `write ${where}`, err);
    }
  }
}

/** Returns the hex of a "sha256:<hex>" digest. @throws BerthError LAYER_ID_INVALID */
function checkDigest(id: string): string {
  const m = DIGEST.exec(id);
  if (!m) {
    throw new BerthError('LAYER_ID_INVALID', `parse layer id "${id}"`, { hint: 'expected sha256:<64 hex digits>' });
  }
  return m[1];
}

function readdirQuietly(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Best effort: what cannot be removed now is debris for the next cleanupDebris(). */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // left for cleanupDebris()
  }
}
