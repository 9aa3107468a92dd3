#!/bin/bash
# The manager's lifetime features end to end: --ttl, extend and gc; lifecycle policies,
# reconcile (dry run and real), archive, recover; labels and list --label; describe; resize
# of a running sandbox's cgroup; the audit log (every event, no secrets, whole lines under
# concurrency); metrics; and bad input to each new command.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
SB=$AGENTCELL_HOME/sandboxes
AUDIT=$AGENTCELL_HOME/audit.jsonl
TIME_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'

ms_of() { date -d "$1" +%s%3N; } # RFC 3339 -> unix milliseconds
field() { ac_json_field "$1" "$2"; }
# Sleeps until the unix time in milliseconds has passed (at once if it has).
sleep_past_ms() {
	local left=$(($1 - $(date +%s%3N)))
	[ "$left" -le 0 ] || sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"
}
names_of() { jq -r '.[].name' <<<"$1" | sort | tr '\n' ' '; } # names in a JSON array
# Audit records (JSON lines) of one event and sandbox.
audit_of() { jq -c --arg e "$1" --arg s "$2" 'select(.event == $e and .sandbox == $s)' "$AUDIT" 2>/dev/null; }

# ================================================================== ttl, extend, gc
T=ttl-$ID
check_ac "create --ttl 2h" create "$T" --ttl 2h
check_eq "create --ttl 2h: ttl_seconds 7200" 7200 "$(field "$T" ttl_seconds)"
check_match "create --ttl: expires_at is RFC 3339" "$TIME_RE" "$(field "$T" expires_at)"
C_MS=$(ms_of "$(field "$T" created_at)")
check_eq "create --ttl 2h: expires_at = created_at + 2h" 7200000 $(($(ms_of "$(field "$T" expires_at)") - C_MS))
check_ac "extend --by 1h" extend "$T" --by 1h
check_contains "extend prints the new expiry" "$OUT" "$(field "$T" expires_at)"
check_eq "extend of a future expiry: + 1h from it" 10800000 $(($(ms_of "$(field "$T" expires_at)") - C_MS))
check_eq "extend recomputes ttl_seconds from created_at" 10800 "$(field "$T" ttl_seconds)"
check_ac "extend --by=90s (= form, seconds)" extend "$T" --by=90s
check_eq "extend --by=90s: ttl_seconds 10890" 10890 "$(field "$T" ttl_seconds)"

N=nottl-$ID
check_ac "create without --ttl" create "$N"
check_eq "no ttl: expires_at is null" "" "$(field "$N" expires_at)"
sleep 1
NOW_MS=$(date +%s%3N)
check_ac "extend a sandbox without TTL --by 30m" extend "$N" --by 30m
E_MS=$(ms_of "$(field "$N" expires_at)")
D=$((E_MS - NOW_MS - 1800000))
check_le "no ttl: expires_at = now + 30m (lower bound)" -100 "$D"
check_le "no ttl: expires_at = now + 30m (upper bound)" "$D" 5000
TTL=$(field "$N" ttl_seconds)
check_le "no ttl: ttl_seconds counts from created_at (>= 1801)" 1801 "$TTL"
check_le "no ttl: ttl_seconds counts from created_at (<= 1810)" "$TTL" 1810

E1=exp1-$ID E2=exp2-$ID K=keep-$ID
check_ac "create $E1 --ttl 10s" create "$E1" --ttl 10s
check_ac "start $E1 (expiring while running)" start "$E1"
check_ac "create $E2 --ttl 10 (stopped)" create "$E2" --ttl 10
check_ac "create $K --ttl 1h" create "$K" --ttl 1h
acx gc --json
check_rc "gc before expiry" 0
check_eq "gc before expiry removes nothing" "[]" "$(jq -c . <<<"$OUT")"
# (10 s: the steps since the creates fit in it even with a sanitizer build on a loaded
# machine.) Now wait past the later expiry, from the state's own timestamp.
sleep_past_ms $(($(ms_of "$(field "$E2" expires_at)") + 300))
acx gc --json
check_rc "gc --json after expiry" 0
check_eq "gc removed exactly the expired sandboxes" "$(printf '%s\n' "$E1" "$E2" | sort | tr '\n' ' ')" "$(names_of "$OUT")"
check_eq "gc --json gives each removed sandbox's expiry" "true" "$(jq 'all(.[]; .expires_at | test("^[0-9]{4}-"))' <<<"$OUT")"
check_fail "gc deleted $E1's state" test -e "$SB/$E1.json"
check_fail "gc deleted $E2's state" test -e "$SB/$E2.json"
check_eq "gc left no cgroup of the running $E1" "" "$(cg_dirs "$E1")"
check_eq "gc left no run/ entry of $E1" "" "$(ls "$AGENTCELL_HOME/run" | grep -F "$E1")"
check "gc kept the unexpired $K" test -e "$SB/$K.json"
check_ac "extend --by 1s" extend "$K" --by 1s
G=gct-$ID
check_ac "create $G --ttl 1s" create "$G" --ttl 1s
sleep 1.5
acx gc
check_rc "gc (text)" 0
check_match "gc prints 'removed NAME (expired at ...)'" "^removed $G \\(expired at [0-9T:.Z-]+\\)$" "$OUT"

KR=keptrun-$ID
acx run --keep --name "$KR" --ttl 1h --label from=run --auto-stop-after 10m -- true
check_rc "run --keep --ttl --label --auto-stop-after" 0
check_eq "run --keep --ttl: ttl_seconds" 3600 "$(field "$KR" ttl_seconds)"
check_eq "run --keep --label: labels" '{"from":"run"}' "$(field "$KR" labels | jq -c .)"
check_eq "run --keep --auto-stop-after: policy" '{"auto_stop_after_seconds":600}' "$(field "$KR" lifecycle_policy | jq -c .)"
acx remove "$KR"

# ================================================================== policy, reconcile
S=st-$ID A=ar-$ID DL=del-$ID Q=quiet-$ID P=nopol-$ID
check_ac "create $S --auto-stop-after 1s" create "$S" --auto-stop-after 1s
check_eq "policy stored with agentkernel's field names" '{"auto_stop_after_seconds":1}' "$(jq -c .lifecycle_policy "$SB/$S.json")"
check_ac "create $A --auto-archive-after 1s" create "$A" --auto-archive-after 1s
check_ac "create $DL --auto-archive-after 1s --auto-delete-after 10s" create "$DL" --auto-archive-after 1s --auto-delete-after 10s
check_eq "three rules stored" '{"auto_archive_after_seconds":1,"auto_delete_after_seconds":10}' "$(jq -c .lifecycle_policy "$SB/$DL.json")"
check_ac "create $Q --auto-stop-after 1h" create "$Q" --auto-stop-after 1h
check_ac "create $P (no policy)" create "$P"
for n in "$S" "$A" "$DL" "$Q" "$P"; do acx start "$n"; done
check_eq "all five run" "running running running running running" "$(for n in "$S" "$A" "$DL" "$Q" "$P"; do ac_status "$n"; done | tr '\n' ' ' | sed 's/ $//')"
sleep 2.2
SUM=$(cat "$SB"/*.json | sha256sum)
acx reconcile --dry-run --json
check_rc "reconcile --dry-run --json" 0
DRY=$OUT
check_eq "dry run: decisions sorted by name" "archive $A|archive $DL|stop $S|" "$(jq -r '.[] | "\(.action) \(.name)"' <<<"$DRY" | tr '\n' '|')"
check_eq "dry run: each decision has exactly name, action, reason" "true" "$(jq 'all(.[]; keys == ["action","name","reason"])' <<<"$DRY")"
check_eq "dry run: reasons say how long and the threshold" "true" "$(jq 'all(.[]; .reason | test("^inactive for [0-9]+s \\(threshold=1s\\)$"))' <<<"$DRY")"
check_eq "dry run changed no state file" "$SUM" "$(cat "$SB"/*.json | sha256sum)"
check_eq "dry run stopped nothing" "running running running" "$(for n in "$S" "$A" "$DL"; do ac_status "$n"; done | tr '\n' ' ' | sed 's/ $//')"
acx reconcile --dry-run
check_rc "reconcile --dry-run (text)" 0
check_match "dry run text: one line per decision" "^archive +$A +inactive for [0-9]+s \\(threshold=1s\\)" "$OUT"
acx reconcile --json
check_rc "reconcile --json" 0
check_eq "the real run takes the dry run's decisions" "$(jq -c '[.[] | [.name, .action]]' <<<"$DRY")" "$(jq -c '[.[] | [.name, .action]]' <<<"$OUT")"
check_eq "reconcile stopped $S" "stopped" "$(ac_status "$S")"
check_eq "reconcile archived $A" "archived" "$(ac_status "$A")"
check_eq "reconcile archived $DL" "archived" "$(ac_status "$DL")"
check_eq "reconcile left $Q running (1h threshold)" "running" "$(ac_status "$Q")"
check_eq "reconcile left $P running (no policy)" "running" "$(ac_status "$P")"
check_match "archived_at is RFC 3339" "$TIME_RE" "$(field "$A" archived_at)"
check_match "archived_reason says why" '^inactive for [0-9]+s \(threshold=1s\)$' "$(field "$A" archived_reason)"
check_eq "an archived sandbox was stopped (no cgroup)" "" "$(cg_dirs "$A")"
check_contains "list shows archived" "$(ac list | grep -F "$A ")" "archived"
acx start "$A"
check_rc "start of an archived sandbox: exit 1" 1
check_error_line "start of an archived sandbox: one error line"
check_contains "the refusal names 'agentcell recover NAME'" "$ERR" "agentcell recover $A"
check_eq "the refused start did not start it" "archived" "$(ac_status "$A")"
acx reconcile --json
check_eq "reconcile right away: nothing to do" "[]" "$(jq -c . <<<"$OUT")"
# The delete threshold (10s) leaves the steps since the archive time even under a
# sanitizer build on a loaded machine; now wait it out from the archive's own timestamp.
ARCHIVED_MS=$(jq -r '.archived_at' "$SB/$DL.json" | python3 -c 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.stdin.read().strip().replace("Z", "+00:00")).timestamp() * 1000))')
sleep_past_ms $((ARCHIVED_MS + 10200))
acx reconcile --json
check_rc "reconcile after 10s archived" 0
check_eq "reconcile deletes $DL (archived > 10s), nothing else" "delete $DL|" "$(jq -r '.[] | "\(.action) \(.name)"' <<<"$OUT" | tr '\n' '|')"
check_match "delete reason" "^archived for [0-9]+s \\(threshold=10s\\)$" "$(jq -r '.[0].reason' <<<"$OUT")"
check_fail "$DL's state is gone" test -e "$SB/$DL.json"
check_eq "$DL's data is gone" "" "$(ls "$AGENTCELL_HOME/data" | grep -F "$DL")"
check_ac "recover $A" recover "$A"
check_eq "recover clears archived_at" "" "$(field "$A" archived_at)"
check_eq "recover clears archived_reason" "" "$(field "$A" archived_reason)"
check_eq "recovered: stopped" "stopped" "$(ac_status "$A")"
check_ac "start after recover" start "$A"
acx exec "$A" -- echo back
check_out "exec after recover" "back"
acx recover "$A"
check_rc "recover of a sandbox that is not archived: exit 1" 1
check_error_line "recover of a non-archived sandbox: one error line"

# exec marks activity without rewriting the state file
B0=$(field "$Q" last_activity_at)
F0=$(sha256sum <"$SB/$Q.json")
sleep 1.1
acx exec "$Q" -- true
B1=$(field "$Q" last_activity_at)
check_gt "exec moves last_activity_at forward" "$(ms_of "$B1")" "$(ms_of "$B0")"
check_le "last_activity_at is about now" $(($(date +%s%3N) - $(ms_of "$B1"))) 3000
check_eq "exec does not rewrite the state file" "$F0" "$(sha256sum <"$SB/$Q.json")"
check "the activity mark is run/NAME.activity" test -f "$AGENTCELL_HOME/run/$Q.activity"

# An exec that ends after its sandbox was removed (remove stops it under the exec's feet)
# leaves no mark behind; a mark left by a kill is doctor's finding and gc's to delete.
RM=rmx-$ID
check_ac "create $RM" create "$RM"
check_ac "start $RM" start "$RM"
# The exec client is stopped while the remove runs, so it records its end only after the
# remove has deleted the state and the mark: the order a loaded machine can produce.
timeout -k 5 60 "$AGENTCELL" exec "$RM" -- sleep 30 >/dev/null 2>&1 &
EXPID=$!
sleep 0.5
EXCLI=$(pgrep -P "$EXPID" -x agentcell | head -1)
kill -STOP "$EXCLI"
check_ac "remove $RM while an exec runs in it" remove "$RM"
kill -CONT "$EXCLI"
wait "$EXPID"
check "the exec that outlived its sandbox left no activity mark" test ! -e "$AGENTCELL_HOME/run/$RM.activity"
: >"$AGENTCELL_HOME/run/gone-$ID.activity"
acx doctor
check_match "doctor lists an activity mark of no sandbox" "WARN +activity mark +$AGENTCELL_HOME/run/gone-$ID.activity: no sandbox has this name" "$OUT"
check "doctor does not delete it" test -e "$AGENTCELL_HOME/run/gone-$ID.activity"
check_ac "gc" gc
check "gc deletes it" test ! -e "$AGENTCELL_HOME/run/gone-$ID.activity"
check "gc keeps the marks of sandboxes that exist" test -f "$AGENTCELL_HOME/run/$Q.activity"

# activity keeps a sandbox from being stopped
W=warm-$ID
check_ac "create $W --auto-stop-after 3s" create "$W" --auto-stop-after 3s
acx start "$W"
sleep 2
acx exec "$W" -- true
sleep 2
acx reconcile --dry-run --json
check_eq "recent exec: no decision for $W" "" "$(jq -r --arg n "$W" '.[] | select(.name == $n) | .action' <<<"$OUT")"
sleep 1.5
acx reconcile --dry-run --json
check_eq "3s after the exec: stop $W" "stop" "$(jq -r --arg n "$W" '.[] | select(.name == $n) | .action' <<<"$OUT")"

# policy command
acx policy "$Q"
check_rc "policy NAME shows the policy" 0
check_match "policy shows auto-stop-after 1h" "auto-stop-after +1h" "$OUT"
acx policy "$Q" --auto-archive-after 2d --json
check_eq "policy adds a rule, keeps the others" '{"auto_archive_after_seconds":172800,"auto_stop_after_seconds":3600}' "$(jq -c -S . <<<"$OUT")"
check_eq "the state has it" '{"auto_archive_after_seconds":172800,"auto_stop_after_seconds":3600}' "$(jq -c -S .lifecycle_policy "$SB/$Q.json")"
acx policy "$Q" --auto-stop-after none --json
check_eq "policy --auto-stop-after none unsets one rule" '{"auto_archive_after_seconds":172800}' "$(jq -c -S . <<<"$OUT")"
acx policy "$Q" --clear --auto-delete-after 90s --json
check_eq "policy --clear then a new rule" '{"auto_delete_after_seconds":90}' "$(jq -c -S . <<<"$OUT")"
acx policy "$Q" --clear --json
check_eq "policy --clear: no policy" "null" "$OUT"
check_eq "policy --clear removes lifecycle_policy from the state" "false" "$(jq 'has("lifecycle_policy")' "$SB/$Q.json")"

# ================================================================== labels, describe
L1=lab1-$ID L2=lab2-$ID L3=lab3-$ID
check_ac "create --label team=core --label env=dev" create "$L1" --label team=core --label env=dev
check_ac "create --label team=core --label=env=prod" create "$L2" --label team=core --label=env=prod
check_ac "create without labels" create "$L3"
check_eq "labels in the state" '{"env":"dev","team":"core"}' "$(jq -c -S .labels "$SB/$L1.json")"
acx list --json --label team=core
check_eq "list --label team=core" "$(printf '%s\n' "$L1" "$L2" | sort | tr '\n' ' ')" "$(names_of "$OUT")"
acx list --json --label team=core --label env=dev
check_eq "list --label twice: all must match" "$L1 " "$(names_of "$OUT")"
acx list --json --label team=nobody
check_rc "list --label without matches: exit 0" 0
check_eq "list --label without matches: empty" "[]" "$(jq -c . <<<"$OUT")"
acx list --label env=prod
check_eq "list --label (text): one row plus the header" "2" "$(grep -c '' <<<"$OUT")"
check_contains "list --label (text) shows $L2" "$OUT" "$L2"
acx label "$L3" owner=me tier=gold
check_rc "label NAME k=v k=v" 0
check_eq "label prints the labels, sorted" "owner=me
tier=gold" "$OUT"
acx label "$L1" --remove env stage=beta
check_eq "label --remove and set" "stage=beta
team=core" "$OUT"
check_eq "labels in the state after label" '{"stage":"beta","team":"core"}' "$(jq -c -S .labels "$SB/$L1.json")"
acx label "$L1" --json
check_eq "label NAME --json shows them" '{"stage":"beta","team":"core"}' "$(jq -c -S . <<<"$OUT")"
acx label "$L1" --remove absent
check_rc "removing an absent label is fine" 0
acx label "$L1" 'url=http://x/?a=b c'
check_eq "values may hold = and spaces" 'http://x/?a=b c' "$(jq -r '.labels.url' "$SB/$L1.json")"
check_ac "describe NAME TEXT" describe "$L1" "build box for the ci"
check_eq "description in the state" "build box for the ci" "$(field "$L1" description)"
check_ac "describe NAME '' clears" describe "$L1" ""
check_eq "description cleared" "null" "$(jq -c .description "$SB/$L1.json")"
check_ac "describe with UTF-8 and exactly 1024 bytes" describe "$L2" "$(printf 'é%.0s' $(seq 512))"
check_eq "1024-byte description kept" 1024 "$(jq -j .description "$SB/$L2.json" | wc -c)"

# ================================================================== resize
R=rs-$ID
check_ac "create $R --memory 512" create "$R" --memory 512
check_ac "start $R" start "$R"
LEAF=$(cg_leaves "$R" | head -1)
check_match "the cgroup leaf is sb<slot>-NAME" "^sb[0-9]+-$R$" "$LEAF"
MEMF=/sys/fs/cgroup/memory/agentcell/$LEAF/memory.limit_in_bytes
check_eq "memory limit before: 512 MB" 536870912 "$(cat "$MEMF")"
acx resize "$R" --memory 256 --cpus 0.5 --pids 100
check_rc "resize a running sandbox" 0
check_contains "resize says it was applied" "$OUT" "applied to the running sandbox"
check_eq "memory.limit_in_bytes is 256 MB" 268435456 "$(cat "$MEMF")"
check_eq "memory.memsw.limit_in_bytes follows" 268435456 "$(cat "/sys/fs/cgroup/memory/agentcell/$LEAF/memory.memsw.limit_in_bytes" 2>/dev/null || echo 268435456)"
check_eq "cpu.cfs_quota_us is half a CPU" 50000 "$(cg_file "$R" cpu cpu.cfs_quota_us)"
check_eq "pids.max is 100" 100 "$(cg_file "$R" pids pids.max)"
check_eq "state: memory_mb 256" 256 "$(field "$R" memory_mb)"
check_eq "state: cpus 0.5" 0.5 "$(field "$R" cpus)"
check_eq "state: pids_limit 100" 100 "$(field "$R" pids_limit)"
acx resize "$R" --memory 1024
check_eq "growing memory works (memsw first)" 1073741824 "$(cat "$MEMF")"
acx exec "$R" -- echo ok
check_out "the sandbox still works after resizes" "ok"
# Hold 200 MB, then ask for 64 MB: the kernel refuses, nothing changes.
RMARK=acrs-$ID
setsid "$AGENTCELL" exec "$R" -- "$PY" -c 'import time; b = b"x" * (200 << 20); time.sleep(120)' "$RMARK" </dev/null >/dev/null 2>&1 &
bg_track $!
usage_over() { [ "$(cg_file "$R" memory memory.usage_in_bytes)" -gt $((200 << 20)) ]; }
if wait_until 20 usage_over; then
	SUM=$(sha256sum <"$SB/$R.json")
	acx resize "$R" --memory 64
	check_rc "resize below current use: exit 1" 1
	check_error_line "resize below current use: one error line"
	check_contains "the error says what the sandbox uses" "$ERR" "uses"
	check_contains "the error carries the kernel's reason" "$ERR" "busy"
	check_eq "refused resize: limit unchanged" 1073741824 "$(cat "$MEMF")"
	check_eq "refused resize: state unchanged" "$SUM" "$(sha256sum <"$SB/$R.json")"
	check "refused resize: the memory holder still runs" has_python_matching "$RMARK"
else
	fail "the sandbox's python did not reach 200 MB" "$(cg_file "$R" memory memory.usage_in_bytes)"
fi
check_ac "stop $R" stop "$R"
acx resize "$R" --memory 300 --pids 64
check_rc "resize a stopped sandbox" 0
check_contains "resize of a stopped sandbox says it is recorded" "$OUT" "recorded"
check_eq "stopped resize: state memory_mb 300" 300 "$(field "$R" memory_mb)"
check_eq "stopped resize: no cgroup created" "" "$(cg_dirs "$R")"
check_ac "start after a stopped resize" start "$R"
check_eq "the recorded limit applies at start" 314572800 "$(cg_file "$R" memory memory.limit_in_bytes)"
check_eq "the recorded pids limit applies at start" 64 "$(cg_file "$R" pids pids.max)"

# ================================================================== audit
X=aud-$ID
check_ac "create $X with a secret in its environment" create "$X" --env SECRET=topsecret123 --env PLAIN=1
check_ac "start $X" start "$X"
acx exec "$X" --env TOKEN=topsecret456 -- sh -c 'exit 3'
check_rc "exec exit 3" 3
acx exec "$X" -- sh -c 'printf %s "$SECRET" | md5sum'
check_eq "the secret reached the sandbox" "$(printf %s topsecret123 | md5sum)" "$OUT"
check_ac "stop $X" stop "$X"
FAILDIR=$AC_TMP/gone-$ID
mkdir -p "$FAILDIR"
FB=fail-$ID
(cd "$FAILDIR" && ac create "$FB" --mount-cwd >/dev/null 2>&1)
rmdir "$FAILDIR"
acx start "$FB"
check_rc "start with a vanished mount fails" 1
check_ac "remove $X" remove "$X"
check_eq "no secret value in the audit log" "0" "$(grep -c topsecret "$AUDIT")"
check_eq "the created event lists env keys only" '["SECRET","PLAIN"]' "$(audit_of created "$X" | jq -c .details.env_keys)"
LAST_EXEC=$(audit_of exec "$X" | head -1)
check_eq "exec event: the command" '["sh","-c","exit 3"]' "$(jq -c .details.command <<<"$LAST_EXEC")"
check_eq "exec event: the exit code" 3 "$(jq .details.exit_code <<<"$LAST_EXEC")"
check_eq "exec event: a duration" "true" "$(jq '.details.duration_ms >= 0' <<<"$LAST_EXEC")"
for ev in created:$X started:$X stopped:$X removed:$X exec:$X archived:$A recovered:$A stopped:$S \
	extended:$T gc_removed:$E1 removed:$E1 policy_changed:$Q resized:$R labels_changed:$L1 \
	described:$L1 removed:$DL error:$FB; do
	check_ne "audit has a '${ev%%:*}' event for ${ev#*:}" "" "$(audit_of "${ev%%:*}" "${ev#*:}" | head -1)"
done
check_contains "the error event says what failed" "$(audit_of error "$FB")" '"operation":"start"'
check_contains "the reconcile stop records its reason" "$(audit_of stopped "$S")" '"reason":"inactive for'
check_eq "every audit line is one JSON object with timestamp, event, sandbox, details" \
	"$(grep -c '' "$AUDIT")" "$(jq -c 'select(has("timestamp") and has("event") and has("sandbox") and (.details | type == "object"))' "$AUDIT" | grep -c '')"
check_eq "timestamps are RFC 3339" "true" "$(jq -s 'all(.[]; .timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))' "$AUDIT")"
acx audit
check_rc "audit (text)" 0
check_eq "audit prints one line per record" "$(grep -c '' "$AUDIT")" "$(grep -c '' <<<"$OUT")"
acx audit --limit 3 --json
check_eq "audit --limit 3: three records" 3 "$(jq length <<<"$OUT")"
check_eq "audit --limit: the newest last" "$(tail -1 "$AUDIT" | jq -c -S .)" "$(jq -c -S '.[-1]' <<<"$OUT")"
acx audit --sandbox "$X" --json
check_eq "audit --sandbox: only that sandbox" "true" "$(jq --arg s "$X" 'length > 4 and all(.[]; .sandbox == $s)' <<<"$OUT")"
check_eq "audit --sandbox: oldest first (created, then ... removed)" "created removed" "$(jq -r '.[0].event + " " + .[-1].event' <<<"$OUT")"
acx audit --sandbox "nobody-$ID"
check_rc "audit --sandbox of an unknown name: exit 0" 0
check_eq "audit --sandbox of an unknown name: nothing" "" "$OUT"

# Concurrent writers, with lines over PIPE_BUF (64 labels of 255 bytes): none interleave.
C1=cc1-$ID C2=cc2-$ID
acx create "$C1"
acx create "$C2"
acx start "$C1"
BIG=$(printf 'v%.0s' $(seq 255))
writer_labels() { # NAME
	local k args
	for _ in 1 2 3 4 5; do
		args=()
		for k in $(seq 1 40); do args+=("k$k=$BIG"); done
		"$AGENTCELL" label "$1" "${args[@]}" >/dev/null 2>&1
	done
}
writer_exec() {
	for _ in $(seq 1 15); do "$AGENTCELL" exec "$C1" -- true "$(printf 'a%.0s' $(seq 300))" >/dev/null 2>&1; done
}
LINES0=$(grep -c '' "$AUDIT")
writer_labels "$C1" &
W1=$!
writer_labels "$C2" &
W2=$!
writer_exec &
W3=$!
writer_exec &
W4=$!
wait $W1 $W2 $W3 $W4
check_eq "concurrent writers: every line added" $((LINES0 + 5 + 5 + 15 + 15)) "$(grep -c '' "$AUDIT")"
check_eq "concurrent writers: every line is valid JSON" "$(grep -c '' "$AUDIT")" "$(jq -c . "$AUDIT" 2>/dev/null | grep -c '')"
check_gt "some lines were longer than PIPE_BUF" "$(awk 'length > 4096' "$AUDIT" | grep -c '')" 0

# ================================================================== metrics
acx metrics
check_rc "metrics" 0
MET=$OUT
BADLINES=$(grep -v '^#' <<<"$MET" | grep -Ev '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? -?[0-9.e+]+$')
check_eq "every sample line is in the Prometheus text format" "" "$BADLINES"
check_contains "metrics: TYPE of agentcell_sandboxes" "$MET" "# TYPE agentcell_sandboxes gauge"
RUNNING=$(ac list --json | jq '[.[] | select(.status == "running")] | length')
check_contains "metrics: running sandboxes as in list" "$MET" "agentcell_sandboxes{status=\"running\"} $RUNNING"
ARCH=$(ac list --json | jq '[.[] | select(.status == "archived")] | length')
check_contains "metrics: archived sandboxes" "$MET" "agentcell_sandboxes{status=\"archived\"} $ARCH"
EXECS=$(jq -c 'select(.event == "exec")' "$AUDIT" | grep -c '')
check_contains "metrics: agentcell_exec_total counts the exec events" "$MET" "agentcell_exec_total $EXECS"
check_contains "metrics: events by type" "$MET" "agentcell_events_total{event=\"archived\"} 2"
check_contains "metrics: exec histogram" "$MET" "# TYPE agentcell_exec_duration_seconds histogram"
INF=$(grep '^agentcell_exec_duration_seconds_bucket{le="+Inf"}' <<<"$MET" | awk '{print $2}')
check_eq "metrics: +Inf bucket = count" "$(grep '^agentcell_exec_duration_seconds_count' <<<"$MET" | awk '{print $2}')" "$INF"
check_contains "metrics: lifecycle histogram by operation" "$MET" 'agentcell_lifecycle_duration_seconds_count{operation="start"}'

# ================================================================== bad input
snapshot() {
	# A running sandbox's disk image changes whenever its file system writes back: its
	# name and size count, not its mtime.
	(cd "$AGENTCELL_HOME" && find . \( -path ./locks -o -path ./base -o -name .lock \) -prune -o \
		-path './data/*/disk.img' -printf '%p %s\n' -o -printf '%p %s %T@\n' | sort)
}
expect_error() { # "desc" RC ARGS...
	local desc=$1 want=$2 before after n
	shift 2
	before=$(snapshot)
	acx "$@"
	after=$(snapshot)
	if [ "$RC" != "$want" ]; then
		fail "$desc: exit $want" "command: agentcell $(printf '%q ' "$@")" "$(acx_diag)"
	else
		pass "$desc: exit $want"
	fi
	n=$(printf '%s' "$ERR" | grep -c '')
	if [ "$n" -eq 1 ] && [[ "$ERR" == "agentcell: "* ]]; then
		pass "$desc: one 'agentcell:' line"
	else
		fail "$desc: one 'agentcell:' line" "$(acx_diag)"
	fi
	if [ "$before" == "$after" ]; then
		pass "$desc: nothing changed"
	else
		fail "$desc: nothing changed" "$(diff <(echo "$before") <(echo "$after") | head -20)"
	fi
}
OK=$L3
LONGKEY=$(printf 'k%.0s' $(seq 64))
LONGVAL=$(printf 'v%.0s' $(seq 256))
LONGDESC=$(printf 'd%.0s' $(seq 1025))
for d in 0 0s -1h +1h 1x 1.5h 1h30m "" " 1h" 1H 99999999999999999999 36501d; do
	expect_error "create --ttl '$d'" 2 create "bad-$ID" --ttl "$d"
done
expect_error "create --auto-stop-after 0" 2 create "bad-$ID" --auto-stop-after 0
expect_error "create --auto-archive-after 2x" 2 create "bad-$ID" --auto-archive-after 2x
expect_error "create --auto-delete-after -5" 2 create "bad-$ID" --auto-delete-after -5
expect_error "create --ttl without a value" 2 create "bad-$ID" --ttl
for l in novalue "=v" "a b=c" "k=$(printf '\001')" "$LONGKEY=v" "k=$LONGVAL" "k=é"; do
	expect_error "create --label '$(printf '%q' "$l" | head -c 40)'" 2 create "bad-$ID" --label "$l"
done
expect_error "create --label twice with one key" 2 create "bad-$ID" --label a=1 --label a=2
expect_error "run --ttl without --keep" 2 run --ttl 1h -- true
expect_error "run --label without --keep" 2 run --label a=b -- true
expect_error "extend without a name" 2 extend --by 1h
expect_error "extend a/b" 2 extend a/b --by 1h
expect_error "extend without --by" 2 extend "$OK"
expect_error "extend --by 0" 2 extend "$OK" --by 0
expect_error "extend --by 1x" 2 extend "$OK" --by 1x
expect_error "extend --bogus" 2 extend "$OK" --by 1h --bogus
expect_error "extend an unknown sandbox" 1 extend "nope-$ID" --by 1h
expect_error "gc with an argument" 2 gc extra
expect_error "gc --bogus" 2 gc --bogus
expect_error "policy without a name" 2 policy
expect_error "policy --auto-stop-after 0" 2 policy "$OK" --auto-stop-after 0
expect_error "policy --auto-archive-after soon" 2 policy "$OK" --auto-archive-after soon
expect_error "policy --bogus" 2 policy "$OK" --bogus
expect_error "policy of an unknown sandbox" 1 policy "nope-$ID" --auto-stop-after 1h
expect_error "reconcile --bogus" 2 reconcile --bogus
expect_error "reconcile with an argument" 2 reconcile now
expect_error "recover without a name" 2 recover
expect_error "recover a/b" 2 recover a/b
expect_error "recover of an unknown sandbox" 1 recover "nope-$ID"
expect_error "recover of a sandbox that is not archived" 1 recover "$OK"
expect_error "label without a name" 2 label
expect_error "label with a bad pair" 2 label "$OK" novalue
expect_error "label with a bad key" 2 label "$OK" "a b=c"
expect_error "label with a long value" 2 label "$OK" "k=$LONGVAL"
expect_error "label --remove of a bad key" 2 label "$OK" --remove "a b"
expect_error "label set and remove one key" 2 label "$OK" a=1 --remove a
expect_error "label one key twice" 2 label "$OK" a=1 a=2
expect_error "label of an unknown sandbox" 1 label "nope-$ID" a=b
expect_error "list --label novalue" 2 list --label novalue
expect_error "list --label 'a b=c'" 2 list --label "a b=c"
expect_error "list --label without a value" 2 list --label
expect_error "describe without text" 2 describe "$OK"
expect_error "describe without a name" 2 describe
expect_error "describe with 1025 bytes" 2 describe "$OK" "$LONGDESC"
expect_error "describe with a newline" 2 describe "$OK" "two
lines"
expect_error "describe with invalid UTF-8" 2 describe "$OK" "$(printf 'bad\377')"
expect_error "describe with two texts" 2 describe "$OK" one two
expect_error "describe of an unknown sandbox" 1 describe "nope-$ID" text
expect_error "resize without options" 2 resize "$R"
expect_error "resize --memory 1" 2 resize "$R" --memory 1
expect_error "resize --memory x" 2 resize "$R" --memory x
expect_error "resize --cpus 0" 2 resize "$R" --cpus 0
expect_error "resize --cpus 2000" 2 resize "$R" --cpus 2000
expect_error "resize --pids 1" 2 resize "$R" --pids 1
expect_error "resize without a name" 2 resize --memory 100
expect_error "resize of an unknown sandbox" 1 resize "nope-$ID" --memory 100
expect_error "audit --limit 0" 2 audit --limit 0
expect_error "audit --limit x" 2 audit --limit x
expect_error "audit --sandbox a/b" 2 audit --sandbox a/b
expect_error "audit with an argument" 2 audit extra
expect_error "metrics with an argument" 2 metrics extra
check_eq "no sandbox 'bad-$ID' was created" "" "$(ac_names | grep -F "bad-$ID")"
check_eq "no lock files for unknown names" "" "$(ls "$AGENTCELL_HOME/locks" | grep -F "nope-$ID")"

# help
for c in "extend:--by" "gc:--json" "policy:--auto-stop-after --auto-archive-after --auto-delete-after --clear" \
	"reconcile:--dry-run --json" "recover:recover" "label:--remove" "describe:describe" \
	"resize:--memory --cpus --pids" "audit:--sandbox --limit --json" "metrics:Prometheus" \
	"create:--ttl --label --auto-stop-after --auto-archive-after --auto-delete-after" \
	"run:--ttl --label" "list:--label"; do
	cmd=${c%%:*}
	acx "$cmd" --help
	check_rc "$cmd --help exits 0" 0
	for o in ${c#*:}; do check_contains "$cmd --help mentions $o" "$OUT" "$o"; done
done
acx --help
for c in extend gc policy reconcile recover label describe resize audit metrics; do
	check_contains "--help lists $c" "$OUT" "  $c "
done
