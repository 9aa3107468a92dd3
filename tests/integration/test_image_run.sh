#!/bin/bash
# Image layers in the native runtime (issue 16): a sandbox whose root is an image's layers
# (src/image/ unpacked them under $AGENTCELL_HOME/images/layers/<hex>, stacked read-only
# under the sandbox's own upper layer). Proves on the real kernel: the root is the image's
# (its files, not the host's); whiteouts and opaque directories of an upper layer hide the
# lower's files; writes go to the sandbox's upper while the layer directories stay as they
# were and cannot be written by the sandbox's root through any path; two sandboxes share
# one copy of the layers and not their writes; the image's WorkingDir, User and Env are the
# commands' defaults (exec and run); a host template's layers go above the host's /usr;
# named volumes (rw and ro, never outside the root through an image's symlink, never under
# /dev); a snapshot of a stopped sandbox is a layer a new sandbox starts from.
#
# The layers are made here by hand (busybox) and put in a sandbox's state the way
# core/build.c does (image_base, image_layers, workdir, user, env), so the runtime is tested
# without the store; the same image then goes through `agentcell image import` and
# `create --image` when those exist (else visible skips), as do volumes and snapshots.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
BB=$(command -v busybox || true)
if [ -z "$BB" ] || ! LC_ALL=C ldd "$BB" 2>&1 | grep -q 'not a dynamic executable'; then
	skip "image layers in the native runtime" "no static busybox here (apt-get install busybox-static)"
	exit 0
fi
LAYERS=$AGENTCELL_HOME/images/layers
mkdir -p "$LAYERS"
chmod 700 "$AGENTCELL_HOME/images" "$LAYERS"

# ------------------------------------------------------------------ the layers
# L0: a busybox root: /etc/os-release, a user "app" (1000), files the upper layer deletes.
# L1: a whiteout of /etc/deleted-me, /opt/lowdir made opaque (its a and b gone, c new),
#     /etc/marker-l1. The host's /usr/bin/python3 is in neither.
# Layer directories are named like the store's: 64 hex digits.
new_hex() { printf '%s-%s-%s' "$ID" "$1" "$RANDOM" | sha256sum | cut -c1-64; }
L0=$(new_hex l0)
L1=$(new_hex l1)
D0=$LAYERS/$L0
D1=$LAYERS/$L1
mkdir -p "$D0"/{bin,etc,opt/lowdir,home/app,root,tmp,var/data,mnt}
cp "$BB" "$D0/bin/busybox"
for a in sh cat ls echo id pwd touch rm mkdir env test stat grep head readlink sleep mount \
	umount chmod ln sync printf true false wc mv cp tee dd; do
	ln -s busybox "$D0/bin/$a"
done
printf 'ID=acimg\nNAME="agentcell test image"\n' >"$D0/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$D0/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nstaff:x:50:\n' >"$D0/etc/group"
echo doomed >"$D0/etc/deleted-me"
echo a >"$D0/opt/lowdir/a"
echo b >"$D0/opt/lowdir/b"
echo low >"$D0/var/data/low"
chown 1000:1000 "$D0/home/app"
chmod 1777 "$D0/tmp"
# Symlinks a hostile image could plant to send a volume's mount outside its root: to the
# host's /mnt (which the image has too), relative and absolute, to a host directory the
# image lacks, and to /dev.
ln -s ../../../../../../../../mnt "$D0/escape"
ln -s /mnt "$D0/abslink"
HOSTDIR=$AC_TMP/host-target-$ID
mkdir -p "$HOSTDIR"
ln -s "$HOSTDIR" "$D0/dangling"
ln -s /dev "$D0/devlink"

mkdir -p "$D1"/{etc,opt/lowdir}
mknod "$D1/etc/deleted-me" c 0 0
setfattr -n trusted.overlay.opaque -v y "$D1/opt/lowdir"
echo c >"$D1/opt/lowdir/c"
echo layer1 >"$D1/etc/marker-l1"

# A tree's identity: names, types, modes, owners, sizes, contents, xattrs.
tree_hash() {
	(
		cd "$1" || exit 1
		find . -printf '%p %y %m %U %G %s %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
		getfattr -R -h -d -m - . 2>/dev/null
	) | sha256sum | cut -c1-64
}
H0=$(tree_hash "$D0")
H1=$(tree_hash "$D1")

state_file() { echo "$AGENTCELL_HOME/sandboxes/$1.json"; }
# set_state NAME JQ: edits a stopped sandbox's state as core/build.c writes it.
set_state() {
	local f
	f=$(state_file "$1")
	jq "$2" "$f" >"$f.new" && mv "$f.new" "$f"
}
IMAGE_FIELDS='.image_base = "oci" | .image_layers = ["'$L0'", "'$L1'"] | .workdir = "/opt" |
	.user = "app" | .env = ((.env // []) + ["IMGVAR=from-image"])'

# ------------------------------------------------------------------ a sandbox from the layers
A=img-a-$ID
check_ac "create $A" create "$A"
set_state "$A" "$IMAGE_FIELDS"
check_ac "start $A (root: the two layers, no host base)" start "$A"
if [ "$RC" != 0 ]; then
	fail "the remaining image checks need $A running" "$(acx_diag)"
	exit 1
fi

acx exec "$A" -u 0 -- cat /etc/os-release
check_contains "the root is the image's: its /etc/os-release" "$OUT" "ID=acimg"
acx exec "$A" -u 0 -- cat /etc/marker-l1
check_out "the upper layer's file is there" "layer1"
acx exec "$A" -u 0 -- test -e /usr/bin/python3
check_ne "the host's /usr/bin/python3 is absent" 0 "$RC"
acx exec "$A" -u 0 -- test -e /etc/deleted-me
check_ne "a file deleted by the upper layer's whiteout is absent" 0 "$RC"
acx exec "$A" -u 0 -- ls /opt/lowdir
check_out "an opaque directory hides the lower layer's content" "c"
acx exec "$A" -u 0 -- stat -c '%u %g' /bin/busybox /home/app
check_out "the layers' owners as the sandbox sees them (idmapped)" "0 0
1000 1000"

# The image's config as the commands' defaults.
acx exec "$A" -- pwd
check_out "exec: the image's WorkingDir is the default cwd" "/opt"
acx exec "$A" -- id -u
check_out "exec: the image's User is the default user" "1000"
acx exec "$A" -- sh -c 'echo $HOME'
check_out "exec: HOME of the image's user" "/home/app"
acx exec "$A" -- sh -c 'echo $IMGVAR'
check_out "exec: the image's Env" "from-image"
acx exec "$A" -w / -u 0 -- sh -c 'pwd; id -u'
check_out "exec: --workdir and --user still win" "/
0"

# Writes go to the sandbox's upper; the layers stay as they were, whatever root tries.
acx exec "$A" -u 0 -- sh -c 'echo written > /etc/newfile && echo more >> /etc/os-release &&
	rm /bin/true && echo x > /opt/lowdir/c'
check_rc "root writes, appends, deletes in the image's directories" 0
acx exec "$A" -u 0 -- sh -c 'cat /etc/newfile; test -e /bin/true || echo gone; cat /opt/lowdir/c'
check_out "the sandbox sees its own writes" "written
gone
x"
ATTACK='
for p in /etc/os-release /proc/self/root/etc/os-release /proc/1/root/etc/os-release \
	/proc/1/cwd/etc/os-release /proc/self/cwd/../etc/passwd; do
	echo pwned >> "$p" 2>/dev/null
done
mount -o remount,rw / 2>/dev/null && echo remounted
mount -t overlay -o lowerdir=/ overlay /mnt 2>/dev/null && echo mounted
for m in $(cut -d" " -f5 /proc/self/mountinfo); do touch "$m/.pwned" 2>/dev/null; done
chmod 777 /bin/busybox 2>/dev/null
echo done'
acx exec "$A" -u 0 -- sh -c "$ATTACK"
check_not_contains "no remount or new mount inside" "$OUT" "mounted"
check_eq "the lower layer's tree is unchanged" "$H0" "$(tree_hash "$D0")"
check_eq "the upper layer's tree is unchanged" "$H1" "$(tree_hash "$D1")"
acx exec "$A" -u 0 -- stat -c %i /bin/busybox
INO_A=$OUT

# A second sandbox of the same image (its upper layer on the host's file system).
B=img-b-$ID
check_ac "create $B --disk unlimited" create "$B" --disk unlimited
set_state "$B" "$IMAGE_FIELDS"
set_state "$B" '.user = "app:staff"'
check_ac "start $B" start "$B"
acx exec "$B" -- sh -c 'id -u; id -g'
check_out "an image's User user:group sets the group too" "1000
50"
acx exec "$B" -u 0 -- sh -c 'test -e /etc/newfile && echo seen; cat /etc/os-release'
check_out "another sandbox of the image does not see the first one's writes" 'ID=acimg
NAME="agentcell test image"'
acx exec "$B" -u 0 -- sh -c 'echo b-only > /etc/b-file'
acx exec "$A" -u 0 -- test -e /etc/b-file
check_ne "nor the first the second's" 0 "$RC"
check "the write is in $B's upper layer on the host" test -f "$AGENTCELL_HOME/data/$B/upper/root/etc/b-file"
check_fail "and nowhere in the layers" test -e "$D0/etc/b-file"
acx exec "$B" -u 0 -- stat -c %i /bin/busybox
INO_B=$OUT
if [ "$INO_A" = "$INO_B" ] && [ "$INO_A" = "$(stat -c %i "$D0/bin/busybox")" ]; then
	pass "both sandboxes run the one copy of the layer's files (inode $INO_A)"
else
	fail "both sandboxes run the one copy of the layer's files" "A: $INO_A B: $INO_B layer: $(stat -c %i "$D0/bin/busybox")"
fi
check_le "the sandbox's upper holds no copy of the layers (KB)" "$(du -sk "$AGENTCELL_HOME/data/$B" | cut -f1)" 64

# Persistence across stop/start, and the layers still unchanged.
check_ac "stop $A" stop "$A"
acx cp "$A:/etc/newfile" "$AC_TMP/newfile-out"
check_eq "cp out of the stopped sandbox reads its root (layers + upper)" "written" "$(cat "$AC_TMP/newfile-out" 2>&1)"
check_ac "start $A again" start "$A"
acx exec "$A" -u 0 -- cat /etc/newfile
check_out "the sandbox's writes persist across stop/start" "written"
check_eq "the layers are unchanged after all that" "$H0 $H1" "$(tree_hash "$D0") $(tree_hash "$D1")"

# A missing layer: a clear error, not a half-built root.
C=img-c-$ID
check_ac "create $C" create "$C"
set_state "$C" '.image_base = "oci" | .image_layers = ["'"$(new_hex gone)"'"]'
acx start "$C"
check_ne "a sandbox whose layer is missing does not start" 0 "$RC"
check_contains "the error names the missing layer" "$ERR" "missing"
set_state "$C" '.image_base = "oci" | .image_layers = ["../../etc"]'
acx start "$C"
check_ne "a layer that is not a digest is refused" 0 "$RC"
check_contains "the error says the state is bad" "$ERR" "bad image layer"
ac remove "$C" >/dev/null 2>&1

# ------------------------------------------------------------------ a host template's layers
# Each layer a whole root: its usr/ goes above the host's /usr (a whiteout there hides a
# host program), its etc/ above the host base.
HT=$(new_hex host)
DH=$LAYERS/$HT
mkdir -p "$DH/usr/local/bin" "$DH/usr/bin" "$DH/etc"
printf '#!/bin/sh\necho tool-from-template\n' >"$DH/usr/local/bin/ac-template-tool"
chmod 755 "$DH/usr/local/bin/ac-template-tool"
mknod "$DH/usr/bin/perl" c 0 0
echo host-template >"$DH/etc/ac-template-marker"
HH=$(tree_hash "$DH")
H=img-host-$ID
check_ac "create $H (host base)" create "$H"
set_state "$H" '.image_base = "host" | .image_layers = ["'"$HT"'"]'
check_ac "start $H (host base + a layer)" start "$H"
acx exec "$H" -- sh -c 'ac-template-tool; cat /etc/ac-template-marker; test -x /usr/bin/python3 && echo python'
check_out "the layer's /usr and /etc above the host's, the host's programs still there" "tool-from-template
host-template
python"
if [ -e /usr/bin/perl ]; then
	acx exec "$H" -- test -e /usr/bin/perl
	check_ne "a whiteout in the layer's usr/ hides the host's /usr/bin/perl" 0 "$RC"
else
	skip "a whiteout in the layer's usr/ hides a host program" "no /usr/bin/perl on this host"
fi
acx exec "$H" -- sh -c 'echo mine > /usr/local/bin/ac-template-tool'
check_eq "the host template's layer is unchanged by the sandbox's writes" "$HH" "$(tree_hash "$DH")"
ac stop "$H" >/dev/null 2>&1

# ------------------------------------------------------------------ one-shot runs
# A run has no state file: it needs the image store (core: run --image REF).
OCI=$AC_TMP/oci-$ID
mk_oci_layout() { # DIR REF: an OCI image layout of L0 and L1 with Env, WorkingDir, User
	"$PY" - "$1" "$2" "$D0" "$D1" <<'EOF'
import gzip, hashlib, io, json, os, stat, sys, tarfile
out, ref, layers = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(out + "/blobs/sha256", exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (out, d), "wb").write(data)
    return "sha256:" + d, len(data)
def layer_tar(root):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for n in sorted(dns) + sorted(fns):
                p = os.path.join(dp, n)
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    ti = tarfile.TarInfo(os.path.join(os.path.dirname(rel), ".wh." + n))
                    t.addfile(ti)
                    continue
                ti = t.gettarinfo(p, rel)
                ti.uname = ti.gname = ""
                if ti.isfile():
                    t.addfile(ti, open(p, "rb"))
                else:
                    t.addfile(ti)
                try:
                    if os.path.isdir(p) and not os.path.islink(p) and \
                            os.getxattr(p, "trusted.overlay.opaque") == b"y":
                        t.addfile(tarfile.TarInfo(os.path.join(rel, ".wh..wh..opq")))
                except OSError:
                    pass
    return buf.getvalue()
descs, diff_ids = [], []
for l in layers:
    raw = layer_tar(l)
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, n = blob(gzip.compress(raw, mtime=0))
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
cfg = {"architecture": "amd64", "os": "linux",
       "config": {"Env": ["PATH=/bin", "IMGVAR=from-image"], "WorkingDir": "/opt", "User": "app"},
       "rootfs": {"type": "layers", "diff_ids": diff_ids}}
cd, cn = blob(json.dumps(cfg).encode())
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
       "layers": descs}
md, mn = blob(json.dumps(man).encode())
idx = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
       "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": ref}}]}
json.dump(idx, open(out + "/index.json", "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
EOF
}
REF=localhost/agentcell-test/busybox:$ID
HAVE_IMPORT=0
if ac image --help >/dev/null 2>&1; then
	if mk_oci_layout "$OCI" "$REF"; then
		acx image import "$OCI" "$REF"
		if [ "$RC" = 0 ]; then
			HAVE_IMPORT=1
			pass "image import of an OCI layout of the test layers"
		else
			fail "image import of an OCI layout of the test layers" "$(acx_diag)"
		fi
	else
		fail "the test's OCI layout was written"
	fi
else
	skip "image import of an OCI layout" "agentcell has no 'image' command yet"
fi
if [ "$HAVE_IMPORT" = 1 ]; then
	acx run --image "$REF" -- sh -c 'pwd; id -u; echo $IMGVAR; cat /etc/marker-l1; test -e /etc/deleted-me || echo whiteout'
	check_out "run --image: WorkingDir, User, Env, layers and whiteouts" "/opt
1000
from-image
layer1
whiteout"
	acx run --image "$REF" -- test -e /usr/bin/python3
	check_ne "run --image: the host's python3 is absent" 0 "$RC"
	I=img-i-$ID
	check_ac "create $I --image $REF" create "$I" --image "$REF"
	check_eq "its state names the layers" 2 "$(jq '.image_layers | length' "$(state_file "$I")" 2>&1)"
	check_ac "start $I" start "$I"
	acx exec "$I" -- sh -c 'pwd; id -un; echo $IMGVAR; ls /opt/lowdir'
	check_out "exec in a sandbox made with --image: the image's defaults, an opaque dir" "/opt
app
from-image
c"
	ac stop "$I" >/dev/null 2>&1
else
	skip "one-shot runs from an image (run --image REF)" "no image store import in this build"
fi

# ------------------------------------------------------------------ volumes
if ac volume create "vol-$ID" >/dev/null 2>&1; then
	VDIR=$AGENTCELL_HOME/volumes/vol-$ID/data
	V=img-v-$ID
	acx create "$V" --volume "vol-$ID:/data" --volume "vol-$ID:/srv/ro:ro"
	if [ "$RC" != 0 ]; then
		fail "create $V with two --volume" "$(acx_diag)"
	else
		pass "create $V with two --volume"
		set_state "$V" "$IMAGE_FIELDS"
		check_ac "start $V" start "$V"
		acx exec "$V" -u 0 -- sh -c 'echo from-sandbox > /data/f && cat /srv/ro/f'
		check_out "a volume rw at /data, the same ro at /srv/ro" "from-sandbox"
		check_eq "the volume's file on the host, owned by the host's root" "from-sandbox 0" \
			"$(cat "$VDIR/f" 2>&1) $(stat -c %u "$VDIR/f" 2>&1)"
		acx exec "$V" -u 0 -- sh -c 'echo x > /srv/ro/g'
		check_ne "the read-only mount refuses writes" 0 "$RC"
		check_fail "nothing was written through it" test -e "$VDIR/g"
		ac stop "$V" >/dev/null 2>&1
		# Volume paths through the image's symlinks: kept inside, or refused.
		MNT_BEFORE=$(ls -a /mnt 2>&1)
		set_state "$V" '.volumes = [{"name": "vol-'"$ID"'", "path": "/escape/v", "read_only": false},
			{"name": "vol-'"$ID"'", "path": "/abslink/w", "read_only": false}]'
		acx start "$V"
		if [ "$RC" = 0 ]; then
			pass "volumes under an image's symlinks start (resolved inside the root)"
			acx exec "$V" -u 0 -- sh -c 'echo in > /escape/v/through-link; ls /mnt'
			check_out "both landed in the image's /mnt" "v
w"
			check_eq "the volume got the write at its path inside" "in" "$(cat "$VDIR/through-link" 2>&1)"
			check_eq "the host's /mnt is untouched" "$MNT_BEFORE" "$(ls -a /mnt 2>&1)"
			ac stop "$V" >/dev/null 2>&1
		else
			fail "volumes under an image's symlinks start (resolved inside the root)" "$(acx_diag)"
		fi
		set_state "$V" '.volumes = [{"name": "vol-'"$ID"'", "path": "/dangling/v", "read_only": false}]'
		acx start "$V"
		check_fail "a symlink to a host directory leads no volume there" test -e "$HOSTDIR/v"
		[ "$RC" = 0 ] && ac stop "$V" >/dev/null 2>&1
		set_state "$V" '.volumes = [{"name": "vol-'"$ID"'", "path": "/devlink/v", "read_only": false}]'
		acx start "$V"
		check_ne "a volume that a symlink sends under /dev is refused" 0 "$RC"
		check_contains "the error says why" "$ERR" "not a place for a volume"
		set_state "$V" '.volumes = [{"name": "vol-'"$ID"'", "path": "/proc/x", "read_only": false}]'
		acx start "$V"
		check_ne "a volume under /proc is refused" 0 "$RC"
		ac remove "$V" >/dev/null 2>&1
	fi
else
	skip "named volumes in an image's sandbox" "agentcell has no 'volume create' yet"
fi

# ------------------------------------------------------------------ snapshots
if ac snapshot --help >/dev/null 2>&1; then
	acx snapshot "$A" "tpl-$ID"
	check_ne "a running sandbox cannot be snapshotted" 0 "$RC"
	check_contains "the error says to stop it" "$ERR" "stop"
	check_ac "stop $A" stop "$A"
	# A's layers were put in its state by hand: a snapshot builds on the image's record,
	# so without one it is refused; with the same layers imported, A names that image.
	acx snapshot "$A" "tpl-$ID"
	check_ne "a snapshot of layers no image record describes is refused" 0 "$RC"
	if [ "$HAVE_IMPORT" = 1 ]; then
		IMG_ID=$(ac image inspect "$REF" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
		IMG_LAYERS=$(ac image inspect "$REF" 2>/dev/null | "$PY" -c 'import json,sys; print(json.dumps([l["digest"][7:] for l in json.load(sys.stdin)["layers"]]))')
		set_state "$A" '.image_id = "'"$IMG_ID"'" | .image_layers = '"$IMG_LAYERS"
	fi
	acx snapshot "$A" "tpl-$ID"
	if [ "$HAVE_IMPORT" != 1 ]; then
		skip "snapshot of the stopped sandbox $A" "no image import in this build"
	elif [ "$RC" = 0 ]; then
		pass "snapshot of the stopped sandbox $A"
		T=img-t-$ID
		check_ac "create $T --template tpl-$ID" create "$T" --template "tpl-$ID"
		check_ac "start $T" start "$T"
		acx exec "$T" -u 0 -- sh -c 'cat /etc/newfile /opt/lowdir/c; test -e /bin/true || echo gone; stat -c %u /etc/newfile'
		check_out "the template has the sandbox's writes, deletions and owners" "written
x
gone
0"
		acx exec "$T" -- pwd
		check_out "and the image's WorkingDir" "/opt"
		ac stop "$T" >/dev/null 2>&1
	else
		fail "snapshot of the stopped sandbox $A" "$(acx_diag)"
	fi
	# A host sandbox's snapshot: /usr writes under usr/.
	acx exec "$B" -u 0 -- true
	ac stop "$B" >/dev/null 2>&1
	S=img-s-$ID
	check_ac "create $S (host base)" create "$S"
	check_ac "start $S" start "$S"
	acx exec "$S" -- sh -c 'echo snap > /usr/local/bin/snap-tool && chmod 755 /usr/local/bin/snap-tool && rm -f /etc/motd'
	check_ac "stop $S" stop "$S"
	acx snapshot "$S" "tpl-host-$ID"
	if [ "$RC" = 0 ]; then
		pass "snapshot of a host-based sandbox"
		S2=img-s2-$ID
		check_ac "create $S2 --template tpl-host-$ID" create "$S2" --template "tpl-host-$ID"
		check_ac "start $S2" start "$S2"
		acx exec "$S2" -- sh -c 'cat /usr/local/bin/snap-tool; test -e /etc/motd || echo no-motd; test -x /usr/bin/python3 && echo python'
		check_out "its /usr write, its deletion, and the host's programs" "snap
no-motd
python"
		ac stop "$S2" >/dev/null 2>&1
	else
		fail "snapshot of a host-based sandbox" "$(acx_diag)"
	fi
else
	skip "snapshots of a stopped sandbox" "agentcell has no 'snapshot' command yet"
fi

check_eq "the layers are unchanged at the end" "$H0 $H1" "$(tree_hash "$D0") $(tree_hash "$D1")"
