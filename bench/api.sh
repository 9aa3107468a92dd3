#!/usr/bin/env bash
# HTTP API throughput and latency, side by side in ONE run, as root:
#
#   POST /sandboxes/{name}/exec {"command":["true"]} with wrk from 1 and from 16 concurrent
#   keep-alive clients (requests/s, p50, p99), next to the same exec from the CLI
#   (`agentcell exec NAME -- true`, one process per exec) and GET /health (the server's own
#   floor: HTTP + routing, no sandbox).
#
#   sudo bash bench/api.sh                 # 10 s per wrk run
#   BENCH_SECONDS=5 bash bench/api.sh      # shorter
#   AGENTCELL=/path/to/agentcell bash bench/api.sh
#
# Needs wrk (apt-get install wrk; installed here if missing). The report (machine line +
# Markdown table) goes to stdout and bench/results/api-<UTC time>.md.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}
SECS=${BENCH_SECONDS:-10}

[ "$(id -u)" -eq 0 ] || { echo "api.sh: run as root (the native backend needs root)" >&2; exit 2; }
log() { printf '# %s\n' "$*" >&2; }
if ! command -v wrk >/dev/null; then
	log "installing wrk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } ||
		{ echo "api.sh: cannot install wrk" >&2; exit 1; }
fi
mkdir -p "$RESULTS"
[ -x "$AC" ] || make -C "$ROOT" -j2 >&2 || exit 1
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || exit 1

WORK=$(mktemp -d /tmp/acapi.XXXXXX)
export AGENTCELL_HOME=$WORK/home
mkdir -p "$AGENTCELL_HOME" "$WORK/bin"
cp "$AC" "$WORK/bin/agentcell" # a snapshot: others may rebuild during the run
AC=$WORK/bin/agentcell
NAME=bapi$$
SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	"$AC" remove "$NAME" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AC" serve --port "$PORT" 2>"$WORK/serve.log" &
SERVER=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf -XPOST -H 'Content-Type: application/json' "$URL/sandboxes" -d "{\"name\":\"$NAME\"}" >/dev/null ||
	{ echo "api.sh: cannot create the sandbox: $(cat "$WORK/serve.log")" >&2; exit 1; }

cat >"$WORK/exec.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"command":["true"]}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
	io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f errors=%d non2xx=%d\n",
		summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
		latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read +
		summary.errors.write + summary.errors.timeout, summary.errors.status))
end
EOF
sed -e 's/^wrk.method.*//' -e 's/^wrk.body.*//' "$WORK/exec.lua" >"$WORK/get.lua"

run_wrk() { # label conns path script
	log "$1: wrk -c$2 -d${SECS}s $3"
	curl -sf -XPOST -H 'Content-Type: application/json' "$URL/sandboxes/$NAME/exec" -d '{"command":["true"]}' >/dev/null # warm
	local threads=$(($2 < 2 ? 1 : 2))
	wrk -t"$threads" -c"$2" -d"${SECS}s" --latency -s "$4" "$URL$3" 2>&1 | grep '^RESULT' | sed 's/^RESULT //'
}
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

E1=$(run_wrk "exec, 1 client" 1 "/sandboxes/$NAME/exec" "$WORK/exec.lua")
E16=$(run_wrk "exec, 16 clients" 16 "/sandboxes/$NAME/exec" "$WORK/exec.lua")
H16=$(run_wrk "health, 16 clients" 16 "/health" "$WORK/get.lua")
log "CLI: agentcell exec $NAME -- true"
CLI=$("$TIMEIT" -n 300 -w 10 -- "$AC" exec "$NAME" -- true | tail -n 1)
log "  $CLI"
cli_rps=$(awk -v m="$(field "$CLI" mean)" 'BEGIN { printf "%.1f", 1000 / m }')

{
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo
	echo "| what | requests/s | p50 ms | p99 ms | errors |"
	echo "|---|---:|---:|---:|---:|"
	printf '| POST /sandboxes/{name}/exec `true`, 1 keep-alive client | %s | %s | %s | %s |\n' \
		"$(field "$E1" rps)" "$(field "$E1" p50)" "$(field "$E1" p99)" "$(($(field "$E1" errors) + $(field "$E1" non2xx)))"
	printf '| POST /sandboxes/{name}/exec `true`, 16 keep-alive clients | %s | %s | %s | %s |\n' \
		"$(field "$E16" rps)" "$(field "$E16" p50)" "$(field "$E16" p99)" "$(($(field "$E16" errors) + $(field "$E16" non2xx)))"
	printf '| GET /health, 16 keep-alive clients (server floor) | %s | %s | %s | %s |\n' \
		"$(field "$H16" rps)" "$(field "$H16" p50)" "$(field "$H16" p99)" "$(($(field "$H16" errors) + $(field "$H16" non2xx)))"
	printf '| `agentcell exec NAME -- true` (CLI, sequential) | %s | %s | %s | %s |\n' \
		"$cli_rps" "$(field "$CLI" p50)" "$(field "$CLI" p99)" "$(field "$CLI" fail)"
	echo
	echo "Targets: >= 1000 exec/s from 16 clients; p50 < 2 ms from one client."
} | tee "$RESULTS/api-$(date -u +%Y%m%dT%H%M%SZ).md"
