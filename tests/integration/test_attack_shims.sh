#!/bin/bash
# The shims that serve a sandbox's execs are stopped (SIGSTOP) or killed (SIGKILL).
# Deadlines, exec-kill, records, stop and remove must hold anyway: they are enforced from
# the host. The sandbox's own code can no longer do this (test_attack_shims2.sh): the
# host does it here, standing in for a shim that hangs or crashes, or for a way around the
# separation that nobody has found yet.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=as-$ID
B2=as2-$ID
MARK=$RANDOM$RANDOM
check_ac "create $B" create "$B"
check_ac "start $B" start "$B"
check_ac "create $B2" create "$B2"
check_ac "start $B2" start "$B2"

# Stops every shim of sandbox $1 (the idle ones and those serving an exec), from the host.
stop_shims() {
	local ns p
	ns=$(readlink "/proc/$(ac_supervisor_pid "$1")/ns/pid")
	for p in $(procs_in_pidns "$ns"); do
		[ "$(tr -d '\0' <"/proc/$p/cmdline" 2>/dev/null)" = agentcell-shim ] && kill -STOP "$p"
	done
	return 0
}
# The shim (parent) of the sandbox process whose command line starts with $1 (not the CLI
# that carries the same words).
shim_of() { ps -o ppid= -p "$(procs_matching "^$1" | head -1)" | tr -d ' '; }
has_procs_matching() { [ -n "$(procs_matching "$1")" ]; }

# (a) The command's shim is stopped, the command runs on: --timeout still ends it, from
# the host.
t0=$(date +%s%N)
# (The pause lets the shim report the start first: see "Deadlines from the host" in
# docs/ARCHITECTURE.md for a shim stopped before it reports.)
(wait_until 10 has_procs_matching "sleep 1000$MARK"; sleep 0.3; stop_shims "$B") &
timeout -k 5 30 "$AGENTCELL" exec --timeout 2 "$B" -- sleep 1000$MARK \
	>"$AC_TMP/a.out" 2>"$AC_TMP/a.err"
rc=$?
wait
ms=$((($(date +%s%N) - t0) / 1000000))
check_le "exec --timeout whose shim was stopped ends (ms)" "$ms" 15000
check_eq "... with the timeout exit status" 124 "$rc"
check_contains "... and says it timed out" "$(cat "$AC_TMP/a.err")" "timed out"
wait_until 5 no_procs_matching "sleep 1000$MARK"
check_eq "... and the command is gone from the host" "" "$(procs_matching "sleep 1000$MARK")"
for p in $(procs_matching "sleep 1000$MARK"); do ps -o pid,ppid,stat,args -p "$p" | sed 's/^/# /'; done

# Every shim is stopped now: nobody takes a request.
t0=$(date +%s%N)
timeout -k 5 30 "$AGENTCELL" exec --timeout 2 "$B" -- sleep 100 >"$AC_TMP/b.out" 2>"$AC_TMP/b.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_le "exec --timeout with every shim stopped ends (ms)" "$ms" 15000
check_eq "... with the timeout exit status" 124 "$rc"
check_contains "... and says it timed out" "$(cat "$AC_TMP/b.err")" "timed out"

# Without a timeout: an error once no shim took the request in 10 s, not a hang.
t0=$(date +%s%N)
timeout -k 5 30 "$AGENTCELL" exec "$B" -- true >"$AC_TMP/c.out" 2>"$AC_TMP/c.err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_le "plain exec with every shim stopped fails instead of hanging (ms)" "$ms" 25000
check_ne "... with an error status (not the watchdog's)" 124 "$rc"
check_ne "... an error" 0 "$rc"
check_contains "... that says why" "$(cat "$AC_TMP/c.err")" "took no request"

# (c) stop and remove complete whatever the shims' state.
NS=$(readlink "/proc/$(ac_supervisor_pid "$B")/ns/pid")
t0=$(date +%s%N)
check_ac "stop $B with every shim stopped" stop "$B"
check_le "... in time (ms)" $((($(date +%s%N) - t0) / 1000000)) 20000
check "... and nothing of it is left" pidns_empty "$NS"
check_ac "remove $B" remove "$B"

# (b) A detached command whose shim the sandbox kills.
X1=$(ac exec -d "$B2" -- sleep 300$MARK)
wait_until 5 has_procs_matching "sleep 300$MARK"
check "kill -9 the shim of a detached command" kill -9 "$(shim_of "sleep 300$MARK")"
check_ne "the sleep runs on" "" "$(procs_matching "sleep 300$MARK")"
check_eq "exec-status: still running, and says its shim is lost" "running true" \
	"$(ac exec-status "$X1" --json | jq -r '"\(.state) \(.shim_lost)"')"
check_contains "exec-list shows it running" "$(ac exec-list "$B2")" "running"
check_ac "exec-kill of a command whose shim was killed" exec-kill "$X1"
wait_until 5 no_procs_matching "sleep 300$MARK"
check_eq "exec-kill: the sleep is gone from the host" "" "$(procs_matching "sleep 300$MARK")"
check_eq "exec-status: failed, killed" "failed true" "$(ac exec-status "$X1" --json | jq -r '"\(.state) \(.killed)"')"

# A command whose shim was killed and which then ended: not "running" for ever.
X2=$(ac exec -d "$B2" -- sleep 2.0$MARK)
wait_until 5 has_procs_matching "sleep 2.0$MARK"
check "kill -9 the shim of a short detached command" kill -9 "$(shim_of "sleep 2.0$MARK")"
wait_until 10 no_procs_matching "sleep 2.0$MARK"
check_eq "exec-status after it ended: unknown" "unknown" "$(ac exec-status "$X2" --json | jq -r .state)"
check_contains "... with a reason" "$(ac exec-status "$X2" --json | jq -r .error)" "shim was killed"
acx exec-kill "$X2"
check_rc "exec-kill of it fails: not running" 1

# A detached command whose shim the sandbox stopped: exec-kill still ends it.
X3=$(ac exec -d "$B2" -- sleep 301$MARK)
wait_until 5 has_procs_matching "sleep 301$MARK"
check "kill -STOP the shim of a detached command" kill -STOP "$(shim_of "sleep 301$MARK")"
t0=$(date +%s%N)
check_ac "exec-kill of a command whose shim is stopped" exec-kill "$X3"
check_le "... in time (ms)" $((($(date +%s%N) - t0) / 1000000)) 10000
wait_until 5 no_procs_matching "sleep 301$MARK"
check_eq "... and the sleep is gone from the host" "" "$(procs_matching "sleep 301$MARK")"
check_eq "exec-status: failed, killed" "failed true" "$(ac exec-status "$X3" --json | jq -r '"\(.state) \(.killed)"')"

# An exec whose shim is killed under it returns at once with an error.
t0=$(date +%s%N)
(wait_until 10 has_procs_matching "sleep 302$MARK"; sleep 0.3; kill -9 "$(shim_of "sleep 302$MARK")") &
timeout -k 5 30 "$AGENTCELL" exec "$B2" -- sleep 302$MARK \
	>"$AC_TMP/d.out" 2>"$AC_TMP/d.err"
rc=$?
wait
check_le "exec whose shim is killed returns promptly (ms)" $((($(date +%s%N) - t0) / 1000000)) 5000
wait_until 5 no_procs_matching "sleep 302$MARK"
check_eq "... and its command does not run on" "" "$(procs_matching "sleep 302$MARK")"
check_ne "... with an error" 0 "$rc"
check_contains "... that says so" "$(cat "$AC_TMP/d.err")" "shim"

# (c) again, with killed shims and stopped ones.
stop_shims "$B2"
NS=$(readlink "/proc/$(ac_supervisor_pid "$B2")/ns/pid")
t0=$(date +%s%N)
check_ac "stop $B2" stop "$B2"
check_le "... in time (ms)" $((($(date +%s%N) - t0) / 1000000)) 20000
check "... and nothing of it is left" pidns_empty "$NS"
check_ac "remove $B2" remove "$B2"
