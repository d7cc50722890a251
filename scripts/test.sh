#!/usr/bin/env bash
# Every test: formatting and clippy first, then unit tests, CLI tests, and the integration
# tests that boot a real systemd in fresh namespaces (the host's 252, and 247, 252, 257 and the
# newest from Debian trees; they need root, without root they print SKIP), the arm64 build's
# unit and --root tests under qemu, then 20 s of fuzzing for each parser. The packages are
# built first, so that their tests inspect, install and purge the real .deb and .rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
# Files the tests write are modes a package would install (mountprop refuses a config others
# can write), whatever the runner's umask.
umask 022
# The suite's rule: the host's /tmp is left as it was found (the sandboxes mount their own; a
# tool that leaves a file there is run with a TMPDIR of the test's own). Its listing now is
# compared with the listing at the end, and any difference fails the run. On a machine that
# others use at the same time, MOUNTPROP_TMP_CHECK=warn reports the difference without failing.
mkdir -p target
tmp_before=target/host-tmp-before.txt
ls -A /tmp > "$tmp_before"
scripts/deps.sh
# What CI checks first, as it is cheap: formatting, and clippy with every warning an error.
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# The version matrix's Debian trees (tests/matrix.rs), and the tree the CRI table runs
# containerd 2 in (tests/cri.rs), build in the background while the
# packages compile: network and disk bound against a CPU-bound compile. Quick once they exist.
scripts/trees.sh > target/trees.log 2>&1 &
trees=$!
scripts/package.sh all
# The matrix boots Debian 11 (glibc 2.31): it runs the static build package.sh made.
export MOUNTPROP_STATIC_BIN=$PWD/target/x86_64-unknown-linux-musl/release/mountprop
# A failed tree build is retried, and reported, by the first test that needs the tree.
wait "$trees" || { echo "test.sh: building the matrix trees failed (target/trees.log); the tests retry" >&2; cat target/trees.log >&2; }
export MOUNTPROP_REQUIRE_PACKAGES=1
cargo test --locked
# The arm64 build's unit and --root tests, under qemu.
scripts/test-arm64.sh
# A short fuzzing run of each parser (scripts/fuzz.sh 600 for a long one).
scripts/fuzz.sh 20
if ! changed=$(ls -A /tmp | diff "$tmp_before" -); then
  {
    echo
    echo "*** test.sh: the host's /tmp listing changed during the run (< gone, > new): ***"
    echo "$changed"
    echo "*** the suite must leave the host's /tmp as it found it ***"
  } >&2
  [ "${MOUNTPROP_TMP_CHECK:-fail}" = warn ] || exit 1
fi
echo "test.sh: the host's /tmp listing is as it was before the run"
