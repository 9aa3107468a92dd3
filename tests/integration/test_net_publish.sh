#!/bin/bash
# Published ports (--publish [ADDR:]HOSTPORT:PORT), in the tests' private internet
# (tests/net/internet.sh): agentcell's proxy listens in the host namespace and forwards to
# the port inside the sandbox's namespace; info lists it; a port in use is a one-line
# error with nothing created; stop, start and remove close it and leave no process and
# no file behind.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$AC_REPO/tests/net/internet.sh"
ac_setup
ac_inet_up

ID=$(uniq_id)
WS=$AC_TMP/ws
mkdir -p "$WS"
echo "published-$ID" >"$WS/marker-$ID.txt"
chmod -R a+rX "$WS"
cd "$WS" || exit 1

# free_port: a TCP port free in the host namespace.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[ "$p" = "$INET_LOOP_PORT" ] && continue
		inh ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}
host_get() { inh curl -sS --max-time 10 "$@" 2>&1; }
listening() { inh ss -Htln "sport = :$1" | grep -q .; }

HP=$(free_port)
P=pub-$ID
check_ac "create $P --network --publish 127.0.0.1:$HP:8000" create "$P" --network --publish "127.0.0.1:$HP:8000" --mount-cwd
check_ac "start $P" start "$P"
check "the host port $HP listens in the host ns" wait_until 10 listening "$HP"
OUT=$(host_get "http://127.0.0.1:$HP/")
check_not_contains "before the server runs: no answer through the published port" "$OUT" "marker-$ID"

check_ac "exec -d: python3 -m http.server 8000 inside" exec -d "$P" -w /workspace -- "$PY" -m http.server 8000 --bind 127.0.0.1
check "curl from the host ns reaches the server inside" wait_until 20 sh -c \
	"'$AC_REPO/tests/net/hostns.sh' '$INET_H' curl -sS --max-time 5 http://127.0.0.1:$HP/ | grep -q marker-$ID"
OUT=$(host_get "http://127.0.0.1:$HP/marker-$ID.txt")
check_eq "a file of the workspace, through the published port" "published-$ID" "$OUT"
OUT=$(curl -sS --max-time 5 "http://127.0.0.1:$HP/marker-$ID.txt" 2>&1)
check_not_contains "the real host ns has no such port (it was published in the host ns only)" "$OUT" "published-$ID"
OUT=$(host_get "http://$INET_HOST_ADDR:$HP/marker-$ID.txt")
check_not_contains "bound to 127.0.0.1 only: not on the host's other address" "$OUT" "published-$ID"

acx info "$P"
check_contains "info: lists the published port" "$OUT" "$HP"
check_contains "info: lists the sandbox port" "$OUT" 8000
check_contains "info: says network" "$OUT" network
acx info "$P" --json
check_eq "info --json: the publish entry" "127.0.0.1 $HP 8000" \
	"$(jq -r '[.. | objects | select(has("host_port"))][0] | "\(.address) \(.host_port) \(.port)"' <<<"$OUT" 2>&1)"

acx net-log "$P" --json
check_eq "net-log: the published port's connections are audited" true \
	"$(jq -r '[.[] | .details | select(.method == "publish")] | length > 0' <<<"$OUT" 2>&1)"

# ------------------------------------------------------------------ ports in use
BUSY=$(free_port)
inh "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").write("up\n"); time.sleep(600)' "$BUSY" "$AC_TMP/busy.ready" </dev/null >/dev/null 2>&1 &
bg_track $!
wait_until 10 test -s "$AC_TMP/busy.ready"
Q=busy-$ID
acx create "$Q" --network --publish "127.0.0.1:$BUSY:8000"
check_ne "create with a host port in use fails" 0 "$RC"
check_error_line "  with a one-line error"
check_contains "  naming the port" "$ERR" "$BUSY"
check_not_contains "  and no sandbox was created" "$(ac_names)" "$Q"
check "  no net dir" test ! -e "$AGENTCELL_HOME/net/$Q"
acx run --network --publish "127.0.0.1:$BUSY:8000" -- true
check_ne "run with a host port in use fails" 0 "$RC"
check_error_line "  with a one-line error"
acx create "$Q" --network --publish "127.0.0.1:$HP:9000"
check_ne "create with the port another sandbox publishes fails" 0 "$RC"
check_error_line "  with a one-line error"
check_not_contains "  and no sandbox was created" "$(ac_names)" "$Q"
for bad in "127.0.0.1:0:8000" "127.0.0.1:70000:8000" "notaport" "127.0.0.1:$HP"; do
	acx create "bad-$ID" --network --publish "$bad"
	check_ne "--publish '$bad' is refused" 0 "$RC"
done
check_not_contains "  none of them created a sandbox" "$(ac_names)" "bad-$ID"

# ------------------------------------------------------------------ stop, start
PIDF=$AGENTCELL_HOME/net/$P/proxy.pid
PROXY_PID=$(jq -r '.pid // empty' "$PIDF" 2>/dev/null)
check_match "the proxy's pid file names a pid ($PROXY_PID)" '^[0-9]+$' "$PROXY_PID"
check_ac "stop $P" stop "$P"
check "after stop: the port is closed" wait_until 10 sh -c "! '$AC_REPO/tests/net/hostns.sh' '$INET_H' ss -Htln 'sport = :$HP' | grep -q ."
[ -n "$PROXY_PID" ] && check "after stop: the proxy process is gone" wait_until 10 sh -c "! kill -0 $PROXY_PID 2>/dev/null"
check_ac "start $P again" start "$P"
check_ac "exec -d the server again" exec -d "$P" -w /workspace -- "$PY" -m http.server 8000 --bind 127.0.0.1
check "after a restart the published port works again" wait_until 20 sh -c \
	"'$AC_REPO/tests/net/hostns.sh' '$INET_H' curl -sS --max-time 5 http://127.0.0.1:$HP/marker-$ID.txt | grep -q published-$ID"
PROXY_PID=$(jq -r '.pid // empty' "$PIDF" 2>/dev/null)

# ------------------------------------------------------------------ remove
check_ac "remove $P" remove "$P"
[ -n "$PROXY_PID" ] && check "after remove: the proxy process $PROXY_PID is gone" wait_until 10 sh -c "! kill -0 $PROXY_PID 2>/dev/null"
check "after remove: the host port is closed" wait_until 10 sh -c "! '$AC_REPO/tests/net/hostns.sh' '$INET_H' ss -Htln 'sport = :$HP' | grep -q ."
OUT=$(host_get "http://127.0.0.1:$HP/")
check_not_contains "after remove: nothing answers on the port" "$OUT" "marker-$ID"
check "after remove: no files under \$AGENTCELL_HOME/net/$P" test ! -e "$AGENTCELL_HOME/net/$P"
check_eq "after remove: no agentcell process left in the host ns" "" \
	"$(for p in $(ip netns pids "$INET_H"); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -F "$AGENTCELL"; done)"
check_eq "after remove: no process of the sandbox left (http.server)" "" "$(procs_matching "http.server 8000" | head -3)"

ac_inet_down check
