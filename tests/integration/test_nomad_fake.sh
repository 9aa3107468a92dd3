#!/usr/bin/env bash
# The test Nomad agent (tests/nomad/fake_nomad.py) checked against Nomad's documented HTTP
# API with curl and raw-protocol clients (tests/nomad/nprobe.py): job registration with
# Go's decoding errors and the server's validation messages, evaluations with placement
# failures and blocked evaluations, allocations and task states/events of real processes
# (native sandboxes), blocking queries, fs ls/stat/cat and framed/plain/followed logs, the
# exec WebSocket (frames, stdin, tty, exit codes, errors), deregistration and purge,
# namespaces, ACL tokens, TLS with client certificates, and clean shutdown.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_nomad_fake "test Nomad agent" "$AGENTCELL_HOME" --namespace dev --delay-scale 0.02 --node-memory 4096
A1_PID=$NOMAD_PID

# job ID DRIVER CONFIG_JSON [JQ_FILTER]: a register request body (batch, no restarts or
# reschedules, task "web" with 500 MHz and 256 MB) changed by JQ_FILTER.
job() {
	jq -c -n --arg id "$1" --arg drv "$2" --argjson cfg "$3" '{Job: {ID: $id, Type: "batch",
		Datacenters: ["dc1"], Meta: {"agentcell-managed": "true"},
		TaskGroups: [{Name: "g", RestartPolicy: {Attempts: 0, Mode: "fail"},
			ReschedulePolicy: {Attempts: 0, Unlimited: false},
			Tasks: [{Name: "web", Driver: $drv, Config: $cfg, Resources: {CPU: 500, MemoryMB: 256}}]}]}}' |
		jq -c "${4:-.}"
}
IDLE='{"image":"debian:12","command":"sh","args":["-c","echo hello; while :; do if [ -f /local/go ]; then echo later; rm /local/go; fi; sleep 0.1; done"]}'
reg() { NP PUT /v1/jobs "$1" >/dev/null; }
alloc_of() { NP GET "/v1/job/$1/allocations${2:-}" >/dev/null && jq -r '.[0].ID // empty' <<<"$NP_BODY"; }
alloc_json() { NP GET "/v1/allocation/$1" >/dev/null && printf '%s' "$NP_BODY"; }
client_status() { alloc_json "$1" | jq -r '.ClientStatus // empty'; }
status_is() { [ "$(client_status "$1")" = "$2" ]; }
has_alloc() { [ -n "$(alloc_of "$1" "${2:-}")" ]; }
events() { alloc_json "$1" | jq -r '[.TaskStates.web.Events[].Type] | join(",")'; }
X() { "$PY" "$NOMAD_DIR/nprobe.py" exec "$@"; }
hdr() { grep -i "^$1:" "$NP_HEADERS" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# ctl METHOD PATH [BODY]: the agent's control endpoints (/_test/, no token).
ctl() { NP_TOKEN="" NP "$@"; }

# ---------------------------------------------------------------- basics
NP GET /v1/status/leader >/dev/null
check_eq "GET /v1/status/leader" '"127.0.0.1:4647"' "$NP_BODY"
NP GET /v1/jobs >/dev/null
check_eq "GET /v1/jobs: an empty list" "200 []" "$NP_STATUS $NP_BODY"
check_eq "reads carry X-Nomad-Index, X-Nomad-KnownLeader, X-Nomad-LastContact" "1 true 0" \
	"$(hdr X-Nomad-Index) $(hdr X-Nomad-KnownLeader) $(hdr X-Nomad-LastContact)"
NP GET /v1/agent/self >/dev/null
check_eq "agent/self: region and datacenter" "global dc1" "$(jq -r '"\(.config.Region) \(.config.Datacenter)"' <<<"$NP_BODY")"
NP GET /v1/nodes >/dev/null
check_eq "the node's drivers: docker, exec, podman (raw_exec only when listed)" "docker,exec,podman" \
	"$(jq -r '.[0].Drivers | keys | join(",")' <<<"$NP_BODY")"
NP GET /v1/job/nope >/dev/null
check_eq "unknown job: 404 job not found (plain text)" "404 job not found text/plain; charset=utf-8" \
	"$NP_STATUS $NP_BODY $(hdr Content-Type)"
NP GET '/v1/jobs?region=eu' >/dev/null
check_eq "another region: 500 No path to region" "500 No path to region" "$NP_STATUS $NP_BODY"
NP GET '/v1/jobs?wait=5x&index=1' >/dev/null
check_eq "a bad wait: 400 Invalid wait time" "400 Invalid wait time" "$NP_STATUS $NP_BODY"

# ---------------------------------------------------------------- registration errors
NP PUT /v1/jobs "" >/dev/null
check_eq "empty body: 400 Request body is empty" "400 Request body is empty" "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs '{"Job":{"ID":"x","TaskGroups":[{"Name":"g","Tasks":[{"Name":"t","Driver":5}]}]}}' >/dev/null
check_eq "a wrong JSON type: 400 with Go's decoder message" \
	"400 json: cannot unmarshal number into Go struct field Task.Job.TaskGroups.Tasks.Driver of type string" \
	"$NP_STATUS $NP_BODY"
NP PUT /v1/jobs '{"Job":{"ID":"x","TaskGroups":{}}}' >/dev/null
check_eq "an object for a list: 400" \
	"400 json: cannot unmarshal object into Go struct field Job.Job.TaskGroups of type []*api.TaskGroup" \
	"$NP_STATUS $NP_BODY"
NP PUT /v1/jobs '{"Jobs":{}}' >/dev/null
check_eq "no Job: 400 Job must be specified" "400 Job must be specified" "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs '{"Job":{"Name":"x"}}' >/dev/null
check_eq "no ID: 400 Job ID hasn't been provided" "400 Job ID hasn't been provided" "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs "$(job v1 exec '{"command":"true"}' '.Job.TaskGroup = .Job.TaskGroups | del(.Job.TaskGroups)')" >/dev/null
check_eq "a misspelt field is dropped (encoding/json): 500 with the multierror" \
	"$(printf '500 1 error occurred:\n\t* Missing job task groups')" "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs "$(job v2 exec '{"command":"true"}' '.Job.Type = "batchy" | .Job.TaskGroups[0].Tasks[0].Driver = ""')" >/dev/null
check_contains "invalid type: 'Invalid job type' among the errors" "$NP_BODY" 'Invalid job type: "batchy"'
check_contains "no driver: the nested 'Task web validation failed' error" "$NP_BODY" \
	"$(printf 'Task group g validation failed: 1 error occurred:\n\t* Task web validation failed: 1 error occurred:\n\t* Missing task driver')"
check_match "two errors: '2 errors occurred', status 500" '^500 2 errors occurred:' "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs "$(job v3 exec '{"command":"true"}' '.Job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 5')" >/dev/null
check_contains "memory below 10 MB" "$NP_BODY" "minimum MemoryMB value is 10; got 5"
NP PUT '/v1/jobs?namespace=nope' "$(job v4 exec '{"command":"true"}')" >/dev/null
check_eq "an unknown namespace: 500 nonexistent namespace" \
	"$(printf '500 1 error occurred:\n\t* job "v4" is in nonexistent namespace "nope"')" "$NP_STATUS $NP_BODY"
NP PUT /v1/job/other "$(job v5 exec '{"command":"true"}')" >/dev/null
check_eq "PUT /v1/job/ID with another ID in the body: 400" "400 Job ID does not match name" "$NP_STATUS $NP_BODY"

# ---------------------------------------------------------------- register, evaluation, allocation
BODY=$(job web1 docker "$IDLE" '.Job.TaskGroups[0].Tasks[0].Env = {"GREETING": "hi ${NOMAD_JOB_ID}"}')
NP PUT /v1/jobs "$BODY" >/dev/null
R=$NP_BODY
EVAL=$(jq -r .EvalID <<<"$R")
check_match "register: EvalID, EvalCreateIndex = JobModifyIndex = Index = X-Nomad-Index" \
	"^200 [0-9a-f-]{36} ([0-9]+) \1 \1 \1$" \
	"$NP_STATUS $EVAL $(jq -r '"\(.EvalCreateIndex) \(.JobModifyIndex) \(.Index)"' <<<"$R") $(hdr X-Nomad-Index)"
check_eq "the body sent is recorded in NSTATE/jobs/ID.json" "$BODY" "$(cat "$NSTATE/jobs/web1.json")"
NP GET "/v1/evaluation/$EVAL?index=$(jq -r .EvalCreateIndex <<<"$R")&wait=30s" >/dev/null
check_eq "blocking query on the evaluation: complete, job-register, queued 0" "complete job-register 0" \
	"$(jq -r '"\(.Status) \(.TriggeredBy) \(.QueuedAllocations.g)"' <<<"$NP_BODY")"
NP GET /v1/job/web1 >/dev/null
check_eq "job defaults as Nomad's Canonicalize" \
	"web1 global default dc1 default 50 5000000000 10 300 0 false" \
	"$(jq -r '"\(.Name) \(.Region) \(.Namespace) \(.Datacenters|join(",")) \(.NodePool) \(.Priority) \(.TaskGroups[0].Tasks[0].KillTimeout) \(.TaskGroups[0].Tasks[0].LogConfig.MaxFiles) \(.TaskGroups[0].EphemeralDisk.SizeMB) \(.Version) \(.Stop)"' <<<"$NP_BODY")"
A=$(alloc_of web1)
check_match "one allocation, named JOB.GROUP[0]" "^[0-9a-f-]{36} web1.g\[0\]$" "$A $(NP GET /v1/job/web1/allocations | jq -r '.[0].Name')"
if wait_until 60 status_is "$A" running; then pass "the allocation runs"; else fail "the allocation runs" "$(alloc_json "$A")"; fi
J=$(alloc_json "$A")
check_match "task state running with StartedAt, events Received,Task Setup,Started" \
	"^running false 20[0-9-]+T[0-9:.]+Z Received,Task Setup,Started$" \
	"$(jq -r '.TaskStates.web | "\(.State) \(.Failed) \(.StartedAt) \([.Events[].Type]|join(","))"' <<<"$J")"
check_eq "the allocation embeds the job and its resources" "web1 500 256 Tasks are running" \
	"$(jq -r '"\(.Job.ID) \(.AllocatedResources.Tasks.web.Cpu.CpuShares) \(.AllocatedResources.Tasks.web.Memory.MemoryMB) \(.ClientDescription)"' <<<"$J")"
IDX=$(jq -r .ModifyIndex <<<"$J")
NP GET "/v1/allocation/$A?index=$IDX&wait=300ms" >/dev/null
check_eq "a blocking query with nothing new answers at the wait's end with the same index" "$IDX" "$(hdr X-Nomad-Index)"
SB=$(ctl GET /_test/sandboxes | jq -r --arg a "$A" '.[] | select(.alloc == $a) | .sandbox')
check_eq "the allocation is a running native sandbox" "running" "$(ac_status "$SB")"
check_eq "its limits come from the task's resources (256 MB, 500 MHz = 0.5 CPU)" "256 0.5" \
	"$(ac info "$SB" --json | jq -r '"\(.memory_mb) \(.cpus)"')"
check_eq "the task's env (NOMAD_*, Env with interpolation) reaches exec'd commands" "hi web1 $A /local" \
	"$(X "$A" web -- sh -c 'printf "%s %s %s" "$GREETING" "$NOMAD_ALLOC_ID" "$NOMAD_TASK_DIR"' | jq -r .stdout)"

# ---------------------------------------------------------------- logs
check_eq "logs, plain: the task's stdout" "hello" "$(NP GET "/v1/client/fs/logs/$A?task=web&type=stdout&plain=true")"
F=$(NP GET "/v1/client/fs/logs/$A?task=web&type=stdout" | "$PY" "$NOMAD_DIR/nprobe.py" frames)
check_eq "logs, framed: StreamFrames with base64 Data, File and the Offset after the data" \
	'hello
|alloc/logs/web.stdout.0|6' "$(jq -r '"\(.data)|\(.files|join(","))|\(.offsets|last)"' <<<"$F")"
check_eq "logs framed are application/json, plain text/plain" "application/json" "$(hdr Content-Type)"
check_eq "logs origin=end offset=3" "lo" "$(NP GET "/v1/client/fs/logs/$A?task=web&type=stdout&plain=true&origin=end&offset=3" | tr -d '\n')"
NP GET "/v1/client/fs/logs/$A?task=nope&type=stdout" >/dev/null
check_eq "logs of an unknown task: 400" '400 unknown task name "nope"' "$NP_STATUS $NP_BODY"
NP GET "/v1/client/fs/logs/$A?task=web" >/dev/null
check_eq "logs without a type: 400" "400 must provide log type (stdout/stderr)" "$NP_STATUS $NP_BODY"
NP GET "/v1/client/fs/logs/$A?task=web&type=stdout&origin=middle" >/dev/null
check_eq "logs with a bad origin: 400" "400 origin must be start or end" "$NP_STATUS $NP_BODY"
NP_MAXTIME=4 NP GET "/v1/client/fs/logs/$A?task=web&type=stdout&plain=true&follow=true" >"$AC_TMP/follow.out" &
FOLLOW=$!
sleep 1
X "$A" web -- touch /local/go >/dev/null
wait $FOLLOW
check_eq "logs follow=true streams what the task writes later" "hello later" "$(tr '\n' ' ' <"$AC_TMP/follow.out" | sed 's/ $//')"

# ---------------------------------------------------------------- fs
NP GET "/v1/client/fs/ls/$A?path=/" >/dev/null
check_eq "fs ls /: alloc and the task's directory" "alloc:true web:true" "$(jq -r '[.[] | "\(.Name):\(.IsDir)"] | join(" ")' <<<"$NP_BODY")"
check_eq "fs ls TASK: local private secrets tmp" "local private secrets tmp" \
	"$(NP GET "/v1/client/fs/ls/$A?path=web" | jq -r '[.[].Name] | join(" ")')"
X "$A" web -- sh -c 'printf content > /local/data.txt; echo s3cret > /secrets/token; mkdir -p /local/sub' >/dev/null
check_eq "fs cat TASK/local/FILE: the file in the sandbox's /local" "content" "$(NP GET "/v1/client/fs/cat/$A?path=web/local/data.txt")"
check_eq "fs ls TASK/local: AllocFileInfo entries" "data.txt false 7 -rw-r--r-- sub true drwxr-xr-x" \
	"$(NP GET "/v1/client/fs/ls/$A?path=web/local" | jq -r '[.[] | "\(.Name) \(.IsDir)" + (if .IsDir then "" else " \(.Size)" end) + " \(.FileMode)"] | join(" ")')"
NP GET "/v1/client/fs/stat/$A?path=web/local/data.txt" >/dev/null
check_match "fs stat: Name, Size, FileMode, ModTime, ContentType" \
	'^data.txt 7 false -rw-r--r-- 20[0-9-]+T[0-9:.]+Z text/plain; charset=utf-8$' \
	"$(jq -r '"\(.Name) \(.Size) \(.IsDir) \(.FileMode) \(.ModTime) \(.ContentType)"' <<<"$NP_BODY")"
NP GET "/v1/client/fs/cat/$A?path=web/secrets/token" >/dev/null
check_eq "fs cat of a secret: 500 as Nomad" "500 Reading secret file prohibited: web/secrets/token" "$NP_STATUS $NP_BODY"
check_eq "fs ls of the secrets dir is allowed" "token" "$(NP GET "/v1/client/fs/ls/$A?path=web/secrets" | jq -r '.[].Name')"
NP GET "/v1/client/fs/cat/$A?path=../../etc/passwd" >/dev/null
check_eq "a path escaping the alloc dir: 500" "500 Path escapes the alloc directory" "$NP_STATUS $NP_BODY"
NP GET "/v1/client/fs/stat/$A?path=web/local/nope" >/dev/null
check_match "fs stat of a missing file: 404 no such file or directory" "^404 stat .*/web/local/nope: no such file or directory$" "$NP_STATUS $NP_BODY"
NP GET "/v1/client/fs/cat/$A?path=alloc/logs" >/dev/null
check_eq "fs cat of a directory: 400" '400 file "alloc/logs" is a directory' "$NP_STATUS $NP_BODY"
NP GET "/v1/client/fs/stat/$A" >/dev/null
check_eq "fs stat without a path: 400" "400 must provide a file name" "$NP_STATUS $NP_BODY"
NP GET /v1/client/fs/ls/00000000-0000-0000-0000-000000000000 >/dev/null
check_eq "fs of an unknown allocation: 404" '404 Unknown allocation "00000000-0000-0000-0000-000000000000"' "$NP_STATUS $NP_BODY"

# ---------------------------------------------------------------- exec
E=$(X "$A" web -- sh -c 'echo out; echo err >&2; exit 7')
check_eq "exec: split stdout/stderr and the exit code" "out
|err
|7" "$(jq -r '"\(.stdout)|\(.stderr)|\(.exit_code)"' <<<"$E")"
check_eq "exec: stdout and stderr close frames come before the exited frame" \
	'true true {"exited":true,"result":{"exit_code":7}}' \
	"$(jq -c -r '"\([.frames[] | select(.stdout.close)] | length == 1) \([.frames[] | select(.stderr.close)] | length == 1) \(.frames | last | tojson)"' <<<"$E")"
check_eq "exec: the connection ends after exited, with no close frame (as Nomad)" "true null" \
	"$(jq -r '"\(.eof_after_exit) \(.close)"' <<<"$E")"
check_eq "exec exit 0: the result has no exit_code (omitempty)" '{"exited":true,"result":{}}' \
	"$(X "$A" web -- true | jq -c '.frames | last')"
check_eq "exec: stdin data and close reach the command" "abc|0" \
	"$(X "$A" web --stdin abc -- cat | jq -r '"\(.stdout)|\(.exit_code)"')"
E=$(X "$A" web --tty --resize 33x101 -- sh -c 'stty size; tty')
check_match "exec tty: the size from tty_size, a pty" $'^33 101\r\n/dev/pts/[0-9]+\r$' "$(jq -r .stdout <<<"$E")"
check_eq "exec tty: stdin close is ^D for the command" "0" \
	"$(X "$A" web --tty --stdin $'xyz\n' -- cat | jq -r .exit_code)"
check_eq "exec without a task: close 1008 must provide task name" '{"code":1008,"reason":"must provide task name"}' \
	"$(X "$A" "" -- ls | jq -c .close)"
check_eq "exec with an empty command: close 1008 command is not present" \
	'{"code":1008,"reason":"command is not present"}' "$(X "$A" web --command '[]' | jq -c .close)"
check_eq "exec with a bad command JSON: HTTP 500 before the upgrade" \
	"500 failed to marshal command into json: invalid character 'l' looking for beginning of value" \
	"$(X "$A" web --command 'ls' | jq -r '"\(.status) \(.body)"')"
check_eq "exec of an unknown task: close 1008" '{"code":1008,"reason":"unknown task name \"nope\""}' \
	"$(X "$A" nope -- ls | jq -c .close)"
check_eq "exec of an unknown allocation: close 1008" \
	'{"code":1008,"reason":"Unknown allocation \"00000000-0000-0000-0000-000000000000\""}' \
	"$(X 00000000-0000-0000-0000-000000000000 web -- ls | jq -c .close)"
check_match "exec without the WebSocket upgrade: 400" "^400 websocket: the client is not using the websocket protocol" \
	"$(X "$A" web --no-upgrade -- ls | jq -r '"\(.status) \(.body)"')"
check_eq "exec with ws_handshake=true (token in the first message)" "hs" \
	"$(X "$A" web --ws-handshake -- echo hs | jq -r .stdout | tr -d '\n')"
check_eq "every exec request is recorded in execs.log (task, command, tty)" '"web" ["cat"] true' \
	"$(grep '"tty": true' "$NSTATE/execs.log" | grep '"cat"' | head -1 | jq -c -r '"\(.task|tojson) \(.command|tojson) \(.tty)"')"

# ---------------------------------------------------------------- task failures
reg "$(job fail1 exec '{"command":"sh","args":["-c","echo bye >&2; exit 3"]}')"
A2=$(alloc_of fail1)
if wait_until 60 status_is "$A2" failed; then pass "a task exiting 3 fails its allocation"; else fail "a task exiting 3 fails its allocation" "$(alloc_json "$A2")"; fi
J=$(alloc_json "$A2")
check_eq "the task is dead and Failed, Terminated 'Exit Code: 3', Not Restarting 'Policy allows no restarts'" \
	"dead true Exit Code: 3|Policy allows no restarts|true Failed tasks" \
	"$(jq -r '.TaskStates.web | "\(.State) \(.Failed) \(.Events[-2].DisplayMessage)|\(.Events[-1].DisplayMessage)|\(.Events[-1].FailsTask)"' <<<"$J") $(jq -r .ClientDescription <<<"$J")"
check_eq "the failed task's stderr is in its log" "bye" "$(NP GET "/v1/client/fs/logs/$A2?task=web&type=stderr&plain=true")"
check_eq "exec into a finished allocation: close 1008 exec not possible" \
	"{\"code\":1008,\"reason\":\"exec not possible, client status of allocation $A2 is failed\"}" \
	"$(X "$A2" web -- ls | jq -c .close)"
reg "$(job val1 exec '{"args":["x"]}')"
A3=$(alloc_of val1)
wait_until 60 status_is "$A3" failed
check_eq "exec driver without command: Failed Validation with HCL's message" \
	"$(printf 'Failed Validation|2 errors occurred:\n\t* failed to parse config: \n\t* Missing required argument: The argument "command" is required, but no definition was found.')" \
	"$(alloc_json "$A3" | jq -r '.TaskStates.web.Events[] | select(.Type == "Failed Validation") | "\(.Type)|\(.DisplayMessage)"')"
reg "$(job val2 docker '{"image":"debian:12","command":"true","cap_dorp":["ALL"]}')"
A4=$(alloc_of val2)
wait_until 60 status_is "$A4" failed
check_contains "docker Config with a misspelt key: Invalid label, with a suggestion" \
	"$(alloc_json "$A4" | jq -r '.TaskStates.web.Events[].ValidationError')" \
	'Invalid label: No argument or block type is named "cap_dorp". Did you mean "cap_drop"?'
reg "$(job drv1 docker '{"image":"debian:12","command":"no-such-binary"}')"
A5=$(alloc_of drv1)
wait_until 60 status_is "$A5" failed
check_contains "a command the sandbox does not have: Driver Failure" \
	"$(alloc_json "$A5" | jq -r '.TaskStates.web.Events[] | select(.Type == "Driver Failure") | .DriverError')" \
	'exec: "no-such-binary": executable file not found in $PATH'
reg "$(job drv2 docker '{"image":"debian:12"}')"
A6=$(alloc_of drv2)
wait_until 60 status_is "$A6" failed
check_eq "docker without a command (no image entrypoint here): Driver Failure, task failed" "Driver Failure true" \
	"$(alloc_json "$A6" | jq -r '"\(.TaskStates.web.Events[2].Type) \(.TaskStates.web.Failed)"')"
reg "$(job priv docker '{"image":"debian:12","command":"true","privileged":true}')"
A7=$(alloc_of priv)
wait_until 60 status_is "$A7" failed
check_contains "docker privileged: refused as the driver's default allow_privileged=false" \
	"$(alloc_json "$A7" | jq -r '.TaskStates.web.Events[].DriverError')" "Docker privileged mode is disabled on this Nomad agent"
reg "$(job kill1 exec '{"command":"sleep","args":["300"]}')"
A8=$(alloc_of kill1)
wait_until 60 status_is "$A8" running
ctl POST /_test/kill "{\"alloc\":\"$A8\",\"task\":\"web\",\"signal\":\"KILL\"}" >/dev/null
wait_until 60 status_is "$A8" failed
check_eq "a killed task (control endpoint): Terminated with signal 9, allocation failed" \
	"Exit Code: 137, Signal: 9 failed" \
	"$(alloc_json "$A8" | jq -r '"\(.TaskStates.web.Events[] | select(.Type == "Terminated") | .DisplayMessage) \(.ClientStatus)"')"

# ---------------------------------------------------------------- placement failures
NP PUT /v1/jobs "$(job raw1 raw_exec '{"command":"true"}')" >/dev/null
E1=$(jq -r .EvalID <<<"$NP_BODY")
NP GET "/v1/evaluation/$E1?index=$(jq -r .Index <<<"$NP_BODY")&wait=30s" >/dev/null
check_eq "no node with the driver: FailedTGAllocs with 'missing drivers'" "complete 1 1 1 1" \
	"$(jq -r '"\(.Status) \(.FailedTGAllocs.g.NodesEvaluated) \(.FailedTGAllocs.g.NodesFiltered) \(.FailedTGAllocs.g.ConstraintFiltered["missing drivers"]) \(.QueuedAllocations.g)"' <<<"$NP_BODY")"
BE=$(jq -r .BlockedEval <<<"$NP_BODY")
check_eq "the blocked evaluation: status blocked, queued-allocs, PreviousEval" "blocked queued-allocs $E1" \
	"$(NP GET "/v1/evaluation/$BE" | jq -r '"\(.Status) \(.TriggeredBy) \(.PreviousEval)"')"
check_eq "a failed placement makes no allocation; the job stays pending" "0 pending" \
	"$(NP GET /v1/job/raw1/allocations | jq length) $(NP GET /v1/job/raw1 | jq -r .Status)"
NP PUT /v1/jobs "$(job big1 exec '{"command":"true"}' '.Job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 9000')" >/dev/null
E2=$(jq -r .EvalID <<<"$NP_BODY")
NP GET "/v1/evaluation/$E2?index=$(jq -r .Index <<<"$NP_BODY")&wait=30s" >/dev/null
check_eq "more memory than the node has: DimensionExhausted memory" "1 1 {\"memory\":1}" \
	"$(jq -c -r '"\(.FailedTGAllocs.g.NodesEvaluated) \(.FailedTGAllocs.g.NodesExhausted) \(.FailedTGAllocs.g.DimensionExhausted|tojson)"' <<<"$NP_BODY")"
NP DELETE "/v1/job/big1?purge=true" >/dev/null
# Capacity: a 3000 MB job runs, a second one is blocked until the first stops.
reg "$(job cap1 exec '{"command":"sleep","args":["300"]}' '.Job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 3000')"
wait_until 60 has_alloc cap1
NP PUT /v1/jobs "$(job cap2 exec '{"command":"sleep","args":["300"]}' '.Job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 3000')" >/dev/null
NP GET "/v1/evaluation/$(jq -r .EvalID <<<"$NP_BODY")?index=$(jq -r .Index <<<"$NP_BODY")&wait=30s" >/dev/null
check_eq "a second 3000 MB job waits (blocked evaluation, no allocation)" "true 0 blocked" \
	"$(jq -r '.BlockedEval != null' <<<"$NP_BODY") $(NP GET /v1/job/cap2/allocations | jq length) $(NP GET /v1/job/cap2/evaluations | jq -r 'map(.Status) | last')"
NP DELETE /v1/job/cap1 >/dev/null
if wait_until 60 has_alloc cap2; then pass "once the first stops, the blocked evaluation places the second"; else fail "once the first stops, the blocked evaluation places the second" "$(NP GET /v1/job/cap2/evaluations)"; fi
NP DELETE "/v1/job/cap2?purge=true" >/dev/null

# ---------------------------------------------------------------- rescheduling (Nomad's batch default)
reg "$(job resch exec '{"command":"false"}' 'del(.Job.TaskGroups[0].ReschedulePolicy)')"
two_allocs() { [ "$(NP GET /v1/job/resch/allocations | jq length)" = 2 ]; }
if wait_until 60 two_allocs; then pass "a failed batch alloc is rescheduled once by the default policy"; else fail "a failed batch alloc is rescheduled once by the default policy" "$(NP GET /v1/job/resch/allocations)"; fi
NP GET /v1/job/resch/allocations >/dev/null
check_eq "PreviousAllocation / NextAllocation link the two" "true" \
	"$(jq -r 'sort_by(.CreateIndex) | .[0].NextAllocation == .[1].ID' <<<"$NP_BODY")"
check_eq "the replacement carries a RescheduleTracker event" "1" \
	"$(alloc_json "$(jq -r 'sort_by(.CreateIndex) | .[1].ID' <<<"$NP_BODY")" | jq '.RescheduleTracker.Events | length')"

# ---------------------------------------------------------------- deregister, purge, re-register
IDX=$(alloc_json "$A" | jq -r .ModifyIndex)
NP_MAXTIME=60 NP GET "/v1/allocation/$A?index=$IDX&wait=60s" >"$AC_TMP/block.out" &
BLOCK=$!
sleep 0.3
NP DELETE /v1/job/web1 >/dev/null
check_match "DELETE /v1/job/ID: EvalID and JobModifyIndex" "^200 [0-9a-f-]{36} [0-9]+$" \
	"$NP_STATUS $(jq -r '"\(.EvalID) \(.JobModifyIndex)"' <<<"$NP_BODY")"
wait $BLOCK
check_gt "a pending blocking query returns when the allocation changes" "$(jq -r .ModifyIndex "$AC_TMP/block.out")" "$IDX"
if wait_until 60 status_is "$A" complete; then pass "the stopped allocation completes"; else fail "the stopped allocation completes" "$(alloc_json "$A")"; fi
J=$(alloc_json "$A")
check_eq "desired stop, events Killing (KillTimeout 5s), Terminated, Killed; not failed" \
	"stop alloc not needed due to job update|Sent interrupt. Waiting 5s before force killing|Killed|false" \
	"$(jq -r '"\(.DesiredStatus) \(.DesiredDescription)|\(.TaskStates.web.Events[] | select(.Type == "Killing") | .DisplayMessage)|\(.TaskStates.web.Events[-1].Type)|\(.TaskStates.web.Failed)"' <<<"$J")"
gone() { ! ac info "$1" >/dev/null 2>&1; }
if wait_until 30 gone "$SB"; then pass "the stopped allocation's sandbox is removed"; else fail "the stopped allocation's sandbox is removed" "$(ac list)"; fi
check_eq "the stopped job: Stop true, status dead; the log is still readable" "true dead hello later" \
	"$(NP GET /v1/job/web1 | jq -r '"\(.Stop) \(.Status)"') $(NP GET "/v1/client/fs/logs/$A?task=web&type=stdout&plain=true" | tr '\n' ' ' | sed 's/ $//')"
NP PUT /v1/jobs "$BODY" >/dev/null
check_eq "registering it again: a new version (stopping made version 1)" "2" "$(NP GET /v1/job/web1 | jq -r .Version)"
JMI=$(NP GET /v1/job/web1 | jq -r '"\(.JobModifyIndex) \(.Version)"')
NP PUT /v1/jobs "$BODY" >/dev/null
check_eq "the same spec again: a new evaluation, the job's JobModifyIndex and Version unchanged" "true $JMI" \
	"$(jq -r '.EvalID != "" and .EvalCreateIndex > .JobModifyIndex' <<<"$NP_BODY") $(NP GET /v1/job/web1 | jq -r '"\(.JobModifyIndex) \(.Version)"')"
NP DELETE "/v1/job/web1?purge=true" >/dev/null
NP GET /v1/job/web1 >/dev/null
check_eq "purge: the job is gone" "404" "$NP_STATUS"
NP DELETE /v1/job/never >/dev/null
check_eq "deregistering an unknown job: 200 with an empty EvalID (as Nomad)" '200 ""' "$NP_STATUS $(jq .EvalID <<<"$NP_BODY")"

# ---------------------------------------------------------------- namespaces, list filters
NP PUT '/v1/jobs?namespace=dev' "$(job nsjob exec '{"command":"true"}')" >/dev/null
check_eq "register in namespace dev (query parameter)" "200" "$NP_STATUS"
check_eq "jobs are per namespace" "404 200 dev" \
	"$(NP GET /v1/job/nsjob >/dev/null; echo "$NP_STATUS") $(NP GET '/v1/job/nsjob?namespace=dev' >/dev/null; echo "$NP_STATUS $(jq -r .Namespace <<<"$NP_BODY")")"
check_eq "GET /v1/jobs?namespace=* lists every namespace; ?prefix= filters" "dev/nsjob|default/val1,default/val2" \
	"$(NP GET '/v1/jobs?namespace=*' | jq -r '[.[] | select(.ID == "nsjob") | "\(.Namespace)/\(.ID)"] | join(",")')|$(NP GET '/v1/jobs?prefix=val' | jq -r '[.[] | "\(.Namespace)/\(.ID)"] | join(",")')"
check_eq "?meta=true adds Meta to the stubs" "true null" \
	"$(NP GET '/v1/jobs?prefix=val1&meta=true' | jq -r '.[0].Meta["agentcell-managed"]') $(NP GET '/v1/jobs?prefix=val1' | jq -r '.[0].Meta')"

# ---------------------------------------------------------------- control endpoints
ctl POST /_test/pause '{"placement": true}' >/dev/null
NP PUT /v1/jobs "$(job paused exec '{"command":"true"}')" >/dev/null
PE=$(jq -r .EvalID <<<"$NP_BODY")
NP GET "/v1/evaluation/$PE?index=$(jq -r .Index <<<"$NP_BODY")&wait=500ms" >/dev/null
check_eq "/_test/pause: evaluations stay pending" "pending" "$(jq -r .Status <<<"$NP_BODY")"
PI=$(jq -r .ModifyIndex <<<"$NP_BODY")
ctl POST /_test/pause '{"placement": false}' >/dev/null
NP GET "/v1/evaluation/$PE?index=$PI&wait=30s" >/dev/null
check_eq "resumed: the evaluation completes" "complete" "$(jq -r .Status <<<"$NP_BODY")"
ctl POST /_test/fail '{"path": "^/v1/jobs$", "method": "GET", "status": 503, "body": "no leader", "times": 1}' >/dev/null
check_eq "/_test/fail: an injected error, once" "503 no leader|200" \
	"$(NP GET /v1/jobs >/dev/null; echo "$NP_STATUS $NP_BODY")|$(NP GET /v1/jobs >/dev/null; echo "$NP_STATUS")"
check_eq "/_test/requests records the requests with their token" "GET /v1/jobs management 200" \
	"$(ctl GET /_test/requests | jq -r '[.[] | select(.path == "/v1/jobs")] | last | "\(.method) \(.path) \(.token) \(.status)"')"

# ---------------------------------------------------------------- shutdown of the first agent
kill -TERM "$A1_PID"
for _ in $(seq 1 300); do kill -0 "$A1_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$A1_PID" 2>/dev/null; then fail "the agent exits on SIGTERM"; else pass "the agent exits on SIGTERM"; fi
check_eq "every sandbox it made is gone" "" "$(ac_names | grep '^nomad-' || true)"

# ---------------------------------------------------------------- ACL
ac_nomad_fake "agent with ACLs" "" --acl
MGMT=$(cat "$NSTATE/mgmt-token")
RO=$(cat "$NSTATE/ro-token")
NP_TOKEN="" NP GET /v1/jobs >/dev/null
check_eq "no token: 403 Permission denied (plain text)" "403 Permission denied" "$NP_STATUS $NP_BODY"
NP_TOKEN=00000000-1111-2222-3333-444444444444 NP GET /v1/jobs >/dev/null
check_eq "an unknown token: 403" "403 Permission denied" "$NP_STATUS $NP_BODY"
NP_TOKEN="" NP GET /v1/status/leader >/dev/null
check_eq "status/leader needs no token" "200" "$NP_STATUS"
NP_TOKEN="" NP GET /v1/jobs "" -H "Authorization: Bearer $MGMT" >/dev/null
check_eq "the management token as Authorization: Bearer" "200 []" "$NP_STATUS $NP_BODY"
NP PUT /v1/jobs "$(job acl1 exec '{"command":"sleep","args":["300"]}')" >/dev/null
check_eq "the management token registers" "200" "$NP_STATUS"
NP_TOKEN=$RO NP GET /v1/job/acl1 >/dev/null
check_eq "the read-only token reads" "200" "$NP_STATUS"
NP_TOKEN=$RO NP PUT /v1/jobs "$(job acl2 exec '{"command":"true"}')" >/dev/null
check_eq "the read-only token cannot register: 403" "403 Permission denied" "$NP_STATUS $NP_BODY"
NP_TOKEN=$RO NP DELETE /v1/job/acl1 >/dev/null
check_eq "nor deregister" "403" "$NP_STATUS"
A9=$(alloc_of acl1)
wait_until 60 status_is "$A9" running
NP_TOKEN=$RO NP GET "/v1/client/fs/logs/$A9?task=web&type=stdout" >/dev/null
check_eq "nor read logs (read-logs is a write-policy capability)" "403" "$NP_STATUS"
check_eq "nor exec: close 1011 Permission denied" '{"code":1011,"reason":"Permission denied"}' \
	"$(NOMAD_TOKEN=$RO X "$A9" web -- true | jq -c .close)"
check_eq "the management token execs" "0" "$(NOMAD_TOKEN=$MGMT X "$A9" web -- true | jq -r .exit_code)"
check_eq "acl/token/self names the token" "read-only client" \
	"$(NP_TOKEN=$RO NP GET /v1/acl/token/self | jq -r '"\(.Name) \(.Type)"')"

# ---------------------------------------------------------------- TLS, client certificates, early upgrade
ac_nomad_fake "agent with TLS" "" --tls --verify-https-client --early-ws-upgrade
check_match "HTTPS: NOMAD_ADDR is https" "^https://127.0.0.1:[0-9]+$" "$NOMAD_ADDR"
NP GET /v1/status/leader >/dev/null
check_eq "HTTPS with the CA and a client certificate" "200" "$NP_STATUS"
PORT=$(cat "$NSTATE/port")
check_eq "the server certificate is for server.global.nomad" '"127.0.0.1:4647"' \
	"$(curl -s --cacert "$NOMAD_CACERT" --cert "$NOMAD_CLIENT_CERT" --key "$NOMAD_CLIENT_KEY" \
		--resolve "server.global.nomad:$PORT:127.0.0.1" "https://server.global.nomad:$PORT/v1/status/leader")"
check_fail "without a client certificate the handshake fails (verify_https_client)" \
	curl -s -f --max-time 10 --cacert "$NOMAD_CACERT" "$NOMAD_ADDR/v1/status/leader"
reg "$(job tls1 podman '{"image":"debian:12","command":"sleep","args":["300"]}')"
A10=$(alloc_of tls1)
wait_until 60 status_is "$A10" running
check_eq "exec over TLS" "tls-ok" "$(X "$A10" web -- echo tls-ok | jq -r .stdout | tr -d '\n')"
check_eq "--early-ws-upgrade: a bad command JSON is a close frame 1011 after the upgrade" \
	"101 1011 failed to marshal command into json: invalid character 'l' looking for beginning of value" \
	"$(X "$A10" web --command 'ls' | jq -r '"\(.status) \(.close.code) \(.close.reason)"')"
reg "$(job hard docker '{"image":"debian:12","command":"sleep","args":["300"],"pids_limit":64,"readonly_rootfs":true}')"
A11=$(alloc_of hard)
wait_until 60 status_is "$A11" running
check_eq "docker pids_limit and readonly_rootfs become the sandbox's --pids and --read-only" "--pids 64 --read-only" \
	"$(ctl GET /_test/sandboxes | jq -r --arg a "$A11" '.[] | select(.alloc == $a) | .args | join(" ")' | grep -o -- '--pids 64 --read-only')"
check_eq "with a read-only root the task still runs commands" "ro" "$(X "$A11" web -- echo ro | jq -r .stdout | tr -d '\n')"
