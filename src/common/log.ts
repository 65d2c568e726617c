// The leveled logger shared by every layer (STYLE.md "Logging"). Logs go to stderr or to
// the --log file, as text or JSON lines; stdout stays for command output.
import * as fs from 'node:fs';

export type Level = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface LoggerOptions {
  level?: Level;
  file?: string;
  format?: 'text' | 'json';
}

export class Logger {
  level: Level;
  private fd: number;
  private format: 'text' | 'json';

  constructor(opts: LoggerOptions = {}) {
    this.level = opts.level ?? 'warn';
    this.format = opts.format ?? 'text';
    this.fd = 2;
    if (opts.file) {
      try {
        this.fd = fs.openSync(opts.file, 'a', 0o600);
      } catch {
        this.fd = 2;
      }
    }
  }

  get levelNumber(): number {
    return ORDER[this.level];
  }

  enabled(level: Level): boolean {
    return ORDER[level] <= ORDER[this.level];
  }

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(level)) return;
    const time = new Date().toISOString();
    let line: string;
    if (this.format === 'json') {
      line = JSON.stringify({ level, msg, time, ...fields }) + '\n';
    } else {
      const kv = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      line = `${time} ${level}: ${msg}${kv ? ' ' + kv : ''}\n`;
    }
    try {
      fs.writeSync(this.fd, line);
    } catch {
      // A log that cannot be written must not fail the command.
    }
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('warn', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }
  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log('debug', msg, fields);
  }

  /** True when errors should be written to the log file too (not only stderr). */
  get toFile(): boolean {
    return this.fd !== 2;
  }
}
