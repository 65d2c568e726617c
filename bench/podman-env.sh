# Sourced by the bench scripts that run podman beside berth (run.sh, network.sh,
# seccomp.sh). bench_prepare NAME sets:
#   TMP     a scratch directory, removed at exit with every mount below it
#   ROOT    berth's --root inside it
#   PODMAN  podman with a private store and the flags these hosts need (HOST-NOTES.md)
# and traps EXIT so that podman's containers and images go too, and so do the
# libpod_parent cgroups podman's cgroupfs manager makes, if this run made them. A script
# with more to undo defines bench_extra_cleanup, which runs first.
bench_prepare() {
  TMP=$(mktemp -d "/tmp/berth-bench-$1.XXXXXX")
  ROOT=$TMP/berth-root
  HAD_LIBPOD=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | head -1 || true)
  PODMAN=(podman --root "$TMP/p/storage" --runroot "$TMP/p/run" --tmpdir "$TMP/p/tmp" --events-backend=file
    --cgroup-manager=cgroupfs --runtime runc)
  trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
  if declare -F bench_extra_cleanup >/dev/null; then bench_extra_cleanup || true; fi
  "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
  "${PODMAN[@]}" rmi -af >/dev/null 2>&1 || true
  for m in $(awk -v t="$TMP" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf "$TMP"
  if [ -z "$HAD_LIBPOD" ]; then
    for h in /sys/fs/cgroup/*/libpod_parent; do
      [ -d "$h" ] || continue
      for c in "$h"/*/; do [ -d "$c" ] && rmdir "$c" 2>/dev/null; done
      rmdir "$h" 2>/dev/null || true
    done
  fi
}
