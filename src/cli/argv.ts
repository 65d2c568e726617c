// The arguments after node's own: bin/berth and bin/berth-runtime put "--" before them,
// because node 20 reads some of its options (--env-file) even after the script name.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';

export function userArgs(argv: string[] = process.argv): string[] {
  const rest = argv.slice(2);
  return rest[0] === '--' ? rest.slice(1) : rest;
}

/** commander's parser for a repeatable option: each use adds one value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** --env-file FILE: its NAME=VALUE lines (NAME alone: the host's value); # comments. @throws BerthError USAGE */
export function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('USAGE', `--env-file "${file}": ${(err as Error).message}`);
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .map((l) => (l.includes('=') ? l : `${l}=${process.env[l] ?? ''}`));
}
