"""The client half of the test Nomad agent: allocations as native agentcell sandboxes.

Each placed allocation gets one sandbox of the agent's AGENTCELL_HOME (`agentcell create`
with the group's resources as limits, then `start`); each task's command (Config.command +
Config.args, for every driver) runs in it with `agentcell exec`, stdout and stderr written
straight into alloc/logs/TASK.stdout.0 / .stderr.0 on the host. Task states and events
follow Nomad's task runner (client/allocrunner/taskrunner): Received, Task Setup, Failed
Validation (the driver's HCL schema), Driver Failure, Started, Terminated, Restarting / Not
Restarting (restart policy), Killing, Killed, Sibling Task Failed.

The alloc dir seen by /v1/client/fs: "alloc/..." is the agent's host directory
STATE/allocs/ID/alloc (data, logs, tmp); "TASK/local", "TASK/secrets" and "TASK/tmp" are
/local, /secrets and /tmp inside the sandbox (read with `agentcell exec`); "TASK/private"
an empty host directory.
"""

import base64
import json
import os
import posixpath
import re
import signal
import subprocess
import threading
import time

import ndecode
from njobs import SEC, ApiError, now_ns, rfc3339, task_event, task_state_new

CTL = set(range(0, 32)) - {9, 10, 12, 13, 27}


def sniff(data, name=""):
    """net/http.DetectContentType for the cases that matter here."""
    if name.endswith(".json"):
        return "application/json"
    if not data:
        return "text/plain; charset=utf-8"
    head = data[:512].lstrip(b"\t\n\x0c\r ")
    if head[:5].lower() in (b"<html", b"<!doc") or head[:4].lower() == b"<hea":
        return "text/html; charset=utf-8"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x1f\x8b\x08"):
        return "application/x-gzip"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"PK\x03\x04"):
        return "application/zip"
    if any(b in CTL for b in data[:512]):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"


def go_filemode(kind, perm):
    """Go's fs.FileMode.String() from a find(1) %y type letter and %m permission bits."""
    pre = ""
    if kind == "d":
        pre += "d"
    if kind == "l":
        pre += "L"
    if kind in ("b", "c"):
        pre += "D"
    if kind == "p":
        pre += "p"
    if kind == "s":
        pre += "S"
    if perm & 0o4000:
        pre += "u"
    if perm & 0o2000:
        pre += "g"
    if kind == "c":
        pre += "c"
    if perm & 0o1000:
        pre += "t"
    rwx = "".join(c if perm & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
    return (pre or "-") + rwx


def _kind_of_mode(mode):
    import stat as st
    for test, k in ((st.S_ISDIR, "d"), (st.S_ISLNK, "l"), (st.S_ISBLK, "b"), (st.S_ISCHR, "c"),
                    (st.S_ISFIFO, "p"), (st.S_ISSOCK, "s")):
        if test(mode):
            return k
    return "f"


def file_info(name, kind, size, perm, mtime_ns, ctype=None):
    fi = {"Name": name, "IsDir": kind == "d", "Size": size, "FileMode": go_filemode(kind, perm),
          "ModTime": rfc3339(mtime_ns)}
    if ctype is not None:
        fi["ContentType"] = ctype
    return fi


def _ns_of(tsec):
    if "." in tsec:
        a, b = tsec.split(".", 1)
        return int(a) * SEC + int((b + "000000000")[:9])
    return int(tsec) * SEC


TASK_SUBDIRS = ("local", "secrets", "tmp")


class Task:
    """One task of an allocation: its process, state updates, restarts."""

    def __init__(self, runner, spec):
        self.r = runner
        self.spec = spec
        self.name = spec["Name"]
        self.proc = None
        self.killing = False
        self.done = threading.Event()
        self.started = False


class AllocRunner:
    def __init__(self, client, aid):
        self.c = client
        self.aid = aid
        with client.state.cond:
            a = client.state.allocs[aid]
            self.job = client.state.alloc_jobs[aid]
            self.tg = next(g for g in self.job["TaskGroups"] if g["Name"] == a["TaskGroup"])
        self.tasks = {t["Name"]: Task(self, t) for t in self.tg["Tasks"]}
        self.sandbox = None
        self.sandbox_args = None
        self.stopping = False
        self.destroyed = False
        self.lock = threading.Lock()
        self.thread = None
        self.stopped = threading.Event()
        self.dir = os.path.join(client.allocs_dir, aid)
        self.logs = os.path.join(self.dir, "alloc", "logs")

    # ---------------------------------------------------------------- state updates

    def _update(self, fn):
        self.c.state.update_alloc(self.aid, fn)

    def event(self, task, ev, state=None, failed=None, **fields):
        def fn(a):
            ts = a["TaskStates"][task]
            ts["Events"].append(ev)
            if len(ts["Events"]) > 10:  # Nomad keeps the last 10 events
                del ts["Events"][0]
            if state:
                ts["State"] = state
            if failed is not None:
                ts["Failed"] = failed
            ts.update(fields)
            self._client_status(a)
        self._update(fn)

    def _client_status(self, a):
        states = a["TaskStates"].values()
        if any(s["State"] == "dead" and s["Failed"] for s in states) and all(s["State"] == "dead" for s in states):
            a["ClientStatus"], a["ClientDescription"] = "failed", "Failed tasks"
        elif any(s["State"] == "running" for s in states):
            a["ClientStatus"], a["ClientDescription"] = "running", "Tasks are running"
        elif all(s["State"] == "dead" for s in states):
            if any(s["Failed"] for s in states):
                a["ClientStatus"], a["ClientDescription"] = "failed", "Failed tasks"
            else:
                a["ClientStatus"], a["ClientDescription"] = "complete", "All tasks have completed"
        else:
            a["ClientStatus"], a["ClientDescription"] = "pending", "No tasks have started"

    # ---------------------------------------------------------------- run

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - a bug of the fake fails the alloc visibly
            import traceback
            traceback.print_exc()
            for t in self.tasks.values():
                if t.r.task_state(t.name)["State"] != "dead":
                    self.event(t.name, task_event("Setup Failure", SetupError="test agent bug: %r" % e,
                                                  FailsTask=True), "dead", True, FinishedAt=rfc3339(now_ns()))

    def task_state(self, name):
        with self.c.state.cond:
            a = self.c.state.allocs.get(self.aid)
            return dict(((a or {}).get("TaskStates") or {}).get(name) or {})

    def _run(self):
        def init(a):
            a["TaskStates"] = {n: task_state_new() for n in self.tasks}
            for n in self.tasks:
                a["TaskStates"][n]["Events"].append(task_event("Received"))
            self._client_status(a)
        self._update(init)
        for sub in ("alloc/data", "alloc/logs", "alloc/tmp"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        for n in self.tasks:
            os.makedirs(os.path.join(self.dir, n, "private"), exist_ok=True)
        for n in self.tasks:
            self.event(n, task_event("Task Setup", Message="Building Task Directory"))
        # The driver config is decoded against the driver's schema (task runner's runDriver).
        ok = []
        for n, t in self.tasks.items():
            errs = ndecode.driver_config_errors(t.spec["Driver"], t.spec.get("Config"))
            if errs:
                msg = ndecode.multierror(["failed to parse config: "] + errs)
                self.event(n, task_event("Failed Validation", ValidationError=msg))
                self._not_restarting(t, "Policy allows no restarts" if t.spec["RestartPolicy"]["Attempts"] == 0
                                     else "Error was unrecoverable")
            else:
                ok.append(t)
        if not ok or self.stopping:
            return
        err = self._make_sandbox()
        if self.stopping:
            return
        if err:
            for t in ok:
                self.event(t.name, task_event("Driver Failure", DriverError=err))
                self._not_restarting(t, "Error was unrecoverable")
            return
        threads = [threading.Thread(target=self._run_task, args=(t,), daemon=True, name="task-" + t.name)
                   for t in ok]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    def _not_restarting(self, t, reason):
        self.event(t.name, task_event("Not Restarting", RestartReason=reason, FailsTask=True), "dead", True,
                   FinishedAt=rfc3339(now_ns()))
        t.done.set()
        self._kill_siblings(t)

    def _kill_siblings(self, failed):
        for t in self.tasks.values():
            if t is failed or t.done.is_set():
                continue
            self.event(t.name, task_event("Sibling Task Failed", FailedSibling=failed.name))
            self.kill_task(t, reason=None)

    # ---------------------------------------------------------------- sandbox

    def _resources(self):
        mem = cpu_mhz = cores = 0
        pids = None
        ro = False
        for t in self.tg["Tasks"]:
            r = t["Resources"]
            mem += r.get("MemoryMaxMB") or r["MemoryMB"]
            cpu_mhz += r.get("CPU") or 0
            cores += r.get("Cores") or 0
            cfg = t.get("Config") or {}
            if isinstance(cfg.get("pids_limit"), (int, float)) and cfg["pids_limit"] > 0:
                pids = int(cfg["pids_limit"]) if pids is None else pids + int(cfg["pids_limit"])
            if cfg.get("readonly_rootfs") is True:
                ro = True
        cpus = cores if cores else max(0.01, round(cpu_mhz / self.c.mhz_per_core, 2))
        return max(16, mem), cpus, pids, ro

    def _make_sandbox(self):
        name = "nomad-" + self.aid.replace("-", "")[:20]
        mem, cpus, pids, ro = self._resources()
        args = ["create", name, "--disk", "unlimited", "--memory", str(mem), "--cpus", "%g" % cpus,
                "--label", "nomad-alloc=" + self.aid, "--label", "nomad-job=" + self.job["ID"]]
        if pids:
            args += ["--pids", str(pids)]
        if ro:
            args.append("--read-only")
        with self.lock:
            if self.stopping:
                return "allocation stopped before its tasks started"
            self.sandbox = name
            self.sandbox_args = args[2:]
        r = self.c.ac(*args)
        if r.returncode != 0:
            with self.lock:
                self.sandbox = None
            return "failed to create the task's sandbox: " + _err(r)
        r = self.c.ac("start", name)
        if r.returncode == 0 and not ro:
            r = self.c.ac("exec", name, "--", "mkdir", "-p", "/local", "/secrets", "/alloc")
        if r.returncode != 0:
            return "failed to start the task's sandbox: " + _err(r)
        with self.lock:
            if self.stopping:
                return "allocation stopped before its tasks started"
        return None

    # ---------------------------------------------------------------- tasks

    def env(self, t):
        a_name = "%s.%s[0]" % (self.job["ID"], self.tg["Name"])
        r = t.spec["Resources"]
        env = {"NOMAD_ALLOC_ID": self.aid, "NOMAD_SHORT_ALLOC_ID": self.aid[:8], "NOMAD_ALLOC_NAME": a_name,
               "NOMAD_ALLOC_INDEX": "0", "NOMAD_TASK_NAME": t.name, "NOMAD_GROUP_NAME": self.tg["Name"],
               "NOMAD_JOB_ID": self.job["ID"], "NOMAD_JOB_NAME": self.job["Name"],
               "NOMAD_NAMESPACE": self.job["Namespace"], "NOMAD_REGION": self.job["Region"],
               "NOMAD_DC": self.c.state.datacenter, "NOMAD_ALLOC_DIR": "/alloc", "NOMAD_TASK_DIR": "/local",
               "NOMAD_SECRETS_DIR": "/secrets", "NOMAD_MEMORY_LIMIT": str(r["MemoryMB"]),
               "NOMAD_CPU_LIMIT": str(r.get("CPU") or 0)}
        if r.get("MemoryMaxMB"):
            env["NOMAD_MEMORY_MAX_LIMIT"] = str(r["MemoryMaxMB"])
        if r.get("Cores"):
            env["NOMAD_CPU_CORES"] = ",".join(str(i) for i in range(r["Cores"]))
        for k, v in (self.job.get("Meta") or {}).items():
            env["NOMAD_META_" + re.sub(r"[^A-Za-z0-9_]", "_", k)] = v
        for k, v in (t.spec.get("Env") or {}).items():
            env[k] = re.sub(r"\$\{([A-Za-z0-9_.]+)\}", lambda m: env.get(m.group(1), m.group(0)), v)
        return env

    def workdir(self, t):
        cfg = t.spec.get("Config") or {}
        return cfg.get("working_dir") if t.spec["Driver"] == "podman" else cfg.get("work_dir")

    def exec_argv(self, t, argv, interactive=False, tty=False):
        cmd = [self.c.agentcell, "exec"]
        if interactive:
            cmd.append("-i")
        if tty:
            cmd.append("-t")
        for k, v in sorted(self.env(t).items()):
            cmd += ["--env", "%s=%s" % (k, v)]
        if self.workdir(t):
            cmd += ["-w", self.workdir(t)]
        if t.spec.get("User"):
            cmd += ["-u", t.spec["User"]]
        return cmd + [self.sandbox, "--"] + list(argv)

    def _argv(self, t):
        """The command line of the task (driver semantics) or a Driver Failure message."""
        cfg = t.spec.get("Config") or {}
        drv = t.spec["Driver"]
        args = [str(x) for x in (cfg.get("args") or [])]
        if drv in ("docker", "podman"):
            if drv == "docker" and cfg.get("privileged") is True:
                return None, ('Failed to create container configuration for image "%s" ("sha256:%s"): '
                              'Docker privileged mode is disabled on this Nomad agent'
                              % (cfg.get("image"), "0" * 64))
            ep = cfg.get("entrypoint")
            ep = [ep] if isinstance(ep, str) else [str(x) for x in (ep or [])]
            cmd = [str(cfg["command"])] if cfg.get("command") not in (None, "") else []
            argv = ep + cmd + args
            if not argv:
                return None, ('Failed to start container: the test agent has no image entrypoint for "%s": '
                              'set Config.command' % cfg.get("image"))
            return argv, None
        return [str(cfg["command"])] + args, None

    def _missing(self, t, argv):
        """The Driver Failure of a command the sandbox does not have, or None."""
        exe = argv[0]
        probe = 'command -v -- "$1" >/dev/null 2>&1 || [ -x "$1" ]'
        r = self.c.ac("exec", *(["-w", self.workdir(t)] if self.workdir(t) else []), self.sandbox, "--",
                      "sh", "-c", probe, "sh", exe)
        if r.returncode == 0:
            return None
        drv = t.spec["Driver"]
        if drv in ("docker", "podman"):
            return ('Failed to start container %s: API error (400): failed to create task for container: '
                    'failed to create shim task: OCI runtime create failed: runc create failed: unable to start '
                    'container process: error during container init: exec: "%s": executable file not found in '
                    '$PATH: unknown' % (self.aid.replace("-", "") + "0" * 32, exe))
        return ('failed to launch command with executor: rpc error: code = Unknown desc = file %s not found '
                'under path %s/%s' % (exe, self.dir, t.name))

    def _run_task(self, t):
        rp = t.spec["RestartPolicy"]
        restarts = 0
        window_start = time.time()
        while True:
            argv, err = self._argv(t)
            if err is None:
                err = self._missing(t, argv)
            if self.stopping:
                break
            if err:
                self.event(t.name, task_event("Driver Failure", DriverError=err))
                self._not_restarting(t, "Policy allows no restarts" if rp["Attempts"] == 0
                                     else "Error was unrecoverable")
                return
            code, sig = self._launch(t, argv)
            if code is None:
                break
            failed = code != 0
            self.event(t.name, task_event("Terminated", ExitCode=code, Signal=sig,
                                          Details={"exit_code": str(code), "signal": str(sig),
                                                   "oom_killed": "false"}))
            if t.killing or self.stopping:
                break
            # The restart tracker (client/allocrunner/taskrunner/restarts).
            on_success = self.job["Type"] == "service"
            if rp["Attempts"] == 0:
                if not failed and not on_success:
                    break
                self._not_restarting_exit(t, "Policy allows no restarts", failed)
                return
            if not failed and not on_success:
                break
            if time.time() - window_start > rp["Interval"] / SEC:
                restarts, window_start = 0, time.time()
            restarts += 1
            if restarts > rp["Attempts"]:
                if rp["Mode"] == "fail":
                    self._not_restarting_exit(
                        t, 'Exceeded allowed attempts %d in interval %s and mode is "fail"' % (
                            rp["Attempts"], _dur(rp["Interval"])), failed)
                    return
                delay, reason = rp["Interval"], "Exceeded allowed attempts, applying a delay"
                restarts = 0
            else:
                delay, reason = rp["Delay"], "Restart within policy"
            self.event(t.name, task_event("Restarting", RestartReason=reason, StartDelay=delay))
            end = time.time() + delay / SEC * self.c.state.delay_scale
            while time.time() < end and not self.stopping:
                time.sleep(0.05)
            if self.stopping:
                break

            def bump(a, name=t.name):
                ts = a["TaskStates"][name]
                ts["Restarts"] += 1
                ts["LastRestart"] = rfc3339(now_ns())
            self._update(bump)
        if not t.done.is_set():
            if t.killing or self.stopping:
                self._killed(t)
            else:
                self._dead(t, False)

    def _not_restarting_exit(self, t, reason, failed):
        self.event(t.name, task_event("Not Restarting", RestartReason=reason, FailsTask=failed), "dead", failed,
                   FinishedAt=rfc3339(now_ns()))
        t.done.set()
        if failed:
            self._kill_siblings(t)

    def _dead(self, t, failed):
        def fn(a, name=t.name):
            ts = a["TaskStates"][name]
            ts["State"] = "dead"
            ts["Failed"] = failed
            ts["FinishedAt"] = rfc3339(now_ns())
            self._client_status(a)
        self._update(fn)
        t.done.set()

    def _killed(self, t):
        self.event(t.name, task_event("Killed"), "dead", None, FinishedAt=rfc3339(now_ns()))
        t.done.set()

    def _launch(self, t, argv):
        """Runs argv as the task's process: (exit code, signal)."""
        out = open(os.path.join(self.logs, "%s.stdout.0" % t.name), "ab")
        err = open(os.path.join(self.logs, "%s.stderr.0" % t.name), "ab")
        try:
            cmd = self.exec_argv(t, argv)
            with self.lock:
                if self.stopping:
                    return None, None
                t.proc = subprocess.Popen(cmd, env=self.c.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                          start_new_session=True)
        finally:
            out.close()
            err.close()
        t.started = True
        ts = rfc3339(now_ns())
        self.event(t.name, task_event("Started"), "running", None, StartedAt=ts)
        rc = t.proc.wait()
        if rc < 0:
            return 128 - rc, -rc
        return rc, 0

    # ---------------------------------------------------------------- stop

    def kill_task(self, t, reason=None):
        """SIGTERM (relayed by agentcell exec to the command), SIGKILL after KillTimeout."""
        t.killing = True
        kt = t.spec.get("KillTimeout") or 5 * SEC
        p = t.proc
        if p is None or p.poll() is not None:
            return
        self.event(t.name, task_event("Killing", KillTimeout=kt, KillReason=reason or ""))
        try:
            os.kill(p.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            p.wait(kt / SEC)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()

    def stop(self):
        """The server stopped the alloc: kill the tasks, remove the sandbox."""
        with self.lock:
            again = self.stopping
            self.stopping = True
        if again:
            self.stopped.wait(90)
            return
        try:
            self._stop()
        finally:
            self.stopped.set()

    def _stop(self):
        ths = [threading.Thread(target=self.kill_task, args=(t,), daemon=True) for t in self.tasks.values()
               if not t.done.is_set()]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        if self.thread is not None:
            self.thread.join(60)
        # A task that never started is dead too.
        for t in self.tasks.values():
            st = self.task_state(t.name)
            if st and st.get("State") != "dead":
                self._killed(t)
        self.remove_sandbox()

    def remove_sandbox(self):
        with self.lock:
            name, self.sandbox = self.sandbox, None
        if name:
            r = self.c.ac("remove", name)
            if r.returncode != 0:
                self.c.log("agentcell remove %s: %s" % (name, _err(r)))

    def destroy(self):
        """GC: the sandbox and the alloc dir go."""
        self.stop()
        self.destroyed = True
        subprocess.run(["rm", "-rf", "--one-file-system", self.dir], check=False)


def _err(r):
    return (r.stderr or r.stdout or b"").decode(errors="replace").strip()


def _dur(ns):
    from njobs import _go_duration
    return _go_duration(ns)


# ====================================================================== the client

class Client:
    def __init__(self, state, agentcell, home, state_dir, log):
        self.state = state
        self.agentcell = agentcell
        self.home = home
        self.log = log
        self.allocs_dir = os.path.join(state_dir, "allocs")
        os.makedirs(self.allocs_dir, exist_ok=True)
        self.env = dict(os.environ, AGENTCELL_HOME=home)
        for k in ("AGENTCELL_API_KEY", "AGENTKERNEL_API_KEY", "AGENTCELL_BACKEND", "NOMAD_ADDR", "NOMAD_TOKEN"):
            self.env.pop(k, None)
        self.runners = {}
        self.lock = threading.Lock()
        self.mhz_per_core = max(1, state.node_cpu // max(1, state.node_cores))
        state.client = self

    def ac(self, *args, timeout=120):
        try:
            return subprocess.run([self.agentcell, *args], env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, b"", b"timed out")

    def runner(self, aid):
        with self.lock:
            return self.runners.get(aid)

    # Called by the scheduler under the state lock: no blocking work here.
    def on_place(self, aid):
        r = AllocRunner(self, aid)
        with self.lock:
            self.runners[aid] = r
        r.thread = threading.Thread(target=r.run, daemon=True, name="alloc-" + aid[:8])
        r.thread.start()

    def on_stop(self, aid):
        r = self.runner(aid)
        if r is not None:
            threading.Thread(target=r.stop, daemon=True, name="stop-" + aid[:8]).start()

    def gc(self, aids):
        ths = []
        for aid in aids:
            with self.lock:
                r = self.runners.pop(aid, None)
            if r is not None:
                th = threading.Thread(target=r.destroy, daemon=True)
                th.start()
                ths.append(th)
        for th in ths:
            th.join(60)

    def shutdown(self):
        with self.lock:
            rs = list(self.runners.values())
        ths = [threading.Thread(target=r.stop, daemon=True) for r in rs]
        for th in ths:
            th.start()
        for th in ths:
            th.join(60)
        # Anything this home still holds.
        r = self.ac("list", "--json")
        try:
            j = json.loads(r.stdout or b"[]")
            items = j if isinstance(j, list) else j.get("sandboxes", [])
            for s in items:
                if s.get("name", "").startswith("nomad-"):
                    self.ac("remove", s["name"])
        except (ValueError, TypeError, AttributeError):
            pass

    # ---------------------------------------------------------------- the alloc dir (fs)

    def resolve(self, aid, path):
        """-> (runner, kind, where): kind "root" | "taskdir" (where: task) | "host" (where: host
        path) | "sandbox" (where: (task, path in the sandbox)). Raises ApiError."""
        r = self.runner(aid)
        if r is None:
            raise ApiError(404, 'Unknown allocation "%s"' % aid)
        base = r.dir
        full = posixpath.normpath(posixpath.join(base, path.lstrip("/") if path.startswith("/") else path))
        if full != base and not full.startswith(base + "/"):
            raise ApiError(500, "Path escapes the alloc directory")
        rel = full[len(base):].strip("/")
        parts = rel.split("/") if rel else []
        if not parts:
            return r, "root", None
        if parts[0] == "alloc":
            return r, "host", full
        if parts[0] in r.tasks:
            if len(parts) == 1:
                return r, "taskdir", parts[0]
            if parts[1] in TASK_SUBDIRS:
                return r, "sandbox", (parts[0], "/" + "/".join(parts[1:]))
            if parts[1] == "private":
                return r, "host", full
        return r, "host", full  # anything else does not exist on the host: ENOENT

    def _sandbox_of(self, r):
        with r.lock:
            return r.sandbox

    def stat(self, aid, path):
        """AllocFileInfo with ContentType (FileSystem.Stat). Raises ApiError."""
        r, kind, where = self.resolve(aid, path)
        name = posixpath.basename(posixpath.normpath("/" + path)) or "/"
        if kind in ("root", "taskdir"):
            return file_info(posixpath.basename(r.dir) if kind == "root" else where, "d", 4096, 0o777,
                             int(os.stat(r.dir).st_mtime_ns), "application/octet-stream")
        if kind == "host":
            try:
                st = os.stat(where)
            except OSError as e:
                raise ApiError(404 if e.errno == 2 else 500, "stat %s: %s" % (where, _strerror(e)))
            k = _kind_of_mode(st.st_mode)
            ctype = "application/octet-stream"
            if k == "f" and st.st_size:
                with open(where, "rb") as f:
                    ctype = sniff(f.read(512), where)
            elif where.endswith(".json"):
                ctype = "application/json"
            return file_info(posixpath.basename(where), k, st.st_size, st.st_mode & 0o7777, st.st_mtime_ns, ctype)
        task, spath = where
        sb = self._sandbox_of(r)
        hostish = os.path.join(r.dir, task) + spath
        if not sb:
            raise ApiError(404, "stat %s: no such file or directory" % hostish)
        script = ('find -L "$1" -maxdepth 0 -printf "%y\\t%s\\t%m\\t%T@\\n" || exit 3; '
                  'if [ -f "$1" ] && [ -r "$1" ]; then head -c 512 -- "$1" | base64 -w0; fi')
        res = self.ac("exec", sb, "--", "sh", "-c", script, "sh", spath, timeout=30)
        if res.returncode == 3 or not res.stdout:
            msg = _err(res)
            if "Permission denied" in msg:
                raise ApiError(500, "stat %s: permission denied" % hostish)
            raise ApiError(404, "stat %s: no such file or directory" % hostish)
        first, _, rest = res.stdout.decode(errors="replace").partition("\n")
        k, size, perm, mt = first.split("\t")
        head = base64.b64decode(rest.strip() or b"")
        ctype = sniff(head, spath) if (k == "f" and int(size)) else (
            "application/json" if spath.endswith(".json") else "application/octet-stream")
        return file_info(name, k, int(size), int(perm, 8), _ns_of(mt), ctype)

    def ls(self, aid, path):
        """[AllocFileInfo] (FileSystem.List). Raises ApiError."""
        r, kind, where = self.resolve(aid, path)
        if kind == "root":
            st = os.stat(r.dir)
            out = [file_info("alloc", "d", 4096, 0o777, st.st_mtime_ns)]
            for n in sorted(r.tasks):
                out.append(file_info(n, "d", 4096, 0o777, st.st_mtime_ns))
            return out
        if kind == "taskdir":
            st = os.stat(r.dir)
            return [file_info(n, "d", 4096, 0o777 if n == "tmp" else 0o755, st.st_mtime_ns)
                    for n in ("local", "private", "secrets", "tmp")]
        if kind == "host":
            try:
                names = sorted(os.listdir(where))
            except OSError as e:
                if e.errno == 2:
                    raise ApiError(404, "open %s: no such file or directory" % where)
                raise ApiError(500, "readdirent %s: %s" % (where, _strerror(e)) if e.errno == 20
                               else "open %s: %s" % (where, _strerror(e)))
            out = []
            for n in names:
                try:
                    st = os.lstat(os.path.join(where, n))
                except OSError:
                    continue
                out.append(file_info(n, _kind_of_mode(st.st_mode), st.st_size, st.st_mode & 0o7777, st.st_mtime_ns))
            return out
        task, spath = where
        sb = self._sandbox_of(r)
        hostish = os.path.join(r.dir, task) + spath
        if not sb:
            raise ApiError(404, "open %s: no such file or directory" % hostish)
        script = ('[ -e "$1" ] || exit 3; [ -d "$1" ] || exit 4; '
                  'find "$1" -mindepth 1 -maxdepth 1 -printf "%f\\t%y\\t%s\\t%m\\t%T@\\n"')
        res = self.ac("exec", sb, "--", "sh", "-c", script, "sh", spath, timeout=30)
        if res.returncode == 3:
            raise ApiError(404, "open %s: no such file or directory" % hostish)
        if res.returncode == 4:
            raise ApiError(500, "readdirent %s: not a directory" % hostish)
        if res.returncode != 0:
            raise ApiError(500, "open %s: %s" % (hostish, _err(res)))
        out = []
        for line in res.stdout.decode(errors="replace").splitlines():
            try:
                n, k, size, perm, mt = line.split("\t")
            except ValueError:
                continue
            out.append(file_info(n, k, int(size), int(perm, 8), _ns_of(mt)))
        return sorted(out, key=lambda f: f["Name"])

    def open_read(self, aid, path):
        """For cat: -> (file-like with read(n), close()). Raises ApiError as Nomad's Stream."""
        info = self.stat(aid, path)
        if info["IsDir"]:
            raise ApiError(400, 'file "%s" is a directory' % path)
        r, kind, where = self.resolve(aid, path)
        if kind == "host":
            if posixpath.basename(posixpath.dirname(where)) == "private" or "/private/" in where[len(r.dir):]:
                raise ApiError(500, "Reading private file prohibited: %s" % path)
            return open(where, "rb")
        task, spath = where
        if spath == "/secrets" or spath.startswith("/secrets/"):
            raise ApiError(500, "Reading secret file prohibited: %s" % path)
        sb = self._sandbox_of(r)
        if not sb:
            raise ApiError(400, "stat %s: no such file or directory" % (os.path.join(r.dir, task) + spath))
        p = subprocess.Popen([self.agentcell, "exec", sb, "--", "cat", "--", spath], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        return _ProcReader(p)


class _ProcReader:
    def __init__(self, p):
        self.p = p

    def read(self, n):
        return os.read(self.p.stdout.fileno(), n)

    def close(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
        self.p.stdout.close()
        self.p.wait()


def _strerror(e):
    return (e.strerror or str(e)).lower()
