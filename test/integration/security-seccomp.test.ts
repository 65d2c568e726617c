// Security group: berth's default seccomp profile and --security-opt. The compiled filter
// is checked against libseccomp's for the same profile (both run by a BPF interpreter on
// the same syscall numbers and arguments), then on real containers from `berth run`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ALWAYS_REFUSED, DEFAULT_SECCOMP_PROFILE } from '../../src/engine/seccomp-profile';
import { DEFAULT_CAPS } from '../../src/engine/spec';
import { parseSecurityOpts, profileToOci } from '../../src/engine/security-opts';
import { CAPABILITIES } from '../../src/runtime/capabilities';
import { compileSeccomp, syscallTable } from '../../src/runtime/seccomp';
import type { Seccomp } from '../../src/runtime/spec';
import { runFilter, type SeccompData } from '../fixtures/seccomp/bpf-interpreter';
import { berthSync, engineRoot, requires, TOP } from '../helpers';

const PY = '/usr/bin/python3';
const LIBSECCOMP_BPF = path.join(TOP, 'test', 'fixtures', 'seccomp', 'libseccomp-bpf.py');
const hasLibseccomp = spawnSync(PY, ['-c', 'import seccomp']).status === 0;
const AUDIT_X86_64 = 0xc000003e;
const AUDIT_I386 = 0x40000003;
const AUDIT_AARCH64 = 0xc00000b7;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;

function libseccompFilter(dir: string, sc: Seccomp): Buffer {
  const file = path.join(dir, `profile-${process.hrtime.bigint()}.json`);
  fs.writeFileSync(file, JSON.stringify(sc));
  // berth's table (with the syscalls newer than the kernel headers), so both sides agree on numbers.
  const table = path.join(dir, 'syscalls.json');
  if (!fs.existsSync(table)) fs.writeFileSync(table, JSON.stringify(syscallTable()));
  const r = spawnSync(PY, [LIBSECCOMP_BPF, file, table]);
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout;
}

/** Argument values worth trying for the rules of SC: each rule's values, their neighbours, high words. */
function argumentCases(sc: Seccomp): Map<number, bigint[][]> {
  const { syscalls } = syscallTable();
  const byNr = new Map<number, Map<number, Set<bigint>>>();
  for (const rule of sc.syscalls ?? []) {
    for (const name of rule.names) {
      const nr = syscalls[name];
      if (nr === undefined) continue;
      const perIndex = byNr.get(nr) ?? new Map<number, Set<bigint>>();
      byNr.set(nr, perIndex);
      for (const a of rule.args ?? []) {
        const s = perIndex.get(a.index) ?? new Set<bigint>();
        perIndex.set(a.index, s);
        for (const v of [BigInt(a.value), BigInt(a.valueTwo ?? 0)]) {
          for (const w of [v, v - 1n, v + 1n, v | (1n << 32n), v | 0x10000000n, v & 0xffffn, ~v]) s.add(BigInt.asUintN(64, w));
        }
      }
    }
  }
  const base = [0n, 1n, 0xffffffffn, 0xffffffffffffffffn, 0x100000000n, 0x20000n, 0x10000000n, 0x7e020000n, 0x11n, 40n];
  const out = new Map<number, bigint[][]>();
  for (const [nr, perIndex] of byNr) {
    const cases: bigint[][] = [];
    const indexes = [...perIndex.keys()];
    for (const i of indexes) {
      for (const v of [...perIndex.get(i)!, ...base]) {
        const args = [0n, 0n, 0n, 0n, 0n, 0n];
        args[i] = v;
        cases.push(args);
      }
    }
    // Two conditions at once: the values of each index combined.
    if (indexes.length > 1) {
      const [i, j] = indexes;
      for (const v of perIndex.get(i)!) {
        for (const w of perIndex.get(j)!) {
          const args = [0n, 0n, 0n, 0n, 0n, 0n];
          args[i] = v;
          args[j] = w;
          cases.push(args);
        }
      }
    }
    out.set(nr, cases);
  }
  return out;
}

/** Runs both filters on every syscall number (and arguments for the ones with conditions). */
function compareFilters(berth: Buffer, lib: Buffer, sc: Seccomp): number {
  const zero = [0n, 0n, 0n, 0n, 0n, 0n];
  const cases = argumentCases(sc);
  const inputs: SeccompData[] = [];
  const nrs = [...Array(480).keys(), 0x3fffffff, 0x40000000, 0x40000001, 0x40000000 + 59, 0x7fffffff, 0x80000000,
    0xfffffffe, 0xffffffff, 1000, 4096];
  for (const nr of nrs) {
    inputs.push({ nr, arch: AUDIT_X86_64, args: zero });
    for (const args of cases.get(nr) ?? []) inputs.push({ nr, arch: AUDIT_X86_64, args });
  }
  for (const arch of [AUDIT_I386, AUDIT_AARCH64, 0]) inputs.push({ nr: 1, arch, args: zero });
  let n = 0;
  for (const d of inputs) {
    const a = runFilter(berth, d);
    const b = runFilter(lib, d);
    if (a !== b) {
      assert.fail(`nr ${d.nr} arch 0x${d.arch.toString(16)} args [${d.args.map((v) => '0x' + v.toString(16))}]: ` +
        `berth returns 0x${a.toString(16)}, libseccomp 0x${b.toString(16)}`);
    }
    n++;
  }
  return n;
}

describe('security: seccomp filter = libseccomp\'s', { skip: process.arch !== 'x64' ? 'x86_64 only' : !hasLibseccomp ? 'needs /usr/bin/python3 with seccomp (python3-seccomp)' : undefined }, () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync('/tmp/berth-test-secfilter-');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const host = { arches: ['amd64', 'x86_64', 'SCMP_ARCH_X86_64'], kernel: [6, 1] as [number, number] };
  const profiles: [string, string[]][] = [
    ['the default capabilities', DEFAULT_CAPS],
    ['no capabilities', []],
    ['CAP_SYS_ADMIN added', [...DEFAULT_CAPS, 'CAP_SYS_ADMIN']],
    ['CAP_SYS_PTRACE, CAP_SYS_TIME and CAP_SYS_MODULE added', [...DEFAULT_CAPS, 'CAP_SYS_PTRACE', 'CAP_SYS_TIME', 'CAP_SYS_MODULE']],
    ['every capability', CAPABILITIES],
  ];
  for (const [what, caps] of profiles) {
    it(`default profile with ${what}: same action and errno for every syscall`, () => {
      const sc = profileToOci(DEFAULT_SECCOMP_PROFILE, caps, host);
      const n = compareFilters(compileSeccomp(sc), libseccompFilter(dir, sc), sc);
      assert.ok(n > 500, `only ${n} inputs`);
    });
  }

  it('a profile with every action and argument operator: same results', () => {
    const sc: Seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        { names: ['kill'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 1, value: 9, op: 'SCMP_CMP_EQ' }] },
        { names: ['tkill'], action: 'SCMP_ACT_KILL_PROCESS', args: [{ index: 1, value: 9, op: 'SCMP_CMP_NE' }] },
        { names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 2, value: 0x100000000, op: 'SCMP_CMP_GT' }] },
        { names: ['write'], action: 'SCMP_ACT_TRAP', args: [{ index: 0, value: 3, op: 'SCMP_CMP_GE' }, { index: 2, value: 4096, op: 'SCMP_CMP_LT' }] },
        { names: ['lseek'], action: 'SCMP_ACT_LOG', args: [{ index: 2, value: 1, op: 'SCMP_CMP_LE' }] },
        { names: ['openat'], action: 'SCMP_ACT_TRACE', errnoRet: 7, args: [{ index: 2, value: 0x40, valueTwo: 0x40, op: 'SCMP_CMP_MASKED_EQ' }] },
        { names: ['getppid'], action: 'SCMP_ACT_KILL' },
        { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      ],
    };
    compareFilters(compileSeccomp(sc), libseccompFilter(dir, sc), sc);
  });
});

describe('security: the default profile', () => {
  it('decides on every syscall of this architecture: allowed, behind a capability, or refused', () => {
    const named = new Set<string>([...ALWAYS_REFUSED, ...(DEFAULT_SECCOMP_PROFILE.syscalls ?? []).flatMap((r) => r.names ?? [])]);
    const missing = Object.keys(syscallTable().syscalls).filter((n) => !named.has(n));
    assert.deepEqual(missing, []);
  });

  it('refuses what Docker\'s refuses and unlocks it with the capability that guards it', () => {
    const { syscalls } = syscallTable();
    const host = { arches: ['amd64'], kernel: [6, 1] as [number, number] };
    const verdict = (caps: string[], name: string, args = [0n, 0n, 0n, 0n, 0n, 0n]) => {
      const r = runFilter(compileSeccomp(profileToOci(DEFAULT_SECCOMP_PROFILE, caps, host)), { nr: syscalls[name], arch: AUDIT_X86_64, args });
      return r === RET_ALLOW ? 'allow' : (r & 0xffff0000) === RET_ERRNO ? `errno ${r & 0xffff}` : `0x${r.toString(16)}`;
    };
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'keyctl', 'add_key', 'init_module', 'finit_module', 'ptrace',
      'process_vm_readv', 'kexec_load', 'reboot', 'settimeofday', 'clock_settime', 'swapon', 'open_by_handle_at', 'bpf',
      'perf_event_open', 'sethostname', 'pivot_root', 'io_uring_setup', 'acct', 'iopl', 'syslog']) {
      assert.equal(verdict(DEFAULT_CAPS, name), 'errno 1', name);
    }
    for (const name of ['read', 'openat', 'getppid', 'execve', 'chroot', 'mknodat', 'arch_prctl']) assert.equal(verdict(DEFAULT_CAPS, name), 'allow', name);
    assert.equal(verdict(DEFAULT_CAPS, 'clone3'), 'errno 38');
    assert.equal(verdict(DEFAULT_CAPS, 'clone', [0x11n, 0n, 0n, 0n, 0n, 0n]), 'allow');
    assert.equal(verdict(DEFAULT_CAPS, 'clone', [0x10000011n, 0n, 0n, 0n, 0n, 0n]), 'errno 1'); // CLONE_NEWUSER
    assert.equal(verdict(DEFAULT_CAPS, 'personality', [0x0400000n, 0n, 0n, 0n, 0n, 0n]), 'errno 1'); // READ_IMPLIES_EXEC
    assert.equal(verdict(DEFAULT_CAPS, 'socket', [40n, 1n, 0n, 0n, 0n, 0n]), 'errno 1'); // AF_VSOCK
    assert.equal(verdict(DEFAULT_CAPS, 'chroot'), 'allow');
    assert.equal(verdict(['CAP_CHOWN'], 'chroot'), 'errno 1');
    const admin = [...DEFAULT_CAPS, 'CAP_SYS_ADMIN'];
    for (const name of ['mount', 'unshare', 'setns', 'sethostname', 'clone3']) assert.equal(verdict(admin, name), 'allow', name);
    assert.equal(verdict(admin, 'clone', [0x10000011n, 0n, 0n, 0n, 0n, 0n]), 'allow');
    assert.equal(verdict(admin, 'keyctl'), 'errno 1');
    assert.equal(verdict([...DEFAULT_CAPS, 'CAP_SYS_PTRACE'], 'ptrace'), 'allow');
    assert.equal(verdict([...DEFAULT_CAPS, 'CAP_SYS_MODULE'], 'finit_module'), 'allow');
    assert.equal(verdict([...DEFAULT_CAPS, 'CAP_SYS_TIME'], 'clock_settime'), 'allow');
  });

  it('parses --security-opt, and refuses what it does not know', () => {
    assert.deepEqual(parseSecurityOpts([]), { seccomp: 'default', noNewPrivileges: false });
    assert.deepEqual(parseSecurityOpts(['seccomp=unconfined', 'no-new-privileges']), { seccomp: 'unconfined', noNewPrivileges: true });
    assert.deepEqual(parseSecurityOpts(['seccomp:unconfined', 'no-new-privileges=false', 'label=disable', 'apparmor=unconfined']),
      { seccomp: 'unconfined', noNewPrivileges: false });
    for (const bad of ['bogus', 'seccomp', 'no-new-privileges=maybe', 'label=type:svirt_t', 'apparmor=docker-default']) {
      assert.throws(() => parseSecurityOpts([bad]), (e: any) => e.code === 'USAGE', bad);
    }
    assert.throws(() => parseSecurityOpts(['seccomp=/nonexistent.json']), (e: any) => e.code === 'SECCOMP_PROFILE_INVALID');
  });
});

describe('security: seccomp in berth run', { skip: requires('root'), concurrency: 2 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]) => berthSync(root, args);
  before(() => {
    ({ dir, root } = engineRoot('secseccomp'));
  });
  after(() => {
    const ids = fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : [];
    if (ids.length) berth(['rm', '-f', ...ids]);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  const status = (out: string, field: string) => new RegExp(`^${field}:\\s+(\\S+)$`, 'm').exec(out)?.[1];

  it('loads the default profile; seccomp=unconfined and --privileged load none', () => {
    const def = berth(['run', '--rm', 'busybox', 'cat', '/proc/self/status']);
    assert.equal(def.status, 0, def.stderr);
    assert.equal(status(def.stdout, 'Seccomp'), '2');
    assert.equal(status(def.stdout, 'NoNewPrivs'), '0');
    for (const flags of [['--security-opt', 'seccomp=unconfined'], ['--privileged']]) {
      const r = berth(['run', '--rm', ...flags, 'busybox', 'cat', '/proc/self/status']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(status(r.stdout, 'Seccomp'), '0', flags.join(' '));
    }
  });

  it('refuses mount and unshare by default, allows them with --cap-add SYS_ADMIN', () => {
    const script = 'mount -t tmpfs t /mnt 2>&1; echo mount=$?; unshare -m true 2>&1; echo unshare=$?';
    const def = berth(['run', '--rm', 'busybox', 'sh', '-c', script]);
    assert.equal(def.status, 0, def.stderr);
    assert.match(def.stdout, /mount=1/);
    assert.match(def.stdout, /unshare: unshare\(0x20000\): Operation not permitted\nunshare=1/);
    const admin = berth(['run', '--rm', '--cap-add', 'SYS_ADMIN', 'busybox', 'sh', '-c', script]);
    assert.equal(admin.status, 0, admin.stderr);
    assert.match(admin.stdout, /mount=0\nunshare=0/);
  });

  it('takes a Docker-format profile with seccomp=FILE (includes by capability honoured)', () => {
    const file = path.join(dir, 'profile.json');
    fs.writeFileSync(file, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
        { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: [] }],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, comment: 'no new directories' },
        { name: 'rmdir', action: 'SCMP_ACT_ERRNO', errnoRet: 30, includes: { caps: ['CAP_SYS_ADMIN'] } },
      ],
    }));
    const script = 'mkdir /tmp/a 2>&1; rmdir /tmp 2>&1; grep Seccomp: /proc/self/status';
    const r = berth(['run', '--rm', '--security-opt', `seccomp=${file}`, 'busybox', 'sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /mkdir: can't create directory '\/tmp\/a': Permission denied/);
    assert.doesNotMatch(r.stdout, /Read-only file system/); // the rmdir rule needs CAP_SYS_ADMIN
    const admin = berth(['run', '--rm', '--cap-add', 'SYS_ADMIN', '--security-opt', `seccomp=${file}`, 'busybox', 'sh', '-c', script]);
    assert.match(admin.stdout, /rmdir: '\/tmp': Read-only file system/);
  });

  it('refuses a bad profile, an unknown option and an LSM profile, with exit 125', () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"syscalls": []}');
    for (const [opt, msg] of [[`seccomp=${bad}`, /defaultAction is missing/], ['seccomp=/nonexistent.json', /read seccomp profile/],
      ['bogus=1', /not a security option berth knows/], ['apparmor=docker-default', /does not apply SELinux labels or AppArmor/]] as const) {
      const r = berth(['run', '--rm', '--security-opt', opt, 'busybox', 'true']);
      assert.equal(r.status, 125, opt);
      assert.match(r.stderr, msg);
    }
    const ok = berth(['run', '--rm', '--security-opt', 'label=disable', '--security-opt', 'apparmor=unconfined', 'busybox', 'true']);
    assert.equal(ok.status, 0, ok.stderr);
  });

  it('no-new-privileges sets NoNewPrivs for run and for exec', () => {
    const r = berth(['run', '-d', '--name', 'nnp', '--security-opt', 'no-new-privileges', 'busybox', 'sleep', '60']);
    assert.equal(r.status, 0, r.stderr);
    const e = berth(['exec', 'nnp', 'cat', '/proc/self/status']);
    assert.equal(e.status, 0, e.stderr);
    assert.equal(status(e.stdout, 'NoNewPrivs'), '1');
    assert.equal(status(e.stdout, 'Seccomp'), '2'); // exec gets the container's filter
    assert.equal(berth(['rm', '-f', 'nnp']).status, 0);
  });

  it('keeps Docker\'s capability sets: defaults, --cap-drop ALL, --cap-add, --privileged', () => {
    const caps = (flags: string[]) => {
      const r = berth(['run', '--rm', ...flags, 'busybox', 'cat', '/proc/self/status']);
      assert.equal(r.status, 0, r.stderr);
      return [status(r.stdout, 'CapEff'), status(r.stdout, 'CapBnd'), status(r.stdout, 'CapInh')];
    };
    // The 14 of Docker's default set: chown, dac_override, fowner, fsetid, kill, setgid,
    // setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap.
    assert.deepEqual(caps([]), ['00000000a80425fb', '00000000a80425fb', '0000000000000000']);
    assert.deepEqual(caps(['--cap-drop', 'ALL']), ['0000000000000000', '0000000000000000', '0000000000000000']);
    assert.deepEqual(caps(['--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN']), ['0000000000001000', '0000000000001000', '0000000000000000']);
    const priv = caps(['--privileged']);
    assert.equal(priv[0], fs.readFileSync('/proc/self/status', 'utf8').match(/^CapBnd:\s+(\S+)$/m)![1]);
  });
});
