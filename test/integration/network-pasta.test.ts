// `--network pasta`: the host's address copied into the container's namespace (interface
// named as the host's, MTU 65520), DNS through pasta's forwarder, the host's loopback at
// the gateway's address only with allow_host_loopback=true, published ports, a port
// claimed twice, and nothing left once the container is removed. Traffic stays on
// 127.0.0.1: the closed case is checked on pasta's command line (--no-map-gw), because a
// request would then really go to the host's gateway.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, berthSync, engineRoot, requires, sleep, type Result } from '../helpers';
import { freePort, httpGet, isAlive, loopbackServer, mountsUnder, networkLeftovers, recordedNetwork } from './network-helpers';

const hasDefaultRoute = (): boolean =>
  fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).some((l) => l.split('\t')[1] === '00000000');
const skip = requires('root') ?? (spawnSync('sh', ['-c', 'command -v pasta']).status !== 0 ? 'needs pasta (Debian package passt)'
  : !hasDefaultRoute() ? 'pasta needs a host default route to copy' : undefined);

describe('--network pasta', { skip, concurrency: 3 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]): Result => berthSync(root, args);
  const runD = (args: string[]): string => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const helperPids = (id: string): number[] => (recordedNetwork(root, id)?.helpers ?? []).map((h: any) => h.pid);
  const names = (): string[] => (fs.existsSync(path.join(root, 'names')) ? fs.readdirSync(path.join(root, 'names')) : []);

  before(() => {
    ({ dir, root } = engineRoot('net-pasta'));
  });
  after(() => {
    for (const n of names()) berth(['rm', '-f', n]);
    const mounts = mountsUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('copies the host\'s address and default route; MTU 65520; DNS at 169.254.1.1', () => {
    const hostIf = fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1).find((l) => l.split('\t')[1] === '00000000')!.split('\t')[0];
    const r = berth(['run', '--rm', '--network', 'pasta', 'busybox', 'sh', '-c', `ip addr show ${hostIf}; echo ---; ip route; echo ---; cat /etc/resolv.conf`]);
    assert.equal(r.status, 0, r.stderr);
    const [addr, route, resolv] = r.stdout.split('---\n');
    assert.match(addr, new RegExp(`${hostIf}: <[^>]*\\bUP\\b[^>]*> mtu 65520`));
    const hostAddr = spawnSync('ip', ['-4', '-o', 'addr', 'show', hostIf], { encoding: 'utf8' }).stdout.match(/inet (\S+)/)![1];
    assert.match(addr, new RegExp(`inet ${hostAddr.replace(/\./g, '\\.')}`));
    const hostGw = spawnSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }).stdout.match(/via (\S+)/)![1];
    assert.match(route, new RegExp(`^default via ${hostGw.replace(/\./g, '\\.')}`, 'm'));
    assert.equal(resolv.trim(), 'nameserver 169.254.1.1');
  });

  it('reaches the host\'s 127.0.0.1 at the gateway address with allow_host_loopback=true; closed (--no-map-gw) without', async () => {
    const gw = spawnSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' }).stdout.match(/via (\S+)/)![1];
    const srv = await loopbackServer('hello via pasta');
    try {
      const ok = await berthAsync(root, ['run', '--rm', '--network', 'pasta:allow_host_loopback=true', 'busybox', 'sh', '-c',
        // grep -m1 ends the read: this pasta (passt 2023-03) replays the reply after the
        // host's side closes, so nc alone would not see the end (docs/networking.md).
        `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 10 nc ${gw} ${srv.port} | grep -m1 hello`]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /hello via pasta/);
    } finally {
      await srv.close();
    }
    const id = runD(['--network', 'pasta', 'busybox', 'sleep', '60']);
    const [pid] = helperPids(id);
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes('--no-map-gw'), cmdline.join(' '));
    // Nothing is published or forwarded that was not asked for (pasta's default is "auto").
    for (const f of ['-t', '-u', '-T', '-U']) assert.equal(cmdline[cmdline.indexOf(f) + 1], 'none', `${f} ${cmdline.join(' ')}`);
    assert.equal(berth(['rm', '-f', id]).status, 0);
    assert.deepEqual(networkLeftovers(root, id, [pid]), []);
  });

  it('publishes -p 127.0.0.1:P:80; berth port; a second claim fails cleanly; rm leaves nothing', async () => {
    const port = await freePort();
    const id = runD(['--name', 'pweb', '--network', 'pasta', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c',
      'echo via-pasta > /tmp/i; httpd -f -p 80 -h /tmp']);
    const pids = helperPids(id);
    assert.equal(pids.length, 1);
    assert.ok(isAlive(pids[0]));
    let body = '';
    for (let i = 0; i < 50 && !body.includes('via-pasta'); i++) body = await httpGet(port, '/i').catch(() => sleep(100).then(() => ''));
    assert.match(body, /via-pasta/);
    assert.equal(berth(['port', 'pweb']).stdout, `80/tcp -> 127.0.0.1:${port}\n`);
    assert.equal(JSON.parse(berth(['inspect', 'pweb']).stdout)[0].HostConfig.NetworkMode, 'pasta');

    // Another berth container: refused by the record check, naming the holder.
    const again = berth(['run', '--rm', '--name', 'pweb2', '--network', 'pasta', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true']);
    assert.equal(again.status, 125);
    assert.match(again.stderr, /already published by container "pweb"/);
    assert.ok(!names().includes('pweb2'));

    assert.equal(berth(['rm', '-f', 'pweb']).status, 0);
    assert.ok(!isAlive(pids[0]));
    assert.deepEqual(networkLeftovers(root, id, pids), []);
  });

  it('a host port held by another program: pasta cannot bind it, exit 125, nothing left', async () => {
    const srv = await loopbackServer('busy');
    try {
      const r = await berthAsync(root, ['run', '--rm', '--name', 'pblocked', '--network', 'pasta', '-p', `127.0.0.1:${srv.port}:80`, 'busybox', 'true']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, /a host port cannot be bound \(pasta: .*Failed to bind/);
      assert.ok(!names().includes('pblocked'));
    } finally {
      await srv.close();
    }
  });

  it('stop ends pasta and removes the namespace; start makes them again', async () => {
    const id = runD(['--network', 'pasta', 'busybox', 'sleep', '60']);
    const first = helperPids(id);
    assert.equal(berth(['stop', '-t', '0', id]).status, 0);
    assert.ok(!isAlive(first[0]));
    assert.deepEqual(mountsUnder(path.join(root, 'containers', id)), []);
    assert.equal(berth(['start', id]).status, 0);
    const second = helperPids(id);
    assert.equal(second.length, 1);
    assert.ok(isAlive(second[0]));
    const r = berth(['exec', id, 'cat', '/etc/resolv.conf']);
    assert.equal(r.stdout.trim(), 'nameserver 169.254.1.1');
    assert.equal(berth(['rm', '-f', id]).status, 0);
    assert.deepEqual(networkLeftovers(root, id, second), []);
  });
});
