// Output helpers shared by bin/berth's commands: plain writes to stdout, Docker-style
// relative times and sizes, and borderless tables (cli-table3). Only cli/ prints.

export function print(s: string): void {
  process.stdout.write(s);
}

export function ago(iso: string): string {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return 'Less than a minute ago';
  for (const [n, unit] of [[86400 * 365, 'year'], [86400 * 30, 'month'], [86400 * 7, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']] as const) {
    if (s >= n) {
      const k = Math.floor(s / n);
      return `${k} ${unit}${k > 1 ? 's' : ''} ago`;
    }
  }
  return iso;
}

export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i ? v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) : v}${units[i]}`;
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

