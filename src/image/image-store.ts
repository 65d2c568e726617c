// The image index (<root>/images.json, docs/images.md): which images exist, their layers
// (chain ids) and names. Callers change it under the store lock (src/common/lock.ts); it
// is written atomically, so concurrent berth commands never tear it. Node host process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../common/atomic';
import { BerthError } from '../common/errors';
import { parseReference, Reference } from './reference';

export interface LayerBlob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface ImageRecord {
  /** The config digest, as Docker's image id. */
  id: string;
  manifestDigest: string;
  configDigest: string;
  /** Chain ids of the layers, bottom first. */
  layers: string[];
  /** The layer blobs in the content store, bottom first (for save). */
  layerBlobs: LayerBlob[];
  repoTags: string[];
  repoDigests: string[];
  created: string;
  /** Unpacked size in bytes. */
  size: number;
}

interface IndexFile {
  images: Record<string, ImageRecord>;
}

const ID_PREFIX = /^(sha256:)?[0-9a-f]{3,64}$/;

export class ImageStore {
  readonly file: string;

  constructor(readonly root: string) {
    this.file = path.join(root, 'images.json');
  }

  private load(): IndexFile {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as IndexFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { images: {} };
      throw new BerthError('STORAGE_CORRUPT', `read image index ${this.file}: ${(err as Error).message}`, {
        cause: err, hint: 'restore it from a backup, or remove it and pull the images again',
      });
    }
  }

  private save(idx: IndexFile): void {
    fs.mkdirSync(this.root, { recursive: true });
    writeFileAtomic(this.file, JSON.stringify(idx, null, 1));
  }

  list(): ImageRecord[] {
    return Object.values(this.load().images).sort((a, b) => b.created.localeCompare(a.created));
  }

  /** Adds IMG or merges its names into the record with its id; a tag moves to it, as Docker's. */
  add(img: ImageRecord): ImageRecord {
    const idx = this.load();
    for (const other of Object.values(idx.images)) {
      if (other.id !== img.id) other.repoTags = other.repoTags.filter((t) => !img.repoTags.includes(t));
    }
    const prev = idx.images[img.id];
    const merged = prev
      ? { ...prev, repoTags: [...new Set([...prev.repoTags, ...img.repoTags])],
        repoDigests: [...new Set([...prev.repoDigests, ...img.repoDigests])] }
      : img;
    idx.images[img.id] = merged;
    this.save(idx);
    return merged;
  }

  /**
   * Finds an image by id (or a unique prefix of 3+ hex digits), by reference, or by digest
   * reference. A short name also matches a local `localhost/NAME`, preferred.
   * @throws BerthError IMAGE_NOT_FOUND, IMAGE_AMBIGUOUS, IMAGE_REFERENCE_INVALID
   */
  resolve(name: string): ImageRecord {
    const found = this.find(name);
    if (!found) {
      throw new BerthError('IMAGE_NOT_FOUND', `image "${name}" is not in the local store`, {
        hint: `pull it with \`berth pull ${name}\`, or list local images with \`berth images\``,
      });
    }
    return found;
  }

  find(name: string): ImageRecord | undefined {
    const images = this.list();
    if (ID_PREFIX.test(name)) {
      const hex = name.replace(/^sha256:/, '');
      const byId = images.filter((i) => i.id.slice(7).startsWith(hex));
      if (byId.length > 1) {
        throw new BerthError('IMAGE_AMBIGUOUS', `image id prefix "${name}" matches ${byId.length} images`, {
          hint: 'give more digits of the id',
        });
      }
      if (byId.length === 1) return byId[0];
      if (name.startsWith('sha256:')) return undefined;
    }
    const candidates: Reference[] = [];
    // "busybox" names docker.io/library/busybox, but a local localhost/busybox wins, so
    // that the embedded image works offline (docs/images.md).
    if (!name.includes('/') && !name.includes('@')) candidates.push(parseReference(`localhost/${name}`));
    candidates.push(parseReference(name));
    for (const c of candidates) {
      const full = c.toString();
      const hit = images.find((i) => (c.digest ? i.manifestDigest === c.digest : i.repoTags.includes(full)));
      if (hit) return hit;
    }
    return undefined;
  }

  /** Adds TARGET as a name of the image SOURCE resolves to. */
  tag(source: string, target: string): ImageRecord {
    const img = this.resolve(source);
    const ref = parseReference(target);
    if (ref.digest) {
      throw new BerthError('IMAGE_REFERENCE_INVALID', `cannot tag with the digest reference "${target}"`, {
        hint: 'a tag is NAME[:TAG]',
      });
    }
    return this.add({ ...img, repoTags: [ref.toString()], repoDigests: [] });
  }

  /**
   * Removes one name of an image, or the whole record when NAME is its id or last name.
   * @throws BerthError IMAGE_NOT_FOUND
   */
  untagOrRemove(name: string): { removed?: ImageRecord; untagged?: string } {
    const img = this.resolve(name);
    const idx = this.load();
    const rec = idx.images[img.id];
    const byId = ID_PREFIX.test(name) && rec.id.slice(7).startsWith(name.replace(/^sha256:/, ''));
    const full = byId ? undefined : this.nameIn(name, rec);
    if (full && rec.repoTags.length > 1) {
      rec.repoTags = rec.repoTags.filter((t) => t !== full);
      this.save(idx);
      return { untagged: full };
    }
    delete idx.images[img.id];
    this.save(idx);
    return { removed: rec };
  }

  private nameIn(name: string, rec: ImageRecord): string | undefined {
    const options = [parseReference(name).toString()];
    if (!name.includes('/')) options.unshift(parseReference(`localhost/${name}`).toString());
    return options.find((o) => rec.repoTags.includes(o));
  }

  /**
   * Takes the name NAME (not an id) from its image, whose record stays (as <none> when that
   * was its last name). Returns the full name taken, or undefined when NAME is an id.
   * @throws BerthError IMAGE_NOT_FOUND
   */
  untag(name: string): string | undefined {
    const img = this.resolve(name);
    const idx = this.load();
    const rec = idx.images[img.id];
    const full = this.nameIn(name, rec);
    if (!full) return undefined;
    rec.repoTags = rec.repoTags.filter((t) => t !== full);
    this.save(idx);
    return full;
  }

  /** Takes every name from the image with ID; the record stays, as <none>. */
  untagAll(id: string): void {
    const idx = this.load();
    if (idx.images[id]) idx.images[id].repoTags = [];
    this.save(idx);
  }

  remove(id: string): void {
    const idx = this.load();
    delete idx.images[id];
    this.save(idx);
  }
}
