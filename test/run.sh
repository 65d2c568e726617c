#!/usr/bin/env bash
# The whole test suite (`npm test`): build, compile the tests, run them with node's test
# runner. Integration tests need root, like the containers they start.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
npm run --silent build >/dev/null
[ -d build/busybox-bundle ] || bash scripts/make-busybox-bundle.sh build/busybox-bundle >/dev/null
rm -rf build-test
npx tsc -p tsconfig.test.json
# Unit tests sit beside the code (src/**/*.test.ts -> build-test/src/), integration tests
# in test/integration/.
if [ $# -eq 0 ]; then set -- build-test/src/ build-test/test/; fi
exec node --test --test-concurrency=2 "$@"
