#!/usr/bin/env bash
# Table read throughput: Gatehouse's authenticated GET /tables/movies?$top=10 (248 rows, X-ZUMO-AUTH)
# against a bare net/http handler returning a 150-byte JSON body, in the same run; then a $filter +
# $orderby query on a 1,000,000-row table with a declared index, with the server's peak RSS.
# Usage: bench/tables.sh [duration=10s] [connections=32] [rows_large=1000000] [index=year+title]
# The index is a declared index spec (docs/tables.md): year+title lets the large query walk the index;
# "year" gives the sort the server did before declared indexes served $orderby.
# With $GATEHOUSE_BENCH_POSTGRES set (e.g. postgres://postgres@127.0.0.1:5432/test) the large table
# lives there, in a schema of its own dropped at the end (needs psql).
# Needs wrk (apt-get install wrk). Loopback only; every run is bounded by wrk's duration.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}; conns=${2:-32}; large=${3:-1000000}; index=${4:-year+title}
pg=${GATEHOUSE_BENCH_POSTGRES:-}; schema=gh_tables_$$; pgdsn=""
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
cleanup() {
	kill $(jobs -p) 2>/dev/null || true
	[ -z "$pg" ] || psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/plain" ./bench/plain
go build -o "$tmp/seed" ./bench/seed
gh=127.0.0.1:18300; plain=127.0.0.1:18301

wait_up() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
rps() { awk '/Requests\/sec/ {print $2}'; }
lat() { awk '/^    Latency/ {print $2}'; }

# --- 248 rows: authenticated read vs plain handler ---
"$tmp/seed" --data "$tmp/small" --rows 248 2>&1 | sed 's/^/seed: /'
tok=$("$tmp/gatehouse" token mint --data "$tmp/small" --user custom:bench)
"$tmp/gatehouse" --listen $gh --data "$tmp/small" >/dev/null 2>&1 &
ghpid=$!
"$tmp/plain" --listen $plain &
wait_up "http://$gh/status"; wait_up "http://$plain/"
body=$(curl -fs -H "X-ZUMO-AUTH: $tok" "http://$gh/tables/movies?\$top=10")
echo "gatehouse response: $(echo -n "$body" | wc -c) bytes, $(echo "$body" | grep -o '"id"' | wc -l) rows"
wrk -t2 -c"$conns" -d2s -H "X-ZUMO-AUTH: $tok" "http://$gh/tables/movies?\$top=10" >/dev/null   # warm-up
wrk -t2 -c"$conns" -d2s "http://$plain/" >/dev/null
g=$(wrk -t2 -c"$conns" -d"$dur" -H "X-ZUMO-AUTH: $tok" "http://$gh/tables/movies?\$top=10")
p=$(wrk -t2 -c"$conns" -d"$dur" "http://$plain/")
grn=$(echo "$g" | rps); prn=$(echo "$p" | rps)
echo "gatehouse GET /tables/movies?\$top=10 (authenticated): $grn req/s, mean latency $(echo "$g" | lat)"
echo "plain net/http 150-byte JSON:                       $prn req/s, mean latency $(echo "$p" | lat)"
awk -v a="$grn" -v b="$prn" 'BEGIN { printf "ratio: %.1f %%\n", 100*a/b }'
echo "gatehouse errors: $(echo "$g" | grep -E 'Non-2xx|Socket errors' || echo none)"
kill $ghpid; wait $ghpid 2>/dev/null || true

# --- large table with an index ---
[ "$large" -gt 0 ] || exit 0
if [ -n "$pg" ]; then
	psql "$pg" -qc "CREATE SCHEMA $schema" >/dev/null
	sep='?'; [[ $pg == *\?* ]] && sep='&'
	pgdsn="$pg${sep}search_path=$schema"
fi
"$tmp/seed" --data "$tmp/large" --database "$pgdsn" --rows "$large" --index "$index" 2>&1 | sed 's/^/seed: /'
tok=$("$tmp/gatehouse" token mint --data "$tmp/large" --user custom:bench)
"$tmp/gatehouse" --listen $gh --data "$tmp/large" --database "$pgdsn" >/dev/null 2>&1 &
ghpid=$!
wait_up "http://$gh/status"
q='$filter=year%20eq%201994%20and%20rating%20eq%20%27R%27&$orderby=title,duration%20desc&$top=10'
curl -fs -H "X-ZUMO-AUTH: $tok" "http://$gh/tables/movies?$q&\$inlinecount=allpages" | head -c 300; echo
l=$(wrk -t2 -c8 -d"$dur" --latency -H "X-ZUMO-AUTH: $tok" "http://$gh/tables/movies?$q")
echo "$large rows ${pg:+(PostgreSQL) }index $index, \$filter=year eq 1994 and rating eq 'R'&\$orderby=title,duration desc&\$top=10: $(echo "$l" | rps) req/s, mean latency $(echo "$l" | lat), p99 $(echo "$l" | awk '$1 == "99%" {print $2}')"
echo "$l" | grep -E 'Non-2xx|Socket errors' || true
echo "server peak RSS (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$ghpid/status), current: $(awk '/VmRSS/ {print $2, $3}' /proc/$ghpid/status)"
