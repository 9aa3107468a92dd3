#!/bin/bash
# A bounded concurrency soak (AC_SOAK_SECONDS, default 40): five workers create, start,
# exec, stop and remove sandboxes on shared and distinct names through the CLI and the
# HTTP API while SIGKILL hits CLI clients, supervisors and `serve` (tests/integration/
# soak.py). Then: no file of a sandbox that was never removed is lost, every state file is
# valid, `list` equals the state on disk, no start failed spuriously, and after a final gc
# nothing is left of the removed sandboxes.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

SECS=${AC_SOAK_SECONDS:-40}
KEEPERS="keep0 keep1 keep2"

timeout -k 10 $((SECS + 240)) "$PY" "$AC_LIB_DIR/soak.py" "$AGENTCELL" "$SECS" >"$AC_TMP/soak.out" 2>"$AC_TMP/soak.err"
RC=$?
OUT=$(cat "$AC_TMP/soak.out")
val() { sed -n "s/^$1=//p" <<<"$OUT" | head -1; }
if [ "$RC" -ne 0 ] || [ "$(val setup)" != ok ]; then
	fail "the soak ran (${SECS}s)" "exit status: $RC" "$(_ac_clip "$OUT")" "$(tail -20 "$AC_TMP/soak.err")"
else
	pass "the soak ran ${SECS}s: $(val ops) operations, killed $(val killed_clients) clients, $(val killed_supervisors) supervisors, serve $(val killed_serve) times"
fi
NOTES=$(sed -n 's/^note=//p' <<<"$OUT")
check_eq "no start failed with 'the supervisor exited during start-up'" 0 "$(val spurious_start)"
if [ "$(val unexpected)" = 0 ]; then
	pass "no operation failed for a reason a concurrent world does not explain"
else
	fail "no operation failed for a reason a concurrent world does not explain" "$NOTES"
fi
check_gt "the workers were busy (more than 50 operations)" "$(val ops)" 50

# Whatever a kill -9 left is repaired by the next gc.
check_ac "gc after the soak" gc

# Every state file is valid JSON of the sandbox it is named after.
bad=""
for f in "$AGENTCELL_HOME"/sandboxes/*.json; do
	[ -e "$f" ] || continue
	n=$(basename "$f" .json)
	[ "$(jq -r .name "$f" 2>/dev/null)" = "$n" ] || bad="$bad $n"
done
check_eq "every state file is valid and names its sandbox" "" "$bad"
ls "$AGENTCELL_HOME"/sandboxes | grep -v '\.json$' >"$AC_TMP/odd"
check_eq "no temporary or stray file among the states" "" "$(cat "$AC_TMP/odd")"

# list equals reality: the names on disk, and each status is what the sandbox does.
acx list --json
check_rc "list --json" 0
LISTED=$(jq -r '.[].name' <<<"$OUT" | sort | tr '\n' ' ')
ONDISK=$(for f in "$AGENTCELL_HOME"/sandboxes/*.json; do [ -e "$f" ] && basename "$f" .json; done | sort | tr '\n' ' ')
check_eq "list shows exactly the sandboxes on disk" "$ONDISK" "$LISTED"
wrong=""
for n in $(jq -r '.[] | select(.status == "running") | .name' <<<"$OUT"); do
	ac exec "$n" -- true >/dev/null 2>&1 || wrong="$wrong $n"
done
check_eq "every sandbox listed as running runs commands" "" "$wrong"

# The keepers were exec'd into and had their supervisors killed, never removed: their
# files are all there.
for k in $KEEPERS; do
	ac start "$k" >/dev/null 2>&1
	acx exec "$k" -- cat /root/keep
	check_eq "$k: its file survived the soak" "keep-$k" "$OUT"
done

# Remove everything else; then nothing may be left of those sandboxes.
for f in "$AGENTCELL_HOME"/sandboxes/*.json; do
	n=$(basename "$f" .json)
	case " $KEEPERS " in *" $n "*) continue ;; esac
	ac remove "$n" >/dev/null 2>&1 || fail "remove $n after the soak" "$(ac remove "$n" 2>&1)"
done
check_ac "gc after removing" gc
left=""
for d in run data locks; do
	for e in "$AGENTCELL_HOME/$d"/*; do
		[ -e "$e" ] || continue
		b=$(basename "$e")
		b=${b%%.*}
		case " $KEEPERS " in *" $b "*) ;; *) left="$left $d/$(basename "$e")" ;; esac
	done
done
check_eq "no run, data or lock entry of a removed sandbox is left" "" "$left"
# Sandbox processes by the cgroup leaf they live in (sb<slot>-<name>).
soak_procs() {
	local p
	for p in $(pgrep -f '^agentcell-init'); do
		sed -n 's/.*\/sb[0-9]*-\(keep[0-9]\|sh[0-9]\|w[0-9]-[0-9]\)$/\1/p' "/proc/$p/cgroup" 2>/dev/null | head -1
	done | sort -u | tr '\n' ' '
}
check_eq "only the keepers' supervisors run" "keep0 keep1 keep2 " "$(soak_procs)"
for k in $KEEPERS; do check_ac "remove $k" remove "$k"; done
check_eq "no supervisor left" "" "$(soak_procs)"
check_eq "no state left" "" "$(ls "$AGENTCELL_HOME/sandboxes")"
check_eq "no slot claim of this home is left" "" "$(grep -l "$AGENTCELL_HOME" /var/lib/agentcell/slots/* 2>/dev/null)"
