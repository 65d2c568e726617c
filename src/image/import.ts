// `berth import FILE|URL|- [REF]`: a root filesystem tarball becomes a one-layer image,
// with `--change` Dockerfile instructions as its config (as `docker import`). The tarball
// is stored as the layer blob as given (plain, gzip or zstd). Node host process.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, wrapSystemError } from '../common/errors';
import { commitImage, layerMediaType } from './commit';
import type { ImageRecord } from './image-store';
import { parseReference } from './reference';
import type { Stores } from './stores';
import { tmpName } from '../common/tmp';

/**
 * Applies Dockerfile-style CHANGES (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL,
 * STOPSIGNAL) to an image config's `config` object.
 * @throws BerthError IMAGE_CHANGE_INVALID
 */
export function applyChanges(config: Record<string, any>, changes: string[]): void {
  for (const change of changes) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(change);
    if (!m) throw changeError(change, 'expected INSTRUCTION ARGUMENTS');
    const [, word, rest] = m;
    const arg = rest.trim();
    const list = (): string[] => {
      if (arg.startsWith('[')) {
        try {
          const v = JSON.parse(arg);
          if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
        } catch {
          // fall through to the error
        }
        throw changeError(change, 'a JSON list of strings');
      }
      return ['/bin/sh', '-c', arg];
    };
    switch (word.toUpperCase()) {
      case 'CMD': config.Cmd = list(); break;
      case 'ENTRYPOINT': config.Entrypoint = list(); break;
      case 'WORKDIR': config.WorkingDir = arg; break;
      case 'USER': config.User = arg; break;
      case 'STOPSIGNAL': config.StopSignal = arg; break;
      case 'ENV': {
        const pairs = arg.includes('=') ? arg.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [] : [arg.replace(/\s+/, '=')];
        config.Env = [...(config.Env ?? [])];
        for (const p of pairs) {
          const [k, ...v] = p.split('=');
          const value = v.join('=').replace(/^"(.*)"$/, '$1');
          config.Env = config.Env.filter((e: string) => !e.startsWith(k + '='));
          config.Env.push(`${k}=${value}`);
        }
        break;
      }
      case 'EXPOSE':
        config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
        for (const p of arg.split(/\s+/)) config.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
        break;
      case 'LABEL':
        config.Labels = { ...(config.Labels ?? {}) };
        for (const p of arg.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []) {
          const [k, ...v] = p.split('=');
          config.Labels[k.replace(/^"(.*)"$/, '$1')] = v.join('=').replace(/^"(.*)"$/, '$1');
        }
        break;
      default:
        throw changeError(change, 'one of CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL');
    }
  }
}

function changeError(change: string, what: string): BerthError {
  return new BerthError('IMAGE_CHANGE_INVALID', `--change "${change}" is not valid: ${what}`);
}

async function openSource(source: string): Promise<Readable> {
  if (source === '-') return process.stdin;
  if (/^https?:\/\//.test(source)) {
    let res: Response;
    try {
      res = await fetch(source);
    } catch (err) {
      throw new BerthError('IMPORT_SOURCE', `download ${source}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok || !res.body) throw new BerthError('IMPORT_SOURCE', `download ${source}: HTTP ${res.status}`);
    return Readable.fromWeb(res.body as any);
  }
  try {
    fs.accessSync(source, fs.constants.R_OK);
  } catch (err) {
    throw wrapSystemError('IMPORT_SOURCE', `read "${source}"`, err, 'give a tarball path, an http(s) URL, or - for stdin');
  }
  return fs.createReadStream(source);
}

export interface ImportOptions {
  changes?: string[];
  message?: string;
  platform?: { os: string; architecture: string };
}

/**
 * Imports SOURCE as an image named REF (or untagged).
 * @throws BerthError IMPORT_SOURCE, IMAGE_REFERENCE_INVALID, IMAGE_CHANGE_INVALID, LAYER_*
 */
export async function importImage(stores: Stores, source: string, ref: string | undefined,
  opts: ImportOptions = {}): Promise<ImageRecord> {
  const tag = ref ? parseReference(ref).toString() : undefined;
  const config: Record<string, any> = {};
  applyChanges(config, opts.changes ?? []);
  const input = await openSource(source);

  // The digest is known only at the end: spool to the store's tmp/ while hashing, then
  // store it through the content store's verified put.
  const tmpDir = path.join(stores.root, 'tmp');
  fs.mkdirSync(tmpDir, { recursive: true });
  const spool = path.join(tmpDir, tmpName('import'));
  const hash = createHash('sha256');
  try {
    await pipeline(input, async function* (src) {
      for await (const chunk of src) {
        hash.update(chunk);
        yield chunk;
      }
    }, fs.createWriteStream(spool, { mode: 0o600 }));
    const digest = 'sha256:' + hash.digest('hex');
    const mediaType = layerMediaType(spool);
    const size = fs.statSync(spool).size;
    if (size === 0) throw new BerthError('IMPORT_SOURCE', `"${source}" is empty`, { hint: 'import takes a tar archive of a root filesystem' });

    return await stores.locked(async () => {
      if (!stores.content.has(digest)) await stores.content.put(digest, fs.createReadStream(spool));
      // SOURCE_DATE_EPOCH (reproducible-builds.org) pins the creation time, so the same
      // tarball imports as the same image id.
      const epoch = process.env.SOURCE_DATE_EPOCH;
      const now = (epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date()).toISOString();
      return commitImage(stores, {
        layers: [{ digest, size, mediaType }],
        config: {
          created: now, architecture: opts.platform?.architecture ?? 'amd64', os: opts.platform?.os ?? 'linux',
          config, rootfs: { type: 'layers', diff_ids: [] },
          history: [{ created: now, created_by: 'berth import', comment: opts.message ?? 'Imported from ' + source }],
        },
        repoTags: tag ? [tag] : [],
      });
    });
  } finally {
    fs.rmSync(spool, { force: true });
  }
}
