#!/bin/bash
# The command policy ([security.commands] block / allowlist_only) on sandboxes made from
# OCI image layers (issue 16). The masks see the sandbox's root as overlayfs stacks it:
# - an image of two layers (made by tests/image/mkarchive.py, `agentcell image import`):
#   a blocked program in layer 1 (/usr/bin/tool: a busybox with a marker appended, so not
#   /bin/busybox itself) and its copies in layer 2 (/opt/other, /srv/deep/x.bin) are all
#   refused, through `sh -c` and through a symlink; without the policy the same copy runs
#   (it is busybox: a symlink named echo to it prints);
# - a blocked program that layer 2 deletes (a whiteout) does not break the start;
# - a name hidden by layer 2's opaque directory is not the blocked program: the program
#   the sandbox does see under that name is, and its copy is refused;
# - one cache file per layer; a second start reuses them (none rewritten, none rescanned);
# - run --image (one-shot) masks the same;
# - a host-based template (the host's /usr with a layer above): a blocked program the layer
#   added and its copies in the layer, and a host program's copy in the layer, are refused;
# - a directory image with a layer above (its template) masks the layer's copy;
# - allowlist_only with an image: the allowed program runs, a separate binary does not
#   (busybox static needs no ELF loader; its applets are one file: allowing one allows all).
# Pieces a machine (or this checkout) lacks are visible skips.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
cd "$AC_TMP" || exit 1
CACHE_GLOB="$AGENTCELL_HOME/base/commands-*.masks"
# shellcheck disable=SC2086 # CACHE_GLOB is a glob, expanded on purpose (here and below)
caches() { ls -1 $CACHE_GLOB 2>/dev/null; }
# Inode and mtime of every cache file: a rewrite (temp + rename) gives another inode.
# shellcheck disable=SC2086 # CACHE_GLOB is a glob
idents() { stat -c '%n %i %.9Y' $CACHE_GLOB 2>/dev/null | sort; }

# ------------------------------------------------------------------ what this build has
acx image ls
if [ "$RC" -ne 0 ]; then
	skip "the command policy on images" "this build has no 'agentcell image' command: $ERR"
	exit 0
fi
MK=$AC_REPO/tests/image/mkarchive.py
if ! [ -f "$MK" ]; then
	skip "the command policy on images" "no tests/image/mkarchive.py in this checkout"
	exit 0
fi
if ! [ -x /bin/busybox ] || ! ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
	apt-get install -y busybox-static >/dev/null 2>&1
fi
if ! [ -x /bin/busybox ] || ! ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
	skip "the command policy on images" "busybox-static could not be installed"
	exit 0
fi

# ------------------------------------------------------------------ the layers
L=$AC_TMP/layers
L1=$L/one L2=$L/two
mkdir -p "$L1/bin" "$L1/etc" "$L1/root" "$L1/tmp" "$L1/usr/bin" "$L1/usr/local/bin" "$L1/srv/gone" \
	"$L2/opt" "$L2/srv/deep" "$L2/usr/bin" "$L2/usr/local/bin"
cp /bin/busybox "$L1/bin/busybox"
for p in sh cat echo ln ls test true rm mkdir; do ln -s busybox "$L1/bin/$p"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$L1/etc/passwd"
echo 'root:x:0:' >"$L1/etc/group"
chmod 1777 "$L1/tmp"
# busybox + a marker: another program, still runnable (as an applet through a symlink).
mkprog() { { cat /bin/busybox && printf '%s' "$2"; } >"$1" && chmod 755 "$1"; }
mkprog "$L1/usr/bin/tool" "tool-$ID"
mkprog "$L1/usr/bin/gone" "gone-$ID"
mkprog "$L1/usr/local/bin/tool3" "hidden-$ID"
mkprog "$L1/usr/bin/tool3" "seen-$ID"
cp -p "$L1/usr/bin/tool" "$L2/opt/other"
cp -p "$L1/usr/bin/tool" "$L2/srv/deep/x.bin"
cp -p "$L1/usr/bin/gone" "$L1/srv/gone/copy"
cp -p "$L1/usr/local/bin/tool3" "$L2/opt/a3"
cp -p "$L1/usr/bin/tool3" "$L2/opt/b3"
: >"$L2/usr/bin/.wh.gone"              # layer 2 deletes /usr/bin/gone
: >"$L2/usr/local/bin/.wh..wh..opq"    # and hides layer 1's /usr/local/bin

spec() { jq -cn --arg t "$1" --argjson l "$2" '{tags: [$t], layers: $l, compress: "none", config: {}}'; }
IMG=docker.io/local/pol-$ID:1
if "$PY" "$MK" image --format docker "$AC_TMP/img.tar" --image "$(spec "local/pol-$ID:1" "[\"$L1\",\"$L2\"]")" >"$AC_TMP/mk.out" 2>&1 &&
	ac image import "$AC_TMP/img.tar" >>"$AC_TMP/mk.out" 2>&1; then
	pass "a two-layer image made and imported"
else
	skip "the command policy on images" "the image could not be made: $(tail -n 3 "$AC_TMP/mk.out")"
	exit 0
fi

cat >"$AC_TMP/block.toml" <<'TOML'
[security.commands]
block = ["tool", "gone", "tool3"]
TOML

# ------------------------------------------------------------------ without the policy
acx run --image "$IMG" -- /bin/sh -c '/bin/ln -s /opt/other /tmp/echo && /tmp/echo copy-runs'
check_out "without a policy the copy in layer 2 runs (busybox as echo)" copy-runs

# ------------------------------------------------------------------ an image's two layers
S=pol-$ID
check_ac "create $S --image (two layers) blocking tool, gone and tool3" create "$S" --image "$IMG" --config "$AC_TMP/block.toml"
acx start "$S"
check_rc "start: a blocked program layer 2 deleted (a whiteout) does not break it" 0
# Through sh: argv[0] is not checked there, only the masks stop the program.
sx() { acx exec "$S" -- /bin/sh -c "$*"; }
sx /usr/bin/tool
check_rc "the blocked program (layer 1) is refused" 126
sx /opt/other
check_rc "its copy in layer 2 (/opt/other) is refused" 126
sx /srv/deep/x.bin
check_rc "its copy deep in layer 2 (/srv/deep/x.bin) is refused" 126
sx 'ln -s /opt/other /tmp/echo2 && /tmp/echo2 RAN'
check_rc "... also through a symlink named after an applet" 126
check_not_contains "... which printed nothing" "$OUT" RAN
sx 'test -e /usr/bin/gone'
check_ne "the program deleted by layer 2's whiteout is gone" 0 "$RC"
sx /usr/bin/tool3
check_rc "tool3 as the sandbox sees it (/usr/bin: layer 2 hides /usr/local/bin) is refused" 126
sx /opt/b3
check_rc "... and its copy in layer 2" 126
sx 'ln -s /opt/a3 /tmp/echo && /tmp/echo hidden-runs'
check_out "a copy of the tool3 hidden by the opaque directory is another program: it runs" hidden-runs
sx 'echo ok && ls / >/dev/null && cat /etc/passwd >/dev/null && echo fine'
check_out "allowed programs still run" "ok
fine"
acx exec "$S" -- /usr/bin/tool
check_rc "named directly: exit 126" 126
check_contains "... with the policy's clear error" "$ERR" "blocked by the command policy"

N1=$(caches | wc -l)
check_eq "one cache file per layer" 2 "$N1"
# shellcheck disable=SC2046 # the list of cache files
check_contains "the caches list layer 2's copies" "$(cat $(caches) 2>/dev/null)" "srv/deep/x.bin"
B1=$(idents)
check_ac "stop $S" stop "$S"
T0=$(date +%s%N)
check_ac "start $S again" start "$S"
T1=$(date +%s%N)
echo "# second start: $(((T1 - T0) / 1000000)) ms"
check_eq "the second start rescans nothing (the cache files are untouched)" "$B1" "$(idents)"
sx /opt/other
check_rc "the copy is still refused after the restart" 126
sx 'echo ok'
check_out "... and allowed programs run" ok

acx run --image "$IMG" --config "$AC_TMP/block.toml" -- /bin/sh -c '/srv/deep/x.bin; echo rc=$?'
check_contains "run --image: the copy in layer 2 is refused" "$OUT" "rc=126"
check_eq "... from the same caches" "$B1" "$(idents)"

# ------------------------------------------------------------------ allowlist_only
cat >"$AC_TMP/allow.toml" <<'TOML'
[security.commands]
allow = ["sh", "echo"]
allowlist_only = true
TOML
acx run --image "$IMG" --config "$AC_TMP/allow.toml" -- /bin/sh -c 'echo allowed'
if [ "$RC" -ne 0 ] && grep -qi 'landlock' <<<"$ERR"; then
	skip "allowlist_only with an image" "no Landlock here: $ERR"
else
	check_out "allowlist_only with an image (static busybox, no ELF loader): the allowed program runs" allowed
	acx run --image "$IMG" --config "$AC_TMP/allow.toml" -- /bin/sh -c '/opt/b3; echo rc=$?'
	check_contains "... a separate binary is refused" "$OUT" "rc=126"
fi

# ------------------------------------------------------------------ a host-based template
# A host sandbox whose changes become a layer above the host's /usr.
H=host-$ID TH=tplh-$ID HC=hostc-$ID
check_ac "create $H (the host base)" create "$H"
check_ac "start $H" start "$H"
XARGS=$(command -v xargs)
# shellcheck disable=SC2016 # for the sandbox's shell
acx exec "$H" -- sh -c 'set -e; { cat /bin/busybox; printf htool; } >/usr/local/bin/htool-'"$ID"'; chmod 755 /usr/local/bin/htool-'"$ID"'
	mkdir -p /opt/h /root/deep; cp /usr/local/bin/htool-'"$ID"' /opt/h/copy; cp /usr/local/bin/htool-'"$ID"' /root/deep/copy
	cp '"$XARGS"' /root/xcopy'
check_rc "a program and copies written in $H (/usr/local/bin, /opt, /root)" 0
check_ac "stop $H" stop "$H"
acx snapshot "$H" "$TH"
if [ "$RC" -ne 0 ]; then
	skip "the command policy on a host template" "snapshot failed: $ERR"
else
	printf '[security.commands]\nblock = ["htool-%s", "xargs"]\n' "$ID" >"$AC_TMP/hblock.toml"
	check_ac "create --template $TH blocking htool and xargs" create "$HC" --template "$TH" --config "$AC_TMP/hblock.toml"
	check_ac "start $HC" start "$HC"
	acx exec "$HC" -- sh -c "/usr/local/bin/htool-$ID"
	check_rc "host template: the blocked program the layer added is refused" 126
	acx exec "$HC" -- sh -c "/opt/h/copy"
	check_rc "host template: its copy in the layer (/opt) is refused" 126
	acx exec "$HC" -- sh -c "/root/deep/copy"
	check_rc "host template: its copy in the layer (/root) is refused" 126
	acx exec "$HC" -- sh -c "$XARGS --version"
	check_rc "host template: the host's blocked program is refused" 126
	acx exec "$HC" -- sh -c "/root/xcopy --version"
	check_rc "host template: the host program's copy in the layer is refused" 126
	acx exec "$HC" -- sh -c 'ls / >/dev/null && echo ok'
	check_out "host template: the host's other programs run" ok
	B2=$(idents)
	check_ac "stop $HC" stop "$HC"
	check_ac "start $HC again" start "$HC"
	check_eq "host template: the second start rescans nothing" "$B2" "$(idents)"
	ac remove "$HC" >/dev/null 2>&1
	ac template rm "$TH" >/dev/null 2>&1
fi
ac remove "$H" >/dev/null 2>&1

# ------------------------------------------------------------------ a directory image + a layer
R=$AC_TMP/rootfs
mkdir -p "$R/bin" "$R/usr/bin" "$R/etc" "$R/root" "$R/tmp" "$R/proc" "$R/dev" "$R/sys"
cp /bin/busybox "$R/bin/busybox"
for p in sh cat echo cp mkdir ls; do ln -s busybox "$R/bin/$p"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
chmod 1777 "$R/tmp"
mkprog "$R/usr/bin/dtool" "dtool-$ID"
D=dir-$ID TD=tpld-$ID DC=dirc-$ID
check_ac "create $D --image DIR" create "$D" --image "$R"
check_ac "start $D" start "$D"
acx exec "$D" -- sh -c 'mkdir -p /root/x && cp /usr/bin/dtool /root/x/dcopy'
check_rc "a copy written in $D" 0
check_ac "stop $D" stop "$D"
acx snapshot "$D" "$TD"
if [ "$RC" -ne 0 ]; then
	skip "the command policy on a directory image's template" "snapshot failed: $ERR"
else
	printf '[security.commands]\nblock = ["dtool"]\n' >"$AC_TMP/dblock.toml"
	check_ac "create --template $TD (the directory and a layer) blocking dtool" create "$DC" --template "$TD" --config "$AC_TMP/dblock.toml"
	check_ac "start $DC" start "$DC"
	acx exec "$DC" -- sh -c /usr/bin/dtool
	check_rc "directory + layer: the blocked program (the directory's) is refused" 126
	acx exec "$DC" -- sh -c /root/x/dcopy
	check_rc "directory + layer: its copy in the layer is refused" 126
	acx exec "$DC" -- sh -c 'echo ok'
	check_out "directory + layer: allowed programs run" ok
	ac remove "$DC" >/dev/null 2>&1
	ac template rm "$TD" >/dev/null 2>&1
fi
ac remove "$D" >/dev/null 2>&1
ac remove "$S" >/dev/null 2>&1
check_eq "no sandbox is left" "" "$(ac_names)"
