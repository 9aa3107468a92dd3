#!/bin/bash
# Attacks on `agentcell serve` from outside a sandbox, each tried for real over loopback:
#   - web pages: a page the operator visits sends requests to the local API (any Origin,
#     forms and text/plain bodies, DNS rebinding: a Host naming the attacker's domain);
#   - memory: clients without a key announce big bodies and send half of them;
#     clients with a key announce more than the server's body budget;
#   - connections: idle and half-sent requests from one address hold the server's threads.
# Each must fail, and the server must go on answering its real clients.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ac_setup

KEY="attack-key-$(uniq_id)-$RANDOM"
command -v curl >/dev/null || fail "curl is available"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# code ARGS...: the HTTP status of a curl request (000: no answer).
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 20 "$@"; }
# body_code ARGS...: "BODY\nSTATUS", headers in $AC_TMP/h.txt
body_code() { curl -s -D "$AC_TMP/h.txt" -w '\n%{http_code}' --max-time 20 "$@"; }

# Raw sockets for what curl cannot do: half-sent requests, many connections at once.
cat >"$AC_TMP/raw.py" <<'EOF'
import json, select, socket, sys, time

def conn(port, host="127.0.0.1", timeout=5):
    return socket.create_connection((host, port), timeout=timeout)

def status_of(data):
    try:
        return int(data.split(b" ", 2)[1])
    except Exception:
        return 0

def partial(port, n, auth, announce, send):
    """n connections announce `announce` body bytes and send `send` of them; what each
    answered within 5 s. Prints {statuses, waited (s, the longest), retry_after, open (no
    answer: admitted, waiting for the rest of its body)}."""
    head = ("PUT /sandboxes/nobody/files/big HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (port, announce, "Authorization: Bearer %s\r\n" % auth if auth else ""))
    socks, out = [], {"statuses": {}, "waited": 0.0, "retry_after": 0, "open": 0}
    for _ in range(n):
        s = conn(port)
        t0 = time.monotonic()
        s.sendall(head.encode())
        try:
            s.sendall(b" " * send)
        except OSError:
            pass  # answered and closed under us: what it answered counts
        socks.append((s, t0))
    pending = list(socks)
    deadline = time.monotonic() + 5
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select([s for s, _ in pending], [], [], 0.2)
        for s in ready:
            t0 = next(t for x, t in pending if x is s)
            pending = [(x, t) for x, t in pending if x is not s]
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            st = str(status_of(d))
            out["statuses"][st] = out["statuses"].get(st, 0) + 1
            out["waited"] = max(out["waited"], time.monotonic() - t0)
            if b"\r\nRetry-After: " in d:
                out["retry_after"] += 1
    out["open"] = len(pending)
    print(json.dumps(out), flush=True)
    if len(sys.argv) > 7:  # hold the connections until told (a line on stdin)
        sys.stdin.readline()
    for s, _ in socks:
        s.close()

def per_ip(port, limit):
    """limit idle connections, then one more: the extra one must be closed at once and
    answer nothing; the first ones stay open."""
    socks = [conn(port) for _ in range(limit)]
    time.sleep(0.3)
    extra = conn(port)
    extra.settimeout(3)
    try:
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        d = extra.recv(4096)
        extra_state = "answered" if d else "closed"
    except socket.timeout:
        extra_state = "open"
    except OSError:
        extra_state = "closed"
    # The first ones still hold their place: one of them still gets an answer.
    first = socks[0]
    first.settimeout(3)
    try:
        first.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first_state = str(status_of(first.recv(4096)))
    except OSError:
        first_state = "closed"
    print(json.dumps({"extra": extra_state, "first": first_state}), flush=True)
    for s in socks:
        s.close()
    extra.close()

def half_header(port, wait_max):
    """Sends half a request head and waits (at most wait_max s) for the server to close."""
    s = conn(port, timeout=wait_max)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    t0 = time.monotonic()
    try:
        d = s.recv(4096)
        state = "closed" if not d else "answered %d" % status_of(d)
    except socket.timeout:
        state = "open"
    except OSError:
        state = "closed"
    print(json.dumps({"state": state, "after": round(time.monotonic() - t0, 1)}), flush=True)

cmd = sys.argv[1]
if cmd == "partial":
    partial(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
elif cmd == "per_ip":
    per_ip(int(sys.argv[2]), int(sys.argv[3]))
elif cmd == "half_header":
    half_header(int(sys.argv[2]), float(sys.argv[3]))
EOF
raw() { timeout -k 2 60 "$PY" "$AC_TMP/raw.py" "$@"; }

# held PORT N KEY ANNOUNCE SEND: raw partial, its connections kept open until `release`;
# sets R (what they were answered).
held() {
	rm -f "$AC_TMP/hold" "$AC_TMP/held.json"
	mkfifo "$AC_TMP/hold"
	raw partial "$@" hold <"$AC_TMP/hold" >"$AC_TMP/held.json" &
	HOLDER=$!
	exec 7>"$AC_TMP/hold"
	for _ in $(seq 1 200); do [ -s "$AC_TMP/held.json" ] && break; sleep 0.1; done
	R=$(cat "$AC_TMP/held.json")
}
release() {
	echo >&7
	exec 7>&-
	wait "$HOLDER" 2>/dev/null
}

# ================================================================== web pages, no key
# A key-less server on loopback: any page the operator's browser opens can send it requests.

if start_server open -- --port 0 --idle-timeout 2 --max-conns-per-ip 16; then
	pass "key-less serve starts (port $SRV_PORT)"
else
	fail "key-less serve starts" "$(cat "$AC_TMP/open.err")"
fi
OPEN_PID=$SRV_PID
P=$SRV_PORT
U=http://127.0.0.1:$P
J='Content-Type: application/json'
N=web-$(uniq_id)

# DNS rebinding: the page's own name, made to resolve to 127.0.0.1, is the Host.
for h in "evil.example:$P" "localhost.evil.com:$P" "127.0.0.1.nip.io:$P" "localhost.:$P"; do
	R=$(body_code -H "Host: $h" "$U/sandboxes")
	check_eq "no key, Host: $h -> 403 (DNS rebinding reads nothing)" 403 "$(tail -n1 <<<"$R")"
done
check_contains "the 403 says why, in the API's envelope" "$(head -n1 <<<"$R")" '"success":false,"error":"host '
R=$(body_code -H "Host: evil.example" -H "$J" -d "{\"name\":\"$N\"}" "$U/sandboxes")
check_eq "no key, rebound page: create a sandbox -> 403" 403 "$(tail -n1 <<<"$R")"
check_eq "and nothing was created" "" "$(ac_list_entry "$N")"
check_eq "no key, rebound page: even /health -> 403" 403 "$(code -H "Host: evil.example" "$U/health")"
for h in "localhost:$P" "127.0.0.1:$P" "[::1]:$P" "localhost"; do
	check_eq "no key, Host: $h is this machine -> 200" 200 "$(code -H "Host: $h" "$U/sandboxes")"
done

# A page of another site: its Origin is refused on every route, whatever else it sends.
for o in "http://evil.example" "null" "http://localhost.evil.com" "http://127.0.0.1.nip.io:$P"; do
	check_eq "Origin: $o, POST /run (JSON) -> 403" 403 \
		"$(code -H "Origin: $o" -H "$J" -d '{"command":["echo","pwned"]}' "$U/run")"
done
check_eq "Origin: http://evil.example, GET /sandboxes -> 403" 403 "$(code -H "Origin: http://evil.example" "$U/sandboxes")"
check_eq "Origin: http://evil.example, /mcp -> 403 (the same check)" 403 \
	"$(code -H "Origin: http://evil.example" -H "$J" -d '{}' "$U/mcp")"
check_eq "Origin: http://localhost:3000 (a page of this machine) -> 200" 200 \
	"$(code -H "Origin: http://localhost:3000" "$U/sandboxes")"

# What a page can send without a preflight: text/plain, forms, multipart. 415, nothing runs.
R=$(body_code -H 'Content-Type: text/plain' -d "{\"name\":\"$N\"}" "$U/sandboxes")
check_eq "POST /sandboxes as text/plain -> 415" 415 "$(tail -n1 <<<"$R")"
check_contains "the 415 names the type wanted" "$(head -n1 <<<"$R")" "application/json"
check_eq "and nothing was created" "" "$(ac_list_entry "$N")"
check_eq "POST /run as a form (curl -d's default) -> 415" 415 "$(code -d '{"command":["echo","pwned"]}' "$U/run")"
check_eq "POST /run as multipart -> 415" 415 "$(code -F 'x=1' "$U/run")"
check_eq "POST /run with no Content-Type -> 415" 415 "$(code -H 'Content-Type:' -d '{"command":["echo"]}' "$U/run")"
R=$(curl -s --max-time 30 -H 'Content-Type: application/json; charset=utf-8' -d '{"command":["echo","fine"]}' "$U/run")
check_eq "application/json; charset=utf-8 is JSON: the command runs" fine "$(jq -r .data.output <<<"$R" 2>/dev/null | tr -d '\n')"

# No CORS, ever: a preflight gets no Access-Control-Allow-*, so a page never reads an answer.
for o in "http://evil.example" "http://localhost:3000"; do
	H=$(curl -s -D - -o /dev/null --max-time 5 -X OPTIONS -H "Origin: $o" \
		-H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "$U/run")
	check_not_contains "OPTIONS preflight from $o: no Access-Control-Allow-*" "$(tr 'A-Z' 'a-z' <<<"$H")" "access-control-allow"
done
H=$(curl -s -D - -o /dev/null --max-time 5 -H "Origin: http://localhost:3000" "$U/health")
check_not_contains "a plain answer to a local page: no Access-Control-Allow-*" "$(tr 'A-Z' 'a-z' <<<"$H")" "access-control-allow"

# ================================================================== connections (same server)

# An idle deadline: half a request head is not held for long (--idle-timeout 2).
R=$(raw half_header "$P" 15)
check_eq "half a header: the server closes the connection" closed "$(jq -r .state <<<"$R")"
check_le "half a header: closed by the idle deadline (2 s), not minutes later" "$(jq -r '.after|floor' <<<"$R")" 6

# ... while a request that works is not idle: a command longer than the deadline, in one
# answer and as an event stream with a silent gap, comes back whole.
R=$(curl -s --max-time 30 -H "$J" -d '{"command":["sh","-c","sleep 4; echo slow-done"]}' "$U/run")
check_eq "a 4 s command with a 2 s idle deadline: answered" slow-done "$(jq -r .data.output <<<"$R" 2>/dev/null | tr -d '\n')"
S=$(curl -sN --max-time 30 -H "$J" -d '{"command":["sh","-c","echo a; sleep 5; echo b"]}' "$U/run/stream")
check_contains "an event stream silent for 5 s with a 2 s idle deadline: ends with done" "$S" 'event: done'
check_contains "and carries the output after the gap" "$S" '"data":"b\n"'

# One address holds at most --max-conns-per-ip connections (16 here).
R=$(raw per_ip "$P" 16)
check_eq "per address: the connection past the limit is closed unanswered" closed "$(jq -r .extra <<<"$R")"
check_eq "per address: the connections within it are served" 200 "$(jq -r .first <<<"$R")"
check "after they close, the server answers" wait_until 5 curl -sf --max-time 2 "$U/health"
few_threads() { [ "$(threads "$OPEN_PID")" -le 40 ]; }
check "threads come back down once the idle connections are gone" wait_until 10 few_threads
check "the key-less server survived" kill -0 "$OPEN_PID"
stop_server open "$OPEN_PID"

# ================================================================== with a key

if start_server keyed AGENTCELL_API_KEY="$KEY" -- --port 0 --idle-timeout 30; then
	pass "serve with a key starts (port $SRV_PORT)"
else
	fail "serve with a key starts" "$(cat "$AC_TMP/keyed.err")"
fi
KEYED_PID=$SRV_PID
P=$SRV_PORT
U=http://127.0.0.1:$P
A="Authorization: Bearer $KEY"

# A key does not let pages of other sites in: Origin is checked on every route, open ones too.
check_eq "with a key: Origin evil, valid key, GET /sandboxes -> 403" 403 \
	"$(code -H "$A" -H "Origin: http://evil.example" "$U/sandboxes")"
check_eq "with a key: Origin evil, GET /metrics (open route) -> 403" 403 \
	"$(code -H "Origin: http://evil.example" "$U/metrics")"
check_eq "with a key: any Host (the key is the guard) -> 200" 200 \
	"$(code -H "$A" -H "Host: agentcell.internal:$P" "$U/sandboxes")"
check_eq "with a key: text/plain body with the key -> 415" 415 \
	"$(code -H "$A" -H 'Content-Type: text/plain' -d '{}' "$U/run")"

# Authentication on the headers: 20 clients without a key announce 16 MB bodies and send
# 4 MiB each (80 MiB in all). Each is answered 401 at once, and nothing of it is kept.
RSS0=$(rss_kb "$KEYED_PID")
held "$P" 20 "" 16000000 4194304
RSS1=$(rss_kb "$KEYED_PID")
release
check_eq "20 half-sent bodies without a key: all answered 401" '{"401":20}' "$(jq -c .statuses <<<"$R")"
check_le "and at once (within 5 s, before their bodies)" "$(jq -r '.waited|floor' <<<"$R")" 4
check_le "server RSS while they are connected: ${RSS0} kB -> ${RSS1} kB (< +32 MiB)" "$RSS1" $((RSS0 + 32768))
check_eq "a wrong route is refused before the body too (404 to Expect: 100-continue)" 404 \
	"$(code -H "$A" -H "$J" -H 'Expect: 100-continue' --data-binary @<(head -c 100000 /dev/zero | tr '\0' ' ') "$U/nowhere")"

# With the key: the server keeps at most 64 MiB of bodies. 12 clients announce 16 MB each
# and send 8 MiB: the first few are admitted, the rest answered 503 + Retry-After at once.
held "$P" 12 "$KEY" 16000000 8388608
echo "# budget: $R"
ADMITTED=$(jq -r .open <<<"$R")
BUSY=$(jq -r '.statuses["503"] // 0' <<<"$R")
check_le "with a key, 12 x 16 MB announced: at most 4 admitted at once (64 MiB budget) [$ADMITTED]" "$ADMITTED" 4
check_eq "the others: 503 at once" 12 "$((ADMITTED + BUSY))"
check_eq "each 503 says when to retry (Retry-After)" "$BUSY" "$(jq -r .retry_after <<<"$R")"
RSS2=$(rss_kb "$KEYED_PID")
check_le "server RSS while they hold: ${RSS0} kB -> ${RSS2} kB (< +100 MiB, not 12 x 16 MB)" "$RSS2" $((RSS0 + 102400))
check_eq "meanwhile a small request is served" 200 "$(code -H "$A" "$U/sandboxes")"
release
# Their share is given back: a 2 MiB body is read again (400: it is not JSON).
BIG=$AC_TMP/big.json
head -c 2097152 /dev/zero | tr '\0' ' ' >"$BIG"
check "after they left, a 2 MiB body is accepted again (400 invalid JSON, not 503)" \
	wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H '$A' -H '$J' --data-binary @$BIG $U/run)\" = 400 ]"
check "the keyed server survived" kill -0 "$KEYED_PID"
stop_server keyed "$KEYED_PID"
