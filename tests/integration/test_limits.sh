#!/bin/bash
# Resource limits: memory hog killed (and only it), fork bomb stopped at the pids limit,
# timed-out command trees gone, the cgroup files carry the requested limits.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
MIB=1048576

# ------------------------------------------------------------------ cgroup files
LIM=lim-$ID
check_ac "create $LIM --memory 100 --cpus 0.5 --pids 77" create "$LIM" --memory 100 --cpus 0.5 --pids 77
check_ac "start $LIM" start "$LIM"
check_eq "cgroup: memory.limit_in_bytes = 100 MiB" $((100 * MIB)) "$(cg_file "$LIM" memory memory.limit_in_bytes)"
check_eq "cgroup: cpu.cfs_quota_us = 50000 for --cpus 0.5" 50000 "$(cg_file "$LIM" cpu cpu.cfs_quota_us)"
check_eq "cgroup: cpu.cfs_period_us = 100000" 100000 "$(cg_file "$LIM" cpu cpu.cfs_period_us)"
check_eq "cgroup: pids.max = 77" 77 "$(cg_file "$LIM" pids pids.max)"
SUP=$(ac_supervisor_pid "$LIM")
if [ -n "$SUP" ]; then
	CG=$(cat "/proc/$SUP/cgroup")
	for c in memory pids cpu; do
		check_match "cgroup: the supervisor is in the $c cgroup agentcell/$LIM" "(^|"$'\n'")[0-9]+:([a-z_]+,)*$c(,[a-z_]+)*:/agentcell/(sb[0-9]+-)?$LIM"'($|'$'\n'')' "$CG"
	done
else
	fail "cgroup: found the supervisor of $LIM" "$(cg_procs "$LIM")"
fi
CMARK=accg-$ID
setsid "$AGENTCELL" exec "$LIM" -- "$PY" -c 'import time; time.sleep(30)' "$CMARK" </dev/null >/dev/null 2>&1 &
bg_track $!
if wait_until 10 has_python_matching "$CMARK"; then
	P=$(python_matching "$CMARK")
	CG=$(cat "/proc/$P/cgroup")
	for c in memory pids cpu; do
		check_match "cgroup: an exec'd command is in the $c cgroup agentcell/$LIM" "(^|"$'\n'")[0-9]+:([a-z_]+,)*$c(,[a-z_]+)*:/agentcell/(sb[0-9]+-)?$LIM"'($|'$'\n'')' "$CG"
	done
	kill -9 "$P"
else
	fail "cgroup: found the exec'd command on the host"
fi

DEF=def-$ID
acx create "$DEF"
acx start "$DEF"
check_eq "cgroup: default memory limit 512 MiB" $((512 * MIB)) "$(cg_file "$DEF" memory memory.limit_in_bytes)"
check_eq "cgroup: default cpu quota = one CPU (quota = period = 100000)" "100000 100000" "$(cg_file "$DEF" cpu cpu.cfs_period_us) $(cg_file "$DEF" cpu cpu.cfs_quota_us)"
check_eq "cgroup: default pids.max 512" 512 "$(cg_file "$DEF" pids pids.max)"
acx remove "$DEF"

# An ephemeral run: limits on its run-* cgroup, and the cgroup is gone afterwards.
RMARK=acrun-$ID
setsid "$AGENTCELL" run --memory 80 --pids 33 --cpus 0.25 -- "$PY" -c 'import time; time.sleep(2)' "$RMARK" </dev/null >/dev/null 2>&1 &
RUNPID=$!
bg_track $RUNPID
if wait_until 10 has_python_matching "$RMARK"; then
	P=$(python_matching "$RMARK")
	RCG=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$P/cgroup")
	check_match "run: the command is in a cgroup agentcell/run-*" '^/agentcell/run-' "$RCG"
	check_eq "run: memory.limit_in_bytes = 80 MiB" $((80 * MIB)) "$(cat "/sys/fs/cgroup/memory$RCG/memory.limit_in_bytes" 2>&1)"
	check_eq "run: pids.max = 33" 33 "$(cat "/sys/fs/cgroup/pids$RCG/pids.max" 2>&1)"
	check_eq "run: cpu.cfs_quota_us = 25000 for --cpus 0.25" 25000 "$(cat "/sys/fs/cgroup/cpu$RCG/cpu.cfs_quota_us" 2>&1)"
	wait_until 15 sh -c "! kill -0 $RUNPID 2>/dev/null"
	check_eq "run: its cgroups are gone after it ended" "" "$(cg_dirs "${RCG#/agentcell/}")"
else
	fail "run: found the command of a run on the host"
fi

# The cpu limit is enforced, not only written: two busy processes for 1.5 s of wall time
# get about 0.75 s of CPU under --cpus 0.5 (3 s without a limit on two CPUs).
BUSY='
import os, time
def busy(t):
    end = time.time() + t
    while time.time() < end:
        pass
kids = []
for i in range(2):
    p = os.fork()
    if p == 0:
        busy(1.5); os._exit(0)
    kids.append(p)
for p in kids:
    os.waitpid(p, 0)
t = os.times()
print("%.2f" % (t.children_user + t.children_system))
'
acx run --cpus 0.5 -- "$PY" -c "$BUSY"
if [[ "$OUT" =~ ^[0-9.]+$ ]]; then
	check "run --cpus 0.5: two busy processes got <= 1.2 s CPU in 1.5 s (got ${OUT}s)" awk -v t="$OUT" 'BEGIN { exit !(t <= 1.2) }'
else
	fail "run --cpus 0.5: busy loop measured" "$(acx_diag)"
fi

# ------------------------------------------------------------------ memory hog
HOG=hog-$ID
check_ac "create $HOG --memory 64" create "$HOG" --memory 64
check_ac "start $HOG" start "$HOG"
BMARK=acbystander-$ID
setsid "$AGENTCELL" exec "$HOG" -- "$PY" -c 'import time; time.sleep(60)' "$BMARK" </dev/null >/dev/null 2>&1 &
BYSTANDER_CLI=$!
bg_track $BYSTANDER_CLI
wait_until 10 has_python_matching "$BMARK"
HOGPY='x = b"a" * (1 << 30); print("survived", len(x))'
acx exec "$HOG" -- "$PY" -c "$HOGPY"
check_rc "exec: a 1 GiB hog in a 64 MB sandbox is killed (137)" 137
check_not_contains "exec: the hog did not get its memory" "$OUT" "survived"
check_le "cgroup: peak memory use stayed within 64 MiB" \
	"$(cg_file "$HOG" memory memory.max_usage_in_bytes || echo 999999999999)" $((64 * MIB))
check "exec: the bystander process in the same sandbox survived" has_python_matching "$BMARK"
check "exec: the bystander's CLI is still waiting for it" kill -0 "$BYSTANDER_CLI"
acx exec "$HOG" -- echo alive
check_out "exec: the sandbox still answers after the hog died" "alive"
check_eq "info: the sandbox is still running" "running" "$(ac_status "$HOG")"
acx exec "$HOG" -- "$PY" -c 'x = b"a" * (16 << 20); print("ok", len(x) >> 20)'
check_out "exec: a modest 16 MiB allocation still works" "ok 16"

acx run --memory 64 -- "$PY" -c "$HOGPY"
check_rc "run: a 1 GiB hog in a 64 MB run is killed (137)" 137
acx run --memory 64 -- sh -c 'dd if=/dev/zero of=/tmp/big bs=1M count=1024 2>/dev/null; echo dd=$?; ls -l /tmp/big | awk "{ print \$5 }"'
check_not_contains "run: filling /tmp with 1 GiB in a 64 MB run does not succeed" "$OUT" "dd=0"

# ------------------------------------------------------------------ fork bomb
BOMB=bomb-$ID
check_ac "create $BOMB --pids 50" create "$BOMB" --pids 50
check_ac "start $BOMB" start "$BOMB"
check_eq "cgroup: pids.max = 50" 50 "$(cg_file "$BOMB" pids pids.max)"
FORK='
import os, time
kids, fails = [], 0
for i in range(200):
    try:
        p = os.fork()
    except OSError:
        fails += 1
        continue
    if p == 0:
        try:
            os.execv("/bin/sleep", ["sleep", "5"])
        finally:
            os._exit(0)
    kids.append(p)
n = len([d for d in os.listdir("/proc") if d.isdigit()])
print("forked", len(kids), "failed", fails, "procs", n, flush=True)
for p in kids:
    os.kill(p, 9)
for p in kids:
    os.waitpid(p, 0)
'
acx exec "$BOMB" -- "$PY" -c "$FORK"
read -r _ FORKED _ FAILS _ PROCS <<<"$OUT"
if [[ "${FORKED:-}" =~ ^[0-9]+$ ]]; then
	check_gt "fork bomb: forks failed at the limit ($FAILS of 200)" "$FAILS" 0
	check_le "fork bomb: processes in the sandbox <= 50 (saw $PROCS)" "$PROCS" 50
	check_le "fork bomb: successful forks < 50 ($FORKED)" "$FORKED" 49
	check_le "cgroup: pids.peak <= 50" "$(cg_file "$BOMB" pids pids.peak || echo 0)" 50
else
	fail "fork bomb: the probe ran" "$(acx_diag)"
fi
acx exec "$BOMB" -- echo alive
check_out "fork bomb: the sandbox still answers afterwards" "alive"

# A shell loop as in the issue: sleeps pile up until fork fails.
acx exec "$BOMB" -- sh -c 'for i in $(seq 200); do sleep 5 & done; wait' 
check_ne "fork bomb (shell loop): the shell saw fork failures" 0 "$RC"
if wait_until 15 sh -c "[ \"\$('$AGENTCELL' exec $BOMB -- echo alive 2>/dev/null)\" = alive ]"; then
	pass "fork bomb (shell loop): the sandbox answers again"
else
	fail "fork bomb (shell loop): the sandbox answers again"
fi

# A real fork bomb, bounded by --timeout, only once the limit is known to hold (an
# RLIMIT_NPROC safety net protects the host should the pids limit fail).
if [[ "${PROCS:-}" =~ ^[0-9]+$ ]] && [ "$PROCS" -le 50 ]; then
	(
		ulimit -u 2000
		exec "$AGENTCELL" run --pids 50 --timeout 3 -- bash -c 'b() { b | b & }; b; sleep 30'
	) </dev/null >/dev/null 2>&1 &
	BOMBCLI=$!
	wait_until 60 sh -c "! kill -0 $BOMBCLI 2>/dev/null" || kill -9 "$BOMBCLI"
	wait "$BOMBCLI"
	BOMBRC=$?
	check_eq "fork bomb (bash): no run-$BOMBCLI-* cgroup left when run returns" "" "$(ls -d /sys/fs/cgroup/*/agentcell/run-$BOMBCLI-* 2>/dev/null)"
	check_eq "fork bomb (bash): run --timeout 3 ends with 124" 124 "$BOMBRC"
	check_eq "fork bomb (bash): no sandboxed bash left on the host" 0 "$(ps -e -o uid=,comm= | awk '$1 >= 1073741824 && $2 == "bash"' | wc -l)"
else
	skip "fork bomb (bash): run --pids 50" "the pids limit did not hold above"
fi

# ------------------------------------------------------------------ timeouts
S1=100.1$RANDOM S2=100.2$RANDOM S3=100.3$RANDOM S4=100.4$RANDOM
acx run --timeout 1 -- sh -c "sleep $S1 & (trap '' TERM HUP INT; exec sleep $S2) & setsid sleep $S3 & (setsid sh -c 'sleep $S4' &) ; sleep $S1"
check_rc "run --timeout 1: exit status 124" 124
check_le "run --timeout 1: returned within 10 s (${ELAPSED_MS} ms)" "$ELAPSED_MS" 10000
for s in $S1 $S2 $S3 $S4; do
	wait_until 3 no_procs_matching "sleep $s"
	check_eq "run --timeout 1: no 'sleep $s' left on the host" "" "$(procs_matching "sleep $s")"
done
acx run --timeout 1 -- sleep 100
check_rc "run --timeout 1 -- sleep 100: 124" 124

TBOX=tmo-$ID
acx create "$TBOX"
acx start "$TBOX"
S1=101.1$RANDOM S2=101.2$RANDOM S3=101.3$RANDOM S4=101.4$RANDOM
acx exec "$TBOX" --timeout 1 -- sh -c "sleep $S1 & (trap '' TERM HUP INT; exec sleep $S2) & setsid sleep $S3 & (setsid sh -c 'sleep $S4' &) ; sleep $S1"
check_rc "exec --timeout 1: exit status 124" 124
check_le "exec --timeout 1: returned within 10 s (${ELAPSED_MS} ms)" "$ELAPSED_MS" 10000
for s in $S1 $S2 $S3 $S4; do
	wait_until 3 no_procs_matching "sleep $s"
	check_eq "exec --timeout 1: no 'sleep $s' (incl. setsid/TERM-immune) left" "" "$(procs_matching "sleep $s")"
done
acx exec "$TBOX" -- echo alive
check_out "exec --timeout: the sandbox still answers" "alive"
acx exec "$TBOX" -- ps -e -o comm=
check_not_contains "exec --timeout: no sleep is left inside the sandbox" "$OUT" "sleep"
acx exec --timeout 5 "$TBOX" -- sh -c 'exit 7'
check_rc "exec --timeout (option before NAME) does not disturb a quick command's status" 7
