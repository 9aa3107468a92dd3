#!/usr/bin/env bash
# Files on the Kubernetes backend (tar over pods/exec, src/backends/kubernetes/files.c and the
# shared src/backends/tarfiles.c) against the test API server: cp of a file and a tree both
# ways (content, modes, a symlink), cross-checked with kubectl exec and kubectl cp; files
# cat/put/ls/mkdir/rm; the HTTP API's file routes; run --file and create --file; a hostile
# pod (a symlink to a host path, a tar with "..", a symlink then a file through it, absolute
# names, a device node, a tar larger than the cap: nothing is written outside the
# destination); an image without tar (removed from the pod's file system: exit 127, as a
# real image without tar answers); a stopped sandbox's files refused.
#
# Environment (besides lib.sh's): KUBECTL, the kubectl binary (default: kubectl on PATH).
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes files"
cluster_objects() { K get pods,networkpolicies -o name 2>/dev/null | sort | tr '\n' ' '; }
BOX=kf$(uniq_id)
POD=agentcell-$BOX
# kx CMD...: a shell command in the pod through kubectl (not through agentcell).
kx() { K exec "$POD" -- sh -c "$1"; }

H=$AC_TMP/host
mkdir -p "$H/tree/sub/deeper" "$H/out"
printf 'hello k8s\n' >"$H/one.txt"
chmod 640 "$H/one.txt"
printf 'top\n' >"$H/tree/a.txt"
head -c 300000 /dev/urandom >"$H/tree/sub/blob.bin"
printf '#!/bin/sh\necho run\n' >"$H/tree/sub/run.sh"
chmod 755 "$H/tree/sub/run.sh"
chmod 600 "$H/tree/a.txt"
chmod 750 "$H/tree/sub"
printf 'deep\n' >"$H/tree/sub/deeper/d.txt"
ln -s a.txt "$H/tree/link"
BLOB_SUM=$(sha256sum <"$H/tree/sub/blob.bin" | cut -d' ' -f1)

# ---------------------------------------------------------------- a stopped sandbox
check_ac "create --backend kubernetes" create "$BOX" --backend kubernetes
acx files ls "$BOX" /tmp
check_rc "files ls on a stopped sandbox fails" 1
check_error_line "... with one error line"
check_contains "... saying files need a running sandbox on this backend" "$ERR" \
	"sandbox '$BOX' is not running: file operations need a running sandbox on the kubernetes backend"
acx cp "$H/one.txt" "$BOX:/tmp/one.txt"
check_contains "cp into a stopped sandbox: the same reason" "$ERR" "need a running sandbox on the kubernetes backend"

check_ac "start" start "$BOX"

# ---------------------------------------------------------------- cp in
check_ac "cp a file in" cp "$H/one.txt" "$BOX:/tmp/one.txt"
check_eq "kubectl exec sees its content" "hello k8s" "$(kx 'cat /tmp/one.txt')"
check_eq "... and its mode (640), owner root" "640 0" "$(kx 'stat -c "%a %u" /tmp/one.txt')"
check_ac "cp a tree in (its destination does not exist)" cp "$H/tree" "$BOX:/work/tree"
check_eq "the tree's files in the pod" "top|deep|$BLOB_SUM" \
	"$(kx 'printf "%s|%s|%s" "$(cat /work/tree/a.txt)" "$(cat /work/tree/sub/deeper/d.txt)" "$(sha256sum </work/tree/sub/blob.bin | cut -d" " -f1)"')"
check_eq "the tree's modes in the pod (600, 750, 755)" "600 750 755" \
	"$(kx 'stat -c %a /work/tree/a.txt /work/tree/sub /work/tree/sub/run.sh | tr "\n" " " | sed "s/ $//"')"
check_eq "the symlink is a symlink in the pod" "a.txt" "$(kx 'readlink /work/tree/link')"
check_eq "an executable runs in the pod" "run" "$(kx '/work/tree/sub/run.sh')"
mkdir -p "$H/dirdest"
check_ac "cp a file into an existing directory" cp "$H/one.txt" "$BOX:/work"
check_eq "... lands under its own name" "hello k8s" "$(kx 'cat /work/one.txt')"

# ---------------------------------------------------------------- cp out
check_ac "cp a tree out" cp "$BOX:/work/tree" "$H/out/tree"
check "the tree out equals the tree in (diff -r, no dereference)" diff -r --no-dereference "$H/tree" "$H/out/tree"
check_eq "modes out (600, 750, 755)" "600 750 755" \
	"$(stat -c %a "$H/out/tree/a.txt" "$H/out/tree/sub" "$H/out/tree/sub/run.sh" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the symlink out is a symlink" "a.txt" "$(readlink "$H/out/tree/link")"
check_ac "cp a file out into an existing directory" cp "$BOX:/tmp/one.txt" "$H/dirdest"
check_eq "... under its own name, with its mode" "hello k8s 640" \
	"$(cat "$H/dirdest/one.txt") $(stat -c %a "$H/dirdest/one.txt")"
K cp "$POD:/work/tree/sub/blob.bin" "$AC_TMP/kcp.bin" >/dev/null 2>&1
check_eq "kubectl cp reads what agentcell cp wrote" "$BLOB_SUM" "$(sha256sum <"$AC_TMP/kcp.bin" | cut -d' ' -f1)"
printf 'from kubectl\n' >"$AC_TMP/k.txt"
K cp "$AC_TMP/k.txt" "$POD:/tmp/k.txt" >/dev/null 2>&1
check_ac "agentcell cp reads what kubectl cp wrote" cp "$BOX:/tmp/k.txt" "$H/k.txt"
check_eq "... the same bytes" "from kubectl" "$(cat "$H/k.txt")"

# ---------------------------------------------------------------- files
printf 'put data\n' | ac files put "$BOX" /tmp/p/q/new.txt >/dev/null 2>&1
check_eq "files put: parents made, content in the pod" "put data" "$(kx 'cat /tmp/p/q/new.txt')"
acx files cat "$BOX" /tmp/p/q/new.txt
check_out "files cat" "put data"
acx files ls "$BOX" /work
check_match "files ls: the file, its mode and size" "file +0640 +10 one.txt" "$OUT"
check_match "files ls: the directory" "dir +0755 +[0-9]+ tree" "$OUT"
check_not_contains "files ls: only direct entries" "$OUT" "blob.bin"
acx files ls "$BOX" /
check_match "files ls /: the root's entries" "dir +[0-7]+ +[0-9]+ work" "$OUT"
check_ac "files mkdir -p" files mkdir "$BOX" /tmp/m/n/o
check "... the directory is in the pod" kx 'test -d /tmp/m/n/o'
acx files cat "$BOX" /work/tree
check_contains "files cat of a directory: not a regular file" "$ERR" "'/work/tree' is not a regular file"
acx files cat "$BOX" /tmp/none
check_contains "files cat of a missing file: not found" "$ERR" "no such file in the sandbox: '/tmp/none'"
acx files rm "$BOX" /work/tree
check_rc "files rm of a non-empty directory without -r fails" 1
check "... and the directory is still there" kx 'test -f /work/tree/a.txt'
check_ac "files rm a file" files rm "$BOX" /tmp/p/q/new.txt
check "... gone from the pod" kx 'test ! -e /tmp/p/q/new.txt'
check_ac "files rm -r a tree" files rm -r "$BOX" /work/tree
check "... gone from the pod" kx 'test ! -e /work/tree'

# ---------------------------------------------------------------- the HTTP API
if start_server k8sapi -- --port 0; then
	U=http://127.0.0.1:$SRV_PORT
	R=$(curl -s --max-time 60 "$U/sandboxes/$BOX/files/tmp/one.txt")
	check_eq "API GET a file" '"hello k8s\n"' "$(jq .data.content <<<"$R")"
	R=$(curl -s --max-time 60 -X PUT -H 'Content-Type: application/json' \
		-d '{"content": "via api\n"}' "$U/sandboxes/$BOX/files/tmp/api/f.txt")
	check_eq "API PUT a file: success" "true" "$(jq -r .success <<<"$R")"
	check_eq "... the pod has it" "via api" "$(kx 'cat /tmp/api/f.txt')"
	R=$(curl -s --max-time 60 -X DELETE "$U/sandboxes/$BOX/files/tmp/api/f.txt")
	check "API DELETE a file: gone from the pod" kx 'test ! -e /tmp/api/f.txt'
	stop_server k8sapi "$SRV_PID"
else
	fail "serve starts" "$(tail -20 "$AC_TMP/k8sapi.err")"
fi

# ---------------------------------------------------------------- --file
acx run --backend k8s --file "$H/one.txt:/tmp/in.txt" -- cat /tmp/in.txt
check_eq "run --backend k8s --file: the command reads the file" "hello k8s|0" "$OUT|$RC"
acx create kfc --backend k8s --file "$H/one.txt:/tmp/in.txt"
check_rc "create --file on kubernetes fails (a stopped sandbox has no pod)" 1
check_error_line "... with one error line"
check_contains "... saying why" "$ERR" "need a running sandbox on the kubernetes backend"
check_eq "... and leaves no sandbox in the store" "$BOX" "$(ac_names | tr '\n' ' ' | sed 's/ $//')"

# ---------------------------------------------------------------- a hostile pod
V=$AC_TMP/victim
mkdir -p "$V"
printf 'host secret\n' >"$V/secret"
kx "mkdir -p /tmp/evil && ln -s '$V' /tmp/evil/tohost && ln -s '$V/secret' /tmp/evil/secretlink"
check_ac "cp out a directory with symlinks to host paths" cp "$BOX:/tmp/evil" "$H/evil"
check_eq "... they arrive as symlinks, not followed" "$V $V/secret" \
	"$(readlink "$H/evil/tohost") $(readlink "$H/evil/secretlink")"
check "... nothing was read from the host through them (no copy of the secret)" \
	test -z "$(find "$H/evil" -type f)"
# Crafted tars, sent by a tar of the pod's own (first on PATH) as a hostile image would.
"$PY" - "$AC_TMP" <<'EOF'
import io, sys, tarfile
d = sys.argv[1]
def mk(name, entries):
    with tarfile.open("%s/%s.tar" % (d, name), "w", format=tarfile.GNU_FORMAT) as t:
        for kind, n, x in entries:
            ti = tarfile.TarInfo(n)
            if kind == "f":
                b = x.encode(); ti.size = len(b); ti.mode = 0o644; t.addfile(ti, io.BytesIO(b)); continue
            ti.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE, "c": tarfile.CHRTYPE}[kind]
            if kind in "lh":
                ti.linkname = x
            if kind == "c":
                ti.devmajor, ti.devminor = 1, 3
            ti.mode = 0o755
            t.addfile(ti)
mk("dotdot", [("d", "x", ""), ("f", "x/../../escaped", "pwned")])
mk("through", [("d", "x", ""), ("l", "x/l", d + "/victim"), ("f", "x/l/pwned", "pwned")])
mk("odd", [("d", "x", ""), ("f", "/x/abs", "inside"), ("c", "x/null", ""), ("h", "x/hard", "/etc/passwd")])
EOF
for t in dotdot through odd; do
	K exec -i "$POD" -- sh -c "cat >/tmp/$t.tar" <"$AC_TMP/$t.tar"
done
kx 'mkdir -p /tmp/x && printf "#!/bin/sh\ncat /tmp/\$(cat /tmp/which).tar\n" >/usr/local/bin/tar && chmod 755 /usr/local/bin/tar'
outside() { find "$AC_TMP" -name escaped -o -name pwned -o -name abs | grep -v "^$H/h-" || true; }
kx 'echo dotdot >/tmp/which'
acx cp "$BOX:/tmp/x" "$H/h-dotdot"
check_rc "a tar with '..' is refused" 1
check_contains "... naming the unsafe name" "$ERR" "the pod's tar has an unsafe name 'x/../../escaped'"
kx 'echo through >/tmp/which'
acx cp "$BOX:/tmp/x" "$H/h-through"
check_ne "a tar with a symlink, then a file through it, is refused" 0 "$RC"
check_eq "... nothing was written into the symlink's host target" "secret" "$(ls "$V")"
kx 'echo odd >/tmp/which'
check_ac "a tar with an absolute name, a device node and a hard link" cp "$BOX:/tmp/x" "$H/h-odd"
check_eq "... the absolute name lands below the destination" "inside" "$(cat "$H/h-odd/abs")"
check "... no device node is made" test ! -e "$H/h-odd/null"
check "... no hard link to a host file is made" test ! -e "$H/h-odd/hard"
check_eq "nothing of the hostile tars is anywhere outside their destinations" "" "$(outside)"
kx 'printf "#!/bin/sh\nhead -c 90000000 /dev/zero\n" >/usr/local/bin/tar'
acx files cat "$BOX" /tmp/one.txt
check_rc "a tar larger than the read cap is refused" 1
check_contains "... saying so" "$ERR" "the tar of '/tmp/one.txt' from sandbox '$BOX' is larger than"
check_eq "... and the pod's endless tar was killed (seen by kubectl exec)" "" \
	"$(kx 'ps -eo args' | grep -E '^head -c 90000000' || true)"

# ---------------------------------------------------------------- an image without tar
kx 'rm -f /usr/local/bin/tar /usr/bin/tar /bin/tar'
check_fail "the pod has no tar now" kx 'command -v tar'
acx cp "$H/one.txt" "$BOX:/tmp/one2.txt"
check_rc "cp into a pod without tar fails" 1
check_error_line "... with one error line"
check_contains "... naming the sandbox and that files need tar in the image" "$ERR" \
	"file operations on sandbox '$BOX' need tar in its image"
acx files cat "$BOX" /tmp/one.txt
check_contains "files cat without tar: the same reason" "$ERR" "need tar in its image"
acx files ls "$BOX" /tmp
check_contains "files ls without tar: the same reason" "$ERR" "need tar in its image"
acx exec "$BOX" -- cat /tmp/one.txt
check_out "exec still works in that pod" "hello k8s"

# ---------------------------------------------------------------- stop, remove
check_ac "stop" stop "$BOX"
acx files cat "$BOX" /tmp/one.txt
check_rc "files on the stopped sandbox fail again" 1
check_contains "... not running" "$ERR" "is not running"
check_ac "remove" remove "$BOX"
check_eq "nothing left in the cluster" "" "$(cluster_objects)"
