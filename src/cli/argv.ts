// The arguments after node's own: bin/berth and bin/berth-runtime put "--" before them,
// because node 20 reads some of its options (--env-file) even after the script name.
export function userArgs(argv: string[] = process.argv): string[] {
  const rest = argv.slice(2);
  return rest[0] === '--' ? rest.slice(1) : rest;
}

/** commander's parser for a repeatable option: each use adds one value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
