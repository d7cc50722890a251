#!/usr/bin/env bash
# A systemd-sysext image for Flatcar: /usr/bin/mountprop and its unit, merged into /usr at boot.
#   packaging/flatcar/build-sysext.sh BINARY OUT.raw
# BINARY should be the static build (target/x86_64-unknown-linux-musl/release/mountprop).
# Put OUT.raw in /etc/extensions/ on the node (e.g. with Ignition); a sysext cannot carry
# .wants links, so multi-user.target upholds mountprop.service through a drop-in instead.
set -euo pipefail
bin=$1 out=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -D -m 0755 "$bin" "$work/usr/bin/mountprop"
install -D -m 0644 "$repo/systemd/mountprop.service" "$work/usr/lib/systemd/system/mountprop.service"
install -d "$work/usr/lib/systemd/system/multi-user.target.d"
printf '[Unit]\nUpholds=mountprop.service\n' > "$work/usr/lib/systemd/system/multi-user.target.d/10-mountprop.conf"
install -d "$work/usr/lib/extension-release.d"
printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\n' > "$work/usr/lib/extension-release.d/extension-release.mountprop"
mksquashfs "$work" "$out" -all-root -noappend -quiet
echo "$out"
