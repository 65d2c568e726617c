// Records an image whose layer blobs are already in the content store: unpacks each layer
// into the layer store (bottom first, chained), writes config and manifest blobs when they
// are not given, and adds the image to the index. Shared by pull, load and import.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { BerthError } from '../common/errors';
import type { ImageRecord, LayerBlob } from './image-store';
import type { Stores } from './stores';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Record<string, unknown>[];
}

export const sha256 = (buf: Buffer | string): string => 'sha256:' + createHash('sha256').update(buf).digest('hex');

/** Stores BUF (a JSON document) as a blob; returns its descriptor. */
export async function putJSON(stores: Stores, doc: unknown, mediaType: string): Promise<LayerBlob> {
  const buf = Buffer.from(JSON.stringify(doc));
  const digest = sha256(buf);
  if (!stores.content.has(digest)) await stores.content.put(digest, Readable.from([buf]));
  return { digest, size: buf.length, mediaType };
}

/** The compression a layer blob uses, by its first bytes. */
export function layerMediaType(file: string): string {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(4);
  try {
    fs.readSync(fd, head, 0, 4, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return MEDIA.ociLayerGzip;
  if (head.readUInt32LE(0) === 0xfd2fb528) return MEDIA.ociLayerZstd;
  return MEDIA.ociLayer;
}

function layerSize(stores: Stores, chainID: string): number {
  return stores.layers.info(chainID).size;
}

export interface CommitInput {
  layers: LayerBlob[];
  /** The image config; when absent its rootfs.diff_ids are filled from the unpacked layers. */
  config: ImageConfig;
  /** An existing manifest blob (pull, load of an OCI image), or undefined to write one. */
  manifestDigest?: string;
  configDigest?: string;
  repoTags: string[];
  repoDigests?: string[];
}

/**
 * Unpacks the layers and records the image. Call with the store lock held.
 * @throws BerthError LAYER_DIFFID_MISMATCH, IMAGE_CONFIG_INVALID, and the layer store's
 */
export async function commitImage(stores: Stores, input: CommitInput): Promise<ImageRecord> {
  const diffIDs = input.config.rootfs?.diff_ids ?? [];
  if (input.configDigest && diffIDs.length !== input.layers.length) {
    throw new BerthError('IMAGE_CONFIG_INVALID',
      `image config lists ${diffIDs.length} layers but the manifest has ${input.layers.length}`);
  }
  const chainIDs: string[] = [];
  const unpackedDiffIDs: string[] = [];
  let parent: string | null = null;
  for (const [i, layer] of input.layers.entries()) {
    const chain: string = await stores.layers.ensure(parent, () => stores.content.read(layer.digest), diffIDs[i]);
    chainIDs.push(chain);
    unpackedDiffIDs.push(diffIDs[i] ?? (parent === null ? chain : diffIDOf(stores, chain)));
    parent = chain;
  }

  let configDigest = input.configDigest;
  if (!configDigest) {
    const config = { ...input.config, rootfs: { type: 'layers', diff_ids: unpackedDiffIDs } };
    configDigest = (await putJSON(stores, config, MEDIA.ociConfig)).digest;
  }
  let manifestDigest = input.manifestDigest;
  if (!manifestDigest) {
    const manifest = {
      schemaVersion: 2, mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: stores.content.size(configDigest) },
      layers: input.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    manifestDigest = (await putJSON(stores, manifest, MEDIA.ociManifest)).digest;
  }
  return stores.images.add({
    id: configDigest, manifestDigest, configDigest, layers: chainIDs, layerBlobs: input.layers,
    repoTags: input.repoTags, repoDigests: input.repoDigests ?? [],
    created: input.config.created ?? new Date().toISOString(),
    size: chainIDs.reduce((n, c) => n + layerSize(stores, c), 0),
  });
}

function diffIDOf(stores: Stores, chainID: string): string {
  return stores.layers.info(chainID).diffID;
}
