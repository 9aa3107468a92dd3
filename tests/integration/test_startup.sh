#!/bin/bash
# Start-up work: --init-script (every start; a failure fails the start with the script's
# exit code and stderr), --agent (API keys from the caller's environment, never stored),
# --file (files injected before anything runs), on create and run.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
B=su-$ID
check_ac "create with --init-script" create "$B" --init-script 'echo ran >> /var/tmp/init.log; mkdir -p /opt/made'
check_ac "start runs it" start "$B"
check_eq "the init script ran once" ran "$(ac exec "$B" -- cat /var/tmp/init.log)"
check_ac "stop" stop "$B"
check_ac "start again" start "$B"
check_eq "it runs at every start" "$(printf 'ran\nran')" "$(ac exec "$B" -- cat /var/tmp/init.log)"
check_eq "init_script is in the state" 'echo ran >> /var/tmp/init.log; mkdir -p /opt/made' "$(ac_json_field "$B" init_script)"

F=fa-$ID
check_ac "create with a failing init script" create "$F" --init-script 'echo about to fail >&2; echo "missing thing" >&2; exit 7'
acx start "$F"
check_rc "start fails with the script's exit code" 7
check_contains "the error says it was the init script" "$ERR" "init script"
check_contains "the error carries the script's stderr" "$ERR" "missing thing"
check_eq "the sandbox is left stopped" stopped "$(ac_status "$F")"
check_contains "an audit event records it" "$(ac audit --sandbox "$F" --json)" "init_script_failed"
SCRIPT=$AC_TMP/init.sh
printf 'echo from-file > /var/tmp/f\n' >"$SCRIPT"
check_ac "create --init-script-file" create "if-$ID" --init-script-file "$SCRIPT"
check_ac "start if-$ID" start "if-$ID"
check_eq "--init-script-file ran" from-file "$(ac exec "if-$ID" -- cat /var/tmp/f)"
acx create "ix-$ID" --init-script-file "$AC_TMP/nope"
check_rc "--init-script-file of a missing file: exit 1" 1
check_eq "... and nothing was created" "" "$(ac_list_entry "ix-$ID")"

# --agent: the keys come from the caller's environment at start and are never stored.
SECRET=sk-test-$ID-$RANDOM
G=ag-$ID
check_ac "create --agent claude" create "$G" --agent claude
ANTHROPIC_API_KEY=$SECRET "$AGENTCELL" start "$G"
check_eq "the agent's key reaches the sandbox" "$SECRET" "$(ac exec "$G" -- sh -c 'echo $ANTHROPIC_API_KEY')"
check_eq "other keys do not" "" "$(OPENAI_API_KEY=no ac exec "$G" -- sh -c 'echo $OPENAI_API_KEY')"
check_eq "agent is in the state" claude "$(ac_json_field "$G" agent)"
check "the key is not in the state file" sh -c "! grep -rq '$SECRET' '$AGENTCELL_HOME/sandboxes'"
check "the key is not in the audit log" sh -c "! grep -q '$SECRET' '$AGENTCELL_HOME/audit.jsonl'"
check_eq "run --agent gemini passes both of its keys" "a b" \
	"$(GOOGLE_API_KEY=a GEMINI_API_KEY=b "$AGENTCELL" run --agent gemini -- sh -c 'echo $GOOGLE_API_KEY $GEMINI_API_KEY')"
acx create "bad-$ID" --agent nosuch
check_rc "--agent nosuch: exit 2" 2
check_contains "agents lists every agent" "$(ac agents)" "copilot"

# --file on create and on run.
printf 'payload-%s\n' "$ID" >"$AC_TMP/p.txt"
mkdir -p "$AC_TMP/tree/in"
echo deep >"$AC_TMP/tree/in/x"
check_ac "create --file (file and tree)" create "fi-$ID" --file "$AC_TMP/p.txt:/etc/payload" --file "$AC_TMP/tree:/srv/tree"
check_ac "start fi-$ID" start "fi-$ID"
check_eq "--file: the file is there" "payload-$ID" "$(ac exec "fi-$ID" -- cat /etc/payload)"
check_eq "--file: the tree is there" deep "$(ac exec "fi-$ID" -- cat /srv/tree/in/x)"
check_eq "run --file: injected before the command runs" "payload-$ID" "$(ac run --file "$AC_TMP/p.txt:/tmp/in.txt" -- cat /tmp/in.txt)"
check_eq "run --init-script: runs before the command" ok "$(ac run --init-script 'echo ok > /var/tmp/o' -- cat /var/tmp/o)"
acx run --file "$AC_TMP/p.txt:/x" -- sh -c 'exit 5'
check_rc "run --file keeps the command's exit status" 5
check_eq "run --file leaves no sandbox behind" "" "$(ac list --json | jq -r '.[].name' | grep '^run-')"
acx create "fb-$ID" --file "$AC_TMP/missing-$ID:/x"
check_rc "--file of a missing host file: exit 1" 1
check_eq "... and the sandbox was not created" "" "$(ac_list_entry "fb-$ID")"
acx create "fc-$ID" --file "no-colon"
check_rc "--file without :/path: exit 2" 2

# The host base follows the host's /etc, and old bases are collected once unused.
BASES() { ls -d "$AGENTCELL_HOME"/base/host-* 2>/dev/null | grep -vc '\.lock$'; }
P=pin-$ID
check_ac "create $P" create "$P"
check_ac "start $P (it uses the current base)" start "$P"
MARK1=/etc/agentcell-base-test-$ID-1
MARK2=/etc/agentcell-base-test-$ID-2
touch "$MARK1"
check_eq "a new file in the host's /etc reaches new sandboxes" "$MARK1" "$(ac run -- ls "$MARK1")"
check_eq "the base in use by a running sandbox is kept" 2 "$(BASES)"
for n in $(ac list --json | jq -r '.[].name'); do ac stop "$n" >/dev/null; done
touch "$MARK2"
ac run -- true >/dev/null
check_eq "unused old bases are collected when a new one is built" 1 "$(BASES)"
check_ac "start $P again (on the new base)" start "$P"
check_eq "... and it sees the host's current /etc" "$MARK2" "$(ac exec "$P" -- ls "$MARK2")"
rm -f "$MARK1" "$MARK2"
