#!/usr/bin/env bash
# exec -t (terminal, size, resize on channel 4) and exec --detach (watcher, records, kill)
# on the Kubernetes backend, against the test API server (tests/k8s/fake_apiserver.py,
# whose pods run as native sandboxes: terminals, processes and exit codes are real).
#
# Environment (besides lib.sh's): KUBECTL, the kubectl binary (default: kubectl on PATH).
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes exec -t and --detach"
BOX=kx$(uniq_id)
POD=agentcell-$BOX
PTY=$AC_REPO/tests/integration/pty_run.py
check_ac "create and start a kubernetes sandbox" create "$BOX" --backend kubernetes
check_ac "start" start "$BOX"

# Processes of the pod whose command line holds $1 (seen by kubectl exec, not by us).
in_pod() { K exec "$POD" -- sh -c 'ps -eo args' 2>/dev/null | grep -F -- "$1" | grep -v -e grep -e 'ps -eo' || true; }
# A pty of ROWS COLS for agentcell ARGS; the output on one line (\r dropped).
on_pty() {
	local rows=$1 cols=$2 nrows=$3 ncols=$4
	shift 4
	"$PY" "$PTY" "$rows" "$cols" "$nrows" "$ncols" 60 -- "$AGENTCELL" "$@" 2>&1 | tr -d '\r' | tr '\n' ' '
}

# ---------------------------------------------------------------- exec -t
out=$(on_pty 30 100 30 100 exec -t "$BOX" -- sh -c 'test -t 0 && test -t 1 && echo TTY01; tty; stty size; exit 7')
check_match "exec -t: stdin and stdout are a terminal, its device, the host's size, exit 7" \
	'TTY01 /dev/pts/[0-9]+ 30 100 +EXIT 7' "$out"
out=$(on_pty 33 91 33 91 exec -t "$BOX" -- sh -c 'echo to-stderr >&2')
check_match "exec -t: stderr comes through the terminal" 'to-stderr +EXIT 0' "$out"
out=$(on_pty 30 100 41 123 exec -it "$BOX" -- sh -c 'stty size; echo READY; read x; stty size; exit 5')
check_match "exec -it: the size, then a resize of the host's terminal reaches the pod, exit 5" \
	'^30 100 READY +41 123 +EXIT 5' "$out"
# Without -i nothing is typed: the command waits for the size to change by itself.
out=$(on_pty 30 100 44 132 exec -t "$BOX" -- sh -c 'stty size; echo READY; i=0; while [ "$(stty size)" = "30 100" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; stty size')
check_match "exec -t: a resize while the command runs reaches the pod (SIGWINCH, channel 4)" \
	'^30 100 READY +44 132 +EXIT 0' "$out"
out=$("$PY" "$PTY" 24 80 24 80 60 -- sh -c "printf 'hello\\nworld\\n' | $AGENTCELL exec -it $BOX -- sh -c 'read a; read b; echo \"got:\$a:\$b\"'" 2>&1 | tr -d '\r' | tr '\n' ' ')
check_match "exec -it: input passes to the command's terminal" 'got:hello:world' "$out"
acx exec -t --env FOO=bar -w /tmp "$BOX" -- sh -c 'echo "$FOO $(pwd)"; test -t 1 && echo tty'
check_eq "exec -t with --env and -w (no host terminal: the command still has one)" "bar /tmp
tty" "$(tr -d '\r' <<<"$OUT")"
acx exec -t "$BOX" -- no-such-command-here
check_rc "exec -t: a missing command exits 127" 127
MARK=$RANDOM$RANDOM
out=$(on_pty 24 80 24 80 exec -t --timeout 2 "$BOX" -- sh -c "sleep 30$MARK & setsid sleep 31$MARK & sleep 32$MARK; echo never")
check_match "exec -t --timeout: exit 124" 'EXIT 124' "$out"
check_not_contains "exec -t --timeout: the command did not finish" "$out" "never"
check_eq "exec -t --timeout: nothing it started is left in the pod (setsid included)" "" "$(in_pod "$MARK")"

# ---------------------------------------------------------------- exec --detach
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

acx exec --detach "$BOX" -- sh -c 'echo out1; echo err1 >&2; sleep 1; echo out2; exit 3'
X1=$OUT
check_match "exec --detach prints an id" '^[0-9a-f]{12}$' "$X1"
check_eq "exec-status: running while it runs" running "$(status "$X1" .state)"
check_eq "... its watcher alive: not marked lost, no error" "null null" "$(status "$X1" '"\(.shim_lost) \(.error)"')"
check_contains "exec-list NAME shows it" "$(ac exec-list "$BOX")" "$X1"
check_contains "exec-list (all) shows it" "$(ac exec-list)" "$X1"
check_eq "the command ends after the CLI exited: failed" failed "$(wait_state "$X1")"
check_eq "exec-status: the real exit code (status channel)" 3 "$(status "$X1" .exit_code)"
check_match "exec-status: started_at and finished_at" '^[0-9]{4}-.* [0-9]{4}-' "$(status "$X1" '"\(.started_at) \(.finished_at)"')"
check_eq "exec-logs: stdout" "$(printf 'out1\nout2')" "$(ac exec-logs "$X1")"
check_eq "exec-logs --stderr: stderr" err1 "$(ac exec-logs "$X1" --stderr)"
X2=$(ac exec -d --env A=b -w /tmp "$BOX" -- sh -c 'echo "$A $(pwd)"')
check_eq "a command that exits 0 is completed" completed "$(wait_state "$X2")"
check_eq "... with its --env and -w" "b /tmp" "$(ac exec-logs "$X2")"

MARK=$RANDOM$RANDOM
X3=$(ac exec -d "$BOX" -- sh -c "sleep 40$MARK & setsid sleep 41$MARK & while true; do echo tick; sleep 0.2; done")
wait_until 30 test -n "$(in_pod "41$MARK")"
check_ne "the detached command runs in the pod" "" "$(in_pod "$MARK")"
check_ac "exec-kill" exec-kill "$X3"
check_eq "exec-kill: failed, marked killed" "failed true" "$(wait_state "$X3") $(status "$X3" .killed)"
check_eq "exec-kill: nothing of it is left in the pod (setsid included)" "" "$(in_pod "$MARK")"
check_contains "exec-kill: its output was captured until then" "$(ac exec-logs "$X3")" "tick"
acx exec-kill "$X3"
check_rc "exec-kill of a finished command fails" 1

X4=$(ac exec -d --timeout 1 "$BOX" -- sleep 30)
check_eq "detached --timeout: failed" failed "$(wait_state "$X4")"
check_eq "detached --timeout: exit code 124, timed_out" "124 true" "$(status "$X4" '"\(.exit_code) \(.timed_out)"')"
X5=$(ac exec -d "$BOX" -- no-such-command-here)
check_eq "detached: a missing command exits 127" "failed 127" "$(wait_state "$X5") $(status "$X5" .exit_code)"
acx exec -d -t "$BOX" -- true
check_rc "detached -t is refused (usage error)" 2

# The watcher killed -9: the command runs on in the pod; the record says so; exec-kill
# still stops it through the kill handle.
MARK=$RANDOM$RANDOM
X6=$(ac exec -d "$BOX" -- sh -c "sleep 50$MARK; echo late")
wait_until 30 test -n "$(in_pod "50$MARK")"
W=$(jq -r .shim "$AGENTCELL_HOME/run/$BOX.exec/$X6/status")
check_match "the record names the watcher, a host process" '^[0-9]+$' "$W"
check_contains "the watcher runs on the host as agentcell-k8s-watch" "$(tr '\0' ' ' <"/proc/$W/cmdline" 2>/dev/null)" "agentcell-k8s-watch"
check_match "the record keeps the kill handle" '^[0-9a-f-]{36}$' "$(jq -r .handle "$AGENTCELL_HOME/run/$BOX.exec/$X6/status")"
kill -9 "$W"
wait_until 10 test ! -e "/proc/$W"
check_eq "watcher killed: still running (the command runs on), marked lost" "running true" "$(status "$X6" '"\(.state) \(.shim_lost)"')"
check_contains "... and says so" "$(status "$X6" .error)" "runs on"
check_ne "the command indeed runs on in the pod" "" "$(in_pod "50$MARK")"
check_ac "exec-kill without a watcher" exec-kill "$X6"
check_eq "exec-kill without a watcher: failed, killed, 137" "failed true 137" "$(status "$X6" '"\(.state) \(.killed) \(.exit_code)"')"
check_eq "exec-kill without a watcher: nothing is left in the pod" "" "$(in_pod "$MARK")"
# A watcher killed after its command ended in the pod: the end is unknown, not running.
MARK=$RANDOM$RANDOM
X7=$(ac exec -d "$BOX" -- sh -c "exec sleep 60$MARK")
wait_until 30 test -n "$(in_pod "60$MARK")"
W=$(jq -r .shim "$AGENTCELL_HOME/run/$BOX.exec/$X7/status")
kill -STOP "$W"
K exec "$POD" -- sh -c "pkill -f 60$MARK" >/dev/null 2>&1
wait_until 30 test -z "$(in_pod "60$MARK")"
kill -9 "$W"
wait_until 10 test ! -e "/proc/$W"
check_eq "watcher and command gone: state unknown" unknown "$(status "$X7" .state)"

# A stopped sandbox (no pod) takes no detached command, and no record is left of it.
check_ac "create a second sandbox, not started" create "${BOX}s" --backend kubernetes
acx exec -d "${BOX}s" -- true
check_rc "exec --detach on a stopped sandbox: exit 1" 1
check_contains "... saying it is not running" "$ERR" "is not running"
check_eq "... no record of it" 0 "$(ac exec-list "${BOX}s" --json | jq length)"
check_ac "remove the second sandbox" remove "${BOX}s"

# Records go with the sandbox.
X8=$(ac exec -d "$BOX" -- sleep 100)
check "the record exists" test -d "$AGENTCELL_HOME/run/$BOX.exec/$X8"
check_ac "remove" remove "$BOX"
check "remove deletes the records" test ! -e "$AGENTCELL_HOME/run/$BOX.exec"
acx exec-status "$X8"
check_rc "exec-status of a removed sandbox's command: not found" 1
check "no watcher is left on the host" wait_until 30 no_procs_matching agentcell-k8s-watch
check_eq "nothing is left in the cluster" "" "$(K get pods,networkpolicies -o name 2>/dev/null | tr '\n' ' ')"

