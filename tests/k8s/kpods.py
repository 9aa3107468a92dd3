"""Pods of the fake API server as real processes: one native agentcell sandbox per pod.

The "kubelet" half: schedule (node capacity), make the sandbox (`agentcell create` +
`start`), run each container's command in it (`agentcell exec`, output captured into the
container's log and broadcast to attached clients), keep the pod's status (phase,
conditions, containerStatuses) as the real kubelet reports it, restart by restartPolicy,
and remove the sandbox when the pod is deleted or the server stops.
"""

import hashlib
import os
import subprocess
import threading
import time

import kobjects as ko

NODE = "fake-node"
HOST_IP = "10.0.0.10"


def _sandbox_name(pod):
    return "k8s-" + pod["metadata"]["uid"].replace("-", "")[:16]


def _cid(pod, cname, restart):
    return "containerd://" + hashlib.sha256(("%s/%s/%d" % (pod["metadata"]["uid"], cname, restart)).encode()).hexdigest()


def _image_id(image):
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    return "%s@sha256:%s" % (repo, hashlib.sha256(image.encode()).hexdigest())


def _full_image(image):
    name = image
    last = name.split("/")[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    first = name.split("/")[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


class Container:
    """One container's process and log: chunks (timestamp, bytes), attach listeners."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec["name"]
        self.chunks = []  # (time.time(), bytes, stream 1|2)
        self.cond = threading.Condition()
        self.proc = None
        self.done = True
        self.listeners = []  # callables (stream, bytes) or (None, None) at the end
        self.stdin_closed = False
        self.stdin_lock = threading.Lock()
        self.prev_chunks = []

    def add(self, stream, data):
        with self.cond:
            self.chunks.append((time.time(), data, stream))
            ls = list(self.listeners)
            self.cond.notify_all()
        for f in ls:
            try:
                f(stream, data)
            except Exception:  # noqa: BLE001 - a gone listener must not stop the pump
                pass

    def finish(self):
        with self.cond:
            self.done = True
            ls = list(self.listeners)
            self.cond.notify_all()
        for f in ls:
            try:
                f(None, None)
            except Exception:  # noqa: BLE001
                pass

    def write_stdin(self, data):
        with self.stdin_lock:
            p = self.proc
            if p is None or p.stdin is None or self.stdin_closed:
                return
            try:
                p.stdin.write(data)
                p.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def close_stdin(self):
        with self.stdin_lock:
            p = self.proc
            self.stdin_closed = True
            if p is not None and p.stdin is not None:
                try:
                    p.stdin.close()
                except OSError:
                    pass


class PodRuntime:
    def __init__(self, server):
        self.srv = server
        self.agentcell = server.agentcell
        self.env = dict(os.environ, AGENTCELL_HOME=server.home)
        self.env.pop("AGENTCELL_API_KEY", None)
        self.pods = {}  # uid -> dict(containers={name: Container}, sandbox, stopping)
        self.lock = threading.Lock()
        self.ip_next = 2
        self.backoff_cap = server.backoff_cap

    # -------------------------------------------------------------- agentcell

    def ac(self, *args, timeout=120, check=False, input_=None):
        r = subprocess.run([self.agentcell, *args], env=self.env, stdin=subprocess.DEVNULL if input_ is None else None,
                           input=input_, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("agentcell %s: %s" % (" ".join(args), (r.stderr or r.stdout).decode(errors="replace").strip()))
        return r

    def exec_argv(self, pod, cspec, argv, stdin=False, tty=False):
        """The agentcell exec command line for argv in pod's container cspec."""
        cmd = [self.agentcell, "exec"]
        if stdin:
            cmd.append("-i")
        if tty:
            cmd.append("-t")
        for e in cspec.get("env") or []:
            if "value" in e:
                cmd += ["--env", "%s=%s" % (e["name"], e.get("value") or "")]
        if cspec.get("workingDir"):
            cmd += ["-w", cspec["workingDir"]]
        user = (cspec.get("securityContext") or {}).get("runAsUser")
        if user is None:
            user = ((pod.get("spec") or {}).get("securityContext") or {}).get("runAsUser")
        if user is not None:
            cmd += ["-u", str(user)]
        return cmd + [_sandbox_name(pod), "--"] + list(argv)

    # -------------------------------------------------------------- lifecycle

    def start(self, pod):
        uid = pod["metadata"]["uid"]
        st = {"containers": {c["name"]: Container(c) for c in pod["spec"]["containers"]},
              "sandbox": None, "stopping": False, "ns": pod["metadata"]["namespace"],
              "name": pod["metadata"]["name"]}
        with self.lock:
            self.pods[uid] = st
        threading.Thread(target=self._run_pod, args=(uid,), daemon=True, name="pod-" + uid[:8]).start()

    def state(self, uid):
        with self.lock:
            return self.pods.get(uid)

    def _update(self, uid, fn):
        st = self.state(uid)
        if st is None:
            return None
        return self.srv.update_pod_status(st["ns"], st["name"], uid, fn)

    def _run_pod(self, uid):
        st = self.state(uid)
        pod = self.srv.get_pod_copy(st["ns"], st["name"], uid)
        if pod is None:
            return
        spec = pod["spec"]
        # ---- scheduling
        req_mem = req_cpu = 0.0
        for c in spec["containers"]:
            r = (c.get("resources") or {}).get("requests") or {}
            req_mem += ko.quantity(r.get("memory", 0)) or 0
            req_cpu += ko.quantity(r.get("cpu", 0)) or 0
        short = []
        if req_cpu > self.srv.node_cpu:
            short.append("1 Insufficient cpu")
        if req_mem > self.srv.node_memory:
            short.append("1 Insufficient memory")
        sel = spec.get("nodeSelector") or {}
        node_labels = self.srv.node_labels()
        if any(node_labels.get(k) != v for k, v in sel.items()):
            short = ["1 node(s) didn't match Pod's node affinity/selector"]
        if short:
            msg = ("0/1 nodes are available: %s. preemption: 0/1 nodes are available: 1 %s." % (
                ", ".join(short),
                "Preemption is not helpful for scheduling" if "selector" in short[0]
                else "No preemption victims found for incoming pod"))

            def unsched(p):
                p["status"] = {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                     "lastTransitionTime": ko.now_rfc3339(), "reason": "Unschedulable", "message": msg}],
                    "qosClass": p["status"].get("qosClass", "BestEffort")}
            self._update(uid, unsched)
            return
        with self.lock:
            ip = "10.244.0.%d" % self.ip_next
            self.ip_next = self.ip_next + 1 if self.ip_next < 250 else 2
        t0 = ko.now_rfc3339()

        def scheduled(p):
            p["spec"]["nodeName"] = NODE
            s = p["status"]
            s["phase"] = "Pending"
            s["conditions"] = [
                _cond("PodReadyToStartContainers", "False", t0),
                _cond("Initialized", "True", t0),
                _cond("Ready", "False", t0, "ContainersNotReady",
                      "containers with unready status: [%s]" % " ".join(c["name"] for c in p["spec"]["containers"])),
                _cond("ContainersReady", "False", t0, "ContainersNotReady",
                      "containers with unready status: [%s]" % " ".join(c["name"] for c in p["spec"]["containers"])),
                _cond("PodScheduled", "True", t0)]
            s["hostIP"], s["hostIPs"] = HOST_IP, [{"ip": HOST_IP}]
            s["startTime"] = t0
            s["containerStatuses"] = [
                {"name": c["name"], "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
                 "ready": False, "restartCount": 0, "image": c["image"], "imageID": "", "started": False}
                for c in p["spec"]["containers"]]
        self._update(uid, scheduled)
        # ---- the pod sandbox
        name = _sandbox_name(pod)
        mem = 0
        for c in spec["containers"]:
            lim = (c.get("resources") or {}).get("limits") or {}
            mem += ko.quantity(lim.get("memory", 0)) or 0
        args = ["create", name, "--disk", "unlimited", "--label", "k8s-pod=%s.%s" % (st["ns"], st["name"])]
        if mem:
            args += ["--memory", str(max(16, int(mem // (1 << 20))))]
        try:
            self.ac(*args, check=True)
            st["sandbox"] = name
            if st["stopping"]:  # deleted while the sandbox was being made
                self.ac("remove", name)
                return
            self.ac("start", name, check=True)
            if st["stopping"]:
                self.ac("remove", name)
                return
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            err = str(e)

            def failed(p):
                for cs in p["status"].get("containerStatuses") or []:
                    cs["state"] = {"waiting": {"reason": "CreateContainerError", "message": err}}
            self._update(uid, failed)
            return

        def sandbox_ready(p):
            p["status"]["podIP"], p["status"]["podIPs"] = ip, [{"ip": ip}]
            _set_cond(p, "PodReadyToStartContainers", "True")
        self._update(uid, sandbox_ready)
        for c in spec["containers"]:
            threading.Thread(target=self._run_container, args=(uid, pod, c), daemon=True).start()

    def _run_container(self, uid, pod, cspec):
        st = self.state(uid)
        ctr = st["containers"][cspec["name"]]
        image = cspec["image"]
        restart_policy = pod["spec"].get("restartPolicy", "Always")
        if "doesnotexist" in image:
            full = _full_image(image)
            msg = ('failed to pull and unpack image "%s": failed to resolve reference "%s": pull access '
                   'denied, repository does not exist or may require authorization: server message: '
                   'insufficient_scope: authorization failed' % (full, full))
            self._set_container(uid, cspec["name"], {"waiting": {"reason": "ErrImagePull", "message": msg}})
            time.sleep(1.0)
            n = 0
            while not st["stopping"]:
                self._set_container(uid, cspec["name"], {"waiting": {
                    "reason": "ImagePullBackOff", "message": 'Back-off pulling image "%s"' % image}}
                    if n % 2 == 0 else {"waiting": {"reason": "ErrImagePull", "message": msg}})
                n += 1
                for _ in range(50):
                    if st["stopping"]:
                        return
                    time.sleep(0.1)
            return
        restarts = 0
        backoff = 1.0
        while not st["stopping"]:
            argv = list(cspec.get("command") or []) + list(cspec.get("args") or [])
            if not argv:
                # The host base has no image entrypoint: an interactive shell for stdin
                # containers (as busybox's CMD), else an idle command.
                argv = ["sh"] if cspec.get("stdin") else ["sleep", "infinity"]
            if cspec.get("workingDir"):
                self.ac("exec", _sandbox_name(pod), "--", "mkdir", "-p", cspec["workingDir"])
            cmd = self.exec_argv(pod, cspec, argv, stdin=bool(cspec.get("stdin")))
            started = ko.now_rfc3339()
            ctr.stdin_closed = False
            ctr.done = False
            try:
                p = subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE if cspec.get("stdin") else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            except OSError as e:
                self._set_container(uid, cspec["name"], {"waiting": {"reason": "RunContainerError", "message": str(e)}})
                return
            ctr.proc = p
            self._set_container(uid, cspec["name"], {"running": {"startedAt": started}}, ready=True,
                                started=True, cid=_cid(pod, cspec["name"], restarts))
            pumps = [threading.Thread(target=_pump, args=(p.stdout, ctr, 1), daemon=True),
                     threading.Thread(target=_pump, args=(p.stderr, ctr, 2), daemon=True)]
            for t in pumps:
                t.start()
            rc = p.wait()
            for t in pumps:
                t.join()
            ctr.finish()
            if st["stopping"]:
                return
            code = rc if rc >= 0 else 128 - rc
            term = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": started, "finishedAt": ko.now_rfc3339(),
                                   "containerID": _cid(pod, cspec["name"], restarts)}}
            again = restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)
            if not again:
                self._set_container(uid, cspec["name"], term, ready=False, started=False)
                self._maybe_finish(uid)
                return
            restarts += 1
            self._set_container(uid, cspec["name"], {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off %ds restarting failed container=%s pod=%s_%s(%s)" % (
                    int(backoff), cspec["name"], st["name"], st["ns"], uid)}},
                ready=False, started=False, last=term, restarts=restarts)
            ctr.prev_chunks, ctr.chunks = ctr.chunks, []
            deadline = time.time() + backoff
            while time.time() < deadline and not st["stopping"]:
                time.sleep(0.1)
            backoff = min(backoff * 2, self.backoff_cap)

    def _set_container(self, uid, cname, state, ready=False, started=False, cid=None, last=None, restarts=None):
        def fn(p):
            for cs in p["status"].get("containerStatuses") or []:
                if cs["name"] != cname:
                    continue
                cs["state"] = state
                cs["ready"] = ready
                cs["started"] = started
                if last is not None:
                    cs["lastState"] = last
                if restarts is not None:
                    cs["restartCount"] = restarts
                if "running" in state or "terminated" in state:
                    c = next(c for c in p["spec"]["containers"] if c["name"] == cname)
                    cs["image"] = _full_image(c["image"])
                    cs["imageID"] = _image_id(_full_image(c["image"]))
                    if cid:
                        cs["containerID"] = cid
                    elif "terminated" in state:
                        cs["containerID"] = state["terminated"].get("containerID", cs.get("containerID"))
            css = p["status"].get("containerStatuses") or []
            notready = [c["name"] for c in css if not c["ready"]]
            if notready:
                m = "containers with unready status: [%s]" % " ".join(notready)
                _set_cond(p, "Ready", "False", "ContainersNotReady", m)
                _set_cond(p, "ContainersReady", "False", "ContainersNotReady", m)
            else:
                _set_cond(p, "Ready", "True")
                _set_cond(p, "ContainersReady", "True")
            if any("running" in c["state"] for c in css) or any(c.get("restartCount") for c in css):
                p["status"]["phase"] = "Running"
        self._update(uid, fn)

    def _maybe_finish(self, uid):
        def fn(p):
            css = p["status"].get("containerStatuses") or []
            if css and all("terminated" in c["state"] for c in css):
                ok = all(c["state"]["terminated"]["exitCode"] == 0 for c in css)
                p["status"]["phase"] = "Succeeded" if ok else "Failed"
                for t in ("Ready", "ContainersReady"):
                    _set_cond(p, t, "False", "PodCompleted", None)
                _set_cond(p, "PodReadyToStartContainers", "False")
                return True
            return False
        res = {}

        def wrap(p):
            res["done"] = fn(p)
        self._update(uid, wrap)
        if res.get("done"):
            # The kubelet tears the pod sandbox down once every container has ended.
            st = self.state(uid)
            if st and st["sandbox"]:
                self.ac("stop", st["sandbox"])

    def delete(self, uid):
        """Kills the pod's processes and removes its sandbox (blocking)."""
        st = self.state(uid)
        if st is None:
            return
        st["stopping"] = True
        for c in st["containers"].values():
            p = c.proc
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except OSError:
                    pass
        name = st["sandbox"] or None
        if name:
            self.ac("remove", name)
        with self.lock:
            self.pods.pop(uid, None)

    def shutdown(self):
        with self.lock:
            uids = list(self.pods)
        for uid in uids:
            self.delete(uid)
        # Anything this home still holds (a pod thread that raced the shutdown).
        r = self.ac("list", "--json")
        try:
            import json
            j = json.loads(r.stdout or b"[]")
            items = j if isinstance(j, list) else j.get("sandboxes", [])
            for s in items:
                self.ac("remove", s["name"])
        except (ValueError, KeyError, TypeError):
            pass


def _pump(f, ctr, stream):
    while True:
        try:
            b = os.read(f.fileno(), 65536)
        except OSError:
            b = b""
        if not b:
            f.close()
            return
        ctr.add(stream, b)


def _cond(t, status, ts, reason=None, message=None):
    c = {"type": t, "status": status, "lastProbeTime": None, "lastTransitionTime": ts}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _set_cond(p, t, status, reason=None, message=None):
    conds = p["status"].setdefault("conditions", [])
    for c in conds:
        if c["type"] == t:
            if c["status"] != status:
                c["lastTransitionTime"] = ko.now_rfc3339()
            c["status"] = status
            c.pop("reason", None)
            c.pop("message", None)
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            return
    conds.append(_cond(t, status, ko.now_rfc3339(), reason, message))
