// `--network pasta[:OPTIONS]`: user-mode networking through passt's pasta(1), which
// copies the host's address and routes into the container's namespace (its interface is
// named as the host's) and carries the traffic with the host's sockets. Published ports
// are pasta's own -t/-u options, so they are bound before pasta reports ready. Called by
// network/index.ts; Node host process.
//
// Order: run pasta on the namespace file (--netns PATH); it configures the namespace,
// binds the ports, writes its pid file and only then leaves its foreground process
// (it daemonizes), so that process's exit status is the readiness signal: 0 = ready,
// anything else = failed (the log says why; "Failed to bind" = a port is taken).
// pasta has no exit-fd: it is ended by pid + start time at teardown.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError } from '../common/errors';
import { endHelper, findBinary, helperOf, lastLogLines } from './helpers';
import { pickFreePort } from './ports';
import type { NetworkAttachment, NetworkDriver, PortMapping, SetupContext } from './types';

const READY_TIMEOUT_MS = 10_000;
/** The address the container asks for DNS; pasta forwards it to the host's first resolver (podman uses the same). */
export const PASTA_DNS = '169.254.1.1';
const OPTIONS_HINT = 'pasta options: allow_host_loopback=true|false, mtu=N, enable_ipv6=true|false';

export interface PastaOptions {
  allowHostLoopback: boolean;
  mtu?: number;
  enableIpv6: boolean;
}

/**
 * The `:k=v,...` of --network pasta. Deliberately the same vocabulary as slirp4netns's
 * (podman passes raw pasta flags instead; berth keeps one set of words for both).
 * @throws BerthError NETWORK_OPTION_INVALID
 */
export function parsePastaOptions(o: Record<string, string>): PastaOptions {
  const out: PastaOptions = { allowHostLoopback: false, enableIpv6: false };
  const bool = (k: string, v: string): boolean => {
    if (v === 'true' || v === '') return true;
    if (v === 'false') return false;
    throw new BerthError('NETWORK_OPTION_INVALID', `pasta option ${k}="${v}" must be true or false`, { hint: OPTIONS_HINT });
  };
  for (const [k, v] of Object.entries(o)) {
    if (k === 'allow_host_loopback') out.allowHostLoopback = bool(k, v);
    else if (k === 'enable_ipv6') out.enableIpv6 = bool(k, v);
    else if (k === 'mtu') {
      if (!/^\d+$/.test(v) || Number(v) < 576 || Number(v) > 65520) {
        throw new BerthError('NETWORK_OPTION_INVALID', `pasta mtu "${v}" must be a number from 576 to 65520`, { hint: OPTIONS_HINT });
      }
      out.mtu = Number(v);
    } else throw new BerthError('NETWORK_OPTION_INVALID', `unknown pasta option "${k}"`, { hint: OPTIONS_HINT });
  }
  return out;
}

/** PORTS as pasta's -t/-u specs: "[ADDR/]HOSTPORT:CONTAINERPORT", "none" when there are none. */
export function pastaPortArgs(ports: PortMapping[]): string[] {
  const spec = (p: PortMapping) => `${p.hostIp === '0.0.0.0' || p.hostIp === '' ? '' : `${p.hostIp}/`}${p.hostPort}:${p.containerPort}`;
  const tcp = ports.filter((p) => p.protocol === 'tcp').map(spec);
  const udp = ports.filter((p) => p.protocol === 'udp').map(spec);
  // pasta's default for all four is "auto": it would publish whatever the container
  // listens on, and reach whatever the host listens on, without being asked.
  return [
    ...(tcp.length ? tcp.flatMap((s) => ['-t', s]) : ['-t', 'none']),
    ...(udp.length ? udp.flatMap((s) => ['-u', s]) : ['-u', 'none']),
    '-T', 'none', '-U', 'none',
  ];
}

/** "assign: 192.0.2.2", "router: ..." lines of pasta's start-up log -> what it configured. */
function configured(log: string): { ifname?: string; address?: string; gateway?: string } {
  const ifname = /Namespace interface: (\S+)/.exec(log)?.[1];
  const assign = /DHCP:\s*\n[^\n]*assign: (\S+)/.exec(log)?.[1];
  const mask = /mask: (\d+\.\d+\.\d+\.\d+)/.exec(log)?.[1];
  const gateway = /DHCP:(?:\s*\n[^\n]*){0,3}?router: (\S+)/.exec(log)?.[1];
  const bits = mask ? mask.split('.').reduce((a, o) => a + [...Number(o).toString(2)].filter((c) => c === '1').length, 0) : undefined;
  return { ifname, address: assign ? `${assign}${bits !== undefined ? `/${bits}` : ''}` : undefined, gateway };
}

function runToExit(bin: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(bin, args, { stdio: 'ignore', detached: true });
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      resolve(null);
    }, READY_TIMEOUT_MS);
    c.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    c.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export const pastaDriver: NetworkDriver & { validate(req: SetupContext['request']): void } = {
  validate(req) {
    const opts = parsePastaOptions(req.options);
    // Without enable_ipv6 pasta runs --ipv4-only and cannot bind an IPv6 address; its
    // "Failed to bind" came out as "another program holds that port".
    const v6 = req.ports.find((p) => p.hostIp.includes(':'));
    if (v6 && !opts.enableIpv6) {
      throw new BerthError('NETWORK_OPTION_INVALID', `pasta publishes on the IPv6 address ${v6.hostIp} only with enable_ipv6=true`, {
        hint: 'use --network pasta:enable_ipv6=true, or publish on an IPv4 address',
      });
    }
    if (!findBinary('pasta')) {
      throw new BerthError('NETWORK_HELPER_MISSING', `pasta is not installed${process.env.BERTH_PASTA ? ` at ${process.env.BERTH_PASTA} ($BERTH_PASTA)` : ''}`, {
        hint: 'install it (apt-get install passt), or use --network slirp4netns, host or none',
      });
    }
  },

  async setup(ctx) {
    const opts = parsePastaOptions(ctx.request.options);
    const bin = findBinary('pasta');
    if (!bin) throw new BerthError('NETWORK_HELPER_MISSING', 'pasta is not installed', { hint: 'install it (apt-get install passt)' });
    const ports: PortMapping[] = [];
    for (const p of ctx.request.ports) ports.push({ ...p, hostPort: p.hostPort || (await pickFreePort(p)) });
    const pidFile = path.join(ctx.dir, 'pasta.pid');
    const logPath = path.join(ctx.dir, 'pasta.log');
    const att: NetworkAttachment = {
      mode: 'pasta', netnsPath: ctx.netnsPath, ports: [], helpers: [], resolvConf: [`nameserver ${PASTA_DNS}`], hosts: [],
      files: [pidFile, logPath],
    };
    const args = [
      // As root, pasta drops to "nobody" by default, and nobody cannot enter a namespace
      // that root owns ("Couldn't switch to pasta namespaces"): stay root, as podman does.
      ...(process.getuid?.() === 0 ? ['--runas', '0'] : []),
      '--config-net', '--netns', ctx.netnsPath, '--pid', pidFile, '--log-file', logPath,
      ...(opts.mtu ? ['--mtu', String(opts.mtu)] : []),
      // The gateway's address reaches the host's loopback unless told otherwise; closed by
      // default, as slirp4netns's --disable-host-loopback.
      ...(opts.allowHostLoopback ? [] : ['--no-map-gw']),
      ...(opts.enableIpv6 ? [] : ['--ipv4-only']),
      '--dns-forward', PASTA_DNS,
      ...pastaPortArgs(ports),
    ];
    const fail = async (err: BerthError): Promise<never> => {
      await pastaDriver.teardown(ctx.root, att);
      throw err;
    };
    const code = await runToExit(bin, args);
    let pid = 0;
    try {
      pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    } catch {
      // not written: it failed before daemonizing
    }
    const helper = pid > 0 ? helperOf('pasta', pid) : undefined;
    if (helper) {
      att.helpers.push(helper);
      ctx.onHelper?.(helper);
    }
    if (code !== 0 || !helper) {
      const why = lastLogLines(logPath);
      if (/bind/i.test(why)) {
        return fail(new BerthError('NETWORK_PORT_IN_USE', `publish ${ports.map((p) => `${p.hostIp}:${p.hostPort}/${p.protocol}`).join(', ')}: a host port cannot be bound (pasta: ${why})`, {
          context: { containerId: ctx.containerId },
          hint: 'another program (or container) holds that port: choose another host port, or -p CONTAINERPORT for a free one',
        }));
      }
      return fail(new BerthError('NETWORK_SETUP_FAILED', `pasta did not configure ${ctx.netnsPath}${why ? `: ${why}` : ''}`, {
        context: { containerId: ctx.containerId, path: logPath }, hint: 'pasta needs a host interface with a default route; run berth with --debug',
      }));
    }
    const c = configured(fs.readFileSync(logPath, 'utf8'));
    att.device = c.ifname;
    att.address = c.address;
    att.gateway = c.gateway;
    att.ports = ports;
    return att;
  },

  async teardown(_root, att) {
    for (const h of att.helpers) await endHelper(h);
    for (const f of att.files ?? []) fs.rmSync(f, { force: true });
  },
};
