// `berth run` (foreground) from the embedded busybox image: what isolation means, shown on
// real containers, and the exit statuses and errors users rely on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRoot, requires, TOP } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root');

describe('berth run', { skip, concurrency: 2 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]) => {
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(() => {
    ({ dir, root } = engineRoot('run'));
  });
  after(() => {
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('runs the command as PID 1, and ps shows only the container', () => {
    // busybox sh execs its last command, so ps replaces the shell as PID 1 and is then the
    // container's only process (a pipeline into wc would race with ps reading /proc).
    const r = berth(['run', '--rm', 'busybox', 'sh', '-c', 'echo $$; ps -o pid,args']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], '1');
    assert.match(lines[1], /^PID\s+COMMAND$/);
    assert.deepEqual(lines.slice(2), ['1 {ps} sh -c echo $$; ps -o pid,args']);
  });

  it('has its own hostname, /proc and mount table', () => {
    const r = berth(['run', '--rm', '--hostname', 'inside', '--cap-add', 'SYS_ADMIN', 'busybox', 'sh', '-c',
      `hostname; grep -c ' /proc proc ' /proc/mounts; test -e /proc/${process.pid} && echo host-visible || echo host-hidden; ` +
      'mount -t tmpfs marker-run /mnt && echo mounted']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['inside', '1', 'host-hidden', 'mounted']);
    assert.doesNotMatch(fs.readFileSync('/proc/self/mountinfo', 'utf8'), /marker-run/);
  });

  it('cannot kill a host process', () => {
    const r = berth(['run', '--rm', 'busybox', 'sh', '-c', `kill -9 ${process.pid} 2>&1 || echo refused`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /refused/);
  });

  it('writes land in the container\'s upper dir, never in the image layer', () => {
    const layers = path.join(root, 'layers');
    const layer = fs.readdirSync(layers)[0];
    const r = berth(['run', '--name', 'writer', 'busybox', 'sh', '-c', 'echo changed > /etc/motd; rm /bin/vi; echo ok']);
    assert.equal(r.status, 0, r.stderr);
    // ps --format json: a line per container with Docker's fields.
    const [c] = berth(['ps', '-a', '--no-trunc', '--format', 'json']).stdout.trim().split('\n').map((l) => JSON.parse(l))
      .filter((x: any) => x.Names === 'writer');
    assert.match(c.Status, /^Exited \(0\) /);
    const upper = path.join(root, 'containers', c.ID, 'upper');
    assert.equal(fs.readFileSync(path.join(upper, 'etc', 'motd'), 'utf8'), 'changed\n');
    // The deletion is a whiteout (a 0:0 character device) in upper; the layer keeps vi.
    const wh = fs.lstatSync(path.join(upper, 'bin', 'vi'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
    assert.ok(fs.lstatSync(path.join(layers, layer, 'diff', 'bin', 'vi')).isSymbolicLink());
    assert.equal(fs.existsSync(path.join(layers, layer, 'diff', 'etc', 'motd')), false);
    // Another container from the same image sees none of it.
    const other = berth(['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/motd 2>/dev/null || echo no-motd; test -e /bin/vi && echo has-vi']);
    assert.deepEqual(other.stdout.trim().split('\n'), ['no-motd', 'has-vi']);
    // The image cannot go while a container uses it; --force only takes its names.
    const rmi = berth(['rmi', 'busybox']);
    assert.equal(rmi.status, 125);
    assert.match(rmi.stderr, /image "busybox" is used by container "writer"/);
    // A name of an image that has others is only untagged, used or not (Docker's); -f on
    // a name takes that name only.
    assert.equal(berth(['tag', 'busybox', 'extra:one']).status, 0);
    assert.equal(berth(['tag', 'busybox', 'extra:two']).status, 0);
    assert.equal(berth(['rmi', 'extra:one']).stdout, 'Untagged: extra:one\n');
    assert.equal(berth(['rmi', '-f', 'extra:two']).stdout, 'Untagged: extra:two\n');
    assert.deepEqual(JSON.parse(berth(['image', 'inspect', 'busybox']).stdout)[0].RepoTags, ['localhost/busybox:latest']);
    assert.equal(berth(['rm', 'writer']).status, 0);
    assert.equal(fs.existsSync(path.join(root, 'containers', c.ID)), false);
  });

  it('uses Docker\'s exit statuses', () => {
    assert.equal(berth(['run', '--rm', 'busybox', 'sh', '-c', 'exit 42']).status, 42);
    assert.equal(berth(['run', '--rm', 'busybox', 'sh', '-c', 'kill -KILL $$; sleep 1; exit 0']).status, 0); // PID 1 ignores it
    assert.equal(berth(['run', '--rm', 'busybox', 'sh', '-c', 'sh -c "kill -TERM \\$\\$"; echo $?']).stdout.trim(), '143');
    const missing = berth(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /executable "no-such-command" not found/);
    const notExec = berth(['run', '--rm', 'busybox', '/etc/passwd']);
    assert.equal(notExec.status, 126, notExec.stderr);
  });

  it('applies -e, -w, -u and the image\'s config', () => {
    const r = berth(['run', '--rm', '-e', 'FOO=bar', '-w', '/tmp', '-u', 'nobody', 'busybox', 'sh', '-c', 'echo $FOO; pwd; id -u']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['bar', '/tmp', '65534']);
    // -w makes a missing directory; -e NAME passes the host's value; HOME comes from passwd.
    const more = spawnSync(BERTH, ['--root', root, 'run', '--rm', '-w', '/new/dir', '-e', 'BERTH_TEST_PASS', 'busybox', 'sh', '-c',
      'pwd; echo $BERTH_TEST_PASS; echo $HOME'], { encoding: 'utf8', env: { ...process.env, BERTH_TEST_PASS: 'from-host' } });
    assert.equal(more.status, 0, more.stderr);
    assert.deepEqual(more.stdout.trim().split('\n'), ['/new/dir', 'from-host', '/root']);
    // No command: the image's CMD (sh) reads stdin, with -i; without it, no input (Docker's).
    const cmd = spawnSync(BERTH, ['--root', root, 'run', '--rm', '-i', 'busybox'], { input: 'echo from-stdin\n', encoding: 'utf8' });
    assert.equal(cmd.stdout.trim(), 'from-stdin');
    const none = spawnSync(BERTH, ['--root', root, 'run', '--rm', 'busybox', 'sh', '-c', 'cat; echo end'], { input: 'not for it\n', encoding: 'utf8' });
    assert.equal(none.stdout, 'end\n');
    // -it needs a terminal, as Docker's.
    const it = spawnSync(BERTH, ['--root', root, 'run', '--rm', '-it', 'busybox', 'cat'], { input: 'x\n', encoding: 'utf8', timeout: 20_000 });
    assert.equal(it.status, 125);
    assert.match(it.stderr, /the input device is not a TTY/);
  });

  it('refuses bad input with exit 125 and leaves nothing', () => {
    const before = fs.readdirSync(path.join(root, 'containers')).length;
    for (const [args, msg] of [
      // Unknown images, without traffic past loopback: not here and not to be pulled, and
      // a registry on loopback that does not answer.
      [['run', '--rm', '--pull', 'never', 'no-such-image-here:v9'], /image "no-such-image-here:v9" is not here/],
      [['run', '--rm', '127.0.0.1:65533/no-such-image-here:v9'], /connect to registry "127\.0\.0\.1:65533": ECONNREFUSED/],
      [['run', '--rm', '--memory', 'lots', 'busybox', 'true'], /--memory "lots" is not a size/],
      // A plain name is a named volume now (volumes.test.ts); a relative path is neither.
      [['run', '--rm', '-v', 'relative/dir:/data', 'busybox', 'true'], /volume name "relative\/dir" is not valid/],
      [['run', '--rm', '-u', 'nosuchuser', 'busybox', 'true'], /user "nosuchuser" is not in the image's \/etc\/passwd/],
      [['run', '--rm', '--cap-add', 'BOGUS', 'busybox', 'true'], /unknown capability "CAP_BOGUS"/],
      [['run', '--rm', '--cpus', '4096', 'busybox', 'true'], /--cpus "4096" is out of range/],
      [['run', '--rm', '--env-file', '/nonexistent/env', 'busybox', 'true'], /--env-file "\/nonexistent\/env"/],
    ] as [string[], RegExp][]) {
      const r = berth(args);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
    assert.equal(fs.readdirSync(path.join(root, 'containers')).length, before);
  });
});
