#!/usr/bin/env bash
# The cost of the egress proxy (src/net/proxy.c), side by side in ONE run, as root:
#
#   1. connection set-up: N sequential "connect, GET (2-byte body), response, close" from
#      inside a running `--network` sandbox through the proxy (plain HTTP with an absolute
#      URI, and a CONNECT tunnel), next to the same client making the same requests
#      directly from the host's namespace (no sandbox, no proxy);
#   2. throughput: a 256 MiB download (the server streams zeros) the same three ways;
#   3. the start time a network adds: `run -- true` vs `run --network -- true`, and
#      `start X` of a sandbox created without and with `--network`.
#
#   sudo bash bench/net.sh                     # about a minute
#   BENCH_QUICK=1 bash bench/net.sh            # fewer iterations
#   AGENTCELL=/path/to/agentcell bash bench/net.sh
#
# Nothing leaves the machine: a private "internet" network namespace holds the server at
# 192.0.2.10 (TEST-NET-1), joined by a veth pair to a "host" namespace, routed only there;
# agentcell, the proxy and the direct client all run in that host namespace (nsenter
# --net). Both namespaces go on exit. The client is python3 (sandboxes see the host's /usr):
# one program for every row. Progress goes to stderr; the report (machine line + Markdown
# tables + problems seen) to stdout and bench/results/net-<UTC time>.md. See bench/README.md.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RESULTS=$BENCH_DIR/results
AC=${AGENTCELL:-$ROOT/build/gcc/agentcell}

[ "$(id -u)" -eq 0 ] || { echo "net.sh: run as root (network namespaces, the native backend)" >&2; exit 2; }
# The host's python3 under /usr: the one a sandbox sees (a pyenv shim in PATH is not).
PY=/usr/bin/python3
for t in ip nsenter "$PY" gcc jq; do
	command -v "$t" >/dev/null || { echo "net.sh: $t is not installed" >&2; exit 1; }
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	N_REQ=300 N_DL=2 N_RUN=30 N_START=15 ROUNDS=3
else
	N_REQ=3000 N_DL=8 N_RUN=150 N_START=60 ROUNDS=5
fi
WARM=20 # untimed requests at the start of each client run (and 3 untimed commands)
DL_BYTES=$((256 << 20))
SRV_ADDR=192.0.2.10 SRV_PORT=8080
TARGET=$SRV_ADDR:$SRV_PORT

log() { printf '# %s\n' "$*" >&2; }
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "n/a"; else printf "%+.3f", a - b }'; }
NOTES=()

# ---------------------------------------------------------------- set-up -----------------
mkdir -p "$RESULTS"
[ -x "$AC" ] || make -C "$ROOT" -j2 >&2 || exit 1
TIMEIT=$RESULTS/timeit
gcc -O2 -Wall -Wextra -o "$TIMEIT" "$BENCH_DIR/timeit.c" || exit 1

WORK=$(mktemp -d /tmp/acnet.XXXXXX)
chmod 755 "$WORK"
export AGENTCELL_HOME=$WORK/home
mkdir -p "$AGENTCELL_HOME" "$WORK/bin"
cp "$AC" "$WORK/bin/agentcell" # a snapshot: others may rebuild during the run
AC_SRC=$AC
AC=$WORK/bin/agentcell
ID=$$
NS_H=acb-h-$ID NS_I=acb-i-$ID
VETH_H=acbh$ID VETH_I=acbi$ID
VETH_H=${VETH_H:0:15} VETH_I=${VETH_I:0:15}
BOX=bnet$ID              # the persistent sandbox the in-sandbox client runs in
ST_OFF=bsoff$ID ST_ON=bson$ID # start with and without --network
SERVER=
# Commands join a namespace with nsenter --net, not `ip netns exec`: that one mounts a new
# sysfs, which hides /sys/fs/cgroup from agentcell (tests/net/hostns.sh does the same).
inh() { nsenter --net="/run/netns/$NS_H" -- "$@"; }
ini() { nsenter --net="/run/netns/$NS_I" -- "$@"; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -d "$AGENTCELL_HOME/sandboxes" ]; then
		local n
		for n in $(inh "$AC" list --json 2>/dev/null | jq -r '.[].name' 2>/dev/null); do
			inh "$AC" remove "$n" >/dev/null 2>&1
		done
	fi
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	ip netns del "$NS_H" 2>/dev/null # takes the veth pair with it
	ip netns del "$NS_I" 2>/dev/null
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the private internet ---
# The veth pair is made with its ends already in the two namespaces: the real host's
# namespace never gets an interface, an address or a route.
{
	ip netns add "$NS_H" && ip netns add "$NS_I" &&
		ip link add "$VETH_H" netns "$NS_H" type veth peer name "$VETH_I" netns "$NS_I" &&
		inh ip link set lo up && ini ip link set lo up &&
		inh ip link set "$VETH_H" up && ini ip link set "$VETH_I" up &&
		inh ip addr add 198.51.100.1/24 dev "$VETH_H" &&
		ini ip addr add 198.51.100.2/24 dev "$VETH_I" &&
		ini ip addr add "$SRV_ADDR/32" dev lo &&
		inh ip route add "$SRV_ADDR/32" via 198.51.100.2
} >"$WORK/netns.err" 2>&1 || { echo "net.sh: the private network: $(cat "$WORK/netns.err")" >&2; exit 1; }
route=$(inh ip route get "$SRV_ADDR" 2>&1)
if ! grep -q "dev $VETH_H " <<<"$route" || [ -n "$(inh ip route show default)" ] ||
	ip link show "$VETH_H" >/dev/null 2>&1; then
	echo "net.sh: $SRV_ADDR must route only into $NS_I: '$route'" >&2
	exit 1
fi
log "private network: $NS_H ($VETH_H 198.51.100.1) -> $NS_I ($SRV_ADDR); in $NS_H: $route"

# The server: asyncio, one response per connection ("Connection: close"): GET /tiny answers
# the 2 bytes "ok", GET /zero/N sends N zero bytes with sendfile(2) from a sparse file (the
# kernel does the copy: the server is not what limits the download). Absolute URIs are
# accepted too.
truncate -s "$DL_BYTES" "$WORK/zeros"
cat >"$WORK/server.py" <<'EOF'
import asyncio, sys
ZEROS = open(sys.argv[4], "rb")
async def handle(r, w):
    try:
        head = await r.readuntil(b"\r\n\r\n")
        path = head.split(b"\r\n", 1)[0].split(b" ")[1]
        if path.startswith(b"http://"):
            path = b"/" + path.split(b"/", 3)[3]
        if path == b"/tiny":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        elif path.startswith(b"/zero/"):
            n = int(path[6:])
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % n)
            await w.drain()
            await asyncio.get_running_loop().sendfile(w.transport, ZEROS, 0, n)
        else:
            w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await w.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
        pass
    finally:
        w.close()
async def main():
    srv = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]), backlog=512)
    open(sys.argv[3], "w").write("up\n")
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
EOF
# Started by nsenter itself (which execs python), not through a shell function: $! is then
# the server's pid and the clean-up's kill reaches it.
nsenter --net="/run/netns/$NS_I" -- "$PY" "$WORK/server.py" "$SRV_ADDR" "$SRV_PORT" "$WORK/server.ready" "$WORK/zeros" </dev/null >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -s "$WORK/server.ready" ] && break; sleep 0.05; done
[ -s "$WORK/server.ready" ] || { echo "net.sh: the server did not start: $(cat "$WORK/server.log")" >&2; exit 1; }

# The client, one program for every row. MODE: direct (to the server), http (GET with an
# absolute URI to the proxy at 127.0.0.1:3128), connect (CONNECT, then GET in the tunnel).
# "lat": WARM untimed then N timed requests of /tiny, one "sample MS" line each (connect to
# close); "dl": N downloads of BYTES, one "dl MBPS SECONDS" line each. A failure is one
# "error ..." line; 5 in a row end the run. Every socket has a 30 s timeout: a stall is an
# error, never a hang.
read -r -d '' CLIENT <<'EOF'
import socket, sys, time
mode, kind, target, n, warm, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
PROXY = ("127.0.0.1", 3128)
host, port = target.rsplit(":", 1)
buf = bytearray(1 << 20)
mv = memoryview(buf)
def head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        k = s.recv(65536)
        if not k:
            raise EOFError("connection closed before the response head (%d bytes)" % len(data))
        data += k
    h, rest = data.split(b"\r\n\r\n", 1)
    lines = h.split(b"\r\n")
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        hdrs[k.strip().lower()] = v.strip()
    return int(lines[0].split(b" ")[1]), hdrs, rest, lines[0]
def one(path):
    if mode == "direct":
        s = socket.create_connection((host, int(port)), timeout=30)
        uri = path
    else:
        s = socket.create_connection(PROXY, timeout=30)
        uri = path if mode == "connect" else "http://" + target + path
    try:
        if mode == "connect":
            s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
            st, _, rest, line = head(s)
            if st != 200 or rest:
                raise RuntimeError("CONNECT answered %r" % line)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (uri, target)).encode())
        st, h, rest, line = head(s)
        if st != 200:
            raise RuntimeError("GET answered %r" % line)
        want, got = int(h[b"content-length"]), len(rest)
        while got < want:
            k = s.recv_into(mv, min(len(buf), want - got))
            if k == 0:
                raise EOFError("body cut at %d of %d bytes" % (got, want))
            got += k
        if got != want:
            raise RuntimeError("body of %d bytes, expected %d" % (got, want))
    finally:
        s.close()
errs = 0
def attempt(path):
    global errs
    t0 = time.perf_counter_ns()
    try:
        one(path)
    except Exception as e:
        errs += 1
        print("error %s: %s" % (type(e).__name__, str(e).replace("\n", " ")[:200]), flush=True)
        if errs >= 5:
            sys.exit(1)
        return None
    errs = 0
    return (time.perf_counter_ns() - t0) / 1e6
if kind == "lat":
    for i in range(warm):
        attempt("/tiny")
    for i in range(n):
        ms = attempt("/tiny")
        if ms is not None:
            print("sample %.3f" % ms)
else:
    for i in range(n):
        ms = attempt("/zero/%d" % size)
        if ms is not None:
            print("dl %.1f %.3f" % (size / 1e6 / (ms / 1e3), ms / 1e3), flush=True)
EOF
direct() { inh "$PY" -c "$CLIENT" direct "$@"; }
inbox() { inh "$AC" exec "$BOX" -- "$PY" -c "$CLIENT" "$@"; }

# Pools the "sample MS" lines of FILE into one timeit-style line (nearest-rank
# percentiles); failures are its "error" lines plus missing samples.
stats_of() { # VAR LABEL FILE EXPECTED
	local var=$1 label=$2 file=$3 expected=$4 out n fails
	n=$(grep -c '^sample ' "$file")
	fails=$((expected - n))
	out=$(awk '$1 == "sample" { print $2 }' "$file" | sort -g | awk -v fails="$fails" '
		{ s[++n] = $1; sum += $1 }
		function rk(p,   r) { r = int(p / 100 * n + 0.999999); return r < 1 ? 1 : (r > n ? n : r) }
		END {
			if (n == 0) { printf "n=0 fail=%d\n", fails; exit }
			printf "n=%d fail=%d p50=%.3f p90=%.3f p99=%.3f mean=%.3f min=%.3f max=%.3f\n", n, fails,
				s[rk(50)], s[rk(90)], s[rk(99)], sum / n, s[1], s[n]
		}')
	log "  $label: $out"
	if [ "$fails" != 0 ]; then
		NOTES+=("$label: $fails of $expected iterations failed; first errors: $(grep -m 3 -v '^sample ' "$file" | tr '\n' ';' | head -c 400)")
	fi
	printf -v "$var" '%s' "$out"
}

# ---------------------------------------------------------------- machine ----------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virt=$(systemd-detect-virt 2>/dev/null || true)
MACHINE="Machine: ${cpu_model:-unknown CPU}, nproc $(nproc), $(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo) GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo "?")${virt:+, virt: $virt}"
log "$MACHINE"
T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1. set-up latency ------
# --cpus nproc: the client in the sandbox gets the CPUs the direct client has (the default
# of 1 CPU would be a cost of the cgroup, not of the proxy).
if ! inh "$AC" create "$BOX" --network --cpus "$(nproc)" >/dev/null 2>"$WORK/err" ||
	! inh "$AC" start "$BOX" >/dev/null 2>>"$WORK/err"; then
	echo "net.sh: cannot create/start the sandbox: $(cat "$WORK/err")" >&2
	exit 1
fi
# The sandbox reaches nothing but its proxy: a direct connection must fail in the kernel.
if inh "$AC" exec "$BOX" -- "$PY" -c "import socket; socket.create_connection(('$SRV_ADDR', $SRV_PORT), timeout=5)" >/dev/null 2>&1; then
	echo "net.sh: the sandbox reached $TARGET without the proxy" >&2
	exit 1
fi
per=$((N_REQ / ROUNDS))
: >"$WORK/l.direct"; : >"$WORK/l.http"; : >"$WORK/l.connect"
log "connection set-up: $ROUNDS rounds of $per requests (+$WARM warm-up) each: direct, proxy HTTP, proxy CONNECT"
for _ in $(seq 1 "$ROUNDS"); do
	direct lat "$TARGET" "$per" "$WARM" 0 >>"$WORK/l.direct" 2>&1
	inbox http lat "$TARGET" "$per" "$WARM" 0 >>"$WORK/l.http" 2>&1
	inbox connect lat "$TARGET" "$per" "$WARM" 0 >>"$WORK/l.connect" 2>&1
done
stats_of L_DIRECT "direct" "$WORK/l.direct" $((per * ROUNDS))
stats_of L_HTTP "proxy, plain HTTP" "$WORK/l.http" $((per * ROUNDS))
stats_of L_CONNECT "proxy, CONNECT" "$WORK/l.connect" $((per * ROUNDS))

# ---------------------------------------------------------------- 2. throughput ----------
log "download of $((DL_BYTES >> 20)) MiB, $N_DL times each way, interleaved"
: >"$WORK/d.direct"; : >"$WORK/d.http"; : >"$WORK/d.connect"
for _ in $(seq 1 "$N_DL"); do
	direct dl "$TARGET" 1 0 "$DL_BYTES" >>"$WORK/d.direct" 2>&1
	inbox connect dl "$TARGET" 1 0 "$DL_BYTES" >>"$WORK/d.connect" 2>&1
	inbox http dl "$TARGET" 1 0 "$DL_BYTES" >>"$WORK/d.http" 2>&1
done
dl_stats() { # VAR LABEL FILE: "n= fail= med= min= max=" in MB/s
	local n fails out
	n=$(grep -c '^dl ' "$3")
	fails=$((N_DL - n))
	out=$(awk '$1 == "dl" { print $2 }' "$3" | sort -g | awk -v fails="$fails" '
		{ s[++n] = $1 }
		END { if (n == 0) { printf "n=0 fail=%d\n", fails; exit }
		      printf "n=%d fail=%d med=%.1f min=%.1f max=%.1f\n", n, fails, (n % 2) ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2, s[1], s[n] }')
	log "  $2: $out"
	[ "$fails" = 0 ] ||
		NOTES+=("$2: $fails of $N_DL downloads failed; first errors: $(grep -m 3 -v '^dl ' "$3" | tr '\n' ';' | head -c 400)")
	printf -v "$1" '%s' "$out"
}
dl_stats D_DIRECT "download direct" "$WORK/d.direct"
dl_stats D_CONNECT "download through the proxy, CONNECT" "$WORK/d.connect"
dl_stats D_HTTP "download through the proxy, plain HTTP" "$WORK/d.http"

# What the proxy itself recorded: one audit line per connection, all allowed.
expected_conn=$((ROUNDS * (per + WARM) * 2 + N_DL * 2))
audit=$(jq -r --arg b "$BOX" 'select(.event == "net" and .sandbox == $b) | .details.verdict' \
	"$AGENTCELL_HOME/audit.jsonl" 2>/dev/null | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')
log "proxy audit: ${audit:-nothing} (connections made through it: $expected_conn)"
n_allowed=$(jq -r --arg b "$BOX" 'select(.event == "net" and .sandbox == $b and .details.verdict == "allowed") | 1' \
	"$AGENTCELL_HOME/audit.jsonl" 2>/dev/null | wc -l)
[ "$n_allowed" = "$expected_conn" ] ||
	NOTES+=("proxy audit: $n_allowed connections allowed (${audit:-no net lines}), $expected_conn made")
proxy_pid=$(jq -r '.pid // empty' "$AGENTCELL_HOME/net/$BOX/proxy.pid" 2>/dev/null)
inh "$AC" remove "$BOX" >/dev/null 2>&1 || NOTES+=("remove $BOX failed")
if [ -z "$proxy_pid" ]; then
	NOTES+=("no proxy record at \$AGENTCELL_HOME/net/$BOX/proxy.pid while $BOX ran")
elif [ -d "/proc/$proxy_pid" ] && [ "$(awk '$1 == "State:" { print $2 }' "/proc/$proxy_pid/status" 2>/dev/null)" != Z ]; then
	NOTES+=("the proxy of $BOX (pid $proxy_pid) is still alive after remove")
fi

# ---------------------------------------------------------------- 3. start time ----------
log "agentcell run -- true / run --network -- true, interleaved in $ROUNDS rounds"
: >"$WORK/s.run"; : >"$WORK/s.runnet"
inh "$TIMEIT" -n 3 -w 0 -- "$AC" run -- true >/dev/null
inh "$TIMEIT" -n 3 -w 0 -- "$AC" run --network -- true >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
	inh "$TIMEIT" -r -n $((N_RUN / ROUNDS)) -w 0 -e "$WORK/run.err" -- "$AC" run -- true >>"$WORK/s.run"
	inh "$TIMEIT" -r -n $((N_RUN / ROUNDS)) -w 0 -e "$WORK/run.err" -- "$AC" run --network -- true >>"$WORK/s.runnet"
done
# timeit -r: "sample MS" lines and its own summary line; failures are in the summary.
tfails() { awk '/^n=/ { split($2, f, "="); t += f[2] } END { print t + 0 }' "$1"; }
stats_of S_RUN "run -- true" "$WORK/s.run" $(($(grep -c '^sample ' "$WORK/s.run") + $(tfails "$WORK/s.run")))
stats_of S_RUNNET "run --network -- true" "$WORK/s.runnet" $(($(grep -c '^sample ' "$WORK/s.runnet") + $(tfails "$WORK/s.runnet")))

log "agentcell start X, created without / with --network, interleaved in $ROUNDS rounds (stop untimed)"
inh "$AC" create "$ST_OFF" >/dev/null 2>>"$WORK/err" || NOTES+=("create $ST_OFF failed")
inh "$AC" create "$ST_ON" --network >/dev/null 2>>"$WORK/err" || NOTES+=("create $ST_ON --network failed")
: >"$WORK/s.start"; : >"$WORK/s.startnet"
inh "$TIMEIT" -n 3 -w 0 -a "'$AC' stop $ST_OFF >/dev/null 2>&1" -- "$AC" start "$ST_OFF" >/dev/null
inh "$TIMEIT" -n 3 -w 0 -a "'$AC' stop $ST_ON >/dev/null 2>&1" -- "$AC" start "$ST_ON" >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
	inh "$TIMEIT" -r -n $((N_START / ROUNDS)) -w 0 -e "$WORK/start.err" -a "'$AC' stop $ST_OFF >/dev/null 2>&1" \
		-- "$AC" start "$ST_OFF" >>"$WORK/s.start"
	inh "$TIMEIT" -r -n $((N_START / ROUNDS)) -w 0 -e "$WORK/start.err" -a "'$AC' stop $ST_ON >/dev/null 2>&1" \
		-- "$AC" start "$ST_ON" >>"$WORK/s.startnet"
done
stats_of S_START "start X" "$WORK/s.start" $(($(grep -c '^sample ' "$WORK/s.start") + $(tfails "$WORK/s.start")))
stats_of S_STARTNET "start X (--network)" "$WORK/s.startnet" $(($(grep -c '^sample ' "$WORK/s.startnet") + $(tfails "$WORK/s.startnet")))
[ -s "$WORK/run.err" ] && NOTES+=("run errors: $(head -c 300 "$WORK/run.err" | tr '\n' ' ')")
[ -s "$WORK/start.err" ] && NOTES+=("start errors: $(head -c 300 "$WORK/start.err" | tr '\n' ' ')")
inh "$AC" remove "$ST_OFF" >/dev/null 2>&1
inh "$AC" remove "$ST_ON" >/dev/null 2>&1
T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report -----------------
row() { # label result-line note
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(field "$2" p50)" "$(field "$2" p90)" "$(field "$2" p99)" \
		"$(field "$2" n)$([ "$(field "$2" fail)" = 0 ] || printf ' (%s failed)' "$(field "$2" fail)")" "$3"
}
dlrow() { # label result-line note
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(field "$2" med)" "$(field "$2" min)" "$(field "$2" max)" \
		"$(field "$2" n)$([ "$(field "$2" fail)" = 0 ] || printf ' (%s failed)' "$(field "$2" fail)")" "$3"
}
vs() { # result baseline key: "x RATIO (+DIFF ms)"
	printf '%s x (%s ms)' "$(ratio "$(field "$1" "$3")" "$(field "$2" "$3")")" "$(diff_ms "$(field "$1" "$3")" "$(field "$2" "$3")")"
}
sha=$(sha256sum "$AC" | cut -c1-12)
gitrev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
# shellcheck disable=SC2153 # the L_/D_/S_ variables are set by stats_of/dl_stats (printf -v)
{
	echo "$MACHINE"
	echo "Versions: agentcell $("$AC" --version 2>/dev/null | awk '{ print $NF }') ($AC_SRC, sha256 $sha, git $gitrev), Python $("$PY" -c 'import platform; print(platform.python_version())'); wall time of the run $((T_END - T_START)) s; load average $LOAD_START at start, $LOAD_END at end"
	echo
	echo "| connect + GET (2-byte body) + close, ms | p50 | p90 | p99 | n | vs direct (p50) |"
	echo "|---|---:|---:|---:|---:|---|"
	row "direct, host namespace to $TARGET (no sandbox, no proxy)" "$L_DIRECT" ""
	row "sandbox -> proxy, plain HTTP (\`GET http://$TARGET/tiny\`)" "$L_HTTP" "$(vs "$L_HTTP" "$L_DIRECT" p50)"
	row "sandbox -> proxy, \`CONNECT $TARGET\` + GET in the tunnel" "$L_CONNECT" "$(vs "$L_CONNECT" "$L_DIRECT" p50)"
	echo
	echo "| download of 256 MiB, MB/s (10^6 B/s) | median | min | max | n | vs direct (median) |"
	echo "|---|---:|---:|---:|---:|---|"
	dlrow "direct, host namespace" "$D_DIRECT" ""
	dlrow "sandbox -> proxy, CONNECT tunnel" "$D_CONNECT" "$(ratio "$(field "$D_CONNECT" med)" "$(field "$D_DIRECT" med)") x"
	dlrow "sandbox -> proxy, plain HTTP" "$D_HTTP" "$(ratio "$(field "$D_HTTP" med)" "$(field "$D_DIRECT" med)") x"
	echo
	echo "| start time, ms | p50 | p90 | p99 | n | added by the network (p50) |"
	echo "|---|---:|---:|---:|---:|---|"
	row '`agentcell run -- true`' "$S_RUN" ""
	row '`agentcell run --network -- true`' "$S_RUNNET" "$(vs "$S_RUNNET" "$S_RUN" p50)"
	row '`agentcell start X` (created without `--network`; stop untimed)' "$S_START" ""
	row '`agentcell start X` (created with `--network`; stop untimed)' "$S_STARTNET" "$(vs "$S_STARTNET" "$S_START" p50)"
	echo
	echo "Proxy audit of the sandbox: ${audit:-no net lines} ($expected_conn connections made through it)."
	if [ ${#NOTES[@]} -gt 0 ]; then
		echo
		echo "Problems seen:"
		for n in "${NOTES[@]}"; do echo "- $n"; done
	fi
} | tee "$RESULTS/net-$(date -u +%Y%m%dT%H%M%SZ).md"
