#!/usr/bin/env bash
# Measures Gatehouse's start-up time to the first 200 on /status and its idle RSS.
# Usage: bench/startup.sh [runs]   (builds ./cmd/gatehouse; listens on 127.0.0.1:18181; loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bin=$(mktemp -d)/gatehouse
go build -o "$bin" ./cmd/gatehouse
port=18181
measure() { # $1 = data dir; sets $ms (time to first 200) and $pid
  local t0 t1
  t0=$(date +%s%N)
  "$bin" --listen 127.0.0.1:$port --data "$1" >/dev/null 2>"$1.log" &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/status"; do
    sleep 0.002
    if (( $(date +%s%N) - t0 > 10000000000 )); then echo "did not start" >&2; kill $pid; exit 1; fi
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
}
first=(); warm=()
for i in $(seq 1 "$runs"); do
  d=$(mktemp -d)
  measure "$d"; first+=("$ms"); kill -TERM $pid; wait $pid || true
  measure "$d"; warm+=("$ms")
  if [ "$i" -eq "$runs" ]; then
    sleep 2
    rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    for _ in $(seq 1 200); do curl -fs -o /dev/null "http://127.0.0.1:$port/status"; done
    sleep 1
    rss_after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  fi
  kill -TERM $pid; wait $pid || true
  rm -rf "$d" "$d.log"
done
sorted() { printf '%s\n' "$@" | sort -n | tr '\n' ' '; }
echo "first start (new data dir, key generation, migrations), ms: $(sorted "${first[@]}")"
echo "warm start (existing data dir), ms: $(sorted "${warm[@]}")"
echo "idle RSS after start: ${rss} KiB; after 200 /status requests: ${rss_after} KiB"
