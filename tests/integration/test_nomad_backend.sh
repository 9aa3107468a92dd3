#!/usr/bin/env bash
# The Nomad backend against the test agent (tests/nomad/fake_nomad.py): the lifecycle
# (create, start, exec, stop, start again, remove), the job the agent received (batch, no
# restarts, Meta, resources, each driver's hardening), placement failures with Nomad's
# reasons and nothing left, namespaces, the lifecycle commands, and errors as one line.
source "$(dirname "$0")/lib.sh"
ac_setup
ac_nomad_fake "nomad backend" "" --drivers docker,exec --namespace team
ID=$(uniq_id)
A=nb$ID
# job ID: the body the agent recorded for it.
job() { jq -c '.Job // .' "$NSTATE/jobs/$1.json"; }
jobs() { NP GET /v1/jobs | jq -r '[.[].ID] | sort | join(" ")'; }

check_ac "create $A --backend nomad" create "$A" --backend nomad --memory 256 --cpus 0.5 --pids 64
st=$(cat "$AGENTCELL_HOME/sandboxes/$A.json")
check_eq "the state pins the agent and the job" "$NOMAD_ADDR agentcell-$A docker" \
	"$(jq -r '"\(.nomad.address) \(.nomad.job) \(.nomad.driver)"' <<<"$st")"
check_eq "create registers nothing" "" "$(jobs)"
check_ac "start $A" start "$A"
acx list --json
check_eq "list shows it running on nomad" "running nomad" \
	"$(jq -r --arg n "$A" '.[] | select(.name == $n) | "\(.status) \(.backend)"' <<<"$OUT")"
J=$(job "agentcell-$A")
check_eq "the job is a batch job with Meta" "batch $A true" \
	"$(jq -r '"\(.Type) \(.Meta["agentcell-sandbox"]) \(.Meta["agentcell-managed"])"' <<<"$J")"
check_eq "no restart and no reschedule" "0 0" \
	"$(jq -r '.TaskGroups[0] | "\(.RestartPolicy.Attempts) \(.ReschedulePolicy.Attempts)"' <<<"$J")"
check_eq "the group's network mode is none" none "$(jq -r '.TaskGroups[0].Networks[0].Mode' <<<"$J")"
T=$(jq -c '.TaskGroups[0].Tasks[0]' <<<"$J")
check_eq "docker task: memory and cpu" "docker 256 500" \
	"$(jq -r '"\(.Driver) \(.Resources.MemoryMB) \(.Resources.CPU)"' <<<"$T")"
check_eq "docker task: cap_drop ALL, not privileged, network none, pids limit" '["ALL"] false none 64' \
	"$(jq -c '.Config | [.cap_drop, .privileged, .network_mode, .pids_limit]' <<<"$T" | jq -r '"\(.[0]|tojson) \(.[1]) \(.[2]) \(.[3])"')"
check_eq "docker task: no volumes, no mounts of the host" "null null" \
	"$(jq -c '.Config | "\(.volumes) \(.mounts)"' -r <<<"$T")"
check_eq "the token is nowhere in the state" "" "$(grep -o -i 'token"[^,]*' "$AGENTCELL_HOME/sandboxes/$A.json" | grep -v token_ || true)"

acx exec "$A" -- sh -c 'echo out; echo err >&2; exit 7'
check_rc "exec: the command's exit code" 7
check_eq "exec: stdout" out "$OUT"
check_eq "exec: stderr apart" err "$ERR"
acx exec --env GREETING=hi -w /tmp "$A" -- sh -c 'echo "$GREETING $(pwd)"'
check_out "exec with --env and -w" "hi /tmp"
OUT=$(printf 'abc\n' | timeout 60 "$AGENTCELL" exec -i "$A" -- tr a-z A-Z 2>&1)
check_eq "exec -i: stdin reaches the command and its end ends it" ABC "$OUT"

check_ac "stop $A" stop "$A"
check_eq "stop deregisters the job (kept, stopped)" "true" "$(NP GET "/v1/job/agentcell-$A" | jq -r .Stop)"
acx info "$A" --json
check_eq "info says stopped" stopped "$(jq -r .status <<<"$OUT")"
acx exec "$A" -- true
check_rc "exec in a stopped sandbox: exit 1" 1
check_contains "... saying it is not running" "$ERR" "not running"
check_ac "start again" start "$A"
acx exec "$A" -- sh -c 'echo back'
check_out "exec after the restart" back
check_ac "remove $A" remove "$A"
NP GET "/v1/job/agentcell-$A" >/dev/null
check_eq "remove purges the job" 404 "$NP_STATUS"

# --read-only and --network
R=nr$ID
check_ac "create $R --read-only --network" create "$R" --backend nomad --read-only --network
check_ac "start $R" start "$R"
T=$(job "agentcell-$R" | jq -c '.TaskGroups[0].Tasks[0]')
check_eq "read-only: readonly_rootfs" true "$(jq -r .Config.readonly_rootfs <<<"$T")"
check_ne "network on: the task's network mode is not none" none "$(jq -r '.Config.network_mode // "bridge"' <<<"$T")"
check_ne "network on: the group's network mode is not none" none \
	"$(job "agentcell-$R" | jq -r '.TaskGroups[0].Networks[0].Mode // "host"')"
check_ac "remove $R" remove "$R"

# Drivers from agentcell.toml: exec; podman is not on this agent: a placement failure.
mkdir -p "$AC_TMP/cfg-exec" "$AC_TMP/cfg-podman" "$AC_TMP/cfg-raw" "$AC_TMP/cfg-raw-ok"
printf '[nomad]\ndriver = "exec"\n' >"$AC_TMP/cfg-exec/agentcell.toml"
printf '[nomad]\ndriver = "podman"\n' >"$AC_TMP/cfg-podman/agentcell.toml"
printf '[nomad]\ndriver = "raw_exec"\n' >"$AC_TMP/cfg-raw/agentcell.toml"
printf '[nomad]\ndriver = "raw_exec"\nallow_raw_exec = true\n' >"$AC_TMP/cfg-raw-ok/agentcell.toml"
X=nx$ID
check_ac "create $X with driver exec" create "$X" --backend nomad --config "$AC_TMP/cfg-exec/agentcell.toml"
check_ac "start $X" start "$X"
T=$(job "agentcell-$X" | jq -c '.TaskGroups[0].Tasks[0]')
check_eq "exec task: driver exec, no image" "exec null" "$(jq -r '"\(.Driver) \(.Config.image)"' <<<"$T")"
acx exec "$X" -- sh -c 'echo via-exec'
check_out "exec in an exec-driver task" via-exec
check_ac "remove $X" remove "$X"
acx create "nraw$ID" --backend nomad --config "$AC_TMP/cfg-raw/agentcell.toml"
check_rc "driver raw_exec without allow_raw_exec: exit 2" 2
check_error_line "... one error line"
check_contains "... naming allow_raw_exec" "$ERR" allow_raw_exec
check "... and no sandbox" test ! -e "$AGENTCELL_HOME/sandboxes/nraw$ID.json"
acx create "nrok$ID" --backend nomad --config "$AC_TMP/cfg-raw-ok/agentcell.toml"
check_rc "raw_exec allowed: created" 0
check_contains "... with a warning that it is not isolated" "$ERR" "does not isolate"
check_ac "remove nrok$ID" remove "nrok$ID"
P=np$ID
check_ac "create $P with driver podman" create "$P" --backend nomad --config "$AC_TMP/cfg-podman/agentcell.toml"
acx start "$P"
check_rc "start where no node has podman: exit 1" 1
check_error_line "... one error line"
check_contains "... with Nomad's reason" "$ERR" "missing drivers"
check_contains "... naming the agent" "$ERR" "$NOMAD_ADDR"
NP GET "/v1/job/agentcell-$P" >/dev/null
check_eq "... and the job is purged" 404 "$NP_STATUS"
acx info "$P" --json
check_eq "... the sandbox stays, stopped" stopped "$(jq -r .status <<<"$OUT")"
check_ac "remove $P" remove "$P"
M=nm$ID
check_ac "create $M --memory 100000" create "$M" --backend nomad --memory 100000
acx start "$M"
check_rc "start that no node has the memory for: exit 1" 1
check_contains "... memory exhausted, as Nomad says" "$ERR" "memory exhausted"
check_eq "... no job is left" "" "$(jobs)"
check_ac "remove $M" remove "$M"

# Namespaces: NOMAD_NAMESPACE at create pins it; an unknown one fails the create.
N=nn$ID
NOMAD_NAMESPACE=team check_ac "create $N in namespace team" create "$N" --backend nomad
check_ac "start $N (without NOMAD_NAMESPACE now)" start "$N"
NP GET "/v1/job/agentcell-$N?namespace=team" >/dev/null
check_eq "the job is in namespace team" 200 "$NP_STATUS"
NP GET "/v1/job/agentcell-$N" >/dev/null
check_eq "... not in default" 404 "$NP_STATUS"
check_ac "remove $N" remove "$N"
NOMAD_NAMESPACE=nosuch acx create "nq2$ID" --backend nomad
acx_ns_rc=$RC
if [ "$acx_ns_rc" = 0 ]; then
	acx start "nq2$ID"
	check_rc "start in an unknown namespace: exit 1" 1
	check_error_line "... one error line"
else
	check_rc "create in an unknown namespace: exit 1" 1
	check_error_line "... one error line"
fi
ac remove "nq2$ID" >/dev/null 2>&1

# An agent that is not there: one line naming the address, nothing made.
NOMAD_ADDR=http://127.0.0.1:1 acx create "nd$ID" --backend nomad
check_rc "agent unreachable: exit 1" 1
check_error_line "... one error line"
check_contains "... naming the address" "$ERR" "127.0.0.1:1"
check "... and no sandbox" test ! -e "$AGENTCELL_HOME/sandboxes/nd$ID.json"
NOMAD_ADDR=ftp://x acx create "nd2$ID" --backend nomad
check_rc "a NOMAD_ADDR that is not http(s): exit 2" 2
check_error_line "... one error line"

# A job of the sandbox's id that is not ours: create refuses, the job is untouched.
O=no$ID
NP PUT /v1/jobs "$(jq -c '.ID = "agentcell-'"$O"'" | .Name = .ID | {Job: .}' <<<"$(job "agentcell-$A" 2>/dev/null || echo '{}')")" >/dev/null
if [ "$NP_STATUS" = 200 ]; then
	acx create "$O" --backend nomad
	check_rc "create over a foreign job of the same id: exit 1" 1
	check_contains "... saying it exists" "$ERR" "already exists"
	NP GET "/v1/job/agentcell-$O" >/dev/null
	check_eq "... and the job is still there" 200 "$NP_STATUS"
	NP DELETE "/v1/job/agentcell-$O?purge=true" >/dev/null
else
	fail "register a foreign job by hand" "status $NP_STATUS"
fi

# The lifecycle commands: TTL expiry and gc purge the job; audit.
E=ne$ID
check_ac "create $E with a 2s TTL" create "$E" --backend nomad --ttl 2s
check_ac "start $E" start "$E"
sleep 4
acx gc --json
check_contains "gc removes the expired sandbox" "$OUT" "\"$E\""
NP GET "/v1/job/agentcell-$E" >/dev/null
check_eq "... and purges its job" 404 "$NP_STATUS"
acx audit --sandbox "$A" --json
check_eq "the audit log has each step" "created started stopped started removed" \
	"$(jq -r '[.[] | .event | select(. != "exec")] | join(" ")' <<<"$OUT")"
check_eq "nothing is left on the agent" "" "$(jobs)"

# TLS: an agent that verifies its clients (NOMAD_CACERT, NOMAD_CLIENT_CERT/KEY).
ac_nomad_fake "nomad over TLS" "" --tls --verify-https-client
S=ns$ID
check_match "the agent's address is https" '^https://' "$NOMAD_ADDR"
check_ac "create $S over TLS with a client certificate" create "$S" --backend nomad
check_eq "the state records the CA and the client certificate, absolute" "$NOMAD_CACERT $NOMAD_CLIENT_CERT" \
	"$(jq -r '"\(.nomad.ca_cert) \(.nomad.client_cert)"' "$AGENTCELL_HOME/sandboxes/$S.json")"
check_ac "start $S" start "$S"
acx exec "$S" -- sh -c 'echo over-tls'
check_out "exec over the TLS WebSocket" over-tls
env -u NOMAD_CACERT "$AGENTCELL" create "nt1$ID" --backend nomad >"$AC_TMP/t1.out" 2>"$AC_TMP/t1.err"
check_eq "without the CA: exit 1" 1 "$?"
check_eq "... one error line" 1 "$(wc -l <"$AC_TMP/t1.err")"
check_contains "... naming the agent" "$(cat "$AC_TMP/t1.err")" "$NOMAD_ADDR"
env -u NOMAD_CLIENT_CERT -u NOMAD_CLIENT_KEY "$AGENTCELL" create "nt2$ID" --backend nomad >"$AC_TMP/t2.out" 2>"$AC_TMP/t2.err"
check_eq "without a client certificate the agent refuses: exit 1" 1 "$?"
check_eq "... one error line" 1 "$(wc -l <"$AC_TMP/t2.err")"
check "... and neither made a sandbox" test ! -e "$AGENTCELL_HOME/sandboxes/nt1$ID.json" -a ! -e "$AGENTCELL_HOME/sandboxes/nt2$ID.json"
check_ac "remove $S" remove "$S"
NP GET "/v1/job/agentcell-$S" >/dev/null
check_eq "... purges its job" 404 "$NP_STATUS"
