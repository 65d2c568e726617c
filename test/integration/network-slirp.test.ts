// `--network slirp4netns` (the default): tap0 and its addresses inside the container, the
// host's loopback closed unless allow_host_loopback=true, published ports answering on
// the host's 127.0.0.1, `berth port`, a port claimed twice, restart, and that nothing of
// the network (slirp4netns process, namespace mount, files) outlives the container.
// Traffic stays on 127.0.0.1 and inside the containers' own namespaces.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthAsync, berthSync, engineRoot, requires, sleep, TOP, waitFor, type Result } from '../helpers';
import { freePort, httpGet, isAlive, loopbackServer, mountsUnder, networkLeftovers, recordedNetwork } from './network-helpers';

const skip = requires('root') ?? (spawnSync('sh', ['-c', 'command -v slirp4netns']).status !== 0 ? 'needs slirp4netns' : undefined);
// A host request from inside the container, without DNS (busybox's static wget needs NSS).
const GET = (host: string, port: number) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`;

describe('--network slirp4netns', { skip, concurrency: 3 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[]): Result => berthSync(root, args);
  const runD = (args: string[]): string => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const helperPids = (id: string): number[] => (recordedNetwork(root, id)?.helpers ?? []).map((h: any) => h.pid);

  before(() => {
    ({ dir, root } = engineRoot('net-slirp'));
  });
  after(() => {
    for (const id of fs.existsSync(path.join(root, 'containers')) ? fs.readdirSync(path.join(root, 'containers')) : []) {
      berth(['rm', '-f', id]);
    }
    const mounts = mountsUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('is the default: tap0 with MTU 65520, 10.0.2.100/24, default route via 10.0.2.2, DNS 10.0.2.3', () => {
    const r = berth(['run', '--rm', '-h', 'slirpy', 'busybox', 'sh', '-c',
      'ip addr show tap0; echo ---; ip route; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; ip link show lo']);
    assert.equal(r.status, 0, r.stderr);
    const [addr, route, resolv, hosts, lo] = r.stdout.split('---\n');
    assert.match(addr, /tap0: <[^>]*\bUP\b[^>]*> mtu 65520/);
    assert.match(addr, /inet 10\.0\.2\.100\/24/);
    assert.match(route, /^default via 10\.0\.2\.2 dev tap0/m);
    assert.equal(resolv.trim(), 'nameserver 10.0.2.3');
    assert.match(hosts, /^10\.0\.2\.100\tslirpy$/m);
    assert.match(lo, /lo: <[^>]*\bUP\b/);
  });

  it('--dns, --dns-search, --dns-option and --add-host write resolv.conf and hosts; host-gateway names the host', async () => {
    const r = berth(['run', '--rm', '--dns', '192.0.2.53', '--dns', '2001:db8::53', '--dns-search', 'example.test', '--dns-option', 'ndots:2',
      '--add-host', 'db:192.0.2.7', '--add-host', 'v6=[2001:db8::7]', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts']);
    assert.equal(r.status, 0, r.stderr);
    const [resolv, hosts] = r.stdout.split('---\n');
    assert.equal(resolv, 'search example.test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions ndots:2\n');
    assert.match(hosts, /^192\.0\.2\.7\tdb$/m);
    assert.match(hosts, /^2001:db8::7\tv6$/m);
    // host-gateway is 10.0.2.2 here; with the host's loopback opened, the name reaches it.
    const srv = await loopbackServer('hello through host-gateway');
    try {
      const gw = await berthAsync(root, ['run', '-d', '--network', 'slirp4netns:allow_host_loopback=true', '--add-host', 'hostbox:host-gateway',
        'busybox', 'sh', '-c', `grep hostbox /etc/hosts; ${GET('hostbox', srv.port)}`]);
      assert.equal(gw.status, 0, gw.stderr);
      const id = gw.stdout.trim();
      // Async: this process's server must answer while the container runs.
      assert.equal((await berthAsync(root, ['wait', id])).stdout.trim(), '0');
      const logs = berth(['logs', id]).stdout;
      assert.match(logs, /^10\.0\.2\.2\thostbox$/m);
      assert.match(logs, /hello through host-gateway/);
      // A restart writes the same lines again; inspect shows the flags.
      assert.equal((await berthAsync(root, ['start', id])).status, 0);
      assert.equal((await berthAsync(root, ['wait', id])).stdout.trim(), '0');
      const hc = JSON.parse(berth(['inspect', id]).stdout)[0].HostConfig;
      assert.deepEqual(hc.ExtraHosts, ['hostbox:host-gateway']);
      assert.deepEqual(hc.Dns, []);
      assert.equal(berth(['rm', id]).status, 0);
    } finally {
      await srv.close();
    }
    // Bad values, and flags that do not go with the mode: exit 125 before anything is made.
    // Nothing is made: looked up by name (the other tests here run at the same time).
    for (const [args, msg] of [
      [['--dns', 'ns.example'], /--dns "ns\.example" is not valid/],
      [['--add-host', 'nocolon'], /--add-host "nocolon" is not valid/],
      [['--add-host', 'x:999.1.1.1'], /--add-host "x:999\.1\.1\.1" is not valid/],
      [['--dns-search', 'a b'], /--dns-search "a b" is not valid/],
      [['--network', 'none', '--add-host', 'g:host-gateway'], /--network none has no gateway/],
    ] as [string[], RegExp][]) {
      const bad = berth(['run', '--rm', '--name', 'refused-dns', ...args, 'busybox', 'true']);
      assert.equal(bad.status, 125, `${args.join(' ')}: ${bad.stderr}`);
      assert.match(bad.stderr, msg);
      assert.equal(berth(['inspect', '--type', 'container', 'refused-dns']).status, 125);
    }
  });

  it('reaches the host\'s 127.0.0.1 at 10.0.2.2 only with allow_host_loopback=true', async () => {
    const srv = await loopbackServer('hello from the host');
    try {
      // Async: this process's server must answer while berth runs.
      const ok = await berthAsync(root, ['run', '--rm', '--network', 'slirp4netns:allow_host_loopback=true', 'busybox', 'sh', '-c', GET('10.0.2.2', srv.port)]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /hello from the host/);
      const closed = await berthAsync(root, ['run', '--rm', 'busybox', 'sh', '-c', GET('10.0.2.2', srv.port)]);
      assert.notEqual(closed.status, 0);
      assert.doesNotMatch(closed.stdout, /hello from the host/);
    } finally {
      await srv.close();
    }
  });

  it('honours mtu= and cidr=', () => {
    const r = berth(['run', '--rm', '--network', 'slirp4netns:mtu=1500,cidr=10.5.0.0/24', 'busybox', 'sh', '-c', 'ip addr show tap0; ip route; cat /etc/resolv.conf']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /mtu 1500/);
    assert.match(r.stdout, /inet 10\.5\.0\.100\/24/);
    assert.match(r.stdout, /default via 10\.5\.0\.2/);
    assert.match(r.stdout, /nameserver 10\.5\.0\.3/);
  });

  it('publishes -p 127.0.0.1:P:80 on the host; berth port and inspect show it; rm leaves nothing', async () => {
    const port = await freePort();
    const id = runD(['-p', `127.0.0.1:${port}:80`, '-p', '127.0.0.1::81', 'busybox', 'sh', '-c',
      'echo served-by-container > /tmp/index.html; httpd -f -p 80 -h /tmp']);
    const pids = helperPids(id);
    assert.equal(pids.length, 1);
    assert.ok(isAlive(pids[0]));
    let body = '';
    for (let i = 0; i < 50 && !body.includes('served'); i++) body = await httpGet(port, '/index.html').catch(() => sleep(100).then(() => ''));
    assert.match(body, /served-by-container/);
    const p = berth(['port', id]);
    assert.equal(p.status, 0, p.stderr);
    const lines = p.stdout.trim().split('\n');
    assert.equal(lines[0], `80/tcp -> 127.0.0.1:${port}`);
    assert.match(lines[1], /^81\/tcp -> 127\.0\.0\.1:\d+$/);
    assert.notEqual(lines[1], '81/tcp -> 127.0.0.1:0'); // the free port actually chosen
    assert.equal(berth(['port', id, '80']).stdout, `127.0.0.1:${port}\n`);
    const none = berth(['port', id, '82/udp']);
    assert.equal(none.status, 125);
    const ins = JSON.parse(berth(['inspect', id]).stdout)[0];
    assert.deepEqual(ins.NetworkSettings.Ports['80/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);
    assert.equal(ins.NetworkSettings.IPAddress, '10.0.2.100');
    assert.equal(ins.HostConfig.NetworkMode, 'slirp4netns');
    const netns = recordedNetwork(root, id).netnsPath;
    assert.ok(mountsUnder(netns).length > 0, 'the namespace file is a mount while the container runs');

    assert.equal(berth(['rm', '-f', id]).status, 0);
    assert.ok(await waitFor(() => networkLeftovers(root, id, pids).length === 0, 5000), networkLeftovers(root, id, pids).join('\n'));
    await assert.rejects(httpGet(port), 'the port is closed again');
  });

  it('refuses a host port another container holds, before starting, leaving nothing', async () => {
    const port = await freePort();
    const first = runD(['--name', 'holder', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '60']);
    const r = berth(['run', '--rm', '--name', 'second', '-p', `127.0.0.1:${port}:8080`, 'busybox', 'true']);
    assert.equal(r.status, 125);
    assert.match(r.stderr, new RegExp(`host port 127\\.0\\.0\\.1:${port}/tcp is already published by container "holder"`));
    assert.equal(fs.existsSync(path.join(root, 'names', 'second')), false);
    assert.equal(berth(['ps', '-a', '--filter', 'name=second', '-q']).stdout, '');
    assert.equal(berth(['rm', '-f', first]).status, 0);
  });

  it('refuses a host port some other program holds (slirp4netns cannot bind it), leaving nothing', async () => {
    const srv = await loopbackServer('busy');
    try {
      const r = await berthAsync(root, ['run', '--rm', '--name', 'blocked', '-p', `127.0.0.1:${srv.port}:80`, 'busybox', 'true']);
      assert.equal(r.status, 125);
      assert.match(r.stderr, new RegExp(`publish 127\\.0\\.0\\.1:${srv.port}/tcp: the host port cannot be bound`));
      // The record named it while its network was set up; the failure removed it all.
      assert.equal(fs.existsSync(path.join(root, 'names', 'blocked')), false);
      assert.equal(berth(['ps', '-a', '--filter', 'name=blocked', '-q']).stdout, '');
    } finally {
      await srv.close();
    }
  });

  it('foreground run: slirp4netns is gone once berth run returns', async () => {
    const child = spawn(path.join(TOP, 'bin', 'berth'), ['--root', root, 'run', '--rm', '--name', 'fg', 'busybox', 'sleep', '1'], { stdio: 'ignore' });
    let id = '';
    let pids: number[] = [];
    await waitFor(() => {
      try {
        id = fs.readFileSync(path.join(root, 'names', 'fg'), 'utf8');
        pids = helperPids(id);
      } catch {
        // not yet
      }
      return pids.length > 0;
    });
    assert.equal(pids.length, 1);
    const status = await new Promise((r) => child.on('exit', r));
    assert.equal(status, 0);
    assert.deepEqual(networkLeftovers(root, id, pids), []);
  });

  it('a SIGKILLed foreground berth takes its slirp4netns along (exit-fd)', async () => {
    const child = spawn(path.join(TOP, 'bin', 'berth'), ['--root', root, 'run', '--name', 'killed', 'busybox', 'sleep', '30'], { stdio: 'ignore' });
    let id = '';
    let pids: number[] = [];
    await waitFor(() => {
      try {
        id = fs.readFileSync(path.join(root, 'names', 'killed'), 'utf8');
        pids = helperPids(id);
      } catch {
        // not yet
      }
      return pids.length > 0 && recordedNetwork(root, id)?.resolvConf?.length > 0;
    });
    assert.equal(pids.length, 1);
    // bin/berth execs node, so the child is berth itself.
    child.kill('SIGKILL');
    assert.ok(await waitFor(() => !isAlive(pids[0]), 5000), 'slirp4netns outlived its berth');
    // The container itself is left for `rm -f`; it must take the rest of the network along.
    await waitFor(() => berth(['rm', '-f', 'killed']).status === 0, 15_000);
    assert.ok(await waitFor(() => networkLeftovers(root, id, pids).length === 0, 5000), networkLeftovers(root, id, pids).join('\n'));
  });

  it('a detached container\'s slirp4netns lives as long as its monitor (the monitor holds the exit-fd)', async () => {
    const id = runD(['busybox', 'sleep', '300']);
    const pids = helperPids(id);
    assert.equal(pids.length, 1);
    const rec = JSON.parse(fs.readFileSync(path.join(root, 'containers', id, 'container.json'), 'utf8'));
    // The berth that made it has exited: slirp4netns is still there, held by the monitor.
    await sleep(300);
    assert.ok(isAlive(pids[0]), 'slirp4netns died with the berth that started the detached container');
    // A monitor killed without a word (no cleanup runs): slirp4netns goes with it.
    process.kill(rec.monitor.pid, 'SIGKILL');
    assert.ok(await waitFor(() => !isAlive(pids[0]), 5000), 'slirp4netns outlived the container\'s monitor');
    assert.equal(berth(['rm', '-f', id]).status, 0);
    assert.ok(await waitFor(() => networkLeftovers(root, id, pids).length === 0, 5000), networkLeftovers(root, id, pids).join('\n'));
  });

  it('restart gives the container a new slirp4netns and its ports again', async () => {
    const port = await freePort();
    const id = runD(['-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', 'echo again > /tmp/i; httpd -f -p 80 -h /tmp']);
    const old = helperPids(id);
    assert.equal(berth(['restart', '-t', '1', id]).status, 0);
    const now = helperPids(id);
    assert.equal(now.length, 1);
    assert.notDeepEqual(now, old);
    assert.ok(!isAlive(old[0]), 'the old slirp4netns is gone');
    let body = '';
    for (let i = 0; i < 50 && !body.includes('again'); i++) body = await httpGet(port, '/i').catch(() => sleep(100).then(() => ''));
    assert.match(body, /again/);
    assert.equal(berth(['stop', '-t', '1', id]).status, 0);
    assert.ok(!isAlive(now[0]), 'stop ends slirp4netns');
    assert.equal(recordedNetwork(root, id), undefined);
    assert.deepEqual(mountsUnder(path.join(root, 'containers', id)), []);
    assert.equal(berth(['rm', id]).status, 0);
    assert.deepEqual(networkLeftovers(root, id, now), []);
  });

  it('-P publishes the image\'s exposed ports on free host ports', () => {
    const tar = path.join(dir, 'rootfs.tar');
    assert.equal(spawnSync('tar', ['-C', path.join(TOP, 'build', 'busybox-bundle', 'rootfs'), '-cf', tar, '.']).status, 0);
    const imp = berth(['import', tar, 'localhost/exposing:1', '-c', 'EXPOSE 80 53/udp', '-c', 'CMD ["sleep", "60"]']);
    assert.equal(imp.status, 0, imp.stderr);
    const id = runD(['-P', 'localhost/exposing:1']);
    const lines = berth(['port', id]).stdout.trim().split('\n').sort();
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /^53\/udp -> 0\.0\.0\.0:\d+$/);
    assert.match(lines[1], /^80\/tcp -> 0\.0\.0\.0:\d+$/);
    assert.equal(berth(['rm', '-f', id]).status, 0);
  });
});
