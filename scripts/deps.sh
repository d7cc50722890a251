#!/usr/bin/env bash
# Installs what building and testing mountprop needs on Debian 12, as root. Quick when all of
# it is there already.
set -euo pipefail

# docker.io and busybox-static: the real-Docker scenario and the demo run the real dockerd.
# containerd, runc: the CRI tests run the real containerd (docker.io pulls them in; named so
# that the CRI tests do not depend on docker.io); python3-grpcio, python3-protobuf,
# protobuf-compiler: their CRI client, built from the CRI api.proto at test time; python3-yaml:
# it reads deploy/daemonset.yaml.
# rpm: rpmbuild builds the .rpm, rpm inspects it; debootstrap, squashfs-tools: the image recipes and their tests.
# gcc-aarch64-linux-gnu: the arm64 build's linker; qemu-user-static: its tests; cpio: unpacking .rpms.
# lintian, rpmlint: the packages' lint tests; man-db: rendering the man pages.
# mmdebstrap: the systemd version matrix's Debian trees (scripts/trees.sh).
# prometheus: for its promtool, which checks the alert rules and the daemon's textfile.
pkgs=(build-essential ca-certificates curl systemd dbus util-linux procps docker.io busybox-static iptables
      containerd runc python3-grpcio python3-protobuf python3-yaml protobuf-compiler rpm debootstrap squashfs-tools
      gcc-aarch64-linux-gnu qemu-user-static cpio lintian rpmlint man-db mmdebstrap prometheus)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Installing is all: no daemon (dockerd, containerd) may start on this host because of it.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Only promtool is wanted from prometheus: its server must not start here, nor in a sandbox
# that boots multi-user.target from this host's /etc.
if [ -e /lib/systemd/system/prometheus.service ] && [ "$(systemctl is-enabled prometheus.service 2>/dev/null)" != masked ]; then
  systemctl mask --now prometheus.service >/dev/null 2>&1 || ln -sf /dev/null /etc/systemd/system/prometheus.service
fi

# Rust >= 1.89 (zbus 6); Debian 12's own cargo is too old.
if ! command -v cargo >/dev/null 2>&1; then
  if [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "deps: installing Rust with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt >/dev/null
  fi
  for t in cargo rustc rustup; do ln -sf "$HOME/.cargo/bin/$t" "/usr/local/bin/$t"; done
fi

# Every package carries a static musl binary, for x86_64 and aarch64.
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  if ! rustup target list --installed | grep -qx "$t"; then
    echo "deps: adding the Rust target $t" >&2
    timeout 300 rustup target add "$t" >/dev/null
  fi
done
