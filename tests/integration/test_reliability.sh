#!/bin/bash
# Reliability: detached starts ordered with remove, write failures counted and reported,
# leftovers of kill -9 swept by gc and listed by doctor, the pids limit named, control
# bytes never echoed raw.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=rl-$ID
H=$AGENTCELL_HOME

wait_done() { # ID -> waits until the command is neither running nor starting (20 s at most)
	local s
	for _ in $(seq 200); do
		s=$(ac exec-status "$1" --json 2>/dev/null | jq -r .state)
		[ "$s" != running ] && [ "$s" != starting ] && break
		sleep 0.1
	done
	echo "$s"
}

# --- 4. exec --detach racing remove: the record belongs to a sandbox that exists ---------
check_ac "create $B" create "$B"
check_ac "start $B" start "$B"
# The start pauses inside its critical section (test hook); remove comes in meanwhile.
AGENTCELL_TEST_DETACH_PAUSE_MS=1500 timeout 30 "$AGENTCELL" exec -d "$B" -- sleep 30 \
	>"$AC_TMP/race.out" 2>"$AC_TMP/race.err" &
RACE=$!
sleep 0.5
acx remove "$B"
check_rc "remove during a detached start succeeds" 0
wait $RACE
check_ac "create $B again" create "$B"
check_ac "start $B again" start "$B"
check_eq "the new sandbox lists no command of the old one" "[]" "$(ac exec-list "$B" --json | jq -c .)"
check_eq "no record of the old sandbox is left" "" "$(ls "$H/run/$B.exec" 2>/dev/null)"
# A record planted for an earlier sandbox of the name (another uuid) is not listed.
X=$(ac exec -d "$B" -- true)
wait_done "$X" >/dev/null
OLD=$H/run/$B.exec/0123456789ab
cp -a "$H/run/$B.exec/$X" "$OLD"
jq -c '.id = "0123456789ab" | .sandbox_uuid = "01890000-0000-7000-8000-000000000000"' \
	"$H/run/$B.exec/$X/meta.json" >"$OLD/meta.json"
check_eq "a record of an earlier sandbox of the name is not listed" "$X" "$(ac exec-list "$B" --json | jq -r '.[].id' | tr '\n' ' ' | xargs)"
acx exec-status 0123456789ab
check_rc "exec-status of an earlier sandbox's record: not found" 1

# --- 5. a full home: lost output and audit lines are counted and reported -----------------
FULL=$H/run/$B.exec
mount -t tmpfs -o size=512k tmpfs "$FULL"
at_exit "umount -l '$FULL'"
X5=$(ac exec -d "$B" -- sh -c 'head -c 3000000 /dev/zero | tr "\0" x; echo gone >&2; exit 0')
check_match "a detached command starts on a nearly full home" '^[0-9a-f]{12}$' "$X5"
check_eq "it completes (exit 0)" completed "$(wait_done "$X5")"
ST=$(ac exec-status "$X5" --json)
check_gt "the status counts the failed writes" "$(jq -r '.write_errors // 0' <<<"$ST")" 0
check_contains "the status names the error" "$(jq -r '.write_error // ""' <<<"$ST")" "No space left"
check_gt "the status counts the lost stdout bytes" "$(jq -r '.lost_stdout // 0' <<<"$ST")" 2000000
check_eq "and the lost stderr bytes" 5 "$(jq -r '.lost_stderr // 0' <<<"$ST")"
check_contains "exec-status shows it" "$(ac exec-status "$X5")" "write_errors"
acx exec-logs "$X5"
check_contains "exec-logs warns that the log is incomplete" "$ERR" "this log is incomplete"
acx exec -d "$B" -- true
check_rc "a detached start on a full home fails" 1
check_contains "and says why" "$ERR" "No space left"
check_eq "and leaves no half-made record" 0 "$(find "$FULL" -mindepth 1 -maxdepth 1 -newer "$AC_TMP/race.out" -name '*' ! -name "$X5" | wc -l)"
umount "$FULL"

# The audit log on a full file system: a bind mount of a file on a full tmpfs.
AF=$AC_TMP/auditfs
mkdir -p "$AF"
mount -t tmpfs -o size=8k tmpfs "$AF"
at_exit "umount -l '$H/audit.jsonl'; umount -l '$AF'"
touch "$AF/audit.jsonl" "$H/audit.jsonl"
head -c 65536 /dev/zero >"$AF/fill" 2>/dev/null
mount --bind "$AF/audit.jsonl" "$H/audit.jsonl"
acx exec "$B" -- true
check_rc "an exec still runs when its audit line cannot be written" 0
check_contains "the CLI warns about the lost audit line" "$ERR" "audit record could not be written"
acx exec "$B" -- true
acx doctor
check_match "doctor reports the lost audit records" "audit log +2 records could not be written since" "$OUT"
umount "$H/audit.jsonl"
umount "$AF"

# --- 6. leftovers of kill -9: listed by doctor, removed by gc, nothing valid removed ------
true & DEAD=$!
wait $DEAD
HEX=00112233445566ff
echo '{"name":"ghost"}' >"$H/sandboxes/ghost.json.tmp.$DEAD.$HEX"
echo '{"name":"busy"}' >"$H/sandboxes/busy.json.tmp.$$.$HEX" # a live writer's
touch "$H/locks/gone-$ID.lock"
mkdir -p "$H/run/gone-$ID.exec/aaaaaaaaaaaa"
cp -a "$H/run/$B.exec/$X/." "$H/run/gone-$ID.exec/aaaaaaaaaaaa/"
# A real kill -9 of a detached start between its record and the hand-over (strace holds
# its connect to the supervisor).
if command -v strace >/dev/null; then
	strace -f -o /dev/null -e trace=connect -e inject=connect:delay_enter=5000000 \
		"$AGENTCELL" exec -d "$B" -- true >/dev/null 2>&1 &
	SPID=$!
	for _ in $(seq 50); do
		[ -n "$(find "$H/run/$B.exec" -mindepth 2 -name meta.json -newer "$AC_TMP/race.out" ! -path "*/$X/*" ! -path "*/0123456789ab/*" ! -path "*/$X5/*")" ] && break
		sleep 0.1
	done
	pkill -9 -P "$SPID" -x agentcell 2>/dev/null
	kill -9 "$(pgrep -P "$SPID" 2>/dev/null)" 2>/dev/null
	wait $SPID 2>/dev/null
	KILLED=$(ac exec-list "$B" --json | jq -r '.[] | select(.error // "" | test("killed before")) | .id')
	check_match "a start killed -9 midway is listed as failed, not running" '^[0-9a-f]{12}$' "$KILLED"
else
	KILLED=
	skip "a start killed -9 midway" "no strace"
fi
# A uid slot claim of this home's sandbox whose create was killed: no state, claimer dead.
SLOTS=/var/lib/agentcell/slots
SLOT=32700
while [ -e "$SLOTS/$SLOT" ] && [ $SLOT -lt 32760 ]; do SLOT=$((SLOT + 1)); done
printf '%s\n%s %s\n' "$H/sandboxes/ghost-$ID.json" "$DEAD" 12345 >"$SLOTS/$SLOT"
at_exit "rm -f '$SLOTS/$SLOT'"
# and one whose create still runs (claimer: this shell)
SLOT2=$((SLOT + 1))
while [ -e "$SLOTS/$SLOT2" ] && [ $SLOT2 -lt 32767 ]; do SLOT2=$((SLOT2 + 1)); done
printf '%s\n%s %s\n' "$H/sandboxes/making-$ID.json" "$$" "$(awk '{print $22}' /proc/$$/stat)" >"$SLOTS/$SLOT2"
at_exit "rm -f '$SLOTS/$SLOT2'"

acx doctor
DOC=$OUT
check_contains "doctor lists the dead writer's temp file" "$DOC" "ghost.json.tmp.$DEAD.$HEX"
check_contains "doctor lists the lock file of no sandbox" "$DOC" "gone-$ID.lock"
check_contains "doctor lists the records of no sandbox" "$DOC" "gone-$ID.exec/aaaaaaaaaaaa"
check_contains "doctor lists the record of an earlier sandbox" "$DOC" "0123456789ab"
[ -n "$KILLED" ] && check_contains "doctor lists the killed start's record" "$DOC" "$KILLED"
check_contains "doctor lists the stale slot claim" "$DOC" "$SLOTS/$SLOT:"
check_not_contains "doctor does not list the live writer's temp file" "$DOC" "busy.json.tmp"
check_not_contains "doctor does not list a claim whose create runs" "$DOC" "$SLOTS/$SLOT2:"

acx gc
check_rc "gc" 0
check_eq "gc removed the dead writer's temp file" no "$([ -e "$H/sandboxes/ghost.json.tmp.$DEAD.$HEX" ] && echo yes || echo no)"
check_eq "gc kept the live writer's temp file" yes "$([ -e "$H/sandboxes/busy.json.tmp.$$.$HEX" ] && echo yes || echo no)"
check_eq "gc removed the lock file of no sandbox" no "$([ -e "$H/locks/gone-$ID.lock" ] && echo yes || echo no)"
check_eq "gc kept the sandbox's own lock file" yes "$([ -e "$H/locks/$B.lock" ] && echo yes || echo no)"
check_eq "gc removed the records of no sandbox" no "$([ -e "$H/run/gone-$ID.exec" ] && echo yes || echo no)"
check_eq "gc removed the earlier sandbox's record" no "$([ -e "$OLD" ] && echo yes || echo no)"
[ -n "$KILLED" ] && check_eq "gc removed the killed start's record" no "$([ -e "$H/run/$B.exec/$KILLED" ] && echo yes || echo no)"
check_eq "gc kept the valid records" "$X" "$(ac exec-list "$B" --json | jq -r '.[].id' | tr '\n' ' ' | xargs)"
check_eq "gc removed the stale slot claim" no "$([ -e "$SLOTS/$SLOT" ] && echo yes || echo no)"
check_eq "gc kept the claim of a create in progress" yes "$([ -e "$SLOTS/$SLOT2" ] && echo yes || echo no)"
check_eq "gc kept the sandbox's slot claim" yes "$([ -e "$SLOTS/$(ac_json_field "$B" uid_slot)" ] && echo yes || echo no)"
check_eq "the sandbox still runs" running "$(ac_status "$B")"
check_contains "doctor: nothing left" "$(ac doctor)" "leftovers of killed runs"
rm -f "$H/sandboxes/busy.json.tmp.$$.$HEX" "$SLOTS/$SLOT2"

# A lock_and_load that loses the name to a remove leaves no lock file.
acx stop "nosuch-$ID"
check_eq "an operation on a missing name makes no lock file" no "$([ -e "$H/locks/nosuch-$ID.lock" ] && echo yes || echo no)"

# --- 7b. exec into a sandbox whose process limit is used up names the limit ---------------
P=rp-$ID
check_ac "create $P --pids 24" create "$P" --pids 24
check_ac "start $P" start "$P"
# Forks for ever (until the sandbox goes), so any pid freed is taken again at once.
ac exec -d "$P" -- "$PY" -c '
import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    except OSError:
        time.sleep(0.005)' >/dev/null
for _ in $(seq 20); do
	sleep 0.5
	acx exec "$P" -- true
	[ "$RC" != 0 ] && break
done
check_ne "exec into a fork-bombed sandbox fails" 0 "$RC"
check_contains "the error names the process limit" "$ERR" "process limit (24) was hit"
check_contains "the error names --pids" "$ERR" "--pids"
ac remove "$P" >/dev/null 2>&1 || ac stop "$P"

# --- 7c. control bytes from arguments are escaped in error messages ----------------------
acx exec $'bad\x1b[31mname' -- true
check_eq "no raw ESC on stderr (usage error)" 0 "$(printf '%s' "$ERR" | tr -cd '\033' | wc -c)"
check_contains "the ESC is shown as \\x1b" "$ERR" 'bad\x1b[31mname'
acx exec "$B" -- $'nosuch\x1b[2J\tprog'
check_eq "no raw ESC on stderr (library error)" 0 "$(printf '%s' "$ERR" | tr -cd '\033\t' | wc -c)"
check_contains "the ESC and tab are escaped" "$ERR" 'nosuch\x1b[2J\tprog'

ac remove "$B" >/dev/null 2>&1

