// `berth run` flags for containers as users know them: --init (zombies reaped, signals
// forwarded), --restart (counted, bounded, stopped by `berth stop`), --ulimit,
// --stop-signal/--stop-timeout, and --label with `ps --filter`. Embedded busybox image,
// private --root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRoot, removeEngineRoot, requires, sleep, TOP, waitFor } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const skip = requires('root');

describe('berth run options', { skip, concurrency: 3 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[], timeout = 60_000) => {
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', timeout });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = (args: string[]): string => {
    const r = berth(args);
    assert.equal(r.status, 0, `berth ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const inspect = (ref: string): any => JSON.parse(ok(['inspect', ref]))[0];
  /** Each run with CASE's flags exits 125 with its message, and makes nothing (looked up by name: tests here run at once). */
  const refusedRuns = (name: string, cases: [string[], RegExp][]): void => {
    for (const [args, re] of cases) {
      const r = berth(['run', '--name', name, ...args, 'busybox', 'true']);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(berth(['inspect', name]).status, 125);
    }
  };

  before(() => {
    ({ dir, root } = engineRoot('run-options'));
  });
  after(() => removeEngineRoot(dir, root));

  it('--init: PID 1 is the init, and it reaps orphaned zombies', () => {
    // The subshell's sleep is orphaned to PID 1; `exec sleep` makes PID 1 a process that
    // never waits, unless --init put one that does in front of it.
    const script = '(sleep 0.1 &) ; (sleep 0.8; ps -o pid,stat,comm) & exec sleep 1.2';
    const without = ok(['run', '--rm', 'busybox', 'sh', '-c', script]);
    assert.match(without, /^ +1 S +sleep$/m);
    assert.match(without, /^ +\d+ Z +sleep$/m, 'control: without --init the orphan stays a zombie');
    const withInit = ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', script]);
    assert.match(withInit, /^ +1 S +berth:\[tini\]$/m);
    assert.doesNotMatch(withInit, / Z /);
    assert.equal(ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline']), '/dev/init -- sh -c tr "\\0" " " < /proc/1/cmdline ');
    // The child's status is the container's; a missing command is 127.
    assert.equal(berth(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'exit 7']).status, 7);
    const missing = berth(['run', '--rm', '--init', 'busybox', 'no-such-command']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /exec no-such-command: No such file or directory/);
  });

  it('--init forwards berth stop\'s SIGTERM to the child (143), which PID 1 alone would ignore', async () => {
    ok(['run', '-d', '--init', '--name', 'init-stop', 'busybox', 'sleep', '300']);
    const c = inspect('init-stop');
    assert.equal(c.HostConfig.Init, true);
    assert.equal(c.Path, 'sleep');
    const t0 = Date.now();
    ok(['stop', '-t', '20', 'init-stop']);
    assert.ok(Date.now() - t0 < 10_000, 'the TERM did not reach sleep: stop waited for the SIGKILL');
    assert.equal(inspect('init-stop').State.ExitCode, 143);
    ok(['rm', 'init-stop']);
  });

  it('--restart on-failure:2 restarts exactly twice; RestartCount counts', async () => {
    ok(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo attempt; exit 3']);
    assert.ok(await waitFor(() => inspect('flaky').RestartCount === 2 && inspect('flaky').State.Status === 'exited', 20_000));
    await sleep(1500); // a third start would have come by now (back-off: 100, 200, 400 ms)
    const c = inspect('flaky');
    assert.equal(c.RestartCount, 2);
    assert.equal(c.State.ExitCode, 3);
    assert.deepEqual(c.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
    assert.equal(ok(['logs', 'flaky']), 'attempt\nattempt\nattempt\n');
    ok(['rm', 'flaky']);
    // Success does not restart on-failure.
    ok(['run', '-d', '--name', 'fine', '--restart', 'on-failure', 'busybox', 'true']);
    assert.equal(ok(['wait', 'fine']), '0\n');
    await sleep(1000);
    assert.equal(inspect('fine').RestartCount, 0);
    ok(['rm', 'fine']);
  });

  it('--restart always restarts a clean exit until berth stop; then it stays down', async () => {
    ok(['run', '-d', '--name', 'always', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2']);
    assert.ok(await waitFor(() => inspect('always').RestartCount >= 2, 20_000));
    ok(['stop', '-t', '1', 'always']);
    const count = inspect('always').RestartCount;
    await sleep(2000);
    const c = inspect('always');
    assert.equal(c.State.Status, 'exited');
    assert.equal(c.RestartCount, count);
    // A stop that lands while the policy restarts it (between an exit and the new start)
    // stops the new process too: before, it read the old record, said "exited", and left
    // the restarted container running.
    // The restart comes 0.2 s after a start plus its back-off (400 ms and more by now):
    // stops at 0.45 to 0.9 s land before, in and after it. (The window is ~0.1 s: this
    // did not catch the old bug in two tries; the fix is in stopContainer.)
    for (let i = 0; i < 4; i++) {
      ok(['start', 'always']);
      await sleep(450 + 150 * i);
      ok(['stop', '-t', '1', 'always']);
      await sleep(700);
      assert.equal(inspect('always').State.Status, 'exited', `round ${i}: running after stop`);
    }
    ok(['rm', 'always']);
    // --restart needs a monitor: a foreground run refuses it, and --rm conflicts.
    assert.equal(berth(['run', '--restart', 'always', 'busybox', 'true']).status, 125);
    assert.match(berth(['run', '-d', '--rm', '--restart', 'always', 'busybox', 'true']).stderr, /conflicting options/);
    assert.equal(berth(['run', '-d', '--restart', 'sometimes', 'busybox', 'true']).status, 125);
  });

  it('-m, --memory-swap, --memory-reservation, --cpus, -c, --cpuset-cpus and --pids-limit land in the container\'s cgroup', () => {
    const id = ok(['run', '-d', '-m', '64m', '--memory-swap', '128m', '--memory-reservation', '32m', '--cpus', '0.5', '--cpu-shares', '512',
      '--cpuset-cpus', '0', '--cpuset-mems', '0', '--pids-limit', '42', 'busybox', 'sleep', '300']).trim();
    const pid = inspect(id).State.Pid;
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    // Each controller's directory, from the container's own /proc/PID/cgroup.
    const paths = new Map(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => {
      const [, ctls, p] = l.split(':');
      return [ctls, p] as [string, string];
    }));
    const read = (ctl: string, file: string): string => {
      if (v2) return fs.readFileSync(`/sys/fs/cgroup${paths.get('')}/${file}`, 'utf8').trim();
      const [ctls, p] = [...paths].find(([c]) => c.split(',').includes(ctl))!;
      return fs.readFileSync(`/sys/fs/cgroup/${ctls}${p}/${file}`, 'utf8').trim();
    };
    const mib = 1024 * 1024;
    if (v2) {
      assert.equal(read('memory', 'memory.max'), String(64 * mib));
      if (fs.existsSync(`/sys/fs/cgroup${paths.get('')}/memory.swap.max`)) assert.equal(read('memory', 'memory.swap.max'), String(64 * mib));
      assert.equal(read('memory', 'memory.low'), String(32 * mib));
      assert.equal(read('cpu', 'cpu.max'), '50000 100000');
      assert.equal(read('cpu', 'cpu.weight'), String(Math.round(1 + ((512 - 2) * 9999) / 262142)));
    } else {
      assert.equal(read('memory', 'memory.limit_in_bytes'), String(64 * mib));
      if (fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes')) assert.equal(read('memory', 'memory.memsw.limit_in_bytes'), String(128 * mib));
      assert.equal(read('memory', 'memory.soft_limit_in_bytes'), String(32 * mib));
      assert.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
      assert.equal(read('cpu', 'cpu.shares'), '512');
    }
    assert.equal(read('cpuset', 'cpuset.cpus'), '0');
    assert.equal(read('pids', 'pids.max'), '42');
    const hc = inspect(id).HostConfig;
    assert.deepEqual([hc.Memory, hc.MemorySwap, hc.MemoryReservation, hc.NanoCpus, hc.CpuShares, hc.CpusetCpus, hc.CpusetMems, hc.PidsLimit],
      [64 * mib, 128 * mib, 32 * mib, 5e8, 512, '0', '0', 42]);
    ok(['rm', '-f', id]);
    // Docker's checks, before anything is made.
    refusedRuns('refused-limits', [
      [['--memory-swap', '1g'], /--memory-swap needs --memory/],
      [['-m', '64m', '--memory-swap', '32m'], /--memory-swap "32m" is less than --memory "64m"/],
      [['-m', '64m', '--memory-reservation', '128m'], /--memory-reservation "128m" is more than --memory "64m"/],
      [['--cpu-shares', '1'], /--cpu-shares "1" is not a number from 2 to 262144/],
      [['--cpu-shares', '0', '--memory-swap', '0', '--cpuset-cpus', 'x'], /--cpuset-cpus "x"/], // 0 is "not set", as Docker's
      [['--cpuset-cpus', '0-'], /--cpuset-cpus "0-" is not a list of CPUs/],
      [['--cpuset-cpus', '4096'], /--cpuset-cpus "4096" names CPUs this host does not have/],
    ]);
  });

  it('--pid/--ipc/--uts host, --sysctl, --shm-size, --group-add, --oom-score-adj, --domainname and --device do what they say', () => {
    const os = require('node:os') as typeof import('node:os');
    const sh = (flags: string[], script: string) => ok(['run', '--rm', ...flags, 'busybox', 'sh', '-c', script]);
    // --pid host: this test's own process is in the container's ps; by default it is not.
    assert.ok(sh(['--pid', 'host'], 'ps -o pid').split('\n').map((l) => l.trim()).includes(String(process.pid)));
    assert.ok(!sh([], 'ps -o pid').split('\n').map((l) => l.trim()).includes(String(process.pid)));
    // --uts host: the host's name everywhere; by default the container's own.
    assert.equal(sh(['--uts', 'host'], 'hostname; cat /etc/hostname; echo $HOSTNAME'), `${os.hostname()}\n`.repeat(3));
    // --ipc host: the host's IPC namespace (and its /dev/shm).
    const ipcNs = fs.readlinkSync('/proc/self/ns/ipc');
    assert.equal(sh(['--ipc', 'host'], 'readlink /proc/self/ns/ipc').trim(), ipcNs);
    assert.notEqual(sh([], 'readlink /proc/self/ns/ipc').trim(), ipcNs);
    // --sysctl: set inside, the host's value untouched.
    const hostShmmax = fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    assert.equal(sh(['--sysctl', 'kernel.shmmax=1000000', '--sysctl', 'net.ipv4.ip_unprivileged_port_start=80'],
      'cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_unprivileged_port_start'), '1000000\n80\n');
    assert.equal(fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8'), hostShmmax);
    assert.match(sh(['--shm-size', '2m'], 'df -k /dev/shm'), /^shm\s+2048\s/m);
    assert.equal(sh(['--group-add', 'tty', '--group-add', '4242', '-u', '0:0'], 'id -G'), '0 5 4242\n');
    assert.equal(sh(['--oom-score-adj', '500'], 'cat /proc/self/oom_score_adj'), '500\n');
    assert.equal(sh(['--domainname', 'example.test'], 'cat /proc/sys/kernel/domainname'), 'example.test\n');
    // --device: the node, and the devices cgroup lets it be used only as asked (r: no write).
    const st = fs.statSync('/dev/loop-control');
    assert.equal(sh(['--device', '/dev/loop-control:/dev/lc:r'], 'stat -c "%t:%T %F" /dev/lc; echo > /dev/lc 2>/dev/null && echo wrote || echo refused'),
      `${(Number(st.rdev) >> 8).toString(16)}:${(Number(st.rdev) & 0xff).toString(16)} character special file\nrefused\n`);
    assert.equal(sh([], 'test -e /dev/loop-control && echo there || echo absent'), 'absent\n');
    refusedRuns('refused-host-opts', [
      [['--sysctl', 'vm.swappiness=1'], /--sysctl vm\.swappiness is not namespaced/],
      [['--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1'], /would change the host's network settings/],
      [['--ipc', 'host', '--sysctl', 'kernel.shmmax=1'], /would change the host's .* IPC settings/],
      [['--uts', 'host', '-h', 'other'], /--hostname does not go with --uts host/],
      [['--uts', 'host', '--domainname', 'x'], /--domainname does not go with --uts host/],
      [['--pid', 'container:x'], /--pid container:x is not supported/],
      [['--ipc', 'bogus'], /--ipc "bogus" is not a mode/],
      [['--device', '/etc/passwd:/dev/pw'], /\/etc\/passwd is not a device node/],
      [['--device', '/dev/null:/tmp/null'], /the container's path \/tmp\/null is not under \/dev\//],
      [['--group-add', 'nosuchgroup'], /group "nosuchgroup" is not in the image's \/etc\/group/],
      [['--oom-score-adj', '1001'], /--oom-score-adj "1001" is not a number from -1000 to 1000/],
    ]);
  });

  it('--device never makes a node through a mount into the host (--ipc host\'s /dev/shm, a -v bind under or at /dev); with --userns it is the host\'s node at that path', () => {
    const shm = fs.readdirSync('/dev/shm');
    const host = fs.mkdtempSync(path.join(dir, 'devdir-'));
    fs.writeFileSync(path.join(host, 'null'), 'keep');
    for (const [args, re] of [
      [['--ipc', 'host', '--device', '/dev/null:/dev/shm/berth-test-node'], /is on the container's mount at \/dev\/shm/],
      [['-v', `${host}:/dev/sub/`, '--device', '/dev/null:/dev/sub/x'], /is on the container's mount at \/dev\/sub/],
      [['-v', `${host}:/dev`, '--device', '/dev/null:/dev/x'], /is on the container's mount at \/dev/],
      // The host's /dev/kvm (or whatever is there) was bound as "/dev/null".
      [['--userns=auto', '--device', '/dev/null:/dev/tty'], /"\/dev\/tty" \(c 1:3\) is not that device on the host/],
    ] as [string[], RegExp][]) {
      const r = berth(['run', '--rm', ...args, 'busybox', 'true']);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    // A bind at /dev: no default nodes made in it (nor its files unlinked), as runc's.
    assert.equal(ok(['run', '--rm', '-v', `${host}:/dev`, 'busybox', 'ls', '/dev']), 'null\n');
    assert.deepEqual(fs.readdirSync(host), ['null']);
    assert.equal(fs.readFileSync(path.join(host, 'null'), 'utf8'), 'keep');
    assert.deepEqual(fs.readdirSync('/dev/shm'), shm);
  });

  it('--cidfile gets the id (and must be new); --expose adds ports that -P publishes', () => {
    const cid = path.join(dir, 'cid');
    const id = ok(['run', '-d', '--cidfile', cid, '--network', 'none', 'busybox', 'sleep', '300']).trim();
    assert.equal(fs.readFileSync(cid, 'utf8'), id);
    const again = berth(['run', '--name', 'cid-again', '--cidfile', cid, 'busybox', 'true']);
    assert.equal(again.status, 125);
    assert.match(again.stderr, /--cidfile .*cid already exists/);
    assert.equal(berth(['inspect', 'cid-again']).status, 125);
    const nodir = berth(['run', '--name', 'cid-nodir', '--cidfile', path.join(dir, 'no', 'cid'), 'busybox', 'true']);
    assert.match(nodir.stderr, /cannot write the container id: no such file or directory/);
    assert.equal(berth(['inspect', 'cid-nodir']).status, 125, 'the container made before the write is gone again');
    ok(['rm', '-f', id]);
    // busybox exposes nothing: -P publishes exactly what --expose adds.
    const pub = ok(['create', '--expose', '7000', '--expose', '7100-7101/udp', '-P', 'busybox', 'true']).trim();
    const ports = JSON.parse(ok(['inspect', pub]))[0].HostConfig.PortBindings;
    assert.deepEqual(Object.keys(ports).sort(), ['7000/tcp', '7100/udp', '7101/udp']);
    ok(['rm', pub]);
    const bad = berth(['run', '--rm', '--expose', '70000', 'busybox', 'true']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /--expose "70000" is not a port/);
  });

  it('--ulimit sets the limits the process sees', () => {
    assert.equal(ok(['run', '--rm', '--ulimit', 'nofile=123:456', '--ulimit', 'nproc=77', 'busybox', 'sh', '-c',
      'ulimit -n; ulimit -Hn; ulimit -u']), '123\n456\n77\n');
    const bad = berth(['run', '--rm', '--ulimit', 'nofile=9:8', 'busybox', 'true']);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /soft limit is above the hard limit/);
    assert.equal(berth(['run', '--rm', '--ulimit', 'bogus=1', 'busybox', 'true']).status, 125);
  });

  it('--stop-signal and --stop-timeout are what berth stop uses', async () => {
    ok(['run', '-d', '--name', 'usr1', '--stop-signal', 'USR1', '--stop-timeout', '30', 'busybox', 'sh', '-c',
      'trap "exit 10" USR1; while true; do sleep 0.1; done']);
    const c = inspect('usr1');
    assert.equal(c.Config.StopSignal, 'USR1');
    assert.equal(c.Config.StopTimeout, 30);
    ok(['stop', 'usr1']);
    assert.equal(inspect('usr1').State.ExitCode, 10);
    // sleep as PID 1 ignores TERM: the SIGKILL comes after --stop-timeout, not 10 s.
    ok(['run', '-d', '--name', 'quick', '--stop-timeout', '1', 'busybox', 'sleep', '300']);
    const t0 = Date.now();
    ok(['stop', 'quick']);
    const ms = Date.now() - t0;
    assert.ok(ms >= 1000 && ms < 8000, `stop took ${ms} ms`);
    assert.equal(inspect('quick').State.ExitCode, 137);
    ok(['rm', 'usr1', 'quick']);
  });

  it('--label shows in inspect, and ps --filter selects by label, status and name', () => {
    const web = ok(['run', '-d', '--name', 'lbl-web', '-l', 'app=web', '--label', 'tier=front', 'busybox', 'sleep', '300']).trim();
    const db = ok(['run', '-d', '--name', 'lbl-db', '--label', 'app=db', 'busybox', 'sleep', '300']).trim();
    const done = ok(['run', '-d', '--name', 'lbl-done', '--label', 'app=web', 'busybox', 'true']).trim();
    ok(['wait', done]);
    assert.deepEqual(inspect('lbl-web').Config.Labels, { app: 'web', tier: 'front' });
    const ids = (args: string[]) => ok(['ps', '-q', '--no-trunc', ...args]).split('\n').filter(Boolean).sort();
    assert.deepEqual(ids(['--filter', 'label=app=web']), [web]);
    assert.deepEqual(ids(['-a', '--filter', 'label=app=web']), [web, done].sort());
    assert.deepEqual(ids(['--filter', 'label=app']), [web, db].sort());
    assert.deepEqual(ids(['--filter', 'label=app=web', '--filter', 'label=tier=front']), [web]);
    assert.deepEqual(ids(['--filter', 'label=app=none']), []);
    assert.deepEqual(ids(['--filter', 'status=exited', '--filter', 'name=lbl-']), [done]);
    assert.deepEqual(ids(['--filter', 'name=lbl-d']), [db]);
    assert.equal(berth(['ps', '--filter', 'colour=blue']).status, 125);
    ok(['rm', '-f', web, db, done]);
  });
});
