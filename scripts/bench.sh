#!/usr/bin/env bash
# The whole benchmark suite, as root (BENCHMARKS.md holds the latest figures and how to read
# them): path verdicts at 1,000 / 10,000 / 50,000 real mounts against findmnt and the procfs
# crate; then mountprop on a real systemd node (full check vs the shell, exec to READY=1,
# reaction to make-private, idle footprint, churn at 50,000 mounts); then finding and judging
# 500 containers, and the daemon idle with them; then a clean release build. About 17 minutes,
# most of it the 5 idle minutes and the 60 s of churn.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo bench --locked --bench paths
cargo bench --locked --bench node
cargo bench --locked --bench containers
d=$(mktemp -d /var/tmp/mountprop-build.XXXXXX)
trap 'rm -rf "$d"' EXIT
start=$(date +%s)
CARGO_TARGET_DIR=$d cargo build --release --locked --quiet
echo "clean release build: $(( $(date +%s) - start )) s on $(nproc) cores; stripped binary $(stat -c %s "$d/release/mountprop") bytes"
