#!/usr/bin/env bash
# Installs what berth needs on Debian 12 (as root), builds the C core and the TypeScript,
# and prepares the busybox bundle used by the quick start and the tests. Idempotent.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

PACKAGES=(
  build-essential          # the C core is compiled here, statically, with the system compiler
  busybox-static           # the embedded default root filesystem
  golang-github-opencontainers-specs-dev  # the OCI runtime-spec JSON schema (build time)
  runc crun podman         # conformance and benchmarks: other runtimes on the same bundle
  hyperfine                # bench/
  umoci skopeo docker-registry  # image tests: build images, push them to a loopback registry
  iproute2 procps uidmap python3
  tmux                     # test/integration/interactive: berth run -it driven at a real terminal
  slirp4netns passt        # --network slirp4netns (the default) and --network pasta
  nftables iptables        # bridge networks: NAT and published ports
  iperf3                   # bench/network.sh
  seccomp python3-seccomp libseccomp-dev  # tests only: the seccomp compiler checked against libseccomp's
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build

# --userns=auto takes host ids from the ranges /etc/subuid and /etc/subgid give to the
# user "containers" (podman's convention; the user itself need not exist). Add one range of
# 2^26 ids (1024 containers of 65536) after every existing range, once.
subid_start=$(cat /etc/subuid /etc/subgid 2>/dev/null \
  | awk -F: 'BEGIN { m = 1000000 } NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print m }')
subid_start=$(( (subid_start + 65535) / 65536 * 65536 ))
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q '^containers:' "$f" || echo "containers:${subid_start}:67108864" >> "$f"
done

# The quick start's bundle: a busybox root filesystem with every applet linked, and the
# same as the embedded default image localhost/busybox:latest in /var/lib/berth.
bash scripts/make-busybox-bundle.sh build/busybox-bundle >/dev/null
bash scripts/make-busybox-image.sh >/dev/null
echo "setup: done. Try: bin/berth-runtime --root /tmp/berth-demo run --bundle build/busybox-bundle demo"
