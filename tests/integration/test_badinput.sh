#!/bin/bash
# Bad input: every error is one line "agentcell: ..." on stderr, exit 2 for usage errors and
# 1 for the rest, and nothing is created or changed. Help texts name every option.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

ID=$(uniq_id)
OK=ok-$ID # an existing, stopped sandbox
STOPPED=$OK
check_ac "create a sandbox to collide with" create "$OK"
RUNNING=up-$ID
check_ac "create and start a running sandbox" create "$RUNNING"
acx start "$RUNNING"
STATE_SUM=$(cat "$AGENTCELL_HOME"/sandboxes/*.json | sha256sum)

# Everything of AGENTCELL_HOME except lock files and the shared host-base cache, with sizes
# and mtimes of the state files.
snapshot() {
	# A running sandbox's disk image changes whenever its file system writes back: its
	# name and size count, not its mtime.
	(cd "$AGENTCELL_HOME" && find . \( -path ./locks -o -path ./base -o -name .lock \) -prune -o \
		-path './data/*/disk.img' -printf '%p %s\n' -o -printf '%p %s %T@\n' | sort)
}

# expect_error "desc" RC ARGS...: agentcell ARGS fails with RC, one error line, no change.
expect_error() {
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
		pass "$desc: one 'agentcell:' line on stderr"
	else
		fail "$desc: one 'agentcell:' line on stderr" "command: agentcell $(printf '%q ' "$@")" "$(acx_diag)"
	fi
	if [ "$before" == "$after" ]; then
		pass "$desc: nothing created or changed"
	else
		fail "$desc: nothing created or changed" "$(diff <(echo "$before") <(echo "$after") | head -20)"
	fi
}

LONG64=$(printf 'a%.0s' $(seq 64))
LONG63=$(printf 'b%.0s' $(seq 63))

# ------------------------------------------------------------------ names
for name in "" "$LONG64" "-x" "a/b" ".." "." "x_" "_x" "x-" "a b" "a.b" "né" "a:b" '$(id)'; do
	expect_error "create '$name' (bad name)" 2 create "$name"
done
check_eq "no sandbox was created by the bad names" "$(printf '%s\n' "$OK" "$RUNNING" | sort)" "$(ac_names | sort)"
for cmd in start stop remove info; do
	expect_error "$cmd 'a/b' (bad name)" 2 "$cmd" "a/b"
done
expect_error "exec 'a/b' (bad name)" 2 exec "a/b" -- true
expect_error "exec '..' (bad name)" 2 exec ".." -- true
for name in a "$LONG63" a_b-c A9 9-Z; do
	acx create "$name"
	if [ "$RC" -eq 0 ]; then pass "create '$name' (valid name) succeeds"; else fail "create '$name' (valid name) succeeds" "$(acx_diag)"; fi
	acx remove "$name"
done

# ------------------------------------------------------------------ unknown options, missing arguments
expect_error "create --bogus (unknown option)" 2 create "n1-$ID" --bogus
expect_error "run --bogus (unknown option)" 2 run --bogus -- true
expect_error "exec --bogus (unknown option)" 2 exec "$RUNNING" --bogus -- true
expect_error "start --bogus (unknown option)" 2 start "$OK" --bogus
expect_error "list --bogus (unknown option)" 2 list --bogus
expect_error "info --bogus (unknown option)" 2 info "$OK" --bogus
expect_error "--bogus (unknown global option)" 2 --bogus
expect_error "unknown command" 2 "bogus-command-$ID"
acx
check_rc "no command at all: exit 2" 2
check_ne "no command at all: says something on stderr" "" "$ERR"
expect_error "create without a name" 2 create
expect_error "start without a name" 2 start
expect_error "exec without a command" 2 exec "$RUNNING"
expect_error "exec without a command after --" 2 exec "$RUNNING" --
expect_error "run without a command" 2 run
expect_error "create --memory without a value" 2 create "n2-$ID" --memory
expect_error "create with an extra argument" 2 create "n3-$ID" extra

# ------------------------------------------------------------------ sizes
for bad in "--memory -5" "--memory 99999999999" "--memory abc" "--memory 0" "--memory 15" "--memory 1048577" \
	"--memory 12abc" "--memory 18446744073709551617" "--cpus 0" "--cpus abc" "--cpus -1" "--cpus nan" "--cpus inf" \
	"--cpus 1e99" "--pids 0" "--pids -1" "--pids abc" "--pids 99999999999999999999" "--profile bogus" \
	"--env NOEQUALS" "--env =v" "--image ''"; do
	eval "set -- $bad"
	expect_error "create $bad" 2 create "n4-$ID" "$@"
done
for bad in "--memory -5" "--cpus 0" "--pids 0" "--timeout -1" "--timeout abc" "--profile bogus"; do
	eval "set -- $bad"
	expect_error "run $bad" 2 run "$@" -- true
done
for bad in "--timeout -1" "--timeout abc" "--env NOEQUALS"; do
	eval "set -- $bad"
	expect_error "exec $bad" 2 exec "$RUNNING" "$@" -- true
done

# ------------------------------------------------------------------ images
expect_error "create --image of a missing directory" 1 create "n5-$ID" --image "/nonexistent-$ID"
expect_error "create --image of a regular file" 1 create "n6-$ID" --image /etc/hostname
expect_error "run --image of a missing directory" 1 run --image "/nonexistent-$ID" -- true
check_contains "the image error names the directory" "$ERR" "/nonexistent-$ID"

# ------------------------------------------------------------------ --network
# The network's inputs (src/net/): every one checked before anything exists.
expect_error "run --network --allow-host of a malformed pattern" 2 run --network --allow-host 'bad host!' -- true
check_contains "the pattern error names the pattern" "$ERR" "invalid host pattern 'bad host!'"
expect_error "create --block-host of a malformed wildcard" 2 create "n7-$ID" --network --block-host '*.'
expect_error "create --allow-host without --network" 2 create "n7-$ID" --allow-host example.com
check_contains "the policy error says the network must be on" "$ERR" "network on"
expect_error "create --secret of a secret that does not exist" 1 create "n7-$ID" --network --secret "NOPE_${ID//-/_}@api.example.com"
check_contains "the missing secret error names the set command" "$ERR" "agentcell secret set NOPE_"
expect_error "create --secret of a malformed binding" 2 create "n7-$ID" --network --secret 'bad key@api.example.com'
expect_error "create --publish of an out-of-range port" 2 create "n7-$ID" --publish 99999:80
expect_error "create --publish of a malformed spec" 2 create "n7-$ID" --publish 8080
# A port in use on the host: one line naming it, nothing created.
INUSE=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PY" -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); time.sleep(60)' "$INUSE" &
HOLDER=$!
wait_until 10 "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$INUSE"
expect_error "create --publish of a port in use" 1 create "n7-$ID" --publish "$INUSE:8000"
check_contains "the port error names the port" "$ERR" "127.0.0.1:$INUSE is in use"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
check_eq "and no sandbox was made" "" "$(ac list --json | jq -r '.[].name' | grep -x "n7-$ID")"
# A secret's value never comes from the command line.
expect_error "secret set KEY VALUE (a value on argv)" 2 secret set "K_${ID//-/_}" value
expect_error "secret set of a malformed key" 2 secret set "bad-key" --from-env PATH
expect_error "secret rm of a secret that does not exist" 1 secret rm "NOPE_${ID//-/_}"

# ------------------------------------------------------------------ duplicates and unknown sandboxes
expect_error "create of an existing name" 1 create "$OK"
check_contains "the duplicate error names the sandbox" "$ERR" "$OK"
expect_error "create of an existing name with other options" 1 create "$OK" --memory 100
check_eq "the existing sandboxes' state files are unchanged" "$STATE_SUM" "$(cat "$AGENTCELL_HOME"/sandboxes/*.json | sha256sum)"
for cmd in start stop remove info; do
	expect_error "$cmd of an unknown sandbox" 1 "$cmd" "nope-$ID"
done
expect_error "exec in an unknown sandbox" 1 exec "nope-$ID" -- true
check_contains "the unknown-sandbox error names it" "$ERR" "nope-$ID"
expect_error "exec in a stopped sandbox" 1 exec "$STOPPED" -- true
check_eq "no lock file is left behind for unknown names" "" "$(ls "$AGENTCELL_HOME/locks" 2>/dev/null | grep -F "nope-$ID")"
check_eq "no cgroup was created for any rejected name" "" "$(for n in n1 n2 n3 n4 n5 n6 n7 nope; do cg_dirs "$n-$ID"; done)"
check_eq "the sandboxes are still the two created ones" "$(printf '%s\n' "$OK" "$RUNNING" | sort)" "$(ac_names | sort)"
acx exec "$RUNNING" -- echo alive
check_out "the running sandbox was not disturbed by the errors" "alive"
check_eq "the stopped sandbox is still stopped" "stopped" "$(ac_status "$OK")"

# ------------------------------------------------------------------ help
acx --help
check_rc "--help exits 0" 0
for c in run create start exec stop remove list info doctor; do
	check_contains "--help names the command $c" "$OUT" "$c"
done
COMMON="--image --memory --cpus --pids --disk --mount-cwd --read-only --env --profile --network"
acx run --help
check_rc "run --help exits 0" 0
for o in $COMMON --timeout --keep -i; do check_contains "run --help mentions $o" "$OUT" "$o"; done
acx create --help
check_rc "create --help exits 0" 0
for o in $COMMON; do check_contains "create --help mentions $o" "$OUT" "$o"; done
acx exec --help
check_rc "exec --help exits 0" 0
for o in --env --workdir --user --timeout -i -t; do check_contains "exec --help mentions $o" "$OUT" "$o"; done
for c in list info; do
	acx "$c" --help
	check_rc "$c --help exits 0" 0
	check_contains "$c --help mentions --json" "$OUT" "--json"
done
for c in start stop remove doctor; do
	acx "$c" --help
	check_rc "$c --help exits 0" 0
	check_contains "$c --help prints a usage line on stdout" "$OUT" "agentcell $c"
done
check_eq "--help created nothing" "$(printf '%s\n' "$OK" "$RUNNING" | sort)" "$(ac_names | sort)"

# Every option each command accepts (with a valid value) is listed as an option line of its
# --help, and is accepted: "CMD OPT[=VALUE] --help" gets as far as the help. An unknown
# option fails with exit 2 and names it. -h works everywhere.
SANDBOX_OPTS="--image=host --memory=100 --cpus=1.5 --pids=64 --disk=100 --disk=unlimited --mount-cwd \
--read-only --env=A=b --profile=moderate --backend=native --network --init-script=true \
--init-script-file=/etc/hostname --agent=claude --file=/etc/hostname:/x --config=/nonexistent"
LIFETIME_OPTS="--ttl=1h --auto-stop-after=1h --auto-archive-after=2h --auto-delete-after=1d --label=a=b"
OPTS_OF=(
	"run:$SANDBOX_OPTS $LIFETIME_OPTS --timeout=5 -i --interactive --keep --name=x"
	"create:$SANDBOX_OPTS $LIFETIME_OPTS"
	"exec:--env=A=b --workdir=/ -w=/ --user=root -u=root --timeout=0.5 -i --interactive -t --tty -d --detach"
	"start:" "stop:" "remove:" "cp:" "doctor:" "exec-kill:" "recover:" "describe:" "metrics:"
	"files:-r --recursive" "list:--json --label=a=b" "info:--json" "agents:--json"
	"exec-list:--json" "exec-status:--json" "exec-logs:--stderr --follow -f"
	"extend:--by=90s" "gc:--json" "reconcile:--dry-run --json" "label:--remove=a --json"
	"policy:--auto-stop-after=1h --auto-archive-after=none --auto-delete-after=1h --clear --json"
	"resize:--memory=100 --cpus=1 --pids=64" "audit:--sandbox=x --limit=5 --json"
	"serve:--host=127.0.0.1 --port=0 --socket=/tmp/x --config=/x --exec-timeout=1h --idle-timeout=30s --max-conns-per-ip=4 --image-root=/tmp -v --verbose"
	"mcp:--config=/x --image-root=/tmp --mount-cwd"
)
for entry in "${OPTS_OF[@]}"; do
	cmd=${entry%%:*}
	acx "$cmd" --help
	HELP=$OUT
	check_match "$cmd --help: exit 0 and a usage line" "^0:Usage: agentcell $cmd" "$RC:$HELP"
	acx "$cmd" -h
	check_eq "$cmd -h prints the same help" "0:$HELP" "$RC:$OUT"
	unlisted="" refused=""
	for o in ${entry#*:}; do
		name=${o%%=*}
		if [[ $name == --* ]]; then re="^  (-[a-zA-Z], )?$name( |$)"; else re="^  $name, --"; fi
		grep -Eq -- "$re" <<<"$HELP" || unlisted+=" $name"
		acx "$cmd" "$o" --help
		if [ "$RC" != 0 ] || [ "$OUT" != "$HELP" ]; then refused+=" $o(exit $RC: $ERR)"; fi
		# The value as a separate argument works the same way.
		if [[ $o == *=* && $name == --* ]]; then
			acx "$cmd" "$name" "${o#*=}" --help
			[ "$RC" = 0 ] || refused+=" '$name ${o#*=}'(exit $RC: $ERR)"
		fi
	done
	check_eq "$cmd --help lists every option $cmd accepts" "" "$unlisted"
	check_eq "$cmd accepts each of its options" "" "$refused"
	acx "$cmd" "--no-such-option-$ID"
	check_rc "$cmd --no-such-option: exit 2" 2
	check_contains "$cmd --no-such-option: the error names it" "$ERR" "unknown option '--no-such-option-$ID'"
	check_error_line "$cmd --no-such-option: one error line"
	acx "$cmd" -Q
	check_rc "$cmd -Q (unknown short option): exit 2" 2
	check_contains "$cmd -Q: the error names it" "$ERR" "'-Q'"
done
# The help is made from the same tables: a flag given a value, and a value option without one.
acx list --json=yes
check_rc "list --json=yes: exit 2" 2
check_contains "list --json=yes: says --json takes no value" "$ERR" "'--json' takes no value"
acx exec "$RUNNING" --workdir
check_rc "exec NAME --workdir (no value): exit 2" 2
check_contains "exec --workdir without a value: says so" "$ERR" "option '--workdir' needs a value"
# Bundled short flags of exec, and "--" before the name.
acx exec -it "$RUNNING" -- true
check_rc "exec -it NAME -- true: accepted" 0
acx exec -ti -- "$RUNNING" sh -c 'exit 3'
check_rc "exec -ti -- NAME CMD: the name after --, CMD's exit status" 3
acx exec -iQ "$RUNNING" -- true
check_rc "exec -iQ: exit 2" 2
check_contains "exec -iQ: the error names the bundle" "$ERR" "unknown option '-iQ'"
acx help exec
check_eq "'agentcell help exec' prints exec's help" "0:$(ac exec --help)" "$RC:$OUT"
check_eq "options and --help created nothing" "$(printf '%s\n' "$OK" "$RUNNING" | sort)" "$(ac_names | sort)"

# ------------------------------------------------------------------ non-root
NRHOME=$(mktemp -d /tmp/agentcell-it-nonroot.XXXXXX)
chmod 777 "$NRHOME"
at_exit "rm -rf --one-file-system $NRHOME"
if command -v setpriv >/dev/null && setpriv --reuid 65534 --regid 65534 --clear-groups test -x "$AGENTCELL"; then
	NR=$(cd /tmp && AGENTCELL_HOME=$NRHOME timeout 30 setpriv --reuid 65534 --regid 65534 --clear-groups "$AGENTCELL" run -- true 2>&1)
	NRRC=$?
	check_ne "non-root: run fails" 0 "$NRRC"
	check_match "non-root: says the native backend needs root" '^agentcell: .*root' "$NR"
	check_eq "non-root: one line" 1 "$(printf '%s' "$NR" | grep -c '')"
	NR=$(cd /tmp && AGENTCELL_HOME=$NRHOME timeout 30 setpriv --reuid 65534 --regid 65534 --clear-groups "$AGENTCELL" doctor 2>&1)
	check_contains "non-root: doctor says root is needed" "$(tr 'A-Z' 'a-z' <<<"$NR")" "root"
else
	skip "non-root checks" "setpriv missing or the binary is not executable by nobody"
fi
