// `berth inspect`: a container as Docker's `docker inspect` shows it (the fields scripts
// read most: Id, Name, State, Config, HostConfig). Node host process.
import { networkModeName } from '../network';
import type { PortMapping } from '../network/types';
import type { ContainerRecord, ContainerStore } from './containers';
import { isActive, logFile } from './lifecycle';
import { fmt } from './userns';

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Docker's {"80/tcp": [{HostIp, HostPort}]}; REQUESTED: as asked (HostPort "" = any). */
function portMap(ports: PortMapping[], requested: boolean): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) {
    (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: requested && !p.hostPort ? '' : String(p.hostPort) });
  }
  return out;
}

/** Docker's NetworkSettings: the live network's address and ports (empty once it exited). */
function networkSettings(rec: ContainerRecord): Record<string, unknown> {
  const n = rec.network;
  const [ip, prefix] = (n?.address ?? '').split('/');
  return {
    SandboxKey: n?.netnsPath ?? '',
    Ports: portMap(n?.ports ?? [], false),
    IPAddress: ip ?? '',
    IPPrefixLen: prefix ? Number(prefix) : 0,
    Gateway: n?.gateway ?? '',
    MacAddress: n?.mac ?? '',
    Networks: n && n.mode !== 'none' && n.mode !== 'host' && n.mode !== 'container'
      ? { [n.network ?? n.mode]: { IPAddress: ip ?? '', IPPrefixLen: prefix ? Number(prefix) : 0, Gateway: n.gateway ?? '', MacAddress: n.mac ?? '' } }
      : {},
  };
}

export function inspectContainer(cs: ContainerStore, rec: ContainerRecord): Record<string, unknown> {
  const active = isActive(rec);
  const running = rec.state.status === 'running';
  const c = rec.config;
  const h = rec.hostConfig;
  return {
    Id: rec.id,
    Created: rec.created,
    Path: rec.command[0] ?? '',
    Args: rec.command.slice(1),
    State: {
      Status: rec.state.status,
      Running: running,
      Paused: running && !!rec.state.paused,
      Restarting: false,
      OOMKilled: rec.state.oomKilled,
      Dead: false,
      Pid: active ? rec.state.pid : 0,
      ExitCode: rec.state.exitCode,
      Error: '',
      StartedAt: rec.state.startedAt ?? ZERO_TIME,
      FinishedAt: rec.state.finishedAt ?? ZERO_TIME,
    },
    Image: rec.imageId,
    LogPath: rec.monitor ? logFile(cs, rec.id) : '',
    Name: `/${rec.name}`,
    RestartCount: rec.restartCount ?? 0,
    Mounts: (rec.mounts ?? []).filter((m) => m.Type !== 'tmpfs').map((m) => ({
      Type: m.Type, ...(m.Name ? { Name: m.Name, Driver: 'local' } : {}), Source: m.Source, Destination: m.Destination, RW: m.RW,
    })),
    Driver: 'overlay',
    NetworkSettings: networkSettings(rec),
    MonitorPid: rec.monitor && active ? rec.monitor.pid : 0,
    HostConfig: {
      Memory: h?.memory ?? 0,
      NanoCpus: h?.nanoCpus ?? 0,
      PidsLimit: h?.pidsLimit ?? 0,
      MemorySwap: h?.memorySwap ?? 0, MemoryReservation: h?.memoryReservation ?? 0, CpuShares: h?.cpuShares ?? 0,
      CpusetCpus: h?.cpusetCpus ?? '', CpusetMems: h?.cpusetMems ?? '',
      AutoRemove: rec.autoRemove,
      Privileged: h?.privileged ?? false,
      ReadonlyRootfs: h?.readOnly ?? false,
      CapAdd: h?.capAdd ?? [],
      CapDrop: h?.capDrop ?? [],
      Binds: h?.binds ?? [],
      Tmpfs: Object.fromEntries((h?.tmpfs ?? []).map((t) => [t.split(':')[0], t.split(':')[1] ?? ''])),
      NetworkMode: networkModeName(rec.networkRequest),
      PortBindings: portMap(rec.networkRequest?.ports ?? [], true),
      Dns: rec.networkRequest?.dns ?? [], DnsSearch: rec.networkRequest?.dnsSearch ?? [], DnsOptions: rec.networkRequest?.dnsOptions ?? [],
      ExtraHosts: (rec.networkRequest?.extraHosts ?? []).map((h) => `${h.name}:${h.address}`),
      LogConfig: { Type: rec.monitor ? 'k8s-file' : 'none', Config: {} },
      RestartPolicy: { Name: h?.restartPolicy?.name ?? 'no', MaximumRetryCount: h?.restartPolicy?.maximumRetryCount ?? 0 },
      Init: h?.init ?? false,
      // podman's: "" for the host's user namespace; the maps as CONTAINER:HOST:SIZE.
      UsernsMode: rec.userns?.mode ?? '',
      ...(rec.userns ? { IDMappings: { UidMap: rec.userns.uidMappings.map(fmt), GidMap: rec.userns.gidMappings.map(fmt) } } : {}),
      Ulimits: (h?.ulimits ?? []).map((u) => ({ Name: u.split('=')[0], Soft: u.split('=')[1]?.split(':')[0], Hard: u.split(':')[1] ?? u.split('=')[1] })),
    },
    Config: {
      Hostname: c?.hostname ?? rec.id.slice(0, 12),
      User: c?.user ?? '',
      Tty: c?.tty ?? false,
      OpenStdin: c?.interactive ?? false,
      Env: c?.env ?? [],
      Cmd: c?.cmd ?? null,
      Entrypoint: c?.entrypoint ?? null,
      WorkingDir: c?.workingDir ?? '/',
      Image: rec.image,
      StopSignal: c?.stopSignal ?? 'SIGTERM',
      ...(c?.stopTimeout !== undefined ? { StopTimeout: c.stopTimeout } : {}),
      Labels: c?.labels ?? {},
    },
  };
}
