#!/usr/bin/python3
"""A test Kubernetes API server that speaks the real wire protocol (see README.md).

    fake_apiserver.py --state-dir DIR [--agentcell BIN] [--home DIR] [--node-memory 8Gi] [--node-cpu 4]

Writes DIR/pki/*, DIR/tokens.json (unless present), DIR/kubeconfig and, once it listens,
DIR/port; prints "listening on https://127.0.0.1:PORT". Pods run as native agentcell
sandboxes under DIR/home. SIGTERM/SIGINT remove every sandbox it made, then it exits 0.
Python 3 standard library only.

Over 800 lines on purpose: the HTTP dispatch, discovery, the resource handlers and the
exec/attach/log streams share one request handler class and its auth and error helpers;
the object rules (kobjects.py), pods (kpods.py), WebSocket framing (kws.py) and
certificates (kpki.py) are already modules of their own.
"""

import argparse
import base64
import copy
import fcntl
import http.server
import json
import os
import pty
import queue
import re
import select
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kobjects as ko  # noqa: E402
import kpki  # noqa: E402
import kpods  # noqa: E402
import kws  # noqa: E402

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-fake", "gitCommit": "0" * 40,
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0",
           "compiler": "gc", "platform": "linux/amd64"}

# resource -> (group, version, kind, namespaced, shortNames, verbs, schema)
RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
RESOURCES = {
    "pods": ("", "v1", "Pod", True, ["po"], RW, ko.POD_SCHEMA),
    "namespaces": ("", "v1", "Namespace", False, ["ns"], ["create", "delete", "get", "list", "patch", "update", "watch"], ko.NS_SCHEMA),
    "nodes": ("", "v1", "Node", False, ["no"], ["get", "list", "watch"], None),
    "networkpolicies": ("networking.k8s.io", "v1", "NetworkPolicy", True, ["netpol"], RW, ko.NETPOL_SCHEMA),
}
SUBRESOURCES = {"pods": {"exec": ["create", "get"], "attach": ["create", "get"], "log": ["get"], "status": ["get", "patch", "update"]}}
STREAM_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]


class Stop(Exception):
    pass


# ====================================================================== the server state

class FakeCluster:
    def __init__(self, args):
        self.state_dir = os.path.abspath(args.state_dir)
        self.agentcell = os.path.abspath(args.agentcell) if args.agentcell else None
        self.home = os.path.abspath(args.home) if args.home else os.path.join(self.state_dir, "home")
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        self.node_memory = ko.quantity(args.node_memory)
        self.node_cpu = ko.quantity(args.node_cpu)
        self.backoff_cap = args.backoff_cap
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1000
        self.objects = {}  # (resource, ns, name) -> object (ns "" for cluster scope)
        self.events = deque(maxlen=args.event_history)  # (rv, type, resource, ns, obj, old)
        self.oldest_rv = self.rv
        self.faults = []
        self.requests = deque(maxlen=2000)
        self.closing = False
        tokfile = args.tokens or os.path.join(self.state_dir, "tokens.json")
        if not os.path.exists(tokfile):
            with open(tokfile, "w") as f:
                json.dump(kpki.default_tokens(), f, indent=1)
        with open(tokfile) as f:
            self.tokens = json.load(f)
        self.started = ko.now_rfc3339()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self._create_namespace_obj(ns)
        self.runtime = kpods.PodRuntime(self) if self.agentcell else None

    # ---------------------------------------------------------------- store

    def _commit(self, resource, ns, name, obj, typ, old=None):
        """Under self.lock: stores obj with a new resourceVersion and records the event."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (resource, ns, name)
        if typ == "DELETED":
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        if len(self.events) == self.events.maxlen:
            self.oldest_rv = self.events[0][0]
        self.events.append((self.rv, typ, resource, ns, copy.deepcopy(obj), old))
        self.cond.notify_all()

    def _create_namespace_obj(self, name, labels=None):
        obj = {"metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": ko.now_rfc3339(),
                            "labels": dict(labels or {}, **{"kubernetes.io/metadata.name": name})},
               "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        with self.lock:
            self._commit("namespaces", "", name, obj, "ADDED")
        return obj

    def node_labels(self):
        return {"kubernetes.io/hostname": kpods.NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}

    def node(self):
        cap = {"cpu": str(int(self.node_cpu)) if self.node_cpu == int(self.node_cpu) else "%dm" % (self.node_cpu * 1000),
               "memory": "%dKi" % (self.node_memory // 1024), "pods": "110", "ephemeral-storage": "100Gi"}
        return {"kind": "Node", "apiVersion": "v1",
                "metadata": {"name": kpods.NODE, "uid": "00000000-0000-0000-0000-00000000000a",
                             "resourceVersion": "1", "creationTimestamp": self.started, "labels": self.node_labels()},
                "spec": {},
                "status": {"capacity": cap, "allocatable": cap,
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status",
                                           "lastHeartbeatTime": ko.now_rfc3339(),
                                           "lastTransitionTime": self.started}],
                           "addresses": [{"type": "InternalIP", "address": kpods.HOST_IP},
                                         {"type": "Hostname", "address": kpods.NODE}],
                           "nodeInfo": {"kubeletVersion": "v1.32.0-fake", "containerRuntimeVersion": "agentcell://native",
                                        "operatingSystem": "linux", "architecture": "amd64"}}}

    def get_pod_copy(self, ns, name, uid=None):
        with self.lock:
            o = self.objects.get(("pods", ns, name))
            if o is None or (uid and o["metadata"]["uid"] != uid):
                return None
            return copy.deepcopy(o)

    def update_pod_status(self, ns, name, uid, fn):
        """Applies fn to a copy of the pod (the kubelet's status update); MODIFIED if changed."""
        with self.lock:
            o = self.objects.get(("pods", ns, name))
            if o is None or o["metadata"]["uid"] != uid:
                return None
            new = copy.deepcopy(o)
            fn(new)
            if new != o:
                self._commit("pods", ns, name, new, "MODIFIED", copy.deepcopy(o))
            return new

    # ---------------------------------------------------------------- faults

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


# ====================================================================== defaults

def default_pod(pod):
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("serviceAccountName", "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    tol = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tol):
            tol.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    # The ServiceAccount admission plugin mounts the token unless the pod opts out.
    automount = spec.get("automountServiceAccountToken", True)
    vol = None
    if automount is not False:
        vol = "kube-api-access-" + ko.rand_suffix()
        spec.setdefault("volumes", []).append({"name": vol, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}})
    for c in spec.get("containers") or []:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        img = c.get("image") or ""
        last = img.split("/")[-1]
        latest = "@" not in last and (":" not in last or last.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        res = c.setdefault("resources", {})
        lim = res.get("limits") or {}
        if lim:
            req = res.setdefault("requests", {})
            for k, v in lim.items():
                req.setdefault(k, v)
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")
        if vol:
            c.setdefault("volumeMounts", []).append({"name": vol, "readOnly": True,
                                                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
    # QoS class
    cs = spec.get("containers") or []
    reqs = [(c.get("resources") or {}).get("requests") or {} for c in cs]
    lims = [(c.get("resources") or {}).get("limits") or {} for c in cs]
    if not any(reqs) and not any(lims):
        qos = "BestEffort"
    elif all(l.get("cpu") and l.get("memory") and ko.quantity(l["cpu"]) == ko.quantity(r.get("cpu", l["cpu"]))
             and ko.quantity(l["memory"]) == ko.quantity(r.get("memory", l["memory"])) for l, r in zip(lims, reqs)):
        qos = "Guaranteed"
    else:
        qos = "Burstable"
    pod["status"] = {"phase": "Pending", "qosClass": qos}


def default_networkpolicy(np_):
    spec = np_.setdefault("spec", {})
    spec.setdefault("podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    for rule in (spec.get("ingress") or []) + (spec.get("egress") or []):
        for p in rule.get("ports") or []:
            p.setdefault("protocol", "TCP")
    np_["metadata"]["generation"] = 1


# ====================================================================== tables

def _pod_status_text(p):
    st = p.get("status") or {}
    reason = st.get("reason") or st.get("phase") or "Unknown"
    for cs in st.get("containerStatuses") or []:
        s = cs.get("state") or {}
        if "waiting" in s and s["waiting"].get("reason"):
            reason = s["waiting"]["reason"]
        elif "terminated" in s:
            t = s["terminated"]
            reason = t.get("reason") or ("Signal:%d" % t["signal"] if t.get("signal") else "ExitCode:%d" % t.get("exitCode", 0))
        elif "running" in s and reason not in ("Completed",):
            reason = "Running" if st.get("phase") == "Running" else reason
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def table_for(resource, items, rv):
    if resource == "pods":
        cols = [("Name", "string", "name"), ("Ready", "string", ""), ("Status", "string", ""),
                ("Restarts", "string", ""), ("Age", "string", ""), ("IP", "string", ""), ("Node", "string", ""),
                ("Nominated Node", "string", ""), ("Readiness Gates", "string", "")]
        prio = [0, 0, 0, 0, 0, 1, 1, 1, 1]

        def cells(o):
            css = (o.get("status") or {}).get("containerStatuses") or []
            ready = sum(1 for c in css if c.get("ready"))
            restarts = sum(c.get("restartCount", 0) for c in css)
            return [o["metadata"]["name"], "%d/%d" % (ready, len(o["spec"].get("containers") or [])),
                    _pod_status_text(o), restarts, ko.human_age(o["metadata"]["creationTimestamp"]),
                    (o.get("status") or {}).get("podIP") or "<none>", o["spec"].get("nodeName") or "<none>",
                    "<none>", "<none>"]
    elif resource == "namespaces":
        cols = [("Name", "string", "name"), ("Status", "string", ""), ("Age", "string", "")]
        prio = [0, 0, 0]

        def cells(o):
            return [o["metadata"]["name"], o["status"]["phase"], ko.human_age(o["metadata"]["creationTimestamp"])]
    elif resource == "networkpolicies":
        cols = [("Name", "string", "name"), ("Pod-Selector", "string", ""), ("Age", "string", "")]
        prio = [0, 0, 0]

        def cells(o):
            ml = (o["spec"].get("podSelector") or {}).get("matchLabels") or {}
            sel = ",".join("%s=%s" % kv for kv in sorted(ml.items())) or "<none>"
            return [o["metadata"]["name"], sel, ko.human_age(o["metadata"]["creationTimestamp"])]
    else:
        cols = [("Name", "string", "name"), ("Status", "string", ""), ("Roles", "string", ""),
                ("Age", "string", ""), ("Version", "string", "")]
        prio = [0, 0, 0, 0, 0]

        def cells(o):
            return [o["metadata"]["name"], "Ready", "<none>", ko.human_age(o["metadata"]["creationTimestamp"]),
                    "v1.32.0-fake"]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [{"name": n, "type": t, "format": f, "description": n, "priority": pr}
                                  for (n, t, f), pr in zip(cols, prio)],
            "rows": [{"cells": cells(o), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                    "metadata": o["metadata"]}} for o in items]}


# ====================================================================== discovery

def discovery_api_v1():
    res = []
    for r, (g, v, kind, nsd, short, verbs, _) in RESOURCES.items():
        if g:
            continue
        e = {"name": r, "singularName": kind.lower(), "namespaced": nsd, "kind": kind, "verbs": verbs,
             "shortNames": short}
        if r == "pods":
            e["categories"] = ["all"]
        res.append(e)
        for sub, sverbs in SUBRESOURCES.get(r, {}).items():
            k = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "log": "Pod", "status": "Pod"}[sub]
            res.append({"name": r + "/" + sub, "singularName": "", "namespaced": nsd, "kind": k, "verbs": sverbs})
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": res}


def discovery_group(group):
    res = []
    for r, (g, v, kind, nsd, short, verbs, _) in RESOURCES.items():
        if g == group:
            res.append({"name": r, "singularName": kind.lower(), "namespaced": nsd, "kind": kind,
                        "verbs": verbs, "shortNames": short})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group + "/v1", "resources": res}


def openapi_v3_root():
    return {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=FAKE0001"},
                      "apis/networking.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/networking.k8s.io/v1?hash=FAKE0002"}}}


def openapi_v3_gv(prefix):
    """Paths with the x-kubernetes-group-version-kind and fieldValidation parameter that
    kubectl's query-param verifier looks for (server-side field validation), no schemas."""
    paths = {}
    fv = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for r, (g, v, kind, nsd, _, verbs, _) in RESOURCES.items():
        if (prefix == "api/v1") != (g == ""):
            continue
        base = "/%s/%s" % (prefix, ("namespaces/{namespace}/" if nsd else "") + r)
        gvk = {"group": g, "version": v, "kind": kind}
        ops = {}
        for verb, meth in (("create", "post"), ("list", "get")):
            if verb in verbs:
                ops[meth] = {"operationId": verb + kind, "x-kubernetes-action": "post" if meth == "post" else "list",
                             "x-kubernetes-group-version-kind": gvk, "parameters": [fv] if meth == "post" else [],
                             "responses": {"200": {"description": "OK"}}}
        paths[base] = ops
        one = {}
        for verb, meth in (("get", "get"), ("update", "put"), ("patch", "patch"), ("delete", "delete")):
            if verb in verbs:
                one[meth] = {"operationId": verb + kind, "x-kubernetes-action": verb,
                             "x-kubernetes-group-version-kind": gvk,
                             "parameters": [fv] if meth in ("put", "patch") else [],
                             "responses": {"200": {"description": "OK"}}}
        paths[base + "/{name}"] = one
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0-fake"}, "paths": paths,
            "components": {"schemas": {}}}


# ====================================================================== HTTP

ROUTE = re.compile(r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)"
                   r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<res>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?/?$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-kube-apiserver"
    sys_version = ""
    cluster = None  # set by main

    def setup(self):
        self.tls_ok = True
        self.request.settimeout(60)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.tls_ok = False
        self.request.settimeout(None)
        super().setup()

    def handle(self):
        if not self.tls_ok:
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout, Stop):
            pass

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_KUBE_VERBOSE"):
            sys.stderr.write("fake-apiserver: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # ---------------------------------------------------------------- plumbing

    def send_json(self, code, obj, headers=None):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self.audit_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status_sent = code

    def send_error_status(self, e):
        self.send_json(e.code, e.status(), e.headers)

    def read_body(self):
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
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
        return self.rfile.read(n) if n else b""

    def start_chunked(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self.audit_id)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.status_sent = 200

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self):
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def authenticate(self):
        """-> user dict {user, groups, forbidden} or None."""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            u = self.cluster.tokens.get(auth[7:].strip())
            return dict(u, via="token") if u else None
        try:
            cert = self.request.getpeercert()
        except (ValueError, ssl.SSLError):
            cert = None
        if cert:
            subj = {}
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    subj.setdefault(k, []).append(v)
            cn = (subj.get("commonName") or [""])[0]
            if cn:
                return {"user": cn, "groups": subj.get("organizationName", []), "via": "x509"}
        return None

    def authorize(self, user, verb, resource, group, name, ns, sub=""):
        for rule in user.get("forbidden") or []:
            verbs, resources = rule.get("verbs", []), rule.get("resources", [])
            r = resource + ("/" + sub if sub else "")
            if ("*" in verbs or verb in verbs) and ("*" in resources or r in resources):
                raise ko.forbidden(user["user"], verb, resource, group, name, ns, sub)

    def dispatch(self, method):
        self.audit_id = str(uuid.uuid4())
        self.status_sent = None
        self._body = None
        if method != "GET" and "websocket" not in (self.headers.get("Upgrade") or "").lower():
            try:
                self.read_body()  # an early error answer must not leave the body on the wire
            except (ValueError, OSError):
                self.close_connection = True
                return
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        self.q = q
        user = None
        try:
            if path.startswith("/_fake/"):
                return self.control(method, path)
            user = self.authenticate()
            if user is None:
                raise ko.unauthorized()
            f = self.cluster.take_fault(method, path)
            if f:
                st = int(f.get("status", 500))
                if st == 429:
                    raise ko.too_many_requests(int(f.get("retry_after", 1)))
                if f.get("close"):
                    self.close_connection = True
                    self.request.shutdown(socket.SHUT_RDWR)
                    return
                reason = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout", 409: "Conflict",
                          403: "Forbidden", 404: "NotFound", 410: "Expired"}.get(st, "")
                raise ko.ApiError(st, reason, f.get("message") or ("injected failure %d" % st),
                                  None, {"Retry-After": str(f["retry_after"])} if f.get("retry_after") else None)
            self.route(method, path, q, user)
        except ko.ApiError as e:
            if self.status_sent is None:
                self.send_error_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a bug of the fake is a 500 the test sees
            traceback.print_exc()
            if self.status_sent is None:
                self.send_error_status(ko.internal_error("fake apiserver bug: %r" % e))
        finally:
            self.cluster.requests.append({"method": method, "path": path, "query": url.query,
                                          "user": (user or {}).get("user"), "via": (user or {}).get("via"),
                                          "status": self.status_sent, "time": time.time(),
                                          "contentType": self.headers.get("Content-Type")})

    # ---------------------------------------------------------------- control (test only)

    def control(self, method, path):
        c = self.cluster
        if path == "/_fake/fail" and method == "POST":
            f = json.loads(self.read_body() or b"{}")
            f.setdefault("times", 1)
            f.setdefault("path", "")
            with c.lock:
                c.faults.append(f)
            return self.send_json(200, {"ok": True, "faults": len(c.faults)})
        if path == "/_fake/fail" and method == "DELETE":
            with c.lock:
                c.faults = []
            return self.send_json(200, {"ok": True})
        if path == "/_fake/fail" and method == "GET":
            with c.lock:
                return self.send_json(200, c.faults)
        if path == "/_fake/requests" and method == "GET":
            return self.send_json(200, list(c.requests))
        if path == "/_fake/requests" and method == "DELETE":
            c.requests.clear()
            return self.send_json(200, {"ok": True})
        if path == "/_fake/sandboxes" and method == "GET":
            with c.lock:
                pods = [{"namespace": o["metadata"]["namespace"], "name": o["metadata"]["name"],
                         "uid": o["metadata"]["uid"],
                         "sandbox": (c.runtime.state(o["metadata"]["uid"]) or {}).get("sandbox") if c.runtime else None}
                        for (r, _, _), o in c.objects.items() if r == "pods"]
            return self.send_json(200, pods)
        raise ko.not_found("_fake", "", path)

    # ---------------------------------------------------------------- routing

    def route(self, method, path, q, user):
        c = self.cluster
        if method == "GET":
            if path == "/version" or path == "/version/":
                return self.send_json(200, VERSION)
            if path in ("/healthz", "/livez", "/readyz"):
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(body)
                self.status_sent = 200
                return
            if path == "/api":
                host = self.headers.get("Host", "127.0.0.1")
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})
            if path == "/apis":
                gv = {"groupVersion": "networking.k8s.io/v1", "version": "v1"}
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "networking.k8s.io", "versions": [gv], "preferredVersion": gv}]})
            if path == "/api/v1":
                return self.send_json(200, discovery_api_v1())
            if path == "/apis/networking.k8s.io":
                gv = {"groupVersion": "networking.k8s.io/v1", "version": "v1"}
                return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1", "name": "networking.k8s.io",
                                            "versions": [gv], "preferredVersion": gv})
            if path == "/apis/networking.k8s.io/v1":
                return self.send_json(200, discovery_group("networking.k8s.io"))
            if path == "/openapi/v3":
                return self.send_json(200, openapi_v3_root())
            if path in ("/openapi/v3/api/v1", "/openapi/v3/apis/networking.k8s.io/v1"):
                return self.send_json(200, openapi_v3_gv(path[len("/openapi/v3/"):]))
        m = ROUTE.match(path)
        if not m:
            raise ko.ApiError(404, "NotFound", "the server could not find the requested resource",
                              {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})
        group, ns, res, name, sub = m.group("group") or "", m.group("ns"), m.group("res"), m.group("name"), m.group("sub")
        if res not in RESOURCES or RESOURCES[res][0] != group:
            raise ko.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespaced = RESOURCES[res][3]
        if not namespaced and ns:
            raise ko.ApiError(404, "NotFound", "the server could not find the requested resource", {})
        ns = ns or ""
        if namespaced and ns and ns not in [k[2] for k in c.objects if k[0] == "namespaces"] and method == "POST" and not sub:
            raise ko.not_found("namespaces", "", ns)
        if sub:
            if sub not in SUBRESOURCES.get(res, {}) or not name:
                raise ko.ApiError(404, "NotFound", "the server could not find the requested resource", {})
            if sub in ("exec", "attach"):
                # 1.32 checks "create" for a WebSocket GET too (AuthorizePodWebsocketUpgradeCreatePermission).
                self.authorize(user, "create", res, group, name, ns, sub)
                return self.stream(sub, method, ns, name, q, user)
            if sub == "log":
                self.authorize(user, "get", res, group, name, ns, sub)
                return self.logs(ns, name, q)
            if sub == "status":
                if method != "GET":
                    raise ko.method_not_allowed()
                self.authorize(user, "get", res, group, name, ns, sub)
                return self.get(res, group, ns, name)
        watch = (q.get("watch") or [""])[0] in ("1", "true")
        if method == "GET" and name:
            self.authorize(user, "get", res, group, name, ns)
            return self.get(res, group, ns, name)
        if method == "GET" and watch:
            self.authorize(user, "watch", res, group, None, ns)
            return self.watch(res, group, ns, q)
        if method == "GET":
            self.authorize(user, "list", res, group, None, ns)
            return self.list(res, group, ns, q)
        if method == "POST" and not name:
            self.authorize(user, "create", res, group, None, ns)
            return self.create(res, group, ns, q)
        if method == "DELETE" and name:
            self.authorize(user, "delete", res, group, name, ns)
            return self.delete(res, group, ns, name, q)
        if method == "DELETE":
            self.authorize(user, "deletecollection", res, group, None, ns)
            return self.delete_collection(res, group, ns, q)
        if method in ("PUT", "PATCH") and name:
            self.authorize(user, "update" if method == "PUT" else "patch", res, group, name, ns)
            return self.update(method, res, group, ns, name, q)
        raise ko.method_not_allowed()

    # ---------------------------------------------------------------- CRUD

    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    def out(self, res, obj):
        g, v, kind = RESOURCES[res][:3]
        o = {"kind": kind, "apiVersion": (g + "/" + v) if g else v}
        o.update(copy.deepcopy(obj))
        return o

    def _lookup(self, res, group, ns, name):
        if res == "nodes":
            if name != kpods.NODE:
                raise ko.not_found(res, group, name)
            return self.cluster.node()
        o = self.cluster.objects.get((res, ns, name))
        if o is None:
            raise ko.not_found(res, group, name)
        return o

    def get(self, res, group, ns, name):
        with self.cluster.lock:
            o = self._lookup(res, group, ns, name)
            if res == "nodes":
                o = {k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
            if self.wants_table():
                return self.send_json(200, table_for(res, [o], o["metadata"]["resourceVersion"]))
            return self.send_json(200, self.out(res, o))

    def _selected(self, res, ns, q):
        try:
            lsel = ko.parse_label_selector((q.get("labelSelector") or [""])[0])
        except ko.SelectorError as e:
            raise ko.bad_request("unable to parse requirement: %s" % e)
        allowed = {"metadata.name", "metadata.namespace"}
        if res == "pods":
            allowed |= {"status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                        "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"}
        elif res == "namespaces":
            allowed |= {"status.phase"}
        fsel = ko.parse_field_selector((q.get("fieldSelector") or [""])[0], allowed, res)
        return lsel, fsel

    def _matches(self, o, ns, lsel, fsel):
        if ns and o["metadata"].get("namespace", "") != ns:
            return False
        return ko.label_match(lsel, o["metadata"].get("labels")) and ko.field_match(fsel, o)

    def list(self, res, group, ns, q):
        lsel, fsel = self._selected(res, ns, q)
        with self.cluster.lock:
            if res == "nodes":
                cand = [{k: v for k, v in self.cluster.node().items() if k not in ("kind", "apiVersion")}]
            else:
                cand = [o for (r, _, _), o in sorted(self.cluster.objects.items()) if r == res]
            items = [copy.deepcopy(o) for o in cand if self._matches(o, ns, lsel, fsel)]
            rv = str(self.cluster.rv)
        meta = {"resourceVersion": rv}
        limit = int((q.get("limit") or ["0"])[0] or 0)
        cont = (q.get("continue") or [""])[0]
        if cont:
            try:
                start = int(json.loads(base64.urlsafe_b64decode(cont + "==="))["start"])
            except (ValueError, KeyError, TypeError):
                raise ko.bad_request("continue key is not valid: illegal base64 data")
            items = items[start:]
        else:
            start = 0
        if limit and len(items) > limit:
            items = items[:limit]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": start + limit}).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(cand) - start - limit
        if self.wants_table():
            t = table_for(res, items, rv)
            t["metadata"].update(meta)
            return self.send_json(200, t)
        g, v, kind = RESOURCES[res][:3]
        return self.send_json(200, {"kind": kind + "List", "apiVersion": (g + "/" + v) if g else v,
                                    "metadata": meta, "items": items})

    def _decode(self, res, q):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = self.read_body()
        kind = RESOURCES[res][2]
        gvs = '%s in version "%s"' % (kind, RESOURCES[res][1])
        if ctype == "application/vnd.kubernetes.protobuf" and res == "namespaces" and self.command == "POST":
            try:
                return ko.decode_protobuf_namespace(raw), raw, kind, gvs
            except ko.DecodeError as e:
                raise ko.bad_request("%s cannot be handled as a %s: %s" % (gvs, kind, e))
        if ctype not in ("application/json", "application/yaml", "") and self.command in ("POST", "PUT"):
            raise ko.ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/cbor', {})
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise ko.bad_request("%s cannot be handled as a %s: %s" % (gvs, kind, e))
        if not isinstance(obj, dict):
            raise ko.bad_request("%s cannot be handled as a %s: json: cannot unmarshal %s into Go value of type struct" % (gvs, kind, ko._jtype(obj)))
        return obj, raw, kind, gvs

    def _strict(self, res, obj, q, gvs, kind):
        try:
            unknown = ko.check_schema(obj, RESOURCES[res][6], kind)
        except ko.DecodeError as e:
            raise ko.bad_request("%s cannot be handled as a %s: %s" % (gvs, kind, e))
        fv = (q.get("fieldValidation") or [""])[0]
        if unknown and fv == "Strict":
            raise ko.bad_request("%s cannot be handled as a %s: strict decoding error: %s" % (
                gvs, kind, ", ".join('unknown field "%s"' % u for u in unknown)))
        hdr = {}
        if unknown and fv != "Ignore":
            hdr["Warning"] = ", ".join('299 - "unknown field \\"%s\\""' % u for u in unknown)
        return hdr

    def create(self, res, group, ns, q):
        c = self.cluster
        if res == "nodes":
            raise ko.method_not_allowed()
        obj, raw, kind, gvs = self._decode(res, q)
        want_api = (group + "/v1") if group else "v1"
        if obj.get("kind") not in (None, kind) or obj.get("apiVersion") not in (None, want_api):
            raise ko.bad_request("the API version in the data (%s) does not match the expected API version (%s)" % (
                obj.get("apiVersion"), want_api) if obj.get("apiVersion") != want_api else
                "%s cannot be handled as a %s: no kind \"%s\" is registered for version \"%s\"" % (
                    gvs, kind, obj.get("kind"), want_api))
        hdr = self._strict(res, obj, q, gvs, kind)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ko.bad_request("%s cannot be handled as a %s: metadata must be an object" % (gvs, kind))
        if meta.get("namespace") and ns and meta["namespace"] != ns:
            raise ko.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + ko.rand_suffix()
        if res == "pods":
            ko.validate_pod(obj)
        elif res == "networkpolicies":
            ko.validate_networkpolicy(obj)
        elif res == "namespaces":
            ko.validate_namespace(obj)
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "managedFields", "selfLink"):
            meta.pop(k, None)
        if namespaced(res):
            meta["namespace"] = ns
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = ko.now_rfc3339()
        if res == "pods":
            default_pod(obj)
        elif res == "networkpolicies":
            default_networkpolicy(obj)
        elif res == "namespaces":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        dry = "All" in (q.get("dryRun") or [])
        with c.lock:
            if res != "namespaces" and ("namespaces", "", ns) not in c.objects:
                raise ko.not_found("namespaces", "", ns)
            if res != "namespaces" and c.objects[("namespaces", "", ns)]["metadata"].get("deletionTimestamp"):
                raise ko.ApiError(403, "Forbidden", '%s "%s" is forbidden: unable to create new content in namespace %s because it is being terminated' % (
                    res, meta["name"], ns), {"name": meta["name"], "kind": res,
                                             "causes": [{"reason": "NamespaceTerminating", "message": "namespace %s is being terminated" % ns,
                                                         "field": "metadata.namespace"}]})
            key = (res, ns, meta["name"])
            if key in c.objects:
                raise ko.already_exists(res, group, meta["name"])
            if dry:
                obj["metadata"]["resourceVersion"] = ""
                return self.send_json(201, self.out(res, obj), hdr)
            c._commit(res, ns, meta["name"], obj, "ADDED")
            out = self.out(res, obj)
        if res == "pods" and c.runtime:
            c.runtime.start(obj)
        self.send_json(201, out, hdr)

    def update(self, method, res, group, ns, name, q):
        c = self.cluster
        if res == "nodes":
            raise ko.method_not_allowed()
        body, raw, kind, gvs = self._decode(res, q)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        with c.lock:
            cur = self._lookup(res, group, ns, name)
            if method == "PATCH":
                if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    new = ko.merge_patch(self.out(res, cur), body)
                else:
                    raise ko.ApiError(415, "UnsupportedMediaType", "the server does not support %s patches here" % ctype, {})
            else:
                new = body
                rv = (new.get("metadata") or {}).get("resourceVersion")
                if rv and rv != cur["metadata"]["resourceVersion"]:
                    raise ko.conflict(res, group, name)
            hdr = self._strict(res, new, q, gvs, kind)
            new.pop("kind", None)
            new.pop("apiVersion", None)
            nm = new.setdefault("metadata", {})
            if nm.get("name", name) != name:
                raise ko.bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (nm.get("name"), name))
            for k in ("uid", "creationTimestamp", "namespace", "deletionTimestamp", "generation", "name"):
                if k in cur["metadata"]:
                    nm[k] = cur["metadata"][k]
            nm.pop("resourceVersion", None)
            if res == "pods":
                if new.get("spec") != cur["spec"]:
                    raise ko.invalid("Pod", "", name, [ko.FieldError(
                        "Forbidden", "spec", detail="pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                        "previously negative)")])
                new["status"] = cur["status"]
            elif res == "networkpolicies":
                ko.validate_networkpolicy(new)
                default_networkpolicy(new)
                nm["generation"] = cur["metadata"]["generation"] + (1 if new["spec"] != cur["spec"] else 0)
            elif res == "namespaces":
                new["spec"], new["status"] = cur["spec"], cur["status"]
            errs = ko.validate_labels(nm.get("labels"), "metadata.labels")
            if errs:
                raise ko.invalid(kind, group, name, errs)
            c._commit(res, ns, name, new, "MODIFIED", copy.deepcopy(cur))
            return self.send_json(200, self.out(res, new), hdr)

    def _delete_opts(self, q):
        grace = None
        prop = None
        body = self.read_body()
        if body:
            try:
                d = json.loads(body)
                grace = d.get("gracePeriodSeconds")
                prop = d.get("propagationPolicy")
            except ValueError:
                raise ko.bad_request("invalid DeleteOptions body")
        if q.get("gracePeriodSeconds"):
            grace = int(q["gracePeriodSeconds"][0])
        if q.get("propagationPolicy"):
            prop = q["propagationPolicy"][0]
        if prop not in (None, "Orphan", "Background", "Foreground"):
            raise ko.invalid("DeleteOptions", "", "", [ko.FieldError("NotSupported", "propagationPolicy", prop,
                                                                      'supported values: "Foreground", "Background", "Orphan", "nil"')])
        return grace, prop

    def delete(self, res, group, ns, name, q):
        c = self.cluster
        if res == "nodes":
            raise ko.method_not_allowed()
        grace, _ = self._delete_opts(q)
        with c.lock:
            cur = self._lookup(res, group, ns, name)
            if res == "pods":
                out, sync = self._delete_pod(cur, grace)
            elif res == "namespaces":
                if name in ("default", "kube-system", "kube-public"):
                    raise ko.ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted' % name,
                                      {"name": name, "kind": "namespaces"})
                new = copy.deepcopy(cur)
                if not new["metadata"].get("deletionTimestamp"):
                    new["metadata"]["deletionTimestamp"] = ko.now_rfc3339()
                    new["status"]["phase"] = "Terminating"
                    c._commit(res, "", name, new, "MODIFIED", copy.deepcopy(cur))
                    threading.Thread(target=self.cluster_finalize_ns, args=(name,), daemon=True).start()
                return self.send_json(200, self.out(res, new))
            else:
                c._commit(res, ns, name, copy.deepcopy(cur), "DELETED", copy.deepcopy(cur))
                return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                            "details": {"name": name, "group": group, "kind": res, "uid": cur["metadata"]["uid"]}})
        if sync:
            sync()
        return self.send_json(200, out)

    def _delete_pod(self, cur, grace):
        """Under the lock. -> (answer, function to run after unlocking)."""
        c = self.cluster
        ns, name, uid = cur["metadata"]["namespace"], cur["metadata"]["name"], cur["metadata"]["uid"]
        if cur["metadata"].get("deletionTimestamp"):
            return self.out("pods", cur), None
        if grace is None:
            grace = cur["spec"].get("terminationGracePeriodSeconds", 30)
        new = copy.deepcopy(cur)
        phase = cur.get("status", {}).get("phase")
        immediate = grace == 0 or not cur["spec"].get("nodeName") or phase in ("Succeeded", "Failed")
        new["metadata"]["deletionTimestamp"] = ko.now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0 if immediate else grace
        rt = c.runtime
        if immediate:
            c._commit("pods", ns, name, new, "DELETED", copy.deepcopy(cur))
            out = self.out("pods", new)
            if rt:
                threading.Thread(target=rt.delete, args=(uid,), daemon=True).start()
            return out, None
        c._commit("pods", ns, name, new, "MODIFIED", copy.deepcopy(cur))
        out = self.out("pods", new)

        def finish():
            if rt:
                rt.delete(uid)
            with c.lock:
                o = c.objects.get(("pods", ns, name))
                if o is not None and o["metadata"]["uid"] == uid:
                    c._commit("pods", ns, name, copy.deepcopy(o), "DELETED", copy.deepcopy(o))
        threading.Thread(target=finish, daemon=True).start()
        return out, None

    def cluster_finalize_ns(self, name):
        c = self.cluster
        with c.lock:
            keys = [k for k in c.objects if k[1] == name and k[0] != "namespaces"]
            pods = []
            for k in keys:
                o = c.objects[k]
                if k[0] == "pods":
                    pods.append(o["metadata"]["uid"])
                c._commit(k[0], k[1], k[2], copy.deepcopy(o), "DELETED", copy.deepcopy(o))
        for uid in pods:
            if c.runtime:
                c.runtime.delete(uid)
        with c.lock:
            o = c.objects.get(("namespaces", "", name))
            if o is not None:
                c._commit("namespaces", "", name, copy.deepcopy(o), "DELETED", copy.deepcopy(o))

    def delete_collection(self, res, group, ns, q):
        c = self.cluster
        if res in ("nodes", "namespaces"):
            raise ko.method_not_allowed()
        lsel, fsel = self._selected(res, ns, q)
        grace, _ = self._delete_opts(q)
        items = []
        with c.lock:
            for k, o in sorted(c.objects.items()):
                if k[0] != res or not self._matches(o, ns, lsel, fsel):
                    continue
                if res == "pods":
                    out, _ = self._delete_pod(o, grace)
                    items.append({kk: vv for kk, vv in out.items() if kk not in ("kind", "apiVersion")})
                else:
                    c._commit(res, k[1], k[2], copy.deepcopy(o), "DELETED", copy.deepcopy(o))
                    items.append(copy.deepcopy(o))
            rv = str(c.rv)
        g, v, kind = RESOURCES[res][:3]
        return self.send_json(200, {"kind": kind + "List", "apiVersion": (g + "/" + v) if g else v,
                                    "metadata": {"resourceVersion": rv}, "items": items})

    # ---------------------------------------------------------------- watch

    def watch(self, res, group, ns, q):
        c = self.cluster
        lsel, fsel = self._selected(res, ns, q)
        rv_param = (q.get("resourceVersion") or [""])[0]
        timeout = float((q.get("timeoutSeconds") or ["1800"])[0] or 1800)
        initial = (q.get("sendInitialEvents") or [""])[0] == "true"
        bookmarks = (q.get("allowWatchBookmarks") or [""])[0] == "true"
        deadline = time.time() + timeout
        g, v, kind = RESOURCES[res][:3]
        api = (g + "/" + v) if g else v
        pending = []
        with c.lock:
            if rv_param in ("", "0") or initial:
                for (r, _, _), o in sorted(c.objects.items()):
                    if r == res and self._matches(o, ns, lsel, fsel):
                        pending.append(("ADDED", copy.deepcopy(o)))
                last = c.rv if (rv_param in ("", "0") or initial) else int(rv_param)
                if initial:
                    pending.append(("BOOKMARK", {"metadata": {"resourceVersion": str(c.rv),
                                                              "annotations": {"k8s.io/initial-events-end": "true"}}}))
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    raise ko.bad_request("invalid resource version: %s" % rv_param)
                if last < c.oldest_rv:
                    self.start_chunked("application/json")
                    st = ko.ApiError(410, "Expired", "too old resource version: %d (%d)" % (last, c.oldest_rv)).status()
                    self.chunk((json.dumps({"type": "ERROR", "object": st}) + "\n").encode())
                    return self.end_chunked()
        self.start_chunked("application/json")

        as_table = self.wants_table()

        def emit(typ, o):
            if as_table and typ != "BOOKMARK":
                obj = table_for(res, [o], o["metadata"].get("resourceVersion", ""))
            else:
                obj = dict({"kind": kind, "apiVersion": api}, **o)
            self.chunk((json.dumps({"type": typ, "object": obj}) + "\n").encode())

        try:
            for typ, o in pending:
                emit(typ, o)
            last_bm = time.time()
            while time.time() < deadline and not c.closing:
                batch = []
                with c.lock:
                    new = [e for e in c.events if e[0] > last]
                    if not new:
                        c.cond.wait(timeout=min(1.0, max(0.01, deadline - time.time())))
                        new = [e for e in c.events if e[0] > last]
                    for rv, typ, r, ens, obj, old in new:
                        last = rv
                        if r != res:
                            continue
                        now_in = self._matches(obj, ns, lsel, fsel)
                        was_in = old is not None and self._matches(old, ns, lsel, fsel)
                        if typ == "MODIFIED" and now_in and not was_in:
                            typ = "ADDED"
                        elif typ == "MODIFIED" and was_in and not now_in:
                            typ = "DELETED"
                        elif not now_in and not (typ == "DELETED" and was_in):
                            continue
                        batch.append((typ, obj))
                for typ, obj in batch:
                    emit(typ, obj)
                if bookmarks and time.time() - last_bm > 5:
                    emit("BOOKMARK", {"metadata": {"resourceVersion": str(last)}})
                    last_bm = time.time()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.end_chunked()

    # ---------------------------------------------------------------- logs

    def logs(self, ns, name, q):
        c = self.cluster
        with c.lock:
            pod = copy.deepcopy(self._lookup("pods", "", ns, name))
        cname = (q.get("container") or [""])[0]
        names = [x["name"] for x in pod["spec"]["containers"]]
        if not cname:
            if len(names) > 1:
                raise ko.bad_request("a container name must be specified for pod %s, choose one of: [%s]" % (name, " ".join(names)))
            cname = names[0]
        if cname not in names:
            raise ko.bad_request("container %s is not valid for pod %s" % (cname, name))
        cs = next((x for x in (pod.get("status") or {}).get("containerStatuses") or [] if x["name"] == cname), None)
        st = c.runtime.state(pod["metadata"]["uid"]) if c.runtime else None
        ctr = st["containers"].get(cname) if st else None
        if cs is None or ctr is None or (not ctr.chunks and "waiting" in cs["state"] and not cs.get("restartCount")):
            why = (cs or {}).get("state", {}).get("waiting", {}).get("reason", "ContainerCreating")
            if why in ("ErrImagePull", "ImagePullBackOff"):
                why = "trying and failing to pull image"
            raise ko.bad_request('container "%s" in pod "%s" is waiting to start: %s' % (cname, name, why))
        follow = (q.get("follow") or [""])[0] == "true"
        stamps = (q.get("timestamps") or [""])[0] == "true"
        previous = (q.get("previous") or [""])[0] == "true"
        tail = int((q.get("tailLines") or ["-1"])[0])
        # KEP-3288 (PodLogsQuerySplitStreams): stream=Stdout|Stderr|All.
        which = (q.get("stream") or ["All"])[0]
        if which not in ("All", "Stdout", "Stderr"):
            raise ko.bad_request('Unsupported value: "%s": supported values: "All", "Stderr", "Stdout"' % which)
        if which != "All" and tail >= 0:
            raise ko.bad_request("tailLines and specific stream are mutually exclusive for now")
        if previous:
            if not cs.get("restartCount"):
                raise ko.bad_request('previous terminated container "%s" in pod "%s" not found' % (cname, name))
            chunks, follow = list(ctr.prev_chunks), False
        else:
            with ctr.cond:
                chunks = list(ctr.chunks)

        def render(chs):
            out = b""
            for t, data, sn in chs:
                if which != "All" and sn != (1 if which == "Stdout" else 2):
                    continue
                if stamps:
                    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + (".%09dZ " % int((t % 1) * 1e9))
                    lines = data.splitlines(keepends=True)
                    out += b"".join(ts.encode() + ln for ln in lines)
                else:
                    out += data
            return out

        body = render(chunks)
        if tail >= 0:
            lines = body.splitlines(keepends=True)
            body = b"".join(lines[-tail:]) if tail else b""
        self.start_chunked("text/plain")
        try:
            if body:
                self.chunk(body)
            n = len(chunks)
            while follow and not c.closing:
                with ctr.cond:
                    if len(ctr.chunks) == n and not ctr.done:
                        ctr.cond.wait(1.0)
                    more = ctr.chunks[n:]
                    done = ctr.done
                    n += len(more)
                if more:
                    self.chunk(render(more))
                if done and not more:
                    break
                if c.get_pod_copy(ns, name, pod["metadata"]["uid"]) is None:
                    break
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.end_chunked()

    # ---------------------------------------------------------------- exec / attach

    def stream(self, sub, method, ns, name, q, user):
        c = self.cluster
        with c.lock:
            pod = copy.deepcopy(self._lookup("pods", "", ns, name))
        cname = (q.get("container") or [""])[0]
        names = [x["name"] for x in pod["spec"]["containers"]]
        if not cname:
            if len(names) > 1 and sub == "exec":
                raise ko.bad_request("a container name must be specified for pod %s, choose one of: [%s]" % (name, " ".join(names)))
            cname = names[0]
        if cname not in names:
            raise ko.bad_request("container %s is not valid for pod %s" % (cname, name))
        flag = {k: (q.get(k) or [""])[0] in ("1", "true") for k in ("stdin", "stdout", "stderr", "tty")}
        command = q.get("command") or []
        if sub == "exec" and not command:
            raise ko.bad_request("you must specify at least 1 command")
        if not (flag["stdin"] or flag["stdout"] or flag["stderr"]):
            raise ko.bad_request("you must specify at least one of stdin, stdout, stderr")
        if not pod["spec"].get("nodeName"):
            raise ko.bad_request("pod %s does not have a host assigned" % name)
        cs = next((x for x in (pod.get("status") or {}).get("containerStatuses") or [] if x["name"] == cname), {})
        if "running" not in (cs.get("state") or {}) or c.runtime is None:
            raise ko.internal_error('unable to upgrade connection: container not found ("%s")' % cname)
        if "websocket" not in (self.headers.get("Upgrade") or "").lower():
            raise ko.bad_request("Upgrade request required")
        offered = [p.strip() for p in (self.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()]
        proto = next((p for p in offered if p in STREAM_PROTOCOLS), None)
        if proto is None or not self.headers.get("Sec-WebSocket-Key"):
            # golang.org/x/net/websocket answers a failed subprotocol handshake with a bare 403.
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.status_sent = 403
            self.close_connection = True
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", kws.accept_key(self.headers["Sec-WebSocket-Key"].strip()))
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.status_sent = 101
        self.close_connection = True
        ws = WsChannel(self.request, proto)
        try:
            if sub == "exec":
                run_exec(c, ws, pod, cname, command, flag)
            else:
                run_attach(c, ws, pod, cname, flag)
        except (OSError, ssl.SSLError, kws.ProtocolError):
            pass
        finally:
            ws.close(1000)


def namespaced(res):
    return RESOURCES[res][3]


# ====================================================================== channel websocket

class WsChannel:
    """A channel.k8s.io connection: one socket, written under a lock, read by one loop."""

    def __init__(self, sock, proto):
        self.sock, self.proto = sock, proto
        self.wlock = threading.Lock()
        self.parser = kws.FrameParser()
        self.closed = False

    def send(self, channel, data=b""):
        frame = kws.encode_frame(kws.OP_BINARY, bytes([channel]) + data)
        with self.wlock:
            if self.closed:
                return
            self.sock.sendall(frame)

    def control(self, op, payload=b""):
        with self.wlock:
            if not self.closed:
                self.sock.sendall(kws.encode_frame(op, payload))

    def close(self, code):
        with self.wlock:
            if self.closed:
                return
            self.closed = True
            try:
                self.sock.sendall(kws.encode_frame(kws.OP_CLOSE, struct.pack("!H", code)))
                # Give the peer a moment to read the close frame before the TCP close.
                self.sock.settimeout(1.0)
                try:
                    self.sock.recv(4096)
                except (OSError, ssl.SSLError):
                    pass
                self.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ssl.SSLError):
                pass

    def readable(self, timeout):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def read_messages(self):
        """-> list of (channel, payload) data messages; answers pings; None at close/EOF."""
        data = self.sock.recv(65536)
        if not data:
            return None
        out = []
        for op, payload in self.parser.feed(data):
            if op == kws.OP_PING:
                self.control(kws.OP_PONG, payload)
            elif op == kws.OP_CLOSE:
                return None
            elif op in (kws.OP_BINARY, kws.OP_TEXT) and payload:
                out.append((payload[0], payload[1:]))
        return out


def exit_status(code):
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command, exit code %d" % code,
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def run_exec(c, ws, pod, cname, command, flag):
    cspec = next(x for x in pod["spec"]["containers"] if x["name"] == cname)
    rt = c.runtime
    tty = flag["tty"]
    argv = rt.exec_argv(pod, cspec, command, stdin=flag["stdin"], tty=tty)
    early = []
    if tty:
        master, slave = pty.openpty()
        _set_winsize(master, 24, 80)
        # kubectl sends the terminal's size on channel 4 right after the upgrade: wait a
        # moment for it so the command starts with the right size (as with a real runtime,
        # where the size is set before the process is started).
        deadline = time.time() + 1.0
        while time.time() < deadline and not any(ch == 4 for ch, _ in early):
            if ws.readable(max(0.0, deadline - time.time())):
                msgs = ws.read_messages()
                if msgs is None:
                    break
                early += msgs
        for ch, payload in early:
            if ch == 4:
                _apply_resize(master, payload)

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        proc = subprocess.Popen(argv, env=rt.env, stdin=slave, stdout=slave, stderr=slave, preexec_fn=ctty,
                                close_fds=True)
        os.close(slave)
        outs = {master: 1}
        stdin_w = master
    else:
        proc = subprocess.Popen(argv, env=rt.env, stdin=subprocess.PIPE if flag["stdin"] else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        outs = {proc.stdout.fileno(): 1, proc.stderr.fileno(): 2}
        stdin_w = proc.stdin.fileno() if flag["stdin"] else None
    # stdin goes through a queue and a writer thread: a command that does not read must
    # not stop this loop (and so the output).
    inq = queue.Queue()

    def writer():
        while True:
            b = inq.get()
            if b is None:
                break
            try:
                os.write(stdin_w, b) if b else None
            except OSError:
                break
        if not tty and stdin_w is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
    wt = None
    if stdin_w is not None:
        wt = threading.Thread(target=writer, daemon=True)
        wt.start()
        for ch, payload in early:
            if ch == 0:
                inq.put(payload)
    sock_open = True
    try:
        while outs:
            fds = list(outs)
            if sock_open and ws.readable(0):
                rl = [None]
            else:
                rl, _, _ = select.select(fds + ([ws.sock] if sock_open else []), [], [], 1.0)
            for fd in rl:
                if fd is None or fd is ws.sock:
                    msgs = ws.read_messages()
                    if msgs is None:
                        sock_open = False
                        inq.put(None)
                        continue
                    for ch, payload in msgs:
                        if ch == 0 and stdin_w is not None:
                            inq.put(payload)
                        elif ch == 4 and tty:
                            _apply_resize(master, payload)
                        elif ch == 255 and ws.proto.startswith("v5") and payload[:1] == b"\x00":
                            inq.put(b"\x04" if tty else None)
                    continue
                try:
                    b = os.read(fd, 65536)
                except OSError:
                    b = b""
                if not b:
                    del outs[fd]
                    continue
                ch = outs[fd]
                if (ch == 1 and flag["stdout"]) or (ch == 2 and flag["stderr"]) or tty:
                    ws.send(ch, b)
        rc = proc.wait()
    finally:
        inq.put(None)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        if tty:
            os.close(master)
    code = rc if rc >= 0 else 128 - rc
    ws.send(3, json.dumps(exit_status(code)).encode())


def _apply_resize(fd, payload):
    try:
        sz = json.loads(payload)
        _set_winsize(fd, int(sz.get("Height", 24)), int(sz.get("Width", 80)))
    except (ValueError, TypeError, AttributeError, OSError):
        pass


def _set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def run_attach(c, ws, pod, cname, flag):
    rt = c.runtime
    st = rt.state(pod["metadata"]["uid"])
    ctr = st["containers"][cname] if st else None
    if ctr is None or ctr.done:
        ws.send(3, json.dumps(exit_status(0)).encode())
        return
    outq = queue.Queue()

    def listener(stream, data):
        outq.put((stream, data))
    with ctr.cond:
        ctr.listeners.append(listener)
        if ctr.done:
            outq.put((None, None))
    stdin_once = bool(next(x for x in pod["spec"]["containers"] if x["name"] == cname).get("stdinOnce"))
    sock_open = True
    try:
        while True:
            try:
                while True:
                    stream, data = outq.get_nowait()
                    if stream is None:
                        raise Stop()
                    if (stream == 1 and flag["stdout"]) or (stream == 2 and flag["stderr"]):
                        ws.send(stream, data)
            except queue.Empty:
                pass
            if sock_open and ws.readable(0.05):
                msgs = ws.read_messages()
                if msgs is None:
                    sock_open = False
                    if stdin_once and flag["stdin"]:
                        ctr.close_stdin()
                    continue
                for ch, payload in msgs:
                    if ch == 0 and flag["stdin"]:
                        ctr.write_stdin(payload)
                    elif ch == 255 and payload[:1] == b"\x00" and stdin_once:
                        ctr.close_stdin()
            elif not sock_open:
                time.sleep(0.05)
    except Stop:
        pass
    finally:
        with ctr.cond:
            if listener in ctr.listeners:
                ctr.listeners.remove(listener)
    ws.send(3, json.dumps(exit_status(0)).encode())


# ====================================================================== main

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--agentcell", default=os.environ.get("AGENTCELL"),
                    help="agentcell binary that runs the pods (default $AGENTCELL); without it pods stay Pending")
    ap.add_argument("--home", help="AGENTCELL_HOME of the pods' sandboxes (default STATE_DIR/home)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tokens", help="token file (JSON: token -> {user, groups, forbidden})")
    ap.add_argument("--node-memory", default="8Gi")
    ap.add_argument("--node-cpu", default="4")
    ap.add_argument("--backoff-cap", type=float, default=10.0, help="CrashLoopBackOff cap in seconds (real: 300)")
    ap.add_argument("--event-history", type=int, default=10000, help="events kept for watch resume")
    args = ap.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    pki = kpki.make_pki(os.path.join(args.state_dir, "pki"))
    cluster = FakeCluster(args)
    Handler.cluster = cluster
    srv = Server(("127.0.0.1", args.port), Handler, bind_and_activate=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
    ctx.load_verify_locations(os.path.join(pki, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    port = srv.server_address[1]
    url = "https://127.0.0.1:%d" % port
    kpki.write_kubeconfig(os.path.join(args.state_dir, "kubeconfig"), url, pki, cluster.tokens)
    with open(os.path.join(args.state_dir, "port.tmp"), "w") as f:
        f.write("%d\n" % port)
    os.rename(os.path.join(args.state_dir, "port.tmp"), os.path.join(args.state_dir, "port"))

    def on_term(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("listening on %s" % url, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        cluster.closing = True
        with cluster.lock:
            cluster.cond.notify_all()
        if cluster.runtime:
            cluster.runtime.shutdown()
        srv.server_close()
        try:
            os.unlink(os.path.join(args.state_dir, "port"))
        except OSError:
            pass
        print("stopped; sandboxes removed", flush=True)


if __name__ == "__main__":
    main()
