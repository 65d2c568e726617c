// Compiles config.json's linux.seccomp (the OCI form of Docker's profiles) into a classic
// BPF program (seccomp(2), "Filter return values"), which native/init loads just before
// execve. Node host process. Only the machine's own architecture is compiled: a syscall
// made through another ABI (i386, x32) kills the process, like libseccomp's bad-arch action.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import { distPath } from '../common/paths';
import type { Seccomp } from './spec';

const RET = {
  KILL_PROCESS: 0x80000000, KILL_THREAD: 0x00000000, TRAP: 0x00030000, ERRNO: 0x00050000,
  TRACE: 0x7ff00000, LOG: 0x7ffc0000, ALLOW: 0x7fff0000,
};
const AUDIT_ARCH: Record<string, [number, string[]]> = {
  x86_64: [0xc000003e, ['SCMP_ARCH_X86_64']],
  aarch64: [0xc00000b7, ['SCMP_ARCH_AARCH64']],
};
const X32_SYSCALL_BIT = 0x40000000;
const EPERM = 1;

// BPF opcodes (linux/filter.h).
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const ALU_AND_K = 0x54;

interface Insn {
  code: number;
  k: number;
  jt?: string | number;
  jf?: string | number;
  label?: string;
}

function action(name: string, errnoRet: number | undefined, defaultErrno: number | undefined, field: string): number {
  switch (name) {
    case 'SCMP_ACT_ALLOW': return RET.ALLOW;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET.TRAP;
    case 'SCMP_ACT_LOG': return RET.LOG;
    case 'SCMP_ACT_ERRNO': return RET.ERRNO | ((errnoRet ?? defaultErrno ?? EPERM) & 0xffff);
    case 'SCMP_ACT_TRACE': return RET.TRACE | ((errnoRet ?? defaultErrno ?? EPERM) & 0xffff);
    default:
      throw new BerthError('CONFIG_UNSUPPORTED', `config.json field ${field}: seccomp action ${name} is not supported`, {
        context: { field },
      });
  }
}

let syscallCache: { arch: string; syscalls: Record<string, number> } | undefined;

function syscallTable(): { arch: string; syscalls: Record<string, number> } {
  syscallCache ??= JSON.parse(fs.readFileSync(distPath('runtime', 'syscalls.json'), 'utf8'));
  return syscallCache!;
}

/** Instructions that fall through when ARG (index) OP VALUE holds, and jump to FAIL otherwise. */
function compare(index: number, op: string, value: bigint, valueTwo: bigint, fail: string, uniq: () => string): Insn[] {
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  const offLo = 16 + 8 * index;
  const offHi = offLo + 4;
  const ok = uniq();
  const out: Insn[] = [];
  const end = (): Insn => ({ code: JEQ_K, k: 0, jt: 0, jf: 0, label: ok }); // a no-op landing pad
  switch (op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_NE': {
      const isEq = op === 'SCMP_CMP_EQ';
      const miss = isEq ? fail : ok;
      const hit = isEq ? ok : fail;
      out.push({ code: LD_W_ABS, k: offHi }, { code: JEQ_K, k: hi(value), jt: 0, jf: miss },
        { code: LD_W_ABS, k: offLo }, { code: JEQ_K, k: lo(value), jt: hit, jf: miss });
      break;
    }
    case 'SCMP_CMP_MASKED_EQ':
      out.push({ code: LD_W_ABS, k: offHi }, { code: ALU_AND_K, k: hi(value) }, { code: JEQ_K, k: hi(valueTwo), jt: 0, jf: fail },
        { code: LD_W_ABS, k: offLo }, { code: ALU_AND_K, k: lo(value) }, { code: JEQ_K, k: lo(valueTwo), jt: ok, jf: fail });
      break;
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // GT/GE hold on a higher high word, or an equal high word and a low word that holds;
      // LT is !GE and LE is !GT.
      const strict = op === 'SCMP_CMP_GT' || op === 'SCMP_CMP_LE';
      const negate = op === 'SCMP_CMP_LT' || op === 'SCMP_CMP_LE';
      const yes = negate ? fail : ok;
      const no = negate ? ok : fail;
      out.push({ code: LD_W_ABS, k: offHi }, { code: JGT_K, k: hi(value), jt: yes, jf: 0 },
        { code: JEQ_K, k: hi(value), jt: 0, jf: no }, { code: LD_W_ABS, k: offLo },
        { code: strict ? JGT_K : JGE_K, k: lo(value), jt: yes, jf: no });
      break;
    }
    default:
      throw new BerthError('CONFIG_UNSUPPORTED', `seccomp argument operator ${op} is not supported`, {
        context: { field: 'linux.seccomp.syscalls.args.op' },
      });
  }
  out.push(end());
  return out;
}

/** Resolves label jumps into the 8-bit relative offsets of classic BPF. */
function assemble(prog: Insn[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    const rel = (j: string | number | undefined): number => {
      if (j === undefined || typeof j === 'number') return j ?? 0;
      const d = at.get(j)! - (i + 1);
      if (d < 0 || d > 255) {
        throw new BerthError('SECCOMP_TOO_LARGE', 'the seccomp profile compiles to a jump longer than BPF allows', {
          hint: 'split rules with many argument conditions',
        });
      }
      return d;
    };
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(rel(insn.jt), i * 8 + 2);
    buf.writeUInt8(rel(insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  if (prog.length > 4096) {
    throw new BerthError('SECCOMP_TOO_LARGE', `the seccomp profile compiles to ${prog.length} instructions; the kernel takes 4096`);
  }
  return buf;
}

/**
 * Compiles SC to a struct sock_filter array.
 * @throws BerthError CONFIG_UNSUPPORTED, SECCOMP_TOO_LARGE
 */
export function compileSeccomp(sc: Seccomp): Buffer {
  const { arch, syscalls } = syscallTable();
  const [auditArch, archNames] = AUDIT_ARCH[arch] ?? [0, []];
  if (!auditArch) throw new BerthError('CONFIG_UNSUPPORTED', `seccomp is not supported on ${arch}`);
  if (sc.architectures?.length && !sc.architectures.some((a) => archNames.includes(a))) {
    throw new BerthError('CONFIG_UNSUPPORTED', `linux.seccomp.architectures does not include this machine's (${archNames[0]})`, {
      context: { field: 'linux.seccomp.architectures' },
    });
  }
  for (const f of sc.flags ?? []) {
    // TSYNC is moot for the single-threaded init; SPEC_ALLOW and LOG only relax or log,
    // and leaving them out keeps the filter at least as strict.
    if (!['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_LOG'].includes(f)) {
      throw new BerthError('CONFIG_UNSUPPORTED', `seccomp flag ${f} is not supported`, { context: { field: 'linux.seccomp.flags' } });
    }
  }
  const defaultRet = action(sc.defaultAction, sc.defaultErrnoRet, undefined, 'linux.seccomp.defaultAction');
  let n = 0;
  const uniq = () => `L${n++}`;
  const prog: Insn[] = [
    { code: LD_W_ABS, k: 4 }, { code: JEQ_K, k: auditArch, jt: 1, jf: 0 }, { code: RET_K, k: RET.KILL_PROCESS },
    { code: LD_W_ABS, k: 0 },
  ];
  if (arch === 'x86_64') prog.push({ code: JSET_K, k: X32_SYSCALL_BIT, jt: 0, jf: 1 }, { code: RET_K, k: RET.KILL_PROCESS });

  (sc.syscalls ?? []).forEach((rule, ri) => {
    const ret = action(rule.action, rule.errnoRet, sc.defaultErrnoRet, `linux.seccomp.syscalls[${ri}].action`);
    for (const name of rule.names) {
      const nr = syscalls[name];
      if (nr === undefined) continue; // not on this architecture, as libseccomp skips it
      const next = uniq();
      prog.push({ code: LD_W_ABS, k: 0 }, { code: JEQ_K, k: nr, jt: 0, jf: next });
      for (const a of rule.args ?? []) {
        if (a.index < 0 || a.index > 5) {
          throw new BerthError('CONFIG_SCHEMA', `seccomp argument index ${a.index} is out of range 0-5`);
        }
        prog.push(...compare(a.index, a.op, BigInt(a.value), BigInt(a.valueTwo ?? 0), next, uniq));
      }
      prog.push({ code: RET_K, k: ret }, { code: JEQ_K, k: 0, jt: 0, jf: 0, label: next });
    }
  });
  prog.push({ code: RET_K, k: defaultRet });
  return assemble(prog);
}
