// Entry of bin/berth's V8 start-up snapshot (scripts/build-snapshot.js): the CLI and its
// modules are loaded once at build time. The Node addon and child_process are loaded at
// run time, when a command needs them.
import * as v8 from 'node:v8';
import { userArgs } from './argv';
import { main } from './berth-main';

v8.startupSnapshot.setDeserializeMainFunction(() => {
  main(userArgs()).then((code) => {
    process.exitCode = code;
  });
});
