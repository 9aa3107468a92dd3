#!/bin/bash
# Races made deterministic: strace's fault injection pauses one process at the exact
# system call where a race window opens, while the test does what a concurrent client
# would. Each check failed before its fix (issue 11).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
if ! command -v strace >/dev/null; then
	skip "races under strace" "strace is not installed"
	exit 0
fi

# strace_bg OUT RC ARGS...: runs `agentcell ARGS` under strace -f in the background;
# its exit status lands in RC once agentcell returns (strace itself may stay attached to
# a supervisor the command left running: the caller kills it). Sets STRACE_PID.
strace_bg() {
	local out=$1 rc=$2
	shift 2
	rm -f "$rc"
	# LeakSanitizer cannot run under ptrace (it would fail the sanitizer build's exit).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -o /dev/null "${STRACE_OPTS[@]}" \
		sh -c '"$0" "$@" >"'"$out"'" 2>&1; echo $? >"'"$rc"'"' "$AGENTCELL" "$@" </dev/null &
	STRACE_PID=$!
	bg_track "$STRACE_PID"
}
wait_file() { wait_until "$1" test -s "$2"; }

# ---------------------------------------------------------------- 1. a losing create
# Create A passes the existence check, reserves its uid slot, and is paused just before
# it takes the store's lock to write its state (the second flock of a create). Meanwhile
# B creates the same name, starts it and writes a file. A then loses the name: its undo
# must not delete B's writable layer, detached records or log.
D=dup-$ID
STRACE_OPTS=(-e trace=flock -e inject=flock:delay_enter=3000000:when=2)
strace_bg "$AC_TMP/a.out" "$AC_TMP/a.rc" create "$D"
sleep 0.5
check_ac "create $D (the winner) while the other create is paused" create "$D"
check_ac "start $D" start "$D"
check_ac "write a file into $D" exec "$D" -- sh -c 'echo precious >/root/keep'
check_ac "a detached command in $D" exec --detach "$D" -- sh -c 'echo detached-out; sleep 60'
wait_file 30 "$AC_TMP/a.rc"
check_eq "the paused create loses: exit status 1" 1 "$(cat "$AC_TMP/a.rc")"
check_contains "the paused create says the name is taken" "$(cat "$AC_TMP/a.out")" "already exists"
kill "$STRACE_PID" 2>/dev/null
check_ac "stop $D" stop "$D"
check_ac "start $D again" start "$D"
acx exec "$D" -- cat /root/keep
check_eq "the winner's file survived the loser's undo" precious "$OUT"
acx exec-list "$D"
check_contains "the winner's detached record survived" "$OUT" "sleep 60"
check_ac "remove $D" remove "$D"

# ---------------------------------------------------------------- 2. start's two reports
# The builder reports the supervisor's pid and the supervisor reports READY on one pipe.
# Delaying the return of every clone in the parent lets init report READY first: a start
# must wait for both reports instead of failing "the supervisor exited during start-up".
S=st-$ID
check_ac "create $S" create "$S"
# shellcheck disable=SC2054 # the commas belong to strace's syntax
STRACE_OPTS=(-e trace=clone,clone3 -e inject=clone:delay_exit=300000)
strace_bg "$AC_TMP/s.out" "$AC_TMP/s.rc" start "$S"
wait_file 60 "$AC_TMP/s.rc"
kill "$STRACE_PID" 2>/dev/null
check_eq "start with init faster than its parent succeeds" 0 "$(cat "$AC_TMP/s.rc")"
check_not_contains "no 'exited during start-up' error" "$(cat "$AC_TMP/s.out")" "exited during start-up"
acx exec "$S" -- echo alive
check_eq "the sandbox answers" alive "$OUT"
check_ac "remove $S" remove "$S"
