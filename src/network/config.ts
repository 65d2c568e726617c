// berth's configuration file, for now only the default network mode of new containers:
// /etc/berth/berth.json, or the file named by $BERTH_CONFIG (tests and users who cannot
// write /etc). A missing file means the built-in defaults. Read by network/index.ts when
// `--network` is not given, and by `berth info`. Node host process.
//
//   {"network": {"default": "slirp4netns"}}     any --network value: "pasta", "none", ...
import * as fs from 'node:fs';
import { BerthError, isErrno } from '../common/errors';

export const SYSTEM_CONFIG = '/etc/berth/berth.json';
/** Docker's default is a bridge; without a daemon holding NAT rules, podman's rootless default is ours. */
export const BUILTIN_DEFAULT_NETWORK = 'slirp4netns';

export interface BerthConfig {
  network: { default: string };
}

export function configPath(): string {
  return process.env.BERTH_CONFIG || SYSTEM_CONFIG;
}

/**
 * The configuration, defaults filled in.
 * @throws BerthError CONFIG_INVALID when the file exists but is not JSON of this shape
 */
export function loadConfig(): BerthConfig & { path: string; found: boolean } {
  const file = configPath();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { path: file, found: false, network: { default: BUILTIN_DEFAULT_NETWORK } };
    throw new BerthError('CONFIG_INVALID', `read ${file}`, { cause: err, hint: 'make it readable, or point BERTH_CONFIG elsewhere' });
  }
  let v: any;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BerthError('CONFIG_INVALID', `${file} is not JSON: ${(err as Error).message}`, {
      hint: 'write it as {"network": {"default": "slirp4netns"}}',
    });
  }
  const d = v?.network?.default;
  if (v === null || typeof v !== 'object' || (v.network !== undefined && typeof v.network !== 'object') || (d !== undefined && typeof d !== 'string')) {
    throw new BerthError('CONFIG_INVALID', `${file}: "network.default" must be a string`, {
      hint: 'write it as {"network": {"default": "slirp4netns"}}',
    });
  }
  return { path: file, found: true, network: { default: d ?? BUILTIN_DEFAULT_NETWORK } };
}
