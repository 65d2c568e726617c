// bin/berth's commands that live in their own files, one area per file, each exporting
// register(program, ctx). berth-main.ts calls registerCommands once.
import type { Command } from 'commander';
import type { Logger } from '../../common/log';
import type { Stores } from '../../image/stores';
import { register as attach } from './attach';
import { register as containersOps } from './containers-ops';
import { register as networkPorts } from './network-ports';
import { register as networks } from './networks';
import { register as stats } from './stats';
import { register as volumes } from './volumes';

export interface CliContext {
  /** The engine root's stores (opened on first use, from --root). */
  stores(): Stores;
  logger(): Logger;
  /** The exit status berth returns when the command itself succeeded (run, exec, wait). */
  setResult(code: number): void;
}

type Register = (program: Command, ctx: CliContext) => void;

// Add a line here for each new file.
const AREAS: Register[] = [
  containersOps,
  networkPorts,
  networks,
  attach,
  volumes,
  stats,
];

export function registerCommands(program: Command, ctx: CliContext): void {
  for (const register of AREAS) register(program, ctx);
}
