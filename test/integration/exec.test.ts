// `berth exec` into detached containers of the embedded busybox image: the process joins
// the container (hostname, PID namespace, cgroup), keeps stdout and stderr apart, returns
// the command's status (126/127 when it cannot run), and takes -i, -t, -d, -e, -u, -w.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, requires, TOP, waitFor, type Result } from '../helpers';

const skip = requires('root');


describe('berth exec', { skip }, () => {
  let dir: string;
  let root: string;
  let id: string;
  const berth = (args: string[], input?: string, timeout = 60_000): Result => berthSync(root, args, { input, timeout });
  const ok = (args: string[], input?: string): string => {
    const r = berth(args, input);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  before(() => {
    ({ dir, root } = engineRoot('exec'));
    id = ok(['run', '-d', '--name', 'box', '-e', 'FROM_RUN=yes', 'busybox', 'sleep', '300']).trim();
  });
  after(() => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    berth(['unpause', 'box']);
    if (ids.length) berth(['rm', '-f', ...ids]);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('runs inside the container: its hostname, PID namespace and cgroup; stdout and stderr apart; the exit status', () => {
    const r = berth(['exec', 'box', 'sh', '-c', 'hostname; echo pid=$$; cat /proc/1/comm; echo to-stderr >&2; exit 3']);
    assert.equal(r.status, 3, r.stderr);
    const [hostname, pid, init, rest] = r.stdout.split('\n');
    assert.equal(hostname, id.slice(0, 12));
    // A small pid of the container's PID namespace, where PID 1 is the container's sleep.
    assert.match(pid, /^pid=\d$/);
    assert.equal(init, 'sleep');
    assert.equal(rest, '');
    assert.equal(r.stderr, 'to-stderr\n');
    // Its cgroup is the container's: that of PID 1, the root of the cgroup namespace.
    const cg = ok(['exec', 'box', 'sh', '-c', 'cat /proc/self/cgroup; echo; cat /proc/1/cgroup']).trimEnd().split('\n\n');
    assert.equal(cg[0], cg[1]);
    assert.match(cg[0], /^0::\/$/m);
    // The container's environment, with -e on top.
    const env = ok(['exec', '-e', 'FROM_RUN=exec', '-e', 'NEW=1', 'box', 'env']);
    assert.match(env, /^FROM_RUN=exec$/m);
    assert.match(env, /^NEW=1$/m);
    assert.match(env, new RegExp(`^HOSTNAME=${id.slice(0, 12)}$`, 'm'));
    assert.match(env, /^PATH=/m);
    // --env-file, as run's: NAME=VALUE lines, comments skipped, -e on top.
    const file = path.join(dir, 'exec.env');
    fs.writeFileSync(file, '# a comment\nFROM_FILE=file\nNEW=from-file\n');
    const fenv = ok(['exec', '--env-file', file, '-e', 'NEW=flag', 'box', 'env']);
    assert.match(fenv, /^FROM_FILE=file$/m);
    assert.match(fenv, /^NEW=flag$/m);
  });

  it('126 for a command that cannot run, 127 for one that is not there, 125 for berth\'s own errors', () => {
    const notFound = berth(['exec', 'box', 'no-such-command']);
    assert.equal(notFound.status, 127);
    assert.match(notFound.stderr, /executable "no-such-command" not found/);
    const denied = berth(['exec', 'box', '/etc/passwd']);
    assert.equal(denied.status, 126);
    assert.match(denied.stderr, /permission denied/);
    const unknown = berth(['exec', 'nope', 'true']);
    assert.equal(unknown.status, 125);
    assert.match(unknown.stderr, /^berth: no such container: "nope"$/m);
    const badUser = berth(['exec', '-u', 'nobody-here', 'box', 'true']);
    assert.equal(badUser.status, 125);
    assert.match(badUser.stderr, /user "nobody-here" is not in the image's \/etc\/passwd/);
  });

  it('refuses a container that is not running', () => {
    const done = ok(['run', '-d', 'busybox', 'true']).trim();
    assert.equal(ok(['wait', done]), '0\n');
    const r = berth(['exec', done, 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /^berth: cannot exec in container "[a-z_0-9]+": it is not running$/m);
    ok(['rm', done]);
  });

  it('-u USER[:GROUP] from the container\'s /etc/passwd and /etc/group; -w', () => {
    assert.equal(ok(['exec', '-u', 'nobody', 'box', 'id']), 'uid=65534(nobody) gid=65534(nogroup)\n');
    assert.equal(ok(['exec', '-u', '1234:nogroup', 'box', 'sh', '-c', 'id -u; id -g']), '1234\n65534\n');
    assert.equal(ok(['exec', '-w', '/etc', 'box', 'pwd']), '/etc\n');
  });

  it('-i passes stdin; without -i the command reads nothing', () => {
    assert.equal(ok(['exec', '-i', 'box', 'sh', '-c', 'cat > /in; wc -c < /in'], 'data\n'), '5\n');
    assert.equal(ok(['exec', 'box', 'cat'], 'ignored\n'), '');
  });

  it('-t gives the command a terminal', () => {
    const r = berth(['exec', '-t', 'box', 'sh', '-c', 'tty; test -t 0 && test -t 1 && echo both-tty; echo $TERM']);
    assert.equal(r.status, 0, r.stderr);
    // The pty turns "\n" into "\r\n".
    assert.match(r.stdout, /^\/dev\/pts\/\d+\r\nboth-tty\r\nxterm\r\n$/);
    assert.equal(berth(['exec', '-t', 'box', 'sh', '-c', 'exit 4']).status, 4);
  });

  it('-d returns at once; the command runs on in the container', async () => {
    const t0 = Date.now();
    const r = berth(['exec', '-d', 'box', 'sh', '-c', 'sleep 2; echo done > /detached']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(Date.now() - t0 < 1800, `exec -d took ${Date.now() - t0} ms`);
    assert.match(ok(['top', 'box']), /sleep 2/);
    assert.ok(await waitFor(() => berth(['exec', 'box', 'cat', '/detached']).stdout === 'done\n', 10_000));
  });

  it('refuses a paused container, with the way out', () => {
    ok(['pause', 'box']);
    try {
      const r = berth(['exec', 'box', 'true']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /cannot exec in container "box": it is paused\nhint: berth unpause box/);
    } finally {
      ok(['unpause', 'box']);
    }
    ok(['exec', 'box', 'true']);
  });
});
