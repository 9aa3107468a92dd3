#!/bin/bash
# agentkernel's HTTP API names (issue 17) against a real `serve`: every field agentkernel's
# POST /sandboxes, /run, /run/stream, /extend and /exec accept is either mapped onto ours
# (checked by its effect: the state, the sandbox's environment, the proxy's bindings, the
# published port, the volume) or refused with a 400/501 naming it; never a silent no-op.
# sudo (exec, exec/stream, exec/detach) is uid 0 even on an image whose User is nobody
# (tests/integration/user_image.sh), and 403 without [api] allow_sudo_exec.
# Then the npm agentkernel SDK (0.18.1) against a server started as `agentkernel serve`
# (a symlink named agentkernel): its own scenario (tests/js/sdk_scenario.mjs) and its
# methods with the fields above (tests/js/compat_sdk.mjs).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/user_image.sh"
ac_setup

ID=$(uniq_id)
JS=$AC_REPO/tests/js
MK=$AC_REPO/tests/image/mkarchive.py
for t in curl busybox; do
	if ! command -v "$t" >/dev/null; then
		skip "agentkernel's HTTP API names" "$t is not installed"
		exit 0
	fi
done

# req METHOD PATH [BODY]: sets CODE (HTTP status) and BODY (the answer) from the server at $U.
req() {
	local out
	if [ $# -ge 3 ]; then
		out=$(curl -s --max-time 60 -w '\n%{http_code}' -X "$1" -H 'Content-Type: application/json' -d "$3" "$U$2")
	else
		out=$(curl -s --max-time 60 -w '\n%{http_code}' -X "$1" "$U$2")
	fi
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}
# expect "desc" CODE [NEEDLE]: the last req answered CODE (and its body contains NEEDLE).
expect() {
	if [ "$CODE" = "$2" ] && { [ $# -lt 3 ] || [[ "$BODY" == *"$3"* ]]; }; then
		pass "$1"
	else
		fail "$1" "expected HTTP $2${3:+ with '$3'}" "got HTTP $CODE: $(_ac_clip "$BODY")"
	fi
}
data() { jq -r "$1" <<<"$BODY" 2>/dev/null; }
state_of() { jq -r "$2" "$AGENTCELL_HOME/sandboxes/$1.json" 2>/dev/null; }

# ------------------------------------------------------------------ an image "alpine:3.20"
# No registry is reachable here: the reference agentkernel's clients use is an archive made
# from busybox and imported, so it is in the image store.
ROOT=$AC_TMP/root
mkdir -p "$ROOT"/{bin,etc,tmp,root,data}
cp "$(command -v busybox)" "$ROOT/bin/busybox"
for a in sh cat ls echo id pwd env printenv sleep wget true; do ln -s busybox "$ROOT/bin/$a"; done
printf 'ID=alpine\nPRETTY_NAME="compat-%s"\n' "$ID" >"$ROOT/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
chmod 1777 "$ROOT/tmp"
SPEC=$(jq -cn --arg l "$ROOT" '{tags: ["alpine:3.20"], layers: [$l], compress: "none", config: {Env: ["PATH=/bin"]}}')
if "$PY" "$MK" image --format docker "$AC_TMP/alpine.tar" --image "$SPEC" >"$AC_TMP/mk.out" 2>&1 &&
	ac image import "$AC_TMP/alpine.tar" >>"$AC_TMP/mk.out" 2>&1; then
	pass "an image tagged alpine:3.20 made and imported"
else
	fail "an image tagged alpine:3.20 made and imported" "$(tail -n 5 "$AC_TMP/mk.out")"
	exit 1
fi
# An image whose config sets User nobody: its commands are not root unless sudo says uid 0.
UREF=localhost/compat-user:$ID
if user_image "$UREF"; then
	pass "an image with User nobody made and imported"
else
	fail "an image with User nobody made and imported" "$(tail -n 5 "$AC_TMP/user-image.out")"
	exit 1
fi

# ------------------------------------------------------------------ the server
IMGROOTS=$AC_TMP/imgroots
mkdir -p "$IMGROOTS"
if start_server compat -- --port 0 --image-root "$IMGROOTS"; then
	pass "serve --image-root starts (port $SRV_PORT)"
else
	fail "serve --image-root starts" "$(cat "$AC_TMP/compat.err")"
	exit 1
fi
PID1=$SRV_PID
U=http://127.0.0.1:$SRV_PORT

# ================================================================== POST /sandboxes

# backend: named, "automatic", unknown.
S=ckb-$ID
req POST /sandboxes "{\"name\":\"$S\",\"backend\":\"native\",\"image\":\"alpine:3.20\"}"
expect "create: backend native -> 201" 201
check_eq "create: backend native: the sandbox's backend" native "$(data .data.backend)"
req POST "/sandboxes/$S/exec" '{"command":["cat","/etc/os-release"]}'
check_contains "create: image alpine:3.20 (a reference) is the store's image" "$(data .data.output)" "compat-$ID"
req DELETE "/sandboxes/$S"
req POST /sandboxes "{\"name\":\"$S-a\",\"backend\":\"automatic\"}"
expect "create: backend automatic (the server's default) -> 201" 201
check_eq "create: backend automatic: native here" native "$(data .data.backend)"
req DELETE "/sandboxes/$S-a"
req POST /sandboxes "{\"name\":\"$S-b\",\"backend\":\"firecracker-x\"}"
expect "create: unknown backend -> 400 naming the backends" 400 "native"
check_contains "create: unknown backend: names it" "$BODY" "firecracker-x"
check_fail "create: unknown backend: no sandbox left" test -e "$AGENTCELL_HOME/sandboxes/$S-b.json"

# network: ours (a switch) and agentkernel's (a bridge configuration object).
S=ckn-$ID
req POST /sandboxes "{\"name\":\"$S\",\"network\":true}"
expect "create: network true -> 201" 201
check_eq "create: network true: the state says so" true "$(state_of "$S" .network)"
req DELETE "/sandboxes/$S"
req POST /sandboxes "{\"name\":\"$S-e\",\"network\":{}}"
expect "create: network {} (asks nothing) -> 201" 201
check_eq "create: network {}: no network" false "$(state_of "$S-e" .network)"
req DELETE "/sandboxes/$S-e"
req POST /sandboxes "{\"name\":\"$S-o\",\"network\":{\"name\":\"br-x\",\"subnet\":\"10.9.0.0/24\"}}"
expect "create: network bridge configuration -> 501 naming network" 501 "network."
check_fail "create: network bridge configuration: no sandbox left" test -e "$AGENTCELL_HOME/sandboxes/$S-o.json"

# template provenance and secret_mappings: recorded in the state, shown by GET.
S=ckt-$ID
req POST /sandboxes "{\"name\":\"$S\",\"created_from_template\":\"python-dev\",\"template_help_text\":\"Set OPENAI_API_KEY first\",\"secret_mappings\":{\"OPENAI_API_KEY\":\"api.openai.com\"},\"template\":\"\"}"
expect "create: created_from_template, template_help_text, secret_mappings -> 201" 201
check_eq "create: created_from_template in the state" python-dev "$(state_of "$S" .created_from_template)"
check_eq "create: template_help_text in the state" "Set OPENAI_API_KEY first" "$(state_of "$S" .template_help_text)"
check_eq "create: secret_mappings in the state" api.openai.com "$(state_of "$S" .secret_mappings.OPENAI_API_KEY)"
req GET "/sandboxes/$S"
check_eq "GET: created_from_template" python-dev "$(data .data.created_from_template)"
check_eq "GET: secret_mappings" api.openai.com "$(data .data.secret_mappings.OPENAI_API_KEY)"
req DELETE "/sandboxes/$S"
req POST /sandboxes "{\"name\":\"$S-x\",\"template\":\"no-such-tpl-$ID\"}"
check_ne "create: template naming no template: refused" 201 "$CODE"
check_contains "create: template naming no template: names it" "$BODY" "no-such-tpl-$ID"

# secrets (KEY:HOST) -> a binding of the stored secret; placeholder_secrets: ours always are.
S=cks-$ID
printf 'real-value-%s' "$ID" | ac secret set "CK$ID" >/dev/null 2>&1
req POST /sandboxes "{\"name\":\"$S\",\"network\":true,\"secrets\":[\"CK$ID:api.example.com\"],\"placeholder_secrets\":true}"
expect "create: secrets KEY:HOST with placeholder_secrets -> 201" 201
check_eq "create: secrets: bound to the host" api.example.com "$(data '.data.net.secrets[0].host')"
check_eq "create: secrets: the key" "CK$ID" "$(data '.data.net.secrets[0].key')"
check_eq "create: placeholder_secrets recorded" true "$(data .data.placeholder_secrets)"
req POST "/sandboxes/$S/exec" "{\"command\":[\"printenv\",\"CK$ID\"]}"
V=$(data .data.output)
check_ne "create: secrets: the sandbox sees a value" "" "$V"
check_not_contains "create: secrets: never the real value" "$V" "real-value-$ID"
req DELETE "/sandboxes/$S"
req POST /sandboxes "{\"name\":\"$S-v\",\"network\":true,\"secrets\":[\"CK$ID=inline:api.example.com\"]}"
expect "create: secrets with an inline value -> 501 naming secrets" 501 "'secrets'"
check_not_contains "create: secrets with an inline value: the value is not echoed" "$BODY" inline
req POST /sandboxes "{\"name\":\"$S-f\",\"secret_files\":[\"CK$ID\"]}"
expect "create: secret_files -> 501 naming it" 501 "secret_files"
req POST /sandboxes "{\"name\":\"$S-0\",\"secrets\":[],\"secret_files\":[],\"placeholder_secrets\":false}"
expect "create: empty secrets, secret_files, placeholder_secrets false -> 201" 201
req DELETE "/sandboxes/$S-0"

# ports -> publish.
S=ckp-$ID
PORT=$((20000 + RANDOM % 20000))
req POST /sandboxes "{\"name\":\"$S\",\"network\":true,\"ports\":[\"$PORT:8080\"]}"
expect "create: ports HOST:PORT -> 201" 201
check_eq "create: ports: published as host_port -> port" "$PORT->8080" "$(data '.data.net.publish[0] | "\(.host_port)->\(.port)"')"
req POST "/sandboxes/$S/exec/detach" '{"command":["sh","-c","echo hello-port | busybox nc -l -p 8080"]}'
sleep 1
check_eq "create: ports: the host port reaches the sandbox's" hello-port "$(timeout 5 curl -s --max-time 3 "telnet://127.0.0.1:$PORT" </dev/null 2>/dev/null | head -1)"
req DELETE "/sandboxes/$S"
req POST /sandboxes "{\"name\":\"$S-n\",\"ports\":[\"3000\"]}"
expect "create: ports without a host port -> 400 naming ports" 400 "'ports'"
req POST /sandboxes "{\"name\":\"$S-u\",\"ports\":[\"5353:53/udp\"]}"
expect "create: ports /udp -> 501 naming ports" 501 "UDP"

# source_url: not supported (non-empty), empty a no-op.
req POST /sandboxes "{\"name\":\"cku-$ID\",\"source_url\":\"https://github.com/thrashr888/agentkernel\"}"
expect "create: source_url -> 501 naming it" 501 "source_url"
check_fail "create: source_url: no sandbox left" test -e "$AGENTCELL_HOME/sandboxes/cku-$ID.json"
req POST /sandboxes "{\"name\":\"cku-$ID\",\"source_url\":\"\",\"source_ref\":null,\"ports\":[],\"volumes\":[]}"
expect "create: empty source_url, ports, volumes -> 201" 201
req DELETE "/sandboxes/cku-$ID"

# volumes: a named volume, shared by two sandboxes.
ac volume create "ckvol$ID" >/dev/null 2>&1
req POST /sandboxes "{\"name\":\"ckv1-$ID\",\"volumes\":[\"ckvol$ID:/data\"]}"
expect "create: volumes -> 201" 201
req POST "/sandboxes/ckv1-$ID/exec" "{\"command\":[\"sh\",\"-c\",\"echo vol-$ID > /data/f\"]}"
req POST /sandboxes "{\"name\":\"ckv2-$ID\",\"volumes\":[\"ckvol$ID:/data:ro\"]}"
req POST "/sandboxes/ckv2-$ID/exec" '{"command":["cat","/data/f"]}'
check_eq "create: volumes: another sandbox sees the file" "vol-$ID" "$(data .data.output | tr -d '\n')"
req DELETE "/sandboxes/ckv1-$ID"
req DELETE "/sandboxes/ckv2-$ID"

# ================================================================== /extend
S=cke-$ID
req POST /sandboxes "{\"name\":\"$S\"}"
NOW=$(date +%s)
curl -s --max-time 10 -X POST "$U/sandboxes/$S/extend" -o "$AC_TMP/ext1" -w '%{http_code}' >"$AC_TMP/ext1.code"
check_eq "extend without a body -> 200" 200 "$(cat "$AC_TMP/ext1.code")"
E1=$(date -d "$(jq -r .data.expires_at "$AC_TMP/ext1")" +%s 2>/dev/null || echo 0)
check_le "extend without a body: about an hour from now (>= now+3590)" $((NOW + 3590)) "$E1"
check_le "extend without a body: about an hour from now (<= now+3700)" "$E1" $((NOW + 3700))
req POST "/sandboxes/$S/extend" '{}'
expect "extend with {} -> 200" 200
E2=$(date -d "$(data .data.expires_at)" +%s 2>/dev/null || echo 0)
check_le "extend with {}: another hour (>= first + 3590)" $((E1 + 3590)) "$E2"
req POST "/sandboxes/$S/extend" '{"by":"30m"}'
E3=$(date -d "$(data .data.expires_at)" +%s 2>/dev/null || echo 0)
check_eq "extend by 30m: 1800 s more" 1800 $((E3 - E2))

# ================================================================== exec
req POST "/sandboxes/$S/exec" '{"command":["pwd"],"workdir":"/tmp"}'
check_eq "exec: workdir" /tmp "$(data .data.output | tr -d '\n')"
req POST "/sandboxes/$S/exec" '{"command":["sh","-c","echo $CKX"],"env":["CKX=v1"]}'
check_eq "exec: env" v1 "$(data .data.output | tr -d '\n')"
T0=$(date +%s%N)
req POST "/sandboxes/$S/exec" '{"command":["sleep","20"],"timeout_ms":700,"full":true}'
T1=$(date +%s%N)
check_eq "exec: timeout_ms 700: timed out" true "$(data .data.timed_out)"
check_le "exec: timeout_ms 700: within 10 s" $(((T1 - T0) / 1000000)) 10000
req POST "/sandboxes/$S/exec" '{"command":["true"],"timeout_ms":700,"timeout":5}'
expect "exec: timeout_ms with timeout -> 400" 400 "timeout_ms"
req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true}'
expect "exec: sudo without [api] allow_sudo_exec -> 403" 403 "allow_sudo_exec"
req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":false}'
expect "exec: sudo false -> 200" 200
req POST "/sandboxes/$S/exec/stream" '{"command":["id","-u"],"sudo":true}'
expect "exec/stream: sudo without allow_sudo_exec -> 403" 403
req POST "/sandboxes/$S/exec/detach" '{"command":["id","-u"],"sudo":true}'
expect "exec/detach: sudo without allow_sudo_exec -> 403" 403
req DELETE "/sandboxes/$S"
S=cku-$ID
req POST /sandboxes "{\"name\":\"$S\",\"image\":\"$UREF\"}"
expect "create from the User nobody image -> 201" 201
req POST "/sandboxes/$S/exec" '{"command":["id","-u"]}'
check_eq "exec on the User nobody image: the image's User" "$USER_IMAGE_UID" "$(data .data.output | tr -d '\n')"
req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true}'
expect "exec on the User nobody image: sudo without allow_sudo_exec -> 403" 403 "allow_sudo_exec"
req DELETE "/sandboxes/$S"

# ================================================================== /run
req POST /run '{"command":["cat","/etc/os-release"],"image":"alpine:3.20","fast":true}'
expect "run: fast with image alpine:3.20 (--image-root set) -> 200" 200
check_contains "run: fast with alpine:3.20: the image's file system" "$(data .data.output)" "compat-$ID"
req POST /run '{"command":["cat","/etc/os-release"],"image":"docker.io/library/alpine:3.20","fast":false,"backend":"native"}'
check_contains "run: backend native with a full reference" "$(data .data.output)" "compat-$ID"
req POST /run '{"command":["true"],"image":"alpine:3.20","backend":"nope"}'
expect "run: unknown backend -> 400 naming the backends" 400 "native"
req POST /run '{"command":["sh","-c","sleep 20"],"timeout_ms":600,"full":true}'
check_eq "run: timeout_ms" true "$(data .data.timed_out)"
req POST /run '{"command":["true"],"source_url":"https://example.com/x.git"}'
expect "run: source_url -> 501" 501 "source_url"
req POST /run '{"command":["cat","/etc/hostname"],"image":"/etc"}'
check_ne "run: a host directory outside --image-root is still refused" 200 "$CODE"

# /run/stream with an empty command: one SSE error event.
curl -s --max-time 10 -D "$AC_TMP/sse.h" -X POST -H 'Content-Type: application/json' -d '{"command":[]}' "$U/run/stream" >"$AC_TMP/sse.b"
check_contains "run/stream: empty command -> 200" "$(head -1 "$AC_TMP/sse.h")" 200
check_contains "run/stream: empty command -> text/event-stream" "$(cat "$AC_TMP/sse.h")" "text/event-stream"
check_eq "run/stream: empty command -> an error event" 'event: error' "$(head -1 "$AC_TMP/sse.b")"
check_eq "run/stream: the error event's message" "command is required" "$(sed -n 's/^data: //p' "$AC_TMP/sse.b" | jq -r .message)"
curl -s --max-time 30 -X POST -H 'Content-Type: application/json' -d '{"command":["echo","streamed"],"image":"alpine:3.20","fast":true}' "$U/run/stream" >"$AC_TMP/sse2.b"
check_contains "run/stream: fast with alpine:3.20 streams the output" "$(cat "$AC_TMP/sse2.b")" streamed
check_contains "run/stream: fast with alpine:3.20 ends with done" "$(cat "$AC_TMP/sse2.b")" "event: done"

stop_server compat "$PID1"

# ================================================================== backend podman over HTTP
# The Docker/Podman backend through a private Podman service (scripts/podman-setup.sh):
# create and run with "backend" reach it, with its engine's image reference.
. "$AC_REPO/scripts/podman-setup.sh"
if podman_setup; then
	at_exit 'podman_teardown'
	if start_server pod DOCKER_HOST="$DOCKER_HOST" -- --port 0; then
		U=http://127.0.0.1:$SRV_PORT
		S=ckd-$ID
		req POST /sandboxes "{\"name\":\"$S\",\"backend\":\"podman\",\"image\":\"$PODMAN_IMAGE\"}"
		expect "create: backend podman -> 201" 201
		check_eq "create: backend podman: the sandbox's backend" podman "$(data .data.backend)"
		check "create: backend podman: a container of the engine" podman container exists "agentcell-$S"
		req POST "/sandboxes/$S/exec" '{"command":["sh","-c","echo in-podman"]}'
		check_eq "exec in the podman sandbox" in-podman "$(data .data.output | tr -d '\n')"
		req DELETE "/sandboxes/$S"
		req POST /run "{\"command\":[\"sh\",\"-c\",\"echo run-podman\"],\"image\":\"$PODMAN_IMAGE\",\"backend\":\"podman\",\"fast\":true}"
		expect "run: backend podman, fast -> 200" 200
		check_eq "run: backend podman: its output" run-podman "$(data .data.output | tr -d '\n')"
		stop_server pod "$SRV_PID"
	else
		fail "serve with DOCKER_HOST starts" "$(tail -5 "$AC_TMP/pod.err")"
	fi
else
	skip "backend podman over HTTP" "$PODMAN_REASON"
fi

# ================================================================== the npm SDK as `agentkernel serve`
HAVE_SDK=1
if ! command -v node >/dev/null || [ ! -f "$JS/node_modules/agentkernel/package.json" ]; then
	skip "the agentkernel SDK against agentkernel serve" "node or tests/js/node_modules is missing"
	HAVE_SDK=0
fi
# sdk NAME [ENV=V...]: runs tests/js/NAME.mjs against $U; one check for all of its.
sdk() {
	local name=$1 rc n_ok n_bad
	shift
	[ "$HAVE_SDK" = 1 ] || return 0
	env "$@" timeout -k 5 240 node "$JS/$name.mjs" "$U" >"$AC_TMP/$name.tap" 2>&1
	rc=$?
	n_ok=$(grep -c '^ok - ' "$AC_TMP/$name.tap")
	n_bad=$(grep -c '^not ok - ' "$AC_TMP/$name.tap")
	if [ "$rc" -eq 0 ] && [ "$n_bad" -eq 0 ] && [ "$n_ok" -gt 0 ]; then
		pass "SDK $name ${*:+($*) }through agentkernel serve: $n_ok checks"
	else
		fail "SDK $name ${*:+($*) }through agentkernel serve" "exit $rc, $n_ok ok, $n_bad not ok" \
			"$(grep -A3 '^not ok' "$AC_TMP/$name.tap" | head -40)" "$(tail -5 "$AC_TMP/$name.tap")"
	fi
}
ln -s "$AGENTCELL" "$AC_TMP/agentkernel"
AGENTCELL_SAVED=$AGENTCELL
AGENTCELL=$AC_TMP/agentkernel
if start_server ak -- --port 0; then
	pass "agentkernel serve (the link) starts (port $SRV_PORT)"
	U=http://127.0.0.1:$SRV_PORT
	sdk sdk_scenario
	sdk compat_sdk
	stop_server ak "$SRV_PID"
else
	fail "agentkernel serve (the link) starts" "$(tail -5 "$AC_TMP/ak.err")"
fi

AGENTCELL=$AGENTCELL_SAVED

# ================================================================== [api] allow_sudo_exec
cat >"$AC_TMP/sudo.toml" <<'TOML'
[api]
allow_sudo_exec = true
TOML
if start_server sudo -- --port 0 --config "$AC_TMP/sudo.toml"; then
	U=http://127.0.0.1:$SRV_PORT
	S=ckr-$ID
	req POST /sandboxes "{\"name\":\"$S\"}"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true}'
	expect "exec: sudo with [api] allow_sudo_exec = true -> 200" 200
	check_eq "exec: sudo: as root" 0 "$(data .data.output | tr -d '\n')"
	req DELETE "/sandboxes/$S"
	# The image's User is nobody: sudo must ask for uid 0, not the default user.
	S=ckru-$ID
	req POST /sandboxes "{\"name\":\"$S\",\"image\":\"$UREF\"}"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"]}'
	check_eq "exec without sudo (User nobody image): the image's User" "$USER_IMAGE_UID" "$(data .data.output | tr -d '\n')"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":false}'
	check_eq "exec sudo false (User nobody image): the image's User" "$USER_IMAGE_UID" "$(data .data.output | tr -d '\n')"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true}'
	check_eq "exec sudo (User nobody image): uid 0" "200 0" "$CODE $(data .data.output | tr -d '\n')"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true,"user":"root"}'
	check_eq "exec sudo with user root (User nobody image): uid 0" "200 0" "$CODE $(data .data.output | tr -d '\n')"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true,"user":"nobody"}'
	expect "exec sudo with user nobody: 400, they contradict" 400 "contradict"
	curl -s --max-time 30 -X POST -H 'Content-Type: application/json' -d '{"command":["id","-u"],"sudo":true}' \
		"$U/sandboxes/$S/exec/stream" >"$AC_TMP/sudo-sse.b"
	check_eq "exec/stream sudo (User nobody image): uid 0" 0 \
		"$(sed -n 's/^data: //p' "$AC_TMP/sudo-sse.b" | jq -r 'select(.stream == "stdout") | .data' 2>/dev/null | tr -d '\n')"
	req POST "/sandboxes/$S/exec/detach" '{"command":["id","-u"],"sudo":true}'
	XID=$(data .data.id)
	detach_done() {
		req GET "/sandboxes/$S/exec/detached/$XID"
		[ "$(data .data.status)" != running ]
	}
	wait_until 10 detach_done
	req GET "/sandboxes/$S/exec/detached/$XID/logs"
	check_eq "exec/detach sudo (User nobody image): uid 0" 0 "$(data .data.stdout | tr -d '\n')"
	req DELETE "/sandboxes/$S"
	stop_server sudo "$SRV_PID"
else
	fail "serve --config with [api] allow_sudo_exec starts" "$(cat "$AC_TMP/sudo.err")"
fi

# agentkernel's own place for it: agentkernel.toml in the server's working directory.
mkdir -p "$AC_TMP/akdir"
cp "$AC_TMP/sudo.toml" "$AC_TMP/akdir/agentkernel.toml"
AGENTCELL=$AC_TMP/agentkernel
cd "$AC_TMP/akdir" || exit 1
if start_server aksudo -- -p 0; then
	cd "$AC_REPO" || exit 1
	U=http://127.0.0.1:$SRV_PORT
	S=ckr2-$ID
	req POST /sandboxes "{\"name\":\"$S\"}"
	req POST "/sandboxes/$S/exec" '{"command":["id","-u"],"sudo":true}'
	expect "agentkernel serve with agentkernel.toml [api] allow_sudo_exec: sudo -> 200" 200
	check_eq "agentkernel serve with agentkernel.toml: sudo as root" 0 "$(data .data.output | tr -d '\n')"
	req DELETE "/sandboxes/$S"
	req POST /sandboxes "{\"name\":\"$S-u\",\"image\":\"$UREF\"}"
	req POST "/sandboxes/$S-u/exec" '{"command":["id","-u"],"sudo":true}'
	check_eq "agentkernel serve: sudo on the User nobody image is uid 0" "200 0" "$CODE $(data .data.output | tr -d '\n')"
	req DELETE "/sandboxes/$S-u"
	sdk sdk_scenario AGENTCELL_SUDO=allowed
	stop_server aksudo "$SRV_PID"
else
	cd "$AC_REPO" || exit 1
	fail "agentkernel serve in a directory with agentkernel.toml starts" "$(tail -5 "$AC_TMP/aksudo.err")"
fi
AGENTCELL=$AGENTCELL_SAVED
