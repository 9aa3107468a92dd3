# shellcheck shell=bash
# The network tests' private internet, sourced by tests/integration/test_net_*.sh after
# lib.sh and ac_setup. Nothing leaves this machine and the real host's network namespace
# gets no interface and no route:
#
#   acn-h-ID  "the host": where agentcell runs (every `ac`/`acx` call goes through
#             tests/net/hostns.sh there once ac_inet_up ran). veth acvhID, 198.51.100.1/24 and
#             2001:db8:ffff::1/64; routes to 192.0.2.0/24, 203.0.113.0/24, 2001:db8::/32,
#             10.0.0.1/32 and 169.254.169.254/32 through the internet, nothing else. A "host
#             loopback service" listens on 0.0.0.0:INET_LOOP_PORT (so on 127.0.0.1 and on
#             the host's own address 198.51.100.1) and logs every connection.
#   acn-i-ID  "the internet": veth acviID 198.51.100.2/24, 2001:db8:ffff::2/64; on its lo
#             the servers' addresses. tests/net/inet_server.py serves HTTP (80) and HTTPS
#             (443) on each of: 192.0.2.10 allowed.test, 198.51.100.20 blocked.test,
#             203.0.113.30 api.secret.test, 203.0.113.40 other.test, 2001:db8::10 v6.test,
#             169.254.169.254 metadata.test, 10.0.0.1 (private.test); UDP 192.0.2.53:53 and
#             :9999 and TCP 192.0.2.10:9000 log whatever reaches them.
#   /etc/netns/acn-h-ID/hosts (hostns.sh puts it on /etc/hosts): the names above and
#             rebind.test -> 127.0.0.1, rebind-private.test -> 10.0.0.1,
#             rebind-meta.test -> 169.254.169.254, self.test -> 198.51.100.1.
#
# Defines: INET_H INET_I (namespace names), INET_DIR, INET_CA (the test CA, PEM),
# INET_LOG (every request/datagram/connection the internet's servers saw, JSON lines),
# INET_HOSTLOG (the host loopback service's connections), INET_LOOP_PORT,
# INET_LOOP_PID (its pid: the only process of the host ns when no sandbox runs),
# INET_HOST_ADDR (198.51.100.1), AC_WRAP (used by lib.sh's ac()), and inh (run a command
# in the host namespace).

INET_HOST_ADDR=198.51.100.1
INET_PEER_ADDR=198.51.100.2
INET_UP=0

inh() { "$AC_REPO/tests/net/hostns.sh" "$INET_H" "$@"; }
ini() { ip netns exec "$INET_I" "$@"; }

# _inet_ca DIR: a CA and one server certificate for every name and address of the internet.
_inet_ca() {
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=agentcell net tests CA $INET_ID" -keyout "$d/ca-key.pem" -out "$d/ca.pem" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		>/dev/null 2>&1 || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=inet server" \
		-keyout "$d/server-key.pem" -out "$d/server.csr" >/dev/null 2>&1 || return 1
	cat >"$d/server.ext" <<-EXT
		basicConstraints=CA:FALSE
		keyUsage=critical,digitalSignature
		extendedKeyUsage=serverAuth
		subjectAltName=DNS:allowed.test,DNS:blocked.test,DNS:api.secret.test,DNS:other.test,DNS:v6.test,DNS:metadata.test,DNS:private.test,DNS:rebind.test,DNS:rebind-private.test,DNS:rebind-meta.test,DNS:a.wild.test,DNS:b.c.wild.test,DNS:wild.test,IP:192.0.2.10,IP:198.51.100.20,IP:203.0.113.30,IP:203.0.113.40,IP:2001:db8::10,IP:169.254.169.254,IP:10.0.0.1
	EXT
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
		-CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem" >/dev/null 2>&1
}

# The servers of the internet: "ADDR NAME..." per line (names go to the host's /etc/hosts).
INET_HTTP_SERVERS=(
	"192.0.2.10 allowed.test a.wild.test b.c.wild.test wild.test"
	"198.51.100.20 blocked.test"
	"203.0.113.30 api.secret.test"
	"203.0.113.40 other.test"
	"2001:db8::10 v6.test"
	"169.254.169.254 metadata.test"
	"10.0.0.1 private.test"
)

_inet_start() { # NAME ARGS...: one server process in the internet namespace
	local name=$1
	shift
	ini setsid "$PY" "$AC_REPO/tests/net/inet_server.py" "$@" --ready "$INET_DIR/ready.$name" \
		</dev/null >>"$INET_DIR/servers.out" 2>&1 &
	bg_track $!
	INET_READY+=("$INET_DIR/ready.$name")
}

_inet_real_snapshot() {
	ip -o link show | awk '{ print $2 }'
	ip route show table all | grep -v -E '^(local|broadcast|multicast) |proto kernel.*fe80|^fe80|^ff00' | sort
}

# ac_inet_up: builds the private internet; skips the whole test file (exit 0) without
# `ip netns` or openssl; fails it (exit 1) when something does not come up.
ac_inet_up() {
	local t line addr n f
	for t in ip openssl curl; do
		if ! command -v "$t" >/dev/null; then
			skip "the test internet" "$t is not installed"
			exit 0
		fi
	done
	INET_ID=$(uniq_id)
	INET_H=acn-h-$INET_ID
	INET_I=acn-i-$INET_ID
	if ! ip netns add "$INET_H" 2>"$AC_TMP/netns.err"; then
		skip "the test internet" "ip netns is unavailable: $(head -1 "$AC_TMP/netns.err")"
		exit 0
	fi
	# The real host's routes and links, to compare with after the tests.
	INET_REAL_BEFORE=$(_inet_real_snapshot)
	at_exit "ac_inet_down quiet"
	INET_UP=1
	ip netns add "$INET_I" || { fail "the test internet: ip netns add $INET_I"; exit 1; }
	INET_DIR=$AC_TMP/inet
	mkdir -p "$INET_DIR" "/etc/netns/$INET_H"
	chmod 755 "$INET_DIR"
	INET_LOG=$INET_DIR/internet.log
	INET_HOSTLOG=$INET_DIR/hostloop.log
	: >"$INET_LOG"
	: >"$INET_HOSTLOG"
	if ! _inet_ca "$INET_DIR"; then
		fail "the test internet: the test CA and server certificate (openssl)"
		exit 1
	fi
	INET_CA=$INET_DIR/ca.pem
	chmod 644 "$INET_DIR"/*.pem

	# The host's names.
	{
		echo "127.0.0.1 localhost"
		echo "::1 localhost ip6-localhost ip6-loopback"
		for line in "${INET_HTTP_SERVERS[@]}"; do echo "$line"; done
		echo "127.0.0.1 rebind.test"
		echo "10.0.0.1 rebind-private.test"
		echo "169.254.169.254 rebind-meta.test"
		echo "$INET_HOST_ADDR self.test"
	} >"/etc/netns/$INET_H/hosts"

	# The veth pair is made with its ends already in the two namespaces.
	local vh=acvh$INET_ID vi=acvi$INET_ID
	vh=${vh:0:15}
	vi=${vi:0:15}
	INET_VETH_H=$vh
	{
		ip link add "$vh" netns "$INET_H" type veth peer name "$vi" netns "$INET_I" &&
			inh ip link set lo up && ini ip link set lo up &&
			inh ip link set "$vh" up && ini ip link set "$vi" up &&
			inh ip addr add "$INET_HOST_ADDR/24" dev "$vh" &&
			inh ip -6 addr add 2001:db8:ffff::1/64 dev "$vh" nodad &&
			ini ip addr add "$INET_PEER_ADDR/24" dev "$vi" &&
			ini ip -6 addr add 2001:db8:ffff::2/64 dev "$vi" nodad &&
			ini ip addr add 192.0.2.10/32 dev lo &&
			ini ip addr add 192.0.2.53/32 dev lo &&
			ini ip addr add 198.51.100.20/32 dev lo &&
			ini ip addr add 203.0.113.30/32 dev lo &&
			ini ip addr add 203.0.113.40/32 dev lo &&
			ini ip addr add 169.254.169.254/32 dev lo &&
			ini ip addr add 10.0.0.1/32 dev lo &&
			ini ip -6 addr add 2001:db8::10/128 dev lo nodad &&
			inh ip route add 192.0.2.0/24 via "$INET_PEER_ADDR" &&
			inh ip route add 203.0.113.0/24 via "$INET_PEER_ADDR" &&
			inh ip route add 169.254.169.254/32 via "$INET_PEER_ADDR" &&
			inh ip route add 10.0.0.1/32 via "$INET_PEER_ADDR" &&
			inh ip -6 route add 2001:db8::/32 via 2001:db8:ffff::2
	} >"$AC_TMP/inet.err" 2>&1 || {
		fail "the test internet: the veth pair, addresses and routes" "$(cat "$AC_TMP/inet.err")"
		exit 1
	}

	# The servers.
	INET_READY=()
	for line in "${INET_HTTP_SERVERS[@]}"; do
		addr=${line%% *}
		_inet_start "http-$addr" http "$addr" "$INET_LOG" --cert "$INET_DIR/server.pem" \
			--key "$INET_DIR/server-key.pem"
	done
	_inet_start udp udp 192.0.2.53 "$INET_LOG" 53 9999
	_inet_start tcp tcp 192.0.2.10 "$INET_LOG" 9000
	# The host loopback service, in the host namespace.
	INET_LOOP_PORT=$((20000 + RANDOM % 20000))
	inh setsid "$PY" -c '
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
open(sys.argv[3], "w").write("%d\n" % os.getpid())
while True:
    c, peer = s.accept()
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)
    os.write(fd, ("connection from %s to %s\n" % (peer[0], c.getsockname()[0])).encode())
    os.close(fd)
    try:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 17\r\n\r\nHOST-LOOP-REACHED")
    except OSError:
        pass
    c.close()
' "$INET_LOOP_PORT" "$INET_HOSTLOG" "$INET_DIR/ready.hostloop" </dev/null >>"$INET_DIR/servers.out" 2>&1 &
	bg_track $!
	INET_READY+=("$INET_DIR/ready.hostloop")
	for f in "${INET_READY[@]}"; do
		if ! wait_until 30 test -s "$f"; then
			fail "the test internet: server $(basename "$f") is up" "$(tail -20 "$INET_DIR/servers.out")"
			exit 1
		fi
	done

	# shellcheck disable=SC2034 # a result, read by the test files
	INET_LOOP_PID=$(cat "$INET_DIR/ready.hostloop")
	# agentcell runs in the host namespace from now on, verifying upstream TLS with the test CA.
	AC_WRAP=("$AC_REPO/tests/net/hostns.sh" "$INET_H" env "SSL_CERT_FILE=$INET_CA")
	n=$(printf '%s ' "${INET_HTTP_SERVERS[@]%% *}")
	pass "the test internet is up (host ns $INET_H, internet ns $INET_I; servers $n)"
}

# ac_inet_selftest: what the tests rely on, shown from the host namespace, and that the
# real host's namespace has none of it.
ac_inet_selftest() {
	local out
	out=$(inh ip route get 192.0.2.10 2>&1 | head -1)
	check_contains "inet: the host ns routes 192.0.2.10 through the veth ($out)" "$out" "dev $INET_VETH_H"
	out=$(inh ip route get 8.8.8.8 2>&1)
	check_match "inet: the host ns has no route to anything else (8.8.8.8: $out)" \
		'unreachable|No route|Network is unreachable' "$out"
	out=$(ip route get 192.0.2.10 2>&1)
	check_not_contains "inet: the real host ns does not route through the test veth" "$out" "$INET_VETH_H"
	out=$(ip -o link show 2>&1)
	check_not_contains "inet: no test veth in the real host ns" "$out" "acv"
	out=$(inh curl -sS --max-time 10 http://allowed.test/selftest 2>&1)
	check_contains "inet: http://allowed.test answers in the host ns (/etc/hosts)" "$out" '"server": "192.0.2.10"'
	out=$(inh curl -sS --max-time 10 --cacert "$INET_CA" https://api.secret.test/selftest 2>&1)
	check_contains "inet: https://api.secret.test answers with the test CA" "$out" '"tls": true'
	out=$(inh curl -sS --max-time 10 --cacert "$INET_CA" -g 'https://[2001:db8::10]/selftest' 2>&1)
	check_contains "inet: https://[2001:db8::10] answers" "$out" '"server": "2001:db8::10"'
	out=$(inh curl -sS --max-time 10 http://169.254.169.254/selftest 2>&1)
	check_contains "inet: the fake metadata server answers in the host ns" "$out" '"server": "169.254.169.254"'
	out=$(inh curl -sS --max-time 10 "http://127.0.0.1:$INET_LOOP_PORT/" 2>&1)
	check_contains "inet: the host loopback service answers" "$out" HOST-LOOP-REACHED
	out=$(inh "$PY" -c 'import socket; s = socket.create_connection(("192.0.2.10", 9000), 5); print(s.recv(100).decode())' 2>&1)
	check_contains "inet: raw TCP 192.0.2.10:9000 answers in the host ns" "$out" RAW-TCP-REACHED
	inh "$PY" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"selftest", ("192.0.2.53", 53))'
	check "inet: a UDP datagram to 192.0.2.53:53 is logged" wait_until 10 grep -q '"kind": "udp"' "$INET_LOG"
	out=$(curl -sS --max-time 3 http://192.0.2.10/selftest-realhost 2>&1)
	check_not_contains "inet: the servers are unreachable from the real host ns" "$out" '"server"'
	out=$(getent hosts allowed.test)
	check_eq "inet: the real host's /etc/hosts does not know allowed.test" "" "$out"
	# The log starts empty for the tests proper.
	: >"$INET_LOG"
	: >"$INET_HOSTLOG"
}

# inet_log_count ERE: how many lines of the internet's log match.
inet_log_count() { grep -cE -- "$1" "$INET_LOG" || true; }

# ac_inet_down check|quiet: removes the sandboxes (from the host namespace), stops the servers,
# deletes the namespaces and /etc/netns/NAME and checks nothing is left. quiet: no checks
# (the exit trap's safety net).
ac_inet_down() {
	local quiet=$1 n p left
	[ "$INET_UP" = 1 ] || return 0
	INET_UP=0
	for n in $(ac_names); do ac remove "$n" >/dev/null 2>&1; done
	# shellcheck disable=SC2034 # read by lib.sh's ac()
	AC_WRAP=()
	for n in "$INET_H" "$INET_I"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	for n in "$INET_H" "$INET_I"; do
		for _ in $(seq 1 100); do
			[ -z "$(ip netns pids "$n" 2>/dev/null)" ] && break
			sleep 0.05
		done
		ip netns del "$n" 2>/dev/null
	done
	rm -rf "/etc/netns/$INET_H"
	rmdir /etc/netns 2>/dev/null
	[ "$quiet" = quiet ] && return 0
	left=$(ip netns list 2>/dev/null | grep -E "acn-[hi]-$INET_ID" || true)
	check_eq "inet down: both namespaces are gone" "" "$left"
	left=$(ip -o link show 2>/dev/null | grep -E "acv[hi]$INET_ID" || true)
	check_eq "inet down: no test veth in the real host ns" "" "$left"
	check_eq "inet down: the real host ns has the same links and routes as before" \
		"$INET_REAL_BEFORE" "$(_inet_real_snapshot)"
	check "inet down: /etc/netns/$INET_H is gone" test ! -e "/etc/netns/$INET_H"
}
