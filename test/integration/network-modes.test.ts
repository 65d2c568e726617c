// `--network none`, `host` and `container:NAME`, the default from the configuration file
// ($BERTH_CONFIG), `berth info`'s network lines, and bad input (unknown mode, malformed
// -p, -p where it cannot apply, a missing helper binary, a peer that does not run): each
// refused with exit 125 before the container starts, nothing left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, berthAsync, engineRoot, requires, type Result } from '../helpers';
import { isAlive, mountsUnder, networkLeftovers, recordedNetwork } from './network-helpers';

const skip = requires('root');

describe('network modes', { skip, concurrency: 3 }, () => {
  let dir: string;
  let root: string;
  const berth = (args: string[], env?: Record<string, string>): Result => {
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const runD = (args: string[]): string => {
    const r = berth(['run', '-d', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  /** Container names of this root. */
  const names = (): string[] => (fs.existsSync(path.join(root, 'names')) ? fs.readdirSync(path.join(root, 'names')) : []);

  before(() => {
    ({ dir, root } = engineRoot('net-modes'));
  });
  after(() => {
    for (const n of names()) berth(['rm', '-f', n]);
    const mounts = mountsUnder(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('none: only lo, and it is UP; resolv.conf says there is no name server', () => {
    const r = berth(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ip -o link; echo ---; cat /etc/resolv.conf']);
    assert.equal(r.status, 0, r.stderr);
    const [links, resolv] = r.stdout.split('---\n');
    const lines = links.trim().split('\n');
    assert.equal(lines.length, 1, links);
    assert.match(lines[0], /^1: lo: <[^>]*\bUP\b/);
    assert.match(resolv, /^#.*no name server/);
  });

  it('host: the host\'s interfaces and resolv.conf; inspect says NetworkMode host', () => {
    // Other tests add and remove veths meanwhile: inside are the links the host had before
    // and after, and only links it had at one of those times.
    const before = fs.readdirSync('/sys/class/net');
    const r = berth(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'ip -o link; echo ---; cat /etc/resolv.conf']);
    const after = fs.readdirSync('/sys/class/net');
    assert.equal(r.status, 0, r.stderr);
    const [links, resolv] = r.stdout.split('---\n');
    const inside = [...links.matchAll(/^\d+: ([^:@]+)/gm)].map((m) => m[1]);
    const stable = before.filter((l) => after.includes(l));
    assert.deepEqual(stable.filter((l) => !inside.includes(l)), [], 'host links missing inside');
    assert.deepEqual(inside.filter((l) => !before.includes(l) && !after.includes(l)), [], 'links inside the host never had');
    assert.ok(inside.includes('lo') && inside.length > 1);
    assert.equal(resolv, fs.readFileSync('/etc/resolv.conf', 'utf8'));
  });

  it('container:NAME shares the peer\'s namespace: same links, and its 127.0.0.1 listener answers', async () => {
    const peer = runD(['--name', 'netpeer', 'busybox', 'sh', '-c', 'echo from-peer > /tmp/i; httpd -f -p 127.0.0.1:8080 -h /tmp']);
    const mine = berth(['run', '--rm', '--network', 'container:netpeer', 'busybox', 'sh', '-c',
      'ip -o link | sed "s/ *\\\\\\\\.*//"; echo ---; for i in 1 2 3 4 5 6 7 8 9 10; do printf "GET /i HTTP/1.0\\r\\n\\r\\n" | nc 127.0.0.1 8080 && break; sleep 0.2; done']);
    assert.equal(mine.status, 0, mine.stderr);
    const [links, got] = mine.stdout.split('---\n');
    const theirs = berth(['exec', 'netpeer', 'sh', '-c', 'ip -o link | sed "s/ *\\\\\\\\.*//"']);
    assert.equal(theirs.status, 0, theirs.stderr);
    assert.equal(links, theirs.stdout);
    assert.match(links, /tap0/);
    assert.match(got, /from-peer/);
    const ins = JSON.parse(berth(['inspect', peer]).stdout)[0];
    assert.equal(ins.HostConfig.NetworkMode, 'slirp4netns');
    // Its network settings are the peer's: a net.* sysctl from the joiner is refused.
    const before = berth(['exec', 'netpeer', 'cat', '/proc/sys/net/ipv4/ip_forward']).stdout;
    const sysctl = berth(['run', '--rm', '--network', 'container:netpeer', '--sysctl', 'net.ipv4.ip_forward=1', 'busybox', 'true']);
    assert.equal(sysctl.status, 125);
    assert.match(sysctl.stderr, /--sysctl net\.ipv4\.ip_forward would change the network settings of the container whose network this one joins/);
    assert.equal(berth(['exec', 'netpeer', 'cat', '/proc/sys/net/ipv4/ip_forward']).stdout, before);
    assert.equal(berth(['rm', '-f', 'netpeer']).status, 0);
  });

  it('container:NAME needs the peer to run; -p is refused for it, none and host', () => {
    assert.equal(berth(['create', '--name', 'sleeper', 'busybox', 'sleep', '60']).status, 0);
    const before = names();
    for (const [args, re] of [
      [['--network', 'container:sleeper'], /container "sleeper" is not running/],
      [['--network', 'container:nosuch'], /no such container: "nosuch"/],
      [['--network', 'container:'], /needs a container's name/],
      [['--network', 'none', '-p', '80'], /--network none cannot publish ports/],
      [['--network', 'host', '-p', '8080:80'], /--network host cannot publish ports/],
      [['--network', 'container:sleeper', '-p', '80'], /--network container cannot publish ports/],
    ] as [string[], RegExp][]) {
      const r = berth(['run', '--rm', ...args, 'busybox', 'true']);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.deepEqual(names(), before);
    assert.equal(berth(['rm', '-f', 'sleeper']).status, 0);
  });

  it('bad --network and -p values: exit 125 with a clear message, nothing made', () => {
    const before = names();
    const mountsBefore = mountsUnder(root).length;
    for (const [args, re] of [
      [['--network', 'bogus:x'], /unknown network mode "bogus:x"/],
      [['--network', 'none:x'], /--network none takes no options/],
      [['--network', 'slirp4netns:nosuch=1'], /unknown slirp4netns option "nosuch"/],
      [['--network', 'slirp4netns:mtu=99'], /slirp4netns mtu "99" must be a number/],
      [['--network', 'slirp4netns:port_handler=rootlesskit'], /port_handler "rootlesskit" is not supported/],
      [['--network', 'pasta:bogus=1'], /unknown pasta option "bogus"/],
      [['-p', '99999:80'], /-p "99999:80": host port "99999" is not a port/],
      [['-p', 'abc'], /-p "abc": container port "abc" is not a port/],
      [['-p', '80/sctp'], /protocol "sctp" is not tcp or udp/],
      [['-p', 'nohost:80:80'], /"nohost" is not an IP address/],
      [['-p', '8080:80', '-p', '8080:81'], /host port 0\.0\.0\.0:8080\/tcp is published twice/],
    ] as [string[], RegExp][]) {
      const r = berth(['run', '--rm', ...args, 'busybox', 'true']);
      assert.equal(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /hint: /);
    }
    assert.deepEqual(names(), before);
    assert.equal(mountsUnder(root).length, mountsBefore);
  });

  it('a missing slirp4netns or pasta binary: exit 125 before anything is made; info says why', () => {
    const before = names();
    for (const [mode, env] of [['slirp4netns', 'BERTH_SLIRP4NETNS'], ['pasta', 'BERTH_PASTA']]) {
      const e = { [env]: path.join(dir, 'no-such-binary') };
      const r = berth(['run', '--rm', '--network', mode, 'busybox', 'true'], e);
      assert.equal(r.status, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`${mode} is not installed at .*no-such-binary`));
      const info = berth(['info'], e);
      assert.match(info.stdout, new RegExp(`^ ${mode}: no, ${mode} is not installed`, 'm'));
    }
    assert.deepEqual(names(), before);
    const info = berth(['info', '--format', 'json']);
    const modes = JSON.parse(info.stdout).network.map((n: any) => n.mode);
    assert.deepEqual(modes, ['default', 'none', 'host', 'slirp4netns', 'pasta', 'container']);
  });

  it('the default mode comes from $BERTH_CONFIG; a broken file is an error', () => {
    const cfg = path.join(dir, 'berth.json');
    fs.writeFileSync(cfg, JSON.stringify({ network: { default: 'none' } }));
    const r = berth(['run', '--rm', 'busybox', 'ip', '-o', 'link'], { BERTH_CONFIG: cfg });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
    assert.match(berth(['info'], { BERTH_CONFIG: cfg }).stdout, new RegExp(`^ default: none \\(${cfg.replace(/[.]/g, '\\.')}\\)`, 'm'));
    // --network still wins over the file.
    const s = berth(['run', '--rm', '--network', 'slirp4netns', 'busybox', 'ip', '-o', 'link'], { BERTH_CONFIG: cfg });
    assert.match(s.stdout, /tap0/);
    fs.writeFileSync(cfg, '{"network": ');
    const bad = berth(['run', '--rm', 'busybox', 'true'], { BERTH_CONFIG: cfg });
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /berth\.json is not JSON/);
    const missing = berth(['run', '--rm', 'busybox', 'ip', '-o', 'link'], { BERTH_CONFIG: path.join(dir, 'absent.json') });
    assert.match(missing.stdout, /tap0/, 'no file: the built-in default, slirp4netns');
  });

  it('create + start + rm of a never-started container with ports leaves nothing', async () => {
    const r = berth(['create', '--name', 'created-net', '-p', '127.0.0.1::80', 'busybox', 'sleep', '60']);
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    const pids = (recordedNetwork(root, id)?.helpers ?? []).map((h: any) => h.pid);
    assert.equal(pids.length, 1);
    assert.ok(isAlive(pids[0]));
    const started = await berthAsync(root, ['start', 'created-net']);
    assert.equal(started.status, 0, started.stderr);
    assert.match(berth(['port', 'created-net']).stdout, /^80\/tcp -> 127\.0\.0\.1:\d+$/m);
    assert.equal(berth(['rm', '-f', 'created-net']).status, 0);
    assert.deepEqual(networkLeftovers(root, id, pids), []);
  });
});
