# A bounded concurrency soak for agentcell (used by test_soak.sh): workers create, start,
# exec, stop and remove sandboxes on shared and distinct names through the CLI and the
# HTTP API while a killer sends SIGKILL to CLI clients, to supervisors and to `serve`
# (which is started again). Prints one "name=value" line per fact at the end; the shell
# test judges them. Only loopback; every loop bounded by a deadline.
#
# usage: soak.py AGENTCELL SECONDS
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

AC = sys.argv[1]
SECONDS = float(sys.argv[2])
HOME = os.environ["AGENTCELL_HOME"]
rng = random.Random(int(os.environ.get("AC_SOAK_SEED", "0")) or None)
lock = threading.Lock()
stats = {"ops": 0, "spurious_start": 0, "killed_clients": 0, "killed_supervisors": 0,
         "killed_serve": 0, "unexpected": 0}
notes = []
clients = set()  # Popen objects of CLI calls in flight
serve = {"proc": None, "port": 0}
KEEPERS = ["keep0", "keep1", "keep2"]
SHARED = ["sh0", "sh1", "sh2"]
STARTUP = "exited during start-up"
# Failures a concurrent world explains: someone else removed, created, started or stopped
# the name, or the process asking was killed.
EXPLAINED = re.compile(
    r"does not exist|not found|already exists|not running|already running|is running|"
    r"was removed|no such sandbox|is being|stopped during|went away|cancelled|locked|"
    r"timed out|took no request|connection|reset|refused|shim", re.I)


def note(kind, text):
    with lock:
        stats[kind] += 1
        if len(notes) < 20:
            notes.append("%s: %s" % (kind, text.replace("\n", " ")[:300]))


def cli(*args, timeout=60):
    p = subprocess.Popen([AC, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    with lock:
        clients.add(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return -999, out, "watchdog: " + " ".join(args)
    finally:
        with lock:
            clients.discard(p)
    return p.returncode, out, err


def api(method, path, body=None, timeout=60):
    port = serve["port"]
    if not port:
        return -1, {}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (OSError, ValueError):
        return -1, {}  # serve killed or restarting


def start_serve():
    p = subprocess.Popen([AC, "serve", "--port", "0"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    deadline = time.time() + 20
    port = 0
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"serving the API on http://[^ ]*:(\d+) ", line or "")
        if m:
            port = int(m.group(1))
            break
        if p.poll() is not None:
            break
    # Keep draining its stderr so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    serve["proc"], serve["port"] = p, port
    return port


def judge_start(rc, text, how, name):
    if rc == 0:
        return
    if STARTUP in text:
        note("spurious_start", "%s start %s: %s" % (how, name, text))
    elif rc in (-9, -999) or rc == -1:
        return
    elif not EXPLAINED.search(text):
        note("unexpected", "%s start %s (%s): %s" % (how, name, rc, text))


def op(worker, name, via):
    what = rng.choice(["create", "start", "exec", "exec", "stop", "remove"])
    if name in KEEPERS:
        what = "exec"
    with lock:
        stats["ops"] += 1
    if via == "cli":
        if what == "create":
            cli("create", name)
        elif what == "start":
            rc, out, err = cli("start", name)
            judge_start(rc, err, "cli", name)
        elif what == "exec":
            cli("exec", "--timeout", "20", name, "--", "sh", "-c", "echo $$ >/tmp/w%d" % worker)
        elif what == "stop":
            cli("stop", name)
        else:
            cli("remove", name)
    else:
        if what == "create":  # created and started, or nothing
            code, body = api("POST", "/sandboxes", {"name": name})
            if code >= 500:
                judge_start(1, str(body.get("error", body)), "api create", name)
        elif what == "start":
            code, body = api("POST", "/sandboxes/%s/start" % name)
            if code >= 500:
                judge_start(1, str(body.get("error", body)), "api", name)
        elif what == "exec":
            api("POST", "/sandboxes/%s/exec" % name, {"command": ["true"], "timeout": 20})
        elif what == "stop":
            api("POST", "/sandboxes/%s/stop" % name)
        else:
            api("DELETE", "/sandboxes/%s" % name)


def worker(i, deadline):
    own = ["w%d-%d" % (i, n) for n in range(2)]
    while time.time() < deadline:
        name = rng.choice(SHARED + own + KEEPERS)
        op(i, name, rng.choice(["cli", "api"]))


def supervisors():
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("agentcell-init"):
            found[int(pid)] = cmd
    return found


def killer(deadline):
    while time.time() < deadline:
        time.sleep(rng.uniform(0.5, 2.0))
        target = rng.choice(["client", "client", "supervisor", "serve"])
        if target == "client":
            with lock:
                live = [p for p in clients if p.poll() is None]
            if live:
                victim = rng.choice(live)
                try:
                    victim.send_signal(signal.SIGKILL)
                    with lock:
                        stats["killed_clients"] += 1
                except OSError:
                    pass
        elif target == "supervisor":
            sups = list(supervisors())
            if sups:
                try:
                    os.kill(rng.choice(sups), signal.SIGKILL)
                    with lock:
                        stats["killed_supervisors"] += 1
                except OSError:
                    pass
        else:
            p = serve["proc"]
            if p and p.poll() is None:
                serve["port"] = 0
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                with lock:
                    stats["killed_serve"] += 1
                start_serve()


def main():
    for k in KEEPERS:
        rc, _, err = cli("create", k)
        rc2, _, err2 = cli("start", k)
        rc3, _, err3 = cli("exec", k, "--", "sh", "-c", "echo keep-%s >/root/keep" % k)
        if rc or rc2 or rc3:
            print("setup=failed %s %s %s" % (err, err2, err3))
            return
    if not start_serve():
        print("setup=serve did not start")
        return
    deadline = time.time() + SECONDS
    threads = [threading.Thread(target=worker, args=(i, deadline)) for i in range(5)]
    threads.append(threading.Thread(target=killer, args=(deadline,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p = serve["proc"]
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
    print("setup=ok")
    for k, v in stats.items():
        print("%s=%d" % (k, v))
    for n in notes:
        print("note=%s" % n)


main()
