// Signal names and numbers on Linux x86_64/arm64, for `kill` and exit statuses.
import { BerthError } from './errors';

const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10,
  SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19,
  TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28,
  IO: 29, POLL: 29, PWR: 30, SYS: 31,
};
const SIGRTMIN = 34;
const SIGRTMAX = 64;

/**
 * Parses "TERM", "SIGTERM", "sigterm", "15", "RTMIN+3" into a signal number.
 * @throws BerthError SIGNAL_UNKNOWN
 */
export function parseSignal(input: string): number {
  const s = input.trim().toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= SIGRTMAX) return n;
  } else if (s in SIGNALS) {
    return SIGNALS[s];
  } else {
    const rt = /^RT(MIN|MAX)([+-]\d+)?$/.exec(s);
    if (rt) {
      const n = (rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
      if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
    }
  }
  throw new BerthError('SIGNAL_UNKNOWN', `unknown signal "${input}"`, {
    hint: 'use a name such as TERM, KILL or HUP, or a number from 1 to 64',
  });
}

export function signalName(n: number): string {
  for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return `SIG${name}`;
  return `SIG${n}`;
}
