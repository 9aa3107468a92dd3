#!/usr/bin/env bash
# agentcell speed and density benchmark: everything side by side in ONE run, as root.
#
#   sudo bash bench/bench.sh                    # full run (a few minutes at most)
#   BENCH_QUICK=1 bash bench/bench.sh           # fewer iterations, 50 sandboxes for density
#   BENCH_INSTALL=1 bash bench/bench.sh         # apt-get install podman + runc if missing
#   AGENTCELL=/path/to/agentcell bash bench/bench.sh
#
# Progress goes to stderr; the report (machine line + Markdown table + notes) to stdout and
# to bench/results/bench-<UTC time>.md. See bench/README.md for what each number means.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}

if [ "$(id -u)" -ne 0 ]; then
	echo "bench.sh: run as root (the native backend needs root)" >&2
	exit 2
fi

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_RUN=50 N_BWRAP=50 N_EXEC=50 N_CS=20 N_POD=5 N_DENS=50 WARM=2
else
	N_RUN=200 N_BWRAP=200 N_EXEC=200 N_CS=50 N_POD=20 N_DENS=200 WARM=5
fi

log() { printf '# %s\n' "$*" >&2; }

# ---------------------------------------------------------------- set-up -----------------
mkdir -p "$RESULTS"
if [ ! -x "$AC" ]; then
	log "building agentcell (make -j2)"
	make -C "$ROOT" -j2 >&2 || { echo "bench.sh: build failed" >&2; exit 1; }
fi
# bubblewrap is the reference of the run row: installed from Debian when missing.
if ! command -v bwrap >/dev/null; then
	log "installing bubblewrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } ||
		{ echo "bench.sh: cannot install bubblewrap" >&2; exit 1; }
fi
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || { echo "bench.sh: cannot build timeit" >&2; exit 1; }

WORK=$(mktemp -d /tmp/acbench.XXXXXX)
export AGENTCELL_HOME=$WORK/home
mkdir -p "$AGENTCELL_HOME" "$WORK/bin"
# Benchmark a snapshot of the binary: a rebuild during the run (others work in this tree)
# would otherwise swap it mid-way or make it briefly unexecutable.
cp "$AC" "$WORK/bin/agentcell"
AC_SRC=$AC
AC=$WORK/bin/agentcell
PODMAN_OK=0
PODMAN_REASON=""
EX_NAME="bex$$"      # persistent sandbox for the exec benchmark
CS_NAME="bcs$$"      # create+start benchmark sandbox
NOTES=()             # problems seen during the run, printed after the table

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -d "$AGENTCELL_HOME/sandboxes" ]; then
		local n
		for n in $("$AC" list --json 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
			"$AC" remove "$n" >/dev/null 2>&1
		done
	fi
	if [ "$PODMAN_OK" = 1 ]; then
		podman rm -af -t 0 >/dev/null 2>&1
		podman system reset -f >/dev/null 2>&1
	fi
	# Anything still mounted under the work dir (podman overlay) goes before rm -rf.
	local m
	# shellcheck disable=SC2013 # mountinfo escapes blanks in paths (\040): one word per mount
	for m in $(awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# "k=v k=v" line from timeit -> value of key
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
# awk arithmetic helper: calc 'expr'
calc() { awk "BEGIN { printf \"%.2f\", $1 }" </dev/null; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# pass/fail: verdict VALUE OP LIMIT
verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "n/a" || v == "") { print "n/a"; exit }
		ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
		print ok ? "PASS" : "FAIL" }'
}

# bench VAR LABEL TIMEIT-ARGS...: runs timeit, logs its line and stores it in VAR.
bench() {
	local var=$1 label=$2
	shift 2
	log "$label ..."
	local out
	out=$("$TIMEIT" "$@" | tail -n 1)
	log "  $out"
	if [ "$(field "$out" fail)" != 0 ]; then
		NOTES+=("$label: $(field "$out" fail) of $(field "$out" n) iterations failed (non-zero exit)")
	fi
	printf -v "$var" '%s' "$out"
}

# Pools the "sample MS" and "n=.. fail=F" lines of several timeit -r runs into one summary
# line of the same format as timeit's.
stats_of() { # VAR LABEL FILE
	local var=$1 label=$2 out fails
	fails=$(awk '/^n=/ { split($2, f, "="); t += f[2] } END { print t + 0 }' "$3")
	out=$(awk '$1 == "sample" { print $2 }' "$3" | sort -g | awk -v fails="$fails" '
		{ s[++n] = $1; sum += $1 }
		function rk(p,   r) { r = int(p / 100 * n + 0.999999); return r < 1 ? 1 : (r > n ? n : r) }
		END {
			printf "n=%d fail=%d p50=%.3f p90=%.3f p99=%.3f mean=%.3f min=%.3f max=%.3f\n", n, fails,
				s[rk(50)], s[rk(90)], s[rk(99)], sum / n, s[1], s[n]
		}')
	log "  $label: $out"
	if [ "$(field "$out" fail)" != 0 ]; then
		NOTES+=("$label: $(field "$out" fail) of $(field "$out" n) iterations failed (non-zero exit)")
	fi
	printf -v "$var" '%s' "$out"
}

meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }  # kB
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; sleep 1; }
mem_used_kb() { echo $(($(meminfo MemTotal) - $(meminfo MemAvailable))); }
mem_kernel_kb() { echo $(($(meminfo Slab) + $(meminfo KernelStack) + $(meminfo PageTables))); }

# Sum of PSS (kB) of the given pids and all their descendants.
pss_tree_kb() {
	local pids
	pids=$(ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) { want[r[i]] = 1; q[++qt] = r[i] } }
		{ kids[$2] = kids[$2] " " $1 }
		END {
			for (h = 1; h <= qt; h++) {
				print q[h]
				m = split(kids[q[h]], c, " ")
				for (j = 1; j <= m; j++) if (!(c[j] in want)) { want[c[j]] = 1; q[++qt] = c[j] }
			}
		}')
	local total=0 p v count=0
	for p in $pids; do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		[ -n "$v" ] && total=$((total + v)) && count=$((count + 1))
	done
	echo "$total $count"
}

# ---------------------------------------------------------------- machine ----------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cpu_count=$(grep -c '^processor' /proc/cpuinfo)
ram_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
debian=$(cat /etc/debian_version 2>/dev/null || echo "?")
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	cgmode="v2 (unified)"
elif [ -d /sys/fs/cgroup/unified ]; then
	cgmode="v1 (hybrid, v2 at /sys/fs/cgroup/unified)"
else
	cgmode="v1 (legacy)"
fi
virt=$(systemd-detect-virt 2>/dev/null || true)
MACHINE="Machine: ${cpu_model:-unknown CPU}, ${cpu_count} cores (nproc $(nproc)), ${ram_gib} GiB RAM, kernel $(uname -r), Debian ${debian}, cgroup ${cgmode}${virt:+, virt: $virt}"
log "$MACHINE"

# ---------------------------------------------------------------- podman set-up ----------
setup_podman() {
	if ! command -v podman >/dev/null 2>&1; then
		if [ "${BENCH_INSTALL:-0}" = 1 ]; then
			log "installing podman + runc (apt-get)"
			if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >"$WORK/apt.log" 2>&1; then
				apt-get update -q >>"$WORK/apt.log" 2>&1
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc >>"$WORK/apt.log" 2>&1 ||
					{ PODMAN_REASON="apt-get install podman runc failed: $(tail -n 1 "$WORK/apt.log")"; return 1; }
			fi
		else
			PODMAN_REASON="podman not installed (BENCH_INSTALL=1 installs it)"
			return 1
		fi
	fi
	command -v runc >/dev/null 2>&1 || { PODMAN_REASON="runc not installed"; return 1; }
	local busybox
	busybox=$(command -v busybox 2>/dev/null || true)
	[ -x /bin/busybox ] && busybox=/bin/busybox
	if [ -z "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
		# Without 'file', trust the Debian package.
		if ! dpkg -s busybox-static >/dev/null 2>&1; then
			PODMAN_REASON="no static busybox (apt-get install busybox-static)"
			return 1
		fi
	fi
	local P=$WORK/podman
	mkdir -p "$P/rootfs/bin" "$P/storage" "$P/run" "$P/tmp"
	cp "$busybox" "$P/rootfs/bin/busybox"
	local c
	for c in sh true sleep; do ln -s busybox "$P/rootfs/bin/$c"; done
	# runc + cgroupfs, no network (agentcell sandboxes have none either), no event log, and
	# modest nofile/nproc limits: podman asks for nofile 1048576 (and the host's nproc), which
	# runc fails to set where the container manager withholds CAP_SYS_RESOURCE.
	cat >"$P/containers.conf" <<-EOF
	[containers]
	netns = "none"
	default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
	[engine]
	runtime = "runc"
	cgroup_manager = "cgroupfs"
	events_logger = "none"
	EOF
	cat >"$P/storage.conf" <<-EOF
	[storage]
	driver = "overlay"
	graphroot = "$P/storage"
	runroot = "$P/run"
	EOF
	export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf TMPDIR=$P/tmp
	PODMAN_OK=1 # from here on cleanup() resets the private storage
	local out
	if ! out=$( (cd "$P/rootfs" && tar -c .) | podman import - localhost/acbench:latest 2>&1); then
		PODMAN_REASON="podman import failed: $(tail -n 1 <<<"$out")"
		return 1
	fi
	if ! out=$(podman run --rm localhost/acbench:latest true 2>&1); then
		PODMAN_REASON="podman run failed: $(tail -n 1 <<<"$out")"
		return 1
	fi
	PODMAN_VERSION=$(podman --version | awk '{print $3}')
	RUNC_VERSION=$(runc --version | awk 'NR == 1 {print $3}')
	return 0
}
PODMAN_VERSION="" RUNC_VERSION=""
if ! setup_podman; then
	log "podman: unavailable ($PODMAN_REASON)"
	PODMAN_AVAILABLE=0
else
	PODMAN_AVAILABLE=1
fi

# ---------------------------------------------------------------- 1. one-shot ------------
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# The first run in a fresh AGENTCELL_HOME prepares the host base (filtered /etc etc.): time it
# once, apart, so it does not pollute the warm numbers.
t0=$(date +%s%N)
"$AC" run -- true || NOTES+=("first 'agentcell run -- true' failed")
FIRST_RUN_MS=$(calc "($(date +%s%N) - $t0) / 1e6")
log "first agentcell run (prepares the host base): ${FIRST_RUN_MS} ms"

# agentcell run and bwrap alternate in ROUNDS blocks, so that load from elsewhere on the host
# (a build, another test run) hits both alike and their ratio stays meaningful.
ROUNDS=10
log "agentcell run -- true / bwrap true, interleaved in $ROUNDS rounds ..."
: >"$WORK/s.run"; : >"$WORK/s.bwrap"
"$TIMEIT" -n "$WARM" -w 0 -- "$AC" run -- true >/dev/null
"$TIMEIT" -n "$WARM" -w 0 -- bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true >/dev/null
for _ in $(seq 1 $ROUNDS); do
	"$TIMEIT" -r -n $((N_RUN / ROUNDS)) -w 0 -- "$AC" run -- true >>"$WORK/s.run"
	"$TIMEIT" -r -n $((N_BWRAP / ROUNDS)) -w 0 -- bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true >>"$WORK/s.bwrap"
done
stats_of R_RUN "agentcell run -- true" "$WORK/s.run"
stats_of R_BWRAP "bwrap true" "$WORK/s.bwrap"
R_PODRUN=""
if [ "$PODMAN_AVAILABLE" = 1 ]; then
	bench R_PODRUN "podman run --rm true" -n "$N_POD" -w 2 -- podman run --rm localhost/acbench:latest true
fi

# ---------------------------------------------------------------- 2. exec ----------------
"$AC" create "$EX_NAME" --memory 64 >/dev/null && "$AC" start "$EX_NAME" >/dev/null ||
	NOTES+=("could not create/start the exec sandbox $EX_NAME")
bench R_TRUE "host true (fork+exec baseline)" -n "$N_EXEC" -w "$WARM" -- true
bench R_EXEC "agentcell exec -- true" -n "$N_EXEC" -w "$WARM" -- "$AC" exec "$EX_NAME" -- true
"$AC" remove "$EX_NAME" >/dev/null 2>&1 || NOTES+=("remove $EX_NAME failed")
R_PODEXEC=""
if [ "$PODMAN_AVAILABLE" = 1 ]; then
	if podman run -d --name acbench-exec localhost/acbench:latest sleep 3600 >/dev/null 2>&1; then
		bench R_PODEXEC "podman exec true" -n "$N_POD" -w 2 -- podman exec acbench-exec true
		podman rm -f -t 0 acbench-exec >/dev/null 2>&1
	else
		NOTES+=("podman run -d (for podman exec) failed")
	fi
fi

# ---------------------------------------------------------------- 3. create+start --------
bench R_CS "agentcell create+start" -n "$N_CS" -w "$WARM" -a "'$AC' remove $CS_NAME >/dev/null 2>&1" \
	-- "$AC" create "$CS_NAME" ::: "$AC" start "$CS_NAME"
"$AC" create "$CS_NAME" >/dev/null 2>&1 || NOTES+=("create $CS_NAME failed")
bench R_START "agentcell start (create untimed)" -n "$N_CS" -w "$WARM" -a "'$AC' stop $CS_NAME >/dev/null 2>&1" \
	-- "$AC" start "$CS_NAME"
"$AC" start "$CS_NAME" >/dev/null 2>&1 || NOTES+=("start $CS_NAME failed")
bench R_STOP "agentcell stop (start untimed)" -n "$N_CS" -w "$WARM" -a "'$AC' start $CS_NAME >/dev/null 2>&1" \
	-- "$AC" stop "$CS_NAME"
"$AC" remove "$CS_NAME" >/dev/null 2>&1

# ---------------------------------------------------------------- 4. density -------------
log "density: $N_DENS sandboxes"
pre_cg_dirs=$(ls -d /sys/fs/cgroup/*/agentcell/*/ 2>/dev/null | wc -l)
drop_caches
MEM0=$(mem_used_kb) KMEM0=$(mem_kernel_kb)
# Warm the page cache again (the drop above made the binary and libraries cold) so that the
# first density start is not charged with disk reads; page cache is "available" memory and
# caches are dropped again before the second reading.
for _ in 1 2 3; do "$AC" run -- true >/dev/null 2>&1; done
"$AC" create dwarm --memory 64 >/dev/null 2>&1 && "$AC" start dwarm >/dev/null 2>&1
"$AC" remove dwarm >/dev/null 2>&1

declare -a START_MS=()
dens_fail=0
for i in $(seq 1 "$N_DENS"); do
	name=$(printf 'd%03d' "$i")
	if ! "$AC" create "$name" --memory 64 >/dev/null 2>"$WORK/err"; then
		dens_fail=$((dens_fail + 1))
		NOTES+=("density: create $name failed: $(head -c 200 "$WORK/err")")
		continue
	fi
	: >"$WORK/err"
	out=$("$TIMEIT" -n 1 -w 0 -e "$WORK/err" -- "$AC" start "$name" | tail -n 1)
	if [ "$(field "$out" fail)" != 0 ]; then
		dens_fail=$((dens_fail + 1))
		NOTES+=("density: start $name failed: $(head -c 300 "$WORK/err")")
		continue
	fi
	START_MS+=("$(field "$out" p50)")
done
log "  started $((N_DENS - dens_fail))/$N_DENS"
dens_list=$("$AC" list --json 2>/dev/null)
SUP_PIDS=$(jq -r '.[] | select(.name | test("^d[0-9]{3}$")) | select(.status == "running") | .pid' <<<"$dens_list")
N_RUNNING=$(wc -w <<<"$SUP_PIDS")
# shellcheck disable=SC2086 # SUP_PIDS is a list of pids: one argument each
read -r PSS_KB PSS_PROCS <<<"$(pss_tree_kb $SUP_PIDS)"
CG_USAGE_KB=0
for i in $(seq 1 "$N_DENS"); do
	f=/sys/fs/cgroup/memory/agentcell/$(printf 'd%03d' "$i")/memory.usage_in_bytes
	[ -r "$f" ] && CG_USAGE_KB=$((CG_USAGE_KB + $(cat "$f") / 1024))
done
drop_caches
MEM1=$(mem_used_kb) KMEM1=$(mem_kernel_kb)
log "  running=$N_RUNNING pss=${PSS_KB}kB over $PSS_PROCS processes; used delta=$((MEM1 - MEM0))kB kernel delta=$((KMEM1 - KMEM0))kB"

# One exec into the last sandbox, to be sure the 200th is really usable.
last=$(printf 'd%03d' "$N_DENS")
"$AC" exec "$last" -- true >/dev/null 2>&1 || NOTES+=("density: exec into $last failed")

# Teardown, timed as a whole, then look for anything left behind.
t0=$(date +%s%N)
for i in $(seq 1 "$N_DENS"); do
	name=$(printf 'd%03d' "$i")
	"$AC" remove "$name" >/dev/null 2>"$WORK/err" || NOTES+=("density: remove $name failed: $(head -c 200 "$WORK/err")")
done
REMOVE_MS_EACH=$(calc "($(date +%s%N) - $t0) / 1e6 / $N_DENS")
sleep 0.2
left_procs=0
for p in $SUP_PIDS; do
	# A zombie is dead: this host's PID 1 reaps orphans lazily.
	st=$(awk '$1 == "State:" { print $2 }' "/proc/$p/status" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && left_procs=$((left_procs + 1))
done
left_cg=0
for i in $(seq 1 "$N_DENS"); do
	for d in /sys/fs/cgroup/*/agentcell/"$(printf 'd%03d' "$i")"; do
		[ -d "$d" ] && left_cg=$((left_cg + 1))
	done
done
left_mounts=$(grep -c -F "$AGENTCELL_HOME" /proc/self/mountinfo)
left_state=$(find "$AGENTCELL_HOME/sandboxes" "$AGENTCELL_HOME/run" "$AGENTCELL_HOME/data" -mindepth 1 2>/dev/null | wc -l)
left_list=$("$AC" list --json 2>/dev/null | jq 'length' 2>/dev/null || echo "?")
post_cg_dirs=$(ls -d /sys/fs/cgroup/*/agentcell/*/ 2>/dev/null | wc -l)
lock_files=$(find "$AGENTCELL_HOME/locks" -type f 2>/dev/null | wc -l)
[ "$left_procs" = 0 ] || NOTES+=("after remove: $left_procs supervisor processes still alive")
[ "$left_cg" = 0 ] || NOTES+=("after remove: $left_cg cgroup directories of d### sandboxes left")
[ "$left_mounts" = 0 ] || NOTES+=("after remove: $left_mounts mounts under AGENTCELL_HOME left")
[ "$left_state" = 0 ] || NOTES+=("after remove: $left_state entries left in sandboxes/ run/ data/")
[ "$left_list" = 0 ] || NOTES+=("after remove: 'agentcell list' still shows $left_list sandboxes")
[ "$post_cg_dirs" -le "$pre_cg_dirs" ] ||
	NOTES+=("cgroup dirs under /sys/fs/cgroup/*/agentcell/: $pre_cg_dirs before density, $post_cg_dirs after (other agentcell users on this host may account for it)")
[ "$lock_files" -le 5 ] ||
	NOTES+=("$AGENTCELL_HOME/locks holds $lock_files files after everything was removed (one per sandbox/run ever made: they are never deleted)")
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report -----------------
p() { field "$1" "$2"; }
fmt_row() { # label result-line target verdict
	local l=$1 r=$2
	if [ -z "$r" ]; then
		printf '| %s | — | — | — | — | %s | %s |\n' "$l" "$3" "${4:-}"
	else
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$l" "$(p "$r" p50)" "$(p "$r" p90)" "$(p "$r" p99)" \
			"$(p "$r" n)$( [ "$(p "$r" fail)" = 0 ] || printf ' (%s failed)' "$(p "$r" fail)")" "$3" "${4:-}"
	fi
}

# shellcheck disable=SC2153 # the R_* variables are set by stats_of/bench (printf -v)
run50=$(p "$R_RUN" p50) bw50=$(p "$R_BWRAP" p50) ex50=$(p "$R_EXEC" p50) cs50=$(p "$R_CS" p50)
r_ac_bw=$(ratio "$run50" "$bw50")
r_pod_ac=n/a
[ -n "$R_PODRUN" ] && r_pod_ac=$(ratio "$(p "$R_PODRUN" p50)" "$run50")
r_podex_ac=n/a
[ -n "$R_PODEXEC" ] && r_podex_ac=$(ratio "$(p "$R_PODEXEC" p50)" "$ex50")

n_started=${#START_MS[@]}
if [ "$n_started" -gt 0 ]; then
	s_first=${START_MS[0]}
	s_last=${START_MS[$((n_started - 1))]}
	k=$((n_started >= 20 ? 10 : 1))
	s_first_med=$(printf '%s\n' "${START_MS[@]:0:k}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	s_last_med=$(printf '%s\n' "${START_MS[@]: -k}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	s_all=$(printf '%s\n' "${START_MS[@]}" | sort -g | awk '{a[NR]=$1} END {
		r50 = int(NR * 0.5 + 0.999999); r90 = int(NR * 0.9 + 0.999999); r99 = int(NR * 0.99 + 0.999999)
		printf "%s %s %s %s", a[r50], a[r90], a[r99], a[NR] }')
else
	s_first=n/a s_last=n/a s_first_med=n/a s_last_med=n/a s_all="n/a n/a n/a n/a"
fi
read -r s_p50 s_p90 s_p99 s_max <<<"$s_all"
r_dens=$(ratio "$s_last" "$s_first")
r_dens_med=$(ratio "$s_last_med" "$s_first_med")

per() { awk -v kb="$1" -v n="$2" 'BEGIN { if (n + 0 == 0) print "n/a"; else printf "%.3f", kb / n / 1024 }'; }
nd=$N_RUNNING
mib_used=$(per $((MEM1 - MEM0)) "$nd")
mib_pss=$(per "$PSS_KB" "$nd")
mib_kern=$(per $((KMEM1 - KMEM0)) "$nd")
mib_pss_kern=$(per $((PSS_KB + KMEM1 - KMEM0)) "$nd")
mib_cg=$(per "$CG_USAGE_KB" "$nd")

REPORT=$RESULTS/bench-$(date -u +%Y%m%dT%H%M%SZ).md
{
	echo "$MACHINE"
	echo "Versions: agentcell $("$AC" --version 2>/dev/null | awk '{print $2}') ($AC_SRC, sha256 $(sha256sum "$AC" | cut -c1-12), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes')), $(bwrap --version 2>/dev/null)${PODMAN_VERSION:+, podman $PODMAN_VERSION with runc $RUNC_VERSION (cgroupfs, --network none via netns=none)}; $( [ "${BENCH_QUICK:-0}" = 1 ] && echo "BENCH_QUICK=1, " )wall time of the run $((T_END - T_START)) s; load average $LOAD_START at start, $LOAD_END at end (anything well above 0 means other work shared the CPUs)"
	[ "$PODMAN_AVAILABLE" = 1 ] || echo "podman: unavailable ($PODMAN_REASON)"
	echo
	echo "| benchmark (ms unless noted) | p50 | p90 | p99 | n | target | result |"
	echo "|---|---:|---:|---:|---:|---|---|"
	fmt_row '`agentcell run -- true`' "$R_RUN" "" ""
	fmt_row '`bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true`' "$R_BWRAP" "" ""
	fmt_row '`podman run --rm IMAGE true`' "$R_PODRUN" "" "$( [ "$PODMAN_AVAILABLE" = 1 ] || echo unavailable)"
	echo "| ratio agentcell run / bwrap (p50) | $r_ac_bw | | | | <= 1.5 | $(verdict "$r_ac_bw" '<=' 1.5) |"
	echo "| ratio podman run / agentcell run (p50) | $r_pod_ac | | | | >= 50 | $(verdict "$r_pod_ac" '>=' 50) |"
	fmt_row '`true` on the host, no sandbox (fork+exec floor)' "$R_TRUE" "" ""
	fmt_row '`agentcell exec NAME -- true`' "$R_EXEC" "p50 <= 2" "$(verdict "$ex50" '<=' 2)"
	fmt_row '`podman exec NAME true`' "$R_PODEXEC" "" "$( [ -n "$R_PODEXEC" ] && echo "podman/agentcell = $r_podex_ac" || echo unavailable)"
	fmt_row '`agentcell create X && agentcell start X`' "$R_CS" "p50 <= 15" "$(verdict "$cs50" '<=' 15)"
	# shellcheck disable=SC2153 # set by `bench R_START ...` (printf -v)
	fmt_row '`agentcell start X` alone' "$R_START" "" ""
	fmt_row '`agentcell stop X`' "$R_STOP" "" ""
	echo "| density: \`start\` of each of $n_started sandboxes | $s_p50 | $s_p90 | $s_p99 | $n_started | | max $s_max |"
	echo "| density: start of #1 / #$n_started | $s_first / $s_last | | | | | |"
	echo "| density: ratio start #$n_started / #1 | $r_dens | | | | <= 2 | $(verdict "$r_dens" '<=' 2) |"
	echo "| density: ratio median of last $k / first $k starts | $r_dens_med | | | | <= 2 | $(verdict "$r_dens_med" '<=' 2) |"
	echo "| density: MiB per sandbox, supervisor PSS ($PSS_PROCS processes) | $mib_pss | | | $nd | | |"
	echo "| density: MiB per sandbox, kernel (Slab+KernelStack+PageTables delta) | $mib_kern | | | $nd | | |"
	echo "| density: MiB per sandbox, PSS + kernel | $mib_pss_kern | | | $nd | <= 1 | $(verdict "$mib_pss_kern" '<=' 1) |"
	echo "| density: MiB per sandbox, host used (MemTotal-MemAvailable delta) | $mib_used | | | $nd | | whole host: noisy |"
	echo "| density: MiB per sandbox, memory cgroup charge (usage_in_bytes) | $mib_cg | | | $nd | | |"
	echo "| density: \`remove\` per sandbox (mean) | $REMOVE_MS_EACH | | | $N_DENS | | |"
	echo "| left after removing all: processes / cgroup dirs / mounts / state entries | $left_procs / $left_cg / $left_mounts / $left_state | | | | 0 | $( [ $((left_procs + left_cg + left_mounts + left_state)) = 0 ] && echo PASS || echo FAIL) |"
	echo
	echo "First \`agentcell run\` in a fresh AGENTCELL_HOME (prepares the host base, not in the table): ${FIRST_RUN_MS} ms."
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Problems seen:"
		for n in "${NOTES[@]}"; do echo "- $n"; done
	fi
} | tee "$REPORT"
log "report saved to $REPORT"
