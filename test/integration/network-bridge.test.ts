// Bridge networks as users see them (`berth network ...`, `run --network NET`, `-p`):
// addresses, names between containers, the gateway, published ports on 127.0.0.1, port
// conflicts, cleanup after rm (veth, lease, nft rules, proxy), `network rm` while in use,
// concurrent runs, connect/disconnect, bad input. Traffic stays on loopback and on the
// bridges this test makes. Embedded busybox image, private --root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, berthSync, engineRoot, requires, sleep, waitFor } from '../helpers';
import { linkExists, networkRecords, removeContainersAndNetworks, tableExists } from './network-helpers';

const skip = requires('root') ?? (spawnSync('sh', ['-c', 'command -v nft && command -v ip']).status !== 0 ? 'needs nft and ip' : undefined);

// A /24 per run, outside berth's pool, so that a fixed --subnet does not meet a network
// another test run on this host made from the pool.
const octet = 100 + (process.pid % 100);
const SUBNET_A = `10.215.${octet}.0/24`;

const httpGet = (url: string): Promise<string> => new Promise((resolve, reject) => {
  const req = http.get(url, { timeout: 3000 }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve(body));
  });
  req.on('error', reject);
  req.on('timeout', () => req.destroy(new Error('timeout')));
});

/** Retries GET until it answers (a detached httpd needs a moment to listen). */
async function getWhenUp(url: string, ms = 10_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await httpGet(url);
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(100);
    }
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

const alive = (pid: number): boolean => {
  try {
    return !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** busybox httpd serving "NAME\n" on port 80. */
const httpd = (name: string) => ['sh', '-c', `mkdir /www && echo ${name} > /www/index.html && exec httpd -f -p 80 -h /www`];

describe('berth bridge networks', { skip, concurrency: 1 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]) => berthSync(root, args);
  const ok = (args: string[]): string => {
    const r = berth(args);
    assert.equal(r.status, 0, `berth ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const refused = (args: string[], re: RegExp): void => {
    const r = berth(args);
    assert.equal(r.status, 125, `berth ${args.join(' ')} should fail: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
  };
  const record = (name: string): any => {
    const id = fs.readFileSync(path.join(root, 'names', name), 'utf8');
    return JSON.parse(fs.readFileSync(path.join(root, 'containers', id, 'container.json'), 'utf8'));
  };
  const inspectNet = (name: string): any => JSON.parse(ok(['network', 'inspect', name]))[0];
  const nftRuleset = (): string => spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout;

  before(() => {
    ({ dir, root } = engineRoot('netbridge'));
  });

  after(async () => {
    // Whatever the CLI could not remove (a failed test) goes by hand, then counts as a failure.
    const left = removeContainersAndNetworks(root);
    await waitFor(() => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 10_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual({ left, mounts }, { left: [], mounts: [] });
  });

  it('network create, ls and inspect; bad input is refused and leaves nothing', () => {
    const id = ok(['network', 'create', '--subnet', SUBNET_A, '--label', 'team=blue', 'net-a']).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const n = inspectNet('net-a');
    assert.equal(n.Id, id);
    assert.deepEqual(n.IPAM.Config, [{ Subnet: SUBNET_A, Gateway: `10.215.${octet}.1` }]);
    assert.deepEqual(n.Labels, { team: 'blue' });
    const bridge = n.Options['com.docker.network.bridge.name'];
    assert.ok(bridge.length <= 15, bridge);
    const addrs = JSON.parse(spawnSync('ip', ['-j', 'addr', 'show', 'dev', bridge], { encoding: 'utf8' }).stdout);
    assert.equal(addrs[0].addr_info.find((a: any) => a.family === 'inet').local, `10.215.${octet}.1`);
    assert.ok(tableExists(n.Options['berth.nftables.table'].split(' ')[1]));

    assert.match(ok(['network', 'ls']), new RegExp(`net-a\\s+bridge\\s+${SUBNET_A.replace(/\./g, '\\.')}`));
    assert.equal(ok(['network', 'ls', '-q']), `${id.slice(0, 12)}\n`);
    assert.equal(JSON.parse(ok(['network', 'ls', '--format', 'json']))[0].Name, 'net-a');
    assert.equal(ok(['network', 'ls', '-q', '--filter', 'label=team=blue']), `${id.slice(0, 12)}\n`);
    assert.equal(ok(['network', 'ls', '-q', '--filter', 'name=zzz']), '');

    // Host addresses in the subnets these refusals name: a half-made bridge would hold one.
    // (Not a count of all links: other tests make and remove theirs meanwhile.)
    const addressesIn = (prefix: string): string[] => JSON.parse(spawnSync('ip', ['-j', '-4', 'addr'], { encoding: 'utf8' }).stdout)
      .flatMap((l: any) => (l.addr_info ?? []).map((a: any) => `${l.ifname} ${a.local}`)).filter((a: string) => a.split(' ')[1].startsWith(prefix));
    const netA = addressesIn(`10.215.${octet}.`);
    const hostRoute = JSON.parse(spawnSync('ip', ['-j', '-4', 'route'], { encoding: 'utf8' }).stdout)
      .map((r: any) => r.dst).find((d: string) => d !== 'default' && d.includes('/') && !d.startsWith('10.21'));
    refused(['network', 'create', 'net-a'], /network "net-a" already exists/);
    refused(['network', 'create', '--subnet', `10.215.${octet}.128/25`, 'net-x'], /overlaps network "net-a"/);
    if (hostRoute) refused(['network', 'create', '--subnet', hostRoute, 'net-x'], /overlaps the host route/);
    refused(['network', 'create', '--subnet', '10.216.0.5/24', 'net-x'], /host bits set/);
    refused(['network', 'create', '--subnet', 'ten.0.0.0/8', 'net-x'], /not an IPv4 CIDR/);
    refused(['network', 'create', '--subnet', '10.216.0.0/24', '--gateway', '10.216.1.1', 'net-x'], /not a host address of subnet/);
    refused(['network', 'create', '--gateway', '10.216.0.1', 'net-x'], /--gateway needs --subnet/);
    refused(['network', 'create', 'bad/name'], /not valid/);
    refused(['network', 'inspect', 'net-x'], /network "net-x" not found/);
    refused(['run', '--rm', '--network', 'net-x', 'busybox', 'true'], /network "net-x" not found/);
    assert.equal(ok(['network', 'ls', '-q']), `${id.slice(0, 12)}\n`);
    assert.deepEqual(addressesIn(`10.215.${octet}.`), netA);
    assert.deepEqual(addressesIn('10.216.'), []);
    assert.deepEqual(fs.readdirSync(path.join(root, 'containers')), []);
  });

  it('containers on one network reach each other by name; peers\' /etc/hosts follow joins and leaves', async () => {
    ok(['run', '-d', '--name', 'web1', '--network', 'net-a', 'busybox', ...httpd('web1')]);
    const rec = record('web1');
    assert.equal(rec.network.device, 'eth0');
    assert.ok(rec.network.address.startsWith(`10.215.${octet}.`), rec.network.address);
    assert.match(ok(['exec', 'web1', 'ip', 'route']), new RegExp(`default via 10\\.215\\.${octet}\\.1 dev eth0`));

    // A peer started later can reach it by name, with ping and over TCP.
    const out = ok(['run', '--rm', '--name', 'cli1', '--network', 'net-a', 'busybox', 'sh', '-c',
      'ping -c1 -W2 web1 >/dev/null && for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web1/ && exit 0; sleep 0.2; done; exit 1']);
    assert.equal(out, 'web1\n');

    // web1 was running when web2 joined: its hosts file is rewritten in place.
    ok(['run', '-d', '--name', 'web2', '--network', 'net-a', 'busybox', ...httpd('web2')]);
    assert.match(ok(['exec', 'web1', 'cat', '/etc/hosts']), /\tweb2( |$)/m);
    assert.equal(ok(['exec', 'web1', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web2/ && exit 0; sleep 0.2; done; exit 1']), 'web2\n');
    ok(['rm', '-f', 'web2']);
    assert.doesNotMatch(ok(['exec', 'web1', 'cat', '/etc/hosts']), /web2/);
    ok(['rm', '-f', 'web1']);
  });

  it('a container on the default network reaches a server on its gateway', async () => {
    // The default network is made on first use.
    assert.match(ok(['run', '--rm', '--network', 'bridge', 'busybox', 'ip', 'route']), /^default via /m);
    const gw = inspectNet('bridge').IPAM.Config[0].Gateway;
    const srv = http.createServer((_req, res) => res.end('from the host\n'));
    await new Promise<void>((r) => srv.listen(0, gw, () => r()));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      const r = await berthAsync(root, ['run', '--rm', '--network', 'bridge', 'busybox', 'wget', '-qO-', `http://${gw}:${port}/`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'from the host\n');
    } finally {
      srv.close();
    }
  });

  it('published ports answer on 127.0.0.1; a taken host port is refused before the container starts; rm leaves nothing', async () => {
    const port = await freePort();
    ok(['run', '-d', '--name', 'pub', '--network', 'net-a', '-p', `127.0.0.1:${port}:80`, 'busybox', ...httpd('pub')]);
    assert.equal(await getWhenUp(`http://127.0.0.1:${port}/`), 'pub\n');
    assert.equal(ok(['port', 'pub']), `80/tcp -> 127.0.0.1:${port}\n`);

    // -p 80: a free host port on every address, chosen at start and shown by `berth port`.
    ok(['run', '-d', '--name', 'pub-auto', '--network', 'net-a', '-p', '80', 'busybox', ...httpd('pub-auto')]);
    const auto = Number(/:(\d+)$/.exec(ok(['port', 'pub-auto', '80']).trim())![1]);
    assert.ok(auto > 0);
    assert.equal(await getWhenUp(`http://127.0.0.1:${auto}/`), 'pub-auto\n');

    // Another container asking for the same host port: an error, and no container.
    refused(['run', '-d', '--name', 'pub2', '--network', 'net-a', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '9'], new RegExp(`${port}`));
    assert.ok(!fs.existsSync(path.join(root, 'names', 'pub2')));
    // A port some other program holds (not a container): the proxy's bind says so.
    const holder = net.createServer();
    const held = await new Promise<number>((r) => holder.listen(0, '127.0.0.1', () => r((holder.address() as net.AddressInfo).port)));
    try {
      refused(['run', '-d', '--name', 'pub3', '--network', 'net-a', '-p', `127.0.0.1:${held}:80`, 'busybox', 'sleep', '9'], /taken|in use/);
      assert.ok(!fs.existsSync(path.join(root, 'names', 'pub3')));
    } finally {
      holder.close();
    }

    const rec = record('pub');
    const proxies = rec.network.helpers.map((h: any) => h.pid);
    assert.equal(proxies.length, 1);
    assert.ok(alive(proxies[0]));
    assert.ok(nftRuleset().includes(record('pub-auto').id), 'a DNAT rule tagged with the container id');
    const autoRec = record('pub-auto');
    ok(['rm', '-f', 'pub', 'pub-auto']);
    for (const r of [rec, autoRec]) {
      for (const dev of r.network.hostDevices) assert.ok(!linkExists(dev), `veth ${dev} left`);
      assert.ok(!nftRuleset().includes(r.id), `nft rules of ${r.name} left`);
      for (const h of r.network.helpers) assert.ok(await waitFor(() => !alive(h.pid), 3000), `proxy ${h.pid} left`);
    }
    assert.deepEqual(inspectNet('net-a').Containers, {});
    const again = net.createServer();
    await new Promise<void>((r, j) => { again.once('error', j); again.listen(port, '127.0.0.1', () => r()); });
    again.close();
  });

  it('network rm refuses while containers use it (naming them); prune removes only unused networks', async () => {
    ok(['network', 'create', 'net-b']);
    ok(['network', 'create', 'net-c']);
    const b = networkRecords(root).find((n) => n.name === 'net-b');
    assert.match(b.subnet, /^10\.213\.\d+\.0\/24$/);
    ok(['run', '-d', '--name', 'user1', '--network', 'net-b', 'busybox', 'sleep', '60']);
    ok(['create', '--name', 'user2', '--network', 'net-b', 'busybox', 'true']);
    ok(['run', '-d', '--name', 'keeper', '--network', 'net-a', 'busybox', 'sleep', '60']);
    refused(['network', 'rm', 'net-b'], /network "net-b" is used by containers "user1", "user2"/);
    assert.equal(ok(['network', 'prune']), 'Deleted Networks:\nnet-c\n');
    assert.ok(linkExists(b.bridge));
    ok(['rm', '-f', 'user1', 'user2', 'keeper']);
    assert.equal(ok(['network', 'rm', 'net-b']), 'net-b\n');
    assert.ok(!linkExists(b.bridge));
    assert.ok(!tableExists(b.table));
    refused(['network', 'rm', 'net-b'], /not found/);
  });

  it('ten containers started at once get ten different addresses', async () => {
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      berthAsync(root, ['run', '-d', '--name', `many${i}`, '--network', 'net-a', 'busybox', 'sleep', '60'])));
    for (const r of rs) assert.equal(r.status, 0, r.stderr);
    const addrs = Array.from({ length: 10 }, (_, i) => record(`many${i}`).network.address);
    assert.equal(new Set(addrs).size, 10, addrs.join(' '));
    const inspected = Object.values(inspectNet('net-a').Containers).map((c: any) => c.IPv4Address).sort();
    assert.deepEqual(inspected, [...addrs].sort());
    // Each one answers on its own address from another container.
    const list = addrs.map((a) => a.split('/')[0]).join(' ');
    ok(['run', '--rm', '--network', 'net-a', 'busybox', 'sh', '-c', `for a in ${list}; do ping -c1 -W2 $a >/dev/null || exit 1; done`]);
    ok(['rm', '-f', ...Array.from({ length: 10 }, (_, i) => `many${i}`)]);
    assert.deepEqual(inspectNet('net-a').Containers, {});
  });

  it('network connect and disconnect a running container', async () => {
    ok(['network', 'create', 'net-d']);
    ok(['run', '-d', '--name', 'c1', '--network', 'net-a', 'busybox', 'sleep', '60']);
    ok(['run', '-d', '--name', 'c2', '--network', 'net-d', 'busybox', 'sleep', '60']);
    assert.notEqual(berth(['exec', 'c1', 'ping', '-c1', '-W1', 'c2']).status, 0);

    ok(['network', 'connect', 'net-d', 'c1']);
    const d = inspectNet('net-d');
    assert.match(ok(['exec', 'c1', 'ip', '-4', 'addr', 'show', 'eth1']), new RegExp(`inet ${d.IPAM.Config[0].Subnet.split('.').slice(0, 3).join('\\.')}\\.`));
    ok(['exec', 'c1', 'ping', '-c1', '-W2', 'c2']);
    ok(['exec', 'c2', 'ping', '-c1', '-W2', 'c1']);
    refused(['network', 'connect', 'net-d', 'c1'], /already on network "net-d"/);

    ok(['network', 'disconnect', 'net-d', 'c1']);
    assert.notEqual(berth(['exec', 'c1', 'ip', 'link', 'show', 'eth1']).status, 0);
    assert.doesNotMatch(ok(['exec', 'c2', 'cat', '/etc/hosts']), /\tc1/);
    refused(['network', 'disconnect', 'net-d', 'c1'], /not on network "net-d"/);
    refused(['network', 'disconnect', 'net-a', 'c1'], /only network/);
    ok(['rm', '-f', 'c1', 'c2']);
    ok(['network', 'rm', 'net-d']);
  });

  it('a lease whose container is gone (a crashed berth) is reclaimed', () => {
    const file = path.join(root, 'networks', 'net-a', 'leases.json');
    const l = JSON.parse(fs.readFileSync(file, 'utf8'));
    const ghost = `10.215.${octet}.77`;
    l.leases[ghost] = { containerId: 'f'.repeat(64), name: 'ghost', hostname: 'ghost', device: 'eth0', hostDevice: 'bvethghost0', mac: '02:be:00:00:00:00' };
    fs.writeFileSync(file, JSON.stringify(l));
    assert.deepEqual(inspectNet('net-a').Containers, {});
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).leases[ghost], undefined);
    // And the network can go: no phantom user.
    ok(['network', 'create', 'net-e']);
    const e = JSON.parse(fs.readFileSync(path.join(root, 'networks', 'net-e', 'network.json'), 'utf8'));
    fs.writeFileSync(path.join(root, 'networks', 'net-e', 'leases.json'), JSON.stringify({ leases: { '10.213.99.9': l.leases[ghost] } }));
    assert.equal(ok(['network', 'rm', 'net-e']), 'net-e\n');
    assert.ok(!linkExists(e.bridge));
  });
});
