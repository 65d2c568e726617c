// Image references, parsed and normalised as Docker does (distribution/reference's
// ParseNormalizedNamed): `busybox` is `docker.io/library/busybox:latest`. Used by every
// image command and by the registry client; pure, no I/O.
import { BerthError } from '../common/errors';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

// The grammar of distribution/reference (regexp.go), anchored piece by piece so that the
// error can say which part is wrong.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_NAME = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$/;
const IPV6_DOMAIN = /^\[[a-fA-F0-9:]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ID_ONLY = /^[a-f0-9]{64}$/;
const MAX_NAME = 255;

/** A parsed, normalised reference. `tag` is set to "latest" when neither tag nor digest
 * was given; with a digest alone it stays undefined, as Docker's. */
export class Reference {
  constructor(
    readonly domain: string,
    readonly path: string,
    readonly tag?: string,
    readonly digest?: string,
  ) {}

  /** `domain/path`, e.g. "docker.io/library/busybox". */
  repository(): string {
    return `${this.domain}/${this.path}`;
  }

  /** The full normalised form, e.g. "docker.io/library/busybox:latest". */
  toString(): string {
    return this.repository() + this.suffix();
  }

  /** The repository as Docker prints it: "busybox", "user/app", "quay.io/x/y". */
  familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.repository();
    const rest = this.path.slice(OFFICIAL_PREFIX.length);
    return this.path.startsWith(OFFICIAL_PREFIX) && !rest.includes('/') ? rest : this.path;
  }

  /** The whole reference as Docker prints it: "busybox:latest", "user/app@sha256:...". */
  familiar(): string {
    return this.familiarName() + this.suffix();
  }

  /** The same repository with only DIGEST: what `repoDigests` holds. */
  withDigest(digest: string): Reference {
    return new Reference(this.domain, this.path, undefined, digest);
  }

  /** The same repository with only TAG. */
  withTag(tag: string): Reference {
    return new Reference(this.domain, this.path, tag, undefined);
  }

  private suffix(): string {
    return (this.tag ? `:${this.tag}` : '') + (this.digest ? `@${this.digest}` : '');
  }
}

function invalid(input: string, what: string): BerthError {
  return new BerthError('IMAGE_REFERENCE_INVALID', `image reference "${input}" is not valid: ${what}`, {
    hint: 'use [registry[:port]/]name[:tag][@sha256:<64 hex digits>], e.g. busybox:1.36 or ' +
      'localhost:5000/team/app:v1; repository names are lower case',
  });
}

function checkDomain(input: string, domain: string): void {
  const colon = domain.lastIndexOf(':');
  const hasPort = colon > domain.lastIndexOf(']');
  const host = hasPort ? domain.slice(0, colon) : domain;
  const port = hasPort ? domain.slice(colon + 1) : undefined;
  if (!DOMAIN_NAME.test(host) && !IPV6_DOMAIN.test(host)) throw invalid(input, `registry host "${host}" is not valid`);
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    throw invalid(input, `registry port "${port}" is not valid`);
  }
}

/**
 * Parses a reference as `docker pull` does and normalises it: the domain defaults to
 * docker.io, official images get "library/", and the tag defaults to "latest" unless a
 * digest is given. The first component is a registry host if it contains "." or ":", is
 * "localhost", or has upper-case letters (which a repository name cannot have).
 * @throws BerthError IMAGE_REFERENCE_INVALID naming the input and the part that is wrong
 */
export function parseReference(input: string): Reference {
  if (input === '') throw invalid(input, 'it is empty');
  if (/\s/.test(input)) throw invalid(input, 'it contains white space');
  if (ID_ONLY.test(input)) throw invalid(input, 'a 64-hex-digit string is an image id, not a repository name');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digest.includes(':')) throw invalid(input, `digest "${digest}" has no algorithm (sha256:...)`);
    if (!digest.startsWith('sha256:')) throw invalid(input, `digest algorithm "${digest.split(':')[0]}" is not supported, only sha256`);
    if (!SHA256.test(digest)) throw invalid(input, `digest "${digest}" is not sha256: and 64 lower-case hex digits`);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `tag "${tag}" is not valid (letters, digits, "_", "." and "-", at most 128)`);
  }
  if (rest === '') throw invalid(input, 'the repository name is empty');

  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(slash + 1);
      checkDomain(input, domain);
    }
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;

  if (path.toLowerCase() !== path) throw invalid(input, 'repository name must be lower case');
  for (const component of path.split('/')) {
    if (component === '') throw invalid(input, 'the repository name has an empty path component');
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(input, `path component "${component}" may hold only a-z, 0-9 and single separators ".", "_", "__", "-"`);
    }
  }
  if (domain.length + 1 + path.length > MAX_NAME) throw invalid(input, `the repository name is longer than ${MAX_NAME} characters`);

  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return new Reference(domain, path, tag, digest);
}

/** True for a syntactically valid "sha256:<64 lower-case hex>" digest. */
export function isDigest(s: string): boolean {
  return SHA256.test(s);
}
