// Garbage collection of the stores: layers and blobs no image refers to (after rmi and
// image prune), and debris of killed commands. Call with the store lock held.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Stores } from './stores';

export interface GcResult {
  layers: number;
  blobs: number;
  bytes: number;
}

function duSync(p: string): number {
  let total = 0;
  const st = fs.lstatSync(p);
  if (st.isDirectory()) for (const n of fs.readdirSync(p)) total += duSync(path.join(p, n));
  else total += st.blocks * 512;
  return total;
}

/** Sizes of what exists now, for `system df`. */
export function diskUsage(stores: Stores): { layers: number; blobs: number } {
  const size = (d: string) => (fs.existsSync(d) ? duSync(d) : 0);
  return { layers: size(path.join(stores.root, 'layers')), blobs: size(path.join(stores.root, 'blobs')) };
}

export function collectGarbage(stores: Stores): GcResult {
  const images = stores.images.list();
  const keepLayers = new Set(images.flatMap((i) => i.layers.map((c) => c.replace(/^sha256:/, ''))));
  const keepBlobs = new Set(images.flatMap((i) => [i.manifestDigest, i.configDigest, ...i.layerBlobs.map((l) => l.digest)]));
  // Index and manifest-list blobs of pulled images: kept while a manifest they list is kept.
  const result: GcResult = { layers: 0, blobs: 0, bytes: 0 };
  const layersDir = path.join(stores.root, 'layers');
  for (const hex of fs.existsSync(layersDir) ? fs.readdirSync(layersDir) : []) {
    if (keepLayers.has(hex)) continue;
    const dir = path.join(layersDir, hex);
    result.bytes += duSync(dir);
    stores.layers.remove(`sha256:${hex}`);
    result.layers++;
  }
  for (const d of stores.content.list()) {
    if (keepBlobs.has(d)) continue;
    const doc = tryIndex(stores, d);
    if (doc && doc.some((m) => keepBlobs.has(m))) continue;
    result.bytes += stores.content.size(d);
    stores.content.remove(d);
    result.blobs++;
  }
  stores.layers.cleanupDebris();
  return result;
}

function tryIndex(stores: Stores, digest: string): string[] | undefined {
  if (stores.content.size(digest) > 4 * 1024 * 1024) return undefined;
  try {
    const doc = stores.content.readJSON<{ manifests?: { digest: string }[] }>(digest);
    return doc.manifests?.map((m) => m.digest);
  } catch {
    return undefined;
  }
}
