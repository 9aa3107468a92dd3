#!/bin/bash
# Host privileges through a writable host mount: /workspace (--mount-cwd, the permissive
# profile) is idmapped so that the sandbox's root writes as the directory's host owner.
# Nothing the sandbox writes there may carry a privilege on the host: no setuid or setgid
# bit, no file capability (security.capability, v2 or v3), no other security.* or
# trusted.* attribute. Each attack is tried, then the host's view of every file is read.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
WS=$AC_TMP/ws
mkdir -p "$WS"
chown root:root "$WS"
chmod 0755 "$WS"

# Each attack prints "name=RESULT": OK when the privileged write went through.
ATTACK=$(
	cat <<'EOF'
import ctypes, errno, os, shutil, struct, subprocess, sys
W = "/workspace"
def attempt(name, fn):
    try:
        fn()
        print("%s=OK" % name)
    except OSError as e:
        print("%s=%s" % (name, errno.errorcode.get(e.errno, str(e.errno))))
    sys.stdout.flush()
def fresh(name, src="/usr/bin/head"):
    p = os.path.join(W, name)
    shutil.copyfile(src, p)
    os.chmod(p, 0o755)
    return p
# VFS_CAP_REVISION_2 with CAP_SETUID and CAP_DAC_READ_SEARCH permitted, effective bit set
CAPS = (1 << 7) | (1 << 2)
V2 = struct.pack("<IIIII", 0x02000000 | 1, CAPS, 0, 0, 0)
# VFS_CAP_REVISION_3: the same with rootid 0 (host root)
V3 = struct.pack("<IIIIII", 0x03000000 | 1, CAPS, 0, 0, 0, 0)
attempt("xattr_capability_v2", lambda: os.setxattr(fresh("cap2"), "security.capability", V2))
attempt("xattr_capability_v3_rootid0", lambda: os.setxattr(fresh("cap3"), "security.capability", V3))
attempt("xattr_security_other", lambda: os.setxattr(fresh("sec"), "security.evil", b"x"))
attempt("xattr_trusted", lambda: os.setxattr(fresh("tru"), "trusted.overlay.opaque", b"y"))
attempt("chmod_setuid", lambda: os.chmod(fresh("suid"), 0o4755))
attempt("chmod_setgid", lambda: os.chmod(fresh("sgid"), 0o2755))
attempt("fchmod_setuid", lambda: os.fchmod(os.open(fresh("fsuid"), os.O_RDONLY), 0o4755))
attempt("create_setuid", lambda: os.close(os.open(os.path.join(W, "csuid"), os.O_CREAT | os.O_WRONLY, 0o4755)))
attempt("mkdir_setgid", lambda: os.chmod(os.path.join(W, "sgdir") if os.mkdir(os.path.join(W, "sgdir")) is None else "", 0o2775))
def setcap():
    r = subprocess.run(["setcap", "cap_setuid,cap_dac_read_search+ep", fresh("setcap")], capture_output=True)
    if r.returncode != 0:
        raise OSError(errno.EPERM, r.stderr.decode())
attempt("setcap_tool", setcap)
def cp_preserve():
    subprocess.run(["cp", "--preserve=all", "/usr/bin/passwd", os.path.join(W, "passwd")], capture_output=True)
    if os.stat(os.path.join(W, "passwd")).st_mode & 0o6000:
        return
    raise OSError(errno.EPERM, "bits dropped")
attempt("cp_preserve_setuid_file", cp_preserve)
# What stays allowed: user.* attributes and ordinary modes.
attempt("allowed_user_xattr", lambda: os.setxattr(fresh("usr"), "user.note", b"fine"))
attempt("allowed_chmod_755", lambda: os.chmod(fresh("plain"), 0o755))
EOF
)

# The host's view: every file below the workspace, with any privilege it carries.
host_privileges() { # host_privileges DIR
	"$PY" - "$1" <<'EOF'
import os, stat, sys
for root, dirs, files in os.walk(sys.argv[1]):
    for n in dirs + files:
        p = os.path.join(root, n)
        st = os.lstat(p)
        bad = []
        if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(st.st_mode):
            bad.append("mode %o" % st.st_mode)
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError:
            names = []
        bad += [x for x in names if x.startswith(("security.", "trusted."))]
        if bad:
            print("%s: %s" % (os.path.relpath(p, sys.argv[1]), ", ".join(bad)))
EOF
}

check_attacks() { # check_attacks LABEL (reads $OUT)
	local label=$1 name res
	if [ "$(grep -c '=' <<<"$OUT")" -lt 13 ]; then
		fail "$label: the attack script ran" "$(acx_diag)"
		return
	fi
	while IFS='=' read -r name res; do
		case "$name" in
		allowed_*) check_eq "$label: $name still works" OK "$res" ;;
		cp_preserve_setuid_file) check_eq "$label: cp --preserve of a setuid file keeps no setuid bit" EPERM "$res" ;;
		*) case "$res" in
			EPERM | EACCES | ENOTSUP | EOPNOTSUPP | ENOSYS) pass "$label: $name refused ($res)" ;;
			*) fail "$label: $name refused" "got: $res" ;;
			esac ;;
		esac
	done <<<"$OUT"
	local found
	found=$(host_privileges "$WS")
	check_eq "$label: no file in the host directory carries setuid, setgid, security.* or trusted.*" "" "$found"
	check_eq "$label: user.* attributes pass through" fine "$(getfattr --only-values -n user.note "$WS/usr" 2>/dev/null || "$PY" -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.note").decode())' "$WS/usr")"
}

# Baseline: on the host, root can make such files (so the checks below can fail).
cp /usr/bin/head "$AC_TMP/base-cap"
"$PY" -c 'import os,struct,sys; os.setxattr(sys.argv[1], "security.capability", struct.pack("<IIIII", 0x02000001, 4, 0, 0, 0))' "$AC_TMP/base-cap"
check_eq "host: root can set a file capability here (baseline)" "security.capability" "$("$PY" -c 'import os,sys; print(" ".join(os.listxattr(sys.argv[1])))' "$AC_TMP/base-cap")"

cd "$WS" || exit 1
acx run --mount-cwd -- "$PY" -c "$ATTACK"
check_attacks "run --mount-cwd"
acx run --mount-cwd -- sh -c 'grep CapBnd /proc/self/status'
BND=$((16#$(awk '{print $2}' <<<"$OUT")))
check_eq "run --mount-cwd: CAP_SETFCAP is out of the bounding set" 0 $(((BND >> 31) & 1))
acx run -- sh -c 'grep CapBnd /proc/self/status'
BND=$((16#$(awk '{print $2}' <<<"$OUT")))
check_eq "run without a host mount: CAP_SETFCAP stays (package installs)" 1 $(((BND >> 31) & 1))

rm -rf "${WS:?}"/*
B=ws-$ID
check_ac "create $B --profile permissive (mounts the working directory)" create "$B" --profile permissive
check_ac "start $B" start "$B"
acx exec "$B" -- "$PY" -c "$ATTACK"
check_attacks "exec in a permissive sandbox"
acx exec "$B" -- sh -c 'grep CapEff /proc/self/status'
EFF=$((16#$(awk '{print $2}' <<<"$OUT")))
check_eq "exec in a permissive sandbox: root has no CAP_SETFCAP" 0 $(((EFF >> 31) & 1))
cd / || exit 1
