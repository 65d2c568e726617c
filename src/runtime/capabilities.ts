// Capability names (capabilities(7)) to bit numbers, for the five sets in config.json.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';

export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/**
 * The 64-bit mask for a list of names.
 * @throws BerthError CONFIG_UNKNOWN_CAPABILITY
 */
export function capMask(names: string[] | undefined, field: string): bigint {
  let mask = 0n;
  for (const name of names ?? []) {
    const i = CAPABILITIES.indexOf(name.toUpperCase());
    if (i < 0) {
      throw new BerthError('CONFIG_UNKNOWN_CAPABILITY', `unknown capability "${name}" in ${field}`, {
        context: { field }, hint: 'capability names look like CAP_NET_ADMIN (see capabilities(7))',
      });
    }
    mask |= 1n << BigInt(i);
  }
  return mask;
}

/** The default set for `berth-runtime spec`, the same as runc's and Docker's. */
export const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The capabilities this process may hand on (CapBnd in /proc/self/status), by name. */
export function hostBoundingSet(): Set<string> {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    const mask = BigInt(`0x${m![1]}`);
    return new Set(CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n));
  } catch {
    return new Set(CAPABILITIES);
  }
}
