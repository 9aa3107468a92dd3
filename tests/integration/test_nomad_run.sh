#!/usr/bin/env bash
# One-shot runs on the Nomad backend (run --backend nomad) against the test agent
# (tests/nomad/fake_nomad.py, whose tasks run as native sandboxes): the command is a batch
# job's task (its body as the agent recorded it), stdout and stderr apart from the task's
# logs, followed live, exit codes from the task state, --env/-w/-u, code runs, complete
# output of fast commands and of 1 MiB, -i over exec in an idle job; and that the job is
# purged after success, failure, --timeout, SIGINT, SIGTERM, a placement failure and API
# errors, with no process of the command left.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_nomad_fake "nomad one-shot runs"
# Every job the agent holds, by ID (purged ones are gone).
jobs() { NP GET /v1/jobs | jq -r '[.[].ID] | sort | join(" ")'; }
# The body the agent recorded for job ID (PUT /v1/jobs: {"Job": ...}).
job() { jq '.Job // .' "$NSTATE/jobs/$1.json"; }
# How many sandboxes the agent still has (one per allocation it runs).
fake_sandboxes() { curl -s "$NOMAD_ADDR/_test/sandboxes" | jq -r '[.[] | select(.sandbox != null)] | length'; }
# The run jobs the agent recorded (their bodies stay in its state dir), newest last.
run_jobs() { ls -tr "$NSTATE/jobs" 2>/dev/null | sed -n 's/^\(agentcell-run-.*\)\.json$/\1/p'; }
# The pid of the first process whose command line is exactly "$*" (none: empty).
proc_of() { pgrep -x -f "$*" | head -1; }
nothing_left() {
	local what=$1
	check_eq "$what: no job is left on the agent" "" "$(jobs)"
	check "$what: the agent has no sandbox left" wait_until 60 test_eq 0 fake_sandboxes
}
# test_eq WANT CMD...: whether CMD prints WANT (for wait_until).
test_eq() { local want=$1; shift; [ "$("$@")" = "$want" ]; }
acx_in() { local in=$1; shift; ac "$@" <<<"$in" >"$AC_TMP/acx.out" 2>"$AC_TMP/acx.err"; RC=$?; OUT=$(cat "$AC_TMP/acx.out"); ERR=$(cat "$AC_TMP/acx.err"); }

# ---------------------------------------------------------------- output, exit codes
acx run --backend nomad -- sh -c 'echo out; echo err >&2; exit 3'
check_eq "a fast command: stdout" "out" "$OUT"
check_eq "a fast command: stderr apart" "err" "$ERR"
check_rc "a fast command: exit code 3 from the task state" 3
nothing_left "after a failing command"
acx run --backend nomad -- true
check_rc "exit code 0" 0
acx run --backend nomad -- sh -c 'kill -KILL $$'
check_rc "a command killed by SIGKILL: 137" 137
acx run --backend nomad -- printf '%s|' a 'b c' "d'e"
check_eq "a program with arguments, each one word" "a|b c|d'e|" "$OUT"
acx run --backend nomad -- sh -c 'echo $((6*7))'
check_eq "sh -c with an arithmetic expansion" "42" "$OUT"
acx run --backend nomad -- no-such-program-h4
check_rc "a program that does not exist: 127" 127
acx run --backend nomad --env FOO=bar --env 'SP=a b' -- sh -c 'echo "$FOO/$SP"'
check_eq "--env reaches the command" "bar/a b" "$OUT"
if command -v python3 >/dev/null; then
	acx run --backend nomad --language python --code 'import sys; print(6*7); print("e", file=sys.stderr)'
	check_eq "--language python --code: output" "42 e 0" "$OUT $ERR $RC"
else
	skip "--language python --code" "no python3 on the host (the test agent's base)"
fi
acx run --backend nomad --language sh --code 'echo "$0"; exit 4'
check_eq "--language sh --code" "4" "$RC"

# ---------------------------------------------------------------- the job as recorded
J=$(job "$(run_jobs | tail -1)")
check_match "the run's job id is agentcell-run-<16 hex>" '^agentcell-run-[0-9a-f]{16}$' "$(jq -r .ID <<<"$J")"
check_eq "a batch job, managed, with its creator (gc spares a live run)" "batch true 1" \
	"$(jq -r '"\(.Type) \(.Meta["agentcell-managed"]) \(.Meta["agentcell-creator"] | test("^[0-9]+:[0-9]+:") | if . then 1 else 0 end)"' <<<"$J")"
check_match "... and this home's owner id" '^[0-9a-f]{16}$' "$(jq -r '.Meta["agentcell-owner"]' <<<"$J")"
J=$(grep -l '"FOO"' "$NSTATE"/jobs/agentcell-run-*.json | head -1)
check_eq "--env in the task's Env, the argv as entrypoint + args" 'bar a b ["sh"] "echo \"$FOO/$SP\""' \
	"$(jq -r '.Job.TaskGroups[0].Tasks[0] | "\(.Env.FOO) \(.Env.SP) \(.Config.entrypoint | tojson) \(.Config.args[1] | tojson)"' "${J:-/dev/null}")"

# ---------------------------------------------------------------- complete output
ok=0
for _ in 1 2 3 4 5 6; do
	acx run --backend nomad -- echo x
	[ "$OUT" = x ] && [ "$RC" = 0 ] && ok=$((ok + 1))
done
check_eq "run -- echo x prints x every time (6 runs)" 6 "$ok"
# Writing to both streams all the while, so that the followers start mid-output and the
# task ends with output they have not read yet: each stream exact.
ok=0
for _ in 1 2 3; do
	ac run --backend nomad -- sh -c 'i=0; while [ $i -lt 200 ]; do echo $i; echo "e$i" >&2; i=$((i+1)); sleep 0.01; done' >"$AC_TMP/o" 2>"$AC_TMP/e"
	[ "$(cat "$AC_TMP/o")" = "$(seq 0 199)" ] && [ "$(cat "$AC_TMP/e")" = "$(seq 0 199 | sed 's/^/e/')" ] && ok=$((ok + 1))
done
check_eq "a command writing both streams while the logs are followed: each stream exact (3 runs)" 3 "$ok"
want=$(yes 0123456789abcdef | head -c 1048576 | sha256sum | cut -d' ' -f1)
ac run --backend nomad -- sh -c 'yes 0123456789abcdef | head -c 1048576' >"$AC_TMP/big" 2>"$AC_TMP/big.err"
check_eq "1 MiB of output: complete (sha256)" "$want" "$(sha256sum <"$AC_TMP/big" | cut -d' ' -f1)"
ac run --backend nomad -- sh -c 'sleep 1; yes 0123456789abcdef | head -c 1048576; echo done >&2' >"$AC_TMP/big" 2>"$AC_TMP/big.err"
check_eq "1 MiB written after a pause: complete (sha256), stderr apart" "$want done" \
	"$(sha256sum <"$AC_TMP/big" | cut -d' ' -f1) $(cat "$AC_TMP/big.err")"

# ---------------------------------------------------------------- stdin: over exec
acx_in "go" run --backend nomad -i -- sh -c 'read x; echo "out $x"; echo "err $x" >&2; exit 5'
check_eq "-i: stdout (stdin read over exec)" "out go" "$OUT"
check_eq "-i: stderr apart" "err go" "$ERR"
check_rc "-i: exit code 5" 5
J=$(job "$(run_jobs | tail -1)")
check_eq "-i: the job idles (the command went over exec), with its creator" "sh 1" \
	"$(jq -r '"\(.TaskGroups[0].Tasks[0].Config.entrypoint[0] | sub(".*/"; "")) \(.Meta["agentcell-creator"] | length > 0 | if . then 1 else 0 end)"' <<<"$J")"
head -c 1048576 /dev/urandom >"$AC_TMP/rand"
ac run --backend nomad -i -- cat <"$AC_TMP/rand" >"$AC_TMP/rand.out" 2>"$AC_TMP/rand.err"
check_eq "-i: 1 MiB of random bytes through stdin and back (sha256)" \
	"$(sha256sum <"$AC_TMP/rand" | cut -d' ' -f1)" "$(sha256sum <"$AC_TMP/rand.out" | cut -d' ' -f1)"
nothing_left "after the output runs"

# ---------------------------------------------------------------- live output, SIGINT
# The CLI itself in the background (not lib.sh's ac, a function: the signals must reach
# agentcell). Its output shows up while the command still sleeps: followed live.
"$AGENTCELL" run --backend nomad -- sh -c 'echo started; echo e-started >&2; exec sleep 3301' \
	>"$AC_TMP/int.out" 2>"$AC_TMP/int.err" &
RUN=$!
at_exit "kill -KILL $RUN 2>/dev/null" # not bg_track: it disowns, and wait needs the job
check "live: stdout shows up while the command runs" \
	wait_until 60 sh -c "grep -qx started '$AC_TMP/int.out' && [ -n \"\$(pgrep -x -f 'sleep 3301')\" ]"
check "live: stderr too, apart" wait_until 60 grep -qx e-started "$AC_TMP/int.err"
PID=$(proc_of sleep 3301)
RJ=$(run_jobs | tail -1)
check_eq "the job runs on the agent meanwhile" "$RJ" "$(jobs)"
kill -INT "$RUN"
wait "$RUN"
rc=$?
check_eq "SIGINT to the CLI: exit 130" 130 "$rc"
nothing_left "after SIGINT"
check "after SIGINT: the command's process is gone" wait_until 60 sh -c "! kill -0 $PID 2>/dev/null"
"$AGENTCELL" run --backend nomad -i -- sh -c 'echo started; exec sleep 3302' \
	< <(sleep 120) >"$AC_TMP/term.out" 2>&1 &
RUN=$!
at_exit "kill -KILL $RUN 2>/dev/null"
wait_until 60 sh -c "[ -n \"\$(pgrep -x -f 'sleep 3302')\" ]"
PID=$(proc_of sleep 3302)
kill -TERM "$RUN"
wait "$RUN"
rc=$?
check_eq "SIGTERM to the CLI (-i, over exec): exit 143" 143 "$rc"
nothing_left "after SIGTERM"
check "after SIGTERM: the command's process is gone" wait_until 60 sh -c "! kill -0 $PID 2>/dev/null"
"$AGENTCELL" run --backend nomad -- sleep 3306 >/dev/null 2>&1 &
RUN=$!
at_exit "kill -KILL $RUN 2>/dev/null"
wait_until 60 sh -c "[ -n \"\$(pgrep -x -f 'sleep 3306')\" ]"
kill -TERM "$RUN"
wait "$RUN"
rc=$?
check_eq "SIGTERM to the CLI (batch): exit 143" 143 "$rc"
nothing_left "after SIGTERM (batch)"

# ---------------------------------------------------------------- --timeout
acx run --backend nomad --timeout 2 -- sh -c 'echo before; exec sleep 3303'
check_rc "--timeout: exit 124" 124
check_eq "--timeout: the output up to then is shown" "before" "$OUT"
nothing_left "after --timeout"
check "after --timeout: no process of the command is left" \
	wait_until 60 sh -c "[ -z \"\$(pgrep -x -f 'sleep 3303')\" ]"
acx run --backend nomad --timeout 2 -i -- sleep 3304 </dev/null
check_rc "--timeout with -i: exit 124" 124
nothing_left "after --timeout with -i"
acx run --backend nomad --timeout 30 -- sh -c 'echo quick'
check_eq "a run well within its --timeout" "quick 0" "$OUT $RC"

# ---------------------------------------------------------------- over the HTTP API
if start_server nomadrun -- --port 0; then
	U=http://127.0.0.1:$SRV_PORT
	R=$(curl -s -m 300 -X POST -H 'Content-Type: application/json' \
		-d '{"command":["sh","-c","echo \"$X $(pwd)\"; echo e >&2; exit 3"],"backend":"nomad","workdir":"/tmp","env":{"X":"y"},"full":true}' "$U/run")
	check_eq "POST /run with backend nomad: stdout, stderr and exit code" "y /tmp|e|3" \
		"$(jq -r '"\(.data.stdout | rtrimstr("\n"))|\(.data.stderr | rtrimstr("\n"))|\(.data.exit_code)"' <<<"$R")"
	J=$(grep -l '"X"' "$NSTATE"/jobs/agentcell-run-*.json | head -1)
	check_eq "... its workdir as the task's work_dir, its env in the task's Env" "/tmp y" \
		"$(jq -r '.Job.TaskGroups[0].Tasks[0] | "\(.Config.work_dir) \(.Env.X)"' "${J:-/dev/null}")"
	nothing_left "after POST /run"
	# The client goes away while the command runs: the run stops and purges its job.
	curl -s -m 3 -X POST -H 'Content-Type: application/json' \
		-d '{"command":["sleep","3307"],"backend":"nomad"}' "$U/run" >/dev/null
	check "a client gone: its run's job is purged" wait_until 60 test_eq "" jobs
	nothing_left "after a client went away"
	check "... and the command's process is gone" \
		wait_until 60 sh -c "[ -z \"\$(pgrep -x -f 'sleep 3307')\" ]"
	stop_server nomadrun "$SRV_PID"
else
	fail "serve starts" "$(cat "$AC_TMP/nomadrun.err")"
fi

# ---------------------------------------------------------------- failures
acx run --backend nomad --memory 65536 -- true
check_contains "a placement failure: Nomad's reason" "$ERR" "cannot be placed"
check_contains "... naming the exhausted resource" "$ERR" "memory"
check "... and the run fails" test "$RC" -ne 0
nothing_left "after a placement failure"
NP POST /_test/node '{"drivers": "exec"}' >/dev/null
acx run --backend nomad -- true
check_contains "no node with the driver: Nomad's reason" "$ERR" "missing drivers"
nothing_left "after a missing driver"
NP POST /_test/node '{"drivers": "docker,podman,exec"}' >/dev/null
NP POST /_test/fail '{"path": "^/v1/jobs$", "method": "PUT", "status": 500, "body": "rpc error: no cluster leader", "times": 1}' >/dev/null
acx run --backend nomad -- true
check_contains "the registration fails: the agent's message" "$ERR" "no cluster leader"
check "... and the run fails" test "$RC" -ne 0
nothing_left "after a refused registration"
NP POST /_test/fail '{"path": "^/v1/job/agentcell-run-[^/]*/allocations$", "method": "GET", "status": 500, "body": "rpc error: timeout", "times": 1}' >/dev/null
acx run --backend nomad -- sleep 3305
check_contains "an API error after the registration: the agent's message" "$ERR" "rpc error: timeout"
check "... and the run fails" test "$RC" -ne 0
nothing_left "after an API error while the task runs (the job was purged)"
NP DELETE /_test/fail >/dev/null
check_eq "runs leave nothing in the store" "" "$(ac_names | tr '\n' ' ')"
