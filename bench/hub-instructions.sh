#!/usr/bin/env bash
# Instructions an embedded hub spends per stage of ingest, counted by callgrind: repeatable on a
# noisy machine where wall-clock runs of one build vary severalfold. One `watchhouse hub` on
# SQLite runs under valgrind while `ingest_load` posts EVENTS events over HTTP (the mix of
# bench/scale-out.sh: 8 members, campaign-heavy); then prints the stages' inclusive counts.
#   bench/hub-instructions.sh [EVENTS]        (default 200000; about 3 minutes under valgrind)
#   BIN=/path/to/watchhouse bench/hub-instructions.sh   (compare another build)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-200000}
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --locked -q --bin watchhouse --example ingest_load
W=${BIN:-${CARGO_TARGET_DIR:-target}/release/watchhouse}
LOAD=${CARGO_TARGET_DIR:-target}/release/examples/ingest_load
D=$(mktemp -d)
HP=
cleanup() { [ -n "$HP" ] && kill "$HP" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
$W admin --data-dir "$D/e" force add --name F --region R >/dev/null
: >"$D/tokens"
for m in $(seq 1 8); do
  $W admin --data-dir "$D/e" member add --force 1 --name "Member $m" --network 198.51.100.0/28 >/dev/null
  $W admin --data-dir "$D/e" token create --member "$m" 2>/dev/null >>"$D/tokens"
done
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
WATCHHOUSE_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" \
  "$W" hub --data-dir "$D/e" --listen "127.0.0.1:$P" 2>"$D/log" &
HP=$!
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null && break; sleep 0.5; done
$LOAD --hub "http://127.0.0.1:$P" --tokens "$D/tokens" --metrics "http://127.0.0.1:$P" --events "$EVENTS"
kill -INT "$HP"; wait "$HP" 2>/dev/null || true; HP=
echo "instructions per stage for $EVENTS events (inclusive):"
callgrind_annotate --inclusive=yes "$D/cg.out" 2>/dev/null |
  grep -E 'PROGRAM TOTALS|src/sqlite.rs:watchhouse_store::sqlite::(insert_events|bind_event|upsert_alerts)( \[.*)?$|serde_json-[0-9.]+/src/de.rs:serde_json::de::from_slice( \[.*)?$|gz/bufread.rs:<flate2::gz::bufread::GzDecoder<R> as std::io::Read>::read( \[.*)?$|engine.rs:watchhouse_detect::engine::Engine::observe_with_reach( \[.*)?$' |
  sed -E 's/ \[[^]]*\]$//; s|^ *([0-9,]+) \(([^)]*)\) *PROGRAM TOTALS.*|\1  \2  whole hub|; s|^ *([0-9,]+) \(([^)]*)\) .*:([A-Za-z_]+)$|\1  \2  \3|; s/  read$/  gzip/'
