#!/usr/bin/env bash
# gc and doctor on the Kubernetes backend (tests/k8s/fake_apiserver.py): what this home
# made carries its owner label (HOME/kubernetes/owner); a pod and policy left by a killed
# run are listed by doctor and deleted by gc, in the cluster the run used; a run in
# progress, a sandbox's pod and another home's objects are never deleted; another home's
# gc leaves this home's leftovers alone.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_k8s_fake "kubernetes gc"
exists() { K get "$1" "$2" >/dev/null 2>&1; }
# The agentcell objects in the namespace (pods and policies), by name.
objects() { K get pods,networkpolicies -l agentcell.dev/managed-by=agentcell -o name 2>/dev/null | sort | tr '\n' ' '; }
# Pods labelled for this home that are not the given sandbox's.
run_pods() { K get pods -l agentcell.dev/managed-by=agentcell -o name 2>/dev/null | grep -v "pod/agentcell-$1\$" | paste -sd' '; }

BOX=gc$(uniq_id)
check_ac "create and start a kubernetes sandbox" create "$BOX" --backend kubernetes
check_ac "start $BOX" start "$BOX"
OWNER=$(cat "$AGENTCELL_HOME/kubernetes/owner" 2>/dev/null)
check_match "this home has an owner id" '^[0-9a-f]{16}$' "$OWNER"
check_eq "the sandbox's pod carries it" "$OWNER" \
	"$(K get pod "agentcell-$BOX" -o jsonpath='{.metadata.labels.agentcell\.dev/owner}')"
check_eq "its NetworkPolicy too" "$OWNER" \
	"$(K get networkpolicy "agentcell-$BOX" -o jsonpath='{.metadata.labels.agentcell\.dev/owner}')"
check_match "the pod names its creator (pid:starttime:boot id)" '^[0-9]+:[0-9]+:[0-9a-f-]{36}$' \
	"$(K get pod "agentcell-$BOX" -o jsonpath='{.metadata.annotations.agentcell\.dev/creator}')"
check "the cluster is recorded for gc" test "$(ls "$AGENTCELL_HOME/kubernetes/clusters" | wc -l)" -eq 1

# A run in progress: its pod has no state in the store, but its creator lives.
timeout -k 5 120 "$AGENTCELL" run --backend kubernetes -- sleep 100 >/dev/null 2>&1 &
RUNPID=$!
bg_track "$RUNPID"
wait_until 60 test -n "$(run_pods "$BOX")"
check "the run's pod is up" test -n "$(run_pods "$BOX")"
RUNPOD=$(run_pods "$BOX")
check_ac "gc while the run is in progress" gc
check_eq "gc left the run's pod alone" "$RUNPOD" "$(run_pods "$BOX")"
check "gc left the sandbox's pod alone" exists pod "agentcell-$BOX"

# Killed: what it made is a leftover of this home.
kill -KILL "$(pgrep -P "$RUNPID" -x agentcell || echo "$RUNPID")" 2>/dev/null
kill -KILL "$RUNPID" 2>/dev/null
wait "$RUNPID" 2>/dev/null
check "the killed run's pod is still there" test -n "$(run_pods "$BOX")"
acx doctor
check_match "doctor lists the killed run's pod as this home's leftover" \
	"WARN +kubernetes pod +.*default/${RUNPOD#pod/}: made by this home" "$OUT"
check "doctor did not delete it" test "$RUNPOD" = "$(run_pods "$BOX")"

# Another home, same cluster: its gc never deletes this home's leftovers.
HOME2=$(mktemp -d /tmp/agentcell-it-home2.XXXXXX)
at_exit "AGENTCELL_HOME=$HOME2 $AGENTCELL remove -f other$BOX >/dev/null 2>&1; rm -rf --one-file-system $HOME2"
AGENTCELL_HOME=$HOME2 ac create "other$BOX" --backend kubernetes >/dev/null 2>&1
check "another home uses the same cluster" test -s "$HOME2/kubernetes/owner"
check "with an owner id of its own" test "$(cat "$HOME2/kubernetes/owner")" != "$OWNER"
AGENTCELL_HOME=$HOME2 ac gc >/dev/null 2>&1
check_eq "another home's gc left this home's leftover" "$RUNPOD" "$(run_pods "$BOX")"

# A labelled pod of no home of ours (made by hand, or by another machine).
K run agentcell-foreign --image=alpine:3.20 --labels=agentcell.dev/managed-by=agentcell,agentcell.dev/owner=0123456789abcdef \
	--restart=Never --command -- sleep 300 >/dev/null 2>&1
acx gc
check_contains "gc says what it removed" "$ERR" "removed kubernetes pod"
check_eq "gc deleted the killed run's pod and policy" "" "$(run_pods "$BOX" | grep -v agentcell-foreign)"
check "gc left the sandbox's pod" exists pod "agentcell-$BOX"
check "gc left the sandbox's NetworkPolicy" exists networkpolicy "agentcell-$BOX"
check "gc left another owner's pod" exists pod agentcell-foreign
acx doctor
check_match "doctor shows another owner's pod, not deleted" "unknown agentcell pod +agentcell-foreign has no state file" "$OUT"
K delete pod agentcell-foreign --grace-period=1 >/dev/null 2>&1

# Once nothing of this home is left in the cluster, gc stops asking it.
check_ac "remove $BOX" remove "$BOX"
check_ac "gc" gc
check_eq "nothing of this home is left in the cluster" "" "$(objects | tr ' ' '\n' | grep -v "other$BOX" | tr -d '\n')"
check_eq "the cluster is forgotten" "0" "$(ls "$AGENTCELL_HOME/kubernetes/clusters" | wc -l)"
