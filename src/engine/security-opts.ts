// `--security-opt` for `berth run`/`create`, and Docker's JSON seccomp profile format
// turned into config.json's linux.seccomp for one container (its capabilities, this
// machine's architecture and kernel). Node host process; engine/spec.ts calls it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { BerthError } from '../common/errors';
import type { Seccomp } from '../runtime/spec';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp-profile';

/** A rule's condition on capabilities, architectures (Docker's names) or the kernel. */
export interface DockerRuleFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface DockerSyscallRule {
  names?: string[];
  /** The old single-name form. */
  name?: string;
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  comment?: string;
  includes?: DockerRuleFilter;
  excludes?: DockerRuleFilter;
}

/** A profile as `docker run --security-opt seccomp=FILE` takes it. */
export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[] | null;
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: DockerSyscallRule[] | null;
}

/** What --security-opt asked for. */
export interface SecurityOptions {
  /** 'default', 'unconfined', or the profile read from a file. */
  seccomp: 'default' | 'unconfined' | { file: string; profile: DockerSeccompProfile };
  noNewPrivileges: boolean;
}

/** This machine as profiles name it: its architecture's names and its kernel version. */
export interface HostFacts {
  arches: string[];
  kernel: [number, number];
}

export function hostFacts(): HostFacts {
  const arches = process.arch === 'x64' ? ['amd64', 'x86_64', 'SCMP_ARCH_X86_64']
    : process.arch === 'arm64' ? ['arm64', 'aarch64', 'SCMP_ARCH_AARCH64'] : [process.arch];
  return { arches, kernel: parseKernel(os.release()) ?? [0, 0] };
}

function parseKernel(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Reads a Docker-format seccomp profile.
 * @throws BerthError SECCOMP_PROFILE_INVALID
 */
export function readSeccompProfile(file: string): DockerSeccompProfile {
  let profile: DockerSeccompProfile;
  let text: string;
  try {
    text = readProfileText(file);
    profile = JSON.parse(text);
  } catch (err) {
    throw new BerthError('SECCOMP_PROFILE_INVALID', `read seccomp profile "${file}": ${(err as Error).message}`, {
      hint: 'give a JSON profile in Docker\'s format (defaultAction, syscalls[]), or seccomp=unconfined',
    });
  }
  const bad = (what: string) => new BerthError('SECCOMP_PROFILE_INVALID', `seccomp profile "${file}": ${what}`, {
    hint: 'the format is Docker\'s: {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [...], "action": ...}]}',
  });
  if (!profile || typeof profile !== 'object' || typeof profile.defaultAction !== 'string') throw bad('defaultAction is missing');
  if (profile.architectures?.length && profile.archMap?.length) throw bad('give either architectures or archMap, not both');
  if (profile.syscalls != null && !Array.isArray(profile.syscalls)) throw bad('syscalls is not a list');
  for (const [i, r] of (profile.syscalls ?? []).entries()) {
    if (typeof r?.action !== 'string') throw bad(`syscalls[${i}] has no action`);
    if (!r.names?.length && !r.name) throw bad(`syscalls[${i}] names no syscall`);
    // JSON numbers are doubles: 18446744073709551615 (-1 as a u64) parses as 2^64, which
    // would compile to a rule on 0. A value above 2^53 must be in the file exactly as read.
    for (const [j, a] of (Array.isArray(r.args) ? r.args : []).entries()) {
      for (const key of ['value', 'valueTwo'] as const) {
        const v = a?.[key];
        if (typeof v !== 'number' || Number.isSafeInteger(v) || !Number.isInteger(v)) continue;
        if (v > 2 ** 64 - 1 || !new RegExp(`(^|[^0-9.])${BigInt(v)}($|[^0-9.eE])`).test(text)) {
          throw bad(`syscalls[${i}].args[${j}].${key} is not a 64-bit value JSON can carry exactly`);
        }
      }
    }
    // ruleApplies reads these: a wrong type would be a crash there, not a message.
    for (const key of ['includes', 'excludes'] as const) {
      const f = r[key];
      if (f == null) continue;
      const strings = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
      if (typeof f !== 'object' || !strings(f.caps) || !strings(f.arches)
        || (f.minKernel !== undefined && typeof f.minKernel !== 'string')) {
        throw bad(`syscalls[${i}].${key}: caps and arches must be lists of strings, minKernel a string`);
      }
    }
  }
  return profile;
}

/** The largest profile read; Docker's default is about 20 KiB. */
const MAX_PROFILE_BYTES = 4 << 20;

/**
 * FILE's text, if FILE is a regular file of at most MAX_PROFILE_BYTES: a FIFO, a device
 * (/dev/zero) or a huge file would otherwise block or exhaust memory while reading.
 */
function readProfileText(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_PROFILE_BYTES) throw new Error(`${st.size} bytes, more than the ${MAX_PROFILE_BYTES} allowed`);
    const buf = Buffer.alloc(MAX_PROFILE_BYTES + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = fs.readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_PROFILE_BYTES) throw new Error(`more than the ${MAX_PROFILE_BYTES} bytes allowed`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Parses the --security-opt flags: seccomp=unconfined|FILE, no-new-privileges[=true|false],
 * and label=disable / apparmor=unconfined, which ask for what berth does anyway (it applies
 * no LSM profile). Docker's older KEY:VALUE form is accepted too.
 * @throws BerthError USAGE, SECCOMP_PROFILE_INVALID
 */
export function parseSecurityOpts(flags: string[]): SecurityOptions {
  const out: SecurityOptions = { seccomp: 'default', noNewPrivileges: false };
  for (const flag of flags) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(flag);
    const key = m?.[1];
    const value = m?.[2];
    if (key === 'seccomp' && value) {
      out.seccomp = value === 'unconfined' ? 'unconfined' : { file: value, profile: readSeccompProfile(value) };
    } else if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) {
      out.noNewPrivileges = value !== 'false';
    } else if ((key === 'label' && value === 'disable') || (key === 'apparmor' && value === 'unconfined')) {
      // Nothing to turn off: berth applies no SELinux label and no AppArmor profile.
    } else if (key === 'label' || key === 'apparmor') {
      throw new BerthError('USAGE', `--security-opt "${flag}": berth does not apply SELinux labels or AppArmor profiles`, {
        hint: 'only label=disable and apparmor=unconfined are accepted (they change nothing); see SECURITY.md',
      });
    } else {
      throw new BerthError('USAGE', `--security-opt "${flag}" is not a security option berth knows`, {
        hint: 'use seccomp=unconfined, seccomp=PROFILE.json, no-new-privileges, label=disable or apparmor=unconfined',
      });
    }
  }
  return out;
}

function ruleApplies(r: DockerSyscallRule, caps: Set<string>, host: HostFacts): boolean {
  const inc = r.includes ?? {};
  const exc = r.excludes ?? {};
  const atLeast = (v: string) => {
    const k = parseKernel(v);
    return !!k && (host.kernel[0] > k[0] || (host.kernel[0] === k[0] && host.kernel[1] >= k[1]));
  };
  // Docker's rules: every included capability must be held, no excluded one may be.
  if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) return false;
  if (exc.caps?.some((c) => caps.has(c))) return false;
  if (inc.arches?.length && !inc.arches.some((a) => host.arches.includes(a))) return false;
  if (exc.arches?.some((a) => host.arches.includes(a))) return false;
  if (inc.minKernel && !atLeast(inc.minKernel)) return false;
  if (exc.minKernel && atLeast(exc.minKernel)) return false;
  return true;
}

/**
 * PROFILE for a container holding CAPS (bounding set), on HOST: config.json's linux.seccomp.
 * Rules whose includes/excludes do not match are left out, as Docker does.
 */
export function profileToOci(profile: DockerSeccompProfile, caps: string[], host = hostFacts()): Seccomp {
  const have = new Set(caps);
  const architectures = profile.archMap?.length
    ? profile.archMap.flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])])
    : profile.architectures;
  const syscalls = (profile.syscalls ?? []).filter((r) => ruleApplies(r, have, host)).map((r) => ({
    names: r.names?.length ? r.names : [r.name!],
    action: r.action,
    ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
    ...(r.args?.length ? { args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) } : {}),
  }));
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    ...(architectures?.length ? { architectures } : {}),
    ...(profile.flags?.length ? { flags: profile.flags } : {}),
    ...(profile.listenerPath ? { listenerPath: profile.listenerPath } : {}),
    ...(profile.listenerMetadata ? { listenerMetadata: profile.listenerMetadata } : {}),
    syscalls,
  };
}

/** The linux.seccomp a container gets: none with --privileged or seccomp=unconfined. */
export function containerSeccomp(sec: SecurityOptions, caps: string[], privileged: boolean): Seccomp | undefined {
  if (privileged || sec.seccomp === 'unconfined') return undefined;
  return profileToOci(sec.seccomp === 'default' ? DEFAULT_SECCOMP_PROFILE : sec.seccomp.profile, caps);
}
