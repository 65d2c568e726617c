#!/usr/bin/env bash
# Memory paid per running container for its monitor: the RSS (ps -o rss, KiB) of
# berth-monitor under one sleeping busybox container started with `berth run -d`, and of
# conmon under one started with `podman run -d` (runc, cgroupfs), and their ratio.
#
# Usage (as root, from any directory):  bench/monitor-memory.sh
# Needs: podman, conmon, runc (./setup.sh installs them), a built berth and
# build/busybox-rootfs.tar. Everything runs under private temporary roots (berth --root;
# podman --root/--runroot/--tmpdir) and is removed on exit, also on Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BERTH=$REPO/bin/berth
ROOTFS_TAR=$REPO/build/busybox-rootfs.tar

die() { echo "monitor-memory: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in podman conmon runc; do command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"; done
[ -f "$ROOTFS_TAR" ] || die "$ROOTFS_TAR missing; run $REPO/setup.sh"
[ -x "$REPO/native/build/berth-monitor" ] || die "berth is not built; run npm run build"

TMP=$(mktemp -d /tmp/berth-bench-monitor.XXXXXX)
# podman (cgroupfs manager) puts conmon in libpod_parent/: remove it if this run made it.
HAD_LIBPOD=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | head -1 || true)
BROOT=$TMP/berth
PODMAN=(podman --root "$TMP/podman/root" --runroot "$TMP/podman/run" --tmpdir "$TMP/podman/tmp"
  --runtime runc --cgroup-manager=cgroupfs)
BID=
PID_CTR=

cleanup() {
  set +e
  [ -n "$BID" ] && "$BERTH" --root "$BROOT" rm -f "$BID" >/dev/null 2>&1
  [ -n "$PID_CTR" ] && "${PODMAN[@]}" rm -f -t 0 "$PID_CTR" >/dev/null 2>&1
  "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
  # podman leaves its storage's overlay mount mounted (and the berth exit command may be
  # finishing): unmount anything under TMP before removing it. Not `podman system reset`:
  # it would also remove the host's shared network configuration.
  sleep 0.5
  grep -o " $TMP[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$TMP"
  if [ -z "$HAD_LIBPOD" ]; then
    for h in /sys/fs/cgroup/*/libpod_parent; do
      [ -d "$h" ] || continue
      for c in "$h"/*/; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
      rmdir "$h" 2>/dev/null
    done
  fi
}
trap cleanup EXIT INT TERM

rss() { ps -o rss= -p "$1" | tr -d ' '; }

# ---- berth ---------------------------------------------------------------------------
bash "$REPO/scripts/make-busybox-image.sh" "$BROOT" >/dev/null
BID=$("$BERTH" --root "$BROOT" run -d busybox sleep 3600)
BMON=$("$BERTH" --root "$BROOT" inspect "$BID" | sed -n 's/^ *"MonitorPid": \([0-9]*\).*/\1/p')
[ -n "$BMON" ] && [ "$(cat /proc/"$BMON"/comm)" = "berth:[monitor]" ] || die "no berth monitor found"

# ---- podman + conmon -----------------------------------------------------------------
"${PODMAN[@]}" import --quiet "$ROOTFS_TAR" localhost/bench-busybox:latest >/dev/null
PID_CTR=$("${PODMAN[@]}" run -d --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
  localhost/bench-busybox:latest sleep 3600)
CPID=$("${PODMAN[@]}" inspect --format '{{.State.ConmonPid}}' "$PID_CTR")
[ -n "$CPID" ] && [ "$(cat /proc/"$CPID"/comm)" = "conmon" ] || die "no conmon found"

sleep 1 # let both settle after start-up
B=$(rss "$BMON")
C=$(rss "$CPID")
printf '%-28s %8s KiB  (pid %s)\n' "berth-monitor RSS" "$B" "$BMON"
printf '%-28s %8s KiB  (pid %s, %s)\n' "conmon RSS" "$C" "$CPID" "$(conmon --version 2>/dev/null | head -1)"
awk -v b="$B" -v c="$C" 'BEGIN { printf "%-28s %8.2f  (berth-monitor / conmon)\n", "ratio", b / c }'
