#!/usr/bin/env bash
# See mountprop work without a broken node at hand: boots a throwaway systemd node in fresh
# namespaces (nothing reaches the host), breaks it the old-Docker way, and runs
# mountprop check -> apply -> check on it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
exec cargo test --quiet --locked --test demo -- --ignored --nocapture
