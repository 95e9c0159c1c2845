#!/usr/bin/env bash
# Smoke-runs every cargo-fuzz target of the CoAP/LwM2M parsers (crates/lwm2m/fuzz) and of the DTLS record
# parser (crates/dtls-record/fuzz) for a short budget.
# Installs cargo-fuzz if missing. The stable toolchain builds the targets with RUSTC_BOOTSTRAP=1.
# FUZZ_SECONDS (default 10) sets the budget per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
secs="${FUZZ_SECONDS:-10}"
for dir in crates/lwm2m/fuzz crates/dtls-record/fuzz; do
  for target in $(cargo fuzz list --fuzz-dir "$dir"); do
    echo "fuzz: $target for ${secs}s"
    log="target/fuzz-$target.log"
    mkdir -p target
    if ! cargo fuzz run --fuzz-dir "$dir" "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz: $target FAILED (full log: $log; crash input under $dir/artifacts/$target/)"
      exit 1
    fi
    grep -E "^Done|DONE" "$log" | tail -n 1 || tail -n 2 "$log"
  done
done
echo "fuzz: all targets ran ${secs}s without a crash"
