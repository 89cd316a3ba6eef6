#!/usr/bin/env bash
# The same comparison as parse-vs-lognormalizer.sh ("parse only": watchhouse parse --summary
# against lognormalizer -e raw -p, same rules, same generated lines), counted in instructions
# instead of seconds. valgrind counts the instructions each process executes: the same binary on
# the same input gives the same count whatever else the machine is doing, so this ratio does not
# move with a noisy neighbour the way the lines/s ratio does. It is not a time: a process with
# more cache misses or branch mispredictions per instruction runs slower than its count says, so
# read it beside the wall-clock table, not instead of it.
#
#   bench/parse-instructions-vs-lognormalizer.sh          # 100k lines per format
#   N=20000 bench/parse-instructions-vs-lognormalizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
need=()
command -v lognormalizer >/dev/null || need+=(liblognorm-utils)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q
wh=${CARGO_TARGET_DIR:-target}/release/watchhouse
out=bench/out
mkdir -p "$out"
. bench/lognorm-lines.sh

# Instructions executed by "$@" reading $IN, the whole process (start-up included).
count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" < "$IN" \
    2>&1 >/dev/null | awk '/I *refs:/ { gsub(",", "", $NF); print $NF }'
}

echo "lognormalizer: $(lognormalizer -V 2>&1 | head -1)"
echo "watchhouse:    $($wh --version)"
echo "lines per format: $N"
echo
printf '| format | watchhouse instructions/line | lognormalizer instructions/line | ratio |\n|---|---:|---:|---:|\n'
for kind in iptables pfsense fortigate asa; do
  IN="$out/$kind.instr.log"
  lognorm_lines "$kind" "$N" "$IN"
  a=$(count "$wh" parse --summary)
  b=$(count lognormalizer -r "bench/lognorm/$kind.rb" -e raw -p)
  python3 - "$kind" "$N" "$a" "$b" <<'PY'
import sys
kind, n, a, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"| {kind} | {a/n:,.0f} | {b/n:,.0f} | {b/a:.1f}x |")
PY
  rm -f "$IN"
done
