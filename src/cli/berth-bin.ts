// Entry point of bin/berth.
import { userArgs } from './argv';
import { main } from './berth-main';

main(userArgs()).then((code) => {
  process.exitCode = code;
});
