// `berth volume create|ls|inspect|rm|prune`: named volumes (engine/volumes.ts). Parses and
// prints only; removal holds the engine lock so it cannot race a container's cleanup.
import type { Command } from 'commander';
import { Option } from 'commander';
import { withEngineLock } from '../../engine/lifecycle';
import { VolumeStore } from '../../engine/volumes';
import { labelList, renderInspect, renderRows } from '../template';
import { print, table } from '../output';
import type { CliContext } from '.';

const collect = (v: string, acc: string[]) => [...acc, v];

function labelsOf(flags: string[]): Record<string, string> {
  return Object.fromEntries(flags.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
}

export function register(program: Command, ctx: CliContext): void {
  const volumes = () => new VolumeStore(ctx.stores().root);
  const volume = program.command('volume').description('manage volumes');

  volume.command('create [name]').description('create a volume (a random name when none is given)')
    .option('-l, --label <key=value>', 'set a label (repeatable)', collect, [])
    .action(async (name: string | undefined, o: { label: string[] }) => {
      const { vol } = await withEngineLock(ctx.stores().root, () => volumes().create(name, { labels: labelsOf(o.label) }));
      print(`${vol.Name}\n`);
    });

  volume.command('ls').alias('list').description('list volumes')
    .option('-q, --quiet', 'print only names')
    .option('-f, --filter <key=value>', 'dangling=true|false, name=N, label=K[=V] (repeatable)', collect, [])
    .option('--format <format>', 'table, json, or a Go template: \'{{.Name}} {{.Mountpoint}}\'', 'table')
    .action((o: { quiet?: boolean; filter: string[]; format: string }) => {
      const store = volumes();
      const list = store.list().filter((v) => o.filter.every((f) => {
        const [k, ...rest] = f.split('=');
        const val = rest.join('=');
        if (k === 'dangling') return (store.users(v.Name).length === 0) === (val !== 'false');
        if (k === 'name') return v.Name.includes(val);
        if (k === 'label') return val.includes('=') ? v.Labels[val.split('=')[0]] === val.slice(val.indexOf('=') + 1) : val in v.Labels;
        return false;
      }));
      if (o.quiet) return print(list.map((v) => `${v.Name}\n`).join(''));
      if (o.format === 'json') return print(JSON.stringify(list, null, 2) + '\n');
      const custom = renderRows(o.format, list.map((v) => ({
        Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Scope: 'local',
        Labels: labelList(v.Labels),
      })), { Name: 'VOLUME NAME', Driver: 'DRIVER', Mountpoint: 'MOUNTPOINT', Scope: 'SCOPE', Labels: 'LABELS' });
      if (custom !== undefined) return print(custom);
      print(table(['DRIVER', 'VOLUME NAME'], list.map((v) => [v.Driver, v.Name])));
    });

  volume.command('inspect <names...>').description('show volumes as JSON')
    .option('-f, --format <template>', 'print each through a Go template: \'{{.Mountpoint}}\'')
    .action((names: string[], o: { format?: string }) => {
      const store = volumes();
      const out = names.map((n) => {
        const { Anonymous: _anonymous, ...v } = store.resolve(n);
        return v;
      });
      print(renderInspect(out, o.format));
    });

  volume.command('rm <names...>').alias('remove').description('remove volumes no container uses')
    .option('-f, --force', 'ignore volumes that do not exist')
    .action(async (names: string[], o: { force?: boolean }) => {
      for (const n of names) {
        await withEngineLock(ctx.stores().root, () => volumes().remove(n, !!o.force));
        print(`${n}\n`);
      }
    });

  volume.command('prune').description('remove unused anonymous volumes (all unused ones with -a)')
    .option('-a, --all', 'remove unused named volumes too')
    .option('-f, --force', 'do not ask (berth never asks)')
    .action(async (o: { all?: boolean }) => {
      const removed = await withEngineLock(ctx.stores().root, () => volumes().prune(!!o.all));
      if (removed.length) print(`Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}\n`);
      print(`Total reclaimed volumes: ${removed.length}\n`);
    });
}
