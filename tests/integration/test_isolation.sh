#!/bin/bash
# Isolation of a default sandbox: every property is shown by trying the attack from inside
# (and, where it helps, showing the same attempt works on the host, so the check can fail).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
BOX=iso-$ID
PROBE=$(cat "$AC_LIB_DIR/syscall_probe.py")

check_ac "create a persistent sandbox" create "$BOX"
check_ac "start it" start "$BOX"

# ------------------------------------------------------------------ PID namespace
MARK=acmark-$ID
setsid "$PY" -c 'import time; time.sleep(1000)' "$MARK" </dev/null >/dev/null 2>&1 &
bg_track $!
# (setsid may fork: find the marker by its command line, once it has exec'd)
wait_until 5 pgrep -f "$MARK"
HOSTPID=$(pgrep -f "$MARK" | head -1)
bg_track "$HOSTPID"
check "host: marker process $MARK is visible on the host (baseline)" \
	grep -q "$MARK" "/proc/$HOSTPID/cmdline"

acx run -- sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " <"$f"; echo; done; echo ---; ps -e -o pid=,args=; echo ---'
check_rc "run: listing processes inside works" 0
check_not_contains "run: host process $MARK is invisible in /proc" "${OUT%%---*}" "$MARK"
check_not_contains "run: host process $MARK is invisible to ps" "$OUT" "$MARK"
acx run -- "$PY" -c 'import os; print(len([p for p in os.listdir("/proc") if p.isdigit()]))'
check_le "run: the sandbox sees few pids (saw $OUT)" "${OUT:-999}" 3
HOSTN=$(ls -d /proc/[0-9]* | wc -l)
check_gt "host: the host sees many pids ($HOSTN, baseline)" "$HOSTN" 20

acx exec "$BOX" -- sh -c "kill -9 $HOSTPID; echo rc=\$?"
check "exec: kill -9 of a host pid from inside does not reach the host process" kill -0 "$HOSTPID"

acx exec "$BOX" -- "$PY" -c 'import os; print(len([p for p in os.listdir("/proc") if p.isdigit()]))'
check_le "exec: a persistent sandbox sees few pids (saw $OUT)" "${OUT:-999}" 4

# ------------------------------------------------------------------ namespaces
for ns in pid net mnt uts ipc user cgroup; do
	host_ns=$(readlink "/proc/self/ns/$ns")
	acx run -- readlink "/proc/self/ns/$ns"
	if [ "$RC" -ne 0 ] || [ -z "$OUT" ]; then
		fail "run: own $ns namespace" "$(acx_diag)"
	else
		check_ne "run: own $ns namespace (host $host_ns)" "$host_ns" "$OUT"
	fi
done

# ------------------------------------------------------------------ hostname
acx run -- cat /proc/sys/kernel/hostname
check_rc "run: reading the hostname works" 0
check_ne "run: own hostname (not the host's '$(hostname)')" "$(hostname)" "$OUT"
if [ -n "$OUT" ]; then pass "run: hostname is not empty ($OUT)"; else fail "run: hostname is not empty"; fi

# ------------------------------------------------------------------ network
HOSTIFS=$(awk 'NR > 2 { sub(":", "", $1); print $1 }' /proc/net/dev | sort | tr '\n' ' ')
acx run -- sh -c 'awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }" /proc/net/dev | sort | tr "\n" " "'
check_eq "run: only lo in /proc/net/dev (host has: $HOSTIFS)" "lo " "$OUT"

# A TCP service on all the host's addresses and an abstract unix socket (abstract sockets
# belong to the network namespace).
ABSTRACT=acabs-$ID
setsid "$PY" -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 0)); s.listen(64)
u = socket.socket(socket.AF_UNIX); u.bind("\0" + sys.argv[1]); u.listen(64)
print(s.getsockname()[1], flush=True)
def serve(sock):
    while True:
        c, _ = sock.accept(); c.sendall(b"HOSTSECRET\n"); c.close()
threading.Thread(target=serve, args=(u,), daemon=True).start()
serve(s)
' "$ABSTRACT" >"$AC_TMP/port" </dev/null 2>/dev/null &
bg_track $!
wait_until 5 test -s "$AC_TMP/port"
PORT=$(head -n1 "$AC_TMP/port")
HOSTIP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
[ -n "$HOSTIP" ] || HOSTIP=127.0.0.1
CLIENT='
import socket, sys
port, hostip, abstract = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for name, fam, addr in (("loopback", socket.AF_INET, ("127.0.0.1", port)),
                        ("hostip", socket.AF_INET, (hostip, port)),
                        ("abstract", socket.AF_UNIX, "\0" + abstract)):
    s = socket.socket(fam); s.settimeout(3)
    try:
        s.connect(addr); print(name, "CONNECTED", s.recv(64).decode().strip())
    except OSError as e:
        print(name, "refused", e.errno)
'
HOSTRES=$("$PY" -c "$CLIENT" "$PORT" "$HOSTIP" "$ABSTRACT" 2>&1)
check_contains "host: the service answers on 127.0.0.1:$PORT (baseline)" "$HOSTRES" "loopback CONNECTED HOSTSECRET"
check_contains "host: the abstract socket answers (baseline)" "$HOSTRES" "abstract CONNECTED HOSTSECRET"

acx run -- "$PY" -c "$CLIENT" "$PORT" "$HOSTIP" "$ABSTRACT"
check_match "run: host's 127.0.0.1:$PORT is unreachable" "loopback refused" "$OUT"
check_match "run: host's address $HOSTIP:$PORT is unreachable" "hostip refused" "$OUT"
check_match "run: host's abstract unix socket is unreachable" "abstract refused" "$OUT"
check_not_contains "run: nothing from the host service was received" "$OUT" "HOSTSECRET"

acx run -- bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT && head -n1 <&3"
check_not_contains "run: bash /dev/tcp to host 127.0.0.1:$PORT fails" "$OUT" "HOSTSECRET"
check_ne "run: bash /dev/tcp exits non-zero" 0 "$RC"

# ------------------------------------------------------------------ host secrets
echo "ROOTSECRET-$ID" >"/root/acmark-$ID"
echo "HOMESECRET-$ID" >"/home/acmark-$ID"
KEYF=/etc/ssh/ssh_host_actest${ID}_key
mkdir -p /etc/ssh
(umask 077 && echo "KEYSECRET-$ID" >"$KEYF")
at_exit "rm -f /root/acmark-$ID /home/acmark-$ID $KEYF"
echo "HOMEDIRSECRET-$ID" >"$AGENTCELL_HOME/acmark-$ID"

acx run -- sh -c "cat /root/acmark-$ID; ls -a /root; cat /home/acmark-$ID; ls -a /home"
check_not_contains "run: host /root marker unreadable" "$OUT" "ROOTSECRET-$ID"
check_not_contains "run: host /root marker not listed" "$OUT" "acmark-$ID"
check_not_contains "run: host /home marker unreadable" "$OUT" "HOMESECRET-$ID"
acx run -- sh -c 'cat /etc/shadow; cat /etc/gshadow'
SHADOW_HOST=$(cat /etc/shadow)
check_not_contains "run: host /etc/shadow content unreadable" "$OUT" "$SHADOW_HOST"
acx run -- sh -c 'ls /etc/ssh/; cat /etc/ssh/ssh_host_*_key'
check_not_contains "run: host ssh host key (planted $KEYF) unreadable" "$OUT" "KEYSECRET-$ID"
check_not_contains "run: host ssh host key not listed" "$OUT" "actest${ID}"
acx run -- sh -c "ls /work/main/Makefile; ls $AGENTCELL_HOME; cat $AGENTCELL_HOME/acmark-$ID"
check_not_contains "run: \$AGENTCELL_HOME of the host is not visible" "$OUT" "HOMEDIRSECRET-$ID"
check_not_contains "run: the host's /work tree is not visible" "$OUT" "/work/main/Makefile"

# Descriptors, cwd and root of every process inside (PID 1 included) must not lead out.
ESCAPE='
import ctypes, os, sys
mark = sys.argv[1]
me = str(os.getpid())
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
found = []
def suspicious(names):
    return any(n in ("sandboxes", "locks", "data", "run") or n.endswith(".json") or n.startswith("acmark") for n in names)
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    if pid == me:
        continue
    links = ["/proc/%s/cwd" % pid, "/proc/%s/root" % pid]
    try:
        links += ["/proc/%s/fd/%s" % (pid, fd) for fd in os.listdir("/proc/%s/fd" % pid) if int(fd) > 2]
    except OSError:
        pass
    for l in links:
        try:
            target = os.readlink(l)
        except OSError:
            continue
        for sub in ("", "/..", "/../..", "/sandboxes", "/../sandboxes"):
            try:
                names = os.listdir(l + sub)
            except OSError:
                continue
            if suspicious(names):
                found.append("LISTED %s%s (%s): %s" % (l, sub, target, names[:8]))
        if target.startswith("/") and target != "/dev/null" and not target.startswith("/dev/pts") and not os.path.isdir(l):
            try:
                fd = os.open(l, os.O_WRONLY | os.O_APPEND)
                os.write(fd, ("ACPWN-%s %s\n" % (mark, l)).encode())
                os.close(fd)
                found.append("WROTE %s (%s)" % (l, target))
            except OSError:
                pass
    # pidfd_open + pidfd_getfd: take the descriptor itself, not a reopen of its path
    pfd = libc.syscall(ctypes.c_long(434), ctypes.c_long(int(pid)), ctypes.c_long(0))
    if pfd >= 0:
        for n in range(3, 64):
            fd = libc.syscall(ctypes.c_long(438), ctypes.c_long(pfd), ctypes.c_long(n), ctypes.c_long(0))
            if fd < 0:
                continue
            try:
                names = os.listdir(fd)
                found.append("GOT dir fd %d of pid %s: %s" % (n, pid, names[:8]))
            except OSError:
                found.append("GOT fd %d of pid %s: %s" % (n, pid, os.readlink("/proc/self/fd/%d" % fd)))
            os.close(fd)
        os.close(pfd)
print("\n".join(found) if found else "none")
'
acx exec "$BOX" -- "$PY" -c "$ESCAPE" "$ID"
check_eq "exec: no process in the sandbox holds a descriptor/cwd/root leading to host directories or files" "none" "$OUT"
acx run -- "$PY" -c "$ESCAPE" "$ID"
check_eq "run: no process in the sandbox holds a descriptor/cwd/root leading to host directories or files" "none" "$OUT"
LEAKED=$(grep -rl "ACPWN-$ID" "$AGENTCELL_HOME" 2>/dev/null)
check_eq "host: no host file under \$AGENTCELL_HOME was written through /proc/*/fd" "" "$LEAKED"

# ------------------------------------------------------------------ writes stay inside
CANARY=/usr/local/share/accanary-$ID
echo "CANARY-$ID" >"$CANARY"
at_exit "rm -f $CANARY"
HOSTNAME_BEFORE=$(sha256sum /etc/hostname /etc/passwd)
W=acw-$ID
acx run -- sh -c "for p in /usr/$W /usr/local/bin/$W /etc/$W /tmp/$W /$W /var/tmp/$W /bin/$W /lib/$W /opt/$W; do echo x >\$p && echo wrote \$p; done
echo pwned >>$CANARY; echo pwned >>/etc/hostname; echo 'pwn::0:0::/:/bin/sh' >>/etc/passwd; rm -f $CANARY; echo done"
check_contains "run: root inside may write into /usr (its own layer)" "$OUT" "wrote /usr/$W"
for p in /usr/$W /usr/local/bin/$W /etc/$W /tmp/$W /$W /var/tmp/$W /bin/$W /lib/$W /opt/$W; do
	check_fail "host: $p written inside does not exist on the host" test -e "$p"
done
check_eq "host: a host file modified and deleted inside is unchanged" "CANARY-$ID" "$(cat "$CANARY" 2>&1)"
check_eq "host: /etc/hostname and /etc/passwd unchanged" "$HOSTNAME_BEFORE" "$(sha256sum /etc/hostname /etc/passwd)"
acx run -- sh -c "test -e /etc/$W && echo SEEN-ETC; test -e /usr/$W && echo SEEN-USR; grep -q ^pwn: /etc/passwd && echo SEEN-PASSWD; echo end"
check_eq "run: a second run does not see the first run's writes (/etc, /usr, /etc/passwd)" "end" "$OUT"

# ------------------------------------------------------------------ user namespace
UIDMAP_CHECK='
import sys
ok = True
base = None
for f in ("/proc/self/uid_map", "/proc/self/gid_map"):
    for line in open(f):
        inside, outside, count = map(int, line.split())
        if outside <= 0 < outside + count:
            print("%s maps host id 0: %s" % (f, line.strip())); ok = False
        if inside == 0:
            base = outside
print("BASE", base)
print("OK" if ok and base else "BAD")
'
acx run -- "$PY" -c "$UIDMAP_CHECK"
check_contains "run: uid_map/gid_map map sandbox 0 to a non-zero host id and never host 0" "$OUT" "OK"
check_not_contains "run: no mapping of host uid 0" "$OUT" "maps host id 0"
acx run -- cat /proc/self/uid_map
check_match "run: uid 0 inside is host uid != 0 ($OUT)" '^ *0 +[1-9][0-9]* +[0-9]+' "$OUT"

UMARK=acuid-$ID
setsid "$AGENTCELL" exec "$BOX" -- "$PY" -c 'import time; time.sleep(100)' "$UMARK" </dev/null >/dev/null 2>&1 &
bg_track $!
wait_until 10 has_python_matching "$UMARK"
SBPID=$(python_matching "$UMARK")
if [ -n "${SBPID:-}" ]; then
	check_ne "host: ps -o uid of a process inside is not 0" 0 "$(ps -o uid= -p "$SBPID" | tr -d ' ')"
	check_match "host: all four uids of that process are non-zero" '^Uid:\s+[1-9][0-9]*\s+[1-9][0-9]*\s+[1-9][0-9]*\s+[1-9][0-9]*$' "$(grep '^Uid:' "/proc/$SBPID/status")"
	check_match "host: all four gids of that process are non-zero" '^Gid:\s+[1-9][0-9]*\s+[1-9][0-9]*\s+[1-9][0-9]*\s+[1-9][0-9]*$' "$(grep '^Gid:' "/proc/$SBPID/status")"
else
	# shellcheck disable=SC2009 # the diagnostic shows whole ps lines
	fail "host: found the sandboxed process $UMARK on the host" "$(ps -ef | grep "$UMARK" | grep -v grep)"
fi
SUP=$(ac_supervisor_pid "$BOX")
if [ -n "$SUP" ]; then
	check_ne "host: the supervisor (pid $SUP) does not run as host root" 0 "$(ps -o uid= -p "$SUP" | tr -d ' ')"
else
	fail "host: found the supervisor of $BOX"
fi
ROOTS=""
for p in $(cg_procs "$BOX"); do
	u=$(awk '/^Uid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
	[ "$u" = 0 ] && ROOTS="$ROOTS $p"
done
if [ -n "$(cg_procs "$BOX")" ]; then
	check_eq "host: no process in the sandbox's cgroup runs as host uid 0" "" "$ROOTS"
else
	fail "host: the sandbox's pids cgroup agentcell/$BOX lists its processes"
fi

# ------------------------------------------------------------------ root can install into /usr
INST=/usr/local/bin/acinst-$ID
acx exec "$BOX" -- sh -c "printf '#!/bin/sh\necho installed-ok\n' >$INST && chmod 755 $INST && acinst-$ID"
check_eq "exec: root inside installs and runs $INST" "installed-ok" "$OUT"
acx exec "$BOX" -- sh -c "cp /usr/bin/env /usr/bin/env-copy-$ID && stat -c %u:%g /usr/bin/env /usr $INST"
check_eq "exec: host files under /usr appear owned by root inside (idmapped) and new files too" "0:0
0:0
0:0" "$OUT"
check_fail "host: $INST does not exist on the host" test -e "$INST"
check_fail "host: /usr/bin/env-copy-$ID does not exist on the host" test -e "/usr/bin/env-copy-$ID"
acx stop "$BOX"
acx start "$BOX"
acx exec "$BOX" -- "acinst-$ID"
check_eq "exec: the install persists across stop/start" "installed-ok" "$OUT"
check_fail "host: still not on the host after stop/start" test -e "$INST"

# ------------------------------------------------------------------ privileged operations
acx run -- sh -c '
mkdir -p /tmp/m
mount -t tmpfs none /tmp/m 2>/dev/null && echo MOUNTED-TMPFS
mount --bind / /tmp/m 2>/dev/null && echo MOUNTED-BIND
mount -t proc proc /tmp/m 2>/dev/null && echo MOUNTED-PROC
umount /proc/kcore 2>/dev/null && echo UNMOUNTED-KCORE
umount -l /proc/sys 2>/dev/null && echo UNMOUNTED-SYS
mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED-SYS
hostname pwned-host 2>/dev/null && echo SETHOSTNAME
echo pwned-proc >/proc/sys/kernel/hostname 2>/dev/null && echo PROCSYS-HOSTNAME
v=$(cat /proc/sys/vm/swappiness); echo "$v" >/proc/sys/vm/swappiness 2>/dev/null && echo PROCSYS-VM
echo h >/proc/sysrq-trigger 2>/dev/null && echo SYSRQ
echo "hostname now: $(cat /proc/sys/kernel/hostname)"
grep -c " /tmp/m " /proc/self/mounts'
for what in MOUNTED-TMPFS MOUNTED-BIND MOUNTED-PROC UNMOUNTED-KCORE UNMOUNTED-SYS REMOUNTED-SYS; do
	check_not_contains "run: mount operation refused ($what)" "$OUT" "$what"
done
check_not_contains "run: sethostname refused (hostname x)" "$OUT" "SETHOSTNAME"
check_not_contains "run: write to /proc/sys/kernel/hostname refused" "$OUT" "PROCSYS-HOSTNAME"
check_not_contains "run: write to /proc/sys/vm/swappiness refused" "$OUT" "PROCSYS-VM"
check_not_contains "run: write to /proc/sysrq-trigger refused" "$OUT" "SYSRQ"
check_not_contains "run: hostname unchanged after the attempts" "$OUT" "pwned"

# ------------------------------------------------------------------ masked /proc and /sys
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/timer_stats; do
	if [ -e "$p" ] && [ "$(head -c 64 "$p" 2>/dev/null | wc -c)" -gt 0 ]; then
		acx run -- sh -c "head -c 64 $p 2>/dev/null | wc -c"
		check_eq "run: $p masked (empty or absent inside; readable on the host)" "0" "$OUT"
	fi
done
for d in /sys/firmware /proc/acpi /proc/scsi; do
	if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then
		acx run -- sh -c "ls -A $d 2>/dev/null | wc -l"
		check_eq "run: $d masked (empty or absent inside)" "0" "$OUT"
	fi
done

# ------------------------------------------------------------------ /dev
ALLOWED=" null zero full random urandom tty pts ptmx shm fd stdin stdout stderr mqueue "
acx run -- ls -A /dev
EXTRA=""
for e in $OUT; do [[ "$ALLOWED" == *" $e "* ]] || EXTRA="$EXTRA $e"; done
if [ "$RC" -eq 0 ]; then check_eq "run: /dev holds only harmless nodes" "" "$EXTRA"; else fail "run: ls /dev works" "$(acx_diag)"; fi
acx exec "$BOX" -- ls -A /dev
EXTRA=""
for e in $OUT; do [[ "$ALLOWED" == *" $e "* ]] || EXTRA="$EXTRA $e"; done
if [ "$RC" -eq 0 ]; then check_eq "exec: /dev holds only harmless nodes" "" "$EXTRA"; else fail "exec: ls /dev works" "$(acx_diag)"; fi
acx run -- sh -c 'ls -l /dev/sda /dev/mem /dev/kmsg /dev/port /dev/kmem /dev/vda 2>/dev/null | wc -l'
check_eq "run: no /dev/sda, /dev/mem, /dev/kmsg, /dev/port" "0" "$OUT"
acx run -- sh -c 'mknod /tmp/acmem c 1 1 2>/dev/null && head -c 16 /tmp/acmem | wc -c | grep -qv "^0$" && echo READ-MEM;
mknod /tmp/acsda b 8 0 2>/dev/null && head -c 16 /tmp/acsda 2>/dev/null | wc -c | grep -qv "^0$" && echo READ-DISK; echo end'
check_not_contains "run: a device node made with mknod cannot read /dev/mem" "$OUT" "READ-MEM"
check_not_contains "run: a device node made with mknod cannot read a disk" "$OUT" "READ-DISK"
acx run -- sh -c 'echo x >/dev/null && head -c 4 /dev/urandom | wc -c'
check_eq "run: the harmless nodes work (/dev/null, /dev/urandom)" "4" "$OUT"

# ------------------------------------------------------------------ seccomp, no_new_privs, caps
for how in run exec; do
	if [ $how = run ]; then acx run -- cat /proc/self/status; else acx exec "$BOX" -- cat /proc/self/status; fi
	STATUS=$OUT
	check_match "$how: Seccomp: 2 in /proc/self/status" $'(^|\n)Seccomp:\t2(\n|$)' "$STATUS"
	check_match "$how: NoNewPrivs: 1 in /proc/self/status" $'(^|\n)NoNewPrivs:\t1(\n|$)' "$STATUS"
	for field in CapBnd CapEff CapPrm; do
		hex=$(awk -v f="$field:" '$1 == f { print $2 }' <<<"$STATUS")
		[ -n "$hex" ] || { fail "$how: $field present in /proc/self/status"; continue; }
		for cap in SYS_ADMIN:21 NET_ADMIN:12 SYS_PTRACE:19 SYS_MODULE:16 SYS_RAWIO:17 DAC_READ_SEARCH:2 SYS_BOOT:22 SYS_TIME:25; do
			bit=${cap#*:}
			set=$("$PY" -c "print((int('$hex', 16) >> $bit) & 1)")
			check_eq "$how: $field lacks CAP_${cap%:*} ($bit)" 0 "$set"
		done
	done
	hex=$(awk '$1 == "CapBnd:" { print $2 }' <<<"$STATUS")
	for cap in SYSLOG:34 MAC_ADMIN:33 MAC_OVERRIDE:32 BPF:39 PERFMON:38 SYS_PACCT:20 LINUX_IMMUTABLE:9; do
		bit=${cap#*:}
		set=$("$PY" -c "print((int('${hex:-0}', 16) >> $bit) & 1)")
		check_eq "$how: CapBnd lacks CAP_${cap%:*} ($bit) (beyond the issue's list)" 0 "$set"
	done
done
HOSTBND=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
check_eq "host: the host's bounding set has CAP_SYS_ADMIN (baseline)" 1 "$("$PY" -c "print((int('$HOSTBND', 16) >> 21) & 1)")"

# ------------------------------------------------------------------ dangerous system calls
HOSTPROBE=$("$PY" "$AC_LIB_DIR/syscall_probe.py" unshare_user keyctl add_key ptrace_traceme socket_packet clone_newuser)
check_eq "host: the probe sees these calls succeed on the host (baseline)" "0" "$(grep -vc '=OK$' <<<"$HOSTPROBE")"
for how in run exec; do
	if [ $how = run ]; then acx run -- "$PY" -c "$PROBE"; else acx exec "$BOX" -- "$PY" -c "$PROBE"; fi
	if [ "$RC" -ne 0 ] || [ "$(wc -l <<<"$OUT")" -lt 30 ]; then
		fail "$how: the system call probe ran" "$(acx_diag)"
		continue
	fi
	while IFS='=' read -r name res; do
		case "$res" in
		EPERM | ENOSYS) pass "$how: $name refused ($res)" ;;
		*) fail "$how: $name refused with EPERM or ENOSYS" "got: $res" ;;
		esac
	done <<<"$OUT"
done

# ------------------------------------------------------------------ descriptors
FDS='import os; print(sorted(int(x) for x in os.listdir("/proc/self/fd")))'
acx run -- "$PY" -c "$FDS" 5</etc/hostname 9>>"$AC_TMP/leak" 17<"$AGENTCELL_HOME"
check_eq "run: only 0 1 2 (and listdir's own 3) open, though the CLI had 5, 9 and 17 open" "[0, 1, 2, 3]" "$OUT"
acx exec "$BOX" -- "$PY" -c "$FDS" 5</etc/hostname 9>>"$AC_TMP/leak" 17<"$AGENTCELL_HOME"
check_eq "exec: only 0 1 2 (and listdir's own 3) open, though the CLI had 5, 9 and 17 open" "[0, 1, 2, 3]" "$OUT"
acx exec "$BOX" -- ls /proc/self/fd 5</etc/hostname
# shellcheck disable=SC2086,SC2116 # $(echo $OUT) joins the output's lines with single blanks
check_eq "exec: ls /proc/self/fd shows 0 1 2 and its own 3 only" "0 1 2 3" "$(echo $OUT)"
acx run -- ls /proc/self/fd 5</etc/hostname
# shellcheck disable=SC2086,SC2116 # as above
check_eq "run: ls /proc/self/fd shows 0 1 2 and its own 3 only" "0 1 2 3" "$(echo $OUT)"

# ------------------------------------------------------------------ /proc/*/exe overwrite
# The attack runs against a copy of the binary so that a success cannot break the build.
ACCOPY=$AC_TMP/agentcell-copy
cp "$AGENTCELL" "$ACCOPY"
chmod 755 "$ACCOPY"
SUM_BEFORE=$(sha256sum <"$ACCOPY")
EBOX=exe-$ID
EXEATTACK='
import glob, os, sys, time
hits = []
# A program of the sandbox (a "true" of the 30 execs that has just exited) is a file of
# the sandbox: its root may overwrite it anyway (a copy-up in its own layer). What must
# never be writable is an exe the sandbox has no path to: the supervisor and the shims.
# The file an open descriptor is (its path through /proc/self/fd, whatever became of the
# process whose exe it was): a file of the sandbox when that path leads to the same inode.
def where(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        return "?"
def own_file(fd, p):
    try:
        a, b = os.fstat(fd), os.stat(where(fd))
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    except OSError:
        return False
def attempt():
    for p in glob.glob("/proc/[0-9]*/exe") + ["/proc/self/exe"]:
        for mode in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC):
            try:
                fd = os.open(p, mode)
            except OSError:
                continue
            if not own_file(fd, p):
                os.write(fd, b"PWNED")
                hits.append("WROTE " + p + " (" + where(fd) + ")")
            os.close(fd)
        for flags in (os.O_RDONLY, os.O_PATH):
            try:
                fd = os.open(p, flags)
            except OSError:
                continue
            for mode in (os.O_WRONLY, os.O_RDWR):
                try:
                    w = os.open("/proc/self/fd/%d" % fd, mode)
                except OSError:
                    continue
                if not own_file(w, p):
                    os.write(w, b"PWNED")
                    hits.append("WROTE via fd " + p + " (" + where(w) + ")")
                os.close(w)
            os.close(fd)
deadline = time.time() + float(sys.argv[1])
while True:
    attempt()
    if time.time() > deadline:
        break
print("\n".join(sorted(set(hits))) or "none")
'
AGENTCELL=$ACCOPY ac create "$EBOX" >/dev/null 2>&1
AGENTCELL=$ACCOPY ac start "$EBOX" >/dev/null 2>&1
AGENTCELL=$ACCOPY ac exec "$EBOX" -- "$PY" -c "$EXEATTACK" 3 >"$AC_TMP/exeattack" 2>&1 &
ATTACK=$!
for _ in $(seq 30); do AGENTCELL=$ACCOPY ac exec "$EBOX" -- true >/dev/null 2>&1; done
wait $ATTACK
check_eq "exec: no /proc/*/exe could be opened for writing (while execs ran)" "none" "$(cat "$AC_TMP/exeattack")"
AGENTCELL=$ACCOPY acx exec "$EBOX" -- sh -c 'for f in /proc/[0-9]*/exe; do cp /bin/sh $f 2>/dev/null && echo COPIED $f; echo PWNED >$f 2>/dev/null && echo WROTE $f; done; echo end'
check_eq "exec: cp/echo over /proc/*/exe fail" "end" "$OUT"
AGENTCELL=$ACCOPY ac remove "$EBOX" >/dev/null 2>&1
check_eq "host: the agentcell binary is unchanged (sha256)" "$SUM_BEFORE" "$(sha256sum <"$ACCOPY")"

# The sandbox's init does not show the host's binary path or command line.
acx run -- cat /proc/1/cmdline
check_eq "run: /proc/1/cmdline is agentcell-init (no host path)" agentcell-init "$(tr -d '\0' <<<"$OUT")"
