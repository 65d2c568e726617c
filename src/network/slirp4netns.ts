// `--network slirp4netns[:OPTIONS]`: user-mode networking through slirp4netns(1), which
// makes tap0 in the container's namespace and carries its traffic with the host's own
// sockets (no root-only kernel setup, no NAT rules). Published ports go through its API
// socket (add_hostfwd). Called by network/index.ts; Node host process.
//
// Order: spawn slirp4netns on the namespace file (--netns-type=path) -> report its pid
// (ctx.onHelper: the engine records it before anything else can fail) -> wait for
// --ready-fd (tap0 configured) -> add_hostfwd per port. Any failure ends the process and
// removes its files before the error is thrown.
//
// Lifetime: slirp4netns exits when the other end of its --exit-fd pipe is closed. A
// foreground `berth run` holds it, so slirp4netns dies with that berth even when it is
// SIGKILLed. For a detached container, the berth that makes it holds the end until the
// container's monitor has inherited it (helpers.ts takeExitFds, passed on by engine/
// detached.ts and restart.ts), so slirp4netns lives as long as the monitor, as podman's
// lives with conmon, and a berth killed before the monitor exists takes it along. The
// container's cleanup also ends it by pid + start time.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '../common/errors';
import { endHelper, findBinary, helperOf, holdExitFd, lastLogLines } from './helpers';
import { pickFreePort } from './ports';
import type { HelperProcess, NetworkAttachment, NetworkDriver, PortMapping, SetupContext } from './types';

const READY_TIMEOUT_MS = 10_000;
export const SLIRP_MTU = 65520;
const OPTIONS_HINT = 'slirp4netns options: allow_host_loopback=true|false, mtu=N, cidr=A.B.C.D/N, enable_ipv6=true|false, '
  + 'outbound_addr=IPv4, outbound_addr6=IPv6, port_handler=slirp4netns';

export interface SlirpOptions {
  allowHostLoopback: boolean;
  mtu: number;
  /** The network; the guest is .100, the gateway (the host) .2 and the DNS forwarder .3 in it. */
  cidr: { base: number; prefix: number };
  enableIpv6: boolean;
  outboundAddr?: string;
  outboundAddr6?: string;
}

function bool(k: string, v: string): boolean {
  if (v === 'true' || v === '') return true;
  if (v === 'false') return false;
  throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns option ${k}="${v}" must be true or false`, { hint: OPTIONS_HINT });
}

const ipv4ToInt = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const intToIpv4 = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/**
 * The `:k=v,...` of --network slirp4netns, as podman documents them.
 * @throws BerthError NETWORK_OPTION_INVALID
 */
export function parseSlirpOptions(o: Record<string, string>): SlirpOptions {
  const out: SlirpOptions = { allowHostLoopback: false, mtu: SLIRP_MTU, cidr: { base: ipv4ToInt('10.0.2.0'), prefix: 24 }, enableIpv6: false };
  for (const [k, v] of Object.entries(o)) {
    switch (k) {
      case 'allow_host_loopback': out.allowHostLoopback = bool(k, v); break;
      case 'enable_ipv6': out.enableIpv6 = bool(k, v); break;
      case 'mtu':
        // slirp4netns's own bounds: at least IPv4's minimum, at most 65521.
        if (!/^\d+$/.test(v) || Number(v) < 576 || Number(v) > 65521) {
          throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns mtu "${v}" must be a number from 576 to 65521`, { hint: OPTIONS_HINT });
        }
        out.mtu = Number(v);
        break;
      case 'cidr': {
        const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(v);
        // .100 must fit in the network: at most a /25.
        if (!m || !net.isIPv4(m[1]) || Number(m[2]) > 25 || Number(m[2]) < 1) {
          throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns cidr "${v}" must be an IPv4 network of /25 or larger`, { hint: OPTIONS_HINT });
        }
        const prefix = Number(m[2]);
        const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
        out.cidr = { base: (ipv4ToInt(m[1]) & mask) >>> 0, prefix };
        break;
      }
      case 'outbound_addr':
        out.outboundAddr = outboundAddress(k, v, 4);
        break;
      case 'outbound_addr6':
        out.outboundAddr6 = outboundAddress(k, v, 6);
        break;
      case 'port_handler':
        // rootlesskit's port handler keeps the client's address, but needs rootlesskit,
        // which berth does not run; slirp4netns's own forwarder is what berth uses.
        if (v !== 'slirp4netns') {
          throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns port_handler "${v}" is not supported`, {
            hint: 'berth forwards ports with slirp4netns itself (port_handler=slirp4netns)',
          });
        }
        break;
      default:
        throw new BerthError('NETWORK_OPTION_INVALID', `unknown slirp4netns option "${k}"`, { hint: OPTIONS_HINT });
    }
  }
  return out;
}

/** Addresses slirp4netns gives the namespace for OPTS (see slirp4netns(1)). */
export function slirpAddresses(opts: SlirpOptions): { guest: string; gateway: string; dns: string; network: string } {
  return {
    guest: `${intToIpv4(opts.cidr.base + 100)}/${opts.cidr.prefix}`,
    gateway: intToIpv4(opts.cidr.base + 2),
    dns: intToIpv4(opts.cidr.base + 3),
    network: `${intToIpv4(opts.cidr.base)}/${opts.cidr.prefix}`,
  };
}

/** One request on the API socket; the reply's "return", or throws its "error" text. */
async function apiCall(dir: string, sock: string, request: unknown): Promise<any> {
  // A sun_path holds 108 bytes and a container's directory can be deeper than that: reach
  // the socket through an fd of its directory, whose /proc name is short.
  const dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      let data = '';
      const c = net.connect({ path: `/proc/self/fd/${dirFd}/${sock}` });
      c.setEncoding('utf8');
      c.setTimeout(5000, () => c.destroy(new Error('no reply within 5 s')));
      c.on('connect', () => c.end(JSON.stringify(request)));
      c.on('data', (d: string) => (data += d));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    const v = JSON.parse(reply);
    if (v.error) throw new Error(typeof v.error.desc === 'string' ? v.error.desc : JSON.stringify(v.error));
    return v.return;
  } finally {
    fs.closeSync(dirFd);
  }
}

/** Waits for one byte on READY or the process's exit; false on exit or timeout. */
function waitReady(ready: Readable, child: ReturnType<typeof spawn>): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      ready.removeAllListeners('data');
      child.removeListener('exit', onExit);
      resolve(ok);
    };
    const onExit = () => done(false);
    const timer = setTimeout(() => done(false), READY_TIMEOUT_MS);
    ready.once('data', () => done(true));
    ready.once('end', () => done(false));
    child.once('exit', onExit);
  });
}

async function addPorts(ctx: SetupContext, sock: string, ports: PortMapping[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const p of ports) {
    const hostPort = p.hostPort || (await pickFreePort(p));
    try {
      await apiCall(ctx.dir, sock, {
        execute: 'add_hostfwd',
        arguments: { proto: p.protocol, host_addr: p.hostIp, host_port: hostPort, guest_port: p.containerPort },
      });
    } catch (err) {
      throw new BerthError('NETWORK_PORT_IN_USE', `publish ${p.hostIp}:${hostPort}/${p.protocol}: the host port cannot be bound (slirp4netns: ${(err as Error).message})`, {
        cause: err, context: { containerId: ctx.containerId },
        hint: 'another program (or container) holds that port: choose another host port, or -p CONTAINERPORT for a free one',
      });
    }
    out.push({ ...p, hostPort });
  }
  return out;
}

export const slirp4netnsDriver: NetworkDriver & { validate(req: SetupContext['request']): void } = {
  validate(req) {
    parseSlirpOptions(req.options);
    // Refused here, before the container exists: add_hostfwd of slirp4netns 1.2 takes IPv4
    // only, and its "bad arguments.host_addr" came out as "another program holds that port".
    const v6 = req.ports.find((p) => net.isIPv6(p.hostIp));
    if (v6) {
      throw new BerthError('NETWORK_PORTS_UNSUPPORTED', `slirp4netns cannot publish on the IPv6 address ${v6.hostIp} (-p [${v6.hostIp}]:...)`, {
        hint: 'publish on an IPv4 address, or use --network pasta:enable_ipv6=true or a bridge network',
      });
    }
    if (!findBinary('slirp4netns')) {
      throw new BerthError('NETWORK_HELPER_MISSING', `slirp4netns is not installed${process.env.BERTH_SLIRP4NETNS ? ` at ${process.env.BERTH_SLIRP4NETNS} ($BERTH_SLIRP4NETNS)` : ''}`, {
        hint: 'install it (apt-get install slirp4netns), or use --network pasta, host or none',
      });
    }
  },

  async setup(ctx) {
    const opts = parseSlirpOptions(ctx.request.options);
    const addr = slirpAddresses(opts);
    const bin = findBinary('slirp4netns');
    if (!bin) throw new BerthError('NETWORK_HELPER_MISSING', 'slirp4netns is not installed', { hint: 'install it (apt-get install slirp4netns)' });
    const sock = 'slirp4netns.sock';
    const logPath = path.join(ctx.dir, 'slirp4netns.log');
    const files = [path.join(ctx.dir, sock), logPath];
    const args = [
      '--configure', `--mtu=${opts.mtu}`, '--netns-type=path', `--cidr=${addr.network}`,
      ...(opts.allowHostLoopback ? [] : ['--disable-host-loopback']),
      ...(opts.enableIpv6 ? ['--enable-ipv6'] : []),
      ...(opts.outboundAddr ? [`--outbound-addr=${opts.outboundAddr}`] : []),
      ...(opts.outboundAddr6 ? [`--outbound-addr6=${opts.outboundAddr6}`] : []),
      // Relative: the socket is made in its cwd, the container's directory (sun_path limit).
      '--ready-fd=3', `--api-socket=${sock}`, '--exit-fd=4',
      ctx.netnsPath, 'tap0',
    ];
    const logFd = fs.openSync(logPath, 'a', 0o600);
    let child;
    try {
      // Its own session: a ^C meant for the container's foreground run must not reach it.
      child = spawn(bin, args, { cwd: ctx.dir, stdio: ['ignore', logFd, logFd, 'pipe', 'pipe'], detached: true });
    } finally {
      fs.closeSync(logFd);
    }
    const helper: HelperProcess | undefined = child.pid ? helperOf('slirp4netns', child.pid, child) : undefined;
    if (helper) ctx.onHelper?.(helper);
    const att: NetworkAttachment = {
      mode: 'slirp4netns', netnsPath: ctx.netnsPath, device: 'tap0', address: addr.guest, gateway: addr.gateway,
      ports: [], helpers: helper ? [helper] : [], resolvConf: [`nameserver ${addr.dns}`], hosts: [], files,
    };
    const fail = async (err: BerthError): Promise<never> => {
      await slirp4netnsDriver.teardown(ctx.root, att);
      throw err;
    };
    child.on('error', () => undefined); // reported as "not ready" below
    const ready = child.stdio[3] as Readable;
    if (!(await waitReady(ready, child))) {
      const why = lastLogLines(logPath);
      return fail(new BerthError('NETWORK_SETUP_FAILED', `slirp4netns did not configure tap0 in ${ctx.netnsPath}${why ? `: ${why}` : ''}`, {
        context: { containerId: ctx.containerId, path: logPath }, hint: 'see the log above; run berth with --debug for details',
      }));
    }
    ready.destroy();
    // The exit-fd end stays open for as long as this process lives, without keeping it
    // alive; a detached container's monitor takes it over.
    const exitEnd = child.stdio[4] as net.Socket;
    exitEnd.unref();
    if (!ctx.foreground) holdExitFd(exitEnd);
    child.unref();
    try {
      att.ports = await addPorts(ctx, sock, ctx.request.ports);
    } catch (err) {
      return fail(err as BerthError);
    }
    return att;
  },

  async teardown(_root, att) {
    for (const h of att.helpers) await endHelper(h);
    for (const f of att.files ?? []) fs.rmSync(f, { force: true });
  },
};

/**
 * outbound_addr(6)=V: an address this host has (slirp4netns would bind each outgoing
 * connection to it, and fail each one otherwise), or an interface's name, as podman takes
 * it, for that interface's first address of FAMILY.
 * @throws BerthError NETWORK_OPTION_INVALID
 */
function outboundAddress(k: string, v: string, family: 4 | 6): string {
  const ifs = os.networkInterfaces();
  const fam = `IPv${family}`;
  const hint = 'give an address that `ip addr` lists on this host, or an interface\'s name (outbound_addr=eth0)';
  if (!net.isIP(v) && ifs[v]) {
    const a = ifs[v]!.find((x) => x.family === fam);
    if (!a) throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns ${k}: interface "${v}" has no ${fam} address`, { hint });
    return a.address;
  }
  if (net.isIP(v) !== family) {
    throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns ${k} "${v}" is not an ${fam} address or an interface of this host`, { hint });
  }
  const norm = (a: string) => (family === 6 ? a.toLowerCase() : a);
  if (!Object.values(ifs).flat().some((x) => x && x.family === fam && norm(x.address) === norm(v))) {
    throw new BerthError('NETWORK_OPTION_INVALID', `slirp4netns ${k} "${v}" is not an address of this host`, { hint });
  }
  return v;
}
