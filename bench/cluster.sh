#!/usr/bin/env bash
# One instance vs three on one PostgreSQL database, on the same machine: requests per second of an
# authenticated read (GET /tables/movies?$top=10, 248 rows) and of an insert (POST /tables/movies).
# The load is the same in both cases: three wrk processes of C/3 connections each, all aimed at the
# single instance, or one at each of the three. Instances share the cluster key ring (sealed under a
# key-encryption key from the environment), each has its own data directory.
# Usage: bench/cluster.sh [duration=10s] [connections=30] [postgres=postgres://postgres@127.0.0.1:5432/test]
# Needs wrk (apt-get install wrk) and psql. Loopback only; a fresh schema, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}; conns=${2:-30}; pg=${3:-postgres://postgres@127.0.0.1:5432/test}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v psql >/dev/null || { echo "psql is not installed" >&2; exit 1; }
schema=gh_bench_$$
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; psql -q "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
psql -q "$pg" -c "CREATE SCHEMA $schema" >/dev/null
case "$pg" in *\?*) dsn="$pg&search_path=$schema";; *) dsn="$pg?search_path=$schema";; esac
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/seed" ./bench/seed
export GATEHOUSE_KEY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
export GATEHOUSE_DATABASE=$dsn GATEHOUSE_LOG_LEVEL=warn
unset MS_MasterKey MS_ApplicationKey MS_ApplicationSystemKey
ports=(18310 18311 18312)

wait_up() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
start() { mkdir -p "$tmp/d$1"; "$tmp/gatehouse" serve --listen "127.0.0.1:${ports[$1]}" --data "$tmp/d$1" >/dev/null 2>"$tmp/log$1" & wait_up "http://127.0.0.1:${ports[$1]}/status"; }

cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"title":"Bench","year":2024,"duration":90,"rating":"PG","bestPictureWinner":false}'
wrk.headers["Content-Type"] = "application/json"
LUA

# load URLS... : three wrk processes at once (conns/3 each), one per URL; prints the summed req/s and
# the non-2xx count.
load() {
  local path=$1 script=$2; shift 2
  local i=0 pids=()
  for u in "$@"; do
    wrk -t1 -c$((conns / 3)) -d"$dur" -H "X-ZUMO-AUTH: $tok" ${script:+-s "$script"} "$u$path" >"$tmp/wrk$i" & pids+=($!); i=$((i + 1))
  done
  wait "${pids[@]}"
  cat "$tmp"/wrk[0-9] | awk '/Requests\/sec/ {s += $2} /Non-2xx/ {e += $NF} END {printf "%.0f req/s (non-2xx: %d)", s, e}'
  rm -f "$tmp"/wrk[0-9]
}

start 0
"$tmp/seed" --database "$dsn" --data "$tmp/d0" --rows 248 2>&1 | sed 's/^/seed: /'
tok=$("$tmp/gatehouse" token mint --data "$tmp/d0" --user custom:bench)
one=http://127.0.0.1:${ports[0]}
echo "PostgreSQL $(psql -tA "$pg" -c 'SHOW server_version'), $(nproc) CPU cores, wrk: 3 processes x $((conns / 3)) connections, $dur each run"
load "/tables/movies?\$top=10" "" $one $one $one >/dev/null   # warm-up
echo "1 instance,  GET /tables/movies?\$top=10: $(load "/tables/movies?\$top=10" "" $one $one $one)"
echo "1 instance,  POST /tables/movies:        $(load /tables/movies "$tmp/post.lua" $one $one $one)"
start 1; start 2
urls=(http://127.0.0.1:${ports[0]} http://127.0.0.1:${ports[1]} http://127.0.0.1:${ports[2]})
load "/tables/movies?\$top=10" "" "${urls[@]}" >/dev/null   # warm-up
echo "3 instances, GET /tables/movies?\$top=10: $(load "/tables/movies?\$top=10" "" "${urls[@]}")"
echo "3 instances, POST /tables/movies:        $(load /tables/movies "$tmp/post.lua" "${urls[@]}")"
