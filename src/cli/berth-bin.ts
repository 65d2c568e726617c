// Entry point of bin/berth.
import { main } from './berth-main';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
