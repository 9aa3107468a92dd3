#!/bin/bash
# Special files against the file operations (attack review item 4). A FIFO a sandbox made
# hung `files cat`, `cp` in and out, `files put` and the files API for ever while they held
# the sandbox's lock, so `stop` and `remove` hung too; the sandbox's /dev/tty was the
# operator's own terminal. Every check here tries the attack under a 20 s limit: a refusal
# comes at once, reaching the limit is the hang.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=af-$ID
LIMIT=20

# tac ARGS...: agentcell ARGS under `timeout $LIMIT`; sets OUT, ERR, RC (124: it hung),
# ELAPSED_MS. stdin is the caller's.
tac() {
	local t0
	t0=$(date +%s%N)
	timeout -k 2 "$LIMIT" "$AGENTCELL" "$@" >"$AC_TMP/t.out" 2>"$AC_TMP/t.err"
	RC=$?
	ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
	OUT=$(cat "$AC_TMP/t.out")
	ERR=$(cat "$AC_TMP/t.err")
}

# refused "desc" NEEDLE...: the last tac answered in time, failed, and its one error line
# holds every NEEDLE (the path and its type).
refused() {
	local desc=$1 n
	shift
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		fail "$desc" "HUNG: killed after ${LIMIT}s" "$(acx_diag)"
		return
	fi
	if [ "$RC" -eq 0 ]; then
		fail "$desc" "it succeeded" "$(acx_diag)"
		return
	fi
	for n in "$@"; do
		if [[ "$ERR" != *"$n"* ]]; then
			fail "$desc" "the error does not say: $n" "$(acx_diag)"
			return
		fi
	done
	if [ "$(printf '%s' "$ERR" | grep -c '')" -ne 1 ]; then
		fail "$desc" "expected one error line" "$(acx_diag)"
		return
	fi
	pass "$desc"
}

check_ac "create $B" create "$B"
check_ac "start $B" start "$B"
ac exec "$B" -- sh -c 'mkfifo /tmp/f /root/f2 && mkdir /tmp/d && echo a >/tmp/d/a &&
	mkfifo /tmp/d/p && echo b >/tmp/d/b && echo slow >/root/slow.txt'
ac exec "$B" -- "$PY" -c 'import socket; socket.socket(socket.AF_UNIX).bind("/tmp/s")'
check_eq "the sandbox made a FIFO and a socket" "p s" \
	"$(ac exec "$B" -- sh -c 'test -p /tmp/f && printf "p "; test -S /tmp/s && echo s')"
printf 'in-%s\n' "$ID" >"$AC_TMP/in.txt"

# ------------------------------------------------------------------ FIFOs, CLI
tac files cat "$B" /tmp/f
refused "files cat of a FIFO is refused at once, naming it" /tmp/f "a FIFO"
check_rc "... as bad input (exit 2)" 2
tac cp "$B:/tmp/f" "$AC_TMP/out-f"
refused "cp out of a FIFO is refused at once" /tmp/f "a FIFO"
check "... and creates nothing on the host" test ! -e "$AC_TMP/out-f"
tac cp "$AC_TMP/in.txt" "$B:/tmp/f"
refused "cp in onto a FIFO is refused at once" /tmp/f "a FIFO"
tac files put "$B" /tmp/f <"$AC_TMP/in.txt"
refused "files put onto a FIFO is refused at once" /tmp/f "a FIFO"
check_eq "the FIFO is still a FIFO" p "$(ac exec "$B" -- sh -c 'test -p /tmp/f && echo p')"
tac files ls "$B" /tmp
check_match "files ls lists the FIFO (as other; a listing never opens it)" \
	'other +[0-9]+ +[0-9]+ f' "$OUT"

# A sandbox with a reader on its FIFO: the write side's open would succeed at once; the
# type check after the open refuses it all the same.
ac exec --detach "$B" -- sh -c 'mkfifo /tmp/rf; while :; do cat /tmp/rf >/dev/null; done' >/dev/null
sleep 0.3
tac files put "$B" /tmp/rf <"$AC_TMP/in.txt"
refused "files put onto a FIFO with a reader is refused" /tmp/rf "a FIFO"

# ------------------------------------------------------------------ directories with FIFOs
tac cp "$B:/tmp/d" "$AC_TMP/dout"
if [ "$RC" -eq 0 ]; then
	pass "cp out of a directory holding a FIFO completes"
else
	fail "cp out of a directory holding a FIFO completes" "$(acx_diag)"
fi
check_eq "... with its regular files" "a b" "$(cat "$AC_TMP/dout/a" "$AC_TMP/dout/b" | xargs)"
check "... and the FIFO skipped" test ! -e "$AC_TMP/dout/p"
mkdir -p "$AC_TMP/hdir"
echo h >"$AC_TMP/hdir/h.txt"
mkfifo "$AC_TMP/hdir/hp"
tac cp "$AC_TMP/hdir" "$B:/tmp/hdir"
check_eq "cp in of a host directory holding a FIFO completes" 0 "$RC"
check_eq "... the FIFO skipped" "h.txt" "$(ac exec "$B" -- ls /tmp/hdir | xargs)"
tac cp "$AC_TMP/hdir/hp" "$B:/tmp/x"
refused "cp in of a host FIFO itself is refused" hp "a FIFO"

# ------------------------------------------------------------------ devices and sockets
for dev in /dev/tty /dev/null /dev/zero; do
	tac files cat "$B" "$dev"
	refused "files cat $dev is refused" "$dev" "a character device"
	tac cp "$B:$dev" "$AC_TMP/out-dev"
	refused "cp out of $dev is refused" "$dev" "a character device"
	tac cp "$AC_TMP/in.txt" "$B:$dev"
	refused "cp in onto $dev is refused" "$dev" "a character device"
	tac files put "$B" "$dev" <"$AC_TMP/in.txt"
	refused "files put onto $dev is refused" "$dev" "a character device"
done
check "cp out of a device creates nothing on the host" test ! -e "$AC_TMP/out-dev"
check_eq "the sandbox's /dev/null keeps its mode" 666 "$(ac exec "$B" -- stat -c %a /dev/null)"
tac files cat "$B" /tmp/s
refused "files cat of a unix socket is refused" /tmp/s "a socket"
tac cp "$B:/tmp/s" "$AC_TMP/out-s"
refused "cp out of a unix socket is refused" /tmp/s "a socket"
tac cp "$AC_TMP/in.txt" "$B:/tmp/s"
refused "cp in onto a unix socket is refused" /tmp/s "a socket"
tac files put "$B" /tmp/s <"$AC_TMP/in.txt"
refused "files put onto a unix socket is refused" /tmp/s "a socket"

# /dev/tty in the sandbox is the opener's terminal: with one, files put and cp in wrote
# there. script(1) gives the CLI a terminal and records what reaches it.
MARK="tty-marker-$ID"
printf '%s\n' "$MARK" >"$AC_TMP/marker"
script -qec "timeout -k 2 $LIMIT $AGENTCELL files put $B /dev/tty <$AC_TMP/marker" \
	"$AC_TMP/typescript1" >/dev/null 2>&1 </dev/null
script -qec "timeout -k 2 $LIMIT $AGENTCELL cp $AC_TMP/marker $B:/dev/tty" \
	"$AC_TMP/typescript2" >/dev/null 2>&1 </dev/null
check_contains "with a terminal, files put onto /dev/tty is refused" \
	"$(cat "$AC_TMP/typescript1")" "a character device"
check_not_contains "... and nothing reaches the operator's terminal" \
	"$(cat "$AC_TMP/typescript1")" "$MARK"
check_contains "with a terminal, cp in onto /dev/tty is refused" \
	"$(cat "$AC_TMP/typescript2")" "a character device"
check_not_contains "... and nothing reaches the operator's terminal" \
	"$(cat "$AC_TMP/typescript2")" "$MARK"

# ------------------------------------------------------------------ check-then-open race
# The sandbox swaps /tmp/race between a regular file and a FIFO (rename: the name never
# goes away). Whatever an operation sees, it answers: content or a refusal, never a hang.
ac exec --detach "$B" -- sh -c 'while :; do echo x >/tmp/race.r; mv -f /tmp/race.r /tmp/race;
	rm -f /tmp/race.p; mkfifo /tmp/race.p; mv -f /tmp/race.p /tmp/race; done' >/dev/null
sleep 0.3
hung=0 odd=0 got=0 ref=0
for i in $(seq 1 30); do
	case $((i % 3)) in
	0) tac files cat "$B" /tmp/race ;;
	1) tac cp "$B:/tmp/race" "$AC_TMP/race-out" ;;
	2) tac files put "$B" /tmp/race <"$AC_TMP/in.txt" ;;
	esac
	if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
		hung=$((hung + 1))
		break
	elif [ "$RC" -eq 0 ]; then
		got=$((got + 1))
	elif [[ "$ERR" == *"a FIFO"* || "$ERR" == *"no such file"* || "$ERR" == *"cannot open"* ]]; then
		ref=$((ref + 1))
	else
		odd=$((odd + 1))
		echo "# unexpected answer: $ERR"
	fi
done
check_eq "a file swapped for a FIFO under the operation never hangs it" 0 "$hung"
check_eq "... every answer is the content or a refusal ($got read/written, $ref refused)" 0 "$odd"

# ------------------------------------------------------------------ the HTTP API
: >"$AC_TMP/srv.err"
env -u AGENTCELL_API_KEY -u AGENTKERNEL_API_KEY \
	setsid "$AGENTCELL" serve --port 0 >"$AC_TMP/srv.out" 2>"$AC_TMP/srv.err" </dev/null &
SRV_PID=$!
bg_track "$SRV_PID"
PORT=
for _ in $(seq 1 200); do
	PORT=$(sed -n 's/.*serving the API on http:\/\/.*:\([0-9]*\) .*/\1/p' "$AC_TMP/srv.err" | head -1)
	[ -n "$PORT" ] && break
	sleep 0.05
done
if [ -z "$PORT" ]; then
	fail "serve starts" "$(cat "$AC_TMP/srv.err")"
else
	URL=http://127.0.0.1:$PORT
	# api METHOD PATH [BODY]: sets CODE (000: no answer within $LIMIT s) and BODY.
	api() {
		local args=(-s -o "$AC_TMP/api.out" -w '%{http_code}' --max-time "$LIMIT" -X "$1")
		[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
		CODE=$(curl "${args[@]}" "$URL$2")
		BODY=$(cat "$AC_TMP/api.out" 2>/dev/null)
	}
	api GET "/sandboxes/$B/files/tmp/f"
	check_eq "API GET of a FIFO answers 400 at once (000: it hung)" 400 "$CODE"
	check_contains "... naming the FIFO" "$BODY" "'/tmp/f' is a FIFO"
	api PUT "/sandboxes/$B/files/tmp/f" '{"content":"x"}'
	check_eq "API PUT onto a FIFO answers 400 at once" 400 "$CODE"
	check_contains "... naming the FIFO" "$BODY" "'/tmp/f' is a FIFO"
	api POST "/sandboxes/$B/files" '{"files":{"/tmp/ok.txt":"y","/tmp/f":"x"}}'
	check_eq "API batch write onto a FIFO answers 400 at once" 400 "$CODE"
	check_contains "... naming the FIFO" "$BODY" "/tmp/f"
	api GET "/sandboxes/$B/files/tmp/s"
	check_eq "API GET of a unix socket answers 400" 400 "$CODE"
	api GET "/sandboxes/$B/files/tmp/race"
	check_ne "API GET of the swapping file answers" 000 "$CODE"
	tac files ls "$B" /tmp
	check_eq "the sandbox's lock is free after the API requests" 0 "$RC"
	kill -TERM "$SRV_PID" 2>/dev/null
	for _ in $(seq 1 300); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
	check "the server stops on SIGTERM with nothing in flight" sh -c "! kill -0 $SRV_PID 2>/dev/null"
	check_eq "no sanitizer report in the server's stderr" "" \
		"$(grep -E 'Sanitizer|runtime error:' "$AC_TMP/srv.err")"
fi

# ------------------------------------------------------------------ deadline, signals, stop
# A slow but legal operation: the host destination is a FIFO nobody reads (the caller's
# own choice, as with cp), so the copy waits until something ends it.
mkfifo "$AC_TMP/hostfifo"
AGENTCELL_FILES_TIMEOUT=2 tac cp "$B:/root/slow.txt" "$AC_TMP/hostfifo"
if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] && [ "$ELAPSED_MS" -ge 1500 ] &&
	[ "$ELAPSED_MS" -lt 10000 ]; then
	pass "AGENTCELL_FILES_TIMEOUT=2: a blocked copy ends after its deadline (${ELAPSED_MS} ms)"
else
	fail "AGENTCELL_FILES_TIMEOUT=2: a blocked copy ends after its deadline" "$(acx_diag)" "elapsed: $ELAPSED_MS ms"
fi
check_contains "... saying so" "$ERR" "moved no data for 2 s"

# The deadline is one of progress: a copy that keeps moving bytes outlives it. The reader
# takes 64 KiB every 0.3 s, so 1 MiB takes about 5 s, with a 1 s deadline.
mkfifo "$AC_TMP/slowreader"
ac exec "$B" -- sh -c 'head -c 1048576 /dev/urandom >/root/big.bin'
"$PY" -c 'import sys, time
f = open(sys.argv[1], "rb"); n = 0
while True:
    b = f.read(65536)
    if not b: break
    n += len(b); time.sleep(0.3)
print(n)' "$AC_TMP/slowreader" >"$AC_TMP/slowreader.n" &
bg_track $!
AGENTCELL_FILES_TIMEOUT=1 tac cp "$B:/root/big.bin" "$AC_TMP/slowreader"
check_eq "AGENTCELL_FILES_TIMEOUT=1: a slow copy that progresses completes (${ELAPSED_MS} ms)" 0 "$RC"
wait_until 10 test -s "$AC_TMP/slowreader.n"
check_eq "... every byte arrived" 1048576 "$(cat "$AC_TMP/slowreader.n")"

# slow_cp TAG: starts `cp $B:/root/slow.txt hostfifo` in the background; SLOW_RC is the
# file the CLI's exit status goes to.
slow_cp() {
	SLOW_RC=$AC_TMP/slow-$1.rc
	rm -f "$SLOW_RC"
	(
		timeout -k 2 60 "$AGENTCELL" cp "$B:/root/slow.txt" "$AC_TMP/hostfifo" \
			>/dev/null 2>"$AC_TMP/slow-$1.err"
		echo $? >"$SLOW_RC"
	) &
	bg_track $!
	wait_until 10 helper_of_slow_cp
}
# Sets HELPER to the file operation's helper: an agentcell process whose parent is the cp.
helper_of_slow_cp() {
	local p pp exe
	exe=$(readlink -f "$AGENTCELL")
	HELPER=
	for p in $(pgrep -f "cp $B:/root/slow.txt $AC_TMP/hostfifo"); do
		pp=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$exe" ] &&
			[ "$(readlink "/proc/$pp/exe" 2>/dev/null)" = "$exe" ]; then
			HELPER=$p
			return 0
		fi
	done
	return 1
}
slow_done() { [ -s "$SLOW_RC" ]; }

slow_cp term
check_ne "a blocked copy has a helper process" "" "$HELPER"
kill -TERM "$HELPER" 2>/dev/null
if wait_until 10 slow_done && [ "$(cat "$SLOW_RC")" != 0 ]; then
	pass "SIGTERM ends a file operation's helper, and the operation fails"
else
	fail "SIGTERM ends a file operation's helper, and the operation fails" "rc: $(cat "$SLOW_RC" 2>/dev/null)"
fi

slow_cp stop
check_ne "a copy is blocked before the stop" "" "$HELPER"
tac stop "$B"
check_eq "stop goes through while a file operation is blocked (124: it hung)" 0 "$RC"
if wait_until 10 slow_done; then
	check_ne "... and the file operation then fails" 0 "$(cat "$SLOW_RC")"
	check_contains "... saying the sandbox stopped" "$(cat "$AC_TMP/slow-stop.err")" "stopped"
else
	fail "... and the file operation then fails" "it still runs"
fi
check "... leaving no helper behind" no_procs_matching "cp $B:/root/slow.txt $AC_TMP/hostfifo"

# The stopped sandbox: its FIFO in the persistent layer is refused all the same.
tac files cat "$B" /root/f2
refused "files cat of a FIFO of a stopped sandbox is refused" /root/f2 "a FIFO"
tac files put "$B" /root/f2 <"$AC_TMP/in.txt"
refused "files put onto a FIFO of a stopped sandbox is refused" /root/f2 "a FIFO"

check_ac "start $B again" start "$B"
slow_cp remove
check_ne "a copy is blocked before the remove" "" "$HELPER"
tac remove "$B"
check_eq "remove goes through while a file operation is blocked" 0 "$RC"
if wait_until 10 slow_done; then
	check_ne "... and the file operation then fails" 0 "$(cat "$SLOW_RC")"
else
	fail "... and the file operation then fails" "it still runs"
fi
check "... and the sandbox is gone" test ! -e "$AGENTCELL_HOME/sandboxes/$B.json"
