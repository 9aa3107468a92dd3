#!/usr/bin/env bash
# The Kubernetes backend beside kubectl, against the test API server, in ONE run, as root.
#
#   sudo bash bench/bench_k8s.sh                 # full run (a few minutes)
#   BENCH_QUICK=1 bash bench/bench_k8s.sh        # fewer iterations
#   AGENTCELL=/path/to/agentcell bash bench/bench_k8s.sh
#
# The server is tests/k8s/fake_apiserver.py (started here as tests/integration/lib.sh's
# ac_k8s_fake does; its pods run as native agentcell sandboxes), not a real cluster: the
# numbers compare two clients of the same server, never agentcell with a cluster. Progress
# goes to stderr; the report (machine line + Markdown table + notes) to stdout and to
# bench/results/bench-k8s-<UTC time>.md. See bench/README.md.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}
KUBECTL=${KUBECTL:-kubectl}
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
	echo "bench_k8s.sh: run as root (the test server's pods are native sandboxes)" >&2
	exit 2
fi
for tool in "$KUBECTL" openssl jq gcc "$PY"; do
	command -v "$tool" >/dev/null || { echo "bench_k8s.sh: $tool is missing" >&2; exit 2; }
done
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_EXEC=20 N_RUN=5 WARM=1 BLOCKS=1
else
	N_EXEC=48 N_RUN=12 WARM=2 BLOCKS=4
fi

log() { printf '# %s\n' "$*" >&2; }
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

mkdir -p "$RESULTS"
if [ ! -x "$AC" ]; then
	log "building agentcell (make -j2)"
	make -C "$ROOT" -j2 >&2 || { echo "bench_k8s.sh: build failed" >&2; exit 1; }
fi
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || { echo "bench_k8s.sh: cannot build timeit" >&2; exit 1; }

WORK=$(mktemp -d /tmp/acbench-k8s.XXXXXX)
mkdir -p "$WORK/bin" "$WORK/home" "$WORK/fakehome" "$WORK/state" "$WORK/kcache"
# A snapshot of the binary: others may rebuild it during the run.
cp "$AC" "$WORK/bin/agentcell"
AC_SRC=$AC
AC=$WORK/bin/agentcell
export AGENTCELL_HOME=$WORK/home
SRV_PID=
BOX="bk8s$$"
NOTES=()

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	"$AC" remove "$BOX" >/dev/null 2>&1
	if [ -n "$SRV_PID" ]; then
		# The server removes every sandbox it made on SIGTERM.
		kill -TERM "$SRV_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf --one-file-system "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- machine ----------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ram_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
MACHINE="Machine: ${cpu_model:-unknown CPU}, $(grep -c '^processor' /proc/cpuinfo) cores (nproc $(nproc)), ${ram_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
log "$MACHINE"

# ---------------------------------------------------------------- the test server --------
setsid "$PY" "$ROOT/tests/k8s/fake_apiserver.py" --state-dir "$WORK/state" --agentcell "$AC" \
	--home "$WORK/fakehome" --node-memory 4Gi >"$WORK/server.out" 2>"$WORK/server.err" </dev/null &
SRV_PID=$!
for _ in $(seq 600); do [ -s "$WORK/state/port" ] && break; sleep 0.1; done
if [ ! -s "$WORK/state/port" ]; then
	echo "bench_k8s.sh: the test API server did not start: $(tail -5 "$WORK/server.err")" >&2
	exit 1
fi
export KUBECONFIG=$WORK/state/kubeconfig
# kubectl with its own discovery cache and no home files.
cat >"$WORK/bin/kc" <<EOF
#!/bin/sh
HOME=$WORK exec "$(command -v "$KUBECTL")" --cache-dir "$WORK/kcache" "\$@"
EOF
chmod +x "$WORK/bin/kc"
KC=$WORK/bin/kc
KVER=$("$KC" version --client -o json 2>/dev/null | jq -r .clientVersion.gitVersion)
log "test API server on port $(cat "$WORK/state/port"), kubectl $KVER"

# ---------------------------------------------------------------- exec -------------------
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if ! "$AC" create "$BOX" --backend kubernetes >/dev/null || ! "$AC" start "$BOX" >/dev/null; then
	echo "bench_k8s.sh: cannot start a kubernetes sandbox" >&2
	exit 1
fi
POD=agentcell-$BOX
"$KC" get pod "$POD" >/dev/null || { echo "bench_k8s.sh: pod $POD not found" >&2; exit 1; }

# Pools "sample MS" lines of several timeit -r runs into one summary line like timeit's.
pool() {
	sort -g | awk '{a[NR]=$1; s+=$1} END {
		if (NR == 0) { print "n=0"; exit }
		r50 = int(NR * 0.5 + 0.999999); r90 = int(NR * 0.9 + 0.999999)
		printf "n=%d p50=%.3f p90=%.3f mean=%.3f min=%.3f max=%.3f\n", NR, a[r50], a[r90], s / NR, a[1], a[NR] }'
}
# interleave VAR_A VAR_B N TIMEIT-ARGS-A... ::: TIMEIT-ARGS-B...: BLOCKS alternating timeit -r blocks of A and B
# (so that load from elsewhere hits both alike); pooled lines into VAR_A and VAR_B.
interleave() {
	local va=$1 vb=$2 n=$3
	shift 3
	local a=() b=() in_b=0 x
	for x in "$@"; do
		if [ "$x" = ":::" ]; then in_b=1; continue; fi
		if [ "$in_b" = 1 ]; then b+=("$x"); else a+=("$x"); fi
	done
	local per=$(((n + BLOCKS - 1) / BLOCKS)) fa=0 fb=0 out
	: >"$WORK/a.s"
	: >"$WORK/b.s"
	for _ in $(seq "$BLOCKS"); do
		out=$("$TIMEIT" -r -n "$per" -w "$WARM" -e "$WORK/errors" "${a[@]}" </dev/null)
		grep '^sample' <<<"$out" | awk '{print $2}' >>"$WORK/a.s"
		fa=$((fa + $(field "$(tail -1 <<<"$out")" fail)))
		out=$("$TIMEIT" -r -n "$per" -w "$WARM" -e "$WORK/errors" "${b[@]}" </dev/null)
		grep '^sample' <<<"$out" | awk '{print $2}' >>"$WORK/b.s"
		fb=$((fb + $(field "$(tail -1 <<<"$out")" fail)))
	done
	printf -v "$va" '%s fail=%s' "$(pool <"$WORK/a.s")" "$fa"
	printf -v "$vb" '%s fail=%s' "$(pool <"$WORK/b.s")" "$fb"
	log "  ${!va}"
	log "  ${!vb}"
}

log "exec: agentcell exec vs kubectl exec, $N_EXEC each"
interleave R_AEXEC R_KEXEC "$N_EXEC" -- "$AC" exec "$BOX" -- true ::: -- "$KC" exec "$POD" -- true

# ---------------------------------------------------------------- one-shot runs ----------
log "run: agentcell run vs kubectl run --rm -i, $N_RUN each"
interleave R_ARUN R_KRUN "$N_RUN" -- "$AC" run --backend kubernetes -- true \
	::: -a "$KC delete pod bkr --ignore-not-found --wait >/dev/null 2>&1" -- \
	"$KC" run bkr --rm -i --restart=Never --image=alpine:3.20 --quiet -- true

T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
for v in R_AEXEC R_KEXEC R_ARUN R_KRUN; do
	f=$(field "${!v}" fail)
	[ "${f:-0}" = 0 ] || NOTES+=("$v: $f iterations failed (non-zero exit); stderr in the run's errors file: $(tail -c 300 "$WORK/errors" 2>/dev/null | tr '\n' ' ')")
done
"$AC" remove "$BOX" >/dev/null 2>&1
left=$("$KC" get pods,networkpolicies -o name 2>/dev/null | wc -l)
[ "$left" = 0 ] || NOTES+=("$left pods/policies were left in the test server's namespace")

# ---------------------------------------------------------------- report -----------------
p() { field "$1" "$2"; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$(p "$2" p50)" "$(p "$2" p90)" "$(p "$2" n)"; }
REPORT=$RESULTS/bench-k8s-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "$MACHINE"
	echo "Server: the test API server (tests/k8s/fake_apiserver.py, pods as native sandboxes on this host), not a real cluster. agentcell $("$AC" --version 2>/dev/null | awk '{print $2}') (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes'); $AC_SRC), kubectl $KVER; $( [ "${BENCH_QUICK:-0}" = 1 ] && echo "BENCH_QUICK=1, " )wall time $((T_END - T_START)) s; load average $LOAD_START at start, $LOAD_END at end"
	echo
	echo "| benchmark (ms) | p50 | p90 | n |"
	echo "|---|---:|---:|---:|"
	row '`agentcell exec NAME -- true` (kubernetes sandbox)' "$R_AEXEC"
	row '`kubectl exec POD -- true` (the same pod)' "$R_KEXEC"
	echo "| ratio agentcell exec / kubectl exec (p50) | $(ratio "$(p "$R_AEXEC" p50)" "$(p "$R_KEXEC" p50)") | $(ratio "$(p "$R_AEXEC" p90)" "$(p "$R_KEXEC" p90)") | |"
	row '`agentcell run --backend kubernetes -- true`' "$R_ARUN"
	row '`kubectl run --rm -i --restart=Never --image=alpine:3.20 -- true`' "$R_KRUN"
	echo "| ratio agentcell run / kubectl run (p50) | $(ratio "$(p "$R_ARUN" p50)" "$(p "$R_KRUN" p50)") | $(ratio "$(p "$R_ARUN" p90)" "$(p "$R_KRUN" p90)") | |"
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Problems seen:"
		printf -- '- %s\n' "${NOTES[@]}"
	fi
} | tee "$REPORT"
log "report: $REPORT"
