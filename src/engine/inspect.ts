// `berth inspect`: a container as Docker's `docker inspect` shows it (the fields scripts
// read most: Id, Name, State, Config, HostConfig). Node host process.
import type { ContainerRecord, ContainerStore } from './containers';
import { isActive, logFile } from './lifecycle';

const ZERO_TIME = '0001-01-01T00:00:00Z';

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
    MonitorPid: rec.monitor && active ? rec.monitor.pid : 0,
    HostConfig: {
      Memory: h?.memory ?? 0,
      NanoCpus: h?.nanoCpus ?? 0,
      PidsLimit: h?.pidsLimit ?? 0,
      AutoRemove: rec.autoRemove,
      Privileged: h?.privileged ?? false,
      ReadonlyRootfs: h?.readOnly ?? false,
      CapAdd: h?.capAdd ?? [],
      CapDrop: h?.capDrop ?? [],
      Binds: h?.binds ?? [],
      Tmpfs: Object.fromEntries((h?.tmpfs ?? []).map((t) => [t.split(':')[0], t.split(':')[1] ?? ''])),
      NetworkMode: 'none',
      LogConfig: { Type: rec.monitor ? 'k8s-file' : 'none', Config: {} },
      RestartPolicy: { Name: h?.restartPolicy?.name ?? 'no', MaximumRetryCount: h?.restartPolicy?.maximumRetryCount ?? 0 },
      Init: h?.init ?? false,
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
