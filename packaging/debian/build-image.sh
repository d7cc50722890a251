#!/usr/bin/env bash
# A minimal Debian 12 image tree with mountprop installed, for a node's first boot:
#   packaging/debian/build-image.sh DIR DEB [MIRROR]
#   packaging/debian/build-image.sh --print-mirror
# debootstrap (skipped if DIR already holds a system), then the .deb installed into the tree
# (its postinst enables mountprop.service; nothing runs, as no systemd runs there), then
# `mountprop apply --root DIR`, which writes the runtimes' drop-ins ahead of any runtime.
# MIRROR is a Debian archive URI; without it, the Debian mirror this machine's apt uses (from
# apt's lists, else its sources files). On a machine whose apt has no Debian mirror (Ubuntu,
# say), give it. --print-mirror prints the mirror that would be used.
set -euo pipefail

# The building machine's Debian mirror: the archive apt labels "Debian" (not Debian-Security)
# in its lists, or, lists not fetched yet, the first deb source that is not a security one,
# deb822 (*.sources) or one-line (*.list).
host_mirror() {
  local uri f
  uri=$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 'Label: Debian' \
        'Component: main' 2>/dev/null | head -n 1 || true)
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -e "$f" ] || continue
      uri=$(awk 'BEGIN { RS = "" } !/Suites:[^\n]*-security/ && /Types:[^\n]*deb/ {
                   if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
      [ -n "$uri" ] && break
    done
  fi
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
      $1 == "deb" && $0 !~ /-security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' || true)
  fi
  [ -n "$uri" ] || return 1
  echo "${uri%/}"
}

if [ "${1:-}" = --print-mirror ]; then
  host_mirror || { echo "build-image.sh: no Debian mirror in this machine's apt sources" >&2; exit 1; }
  exit 0
fi
[ $# -ge 2 ] || { echo "usage: $0 DIR DEB [MIRROR] | --print-mirror" >&2; exit 2; }
dir=$1 deb=$2 mirror=${3:-}
if [ -z "$mirror" ]; then
  mirror=$(host_mirror) || {
    echo "build-image.sh: no Debian mirror in this machine's apt sources; give one: $0 DIR DEB MIRROR" >&2
    exit 2
  }
fi
if [ ! -x "$dir/usr/bin/dpkg" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$dir" "$mirror"
fi
install -m 0644 "$deb" "$dir/var/cache/apt/archives/mountprop.deb"
chroot "$dir" dpkg -i /var/cache/apt/archives/mountprop.deb
rm -f "$dir/var/cache/apt/archives/mountprop.deb"
"$dir/usr/bin/mountprop" apply --root "$dir"
