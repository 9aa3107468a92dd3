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

# ------------------------------------------------------------------ concurrency on stdio
# Agents call tools in parallel: two 2-second calls answer together, a ping sent after them
# answers at once, and the calls still running at end of input answer before the server goes.
PAR=mcpar-$(uniq_id)
check_ac "create $PAR for the concurrency checks" create "$PAR"
check_ac "start $PAR" start "$PAR"
OUT=$(PAR=$PAR timeout -k 5 60 /usr/bin/python3 - "$AGENTCELL" <<'PYEOF'
import json, os, subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True)
def send(m):
    p.stdin.write(json.dumps(m) + "\n"); p.stdin.flush()
send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
p.stdout.readline()
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
t0 = time.time()
for i in (2, 3):
    send({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "sandbox_exec",
          "arguments": {"name": os.environ["PAR"], "command": ["sh", "-c", "sleep 2; echo c%d" % i]}}})
send({"jsonrpc": "2.0", "id": 9, "method": "ping"})
send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "sandbox_exec",
      "arguments": {"name": os.environ["PAR"], "command": ["sh", "-c", "sleep 1; echo last"]}}})
p.stdin.close()
seen = {}
for line in p.stdout:
    m = json.loads(line)
    seen[m["id"]] = (round(time.time() - t0, 2), json.dumps(m.get("result", {})))
p.wait()
print("ping_first=%s" % (seen[9][0] < 1.0))
print("parallel=%s" % (max(seen[2][0], seen[3][0]) < 3.5))
print("outputs=%s" % ("c2" in seen[2][1] and "c3" in seen[3][1]))
print("eof_waits=%s" % ("last" in seen.get(4, (0, ""))[1]))
print("exit=%d" % p.returncode)
PYEOF
)
check_contains "stdio: a ping answers while tool calls run" "$OUT" "ping_first=True"
check_contains "stdio: two 2-second tool calls run in parallel (< 3.5 s)" "$OUT" "parallel=True"
check_contains "stdio: each parallel call gets its own output" "$OUT" "outputs=True"
check_contains "stdio: a call still running at end of input answers before the server exits" "$OUT" "eof_waits=True"
check_contains "stdio: the server exits 0 at end of input" "$OUT" "exit=0"
check_ac "remove $PAR" remove "$PAR"
