#!/bin/bash
# `agentcell serve` end to end: the unchanged npm agentkernel@0.18.1 SDK drives a real server
# through every endpoint it knows (tests/js/sdk_scenario.mjs), plain HTTP covers the rest
# (tests/js/api_raw.mjs: auth, envelope, every 4xx, 413, the routes beyond the SDK, event
# streams, parallelism, clients that go away); here: start-up refusals, the unix socket, the
# API keys' sources, a clean shutdown, nothing left running, and (with the ASan/UBSan build)
# no sanitizer report in the server's stderr.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

JS=$AC_REPO/tests/js
KEY="test-key-$(uniq_id)-$RANDOM$RANDOM"

# ------------------------------------------------------------------ prerequisites

if ! command -v curl >/dev/null; then
	echo "# installing curl"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q curl >/dev/null 2>&1; }
fi
check "curl is available" command -v curl
HAVE_NODE=0
if command -v node >/dev/null && command -v npm >/dev/null; then
	if [ ! -f "$JS/node_modules/agentkernel/package.json" ]; then
		echo "# installing the JS test dependencies (npm ci)"
		npm ci --prefix "$JS" --no-audit --no-fund >"$AC_TMP/npm.txt" 2>&1 || fail "npm ci" "$(tail -20 "$AC_TMP/npm.txt")"
	fi
	if [ -f "$JS/node_modules/agentkernel/package.json" ]; then
		HAVE_NODE=1
		check_eq "the SDK is agentkernel 0.18.1" 0.18.1 "$(jq -r .version "$JS/node_modules/agentkernel/package.json")"
	fi
else
	fail "node and npm are installed (the SDK tests need them)"
fi

# ------------------------------------------------------------------ servers

# stop_server NAME PID (this file's own, over lib.sh's): SIGTERM, then the server must exit 0 within 15 s, say why it
# stopped, and have no sanitizer report on its stderr.
stop_server() {
	local name=$1 pid=$2 rc
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "$name: the server exits on SIGTERM within 15 s" "$(tail -20 "$AC_TMP/$name.err")"
		kill -9 -- "-$pid" 2>/dev/null
		return
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	# bg_track disowned it: wait cannot see its status; the log says how it ended.
	if grep -q 'stopping the API server' "$AC_TMP/$name.err"; then
		pass "$name: the server stops cleanly on SIGTERM"
	else
		fail "$name: the server stops cleanly on SIGTERM" "wait status: $rc" "stderr:" "$(tail -20 "$AC_TMP/$name.err")"
	fi
	check_sanitizers "$name"
}

check_sanitizers() {
	local n
	n=$(grep -cE "$SAN_RE" "$AC_TMP/$1.err")
	if [ "$n" -eq 0 ]; then
		pass "$1: no sanitizer report in the server's stderr"
	else
		fail "$1: no sanitizer report in the server's stderr" "$(grep -E -A30 "$SAN_RE" "$AC_TMP/$1.err" | head -60)"
	fi
}

# relay PREFIX FILE RC: the ok/not ok lines of a JS test as checks of this file.
relay() {
	local prefix=$1 file=$2 rc=$3 line cur="" diags=() n=0 nfail=0
	flush() {
		if [ -n "$cur" ]; then
			fail "$prefix: $cur" "${diags[@]}"
			nfail=$((nfail + 1))
		fi
		cur="" diags=()
	}
	while IFS= read -r line; do
		case "$line" in
		"not ok - "*) flush; cur=${line#not ok - }; n=$((n + 1)) ;;
		"#   "*) if [ -n "$cur" ]; then diags+=("${line#\#   }"); else echo "$line"; fi ;;
		"ok - "*" # SKIP "*) flush; local d=${line#ok - }; skip "$prefix: ${d%% # SKIP *}" "${d#* # SKIP }"; n=$((n + 1)) ;;
		"ok - "*) flush; pass "$prefix: ${line#ok - }"; n=$((n + 1)) ;;
		*) flush; echo "$line" ;;
		esac
	done <"$file"
	flush
	if [ "$n" -eq 0 ]; then
		fail "$prefix: ran (no check reported)" "exit status $rc" "$(tail -30 "$file")"
	elif [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		fail "$prefix: exits 0" "exit status $rc with no failed check" "$(tail -30 "$file")"
	elif ! grep -q "^# $prefix: [0-9]* passed" "$file"; then
		fail "$prefix: ran to its end" "$(tail -30 "$file")"
	fi
}

# run_js NAME FILE URL KEY: runs a JS test (with a watchdog) and relays its checks.
run_js() {
	local name=$1 file=$2 rc
	timeout -k 5 180 node "$file" "$3" "$4" >"$AC_TMP/$name.tap" 2>&1
	rc=$?
	[ $rc -eq 124 ] && echo "# WATCHDOG: $name did not finish within 180 s" >>"$AC_TMP/$name.tap"
	relay "$name" "$AC_TMP/$name.tap" "$rc"
}

# ================================================================== bad start-ups

acx serve --port 70000
check_rc "serve --port 70000: usage error (exit 2)" 2
acx serve --bogus
check_rc "serve --bogus: usage error (exit 2)" 2

# Binding beyond loopback without a key is refused at once, with a clear message.
OUT=$(env -u AGENTCELL_API_KEY -u AGENTKERNEL_API_KEY timeout -k 2 10 "$AGENTCELL" serve --host 0.0.0.0 --port 0 2>&1 </dev/null)
RC=$?
check_ne "serve --host 0.0.0.0 without a key does not serve" 124 "$RC"
check_ne "serve --host 0.0.0.0 without a key exits non-zero" 0 "$RC"
check_contains "serve --host 0.0.0.0 without a key: says an API key is needed" "$OUT" "API key"
check_eq "serve --host 0.0.0.0 without a key: one line of error" 1 "$(printf '%s\n' "$OUT" | grep -c '')"
check_match "serve --host 0.0.0.0 without a key: starts with 'agentcell:'" '^agentcell: ' "$OUT"

# ================================================================== the main server (API key)

if start_server main AGENTCELL_API_KEY="$KEY" -- --port 0; then
	pass "serve --port 0 starts (port $SRV_PORT)"
else
	fail "serve --port 0 starts" "$(cat "$AC_TMP/main.err")"
fi
MAIN_PID=$SRV_PID
URL=http://127.0.0.1:$SRV_PORT
check_contains "serve says a key is required" "$(cat "$AC_TMP/main.err")" "API key required"
check_eq "GET /health over TCP" '{"success":true,"data":"ok"}' "$(curl -s --max-time 5 "$URL/health")"

# A second server on the same port fails at once with a clear message.
OUT=$(env AGENTCELL_API_KEY=x timeout -k 2 10 "$AGENTCELL" serve --port "$SRV_PORT" 2>&1 </dev/null)
RC=$?
check_ne "serve on a port in use: does not hang" 124 "$RC"
check_ne "serve on a port in use: exits non-zero" 0 "$RC"
check_contains "serve on a port in use: names the port" "$OUT" "$SRV_PORT"

if [ "$HAVE_NODE" = 1 ]; then
	run_js sdk_scenario "$JS/sdk_scenario.mjs" "$URL" "$KEY"
	run_js api_raw "$JS/api_raw.mjs" "$URL" "$KEY"
else
	skip "sdk_scenario" "node or the SDK is missing"
	skip "api_raw" "node or the SDK is missing"
fi
check "main: the server survived the JS tests" kill -0 "$MAIN_PID"

# Nothing the tests made is left, and no sandbox runs.
check_eq "no sandbox is left after the JS tests" "" "$(ac_names | tr '\n' ' ')"
M=$(curl -s --max-time 5 "$URL/metrics")
check_match "metrics: no sandbox running" 'agentcell_sandboxes\{status="running"\} 0' "$M"
left_cgroups() {
	local d
	for d in /sys/fs/cgroup/*/agentcell/*/; do
		[[ -d "$d" && "$d" =~ /(sb[0-9]+-)?(sdk|raw)-[0-9]+- ]] && echo "$d"
	done
	return 0
}
check_eq "no cgroup of a sandbox is left" "" "$(left_cgroups | head -5)"
stop_server main "$MAIN_PID"
check_fail "main: nothing listens on the port after the stop" curl -s --max-time 2 "$URL/health"

# ================================================================== keys from AGENTKERNEL_API_KEY, 0.0.0.0
AK="ak-$(uniq_id)"
if start_server wide AGENTKERNEL_API_KEY="$AK" -- --host 0.0.0.0 --port 0; then
	pass "serve --host 0.0.0.0 with a key (AGENTKERNEL_API_KEY) starts"
	WIDE=http://127.0.0.1:$SRV_PORT
	check_eq "AGENTKERNEL_API_KEY: the key works" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $AK" "$WIDE/sandboxes")"
	check_eq "AGENTKERNEL_API_KEY: no key -> 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$WIDE/sandboxes")"
	check_eq "AGENTKERNEL_API_KEY: /health open" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$WIDE/health")"
	stop_server wide "$SRV_PID"
else
	fail "serve --host 0.0.0.0 with a key (AGENTKERNEL_API_KEY) starts" "$(cat "$AC_TMP/wide.err")"
fi

# ================================================================== unix socket, no key
SOCK=$AC_TMP/api.sock
if start_server unix -- --socket "$SOCK"; then
	pass "serve --socket starts"
	check_contains "serve --socket: says where" "$(cat "$AC_TMP/unix.err")" "unix:$SOCK"
	check_eq "serve --socket: the socket is 0600" 600 "$(stat -c %a "$SOCK" 2>/dev/null)"
	check_eq "serve --socket: GET /health over the unix socket" '{"success":true,"data":"ok"}' \
		"$(curl -s --max-time 5 --unix-socket "$SOCK" http://localhost/health)"
	R=$(curl -s --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
		-d '{"command":["sh","-c","echo via-socket"]}' http://localhost/run)
	check_eq "serve --socket: POST /run (no key needed on a local socket)" "via-socket" "$(jq -r '.data.output' <<<"$R" 2>/dev/null | tr -d '\n')"
	S=$(curl -sN --max-time 30 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
		-d '{"command":["echo","streamed"]}' http://localhost/run/stream)
	check_contains "serve --socket: POST /run/stream sends output and done" "$S" 'event: done'
	check_contains "serve --socket: the stream carries the output" "$S" '"data":"streamed\n"'
	stop_server unix "$SRV_PID"
	check_fail "serve --socket: the socket file is removed at stop" test -e "$SOCK"
else
	fail "serve --socket starts" "$(cat "$AC_TMP/unix.err")"
fi

# Requests come from other users: nothing of the host's file system reaches a sandbox
# unless the server allows it. A directory image is refused (e.g. /etc, whose shadow file the
# sandbox's root could then read), the permissive profile mounts no /workspace (it would be
# the server's working directory, writable), and --image-root allows what is below it.
IMGROOT=$AC_TMP/images
mkdir -p "$IMGROOT/tiny/bin" "$AC_TMP/serve-cwd"
cp /bin/busybox "$IMGROOT/tiny/bin/" 2>/dev/null || cp "$(command -v busybox)" "$IMGROOT/tiny/bin/"
ln -sf busybox "$IMGROOT/tiny/bin/sh"
echo "server-secret-$(uniq_id)" >"$AC_TMP/serve-cwd/secret.txt"
cd "$AC_TMP/serve-cwd" || exit 1
start_server hostfs -- --port 0 --image-root "$IMGROOT"
HOSTFS_OK=$?
cd "$AC_REPO" || exit 1
if [ "$HOSTFS_OK" = 0 ]; then
	U=http://127.0.0.1:$SRV_PORT
	HN=hostfs-$(uniq_id)
	R=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$HN\",\"image\":\"/etc\"}" "$U/sandboxes")
	check_eq "a host directory image (/etc) is refused over the API: 403" 403 "$(tail -n1 <<<"$R")"
	check_contains "and the message says why" "$(head -n1 <<<"$R")" "image root"
	check_eq "and nothing was created" "" "$(ac_list_entry "$HN")"
	R=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"cat\",\"/etc/hostname\"],\"image\":\"/root\"}" "$U/run")
	check_eq "a host directory image is refused for /run too" false "$(jq -r .success <<<"$R")"
	R=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$HN\",\"profile\":\"permissive\"}" "$U/sandboxes")
	check_eq "permissive over the API: created" true "$(jq -r .success <<<"$R")"
	R=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"command":["sh","-c","cat /workspace/secret.txt 2>/dev/null || echo no-workspace"]}' "$U/sandboxes/$HN/exec")
	check_eq "permissive over the API mounts nothing of the server's directory" no-workspace \
		"$(jq -r .data.output <<<"$R" | tr -d '\n')"
	curl -s -X DELETE "$U/sandboxes/$HN" >/dev/null
	R=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"/bin/sh\",\"-c\",\"echo from-image\"],\"image\":\"$IMGROOT/tiny\"}" "$U/run")
	check_eq "an image below --image-root is allowed" from-image "$(jq -r .data.output <<<"$R" | tr -d '\n')"
	stop_server hostfs "$SRV_PID"
else
	fail "serve --image-root starts" "$(cat "$AC_TMP/hostfs.err")"
fi

# serve --exec-timeout: a command whose request sets no timeout is limited; one that sets
# its own keeps it.
acx serve --exec-timeout 0
check_rc "serve --exec-timeout 0: usage error (exit 2)" 2
if start_server exectimeout -- --port 0 --exec-timeout 2s; then
	U=http://127.0.0.1:$SRV_PORT
	T0=$(date +%s)
	R=$(curl -s --max-time 30 -X POST -H 'Content-Type: application/json' -d '{"command":["sleep","20"],"full":true}' "$U/run")
	check_eq "--exec-timeout 2s: a request without a timeout is stopped (124)" 124 "$(jq -r .data.exit_code <<<"$R")"
	check_eq "--exec-timeout 2s: timed_out is reported" true "$(jq -r .data.timed_out <<<"$R")"
	check_le "--exec-timeout 2s: within a few seconds" "$(($(date +%s) - T0))" 8
	R=$(curl -s --max-time 30 -X POST -H 'Content-Type: application/json' -d '{"command":["sh","-c","sleep 3; echo late"],"timeout":10}' "$U/run")
	check_eq "--exec-timeout 2s: a request's own timeout wins" late "$(jq -r .data.output <<<"$R" | tr -d '\n')"
	stop_server exectimeout "$SRV_PID"
else
	fail "serve --exec-timeout starts" "$(cat "$AC_TMP/exectimeout.err")"
fi

# A client that hangs up takes its command with it: an exec, a one-shot run, a stream and
# a batch are killed (their whole tree), a detached command is not, and the sandbox lives on.
if start_server cancel -- --port 0; then
	U=http://127.0.0.1:$SRV_PORT
	CN=cancel-$(uniq_id)
	curl -s --max-time 20 -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$CN\"}" "$U/sandboxes" >/dev/null
	T=$(uniq_id)
	gone_after() { # PATTERN: no host process matches within 5 s
		for _ in $(seq 1 50); do pgrep -f "$1" >/dev/null || return 0; sleep 0.1; done
		return 1
	}
	curl -s --max-time 1 -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"sh\",\"-c\",\"sleep 61.$T; touch /tmp/after\"]}" \
		"$U/sandboxes/$CN/exec" >/dev/null
	check "cancel: an exec whose client hung up is killed" gone_after "sleep 61.$T"
	check_eq "cancel: and it did not go on after its sleep" none \
		"$(ac exec "$CN" -- sh -c 'test -e /tmp/after && echo there || echo none')"
	curl -s --max-time 1 -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"sh\",\"-c\",\"sleep 62.$T\"]}" "$U/run" >/dev/null
	check "cancel: a one-shot run whose client hung up is killed" gone_after "sleep 62.$T"
	curl -sN --max-time 1 -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"sh\",\"-c\",\"echo x; sleep 63.$T\"]}" \
		"$U/sandboxes/$CN/exec/stream" >/dev/null
	check "cancel: a streamed exec whose client hung up is killed" gone_after "sleep 63.$T"
	curl -s --max-time 1 -X POST -H 'Content-Type: application/json' -d "{\"commands\":[{\"command\":[\"sleep\",\"64.$T\"]},{\"command\":[\"sleep\",\"64.$T\"]}]}" \
		"$U/batch/run" >/dev/null
	check "cancel: a batch whose client hung up is killed" gone_after "sleep 64.$T"
	curl -s --max-time 5 -X POST -H 'Content-Type: application/json' -d "{\"command\":[\"sleep\",\"65.$T\"]}" "$U/sandboxes/$CN/exec/detach" >/dev/null
	sleep 0.5
	check "cancel: a detached command outlives its request" pgrep -f "sleep 65.$T"
	R=$(curl -s --max-time 10 -X POST -H 'Content-Type: application/json' -d '{"command":["echo","alive"]}' "$U/sandboxes/$CN/exec")
	check_eq "cancel: the sandbox still serves execs" alive "$(jq -r .data.output <<<"$R" | tr -d '\n')"
	curl -s --max-time 20 -X DELETE "$U/sandboxes/$CN" >/dev/null
	stop_server cancel "$SRV_PID"
else
	fail "serve for the cancel checks starts" "$(cat "$AC_TMP/cancel.err")"
fi

# Stopping with a long exec in flight: the server closes the connection, which cancels the
# command (or, failing that, it waits at most 10 s and exits anyway); the sandbox lives on.
LONG=long-$(uniq_id)
if start_server longstop -- --port 0; then
	R=$(curl -s --max-time 20 -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$LONG\"}" "http://127.0.0.1:$SRV_PORT/sandboxes")
	check_eq "a sandbox for the stop test is created" true "$(jq -r .success <<<"$R")"
	curl -s --max-time 60 -X POST -H 'Content-Type: application/json' -d '{"command":["sleep","60"]}' \
		"http://127.0.0.1:$SRV_PORT/sandboxes/$LONG/exec" >/dev/null 2>&1 &
	bg_track $!
	sleep 1
	T0=$(date +%s)
	kill -TERM "$SRV_PID"
	for _ in $(seq 1 400); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
	check_fail "stop with a long exec in flight: the server is gone within 20 s" kill -0 "$SRV_PID"
	check_le "stop with a long exec in flight: it waited at most ~11 s" "$(($(date +%s) - T0))" 12
	check_contains "stop with a long exec in flight: it says it stops" \
		"$(cat "$AC_TMP/longstop.err")" "stopping the API server"
	check_eq "the sandbox still runs after the server left" running "$(ac_status "$LONG")"
	ac remove "$LONG" >/dev/null 2>&1
else
	fail "serve for the stop test starts" "$(cat "$AC_TMP/longstop.err")"
fi

# A stale socket of an earlier server is replaced; a regular file is not.
: >"$AC_TMP/not-a-socket"
OUT=$(timeout -k 2 10 "$AGENTCELL" serve --socket "$AC_TMP/not-a-socket" 2>&1 </dev/null)
RC=$?
check_ne "serve --socket over a regular file: refused (no hang)" 124 "$RC"
check_ne "serve --socket over a regular file: exits non-zero" 0 "$RC"
check "serve --socket over a regular file: the file stays" test -f "$AC_TMP/not-a-socket"

check_eq "no sandbox is left at the end" "" "$(ac_names | tr '\n' ' ')"
