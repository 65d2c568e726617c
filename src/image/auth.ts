// Registry credentials: read from `$REGISTRY_AUTH_FILE` (podman's auth.json) and then
// `~/.docker/config.json`, both in Docker's format (`{"auths": {"<registry>": {"auth":
// base64("user:password")}}}`); written by `berth login`/`logout`. Runs in the berth process.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BerthError, isErrno, wrapSystemError } from '../common/errors';
import { writeFileAtomic } from '../common/atomic';
import { DEFAULT_DOMAIN } from './reference';

export interface Credentials {
  username: string;
  password: string;
}

// Docker Hub's credentials are stored under its v1 index URL, as `docker login` writes them.
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

interface AuthFile {
  auths?: Record<string, { auth?: string; [k: string]: unknown }>;
  [k: string]: unknown;
}

/** The files credentials are read from, in order: `$REGISTRY_AUTH_FILE`, then Docker's. */
export function authFiles(): string[] {
  const files: string[] = [];
  if (process.env.REGISTRY_AUTH_FILE) files.push(process.env.REGISTRY_AUTH_FILE);
  files.push(dockerConfigPath());
  return files;
}

/** `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`. */
export function dockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG ?? path.join(process.env.HOME || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** The file login/logout write: `$REGISTRY_AUTH_FILE` when set (as podman), else Docker's. */
export function authFileForWriting(): string {
  return process.env.REGISTRY_AUTH_FILE || dockerConfigPath();
}

/** "https://host:5000/v2/" -> "host:5000"; Docker Hub's aliases -> "docker.io". */
function normaliseKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  k = k.replace(/\/v[12]$/, '');
  const slash = k.indexOf('/');
  const host = slash < 0 ? k : k.slice(0, slash);
  if (DOCKER_HUB_ALIASES.has(host.toLowerCase())) return DEFAULT_DOMAIN + (slash < 0 ? '' : k.slice(slash));
  return k;
}

function readAuthFile(file: string): AuthFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw wrapSystemError('REGISTRY_AUTH_FILE_INVALID', `read credentials file "${file}"`, err);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as AuthFile;
  } catch (err) {
    throw new BerthError('REGISTRY_AUTH_FILE_INVALID', `credentials file "${file}" is not valid JSON`, {
      cause: err, hint: 'fix or remove the file, then run `berth login` again', context: { path: file },
    });
  }
}

function decode(file: string, key: string, auth: string): Credentials {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) {
    throw new BerthError('REGISTRY_AUTH_FILE_INVALID', `credentials for "${key}" in "${file}" are not base64 of user:password`, {
      hint: `run \`berth login ${key}\` again`, context: { path: file },
    });
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Credentials for REPOSITORY ("domain/path", or a bare registry "domain"). An entry for
 * "domain/namespace" (podman allows those) wins over one for the whole registry; the
 * first file that has a matching entry wins.
 * TODO(auth): Docker's credsStore/credHelpers (docker-credential-* programs) and
 * identitytoken are not read; such users get anonymous access until they `berth login`.
 * @throws BerthError REGISTRY_AUTH_FILE_INVALID
 */
export function getCredentials(repository: string): Credentials | undefined {
  const wanted = normaliseKey(repository);
  const candidates: string[] = [];
  for (let p = wanted; p; p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') candidates.push(p);

  for (const file of authFiles()) {
    const auths = readAuthFile(file)?.auths ?? {};
    const byKey = new Map<string, string>();
    for (const [key, entry] of Object.entries(auths)) {
      if (typeof entry?.auth === 'string' && entry.auth !== '') byKey.set(normaliseKey(key), key);
    }
    for (const c of candidates) {
      const key = byKey.get(c);
      if (key !== undefined) return decode(file, key, auths[key].auth as string);
    }
  }
  return undefined;
}

function keyFor(registry: string): string {
  const k = normaliseKey(registry);
  return k === DEFAULT_DOMAIN ? DOCKER_HUB_KEY : k;
}

/**
 * Stores credentials for REGISTRY ("host[:port]" or "docker.io") in `authFileForWriting()`,
 * keeping every other field of the file; written atomically with mode 0600. Does not
 * check them against the registry (the caller does, with RegistryClient).
 * @returns the file written
 * @throws BerthError REGISTRY_AUTH_FILE_INVALID, REGISTRY_AUTH_WRITE
 */
export function login(registry: string, username: string, password: string): string {
  if (username.includes(':')) {
    throw new BerthError('REGISTRY_AUTH_INVALID', `user name "${username}" contains ":"`, {
      hint: 'the Docker credentials format cannot hold a user name with a colon',
    });
  }
  const file = authFileForWriting();
  const config = readAuthFile(file) ?? {};
  const auths = { ...(config.auths ?? {}) };
  for (const key of Object.keys(auths)) if (normaliseKey(key) === normaliseKey(registry)) delete auths[key];
  auths[keyFor(registry)] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  write(file, { ...config, auths });
  return file;
}

/**
 * Removes REGISTRY's credentials from `authFileForWriting()`.
 * @returns false when there were none
 * @throws BerthError REGISTRY_AUTH_FILE_INVALID, REGISTRY_AUTH_WRITE
 */
export function logout(registry: string): boolean {
  const file = authFileForWriting();
  const config = readAuthFile(file);
  if (!config?.auths) return false;
  const auths = { ...config.auths };
  let found = false;
  for (const key of Object.keys(auths)) {
    if (normaliseKey(key) === normaliseKey(registry)) {
      delete auths[key];
      found = true;
    }
  }
  if (found) write(file, { ...config, auths });
  return found;
}

function write(file: string, config: AuthFile): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify(config, null, '\t') + '\n', 0o600);
    // writeFileAtomic's mode applies only to a new temp file, and the umask may narrow it,
    // never widen it; chmod makes 0600 certain.
    fs.chmodSync(file, 0o600);
  } catch (err) {
    throw wrapSystemError('REGISTRY_AUTH_WRITE', `write credentials file "${file}"`, err);
  }
}
