#!/bin/bash
# Copies of blocked programs against the command policy (attack review item 8). With git
# and perl blocked, /usr/lib/git-core/git (an identical copy of /usr/bin/git: another
# inode, outside PATH) and /usr/bin/perl5.36-x86_64-linux-gnu (a small wrapper that runs
# perl through libperl.so) still ran. Now every file of the read-only base or image whose
# content is a blocked program's is masked wherever it lives, and so are versioned names
# of blocked programs in the PATH directories. The list of copies is computed once and
# cached in $AGENTCELL_HOME/base/commands-*.masks; these checks also show when it is
# reused, when it is rebuilt, and that a damaged cache never masks less. The attacks go
# through `sh -c`: the shim's argv[0] check refuses a command *named* git itself, but only
# the masks stop what a shell or any other program starts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
CACHE_GLOB="$AGENTCELL_HOME/base/commands-*.masks"
# shellcheck disable=SC2086 # CACHE_GLOB is a glob, expanded on purpose (here and below)
caches() { ls -1 $CACHE_GLOB 2>/dev/null; }
# ident FILE: inode and mtime (ns); a rewrite (temp + rename) gives another inode.
ident() { stat -c '%i %.9Y' "$1" 2>/dev/null || echo "missing $1"; }

cat >"$AC_TMP/block.toml" <<'TOML'
[security.commands]
block = ["git", "perl"]
TOML

# ------------------------------------------------------------------ host base
C=pol-$ID
check_ac "create $C with git and perl blocked" create "$C" --config "$AC_TMP/block.toml"
check_ac "start $C" start "$C"
acx exec "$C" -- /usr/bin/git --version
check_rc "git itself is refused" 126
if [ -f /usr/lib/git-core/git ] && cmp -s /usr/lib/git-core/git /usr/bin/git; then
	acx exec "$C" -- sh -c '/usr/lib/git-core/git --version'
	check_rc "an identical copy of git outside PATH (/usr/lib/git-core/git) is refused" 126
	acx exec "$C" -- sh -c 'cd /usr/lib/git-core && ./git --version'
	check_ne "... also by a relative path" 0 "$RC"
else
	skip "an identical copy of git outside PATH is refused" "no /usr/lib/git-core/git identical to /usr/bin/git here"
fi
if [ -f /usr/bin/perl5.36-x86_64-linux-gnu ]; then
	acx exec "$C" -- sh -c '/usr/bin/perl5.36-x86_64-linux-gnu -e 1'
	check_rc "perl's versioned wrapper (perl5.36-x86_64-linux-gnu) is refused" 126
	acx exec "$C" -- /usr/bin/perl5.36-x86_64-linux-gnu -e 1
	check_contains "... named directly: the policy's clear error" "$ERR" "blocked by the command policy"
else
	skip "perl's versioned wrapper is refused" "no /usr/bin/perl5.36-x86_64-linux-gnu here"
fi
acx exec "$C" -- sh -c 'for f in /usr/bin/perl5*; do [ -e "$f" ] && "$f" -e "print 1" && echo "RAN $f"; done; true'
check_not_contains "no perl5* name in /usr/bin runs" "$OUT" "RAN"
check_eq "allowed programs still run (sh, python3, ls)" "ok 42" \
	"$(ac exec "$C" -- sh -c 'ls / >/dev/null && echo ok $(python3 -c "print(6*7)")')"
acx exec "$C" -- sh -c 'printf "#!/usr/bin/perl\nprint qq(RAN\\n);\n" >/tmp/s.pl && chmod 755 /tmp/s.pl && /tmp/s.pl'
check_rc "a script with #!/usr/bin/perl cannot reach perl either" 126

N=$(caches | wc -l)
check_eq "one cache file for this block list" 1 "$N"
F=$(caches | head -1)
check_contains "the cache lists git-core's copy" "$(cat "$F" 2>/dev/null)" "usr/lib/git-core/git"
BEFORE=$(ident "$F")
check_ac "stop $C" stop "$C"
check_ac "start $C again" start "$C"
check_eq "the second start reuses the cache (same inode and mtime)" "$BEFORE" "$(ident "$F")"
check_eq "a run with the same block list reuses it too" "$BEFORE" \
	"$(ac run --config "$AC_TMP/block.toml" -- true >/dev/null 2>&1; ident "$F")"

# A tampered cache (one path taken out): it no longer matches its checksum and is rebuilt.
if [ -n "$F" ]; then
	grep -v 'git-core/git$' "$F" >"$AC_TMP/tampered" && cat "$AC_TMP/tampered" >"$F"
	check_not_contains "(the cache was tampered with)" "$(cat "$F")" "git-core/git"
	acx run --config "$AC_TMP/block.toml" -- sh -c '/usr/lib/git-core/git --version'
	check_rc "a tampered cache does not under-mask" 126
	check_contains "... it was rebuilt" "$(cat "$(caches | head -1)")" "usr/lib/git-core/git"
	# A corrupt one (garbage) likewise.
	F=$(caches | head -1)
	printf 'garbage\n' >"$F"
	acx run --config "$AC_TMP/block.toml" -- sh -c '/usr/lib/git-core/git --version'
	check_rc "a corrupt cache does not under-mask" 126
fi

# python3 is a symlink to python3.11: the same file, masked through the link.
printf '[security.commands]\nblock = ["python3"]\n' >"$AC_TMP/py.toml"
PYV=$(readlink -f /usr/bin/python3)
acx run --config "$AC_TMP/py.toml" -- sh -c "$PYV -c 'print(1)'"
check_rc "python3 blocked: its real name ($PYV) is refused" 126
acx run --config "$AC_TMP/py.toml" -- sh -c 'echo ok'
check_out "python3 blocked: sh still runs" "ok"

# Another block list: another key, another cache.
cat >"$AC_TMP/block2.toml" <<'TOML'
[security.commands]
block = ["git", "perl", "curl"]
TOML
N0=$(caches | wc -l)
acx run --config "$AC_TMP/block2.toml" -- sh -c '/usr/lib/git-core/git --version'
check_rc "a changed block list: copies still refused" 126
check_eq "a changed block list gets its own cache" $((N0 + 1)) "$(caches | wc -l)"
acx run --config "$AC_TMP/block2.toml" -- sh -c 'echo ok'
check_out "a changed block list: allowed programs run" "ok"
check "nothing changed on the host" test -x /usr/lib/git-core/git

# ------------------------------------------------------------------ image directory
if ! [ -x /bin/busybox ] || ! ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
	apt-get install -y busybox-static >/dev/null 2>&1
fi
if [ -x /bin/busybox ] && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'; then
	R=$AC_TMP/rootfs
	mkdir -p "$R/bin" "$R/usr/bin" "$R/proc" "$R/dev" "$R/tmp" "$R/etc" "$R/sys" "$R/root" \
		"$R/var/lib/dpkg" "$R/srv/odd/place"
	cp /bin/busybox "$R/bin/busybox"
	ln -s busybox "$R/bin/sh"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
	: >"$R/var/lib/dpkg/status"
	printf '#!/bin/sh\necho RAN-%s\n' "$ID" >"$R/usr/bin/tool"
	printf '#!/bin/sh\necho RAN-versioned\n' >"$R/usr/bin/tool2.5"
	chmod 755 "$R/usr/bin/tool" "$R/usr/bin/tool2.5"
	cp -p "$R/usr/bin/tool" "$R/srv/odd/place/x.bin"
	cat >"$AC_TMP/img.toml" <<'TOML'
[security.commands]
block = ["tool"]
TOML
	# Through sh: argv[0] is not checked there, only the masks stop the program.
	irun() { acx run --image "$R" --config "$AC_TMP/img.toml" -- /bin/sh -c "$*"; }
	irun /usr/bin/tool
	check_rc "image: the blocked program is refused" 126
	irun /srv/odd/place/x.bin
	check_rc "image: an identical copy at an odd path is refused" 126
	irun /usr/bin/tool2.5
	check_rc "image: a versioned name of the blocked program in PATH is refused" 126
	irun /bin/busybox echo ok
	check_out "image: allowed programs still run" "ok"
	NI=$(caches | wc -l)
	# shellcheck disable=SC2086 # CACHE_GLOB is a glob
	IF=$(ls -1t $CACHE_GLOB | head -1)
	IB=$(ident "$IF")
	check "image: a cache file was written" test -f "$IF"
	irun /bin/busybox true
	check_eq "image: the cache is reused" "$IB" "$(ident "$IF")"

	# A cached copy that is gone and a new one elsewhere: the stale entry fails its check
	# when used, the list is rebuilt, the new copy is found.
	mkdir -p "$R/srv/other"
	mv "$R/srv/odd/place/x.bin" "$R/srv/other/y.bin"
	irun /srv/other/y.bin
	check_rc "image: a stale cache (a listed copy gone) is rebuilt: the moved copy is refused" 126
	# shellcheck disable=SC2086 # CACHE_GLOB is a glob
	check_contains "... and listed" "$(cat "$(ls -1t $CACHE_GLOB | head -1)")" "srv/other/y.bin"

	# The package database changes: another key, a new list, the old one dropped.
	# shellcheck disable=SC2086 # CACHE_GLOB is a glob
	IF=$(ls -1t $CACHE_GLOB | head -1)
	cp -p "$R/usr/bin/tool" "$R/srv/odd/z.bin"
	touch -d '+1 min' "$R/var/lib/dpkg/status"
	irun /srv/odd/z.bin
	check_rc "image: after the dpkg status changed, a new copy is refused" 126
	check_fail "image: the old cache of the same image and block list is gone" test -e "$IF"
	check_eq "image: still one cache for the image" "$NI" "$(caches | wc -l)"
else
	skip "image directory checks" "busybox-static could not be installed"
fi
