/* agentcell doctor: each backend's own checks (its probe op: the native backend checks
 * the host for real), the state directory, and what killed runs left behind. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/seccomp.h>

#include "agentcell/store.h"
#include "base/util.h"
#include "agentcell/backend.h"
#include "cli/cli.h"

static int failures;

static void report(bool ok, const char *what, const char *detail, const char *fix)
{
	printf("%-5s %-28s %s\n", ok ? "ok" : "FAIL", what, detail ? detail : "");
	if (!ok) {
		failures++;
		if (fix)
			printf("      fix: %s\n", fix);
	}
}

/* The container engine (the docker backend's probe): never a failure of doctor (native is
 * the default), but containers of agentcell's that no state file knows are shown, never
 * deleted. */
static void engine_report(json_t *p)
{
	const char *err = json_string_value(json_object_get(p, "error"));
	const char *engine = json_string_value(json_object_get(p, "engine"));
	char detail[600];
	if (engine && !err)
		snprintf(detail, sizeof(detail), "%s at %s (from %s)",
			 json_string_value(json_object_get(p, "version")), engine,
			 json_string_value(json_object_get(p, "source")));
	else
		snprintf(detail, sizeof(detail), "%s%s%s", engine ? engine : "", engine ? ": " : "",
			 err ? err : "?");
	const char *label = json_string_value(json_object_get(p, "label"));
	printf("%-5s %-28s %s\n", engine && !err ? "ok" : "info",
	       label ? label : "docker/podman engine", detail);
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(p, "orphans"), i, o)
	{
		const char *name = json_string_value(json_object_get(o, "name"));
		/* An engine that says how its leftover is removed (kubernetes: a pod or a
		 * NetworkPolicy and its kubectl command). */
		const char *remove = json_string_value(json_object_get(o, "remove"));
		if (remove) {
			char what[64];
			snprintf(what, sizeof(what), "unknown agentcell %s",
				 json_string_value(json_object_get(o, "kind"))
				     ? json_string_value(json_object_get(o, "kind"))
				     : "object");
			printf("WARN  %-28s %s has no state file here; not deleted. Remove it "
			       "with: %s\n",
			       what, name ? name : "?", remove);
			continue;
		}
		printf("WARN  %-28s %s (%s, sandbox '%s'%s) has no state file here; not deleted. "
		       "Remove it with: docker rm -f %s\n",
		       "unknown agentcell container", name ? name : "?",
		       json_string_value(json_object_get(o, "state"))
			   ? json_string_value(json_object_get(o, "state"))
			   : "?",
		       json_string_value(json_object_get(o, "sandbox"))
			   ? json_string_value(json_object_get(o, "sandbox"))
			   : "?",
		       json_is_true(json_object_get(o, "run")) ? ", an interrupted run" : "",
		       name ? name : "CONTAINER");
	}
}

/* A backend's own checks ({name, ok, detail, fix}), as the native backend reports them:
 * each failure counts. */
static void checks_report(json_t *p)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(p, "checks"), i, c) report(
	    json_is_true(json_object_get(c, "ok")), json_string_value(json_object_get(c, "name")),
	    json_string_value(json_object_get(c, "detail")),
	    json_string_value(json_object_get(c, "fix")));
	const char *summary = json_string_value(json_object_get(p, "summary"));
	if (summary)
		printf("%s\n", summary);
}

/* $AGENTCELL_HOME: writable, records lost, and what killed processes left (gc removes
 * it). Warnings, never failures: the backend still works. */
static void home_report(void)
{
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return;
	const char *home = ac_store_home(ac_manager_store(m));
	char probe[1300];
	snprintf(probe, sizeof(probe), "%s/.doctor-probe.%ld", home, (long)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int en = fd < 0 ? errno : 0;
	if (fd >= 0) {
		/* A byte, not only an inode: a full file system takes the create. */
		if (write(fd, "x", 1) != 1 || fsync(fd) < 0)
			en = errno ? errno : ENOSPC;
		close(fd);
		unlink(probe);
	}
	struct statvfs vfs;
	unsigned long long free_mb =
	    statvfs(home, &vfs) == 0 ? (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20 : 0;
	if (en)
		printf("WARN  %-28s %s: %s: detached command output and audit records are lost\n",
		       "state directory", home, strerror(en));
	else
		printf("ok    %-28s %s is writable, %llu MB free\n", "state directory", home,
		       free_mb);
	json_t *ae = ac_audit_errors(m);
	if (ae)
		printf("WARN  %-28s %lld records could not be written since %s (last at %s: %s)\n",
		       "audit log", (long long)json_integer_value(json_object_get(ae, "count")),
		       json_string_value(json_object_get(ae, "since")),
		       json_string_value(json_object_get(ae, "last")),
		       json_string_value(json_object_get(ae, "error")));
	json_decref(ae);
	json_t *found = NULL;
	if (ac_manager_sweep(m, false, &found, NULL) >= 0) {
		size_t i;
		json_t *f;
		json_array_foreach(found, i, f)
		{
			if (json_object_get(f, "error")) { /* an engine that could not be asked */
				printf("WARN  %-28s not checked: %s\n",
				       json_string_value(json_object_get(f, "kind")),
				       json_string_value(json_object_get(f, "error")));
				continue;
			}
			printf("WARN  %-28s %s: %s (agentcell gc removes it)\n",
			       json_string_value(json_object_get(f, "kind")),
			       json_string_value(json_object_get(f, "path")),
			       json_string_value(json_object_get(f, "why")));
		}
		if (json_array_size(found) == 0)
			printf("ok    %-28s none\n", "leftovers of killed runs");
	}
	json_decref(found);
	ac_manager_free(m);
}

const cli_command_t cli_cmd_doctor = {
    .name = "doctor",
    .summary = "check what the native backend needs on this host",
    .about = "Checks root or user namespaces, idmapped mounts, overlayfs, seccomp and\n"
	     "cgroup controllers, and says how to fix what is missing. Exit status 1 if anything "
	     "is.\n",
    .fn = cmd_doctor,
};

int cmd_doctor(int argc, char **argv)
{
	cli_args_t ca;
	cli_status_t ps = cli_parse(&cli_cmd_doctor, argc, argv, NULL, &ca);
	if (ps != CLI_OK)
		return cli_exit(ps);
	int code = 0;
	ac_manager_t *m = cli_manager(&code);
	if (!m)
		return code;
	/* Each backend of the table, through its probe: the native backend's host checks
	 * first (they decide doctor's exit status), the engines' reports after the home's. */
	size_t n;
	const ac_backend_t *bs = ac_backends(&n);
	json_t *probes = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *p = bs[i].ops->probe ? ac_manager_probe(m, &bs[i]) : NULL;
		json_array_append_new(probes, p ? p : json_null());
		if (p && json_object_get(p, "checks"))
			checks_report(p);
	}
	home_report();
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(probes, i);
		if (json_is_object(p) && !json_object_get(p, "checks"))
			engine_report(p);
	}
	json_decref(probes);
	ac_manager_free(m);
	return failures ? 1 : 0;
}
