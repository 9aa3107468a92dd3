/* Process title and environment as /proc shows them (proctitle.c). */
#ifndef AGENTCELL_BASE_PROCTITLE_H
#define AGENTCELL_BASE_PROCTITLE_H

/* Records argv's memory (call first thing in main) so that a forked process can replace
 * its /proc/PID/cmdline with title (cut to the original length). */
void ac_proctitle_init(int argc, char **argv);
void ac_proctitle_set(const char *title);
/* Zeroes the environment as /proc/PID/environ shows it (getenv keeps a private copy): a
 * sandbox's init is a fork of the caller, whose environment (API keys of `serve`, tokens of
 * a shell) must not be readable there by anyone, host root included. */
void ac_proctitle_note_environ(void);
void ac_proctitle_wipe_environ(void);

#endif
