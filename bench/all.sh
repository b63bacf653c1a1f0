#!/usr/bin/env bash
# Every throughput scenario in one run: Gatehouse on SQLite, Gatehouse on PostgreSQL and a bare
# net/http handler (bench/plain, 150 bytes of JSON) take turns on each scenario, with the same
# fixture (248 movies, 50 per-user notes for each of two users) on both databases.
#   top10     GET /tables/movies?$top=10                     (X-ZUMO-AUTH)
#   peruser   GET /tables/notes?$top=10 on a perUser table   (X-ZUMO-AUTH)
#   lookup    GET /tables/movies/m0000042                    (X-ZUMO-AUTH)
#   filter    GET /tables/movies?$filter=rating eq 'R'&$orderby=title   (X-ZUMO-AUTH)
#   insert    POST /tables/events, one row per request       (X-ZUMO-AUTH)
#   api       GET /api/hello, a custom API in JavaScript     (X-ZUMO-APPLICATION)
# Prints one line per measurement and then the table: requests/s with wrk's p99 latency, medians over
# the rounds, and the ratios to the plain handler measured in the same round.
#
# Usage: bench/all.sh [duration=10s] [connections=32] [rounds=1] [scenarios="top10 peruser lookup filter insert api"]
# PostgreSQL: $GATEHOUSE_BENCH_POSTGRES; by default the server at 127.0.0.1:5432, database test, reached
# over its Unix socket when it has one on this machine (how docs/operations.md says to connect on the
# same host), else over TCP (where libpq's and pgx's default, sslmode=prefer, encrypts loopback traffic
# with TLS: set GATEHOUSE_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/test to measure that). The
# run prints the transport, creates its own schema there and drops it at the end. Needs wrk and psql.
# Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10s}; conns=${2:-32}; rounds=${3:-1}; scenarios=${4:-"top10 peruser lookup filter insert api"}
for c in wrk psql curl; do command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 1; }; done
pgbase=${GATEHOUSE_BENCH_POSTGRES:-}
if [ -z "$pgbase" ]; then
	pgbase=postgres://postgres@127.0.0.1:5432/test
	sock=$(psql "$pgbase" -Atc "SHOW unix_socket_directories" 2>/dev/null | cut -d, -f1 | tr -d ' ' || true)
	[ -n "$sock" ] && [ -S "$sock/.s.PGSQL.5432" ] && pgbase="postgres://postgres@/test?host=$sock"
fi
echo "PostgreSQL connection: $(psql "$pgbase" -Atc "SELECT CASE WHEN inet_server_addr() IS NULL THEN 'unix socket' ELSE 'TCP to ' || host(inet_server_addr()) END
	|| CASE WHEN (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) THEN ', TLS' ELSE ', no TLS' END")"
tmp=$(mktemp -d)
schema=gh_bench_$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql "$pgbase" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/gatehouse" ./cmd/gatehouse
go build -o "$tmp/plain" ./bench/plain
go build -o "$tmp/seed" ./bench/seed
psql "$pgbase" -qc "CREATE SCHEMA $schema" >/dev/null
sep='?'; [[ $pgbase == *\?* ]] && sep='&'
pgdsn="$pgbase${sep}search_path=$schema"

# The app: tables with their permissions, and the custom API.
mkdir -p "$tmp/app/api"
cat >"$tmp/app/datamodel.json" <<'EOF'
{"tables":[
 {"name":"movies","permissions":{"*":"user"},"columns":{"title":"string","year":"number","duration":"number","rating":"string","bestPictureWinner":"boolean"}},
 {"name":"notes","permissions":{"*":"user"},"perUser":true,"columns":{"text":"string","n":"number"}},
 {"name":"events","permissions":{"*":"user"},"columns":{"title":"string","year":"number","rating":"string"}}
]}
EOF
echo '{"routes":{"*":{"get":{"permission":"application"}}}}' >"$tmp/app/api/hello.json"
echo "exports.get = function (request, response) { response.send(200, { message: 'hello', user: request.user.level, n: 1 }); };" >"$tmp/app/api/hello.js"
cat >"$tmp/insert.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"title":"Bench","year":2001,"rating":"PG"}'
wrk.headers["Content-Type"] = "application/json"
EOF

export GATEHOUSE_MASTER_KEY=bench-master-key-0123456789 GATEHOUSE_APPLICATION_KEY=bench-application-key-0123
export GATEHOUSE_SYSTEM_KEY=bench-system-key-0123456789 GATEHOUSE_LOG_LEVEL=warn
declare -A addr=([plain]=127.0.0.1:18320 [sqlite]=127.0.0.1:18321 [postgres]=127.0.0.1:18322)
declare -A dbflag=([sqlite]="" [postgres]="$pgdsn")
wait_up() { for _ in $(seq 1 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

"$tmp/plain" --listen "${addr[plain]}" & pids+=($!)
for sys in sqlite postgres; do
	d="$tmp/data-$sys"
	"$tmp/gatehouse" --listen "${addr[$sys]}" --data "$d" --database "${dbflag[$sys]}" --app "$tmp/app" >"$tmp/$sys.log" 2>&1 & pids+=($!)
	wait_up "http://${addr[$sys]}/status"
	"$tmp/seed" --data "$d" --database "${dbflag[$sys]}" --rows 248 2>&1 | sed "s/^/seed $sys: /"
done
wait_up "http://${addr[plain]}/"
tok=$("$tmp/gatehouse" token mint --data "$tmp/data-sqlite" --user custom:bench)
other=$("$tmp/gatehouse" token mint --data "$tmp/data-sqlite" --user custom:other)
for sys in sqlite postgres; do
	for i in $(seq 1 50); do
		for t in "$tok" "$other"; do
			curl -fs -o /dev/null -H "X-ZUMO-AUTH: $t" -H 'Content-Type: application/json' -d "{\"text\":\"note $i\",\"n\":$i}" "http://${addr[$sys]}/tables/notes"
		done
	done
done
# Statistics for the freshly loaded tables, as pgbench does after loading: autovacuum would gather them
# only after its next pass (autovacuum_naptime, a minute), and until then the planner guesses (for
# the per-user read: every row of the user and a sort, instead of the first ten in index order).
psql "$pgbase" -Atc "SELECT format('ANALYZE %I.%I;', schemaname, tablename) FROM pg_tables WHERE schemaname = '$schema'" | psql "$pgbase" -q

declare -A path=([top10]='/tables/movies?$top=10' [peruser]='/tables/notes?$top=10' [lookup]='/tables/movies/m0000042'
	[filter]="/tables/movies?\$filter=rating%20eq%20'R'&\$orderby=title" [insert]='/tables/events' [api]='/api/hello')
declare -A label=([top10]='$top=10 read' [peruser]='authenticated per-user read' [lookup]='lookup by id'
	[filter]='filter + order by title' [insert]='insert, one row per request' [api]='custom API in JavaScript')
wrkrun() { # sys scenario duration -> wrk output
	local sys=$1 sc=$2 d=$3 h=(-H "X-ZUMO-AUTH: $tok") s=()
	[ "$sc" = api ] && h=(-H "X-ZUMO-APPLICATION: $GATEHOUSE_APPLICATION_KEY")
	[ "$sc" = insert ] && s=(-s "$tmp/insert.lua")
	wrk -t2 -c"$conns" -d"$d" --latency "${h[@]}" "${s[@]}" "http://${addr[$sys]}${path[$sc]}"
}
for sc in $scenarios; do
	rows=$(curl -fs -H "X-ZUMO-AUTH: $tok" "http://${addr[sqlite]}${path[$sc]// /%20}" | grep -o '"id"' | wc -l || true)
	[ "$sc" = filter ] && echo "filter scenario: $rows rows per response"
	for sys in plain sqlite postgres; do wrkrun $sys "$sc" 2s >/dev/null; done # warm-up
done

# GATEHOUSE_BENCH_CPU=1: each line also says the processor time per request of the server, of the
# PostgreSQL server's processes and of the rest of the machine (wrk, the kernel's idle-less work), from
# /proc, in microseconds.
hz=$(getconf CLK_TCK)
declare -A srvpid=([plain]=${pids[0]} [sqlite]=${pids[1]} [postgres]=${pids[2]})
cputicks() { # sys -> "server postgres total" in clock ticks
	local pg=0 p
	for p in $(pgrep -x postgres || true); do
		pg=$((pg + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$(awk '{print $14 + $15}' "/proc/${srvpid[$1]}/stat") $pg $(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat)"
}
cpuper() { # before after requests -> " cpu/request: server Xus, postgres Yus, other Zus"
	awk -v b="$1" -v a="$2" -v n="$3" -v hz="$hz" 'BEGIN {
		split(b, B, " "); split(a, A, " "); u = 1e6 / hz / n
		s = (A[1] - B[1]) * u; g = (A[2] - B[2]) * u; t = (A[3] - B[3]) * u
		printf ", cpu/request: server %.0fus, postgres %.0fus, other %.0fus", s, g, t - s - g }'
}
declare -A res
systems=(plain sqlite postgres)
for r in $(seq 1 "$rounds"); do
	for sc in $scenarios; do
		# Rotate who goes first each round so no system always runs on a cooler machine.
		for k in 0 1 2; do
			sys=${systems[$(((k + r) % 3))]}
			[ -n "${GATEHOUSE_BENCH_CPU:-}" ] && before=$(cputicks "$sys")
			out=$(wrkrun "$sys" "$sc" "$dur")
			rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
			p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
			errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ' ' || true)
			cpu=
			if [ -n "${GATEHOUSE_BENCH_CPU:-}" ]; then
				reqs=$(awk '/requests in/ {print $1}' <<<"$out")
				cpu=$(cpuper "$before" "$(cputicks "$sys")" "$reqs")
			fi
			echo "round $r  $sc  $sys: $rps req/s, p99 $p99 $errs$cpu"
			res[$sc,$sys]+="$rps/$p99 "
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -t/ -k1 -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
echo
echo "wrk -t2 -c$conns -d$dur, median of $rounds round(s); p99 in parentheses"
echo
echo "| scenario | hello | Gatehouse SQLite | Gatehouse PostgreSQL | SQLite / hello | PostgreSQL / SQLite |"
echo "|---|---|---|---|---|---|"
for sc in $scenarios; do
	p=$(median <<<"${res[$sc,plain]}"); s=$(median <<<"${res[$sc,sqlite]}"); g=$(median <<<"${res[$sc,postgres]}")
	awk -v l="${label[$sc]}" -v p="$p" -v s="$s" -v g="$g" 'BEGIN {
		split(p, P, "/"); split(s, S, "/"); split(g, G, "/")
		printf "| %s | %d | %d (p99 %s) | %d (p99 %s) | %.0f %% | %.0f %% |\n", l, P[1], S[1], S[2], G[1], G[2], 100*S[1]/P[1], 100*G[1]/S[1] }'
done
