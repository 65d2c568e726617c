#!/usr/bin/env bash
# Times `berth run --rm busybox true` side by side with `podman run --rm` of the same image
# (imported into a private podman store) and `crun run` of an equivalent bundle, in one
# hyperfine run, and prints the ratios podman/berth and berth/crun.
#
# Usage (as root, from any directory):  bench/run.sh
# Environment: RUNS (default 20), WARMUP (default 3).
# Needs: hyperfine podman crun (./setup.sh installs them) and a built tree.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in hyperfine podman crun unshare; do command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"; done
[ -f "$REPO/build/busybox-bundle/config.json" ] || die "build/busybox-bundle missing; run $REPO/setup.sh"

. "$REPO/bench/podman-env.sh"
bench_prepare run

echo "preparing: berth image, podman image, crun bundle (in $TMP)"
bash "$REPO/scripts/make-busybox-image.sh" "$ROOT" >/dev/null
"${PODMAN[@]}" import -q "$REPO/build/busybox-rootfs.tar" localhost/busybox:bench >/dev/null
cp -a "$REPO/build/busybox-bundle" "$TMP/bundle"
node -e 'const f=process.argv[1],fs=require("fs"),c=JSON.parse(fs.readFileSync(f));c.process.args=["/bin/true"];c.process.terminal=false;fs.writeFileSync(f,JSON.stringify(c))' "$TMP/bundle/config.json"

# crun 1.8 refuses this project's hybrid cgroup layout unless the cgroup2 mount is gone
# from its mount namespace (../shared/HOST-NOTES.md); podman's runc and berth do not need it.
CRUN="crun --root $TMP/crun-root run --bundle $TMP/bundle c\$RANDOM\$RANDOM"
if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && awk '$2 == "/sys/fs/cgroup/unified" { f = 1 } END { exit !f }' /proc/self/mounts; then
  CRUN="unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified; exec \"\$@\"' sh $CRUN"
fi
# podman: the flags these machines need (HOST-NOTES.md). Both are timed with no network
# (the runtimes' own start-up) and with slirp4netns, berth's default network.
PODMAN_RUN="${PODMAN[*]} run --rm --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"

hyperfine --shell=bash --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/hf.json" \
  -n 'berth none' "$REPO/bin/berth --root $ROOT run --rm --network none busybox true" \
  -n 'podman none' "$PODMAN_RUN --network none localhost/busybox:bench true" \
  -n 'berth slirp4netns' "$REPO/bin/berth --root $ROOT run --rm --network slirp4netns busybox true" \
  -n 'podman slirp4netns' "$PODMAN_RUN --network slirp4netns localhost/busybox:bench true" \
  -n 'crun run' "$CRUN"

node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const m = Object.fromEntries(r.map((x) => [x.command, x.mean * 1000]));
  console.log("\nmeans: " + r.map((x) => `${x.command} ${(x.mean * 1000).toFixed(1)} ms`).join(", "));
  for (const net of ["none", "slirp4netns"]) {
    console.log(`podman / berth (${net}): ${(m[`podman ${net}`] / m[`berth ${net}`]).toFixed(2)}x (target: at least 3x)`);
  }
  console.log(`berth / crun (none):   ${(m["berth none"] / m["crun run"]).toFixed(2)}x`);
' "$TMP/hf.json"
