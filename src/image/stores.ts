// The engine root's stores opened together (docs/images.md): content (blobs), layers, and
// the image index, plus the lock that guards changes to them. Node host process.
import * as path from 'node:path';
import { withLock } from '../common/lock';
import { LayerStore } from '../storage/layer-store';
import { ContentStore } from './content-store';
import { ImageStore } from './image-store';

export interface Stores {
  root: string;
  content: ContentStore;
  layers: LayerStore;
  images: ImageStore;
  /** Runs FN holding the store lock. */
  locked<T>(fn: () => Promise<T> | T): Promise<T>;
}

export const DEFAULT_ROOT = '/var/lib/berth';

export function openStores(root: string): Stores {
  const abs = path.resolve(root);
  const layers = new LayerStore(abs);
  return {
    root: abs,
    content: new ContentStore(abs),
    layers,
    images: new ImageStore(abs),
    // Each writer first clears what killed commands left behind (docs/images.md).
    locked: (fn) => withLock(abs, () => {
      layers.cleanupDebris();
      return fn();
    }),
  };
}
