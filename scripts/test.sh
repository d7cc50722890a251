#!/usr/bin/env bash
# Every test: unit tests, CLI tests, and the integration tests that boot a real systemd 252 in
# fresh namespaces (they need root; without root they print SKIP), the arm64 build's unit and
# --root tests under qemu, then 20 s of fuzzing for each parser. The packages are built first,
# so that their tests inspect, install and purge the real .deb and .rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
# Files the tests write are modes a package would install (mountprop refuses a config others
# can write), whatever the runner's umask.
umask 022
scripts/deps.sh
scripts/package.sh all
export MOUNTPROP_REQUIRE_PACKAGES=1
cargo test --locked
# The arm64 build's unit and --root tests, under qemu.
scripts/test-arm64.sh
# A short fuzzing run of each parser (scripts/fuzz.sh 600 for a long one).
exec scripts/fuzz.sh 20
