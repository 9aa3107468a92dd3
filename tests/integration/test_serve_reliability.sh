#!/bin/bash
# `serve` is threaded: what it forks must not run its code after the fork, a start has a
# deadline and ends with its client, a builder a dead serve left is ended at the next
# start, and a create killed half-way is undone by the next serve (or gc).
# Nothing here is a race: strace shows what serve's children do, and a test hook holds a
# start's builder (stopped) where a real one could hang.
. "$(dirname "$0")/lib.sh"
ac_setup

HAVE_STRACE=1
command -v strace >/dev/null || HAVE_STRACE=0
command -v curl >/dev/null || { fail "curl is available"; exit 1; }

# post PATH BODY [curl args...]: prints the body, then the status on a line of its own.
post() {
	local path=$1 body=$2
	shift 2
	curl -s --max-time 60 -w '\n%{http_code}' -X POST "http://127.0.0.1:$SRV_PORT$path" \
		-H 'Content-Type: application/json' -d "$body" "$@"
}

# A serve started with AGENTCELL_TEST_HOLD_BUILDER=NAME stops (SIGSTOP) the builders of
# NAME's starts before they do anything: a builder that hangs, deterministically.
# wait_held NAME: sets HELD to the held builder's pid (from its record), once stopped.
wait_held() {
	HELD=
	wait_until 15 sh -c "p=\$(awk '{print \$1}' '$AGENTCELL_HOME/run/$1.sock.builder' 2>/dev/null) &&
		[ -n \"\$p\" ] && grep -Eq '^State:[[:space:]]*T' /proc/\$p/status" &&
		HELD=$(builder_pid "$1")
}

# The builder of a start of NAME, from its record (pid and start time).
builder_pid() { awk '{print $1}' "$AGENTCELL_HOME/run/$1.sock.builder" 2>/dev/null; }
state_has_mark() { jq -e '.creating.pid' "$AGENTCELL_HOME/sandboxes/$1.json" >/dev/null 2>&1; }

# ============================================= 1. nothing of serve's runs after its forks
# Every process serve forks must make only the system calls of a vfork-style child (fds,
# signals, credentials, namespaces) until it execs or exits: a child that went on into
# serve's code (allocation, files, mounts) could wait for ever for a lock another thread
# held at the fork. strace shows each child's calls; the allow-list is what a
# posix_spawn child and the user-namespace helper make.
if [ "$HAVE_STRACE" = 1 ] && start_server forks -- --port 0; then
	post /run '{"command":["true"]}' >/dev/null # warm: host base, seccomp cache
	strace -f -qq -o "$AC_TMP/forks.trace" -p "$SRV_PID" &
	ST=$!
	sleep 0.5
	R=$(post /run '{"command":["echo","traced"]}')
	curl -s --max-time 30 -o /dev/null -X POST "http://127.0.0.1:$SRV_PORT/sandboxes" \
		-H 'Content-Type: application/json' -d '{"name":"traced"}'
	kill "$ST"
	wait "$ST" 2>/dev/null
	check_contains "a traced /run answers" "$R" traced
	# shellcheck disable=SC2046 # one argument per thread id
	V=$($PY - "$AC_TMP/forks.trace" $(ls "/proc/$SRV_PID/task") <<'EOF'
import re, sys
allowed = {"close", "close_range", "dup2", "dup3", "fcntl", "prctl", "unshare", "write",
           "read", "rt_sigaction", "rt_sigprocmask", "set_robust_list", "getpid", "gettid",
           "exit", "exit_group", "execve", "sigaltstack"}
lines = open(sys.argv[1]).read().splitlines()
# serve's threads (the main one and those it cloned with CLONE_THREAD) and the processes
# they forked; what the exec'd builders fork later is theirs, not serve's.
serve, forked, pending, done = set(sys.argv[2:]), set(), {}, set()
def born(parent, child, is_thread):
    if parent in serve:
        (serve if is_thread else forked).add(child)
for l in lines:
    m = re.match(r"(\d+)\s+(clone3?|fork|vfork)\(", l)
    if m:
        if "<unfinished ...>" in l:
            pending[m.group(1)] = "CLONE_THREAD" in l
            continue
        r = re.search(r"= (\d+)$", l)
        if r: born(m.group(1), r.group(1), "CLONE_THREAD" in l)
        continue
    m = re.match(r"(\d+)\s+<\.\.\. (clone3?|fork|vfork) resumed>.*= (\d+)$", l)
    if m and m.group(1) in pending:
        born(m.group(1), m.group(3), pending.pop(m.group(1)))
bad = []
for l in lines:
    m = re.match(r"(\d+)\s+(\w+)\(", l)
    if not m or m.group(1) not in forked or m.group(1) in done: continue
    pid, call = m.group(1), m.group(2)
    if call in ("execve", "exit", "exit_group"):
        done.add(pid); continue
    if call not in allowed and '"/dev/null"' not in l: bad.append(l[:160])
print(len(forked), len(done))
for b in bad[:15]: print(b)
EOF
)
	N=$(head -1 <<<"$V")
	check_gt "serve forked children for a run and a create (forked, exec'd or exited)" "${N%% *}" 1
	check_eq "serve's forked children only set up descriptors and exec (or exit)" "" "$(tail -n +2 <<<"$V")"
	check "the builder is the agentcell binary afresh" grep -q '__builder' "$AC_TMP/forks.trace"
	stop_server forks "$SRV_PID"
else
	skip "serve's forked children only set up descriptors and exec" "no strace"
fi

# ============================================= 2. many runs and starts at once finish
# Under the sanitizer build, a fork that inherited a held allocator lock hung a start for
# ever; here 40 /run and 8 creates race, each must answer within its deadline.
if start_server burst -- --port 0; then
	: >"$AC_TMP/burst.codes"
	# One run first: the host base of a fresh home is built once, not 40 times at once.
	curl -s -o /dev/null --max-time 120 -X POST "http://127.0.0.1:$SRV_PORT/run" \
		-H 'Content-Type: application/json' -d '{"command":["true"]}'
	for i in $(seq 1 40); do
		curl -s --max-time 280 -o /dev/null -w '%{http_code}\n' -X POST \
			"http://127.0.0.1:$SRV_PORT/run" -H 'Content-Type: application/json' \
			-d '{"command":["sh","-c","echo ok"]}' >>"$AC_TMP/burst.codes" &
	done
	for i in $(seq 1 8); do
		curl -s --max-time 280 -o /dev/null -w '%{http_code}\n' -X POST \
			"http://127.0.0.1:$SRV_PORT/sandboxes" -H 'Content-Type: application/json' \
			-d "{\"name\":\"burst$i\"}" >>"$AC_TMP/burst.codes" &
	done
	t0=$SECONDS
	# A bound for "never hangs", not a speed figure (bench/ measures speed).
	burst_done() { [ "$(wc -l <"$AC_TMP/burst.codes")" -ge 48 ]; }
	wait_until 300 burst_done
	check_eq "48 concurrent /run and creates all answer 200/201" \
		"$(printf '200\n%.0s' $(seq 40); printf '201\n%.0s' $(seq 8))" \
		"$(sort "$AC_TMP/burst.codes")"
	check_le "... none hangs (all within 300 s; took $((SECONDS - t0)) s)" $((SECONDS - t0)) 300
	for i in $(seq 1 8); do curl -s -o /dev/null -X DELETE "http://127.0.0.1:$SRV_PORT/sandboxes/burst$i"; done
	stop_server burst "$SRV_PID"
else
	fail "serve starts" "$(cat "$AC_TMP/burst.err")"
fi

# ============================================= 3. a start has a deadline
check_ac "a CLI sandbox to start through the API" create slow
if start_server deadline AGENTCELL_TEST_START_DEADLINE_MS=1500 AGENTCELL_TEST_HOLD_BUILDER=slow -- --port 0; then
	t0=$(date +%s%N)
	post /sandboxes/slow/start '{}' >"$AC_TMP/deadline.resp" &
	CURL=$!
	wait_held slow
	check "a start's builder is recorded beside the socket (and held)" test -n "$HELD"
	wait "$CURL"
	R=$(cat "$AC_TMP/deadline.resp")
	ms=$((($(date +%s%N) - t0) / 1000000))
	check_eq "a start stuck in its builder fails (502)" 502 "$(tail -1 <<<"$R")"
	check_contains "... saying it did not start in time" "$R" "did not start within"
	check_le "... at its deadline (1.5 s)" "$ms" 10000
	check_eq "... and the sandbox is stopped" stopped "$(ac_status slow)"
	check "... and its builder is gone" wait_until 5 sh -c "! kill -0 ${HELD:-0} 2>/dev/null"
	stop_server deadline "$SRV_PID"
fi

# ============================================= 4. a start ends with its client
if start_server cancel AGENTCELL_TEST_HOLD_BUILDER=slow -- --port 0; then
	curl -s --max-time 30 -o /dev/null -X POST "http://127.0.0.1:$SRV_PORT/sandboxes/slow/start" \
		-H 'Content-Type: application/json' -d '{}' &
	CURL=$!
	wait_held slow
	check "a held builder" test -n "$HELD"
	sleep 1
	check "... lives while its client waits" kill -0 "${HELD:-0}"
	kill "$CURL"
	check "a start whose client hung up kills its builder" wait_until 5 sh -c "! kill -0 ${HELD:-0} 2>/dev/null"
	check_eq "... and the sandbox is stopped" stopped "$(ac_status slow)"
	check_eq "the server still answers" 200 "$(tail -1 <<<"$(post /run '{"command":["true"]}')")"
	stop_server cancel "$SRV_PID"
fi

# ============================================= 5. a builder a killed serve left is ended
# serve is killed -9 while its builder is held in a delayed mount (strace keeps holding it):
# the next start (here the CLI's) must end that builder, identified by pid + start time.
if start_server leftover AGENTCELL_TEST_HOLD_BUILDER=slow -- --port 0; then
	curl -s --max-time 30 -o /dev/null -X POST "http://127.0.0.1:$SRV_PORT/sandboxes/slow/start" \
		-H 'Content-Type: application/json' -d '{}' &
	bg_track $!
	wait_held slow
	OLD=$HELD
	check "a start's builder is held" test -n "$OLD"
	kill -9 "$SRV_PID"
	sleep 0.3
	check "the killed serve's builder lives on (hung)" kill -0 "${OLD:-0}"
	check_ac "the next start of the sandbox succeeds" start slow
	check "... and has ended the old builder" wait_until 5 sh -c "! kill -0 ${OLD:-0} 2>/dev/null"
	check_eq "the sandbox runs" running "$(ac_status slow)"
	ac stop slow >/dev/null 2>&1
fi

# ============================================= 6. half-made creates are undone
# The API promises "created and started, or not there at all": serve is killed -9 between
# the create and the end of its start. The next serve (or gc) removes the half-made
# sandbox; one created by the CLI (no such promise) is left alone.
declare -A HELD_BY
half_made() { # NAME: a create through a fresh serve, killed while the start's builder waits
	local name=$1
	start_server "half-$name" AGENTCELL_TEST_HOLD_BUILDER="$name" -- --port 0 || return 1
	curl -s --max-time 30 -o /dev/null -X POST "http://127.0.0.1:$SRV_PORT/sandboxes" \
		-H 'Content-Type: application/json' -d "{\"name\":\"$name\"}" &
	bg_track $!
	wait_held "$name"
	check "$name: the create's start is held" test -n "$HELD"
	HELD_BY[$name]=$HELD
	check "$name: the create's state carries its mark meanwhile" state_has_mark "$name"
	check_eq "$name: list shows it as creating" creating "$(ac_status "$name")"
	kill -9 "$SRV_PID"
	sleep 0.3
	check_eq "$name: with its server dead, list shows it as abandoned" abandoned "$(ac_status "$name")"
}
check_ac "a CLI-created sandbox (stopped)" create cli-made
half_made half1
if start_server repair -- --port 0; then
	check_contains "the next serve says what it undid" "$(cat "$AC_TMP/repair.err")" "removed 1 sandbox"
	check_eq "... the half-made sandbox is gone" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SRV_PORT/sandboxes/half1")"
	check_eq "... the CLI-created sandbox is left alone" stopped "$(ac_status cli-made)"
	check "... its held builder is gone" wait_until 5 sh -c "! kill -0 ${HELD_BY[half1]:-0} 2>/dev/null"
	R=$(post /sandboxes '{"name":"whole"}')
	check_eq "a create through the repaired server works" 201 "$(tail -1 <<<"$R")"
	check "... and leaves no mark" sh -c "! jq -e .creating '$AGENTCELL_HOME/sandboxes/whole.json' >/dev/null"
	stop_server repair "$SRV_PID"
fi
half_made half2
acx gc
check_rc "gc succeeds" 0
check_contains "gc removes the abandoned create" "$OUT" "half2 (abandoned create)"
check_fail "... it is gone" ac info half2
check "... and its held builder" wait_until 5 sh -c "! kill -0 ${HELD_BY[half2]:-0} 2>/dev/null"
check_eq "... the CLI-created sandbox is left alone" stopped "$(ac_status cli-made)"
check_eq "... the running API-created sandbox too" running "$(ac_status whole)"
