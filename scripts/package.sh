#!/usr/bin/env bash
# Builds mountprop's packages into target/packages/:
#   scripts/package.sh deb       Debian/Ubuntu (.deb, cargo-deb)
#   scripts/package.sh rpm       Fedora, RHEL/CentOS/Rocky 8+ (.rpm, zstd payload)
#   scripts/package.sh rpm-el7   CentOS/RHEL 7, whose rpm cannot read zstd (.rpm, gzip payload).
#                                CentOS 7 also has glibc 2.17: this variant uses the static
#                                x86_64-unknown-linux-musl build when that target is installed
#                                (rustup target add x86_64-unknown-linux-musl), and warns if not.
#   scripts/package.sh all       all three (the default)
# File times come from SOURCE_DATE_EPOCH (default: the last commit), so the same binary gives
# byte-identical packages.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# The packaging tools, at the versions this repository was tested with.
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb@3.8.0
command -v cargo-generate-rpm >/dev/null || cargo install --locked --quiet cargo-generate-rpm@0.21.1

cargo build --release --locked --quiet
out=target/packages
mkdir -p "$out"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
case $what in
  deb|all) cargo deb --no-build --locked --quiet -o "$out/mountprop_${version}-1_amd64.deb" ;;&
  rpm|all) cargo generate-rpm --payload-compress zstd -o "$out/mountprop-${version}-1.x86_64.rpm" ;;&
  rpm-el7|all)
    musl=x86_64-unknown-linux-musl
    if rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
      cargo build --release --locked --quiet --target "$musl"
      cargo generate-rpm --target "$musl" --payload-compress gzip -s 'release = "1.el7"' -o "$out/mountprop-${version}-1.el7.x86_64.rpm"
    else
      cargo generate-rpm --payload-compress gzip -s 'release = "1.el7"' -o "$out/mountprop-${version}-1.el7.x86_64.rpm"
      glibc=$(rpm -qp --requires "$out/mountprop-${version}-1.el7.x86_64.rpm" 2>/dev/null | sed -n 's/.*GLIBC_\([0-9.]*\).*/\1/p' | sort -V | tail -n1)
      echo "WARNING: rpm-el7 holds a glibc build that needs glibc >= ${glibc:-?}; CentOS 7 has 2.17." >&2
      echo "         Its payload is gzip (CentOS 7's rpm reads it), but for a binary that runs there," >&2
      echo "         install the $musl target and build again." >&2
    fi ;;&
  deb|rpm|rpm-el7|all) ;;
  *) echo "usage: $0 [deb|rpm|rpm-el7|all]" >&2; exit 2 ;;
esac
ls -l "$out"
