#!/bin/bash
# Attack: the sandbox's code signals the supervisor's processes (its init and the shims
# that serve its execs). Commands run in a nested user namespace that does not map the
# supervisor's uid (docs/ARCHITECTURE.md, "Commands in a nested user namespace"): every
# signal to them is refused, as root or not, and what commands need of root still works.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=as2-$ID
MARK=$RANDOM$RANDOM
check_ac "create $B" create "$B"
check_ac "start $B" start "$B"
SUP=$(ac_supervisor_pid "$B")
NS=$(readlink "/proc/$SUP/ns/pid")

# Signals every process whose title is agentcell-* (init, shims): one line per try,
# "<pid> <title> <signal> <ok|errno name>".
SIGNAL_ALL='
import errno, os, signal
for d in sorted(os.listdir("/proc")):
    if not d.isdigit():
        continue
    try:
        title = open("/proc/%s/cmdline" % d, "rb").read().split(b"\0")[0].decode().strip()
    except OSError:
        continue
    if not title.startswith("agentcell-"):
        continue
    for sig in (signal.SIGSTOP, signal.SIGKILL, signal.SIGCONT, signal.SIGTERM, signal.SIGCHLD):
        try:
            os.kill(int(d), sig)
            r = "ok"
        except OSError as e:
            r = errno.errorcode[e.errno]
        print(d, title, sig.name, r)
'
# Sandbox processes (host pids) that are stopped.
stopped_in_ns() {
	local p
	for p in $(procs_in_pidns "$NS"); do
		[ "$(awk '/^State:/ { print $2 }' "/proc/$p/status" 2>/dev/null)" = T ] && echo "$p"
	done
	return 0
}

for who in root 1000; do
	acx exec -u "$who" "$B" -- "$PY" -c "$SIGNAL_ALL"
	check_eq "as $who: the signalling command ran" 0 "$RC"
	check_contains "as $who: it finds the supervisor (agentcell-init)" "$OUT" "agentcell-init SIGKILL"
	check_contains "as $who: it finds its shim (agentcell-shim)" "$OUT" "agentcell-shim SIGKILL"
	check_eq "as $who: SIGSTOP, SIGKILL, SIGCONT, SIGTERM, SIGCHLD to each are refused (EPERM/ESRCH)" "" \
		"$(grep -v -e ' EPERM$' -e ' ESRCH$' <<<"$OUT")"
	check_eq "as $who: no process of the sandbox is stopped" "" "$(stopped_in_ns)"
	t0=$(date +%s%N)
	acx exec "$B" -- echo next
	check_eq "as $who: the next exec works" "0 next" "$RC $OUT"
	check_le "as $who: ... promptly (ms)" $((($(date +%s%N) - t0) / 1000000)) 3000
done
check_eq "the supervisor is the same process" "$SUP" "$(ac_supervisor_pid "$B")"

# kill -9 -1: every process the command may signal, i.e. the commands only.
X1=$(ac exec -d "$B" -- sleep 400$MARK)
has_sleep_400() { [ -n "$(procs_matching "sleep 400$MARK")" ]; }
wait_until 5 has_sleep_400
# The supervisor's processes but the detached command's shim (which ends with it).
X1SHIM=$(ps -o ppid= -p "$(procs_matching "^sleep 400$MARK" | head -1)" | tr -d ' ')
SUPPROCS=$(procs_in_pidns "$NS" | grep -vx "$X1SHIM" | while read -r p; do
	case $(tr -d '\0' <"/proc/$p/cmdline" 2>/dev/null) in agentcell-*) echo "$p" ;; esac
done | sort | tr '\n' ' ')
acx exec --timeout 20 "$B" -- sh -c "sleep 401$MARK & sleep 0.2; kill -9 -1; wait; echo survived"
check_eq "kill -9 -1 from a command: the command itself goes on, its exec ends normally" "0 survived" "$RC $OUT"
wait_until 5 no_procs_matching "sleep 40[01]$MARK"
check_eq "... its own child and another exec's detached command are killed" "" "$(procs_matching "sleep 40[01]$MARK")"
check_eq "... the detached command is recorded as killed by SIGKILL" "failed 9" \
	"$(ac exec-status "$X1" --json | jq -r '"\(.state) \(.signal)"')"
STILL=""
for p in $SUPPROCS; do [ -d "/proc/$p" ] || STILL="$STILL $p"; done
check_eq "... and no process of the supervisor was killed" "" "$STILL"
acx exec "$B" -- echo next
check_eq "... the next exec works" "0 next" "$RC $OUT"

# Commands still signal commands: their own children, and (as root) other execs' processes.
acx exec "$B" -- sh -c 'sleep 100 & kill -9 $!; wait $!; echo $?'
check_eq "a command kills its own child" "137" "$OUT"
X2=$(ac exec -d -u 1000 "$B" -- sleep 402$MARK)
X3=$(ac exec -d "$B" -- sleep 403$MARK)
KILLBY='for p in /proc/[0-9]*; do tr "\0" " " <$p/cmdline 2>/dev/null | grep -q "^sleep $1" && { kill -9 ${p#/proc/} && echo killed || echo refused; }; done'
acx exec -u 1000 "$B" -- sh -c "$KILLBY" sh "403$MARK"
check_contains "a non-root command cannot kill root's command" "$OUT" "refused"
acx exec "$B" -- sh -c "$KILLBY" sh "402$MARK"
check_eq "root kills another exec's command (of uid 1000)" "killed" "$OUT"
acx exec "$B" -- sh -c "$KILLBY" sh "403$MARK"
check_eq "root kills another exec's command (of root)" "killed" "$OUT"
wait_until 5 no_procs_matching "sleep 40[23]$MARK"
check_eq "... both are gone" "" "$(procs_matching "sleep 40[23]$MARK")"
check_eq "... and recorded as killed by SIGKILL" "9 9" \
	"$(ac exec-status "$X2" --json | jq -r .signal) $(ac exec-status "$X3" --json | jq -r .signal)"

# What the separation looks like from the host: the supervisor's processes run as the
# sandbox's uid 65535, commands as their own uids.
X4=$(ac exec -d "$B" -- sleep 404$MARK)
has_sleep_404() { [ -n "$(procs_matching "sleep 404$MARK")" ]; }
wait_until 5 has_sleep_404
BASE=$(ps -o uid= -p "$(procs_matching "^sleep 404$MARK" | head -1)" | tr -d ' ')
check_gt "host: a root command runs as a non-root host uid" "$BASE" 0
check_eq "host: the supervisor runs as the sandbox's uid 65535" $((BASE + 65535)) "$(ps -o uid= -p "$SUP" | tr -d ' ')"
SHIMUIDS=$(for p in $SUPPROCS; do [ -d "/proc/$p" ] && ps -o uid= -p "$p"; done | tr -d ' ' | sort -u | tr '\n' ' ')
check_eq "host: so do its shims" "$((BASE + 65535)) " "$SHIMUIDS"
acx exec-kill "$X4"
acx exec "$B" -- "$PY" -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open("/proc/self/ns/user", os.O_RDONLY)
print("setns", libc.setns(fd, 0x10000000), os.strerror(ctypes.get_errno()))
for d in os.listdir("/proc"):
    if d.isdigit() and open("/proc/%s/cmdline" % d, "rb").read().startswith(b"agentcell-"):
        for f in ("ns/user", "environ", "fd"):
            try:
                os.open("/proc/%s/%s" % (d, f), os.O_RDONLY)
                print("opened", d, f)
            except OSError:
                pass
'
check_eq "a command may not setns, not even into its own user namespace" "setns -1 Operation not permitted" "$OUT"
check_eq "a command opens none of the supervisor's /proc ns, environ, fd" "" "$(grep opened <<<"$OUT")"

# What root inside needs still works.
acx exec "$B" -- "$PY" -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 80)); print("bound")'
check_out "root binds port 80" "bound"
acx exec -u 1000 "$B" -- "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::", 443)); print("bound")'
check_out "a non-root user binds port 443 (ip_unprivileged_port_start=0, as in Docker)" "bound"
acx exec "$B" -- sh -c "useradd -m u$MARK && su u$MARK -c 'id -un; echo secret >~/s; chmod 600 ~/s' && cat /home/u$MARK/s"
# shellcheck disable=SC2086,SC2116 # $(echo $OUT) joins the output's lines with single blanks
check_eq "useradd, su USER, and root reads the user's 0600 file (DAC_OVERRIDE)" "0 u$MARK secret" "$RC $(echo $OUT)"
acx exec "$B" -- sh -c 'touch /root/o && chown 1000:1000 /root/o && chmod 4711 /root/o && stat -c "%u %g %a" /root/o'
check_eq "chown and chmod (setuid bit) on the sandbox's files" "1000 1000 4711" "$OUT"
check_eq "host: the chowned file is owned by the sandbox's uid 1000" "$((BASE + 1000))" \
	"$(stat -c %u "/proc/$SUP/root/root/o")"
acx exec "$B" -- sh -c 'touch /tmp/r; stat -c %u /tmp/r'
check_eq "host: a root command's file is owned by the sandbox's root ($OUT inside)" "0 $BASE" \
	"$OUT $(stat -c %u "/proc/$SUP/root/tmp/r")"
acx exec -u 1000 "$B" -- id -u
check_out "exec -u 1000 works" "1000"
CAPS='grep -E "^Cap(Eff|Bnd)" /proc/self/status | cut -f2 | sort -u'
acx run -- sh -c "$CAPS"
RUNCAPS=$OUT
acx exec "$B" -- sh -c "$CAPS"
check_eq "root's capabilities in the nested namespace: the sandbox set (as in a run), bounding included" \
	"$RUNCAPS" "$OUT"

# A run has no shim, and the kernel ignores SIGKILL/SIGSTOP to a namespace's init from
# inside: nothing to protect, no nested namespace there.
acx run -- sh -c 'kill -STOP 1; kill -KILL 1; echo alive'
check_eq "run: the command cannot stop or kill its init" "0 alive" "$RC $OUT"
if [ -x /usr/bin/setpriv ]; then
	acx run -- setpriv --reuid 1000 --regid 1000 --clear-groups "$PY" -c 'import os, socket; socket.socket().bind(("0.0.0.0", 80)); print("bound as", os.getuid())'
	check_out "run: a non-root user binds port 80 too" "bound as 1000"
else
	skip "run: a non-root user binds port 80 too" "no setpriv"
fi

check_ac "stop $B" stop "$B"
check "... and nothing of it is left" pidns_empty "$NS"
check_ac "remove $B" remove "$B"
