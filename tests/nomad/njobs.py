"""The server half of the test Nomad agent: jobs, evaluations, allocations, the scheduler.

One State object holds every object under one lock (a Condition, so blocking queries
wait on it). Indexes work as Nomad's raft indexes: one counter, each write takes the next
value and records it as the index of the tables it touched ("jobs", "evals", "allocs");
objects carry CreateIndex/ModifyIndex.

The scheduler is a worker thread that processes pending evaluations as Nomad's generic
scheduler does for batch and service jobs on one node: feasibility (datacenter, node pool,
drivers), then resources (cpu MHz, cores, memory) against what the node's other allocations
use. A placement failure completes the evaluation with FailedTGAllocs (an AllocMetric per
task group) and creates a blocked evaluation that is retried when capacity frees up.
Failed allocations are rescheduled by the group's ReschedulePolicy.

Sources: nomad/structs (alloc.go, eval.go, structs.go), nomad/job_endpoint.go (Register,
Deregister), scheduler/ (generic_sched.go, reconciler, feasible/feasible.go: "missing
drivers"), api/jobs.go and api/tasks.go (Canonicalize: the defaults).

Over 800 lines on purpose: the fake server's routes share one state object and its lock;
split, each part would import all of it back.
"""

import copy
import fnmatch
import threading
import time
import uuid
from collections import deque

import ndecode

SEC = 1_000_000_000
ZERO_TIME = "0001-01-01T00:00:00Z"
TERMINAL_CLIENT = ("complete", "failed", "lost")


def now_ns():
    return time.time_ns()


def rfc3339(ns):
    """Go's time.Time JSON (RFC 3339 with nanoseconds, UTC)."""
    if not ns:
        return ZERO_TIME
    s, frac = divmod(ns, SEC)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return base + ("." + ("%09d" % frac).rstrip("0") if frac else "") + "Z"


def new_id():
    return str(uuid.uuid4())


class ApiError(Exception):
    """An HTTP error answer: status code and plain-text body (as Nomad's CodedError)."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


# ====================================================================== defaults (api + structs)

def _dflt(d, k, v):
    if d.get(k) is None:
        d[k] = v


def _restart_default(jtype):
    if jtype == "batch":
        return {"Attempts": 3, "Interval": 24 * 3600 * SEC, "Delay": 15 * SEC, "Mode": "fail", "RenderTemplates": False}
    return {"Attempts": 2, "Interval": 1800 * SEC, "Delay": 15 * SEC, "Mode": "fail", "RenderTemplates": False}


def _reschedule_default(jtype):
    if jtype == "batch":
        return {"Attempts": 1, "Interval": 24 * 3600 * SEC, "Delay": 5 * SEC, "DelayFunction": "constant",
                "MaxDelay": 0, "Unlimited": False}
    return {"Attempts": 0, "Interval": 0, "Delay": 30 * SEC, "DelayFunction": "exponential",
            "MaxDelay": 3600 * SEC, "Unlimited": True}


def _merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        if v is not None:
            out[k] = v
    return out


def canonicalize(job):
    """api.Job.Canonicalize + structs.Job.Canonicalize: the defaults a real agent fills in."""
    _dflt(job, "ID", "")
    _dflt(job, "Name", job["ID"])
    for k, v in (("ParentID", ""), ("Namespace", "default"), ("Priority", 50), ("Stop", False), ("Region", "global"),
                 ("NodePool", ""), ("Type", "service"), ("AllAtOnce", False), ("ConsulNamespace", ""),
                 ("VaultNamespace", ""), ("NomadTokenID", ""), ("Status", ""), ("StatusDescription", ""),
                 ("Stable", False), ("Version", 0), ("CreateIndex", 0), ("ModifyIndex", 0), ("JobModifyIndex", 0),
                 ("Dispatched", False), ("DispatchIdempotencyToken", ""), ("Payload", None), ("Meta", None),
                 ("Constraints", None), ("Affinities", None), ("Spreads", None), ("Periodic", None),
                 ("ParameterizedJob", None), ("Multiregion", None), ("UI", None), ("VersionTag", None)):
        if k not in job or (job[k] is None and v is not None):
            job[k] = v
    if not job.get("Datacenters"):
        job["Datacenters"] = ["*"]
    if not job["NodePool"]:
        job["NodePool"] = "default"
    jtype = job["Type"]
    if jtype == "service" and job.get("Update") is None:
        job["Update"] = {"Stagger": 30 * SEC, "MaxParallel": 1}
    job.setdefault("Update", None)
    for tg in job.get("TaskGroups") or []:
        if tg is None:
            continue
        _dflt(tg, "Count", 1)
        tg.setdefault("Name", None)
        ed = tg.get("EphemeralDisk") or {}
        tg["EphemeralDisk"] = _merge({"Sticky": False, "Migrate": False, "SizeMB": 300}, ed)
        tg["RestartPolicy"] = _merge(_restart_default(jtype), tg.get("RestartPolicy"))
        if jtype in ("batch", "service"):
            base = _reschedule_default(jtype)
            base = _merge(base, job.get("Reschedule"))
            tg["ReschedulePolicy"] = _merge(base, tg.get("ReschedulePolicy"))
        for k in ("Constraints", "Affinities", "Spreads", "Networks", "Meta", "Services", "Volumes", "Scaling"):
            tg.setdefault(k, None)
        for t in tg.get("Tasks") or []:
            if t is None:
                continue
            for k, v in (("Name", ""), ("Driver", ""), ("User", ""), ("Config", None), ("Env", None),
                         ("Meta", None), ("Leader", False), ("ShutdownDelay", 0), ("KillSignal", ""),
                         ("Kind", ""), ("Constraints", None), ("Services", None), ("Templates", None),
                         ("Artifacts", None), ("VolumeMounts", None), ("Lifecycle", None)):
                if k not in t:
                    t[k] = v
            r = dict(t.get("Resources") or {})
            if r.get("Cores") is None:
                r["Cores"] = 0
                _dflt(r, "CPU", 100)
            _dflt(r, "CPU", 0)
            _dflt(r, "MemoryMB", 300)
            _dflt(r, "MemoryMaxMB", 0)
            _dflt(r, "DiskMB", 0)
            r.setdefault("Networks", None)
            r.setdefault("Devices", None)
            t["Resources"] = r
            _dflt(t, "KillTimeout", 5 * SEC)
            t["LogConfig"] = _merge({"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False}, t.get("LogConfig"))
            t["RestartPolicy"] = _merge(tg["RestartPolicy"], t.get("RestartPolicy"))
    return job


# ====================================================================== validation

def validate(job, namespaces, pools):
    """The admission validators' errors (a flat list, as multierror.Append flattens)."""
    errs = []
    if job["Namespace"] not in namespaces:
        errs.append('job "%s" is in nonexistent namespace "%s"' % (job["ID"], job["Namespace"]))
    elif job["NodePool"] not in pools:
        errs.append('job "%s" is in nonexistent node pool "%s"' % (job["ID"], job["NodePool"]))
    # structs.Job.Validate
    if not job.get("Region"):
        errs.append("Missing job region")
    jid = job.get("ID") or ""
    if jid == "":
        errs.append("Missing job ID")
    elif " " in jid:
        errs.append("Job ID contains a space")
    elif "\0" in jid:
        errs.append("Job ID contains a null character")
    if not job.get("Name"):
        errs.append("Missing job name")
    elif "\0" in job["Name"]:
        errs.append("Job Name contains a null character")
    jtype = job.get("Type")
    if jtype not in ("service", "batch", "system", "sysbatch", "_core"):
        errs.append("Missing job type" if not jtype else 'Invalid job type: "%s"' % jtype)
    for dc in job.get("Datacenters") or []:
        if not dc:
            errs.append("Job datacenter must be non-empty string")
    tgs = job.get("TaskGroups") or []
    if not tgs:
        errs.append("Missing job task groups")
    seen = {}
    for i, tg in enumerate(tgs):
        tg = tg or {}
        name = tg.get("Name")
        if not name:
            errs.append("Job task group %d missing name" % (i + 1))
        elif name in seen:
            errs.append("Job task group %d redefines '%s' from group %d" % (i + 1, name, seen[name] + 1))
        else:
            seen[name] = i
    for tg in tgs:
        tg = tg or {}
        e = _validate_group(job, tg)
        if e:
            errs.append("Task group %s validation failed: %s" % (tg.get("Name") or "", ndecode.multierror(e)))
    # jobValidate
    if jtype == "_core":
        errs.append("job type cannot be core")
    if not 1 <= (job.get("Priority") or 0) <= 100:
        errs.append("job priority must be between [1, 100]")
    return errs


def _validate_group(job, tg):
    e = []
    if not tg.get("Name"):
        e.append("Missing task group name")
    if (tg.get("Count") or 0) < 0:
        e.append("Task group count can't be negative")
    tasks = tg.get("Tasks") or []
    if not tasks:
        e.append("Missing tasks for task group")
    rp = tg.get("RestartPolicy") or {}
    if rp.get("Mode") not in ("delay", "fail"):
        e.append('Unsupported restart mode: "%s"' % rp.get("Mode"))
    if (rp.get("Attempts") or 0) < 0:
        e.append("Restart attempts (%d) can't be negative" % rp["Attempts"])
    names = {}
    for i, t in enumerate(tasks):
        t = t or {}
        if not t.get("Name"):
            e.append("Task %d missing name" % (i + 1))
        elif t["Name"] in names:
            e.append("Task %d redefines '%s' from task %d" % (i + 1, t["Name"], names[t["Name"]] + 1))
        else:
            names[t["Name"]] = i
    for t in tasks:
        t = t or {}
        te = _validate_task(t)
        if te:
            e.append("Task %s validation failed: %s" % (t.get("Name") or "", ndecode.multierror(te)))
    return e


def _validate_task(t):
    e = []
    name = t.get("Name") or ""
    if not name:
        e.append("Missing task name")
    elif name == "alloc":
        e.append('Task cannot be named "alloc"')
    elif "/" in name:
        e.append("Task name cannot include slashes")
    if not t.get("Driver"):
        e.append("Missing task driver")
    if (t.get("KillTimeout") or 0) < 0:
        e.append("KillTimeout must be a positive value")
    r = t.get("Resources") or {}
    re_ = []
    if r.get("CPU") and r.get("Cores"):
        re_.append("Task can only ask for 'cpu' or 'cores' resource, not both.")
    if (r.get("Cores") or 0) < 0:
        re_.append("cores value (%d) cannot be negative" % r["Cores"])
    if (r.get("CPU") or 0) < 1 and not r.get("Cores"):
        re_.append("minimum CPU value is 1; got %d" % (r.get("CPU") or 0))
    if (r.get("MemoryMB") or 0) < 10:
        re_.append("minimum MemoryMB value is 10; got %d" % (r.get("MemoryMB") or 0))
    if r.get("MemoryMaxMB") and r["MemoryMaxMB"] < (r.get("MemoryMB") or 0):
        re_.append("MemoryMaxMB value (%d) should be larger than MemoryMB value (%d)" % (r["MemoryMaxMB"], r["MemoryMB"]))
    if re_:
        e.append(ndecode.multierror(re_).rstrip("\n") if len(re_) > 1 else re_[0])
    return e


SERVER_FIELDS = ("Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex", "ModifyIndex",
                 "JobModifyIndex")


def spec_of(job):
    return {k: v for k, v in job.items() if k not in SERVER_FIELDS}


# ====================================================================== shapes

def task_state_new():
    return {"State": "pending", "Failed": False, "Restarts": 0, "LastRestart": ZERO_TIME, "StartedAt": ZERO_TIME,
            "FinishedAt": ZERO_TIME, "Events": [], "TaskHandle": None, "Paused": ""}


def task_event(typ, **kw):
    ev = {"Type": typ, "Time": now_ns(), "Message": "", "DisplayMessage": "", "Details": {}, "FailsTask": False,
          "RestartReason": "", "SetupError": "", "DriverError": "", "ExitCode": 0, "Signal": 0, "KillTimeout": 0,
          "KillError": "", "KillReason": "", "StartDelay": 0, "DownloadError": "", "ValidationError": "",
          "DiskLimit": 0, "FailedSibling": "", "VaultError": "", "TaskSignalReason": "", "TaskSignal": "",
          "DriverMessage": "", "GenericSource": ""}
    ev.update(kw)
    d = ev["Details"] = dict(ev["Details"])
    for field, key in (("SetupError", "setup_error"), ("DriverError", "driver_error"),
                       ("KillReason", "kill_reason"), ("RestartReason", "restart_reason"),
                       ("ValidationError", "validation_error"), ("FailedSibling", "failed_sibling")):
        if ev[field]:
            d[key] = ev[field]
    if ev["FailsTask"]:
        d["fails_task"] = "true"
    if ev["KillTimeout"]:
        d["kill_timeout"] = _go_duration(ev["KillTimeout"])
    if ev["StartDelay"]:
        d["start_delay"] = str(ev["StartDelay"])
    if typ == "Task Setup" and ev["Message"]:
        d["message"] = ev["Message"]
    if not ev["DisplayMessage"]:
        ev["DisplayMessage"] = display_message(ev)
    return ev


def _go_duration(ns):
    """time.Duration.String() for the values task events carry."""
    if ns == 0:
        return "0s"
    s = ns / SEC
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    frac = s - int(s)
    out = ""
    if h:
        out += "%dh" % h
    if h or m:
        out += "%dm" % m
    secs = sec + frac
    out += ("%g" % secs if frac else "%d" % sec) + "s"
    return out


def display_message(e):
    """structs.TaskEvent.PopulateEventDisplayMessage."""
    t = e["Type"]
    if t == "Task Setup":
        return e["Message"]
    if t == "Started":
        return "Task started by client"
    if t == "Received":
        return "Task received by client"
    if t == "Failed Validation":
        return e["ValidationError"] or "Validation of task failed"
    if t == "Setup Failure":
        return e["SetupError"] or "Task setup failed"
    if t == "Driver Failure":
        return e["DriverError"] or "Failed to start task"
    if t == "Killing":
        if e["KillReason"]:
            return e["KillReason"]
        if e["KillTimeout"]:
            return "Sent interrupt. Waiting %s before force killing" % _go_duration(e["KillTimeout"])
        return "Sent interrupt"
    if t == "Killed":
        return e["KillError"] or "Task successfully killed"
    if t == "Terminated":
        parts = ["Exit Code: %d" % e["ExitCode"]]
        if e["Signal"]:
            parts.append("Signal: %d" % e["Signal"])
        if e["Message"]:
            parts.append('Exit Message: "%s"' % e["Message"])
        return ", ".join(parts)
    if t == "Restarting":
        inn = "Task restarting in %s" % _go_duration(e["StartDelay"])
        if e["RestartReason"] and e["RestartReason"] != "Restart within policy":
            return "%s - %s" % (e["RestartReason"], inn)
        return inn
    if t == "Not Restarting":
        return e["RestartReason"] or "Task exceeded restart policy"
    if t == "Sibling Task Failed":
        return ('Task\'s sibling "%s" failed' % e["FailedSibling"]) if e["FailedSibling"] else "Task's sibling failed"
    return e["Message"]


def alloc_metric(node, pool):
    return {"NodesEvaluated": 0, "NodesFiltered": 0, "NodesInPool": 1, "NodePool": pool,
            "NodesAvailable": {}, "ClassFiltered": None, "ConstraintFiltered": None, "NodesExhausted": 0,
            "ClassExhausted": None, "DimensionExhausted": None, "QuotaExhausted": None,
            "ResourcesExhausted": None, "Scores": None, "ScoreMetaData": None, "AllocationTime": 0,
            "CoalescedFailures": 0}


def omitempty(d):
    """The codec's omitempty for structs tagged `_struct bool codec:",omitempty"` (Allocation,
    Evaluation): zero values are left out."""
    return {k: v for k, v in d.items() if v not in (None, "", 0, False, {}, []) or k in ("ID",)}


# ====================================================================== the state

class State:
    def __init__(self, opts, log):
        self.log = log
        self.cond = threading.Condition(threading.RLock())
        self.index = 9
        self.tables = {t: 1 for t in ("jobs", "evals", "allocs", "namespaces", "nodes", "acl_token")}
        self.region = "global"
        self.datacenter = opts.datacenter
        self.namespaces = {}
        with self.cond:
            for ns in ["default"] + list(opts.namespace or []):
                self._add_namespace(ns)
        self.pools = {"default", "all"}
        self.drivers = [d for d in opts.drivers.split(",") if d]
        self.node_memory = opts.node_memory
        self.node_cpu = opts.node_cpu
        self.node_cores = opts.node_cores
        self.delay_scale = opts.delay_scale
        self.node = self._make_node()
        self.jobs = {}  # (ns, id) -> structs.Job
        self.evals = {}  # id -> Evaluation
        self.allocs = {}  # id -> Allocation (without "Job")
        self.alloc_jobs = {}  # id -> the Job the alloc was placed for
        self.queue = deque()
        self.paused = False
        self.closing = False
        self.client = None  # set by the client half: on_place(alloc_id), on_stop(alloc_id)
        threading.Thread(target=self._worker, daemon=True, name="scheduler").start()

    # ---------------------------------------------------------------- indexes

    def bump(self, *tables):
        """Under the lock: the next raft index, recorded for the tables; wakes waiters."""
        self.index += 1
        for t in tables:
            self.tables[t] = self.index
        self.cond.notify_all()
        return self.index

    def _add_namespace(self, name, description=""):
        idx = self.bump("namespaces")
        self.namespaces[name] = {"Name": name, "Description": description or (
            "Default shared namespace" if name == "default" else ""), "Quota": "", "Capabilities": None,
            "NodePoolConfiguration": {"Default": "default", "Allowed": None, "Denied": None},
            "VaultConfiguration": None, "ConsulConfiguration": None, "Meta": None,
            "CreateIndex": idx, "ModifyIndex": idx}

    def _make_node(self):
        t = now_ns()
        drivers = {}
        for d in ("docker", "podman", "exec", "raw_exec", "java", "qemu"):
            if d in self.drivers:
                drivers[d] = {"Attributes": {"driver.%s" % d: "true"}, "Detected": True, "Healthy": True,
                              "HealthDescription": "Healthy", "UpdateTime": rfc3339(t)}
        return {
            "ID": new_id(), "SecretID": "", "Datacenter": self.datacenter, "Name": "fake-node",
            "HTTPAddr": "127.0.0.1:4646", "TLSEnabled": False,
            "Attributes": {"kernel.name": "linux", "cpu.arch": "amd64", "nomad.version": "1.10.0-fake",
                           "os.name": "debian", "unique.hostname": "fake-node",
                           **{"driver.%s" % d: "1" for d in self.drivers}},
            "NodeResources": {"Cpu": {"CpuShares": self.node_cpu, "TotalCpuCores": self.node_cores,
                                      "ReservableCpuCores": list(range(self.node_cores))},
                              "Memory": {"MemoryMB": self.node_memory}, "Disk": {"DiskMB": 100000},
                              "Networks": None, "Devices": None, "NodeNetworks": None,
                              "MinDynamicPort": 20000, "MaxDynamicPort": 32000},
            "ReservedResources": {"Cpu": {"CpuShares": 0, "ReservedCpuCores": None}, "Memory": {"MemoryMB": 0},
                                  "Disk": {"DiskMB": 0}, "Networks": {"ReservedHostPorts": ""}},
            "Links": None, "Meta": {"connect.sidecar_image": "", "connect.log_level": "info"},
            "NodeClass": "", "NodePool": "default", "ComputedClass": "v1:fake", "DrainStrategy": None,
            "SchedulingEligibility": "eligible", "Status": "ready", "StatusDescription": "",
            "StatusUpdatedAt": t // SEC, "Events": [], "Drivers": drivers, "CSIControllerPlugins": None,
            "CSINodePlugins": None, "HostVolumes": None, "HostNetworks": None, "LastDrain": None,
            "CreateIndex": 5, "ModifyIndex": 5}

    # ---------------------------------------------------------------- jobs

    def register(self, job, warnings):
        """Job.Register after validation: -> JobRegisterResponse (a dict)."""
        with self.cond:
            key = (job["Namespace"], job["ID"])
            old = self.jobs.get(key)
            t = now_ns()
            if old is not None and spec_of(old) == spec_of(job):
                ev = self._new_eval(job, "job-register", t, old["ModifyIndex"])
                idx = self.bump("evals")
                ev["CreateIndex"] = ev["ModifyIndex"] = idx
                self.evals[ev["ID"]] = ev
                self.queue.append(ev["ID"])
                self.cond.notify_all()
                return {"EvalID": ev["ID"], "EvalCreateIndex": idx, "JobModifyIndex": old["ModifyIndex"],
                        "Warnings": warnings, "Index": idx, "LastContact": 0, "KnownLeader": False, "NextToken": ""}
            idx = self.bump("jobs", "evals")
            job["CreateIndex"] = old["CreateIndex"] if old else idx
            job["ModifyIndex"] = job["JobModifyIndex"] = idx
            job["Version"] = old["Version"] + 1 if old else 0
            job["SubmitTime"] = t
            job["Status"] = "pending"
            job["StatusDescription"] = ""
            job["Stable"] = False
            self.jobs[key] = job
            ev = self._new_eval(job, "job-register", t, idx)
            ev["CreateIndex"] = ev["ModifyIndex"] = idx
            self.evals[ev["ID"]] = ev
            self.queue.append(ev["ID"])
            self.cond.notify_all()
            return {"EvalID": ev["ID"], "EvalCreateIndex": idx, "JobModifyIndex": idx, "Warnings": warnings,
                    "Index": idx, "LastContact": 0, "KnownLeader": False, "NextToken": ""}

    def deregister(self, ns, jid, purge):
        """Job.Deregister: -> JobDeregisterResponse (all zero for an unknown job, as Nomad)."""
        with self.cond:
            job = self.jobs.get((ns, jid))
            if job is None:
                return {"EvalID": "", "EvalCreateIndex": 0, "JobModifyIndex": 0, "VolumeEvalID": "",
                        "VolumeEvalIndex": 0, "Index": 0, "LastContact": 0, "KnownLeader": False, "NextToken": ""}
            t = now_ns()
            idx = self.bump("jobs", "evals")
            if purge:
                del self.jobs[(ns, jid)]
            else:
                job = dict(job)
                job["Stop"] = True
                job["ModifyIndex"] = job["JobModifyIndex"] = idx
                job["Version"] += 1
                job["SubmitTime"] = t
                self.jobs[(ns, jid)] = job
            ev = self._new_eval(job, "job-deregister", t, idx)
            ev["Type"] = "service"  # sic: Nomad gives deregistration evals the service type
            ev["CreateIndex"] = ev["ModifyIndex"] = idx
            self.evals[ev["ID"]] = ev
            self.queue.append(ev["ID"])
            self.cond.notify_all()
            return {"EvalID": ev["ID"], "EvalCreateIndex": idx, "JobModifyIndex": idx, "VolumeEvalID": "",
                    "VolumeEvalIndex": 0, "Index": idx, "LastContact": 0, "KnownLeader": False, "NextToken": ""}

    def _new_eval(self, job, trigger, t, job_index):
        return {"ID": new_id(), "Namespace": job["Namespace"], "Priority": job.get("Priority", 50),
                "Type": job["Type"], "TriggeredBy": trigger, "JobID": job["ID"], "JobModifyIndex": job_index,
                "NodeID": "", "NodeModifyIndex": 0, "DeploymentID": "", "Status": "pending",
                "StatusDescription": "", "Wait": 0, "WaitUntil": ZERO_TIME, "NextEval": "", "PreviousEval": "",
                "BlockedEval": "", "RelatedEvals": None, "FailedTGAllocs": None, "ClassEligibility": None,
                "QuotaLimitReached": "", "EscapedComputedClass": False, "AnnotatePlan": False,
                "QueuedAllocations": None, "LeaderACL": "", "SnapshotIndex": 0, "CreateIndex": 0,
                "ModifyIndex": 0, "CreateTime": t, "ModifyTime": t}

    # ---------------------------------------------------------------- scheduler

    def pause(self, on):
        with self.cond:
            self.paused = on
            self.cond.notify_all()

    def _worker(self):
        while True:
            with self.cond:
                while (not self.queue or self.paused) and not self.closing:
                    self.cond.wait(1.0)
                if self.closing:
                    return
                eid = self.queue.popleft()
                try:
                    self._process(eid)
                except Exception as e:  # noqa: BLE001 - a bug of the fake must not stop the scheduler
                    import traceback
                    traceback.print_exc()
                    self.log("scheduler bug on eval %s: %r" % (eid, e))

    def _process(self, eid):
        """Under the lock: one evaluation, as the generic scheduler (one node)."""
        ev = self.evals.get(eid)
        if ev is None or ev["Status"] not in ("pending", "blocked"):
            return
        job = self.jobs.get((ev["Namespace"], ev["JobID"]))
        placed, stopped = [], []
        failed_tg, queued = {}, {}
        live = [a for a in self.allocs.values() if a["JobID"] == ev["JobID"] and a["Namespace"] == ev["Namespace"]
                and a["DesiredStatus"] == "run"]
        if job is None or job["Stop"]:
            for a in live:
                self._desire_stop(a, "alloc not needed due to job update")
                stopped.append(a["ID"])
            for b in self.evals.values():
                if b["JobID"] == ev["JobID"] and b["Namespace"] == ev["Namespace"] and b["Status"] == "blocked" \
                        and b["ID"] != eid:
                    b["Status"] = "canceled"
                    b["StatusDescription"] = "evaluation is no longer needed due to job update"
                    b["ModifyIndex"] = self.bump("evals")
        else:
            for a in live:
                if a["JobVersion"] != job["Version"] and a["ClientStatus"] not in TERMINAL_CLIENT:
                    self._desire_stop(a, "alloc is being updated due to job update")
                    stopped.append(a["ID"])
            for tg in job["TaskGroups"]:
                have = [a for a in self.allocs.values()
                        if a["JobID"] == job["ID"] and a["Namespace"] == job["Namespace"]
                        and a["TaskGroup"] == tg["Name"] and a["JobVersion"] == job["Version"]
                        and a["DesiredStatus"] == "run"
                        and not a.get("NextAllocation")
                        and (a["ClientStatus"] in ("pending", "running", "failed")
                             or (a["ClientStatus"] == "complete" and job["Type"] == "batch"))]
                prev = None
                if ev["TriggeredBy"] == "alloc-failure":
                    prev = next((a for a in self.allocs.values() if a.get("FollowupEvalID") == eid
                                 and a["TaskGroup"] == tg["Name"] and not a.get("NextAllocation")), None)
                    have = [a for a in have if a is not prev]
                need = tg["Count"] - len(have)
                for i in range(max(0, need)):
                    metric, ok = self._feasible(job, tg)
                    if not ok:
                        failed_tg[tg["Name"]] = metric
                        queued[tg["Name"]] = need - i
                        break
                    a = self._new_alloc(job, tg, ev, metric, prev, len(have) + i)
                    placed.append(a["ID"])
                    prev = None
                if tg["Name"] not in queued:
                    queued[tg["Name"]] = 0
        idx = self.bump("evals", "allocs") if placed or stopped else self.bump("evals")
        for aid in placed:
            self.allocs[aid]["CreateIndex"] = self.allocs[aid]["ModifyIndex"] = idx
            self.allocs[aid]["AllocModifyIndex"] = idx
        for aid in stopped:
            self.allocs[aid]["ModifyIndex"] = idx
            self.allocs[aid]["AllocModifyIndex"] = idx
        ev["QueuedAllocations"] = queued or None
        ev["ModifyIndex"] = idx
        ev["ModifyTime"] = now_ns()
        ev["SnapshotIndex"] = idx - 1
        if failed_tg:
            if ev["Status"] == "blocked":
                pass  # reblocked: stays blocked until capacity frees again
            else:
                ev["Status"] = "complete"
                ev["FailedTGAllocs"] = failed_tg
                b = self._new_eval(job, "queued-allocs", now_ns(), job["JobModifyIndex"])
                b["Status"] = "blocked"
                b["StatusDescription"] = "created to place remaining allocations"
                b["PreviousEval"] = eid
                b["ClassEligibility"] = {"v1:fake": False}
                b["CreateIndex"] = b["ModifyIndex"] = idx
                self.evals[b["ID"]] = b
                ev["BlockedEval"] = b["ID"]
        else:
            ev["Status"] = "complete"
        self.update_job_status(ev["Namespace"], ev["JobID"])
        self.cond.notify_all()
        if self.client:
            for aid in placed:
                self.client.on_place(aid)
            for aid in stopped:
                self.client.on_stop(aid)

    def _feasible(self, job, tg):
        """(AllocMetric, ok): feasibility and resources of one more alloc of tg on the node."""
        n = self.node
        m = alloc_metric(n, job["NodePool"])
        t0 = time.perf_counter_ns()
        dcs = job["Datacenters"]
        dc_ok = any(fnmatch.fnmatchcase(n["Datacenter"], d) for d in dcs)
        pool_ok = job["NodePool"] in ("all", n["NodePool"])
        for d in dcs:
            if "*" not in d:
                m["NodesAvailable"][d] = 1 if d == n["Datacenter"] and pool_ok else 0
        if "*" in "".join(dcs) and dc_ok and pool_ok:
            m["NodesAvailable"][n["Datacenter"]] = 1
        if not dc_ok or not pool_ok:
            m["NodesInPool"] = 1 if pool_ok else 0
            m["AllocationTime"] = time.perf_counter_ns() - t0
            return m, False
        m["NodesEvaluated"] = 1
        for t in tg["Tasks"]:
            if t["Driver"] not in self.drivers:
                m["NodesFiltered"] = 1
                m["ConstraintFiltered"] = {"missing drivers": 1}
                m["AllocationTime"] = time.perf_counter_ns() - t0
                return m, False
        used_cpu = used_mem = used_cores = 0
        for a in self.allocs.values():
            if a["DesiredStatus"] == "run" and a["ClientStatus"] not in TERMINAL_CLIENT:
                for r in a["TaskResources"].values():
                    used_cpu += r["CPU"]
                    used_mem += r["MemoryMB"]
                    used_cores += r.get("Cores") or 0
        cpu = sum(t["Resources"]["CPU"] for t in tg["Tasks"])
        mem = sum(t["Resources"]["MemoryMB"] for t in tg["Tasks"])
        cores = sum(t["Resources"].get("Cores") or 0 for t in tg["Tasks"])
        dim = None
        per_core = self.node_cpu // max(1, self.node_cores)
        if used_cpu + used_cores * per_core + cpu + cores * per_core > self.node_cpu:
            dim = "cpu"
        elif cores and used_cores + cores > self.node_cores:
            dim = "cores"
        elif used_mem + mem > self.node_memory:
            dim = "memory"
        if dim:
            m["NodesExhausted"] = 1
            m["DimensionExhausted"] = {dim: 1}
            m["ResourcesExhausted"] = {t["Name"]: {"CPU": t["Resources"]["CPU"], "Cores": t["Resources"].get("Cores", 0),
                                                   "MemoryMB": t["Resources"]["MemoryMB"],
                                                   "MemoryMaxMB": t["Resources"].get("MemoryMaxMB", 0),
                                                   "DiskMB": 0, "IOPS": 0, "Networks": None, "Devices": None,
                                                   "NUMA": None, "SecretsMB": 0}
                                       for t in tg["Tasks"]}
            m["AllocationTime"] = time.perf_counter_ns() - t0
            return m, False
        m["Scores"] = {"%s.normalized-score" % n["ID"]: 0.5}
        m["ScoreMetaData"] = [{"NodeID": n["ID"], "Scores": {"binpack": 0.5, "job-anti-affinity": 0},
                               "NormScore": 0.5}]
        m["AllocationTime"] = time.perf_counter_ns() - t0
        return m, True

    def _new_alloc(self, job, tg, ev, metric, prev, n):
        t = now_ns()
        aid = new_id()
        tres = {}
        alloc_tasks = {}
        for task in tg["Tasks"]:
            r = task["Resources"]
            tres[task["Name"]] = {"CPU": r["CPU"], "Cores": r.get("Cores", 0), "MemoryMB": r["MemoryMB"],
                                  "MemoryMaxMB": r.get("MemoryMaxMB", 0), "DiskMB": 0, "IOPS": 0,
                                  "Networks": None, "Devices": None, "NUMA": None, "SecretsMB": 0}
            alloc_tasks[task["Name"]] = {
                "Cpu": {"CpuShares": r["CPU"] + (r.get("Cores") or 0) * (self.node_cpu // max(1, self.node_cores)),
                        "ReservedCores": list(range(r.get("Cores") or 0)) or None},
                "Memory": {"MemoryMB": r["MemoryMB"], "MemoryMaxMB": r.get("MemoryMaxMB", 0)},
                "Networks": None, "Devices": None}
        a = {"ID": aid, "Namespace": job["Namespace"], "EvalID": ev["ID"],
             "Name": "%s.%s[%d]" % (job["ID"], tg["Name"], n), "NodeID": self.node["ID"],
             "NodeName": self.node["Name"], "JobID": job["ID"], "JobVersion": job["Version"],
             "JobType": job["Type"], "TaskGroup": tg["Name"],
             "Resources": {"CPU": sum(x["CPU"] for x in tres.values()), "Cores": 0,
                           "MemoryMB": sum(x["MemoryMB"] for x in tres.values()), "MemoryMaxMB": 0,
                           "DiskMB": tg["EphemeralDisk"]["SizeMB"], "IOPS": 0, "Networks": None,
                           "Devices": None, "NUMA": None, "SecretsMB": 0},
             "SharedResources": {"CPU": 0, "Cores": 0, "MemoryMB": 0, "MemoryMaxMB": 0,
                                 "DiskMB": tg["EphemeralDisk"]["SizeMB"], "IOPS": 0, "Networks": None,
                                 "Devices": None, "NUMA": None, "SecretsMB": 0},
             "TaskResources": tres,
             "AllocatedResources": {"Tasks": alloc_tasks, "TaskLifecycles": {k: None for k in alloc_tasks},
                                    "Shared": {"Networks": None, "DiskMB": tg["EphemeralDisk"]["SizeMB"],
                                               "Ports": None}},
             "Metrics": metric, "DesiredStatus": "run", "DesiredDescription": "",
             "DesiredTransition": {"Migrate": None, "Reschedule": None, "ForceReschedule": None,
                                   "NoShutdownDelay": None},
             "ClientStatus": "pending", "ClientDescription": "",
             "TaskStates": None, "AllocStates": None, "PreviousAllocation": "", "NextAllocation": "",
             "DeploymentID": "", "DeploymentStatus": None, "RescheduleTracker": None, "NetworkStatus": None,
             "FollowupEvalID": "", "PreemptedAllocations": None, "PreemptedByAllocation": "",
             "SigningKeyID": "", "CreateIndex": 0, "ModifyIndex": 0, "AllocModifyIndex": 0,
             "CreateTime": t, "ModifyTime": t}
        if prev is not None:
            a["PreviousAllocation"] = prev["ID"]
            events = list(((prev.get("RescheduleTracker") or {}).get("Events")) or [])
            events.append({"RescheduleTime": t, "PrevAllocID": prev["ID"], "PrevNodeID": prev["NodeID"],
                           "Delay": prev.get("_resched_delay", 0)})
            a["RescheduleTracker"] = {"Events": events, "LastReschedule": "ok"}
            prev["NextAllocation"] = aid
        self.allocs[aid] = a
        self.alloc_jobs[aid] = copy.deepcopy(job)
        return a

    def _desire_stop(self, a, why):
        a["DesiredStatus"] = "stop"
        a["DesiredDescription"] = why
        a["ModifyTime"] = now_ns()

    def _unblock(self):
        """Capacity freed: blocked evaluations go back to the queue (Nomad's BlockedEvals)."""
        for e in self.evals.values():
            if e["Status"] == "blocked" and e["ID"] not in self.queue:
                self.queue.append(e["ID"])
        self.cond.notify_all()

    # ---------------------------------------------------------------- client updates

    def update_alloc(self, aid, fn):
        """The client's alloc update (Node.UpdateAlloc): fn(alloc) under the lock, new index."""
        with self.cond:
            a = self.allocs.get(aid)
            if a is None:
                return None
            before = a["ClientStatus"]
            fn(a)
            a["ModifyIndex"] = self.bump("allocs")
            a["ModifyTime"] = now_ns()
            if a["ClientStatus"] != before and a["ClientStatus"] in TERMINAL_CLIENT:
                self._unblock()
                if a["ClientStatus"] == "failed" and a["DesiredStatus"] == "run":
                    self._maybe_reschedule(a)
            self.update_job_status(a["Namespace"], a["JobID"])
            return a

    def _maybe_reschedule(self, a):
        job = self.jobs.get((a["Namespace"], a["JobID"]))
        if job is None or job["Stop"] or job["Version"] != a["JobVersion"]:
            return
        tg = next((g for g in job["TaskGroups"] if g["Name"] == a["TaskGroup"]), None)
        rp = (tg or {}).get("ReschedulePolicy")
        if not rp:
            return
        events = ((a.get("RescheduleTracker") or {}).get("Events")) or []
        t = now_ns()
        recent = [e for e in events if rp["Unlimited"] or t - e["RescheduleTime"] < (rp["Interval"] or 0)]
        if not rp["Unlimited"] and len(recent) >= rp["Attempts"]:
            return
        delay = rp["Delay"] or 0
        if rp["DelayFunction"] == "exponential" and events:
            delay = min(delay * (2 ** len(events)), rp["MaxDelay"] or delay)
        ev = self._new_eval(job, "alloc-failure", t, job["JobModifyIndex"])
        ev["Status"] = "pending"
        ev["WaitUntil"] = rfc3339(t + delay)
        ev["CreateIndex"] = ev["ModifyIndex"] = self.bump("evals")
        self.evals[ev["ID"]] = ev
        a["FollowupEvalID"] = ev["ID"]
        a["_resched_delay"] = delay

        def fire():
            with self.cond:
                self.queue.append(ev["ID"])
                self.cond.notify_all()
        tm = threading.Timer(delay / SEC * self.delay_scale, fire)
        tm.daemon = True
        tm.start()

    def update_job_status(self, ns, jid):
        """Under the lock: the job's Status from its allocs and evals (as Nomad's getJobStatus)."""
        job = self.jobs.get((ns, jid))
        if job is None:
            return
        allocs = [a for a in self.allocs.values() if a["JobID"] == jid and a["Namespace"] == ns]
        if any(a["ClientStatus"] not in TERMINAL_CLIENT and a["DesiredStatus"] == "run" for a in allocs) \
                and not job["Stop"]:
            st = "running"
        elif any(e["Status"] in ("pending", "blocked") and e["JobID"] == jid and e["Namespace"] == ns
                 for e in self.evals.values()) and not job["Stop"]:
            st = "pending"
        elif any(a["ClientStatus"] not in TERMINAL_CLIENT for a in allocs):
            st = "running"
        elif job["Stop"] or job["Type"] == "batch" or allocs:
            st = "dead"
        else:
            st = "pending"
        if st != job["Status"]:
            job = dict(job)
            job["Status"] = st
            job["ModifyIndex"] = self.bump("jobs")
            self.jobs[(ns, jid)] = job

    # ---------------------------------------------------------------- reads

    def job_summary(self, job):
        s = {}
        for tg in job["TaskGroups"]:
            s[tg["Name"]] = {"Queued": 0, "Complete": 0, "Failed": 0, "Running": 0, "Starting": 0, "Lost": 0,
                             "Unknown": 0}
        for a in self.allocs.values():
            if a["JobID"] != job["ID"] or a["Namespace"] != job["Namespace"] or a["TaskGroup"] not in s:
                continue
            k = {"pending": "Starting", "running": "Running", "complete": "Complete", "failed": "Failed",
                 "lost": "Lost", "unknown": "Unknown"}.get(a["ClientStatus"])
            if k:
                s[a["TaskGroup"]][k] += 1
        for e in self.evals.values():
            if e["JobID"] == job["ID"] and e["Namespace"] == job["Namespace"] and e["Status"] == "blocked":
                for tg, n in (self.evals.get(e["PreviousEval"], {}).get("QueuedAllocations") or {}).items():
                    if tg in s:
                        s[tg]["Queued"] = n
        return {"JobID": job["ID"], "Namespace": job["Namespace"], "Summary": s,
                "Children": {"Pending": 0, "Running": 0, "Dead": 0},
                "CreateIndex": job["CreateIndex"], "ModifyIndex": job["ModifyIndex"]}

    def job_stub(self, job, meta):
        st = {"ID": job["ID"], "ParentID": job["ParentID"], "Name": job["Name"], "Namespace": job["Namespace"],
              "Datacenters": job["Datacenters"], "NodePool": job["NodePool"], "Multiregion": None,
              "Type": job["Type"], "Priority": job["Priority"], "Periodic": bool(job.get("Periodic")),
              "ParameterizedJob": bool(job.get("ParameterizedJob")), "Stop": job["Stop"],
              "Status": job["Status"], "StatusDescription": job["StatusDescription"],
              "JobSummary": self.job_summary(job), "CreateIndex": job["CreateIndex"],
              "ModifyIndex": job["ModifyIndex"], "JobModifyIndex": job["JobModifyIndex"],
              "SubmitTime": job["SubmitTime"]}
        if meta and job.get("Meta"):
            st["Meta"] = job["Meta"]
        return st

    def alloc_full(self, a):
        out = {k: v for k, v in a.items() if not k.startswith("_")}
        out["Job"] = self.alloc_jobs.get(a["ID"])
        return out

    def alloc_stub(self, a):
        keys = ("ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobType", "JobVersion",
                "TaskGroup", "DesiredStatus", "DesiredDescription", "ClientStatus", "ClientDescription",
                "DesiredTransition", "TaskStates", "DeploymentStatus", "FollowupEvalID", "NextAllocation",
                "RescheduleTracker", "PreemptedAllocations", "PreemptedByAllocation", "CreateIndex",
                "ModifyIndex", "CreateTime", "ModifyTime")
        return {k: a.get(k) for k in keys}

    def gc(self):
        """nomad system gc: terminal allocs and evals of jobs that are gone or stopped, and
        stopped jobs with nothing left running. -> alloc ids collected."""
        with self.cond:
            gone = []
            for aid, a in list(self.allocs.items()):
                job = self.jobs.get((a["Namespace"], a["JobID"]))
                terminal = a["ClientStatus"] in TERMINAL_CLIENT or a["DesiredStatus"] != "run" and \
                    a["ClientStatus"] != "running"
                if terminal and (job is None or job["Stop"] or job["Version"] != a["JobVersion"]
                                 or job["Type"] == "batch"):
                    gone.append(aid)
            for aid in gone:
                del self.allocs[aid]
                self.alloc_jobs.pop(aid, None)
            for eid, e in list(self.evals.items()):
                job = self.jobs.get((e["Namespace"], e["JobID"]))
                if e["Status"] in ("complete", "failed", "canceled") and (job is None or job["Stop"]):
                    del self.evals[eid]
            for key, job in list(self.jobs.items()):
                if job["Stop"] and not any(a["JobID"] == job["ID"] and a["Namespace"] == job["Namespace"]
                                           for a in self.allocs.values()):
                    del self.jobs[key]
            self.bump("jobs", "evals", "allocs")
            return gone
