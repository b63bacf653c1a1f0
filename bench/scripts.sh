#!/usr/bin/env bash
# Custom API throughput: GET /api/hello (api/hello.js on goja) against the same endpoint in Go
# (/api/hellogo), both behind Gatehouse's middleware with the application key, one wrk run each.
# Usage: bench/scripts.sh [duration=10s] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}; conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/scripts" ./bench/scripts
addr=127.0.0.1:18310
"$tmp/scripts" --listen $addr --dir "$tmp" &
for _ in $(seq 1 200); do curl -fs -o /dev/null "http://$addr/status" && break; sleep 0.05; done
h="X-ZUMO-APPLICATION: bench-application-key-0123"
echo "js: $(curl -fs -H "$h" http://$addr/api/hello)   go: $(curl -fs -H "$h" http://$addr/api/hellogo)"
wrk -t2 -c"$conns" -d2s -H "$h" "http://$addr/api/hello" >/dev/null     # warm-up
wrk -t2 -c"$conns" -d2s -H "$h" "http://$addr/api/hellogo" >/dev/null
js=$(wrk -t2 -c"$conns" -d"$dur" --latency -H "$h" "http://$addr/api/hello")
go=$(wrk -t2 -c"$conns" -d"$dur" --latency -H "$h" "http://$addr/api/hellogo")
echo "$js"; echo "$go"
jr=$(echo "$js" | awk '/Requests\/sec/ {print $2}'); gr=$(echo "$go" | awk '/Requests\/sec/ {print $2}')
echo "custom API in JavaScript: $jr req/s; in Go: $gr req/s; ratio $(awk -v a="$jr" -v b="$gr" 'BEGIN {printf "%.0f%%", 100*a/b}')"
