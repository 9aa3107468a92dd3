#!/bin/bash
# agentcell's image store without a registry: `agentcell image import|export|ls|inspect|rm|
# prune` on archives tests/image/mkarchive.py makes from a busybox root file system (one
# image on top of another, sharing its base layer): docker save tars (before and after
# docker 25, plain and gzip layers), OCI layouts (directory and tar, zstd layers). Checks:
# records and digests as the archives say, the shared layer stored once, export -> import
# into a fresh home keeps the id and every digest, `podman load` reads an export and our
# import reads `podman save` (when podman works here), rm and prune, hostile archives
# refused with nothing stored, bad command lines (exit 2, one line), and an image a sandbox
# uses (when create --image works).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

MK="$PY $AC_REPO/tests/image/mkarchive.py"
ID=$(uniq_id)
W=$AC_TMP/work
mkdir -p "$W"

if [ ! -x /bin/busybox ]; then
	skip "image store tests" "no /bin/busybox (apt-get install busybox-static)"
	exit 0
fi

# The root file systems: base (busybox and its applets) and app (one file more).
mkdir -p "$W/base/bin" "$W/base/etc" "$W/base/tmp" "$W/app/opt/app"
cp /bin/busybox "$W/base/bin/busybox"
for c in sh ls cat echo env id pwd; do ln -s busybox "$W/base/bin/$c"; done
echo "base-$ID" >"$W/base/etc/marker"
echo "app-$ID" >"$W/app/opt/app/marker"

B=local/base-$ID:1
APP=local/app-$ID:1
# mkarchive FORMAT OUT SPEC...: builds an archive; JSON of its images in $W/FORMAT-OUT.json.
mkarchive() {
	local fmt=$1 out=$2 args=()
	shift 2
	for s in "$@"; do args+=(--image "$s"); done
	$MK image --format "$fmt" "$out" "${args[@]}" >"$out.json"
}
spec() { # spec TAG COMPRESS LAYER... (TAG "-": none)
	local tag=$1 how=$2
	shift 2
	jq -cn --arg t "$tag" --arg c "$how" --argjson l "$(printf '%s\n' "$@" | jq -R . | jq -s .)" \
		'{tags: (if $t == "-" then [] else [$t] end), compress: $c, layers: $l,
		  config: {Env: ["IMG_VAR=1"], Cmd: ["/bin/sh"], WorkingDir: "/opt/app",
			   Labels: {"test.tag": $t}}}'
}
# (The label makes every tag's config, hence its image id, its own: an image's id is its
# config's digest, and two archives of one config are one image.)
records() { find "$AGENTCELL_HOME/images/records" -name '*.json' 2>/dev/null | wc -l; }
layer_dirs() { find "$AGENTCELL_HOME/images/layers" -mindepth 1 -maxdepth 1 -type d -regextype egrep -regex '.*/[0-9a-f]{64}' 2>/dev/null | wc -l; }
inspect() { ac image inspect "$1" 2>/dev/null | jq -c "$2" 2>/dev/null; }

# ------------------------------------------------------------------ the command line
acx image --help
check_contains "image --help names the store it acts on" "$OUT" "agentcell's image store (\$AGENTCELL_HOME/images; native backend)"
for a in pull ls inspect rm prune import export login logout; do
	acx image "$a" --help
	if [ "$RC" = 0 ] && [[ "$OUT" == *"agentcell's image store"* ]]; then
		pass "image $a --help: exit 0 and names the store"
	else
		fail "image $a --help: exit 0 and names the store" "$(acx_diag)"
	fi
done
acx image ls
check_rc "image ls on an empty store: exit 0" 0
check_match "image ls: its first line names the store" "^agentcell's image store \\($AGENTCELL_HOME/images; native backend\\)" "$OUT"

while IFS='|' read -r desc args; do
	read -ra argv <<<"$args"
	acx "${argv[@]}"
	check_rc "$desc: exit 2" 2
	check_error_line "$desc: one error line"
done <<EOF
image without an action|image
image with an unknown action|image frob
image pull without a reference|image pull
image pull of a bad reference|image pull Bad::Ref
image import without a path|image import
image export without a destination|image export local/x:1
image rm without a name|image rm
image ls with an argument|image ls extra
image ls --backend podman|image ls --backend podman
image pull --backend docker|image pull alpine --backend docker
image ls --backend of no backend|image ls --backend nosuch
image login without a terminal or --password-stdin|image login localhost:1 -u u
image import of a bad reference|image import /dev/null Bad::Ref
EOF
acx image ls --backend podman
check_contains "--backend podman: says the engine keeps its own images" "$ERR" "podman backend keeps its own images: use podman pull"

# ------------------------------------------------------------------ docker save (before 25)
mkarchive docker-legacy "$W/legacy.tar" "$(spec "$B" none "$W/base")" "$(spec "$APP" none "$W/base" "$W/app")"
acx image import "$W/legacy.tar"
check_rc "import of a docker save tar with two images" 0
check_contains "import names both images" "$OUT" "docker.io/local/app-$ID:1"
acx image ls
check_contains "ls shows the base image" "$OUT" "docker.io/local/base-$ID"
check_contains "ls shows the app image" "$OUT" "docker.io/local/app-$ID"
WANT_ID=$(jq -r '.images[1].id' "$W/legacy.tar.json")
check_contains "ls shows the 12-hex image id" "$OUT" "${WANT_ID:7:12}"
acx image ls --json
check_eq "ls --json: two records" 2 "$(jq length <<<"$OUT")"
check_eq "inspect: the id is the config digest" "\"$WANT_ID\"" "$(inspect "$APP" .id)"
check_eq "inspect: the layer digests are the archive's" "$(jq -c '.images[1].layers' "$W/legacy.tar.json")" "$(inspect "$APP" '[.layers[].digest]')"
check_eq "inspect: the image config (env, workdir, cmd)" '[["IMG_VAR=1"],"/opt/app",["/bin/sh"]]' "$(inspect "$APP" '[.config.env,.config.workdir,.config.cmd]')"
check_eq "inspect by a 12-hex id prefix" "\"$WANT_ID\"" "$(inspect "${WANT_ID:7:12}" .id)"
check_eq "the shared base layer is stored once (2 layer directories)" 2 "$(layer_dirs)"
BASE_LAYER=$(jq -r '.images[0].layers[0]' "$W/legacy.tar.json")
if [ -x "$AGENTCELL_HOME/images/layers/${BASE_LAYER#sha256:}/bin/busybox" ] &&
	[ "$(cat "$AGENTCELL_HOME/images/layers/${BASE_LAYER#sha256:}/etc/marker")" = "base-$ID" ]; then
	pass "the base layer is unpacked (bin/busybox, etc/marker)"
else
	fail "the base layer is unpacked (bin/busybox, etc/marker)" "$(ls -la "$AGENTCELL_HOME/images/layers/" 2>&1)"
fi
acx image import "$W/legacy.tar" "local/one-$ID:1"
check_rc "import of two images with a reference: exit 2" 2
check_contains "the error says why" "$ERR" "holds 2 images"

# ------------------------------------------------------------------ docker save (25+): gzip layers, index.json
GZ=local/gz-$ID:1
mkarchive docker "$W/d25.tar" "$(spec "$GZ" gzip "$W/base" "$W/app")"
acx image import "$W/d25.tar"
check_rc "import of a docker 25 save tar (index.json, gzip layers)" 0
check_eq "its manifest digest is the archive's" "$(jq -c '.images[0].manifest' "$W/d25.tar.json")" "$(inspect "$GZ" .manifest_digest)"
check_eq "its layer digests are the archive's" "$(jq -c '.images[0].layers' "$W/d25.tar.json")" "$(inspect "$GZ" '[.layers[].digest]')"
# A layer directory is named after its blob: the gzip blobs are two more.
check_eq "the gzip layers have directories of their own (2 + 2)" 4 "$(layer_dirs)"

# ------------------------------------------------------------------ OCI layout: directory (zstd) and tar
if command -v zstd >/dev/null; then
	mkarchive oci-dir "$W/oci" "$(spec - zstd "$W/base")"
	acx image import "$W/oci" "local/oci-$ID:1"
	check_rc "import of an OCI layout directory (zstd layer) with a reference" 0
	check_eq "its id is the config digest" "$(jq -c '.images[0].id' "$W/oci.json")" "$(inspect "local/oci-$ID:1" .id)"
	check_eq "its layer digest is the archive's" "$(jq -c '.images[0].layers' "$W/oci.json")" "$(inspect "local/oci-$ID:1" '[.layers[].digest]')"
else
	skip "import of an OCI layout directory (zstd layer)" "no zstd program here"
fi
mkarchive oci-archive "$W/oci.tar" "$(spec "localhost:5000/ocitar-$ID:2" gzip "$W/base")"
acx image import "$W/oci.tar"
check_rc "import of an OCI archive tar (ref name annotation)" 0
check_eq "tagged as its annotation says" '["localhost:5000/ocitar-'"$ID"':2"]' "$(inspect "localhost:5000/ocitar-$ID:2" .refs)"

# ------------------------------------------------------------------ export -> import elsewhere
acx image export "$APP" "$W/export.tar"
check_rc "export to a file" 0
MEMBERS=$(tar tf "$W/export.tar" 2>&1 | sort | tr '\n' ' ')
check_contains "the export has manifest.json (docker load)" "$MEMBERS" "manifest.json"
check_contains "the export has index.json (OCI)" "$MEMBERS" "index.json"
check_contains "the export has oci-layout (OCI)" "$MEMBERS" "oci-layout"
check_contains "the export has the config blob" "$MEMBERS" "blobs/sha256/${WANT_ID#sha256:}"
check_eq "the export's index.json names the image" "docker.io/local/app-$ID:1" \
	"$(tar xOf "$W/export.tar" index.json | jq -r '.manifests[0].annotations["io.containerd.image.name"]')"
ac image export "$APP" - >"$W/export-stdout.tar" 2>"$W/err"
check_eq "export to - writes the same tar to stdout" "$(sha256sum <"$W/export.tar")" "$(sha256sum <"$W/export-stdout.tar")"
HOME2=$AC_TMP/home2
at_exit "rm -rf --one-file-system '$HOME2'"
AGENTCELL_HOME=$HOME2 ac image import - <"$W/export-stdout.tar" >"$W/out" 2>&1
check_eq "import from standard input into a fresh home: exit 0" 0 "$?"
for f in .id .manifest_digest '[.layers[].digest]' .refs; do
	check_eq "the fresh home's image has the same $f" "$(inspect "$APP" "$f")" \
		"$(AGENTCELL_HOME=$HOME2 ac image inspect "$APP" 2>/dev/null | jq -c "$f")"
done

# ------------------------------------------------------------------ podman load / podman save
P=(podman --root "$AC_TMP/podman/root" --runroot "$AC_TMP/podman/run" --storage-driver vfs)
at_exit "rm -rf --one-file-system '$AC_TMP/podman'"
if command -v podman >/dev/null && timeout 60 "${P[@]}" info >/dev/null 2>&1; then
	if timeout 120 "${P[@]}" load -i "$W/export.tar" >"$W/podman.out" 2>&1; then
		pass "podman load reads the export"
		check_eq "podman sees the same image id" "${WANT_ID:7:12}" \
			"$(timeout 60 "${P[@]}" images --format '{{.ID}}' "docker.io/local/app-$ID:1" 2>/dev/null | head -1 | cut -c1-12)"
		for f in docker-archive oci-archive; do
			rm -f "$W/psave.tar"
			if timeout 120 "${P[@]}" save --format "$f" -o "$W/psave.tar" "docker.io/local/app-$ID:1" >/dev/null 2>&1; then
				AGENTCELL_HOME=$AC_TMP/home-$f ac image import "$W/psave.tar" "local/psave-$ID:$f" >"$W/out" 2>&1
				RC=$?
				OUT=$(cat "$W/out")
				ERR=
				check_rc "import of podman save --format $f" 0
				# docker-archive keeps the config; oci-archive rewrites it as an OCI one.
				if [ "$f" = docker-archive ]; then
					check_eq "podman save --format $f: the same image id" "\"$WANT_ID\"" \
						"$(AGENTCELL_HOME=$AC_TMP/home-$f ac image inspect "local/psave-$ID:$f" 2>/dev/null | jq -c .id)"
				else
					check_eq "podman save --format $f: the same config (env, workdir, cmd), two layers" \
						'[["IMG_VAR=1"],"/opt/app",["/bin/sh"],2]' \
						"$(AGENTCELL_HOME=$AC_TMP/home-$f ac image inspect "local/psave-$ID:$f" 2>/dev/null | jq -c '[.config.env,.config.workdir,.config.cmd,(.layers|length)]')"
				fi
				rm -rf --one-file-system "$AC_TMP/home-$f"
			else
				fail "podman save --format $f" "$(timeout 60 "${P[@]}" save --format "$f" -o "$W/psave.tar" "docker.io/local/app-$ID:1" 2>&1 | tail -5)"
			fi
		done
	else
		fail "podman load reads the export" "$(cat "$W/podman.out")"
	fi
else
	skip "podman load of the export, import of podman save" "podman does not work here"
fi

# ------------------------------------------------------------------ hostile archives
NREC=$(records)
for kind in dotdot absolute manifest-out bad-digest bad-layer symlink-out; do
	$MK evil "$kind" "$W/legacy.tar" "$W/evil-$kind.tar"
	acx image import "$W/evil-$kind.tar" "local/evil-$ID:1"
	check_rc "hostile archive ($kind): refused with exit 2" 2
	check_error_line "hostile archive ($kind): one error line"
done
$MK evil bad-digest "$W/d25.tar" "$W/evil-d25-digest.tar"
acx image import "$W/evil-d25-digest.tar"
check_rc "hostile docker 25 archive (a blob that is not its digest): refused" 2
$MK evil manifest-out "$W/d25.tar" "$W/evil-d25-out.tar"
acx image import "$W/evil-d25-out.tar"
check_rc "hostile docker 25 archive (manifest.json names ../../etc/passwd): refused" 2
check_contains "the error names the path" "$ERR" "../../etc/passwd"
check_eq "no hostile archive stored a record" "$NREC" "$(records)"
acx image inspect "local/evil-$ID:1"
check_rc "no hostile archive was tagged" 1
check_eq "nothing is left in blobs/tmp" "" "$(ls -A "$AGENTCELL_HOME/images/blobs/tmp" 2>&1)"
printf 'not a tar at all' >"$W/garbage.tar"
acx image import "$W/garbage.tar"
check_rc "a file that is no archive: exit 2" 2
check_error_line "a file that is no archive: one error line"

# ------------------------------------------------------------------ rm and prune
APP_LAYER=$(jq -r '.images[1].layers[1]' "$W/legacy.tar.json")
acx image rm "$B"
check_rc "rm of the base image's tag" 0
check_contains "rm says what went" "$OUT" "Untagged: docker.io/local/base-$ID:1"
acx image inspect "$B"
check_rc "the base image is gone" 1
if [ -d "$AGENTCELL_HOME/images/layers/${BASE_LAYER#sha256:}" ]; then
	pass "its layer stays: the app image uses it"
else
	fail "its layer stays: the app image uses it"
fi
acx image rm "${WANT_ID#sha256:}"
check_rc "rm of the app image by id" 0
acx image ls
check_not_contains "ls no longer shows it" "$OUT" "app-$ID"
if [ ! -e "$AGENTCELL_HOME/images/layers/${APP_LAYER#sha256:}" ]; then
	pass "the app's own layer went with its last image"
else
	fail "the app's own layer went with its last image"
fi
# An untagged image: hidden by ls, shown by ls --all, removed by prune with its layer.
mkdir -p "$W/lonely/srv"
echo "lonely-$ID" >"$W/lonely/srv/x"
mkarchive docker-legacy "$W/untagged.tar" "$(spec - none "$W/lonely")"
acx image import "$W/untagged.tar"
check_rc "import of an image without a tag" 0
LONELY=$(jq -r '.images[0].id' "$W/untagged.tar.json")
LONELY_LAYER=$(jq -r '.images[0].layers[0]' "$W/untagged.tar.json")
acx image ls
check_not_contains "ls hides untagged images" "$OUT" "${LONELY:7:12}"
acx image ls --all
check_contains "ls --all shows them" "$OUT" "${LONELY:7:12}"
acx image prune --json
check_rc "prune" 0
check_gt "prune --json: bytes freed" "$(jq -r .freed <<<"$OUT")" 0
check_contains "prune removed the untagged image" "$OUT" "$LONELY"
if [ ! -e "$AGENTCELL_HOME/images/layers/${LONELY_LAYER#sha256:}" ] &&
	[ ! -e "$AGENTCELL_HOME/images/blobs/sha256/${LONELY_LAYER#sha256:}" ]; then
	pass "prune removed its layer and blob"
else
	fail "prune removed its layer and blob" "$(ls "$AGENTCELL_HOME/images/layers")"
fi
acx image inspect "$GZ"
check_rc "prune kept the tagged images" 0
acx image prune
check_match "prune (text): names the store, then what it freed" "^agentcell's image store .*freed 0 B" "$(tr '\n' ' ' <<<"$OUT")"

# ------------------------------------------------------------------ an image a sandbox uses
USE=local/use-$ID:1
mkarchive docker-legacy "$W/use.tar" "$(spec "$USE" none "$W/base" "$W/app")"
ac image import "$W/use.tar" >/dev/null 2>&1
USE_ID=$(jq -r '.images[0].id' "$W/use.tar.json")
acx create "img-$ID" --image "$USE"
if [ "$RC" != 0 ]; then
	skip "rm of an image a sandbox uses" "create --image does not work here: $(head -1 <<<"$ERR")"
else
	acx image rm "$USE"
	check_rc "rm of an image a sandbox uses: refused" 1
	check_contains "the refusal names the sandbox" "$ERR" "sandbox 'img-$ID'"
	check_error_line "the refusal is one line"
	acx image rm "$USE_ID"
	check_rc "rm of it by id: refused too" 1
	acx image rm --force "$USE"
	check_rc "rm --force of it: its tag goes" 0
	acx image inspect "$USE_ID"
	check_rc "rm --force keeps the image for the sandbox" 0
	acx image prune
	acx image inspect "$USE_ID"
	check_rc "prune keeps an untagged image a sandbox uses" 0
	ac remove "img-$ID" >/dev/null 2>&1
	acx image prune
	acx image inspect "$USE_ID"
	check_rc "once the sandbox is gone, prune removes it" 1
fi
