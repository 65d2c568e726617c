#!/usr/bin/env bash
# The whole test suite (`npm test`): build, compile the tests, run them with node's test
# runner. Integration tests need root, like the containers they start.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
npm run --silent build >/dev/null
[ -d build/busybox-bundle ] || bash scripts/make-busybox-bundle.sh build/busybox-bundle >/dev/null
# BERTH_TEST_OUT: where the compiled tests go (default build-test), so that two people
# working in one checkout can run tests at once; the tests find the checkout by BERTH_TOP.
out=${BERTH_TEST_OUT:-build-test}
export BERTH_TOP=$PWD
rm -rf "$out"
npx tsc -p tsconfig.test.json --outDir "$out"
# Unit tests sit beside the code (src/**/*.test.ts -> $out/src/), integration tests in
# test/integration/. Arguments name test files (e.g. test/integration/run.test.ts).
if [ $# -eq 0 ]; then set -- "$out/src/" "$out/test/"; else
  args=(); for a in "$@"; do case $a in *.ts) a="$out/${a%.ts}.js";; esac; args+=("$a"); done; set -- "${args[@]}"
fi
exec node --test --test-concurrency=2 "$@"
