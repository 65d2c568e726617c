// `berth network create|ls|inspect|rm|connect|disconnect|prune`: bridge networks
// (network/networks.ts, engine/bridge-networks.ts). Parses and prints only.
import type { Command } from 'commander';
import { Option } from 'commander';
import { BerthError } from '../../common/errors';
import {
  connectNetwork, createNetwork, disconnectNetwork, networkUsers, pruneNetworks, removeNetwork,
} from '../../engine/bridge-networks';
import { NetworkRecord, NetworkStore, withNetworkLock } from '../../network/networks';
import { labelList, renderInspect, renderRows } from '../template';
import { print, table } from '../output';
import type { CliContext } from '.';

const collect = (v: string, acc: string[]) => [...acc, v];

function labelsOf(flags: string[]): Record<string, string> {
  return Object.fromEntries(flags.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, ''])));
}

/** Docker's `network inspect` shape, with the containers that hold an address on it. */
function inspectOf(store: NetworkStore, net: NetworkRecord): object {
  const leases = store.liveLeases(net.name).leases;
  return {
    Name: net.name, Id: net.id, Created: net.created, Driver: net.driver, Internal: net.internal,
    IPAM: { Driver: 'default', Config: [{ Subnet: net.subnet, Gateway: net.gateway }] },
    Options: { 'com.docker.network.bridge.name': net.bridge, 'berth.nftables.table': `ip ${net.table}` },
    Labels: net.labels,
    Containers: Object.fromEntries(Object.entries(leases).map(([ip, l]) => [l.containerId, {
      Name: l.name, MacAddress: l.mac, IPv4Address: `${ip}/${net.subnet.split('/')[1]}`,
    }])),
  };
}

/** `--filter` as `volume ls` reads it: name=, id=, driver=, label=K[=V], dangling=true|false. */
function matches(root: string, net: NetworkRecord, filters: string[]): boolean {
  return filters.every((f) => {
    const [k, ...rest] = f.split('=');
    const v = rest.join('=');
    if (k === 'name') return net.name.includes(v);
    if (k === 'id') return net.id.startsWith(v);
    if (k === 'driver') return net.driver === v;
    if (k === 'label') return v.includes('=') ? net.labels[v.split('=')[0]] === v.slice(v.indexOf('=') + 1) : v in net.labels;
    if (k === 'dangling') return (networkUsers(root, net.name).length === 0) === (v !== 'false');
    throw new BerthError('USAGE', `unknown filter "${k}"`, { hint: 'use name=, id=, driver=, label=K[=V] or dangling=true|false' });
  });
}

export function register(program: Command, ctx: CliContext): void {
  const root = () => ctx.stores().root;
  const network = program.command('network').description('manage bridge networks');

  network.command('create <name>').description('create a bridge network')
    .option('--subnet <cidr>', 'IPv4 subnet (default: the next free /24 of 10.213.0.0/16)')
    .option('--gateway <ip>', 'the bridge\'s address in the subnet (default: its first address)')
    .option('--internal', 'no traffic in or out but between its containers and the host')
    .option('-l, --label <key=value>', 'set a label (repeatable)', collect, [])
    .addOption(new Option('-d, --driver <driver>', 'network driver').choices(['bridge']).default('bridge'))
    .action(async (name: string, o: { subnet?: string; gateway?: string; internal?: boolean; label: string[] }) => {
      const net = await createNetwork(root(), name, { subnet: o.subnet, gateway: o.gateway, internal: o.internal, labels: labelsOf(o.label) });
      print(`${net.id}\n`);
    });

  network.command('ls').alias('list').description('list networks')
    .option('-q, --quiet', 'print only ids')
    .option('--no-trunc', 'print whole ids')
    .option('-f, --filter <key=value>', 'name=N, id=ID, driver=D, label=K[=V], dangling=true|false (repeatable)', collect, [])
    .option('--format <format>', 'table, json, or a Go template: \'{{.Name}} {{.Subnet}}\'', 'table')
    // Under the network lock: reading the leases drops stale ones from the file, and that
    // write must not race a run making a lease (networks.ts liveLeases).
    .action((o: { quiet?: boolean; trunc: boolean; filter: string[]; format: string }) => withNetworkLock(() => {
      const store = new NetworkStore(root());
      const list = store.list().filter((n) => matches(root(), n, o.filter));
      const id = (n: NetworkRecord) => (o.trunc ? n.id.slice(0, 12) : n.id);
      if (o.quiet) return print(list.map((n) => `${id(n)}\n`).join(''));
      if (o.format === 'json') return print(JSON.stringify(list.map((n) => inspectOf(store, n)), null, 2) + '\n');
      const custom = renderRows(o.format, list.map((n) => ({
        ID: id(n), Name: n.name, Driver: n.driver, Scope: 'local', Subnet: n.subnet, Gateway: n.gateway, Internal: String(!!n.internal),
        Labels: labelList(n.labels),
      })), { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', Subnet: 'SUBNET', Gateway: 'GATEWAY', Internal: 'INTERNAL', Labels: 'LABELS' });
      if (custom !== undefined) return print(custom);
      print(table(['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY'], list.map((n) => [id(n), n.name, n.driver, n.subnet, n.gateway])));
    }));

  network.command('inspect <names...>').description('show networks as JSON')
    .option('-f, --format <template>', 'print each through a Go template: \'{{range .IPAM.Config}}{{.Subnet}}{{end}}\'')
    .action((names: string[], o: { format?: string }) => withNetworkLock(() => {
      const store = new NetworkStore(root());
      const out = names.map((n) => inspectOf(store, store.get(n, false)));
      print(renderInspect(out, o.format));
    }));

  network.command('rm <names...>').alias('remove').description('remove networks no container uses')
    .action(async (names: string[]) => {
      for (const n of names) {
        await removeNetwork(root(), n);
        print(`${n}\n`);
      }
    });

  network.command('prune').description('remove every user-defined network no container uses')
    .option('-f, --force', 'do not ask (berth never asks)')
    .action(async () => {
      const gone = await pruneNetworks(root());
      if (gone.length) print(`Deleted Networks:\n${gone.map((n) => `${n}\n`).join('')}`);
    });

  network.command('connect <network> <container>').description('connect a container to a network (now if it runs, else at its next start)')
    .action(async (net: string, ctr: string) => {
      await connectNetwork(root(), net, ctr, ctx.logger());
    });

  network.command('disconnect <network> <container>').description('disconnect a container from a network')
    .option('-f, --force', 'accepted for Docker\'s sake')
    .action(async (net: string, ctr: string) => {
      await disconnectNetwork(root(), net, ctr, ctx.logger());
    });
}
