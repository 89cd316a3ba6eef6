#!/usr/bin/env bash
# Sustained ingest, side by side in one run on this machine (release builds):
#   1. embedded: one `watchhouse hub` on SQLite, batches posted over HTTP;
#   2. scale-out: one API node and two workers (`--role api|worker`) on PostgreSQL and NATS
#      JetStream, the same batches over HTTP;
#   (1 and 2 once per traffic mix in MIXES, "1 27" by default: live traffic, then the same
#   events spread over four weeks; see below)
#   3. the store alone on each backend (no HTTP, no detection), PostgreSQL with two writers,
#      with a raw binary COPY of the same events into a plain table of the same shape first
#      (the floor), then the reports' queries timed over what was loaded.
# Bytes stored per event for each. Needs PostgreSQL (WATCHHOUSE_TEST_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres, trust) and NATS with JetStream on 127.0.0.1:4222.
#   bench/scale-out.sh [HTTP_EVENTS] [STORE_EVENTS]      (STORE_EVENTS=0 skips part 3)
#   MIXES=1 KEEP_DB=1 bench/scale-out.sh 1000000 0       (live traffic only; keep the databases)
set -euo pipefail
cd "$(dirname "$0")/.."
HTTP_EVENTS=${1:-2000000}
STORE_EVENTS=${2:-10000000}
PG_ADMIN=${WATCHHOUSE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
PG_BASE=${PG_ADMIN%/*}
MEMBERS=8
cargo build --release --locked -q --bin watchhouse --example ingest_load
cargo build --release --locked -q -p watchhouse-store --example ingest_throughput
W=${CARGO_TARGET_DIR:-target}/release/watchhouse
LOAD=${CARGO_TARGET_DIR:-target}/release/examples/ingest_load
STORE=${CARGO_TARGET_DIR:-target}/release/examples/ingest_throughput
D=$(mktemp -d)
RUN=$(date +%s)
DB1=wh_bench_http_$RUN
DB2=wh_bench_store_$RUN
PIDS=()
DBS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_DB:-}" ]; then
    echo "databases kept for inspection (KEEP_DB): ${DBS[*]} $DB2"
  else
    for db in "${DBS[@]}" "$DB2"; do psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$D"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.2; done; echo "$1 did not start" >&2; exit 1; }
setup() { # $@: how admin reaches the database
  $W admin "$@" force add --name F --region R >/dev/null
  : >"$D/tokens"
  for m in $(seq 1 $MEMBERS); do
    $W admin "$@" member add --force 1 --name "Member $m" --network 198.51.100.0/28 >/dev/null
    $W admin "$@" token create --member "$m" 2>/dev/null >>"$D/tokens"
  done
}
echo "== machine: $(nproc) cores; $(psql "$PG_ADMIN" -Atc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL; $(date -u +%FT%TZ)"

# Parts 1 and 2 run once per traffic mix in $MIXES (the load generator's --days): 1 is live
# traffic (every batch from the last hour, as a running service receives it); 27 spreads the
# batches over four weeks, so that every batch is a member-day of its own (the per-source
# rollup's worst case: each batch adds thousands of new rows instead of counting on old ones).
MIXES=${MIXES:-"1 27"}
mix_name() { [ "$1" = 1 ] && echo "live traffic" || echo "batches spread over $1 days"; }

embedded() { # $1: days
  echo "== 1. embedded: one hub, SQLite, $HTTP_EVENTS events over HTTP, $(mix_name "$1")"
  local dir="$D/embedded-$1"
  setup --data-dir "$dir"
  P=$(port)
  WATCHHOUSE_LOG=warn $W hub --data-dir "$dir" --listen "127.0.0.1:$P" 2>"$dir.log" & PIDS+=($!)
  wait_up "http://127.0.0.1:$P"
  $LOAD --hub "http://127.0.0.1:$P" --tokens "$D/tokens" --metrics "http://127.0.0.1:$P" --events "$HTTP_EVENTS" --days "$1"
  kill -INT "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  BYTES=$(du -cb "$dir"/watchhouse.db* | tail -1 | cut -f1)
  echo "bytes stored per event (database + WAL): $((BYTES / HTTP_EVENTS))"
}

scale_out() { # $1: days
  echo "== 2. scale-out: API node + 2 workers, PostgreSQL + NATS JetStream, $HTTP_EVENTS events over HTTP, $(mix_name "$1")"
  local db="${DB1}_$1"
  psql "$PG_ADMIN" -qc "CREATE DATABASE $db"
  DBS+=("$db")
  URL="$PG_BASE/$db"
  setup --database "$URL"
  export WATCHHOUSE__HUB__QUEUE_STREAM="WH_BENCH_${RUN}_$1"
  A=$(port); W1=$(port); W2=$(port)
  local procs=()
  for spec in "api:$A" "worker:$W1" "worker:$W2"; do
    role=${spec%%:*}; p=${spec##*:}
    WATCHHOUSE_LOG=warn $W hub --role "$role" --database "$URL" --queue nats://127.0.0.1:4222 \
      --listen "127.0.0.1:$p" --data-dir "$D/$role-$p" 2>"$D/$role-$p.log" & PIDS+=($!); procs+=($!)
  done
  for p in $A $W1 $W2; do wait_up "http://127.0.0.1:$p"; done
  $LOAD --hub "http://127.0.0.1:$A" --tokens "$D/tokens" --metrics "http://127.0.0.1:$W1" --metrics "http://127.0.0.1:$W2" --events "$HTTP_EVENTS" --days "$1"
  BYTES=$(psql "$URL" -Atc "SELECT (SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)),0) FROM pg_inherits WHERE inhparent='event_blocks'::regclass) + pg_total_relation_size('rollup_daily') + pg_total_relation_size('rollup_src_blocks') + pg_total_relation_size('rollup_port') + pg_total_relation_size('ingest_batches')")
  echo "bytes stored per event (event blocks, indexes, rollups, batch ids): $((BYTES / HTTP_EVENTS))"
  for p in "${procs[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${procs[@]}"; do wait "$p" 2>/dev/null || true; done
}

for days in $MIXES; do embedded "$days"; done
for days in $MIXES; do scale_out "$days"; done

[ "$STORE_EVENTS" -gt 0 ] || exit 0
echo "== 3. the store alone, $STORE_EVENTS events, then the reports' queries"
$STORE --events "$STORE_EVENTS" --members 100
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB2"
$STORE --database "$PG_BASE/$DB2" --events "$STORE_EVENTS" --members 100 --writers 2 --copy-baseline
