// Entry of berth-runtime's V8 start-up snapshot (scripts/build-snapshot.js): the CLI and
// the schema validator are loaded once at build time, so a run skips loading ~600 kB of
// JavaScript. child_process is still loaded at run time (it is not snapshot-safe).
import * as v8 from 'node:v8';
import { loadValidator } from '../runtime/config';
import { defaultSpec } from '../runtime/default-spec';
import { userArgs } from './argv';
import { main } from './runtime-main';

// Running the validator once at build time leaves its functions compiled in the snapshot.
loadValidator()(defaultSpec(false));
v8.startupSnapshot.setDeserializeMainFunction(() => {
  // argv: node, the placeholder script bin/berth-runtime passes, then the real arguments.
  main(userArgs()).then((code) => {
    process.exitCode = code;
  });
});
