"""PKI and kubeconfig of the fake Kubernetes API server.

Made with the openssl CLI at start-up: a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate with CN=<user> O=<group> (the API server's x509
authenticator takes the user from CN and the groups from O). The kubeconfig written for
the tests has one user and one context per credential kind.
"""

import base64
import json
import os
import secrets
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_pki(directory, client_user="user", client_group="group",
             server_names=("localhost", "kubernetes.default.svc"), ca_name="fake-kubernetes-ca",
             server_cn="kube-apiserver"):
    """Creates ca.{crt,key}, server.{crt,key}, client.{crt,key} in directory (once).

    The server certificate is for IP:127.0.0.1 and the DNS names server_names (the test
    Nomad agent, tests/nomad, asks for server.global.nomad)."""
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(os.path.join(directory, "client.crt")):
        return directory
    d = directory
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "2", "-subj", "/CN=" + ca_name, "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1%s\n" % "".join(",DNS:" + n for n in server_names))
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=clientAuth\n")
    for name, subj in (("server", "/CN=" + server_cn),
                       ("client", "/O=%s/CN=%s" % (client_group, client_user))):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                 name + ".csr", "-subj", subj, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile",
                 name + ".ext", cwd=d)
    return d


def default_tokens():
    """token -> {user, groups, forbidden: [{verbs, resources}]} (random tokens)."""
    return {
        "admin-" + secrets.token_hex(12): {"user": "admin", "groups": ["system:masters"]},
        "limited-" + secrets.token_hex(12): {
            "user": "limited",
            "groups": ["developers"],
            # RBAC 403 tests: this user may not create or delete pods, exec, nor touch
            # networkpolicies.
            "forbidden": [{"verbs": ["create", "delete", "deletecollection"],
                           "resources": ["pods"]},
                          {"verbs": ["*"], "resources": ["networkpolicies", "pods/exec"]}],
        },
    }


def _b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_kubeconfig(path, server, pki, tokens, namespace="default"):
    """Writes a kubeconfig (JSON is YAML) with contexts token, cert, cert-files, limited, badtoken.

    token: the first token of a user named admin; cert: the client certificate (as files
    and as -data); limited: the token of the user "limited"; badtoken: a token the server does not know."""
    admin = next(t for t, u in tokens.items() if u.get("user") == "admin")
    limited = next((t for t, u in tokens.items() if u.get("user") == "limited"), admin)
    cluster = {"server": server, "certificate-authority-data": _b64file(os.path.join(pki, "ca.crt"))}
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "fake", "cluster": cluster},
            {"name": "fake-cafile", "cluster": {"server": server,
                                                "certificate-authority": os.path.join(pki, "ca.crt")}},
        ],
        "users": [
            {"name": "token-user", "user": {"token": admin}},
            {"name": "cert-user", "user": {
                "client-certificate-data": _b64file(os.path.join(pki, "client.crt")),
                "client-key-data": _b64file(os.path.join(pki, "client.key"))}},
            {"name": "cert-file-user", "user": {
                "client-certificate": os.path.join(pki, "client.crt"),
                "client-key": os.path.join(pki, "client.key")}},
            {"name": "limited-user", "user": {"token": limited}},
            {"name": "bad-token-user", "user": {"token": "not-a-valid-token"}},
        ],
        "contexts": [
            {"name": "token", "context": {"cluster": "fake", "user": "token-user", "namespace": namespace}},
            {"name": "cert", "context": {"cluster": "fake", "user": "cert-user", "namespace": namespace}},
            {"name": "cert-files", "context": {"cluster": "fake-cafile", "user": "cert-file-user",
                                               "namespace": namespace}},
            {"name": "limited", "context": {"cluster": "fake", "user": "limited-user", "namespace": namespace}},
            {"name": "badtoken", "context": {"cluster": "fake", "user": "bad-token-user", "namespace": namespace}},
        ],
        "current-context": "token",
        "preferences": {},
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=1)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
