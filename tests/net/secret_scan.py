#!/usr/bin/env python3
"""Run inside a sandbox: looks for strings everywhere the sandbox can read them.

Reads needles from standard input, one per line as "LABEL VALUE" (so that no value is on
any command line), and searches: every process's environ and cmdline, and every regular
file under every writable mount of the sandbox (from /proc/self/mountinfo; proc, sysfs
and device file systems aside; at most 64 MiB a file), plus the extra paths given as
arguments (files or directories). Prints "found LABEL PATH" per hit, then
"scanned N files", "writable MOUNTPOINT..." .
"""
import os
import sys

SKIP_FS = {"proc", "sysfs", "devtmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "securityfs",
           "debugfs", "tracefs", "bpf", "pstore", "hugetlbfs", "fusectl", "configfs", "binfmt_misc"}
MAX = 64 << 20


def writable_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            parts = left.split()
            mnt, opts = parts[4], parts[5].split(",")
            fstype = right.split()[0]
            if "rw" in opts and fstype not in SKIP_FS:
                out.append(mnt.replace("\\040", " "))
    return out


def scan_file(path, needles, hits):
    try:
        st = os.lstat(path)
        if not os.path.isfile(path) or os.path.islink(path) or st.st_size > MAX:
            return 0
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0
    for label, val in needles:
        if val in data:
            hits.append((label, path))
    return 1


def main():
    needles = []
    for line in sys.stdin.read().splitlines():
        if " " in line:
            label, val = line.split(" ", 1)
            needles.append((label, val.encode()))
    hits = []
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for what in ("environ", "cmdline"):
                try:
                    with open("/proc/%s/%s" % (pid, what), "rb") as f:
                        data = f.read()
                    n += 1
                    for label, val in needles:
                        if val in data:
                            hits.append((label, "/proc/%s/%s" % (pid, what)))
                except OSError:
                    pass
    mounts = writable_mounts()
    roots = mounts + sys.argv[1:]
    seen = set()
    for root in roots:
        if os.path.isfile(root):
            n += scan_file(root, needles, hits)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath.startswith(("/proc", "/sys")):
                dirnames[:] = []
                continue
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                if p in seen:
                    continue
                seen.add(p)
                n += scan_file(p, needles, hits)
    for label, path in hits:
        print("found %s %s" % (label, path))
    print("scanned %d files" % n)
    print("writable " + " ".join(mounts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
