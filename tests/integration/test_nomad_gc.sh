#!/usr/bin/env bash
# gc and doctor on the Nomad backend (tests/nomad/fake_nomad.py): what this home made
# carries its owner id in Meta agentcell-owner (HOME/nomad/owner), and every agent and
# namespace it used is recorded (HOME/nomad/agents/). A job of this home that no sandbox
# owns -- left by a killed run, by a lost state file, or registered by hand -- is listed by
# doctor and purged by gc; a run in progress, a sandbox's job, another home's job and a job
# without agentcell-managed=true are never touched (doctor shows other homes' jobs). An
# agent that is down or refuses (403) is one clear line; gc goes on with the rest and
# exits 0, as the Kubernetes gc does.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_nomad_fake "nomad gc" "" --node-cpu 16000 --node-memory 8192 --namespace team
ADDR1=$NOMAD_ADDR
ID=$(uniq_id)
BOX=gc$ID
# The IDs of the agent's jobs (purged ones are gone, stopped ones stay), sorted.
jobs() { NP GET "/v1/jobs" | jq -r '[.[].ID] | sort | join(" ")'; }
has_job() { NP GET "/v1/job/$1" >/dev/null; [ "$NP_STATUS" = 200 ]; }
run_jobs() { NP GET "/v1/jobs?prefix=agentcell-run-" | jq -r '[.[].ID] | sort | join(" ")'; }
# Registers a copy of $BOX's job as ID with Meta from the JSON object $2 (by hand, as a
# user or another machine would), in namespace $3 (default: default).
register() {
	jq -c --arg id "$1" --argjson meta "$2" --arg ns "${3:-default}" \
		'{Job: ((.Job // .) + {ID: $id, Name: $id, Meta: $meta, Namespace: $ns})}' \
		"$NSTATE/jobs/agentcell-$BOX.json" >"$AC_TMP/job.json"
	NP PUT "/v1/jobs?namespace=${3:-default}" "@$AC_TMP/job.json" >/dev/null
	[ "$NP_STATUS" = 200 ] || { echo "$NP_STATUS $NP_BODY"; return 1; }
}

check_ac "create $BOX --backend nomad" create "$BOX" --backend nomad
check_ac "start $BOX" start "$BOX"
OWNER=$(cat "$AGENTCELL_HOME/nomad/owner" 2>/dev/null)
check_match "this home has an owner id" '^[0-9a-f]{16}$' "$OWNER"
check_eq "the sandbox's job carries it" "$OWNER" \
	"$(NP GET "/v1/job/agentcell-$BOX" | jq -r '.Meta["agentcell-owner"]')"
check "the agent is recorded for gc" test "$(ls "$AGENTCELL_HOME/nomad/agents" | wc -l)" -eq 1
check_eq "with its address and no token" "$ADDR1 null" \
	"$(jq -r '"\(.address) \(.token)"' "$AGENTCELL_HOME"/nomad/agents/*.json)"
acx doctor
check_match "doctor reports the agent and its version" \
	"ok +nomad agent +[0-9.]+ at $ADDR1 \\(from NOMAD_ADDR, namespace default\\)" "$OUT"
check_not_contains "doctor lists no leftover of a live sandbox" "$OUT" "agentcell-$BOX"

# A run in progress: its job has no state in the store, but its creator lives.
timeout -k 5 120 "$AGENTCELL" run --backend nomad -- sleep 100 >/dev/null 2>&1 &
RUNPID=$!
bg_track "$RUNPID"
wait_until 60 test -n "$(run_jobs)"
RUNJOB=$(run_jobs)
check_match "the run's job is up" '^agentcell-run-[0-9a-f]+$' "$RUNJOB"
check_match "it names its creator (pid:starttime:boot id)" '^[0-9]+:[0-9]+:[0-9a-f-]{36}$' \
	"$(NP GET "/v1/job/$RUNJOB" | jq -r '.Meta["agentcell-creator"]')"
check_ac "gc while the run is in progress" gc
check "gc left the run's job alone" has_job "$RUNJOB"
check "gc left the sandbox's job alone" has_job "agentcell-$BOX"

# Killed: what it made is a leftover of this home.
kill -KILL "$(pgrep -P "$RUNPID" -x agentcell || echo "$RUNPID")" 2>/dev/null
kill -KILL "$RUNPID" 2>/dev/null
wait "$RUNPID" 2>/dev/null
check "the killed run's job is still there" has_job "$RUNJOB"

# A lost state file: the sandbox's job is nobody's now.
LOST=lost$ID
check_ac "create $LOST" create "$LOST" --backend nomad
check_ac "start $LOST" start "$LOST"
rm -f "$AGENTCELL_HOME/sandboxes/$LOST.json"
# The same in another namespace: the namespace this home used is visited too.
NSBOX=ns$ID
NOMAD_NAMESPACE=team check_ac "create $NSBOX in namespace team" create "$NSBOX" --backend nomad
check_ac "start $NSBOX" start "$NSBOX"
rm -f "$AGENTCELL_HOME/sandboxes/$NSBOX.json"
# A job of the live sandbox's id, but in another namespace: not that sandbox's.
check "a job of $BOX's id in namespace team, with this home's Meta" \
	register "agentcell-$BOX" "{\"agentcell-managed\":\"true\",\"agentcell-owner\":\"$OWNER\",\"agentcell-sandbox\":\"$BOX\"}" team
# Registered by hand: this home's Meta, no sandbox, no creator.
check "a job registered by hand with this home's Meta" \
	register "agentcell-hand$ID" "{\"agentcell-managed\":\"true\",\"agentcell-owner\":\"$OWNER\",\"agentcell-sandbox\":\"hand$ID\"}"
# Not agentcell's to purge: another owner's, and one without agentcell-managed=true.
check "a managed job of another owner" \
	register "agentcell-foreign$ID" '{"agentcell-managed":"true","agentcell-owner":"0123456789abcdef"}'
check "a job of this owner not marked managed" \
	register "agentcell-unmanaged$ID" "{\"agentcell-owner\":\"$OWNER\"}"

acx doctor
for j in "$RUNJOB" "agentcell-$LOST" "agentcell-hand$ID"; do
	check_match "doctor lists $j as this home's leftover" \
		"WARN +nomad job +nomad at $ADDR1 default/$j: made by this home" "$OUT"
done
for j in "agentcell-$NSBOX" "agentcell-$BOX"; do
	check_match "doctor lists team/$j as this home's leftover" \
		"WARN +nomad job +nomad at $ADDR1 team/$j: made by this home" "$OUT"
done
check_not_contains "doctor does not list the live sandbox's own job" "$OUT" "default/agentcell-$BOX"
check_match "doctor shows the other owner's job, never purged" \
	"WARN +unknown agentcell nomad job +agentcell-foreign$ID has no state file here; not deleted. Remove it with: nomad job stop -purge -namespace default agentcell-foreign$ID" "$OUT"
check_not_contains "doctor does not list the unmanaged job" "$OUT" "unmanaged$ID"
check "doctor purged nothing" has_job "agentcell-hand$ID"

# Another home, same agent: its gc never purges this home's leftovers; its own job is
# another owner's for this home.
HOME2=$(mktemp -d /tmp/agentcell-it-home2.XXXXXX)
at_exit "rm -rf --one-file-system $HOME2"
OTHER=other$ID
AGENTCELL_HOME=$HOME2 check_ac "another home creates $OTHER" create "$OTHER" --backend nomad
AGENTCELL_HOME=$HOME2 check_ac "and starts it" start "$OTHER"
check "another home runs a sandbox on the same agent" has_job "agentcell-$OTHER"
check "with an owner id of its own" test "$(cat "$HOME2/nomad/owner")" != "$OWNER"
AGENTCELL_HOME=$HOME2 ac gc >/dev/null 2>&1
check "another home's gc left this home's leftover" has_job "agentcell-hand$ID"
check "... and the killed run's job" has_job "$RUNJOB"

acx gc
check_rc "gc exits 0" 0
for j in "$RUNJOB" "agentcell-$LOST" "agentcell-hand$ID"; do
	check_contains "gc says it purged $j" "$ERR" "removed nomad job nomad at $ADDR1 default/$j"
	NP GET "/v1/job/$j" >/dev/null
	check_eq "gc purged $j" 404 "$NP_STATUS"
done
for j in "agentcell-$NSBOX" "agentcell-$BOX"; do
	check_contains "gc says it purged team/$j" "$ERR" "removed nomad job nomad at $ADDR1 team/$j"
	NP GET "/v1/job/$j?namespace=team" >/dev/null
	check_eq "gc purged team/$j" 404 "$NP_STATUS"
done
check "gc left the sandbox's job" has_job "agentcell-$BOX"
check "gc left the other owner's job" has_job "agentcell-foreign$ID"
check "gc left the unmanaged job" has_job "agentcell-unmanaged$ID"
check "gc left the other home's sandbox's job" has_job "agentcell-$OTHER"
acx exec "$BOX" -- echo alive
check_out "the sandbox still works" alive
check "the purges are audited" grep -q "leftover_removed.*default/agentcell-hand$ID" "$AGENTCELL_HOME/audit.jsonl"
acx doctor
check_not_contains "doctor lists no leftover of this home now" "$OUT" "made by this home"
acx gc
check_not_contains "a second gc has nothing to purge" "$ERR" "removed nomad job"
NP DELETE "/v1/job/agentcell-foreign$ID?purge=true" >/dev/null
NP DELETE "/v1/job/agentcell-unmanaged$ID?purge=true" >/dev/null
AGENTCELL_HOME=$HOME2 ac remove "$OTHER" >/dev/null 2>&1
check "the other home's sandbox is removed" test ! -e "$HOME2/sandboxes/$OTHER.json"

# An agent that is down: a second agent this home used, stopped since.
ac_nomad_fake "a second agent"
ADDR2=$NOMAD_ADDR
PID2=$NOMAD_PID
check_ac "create a sandbox on the second agent" create "two$ID" --backend nomad
check_ac "remove it" remove "two$ID"
check "both agents are recorded" test "$(ls "$AGENTCELL_HOME/nomad/agents" | wc -l)" -eq 2
kill -TERM "$PID2"
wait_until 30 sh -c "! kill -0 $PID2"
export NOMAD_ADDR=$ADDR1
touch "$AGENTCELL_HOME/locks/ghost$ID.lock" # a leftover of another kind
acx gc
check_rc "gc with an agent down exits 0" 0
check_match "it says which agent could not be checked, in one line" \
	"agentcell: gc: nomad jobs not checked: nomad at $ADDR2: [^
]*(refused|unreachable)" "$ERR"
check_eq "exactly one line about it" 1 "$(grep -c 'not checked' <<<"$ERR")"
check "the other leftovers are still removed" test ! -e "$AGENTCELL_HOME/locks/ghost$ID.lock"
check "the agent that is down stays recorded" test "$(ls "$AGENTCELL_HOME/nomad/agents" | wc -l)" -eq 2
acx doctor
check_match "doctor says so as a warning" "WARN +nomad jobs +not checked: nomad at $ADDR2" "$OUT"
check "the sandbox on the first agent is untouched" has_job "agentcell-$BOX"

# An agent with ACLs: a token that may read but not purge is refused, and said.
ac_nomad_fake "an agent with ACLs" "" --acl
ADDR3=$NOMAD_ADDR
ACLBOX=acl$ID
NOMAD_TOKEN=$(cat "$NSTATE/mgmt-token") ac create "$ACLBOX" --backend nomad >/dev/null 2>&1
NOMAD_TOKEN=$(cat "$NSTATE/mgmt-token") ac start "$ACLBOX" >/dev/null 2>&1
check "a sandbox runs there" has_job "agentcell-$ACLBOX"
rm -f "$AGENTCELL_HOME/sandboxes/$ACLBOX.json"
NOMAD_TOKEN=$(cat "$NSTATE/ro-token") acx gc
check_rc "gc with a read-only token exits 0" 0
check_match "it says the purge was refused (403), naming the job" \
	"agentcell: gc: nomad job not checked: nomad at $ADDR3: purge job agentcell-$ACLBOX: 403" "$ERR"
check "the job stays" has_job "agentcell-$ACLBOX"
NOMAD_TOKEN='' acx gc
check_match "without a token the listing is refused (403)" \
	"agentcell: gc: nomad jobs not checked: nomad at $ADDR3: list jobs: 403" "$ERR"
NOMAD_TOKEN=$(cat "$NSTATE/mgmt-token") acx gc
check_contains "with a token that may, gc purges it" "$ERR" \
	"removed nomad job nomad at $ADDR3 default/agentcell-$ACLBOX"
NP GET "/v1/job/agentcell-$ACLBOX" >/dev/null
check_eq "it is gone" 404 "$NP_STATUS"

# Once nothing of this home is left on an agent, gc stops asking it.
export NOMAD_ADDR=$ADDR1
check_ac "remove $BOX" remove "$BOX"
NOMAD_TOKEN=$(cat "$NSTATE/mgmt-token") acx gc
check_eq "the first and the ACL agent are forgotten, the one down is kept" "$ADDR2" \
	"$(jq -r .address "$AGENTCELL_HOME"/nomad/agents/*.json | sort | paste -sd' ')"
