// `berth pull` end to end from a real registry on loopback: progress lines, the image in
// `berth images`, layers unpacked and chained, a second pull that downloads nothing, and
// clear errors for unknown images and refs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, TOP } from '../helpers';
import { push, Registry, run, startRegistry, stopRegistry } from '../registry-fixtures';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root', 'docker-registry', 'skopeo', 'umoci');

describe('berth pull', { skip }, () => {
  let dir: string;
  let reg: Registry | undefined;
  const berth = (args: string[]) => {
    const r = spawnSync(BERTH, ['--root', path.join(dir, 'root'), ...args], { encoding: 'utf8', timeout: 120_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-pull-'));
    reg = await startRegistry(dir, 'reg');
    // umoci 0.4's `insert` writes tars without their end blocks, which berth (like Docker)
    // refuses; unpack + repack writes whole ones.
    const layout = path.join(dir, 'layout');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:v1`]);
    for (const [name, text] of [['one.txt', 'first layer\n'], ['two.txt', 'second layer\n'], ['three.txt', 'third\n']]) {
      const bundle = path.join(dir, `bundle-${name}`);
      run('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
      fs.writeFileSync(path.join(bundle, 'rootfs', name), text);
      run('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
      fs.rmSync(bundle, { recursive: true, force: true });
    }
    push(layout, 'v1', `${reg.host}/team/app:v1`);
  });
  after(async () => {
    await stopRegistry(reg);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pulls a multi-layer image and unpacks its layers', () => {
    const r = berth(['pull', `${reg!.host}/team/app:v1`]);
    assert.equal(r.status, 0, r.stderr);
    // Not a terminal: one plain line per finished blob, then the digest and the id.
    assert.equal((r.stdout.match(/^layer [0-9a-f]{12}: .* done$/gm) ?? []).length, 3, r.stdout);
    assert.match(r.stdout, new RegExp(`^${reg!.host.replace(/\./g, '\\.')}/team/app@sha256:[0-9a-f]{64}$`, 'm'));
    assert.match(berth(['images']).stdout, new RegExp(`^${reg!.host.replace(/\./g, '\\.')}/team/app\\s+v1\\s`, 'm'));
    const [info] = JSON.parse(berth(['image', 'inspect', `${reg!.host}/team/app:v1`]).stdout);
    assert.equal(info.RootFS.Layers.length, 3);
    const layers = fs.readdirSync(path.join(dir, 'root', 'layers'));
    assert.equal(layers.length, 3);
    const files = layers.flatMap((l) => fs.readdirSync(path.join(dir, 'root', 'layers', l, 'diff'))).sort();
    assert.deepEqual(files, ['one.txt', 'three.txt', 'two.txt']);
  });

  it('downloads nothing the second time', () => {
    const r = berth(['pull', `${reg!.host}/team/app:v1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stdout.match(/already stored/g) ?? []).length, 4, r.stdout); // config + 3 layers
  });

  it('prints only the id with --quiet', () => {
    const r = berth(['pull', '-q', `${reg!.host}/team/app:v1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  });

  it('says what is wrong with an unknown image or a bad reference', () => {
    const unknown = berth(['pull', `${reg!.host}/team/nope:v1`]);
    assert.equal(unknown.status, 125);
    assert.match(unknown.stderr, /team\/nope/);
    const bad = berth(['pull', 'Bad Name']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /Bad Name/);
  });
});
