#!/usr/bin/env bash
# Times pulling AND unpacking one image from a loopback docker-registry with
#   berth:         bin/berth --root R pull --tls-verify=false 127.0.0.1:PORT/bench/IMG:v1
#   skopeo+umoci:  skopeo copy docker://... oci:L:v1 && umoci unpack --image L:v1 B
# side by side in one hyperfine run per image (a small and a large one; fresh R, L and B
# every run), and prints mean times and the ratio berth / (skopeo+umoci). It also reports
# peak memory (max RSS, /usr/bin/time -f %M) of berth pull on both images, to show whether
# it stays flat as the image grows.
#
# Usage (as root, from any directory):  bench/pull.sh                      # ~3 minutes
# Environment: RUNS_SMALL (default 10), RUNS_LARGE (default 4), WARMUP (default 0; each
#              command has already run once per image in the preflight),
#              BENCH_JSON_DIR=DIR to keep hyperfine's JSON exports (small.json, large.json).
# Needs: hyperfine skopeo umoci docker-registry node (./setup.sh installs them), berth
# built; /usr/bin/time (Debian package `time`) for the memory part, skipped without it.
set -euo pipefail

REPO=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
RUNS_SMALL=${RUNS_SMALL:-10}
RUNS_LARGE=${RUNS_LARGE:-4}
WARMUP=${WARMUP:-0}
BERTH=$REPO/bin/berth
GNU_TIME=/usr/bin/time

die() { echo "pull: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (berth pull and umoci unpack restore file owners, modes and xattrs)"
for t in hyperfine skopeo umoci docker-registry node; do
  command -v "$t" >/dev/null || die "'$t' not found; run $REPO/setup.sh"
done
[ -f "$REPO/dist/cli/berth-bin.js" ] || die "berth is not built; run $REPO/setup.sh"
NODE=$(command -v node)
SKOPEO=$(command -v skopeo)
UMOCI=$(command -v umoci)
nodeq() { env -u NODE_EXTRA_CA_CERTS "$NODE" "$@"; }   # helper scripts: no CA start-up cost

# ---- scratch space and cleanup ---------------------------------------------------------------
TMP=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
W=$TMP/work          # per-iteration dirs, wiped by hyperfine's --prepare
REG_PID=
HF_PID=

stop_registry() {
  [ -n "$REG_PID" ] || return 0
  if kill -0 "$REG_PID" 2>/dev/null; then
    kill "$REG_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$REG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$REG_PID" 2>/dev/null
  fi
  wait "$REG_PID" 2>/dev/null
  REG_PID=
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  if [ -n "$HF_PID" ] && kill -0 "$HF_PID" 2>/dev/null; then
    kill "$HF_PID" 2>/dev/null; wait "$HF_PID" 2>/dev/null
  fi
  # A berth, skopeo or umoci started by this run and still alive has $TMP on its command line.
  for pid in $(grep -lsF "$TMP" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != $$ ] && [ "$pid" != "$REG_PID" ] && kill "$pid" 2>/dev/null
  done
  stop_registry
  rm -rf --one-file-system "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the registry: Debian's docker-registry on 127.0.0.1, a free port, storage in $TMP -----
start_registry() {
  local attempt cfg=$TMP/registry.yml
  for attempt in 1 2 3; do
    PORT=$(nodeq -e 'const s = require("net").createServer();
      s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $TMP/registry-storage
http:
  addr: 127.0.0.1:$PORT
EOF
    docker-registry serve "$cfg" >"$TMP/registry.log" 2>&1 &
    REG_PID=$!
    # Up when GET /v2/ answers 200 and our process is still the one alive (a lost port race
    # makes it exit with "address already in use").
    if nodeq -e '(async () => {
        for (let i = 0; i < 200; i++) {
          try { if ((await fetch(process.argv[1])).status === 200) process.exit(0); } catch {}
          await new Promise((r) => setTimeout(r, 50));
        }
        process.exit(1);
      })()' "http://127.0.0.1:$PORT/v2/" && kill -0 "$REG_PID" 2>/dev/null; then
      return 0
    fi
    stop_registry
  done
  die "docker-registry did not start: $(cat "$TMP/registry.log")"
}

# ---- the images: built with umoci (unpack, write files, repack), pushed with skopeo ---------
# Each `repack --refresh-bundle` adds one layer holding what changed since the previous one.
# File contents come from /dev/urandom, so gzip cannot shrink them: the compressed size is
# the size on the wire.
LAYOUT=$TMP/build/layout
BUNDLE=$TMP/build/bundle
new_image() { # tag
  rm -rf "$BUNDLE"
  umoci new --image "$LAYOUT:$1"
  umoci unpack --image "$LAYOUT:$1" "$BUNDLE" >/dev/null
}
layer() { # tag comment: packs what was written under $BUNDLE/rootfs since the last layer
  umoci repack --refresh-bundle --history.created_by "bench: $2" --image "$LAYOUT:$1" "$BUNDLE" >/dev/null
}
small_files() { # dir ndirs files-per-dir bytes-per-file: random files, one process per dir
  local d i
  for i in $(seq -w 1 "$2"); do
    d=$BUNDLE/rootfs/$1/d$i
    mkdir -p "$d"
    head -c $(($3 * $4)) /dev/urandom | split -b "$4" -a 4 -d - "$d/f"
  done
}
random_file() { # path MiB
  mkdir -p "$(dirname "$BUNDLE/rootfs/$1")"
  head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$BUNDLE/rootfs/$1"
}

build_images() {
  mkdir -p "$TMP/build"
  umoci init --layout "$LAYOUT"
  # small: 3 layers, ~5 MB
  new_image small
  small_files usr/share/small 5 100 2048;  layer small "500 files of 2 KiB"
  random_file opt/small/blob1 2;           layer small "2 MiB file"
  random_file opt/small/blob2 2;           layer small "2 MiB file"
  # large: 4 layers, ~200 MB
  new_image large
  small_files usr/share/large 40 100 2048; layer large "4000 files of 2 KiB"
  random_file opt/large/blob1 64;          layer large "64 MiB file"
  random_file opt/large/blob2 64;          layer large "64 MiB file"
  random_file opt/large/blob3 32
  random_file opt/large/blob4 32
  small_files usr/share/large-extra 10 100 2048; layer large "2 x 32 MiB files + 1000 files of 2 KiB"
  rm -rf "$BUNDLE"
}

# Prints "LAYERS BYTES" (compressed layer blobs) of TAG in $LAYOUT.
image_size() {
  nodeq -e '
    const fs = require("fs"), path = require("path"), [layout, tag] = process.argv.slice(1);
    const blob = (d) => JSON.parse(fs.readFileSync(path.join(layout, "blobs", ...d.split(":")), "utf8"));
    const desc = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")).manifests
      .find((m) => m.annotations && m.annotations["org.opencontainers.image.ref.name"] === tag);
    const layers = blob(desc.digest).layers;
    console.log(layers.length, layers.reduce((n, l) => n + l.size, 0));' "$LAYOUT" "$1"
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# ---- the commands -------------------------------------------------------------------------
# With /usr/bin/time, every tool in the timed commands runs under `time -f %M -a -o FILE`,
# which appends its peak RSS (KiB) to FILE: the memory figures come from the very runs that
# are timed, and both sides pay the same ~1 ms for the wrapper.
MEM=0
[ -x "$GNU_TIME" ] && MEM=1
mkdir -p "$TMP/rss"
rss_wrap() { # name: the prefix that records the peak RSS of the command after it in rss/NAME
  [ "$MEM" = 1 ] && printf '%q -f %%M -a -o %q ' "$GNU_TIME" "$TMP/rss/$1"
  return 0
}
ref() { echo "127.0.0.1:$PORT/bench/$1:v1"; }
berth_cmd() { # image
  printf 'exec %s%q --root %q pull --tls-verify=false %q' "$(rss_wrap "berth-$1")" \
    "$BERTH" "$W/root" "$(ref "$1")"
}
skopeo_umoci_cmd() { # image
  printf '%s%q copy --src-tls-verify=false %q %q && exec %s%q unpack --image %q %q' \
    "$(rss_wrap "skopeo-$1")" "$SKOPEO" "docker://$(ref "$1")" "oci:$W/layout:v1" \
    "$(rss_wrap "umoci-$1")" "$UMOCI" "$W/layout:v1" "$W/bundle"
}
# Before every timed run: empty per-iteration dirs, and no dirty pages left by the previous
# run to be written back during this one.
PREPARE="rm -rf --one-file-system $(printf %q "$W") && mkdir -p $(printf %q "$W") && sync"

# Runs both once on IMAGE and checks they unpacked the same files (a broken setup fails here
# with the tool's own message rather than inside hyperfine).
preflight() { # image
  local img=$1 name cmd out nb nu
  for name in berth skopeo_umoci; do
    bash -c "$PREPARE"
    cmd=$("${name}_cmd" "$img")
    if ! out=$(bash -c "$cmd" 2>&1); then
      echo "pull: '$name' on the $img image failed:" >&2
      echo "  command: $cmd" >&2
      printf '%s\n' "$out" | sed 's/^/  | /' >&2
      exit 1
    fi
    if [ "$name" = berth ]; then
      nb=$(find "$W/root/layers" -path '*/diff/*' -type f | wc -l)
    else
      nu=$(find "$W/bundle/rootfs" -type f | wc -l)
    fi
  done
  [ "$nb" -eq "$nu" ] || die "$img image: berth unpacked $nb files, umoci $nu"
  UNPACKED_FILES[$img]=$nb
  UNPACKED_BYTES[$img]=$(du -sb "$W/bundle/rootfs" | cut -f1)
  bash -c "$PREPARE"
}

# ---- setup ---------------------------------------------------------------------------------
declare -A LAYERS BYTES UNPACKED_FILES UNPACKED_BYTES
echo "Building the images (umoci) and pushing them to a loopback docker-registry (skopeo)..."
build_images
start_registry
for img in small large; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$LAYOUT:$img" "docker://$(ref "$img")"
  read -r LAYERS[$img] BYTES[$img] < <(image_size "$img")
done
rm -rf "$TMP/build"
for img in small large; do preflight "$img"; done

echo "registry: docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') on 127.0.0.1:$PORT (pid $REG_PID)"
echo "versions: berth $("$BERTH" --version), $(skopeo --version), $(umoci --version)"
echo "NODE_EXTRA_CA_CERTS: ${NODE_EXTRA_CA_CERTS:-unset} (bin/berth keeps it for pull)"
[ "$MEM" = 1 ] || echo "memory: $GNU_TIME is missing (Debian package 'time'), peak memory will be skipped"
for img in small large; do
  printf '%-6s image: %d layers, %s compressed, %s in %d files unpacked\n' "$img" "${LAYERS[$img]}" \
    "$(mb "${BYTES[$img]}")" "$(mb "${UNPACKED_BYTES[$img]}")" "${UNPACKED_FILES[$img]}"
done
echo

# ---- the benchmark -------------------------------------------------------------------------
for img in small large; do
  if [ "$img" = small ]; then runs=$RUNS_SMALL; else runs=$RUNS_LARGE; fi
  echo "== $img image: hyperfine, $WARMUP warmup + $runs runs per command (fresh dirs each run) =="
  hyperfine --shell=bash --style basic --warmup "$WARMUP" --runs "$runs" --prepare "$PREPARE" \
    --export-json "$TMP/$img.json" \
    -n "berth pull ($img)" "$(berth_cmd "$img")" \
    -n "skopeo copy + umoci unpack ($img)" "$(skopeo_umoci_cmd "$img")" &
  HF_PID=$!
  wait "$HF_PID"
  HF_PID=
  echo
done
bash -c "$PREPARE"
if [ -n "${BENCH_JSON_DIR:-}" ]; then
  mkdir -p "$BENCH_JSON_DIR"
  cp "$TMP/small.json" "$TMP/large.json" "$BENCH_JSON_DIR/"
fi

# ---- summary -------------------------------------------------------------------------------
nodeq -e '
  const fs = require("fs"), dir = process.argv[1];
  const ms = (s) => (s * 1000).toFixed(0).padStart(6) + " ms";
  console.log("Mean times (hyperfine, wall clock):");
  const ratios = [];
  for (const img of ["small", "large"]) {
    const res = {};
    for (const r of JSON.parse(fs.readFileSync(`${dir}/${img}.json`, "utf8")).results) res[r.command] = r;
    for (const [name, r] of Object.entries(res)) {
      console.log(`  ${name.padEnd(36)}${ms(r.mean)} ± ${(r.stddev * 1000).toFixed(0)} ms` +
        `  (median ${(r.median * 1000).toFixed(0)}, min ${(r.min * 1000).toFixed(0)})`);
    }
    const b = res[`berth pull (${img})`], s = res[`skopeo copy + umoci unpack (${img})`];
    const q = b.mean / s.mean, e = q * Math.hypot(b.stddev / b.mean, s.stddev / s.mean);
    ratios.push(`  ${img.padEnd(6)} ${q.toFixed(2)}x ± ${e.toFixed(2)}`);
  }
  console.log();
  console.log("Ratio berth pull / (skopeo copy + umoci unpack), means:");
  for (const r of ratios) console.log(r);
' "$TMP"
echo

# ---- peak memory ---------------------------------------------------------------------------
if [ "$MEM" = 0 ]; then
  echo "Peak memory: skipped, $GNU_TIME is missing (Debian package 'time': apt-get install time)."
  exit 0
fi
# The floor: berth's CLI started the way pull starts it (same launcher, same
# NODE_EXTRA_CA_CERTS), printing pull's help.
for _ in 1 2 3; do
  "$GNU_TIME" -f %M -a -o "$TMP/rss/floor" "$BERTH" --root "$W/root" pull --help >/dev/null
done
# min median max n of the KiB values in rss/NAME (lines that are numbers only).
stats() {
  grep -E '^[0-9]+$' "$TMP/rss/$1" | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.0f %.0f %.0f %d\n", v[1] / 1024, v[int((NR + 1) / 2)] / 1024, v[NR] / 1024, NR }'
}
echo "Peak memory (max RSS from $GNU_TIME -f %M, MiB; every run above, the preflight one included):"
printf '  %-36s%6s%8s%6s%5s\n' "" min median max runs
row() { # label name
  local min med max n
  read -r min med max n < <(stats "$2")
  printf '  %-36s%6s%8s%6s%5s\n' "$1" "$min" "$med" "$max" "$n"
}
row "berth pull --help (start-up floor)" floor
for img in small large; do
  row "berth pull ($img, $(mb "${BYTES[$img]}"))" "berth-$img"
done
for img in small large; do
  row "  skopeo copy ($img)" "skopeo-$img"
  row "  umoci unpack ($img)" "umoci-$img"
done
read -r _ _ s _ < <(stats berth-small)
read -r _ _ l _ < <(stats berth-large)
read -r _ _ f _ < <(stats floor)
echo
awk -v s="$s" -v l="$l" -v f="$f" -v bs="${BYTES[small]}" -v bl="${BYTES[large]}" 'BEGIN {
  printf "berth pull, max RSS large vs small: %+d MiB (%+.0f%%) for an image %.0fx as big (%+.0f MB);\n",
    l - s, (l - s) * 100 / s, bl / bs, (bl - bs) / 1e6
  printf "above the start-up floor: %d MiB (small) -> %d MiB (large).\n", s - f, l - f }'
