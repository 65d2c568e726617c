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

// Syscalls newer than the kernel headers build-syscalls.js reads (Debian 12's are 6.1).
// Numbers from 424 on are the same on every architecture (include/uapi/asm-generic/unistd.h),
// so a profile that names them reaches them on a newer kernel, as libseccomp's newer tables do.
const NEWER_SYSCALLS: Record<string, number> = {
  cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455, futex_requeue: 456,
  statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461, mseal: 462,
  setxattrat: 463, getxattrat: 464, listxattrat: 465, removexattrat: 466, open_tree_attr: 467, file_getattr: 468,
  file_setattr: 469,
};

let syscallCache: { arch: string; syscalls: Record<string, number> } | undefined;

/** This machine's architecture and its syscall numbers by name. */
export function syscallTable(): { arch: string; syscalls: Record<string, number> } {
  if (!syscallCache) {
    const t = JSON.parse(fs.readFileSync(distPath('runtime', 'syscalls.json'), 'utf8'));
    syscallCache = { arch: t.arch, syscalls: { ...NEWER_SYSCALLS, ...t.syscalls } };
  }
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

const JA = 0x05;
const MAX_JUMP = 255;

/**
 * Resolves BLOCK's label jumps into the 8-bit relative offsets of classic BPF. Every label
 * a block jumps to is inside it, so blocks can then be placed anywhere.
 */
function resolveLabels(block: Insn[]): Insn[] {
  const at = new Map<string, number>();
  block.forEach((insn, i) => insn.label && at.set(insn.label, i));
  return block.map((insn, i) => {
    const rel = (j: string | number | undefined): number => {
      if (j === undefined || typeof j === 'number') return j ?? 0;
      const d = at.get(j)! - (i + 1);
      if (d < 0 || d > MAX_JUMP) {
        throw new BerthError('SECCOMP_TOO_LARGE', 'the seccomp profile compiles to a jump longer than BPF allows', {
          hint: 'split rules with many argument conditions',
        });
      }
      return d;
    };
    return { code: insn.code, k: insn.k, jt: rel(insn.jt), jf: rel(insn.jf) };
  });
}

/** A conditional jump (true: skip SKIP instructions), with an extra JA when SKIP is too far. */
function jumpIfTrue(code: number, k: number, skip: number): Insn[] {
  if (skip <= MAX_JUMP) return [{ code, k, jt: skip, jf: 0 }];
  return [{ code, k, jt: 0, jf: 1 }, { code: JA, k: skip }];
}

/**
 * A binary search over the syscall numbers in NRS (sorted) with the accumulator holding
 * the number: JGE splits down to a few JEQs, each followed by that syscall's block. A
 * syscall in no block falls to DEFAULTRET. About log2(n) + 4 comparisons for any syscall,
 * where a list costs one per rule before it.
 */
function searchTree(nrs: number[], blocks: Map<number, Insn[]>, defaultRet: number): Insn[] {
  if (nrs.length <= 4) {
    const out: Insn[] = [];
    for (const nr of nrs) {
      const block = blocks.get(nr)!;
      // Not this syscall: skip its block.
      if (block.length <= MAX_JUMP) out.push({ code: JEQ_K, k: nr, jt: 0, jf: block.length });
      else out.push({ code: JEQ_K, k: nr, jt: 1, jf: 0 }, { code: JA, k: block.length });
      out.push(...block);
    }
    out.push({ code: RET_K, k: defaultRet });
    return out;
  }
  const mid = nrs.length >> 1;
  const left = searchTree(nrs.slice(0, mid), blocks, defaultRet);
  const right = searchTree(nrs.slice(mid), blocks, defaultRet);
  return [...jumpIfTrue(JGE_K, nrs[mid], left.length), ...left, ...right];
}

function encode(prog: Insn[]): Buffer {
  if (prog.length > 4096) {
    throw new BerthError('SECCOMP_TOO_LARGE', `the seccomp profile compiles to ${prog.length} instructions; the kernel takes 4096`);
  }
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(Number(insn.jt ?? 0), i * 8 + 2);
    buf.writeUInt8(Number(insn.jf ?? 0), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}

/**
 * Compiles SC to a struct sock_filter array. Rules keep their order per syscall: the first
 * whose argument conditions hold decides; none holding means the default action.
 * @throws BerthError CONFIG_UNSUPPORTED, CONFIG_SCHEMA, SECCOMP_TOO_LARGE
 */
export function compileSeccomp(sc: Seccomp): Buffer {
  // The last profile compiled, by its JSON: bin/berth's start-up snapshot compiles the
  // default profile at build time, so most runs find it here (compiling it costs 5-20 ms).
  const key = JSON.stringify(sc);
  if (lastCompiled?.key === key) return Buffer.from(lastCompiled.bpf);
  const bpf = compileUncached(sc);
  lastCompiled = { key, bpf: Buffer.from(bpf) };
  return bpf;
}

let lastCompiled: { key: string; bpf: Buffer } | undefined;

function compileUncached(sc: Seccomp): Buffer {
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

  // Each syscall's rules, in profile order, as one block ending in the default action.
  const rules = new Map<number, Insn[]>();
  const decided = new Set<number>();
  (sc.syscalls ?? []).forEach((rule, ri) => {
    const ret = action(rule.action, rule.errnoRet, sc.defaultErrnoRet, `linux.seccomp.syscalls[${ri}].action`);
    for (const a of rule.args ?? []) {
      if (a.index < 0 || a.index > 5) {
        throw new BerthError('CONFIG_SCHEMA', `seccomp argument index ${a.index} is out of range 0-5`);
      }
      // 2^64 is what JSON.parse makes of 18446744073709551615: compiled, it would be 0.
      for (const v of [a.value, a.valueTwo ?? 0]) {
        if (!Number.isInteger(v) || v < 0 || BigInt(v) > 0xffffffffffffffffn) {
          throw new BerthError('CONFIG_SCHEMA', `seccomp argument value ${v} is not a 64-bit unsigned integer`, {
            context: { field: `linux.seccomp.syscalls[${ri}].args` },
            hint: 'JSON numbers above 2^53 are rounded: 18446744073709551615 reads as 2^64',
          });
        }
      }
    }
    for (const name of rule.names) {
      const nr = syscalls[name];
      if (nr === undefined) continue; // not on this architecture, as libseccomp skips it
      if (decided.has(nr)) continue; // an earlier rule without conditions always wins
      if (!rule.args?.length) decided.add(nr);
      const block = rules.get(nr) ?? [];
      rules.set(nr, block);
      const next = uniq();
      for (const a of rule.args ?? []) block.push(...compare(a.index, a.op, BigInt(a.value), BigInt(a.valueTwo ?? 0), next, uniq));
      block.push({ code: RET_K, k: ret }, { code: JEQ_K, k: 0, jt: 0, jf: 0, label: next });
    }
  });
  const blocks = new Map<number, Insn[]>();
  for (const [nr, block] of rules) blocks.set(nr, resolveLabels([...block, { code: RET_K, k: defaultRet }]));

  const prog: Insn[] = [
    { code: LD_W_ABS, k: 4 }, { code: JEQ_K, k: auditArch, jt: 1, jf: 0 }, { code: RET_K, k: RET.KILL_PROCESS },
    { code: LD_W_ABS, k: 0 },
  ];
  // x32 numbers (bit 30) are another ABI: killed, as libseccomp's bad-arch action. -1 is
  // what a tracer leaves when it skips a syscall: the rules (the default) decide, as there.
  if (arch === 'x86_64') {
    prog.push({ code: JGE_K, k: X32_SYSCALL_BIT, jt: 0, jf: 2 }, { code: JEQ_K, k: 0xffffffff, jt: 1, jf: 0 },
      { code: RET_K, k: RET.KILL_PROCESS });
  }
  prog.push(...searchTree([...blocks.keys()].sort((a, b) => a - b), blocks, defaultRet));
  return encode(prog);
}
