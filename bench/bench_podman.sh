#!/usr/bin/env bash
# The Docker/Podman backend beside Podman's own CLI, in ONE run, on a private Podman service
# (scripts/podman-setup.sh: runc, cgroupfs, no network, a busybox image made locally):
#
#   agentcell run --backend podman -- true      vs   podman run --rm IMAGE true
#   agentcell exec NAME -- true (podman box)    vs   podman exec NAME true
#   agentcell exec NAME -- true (native box, for scale)
#
#   sudo bash bench/bench_podman.sh             # BENCH_QUICK=1 for fewer iterations
#   AGENTCELL=/path/to/agentcell bash bench/bench_podman.sh
#
# Progress goes to stderr; the Markdown table to stdout and bench/results/podman-<time>.md.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}
[ "$(id -u)" -eq 0 ] || { echo "bench_podman.sh: run as root" >&2; exit 2; }
if [ "${BENCH_QUICK:-0}" = 1 ]; then N=10 NX=50; else N=30 NX=200; fi
log() { printf '# %s\n' "$*" >&2; }

mkdir -p "$RESULTS"
[ -x "$AC" ] || make -C "$ROOT" -j2 >&2 || exit 1
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || exit 1
WORK=$(mktemp -d /tmp/acbench-podman.XXXXXX)
export AGENTCELL_HOME=$WORK/home
mkdir -p "$AGENTCELL_HOME" "$WORK/bin"
cp "$AC" "$WORK/bin/agentcell"
AC=$WORK/bin/agentcell

. "$ROOT/scripts/podman-setup.sh"
cleanup() {
	trap - EXIT INT TERM
	"$AC" remove bpx >/dev/null 2>&1
	"$AC" remove bnx >/dev/null 2>&1
	podman_teardown
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
podman_setup || { echo "bench_podman.sh: $PODMAN_REASON" >&2; exit 1; }

declare -A R
bench() { # KEY LABEL N TIMEIT-ARGS...
	local key=$1 label=$2 n=$3 out
	shift 3
	log "$label ..."
	out=$("$TIMEIT" -n "$n" -w 3 "$@" | tail -n 1)
	log "  $out"
	R[$key]=$out
}
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
row() { # LABEL KEY
	local o=${R[$2]:-}
	[ -n "$o" ] || { echo "| $1 | n/a | | | | |"; return; }
	echo "| $1 | $(field "$o" p50) | $(field "$o" p90) | $(field "$o" p99) | $(field "$o" n) | $(field "$o" fail) |"
}
ratio() { awk -v a="$(field "${R[$1]:-}" p50)" -v b="$(field "${R[$2]:-}" p50)" 'BEGIN { if (a == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

bench prun "podman run --rm IMAGE true" "$N" -- podman run --rm "$PODMAN_IMAGE" true
bench arun "agentcell run --backend podman -- true" "$N" -- "$AC" run --backend podman --image "$PODMAN_IMAGE" -- true
"$AC" create bpx --backend podman --image "$PODMAN_IMAGE" >/dev/null && "$AC" start bpx >/dev/null
podman run -d --name acbench-pexec "$PODMAN_IMAGE" sleep 3600 >/dev/null
bench pexec "podman exec NAME true" "$N" -- podman exec acbench-pexec true
bench aexec "agentcell exec NAME -- true (podman backend)" "$NX" -- "$AC" exec bpx -- true
podman rm -f -t 0 acbench-pexec >/dev/null
"$AC" create bnx >/dev/null && "$AC" start bnx >/dev/null
bench nexec "agentcell exec NAME -- true (native backend)" "$NX" -- "$AC" exec bnx -- true

REPORT=$RESULTS/podman-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "Versions: agentcell $("$AC" --version 2>/dev/null | awk '{print $2}'), podman $(podman --version | awk '{print $3}') with runc $(runc --version | awk 'NR == 1 {print $3}') (cgroupfs, netns none), kernel $(uname -r), nproc $(nproc)"
	echo
	echo "| benchmark (ms) | p50 | p90 | p99 | n | failed |"
	echo "|---|---:|---:|---:|---:|---:|"
	row '`podman run --rm IMAGE true`' prun
	row '`agentcell run --backend podman -- true`' arun
	row '`podman exec NAME true`' pexec
	row '`agentcell exec NAME -- true` (podman backend)' aexec
	row '`agentcell exec NAME -- true` (native backend)' nexec
	echo "| ratio podman run / agentcell run --backend podman (p50) | $(ratio prun arun) | | | | |"
	echo "| ratio podman exec / agentcell exec, podman backend (p50) | $(ratio pexec aexec) | | | | |"
} | tee "$REPORT"
