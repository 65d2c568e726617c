// The engine root's stores opened together (docs/images.md): content (blobs), layers, and
// the image index, plus the lock that guards changes to them. Node host process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError, isErrno } from '../common/errors';
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

/** @throws BerthError STORAGE_ROOT_INVALID when ROOT is there but is not a directory */
export function openStores(root: string): Stores {
  const abs = path.resolve(root);
  // A missing root is made by the first writer; a file there would read as an empty store.
  const notDir = (() => {
    try {
      const st = fs.statSync(abs, { throwIfNoEntry: false });
      return !!st && !st.isDirectory();
    } catch (err) {
      return isErrno(err, 'ENOTDIR'); // a file on its path
    }
  })();
  if (notDir) {
    throw new BerthError('STORAGE_ROOT_INVALID', `the root ${abs} is not a directory (or a file is on its path)`, {
      hint: `give --root (or BERTH_ROOT) a directory, or a path that does not exist yet; the default is ${DEFAULT_ROOT}`,
    });
  }
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
