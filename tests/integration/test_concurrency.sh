#!/bin/bash
# Concurrency and crashes: parallel creates/starts/execs/runs never corrupt or lose state;
# kill -9 of a supervisor or of a CLI midway leaves a truthful, usable state.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
SB=$AGENTCELL_HOME/sandboxes
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
P=$AC_TMP/par
mkdir -p "$P"

# par_collect PREFIX N: prints "i rc" lines for the finished parallel jobs PREFIX1..N.
rcs_of() { local i; for i in $(seq "$2"); do echo "$i $(cat "$P/$1$i.rc" 2>/dev/null || echo none)"; done; }
# failures_of PREFIX N: "i rc: output" for every job that did not exit 0.
failures_of() {
	local i rc
	for i in $(seq "$2"); do
		rc=$(cat "$P/$1$i.rc" 2>/dev/null || echo none)
		[ "$rc" = 0 ] || echo "$1$i rc=$rc: $(cat "$P/$1$i.out" "$P/$1$i.err" 2>/dev/null | head -c 300 | tr '\n' ' ')"
	done
	return 0
}

# Every state file is valid JSON with a name matching the file.
bad_state_files() {
	local f
	for f in "$SB"/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.json)
			jq -e --arg n "$(basename "$f" .json)" '.name == $n and (.uuid | type == "string")' "$f" >/dev/null 2>&1 ||
				echo "invalid: $(basename "$f"): $(head -c 200 "$f")"
			;;
		esac
	done
	return 0
}

# ------------------------------------------------------------------ 20 parallel creates
for i in $(seq 20); do
	(ac create "pc$i-$ID" >"$P/c$i.out" 2>&1; echo $? >"$P/c$i.rc") &
done
wait
check_eq "20 parallel creates of distinct names all succeed" "" "$(failures_of c 20)"
LIST=$(ac list --json)
check_eq "all 20 appear in list --json" 20 "$(jq --arg s "-$ID" '[.[] | select(.name | startswith("pc") and endswith($s))] | length' <<<"$LIST")"
check_eq "their 20 uuids are distinct" 20 "$(jq --arg s "-$ID" '[.[] | select(.name | endswith($s)) | .uuid] | unique | length' <<<"$LIST")"
BADU=$(jq -r '.[].uuid' <<<"$LIST" | grep -Ev "$UUID_RE")
check_eq "every uuid is a valid v7 uuid" "" "$BADU"
check_eq "every state file is valid JSON" "" "$(bad_state_files)"

# ------------------------------------------------------------------ 20 parallel creates of one name
for i in $(seq 20); do
	(ac create "same-$ID" >"$P/s$i.out" 2>"$P/s$i.err"; echo $? >"$P/s$i.rc") &
done
wait
check_eq "20 parallel creates of one name: exactly one succeeds" 1 "$(rcs_of s 20 | awk '$2 == 0' | wc -l)"
check_eq "the 19 others fail with exit 1" 19 "$(rcs_of s 20 | awk '$2 == 1' | wc -l)"
BADERR=""
for i in $(seq 20); do
	if [ "$(cat "$P/s$i.rc")" != 0 ]; then
		[ "$(grep -c '' "$P/s$i.err")" = 1 ] && grep -q '^agentcell: ' "$P/s$i.err" || BADERR="$BADERR [$i: $(cat "$P/s$i.err")]"
	fi
done
check_eq "each failure is one 'agentcell:' line" "" "$BADERR"
check_eq "one state file for that name" 1 "$(ls "$SB" | grep -c "^same-$ID\.json$")"
check_eq "list shows the name once" 1 "$(ac list --json | jq --arg n "same-$ID" '[.[] | select(.name == $n)] | length')"
check_eq "no temporary files are left in sandboxes/" "" "$(ls -A "$SB" | grep -v '\.json$')"

# ------------------------------------------------------------------ 10 parallel starts
for i in $(seq 10); do
	(ac start "pc$i-$ID" >"$P/st$i.out" 2>&1; echo $? >"$P/st$i.rc") &
done
wait
check_eq "10 parallel starts all succeed" "" "$(failures_of st 10)"
for i in $(seq 10); do
	(ac exec "pc$i-$ID" -- touch /tmp/uidprobe >"$P/u$i.out" 2>&1; echo $? >"$P/u$i.rc") &
done
wait
check_eq "an exec into each of them works" "" "$(failures_of u 10)"
# Commands see their nested user namespace's map (0 0 65535): the host ranges show in the
# owners of what they wrote, seen from the host.
for i in $(seq 10); do
	stat -c %u "/proc/$(ac_supervisor_pid "pc$i-$ID")/root/tmp/uidprobe"
done >"$P/uids"
check_eq "10 running sandboxes have 10 distinct host uid ranges" 10 "$(awk '$1 > 0' "$P/uids" | sort -u | wc -l)"
check_eq "all 10 are running" 10 "$(ac list --json | jq --arg s "-$ID" '[.[] | select((.name | endswith($s)) and .status == "running")] | length')"
for i in $(seq 10); do
	(ac stop "pc$i-$ID" >"$P/sp$i.out" 2>&1; echo $? >"$P/sp$i.rc") &
done
wait
check_eq "10 parallel stops all succeed" "" "$(failures_of sp 10)"
LEFT=""
for i in $(seq 10); do LEFT="$LEFT$(cg_dirs "pc$i-$ID" | tr '\n' ' ')"; done
check_eq "no cgroup left after the parallel stops" "" "$LEFT"
check_eq "every state file is still valid JSON" "" "$(bad_state_files)"
for i in $(seq 20); do
	(ac remove "pc$i-$ID" >/dev/null 2>&1; echo $? >"$P/rm$i.rc") &
done
wait
check_eq "20 parallel removes all succeed" "" "$(failures_of rm 20)"
check_eq "list no longer shows them" 0 "$(ac list --json | jq --arg s "-$ID" '[.[] | select(.name | startswith("pc"))] | length')"

# ------------------------------------------------------------------ 50 parallel execs into one sandbox
X=px-$ID
acx create "$X"
acx start "$X"
for i in $(seq 30); do
	(ac exec "$X" -- sh -c "echo out-$i-\$\$; echo err-$i >&2" >"$P/x$i.out" 2>"$P/x$i.err"; echo $? >"$P/x$i.rc") &
done
for i in $(seq 31 50); do
	(echo "in-$i" | ac exec -i "$X" -- cat >"$P/x$i.out" 2>"$P/x$i.err"; echo $? >"$P/x$i.rc") &
done
wait
check_eq "50 parallel execs all exit 0" "" "$(failures_of x 50)"
BADOUT=""
for i in $(seq 30); do
	grep -qx "out-$i-[0-9]*" "$P/x$i.out" && [ "$(cat "$P/x$i.err")" = "err-$i" ] || BADOUT="$BADOUT [$i: $(cat "$P/x$i.out" "$P/x$i.err" | tr '\n' ' ')]"
done
for i in $(seq 31 50); do
	[ "$(cat "$P/x$i.out")" = "in-$i" ] || BADOUT="$BADOUT [$i: $(cat "$P/x$i.out" "$P/x$i.err" | tr '\n' ' ')]"
done
check_eq "each of the 50 got exactly its own output (and stdin)" "" "$BADOUT"
check_eq "the 30 shells had 30 distinct pids" 30 "$(cat "$P"/x{1..30}.out 2>/dev/null | sort -u | wc -l)"
acx exec "$X" -- echo alive
check_out "the sandbox still answers after 50 parallel execs" "alive"

# ------------------------------------------------------------------ parallel runs
for i in $(seq 10); do
	(ac run -- sh -c 'cat /proc/self/uid_map; sleep 1' >"$P/r$i.out" 2>&1; echo $? >"$P/r$i.rc") &
done
wait
check_eq "10 parallel runs all succeed" "" "$(failures_of r 10)"
check_eq "10 overlapping runs had 10 distinct host uid ranges" 10 "$(cat "$P"/r*.out | awk '$1 == 0 { print $2 }' | sort -u | wc -l)"
check_eq "the runs left no state file" "" "$(ls "$SB" | grep -v -e "^same-$ID.json$" -e "^$X.json$")"

# ------------------------------------------------------------------ kill -9 of the supervisor
K=crash-$ID
acx create "$K"
acx start "$K"
acx exec "$K" -- sh -c "echo before-crash-$ID >/root/f && sync"
KMARK=accrash-$ID
setsid "$AGENTCELL" exec "$K" -- "$PY" -c 'import time; time.sleep(100)' "$KMARK" </dev/null >/dev/null 2>&1 &
KCLI=$!
bg_track $KCLI
wait_until 10 has_python_matching "$KMARK"
SUP=$(ac_supervisor_pid "$K")
if [ -n "$SUP" ]; then
	PIDNS=$(readlink "/proc/$SUP/ns/pid")
	kill -9 "$SUP"
	if wait_until 5 sh -c "[ \"\$(AGENTCELL_HOME=$AGENTCELL_HOME '$AGENTCELL' list --json | jq -r '.[] | select(.name == \"$K\") | .status')\" = stopped ]"; then
		pass "kill -9 supervisor: list shows stopped"
	else
		fail "kill -9 supervisor: list shows stopped" "$(ac_list_entry "$K")"
	fi
	check_eq "kill -9 supervisor: info shows stopped" "stopped" "$(ac_status "$K")"
	wait_until 5 sh -c "! kill -0 $KCLI 2>/dev/null"
	check_fail "kill -9 supervisor: the exec CLI waiting on the sandbox returned" kill -0 "$KCLI"
	wait_until 5 pidns_empty "$PIDNS"
	check_eq "kill -9 supervisor: no process of the sandbox survives" "" "$(procs_in_pidns "$PIDNS")"
	acx exec "$K" -- true
	check_rc "kill -9 supervisor: exec says the sandbox is not running (1)" 1
	check_ac "kill -9 supervisor: start works again" start "$K"
	acx exec "$K" -- cat /root/f
	check_out "kill -9 supervisor: files written before the crash are there" "before-crash-$ID"
	SUP2=$(ac_supervisor_pid "$K")
	check_ne "kill -9 supervisor: a new supervisor runs" "" "$SUP2"
	kill -9 "${SUP2:-0}" 2>/dev/null
	wait_until 5 sh -c "[ \"\$(AGENTCELL_HOME=$AGENTCELL_HOME '$AGENTCELL' info $K --json | jq -r .status)\" = stopped ]"
	check_ac "kill -9 supervisor: remove works on the crashed sandbox" remove "$K"
	check_eq "kill -9 supervisor: remove left no cgroup" "" "$(cg_dirs "$K")"
	check_fail "kill -9 supervisor: remove deleted the data" test -e "$AGENTCELL_HOME/data/$K"
else
	fail "kill -9 supervisor: found the supervisor's pid"
fi

# ------------------------------------------------------------------ kill -9 of the CLI midway
AC_TIMEOUT=15 # a wedged sandbox must not stall the file for minutes

# Host processes left by killed CLIs for sandboxes PREFIX*: "agentcell ... PREFIX" processes
# that are not a sandbox's PID 1 (a supervisor is legitimately left by a start that
# finished before the kill).
orphans() {
	local p ns
	for p in $(procs_matching "agentcell [a-z]* $1"); do
		ns=$(awk '/^NSpid:/ { print NF - 1 }' "/proc/$p/status" 2>/dev/null)
		[ -n "$ns" ] && [ "$ns" -lt 2 ] && echo "$p"
	done
	return 0
}
orphans_gone() { [ -z "$(orphans "$1")" ]; }

DELAYS=(0 0.001 0.002 0.003 0.005 0.008 0.012 0.02 0.03 0.05)
for i in "${!DELAYS[@]}"; do
	(exec "$AGENTCELL" create "kc$i-$ID") </dev/null >/dev/null 2>&1 &
	c=$!
	sleep "${DELAYS[$i]}"
	kill -9 "$c" 2>/dev/null
	wait "$c" 2>/dev/null
done
wait_until 10 orphans_gone "kc"
ORPH=$(orphans "kc")
check_eq "kill -9 of create midway: no orphaned process is left" "" "$ORPH"
# shellcheck disable=SC2086 # ORPH is a list of pids
[ -n "$ORPH" ] && kill -9 $ORPH
check_eq "kill -9 of create midway: every state file is absent or valid JSON" "" "$(bad_state_files)"
acx list --json
check_rc "kill -9 of create midway: list works" 0
check "kill -9 of create midway: list --json is valid JSON" jq -e 'type == "array"' <<<"$OUT"
BAD=""
for i in "${!DELAYS[@]}"; do
	n=kc$i-$ID
	if [ -e "$SB/$n.json" ]; then
		ac start "$n" >/dev/null 2>&1 && ac exec "$n" -- true >/dev/null 2>&1 || BAD="$BAD start/exec:$n"
		ac remove "$n" >/dev/null 2>&1 || BAD="$BAD remove:$n"
	else
		ac create "$n" >/dev/null 2>&1 || BAD="$BAD recreate:$n"
		ac remove "$n" >/dev/null 2>&1 || BAD="$BAD remove:$n"
	fi
done
check_eq "kill -9 of create midway: each name can then be used (start or create) and removed" "" "$BAD"

# start does the most work between fork and ready: try it more often at small delays.
DELAYS=(0 0 0 0.001 0.001 0.002 0.002 0.003 0.004 0.005 0.006 0.008 0.01 0.015 0.02 0.03)
for i in "${!DELAYS[@]}"; do
	ac create "ks$i-$ID" >/dev/null 2>&1
	(exec "$AGENTCELL" start "ks$i-$ID") </dev/null >/dev/null 2>&1 &
	c=$!
	sleep "${DELAYS[$i]}"
	kill -9 "$c" 2>/dev/null
	wait "$c" 2>/dev/null
done
wait_until 10 orphans_gone "ks"
ORPH=$(orphans "ks")
if [ -z "$ORPH" ]; then
	pass "kill -9 of start midway: no orphaned helper/builder process is left (10 s grace)"
else
	fail "kill -9 of start midway: no orphaned helper/builder process is left (10 s grace)" \
		"$(for p in $ORPH; do echo "pid $p: $(ps -o stat=,wchan:20=,args= -p "$p") fds: $(ls -l "/proc/$p/fd" 2>/dev/null | awk 'NR > 1 { print $NF }' | grep -c lock) lock(s), NSpid $(awk '/^NSpid:/ { $1 = ""; print }' "/proc/$p/status")"; done)"
	# shellcheck disable=SC2086 # ORPH is a list of pids
	kill -9 $ORPH # so that the rest of the file tests the state files, not the wedge
fi
check_eq "kill -9 of start midway: every state file is valid JSON" "" "$(bad_state_files)"
acx list --json
check_rc "kill -9 of start midway: list works" 0
BAD=""
for i in "${!DELAYS[@]}"; do
	n=ks$i-$ID
	st=$(ac_status "$n")
	if [ "$st" = running ]; then
		[ "$(ac exec "$n" -- echo ok 2>&1)" = ok ] || BAD="$BAD [$n: listed running but exec fails]"
	elif [ "$st" = stopped ]; then
		ac start "$n" >/dev/null 2>&1 || BAD="$BAD [$n: stopped but start fails: $(ac start "$n" 2>&1)]"
		[ "$(ac exec "$n" -- echo ok 2>&1)" = ok ] || BAD="$BAD [$n: exec after start fails]"
	else
		BAD="$BAD [$n: status '$st']"
	fi
done
check_eq "kill -9 of start midway: the status is truthful (running -> exec works, stopped -> start works)" "" "$BAD"

# kill -9 of remove midway, then remove again.
for i in "${!DELAYS[@]}"; do
	(exec "$AGENTCELL" remove "ks$i-$ID") </dev/null >/dev/null 2>&1 &
	c=$!
	sleep "${DELAYS[$i]}"
	kill -9 "$c" 2>/dev/null
	wait "$c" 2>/dev/null
done
wait_until 10 orphans_gone "ks"
ORPH=$(orphans "ks")
check_eq "kill -9 of remove midway: no orphaned process is left (10 s grace)" "" "$ORPH"
# shellcheck disable=SC2086 # ORPH is a list of pids
[ -n "$ORPH" ] && kill -9 $ORPH
check_eq "kill -9 of remove midway: every state file is absent or valid JSON" "" "$(bad_state_files)"
BAD=""
for i in "${!DELAYS[@]}"; do
	n=ks$i-$ID
	if [ -e "$SB/$n.json" ]; then
		ac remove "$n" >/dev/null 2>&1 || BAD="$BAD [$n: remove again fails: $(ac remove "$n" 2>&1)]"
	fi
done
check_eq "kill -9 of remove midway: a second remove succeeds" "" "$BAD"
# kill -9 of a run CLI, midway through set-up or while its command runs: the command and
# every helper die with it.
RS=100.9$RANDOM
RPIDS=""
for d in 0 0 0.001 0.002 0.003 0.005 0.01 0.02 0.5; do
	(exec "$AGENTCELL" run -- sleep "$RS") </dev/null >/dev/null 2>&1 &
	c=$!
	RPIDS="$RPIDS $c"
	sleep "$d"
	kill -9 "$c" 2>/dev/null
	wait "$c" 2>/dev/null
done
wait_until 10 no_procs_matching "$RS"
check_eq "kill -9 of run: no process of the killed runs is left (10 s grace)" "" \
	"$(for p in $(procs_matching "$RS"); do ps -o pid=,stat=,wchan:20=,args= -p "$p"; done)"
acx run -- true
LEFTCG=""
for c in $RPIDS; do LEFTCG="$LEFTCG$(ls -d /sys/fs/cgroup/*/agentcell/run-"$c"-* 2>/dev/null | tr '\n' ' ')"; done
check_eq "kill -9 of run: their cgroups are gone (at the latest after the next run)" "" "$LEFTCG"
# Clear what a failure above left behind, so that the checks below see only their own state.
LEFTP=$(procs_matching "$RS")
if [ -n "$LEFTP" ]; then
	# shellcheck disable=SC2086 # LEFTP is a list of pids
	kill -9 $LEFTP 2>/dev/null
	wait_until 5 no_procs_matching "$RS"
	for c in $RPIDS; do
		for d in /sys/fs/cgroup/*/agentcell/run-"$c"-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	done
fi

LEFT=""
for i in "${!DELAYS[@]}"; do
	for n in "ks$i-$ID" "kc$i-$ID"; do
		LEFT="$LEFT$(cg_dirs "$n" | tr '\n' ' ')"
		p=$(procs_matching " $n")
		# shellcheck disable=SC2086 # $(echo $p) joins the pids with single blanks
		[ -n "$p" ] && LEFT="$LEFT [$n processes: $(ps -o pid=,stat=,args= -p "$(echo $p | tr ' ' ',')" | tr '\n' ';')]"
		[ -e "$AGENTCELL_HOME/data/$n" ] && LEFT="$LEFT [data/$n]"
	done
done
check_eq "after all the kills and removes: no cgroup, process or data directory is left" "" "$LEFT"
acx list --json
check_eq "list shows only the two sandboxes still meant to exist" "$(printf '%s\n' "$X" "same-$ID" | sort)" "$(jq -r '.[].name' <<<"$OUT" | sort)"
acx remove "$X"
acx remove "same-$ID"
check_eq "once all are removed, no mount anywhere mentions the home directory" "" "$(mounts_mentioning "$AGENTCELL_HOME")"
