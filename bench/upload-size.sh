#!/usr/bin/env bash
# Upload size for a day of 1M inbound denies from a scanning botnet, against its raw size,
# with aggregation off (window 0) and at 60 s and 300 s windows.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
N=${N:-1000000}
[ -s bench/out/botnet-day.log ] && [ "$(wc -l < bench/out/botnet-day.log)" -eq "$N" ] || python3 bench/gen-botnet-day.py "$N" > bench/out/botnet-day.log
cargo build --release --locked -q -p watchhouse-collector --example upload_size
for w in 0 60 300; do
  ${CARGO_TARGET_DIR:-target}/release/examples/upload_size bench/out/botnet-day.log "$w" 2>/dev/null | { [ "$w" = 0 ] && cat || tail -1; }
done
