#!/bin/bash
# The network's fields over the HTTP API (POST /sandboxes, POST /run, GET /sandboxes/NAME)
# and MCP (sandbox_create, sandbox_run): each bad input is its status code and one message,
# nothing is made; a good one gives the sandbox the proxy and its policy. The proxy's own
# behaviour is test_net_proxy/egress/secrets/publish's.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup
ID=$(uniq_id)
KEY="net-key-$ID-$RANDOM$RANDOM"

if ! start_server main AGENTCELL_API_KEY="$KEY" -- --port 0; then
	fail "serve starts" "$(cat "$AC_TMP/main.err")"
	exit 1
fi
SRV=$SRV_PID
URL=http://127.0.0.1:$SRV_PORT
# req METHOD PATH [BODY]: sets CODE and BODY.
req() {
	local out
	out=$(curl -sS --max-time 60 -X "$1" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		${3:+--data-binary "$3"} -w '\n%{http_code}' "$URL$2" 2>&1)
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}
names() { ac list --json | jq -r '.[].name' | grep -- "-$ID\$" | tr '\n' ' '; }

req POST /sandboxes "{\"name\":\"a-$ID\",\"network\":true,\"allow_hosts\":[\"bad host\"]}"
check_eq "API: a malformed host pattern: 400" 400 "$CODE"
check_contains "... naming it" "$BODY" "invalid host pattern 'bad host'"
req POST /sandboxes "{\"name\":\"a-$ID\",\"allow_hosts\":[\"example.com\"]}"
check_eq "API: allow_hosts without the network: 400" 400 "$CODE"
check_contains "... saying the network must be on" "$BODY" "network on"
req POST /sandboxes "{\"name\":\"a-$ID\",\"network\":true,\"secret_bindings\":[\"NOPE_X@api.example.com\"]}"
check_eq "API: a secret that does not exist: 404" 404 "$CODE"
check_contains "... naming the set command" "$BODY" "agentcell secret set NOPE_X"
req POST /sandboxes "{\"name\":\"a-$ID\",\"publish\":[\"8080\"]}"
check_eq "API: a malformed published port: 400" 400 "$CODE"
req POST /sandboxes "{\"name\":\"a-$ID\",\"publish\":\"8080:80\"}"
check_eq "API: publish not an array: 400" 400 "$CODE"
INUSE=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PY" -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); time.sleep(60)' "$INUSE" &
HOLDER=$!
bg_track "$HOLDER"
wait_until 10 "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$INUSE"
req POST /sandboxes "{\"name\":\"a-$ID\",\"publish\":[\"$INUSE:8000\"]}"
check_eq "API: a port in use: 409" 409 "$CODE"
check_contains "... naming it" "$BODY" "127.0.0.1:$INUSE is in use"
kill "$HOLDER" 2>/dev/null
check_eq "API: none of the bad requests made a sandbox" "" "$(names)"

FREE=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
req POST /sandboxes "{\"name\":\"b-$ID\",\"network\":true,\"block_hosts\":[\"*.blocked.example\"],\"allowlist_only\":false,\"publish\":[\"127.0.0.1:$FREE:8000\"]}"
check_eq "API: create with the network, a policy and a port: 201" 201 "$CODE"
req GET "/sandboxes/b-$ID"
check_eq "API: info says network true" true "$(jq -r .data.network <<<"$BODY")"
check_eq "... and the policy" '["*.blocked.example"]' "$(jq -c .data.net.block_hosts <<<"$BODY")"
check_eq "... and the port" "$FREE:8000" "$(jq -r '.data.net.publish[0] | "\(.host_port):\(.port)"' <<<"$BODY")"
req POST "/sandboxes/b-$ID/exec" '{"command":["sh","-c","echo $HTTPS_PROXY"]}'
check_contains "API: the sandbox's commands have HTTPS_PROXY" "$BODY" "http://127.0.0.1:3128"
req POST "/sandboxes/b-$ID/exec" '{"command":["curl","-sS","-m","10","-i","http://169.254.169.254/latest/meta-data/"]}'
check_contains "API: the metadata address through the proxy: refused" "$BODY" "X-Agentcell-Refused: link-local address"
req POST "/sandboxes/b-$ID/exec" '{"command":["curl","-sS","-m","10","-i","http://x.blocked.example/"]}'
check_contains "API: a blocked name through the proxy: refused" "$BODY" "X-Agentcell-Refused: blocked by block_hosts"
check_contains "API: the refusals are in net-log" "$(ac net-log "b-$ID")" "169.254.169.254"
req DELETE "/sandboxes/b-$ID"
check_eq "API: remove" 200 "$CODE"
check "API: no net directory is left" test ! -e "$AGENTCELL_HOME/net/b-$ID"

req POST /run '{"command":["sh","-c","echo $HTTP_PROXY; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d \" \""],"network":true}'
check_contains "API run with network: HTTP_PROXY set" "$BODY" "http://127.0.0.1:3128"
check_eq "... and only lo" "lo" "$(jq -r '.data.stdout // .data.output // empty' <<<"$BODY" | sed -n 2p)"
req POST /run '{"command":["true"],"network":true,"block_hosts":["*."]}'
check_eq "API run with a malformed pattern: 400" 400 "$CODE"
stop_server main "$SRV"

# ---------------------------------------------------------------- MCP on stdio
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
mcp_lines() { printf '%s\n' "$@" | timeout -k 5 120 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err"; }
out=$(mcp_lines "$init" '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
	'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":"echo $HTTP_PROXY","network":true,"block_hosts":["*.blocked.example"]}}}' \
	'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":"true","network":true,"allow_hosts":["bad host"]}}}' \
	"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"sandbox_create\",\"arguments\":{\"name\":\"m-$ID\",\"network\":true,\"secret_bindings\":[\"NOPE_Y@api.example.com\"]}}}" \
	'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":"true","publish":"8080:80"}}}')
r2=$(jq -c 'select(.id == 2)' <<<"$out")
check_contains "MCP sandbox_run with network: HTTP_PROXY inside" "$r2" "http://127.0.0.1:3128"
check_eq "... not an error" false "$(jq -r '.result.isError // false' <<<"$r2")"
r3=$(jq -c 'select(.id == 3)' <<<"$out")
check_eq "MCP: a malformed pattern is a tool error" true "$(jq -r '.result.isError' <<<"$r3")"
check_contains "... naming it" "$r3" "invalid host pattern"
r4=$(jq -c 'select(.id == 4)' <<<"$out")
check_eq "MCP: a missing secret is a tool error" true "$(jq -r '.result.isError' <<<"$r4")"
check_contains "... naming the set command" "$r4" "secret set NOPE_Y"
r5=$(jq -c 'select(.id == 5)' <<<"$out")
check_contains "MCP: publish of the wrong type is refused by the schema" "$r5" "publish"
check_eq "MCP: nothing was made" "" "$(names)"
