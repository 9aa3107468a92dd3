#!/usr/bin/env bash
# The lifecycle commands on the Kubernetes backend (tests/k8s/fake_apiserver.py): list and
# info, labels on the pod, extend, a policy's auto-stop applied by reconcile (the pod goes,
# the state and policy stay), archive and recover, an expired sandbox removed by gc (pod
# and NetworkPolicy too), resize refused clearly, and the audit log of each.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes lifecycle"
exists() { K get "$1" "$2" >/dev/null 2>&1; }
ID=$(uniq_id)
A=la$ID

check_ac "create $A with labels and a policy" create "$A" --backend k8s --label team=infra \
	--auto-stop-after 3s --auto-archive-after 1h
check_ac "start $A" start "$A"
acx list --json
check_eq "list shows it running on kubernetes" "running kubernetes" \
	"$(jq -r --arg n "$A" '.[] | select(.name == $n) | "\(.status) \(.backend)"' <<<"$OUT")"
acx info "$A" --json
check_eq "info names the backend" kubernetes "$(jq -r .backend <<<"$OUT")"
check_eq "the sandbox's label is on the pod" infra \
	"$(K get pod "agentcell-$A" -o jsonpath='{.metadata.labels.team}')"

# auto-stop: reconcile stops it (the pod goes), the state stays.
sleep 4
acx reconcile --json
check_eq "reconcile stops it after its idle time" stop \
	"$(jq -r --arg n "$A" '.[] | select(.name == $n) | .action' <<<"$OUT")"
check "the pod is gone" test -z "$(K get pod "agentcell-$A" -o name 2>/dev/null)"
check "the NetworkPolicy stays while it is stopped" exists networkpolicy "agentcell-$A"
acx info "$A" --json
check_eq "info says stopped" stopped "$(jq -r .status <<<"$OUT")"
check_ac "start again" start "$A"
acx exec "$A" -- sh -c 'echo back'
check_out "exec after the restart" back

# archive and recover
check_ac "policy: archive at once" policy "$A" --auto-stop-after 1h --auto-archive-after 1s
sleep 2
acx reconcile --json
check_contains "reconcile archives it" "$OUT" '"archive'
acx info "$A" --json
check_eq "info says archived" archived "$(jq -r .status <<<"$OUT")"
check "an archived sandbox has no pod" test -z "$(K get pod "agentcell-$A" -o name 2>/dev/null)"
check_ac "recover" recover "$A"
check_ac "start after recover" start "$A"
check_eq "the pod runs again" Running "$(K get pod "agentcell-$A" -o jsonpath='{.status.phase}')"

# resize: refused with one line, nothing changed
acx resize "$A" --memory 256
check_rc "resize on kubernetes: exit 1" 1
check_error_line "resize: one error line"
check_contains "... saying the backend cannot" "$ERR" "not supported by the kubernetes backend"
check_ac "stop $A" stop "$A"
check_ac "resize of the stopped sandbox" resize "$A" --memory 256
check_ac "start $A" start "$A"
check_eq "the new pod has the new memory limit" 256Mi \
	"$(K get pod "agentcell-$A" -o jsonpath='{.spec.containers[0].resources.limits.memory}')"

# --disk is the pod's ephemeral-storage limit (and request)
D=ld$ID
check_ac "create $D --disk 64" create "$D" --backend k8s --disk 64
check_ac "start $D" start "$D"
check_eq "the pod's ephemeral-storage limit and request are 64Mi" "64Mi 64Mi" \
	"$(K get pod "agentcell-$D" -o jsonpath='{.spec.containers[0].resources.limits.ephemeral-storage} {.spec.containers[0].resources.requests.ephemeral-storage}')"
check_ac "remove $D" remove "$D"

# TTL: extend, then expiry and gc
E=le$ID
check_ac "create $E with a 2s TTL" create "$E" --backend k8s --ttl 2s
check_ac "start $E" start "$E"
check_ac "extend $E by 2s" extend "$E" --by 2s
sleep 5
acx gc --json
check_contains "gc removes the expired sandbox" "$OUT" "\"$E\""
check "its pod is gone" test -z "$(K get pod "agentcell-$E" -o name 2>/dev/null)"
check "its NetworkPolicy is gone" test -z "$(K get networkpolicy "agentcell-$E" -o name 2>/dev/null)"
check "its state is gone" test ! -e "$AGENTCELL_HOME/sandboxes/$E.json"

acx audit --sandbox "$A" --json
check_eq "the audit log has each step" "created started stopped started stopped archived recovered started stopped resized started" \
	"$(jq -r '[.[] | .event | select(. != "exec" and . != "policy_changed")] | join(" ")' <<<"$OUT")"
check_ac "remove $A" remove "$A"
check_eq "nothing of the sandboxes is left in the cluster" "" \
	"$(K get pods,networkpolicies -l agentcell.dev/managed-by=agentcell -o name 2>/dev/null)"
