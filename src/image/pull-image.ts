// `berth pull`: downloads (pull.ts) without the store lock, so other commands go on
// meanwhile, then unpacks and records the image under the lock (commit.ts).
import type { Logger } from '../common/log';
import { commitImage, ImageConfig } from './commit';
import type { ImageRecord } from './image-store';
import { pullImage, PullProgress } from './pull';
import { parseReference } from './reference';
import { RegistryClient } from './registry';
import type { Stores } from './stores';

export interface PullCommandOptions {
  platform?: string;
  tlsVerify?: boolean;
  onProgress?: (e: PullProgress) => void;
  log?: Logger;
}

/**
 * @throws BerthError IMAGE_*, REGISTRY_*, LAYER_* (see pullImage and commitImage)
 */
export async function pullAndCommit(stores: Stores, name: string, opts: PullCommandOptions = {}): Promise<ImageRecord> {
  const ref = parseReference(name);
  const registry = new RegistryClient({ tlsVerify: opts.tlsVerify, log: opts.log });
  const r = await pullImage(ref, {
    contentStore: stores.content, registry, platform: opts.platform, onProgress: opts.onProgress, log: opts.log,
  });
  return stores.locked(() => commitImage(stores, {
    layers: r.layers, config: r.config as ImageConfig, configDigest: r.configDigest, manifestDigest: r.manifestDigest,
    repoTags: ref.digest ? [] : [ref.toString()],
    repoDigests: [`${ref.repository()}@${r.repoDigest}`],
  }));
}
