// The one place that turns an error into what the user reads (STYLE.md "Errors"): the
// message on the first line, then the hint. A non-BerthError is a bug: print its stack.
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';

export function reportError(prog: string, err: unknown, log?: Logger): number {
  if (err instanceof BerthError) {
    let text = `${prog}: ${err.message}\n`;
    if (err.hint) text += `hint: ${err.hint}\n`;
    process.stderr.write(text);
    if (log?.toFile) log.error(err.message, { code: err.code, ...err.context });
    return err.exitCode ?? 1;
  }
  const e = err as Error;
  process.stderr.write(`${prog}: internal error: ${e?.stack ?? String(err)}\n` +
    'This is a bug in berth; please report it with the command you ran.\n');
  if (log?.toFile) log.error(`internal error: ${e?.message ?? String(err)}`);
  return 1;
}
