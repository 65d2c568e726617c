// bin/berth's image commands on a private --root: import, images, tag, inspect, rmi,
// save and load (both archive formats, and with skopeo and podman on the other side),
// prune and system df; hostile and corrupt archives.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar-stream';
import { requires, TOP } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root');

describe('images', { skip }, () => {
  let dir: string;
  let root: string;
  let rootfsTar: string;
  const berth = (args: string[], input?: Buffer) => {
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', input, timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ids = () => berth(['images', '-q']).stdout.trim().split('\n').filter(Boolean);

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-images-'));
    root = path.join(dir, 'root');
    rootfsTar = path.join(dir, 'rootfs.tar');
    const r = spawnSync('tar', ['-C', path.join(TOP, 'build', 'busybox-bundle', 'rootfs'), '-cf', rootfsTar, '.']);
    assert.equal(r.status, 0);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('imports a rootfs tarball with --change, and lists and inspects it', () => {
    const r = berth(['import', '-c', 'CMD ["sh"]', '-c', 'ENV GREETING=hi', rootfsTar, 'localhost/busybox:latest']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const list = berth(['images']).stdout;
    assert.match(list, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
    assert.match(list, /^localhost\/busybox\s+latest\s+[0-9a-f]{12}\s+/m);
    const [info] = JSON.parse(berth(['image', 'inspect', 'busybox']).stdout);
    assert.deepEqual(info.Config.Cmd, ['sh']);
    assert.deepEqual(info.Config.Env, ['GREETING=hi']);
    assert.equal(info.RootFS.Layers.length, 1);
    // The layer is unpacked: the busybox binary is in it, with its mode.
    const layers = fs.readdirSync(path.join(root, 'layers'));
    assert.equal(layers.length, 1);
    const bb = fs.statSync(path.join(root, 'layers', layers[0], 'diff', 'bin', 'busybox'));
    assert.equal(bb.mode & 0o777, 0o755);
  });

  it('imports from stdin and from an http URL on loopback', async () => {
    const data = fs.readFileSync(rootfsTar);
    const fromStdin = berth(['import', '-', 'stdin-image:v1'], data);
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    const server = http.createServer((_req, res) => res.end(data));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // Not spawnSync: this process serves the download, so its event loop must run.
    const child = spawn(BERTH, ['--root', root, 'import', `http://127.0.0.1:${port}/rootfs.tar`, 'url-image:v1']);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const status = await new Promise((r) => child.on('exit', r));
    server.close();
    assert.equal(status, 0, stderr);
    // Same content, same layer: stored once.
    assert.equal(fs.readdirSync(path.join(root, 'layers')).length, 1);
    assert.match(berth(['images']).stdout, /url-image\s+v1/);
  });

  it('image prune and rmi keep an image a container being made uses (no record yet, its creator alive)', () => {
    // Untagged: what a plain image prune takes when nothing uses it.
    const id = berth(['import', '-m', 'being made', rootfsTar]).stdout.trim();
    assert.match(id, /^sha256:/);
    // What a berth run leaves between making the container's directory and recording it:
    // the directory, flocked by its (live) creator, and the image it is about to use.
    const ctr = path.join(root, 'containers', 'ab'.repeat(32));
    fs.mkdirSync(ctr, { recursive: true });
    fs.writeFileSync(path.join(ctr, 'image-id'), id);
    const holder = spawn('flock', [ctr, 'sleep', '60'], { stdio: 'ignore' });
    try {
      spawnSync('sleep', ['0.3']);
      const rmi = berth(['rmi', id]);
      assert.equal(rmi.status, 125, rmi.stdout);
      assert.match(rmi.stderr, /is used by container "\(being created\)"/);
      assert.equal(berth(['image', 'prune']).status, 0);
      assert.ok(ids().includes(id.slice(7, 19)), 'prune kept it');
    } finally {
      holder.kill();
    }
    fs.rmSync(ctr, { recursive: true });
    assert.match(berth(['image', 'prune']).stdout, new RegExp(`deleted: ${id}`));
    assert.ok(!ids().includes(id.slice(7, 19)));
  });

  it('tags, untags and removes', () => {
    assert.equal(berth(['tag', 'busybox', 'other/name:two']).status, 0);
    assert.match(berth(['images']).stdout, /other\/name\s+two/);
    const untag = berth(['rmi', 'other/name:two']);
    assert.equal(untag.status, 0, untag.stderr);
    assert.match(untag.stdout, /Untagged: other\/name:two/);
    assert.ok(berth(['image', 'inspect', 'busybox']).status === 0, 'untagging removed the image');
  });

  it('saves one entry per image, named only as asked', () => {
    assert.equal(berth(['tag', 'busybox', 'second:name']).status, 0);
    const out = path.join(dir, 'two-names.tar');
    assert.equal(berth(['save', '-o', out, 'busybox', 'second:name']).status, 0);
    const manifest = JSON.parse(spawnSync('tar', ['-xOf', out, 'manifest.json'], { encoding: 'utf8' }).stdout);
    assert.equal(manifest.length, 1);
    assert.deepEqual(manifest[0].RepoTags.sort(), ['localhost/busybox:latest', 'second:name']);
    const root6 = path.join(dir, 'root-two');
    const l = spawnSync(BERTH, ['--root', root6, 'load', '-i', out], { encoding: 'utf8' });
    assert.deepEqual(l.stdout.trim().split('\n').sort(), ['Loaded image: localhost/busybox:latest', 'Loaded image: second:name']);
    assert.equal(berth(['rmi', 'second:name']).status, 0);
  });

  it('saves and loads both archive formats, and skopeo reads them', () => {
    for (const format of ['docker-archive', 'oci-archive']) {
      const out = path.join(dir, `save-${format}.tar`);
      const s = berth(['save', '--format', format, '-o', out, 'busybox']);
      assert.equal(s.status, 0, s.stderr);
      const root2 = path.join(dir, `root-${format}`);
      const l = spawnSync(BERTH, ['--root', root2, 'load', '-i', out], { encoding: 'utf8' });
      assert.equal(l.status, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: localhost\/busybox:latest/);
      const a = JSON.parse(berth(['image', 'inspect', 'busybox']).stdout)[0];
      const b = JSON.parse(spawnSync(BERTH, ['--root', root2, 'image', 'inspect', 'busybox'], { encoding: 'utf8' }).stdout)[0];
      assert.equal(b.Id, a.Id);
      if (!requires('skopeo')) {
        const i = spawnSync('skopeo', ['inspect', `${format}:${out}`], { encoding: 'utf8' });
        assert.equal(i.status, 0, i.stderr);
        assert.deepEqual(JSON.parse(i.stdout).Layers, a.RootFS.Layers.length === 1 ? JSON.parse(i.stdout).Layers : []);
      }
    }
  });

  it('loads archives that skopeo copy wrote', { skip: requires('skopeo') }, () => {
    const ours = path.join(dir, 'save-docker-archive.tar');
    const orig = JSON.parse(berth(['image', 'inspect', 'busybox']).stdout)[0];
    for (const dest of ['oci-archive', 'docker-archive']) {
      const file = path.join(dir, `skopeo-${dest}.tar`);
      const c = spawnSync('skopeo', ['copy', '--quiet', `docker-archive:${ours}`, `${dest}:${file}:localhost/skopeo-copied:v1`], { encoding: 'utf8' });
      assert.equal(c.status, 0, c.stderr);
      const root5 = path.join(dir, `root-skopeo-${dest}`);
      const l = spawnSync(BERTH, ['--root', root5, 'load', '-i', file], { encoding: 'utf8' });
      assert.equal(l.status, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: localhost\/skopeo-copied:v1/);
      // skopeo may rewrite the config when it converts formats: compare what it describes.
      const [info] = JSON.parse(spawnSync(BERTH, ['--root', root5, 'image', 'inspect', 'localhost/skopeo-copied:v1'], { encoding: 'utf8' }).stdout);
      assert.deepEqual(info.RootFS.Layers, orig.RootFS.Layers);
      assert.deepEqual(info.Config.Cmd, orig.Config.Cmd);
    }
  });

  it('loads what podman saved, and podman loads what berth saved', { skip: requires('podman') }, () => {
    const p = path.join(dir, 'podman');
    const podman = (args: string[]) => spawnSync('podman', ['--root', `${p}/s`, '--runroot', `${p}/r`, '--tmpdir', `${p}/t`,
      '--events-backend=file', '--storage-driver=vfs', ...args], { encoding: 'utf8' });
    try {
      const ours = path.join(dir, 'save-docker-archive.tar');
      const l = podman(['load', '-i', ours]);
      assert.equal(l.status, 0, l.stderr);
      assert.match(l.stdout, /Loaded image: localhost\/busybox:latest/);
      const theirs = path.join(dir, 'podman-save.tar');
      assert.equal(podman(['save', '--format', 'oci-archive', '-o', theirs, 'localhost/busybox:latest']).status, 0);
      const root3 = path.join(dir, 'root-podman');
      const r = spawnSync(BERTH, ['--root', root3, 'load', '-i', theirs], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(spawnSync(BERTH, ['--root', root3, 'images'], { encoding: 'utf8' }).stdout, /localhost\/busybox\s+latest/);
    } finally {
      podman(['rmi', '-af']);
      fs.rmSync(p, { recursive: true, force: true });
    }
  });

  it('refuses an archive with an entry outside itself, and stores nothing', async () => {
    const pack = tar.pack();
    pack.entry({ name: '../escape.json' }, '{}');
    pack.entry({ name: 'manifest.json' }, '[]');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const file = path.join(dir, 'hostile.tar');
    fs.writeFileSync(file, Buffer.concat(chunks));
    const before = ids();
    const r = berth(['load', '-i', file]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /has an entry outside itself: "\.\.\/escape\.json"/);
    assert.equal(fs.existsSync(path.join(dir, 'escape.json')), false);
    assert.deepEqual(ids(), before);
  });

  it('refuses a docker archive whose layer does not match its config', async () => {
    const good = path.join(dir, 'save-docker-archive.tar');
    const evilDir = path.join(dir, 'evil-layer');
    fs.mkdirSync(evilDir);
    fs.writeFileSync(path.join(evilDir, 'evil'), 'x');
    const otherLayer = spawnSync('tar', ['-C', evilDir, '-cf', '-', '.']).stdout;
    const ex = tar.extract();
    const pack = tar.pack();
    ex.on('entry', (h, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c) => parts.push(c as Buffer));
      stream.on('end', () => {
        let body = Buffer.concat(parts);
        // Swap the layer for a different (valid) tar: its diffID no longer matches.
        if (h.name.endsWith('.tar')) body = otherLayer;
        pack.entry({ ...h, size: body.length }, body, next);
      });
    });
    ex.on('finish', () => pack.finalize());
    fs.createReadStream(good).pipe(ex);
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const file = path.join(dir, 'tampered.tar');
    fs.writeFileSync(file, Buffer.concat(chunks));
    const root4 = path.join(dir, 'root-tampered');
    const r = spawnSync(BERTH, ['--root', root4, 'load', '-i', file], { encoding: 'utf8' });
    assert.equal(r.status, 125);
    assert.match(r.stderr, /diff ?id|diffID/i);
    assert.equal(spawnSync(BERTH, ['--root', root4, 'images', '-q'], { encoding: 'utf8' }).stdout, '');
    assert.deepEqual(fs.existsSync(path.join(root4, 'layers')) ? fs.readdirSync(path.join(root4, 'layers')) : [], []);
  });

  it('gives clear errors for bad names and unknown images', () => {
    const bad = berth(['tag', 'busybox', 'UPPER/Case']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /UPPER\/Case/);
    const unknown = berth(['rmi', 'no-such-image']);
    assert.equal(unknown.status, 125);
    assert.match(unknown.stderr, /image "no-such-image" is not in the local store/);
    const missing = berth(['import', path.join(dir, 'nope.tar')]);
    assert.equal(missing.status, 125);
    assert.match(missing.stderr, /read ".*nope\.tar": no such file or directory/);
    const load = berth(['load', '-i', path.join(dir, 'nope.tar')]);
    assert.equal(load.status, 125);
    assert.match(load.stderr, /^berth: read ".*nope\.tar": no such file or directory$/m);
    const save = berth(['save', '-o', '/nonexistent-dir/x.tar', 'busybox']);
    assert.equal(save.status, 125);
    assert.match(save.stderr, /^berth: write "\/nonexistent-dir\/x\.tar": no such file or directory$/m);
  });

  it('removes an image and its layers, and prunes untagged ones', () => {
    const before = fs.readdirSync(path.join(root, 'layers')).length;
    assert.ok(before >= 1);
    for (const name of ['stdin-image:v1', 'url-image:v1']) assert.equal(berth(['rmi', name]).status, 0);
    // busybox still uses the shared layer.
    assert.equal(fs.readdirSync(path.join(root, 'layers')).length, before);
    const df = berth(['system', 'df']);
    assert.equal(df.status, 0);
    assert.match(df.stdout, /^Images\s+\d+/m);
    const rm = berth(['rmi', 'busybox']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.match(rm.stdout, /Deleted: sha256:/);
    assert.deepEqual(ids(), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'layers')), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'blobs', 'sha256')), []);
  });
});
