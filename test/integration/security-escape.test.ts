// Security group: the escape classes that hit other runtimes, tried against `berth run` and
// `berth exec` on real containers, as root inside: CVE-2019-5736 (/proc/PID/exe), leaked
// fds and working directories (CVE-2024-21626), symlinked mount destinations, dangerous
// syscalls and /proc files, and one container reaching another. A static probe
// (test/fixtures/security/probe.c, built here) makes the syscalls.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, requires, TOP } from '../helpers';

const skip = requires('root') ?? (spawnSync('sh', ['-c', 'command -v gcc']).status !== 0 ? 'needs gcc' : undefined);

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const parseProbe = (out: string) => Object.fromEntries(out.trim().split('\n').filter((l) => l.includes('=')).map((l) => l.split('=', 2)));

describe('security: escapes', { skip, concurrency: 2 }, () => {
  let dir: string;
  let root: string;
  let probeDir: string;
  let hostTarget: string;
  const berth = (args: string[], input?: string) => berthSync(root, args, { input });
  let withProbe: string[] = [];

  /** A one-layer image REF: the busybox rootfs with EDIT applied to a copy of it. */
  const hostileImage = (ref: string, edit: (rootfs: string) => void) => {
    const rootfs = path.join(dir, `rootfs-${ref.replace(/\W/g, '-')}`);
    fs.mkdirSync(rootfs);
    assert.equal(spawnSync('tar', ['-xf', path.join(TOP, 'build', 'busybox-rootfs.tar'), '-C', rootfs]).status, 0);
    fs.writeFileSync(path.join(rootfs, 'HOSTILE-MARKER'), 'inside\n');
    edit(rootfs);
    const tar = `${rootfs}.tar`;
    assert.equal(spawnSync('tar', ['-cf', tar, '-C', rootfs, '.']).status, 0);
    const r = berth(['import', tar, ref, '-c', 'CMD ["sh"]']);
    assert.equal(r.status, 0, r.stderr);
    fs.rmSync(rootfs, { recursive: true, force: true });
  };

  /** The host target of hostile symlinks: it must stay exactly as it is. */
  const hostTargetUnchanged = () => {
    assert.deepEqual(fs.readdirSync(hostTarget).sort(), ['host-file']);
    assert.equal(fs.readFileSync(path.join(hostTarget, 'host-file'), 'utf8'), 'host\n');
    assert.deepEqual(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(hostTarget)), []);
  };

  before(() => {
    ({ dir, root } = engineRoot('secescape'));
    probeDir = path.join(dir, 'probe');
    fs.mkdirSync(probeDir);
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', path.join(probeDir, 'probe'), path.join(TOP, 'test', 'fixtures', 'security', 'probe.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    withProbe = ['-v', `${probeDir}:/probe:ro`];
    hostTarget = path.join(dir, 'host-target');
    fs.mkdirSync(hostTarget);
    fs.writeFileSync(path.join(hostTarget, 'host-file'), 'host\n');
  });
  after(() => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('root inside cannot mount, unshare, use keys, load modules, ptrace, set clocks or hostnames, or reboot', () => {
    const hostname = os.hostname();
    const r = berth(['run', '--rm', ...withProbe, 'busybox', '/probe/probe', 'all']);
    assert.equal(r.status, 0, r.stderr);
    const p = parseProbe(r.stdout);
    for (const what of ['mount', 'umount2', 'unshare_user', 'unshare_mount', 'setns', 'clone_newuser', 'keyctl', 'add_key',
      'init_module', 'finit_module', 'delete_module', 'ptrace_pid1', 'process_vm_readv_pid1', 'sethostname', 'setdomainname',
      'settimeofday', 'clock_settime', 'reboot', 'swapon', 'kexec_load', 'iopl', 'ioperm', 'open_by_handle_at', 'bpf',
      'perf_event_open', 'syslog', 'acct', 'personality', 'socket_vsock', 'userfaultfd', 'io_uring_setup', 'pivot_root']) {
      assert.equal(p[what], 'EPERM', `${what}: ${r.stdout}`);
    }
    assert.equal(p.clone3, 'ENOSYS'); // so that libc falls back to clone, whose flags are checked
    assert.equal(os.hostname(), hostname);
  });

  it('a device node can be made (CAP_MKNOD, as Docker) but not opened: the devices cgroup denies it', () => {
    const r = berth(['run', '--rm', ...withProbe, 'busybox', '/probe/probe', 'all']);
    const p = parseProbe(r.stdout);
    assert.deepEqual([p.mknod_disk, p.open_disk, p.mknod_mem, p.open_mem], ['OK', 'EPERM', 'OK', 'EPERM']);
    // The default devices still work.
    const d = berth(['run', '--rm', 'busybox', 'sh', '-c', 'head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok']);
    assert.deepEqual(d.stdout.trim().split('\n').map((l) => l.trim()), ['4', 'null-ok']);
  });

  it('/proc/sys and /proc/sysrq-trigger are read-only, /proc/kcore and /proc/keys masked, /sys read-only', () => {
    const r = berth(['run', '--rm', ...withProbe, 'busybox', '/probe/probe', 'all']);
    const p = parseProbe(r.stdout);
    assert.equal(p.write_core_pattern, 'EROFS');
    assert.equal(p.write_sys_kernel_hostname, 'EROFS');
    // Files this kernel does not have are absent inside too.
    assert.equal(p.write_sysrq, fs.existsSync('/proc/sysrq-trigger') ? 'EROFS' : 'ENOENT');
    assert.equal(p.read_kcore, fs.existsSync('/proc/kcore') ? 'EMPTY' : 'ENOENT');
    const m = berth(['run', '--rm', 'busybox', 'sh', '-c',
      'wc -c < /proc/keys; ls /sys/firmware | wc -l; cat /proc/timer_list | wc -c; touch /sys/kernel/x 2>&1; grep -c "^" /proc/sched_debug 2>/dev/null || echo 0']);
    assert.equal(m.status, 0, m.stderr);
    const lines = m.stdout.trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], '0'); // /proc/keys: /dev/null over it
    assert.equal(lines[1], '0'); // /sys/firmware: an empty read-only tmpfs
    assert.equal(lines[2], '0');
    assert.match(lines[3], /Read-only file system/);
    assert.equal(lines[4], '0');
  });

  it('the berth-init that enters a container (run or exec) cannot be rewritten through /proc/PID/exe (CVE-2019-5736)', async (t) => {
    const initBin = path.join(TOP, 'native', 'build', 'berth-init');
    const before = sha256(initBin);
    // berth create leaves the container's init waiting before execve: its exe is the sealed copy.
    const c = berth(['create', '--name', 'exe-create', 'busybox', 'sleep', '30']);
    assert.equal(c.status, 0, c.stderr);
    const pid = JSON.parse(berth(['inspect', 'exe-create']).stdout)[0].State.Pid as number;
    if (pid) {
      assert.match(fs.readlinkSync(`/proc/${pid}/exe`), /^\/memfd:berth-init/);
      assert.throws(() => fs.writeFileSync(`/proc/${pid}/exe`, 'x', { flag: 'a' }), /EPERM|ETXTBSY/);
    }
    assert.equal(berth(['rm', '-f', 'exe-create']).status, 0);

    // The attack itself: a program inside waits for a berth-init (berth exec of a file whose
    // interpreter is "#!/proc/self/exe" re-runs it inside), opens its exe and writes to it.
    assert.equal(berth(['run', '-d', '--name', 'exe-exec', ...withProbe, 'busybox', 'sleep', '60']).status, 0);
    assert.equal(berth(['exec', 'exe-exec', 'sh', '-c', 'printf "#!/proc/self/exe\\n" > /evil; chmod +x /evil']).status, 0);
    assert.equal(berth(['exec', '-d', 'exe-exec', 'sh', '-c', '/probe/probe grab-exe 20 > /tmp/grab 2>&1']).status, 0);
    let grab = '';
    for (let i = 0; i < 20 && !/open_write_exited|caught=nothing/.test(grab); i++) {
      berth(['exec', 'exe-exec', '/evil']);
      await new Promise((r) => setTimeout(r, 200));
      grab = berth(['exec', 'exe-exec', 'cat', '/tmp/grab']).stdout;
    }
    const g = parseProbe(grab);
    // Catching the exec'd init between its setns and its execve is a race that a loaded
    // machine can lose (seen once in CI): the create case above is the deterministic check;
    // this one asserts whenever the probe did catch it.
    if (g.caught === 'nothing' || g.caught === undefined) {
      t.diagnostic(`the probe did not catch an exec'd berth-init in 20 tries: ${grab.trim()}`);
    } else {
      assert.match(g.caught, /^\/memfd:berth-init/, grab);
      assert.equal(g.open_write_running, 'ETXTBSY');
      assert.notEqual(g.write_exited, 'OK', grab); // sealed: EPERM even once the copy stopped running
    }
    assert.equal(sha256(initBin), before);
    assert.equal(berth(['rm', '-f', 'exe-exec']).status, 0);
  });

  it('no host fd reaches the container: run, run -d and exec see only stdio (CVE-2024-21626)', () => {
    const check = (out: string, what: string) => {
      const names = out.trim().split('\n').map((l) => l.split(' ')[0]);
      assert.ok(names.includes('0') && names.includes('2'), `${what}: ${out}`);
      assert.deepEqual(names.filter((n) => Number(n) > 2), [], `${what}: ${out}`);
    };
    // berth itself run with extra fds open (3: a host directory, 4: a host file).
    const r = spawnSync(path.join(TOP, 'bin', 'berth'), ['--root', root, 'run', '--rm', ...withProbe, 'busybox', '/probe/probe', 'fds'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', fs.openSync(hostTarget, 'r'), fs.openSync(path.join(hostTarget, 'host-file'), 'r')],
    });
    assert.equal(r.status, 0, r.stderr);
    check(r.stdout, 'run');
    assert.equal(berth(['run', '-d', '--name', 'fds', ...withProbe, 'busybox', 'sh', '-c', '/probe/probe fds; exec sleep 60']).status, 0);
    for (let i = 0; i < 50 && !berth(['logs', 'fds']).stdout.includes('2 '); i++) spawnSync('sleep', ['0.1']);
    check(berth(['logs', 'fds']).stdout, 'run -d');
    const e = berth(['exec', 'fds', '/probe/probe', 'fds']);
    assert.equal(e.status, 0, e.stderr);
    check(e.stdout, 'exec');
    check(berth(['exec', 'fds', '/probe/probe', 'fds', '1']).stdout, 'PID 1 of run -d');
    assert.equal(berth(['rm', '-f', 'fds']).status, 0);
  });

  it('-w through a hostile image\'s symlinks (to /proc/self/fd/N, ../.., a host path) stays inside', () => {
    hostileImage('hostile-cwd', (rootfs) => {
      for (let n = 3; n <= 9; n++) fs.symlinkSync(`/proc/self/fd/${n}`, path.join(rootfs, `fd${n}`));
      fs.symlinkSync('../../../../../../..', path.join(rootfs, 'up'));
      fs.symlinkSync(hostTarget, path.join(rootfs, 'abs'));
    });
    const script = 'cd ../../../../../../.. && test -e HOSTILE-MARKER && echo inside || echo OUTSIDE; ls /abs 2>/dev/null; true';
    for (const w of ['/fd3', '/fd4', '/fd5', '/fd7', '/fd9', '/up', '/abs', '/proc/self/fd/7', '/proc/1/cwd', '/abs/../..']) {
      const r = berth(['run', '--rm', '-w', w, 'hostile-cwd', 'sh', '-c', script]);
      // Refused, or a working directory inside the container's root.
      if (r.status !== 0) assert.ok(r.status === 125 || r.status === 126, `${w}: ${r.status} ${r.stderr}`);
      else assert.equal(r.stdout.split('\n')[0], 'inside', `-w ${w}: ${r.stdout}`);
      assert.doesNotMatch(r.stdout, /host-file/, w);
    }
    hostTargetUnchanged();
  });

  it('an image whose /proc, volume target or /etc/hosts is a symlink out cannot make berth mount or write outside', () => {
    hostileImage('hostile-hosts', (rootfs) => {
      fs.rmSync(path.join(rootfs, 'etc', 'hosts'), { force: true });
      fs.symlinkSync(path.join(hostTarget, 'host-file'), path.join(rootfs, 'etc', 'hosts'));
    });
    hostileImage('hostile-volume', (rootfs) => {
      fs.symlinkSync(path.join(hostTarget, 'new-dir'), path.join(rootfs, 'data'));
      fs.symlinkSync(`../../../../../..${hostTarget}/up-dir`, path.join(rootfs, 'data2'));
    });
    hostileImage('hostile-proc', (rootfs) => {
      fs.rmSync(path.join(rootfs, 'proc'), { recursive: true, force: true });
      fs.symlinkSync(hostTarget, path.join(rootfs, 'proc'));
    });
    hostileImage('hostile-proc-up', (rootfs) => {
      fs.rmSync(path.join(rootfs, 'proc'), { recursive: true, force: true });
      fs.symlinkSync(`../../../../..${hostTarget}`, path.join(rootfs, 'proc'));
    });
    const src = path.join(dir, 'volume-src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'in-volume'), 'v\n');
    // Refused (125), or the mount lands inside the container's root.
    const h = berth(['run', '--rm', 'hostile-hosts', 'sh', '-c', 'echo written > /etc/hosts; cat /etc/hosts']);
    assert.ok(h.status === 125 || (h.status === 0 && h.stdout === 'written\n'), `hosts: ${h.status} ${h.stdout} ${h.stderr}`);
    const v = berth(['run', '--rm', '-v', `${src}:/data`, '-v', `${src}:/data2`, 'hostile-volume', 'sh', '-c',
      'echo w > /data/x; cat /data/in-volume /data2/in-volume']);
    assert.ok(v.status === 125 || (v.status === 0 && v.stdout === 'v\nv\n'), `volume: ${v.status} ${v.stdout} ${v.stderr}`);
    for (const img of ['hostile-proc', 'hostile-proc-up']) {
      const p = berth(['run', '--rm', img, 'sh', '-c', 'echo x > /proc/escaped; ls /proc']);
      assert.ok(p.status === 0 || p.status === 125, `${img}: ${p.status} ${p.stderr}`);
      assert.doesNotMatch(p.stdout, /host-file/, img);
    }
    hostTargetUnchanged();
  });

  it('a container cannot see, signal or read another container', () => {
    assert.equal(berth(['run', '-d', '--name', 'victim', 'busybox', 'sh', '-c', 'echo secret > /tmp/victim-secret; exec sleep 61']).status, 0);
    const victimPid = JSON.parse(berth(['inspect', 'victim']).stdout)[0].State.Pid as number;
    assert.ok(victimPid > 1);
    const r = berth(['run', '--rm', 'busybox', 'sh', '-c',
      `ps -o args | grep -c '^sleep'; kill -9 ${victimPid} 2>&1; kill -9 1 2>&1 || true; ` +
      `ls /proc/${victimPid}/root 2>&1; find / -xdev -name victim-secret 2>/dev/null | wc -l`]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], '0');
    assert.match(r.stdout, /No such process/);
    assert.match(r.stdout, new RegExp(`/proc/${victimPid}/root: No such file or directory`));
    assert.equal(lines.at(-1), '0');
    assert.equal(JSON.parse(berth(['inspect', 'victim']).stdout)[0].State.Status, 'running');
    assert.equal(berth(['rm', '-f', 'victim']).status, 0);
  });
});
