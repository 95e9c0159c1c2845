#!/usr/bin/env bash
# Alternated A/B of two ipechain builds on the same machine, in one time window (docs/ledger-perf.md):
#
#   scripts/bench-ab.sh ledger       BIN_A BIN_B [PAIRS]   # bench ledger --apps 2000 --duration 20
#   scripts/bench-ab.sh interworking BIN_A BIN_B [PAIRS]   # bench interworking --apps 1000,2000 --duration 20
#
# Each invocation runs on a fresh network (`keys generate` + `up` in a temporary data directory, stopped by its
# PID afterwards), A and B alternate (A B A B ...), and the figure that counts is the share of the crypto bound
# the same invocation measured: machines and time windows differ, shares within one window compare. Prints one
# line per invocation and, at the end, the median share of each build and their ratio B/A. Run it on a quiet
# machine: another build or benchmark on the same cores makes the ratios meaningless. BENCH=BIN drives both builds
# networks with one load generator (`BIN bench ...`; default: each build's own), so only the system under test
# differs; the rates' medians and ratio are printed too (the bound's own noise does not enter them). LOGS=DIR
# keeps each invocation's bench progress and node log there. CONFIG_A=FILE / CONFIG_B=FILE generate that build's
# networks from a network description (`keys generate --config`; `ipechain keys default-config` prints the default),
# to compare settings with one build on both sides.
set -euo pipefail
kind=${1:?ledger or interworking}
a=${2:?BIN_A}
b=${3:?BIN_B}
pairs=${4:-3}
case "$kind" in ledger | interworking) ;; *) echo "unknown benchmark $kind" >&2; exit 2 ;; esac
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON results" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-ab.XXXXXX")
up=""
cleanup() {
  if [ -n "$up" ]; then kill -INT "$up" 2>/dev/null || true; wait "$up" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# one LABEL BIN: one invocation; appends "LABEL share..." to $work/shares and prints a line.
one() {
  local label=$1 bin=$2 data="$work/data" config=()
  rm -rf "$data"
  if [ "$label" = A ] && [ -n "${CONFIG_A:-}" ]; then config=(--config "$CONFIG_A"); fi
  if [ "$label" = B ] && [ -n "${CONFIG_B:-}" ]; then config=(--config "$CONFIG_B"); fi
  "$bin" keys generate --data-dir "$data" "${config[@]}" >/dev/null
  "$bin" up --data-dir "$data" >"$work/up.log" 2>&1 &
  up=$!
  # Up to 3 minutes: a first start on a busy machine (another build on the same cores) can take over 90 s.
  for _ in $(seq 1 180); do grep -q "ipechain is up" "$work/up.log" && break; sleep 1; done
  if ! grep -q "ipechain is up" "$work/up.log"; then
    # The work directory goes with the script: show the log's end here.
    echo "$label: up did not start within 180 s; the end of its log:" >&2
    tail -n 30 "$work/up.log" >&2
    exit 1
  fi
  sleep 3
  if [ "$kind" = ledger ]; then
    "${BENCH:-$bin}" bench ledger --data-dir "$data" --apps 2000 --duration 20 --json >"$work/out.json" 2>"$work/bench.err"
  else
    "${BENCH:-$bin}" bench interworking --data-dir "$data" --apps 1000,2000 --duration 20 --json >"$work/out.json" \
      2>"$work/bench.err"
  fi
  kill -INT "$up"; wait "$up" 2>/dev/null || true; up=""
  if [ -n "${LOGS:-}" ]; then
    n=$((${n:-0} + 1))
    mkdir -p "$LOGS" && cp "$work/bench.err" "$LOGS/$n-$label-bench.err" && cp "$work/up.log" "$LOGS/$n-$label-up.log"
  fi
  python3 - "$kind" "$label" "$work/out.json" "$work/shares" <<'PY'
import json, sys
kind, label, path, shares = sys.argv[1:5]
out = json.load(open(path))
if kind == "ledger":
    cols = [("2000 apps", out["share_of_crypto_bound"], out["median_tps"], out["median_p99_ms"])]
else:
    bound = out["crypto_bound_round_trips_per_s"]
    cols = [(f"{r['apps']} apps", r["round_trips_per_s"] / bound, r["round_trips_per_s"], r["p99_ms"])
            for r in out["rows"]]
print(label, "  ".join(f"{n}: share {s:.3f} ({rate:.0f}/s, p99 {p99:.0f} ms)" for n, s, rate, p99 in cols))
with open(shares, "a") as f:
    f.write(label + " " + " ".join(f"{s:.6f} {rate:.3f}" for _, s, rate, _ in cols) + "\n")
PY
}

for _ in $(seq 1 "$pairs"); do
  one A "$a"
  one B "$b"
done
python3 - "$work/shares" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
cols = (len(rows[0]) - 1) // 2
for c in range(cols):
    med = {k: statistics.median(float(r[1 + 2 * c]) for r in rows if r[0] == k) for k in ("A", "B")}
    rate = {k: statistics.median(float(r[2 + 2 * c]) for r in rows if r[0] == k) for k in ("A", "B")}
    print(f"column {c + 1}: median share A {med['A']:.3f}, B {med['B']:.3f}, ratio B/A {med['B'] / med['A']:.2f}; "
          f"median rate A {rate['A']:.0f}/s, B {rate['B']:.0f}/s, ratio B/A {rate['B'] / rate['A']:.2f}")
PY
