// bin/berth: the Docker-style command line. This file only parses flags and prints;
// the work is in image/, storage/ and engine/.
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { BerthError } from '../common/errors';
import { Level, Logger } from '../common/log';
import { saveArchive, loadArchive } from '../image/archive';
import { login, logout } from '../image/auth';
import { collectGarbage } from '../image/gc';
import type { ImageRecord } from '../image/image-store';
import { importImage } from '../image/import';
import { pullAndCommit } from '../image/pull-image';
import { RegistryClient } from '../image/registry';
import { parseReference } from '../image/reference';
import { DEFAULT_ROOT, openStores, Stores } from '../image/stores';
import { ContainerRecord, ContainerStore } from '../engine/containers';
import { createDetached, runDetached, startContainer } from '../engine/detached';
import { diskUsage as systemDiskUsage } from '../engine/disk-usage';
import { inspectContainer } from '../engine/inspect';
import {
  cleanupContainer, killContainer, listContainers, removeContainer, resolveContainer, stopContainer, waitContainer, withEngineLock,
} from '../engine/lifecycle';
import { pruneNetworks } from '../engine/bridge-networks';
import { pruneContainers } from '../engine/container-ops';
import { VolumeStore } from '../engine/volumes';
import { matchesFilter, parseFilters, resolveFilters } from '../engine/filters';
import { parseSince, readLogs } from '../engine/logs';
import { EngineRunOptions, runContainer } from '../engine/run';
import { ago, humanDuration, humanSize, print, table } from './output';
import { progressView } from './progress';
import { registerCommands, type CliContext } from './commands';
import { attachTerminal } from './commands/attach';
import { detachStdin } from './commands/containers-ops';
import { isatty } from 'node:tty';
import { reportError } from './report-error';
import { collect, readEnvFile } from './argv';
import { labelList, renderInspect, renderRows } from './template';
import { formatPort } from '../network';

const PROG = 'berth';
const VERSION = '0.1.0';

let log: Logger | undefined;

/** One row per name of each image, with the fields of Docker's images --format. */
function imageRows(images: ImageRecord[]): Record<string, string>[] {
  const rows: Record<string, string>[] = [];
  for (const img of images) {
    const id = img.id.slice(7, 19);
    const names = img.repoTags.length ? img.repoTags : [''];
    for (const t of names) {
      let repo = '<none>';
      let tag = '<none>';
      if (t) {
        const r = parseReference(t);
        repo = r.familiarName();
        tag = r.tag ?? '<none>';
      }
      rows.push({
        Repository: repo, Tag: tag, ID: id, CreatedSince: ago(img.created), CreatedAt: img.created, Size: humanSize(img.size),
        Digest: img.repoDigests[0]?.split('@')[1] ?? '<none>',
      });
    }
  }
  return rows;
}

/** stop's and restart's -t: seconds, or undefined for the container's own timeout. */
function stopTime(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Number(v);
  if (!(t >= 0)) throw new BerthError('USAGE', `--time "${v}" must be a number of seconds`);
  return t;
}

export async function main(argv: string[]): Promise<number> {
  // The reader of our output went away (`berth logs -f | head`): end quietly with the
  // status a process killed by SIGPIPE has, as the other programs of a pipeline do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
  const program = new Command(PROG);
  let result = 0;
  let stores: Stores | undefined;
  const st = (): Stores => (stores ??= openStores(program.opts().root));
  const logger = (): Logger => {
    if (!log) {
      const o = program.opts();
      log = new Logger({ level: o.debug ? 'debug' : (o.logLevel as Level) ?? 'warn' });
    }
    return log;
  };

  program
    .description('berth: Linux containers, Docker-style')
    .version(`berth version ${VERSION}`, '-v, --version')
    .option('--root <dir>', 'where images and containers are stored', process.env.BERTH_ROOT ?? DEFAULT_ROOT)
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']))
    .option('-D, --debug', 'log at debug level')
    .exitOverride()
    // A usage error is one line, as the others: the command's whole help would bury it.
    .configureOutput({ outputError: (str, write) => write(`${PROG}: ${str.replace(/^error: /, '')}`) })
    .showHelpAfterError('hint: add --help to the command for its usage')
    .enablePositionalOptions();

  // forRun: the pull a run or create makes; its output goes to stderr, so that stdout is
  // the container's alone.
  const pull = async (name: string, o: { quiet?: boolean; platform?: string; tlsVerify?: string; forRun?: boolean }) => {
    const view = progressView(!!o.quiet);
    try {
      const img = await pullAndCommit(st(), name, {
        platform: o.platform, tlsVerify: o.tlsVerify !== 'false', onProgress: (e) => view.update(e), log: logger(),
      });
      view.stop();
      if (o.forRun) process.stderr.write(`Pulled ${name} (${img.id.slice(7, 19)})\n`);
      else print(o.quiet ? `${img.id}\n` : `${img.repoDigests[0] ?? ''}\n${img.id}\n`);
    } catch (err) {
      view.stop();
      throw err;
    }
  };
  program.command('pull <name>').description('download an image from a registry')
    .option('-q, --quiet', 'print only the image id')
    .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image')
    .option('--tls-verify <bool>', 'require HTTPS and verify certificates (false allows plain HTTP)', 'true')
    .action(pull);

  /** `image inspect`'s JSON for image NAME. @throws BerthError IMAGE_NOT_FOUND, IMAGE_AMBIGUOUS */
  const inspectImage = (n: string) => {
    const s = st();
    const img = s.images.resolve(n);
    const config = s.content.readJSON<any>(img.configDigest);
    return {
      Id: img.id, RepoTags: img.repoTags.map((t) => parseReference(t).familiar()), RepoDigests: img.repoDigests,
      Created: config.created ?? img.created, Architecture: config.architecture, Os: config.os,
      Config: config.config ?? {}, RootFS: { Type: 'layers', Layers: config.rootfs?.diff_ids ?? [] },
      Size: img.size, Manifest: img.manifestDigest, History: config.history ?? [],
    };
  };
  const images = (o: { quiet?: boolean; format?: string; all?: boolean; digests?: boolean }) => {
    const list = st().images.list();
    if (o.quiet) return print([...new Set(list.map((i) => i.id.slice(7, 19)))].map((s) => s + '\n').join(''));
    const rows = imageRows(list);
    if (o.format === 'json') return print(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const custom = renderRows(o.format ?? 'table', rows, {
      Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Digest: 'DIGEST',
    });
    if (custom !== undefined) return print(custom);
    print(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size])));
  };
  const imagesOptions = (c: Command) => c
    .option('-q, --quiet', 'print only image ids')
    .option('-a, --all', 'show all images')
    .option('--format <format>', 'table, json, or a Go template: \'{{.Repository}}:{{.Tag}}\', \'table {{.ID}}\\t{{.Size}}\'', 'table')
    .action(images);
  imagesOptions(program.command('images').description('list images'));

  const image = program.command('image').description('manage images');
  imagesOptions(image.command('ls').alias('list').description('list images'));
  image.command('inspect <names...>').description('show images as JSON')
    .option('-f, --format <template>', 'print each through a Go template, as Docker\'s: \'{{.Config.Cmd}}\'')
    .action((names: string[], o: { format?: string }) => {
      print(renderInspect(names.map(inspectImage), o.format));
    });
  /** Removes untagged images (every unused one with ALL) and unused layers. */
  const pruneImages = (all: boolean) => {
    const s = st();
    // The engine lock too: a run that is making a container checks its image under it.
    return s.locked(() => withEngineLock(s.root, () => {
      const gone: string[] = [];
      const inUse = new ContainerStore(s.root).imagesInUse();
      for (const img of s.images.list()) {
        if ((img.repoTags.length === 0 || all) && !inUse.has(img.id)) {
          s.images.remove(img.id);
          gone.push(img.id);
        }
      }
      return { gone, gc: collectGarbage(s) };
    }));
  };
  const prune = async (o: { force?: boolean; all?: boolean }) => {
    const removed = await pruneImages(!!o.all);
    for (const id of removed.gone) print(`deleted: ${id}\n`);
    print(`Total reclaimed space: ${humanSize(removed.gc.bytes)}\n`);
  };
  image.command('prune').description('remove untagged images (all unused with -a) and unused layers')
    .option('-a, --all', 'remove every image no container uses')
    .option('-f, --force', 'do not ask (berth never asks)')
    .action(prune);

  const rmi = async (names: string[], o: { force?: boolean }) => {
    const s = st();
    const containers = new ContainerStore(s.root);
    await s.locked(() => withEngineLock(s.root, () => {
      for (const n of names) {
        const img = s.images.resolve(n);
        const users = containers.list().filter((c) => c.imageId === img.id);
        // A container being made (no record yet) uses it too.
        if (!users.length && containers.markedImages().has(img.id)) users.push({ name: '(being created)' } as ContainerRecord);
        // As Docker's: a name of an image that has others is only untagged, used or not.
        if (img.repoTags.length > 1) {
          const taken = s.images.untag(n);
          if (taken) {
            print(`Untagged: ${parseReference(taken).familiar()}\n`);
            continue;
          }
        }
        if (users.length && !o.force) {
          const who = users.map((c) => `"${c.name}"`);
          throw new BerthError('IMAGE_IN_USE', `image "${n}" is used by ${who.length > 1 ? 'containers' : 'container'} ${who.slice(0, 5).join(', ')}${who.length > 5 ? ` and ${who.length - 5} more` : ''}`, {
            hint: `remove the container first (berth rm ${users[0].name}), or use rmi --force to untag the image`,
          });
        }
        if (users.length) {
          // --force takes the name (or, given an id, every name) away; the image stays, as
          // <none>, until its containers are gone.
          const taken = s.images.untag(n);
          if (!taken) s.images.untagAll(img.id);
          for (const t of taken ? [taken] : img.repoTags) print(`Untagged: ${parseReference(t).familiar()}\n`);
          continue;
        }
        const r = s.images.untagOrRemove(n);
        if (r.untagged) print(`Untagged: ${parseReference(r.untagged).familiar()}\n`);
        if (r.removed) {
          for (const t of r.removed.repoTags) print(`Untagged: ${parseReference(t).familiar()}\n`);
          print(`Deleted: ${r.removed.id}\n`);
        }
      }
      collectGarbage(s);
    }));
  };
  program.command('rmi <names...>').description('remove images').option('-f, --force', 'remove even if in use').action(rmi);
  image.command('rm <names...>').description('remove images').option('-f, --force', 'remove even if in use').action(rmi);

  program.command('tag <source> <target>').description('give an image another name')
    .action(async (source: string, target: string) => {
      const s = st();
      await s.locked(() => s.images.tag(source, target));
    });

  program.command('load').description('load images from a docker save or OCI archive')
    .option('-i, --input <file>', 'the archive (default: stdin)', '-')
    .option('-q, --quiet', 'print nothing')
    .action(async (o: { input: string; quiet?: boolean }) => {
      const imgs = await loadArchive(st(), o.input);
      if (!o.quiet) {
        for (const { image, tags } of imgs) {
          if (tags.length) for (const t of tags) print(`Loaded image: ${parseReference(t).familiar()}\n`);
          else print(`Loaded image ID: ${image.id}\n`);
        }
      }
    });

  program.command('save <images...>').description('write images to an archive')
    .requiredOption('-o, --output <file>', 'the archive to write')
    .addOption(new Option('--format <format>', 'archive format').choices(['docker-archive', 'oci-archive']).default('docker-archive'))
    .action(async (names: string[], o: { output: string; format: 'docker-archive' | 'oci-archive' }) => {
      await saveArchive(st(), names, o.output, o.format);
    });

  program.command('import <source> [reference]').description('make an image from a root filesystem tarball (FILE, URL or -)')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENV, ...); repeatable', collect, [])
    .option('-m, --message <text>', 'a comment for the image history')
    .action(async (source: string, reference: string | undefined, o: { change: string[]; message?: string }) => {
      const img = await importImage(st(), source, reference, { changes: o.change, message: o.message });
      print(`${img.id}\n`);
    });

  const system = program.command('system').description('manage berth');
  system.command('prune').description('remove exited containers, unused networks, untagged images and unused layers')
    .option('-a, --all', 'remove every image no container uses, not only untagged ones')
    .option('--volumes', 'remove unused anonymous volumes too')
    .option('-f, --force', 'do not ask (berth never asks)')
    .action(async (o: { all?: boolean; volumes?: boolean }) => {
      // Containers first: what they held (networks, volumes, images) is unused after.
      const ctrs = await pruneContainers(st().root, logger());
      if (ctrs.removed.length) print(`Deleted Containers:\n${ctrs.removed.map((id) => `${id}\n`).join('')}\n`);
      const nets = await pruneNetworks(st().root);
      if (nets.length) print(`Deleted Networks:\n${nets.map((n) => `${n}\n`).join('')}\n`);
      if (o.volumes) {
        const vols = await withEngineLock(st().root, () => new VolumeStore(st().root).prune(false));
        if (vols.length) print(`Deleted Volumes:\n${vols.map((n) => `${n}\n`).join('')}\n`);
      }
      const imgs = await pruneImages(!!o.all);
      if (imgs.gone.length) print(`Deleted Images:\n${imgs.gone.map((id) => `deleted: ${id}\n`).join('')}\n`);
      print(`Total reclaimed space: ${humanSize(ctrs.bytes + imgs.gc.bytes)}\n`);
    });
  system.command('df').description('show disk usage of images, containers and local volumes')
    .option('-v, --verbose', 'list each image, container and volume')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (o: { verbose?: boolean; format: string }) => {
      const du = await systemDiskUsage(st(), logger());
      if (o.format === 'json') {
        const { images, containers, volumes } = du;
        return print(JSON.stringify({ images, containers, volumes }, null, 2) + '\n');
      }
      const pct = (r: { size: number; reclaimable: number }) =>
        `${humanSize(r.reclaimable)}${r.size ? ` (${Math.round((r.reclaimable / r.size) * 100)}%)` : ''}`;
      const row = (type: string, r: { total: number; active: number; size: number; reclaimable: number }) =>
        [type, String(r.total), String(r.active), humanSize(r.size), pct(r)];
      if (!o.verbose) {
        return print(table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], [
          row('Images', du.images), row('Containers', du.containers), row('Local Volumes', du.volumes),
        ]));
      }
      print('Images space usage:\n\n' + table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'CONTAINERS'],
        du.imageList.flatMap(({ image, size, containers }) => imageRows([image])
          .map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, humanSize(size), String(containers)]))));
      print('\nContainers space usage:\n\n' + table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'],
        du.containerList.map(({ container: c, size, volumes }) => [c.id.slice(0, 12), c.image,
          JSON.stringify(c.command.join(' ').slice(0, 20)), String(volumes), humanSize(size), ago(c.created), statusText(c), c.name])));
      print('\nLocal Volumes space usage:\n\n' + table(['VOLUME NAME', 'LINKS', 'SIZE'],
        du.volumeList.map(({ volume, size, links }) => [volume.Name, String(links), humanSize(size)])));
    });

  program.command('login <registry>').description('store credentials for a registry')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--tls-verify <bool>', 'require HTTPS (false allows plain HTTP)', 'true')
    .action(async (registry: string, o: { username?: string; password?: string; passwordStdin?: boolean; tlsVerify?: string }) => {
      let password = o.password;
      if (o.passwordStdin) {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      }
      if (!o.username || !password) {
        throw new BerthError('USAGE', 'login needs --username and a password', { hint: 'berth login -u USER --password-stdin REGISTRY' });
      }
      // Ask the registry first, with these credentials only, as `docker login` does.
      const creds = { username: o.username, password };
      const client = new RegistryClient({ tlsVerify: o.tlsVerify !== 'false', credentials: () => creds, log: logger() });
      await client.checkAuth(parseReference(`${registry}/berth-login-check`));
      const file = login(registry, o.username, password);
      print(`Login Succeeded (credentials in ${file})\n`);
    });
  program.command('logout <registry>').description('remove stored credentials for a registry')
    .action((registry: string) => {
      print(logout(registry) ? `Removed login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
    });

  const runOptions = (c: Command) => c
    .option('--rm', 'remove the container when it exits')
    .option('--pull <policy>', 'missing (pull if not here; the default), always or never')
    .option('--name <name>', 'the container\'s name')
    .option('-e, --env <var>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid) and group')
    .option('-h, --hostname <name>', 'the container\'s hostname')
    .option('--entrypoint <cmd>', 'override the image\'s entrypoint')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-i, --interactive', 'keep stdin open: pass this input to the container')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--cap-add <cap>', 'add a capability (repeatable)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability (repeatable; ALL for all)', collect, [])
    .option('--privileged', 'all capabilities, no masked paths')
    .option('-m, --memory <bytes>', 'memory limit (512m, 1g)')
    .option('--cpus <n>', 'CPU limit, in CPUs')
    .option('--pids-limit <n>', 'process limit')
    .option('--memory-swap <bytes>', 'memory plus swap limit (-1: unlimited swap); needs --memory')
    .option('--memory-reservation <bytes>', 'a soft memory limit, below --memory')
    .option('-c, --cpu-shares <n>', 'relative CPU weight (2-262144; default 1024)')
    .option('--cpuset-cpus <list>', 'CPUs the container may use (0-1,3)')
    .option('--cpuset-mems <list>', 'memory nodes the container may use (0)')
    .option('-v, --volume <host:container[:ro]>', 'bind mount (repeatable)', collect, [])
    .option('--tmpfs <path[:options]>', 'tmpfs mount (repeatable)', collect, [])
    .option('--mount <type=..,source=..,target=..>', 'bind, volume or tmpfs mount (repeatable)', collect, [])
    .option('--init', 'run an init as PID 1 that reaps zombies and forwards signals')
    .option('--restart <policy>', 'no, on-failure[:N], always or unless-stopped (with -d)')
    .option('--ulimit <name=soft[:hard]>', 'a resource limit (repeatable)', collect, [])
    .option('--stop-signal <signal>', 'the signal berth stop sends')
    .option('--stop-timeout <seconds>', 'how long berth stop waits before SIGKILL')
    .option('-l, --label <key=value>', 'set a label (repeatable)', collect, [])
    .option('--network <mode>', 'none, host, slirp4netns[:opts], pasta[:opts], bridge, container:NAME or a network (docs/networking.md)')
    .addOption(new Option('--net <mode>', 'same as --network').hideHelp())
    .option('-p, --publish <[ip:]hostPort:containerPort[/proto]>', 'publish a container port on the host (repeatable)', collect, [])
    .option('-P, --publish-all', 'publish every port the image exposes on a free host port')
    .option('--expose <port[/proto]>', 'another port for -P to publish (repeatable)', collect, [])
    .option('--cidfile <file>', 'write the container id to FILE (which must not exist)')
    .option('--platform <os/arch[/variant]>', 'the platform to pull when the image is not here')
    .option('--dns <address>', 'a name server for /etc/resolv.conf (repeatable; replaces the network\'s)', collect, [])
    .option('--dns-search <domain>', 'a search domain for /etc/resolv.conf (repeatable)', collect, [])
    .option('--dns-option <option>', 'a resolver option for /etc/resolv.conf (repeatable)', collect, [])
    .option('--add-host <name:address>', 'a line in /etc/hosts (repeatable; host-gateway: the host on this network)', collect, [])
    .option('--ipc <mode>', 'private (default), shareable or host: System V IPC and /dev/shm')
    .option('--pid <mode>', 'private (default) or host: the host\'s processes in ps')
    .option('--uts <mode>', 'private (default) or host: the host\'s hostname')
    .option('--sysctl <key=value>', 'a namespaced sysctl: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* (repeatable)', collect, [])
    .option('--device <host[:container][:rwm]>', 'a host device node in the container (repeatable)', collect, [])
    .option('--group-add <group>', 'an extra group for the process (repeatable)', collect, [])
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--oom-score-adj <n>', 'the process\'s OOM score adjustment (-1000 to 1000)')
    .option('--domainname <name>', 'the container\'s NIS domain name')
    .option('--security-opt <opt>', 'seccomp=unconfined|PROFILE.json, no-new-privileges (repeatable)', collect, [])
    .option('--userns <mode>', 'host (default) or auto[:size=N]: root inside maps to host ids from /etc/subuid (SECURITY.md)')
    .option('--uidmap <c:h:n>', 'map container uids C.. to host uids H.. (N of them; repeatable)', collect, [])
    .option('--gidmap <c:h:n>', 'map container gids (repeatable; default: as --uidmap)', collect, [])
    .passThroughOptions();
  const engineRunOptions = (imageName: string, command: string[], o: any): EngineRunOptions => ({
    image: imageName, args: command, entrypoint: o.entrypoint, env: [...o.envFile.flatMap((f: string) => readEnvFile(f)), ...o.env],
    workdir: o.workdir, user: o.user, hostname: o.hostname, tty: !!o.tty, readOnly: !!o.readOnly, capAdd: o.capAdd,
    capDrop: o.capDrop, privileged: !!o.privileged, memory: o.memory, cpus: o.cpus, pidsLimit: o.pidsLimit,
    memorySwap: o.memorySwap, memoryReservation: o.memoryReservation, cpuShares: o.cpuShares, cpusetCpus: o.cpusetCpus, cpusetMems: o.cpusetMems, volumes: o.volume,
    tmpfs: o.tmpfs, name: o.name, rm: !!o.rm, interactive: !!o.interactive, log: logger(),
    mounts: o.mount, init: !!o.init, restart: o.restart, ulimits: o.ulimit, stopSignal: o.stopSignal, stopTimeout: o.stopTimeout,
    labels: o.label, network: o.network ?? o.net, publish: o.publish, publishAll: !!o.publishAll, securityOpts: o.securityOpt,
    dns: o.dns, dnsSearch: o.dnsSearch, dnsOption: o.dnsOption, addHost: o.addHost,
    userns: o.userns, uidmap: o.uidmap, gidmap: o.gidmap,
    expose: o.expose, cidfile: o.cidfile,
    ipc: o.ipc, pid: o.pid, uts: o.uts, sysctl: o.sysctl, device: o.device, groupAdd: o.groupAdd, shmSize: o.shmSize,
    oomScoreAdj: o.oomScoreAdj, domainname: o.domainname,
    pullPolicy: o.pull,
    pull: async (n, missing) => {
      if (missing) process.stderr.write(`Unable to find image '${n}' locally\n`);
      await pull(n, { quiet: true, forRun: true, platform: o.platform });
    },
  });

  runOptions(program.command('run <image> [command...]').description('run a command in a new container')
    .option('-d, --detach', 'run in the background and print the container id'))
    .action(async (imageName: string, command: string[], o) => {
      const opts = engineRunOptions(imageName, command, o);
      if (o.detach) {
        const rec = await runDetached(st(), opts);
        print(`${rec.id}\n`);
        return;
      }
      // As Docker's: -it needs a terminal to read from, and without -i the container gets
      // no input (a `while read` loop around berth run keeps its own).
      if (o.tty && o.interactive && !isatty(0)) {
        throw new BerthError('USAGE', 'the input device is not a TTY', { hint: 'leave out -t to pipe input into the container (-i alone)' });
      }
      if (!o.interactive) detachStdin();
      result = await runContainer(st(), opts);
    });

  runOptions(program.command('create <image> [command...]').description('create a container to start later (berth start)'))
    .action(async (imageName: string, command: string[], o) => {
      const rec = await createDetached(st(), engineRunOptions(imageName, command, o));
      print(`${rec.id}\n`);
    });

  program.command('start <containers...>').description('start created containers')
    .option('-a, --attach', 'attach this terminal to the container (one container) and exit with its status')
    .option('--detach-keys <keys>', 'with -a: the keys that detach', 'ctrl-p,ctrl-q')
    .option('-i, --interactive', 'with -a: send this terminal\'s input (if the container keeps stdin open)')
    .action(async (refs: string[], o: { attach?: boolean; detachKeys: string; interactive?: boolean }) => {
      if (o.attach) {
        if (refs.length !== 1) throw new BerthError('USAGE', 'start -a takes one container');
        // A created container is started once attached, so none of its output is missed;
        // an exited one runs again under a new monitor first.
        const rec = await resolveContainer(st().root, refs[0], logger());
        const flags = { detachKeys: o.detachKeys, stdin: !!o.interactive };
        if (rec.state.status === 'exited') {
          // Attached to the new monitor before the process starts, as for a created one.
          let attached: Promise<number> | undefined;
          await startContainer(st().root, refs[0], logger(), (r) => new Promise<void>((resolve, reject) => {
            attached = attachTerminal(ctx, refs[0], flags, undefined, { record: r, onConnected: resolve });
            attached.then(() => resolve(), reject);
          }));
          result = attached ? await attached : await attachTerminal(ctx, refs[0], flags);
          return;
        }
        const begin = () => startContainer(st().root, refs[0], logger());
        if (rec.state.status !== 'created') await begin();
        result = await attachTerminal(ctx, refs[0], flags, rec.state.status === 'created' ? begin : undefined);
        return;
      }
      await eachContainer(refs, async (ref) => {
        await startContainer(st().root, ref, logger());
        print(`${ref}\n`);
      });
    });

  const statusText = (c: ContainerRecord): string => {
    if (c.state.status === 'exited') return `Exited (${c.state.exitCode}) ${ago(c.state.finishedAt ?? c.created)}`;
    if (c.state.status === 'created') return 'Created';
    const paused = c.state.paused ? ' (Paused)' : ''; // berth pause (cli/commands/containers-ops.ts)
    return `Up ${humanDuration(Date.now() - Date.parse(c.state.startedAt ?? c.created))}${paused}`;
  };
  program.command('ps').description('list containers')
    .option('-a, --all', 'show all containers (default: running only)')
    .option('-q, --quiet', 'print only ids')
    .option('--no-trunc', 'do not shorten ids and commands')
    .option('--format <format>', 'table, json, or a Go template: \'{{.Names}} {{.Status}}\', \'table {{.ID}}\\t{{.Ports}}\'', 'table')
    .option('-f, --filter <key=value>', 'label=K[=V], status=S, name=N, id=ID, exited=CODE, ancestor=IMAGE, before=C, since=C (repeatable)', collect, [])
    .option('-n, --last <n>', 'the N last created containers, in any state')
    .option('-l, --latest', 'the last created container, in any state')
    .action(async (o: { all?: boolean; quiet?: boolean; format: string; trunc: boolean; filter: string[]; last?: string; latest?: boolean }) => {
      // A status, exited, before or since filter shows exited ones without -a, as Docker's.
      const cs = new ContainerStore(st().root);
      const f = resolveFilters(parseFilters(o.filter), (ref) => st().images.find(ref)?.id, (ref) => cs.resolve(ref).created);
      if (o.last !== undefined && !/^-?\d+$/.test(o.last)) throw new BerthError('USAGE', `--last "${o.last}" is not a number`, { hint: 'give how many containers: -n 3' });
      // As Docker's: -n 0 or below (its default is -1) is no limit, and the running only.
      const last = o.latest ? 1 : o.last !== undefined && Number(o.last) > 0 ? Number(o.last) : undefined;
      // Newest first; -n/-l look at every state, as Docker's.
      const list = (await listContainers(st().root, logger()))
        .filter((c) => (o.all || last !== undefined || ['status', 'exited', 'before', 'since'].some((k) => f.byKey.has(k))
          || c.state.status === 'running') && matchesFilter(c, f))
        .slice(0, last);
      const id = (c: ContainerRecord) => (o.trunc ? c.id.slice(0, 12) : c.id);
      if (o.quiet) return print(list.map((c) => id(c) + '\n').join(''));
      // The fields of Docker's ps --format (json: one object per line, as Docker's).
      const rows = list.map((c) => ({
        ID: id(c), Image: c.image, Command: JSON.stringify(o.trunc ? c.command.join(' ').slice(0, 20) : c.command.join(' ')),
        CreatedAt: c.created, RunningFor: ago(c.created), Status: statusText(c), State: c.state.paused ? 'paused' : c.state.status,
        Names: c.name, Ports: (c.network?.ports ?? []).map((p) => formatPort(p).split(' -> ').reverse().join('->')).join(', '),
        Labels: labelList(c.config?.labels),
        Mounts: (c.mounts ?? []).map((m) => m.Name ?? m.Source).join(','),
        Networks: c.network?.mode === 'bridge' ? (c.network.endpoints ?? []).map((e) => e.network).join(',') : c.networkRequest?.mode ?? '',
      }));
      if (o.format === 'json') return print(rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
      const custom = renderRows(o.format, rows, {
        ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Status: 'STATUS',
        State: 'STATE', Names: 'NAMES', Ports: 'PORTS', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS',
      });
      if (custom !== undefined) return print(custom);
      print(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], rows.map((r) => [
        r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names,
      ])));
    });

  /**
   * As Docker's rm/stop/kill/start/restart of several containers: each one is tried, a
   * failure is reported and the others still go (`rm -f gone c2` removes c2); the exit
   * status is then 125. One container: its error as usual.
   */
  const eachContainer = async (refs: string[], fn: (ref: string) => Promise<void>): Promise<void> => {
    if (refs.length === 1) return fn(refs[0]);
    for (const ref of refs) {
      try {
        await fn(ref);
      } catch (err) {
        const code = reportError(PROG, err, log);
        result = code === 126 || code === 127 ? code : 125;
      }
    }
  };

  program.command('rm <containers...>').description('remove containers')
    .option('-f, --force', 'kill and remove running containers too')
    .option('-v, --volumes', 'remove the container\'s anonymous volumes too')
    .action(async (refs: string[], o: { force?: boolean; volumes?: boolean }) => {
      await eachContainer(refs, async (ref) => {
        await removeContainer(st().root, ref, !!o.force, logger(), !!o.volumes);
        print(`${ref}\n`);
      });
    });

  program.command('restart <containers...>').description('stop containers (as stop does) and start them again')
    .option('-t, --time <seconds>', 'seconds to wait before killing (default: --stop-timeout, else 10)')
    .action(async (refs: string[], o: { time?: string }) => {
      const t = stopTime(o.time);
      await eachContainer(refs, async (ref) => {
        await stopContainer(st().root, ref, t, logger());
        await startContainer(st().root, ref, logger());
        print(`${ref}\n`);
      });
    });

  program.command('stop <containers...>').description('stop containers: the image\'s stop signal (SIGTERM), then SIGKILL')
    .option('-t, --time <seconds>', 'seconds to wait before killing (default: --stop-timeout, else 10)')
    .action(async (refs: string[], o: { time?: string }) => {
      const t = stopTime(o.time);
      await eachContainer(refs, async (ref) => {
        await stopContainer(st().root, ref, t, logger());
        print(`${ref}\n`);
      });
    });

  program.command('kill <containers...>').description('send a signal to containers')
    .option('-s, --signal <signal>', 'the signal (name or number)', 'KILL')
    .action(async (refs: string[], o: { signal: string }) => {
      await eachContainer(refs, async (ref) => {
        await killContainer(st().root, ref, o.signal, logger());
        print(`${ref}\n`);
      });
    });

  program.command('wait <containers...>').description('wait for containers to exit; print their exit codes')
    .action(async (refs: string[]) => {
      for (const ref of refs) print(`${await waitContainer(st().root, ref, logger())}\n`);
    });

  program.command('inspect <names...>').description('show containers (or, by a name no container has, images) as JSON')
    .option('-f, --format <template>', 'print each through a Go template, as Docker\'s: \'{{.State.Pid}}\', \'{{json .Mounts}}\'')
    .option('--type <type>', 'container or image: look only for that')
    .action(async (refs: string[], o: { format?: string; type?: string }) => {
      if (o.type !== undefined && o.type !== 'container' && o.type !== 'image') {
        throw new BerthError('USAGE', `--type "${o.type}" is not container or image`, { hint: 'use volume inspect or network inspect for those' });
      }
      const cs = new ContainerStore(st().root);
      const out = [];
      for (const ref of refs) {
        if (o.type === 'image') {
          out.push(inspectImage(ref));
          continue;
        }
        try {
          out.push(inspectContainer(cs, await resolveContainer(st().root, ref, logger())));
        } catch (err) {
          // As Docker's: a name no container has may be an image's.
          if (o.type === 'container' || (err as BerthError).code !== 'CONTAINER_NOT_FOUND' || !st().images.find(ref)) throw err;
          out.push(inspectImage(ref));
        }
      }
      print(renderInspect(out, o.format));
    });

  program.command('logs <container>').description('show a container\'s output (containers started with -d)')
    .option('-f, --follow', 'follow the output until the container exits')
    .option('--tail <n>', 'only the last N lines ("all" for everything)', 'all')
    .option('-t, --timestamps', 'prefix each line with its time')
    .option('--since <time>', 'only output since TIME (RFC 3339, Unix seconds, or a duration: 10m)')
    .option('--until <time>', 'only output before TIME (as --since)')
    .action(async (ref: string, o: { follow?: boolean; tail: string; timestamps?: boolean; since?: string; until?: string }) => {
      if (o.tail !== 'all' && !/^\d+$/.test(o.tail)) throw new BerthError('USAGE', `--tail "${o.tail}" must be a number or "all"`);
      await readLogs(st().root, ref, {
        follow: !!o.follow, tail: o.tail === 'all' ? undefined : Number(o.tail),
        since: o.since !== undefined ? parseSince(o.since) : undefined,
        until: o.until !== undefined ? parseSince(o.until, Date.now(), '--until') : undefined,
        onRecord: (r) => {
          const text = `${o.timestamps && r.lineStart ? `${r.time} ` : ''}${r.text}${r.full ? '\n' : ''}`;
          (r.stream === 'stdout' ? process.stdout : process.stderr).write(text);
        },
      }, logger());
    });

  // `container cleanup` is the monitor's exit command (engine/lifecycle.ts), not for users;
  // `container prune` is added in commands/containers-ops.ts.
  const container = program.command('container').description('manage containers');
  container.command('cleanup <id>', { hidden: true }).description('finish an exited detached container (internal)')
    .action(async (id: string) => {
      await cleanupContainer(st().root, id, logger());
    });

  program.command('version').description('show the version').action(() => print(`berth version ${VERSION}\n`));

  // Commands that live in their own files (src/cli/commands/).
  const ctx: CliContext = { stores: st, logger, setResult: (n) => { result = n; } };
  registerCommands(program, ctx);

  try {
    if (!fs.existsSync('/proc/self')) throw new BerthError('UNSUPPORTED', 'berth needs Linux with /proc');
    await program.parseAsync(argv, { from: 'user' });
    return result;
  } catch (err) {
    const e = err as { code?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      return ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(e.code) ? 0 : 125;
    }
    // Docker's convention: 125 when berth itself failed, 126/127 when the command could
    // not be invoked or found.
    const code = reportError(PROG, err, log);
    return code === 126 || code === 127 ? code : 125;
  }
}
