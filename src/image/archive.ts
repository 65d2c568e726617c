// `berth load` and `berth save`: image archives in the two formats users exchange,
// `docker save`'s (manifest.json + config + layer tars) and OCI image layouts
// (oci-layout + index.json + blobs/), both as tar files. Node host process.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { BerthError, wrapSystemError } from '../common/errors';
import { commitImage, ImageConfig, layerMediaType, MEDIA } from './commit';
import type { ImageRecord, LayerBlob } from './image-store';
import { parseReference } from './reference';
import type { Stores } from './stores';
import { tmpName } from '../common/tmp';

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return 'sha256:' + h.digest('hex');
}

/** Extracts the archive's regular files into DIR, refusing names that leave it. */
async function extractTo(input: NodeJS.ReadableStream, dir: string, source: string): Promise<void> {
  const ex = tar.extract();
  ex.on('entry', (header, stream, next) => {
    const name = path.posix.normalize(header.name).replace(/^\.\//, '');
    if (name.startsWith('..') || path.posix.isAbsolute(name)) {
      stream.resume();
      ex.destroy(new BerthError('ARCHIVE_HOSTILE_ENTRY', `archive "${source}" has an entry outside itself: "${header.name}"`));
      return;
    }
    if (header.type !== 'file') {
      // Directories are made as needed; links and devices have no place in an image archive.
      stream.resume();
      stream.on('end', next);
      return;
    }
    const dest = path.join(dir, name);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    pipeline(stream, fs.createWriteStream(dest, { mode: 0o600 })).then(() => next(), (err) => ex.destroy(err));
  });
  try {
    await pipeline(input, ex);
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError('ARCHIVE_INVALID', `read archive "${source}": ${(err as Error).message}`, {
      cause: err, hint: 'load takes a tar written by `docker save`, `podman save` or `skopeo copy` to oci-archive',
    });
  }
}

const readJSON = (file: string): any => JSON.parse(fs.readFileSync(file, 'utf8'));

async function putFile(stores: Stores, file: string, digest?: string): Promise<LayerBlob> {
  const d = digest ?? (await fileDigest(file));
  if (!stores.content.has(d)) await stores.content.put(d, fs.createReadStream(file));
  return { digest: d, size: fs.statSync(file).size, mediaType: layerMediaType(file) };
}

async function loadDocker(stores: Stores, dir: string): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const entry of readJSON(path.join(dir, 'manifest.json')) as { Config: string; RepoTags?: string[]; Layers: string[] }[]) {
    const configFile = path.join(dir, path.posix.normalize(entry.Config));
    const config = readJSON(configFile) as ImageConfig;
    const cfg = await putFile(stores, configFile);
    const layers: LayerBlob[] = [];
    for (const l of entry.Layers) layers.push(await putFile(stores, path.join(dir, path.posix.normalize(l))));
    const tags = (entry.RepoTags ?? []).map((t) => parseReference(t).toString());
    out.push({ image: await commitImage(stores, { layers, config, configDigest: cfg.digest, repoTags: tags }), tags });
  }
  return out;
}

async function loadOci(stores: Stores, dir: string): Promise<Loaded[]> {
  const blob = (d: string) => path.join(dir, 'blobs', ...d.split(':'));
  const out: Loaded[] = [];
  const visit = async (desc: any, name?: string): Promise<void> => {
    const doc = readJSON(blob(desc.digest));
    await putFile(stores, blob(desc.digest), desc.digest);
    const refName = desc.annotations?.['org.opencontainers.image.ref.name'] ?? desc.annotations?.['io.containerd.image.name'] ?? name;
    if (doc.manifests) {
      // An index inside: take this machine's platform, or the only manifest.
      const pick = doc.manifests.find((m: any) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === 'amd64'));
      if (pick) await visit(pick, refName);
      return;
    }
    const cfg = await putFile(stores, blob(doc.config.digest), doc.config.digest);
    const layers: LayerBlob[] = [];
    for (const l of doc.layers) layers.push({ ...(await putFile(stores, blob(l.digest), l.digest)), mediaType: l.mediaType });
    let tags: string[] = [];
    if (refName && /[/:]/.test(refName) && !/^[\w.-]+$/.test(refName)) tags = [parseReference(refName).toString()];
    out.push({ image: await commitImage(stores, {
      layers, config: readJSON(blob(doc.config.digest)), configDigest: cfg.digest, manifestDigest: desc.digest, repoTags: tags,
    }), tags });
  };
  for (const m of readJSON(path.join(dir, 'index.json')).manifests ?? []) await visit(m);
  return out;
}

/**
 * Loads every image of the archive FILE ("-" for stdin).
 * @throws BerthError ARCHIVE_INVALID, ARCHIVE_HOSTILE_ENTRY, IMAGE_DIGEST_MISMATCH, LAYER_*
 */
export interface Loaded {
  image: ImageRecord;
  /** The names the archive gave it (the store may know it by more). */
  tags: string[];
}

export async function loadArchive(stores: Stores, file: string): Promise<Loaded[]> {
  try {
    if (file !== '-') fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw wrapSystemError('ARCHIVE_INVALID', `read "${file}"`, err, 'load -i takes an archive from `save`, `docker save` or `podman save`');
  }
  const input: NodeJS.ReadableStream = file === '-' ? process.stdin : fs.createReadStream(file);
  const dir = path.join(stores.root, 'tmp', tmpName('load'));
  fs.mkdirSync(dir, { recursive: true });
  try {
    await extractTo(input, dir, file);
    return await stores.locked(async () => {
      if (fs.existsSync(path.join(dir, 'oci-layout')) && fs.existsSync(path.join(dir, 'index.json'))) return loadOci(stores, dir);
      if (fs.existsSync(path.join(dir, 'manifest.json'))) return loadDocker(stores, dir);
      throw new BerthError('ARCHIVE_INVALID', `"${file}" is neither a docker save archive nor an OCI layout`, {
        hint: 'a docker archive has manifest.json; an OCI archive has oci-layout and index.json',
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function addFile(pack: tar.Pack, name: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const entry = pack.entry({ name, size: fs.statSync(file).size, mode: 0o644 }, (err) => (err ? reject(err) : resolve()));
    fs.createReadStream(file).on('error', reject).pipe(entry);
  });
}

function addBuffer(pack: tar.Pack, name: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => pack.entry({ name, mode: 0o644 }, data, (err) => (err ? reject(err) : resolve())));
}

/**
 * Writes IMAGES to OUT as a docker-archive or oci-archive tar, atomically.
 * @throws BerthError IMAGE_NOT_FOUND, ARCHIVE_WRITE
 */
export async function saveArchive(stores: Stores, names: string[], out: string, format: 'docker-archive' | 'oci-archive'): Promise<void> {
  // One entry per image, named by the names asked for (an id names none), as docker save.
  const byId = new Map<string, { img: ImageRecord; tags: string[] }>();
  for (const n of names) {
    const img = stores.images.resolve(n);
    const e = byId.get(img.id) ?? { img, tags: [] };
    const full = img.repoTags.find((t) => t === parseReference(n).toString() || t === parseReference(`localhost/${n}`).toString());
    if (full && !/^(sha256:)?[0-9a-f]{3,64}$/.test(n) && !e.tags.includes(full)) e.tags.push(full);
    byId.set(img.id, e);
  }
  const images = [...byId.values()];
  try {
    fs.accessSync(path.dirname(path.resolve(out)), fs.constants.W_OK);
  } catch (err) {
    throw wrapSystemError('ARCHIVE_WRITE', `write "${out}"`, err, 'save -o needs a directory that exists and is writable');
  }
  const tmp = `${out}.berth-tmp-${process.pid}`;
  const pack = tar.pack();
  const done = pipeline(pack, fs.createWriteStream(tmp));
  try {
    const written = new Set<string>();
    const blobEntry = async (d: string, name: string) => {
      if (written.has(name)) return;
      written.add(name);
      await addFile(pack, name, stores.content.path(d));
    };
    if (format === 'docker-archive') {
      const manifest = [];
      for (const { img, tags } of images) {
        await blobEntry(img.configDigest, `${img.configDigest.slice(7)}.json`);
        const layers = [];
        for (const l of img.layerBlobs) {
          await blobEntry(l.digest, `${l.digest.slice(7)}.tar`);
          layers.push(`${l.digest.slice(7)}.tar`);
        }
        manifest.push({ Config: `${img.configDigest.slice(7)}.json`, RepoTags: tags.map((t) => parseReference(t).familiar()), Layers: layers });
      }
      await addBuffer(pack, 'manifest.json', JSON.stringify(manifest));
    } else {
      const manifests = [];
      for (const { img, tags } of images) {
        for (const d of [img.manifestDigest, img.configDigest, ...img.layerBlobs.map((l) => l.digest)]) {
          await blobEntry(d, `blobs/sha256/${d.slice(7)}`);
        }
        const tag = tags[0];
        manifests.push({
          mediaType: stores.content.readJSON<any>(img.manifestDigest).mediaType ?? MEDIA.ociManifest,
          digest: img.manifestDigest, size: stores.content.size(img.manifestDigest),
          ...(tag ? { annotations: { 'org.opencontainers.image.ref.name': tag, 'io.containerd.image.name': tag } } : {}),
        });
      }
      await addBuffer(pack, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      await addBuffer(pack, 'index.json', JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests }));
    }
    pack.finalize();
    await done;
    fs.renameSync(tmp, out);
  } catch (err) {
    pack.destroy();
    fs.rmSync(tmp, { force: true });
    if (err instanceof BerthError) throw err;
    throw wrapSystemError('ARCHIVE_WRITE', `write "${out}"`, err);
  }
}
