// Hostile and out-of-range input to berth's command line: each case exits 125 with one
// clear line (and maybe a hint) that names the flag, never a stack trace or a complaint
// about config.json, and leaves no container, name, mount or process behind. Embedded
// busybox image, private --root.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, processesWith, requires, waitFor } from '../helpers';

const skip = requires('root');

describe('hostile berth CLI input', { skip }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]) => berthSync(root, args);
  /** ARGS fails with exit 125 and a one-line message matching RE; nothing is left behind. */
  const refused = (args: string[], re: RegExp): string => {
    const r = berth(args);
    assert.equal(r.status, 125, `berth ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at |internal error|config\.json|process\.|mounts\[/, r.stderr);
    assert.ok(r.stderr.trimEnd().split('\n').length <= 2, `more than a message and a hint: ${r.stderr}`);
    assert.equal(berth(['ps', '-aq']).stdout, '');
    return r.stderr;
  };

  before(() => {
    ({ dir, root } = engineRoot('cli-hostile'));
  });
  after(async () => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    await waitFor(() => processesWith(root).length === 0, 10_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    const procs = processesWith(root);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
    assert.deepEqual(procs, []);
  });

  it('a --name or rename target longer than a file name is refused as invalid, not a crash', () => {
    const long = 'a'.repeat(256);
    refused(['run', '--rm', '--name', long, 'busybox', 'true'], /container name "a+" is not valid\nhint: use up to 255 /);
    assert.deepEqual(fs.readdirSync(path.join(root, 'names')), []);
    // 255 is the most a name can be, and it works.
    const r = berth(['run', '--rm', '--name', long.slice(1), 'busybox', 'echo', 'ok']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    assert.equal(berth(['create', '--name', 'short', 'busybox', 'true']).status, 0);
    const rn = berth(['rename', 'short', long]);
    assert.equal(rn.status, 125);
    assert.match(rn.stderr, /container name "a+" is not valid/);
    assert.doesNotMatch(rn.stderr, /ENAMETOOLONG|\n\s+at /);
    assert.equal(berth(['rm', '-f', 'short']).status, 0);
    assert.deepEqual(fs.readdirSync(path.join(root, 'names')), []);
  });
});
