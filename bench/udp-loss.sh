#!/usr/bin/env bash
# UDP syslog at RATE messages/s for SECS seconds on loopback into the real collector (release
# build); reports how many the collector received and the loss.
#
# The collector is enrolled with a real hub, which is then stopped, so the collector does all of
# its work (receive, parse, filter, aggregate, compress, fsync to the spool) without a hub
# competing for this machine's two cores; in production the hub runs elsewhere. The counts come
# from the collector's own "collector stopped" summary.
#   bench/udp-loss.sh [RATE] [SECS]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100000}
SECS=${2:-10}
cargo build --release --locked -q
cargo build --release --locked -q -p watchhouse-collector --example udp_flood
W=${CARGO_TARGET_DIR:-target}/release/watchhouse
D=$(mktemp -d)
trap 'kill $HUB $COL 2>/dev/null || true; rm -rf "$D"' EXIT
$W admin --data-dir "$D/hub" force add --name F --region R >/dev/null
$W admin --data-dir "$D/hub" member add --force 1 --name M --network 198.51.100.0/28 >/dev/null
printf 'correct horse battery\n' | $W admin --data-dir "$D/hub" user add --email a@t.example --name A --role admin --password-stdin >/dev/null
TOKEN=$($W admin --data-dir "$D/hub" token create --member 1 2>/dev/null)
HP=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
UP=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
WATCHHOUSE_LOG=warn $W hub --data-dir "$D/hub" --listen "127.0.0.1:$HP" 2>"$D/hub.log" & HUB=$!
sleep 1
WATCHHOUSE_LOG=info WATCHHOUSE_ENROL_TOKEN=$TOKEN WATCHHOUSE__COLLECTOR__HEARTBEAT_SECS=1 \
  $W collect --hub "http://127.0.0.1:$HP" --data-dir "$D/col" --udp "127.0.0.1:$UP" --tcp 127.0.0.1:0 2>"$D/col.log" & COL=$!
sleep 2
kill -INT $HUB; wait $HUB || true
${CARGO_TARGET_DIR:-target}/release/examples/udp_flood "127.0.0.1:$UP" "$RATE" "$SECS" | tee "$D/sent"
SENT=$(awk '{print $1}' "$D/sent")
sleep 2
kill -INT $COL; wait $COL || true
RECV=$(grep -o 'lines_received=[0-9]*' "$D/col.log" | tail -1 | cut -d= -f2)
SPOOLED=$(ls "$D/col/spool" | grep -c batch || true)
grep -o 'the kernel capped the UDP receive buffer.*' "$D/col.log" | head -1 || true
python3 -c "s=$SENT; r=${RECV:-0}; print(f'| {$RATE}/s for {$SECS} s | sent {s} | received {r} | loss {100*(s-r)/s:.3f}% | batches spooled $SPOOLED |')"
