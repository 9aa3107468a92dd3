#!/usr/bin/env bash
# agentcell mcp: the MCP server on stdio, driven raw (framing, errors, limits) and by the
# official MCP TypeScript SDK client through every tool and field (tests/js/mcp_stdio.mjs),
# and the same tools over Streamable HTTP at /mcp of `agentcell serve` (tests/js/mcp_http.mjs).
. "$(dirname "$0")/lib.sh"
ac_setup

JS=$AC_REPO/tests/js

# Lines of `agentcell mcp` for the given input lines (stdin closed after them).
mcp_lines() { printf '%s\n' "$@" | timeout -k 5 60 "$AGENTCELL" mcp 2>"$AC_TMP/mcp.err"; }

# Relays the "ok - " / "not ok - " lines of a JS test into this file's counts.
relay() { # relay PREFIX < output
	local line desc
	while IFS= read -r line; do
		case "$line" in
		"not ok - "*) AC_FAILED=$((AC_FAILED + 1)); printf 'not ok - %s: %s\n' "$1" "${line#not ok - }" ;;
		"ok - "*) AC_PASSED=$((AC_PASSED + 1)); printf 'ok - %s: %s\n' "$1" "${line#ok - }" ;;
		"#"*) printf '%s\n' "$line" ;;
		esac
	done
}

# ---------------------------------------------------------------- command line

acx mcp --help
check_rc "mcp --help exits 0" 0
check_contains "mcp --help names the tools" "$OUT" "sandbox_extend_ttl"
acx mcp --bogus
check_rc "mcp with an unknown option exits 2" 2
check_error_line "mcp with an unknown option: one error line"

# ---------------------------------------------------------------- raw stdio framing

init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
out=$(mcp_lines "$init" '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
	'' '   ' 'garbage' '{"jsonrpc":"2.0","id":2,"method":"ping"}' \
	$'{"jsonrpc":"2.0","id":3,"method":"ping"}\r' '[]' \
	'[{"jsonrpc":"2.0","id":4,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]' \
	'{"jsonrpc":"2.0","id":5,"method":"nope"}' '{"jsonrpc":"2.0","id":6}')
rc=$?
check_eq "stdio: EOF ends the server with status 0" 0 "$rc"
check_eq "stdio: one reply per request, none for notifications and blank lines" 8 "$(printf '%s\n' "$out" | grep -c '')"
if printf '%s\n' "$out" | jq -e . >/dev/null 2>&1; then pass "stdio: every stdout line is JSON"; else fail "stdio: every stdout line is JSON" "$out"; fi
check_eq "stdio: replies in order" '1 null 2 3 null [4] 5 6' \
	"$(printf '%s\n' "$out" | jq -r 'if type == "array" then "[\(.[0].id)]" else (.id | tostring) end' | tr '\n' ' ' | sed 's/ $//')"
check_eq "stdio: error codes" '-32700 -32600 -32601 -32600' "$(printf '%s\n' "$out" | jq -r 'select(type == "object") | .error.code // empty' | tr '\n' ' ' | sed 's/ $//')"
check_eq "stdio: the negotiated version" '2025-06-18' "$(printf '%s\n' "$out" | head -1 | jq -r .result.protocolVersion)"
check_eq "stdio: nothing on stderr" "" "$(cat "$AC_TMP/mcp.err")"

# A line over 16 MiB is a parse error, and the server reads on.
/usr/bin/python3 -c '
import sys
sys.stdout.write("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"pad\":\"" + "x" * (17 << 20) + "\"}\n")
sys.stdout.write("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n")
sys.stdout.write("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}")' >"$AC_TMP/big.txt"
out=$(timeout -k 5 60 "$AGENTCELL" mcp <"$AC_TMP/big.txt" 2>&1)
rc=$?
check_eq "stdio: a 17 MiB line is a parse error, later lines are served (last one without newline)" \
	'-32700 2 3' "$(printf '%s\n' "$out" | jq -r '.error.code // .id' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check_eq "stdio: the server survives the long line" 0 "$rc"

# Nothing the sandbox prints reaches the protocol stream.
out=$(mcp_lines "$init" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"sandbox_run","arguments":{"command":"echo leak; echo leak >&2; echo leak >/dev/tty 2>/dev/null; true"}}}')
check_eq "stdio: sandbox output only inside the JSON reply" 2 "$(printf '%s\n' "$out" | jq -c . 2>/dev/null | grep -c '')"
check_eq "stdio: the run's stdout in structuredContent" 'leak' "$(printf '%s\n' "$out" | tail -1 | jq -r .result.structuredContent.stdout | tr -d '\n')"

# ---------------------------------------------------------------- the SDK client

if ! command -v node >/dev/null; then
	fail "node is needed for the MCP SDK tests"
elif [ ! -d "$JS/node_modules/@modelcontextprotocol/sdk" ] &&
	! npm ci --prefix "$JS" --no-audit --no-fund >"$AC_TMP/npm.txt" 2>&1; then
	fail "npm ci for tests/js" "$(tail -20 "$AC_TMP/npm.txt")"
else
	relay "sdk stdio" < <(AGENTCELL_HOME=$AGENTCELL_HOME timeout -k 5 600 node "$JS/mcp_stdio.mjs" 2>&1)
	check_eq "stdio: no sandbox left after the SDK run" "" "$(ac_names | tr '\n' ' ')"

	# Streamable HTTP at /mcp of serve, when this build has it.
	if "$AGENTCELL" serve --help 2>/dev/null | grep -q /mcp; then
		export AGENTCELL_API_KEY=mcp-test-key-$RANDOM$RANDOM
		setsid "$AGENTCELL" serve --port 0 >"$AC_TMP/serve.out" 2>"$AC_TMP/serve.err" &
		spid=$!
		bg_track "$spid"
		port=
		for _ in $(seq 200); do
			port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$AC_TMP/serve.err" | head -1)
			[ -n "$port" ] && break
			sleep 0.05
		done
		if [ -z "$port" ]; then
			fail "serve started for /mcp" "$(cat "$AC_TMP/serve.err")"
		else
			pass "serve started for /mcp (port $port)"
			relay "sdk http" < <(MCP_URL=http://127.0.0.1:$port/mcp timeout -k 5 300 node "$JS/mcp_http.mjs" 2>&1)
			code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
				--data '{"jsonrpc":"2.0","id":1,"method":"ping"}' "http://127.0.0.1:$port/mcp")
			check_eq "http: /mcp without the API key is 401" 401 "$code"
		fi
		kill -TERM "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		unset AGENTCELL_API_KEY
		check_eq "http: no sandbox left" "" "$(ac_names | tr '\n' ' ')"
	else
		skip "MCP over Streamable HTTP" "this build's serve has no /mcp"
	fi
fi
