// Output helpers shared by bin/berth's commands: plain writes to stdout, Docker-style
// relative times and sizes, and borderless tables (cli-table3). Only cli/ prints.

export function print(s: string): void {
  process.stdout.write(s);
}

/** How long ago ISO was, in Docker's words: "Less than a second ago", "About a minute ago", "3 days ago". */
export function ago(iso: string | undefined): string {
  const t = Date.parse(iso ?? '');
  // An image's config may carry no time, or one that is not a date: Docker's N/A.
  return Number.isNaN(t) ? 'N/A' : `${humanDuration(Date.now() - t)} ago`;
}

/** A duration of MS milliseconds as Docker prints it ("5 seconds", "About an hour", "2 weeks"). */
export function humanDuration(ms: number): string {
  const secs = Math.floor(Math.max(0, ms) / 1000);
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (secs < 1) return 'Less than a second';
  if (secs < 60) return plural(secs, 'second');
  const mins = Math.floor(secs / 60);
  if (mins === 1) return 'About a minute';
  if (mins < 60) return plural(mins, 'minute');
  const hours = Math.round(secs / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return plural(hours, 'hour');
  if (hours < 24 * 14) return plural(Math.floor(hours / 24), 'day');
  if (hours < 24 * 60) return plural(Math.floor(hours / (24 * 7)), 'week');
  if (hours < 24 * 365 * 2) return plural(Math.floor(hours / (24 * 30)), 'month');
  return plural(Math.floor(hours / (24 * 365)), 'year');
}

/** N bytes in decimal units as Docker prints sizes: 1.98MB. */
export function humanSize(n: number): string {
  return scaled(n, 1000, ['B', 'kB', 'MB', 'GB', 'TB'], (v) => v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0));
}

/** N bytes in binary units as Docker prints memory: 1.5MiB. */
export function binarySize(n: number): string {
  return scaled(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'], (v) => v.toFixed(v < 10 ? 3 : v < 100 ? 2 : 1).replace(/\.?0+$/, ''));
}

function scaled(n: number, base: number, units: string[], fmt: (v: number) => string): string {
  let i = 0;
  let v = n;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${i ? fmt(v) : v}${units[i]}`;
}

export function table(head: string[], rows: string[][]): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Table = require('cli-table3') as typeof import('cli-table3');
  const t = new Table({
    head, style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 3 },
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '',
      'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '' },
  });
  t.push(...rows);
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n') + '\n';
}

