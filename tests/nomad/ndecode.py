"""What the test Nomad agent checks in a request body, with Nomad's own messages.

Three layers, as in Nomad:
- the HTTP agent decodes the body with Go's encoding/json into api.JobRegisterRequest:
  field names match case-insensitively, unknown fields are dropped, a wrong JSON type is a
  400 "json: cannot unmarshal string into Go struct field Task.Job.TaskGroups.Tasks.Driver
  of type string" (decode_register);
- the server validates the job (Job.Validate and friends): a 500 whose body is a
  hashicorp/go-multierror list (multierror());
- the client checks the task's driver Config against the driver's HCL schema when the task
  starts (driver_config_errors): a "Failed Validation" task event.

Sources: command/agent/job_endpoint.go (jobUpdate), api/jobs.go and api/tasks.go (the Go
types), nomad/structs/structs.go (validation messages), helper/pluginutils/hclutils
(formattedDiagnosticErrors), drivers/docker/config.go, drivers/exec/driver.go,
drivers/rawexec/driver.go and nomad-driver-podman's config.go (task config schemas).
"""

import difflib
import json

# ---------------------------------------------------------------- go-multierror


def multierror(errs):
    """hashicorp/go-multierror's ListFormatFunc."""
    errs = [str(e) for e in errs]
    if len(errs) == 1:
        return "1 error occurred:\n\t* %s\n\n" % errs[0]
    return "%d errors occurred:\n\t%s\n\n" % (len(errs), "\n\t".join("* " + e for e in errs))


# ---------------------------------------------------------------- Go encoding/json

# A schema is one of:
#   ("string"|"int"|"uint64"|"bool"|"duration"|"int64"|"float64", GOTYPE)
#   ("any", GOTYPE)                       interface{} / map[string]interface{} values
#   ("list", GOTYPE, ELEMENT_SCHEMA)      []T
#   ("map", GOTYPE, VALUE_SCHEMA)         map[string]T
#   ("struct", GOTYPE, NAME, {Field: SCHEMA})
S = lambda: ("string", "string")  # noqa: E731
I = lambda: ("int", "int")  # noqa: E731
B = lambda: ("bool", "bool")  # noqa: E731
U64 = lambda: ("uint64", "uint64")  # noqa: E731
DUR = lambda: ("duration", "time.Duration")  # noqa: E731
STRS = lambda: ("list", "[]string", S())  # noqa: E731
SMAP = lambda: ("map", "map[string]string", S())  # noqa: E731
ANY = ("any", "interface {}")


def struct(name, fields, ptr=True):
    return ("struct", ("*" if ptr else "") + "api." + name, name, fields)


CONSTRAINT = struct("Constraint", {"LTarget": S(), "RTarget": S(), "Operand": S()})
AFFINITY = struct("Affinity", {"LTarget": S(), "RTarget": S(), "Operand": S(), "Weight": ("int", "int8")})
RESTART = struct("RestartPolicy", {"Interval": DUR(), "Attempts": I(), "Delay": DUR(), "Mode": S(),
                                   "RenderTemplates": B()})
RESCHEDULE = struct("ReschedulePolicy", {"Attempts": I(), "Interval": DUR(), "Delay": DUR(),
                                         "DelayFunction": S(), "MaxDelay": DUR(), "Unlimited": B()})
PORT = struct("Port", {"Label": S(), "Value": I(), "To": I(), "HostNetwork": S(), "IgnoreCollision": B()}, False)
DNS = struct("DNSConfig", {"Servers": STRS(), "Searches": STRS(), "Options": STRS()})
NETWORK = struct("NetworkResource", {
    "Mode": S(), "Device": S(), "CIDR": S(), "IP": S(), "DNS": DNS, "ReservedPorts": ("list", "[]api.Port", PORT),
    "DynamicPorts": ("list", "[]api.Port", PORT), "Hostname": S(), "MBits": I(), "CNI": ANY})
RESOURCES = struct("Resources", {
    "CPU": I(), "Cores": I(), "MemoryMB": I(), "MemoryMaxMB": I(), "DiskMB": I(), "IOPS": I(),
    "Networks": ("list", "[]*api.NetworkResource", NETWORK), "Devices": ("list", "[]*api.RequestedDevice", ANY),
    "NUMA": ANY, "SecretsMB": I()})
LOGCONFIG = struct("LogConfig", {"MaxFiles": I(), "MaxFileSizeMB": I(), "Disabled": B(), "Enabled": B()})
EPHEMERAL = struct("EphemeralDisk", {"Sticky": B(), "Migrate": B(), "SizeMB": I()})
TASK = struct("Task", {
    "Name": S(), "Driver": S(), "User": S(), "Lifecycle": ANY, "Config": ("map", "map[string]interface {}", ANY),
    "Constraints": ("list", "[]*api.Constraint", CONSTRAINT), "Affinities": ("list", "[]*api.Affinity", AFFINITY),
    "Env": SMAP(), "Services": ("list", "[]*api.Service", ANY), "Resources": RESOURCES, "RestartPolicy": RESTART,
    "Meta": SMAP(), "KillTimeout": DUR(), "LogConfig": LOGCONFIG, "Artifacts": ("list", "[]*api.TaskArtifact", ANY),
    "Vault": ANY, "Consul": ANY, "Templates": ("list", "[]*api.Template", ANY), "DispatchPayload": ANY,
    "VolumeMounts": ("list", "[]*api.VolumeMount", ANY), "CSIPluginConfig": ANY, "Leader": B(),
    "ShutdownDelay": DUR(), "KillSignal": S(), "Kind": S(), "ScalingPolicies": ("list", "[]*api.ScalingPolicy", ANY),
    "Identity": ANY, "Identities": ("list", "[]*api.WorkloadIdentity", ANY), "Actions": ("list", "[]*api.Action", ANY),
    "Schedule": ANY})
TASKGROUP = struct("TaskGroup", {
    "Name": S(), "Count": I(), "Constraints": ("list", "[]*api.Constraint", CONSTRAINT),
    "Affinities": ("list", "[]*api.Affinity", AFFINITY), "Tasks": ("list", "[]*api.Task", TASK),
    "Spreads": ("list", "[]*api.Spread", ANY), "Volumes": ("map", "map[string]*api.VolumeRequest", ANY),
    "RestartPolicy": RESTART, "Disconnect": ANY, "ReschedulePolicy": RESCHEDULE, "EphemeralDisk": EPHEMERAL,
    "Update": ANY, "Migrate": ANY, "Networks": ("list", "[]*api.NetworkResource", NETWORK), "Meta": SMAP(),
    "Services": ("list", "[]*api.Service", ANY), "ShutdownDelay": DUR(), "StopAfterClientDisconnect": DUR(),
    "MaxClientDisconnect": DUR(), "Scaling": ANY, "Consul": ANY, "PreventRescheduleOnLost": B()})
JOB = struct("Job", {
    "Region": S(), "Namespace": S(), "ID": S(), "Name": S(), "Type": S(), "Priority": I(), "AllAtOnce": B(),
    "Datacenters": STRS(), "NodePool": S(), "Constraints": ("list", "[]*api.Constraint", CONSTRAINT),
    "Affinities": ("list", "[]*api.Affinity", AFFINITY), "TaskGroups": ("list", "[]*api.TaskGroup", TASKGROUP),
    "Update": ANY, "Multiregion": ANY, "Spreads": ("list", "[]*api.Spread", ANY), "Periodic": ANY,
    "ParameterizedJob": ANY, "Reschedule": RESCHEDULE, "Migrate": ANY, "Meta": SMAP(), "ConsulToken": S(),
    "VaultToken": S(), "Stop": B(), "ParentID": S(), "Dispatched": B(), "DispatchIdempotencyToken": S(),
    "Payload": ANY, "ConsulNamespace": S(), "VaultNamespace": S(), "NomadTokenID": S(), "Status": S(),
    "StatusDescription": S(), "Stable": B(), "Version": U64(), "SubmitTime": ("int64", "int64"),
    "CreateIndex": U64(), "ModifyIndex": U64(), "JobModifyIndex": U64(), "UI": ANY, "VersionTag": ANY})
REGISTER = ("struct", "api.JobRegisterRequest", "JobRegisterRequest", {
    "Submission": ANY, "Job": JOB, "EnforceIndex": B(), "JobModifyIndex": U64(), "PolicyOverride": B(),
    "PreserveCounts": B(), "PreserveResources": B(), "EvalPriority": I(), "Region": S(), "Namespace": S(),
    "SecretID": S(), "IdempotencyToken": S()})


class DecodeError(Exception):
    pass


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


class _Decoder:
    def __init__(self):
        self.first = None  # the first type error (Go reports the first, decodes the rest)

    def err(self, value_desc, gotype, struct_name, path):
        if self.first is None:
            if struct_name is None:
                self.first = "json: cannot unmarshal %s into Go value of type %s" % (value_desc, gotype)
            else:
                self.first = "json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (
                    value_desc, struct_name, ".".join(path), gotype.lstrip("*"))

    def decode(self, schema, v, struct_name, path):
        """-> the decoded value with canonical field names (None for null), or None on error."""
        if v is None:
            return None
        kind = schema[0]
        if kind == "any":
            return v
        if kind in ("string",):
            if not isinstance(v, str):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            return v
        if kind == "bool":
            if not isinstance(v, bool):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            return v
        if kind in ("int", "uint64", "duration", "int64"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            if isinstance(v, float) and not v.is_integer() or (kind == "uint64" and v < 0):
                self.err("number %s" % json.dumps(v), schema[1], struct_name, path)
                return None
            return int(v)
        if kind == "float64":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            return v
        if kind == "list":
            if not isinstance(v, list):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            return [self.decode(schema[2], x, struct_name, path) for x in v]
        if kind == "map":
            if not isinstance(v, dict):
                self.err(_kind(v), schema[1], struct_name, path)
                return None
            return {k: self.decode(schema[2], x, struct_name, path) for k, x in v.items()}
        if kind == "struct":
            _, gotype, name, fields = schema
            if not isinstance(v, dict):
                self.err(_kind(v), gotype if struct_name is not None else gotype.lstrip("*"), struct_name, path)
                return None
            out = {}
            lower = {f.lower(): f for f in fields}
            for k, x in v.items():
                f = k if k in fields else lower.get(k.lower())
                if f is None:
                    continue  # encoding/json ignores unknown fields
                out[f] = self.decode(fields[f], x, name, path + [f])
            return out
        raise AssertionError(kind)


def decode_register(body):
    """api.JobRegisterRequest from the raw body: (dict) or raises DecodeError(message)."""
    if not body:
        raise DecodeError("Request body is empty")
    try:
        v = json.loads(body)
    except UnicodeDecodeError:
        raise DecodeError("invalid character '\\ufffd' looking for beginning of value")
    except json.JSONDecodeError as e:
        raise DecodeError(_go_syntax_error(body, e))
    d = _Decoder()
    if not isinstance(v, dict) and v is not None:
        raise DecodeError("json: cannot unmarshal %s into Go value of type api.JobRegisterRequest" % _kind(v))
    out = d.decode(REGISTER, v or {}, None, [])
    if d.first:
        raise DecodeError(d.first)
    return out


def _go_syntax_error(body, e):
    """An approximation of Go's json.SyntaxError text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if e.pos >= len(text.rstrip()):
        return "unexpected EOF"
    ch = text[e.pos]
    if "Expecting value" in e.msg:
        return "invalid character %s looking for beginning of value" % _goquote(ch)
    if "Expecting property name" in e.msg:
        return "invalid character %s looking for beginning of object key string" % _goquote(ch)
    if "Expecting ',' delimiter" in e.msg or "Expecting ':' delimiter" in e.msg:
        after = "object key" if "':'" in e.msg else ("array element" if text.rfind("[", 0, e.pos) > text.rfind("{", 0, e.pos) else "object key:value pair")
        return "invalid character %s after %s" % (_goquote(ch), after)
    if "Extra data" in e.msg:
        return "invalid character %s after top-level value" % _goquote(ch)
    return "invalid character %s in string literal" % _goquote(ch)


def _goquote(ch):
    return "'\\''" if ch == "'" else "'%s'" % ch


# ---------------------------------------------------------------- driver task config (HCL)

STR, NUM, BOOL, LSTR, LMSTR, LMNUM, BLOCK, ANYV = ("string", "number", "bool", "list(string)",
                                                   "list(map(string))", "list(map(number))", "block", "any")

DOCKER = {
    "image": (STR, True), "args": (LSTR, False), "auth": (BLOCK, False), "auth_soft_fail": (BOOL, False),
    "cap_add": (LSTR, False), "cap_drop": (LSTR, False), "cgroupns": (STR, False), "command": (STR, False),
    "cpuset_cpus": (STR, False), "cpu_hard_limit": (BOOL, False), "cpu_cfs_period": (NUM, False),
    "container_exists_attempts": (NUM, False), "devices": (BLOCK, False), "dns_search_domains": (LSTR, False),
    "dns_options": (LSTR, False), "dns_servers": (LSTR, False), "entrypoint": (LSTR, False),
    "extra_hosts": (LSTR, False), "force_pull": (BOOL, False), "group_add": (LSTR, False),
    "healthchecks": (BLOCK, False), "hostname": (STR, False), "init": (BOOL, False), "interactive": (BOOL, False),
    "ipc_mode": (STR, False), "isolation": (STR, False), "labels": (LMSTR, False), "load": (STR, False),
    "logging": (BLOCK, False), "mac_address": (STR, False), "memory_hard_limit": (NUM, False),
    "mount": (BLOCK, False), "mounts": (BLOCK, False), "network_aliases": (LSTR, False),
    "network_mode": (STR, False), "oom_score_adj": (NUM, False), "runtime": (STR, False),
    "pids_limit": (NUM, False), "pid_mode": (STR, False), "ports": (LSTR, False), "port_map": (LMNUM, False),
    "privileged": (BOOL, False), "image_pull_timeout": (STR, False), "readonly_rootfs": (BOOL, False),
    "security_opt": (LSTR, False), "shm_size": (NUM, False), "storage_opt": (BLOCK, False),
    "sysctl": (LMSTR, False), "tty": (BOOL, False), "ulimit": (LMSTR, False), "uts_mode": (STR, False),
    "userns_mode": (STR, False), "volumes": (LSTR, False), "volume_driver": (STR, False), "work_dir": (STR, False),
}
PODMAN = {
    "apparmor_profile": (STR, False), "args": (LSTR, False), "auth": (BLOCK, False), "auth_soft_fail": (BOOL, False),
    "command": (STR, False), "cap_add": (LSTR, False), "cap_drop": (LSTR, False), "selinux_opts": (LSTR, False),
    "cpu_hard_limit": (BOOL, False), "cpu_cfs_period": (NUM, False), "devices": (LSTR, False),
    "entrypoint": (ANYV, False), "working_dir": (STR, False), "hostname": (STR, False), "image": (STR, True),
    "image_pull_timeout": (STR, False), "init": (BOOL, False), "init_path": (STR, False), "labels": (LMSTR, False),
    "logging": (BLOCK, False), "memory_reservation": (STR, False), "memory_swap": (STR, False),
    "memory_swappiness": (NUM, False), "network_mode": (STR, False), "extra_hosts": (LSTR, False),
    "pids_limit": (NUM, False), "port_map": (LMNUM, False), "ports": (LSTR, False), "privileged": (BOOL, False),
    "socket": (STR, False), "sysctl": (LMSTR, False), "tmpfs": (LSTR, False), "tty": (BOOL, False),
    "ulimit": (LMSTR, False), "volumes": (LSTR, False), "force_pull": (BOOL, False),
    "readonly_rootfs": (BOOL, False), "userns": (STR, False), "shm_size": (STR, False),
}
EXEC = {
    "command": (STR, True), "args": (LSTR, False), "pid_mode": (STR, False), "ipc_mode": (STR, False),
    "cap_add": (LSTR, False), "cap_drop": (LSTR, False), "work_dir": (STR, False),
}
RAW_EXEC = {
    "command": (STR, True), "args": (LSTR, False), "cgroup_v2_override": (STR, False),
    "cgroup_v1_override": (LMSTR, False), "oom_score_adj": (NUM, False), "work_dir": (STR, False),
    "denied_envvars": (LSTR, False),
}
DRIVER_SCHEMAS = {"docker": DOCKER, "podman": PODMAN, "exec": EXEC, "raw_exec": RAW_EXEC}


def _conv(typ, v):
    """cty's conversion of a JSON value to typ: None if it converts, else the type's name."""
    if typ in (ANYV, BLOCK):
        return None
    if typ == STR:
        return None if isinstance(v, (str, int, float, bool)) else "string"
    if typ == NUM:
        if isinstance(v, bool):
            return "number"
        if isinstance(v, (int, float)):
            return None
        if isinstance(v, str):
            try:
                float(v)
                return None
            except ValueError:
                return "a number"
        return "number"
    if typ == BOOL:
        if isinstance(v, bool) or (isinstance(v, str) and v in ("true", "false")):
            return None
        return "bool"
    if typ == LSTR:
        if isinstance(v, list) and all(isinstance(x, (str, int, float, bool)) for x in v):
            return None
        return "list of string"
    if typ in (LMSTR, LMNUM):
        inner = STR if typ == LMSTR else NUM
        if isinstance(v, dict):
            v = [v]
        if isinstance(v, list) and all(isinstance(m, dict) and all(_conv(inner, x) is None for x in m.values())
                                       for m in v):
            return None
        return "list of map of " + ("string" if typ == LMSTR else "number")
    return None


def driver_config_errors(driver, config):
    """The HCL diagnostics of a task's Config for driver, as Nomad formats them: a list of
    "Summary: Detail" strings (empty when the config decodes)."""
    schema = DRIVER_SCHEMAS.get(driver)
    if schema is None:
        return []
    errs = []
    config = config or {}
    for k, v in config.items():
        if k not in schema:
            sugg = difflib.get_close_matches(k, list(schema), n=1, cutoff=0.75)
            errs.append('Invalid label: No argument or block type is named "%s".%s' % (
                k, ' Did you mean "%s"?' % sugg[0] if sugg else ""))
            continue
        bad = _conv(schema[k][0], v) if v is not None else None
        if bad:
            errs.append('Incorrect attribute value type: Inappropriate value for attribute "%s": %s required.' % (k, bad))
    for k, (typ, required) in sorted(schema.items()):
        if required and config.get(k) is None:
            errs.append('Missing required argument: The argument "%s" is required, but no definition was found.' % k)
    return errs
