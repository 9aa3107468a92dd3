#!/usr/bin/env bash
# Files on the Nomad backend (src/backends/nomad/files.c) against the test Nomad agent
# (tests/nomad/fake_nomad.py: its allocations run as native sandboxes of its own home; its
# alloc dir's "alloc" is a host directory of its state, "sandbox/local" and
# "sandbox/secrets" are /local and /secrets inside the task's sandbox). Two routes:
#   - reads and lists below /alloc, /local (and lists below /secrets) through
#     /v1/client/fs/ls and /cat: proved by the agent's request log (GET /v1/client/fs/...)
#     and by its execs.log staying as it was; the size is refused from the listing before
#     any cat; a symbolic link on the way sends the operation to exec + tar (a link the
#     sandbox planted towards a host file is never read through the agent);
#   - everything else as tar over the allocation exec stream: cp of a file and a tree both
#     ways (content, modes, a symlink), files put/cat/ls/mkdir/rm, a hostile task (a symlink
#     to a host path, a tar with "..", a symlink then a file through it, absolute names, a
#     device node, a tar larger than the cap: nothing is written outside the destination),
#     an image without tar (the fs route still reads);
# the HTTP API's file routes; a stopped sandbox's files refused.
source "$(dirname "$0")/lib.sh"
ac_setup
NHOME=$(mktemp -d /tmp/agentcell-it-nomadhome.XXXXXX)
ac_nomad_fake "nomad files" "$NHOME"
at_exit "rm -rf --one-file-system $NHOME"
BOX=nf$(uniq_id)

# NJ PATH: a GET of the test agent's API, its body.
NJ() { NP GET "$1"; }
# The running allocation of the sandbox's job, and the task's sandbox in the agent's home.
alloc_id() { NJ "/v1/job/agentcell-$BOX/allocations" | jq -r '[.[] | select(.ClientStatus == "running")][0].ID // empty'; }
# tx CMD: a shell command in the task's sandbox, straight through the agent's home (not
# through the Nomad backend).
tx() { AGENTCELL_HOME=$NHOME timeout -k 5 60 "$AGENTCELL" exec "$TASK_SB" -- sh -c "$1"; }
# The agent's request log: "METHOD PATH?QUERY" a line, since the last reset.
reqs_reset() { NP DELETE /_test/requests >/dev/null; }
reqs() { NJ /_test/requests | jq -r '.[] | "\(.method) \(.path)?\(.query)"'; }
execs() { if [ -f "$NSTATE/execs.log" ]; then grep -c '' "$NSTATE/execs.log"; else echo 0; fi; }

H=$AC_TMP/host
mkdir -p "$H/tree/sub/deeper" "$H/out"
printf 'hello nomad\n' >"$H/one.txt"
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
check_ac "create --backend nomad" create "$BOX" --backend nomad
acx files ls "$BOX" /tmp
check_rc "files ls on a stopped sandbox fails" 1
check_error_line "... with one error line"
check_contains "... saying files need a running sandbox on this backend" "$ERR" \
	"sandbox '$BOX' is not running: file operations need a running sandbox on the nomad backend"
acx cp "$H/one.txt" "$BOX:/tmp/one.txt"
check_contains "cp into a stopped sandbox: the same reason" "$ERR" "need a running sandbox on the nomad backend"

check_ac "start" start "$BOX"
ALLOC=$(alloc_id)
if [[ "$ALLOC" =~ ^[0-9a-f-]{36}$ ]]; then
	pass "the job has a running allocation"
else
	fail "the job has a running allocation" "$(NJ "/v1/job/agentcell-$BOX/allocations")" "$(tail -5 "$NSTATE.err")"
fi
TASK_SB=nomad-$(tr -d - <<<"$ALLOC" | head -c 20)
ADIR=$NSTATE/allocs/$ALLOC/alloc
check "its task runs as a sandbox of the agent's home" tx true
check "the agent keeps the allocation's shared alloc dir on the host" test -d "$ADIR"

# ---------------------------------------------------------------- cp in (tar over exec)
check_ac "cp a file in" cp "$H/one.txt" "$BOX:/tmp/one.txt"
check_eq "the task sees its content" "hello nomad" "$(tx 'cat /tmp/one.txt')"
check_eq "... and its mode (640), owner root" "640 0" "$(tx 'stat -c "%a %u" /tmp/one.txt')"
check_ac "cp a tree in (its destination does not exist)" cp "$H/tree" "$BOX:/work/tree"
check_eq "the tree's files in the task" "top|deep|$BLOB_SUM" \
	"$(tx 'printf "%s|%s|%s" "$(cat /work/tree/a.txt)" "$(cat /work/tree/sub/deeper/d.txt)" "$(sha256sum </work/tree/sub/blob.bin | cut -d" " -f1)"')"
check_eq "the tree's modes in the task (600, 750, 755)" "600 750 755" \
	"$(tx 'stat -c %a /work/tree/a.txt /work/tree/sub /work/tree/sub/run.sh | tr "\n" " " | sed "s/ $//"')"
check_eq "the symlink is a symlink in the task" "a.txt" "$(tx 'readlink /work/tree/link')"
check_eq "an executable runs in the task" "run" "$(tx '/work/tree/sub/run.sh')"
check_ac "cp a file into an existing directory" cp "$H/one.txt" "$BOX:/work"
check_eq "... lands under its own name" "hello nomad" "$(tx 'cat /work/one.txt')"
check_ac "cp a file into /local (a write: tar over exec too)" cp "$H/one.txt" "$BOX:/local/one.txt"
check_eq "... the task has it" "hello nomad" "$(tx 'cat /local/one.txt')"

# ---------------------------------------------------------------- cp out
mkdir -p "$H/dirdest"
check_ac "cp a tree out" cp "$BOX:/work/tree" "$H/out/tree"
check "the tree out equals the tree in (diff -r, no dereference)" diff -r --no-dereference "$H/tree" "$H/out/tree"
check_eq "modes out (600, 750, 755)" "600 750 755" \
	"$(stat -c %a "$H/out/tree/a.txt" "$H/out/tree/sub" "$H/out/tree/sub/run.sh" | tr '\n' ' ' | sed 's/ $//')"
check_eq "the symlink out is a symlink" "a.txt" "$(readlink "$H/out/tree/link")"
check_ac "cp a file out into an existing directory" cp "$BOX:/tmp/one.txt" "$H/dirdest"
check_eq "... under its own name, with its mode" "hello nomad 640" \
	"$(cat "$H/dirdest/one.txt") $(stat -c %a "$H/dirdest/one.txt")"

# ---------------------------------------------------------------- files (tar over exec)
printf 'put data\n' | ac files put "$BOX" /tmp/p/q/new.txt >/dev/null 2>&1
check_eq "files put: parents made, content in the task" "put data" "$(tx 'cat /tmp/p/q/new.txt')"
E0=$(execs)
acx files cat "$BOX" /tmp/p/q/new.txt
check_out "files cat" "put data"
check_gt "... outside the alloc dir: through the exec stream (execs.log grew)" "$(execs)" "$E0"
acx files ls "$BOX" /work
check_match "files ls: the file, its mode and size" "file +0640 +12 one.txt" "$OUT"
check_match "files ls: the directory" "dir +0755 +[0-9]+ tree" "$OUT"
check_not_contains "files ls: only direct entries" "$OUT" "blob.bin"
check_ac "files mkdir -p" files mkdir "$BOX" /tmp/m/n/o
check "... the directory is in the task" tx 'test -d /tmp/m/n/o'
check_ac "files mkdir -p below /local" files mkdir "$BOX" /local/m/n
check "... the directory is in the task" tx 'test -d /local/m/n'
acx files cat "$BOX" /work/tree
check_contains "files cat of a directory: not a regular file" "$ERR" "'/work/tree' is not a regular file"
acx files cat "$BOX" /tmp/none
check_contains "files cat of a missing file: not found" "$ERR" "no such file in the sandbox: '/tmp/none'"
acx files rm "$BOX" /work/tree
check_rc "files rm of a non-empty directory without -r fails" 1
check "... and the directory is still there" tx 'test -f /work/tree/a.txt'
check_ac "files rm a file" files rm "$BOX" /tmp/p/q/new.txt
check "... gone from the task" tx 'test ! -e /tmp/p/q/new.txt'
check_ac "files rm -r a tree" files rm -r "$BOX" /work/tree
check "... gone from the task" tx 'test ! -e /work/tree'

# ---------------------------------------------------------------- reads through the fs endpoints
tx 'mkdir -p /local/d1/d2 /secrets && printf "fs route\n" >/local/d1/d2/f.txt && chmod 604 /local/d1/d2/f.txt &&
	printf "tok\n" >/secrets/token && mkfifo /local/fifo && mkdir -p /local/real && printf "inner\n" >/local/real/f &&
	ln -s /local/real /local/dlink && ln -s /etc/hostname /local/hostlink'
reqs_reset
E0=$(execs)
acx files cat "$BOX" /local/d1/d2/f.txt
check_out "files cat below /local" "fs route"
R=$(reqs)
check_contains "... read with /v1/client/fs/cat" "$R" "GET /v1/client/fs/cat/$ALLOC?path=sandbox/local/d1/d2/f.txt"
check_contains "... after the parents' listings (lstat: no symlink on the way)" "$R" "GET /v1/client/fs/ls/$ALLOC?path=sandbox/local/d1"
check_eq "... and no exec at all" "$E0" "$(execs)"
acx files ls "$BOX" /local/d1/d2
check_match "files ls below /local: the file, its mode and size" "file +0604 +9 f.txt" "$OUT"
check_contains "... listed with /v1/client/fs/ls" "$(reqs)" "GET /v1/client/fs/ls/$ALLOC?path=sandbox/local/d1/d2"
check_eq "... and no exec" "$E0" "$(execs)"
acx files ls "$BOX" /local
check_match "files ls /local: a directory, a FIFO (other), a symlink" \
	"dir .* d1.*other .* fifo.*symlink .* hostlink" "$(tr '\n' ' ' <<<"$OUT")"
printf 'host side\n' >"$ADIR/data/hostside.txt"
acx files cat "$BOX" /alloc/data/hostside.txt
check_out "files cat below /alloc: the agent's shared alloc dir (this agent's task never sees it)" "host side"
acx files ls "$BOX" /alloc
check_match "files ls /alloc: its logs and data" "dir .* data.*dir .* logs" "$(tr '\n' ' ' <<<"$OUT")"
acx files ls "$BOX" /alloc/logs
check_contains "files ls /alloc/logs: the task's log files" "$OUT" "sandbox.stdout.0"
check_eq "... still no exec" "$E0" "$(execs)"
acx files cat "$BOX" /local/none
check_contains "files cat of a missing file below /local: not found" "$ERR" "no such file in the sandbox: '/local/none'"
acx files ls "$BOX" /local/none
check_contains "files ls of a missing directory below /local: not found" "$ERR" "no directory '/local/none' in the sandbox"
acx files ls "$BOX" /local/d1/d2/f.txt
check_contains "files ls of a file: not a directory" "$ERR" "no directory '/local/d1/d2/f.txt' in the sandbox"
acx files cat "$BOX" /local/d1
check_contains "files cat of a directory below /local: not a regular file" "$ERR" "'/local/d1' is not a regular file"
reqs_reset
acx files cat "$BOX" /local/fifo
check_contains "files cat of a FIFO below /local: not a regular file, at once" "$ERR" "'/local/fifo' is not a regular file"
check_not_contains "... the agent was never asked to read it" "$(reqs)" "fs/cat"
check_eq "... and nothing was run" "$E0" "$(execs)"
acx files ls "$BOX" /secrets
check_match "files ls /secrets: through fs/ls" "file .* token" "$OUT"
check_contains "... (the request)" "$(reqs)" "GET /v1/client/fs/ls/$ALLOC?path=sandbox/secrets"
reqs_reset
acx files cat "$BOX" /secrets/token
check_out "files cat below /secrets (Nomad reads no secret file): through exec + tar" "tok"
check_not_contains "... no fs/cat" "$(reqs)" "fs/cat"
check_gt "... an exec instead" "$(execs)" "$E0"
tx 'printf "a b&c\n" >"/local/sp ace&x=1.txt"'
acx files cat "$BOX" "/local/sp ace&x=1.txt"
check_out "a name with a space, & and = (query-escaped)" "a b&c"
check_contains "... the escaped query" "$(reqs)" "path=sandbox/local/sp%20ace%26x%3D1.txt"

# ---------------------------------------------------------------- big files
tx 'head -c 70000000 /dev/zero >/local/big'
reqs_reset
E0=$(execs)
acx files cat "$BOX" /local/big
check_rc "files cat of a 70 MB file below /local fails (an invalid request: exit 2)" 2
check_error_line "... with one error line"
check_contains "... larger than the read limit" "$ERR" "'/local/big' is larger than 67108864 bytes"
check_not_contains "... refused from the listing: the agent was never asked to read it" "$(reqs)" "fs/cat"
check_eq "... and nothing was run" "$E0" "$(execs)"
tx 'head -c 70000000 /dev/zero >/tmp/big'
acx files cat "$BOX" /tmp/big
check_contains "files cat of a 70 MB file elsewhere (tar route): larger than the read limit" "$ERR" "is larger than"

# ---------------------------------------------------------------- symbolic links
reqs_reset
E0=$(execs)
acx files cat "$BOX" /local/dlink/f
check_out "a link on the way (/local/dlink -> /local/real, absolute: the task's own view)" "inner"
check_not_contains "... not read through the agent (which would resolve it on its host)" "$(reqs)" "fs/cat"
check_gt "... but with exec + tar in the task" "$(execs)" "$E0"
reqs_reset
acx files ls "$BOX" /local/dlink
check_not_contains "files ls of a link: not listed through the agent either" "$(reqs)" "path=sandbox/local/dlink"
# A sandbox's /alloc is the allocation's shared directory on the Nomad host: a link planted
# there towards a host file (made here on the host: this agent's task does not share it).
V=$AC_TMP/victim
mkdir -p "$V"
printf 'host secret\n' >"$V/secret"
ln -s "$V/secret" "$ADIR/data/secretlink"
ln -s "$V" "$ADIR/data/dirlink"
reqs_reset
acx files cat "$BOX" /alloc/data/secretlink
check_not_contains "a link in /alloc to a host file: the host file is not read" "$OUT$ERR" "host secret"
check_not_contains "... the agent was never asked to read it" "$(reqs)" "fs/cat"
acx files cat "$BOX" /alloc/data/dirlink/secret
check_not_contains "a link in /alloc to a host directory: nothing read through it" "$OUT$ERR" "host secret"
acx files ls "$BOX" /alloc/data/dirlink
check_not_contains "... nor listed" "$OUT" "secret"
check_not_contains "... the agent was asked for neither" "$(reqs)" "path=alloc/data/dirlink"
reqs_reset
check_ac "cp out /local" cp "$BOX:/local" "$H/localcopy"
check_eq "... through exec + tar, never the fs route (its extraction is the host's own)" "" "$(reqs | grep /v1/client/fs/ || true)"
check_eq "... the task's view: the file below the link's target" "inner" "$(cat "$H/localcopy/real/f")"

# ---------------------------------------------------------------- the HTTP API
if start_server nomadapi -- --port 0; then
	U=http://127.0.0.1:$SRV_PORT
	R=$(curl -s --max-time 60 "$U/sandboxes/$BOX/files/local/d1/d2/f.txt")
	check_eq "API GET a file below /local" '"fs route\n"' "$(jq .data.content <<<"$R")"
	R=$(curl -s --max-time 60 "$U/sandboxes/$BOX/files/tmp/one.txt")
	check_eq "API GET a file elsewhere" '"hello nomad\n"' "$(jq .data.content <<<"$R")"
	R=$(curl -s --max-time 60 -X PUT -H 'Content-Type: application/json' \
		-d '{"content": "via api\n"}' "$U/sandboxes/$BOX/files/tmp/api/f.txt")
	check_eq "API PUT a file: success" "true" "$(jq -r .success <<<"$R")"
	check_eq "... the task has it" "via api" "$(tx 'cat /tmp/api/f.txt')"
	curl -s --max-time 60 -X DELETE "$U/sandboxes/$BOX/files/tmp/api/f.txt" >/dev/null
	check "API DELETE a file: gone from the task" tx 'test ! -e /tmp/api/f.txt'
	stop_server nomadapi "$SRV_PID"
else
	fail "serve starts" "$(tail -20 "$AC_TMP/nomadapi.err")"
fi

# ---------------------------------------------------------------- a hostile task (tar route)
tx "mkdir -p /tmp/evil && ln -s '$V' /tmp/evil/tohost && ln -s '$V/secret' /tmp/evil/secretlink"
check_ac "cp out a directory with symlinks to host paths" cp "$BOX:/tmp/evil" "$H/evil"
check_eq "... they arrive as symlinks, not followed" "$V $V/secret" \
	"$(readlink "$H/evil/tohost") $(readlink "$H/evil/secretlink")"
check "... nothing was read from the host through them (no copy of the secret)" \
	test -z "$(find "$H/evil" -type f)"
# Crafted tars, sent by a tar of the task's own (first on PATH) as a hostile image would.
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
	AGENTCELL_HOME=$NHOME timeout -k 5 60 "$AGENTCELL" exec -i "$TASK_SB" -- sh -c "cat >/tmp/$t.tar" <"$AC_TMP/$t.tar"
done
tx 'mkdir -p /tmp/x /usr/local/bin && printf "#!/bin/sh\ncat /tmp/\$(cat /tmp/which).tar\n" >/usr/local/bin/tar && chmod 755 /usr/local/bin/tar'
check_eq "the task's tar is now the hostile one" /usr/local/bin/tar "$(tx 'command -v tar')"
outside() { find "$AC_TMP" -name escaped -o -name pwned -o -name abs | grep -v "^$H/h-" || true; }
tx 'echo dotdot >/tmp/which'
acx cp "$BOX:/tmp/x" "$H/h-dotdot"
check_rc "a tar with '..' is refused" 1
check_contains "... naming the unsafe name" "$ERR" "the task's tar has an unsafe name 'x/../../escaped'"
tx 'echo through >/tmp/which'
acx cp "$BOX:/tmp/x" "$H/h-through"
check_ne "a tar with a symlink, then a file through it, is refused" 0 "$RC"
check_eq "... nothing was written into the symlink's host target" "secret" "$(ls "$V")"
tx 'echo odd >/tmp/which'
check_ac "a tar with an absolute name, a device node and a hard link" cp "$BOX:/tmp/x" "$H/h-odd"
check_eq "... the absolute name lands below the destination" "inside" "$(cat "$H/h-odd/abs")"
check "... no device node is made" test ! -e "$H/h-odd/null"
check "... no hard link to a host file is made" test ! -e "$H/h-odd/hard"
check_eq "nothing of the hostile tars is anywhere outside their destinations" "" "$(outside)"
tx 'printf "#!/bin/sh\nhead -c 90000000 /dev/zero\n" >/usr/local/bin/tar'
acx files cat "$BOX" /tmp/one.txt
check_rc "a tar larger than the read cap is refused" 1
check_contains "... saying so" "$ERR" "the tar of '/tmp/one.txt' from sandbox '$BOX' is larger than"
check "... and the task's endless tar was killed (seen in the task)" \
	wait_until 30 sh -c "! AGENTCELL_HOME=$NHOME $AGENTCELL exec $TASK_SB -- ps -eo args | grep -q '^head -c 90000000'"

# ---------------------------------------------------------------- an image without tar
tx 'rm -f /usr/local/bin/tar /usr/bin/tar /bin/tar'
check_fail "the task has no tar now" tx 'command -v tar'
acx cp "$H/one.txt" "$BOX:/tmp/one2.txt"
check_rc "cp into a task without tar fails" 1
check_error_line "... with one error line"
check_contains "... naming the sandbox and that files need tar in the image" "$ERR" \
	"file operations on sandbox '$BOX' need tar in its image"
acx files cat "$BOX" /tmp/one.txt
check_contains "files cat outside the alloc dir without tar: the same reason" "$ERR" "need tar in its image"
acx files cat "$BOX" /local/d1/d2/f.txt
check_out "files cat below /local still works without tar (the fs route)" "fs route"
acx files ls "$BOX" /local/d1/d2
check_match "... and files ls" "file .* f.txt" "$OUT"
acx exec "$BOX" -- cat /tmp/one.txt
check_out "exec still works in that task" "hello nomad"

# ---------------------------------------------------------------- stop, remove
check_ac "stop" stop "$BOX"
acx files cat "$BOX" /local/d1/d2/f.txt
check_rc "files on the stopped sandbox fail again" 1
check_contains "... not running" "$ERR" "is not running"
check_ac "remove" remove "$BOX"
check_eq "no job is left in the agent" "[]" "$(NJ /v1/jobs | jq -c '[.[] | select(.ID == "agentcell-'"$BOX"'")]')"

# ---------------------------------------------------------------- ACLs: read-fs and alloc-exec
# A second agent with ACLs: a token that may read the allocation's files but not exec reads
# below /local and nothing else; a token that may exec but not read files (the fs endpoints
# answer 403) still reads, with exec + tar.
MGMT=$(cat /proc/sys/kernel/random/uuid)
FSONLY=$(cat /proc/sys/kernel/random/uuid)
EXECONLY=$(cat /proc/sys/kernel/random/uuid)
cat >"$AC_TMP/tokens.json" <<JSON
{"$MGMT": {"Name": "management", "Type": "management"},
 "$FSONLY": {"Name": "fsonly", "Type": "client", "Namespaces": {"*": ["read", "read-fs"]}},
 "$EXECONLY": {"Name": "execonly", "Type": "client", "Namespaces": {"*": ["read", "alloc-exec"]}}}
JSON
ac_nomad_fake "nomad files with ACLs" "" --acl --tokens "$AC_TMP/tokens.json"
BOX2=nfa$(uniq_id)
export NOMAD_TOKEN=$MGMT
check_ac "create and start a sandbox (management token)" create "$BOX2" --backend nomad
check_ac "... start" start "$BOX2"
printf 'acl\n' | ac files put "$BOX2" /local/acl.txt >/dev/null 2>&1
NOMAD_TOKEN=$FSONLY acx files cat "$BOX2" /local/acl.txt
check_out "a token with read-fs but no alloc-exec reads below /local" "acl"
NOMAD_TOKEN=$FSONLY acx files cat "$BOX2" /tmp/x
check_rc "... but not elsewhere (that needs exec)" 1
check_error_line "... with one error line"
check_contains "... saying the agent refused" "$ERR" "ermission denied"
reqs_reset
NOMAD_TOKEN=$EXECONLY acx files cat "$BOX2" /local/acl.txt
check_out "a token with alloc-exec but no read-fs reads below /local too (exec + tar)" "acl"
check_match "... after the fs endpoints' refusal (403)" "/v1/client/fs/ls/[0-9a-f-]+ 403" "$(NJ /_test/requests | jq -r '.[] | "\(.path) \(.status)"')"
NOMAD_TOKEN=$EXECONLY acx files ls "$BOX2" /local
check_match "... and lists" "file .* acl.txt" "$OUT"
check_ac "remove (management token)" remove "$BOX2"
unset NOMAD_TOKEN
