#!/bin/bash
# Lifecycle of persistent and ephemeral sandboxes, the state they leave behind (nothing),
# list/info, exit codes, stdin, env/workdir/user, tty, --mount-cwd, --read-only, --image,
# --profile, --keep and doctor.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
SB=$AGENTCELL_HOME/sandboxes
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

# Host-side leftovers of a sandbox: live processes of its pid namespace, its cgroups, any
# mount naming the home directory. Prints nothing when clean. (Processes are found by pid
# namespace, not by uid: sandboxes of other AGENTCELL_HOMEs may share the uid range.)
leftovers() { # CGROUP_LEAF PIDNS
	local p
	if [ -n "$2" ]; then
		p=$(procs_in_pidns "$2" | tr '\n' ' ')
		# shellcheck disable=SC2086 # $(echo $p) joins the pids with single blanks
		[ -n "$p" ] && echo "processes of $2: $p ($(ps -o pid=,stat=,args= -p "$(echo $p | tr ' ' ',')" 2>/dev/null | tr '\n' ';'))"
	fi
	p=$(cg_dirs "$1" | tr '\n' ' ')
	[ -n "$p" ] && echo "cgroups: $p"
	p=$(mounts_mentioning "$AGENTCELL_HOME" | head -5)
	[ -n "$p" ] && echo "mounts: $p"
	return 0
}

# ------------------------------------------------------------------ round trip
B=lc-$ID
check_ac "create $B" create "$B"
check_eq "create prints nothing alarming on stderr" "" "$ERR"
check "state file $B.json exists and is valid JSON naming the sandbox" jq -e --arg n "$B" '.name == $n' "$SB/$B.json"
check_eq "info: a created sandbox is stopped" "stopped" "$(ac_status "$B")"
check_eq "create does not start anything (no cgroup)" "" "$(cg_dirs "$B")"
check_ac "start $B" start "$B"
check_eq "info: started sandbox is running" "running" "$(ac_status "$B")"
acx exec "$B" -- echo hello
check_out "exec echo hello" "hello"
acx exec "$B" -- sh -c "echo persist-$ID >/root/persist && echo e >/etc/persist-e && mkdir -p /opt/p && echo o >/opt/p/f && sync"
check_rc "exec: write files in /root, /etc, /opt" 0
check_ac "stop $B" stop "$B"
check_eq "info: stopped after stop" "stopped" "$(ac_status "$B")"
acx exec "$B" -- true
check_rc "exec into a stopped sandbox fails with 1" 1
check_error_line "exec into a stopped sandbox: one 'agentcell:' error line"
check_ac "start $B again" start "$B"
acx exec "$B" -- cat /root/persist /etc/persist-e /opt/p/f
check_out "files survive stop/start" "persist-$ID
e
o"
acx start "$B"
if [ "$RC" -ne 0 ]; then check_error_line "start of a running sandbox: one 'agentcell:' error line"; fi
acx exec "$B" -- echo still
check_out "the sandbox still works after a second start" "still"
check_ac "remove $B (running)" remove "$B"
check_fail "remove deletes the state file" test -e "$SB/$B.json"
check_fail "remove deletes the data directory" test -e "$AGENTCELL_HOME/data/$B"
check_eq "remove leaves no run directory entry" "" "$(ls "$AGENTCELL_HOME/run" 2>/dev/null | grep -F "$B")"
acx info "$B"
check_rc "info after remove: 1 (unknown)" 1
check_not_contains "list after remove does not show it" "$(ac list)" "$B"
check_ac "create $B again" create "$B"
check_ac "start it" start "$B"
acx exec "$B" -- sh -c 'cat /root/persist /etc/persist-e /opt/p/f 2>/dev/null; echo end'
check_out "files are gone after remove + create" "end"
acx remove "$B"

# ------------------------------------------------------------------ nothing left behind
# stop: a running sandbox with an extra long-running command.
N=lo-$ID
acx create "$N"
acx start "$N"
LMARK=aclo-$ID
setsid "$AGENTCELL" exec "$N" -- "$PY" -c 'import time; time.sleep(100)' "$LMARK" </dev/null >/dev/null 2>&1 &
LCLI=$!
bg_track $LCLI
wait_until 10 has_python_matching "$LMARK"
SUP=$(ac_supervisor_pid "$N")
PIDNS=$(readlink "/proc/${SUP:-0}/ns/pid")
check_match "stop: baseline: the supervisor and its pid namespace are known" '^pid:' "$PIDNS"
check_ne "stop: baseline: processes run in that namespace" "" "$(procs_in_pidns "$PIDNS" | sed -n 2p)"
check_ne "stop: baseline: cgroups exist" "" "$(cg_dirs "$N")"
check_eq "host mount namespace shows no sandbox mount while running" "" "$(grep -F "$AGENTCELL_HOME" /proc/self/mountinfo)"
check_ac "stop $N" stop "$N"
check_eq "stop: nothing left when stop returns (processes, cgroups, mounts)" "" "$(leftovers "$N" "$PIDNS")"
wait_until 5 sh -c "! kill -0 $LCLI 2>/dev/null"
check_fail "stop: the exec CLI waiting on a command has returned" kill -0 "$LCLI"
check_eq "stop: no process carrying the exec'd command's marker is left" "" "$(procs_matching "$LMARK")"
check_eq "stop: no socket is left in run/" "" "$(find "$AGENTCELL_HOME/run" -type s 2>/dev/null)"

# remove of a running sandbox.
acx start "$N"
SUP=$(ac_supervisor_pid "$N")
PIDNS=$(readlink "/proc/${SUP:-0}/ns/pid")
check_ac "remove $N while running" remove "$N"
check_eq "remove: nothing left (processes, cgroups, mounts)" "" "$(leftovers "$N" "$PIDNS")"
check_fail "remove: data directory gone" test -e "$AGENTCELL_HOME/data/$N"

# run: find its process, pid namespace and cgroup while it runs, then check after it returns.
RMARK=acrunlo-$ID
( exec "$AGENTCELL" run -- "$PY" -c 'import time, os; open("/tmp/x", "w").write("x"); time.sleep(1.5)' "$RMARK" ) </dev/null >/dev/null 2>&1 &
RCLI=$!
bg_track $RCLI
if wait_until 10 has_python_matching "$RMARK"; then
	P=$(python_matching "$RMARK")
	RPIDNS=$(readlink "/proc/$P/ns/pid")
	RLEAF=$(awk -F: '$2 ~ /(^|,)pids(,|$)/ { sub("^/agentcell/", "", $3); print $3 }' "/proc/$P/cgroup")
	check_eq "run: host mount namespace shows no sandbox mount while running" "" "$(grep -F "$AGENTCELL_HOME" /proc/self/mountinfo)"
	wait_until 20 sh -c "! kill -0 $RCLI 2>/dev/null"
	wait "$RCLI"
	check_eq "run: exit status 0" 0 "$?"
	check_eq "run: nothing left when run returns (processes of $RPIDNS, cgroup $RLEAF, mounts)" "" "$(leftovers "$RLEAF" "$RPIDNS")"
	check_match "run: the cgroup leaf was a run-* leaf" '^run-' "$RLEAF"
else
	fail "run: found the run's process on the host"
fi
check_eq "run: no state, data or run entry is left in AGENTCELL_HOME" "" "$(ls -A "$SB" "$AGENTCELL_HOME/data" "$AGENTCELL_HOME/run" 2>/dev/null | grep -v -e '^$' -e ':$')"

# ------------------------------------------------------------------ list and info
I=inf-$ID
check_ac "create $I --memory 300 --cpus 2 --pids 99" create "$I" --memory 300 --cpus 2 --pids 99
acx list
check_rc "list exits 0" 0
check_match "list shows $I as stopped" "(^|"$'\n'")$I +stopped" "$OUT"
acx list --json
check "list --json is a JSON array" jq -e 'type == "array"' <<<"$OUT"
check_eq "list --json has $I with status stopped" "stopped" "$(jq -r --arg n "$I" '.[] | select(.name == $n) | .status' <<<"$OUT")"
acx info "$I" --json
INFO=$OUT
check_rc "info --json exits 0" 0
check_eq "info: name" "$I" "$(jq -r .name <<<"$INFO")"
check_match "info: uuid is a v7 uuid" "$UUID_RE" "$(jq -r .uuid <<<"$INFO")"
check_eq "info: status" "stopped" "$(jq -r .status <<<"$INFO")"
check_eq "info: image" "host" "$(jq -r .image <<<"$INFO")"
check_eq "info: vcpus" "2" "$(jq -r .vcpus <<<"$INFO")"
check_eq "info: memory_mb" "300" "$(jq -r .memory_mb <<<"$INFO")"
check_match "info: created_at is RFC 3339" "$TIME_RE" "$(jq -r .created_at <<<"$INFO")"
check_eq "info: backend" "native" "$(jq -r .backend <<<"$INFO")"
check_eq "info: uuid matches the state file" "$(jq -r .uuid "$SB/$I.json")" "$(jq -r .uuid <<<"$INFO")"
for f in name uuid image vcpus memory_mb created_at backend ttl_seconds expires_at ports labels description last_activity_at archived_at archived_reason; do
	check "state file has agentkernel field $f" jq -e --arg f "$f" 'has($f)' "$SB/$I.json"
done
acx start "$I"
check_eq "info: running after start" "running" "$(ac_status "$I")"
check_eq "list --json: running after start" "running" "$(ac_list_entry "$I" | jq -r .status)"
acx info "$I"
check_contains "info (text) names the sandbox" "$OUT" "$I"
check_contains "info (text) shows running" "$OUT" "running"
acx stop "$I"
# Unknown fields are kept; a missing uuid is back-filled.
jq '. + {"x_custom_field": {"kept": 42}} | del(.uuid)' "$SB/$I.json" >"$AC_TMP/st.json" && cp "$AC_TMP/st.json" "$SB/$I.json"
acx info "$I" --json
check_match "state: a missing uuid is back-filled" "$UUID_RE" "$(jq -r .uuid <<<"$OUT")"
acx start "$I"
acx stop "$I"
check_eq "state: unknown fields survive start/stop" "42" "$(jq -r .x_custom_field.kept "$SB/$I.json" 2>&1)"
check_match "state: the back-filled uuid is saved" "$UUID_RE" "$(jq -r .uuid "$SB/$I.json")"
acx remove "$I"

# ------------------------------------------------------------------ exit codes
E=ex-$ID
acx create "$E"
acx start "$E"
acx exec "$E" -- sh -c 'exit 3'
check_rc "exec: exit 3 -> 3" 3
acx exec "$E" -- sh -c 'kill -9 $$'
check_rc "exec: kill -9 self -> 137" 137
acx exec "$E" -- sh -c 'kill -TERM $$'
check_rc "exec: kill -TERM self -> 143" 143
acx exec "$E" -- "no-such-command-$ID"
check_rc "exec: command not found -> 127" 127
acx exec "$E" -- sh -c 'echo out; echo err >&2'
check_out "exec: stdout carries stdout only" "out"
check_eq "exec: stderr carries stderr only" "err" "$ERR"
acx run -- sh -c 'exit 3'
check_rc "run: exit 3 -> 3" 3
acx run -- sh -c 'kill -9 $$'
check_rc "run: kill -9 self -> 137" 137
acx run -- "no-such-command-$ID"
check_rc "run: command not found -> 127" 127
acx run -- sh -c 'echo out; echo err >&2; exit 0'
check_out "run: stdout carries stdout only" "out"
check_eq "run: stderr carries stderr only" "err" "$ERR"

# ------------------------------------------------------------------ stdin
acx exec -i "$E" -- cat <<<"hi"
check_out "exec -i: stdin reaches the command" "hi"
acx exec "$E" -i -- cat <<<"hi"
check_out "exec NAME -i: option after NAME works too" "hi"
acx exec "$E" -- cat <<<"hi"
check_out "exec without -i: cat gets EOF at once, sees nothing" ""
check_rc "exec without -i: cat exits 0" 0
check_le "exec without -i: returns promptly (${ELAPSED_MS} ms)" "$ELAPSED_MS" 10000
acx run -i -- cat <<<"hi"
check_out "run -i: stdin reaches the command" "hi"
acx run -- cat <<<"hi"
check_out "run without -i: cat sees nothing" ""
head -c 1048576 /dev/urandom >"$AC_TMP/blob"
acx exec -i "$E" -- sha256sum <"$AC_TMP/blob"
check_eq "exec -i: 1 MiB of binary stdin arrives intact" "$(sha256sum <"$AC_TMP/blob" | cut -d' ' -f1)" "${OUT%% *}"
check_eq "exec: 4 MiB of stdout arrive intact" "4194304" "$(ac exec "$E" -- head -c 4194304 /dev/zero | wc -c)"

# ------------------------------------------------------------------ env, workdir, user
export AC_HOST_SECRET_VAR="hostsecret-$ID"
acx exec "$E" --env FOO=bar --env BAZ='a b=c' -- sh -c 'echo "$FOO|$BAZ"'
check_out "exec --env K=V (repeatable, value with space and =)" "bar|a b=c"
acx exec --env FOO=before "$E" -- sh -c 'echo $FOO'
check_out "exec --env before NAME" "before"
acx exec "$E" -- env
check_not_contains "exec: the host's environment does not leak in" "$OUT" "hostsecret-$ID"
acx run -- env
check_not_contains "run: the host's environment does not leak in" "$OUT" "hostsecret-$ID"
acx run --env FOO=runbar -- sh -c 'echo $FOO'
check_out "run --env" "runbar"
EV=env-$ID
acx create "$EV" --env CREATED=yes --env OTHER=2
acx start "$EV"
acx exec "$EV" -- sh -c 'echo $CREATED $OTHER'
check_out "create --env: visible to every exec" "yes 2"
acx exec "$EV" --env CREATED=override -- sh -c 'echo $CREATED'
check_out "exec --env overrides create --env" "override"
acx remove "$EV"
acx exec "$E" --workdir /tmp -- pwd
check_out "exec --workdir /tmp" "/tmp"
acx exec "$E" -w /etc -- pwd
check_out "exec -w /etc" "/etc"
acx exec "$E" -- pwd
check_out "exec: default cwd is /" "/"
acx exec "$E" --workdir "/no-such-dir-$ID" -- pwd
check_ne "exec --workdir of a missing directory fails" 0 "$RC"
acx exec "$E" --user nobody -- id -u
check_out "exec --user nobody -> uid 65534" "65534"
acx exec "$E" --user 65534 -- sh -c 'id -u; id -g'
check_out "exec --user 65534 -> uid 65534" "65534
65534"
acx exec "$E" -u 1000 -- id -u
check_out "exec -u 1000 -> uid 1000" "1000"
acx exec "$E" --user nobody -- sh -c 'touch /usr/x-nobody 2>/dev/null && echo WROTE; grep CapEff /proc/self/status'
check_out "exec --user nobody: really unprivileged (no write to /usr, no caps)" "CapEff:	0000000000000000"
acx exec "$E" --user "no-such-user-$ID" -- id -u
check_ne "exec --user of an unknown name fails" 0 "$RC"

# ------------------------------------------------------------------ tty
PTY=$AC_LIB_DIR/pty_run.py
OUTT=$(timeout 30 "$PY" "$PTY" 33 97 33 97 20 -- "$AGENTCELL" exec -t "$E" -- sh -c 'tty; stty size' 2>&1)
check_match "exec -t: the command has a tty (/dev/pts/N)" '/dev/pts/[0-9]+' "$OUTT"
check_contains "exec -t: stty size follows the terminal (33 97)" "$OUTT" "33 97"
check_contains "exec -t: exit status 0" "$OUTT" "EXIT 0"
OUTT=$(timeout 30 "$PY" "$PTY" 33 97 40 120 20 -- "$AGENTCELL" exec -it "$E" -- sh -c 'stty size; echo READY; read x; stty size' 2>&1)
check_contains "exec -it: typed input reaches the command and a resize follows (40 120)" "$OUTT" "40 120"
check_contains "exec -it: exit status 0" "$OUTT" "EXIT 0"
OUTT=$(timeout 30 "$PY" "$PTY" 24 80 24 80 20 -- "$AGENTCELL" exec -it "$E" -- sh -c 'exit 5' 2>&1)
check_contains "exec -it: exit status 5 through the pty" "$OUTT" "EXIT 5"
acx exec "$E" -- tty
check_out "exec without -t: no tty" "not a tty"

# ------------------------------------------------------------------ --mount-cwd
WS=$(mktemp -d "$AC_TMP/ws.XXXXXX")
echo "content-$ID" >"$WS/file"
echo sibling >"$AC_TMP/acsibling-$ID"
ln -s /root "$WS/escape"
echo "ROOTSECRET-$ID" >"/root/acmark-lc-$ID"
at_exit "rm -f /root/acmark-lc-$ID"
(
	cd "$WS" && acx run --mount-cwd -- sh -c 'pwd; cat /workspace/file; echo new >/workspace/out; stat -c %u /workspace/file'
	printf '%s\n' "$OUT" >"$AC_TMP/mc.out"
)
check_eq "run --mount-cwd: pwd is /workspace, file readable, host file owned by 0 inside" "/workspace
content-$ID
0" "$(cat "$AC_TMP/mc.out")"
check_eq "run --mount-cwd: a file written there appears on the host" "new" "$(cat "$WS/out" 2>&1)"
check_eq "run --mount-cwd: and is owned by host uid 0" "0" "$(stat -c %u "$WS/out" 2>&1)"
OUTW=$(cd "$WS" && ac run --mount-cwd -- sh -c "ls /workspace/.. ; cat /workspace/escape/acmark-lc-$ID" 2>&1)
check_not_contains "run --mount-cwd: the host's parent directory is not reachable via /workspace/.." "$OUTW" "acsibling-$ID"
check_not_contains "run --mount-cwd: a symlink in the workspace does not lead to the host's /root" "$OUTW" "ROOTSECRET-$ID"
MC=mc-$ID
(cd "$WS" && ac create "$MC" --mount-cwd >/dev/null 2>&1)
acx start "$MC"
acx exec "$MC" -- sh -c 'pwd; cat file'
check_out "create --mount-cwd: exec starts in /workspace with the files" "/workspace
content-$ID"
acx remove "$MC"
check_eq "remove of a --mount-cwd sandbox keeps the host's files" "content-$ID" "$(cat "$WS/file" 2>&1)"
acx run -- sh -c 'ls /workspace 2>/dev/null | wc -l'
check_out "run without --mount-cwd: no workspace content" "0"

# ------------------------------------------------------------------ --read-only
acx run --read-only -- sh -c 'echo x >/x 2>/dev/null && echo WROTE-ROOT; echo x >/usr/x 2>/dev/null && echo WROTE-USR; echo x >/etc/x 2>/dev/null && echo WROTE-ETC; echo x >/root/x 2>/dev/null && echo WROTE-ROOTHOME; echo t >/tmp/t && cat /tmp/t'
check_out "run --read-only: /, /usr, /etc, /root refuse writes; /tmp works" "t"
acx run --read-only -- awk '$2 == "/tmp" { print $3 }' /proc/mounts
check_out "run --read-only: /tmp is a tmpfs" "tmpfs"
acx run -- awk '$2 == "/tmp" { print $3; print ($4 ~ /(^|,)size=/) ? "sized" : "unsized" }' /proc/mounts
check_out "run: /tmp is a size-limited tmpfs" "tmpfs
sized"
RO=ro-$ID
acx create "$RO" --read-only
acx start "$RO"
acx exec "$RO" -- sh -c 'touch /x 2>/dev/null && echo WROTE; touch /tmp/y && echo tmp-ok'
check_out "create --read-only: exec cannot write /, can write /tmp" "tmp-ok"
acx remove "$RO"

# ------------------------------------------------------------------ --image DIR
if ! [ -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'; then
	apt-get install -y busybox-static >/dev/null 2>&1
fi
if [ -x /bin/busybox ] && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
	R=$AC_TMP/rootfs
	mkdir -p "$R/bin" "$R/proc" "$R/dev" "$R/tmp" "$R/etc" "$R/sys" "$R/root"
	cp /bin/busybox "$R/bin/busybox"
	ln -s busybox "$R/bin/sh"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
	echo "image-$ID" >"$R/etc/imagemark"
	acx run --image "$R" -- /bin/busybox echo hi
	check_out "run --image DIR: /bin/busybox echo hi" "hi"
	acx run --image "$R" -- /bin/busybox sh -c 'cat /etc/imagemark; ls /usr/bin/python3 2>/dev/null; echo new >/bin/new && echo wrote'
	check_out "run --image DIR: the image's files, not the host's /usr; writable layer on top" "image-$ID
wrote"
	check_fail "run --image DIR: writes do not reach the image directory" test -e "$R/bin/new"
	IM=img-$ID
	acx create "$IM" --image "$R"
	check_eq "info: image is the directory" "$R" "$(ac_json_field "$IM" image)"
	acx start "$IM"
	acx exec "$IM" -- /bin/busybox echo hi
	check_out "create --image DIR: exec /bin/busybox echo hi" "hi"
	acx remove "$IM"
else
	skip "--image DIR with busybox-static" "busybox-static could not be installed"
fi

# ------------------------------------------------------------------ --profile
RP=rp-$ID
check_ac "create --profile restrictive" create "$RP" --profile restrictive
check_eq "restrictive: memory_mb 256" "256" "$(ac_json_field "$RP" memory_mb)"
check_eq "restrictive: half a CPU" "0.5" "$(ac info "$RP" --json | jq -r '.cpus // .vcpus')"
check_eq "restrictive: read_only" "true" "$(ac_json_field "$RP" read_only)"
acx start "$RP"
check_eq "restrictive: cgroup memory limit 256 MiB" $((256 * 1048576)) "$(cg_file "$RP" memory memory.limit_in_bytes)"
acx exec "$RP" -- sh -c 'touch /x 2>/dev/null && echo WROTE; echo end'
check_out "restrictive: the root is read-only" "end"
acx remove "$RP"
acx run --profile restrictive -- sh -c 'touch /x 2>/dev/null && echo WROTE; echo end'
check_out "run --profile restrictive: the root is read-only" "end"
OUTP=$(cd "$WS" && TERM=xterm-ac-$ID LANG=C.UTF-8 ac run --profile permissive -- sh -c 'pwd; echo $TERM; cat file' 2>&1)
check_eq "run --profile permissive: mounts cwd and passes TERM" "/workspace
xterm-ac-$ID
content-$ID" "$OUTP"
acx run --profile moderate -- sh -c 'echo $TERM'
check_out "run --profile moderate: TERM is not passed" ""

# ------------------------------------------------------------------ --keep
acx run --keep -- sh -c 'echo kept >/root/k'
check_rc "run --keep: exit 0" 0
KEPT=$(sed -n 's/^agentcell: kept sandbox \([A-Za-z0-9_-]*\)$/\1/p' <<<"$ERR")
check_match "run --keep: prints 'agentcell: kept sandbox NAME' on stderr" '^[A-Za-z0-9][A-Za-z0-9_-]*$' "$KEPT"
if [ -n "$KEPT" ]; then
	check_contains "run --keep: the sandbox is listed" "$(ac_names)" "$KEPT"
	[ "$(ac_status "$KEPT")" = running ] || ac start "$KEPT" >/dev/null 2>&1
	acx exec "$KEPT" -- cat /root/k
	check_out "run --keep: the kept sandbox still has the run's files" "kept"
	check_ac "run --keep: the kept sandbox can be removed" remove "$KEPT"
fi
acx run --keep --name "kn-$ID" -- true
check_contains "run --keep --name: uses the given name" "$ERR" "agentcell: kept sandbox kn-$ID"
acx remove "kn-$ID"

# ------------------------------------------------------------------ doctor
acx doctor
check_rc "doctor exits 0 on this host" 0
for w in overlay seccomp cgroup idmap; do
	check_contains "doctor mentions $w" "$(tr 'A-Z' 'a-z' <<<"$OUT$ERR")" "$w"
done

acx remove "$E"
check_eq "at the end: no data directory is left for removed sandboxes" "" "$(ls -A "$AGENTCELL_HOME/data" 2>/dev/null)"
