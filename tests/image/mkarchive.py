#!/usr/bin/env python3
"""Builds image archives for the tests, from directories or layer tars (Python stdlib only).

  mkarchive.py layer DIR OUT.tar
      a layer tar of DIR (sorted, owner 0:0, mtime 0: the same bytes every time)
  mkarchive.py image --format FMT OUT --image SPEC [--image SPEC]...
      FMT: docker-legacy  `docker save` before docker 25: <id>/layer.tar, <hex>.json,
                          manifest.json, repositories
           docker         `docker save` of docker 25+: blobs/sha256/, manifest.json,
                          index.json, oci-layout
           oci-dir        an OCI image layout directory
           oci-archive    the same as a tar (podman save --format oci-archive)
      SPEC: JSON {"tags": ["ref", ...], "layers": ["DIR or .tar", ...],
                  "compress": "none" | "gzip" | "zstd" (layers in blobs/; docker-legacy:
                  none), "config": {"Env": [...], "Cmd": [...], ...}}
      Prints {"images": [{"id", "manifest", "layers": [digests], "diff_ids"}]} as JSON.
  mkarchive.py evil KIND GOOD.tar OUT.tar
      a hostile copy of a docker-legacy or docker archive GOOD.tar:
      dotdot        an extra member "../evil"
      absolute      an extra member "/tmp/evil"
      manifest-out  manifest.json's first layer is "../../etc/passwd"
      bad-digest    a blobs/sha256/<hex> member whose content is not <hex>
      bad-layer     the first layer's bytes changed (its digest no longer matches)
      symlink-out   a member symlink "escape -> ../../etc/passwd" used as a layer
"""
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
        "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(
            platform.machine(), platform.machine())

MT = {
    "oci_manifest": "application/vnd.oci.image.manifest.v1+json",
    "oci_index": "application/vnd.oci.image.index.v1+json",
    "oci_config": "application/vnd.oci.image.config.v1+json",
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer_of_dir(path):
    """A reproducible tar of the tree at path."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        entries = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for n in sorted(dirs + files):
                entries.append(os.path.join(root, n))
        for full in sorted(entries):
            rel = os.path.relpath(full, path)
            info = t.gettarinfo(full, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isreg():
                with open(full, "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
    return buf.getvalue()


def layer_bytes(src):
    if os.path.isdir(src):
        return layer_of_dir(src)
    with open(src, "rb") as f:
        return f.read()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=data, check=True,
                              stdout=subprocess.PIPE).stdout
    return data


def make_image(spec):
    """Blobs of one image: {layers: [(tar, blob)], config: bytes, manifest: bytes}."""
    how = spec.get("compress", "none")
    layers = []
    for src in spec["layers"]:
        tar = layer_bytes(src)
        layers.append((tar, compress(tar, how)))
    cfg = {
        "architecture": ARCH,
        "os": "linux",
        "created": spec.get("created", "2024-01-02T03:04:05Z"),
        "config": spec.get("config", {}),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(t) for t, _ in layers]},
        "history": [{"created_by": "mkarchive.py"} for _ in layers],
    }
    config = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MT["oci_manifest"],
        "config": {"mediaType": MT["oci_config"], "size": len(config),
                   "digest": "sha256:" + sha(config)},
        "layers": [{"mediaType": MT[how], "size": len(b), "digest": "sha256:" + sha(b)}
                   for _, b in layers],
    }, separators=(",", ":")).encode()
    return {"tags": spec.get("tags", []), "layers": layers, "config": config,
            "manifest": manifest}


class Out:
    """Files of an archive: a directory or a tar, written in order."""

    def __init__(self, path, as_dir):
        self.as_dir = as_dir
        self.path = path
        self.seen = set()
        if as_dir:
            os.makedirs(path, exist_ok=True)
        else:
            self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def add(self, name, data):
        if name in self.seen:
            return
        self.seen.add(name)
        if self.as_dir:
            full = os.path.join(self.path, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
            return
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def close(self):
        if not self.as_dir:
            self.tar.close()


def short_tag(ref):
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def write_image(fmt, out, images):
    o = Out(out, fmt == "oci-dir")
    dj = json.dumps
    if fmt == "docker-legacy":
        manifest, repos = [], {}
        for im in images:
            cfg_hex = sha(im["config"])
            o.add(cfg_hex + ".json", im["config"])
            paths = []
            for tar, _ in im["layers"]:
                lid = sha(tar)
                o.add(lid + "/VERSION", b"1.0")
                o.add(lid + "/layer.tar", tar)
                paths.append(lid + "/layer.tar")
            manifest.append({"Config": cfg_hex + ".json", "RepoTags": im["tags"] or None,
                             "Layers": paths})
            for t in im["tags"]:
                name, _, tag = t.rpartition(":")
                repos.setdefault(name, {})[tag] = sha(im["layers"][-1][0])
        o.add("manifest.json", dj(manifest).encode())
        o.add("repositories", dj(repos).encode())
    else:
        index, manifest = [], []
        for im in images:
            for blob in [im["config"], im["manifest"]] + [b for _, b in im["layers"]]:
                o.add("blobs/sha256/" + sha(blob), blob)
            desc = {"mediaType": MT["oci_manifest"], "digest": "sha256:" + sha(im["manifest"]),
                    "size": len(im["manifest"])}
            for t in im["tags"] or [None]:
                d = dict(desc)
                if t and fmt == "docker":
                    d["annotations"] = {"io.containerd.image.name": t,
                                        "org.opencontainers.image.ref.name": short_tag(t)}
                elif t:
                    d["annotations"] = {"org.opencontainers.image.ref.name": t}
                index.append(d)
            manifest.append({"Config": "blobs/sha256/" + sha(im["config"]),
                             "RepoTags": im["tags"],
                             "Layers": ["blobs/sha256/" + sha(b) for _, b in im["layers"]]})
        o.add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        o.add("index.json", dj({"schemaVersion": 2, "mediaType": MT["oci_index"],
                                "manifests": index}).encode())
        if fmt == "docker":
            o.add("manifest.json", dj(manifest).encode())
    o.close()
    return {"images": [{
        "id": "sha256:" + sha(im["config"]),
        "manifest": "sha256:" + sha(im["manifest"]),
        "layers": ["sha256:" + sha(b) for _, b in im["layers"]],
        "diff_ids": ["sha256:" + sha(t) for t, _ in im["layers"]],
    } for im in images]}


def evil(kind, good, out):
    with tarfile.open(good) as t:
        members = [(m, t.extractfile(m).read() if m.isreg() else None) for m in t.getmembers()]
    names = [m.name for m, _ in members]
    man = json.loads(dict((m.name, d) for m, d in members)["manifest.json"])
    first = man[0]["Layers"][0]
    extra = []
    if kind == "dotdot":
        extra.append(("../evil", b"x"))
    elif kind == "absolute":
        extra.append(("/tmp/evil", b"x"))
    elif kind == "manifest-out":
        man[0]["Layers"][0] = "../../etc/passwd"
    elif kind == "symlink-out":
        man[0]["Layers"][0] = "escape"
    elif kind == "bad-digest":
        extra.append(("blobs/sha256/" + "0" * 64, b"not the digest"))
    elif kind != "bad-layer":
        sys.exit("unknown kind " + kind)
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
        for m, data in members:
            if m.name == "manifest.json":
                data = json.dumps(man).encode()
                m.size = len(data)
            if kind == "bad-layer" and m.name == first:
                data = data[:-1024] + b"\1" + data[-1023:]
            t.addfile(m, io.BytesIO(data) if data is not None else None)
        for name, data in extra:
            info = tarfile.TarInfo("placeholder")
            info.name = name  # tarfile keeps the name as given
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if kind == "symlink-out":
            info = tarfile.TarInfo("escape")
            info.type = tarfile.SYMTYPE
            info.linkname = "../../etc/passwd"
            t.addfile(info)
    assert names


def main(argv):
    if len(argv) >= 3 and argv[0] == "layer":
        with open(argv[2], "wb") as f:
            f.write(layer_of_dir(argv[1]))
        return
    if len(argv) == 4 and argv[0] == "evil":
        evil(argv[1], argv[2], argv[3])
        return
    if len(argv) >= 4 and argv[0] == "image" and argv[1] == "--format":
        fmt, out, rest = argv[2], argv[3], argv[4:]
        if fmt not in ("docker-legacy", "docker", "oci-dir", "oci-archive"):
            sys.exit("unknown format " + fmt)
        specs = [json.loads(rest[i + 1]) for i in range(0, len(rest), 2)
                 if rest[i] == "--image"]
        if not specs:
            sys.exit("no --image given")
        if fmt == "oci-dir" and os.path.exists(out):
            shutil.rmtree(out)
        print(json.dumps(write_image(fmt, out, [make_image(s) for s in specs])))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
