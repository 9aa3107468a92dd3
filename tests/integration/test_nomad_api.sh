#!/usr/bin/env bash
# The `backend` field of the HTTP API (POST /sandboxes, POST /run) and of the MCP tools
# reaches the Nomad backend (tests/nomad/fake_nomad.py): a sandbox made over HTTP is a job,
# commands run in its allocation, a one-shot run runs as a job and is purged.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_nomad_fake "nomad over the API and MCP"
BOX=napi$(uniq_id)

if ! start_server nomadapi -- --port 0; then
	fail "serve starts" "$(cat "$AC_TMP/nomadapi.err")"
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
# The ids of the agent's jobs, sorted, on one line.
jobs() { NP GET /v1/jobs | jq -r '[.[].ID] | sort | join(" ")'; }

post /sandboxes "{\"name\":\"$BOX\",\"backend\":\"nomad\"}"
check_match "POST /sandboxes with backend nomad: 2xx" '^20[01]$' "$CODE"
check_eq "the sandbox's backend is nomad" nomad "$(jq -r '.data.backend // .backend' <<<"$BODY")"
check_eq "its job runs on the agent" running "$(NP GET "/v1/job/agentcell-$BOX" | jq -r .Status)"
post "/sandboxes/$BOX/exec" '{"command":["sh","-c","echo in-alloc; exit 3"]}'
check_contains "exec over HTTP runs in the allocation" "$BODY" "in-alloc"
check_eq "... with the command's exit code (409, exit_code 3)" "409 3" "$CODE $(jq -r '.exit_code' <<<"$BODY")"
post /run '{"command":["sh","-c","echo one-shot"],"backend":"nomad"}'
check_eq "POST /run with backend nomad: the command's output" "one-shot" "$(jq -r '.data.output' <<<"$BODY" | tr -d '\n')"
check_eq "... and no run job is left" "agentcell-$BOX" "$(jobs)"
curl -s -m 120 -X DELETE "$U/sandboxes/$BOX" >/dev/null
check_eq "DELETE purges the job" "" "$(jobs)"
stop_server nomadapi "$SRV_PID"

# MCP (stdio): sandbox_run with backend nomad, and the schema's list of backends.
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":["sh","-c","echo via-mcp"],"backend":"nomad"}}}'
out=$(printf '%s\n' "$init" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$call" |
	timeout -k 5 300 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err")
res=$(jq -c 'select(.id == 2) | .result' <<<"$out")
check_eq "MCP sandbox_run with backend nomad: no error" false "$(jq -r '.isError // false' <<<"$res")"
check_eq "... the output" "via-mcp" "$(jq -r '.structuredContent.stdout' <<<"$res" | tr -d '\n')"
check_eq "... and no job is left" "" "$(jobs)"
check "MCP's tool schema lists nomad among the backends" \
	grep -q nomad <<<"$(printf '%s\n' "$init" '{"jsonrpc":"2.0","id":3,"method":"tools/list"}' |
		timeout -k 5 60 "$AGENTCELL" mcp 2>/dev/null | jq -c '.result.tools[]? | select(.name == "sandbox_create") | .inputSchema.properties.backend.enum')"
