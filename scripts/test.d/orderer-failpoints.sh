#!/usr/bin/env bash
# Orderer fault injection: the tests behind the `failpoints` feature (persist and send boundaries).
set -euo pipefail
cargo nextest run -p orderer --features failpoints --no-fail-fast -E 'test(failpoints::)'
