// The one error family of berth (STYLE.md "Errors"). Every layer throws BerthError with a
// stable SCREAMING_SNAKE code; only cli/ renders it, once, through report-error.ts.

export interface ErrorContext {
  containerId?: string;
  path?: string;
  syscall?: string;
  errno?: number;
  stage?: string;
  field?: string;
}

export interface BerthErrorOptions {
  cause?: unknown;
  hint?: string;
  context?: ErrorContext;
  /** Exit status the CLI should use; defaults to 1 (berth-runtime) or 125 (berth). */
  exitCode?: number;
}

export class BerthError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly context: ErrorContext;
  readonly exitCode?: number;

  constructor(code: string, message: string, options: BerthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.code = code;
    this.hint = options.hint;
    this.context = options.context ?? {};
    this.exitCode = options.exitCode;
  }
}

/** Node's fs errors carry code/syscall/path; keep them as context when wrapping. */
export function wrapSystemError(code: string, message: string, err: unknown, hint?: string): BerthError {
  const e = err as NodeJS.ErrnoException;
  return new BerthError(code, message, {
    cause: err,
    hint,
    context: { path: e?.path, syscall: e?.syscall, errno: typeof e?.errno === 'number' ? -e.errno : undefined },
  });
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException)?.code === code;
}
