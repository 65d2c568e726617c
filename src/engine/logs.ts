// `berth logs`: reads a detached container's CRI-format log (<dir>/ctr.log, written by
// native/monitor: "<RFC3339Nano> <stdout|stderr> <F|P> <text>"), optionally following it
// until the container exits. Hands records to cli/, which prints them. Node host process.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { ContainerStore } from './containers';
import { isActive, isMonitorAlive, logFile, readExit, resolveContainer } from './lifecycle';

export interface LogRecord {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 with nanoseconds, as the monitor wrote it. */
  time: string;
  text: string;
  /** F: the text ends a line; P: the line goes on in the next record of the stream. */
  full: boolean;
  /** The first record of its line (where -t puts the timestamp). */
  lineStart: boolean;
}

export interface LogOptions {
  follow: boolean;
  /** Only the last N lines of what is there already; undefined for all. */
  tail?: number;
  /** Only records at or after this time (ms since the epoch). */
  since?: number;
  /** Only records before this time (ms since the epoch). */
  until?: number;
  onRecord: (r: LogRecord) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Docker's --since: an RFC 3339 time, a Unix time in seconds, or a duration before now
 * ("90s", "10m", "1h30m").
 * @throws BerthError USAGE
 */
export function parseSince(v: string, now = Date.now(), flag = '--since'): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const dur = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(v);
  if (dur && v) return now - ((Number(dur[1] ?? 0) * 60 + Number(dur[2] ?? 0)) * 60 + Number(dur[3] ?? 0)) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new BerthError('USAGE', `${flag} "${v}" is not a time`, { hint: 'use 2024-01-02T15:04:05Z, a Unix time, or a duration such as 10m' });
  }
  return t;
}

/** Parses complete log lines; malformed ones (a log cut by a full disk) are skipped. */
export class LogParser {
  private open = { stdout: false, stderr: false };

  parse(text: string): LogRecord[] {
    const out: LogRecord[] = [];
    for (const line of text.split('\n')) {
      const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
      if (!m) continue;
      const stream = m[2] as 'stdout' | 'stderr';
      const full = m[3] === 'F';
      out.push({ stream, time: m[1], text: m[4], full, lineStart: !this.open[stream] });
      this.open[stream] = !full;
    }
    return out;
  }
}

/** The records of the last N lines (a line is its P records and the F one ending it). */
export function tailRecords(recs: LogRecord[], n: number): LogRecord[] {
  if (n <= 0) return [];
  let lines = 0;
  for (let i = recs.length - 1; i >= 0; i--) {
    if (recs[i].lineStart && ++lines === n) return recs.slice(i);
  }
  return recs;
}

/**
 * Hands the container's log records to OPTS.onRecord; with follow, goes on until the
 * container has exited and its log is read to the end.
 * @throws BerthError CONTAINER_NOT_FOUND, LOGS_UNAVAILABLE (a foreground container)
 */
export async function readLogs(root: string, ref: string, opts: LogOptions, log: Logger): Promise<void> {
  const cs = new ContainerStore(root);
  const rec = await resolveContainer(root, ref, log);
  if (!rec.monitor) {
    throw new BerthError('LOGS_UNAVAILABLE', `container "${rec.name}" ran in the foreground and has no log`, {
      context: { containerId: rec.id }, hint: 'only containers started with -d (or create + start) keep a log',
    });
  }
  const file = logFile(cs, rec.id);
  const parser = new LogParser();
  let offset = 0;
  let rest = '';
  const readMore = (): LogRecord[] => {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return [];
    }
    try {
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
        offset += n;
      }
      const text = rest + Buffer.concat(chunks).toString('utf8');
      const nl = text.lastIndexOf('\n');
      rest = text.slice(nl + 1);
      return nl < 0 ? [] : parser.parse(text.slice(0, nl));
    } finally {
      fs.closeSync(fd);
    }
  };
  const emit = (recs: LogRecord[]) => {
    for (const r of recs) {
      const t = Date.parse(r.time);
      if ((opts.since === undefined || t >= opts.since) && (opts.until === undefined || t < opts.until)) opts.onRecord(r);
    }
  };

  let finished = !isActive(rec) || !!readExit(cs, rec.id);
  let recs = readMore();
  if (opts.tail !== undefined) recs = tailRecords(recs, opts.tail);
  emit(recs);
  if (!opts.follow) return;
  while (!finished) {
    await sleep(100);
    // Looked at before reading: the monitor writes all output before the exit file.
    finished = !!readExit(cs, rec.id) || !isMonitorAlive(rec) || !fs.existsSync(cs.path(rec.id));
    emit(readMore());
  }
}
