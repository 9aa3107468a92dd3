#!/usr/bin/env bash
# agentcell mcp on stdio: the agent calling the tools is the one being sandboxed, so its
# arguments take nothing of the host unless the operator allowed it on the command line:
# no directory image outside --image-root (root-only host files would become readable),
# no host directory at /workspace through the permissive profile (writable as its owner).
. "$(dirname "$0")/lib.sh"
ac_setup

ID=$(uniq_id)
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
inited='{"jsonrpc":"2.0","method":"notifications/initialized"}'

# call TOOL ARGS_JSON [mcp options...]: the result object of one tools/call (stdio).
call() {
	local tool=$1 args=$2
	shift 2
	printf '%s\n' "$init" "$inited" \
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":$args}}" |
		timeout -k 5 120 "$AGENTCELL" mcp "$@" 2>"$AC_TMP/mcp.err" | jq -c 'select(.id == 2) | .result'
}
is_error() { jq -r '.isError // false' <<<"$1"; }
text_of() { jq -r '[.content[]?.text] | join("\n")' <<<"$1"; }

# A directory image: the host's /usr under a root of its own, plus a root-only secret.
IMGROOT=$AC_TMP/images
IMG=$IMGROOT/img
mkdir -p "$IMG"/{etc,tmp,proc,dev}
for d in usr bin lib lib64 sbin; do [ -e "/$d" ] && cp -a "/$d" "$IMG/" 2>/dev/null; done
echo "top-secret-$ID" >"$IMG/etc/secret"
chmod 600 "$IMG/etc/secret"

RES=$(call sandbox_run "{\"command\":\"cat /etc/secret\",\"image\":\"$IMG\"}")
check_eq "stdio: an image directory from the tool's arguments is refused" true "$(is_error "$RES")"
check_contains "stdio: the refusal says why" "$(text_of "$RES")" "not allowed here"
check_not_contains "stdio: the root-only file was not read" "$(text_of "$RES")" "top-secret-$ID"
RES=$(call sandbox_create "{\"name\":\"img-$ID\",\"image\":\"$IMG\"}")
check_eq "stdio: sandbox_create with a host directory image is refused" true "$(is_error "$RES")"
check_eq "stdio: no sandbox was made" "" "$(ac_names | grep "img-$ID")"

RES=$(call sandbox_run "{\"command\":\"cat /etc/secret\",\"image\":\"$IMG\"}" --image-root "$IMGROOT")
check_eq "stdio --image-root DIR: an image below it is allowed" false "$(is_error "$RES")"
check_contains "stdio --image-root DIR: and used" "$(text_of "$RES")" "top-secret-$ID"
RES=$(call sandbox_run "{\"command\":\"true\",\"image\":\"/usr\"}" --image-root "$IMGROOT")
check_eq "stdio --image-root DIR: a directory outside it is still refused" true "$(is_error "$RES")"

# The permissive profile: the server's working directory at /workspace, writable.
WS=$AC_TMP/ws
mkdir -p "$WS"
echo "host-file-$ID" >"$WS/marker"
cd "$WS" || exit 1
RES=$(call sandbox_run '{"command":"cat /workspace/marker; touch /workspace/planted; echo done","profile":"permissive"}')
check_not_contains "stdio: the permissive profile mounts nothing of the host" "$(text_of "$RES")" "host-file-$ID"
check "stdio: nothing was planted in the server's directory" test ! -e "$WS/planted"
RES=$(call sandbox_run '{"command":"cat /workspace/marker; touch /workspace/planted; echo done","profile":"permissive"}' --mount-cwd)
check_contains "stdio --mount-cwd: the operator allowed /workspace" "$(text_of "$RES")" "host-file-$ID"
check "stdio --mount-cwd: and it is writable" test -e "$WS/planted"
RES=$(call sandbox_run '{"command":"chmod u+s /workspace/planted; setcap cap_setuid+ep /workspace/planted; true","profile":"permissive"}' --mount-cwd)
check_eq "stdio --mount-cwd: what the sandbox writes there carries no setuid bit" 0 "$(($(stat -c '%a' "$WS/planted") / 1000))"
check_eq "stdio --mount-cwd: nor a file capability" "" "$(getcap "$WS/planted" 2>/dev/null)"
cd / || exit 1

acx mcp --image-root
check_rc "mcp --image-root without a value: usage error" 2
acx mcp --image-root "/nonexistent-$ID" </dev/null
check_rc "mcp --image-root of a missing directory: refused" 2
check_error_line "mcp --image-root of a missing directory: one error line"
