#!/usr/bin/env bash
# agentkernel's MCP names on `agentcell mcp` (and `agentkernel mcp-server` through a link
# named agentkernel), raw JSON-RPC over stdio: sandbox_run's fast, timeout_ms,
# compatibility_mode and ports; sandbox_exec's workdir and sudo (refused unless
# [api] allow_sudo_exec); sandbox_extend_ttl without by (1h); the method shutdown; the tools
# sandbox_write_files and sandbox_exec_detach/status/logs/kill/list. Each by its effect.
# sudo is uid 0 even on an image whose User is nobody (tests/integration/user_image.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/user_image.sh"
ac_setup

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
MCP=("$AGENTCELL" mcp)

# call TOOL ARGS_JSON: one tools/call on a fresh server; R is its reply line, SC its
# structuredContent, TXT its text, ISERR whether it is a tool error.
call() {
	R=$(printf '%s\n' "$INIT" "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"$1\",\"arguments\":$2}}" |
		timeout -k 5 120 "${MCP[@]}" 2>"$AC_TMP/mcp.err" | tail -1)
	SC=$(jq -c '.result.structuredContent // empty' <<<"$R" 2>/dev/null)
	TXT=$(jq -r '.result.content[0].text // .error.message // empty' <<<"$R" 2>/dev/null)
	ISERR=$(jq -r '.result.isError // false' <<<"$R" 2>/dev/null)
}
sc() { jq -r "$1" <<<"$SC" 2>/dev/null; }

ID=$(uniq_id)
B=cm-$ID

# ---------------------------------------------------------------- tools/list

out=$(printf '%s\n' "$INIT" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' | timeout -k 5 60 "${MCP[@]}" | tail -1)
check_eq "tools/list: agentkernel's six tools" \
	'sandbox_exec_detach sandbox_exec_kill sandbox_exec_list sandbox_exec_logs sandbox_exec_status sandbox_write_files' \
	"$(jq -r '[.result.tools[].name | select(test("^sandbox_(write_files|exec_)"))] | sort | join(" ")' <<<"$out")"
check_eq "tools/list: sandbox_run has fast, timeout_ms, compatibility_mode, ports" 'true' \
	"$(jq -r '.result.tools[] | select(.name == "sandbox_run") | .inputSchema.properties | has("fast") and has("timeout_ms") and has("compatibility_mode") and has("ports")' <<<"$out")"
check_eq "tools/list: sandbox_exec has workdir and sudo" 'true' \
	"$(jq -r '.result.tools[] | select(.name == "sandbox_exec") | .inputSchema.properties | has("workdir") and has("sudo")' <<<"$out")"
check_eq "tools/list: sandbox_extend_ttl requires only name" '["name"]' \
	"$(jq -c '.result.tools[] | select(.name == "sandbox_extend_ttl") | .inputSchema.required' <<<"$out")"
check_eq "tools/list: the new tools have closed schemas" 'true' \
	"$(jq -r '[.result.tools[] | .inputSchema.additionalProperties == false] | all' <<<"$out")"

# ---------------------------------------------------------------- shutdown

# stdin stays open (a writer that sleeps): only the shutdown can end the server.
mkfifo "$AC_TMP/shut.in"
sleep 60 >"$AC_TMP/shut.in" &
bg_track $!
{ timeout -k 5 60 "${MCP[@]}" <"$AC_TMP/shut.in" >"$AC_TMP/shut.out" 2>"$AC_TMP/shut.err"
	echo $? >"$AC_TMP/shut.rc"; } &
printf '%s\n' "$INIT" '{"jsonrpc":"2.0","id":2,"method":"shutdown"}' '{"jsonrpc":"2.0","id":3,"method":"ping"}' >"$AC_TMP/shut.in"
check "shutdown: the server ends while stdin is still open" wait_until 10 test -s "$AC_TMP/shut.rc"
out=$(cat "$AC_TMP/shut.out")
check_eq "shutdown: answered with a null result" '2 null' "$(jq -r 'select(.id == 2) | "\(.id) \(.result)"' <<<"$out")"
check_eq "shutdown: exit status 0" 0 "$(cat "$AC_TMP/shut.rc")"
check_eq "shutdown: nothing read after it (no ping answer)" '' "$(jq -r 'select(.id == 3) | .id' <<<"$out")"
check_eq "shutdown: nothing on stderr" '' "$(cat "$AC_TMP/shut.err")"

# ---------------------------------------------------------------- sandbox_run

call sandbox_run '{"command":["echo","quick"],"fast":true}'
check_eq "run fast=true: runs the command" 'false quick' "$ISERR $(sc .stdout)"
call sandbox_run '{"command":["echo","slow"],"fast":false,"env":{"K":"v"},"cwd":"/tmp"}'
check_eq "run fast=false: runs the command" 'false slow' "$ISERR $(sc .stdout)"

t0=$SECONDS
call sandbox_run '{"command":["sleep","20"],"timeout_ms":400}'
check_eq "run timeout_ms=400: timed out, exit 124" 'true 124' "$(sc .timed_out) $(sc .exit_code)"
check_le "run timeout_ms=400: killed within seconds" "$((SECONDS - t0))" 10
call sandbox_run '{"command":"sleep 0.1; echo done","timeout_ms":20000}'
check_eq "run timeout_ms=20000: a short command completes" 'false done' "$(sc .timed_out) $(sc .stdout)"

call sandbox_run '{"command":"touch /probe && echo wrote; echo proxy=${HTTP_PROXY:-none}","compatibility_mode":"codex"}'
check_contains "compatibility_mode codex: the restrictive profile (read-only root)" "$(sc .stderr)" "Read-only file system"
check_not_contains "compatibility_mode codex: nothing written" "$(sc .stdout)" "wrote"
check_contains "compatibility_mode codex: network on (through the egress proxy)" "$(sc .stdout)" "proxy=http://"
call sandbox_run '{"command":"touch /probe && echo wrote; echo proxy=${HTTP_PROXY:-none}","compatibility_mode":"claude"}'
check_contains "compatibility_mode claude: moderate profile (writable root)" "$(sc .stdout)" "wrote"
check_contains "compatibility_mode claude: network on" "$(sc .stdout)" "proxy=http://"
call sandbox_run '{"command":"echo proxy=${HTTP_PROXY:-none}","compatibility_mode":"gemini","network":false}'
check_eq "compatibility_mode with network=false: network stays off" 'proxy=none' "$(sc .stdout)"
call sandbox_run '{"command":"echo proxy=${HTTP_PROXY:-none}"}'
check_eq "no compatibility_mode: network off (agentcell default)" 'proxy=none' "$(sc .stdout)"
call sandbox_run '{"command":"true","compatibility_mode":"codex","profile":"permissive"}'
check_eq "compatibility_mode against a different profile: -32602" '-32602' "$(jq -r .error.code <<<"$R")"

call sandbox_run '{"command":"true","ports":["5353:53/udp"]}'
check_eq "ports /udp: a tool error" 'true' "$ISERR"
check_contains "ports /udp: it names UDP" "$TXT" "UDP port mappings are not supported"

# ports become publish entries (seen in the sandbox's state; nothing is started).
HP=$((20000 + RANDOM % 20000))
call sandbox_create "{\"name\":\"$B-p\",\"network\":true,\"start\":false,\"ports\":[\"127.0.0.1:$HP:8000\",\"$((HP + 1))/tcp\"]}"
check_eq "create with ports: created" 'false' "$ISERR"
acx info "$B-p" --json
check_eq "ports ADDR:HOST:PORT and PORT/tcp (the same port, loopback): two publish entries" \
	"127.0.0.1 $HP 8000;127.0.0.1 $((HP + 1)) $((HP + 1))" \
	"$(jq -r '[.. | objects | select(has("host_port")) | "\(.address) \(.host_port) \(.port)"] | join(";")' <<<"$OUT" 2>&1)"
call sandbox_create "{\"name\":\"$B-s\",\"source_url\":\"https://example.com/r.git\"}"
check_contains "create with source_url: a tool error naming it" "$ISERR $TXT" "true source_url"
acx info "$B-s"
check_rc "create with source_url: nothing created" 1

# ---------------------------------------------------------------- sandbox_exec

call sandbox_create "{\"name\":\"$B\",\"ttl\":\"2m\"}"
check_eq "create $B" 'false' "$ISERR"
call sandbox_exec "{\"name\":\"$B\",\"command\":[\"pwd\"],\"workdir\":\"/tmp\"}"
check_eq "exec workdir=/tmp: the command runs there" '/tmp' "$(sc .stdout | tr -d '\n')"
call sandbox_exec "{\"name\":\"$B\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_eq "exec sudo without [api] allow_sudo_exec: a tool error" 'true' "$ISERR"
check_contains "exec sudo refused: names the key" "$TXT" "allow_sudo_exec"
# A sandbox of an image whose config sets User nobody: there sudo must ask for uid 0.
UREF=localhost/compat-user:$ID
BU=$B-u
if user_image "$UREF"; then
	pass "an image with User nobody made and imported"
else
	fail "an image with User nobody made and imported" "$(tail -n 5 "$AC_TMP/user-image.out")"
fi
call sandbox_create "{\"name\":\"$BU\",\"image\":\"$UREF\"}"
check_eq "create $BU from the User nobody image" 'false' "$ISERR"
call sandbox_exec "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"]}"
check_eq "exec on the User nobody image: the image's User" "false $USER_IMAGE_UID" "$ISERR $(sc .stdout | tr -d '\n')"
call sandbox_exec "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_contains "exec sudo on the User nobody image without allow_sudo_exec: refused" "$ISERR $TXT" "true sudo: refused"
call sandbox_exec_detach "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_contains "exec_detach sudo without allow_sudo_exec: refused" "$ISERR $TXT" "true sudo: refused"
printf '[api]\nallow_sudo_exec = true\n' >"$AC_TMP/sudo.toml"
MCP=("$AGENTCELL" mcp --config "$AC_TMP/sudo.toml")
call sandbox_exec "{\"name\":\"$B\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_eq "exec sudo with allow_sudo_exec = true (--config): runs as root" 'false 0' "$ISERR $(sc .stdout | tr -d '\n')"
call sandbox_exec "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_eq "exec sudo on the User nobody image (allowed): uid 0" 'false 0' "$ISERR $(sc .stdout | tr -d '\n')"
call sandbox_exec "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"],\"sudo\":false}"
check_eq "exec sudo false on the User nobody image: the image's User" "false $USER_IMAGE_UID" "$ISERR $(sc .stdout | tr -d '\n')"
call sandbox_exec_detach "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
CU=$(sc .id)
sudo_logs() { call sandbox_exec_logs "{\"id\":\"$CU\"}"; [ -n "$(sc .content)" ]; }
wait_until 10 sudo_logs
check_eq "exec_detach sudo on the User nobody image (allowed): uid 0" '0' "$(sc .content | tr -d '\n')"
call sandbox_exec_detach "{\"name\":\"$BU\",\"command\":[\"id\",\"-u\"]}"
CU=$(sc .id)
wait_until 10 sudo_logs
check_eq "exec_detach without sudo on the User nobody image: the image's User" "$USER_IMAGE_UID" "$(sc .content | tr -d '\n')"
printf '[api]\nallow_sudo_exec = true\n' >"$AGENTCELL_HOME/agentcell.toml"
MCP=("$AGENTCELL" mcp)
call sandbox_exec "{\"name\":\"$B\",\"command\":[\"id\",\"-u\"],\"sudo\":true}"
check_eq "exec sudo with allow_sudo_exec in \$AGENTCELL_HOME/agentcell.toml: runs" 'false 0' "$ISERR $(sc .stdout | tr -d '\n')"
rm -f "$AGENTCELL_HOME/agentcell.toml"

# ---------------------------------------------------------------- sandbox_extend_ttl

call sandbox_extend_ttl "{\"name\":\"$B\"}"
check_eq "extend_ttl without by: a success" 'false' "$ISERR"
left=$(($(date -d "$(sc .expires_at)" +%s) - $(date +%s)))
check_gt "extend_ttl without by: 1h more (2m + 1h left)" "$left" 3600
check_le "extend_ttl without by: not more than 1h" "$left" 3730

# ---------------------------------------------------------------- sandbox_write_files

call sandbox_write_files "{\"name\":\"$B\",\"files\":{\"/app/main.py\":\"print('hi')\\n\",\"/app/sub/data.txt\":\"héllo\"}}"
check_eq "write_files: two files written" 'false 2' "$ISERR $(sc .count)"
acx exec "$B" -- cat /app/main.py /app/sub/data.txt
check_eq "write_files: their content is in the sandbox" "print('hi')"$'\n'"héllo" "$OUT"
call sandbox_write_files "{\"name\":\"$B\",\"files\":{\"relative\":\"x\"}}"
check_eq "write_files: a relative path is a tool error" 'true' "$ISERR"

# ---------------------------------------------------------------- detached commands

call sandbox_exec_detach "{\"name\":\"$B\",\"command\":[\"sh\",\"-c\",\"echo out; echo err >&2; pwd; exec sleep 60\"],\"workdir\":\"/tmp\",\"env\":[\"X=1\"]}"
CID=$(sc .id)
check_eq "exec_detach: an id, status running" "false running $B" "$ISERR $(sc .status) $(sc .sandbox)"
logs_have() { call sandbox_exec_logs "{\"id\":\"$CID\"}"; [ "$(sc .content)" = $'out\n/tmp' ]; }
check "exec_logs: stdout (default) has the output, workdir applied" wait_until 10 logs_have
call sandbox_exec_logs "{\"id\":\"$CID\",\"stream\":\"stderr\"}"
check_eq "exec_logs stream=stderr" 'err' "$(sc .content)"
call sandbox_exec_status "{\"id\":\"$CID\"}"
check_eq "exec_status: running" 'running' "$(sc .status)"
call sandbox_exec_list "{\"name\":\"$B\"}"
check_eq "exec_list: the command, in agentkernel's fields" "$CID running sh" \
	"$(sc '.commands[0] | "\(.id) \(.status) \(.command[0])"')"
check_contains "exec_list: the text is the JSON list" "$TXT" "\"id\": \"$CID\""
call sandbox_exec_kill "{\"id\":\"$CID\"}"
check_eq "exec_kill: killed" 'false true' "$ISERR $(sc .killed)"
not_running() { call sandbox_exec_status "{\"id\":\"$CID\"}"; [ "$(sc .status)" = failed ]; }
check "exec_status after kill: failed" wait_until 10 not_running
acx exec "$B" -- sh -c 'ps -o args 2>/dev/null || ls /proc'
check_not_contains "exec_kill: the process is gone" "$OUT" "sleep 60"

call sandbox_exec_detach "{\"name\":\"$B\",\"command\":[\"sh\",\"-c\",\"exit 3\"]}"
C3=$(sc .id)
call sandbox_exec_detach "{\"name\":\"$B\",\"command\":[\"true\"]}"
C0=$(sc .id)
ended() { call sandbox_exec_status "{\"id\":\"$1\"}"; [ "$(sc .status)" != running ]; }
wait_until 10 ended "$C3"
check_eq "exec_status: exit 3 is failed with exit_code 3" 'failed 3' "$(sc .status) $(sc .exit_code)"
wait_until 10 ended "$C0"
check_eq "exec_status: exit 0 is completed" 'completed 0' "$(sc .status) $(sc .exit_code)"
call sandbox_exec_list '{}'
check_eq "exec_list without name: all of every sandbox (3 of $B, 2 of $BU)" '3 2 5' \
	"$(sc "[(.commands | map(select(.sandbox == \"$B\")) | length), (.commands | map(select(.sandbox == \"$BU\")) | length), (.commands | length)] | map(tostring) | join(\" \")")"
call sandbox_exec_status '{"id":"000000000000"}'
check_eq "exec_status of an unknown id: a tool error" 'true' "$ISERR"

# ---------------------------------------------------------------- agentkernel mcp-server

ln -s "$AGENTCELL" "$AC_TMP/agentkernel"
MCP=("$AC_TMP/agentkernel" mcp-server)
call sandbox_exec "{\"name\":\"$B\",\"command\":[\"pwd\"],\"workdir\":\"/app\"}"
check_eq "agentkernel mcp-server: sandbox_exec with workdir" '/app' "$(sc .stdout | tr -d '\n')"
call sandbox_write_files "{\"name\":\"$B\",\"files\":{\"/ak.txt\":\"ak\"}}"
acx exec "$B" -- cat /ak.txt
check_eq "agentkernel mcp-server: sandbox_write_files" 'ak' "$OUT"
out=$(printf '%s\n' "$INIT" '{"jsonrpc":"2.0","id":2,"method":"shutdown"}' | timeout -k 5 30 "${MCP[@]}" | tail -1)
check_eq "agentkernel mcp-server: shutdown" 'null' "$(jq -c .result <<<"$out")"

check_ac "remove $B" remove "$B"
check_ac "remove $B-p" remove "$B-p"
check_ac "remove $BU" remove "$BU"
