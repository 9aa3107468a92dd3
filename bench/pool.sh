#!/usr/bin/env bash
# What the warm pool (serve --pool N, src/core/pool.c) saves, side by side in ONE run, as
# root:
#
#   1. POST /run {"command":["true"]} against a server without a pool (each run creates,
#      starts and removes its own sandbox on the request's path);
#   2. the same against a server with --pool 2, waiting (untimed) until the pool is full
#      again before each request: the hit path, one exec in a started sandbox;
#   3. the same with --pool 2 back to back (no waiting): hits while the refill keeps up,
#      misses when it does not; the hit/miss counts are reported.
#
#   sudo bash bench/pool.sh                 # 30 requests per row
#   BENCH_N=100 bash bench/pool.sh          # more
#   AGENTCELL=/path/to/agentcell bash bench/pool.sh
#
# Each request's time is curl's time_total (connect to last byte) on a fresh connection.
# Rows 1 and 2 are interleaved in rounds so that load from elsewhere hits both alike.
# Progress goes to stderr; the report (machine line + Markdown table + problems seen) to
# stdout and bench/results/pool-<UTC time>.md. See bench/README.md.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}
N=${BENCH_N:-30}
ROUNDS=5
POOL=2

[ "$(id -u)" -eq 0 ] || { echo "pool.sh: run as root (the native backend needs root)" >&2; exit 2; }
for t in curl jq python3; do
	command -v "$t" >/dev/null || { echo "pool.sh: $t is not installed" >&2; exit 1; }
done
log() { printf '# %s\n' "$*" >&2; }
NOTES=()
mkdir -p "$RESULTS"
[ -x "$AC" ] || make -C "$ROOT" -j2 >&2 || exit 1

WORK=$(mktemp -d /tmp/acpool.XXXXXX)
mkdir -p "$WORK/bin" "$WORK/home-plain" "$WORK/home-pool"
cp "$AC" "$WORK/bin/agentcell" # a snapshot: others may rebuild during the run
AC_SRC=$AC
AC=$WORK/bin/agentcell
PIDS=()
cleanup() {
	local p
	trap - EXIT INT TERM
	# SIGTERM: a pool server removes its sandboxes before it exits.
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$p" 2>/dev/null
	done
	for h in "$WORK/home-plain" "$WORK/home-pool"; do
		for n in $(AGENTCELL_HOME=$h "$AC" list --all --json 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
			AGENTCELL_HOME=$h "$AC" remove "$n" >/dev/null 2>&1
		done
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# serve HOME ARGS...: starts a server, sets URL_LAST.
serve() {
	local home=$1 port
	shift
	port=$(free_port)
	env -u AGENTCELL_API_KEY -u AGENTKERNEL_API_KEY AGENTCELL_HOME="$home" \
		"$AC" serve --port "$port" "$@" 2>"$home.log" &
	PIDS+=($!)
	URL_LAST=http://127.0.0.1:$port
	for _ in $(seq 200); do curl -sf "$URL_LAST/health" >/dev/null 2>&1 && return 0; sleep 0.05; done
	echo "pool.sh: the server did not start: $(cat "$home.log")" >&2
	exit 1
}
serve "$WORK/home-plain"
PLAIN=$URL_LAST
serve "$WORK/home-pool" --pool "$POOL"
POOLED=$URL_LAST
ready() { curl -s "$POOLED/health" | jq -r '.pool.ready // 0'; }
wait_full() {
	for _ in $(seq 1200); do [ "$(ready)" -ge "$POOL" ] && return 0; sleep 0.025; done
	NOTES+=("the pool did not fill up again within 30 s")
	return 1
}
# one URL FILE: one timed POST /run `true`; "sample MS" or "error ..." into FILE.
one() {
	local out code t
	out=$(curl -s -o "$WORK/body" -w '%{http_code} %{time_total}' -X POST -H 'Content-Type: application/json' \
		--data-binary '{"command":["true"]}' --max-time 60 "$1/run")
	code=${out% *} t=${out#* }
	if [ "$code" = 200 ]; then
		awk -v t="$t" 'BEGIN { printf "sample %.3f\n", t * 1000 }' >>"$2"
	else
		echo "error HTTP $code: $(head -c 200 "$WORK/body")" >>"$2"
	fi
}
stats_of() { # VAR LABEL FILE
	local out n fails
	n=$(grep -c '^sample ' "$3")
	fails=$(grep -c '^error ' "$3")
	out=$(awk '$1 == "sample" { print $2 }' "$3" | sort -g | awk -v fails="$fails" '
		{ s[++n] = $1; sum += $1 }
		function rk(p,   r) { r = int(p / 100 * n + 0.999999); return r < 1 ? 1 : (r > n ? n : r) }
		END {
			if (n == 0) { printf "n=0 fail=%d\n", fails; exit }
			printf "n=%d fail=%d p50=%.3f p90=%.3f mean=%.3f min=%.3f max=%.3f\n", n, fails,
				(n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2, s[rk(90)], sum / n, s[1], s[n]
		}')
	log "  $2: $out"
	[ "$fails" = 0 ] || NOTES+=("$2: $fails requests failed; first: $(grep -m 2 '^error ' "$3" | tr '\n' ';')")
	printf -v "$1" '%s' "$out"
}
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MACHINE="Machine: ${cpu_model:-unknown CPU}, nproc $(nproc), kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo "?")"
log "$MACHINE"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

wait_full
# Warm-up (untimed): the host base, the seccomp program, the first starts.
for _ in 1 2 3; do one "$PLAIN" "$WORK/warm"; wait_full; one "$POOLED" "$WORK/warm"; done
h0=$(curl -s "$POOLED/pool" | jq -r '.data.hits')
: >"$WORK/plain"; : >"$WORK/hit"
log "POST /run true: $N without a pool, $N with --pool $POOL (full before each), in $ROUNDS rounds"
per=$(((N + ROUNDS - 1) / ROUNDS))
for _ in $(seq 1 "$ROUNDS"); do
	for _ in $(seq 1 "$per"); do one "$PLAIN" "$WORK/plain"; done
	for _ in $(seq 1 "$per"); do wait_full; one "$POOLED" "$WORK/hit"; done
done
h1=$(curl -s "$POOLED/pool" | jq -r '.data.hits')
stats_of S_PLAIN "no pool" "$WORK/plain"
stats_of S_HIT "pool, full before each request" "$WORK/hit"
[ $((h1 - h0)) = "$(field "$S_HIT" n)" ] || NOTES+=("pool row: $((h1 - h0)) hits for $(field "$S_HIT" n) requests")

log "POST /run true: $N back to back with --pool $POOL"
wait_full
s0=$(curl -s "$POOLED/pool")
: >"$WORK/b2b"
for _ in $(seq 1 "$N"); do one "$POOLED" "$WORK/b2b"; done
s1=$(curl -s "$POOLED/pool")
stats_of S_B2B "pool, back to back" "$WORK/b2b"
B2B_HITS=$(($(jq .data.hits <<<"$s1") - $(jq .data.hits <<<"$s0")))
B2B_MISSES=$(($(jq .data.misses <<<"$s1") - $(jq .data.misses <<<"$s0")))
FAILURES=$(jq .data.failures <<<"$s1")
[ "$FAILURES" = 0 ] || NOTES+=("the pool counted $FAILURES failures")
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(field "$2" p50)" "$(field "$2" p90)" "$(field "$2" min)" "$(field "$2" n)" "$3"; }
sha=$(sha256sum "$AC" | cut -c1-12)
gitrev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
# shellcheck disable=SC2153 # S_* are set by stats_of (printf -v)
{
	echo "$MACHINE"
	echo "Versions: agentcell $("$AC" --version 2>/dev/null | awk '{ print $NF }') ($AC_SRC, sha256 $sha, git $gitrev); wall time $((T_END - T_START)) s; load average $LOAD_START at start, $LOAD_END at end"
	echo
	echo "| POST /run {\"command\":[\"true\"]}, ms (curl time_total) | median | p90 | min | n | note |"
	echo "|---|---:|---:|---:|---:|---|"
	row "no pool: create + start + exec + remove on the request's path" "$S_PLAIN" ""
	row "--pool $POOL, a ready sandbox each time (hit: one exec)" "$S_HIT" "$(ratio "$(field "$S_PLAIN" p50)" "$(field "$S_HIT" p50)") x faster (median)"
	row "--pool $POOL, back to back" "$S_B2B" "$B2B_HITS hits, $B2B_MISSES misses"
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Problems seen:"
		for n in "${NOTES[@]}"; do echo "- $n"; done
	fi
} | tee "$RESULTS/pool-$(date -u +%Y%m%dT%H%M%SZ).md"
