// Pull progress as users see it: a bar per layer on a terminal (cli-progress), one line
// per finished blob otherwise, nothing with --quiet. Only cli/ prints.
import type { PullProgress } from '../image/pull';

export interface ProgressView {
  update(e: PullProgress): void;
  stop(): void;
}

const short = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function progressView(quiet: boolean): ProgressView {
  if (quiet) return { update: () => undefined, stop: () => undefined };
  if (!process.stdout.isTTY) {
    const said = new Set<string>();
    return {
      update: (e) => {
        if ((e.status === 'done' || e.status === 'exists') && !said.has(e.digest)) {
          said.add(e.digest);
          process.stdout.write(`${e.kind} ${short(e.digest)}: ${e.status === 'exists' ? 'already stored' : `${mb(e.total)} done`}\n`);
        } else if (e.status === 'retrying') {
          process.stdout.write(`${e.kind} ${short(e.digest)}: retrying\n`);
        }
      },
      stop: () => undefined,
    };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cliProgress = require('cli-progress') as typeof import('cli-progress');
  const multi = new cliProgress.MultiBar({
    format: '{name} [{bar}] {status} {value_mb}/{total_mb}', hideCursor: true, clearOnComplete: false,
    barsize: 30, stopOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, ReturnType<typeof multi.create>>();
  return {
    update: (e) => {
      if (e.kind !== 'layer') return;
      let bar = bars.get(e.digest);
      const payload = { name: short(e.digest), status: e.status.padEnd(11), value_mb: mb(e.bytes), total_mb: mb(e.total) };
      if (!bar) {
        bar = multi.create(e.total || 1, 0, payload);
        bars.set(e.digest, bar);
      }
      bar.update(e.status === 'exists' || e.status === 'done' ? e.total || 1 : e.bytes, payload);
    },
    stop: () => multi.stop(),
  };
}
