#!/bin/bash
# agentkernel's observability on a real server: the agentkernel_http_* counters of
# `agentcell serve` move by the requests made, with agentkernel's labels (route patterns,
# never raw names); the agentkernel_* families beside ours carry the same values as ours and
# as GET /stats; [audit] format = "agentkernel" makes the CLI, serve and mcp write
# agentkernel's events with their fields; `agentcell metrics` still counts from such a log,
# and from one agentkernel itself wrote.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

KEY="metrics-key-$(uniq_id)-$RANDOM"
ID=$(uniq_id)
LOG=$AGENTCELL_HOME/audit.jsonl

command -v curl >/dev/null || fail "curl is available"

# metric TEXT LINE-PREFIX: the value of the sample whose name and labels are exactly given.
metric() { awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print 0 }' <<<"$1"; }

# ================================================================== HTTP counters

if start_server main AGENTCELL_API_KEY="$KEY" -- --port 0; then
	pass "serve starts (port $SRV_PORT)"
else
	fail "serve starts" "$(cat "$AC_TMP/main.err")"
	exit 1
fi
MAIN_PID=$SRV_PID
U=http://127.0.0.1:$SRV_PORT
AUTH=(-H "Authorization: Bearer $KEY")
get() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@"; }

M0=$(curl -s --max-time 10 "$U/metrics")
check_contains "metrics: agentkernel_http_requests_total is a counter" "$M0" "# TYPE agentkernel_http_requests_total counter"
check_contains "metrics: agentkernel_http_request_duration_seconds is a histogram" "$M0" "# TYPE agentkernel_http_request_duration_seconds histogram"
check_contains "metrics: ours are still there" "$M0" "# TYPE agentcell_sandboxes gauge"
check_match "metrics: agentkernel_build_info" 'agentkernel_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+"\} 1' "$M0"

for _ in 1 2 3; do get "$U/health" >/dev/null; done
check_eq "GET /sandboxes/NAME of no sandbox: 404" 404 "$(get "${AUTH[@]}" "$U/sandboxes/ghost-$ID")"
get "${AUTH[@]}" "$U/sandboxes/other-ghost-$ID" >/dev/null
check_eq "a path no route has: 404" 404 "$(get "${AUTH[@]}" "$U/no/such/route-$ID")"
check_eq "PUT /health: 405" 405 "$(get -X PUT "$U/health")"
check_eq "GET /stats without the key: 401" 401 "$(get "$U/stats")"
check_eq "GET /stats with the key: 200" 200 "$(get "${AUTH[@]}" "$U/stats")"

M1=$(curl -s --max-time 10 "$U/metrics")
h0=$(metric "$M0" 'agentkernel_http_requests_total{method="GET",path="/health",status="200"}')
h1=$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="/health",status="200"}')
check_eq "GET /health 200 counted 3 times" 3 "$((h1 - h0))"
check_eq "GET /sandboxes/:name 404 counted twice, under the route's pattern" 2 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="/sandboxes/:name",status="404"}')"
check_not_contains "no raw sandbox name in any label" "$M1" "ghost-$ID"
check_not_contains "no raw unknown path in any label" "$M1" "route-$ID"
check_eq "the unknown path counted as path=\"unmatched\"" 1 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="unmatched",status="404"}')"
check_eq "PUT /health 405 counted" 1 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="PUT",path="/health",status="405"}')"
check_eq "GET /stats 401 counted" 1 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="/stats",status="401"}')"
check_eq "GET /stats 200 counted" 1 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="/stats",status="200"}')"
check_eq "GET /metrics counted (the scrape before)" 1 \
	"$(metric "$M1" 'agentkernel_http_requests_total{method="GET",path="/metrics",status="200"}')"
c=$(metric "$M1" 'agentkernel_http_request_duration_seconds_count{method="GET",path="/health"}')
check_eq "duration histogram: GET /health count" 3 "$((c - $(metric "$M0" 'agentkernel_http_request_duration_seconds_count{method="GET",path="/health"}')))"
check_eq "duration histogram: +Inf bucket = count" "$c" \
	"$(metric "$M1" 'agentkernel_http_request_duration_seconds_bucket{method="GET",path="/health",le="+Inf"}')"
check_contains "duration histogram: agentkernel's buckets" "$M1" \
	'agentkernel_http_request_duration_seconds_bucket{method="GET",path="/health",le="0.001"}'
s=$(metric "$M1" 'agentkernel_http_request_duration_seconds_count{method="GET",path="/stats"}')
check_eq "duration histogram: /stats by path across statuses (401 and 200)" 2 "$s"
# /stats samples the CPU for 200 ms, as agentkernel does: its time shows in the histogram.
sum=$(metric "$M1" 'agentkernel_http_request_duration_seconds_sum{method="GET",path="/stats"}')
check_eq "duration histogram: the sum measures the requests (/stats >= 0.2 s)" 1 \
	"$(awk -v s="$sum" 'BEGIN { print (s >= 0.2 && s < 30) ? 1 : 0 }')"

# ================================================================== same values everywhere

NAME=cm-$ID
code=$(curl -s -o "$AC_TMP/create.json" -w '%{http_code}' --max-time 60 "${AUTH[@]}" \
	-H 'Content-Type: application/json' -d "{\"name\":\"$NAME\"}" "$U/sandboxes")
check_eq "POST /sandboxes creates" 201 "$code"
for cmd in '["true"]' '["sh","-c","exit 4"]'; do
	curl -s -o /dev/null --max-time 60 "${AUTH[@]}" -H 'Content-Type: application/json' \
		-d "{\"command\":$cmd}" "$U/sandboxes/$NAME/exec"
done
M2=$(curl -s --max-time 10 "$U/metrics")
ST=$(curl -s --max-time 10 "${AUTH[@]}" "$U/stats")
check_eq "exec (exit 0) counted under its pattern with status 200" 1 \
	"$(metric "$M2" 'agentkernel_http_requests_total{method="POST",path="/sandboxes/:name/exec",status="200"}')"
check_eq "both execs counted under the pattern, whatever their status" 2 \
	"$(grep '^agentkernel_http_requests_total{method="POST",path="/sandboxes/:name/exec",' <<<"$M2" | awk '{ n += $2 } END { print n + 0 }')"
EXECS=$(metric "$M2" agentcell_exec_total)
check_eq "agentkernel_commands_total{backend=native} = agentcell_exec_total" "$EXECS" \
	"$(metric "$M2" 'agentkernel_commands_total{backend="native"}')"
check_eq "agentcell_exec_total counts the two execs" 2 "$EXECS"
check_eq "agentkernel_command_duration_seconds count = commands" "$EXECS" \
	"$(metric "$M2" 'agentkernel_command_duration_seconds_count{backend="native"}')"
check_eq "lifecycle created = agentcell_events_total created" \
	"$(metric "$M2" 'agentcell_events_total{event="created"}')" \
	"$(metric "$M2" 'agentkernel_sandbox_lifecycle_total{action="created",backend="native"}')"
check_eq "lifecycle started = agentcell_events_total started" \
	"$(metric "$M2" 'agentcell_events_total{event="started"}')" \
	"$(metric "$M2" 'agentkernel_sandbox_lifecycle_total{action="started",backend="native"}')"
NLIST=$(ac list --json | jq length)
check_eq "agentkernel_sandboxes_active = the sandboxes listed" "$NLIST" "$(metric "$M2" agentkernel_sandboxes_active)"
check_eq "/stats: success envelope" true "$(jq -r .success <<<"$ST")"
check_eq "/stats: agentkernel's fields" "backend,resource_usage,sandbox_count,sandbox_limit,stats,uptime_seconds,version" \
	"$(jq -r '.data | keys | join(",")' <<<"$ST")"
check_eq "/stats: resource_usage's fields" "cpu_percent,disk_used_mb,memory_total_mb,memory_used_mb" \
	"$(jq -r '.data.resource_usage | keys | join(",")' <<<"$ST")"
check_eq "/stats: stats.rs's fields" \
	"executions_last_30d,first_entry,last_entry,sandboxes_active,sandboxes_created,sandboxes_removed,top_backends,top_images,total_executions" \
	"$(jq -r '.data.stats | keys | join(",")' <<<"$ST")"
check_eq "/stats: sandbox_count = agentkernel_sandboxes_active" "$(metric "$M2" agentkernel_sandboxes_active)" "$(jq -r .data.sandbox_count <<<"$ST")"
check_eq "/stats: total_executions = agentkernel_commands_total" "$EXECS" "$(jq -r .data.stats.total_executions <<<"$ST")"
check_eq "/stats: sandboxes_created = lifecycle created" \
	"$(metric "$M2" 'agentkernel_sandbox_lifecycle_total{action="created",backend="native"}')" \
	"$(jq -r .data.stats.sandboxes_created <<<"$ST")"
check_eq "/stats: top_backends as [name, count]" "native" "$(jq -r '.data.stats.top_backends[0][0]' <<<"$ST")"
check_eq "/stats: memory_total_mb as /proc/meminfo" "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)" \
	"$(jq -r .data.resource_usage.memory_total_mb <<<"$ST")"
check_eq "/stats: uptime_seconds counts from the start" 1 "$(jq -r '.data.uptime_seconds >= 0 and .data.uptime_seconds < 600' <<<"$ST" | sed 's/true/1/')"
check_eq "/stats: version = agentkernel_build_info's" \
	"$(sed -n 's/^agentkernel_build_info{version="\(.*\)"} 1$/\1/p' <<<"$M2")" "$(jq -r .data.version <<<"$ST")"
check_eq "the log is in our format by default" "$(wc -l <"$LOG")" "$(jq -c 'select(.event)' "$LOG" | wc -l)"
stop_server main "$MAIN_PID"

# ================================================================== [audit] format = "agentkernel"

printf '[audit]\nformat = "agentkernel"\n' >"$AGENTCELL_HOME/agentcell.toml"
BEFORE=$(wc -l <"$LOG")
MB=$(ac metrics)
N2=ak-$ID
acx create "$N2" --label team=blue
check_rc "create with the agentkernel format" 0
ac start "$N2" >/dev/null 2>&1
ac exec "$N2" -- true >/dev/null 2>&1
ac exec "$N2" -- sh -c 'exit 3' >/dev/null 2>&1
ac stop "$N2" >/dev/null 2>&1
ac remove "$N2" >/dev/null 2>&1
NEW=$(tail -n +"$((BEFORE + 1))" "$LOG")
line() { jq -c --arg t "$1" --arg n "$N2" 'select(.type == $t and (.name == $n or .sandbox == $n))' <<<"$NEW" | head -1; }
check_eq "agentkernel format: no line of ours" 0 "$(jq -c 'select(.event)' <<<"$NEW" | wc -l)"
L=$(line sandbox_created)
check_eq "sandbox_created: name, image, backend, labels" "$N2 host native blue" \
	"$(jq -r '"\(.name) \(.image) \(.backend) \(.labels.team)"' <<<"$L")"
check_eq "sandbox_created: agentkernel's envelope" "agentcell,backend,image,labels,name,pid,timestamp,type,user" \
	"$(jq -r 'keys | join(",")' <<<"$L")"
check_match "timestamp: RFC 3339 UTC with a fraction, as chrono writes" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6}|\.[0-9]{9})?Z$' \
	"$(jq -r .timestamp <<<"$L")"
check_eq "pid: a number" number "$(jq -r '.pid | type' <<<"$L")"
L=$(line sandbox_started)
check_eq "sandbox_started: name and profile" "$N2 moderate" "$(jq -r '"\(.name) \(.profile)"' <<<"$L")"
CE=$(jq -c --arg n "$N2" 'select(.type == "command_executed" and .sandbox == $n)' <<<"$NEW")
check_eq "command_executed: one per exec" 2 "$(wc -l <<<"$CE")"
check_eq "command_executed: command and exit_code" '["sh","-c","exit 3"] 3' \
	"$(tail -1 <<<"$CE" | jq -c '.command' | tr -d '\n'; printf ' '; tail -1 <<<"$CE" | jq -r .exit_code)"
check_eq "command_executed: fields" "agentcell,command,exit_code,pid,sandbox,timestamp,type,user" \
	"$(head -1 <<<"$CE" | jq -r 'keys | join(",")')"
check_eq "sandbox_stopped: name" "$N2" "$(line sandbox_stopped | jq -r .name)"
check_eq "sandbox_removed: name" "$N2" "$(line sandbox_removed | jq -r .name)"
check_eq "every process stamps its own pid" 1 "$(jq -r .pid <<<"$NEW" | sort -u | wc -l | awk '{ print ($1 >= 5) ? 1 : 0 }')"

MA=$(ac metrics)
check_eq "agentcell metrics counts the agentkernel lines: exec_total +2" 2 \
	"$(($(metric "$MA" agentcell_exec_total) - $(metric "$MB" agentcell_exec_total)))"
check_eq "agentkernel_commands_total +2" 2 \
	"$(($(metric "$MA" 'agentkernel_commands_total{backend="native"}') - $(metric "$MB" 'agentkernel_commands_total{backend="native"}')))"
check_eq "lifecycle removed +1" 1 \
	"$(($(metric "$MA" 'agentkernel_sandbox_lifecycle_total{action="removed",backend="native"}') - $(metric "$MB" 'agentkernel_sandbox_lifecycle_total{action="removed",backend="native"}')))"
check_eq "agentcell_exec_failed_total +1 (exit 3)" 1 \
	"$(($(metric "$MA" agentcell_exec_failed_total) - $(metric "$MB" agentcell_exec_failed_total)))"
check_eq "durations kept: the exec histogram +2" 2 \
	"$(($(metric "$MA" agentcell_exec_duration_seconds_count) - $(metric "$MB" agentcell_exec_duration_seconds_count)))"
check_eq "agentcell audit reads them back as our events" "created started exec exec stopped removed" \
	"$(ac audit --sandbox "$N2" --json | jq -r '.[].event' | tr '\n' ' ' | sed 's/ $//')"

# serve honours the option too (read once, at its first record).
N3=aks-$ID
ac create "$N3" >/dev/null 2>&1 && ac start "$N3" >/dev/null 2>&1
if start_server ak AGENTCELL_API_KEY="$KEY" -- --port 0; then
	BEFORE=$(wc -l <"$LOG")
	curl -s -o /dev/null --max-time 60 -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		-d '{"command":["echo","hi"]}' "http://127.0.0.1:$SRV_PORT/sandboxes/$N3/exec"
	L=$(tail -n +"$((BEFORE + 1))" "$LOG" | jq -c 'select(.type == "command_executed")' | head -1)
	check_eq "serve: command_executed by the server's pid" "$SRV_PID $N3" "$(jq -r '"\(.pid) \(.sandbox)"' <<<"$L")"
	stop_server ak "$SRV_PID"
else
	fail "serve with the agentkernel format starts" "$(cat "$AC_TMP/ak.err")"
fi

# ... and mcp.
BEFORE=$(wc -l <"$LOG")
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sh","version":"1"}}}'
printf '%s\n' "$init" '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
	"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"sandbox_exec\",\"arguments\":{\"name\":\"$N3\",\"command\":[\"echo\",\"mcp\"]}}}" |
	timeout -k 5 60 "$AGENTCELL" mcp >"$AC_TMP/mcp.out" 2>"$AC_TMP/mcp.err"
L=$(tail -n +"$((BEFORE + 1))" "$LOG" | jq -c 'select(.type == "command_executed")' | head -1)
check_eq "mcp: command_executed in agentkernel's format" '["echo","mcp"]' "$(jq -c .command <<<"$L")"
ac remove "$N3" >/dev/null 2>&1

# A log agentkernel itself wrote (no "agentcell" key) counts too.
MB=$(ac metrics)
TS=$(date -u +%Y-%m-%dT%H:%M:%S.123456789Z)
{
	printf '{"timestamp":"%s","pid":7,"user":"u","type":"sandbox_created","name":"akd-%s","image":"alpine:3.20","backend":"docker"}\n' "$TS" "$ID"
	printf '{"timestamp":"%s","pid":7,"user":"u","type":"command_executed","sandbox":"akd-%s","command":["ls"],"exit_code":0}\n' "$TS" "$ID"
	printf '{"timestamp":"%s","pid":7,"user":"u","type":"sandbox_removed","name":"akd-%s"}\n' "$TS" "$ID"
} >>"$LOG"
MA=$(ac metrics)
check_eq "agentkernel's own log: commands_total{backend=docker}" 1 "$(metric "$MA" 'agentkernel_commands_total{backend="docker"}')"
check_eq "agentkernel's own log: lifecycle created{docker}" 1 "$(metric "$MA" 'agentkernel_sandbox_lifecycle_total{action="created",backend="docker"}')"
check_eq "agentkernel's own log: agentcell_exec_total +1" 1 \
	"$(($(metric "$MA" agentcell_exec_total) - $(metric "$MB" agentcell_exec_total)))"
check_eq "agentkernel's own log: exec_failed unchanged (exit 0)" 0 \
	"$(($(metric "$MA" agentcell_exec_failed_total) - $(metric "$MB" agentcell_exec_failed_total)))"

# Back to ours: the next record is in our format again.
printf '[audit]\nformat = "agentcell"\n' >"$AGENTCELL_HOME/agentcell.toml"
ac create "back-$ID" >/dev/null 2>&1
check_eq "format agentcell: our line again" created "$(tail -1 "$LOG" | jq -r .event)"
ac remove "back-$ID" >/dev/null 2>&1
printf '[audit]\nformat = "syslog"\n' >"$AGENTCELL_HOME/agentcell.toml"
acx create "bad-$ID"
check_ne "an unknown [audit] format is refused" 0 "$RC"
check_contains "... naming the key" "$ERR" "audit.format"
rm -f "$AGENTCELL_HOME/agentcell.toml"
