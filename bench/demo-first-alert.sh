#!/usr/bin/env bash
# Measures the time from starting `watchhouse demo` to the first alert a member can see over
# HTTP, N times (default 5), and prints each run and the median.
#   bench/demo-first-alert.sh [path/to/watchhouse] [runs]
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-target}/release/watchhouse}
runs=${2:-5}
times=()
for i in $(seq 1 "$runs"); do
  work=$(mktemp -d)
  start=$(date +%s.%N)
  "$bin" demo --data-dir "$work/data" --listen 127.0.0.1:0 --credentials-file "$work/creds.json" >/dev/null 2>"$work/err" &
  pid=$!
  while [ ! -s "$work/creds.json" ]; do sleep 0.02; done
  url=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["url"])' "$work/creds.json")
  pw=$(python3 -c 'import json,sys;print([u["password"] for u in json.load(open(sys.argv[1]))["users"] if u["email"]=="head@riverside.example"][0])' "$work/creds.json")
  jar="$work/jar"
  csrf=$(curl -s -c "$jar" "$url/login" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="//;s/"//')
  curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" --data-urlencode "email=head@riverside.example" --data-urlencode "password=$pw" "$url/login"
  while :; do
    n=$(curl -s -b "$jar" "$url/api/v1/alerts" | python3 -c 'import json,sys;print(len(json.load(sys.stdin).get("alerts",[])))' 2>/dev/null || echo 0)
    [ "$n" -gt 0 ] && break
    sleep 0.05
  done
  end=$(date +%s.%N)
  t=$(python3 -c "print(round($end-$start,2))")
  echo "run $i: first alert visible after ${t}s"
  times+=("$t")
  kill -INT "$pid"; wait "$pid" || true
  rm -rf "$work"
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] "s over " NR " runs"}'
