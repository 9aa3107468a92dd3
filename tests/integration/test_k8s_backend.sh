#!/usr/bin/env bash
# The Kubernetes backend (--backend kubernetes / k8s) against the test API server
# (tests/k8s/fake_apiserver.py, whose pods run as native sandboxes of its own
# AGENTCELL_HOME): create, start, exec (streams, exit codes, stdin, env, cwd, timeout with
# nothing left running), stop, start again, remove; the pod's hardening fields and the
# NetworkPolicy as the server recorded them (read with kubectl); the API server's errors
# (401, 403) and an image pull failure, with nothing left in the cluster or the store;
# one-shot runs; doctor's list of labelled objects no sandbox owns.
#
# Environment (besides lib.sh's): KUBECTL, the kubectl binary (default: kubectl on PATH).
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes backend"
pod_json() { K get pod "$1" -o json 2>/dev/null; }
exists() { K get "$1" "$2" >/dev/null 2>&1; }
# Every pod and policy in the namespace, by name.
cluster_objects() { K get pods,networkpolicies -o name 2>/dev/null | sort | tr '\n' ' '; }
BOX=kb$(uniq_id)
POD=agentcell-$BOX

# ---------------------------------------------------------------- lifecycle
check_ac "create --backend kubernetes" create "$BOX" --backend kubernetes
ST=$(cat "$AGENTCELL_HOME/sandboxes/$BOX.json")
check_eq "the state records the cluster: kubeconfig, context, namespace" \
	"$(readlink -f "$KUBECONFIG") token default" \
	"$(jq -r '.kubernetes | "\(.kubeconfig) \(.context) \(.namespace)"' <<<"$ST")"
check_eq "create makes nothing in the cluster" "" "$(cluster_objects)"
check_ac "start" start "$BOX"
check_eq "the pod runs" "Running" "$(K get pod "$POD" -o jsonpath='{.status.phase}')"
check "the NetworkPolicy exists while the network is off" exists networkpolicy "$POD"
order=$("$PY" "$K8S_DIR/probe.py" "$KUBECONFIG" token raw GET /_fake/requests |
	jq -r '[.body[] | select(.method == "POST") | .path | select(test("/pods$|/networkpolicies$")) | sub(".*/"; "")] | .[:2] | join(" ")')
check_eq "the NetworkPolicy is created before the pod" "networkpolicies pods" "$order"
acx info "$BOX" --json
check_eq "info says running" "running" "$(jq -r .status <<<"$OUT")"

# The hardening, as the server recorded it.
PJ=$(pod_json "$POD")
check_eq "container securityContext: no privilege escalation, drop ALL, RuntimeDefault" \
	'false ["ALL"] RuntimeDefault' \
	"$(jq -c -r '.spec.containers[0].securityContext | "\(.allowPrivilegeEscalation) \(.capabilities.drop | tojson) \(.seccompProfile.type)"' <<<"$PJ")"
check_eq "automountServiceAccountToken false, enableServiceLinks false" "false false" \
	"$(jq -r '.spec | "\(.automountServiceAccountToken) \(.enableServiceLinks)"' <<<"$PJ")"
check_eq "no host namespaces" "null null null" \
	"$(jq -r '.spec | "\(.hostNetwork // null) \(.hostPID // null) \(.hostIPC // null)"' <<<"$PJ")"
res=$(jq -c '.spec.containers[0].resources' <<<"$PJ")
check_eq "resources: requests equal limits" "true" "$(jq '.requests == .limits and (.limits.memory != null) and (.limits.cpu != null)' <<<"$res")"
check_eq "labels: sandbox and managed-by" "$BOX agentcell" \
	"$(jq -r '.metadata.labels | "\(.["agentcell.dev/sandbox"]) \(.["agentcell.dev/managed-by"])"' <<<"$PJ")"
NP=$(K get networkpolicy "$POD" -o json)
check_eq "the NetworkPolicy denies all ingress and egress of the pod" \
	'["Ingress","Egress"] null null '"$BOX" \
	"$(jq -c -r '.spec | "\(.policyTypes | tojson) \(.ingress // null) \(.egress // null) \(.podSelector.matchLabels["agentcell.dev/sandbox"])"' <<<"$NP")"

# ---------------------------------------------------------------- exec
acx exec "$BOX" -- sh -c 'echo out; echo err >&2; exit 3'
check_eq "exec: stdout" "out" "$OUT"
check_eq "exec: stderr" "err" "$ERR"
check_rc "exec: exit code 3 from the status channel" 3
acx exec "$BOX" -- true
check_rc "exec: exit code 0" 0
acx exec "$BOX" -- no-such-command-here
check_rc "exec: a missing command exits 127" 127
acx exec "$BOX" -- sh -c 'kill -TERM $$'
check_rc "exec: a command killed by SIGTERM exits 143" 143
printf 'line1\nline2\n' >"$AC_TMP/in"
ac exec -i "$BOX" -- sh -c 'wc -l; echo end' <"$AC_TMP/in" >"$AC_TMP/o" 2>&1
check_eq "exec -i: stdin reaches the command and its end is seen" "2
end" "$(sed 's/^ *//' "$AC_TMP/o")"
acx exec --env FOO=bar --env 'SP=a b' -w /tmp "$BOX" -- sh -c 'echo "$FOO|$SP|$(pwd)"'
check_eq "exec --env and -w" "bar|a b|/tmp" "$OUT"
acx exec "$BOX" -- sh -c 'seq 1 20000 | tail -1'
check_eq "exec: a larger output arrives whole" "20000" "$OUT"
t0=$SECONDS
acx exec --timeout 2 "$BOX" -- sh -c 'sleep 300 & sleep 301; echo never'
check_rc "exec --timeout: exit 124" 124
check_le "exec --timeout ends near its deadline" $((SECONDS - t0)) 15
check_not_contains "exec --timeout: the command did not finish" "$OUT" "never"
left() { ac exec "$BOX" -- sh -c 'ps -eo args' 2>/dev/null | grep -E '^sleep 30[01]' || true; }
check_eq "exec --timeout: nothing of the command is left running (seen by a second exec)" "" "$(left)"

# ---------------------------------------------------------------- stop, start, remove
check_ac "stop" stop "$BOX"
check_fail "stop deleted the pod" exists pod "$POD"
check "the NetworkPolicy is kept while the sandbox is stopped" exists networkpolicy "$POD"
acx exec "$BOX" -- true
check_rc "exec on a stopped sandbox fails" 1
check_contains "... saying it is not running" "$ERR" "not running"
check_ac "start again" start "$BOX"
acx exec "$BOX" -- echo again
check_out "exec after the second start" "again"
check_ac "remove" remove "$BOX"
check_eq "remove deleted the pod and the NetworkPolicy" "" "$(cluster_objects)"

# ---------------------------------------------------------------- alias, one-shot runs
acx run --backend k8s -- sh -c 'echo run-out; echo run-err >&2; exit 7'
check_eq "run --backend k8s: output" "run-out run-err 7" "$OUT $ERR $RC"
check_eq "run leaves nothing in the cluster" "" "$(cluster_objects)"
acx run --backend k8s --timeout 2 -- sleep 300
check_rc "run --timeout: exit 124" 124
check_eq "run --timeout leaves nothing in the cluster" "" "$(cluster_objects)"
check_eq "runs leave nothing in the store" "" "$(ac_names | tr '\n' ' ')"

# ---------------------------------------------------------------- errors
cat >"$AC_TMP/bad.toml" <<EOF
[kubernetes]
context = "badtoken"
EOF
acx create e1 --backend k8s --config "$AC_TMP/bad.toml"
check_rc "401: create fails" 1
check_error_line "401: one error line"
check_contains "401: it names the cluster and the cause" "$ERR" "cluster 'fake': unauthorized"
check_eq "401: nothing in the store" "" "$(ac_names | tr '\n' ' ')"
cat >"$AC_TMP/lim.toml" <<EOF
[kubernetes]
context = "limited"
EOF
check_ac "403 user: create (it may list pods)" create e2 --backend k8s --config "$AC_TMP/lim.toml"
acx start e2
check_rc "403: start fails" 1
check_error_line "403: one error line"
check_contains "403: the RBAC message" "$ERR" 'forbidden (HTTP 403): networkpolicies.networking.k8s.io is forbidden: User "limited"'
acx remove e2
check_contains "the state keeps the context it was made with (no config given now)" "$ERR" 'User "limited" cannot delete'
rm -f "$AGENTCELL_HOME/sandboxes/e2.json"
check_eq "403: nothing left in the cluster" "" "$(cluster_objects)"
check_ac "create with an image that does not exist" create e3 --backend k8s --image registry.example/doesnotexist:1
acx start e3
check_rc "image pull failure: start fails" 1
check_contains "image pull failure: the cluster's reason" "$ERR" "ErrImagePull"
check_eq "image pull failure: nothing left in the cluster" "" "$(cluster_objects)"
check_ac "remove e3" remove e3
acx run --backend k8s --image doesnotexist/x -- true
check_contains "run with an image that does not exist: the reason" "$ERR" "ErrImagePull"
check_eq "... nothing left in the cluster" "" "$(cluster_objects)"
check_eq "... nothing in the store" "" "$(ac_names | tr '\n' ' ')"

printf '[kubernetes]\nnode_selector = ["x"]\n' >"$AC_TMP/ns.toml"
acx create e4 --backend k8s --config "$AC_TMP/ns.toml"
check_rc "[kubernetes] node_selector must be a table: exit 2" 2
check_contains "... naming the key" "$ERR" "kubernetes.node_selector must be a table of strings"
printf '[kubernetes]\nnamespaces = "x"\n' >"$AC_TMP/uk.toml"
acx create e4 --backend k8s --config "$AC_TMP/uk.toml"
check_contains "[kubernetes]: an unknown key is refused" "$ERR" "unknown key 'namespaces' in [kubernetes]"

# ---------------------------------------------------------------- doctor
K run agentcell-orphan --image=alpine:3.20 --labels=agentcell.dev/managed-by=agentcell \
	--restart=Never --command -- sleep 3600 >/dev/null 2>&1
acx doctor
check_contains "doctor reports the cluster" "$OUT" "v1.32.0-fake"
check_match "doctor lists a labelled pod no sandbox owns" "unknown agentcell pod +agentcell-orphan has no state file" "$OUT"
check "doctor did not delete it" exists pod agentcell-orphan
K delete pod agentcell-orphan --grace-period=1 >/dev/null 2>&1
