// Entry of bin/berth's V8 start-up snapshot (scripts/build-snapshot.js): the CLI and its
// modules are loaded once at build time. The Node addon and child_process are loaded at
// run time, when a command needs them.
import * as v8 from 'node:v8';
import { containerSeccomp } from '../engine/security-opts';
import { DEFAULT_CAPS } from '../engine/spec';
import { loadValidator } from '../runtime/config';
import { compileSeccomp } from '../runtime/seccomp';
import { defaultSpec } from '../runtime/default-spec';
import { userArgs } from './argv';
import { main } from './berth-main';

// Code that runs at build time stays compiled in the snapshot; V8 otherwise compiles each
// function on its first call, at every start. So the schema validator runs once here (it
// was ~15 ms of a `berth run`), and so does building the command line (its output is
// swallowed: --version only prints), and so does compiling the default seccomp profile for
// Docker's default capabilities, which compileSeccomp also keeps (5-20 ms per run otherwise;
// a run with another profile or other capabilities compiles its own).
loadValidator()(defaultSpec(false));
compileSeccomp(containerSeccomp({ seccomp: 'default', noNewPrivileges: false }, DEFAULT_CAPS, false)!);
const write = process.stdout.write;
process.stdout.write = (() => true) as typeof process.stdout.write;
main(['--version']).finally(() => {
  process.stdout.write = write;
});
v8.startupSnapshot.setDeserializeMainFunction(() => {
  main(userArgs()).then((code) => {
    process.exitCode = code;
  });
});
