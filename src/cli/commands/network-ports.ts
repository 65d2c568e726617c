// `berth port CONTAINER [PORT[/PROTO]]`: a container's published ports, as Docker prints
// them, from the network recorded in its record (network/ports.ts formats them). Parses
// and prints only.
import type { Command } from 'commander';
import { BerthError } from '../../common/errors';
import { resolveContainer } from '../../engine/lifecycle';
import { formatPort } from '../../network';
import { print } from '../output';
import type { CliContext } from '.';

export function register(program: Command, ctx: CliContext): void {
  program.command('port <container> [port]').description('list a container\'s published ports, or the host address of one')
    .action(async (ref: string, port: string | undefined) => {
      const rec = await resolveContainer(ctx.stores().root, ref, ctx.logger());
      // An exited container holds no ports (its network is gone), as Docker shows it.
      const ports = rec.network?.ports ?? [];
      if (port === undefined) return print(ports.map((p) => `${formatPort(p)}\n`).join(''));
      const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(port);
      if (!m) throw new BerthError('USAGE', `"${port}" is not a port`, { hint: 'give PORT or PORT/tcp, PORT/udp' });
      const proto = m[2] ?? 'tcp';
      const hits = ports.filter((p) => p.containerPort === Number(m[1]) && p.protocol === proto);
      if (!hits.length) {
        throw new BerthError('NETWORK_PORT_NOT_PUBLISHED', `no public port "${m[1]}/${proto}" is published for container "${rec.name}"`, {
          context: { containerId: rec.id }, hint: `list its ports with \`berth port ${rec.name}\``,
        });
      }
      print(hits.map((p) => `${formatPort(p).split(' -> ')[1]}\n`).join(''));
    });
}
