#!/usr/bin/env bash
# Fuzzes the parsers that read text mountprop does not control, with cargo fuzz (libFuzzer,
# AddressSanitizer): /proc/*/mountinfo, the config file, unit files and drop-ins (--root), and
# what container runtimes leave on disk (OCI config.json, Docker config.v2.json, pid files).
#   scripts/fuzz.sh [SECONDS]    each target for SECONDS (default 60); the tests run 20
# Seeds are in fuzz/seeds/<target>; the growing corpus in target/fuzz-corpus/<target>; a crash
# is saved under fuzz/artifacts/<target>/ and the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked --quiet cargo-fuzz@0.13.2
# cargo fuzz passes -Z flags (the sanitizer); the one toolchain here is stable.
export RUSTC_BOOTSTRAP=1
for t in mountinfo config unitfile ocispec; do
  corpus=target/fuzz-corpus/$t
  mkdir -p "$corpus"
  cp -n fuzz/seeds/$t/* "$corpus"/
  log=target/fuzz-$t.log
  if ! cargo fuzz run --fuzz-dir fuzz "$t" "$corpus" -- -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    grep -E "panicked|==[0-9]+==|SUMMARY|artifact" "$log" | head -20
    echo "fuzz $t: FAILED (log: $log; the input is under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz $t: ${secs} s, ${execs:-?} executions, corpus $(ls "$corpus" | wc -l) inputs, no crash"
done
