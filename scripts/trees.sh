#!/usr/bin/env bash
# Builds the minimal Debian trees the systemd version matrix boots (tests/matrix.rs):
#   scripts/trees.sh [TREE...]     default: bullseye bookworm trixie sid trixie-cri
# into target/trees/<tree>, each with systemd, systemd-sysv, dbus, util-linux, procps, mount
# (no longer essential in unstable) and libseccomp2 (only recommended by systemd >= 258, which
# ignores every SystemCallFilter= without it; real installs have it). The tree trixie-cri
# also holds containerd 2 and runc from unstable (trixie's own containerd is 1.7; they need only
# trixie's libc6 and libseccomp2), and the python3-grpcio and python3-protobuf the CRI client
# needs: the CRI referee table (tests/cri.rs) runs containerd 2 in it, under trixie's systemd. A tree that is there is kept (a warm run costs
# nothing); one is built into a temp dir and renamed when complete, so an interrupted build
# never leaves a tree that looks done. The suites build in parallel (network bound), each
# logging to target/trees/<suite>.log.
# The mirror is the host's own (its apt sources), never a name written here.
set -euo pipefail
cd "$(dirname "$0")/.."
suites=("$@")
((${#suites[@]})) || suites=(bullseye bookworm trixie sid trixie-cri)
out=target/trees
mkdir -p "$out"
# One build at a time: a test that needs a tree waits here for the one scripts/test.sh started.
exec 9>"$out/.lock"
flock 9

# The host's Debian mirror: the first URI of a deb822 source whose Suites are not *-security,
# else the first plain `deb` line of sources.list.
mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    uri=$(awk 'BEGIN{RS=""} !/Suites:[^\n]*-security/ && /Types:[^\n]*deb/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/,"",s); print s; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo "trees.sh: no Debian mirror in the host's apt sources" >&2
  return 1
}

build() {
  local suite=${1%-cri} uri=$2 tree=$out/$1 tmp=$out/.$1.tmp opts=() include=systemd,systemd-sysv,dbus,util-linux,mount,procps,libseccomp2
  local mirrors=("$uri")
  if [ "$suite" != "$1" ]; then
    # Everything from the suite (pinned as the default release) but containerd and runc.
    include+=,python3-grpcio,python3-protobuf,containerd/unstable,runc/unstable
    mirrors=("deb $uri $suite main" "deb $uri unstable main")
    opts+=(--aptopt="APT::Default-Release \"$suite\"" --aptopt='Acquire::Check-Valid-Until "false"')
  fi
  # unstable's InRelease may be past its Valid-Until; allowed for unstable alone.
  [ "$suite" = sid ] && opts+=(--aptopt='Acquire::Check-Valid-Until "false"')
  rm -rf "$tmp"
  mmdebstrap --quiet --variant=essential --mode=root "${opts[@]}" \
    --include="$include" \
    "$suite" "$tmp" "${mirrors[@]}" >"$out/$1.log" 2>&1 || {
      echo "trees.sh: building $1 failed; see $out/$1.log" >&2; tail -n 20 "$out/$1.log" >&2; rm -rf "$tmp"; return 1; }
  # The tree is complete: make it visible in one step.
  mv -T "$tmp" "$tree"
}

todo=()
for s in "${suites[@]}"; do [ -x "$out/$s/lib/systemd/systemd" ] || [ -x "$out/$s/usr/lib/systemd/systemd" ] || todo+=("$s"); done
((${#todo[@]})) || exit 0
command -v mmdebstrap >/dev/null || { echo "trees.sh: mmdebstrap missing (scripts/deps.sh installs it)" >&2; exit 1; }
uri=$(mirror)
start=$SECONDS
pids=()
for s in "${todo[@]}"; do build "$s" "$uri" & pids+=($!); done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo "trees.sh: built ${todo[*]} in $((SECONDS - start)) s" >&2
exit $rc
