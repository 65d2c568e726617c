// linux.seccomp compiled to BPF by berth and enforced by the kernel: actions, errno
// values and argument comparisons, checked by what the process inside sees.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv } from '../helpers';

const skip = requires('root');

describe('seccomp', { skip, concurrency: 2 }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('seccomp');
  });
  after(() => env.cleanup());

  const run = (name: string, script: string, seccomp: unknown) => {
    const b = env.bundle(name, (c) => {
      c.process.args = ['sh', '-c', script];
      c.linux.seccomp = seccomp;
    });
    return env.rt(['run', '--bundle', b, name]);
  };

  it('returns the profile\'s errno for a denied syscall', () => {
    const r = run('errno', 'mkdir /tmp/x && echo made || echo refused; echo hi > /tmp/f && cat /tmp/f', {
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['refused', 'hi']);
    assert.match(r.stderr, /Permission denied/);
  });

  for (const [op, value, denied] of [['SCMP_CMP_EQ', 0, true], ['SCMP_CMP_NE', 0, false], ['SCMP_CMP_GT', 0, false],
    ['SCMP_CMP_GE', 0, true], ['SCMP_CMP_LT', 1, true], ['SCMP_CMP_LE', 0, true], ['SCMP_CMP_MASKED_EQ', 0, true]] as const) {
    it(`compares arguments with ${op} ${value}`, () => {
      // kill -0 1 calls kill(1, 0): argument 1 is 0.
      const r = run(`cmp-${op.toLowerCase().replace(/_/g, '-')}`, 'kill -0 1 2>/dev/null && echo allowed || echo denied', {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value, valueTwo: 0, op }] }],
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), denied ? 'denied' : 'allowed');
    });
  }

  it('kills the process for SCMP_ACT_KILL_PROCESS', () => {
    const r = run('kill', 'echo before; mkdir /tmp/y; echo after', {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_KILL_PROCESS' }],
    });
    // busybox runs mkdir in a child: the child dies of SIGSYS, the shell goes on.
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['before', 'after']);
  });

  it('filters processes started with exec too', () => {
    const b = env.bundle('execfilter', (c) => {
      c.process.args = ['sleep', '30'];
      c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
    });
    assert.equal(env.rt(['run', '--detach', '--bundle', b, 'execfilter']).status, 0);
    const r = env.rt(['exec', 'execfilter', 'sh', '-c', 'mkdir /tmp/x && echo made || echo refused; grep Seccomp: /proc/self/status']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^refused$/m);
    assert.match(r.stdout, /^Seccomp:\s+2$/m);
    assert.equal(env.rt(['delete', '--force', 'execfilter']).status, 0);
  });

  it('refuses SCMP_ACT_NOTIFY with a clear error', () => {
    const r = run('notify', 'true', {
      defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/nope.sock',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /linux\.seccomp\.listenerPath is not supported/);
  });
});
