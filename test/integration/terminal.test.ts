// process.terminal: the container's process gets a pty whose master is sent over the
// console socket (the protocol podman's conmon and containerd's shim speak).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv, TOP, waitFor } from '../helpers';

const skip = requires('root', 'python3');

describe('terminal', { skip }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('terminal');
  });
  after(() => env.cleanup());

  it('sends the pty master to the console socket, and the process has a tty', async () => {
    const sock = path.join(env.dir, 'console.sock');
    const receiver = spawn('python3', [path.join(TOP, 'test', 'console-socket.py'), sock, 'echo typed-$((6*7))\nexit 3\n']);
    let out = '';
    receiver.stdout.on('data', (d) => (out += d));
    const done = new Promise((r) => receiver.on('exit', r));
    assert.ok(await waitFor(() => out.includes('listening')));

    const b = env.bundle('tty', (c) => {
      c.process.terminal = true;
      c.process.args = ['sh', '-c', 'tty; test -t 0 && echo stdin-is-tty; exec sh'];
    });
    const r = env.rt(['create', '--bundle', b, '--console-socket', sock, 'tty']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(env.rt(['start', 'tty']).status, 0);
    await done;
    assert.match(out, /got \/dev\/pts\/\d+/);
    assert.match(out, /^\/dev\/pts\/\d+\r?$/m);
    assert.match(out, /stdin-is-tty/);
    assert.match(out, /typed-42/);
    assert.ok(await waitFor(() => JSON.parse(env.rt(['state', 'tty']).stdout).status === 'stopped'));
    assert.equal(env.rt(['delete', 'tty']).status, 0);
  });

  it('refuses a terminal without a console socket on create', () => {
    const b = env.bundle('notty', (c) => {
      c.process.terminal = true;
    });
    const r = env.rt(['create', '--bundle', b, 'notty']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /process\.terminal is true but no --console-socket was given/);
  });
});
