// What every runtime verb needs: the state root, the logger, global flags. Built by the CLI.
import type { Logger } from '../common/log';
import { StateDir } from './state';

export interface RuntimeContext {
  state: StateDir;
  log: Logger;
  systemdCgroup: boolean;
}

export function makeContext(root: string, log: Logger, systemdCgroup = false): RuntimeContext {
  return { state: new StateDir(root), log, systemdCgroup };
}
