// The one error family of berth (STYLE.md "Errors"). Every layer throws BerthError with a
// stable SCREAMING_SNAKE code; only cli/ renders it, once, through report-error.ts.
import * as os from 'node:os';

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

/**
 * Node's fs errors carry code/syscall/path; keep them as context when wrapping, and say
 * what went wrong once, at the end of MESSAGE ("read "x": no such file or directory").
 */
export function wrapSystemError(code: string, message: string, err: unknown, hint?: string): BerthError {
  const e = err as NodeJS.ErrnoException;
  const why = e?.code && typeof e.errno === 'number' ? errnoText(-e.errno).replace(/ \(E[A-Z]+\)$/, '')
    : e instanceof BerthError ? '' : (e?.message ?? '');
  return new BerthError(code, why ? `${message}: ${why}` : message, {
    cause: err,
    hint,
    context: { path: e?.path, syscall: e?.syscall, errno: typeof e?.errno === 'number' ? -e.errno : undefined },
  });
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException)?.code === code;
}

const ERRNO_TEXT: Record<string, string> = {
  EPERM: 'operation not permitted', ENOENT: 'no such file or directory', EACCES: 'permission denied',
  EEXIST: 'file exists', ENOTDIR: 'not a directory', EINVAL: 'invalid argument', EBUSY: 'device or resource busy',
  ENOSPC: 'no space left on device', EXDEV: 'path escapes the root filesystem', ELOOP: 'too many levels of symbolic links',
  ENODEV: 'no such device', ENOMEM: 'cannot allocate memory', EAGAIN: 'resource temporarily unavailable',
  ETIMEDOUT: 'timed out', ENAMETOOLONG: 'file name too long', EROFS: 'read-only file system', ENOEXEC: 'exec format error',
  ECONNREFUSED: 'connection refused', ENOSYS: 'function not implemented', EPIPE: 'broken pipe',
};

/** "no such file or directory (ENOENT)" for errno 2; "" for 0. */
export function errnoText(errno: number): string {
  if (!errno) return '';
  const name = Object.entries(os.constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
  return `${ERRNO_TEXT[name] ?? name} (${name})`;
}

