// Regression tests from a hostile review of networking: each case broke berth before its
// fix (the comment says how). Real containers on bridge networks this file makes; traffic
// stays on loopback and on those bridges. Embedded busybox image, private --root.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, berthSync, engineRoot, requires, sleep, TOP, waitFor } from '../helpers';
import { networkRecords, removeContainersAndNetworks } from './network-helpers';

const skip = requires('root') ?? (spawnSync('sh', ['-c', 'command -v nft && command -v ip && command -v prlimit']).status !== 0
  ? 'needs nft, ip and prlimit' : undefined);

// Outside berth's pool and the other network tests' ranges (10.215.x), one /24 per use.
const octet = 100 + (process.pid % 100);
const subnet = (i: number) => `10.217.${(octet + i * 3) % 250}.0/24`;
const gatewayOf = (s: string) => s.replace(/0\/24$/, '1');

const nftTable = (t: string): string => spawnSync('nft', ['list', 'table', 'ip', t], { encoding: 'utf8' }).stdout;

/** User + system CPU ticks (1/100 s) PID has used. */
function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** A free run of N TCP ports on 127.0.0.1 (each bound to check, then released). */
async function freeRange(n: number): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const base = 30000 + Math.floor(Math.random() * 25000);
    const held: net.Server[] = [];
    let ok = true;
    for (let p = base; p < base + n && ok; p++) {
      const s = net.createServer();
      ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.listen(p, '127.0.0.1', () => r(true)); });
      if (ok) held.push(s);
    }
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error(`no free run of ${n} ports`);
}

describe('networking review', { skip, concurrency: 1 }, () => {
  let dir: string;
  let root: string;
  const roots: string[] = [];
  const berth = (args: string[], r = root) => berthSync(r, args);
  const ok = (args: string[], r = root): string => {
    const res = berth(args, r);
    assert.equal(res.status, 0, `berth ${args.join(' ')}: ${res.stderr}`);
    return res.stdout;
  };
  const refused = (args: string[], re: RegExp, r = root): void => {
    const res = berth(args, r);
    assert.equal(res.status, 125, `berth ${args.join(' ')} should fail: ${res.stdout}${res.stderr}`);
    assert.match(res.stderr, re);
  };
  const idOf = (name: string, r = root): string => fs.readFileSync(path.join(r, 'names', name), 'utf8');
  const record = (name: string, r = root): any => JSON.parse(fs.readFileSync(path.join(r, 'containers', idOf(name, r), 'container.json'), 'utf8'));
  const containerCount = (r = root): number => (fs.existsSync(path.join(r, 'containers')) ? fs.readdirSync(path.join(r, 'containers')).length : 0);
  const proxyPid = (name: string): number => record(name).network.helpers.find((h: any) => h.what === 'berth-proxy').pid;

  before(() => {
    ({ dir, root } = engineRoot('netreview'));
    roots.push(root);
  });

  after(async () => {
    const left = roots.flatMap(removeContainersAndNetworks);
    await waitFor(() => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 10_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    if (!mounts.length) fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual({ left, mounts }, { left: [], mounts: [] });
  });

  it('--hostname cannot add lines to a peer\'s /etc/hosts', () => {
    // Before: the hostname went verbatim into the peers' hosts files, so
    // `--hostname $'x\n6.6.6.6 db'` made every container on the network resolve db to 6.6.6.6.
    ok(['network', 'create', '--subnet', subnet(0), 'rv-hosts']);
    ok(['run', '-d', '--name', 'hosts-peer', '--network', 'rv-hosts', 'busybox', 'sleep', '300']);
    const before = containerCount();
    for (const bad of ['evil\n6.6.6.6 db', 'evil 6.6.6.6', 'evil\tdb', '-x', 'a'.repeat(65)]) {
      refused(['create', '--name', 'hosts-evil', '--network', 'rv-hosts', '--hostname', bad, 'busybox', 'true'], /HOSTNAME_INVALID|is not a host name/);
      refused(['run', '--rm', '--network', 'rv-hosts', '--hostname', bad, 'busybox', 'true'], /is not a host name/);
    }
    assert.equal(containerCount(), before, 'a refused container was left');
    const hosts = ok(['exec', 'hosts-peer', 'cat', '/etc/hosts']);
    assert.doesNotMatch(hosts, /6\.6\.6\.6|evil/);
    // Ordinary names still work, and reach the peer's file.
    ok(['create', '--name', 'hosts-good', '--network', 'rv-hosts', '--hostname', 'good-host.example_1', 'busybox', 'true']);
    assert.match(ok(['exec', 'hosts-peer', 'cat', '/etc/hosts']), /\thosts-good good-host\.example_1\n/);
    ok(['rm', '-f', 'hosts-peer', 'hosts-good']);
    ok(['network', 'rm', 'rv-hosts']);
  });

  it('a gateway written with leading zeros is refused, not read as octal by ip', () => {
    // Before: "--gateway 10.217.N.010" was recorded as .10 while `ip` gave the bridge .8
    // (octal), so .8 could be handed to a container: two hosts with one address.
    const s = subnet(1);
    refused(['network', 'create', '--subnet', s, '--gateway', s.replace(/0\/24$/, '010'), 'rv-octal'], /gateway .* is not an IPv4 address/);
    refused(['network', 'create', '--subnet', `0${s}`, 'rv-octal'], /not an IPv4 CIDR/);
    const prefix = s.replace(/0\/24$/, '');
    const addrs = JSON.parse(spawnSync('ip', ['-j', '-4', 'addr'], { encoding: 'utf8' }).stdout)
      .flatMap((l: any) => l.addr_info.map((a: any) => a.local as string));
    assert.deepEqual(addrs.filter((a: string) => a.startsWith(prefix)), [], 'a bridge of the refused network was made');
    assert.equal(networkRecords(root).some((n) => n.name === 'rv-octal'), false);
  });

  it('bridge networks work under a --root whose path has a space and a "#"', () => {
    // Before: the namespace file's path went into an `ip -batch` line, which splits at
    // spaces: every bridge container failed with `Invalid "netns" value`.
    const r = path.join(dir, 'a root #1', 'root');
    const mk = spawnSync('bash', [path.join(TOP, 'scripts', 'make-busybox-image.sh'), r], { encoding: 'utf8' });
    assert.equal(mk.status, 0, mk.stderr);
    roots.push(r);
    const s = subnet(2);
    ok(['network', 'create', '--subnet', s, 'rv-space'], r);
    const out = ok(['run', '--rm', '--network', 'rv-space', 'busybox', 'ip', '-4', 'addr', 'show', 'eth0'], r);
    assert.match(out, new RegExp(`inet ${s.replace(/0\/24$/, '').replace(/\./g, '\\.')}\\d+/24`));
    ok(['network', 'rm', 'rv-space'], r);
  });

  it('a bridge container publishes 300 ports; more than the proxy takes is a clear error', async () => {
    // Before: more than 256 ports made berth-proxy print its usage and berth report
    // "check that berth-proxy is built".
    ok(['network', 'create', '--subnet', subnet(3), 'rv-many']);
    const base = await freeRange(300);
    ok(['run', '-d', '--name', 'many', '--network', 'rv-many', '-p', `127.0.0.1:${base}-${base + 299}:1000-1299`,
      'busybox', 'sh', '-c', 'echo many | nc -l -p 1299']);
    const lines = ok(['port', 'many']).trim().split('\n');
    assert.equal(lines.length, 300);
    assert.ok(lines.includes(`1299/tcp -> 127.0.0.1:${base + 299}`), lines.slice(-2).join(' '));
    let got = '';
    for (let i = 0; i < 50 && !got.includes('many'); i++) {
      got = await new Promise<string>((resolve) => {
        const c = net.connect(base + 299, '127.0.0.1');
        let d = '';
        c.on('data', (b) => (d += b));
        c.on('close', () => resolve(d));
        c.on('error', () => resolve(''));
      });
      if (!got.includes('many')) await sleep(100);
    }
    assert.match(got, /many/);
    ok(['rm', '-f', 'many']);
    const before = containerCount();
    refused(['run', '--rm', '--network', 'rv-many', '-p', '127.0.0.1:1000-5200:1000-5200', 'busybox', 'true'],
      /4201 published ports are more than a bridge network's port proxy takes \(4096\)/);
    assert.equal(containerCount(), before);
    ok(['network', 'rm', 'rv-many']);
  });

  it('the port proxy does not spin after a client resets while the container does not read', async () => {
    // Before: the reset socket's EPOLLERR/EPOLLHUP (which epoll reports whatever the mask)
    // woke the proxy with nothing to do, at full CPU, for as long as the container lived.
    ok(['network', 'create', '--subnet', subnet(4), 'rv-spin']);
    const [port] = [await freeRange(1)];
    ok(['run', '-d', '--name', 'spin', '--network', 'rv-spin', '-p', `127.0.0.1:${port}:80`, 'busybox', 'nc', '-l', '-p', '80', '-e', 'sleep', '300']);
    const pid = proxyPid('spin');
    // Fill the path to the container (its program never reads), then reset.
    let sent = 0;
    for (let attempt = 0; attempt < 50 && sent < 1 << 20; attempt++) {
      sent = await new Promise<number>((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        const chunk = Buffer.alloc(65536, 120);
        c.on('error', () => resolve(c.bytesWritten));
        c.on('connect', async () => {
          const end = Date.now() + 2000;
          while (Date.now() < end && !c.destroyed) {
            if (!c.write(chunk)) await new Promise((r) => setTimeout(r, 20));
          }
          const n = c.bytesWritten - c.writableLength;
          c.resetAndDestroy();
          resolve(n);
        });
      });
      if (sent < 1 << 20) await sleep(100); // the container's nc was not listening yet
    }
    assert.ok(sent >= 1 << 20, `only ${sent} bytes went out`);
    await sleep(300);
    const t0 = cpuTicks(pid);
    await sleep(2000);
    const used = cpuTicks(pid) - t0;
    assert.ok(used < 20, `berth-proxy used ${used} ticks (1/100 s) of CPU in 2 s while idle`);
    ok(['rm', '-f', 'spin']);
    ok(['network', 'rm', 'rv-spin']);
  });

  it('the port proxy does not spin when it runs out of file descriptors', async () => {
    // Before: accept() failing with EMFILE left the connection pending on a level-triggered
    // listener: the proxy woke at once, forever, at full CPU, while clients waited. It
    // takes two fds per connection, so whether the table fills to the last fd (and accept
    // itself fails) depends on parity: both limits are tried.
    ok(['network', 'create', '--subnet', subnet(5), 'rv-fds']);
    for (const limit of [100, 101]) {
      const port = await freeRange(1);
      const r = spawnSync('prlimit', [`--nofile=${limit}:${limit}`, BERTH, '--root', root, 'run', '-d', '--name', 'fds', '--network', 'rv-fds',
        '-p', `127.0.0.1:${port}:80`, 'busybox', 'nc', '-ll', '-p', '80', '-e', 'cat'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const pid = proxyPid('fds');
      const clients: net.Socket[] = [];
      try {
        for (let i = 0; i < 80; i++) {
          const c = net.connect(port, '127.0.0.1');
          c.on('error', () => undefined);
          clients.push(c);
        }
        await waitFor(() => fs.readdirSync(`/proc/${pid}/fd`).length >= limit - 1, 5000);
        await sleep(300);
        const t0 = cpuTicks(pid);
        await sleep(2000);
        const used = cpuTicks(pid) - t0;
        assert.ok(used < 30, `berth-proxy (nofile ${limit}) used ${used} ticks (1/100 s) of CPU in 2 s with no fds left`);
      } finally {
        for (const c of clients) c.destroy();
      }
      // Once fds are free again it accepts again (two fds per connection). The closed
      // clients' connections go as the container's nc accepts the proxy's (its listen
      // backlog is short, so some wait for a SYN retry).
      const fds = () => fs.readdirSync(`/proc/${pid}/fd`).length;
      assert.ok(await waitFor(() => fds() < limit - 10, 20_000), `the proxy kept ${fds()} fds`);
      const echoed = await new Promise<string>((resolve) => {
        const late = net.connect(port, '127.0.0.1', () => late.write('ping\n'));
        let d = '';
        const timer = setTimeout(() => { late.destroy(); resolve(d); }, 10_000);
        late.on('data', (b) => {
          d += b;
          if (d.includes('ping')) { clearTimeout(timer); late.destroy(); resolve(d); }
        });
        late.on('error', () => { clearTimeout(timer); resolve(d); });
      });
      assert.equal(echoed, 'ping\n', 'the proxy did not accept again');
      ok(['rm', '-f', 'fds']);
    }
    ok(['network', 'rm', 'rv-fds']);
  });

  it('network inspect and ls do not rewrite the leases while a run holds the network lock', async () => {
    // Before: they dropped stale leases from leases.json without the lock, so a rewrite of
    // theirs could race a run making a lease and lose it: the next container got the same
    // address. Here the test holds the lock (as a run making a lease does) with a stale
    // lease in the file, and the file must not change until the lock is released.
    ok(['network', 'create', '--subnet', subnet(7), 'rv-lock']);
    ok(['run', '-d', '--name', 'lock-a', '--network', 'rv-lock', 'busybox', 'sleep', '300']);
    const file = path.join(root, 'networks', 'rv-lock', 'leases.json');
    const l = JSON.parse(fs.readFileSync(file, 'utf8'));
    const ghost = subnet(7).replace(/0\/24$/, '77');
    l.leases[ghost] = { containerId: 'e'.repeat(64), name: 'ghost', hostname: 'ghost', device: 'eth0', hostDevice: 'bvethghostx', mac: '02:be:00:00:00:00' };
    fs.writeFileSync(file, JSON.stringify(l));
    const holder = spawn('flock', ['/run/berth-network/lock', 'sh', '-c', 'echo locked; exec sleep 2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    const readers = [['network', 'inspect', 'rv-lock'], ['network', 'ls', '--format', 'json']].map((args) => new Promise<number | null>((resolve) => {
      const c = spawn(BERTH, ['--root', root, ...args], { stdio: 'ignore' });
      c.on('exit', resolve);
    }));
    await sleep(1000);
    assert.ok(JSON.parse(fs.readFileSync(file, 'utf8')).leases[ghost], 'leases.json was rewritten while another berth held the network lock');
    await new Promise((r) => holder.once('exit', r));
    assert.deepEqual(await Promise.all(readers), [0, 0]);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).leases[ghost], undefined);
    ok(['rm', '-f', 'lock-a']);
    ok(['network', 'rm', 'rv-lock']);
  });

  it('-p on an IPv6 address is refused up front where the helper cannot bind it', () => {
    // Before: the container was made, then slirp4netns's "bad arguments.host_addr" (or
    // pasta --ipv4-only's "Failed to bind") came out as "another program holds that port".
    const before = containerCount();
    refused(['run', '--rm', '--network', 'slirp4netns', '-p', '[::1]:20100:80', 'busybox', 'true'], /slirp4netns cannot publish on the IPv6 address ::1/);
    refused(['run', '--rm', '--network', 'slirp4netns', '-p', '[::]:20100:80', 'busybox', 'true'], /cannot publish on the IPv6 address ::/);
    if (spawnSync('sh', ['-c', 'command -v pasta']).status === 0) {
      refused(['run', '--rm', '--network', 'pasta', '-p', '[::1]:20100:80', 'busybox', 'true'], /only with enable_ipv6=true/);
    }
    assert.equal(containerCount(), before);
  });

  it('-p on an address the host does not have is refused before the container is made', () => {
    // Before: the proxy's (or slirp4netns's) bind failed after the container was made, and
    // the hint said to rebuild berth-proxy, or that another program held the port.
    ok(['network', 'create', '--subnet', subnet(8), 'rv-addr']);
    const before = containerCount();
    refused(['run', '--rm', '--network', 'rv-addr', '-p', '192.0.2.1:20110:80', 'busybox', 'true'], /192\.0\.2\.1 is not an address of this host/);
    refused(['run', '--rm', '--network', 'slirp4netns', '-p', '192.0.2.1:20110:80', 'busybox', 'true'], /192\.0\.2\.1 is not an address of this host/);
    assert.equal(containerCount(), before);
    // The network's own gateway is an address of this host, also once the bridge has lost
    // its last port (no carrier: os.networkInterfaces() leaves such interfaces out).
    ok(['run', '--rm', '--network', 'rv-addr', 'busybox', 'true']);
    const port = 20000 + (process.pid % 5000);
    ok(['create', '--name', 'addr-ok', '--network', 'rv-addr', '-p', `${gatewayOf(subnet(8))}:${port}:80`, 'busybox', 'true']);
    ok(['rm', '-f', 'addr-ok']);
    ok(['network', 'rm', 'rv-addr']);
  });

  it('the port proxy passes a container\'s reset on to the client, not a clean end', async () => {
    // Before: a reset from the container (a program that dies with unread input, or a
    // crash mid-reply) reached the client as a normal end of stream, so a cut-off answer
    // looked complete (an HTTP/1.0 reply without a length, any stream until EOF).
    ok(['network', 'create', '--subnet', subnet(9), 'rv-rst']);
    const port = await freeRange(1);
    // One connection (nc without -ll runs sh on the socket itself): sh never reads, so its
    // exit with the client's bytes unread is a reset.
    ok(['run', '-d', '--name', 'rst', '--network', 'rv-rst', '-p', `127.0.0.1:${port}:80`,
      'busybox', 'nc', '-l', '-p', '80', '-e', 'sh', '-c', 'sleep 0.5; echo partial']);
    let outcome = '';
    for (let i = 0; i < 50; i++) {
      const t0 = Date.now();
      outcome = await new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        let d = '';
        c.on('connect', () => c.write('y'.repeat(1000)));
        c.on('data', (b) => (d += b));
        c.on('end', () => resolve(`end ${d}`));
        c.on('error', (e: NodeJS.ErrnoException) => resolve(`${e.code} ${d}`));
      });
      // An answer within 0.3 s, or an empty clean end (slower on a loaded machine), is the
      // proxy finding nothing listening yet: try again.
      if (Date.now() - t0 > 300 && outcome !== 'end ') break;
      await sleep(100);
    }
    assert.match(outcome, /^ECONNRESET/, `the client saw "${outcome.trim()}"`);
    ok(['rm', '-f', 'rst']);
    ok(['network', 'rm', 'rv-rst']);
  });

  it('a peer whose hosts file cannot be rewritten does not stop others joining or leaving', () => {
    // Before: the peers' files were rewritten with no error handling, so one container
    // that made its /etc/hosts immutable (it can, with CAP_LINUX_IMMUTABLE: the file is
    // bind-mounted writable) made every later run on the network fail with an internal
    // error. Here the host sets the flag, as that container would.
    ok(['network', 'create', '--subnet', subnet(10), 'rv-imm']);
    ok(['run', '-d', '--name', 'imm-peer', '--network', 'rv-imm', 'busybox', 'sleep', '300']);
    const hosts = path.join(root, 'containers', idOf('imm-peer'), 'hosts');
    const flag = spawnSync('chattr', ['+i', hosts], { encoding: 'utf8' });
    if (flag.status !== 0) return; // a file system without the flag: nothing to test
    try {
      assert.equal(ok(['run', '--rm', '--name', 'imm-other', '--network', 'rv-imm', 'busybox', 'sh', '-c', 'grep -c imm-peer /etc/hosts']), '1\n');
      ok(['run', '-d', '--name', 'imm-third', '--network', 'rv-imm', 'busybox', 'sleep', '300']);
      ok(['rm', '-f', 'imm-third']);
    } finally {
      spawnSync('chattr', ['-i', hosts]);
    }
    ok(['rm', '-f', 'imm-peer']);
    ok(['network', 'rm', 'rv-imm']);
  });

  it('rm -f after a berth killed during bridge setup removes its DNAT rules and lease', async () => {
    // Before: until setup finished, the record held no container id, so teardown skipped
    // the lease and the DNAT rules; a rule stayed, sending the host port to an address
    // the next container on the network would get.
    const s = subnet(6);
    ok(['network', 'create', '--subnet', s, 'rv-crash']);
    const table = networkRecords(root).find((n) => n.name === 'rv-crash').table;
    ok(['run', '-d', '--name', 'crash-peer', '--network', 'rv-crash', 'busybox', 'sleep', '300']);
    // A FIFO in place of the peer's hosts file holds the new container's setup right after
    // its DNAT rules are made (the peers' files are rewritten last): a deterministic instant
    // for the kill.
    const peerHosts = path.join(root, 'containers', idOf('crash-peer'), 'hosts');
    fs.renameSync(peerHosts, `${peerHosts}.saved`);
    spawnSync('mkfifo', [peerHosts]);
    const port = await freeRange(1);
    const child = spawn(BERTH, ['--root', root, 'run', '-d', '--name', 'crash-victim', '--network', 'rv-crash',
      '-p', `${gatewayOf(s)}:${port}:80`, 'busybox', 'sleep', '300'], { stdio: 'ignore' });
    let id = '';
    try {
      const reached = await waitFor(() => {
        try {
          id = idOf('crash-victim');
        } catch {
          return false;
        }
        return nftTable(table).includes(id);
      }, 20_000);
      assert.ok(reached, 'the DNAT rule never appeared');
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(peerHosts, { force: true });
      fs.renameSync(`${peerHosts}.saved`, peerHosts);
    }
    ok(['rm', '-f', 'crash-victim']);
    assert.doesNotMatch(nftTable(table), new RegExp(id), 'a DNAT rule of the removed container is left');
    const leases = JSON.parse(fs.readFileSync(path.join(root, 'networks', 'rv-crash', 'leases.json'), 'utf8')).leases;
    assert.deepEqual(Object.values(leases).map((l: any) => l.containerId), [idOf('crash-peer')]);
    ok(['rm', '-f', 'crash-peer']);
    ok(['network', 'rm', 'rv-crash']);
  });
});
