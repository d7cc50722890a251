#!/usr/bin/env bash
# A minimal Debian 12 image tree with mountprop installed, for a node's first boot:
#   packaging/debian/build-image.sh DIR DEB [MIRROR]
# debootstrap (skipped if DIR already holds a system), then the .deb installed into the tree
# (its postinst enables mountprop.service; nothing runs, as no systemd runs there), then
# `mountprop apply --root DIR`, which writes the runtimes' drop-ins ahead of any runtime.
set -euo pipefail
dir=$1 deb=$2 mirror=${3:-http://deb.debian.org/debian}
if [ ! -x "$dir/usr/bin/dpkg" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$dir" "$mirror"
fi
install -m 0644 "$deb" "$dir/var/cache/apt/archives/mountprop.deb"
chroot "$dir" dpkg -i /var/cache/apt/archives/mountprop.deb
rm -f "$dir/var/cache/apt/archives/mountprop.deb"
"$dir/usr/bin/mountprop" apply --root "$dir"
