#!/bin/bash
# Attack: the sandbox's code stops (SIGSTOP) or kills (SIGKILL) the shims that serve its
# execs (they live in its PID namespace). Deadlines, exec-kill, records, stop and remove
# must hold anyway: they are enforced from the host.
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

# Stops every process of the sandbox but the calling shell: the supervisor (PID 1 ignores
# it), the idle shims and this exec's own shim.
STOPALL='for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$p" = "$$" ] || kill -STOP "$p" 2>/dev/null; done'

# (a) The command stops its own shim, then runs on: --timeout still ends it, from the host.
t0=$(date +%s%N)
# (The pause lets the shim report the start first: see "Deadlines from the host" in
# docs/ARCHITECTURE.md for a shim stopped before it reports.)
timeout -k 5 30 "$AGENTCELL" exec --timeout 2 "$B" -- sh -c "sleep 0.3; $STOPALL; exec sleep 1000$MARK" \
	>"$AC_TMP/a.out" 2>"$AC_TMP/a.err"
rc=$?
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
# The parent of the sleep is its shim (the pattern never matches the killer's own shell).
KILLSHIM="for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline 2>/dev/null | grep -q '^sleep 300$MARK' && kill -9 \$(cut -d' ' -f4 \$p/stat); done; true"
check_ac "kill -9 the shim of a detached command from inside" exec --timeout 10 "$B2" -- sh -c "$KILLSHIM"
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
KILLSHIM2="for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline 2>/dev/null | grep -q '^sleep 2.0$MARK' && kill -9 \$(cut -d' ' -f4 \$p/stat); done; true"
check_ac "kill -9 the shim of a short detached command" exec --timeout 10 "$B2" -- sh -c "$KILLSHIM2"
wait_until 10 no_procs_matching "sleep 2.0$MARK"
check_eq "exec-status after it ended: unknown" "unknown" "$(ac exec-status "$X2" --json | jq -r .state)"
check_contains "... with a reason" "$(ac exec-status "$X2" --json | jq -r .error)" "shim was killed"
acx exec-kill "$X2"
check_rc "exec-kill of it fails: not running" 1

# A detached command whose shim the sandbox stopped: exec-kill still ends it.
X3=$(ac exec -d "$B2" -- sleep 301$MARK)
STOPSHIM="for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline 2>/dev/null | grep -q '^sleep 301$MARK' && kill -STOP \$(cut -d' ' -f4 \$p/stat); done; true"
check_ac "kill -STOP the shim of a detached command" exec --timeout 10 "$B2" -- sh -c "$STOPSHIM"
t0=$(date +%s%N)
check_ac "exec-kill of a command whose shim is stopped" exec-kill "$X3"
check_le "... in time (ms)" $((($(date +%s%N) - t0) / 1000000)) 10000
wait_until 5 no_procs_matching "sleep 301$MARK"
check_eq "... and the sleep is gone from the host" "" "$(procs_matching "sleep 301$MARK")"
check_eq "exec-status: failed, killed" "failed true" "$(ac exec-status "$X3" --json | jq -r '"\(.state) \(.killed)"')"

# An exec whose shim is killed under it returns at once with an error.
t0=$(date +%s%N)
timeout -k 5 30 "$AGENTCELL" exec "$B2" -- sh -c "sleep 0.3; kill -9 \$PPID; exec sleep 302$MARK" \
	>"$AC_TMP/d.out" 2>"$AC_TMP/d.err"
rc=$?
check_le "exec whose shim is killed returns promptly (ms)" $((($(date +%s%N) - t0) / 1000000)) 5000
wait_until 5 no_procs_matching "sleep 302$MARK"
check_eq "... and its command does not run on" "" "$(procs_matching "sleep 302$MARK")"
check_ne "... with an error" 0 "$rc"
check_contains "... that says so" "$(cat "$AC_TMP/d.err")" "shim"

# (c) again, with killed shims and stopped ones.
acx exec --timeout 3 "$B2" -- sh -c "$STOPALL"
NS=$(readlink "/proc/$(ac_supervisor_pid "$B2")/ns/pid")
t0=$(date +%s%N)
check_ac "stop $B2" stop "$B2"
check_le "... in time (ms)" $((($(date +%s%N) - t0) / 1000000)) 20000
check "... and nothing of it is left" pidns_empty "$NS"
check_ac "remove $B2" remove "$B2"
