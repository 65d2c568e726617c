// nftables for bridge networks: one table per network (family ip, named from a hash of
// root + network id, so test runs with different --roots never touch each other's rules)
// holding its masquerade, its isolation and, tagged with the container id as a comment,
// the DNAT rules of published ports. Every change is one `nft -f -` batch, which the kernel
// applies atomically. Also the forwarding sysctl. Node host process, under the network lock.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import type { NetworkRecord } from './networks';
import type { PortMapping } from './types';

function nft(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('nft', args, { encoding: 'utf8', input });
  if (r.error) {
    throw new BerthError('NETWORK_NFT', `run nft: ${r.error.message}`, { hint: 'install nftables (setup.sh does)' });
  }
  return r;
}

function batch(what: string, script: string): void {
  const r = nft(['-f', '-'], script);
  if (r.status !== 0) {
    throw new BerthError('NETWORK_NFT', `${what}: ${r.stderr.trim() || `nft exited ${r.status}`}`, {
      hint: 'berth needs nftables in the kernel (nf_tables, nft_nat, nft_masq, nft_fib)',
    });
  }
}

export function tableExists(table: string): boolean {
  return nft(['list', 'table', 'ip', table]).status === 0;
}

/**
 * Makes NET's table unless it exists (a batch is atomic: a table that exists is whole).
 * Outbound traffic from the subnet leaving by another interface is masqueraded; traffic
 * that a port's DNAT sends back into the same bridge is masqueraded too, so that the reply
 * returns through the host ("hairpin"). An internal network forwards nothing in or out.
 * @throws BerthError NETWORK_NFT
 */
export function ensureNat(net: NetworkRecord): void {
  if (tableExists(net.table)) return;
  const t = `ip ${net.table}`;
  const br = JSON.stringify(net.bridge);
  const lines = [
    `add table ${t}`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `add rule ${t} postrouting ct status dnat ip saddr ${net.subnet} oifname ${br} masquerade`,
  ];
  if (net.internal) {
    lines.push(`add rule ${t} forward iifname ${br} oifname != ${br} drop`);
    lines.push(`add rule ${t} forward oifname ${br} iifname != ${br} drop`);
  } else {
    lines.push(`add rule ${t} postrouting ip saddr ${net.subnet} oifname != ${br} masquerade`);
  }
  batch(`create nftables table ${net.table}`, lines.join('\n') + '\n');
}

/** Removes NET's table with every rule in it; quiet if it is gone. @throws BerthError NETWORK_NFT */
export function removeNat(table: string): void {
  if (!tableExists(table)) return;
  batch(`delete nftables table ${table}`, `delete table ip ${table}\n`);
}

/**
 * DNAT rules for a container's published ports: traffic arriving from outside (or from
 * a container) at a local address and host port goes to ADDRESS:containerPort. Traffic the
 * host itself makes (127.0.0.1 above all) does not pass prerouting; the port proxy
 * (native/proxy) serves that.
 * @throws BerthError NETWORK_NFT
 */
export function addPortRules(net: NetworkRecord, containerId: string, address: string, ports: PortMapping[]): void {
  const lines: string[] = [];
  for (const p of ports) {
    // IPv6 binds and loopback ones only get the proxy (no DNAT: 127/8 never arrives from outside).
    if (p.hostIp.includes(':') || p.hostIp.startsWith('127.')) continue;
    const dst = p.hostIp === '0.0.0.0' || p.hostIp === '' ? '' : `ip daddr ${p.hostIp} `;
    lines.push(`add rule ip ${net.table} prerouting fib daddr type local ${dst}${p.protocol} dport ${p.hostPort} `
      + `dnat to ${address}:${p.containerPort} comment "${containerId}"`);
  }
  if (lines.length) batch(`add port rules to ${net.table}`, lines.join('\n') + '\n');
}

/** Deletes the rules tagged with CONTAINERID from TABLE; quiet if the table is gone. @throws BerthError NETWORK_NFT */
export function removePortRules(table: string, containerId: string): void {
  const r = nft(['-j', '-a', 'list', 'table', 'ip', table]);
  if (r.status !== 0) return;
  const rules = (JSON.parse(r.stdout).nftables as any[])
    .map((o) => o.rule)
    .filter((x) => x && x.comment === containerId);
  if (!rules.length) return;
  batch(`remove port rules from ${table}`, rules.map((x) => `delete rule ip ${table} ${x.chain} handle ${x.handle}`).join('\n') + '\n');
}

/**
 * Turns on IPv4 forwarding (net.ipv4.ip_forward), which routing between a bridge and the
 * host's other interfaces needs; berth never turns it off again (other users may rely on it).
 * @throws BerthError NETWORK_FORWARDING
 */
export function enableForwarding(): void {
  const f = '/proc/sys/net/ipv4/ip_forward';
  try {
    if (fs.readFileSync(f, 'utf8').trim() !== '1') fs.writeFileSync(f, '1');
  } catch (err) {
    throw new BerthError('NETWORK_FORWARDING', `turn on IPv4 forwarding (${f}): ${(err as Error).message}`, {
      cause: err, hint: 'bridge networks need root and a writable /proc/sys',
    });
  }
}
