// Unit tests for network/ports.ts (-p/-P parsing) and network/index.ts's --network parsing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHostAddresses, etcContents, parseDnsFlags, parseNetworkRequest } from './index';
import { formatPort, overlaps, parsePorts, parsePublish } from './ports';
import { parseSlirpOptions } from './slirp4netns';

describe('parsePublish', () => {
  const ok: [string, string[]][] = [
    ['80', ['0.0.0.0:0->80/tcp']],
    ['8080:80', ['0.0.0.0:8080->80/tcp']],
    ['127.0.0.1:8080:80', ['127.0.0.1:8080->80/tcp']],
    ['127.0.0.1::80/udp', ['127.0.0.1:0->80/udp']],
    ['[::1]:8080:80', ['::1:8080->80/tcp']],
    ['8080-8081:80-81/TCP', ['0.0.0.0:8080->80/tcp', '0.0.0.0:8081->81/tcp']],
    ['0:80', ['0.0.0.0:0->80/tcp']],
  ];
  for (const [spec, want] of ok) {
    it(`parses ${spec}`, () => {
      assert.deepEqual(parsePublish(spec).map((m) => `${m.hostIp}:${m.hostPort}->${m.containerPort}/${m.protocol}`), want);
    });
  }
  for (const spec of ['99999:80', 'abc', '0', '80/sctp', 'host:80:80', '8080-8082:80-81', '80:', '1.2.3.4:80', '[::1]:80', '65536']) {
    it(`refuses ${spec}`, () => assert.throws(() => parsePublish(spec), { code: 'NETWORK_PORT_INVALID' }));
  }
});

describe('parsePorts', () => {
  it('adds exposed ports for -P, not twice, and refuses one host port claimed twice', () => {
    const p = parsePorts(['127.0.0.1:8080:80'], true, { '80/tcp': {}, '53/udp': {}, 'junk': {} });
    assert.deepEqual(p.map(formatPort), ['80/tcp -> 127.0.0.1:8080', '53/udp -> 0.0.0.0:0']);
    assert.throws(() => parsePorts(['8080:80', '127.0.0.1:8080:81'], false), { code: 'NETWORK_PORT_INVALID' });
    assert.doesNotThrow(() => parsePorts(['8080:80', '8080:80/udp'], false));
  });
  it('overlaps: wildcards collide with any address, free ports never', () => {
    const m = (hostIp: string, hostPort: number) => ({ hostIp, hostPort, containerPort: 1, protocol: 'tcp' as const });
    assert.ok(overlaps(m('0.0.0.0', 80), m('127.0.0.1', 80)));
    assert.ok(!overlaps(m('127.0.0.2', 80), m('127.0.0.1', 80)));
    assert.ok(!overlaps(m('0.0.0.0', 0), m('0.0.0.0', 0)));
  });
});

describe('parseNetworkRequest', () => {
  it('reads modes and options', () => {
    assert.deepEqual(parseNetworkRequest('slirp4netns:allow_host_loopback=true,mtu=1500', [], false),
      { mode: 'slirp4netns', options: { allow_host_loopback: 'true', mtu: '1500' }, ports: [] });
    assert.equal(parseNetworkRequest('container:web', [], false).container, 'web');
    assert.deepEqual(parseNetworkRequest('mynet', [], false), { mode: 'bridge', network: 'mynet', options: {}, ports: [] });
    assert.equal(parseNetworkRequest('none', [], false).mode, 'none');
  });
  it('refuses unknown modes and options where none are taken', () => {
    for (const v of ['bogus:x', 'host:a=b', 'container:', '-x']) assert.throws(() => parseNetworkRequest(v, [], false), /NETWORK|network/);
  });
});

// review: a host address that is not the host's was found only when the helper failed to
// bind it, after the container was made, with a hint blaming another program.
describe('checkHostAddresses', () => {
  const local = new Set(['192.0.2.7', 'fe80::1']);
  const m = (hostIp: string) => [{ hostIp, hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
  for (const ip of ['0.0.0.0', '::', '127.0.0.1', '127.9.9.9', '192.0.2.7', 'fe80::1%eth0']) {
    it(`accepts ${ip}`, () => checkHostAddresses(m(ip), () => local));
  }
  for (const ip of ['192.0.2.1', '::2', '10.0.0.1']) {
    it(`refuses ${ip}`, () => assert.throws(() => checkHostAddresses(m(ip), () => local), /is not an address of this host/));
  }
  it('checks nothing when the addresses cannot be listed', () => checkHostAddresses(m('192.0.2.1'), () => undefined));
});

describe('parseDnsFlags and etcContents', () => {
  const slirp = parseNetworkRequest('slirp4netns', [], false);
  it('replaces only the lines a flag names, and refuses what cannot be written', () => {
    const req = parseDnsFlags(slirp, { dnsOption: ['ndots:3'], addHost: ['gw:host-gateway', 'h6:[::1]'] });
    const att = { mode: 'slirp4netns' as const, address: '10.0.2.100/24', gateway: '10.0.2.2', ports: [], helpers: [], hosts: [],
      resolvConf: ['search corp.test', 'nameserver 10.0.2.3', 'options ndots:1 rotate'] };
    const c = etcContents(att, 'box', req);
    assert.equal(c.resolvConf, 'search corp.test\nnameserver 10.0.2.3\noptions ndots:3\n');
    assert.match(c.hosts, /^10\.0\.2\.100\tbox\n10\.0\.2\.2\tgw\n::1\th6\n$/m);
    // No flags: the network's own files.
    assert.equal(etcContents(att, 'box', slirp).resolvConf, 'search corp.test\nnameserver 10.0.2.3\noptions ndots:1 rotate\n');
    // --network none with --dns: the name server replaces the "no name server" comment.
    assert.equal(etcContents(undefined, 'box', parseDnsFlags(parseNetworkRequest('none', [], false), { dns: ['::1'] })).resolvConf, 'nameserver ::1\n');
    assert.throws(() => parseDnsFlags(parseNetworkRequest('container:x', [], false), { dns: ['192.0.2.1'] }), /do not go with --network container:/);
    assert.throws(() => parseDnsFlags(slirp, { addHost: ['a b:192.0.2.1'] }), /is not valid/);
    assert.throws(() => parseDnsFlags(slirp, { dnsOption: ['ndots:1\nnameserver 1.2.3.4'] }), /is not valid/);
  });
  it('--dns-search . drops the search domains, as Docker\'s; --add-host refuses an IPv6 zone', () => {
    const att = { mode: 'slirp4netns' as const, address: '10.0.2.100/24', gateway: '10.0.2.2', ports: [], helpers: [], hosts: [],
      resolvConf: ['search corp.test', 'nameserver 10.0.2.3'] };
    assert.equal(etcContents(att, 'box', parseDnsFlags(slirp, { dnsSearch: ['.'] })).resolvConf, 'nameserver 10.0.2.3\n');
    assert.equal(etcContents(att, 'box', parseDnsFlags(slirp, { dnsSearch: ['a.test', 'b.test.'] })).resolvConf,
      'nameserver 10.0.2.3\nsearch a.test b.test.\n');
    for (const d of ['..', '.a', 'a..b', 'a b']) assert.throws(() => parseDnsFlags(slirp, { dnsSearch: [d] }), /is not valid/, d);
    for (const h of ['z:fe80::1%eth0', 'z:[fe80::1%eth0]']) assert.throws(() => parseDnsFlags(slirp, { addHost: [h] }), /is not valid/, h);
  });
});

describe('slirp4netns outbound_addr', () => {
  const opts = (v: string) => parseSlirpOptions(parseNetworkRequest(`slirp4netns:${v}`, [], false).options);
  it('takes an address or an interface of this host, and refuses others before anything runs', () => {
    assert.doesNotThrow(() => opts('outbound_addr=127.0.0.1'));
    assert.doesNotThrow(() => opts('outbound_addr=lo'));
    assert.throws(() => opts('outbound_addr=192.0.2.1'), /outbound_addr "192\.0\.2\.1" is not an address of this host/);
    assert.throws(() => opts('outbound_addr=no-such-if0'), /is not an IPv4 address or an interface of this host/);
    assert.throws(() => opts('outbound_addr6=127.0.0.1'), /is not an IPv6 address/);
  });
});
