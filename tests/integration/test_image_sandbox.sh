#!/bin/bash
# Sandboxes from images and templates on the native backend (issue 16):
# - create --image REF of an image not in the store pulls it from a plain-HTTP registry on
#   loopback ([images] insecure) and the sandbox runs in it (a marker file of the image);
#   images made with tests/image/mkarchive.py (docker and OCI archives) and `agentcell
#   image import` are the others' source (the registry's when mkarchive.py is missing);
# - the state names it (info --json: image, image_id, image_layers, workdir, user,
#   created_from_template null), and the image config's Env (the caller's --env wins),
#   WorkingDir and User apply to exec;
# - run --image REF without a command runs Entrypoint + Cmd; a command given runs as given;
#   an image with neither: exit 2 with a message naming it;
# - snapshot of a stopped sandbox -> template ls shows it -> create --template sees the
#   files written (and not the one deleted) before the snapshot; info and the API's GET
#   show created_from_template and template_help_text; POST /sandboxes takes "template";
# - a snapshot of a host-based sandbox (no --image): a file in /root and one in /usr/local;
# - snapshot refusals: a running sandbox, an existing template name (unless --force);
# - template rm refused while a sandbox uses the template; image rm refused naming the
#   sandbox that uses the image;
# - --image with --template: exit 2; --template on --backend podman: a clear error.
# Pieces a machine (or this checkout) lacks are visible skips.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
# No config file of the working directory, no credentials of this machine's user.
cd "$AC_TMP" || exit 1
export HOME=$AC_TMP/home
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE AGENTCELL_REGISTRY_CA DOCKER_CONFIG

# ------------------------------------------------------------------ what this build has
acx image ls
if [ "$RC" -ne 0 ]; then
	skip "sandboxes from images" "this build has no 'agentcell image' command: $ERR"
	exit 0
fi
acx create "probe-$ID" --template "none-$ID"
if grep -q 'not supported by the native backend' <<<"$ERR"; then
	skip "sandboxes from images" "the native backend has no image store yet: $ERR"
	exit 0
fi
check_rc "create --template of an unknown template: exit 1" 1
check_contains "... saying it does not exist" "$ERR" "template 'none-$ID' does not exist"
check_eq "... and nothing was made" "" "$(ac_names)"

# ------------------------------------------------------------------ the images' files
L=$AC_TMP/layers
mkdir -p "$L/base/bin" "$L/base/etc" "$L/base/work" "$L/base/root" "$L/base/tmp" "$L/base/usr/local"
cp /bin/busybox "$L/base/bin/busybox"
for p in sh cat echo id pwd env ls rm touch mkdir test true grep; do ln -s busybox "$L/base/bin/$p"; done
printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1234:1234:agent:/work:/bin/sh\n' >"$L/base/etc/passwd"
printf 'root:x:0:\nagent:x:1234:\n' >"$L/base/etc/group"
echo "image-marker-$ID" >"$L/base/etc/marker"
echo "delete me" >"$L/base/etc/removeme"
chmod 1777 "$L/base/tmp"
chown 1234:1234 "$L/base/work"

# The full image has a config (Env, WorkingDir, User, Entrypoint, Cmd), the bare one none.
# shellcheck disable=SC2016 # $FOO and $(pwd) are for the image's shell
FULL_CFG='{"Env":["FOO=from-image","BAR=image-bar","PATH=/bin:/usr/bin"],"WorkingDir":"/work","User":"1234","Entrypoint":["/bin/sh","-c"],"Cmd":["echo entry-$FOO-$(pwd)"]}'
# shellcheck disable=SC2016
FULL_OPTS=(--env "FOO=from-image" --env "BAR=image-bar" --env "PATH=/bin:/usr/bin"
	--workdir /work --user 1234 --entrypoint '["/bin/sh","-c"]' --cmd '["echo entry-$FOO-$(pwd)"]')

# ------------------------------------------------------------------ a local registry
# shellcheck source=tests/image/registry.sh
. "$AC_REPO/tests/image/registry.sh"
REG=""
if reg_init && reg_start r plain; then
	REG=$REG_ADDR
	at_exit reg_cleanup
	printf '[images]\ninsecure = ["%s"]\n' "$REG" >"$AGENTCELL_HOME/agentcell.toml"
fi

# The images: made by tests/image/mkarchive.py and imported; without it, pushed to the
# registry and pulled. FULL and BARE are their canonical references.
FULL="" BARE="" SRC=""
MK=$AC_REPO/tests/image/mkarchive.py
# Plain tar layers: compression is test_image_pull's (and the snapshot's layer is gzip).
spec() { jq -cn --arg t "$1" --arg l "$L/base" --argjson c "$2" '{tags: [$t], layers: [$l], compress: "none", config: $c}'; }
if [ -f "$MK" ] &&
	"$PY" "$MK" image --format docker "$AC_TMP/full.tar" --image "$(spec "local/full-$ID:1" "$FULL_CFG")" >"$AC_TMP/mk.out" 2>&1 &&
	"$PY" "$MK" image --format oci-archive "$AC_TMP/bare.tar" --image "$(spec "local/bare-$ID:1" '{}')" >>"$AC_TMP/mk.out" 2>&1 &&
	ac image import "$AC_TMP/full.tar" >>"$AC_TMP/mk.out" 2>&1 &&
	ac image import "$AC_TMP/bare.tar" "local/bare-$ID:1" >>"$AC_TMP/mk.out" 2>&1; then
	FULL=docker.io/local/full-$ID:1 BARE=docker.io/local/bare-$ID:1 SRC=archives
elif [ -n "$REG" ] &&
	reg_push r image "full-$ID:1" --compression none --layer "$L/base" "${FULL_OPTS[@]}" >"$AC_TMP/push.out" 2>&1 &&
	reg_push r image "bare-$ID:1" --compression none --layer "$L/base" >>"$AC_TMP/push.out" 2>&1 &&
	ac image pull "$REG/full-$ID:1" >>"$AC_TMP/push.out" 2>&1 &&
	ac image pull "$REG/bare-$ID:1" >>"$AC_TMP/push.out" 2>&1; then
	FULL=$REG/full-$ID:1 BARE=$REG/bare-$ID:1 SRC=registry
else
	skip "sandboxes from images" "no image source: mkarchive: $(tail -n 3 "$AC_TMP/mk.out" 2>/dev/null || echo missing); registry: ${REG_REASON:-$(tail -n 3 "$AC_TMP/push.out" 2>/dev/null)}"
	exit 0
fi
echo "# images from the $SRC: $FULL, $BARE"

# ------------------------------------------------------------------ pulled at create
if [ -n "$REG" ] && reg_push r image "pulled-$ID:1" --compression none --layer "$L/base" >"$AC_TMP/push2.out" 2>&1; then
	P=pull-$ID
	acx image inspect "$REG/pulled-$ID:1"
	check_ne "an image only in the registry is not in the store" 0 "$RC"
	check_ac "create --image of it (plain HTTP: [images] insecure)" create "$P" --image "$REG/pulled-$ID:1"
	acx image inspect "$REG/pulled-$ID:1"
	check_rc "create pulled it into the store" 0
	check_ac "start $P" start "$P"
	acx exec "$P" -- cat /etc/marker
	check_out "the sandbox runs in the pulled image" "image-marker-$ID"
	check_eq "info: image is the canonical reference" "$REG/pulled-$ID:1" "$(ac_json_field "$P" image)"
	ac remove "$P" >/dev/null 2>&1
	acx create "pull2-$ID" --image "$REG/absent-$ID:1"
	check_ne "create --image of a reference the registry does not have fails" 0 "$RC"
	check_contains "... naming it" "$ERR" "absent-$ID"
else
	skip "an image only in a local registry is pulled at create" "${REG_REASON:-push failed: $(tail -n 3 "$AC_TMP/push2.out" 2>/dev/null)}"
fi

# ------------------------------------------------------------------ create --image REF
S=img-$ID
check_ac "create --image $FULL" create "$S" --image "$FULL"
check_ac "start $S" start "$S"
acx exec "$S" -- cat /etc/marker
check_out "the sandbox runs in the image (its marker file)" "image-marker-$ID"
acx exec "$S" -- test -e /usr/bin/apt-get
check_ne "... not on the host's /usr" 0 "$RC"

INFO=$(ac info "$S" --json)
check_eq "info: image is the canonical reference" "$FULL" "$(jq -r .image <<<"$INFO")"
check_match "info: image_id" '^sha256:[0-9a-f]{64}$' "$(jq -r .image_id <<<"$INFO")"
check_eq "info: image_id is the store's" "$(ac image inspect "$FULL" | jq -r .id)" "$(jq -r .image_id <<<"$INFO")"
check_eq "info: one image layer" 1 "$(jq -r '.image_layers | length' <<<"$INFO")"
check_eq "info: image_base oci" oci "$(jq -r .image_base <<<"$INFO")"
check_eq "info: workdir from the image" /work "$(jq -r .workdir <<<"$INFO")"
check_eq "info: user from the image" 1234 "$(jq -r .user <<<"$INFO")"
check_eq "info: created_from_template null" null "$(jq -r .created_from_template <<<"$INFO")"

acx exec "$S" -- env
check_contains "exec: the image's Env" "$OUT" "FOO=from-image"
acx exec "$S" -- pwd
check_out "exec: the image's WorkingDir" /work
acx exec "$S" -- id -u
check_out "exec: the image's User" 1234
acx exec --user 0 "$S" -- id -u
check_out "exec --user 0 overrides the image's User" 0
acx exec --workdir / "$S" -- pwd
check_out "exec --workdir / overrides the image's WorkingDir" /

S2=env-$ID
check_ac "create --image with --env FOO=mine" create "$S2" --image "$FULL" --env FOO=mine
check_ac "start $S2" start "$S2"
acx exec "$S2" -- env
check_contains "the caller's --env wins over the image's" "$OUT" "FOO=mine"
check_not_contains "... the image's value is gone" "$OUT" "FOO=from-image"
check_contains "... the image's other variables stay" "$OUT" "BAR=image-bar"
ac remove "$S2" >/dev/null 2>&1

# ------------------------------------------------------------------ run without a command
acx run --image "$FULL"
check_rc "run --image REF without a command: exit 0" 0
check_out "... runs Entrypoint + Cmd (in the WorkingDir, with the Env)" "entry-from-image-/work"
acx run --image "$FULL" -- echo given
check_out "run --image REF CMD runs CMD as given (no Entrypoint before it)" given
acx run --image "$BARE"
check_rc "run of an image without Entrypoint or Cmd: exit 2" 2
check_contains "... saying so, naming the image" "$ERR" "no command given and image '$BARE' has no Entrypoint or Cmd"
check_error_line "... one error line"
acx run
check_rc "run without a command nor an image: exit 2" 2

# ------------------------------------------------------------------ snapshot and templates
T=tpl-$ID
B=snap-$ID
check_ac "create $B --image $BARE" create "$B" --image "$BARE"
check_ac "start $B" start "$B"
acx exec "$B" -- sh -c "echo snap-$ID > /root/snapfile && rm /etc/removeme && mkdir -p /opt/d && echo x > /opt/d/f"
check_rc "files written and one deleted in $B" 0
acx snapshot "$B" "$T"
check_ne "snapshot of a running sandbox is refused" 0 "$RC"
check_contains "... saying to stop it" "$ERR" "stop it first"
check_ac "stop $B" stop "$B"
acx snapshot "$B" "$T" --description "help for $ID"
SNAP_OK=$RC
if [ "$RC" -ne 0 ] && grep -qi 'not supported\|not implemented' <<<"$ERR"; then
	skip "snapshots and templates" "this build cannot snapshot yet: $ERR"
else
	check_rc "snapshot $B $T" 0
fi
if [ "$SNAP_OK" = 0 ]; then
	TL=$(ac template ls --json)
	check_eq "template ls --json lists it" "$T" "$(jq -r --arg t "$T" '.[] | select(.template.name == $t) | .template.name' <<<"$TL")"
	check_eq "... from $B" "$B" "$(jq -r --arg t "$T" '.[] | select(.template.name == $t) | .template.from' <<<"$TL")"
	check_eq "... its description" "help for $ID" "$(jq -r --arg t "$T" '.[] | select(.template.name == $t) | .template.description' <<<"$TL")"
	check_eq "... two layers: the image's and the snapshot's" 2 "$(jq -r --arg t "$T" '.[] | select(.template.name == $t) | .layers | length' <<<"$TL")"
	check_contains "template ls shows it" "$(ac template ls)" "$T"
	acx image ls
	check_not_contains "image ls does not list templates" "$OUT" "$T"

	acx snapshot "$B" "$T"
	check_rc "snapshot to an existing template name: exit 1" 1
	check_contains "... saying it exists" "$ERR" "already exists"
	acx snapshot "$B" "bad/name"
	check_rc "snapshot to an invalid template name: exit 2" 2

	C=fromtpl-$ID
	check_ac "create --template $T" create "$C" --template "$T"
	check_ac "start $C" start "$C"
	acx exec "$C" -- cat /root/snapfile
	check_out "the template's sandbox sees the file written before the snapshot" "snap-$ID"
	acx exec "$C" -- cat /opt/d/f
	check_out "... and the new directory's file" x
	acx exec "$C" -- test -e /etc/removeme
	check_ne "... not the file deleted before it (a whiteout)" 0 "$RC"
	acx exec "$C" -- cat /etc/marker
	check_out "... and the image's own files" "image-marker-$ID"
	INFO=$(ac info "$C" --json)
	check_eq "info: image template:$T" "template:$T" "$(jq -r .image <<<"$INFO")"
	check_eq "info: created_from_template" "$T" "$(jq -r .created_from_template <<<"$INFO")"
	check_eq "info: template_help_text" "help for $ID" "$(jq -r .template_help_text <<<"$INFO")"
	check_eq "info: two image layers" 2 "$(jq -r '.image_layers | length' <<<"$INFO")"

	acx template rm "$T"
	check_ne "template rm while a sandbox uses it is refused" 0 "$RC"
	check_contains "... naming the sandbox" "$ERR" "$C"
	check_contains "template ls still lists it" "$(ac template ls)" "$T"

	acx snapshot "$B" "$T" --force --description "second"
	check_rc "snapshot --force replaces the template" 0
	check_eq "... template ls shows the new description" second \
		"$(ac template ls --json | jq -r --arg t "$T" '.[] | select(.template.name == $t) | .template.description')"
	acx exec "$C" -- cat /root/snapfile
	check_out "... and the sandbox made from the old one keeps working" "snap-$ID"

	# ---------------------------------------------------------- the API
	KEY="img-key-$ID-$RANDOM$RANDOM"
	if start_server api AGENTCELL_API_KEY="$KEY" -- --port 0; then
		URL=http://127.0.0.1:$SRV_PORT
		req() {
			local out
			out=$(curl -sS --max-time 120 -X "$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
				${3:+--data-binary "$3"} -w '\n%{http_code}' "$URL$2" 2>&1)
			CODE=${out##*$'\n'}
			BODY=${out%$'\n'*}
		}
		req GET "/sandboxes/$C"
		check_eq "API GET /sandboxes/$C: 200" 200 "$CODE"
		check_eq "... created_from_template" "$T" "$(jq -r '(.data // .).created_from_template' <<<"$BODY")"
		check_eq "... template_help_text" "help for $ID" "$(jq -r '(.data // .).template_help_text' <<<"$BODY")"
		check_eq "... image" "template:$T" "$(jq -r '(.data // .).image' <<<"$BODY")"
		A=api-$ID
		req POST /sandboxes "{\"name\":\"$A\",\"template\":\"$T\"}"
		check_eq "API POST /sandboxes with template: 2xx" 2 "${CODE:0:1}"
		check_eq "... its created_from_template" "$T" "$(jq -r '(.data // .).created_from_template' <<<"$BODY")"
		req POST "/sandboxes/$A/exec" '{"command":["cat","/root/snapfile"]}'
		check_contains "... it sees the template's file" "$BODY" "snap-$ID"
		req POST /sandboxes "{\"name\":\"api2-$ID\",\"template\":\"$T\",\"image\":\"$FULL\"}"
		check_eq "API: template with image: 400" 400 "$CODE"
		req POST /sandboxes "{\"name\":\"api3-$ID\",\"template\":\"nope-$ID\"}"
		check_eq "API: an unknown template: 404" 404 "$CODE"
		req DELETE "/sandboxes/$A"
		stop_server api "$SRV_PID"
	else
		fail "serve starts" "$(cat "$AC_TMP/api.err")"
	fi

	# ---------------------------------------------------------- MCP (stdio)
	call() { printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2" "$3"; }
	MOUT=$(printf '%s\n' \
		'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}' \
		'{"jsonrpc":"2.0","method":"notifications/initialized"}' \
		"$(call 2 sandbox_run "{\"image\":\"$FULL\"}")" \
		"$(call 3 sandbox_create "{\"name\":\"mcp-$ID\",\"template\":\"$T\"}")" \
		"$(call 4 sandbox_run "{\"image\":\"$BARE\"}")" |
		timeout -k 5 120 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err")
	check_eq "MCP sandbox_run with an image and no command: Entrypoint + Cmd" "entry-from-image-/work" \
		"$(jq -r 'select(.id == 2) | .result.structuredContent.stdout' <<<"$MOUT" | tr -d '\n')"
	check_eq "MCP sandbox_create with template: created_from_template" "$T" \
		"$(jq -r 'select(.id == 3) | .result.structuredContent.created_from_template' <<<"$MOUT")"
	check_contains "MCP sandbox_run of an image without Entrypoint or Cmd: an error result" \
		"$(jq -c 'select(.id == 4) | .result' <<<"$MOUT")" "has no Entrypoint or Cmd"
	ac remove "mcp-$ID" >/dev/null 2>&1

	ac remove "$C" >/dev/null 2>&1
	acx template rm "$T"
	check_rc "template rm once no sandbox uses it" 0
	acx template ls --json
	check_eq "... template ls no longer lists it" "" "$(jq -r --arg t "$T" '.[] | select(.template.name == $t) | .template.name' <<<"$OUT")"
	acx create "gone-$ID" --template "$T"
	check_ne "create --template of a removed template fails" 0 "$RC"

	# ---------------------------------------------------------- a host-based sandbox
	H=host-$ID
	TH=tplhost-$ID
	check_ac "create $H (the host base)" create "$H"
	check_ac "start $H" start "$H"
	acx exec "$H" -- sh -c "echo root-$ID > /root/hostfile && mkdir -p /usr/local/share && echo usr-$ID > /usr/local/share/hostlocal-$ID"
	check_rc "files written in /root and /usr/local" 0
	check_ac "stop $H" stop "$H"
	check_ac "snapshot $H $TH" snapshot "$H" "$TH" --description "host tpl"
	check_eq "template ls: base host" host \
		"$(ac template ls --json | jq -r --arg t "$TH" '.[] | select(.template.name == $t) | .base')"
	test -e "/usr/local/share/hostlocal-$ID"
	check_ne "the host's /usr/local is untouched" 0 "$?"
	HC=hostc-$ID
	check_ac "create --template $TH" create "$HC" --template "$TH"
	check_ac "start $HC" start "$HC"
	acx exec "$HC" -- cat /root/hostfile
	check_out "the host template's /root file" "root-$ID"
	acx exec "$HC" -- cat "/usr/local/share/hostlocal-$ID"
	check_out "the host template's /usr/local file" "usr-$ID"
	acx exec "$HC" -- test -x /usr/bin/env
	check_rc "... on the host's /usr" 0
	acx run --template "$TH" -- cat /root/hostfile
	check_out "run --template: a one-shot sandbox from the template" "root-$ID"
	ac remove "$HC" >/dev/null 2>&1
	ac template rm "$TH" >/dev/null 2>&1
fi

# ------------------------------------------------------------------ image rm while used
acx image rm "$FULL"
check_ne "image rm of an image a sandbox uses is refused" 0 "$RC"
check_contains "... naming the sandbox" "$ERR" "$S"

# ------------------------------------------------------------------ bad combinations
acx create "both-$ID" --image "$FULL" --template "x-$ID"
check_rc "--image with --template: exit 2" 2
check_contains "... saying they exclude each other" "$ERR" "exclude each other"
acx create "pod-$ID" --backend podman --template "x-$ID"
check_ne "--template on --backend podman fails" 0 "$RC"
check_contains "... saying the backend has no templates" "$ERR" "not supported by the podman backend"
acx create "bad-$ID" --template "Bad!"
check_rc "an invalid --template name: exit 2" 2
check_eq "none of these made a sandbox" "" "$(ac_names | grep -E -- "^(both|pod|bad|gone)-$ID\$" || true)"
