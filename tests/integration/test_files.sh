#!/bin/bash
# Files in and out of sandboxes (cp, files ls|cat|put|rm|mkdir), running and stopped, and
# the attacks on path resolution: "..", absolute symlinks, symlinks planted by the sandbox.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=fl-$ID
SRC=$AC_TMP/src
mkdir -p "$SRC/sub/deeper"
printf 'hello\n' >"$SRC/a.txt"
head -c 300000 /dev/urandom >"$SRC/sub/blob.bin"
printf '#!/bin/sh\necho run-me\n' >"$SRC/sub/tool.sh"
chmod 750 "$SRC/sub/tool.sh"
chmod 4755 "$SRC/a.txt"
ln -s a.txt "$SRC/rel-link"
printf 'x' >"$SRC/sub/deeper/z"

check_ac "create $B" create "$B"
check_ac "cp a tree into a stopped sandbox" cp "$SRC" "$B:/data"
check_ac "start $B" start "$B"
check_eq "the file arrived" hello "$(ac exec "$B" -- cat /data/a.txt)"
check_eq "binary content is intact" "$(sha256sum <"$SRC/sub/blob.bin")" "$(ac exec "$B" -- sh -c 'sha256sum < /data/sub/blob.bin')"
check_eq "modes are kept" 750 "$(ac exec "$B" -- stat -c %a /data/sub/tool.sh)"
check_eq "the setuid bit is dropped" 755 "$(ac exec "$B" -- stat -c %a /data/a.txt)"
check_eq "files copied in belong to the sandbox's root" "0 0" "$(ac exec "$B" -- stat -c '%u %g' /data/sub/blob.bin)"
check_eq "symlinks are copied as symlinks" a.txt "$(ac exec "$B" -- readlink /data/rel-link)"
check_eq "deep trees are copied" x "$(ac exec "$B" -- cat /data/sub/deeper/z)"
check_ac "cp a file into an existing directory" cp "$SRC/a.txt" "$B:/tmp"
check_eq "it lands under its own name" hello "$(ac exec "$B" -- cat /tmp/a.txt)"

# Out again, to a new host path and into an existing host directory.
OUTD=$AC_TMP/out
check_ac "cp a tree out of a running sandbox" cp "$B:/data" "$OUTD"
check_eq "round trip: binary content" "$(sha256sum <"$SRC/sub/blob.bin")" "$(sha256sum <"$OUTD/sub/blob.bin")"
mkdir -p "$AC_TMP/into"
check_ac "cp a file out into an existing directory" cp "$B:/data/a.txt" "$AC_TMP/into"
check_eq "it lands under its own name" hello "$(cat "$AC_TMP/into/a.txt")"

# Attacks: the sandbox plants links to host paths; nothing may reach the host.
SECRET=$AC_TMP/host-secret-$ID
echo "host-secret-$ID" >"$SECRET"
chmod 600 "$SECRET"
ac exec "$B" -- sh -c "ln -s / /escape; ln -s $SECRET /evil; mkdir -p /d; ln -s /etc /d/up; ln -s ../../../../../../ /rel"
acx cp "$B:/escape$SECRET" "$AC_TMP/stolen1"
check_ne "cp out through an absolute symlink to / fails" 0 "$RC"
check_eq "... and nothing of the host was copied" "" "$(cat "$AC_TMP/stolen1" 2>/dev/null)"
acx cp "$B:/../../../../..$SECRET" "$AC_TMP/stolen2"
check_eq "cp out with .. stays inside" "" "$(cat "$AC_TMP/stolen2" 2>/dev/null)"
acx cp "$B:/rel$SECRET" "$AC_TMP/stolen3"
check_eq "cp out through a relative symlink stays inside" "" "$(cat "$AC_TMP/stolen3" 2>/dev/null)"
acx cp "$B:/evil" "$AC_TMP/evil-link"
check "a planted symlink is copied as a link, never followed" test -L "$AC_TMP/evil-link"
acx files cat "$B" "/escape$SECRET"
check_not_contains "files cat through a symlink to / stays inside" "$OUT" "host-secret"
acx files cat "$B" /evil
check_ne "files cat of a planted symlink fails" 0 "$RC"
check_not_contains "... without the host file's content" "$OUT" "host-secret"
MARK=/tmp/agentcell-written-$ID
acx cp "$SRC/a.txt" "$B:/escape$MARK"
check "cp in through a symlink to / does not write the host" test ! -e "$MARK"
echo pwned | "$AGENTCELL" files put "$B" "/escape$MARK" >/dev/null 2>&1
check "files put through a symlink to / does not write the host" test ! -e "$MARK"
acx files rm "$B" "/escape$SECRET"
check "files rm through a symlink to / does not delete host files" test -e "$SECRET"
acx files rm -r "$B" /d
check "rm -r of a tree holding a symlink to /etc does not follow it" test -e /etc/passwd

# The library's operations through 'files'.
echo "content-$ID" | "$AGENTCELL" files put "$B" /w/x/y.txt
check_eq "files put creates parents" "content-$ID" "$(ac files cat "$B" /w/x/y.txt)"
check_contains "files ls lists it" "$(ac files ls "$B" /w/x)" "y.txt"
check_ac "files mkdir -p" files mkdir "$B" /m/n/o
check_eq "the directory exists" dir "$(ac exec "$B" -- sh -c 'test -d /m/n/o && echo dir')"
acx files rm "$B" /w
check_ne "files rm of a non-empty directory needs -r" 0 "$RC"
check_ac "files rm -r" files rm -r "$B" /w
check_eq "it is gone" gone "$(ac exec "$B" -- sh -c 'test -e /w || echo gone')"
acx files cat "$B" /nonexistent
check_rc "files cat of a missing file: exit 1" 1
acx files cat "$B" relative/path
check_rc "files with a relative path: exit 2" 2
acx files frob "$B" /x
check_rc "files with an unknown operation: exit 2" 2
acx cp "$SRC/a.txt" "$AC_TMP/other"
check_rc "cp with no sandbox side: exit 2" 2
acx cp "$SRC/a.txt" "no-such-$ID:/x"
check_rc "cp into an unknown sandbox: exit 1" 1
acx cp "$AC_TMP/missing-$ID" "$B:/x"
check_rc "cp of a missing host file: exit 1" 1

# Stopped sandboxes: files persist and can be read and written without starting them.
check_ac "stop $B" stop "$B"
check_eq "files cat on a stopped sandbox" hello "$(ac files cat "$B" /data/a.txt)"
echo "stopped-$ID" | "$AGENTCELL" files put "$B" /stopped.txt
check_eq "still stopped after file operations" stopped "$(ac_status "$B")"
check_eq "no mount is left after a stopped-sandbox operation" "" "$(grep -F "$AGENTCELL_HOME" /proc/self/mountinfo)"
check_ac "start $B" start "$B"
check_eq "what was written while stopped is there" "stopped-$ID" "$(ac exec "$B" -- cat /stopped.txt)"
check_ac "remove $B" remove "$B"

# A hostile sandbox plants symlinks into /proc and /sys, hoping a host-root file operation
# follows them: /proc/1/environ (the environment of whoever started the sandbox), the host's
# kernel settings under /proc/sys.
P=pfs-$ID
check_ac "create $P" create "$P"
export AC_SECRET_MARK="secret-$ID"
check_ac "start $P (with a marker in the starter's environment)" start "$P"
unset AC_SECRET_MARK
INIT=$(ac info "$P" --json | jq -r .pid)
check_eq "the init's /proc/PID/environ holds nothing of the starter's environment" "" \
	"$(tr '\0' '\n' <"/proc/$INIT/environ" | grep -F "secret-$ID")"
ac exec "$P" -- sh -c 'ln -s /proc/1 /p1; ln -s /proc/1/environ /envlink; mkdir -p /w; ln -s /proc/sys/kernel /w/k; ln -s /sys/kernel /w/s' >/dev/null
acx files cat "$P" /p1/environ
check_contains "reading /proc through a planted directory symlink is refused" "$ERR" "kernel file system"
check_eq "and nothing of the environment came out" "" "$(grep -F "secret-$ID" <<<"$OUT")"
acx files cat "$P" /envlink
check_ne "reading /proc through a planted file symlink fails" 0 "$RC"
acx files cat "$P" /w/s/uevent_seqnum
check_ne "reading /sys through a planted symlink fails" 0 "$RC"
CP=$(cat /proc/sys/kernel/core_pattern)
echo "|/tmp/pwn-$ID" | "$AGENTCELL" files put "$P" /w/k/core_pattern >/dev/null 2>&1
check_eq "writing through a symlink into /proc/sys leaves the host's core_pattern alone" "$CP" \
	"$(cat /proc/sys/kernel/core_pattern)"
acx cp "$P:/p1/environ" "$AC_TMP/p1-$ID"
check_ne "copying a /proc file out through a planted symlink fails" 0 "$RC"
check "and nothing was written on the host" test ! -e "$AC_TMP/p1-$ID"
mkdir -p "$AC_TMP/root-$ID"
"$AGENTCELL" cp "$P:/w" "$AC_TMP/root-$ID/" >/dev/null 2>&1
check_eq "a tree copied out keeps the planted links as links" /proc/sys/kernel \
	"$(readlink "$AC_TMP/root-$ID/w/k")"
# Mount points are the sandbox's set-up: seen from the host they would be detached
# silently instead of failing with EBUSY as they do inside.
acx files rm "$P" /usr
check_contains "deleting the /usr mount point is refused" "$ERR" "mount point"
acx files rm -r "$P" /tmp
check_ne "deleting the /tmp mount point recursively is refused" 0 "$RC"
check_eq "the sandbox still runs programs from /usr" ok "$(ac exec "$P" -- sh -c 'true && echo ok')"
check_ac "stop $P" stop "$P"
check_ac "start $P again after the refused deletes" start "$P"
check_ac "remove $P" remove "$P"
