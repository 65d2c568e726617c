// The OCI distribution API client (pull side) over Node's built-in fetch: manifests and
// blobs, bearer-token and basic auth, retries, platform selection in indexes. Used by
// pull.ts in the berth process. Plain HTTP only for loopback hosts or tlsVerify: false.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { topDir } from '../common/paths';
import { getCredentials, type Credentials } from './auth';
import { DEFAULT_DOMAIN, isDigest, type Reference } from './reference';

export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

const ACCEPT = [MediaType.OCI_INDEX, MediaType.DOCKER_LIST, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST].join(', ');
const INDEX_TYPES = new Set<string>([MediaType.OCI_INDEX, MediaType.DOCKER_LIST]);
const MANIFEST_TYPES = new Set<string>([MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST]);
// containerd's limit: a manifest is small JSON; a huge one is a broken or hostile server.
const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_REDIRECTS = 5;
// Docker Hub's API host; "docker.io" itself serves only the website.
const DOCKER_HUB_API = 'registry-1.docker.io';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

interface ImageIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface RawManifest {
  digest: string;
  mediaType: string;
  /** The bytes exactly as served: their sha256 is DIGEST. */
  bytes: Buffer;
}

export interface ManifestResult extends RawManifest {
  manifest: ImageManifest;
  /** The index or manifest list the manifest was chosen from, when there was one. */
  index?: RawManifest;
  /** The platform entry chosen from the index. */
  platform?: Platform;
}

export interface RegistryOptions {
  /** false allows plain HTTP to any registry (Docker's insecure registries). Default true. */
  tlsVerify?: boolean;
  /** Credentials for a repository ("domain/path"); default: auth.ts's files. */
  credentials?: (repository: string) => Credentials | undefined;
  /** Attempts after the first on 429, 5xx and connection errors. Default 3. */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt. Default 250. */
  retryDelayMs?: number;
  log?: Logger;
  userAgent?: string;
  /** A PEM file of CA certificates trusted besides Node's own; default: the file named by
   * BERTH_EXTRA_CA_CERTS (see extraCaFile). */
  extraCaFile?: string;
}

/**
 * The user's extra CA certificates when Node did not load them itself. bin/berth keeps
 * NODE_EXTRA_CA_CERTS only for the commands that always speak TLS (pull, login, ...):
 * Node parses that file at start-up, ~80 ms here (HOST-NOTES.md). The others, such as
 * `run`, which pulls only a missing image, get the name as BERTH_EXTRA_CA_CERTS, and the
 * file is read here only when a registry is reached.
 */
export function extraCaFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NODE_EXTRA_CA_CERTS) return undefined; // already in Node's default store
  return env.BERTH_EXTRA_CA_CERTS || undefined;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

interface Endpoint {
  base: string;
  challenge?: Challenge;
}

/** "linux/arm64/v8" -> { os, architecture, variant }. @throws BerthError IMAGE_PLATFORM_INVALID */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new BerthError('IMAGE_PLATFORM_INVALID', `platform "${s}" is not valid`, {
      hint: 'use os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7',
    });
  }
  return normalisePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

/** The platform this process runs on, in OCI's names. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const p: Platform = { os: 'linux', architecture: arch[process.arch] ?? process.arch };
  if (p.architecture === 'arm') p.variant = 'v7';
  return normalisePlatform(p);
}

// containerd's platforms.Normalize: the aliases people type, and each architecture's
// default variant, which an index may or may not spell out.
function normalisePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'armhf') [architecture, variant] = ['arm', 'v7'];
  if (architecture === 'armel') [architecture, variant] = ['arm', 'v6'];
  if (architecture === 'arm64' && variant === undefined) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** True for hosts that may be spoken to in plain HTTP: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(domain: string): boolean {
  let host = domain;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  host = host.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

/** Parses `Bearer realm="...",service="...",scope="..."` (RFC 7235, one challenge). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) params[p[1].toLowerCase()] = (p[2] ?? p[3]).replace(/\\(.)/g, '$1');
  return { scheme: m[1].toLowerCase(), params };
}

function sha256(data: Buffer): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A fetch failure below HTTP (refused, reset, DNS, TLS): its code, e.g. ECONNRESET. */
function networkCode(err: unknown): string {
  let e = err as { code?: string; cause?: unknown } | undefined;
  let message: string | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as typeof e) {
    if (typeof e.code === 'string') return e.code;
    // undici's own refusals ("bad port") carry no code: the innermost message says why.
    if (i > 0 && typeof (e as { message?: unknown }).message === 'string') message = (e as { message: string }).message;
  }
  return message || 'unknown';
}

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|HOSTNAME/;

export class RegistryClient {
  private readonly tlsVerify: boolean;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly credentialsFor: (repository: string) => Credentials | undefined;
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  private readonly tokens = new Map<string, string>();
  /** undici's Dispatcher with the extra CAs (fetch's `dispatcher`), made on first use. */
  private dispatcher: unknown;

  constructor(private readonly opts: RegistryOptions = {}) {
    this.tlsVerify = opts.tlsVerify ?? true;
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    this.credentialsFor = opts.credentials ?? getCredentials;
  }

  /**
   * Fetches REF's manifest. An OCI index or Docker manifest list is resolved to the entry
   * for PLATFORM (default: this host's, linux/amd64 on x86-64), which is then fetched by
   * digest. Every manifest fetched by digest is checked against that digest.
   * @throws BerthError REGISTRY_NOT_FOUND, REGISTRY_UNAUTHORIZED, REGISTRY_UNREACHABLE,
   *   REGISTRY_BAD_RESPONSE, REGISTRY_TLS, IMAGE_DIGEST_MISMATCH, IMAGE_MANIFEST_INVALID,
   *   IMAGE_MANIFEST_UNSUPPORTED, IMAGE_PLATFORM_NOT_FOUND
   */
  async getManifest(ref: Reference, platform?: Platform | string): Promise<ManifestResult> {
    const want = typeof platform === 'string' ? parsePlatform(platform) : normalisePlatform(platform ?? hostPlatform());
    const first = await this.getRawManifest(ref, ref.digest ?? (ref.tag as string));
    if (MANIFEST_TYPES.has(first.mediaType)) return { ...first, manifest: this.checkManifest(ref, first) };

    const index = this.parseJSON<ImageIndex>(ref, first);
    if (!Array.isArray(index.manifests)) throw this.invalid(ref, first.digest, 'it has no "manifests" list');
    const chosen = this.choosePlatform(ref, index.manifests, want);
    const raw = await this.getRawManifest(ref, chosen.digest);
    if (!MANIFEST_TYPES.has(raw.mediaType)) {
      throw this.invalid(ref, raw.digest, `index entry has media type "${raw.mediaType}", not an image manifest`);
    }
    return { ...raw, manifest: this.checkManifest(ref, raw), index: first, platform: chosen.platform };
  }

  /**
   * A stream of blob DIGEST of REF's repository, as the registry (or the storage it
   * redirects to) serves it. Not verified here: ContentStore.put does that. A transfer
   * that breaks fails the stream's reader, not the process.
   * @throws BerthError REGISTRY_NOT_FOUND, REGISTRY_UNAUTHORIZED, REGISTRY_UNREACHABLE,
   *   REGISTRY_BAD_RESPONSE, REGISTRY_TLS, IMAGE_DIGEST_INVALID
   */
  async getBlob(ref: Reference, digest: string): Promise<Readable> {
    if (!isDigest(digest)) throw new BerthError('IMAGE_DIGEST_INVALID', `digest "${digest}" is not valid`);
    const res = await this.request(ref, `blobs/${digest}`, {}, `blob ${digest} of "${ref.repository()}"`);
    if (!res.body) throw this.bad(ref, `blob ${digest} came with no body`);
    const stream = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
    // XXX: a connection reset before the caller starts reading would otherwise be an
    // uncaught 'error' event that kills the process. The error stays stored in the stream
    // and is thrown to whoever reads it (for await, pipeline).
    stream.on('error', () => undefined);
    return stream;
  }

  /**
   * Checks that the registry of REF accepts our credentials (for `berth login`): gets a
   * pull token for REF's repository, or a basic-auth /v2/ answer.
   * @throws BerthError REGISTRY_UNAUTHORIZED, REGISTRY_UNREACHABLE, REGISTRY_BAD_RESPONSE
   */
  async checkAuth(ref: Reference): Promise<void> {
    const ep = await this.endpoint(ref.domain);
    if (ep.challenge?.scheme === 'bearer') await this.token(ref, ep.challenge, true);
    else await this.request(ref, '', {}, `registry "${ref.domain}"`, { root: true });
  }

  private async getRawManifest(ref: Reference, tagOrDigest: string): Promise<RawManifest> {
    const what = isDigest(tagOrDigest) ? ref.withDigest(tagOrDigest).toString() : ref.withTag(tagOrDigest).toString();
    const res = await this.request(ref, `manifests/${tagOrDigest}`, { accept: ACCEPT }, `manifest for "${what}"`);
    const bytes = await this.readLimited(ref, res, MAX_MANIFEST_BYTES, `manifest for "${what}"`);
    const digest = sha256(bytes);
    if (isDigest(tagOrDigest) && digest !== tagOrDigest) {
      throw new BerthError('IMAGE_DIGEST_MISMATCH', `manifest for "${what}" has digest ${digest}, expected ${tagOrDigest}`, {
        hint: 'the registry sent a different manifest than the one asked for; nothing was stored',
      });
    }

    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    let declared: unknown;
    try {
      declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    } catch {
      declared = undefined;
    }
    // The manifest's own mediaType field is authoritative; registries often serve
    // application/json or text/plain for OCI manifests that omit it.
    if (typeof declared === 'string') mediaType = declared;
    if (mediaType === MediaType.DOCKER_SCHEMA1 || mediaType === MediaType.DOCKER_SCHEMA1_SIGNED) {
      throw new BerthError('IMAGE_MANIFEST_UNSUPPORTED', `manifest for "${what}" is Docker schema 1, which berth does not support`, {
        hint: 'push the image again with a current Docker, podman or skopeo (schema 2 or OCI)',
      });
    }
    if (!INDEX_TYPES.has(mediaType) && !MANIFEST_TYPES.has(mediaType)) mediaType = this.sniff(ref, what, bytes, mediaType);
    return { digest, mediaType, bytes };
  }

  // An OCI manifest or index may omit mediaType (image-spec makes it optional before 1.1):
  // decide by shape, as containerd does.
  private sniff(ref: Reference, what: string, bytes: Buffer, served: string): string {
    try {
      const m = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      if (Array.isArray(m.manifests)) return MediaType.OCI_INDEX;
      if (m.config && Array.isArray(m.layers)) return MediaType.OCI_MANIFEST;
    } catch {
      // reported below
    }
    throw new BerthError('IMAGE_MANIFEST_UNSUPPORTED', `manifest for "${what}" has unsupported media type "${served || 'none'}"`, {
      hint: 'berth pulls OCI and Docker schema 2 images, single- and multi-platform',
      context: { field: ref.toString() },
    });
  }

  private parseJSON<T>(ref: Reference, raw: RawManifest): T {
    try {
      const v = JSON.parse(raw.bytes.toString('utf8')) as unknown;
      if (typeof v !== 'object' || v === null) throw new Error('not an object');
      return v as T;
    } catch (err) {
      throw new BerthError('IMAGE_MANIFEST_INVALID', `manifest ${raw.digest} of "${ref.repository()}" is not valid JSON`, { cause: err });
    }
  }

  private checkDescriptor(ref: Reference, digest: string, d: unknown, where: string): Descriptor {
    const x = d as Partial<Descriptor> | undefined;
    if (!x || typeof x.mediaType !== 'string' || typeof x.digest !== 'string' || !isDigest(x.digest) ||
      typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) {
      throw this.invalid(ref, digest, `${where} is not a descriptor with mediaType, a sha256 digest and a size`);
    }
    return x as Descriptor;
  }

  private checkManifest(ref: Reference, raw: RawManifest): ImageManifest {
    const m = this.parseJSON<ImageManifest>(ref, raw);
    if (m.schemaVersion !== 2) throw this.invalid(ref, raw.digest, `schemaVersion is ${String(m.schemaVersion)}, not 2`);
    this.checkDescriptor(ref, raw.digest, m.config, 'config');
    if (!Array.isArray(m.layers)) throw this.invalid(ref, raw.digest, 'it has no "layers" list');
    m.layers.forEach((l, i) => this.checkDescriptor(ref, raw.digest, l, `layers[${i}]`));
    return m;
  }

  private choosePlatform(ref: Reference, entries: Descriptor[], want: Platform): Descriptor & { platform: Platform } {
    const usable: (Descriptor & { platform: Platform })[] = [];
    entries.forEach((e, i) => {
      this.checkDescriptor(ref, ref.toString(), e, `manifests[${i}]`);
      // BuildKit's attestation manifests sit in the index as platform unknown/unknown.
      if (e.platform && e.platform.os !== 'unknown') usable.push({ ...e, platform: normalisePlatform(e.platform) });
    });
    const match = usable.find((e) => e.platform.os === want.os && e.platform.architecture === want.architecture &&
      (want.variant === undefined || e.platform.variant === want.variant));
    if (match) return match;
    const available = usable.map((e) => platformString(e.platform)).join(', ') || 'none';
    throw new BerthError('IMAGE_PLATFORM_NOT_FOUND', `image "${ref.toString()}" has no manifest for platform ${platformString(want)}`, {
      hint: `it has: ${available}; choose one with --platform`,
    });
  }

  private async readLimited(ref: Reference, res: Response, limit: number, what: string): Promise<Buffer> {
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > limit) {
      await res.body?.cancel();
      throw this.bad(ref, `${what} is ${declared} bytes, more than the ${limit} allowed`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (size > limit) throw this.bad(ref, `${what} is more than the ${limit} bytes allowed`);
        chunks.push(Buffer.from(chunk));
      }
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw this.unreachable(ref.domain, err, `read ${what}`);
    }
    return Buffer.concat(chunks);
  }

  private host(domain: string): string {
    return domain === DEFAULT_DOMAIN ? DOCKER_HUB_API : domain;
  }

  private insecureAllowed(domain: string): boolean {
    return !this.tlsVerify || isLoopbackHost(domain);
  }

  /** Finds the scheme and auth challenge of DOMAIN by `GET /v2/`, once per client. As
   * Docker, a registry allowed to be insecure is tried with HTTPS first, then HTTP. */
  private endpoint(domain: string): Promise<Endpoint> {
    let ep = this.endpoints.get(domain);
    if (!ep) {
      ep = this.ping(domain);
      this.endpoints.set(domain, ep);
      ep.catch(() => this.endpoints.delete(domain));
    }
    return ep;
  }

  private async ping(domain: string): Promise<Endpoint> {
    const host = this.host(domain);
    const schemes = this.insecureAllowed(domain) ? ['https', 'http'] : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const base = `${scheme}://${host}`;
      let res: Response;
      try {
        // Only the last scheme retries: a refused HTTPS port on an HTTP registry is normal.
        res = await this.fetchRetrying(domain, `${base}/v2/`, {}, scheme === schemes[schemes.length - 1]);
      } catch (err) {
        // A TLS failure says more than the plain-HTTP attempt after it.
        if (!lastErr || !TLS_CODES.test(networkCode(lastErr))) lastErr = err;
        this.opts.log?.debug('registry ping failed', { url: `${base}/v2/`, code: networkCode(err) });
        continue;
      }
      await res.body?.cancel();
      if (res.status === 401) return { base, challenge: parseChallenge(res.headers.get('www-authenticate')) };
      // Some registries answer /v2/ with 404 but serve the API; anything 2xx-4xx is "there".
      if (res.status < 500) return { base };
      throw this.bad(undefined, `GET ${base}/v2/ answered ${res.status}`, domain);
    }
    throw this.unreachable(domain, lastErr, `connect to registry "${domain}"`);
  }

  /** The headers for a request to REF's repository: a bearer token or basic auth. */
  private async authHeader(ref: Reference, ep: Endpoint, fresh: boolean): Promise<string | undefined> {
    const c = ep.challenge;
    if (!c) return undefined;
    if (c.scheme === 'bearer') return `Bearer ${await this.token(ref, c, fresh)}`;
    if (c.scheme === 'basic') {
      const creds = this.credentialsFor(ref.repository());
      return creds ? 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64') : undefined;
    }
    return undefined;
  }

  /** A pull token for REF's repository from the challenge's realm (distribution's token
   * spec), cached per scope; with credentials when there are some. */
  private async token(ref: Reference, c: Challenge, fresh: boolean): Promise<string> {
    const scope = c.params.scope && fresh ? c.params.scope : `repository:${ref.path}:pull`;
    const key = `${ref.domain} ${scope}`;
    const cached = this.tokens.get(key);
    if (cached && !fresh) return cached;

    const realm = c.params.realm;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw this.bad(ref, `auth challenge has no valid realm ("${realm ?? ''}")`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (this.insecureAllowed(ref.domain) || isLoopbackHost(url.host)))) {
      throw this.bad(ref, `token realm "${realm}" is not HTTPS`);
    }
    if (c.params.service) url.searchParams.set('service', c.params.service);
    url.searchParams.set('scope', scope);

    const headers: Record<string, string> = {};
    const creds = this.credentialsFor(ref.repository());
    if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    const res = await this.fetchRetrying(ref.domain, url.toString(), { headers }, true).catch((err) => {
      throw this.unreachable(ref.domain, err, `get a token from "${url.origin}"`);
    });
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.unauthorized(ref, creds !== undefined);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw this.bad(ref, `token server "${url.origin}" answered ${res.status}`);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw this.bad(ref, `token server "${url.origin}" sent no token`);
    this.tokens.set(key, token);
    return token;
  }

  /**
   * GET `/v2/<path>/<suffix>` with auth, following redirects (blobs usually live on a CDN)
   * without sending our credentials to another origin. Returns only 2xx responses.
   */
  private async request(ref: Reference, suffix: string, headers: Record<string, string>, what: string,
    opts: { root?: boolean } = {}): Promise<Response> {
    let ep = await this.endpoint(ref.domain);
    const path = opts.root ? '/v2/' : `/v2/${ref.path}/${suffix}`;
    let res: Response | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const auth = await this.authHeader(ref, ep, attempt > 0);
      res = await this.followRedirects(ref, `${ep.base}${path}`, headers, auth);
      if (res.status !== 401) break;
      // A challenge on a real request may ask for another scope, or a registry that
      // answered /v2/ without auth may want it here: learn it and try once more.
      await res.body?.cancel();
      const c = parseChallenge(res.headers.get('www-authenticate'));
      if (!c || attempt > 0) break;
      ep = { ...ep, challenge: c };
    }
    res = res as Response;
    if (res.ok) return res;

    const errorBody = await res.text().catch(() => '');
    const registryCode = /"code"\s*:\s*"([A-Z_]+)"/.exec(errorBody)?.[1];
    if (res.status === 404 || registryCode === 'MANIFEST_UNKNOWN' || registryCode === 'NAME_UNKNOWN' || registryCode === 'BLOB_UNKNOWN') {
      throw new BerthError('REGISTRY_NOT_FOUND', `${what} not found`, {
        hint: 'check the repository name, the tag and the registry host',
      });
    }
    if (res.status === 401 || res.status === 403) throw this.unauthorized(ref, this.credentialsFor(ref.repository()) !== undefined);
    throw this.bad(ref, `GET ${path} answered ${res.status}${registryCode ? ` (${registryCode})` : ''}`);
  }

  private async followRedirects(ref: Reference, url: string, headers: Record<string, string>, auth?: string): Promise<Response> {
    const origin = new URL(url).origin;
    let current = url;
    for (let hops = 0; ; hops++) {
      const h: Record<string, string> = { ...headers };
      if (auth && new URL(current).origin === origin) h.authorization = auth;
      const res = await this.fetchRetrying(ref.domain, current, { headers: h, redirect: 'manual' }, true).catch((err) => {
        throw this.unreachable(ref.domain, err, `GET ${new URL(current).pathname}`);
      });
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) return res;
      await res.body?.cancel();
      if (hops >= MAX_REDIRECTS) throw this.bad(ref, `more than ${MAX_REDIRECTS} redirects from ${url}`);
      current = new URL(location, current).toString();
    }
  }

  /** fetch with bounded retries and exponential backoff on 429, 5xx and network errors. */
  private async fetchRetrying(domain: string, url: string, init: RequestInit, retry: boolean): Promise<Response> {
    const headers = { 'user-agent': this.opts.userAgent ?? 'berth', ...(init.headers as Record<string, string>) };
    const attempts = retry ? this.retries + 1 : 1;
    for (let i = 0; ; i++) {
      const last = i + 1 >= attempts;
      let res: Response;
      try {
        res = await fetch(url, { ...init, headers, ...this.tlsOptions() } as RequestInit);
      } catch (err) {
        const code = networkCode(err);
        this.opts.log?.debug('registry request failed', { url, code, attempt: i + 1 });
        if (last || TLS_CODES.test(code) || code === 'ENOTFOUND') throw err;
        await sleep(this.backoff(i));
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && !last) {
        this.opts.log?.debug('registry request retried', { url, status: res.status, attempt: i + 1 });
        const after = Number(res.headers.get('retry-after'));
        await res.body?.cancel();
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : this.backoff(i));
        continue;
      }
      return res;
    }
  }

  /** fetch's options for TLS: a dispatcher trusting the extra CA file, if there is one.
   * As NODE_EXTRA_CA_CERTS, the file adds to Node's CAs, and one that cannot be read
   * is warned about and left out. */
  private tlsOptions(): { dispatcher?: unknown } {
    const file = this.opts.extraCaFile ?? extraCaFile();
    if (!file) return {};
    if (this.dispatcher === undefined) {
      let pem: string | undefined;
      try {
        pem = fs.readFileSync(file, 'utf8');
      } catch (err) {
        this.opts.log?.warn(`extra CA certificates ${file} not read: ${(err as Error).message}`, { path: file });
      }
      // undici is Node's own fetch implementation; its Agent takes TLS options, which
      // the built-in fetch has no other way to receive. Loaded only here: it is large.
      // node:tls is required here too: loaded while bin/berth's start-up snapshot is built,
      // it breaks the snapshot.
      // Resolved from the checkout at run time, not bundled into bin/berth's start-up
      // snapshot: a third of the snapshot, deserialized at every start (~9 ms), for a
      // module only this rare path needs.
      const { Agent } = createRequire(path.join(topDir(), 'package.json'))('undici') as typeof import('undici');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { rootCertificates } = require('node:tls') as typeof import('node:tls');
      this.dispatcher = pem ? new Agent({ connect: { ca: [...rootCertificates, pem] } }) : null;
      this.opts.log?.debug('registry TLS trusts extra CA certificates', { path: file });
    }
    return this.dispatcher ? { dispatcher: this.dispatcher } : {};
  }

  private backoff(attempt: number): number {
    return this.retryDelayMs * 2 ** attempt * (0.75 + Math.random() / 2);
  }

  private invalid(ref: Reference, digest: string, what: string): BerthError {
    return new BerthError('IMAGE_MANIFEST_INVALID', `manifest ${digest} of "${ref.repository()}" is not valid: ${what}`);
  }

  private bad(ref: Reference | undefined, what: string, domain?: string): BerthError {
    return new BerthError('REGISTRY_BAD_RESPONSE', `registry "${ref?.domain ?? domain}" sent a bad response: ${what}`, {
      hint: 'the registry or a proxy in between is misbehaving; try again later',
    });
  }

  private unauthorized(ref: Reference, hadCredentials: boolean): BerthError {
    return new BerthError('REGISTRY_UNAUTHORIZED', `pull access denied for "${ref.repository()}"`, {
      hint: hadCredentials
        ? `the registry refused the stored credentials; run \`berth login ${ref.domain}\` again`
        : `the repository does not exist or needs credentials: run \`berth login ${ref.domain}\``,
    });
  }

  private unreachable(domain: string, err: unknown, what: string): BerthError {
    if (err instanceof BerthError) return err;
    const code = networkCode(err);
    if (TLS_CODES.test(code)) {
      return new BerthError('REGISTRY_TLS', `${what}: TLS failed (${code})`, {
        cause: err,
        hint: 'if the registry uses a private CA, point NODE_EXTRA_CA_CERTS at its certificate; ' +
          'for a registry without TLS use --tls-verify=false',
      });
    }
    return new BerthError('REGISTRY_UNREACHABLE', `${what}: ${code}`, {
      cause: err, hint: `check the registry name "${domain}", the network and any proxy`,
    });
  }
}
