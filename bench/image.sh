#!/usr/bin/env bash
# Image pulls and image-based sandboxes, side by side in ONE run, as root:
#
#   1. pull time of one image (3 layers, about 50 MB unpacked, 30 MB compressed) from a
#      local plain-HTTP registry (Debian's docker-registry on 127.0.0.1, started by
#      tests/image/registry.sh): `agentcell image pull` vs `podman pull --tls-verify=false`,
#      each into an empty store every time (the store is emptied after each pull, untimed);
#   2. when `agentcell create --image` works: create+start of a sandbox from that image vs
#      from the host base, and a one-shot `run -- /bin/true` from each.
#
#   sudo bash bench/image.sh                   # a minute or two
#   BENCH_QUICK=1 bash bench/image.sh          # 3 pulls instead of 5, fewer runs
#   AGENTCELL=/path/to/agentcell bash bench/image.sh
#
# Medians (p50 of timeit, bench/timeit.c) of N pulls; ratios between numbers of this run.
# Progress goes to stderr; the report (machine line + Markdown table + problems seen) to
# stdout and to bench/results/image-<UTC time>.md. Everything (registry, stores, podman's
# private storage) lives under one mktemp -d directory removed at the end, even on Ctrl-C.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}
PY=/usr/bin/python3

[ "$(id -u)" -eq 0 ] || { echo "image.sh: run as root (the native backend needs root)" >&2; exit 2; }
for t in docker-registry gcc jq curl "$PY"; do
	command -v "$t" >/dev/null || { echo "image.sh: $t is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_PULL=3 N_CS=10 N_RUN=20 WARM=1
else
	N_PULL=5 N_CS=30 N_RUN=50 WARM=2
fi

log() { printf '# %s\n' "$*" >&2; }
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
NOTES=()

# ---------------------------------------------------------------- set-up -----------------
mkdir -p "$RESULTS"
[ -x "$AC" ] || make -C "$ROOT" -j2 >&2 || exit 1
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || exit 1

WORK=$(mktemp -d /tmp/acimg.XXXXXX)
chmod 755 "$WORK"
export AGENTCELL_HOME=$WORK/home
mkdir -p "$AGENTCELL_HOME" "$WORK/bin"
cp "$AC" "$WORK/bin/agentcell" # a snapshot: others may rebuild during the run
AC_SRC=$AC
AC=$WORK/bin/agentcell
export HOME=$WORK # no credentials or agentcell.toml of the caller's
cd "$WORK" || exit 1
REG_ROOT=$WORK/reg
mkdir -p "$REG_ROOT"
# shellcheck source=tests/image/registry.sh
. "$ROOT/tests/image/registry.sh"
# shellcheck source=scripts/podman-setup.sh
. "$ROOT/scripts/podman-setup.sh"
PODMAN_OK=0
CS=bimg$$ CSH=bhost$$

cleanup() {
	local rc=$? n
	trap - EXIT INT TERM
	for n in $("$AC" list --json 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
		"$AC" remove "$n" >/dev/null 2>&1
	done
	[ "$PODMAN_OK" = 1 ] && podman_teardown >/dev/null 2>&1
	reg_cleanup
	rm -rf --one-file-system "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! reg_init || ! reg_start bench plain; then
	echo "image.sh: registry: $REG_REASON" >&2
	exit 1
fi
R=$(reg_get bench addr)
log "registry on $R"

# The image: a busybox root with /usr/lib/python3.11 (text and bytecode: compresses ~3:1),
# a 16 MB random layer (does not compress), a small top layer.
L=$WORK/layers
mkdir -p "$L/1/bin" "$L/1/usr/lib" "$L/1/etc" "$L/1/tmp" "$L/2/data" "$L/3/etc"
cp /bin/busybox "$L/1/bin/busybox" || { echo "image.sh: busybox-static is missing" >&2; exit 1; }
for c in $(/bin/busybox --list); do [ "$c" = busybox ] || ln -sf busybox "$L/1/bin/$c"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$L/1/etc/passwd"
PYLIB=$(ls -d /usr/lib/python3.* 2>/dev/null | head -1)
[ -n "$PYLIB" ] && cp -a "$PYLIB" "$L/1/usr/lib/"
head -c $((16 << 20)) /dev/urandom >"$L/2/data/random"
echo "bench $$" >"$L/3/etc/motd"
REF=$R/bench/img:1
J=$(reg_push bench image bench/img:1 --layer "$L/1" --layer "$L/2" --layer "$L/3" \
	--env PATH=/bin --cmd '["/bin/sh"]' --json) || { echo "image.sh: push failed" >&2; exit 1; }
UNPACKED=$(du -sbc "$L" | tail -1 | cut -f1)
COMPRESSED=0
for d in $(jq -r '.layers[]' <<<"$J"); do
	COMPRESSED=$((COMPRESSED + $(stat -c %s "$(reg_blob_path bench "$d")")))
done
IMG_DESC="3 layers, $((UNPACKED >> 20)) MB unpacked, $((COMPRESSED >> 20)) MB compressed (gzip)"
log "image $REF: $IMG_DESC"

# bench VAR LABEL TIMEIT-ARGS...: runs timeit, logs its line and stores it in VAR.
bench() {
	local var=$1 label=$2 out
	shift 2
	log "$label ..."
	out=$("$TIMEIT" "$@" | tail -n 1)
	log "  $out"
	[ "$(field "$out" fail)" = 0 ] ||
		NOTES+=("$label: $(field "$out" fail) of $(field "$out" n) iterations failed (non-zero exit)")
	printf -v "$var" '%s' "$out"
}

# ---------------------------------------------------------------- 1. pulls ---------------
R_PULL='' R_POD=''
if "$AC" image pull "$REF" --insecure-registry "$R" >"$WORK/pull.out" 2>&1; then
	rm -rf "$AGENTCELL_HOME/images"
	bench R_PULL "agentcell image pull" -n "$N_PULL" -w 0 -e "$WORK/pull.err" \
		-a "rm -rf '$AGENTCELL_HOME/images'" -- "$AC" image pull "$REF" --insecure-registry "$R"
else
	NOTES+=("agentcell image pull failed: $(tail -n 1 "$WORK/pull.out")")
fi
if podman_setup; then
	PODMAN_OK=1
	podman_stop_service # the CLI is measured, not the service
	if podman pull -q --tls-verify=false "$REF" >"$WORK/podman.out" 2>&1; then
		podman rmi -af >/dev/null 2>&1
		bench R_POD "podman pull --tls-verify=false" -n "$N_PULL" -w 0 \
			-a "podman rmi -af >/dev/null 2>&1" -- podman pull -q --tls-verify=false "$REF"
	else
		NOTES+=("podman pull failed: $(tail -n 1 "$WORK/podman.out")")
	fi
else
	NOTES+=("podman: $PODMAN_REASON")
fi

# ---------------------------------------------------------------- 2. sandboxes -----------
R_CSI='' R_CSH='' R_RUNI='' R_RUNH=''
"$AC" image pull "$REF" --insecure-registry "$R" >/dev/null 2>&1
if "$AC" create "$CS" --image "$REF" >"$WORK/create.out" 2>&1 && "$AC" start "$CS" >>"$WORK/create.out" 2>&1 &&
	"$AC" exec "$CS" -- /bin/cat /etc/motd >"$WORK/motd.out" 2>&1 &&
	grep -q "bench $$" "$WORK/motd.out"; then
	"$AC" remove "$CS" >/dev/null 2>&1
	bench R_CSI "create+start --image (bench/img:1)" -n "$N_CS" -w "$WARM" -a "'$AC' remove $CS >/dev/null 2>&1" \
		-- "$AC" create "$CS" --image "$REF" ::: "$AC" start "$CS"
	bench R_CSH "create+start (host base)" -n "$N_CS" -w "$WARM" -a "'$AC' remove $CSH >/dev/null 2>&1" \
		-- "$AC" create "$CSH" ::: "$AC" start "$CSH"
	bench R_RUNI "run --image (bench/img:1) -- /bin/true" -n "$N_RUN" -w "$WARM" \
		-- "$AC" run --image "$REF" -- /bin/true
	bench R_RUNH "run -- /bin/true (host base)" -n "$N_RUN" -w "$WARM" -- "$AC" run -- /bin/true
else
	NOTES+=("sandboxes from an image not measured: create/start --image failed: $(tail -n 2 "$WORK/create.out" | tr '\n' ' ')")
	"$AC" remove "$CS" >/dev/null 2>&1
fi

# ---------------------------------------------------------------- report -----------------
p() { field "$1" "$2"; }
row() { # label result-line
	if [ -z "$2" ]; then
		printf '| %s | — | — | — | — |\n' "$1"
	else
		printf '| %s | %s | %s | %s | %s%s |\n' "$1" "$(p "$2" p50)" "$(p "$2" min)" "$(p "$2" max)" \
			"$(p "$2" n)" "$([ "$(p "$2" fail)" = 0 ] || printf ' (%s failed)' "$(p "$2" fail)")"
	fi
}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUTF=$RESULTS/image-$STAMP.md
{
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "versions: $("$AC" --version 2>/dev/null | head -1) ($AC_SRC), docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}'), $(podman --version 2>/dev/null || echo 'no podman')"
	echo "image: $REF: $IMG_DESC; registry and clients on loopback"
	echo
	echo "| what (ms) | median | min | max | n |"
	echo "|---|---|---|---|---|"
	row "agentcell image pull (empty store)" "$R_PULL"
	row "podman pull --tls-verify=false (empty store)" "$R_POD"
	printf '| **podman pull / agentcell image pull** | **%s** | | | |\n' "$(ratio "$(p "$R_POD" p50)" "$(p "$R_PULL" p50)")"
	row "agentcell create+start --image" "$R_CSI"
	row "agentcell create+start (host base)" "$R_CSH"
	printf '| **create+start: image / host** | **%s** | | | |\n' "$(ratio "$(p "$R_CSI" p50)" "$(p "$R_CSH" p50)")"
	row "agentcell run --image -- /bin/true" "$R_RUNI"
	row "agentcell run -- /bin/true (host base)" "$R_RUNH"
	printf '| **run: image / host** | **%s** | | | |\n' "$(ratio "$(p "$R_RUNI" p50)" "$(p "$R_RUNH" p50)")"
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "problems seen:"
		printf -- '- %s\n' "${NOTES[@]}"
	fi
} | tee "$OUTF"
log "report: $OUTF"
