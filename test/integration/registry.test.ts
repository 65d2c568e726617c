// Pull against a real registry: Debian's docker-registry (distribution 2.8) on 127.0.0.1,
// filled with images that umoci builds and skopeo pushes. Covers RegistryClient, pullImage,
// ContentStore and auth.ts end to end; only loopback addresses are used.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BerthError } from '../../src/common/errors';
import { login, logout } from '../../src/image/auth';
import { ContentStore } from '../../src/image/content-store';
import { pullImage, type PullProgress } from '../../src/image/pull';
import { parseReference } from '../../src/image/reference';
import { MediaType, RegistryClient } from '../../src/image/registry';
import { spawnSync } from 'node:child_process';
import { requires, TOP } from '../helpers';
import { buildImage, freePort, push, Registry, run, startRegistry, stopRegistry } from '../registry-fixtures';

const skip = requires('root', 'docker-registry', 'skopeo', 'umoci');

// bcrypt("secret", cost 5), made once with crypt(3): no htpasswd program needed.
const HTPASSWD = 'alice:$2b$05$abcdefghijklmnopqrstuuOQiyCxlgf/oeuTqixKmWdcYUh4Hjl0a\n';

function sha256File(file: string): string {
  return 'sha256:' + createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function rawManifest(host: string, repo: string, ref: string): Promise<{ digest: string; size: number; mediaType: string; body: any }> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: [MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST].join(', ') },
  });
  assert.equal(res.status, 200);
  const bytes = Buffer.from(await res.arrayBuffer());
  const body = JSON.parse(bytes.toString());
  return { digest: 'sha256:' + createHash('sha256').update(bytes).digest('hex'), size: bytes.length, mediaType: body.mediaType, body };
}

async function putManifest(host: string, repo: string, tag: string, mediaType: string, body: unknown): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(body));
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes });
  assert.equal(res.status, 201, await res.text());
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

function registryBlob(r: Registry, digest: string): string {
  const hex = digest.slice(7);
  return path.join(r.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

async function rejects(p: Promise<unknown>, code: string): Promise<BerthError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BerthError, `expected a BerthError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('pull from a registry', { skip }, () => {
  let dir: string;
  let reg: Registry;
  let authReg: Registry | undefined;
  let layout: string;
  let n = 0;
  const savedAuthFile = process.env.REGISTRY_AUTH_FILE;
  const client = new RegistryClient({ credentials: () => undefined, retryDelayMs: 20 });
  const newStore = () => new ContentStore(path.join(dir, `store-${n++}`));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-registry-'));
    layout = path.join(dir, 'layout');
    reg = await startRegistry(dir, 'plain');
    buildImage(layout, 'three', { a: 'first layer\n', b: 'second layer\n', c: randomBytes(300_000) });
    push(layout, 'three', `${reg.host}/team/three:v1`);
    push(layout, 'three', `${reg.host}/docker/three:v1`, ['--format', 'v2s2']);
  });

  after(async () => {
    await stopRegistry(reg);
    await stopRegistry(authReg);
    if (savedAuthFile === undefined) delete process.env.REGISTRY_AUTH_FILE;
    else process.env.REGISTRY_AUTH_FILE = savedAuthFile;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Every blob of the pull is in STORE, under its own sha256, and tmp/ is empty. */
  const assertStored = (store: ContentStore, digests: string[]) => {
    for (const d of digests) {
      assert.ok(store.has(d), `${d} stored`);
      assert.equal(sha256File(store.path(d)), d);
    }
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
  };

  it('pulls a multi-layer OCI image by tag and stores every blob under its digest', async () => {
    const store = newStore();
    const events: PullProgress[] = [];
    const r = await pullImage(`${reg.host}/team/three:v1`, { contentStore: store, registry: client, onProgress: (e) => events.push(e) });

    const served = await rawManifest(reg.host, 'team/three', 'v1');
    assert.equal(r.manifestDigest, served.digest);
    assert.equal(r.manifestMediaType, MediaType.OCI_MANIFEST);
    assert.equal(r.repoDigest, served.digest);
    assert.equal(r.layers.length, 3);
    assert.deepEqual(r.layers, served.body.layers.map((l: any) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })));
    assert.equal(r.configDigest, served.body.config.digest);
    assert.equal(r.config.rootfs?.diff_ids.length, 3);
    assertStored(store, [r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)]);
    assert.deepEqual(store.list().sort(), [r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)].sort());

    for (const l of r.layers) {
      const done = events.find((e) => e.digest === l.digest && e.status === 'done');
      assert.deepEqual(done && { bytes: done.bytes, total: done.total }, { bytes: l.size, total: l.size });
      const moving = events.filter((e) => e.digest === l.digest && e.status === 'downloading').map((e) => e.bytes);
      assert.deepEqual(moving, [...moving].sort((a, b) => a - b), 'progress only grows');
    }

    const again: PullProgress[] = [];
    await pullImage(`${reg.host}/team/three:v1`, { contentStore: store, registry: client, onProgress: (e) => again.push(e) });
    assert.equal(again.filter((e) => e.kind === 'layer' && e.status === 'exists').length, 3, 'a second pull downloads no layer');
  });

  it('pulls a Docker schema 2 image by digest', async () => {
    const served = await rawManifest(reg.host, 'docker/three', 'v1');
    assert.equal(served.mediaType, MediaType.DOCKER_MANIFEST);
    const store = newStore();
    const r = await pullImage(`${reg.host}/docker/three@${served.digest}`, { contentStore: store, registry: client });
    assert.equal(r.manifestDigest, served.digest);
    assert.equal(r.manifestMediaType, MediaType.DOCKER_MANIFEST);
    assert.equal(r.reference.tag, undefined);
    assertStored(store, [r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)]);
  });

  it('chooses the platform from an OCI index', async () => {
    buildImage(layout, 'amd64', { arch: 'amd64\n' }, 'amd64');
    buildImage(layout, 'arm64', { arch: 'arm64\n' }, 'arm64');
    push(layout, 'amd64', `${reg.host}/multi:amd64`);
    push(layout, 'arm64', `${reg.host}/multi:arm64`);
    const amd = await rawManifest(reg.host, 'multi', 'amd64');
    const arm = await rawManifest(reg.host, 'multi', 'arm64');
    const indexDigest = await putManifest(reg.host, 'multi', 'latest', MediaType.OCI_INDEX, {
      schemaVersion: 2, mediaType: MediaType.OCI_INDEX,
      manifests: [
        { mediaType: MediaType.OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: MediaType.OCI_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    });

    const store = newStore();
    const def = await pullImage(`${reg.host}/multi`, { contentStore: store, registry: client, platform: 'linux/amd64' });
    assert.equal(def.manifestDigest, amd.digest);
    assert.equal(def.indexDigest, indexDigest);
    assert.equal(def.repoDigest, indexDigest);
    assert.equal(def.config.architecture, 'amd64');
    assertStored(store, [indexDigest, amd.digest, def.configDigest, ...def.layers.map((l) => l.digest)]);

    const a = await pullImage(`${reg.host}/multi@${indexDigest}`, { contentStore: store, registry: client, platform: 'linux/arm64' });
    assert.equal(a.manifestDigest, arm.digest);
    assert.equal(a.config.architecture, 'arm64');
    assert.deepEqual(a.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });

    const e = await rejects(pullImage(`${reg.host}/multi`, { contentStore: newStore(), registry: client, platform: 'linux/s390x' }),
      'IMAGE_PLATFORM_NOT_FOUND');
    assert.match(e.message, /linux\/s390x/);
    assert.match(e.hint ?? '', /linux\/arm64\/v8, linux\/amd64/);
  });

  it('chooses the platform from a Docker manifest list, with variants', async () => {
    push(layout, 'amd64', `${reg.host}/dlist:amd64`, ['--format', 'v2s2']);
    push(layout, 'arm64', `${reg.host}/dlist:arm64`, ['--format', 'v2s2']);
    const amd = await rawManifest(reg.host, 'dlist', 'amd64');
    const arm = await rawManifest(reg.host, 'dlist', 'arm64');
    assert.equal(arm.mediaType, MediaType.DOCKER_MANIFEST);
    await putManifest(reg.host, 'dlist', 'latest', MediaType.DOCKER_LIST, {
      schemaVersion: 2, mediaType: MediaType.DOCKER_LIST,
      manifests: [
        { mediaType: MediaType.DOCKER_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.DOCKER_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: MediaType.DOCKER_MANIFEST, digest: amd.digest, size: amd.size, platform: { os: 'unknown', architecture: 'unknown' } },
      ],
    });
    for (const p of ['linux/arm64', 'linux/arm64/v8', 'linux/aarch64']) {
      const r = await pullImage(`${reg.host}/dlist:latest`, { contentStore: newStore(), registry: client, platform: p });
      assert.equal(r.manifestDigest, arm.digest, p);
      assert.equal(r.manifestMediaType, MediaType.DOCKER_MANIFEST);
    }
    const r = await pullImage(`${reg.host}/dlist:latest`, { contentStore: newStore(), registry: client, platform: 'linux/amd64' });
    assert.equal(r.manifestDigest, amd.digest);
    await rejects(pullImage(`${reg.host}/dlist`, { contentStore: newStore(), registry: client, platform: 'linux/arm/v7' }),
      'IMAGE_PLATFORM_NOT_FOUND');
  });

  it('refuses a layer whose content does not match its digest, and stores nothing of it', async () => {
    buildImage(layout, 'tamper', { t: randomBytes(200_000) });
    push(layout, 'tamper', `${reg.host}/tamper:v1`);
    const served = await rawManifest(reg.host, 'tamper', 'v1');
    const layer = served.body.layers[0].digest as string;
    const blob = registryBlob(reg, layer);
    const data = fs.readFileSync(blob);
    data[data.length >> 1] ^= 0xff;
    fs.writeFileSync(blob, data);

    const store = newStore();
    const e = await rejects(pullImage(`${reg.host}/tamper:v1`, { contentStore: store, registry: client }), 'IMAGE_DIGEST_MISMATCH');
    assert.ok(e.message.includes(layer), 'names the expected digest');
    assert.ok(e.message.includes(sha256File(blob)), 'names the actual digest');
    assert.equal(store.has(layer), false);
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
  });

  it('refuses a manifest pulled by digest that does not match it', async () => {
    buildImage(layout, 'badm', { m: randomBytes(1000) });
    push(layout, 'badm', `${reg.host}/badmanifest:v1`, ['--format', 'v2s2']);
    const served = await rawManifest(reg.host, 'badmanifest', 'v1');
    // Same JSON, other bytes: the registry still serves it, its sha256 changes.
    fs.writeFileSync(registryBlob(reg, served.digest), JSON.stringify(served.body, null, 2));
    const store = newStore();
    const e = await rejects(pullImage(`${reg.host}/badmanifest@${served.digest}`, { contentStore: store, registry: client }),
      'IMAGE_DIGEST_MISMATCH');
    assert.ok(e.message.includes(served.digest));
    assert.deepEqual(store.list(), []);
  });

  it('says which image is not found', async () => {
    const e = await rejects(pullImage(`${reg.host}/no/such:image`, { contentStore: newStore(), registry: client }), 'REGISTRY_NOT_FOUND');
    assert.ok(e.message.includes(`"${reg.host}/no/such:image"`), e.message);
    const t = await rejects(pullImage(`${reg.host}/team/three:nosuchtag`, { contentStore: newStore(), registry: client }), 'REGISTRY_NOT_FOUND');
    assert.ok(t.message.includes('team/three:nosuchtag'), t.message);
    const b = await rejects(client.getBlob(parseReference(`${reg.host}/team/three`), 'sha256:' + '0'.repeat(64)), 'REGISTRY_NOT_FOUND');
    assert.match(b.message, /blob sha256:0{64}/);
  });

  it('says when the registry is unreachable', async () => {
    const port = await freePort();
    const c = new RegistryClient({ credentials: () => undefined, retries: 1, retryDelayMs: 10 });
    const e = await rejects(pullImage(`127.0.0.1:${port}/x`, { contentStore: newStore(), registry: c }), 'REGISTRY_UNREACHABLE');
    assert.match(e.message, /ECONNREFUSED/);
  });

  it('uses basic-auth credentials that login stored, and refuses without them', async () => {
    fs.writeFileSync(path.join(dir, 'htpasswd'), HTPASSWD);
    authReg = await startRegistry(dir, 'auth', ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${path.join(dir, 'htpasswd')}`].join('\n'));
    push(layout, 'three', `${authReg.host}/private/three:v1`, ['--dest-creds', 'alice:secret']);
    const ref = `${authReg.host}/private/three:v1`;
    const authFile = path.join(dir, 'auth', 'auth.json');
    process.env.REGISTRY_AUTH_FILE = authFile;

    const anon = await rejects(pullImage(ref, { contentStore: newStore(), registry: new RegistryClient() }), 'REGISTRY_UNAUTHORIZED');
    assert.match(anon.hint ?? '', /berth login/);

    login(authReg.host, 'alice', 'wrong');
    await rejects(pullImage(ref, { contentStore: newStore(), registry: new RegistryClient() }), 'REGISTRY_UNAUTHORIZED');

    assert.equal(login(authReg.host, 'alice', 'secret'), authFile);
    assert.equal(fs.statSync(authFile).mode & 0o777, 0o600);
    const saved = JSON.parse(fs.readFileSync(authFile, 'utf8'));
    assert.deepEqual(Object.keys(saved.auths), [authReg.host], 'the wrong password was replaced');
    const store = newStore();
    const r = await pullImage(ref, { contentStore: store, registry: new RegistryClient() });
    assertStored(store, [r.manifestDigest, r.configDigest, ...r.layers.map((l) => l.digest)]);

    assert.equal(logout(authReg.host), true);
    assert.equal(logout(authReg.host), false);
    await rejects(pullImage(ref, { contentStore: newStore(), registry: new RegistryClient() }), 'REGISTRY_UNAUTHORIZED');
  });

  it('berth login checks the password with the registry before storing it', async () => {
    assert.ok(authReg, 'runs after the basic-auth test');
    const authFile = path.join(dir, 'auth', 'cli-auth.json');
    const berth = (args: string[], input: string) => spawnSync(path.join(TOP, 'bin', 'berth'), args,
      { input, encoding: 'utf8', env: { ...process.env, REGISTRY_AUTH_FILE: authFile } });
    const bad = berth(['login', '-u', 'alice', '--password-stdin', authReg!.host], 'wrong\n');
    assert.equal(bad.status, 125, bad.stdout);
    assert.match(bad.stderr, /unauthorized|refused|credentials/i);
    assert.equal(fs.existsSync(authFile) && Object.keys(JSON.parse(fs.readFileSync(authFile, 'utf8')).auths ?? {}).length > 0, false);
    const good = berth(['login', '-u', 'alice', '--password-stdin', authReg!.host], 'secret\n');
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /Login Succeeded/);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(authFile, 'utf8')).auths), [authReg!.host]);
  });

  it('keeps memory flat while pulling a large layer', async (t) => {
    const big = 64 << 20;
    buildImage(layout, 'big', { big: randomBytes(big) });
    push(layout, 'big', `${reg.host}/big:v1`);
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    try {
      const store = newStore();
      const r = await pullImage(`${reg.host}/big:v1`, { contentStore: store, registry: client });
      assert.ok(r.layers[0].size > big * 0.99);
      assertStored(store, [r.layers[0].digest]);
    } finally {
      clearInterval(timer);
    }
    const grew = peak - base;
    t.diagnostic(`RSS grew ${(grew / 1048576).toFixed(1)} MiB`);
    // RSS also holds garbage not yet collected: about 25-30 MiB here for 64 or 256 MiB
    // layers alike. Holding the layer in memory would add at least its 64 MiB.
    assert.ok(grew < 48 << 20, `RSS grew by ${(grew / 1048576).toFixed(1)} MiB pulling a 64 MiB layer`);
  });
});
