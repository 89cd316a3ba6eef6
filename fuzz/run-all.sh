#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 600) on stable Rust (`-s none`: coverage-guided
# libFuzzer without a sanitizer, which needs nightly), seeded from the project's real fixture
# lines, and prints executions and findings per target.
#   fuzz/run-all.sh [SECS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-600}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
cargo fuzz build -s none -O >/dev/null 2>&1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
# Seed corpus: every real and documented line the tests use.
seed=corpus/seed
mkdir -p "$seed"
i=0
while IFS= read -r line; do printf '%s' "$line" > "$seed/$i"; i=$((i+1)); done < <(
  cat ../crates/parse/tests/fixtures/crowdsec-hub/*/*.log
  python3 -c 'import json; [print(c["line"]) for c in json.load(open("../crates/parse/tests/fixtures/vendors.json"))]'
)
printf '| target | seconds | executions | crashes |\n|---|---:|---:|---:|\n'
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/run.log"
  cargo fuzz run -s none -O "$t" "corpus/$t" "$seed" -- -max_total_time="$SECS" -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || true
  execs=$( (grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" || true) | grep -oE '[0-9]+$' | tail -1 || true)
  crashes=$(find "artifacts/$t" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  printf '| %s | %s | %s | %s |\n' "$t" "$SECS" "${execs:-?}" "$crashes"
done
