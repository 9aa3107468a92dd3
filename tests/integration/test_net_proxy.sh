#!/bin/bash
# The network proxy (src/net/proxy.c, spawn.c) without sandboxes: tests/tools/netproxy_drive
# makes the egress listener inside a network namespace of this test (the sandbox's stand-in:
# only lo, nothing else reachable from it) and starts the proxy with ac_net_proxy_spawn;
# clients run in that namespace, servers on the host's 127.0.0.1. The proxy resolves names
# with getaddrinfo, so a private /etc/hosts (bind-mounted in a mount namespace of the
# driver) gives it the test's names. Covers: policy refusals and their 403, explicit IP
# allow, CONNECT tunnels, bad requests, secret injection and placeholder refusals (plain
# HTTP and intercepted TLS with keep-alive, bodies by Content-Length and chunked), upstream
# certificate verification, published ports, a port in use, the audit lines, the pid file's
# identity, the life pipe and ac_net_proxy_stop.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

DRIVE=${NETPROXY_DRIVE:-$(dirname "$AGENTCELL")/tools/netproxy_drive}
if [ ! -x "$DRIVE" ]; then
	echo "Bail out! no $DRIVE (make builds it)" >&2
	exit 1
fi
for t in ip curl openssl unshare; do
	command -v "$t" >/dev/null || { skip "network proxy" "no $t"; exit 0; }
done
NS=acnp-$(uniq_id)
if ! ip netns add "$NS" 2>/dev/null; then
	skip "network proxy" "ip netns is not available"
	exit 0
fi
at_exit "ip netns del $NS"
ip netns exec "$NS" ip link set lo up
IN() { ip netns exec "$NS" "$@"; }
# Sanitizer builds: the proxy's stdio is /dev/null, its reports go to files.
export ASAN_OPTIONS="log_path=$AC_TMP/san:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="log_path=$AC_TMP/san:print_stacktrace=1:${UBSAN_OPTIONS:-}"

# ---------------------------------------------------------------- servers and names
cat >"$AC_TMP/echo.py" <<'EOF'
import http.server, json, ssl, sys
LOG = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
        rec = {"tag": sys.argv[5], "method": self.command, "path": self.path,
               "headers": [[k, v] for k, v in self.headers.items()],
               "body": body.decode("latin-1")}
        with open(LOG, "a") as f:
            f.write(json.dumps(rec) + "\n")
        out = json.dumps(rec).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = handle_one
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
if sys.argv[4] != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4] + ".pem", sys.argv[4] + ".key")
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
with open(sys.argv[2], "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
EOF
# start_echo PORTFILE LOG CERT|- TAG [prefix command...]: PORT := its port.
start_echo() {
	local pf=$1 log=$2 cert=$3 tag=$4
	shift 4
	: >"$log"
	"$@" setsid "$PY" "$AC_TMP/echo.py" x "$pf" "$log" "$cert" "$tag" </dev/null >/dev/null 2>&1 &
	bg_track $!
	wait_until 10 test -s "$pf" || { fail "echo server $tag starts"; exit 1; }
	PORT=$(cat "$pf")
}

# A test CA for the upstream server's certificate, and the interception CA (EC P-256, as
# ac_tls_ca_create makes it) for the proxy's leaves.
C=$AC_TMP/certs
mkdir -p "$C"
(
	cd "$C" || exit 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout up-ca.key -out up-ca.pem -days 2 \
		-subj /CN=upstream-test-ca -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign
	openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=api.secret.test
	printf 'subjectAltName=DNS:api.secret.test,DNS:echo.test\n' >srv.ext
	openssl x509 -req -in srv.csr -CA up-ca.pem -CAkey up-ca.key -CAcreateserial -days 2 \
		-extfile srv.ext -out srv.pem
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout icept.key \
		-out icept.pem -days 2 -subj /CN=agentcell-test-interception \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
) >"$AC_TMP/openssl.log" 2>&1 || { fail "test certificates" "$(cat "$AC_TMP/openssl.log")"; exit 1; }

LOG=$AC_TMP/echo.log
start_echo "$AC_TMP/p1" "$LOG" - host
P1=$PORT
start_echo "$AC_TMP/p2" "$LOG" "$C/srv" tls
P2=$PORT
# The sandbox's own server: inside the namespace, for the published port.
start_echo "$AC_TMP/p3" "$AC_TMP/inside.log" - inside ip netns exec "$NS"
P3=$PORT

cat >"$AC_TMP/hosts" <<'EOF'
127.0.0.1 localhost echo.test api.secret.test other.test bad.secret.test
127.0.0.2 loop.test
127.0.0.1 blocked.test
EOF
PH=agentcell-placeholder-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SV=sv-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-value

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(free_port)
HP2=$(free_port)

orders() { # orders FILE POLICY-JSON [extra members]
	local f=$1 pol=$2 extra=${3:-}
	cat >"$f" <<EOF
{"sandbox": "sb-$NS", "home": "$AGENTCELL_HOME", "policy": $pol, "proxy": true,
 "secrets": [{"key": "API_KEY", "host": "api.secret.test", "header": "Authorization",
              "prefix": "Bearer ", "placeholder": "$PH", "value": "$SV"},
             {"key": "BAD_KEY", "host": "bad.secret.test", "header": "X-Api-Key",
              "prefix": "", "placeholder": "${PH}x", "value": "${SV}x"}]
 $extra}
EOF
}

# drive NAME ORDERS [driver options]: starts a driver (private /etc/hosts, the listener in
# $NS) whose stdin is a FIFO held open on fd DFD (closing it ends the driver); sets DPORT,
# DPID (the proxy) and DRV (the driver's pid). The driver's output: $AC_TMP/NAME.out / .err.
drive() {
	local name=$1 ord=$2
	shift 2
	mkfifo "$AC_TMP/$name.fifo"
	SSL_CERT_FILE=$C/up-ca.pem setsid unshare -m --propagation private sh -c \
		'mount --bind "$0" /etc/hosts && exec "$@"' "$AC_TMP/hosts" \
		"$DRIVE" --netns "/run/netns/$NS" "$@" "$ord" \
		<"$AC_TMP/$name.fifo" >"$AC_TMP/$name.out" 2>"$AC_TMP/$name.err" &
	DRV=$!
	bg_track "$DRV"
	exec {DFD}>"$AC_TMP/$name.fifo"
	wait_until 15 grep -q . "$AC_TMP/$name.out" "$AC_TMP/$name.err"
	read -r _ DPORT _ DPID <"$AC_TMP/$name.out" || true
}
PROXY() { echo "http://127.0.0.1:$DPORT"; }
# gone PID: no such process, or a zombie its new parent has not reaped yet.
gone() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null)
	[ -z "$s" ] || [[ $s == Z* ]]
}

# ---------------------------------------------------------------- 1: the default policy
orders "$AC_TMP/o1.json" '{"block_hosts": ["blocked.test"]}'
drive d1 "$AC_TMP/o1.json" --pidfile "$AC_TMP/d1.pid"
D1PID=$DPID D1PORT=$DPORT D1FD=$DFD
check_match "the driver starts the proxy" '^port [0-9]+ pid [0-9]+$' "$(cat "$AC_TMP/d1.out" "$AC_TMP/d1.err")"
check_eq "the proxy names itself agentcell-net" agentcell-net "$(cat "/proc/$DPID/comm" 2>&1)"
check_eq "its command line says agentcell-net" agentcell-net "$(tr '\0' ' ' <"/proc/$DPID/cmdline" | sed 's/ *$//')"
check_eq "the pid file names the proxy" "$DPID" "$(jq -r .pid "$AC_TMP/d1.pid" 2>&1)"
check_eq "... with its start time" "$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$DPID/stat")" "$(jq -r .starttime "$AC_TMP/d1.pid" 2>&1)"
check_ne "the proxy is not the driver's child (it outlives its starter)" "$DRV" "$(awk '{sub(/.*\) /, ""); print $2}' "/proc/$DPID/stat")"
check_eq "the driver has no zombie child" "" "$(ps -o stat= --ppid "$DRV" | tr -d ' ' | grep '^Z' || true)"
fds=$(ls -l "/proc/$DPID/fd" 2>&1)
check_not_contains "the proxy keeps no memfd of its orders" "$fds" "memfd:"
check_eq "the proxy holds no pipe but its life pipe" 1 "$(grep -c 'pipe:' <<<"$fds")"
check_eq "its stdin is /dev/null" /dev/null "$(readlink "/proc/$DPID/fd/0")"
# Confined once set up (src/net/confine.c): a hostile sandbox talks to this process.
st=$(cat "/proc/$DPID/status")
check_match "the proxy runs as uid 65534" $'Uid:\t65534\t65534\t65534\t65534' "$st"
check_match "... gid 65534" $'Gid:\t65534\t65534\t65534\t65534' "$st"
check_match "... with no effective capability" $'CapEff:\t0000000000000000' "$st"
check_match "... and no permitted one" $'CapPrm:\t0000000000000000' "$st"
check_match "... no_new_privs" $'NoNewPrivs:\t1' "$st"
check_match "... under a seccomp filter" $'Seccomp:\t2' "$st"
check_eq "... not dumpable (no ptrace by another uid-65534 process)" "" "$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "/proc/$DPID/environ" 2>/dev/null)"

out=$(IN curl -sS -m 20 "http://127.0.0.1:$P1/" 2>&1)
check_contains "the sandbox's namespace cannot reach the host's server directly" "$out" "Failed to connect"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://echo.test:$P1/x" 2>&1)
check_contains "a name resolving to loopback is refused: 403" "$out" "HTTP/1.1 403 Forbidden"
check_match "... with X-Agentcell-Refused: loopback address" $'X-Agentcell-Refused: loopback address\r' "$out"
check_contains "... and a body naming host and reason" "$out" "agentcell: echo.test:$P1 refused: loopback address"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://127.0.0.1:$P1/" 2>&1)
check_contains "127.0.0.1 itself is refused (python's http.server on loopback)" "$out" "refused: loopback address"
out=$(IN curl -sS -m 20 -i -p -x "$(PROXY)" "http://127.0.0.1:$P1/" 2>&1)
check_contains "CONNECT to loopback is refused: 403" "$out" "HTTP/1.1 403 Forbidden"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://blocked.test:$P1/" 2>&1)
check_match "block_hosts refuses by name" 'X-Agentcell-Refused: blocked by block_hosts' "$out"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://nonexistent.invalid/" 2>&1)
check_contains "an unknown name: 502" "$out" "HTTP/1.1 502 Bad Gateway"
check_contains "... cannot resolve" "$out" "cannot resolve"
check_eq "nothing reached the server" 0 "$(grep -c . "$LOG")"
a=$(grep -F "\"sb-$NS\"" "$AGENTCELL_HOME/audit.jsonl" 2>/dev/null)
check_eq "each connection through the proxy is one audit line" 5 "$(grep -c . <<<"$a")"
check_eq "the refusals are audited with host, port, method, verdict and reason" \
	"echo.test $P1 GET refused loopback address" \
	"$(head -1 <<<"$a" | jq -r '.details | "\(.host) \(.port) \(.method) \(.verdict) \(.reason)"')"
check_eq "audit lines are event net with a timestamp" "net true" \
	"$(head -1 <<<"$a" | jq -r '"\(.event) \(.timestamp | test("^[0-9-]+T[0-9:]+\\.[0-9]{3}Z$"))"')"

# ac_net_proxy_stop: identity first.
sleep 300 &
SLP=$!
bg_track $SLP
printf '{"pid":%d,"starttime":1}\n' "$SLP" >"$AC_TMP/fake.pid"
"$DRIVE" --stop "$AC_TMP/fake.pid"
check "stop spares a process whose start time does not match" kill -0 "$SLP"
check_fail "... and removes the stale record" test -e "$AC_TMP/fake.pid"
"$DRIVE" --stop "$AC_TMP/d1.pid"
check "stop ends the proxy of the pid file" gone "$D1PID"
check_fail "... and removes the pid file" test -e "$AC_TMP/d1.pid"
check_fail "... and its listener is closed" IN curl -sS -m 5 -x "http://127.0.0.1:$D1PORT" http://echo.test/
exec {D1FD}>&-

# ---------------------------------------------------------------- 2: 127.0.0.1 allowed by IP
orders "$AC_TMP/o2.json" '{"allow_hosts": ["127.0.0.1"]}' \
	", \"ca\": {\"cert\": \"$C/icept.pem\", \"key\": \"$C/icept.key\"}, \"publish\": [{\"address\": \"127.0.0.1\", \"host_port\": $HP, \"port\": $P3}, {\"address\": \"127.0.0.1\", \"host_port\": $HP2, \"port\": 1}]"
drive d2 "$AC_TMP/o2.json"
D2PID=$DPID D2FD=$DFD
check_match "a second proxy starts (interception CA, published ports)" '^port [0-9]+ pid [0-9]+$' "$(cat "$AC_TMP/d2.out" "$AC_TMP/d2.err")"
: >"$LOG"
out=$(IN curl -sS -m 20 -x "$(PROXY)" "http://echo.test:$P1/plain?q=1" 2>&1)
check_eq "explicitly allowed by IP: plain HTTP reaches the server" "GET /plain?q=1" "$(jq -r '"\(.method) \(.path)"' <<<"$out" 2>&1)"
check_eq "... Host from the URL" "echo.test:$P1" "$(jq -r '.headers[] | select(.[0] == "Host") | .[1]' <<<"$out" 2>&1)"
check_eq "... Connection: close upstream" close "$(jq -r '.headers[] | select(.[0] == "Connection") | .[1]' <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 -x "$(PROXY)" -H "Proxy-Authorization: Basic eDp5" -H "Proxy-Connection: keep-alive" "http://echo.test:$P1/" 2>&1)
check_eq "... Proxy-* headers are not forwarded" "" "$(jq -r '.headers[] | select(.[0] | test("^Proxy-")) | .[0]' <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 -x "$(PROXY)" -d "hello=body" "http://echo.test:$P1/post" 2>&1)
check_eq "... a POST body arrives" "hello=body" "$(jq -r .body <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 -p -x "$(PROXY)" "http://echo.test:$P1/tunnel" 2>&1)
check_eq "a CONNECT tunnel reaches the server" "/tunnel" "$(jq -r .path <<<"$out" 2>&1)"
check_eq "... unchanged (no Connection: close added)" "" "$(jq -r '.headers[] | select(.[0] == "Connection") | .[1]' <<<"$out" 2>&1)"
tl=$(grep -F "\"sb-$NS\"" "$AGENTCELL_HOME/audit.jsonl" | jq -c 'select(.details.method == "CONNECT")' | tail -1)
check_eq "the tunnel is audited allowed with its address" "allowed 127.0.0.1:$P1" "$(jq -r '.details | "\(.verdict) \(.address)"' <<<"$tl")"
check_gt "... bytes out counted" "$(jq -r .details.bytes_out <<<"$tl")" 50
check_gt "... bytes in counted" "$(jq -r .details.bytes_in <<<"$tl")" 100
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://loop.test:$P1/" 2>&1)
check_contains "an allowed IP does not allow another loopback address" "$out" "refused: loopback address"
# A client that half-closes its tunnel (shutdown SHUT_WR after its request) still gets the
# answer: the end of its data is passed on, not taken for the end of the connection.
HC=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PY" -c 'import socket,sys
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4)
while True:
    c,_=l.accept(); n=0
    while True:
        d=c.recv(65536)
        if not d: break
        n+=len(d)
    c.sendall(b"got %d bytes" % n); c.close()' "$HC" {DFD}>&- &
bg_track $! # (without the driver's life pipe: closing it must end the proxy)
wait_until 10 "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$HC"
out=$(IN "$PY" -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
s.sendall(b"CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2].encode())
s.settimeout(20)
h=b""
while b"\r\n\r\n" not in h: h+=s.recv(1)
s.sendall(b"x"*300000); s.shutdown(socket.SHUT_WR)
out=b""
while True:
    d=s.recv(65536)
    if not d: break
    out+=d
print(h.split(b"\r\n")[0].decode(), out.decode())' "$DPORT" "$HC" 2>&1)
check_eq "a half-closed CONNECT tunnel still gets the answer" "HTTP/1.1 200 Connection established got 300000 bytes" "$out"

raw() { # raw DATA: sends DATA to the proxy from the sandbox's namespace, prints the answer
	IN "$PY" -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
s.sendall(sys.argv[2].encode("latin-1"))
s.settimeout(20)
out=b""
while True:
    d=s.recv(65536)
    if not d: break
    out+=d
sys.stdout.write(out.decode("latin-1"))' "$DPORT" "$1" 2>&1
}
: >"$LOG"
check_contains "origin-form to the proxy: 400" "$(raw $'GET / HTTP/1.1\r\nHost: x\r\n\r\n')" "HTTP/1.1 400 Bad Request"
check_contains "https:// absolute-form: 400" "$(raw $'GET https://echo.test/ HTTP/1.1\r\nHost: x\r\n\r\n')" "use CONNECT for https"
check_contains "CONNECT without a port: 400" "$(raw $'CONNECT echo.test HTTP/1.1\r\n\r\n')" "CONNECT needs host:port"
check_contains "a bare LF: 400" "$(raw $'GET http://echo.test/ HTTP/1.1\nHost: x\r\n\r\n')" "HTTP/1.1 400"
check_contains "Content-Length with Transfer-Encoding: 400" \
	"$(raw "GET http://echo.test:$P1/ HTTP/1.1"$'\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')" "HTTP/1.1 400"
big=$(head -c 70000 /dev/zero | tr '\0' a)
check_contains "a request head over 64 KiB: 431" "$(raw "GET http://echo.test/ HTTP/1.1"$'\r\nX-Big: '"$big"$'\r\n\r\n')" "HTTP/1.1 431"
check_eq "none of them reached the server" 0 "$(grep -c . "$LOG")"

# Secrets over plain HTTP: never the value (it would travel in clear).
: >"$LOG"
out=$(IN curl -sS -m 20 -x "$(PROXY)" -H "Authorization: Bearer $PH" -H "X-Echo: a-$PH-b" "http://api.secret.test:$P1/s" 2>&1)
check_eq "plain HTTP to the bound host: the header goes as written (placeholder, no value)" "Bearer $PH" \
	"$(jq -r '[.headers[] | select(.[0] == "Authorization") | .[1]] | join("|")' <<<"$out" 2>&1)"
check_eq "... and the placeholder elsewhere in the head stays one" "a-$PH-b" "$(jq -r '.headers[] | select(.[0] == "X-Echo") | .[1]' <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 -x "$(PROXY)" "http://api.secret.test:$P1/none" 2>&1)
check_eq "... nothing injected when the client sends no header" "" "$(jq -r '.headers[] | select(.[0] == "Authorization") | .[1]' <<<"$out" 2>&1)"
check_eq "... the value reached the server in no plain request" 0 "$(grep -c -F -- "$SV" "$LOG")"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" -H "Authorization: Bearer $PH" "http://other.test:$P1/leak" 2>&1)
check_contains "the placeholder sent to another host: 403" "$out" "HTTP/1.1 403 Forbidden"
check_contains "... naming the secret" "$out" "placeholder of secret API_KEY sent to a host it is not bound to"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" "http://other.test:$P1/leak?k=$PH" 2>&1)
check_contains "... also in the request line" "$out" "placeholder of secret API_KEY"
out=$(IN curl -sS -m 20 -i -p -x "$(PROXY)" --proxy-header "Proxy-Authorization: Bearer $PH" "http://other.test:$P1/leak" 2>&1)
check_contains "... also in CONNECT's Proxy-Authorization" "$out" "placeholder of secret API_KEY"
out=$(IN curl -sS -m 20 -i -x "$(PROXY)" -H "X-K: ${PH}x" "http://api.secret.test:$P1/leak" 2>&1)
check_contains "another secret's placeholder to a bound host: 403" "$out" "placeholder of secret BAD_KEY"
check_eq "no refused request reached the server" 0 "$(grep -c '/leak' "$LOG")"

# Intercepted TLS to the bound host.
: >"$LOG"
out=$(IN curl -sS -m 20 -v --cacert "$C/icept.pem" -x "$(PROXY)" -H "Authorization: Bearer $PH" \
	"https://api.secret.test:$P2/one" "https://api.secret.test:$P2/two" 2>&1)
check_eq "intercepted HTTPS: both requests arrive with the secret" "Bearer $SV|Bearer $SV" \
	"$(jq -r 'select(.tag == "tls") | .headers[] | select(.[0] == "Authorization") | .[1]' "$LOG" | paste -sd'|')"
check_contains "... over one connection (keep-alive)" "$out" "Re-using existing connection"
check_contains "... the client saw a leaf of the interception CA" "$out" "issuer: CN=agentcell-test-interception"
check_contains "... ALPN http/1.1" "$out" "ALPN: server accepted http/1.1"
out=$(IN curl -sS -m 20 --cacert "$C/icept.pem" -x "$(PROXY)" -H "X-Echo: a-$PH-b" "https://api.secret.test:$P2/elsewhere" 2>&1)
check_eq "... and the placeholder elsewhere in the head becomes the value" "a-$SV-b" \
	"$(jq -r 'select(.path == "/elsewhere") | .headers[] | select(.[0] == "X-Echo") | .[1]' "$LOG" 2>&1)"
printf 'chunk-%.0s' $(seq 1 3000) >"$AC_TMP/body"
out=$(IN curl -sS -m 20 --cacert "$C/icept.pem" -x "$(PROXY)" -H "Transfer-Encoding: chunked" \
	--data-binary @"$AC_TMP/body" "https://api.secret.test:$P2/chunked" 2>&1)
check_eq "... a chunked request body arrives whole" "$(cat "$AC_TMP/body")" "$(jq -r .body <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 --cacert "$C/icept.pem" -x "$(PROXY)" -H "Expect: 100-continue" \
	--data-binary @"$AC_TMP/body" "https://api.secret.test:$P2/expect" 2>&1)
check_eq "... a body behind Expect: 100-continue arrives" 18000 "$(jq -r '.body | length' <<<"$out" 2>&1)"
out=$(IN curl -sS -m 20 -I --cacert "$C/icept.pem" -x "$(PROXY)" "https://api.secret.test:$P2/head" "https://api.secret.test:$P2/after-head" 2>&1)
check_eq "... HEAD then another request on the connection" 2 "$(grep -c 'HTTP/1.1 200 OK' <<<"$out")"
out=$(IN curl -sS -m 20 -i --cacert "$C/icept.pem" -x "$(PROXY)" -H "X-K: ${PH}x" "https://api.secret.test:$P2/leak" 2>&1)
check_contains "... a foreign placeholder inside the tunnel: 403" "$out" "placeholder of secret BAD_KEY"
il=$(grep -F "\"sb-$NS\"" "$AGENTCELL_HOME/audit.jsonl" | jq -c 'select(.details.intercepted == true)' | head -1)
check_eq "the intercepted connection is audited with the injected key" "CONNECT allowed [\"API_KEY\"]" \
	"$(jq -r '.details | "\(.method) \(.verdict) \(.injected | tostring)"' <<<"$il")"
out=$(IN curl -sS -m 20 -v --cacert "$C/icept.pem" -x "$(PROXY)" "https://bad.secret.test:$P2/x" 2>&1)
check_not_contains "an upstream certificate for another name: no answer" "$out" "HTTP/1.1 200 OK"
bl=$(grep -F "\"sb-$NS\"" "$AGENTCELL_HOME/audit.jsonl" | jq -c 'select(.details.host == "bad.secret.test")' | tail -1)
check_match "... audited as upstream TLS" '^refused upstream TLS: ' "$(jq -r '.details | "\(.verdict) \(.reason)"' <<<"$bl")"
check_eq "... nothing reached the server" 0 "$(grep -c '"path": "/x"' "$LOG")"
out=$(IN curl -sS -m 20 -p -x "$(PROXY)" --cacert "$C/up-ca.pem" "https://echo.test:$P2/raw" 2>&1)
check_eq "HTTPS to an unbound host is a raw tunnel (the server's own certificate)" /raw "$(jq -r .path <<<"$out" 2>&1)"
check_eq "the audit log never holds a secret value" 0 "$(grep -c -- "$SV" "$AGENTCELL_HOME/audit.jsonl")"

# Published ports.
out=$(curl -sS -m 20 "http://127.0.0.1:$HP/published" 2>&1)
check_eq "a published port reaches the server inside the namespace" "inside /published" "$(jq -r '"\(.tag) \(.path)"' <<<"$out" 2>&1)"
check_fail "... a server the host could not reach itself" curl -sS -m 5 "http://127.0.0.1:$P3/"
acx_rc=0
curl -sS -m 20 "http://127.0.0.1:$HP2/" >/dev/null 2>&1 || acx_rc=$?
check_eq "a published port with nothing listening inside: the client is closed (curl 52)" 52 "$acx_rc"
pl=$(grep -F "\"sb-$NS\"" "$AGENTCELL_HOME/audit.jsonl" | jq -c 'select(.details.method == "publish")')
check_eq "published connections are audited" "allowed 127.0.0.1:$P3|refused 127.0.0.1:1" \
	"$(jq -r '.details | "\(.verdict) \(.address)"' <<<"$pl" | paste -sd'|')"
check_eq "... the proxy never stayed in the sandbox's namespace" "$(readlink /proc/self/ns/net)" "$(readlink "/proc/$D2PID/ns/net")"

# A host port in use: one line, the kind EXISTS (4), no proxy left.
orders "$AC_TMP/o3.json" '{}' ", \"publish\": [{\"address\": \"127.0.0.1\", \"host_port\": $P1, \"port\": 80}]"
drive d3 "$AC_TMP/o3.json"
D3FD=$DFD
check_eq "a published port in use: one error line" "error 4: port 127.0.0.1:$P1 is in use" "$(cat "$AC_TMP/d3.err")"
check_eq "... and no proxy started" "" "$(cat "$AC_TMP/d3.out")"
exec {D3FD}>&-

# The life pipe.
exec {D2FD}>&-
check "closing the life pipe ends the proxy" wait_until 10 gone "$D2PID"
check_fail "... its published port is closed" curl -sS -m 5 "http://127.0.0.1:$HP/"
san=$(cat "$AC_TMP"/san* 2>/dev/null)
check_eq "no sanitizer report from the proxies" "" "$(_ac_clip "$san")"
