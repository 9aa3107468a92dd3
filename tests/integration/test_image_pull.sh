#!/bin/bash
# `agentcell image pull` against real registries on loopback (Debian's docker-registry,
# started by tests/image/registry.sh; images pushed by tests/image/push.py):
# - plain HTTP only with --insecure-registry or [images] insecure; otherwise a clear error;
# - TLS with a test CA ($AGENTCELL_REGISTRY_CA) and htpasswd basic auth: anonymous refused
#   with a message naming `agentcell image login`; `image login` (password on stdin) then
#   pull works; credentials from a Docker config.json in $REGISTRY_AUTH_FILE;
# - TLS with token auth (tests/image/token_server.py): the bearer flow with credentials,
#   a wrong password refused;
# - manifest lists and OCI indexes: this machine's platform lands; none -> not found,
#   listing the platforms present;
# - a corrupted blob in the registry: the pull fails naming it, nothing tagged or left;
# - a pull killed half-way (kill -9) resumes with a Range request and verifies;
# - a layer shared by two images is stored and unpacked once and not fetched again;
# - gzip, zstd and plain tar layers; pull by digest; whiteouts and opaque directories in
#   overlay form; hostile layers (.. and symlink escapes) refused;
# - two concurrent pulls of the same image both succeed with one directory per layer.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
# shellcheck source=tests/image/registry.sh
. "$AC_REPO/tests/image/registry.sh"
for t in docker-registry openssl curl htpasswd zstd getfattr sha256sum; do
	if ! command -v "$t" >/dev/null; then
		skip "image pull from local registries" "$t is not installed (scripts/install-deps.sh)"
		exit 0
	fi
done
# A config file in the working directory would win over $AGENTCELL_HOME/agentcell.toml;
# no credentials of this machine's user either.
cd "$AC_TMP" || exit 1
export HOME=$AC_TMP/home
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE AGENTCELL_REGISTRY_CA DOCKER_CONFIG
REG_ROOT=$AC_TMP/reg
mkdir -p "$REG_ROOT"
at_exit reg_cleanup
IMG=$AGENTCELL_HOME/images

# ------------------------------------------------------------------ helpers
pull() { acx image pull "$@"; }
inspect() { ac image inspect "$1" 2>/dev/null | jq -r "$2" 2>/dev/null; }
layer_dir() { printf '%s/layers/%s' "$IMG" "${1#sha256:}"; }
# jq field of push.py --json output
pj() { jq -r "$2" <<<"$1"; }
# Checks that the last acx failed with one error line.
check_refused() {
	if [ "$RC" -ne 0 ]; then pass "$1: refused"; else fail "$1: refused" "$(acx_diag)"; fi
	check_error_line "$1: one error line"
}
# A libcurl-less build cannot pull at all: a visible skip, not failures.
need_pull() {
	if [ "$RC" -ne 0 ] && grep -qi 'libcurl' <<<"$ERR"; then
		skip "image pull" "libcurl is not available: $ERR"
		exit 0
	fi
}

case $(dpkg --print-architecture 2>/dev/null || uname -m) in
amd64 | x86_64) ARCH=amd64 ;;
arm64 | aarch64) ARCH=arm64 ;;
i386) ARCH=386 ;;
ppc64el) ARCH=ppc64le ;;
s390x) ARCH=s390x ;;
riscv64) ARCH=riscv64 ;;
*) ARCH=$(dpkg --print-architecture) ;;
esac
OTHER=arm64
[ "$ARCH" = arm64 ] && OTHER=amd64

# ------------------------------------------------------------------ layer contents
L=$AC_TMP/layers
mkdir -p "$L/base/bin" "$L/base/etc/d" "$L/app/etc" "$L/up/etc/d" "$L/native/etc" "$L/other/etc" \
	"$L/child/etc" "$L/z/etc" "$L/plain/etc" "$L/bad/data" "$L/big/data" "$L/conc/etc" "$L/tok/etc"
cp /bin/busybox "$L/base/bin/busybox" 2>/dev/null || printf 'not busybox\n' >"$L/base/bin/busybox"
ln -s busybox "$L/base/bin/sh"
echo "base $ID" >"$L/base/etc/f1"
echo keep >"$L/base/etc/f2"
echo old >"$L/base/etc/d/old"
echo "hello from the registry $ID" >"$L/app/etc/greeting"
touch "$L/up/etc/.wh.f1" "$L/up/etc/d/.wh..wh..opq"
echo new >"$L/up/etc/d/new"
echo "$ARCH" >"$L/native/etc/arch"
echo "$OTHER" >"$L/other/etc/arch"
echo "child $ID" >"$L/child/etc/child"
echo "zstd $ID" >"$L/z/etc/z"
echo "plain $ID" >"$L/plain/etc/plain"
head -c 1048576 /dev/urandom >"$L/bad/data/r"
head -c $((64 << 20)) /dev/urandom >"$L/big/data/big"
echo "conc $ID" >"$L/conc/etc/conc"
echo "token $ID" >"$L/tok/etc/tok"
head -c 262144 /dev/urandom >"$L/conc/etc/rand"

# ------------------------------------------------------------------ the registries
if reg_start plain plain; then
	pass "plain HTTP registry runs ($REG_ADDR)"
else
	fail "plain HTTP registry runs" "$REG_REASON"
	exit 1
fi
P=$(reg_get plain addr)
if J=$(reg_push plain image "t/base:1" --layer "$L/base" --layer "$L/app" --json \
	--env "GREETING=hi $ID" --env PATH=/bin --workdir /etc --user 0 --cmd '["/bin/sh"]' 2>&1); then
	pass "push t/base:1 (2 gzip layers, OCI)"
else
	fail "push t/base:1" "$J"
	exit 1
fi
BASE_LAYER=$(pj "$J" '.layers[0]')
APP_LAYER=$(pj "$J" '.layers[1]')
BASE_MANIFEST=$(pj "$J" .digest)
BASE_CONFIG=$(pj "$J" .config)

# ------------------------------------------------------------------ plain HTTP
pull "$P/t/base:1"
need_pull
check_refused "plain HTTP registry without --insecure-registry"
check_contains "the error says how to allow plain HTTP" "$ERR" "insecure"

pull "$P/t/base:1" --insecure-registry "$P"
check_rc "pull --insecure-registry $P" 0
check_eq "inspect: id is the config digest" "$BASE_CONFIG" "$(inspect "$P/t/base:1" .id)"
check_eq "inspect: manifest digest" "$BASE_MANIFEST" "$(inspect "$P/t/base:1" .manifest_digest)"
check_eq "inspect: architecture" "$ARCH" "$(inspect "$P/t/base:1" .architecture)"
check_eq "inspect: two layers, bottom first" "$BASE_LAYER $APP_LAYER" \
	"$(inspect "$P/t/base:1" '[.layers[].digest] | join(" ")')"
check_contains "inspect: Env from the image config" "$(inspect "$P/t/base:1" '.config.env | join(",")')" "GREETING=hi $ID"
check_eq "inspect: WorkingDir" /etc "$(inspect "$P/t/base:1" .config.workdir)"
check_eq "inspect: Cmd" '["/bin/sh"]' "$(ac image inspect "$P/t/base:1" 2>/dev/null | jq -c .config.cmd)"
check_eq "the upper layer is unpacked: etc/greeting" "hello from the registry $ID" \
	"$(cat "$(layer_dir "$APP_LAYER")/etc/greeting" 2>&1)"
check_eq "the layer's symlink is kept" busybox "$(readlink "$(layer_dir "$BASE_LAYER")/bin/sh")"
check_eq "the layer blob is stored under its digest" "${APP_LAYER#sha256:}" \
	"$(sha256sum "$IMG/blobs/sha256/${APP_LAYER#sha256:}" 2>/dev/null | cut -d' ' -f1)"
check_contains "image ls lists it" "$(ac image ls 2>&1)" "$P/t/base"

acx image rm "$P/t/base:1"
check_rc "image rm $P/t/base:1" 0
acx image inspect "$P/t/base:1"
check_ne "after rm: inspect fails" 0 "$RC"
printf '[images]\ninsecure = ["%s"]\n' "$P" >"$AGENTCELL_HOME/agentcell.toml"
pull "$P/t/base:1"
check_rc "pull with [images] insecure = [\"$P\"] in agentcell.toml" 0
check_eq "... and it is tagged again" "$BASE_CONFIG" "$(inspect "$P/t/base:1" .id)"
rm -f "$AGENTCELL_HOME/agentcell.toml"

# ------------------------------------------------------------------ TLS + basic auth
if reg_start basic basic alice "s3cret-$ID"; then
	pass "TLS + htpasswd registry runs ($REG_ADDR)"
	B=$(reg_get basic addr)
	J=$(reg_push basic image "t/secure:1" --layer "$L/base" --layer "$L/app" --format docker --json 2>&1) ||
		fail "push t/secure:1 (Docker schema 2)" "$J"
	pull "$B/t/secure:1"
	check_refused "TLS registry with an unknown CA"
	export AGENTCELL_REGISTRY_CA=$REG_CA
	pull "$B/t/secure:1"
	check_refused "anonymous pull from a registry with basic auth"
	check_contains "the error names agentcell image login" "$ERR" "agentcell image login"
	check_not_contains "no plain-HTTP fallback for a TLS registry" "$ERR" "insecure-registry"

	acx image login "$B" -u alice --password-stdin <<<"wrong-$ID"
	check_refused "image login with a wrong password"
	check_eq "no auth.json after a failed login" "" "$(ls "$IMG/auth.json" 2>/dev/null)"
	acx image login "$B" -u alice --password-stdin <<<"s3cret-$ID"
	check_rc "image login $B (password on stdin)" 0
	check_eq "auth.json is 0600" 600 "$(stat -c %a "$IMG/auth.json" 2>&1)"
	check_not_contains "auth.json holds no clear password" "$(cat "$IMG/auth.json" 2>/dev/null)" "s3cret-$ID"
	pull "$B/t/secure:1"
	check_rc "pull after image login" 0
	check_eq "Docker schema 2 manifest recorded" application/vnd.docker.distribution.manifest.v2+json \
		"$(inspect "$B/t/secure:1" .manifest_media_type)"

	acx image logout "$B"
	check_rc "image logout $B" 0
	ac image rm "$B/t/secure:1" >/dev/null 2>&1
	pull "$B/t/secure:1"
	check_refused "after logout the pull is anonymous again"
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$B" "$(printf 'alice:s3cret-%s' "$ID" | base64 -w0)" \
		>"$AC_TMP/docker-config.json"
	REGISTRY_AUTH_FILE=$AC_TMP/docker-config.json acx image pull "$B/t/secure:1"
	check_rc "pull with credentials from \$REGISTRY_AUTH_FILE (Docker config.json)" 0
	unset AGENTCELL_REGISTRY_CA
else
	fail "TLS + htpasswd registry runs" "$REG_REASON"
fi

# ------------------------------------------------------------------ TLS + token auth
if reg_start token token bob "t0ken-$ID"; then
	pass "TLS + token auth registry runs ($REG_ADDR, tokens from $REG_TOKEN_URL)"
	T=$(reg_get token addr)
	TLOG=$(reg_get token dir)/token.log
	J=$(reg_push token image "t/tok:1" --layer "$L/tok" 2>&1) || fail "push t/tok:1" "$J"
	export AGENTCELL_REGISTRY_CA=$REG_CA
	pull "$T/t/tok:1"
	check_refused "anonymous pull from a token registry"
	check_contains "the error names agentcell image login" "$ERR" "agentcell image login"
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$T" "$(printf 'bob:wrong-%s' "$ID" | base64 -w0)" \
		>"$AC_TMP/bad-config.json"
	: >"$TLOG"
	REGISTRY_AUTH_FILE=$AC_TMP/bad-config.json acx image pull "$T/t/tok:1"
	check_refused "token registry: a wrong password"
	check_contains "the token server refused bob" "$(cat "$TLOG")" "user=bob scope=repository:t/tok:pull -> 401"
	printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$T" "$(printf 'bob:t0ken-%s' "$ID" | base64 -w0)" \
		>"$AC_TMP/tok-config.json"
	: >"$TLOG"
	REGISTRY_AUTH_FILE=$AC_TMP/tok-config.json acx image pull "$T/t/tok:1"
	check_rc "token registry: bearer flow with credentials" 0
	check_contains "a pull token was issued to bob" "$(cat "$TLOG")" "user=bob scope=repository:t/tok:pull -> 200"
	check_eq "the token-protected layer landed" "token $ID" \
		"$(cat "$IMG"/layers/*/etc/tok 2>&1 | head -1)"
	acx image login "$T" -u bob --password-stdin <<<"t0ken-$ID"
	check_rc "image login against a token registry" 0
	unset AGENTCELL_REGISTRY_CA
else
	fail "TLS + token auth registry runs" "$REG_REASON"
fi

# ------------------------------------------------------------------ manifest lists
A=$(reg_push plain image t/multi --no-tag --layer "$L/base" --layer "$L/native" --platform "linux/$ARCH" --json)
O=$(reg_push plain image t/multi --no-tag --layer "$L/base" --layer "$L/other" --platform "linux/$OTHER" --json)
reg_push plain index t/multi:oci --manifest "$(pj "$O" .digest)" --manifest "$(pj "$A" .digest)" >/dev/null
reg_push plain index t/multi:docker --format docker --manifest "$(pj "$O" .digest)" --manifest "$(pj "$A" .digest)" >/dev/null
NATIVE_LAYER=$(pj "$A" '.layers[1]')
OTHER_LAYER=$(pj "$O" '.layers[1]')
for tag in oci docker; do
	pull "$P/t/multi:$tag" --insecure-registry "$P"
	check_rc "pull an ${tag} index (linux/$OTHER, linux/$ARCH)" 0
	check_eq "$tag index: the linux/$ARCH manifest was chosen" "$(pj "$A" .digest)" \
		"$(inspect "$P/t/multi:$tag" .manifest_digest)"
	check_eq "$tag index: architecture $ARCH" "$ARCH" "$(inspect "$P/t/multi:$tag" .architecture)"
done
check_eq "the $ARCH layer's content landed" "$ARCH" "$(cat "$(layer_dir "$NATIVE_LAYER")/etc/arch" 2>&1)"
check_eq "the $OTHER layer was not unpacked" "" "$(ls -d "$(layer_dir "$OTHER_LAYER")" 2>/dev/null)"
check_eq "nor downloaded" "" "$(ls "$IMG/blobs/sha256/${OTHER_LAYER#sha256:}" 2>/dev/null)"
O2=$(reg_push plain image t/foreign --no-tag --layer "$L/other" --platform "linux/$OTHER" --json)
O3=$(reg_push plain image t/foreign --no-tag --layer "$L/other" --platform "windows/$ARCH" --json)
reg_push plain index t/foreign:1 --manifest "$(pj "$O2" .digest)" --manifest "$(pj "$O3" .digest)" >/dev/null
pull "$P/t/foreign:1" --insecure-registry "$P"
check_refused "an index without linux/$ARCH"
check_contains "the error names the platforms present (linux/$OTHER)" "$ERR" "linux/$OTHER"
check_contains "the error names the platforms present (windows/$ARCH)" "$ERR" "windows/$ARCH"
check_contains "the error names the platform wanted" "$ERR" "linux/$ARCH"

# ------------------------------------------------------------------ digest mismatch
J=$(reg_push plain image t/bad:1 --compression none --layer "$L/base" --layer "$L/bad" --json)
BAD=$(pj "$J" '.layers[1]')
BADF=$(reg_blob_path plain "$BAD")
if [ -f "$BADF" ]; then
	printf 'CORRUPTED' | dd of="$BADF" bs=1 seek=4096 conv=notrunc status=none
	pull "$P/t/bad:1" --insecure-registry "$P"
	check_refused "a blob that does not match its digest"
	check_contains "the error names the blob" "$ERR" "${BAD#sha256:}"
	acx image inspect "$P/t/bad:1"
	check_ne "nothing tagged" 0 "$RC"
	check_eq "no layer directory for the bad blob" "" "$(ls -d "$(layer_dir "$BAD")" 2>/dev/null)"
	check_eq "no stored or partial blob for it" "" \
		"$(ls "$IMG/blobs/sha256/${BAD#sha256:}" "$IMG/blobs/tmp/${BAD#sha256:}"* 2>/dev/null)"
else
	fail "the registry stores blobs where expected" "no $BADF"
fi

# ------------------------------------------------------------------ interrupted, resumed
J=$(reg_push plain image t/big:1 --compression none --layer "$L/big" --json)
BIG=$(pj "$J" '.layers[0]')
BIGSIZE=$(stat -c %s "$(reg_blob_path plain "$BIG")")
# 16 MB/s: the 64 MB layer takes 4 s, time enough to kill the pull half-way.
if reg_proxy plain slow $((16 << 20)); then
	S=$(reg_get slow addr)
	PART=$IMG/blobs/tmp/${BIG#sha256:}.partial
	setsid "$AGENTCELL" image pull "$S/t/big:1" --insecure-registry "$S" \
		>"$AC_TMP/big1.out" 2>&1 </dev/null &
	BPID=$!
	bg_track "$BPID"
	partial_grown() { [ "$(stat -c %s "$PART" 2>/dev/null || echo 0)" -ge $((12 << 20)) ]; }
	if wait_until 30 partial_grown; then
		kill -9 -- "-$BPID" 2>/dev/null
		wait "$BPID" 2>/dev/null
		HAVE=$(stat -c %s "$PART" 2>/dev/null || echo 0)
		check_gt "a partial download is left by kill -9 (bytes)" "$HAVE" 0
		check_gt "... shorter than the blob" "$BIGSIZE" "$HAVE"
		pull "$S/t/big:1" --insecure-registry "$S"
		check_rc "the pull run again completes" 0
		RANGES=$(grep "blobs/$BIG range=bytes=" "$(reg_get slow log)")
		check_match "the second pull asked for the rest with a Range request" 'range=bytes=[1-9][0-9]*-' "$RANGES"
		check_contains "... answered 206" "$RANGES" "-> 206"
		check_eq "the resumed blob verifies" "${BIG#sha256:}" \
			"$(sha256sum "$IMG/blobs/sha256/${BIG#sha256:}" 2>/dev/null | cut -d' ' -f1)"
		check_eq "the unpacked 64 MB file is intact" "$(sha256sum <"$L/big/data/big")" \
			"$(sha256sum <"$(layer_dir "$BIG")/data/big" 2>&1)"
		check_eq "the partial file is gone" "" "$(ls "$PART" 2>/dev/null)"
	else
		fail "a partial download appears under blobs/tmp/ while pulling" \
			"$(ls -la "$IMG/blobs/tmp" 2>&1)" "$(cat "$AC_TMP/big1.out")"
		kill -9 -- "-$BPID" 2>/dev/null
	fi
else
	fail "the throttling proxy runs" "$REG_REASON"
fi

# ------------------------------------------------------------------ layer sharing
if reg_proxy plain logged 0; then
	G=$(reg_get logged addr)
	J=$(reg_push plain image t/child:1 --layer "$L/base" --layer "$L/child" --json)
	CHILD_LAYER=$(pj "$J" '.layers[1]')
	check_eq "the child image shares the base layer" "$BASE_LAYER" "$(pj "$J" '.layers[0]')"
	pull "$G/t/child:1" --insecure-registry "$G"
	check_rc "pull t/child:1 (base layer already in the store)" 0
	check_eq "the shared base layer was not fetched again" "" \
		"$(grep "GET /v2/t/child/blobs/$BASE_LAYER " "$(reg_get logged log)")"
	check_contains "the new layer was fetched" "$(cat "$(reg_get logged log)")" "GET /v2/t/child/blobs/$CHILD_LAYER"
	check_eq "one layers/<hex> directory for the shared layer" 1 \
		"$(find "$IMG/layers" -maxdepth 1 -name "${BASE_LAYER#sha256:}*" -type d | wc -l)"
	check_eq "both images name the same layer directory" "$BASE_LAYER" "$(inspect "$G/t/child:1" '.layers[0].digest')"
else
	fail "the logging proxy runs" "$REG_REASON"
fi

# ------------------------------------------------------------------ gzip, zstd, plain; by digest
J=$(reg_push plain image t/zs:1 --compression zstd --layer "$L/base" --layer "$L/z" --compression none --layer "$L/plain" --json)
ZL=$(pj "$J" '.layers[1]')
PL=$(pj "$J" '.layers[2]')
ZM=$(pj "$J" .digest)
pull "$P/t/zs:1" --insecure-registry "$P"
check_rc "pull an image of zstd and plain tar layers" 0
check_eq "the zstd layer is unpacked" "zstd $ID" "$(cat "$(layer_dir "$ZL")/etc/z" 2>&1)"
check_eq "the plain tar layer is unpacked" "plain $ID" "$(cat "$(layer_dir "$PL")/etc/plain" 2>&1)"
check_eq "layer media types recorded" "application/vnd.oci.image.layer.v1.tar+zstd application/vnd.oci.image.layer.v1.tar" \
	"$(inspect "$P/t/zs:1" '[.layers[1:][].media_type] | join(" ")')"
ac image rm "$P/t/zs:1" >/dev/null 2>&1
pull "$P/t/zs@$ZM" --insecure-registry "$P"
check_rc "pull by digest (@sha256:...)" 0
check_eq "by digest: the manifest digest" "$ZM" "$(inspect "$P/t/zs@$ZM" .manifest_digest)"
pull "$P/t/zs@sha256:$(printf '0%.0s' $(seq 64))" --insecure-registry "$P"
check_refused "pull of an unknown digest"

# ------------------------------------------------------------------ whiteouts
J=$(reg_push plain image t/wh:1 --layer "$L/base" --layer "$L/up" --json)
UP=$(layer_dir "$(pj "$J" '.layers[1]')")
pull "$P/t/wh:1" --insecure-registry "$P"
check_rc "pull an image whose upper layer deletes a file and makes an opaque dir" 0
check_eq "the deleted file is a 0/0 character device" "character special file 0:0" \
	"$(stat -c '%F %t:%T' "$UP/etc/f1" 2>&1)"
check_eq "the opaque directory has trusted.overlay.opaque=y" y \
	"$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$UP/etc/d" 2>&1)"
check_eq "no .wh. names are left in the layer" "" "$(find "$UP" -name '.wh.*' 2>&1)"
check_eq "the opaque dir's new file is there" new "$(cat "$UP/etc/d/new" 2>&1)"

# ------------------------------------------------------------------ hostile layers
mkdir -p "$AC_TMP/hostile"
"$PY" - "$AC_TMP/hostile" "$ID" <<'EOF'
import io, sys, tarfile
d, ident = sys.argv[1], sys.argv[2]
def add(t, name, data=b"x", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.isreg():
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    else:
        t.addfile(ti)
with tarfile.open(d + "/dotdot.tar", "w") as t:
    add(t, "etc/ok")
    add(t, "etc/../../escape-" + ident)
with tarfile.open(d + "/symlink.tar", "w") as t:
    add(t, "lnk", type=tarfile.SYMTYPE, linkname=d)
    add(t, "lnk/pwned-" + ident)
EOF
for h in dotdot symlink; do
	J=$(reg_push plain image "t/$h:1" --layer "$AC_TMP/hostile/$h.tar" --json)
	pull "$P/t/$h:1" --insecure-registry "$P"
	check_refused "a hostile layer ($h escape)"
	acx image inspect "$P/t/$h:1"
	check_ne "$h: nothing tagged" 0 "$RC"
	check_eq "$h: nothing written outside the layer" "" \
		"$(find "$AGENTCELL_HOME" "$AC_TMP/hostile" /tmp -maxdepth 4 \( -name "escape-$ID" -o -name "pwned-$ID" \) 2>/dev/null)"
	check_eq "$h: no layer directory" "" "$(ls -d "$(layer_dir "$(pj "$J" '.layers[0]')")" 2>/dev/null)"
done

# ------------------------------------------------------------------ concurrent pulls
J=$(reg_push plain image t/conc:1 --layer "$L/base" --layer "$L/conc" --json)
CL=$(pj "$J" '.layers[1]')
for i in 1 2; do
	"$AGENTCELL" image pull "$P/t/conc:1" --insecure-registry "$P" >"$AC_TMP/conc$i.out" 2>&1 &
	eval "CP$i=\$!"
done
# shellcheck disable=SC2154 # CP1 and CP2 are set by the eval above
{ wait "$CP1"; R1=$?; wait "$CP2"; R2=$?; }
check_eq "two concurrent pulls of the same image both succeed" "0 0" "$R1 $R2"
[ "$R1$R2" = 00 ] || _ac_diag "$(cat "$AC_TMP/conc1.out" "$AC_TMP/conc2.out")"
check_eq "one layer directory for the new layer" 1 \
	"$(find "$IMG/layers" -maxdepth 1 -name "${CL#sha256:}" -type d | wc -l)"
check_eq "its content" "conc $ID" "$(cat "$(layer_dir "$CL")/etc/conc" 2>&1)"
check_eq "the image is tagged once" 1 \
	"$(jq -r --arg r "$P/t/conc:1" '[.refs | to_entries[] | select(.key == $r)] | length' "$IMG/index.json" 2>&1)"

# ------------------------------------------------------------------ the store is clean
check_eq "no unfinished layer directories (layers/tmp.*)" "" "$(ls -d "$IMG"/layers/tmp.* 2>/dev/null)"
check_eq "no partial downloads left" "" "$(ls "$IMG"/blobs/tmp/ 2>/dev/null)"
bad_blobs=
for f in "$IMG"/blobs/sha256/*; do
	[ -f "$f" ] || continue
	[ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || bad_blobs+="$(basename "$f") "
done
check_eq "every stored blob matches its name" "" "$bad_blobs"
for d in "$IMG"/layers/*/; do
	h=$(basename "$d")
	[ -f "$IMG/blobs/sha256/$h" ] || { bad_blobs+="$h "; continue; }
done
check_eq "every layer directory has its verified blob" "" "$bad_blobs"
