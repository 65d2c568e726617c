// `berth pull`'s download half: manifest (and index), config and layer blobs from a
// registry into the ContentStore, every digest verified, layers three at a time, streamed.
// Unpacking (src/storage) and the image index (image-store.ts) come after, from the result.
import { Readable } from 'node:stream';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import type { ContentStore } from './content-store';
import { parseReference, type Reference } from './reference';
import type { Descriptor, ImageManifest, Platform, RegistryClient } from './registry';

export interface PullProgress {
  /** What the blob is. */
  kind: 'manifest' | 'config' | 'layer';
  digest: string;
  /** Bytes stored so far. */
  bytes: number;
  /** The blob's size from its descriptor, in bytes. */
  total: number;
  /** waiting: queued; downloading: bytes moving; exists: already stored; done: verified
   * and stored; retrying: a transfer broke and starts again from 0. */
  status: 'waiting' | 'downloading' | 'exists' | 'done' | 'retrying';
}

export interface PullOptions {
  contentStore: ContentStore;
  registry: RegistryClient;
  /** "os/arch[/variant]" or a Platform; default: this host's. */
  platform?: Platform | string;
  onProgress?: (e: PullProgress) => void;
  /** Layers downloaded at once. Default 3, as Docker's max-concurrent-downloads. */
  concurrency?: number;
  /** Whole-blob attempts after a transfer breaks mid-stream. Default 2. */
  blobRetries?: number;
  log?: Logger;
}

export interface PulledLayer {
  digest: string;
  size: number;
  mediaType: string;
}

export interface PullResult {
  reference: Reference;
  /** The image manifest's digest (for a multi-platform image, the chosen platform's). */
  manifestDigest: string;
  manifestMediaType: string;
  manifest: ImageManifest;
  /** The index or manifest list's digest when the reference named one. */
  indexDigest?: string;
  /** What Docker lists in RepoDigests: the index digest if any, else the manifest's. */
  repoDigest: string;
  configDigest: string;
  config: ImageConfig;
  layers: PulledLayer[];
  platform?: Platform;
}

/** The parts of the image config (OCI image-spec config.md) that pull checks. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  rootfs?: { type: string; diff_ids: string[] };
  config?: Record<string, unknown>;
  [k: string]: unknown;
}

// Codes after which fetching the same blob again cannot help.
const FINAL = new Set(['IMAGE_DIGEST_MISMATCH', 'IMAGE_SIZE_MISMATCH', 'IMAGE_DIGEST_INVALID', 'IMAGE_BLOB_WRITE',
  'REGISTRY_NOT_FOUND', 'REGISTRY_UNAUTHORIZED', 'REGISTRY_TLS', 'REGISTRY_BAD_RESPONSE']);

/**
 * Pulls REF's manifest, config and layers into the content store. Blobs already stored
 * are not fetched again. Memory does not grow with layer size: each blob streams from
 * the socket through the hash to its file. On failure, blobs already verified stay (the
 * next pull reuses them) and nothing unverified is stored.
 * @throws BerthError IMAGE_REFERENCE_INVALID, IMAGE_DIGEST_MISMATCH, IMAGE_SIZE_MISMATCH,
 *   IMAGE_CONFIG_INVALID, IMAGE_PLATFORM_NOT_FOUND, IMAGE_MANIFEST_*, REGISTRY_* (see
 *   RegistryClient), IMAGE_BLOB_WRITE
 */
export async function pullImage(ref: string | Reference, opts: PullOptions): Promise<PullResult> {
  const reference = typeof ref === 'string' ? parseReference(ref) : ref;
  const { contentStore: store, registry } = opts;
  const progress = opts.onProgress ?? (() => undefined);

  const m = await registry.getManifest(reference, opts.platform);
  if (m.index) await putBytes(store, m.index.digest, m.index.bytes);
  await putBytes(store, m.digest, m.bytes);
  progress({ kind: 'manifest', digest: m.digest, bytes: m.bytes.length, total: m.bytes.length, status: 'done' });
  opts.log?.debug('pull manifest stored', { ref: reference.toString(), digest: m.digest, index: m.index?.digest });

  const configDesc = m.manifest.config;
  await fetchBlob(reference, configDesc, 'config', opts, progress);
  const config = store.readJSON<ImageConfig>(configDesc.digest);
  checkConfig(reference, configDesc.digest, config, m.manifest);

  const layers = m.manifest.layers;
  for (const l of layers) progress({ kind: 'layer', digest: l.digest, bytes: 0, total: l.size, status: 'waiting' });
  // The same layer may appear twice (an empty layer repeated): download it once.
  const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
  await runLimited(unique, opts.concurrency ?? 3, (l) => fetchBlob(reference, l, 'layer', opts, progress));

  return {
    reference,
    manifestDigest: m.digest,
    manifestMediaType: m.mediaType,
    manifest: m.manifest,
    indexDigest: m.index?.digest,
    repoDigest: m.index?.digest ?? m.digest,
    configDigest: configDesc.digest,
    config,
    layers: layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    platform: m.platform,
  };
}

async function putBytes(store: ContentStore, digest: string, bytes: Buffer): Promise<void> {
  if (!store.has(digest)) await store.put(digest, Readable.from([bytes]), { expectedSize: bytes.length });
}

async function fetchBlob(ref: Reference, d: Descriptor, kind: PullProgress['kind'], opts: PullOptions,
  progress: (e: PullProgress) => void): Promise<void> {
  const store = opts.contentStore;
  if (store.has(d.digest)) {
    progress({ kind, digest: d.digest, bytes: d.size, total: d.size, status: 'exists' });
    return;
  }
  const retries = opts.blobRetries ?? 2;
  for (let attempt = 0; ; attempt++) {
    try {
      const stream = await opts.registry.getBlob(ref, d.digest);
      progress({ kind, digest: d.digest, bytes: 0, total: d.size, status: 'downloading' });
      await store.put(d.digest, stream, {
        expectedSize: d.size,
        onProgress: (bytes) => progress({ kind, digest: d.digest, bytes, total: d.size, status: 'downloading' }),
      });
      progress({ kind, digest: d.digest, bytes: d.size, total: d.size, status: 'done' });
      return;
    } catch (err) {
      const final = err instanceof BerthError && FINAL.has(err.code);
      if (final || attempt >= retries) {
        if (err instanceof BerthError) throw err;
        throw new BerthError('REGISTRY_UNREACHABLE', `download ${kind} ${d.digest} of "${ref.repository()}"`, {
          cause: err, hint: 'the connection broke repeatedly; check the network and try again',
        });
      }
      opts.log?.debug('pull blob retried', { digest: d.digest, attempt: attempt + 1, error: String(err) });
      progress({ kind, digest: d.digest, bytes: 0, total: d.size, status: 'retrying' });
    }
  }
}

// The config must describe the layers the manifest lists (image-spec config.md: one diff
// ID per layer, in order); unpacking relies on it to verify each layer's diffID.
function checkConfig(ref: Reference, digest: string, config: ImageConfig, manifest: ImageManifest): void {
  const diffIDs = config?.rootfs?.diff_ids;
  if (typeof config !== 'object' || config === null || !Array.isArray(diffIDs) || config.rootfs?.type !== 'layers') {
    throw new BerthError('IMAGE_CONFIG_INVALID', `config ${digest} of "${ref.toString()}" has no rootfs.diff_ids`);
  }
  if (diffIDs.length !== manifest.layers.length) {
    throw new BerthError('IMAGE_CONFIG_INVALID',
      `config ${digest} of "${ref.toString()}" lists ${diffIDs.length} diff IDs for ${manifest.layers.length} layers`);
  }
}

/** Runs WORK on each item, at most LIMIT at once; the first failure is thrown once all
 * started work has settled, so no download is left writing behind the caller's back. */
async function runLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.err;
}
