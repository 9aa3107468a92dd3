#!/usr/bin/env python3
"""A small image pusher for the image tests (Python stdlib only; zstd through the zstd CLI).

  push.py [CONN] image HOST:PORT/REPO[:TAG] --layer PATH [--layer PATH ...] [options]
  push.py [CONN] index HOST:PORT/REPO:TAG --manifest sha256:.. [--manifest ..] [--format F]
  push.py [CONN] get HOST:PORT/REPO:TAG|@DIGEST       (prints the manifest as served)

CONN: --insecure (plain HTTP), --cacert FILE, --username U with --password P or
--password-stdin. Basic and bearer (token) challenges are both answered.

image: each --layer is a directory (tarred, sorted, owners and modes kept: a file named
.wh.NAME or .wh..wh..opq is an OCI whiteout) or a tar file, compressed with the
--compression in force where it appears on the command line (gzip, the default; zstd; none).
Blobs already in the repository are not sent again. --format docker (schema 2; gzip only)
or oci. The config is generated: --platform OS/ARCH[/VARIANT] (default linux/amd64),
--env K=V, --workdir, --user, --entrypoint JSON, --cmd JSON, --label K=V. --chunked N sends
blobs as PATCH chunks of N bytes (else one PUT). Without a tag (or with --no-tag) the manifest
is pushed by digest. Prints the manifest's digest; --json prints its descriptor instead.

index: an OCI index (--format oci, default) or a Docker manifest list (--format docker) of
manifests already in REPO, their platforms read from their configs.
"""

import argparse
import base64
import gzip
import hashlib
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse

MT = {
    "docker": {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    },
    "oci": {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "index": "application/vnd.oci.image.index.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
        "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
        "none": "application/vnd.oci.image.layer.v1.tar",
    },
}
ACCEPT = ", ".join([MT["docker"]["manifest"], MT["docker"]["index"], MT["oci"]["manifest"],
                    MT["oci"]["index"]])


def die(msg):
    sys.stderr.write("push.py: %s\n" % msg)
    sys.exit(1)


# ---------------------------------------------------------------- references


def parse_ref(s):
    """host:port/repo[:tag][@digest] -> (host, repo, tag, digest)"""
    host, _, rest = s.partition("/")
    if not rest:
        die("reference %r: expected HOST:PORT/REPO[:TAG]" % s)
    digest = ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    tag = ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    return host, rest, tag, digest


# ---------------------------------------------------------------- the registry client


class Registry:
    def __init__(self, host, insecure, cacert, user, password):
        self.host, self.insecure = host, insecure
        self.user, self.password = user, password
        self.ctx = None if insecure else ssl.create_default_context(cafile=cacert)
        self.auth = None  # the Authorization header that worked last
        self.tokens = {}

    def conn(self, netloc, https):
        h, _, p = netloc.rpartition(":")
        if not h:
            h, p = netloc, None
        if https:
            return http.client.HTTPSConnection(h, p, timeout=120, context=self.ctx)
        return http.client.HTTPConnection(h, p, timeout=120)

    def raw(self, method, url, body=None, headers=None):
        u = urllib.parse.urlsplit(url)
        c = self.conn(u.netloc, u.scheme == "https")
        path = u.path + ("?" + u.query if u.query else "")
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return "%s://%s%s" % ("http" if self.insecure else "https", self.host, path)

    def challenge(self, header):
        scheme, _, params = header.partition(" ")
        out = {}
        for m in re.finditer(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', params):
            out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
        return scheme.lower(), out

    def login(self, header):
        """Sets self.auth from a WWW-Authenticate header; False if it cannot."""
        scheme, p = self.challenge(header)
        if scheme == "basic":
            if self.user is None:
                return False
            cred = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            self.auth = "Basic " + cred
            return True
        if scheme != "bearer":
            return False
        q = {"service": p.get("service", "")}
        if p.get("scope"):
            q["scope"] = p["scope"]
        key = (p.get("realm"), q.get("scope"))
        if key in self.tokens:
            self.auth = self.tokens[key]
            return True
        hdrs = {}
        if self.user is not None:
            cred = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            hdrs["Authorization"] = "Basic " + cred
        r, data = self.raw("GET", p["realm"] + "?" + urllib.parse.urlencode(q), headers=hdrs)
        if r.status != 200:
            die("token server %s: HTTP %d %s" % (p["realm"], r.status, data[:200]))
        j = json.loads(data)
        self.auth = "Bearer " + (j.get("token") or j.get("access_token"))
        self.tokens[key] = self.auth
        return True

    def request(self, method, path, body=None, headers=None, ok=(200,)):
        """A request with auth (answering one challenge); body: bytes or a file path."""
        for attempt in range(2):
            h = dict(headers or {})
            if self.auth:
                h["Authorization"] = self.auth
            data = body
            f = None
            if isinstance(body, str):
                f = open(body, "rb")
                h["Content-Length"] = str(os.fstat(f.fileno()).st_size)
                data = f
            elif body is not None:
                h["Content-Length"] = str(len(body))
            elif method in ("PUT", "POST", "PATCH"):
                h["Content-Length"] = "0"
            try:
                r, resp = self.raw(method, self.url(path), data, h)
            finally:
                if f:
                    f.close()
            if r.status == 401 and attempt == 0:
                if self.login(r.getheader("WWW-Authenticate", "")):
                    continue
            if r.status not in ok:
                die("%s %s: HTTP %d %s" % (method, path, r.status, resp[:300].decode(errors="replace")))
            return r, resp
        die("%s %s: still unauthorized" % (method, path))

    # -- blobs and manifests

    def has_blob(self, repo, digest):
        r, _ = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), ok=(200, 404))
        return r.status == 200

    def put_blob(self, repo, digest, path, chunk):
        if self.has_blob(repo, digest):
            return False
        r, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo, ok=(202,))
        loc = r.getheader("Location")
        if chunk:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                off = 0
                while off < size:
                    piece = f.read(chunk)
                    r, _ = self.request("PATCH", loc, piece, {
                        "Content-Type": "application/octet-stream",
                        "Content-Range": "%d-%d" % (off, off + len(piece) - 1)}, ok=(202,))
                    loc = r.getheader("Location")
                    off += len(piece)
            sep = "&" if "?" in loc else "?"
            self.request("PUT", loc + sep + "digest=" + digest, None, ok=(201,))
        else:
            sep = "&" if "?" in loc else "?"
            self.request("PUT", loc + sep + "digest=" + digest, path,
                         {"Content-Type": "application/octet-stream"}, ok=(201,))
        return True

    def put_manifest(self, repo, ref, media_type, data):
        self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), data,
                     {"Content-Type": media_type}, ok=(201,))

    def get_manifest(self, repo, ref):
        r, data = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref),
                               headers={"Accept": ACCEPT})
        return r.getheader("Content-Type"), data

    def get_blob(self, repo, digest):
        return self.request("GET", "/v2/%s/blobs/%s" % (repo, digest))[1]


# ---------------------------------------------------------------- layers


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return "sha256:" + h.hexdigest()


def make_tar(src, out):
    """A directory -> a tar (entries sorted; uid/gid/mode/mtime as on disk)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(root, name)
                arc = os.path.relpath(full, src)
                ti = t.gettarinfo(full, arc)
                ti.uname = ti.gname = ""
                if ti.isreg():
                    with open(full, "rb") as f:
                        t.addfile(ti, f)
                else:
                    t.addfile(ti)


def compress(tar, kind, out):
    if kind == "none":
        return tar
    if kind == "gzip":
        with open(tar, "rb") as src, open(out, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as z:
                for piece in iter(lambda: src.read(1 << 20), b""):
                    z.write(piece)
        return out
    if kind == "zstd":
        subprocess.run(["zstd", "-q", "-f", "-3", "-o", out, tar], check=True)
        return out
    die("unknown compression %r" % kind)


class LayerAction(argparse.Action):
    def __call__(self, parser, ns, value, option_string=None):
        ns.layers.append((value, ns.compression))


# ---------------------------------------------------------------- commands


def cmd_image(reg, a, work):
    host, repo, tag, _ = parse_ref(a.ref)
    fmt = MT[a.format]
    if not a.layers:
        die("image: at least one --layer")
    descs, diff_ids = [], []
    for i, (src, kind) in enumerate(a.layers):
        if a.format == "docker" and kind != "gzip":
            die("--format docker takes gzip layers only (%s is %s)" % (src, kind))
        if os.path.isdir(src):
            tar = os.path.join(work, "layer%d.tar" % i)
            make_tar(src, tar)
        elif os.path.isfile(src):
            tar = src
        else:
            die("layer %s: no such file or directory" % src)
        diff_ids.append(sha256_file(tar))
        blob = compress(tar, kind, os.path.join(work, "layer%d.%s" % (i, kind)))
        digest = sha256_file(blob)
        reg.put_blob(repo, digest, blob, a.chunked)
        descs.append({"mediaType": fmt[kind], "size": os.path.getsize(blob), "digest": digest})
    plat = a.platform.split("/")
    cfg_inner = {}
    if a.env:
        cfg_inner["Env"] = a.env
    if a.workdir:
        cfg_inner["WorkingDir"] = a.workdir
    if a.user:
        cfg_inner["User"] = a.user
    if a.entrypoint:
        cfg_inner["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd:
        cfg_inner["Cmd"] = json.loads(a.cmd)
    if a.label:
        cfg_inner["Labels"] = dict(kv.split("=", 1) for kv in a.label)
    config = {"created": a.created, "architecture": plat[1], "os": plat[0],
              "config": cfg_inner, "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": a.created, "created_by": "push.py layer %d" % i}
                          for i in range(len(diff_ids))]}
    if len(plat) > 2:
        config["variant"] = plat[2]
    cfg = json.dumps(config, sort_keys=True).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    cfg_path = os.path.join(work, "config.json")
    with open(cfg_path, "wb") as f:
        f.write(cfg)
    reg.put_blob(repo, cfg_digest, cfg_path, 0)
    manifest = {"schemaVersion": 2, "mediaType": fmt["manifest"],
                "config": {"mediaType": fmt["config"], "size": len(cfg), "digest": cfg_digest},
                "layers": descs}
    if a.annotation:
        manifest["annotations"] = dict(kv.split("=", 1) for kv in a.annotation)
    data = json.dumps(manifest, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reg.put_manifest(repo, digest if (a.no_tag or not tag) else tag, fmt["manifest"], data)
    if a.json:
        d = {"mediaType": fmt["manifest"], "digest": digest, "size": len(data),
             "platform": {"architecture": plat[1], "os": plat[0]}, "config": cfg_digest,
             "layers": [x["digest"] for x in descs]}
        print(json.dumps(d))
    else:
        print(digest)


def cmd_index(reg, a, work):
    host, repo, tag, _ = parse_ref(a.ref)
    fmt = MT[a.format]
    entries = []
    for d in a.manifest:
        mt, data = reg.get_manifest(repo, d)
        m = json.loads(data)
        cfg = json.loads(reg.get_blob(repo, m["config"]["digest"]))
        plat = {"architecture": cfg["architecture"], "os": cfg["os"]}
        if cfg.get("variant"):
            plat["variant"] = cfg["variant"]
        entries.append({"mediaType": mt.split(";")[0], "size": len(data),
                        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                        "platform": plat})
    index = {"schemaVersion": 2, "mediaType": fmt["index"], "manifests": entries}
    data = json.dumps(index, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reg.put_manifest(repo, tag or digest, fmt["index"], data)
    print(digest)


def cmd_get(reg, a, work):
    host, repo, tag, digest = parse_ref(a.ref)
    mt, data = reg.get_manifest(repo, digest or tag or "latest")
    sys.stdout.write(data.decode() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--insecure", action="store_true", help="plain HTTP")
    ap.add_argument("--cacert", help="CA file for HTTPS")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--password-stdin", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)
    im = sub.add_parser("image")
    im.add_argument("ref")
    im.set_defaults(layers=[], compression="gzip")
    im.add_argument("--compression", choices=["gzip", "zstd", "none"])
    im.add_argument("--layer", action=LayerAction)
    im.add_argument("--format", choices=["docker", "oci"], default="oci")
    im.add_argument("--platform", default="linux/amd64")
    im.add_argument("--env", action="append", default=[])
    im.add_argument("--workdir")
    im.add_argument("--user")
    im.add_argument("--entrypoint")
    im.add_argument("--cmd")
    im.add_argument("--label", action="append", default=[])
    im.add_argument("--annotation", action="append", default=[])
    im.add_argument("--created", default="2024-01-02T03:04:05Z")
    im.add_argument("--chunked", type=int, default=0, metavar="BYTES")
    im.add_argument("--no-tag", action="store_true")
    im.add_argument("--json", action="store_true")
    ix = sub.add_parser("index")
    ix.add_argument("ref")
    ix.add_argument("--manifest", action="append", required=True)
    ix.add_argument("--format", choices=["docker", "oci"], default="oci")
    g = sub.add_parser("get")
    g.add_argument("ref")
    a = ap.parse_args()
    if a.password_stdin:
        a.password = sys.stdin.readline().rstrip("\n")
    if a.username is not None and a.password is None:
        die("--username needs --password or --password-stdin")
    host = parse_ref(a.ref)[0]
    reg = Registry(host, a.insecure, a.cacert, a.username, a.password)
    with tempfile.TemporaryDirectory(prefix="push.") as work:
        {"image": cmd_image, "index": cmd_index, "get": cmd_get}[a.command](reg, a, work)


if __name__ == "__main__":
    main()
