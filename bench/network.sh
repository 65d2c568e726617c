#!/usr/bin/env bash
# What each network mode costs: TCP throughput container -> host (iperf3, ~3 s per mode)
# and the start-up time a mode adds to `berth run --rm busybox true` over --network none,
# side by side with podman for the modes it has (slirp4netns, bridge (CNI); none as the baseline).
#
# Usage (as root, from any directory):  bench/network.sh
# Environment: RUNS (default 15), WARMUP (default 3), SECONDS_PER_TEST (default 3),
#   ROUNDS (default 3): each throughput is the median of ROUNDS runs, berth's and podman's
#   alternating, since one run of a few seconds varies by tens of percent here.
# Needs: hyperfine iperf3 podman slirp4netns passt (./setup.sh installs them), a built tree.
# Traffic stays on the host: the iperf3 server listens on 127.0.0.1 only, and containers
# reach it through their mode's host-loopback mapping (slirp4netns 10.0.2.2 with
# allow_host_loopback=true; pasta: the default gateway's address with allow_host_loopback).
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RUNS=${RUNS:-15}
WARMUP=${WARMUP:-3}
SECS=${SECONDS_PER_TEST:-3}
ROUNDS=${ROUNDS:-3}
die() { echo "network.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in hyperfine iperf3 podman slirp4netns tar; do command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"; done
[ -f "$REPO/build/busybox-rootfs.tar" ] || die "build/busybox-rootfs.tar missing; run $REPO/setup.sh"
HAVE_PASTA=$(command -v pasta >/dev/null && echo 1 || echo 0)

. "$REPO/bench/podman-env.sh"
bench_prepare net
BERTH="$REPO/bin/berth --root $ROOT"
PODMAN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
IPERF_PID=
PODMAN_NETS=
BR_NET=
bench_extra_cleanup() {
  for p in $IPERF_PID ${IPERF_BR_PID:-} ${IPERF_PBR_PID:-}; do kill "$p" 2>/dev/null || true; done
  for c in $($BERTH ps -aq 2>/dev/null); do $BERTH rm -f "$c" >/dev/null 2>&1 || true; done
  $BERTH network prune -f >/dev/null 2>&1 || true
  $BERTH network rm bridge >/dev/null 2>&1 || true
  "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
  [ -n "$PODMAN_NETS" ] && "${PODMAN[@]}" network rm -f "$PODMAN_NETS" >/dev/null 2>&1 || true
}

echo "preparing (in $TMP): the busybox image, and an image with the host's iperf3 and its libraries"
bash "$REPO/scripts/make-busybox-image.sh" "$ROOT" >/dev/null
# The busybox image has no iperf3: the host's binary and every library ldd lists, on top of
# busybox's root filesystem, imported as one layer (berth and podman get the same tarball).
mkdir -p "$TMP/iperf-root"
tar -C "$TMP/iperf-root" -xf "$REPO/build/busybox-rootfs.tar"
for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
  mkdir -p "$TMP/iperf-root$(dirname "$f")"
  cp -L "$f" "$TMP/iperf-root$f"
done
tar -C "$TMP/iperf-root" -cf "$TMP/iperf.tar" .
$BERTH import "$TMP/iperf.tar" localhost/iperf:bench -c 'CMD ["iperf3"]' >/dev/null
"${PODMAN[@]}" import -q "$TMP/iperf.tar" localhost/iperf:bench >/dev/null
"${PODMAN[@]}" import -q "$REPO/build/busybox-rootfs.tar" localhost/busybox:bench >/dev/null

PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
iperf3 -s -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
IPERF_PID=$!
sleep 0.5
GW=$(ip -4 route show default | awk '{ print $3; exit }')

# NAME COMMAND...: runs an iperf3 client (JSON output) -> Gbit/s the server received, or "-".
measure() {
  local name=$1; shift
  local json
  json=$("$@" 2>"$TMP/err") || { echo "$name: failed: $(tail -2 "$TMP/err" | tr '\n' ' ')" >&2; echo "-"; return; }
  node -e 'const j=JSON.parse(process.argv[1]); console.log((j.end.sum_received.bits_per_second/1e9).toFixed(2))' "$json"
}
IPERF_ARGS="-p $PORT -t $SECS -J"
# NAME_A "CMD_A" NAME_B "CMD_B": ROUNDS runs of each, alternating -> "medianA medianB".
# (CMD_B may be "" for a mode podman lacks: its median is then "-".)
median_pair() {
  local a=() b=() i
  for ((i = 0; i < ROUNDS; i++)); do
    a+=("$(eval "measure $1 $2")")
    [ -n "$4" ] && b+=("$(eval "measure $3 $4")")
  done
  node -e 'const med = (s) => { const v = s.split(" ").filter((x) => x && x !== "-").map(Number).sort((x, y) => x - y);
    return v.length ? v[Math.floor((v.length - 1) / 2)].toFixed(2) : "-"; };
    console.log(med(process.argv[1]) + " " + med(process.argv[2]))' "${a[*]}" "${b[*]:-}"
}
echo
echo "TCP throughput, container -> iperf3 server on the host's 127.0.0.1 (${SECS} s each, median of $ROUNDS)"
printf '%-24s %10s %10s\n' mode berth podman
read -r S_B S_P < <(median_pair berth-slirp '$BERTH run --rm --network slirp4netns:allow_host_loopback=true localhost/iperf:bench iperf3 -c 10.0.2.2 $IPERF_ARGS' \
  podman-slirp '"${PODMAN[@]}" run --rm $PODMAN_FLAGS --network slirp4netns:allow_host_loopback=true localhost/iperf:bench iperf3 -c 10.0.2.2 $IPERF_ARGS')
printf '%-24s %8s Gb %8s Gb\n' slirp4netns "$S_B" "$S_P"
if [ "$HAVE_PASTA" = 1 ] && [ -n "$GW" ]; then
  read -r P_B _ < <(median_pair berth-pasta '$BERTH run --rm --network pasta:allow_host_loopback=true localhost/iperf:bench iperf3 -c "$GW" $IPERF_ARGS' '' '')
  printf '%-24s %8s Gb %10s\n' pasta "$P_B" "(no pasta in podman 4.3)"
else
  echo "pasta: missing (no pasta binary or no default route)"
fi
# Bridges: each side gets a network of its own, and an iperf3 server listens on that
# bridge's gateway address (a host address the bench made, so traffic stays on this host).
BR_NET=benchnet$$
$BERTH network create "$BR_NET" >/dev/null
BR_GW=$($BERTH network inspect "$BR_NET" | node -e 'const n=JSON.parse(require("fs").readFileSync(0,"utf8"));const x=Array.isArray(n)?n[0]:n;console.log(x.IPAM?.Config?.[0]?.Gateway??x.Gateway??x.gateway)')
POD_NET=berthbench$$
"${PODMAN[@]}" network create --subnet 10.214.250.0/24 "$POD_NET" >/dev/null
PODMAN_NETS=$POD_NET
# bridges need an address on the host before iperf3 can bind it: run one container on each first
$BERTH run --rm --network "$BR_NET" busybox true
"${PODMAN[@]}" run --rm $PODMAN_FLAGS --network "$POD_NET" localhost/busybox:bench true
iperf3 -s -B "$BR_GW" -p "$PORT" >/dev/null 2>&1 &
IPERF_BR_PID=$!
iperf3 -s -B 10.214.250.1 -p "$PORT" >/dev/null 2>&1 &
IPERF_PBR_PID=$!
sleep 0.5
read -r B_B B_P < <(median_pair berth-bridge '$BERTH run --rm --network "$BR_NET" localhost/iperf:bench iperf3 -c "$BR_GW" $IPERF_ARGS' \
  podman-bridge '"${PODMAN[@]}" run --rm $PODMAN_FLAGS --network "$POD_NET" localhost/iperf:bench iperf3 -c 10.214.250.1 $IPERF_ARGS')
kill "$IPERF_BR_PID" "$IPERF_PBR_PID" 2>/dev/null || true
printf '%-24s %8s Gb %8s Gb\n' bridge "$B_B" "$B_P"
H_B=$(measure berth-host $BERTH run --rm --network host localhost/iperf:bench iperf3 -c 127.0.0.1 $IPERF_ARGS)
printf '%-24s %8s Gb %10s\n' 'host (reference)' "$H_B" ''

echo
echo "start-up: berth run --rm busybox true per mode, podman run --rm likewise ($RUNS runs each)"
CMDS=(-n 'berth none' "$BERTH run --rm --network none busybox true"
  -n 'berth slirp4netns' "$BERTH run --rm --network slirp4netns busybox true")
[ "$HAVE_PASTA" = 1 ] && CMDS+=(-n 'berth pasta' "$BERTH run --rm --network pasta busybox true")
CMDS+=(-n 'berth bridge' "$BERTH run --rm --network $BR_NET busybox true"
  -n 'podman bridge' "${PODMAN[*]} run --rm $PODMAN_FLAGS --network $POD_NET localhost/busybox:bench true")
CMDS+=(-n 'podman none' "${PODMAN[*]} run --rm $PODMAN_FLAGS --network none localhost/busybox:bench true"
  -n 'podman slirp4netns' "${PODMAN[*]} run --rm $PODMAN_FLAGS --network slirp4netns localhost/busybox:bench true")
hyperfine --shell=bash --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/hf.json" "${CMDS[@]}" >/dev/null
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const m = Object.fromEntries(r.map((x) => [x.command, x]));
  const ms = (x) => (x.mean * 1000).toFixed(1);
  for (const x of r) console.log(`${x.command.padEnd(20)} ${ms(x).padStart(7)} ms ± ${(x.stddev * 1000).toFixed(1)}`);
  const extra = (who, mode) => m[`${who} ${mode}`] && (m[`${who} ${mode}`].mean - m[`${who} none`].mean) * 1000;
  console.log("\nextra start-up over --network none:");
  for (const mode of ["slirp4netns", "pasta", "bridge"]) {
    const b = extra("berth", mode), p = extra("podman", mode);
    if (b === undefined) continue;
    console.log(`  ${mode.padEnd(12)} berth +${b.toFixed(1)} ms` + (p !== undefined ? `, podman +${p.toFixed(1)} ms, podman/berth ${(p / b).toFixed(2)}x` : ", podman: no such mode"));
  }
  const s = m["berth slirp4netns"], ps = m["podman slirp4netns"];
  console.log(`whole run with slirp4netns: podman / berth ${(ps.mean / s.mean).toFixed(2)}x`);
' "$TMP/hf.json"
