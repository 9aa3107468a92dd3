#!/usr/bin/python3
"""A test Nomad agent (server + one client node) that speaks Nomad's HTTP API (see README.md).

    fake_nomad.py --state-dir DIR [--agentcell BIN] [--home DIR] [--port N] [--tls]
                  [--verify-https-client] [--acl] [--tokens FILE] [--namespace NAME]...
                  [--drivers docker,podman,exec] [--node-memory 4096] [--node-cpu 4000]
                  [--node-cores 4] [--datacenter dc1] [--delay-scale 1.0] [--early-ws-upgrade]

Once it listens it writes DIR/port and prints "listening on http(s)://127.0.0.1:PORT".
Allocations run as native agentcell sandboxes of --home (default DIR/home). SIGTERM or
SIGINT: stops serving, stops every task, removes every sandbox it made, exits 0.
Python 3 standard library only (plus the openssl CLI for --tls).

The HTTP routing, ACL, blocking queries, fs/logs streams and the exec WebSocket live here;
jobs, evaluations and the scheduler in njobs.py; the client (sandboxes, tasks, the alloc
dir) in nclient.py; body decoding and driver config schemas in ndecode.py. The WebSocket
framing (kws.py) and the certificates (kpki.py) are tests/k8s's.

Over 800 lines on purpose: the fake server's routes share one state object and its lock;
split, each part would import all of it back.
"""

import argparse
import base64
import copy
import http.server
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(HERE, "..", "k8s"))
import kpki  # noqa: E402
import kws  # noqa: E402
import nclient  # noqa: E402
import ndecode  # noqa: E402
import nexec  # noqa: E402
import njobs  # noqa: E402
from njobs import ApiError, omitempty  # noqa: E402

VERSION = "1.10.0"
GO_DUR = re.compile(r"^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")
DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}

CAPS_READ = {"list-jobs", "parse-job", "read-job", "csi-list-volume", "csi-read-volume", "read-job-scaling",
             "list-scaling-policies", "read-scaling-policy", "host-volume-read"}
CAPS_WRITE = CAPS_READ | {"scale-job", "submit-job", "dispatch-job", "read-logs", "read-fs", "alloc-exec",
                          "alloc-lifecycle", "csi-mount-volume", "csi-write-volume", "submit-recommendation",
                          "host-volume-create"}


def log(msg):
    sys.stderr.write("fake-nomad: %s\n" % msg)
    sys.stderr.flush()


def parse_go_duration(s):
    if s == "0":
        return 0.0
    neg = s.startswith("-")
    body = s.lstrip("+-")
    if not GO_DUR.match(body):
        raise ValueError(s)
    total = 0.0
    for num, _, unit in re.findall(r"([0-9]*(\.[0-9]*)?)(ns|us|µs|ms|s|m|h)", body):
        total += float(num or 0) * DUR_UNITS[unit]
    return -total if neg else total


def parse_bool(v):
    """strconv.ParseBool."""
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError('strconv.ParseBool: parsing "%s": invalid syntax' % v)


# ====================================================================== ACL tokens

class Tokens:
    def __init__(self, state_dir, path, enabled):
        self.enabled = enabled
        if path:
            with open(path) as f:
                raw = json.load(f)
        else:
            raw = {}
            for name, typ, pol in (("management", "management", None), ("read-only", "client", "read"),
                                   ("write", "client", "write")):
                raw[njobs.new_id()] = {"Name": name, "Type": typ, "Namespaces": {"*": pol} if pol else None,
                                       "Node": "read", "Agent": "read"}
        self.tokens = {}
        t = njobs.rfc3339(njobs.now_ns())
        for secret, info in raw.items():
            tok = {"AccessorID": info.get("AccessorID") or njobs.new_id(), "SecretID": secret,
                   "Name": info.get("Name", ""), "Type": info.get("Type", "client"),
                   "Policies": info.get("Policies") or ([] if info.get("Type") == "management" else [info.get("Name", "")]),
                   "Roles": None, "Global": False, "CreateTime": t, "ExpirationTime": None,
                   "CreateIndex": 7, "ModifyIndex": 7,
                   "_ns": info.get("Namespaces") or {}, "_node": info.get("Node"), "_agent": info.get("Agent")}
            self.tokens[secret] = tok
        os.makedirs(state_dir, exist_ok=True)
        _write(os.path.join(state_dir, "tokens"), json.dumps(
            {s: {k: v for k, v in tk.items() if not k.startswith("_")} | {"Namespaces": tk["_ns"]}
             for s, tk in self.tokens.items()}, indent=1))
        for name, fname in (("management", "mgmt-token"), ("read-only", "ro-token"), ("write", "write-token")):
            s = next((s for s, tk in self.tokens.items() if tk["Name"] == name), None)
            if s:
                _write(os.path.join(state_dir, fname), s + "\n")

    def resolve(self, secret):
        """-> token dict, None (anonymous) or raises ApiError 403 (unknown)."""
        if not self.enabled:
            # Every request may do anything; the name still says which token was sent.
            known = self.tokens.get(secret) if secret else None
            return {"Type": "management",
                    "Name": known["Name"] if known else ("unknown" if secret else "anonymous")}
        if not secret:
            return None
        tok = self.tokens.get(secret)
        if tok is None:
            raise ApiError(403, "Permission denied")
        return tok

    @staticmethod
    def ns_caps(tok, ns):
        if tok is None:
            return set()
        if tok["Type"] == "management":
            return None  # everything
        pols = tok.get("_ns") or {}
        pol = pols.get(ns)
        if pol is None:
            for pat, p in pols.items():
                if "*" in pat and re.fullmatch(re.escape(pat).replace(r"\*", ".*"), ns):
                    pol = p
                    break
        if pol is None:
            return set()
        if isinstance(pol, list):
            caps = set(pol)
            if "read" in caps:
                caps |= CAPS_READ
            if "write" in caps:
                caps |= CAPS_WRITE
            return caps
        return {"read": CAPS_READ, "write": CAPS_WRITE, "deny": set()}.get(pol, set())

    def allow_ns(self, tok, ns, *caps):
        c = self.ns_caps(tok, ns)
        return c is None or any(x in c for x in caps)

    def allow(self, tok, area, level):
        if tok is None:
            return False
        if tok["Type"] == "management":
            return True
        have = tok.get("_" + area)
        return have == "write" or (have == "read" and level == "read")


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


# ====================================================================== the agent

class Agent:
    def __init__(self, args):
        self.args = args
        self.state_dir = os.path.abspath(args.state_dir)
        os.makedirs(os.path.join(self.state_dir, "jobs"), exist_ok=True)
        self.home = os.path.abspath(args.home) if args.home else os.path.join(self.state_dir, "home")
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        self.agentcell = os.path.abspath(args.agentcell) if args.agentcell else None
        self.state = njobs.State(args, log)
        self.client = nclient.Client(self.state, self.agentcell, self.home, self.state_dir, log) \
            if self.agentcell else None
        self.tokens = Tokens(self.state_dir, args.tokens, args.acl)
        self.requests = deque(maxlen=2000)
        self.faults = []
        self.lock = threading.Lock()  # requests, faults, execs.log
        self.closing = False
        self.early_upgrade = args.early_ws_upgrade

    def record_exec(self, entry):
        with self.lock:
            with open(os.path.join(self.state_dir, "execs.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")

    def take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f["times"] == 0:
                    continue
                if f.get("method") and f["method"].upper() != method:
                    continue
                if not re.search(f.get("path", ""), path):
                    continue
                if f["times"] > 0:
                    f["times"] -= 1
                f["hits"] = f.get("hits", 0) + 1
                return dict(f)
        return None


class Stop(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-nomad"
    sys_version = ""
    agent = None  # set by main

    # ---------------------------------------------------------------- plumbing

    def setup(self):
        self.tls_ok = True
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                if os.environ.get("FAKE_NOMAD_VERBOSE"):
                    log("TLS handshake failed: %s" % e)
                self.tls_ok = False
            self.request.settimeout(None)
        super().setup()

    def handle(self):
        if not self.tls_ok:
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout, Stop, OSError):
            pass

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_NOMAD_VERBOSE"):
            log("%s %s" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def send_response(self, code, message=None):
        """As Go's net/http: no Server header."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def send_body(self, code, body, ctype, headers=None):
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.status_sent = code

    def send_json(self, obj, index=None, meta=True, code=200, text=None):
        if text is None:
            if "pretty" in self.q and (self.q["pretty"][0] != "0"):
                text = json.dumps(obj, indent=4) + "\n"
            else:
                text = json.dumps(obj, separators=(",", ":"))
        h = {}
        if index is not None:
            h["X-Nomad-Index"] = str(max(1, index))
            if meta:
                h["X-Nomad-KnownLeader"] = "true"
                h["X-Nomad-LastContact"] = "0"
        self.send_body(code, text.encode(), "application/json", h)

    def send_error_text(self, e):
        self.send_body(e.code, e.text.encode(), "text/plain; charset=utf-8" if e.text else None)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def qget(self, k, default=""):
        v = self.q.get(k)
        return v[0] if v else default

    # ---------------------------------------------------------------- dispatch

    def dispatch(self, method):
        self.status_sent = None
        self.tok = None
        self.tok_name = None
        a = self.agent
        upgrade = "websocket" in (self.headers.get("Upgrade") or "").lower()
        self.body = b""
        if not upgrade:
            try:
                self.body = self.read_body()
            except (ValueError, OSError):
                self.close_connection = True
                return
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self.q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            if path.startswith("/_test/"):
                return self.control(method, path)
            f = a.take_fault(method, path)
            if f:
                if f.get("close"):
                    self.close_connection = True
                    self.request.shutdown(socket.SHUT_RDWR)
                    return
                raise ApiError(int(f.get("status", 500)), f.get("body", "injected failure"))
            self.route(method, path)
        except ApiError as e:
            if self.status_sent is None:
                self.send_error_text(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a bug of the fake is a 500 the test sees
            traceback.print_exc()
            if self.status_sent is None:
                self.send_error_text(ApiError(500, "fake nomad bug: %r" % e))
        finally:
            if not path.startswith("/_test/"):
                with a.lock:
                    a.requests.append({"method": method, "path": path, "query": url.query,
                                       "token": self.tok_name, "status": self.status_sent, "time": time.time(),
                                       "body": self.body[:65536].decode(errors="replace") if self.body else None})

    # ---------------------------------------------------------------- auth, region, blocking

    def auth(self, secret_from_body=None):
        """The request's token (None: anonymous). Raises 403 for an unknown token."""
        secret = (self.headers.get("X-Nomad-Token") or "").strip()
        if not secret:
            parts = (self.headers.get("Authorization") or "").split(" ")
            if len(parts) > 1 and parts[0].lower() == "bearer":
                secret = " ".join(parts[1:]).strip().split(" ")[0]
        if not secret and secret_from_body:
            secret = secret_from_body
        if getattr(self, "ws_token", None):
            secret = secret or self.ws_token
        tok = self.agent.tokens.resolve(secret)
        self.tok = tok
        self.tok_name = tok["Name"] if tok else "anonymous"
        return tok

    def need_ns(self, ns, *caps):
        if not self.agent.tokens.allow_ns(self.tok, ns, *caps):
            raise ApiError(403, "Permission denied")

    def need(self, area, level):
        if not self.agent.tokens.allow(self.tok, area, level):
            raise ApiError(403, "Permission denied")

    def region(self, *more):
        r = self.qget("region")
        for x in (r,) + more:
            if x and x != "global":
                raise ApiError(500, "No path to region")

    def namespace(self):
        return self.qget("namespace") or "default"

    def parse_query(self):
        """stale, wait and index as Nomad's parse(): -> (min_index, wait seconds)."""
        if "stale" in self.q:
            v = self.qget("stale")
            if v:
                try:
                    parse_bool(v)
                except ValueError:
                    raise ApiError(400, "Expect `true` or `false` for `stale` query string parameter")
        wait = 300.0
        if self.qget("wait"):
            try:
                wait = parse_go_duration(self.qget("wait"))
            except ValueError:
                raise ApiError(400, "Invalid wait time")
        idx = 0
        if self.qget("index"):
            try:
                idx = int(self.qget("index"))
                if idx < 0:
                    raise ValueError
            except ValueError:
                raise ApiError(400, "Invalid index")
        wait = min(max(wait, 0.0), 600.0) if wait else 300.0
        wait += random.uniform(0, wait / 16)
        return idx, wait

    def blocking(self, compute, meta=True):
        """Nomad's blockingRPC: compute() -> (index, obj) under the state lock; answered when
        the index passes ?index= or ?wait= ends. Raises the ApiError compute raises."""
        min_idx, wait = self.parse_query()
        st = self.agent.state
        deadline = time.monotonic() + wait
        with st.cond:
            while True:
                idx, obj = compute()
                left = deadline - time.monotonic()
                if min_idx == 0 or idx > min_idx or left <= 0 or self.agent.closing:
                    text = json.dumps(obj, indent=4) + "\n" if "pretty" in self.q and self.qget("pretty") != "0" \
                        else json.dumps(obj, separators=(",", ":"))
                    break
                st.cond.wait(min(left, 1.0))
        self.send_json(None, index=idx, meta=meta, text=text)

    # ---------------------------------------------------------------- routes

    def route(self, method, path):
        a = self.agent
        st = a.state
        if path == "/v1/status/leader":
            return self.send_json("127.0.0.1:4647")
        if path == "/v1/status/peers":
            return self.send_json(["127.0.0.1:4647"])
        if path == "/v1/regions":
            return self.send_json(["global"])
        if path == "/v1/agent/health":
            return self.send_json({"client": {"ok": True, "message": "ok"}, "server": {"ok": True, "message": "ok"}})
        if not path.startswith("/v1/"):
            raise ApiError(404, "")
        if path == "/v1/agent/self":
            self.region()
            self.auth()
            self.need("agent", "read")
            return self.send_json(self.agent_self())
        if path in ("/v1/acl/token/self",):
            if not a.tokens.enabled:
                raise ApiError(400, "ACL support disabled")
            tok = self.auth()
            if tok is None:
                raise ApiError(403, "Permission denied")
            return self.send_json({k: v for k, v in tok.items() if not k.startswith("_")}, index=7)
        if path == "/v1/namespaces":
            self.region()
            tok = self.auth()
            with st.cond:
                out = [copy.deepcopy(n) for k, n in sorted(st.namespaces.items())
                       if a.tokens.ns_caps(tok, k) is None or a.tokens.ns_caps(tok, k)]
                idx = st.tables["namespaces"]
            return self.send_json(out, index=idx)
        m = re.fullmatch(r"/v1/namespace/(.+)", path)
        if m:
            self.region()
            tok = self.auth()
            if not (a.tokens.ns_caps(tok, m.group(1)) is None or a.tokens.ns_caps(tok, m.group(1))):
                raise ApiError(403, "Permission denied")
            with st.cond:
                ns = copy.deepcopy(st.namespaces.get(m.group(1)))
                idx = st.tables["namespaces"]
            if ns is None:
                raise ApiError(404, "Namespace not found")
            return self.send_json(ns, index=idx)
        if path == "/v1/nodes":
            self.region()
            self.auth()
            self.need("node", "read")
            return self.blocking(lambda: (st.tables["nodes"], [self.node_stub()]))
        m = re.fullmatch(r"/v1/node/([^/]+)", path)
        if m:
            self.region()
            self.auth()
            self.need("node", "read")

            def one():
                if m.group(1) != st.node["ID"]:
                    raise ApiError(404, "node not found")
                return st.tables["nodes"], st.node
            return self.blocking(one)
        if path == "/v1/jobs":
            if method == "GET":
                return self.jobs_list()
            if method in ("PUT", "POST"):
                return self.job_register(None)
            raise ApiError(405, "Invalid method")
        if path.startswith("/v1/job/"):
            return self.job_specific(method, path[len("/v1/job/"):])
        if path == "/v1/allocations":
            return self.allocs_list()
        if path.startswith("/v1/allocation/"):
            rest = path[len("/v1/allocation/"):].split("/")
            if len(rest) == 1:
                if method != "GET":
                    raise ApiError(405, "Invalid method")
                return self.alloc_get(rest[0])
            raise ApiError(404, "resource not found")
        if path == "/v1/evaluations":
            return self.evals_list()
        if path.startswith("/v1/evaluation/"):
            rest = path[len("/v1/evaluation/"):].split("/")
            if len(rest) == 2 and rest[1] == "allocations":
                return self.eval_allocs(rest[0])
            if len(rest) == 1:
                return self.eval_get(rest[0])
            raise ApiError(404, "resource not found")
        if path.startswith("/v1/client/fs/"):
            return self.fs(method, path[len("/v1/client/fs/"):])
        if path.startswith("/v1/client/allocation/"):
            tokens = path[len("/v1/client/allocation/"):].split("/")
            if len(tokens) != 2:
                raise ApiError(404, "resource not found")
            if tokens[1] == "exec":
                return self.exec_ws(tokens[0])
            raise ApiError(404, "resource not found")
        if path == "/v1/system/gc":
            if method not in ("PUT", "POST"):
                raise ApiError(405, "Invalid method")
            self.region()
            tok = self.auth()
            if tok is None or tok["Type"] != "management":
                raise ApiError(403, "Permission denied")
            self.run_gc()
            return self.send_body(200, b"", None)
        raise ApiError(404, "")

    def agent_self(self):
        a = self.agent
        return {"config": {"Region": "global", "Datacenter": a.state.datacenter, "NodeName": "fake-node",
                           "Version": {"Version": VERSION, "VersionPrerelease": "", "VersionMetadata": "fake",
                                       "Revision": "0" * 40},
                           "ACL": {"Enabled": a.tokens.enabled},
                           "TLSConfig": {"EnableHTTP": a.args.tls, "VerifyHTTPSClient": a.args.verify_https_client},
                           "Server": {"Enabled": True}, "Client": {"Enabled": True}},
                "member": {"Name": "fake-node.global", "Addr": "127.0.0.1", "Port": 4648, "Status": "alive",
                           "Tags": {"region": "global", "dc": a.state.datacenter, "role": "nomad",
                                    "build": VERSION}},
                "stats": {"nomad": {"leader": "true", "server": "true", "known_regions": "1"},
                          "client": {"node_id": a.state.node["ID"], "known_servers": "127.0.0.1:4647"}}}

    def node_stub(self):
        n = self.agent.state.node
        return {"Address": "127.0.0.1", "ID": n["ID"], "Attributes": None, "Datacenter": n["Datacenter"],
                "Name": n["Name"], "NodeClass": "", "NodePool": n["NodePool"], "Version": VERSION,
                "Drain": False, "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "",
                "Drivers": n["Drivers"], "NodeResources": None, "ReservedResources": None, "LastDrain": None,
                "CreateIndex": n["CreateIndex"], "ModifyIndex": n["ModifyIndex"]}

    # ---------------------------------------------------------------- jobs

    def ns_list(self, ns, cap):
        """Namespaces a list request covers: ns, or every allowed one for "*"."""
        st = self.agent.state
        if ns == "*":
            return [n for n in st.namespaces if self.agent.tokens.allow_ns(self.tok, n, cap)]
        self.need_ns(ns, cap)
        return [ns]

    def jobs_list(self):
        self.region()
        self.auth()
        st = self.agent.state
        nss = self.ns_list(self.namespace(), "list-jobs")
        prefix = self.qget("prefix")
        try:
            meta = parse_bool(self.qget("meta")) if self.qget("meta") else False
        except ValueError as e:
            raise ApiError(500, 'Failed to parse value of "meta" (%s) as a bool: %s' % (self.qget("meta"), e))

        def compute():
            out = [st.job_stub(j, meta) for (ns, jid), j in sorted(st.jobs.items())
                   if ns in nss and jid.startswith(prefix)]
            return st.tables["jobs"], out
        return self.blocking(compute)

    def job_specific(self, method, rest):
        for suffix, fn in (("/allocations", self.job_allocs), ("/evaluations", self.job_evals),
                           ("/summary", self.job_summary)):
            if rest.endswith(suffix):
                if method != "GET":
                    raise ApiError(405, "Invalid method")
                return fn(rest[:-len(suffix)])
        if method == "GET":
            return self.job_get(rest)
        if method in ("PUT", "POST"):
            return self.job_register(rest)
        if method == "DELETE":
            return self.job_deregister(rest)
        raise ApiError(405, "Invalid method")

    def job_get(self, jid):
        self.region()
        self.auth()
        ns = self.namespace()
        self.need_ns(ns, "read-job")
        st = self.agent.state

        def compute():
            j = st.jobs.get((ns, jid))
            if j is None:
                raise ApiError(404, "job not found")
            return j["ModifyIndex"], j
        return self.blocking(compute)

    def job_allocs(self, jid):
        self.region()
        self.auth()
        ns = self.namespace()
        self.need_ns(ns, "read-job")
        st = self.agent.state

        def compute():
            out = [st.alloc_stub(x) for x in sorted(st.allocs.values(), key=lambda x: x["CreateIndex"])
                   if x["JobID"] == jid and x["Namespace"] == ns]
            return st.tables["allocs"], out
        return self.blocking(compute)

    def job_evals(self, jid):
        self.region()
        self.auth()
        ns = self.namespace()
        self.need_ns(ns, "read-job")
        st = self.agent.state

        def compute():
            out = [omitempty(e) for e in sorted(st.evals.values(), key=lambda x: x["CreateIndex"])
                   if e["JobID"] == jid and e["Namespace"] == ns]
            return st.tables["evals"], out
        return self.blocking(compute)

    def job_summary(self, jid):
        self.region()
        self.auth()
        ns = self.namespace()
        self.need_ns(ns, "read-job")
        st = self.agent.state

        def compute():
            j = st.jobs.get((ns, jid))
            if j is None:
                raise ApiError(404, "job not found")
            s = st.job_summary(j)
            return max(st.tables["allocs"], j["ModifyIndex"]), s
        return self.blocking(compute)

    def job_register(self, path_id):
        a = self.agent
        st = a.state
        self.region()
        try:
            req = ndecode.decode_register(self.body)
        except ndecode.DecodeError as e:
            raise ApiError(400, str(e))
        job = req.get("Job")
        if job is None:
            raise ApiError(400, "Job must be specified")
        if job.get("ID") is None:
            raise ApiError(400, "Job ID hasn't been provided")
        if path_id is not None and job["ID"] != path_id:
            raise ApiError(400, "Job ID does not match name")
        try:
            _write(os.path.join(a.state_dir, "jobs", job["ID"].replace("/", "%2F") + ".json"),
                   self.body.decode(errors="replace"))
        except OSError as e:
            log("cannot record the job body: %s" % e)
        self.region(req.get("Region") or "", job.get("Region") or "")
        ns = self.qget("namespace") or req.get("Namespace") or job.get("Namespace") or "default"
        job["Namespace"] = ns
        self.auth(req.get("SecretID"))
        njobs.canonicalize(job)
        job["Region"] = "global"
        with st.cond:
            errs = njobs.validate(job, st.namespaces, st.pools)
        if errs:
            raise ApiError(500, ndecode.multierror(errs))
        self.need_ns(ns, "submit-job")
        warnings = []
        for tg in job["TaskGroups"]:
            for t in tg["Tasks"]:
                if t["Resources"].get("MemoryMaxMB"):
                    warnings.append('Memory oversubscription is not enabled; Task "%s.%s" memory_max value will be '
                                    'ignored. Update the Scheduler Configuration to allow oversubscription.'
                                    % (tg["Name"], t["Name"]))
        wtext = ""
        if warnings:
            wtext = ("1 warning:\n" if len(warnings) == 1 else "%d warnings:\n" % len(warnings)) + \
                "".join("\n* " + w for w in warnings)
        if req.get("EnforceIndex"):
            with st.cond:
                old = st.jobs.get((ns, job["ID"]))
                want = req.get("JobModifyIndex") or 0
                if old is not None:
                    if want == 0:
                        raise ApiError(500, "Enforcing job modify index 0: job already exists")
                    if want != old["JobModifyIndex"]:
                        raise ApiError(500, "Enforcing job modify index %d: job exists with conflicting job "
                                            "modify index: %d" % (want, old["JobModifyIndex"]))
                elif want != 0:
                    raise ApiError(500, "Enforcing job modify index %d: job does not exist" % want)
        resp = st.register(job, wtext)
        self.send_json(resp, index=resp["Index"], meta=False)

    def job_deregister(self, jid):
        self.region()
        purge = False
        if self.qget("purge"):
            try:
                purge = parse_bool(self.qget("purge"))
            except ValueError as e:
                raise ApiError(500, 'Failed to parse value of "purge" (%s) as a bool: %s' % (self.qget("purge"), e))
        self.auth()
        ns = self.namespace()
        self.need_ns(ns, "submit-job", "purge-job")
        resp = self.agent.state.deregister(ns, jid, purge)
        self.send_json(resp, index=resp["Index"], meta=False)

    # ---------------------------------------------------------------- allocs, evals

    def allocs_list(self):
        self.region()
        self.auth()
        st = self.agent.state
        nss = self.ns_list(self.namespace(), "read-job")
        prefix = self.qget("prefix")
        no_states = self.qget("task_states") in ("false", "0")

        def compute():
            out = []
            for x in sorted(st.allocs.values(), key=lambda x: x["ID"]):
                if x["Namespace"] in nss and x["ID"].startswith(prefix):
                    s = st.alloc_stub(x)
                    if no_states:
                        s["TaskStates"] = None
                    out.append(s)
            return st.tables["allocs"], out
        return self.blocking(compute)

    def alloc_get(self, aid):
        self.region()
        self.auth()
        st = self.agent.state

        def compute():
            x = st.allocs.get(aid)
            if x is None:
                raise ApiError(404, "alloc not found")
            self.need_ns(x["Namespace"], "read-job")
            return x["ModifyIndex"], omitempty(st.alloc_full(x))
        return self.blocking(compute)

    def evals_list(self):
        self.region()
        self.auth()
        st = self.agent.state
        nss = self.ns_list(self.namespace(), "read-job")
        prefix = self.qget("prefix")
        job = self.qget("job")
        status = self.qget("status")

        def compute():
            out = [omitempty(e) for e in sorted(st.evals.values(), key=lambda x: x["ID"])
                   if e["Namespace"] in nss and e["ID"].startswith(prefix) and (not job or e["JobID"] == job)
                   and (not status or e["Status"] == status)]
            return st.tables["evals"], out
        return self.blocking(compute)

    def eval_get(self, eid):
        self.region()
        self.auth()
        st = self.agent.state

        def compute():
            e = st.evals.get(eid)
            if e is None:
                raise ApiError(404, "eval not found")
            self.need_ns(e["Namespace"], "read-job")
            out = omitempty(e)
            return e["ModifyIndex"], out
        return self.blocking(compute)

    def eval_allocs(self, eid):
        self.region()
        self.auth()
        st = self.agent.state

        def compute():
            e = st.evals.get(eid)
            if e is not None:
                self.need_ns(e["Namespace"], "read-job")
            out = [st.alloc_stub(x) for x in st.allocs.values() if x["EvalID"] == eid]
            return st.tables["allocs"], out
        return self.blocking(compute)

    # ---------------------------------------------------------------- fs

    def _fs_alloc(self, aid, *caps):
        """The server-side checks of the fs RPCs: auth, the alloc, the namespace capability."""
        st = self.agent.state
        self.auth()
        with st.cond:
            x = st.allocs.get(aid)
            ns = x["Namespace"] if x else None
        if x is None or self.agent.client is None or self.agent.client.runner(aid) is None:
            raise ApiError(404, 'Unknown allocation "%s"' % aid)
        self.need_ns(ns, *caps)
        return x

    def fs(self, method, rest):
        cl = self.agent.client
        kind, _, aid = rest.partition("/")
        if kind not in ("ls", "stat", "cat", "readat", "stream", "logs"):
            raise ApiError(404, "Invalid method")
        if not aid:
            raise ApiError(400, "must provide a valid alloc id")
        self.region()
        if kind == "ls":
            path = self.qget("path") or "/"
            self._fs_alloc(aid, "read-fs")
            return self.send_json(cl.ls(aid, path))
        if kind == "stat":
            path = self.qget("path")
            if not path:
                raise ApiError(400, "must provide a file name")
            self._fs_alloc(aid, "read-fs")
            return self.send_json(cl.stat(aid, path))
        if kind in ("cat", "readat"):
            path = self.qget("path")
            if not path:
                raise ApiError(400, "must provide a file name")
            offset, limit = 0, 0
            if kind == "readat":
                try:
                    offset = int(self.qget("offset"))
                except ValueError as e:
                    raise ApiError(500, 'error parsing offset: strconv.ParseInt: parsing "%s": invalid syntax'
                                   % self.qget("offset")) from e
                if self.qget("limit"):
                    try:
                        limit = int(self.qget("limit"))
                    except ValueError as e:
                        raise ApiError(500, 'error parsing limit: strconv.ParseInt: parsing "%s": invalid syntax'
                                       % self.qget("limit")) from e
            self._fs_alloc(aid, "read-fs")
            try:
                f = cl.open_read(aid, path)
            except ApiError as e:
                if e.code == 404 and "no such file" in e.text:
                    e.code = 400  # the stream RPC answers a failed Stat with 400
                raise
            return self.stream_plain(f, offset, limit)
        if kind == "stream":
            raise ApiError(501, "the test agent does not implement /v1/client/fs/stream")
        return self.logs(aid)

    def stream_plain(self, f, offset, limit):
        """cat/readat: the file's bytes, chunked, content type sniffed (noxssrw)."""
        try:
            skip = offset
            while skip > 0:
                b = f.read(min(skip, 65536))
                if not b:
                    break
                skip -= len(b)
            first = f.read(65536 if not limit else min(limit, 65536))
            ctype = nclient.sniff(first)
            if ctype.startswith("text/html"):
                ctype = "text/plain; charset=utf-8"
            self.start_chunked(ctype)
            sent = 0
            data = first
            while data:
                self.chunk(data)
                sent += len(data)
                if limit and sent >= limit:
                    break
                data = f.read(65536 if not limit else min(limit - sent, 65536))
            self.end_chunked()
        finally:
            f.close()

    def start_chunked(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.status_sent = 200

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def logs(self, aid):
        """/v1/client/fs/logs: framed (StreamFrame JSON objects) or plain; follow streams
        until the client goes away or the alloc dir is destroyed (as Nomad: a finished task
        does not end a followed stream)."""
        task = self.qget("task")
        if not task:
            raise ApiError(400, "must provide task name")
        try:
            follow = parse_bool(self.qget("follow")) if self.qget("follow") else False
        except ValueError as e:
            raise ApiError(400, "failed to parse follow field to boolean: %s" % e)
        try:
            plain = parse_bool(self.qget("plain")) if self.qget("plain") else False
        except ValueError as e:
            raise ApiError(400, "failed to parse plain field to boolean: %s" % e)
        ltype = self.qget("type")
        if ltype not in ("stdout", "stderr"):
            raise ApiError(400, "must provide log type (stdout/stderr)")
        offset = 0
        if self.qget("offset"):
            try:
                offset = int(self.qget("offset"))
            except ValueError:
                raise ApiError(400, 'error parsing offset: strconv.ParseInt: parsing "%s": invalid syntax'
                               % self.qget("offset"))
        origin = self.qget("origin") or "start"
        if origin not in ("start", "end"):
            raise ApiError(400, "origin must be start or end")
        x = self._fs_alloc(aid, "read-logs", "read-fs")
        ts = (x.get("TaskStates") or {}).get(task)
        if ts is None:
            raise ApiError(400, 'unknown task name "%s"' % task)
        if ts["StartedAt"] == njobs.ZERO_TIME:
            raise ApiError(404, 'task "%s" not started yet. No logs available' % task)
        r = self.agent.client.runner(aid)
        rel = "alloc/logs/%s.%s.0" % (task, ltype)
        host = os.path.join(r.dir, rel)
        try:
            f = open(host, "rb")
        except OSError:
            raise ApiError(404, 'log entry for task "%s" and log type "%s" not found' % (task, ltype))
        try:
            size = os.fstat(f.fileno()).st_size
            pos = max(0, size - offset) if origin == "end" else min(offset, size)
            f.seek(pos)
            self.start_chunked("text/plain" if plain else "application/json")
            last_send = time.monotonic()
            while True:
                data = f.read(64 * 1024)
                if data:
                    pos += len(data)
                    if plain:
                        self.chunk(data)
                    else:
                        self.chunk(json.dumps({"Offset": pos, "Data": base64.b64encode(data).decode(),
                                               "File": rel}, separators=(",", ":")).encode())
                    last_send = time.monotonic()
                    continue
                if not follow or self.agent.closing:
                    break
                if r.destroyed or not os.path.exists(host):
                    if not plain:
                        self.chunk(json.dumps({"Offset": pos, "File": rel, "FileEvent": "file deleted"},
                                              separators=(",", ":")).encode())
                    break
                # Heartbeat frames ({}) every second while idle; also finds a gone client.
                if time.monotonic() - last_send >= 1.0:
                    if not plain:
                        self.chunk(b"{}")
                    else:
                        self.wfile.flush()
                        if _peer_gone(self.request):
                            raise Stop()
                    last_send = time.monotonic()
                time.sleep(0.1)
            self.end_chunked()
        finally:
            f.close()

    # ---------------------------------------------------------------- exec

    def exec_ws(self, aid):
        a = self.agent
        task = self.qget("task")
        cmd_json = self.qget("command")
        tty_s = self.qget("tty")
        entry = {"time": time.time(), "alloc": aid, "task": task, "command_raw": cmd_json, "tty_raw": tty_s}
        pre_err = None
        command, tty = None, False
        try:
            command = json.loads(cmd_json)
            if not (command is None or isinstance(command, list) and all(isinstance(c, str) for c in command)):
                raise TypeError("json: cannot unmarshal %s into Go value of type []string" % (
                    {str: "string", dict: "object", bool: "bool", int: "number", float: "number"}.get(
                        type(command), "array")))
        except json.JSONDecodeError as e:
            pre_err = ApiError(500, "failed to marshal command into json: %s" % (
                "unexpected end of JSON input" if not cmd_json.strip() else
                ndecode._go_syntax_error(cmd_json, e)))
        except TypeError as e:
            pre_err = ApiError(500, "failed to marshal command into json: %s" % e)
        if pre_err is None and tty_s:
            try:
                tty = parse_bool(tty_s)
            except ValueError as e:
                pre_err = ApiError(500, "tty value is not a boolean: %s" % e)
        entry.update({"command": command, "tty": tty})
        if "websocket" not in (self.headers.get("Upgrade") or "").lower() or \
                "upgrade" not in (self.headers.get("Connection") or "").lower():
            entry["result"] = "no upgrade"
            a.record_exec(entry)
            if pre_err and not a.early_upgrade:
                raise pre_err
            raise ApiError(400, "websocket: the client is not using the websocket protocol: 'upgrade' token not "
                                "found in 'Connection' header")
        key = self.headers.get("Sec-WebSocket-Key")
        if self.headers.get("Sec-WebSocket-Version") != "13" or not key:
            entry["result"] = "bad handshake"
            a.record_exec(entry)
            raise ApiError(400, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
                           if self.headers.get("Sec-WebSocket-Version") != "13" else
                           "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank")
        if pre_err and not a.early_upgrade:
            entry["result"] = "error %d: %s" % (pre_err.code, pre_err.text)
            a.record_exec(entry)
            raise pre_err
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", kws.accept_key(key.strip()))
        self.end_headers()
        self.wfile.flush()
        self.status_sent = 101
        self.close_connection = True
        ws = nexec.WsConn(self.request)
        try:
            err = pre_err
            if err is None and self.qget("ws_handshake"):
                try:
                    if parse_bool(self.qget("ws_handshake")):
                        h = ws.read_json(10.0)
                        if not isinstance(h, dict) or h.get("version") != 1:
                            raise ApiError(400, "unexpected handshake value: %s" % (
                                (h or {}).get("version", 0) if isinstance(h, dict) else 0))
                        hdr = (self.headers.get("X-Nomad-Token") or "").strip()
                        if hdr and hdr != h.get("auth_token"):
                            raise ApiError(400, "handshake auth token mismatched auth header token")
                        self.ws_token = h.get("auth_token") or ""
                except ValueError as e:
                    err = ApiError(400, "ws_handshake value is not a boolean: %s" % e)
                except ApiError as e:
                    err = e
            if err is None:
                try:
                    runner, tspec = self.exec_checks(aid, task, command)
                except ApiError as e:
                    err = e
            if err is not None:
                entry["result"] = "error %d: %s" % (err.code, err.text)
                a.record_exec(entry)
                ws.close_with(1011 if err.code == 500 else 1008, err.text)
                return
            entry["result"] = "started"
            entry["token"] = self.tok_name
            a.record_exec(entry)
            code = nexec.run_exec(a, ws, runner, tspec, command, tty)
            entry2 = dict(entry, result="exited", exit_code=code)
            if code is not None:
                a.record_exec(entry2)
        except (OSError, ssl.SSLError, kws.ProtocolError):
            pass
        finally:
            ws.shutdown()

    def exec_checks(self, aid, task, command):
        """ClientAllocations.Exec (server) then Allocations.Exec (client): -> (runner, task)."""
        a = self.agent
        st = a.state
        self.auth()
        with st.cond:
            x = st.allocs.get(aid)
            x = copy.deepcopy(x) if x else None
        if x is None:
            raise ApiError(404, 'Unknown allocation "%s"' % aid)
        if not a.tokens.allow_ns(self.tok, x["Namespace"], "alloc-exec"):
            raise ApiError(500, "Permission denied")
        if x["ClientStatus"] in njobs.TERMINAL_CLIENT:
            raise ApiError(400, "exec not possible, client status of allocation %s is %s" % (aid, x["ClientStatus"]))
        if not task:
            raise ApiError(400, "must provide task name")
        if not command:
            raise ApiError(400, "command is not present")
        runner = a.client.runner(aid) if a.client else None
        if runner is None:
            raise ApiError(404, 'Unknown allocation "%s"' % aid)
        t = runner.tasks.get(task)
        if t is not None and t.spec["Driver"] == "raw_exec" and \
                not a.tokens.allow_ns(self.tok, x["Namespace"], "alloc-node-exec"):
            raise ApiError(500, "Permission denied")
        ts = (x.get("TaskStates") or {}).get(task)
        if ts is None or t is None:
            raise ApiError(400, 'unknown task name "%s"' % task)
        if ts["StartedAt"] == njobs.ZERO_TIME:
            raise ApiError(404, 'task "%s" not started yet.' % task)
        if ts["State"] != "running" or t.proc is None or t.proc.poll() is not None or runner.sandbox is None:
            raise ApiError(404, 'task "%s" is not running.' % task)
        return runner, t

    # ---------------------------------------------------------------- control (tests)

    def control(self, method, path):
        a = self.agent
        st = a.state
        body = {}
        if self.body:
            try:
                body = json.loads(self.body)
            except ValueError:
                raise ApiError(400, "bad JSON")
        if path == "/_test/sandboxes" and method == "GET":
            out = []
            if a.client:
                with a.client.lock:
                    runners = list(a.client.runners.items())
                for aid, r in runners:
                    with st.cond:
                        x = st.allocs.get(aid)
                    out.append({"alloc": aid, "job": r.job["ID"], "namespace": r.job["Namespace"],
                                "sandbox": r.sandbox, "args": r.sandbox_args,
                                "client_status": x["ClientStatus"] if x else None,
                                "tasks": {n: (t.proc.pid if t.proc and t.proc.poll() is None else None)
                                          for n, t in r.tasks.items()}})
            return self.send_json(out)
        if path == "/_test/kill" and method == "POST":
            r = a.client.runner(body.get("alloc", "")) if a.client else None
            t = r.tasks.get(body.get("task") or next(iter(r.tasks))) if r else None
            if t is None or t.proc is None or t.proc.poll() is not None:
                raise ApiError(404, "no running task")
            sig = body.get("signal", 9)
            sig = getattr(signal, "SIG" + sig.upper().replace("SIG", "")) if isinstance(sig, str) else int(sig)
            if sig == signal.SIGKILL:
                os.killpg(t.proc.pid, sig)
            else:
                os.kill(t.proc.pid, sig)
            return self.send_json({"killed": t.proc.pid, "signal": int(sig)})
        if path == "/_test/pause" and method == "POST":
            st.pause(bool(body.get("placement", True)))
            return self.send_json({"paused": st.paused})
        if path == "/_test/node" and method == "POST":
            with st.cond:
                if "drivers" in body:
                    d = body["drivers"]
                    st.drivers = d.split(",") if isinstance(d, str) else list(d)
                if "memory" in body:
                    st.node_memory = int(body["memory"])
                if "cpu" in body:
                    st.node_cpu = int(body["cpu"])
                st.node = dict(st._make_node(), ID=st.node["ID"])
                st.bump("nodes")
                st._unblock()
            return self.send_json({"drivers": st.drivers, "memory": st.node_memory, "cpu": st.node_cpu})
        if path == "/_test/gc" and method == "POST":
            return self.send_json({"collected": self.run_gc()})
        if path == "/_test/requests":
            with a.lock:
                if method == "DELETE":
                    a.requests.clear()
                    return self.send_json([])
                return self.send_json(list(a.requests))
        if path == "/_test/fail":
            with a.lock:
                if method == "POST":
                    f = {"path": body.get("path", ""), "method": body.get("method"),
                         "status": int(body.get("status", 500)), "body": body.get("body", "injected failure"),
                         "times": int(body.get("times", 1)), "close": bool(body.get("close")), "hits": 0}
                    a.faults.append(f)
                    return self.send_json(f)
                if method == "DELETE":
                    a.faults.clear()
                return self.send_json(list(a.faults))
        raise ApiError(404, "unknown control endpoint")

    def run_gc(self):
        st = self.agent.state
        gone = st.gc()
        if self.agent.client:
            self.agent.client.gc(gone)
        return gone


def _peer_gone(sock):
    """True once the client closed its side (checked while nothing is written)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        if isinstance(sock, ssl.SSLSocket):
            sock.settimeout(0)
            try:
                return sock.recv(1) == b""
            except (ssl.SSLWantReadError, BlockingIOError):
                return False
            finally:
                sock.settimeout(None)
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError, ssl.SSLError):
        return True


# ====================================================================== main

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def make_tls(args, state_dir):
    pki = kpki.make_pki(os.path.join(state_dir, "pki"), client_user="cli.global.nomad", client_group="nomad",
                        server_names=("server.global.nomad", "localhost"), ca_name="fake-nomad-ca",
                        server_cn="server.global.nomad")
    for src, dst in (("ca.crt", "ca.pem"), ("server.crt", "server.pem"), ("server.key", "server-key.pem"),
                     ("client.crt", "client.pem"), ("client.key", "client-key.pem")):
        shutil.copyfile(os.path.join(pki, src), os.path.join(state_dir, dst))
        os.chmod(os.path.join(state_dir, dst), 0o600 if dst.endswith("key.pem") else 0o644)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(state_dir, "server.pem"), os.path.join(state_dir, "server-key.pem"))
    if args.verify_https_client:
        ctx.load_verify_locations(os.path.join(state_dir, "ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--agentcell", default=os.environ.get("AGENTCELL"),
                    help="agentcell binary that runs the tasks (default $AGENTCELL); without it allocs stay pending")
    ap.add_argument("--home", help="AGENTCELL_HOME of the tasks' sandboxes (default STATE_DIR/home)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", action="store_true", help="HTTPS (certificates written to STATE_DIR/*.pem)")
    ap.add_argument("--verify-https-client", action="store_true", help="require a client certificate (with --tls)")
    ap.add_argument("--acl", action="store_true", help="ACLs on: STATE_DIR/mgmt-token, ro-token, write-token")
    ap.add_argument("--tokens", help="tokens file (JSON: secret -> {Name, Type, Namespaces: {ns: policy}, ...})")
    ap.add_argument("--namespace", action="append", default=[], help="a namespace besides default (repeatable)")
    ap.add_argument("--drivers", default="docker,podman,exec", help="drivers the node has (raw_exec only if listed)")
    ap.add_argument("--node-memory", type=int, default=4096, help="node memory, MB")
    ap.add_argument("--node-cpu", type=int, default=4000, help="node CPU, MHz")
    ap.add_argument("--node-cores", type=int, default=4)
    ap.add_argument("--datacenter", default="dc1")
    ap.add_argument("--delay-scale", type=float, default=1.0,
                    help="factor on restart and reschedule delays (tests: 0.01)")
    ap.add_argument("--early-ws-upgrade", action="store_true",
                    help="as Nomad after hashicorp/nomad#28025 (2026): upgrade the exec WebSocket first, every "
                         "error (bad command JSON too) is a close frame")
    args = ap.parse_args()
    if args.verify_https_client and not args.tls:
        ap.error("--verify-https-client needs --tls")
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    ctx = make_tls(args, state_dir) if args.tls else None
    agent = Agent(args)
    Handler.agent = agent
    srv = Server(("127.0.0.1", args.port), Handler, bind_and_activate=True)
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    port = srv.server_address[1]
    url = "%s://127.0.0.1:%d" % ("https" if ctx else "http", port)
    _write(os.path.join(state_dir, "addr"), url + "\n")
    _write(os.path.join(state_dir, "port"), "%d\n" % port)

    def on_term(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("listening on %s" % url, flush=True)
    log("listening on %s (acl %s, drivers %s)" % (url, "on" if args.acl else "off", ",".join(agent.state.drivers)))
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        agent.closing = True
        with agent.state.cond:
            agent.state.closing = True
            agent.state.cond.notify_all()
        if agent.client:
            agent.client.shutdown()
        srv.server_close()
        for f in ("port", "addr"):
            try:
                os.unlink(os.path.join(state_dir, f))
            except OSError:
                pass
        print("stopped; sandboxes removed", flush=True)


if __name__ == "__main__":
    main()
