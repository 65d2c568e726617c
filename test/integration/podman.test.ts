// podman driving berth-runtime as its OCI runtime (`podman --runtime bin/berth-runtime`),
// checked the way a user would: output, exit codes, hostname, PID 1, a tty, exec into a
// running container, stop and rm. podman runs on a private store (--root, --runroot,
// --tmpdir under a temporary directory) with a busybox image made by `podman import`.
//
// Flags every run needs on this machine (../shared/HOST-NOTES.md and berth's limits):
//   --network none                 networking is not wired up yet
//   --security-opt seccomp=unconfined   keeps these runs apart from berth's seccomp filters;
//                                  one test below runs with podman's default profile
//   --ulimit nofile=20000:20000 --ulimit nproc=32768:32768   podman's default nofile
//                                  (1048576) is above this host's hard limit
//   --cgroup-parent /berth-test-podman-PID   so leftover cgroups can be found and removed
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, RUNTIME, TOP } from '../helpers';

const skip = requires('root', 'podman');
const ROOTFS = path.join(TOP, 'build', 'busybox-bundle', 'rootfs');
const IMAGE = 'localhost/berth-busybox:test';
/** Where berth-runtime keeps state when podman calls it (podman passes no --root). */
const BERTH_ROOT = '/run/berth-runtime';
/** Made by rootful podman whatever its flags (containers/common's netavark run dir). */
const NETAVARK_RUN = '/run/containers/networks';

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('podman --runtime berth-runtime', { skip }, () => {
  let dir: string;
  let global: string[];
  let runFlags: string[];
  let cgParent: string;
  let berthBefore: string[];
  let hadNetavarkRun: boolean;

  /** Runs podman on the private store. Output goes through files: `run -d` leaves conmon
   * behind, and a pipe it inherited would keep spawnSync waiting. */
  const podman = (args: string[], opts: { input?: string; timeout?: number } = {}): Result => {
    const out = path.join(dir, `.out-${process.hrtime.bigint()}`);
    const fo = fs.openSync(out, 'w');
    const fe = fs.openSync(out + '.err', 'w');
    try {
      const r = spawnSync('podman', [...global, ...args], {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', fo, fe], input: opts.input,
        timeout: opts.timeout ?? 60_000,
      });
      return { status: r.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(out + '.err', 'utf8') };
    } finally {
      fs.closeSync(fo);
      fs.closeSync(fe);
      fs.rmSync(out, { force: true });
      fs.rmSync(out + '.err', { force: true });
    }
  };
  const run = (args: string[], opts: { input?: string } = {}) => podman(['run', '--rm', ...runFlags, ...args], opts);
  const berthState = () => (fs.existsSync(BERTH_ROOT) ? fs.readdirSync(BERTH_ROOT).sort() : []);
  /** Cgroup directories under our parent, in every hierarchy, except podman's own conmon. */
  const leftoverCgroups = () => fs.readdirSync('/sys/fs/cgroup').flatMap((h) => {
    const p = path.join('/sys/fs/cgroup', h, cgParent);
    return fs.existsSync(p) ? fs.readdirSync(p, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name !== 'conmon').map((e) => path.join(p, e.name)) : [];
  });
  const leftoverMounts = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));

  before(() => {
    assert.ok(fs.existsSync(ROOTFS), `${ROOTFS} is missing: run ./setup.sh`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-test-podman-'));
    cgParent = `/berth-test-podman-${process.pid}`;
    global = ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'runroot'),
      '--tmpdir', path.join(dir, 'tmp'), '--cgroup-manager=cgroupfs', '--events-backend=file', '--runtime', RUNTIME];
    runFlags = ['--network', 'none', '--security-opt', 'seccomp=unconfined',
      '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', '--cgroup-parent', cgParent];
    berthBefore = berthState();
    hadNetavarkRun = fs.existsSync(path.dirname(NETAVARK_RUN));
    const tar = path.join(dir, 'busybox.tar');
    const t = spawnSync('tar', ['-C', ROOTFS, '-cf', tar, '.']);
    assert.equal(t.status, 0, `tar: ${t.stderr}`);
    const r = podman(['import', tar, IMAGE]);
    assert.equal(r.status, 0, r.stderr);
  });

  after(() => {
    // Everything podman made: containers (and their berth state and cgroups), the image,
    // overlay mounts under the store. `system reset` is not used: it would also remove
    // networks from the host's (shared) network config directory.
    podman(['rm', '--all', '--force', '--time', '0']);
    podman(['rmi', '--all', '--force']);
    const state = berthState().filter((id) => !berthBefore.includes(id));
    const cgroups = leftoverCgroups();
    const mounts = leftoverMounts();
    for (const l of mounts.reverse()) spawnSync('umount', ['-l', l.split(' ')[4]]);
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      for (const d of [path.join('/sys/fs/cgroup', h, cgParent, 'conmon'), path.join('/sys/fs/cgroup', h, cgParent)]) {
        try {
          fs.rmdirSync(d);
        } catch {
          // absent, not a cgroup mount, or (asserted below) not empty
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    if (!hadNetavarkRun) {
      for (const d of [NETAVARK_RUN, path.dirname(NETAVARK_RUN)]) {
        try {
          fs.rmdirSync(d); // only if still empty: never anything podman put there
        } catch {
          // absent, or in use
        }
      }
    }
    assert.deepEqual(state, [], 'berth state left behind');
    assert.deepEqual(cgroups, [], 'container cgroups left behind');
    assert.deepEqual(mounts, [], 'mounts left behind under the podman store');
  });

  it('runs a command and prints its output', () => {
    const r = run([IMAGE, 'echo', 'hello']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello\n');
  });

  it('exits with the command\'s exit status', () => {
    const r = run([IMAGE, 'sh', '-c', 'exit 3']);
    assert.equal(r.status, 3, r.stderr);
  });

  it('reports a missing command as 127', () => {
    const r = run([IMAGE, 'no-such-command']);
    assert.equal(r.status, 127, r.stderr);
  });

  it('runs the command as PID 1', () => {
    // A pipeline, so that busybox sh does not exec its last command in its own place.
    const r = run([IMAGE, 'sh', '-c', 'echo $$; cat /proc/1/cmdline | tr "\\0" " "']);
    assert.equal(r.status, 0, r.stderr);
    const [pid, cmdline] = r.stdout.split('\n');
    assert.equal(pid, '1');
    assert.match(cmdline, /^sh -c echo \$\$/);
  });

  it('has the container\'s hostname, not the host\'s', () => {
    const host = os.hostname();
    const named = run(['--hostname', 'berth-podman', IMAGE, 'hostname']);
    assert.equal(named.status, 0, named.stderr);
    assert.equal(named.stdout, 'berth-podman\n');
    // podman's default: the short container id.
    const dflt = run([IMAGE, 'hostname']);
    assert.equal(dflt.status, 0, dflt.stderr);
    assert.match(dflt.stdout, /^[0-9a-f]{12}\n$/);
    assert.notEqual(dflt.stdout.trim(), host);
    assert.equal(os.hostname(), host);
  });

  it('passes stdin with -i', () => {
    const r = run(['-i', IMAGE, 'sh', '-c', 'read line; echo "got $line"'], { input: 'through stdin\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'got through stdin\n');
  });

  it('gives the process a terminal with -t (the console socket)', () => {
    const r = run(['-t', IMAGE, 'sh', '-c', 'tty; exit 4']);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(r.stdout, '/dev/pts/0\r\n');
  });

  it('applies podman\'s default seccomp profile, or refuses it: never runs without it', () => {
    const flags = runFlags.filter((f, i) => f !== '--security-opt' && runFlags[i - 1] !== '--security-opt');
    const r = podman(['run', '--rm', ...flags, IMAGE, 'grep', '^Seccomp:', '/proc/self/status']);
    if (r.status === 0) assert.match(r.stdout, /^Seccomp:\s+2$/m, 'the process runs without a filter');
    else assert.match(r.stderr, /config\.json field linux\.seccomp/);
  });

  describe('a detached container', () => {
    const name = 'berth-podman-detached';
    let id: string;

    before(() => {
      // sh as PID 1 exits 42 on SIGTERM: `podman stop` must deliver it.
      const r = podman(['run', '-d', '--name', name, ...runFlags, IMAGE,
        'sh', '-c', 'trap "exit 42" TERM; sleep 60 & wait']);
      assert.equal(r.status, 0, r.stderr);
      id = r.stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
    });

    it('is running', () => {
      const r = podman(['inspect', '--format', '{{.State.Status}} {{.State.Pid}}', name]);
      assert.equal(r.status, 0, r.stderr);
      const [status, pid] = r.stdout.trim().split(' ');
      assert.equal(status, 'running');
      assert.ok(fs.existsSync(`/proc/${pid}`), `pid ${pid} is not alive`);
      assert.ok(fs.existsSync(path.join(BERTH_ROOT, id)), 'berth has no state for it');
    });

    it('runs podman exec in it, with its output and exit status', () => {
      const r = podman(['exec', name, 'sh', '-c', 'echo from exec; hostname; exit 5']);
      assert.equal(r.status, 5, r.stderr);
      assert.equal(r.stdout, `from exec\n${id.slice(0, 12)}\n`);
    });

    it('runs exec in the container\'s pid namespace', () => {
      const r = podman(['exec', name, 'ps', '-o', 'pid,args']);
      assert.equal(r.status, 0, r.stderr);
      const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim());
      assert.match(rows[0], /^1 sh -c trap/);
      assert.ok(rows.some((row) => /^\d+ sleep 60$/.test(row)), r.stdout);
      assert.ok(rows.some((row) => /^\d+ ps -o pid,args$/.test(row)), r.stdout);
    });

    it('runs exec -t with a terminal, and exec -i with stdin', () => {
      const t = podman(['exec', '-t', name, 'tty']);
      assert.equal(t.status, 0, t.stderr);
      assert.match(t.stdout, /^\/dev\/pts\/\d+\r\n$/);
      const i = podman(['exec', '-i', name, 'cat'], { input: 'piped in\n' });
      assert.equal(i.status, 0, i.stderr);
      assert.equal(i.stdout, 'piped in\n');
    });

    it('stops with SIGTERM, and rm removes it', () => {
      const s = podman(['stop', '--time', '10', name]);
      assert.equal(s.status, 0, s.stderr);
      const st = podman(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]);
      assert.equal(st.stdout.trim(), 'exited 42');
      const r = podman(['rm', name]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(podman(['ps', '--all', '--quiet', '--no-trunc']).stdout.trim(), '');
      assert.ok(!fs.existsSync(path.join(BERTH_ROOT, id)), 'berth state is left');
    });
  });
});
