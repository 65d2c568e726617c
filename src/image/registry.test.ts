// RegistryClient and pullImage against a fake registry on 127.0.0.1 (node:http): the
// bearer-token dance, retries on 503/429 and broken transfers, redirects that must not
// carry credentials to another origin. The real-registry tests are test/integration/registry.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { ContentStore } from './content-store';
import { pullImage } from './pull';
import { parseReference } from './reference';
import { isLoopbackHost, MediaType, parseChallenge, parsePlatform, RegistryClient } from './registry';

const digestOf = (b: Buffer | string) => 'sha256:' + createHash('sha256').update(b).digest('hex');

function listen(handler: http.RequestListener): Promise<http.Server> {
  const s = http.createServer(handler);
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}
const portOf = (s: http.Server) => (s.address() as AddressInfo).port;

describe('RegistryClient against a fake registry', () => {
  const layer = Buffer.alloc(100_000, 7);
  const flaky = Buffer.alloc(50_000, 9);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf('x'), digestOf('y')] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(flaky), size: flaky.length },
    ],
  }));
  const blobs = new Map([[digestOf(layer), layer], [digestOf(flaky), flaky], [digestOf(config), config]]);

  let reg: http.Server;
  let cdn: http.Server;
  let dir: string;
  const seen = { tokenAuth: [] as (string | undefined)[], scopes: [] as string[], cdnAuth: [] as (string | undefined)[] };
  let manifest503 = 2;
  let blob429 = 1;
  let flakyResets = 1;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-registry-unit-'));
    cdn = await listen((req, res) => {
      seen.cdnAuth.push(req.headers.authorization);
      const d = req.url!.slice('/cdn/'.length);
      const body = blobs.get(d);
      if (!body) return void res.writeHead(404).end();
      if (body === flaky && flakyResets-- > 0) {
        // Half the body, then a reset: the transfer breaks mid-stream.
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, body.length / 2), () => res.socket?.destroy());
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    reg = await listen((req, res) => {
      const base = `http://127.0.0.1:${portOf(reg)}`;
      const challenge = `Bearer realm="${base}/token",service="fake"`;
      const url = new URL(req.url!, base);
      if (url.pathname === '/token') {
        seen.tokenAuth.push(req.headers.authorization);
        seen.scopes.push(url.searchParams.get('scope') ?? '');
        const ok = req.headers.authorization === 'Basic ' + Buffer.from('alice:pw').toString('base64');
        if (req.headers.authorization && !ok) return void res.writeHead(401).end();
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: ok ? 'T-alice' : 'T-anon' }));
      }
      if (req.headers.authorization !== 'Bearer T-alice') {
        return void res.writeHead(401, { 'www-authenticate': challenge }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      }
      if (url.pathname === '/v2/') return void res.writeHead(200).end('{}');
      if (url.pathname === '/v2/app/manifests/v1') {
        if (manifest503-- > 0) return void res.writeHead(503).end();
        return void res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST }).end(manifest);
      }
      const m = /^\/v2\/app\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
      if (m) {
        if (blob429-- > 0) return void res.writeHead(429, { 'retry-after': '0' }).end();
        return void res.writeHead(307, { location: `http://localhost:${portOf(cdn)}/cdn/${m[1]}` }).end();
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
    });
  });

  after(() => {
    reg.closeAllConnections();
    cdn.closeAllConnections();
    reg.close();
    cdn.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gets a bearer token with the credentials, retries 503 and 429 and broken transfers, and keeps credentials off other origins', async () => {
    const store = new ContentStore(path.join(dir, 'store'));
    const registry = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'pw' }), retryDelayMs: 5 });
    const retrying: string[] = [];
    const r = await pullImage(`127.0.0.1:${portOf(reg)}/app:v1`, {
      contentStore: store, registry, onProgress: (e) => e.status === 'retrying' && retrying.push(e.digest),
    });
    assert.equal(r.manifestDigest, digestOf(manifest));
    assert.deepEqual(r.layers.map((l) => l.digest), [digestOf(layer), digestOf(flaky)]);
    for (const d of [digestOf(manifest), ...blobs.keys()]) assert.ok(store.has(d), d);
    assert.deepEqual(retrying, [digestOf(flaky)]);
    assert.equal(manifest503, -1, 'the manifest was asked for again after two 503s');
    assert.ok(seen.scopes.every((s) => s === 'repository:app:pull'), seen.scopes.join());
    assert.ok(seen.tokenAuth.length >= 1);
    assert.equal(seen.tokenAuth.length, 1, 'the token is cached');
    assert.ok(seen.cdnAuth.length >= 3 && seen.cdnAuth.every((a) => a === undefined), 'no Authorization sent to the CDN');
  });

  it('refuses wrong credentials and names unknown manifests', async () => {
    const wrong = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'nope' }), retryDelayMs: 5 });
    await assert.rejects(wrong.getManifest(parseReference(`127.0.0.1:${portOf(reg)}/app:v1`)),
      (e: BerthError) => e.code === 'REGISTRY_UNAUTHORIZED' && /run `berth login 127\.0\.0\.1:\d+` again/.test(e.hint ?? ''));
    const anon = new RegistryClient({ credentials: () => undefined, retryDelayMs: 5 });
    await assert.rejects(anon.getManifest(parseReference(`127.0.0.1:${portOf(reg)}/app:v1`)),
      (e: BerthError) => e.code === 'REGISTRY_UNAUTHORIZED' && /pull access denied for "127\.0\.0\.1:\d+\/app"/.test(e.message));
    const good = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'pw' }), retryDelayMs: 5 });
    await assert.rejects(good.getManifest(parseReference(`127.0.0.1:${portOf(reg)}/app:v2`)),
      (e: BerthError) => e.code === 'REGISTRY_NOT_FOUND' && e.message === `manifest for "127.0.0.1:${portOf(reg)}/app:v2" not found`);
  });

  it('does not speak plain HTTP to a registry that is not local', async () => {
    // 0.0.0.0 reaches this host's plain-HTTP fake, but is not a loopback name: berth must
    // try HTTPS only, and fail on TLS rather than fall back to HTTP.
    const c = new RegistryClient({ credentials: () => undefined, retries: 0 });
    await assert.rejects(c.getManifest(parseReference(`0.0.0.0:${portOf(reg)}/app:v1`)),
      (e: BerthError) => e.code === 'REGISTRY_TLS' && /NODE_EXTRA_CA_CERTS/.test(e.hint ?? ''));
    const insecure = new RegistryClient({ credentials: () => ({ username: 'alice', password: 'pw' }), tlsVerify: false, retryDelayMs: 5 });
    assert.equal((await insecure.getManifest(parseReference(`0.0.0.0:${portOf(reg)}/app:v1`))).digest, digestOf(manifest));
  });
});

describe('registry helpers', () => {
  it('knows which hosts are loopback', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['example.com', '10.0.0.1:5000', '128.0.0.1', '[::2]', 'localhost.example.com', '127.0.0.1.nip.io']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });

  it('parses challenges', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
      scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
    });
    assert.deepEqual(parseChallenge('Basic realm="a \\"b\\""'), { scheme: 'basic', params: { realm: 'a "b"' } });
    assert.equal(parseChallenge(null), undefined);
  });

  it('parses platforms', () => {
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/amd 64']) {
      assert.throws(() => parsePlatform(bad), (e: BerthError) => e.code === 'IMAGE_PLATFORM_INVALID');
    }
  });
});
