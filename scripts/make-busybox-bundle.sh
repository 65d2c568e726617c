#!/usr/bin/env bash
# Makes an OCI bundle DIR whose rootfs is Debian's busybox-static with every applet
# linked, and whose config.json (from `berth-runtime spec`) prints who and where it is.
set -euo pipefail
dir=${1:?usage: make-busybox-bundle.sh DIR}
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-bundle: $bb is missing; install busybox-static" >&2; exit 1; }

rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/rootfs"/{bin,dev,etc,proc,sys,tmp,root,mnt,var,run}
cp "$bb" "$dir.tmp/rootfs/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir.tmp/rootfs/bin/$applet"
done
chmod 1777 "$dir.tmp/rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir.tmp/rootfs/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$dir.tmp/rootfs/etc/group"
(cd "$dir.tmp" && "$top/bin/berth-runtime" spec)
node -e '
  const fs = require("fs");
  const f = process.argv[1];
  const c = JSON.parse(fs.readFileSync(f, "utf8"));
  c.process.terminal = false;
  c.process.args = ["sh", "-c", "echo \"hello from $(hostname), PID $$\"; ps"];
  fs.writeFileSync(f, JSON.stringify(c, null, 2) + "\n");
' "$dir.tmp/config.json"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "$dir"
