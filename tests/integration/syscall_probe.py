# Tries dangerous system calls and prints one line per probe: "name=RESULT", where RESULT
# is an errno name (EPERM, ENOSYS, ...), "OK" when the call succeeded, or "SIGNAL<n>" when
# the probe was killed. Each probe runs in its own forked child, so a call that succeeds
# cannot change the state of the next probe. Arguments: probe names (default: all).
# x86_64 system call numbers. Written for the agentcell integration tests.
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000
SIGCHLD = 17
AT_FDCWD = -100

L = ctypes.c_long


def buf(n):
    return ctypes.create_string_buffer(n)


def sc(nr, *args):
    conv = []
    for a in args:
        if isinstance(a, int):
            conv.append(L(a))
        else:
            conv.append(a)
    return libc.syscall(L(nr), *conv)


def p_bpf():
    attr = buf(128)
    # BPF_MAP_CREATE of a 1-entry array map
    ctypes.memmove(attr, (ctypes.c_uint32 * 4)(2, 4, 4, 1), 16)
    return sc(321, 0, attr, 128)


def p_perf_event_open():
    attr = buf(128)
    # type=PERF_TYPE_SOFTWARE(1), size=128, config=PERF_COUNT_SW_CPU_CLOCK(0), disabled bit
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(1, 128), 8)
    ctypes.memmove(ctypes.byref(attr, 40), (ctypes.c_uint64 * 1)(1 | (1 << 5) | (1 << 6)), 8)
    return sc(298, attr, 0, -1, -1, 0)


def p_io_uring_setup():
    params = buf(120)
    return sc(425, 4, params)


def p_io_uring_enter():
    return sc(426, 0, 0, 0, 0, 0, 0)


def p_io_uring_register():
    return sc(427, 0, 0, 0, 0)


def p_unshare_user():
    return sc(272, CLONE_NEWUSER)


def p_unshare_mnt():
    return sc(272, CLONE_NEWNS)


def p_unshare_net():
    return sc(272, CLONE_NEWNET)


def p_unshare_pid():
    return sc(272, CLONE_NEWPID)


def p_unshare_uts():
    return sc(272, CLONE_NEWUTS)


def p_unshare_cgroup():
    return sc(272, CLONE_NEWCGROUP)


def _clone_child_exit(r):
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    return r


def p_clone_newuser():
    return _clone_child_exit(sc(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))


def p_clone_newns():
    return _clone_child_exit(sc(56, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0))


def p_clone3_newuser():
    args = buf(88)
    ctypes.memmove(args, (ctypes.c_uint64 * 1)(CLONE_NEWUSER), 8)
    ctypes.memmove(ctypes.byref(args, 32), (ctypes.c_uint64 * 1)(SIGCHLD), 8)
    return _clone_child_exit(sc(435, args, 88))


def _setns(path, nstype):
    fd = os.open(path, os.O_RDONLY)
    return sc(308, fd, nstype)


def p_setns_mnt():
    return _setns("/proc/self/ns/mnt", CLONE_NEWNS)


def p_setns_net():
    return _setns("/proc/self/ns/net", CLONE_NEWNET)


def p_setns_any():
    return _setns("/proc/self/ns/uts", 0)


def p_open_by_handle_at():
    h = buf(136)
    ctypes.memmove(h, (ctypes.c_uint32 * 2)(8, 1), 8)
    return sc(304, AT_FDCWD, h, os.O_RDONLY)


def p_name_to_handle_at():
    h = buf(136)
    ctypes.memmove(h, (ctypes.c_uint32 * 1)(128), 4)
    mnt = ctypes.c_int(0)
    return sc(303, AT_FDCWD, b"/", h, ctypes.byref(mnt), 0)


def p_init_module():
    return sc(175, 0, 0, b"")


def p_finit_module():
    fd = os.open("/dev/null", os.O_RDONLY)
    return sc(313, fd, b"", 0)


def p_delete_module():
    return sc(176, b"agentcell_no_such_module", os.O_NONBLOCK)


def p_kexec_load():
    # nr_segments=0 and flags=0 would unload a loaded kernel; KEXEC_ARCH of another arch
    # makes it invalid even where permitted.
    return sc(246, 0, 0, 0, 0xFFFF0000)


def p_kexec_file_load():
    return sc(320, -1, -1, 0, 0, 0)


def p_userfaultfd():
    return sc(323, os.O_CLOEXEC | 1)  # UFFD_USER_MODE_ONLY


def p_ptrace_traceme():
    return sc(101, 0, 0, 0, 0)


def p_ptrace_attach():
    return sc(101, 16, os.getppid(), 0, 0)  # PTRACE_ATTACH to the parent


def p_add_key():
    return sc(248, b"user", b"agentcell-probe", b"secret", 6, -2)  # process keyring


def p_keyctl():
    return sc(250, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring


def p_request_key():
    return sc(249, b"user", b"agentcell-probe", 0, 0)


def p_socket_packet():
    return sc(41, 17, 3, 0x0300)  # AF_PACKET, SOCK_RAW, ETH_P_ALL


def p_socket_vsock():
    return sc(41, 40, 1, 0)  # AF_VSOCK, SOCK_STREAM


def p_mount():
    return sc(165, b"none", b"/tmp", b"tmpfs", 0, 0)


def p_umount2():
    return sc(166, b"/proc", 2)  # MNT_DETACH


def p_pivot_root():
    return sc(155, b"/tmp", b"/tmp")


def p_fsopen():
    return sc(430, b"tmpfs", 0)


def p_open_tree():
    return sc(428, AT_FDCWD, b"/", 1)  # OPEN_TREE_CLONE


def p_sethostname():
    return sc(170, b"pwned", 5)


def p_swapon():
    return sc(167, b"/dev/null", 0)


def p_acct():
    return sc(163, b"/tmp/acct")


# Calls beyond the first review's list: Docker's default profile refuses these too.
def p_personality_read_implies_exec():
    return sc(135, 0x0400000)


def p_personality_addr_no_randomize():
    return sc(135, 0x0040000)


def p_personality_mmap_page_zero():
    return sc(135, 0x0100000)


def p_personality_query_in_upper_bits():
    # The kernel reads an unsigned int: this is READ_IMPLIES_EXEC to it.
    return sc(135, (1 << 32) | 0x0400000)


def p_personality_almost_query():
    return sc(135, 0xFFFFFFF7)


def p_modify_ldt():
    desc = buf(16)  # struct user_desc, entry 0, empty
    return sc(154, 1, desc, 16)


def p_mbind():
    return sc(237, 0, 4096, 0, 0, 0, 0)


def p_set_mempolicy():
    return sc(238, 0, 0, 0)


def p_move_pages():
    return sc(279, 0, 0, 0, 0, 0, 0)


def p_migrate_pages():
    return sc(256, 0, 0, 0, 0)


def p_memfd_secret():
    return sc(447, 0)


def p_sysfs():
    return sc(139, 3)


def p_ustat():
    return sc(136, 0, buf(64))


# Socket families a sandbox has no use for (many load a module on first use). The
# "upper" variants set bit 32: the kernel reads the family as an int and ignores it.
FAMILIES = {
    "ax25": 3, "ipx": 4, "appletalk": 5, "x25": 9, "decnet": 12, "key": 15,
    "packet": 17, "rds": 21, "pppox": 24, "llc": 26, "can": 29, "tipc": 30,
    "bluetooth": 31, "ieee802154": 36, "alg": 38, "nfc": 39, "vsock": 40, "kcm": 41,
    "qipcrtr": 42, "smc": 43, "xdp": 44, "mctp": 45, "future_63": 63,
}


def socket_probe(fam, upper):
    return lambda: sc(41, ((1 << 32) if upper else 0) | fam, 5, 0)


for _n, _f in FAMILIES.items():
    globals().setdefault("p_socket_" + _n, socket_probe(_f, False))
for _n in ("vsock", "alg", "packet", "tipc"):
    globals()["p_socket_" + _n + "_upper"] = socket_probe(FAMILIES[_n], True)


def p_socketpair_alg():
    sv = (ctypes.c_int * 2)()
    return sc(53, 38, 5, 0, sv)


PROBES = [
    (n[2:], f) for n, f in list(globals().items()) if n.startswith("p_") and callable(f)
]


def run(name, fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            ctypes.set_errno(0)
            ret = fn()
            e = ctypes.get_errno()
            res = "OK" if ret >= 0 else (errno.errorcode.get(e, str(e)))
        except OSError as ex:
            res = "SETUP_" + errno.errorcode.get(ex.errno, str(ex.errno))
        except Exception as ex:  # noqa
            res = "SETUP_" + type(ex).__name__
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 256)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and not data:
        return "SIGNAL%d" % os.WTERMSIG(status)
    return data.decode() or "NORESULT"


def main():
    wanted = sys.argv[1:]
    for name, fn in PROBES:
        if wanted and name not in wanted:
            continue
        print("%s=%s" % (name, run(name, fn)), flush=True)


main()
