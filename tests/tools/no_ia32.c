/* no_ia32 PROGRAM [ARGS...]: runs PROGRAM as on a kernel without IA32 emulation, where a
 * 64-bit process that executes int $0x80 gets a signal it may catch (SIGSEGV there). A
 * four-instruction seccomp program answers every system call made through the i386 ABI
 * with SECCOMP_RET_TRAP (a catchable SIGSYS) and allows every other one. The test suite
 * runs the runtime unit tests under it to show that their 32-bit checks become a visible
 * skip there, never a crash or a second copy of the test runner. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: no_ia32 PROGRAM [ARGS...]\n");
		return 2;
	}
	struct sock_filter prog[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fp = {.len = sizeof(prog) / sizeof(prog[0]), .filter = prog};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) < 0) {
		fprintf(stderr, "no_ia32: cannot load the filter: %s\n", strerror(errno));
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_ia32: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
