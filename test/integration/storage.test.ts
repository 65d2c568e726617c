// The layer store and overlay mounts (src/storage/): layers made by real tools (umoci, GNU
// tar) compared with umoci's own unpack, overlay semantics, 120 layers, and broken blobs
// that must leave nothing stored.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { native } from '../../src/common/native';
import { chainIDOf, LayerStore } from '../../src/storage/layer-store';
import { mountOverlay, unmountOverlay } from '../../src/storage/overlay';
import { describeTree, hardlinkGroups, mountsUnder, streamOf, tarOf, type TarEntry } from '../layer-fixtures';
import { requires, TOP } from '../helpers';
import { push, startRegistry, stopRegistry } from '../registry-fixtures';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = requires('root');

/** A private temp dir; mounts made below it are undone by cleanup(). */
class Scratch {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-storage-'));
  private mounted: string[] = [];

  mkdirs(...names: string[]): string[] {
    return names.map((n) => {
      const p = path.join(this.dir, n);
      fs.mkdirSync(p, { recursive: true });
      return p;
    });
  }

  mount(lowers: string[], name: string): { merged: string; upper: string } {
    const [upper, work, merged] = this.mkdirs(`${name}/upper`, `${name}/work`, `${name}/merged`);
    mountOverlay(lowers, upper, work, merged);
    this.mounted.push(merged);
    return { merged, upper };
  }

  cleanup(): string[] {
    for (const m of this.mounted.reverse()) unmountOverlay(m);
    const left = mountsUnder(this.dir);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return left;
  }
}

/** Stores LAYERS (each a list of tar entries) on top of one another; returns the chainIDs. */
async function storeLayers(store: LayerStore, layers: TarEntry[][]): Promise<string[]> {
  const chain: string[] = [];
  for (const entries of layers) {
    const blob = zlib.gzipSync(await tarOf(entries));
    chain.push(await store.ensure(chain.at(-1) ?? null, () => streamOf(blob)));
  }
  return chain;
}

const sh = (cwd: string, script: string) => {
  const r = spawnSync('sh', ['-ec', script], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${script}\n${r.stdout}${r.stderr}`);
  return r.stdout;
};

describe('layers made by umoci and GNU tar, compared with umoci unpack', {
  skip: skip ?? (has('umoci') ? undefined : 'needs umoci'),
}, () => {
  let s: Scratch;
  let store: LayerStore;
  let chain: string[] = [];
  let merged: string;
  let reference: string;
  const withCaps = has('setcap');

  before(async () => {
    s = new Scratch();
    // Layer 1: every kind of entry. Layer 2 (umoci repack): whiteouts for a file and a dir,
    // a changed file, a dir emptied. Layer 3 (GNU tar, added raw): an opaque dir, a
    // whiteout, a new file.
    sh(s.dir, `
      umoci init --layout img
      umoci new --image img:base
      umoci unpack --image img:base b1
      cd b1/rootfs
      mkdir -p etc bin opq/sub gone-dir deep/a/b/c
      echo hello > etc/hostname; echo x > opq/a; echo y > opq/sub/b; echo z > gone-dir/z
      echo keep > keep; echo rm > rmme; echo deep > deep/a/b/c/file
      cp /bin/true bin/prog; chmod 4755 bin/prog; ln bin/prog bin/prog-link
      cp /bin/true bin/sgid; chmod 2711 bin/sgid; chmod 1777 deep
      ln -s ../etc/hostname bin/sym; ln -s /nowhere dangling
      mkfifo fifo; mknod null c 1 3; mknod loop9 b 7 9
      chown 1000:1001 keep; chown -h 123:456 bin/sym
      cp /bin/true bin/capped
      ${withCaps ? 'setcap cap_setuid,cap_net_raw+ep bin/capped' : ''}
      cd ../..
      umoci repack --image img:v1 b1
      umoci unpack --image img:v1 b2
      cd b2/rootfs
      rm rmme; rm -r gone-dir; echo changed > keep; rm -r opq; mkdir opq; echo new > opq/n
      cd ../..
      umoci repack --image img:v2 b2
      mkdir -p l3/opq l3/bin
      touch l3/opq/.wh..wh..opq l3/bin/.wh.sym
      echo fresh > l3/opq/fresh; echo v3 > l3/v3
      tar -C l3 --owner=0 --group=0 -cf l3.tar .
      umoci raw add-layer --image img:v2 --tag v3 l3.tar
      umoci unpack --image img:v3 ref
    `);
    reference = path.join(s.dir, 'ref', 'rootfs');

    const layout = path.join(s.dir, 'img');
    const blob = (d: string) => path.join(layout, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const desc = index.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'v3');
    const manifest = JSON.parse(fs.readFileSync(blob(desc.digest), 'utf8'));
    const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), 'utf8'));
    assert.equal(manifest.layers.length, 3);

    store = new LayerStore(path.join(s.dir, 'root'));
    chain = [];
    for (const [i, layer] of manifest.layers.entries()) {
      chain.push(await store.ensure(chain.at(-1) ?? null, () => fs.createReadStream(blob(layer.digest)),
        config.rootfs.diff_ids[i]));
    }
    merged = s.mount(chain.map((c) => store.path(c)).reverse(), 'c1').merged;
  });

  after(() => {
    const left = s.cleanup();
    assert.deepEqual(left, []);
  });

  it('stores each layer under its chainID with layer.json', () => {
    assert.equal(chain.length, 3);
    assert.deepEqual(store.list().sort(), [...chain].sort());
    const infos = chain.map((c) => store.info(c));
    assert.equal(infos[0].chainID, infos[0].diffID);
    assert.equal(infos[0].parent, null);
    assert.equal(infos[1].parent, chain[0]);
    assert.equal(chain[2], chainIDOf(chain[1], infos[2].diffID));
    assert.ok(infos[0].size > 35000, `size ${infos[0].size}`);
  });

  it('merges into the same tree as umoci unpack, file by file', () => {
    const ours = describeTree(merged);
    const theirs = describeTree(reference);
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [rel, node] of theirs) assert.deepEqual(ours.get(rel), node, rel);
    assert.deepEqual(hardlinkGroups(merged, ours), hardlinkGroups(reference, theirs));
    assert.deepEqual(hardlinkGroups(merged, ours), [['bin/prog', 'bin/prog-link']]);
  });

  it('pulled from a registry by `berth pull`, merges into the same tree as umoci unpack', {
    skip: ['docker-registry', 'skopeo'].find((c) => !has(c)) && 'needs docker-registry and skopeo',
  }, async () => {
    const reg = await startRegistry(s.dir, 'reg');
    try {
      push(path.join(s.dir, 'img'), 'v3', `${reg.host}/umoci/img:v3`);
      const root = path.join(s.dir, 'berth-root');
      const berth = path.join(TOP, 'bin', 'berth');
      const r = spawnSync(berth, ['--root', root, 'pull', '-q', `${reg.host}/umoci/img:v3`], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const index = JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8'));
      const [img] = Object.values(index.images) as { layers: string[] }[];
      const pulled = new LayerStore(root);
      const m = s.mount(img.layers.map((c) => pulled.path(c)).reverse(), 'pulled').merged;
      const ours = describeTree(m);
      const theirs = describeTree(reference);
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
      for (const [rel, node] of theirs) assert.deepEqual(ours.get(rel), node, rel);
    } finally {
      await stopRegistry(reg);
    }
  });

  it('keeps regular files\' mtimes', () => {
    for (const rel of ['etc/hostname', 'bin/prog', 'keep', 'v3', 'opq/fresh']) {
      assert.equal(fs.lstatSync(path.join(merged, rel)).mtimeMs, fs.lstatSync(path.join(reference, rel)).mtimeMs, rel);
    }
  });

  it('keeps the file capability xattr byte for byte', { skip: withCaps ? undefined : 'needs setcap' }, () => {
    const ours = native().lgetxattr(-100, path.join(merged, 'bin/capped'), 'security.capability');
    const theirs = native().lgetxattr(-100, path.join(reference, 'bin/capped'), 'security.capability');
    assert.ok(theirs && theirs.includes(0x80), 'cap_setuid is bit 7: a byte that is not UTF-8');
    assert.deepEqual(ours, theirs);
  });

  it('writes whiteouts and opaque dirs in overlay\'s format', () => {
    const top = store.path(chain[2]);
    const wh = fs.lstatSync(path.join(top, 'bin/sym'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0 && wh.uid === 0 && wh.gid === 0);
    assert.equal(native().lgetxattr(-100, path.join(top, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.ok(!fs.existsSync(path.join(top, 'opq/.wh..wh..opq')));
    const mid = store.path(chain[1]);
    assert.ok(fs.lstatSync(path.join(mid, 'rmme')).isCharacterDevice());
    assert.ok(fs.lstatSync(path.join(mid, 'gone-dir')).isCharacterDevice());
  });

  it('skips the unpack of a layer it already has', async () => {
    const again = await store.ensure(chain[0], () => { throw new Error('must not be opened'); }, store.info(chain[1]).diffID);
    assert.equal(again, chain[1]);
  });
});

describe('overlay mounts', { skip }, () => {
  let s: Scratch;
  let store: LayerStore;
  before(() => {
    s = new Scratch();
    store = new LayerStore(path.join(s.dir, 'root'));
  });
  after(() => {
    const left = s.cleanup();
    assert.deepEqual(left, []);
  });

  it('hides lower files, deletes whiteouts, hides an opaque dir\'s lower contents', async () => {
    const chain = await storeLayers(store, [
      [
        { name: 'a.txt', body: 'lower' }, { name: 'del.txt', body: 'x' },
        { name: 'opq', type: 'directory' }, { name: 'opq/x', body: 'x' }, { name: 'opq/y', body: 'y' },
        { name: 'keep', type: 'directory' }, { name: 'keep/k', body: 'k' },
      ],
      [
        { name: 'a.txt', body: 'upper' }, { name: '.wh.del.txt' },
        { name: 'opq', type: 'directory' }, { name: 'opq/.wh..wh..opq' }, { name: 'opq/z', body: 'z' },
      ],
    ]);
    const { merged } = s.mount(chain.map((c) => store.path(c)).reverse(), 'sem');
    assert.equal(fs.readFileSync(path.join(merged, 'a.txt'), 'utf8'), 'upper');
    assert.ok(!fs.existsSync(path.join(merged, 'del.txt')));
    assert.deepEqual(fs.readdirSync(path.join(merged, 'opq')), ['z']);
    assert.equal(fs.readFileSync(path.join(merged, 'keep/k'), 'utf8'), 'k');
  });

  it('sends writes to the upper dir only', async () => {
    const chain = await storeLayers(store, [[{ name: 'etc', type: 'directory' }, { name: 'etc/conf', body: 'v1' }]]);
    const lower = store.path(chain[0]);
    const before = describeTree(lower);
    const { merged, upper } = s.mount([lower], 'writes');
    fs.writeFileSync(path.join(merged, 'etc/conf'), 'v2');
    fs.writeFileSync(path.join(merged, 'new'), 'n');
    fs.rmSync(path.join(merged, 'etc/conf'));
    fs.writeFileSync(path.join(merged, 'etc/conf2'), 'c');
    assert.deepEqual(describeTree(lower), before);
    assert.ok(fs.lstatSync(path.join(upper, 'etc/conf')).isCharacterDevice(), 'the delete is a whiteout in upper');
    assert.equal(fs.readFileSync(path.join(upper, 'new'), 'utf8'), 'n');
    assert.equal(fs.readFileSync(path.join(upper, 'etc/conf2'), 'utf8'), 'c');
  });

  it('mounts 120 layers', async () => {
    const layers: TarEntry[][] = [];
    for (let i = 0; i < 120; i++) layers.push([{ name: `f${i}`, body: String(i) }, { name: 'common', body: String(i) }]);
    const chain = await storeLayers(store, layers);
    const lowers = chain.map((c) => store.path(c)).reverse();
    assert.ok(lowers.join(':').length > 4096, 'absolute lower dirs alone would not fit in a page');
    const { merged } = s.mount(lowers, 'many');
    assert.equal(fs.readFileSync(path.join(merged, 'common'), 'utf8'), '119');
    for (let i = 0; i < 120; i++) assert.equal(fs.readFileSync(path.join(merged, `f${i}`), 'utf8'), String(i));
    assert.deepEqual(fs.readdirSync(path.join(s.dir, 'many')).sort(), ['merged', 'upper', 'work'], 'link dir removed');
  });

  it('mounts an image with no layers as an empty root', () => {
    const { merged } = s.mount([], 'empty');
    assert.deepEqual(fs.readdirSync(merged), []);
    fs.writeFileSync(path.join(merged, 'x'), 'x');
  });

  it('unmounting twice is not an error', () => {
    const { merged } = s.mount([], 'twice');
    unmountOverlay(merged);
    unmountOverlay(merged);
    assert.deepEqual(mountsUnder(merged), []);
  });
});

describe('broken layer blobs leave nothing stored', { skip }, () => {
  let s: Scratch;
  let tarball: Buffer;
  before(async () => {
    s = new Scratch();
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    tarball = await tarOf([{ name: 'dir', type: 'directory' }, { name: 'dir/big', body: big }, { name: 'after', body: 'a' }]);
  });
  after(() => {
    const left = s.cleanup();
    assert.deepEqual(left, []);
  });

  const storeAt = (name: string) => new LayerStore(path.join(s.dir, name));
  const assertEmpty = (store: LayerStore) => {
    assert.deepEqual(fs.readdirSync(store.layersDir), [], 'layers/');
    assert.deepEqual(fs.readdirSync(store.tmpDir), [], 'tmp/');
  };

  const cases: [string, () => Buffer][] = [
    ['corrupt gzip', () => {
      const gz = zlib.gzipSync(tarball);
      for (let i = 200; i < 260; i++) gz[i] ^= 0x5a;
      return gz;
    }],
    ['truncated gzip', () => {
      const gz = zlib.gzipSync(tarball);
      return gz.subarray(0, gz.length >> 1);
    }],
    ['truncated tar', () => tarball.subarray(0, 512 * 10 + 100)],
    // dir header, big's header and 300000 bytes padded to 512: "after"'s header is at 301056.
    ['tar cut inside a header', () => tarball.subarray(0, 301_056 + 200)],
    ['garbage', () => Buffer.from('this is not a tar file at all, not even close'.repeat(40))],
  ];
  if (has('zstd')) {
    cases.push(['truncated zstd', () => {
      const r = spawnSync('zstd', ['-c', '-q'], { input: tarball });
      return r.stdout.subarray(0, r.stdout.length - 50);
    }]);
  }
  for (const [name, make] of cases) {
    it(`refuses ${name} with LAYER_CORRUPT`, async () => {
      const store = storeAt(name.replace(/ /g, '-'));
      await assert.rejects(store.ensure(null, () => streamOf(make())), (err: any) => {
        assert.equal(err.code, 'LAYER_CORRUPT', err.stack);
        return true;
      });
      assertEmpty(store);
    });
  }

  it('reads zstd and plain tar to the same diffID as gzip', { skip: has('zstd') ? undefined : 'needs zstd' }, async () => {
    const zst = spawnSync('zstd', ['-c', '-q'], { input: tarball }).stdout;
    const a = await storeAt('zstd').ensure(null, () => streamOf(zst));
    const b = await storeAt('plain').ensure(null, () => streamOf(tarball));
    const c = await storeAt('gzip').ensure(null, () => streamOf(zlib.gzipSync(tarball)));
    assert.equal(a, b);
    assert.equal(b, c);
  });

  it('refuses a diffID mismatch with LAYER_DIFFID_MISMATCH', async () => {
    const store = storeAt('mismatch');
    const wrong = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(store.ensure(null, () => streamOf(tarball), wrong), { code: 'LAYER_DIFFID_MISMATCH' });
    assertEmpty(store);
  });

  it('stores a layer once when two unpack it at the same time', async () => {
    const store = storeAt('race');
    const [a, b] = await Promise.all([
      store.ensure(null, () => streamOf(zlib.gzipSync(tarball))),
      store.ensure(null, () => streamOf(tarball)),
    ]);
    assert.equal(a, b);
    assert.deepEqual(fs.readdirSync(store.layersDir), [a.slice('sha256:'.length)]);
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
    assert.equal(fs.readFileSync(path.join(store.path(a), 'after'), 'utf8'), 'a');
  });

  it('removes debris and layers without layer.json, and removes layers', async () => {
    const store = storeAt('debris');
    const id = await store.ensure(null, () => streamOf(tarball));
    fs.mkdirSync(path.join(store.layersDir, 'f'.repeat(64), 'diff'), { recursive: true });
    fs.mkdirSync(path.join(store.tmpDir, 'layer-killed', 'diff'), { recursive: true });
    store.cleanupDebris();
    assert.deepEqual(fs.readdirSync(store.layersDir), [id.slice('sha256:'.length)]);
    assert.deepEqual(fs.readdirSync(store.tmpDir), []);
    store.remove(id);
    store.remove(id);
    assert.equal(store.has(id), false);
    assertEmpty(store);
  });

  it('refuses a layer on top of a parent it does not have', async () => {
    const store = storeAt('orphan');
    await assert.rejects(store.ensure(`sha256:${'1'.repeat(64)}`, () => streamOf(tarball)), { code: 'LAYER_PARENT_MISSING' });
    assert.throws(() => store.path('sha256:../../etc'), { code: 'LAYER_ID_INVALID' });
  });
});
