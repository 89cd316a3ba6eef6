#!/usr/bin/env bash
# Parse + normalise throughput on one core, side by side with liblognorm's `lognormalizer`
# extracting the same fields (bench/lognorm/*.rb), on the same generated lines.
#
#   bench/parse-vs-lognormalizer.sh            # 1M lines per format, median of 3 runs
#   N=200000 RUNS=5 bench/parse-vs-lognormalizer.sh
#
# Two modes per tool: "parse only" (watchhouse parse --summary; lognormalizer -e raw -p, which
# prints only the parsed lines back, raw) and "JSON out" (OCSF JSON; lognormalizer's JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
RUNS=${RUNS:-3}
CPU=${CPU:-1}
if ! command -v lognormalizer >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblognorm-utils >/dev/null
fi
cargo build --release --locked -q
wh=${CARGO_TARGET_DIR:-target}/release/watchhouse
out=bench/out
mkdir -p "$out"
. bench/lognorm-lines.sh

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { # prints seconds for one run of "$@" with stdin from $IN
  local s e
  s=$(date +%s.%N)
  taskset -c "$CPU" "$@" < "$IN" > /dev/null 2> "$out/stderr"
  e=$(date +%s.%N)
  python3 -c "print($e - $s)"
}

echo "lognormalizer: $(lognormalizer -V 2>&1 | head -1)"
echo "watchhouse:    $($wh --version)"
echo "lines per format: $N, runs: $RUNS, pinned to CPU $CPU"
echo
printf '| format | mode | watchhouse lines/s | lognormalizer lines/s | ratio |\n|---|---|---:|---:|---:|\n'
for kind in iptables pfsense fortigate asa; do
  IN="$out/$kind.log"
  lognorm_lines "$kind" "$N" "$IN"
  for mode in "parse only" "JSON out"; do
    if [ "$mode" = "parse only" ]; then
      ours=(  "$wh" parse --summary )
      theirs=( lognormalizer -r "bench/lognorm/$kind.rb" -e raw -p )
    else
      ours=(  "$wh" parse )
      theirs=( lognormalizer -r "bench/lognorm/$kind.rb" -e json )
    fi
    a=$(for _ in $(seq "$RUNS"); do timed "${ours[@]}"; done | median)
    b=$(for _ in $(seq "$RUNS"); do timed "${theirs[@]}"; done | median)
    python3 - "$kind" "$mode" "$N" "$a" "$b" <<'PY'
import sys
kind, mode, n, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print(f"| {kind} | {mode} | {n/a:,.0f} | {n/b:,.0f} | {b/a:.1f}x |")
PY
  done
done
