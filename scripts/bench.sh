#!/usr/bin/env bash
# The whole benchmark suite, as root (BENCHMARKS.md holds the latest figures and how to read
# them): path verdicts at 1,000 / 10,000 / 50,000 real mounts against findmnt and the procfs
# crate; then mountprop on a real systemd node (full check vs the shell, exec to READY=1,
# reaction to make-private, idle footprint, churn at 50,000 mounts), once with the glibc build
# and once with the static musl build the packages ship; then finding and judging 500
# containers, and the daemon idle with them; then clean release builds of both. About 35
# minutes, most of it the two rounds of 5 idle minutes and 60 s of churn.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
musl=x86_64-unknown-linux-musl
cargo bench --locked --bench paths
cargo build --release --locked --quiet --target "$musl"
BENCH_BINS="glibc=target/release/mountprop,musl=target/$musl/release/mountprop" cargo bench --locked --bench node
cargo bench --locked --bench containers
cargo bench --locked --bench labels
d=$(mktemp -d /var/tmp/mountprop-build.XXXXXX)
trap 'rm -rf "$d"' EXIT
for t in x86_64-unknown-linux-gnu "$musl"; do
  start=$(date +%s)
  CARGO_TARGET_DIR=$d cargo build --release --locked --quiet --target "$t"
  echo "clean release build for $t: $(( $(date +%s) - start )) s on $(nproc) cores; stripped binary $(stat -c %s "$d/$t/release/mountprop") bytes"
  rm -rf "${d:?}"/*
done
