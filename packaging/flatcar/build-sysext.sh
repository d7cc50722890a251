#!/usr/bin/env bash
# A systemd-sysext image for Flatcar: /usr/bin/mountprop and its unit, merged into /usr at boot.
#   packaging/flatcar/build-sysext.sh BINARY OUT.raw
# BINARY is the static build that the packages ship (scripts/package.sh stages it as
# target/dist/x86_64/mountprop, or target/dist/aarch64/mountprop for arm64 nodes); the image's
# ARCHITECTURE follows the binary's.
# Put OUT.raw in /etc/extensions/ on the node (e.g. with Ignition); a sysext cannot carry
# .wants links, so multi-user.target upholds mountprop.service through a drop-in instead.
set -euo pipefail
bin=$1 out=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
case $(readelf -h "$bin" | sed -n 's/^ *Machine: *//p') in
  *X86-64*) arch=x86-64 ;;
  *AArch64*) arch=arm64 ;;
  *) echo "build-sysext: $bin is not an x86-64 or AArch64 ELF binary" >&2; exit 1 ;;
esac
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-sysext: $bin is dynamically linked; use the static build" >&2; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -D -m 0755 "$bin" "$work/usr/bin/mountprop"
install -D -m 0644 "$repo/systemd/mountprop.service" "$work/usr/lib/systemd/system/mountprop.service"
install -d "$work/usr/lib/systemd/system/multi-user.target.d"
printf '[Unit]\nUpholds=mountprop.service\n' > "$work/usr/lib/systemd/system/multi-user.target.d/10-mountprop.conf"
install -d "$work/usr/lib/extension-release.d"
printf 'ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=%s\n' "$arch" > "$work/usr/lib/extension-release.d/extension-release.mountprop"
mksquashfs "$work" "$out" -all-root -noappend -quiet
echo "$out"
