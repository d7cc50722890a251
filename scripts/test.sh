#!/usr/bin/env bash
# Every test: unit tests, CLI tests, and the integration tests that boot a real systemd 252 in
# fresh namespaces (they need root; without root they print SKIP).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
exec cargo test --locked
