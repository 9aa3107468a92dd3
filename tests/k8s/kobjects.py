"""Object model of the fake Kubernetes API server: metav1.Status errors, validation (422),
strict decoding (400), defaulting, label and field selectors, quantities, Table output.

Messages follow k8s.io/apimachinery (api/errors, util/validation, util/validation/field)
and the 1.32 pod/networkpolicy validation; see README.md for what was checked where.
"""

import datetime
import re
import secrets


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


# ------------------------------------------------------------------ metav1.Status

class ApiError(Exception):
    """An error answer: code + metav1.Status body (+ extra headers)."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            s["details"] = self.details
        if not self.reason:
            del s["reason"]
        return s


def gr(resource, group):
    return resource if not group else "%s.%s" % (resource, group)


def not_found(resource, group, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (gr(resource, group), name),
                    _details(name, group, resource))


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (gr(resource, group), name),
                    _details(name, group, resource))


def conflict(resource, group, name):
    return ApiError(409, "Conflict",
                    'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                    "please apply your changes to the latest version and try again"
                    % (gr(resource, group), name), _details(name, group, resource))


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def forbidden(user, verb, resource, group, name, namespace, sub=""):
    what = gr(resource, group) + ((' "%s"' % name) if name else "")
    res = resource + ("/" + sub if sub else "")
    msg = '%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s"' % (
        what, user, verb, res, group)
    msg += (' in the namespace "%s"' % namespace) if namespace else " at the cluster scope"
    d = {"kind": resource}
    if group:
        d["group"] = group
    if name:
        d["name"] = name
    return ApiError(403, "Forbidden", msg, d)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def internal_error(msg):
    return ApiError(500, "InternalError", "Internal error occurred: %s" % msg,
                    {"causes": [{"message": msg}]})


def too_many_requests(retry_after):
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after}, {"Retry-After": str(retry_after)})


def _details(name, group, kind):
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    return d


class FieldError:
    TYPES = {"Required": ("FieldValueRequired", "Required value"),
             "Invalid": ("FieldValueInvalid", "Invalid value"),
             "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
             "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
             "Forbidden": ("FieldValueForbidden", "Forbidden"),
             "TooLong": ("FieldValueTooLong", "Too long")}

    def __init__(self, kind, field, value=None, detail=""):
        self.kind, self.field, self.value, self.detail = kind, field, value, detail

    def body(self):
        reason, text = self.TYPES[self.kind]
        s = text
        if self.kind in ("Invalid", "Duplicate", "NotSupported"):
            s += ": " + _go_value(self.value)
        if self.detail:
            s += ": " + self.detail
        return s

    def __str__(self):
        return "%s: %s" % (self.field, self.body())


def _go_value(v):
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def invalid(kind, group, name, errs):
    qk = kind if not group else "%s.%s" % (kind, group)
    agg = str(errs[0]) if len(errs) == 1 else "[" + ", ".join(str(e) for e in errs) + "]"
    d = {"name": name}
    if group:
        d["group"] = group
    d["kind"] = kind
    d["causes"] = [{"reason": FieldError.TYPES[e.kind][0], "message": e.body(), "field": e.field}
                   for e in errs]
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (qk, name, agg), d)


# ------------------------------------------------------------------ name validation

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is '%s')" % DNS1123_SUBDOMAIN)
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '%s')" % DNS1123_LABEL)
QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is '(%s)?')"
                   % QUALIFIED)


def subdomain_errors(v):
    out = []
    if len(v) > 253:
        out.append("must be no more than 253 characters")
    if not re.fullmatch(DNS1123_SUBDOMAIN, v):
        out.append(SUBDOMAIN_MSG)
    return out


def label_errors(v):
    out = []
    if len(v) > 63:
        out.append("must be no more than 63 characters")
    if not re.fullmatch(DNS1123_LABEL, v):
        out.append(LABEL_MSG)
    return out


def validate_labels(labels, path):
    errs = []
    for k, v in (labels or {}).items():
        name = k.split("/", 1)[-1]
        prefix = k.split("/", 1)[0] if "/" in k else ""
        if not name or len(name) > 63 or not re.fullmatch(QUALIFIED, name) or (prefix and subdomain_errors(prefix)):
            errs.append(FieldError("Invalid", path, k, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '%s')" % QUALIFIED))
        if not isinstance(v, str) or (v and (len(v) > 63 or not re.fullmatch(QUALIFIED, v))):
            errs.append(FieldError("Invalid", path, v, LABEL_VALUE_MSG))
    return errs


def validate_meta(meta, namespaced=True):
    errs = []
    name = meta.get("name", "")
    if not name:
        errs.append(FieldError("Required", "metadata.name", detail="name or generateName is required"))
    else:
        for m in subdomain_errors(name):
            errs.append(FieldError("Invalid", "metadata.name", name, m))
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    return errs


def validate_pod(pod):
    errs = validate_meta(pod["metadata"])
    spec = pod.get("spec") or {}
    cs = spec.get("containers") or []
    if not cs:
        errs.append(FieldError("Required", "spec.containers"))
    seen = set()
    for i, c in enumerate(cs):
        p = "spec.containers[%d]" % i
        n = c.get("name", "")
        if not n:
            errs.append(FieldError("Required", p + ".name"))
        else:
            for m in label_errors(n):
                errs.append(FieldError("Invalid", p + ".name", n, m))
            if n in seen:
                errs.append(FieldError("Duplicate", p + ".name", n))
            seen.add(n)
        if not (c.get("image") or "").strip():
            errs.append(FieldError("Required", p + ".image"))
        for j, e in enumerate(c.get("env") or []):
            if not e.get("name"):
                errs.append(FieldError("Required", "%s.env[%d].name" % (p, j)))
        res = c.get("resources") or {}
        for kind in ("cpu", "memory"):
            lim, req = (res.get("limits") or {}).get(kind), (res.get("requests") or {}).get(kind)
            for field, q in (("limits", lim), ("requests", req)):
                if q is not None and quantity(q) is None:
                    errs.append(FieldError("Invalid", "%s.resources.%s[%s]" % (p, field, kind), q,
                                           "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
            if lim is not None and req is not None and quantity(lim) is not None and quantity(req) is not None \
                    and quantity(req) > quantity(lim):
                errs.append(FieldError("Invalid", "%s.resources.requests" % p, req,
                                       "must be less than or equal to %s limit of %s" % (kind, lim)))
        ipp = c.get("imagePullPolicy")
        if ipp is not None and ipp not in ("Always", "IfNotPresent", "Never"):
            errs.append(FieldError("NotSupported", p + ".imagePullPolicy", ipp,
                                   'supported values: "Always", "IfNotPresent", "Never"'))
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        errs.append(FieldError("NotSupported", "spec.restartPolicy", rp,
                               'supported values: "Always", "OnFailure", "Never"'))
    if errs:
        raise invalid("Pod", "", pod["metadata"].get("name", ""), errs)


def validate_networkpolicy(np_):
    errs = validate_meta(np_["metadata"])
    spec = np_.get("spec") or {}
    for i, t in enumerate(spec.get("policyTypes") or []):
        if t not in ("Ingress", "Egress"):
            errs.append(FieldError("NotSupported", "spec.policyTypes[%d]" % i, t,
                                   'supported values: "Ingress", "Egress"'))
    errs += _validate_selector(spec.get("podSelector") or {}, "spec.podSelector")
    if errs:
        raise invalid("NetworkPolicy", "networking.k8s.io", np_["metadata"].get("name", ""), errs)


def _validate_selector(sel, path):
    errs = validate_labels(sel.get("matchLabels"), path + ".matchLabels")
    for i, e in enumerate(sel.get("matchExpressions") or []):
        op = e.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.append(FieldError("Invalid", "%s.matchExpressions[%d].operator" % (path, i), op,
                                   "not a valid selector operator"))
    return errs


def validate_namespace(ns):
    errs = []
    name = ns["metadata"].get("name", "")
    if not name:
        errs.append(FieldError("Required", "metadata.name", detail="name or generateName is required"))
    else:
        for m in label_errors(name):
            errs.append(FieldError("Invalid", "metadata.name", name, m))
    errs += validate_labels(ns["metadata"].get("labels"), "metadata.labels")
    if errs:
        raise invalid("Namespace", "", name, errs)


# ------------------------------------------------------------------ strict decoding (400)
# A schema of the fields this server knows: "s" string, "i" integer, "b" bool,
# "m" map of strings, "q" quantity (string or number), "*" anything, {..} object, [x] list.

_SEL = {"matchLabels": "m", "matchExpressions": [{"key": "s", "operator": "s", "values": ["s"]}]}
_META = {"name": "s", "generateName": "s", "namespace": "s", "labels": "m", "annotations": "m",
         "uid": "s", "resourceVersion": "s", "generation": "i", "creationTimestamp": "*",
         "deletionTimestamp": "*", "deletionGracePeriodSeconds": "i", "finalizers": ["s"],
         "ownerReferences": ["*"], "managedFields": ["*"], "selfLink": "s"}
_CAPS = {"add": ["s"], "drop": ["s"]}
_SECCOMP = {"type": "s", "localhostProfile": "s"}
_SELINUX = {"user": "s", "role": "s", "type": "s", "level": "s"}
_CSC = {"allowPrivilegeEscalation": "b", "capabilities": _CAPS, "privileged": "b", "procMount": "s",
        "readOnlyRootFilesystem": "b", "runAsGroup": "i", "runAsNonRoot": "b", "runAsUser": "i",
        "seccompProfile": _SECCOMP, "seLinuxOptions": _SELINUX, "windowsOptions": "*",
        "appArmorProfile": _SECCOMP}
_PSC = {"fsGroup": "i", "fsGroupChangePolicy": "s", "runAsGroup": "i", "runAsNonRoot": "b",
        "runAsUser": "i", "seccompProfile": _SECCOMP, "seLinuxOptions": _SELINUX,
        "supplementalGroups": ["i"], "supplementalGroupsPolicy": "s", "sysctls": [{"name": "s", "value": "s"}],
        "windowsOptions": "*", "appArmorProfile": _SECCOMP, "seLinuxChangePolicy": "s"}
_RES = {"limits": {"*q": "q"}, "requests": {"*q": "q"}, "claims": ["*"]}
_CONTAINER = {"name": "s", "image": "s", "command": ["s"], "args": ["s"], "workingDir": "s",
              "env": [{"name": "s", "value": "s", "valueFrom": "*"}], "envFrom": ["*"],
              "ports": [{"containerPort": "i", "name": "s", "protocol": "s", "hostPort": "i", "hostIP": "s"}],
              "resources": _RES, "securityContext": _CSC, "imagePullPolicy": "s", "stdin": "b",
              "stdinOnce": "b", "tty": "b", "terminationMessagePath": "s",
              "terminationMessagePolicy": "s", "volumeMounts": ["*"], "volumeDevices": ["*"],
              "livenessProbe": "*", "readinessProbe": "*", "startupProbe": "*", "lifecycle": "*",
              "restartPolicy": "s", "resizePolicy": ["*"]}
_POD_SPEC = {"containers": [_CONTAINER], "initContainers": [_CONTAINER], "ephemeralContainers": ["*"],
             "restartPolicy": "s", "terminationGracePeriodSeconds": "i", "activeDeadlineSeconds": "i",
             "dnsPolicy": "s", "nodeSelector": "m", "serviceAccountName": "s", "serviceAccount": "s",
             "automountServiceAccountToken": "b", "nodeName": "s", "hostNetwork": "b", "hostPID": "b",
             "hostIPC": "b", "shareProcessNamespace": "b", "securityContext": _PSC,
             "imagePullSecrets": [{"name": "s"}], "hostname": "s", "subdomain": "s", "affinity": "*",
             "schedulerName": "s", "tolerations": ["*"], "hostAliases": ["*"], "priorityClassName": "s",
             "priority": "i", "dnsConfig": "*", "readinessGates": ["*"], "runtimeClassName": "s",
             "enableServiceLinks": "b", "preemptionPolicy": "s", "overhead": {"*q": "q"},
             "topologySpreadConstraints": ["*"], "setHostnameAsFQDN": "b", "os": "*", "hostUsers": "b",
             "schedulingGates": ["*"], "resourceClaims": ["*"], "volumes": ["*"], "resources": _RES}
POD_SCHEMA = {"kind": "s", "apiVersion": "s", "metadata": _META, "spec": _POD_SPEC, "status": "*"}
_PEER = {"podSelector": _SEL, "namespaceSelector": _SEL, "ipBlock": {"cidr": "s", "except": ["s"]}}
_PORT = {"protocol": "s", "port": "*", "endPort": "i"}
NETPOL_SCHEMA = {"kind": "s", "apiVersion": "s", "metadata": _META, "status": "*",
                 "spec": {"podSelector": _SEL, "policyTypes": ["s"],
                          "ingress": [{"from": [_PEER], "ports": [_PORT]}],
                          "egress": [{"to": [_PEER], "ports": [_PORT]}]}}
NS_SCHEMA = {"kind": "s", "apiVersion": "s", "metadata": _META, "spec": {"finalizers": ["s"]}, "status": "*"}

_GO_TYPES = {"s": "string", "i": "int64", "b": "bool", "m": "map[string]string", "q": "resource.Quantity"}


def _jtype(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if v is None:
        return "null"
    return "object"


class DecodeError(Exception):
    pass


def check_schema(obj, schema, kind):
    """Returns the unknown fields (as paths); raises DecodeError on a type mismatch
    (Go's json: "cannot unmarshal T into Go struct field S.path of type G")."""
    unknown = []
    try:
        _check(obj, schema, "", kind, unknown)
    except _TypeMismatch as e:
        # Go names the innermost struct and the JSON path without list indices; this
        # names the top-level struct (ObjectMeta, PodSpec, ...) only.
        jt, path, gt = e.args
        top = path.split(".")[0].split("[")[0]
        struct = {"metadata": "ObjectMeta", "spec": kind + "Spec", "status": kind + "Status"}.get(top, kind)
        raise DecodeError("json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (
            jt, struct, re.sub(r"\[[0-9]+\]", "", path), gt))
    return unknown


class _TypeMismatch(Exception):
    pass


def _check(v, sch, path, struct, unknown):
    if v is None or sch == "*":
        return
    if isinstance(sch, str):
        ok = {"s": isinstance(v, str), "i": isinstance(v, int) and not isinstance(v, bool),
              "b": isinstance(v, bool), "q": isinstance(v, (str, int, float)) and not isinstance(v, bool),
              "m": isinstance(v, dict) and all(isinstance(x, str) for x in v.values())}[sch]
        if not ok:
            t, gt = _jtype(v), _GO_TYPES[sch]
            if sch == "m" and isinstance(v, dict):  # a map value of the wrong type
                bad = next(k for k, x in v.items() if not isinstance(x, str))
                t, gt, path = _jtype(v[bad]), "string", path + "." + bad
            raise _TypeMismatch(t, path, gt)
        return
    if isinstance(sch, list):
        if not isinstance(v, list):
            raise _TypeMismatch(_jtype(v), path, "[]v1.Container" if path.endswith("ontainers") else "[]interface {}")
        for i, x in enumerate(v):
            _check(x, sch[0], "%s[%d]" % (path, i), struct, unknown)
        return
    if not isinstance(v, dict):
        raise _TypeMismatch(_jtype(v), path, "struct")
    for k, x in v.items():
        p = (path + "." + k) if path else k
        if k in sch:
            _check(x, sch[k], p, struct, unknown)
        elif "*q" in sch:
            _check(x, sch["*q"], p, struct, unknown)
        else:
            unknown.append(p)


# ------------------------------------------------------------------ quantities

_SUFFIX = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
           "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "m": 0.001, "n": 1e-9, "u": 1e-6}


def quantity(q):
    """A resource.Quantity as a float (bytes, cores), or None if malformed."""
    if isinstance(q, bool):
        return None
    if isinstance(q, (int, float)):
        return float(q)
    m = re.fullmatch(r"([+-]?[0-9.]+)([eE][-+]?[0-9]+|[a-zA-Z]*)", str(q).strip())
    if not m:
        return None
    try:
        num = float(m.group(1))
    except ValueError:
        return None
    suf = m.group(2)
    if suf[:1] in ("e", "E"):
        return num * 10 ** int(suf[1:])
    if suf not in _SUFFIX:
        return None
    return num * _SUFFIX[suf]


# ------------------------------------------------------------------ selectors

class SelectorError(Exception):
    pass


def parse_label_selector(s):
    """-> list of (key, op, values); op in = != in notin exists !exists."""
    reqs = []
    s = (s or "").strip()
    tokens = []
    depth = 0
    cur = ""
    for ch in s:  # split on commas outside parentheses
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            tokens.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip() or tokens:
        tokens.append(cur)
    for t in tokens:
        t = t.strip()
        if not t:
            raise SelectorError("found '', expected: !, identifier, or 'end of string'")
        m = re.fullmatch(r"([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)", t)
        if m:
            vals = [x.strip() for x in m.group(3).split(",") if x.strip()]
            reqs.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)", t)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, [m.group(3)]))
            continue
        m = re.fullmatch(r"!\s*([^\s!=(),]+)", t)
        if m:
            reqs.append((m.group(1), "!exists", []))
            continue
        m = re.fullmatch(r"([^\s!=(),]+)", t)
        if m:
            reqs.append((m.group(1), "exists", []))
            continue
        raise SelectorError("unable to parse requirement: %s" % t)
    return reqs


def label_match(reqs, labels):
    labels = labels or {}
    for k, op, vals in reqs:
        has = k in labels
        v = labels.get(k)
        if op == "=" and (not has or v != vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and (not has or v not in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_field_selector(s, allowed, kind):
    reqs = []
    for t in [x for x in (s or "").split(",") if x.strip()]:
        m = re.fullmatch(r"\s*([^=!]+?)\s*(==|=|!=)\s*(.*?)\s*", t)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, t))
        key = m.group(1)
        if key not in allowed:
            raise bad_request('field label not supported: %s' % key)
        reqs.append((key, "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return reqs


def field_value(obj, key):
    cur = obj
    for part in key.split("."):
        cur = (cur or {}).get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_match(reqs, obj):
    for k, op, v in reqs:
        fv = field_value(obj, k)
        if (op == "=" and fv != v) or (op == "!=" and fv == v):
            return False
    return True


# ------------------------------------------------------------------ misc

def rand_suffix(n=5):
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def human_age(ts):
    try:
        d = int((datetime.datetime.now(datetime.timezone.utc) - parse_time(ts)).total_seconds())
    except (ValueError, TypeError):
        return "<unknown>"
    d = max(d, 0)
    if d < 120:
        return "%ds" % d
    if d < 600:
        return "%dm%ds" % (d // 60, d % 60) if d % 60 else "%dm" % (d // 60)
    if d < 3 * 3600:
        return "%dm" % (d // 60)
    if d < 48 * 3600:
        return "%dh" % (d // 3600)
    return "%dd" % (d // 86400)


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ------------------------------------------------------------------ protobuf (namespaces)
# kubectl's typed clients (e.g. `kubectl create namespace`) send
# application/vnd.kubernetes.protobuf: the "k8s\0" magic, then a runtime.Unknown
# {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType} whose raw is
# the object (k8s.io/api/core/v1/generated.proto). Only what a Namespace carries is read.

def _pb_fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = bytes(b[i:i + n]), i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise DecodeError("protobuf: wire type %d" % wt)
        out.append((num, v))
    return out


def _varint(b, i):
    shift = v = 0
    while True:
        if i >= len(b):
            raise DecodeError("protobuf: truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def _pb_meta(b):
    m = {}
    for num, v in _pb_fields(b):
        if num in (1, 2, 3) and isinstance(v, bytes):
            m[{1: "name", 2: "generateName", 3: "namespace"}[num]] = v.decode()
        elif num in (11, 12):
            kv = dict(_pb_fields(v))
            m.setdefault("labels" if num == 11 else "annotations", {})[kv.get(1, b"").decode()] = kv.get(2, b"").decode()
    return m


def decode_protobuf_namespace(data):
    if not data.startswith(b"k8s\x00"):
        raise DecodeError("provided input is not a Kubernetes protobuf message")
    unk = dict(_pb_fields(data[4:]))
    tm = dict(_pb_fields(unk.get(1, b"")))
    obj = {"apiVersion": tm.get(1, b"").decode(), "kind": tm.get(2, b"").decode()}
    for num, v in _pb_fields(unk.get(2, b"")):
        if num == 1:
            obj["metadata"] = _pb_meta(v)
    obj.setdefault("metadata", {})
    return obj
