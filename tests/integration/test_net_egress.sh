#!/bin/bash
# Egress of sandboxes with --network, against the tests' private internet
# (tests/net/internet.sh): agentcell runs in a "host" network namespace whose only routes
# lead to test servers in another namespace. Allowed hosts are reached through the proxy
# (curl, python urllib, node with an explicit CONNECT), refused ones get a 403; every way
# around the proxy fails from inside; the servers' logs show that nothing but the allowed
# requests arrived; net-log shows both kinds with reasons and byte counts.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$AC_REPO/tests/net/internet.sh"
ac_setup
ac_inet_up
ac_inet_selftest

ID=$(uniq_id)
WS=$AC_TMP/ws
mkdir -p "$WS"
cp "$INET_CA" "$WS/ca.pem"
cp "$AC_REPO/tests/net/bypass_probe.py" "$WS/probe.py"
chmod -R a+rX "$WS"
cd "$WS" || exit 1

# ------------------------------------------------------------------ no --network
acx run -- sh -c 'env; echo ---; awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }" /proc/net/dev'
check_rc "no --network: a sandbox runs" 0
check_eq "no --network: only lo" "lo" "${OUT##*---$'\n'}"
check_not_contains "no --network: no proxy variables" "${OUT%%---*}" "_PROXY="
check_not_contains "no --network: no proxy variables (lower case)" "${OUT%%---*}" "_proxy="
acx run -- curl -sS --max-time 5 -x http://127.0.0.1:3128 http://allowed.test/bad-nonet
check_ne "no --network: nothing listens on 127.0.0.1:3128" 0 "$RC"

# ------------------------------------------------------------------ a persistent sandbox
E=egress-$ID
check_ac "create $E --network --block-host blocked.test --block-host '*.wild.test'" \
	create "$E" --network --block-host blocked.test --block-host '*.wild.test' --mount-cwd
check_ac "start $E" start "$E"
X() { acx exec "$E" -w /workspace -- "$@"; }

X sh -c 'env | sort'
check_contains "env: HTTP_PROXY" "$OUT" "HTTP_PROXY=http://127.0.0.1:3128"
check_contains "env: HTTPS_PROXY" "$OUT" "HTTPS_PROXY=http://127.0.0.1:3128"
check_contains "env: http_proxy" "$OUT" "http_proxy=http://127.0.0.1:3128"
check_contains "env: https_proxy" "$OUT" "https_proxy=http://127.0.0.1:3128"
check_contains "env: NO_PROXY" "$OUT" "NO_PROXY=localhost,127.0.0.1,::1"
check_contains "env: no_proxy" "$OUT" "no_proxy=localhost,127.0.0.1,::1"
X sh -c 'awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }" /proc/net/dev'
check_eq "--network: still only lo inside" "lo" "$OUT"
X "$PY" -c 'import socket; print(socket.if_nameindex())'
check_not_contains "--network: no interface but lo ($OUT)" "$OUT" "veth"

# allowed: curl, http and https
X curl -sS --max-time 20 http://allowed.test/ok-curl-http
check_contains "curl http://allowed.test through the proxy" "$OUT" '"path": "/ok-curl-http"'
check_contains "  answered by 192.0.2.10, the peer is the host ns ($INET_HOST_ADDR)" "$OUT" "\"peer\": \"$INET_HOST_ADDR\""
X curl -sS --max-time 20 --cacert ca.pem https://allowed.test/ok-curl-https
check_contains "curl https://allowed.test through a CONNECT tunnel (end-to-end TLS, test CA)" "$OUT" '"tls": true'
X curl -sS --max-time 20 --cacert ca.pem https://v6.test/ok-curl-v6
check_contains "curl https://v6.test: the proxy connects over IPv6" "$OUT" '"server": "2001:db8::10"'
X curl -sS --max-time 20 http://wild.test/ok-wild-base
check_contains "wildcard block '*.wild.test' does not cover wild.test itself" "$OUT" '"path": "/ok-wild-base"'

# python urllib (honours the proxy variables)
X "$PY" -c '
import ssl, urllib.request
print(urllib.request.urlopen("http://allowed.test/ok-py-http", timeout=20).read().decode())
ctx = ssl.create_default_context(cafile="ca.pem")
print(urllib.request.urlopen("https://allowed.test/ok-py-https", timeout=20, context=ctx).read().decode())'
check_contains "python urllib: http://allowed.test" "$OUT" '"path": "/ok-py-http"'
check_contains "python urllib: https://allowed.test" "$OUT" '"path": "/ok-py-https"'

# node: CONNECT through $HTTPS_PROXY explicitly; a direct connection fails
cat >"$WS/node_probe.js" <<'EOF'
const http = require('http'), tls = require('tls'), fs = require('fs'), net = require('net');
const proxy = new URL(process.env.HTTPS_PROXY);
const ca = fs.readFileSync('ca.pem');
function viaProxy(host, path) {
	return new Promise((resolve) => {
		const r = http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT',
					path: host + ':443'});
		r.on('connect', (resp, sock) => {
			if (resp.statusCode !== 200) {
				resolve('CONNECT ' + resp.statusCode + ' ' + (resp.headers['x-agentcell-refused'] || ''));
				sock.destroy();
				return;
			}
			const t = tls.connect({socket: sock, servername: host, ca}, () => {
				t.write('GET ' + path + ' HTTP/1.1\r\nHost: ' + host + '\r\nConnection: close\r\n\r\n');
			});
			let d = '';
			t.on('data', (c) => (d += c));
			t.on('end', () => resolve(d));
			t.on('error', (e) => resolve('tls error ' + e.code));
		});
		r.on('error', (e) => resolve('proxy error ' + e.code));
		r.end();
	});
}
function direct(host, port) {
	return new Promise((resolve) => {
		const s = net.connect({host, port});
		s.setTimeout(5000, () => { resolve('direct ' + host + ' TIMEOUT'); s.destroy(); });
		s.on('connect', () => { resolve('direct ' + host + ' CONNECTED'); s.destroy(); });
		s.on('error', (e) => resolve('direct ' + host + ' ' + e.code));
	});
}
(async () => {
	console.log('node-allowed: ' + (await viaProxy('allowed.test', '/ok-node')));
	console.log('node-blocked: ' + (await viaProxy('blocked.test', '/bad-node')));
	console.log(await direct('192.0.2.10', 443));
	console.log(await direct('allowed.test', 443));
})();
EOF
if command -v node >/dev/null; then
	X node node_probe.js
	check_contains "node: https://allowed.test through an explicit CONNECT" "$OUT" '"path": "/ok-node"'
	check_contains "node: CONNECT blocked.test:443 -> 403" "$OUT" "node-blocked: CONNECT 403"
	check_match "node: a direct connection to 192.0.2.10 fails" 'direct 192\.0\.2\.10 E[A-Z]+' "$OUT"
	check_match "node: a direct connection to allowed.test fails" 'direct allowed\.test E[A-Z]+' "$OUT"
	check_not_contains "node: nothing connected directly" "$OUT" CONNECTED
else
	skip "node through the proxy" "node is not installed"
fi

# refused by name
X curl -sS --max-time 20 -i http://blocked.test/bad-blocked
check_match "blocked.test -> 403" '^HTTP/1\.[01] 403' "$OUT"
check_contains "  with X-Agentcell-Refused" "$OUT" "X-Agentcell-Refused"
X curl -sS --max-time 20 --cacert ca.pem https://blocked.test/bad-blocked-tls
check_contains "https://blocked.test: CONNECT refused with 403" "$ERR" "403"
X curl -sS --max-time 20 -i http://a.wild.test/bad-wild-a
check_match "wildcard '*.wild.test' blocks a.wild.test" '^HTTP/1\.[01] 403' "$OUT"
X curl -sS --max-time 20 -i http://b.c.wild.test/bad-wild-bc
check_match "wildcard '*.wild.test' blocks b.c.wild.test (any depth)" '^HTTP/1\.[01] 403' "$OUT"

# refused by address (resolved by the proxy itself), whatever the policy's names
refused_http() { # DESC URL [REASON-ERE]
	X curl -sS --max-time 20 -i --noproxy '' -x http://127.0.0.1:3128 "$2"
	check_match "$1 -> 403" '^HTTP/1\.[01] 403' "$OUT"
	check_match "$1: X-Agentcell-Refused names why" "X-Agentcell-Refused: .*${3:-.}" "$OUT"
}
refused_connect() { # DESC HOST:PORT
	X curl -sS --max-time 20 -p --noproxy '' -x http://127.0.0.1:3128 "http://$2/bad-connect"
	check_contains "$1 (CONNECT) -> 403" "$ERR" "403"
}
refused_http "the host's loopback service 127.0.0.1:$INET_LOOP_PORT" "http://127.0.0.1:$INET_LOOP_PORT/bad-loop" loopback
refused_connect "the host's loopback service" "127.0.0.1:$INET_LOOP_PORT"
refused_http "localhost:$INET_LOOP_PORT" "http://localhost:$INET_LOOP_PORT/bad-localhost" loopback
refused_http "the host ns's own address $INET_HOST_ADDR" "http://$INET_HOST_ADDR:$INET_LOOP_PORT/bad-self" "own"
refused_connect "the host ns's own address" "$INET_HOST_ADDR:$INET_LOOP_PORT"
refused_http "self.test (a name for the host's own address)" "http://self.test:$INET_LOOP_PORT/bad-self-name" "own"
refused_http "the metadata service 169.254.169.254" "http://169.254.169.254/bad-meta" "link-local"
refused_connect "the metadata service" "169.254.169.254:443"
refused_http "metadata.test (a name for 169.254.169.254)" "http://metadata.test/bad-meta-name" "link-local"
refused_http "rebind.test (-> 127.0.0.1)" "http://rebind.test:$INET_LOOP_PORT/bad-rebind" loopback
refused_connect "rebind.test" "rebind.test:$INET_LOOP_PORT"
refused_http "rebind-private.test (-> 10.0.0.1)" "http://rebind-private.test/bad-rebind-private" private
refused_http "rebind-meta.test (-> 169.254.169.254)" "http://rebind-meta.test/bad-rebind-meta" "link-local"
refused_http "10.0.0.1 (private)" "http://10.0.0.1/bad-private" private
refused_http "[::1] (IPv6 loopback)" "http://[::1]:$INET_LOOP_PORT/bad-v6-loop" loopback
refused_http "[::ffff:127.0.0.1] (IPv4-mapped loopback)" "http://[::ffff:127.0.0.1]:$INET_LOOP_PORT/bad-mapped" loopback
refused_http "0.0.0.0" "http://0.0.0.0:$INET_LOOP_PORT/bad-zero"

# every way around the proxy
ICMP_BEFORE=$(ini awk '/^Icmp:/ { n++; if (n == 2) print $0 }' /proc/net/snmp)
X "$PY" probe.py
PROBE=$OUT
for a in tcp-direct tcp-direct-80 tcp6-direct tcp-metadata-direct udp-53 udp-9999 icmp-dgram icmp-raw \
	ip-link-add ip-route-add ip-lo-down ip-addr-add; do
	line=$(grep "^$a " <<<"$PROBE")
	case $line in
	"$a blocked "* | "$a sent-no-answer"*) pass "bypass: $a fails (${line#"$a "})" ;;
	"$a unavailable "*) skip "bypass: $a" "${line#"$a "}" ;;
	*) fail "bypass: $a fails" "probe said: $line" "$(acx_diag)" ;;
	esac
done
X "$PY" probe.py tcp-direct
check_match "bypass: TCP straight to 192.0.2.10:9000 has no route" 'ENETUNREACH|EHOSTUNREACH' "$OUT"
ICMP_AFTER=$(ini awk '/^Icmp:/ { n++; if (n == 2) print $0 }' /proc/net/snmp)
check_eq "bypass: the internet received no ICMP message (Icmp counters unchanged)" "$ICMP_BEFORE" "$ICMP_AFTER"
X sh -c 'awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }" /proc/net/dev; ip -o addr show lo 2>/dev/null | grep -c "inet " || true'
check_not_contains "bypass: no interface was added" "$OUT" acprobe0
X curl -sS --max-time 20 http://allowed.test/ok-after-probe
check_contains "the proxy still works after the attempts (lo still up)" "$OUT" '"path": "/ok-after-probe"'

# what arrived
sleep 0.5 # (the servers log before they answer; this only lets stray datagrams land)
check_eq "servers: no request with a /bad- path arrived" 0 "$(inet_log_count '"path": "/bad-')"
check_eq "servers: no UDP datagram arrived (DNS or other)" 0 "$(inet_log_count '"kind": "udp"')"
check_eq "servers: no raw TCP connection arrived" 0 "$(inet_log_count '"kind": "tcp"')"
for s in 198.51.100.20 169.254.169.254 10.0.0.1 203.0.113.30 203.0.113.40; do
	check_eq "servers: nothing reached $s" 0 "$(inet_log_count "\"server\": \"$s\"")"
done
check_eq "the host loopback service saw no connection" "" "$(cat "$INET_HOSTLOG")"
for p in ok-curl-http ok-curl-https ok-curl-v6 ok-wild-base ok-py-http ok-py-https ok-after-probe; do
	check_eq "servers: /$p arrived once" 1 "$(inet_log_count "\"path\": \"/$p\"")"
done
OTHER=$(grep -v '"path": "/ok-' "$INET_LOG" | head -5)
check_eq "servers: nothing but the allowed requests arrived" "" "$OTHER"

# ------------------------------------------------------------------ net-log
acx net-log "$E"
check_rc "net-log $E" 0
NETLOG=$OUT
check_contains "net-log: lists allowed.test" "$NETLOG" "allowed.test"
check_contains "net-log: lists blocked.test" "$NETLOG" "blocked.test"
check_contains "net-log: shows refusals" "$NETLOG" "refused"
acx net-log "$E" --json
check_rc "net-log --json" 0
J=$OUT
jqc() { jq -r "$1" <<<"$J" 2>&1; }
check_eq "net-log --json: an allowed GET of allowed.test:80 with bytes both ways" true \
	"$(jqc '[.[] | .details | select(.host == "allowed.test" and .port == 80 and .verdict == "allowed" and (.bytes_out > 0) and (.bytes_in > 0))] | length > 0')"
check_eq "net-log --json: the CONNECT to allowed.test:443 with bytes both ways" true \
	"$(jqc '[.[] | .details | select(.host == "allowed.test" and .port == 443 and .method == "CONNECT" and .verdict == "allowed" and (.bytes_out > 0) and (.bytes_in > 0))] | length > 0')"
check_eq "net-log --json: allowed ones name the address connected to" true \
	"$(jqc '[.[] | .details | select(.host == "allowed.test" and .verdict == "allowed") | .address | tostring | test("192\\.0\\.2\\.10")] | all and length > 0')"
check_eq "net-log --json: blocked.test refused, reason names block_hosts" true \
	"$(jqc '[.[] | .details | select(.host == "blocked.test" and .verdict == "refused") | .reason | test("block")] | any')"
check_eq "net-log --json: 169.254.169.254 refused as link-local" true \
	"$(jqc '[.[] | .details | select(.host == "169.254.169.254" and .verdict == "refused") | .reason | test("link-local")] | any')"
check_eq "net-log --json: rebind.test refused as loopback" true \
	"$(jqc '[.[] | .details | select(.host == "rebind.test" and .verdict == "refused") | .reason | test("loopback")] | any')"
check_eq "net-log --json: the host's own address refused as such" true \
	"$(jqc "[.[] | .details | select(.host == \"$INET_HOST_ADDR\" and .verdict == \"refused\") | .reason | test(\"own\")] | any")"
check_eq "net-log --json: refusals moved no byte" true \
	"$(jqc '[.[] | .details | select(.verdict == "refused") | ((.bytes_out // 0) == 0 and (.bytes_in // 0) == 0)] | all')"
check_eq "net-log --json: only this sandbox's records" true "$(jqc "[.[] | .sandbox == \"$E\"] | all")"

# ------------------------------------------------------------------ --allowlist-only
acx run --network --allowlist-only --allow-host allowed.test --allow-host '*.wild.test' -- sh -c '
	curl -sS --max-time 20 http://allowed.test/ok-allowlist; echo
	curl -sS --max-time 20 http://a.wild.test/ok-allowlist-wild; echo
	curl -sS --max-time 20 -o /dev/null -w "other=%{http_code}\n" http://other.test/bad-unlisted
	curl -sS --max-time 20 -o /dev/null -w "base=%{http_code}\n" http://wild.test/bad-wild-base
	curl -sS --max-time 20 -o /dev/null -w "ip=%{http_code}\n" http://192.0.2.10/bad-ip-unlisted'
check_contains "allowlist-only: a listed host works" "$OUT" '"path": "/ok-allowlist"'
check_contains "allowlist-only: '*.wild.test' admits a.wild.test" "$OUT" '"path": "/ok-allowlist-wild"'
check_contains "allowlist-only: an unlisted host -> 403" "$OUT" "other=403"
check_contains "allowlist-only: '*.wild.test' does not admit wild.test" "$OUT" "base=403"
check_contains "allowlist-only: an unlisted IP literal -> 403" "$OUT" "ip=403"
check_eq "allowlist-only: nothing unlisted arrived" 0 "$(inet_log_count '"path": "/bad-')"

# explicitly allowed by IP: a private address becomes reachable, nothing else does
acx run --network --allow-host 10.0.0.1/32 -- sh -c '
	curl -sS --max-time 20 http://10.0.0.1/ok-explicit-private; echo
	curl -sS --max-time 20 -o /dev/null -w "meta=%{http_code}\n" http://169.254.169.254/bad-meta2'
check_contains "--allow-host 10.0.0.1/32: the private address is reachable" "$OUT" '"path": "/ok-explicit-private"'
check_contains "--allow-host 10.0.0.1/32: the metadata service still is not" "$OUT" "meta=403"

# agentcell.toml [network]
cat >"$AC_TMP/net.toml" <<'EOF'
[network]
block_hosts = ["other.test"]
allow_hosts = ["allowed.test"]
allowlist_only = false
EOF
acx run --network --config "$AC_TMP/net.toml" -- sh -c '
	curl -sS --max-time 20 -o /dev/null -w "other=%{http_code}\n" http://other.test/bad-toml
	curl -sS --max-time 20 -o /dev/null -w "allowed=%{http_code}\n" http://allowed.test/ok-toml'
check_contains "agentcell.toml block_hosts: other.test -> 403" "$OUT" "other=403"
check_contains "agentcell.toml: allowed.test still works" "$OUT" "allowed=200"
check_eq "nothing refused arrived in the end" 0 "$(inet_log_count '"path": "/bad-')"

# ------------------------------------------------------------------ info and teardown
acx info "$E"
check_contains "info: says network" "$OUT" "network"
check_contains "info: shows the block list" "$OUT" "blocked.test"
NETDIR=$AGENTCELL_HOME/net/$E
PIDF=$NETDIR/proxy.pid
PROXY_PID=$(jq -r '.pid // empty' "$PIDF" 2>/dev/null)
if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
	pass "the proxy of $E runs (pid $PROXY_PID from $PIDF)"
else
	fail "the proxy of $E runs (pid file $PIDF)" "$(ls -la "$NETDIR" 2>&1)"
fi
check_ac "remove $E" remove "$E"
if [ -n "$PROXY_PID" ]; then
	check "after remove: the proxy process $PROXY_PID is gone" wait_until 10 sh -c "! kill -0 $PROXY_PID 2>/dev/null"
fi
check "after remove: no files under \$AGENTCELL_HOME/net/$E" test ! -e "$NETDIR"
check_eq "after remove: no process left in the host ns but the test's loopback service" \
	"$INET_LOOP_PID" "$(ip netns pids "$INET_H" | xargs)"
check_eq "after remove: nothing listens in the host ns but the test's own service" "" \
	"$(inh ss -Htln 2>/dev/null | grep -v ":$INET_LOOP_PORT " || true)"

# ------------------------------------------------------------------ no secret in the audit log
check_not_contains "audit log: no Authorization value went into it" "$(cat "$AGENTCELL_HOME/audit.jsonl")" "Bearer"

ac_inet_down check
