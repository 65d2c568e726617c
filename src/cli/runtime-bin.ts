// Entry point of bin/berth-runtime.
import { userArgs } from './argv';
import { main } from './runtime-main';

main(userArgs()).then((code) => {
  process.exitCode = code;
});
