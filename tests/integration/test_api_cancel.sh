#!/bin/bash
# A command whose client goes away is a cancelled command, not a sandbox that "is not
# running": over the API (/sandboxes/{name}/exec, its event stream, /run/stream) and over
# MCP at /mcp, a client that closes its connection mid-command takes the command with it,
# and the audit log records the exec with its own outcome (cancelled: the caller went
# away). An exec on a stopped sandbox still answers 409 "not running" and is no exec.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

command -v curl >/dev/null || { fail "curl is available"; exit 1; }

AUDIT=$AGENTCELL_HOME/audit.jsonl
SB=cancel$(uniq_id)

# post PATH BODY [curl args...]: prints the body, then the status on a line of its own.
post() {
	local path=$1 body=$2
	shift 2
	curl -s --max-time 60 -w '\n%{http_code}' -X POST "http://127.0.0.1:$SRV_PORT$path" \
		-H 'Content-Type: application/json' -d "$body" "$@"
}

# The audit records (one JSON object a line) of event "exec" whose command mentions MARK.
exec_records() {
	[ -f "$AUDIT" ] || return 0
	jq -c --arg m "$1" 'select(.event == "exec" and
		((.details.command // []) | map(tostring) | join(" ") | contains($m)))' "$AUDIT" 2>/dev/null
}
has_exec_record() { [ -n "$(exec_records "$1")" ]; }
has_procs_matching() { [ -n "$(procs_matching "$1")" ]; }

# cancel_case DESC MARK PATH BODY [curl args...]: sends the request in the background (its
# command runs `sleep MARK`), waits for the command to run, closes the client's connection
# and checks that the command goes and that the audit log says it was cancelled.
cancel_case() {
	local desc=$1 mark=$2 path=$3 body=$4 cpid rec
	shift 4
	curl -s -N --max-time 120 -o "$AC_TMP/cancel.out" -X POST "http://127.0.0.1:$SRV_PORT$path" \
		-H 'Content-Type: application/json' -d "$body" "$@" &
	cpid=$!
	bg_track "$cpid"
	if ! wait_until 30 has_procs_matching "sleep $mark"; then
		fail "$desc: the command started" "server stderr: $(tail -5 "$AC_TMP/cancel.err")" \
			"client output: $(cat "$AC_TMP/cancel.out" 2>/dev/null)"
		kill "$cpid" 2>/dev/null
		return
	fi
	pass "$desc: the command started"
	kill "$cpid" 2>/dev/null
	wait "$cpid" 2>/dev/null
	if wait_until 10 no_procs_matching "sleep $mark"; then
		pass "$desc: the client went away: the command is killed"
	else
		fail "$desc: the client went away: the command is killed" \
			"still running: $(procs_matching "sleep $mark" | tr '\n' ' ')"
		pkill -9 -f "sleep $mark" 2>/dev/null
	fi
	# The audit line is written once the call returns, right after the kill.
	wait_until 10 has_exec_record "$mark"
	rec=$(exec_records "$mark" | tail -1)
	if [ -z "$rec" ]; then
		fail "$desc: the exec is in the audit log" "audit: $(tail -5 "$AUDIT" 2>/dev/null)"
		return
	fi
	pass "$desc: the exec is in the audit log"
	check_match "$desc: audited as cancelled (the client went away)" \
		'^cancelled: the caller went away' "$(jq -r '.details.error // empty' <<<"$rec")"
	check_not_contains "$desc: not audited as 'not running'" "$rec" "not running"
	check_eq "$desc: no exit code is recorded for it" "" "$(jq -r '.details.exit_code // empty' <<<"$rec")"
}

# An id for the marker of each case: sleep's argument, unique on this machine.
mark() { printf '4242.%s%s' "$(uniq_id)" "$1"; }

if ! start_server cancel -- --port 0; then
	fail "serve starts" "$(cat "$AC_TMP/cancel.err")"
	exit 1
fi
pass "serve starts (port $SRV_PORT)"
check_ac "create and start a sandbox" create "$SB"
check_ac "start it" start "$SB"

# ------------------------------------------------------------ API exec, captured
M=$(mark 1)
cancel_case "exec" "$M" "/sandboxes/$SB/exec" "{\"command\":[\"sleep\",\"$M\"]}"

# A command that ends normally is audited with its exit code and no error: the outcome
# above is its own.
r=$(post "/sandboxes/$SB/exec" '{"command":["sh","-c","exit 3"]}')
check_eq "a command that ends is answered (409: exit code 3)" 409 "$(tail -1 <<<"$r")"
rec=$(jq -c 'select(.event == "exec" and .details.command == ["sh","-c","exit 3"])' "$AUDIT" | tail -1)
check_eq "... and audited with its exit code" 3 "$(jq -r '.details.exit_code' <<<"$rec")"
check_eq "... and no error" "" "$(jq -r '.details.error // empty' <<<"$rec")"

# ------------------------------------------------------------ API exec, streamed
M=$(mark 2)
cancel_case "exec/stream" "$M" "/sandboxes/$SB/exec/stream" "{\"command\":[\"sleep\",\"$M\"]}"

# ------------------------------------------------------------ one-shot run, streamed
M=$(mark 3)
cancel_case "run/stream" "$M" "/run/stream" "{\"command\":[\"sleep\",\"$M\"]}"

# ------------------------------------------------------------ MCP at /mcp (tools/call)
hdrs=$(curl -s -D - -o "$AC_TMP/init.json" -X POST "http://127.0.0.1:$SRV_PORT/mcp" \
	-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
	-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}')
SID=$(sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *\([0-9a-f]*\).*/\1/p' <<<"$hdrs" | tr -d '\r')
check_match "MCP: a session at /mcp" '^[0-9a-f]{32}$' "$SID"
mcp_call() { # NAME ARGS-JSON [curl args]: the JSON-RPC tools/call body
	printf '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2"
}
M=$(mark 4)
cancel_case "MCP sandbox_exec" "$M" /mcp \
	"$(mcp_call sandbox_exec "{\"name\":\"$SB\",\"command\":[\"sleep\",\"$M\"]}")" \
	-H "Mcp-Session-Id: $SID" -H 'Accept: application/json'
M=$(mark 5)
cancel_case "MCP sandbox_run" "$M" /mcp \
	"$(mcp_call sandbox_run "{\"command\":[\"sleep\",\"$M\"]}")" \
	-H "Mcp-Session-Id: $SID" -H 'Accept: application/json'

# The server goes on serving after all that.
r=$(post "/sandboxes/$SB/exec" '{"command":["echo","alive"]}')
check_eq "the server still runs commands afterwards" '{"success":true,"data":{"output":"alive\n"}}' "$(head -1 <<<"$r")"

# ------------------------------------------------------------ a stopped sandbox
check_ac "stop the sandbox" stop "$SB"
M=$(mark 6)
r=$(post "/sandboxes/$SB/exec" "{\"command\":[\"sleep\",\"$M\"]}")
check_eq "exec on a stopped sandbox: 409" 409 "$(tail -1 <<<"$r")"
check_eq "... saying it is not running" \
	"sandbox '$SB' is not running (start it with: agentcell start $SB)" \
	"$(head -1 <<<"$r" | jq -r .error)"
r=$(post "/sandboxes/$SB/exec/stream" "{\"command\":[\"sleep\",\"$M\"]}")
check_eq "exec/stream on a stopped sandbox: 409" 409 "$(tail -1 <<<"$r")"
check_contains "... saying it is not running" "$(head -1 <<<"$r")" "is not running"
r=$(post /mcp "$(mcp_call sandbox_exec "{\"name\":\"$SB\",\"command\":[\"sleep\",\"$M\"]}")" \
	-H "Mcp-Session-Id: $SID" -H 'Accept: application/json')
check_eq "MCP sandbox_exec on a stopped sandbox: an isError result" true \
	"$(head -1 <<<"$r" | jq -r .result.isError)"
check_contains "... saying it is not running" "$(head -1 <<<"$r" | jq -r '.result.content[0].text')" \
	"sandbox '$SB' is not running"
acx exec "$SB" -- sleep "$M"
check_rc "CLI exec on a stopped sandbox exits 1" 1
check_contains "... saying it is not running" "$ERR" "is not running (start it with"
check_eq "a command that never ran is no exec in the audit log" "" "$(exec_records "$M")"
r=$(post "/sandboxes/nosuch$(uniq_id)/exec" '{"command":["true"]}')
check_eq "exec on a missing sandbox: 404" 404 "$(tail -1 <<<"$r")"

stop_server cancel "$SRV_PID"
