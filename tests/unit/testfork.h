/* Forking inside a cmocka test, safely.
 *
 * cmocka catches SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGSYS and long-jumps back into its
 * test runner. A forked child inherits those handlers, so a child that crashes (an
 * int $0x80 probe on a kernel without IA32 emulation, a seccomp kill) would resume the
 * runner *in the child* and run the following tests a second time, sharing state with
 * the parent. ac_test_fork() gives the child what exec would: every caught signal back
 * to its default disposition and an empty signal mask, so a crash is a crash (the parent
 * sees WIFSIGNALED) and nothing but the code the test forked for runs there. Children
 * report failures by exit code, never with cmocka's assert_*(). */
#ifndef AC_TESTS_TESTFORK_H
#define AC_TESTS_TESTFORK_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void ac_test_child_reset_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
			continue;
		if (!(sa.sa_flags & SA_SIGINFO) &&
		    (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* fork() for tests: flushes stdio first (no doubled output), and in the child resets
 * caught signals and the mask. Returns what fork() returns. */
static inline pid_t ac_test_fork(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		ac_test_child_reset_signals();
	return pid;
}

/* Forks, runs fn in the child and returns the child's exit status, 1000 + the signal
 * that killed it, or >= 2000 when fork or wait failed. The child never returns into
 * cmocka. */
static inline int ac_test_fork_wait(int (*fn)(void *), void *arg)
{
	pid_t pid = ac_test_fork();
	if (pid < 0)
		return 2000;
	if (pid == 0)
		_exit(fn(arg)); /* _exit: no atexit handlers (LeakSanitizer needs ptrace) */
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return 2001;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

#endif
