#!/bin/bash
# The Docker/Podman backend's network (src/backends/docker/net.c) against a real Podman
# service of this test's own (scripts/podman-setup.sh): a container with --network has only
# lo, its one way out is agentcell's proxy (policy, secrets, audit), published ports reach
# into it, and nothing of the network outlives the sandbox.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$AC_REPO/scripts/podman-setup.sh"
ac_setup

if ! podman_setup; then
	fail "podman service set-up" "$PODMAN_REASON"
	podman_teardown
	exit 1
fi
pass "podman service on $DOCKER_HOST with image $PODMAN_IMAGE"
IMG=$PODMAN_IMAGE
SOCK=${DOCKER_HOST#unix://}
at_exit 'for n in $(ac_names); do AC_TIMEOUT=30 ac remove "$n"; done; podman_teardown'
api() { curl -s --unix-socket "$SOCK" "$@"; }
agentcell_containers() { podman ps -a --filter label=agentcell.managed=true --format '{{.Names}}' | sort; }
proxy_pid() { jq -r .pid "$AGENTCELL_HOME/net/$1/proxy.pid" 2>/dev/null; }
# A process that is alive and is a network proxy of this binary (not a recycled pid).
is_proxy() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'agentcell-net\|__netproxy'; }
# The proxies of this test's home, found by pgrep (their environment names the home).
home_proxies() {
	# the proxy (not its socket helper, agentcell-netns, which only publishing has)
	{ pgrep -x agentcell-net; pgrep -f "__netproxy"; } | sort -u | while read -r p; do
		{ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "AGENTCELL_HOME=$AGENTCELL_HOME" && echo "$p"
	done
}
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ID=$(uniq_id)

# ---- a server on an address of the host's own network namespace, not loopback: the
# policy refuses it unless allowed by IP. A dummy interface with a documentation address
# when the host has no such address (removed at exit).
HOSTIP=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
if [ -z "$HOSTIP" ]; then
	DUMMY=acnd$$
	at_exit "ip link del $DUMMY"
	if ! { ip link add "$DUMMY" type dummy && ip addr add 192.0.2.77/32 dev "$DUMMY" &&
		ip link set "$DUMMY" up; }; then
		fail "a dummy interface for the test's server"
		exit 1
	fi
	HOSTIP=192.0.2.77
fi
cat >"$AC_TMP/echo.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("path=%s auth=%s\n" % (self.path, self.headers.get("Authorization", "-"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer((sys.argv[1], 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
"$PY" "$AC_TMP/echo.py" "$HOSTIP" >"$AC_TMP/echo.port" 2>/dev/null &
bg_track $!
wait_until 10 test -s "$AC_TMP/echo.port"
HPORT=$(cat "$AC_TMP/echo.port")
URL=http://$HOSTIP:$HPORT
check_eq "the host's test server answers on $HOSTIP" "path=/x auth=-" "$(curl -s --noproxy '*' "$URL/x")"

# ---- a persistent sandbox with the proxy, a host allowed by IP, a secret, a published port
SECRET=s3cr3t-$ID
printf '%s\n' "$SECRET" | ac secret set TOK >/dev/null
PUB=$(free_port)
B=dn-$ID
check_ac "create --backend podman --network --allow-host --secret --publish" create "$B" --backend podman \
	--image "$IMG" --network --allow-host "$HOSTIP" --secret "TOK@$HOSTIP" --publish "127.0.0.1:$PUB:8000"
HC=$(api "http://d/containers/agentcell-$B/json" | jq -c '.HostConfig | {NetworkMode, Binds}')
check_contains "the container's network mode is none (not the engine's default)" "$HC" '"NetworkMode":"none"'
check_contains "the CA bundle is bound read-only at the system bundle's path" "$HC" \
	"$AGENTCELL_HOME/net/$B/bundle.pem:/etc/ssl/certs/ca-certificates.crt:ro"
check_ac "start" start "$B"
P1=$(proxy_pid "$B")
check "start: a proxy runs, recorded in HOME/net/NAME/proxy.pid" is_proxy "$P1"
check_eq "start: pgrep finds it, and only it" "$P1" "$(home_proxies | xargs)"

ENV_OUT=$(ac exec "$B" -- env)
check_contains "exec: HTTP_PROXY points at the proxy on the sandbox's lo" "$ENV_OUT" "HTTP_PROXY=http://127.0.0.1:3128"
check_match "exec: the secret's variable is a placeholder" 'TOK=agentcell-placeholder-[0-9a-f]{32}' "$ENV_OUT"
check_not_contains "exec: ... the value itself is nowhere in the environment" "$ENV_OUT" "$SECRET"
PH=$(sed -n 's/^TOK=//p' <<<"$ENV_OUT")
check_eq "only lo in the container (/sys/class/net)" lo "$(ac exec "$B" -- ls /sys/class/net | xargs)"
check_eq "only lo in the container (/proc/net/dev)" lo \
	"$(ac exec "$B" -- cat /proc/net/dev | awk -F: 'NR > 2 {gsub(/ /, "", $1); print $1}' | xargs)"

acx exec "$B" -- sh -c "wget -q -O - --header \"Authorization: Bearer \$TOK\" $URL/allowed"
check_rc "through the proxy: a host allowed by IP answers" 0
# busybox wget speaks no TLS: plain HTTP to the bound host, which never carries the value
# (test_net_secrets.sh shows the injection into intercepted TLS, the same proxy code).
check_eq "... plain HTTP to the bound host goes as written: the placeholder, never the value in clear" "path=/allowed auth=Bearer $PH" "$OUT"
acx exec "$B" -- sh -c "http_proxy= wget -q -O - $URL/direct"
check_ne "a direct connection (no proxy) fails" 0 "$RC"
check_contains "... there is no route" "$ERR" "unreachable"
check_contains "the proxy's audit line: allowed" \
	"$(grep '"event":"net"' "$AGENTCELL_HOME/audit.jsonl" | grep "/allowed\|\"sandbox\":\"$B\"" | tail -1)" '"verdict":"allowed"'
check_not_contains "... injecting nothing over plain HTTP" "$(grep '"event":"net"' "$AGENTCELL_HOME/audit.jsonl" | tail -1)" '"injected"'
check_not_contains "the audit log never holds the secret" "$(cat "$AGENTCELL_HOME/audit.jsonl")" "$SECRET"

BUNDLE=$(ac exec "$B" -- cat /etc/ssl/certs/ca-certificates.crt)
check_contains "the container's CA bundle holds the sandbox's interception CA" "$BUNDLE" \
	"$(sed -n 2p "$AGENTCELL_HOME/net/$B/ca.pem")"
acx exec "$B" -- sh -c 'echo x >> /etc/ssl/certs/ca-certificates.crt'
check_ne "... and the sandbox cannot write it" 0 "$RC"

check_ac "a server in the container on 127.0.0.1:8000" exec "$B" -- sh -c \
	'mkdir -p /w && echo published-$HOSTNAME >/w/y.txt && httpd -p 127.0.0.1:8000 -h /w'
check_eq "the published port reaches it from the host" "published-$B" \
	"$(curl -s --noproxy '*' -m 10 "http://127.0.0.1:$PUB/y.txt")"

# ---- the agent's API key: the proxy carries it, the sandbox has a placeholder
A=da-$ID
export ANTHROPIC_API_KEY=real-key-$ID
check_ac "create --agent claude --network (key in the environment)" create "$A" --backend podman \
	--image "$IMG" --network --agent claude
check_ac "start it" start "$A"
check_match "exec: the agent's key is a placeholder" '^agentcell-placeholder-[0-9a-f]{32}$' \
	"$(ac exec "$A" -- sh -c 'echo $ANTHROPIC_API_KEY')"
check_not_contains "exec: ... never the key from the caller's environment" "$(ac exec "$A" -- env)" "real-key-$ID"
unset ANTHROPIC_API_KEY

# ---- the same host without --allow-host: refused by the policy (own address)
acx exec "$A" -- wget -q -O - "$URL/refused"
check_ne "without --allow-host the host's own address is refused" 0 "$RC"
check_contains "... with 403" "$ERR" "403"
check_contains "... and audited as refused" "$(grep '"event":"net"' "$AGENTCELL_HOME/audit.jsonl" | grep "\"sandbox\":\"$A\"" | tail -1)" '"verdict":"refused"'
check_ac "remove it" remove "$A"

# ---- stop, start, an engine-side kill, remove
check_ac "stop" stop "$B"
check_fail "stop: the proxy is gone" is_proxy "$P1"
check_fail "stop: its record is gone" test -e "$AGENTCELL_HOME/net/$B/proxy.pid"
check_ac "start again" start "$B"
P2=$(proxy_pid "$B")
check "start again: a new proxy" is_proxy "$P2"
check_eq "... the way out works again" "path=/again auth=Bearer $PH" "$(ac exec "$B" -- sh -c "wget -q -O - --header \"Authorization: Bearer \$TOK\" $URL/again")"
podman kill "agentcell-$B" >/dev/null 2>&1
wait_until 10 sh -c "! kill -0 $P2 2>/dev/null"
check_fail "the container killed by the engine: its proxy ends by itself" is_proxy "$P2"
check_ac "start after the kill" start "$B"
P3=$(proxy_pid "$B")
check "... a new proxy" is_proxy "$P3"
check_ac "remove" remove "$B"
check_fail "remove: no proxy" is_proxy "$P3"
check_fail "remove: HOME/net/NAME is gone" test -e "$AGENTCELL_HOME/net/$B"
check_eq "remove: no container left" "" "$(agentcell_containers)"
check_eq "remove: no proxy of this home left (pgrep)" "" "$(home_proxies)"

# ---- one-shot runs: the same network, gone afterwards
acx run --backend podman --image "$IMG" --network --allow-host "$HOSTIP" -- wget -q -O - "$URL/run"
check_rc "run --network --allow-host: through the proxy" 0
check_eq "... the answer" "path=/run auth=-" "$OUT"
acx run --backend podman --image "$IMG" --network -- wget -q -O - "$URL/run-refused"
check_ne "run --network without --allow-host: refused" 0 "$RC"
check_contains "... with 403" "$ERR" "403"
acx run --backend podman --image "$IMG" --network -- sh -c 'ls /sys/class/net; echo $HTTP_PROXY'
check_eq "run: only lo, and the proxy variables" "lo http://127.0.0.1:3128" "$(xargs <<<"$OUT")"
acx run --backend podman --image "$IMG" --network -- no-such-program
check_rc "run --network: a missing program exits 127" 127
check_eq "runs leave no container" "" "$(agentcell_containers)"
check_eq "runs leave no HOME/net entry" "" "$(ls -A "$AGENTCELL_HOME/net" 2>/dev/null)"

# ---- without --network: exactly as before (no proxy, no bind, no HOME/net entry)
C=dp-$ID
check_ac "create without --network" create "$C" --backend podman --image "$IMG"
HC=$(api "http://d/containers/agentcell-$C/json" | jq -c '.HostConfig | {NetworkMode, Binds}')
check_contains "... network none" "$HC" '"NetworkMode":"none"'
check_not_contains "... no CA bundle bind" "$HC" "ca-certificates"
check_ac "... start" start "$C"
check_fail "... no HOME/net/NAME" test -e "$AGENTCELL_HOME/net/$C"
check_ac "... remove" remove "$C"

# ---- an engine reached over TCP: refused in one line (the proxy needs the container's pid)
DOCKER_HOST=tcp://127.0.0.1:9 CONTAINER_HOST=tcp://127.0.0.1:9 acx create "tcp-$ID" --backend podman --image "$IMG" --network
check_rc "an engine over tcp:// with --network: exit 1" 1
check_error_line "... one line"
check_contains "... saying why" "$ERR" "egress policy needs a local engine"
check_eq "... and no sandbox is left" "" "$(ac_names | grep -x "tcp-$ID")"
check_fail "... nor HOME/net/NAME" test -e "$AGENTCELL_HOME/net/tcp-$ID"

