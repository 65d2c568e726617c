// Detached containers with a terminal (`run -dt`, `create -t` + `start`), whose pty the
// monitor holds, and `berth attach` / `start -a` driven as a user would: through a real
// terminal (a tmux pane on a private tmux server), keystrokes in, the screen read back.
// Also attach to a non-tty `-di` container (stdin pipe, stdout and stderr apart).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, processesWith, requires, sleep, TOP, waitFor, type Result } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const hasTmux = spawnSync('sh', ['-c', 'command -v tmux']).status === 0;
const skip = requires('root') ?? (hasTmux ? undefined : 'needs tmux (setup.sh installs it)');

describe('berth run -dt and berth attach', { skip }, () => {
  let dir: string;
  let root: string;
  const socket = `berth-test-attach-${process.pid}`;
  let sessions = 0;
  const berth = (args: string[], input?: string): Result => berthSync(root, args, { input });
  const runD = (args: string[]): string => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const tmux = (...args: string[]) => {
    const r = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** A new tmux session running the shell script LINES; returns its name. */
  const pane = (lines: string[], size = ['-x', '100', '-y', '30']): string => {
    const session = `s${++sessions}`;
    const script = path.join(dir, `${session}.sh`);
    fs.writeFileSync(script, lines.join('\n') + '\nexec sleep 600\n');
    tmux('new-session', '-d', '-s', session, ...size, `bash ${script}`);
    return session;
  };
  const screen = (s: string) => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', s).replace(/[ \t]+$/gm, '');
  const expectScreen = async (s: string, re: RegExp, what: string) => {
    const ok = await waitFor(() => re.test(screen(s)), 15_000);
    assert.ok(ok, `${what}: ${re} not on the screen:\n${screen(s)}`);
  };
  const status = (ref: string): string => {
    const r = berth(['inspect', ref]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout)[0].State.Status;
  };

  before(() => {
    ({ dir, root } = engineRoot('attach'));
  });
  after(async () => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    for (const id of berth(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)) berth(['rm', '-f', id]);
    const gone = await waitFor(() => processesWith(root).length === 0, 15_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    const containers = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (gone) fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(gone, `still running: ${processesWith(root)}`);
    assert.deepEqual(mounts, []);
    assert.deepEqual(containers, []);
  });

  it('run -dt: the container has a terminal; logs and exec see it', async () => {
    const id = runD(['-t', 'busybox', 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo in-and-out-are-ttys; printf "a\\tb\\n"; exec sleep 600']);
    assert.ok(await waitFor(() => berth(['logs', id]).stdout.includes('a\tb'), 10_000), berth(['logs', id]).stdout);
    // Docker's logs of a terminal: all of it on stdout, with the terminal's \r\n.
    const logs = berth(['logs', id]);
    assert.equal(logs.stdout, '/dev/pts/0\r\nin-and-out-are-ttys\r\na\tb\r\n');
    assert.equal(logs.stderr, '');
    // The pty stays open with the monitor: the container's terminal is there for exec too.
    const ex = berth(['exec', id, 'sh', '-c', 'ls -l /proc/1/fd/0; [ -e /dev/pts/0 ] && echo pts0']);
    assert.equal(ex.status, 0, ex.stderr);
    assert.match(ex.stdout, /-> \/dev\/pts\/0\npts0\n$/);
    const files = fs.readdirSync(path.join(root, 'containers', id));
    assert.ok(files.includes('attach.sock'));
    assert.ok(!files.includes('console.sock'), 'the console socket goes once it served');
    assert.equal(fs.statSync(path.join(root, 'containers', id, 'attach.sock')).mode & 0o777, 0o600);
    assert.equal(berth(['rm', '-f', id]).status, 0);
  });

  it('create -t + start: a terminal too', async () => {
    const c = berth(['create', '-t', 'busybox', 'sh', '-c', 'tty; exit 3']);
    assert.equal(c.status, 0, c.stderr);
    const id = c.stdout.trim();
    assert.equal(berth(['start', id]).status, 0);
    assert.equal(berth(['wait', id]).stdout, '3\n');
    assert.equal(berth(['logs', id]).stdout, '/dev/pts/0\r\n');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('attach -dit: typing, output, window size, ctrl-p ctrl-q detaches, attach again, exit ends it with the status', async () => {
    const id = runD(['-it', '--name', 'shell', 'busybox', 'sh']);
    const s = pane([`${BERTH} --root ${root} attach shell; echo "status=$?"`]);
    // The shell printed its prompt before we came; Enter brings a new one.
    tmux('send-keys', '-t', s, 'Enter');
    await expectScreen(s, /^\/ # ?$/m, 'the prompt');
    tmux('send-keys', '-t', s, 'echo $((6*7))', 'Enter');
    await expectScreen(s, /^42$/m, 'a command runs');
    tmux('send-keys', '-t', s, 'stty size', 'Enter');
    await expectScreen(s, /^30 100$/m, 'the pty has the window\'s size');
    tmux('resize-window', '-t', s, '-x', '80', '-y', '20');
    // The pane shrinks; the container's pty follows (SIGWINCH -> 'w' -> TIOCSWINSZ).
    await sleep(300);
    tmux('send-keys', '-t', s, 'stty size', 'Enter');
    await expectScreen(s, /^20 80$/m, 'the pty follows the window');
    // A ctrl-p not followed by ctrl-q reaches the shell (its history: the line before),
    // and so does the key after it (ctrl-u: the line is cleared again).
    tmux('send-keys', '-t', s, 'C-p', 'C-u', 'echo p-passed', 'Enter');
    await expectScreen(s, /^p-passed$/m, 'a lone ctrl-p is passed on');
    tmux('send-keys', '-t', s, 'C-p', 'C-q');
    await expectScreen(s, /read escape sequence\n(.*\n)*status=1$/m, 'ctrl-p ctrl-q detaches (status 1, as Docker)');
    assert.equal(status(id), 'running');
    assert.equal(processesWith(`attach shell`).length, 0);
    // The shell kept its state: attach again and end it.
    const s2 = pane([`${BERTH} --root ${root} attach shell; echo "status=$?"`]);
    tmux('send-keys', '-t', s2, 'echo again-$((1+1))', 'Enter');
    await expectScreen(s2, /^again-2$/m, 'a second attach');
    tmux('send-keys', '-t', s2, 'exit 7', 'Enter');
    await expectScreen(s2, /^status=7$/m, 'the container\'s exit ends attach with its status');
    assert.equal(status(id), 'exited');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('attach with --detach-keys and two clients at once', async () => {
    const id = runD(['-it', 'busybox', 'sh']);
    const a = pane([`${BERTH} --root ${root} attach --detach-keys ctrl-x,x ${id}; echo "status=$?"`]);
    const b = pane([`${BERTH} --root ${root} attach --no-stdin ${id}; echo "status=$?"`]);
    // Until B is connected, what A makes it print reaches A only: retry.
    let seen = false;
    for (let i = 0; i < 20 && !seen; i++) {
      tmux('send-keys', '-t', a, `echo both-$((2+${i}))`, 'Enter');
      seen = await waitFor(() => new RegExp(`^both-${2 + i}$`, 'm').test(screen(b)), 500);
    }
    assert.ok(seen, `the other client never saw the output:\n${screen(b)}`);
    await expectScreen(a, /^both-\d+$/m, 'the typing client');
    tmux('send-keys', '-t', a, 'C-x', 'x');
    await expectScreen(a, /^status=1$/m, 'custom detach keys');
    assert.equal(status(id), 'running');
    assert.equal(berth(['kill', id]).status, 0);
    await expectScreen(b, /status=137$/m, 'SIGKILL ends the other client with 137');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('attach -di (no tty): stdin in, stdout and stderr apart, exit status', async () => {
    const id = runD(['-i', 'busybox', 'sh']);
    const c = spawn(BERTH, ['--root', root, 'attach', id], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.stdin.write('echo out-$((1+1)); echo err-3 >&2\n');
    assert.ok(await waitFor(() => stdout === 'out-2\n' && stderr === 'err-3\n', 10_000), `${stdout}|${stderr}`);
    c.stdin.write('exit 4\n');
    const code = await new Promise<number | null>((resolve) => c.on('close', resolve));
    assert.equal(code, 4);
    // and the log has them apart too
    const logs = berth(['logs', id]);
    assert.equal(logs.stdout, 'out-2\n');
    assert.equal(logs.stderr, 'err-3\n');
    assert.equal(berth(['rm', id]).status, 0);
  });

  it('start -a: a created container\'s whole output, and its status', () => {
    const c = berth(['create', '--name', 'sa', 'busybox', 'sh', '-c', 'echo first; echo second >&2; exit 6']);
    assert.equal(c.status, 0, c.stderr);
    const r = berth(['start', '-a', 'sa']);
    assert.equal(r.status, 6, r.stderr);
    assert.equal(r.stdout, 'first\n');
    assert.equal(r.stderr, 'second\n');
    assert.equal(berth(['rm', 'sa']).status, 0);
  });

  it('start -a of an exited container: attached before it runs again, so no output is missed', () => {
    const c = berth(['create', '--name', 'sx', 'busybox', 'sh', '-c', 'echo again; echo oops >&2; exit 5']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(berth(['start', '-a', 'sx']).status, 5);
    // Before, the exited container was started first and attached to after: a short-lived
    // one had ended by then and start -a printed nothing.
    for (let i = 0; i < 3; i++) {
      const r = berth(['start', '-a', 'sx']);
      assert.equal(r.status, 5, r.stderr);
      assert.equal(r.stdout, 'again\n');
      assert.equal(r.stderr, 'oops\n');
    }
    assert.equal(status('sx'), 'exited');
    assert.equal(berth(['rm', 'sx']).status, 0);
  });

  it('attach to a stopped container is refused', () => {
    const c = berth(['create', 'busybox', 'true']);
    const id = c.stdout.trim();
    const r = berth(['attach', id]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /not running/);
    assert.equal(berth(['rm', '-f', id]).status, 0);
  });
});
