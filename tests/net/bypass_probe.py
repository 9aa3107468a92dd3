#!/usr/bin/env python3
"""Run inside a sandbox with --network: every way around the proxy that the tests try.

Prints one line per attempt: "NAME reached ..." when the attempt got through (a failure of
the sandbox's isolation), "NAME blocked ERRNO-NAME ..." when it did not. Usage:
bypass_probe.py [ATTEMPT...] (default: all).
"""
import errno
import os
import socket
import struct
import subprocess
import sys


def err_name(e):
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def tcp(addr, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, port))
        data = s.recv(100)
        return "reached %r" % data[:40]
    finally:
        s.close()


def udp(addr, port, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(payload, (addr, port))
        try:
            data = s.recv(512)
            return "reached answer %d bytes" % len(data)
        except socket.timeout:
            # Sent without an error: the log of the server decides (the test checks it).
            return "sent-no-answer"
    finally:
        s.close()


def dns_query(name):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def icmp(kind):
    typ = socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_RAW
    s = socket.socket(socket.AF_INET, typ, socket.IPPROTO_ICMP)
    try:
        body = b"agentcell-icmp-probe"
        hdr = struct.pack(">BBHHH", 8, 0, 0, 0x4242, 1)
        csum = 0
        pkt = hdr + body
        for i in range(0, len(pkt), 2):
            csum += (pkt[i] << 8) + (pkt[i + 1] if i + 1 < len(pkt) else 0)
        csum = (csum >> 16) + (csum & 0xFFFF)
        csum = ~(csum + (csum >> 16)) & 0xFFFF
        pkt = struct.pack(">BBHHH", 8, 0, csum, 0x4242, 1) + body
        s.sendto(pkt, ("192.0.2.10", 0))
        s.settimeout(2)
        try:
            s.recv(512)
            return "reached echo reply"
        except socket.timeout:
            return "sent-no-answer"
    finally:
        s.close()


def run_ip(*args):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    if p.returncode == 0:
        return "reached (ip %s succeeded)" % " ".join(args)
    raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "rc %d" % p.returncode)


ATTEMPTS = {
    "tcp-direct": lambda: tcp("192.0.2.10", 9000),
    "tcp-direct-80": lambda: tcp("192.0.2.10", 80),
    "tcp6-direct": lambda: tcp("2001:db8::10", 80, socket.AF_INET6),
    "tcp-metadata-direct": lambda: tcp("169.254.169.254", 80),
    "udp-53": lambda: udp("192.0.2.53", 53, dns_query("allowed.test")),
    "udp-9999": lambda: udp("192.0.2.53", 9999, b"agentcell-udp-probe"),
    "icmp-dgram": lambda: icmp("dgram"),
    "icmp-raw": lambda: icmp("raw"),
    "ip-link-add": lambda: run_ip("link", "add", "acprobe0", "type", "dummy"),
    "ip-route-add": lambda: run_ip("route", "add", "192.0.2.0/24", "dev", "lo"),
    "ip-lo-down": lambda: run_ip("link", "set", "lo", "down"),
    "ip-addr-add": lambda: run_ip("addr", "add", "192.0.2.99/32", "dev", "lo"),
}


def main():
    names = sys.argv[1:] or list(ATTEMPTS)
    for n in names:
        try:
            r = ATTEMPTS[n]()
        except FileNotFoundError as e:
            r = "unavailable %s" % e
        except RuntimeError as e:
            r = "blocked %s" % e
        except Exception as e:  # noqa: BLE001 - every failure is the expected outcome
            r = "blocked %s %s" % (err_name(e), e)
        print("%s %s" % (n, r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
