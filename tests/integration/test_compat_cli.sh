#!/bin/bash
# agentkernel's command line (issue 17): the binary invoked as "agentkernel" (a link), its
# README examples, the `sandbox`/`sb` group, its flags and defaults checked by their effect,
# the refusals; and the compatible aliases of agentcell's own spelling. `exec --sudo` is
# checked on an image whose User is nobody (tests/integration/user_image.sh), where only an
# explicit uid 0 prints 0.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/user_image.sh"
ac_setup

AKDIR=$AC_TMP/bin
mkdir -p "$AKDIR"
ln -s "$AGENTCELL" "$AKDIR/agentkernel"
AK=$AKDIR/agentkernel
# ak/akx/check_ak: ac/acx/check_ac through the agentkernel link.
ak() { AGENTCELL=$AK ac "$@"; }
akx() { AGENTCELL=$AK acx "$@"; }
check_ak() { AGENTCELL=$AK check_ac "$@"; }
ID=$(uniq_id)
# Milliseconds since the epoch of an RFC 3339 time.
ms() { date -d "$1" +%s%3N; }
# stderr of the last akx is one line "agentkernel: agentkernel's 'WHAT' is not supported".
check_refused() {
	local n
	n=$(printf '%s' "$ERR" | grep -c '' || true)
	if [ "$RC" = 2 ] && [ "$n" -eq 1 ] &&
		[[ "$ERR" == "agentkernel: agentkernel's '$2' is not supported by agentcell: "?* ]]; then
		pass "$1"
	else
		fail "$1" "expected exit 2 and one line about '$2'" "$(acx_diag)"
	fi
}

# ------------------------------------------------------------------ version, help
akx --version
check_match "agentkernel --version: 'agentkernel X.Y.Z (agentcell V)'" \
	'^agentkernel [0-9]+\.[0-9]+\.[0-9]+ \(agentcell [0-9.]+\)$' "$OUT"
akx version
check_match "agentkernel version: the same line" '^agentkernel 0\.18\.' "$OUT"
acx --version
check_match "agentcell --version is still agentcell's" '^agentcell [0-9.]+$' "$OUT"
akx --help
for c in run exec create start stop remove list info cp extend-ttl exec-list exec-logs \
	exec-kill gc serve mcp-server sandbox; do
	check_match "agentkernel --help lists $c" "(^|[[:space:]])$c([[:space:]]|$)" "$OUT"
done
akx run --help
check_contains "agentkernel run --help: agentkernel's usage line" "$OUT" "Usage: agentkernel run"
check_contains "agentkernel run --help: -k, --keep" "$OUT" "-k, --keep"
akx sb --help
check_contains "agentkernel sb --help lists extend-ttl" "$OUT" "extend-ttl"

# ------------------------------------------------------------------ README: run
akx run python3 -c "print('Hello from sandbox!')"
check_out "README: agentkernel run python3 -c ... (no --)" "Hello from sandbox!"
akx run sh -c 'exit 7'
check_rc "run: the command's exit status" 7
akx run --profile restrictive sh -c 'touch /x 2>/dev/null && echo wrote || echo ro'
check_out "README: run --profile restrictive (read-only root)" "ro"
akx run -p restrictive -- sh -c 'touch /x 2>/dev/null && echo wrote || echo ro'
check_out "run -p restrictive: -p is --profile" "ro"
akx run -- sh -c 'touch /x 2>/dev/null && echo wrote || echo ro'
check_out "run: default profile writes its root" "wrote"
# Network on shows in the sandbox as the egress proxy's HTTP_PROXY.
akx run --no-network sh -c 'echo ${HTTP_PROXY:-none}'
check_out "README: run --no-network (no proxy, no network)" "none"
akx run -e "FOO=bar-$ID" -- sh -c 'echo $FOO'
check_out "run -e KEY=VALUE: the sandbox sees it" "bar-$ID"
akx run --env FOO=baz -- sh -c 'echo $FOO'
check_out "run --env KEY=VALUE" "baz"
akx run -F -- echo fast
check_out "run -F/--fast: accepted, same result" "fast"
akx run -B native -- echo native
check_out "run -B native" "native"
akx run -B nosuch -- true
check_rc "run -B nosuch: a usage error" 2
check_match "run -B nosuch: prefixed agentkernel:" '^agentkernel: unknown backend' "$ERR"

# -i IMAGE: agentkernel's image, not agentcell's --interactive.
R=$AC_TMP/rootfs
mkdir -p "$R/bin" "$R/proc" "$R/dev" "$R/tmp" "$R/etc" "$R/sys" "$R/root"
cp /bin/busybox "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo "image-$ID" >"$R/etc/imagemark"
akx run -i "$R" -- /bin/busybox cat /etc/imagemark
check_out "run -i DIR: the directory image is used" "image-$ID"
akx run --image "$R" /bin/busybox cat /etc/imagemark
check_out "run --image DIR" "image-$ID"
akx run -i host -- sh -c 'test -x /usr/bin/python3 && echo host'
check_out "run -i host" "host"

# -c FILE: the config file.
printf '[resources]\nmemory_mb = 321\n' >"$AC_TMP/c.toml"
akx run -k -c "$AC_TMP/c.toml" -- true
K1=$(sed -n 's/^agentkernel: kept sandbox //p' <<<"$ERR")
check_eq "run -c FILE -k: the config applies (memory_mb)" 321 "$(ac_json_field "$K1" memory_mb)"

# -k: kept, with agentkernel's default TTL of 1h.
t0=$(date +%s%3N)
akx run -k -- true
K2=$(sed -n 's/^agentkernel: kept sandbox //p' <<<"$ERR")
check_match "run -k: names the kept sandbox" '^run-' "$K2"
check_eq "run -k: the sandbox is kept (running)" running "$(ac_status "$K2")"
E=$(ac_json_field "$K2" expires_at)
d=$(($(ms "$E") - t0))
if [ "$d" -ge 3590000 ] && [ "$d" -le 3620000 ]; then pass "run -k: expires in 1h (agentkernel's default)"; else fail "run -k: expires in 1h" "expires_at $E ($d ms)"; fi
akx run -k --ttl 0 -- true
K3=$(sed -n 's/^agentkernel: kept sandbox //p' <<<"$ERR")
check_eq "run -k --ttl 0: no expiry" "" "$(ac_json_field "$K3" expires_at)"
before=$(ac_names | wc -l)
akx run -- true
check_eq "run without -k: the sandbox is removed" "$before" "$(ac_names | wc -l)"

# ------------------------------------------------------------------ README: persistent
W=$AC_TMP/proj
mkdir -p "$W"
echo "proj-$ID" >"$W/mark"
P=my-project-$ID
(cd "$W" && AGENTCELL=$AK acx create "$P" --dir . && echo "$RC" >"$AC_TMP/rc")
check_eq "README: agentkernel create NAME --dir ." 0 "$(cat "$AC_TMP/rc")"
check_eq "create: started (agentkernel's default)" running "$(ac_status "$P")"
check_ak "README: agentkernel start NAME (already running)" start "$P"
akx exec "$P" cat /workspace/mark
check_out "create --dir .: the directory at /workspace" "proj-$ID"
akx exec "$P" sh -c 'echo $0 "$@"' a -b --c
check_out "README: agentkernel exec NAME CMD ARGS (no --, dashes kept)" "a -b --c"
akx exec "$P" -e "V=x$ID" -- sh -c 'echo $V'
check_out "exec -e KEY=VALUE: the command sees it" "x$ID"
acx exec "$P" -e "V=y$ID" -- sh -c 'echo $V'
check_out "agentcell exec -e: the same" "y$ID"
akx exec "$P" -w /tmp -- pwd
check_out "exec -w DIR" "/tmp"
akx exec "$P" --sudo -- id -u
check_out "exec --sudo: uid 0 of the sandbox" "0"
akx exec -d "$P" -- sh -c 'echo detached-out'
XID=$(jq -r .id <<<"$OUT" 2>/dev/null)
check_match "exec -d: JSON with the command's id (agentkernel's output)" '^[0-9a-f]{12}$' "$XID"
wait_until 10 sh -c "'$AGENTCELL' exec-status $XID --json | jq -e '.state != \"running\"' >/dev/null"
akx exec-logs "$P" "$XID"
check_out "exec-logs NAME ID: the output" "detached-out"
akx sandbox exec-logs "$P" "$XID"
check_out "sandbox exec-logs NAME ID" "detached-out"
acx exec-logs "$P" "$XID"
check_out "agentcell exec-logs NAME ID (second form)" "detached-out"
acx exec-logs "$XID"
check_out "agentcell exec-logs ID (first form still)" "detached-out"
acx exec-logs "other-$ID" "$XID"
check_rc "exec-logs with another sandbox's name: refused" 1
akx sb exec-list "$P"
check_eq "sb exec-list NAME: JSON listing the command" "$XID" "$(jq -r '.[0].id' <<<"$OUT" 2>/dev/null)"
X2=$(ak exec -d "$P" -- sleep 30 | jq -r .id)
akx exec-kill "$P" "$X2"
check_out "exec-kill NAME ID: agentkernel's message" "Command $X2 killed"
check_eq "exec-kill NAME ID: the command was killed" true "$(ac exec-status "$X2" --json | jq -r .killed)"

# cp, list, info/status
echo "cp-$ID" >"$AC_TMP/f"
check_ak "cp FILE NAME:/path" cp "$AC_TMP/f" "$P:/tmp/f"
check_eq "cp: the file arrived" "cp-$ID" "$(ac exec "$P" -- cat /tmp/f)"
check_ak "sandbox cp NAME:/path FILE" sandbox cp "$P:/tmp/f" "$AC_TMP/g"
check_eq "sandbox cp: the file came back" "cp-$ID" "$(cat "$AC_TMP/g")"
akx list
check_contains "README: agentkernel list shows it" "$OUT" "$P"
akx sb info "$P"
check_contains "sb info NAME" "$OUT" "$P"
akx status "$P"
check_contains "status NAME (= info)" "$OUT" "$P"
akx info "nosuch-$ID"
check_match "errors are prefixed agentkernel:" "^agentkernel: " "$ERR"

# extend-ttl: 1h by default, added to the current expiry.
ak create "t-$ID" --no-start --ttl 2h >/dev/null
check_eq "create --no-start: not started" stopped "$(ac_status "t-$ID")"
E1=$(ac_json_field "t-$ID" expires_at)
check_ak "sandbox extend-ttl NAME (no --by)" sandbox extend-ttl "t-$ID"
E2=$(ac_json_field "t-$ID" expires_at)
check_eq "extend-ttl: expires_at moved by exactly 1h" 3600000 "$(($(ms "$E2") - $(ms "$E1")))"
check_ak "extend-ttl NAME --by 30m" extend-ttl "t-$ID" --by 30m
E3=$(ac_json_field "t-$ID" expires_at)
check_eq "extend-ttl --by 30m: moved by 30 min" 1800000 "$(($(ms "$E3") - $(ms "$E2")))"
check_ak "sb stop / sb remove" sb remove "t-$ID"
check_eq "sb remove: gone" "" "$(ac_names | grep -x "t-$ID")"

# gc --dry-run removes nothing; gc removes.
ak sb create "g-$ID" --no-start --ttl 1s >/dev/null
sleep 2
akx gc --dry-run
check_contains "gc --dry-run names the expired sandbox" "$OUT" "g-$ID"
check_eq "gc --dry-run: it still exists" stopped "$(ac_status "g-$ID")"
acx gc --dry-run --json
check_eq "agentcell gc --dry-run --json" "g-$ID" "$(jq -r '.[0].name' <<<"$OUT")"
check_ak "sb gc" sb gc
check_eq "gc: it is removed" "" "$(ac_names | grep -x "g-$ID")"

check_ak "README: agentkernel stop NAME" stop "$P"
check_eq "stop: stopped" stopped "$(ac_status "$P")"
check_ak "README: agentkernel remove NAME" remove "$P"
check_eq "remove: gone" "" "$(ac_names | grep -x "$P")"

# ------------------------------------------------------------------ --sudo is uid 0
# On an image whose config sets User nobody, a command runs as nobody by default: only an
# explicit uid 0 makes --sudo print 0 (a sandbox of the host base is root anyway).
UREF=localhost/compat-user:$ID
if user_image "$UREF"; then
	pass "an image with User nobody made and imported"
	U=u-$ID
	check_ak "create $U --image (User nobody)" create "$U" --image "$UREF"
	akx exec "$U" -- id -u
	check_out "exec without --sudo: the image's User ($USER_IMAGE_UID)" "$USER_IMAGE_UID"
	akx exec "$U" --sudo -- id -u
	check_out "exec --sudo on a User nobody image: uid 0" "0"
	akx exec "$U" --sudo -- id -g
	check_out "exec --sudo on a User nobody image: gid 0" "0"
	XU=$(ak exec -d "$U" --sudo -- id -u | jq -r .id 2>/dev/null)
	wait_until 10 sh -c "'$AGENTCELL' exec-status '$XU' --json | jq -e '.state != \"running\"' >/dev/null"
	akx exec-logs "$U" "$XU"
	check_out "exec -d --sudo on a User nobody image: uid 0" "0"
	XN=$(ak exec -d "$U" -- id -u | jq -r .id 2>/dev/null)
	wait_until 10 sh -c "'$AGENTCELL' exec-status '$XN' --json | jq -e '.state != \"running\"' >/dev/null"
	akx exec-logs "$U" "$XN"
	check_out "exec -d without --sudo: the image's User" "$USER_IMAGE_UID"
	check_ak "remove $U" remove "$U"
else
	fail "an image with User nobody made and imported" "$(tail -n 5 "$AC_TMP/user-image.out")"
fi

# ------------------------------------------------------------------ mcp-server
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
out=$(printf '%s\n' "$init" | timeout -k 5 60 "$AK" mcp-server 2>/dev/null)
check_eq "agentkernel mcp-server answers initialize" 1 "$(jq -r 'select(.id == 1) | .result | has("protocolVersion") | if . then 1 else 0 end' <<<"$out" 2>/dev/null)"
out=$(printf '%s\n' "$init" | timeout -k 5 60 "$AGENTCELL" mcp-server 2>/dev/null)
check_eq "agentcell mcp-server (alias of mcp) answers initialize" 1 "$(jq -r 'select(.id == 1) | .result | has("protocolVersion") | if . then 1 else 0 end' <<<"$out" 2>/dev/null)"

# ------------------------------------------------------------------ what is not supported
akx setup
check_refused "setup: refused in one line, exit 2" setup
akx attach foo
check_refused "attach: refused" attach
akx ssh connect foo
check_refused "ssh: refused" ssh
akx daemon start
check_refused "daemon: refused" daemon
akx sandbox export foo
check_refused "sandbox export: refused" "sandbox export"
akx run --ssh -- true
check_refused "run --ssh: refused" "run --ssh"
akx create "s-$ID" --source https://example.com/x.git
check_refused "create --source: refused" "create --source"
check_eq "create --source: nothing was created" "" "$(ac_names | grep -x "s-$ID")"
akx nosuchcommand
check_rc "an unknown command: exit 2" 2

# ------------------------------------------------------------------ agentcell's aliases
acx run -e A1=v1 -- sh -c 'echo $A1'
check_out "agentcell run -e" "v1"
acx run -p restrictive -- sh -c 'touch /x 2>/dev/null && echo wrote || echo ro'
check_out "agentcell run -p restrictive" "ro"
acx run -c "$AC_TMP/c.toml" -k -- true
K4=$(sed -n 's/^agentcell: kept sandbox //p' <<<"$ERR")
check_eq "agentcell run -k -c FILE: kept, config applied" 321 "$(ac_json_field "$K4" memory_mb)"
acx create "b-$ID" -B native -e E1=z
check_eq "agentcell create -B native" native "$(ac_json_field "b-$ID" backend)"
check_eq "agentcell create: still not started" stopped "$(ac_status "b-$ID")"
ac start "b-$ID" >/dev/null
check_eq "agentcell create -e: the sandbox's env" z "$(ac exec "b-$ID" -- sh -c 'echo $E1')"
acx run --no-network -- sh -c 'echo ${HTTP_PROXY:-none}'
check_out "agentcell run --no-network" "none"
acx run --network --no-network -- true
check_rc "agentcell --network --no-network: a usage error" 2
acx run --no-network --network -- true
check_rc "agentcell --no-network --network: a usage error" 2
printf '[security]\nnetwork = true\n' >"$AC_TMP/net.toml"
acx run -c "$AC_TMP/net.toml" -- sh -c 'echo ${HTTP_PROXY:-none}'
check_match "the config's network = true gives the sandbox a proxy" "^http://" "$OUT"
acx run -c "$AC_TMP/net.toml" --no-network -- sh -c 'echo ${HTTP_PROXY:-none}'
check_out "agentcell --no-network overrides the config's network = true" "none"
out=$(echo "piped-$ID" | timeout 60 "$AGENTCELL" run -i -- cat)
check_eq "agentcell run -i is still --interactive" "piped-$ID" "$out"
X3=$(ac exec -d "b-$ID" -- sleep 30)
acx exec-kill "b-$ID" "$X3"
check_rc "agentcell exec-kill NAME ID" 0
check_eq "agentcell exec-kill NAME ID: killed" true "$(ac exec-status "$X3" --json | jq -r .killed)"

# ------------------------------------------------------------------ make install
D=$AC_TMP/destdir
BUILDDIR=$(dirname "$AGENTCELL")
if make -C "$AC_REPO" -s -o "$BUILDDIR/agentcell" BUILD="$BUILDDIR" DESTDIR="$D" PREFIX=/opt/ac install >"$AC_TMP/make.out" 2>&1; then
	check_eq "make install: the agentkernel link" agentcell "$(readlink "$D/opt/ac/bin/agentkernel")"
	check_match "make install: the installed link speaks agentkernel" '^agentkernel 0\.18' "$("$D/opt/ac/bin/agentkernel" --version)"
	make -C "$AC_REPO" -s -o "$BUILDDIR/agentcell" BUILD="$BUILDDIR" DESTDIR="$D" PREFIX=/opt/ac uninstall >/dev/null 2>&1
	check_fail "make uninstall removes both" test -e "$D/opt/ac/bin/agentkernel" -o -e "$D/opt/ac/bin/agentcell"
else
	fail "make install" "$(cat "$AC_TMP/make.out")"
fi
