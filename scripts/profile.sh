#!/usr/bin/env bash
# One profiled benchmark invocation on a fresh network (docs/ledger-perf.md, "Method" of the rounds):
#
#   scripts/profile.sh BIN OUTDIR ledger|interworking
#
# `keys generate` + `up` in a temporary data directory, then `BIN bench ...` (ledger: --apps 2000;
# interworking: --apps $APPS, default 2000); after $DELAY seconds (default 14) `perf record` samples the node
# (or, with PROFILE=bench, the load generator) for 8 s at 199 Hz with DWARF call graphs. OUTDIR gets
# perf.data, perf.txt (`perf script`), cpu.txt (the profiled process's CPU ticks and /proc/stat before and
# after the window), metrics.txt (the node's /metrics at the end of the window), the bench's JSON result and
# the node's log. scripts/perf-attr.py reads perf.txt. Run it on a quiet machine; needs perf and curl.
set -euo pipefail
bin=${1:?BIN}
out=${2:?OUTDIR}
kind=${3:?ledger or interworking}
case "$kind" in ledger | interworking) ;; *) echo "unknown benchmark $kind" >&2; exit 2 ;; esac
command -v perf >/dev/null || { echo "perf is needed" >&2; exit 2; }
mkdir -p "$out"
data=$(mktemp -d "${TMPDIR:-/tmp}/profile.XXXXXX")
up=""
cleanup() {
  if [ -n "$up" ]; then kill -INT "$up" 2>/dev/null || true; wait "$up" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
"$bin" keys generate --data-dir "$data" >/dev/null
"$bin" up --data-dir "$data" >"$out/up.log" 2>&1 &
up=$!
for _ in $(seq 1 180); do grep -q "ipechain is up" "$out/up.log" && break; sleep 1; done
grep -q "ipechain is up" "$out/up.log" || { echo "up did not start; see $out/up.log" >&2; exit 1; }
sleep 3
if [ "$kind" = ledger ]; then
  "$bin" bench ledger --data-dir "$data" --apps 2000 --duration 20 --json >"$out/out.json" 2>"$out/bench.err" &
else
  "$bin" bench interworking --data-dir "$data" --apps "${APPS:-2000}" --duration 20 --json >"$out/out.json" \
    2>"$out/bench.err" &
fi
bench=$!
sleep "${DELAY:-14}"
target=$up
[ "${PROFILE:-node}" = bench ] && target=$bench
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(ticks "$target")
s0=$(head -1 /proc/stat)
perf record -F 199 --call-graph dwarf,32768 -p "$target" -o "$out/perf.data" -- sleep 8 >/dev/null 2>&1 || true
t1=$(ticks "$target")
s1=$(head -1 /proc/stat)
{
  echo "profiled process ($(basename "$(readlink "/proc/$target/exe")"), ${PROFILE:-node}): $((t1 - t0)) ticks in 8 s"
  echo "$s0"
  echo "$s1"
} >"$out/cpu.txt"
curl -s http://127.0.0.1:9443/metrics >"$out/metrics.txt" || true
wait "$bench" || true
perf script -i "$out/perf.data" >"$out/perf.txt" 2>/dev/null
head -c 400 "$out/out.json"
echo
