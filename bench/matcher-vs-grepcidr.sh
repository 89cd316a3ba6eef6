#!/usr/bin/env bash
# Matcher side by side with grepcidr (Debian), in one run, on one core: both load the 1.01M-entry
# merged FireHOL list and filter the same iptables lines, printing those with a listed address.
#
#   bench/matcher-vs-grepcidr.sh [LINES] [RUNS] [LISTED_PCT]
#
# Reports wall time per run (including loading the list), the median lines/s and the ratio, and
# checks both tools printed the same lines.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
runs=${2:-5}
pct=${3:-20}
merged=${WATCHHOUSE_MERGED_FEED:-../shared/data/feeds/firehol-threat-lists-merged-2018.txt.gz}
if ! command -v grepcidr >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq grepcidr >/dev/null
fi
cargo build --release --locked --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$merged" > "$work/merged.txt"
python3 bench/gen-intel-lines.py "$work/merged.txt" "$lines" "$pct" > "$work/lines.log"
echo "list: $(wc -l < "$work/merged.txt") entries; input: $lines lines, $pct% with a listed source"
core=${CORE:-1}
time_ms() { local s e; s=$(date +%s%N); "$@"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
declare -a g w
for i in $(seq 1 "$runs"); do
  g+=("$(time_ms sh -c "taskset -c $core grepcidr -f '$work/merged.txt' '$work/lines.log' > '$work/g.out'")")
  w+=("$(time_ms sh -c "taskset -c $core ${CARGO_TARGET_DIR:-target}/release/watchhouse intel check --filter --feed '$work/merged.txt' < '$work/lines.log' > '$work/w.out'; test \$? -le 1")")
done
# Loading the list alone (empty input), to separate start-up from filtering.
: > "$work/empty.log"
declare -a gz wz
for i in $(seq 1 "$runs"); do
  gz+=("$(time_ms sh -c "taskset -c $core grepcidr -f '$work/merged.txt' '$work/empty.log' > /dev/null; true")")
  wz+=("$(time_ms sh -c "taskset -c $core ${CARGO_TARGET_DIR:-target}/release/watchhouse intel check --filter --feed '$work/merged.txt' < '$work/empty.log' > /dev/null; true")")
done
gl=$(wc -l < "$work/g.out"); wl=$(wc -l < "$work/w.out")
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
gm=$(median "${g[@]}"); wm=$(median "${w[@]}"); gzm=$(median "${gz[@]}"); wzm=$(median "${wz[@]}")
echo "grepcidr runs (ms):   ${g[*]}"
echo "watchhouse runs (ms): ${w[*]}"
echo "matched lines: grepcidr $gl, watchhouse $wl"
[ "$gl" = "$wl" ] || { echo "the tools disagree"; diff <(sort "$work/g.out") <(sort "$work/w.out") | head; exit 1; }
awk -v n="$lines" -v g="$gm" -v w="$wm" -v gz="$gzm" -v wz="$wzm" 'BEGIN {
  printf "| tool | median wall time | of which loading the list | lines/s overall | lines/s after loading |\n|---|---|---|---|---|\n";
  printf "| grepcidr 2.0 | %d ms | %d ms | %.0f | %.0f |\n", g, gz, n / (g / 1000), n / ((g - gz) / 1000);
  printf "| watchhouse intel check --filter | %d ms | %d ms | %.0f | %.0f |\n", w, wz, n / (w / 1000), n / ((w - wz) / 1000);
  printf "ratio (grepcidr time / watchhouse time): %.2fx overall, %.2fx after loading\n", g / w, (g - gz) / (w - wz) }'
