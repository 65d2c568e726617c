// `berth run -it` as a user at a terminal sees it: driven through a real terminal (a tmux
// pane on a private tmux server) with keystrokes, and read back from the pane's screen.
// Stage 0 of berth-init proxies between the pane's tty and the container's pty (raw
// mode, SIGWINCH); Ctrl-C is a byte for the container, not a signal for berth. And -i
// without -t: plain pipes, stdout and stderr kept apart.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { engineRoot, processesWith, requires, TOP, waitFor } from '../helpers';

const BERTH = path.join(TOP, 'bin', 'berth');
const hasTmux = spawnSync('sh', ['-c', 'command -v tmux']).status === 0;
const skip = requires('root') ?? (hasTmux ? undefined : 'needs tmux (setup.sh installs it)');

/** Processes (not zombies) whose command line is exactly ARGS, in a cgroup of container ID. */
function processesRunning(args: string[], id: string): number[] {
  const want = args.join('\0') + '\0';
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (/\) [ZX] /.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))) continue;
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') !== want) continue;
      if (fs.readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(id)) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}


describe('berth run -i / -it: containers at a terminal', { skip }, () => {
  let dir: string;
  let root: string;
  // A private tmux server (-L) and session: nothing of the user's tmux is touched.
  const socket = `berth-test-${process.pid}`;
  const session = `berth-it-${process.pid}`;
  const tmux = (...args: string[]) => {
    const r = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** The pane's screen and its scrollback, trailing blanks trimmed. */
  const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', session).replace(/[ \t]+$/gm, '');
  const expectScreen = async (re: RegExp, what: string) => {
    const ok = await waitFor(() => re.test(screen()), 15_000);
    assert.ok(ok, `${what}: ${re} not on the screen:\n${screen()}`);
  };

  before(() => {
    ({ dir, root } = engineRoot('interactive'));
  });
  after(async () => {
    // Closing the pane hangs up its terminal: berth and the container must end too.
    spawnSync('tmux', ['-L', socket, 'kill-session', '-t', session]);
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    const gone = await waitFor(() => processesWith(root).length === 0, 15_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    const containers = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (gone) fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(gone, `still running: ${processesWith(root)}`);
    assert.deepEqual(mounts, []);
    assert.deepEqual(containers, []);
  });

  it('-it: prompt, line editing, window size and SIGWINCH, Ctrl-C, exit status, terminal restored', async () => {
    // The pane runs a script, as a user's shell would run the command line; it records the
    // terminal's settings before and after, and berth's exit status.
    const script = path.join(dir, 'pane.sh');
    fs.writeFileSync(script, [
      `stty -g > ${dir}/stty-before`,
      `${BERTH} --root ${root} run -it --rm busybox sh; echo "status=$?"`,
      `stty -g > ${dir}/stty-after`,
      'exec sleep 600',
    ].join('\n') + '\n');
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', `bash ${script}`);

    await expectScreen(/^\/ # ?$/m, 'the prompt of the shell in the container');
    // Typing and Enter; the output differs from the typed line, so it cannot be the echo.
    tmux('send-keys', '-t', session, 'echo $((6*7))', 'Enter');
    await expectScreen(/^42$/m, 'a command runs');
    // Line editing (the shell's own, so the terminal really is raw end to end).
    tmux('send-keys', '-t', session, 'echo helo', 'Left', 'l', 'Enter');
    await expectScreen(/^hello$/m, 'Left and insert');
    // The pty has the pane's size, and follows it.
    tmux('send-keys', '-t', session, 'stty size', 'Enter');
    await expectScreen(/^30 100$/m, 'the window size');
    tmux('resize-window', '-t', session, '-x', '80', '-y', '20');
    // The container's process gets SIGWINCH too (a trap in a child shell, so the
    // interactive shell's own line editing does not handle it first).
    tmux('send-keys', '-t', session, `sh -c 'trap "stty size; exit 3" WINCH; echo wait$((1+1)); while :; do sleep 0.1; done'`, 'Enter');
    await expectScreen(/^wait2$/m, 'the WINCH trap is set');
    tmux('resize-window', '-t', session, '-x', '90', '-y', '25');
    await expectScreen(/^25 90$/m, 'SIGWINCH in the container with the new size');
    tmux('send-keys', '-t', session, 'echo trap-status=$?', 'Enter');
    await expectScreen(/^trap-status=3$/m, 'the trap ran');

    // Ctrl-C interrupts the container's foreground process, not berth or the shell.
    const [id] = fs.readdirSync(path.join(root, 'containers'));
    tmux('send-keys', '-t', session, 'sleep 100', 'Enter');
    assert.ok(await waitFor(() => processesRunning(['sleep', '100'], id).length === 1, 10_000), 'sleep 100 did not start');
    const [sleeper] = processesRunning(['sleep', '100'], id);
    tmux('send-keys', '-t', session, 'C-c');
    assert.ok(await waitFor(() => processesRunning(['sleep', '100'], id).length === 0, 10_000), 'Ctrl-C did not end sleep 100');
    assert.throws(() => process.kill(sleeper, 0));
    tmux('send-keys', '-t', session, 'echo alive-$((40+2))', 'Enter');
    await expectScreen(/^alive-42$/m, 'the shell survives Ctrl-C');

    // exit N ends the session; berth exits N and gives the terminal back as it was.
    tmux('send-keys', '-t', session, 'exit 7', 'Enter');
    await expectScreen(/^status=7$/m, "berth's exit status");
    assert.ok(await waitFor(() => fs.existsSync(path.join(dir, 'stty-after')), 5_000));
    assert.equal(fs.readFileSync(path.join(dir, 'stty-after'), 'utf8'), fs.readFileSync(path.join(dir, 'stty-before'), 'utf8'));
    tmux('kill-session', '-t', session);
    // --rm: nothing left of the container.
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')), []);
  });

  it('-it: closing the terminal (a hangup) ends the container and berth', async () => {
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', `${BERTH} --root ${root} run -it --rm busybox sh`);
    await expectScreen(/^\/ # ?$/m, 'the prompt of the shell in the container');
    tmux('kill-session', '-t', session);
    assert.ok(await waitFor(() => processesWith(root).length === 0, 15_000), `still running: ${processesWith(root)}`);
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')), []);
  });

  it('-i without -t: stdin is passed through, stdout and stderr stay separate', async () => {
    const c = spawn(BERTH, ['--root', root, 'run', '-i', '--rm', 'busybox', 'sh', '-c', 'cat; echo err >&2'],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const input = 'line one\nline two\n' + 'x'.repeat(200_000) + '\n';
    c.stdin.end(input);
    const status = await new Promise<number | null>((resolve) => c.on('close', resolve));
    assert.equal(status, 0, stderr);
    assert.equal(stdout.length, input.length);
    assert.ok(stdout === input, 'stdout is not the input, unchanged');
    assert.equal(stderr, 'err\n');
  });
});
