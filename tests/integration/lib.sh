# shellcheck shell=bash
# Shared helpers of the integration tests. Each test file sources this file and calls
# ac_setup first; it is runnable on its own: `bash tests/integration/test_x.sh` (as root).
#
# Output protocol, one line per check:
#   ok - <description>            (optionally "ok - <description> # SKIP <reason>")
#   not ok - <description>        followed by diagnostic lines starting with "#   "
# The file ends with "# <file>: N passed, N failed" and exits 1 if any check failed.
#
# Environment:
#   AGENTCELL        the binary under test (default: build/gcc/agentcell of this checkout)
#   AC_TIMEOUT       watchdog, in seconds, for one agentcell invocation (default 60)
#   AC_KEEP_HOME=1   keep the temporary AGENTCELL_HOME for post-mortem

set -u

AC_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AC_REPO=$(cd "$AC_LIB_DIR/../.." && pwd)
export AGENTCELL=${AGENTCELL:-$AC_REPO/build/gcc/agentcell}
# Absolute: some tests change directory.
case $AGENTCELL in /*) ;; *) AGENTCELL=$PWD/$AGENTCELL ;; esac
AC_TIMEOUT=${AC_TIMEOUT:-60}
# The host's python3 under /usr is the one a sandbox sees (pyenv shims live in /root).
PY=/usr/bin/python3
AC_TEST_NAME=$(basename "$0" .sh)

AC_PASSED=0
AC_FAILED=0
AC_BG_PIDS=()
AC_CLEANUP_CMDS=()
# A command prefix for every agentcell call (tests/net/internet.sh: ip netns exec ...).
AC_WRAP=()

# ---------------------------------------------------------------- reporting

_ac_diag() { # prints its arguments (or stdin if none) as "#   " diagnostic lines
	local line
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | while IFS= read -r line; do printf '#   %s\n' "$line"; done
	else
		while IFS= read -r line; do printf '#   %s\n' "$line"; done
	fi
}

pass() { AC_PASSED=$((AC_PASSED + 1)); printf 'ok - %s\n' "$1"; }

# fail "desc" [diagnostic line...]
fail() {
	AC_FAILED=$((AC_FAILED + 1))
	printf 'not ok - %s\n' "$1"
	shift
	[ $# -gt 0 ] && _ac_diag "$@"
	return 0
}

skip() { AC_PASSED=$((AC_PASSED + 1)); printf 'ok - %s # SKIP %s\n' "$1" "$2"; }

# Truncates long captured output for diagnostics.
_ac_clip() { head -c 3000 <<<"$1"; }

# check "desc" cmd [args...]: ok if cmd exits 0.
check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc" "command: $*" "exit status: $rc" "output:" "$(_ac_clip "$out")"
	fi
}

# check_fail "desc" cmd [args...]: ok if cmd exits non-zero.
check_fail() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		pass "$desc"
	else
		fail "$desc" "command unexpectedly succeeded: $*" "output:" "$(_ac_clip "$out")"
	fi
}

# check_eq "desc" expected actual
check_eq() {
	if [ "$2" == "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected: $(_ac_clip "$2")" "actual:   $(_ac_clip "$3")"
	fi
}

check_ne() {
	if [ "$2" != "$3" ]; then
		pass "$1"
	else
		fail "$1" "both are: $(_ac_clip "$2")"
	fi
}

# check_contains "desc" haystack needle
check_contains() {
	if [[ "$2" == *"$3"* ]]; then
		pass "$1"
	else
		fail "$1" "expected to contain: $3" "actual:" "$(_ac_clip "$2")"
	fi
}

check_not_contains() {
	if [[ "$2" != *"$3"* ]]; then
		pass "$1"
	else
		fail "$1" "expected NOT to contain: $3" "actual:" "$(_ac_clip "$2")"
	fi
}

# check_match "desc" ERE actual
check_match() {
	if [[ "$3" =~ $2 ]]; then
		pass "$1"
	else
		fail "$1" "expected to match: $2" "actual:" "$(_ac_clip "$3")"
	fi
}

# check_le "desc" a b: ok if integer a <= b
check_le() {
	if [[ "$2" =~ ^-?[0-9]+$ && "$3" =~ ^-?[0-9]+$ ]] && [ "$2" -le "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected $2 <= $3"
	fi
}

# check_gt "desc" a b: ok if integer a > b
check_gt() {
	if [[ "$2" =~ ^-?[0-9]+$ && "$3" =~ ^-?[0-9]+$ ]] && [ "$2" -gt "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected $2 > $3"
	fi
}

# ---------------------------------------------------------------- running agentcell

# ac ARGS...: runs agentcell under a watchdog, output not captured. A hung invocation is
# killed after AC_TIMEOUT seconds and reported on stderr.
ac() {
	local rc start=$SECONDS
	timeout -k 5 "$AC_TIMEOUT" "${AC_WRAP[@]}" "$AGENTCELL" "$@"
	rc=$?
	if [ $rc -eq 124 ] && [ $((SECONDS - start)) -ge "$AC_TIMEOUT" ]; then
		echo "# WATCHDOG: agentcell $* did not finish within ${AC_TIMEOUT}s" >&2
		rc=250
	fi
	return $rc
}

# acx ARGS...: runs agentcell, sets OUT (stdout), ERR (stderr), RC, ELAPSED_MS.
# stdin is /dev/null unless the caller redirects acx's stdin.
acx() {
	local t0 t1
	t0=$(date +%s%N)
	ac "$@" >"$AC_TMP/acx.out" 2>"$AC_TMP/acx.err"
	RC=$?
	t1=$(date +%s%N)
	# shellcheck disable=SC2034 # the result, read by the test files
	ELAPSED_MS=$(((t1 - t0) / 1000000))
	OUT=$(cat "$AC_TMP/acx.out")
	ERR=$(cat "$AC_TMP/acx.err")
	return 0
}

# Diagnostic lines describing the last acx call.
acx_diag() { printf '%s\n' "exit status: $RC" "stdout: $(_ac_clip "$OUT")" "stderr: $(_ac_clip "$ERR")"; }

# check_ac "desc" ARGS...: ok if `agentcell ARGS` exits 0 (sets OUT/ERR/RC as acx).
check_ac() {
	local desc=$1
	shift
	acx "$@"
	if [ "$RC" -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc" "command: agentcell $*" "$(acx_diag)"
	fi
}

# check_rc "desc" expected: checks RC of the last acx.
check_rc() {
	if [ "$RC" == "$2" ]; then
		pass "$1"
	else
		fail "$1" "expected exit status $2" "$(acx_diag)"
	fi
}

# check_out "desc" expected: stdout of the last acx equals expected.
check_out() {
	if [ "$OUT" == "$2" ]; then
		pass "$1"
	else
		fail "$1" "expected stdout: $(_ac_clip "$2")" "$(acx_diag)"
	fi
}

# check_error_line "desc": stderr of the last acx is exactly one line starting "agentcell: ".
check_error_line() {
	local n
	n=$(printf '%s' "$ERR" | grep -c '' || true)
	if [ "$n" -eq 1 ] && [[ "$ERR" == "agentcell: "* ]]; then
		pass "$1"
	else
		fail "$1" "expected one stderr line starting with 'agentcell: '" "$(acx_diag)"
	fi
}

# ---------------------------------------------------------------- state helpers

# Names of all sandboxes of this home, from `list --json` (an array, or an object holding
# a "sandboxes" array), falling back to the state files.
ac_names() {
	local j
	if j=$(ac list --json 2>/dev/null) && [ -n "$j" ]; then
		jq -r '(if type == "array" then . else (.sandboxes // []) end)[] | .name' <<<"$j" 2>/dev/null && return 0
	fi
	local f
	for f in "$AGENTCELL_HOME"/sandboxes/*.json; do
		[ -e "$f" ] && basename "$f" .json
	done
	return 0
}

# ac_json_field NAME FIELD: a field of `info NAME --json` (empty if absent).
ac_json_field() { ac info "$1" --json 2>/dev/null | jq -r --arg f "$2" '.[$f] // empty' 2>/dev/null; }
ac_status() { ac_json_field "$1" status; }

# The list entry of NAME in `list --json`, as JSON (empty if absent).
ac_list_entry() {
	ac list --json 2>/dev/null |
		jq -c --arg n "$1" '(if type == "array" then . else (.sandboxes // []) end)[] | select(.name == $n)' 2>/dev/null
}

# cgroup leaves of sandbox NAME under agentcell/: "NAME" itself or "sb<slot>-NAME" (a leaf
# made host-unique by the sandbox's uid slot). A run-* leaf is found by its own name.
cg_leaves() {
	local d b
	for d in /sys/fs/cgroup/{pids,memory,cpu,cpu\,cpuacct,unified}/agentcell/*/; do
		[ -d "$d" ] || continue
		b=$(basename "$d")
		if [ "$b" = "$1" ] || [[ "$b" =~ ^sb[0-9]+-(.*)$ && "${BASH_REMATCH[1]}" == "$1" ]]; then
			echo "$b"
		fi
	done | sort -u
	return 0
}

# cg_file NAME CONTROLLER FILE: contents of a cgroup file of sandbox NAME.
cg_file() {
	local leaf
	leaf=$(cg_leaves "$1" | head -1)
	if [ -z "$leaf" ]; then
		echo "(no cgroup for $1)"
		return 1
	fi
	cat "/sys/fs/cgroup/$2/agentcell/$leaf/$3" 2>&1
}

# Host pids in the v1 pids cgroup of sandbox NAME (empty if it has none).
cg_procs() {
	local leaf
	for leaf in $(cg_leaves "$1"); do
		cat "/sys/fs/cgroup/pids/agentcell/$leaf/cgroup.procs" 2>/dev/null
	done
	return 0
}

# Existing cgroup directories of sandbox NAME (or of a run-* leaf) across the controllers.
cg_dirs() {
	local c leaf
	for leaf in $(cg_leaves "$1"); do
		for c in memory cpu pids cpu,cpuacct unified; do
			[ -d "/sys/fs/cgroup/$c/agentcell/$leaf" ] && echo "/sys/fs/cgroup/$c/agentcell/$leaf"
		done
	done
	return 0
}

# Host pid of the supervisor (PID 1 of its namespace) of a running persistent sandbox.
ac_supervisor_pid() {
	local p
	p=$(ac_json_field "$1" pid)
	if [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -gt 0 ] && [ -d "/proc/$p" ]; then
		echo "$p"
		return 0
	fi
	for p in $(cg_procs "$1"); do
		if awk '/^NSpid:/ { exit !($NF == 1) }' "/proc/$p/status" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Host pids whose real uid lies in [base, base+65536).
procs_in_uid_range() {
	local base=$1
	ps -e -o pid=,uid= | awk -v b="$base" '$2 >= b && $2 < b + 65536 { print $1 }'
}

# Live (non-zombie) host processes in the pid namespace NS (as readlink /proc/PID/ns/pid).
procs_in_pidns() {
	local d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$1" ] || continue
		[ "$(awk '/^State:/ { print $2 }' "$d/status" 2>/dev/null)" = Z ] && continue
		echo "${d#/proc/}"
	done
	return 0
}

pidns_empty() { [ -z "$(procs_in_pidns "$1")" ]; }

# Lines of any host process's mountinfo that mention PATH.
mounts_mentioning() {
	local p
	for p in /proc/[0-9]*/mountinfo; do
		grep -F -- "$1" "$p" 2>/dev/null | sed "s|^|$p: |"
	done | sort -u | head -50
	return 0
}

# pids of host processes whose command line contains STRING (never this shell or pgrep).
procs_matching() { pgrep -f -- "$1" | grep -vx "$$" || true; }

# pid of the host-visible python3 process (run by a sandbox) whose command line contains
# STRING; the agentcell CLI carrying the same argv is skipped.
python_matching() {
	local p real
	real=$(readlink -f "$PY")
	for p in $(procs_matching "$1"); do
		if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$real" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
has_python_matching() { python_matching "$1" >/dev/null; }

# ---------------------------------------------------------------- waiting

# wait_until SECONDS cmd [args...]: polls every 50 ms until cmd succeeds; 1 on timeout.
wait_until() {
	local limit=$1 deadline
	shift
	deadline=$(($(date +%s%N) + limit * 1000000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

no_procs_matching() { [ -z "$(procs_matching "$1")" ]; }

# ---------------------------------------------------------------- set-up and clean-up

# bg_track PID: killed (with its process group if it leads one) at exit.
bg_track() {
	AC_BG_PIDS+=("$1")
	disown "$1" 2>/dev/null || true
}

# at_exit "shell code": run at exit, before the sandboxes are removed.
at_exit() { AC_CLEANUP_CMDS+=("$1"); }

uniq_id() { printf '%s%s' "$$" "$RANDOM"; }

_ac_cleanup() {
	local rc=$? p n cmd
	set +e
	# A file that stopped early (an unset variable, a failed command under set -e) skipped
	# its remaining checks: that is a failure, not a quiet pass.
	if [ "$rc" -ne 0 ] && [ "$AC_FAILED" -eq 0 ]; then
		fail "$AC_TEST_NAME ran to its end" "it exited early with status $rc"
	fi
	for cmd in "${AC_CLEANUP_CMDS[@]}"; do eval "$cmd" >/dev/null 2>&1; done
	for p in "${AC_BG_PIDS[@]}"; do kill -9 -- "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	if [ -n "${AGENTCELL_HOME:-}" ] && [ -d "$AGENTCELL_HOME" ]; then
		if [ -x "$AGENTCELL" ]; then
			for n in $(ac_names); do
				AC_TIMEOUT=30 ac remove "$n" >/dev/null 2>&1 ||
					echo "# cleanup: agentcell remove $n failed" >&2
			done
		fi
		if [ "${AC_KEEP_HOME:-0}" = 1 ]; then
			echo "# kept AGENTCELL_HOME=$AGENTCELL_HOME" >&2
		else
			# Never follow a leaked mount into the host's file system.
			if [ -n "$(mounts_mentioning "$AGENTCELL_HOME" | grep '^/proc/self/' | head -1)" ]; then
				echo "# cleanup: mounts under $AGENTCELL_HOME remain; not deleting it" >&2
			else
				rm -rf --one-file-system "$AGENTCELL_HOME"
			fi
		fi
	fi
	[ -n "${AC_TMP:-}" ] && rm -rf --one-file-system "$AC_TMP"
	printf '# %s: %d passed, %d failed\n' "$AC_TEST_NAME" "$AC_PASSED" "$AC_FAILED"
	if [ "$AC_FAILED" -gt 0 ]; then exit 1; fi
	exit "$rc"
}

# ac_setup: checks the preconditions, creates a fresh AGENTCELL_HOME and the clean-up trap.
ac_setup() {
	if [ "$(id -u)" != 0 ]; then
		echo "Bail out! the integration tests need root" >&2
		exit 1
	fi
	if [ ! -x "$AGENTCELL" ]; then
		echo "Bail out! no agentcell binary at $AGENTCELL (build it with make)" >&2
		exit 1
	fi
	local t
	for t in jq timeout setsid "$PY"; do
		command -v "$t" >/dev/null || { echo "Bail out! missing $t" >&2; exit 1; }
	done
	AGENTCELL_HOME=$(mktemp -d /tmp/agentcell-it-home.XXXXXX)
	export AGENTCELL_HOME
	AC_TMP=$(mktemp -d /tmp/agentcell-it-tmp.XXXXXX)
	chmod 755 "$AC_TMP"
	trap _ac_cleanup EXIT
	exec </dev/null # no test may read the terminal by accident
	trap 'exit 130' INT TERM
	echo "# $AC_TEST_NAME: AGENTCELL=$AGENTCELL AGENTCELL_HOME=$AGENTCELL_HOME"
}

# ---------------------------------------------------------------- agentcell serve

# What a sanitizer build writes when it finds something.
SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer'

# start_server NAME [ENV=V...] -- ARGS...: starts `agentcell serve ARGS` in the background
# with the environment given (and no API key from ours), waits for its "serving" line;
# sets SRV_PID and SRV_PORT. Its stderr is $AC_TMP/NAME.err.
start_server() {
	local name=$1 envs=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	: >"$AC_TMP/$name.err"
	env -u AGENTCELL_API_KEY -u AGENTKERNEL_API_KEY "${envs[@]}" \
		setsid "$AGENTCELL" serve "$@" >"$AC_TMP/$name.out" 2>"$AC_TMP/$name.err" </dev/null &
	SRV_PID=$!
	bg_track "$SRV_PID"
	SRV_PORT=
	for _ in $(seq 1 200); do
		if grep -q 'serving the API' "$AC_TMP/$name.err"; then
			# shellcheck disable=SC2034 # the result, read by the test files
			SRV_PORT=$(sed -n 's/.*serving the API on http:\/\/.*:\([0-9]*\) .*/\1/p' "$AC_TMP/$name.err" | head -1)
			return 0
		fi
		kill -0 "$SRV_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# stop_server NAME PID: SIGTERM; the server must exit within 15 s with no sanitizer report
# on its stderr.
stop_server() {
	local name=$1 pid=$2
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
	if grep -qE "$SAN_RE" "$AC_TMP/$name.err"; then
		fail "$name: no sanitizer report in the server's stderr" "$(grep -E -A30 "$SAN_RE" "$AC_TMP/$name.err" | head -60)"
	else
		pass "$name: stopped cleanly, no sanitizer report"
	fi
}

# ---------------------------------------------------------------- test Kubernetes API server
# ac_k8s_fake WHAT [HOME]: starts tests/k8s/fake_apiserver.py for the rest of the script
# (stopped at exit), its pods as native sandboxes of HOME (default: a home of its own,
# removed at exit), and defines K8S_DIR, STATE, KUBECONFIG (exported), K (kubectl under a
# watchdog, with its own cache and no home files). WHAT names the check. Skips the whole
# script (exit 0) when kubectl or openssl is missing; fails it when the server does not
# come up.
ac_k8s_fake() {
	local what=$1 home=${2:-}
	KUBECTL=${KUBECTL:-kubectl}
	K8S_DIR=$AC_REPO/tests/k8s
	local tool
	for tool in "$KUBECTL" openssl; do
		if ! command -v "$tool" >/dev/null; then
			skip "$what" "$tool is not installed"
			exit 0
		fi
	done
	STATE=$AC_TMP/k8s
	mkdir -p "$STATE" "$AC_TMP/kcache"
	local own=
	if [ -z "$home" ]; then
		home=$(mktemp -d /tmp/agentcell-it-k8shome.XXXXXX)
		own=$home
	fi
	setsid "$PY" "$K8S_DIR/fake_apiserver.py" --state-dir "$STATE" --agentcell "$AGENTCELL" \
		--home "$home" --node-memory 4Gi >"$AC_TMP/k8s.out" 2>"$AC_TMP/k8s.err" </dev/null &
	K8S_PID=$!
	bg_track "$K8S_PID"
	# Cleanups run in order: the server stops (removing its sandboxes) before its home goes.
	at_exit "kill -TERM $K8S_PID; sleep 2"
	[ -z "$own" ] || at_exit "rm -rf --one-file-system $own"
	if wait_until 60 test -s "$STATE/port"; then
		pass "$what: the test API server runs ($(cat "$STATE/port"))"
	else
		fail "$what: the test API server runs" "$(tail -20 "$AC_TMP/k8s.err")"
		exit 1
	fi
	export KUBECONFIG=$STATE/kubeconfig
}
# kubectl under a watchdog, with its own discovery cache and no home directory files.
K() { HOME=$AC_TMP timeout -k 5 90 "$KUBECTL" --cache-dir "$AC_TMP/kcache" --request-timeout=60s "$@"; }

# ---------------------------------------------------------------- test Nomad agent
# ac_nomad_fake WHAT [HOME] [SERVER ARGS...]: starts tests/nomad/fake_nomad.py for the rest
# of the script (SIGTERM at exit: it stops every task and removes its sandboxes), its tasks
# as native sandboxes of HOME (default, or ""): a home of its own, removed at exit).
# SERVER ARGS go to the agent (--acl, --tls, --verify-https-client, --namespace NS,
# --drivers LIST, --node-memory MB, --delay-scale F, --early-ws-upgrade, ...). Exports
# NOMAD_ADDR, and with --tls NOMAD_CACERT, NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY (never
# NOMAD_TOKEN: with --acl the tokens are in $NSTATE/mgmt-token, ro-token, write-token).
# Defines NOMAD_DIR (tests/nomad), NSTATE (the agent's state dir: port, jobs/ID.json,
# execs.log, tokens, *.pem, allocs/), NOMAD_PID, and NP. WHAT names the check. Fails the
# script when the agent does not come up; skips it (exit 0) for --tls without openssl.
# Each call starts another agent (the variables then name the newest).
AC_NOMAD_N=0
ac_nomad_fake() {
	local what=$1 home=${2:-} arg
	shift
	[ $# -gt 0 ] && shift
	NOMAD_DIR=$AC_REPO/tests/nomad
	for arg in "$@"; do
		if [ "$arg" = --tls ] && ! command -v openssl >/dev/null; then
			skip "$what" "openssl is not installed"
			exit 0
		fi
	done
	AC_NOMAD_N=$((AC_NOMAD_N + 1))
	NSTATE=$AC_TMP/nomad$AC_NOMAD_N
	mkdir -p "$NSTATE"
	local own=
	if [ -z "$home" ]; then
		home=$(mktemp -d /tmp/agentcell-it-nomadhome.XXXXXX)
		own=$home
	fi
	setsid "$PY" "$NOMAD_DIR/fake_nomad.py" --state-dir "$NSTATE" --agentcell "$AGENTCELL" \
		--home "$home" "$@" >"$NSTATE.out" 2>"$NSTATE.err" </dev/null &
	NOMAD_PID=$!
	bg_track "$NOMAD_PID"
	# Cleanups run in order: the agent stops (removing its sandboxes) before its home goes.
	at_exit "kill -TERM $NOMAD_PID; for _ in \$(seq 1 300); do kill -0 $NOMAD_PID 2>/dev/null || break; sleep 0.1; done"
	[ -z "$own" ] || at_exit "rm -rf --one-file-system $own"
	if wait_until 60 test -s "$NSTATE/addr"; then
		pass "$what: the test Nomad agent runs ($(cat "$NSTATE/addr"))"
	else
		fail "$what: the test Nomad agent runs" "$(tail -20 "$NSTATE.err")"
		exit 1
	fi
	NOMAD_ADDR=$(cat "$NSTATE/addr")
	export NOMAD_ADDR
	if [ -s "$NSTATE/ca.pem" ]; then
		export NOMAD_CACERT=$NSTATE/ca.pem NOMAD_CLIENT_CERT=$NSTATE/client.pem
		export NOMAD_CLIENT_KEY=$NSTATE/client-key.pem
	fi
}

# NP METHOD PATH [BODY|@FILE] [CURL ARGS...]: a raw request to the newest test Nomad agent
# (TLS files as exported above). Prints the response body; sets NP_STATUS (HTTP status, 000
# when there was no answer), NP_BODY and NP_HEADERS (a file with the response headers).
# The token: $NP_TOKEN if set (empty: none), else the management token $NSTATE/mgmt-token.
# Call it outside $(...) to keep the variables.
NP() {
	local method=$1 path=$2 data=${3:-} tok np_args=()
	shift 2
	[ $# -gt 0 ] && shift
	if [ -n "${NP_TOKEN+x}" ]; then
		tok=$NP_TOKEN
	elif [ -s "$NSTATE/mgmt-token" ]; then
		tok=$(cat "$NSTATE/mgmt-token") # (an agent without ACLs ignores tokens)
	else
		tok=
	fi
	[ -n "$tok" ] && np_args+=(-H "X-Nomad-Token: $tok")
	[ -n "$data" ] && np_args+=(--data-binary "$data" -H "Content-Type: application/json")
	if [[ "$NOMAD_ADDR" == https://* ]]; then
		np_args+=(--cacert "$NOMAD_CACERT" --cert "$NOMAD_CLIENT_CERT" --key "$NOMAD_CLIENT_KEY")
	fi
	# Files of this shell's own (NP may run in the background too); $BASHPID read once:
	# each $(...) below is a subshell of another pid.
	local me=$BASHPID
	NP_HEADERS=$AC_TMP/np.$me.headers
	# shellcheck disable=SC2034 # the result, read by the test files
	NP_STATUS=$(curl -s -S -X "$method" -o "$AC_TMP/np.$me.body" -D "$NP_HEADERS" -w '%{http_code}' \
		--max-time "${NP_MAXTIME:-60}" "${np_args[@]}" "$@" "$NOMAD_ADDR$path" 2>"$AC_TMP/np.$me.err")
	NP_BODY=$(cat "$AC_TMP/np.$me.body" 2>/dev/null)
	rm -f "$AC_TMP/np.$me.body"
	printf '%s' "$NP_BODY"
}
