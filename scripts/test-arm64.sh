#!/usr/bin/env bash
# The arm64 build's unit tests (cargo test --lib) and its --root tests (tests/image.rs's tree
# tests and tests/crash.rs), run on this x86_64 machine by Debian's qemu-user-static.
# The test binaries exec the aarch64 mountprop, so the kernel must hand aarch64 ELF files to
# qemu: a binfmt_misc entry, registered in a user and mount namespace of this run's own (since
# Linux 6.7 each user namespace can mount its own binfmt_misc), so nothing is registered on the
# host and nothing outlives the run. The one image.rs test left out boots a real systemd with
# the binary inside the sandbox, where this entry does not reach.
set -euo pipefail
cd "$(dirname "$0")/.."
triple=aarch64-unknown-linux-musl
qemu=/usr/bin/qemu-aarch64-static
[ -x "$qemu" ] || { echo "test-arm64: $qemu missing (scripts/deps.sh installs qemu-user-static)" >&2; exit 1; }
tests=(--lib --test image --test crash)
cargo test --locked --quiet --target "$triple" "${tests[@]}" --no-run
# The aarch64 ELF header, masked as Debian's qemu-user-static registers it; F: qemu is opened now.
magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
export MAGIC=$magic MASK=$mask QEMU=$qemu TRIPLE=$triple
exec unshare --user --map-root-user --mount sh -euc '
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  # binfmt_misc decodes the \x escapes itself.
  printf "%s\n" ":mountprop-aarch64:M::$MAGIC:$MASK:$QEMU:F" > /proc/sys/fs/binfmt_misc/register
  exec cargo test --locked --quiet --target "$TRIPLE" "$@" -- --skip root_mode_computes_what_systemd_loads
' sh "${tests[@]}"
