#!/bin/bash
# Disk limits (--disk, disk_mb): a sandbox's writable layer has its own size in blocks and
# inodes. Writing past it fails with ENOSPC inside, df inside shows the sandbox's size, the
# host's AGENTCELL_HOME stays writable (state, audit), data persists across stop/start, a
# full sandbox still starts, remove leaves no loop device, mount or file, bad values are
# refused (CLI exit 2, API 400), agentcell.toml sets the default, older sandboxes (no
# disk_mb in their state) keep working without a limit.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)

# Loop devices: a persistent sandbox's disk is a loop-mounted ext4 image.
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
HAVE_LOOP=1
if [ ! -e /dev/loop-control ] || ! command -v mke2fs >/dev/null; then
	HAVE_LOOP=0
fi

# df -P -k / inside: "size_kb used_kb" of the root file system.
df_root() { ac exec "$1" -- df -P -k / 2>/dev/null | awk 'NR == 2 { print $2 }'; }
loops_of_home() {
	local f
	for f in /sys/block/loop*/loop/backing_file; do
		[ -e "$f" ] && grep -F -- "$AGENTCELL_HOME" "$f"
	done
	return 0
}

# ------------------------------------------------------------------ bad values
for bad in 0 -5 abc 15 99999999999 1048577 12MB "" 18446744073709551617; do
	acx create "bad-$ID" --disk "$bad"
	check_rc "create --disk '$bad': exit 2" 2
	check_error_line "create --disk '$bad': one error line"
done
check_contains "the error names the accepted range" "$ERR" "16 to 1048576, or 'unlimited'"
acx run --disk 0 -- true
check_rc "run --disk 0: exit 2" 2
check_error_line "run --disk 0: one error line"
check_eq "no sandbox was made by a bad --disk" "" "$(ac_names)"

# ------------------------------------------------------------------ one-shot runs: tmpfs
acx run --disk 32 -- df -P -k /
SIZE=$(awk 'NR == 2 { print $2 }' <<<"$OUT")
check_eq "run --disk 32: df inside shows 32 MB" 32768 "$SIZE"
acx run --disk 32 -- df -P -i /
check_eq "run --disk 32: 2048 inodes (one per 16 KB)" 2048 "$(awk 'NR == 2 { print $2 }' <<<"$OUT")"
acx run --disk 32 -- dd if=/dev/zero of=/big bs=1M count=64
check_ne "run --disk 32: writing 64 MB fails" 0 "$RC"
check_contains "run --disk 32: ENOSPC inside" "$ERR" "No space left on device"
acx run -- df -P -k /
check_eq "run: the default disk is 10240 MB" $((10240 * 1024)) "$(awk 'NR == 2 { print $2 }' <<<"$OUT")"
acx run --disk unlimited -- true
check_rc "run --disk unlimited: accepted from the command line" 0

if [ "$HAVE_LOOP" = 0 ]; then
	skip "persistent sandboxes with a disk image" "no loop devices or no mke2fs here"
	exit 0
fi

# ------------------------------------------------------------------ a persistent sandbox
D=dk-$ID
check_ac "create $D --disk 64" create "$D" --disk 64
check_eq "state: disk_mb 64" 64 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/$D.json")"
check_ac "start $D" start "$D"
IMG=$AGENTCELL_HOME/data/$D/disk.img
check_eq "the image is 64 MB" $((64 * 1048576)) "$(stat -c %s "$IMG" 2>&1)"
ALLOC=$(($(stat -c %b "$IMG") * $(stat -c %B "$IMG")))
check_le "the image is sparse on the host (< 16 MB allocated)" "$ALLOC" $((16 * 1048576))
SIZE=$(df_root "$D")
check_le "df inside: at most 64 MB" "$SIZE" 65536
check_gt "df inside: roughly 64 MB (> 48 MB)" "$SIZE" 49152
check_contains "info shows the disk" "$(ac info "$D")" "64 MB"
acx exec "$D" -- sh -c 'echo kept > /root/kept; sync'
check_rc "a file written before filling the disk" 0

acx exec "$D" -- dd if=/dev/zero of=/big bs=1M count=100
check_ne "dd of 100 MB into a 64 MB disk fails" 0 "$RC"
check_contains "dd: ENOSPC inside" "$ERR" "No space left on device"
ALLOC=$(($(stat -c %b "$IMG") * $(stat -c %B "$IMG")))
check_le "the host holds at most the image's size" "$ALLOC" $((64 * 1048576))

# The host's state store and audit log still take writes.
acx exec "$D" -- true
check_rc "exec into the full sandbox works" 0
check_ac "describe (a state write) after the disk filled" describe "$D" "full disk"
check_eq "the state took the write" "full disk" "$(ac_json_field "$D" description)"
acx list
check_contains "list works" "$OUT" "$D"
acx audit --sandbox "$D"
check_contains "the audit log recorded the exec after the disk filled" "$OUT" "exec"
H=$AGENTCELL_HOME/host-write-test
if echo ok >"$H" && [ "$(cat "$H")" = ok ]; then pass "AGENTCELL_HOME is writable"; else fail "AGENTCELL_HOME is writable"; fi
rm -f "$H"

# Inodes: more files than the budget (64 MB / 16 KB = 4096).
acx exec "$D" -- sh -c 'rm -f /big; mkdir /many && cd /many && i=0; while [ $i -lt 6000 ]; do touch f$i 2>/dev/null || break; i=$((i+1)); done; echo $i'
N=${OUT:-0}
check_le "files: the inode budget stops them (< 4096 made)" "$N" 4095
check_gt "files: thousands could be made first" "$N" 3000
acx exec "$D" -- touch /one-more
check_ne "touch in a sandbox out of inodes fails" 0 "$RC"
check_contains "touch: ENOSPC" "$ERR" "No space left on device"
acx exec "$D" -- df -P -i /
check_eq "df -i inside: 4096 inodes" 4096 "$(awk 'NR == 2 { print $2 }' <<<"$OUT")"

# A full sandbox stops and starts again, its data intact.
check_ac "stop the full sandbox" stop "$D"
check_eq "stop: no loop device left" "" "$(loops_of_home)"
check_ac "start the full sandbox again" start "$D"
acx exec "$D" -- cat /root/kept
check_out "data persists across stop/start" "kept"
acx exec "$D" -- sh -c 'rm -rf /many && echo again > /root/again'
check_rc "freeing space inside lets writes go on" 0
check_ac "restart" stop "$D"
check_ac "start" start "$D"
acx exec "$D" -- cat /root/again
check_out "a write after freeing space persists" "again"

# Files into a stopped sandbox go through the same image.
check_ac "stop" stop "$D"
echo hostfile >"$AC_TMP/f"
check_ac "cp into the stopped sandbox" cp "$AC_TMP/f" "$D:/root/f"
check_ac "start" start "$D"
acx exec "$D" -- cat /root/f
check_out "the copied file is on the sandbox's disk" "hostfile"

check_ac "remove $D" remove "$D"
check_eq "remove: no loop device left" "" "$(loops_of_home)"
check_eq "remove: no mount left" "" "$(mounts_mentioning "$AGENTCELL_HOME/data")"
if [ -e "$AGENTCELL_HOME/data/$D" ]; then fail "remove: the data directory is gone"; else pass "remove: the data directory is gone"; fi

# ------------------------------------------------------------------ defaults and config
DEF=def-$ID
check_ac "create without --disk" create "$DEF"
check_eq "default disk_mb 10240" 10240 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/$DEF.json")"
check_ac "remove" remove "$DEF"
printf '[resources]\ndisk_mb = 32\n' >"$AGENTCELL_HOME/agentcell.toml"
check_ac "create with agentcell.toml disk_mb = 32" create "cfg-$ID"
check_eq "agentcell.toml sets the default" 32 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/cfg-$ID.json")"
check_ac "create with --disk 48 over the config" create "cli-$ID" --disk 48
check_eq "--disk wins over agentcell.toml" 48 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/cli-$ID.json")"
printf '[resources]\ndisk_mb = "unlimited"\n' >"$AGENTCELL_HOME/agentcell.toml"
check_ac "create with agentcell.toml disk_mb = \"unlimited\"" create "unl-$ID"
check_eq "unlimited is disk_mb 0" 0 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/unl-$ID.json")"
printf '[resources]\ndisk_mb = 5\n' >"$AGENTCELL_HOME/agentcell.toml"
acx create "badcfg-$ID"
check_rc "a bad disk_mb in agentcell.toml: exit 2" 2
check_contains "the error names the key" "$ERR" "resources.disk_mb"
rm -f "$AGENTCELL_HOME/agentcell.toml"
for n in "cfg-$ID" "cli-$ID" "unl-$ID"; do ac remove "$n" >/dev/null 2>&1; done

# ------------------------------------------------------------------ older sandboxes
OLD=old-$ID
check_ac "create a sandbox" create "$OLD"
jq 'del(.disk_mb)' "$AGENTCELL_HOME/sandboxes/$OLD.json" >"$AC_TMP/old.json" &&
	cp "$AC_TMP/old.json" "$AGENTCELL_HOME/sandboxes/$OLD.json"
check_ac "a state without disk_mb (made before disk limits) starts" start "$OLD"
acx exec "$OLD" -- sh -c 'echo old > /root/old'
check_rc "and takes writes" 0
if [ -d "$AGENTCELL_HOME/data/$OLD/upper" ] && [ ! -e "$AGENTCELL_HOME/data/$OLD/disk.img" ]; then
	pass "its layers stay on the host, without an image"
else
	fail "its layers stay on the host, without an image" "$(ls -la "$AGENTCELL_HOME/data/$OLD" 2>&1)"
fi
check_contains "info says it has no disk limit" "$(ac info "$OLD")" "unlimited (made before disk limits existed)"
check_ac "resize memory of the old sandbox still works" resize "$OLD" --memory 256
acx resize "$OLD" --disk 100
check_rc "resize --disk is refused: exit 2" 2
check_contains "resize --disk: says why" "$ERR" "fixed when it is made"
check_ac "remove the old sandbox" remove "$OLD"

# ------------------------------------------------------------------ the HTTP API
if command -v curl >/dev/null; then
	SOCK=$AC_TMP/api.sock
	setsid "$AGENTCELL" serve --socket "$SOCK" >"$AC_TMP/serve.out" 2>"$AC_TMP/serve.err" </dev/null &
	bg_track $!
	wait_until 10 test -S "$SOCK" || fail "serve: the socket appears"
	api() { curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' -X "$1" "http://localhost$2" ${3:+-d "$3"} -w '\n%{http_code}'; }
	for body in '{"name":"a1","disk_mb":0}' '{"name":"a1","disk_mb":-5}' '{"name":"a1","disk_mb":"abc"}' \
		'{"name":"a1","disk_mb":99999999999}' '{"name":"a1","disk_mb":64.5}' '{"name":"a1","disk_mb":"unlimited"}'; do
		R=$(api POST /sandboxes "$body")
		check_eq "API create $body: 400" 400 "$(tail -1 <<<"$R")"
		check_contains "API create $body: names disk_mb" "$R" "disk_mb"
	done
	R=$(api POST /run '{"command":["true"],"disk_mb":0}')
	check_eq "API run with disk_mb 0: 400" 400 "$(tail -1 <<<"$R")"
	R=$(api POST /run '{"command":["df","-P","-k","/"],"disk_mb":32}')
	check_eq "API run with disk_mb 32: 200" 200 "$(tail -1 <<<"$R")"
	check_contains "API run with disk_mb 32: df shows 32768 KB" "$R" " 32768 "
	R=$(api POST /sandboxes "{\"name\":\"api-$ID\",\"disk_mb\":48}")
	check_eq "API create with disk_mb 48: 201" 201 "$(tail -1 <<<"$R")"
	check_eq "API create: the state has disk_mb 48" 48 "$(jq -r .disk_mb "$AGENTCELL_HOME/sandboxes/api-$ID.json" 2>&1)"
	check_contains "API info shows disk_mb" "$(api GET "/sandboxes/api-$ID")" '"disk_mb":48'
else
	skip "API checks" "no curl"
fi
