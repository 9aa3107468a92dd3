/* Capabilities: the sandbox keeps Docker's default set minus CAP_MKNOD and CAP_NET_RAW:
 * enough for package managers (chown, setuid to _apt, ...), nothing that administers
 * the kernel (no SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_RAWIO, ...).
 *
 * A sandbox with a writable host mount (/workspace) also loses CAP_SETFCAP: the mount is
 * idmapped so that sandbox root writes as the directory's host owner, and a file
 * capability set there would be converted to one whose root is that owner (host root,
 * for a root-owned directory): `setcap cap_setuid+ep` on a copy of any binary would hand
 * host root to whoever runs it. The other security.* attributes need CAP_SYS_ADMIN over
 * the host file system's user namespace, which a sandbox never has; setuid and setgid
 * bits are refused by the seccomp filter (seccomp.c, build_no_setid). */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/util.h"
#include "runtime/caps.h"
#include "runtime/userns.h"

static const int keep[] = {CAP_CHOWN,	   CAP_DAC_OVERRIDE, CAP_FOWNER,	   CAP_FSETID,
			   CAP_KILL,	   CAP_SETGID,	     CAP_SETUID,	   CAP_SETPCAP,
			   CAP_SYS_CHROOT, CAP_AUDIT_WRITE,  CAP_NET_BIND_SERVICE, CAP_SETFCAP};

static bool kept(int cap)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(keep); i++)
		if (keep[i] == cap)
			return true;
	return false;
}

int ac_caps_limit_bounding(bool host_mount, ac_error_t **err)
{
	for (int cap = 0; cap <= 63; cap++) {
		if (kept(cap) && !(host_mount && cap == CAP_SETFCAP))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* past the kernel's last capability */
				break;
			return ac_error_set(err, AC_ERR_BACKEND, errno, "cannot drop capability %d",
					    cap);
		}
	}
	return 0;
}

int ac_caps_drop_to_sandbox_set(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2] = {{0}};
	for (size_t i = 0; i < AC_ARRAY_SIZE(keep); i++) {
		/* The set is the kept capabilities still in the bounding set (which
		 * ac_caps_limit_bounding cut per sandbox): what an exec would leave. */
		if (prctl(PR_CAPBSET_READ, keep[i], 0, 0, 0) != 1)
			continue;
		d[keep[i] / 32].effective |= 1u << (keep[i] % 32);
		d[keep[i] / 32].permitted |= 1u << (keep[i] % 32);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return (int)syscall(SYS_capset, &h, d);
}

uint64_t ac_caps_bounding(void)
{
	uint64_t set = 0;
	for (int cap = 0; cap <= 63; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			break; /* past the kernel's last capability */
		if (r == 1)
			set |= 1ull << cap;
	}
	return set;
}

/* Joining a user namespace resets the bounding set to every capability: the commands'
 * namespace gets the sandbox's cut again (async-signal-safe: system calls only). */
int ac_caps_bounding_restore(uint64_t set)
{
	for (int cap = 0; cap <= 63; cap++) {
		if (set & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;
			return -1;
		}
	}
	return 0;
}

/* The supervisor's processes run as a uid that the commands' namespace does not map, with
 * the sandbox's capabilities kept: a command then shares no uid with them and has no
 * capability in their namespace, so it can neither signal nor inspect them. */
int ac_caps_become_supervisor(void)
{
	const uid_t id = AC_SUPERVISOR_UID;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(id, id, id) < 0 || setresuid(id, id, id) < 0 ||
	    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return -1;
	/* The permitted set survived (KEEPCAPS); the effective set is raised again. */
	return ac_caps_drop_to_sandbox_set();
}
