// The image store survives a berth command killed at any instant: the next command reads
// a whole index, uses no half-unpacked layer, clears the debris, and can redo the work.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, sleep, TOP } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root');

describe('image store killed mid-command', { skip }, () => {
  let dir: string;
  let root: string;
  let big: string;
  const berth = (args: string[]) => spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8' });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-imgcrash-'));
    root = path.join(dir, 'root');
    // A layer big enough that import takes a while: the busybox rootfs plus 64 MiB of files.
    const src = path.join(dir, 'src');
    spawnSync('cp', ['-a', path.join(TOP, 'build', 'busybox-bundle', 'rootfs'), src]);
    for (let i = 0; i < 64; i++) fs.writeFileSync(path.join(src, `blob${i}`), Buffer.alloc(1024 * 1024, i));
    big = path.join(dir, 'big.tar.gz');
    assert.equal(spawnSync('tar', ['-C', src, '-czf', big, '.']).status, 0);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const delay of [50, 150, 300, 500, 800, 1200]) {
    it(`recovers after import is killed at ${delay} ms`, async () => {
      const child = spawn(BERTH, ['--root', root, 'import', big, `big:${delay}`], { stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      await sleep(delay);
      child.kill('SIGKILL');
      await exited;

      // The index is whole, and every layer in layers/ is complete.
      const list = berth(['images', '--format', 'json']);
      assert.equal(list.status, 0, list.stderr);
      for (const l of list.stdout.trim().split('\n').filter(Boolean)) JSON.parse(l);
      const layersDir = path.join(root, 'layers');
      for (const l of fs.existsSync(layersDir) ? fs.readdirSync(layersDir) : []) {
        assert.ok(fs.existsSync(path.join(layersDir, l, 'layer.json')), `half layer ${l} in layers/`);
      }
      // The next writer clears the debris and finishes the job.
      const again = berth(['import', big, `big:${delay}`]);
      assert.equal(again.status, 0, again.stderr);
      const tmp = path.join(root, 'tmp');
      assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], []);
      const [info] = JSON.parse(berth(['image', 'inspect', `big:${delay}`]).stdout);
      assert.equal(info.RootFS.Layers.length, 1);
    });
  }
});
