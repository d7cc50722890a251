#!/usr/bin/env bash
# Builds mountprop's packages, each around one static musl binary (no libc needed, so one
# binary runs on every distribution of its architecture):
#   scripts/package.sh deb       Debian/Ubuntu: mountprop_V-1_amd64.deb and _arm64.deb (dpkg-deb)
#   scripts/package.sh rpm       Fedora, RHEL/CentOS/Rocky/Alma 8+, Amazon Linux: mountprop-V-1.x86_64.rpm
#                                and .aarch64.rpm (zstd payload, rpmbuild)
#   scripts/package.sh rpm-el7   CentOS/RHEL 7, whose rpm cannot read zstd: mountprop-V-1.el7.x86_64.rpm
#                                (gzip payload)
#   scripts/package.sh image     the DaemonSet's OCI image archive, for amd64 and arm64 in one:
#                                mountprop_V_oci.tar (the static binary and nothing else; no
#                                registry and no base image; see deploy/daemonset.yaml)
#   scripts/package.sh all       all five and the image (the default)
# into target/packages/, or into the directory given as a second argument. File times come from
# SOURCE_DATE_EPOCH (default: the last commit), so the same binary gives byte-identical packages.
# The binaries: cargo's release builds for x86_64- and aarch64-unknown-linux-musl, without their
# .comment section, staged as target/dist/<arch>/mountprop. Both formats also carry the man pages
# (man/, made by tests/manpages.rs), the shell completions (packaging/completions/, made by tests/manpages.rs) and
# the changelog (made from CHANGELOG.md).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${2:-target/packages}
case $what in
  deb|rpm|rpm-el7|image|all) ;;
  *) echo "usage: $0 [deb|rpm|rpm-el7|image|all] [DIR]" >&2; exit 2 ;;
esac
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
for t in rpmbuild dpkg-deb aarch64-linux-gnu-gcc gzip; do
  command -v $t >/dev/null || { echo "package.sh: $t missing (scripts/deps.sh installs it)" >&2; exit 1; }
done

field() { sed -n "s/^$1 = \"\(.*\)\"/\1/p" Cargo.toml | head -n1; }
version=$(field version)
summary=$(field description)
maintainer="mountprop developers <mountprop@example.invalid>"

# stage ARCH: the release build for ARCH, as shipped (dpkg's strip and rpm's brp-strip also
# drop .comment: the compilers' version strings).
stage() {
  local triple=$1-unknown-linux-musl objcopy=objcopy
  [ "$1" = aarch64 ] && objcopy=aarch64-linux-gnu-objcopy
  cargo build --release --locked --quiet --target "$triple"
  install -d "target/dist/$1"
  $objcopy --remove-section=.comment "target/$triple/release/mountprop" "target/dist/$1/mountprop.tmp"
  mv "target/dist/$1/mountprop.tmp" "target/dist/$1/mountprop"
}

# CHANGELOG.md's entries: "VERSION-RELEASE DATE" lines, each followed by its items, one a line.
changes() {
  awk '
    /^## / { if (item != "") print "- " item; item = ""; v = $2; d = $3; gsub(/[()]/, "", d); print "= " v " " d; next }
    /^- / { if (item != "") print "- " item; item = substr($0, 3); next }
    /^  +[^ ]/ && item != "" { sub(/^ +/, ""); item = item " " $0; next }
    /^$/ { if (item != "") print "- " item; item = "" }
    END { if (item != "") print "- " item }' CHANGELOG.md
}

# wrap WIDTH FIRST REST: each item wrapped, its first line after FIRST, the others after REST.
wrap() {
  fold -s -w "$1" | sed 's/ *$//' | sed "1s/^/$2/; 1!s/^/$3/"
}

# The Debian changelog, newest release first, as dpkg-parsechangelog reads it.
changelog_debian() {
  local first=1 line
  while IFS= read -r line; do
    case $line in
      "= "*)
        set -- $line
        [ $first = 1 ] || printf '\n -- %s  %s\n\n' "$maintainer" "$date"
        first=0
        date=$(date -u -R -d "$3")
        printf 'mountprop (%s) unstable; urgency=medium\n\n' "$2" ;;
      "- "*) printf '%s\n' "${line#- }" | wrap 74 '  * ' '    ' ;;
    esac
  done < <(changes)
  printf '\n -- %s  %s\n' "$maintainer" "$date"
}

# The rpm %changelog for a package of release RELEASE, newest entry first; the newest entry is
# this package's own version, e.g. 0.1.0-1.el7 for the CentOS 7 variant.
changelog_rpm() {
  local line suffix=${1#1}
  while IFS= read -r line; do
    case $line in
      "= "*) set -- $line
             printf '* %s %s - %s\n' "$(date -u -d "$3" '+%a %b %d %Y')" "$maintainer" "$2$suffix"
             suffix= ;;
      "- "*) printf '%s\n' "${line#- }" | wrap 76 '- ' '  ' ;;
    esac
  done < <(changes)
}

# The files both formats ship besides the binary, in target/dist/doc.
stage_docs() {
  local d=target/dist/doc
  rm -rf "$d"
  install -d "$d"
  for page in man/mountprop.8 man/mountprop.toml.5; do
    gzip -9n < "$page" > "$d/$(basename "$page").gz"
  done
  # Generated from the clap definitions by tests/manpages.rs and committed, like the man pages.
  cp packaging/completions/mountprop.bash packaging/completions/_mountprop packaging/completions/mountprop.fish "$d/"
  changelog_debian | gzip -9n > "$d/changelog.Debian.gz"
}

# build_rpm ARCH RELEASE PAYLOAD FILE: the spec's files around ARCH's binary, in a scratch tree.
build_rpm() {
  local top=$PWD/target/rpmbuild
  rm -rf "$top"
  changelog_rpm "$2" > target/dist/doc/changelog.rpm
  rpmbuild -bb --quiet --target "$1-linux" \
    --define "_topdir $top" --define "_rpmdir $top/out" --define "_build_name_fmt out.rpm" \
    --define "_buildhost mountprop" \
    --define "use_source_date_epoch_as_buildtime 1" --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_binary_payload $3" \
    --define "mp_version $version" --define "mp_release $2" \
    --define "mp_summary $summary" --define "mp_license $(field license)" \
    --define "mp_url $(field repository)" --define "mp_bin $PWD/target/dist/$1/mountprop" --define "mp_src $PWD" \
    --define "mp_packager $maintainer" \
    packaging/rpm/mountprop.spec >/dev/null
  mv "$top/out/out.rpm" "$4"
  rm -rf "$top"
}

# The machine-readable (DEP-5) copyright file, its licence text taken from LICENSE.
copyright() {
  printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
  printf 'Upstream-Name: mountprop\nUpstream-Contact: %s\nSource: %s\n\n' "$maintainer" "$(field repository)"
  printf 'Files: *\nCopyright: %s\nLicense: %s\n\n' \
    "$(sed -n 's/^Copyright (c) //p' LICENSE | head -n1)" "$(field license)"
  printf 'License: %s\n' "$(field license)"
  # The text after the copyright line; blank lines become " .".
  sed -n '/^Copyright (c)/,$p' LICENSE | tail -n +2 | sed '/./,$!d' | sed 's/^$/./; s/^/ /'
}

# build_deb ARCH DEBARCH FILE: the tree under DEBIAN/, built with dpkg-deb.
build_deb() {
  local root=target/debroot/$2
  rm -rf "$root"
  install -D -m 0755 "target/dist/$1/mountprop" "$root/usr/bin/mountprop"
  install -D -m 0644 systemd/mountprop.service "$root/usr/lib/systemd/system/mountprop.service"
  install -D -m 0644 packaging/90-mountprop.preset "$root/usr/lib/systemd/system-preset/90-mountprop.preset"
  install -D -m 0644 packaging/config.toml "$root/etc/mountprop/config.toml"
  local doc=$root/usr/share/doc/mountprop
  install -D -m 0644 -t "$doc" README.md packaging/mountprop.service.d/live-probe.conf \
    packaging/npd/mountprop-plugin-monitor.json
  copyright > "$doc/copyright"
  install -m 0644 target/dist/doc/changelog.Debian.gz "$doc/changelog.Debian.gz"
  chmod 0644 "$doc/copyright"
  install -D -m 0644 target/dist/doc/mountprop.8.gz "$root/usr/share/man/man8/mountprop.8.gz"
  install -D -m 0644 target/dist/doc/mountprop.toml.5.gz "$root/usr/share/man/man5/mountprop.toml.5.gz"
  install -D -m 0644 target/dist/doc/mountprop.bash "$root/usr/share/bash-completion/completions/mountprop"
  install -D -m 0644 target/dist/doc/_mountprop "$root/usr/share/zsh/vendor-completions/_mountprop"
  install -D -m 0644 target/dist/doc/mountprop.fish "$root/usr/share/fish/vendor_completions.d/mountprop.fish"
  # The tags given on purpose, each with why (lintian reads them from here).
  local ov=$root/usr/share/lintian/overrides/mountprop
  install -D -m 0644 packaging/deb/lintian-overrides "$ov"
  if [ -f "packaging/deb/lintian-overrides.$2" ]; then cat "packaging/deb/lintian-overrides.$2" >> "$ov"; fi
  install -d "$root/DEBIAN"
  install -m 0755 -t "$root/DEBIAN" packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm
  echo /etc/mountprop/config.toml > "$root/DEBIAN/conffiles"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
  # Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per directory.
  local size
  size=$(cd "$root" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' -o -type d -printf '1024\n' \) |
    awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
  {
    printf 'Package: mountprop\nVersion: %s-1\nArchitecture: %s\nMaintainer: %s\n' "$version" "$2" "$maintainer"
    printf 'Installed-Size: %s\nDepends: systemd\nSection: admin\nPriority: optional\nHomepage: %s\n' \
      "$size" "$(field repository)"
    printf 'Description: %s\n' "$summary"
    sed 's/^/ /' packaging/description.txt
  } > "$root/DEBIAN/control"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$3" >/dev/null
  rm -rf "$root"
}

# The OCI image: one layer each architecture, /usr/bin/mountprop alone, under an image index
# that carries the name (as `ctr images import` and `skopeo copy oci-archive:` read it).
image_name="localhost/mountprop:${version}"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# blob FILE MEDIA_TYPE: FILE moved into the layout's blobs; prints its descriptor's fields.
blob() {
  local d
  d=$(sha "$1")
  mv "$1" "$layout/blobs/sha256/$d"
  printf '"mediaType":"%s","digest":"sha256:%s","size":%s' "$2" "$d" "$(stat -c %s "$layout/blobs/sha256/$d")"
}
image_manifest() { # ARCH OCI_ARCH: prints the manifest's descriptor, with its platform
  local stage_dir="$layout.rootfs-$1" created layer diff config manifest
  rm -rf "$stage_dir"
  install -D -m 0755 "target/dist/$1/mountprop" "$stage_dir/usr/bin/mountprop"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$stage_dir" -cf "$layout/layer.tar" usr
  rm -rf "$stage_dir"
  diff=$(sha "$layout/layer.tar")
  gzip -n -9 "$layout/layer.tar"
  layer=$(blob "$layout/layer.tar.gz" application/vnd.oci.image.layer.v1.tar+gzip)
  created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  printf '{"created":"%s","architecture":"%s","os":"linux","config":{"Entrypoint":["/usr/bin/mountprop"],"Cmd":["daemon"],"Env":["MOUNTPROP_ENTER_HOST=1"],"Labels":{"org.opencontainers.image.title":"mountprop","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$created" "$2" "$version" "$diff" > "$layout/config.json"
  config=$(blob "$layout/config.json" application/vnd.oci.image.config.v1+json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{%s},"layers":[{%s}]}' \
    "$config" "$layer" > "$layout/manifest.json"
  manifest=$(blob "$layout/manifest.json" application/vnd.oci.image.manifest.v1+json)
  printf '{%s,"platform":{"architecture":"%s","os":"linux"}}' "$manifest" "$2"
}
build_image() { # OUT
  layout=$(mktemp -d "target/oci.XXXXXX")
  mkdir -p "$layout/blobs/sha256"
  local amd arm index
  amd=$(image_manifest x86_64 amd64)
  arm=$(image_manifest aarch64 arm64)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s,%s]}' \
    "$amd" "$arm" > "$layout/platforms.json"
  index=$(blob "$layout/platforms.json" application/vnd.oci.image.index.v1+json)
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$index" "$image_name" "$version" > "$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$layout" -cf "$1.tmp" oci-layout index.json blobs
  mv "$1.tmp" "$1"
  rm -rf "$layout"
}

case $what in deb|rpm|image|all) stage x86_64; stage aarch64 ;; rpm-el7) stage x86_64 ;; esac
stage_docs
mkdir -p "$out"
case $what in
  deb|all)
    build_deb x86_64 amd64 "$out/mountprop_${version}-1_amd64.deb"
    build_deb aarch64 arm64 "$out/mountprop_${version}-1_arm64.deb" ;;&
  rpm|all)
    build_rpm x86_64 1 w19.zstdio "$out/mountprop-${version}-1.x86_64.rpm"
    build_rpm aarch64 1 w19.zstdio "$out/mountprop-${version}-1.aarch64.rpm" ;;&
  rpm-el7|all) build_rpm x86_64 1.el7 w9.gzdio "$out/mountprop-${version}-1.el7.x86_64.rpm" ;;&
  image|all) build_image "$out/mountprop_${version}_oci.tar" ;;&
  *) ;;
esac
ls -l "$out"
