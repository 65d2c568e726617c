// `berth stats [--no-stream] [--format ...] [CONTAINER...]`: CPU, memory, network, block
// I/O and processes of running containers, as Docker's table (engine/stats.ts reads them).
// Parses and prints only. Test: test/integration/container-ops.test.ts.
import type { Command } from 'commander';
import { BerthError } from '../../common/errors';
import { listContainers, resolveContainer } from '../../engine/lifecycle';
import { containerStats, type ContainerStats } from '../../engine/stats';
import { binarySize, humanSize, print, table } from '../output';
import { renderRows } from '../template';
import type { CliContext } from '.';

/** The fields of Docker's stats --format. */
function row(s: ContainerStats, trunc: boolean): Record<string, string> {
  return {
    ID: trunc ? s.id.slice(0, 12) : s.id, Container: trunc ? s.id.slice(0, 12) : s.id, Name: s.name,
    CPUPerc: `${s.cpuPercent.toFixed(2)}%`, MemUsage: `${binarySize(s.memUsage)} / ${binarySize(s.memLimit)}`,
    MemPerc: `${s.memPercent.toFixed(2)}%`, NetIO: `${humanSize(s.netRx)} / ${humanSize(s.netTx)}`,
    BlockIO: `${humanSize(s.blockRead)} / ${humanSize(s.blockWrite)}`, PIDs: String(s.pids),
  };
}

const HEADERS = {
  ID: 'CONTAINER ID', Container: 'CONTAINER', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

export function register(program: Command, ctx: CliContext): void {
  program.command('stats [containers...]').description('show what running containers use (CPU, memory, network, block I/O, processes)')
    .option('--no-stream', 'print one sample and exit')
    .option('--no-trunc', 'do not shorten ids')
    .option('--format <format>', 'table, json, or a Go template: \'{{.Name}} {{.CPUPerc}}\'', 'table')
    .action(async (refs: string[], o: { stream: boolean; trunc: boolean; format: string }) => {
      const root = ctx.stores().root;
      const targets = async () => {
        if (!refs.length) return (await listContainers(root, ctx.logger())).filter((c) => c.state.status === 'running' && c.state.pid > 0);
        const out = [];
        for (const ref of refs) {
          const c = await resolveContainer(root, ref, ctx.logger());
          if (c.state.status !== 'running' || !(c.state.pid > 0)) {
            throw new BerthError('CONTAINER_NOT_RUNNING', `container "${c.name}" is not running`, { hint: `start it: berth start ${c.name}` });
          }
          out.push(c);
        }
        return out;
      };
      const render = (stats: ContainerStats[]): string => {
        const rows = stats.map((s) => row(s, o.trunc));
        if (o.format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
        const custom = renderRows(o.format, rows, HEADERS);
        if (custom !== undefined) return custom;
        return table(['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
          rows.map((r) => [r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs]));
      };
      // One sample over half a second with --no-stream; else a new one every second, the
      // screen cleared before each on a terminal, until Ctrl-C (or every container is gone).
      for (;;) {
        const recs = await targets();
        const stats = await containerStats(recs.map((c) => [c, c.state.pid]), o.stream ? 1000 : 500);
        if (!o.stream) return print(render(stats));
        print(`${process.stdout.isTTY ? '\x1b[2J\x1b[H' : ''}${render(stats)}`);
        if (refs.length && !stats.length) return;
      }
    });
}
