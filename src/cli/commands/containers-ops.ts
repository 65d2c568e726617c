// bin/berth's container verbs beyond run/stop/rm: exec, top, pause, unpause, rename, diff,
// export, cp, container prune and info. Parses and prints only; the work is in
// engine/{exec,container-ops,container-fs}.ts. Tests: test/integration/exec.test.ts and
// container-ops.test.ts.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { BerthError } from '../../common/errors';
import { copyFiles, diffContainer, exportContainer } from '../../engine/container-fs';
import { engineInfo, pruneContainers, renameContainer, setContainerPaused, topContainer } from '../../engine/container-ops';
import { execInContainer } from '../../engine/exec';
import { humanSize, print } from '../output';
import type { CliContext } from './index';
import { readEnvFile } from '../argv';
import { networkModes } from '../../network';
import { usernsInfo } from '../../engine/userns';

const collect = (v: string, acc: string[]) => [...acc, v];

/** Runs tar ARGS with STDIO; true if the reader of its stdout left. @throws BerthError CP_PATH when it fails. */
function runTar(args: string[], stdio: ('inherit' | 'ignore' | 'pipe')[]): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const t = spawn('tar', args, { stdio });
    let err = '';
    t.stderr?.on('data', (d) => (err += d));
    t.on('error', reject);
    t.on('close', (code, signal) => (code === 0 || (signal === 'SIGPIPE' && stdio[1] === 'inherit') ? resolve(!!signal) : reject(new BerthError('CP_PATH',
      `tar ${signal ? `killed by ${signal}` : `exit ${code}`}${err ? `: ${err.trim()}` : ''}`))));
  });
}

/**
 * `berth cp CONTAINER:PATH -` writes PATH as a tar archive to stdout; `berth cp -
 * CONTAINER:DIR` unpacks the tar archive on stdin into DIR, as Docker's. Through a private
 * temporary directory and the ordinary copy, so the container side is resolved as ever.
 */
async function copyTarStream(ctx: CliContext, direction: 'from-container' | 'to-container', ref: string,
  containerPath: string): Promise<boolean> {
  if (direction === 'from-container' && process.stdout.isTTY) {
    throw new BerthError('USAGE', 'refusing to write a tar archive to a terminal', { hint: 'redirect stdout, or give a host path' });
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cp-'));
  try {
    if (direction === 'from-container') {
      const base = path.posix.basename(path.posix.normalize(`/${containerPath}`)) || '.';
      const dest = base === '.' ? path.join(tmp, 'root') : path.join(tmp, base);
      await copyFiles(ctx.stores(), { direction, ref, containerPath, hostPath: dest, log: ctx.logger() });
      return await runTar(['-C', base === '.' ? dest : tmp, '--numeric-owner', '-cf', '-', base], ['ignore', 'inherit', 'pipe']);
    }
    await runTar(['-C', tmp, '--numeric-owner', '-xf', '-'], ['inherit', 'ignore', 'pipe']);
    for (const entry of fs.readdirSync(tmp)) {
      await copyFiles(ctx.stores(), {
        direction, ref, containerPath: path.posix.join(containerPath, entry), hostPath: path.join(tmp, entry), log: ctx.logger(),
      });
    }
    return false;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** "CONTAINER:PATH" -> [container, path]; a host path (absolute, ./, ../ or no ":") -> undefined. */
function splitContainerPath(arg: string): [string, string] | undefined {
  if (arg.startsWith('/') || arg.startsWith('.')) return undefined;
  const i = arg.indexOf(':');
  if (i <= 0) return undefined;
  return [arg.slice(0, i), arg.slice(i + 1)];
}

/**
 * Without -i the process gets no input, as Docker's (exec, and a foreground run): fd 0
 * becomes /dev/null (the lowest
 * free fd is 0 once it is closed). Node has not opened process.stdin at this point.
 */
export function detachStdin(): void {
  try {
    fs.closeSync(0);
  } catch {
    // already closed
  }
  fs.openSync('/dev/null', 'r');
}

export function register(program: Command, ctx: CliContext): void {
  const root = () => ctx.stores().root;

  program.command('exec <container> <command...>').description('run a command in a running container')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-d, --detach', 'return once the command runs')
    .option('-e, --env <var>', 'set an environment variable (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect, [])
    .option('-u, --user <user[:group]>', 'user (name or uid) and group, from the container\'s /etc/passwd')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .passThroughOptions()
    .action(async (ref: string, command: string[], o) => {
      if (!o.interactive && !o.detach) detachStdin();
      ctx.setResult(await execInContainer(root(), ref, {
        args: command, env: [...o.envFile.flatMap((f: string) => readEnvFile(f)), ...o.env], user: o.user, workdir: o.workdir, tty: !!o.tty, detach: !!o.detach, log: ctx.logger(),
      }));
    });

  program.command('top <container> [psOptions...]').description('show the processes of a running container (ps options after it)')
    .allowUnknownOption()
    .passThroughOptions()
    .action(async (ref: string, psArgs: string[]) => {
      print(await topContainer(root(), ref, psArgs, ctx.logger()));
    });

  for (const [verb, paused] of [['pause', true], ['unpause', false]] as const) {
    program.command(`${verb} <containers...>`).description(`${paused ? 'freeze' : 'thaw'} every process of containers`)
      .action(async (refs: string[]) => {
        for (const ref of refs) {
          await setContainerPaused(root(), ref, paused, ctx.logger());
          print(`${ref}\n`);
        }
      });
  }

  program.command('rename <container> <name>').description('give a container a new name')
    .action(async (ref: string, name: string) => {
      await renameContainer(root(), ref, name, ctx.logger());
    });

  program.command('diff <container>').description('files the container added (A), changed (C) or deleted (D)')
    .action(async (ref: string) => {
      for (const c of await diffContainer(ctx.stores(), ref, ctx.logger())) print(`${c.kind} ${c.path}\n`);
    });

  program.command('export <container>').description('write the container\'s root filesystem as a tar archive')
    .option('-o, --output <file>', 'the archive to write (default: stdout)')
    .action(async (ref: string, o: { output?: string }) => {
      if (!o.output && process.stdout.isTTY) {
        throw new BerthError('USAGE', 'refusing to write a tar archive to a terminal', { hint: 'use -o FILE or redirect stdout' });
      }
      // A reader that left (| head): quietly 141, as a process killed by SIGPIPE (logs -f too).
      if ((await exportContainer(ctx.stores(), ref, o.output, ctx.logger())).outputClosed) ctx.setResult(141);
    });

  program.command('cp <source> <destination>')
    .description('copy files between a container and the host: cp CONTAINER:PATH HOSTPATH, cp HOSTPATH CONTAINER:PATH')
    .action(async (source: string, destination: string) => {
      const from = splitContainerPath(source);
      const to = splitContainerPath(destination);
      if (!!from === !!to) {
        throw new BerthError('USAGE', from ? 'cp copies between a container and the host, not between containers'
          : 'cp needs one side as CONTAINER:PATH', { hint: 'berth cp CONTAINER:/path HOSTPATH, or berth cp HOSTPATH CONTAINER:/path' });
      }
      const [ref, containerPath] = (from ?? to)!;
      if (!containerPath) throw new BerthError('USAGE', `"${from ? source : destination}" has no path after ":"`);
      // Docker's `-`: a tar archive on stdout (from the container) or stdin (into a directory of it).
      if ((from ? destination : source) === '-') {
        if (await copyTarStream(ctx, from ? 'from-container' : 'to-container', ref, containerPath)) ctx.setResult(141);
        return;
      }
      await copyFiles(ctx.stores(), {
        direction: from ? 'from-container' : 'to-container', ref, containerPath, hostPath: from ? destination : source,
        log: ctx.logger(),
      });
    });

  // `container` is berth-main's (hidden) group for the monitor's cleanup; prune joins it.
  const container = program.commands.find((c) => c.name() === 'container') ?? program.command('container');
  container.command('prune').description('remove every exited container')
    .option('-f, --force', 'do not ask (berth never asks)')
    .action(async () => {
      const r = await pruneContainers(root(), ctx.logger());
      if (r.removed.length) print(`Deleted Containers:\n${r.removed.map((id) => `${id}\n`).join('')}\n`);
      print(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
    });

  program.command('info').description('show what this berth is and holds')
    .option('--format <format>', 'json for JSON')
    .action(async (o: { format?: string }) => {
      const i = { ...(await engineInfo(ctx.stores(), ctx.logger())), network: networkModes(), userns: usernsInfo(root()) };
      if (o.format === 'json') return print(JSON.stringify(i, null, 2) + '\n');
      print([
        `Server Version: ${i.version}`,
        `Root Dir: ${i.root}`,
        `Containers: ${i.containers.total}`,
        ` Running: ${i.containers.running}`,
        ` Paused: ${i.containers.paused}`,
        ` Stopped: ${i.containers.stopped}`,
        `Images: ${i.images}`,
        `Storage Driver: ${i.storageDriver}`,
        ` Backing Filesystem: ${i.backingFilesystem}`,
        `Cgroup Driver: ${i.cgroupDriver}`,
        `Cgroup Version: ${i.cgroupVersion}`,
        `Runtimes: ${Object.entries(i.runtimes).map(([n, p]) => `${n} (${p})`).join(', ')}`,
        `Default Runtime: ${i.defaultRuntime}`,
        `Kernel Version: ${i.kernelVersion}`,
        `Operating System: ${i.operatingSystem}`,
        `Architecture: ${i.architecture}`,
        `CPUs: ${i.cpus}`,
        `Total Memory: ${humanSize(i.memTotal)}`,
        // network/index.ts: which --network modes work here, and why one does not.
        'Network:',
        ...i.network.map((n) => ` ${n.mode}: ${n.mode === 'default' ? '' : n.available ? 'yes, ' : 'no, '}${n.detail}`),
        // engine/userns.ts: --userns needs id-mapped layers and subordinate ids for "containers".
        'User Namespaces (--userns):',
        ` Id-mapped Mounts: ${i.userns.detail}`,
        ` Subordinate UIDs: ${i.userns.subuid}`,
        ` Subordinate GIDs: ${i.userns.subgid}`,
      ].join('\n') + '\n');
    });
}
