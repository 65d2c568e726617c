// `berth system df`: what images, containers and local volumes hold on disk, with what is
// in use (ACTIVE) and what their prune commands could free (RECLAIMABLE), as Docker's.
// Node host process; cli/ prints the tables. Test: test/integration/system-df.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../common/log';
import type { ImageRecord } from '../image/image-store';
import type { Stores } from '../image/stores';
import type { ContainerRecord } from './containers';
import { ContainerStore } from './containers';
import { dirSize } from './container-ops';
import { listContainers } from './lifecycle';
import { VolumeRecord, VolumeStore } from './volumes';

export interface UsageRow {
  total: number;
  active: number;
  /** Bytes. */
  size: number;
  reclaimable: number;
}

export interface DiskUsage {
  images: UsageRow;
  containers: UsageRow;
  volumes: UsageRow;
  /** Per item, for -v. */
  imageList: { image: ImageRecord; size: number; containers: number }[];
  containerList: { container: ContainerRecord; size: number; volumes: number }[];
  volumeList: { volume: VolumeRecord; size: number; links: number }[];
}

/** Blocks in use under P (as du): layers share nothing but are real files on disk. */
function du(p: string): number {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return 0;
  }
  let total = st.blocks * 512;
  let names: string[] = [];
  try {
    if (st.isDirectory()) names = fs.readdirSync(p);
  } catch {
    // removed since the lstat (an image removed meanwhile)
  }
  for (const n of names) total += du(path.join(p, n));
  return total;
}

/**
 * Measures the store under STORES.root. Images: the unpacked layers and blobs (a layer
 * shared by images counts once); ACTIVE are those a container (any state) was made
 * from, and what only the others hold is reclaimable. Containers: their writable layers;
 * ACTIVE are the running ones, the others' layers are reclaimable (container prune).
 * Volumes: ACTIVE are those any container mounts; unused ones are reclaimable.
 */
export async function diskUsage(stores: Stores, log: Logger): Promise<DiskUsage> {
  const cs = new ContainerStore(stores.root);
  const containers = await listContainers(stores.root, log);
  const images = stores.images.list();
  const usedImages = new Set(containers.map((c) => c.imageId));

  // Each layer and blob once, with the images that hold it.
  const layerSize = new Map<string, number>();
  const blobSize = new Map<string, number>();
  const partsOf = (img: ImageRecord) => ({
    layers: img.layers,
    blobs: [img.manifestDigest, img.configDigest, ...img.layerBlobs.map((l) => l.digest)],
  });
  for (const img of images) {
    const p = partsOf(img);
    for (const l of p.layers) if (!layerSize.has(l)) layerSize.set(l, du(stores.layers.path(l)));
    for (const b of p.blobs) if (!blobSize.has(b)) blobSize.set(b, stores.content.has(b) ? stores.content.size(b) : 0);
  }
  const sum = (m: Map<string, number>, keys?: Set<string>) =>
    [...m].filter(([k]) => !keys || keys.has(k)).reduce((a, [, v]) => a + v, 0);
  const activeLayers = new Set<string>();
  const activeBlobs = new Set<string>();
  for (const img of images.filter((i) => usedImages.has(i.id))) {
    const p = partsOf(img);
    p.layers.forEach((l) => activeLayers.add(l));
    p.blobs.forEach((b) => activeBlobs.add(b));
  }
  const imagesSize = sum(layerSize) + sum(blobSize);
  const imageList = images.map((image) => {
    const p = partsOf(image);
    const size = p.layers.reduce((a, l) => a + (layerSize.get(l) ?? 0), 0) + p.blobs.reduce((a, b) => a + (blobSize.get(b) ?? 0), 0);
    return { image, size, containers: containers.filter((c) => c.imageId === image.id).length };
  });

  const containerList = containers.map((container) => ({
    container, size: dirSize(cs.path(container.id, 'upper')),
    volumes: (container.mounts ?? []).filter((m) => m.Type === 'volume').length,
  }));
  const running = containerList.filter((c) => c.container.state.status === 'running');

  const volumes = new VolumeStore(stores.root).list();
  const links = (name: string) =>
    containers.filter((c) => (c.mounts ?? []).some((m) => m.Type === 'volume' && m.Name === name)).length;
  const volumeList = volumes.map((volume) => ({ volume, size: dirSize(volume.Mountpoint), links: links(volume.Name) }));

  const total = <T>(list: T[], size: (t: T) => number) => list.reduce((a, t) => a + size(t), 0);
  return {
    images: {
      total: images.length, active: images.filter((i) => usedImages.has(i.id)).length, size: imagesSize,
      reclaimable: imagesSize - sum(layerSize, activeLayers) - sum(blobSize, activeBlobs),
    },
    containers: {
      total: containers.length, active: running.length, size: total(containerList, (c) => c.size),
      reclaimable: total(containerList, (c) => c.size) - total(running, (c) => c.size),
    },
    volumes: {
      total: volumes.length, active: volumeList.filter((v) => v.links > 0).length, size: total(volumeList, (v) => v.size),
      reclaimable: total(volumeList.filter((v) => v.links === 0), (v) => v.size),
    },
    imageList, containerList, volumeList,
  };
}
