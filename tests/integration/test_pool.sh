#!/bin/bash
# The warm pool of `agentcell serve --pool N` (src/core/pool.c): N sandboxes kept started,
# POST /run served by one of them (a hit) with the sandbox removed afterwards and never
# reused, a replacement started, nothing of one run visible to the next, sandbox options
# falling back to a fresh sandbox (a miss), the pool hidden from list, GET /sandboxes and
# by-name routes, its figures in /health, /pool and /metrics, `run --pool` from the CLI,
# and nothing left after a SIGTERM, nor (at the next start) after a kill -9.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

if ! command -v curl >/dev/null; then
	skip "the warm pool" "curl is not installed"
	exit 0
fi

# lib.sh's clean-up lists sandboxes with `list`, which hides the pool's: remove those too.
at_exit 'for n in $(ac list --all --json 2>/dev/null | jq -r ".[] | select(.pool == true) | .name"); do ac remove "$n"; done'

URL=
api() { # METHOD PATH [BODY]: prints the body; HTTP status in $AC_TMP/status
	local data=()
	[ $# -ge 3 ] && data=(-H 'Content-Type: application/json' --data-binary "$3")
	curl -s -S -X "$1" -o "$AC_TMP/body" -w '%{http_code}' --max-time 120 "${data[@]}" "$URL$2" >"$AC_TMP/status" 2>"$AC_TMP/curl.err"
	cat "$AC_TMP/body"
}
status() { cat "$AC_TMP/status"; }
pool_field() { curl -s --max-time 10 "$URL/health" | jq -r ".pool.$1 // empty"; }
pool_is() { [ "$(pool_field "$1")" = "$2" ]; }
# Names of the pool's sandboxes in the store (state "pool": true).
pool_names() { ac list --all --json 2>/dev/null | jq -r '.[] | select(.pool == true) | .name' | sort; }
state_exists() { [ -e "$AGENTCELL_HOME/sandboxes/$1.json" ]; }
# A live process (a zombie waiting for PID 1 to reap it is gone).
pid_alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && [ "$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" != Z ]; }
no_state() { ! state_exists "$1"; }

# ------------------------------------------------------------------ a pool of 2

if ! start_server pool -- --port 0 --pool 2; then
	fail "serve --pool 2 starts" "$(cat "$AC_TMP/pool.err")"
	exit 1
fi
URL=http://127.0.0.1:$SRV_PORT
PID1=$SRV_PID
if wait_until 60 pool_is ready 2; then
	pass "/health shows the pool with 2 ready sandboxes"
else
	fail "/health shows the pool with 2 ready sandboxes" "$(curl -s "$URL/health")" "$(tail -5 "$AC_TMP/pool.err")"
fi
check_eq "2 started, no hit, no miss yet" "2 0 0" "$(pool_field started) $(pool_field hits) $(pool_field misses)"
body=$(api GET /pool)
check_eq "GET /pool: size 2, image host" "200 2 host" "$(status) $(jq -r '.data.size' <<<"$body") $(jq -r '.data.image' <<<"$body")"

FIRST=$(pool_names)
check_eq "two sandboxes named pool-<12 hex>, marked \"pool\": true" 2 "$(grep -cE '^pool-[0-9a-f]{12}$' <<<"$FIRST")"
one=$(head -1 <<<"$FIRST")
check_eq "they run" running "$(ac_status "$one")"

# Hidden: list, GET /sandboxes, by name through the API.
acx list --json
check_eq "list does not show them" "" "$(jq -r '.[] | select(.name | startswith("pool-")) | .name' <<<"$OUT")"
acx list --all
check_contains "list --all shows them" "$OUT" "$one"
body=$(api GET /sandboxes)
check_eq "GET /sandboxes does not show them" "200 0" "$(status) $(jq '[.data[] | select(.name | startswith("pool-"))] | length' <<<"$body")"
api GET "/sandboxes/$one" >/dev/null
check_eq "GET /sandboxes/$one is 404" 404 "$(status)"
api POST "/sandboxes/$one/exec" '{"command":["true"]}' >/dev/null
check_eq "POST /sandboxes/$one/exec is 404" 404 "$(status)"
api DELETE "/sandboxes/$one" >/dev/null
check_eq "DELETE /sandboxes/$one is 404 (and it stays)" "404 yes" "$(status) $(state_exists "$one" && echo yes)"

# ------------------------------------------------------------------ a hit

body=$(api POST /run '{"command":["sh","-c","hostname; echo \"v=$FOO\"; pwd; echo secret > /root/mark; echo t > /tmp/mark"],"env":{"FOO":"bar"},"workdir":"/tmp"}')
used=$(jq -r '.data.output' <<<"$body" | head -1)
check_eq "POST /run answers 200 with the command's output" "200" "$(status)"
check_eq "env and workdir reach the command" "v=bar /tmp" "$(jq -r '.data.output' <<<"$body" | sed -n '2p;3p' | tr '\n' ' ' | sed 's/ $//')"
if grep -qx -- "$used" <<<"$FIRST"; then
	pass "it ran in a ready pool sandbox ($used)"
else
	fail "it ran in a ready pool sandbox" "hostname: $used" "pool: $FIRST"
fi
check_eq "it counts as a hit" "1 0" "$(pool_field hits) $(pool_field misses)"
if wait_until 30 no_state "$used"; then
	pass "the used sandbox is removed"
else
	fail "the used sandbox is removed" "$(ac info "$used" 2>&1)"
fi
check_eq "... with no cgroup left" "" "$(cg_dirs "$used")"
if wait_until 60 pool_is started 3 && wait_until 60 pool_is ready 2; then
	pass "a replacement is started: started 3, ready 2 again"
else
	fail "a replacement is started" "$(curl -s "$URL/health")"
fi
check_eq "destroyed 1" 1 "$(pool_field destroyed)"

body=$(api POST /run '{"command":["sh","-c","hostname; test ! -e /root/mark && test ! -e /tmp/mark && echo clean"]}')
out=$(jq -r '.data.output' <<<"$body")
second=$(head -1 <<<"$out")
check_eq "the next run sees nothing of the first's files" clean "$(sed -n 2p <<<"$out")"
check_ne "... in another sandbox" "$used" "$second"
check_eq "2 hits" 2 "$(pool_field hits)"

# A failing command: same answer as without a pool (409 with the exit code).
api POST /run '{"command":["sh","-c","echo oops; exit 3"]}' >"$AC_TMP/fail.json"
check_eq "a failing command answers 409 with its exit code" "409 3" "$(status) $(jq -r .exit_code "$AC_TMP/fail.json")"
# A code run fits the pool too.
body=$(api POST /run '{"language":"sh","code":"echo code-$((6*7))"}')
check_eq "a code run is a hit" "code-42 4" "$(jq -r .data.output <<<"$body" | tr -d '\n') $(pool_field hits)"

# ------------------------------------------------------------------ misses

body=$(api POST /run '{"command":["sh","-c","hostname"],"memory_mb":256}')
host=$(jq -r '.data.output' <<<"$body" | tr -d '\n')
check_eq "a run with memory_mb works" 200 "$(status)"
check_match "... in its own sandbox (run-*), not the pool's" '^run-' "$host"
check_eq "... and is a miss (hits unchanged)" "1 4" "$(pool_field misses) $(pool_field hits)"
body=$(api POST /run '{"command":["true"],"network":true}')
if [ "$(status)" = 200 ]; then
	pass "a run with network works"
else
	fail "a run with network works" "$(status) $body"
fi
check_eq "... and is a miss" 2 "$(pool_field misses)"

# ------------------------------------------------------------------ /metrics

wait_until 60 pool_is ready 2
m=$(curl -s "$URL/metrics")
check_match "/metrics: agentcell_pool_ready" $'(^|\n)agentcell_pool_ready 2\n' "$m"
check_match "/metrics: agentcell_pool_hits_total" $'(^|\n)agentcell_pool_hits_total 4\n' "$m"
check_match "/metrics: agentcell_pool_misses_total" $'(^|\n)agentcell_pool_misses_total 2\n' "$m"
check_match "/metrics: agentcell_pool_in_use" $'(^|\n)agentcell_pool_in_use 0\n' "$m"
check_match "/metrics: agentcell_pool_started_total" $'(^|\n)agentcell_pool_started_total [0-9]+\n' "$m"
check_match "/metrics: agentcell_pool_destroyed_total" $'(^|\n)agentcell_pool_destroyed_total [0-9]+\n' "$m"

# ------------------------------------------------------------------ run --pool

acx run --pool --server "$URL" -- sh -c 'echo to-out; echo to-err >&2; exit 7'
check_rc "run --pool passes the command's exit code" 7
check_eq "run --pool prints its stdout" to-out "$OUT"
check_contains "run --pool prints its stderr" "$ERR" to-err
check_eq "run --pool is a hit" 5 "$(pool_field hits)"
acx run --pool --server "$URL" --env GREETING=hi -- sh -c 'echo "$GREETING"'
check_eq "run --pool --env" "0 hi" "$RC $OUT"
AGENTCELL_SERVER=$URL acx run --pool -- true
check_rc "run --pool takes \$AGENTCELL_SERVER" 0
acx run --pool --server http://127.0.0.1:1 -- true
check_rc "run --pool with no server there fails" 1
check_contains "... saying so" "$ERR" "cannot reach the server"

# Every name the pool ever had: none of the used ones came back.
wait_until 60 pool_is ready 2
now=$(pool_names)
for n in $used $second; do
	if grep -qx -- "$n" <<<"$now" || state_exists "$n"; then
		fail "used sandbox $n never comes back" "$now"
	else
		pass "used sandbox $n never comes back"
	fi
done

# ------------------------------------------------------------------ SIGTERM

LAST=$(pool_names)
sups=()
for n in $LAST; do sups+=("$(ac_supervisor_pid "$n")"); done
stop_server pool "$PID1"
check_eq "after SIGTERM no pool sandbox is left" "" "$(pool_names)"
left=
for n in $LAST; do left+=$(cg_dirs "$n"); done
check_eq "... no cgroup" "" "$left"
alive=
for p in "${sups[@]}"; do pid_alive "$p" && alive+=" $p"; done
check_eq "... no supervisor process" "" "$alive"

# ------------------------------------------------------------------ kill -9

if ! start_server pool2 -- --port 0 --pool 2; then
	fail "serve --pool 2 starts again" "$(cat "$AC_TMP/pool2.err")"
	exit 1
fi
URL=http://127.0.0.1:$SRV_PORT
wait_until 60 pool_is ready 2
KILLED=$(pool_names)
sups=()
for n in $KILLED; do sups+=("$(ac_supervisor_pid "$n")"); done
kill -9 "$SRV_PID"
wait_until 10 sh -c "! kill -0 $SRV_PID"
check_eq "a killed server leaves its 2 pool sandboxes" 2 "$(wc -w <<<"$KILLED")"
if ! start_server pool3 -- --port 0; then
	fail "serve starts after a kill -9" "$(cat "$AC_TMP/pool3.err")"
	exit 1
fi
URL=http://127.0.0.1:$SRV_PORT
gone=yes
for n in $KILLED; do state_exists "$n" && gone=no; done
check_eq "the next serve removed them" yes "$gone"
check_contains "... and said so" "$(cat "$AC_TMP/pool3.err")" "removed 2 pool sandbox(es)"
alive=
for p in "${sups[@]}"; do pid_alive "$p" && alive+=" $p"; done
check_eq "... their supervisors are gone" "" "$alive"
check_eq "a server without --pool has no \"pool\" in /health" "" "$(pool_field ready)"
api GET /pool >/dev/null
check_eq "... and GET /pool is 404" 404 "$(status)"
stop_server pool3 "$SRV_PID"
