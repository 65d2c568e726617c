// Entry point of bin/berth-runtime.
import { main } from './runtime-main';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
