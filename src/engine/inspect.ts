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
      Paused: false,
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
    },
  };
}
