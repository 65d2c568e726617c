#!/usr/bin/env bash
# Times `run` of one busybox bundle whose process is /bin/true with berth-runtime, runc and
# crun in a single hyperfine run, and prints mean times and the ratios berth/runc and
# berth/crun. It also times `node -e 0` with and without NODE_EXTRA_CA_CERTS and
# `berth-runtime --version`, to show where berth's time goes.
#
# Usage (as root, from any directory):  bench/runtime-run.sh
# Environment: RUNS (default 30), WARMUP (default 3),
#              BENCH_JSON=FILE to keep hyperfine's JSON export (default: thrown away).
# Needs: hyperfine runc crun unshare node (./setup.sh installs them) and build/busybox-bundle.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
SRC_BUNDLE=$REPO/build/busybox-bundle
BERTH=$REPO/bin/berth-runtime

die() { echo "runtime-run: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (containers are created with real namespaces and cgroups)"
for t in hyperfine runc crun unshare node; do
  command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"
done
[ -f "$SRC_BUNDLE/config.json" ] || die "$SRC_BUNDLE missing; run $REPO/setup.sh"
[ -f "$REPO/dist/cli/runtime-bin.js" ] || die "berth is not built; run $REPO/setup.sh"
RUNC=$(command -v runc)
CRUN=$(command -v crun)
NODE=$(command -v node)

# ---- cgroup layout: decides whether the runtimes need the unshare wrapper ----------------
# crun 1.8 refuses a hybrid layout (cgroup v1 controllers + a cgroup2 mount at
# /sys/fs/cgroup/unified). In a private mount namespace without that cgroup2 mount it sees
# plain cgroup v1 and works. The host's mounts are untouched (propagation is private).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  LAYOUT="cgroup v2 (unified)"; WRAP=0
elif awk '$2 == "/sys/fs/cgroup/unified" && $3 == "cgroup2" { f = 1 } END { exit !f }' /proc/self/mounts; then
  LAYOUT="hybrid (cgroup v1 + cgroup2 at /sys/fs/cgroup/unified)"; WRAP=1
else
  LAYOUT="cgroup v1 (legacy)"; WRAP=0
fi
WRAP_SH='umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"'

# ---- scratch space and cleanup ---------------------------------------------------------------
TMP=$(mktemp -d /tmp/berth-bench.XXXXXX)
TOKEN=bb$$                      # in every container id of this run, for targeted cleanup
HF_PID=
declare -A ROOT=([berth]=$TMP/root-berth [runc]=$TMP/root-runc [crun]=$TMP/root-crun)
declare -A BIN=([berth]=$BERTH [runc]=$RUNC [crun]=$CRUN)

# Runs a runtime's own command (delete, list) the way the benchmark ran it.
rt() { # tool args...
  local tool=$1; shift
  if [ "$WRAP" = 1 ]; then
    unshare -m --propagation private sh -c "$WRAP_SH" sh "${BIN[$tool]}" --root "${ROOT[$tool]}" "$@"
  else
    "${BIN[$tool]}" --root "${ROOT[$tool]}" "$@"
  fi
}

cleanup() {
  local rc=$? tool id pid
  trap - EXIT INT TERM
  set +e
  if [ -n "$HF_PID" ] && kill -0 "$HF_PID" 2>/dev/null; then
    kill "$HF_PID" 2>/dev/null; wait "$HF_PID" 2>/dev/null
  fi
  # Any runtime process still alive from this run has our temp dir on its command line.
  for pid in $(grep -lsF "$TMP" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != $$ ] && kill "$pid" 2>/dev/null
  done
  for tool in berth runc crun; do
    [ -d "${ROOT[$tool]}" ] || continue
    for id in $(rt "$tool" list -q 2>/dev/null); do
      rt "$tool" delete --force "$id" >/dev/null 2>&1
    done
  done
  # Cgroups a runtime failed to remove (only empty ones can go; deepest first).
  find /sys/fs/cgroup -maxdepth 4 -depth -type d -name "*-$TOKEN-*" -exec rmdir {} + 2>/dev/null
  rm -rf --one-file-system "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the bundle: a copy whose process is /bin/true ------------------------------------------
BUNDLE=$TMP/bundle
cp -a "$SRC_BUNDLE" "$BUNDLE"
mkdir -p "${ROOT[@]}"
env -u NODE_EXTRA_CA_CERTS "$NODE" -e '
  const fs = require("fs"), p = process.argv[1], c = JSON.parse(fs.readFileSync(p, "utf8"));
  c.process.args = ["/bin/true"];
  c.process.terminal = false;
  fs.writeFileSync(p, JSON.stringify(c, null, 2) + "\n");' "$BUNDLE/config.json"

# The hyperfine command (run by bash) for `TOOL run` with a fresh container id per iteration.
run_cmd() { # tool wrap(0|1)
  local tool=$1 wrap=$2 argv
  argv=$(printf '%q ' "${BIN[$tool]}" --root "${ROOT[$tool]}" run --bundle "$BUNDLE")
  local setid="id=$tool-$TOKEN-\$\$-\$RANDOM; "
  if [ "$wrap" = 1 ]; then
    printf '%sexec unshare -m --propagation private sh -c %q sh %s"$id"' "$setid" "$WRAP_SH" "$argv"
  else
    printf '%sexec %s"$id"' "$setid" "$argv"
  fi
}

CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
NAMES=() CMDS=()
add() { NAMES+=("$1"); CMDS+=("$2"); }
if [ "$WRAP" = 1 ]; then
  add "berth run (unshare)" "$(run_cmd berth 1)"
  add "runc run (unshare)"  "$(run_cmd runc 1)"
  add "crun run (unshare)"  "$(run_cmd crun 1)"
fi
add "berth run" "$(run_cmd berth 0)"
add "runc run"  "$(run_cmd runc 0)"
[ "$WRAP" = 1 ] || add "crun run" "$(run_cmd crun 0)"
if [ -f "$CA" ]; then
  add "node -e 0 (NODE_EXTRA_CA_CERTS)" "exec env NODE_EXTRA_CA_CERTS=$(printf %q "$CA") $(printf %q "$NODE") -e 0"
fi
add "node -e 0"             "exec env -u NODE_EXTRA_CA_CERTS $(printf %q "$NODE") -e 0"
add "berth-runtime --version" "exec $(printf %q "$BERTH") --version"

# ---- preflight: each command once, so a broken runtime fails here with its own message -----
for i in "${!CMDS[@]}"; do
  if ! out=$(bash -c "${CMDS[$i]}" 2>&1); then
    echo "runtime-run: '${NAMES[$i]}' failed:" >&2
    echo "  command: ${CMDS[$i]}" >&2
    printf '%s\n' "$out" | sed 's/^/  | /' >&2
    exit 1
  fi
done

# ---- the benchmark ---------------------------------------------------------------------------
echo "cgroup layout: $LAYOUT"
if [ "$WRAP" = 1 ]; then
  echo "  '(unshare)' = run inside 'unshare -m' with /sys/fs/cgroup/unified unmounted (crun needs it);"
  echo "  ratios use the wrapped runs of all three; unwrapped berth and runc are shown for reference."
fi
echo "hyperfine: $WARMUP warmup + $RUNS runs per command"
echo

HF_ARGS=(--shell=bash --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/results.json")
for i in "${!CMDS[@]}"; do HF_ARGS+=(-n "${NAMES[$i]}" "${CMDS[$i]}"); done
hyperfine "${HF_ARGS[@]}" &
HF_PID=$!
wait "$HF_PID"
HF_PID=
[ -z "${BENCH_JSON:-}" ] || cp "$TMP/results.json" "$BENCH_JSON"

# ---- summary ---------------------------------------------------------------------------------
echo
env -u NODE_EXTRA_CA_CERTS "$NODE" -e '
  const [file, wrap] = process.argv.slice(1);
  const res = {};
  for (const r of JSON.parse(require("fs").readFileSync(file, "utf8")).results) res[r.command] = r;
  const ms = (s) => (s * 1000).toFixed(1).padStart(7) + " ms";
  const row = (label, r) => console.log(`  ${label.padEnd(34)}${ms(r.mean)} ± ${(r.stddev * 1000).toFixed(1)} ms` +
    `  (median ${(r.median * 1000).toFixed(1)}, min ${(r.min * 1000).toFixed(1)})`);
  const ratio = (a, b) => {
    const x = res[a], y = res[b], q = x.mean / y.mean;
    const e = q * Math.hypot(x.stddev / x.mean, y.stddev / y.mean);
    return `${q.toFixed(2)}x ± ${e.toFixed(2)}`;
  };
  const sfx = wrap === "1" ? " (unshare)" : "";
  console.log("Mean times (hyperfine, wall clock):");
  for (const name of Object.keys(res)) row(name, res[name]);
  console.log();
  console.log(`Ratios (mean berth / mean other${wrap === "1" ? ", all three wrapped in unshare -m" : ""}):`);
  console.log(`  berth / runc   ${ratio("berth run" + sfx, "runc run" + sfx)}`);
  console.log(`  berth / crun   ${ratio("berth run" + sfx, "crun run" + sfx)}`);
  if (wrap === "1") console.log(`  berth / runc   ${ratio("berth run", "runc run")}   (both unwrapped)`);
  console.log();
  const d = (a, b) => ((a - b) * 1000).toFixed(1).padStart(7) + " ms";
  const node0 = res["node -e 0"].mean, ver = res["berth-runtime --version"].mean, run = res["berth run"].mean;
  const ca = res["node -e 0 (NODE_EXTRA_CA_CERTS)"];
  console.log("Where berth run goes (unwrapped, differences of means):");
  console.log(`  node start-up (node -e 0)         ${d(node0, 0)}`);
  console.log(`  CLI load (--version - node -e 0)  ${d(ver, node0)}   sh launcher + JS modules`);
  console.log(`  container work (run - --version)  ${d(run, ver)}   compare: runc run ${ms(res["runc run"].mean).trim()}`);
  if (ca) console.log(`  NODE_EXTRA_CA_CERTS would add     ${d(ca.mean, node0)}   (bin/berth-runtime unsets it)`);
' "$TMP/results.json" "$WRAP"
