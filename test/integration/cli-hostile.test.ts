// Hostile and out-of-range input to berth's command line: each case exits 125 with one
// clear line (and maybe a hint) that names the flag, never a stack trace or a complaint
// about config.json, and leaves no container, name, mount or process behind. Embedded
// busybox image, private --root.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, berthSync, engineRoot, processesWith, removeEngineRoot, requires, waitFor } from '../helpers';

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
  after(() => removeEngineRoot(dir, root));

  it('an unknown option, command or missing argument is one line and a hint, not the whole help', () => {
    const opt = refused(['run', '--frobnicate', 'busybox', 'true'], /^berth: unknown option '--frobnicate'\nhint: add --help/);
    assert.doesNotMatch(opt, /Usage:/);
    refused(['run'], /^berth: missing required argument 'image'\n/);
    refused(['frobnicate'], /^berth: unknown command 'frobnicate'\n/);
  });

  it('a --root that is a file, or has a file on its path, is refused instead of reading as an empty store', () => {
    const file = path.join(dir, 'plain-file');
    fs.writeFileSync(file, 'not a root\n');
    for (const r of [file, path.join(file, 'below')]) {
      const res = spawnSync(BERTH, ['--root', r, 'ps', '-a'], { encoding: 'utf8' });
      assert.equal(res.status, 125, res.stdout + res.stderr);
      assert.equal(res.stdout, '');
      assert.match(res.stderr, new RegExp(`^berth: the root ${r} is not a directory`));
    }
    assert.equal(fs.readFileSync(file, 'utf8'), 'not a root\n');
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

  it('--ulimit: -1 and unlimited mean no limit (as Docker\'s), bad values are named', () => {
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const hardOf = (row: string) => limits.split('\n').find((l) => l.startsWith(row))!.slice(row.length).trim().split(/\s+/)[1];
    // core's hard limit is normally unlimited: -1 is then allowed without CAP_SYS_RESOURCE.
    if (hardOf('Max core file size') === 'unlimited') {
      for (const v of ['core=-1', 'core=unlimited', 'core=0:-1']) {
        const r = berth(['run', '--rm', '--ulimit', v, 'busybox', 'sh', '-c', 'ulimit -Hc']);
        assert.equal(r.status, 0, `${v}: ${r.stderr}`);
        assert.equal(r.stdout, 'unlimited\n');
      }
    }
    refused(['run', '--rm', '--ulimit', 'nofile=-1', 'busybox', 'true'], /--ulimit "nofile=-1": nofile cannot be unlimited/);
    refused(['run', '--rm', '--ulimit', 'nofile=99999999999', 'busybox', 'true'], /nofile cannot be above the kernel's maximum \(fs\.nr_open = \d+\)/);
    refused(['run', '--rm', '--ulimit', 'core=99999999999999999999999', 'busybox', 'true'], /--ulimit "core=9+": 9+ is not a limit/);
    refused(['run', '--rm', '--ulimit', 'core=-5', 'busybox', 'true'], /--ulimit "core=-5": -5 is not a limit/);
    refused(['run', '--rm', '--ulimit', 'nofile=2:1', 'busybox', 'true'], /the soft limit is above the hard limit/);
    refused(['run', '--rm', '--ulimit', 'core=-1:0', 'busybox', 'true'], /the soft limit is above the hard limit/);
    // Above this host's hard limit, without CAP_SYS_RESOURCE (or in a user namespace):
    // which flag and which ceiling, not "setrlimit resource 8: EPERM".
    const memlock = hardOf('Max locked memory');
    if (memlock !== 'unlimited') {
      refused(['run', '--rm', '--userns', 'auto', '--ulimit', `memlock=${Number(memlock) + 4096}`, 'busybox', 'true'],
        new RegExp(`--ulimit "memlock=\\d+": the hard limit is above this host's \\(${memlock}\\), and berth cannot raise it`));
    }
  });

  it('--ulimit nofile=1 and other tiny open-file limits reach the process (the init sets them last)', () => {
    for (const [v, want] of [['nofile=1', '1\n1'], ['nofile=3:5', '3\n5']]) {
      const r = berth(['run', '--rm', '--network', 'none', '--ulimit', v, 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn']);
      assert.equal(r.status, 0, `${v}: ${r.stderr}`);
      assert.equal(r.stdout, `${want}\n`);
    }
    const d = berth(['run', '-d', '--network', 'none', '--ulimit', 'nofile=4', 'busybox', 'sh', '-c', 'ulimit -n']);
    assert.equal(d.status, 0, d.stderr);
    const id = d.stdout.trim();
    assert.equal(berth(['wait', id]).stdout, '0\n');
    assert.equal(berth(['logs', id]).stdout, '4\n');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('run -d of a process that cannot run after start records Docker\'s status (126), not the init\'s 1', () => {
    const r = berth(['run', '-d', '--network', 'none', '--name', 'cwdfile', '-w', '/etc/passwd', 'busybox', 'true']);
    assert.equal(r.status, 126, r.stderr);
    assert.match(r.stderr, /chdir to the process cwd "\/etc\/passwd": not a directory/);
    assert.equal(berth(['wait', 'cwdfile']).stdout, '126\n');
    const [info] = JSON.parse(berth(['inspect', 'cwdfile']).stdout);
    assert.equal(info.State.ExitCode, 126);
    assert.equal(berth(['rm', 'cwdfile']).status, 0);
  });

  it('out-of-range sizes, counts and ids name the flag, not a config.json field', () => {
    refused(['run', '--rm', '-m', '1b', 'busybox', 'true'], /--memory "1b" is below the minimum of 6m/);
    refused(['run', '--rm', '-m', '99999999999999999999999g', 'busybox', 'true'], /--memory "9+g" is too large/);
    refused(['run', '--rm', '--pids-limit', '99999999999999999999999', 'busybox', 'true'], /--pids-limit "9+" is too large/);
    refused(['run', '--rm', '--cpus', 'abc', 'busybox', 'true'], /--cpus "abc" is not a number/);
    refused(['run', '--rm', '-u', '99999999999', 'busybox', 'true'], /user "9+": uid 9+ is out of range/);
    refused(['run', '--rm', '-u', '0:4294967296', 'busybox', 'true'], /user "0:4294967296": gid 4294967296 is out of range/);
    refused(['run', '--rm', '-w', 'relative', 'busybox', 'true'], /--workdir "relative" is not an absolute path/);
    const r = berth(['run', '--rm', '-m', '6m', '-u', '2147483647', '-w', '/tmp', 'busybox', 'sh', '-c', 'id -u; pwd']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '2147483647\n/tmp\n');
    assert.equal(berth(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '30']).status, 0);
    for (const [args, re] of [[['-w', 'rel'], /--workdir "rel" is not an absolute path/], [['-u', '99999999999'], /uid 9+ is out of range/]] as const) {
      const e = berth(['exec', ...args, 'ex', 'true']);
      assert.equal(e.status, 125, e.stderr);
      assert.match(e.stderr, re);
      assert.doesNotMatch(e.stderr, /config\.json|process\./);
    }
    assert.equal(berth(['rm', '-f', 'ex']).status, 0);
  });

  it('-v, --mount and --tmpfs onto the root or /proc are refused naming the flag, before a named volume is made', () => {
    refused(['run', '--rm', '-v', '/tmp:/', 'busybox', 'true'], /^berth: -v "\/tmp:\/": cannot mount on "\/": it is the container's root directory\nhint: /);
    refused(['run', '--rm', '-v', '/tmp:/x/..', 'busybox', 'true'], /cannot mount on "\/x\/\.\.": it is the container's root directory/);
    refused(['run', '--rm', '-v', 'newvol:/', 'busybox', 'true'], /-v "newvol:\/": cannot mount on "\/"/);
    refused(['run', '--rm', '--mount', 'type=bind,src=/tmp,dst=/proc', 'busybox', 'true'], /--mount "type=bind,src=\/tmp,dst=\/proc": cannot mount on "\/proc": it is the container's \/proc/);
    refused(['run', '--rm', '--tmpfs', '/proc', 'busybox', 'true'], /--tmpfs "\/proc": cannot mount on "\/proc"/);
    refused(['run', '--rm', '-v', '/tmp:/proc/', 'busybox', 'true'], /cannot mount on "\/proc\/"/);
    assert.equal(berth(['volume', 'ls', '-q']).stdout, '');
  });

  it('an empty command is not found (127, as Docker\'s), said in the user\'s words', () => {
    for (const args of [['run', '--rm', 'busybox', ''], ['run', '--rm', '--entrypoint', '', 'busybox', '', 'x'], ['run', '-d', 'busybox', '']]) {
      const r = berth(args);
      assert.equal(r.status, 127, r.stderr);
      assert.match(r.stderr, /^berth: the command to run is an empty string\nhint: /);
      assert.doesNotMatch(r.stderr, /process\.args/);
      assert.equal(berth(['ps', '-aq']).stdout, '');
    }
  });

  it('rm/stop/kill/start of several containers go on past one that does not exist, as Docker\'s', () => {
    assert.equal(berth(['run', '-d', '--name', 'm1', 'busybox', 'sleep', '60']).status, 0);
    assert.equal(berth(['create', '--name', 'm2', 'busybox', 'sleep', '60']).status, 0);
    const start = berth(['start', 'gone', 'm2']);
    assert.equal(start.status, 125);
    assert.equal(start.stdout, 'm2\n');
    assert.match(start.stderr, /^berth: no such container: "gone"\nhint: /);
    const kill = berth(['kill', 'm1', 'gone', 'm2']);
    assert.equal(kill.status, 125);
    assert.equal(kill.stdout, 'm1\nm2\n');
    const rm = berth(['rm', '-f', 'gone', 'm1', 'gone2', 'm2']);
    assert.equal(rm.status, 125);
    assert.equal(rm.stdout, 'm1\nm2\n');
    assert.equal(rm.stderr.match(/no such container/g)?.length, 2, rm.stderr);
    assert.equal(berth(['ps', '-aq']).stdout, '');
    // The names are free again.
    assert.equal(berth(['run', '--rm', '--name', 'm1', 'busybox', 'true']).status, 0);
  });

  it('a volume name too long for a directory is refused as not valid, not an internal error', () => {
    const long = 'v'.repeat(237);
    for (const args of [['volume', 'create', long], ['run', '--rm', '-v', `${long}:/x`, 'busybox', 'true']]) {
      refused(args, /volume name "v+" is not valid\nhint: use 2 to 236 /);
    }
    // 236 is the most, and such a volume can be used and removed again.
    assert.equal(berth(['volume', 'create', long.slice(1)]).status, 0);
    assert.equal(berth(['run', '--rm', '-v', `${long.slice(1)}:/x`, 'busybox', 'true']).status, 0);
    assert.equal(berth(['volume', 'rm', long.slice(1)]).status, 0);
    assert.equal(berth(['volume', 'ls', '-q']).stdout, '');
  });

  it('a berth run -d killed before it recorded its container (no --name): berth ps -a frees its directory, mount and name', () => {
    // The state such a run leaves (a narrow window: made by hand, as security-review.test.ts
    // does): a generated name, a directory with its root filesystem mounted, no container.json.
    // Before, nothing ever removed it: ps -a did not show it and no one would name it again.
    const id = randomBytes(32).toString('hex');
    const cdir = path.join(root, 'containers', id);
    for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(cdir, d), { recursive: true });
    fs.writeFileSync(path.join(root, 'names', 'brave_keel'), id);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', path.join(cdir, 'rootfs')]).status, 0);
    // A directory younger than 2 s may still be its creator's, between mkdir and flock.
    const young = berth(['ps', '-a']);
    assert.equal(young.status, 0, young.stderr);
    assert.ok(fs.existsSync(cdir));
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(cdir, old, old);
    const r = berth(['ps', '-a']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, r.stdout);
    assert.ok(!fs.existsSync(cdir));
    assert.ok(!fs.existsSync(path.join(root, 'names', 'brave_keel')));
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(id));
  });

  it('-e and --env-file: a name with white space, an empty one, or a NUL is refused, as Docker\'s', () => {
    const file = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    refused(['run', '--rm', '--env-file', file('spaced', '# comment\nGOOD=1\nKEY = value\n'), 'busybox', 'true'],
      /^berth: environment variable "KEY = value": the name "KEY " contains white space\nhint: /);
    refused(['run', '--rm', '--env-file', file('nul', 'A=1\0B=2\n'), 'busybox', 'true'], /environment variable "A" holds a NUL byte/);
    refused(['run', '--rm', '-e', 'A B=1', 'busybox', 'true'], /the name "A B" contains white space/);
    refused(['run', '--rm', '-e', '', 'busybox', 'true'], /environment variable "" must be NAME=VALUE or NAME/);
    const r = berth(['run', '--rm', '--env-file', file('good', '# c\n\nGOOD=1\n'), '-e', 'V=a b', 'busybox', 'sh', '-c', 'echo $GOOD $V']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1 a b\n');
    assert.equal(berth(['run', '-d', '--name', 'envx', 'busybox', 'sleep', '30']).status, 0);
    const e = berth(['exec', '-e', 'X Y=1', 'envx', 'true']);
    assert.equal(e.status, 125);
    assert.match(e.stderr, /the name "X Y" contains white space/);
    assert.equal(berth(['rm', '-f', 'envx']).status, 0);
  });

  it('a foreground berth run killed while its container runs: ps -a shows it exited, --rm still removes it, its name is free', async () => {
    for (const rm of [true, false]) {
      const name = rm ? 'fg-rm' : 'fg-keep';
      const child = spawn(BERTH, ['--root', root, 'run', ...(rm ? ['--rm'] : []), '--name', name, 'busybox', 'sleep', '2'], { stdio: 'ignore' });
      assert.ok(await waitFor(() => /running/.test(berth(['ps', '--filter', `name=${name}`, '--format', 'json']).stdout), 20_000));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      // The container may outlive its run (or go with it); once it has ended, the next
      // command that looks finishes it. Before, ps -a said "Up" for ever, --rm was not
      // honoured and the name stayed taken until rm -f.
      const ps = () => berth(['ps', '-a', '--filter', `name=${name}`]).stdout;
      if (rm) {
        assert.ok(await waitFor(() => !ps().includes(name), 15_000), ps());
      } else {
        assert.ok(await waitFor(() => /Exited \(255\).*fg-keep/.test(ps()), 15_000), ps());
        assert.equal(berth(['rm', name]).status, 0);
      }
      const again = berth(['run', '--rm', '--name', name, 'busybox', 'echo', 'again']);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.stdout, 'again\n');
    }
    assert.equal(berth(['ps', '-aq']).stdout, '');
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(root));
  });

  it('a run -d killed inside the runtime\'s create: ps -a shows it exited and container prune removes it', () => {
    // The state such a run leaves (a narrow window: made by hand from a created container):
    // no monitor, a dead owner, a runtime record without the init's pid ("creating"), and
    // no init. Before, it stayed "Created" for ever: start refused it, prune skipped it.
    const id = berth(['create', '--name', 'half', 'busybox', 'true']).stdout.trim();
    const recFile = path.join(root, 'containers', id, 'container.json');
    const rtFile = path.join(root, 'runtime', id, 'state.json');
    const rec = JSON.parse(fs.readFileSync(recFile, 'utf8'));
    const rt = JSON.parse(fs.readFileSync(rtFile, 'utf8'));
    process.kill(rec.monitor.pid, 'SIGKILL');
    process.kill(rt.pid, 'SIGKILL');
    delete rec.monitor;
    rec.owner = { pid: spawnSync('true').pid, startTime: '1' };
    delete rt.pid;
    delete rt.pidStartTime;
    fs.writeFileSync(recFile, JSON.stringify(rec));
    fs.writeFileSync(rtFile, JSON.stringify(rt));
    assert.match(berth(['ps', '-a']).stdout, /Exited \(255\).*half/);
    const prune = berth(['container', 'prune', '-f']);
    assert.equal(prune.status, 0, prune.stderr);
    assert.equal(berth(['ps', '-aq']).stdout, '');
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(id));
    assert.equal(berth(['run', '--rm', '--name', 'half', 'busybox', 'true']).status, 0);
  });
});
