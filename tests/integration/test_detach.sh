#!/bin/bash
# Commands in the background: exec --detach, exec-list, exec-status, exec-logs, exec-kill.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=dt-$ID
check_ac "create $B" create "$B"
check_ac "start $B" start "$B"

wait_state() { # ID -> waits until the state is not running (10 s at most), prints it
	local s
	for _ in $(seq 100); do
		s=$(ac exec-status "$1" --json 2>/dev/null | jq -r .state)
		[ "$s" != running ] && [ "$s" != starting ] && break
		sleep 0.1
	done
	echo "$s"
}

# A command that writes both streams and exits 3 after a while.
t0=$(date +%s%N)
acx exec --detach "$B" -- sh -c 'echo out1; echo err1 >&2; sleep 1; echo out2; exit 3'
X1=$OUT
t1=$(date +%s%N)
check_rc "exec --detach returns 0" 0
check_match "exec --detach prints a 12-hex-digit id" '^[0-9a-f]{12}$' "$X1"
check_le "exec --detach returns at once (ms)" $(((t1 - t0) / 1000000)) 800
check_eq "exec-status: running while it runs" running "$(ac exec-status "$X1" --json | jq -r .state)"
check_contains "exec-list NAME shows it" "$(ac exec-list "$B")" "$X1"
check_contains "exec-list (all) shows it" "$(ac exec-list)" "$X1"
check_eq "the command keeps running after the CLI exited" failed "$(wait_state "$X1")"
check_eq "exec-status: the real exit code" 3 "$(ac exec-status "$X1" --json | jq -r .exit_code)"
check_match "exec-status: started_at" '^[0-9]{4}-' "$(ac exec-status "$X1" --json | jq -r .started_at)"
check_match "exec-status: finished_at" '^[0-9]{4}-' "$(ac exec-status "$X1" --json | jq -r .finished_at)"
check_eq "exec-logs: stdout" "$(printf 'out1\nout2')" "$(ac exec-logs "$X1")"
check_eq "exec-logs --stderr: stderr" err1 "$(ac exec-logs "$X1" --stderr)"

X2=$(ac exec -d "$B" -- true)
check_eq "a command that exits 0 is completed" completed "$(wait_state "$X2")"

# --follow prints output as it comes and returns when the command ends.
X3=$(ac exec -d "$B" -- sh -c 'for i in 1 2 3; do echo f$i; sleep 0.3; done')
check_eq "exec-logs --follow prints everything and ends" "$(printf 'f1\nf2\nf3')" "$(timeout 20 "$AGENTCELL" exec-logs --follow "$X3")"

# exec-kill takes the whole tree, including a setsid escapee.
MARK=$RANDOM$RANDOM
X4=$(ac exec -d "$B" -- sh -c "sleep 10$MARK & setsid sleep 20$MARK & while true; do echo tick; sleep 0.2; done")
sleep 0.5
check_ac "exec-kill" exec-kill "$X4"
check_eq "exec-kill: the command is failed and marked killed" "failed true" "$(ac exec-status "$X4" --json | jq -r '"\(.state) \(.killed)"')"
check_eq "exec-kill: nothing of it is left in the sandbox" "" "$(ac exec "$B" -- sh -c "ps -e -o args | grep -v grep | grep $MARK")"
acx exec-kill "$X4"
check_rc "exec-kill of a finished command fails" 1

# --timeout applies to detached commands too.
X5=$(ac exec -d --timeout 1 "$B" -- sleep 30)
check_eq "detached --timeout: failed" failed "$(wait_state "$X5")"
check_eq "detached --timeout: exit code 124" 124 "$(ac exec-status "$X5" --json | jq -r .exit_code)"

# Output is bounded: 20 MiB written, the log stays under the 8 MiB cap and says so.
X6=$(ac exec -d "$B" -- sh -c 'head -c 20971520 /dev/zero | tr "\0" x; echo; echo end')
wait_state "$X6" >/dev/null
SZ=$(stat -c %s "$AGENTCELL_HOME"/run/"$B".exec/"$X6"/stdout)
check_le "a 20 MiB output is kept under the 8 MiB cap" "$SZ" 8388608
check_gt "the dropped bytes are counted" "$(ac exec-status "$X6" --json | jq -r .dropped_stdout)" 0
check_eq "the newest output is kept" end "$(ac exec-logs "$X6" 2>/dev/null | tail -1)"
check_contains "exec-logs says that bytes were dropped" "$(ac exec-logs "$X6" 2>&1 >/dev/null)" "dropped"

# Failures to start are errors, and recorded.
acx exec -d "$B" -- "nosuch-$ID"
check_rc "detached nosuch: exit 1" 1
check_contains "detached nosuch: says why" "$ERR" "cannot execute"
acx exec -d -t "$B" -- true
check_rc "detached -t is refused (usage error)" 2

# State survives agentcell: a stopped sandbox marks its running commands failed.
X7=$(ac exec -d "$B" -- sleep 100)
check_ac "stop $B" stop "$B"
check_eq "a command whose sandbox stopped is failed" failed "$(ac exec-status "$X7" --json | jq -r .state)"
check_contains "exec-list still knows the old commands after a restart" "$(ac exec-list "$B")" "$X1"
acx exec -d "$B" -- true
check_rc "exec --detach into a stopped sandbox fails" 1

# Bad input.
for bad in "" "xyz" "../../etc" "0123456789abc" "0123456789AB"; do
	acx exec-status "$bad"
	check_ne "exec-status '$bad' fails" 0 "$RC"
done
acx exec-status 0123456789ab
check_rc "exec-status of an unknown id: exit 1" 1
acx exec-list "no-such-$ID"
check_rc "exec-list of an unknown sandbox: exit 1" 1
acx exec-logs --bogus "$X1"
check_rc "exec-logs --bogus: exit 2" 2

check_ac "remove $B" remove "$B"
check_eq "remove deletes the command records" "" "$(ls -d "$AGENTCELL_HOME"/run/"$B".exec 2>/dev/null)"
