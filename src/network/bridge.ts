// Placeholder until bridge networks land (issue 5): the mode is known but refused.
import { BerthError } from '../common/errors';
import type { NetworkDriver } from './types';

export const bridgeDriver: NetworkDriver = {
  async setup() {
    throw new BerthError('NETWORK_UNSUPPORTED', 'bridge networks are not built yet', { hint: 'use --network slirp4netns, pasta, host or none' });
  },
  async teardown() {},
};
