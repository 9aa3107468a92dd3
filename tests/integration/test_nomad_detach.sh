#!/usr/bin/env bash
# exec --detach on the Nomad backend (a watcher on the host holds the allocation exec
# stream: records, logs, exit codes, exec-kill, a lost watcher, remove) against the test
# Nomad agent (tests/nomad/fake_nomad.py, whose allocations run as native sandboxes:
# processes and exit codes are real, and the task's processes are looked at there with ps).
source "$(dirname "$0")/lib.sh"
ac_setup
# The agent's home (its allocations' sandboxes), ours to look into; removed after the agent.
NOMAD_HOME=$(mktemp -d /tmp/agentcell-it-nomadhome.XXXXXX)
ac_nomad_fake "nomad exec --detach" "$NOMAD_HOME"
at_exit "rm -rf --one-file-system $NOMAD_HOME"
BOX=nd$(uniq_id)
check_ac "create a nomad sandbox" create "$BOX" --backend nomad
check_ac "start" start "$BOX"

# GET from the agent (no ACLs, no TLS here): the body; nomad_code: the HTTP status.
nomad_get() { curl -s --max-time 60 "$NOMAD_ADDR$1"; }
nomad_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$NOMAD_ADDR$1"; }
# The allocation's sandbox in the agent's home, from the running allocation of the job.
task_sandbox() {
	local a
	a=$(nomad_get "/v1/job/agentcell-$BOX/allocations" | jq -r '[.[] | select(.ClientStatus == "running")][0].ID // empty')
	[ -n "$a" ] && printf 'nomad-%s' "$(tr -d - <<<"$a" | head -c 20)"
}
TASK_SB=$(task_sandbox)
check_match "the job's allocation runs as a sandbox of the agent" '^nomad-[0-9a-f]{20}$' "$TASK_SB"
# Processes of the task whose command line holds $1 (seen by ps in the task, not by us).
in_task() { AGENTCELL_HOME=$NOMAD_HOME timeout -k 5 60 "$AGENTCELL" exec "$TASK_SB" -- ps -eo args 2>/dev/null | grep -F -- "$1" | grep -v -e grep -e 'ps -eo' || true; }
task_has() { [ -n "$(in_task "$1")" ]; }
task_lacks() { [ -z "$(in_task "$1")" ]; }
wait_state() { # ID -> waits until the state is not running (60 s at most), prints it
	local s
	for _ in $(seq 600); do
		s=$(ac exec-status "$1" --json 2>/dev/null | jq -r .state)
		[ "$s" != running ] && [ "$s" != starting ] && break
		sleep 0.1
	done
	echo "$s"
}
status() { ac exec-status "$1" --json 2>/dev/null | jq -r "$2"; }
# Watchers of this test's home (other tests may run watchers of their own meanwhile).
my_watchers() {
	local p
	for p in $(pgrep -f agentcell-nomad-watch); do
		grep -qzx "AGENTCELL_HOME=$AGENTCELL_HOME" "/proc/$p/environ" 2>/dev/null && echo "$p"
	done
}
no_watchers() { [ -z "$(my_watchers)" ]; }
record() { jq -r "$2" "$AGENTCELL_HOME/run/$BOX.exec/$1/status"; }

# ---------------------------------------------------------------- records, logs, exit codes
acx exec --detach "$BOX" -- sh -c 'echo out1; echo err1 >&2; sleep 1; echo out2; exit 3'
X1=$OUT
check_match "exec --detach prints an id" '^[0-9a-f]{12}$' "$X1"
check_eq "exec-status: running while it runs" running "$(status "$X1" .state)"
check_eq "... its watcher alive: not marked lost, no error" "null null" "$(status "$X1" '"\(.shim_lost) \(.error)"')"
check_contains "exec-list NAME shows it" "$(ac exec-list "$BOX")" "$X1"
check_contains "exec-list (all) shows it" "$(ac exec-list)" "$X1"
check_eq "the command ends after the CLI exited: failed" failed "$(wait_state "$X1")"
check_eq "exec-status: the real exit code (the exited frame's)" 3 "$(status "$X1" .exit_code)"
check_match "exec-status: started_at and finished_at" '^[0-9]{4}-.* [0-9]{4}-' "$(status "$X1" '"\(.started_at) \(.finished_at)"')"
check_eq "exec-logs: stdout, exactly (nothing of the watcher's start marker)" "$(printf 'out1\nout2')" "$(ac exec-logs "$X1")"
check_eq "exec-logs --stderr: stderr" err1 "$(ac exec-logs "$X1" --stderr)"
check_eq "the record names the allocation it ran in" \
	"$(nomad_get "/v1/job/agentcell-$BOX/allocations" | jq -r '[.[] | select(.ClientStatus == "running")][0].ID')" \
	"$(record "$X1" .alloc)"
X2=$(ac exec -d --env A=b -w /tmp "$BOX" -- sh -c 'echo "$A $(pwd)"')
check_eq "a command that exits 0 is completed" completed "$(wait_state "$X2")"
check_eq "... with its --env and -w" "b /tmp" "$(ac exec-logs "$X2")"
check_eq "... exit code 0, not killed, not timed out" "0 false false" "$(status "$X2" '"\(.exit_code) \(.killed) \(.timed_out)"')"
X2b=$(ac exec -d "$BOX" -- sh -c 'printf "\036x"; printf "\036" >&2')
check_eq "a command's own first byte is not taken for the marker" completed "$(wait_state "$X2b")"
check_eq "... stdout as written" "$(printf '\036x')" "$(ac exec-logs "$X2b")"
check_eq "... stderr as written" "$(printf '\036')" "$(ac exec-logs "$X2b" --stderr)"
X2c=$(ac exec -d "$BOX" -- sh -c 'echo only-err >&2; exit 9')
check_eq "a command with no stdout: failed, 9" "failed 9" "$(wait_state "$X2c") $(status "$X2c" .exit_code)"
check_eq "... its stderr" only-err "$(ac exec-logs "$X2c" --stderr)"
check_eq "... and an empty stdout log" "" "$(ac exec-logs "$X2c")"

# More output than a log keeps (8 MiB): the newest half stays, the rest is counted.
X9=$(ac exec -d "$BOX" -- sh -c 'i=0; while [ $i -lt 10 ]; do head -c 1048576 /dev/zero | tr "\0" "$i"; i=$((i+1)); done; echo END')
check_eq "a command with 10 MiB of output completes" completed "$(wait_state "$X9")"
LOG=$AGENTCELL_HOME/run/$BOX.exec/$X9/stdout
check_le "its log stays under 8 MiB" "$(stat -c %s "$LOG")" 8388608
check_gt "... the dropped bytes are counted" "$(status "$X9" .dropped_stdout)" 0
check_eq "... the kept and the dropped bytes add up to all of them" $((10 * 1048576 + 4)) \
	$(($(stat -c %s "$LOG") + $(status "$X9" .dropped_stdout)))
check_eq "... and the newest output is kept, in order" "9999END" "$(tail -c 8 "$LOG" | tr -d '\n')"

# ---------------------------------------------------------------- exec-kill
MARK=$RANDOM$RANDOM
X3=$(ac exec -d "$BOX" -- sh -c "sleep 40$MARK & setsid sleep 41$MARK & while true; do echo tick; sleep 0.2; done")
wait_until 30 task_has "41$MARK"
check_ne "the detached command runs in the task" "" "$(in_task "40$MARK")"
W=$(record "$X3" .shim)
check_contains "its watcher runs on the host as agentcell-nomad-watch" "$(tr '\0' ' ' <"/proc/$W/cmdline" 2>/dev/null)" "agentcell-nomad-watch"
check_ac "exec-kill" exec-kill "$X3"
check_eq "exec-kill: failed, marked killed" "failed true" "$(wait_state "$X3") $(status "$X3" .killed)"
check_eq "exec-kill: nothing of it is left in the task (setsid included)" "" "$(in_task "$MARK")"
check_contains "exec-kill: its output was captured until then" "$(ac exec-logs "$X3")" "tick"
check "exec-kill: its watcher has exited" wait_until 10 test ! -e "/proc/$W"
acx exec-kill "$X3"
check_rc "exec-kill of a finished command fails" 1

MARK=$RANDOM$RANDOM
X4=$(ac exec -d --timeout 1 "$BOX" -- sh -c "sleep 30$MARK; echo never")
check_eq "detached --timeout: failed" failed "$(wait_state "$X4")"
check_eq "detached --timeout: exit code 124, timed_out" "124 true" "$(status "$X4" '"\(.exit_code) \(.timed_out)"')"
check_eq "detached --timeout: the command is killed in the task" "" "$(in_task "30$MARK")"
# A deadline before the start marker came: the command may have started, it times out as
# any. (One that starts only after the killer ran is the agent's to end with the stream:
# the test agent does, as with a lost watcher below.)
MARK=$RANDOM$RANDOM
X4b=$(ac exec -d --timeout 0.01 "$BOX" -- sleep 31$MARK)
check_match "detached --timeout shorter than the start: still started (an id)" '^[0-9a-f]{12}$' "$X4b"
check_eq "... failed, 124, timed_out" "failed 124 true" "$(wait_state "$X4b") $(status "$X4b" '"\(.exit_code) \(.timed_out)"')"
check "... nothing of it is left in the task" wait_until 30 task_lacks "31$MARK"
X5=$(ac exec -d "$BOX" -- no-such-command-here)
check_eq "detached: a missing command exits 127" "failed 127" "$(wait_state "$X5") $(status "$X5" .exit_code)"
acx exec -d -t "$BOX" -- true
check_rc "detached -t is refused (usage error)" 2
acx exec -d -u nobody "$BOX" -- true
check_rc "detached -u (not the task's user) is refused" 1
check_contains "... saying why" "$ERR" "task's user"

# ---------------------------------------------------------------- a lost watcher
# A stopped watcher records nothing: exec-kill kills it and runs the killer from the host.
MARK=$RANDOM$RANDOM
X6=$(ac exec -d "$BOX" -- sh -c "sleep 50$MARK & setsid sleep 51$MARK; echo late")
wait_until 30 task_has "51$MARK"
W=$(record "$X6" .shim)
check_match "the record names the watcher, a host process" '^[0-9]+$' "$W"
check_match "the record keeps the kill handle" '^[0-9a-f-]{36}$' "$(record "$X6" .handle)"
kill -STOP "$W"
check_eq "a stopped watcher: still running" running "$(status "$X6" .state)"
check_ac "exec-kill with a stopped watcher" exec-kill "$X6"
check_eq "... failed, killed, 137" "failed true 137" "$(status "$X6" '"\(.state) \(.killed) \(.exit_code)"')"
check_eq "... nothing of it is left in the task (setsid included)" "" "$(in_task "$MARK")"
check "... the watcher is gone" wait_until 10 test ! -e "/proc/$W"
check_eq "... nothing was logged after the kill" "" "$(ac exec-logs "$X6")"

# A watcher that is no longer the recorded one (the host restarted, its pid was reused:
# here the record's start time is changed while the watcher is stopped) while the command
# runs on: the task is asked with the handle's probe; exec-kill runs the killer from here.
MARK=$RANDOM$RANDOM
X7=$(ac exec -d "$BOX" -- sh -c "sleep 60$MARK; echo late")
wait_until 30 task_has "60$MARK"
W=$(record "$X7" .shim)
kill -STOP "$W"
NEW=$(jq -c '.shim_start = 1' "$AGENTCELL_HOME/run/$BOX.exec/$X7/status")
printf '%-511s\n' "$NEW" 1<>"$AGENTCELL_HOME/run/$BOX.exec/$X7/status"
check_eq "watcher lost, the command runs on: running, marked lost" "running true" "$(status "$X7" '"\(.state) \(.shim_lost)"')"
check_contains "... and says so" "$(status "$X7" .error)" "runs on"
check_ne "the command indeed runs on in the task" "" "$(in_task "60$MARK")"
check_ac "exec-kill without a watcher" exec-kill "$X7"
check_eq "exec-kill without a watcher: failed, killed, 137" "failed true 137" "$(status "$X7" '"\(.state) \(.killed) \(.exit_code)"')"
check_eq "exec-kill without a watcher: nothing is left in the task" "" "$(in_task "$MARK")"
kill -9 "$W"
wait_until 10 test ! -e "/proc/$W"
check_eq "... and the record stays so when the old watcher goes" "failed true 137" "$(status "$X7" '"\(.state) \(.killed) \(.exit_code)"')"

# The watcher killed -9: its stream goes. The test agent then ends the command as it ends
# any exec whose client went away (a real agent may let it run on: the case above); the
# task is asked, the command is not there: the end is unknown, not running.
MARK=$RANDOM$RANDOM
X10=$(ac exec -d "$BOX" -- sh -c "exec sleep 70$MARK")
wait_until 30 task_has "70$MARK"
W=$(record "$X10" .shim)
kill -9 "$W"
wait_until 10 test ! -e "/proc/$W"
wait_until 30 task_lacks "70$MARK"
check_eq "watcher killed and command gone: state unknown" unknown "$(status "$X10" .state)"
check_contains "... and says so" "$(status "$X10" .error)" "has ended"
acx exec-kill "$X10"
check_rc "... exec-kill fails: it is not running" 1

# ---------------------------------------------------------------- refusals
# A stopped sandbox (no job) takes no detached command, and no record is left of it.
check_ac "create a second sandbox, not started" create "${BOX}s" --backend nomad
acx exec -d "${BOX}s" -- true
check_rc "exec --detach on a stopped sandbox: exit 1" 1
check_contains "... saying it is not running" "$ERR" "is not running"
check_eq "... no record of it" 0 "$(ac exec-list "${BOX}s" --json | jq length)"
check_ac "remove the second sandbox" remove "${BOX}s"

# ---------------------------------------------------------------- stop while a command runs
MARK=$RANDOM$RANDOM
XS=$(ac exec -d "$BOX" -- sleep 80$MARK)
wait_until 30 task_has "80$MARK"
W=$(record "$XS" .shim)
check_ac "stop while a detached command runs" stop "$BOX"
check_eq "... the command is failed" failed "$(wait_state "$XS")"
check "... its watcher has exited" wait_until 30 test ! -e "/proc/$W"
check_ac "start again" start "$BOX"
OLD_SB=$TASK_SB
TASK_SB=$(task_sandbox)
check_ne "... in a new allocation" "$OLD_SB" "$TASK_SB"
check_eq "the old command stays failed" failed "$(status "$XS" .state)"

# ---------------------------------------------------------------- remove while commands run
MARK=$RANDOM$RANDOM
X8=$(ac exec -d "$BOX" -- sleep 100$MARK)
X8b=$(ac exec -d "$BOX" -- sh -c "while true; do sleep 0.5; done; : $MARK")
check "the records exist" test -d "$AGENTCELL_HOME/run/$BOX.exec/$X8" -a -d "$AGENTCELL_HOME/run/$BOX.exec/$X8b"
wait_until 30 task_has "100$MARK"
check_eq "two watchers run" 2 "$(my_watchers | grep -c .)"
check_ac "remove" remove "$BOX"
check "remove deletes the records" test ! -e "$AGENTCELL_HOME/run/$BOX.exec"
acx exec-status "$X8"
check_rc "exec-status of a removed sandbox's command: not found" 1
check "no watcher is left on the host" wait_until 30 no_watchers
check_eq "the job is purged" 404 "$(nomad_code "/v1/job/agentcell-$BOX")"
check "the task's sandbox is gone from the agent" wait_until 60 sh -c "! AGENTCELL_HOME=$NOMAD_HOME $AGENTCELL list 2>/dev/null | grep -q $TASK_SB"

# ---------------------------------------------------------------- refused by the agent
# An agent that checks an exec after the WebSocket upgrade (as Nomad does since 2026) and a
# token without alloc-exec: the refusal comes as a close frame before any output; the
# watcher's start marker tells it from a started command, so exec --detach fails with the
# agent's reason (recorded as failed) and leaves no watcher.
ac_nomad_fake "an agent with ACLs that upgrades the exec WebSocket first" "" --acl --early-ws-upgrade
BOX=na$(uniq_id)
export NOMAD_TOKEN
NOMAD_TOKEN=$(cat "$NSTATE/mgmt-token")
check_ac "create with the management token" create "$BOX" --backend nomad
check_ac "start" start "$BOX"
NOMAD_TOKEN=$(cat "$NSTATE/ro-token") acx exec -d "$BOX" -- sh -c 'echo never'
check_rc "exec --detach with a read-only token fails" 1
check_contains "... with the agent's reason" "$ERR" "Permission denied"
check_contains "... naming the agent" "$ERR" "$NOMAD_ADDR"
check_eq "... recorded as failed, with the reason (exec-list tells what happened)" "1 failed true" \
	"$(ac exec-list "$BOX" --json | jq -r '"\(length) \(.[0].state) \(.[0].error | contains("Permission denied"))"')"
check "... no watcher is left" wait_until 30 no_watchers
check_eq "... and nothing ran in the task" "" "$(grep -F '"started"' "$NSTATE/execs.log" 2>/dev/null)"
X=$(NOMAD_TOKEN=$(cat "$NSTATE/write-token") ac exec -d "$BOX" -- sh -c 'echo allowed')
check_eq "with a token that may exec: completed" completed "$(wait_state "$X")"
check_eq "... its output" allowed "$(ac exec-logs "$X")"
check_ac "remove" remove "$BOX"
