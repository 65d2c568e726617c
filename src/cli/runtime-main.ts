// berth-runtime: the runc-compatible command line over src/runtime (so podman, containerd
// and CRI-O can drive berth). Parses flags and prints; the verbs live in runtime/.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { BerthError } from '../common/errors';
import { Level, Logger } from '../common/log';
import { makeContext, RuntimeContext } from '../runtime/context';
import { create } from '../runtime/create';
import { defaultSpec, features } from '../runtime/default-spec';
import { deleteContainer } from '../runtime/delete';
import { exec } from '../runtime/exec';
import { runForeground } from '../runtime/run';
import { list, pids, psTable, setPaused, state } from '../runtime/inspect';
import { kill } from '../runtime/kill';
import { start } from '../runtime/start';
import { reportError } from './report-error';
import { collect } from './argv';

const VERSION = '0.1.0';
const SPEC_VERSION = '1.1.0';
const PROG = 'berth-runtime';

let log: Logger | undefined;

function context(program: Command): RuntimeContext {
  const o = program.opts();
  return makeContext(o.root, logger(program), !!o.systemdCgroup);
}

function logger(program: Command): Logger {
  if (!log) {
    const o = program.opts();
    const level: Level = o.debug ? 'debug' : (o.logLevel as Level) ?? 'warn';
    log = new Logger({ level, file: o.log, format: o.logFormat });
  }
  return log;
}

const int = (v: string) => {
  if (!/^\d+$/.test(v)) throw new BerthError('USAGE', `"${v}" is not a whole number`);
  return Number(v);
};

function print(s: string): void {
  process.stdout.write(s);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command(PROG);
  let result = 0;
  program
    .description('berth\'s OCI runtime: runs a bundle (config.json + root filesystem) as a container')
    .version(`${PROG} version ${VERSION}\nspec: ${SPEC_VERSION}`, '-v, --version')
    .option('--root <dir>', 'where container state lives', '/run/berth-runtime')
    .option('--log <file>', 'write logs to FILE (default: stderr)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--log-level <level>', 'log level').choices(['error', 'warn', 'info', 'debug']))
    .option('--debug', 'log at debug level')
    .option('--systemd-cgroup', 'use systemd cgroups (not supported: berth manages cgroupfs itself)')
    .option('--rootless <value>', 'accepted for runc compatibility', 'auto')
    .option('--criu <path>', 'accepted for runc compatibility; checkpointing is not supported')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError()
    .enablePositionalOptions();

  const bundleOpt = () => new Option('-b, --bundle <dir>', 'bundle directory').default('.');
  program.command('create <id>').description('create a container from a bundle; `start` runs its process')
    .addOption(bundleOpt())
    .option('--pid-file <file>', 'write the init pid here')
    .option('--console-socket <path>', 'unix socket that receives the pty master')
    .option('--no-pivot', 'use chroot instead of pivot_root (for ramfs roots)')
    .option('--no-new-keyring', 'accepted: berth never creates a session keyring')
    .option('--preserve-fds <n>', 'pass fds 3..3+N-1 to the container', int, 0)
    .action(async (id: string, o) => {
      const ctx = context(program);
      const { init } = await create(ctx, { id, bundle: o.bundle, pidFile: o.pidFile, consoleSocket: o.consoleSocket,
        noPivot: o.pivot === false, preserveFds: o.preserveFds });
      init.close();
    });

  program.command('start <id>').description('run the process of a created container')
    .action((id: string) => {
      start(context(program), id);
    });

  program.command('run <id>').description('create and start a container, and wait for it (unless --detach)')
    .addOption(bundleOpt())
    .option('--pid-file <file>', 'write the init pid here')
    .option('--console-socket <path>', 'unix socket that receives the pty master')
    .option('-d, --detach', 'return once the process runs')
    .option('--keep', 'do not delete the container after it exits')
    .option('--no-pivot', 'use chroot instead of pivot_root')
    .option('--no-new-keyring', 'accepted: berth never creates a session keyring')
    .option('--preserve-fds <n>', 'pass fds 3..3+N-1 to the container', int, 0)
    .action(async (id: string, o) => {
      const ctx = context(program);
      const createOpts = { id, bundle: o.bundle, pidFile: o.pidFile, consoleSocket: o.consoleSocket,
        noPivot: o.pivot === false, preserveFds: o.preserveFds };
      if (o.detach) {
        const { init } = await create(ctx, createOpts);
        init.close();
        start(ctx, id);
        return;
      }
      const r = await runForeground(ctx, createOpts, !!o.keep);
      if (r.late) process.stderr.write(`${PROG}: ${r.late.message}\n`);
      result = r.status;
    });

  program.command('state <id>').description('print the OCI state of a container as JSON')
    .action((id: string) => print(JSON.stringify(state(context(program), id), null, 2) + '\n'));

  program.command('kill <id> [signal]').description('send a signal (default TERM) to the container\'s init')
    .option('-a, --all', 'signal every process in the container')
    .action((id: string, signal: string | undefined, o) => kill(context(program), id, signal ?? 'TERM', !!o.all));

  program.command('delete <id>').description('remove a stopped container')
    .option('-f, --force', 'kill it first if it is running')
    .action((id: string, o) => deleteContainer(context(program), id, !!o.force));

  program.command('list').alias('ls').description('list containers')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'print only ids')
    .action((o) => {
      const rows = list(context(program));
      if (o.quiet) return print(rows.map((r) => r.id + '\n').join(''));
      if (o.format === 'json') return print(JSON.stringify(rows) + '\n');
      const table = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'],
        ...rows.map((r) => [r.id, r.pid, r.status, r.bundle, r.created, r.owner].map(String))];
      const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
      print(table.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('   ').trimEnd() + '\n').join(''));
    });

  program.command('ps <id> [psArgs...]').description('list the container\'s processes (ps options after --)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .passThroughOptions()
    .action((id: string, psArgs: string[], o) => {
      const ctx = context(program);
      if (o.format === 'json') return print(JSON.stringify(pids(ctx, id)) + '\n');
      print(psTable(ctx, id, psArgs));
    });

  program.command('exec <id> [command...]').description('run a process in a running container')
    .option('-p, --process <file>', 'the process as OCI process JSON')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-d, --detach', 'return once the process runs')
    .option('--pid-file <file>', 'write the process pid here')
    .option('--console-socket <path>', 'unix socket that receives the pty master')
    .option('--cwd <dir>', 'working directory inside the container')
    .option('-e, --env <var>', 'set an environment variable (repeatable)', collect, [])
    .option('-u, --user <uid:gid>', 'user and group ids')
    .option('-c, --cap <cap>', 'add a capability (repeatable)', collect, [])
    .option('--no-new-privs', 'set no_new_privs')
    .option('--preserve-fds <n>', 'pass fds 3..3+N-1 to the process', int, 0)
    .passThroughOptions()
    .action(async (id: string, command: string[], o) => {
      result = await exec(context(program), { id, processFile: o.process, args: command, env: o.env, cwd: o.cwd,
        user: o.user, tty: !!o.tty, detach: !!o.detach, pidFile: o.pidFile, consoleSocket: o.consoleSocket,
        preserveFds: o.preserveFds, capAdd: o.cap, noNewPrivs: o.newPrivs === false ? true : undefined });
    });

  program.command('pause <id>').description('freeze every process of a container')
    .action((id: string) => setPaused(context(program), id, true));
  program.command('resume <id>').description('thaw a paused container')
    .action((id: string) => setPaused(context(program), id, false));

  program.command('spec').description('write a default config.json into the bundle directory')
    .addOption(bundleOpt())
    .option('--rootless', 'a config for a user namespace mapping the caller')
    .action((o) => {
      const file = path.join(o.bundle, 'config.json');
      if (fs.existsSync(file)) {
        throw new BerthError('CONFIG_EXISTS', `"${file}" already exists`, { hint: 'remove it first' });
      }
      fs.writeFileSync(file, JSON.stringify(defaultSpec(!!o.rootless), null, 2) + '\n');
    });

  program.command('features').description('print what this runtime supports (OCI features JSON)')
    .action(() => print(JSON.stringify(features(), null, 2) + '\n'));

  program.command('update <id>').description('not supported')
    .allowUnknownOption().allowExcessArguments()
    .action(() => {
      throw new BerthError('UNSUPPORTED', 'update is not supported by berth-runtime yet');
    });
  program.command('checkpoint <id>').description('not supported').allowUnknownOption()
    .action(() => {
      throw new BerthError('UNSUPPORTED', 'checkpoint/restore is not supported by berth-runtime');
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return result;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 1;
    }
    // runc's convention: every failure of the runtime itself exits 1. Only `run` passes on
    // the process's own status (and 126/127 when it could not be executed after start).
    reportError(PROG, err, log);
    return 1;
  }
}
