#!/usr/bin/env bash
# The `backend` field of the HTTP API (POST /sandboxes, POST /run) and of the MCP tools
# reaches the Kubernetes backend (tests/k8s/fake_apiserver.py): a sandbox made over HTTP is
# a pod, commands run in it, a one-shot run runs in the cluster, and an unknown backend is
# a 400 naming it.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes over the API and MCP"
BOX=api$(uniq_id)

if ! start_server k8sapi -- --port 0; then
	fail "serve starts" "$(cat "$AC_TMP/k8sapi.err")"
	exit 1
fi
U=http://127.0.0.1:$SRV_PORT
# post PATH JSON: sets CODE and BODY.
post() {
	local r
	r=$(curl -s -m 300 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -d "$2" "$U$1")
	CODE=$(tail -n1 <<<"$r")
	BODY=$(sed '$d' <<<"$r")
}

post /sandboxes "{\"name\":\"$BOX\",\"backend\":\"kubernetes\"}"
check_match "POST /sandboxes with backend kubernetes: 2xx" '^20[01]$' "$CODE"
check_eq "the sandbox's backend is kubernetes" kubernetes "$(jq -r '.data.backend // .backend' <<<"$BODY")"
check_eq "its pod runs in the cluster" Running "$(K get pod "agentcell-$BOX" -o jsonpath='{.status.phase}' 2>&1)"
post "/sandboxes/$BOX/exec" '{"command":["sh","-c","echo in-pod; hostname; exit 3"]}'
check_contains "exec over HTTP runs in the pod" "$BODY" "in-pod"
check_eq "... with the command's exit code (409, exit_code 3)" "409 3" "$CODE $(jq -r '.exit_code' <<<"$BODY")"
post /run '{"command":["sh","-c","echo one-shot"],"backend":"k8s"}'
check_eq "POST /run with backend k8s: the command's output" "one-shot" "$(jq -r '.data.output' <<<"$BODY" | tr -d '\n')"
check_eq "... and no run pod is left" "agentcell-$BOX" \
	"$(K get pods -l agentcell.dev/managed-by=agentcell -o name | sed 's|pod/||' | paste -sd' ')"
post /sandboxes '{"name":"nb","backend":"vmware"}'
check_eq "an unknown backend: 400" 400 "$CODE"
check_contains "... naming it" "$BODY" "vmware"
post /sandboxes '{"name":"nb2","backend":7}'
check_eq "a backend that is not a string: 400" 400 "$CODE"
check "neither made a sandbox" test ! -e "$AGENTCELL_HOME/sandboxes/nb.json" -a ! -e "$AGENTCELL_HOME/sandboxes/nb2.json"
curl -s -m 120 -X DELETE "$U/sandboxes/$BOX" >/dev/null
check "DELETE removes the pod" test -z "$(K get pod "agentcell-$BOX" -o name 2>/dev/null)"
stop_server k8sapi "$SRV_PID"

# MCP (stdio): sandbox_run and sandbox_create with backend kubernetes.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":["sh","-c","echo via-mcp"],"backend":"kubernetes"}}}'
out=$(printf '%s\n' "$init" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$call" |
	timeout -k 5 300 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err")
res=$(jq -c 'select(.id == 2) | .result' <<<"$out")
check_eq "MCP sandbox_run with backend kubernetes: no error" false "$(jq -r '.isError // false' <<<"$res")"
check_eq "... the output" "via-mcp" "$(jq -r '.structuredContent.stdout' <<<"$res" | tr -d '\n')"
check "MCP's tool schema lists kubernetes among the backends" \
	grep -q kubernetes <<<"$(printf '%s\n' "$init" '{"jsonrpc":"2.0","id":3,"method":"tools/list"}' |
		timeout -k 5 60 "$AGENTCELL" mcp 2>/dev/null | jq -c '.result.tools[]? | select(.name == "sandbox_create") | .inputSchema.properties.backend.enum')"
