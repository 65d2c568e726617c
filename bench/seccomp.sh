#!/usr/bin/env bash
# The cost of the default seccomp filter: a syscall-heavy loop (N getppid() calls, timed by
# the program itself, so container start-up does not count) in a berth container and in a
# podman container (runc, libseccomp, podman's default profile), each also with
# seccomp=unconfined for the floor. Prints ns per syscall and the berth/podman ratio.
#
# Usage (as root, from any directory):  bench/seccomp.sh
# Environment: N (calls per run, default 10000000), RUNS (runs per case, default 5; the
# median is reported). Needs: gcc (static libc), podman, a built tree.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
N=${N:-10000000}
RUNS=${RUNS:-5}
die() { echo "seccomp.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in gcc podman; do command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"; done

. "$REPO/bench/podman-env.sh"
bench_prepare seccomp

mkdir -p "$TMP/bin"
cat > "$TMP/loop.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* N raw getppid() syscalls (glibc caches nothing for it, but go around libc anyway);
   prints nanoseconds per call and the Seccomp mode from /proc/self/status. */
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000000;
  struct timespec a, b;
  char line[256];
  FILE *f = fopen("/proc/self/status", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "Seccomp:", 8)) fputs(line, stderr);
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  return 0;
}
EOF
sed -i '1i #include <string.h>' "$TMP/loop.c"
gcc -O2 -static -o "$TMP/bin/loop" "$TMP/loop.c"

echo "preparing: berth image and podman image (in $TMP)"
bash "$REPO/scripts/make-busybox-image.sh" "$ROOT" >/dev/null
"${PODMAN[@]}" import -q "$REPO/build/busybox-rootfs.tar" localhost/busybox:bench >/dev/null

berth_case() { "$REPO/bin/berth" --root "$ROOT" run --rm -v "$TMP/bin:/bench:ro" "$@" busybox /bench/loop "$N"; }
podman_case() {
  "${PODMAN[@]}" run --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    -v "$TMP/bin:/bench:ro" "$@" localhost/busybox:bench /bench/loop "$N"
}
# Median of RUNS runs, in ns per syscall; checks the Seccomp mode the program saw.
measure() {
  local want=$1; shift
  local out=() i mode
  for ((i = 0; i < RUNS; i++)); do
    out+=("$("$@" 2>"$TMP/err")") || die "$* failed: $(cat "$TMP/err")"
    mode=$(awk '{ print $2 }' "$TMP/err")
    [ "$mode" = "$want" ] || die "$*: Seccomp mode $mode, expected $want"
  done
  printf '%s\n' "${out[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "timing $N getppid() calls, median of $RUNS runs per case"
B=$(measure 2 berth_case)
P=$(measure 2 podman_case)
BU=$(measure 0 berth_case --security-opt seccomp=unconfined)
PU=$(measure 0 podman_case --security-opt seccomp=unconfined)
printf '%-34s %8s ns/syscall\n' "berth, default profile" "$B" "podman (runc), default profile" "$P" \
  "berth, seccomp=unconfined" "$BU" "podman, seccomp=unconfined" "$PU"
awk -v b="$B" -v p="$P" -v bu="$BU" -v pu="$PU" 'BEGIN {
  printf "berth / podman (default profiles): %.3fx (target: at most 1.05x)\n", b / p
  printf "filter cost: berth %.1f ns, podman %.1f ns per syscall\n", b - bu, p - pu
}'
