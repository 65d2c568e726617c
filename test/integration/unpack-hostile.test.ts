// Hostile layers (src/storage/unpack.ts): tarballs built to write outside the layer with
// "..", absolute names, planted symlinks and hardlinks. Each must be refused
// (LAYER_HOSTILE_ENTRY) or contained in the destination, and a canary directory beside it
// and the host's /etc must be untouched.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { native } from '../../src/common/native';
import { unpackLayer } from '../../src/storage/unpack';
import { requires } from '../helpers';
import { describeTree, streamOf, tarOf, type TarEntry } from '../layer-fixtures';

type Outcome = 'refused' | 'contained' | 'refused-or-contained';

describe('unpacking hostile layers', { skip: requires('root') }, () => {
  let top: string;
  let n = 0;
  const passwdLinks = fs.statSync('/etc/passwd').nlink;
  const hostPaths = ['/escape', '/abs', '/x', '/pwned', '/etc/x', '/etc/pwned'].filter((p) => !fs.existsSync(p));

  before(() => {
    top = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-hostile-'));
  });
  after(() => {
    fs.rmSync(top, { recursive: true, force: true });
    assert.equal(fs.statSync('/etc/passwd').nlink, passwdLinks, '/etc/passwd gained a link');
    for (const p of hostPaths) assert.ok(!fs.existsSync(p), `${p} was created on the host`);
  });

  /** Unpacks the layer ENTRIES(canary) into a fresh dest beside a canary dir; checks the
   * outcome and that nothing outside dest changed; returns dest. */
  async function attempt(outcome: Outcome, entries: (canary: string) => TarEntry[]): Promise<string> {
    const dir = path.join(top, String(n++));
    const dest = path.join(dir, 'dest');
    const canary = path.join(dir, 'canary');
    fs.mkdirSync(canary, { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(canary, 'file'), 'canary');
    const outside = () => [...describeTree(dir)].filter(([rel]) => rel !== 'dest' && !rel.startsWith('dest/'));
    const before = outside();

    let error: any;
    try {
      await unpackLayer(streamOf(await tarOf(entries(canary))), dest);
    } catch (err) {
      error = err;
    }
    if (outcome === 'refused') assert.equal(error?.code, 'LAYER_HOSTILE_ENTRY', error?.stack ?? 'not refused');
    if (outcome === 'contained') assert.equal(error, undefined, error?.stack);
    if (error) assert.match(error.code, /^LAYER_/, error.stack);
    assert.deepEqual(outside(), before, 'something outside dest changed');
    return dest;
  }

  it('refuses "../escape"', async () => {
    await attempt('refused', () => [{ name: '../escape', body: 'x' }]);
  });

  it('refuses "a/../../escape"', async () => {
    await attempt('refused', () => [{ name: 'a', type: 'directory' }, { name: 'a/../../escape', body: 'x' }]);
  });

  it('contains "/abs/escape" in the layer', async () => {
    const dest = await attempt('contained', () => [{ name: '/abs/escape', body: 'x' }]);
    assert.equal(fs.readFileSync(path.join(dest, 'abs/escape'), 'utf8'), 'x');
  });

  it('contains a file written through a symlink to /', async () => {
    let canaryDir = '';
    const dest = await attempt('contained', (canary) => {
      canaryDir = canary;
      return [
        { name: 'evil', type: 'symlink', linkname: '/' },
        { name: 'evil/etc/x', body: 'x' },
        { name: `evil${canary}/pwned`, body: 'x' },
      ];
    });
    assert.equal(fs.readFileSync(path.join(dest, 'etc/x'), 'utf8'), 'x');
    assert.ok(fs.existsSync(path.join(dest, canaryDir, 'pwned')));
    assert.equal(fs.lstatSync(path.join(dest, 'evil')).isSymbolicLink(), true);
  });

  it('contains a file written through a symlink to ../../..', async () => {
    const dest = await attempt('contained', () => [
      { name: 'd', type: 'directory' },
      { name: 'd/up', type: 'symlink', linkname: '../../..' },
      { name: 'd/up/x', body: 'x' },
    ]);
    assert.equal(fs.readFileSync(path.join(dest, 'x'), 'utf8'), 'x');
  });

  it('does not write through a symlink to the canary\'s absolute path', async () => {
    await attempt('refused-or-contained', (canary) => [
      { name: 'evil', type: 'symlink', linkname: canary },
      { name: 'evil/pwned', body: 'x' },
      { name: 'evil/.wh.file' },
      { name: 'evil/.wh..wh..opq' },
    ]);
  });

  it('replaces a planted symlink instead of writing through it', async () => {
    const dest = await attempt('contained', (canary) => [
      { name: 'f', type: 'symlink', linkname: path.join(canary, 'file') },
      { name: 'f', body: 'pwned', mode: 0o777 },
      { name: 'd', type: 'symlink', linkname: canary },
      { name: 'd', type: 'directory', mode: 0o777 },
      { name: 'd/x', body: 'x' },
    ]);
    assert.equal(fs.readFileSync(path.join(dest, 'f'), 'utf8'), 'pwned');
    assert.ok(fs.lstatSync(path.join(dest, 'd')).isDirectory());
  });

  it('refuses a hardlink to /etc/passwd', async () => {
    await attempt('refused', () => [{ name: 'hl', type: 'link', linkname: '/etc/passwd' }]);
  });

  it('refuses a hardlink to ../../../../etc/passwd', async () => {
    await attempt('refused', () => [{ name: 'hl', type: 'link', linkname: '../../../../../../etc/passwd' }]);
  });

  it('links "/etc/passwd" to the layer\'s own file', async () => {
    const dest = await attempt('contained', () => [
      { name: 'etc', type: 'directory' },
      { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' },
      { name: 'hl', type: 'link', linkname: '/etc/passwd' },
    ]);
    assert.equal(fs.statSync(path.join(dest, 'hl')).ino, fs.statSync(path.join(dest, 'etc/passwd')).ino);
  });

  it('refuses a hardlink through a planted symlink', async () => {
    await attempt('refused', () => [
      { name: 's', type: 'symlink', linkname: '/etc' },
      { name: 'h', type: 'link', linkname: 's/passwd' },
    ]);
    await attempt('refused', (canary) => [
      { name: 's', type: 'symlink', linkname: canary },
      { name: 'h', type: 'link', linkname: 's/file' },
    ]);
  });

  it('links a symlink itself, never its target', async () => {
    const dest = await attempt('contained', (canary) => [
      { name: 'sl', type: 'symlink', linkname: path.join(canary, 'file') },
      { name: 'hl', type: 'link', linkname: 'sl' },
      { name: 'hl', body: 'overwrite' },
    ]);
    assert.equal(fs.readlinkSync(path.join(dest, 'sl')).endsWith('canary/file'), true);
    assert.equal(fs.readFileSync(path.join(dest, 'hl'), 'utf8'), 'overwrite');
  });

  it('refuses a whiteout of ".." and a non-directory layer root', async () => {
    await attempt('refused', () => [{ name: '.wh..' }]);
    await attempt('refused', () => [{ name: './', type: 'file', body: 'x' }]);
  });

  it('ignores overlay\'s own xattrs in the tar', async () => {
    const dest = await attempt('contained', () => [
      { name: 'r', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.ok': 'yes' } },
    ]);
    assert.equal(native().lgetxattr(-100, path.join(dest, 'r'), 'trusted.overlay.redirect'), null);
    assert.equal(native().lgetxattr(-100, path.join(dest, 'r'), 'user.ok')?.toString(), 'yes');
  });

  it('keeps modes, owners and directory mtimes set after their contents', async () => {
    const dest = await attempt('contained', () => [
      { name: 'd', type: 'directory', mode: 0o1750, uid: 12, gid: 34 },
      { name: 'd/suid', body: 'x', mode: 0o4755, uid: 56, gid: 78 },
      { name: 'd/sub', type: 'directory', mode: 0o700 },
      { name: 'd/sub/f', body: 'y' },
    ]);
    const d = fs.statSync(path.join(dest, 'd'));
    assert.equal(d.mode & 0o7777, 0o1750);
    assert.deepEqual([d.uid, d.gid], [12, 34]);
    assert.equal(d.mtimeMs, 1_700_000_000_000);
    assert.equal(fs.statSync(path.join(dest, 'd/sub')).mtimeMs, 1_700_000_000_000);
    const f = fs.statSync(path.join(dest, 'd/suid'));
    assert.equal(f.mode & 0o7777, 0o4755);
    assert.deepEqual([f.uid, f.gid], [56, 78]);
  });
});
