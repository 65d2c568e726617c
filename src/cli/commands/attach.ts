// bin/berth attach (and start -a, through attachTerminal): the user's terminal on a
// detached container. Owns the terminal: raw mode while a -t container takes input, its
// size and SIGWINCH; the relay is engine/attach.ts. Tests: test/integration/attach.test.ts.
import type { Command } from 'commander';
import { AttachResult, attachContainer, parseDetachKeys } from '../../engine/attach';
import type { ContainerRecord } from '../../engine/containers';
import type { CliContext } from './index';

export interface AttachFlags {
  detachKeys?: string;
  /** commander's --no-stdin: false when given. */
  stdin?: boolean;
}

/**
 * Attaches this process's stdio to container REF; START (start -a) runs it once attached.
 * Returns the exit status berth should end with: the container's, or 1 after the detach
 * keys (Docker's, which also prints "read escape sequence").
 */
export async function attachTerminal(ctx: CliContext, ref: string, flags: AttachFlags,
  start?: () => Promise<unknown>, known?: { record: ContainerRecord; onConnected: () => void }): Promise<number> {
  const keys = parseDetachKeys(flags.detachKeys ?? 'ctrl-p,ctrl-q');
  const out = process.stdout;
  let raw = false;
  let usedStdin = false;
  let result: AttachResult;
  // A closed reader ends the attach (engine/attach.ts); an EPIPE reported after that must
  // not become an uncaught error with a stack trace.
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
  try {
    result = await attachContainer(ctx.stores().root, ref, {
      // process.stdin is only touched when asked for: opening it holds the terminal.
      get stdin() {
        if (flags.stdin === false) return undefined;
        usedStdin = true;
        return process.stdin;
      },
      stdout: out, stderr: process.stderr, detachKeys: keys,
      windowSize: () => (out.isTTY ? { rows: out.rows, cols: out.columns } : undefined),
      onResize: (cb) => {
        out.on('resize', cb);
        return () => out.off('resize', cb);
      },
      onConnected: ({ tty, stdin }) => {
        if (tty && stdin && process.stdin.isTTY) {
          process.stdin.setRawMode(true);
          raw = true;
        }
        known?.onConnected();
      },
      start, record: known?.record,
    }, ctx.logger());
  } finally {
    if (raw) process.stdin.setRawMode(false);
    if (usedStdin) {
      process.stdin.pause();
      process.stdin.destroy();
    }
  }
  if (result.detached && result.outputClosed) return 141; // as a shell shows a process killed by SIGPIPE
  if (result.detached) {
    process.stderr.write('read escape sequence\n');
    return 1;
  }
  return result.exitCode;
}

export function register(program: Command, ctx: CliContext): void {
  program.command('attach <container>')
    .description('connect this terminal to a running container\'s terminal or stdio (detach: ctrl-p ctrl-q)')
    .option('--detach-keys <keys>', 'the keys that detach, e.g. ctrl-p,ctrl-q (empty: none)', 'ctrl-p,ctrl-q')
    .option('--no-stdin', 'do not send this terminal\'s input to the container')
    .action(async (ref: string, o: AttachFlags) => {
      ctx.setResult(await attachTerminal(ctx, ref, o));
    });
}
