#!/usr/bin/env bash
# One-shot runs on the Kubernetes backend (run --backend kubernetes) against the test API
# server (tests/k8s/fake_apiserver.py, whose pods run as native sandboxes): the command is
# the pod's container (its spec as the server recorded it, the NetworkPolicy selecting the
# run's label), stdout and stderr apart (from the attach, and from the split log of a
# command that ended before the attach), exit codes from the terminated state, stdin with
# -i, --env, code runs, complete output of fast commands and of 1 MiB; and that the pod
# and its policy are gone after success, failure, --timeout, SIGINT, SIGTERM, an image
# pull failure and an API error, with no process of the command left.
#
# Environment (besides lib.sh's): KUBECTL, the kubectl binary (default: kubectl on PATH).
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes one-shot runs"
probe() { "$PY" "$K8S_DIR/probe.py" "$KUBECONFIG" token "$@"; }
# Every pod and policy in the namespace, by name.
cluster_objects() { K get pods,networkpolicies -o name 2>/dev/null | sort | tr '\n' ' '; }
# The fake's sandboxes (one per pod that exists).
fake_sandboxes() { probe raw GET /_fake/sandboxes | jq -c '.body | length'; }
run_pods() { K get pods -l agentcell.dev/run -o name 2>/dev/null | tr '\n' ' '; }
# The pid of the first process whose command line is exactly "$*" (none: empty).
proc_of() { pgrep -x -f "$*" | head -1; }
nothing_left() {
	local what=$1
	check_eq "$what: no pod or policy is left" "" "$(cluster_objects)"
	check_eq "$what: the fake has no sandbox left" "0" "$(fake_sandboxes)"
}

# ---------------------------------------------------------------- output, exit codes
acx run --backend kubernetes -- sh -c 'echo out; echo err >&2; exit 3'
check_eq "a fast command: stdout" "out" "$OUT"
check_eq "a fast command: stderr apart (the split log)" "err" "$ERR"
check_rc "a fast command: exit code 3 from the terminated state" 3
nothing_left "after a failing command"
# -i: the command writes only after reading what the attach sends, so this output can
# only have come over the attach.
acx_in() { local in=$1; shift; ac "$@" <<<"$in" >"$AC_TMP/acx.out" 2>"$AC_TMP/acx.err"; RC=$?; OUT=$(cat "$AC_TMP/acx.out"); ERR=$(cat "$AC_TMP/acx.err"); }
acx_in "go" run --backend kubernetes -i -- sh -c 'read x; echo "out $x"; echo "err $x" >&2; exit 5'
check_eq "over the attach: stdout (stdin read with -i)" "out go" "$OUT"
check_eq "over the attach: stderr apart" "err go" "$ERR"
check_rc "over the attach: exit code 5" 5
acx run --backend kubernetes -- true
check_rc "exit code 0" 0
acx run --backend kubernetes -- sh -c 'kill -KILL $$'
check_rc "a command killed by SIGKILL: 137" 137
acx run --backend kubernetes -- printf '%s|' a 'b c' "d'e"
check_eq "a program with arguments, each one word" "a|b c|d'e|" "$OUT"
acx run --backend kubernetes -- sh -c 'echo $((6*7))'
check_eq "sh -c with an arithmetic expansion" "42" "$OUT"
acx run --backend kubernetes -- sh -c 'echo "command terminated with non-zero exit code: 9" >&2'
check_rc "the exit code is the container's, not what stderr says" 0
acx run --backend kubernetes -- no-such-program-h3
check_rc "a program that does not exist: 127" 127
acx run --backend kubernetes --env FOO=bar --env 'SP=a b' -- sh -c 'echo "$FOO/$SP"'
check_eq "--env reaches the command" "bar/a b" "$OUT"
if command -v python3 >/dev/null; then
	acx run --backend kubernetes --language python --code 'import sys; print(6*7); print("e", file=sys.stderr)'
	check_eq "--language python --code: output" "42 e 0" "$OUT $ERR $RC"
else
	skip "--language python --code" "no python3 on the host (the test server's base)"
fi
acx run --backend kubernetes --language sh --code 'echo "$0"; exit 4'
check_eq "--language sh --code" "4" "$RC"

# ---------------------------------------------------------------- complete output
ok=0
for _ in 1 2 3 4 5 6; do
	acx run --backend kubernetes -- echo x
	[ "$OUT" = x ] && [ "$RC" = 0 ] && ok=$((ok + 1))
done
check_eq "run -- echo x prints x every time (6 runs)" 6 "$ok"
ok=0
for _ in 1 2 3; do
	acx run --backend kubernetes -- sh -c 'echo a; sleep 0.3; echo b >&2; sleep 0.3; echo c'
	[ "$OUT $ERR" = "a
c b" ] && ok=$((ok + 1))
done
check_eq "output before, during and after the attach, nothing lost or repeated (3 runs)" 3 "$ok"
# Writing to both streams all the while, so the attach begins mid-output: the log's part
# before it and the attach's part meet exactly, per stream.
ok=0
for _ in 1 2 3; do
	ac run --backend kubernetes -- sh -c 'i=0; while [ $i -lt 200 ]; do echo $i; echo "e$i" >&2; i=$((i+1)); sleep 0.01; done' >"$AC_TMP/o" 2>"$AC_TMP/e"
	[ "$(cat "$AC_TMP/o")" = "$(seq 0 199)" ] && [ "$(cat "$AC_TMP/e")" = "$(seq 0 199 | sed 's/^/e/')" ] && ok=$((ok + 1))
done
check_eq "a command writing both streams while the attach begins: each stream exact (3 runs)" 3 "$ok"
want=$(yes 0123456789abcdef | head -c 1048576 | sha256sum | cut -d' ' -f1)
ac run --backend kubernetes -- sh -c 'yes 0123456789abcdef | head -c 1048576' >"$AC_TMP/big" 2>"$AC_TMP/big.err"
check_eq "1 MiB of output: complete (sha256)" "$want" "$(sha256sum <"$AC_TMP/big" | cut -d' ' -f1)"
ac run --backend kubernetes -- sh -c 'sleep 1; yes 0123456789abcdef | head -c 1048576' >"$AC_TMP/big" 2>"$AC_TMP/big.err"
check_eq "1 MiB written after a pause: complete (sha256)" "$want" "$(sha256sum <"$AC_TMP/big" | cut -d' ' -f1)"
head -c 1048576 /dev/urandom >"$AC_TMP/rand"
ac run --backend kubernetes -i -- cat <"$AC_TMP/rand" >"$AC_TMP/rand.out" 2>"$AC_TMP/rand.err"
check_eq "-i: 1 MiB of random bytes through stdin and back (sha256)" \
	"$(sha256sum <"$AC_TMP/rand" | cut -d' ' -f1)" "$(sha256sum <"$AC_TMP/rand.out" | cut -d' ' -f1)"
nothing_left "after the output runs"

# ---------------------------------------------------------------- the pod as recorded
# The CLI itself in the background (not lib.sh's ac, a function: the signals must reach
# agentcell). A background job starts with SIGINT ignored; the run catches it all the same.
"$AGENTCELL" run --backend kubernetes -- sleep 3301 >/dev/null 2>&1 &
RUN=$!
at_exit "kill -KILL $RUN 2>/dev/null" # not bg_track: it disowns, and wait needs the job
wait_until 60 sh -c "[ -n \"\$(pgrep -x -f 'sleep 3301')\" ]"
POD=$(K get pods -l agentcell.dev/run -o jsonpath='{.items[0].metadata.name}')
PJ=$(K get pod "$POD" -o json)
RUNID=$(jq -r '.metadata.labels["agentcell.dev/run"]' <<<"$PJ")
check_eq "the run's pod is named after its run label" "agentcell-run--$RUNID" "$POD"
check_eq "the container's command is the argv" '["sleep","3301"]' "$(jq -c '.spec.containers[0].command' <<<"$PJ")"
check_eq "restartPolicy Never, no service account token, no service links" "Never false false" \
	"$(jq -r '.spec | "\(.restartPolicy) \(.automountServiceAccountToken) \(.enableServiceLinks)"' <<<"$PJ")"
check_eq "hardening: no privilege escalation, drop ALL, RuntimeDefault" \
	'false ["ALL"] RuntimeDefault' \
	"$(jq -c -r '.spec.containers[0].securityContext | "\(.allowPrivilegeEscalation) \(.capabilities.drop | tojson) \(.seccompProfile.type)"' <<<"$PJ")"
check_eq "no stdin without -i" "null" "$(jq -c '.spec.containers[0].stdin // null' <<<"$PJ")"
NP=$(K get networkpolicy "$POD" -o json 2>/dev/null)
check_eq "a deny-all NetworkPolicy of the same name selects the run's label" \
	'["Ingress","Egress"] null null '"$RUNID" \
	"$(jq -c -r '.spec | "\(.policyTypes | tojson) \(.ingress // null) \(.egress // null) \(.podSelector.matchLabels["agentcell.dev/run"])"' <<<"$NP")"

# ---------------------------------------------------------------- SIGINT, SIGTERM
PID=$(proc_of sleep 3301)
kill -INT "$RUN"
wait "$RUN"
rc=$?
check_eq "SIGINT to the CLI: exit 130" 130 "$rc"
nothing_left "after SIGINT"
check "after SIGINT: the command's process is gone" sh -c "! kill -0 $PID 2>/dev/null"
"$AGENTCELL" run --backend kubernetes -i -- sh -c 'echo started; exec sleep 3302' \
	< <(sleep 120) >"$AC_TMP/term.out" 2>&1 &
RUN=$!
at_exit "kill -KILL $RUN 2>/dev/null" # not bg_track: it disowns, and wait needs the job
wait_until 60 sh -c "[ -n \"\$(pgrep -x -f 'sleep 3302')\" ]"
PID=$(proc_of sleep 3302)
kill -TERM "$RUN"
wait "$RUN"
rc=$?
check_eq "SIGTERM to the CLI (-i): exit 143" 143 "$rc"
nothing_left "after SIGTERM"
check "after SIGTERM: the command's process is gone" sh -c "! kill -0 $PID 2>/dev/null"

# ---------------------------------------------------------------- --timeout
acx run --backend kubernetes --timeout 2 -- sleep 3303
check_rc "--timeout: exit 124" 124
nothing_left "after --timeout"
check_eq "after --timeout: no process of the command is left" "" "$(proc_of sleep 3303)"
acx run --backend kubernetes --timeout 30 -- sh -c 'echo quick'
check_eq "a run well within its --timeout" "quick 0" "$OUT $RC"

# ---------------------------------------------------------------- --network
probe raw DELETE /_fake/requests >/dev/null
acx run --backend kubernetes --network -- sh -c 'echo net'
posts=$(probe raw GET /_fake/requests | jq -r '[.body[] | select(.method == "POST") | .path | sub(".*/"; "")] | join(" ")')
check_eq "--network: the run makes its pod and no NetworkPolicy" "net pods" "$OUT $posts"
acx run --backend kubernetes -- true
posts=$(probe raw GET /_fake/requests | jq -r '[.body[] | select(.method == "POST") | .path | sub(".*/"; "")] | .[1:] | join(" ")')
check_eq "without it: the NetworkPolicy is created before the pod" "networkpolicies pods" "$posts"

# ---------------------------------------------------------------- failures
acx run --backend kubernetes --image registry.example/doesnotexist:1 -- true
check_contains "an image pull failure: the cluster's reason" "$ERR" "ErrImagePull"
check "... and the run fails" test "$RC" -ne 0
nothing_left "after an image pull failure"
probe raw POST /_fake/fail '{"path": "^/api/v1/namespaces/default/pods$", "method": "POST", "status": 500, "message": "etcdserver: request timed out", "times": 1}' >/dev/null
acx run --backend kubernetes -- true
check_contains "the pod's creation fails: the server's message" "$ERR" "etcdserver: request timed out"
check "... and the run fails" test "$RC" -ne 0
nothing_left "after a refused pod (its policy was made first)"
probe raw DELETE /_fake/fail >/dev/null
check_eq "runs leave nothing in the store" "" "$(ac_names | tr '\n' ' ')"
