#!/usr/bin/env bash
# Every test: unit tests, CLI tests, and the integration tests that boot a real systemd 252 in
# fresh namespaces (they need root; without root they print SKIP). The packages are built first,
# so that their tests inspect, install and purge the real .deb and .rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/package.sh all
export MOUNTPROP_REQUIRE_PACKAGES=1
exec cargo test --locked
