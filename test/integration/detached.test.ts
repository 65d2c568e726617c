// Detached containers (`berth run -d`, create/start, logs, stop, kill, wait, inspect, ps,
// rm) from the embedded busybox image: the container outlives the berth command under its
// monitor (native/monitor), and nothing is left once it is removed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, berthSync, engineRoot, requires, sleep, TOP, waitFor, type Result } from '../helpers';

const skip = requires('root');


/** Processes (not zombies) whose command line mentions TEXT. */
function processesWith(text: string): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      if (/\) [ZX] /.test(stat)) continue;
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) {
        out.push({ pid: Number(p), comm: fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() });
      }
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function ppidOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('berth run -d and the detached-container commands', { skip, concurrency: 3 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[], timeout = 60_000): Result => berthSync(root, args, { timeout });
  /** `berth run -d ARGS`; returns the container's full id. */
  const runD = (args: string[]): string => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
    return r.stdout.trim();
  };
  const inspect = (ref: string): any => {
    const r = berth(['inspect', ref]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout)[0];
  };
  /** What a removed container could have left: mounts, cgroups, state, processes. */
  const leftovers = (id: string): string[] => {
    const out: string[] = [];
    for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (l.includes(id)) out.push(`mount: ${l}`);
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      for (const d of [path.join('/sys/fs/cgroup', h, 'berth', id), path.join('/sys/fs/cgroup', 'berth', id)]) {
        if (fs.existsSync(d)) out.push(`cgroup: ${d}`);
      }
    }
    for (const d of [path.join(root, 'runtime', id), path.join(root, 'containers', id)]) if (fs.existsSync(d)) out.push(`state: ${d}`);
    for (const p of processesWith(id)) out.push(`process: ${p.pid} ${p.comm}`);
    return out;
  };

  /** Waits (a few seconds at most) until ID left nothing; returns what is left. */
  const settle = async (id: string, allowed: string[] = []): Promise<string[]> => {
    const rest = () => leftovers(id).filter((l) => !allowed.includes(l));
    // The monitor's exit command (berth container cleanup) may still be finishing.
    await waitFor(() => rest().length === 0, 10_000);
    return rest();
  };

  before(() => {
    ({ dir, root } = engineRoot('detached'));
  });
  after(async () => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    await waitFor(() => processesWith(root).length === 0, 10_000);
    const left = ids.flatMap(leftovers);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    const monitors = processesWith(root);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(left, []);
    assert.deepEqual(mounts, []);
    assert.deepEqual(monitors, []);
  });

  it('outlives the berth command under its monitor; ps, inspect and the cgroup show it', async () => {
    const started = Date.now();
    const id = runD(['--name', 'sleeper', 'busybox', 'sleep', '300']);
    assert.ok(Date.now() - started < 20_000);
    const c = inspect('sleeper');
    assert.equal(c.Id, id);
    assert.equal(c.Name, '/sleeper');
    assert.equal(c.State.Status, 'running');
    assert.equal(c.State.Running, true);
    assert.equal(c.Path, 'sleep');
    assert.deepEqual(c.Args, ['300']);
    assert.deepEqual(c.Config.Cmd, ['sleep', '300']);
    assert.equal(c.Config.Hostname, id.slice(0, 12));
    assert.ok(c.Config.Env.some((e: string) => e.startsWith('PATH=')));
    assert.equal(c.HostConfig.AutoRemove, false);
    // State.Pid is a host pid: the container's init, in the container's cgroup, a child of
    // the monitor (berth:[monitor]) that the now-exited berth command left behind.
    const pid = c.State.Pid;
    assert.ok(pid > 1);
    assert.match(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`/berth/${id}`));
    assert.equal(fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'sleep');
    const monitor = ppidOf(pid);
    assert.equal(fs.readFileSync(`/proc/${monitor}/comm`, 'utf8').trim(), 'berth:[monitor]');
    assert.equal(monitor, c.MonitorPid);
    const ps = berth(['ps']);
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} +busybox +"sleep 300" .* Up (\\d+ seconds?|Less than a second) +sleeper$`, 'm'));
    assert.match(berth(['ps', '-q', '--no-trunc']).stdout, new RegExp(`^${id}$`, 'm'));

    // rm refuses a running container; rm -f kills it and leaves nothing.
    const rm = berth(['rm', 'sleeper']);
    assert.equal(rm.status, 125);
    assert.match(rm.stderr, /container "sleeper" is running/);
    assert.equal(berth(['rm', '-f', 'sleeper']).status, 0);
    assert.deepEqual(await settle(id), []);
    assert.throws(() => process.kill(pid, 0));
    assert.doesNotMatch(berth(['ps', '-a']).stdout, /sleeper/);
  });

  it('logs keep stdout and stderr apart; --tail, -t and --since', async () => {
    // The monitor reads the two pipes as data comes; the sleeps fix the order of the records.
    const id = runD(['busybox', 'sh', '-c',
      'for i in 1 2 3 4; do echo out$i; echo err$i >&2; done; sleep 0.3; echo err5 >&2; sleep 0.3; echo out5; printf tail-no-newline']);
    assert.equal(berth(['wait', id]).stdout, '0\n');
    const all = berth(['logs', id]);
    assert.equal(all.status, 0, all.stderr);
    assert.equal(all.stdout, 'out1\nout2\nout3\nout4\nout5\ntail-no-newline');
    assert.equal(all.stderr, 'err1\nerr2\nerr3\nerr4\nerr5\n');
    // The CRI format on disk, as kubelet and podman write it.
    const raw = fs.readFileSync(inspect(id).LogPath, 'utf8').split('\n');
    assert.match(raw[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (out|err)1$/);
    assert.match(raw[raw.length - 2], / stdout P tail-no-newline$/);
    const tail = berth(['logs', '--tail', '2', id]);
    assert.equal(tail.stdout, 'out5\ntail-no-newline');
    assert.equal(tail.stderr, '');
    const ts = berth(['logs', '-t', '--tail', '3', id]);
    assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z out5\n\d{4}-\d\d-\d\dT[\d:.]+Z tail-no-newline$/);
    assert.match(ts.stderr, /^\S+Z err5\n$/);
    assert.equal(berth(['logs', '--since', String(Math.floor(Date.now() / 1000) + 60), id]).stdout, '');
    assert.equal(berth(['logs', '--since', '10m', id]).stdout, all.stdout);
    // --until: only what came before; a time before the container ran gives nothing.
    assert.equal(berth(['logs', '--until', String(Math.floor(Date.now() / 1000) + 60), id]).stdout, all.stdout);
    assert.equal(berth(['logs', '--until', '10m', id]).stdout, '');
    assert.match(berth(['logs', '--until', 'yesterday-ish', id]).stderr, /--until "yesterday-ish" is not a time/);
    assert.equal(berth(['rm', id]).status, 0);
    assert.deepEqual(await settle(id), []);
  });

  it('logs -f follows the output until the container exits', async () => {
    const id = runD(['busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done; echo bye >&2']);
    const started = Date.now();
    const r = await berthAsync(root, ['logs', '-f', id]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'line1\nline2\nline3\nline4\nline5\n');
    assert.equal(r.stderr, 'bye\n');
    assert.ok(Date.now() - started > 500, 'logs -f returned before the container exited');
    assert.equal(inspect(id).State.Status, 'exited');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('logs -f into a pipe whose reader leaves (| head -2) ends quietly with 141', () => {
    const id = runD(['busybox', 'sh', '-c', 'i=0; while true; do echo line$i; i=$((i+1)); done']);
    const r = spawnSync('bash', ['-c', `"${path.join(TOP, 'bin', 'berth')}" --root "${root}" logs -f ${id} | head -2; echo "status \${PIPESTATUS[0]}"`],
      { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.stdout, 'line0\nline1\nstatus 141\n');
    assert.equal(r.stderr, '');
    assert.equal(berth(['rm', '-f', id]).status, 0);
  });

  it('stop: the exit code of a TERM trap, and SIGKILL (137) after -t for a process that ignores it', async () => {
    const trap = runD(['busybox', 'sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done']);
    const sleeper = runD(['busybox', 'sleep', '300']);
    assert.ok(await waitFor(() => berth(['logs', trap]).stdout.includes('ready')));
    const [a, b] = await Promise.all([berthAsync(root, ['stop', trap]), (async () => {
      const t0 = Date.now();
      const r = await berthAsync(root, ['stop', '-t', '1', sleeper]);
      return { ...r, ms: Date.now() - t0 };
    })()]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(a.stdout, `${trap}\n`);
    assert.equal(b.status, 0, b.stderr);
    // sleep as PID 1 has no handler, so SIGTERM does nothing; SIGKILL comes after 1 s.
    assert.ok(b.ms >= 1000, `stop -t 1 took ${b.ms} ms`);
    const t = inspect(trap);
    assert.equal(t.State.Status, 'exited');
    assert.equal(t.State.ExitCode, 7);
    assert.equal(t.State.Pid, 0);
    assert.notEqual(t.State.FinishedAt, '0001-01-01T00:00:00Z');
    assert.equal(berth(['logs', trap]).stdout, 'ready\ngot TERM\n');
    assert.equal(inspect(sleeper).State.ExitCode, 137);
    assert.equal(berth(['wait', sleeper]).stdout, '137\n');
    // Exited: the cgroup, runtime record and overlay mount are gone; the container stays.
    for (const id of [trap, sleeper]) {
      const dirOf = `state: ${path.join(root, 'containers', id)}`;
      assert.deepEqual(await settle(id, [dirOf]), []);
      assert.ok(leftovers(id).includes(dirOf));
    }
    assert.equal(berth(['rm', trap, sleeper]).status, 0);
  });

  it('kill, stop and rm -f reach a container running in the foreground of another berth run', async () => {
    // As Docker's: before, each was refused ("runs in the foreground of a `berth run`").
    const idOf = async (name: string): Promise<string> => {
      let id = '';
      await waitFor(() => {
        const r = berth(['ps', '-q', '--no-trunc', '--filter', `name=${name}`]);
        id = r.stdout.trim();
        return id.length === 64 && inspect(id).State.Running === true;
      }, 15_000);
      assert.equal(id.length, 64, `${name} did not start`);
      return id;
    };
    const k = berthAsync(root, ['run', '--name', 'fgk', 'busybox', 'sleep', '60']);
    const kid = await idOf('fgk');
    assert.equal(berth(['kill', 'fgk']).status, 0);
    assert.equal((await k).status, 137);
    assert.equal(inspect(kid).State.ExitCode, 137);
    assert.equal(berth(['rm', 'fgk']).status, 0);

    const s = berthAsync(root, ['run', '--rm', '--name', 'fgs', 'busybox', 'sh', '-c', 'trap "exit 7" TERM; while :; do sleep 0.1; done']);
    const sid = await idOf('fgs');
    const stop = berth(['stop', 'fgs']);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal((await s).status, 7);
    assert.deepEqual(await settle(sid), []);

    const f = berthAsync(root, ['run', '--name', 'fgr', 'busybox', 'sleep', '60']);
    const fid = await idOf('fgr');
    const rm = berth(['rm', '-f', 'fgr']);
    assert.equal(rm.status, 0, rm.stderr);
    assert.equal((await f).status, 137);
    assert.equal(berth(['inspect', 'fgr']).status, 125);
    assert.deepEqual(await settle(fid), []);
  });

  it('rename of a container in the foreground of another berth run: the new name stays after it exits, --rm frees it', async () => {
    // As Docker's; before, rename refused it, since that berth run rewrote the record on exit.
    const r = berthAsync(root, ['run', '--name', 'fgold', 'busybox', 'sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3']);
    assert.ok(await waitFor(() => berth(['inspect', 'fgold']).status === 0 && inspect('fgold').State.Running === true, 15_000));
    const rn = berth(['rename', 'fgold', 'fgnew']);
    assert.equal(rn.status, 0, rn.stderr);
    assert.equal(inspect('fgnew').State.Running, true);
    assert.equal(berth(['exec', 'fgnew', 'touch', '/tmp/go']).status, 0);
    assert.equal((await r).status, 3);
    const after = inspect('fgnew');
    assert.equal(after.Name, '/fgnew');
    assert.equal(after.State.ExitCode, 3);
    assert.equal(berth(['inspect', 'fgold']).status, 125); // the old name is free
    assert.match(berth(['ps', '-a']).stdout, /Exited \(3\) .* fgnew$/m);
    assert.equal(berth(['rm', 'fgnew']).status, 0);

    const rr = berthAsync(root, ['run', '--rm', '--name', 'fgrm', 'busybox', 'sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done']);
    assert.ok(await waitFor(() => berth(['inspect', 'fgrm']).status === 0 && inspect('fgrm').State.Running === true, 15_000));
    const rmId = inspect('fgrm').Id;
    assert.equal(berth(['rename', 'fgrm', 'fgrm2']).status, 0);
    assert.equal(berth(['exec', 'fgrm2', 'touch', '/tmp/go']).status, 0);
    assert.equal((await rr).status, 0);
    assert.equal(berth(['inspect', 'fgrm2']).status, 125);
    assert.equal(berth(['inspect', rmId]).status, 125, '--rm removed it under its new name');
    // (Only this test's names: the others in this file run at the same time.)
    assert.deepEqual(fs.readdirSync(path.join(root, 'names')).filter((n) => ['fgold', 'fgnew', 'fgrm', 'fgrm2'].includes(n)), []);
  });

  it('rename while the foreground berth run tears its network down: the new name stays the only one', async () => {
    // That berth wrote its stale record back after the teardown (without the engine lock):
    // the container took its old name back, and the new name's file pointed at it too.
    assert.equal(berth(['network', 'create', 'tdnet']).status, 0);
    try {
      const r = berthAsync(root, ['run', '--network', 'tdnet', '--name', 'tdx', 'busybox', 'sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3']);
      assert.ok(await waitFor(() => berth(['inspect', 'tdx']).status === 0 && inspect('tdx').State.Running === true, 15_000));
      // Hold the network lock: the bridge teardown waits for it, after the exit is recorded.
      const lock = spawn('flock', ['/run/berth-network/lock', 'sh', '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
      try {
        await new Promise((resolve) => lock.stdout.once('data', resolve));
        assert.equal(berth(['exec', 'tdx', 'touch', '/tmp/go']).status, 0);
        assert.ok(await waitFor(() => inspect('tdx').State.Status === 'exited', 15_000));
        const rn = berth(['rename', 'tdx', 'tdx2']);
        assert.equal(rn.status, 0, rn.stderr);
      } finally {
        lock.stdin.end();
      }
      assert.equal((await r).status, 3);
      assert.equal(inspect('tdx2').Name, '/tdx2');
      assert.equal(berth(['inspect', 'tdx']).status, 125);
      assert.deepEqual(fs.readdirSync(path.join(root, 'names')).filter((n) => n.startsWith('tdx')), ['tdx2']);
      assert.equal(berth(['rm', 'tdx2']).status, 0);
    } finally {
      berth(['rm', '-f', 'tdx', 'tdx2']);
      berth(['network', 'rm', 'tdnet']);
    }
  });

  it('kill -s sends the signal; wait prints the exit code', async () => {
    const id = runD(['busybox', 'sh', '-c', 'trap "exit 42" USR1; echo ready; while true; do sleep 0.1; done']);
    assert.ok(await waitFor(() => berth(['logs', id]).stdout.includes('ready')));
    const waiting = berthAsync(root, ['wait', id]);
    await sleep(300);
    const k = berth(['kill', '-s', 'USR1', id]);
    assert.equal(k.status, 0, k.stderr);
    const w = await waiting;
    assert.equal(w.status, 0, w.stderr);
    assert.equal(w.stdout, '42\n');
    const again = berth(['kill', id]);
    assert.equal(again.status, 125);
    assert.match(again.stderr, /is not running/);
    assert.equal(berth(['kill', '-s', 'NOPE', id]).status, 125);
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('inspect shows OOMKilled for a container over its --memory', async () => {
    const id = runD(['--memory', '32m', 'busybox', 'sh', '-c', 'head -c 268435456 /dev/zero | tr "\\0" a | sort >/dev/null']);
    const w = berth(['wait', id], 120_000);
    assert.equal(w.stdout, '137\n', w.stderr);
    const c = inspect(id);
    assert.equal(c.State.OOMKilled, true);
    assert.equal(c.State.ExitCode, 137);
    assert.equal(c.HostConfig.Memory, 32 * 1024 * 1024);
    const ok = runD(['busybox', 'true']);
    assert.equal(berth(['wait', ok]).stdout, '0\n');
    assert.equal(inspect(ok).State.OOMKilled, false);
    // A foreground run records it too (before, only the monitor's cleanup read it).
    const fg = berth(['run', '--name', 'oom-fg', '--memory', '32m', 'busybox', 'sh', '-c', 'head -c 268435456 /dev/zero | tr "\\0" a | sort >/dev/null'], 120_000);
    assert.equal(fg.status, 137, fg.stderr);
    assert.equal(inspect('oom-fg').State.OOMKilled, true);
    assert.equal(berth(['rm', id, ok, 'oom-fg']).status, 0);
  });

  it('--rm -d removes the container when it exits', async () => {
    const id = runD(['--rm', '--name', 'brief', 'busybox', 'sh', '-c', 'sleep 0.5; exit 3']);
    assert.equal(inspect('brief').HostConfig.AutoRemove, true);
    assert.ok(await waitFor(() => leftovers(id).length === 0, 20_000), leftovers(id).join('\n'));
    assert.equal(berth(['inspect', 'brief']).status, 125);
    assert.doesNotMatch(berth(['ps', '-a']).stdout, /brief/);
  });

  it('create, then start', async () => {
    const cr = berth(['create', '--name', 'later', 'busybox', 'sh', '-c', 'echo started']);
    assert.equal(cr.status, 0, cr.stderr);
    const id = cr.stdout.trim();
    assert.equal(inspect('later').State.Status, 'created');
    assert.match(berth(['ps', '-a']).stdout, /Created +later/);
    assert.equal(berth(['start', 'later']).status, 0);
    assert.equal(berth(['wait', 'later']).stdout, '0\n');
    assert.equal(berth(['logs', 'later']).stdout, 'started\n');
    assert.equal(berth(['rm', 'later']).status, 0);
    assert.deepEqual(await settle(id), []);
  });

  it('start runs an exited container again, and restart stops and starts it', async () => {
    const id = runD(['--name', 'again', 'busybox', 'sh', '-c', 'echo run; trap "exit 0" TERM; while true; do sleep 0.1; done']);
    assert.equal(berth(['stop', '-t', '5', 'again']).status, 0);
    assert.equal(inspect('again').State.Status, 'exited');
    assert.equal(berth(['start', 'again']).status, 0);
    assert.equal(inspect('again').State.Status, 'running');
    assert.equal(berth(['restart', '-t', '5', 'again']).status, 0);
    const after = inspect('again');
    assert.equal(after.State.Status, 'running');
    assert.equal(after.Id, id, 'the same container, not a new one');
    assert.equal(after.RestartCount, 0, 'start and restart by hand are not policy restarts');
    assert.ok(await waitFor(() => berth(['logs', 'again']).stdout === 'run\nrun\nrun\n'), berth(['logs', 'again']).stdout);
    assert.equal(berth(['rm', '-f', 'again']).status, 0);
    assert.deepEqual(await settle(id), []);
  });

  it('a command that cannot run fails berth run -d and leaves nothing', () => {
    const before = fs.readdirSync(path.join(root, 'containers')).length;
    const r = berth(['run', '-d', 'busybox', 'no-such-command']);
    assert.equal(r.status, 127, r.stderr);
    assert.match(r.stderr, /executable "no-such-command" not found/);
    assert.equal(fs.readdirSync(path.join(root, 'containers')).length, before);
  });

  it('starts 20 containers at once, each with its own name', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => berthAsync(root, ['run', '-d', 'busybox', 'sleep', '300'])));
    for (const r of results) assert.equal(r.status, 0, r.stderr);
    const ids = results.map((r) => r.stdout.trim());
    assert.equal(new Set(ids).size, 20);
    const names = ids.map((id) => inspect(id).Name);
    assert.equal(new Set(names).size, 20);
    const running = berth(['ps', '-q', '--no-trunc']).stdout.trim().split('\n');
    for (const id of ids) assert.ok(running.includes(id), `${id} is not running`);
    const rm = berth(['rm', '-f', ...ids]);
    assert.equal(rm.status, 0, rm.stderr);
    for (const id of ids) assert.deepEqual(await settle(id), []);
  });
});
