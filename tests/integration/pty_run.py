# Runs a command on a new pseudo-terminal of ROWSxCOLS, as a terminal emulator would.
# Usage: pty_run.py ROWS COLS NEWROWS NEWCOLS TIMEOUT -- CMD [ARG...]
# Prints everything the command wrote to the terminal, then "EXIT <status>". When the
# output shows the word READY, the terminal is resized to NEWROWSxNEWCOLS (the kernel sends
# SIGWINCH to the foreground process group) and a newline is typed.
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time


def main():
    rows, cols, nrows, ncols, timeout = (int(a) for a in sys.argv[1:6])
    assert sys.argv[6] == "--"
    cmd = sys.argv[7:]
    pid, master = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(cmd[0], cmd)
    out = b""
    resized = False
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if master in r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not resized and b"READY" in out:
            resized = True
            time.sleep(0.2)
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", nrows, ncols, 0, 0))
            time.sleep(0.3)
            os.write(master, b"\n")
    else:
        os.kill(pid, 9)
        out += b"\nTIMEOUT"
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    print("\nEXIT %d" % code)


main()
