#!/usr/bin/env bash
# The test Kubernetes API server (tests/k8s/fake_apiserver.py) checked by the real kubectl:
# discovery, token and client-certificate auth, create/get/list/delete of pods and
# networkpolicies, label selectors, exec (stdout/stderr split, exit codes, stdin, tty),
# cp both ways, logs, run --rm -i (attach), the error answers as kubectl prints them, and
# that every sandbox the server made is gone after SIGTERM. Raw-protocol details kubectl
# does not show (v4/v5 subprotocols, 403 on others, ping/pong, watch, 401/422 bodies,
# 429 + Retry-After) are checked with tests/k8s/probe.py.
#
# Environment (besides lib.sh's): KUBECTL, the kubectl binary (default: kubectl on PATH).
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "fake Kubernetes API server against kubectl" "$AGENTCELL_HOME"
FIX=$K8S_DIR/fixtures
# kx ARGS...: sets OUT (stdout), ERR (stderr), RC of kubectl ARGS.
kx() {
	K "$@" >"$AC_TMP/k.out" 2>"$AC_TMP/k.err"
	RC=$?
	OUT=$(cat "$AC_TMP/k.out")
	ERR=$(cat "$AC_TMP/k.err")
}
kdiag() { printf '%s\n' "exit status: $RC" "stdout: $(_ac_clip "$OUT")" "stderr: $(_ac_clip "$ERR")"; }
probe() { "$PY" "$K8S_DIR/probe.py" "$KUBECONFIG" "$@"; }
pod_json() { K get pod "$1" -o json 2>/dev/null; }
pod_phase() { K get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
phase_is() { [ "$(pod_phase "$1")" = "$2" ]; }
pod_gone() { ! K get pod "$1" >/dev/null 2>&1; }
n_sandboxes() { ac_names | grep -c '^k8s-' || true; }

# ---------------------------------------------------------------- discovery, auth
kx version
check_contains "kubectl version shows the server's version" "$OUT" "Server Version: v1.32.0-fake"
kx get pods
check_eq "kubectl get pods on an empty namespace" "No resources found in default namespace." "$ERR$OUT"
kx --context cert get namespaces
check_match "client-certificate context: get namespaces" "default +Active" "$OUT"
last_user=$(probe token raw GET /_fake/requests | jq -r '[.body[] | select(.path == "/api/v1/namespaces")] | last | "\(.user) \(.via)"')
check_eq "the client certificate authenticated as CN=user (x509)" "user x509" "$last_user"
kx --context cert-files get ns default -o name
check_eq "client certificate and CA as files" "namespace/default" "$OUT"

kx --context badtoken get pods
check_contains "401: kubectl says it must log in" "$ERR" "error: You must be logged in to the server"
r=$(probe badtoken raw GET /api/v1/namespaces/default/pods)
check_eq "401 body is a metav1.Status (Failure, Unauthorized, code 401)" \
	'401 {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}' \
	"$(jq -c '"\(.status) \(.body | tojson)"' -r <<<"$r")"

# ---------------------------------------------------------------- create, get, list
kx create -f "$FIX/pod.yaml"
check_eq "kubectl create -f pod.yaml (server-side field validation, no --validate=false)" "pod/web created" "$OUT"
if wait_until 60 phase_is web Running; then pass "the pod runs"; else fail "the pod runs" "$(pod_json web | jq -c .status)"; fi
kx wait --for=condition=Ready pod/web --timeout=30s
check_eq "kubectl wait --for=condition=Ready (watch)" "pod/web condition met" "$OUT"
J=$(pod_json web)
check_eq "get -o json: kind/apiVersion" "Pod v1" "$(jq -r '"\(.kind) \(.apiVersion)"' <<<"$J")"
check_match "get -o json: uid, resourceVersion, creationTimestamp" \
	'^[0-9a-f-]{36} [0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' \
	"$(jq -r '.metadata | "\(.uid) \(.resourceVersion) \(.creationTimestamp)"' <<<"$J")"
check_eq "the hardening fields are kept as given" \
	'false false RuntimeDefault false ["ALL"]' \
	"$(jq -c -r '.spec | "\(.automountServiceAccountToken) \(.enableServiceLinks) \(.securityContext.seccompProfile.type) \(.containers[0].securityContext.allowPrivilegeEscalation) \(.containers[0].securityContext.capabilities.drop | tojson)"' <<<"$J")"
check_eq "defaults filled as the real server does" \
	"ClusterFirst default-scheduler 30 /dev/termination-log File IfNotPresent default 256Mi fake-node Guaranteed" \
	"$(jq -r '"\(.spec.dnsPolicy) \(.spec.schedulerName) \(.spec.terminationGracePeriodSeconds) \(.spec.containers[0].terminationMessagePath) \(.spec.containers[0].terminationMessagePolicy) \(.spec.containers[0].imagePullPolicy) \(.spec.serviceAccountName) \(.spec.containers[0].resources.requests.memory) \(.spec.nodeName) \(.status.qosClass)"' <<<"$J")"
check_eq "no service account token volume with automountServiceAccountToken false" "0" \
	"$(jq '[.spec.volumes[]? | select(.name | startswith("kube-api-access-"))] | length' <<<"$J")"
check_match "status: Running, state.running.startedAt, ready, Ready condition True" \
	'^Running [0-9T:-]+Z true True 10\.244\.' \
	"$(jq -r '.status | "\(.phase) \(.containerStatuses[0].state.running.startedAt) \(.containerStatuses[0].ready) \(.conditions[] | select(.type == "Ready") | .status) \(.podIP)"' <<<"$J")"
rv1=$(jq -r .metadata.resourceVersion <<<"$J")
kx label pod web extra=1
rv2=$(K get pod web -o jsonpath='{.metadata.resourceVersion}')
check_gt "resourceVersion grows with a change (kubectl label)" "$rv2" "$rv1"
kx create -f "$FIX/job-ok.yaml"
kx get pods -l app=x -o name
check_eq "get -l app=x" "pod/web" "$OUT"
kx get pods -l 'app=x,tier!=a' -o name
check_eq "get -l 'app=x,tier!=a' (none)" "" "$OUT"
kx get pods -l '!app' -o name
check_eq "get -l '!app' (none)" "" "$OUT"
kx get pods -l 'tier' -o name
check_eq "get -l tier (key exists)" "pod/web" "$OUT"
kx get pods -l 'app in (job,y)' -o name
check_eq "get -l 'app in (job,y)'" "pod/job-ok" "$OUT"
kx get pods
check_match "kubectl get pods prints the server's table" "NAME +READY +STATUS +RESTARTS +AGE" "$OUT"

# ---------------------------------------------------------------- exec, cp, logs
kx exec web -- sh -c 'echo out; echo err >&2; exit 3'
check_eq "exec: stdout" "out" "$OUT"
check_eq "exec: stderr and kubectl's exit-code line" "err
command terminated with exit code 3" "$ERR"
check_eq "exec: exit code 3 propagated by kubectl" "3" "$RC"
kx exec web -- sh -c 'echo "$GREETING $(pwd)"'
check_eq "exec: the container's env and workingDir" "hello-env /work" "$OUT${ERR:+ [stderr: $ERR, exit $RC]}"
out=$(printf 'line1\nline2\n' | K exec -i web -- cat 2>&1)
check_eq "exec -i: stdin to the command, end of input (v5 close)" "line1
line2" "$out"
head -c 300000 /dev/urandom >"$AC_TMP/blob"
kx cp "$AC_TMP/blob" web:/tmp/blob
check_eq "kubectl cp into the pod" "0" "$RC"
kx exec web -- sha256sum /tmp/blob
check_eq "the copied file is intact inside" "$(sha256sum <"$AC_TMP/blob" | cut -d' ' -f1)" "${OUT%% *}"
kx cp web:/tmp/blob "$AC_TMP/blob.back"
check_eq "kubectl cp out of the pod" "$(sha256sum <"$AC_TMP/blob" | cut -d' ' -f1)" "$(sha256sum <"$AC_TMP/blob.back" 2>&1 | cut -d' ' -f1)"
out=$("$PY" "$AC_REPO/tests/integration/pty_run.py" 30 100 40 120 30 -- \
	env HOME="$AC_TMP" "$KUBECTL" --cache-dir "$AC_TMP/kcache" exec -it web -- sh -c 'stty size; tty; echo READY; read x; stty size; exit 5' 2>&1)
out=$(tr -d '\r' <<<"$out" | tr '\n' ' ')
check_match "exec -it: the terminal's size, a tty, the resize (channel 4), exit code 5" \
	'^30 100 /dev/pts/[0-9]+ READY +40 120 command terminated with exit code 5 +EXIT 5' "$out"
kx logs web
# Two pipes: the order between stdout and stderr lines is not defined (nor on a kubelet).
check_eq "kubectl logs (stdout and stderr of the container)" "started
to-stderr" "$(sort <<<"$OUT")"

# A pod whose command ends: logs -f until the end, Succeeded / Failed with the exit code.
kx logs -f job-ok
check_eq "kubectl logs -f streams until the container ends" "one
two" "$OUT"
if wait_until 30 phase_is job-ok Succeeded; then pass "a pod whose command exits 0 is Succeeded"; else fail "a pod whose command exits 0 is Succeeded" "$(pod_json job-ok | jq -c .status)"; fi
check_eq "terminated: exitCode 0, reason Completed" "0 Completed" \
	"$(pod_json job-ok | jq -r '.status.containerStatuses[0].state.terminated | "\(.exitCode) \(.reason)"')"
kx create -f "$FIX/job-fail.yaml"
if wait_until 30 phase_is job-fail Failed; then pass "a pod whose command exits 7 is Failed"; else fail "a pod whose command exits 7 is Failed" "$(pod_json job-fail | jq -c .status)"; fi
check_match "terminated: exitCode 7, reason Error, startedAt, finishedAt" '^7 Error [0-9T:-]+Z [0-9T:-]+Z$' \
	"$(pod_json job-fail | jq -r '.status.containerStatuses[0].state.terminated | "\(.exitCode) \(.reason) \(.startedAt) \(.finishedAt)"')"

# ---------------------------------------------------------------- raw protocol (probe.py)
r=$(probe token exec v5.channel.k8s.io default web --stdin abc -- sh -c 'cat; echo E >&2; exit 9')
check_eq "raw exec v5: protocol, stdin to EOF, stdout, stderr, ping answered, close 1000" \
	"v5.channel.k8s.io abc E
 true 1000" "$(jq -r '"\(.protocol) \(.stdout) \(.stderr) \(.pong) \(.close)"' <<<"$r")"
check_eq "raw exec: the status channel carries NonZeroExitCode with cause ExitCode 9" \
	'{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"9"}]}}' \
	"$(jq -c '.status | {status, reason, details}' <<<"$r")"
r=$(probe token exec 'v4.channel.k8s.io' default web -- sh -c 'echo four')
check_eq "raw exec v4: negotiated, output, Success status" 'v4.channel.k8s.io four
 Success' "$(jq -r '"\(.protocol) \(.stdout) \(.status.status)"' <<<"$r")"
r=$(probe token exec 'v5.channel.k8s.io,v4.channel.k8s.io' default web -- true)
check_eq "raw exec: the first supported protocol offered is chosen" "v5.channel.k8s.io" "$(jq -r .protocol <<<"$r")"
r=$(probe token exec 'bogus.example' default web -- true)
check_eq "raw exec: an unsupported subprotocol is refused with 403" "403" "$(jq -r .http <<<"$r")"
r=$(probe token raw POST /api/v1/namespaces/default/pods "$(cat "$FIX/no-image.json")")
check_eq "422 Invalid: spec.containers[0].image Required value, with causes" \
	'422 Invalid Pod "noimage" is invalid: spec.containers[0].image: Required value [{"reason":"FieldValueRequired","message":"Required value","field":"spec.containers[0].image"}]' \
	"$(jq -r '"\(.status) \(.body.reason) \(.body.message) \(.body.details.causes | tojson)"' <<<"$r")"
r=$(probe token raw POST /api/v1/namespaces/default/pods "$(cat "$FIX/wrong-type.json")")
check_eq "400 BadRequest for a wrong JSON type (as the real decoder)" \
	'400 BadRequest Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container' \
	"$(jq -r '"\(.status) \(.body.reason) \(.body.message)"' <<<"$r")"
r=$(probe token raw POST /_fake/fail '{"path": "^/api/v1/namespaces/default/pods$", "method": "GET", "status": 429, "retry_after": 1, "times": 2}')
kx get pods -o name
hits=$(probe token raw GET /_fake/fail | jq '.body[0].hits')
check_eq "429 + Retry-After: kubectl (client-go) retries and succeeds" "0 2" "$RC $hits"
probe token raw DELETE /_fake/fail >/dev/null
r=$(probe token raw POST /_fake/fail '{"path": "^/api/v1/namespaces/default/pods/web$", "method": "GET", "status": 500, "message": "etcdserver: request timed out", "times": 1}')
kx get pod web
check_contains "500 InternalError as kubectl prints it" "$ERR" "Error from server (InternalError): etcdserver: request timed out"
probe token raw DELETE /_fake/fail >/dev/null

# watch: ADDED for the current state (no resourceVersion), then changes as they happen.
probe token watch '/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dw&timeoutSeconds=8' 8 >"$AC_TMP/watch.json" &
wpid=$!
sleep 1
printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w1","labels":{"app":"w"}},"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}' >"$AC_TMP/w1.json"
kx create -f "$AC_TMP/w1.json"
wait_until 30 phase_is w1 Succeeded
kx delete pod w1
wait "$wpid"
w=$(cat "$AC_TMP/watch.json")
check_match "watch: ADDED, MODIFIED up to Succeeded, DELETED, as chunked JSON lines" \
	'^200 application/json ADDED:w1 (MODIFIED:w1 )+DELETED:w1$' \
	"$(jq -r '"\(.status) \(.contentType) \([.events[] | "\(.type):\(.name)"] | join(" "))"' <<<"$w")"
check_eq "watch: resourceVersions increase" "true" \
	"$(jq '[.events[].rv | tonumber] as $r | $r == ($r | sort) and ($r | unique | length) == ($r | length)' <<<"$w")"

# ---------------------------------------------------------------- error answers as kubectl prints them
kx get pod nope
check_eq "404 as kubectl prints it" 'Error from server (NotFound): pods "nope" not found' "$ERR"
kx create -f "$FIX/pod.yaml"
check_eq "409 as kubectl prints it" 'Error from server (AlreadyExists): error when creating "'"$FIX"'/pod.yaml": pods "web" already exists' "$ERR"
sed 's/name: web/name: Bad_Name/' "$FIX/pod.yaml" >"$AC_TMP/badname.yaml"
kx create -f "$AC_TMP/badname.yaml"
check_eq "422 for a bad name as kubectl prints it" \
	"The Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')" "$ERR"
kx create -f "$FIX/unknown-field.yaml"
check_eq "a misspelt field is refused (fieldValidation=Strict)" \
	"Error from server (BadRequest): error when creating \"$FIX/unknown-field.yaml\": Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].securityContext.allowPriviledgeEscalation\"" "$ERR"
kx --context limited create -f "$FIX/job-ok.yaml"
check_eq "403 (RBAC) as kubectl prints it" \
	'Error from server (Forbidden): error when creating "'"$FIX"'/job-ok.yaml": pods is forbidden: User "limited" cannot create resource "pods" in API group "" in the namespace "default"' "$ERR"
kx --context limited get pods -o name
check_eq "the limited user may still list pods" "0" "$RC"
kx --context limited exec web -- true
check_eq "403 on pods/exec (the WebSocket GET needs create) as kubectl prints it" \
	'Error from server (Forbidden): pods "web" is forbidden: User "limited" cannot create resource "pods/exec" in API group "" in the namespace "default"' "$ERR"

# ---------------------------------------------------------------- pending pods
kx create -f "$FIX/big.yaml"
big() { [ "$(K get pod big -o json | jq -r '.status.conditions[0] | "\(.type) \(.status) \(.reason)"')" = "PodScheduled False Unschedulable" ]; }
if wait_until 20 big; then pass "over the node's memory: PodScheduled False Unschedulable"; else fail "over the node's memory: PodScheduled False Unschedulable" "$(pod_json big | jq -c .status)"; fi
check_eq "Unschedulable message shape" \
	"Pending 0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod." \
	"$(pod_json big | jq -r '"\(.status.phase) \(.status.conditions[0].message)"')"
kx create -f "$FIX/pull.yaml"
pull() { [[ "$(K get pod pull -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}')" =~ ^(ErrImagePull|ImagePullBackOff)$ ]]; }
if wait_until 20 pull; then pass "an image named doesnotexist: waiting ErrImagePull/ImagePullBackOff"; else fail "an image named doesnotexist: waiting ErrImagePull/ImagePullBackOff" "$(pod_json pull | jq -c .status)"; fi
check_eq "... and the pod stays Pending" "Pending" "$(pod_phase pull)"
kx logs pull
check_eq "logs of a container that never started, as kubectl prints it" \
	'Error from server (BadRequest): container "c" in pod "pull" is waiting to start: trying and failing to pull image' "$ERR"

# ---------------------------------------------------------------- networkpolicies
kx create -f "$FIX/netpol.yaml"
check_eq "networkpolicy create" "networkpolicy.networking.k8s.io/agentcell-box created" "$OUT"
kx get networkpolicy agentcell-box -o json
check_eq "networkpolicy get: kind, group, spec, generation" \
	'NetworkPolicy networking.k8s.io/v1 {"agentcell.dev/sandbox":"box"} ["Ingress","Egress"] 1' \
	"$(jq -c -r '"\(.kind) \(.apiVersion) \(.spec.podSelector.matchLabels | tojson) \(.spec.policyTypes | tojson) \(.metadata.generation)"' <<<"$OUT")"
kx get netpol -l agentcell.dev/managed-by=agentcell -o name
check_eq "networkpolicy list by label (short name netpol)" "networkpolicy.networking.k8s.io/agentcell-box" "$OUT"
kx delete networkpolicy agentcell-box
check_eq "networkpolicy delete" 'networkpolicy.networking.k8s.io "agentcell-box" deleted' "$OUT"
kx get networkpolicy agentcell-box
check_eq "networkpolicy is gone (404 with the group)" \
	'Error from server (NotFound): networkpolicies.networking.k8s.io "agentcell-box" not found' "$ERR"

# ---------------------------------------------------------------- namespaces
kx create namespace team1
check_eq "kubectl create namespace (a protobuf body from kubectl's typed client)" "namespace/team1 created" "$OUT"
kx -n team1 apply -f "$FIX/job-ok.yaml"
check_eq "kubectl apply into the new namespace" "pod/job-ok created" "$OUT"
kx -n team1 apply -f "$FIX/job-ok.yaml"
check_eq "kubectl apply again: unchanged" "pod/job-ok unchanged" "$OUT"
kx delete namespace team1
check_eq "kubectl delete namespace (Terminating, then gone with its pods)" 'namespace "team1" deleted' "$OUT"
kx -n team1 get pods -o name
check_eq "... its pods are gone" "" "$OUT"
kx create -n nope -f "$FIX/job-ok.yaml"
check_eq "creating in a namespace that does not exist" \
	'Error from server (NotFound): error when creating "'"$FIX"'/job-ok.yaml": namespaces "nope" not found' "$ERR"

# ---------------------------------------------------------------- run --rm -i (attach)
out=$(printf 'hi-there\n' | K run t1 --rm -i --restart=Never --image=busybox -- sh -c 'read x; echo "got $x"; exit 4' 2>"$AC_TMP/run.err")
rc=$?
check_eq "kubectl run --rm -i: attach passes stdin and shows output" "got hi-there" "$(head -1 <<<"$out")"
check_eq "kubectl run --rm -i: the container's exit code" "4" "$rc"
check_contains "kubectl run --rm -i: the pod's end as kubectl reports it" "$(cat "$AC_TMP/run.err")" 'pod default/t1 terminated (Error)'
check_contains "kubectl run --rm -i: the pod is deleted" "$out" 'pod "t1" deleted'
check_eq "... and it is gone" "true" "$(pod_gone t1 && echo true)"

# ---------------------------------------------------------------- delete, clean-up
sb_before=$(n_sandboxes)
check_gt "each scheduled pod is an agentcell sandbox" "$sb_before" 0
kx delete pod web
check_eq "kubectl delete pod (waits for the deletion)" 'pod "web" deleted' "$OUT"
check_eq "the pod is gone" "true" "$(pod_gone web && echo true)"
web_procs() { pgrep -f 'while :; do sleep 3600' | grep -vx "$$" || true; }
if wait_until 20 test -z "$(web_procs)"; then pass "deleting the pod killed its processes"; else fail "deleting the pod killed its processes" "$(web_procs)"; fi
kx delete pods -l app=job
check_match "delete -l app=job (deletecollection by label)" 'pod "job-(ok|fail)" deleted' "$OUT"

stop_server k8s "$K8S_PID"
check_eq "server stop (SIGTERM) removed every sandbox it made" "0" "$(n_sandboxes)"
check_eq "... and no process of theirs is left" "" "$(web_procs)"
