#!/bin/bash
# Secrets that never enter a sandbox, against the tests' private internet
# (tests/net/internet.sh): the secret store (set from stdin or an environment variable,
# never from argv; ls; rm; modes), bindings KEY@HOST[:HEADER[:PREFIX]] (inside only a
# placeholder; the proxy intercepts TLS to the bound host and the server receives the real
# value), the value is nowhere in the sandbox (environment, /proc, writable files, a core
# dump) nor in the audit log or any file of the home but the store, a placeholder sent
# elsewhere is refused and audited, --agent keys become placeholders.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$AC_REPO/tests/net/internet.sh"
ac_setup
ac_inet_up

ID=$(uniq_id)
WS=$AC_TMP/ws
mkdir -p "$WS"
cp "$AC_REPO/tests/net/secret_scan.py" "$WS/scan.py"
chmod -R a+rX "$WS"
cd "$WS" || exit 1
VALUE=sk-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
XVALUE=xk-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
AVALUE=sk-ant-test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
SDIR=$AGENTCELL_HOME/secrets

# ------------------------------------------------------------------ the store
acx secret set API_KEY < <(printf '%s\n' "$VALUE")
check_rc "secret set API_KEY (value from stdin)" 0
check_eq "  stored without the final newline" "$VALUE" "$(cat "$SDIR/API_KEY" 2>&1)"
check_eq "  file mode 0600" 600 "$(stat -c %a "$SDIR/API_KEY" 2>&1)"
check_eq "  directory mode 0700" 700 "$(stat -c %a "$SDIR" 2>&1)"
acx secret set OTHER_KEY "not-on-argv-$ID"
check_ne "secret set KEY VALUE (value on argv) is refused" 0 "$RC"
check_error_line "  with a one-line error"
check "  and nothing was stored" test ! -e "$SDIR/OTHER_KEY"
check_not_contains "  the store holds no argv value" "$(cat "$SDIR"/* 2>/dev/null)" "not-on-argv-$ID"
XK=$XVALUE acx secret set XKEY --from-env XK
check_rc "secret set XKEY --from-env XK" 0
check_eq "  stored from the environment" "$XVALUE" "$(cat "$SDIR/XKEY" 2>&1)"
acx secret set NOPE --from-env "AC_UNSET_VAR_$ID"
check_ne "secret set --from-env of an unset variable fails" 0 "$RC"
check "  and stores nothing" test ! -e "$SDIR/NOPE"
acx secret set TMP_KEY < <(printf 'tmp\n')
acx secret ls
check_rc "secret ls" 0
check_contains "secret ls: lists API_KEY" "$OUT" API_KEY
check_contains "secret ls: lists XKEY" "$OUT" XKEY
check_not_contains "secret ls: shows no value" "$OUT" "$VALUE"
check_not_contains "secret ls: shows no value (XKEY)" "$OUT" "$XVALUE"
acx secret ls --json
check_eq "secret ls --json: API_KEY's size, not its value" "${#VALUE}" "$(jq -r '.[] | select(.key == "API_KEY") | .bytes' <<<"$OUT" 2>&1)"
check_ac "secret rm TMP_KEY" secret rm TMP_KEY
check "  its file is gone" test ! -e "$SDIR/TMP_KEY"
acx secret ls
check_not_contains "  and ls no longer lists it" "$OUT" TMP_KEY
acx secret rm TMP_KEY
check_ne "secret rm of a missing key fails" 0 "$RC"
check_error_line "  with a one-line error"
acx secret set 'bad/key' </dev/null
check_ne "secret set with a bad key name fails" 0 "$RC"

# ------------------------------------------------------------------ a missing secret
acx create "nosecret-$ID" --network --secret "MISSING_$ID@api.secret.test"
check_ne "create with --secret of a missing key fails" 0 "$RC"
check_error_line "  with a one-line error"
check_contains "  naming the key" "$ERR" "MISSING_$ID"
check_not_contains "  and no sandbox was created" "$(ac_names)" "nosecret-$ID"
check "  no state file" test ! -e "$AGENTCELL_HOME/sandboxes/nosecret-$ID.json"
check "  no net dir" test ! -e "$AGENTCELL_HOME/net/nosecret-$ID"

# ------------------------------------------------------------------ a bound secret
S=sec-$ID
check_ac "create $S --network --secret API_KEY@api.secret.test" \
	create "$S" --network --secret API_KEY@api.secret.test --mount-cwd
check_ac "start $S" start "$S"
X() { acx exec "$S" -w /workspace -- "$@"; }
X sh -c 'printf %s "$API_KEY"'
PH=$OUT
check_match "inside: \$API_KEY is a placeholder ($PH)" '^agentcell-placeholder-[0-9a-f]{32}$' "$PH"
check_ne "inside: \$API_KEY is not the value" "$VALUE" "$PH"
X env
for v in SSL_CERT_FILE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS CURL_CA_BUNDLE; do
	check_contains "inside: $v names the sandbox's bundle" "$OUT" "$v=/etc/ssl/certs/ca-certificates.crt"
done

X curl -sS --max-time 20 -H "Authorization: Bearer $PH" https://api.secret.test/quiet-secret-curl
check_contains "curl https://api.secret.test with the placeholder (intercepted, the bundle trusted)" "$OUT" '"quiet": true'
X curl -sS --max-time 20 https://api.secret.test/quiet-secret-noheader
check_contains "curl https://api.secret.test without any header" "$OUT" '"quiet": true'
X "$PY" -c '
import os, urllib.request
r = urllib.request.Request("https://api.secret.test/quiet-secret-py", headers={"Authorization": "Bearer " + os.environ["API_KEY"]})
print(urllib.request.urlopen(r, timeout=20).read().decode())'
check_contains "python urllib to api.secret.test with the placeholder (REQUESTS/SSL_CERT_FILE bundle)" "$OUT" '"quiet": true'
if command -v node >/dev/null; then
	X node -e '
const http = require("http"), tls = require("tls");
const p = new URL(process.env.HTTPS_PROXY);
const r = http.request({host: p.hostname, port: p.port, method: "CONNECT", path: "api.secret.test:443"});
r.on("connect", (resp, sock) => {
	const t = tls.connect({socket: sock, servername: "api.secret.test"}, () => {
		t.write("GET /quiet-secret-node HTTP/1.1\r\nHost: api.secret.test\r\nAuthorization: Bearer " +
			process.env.API_KEY + "\r\nConnection: close\r\n\r\n");
	});
	let d = ""; t.on("data", (c) => (d += c)); t.on("end", () => console.log(d));
	t.on("error", (e) => console.log("tls error " + e.code));
});
r.end();'
	check_contains "node (NODE_EXTRA_CA_CERTS) to api.secret.test with the placeholder" "$OUT" '"quiet": true'
else
	skip "node to api.secret.test" "node is not installed"
fi

# what the server received
hdr_of() { # PATH: the Authorization headers the server got for PATH
	jq -r --arg p "$1" 'select(.path == $p) | .headers[] | select(.[0] | ascii_downcase == "authorization") | .[1]' "$INET_LOG"
}
check_eq "server: curl's request carried 'Authorization: Bearer <the real value>'" "Bearer $VALUE" "$(hdr_of /quiet-secret-curl)"
check_eq "server: python's request carried the real value" "Bearer $VALUE" "$(hdr_of /quiet-secret-py)"
if command -v node >/dev/null; then
	check_eq "server: node's request carried the real value" "Bearer $VALUE" "$(hdr_of /quiet-secret-node)"
fi
check_eq "server: a request without the header got it too (the binding injects it)" "Bearer $VALUE" "$(hdr_of /quiet-secret-noheader)"
check_eq "server: no placeholder ever arrived" 0 "$(inet_log_count "$PH")"
check_eq "server: the requests came over TLS" 0 "$(jq -r 'select(.path | startswith("/quiet-secret")) | select(.kind != "https")' "$INET_LOG" | grep -c . || true)"

# the placeholder sent elsewhere
X curl -sS --max-time 20 -i -H "Authorization: Bearer $PH" http://other.test/bad-ph-plain
check_match "placeholder to other.test (plain http) -> 403" '^HTTP/1\.[01] 403' "$OUT"
X curl -sS --max-time 20 -i "http://other.test/bad-ph-query?key=$PH"
check_match "placeholder in the query to other.test (plain http) -> 403" '^HTTP/1\.[01] 403' "$OUT"
X curl -sS --max-time 20 -p --proxy-header "X-Token: $PH" https://other.test/bad-ph-connect
check_contains "placeholder as a CONNECT header to other.test -> 403" "$ERR" 403
X curl -sS --max-time 20 -i -H "Authorization: Bearer $PH" http://api.secret.test/bad-ph-plain-bound
if [[ "$OUT" =~ ^HTTP/1\.[01]\ 403 ]]; then
	pass "placeholder to the bound host over plain http -> 403 (never sent in clear)"
else
	check_eq "placeholder to the bound host over plain http: forwarded as written (the placeholder, never the value in clear)" "Bearer $PH" "$(hdr_of /bad-ph-plain-bound)"
	check_eq "... the value is nowhere in the server's log of that request" 0 "$(grep -F -- /bad-ph-plain-bound "$INET_LOG" 2>/dev/null | grep -c -F -- "$VALUE")"
fi
check_eq "server: nothing with the placeholder reached other.test" 0 "$(inet_log_count '"server": "203.0.113.40"')"
acx net-log "$S" --json
J=$OUT
check_eq "net-log: the placeholder refusals to other.test are audited" true \
	"$(jq -r '[.[] | .details | select(.host == "other.test" and .verdict == "refused")] | length >= 3' <<<"$J" 2>&1)"
check_eq "net-log: the injections to api.secret.test are audited (key named)" true \
	"$(jq -r '[.[] | .details | select(.host == "api.secret.test" and .verdict == "allowed") | .injected | tostring | test("API_KEY")] | any' <<<"$J" 2>&1)"

# the value is nowhere inside
printf 'VALUE %s\nPLACEHOLDER %s\n' "$VALUE" "$PH" >"$AC_TMP/needles"
acx exec -i "$S" -w /workspace -- "$PY" scan.py /proc/1/cmdline /etc /tmp /root /workspace <"$AC_TMP/needles"
check_rc "scan inside the sandbox ran" 0
check_contains "scan: the placeholder is found (the scan can find things: $(grep -c found <<<"$OUT") hits)" "$OUT" "found PLACEHOLDER /proc/"
check_not_contains "scan: the value is in no environ, cmdline or writable file of the sandbox" "$OUT" "found VALUE"
check_match "scan: it covered files ($(grep scanned <<<"$OUT"))" 'scanned [1-9][0-9]* files' "$OUT"
X sh -c 'cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" "\n"; env; cat /etc/ssl/certs/ca-certificates.crt'
check_not_contains "environ and cmdline of every process: no value" "$OUT" "$VALUE"

# a core dump of a crashing process that used the placeholder
if [ "$(cat /proc/sys/kernel/core_pattern)" = core ] || [[ "$(cat /proc/sys/kernel/core_pattern)" == core.* ]] ||
	[[ "$(cat /proc/sys/kernel/core_pattern)" == core* ]]; then
	X sh -c 'mkdir -p /tmp/cores && cd /tmp/cores && ulimit -c unlimited &&
		curl -sS --max-time 20 -o /dev/null -H "Authorization: Bearer $API_KEY" https://api.secret.test/quiet-secret-core;
		"$0" -c "import os, signal; x = os.environ[\"API_KEY\"] * 1000; os.kill(os.getpid(), signal.SIGSEGV)";
		ls /tmp/cores' "$PY"
	CORE=$(grep -m1 '^core' <<<"$OUT")
	if [ -n "$CORE" ]; then
		pass "core dump: written in the sandbox ($CORE)"
		acx exec -i "$S" -- "$PY" /workspace/scan.py "/tmp/cores/$CORE" <"$AC_TMP/needles"
		check_contains "core dump: holds the placeholder (the scan reads it)" "$OUT" "found PLACEHOLDER /tmp/cores/$CORE"
		check_not_contains "core dump: does not hold the value" "$OUT" "found VALUE"
	else
		skip "core dump of a crashing process" "the kernel wrote none in the sandbox (core_pattern $(cat /proc/sys/kernel/core_pattern)): $OUT $ERR"
	fi
else
	skip "core dump of a crashing process" "core_pattern is '$(cat /proc/sys/kernel/core_pattern)' (not a file in the sandbox)"
fi

# the value on the host: only in the store
check_not_contains "audit log: no secret value" "$(cat "$AGENTCELL_HOME/audit.jsonl")" "$VALUE"
check_not_contains "audit log: no XKEY value" "$(cat "$AGENTCELL_HOME/audit.jsonl")" "$XVALUE"
LEAK=$(grep -rlF --exclude-dir=secrets -e "$VALUE" "$AGENTCELL_HOME" 2>/dev/null | head -5)
check_eq "home: no file but the store holds the value (state, net dir, sandbox layers)" "" "$LEAK"
acx info "$S" --json
check_not_contains "info --json: no value" "$OUT" "$VALUE"
check_contains "info --json: names the binding" "$OUT" "api.secret.test"

# ------------------------------------------------------------------ a custom header
acx run --network --secret XKEY@api.secret.test:x-api-key -- sh -c \
	'curl -sS --max-time 20 -H "x-api-key: $XKEY" https://api.secret.test/quiet-xkey; printf "ph=%s\n" "$XKEY"'
check_contains "--secret XKEY@api.secret.test:x-api-key: the request works" "$OUT" '"quiet": true'
check_match "  inside, \$XKEY is a placeholder" 'ph=agentcell-placeholder-[0-9a-f]{32}' "$OUT"
check_eq "  the server got 'x-api-key: <raw value>' (no prefix)" "$XVALUE" \
	"$(jq -r 'select(.path == "/quiet-xkey") | .headers[] | select(.[0] | ascii_downcase == "x-api-key") | .[1]' "$INET_LOG")"
acx run --network --secret 'XKEY@api.secret.test:X-Auth:Token ' -- sh -c \
	'curl -sS --max-time 20 https://api.secret.test/quiet-xprefix'
check_eq "--secret KEY@host:X-Auth:'Token ': the server got 'X-Auth: Token <value>'" "Token $XVALUE" \
	"$(jq -r 'select(.path == "/quiet-xprefix") | .headers[] | select(.[0] | ascii_downcase == "x-auth") | .[1]' "$INET_LOG")"

# ------------------------------------------------------------------ --agent claude
ANTHROPIC_API_KEY=$AVALUE acx run --agent claude --network -- sh -c 'printf "k=%s\n" "$ANTHROPIC_API_KEY"; cat /proc/[0-9]*/environ 2>/dev/null | tr "\0" "\n"'
if [ "$RC" -eq 0 ]; then
	check_match "--agent claude --network: inside ANTHROPIC_API_KEY is a placeholder" 'k=agentcell-placeholder-[0-9a-f]{32}' "$OUT"
	check_not_contains "--agent claude --network: the real key is in no process's environment" "$OUT" "$AVALUE"
	check_not_contains "--agent claude --network: nor in the audit log" "$(cat "$AGENTCELL_HOME/audit.jsonl")" "$AVALUE"
	LEAK=$(grep -rlF -e "$AVALUE" "$AGENTCELL_HOME" 2>/dev/null | head -5)
	check_eq "--agent claude --network: nor in any file of the home" "" "$LEAK"
else
	fail "--agent claude --network runs" "$(acx_diag)"
fi

# ------------------------------------------------------------------ teardown
check_ac "remove $S" remove "$S"
check "after remove: no files under \$AGENTCELL_HOME/net/$S" test ! -e "$AGENTCELL_HOME/net/$S"
check_eq "after remove: no process left in the host ns but the test's loopback service" \
	"$INET_LOOP_PID" "$(ip netns pids "$INET_H" | xargs)"
check "the secret store still holds API_KEY" test -s "$SDIR/API_KEY"

ac_inet_down check
