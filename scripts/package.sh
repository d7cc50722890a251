#!/usr/bin/env bash
# Builds mountprop's packages:
#   scripts/package.sh deb       Debian/Ubuntu (.deb, cargo-deb)
#   scripts/package.sh rpm       Fedora, RHEL/CentOS/Rocky 8+ (.rpm, zstd payload, rpmbuild)
#   scripts/package.sh rpm-el7   CentOS/RHEL 7, whose rpm cannot read zstd (.rpm, gzip payload).
#                                CentOS 7 also has glibc 2.17: this variant uses the static
#                                x86_64-unknown-linux-musl build when that target is installed
#                                (rustup target add x86_64-unknown-linux-musl), and warns if not.
#   scripts/package.sh all       all three (the default)
# into target/packages/, or into the directory given as a second argument. File times come from
# SOURCE_DATE_EPOCH (default: the last commit), so the same binary gives byte-identical packages.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${2:-target/packages}
case $what in
  deb|rpm|rpm-el7|all) ;;
  *) echo "usage: $0 [deb|rpm|rpm-el7|all] [DIR]" >&2; exit 2 ;;
esac
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# cargo-deb at the version this repository was tested with; rpmbuild is Debian's `rpm` package.
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb@3.8.0
command -v rpmbuild >/dev/null || { echo "package.sh: rpmbuild missing: apt-get install rpm" >&2; exit 1; }

field() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" Cargo.toml | head -n1; }
version=$(field version)

# build_rpm BIN RELEASE PAYLOAD FILE: the spec's files around BIN, built in a scratch tree.
build_rpm() {
  local top=$PWD/target/rpmbuild
  rm -rf "$top"
  rpmbuild -bb --quiet --target x86_64-linux \
    --define "_topdir $top" --define "_rpmdir $top/out" --define "_build_name_fmt out.rpm" \
    --define "_buildhost mountprop" \
    --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_binary_payload $3" \
    --define "mp_version $version" --define "mp_release $2" \
    --define "mp_summary $(field description)" --define "mp_license $(field license)" \
    --define "mp_url $(field repository)" --define "mp_bin $PWD/$1" --define "mp_src $PWD" \
    packaging/rpm/mountprop.spec >/dev/null
  mv "$top/out/out.rpm" "$4"
  rm -rf "$top"
}

cargo build --release --locked --quiet
mkdir -p "$out"
musl=x86_64-unknown-linux-musl
has_musl() { rustup target list --installed 2>/dev/null | grep -qx "$musl"; }
case $what in
  # The .deb holds the static build where it can (Debian 11 and Ubuntu 20.04 have glibc 2.31;
  # the version matrix installs it there): no libc in its Depends then.
  deb|all)
    if has_musl; then
      cargo build --release --locked --quiet --target "$musl"
      cargo deb --target "$musl" --no-build --locked --quiet -o "$out/mountprop_${version}-1_amd64.deb"
    else
      echo "WARNING: the .deb holds a glibc build (no $musl target here); it will not run on glibc < 2.34" >&2
      cargo deb --no-build --locked --quiet -o "$out/mountprop_${version}-1_amd64.deb"
    fi ;;&
  rpm|all) build_rpm target/release/mountprop 1 w19.zstdio "$out/mountprop-${version}-1.x86_64.rpm" ;;&
  rpm-el7|all)
    el7=$out/mountprop-${version}-1.el7.x86_64.rpm
    if has_musl; then
      cargo build --release --locked --quiet --target "$musl"
      build_rpm "target/$musl/release/mountprop" 1.el7 w9.gzdio "$el7"
    else
      build_rpm target/release/mountprop 1.el7 w9.gzdio "$el7"
      glibc=$(rpm -qp --requires "$el7" 2>/dev/null | sed -n 's/.*GLIBC_\([0-9.]*\).*/\1/p' | sort -V | tail -n1)
      echo "WARNING: rpm-el7 holds a glibc build that needs glibc >= ${glibc:-?}; CentOS 7 has 2.17." >&2
      echo "         Its payload is gzip (CentOS 7's rpm reads it), but for a binary that runs there," >&2
      echo "         install the $musl target and build again." >&2
    fi ;;&
  *) ;;
esac
ls -l "$out"
