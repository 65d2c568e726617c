#!/usr/bin/env bash
# Makes the embedded default image localhost/busybox:latest from the busybox bundle's
# rootfs (Debian's busybox-static), offline. The tarball is reproducible (sorted, fixed
# mtimes and owners), so running this again yields the same image id.
set -euo pipefail
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
root=${1:-/var/lib/berth}
rootfs="$top/build/busybox-bundle/rootfs"
[ -d "$rootfs" ] || bash "$top/scripts/make-busybox-bundle.sh" "$top/build/busybox-bundle" >/dev/null
tarball="$top/build/busybox-rootfs.tar"
# Written aside and renamed: test files run this at the same time, and a reader must never
# see a half-written tarball.
tar -C "$rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$tarball.$$" .
mv -f "$tarball.$$" "$tarball"
SOURCE_DATE_EPOCH=$(stat -c %Y /bin/busybox) "$top/bin/berth" --root "$root" import -c 'CMD ["sh"]' -m 'berth embedded busybox' "$tarball" localhost/busybox:latest
