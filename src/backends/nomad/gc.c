/* What a Nomad agent holds that no sandbox owns: jobs "agentcell-*" with Meta
 * agentcell-managed=true whose sandbox is not in this store. As the Kubernetes backend's
 * gc.c:
 *
 *   - probe (doctor) reports the agent NOMAD_* name (its version from /v1/agent/self) and
 *     lists the managed jobs of other homes (another machine, another AGENTCELL_HOME) in
 *     its namespace: shown with their `nomad job stop -purge` command, never purged,
 *     since they may be in use.
 *   - sweep (doctor lists, gc purges) handles this home's own, found by their Meta
 *     agentcell-owner (ac_owner_id) on every agent and namespace this home has used
 *     (ac_nm_remember, at create): a job no sandbox of the store owns and whose creator
 *     (Meta agentcell-creator: pid, start time, boot id) is not a live process of this
 *     machine is what a killed run, a lost state file or a hand left. A run in progress is
 *     never touched. An agent that cannot be asked (down, 403) is reported as an entry
 *     with "error" (see ac_backend_ops_t.sweep), never a failure of gc. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentcell/backend.h"
#include "base/io.h"
#include "base/parse.h"
#include "base/sha1.h"
#include "base/util.h"
#include "backends/nomad/internal.h"
#include "backends/owner.h"
#include "backends/remote/remote.h"

#define AGENTS_DIR "nomad/agents"
#define LIST_PATH  "/v1/jobs?meta=true&prefix=" AC_NM_JOB_PREFIX

/* The keys of a state's "nomad" object that say which agent and namespace, and how to
 * reach it (what ac_nm_open reads to connect); the token itself is never stored. */
static const char *const conn_keys[] = {
    "address",	  "namespace",	     "region",	    "ca_cert",	  "client_cert",
    "client_key", "tls_server_name", "skip_verify", "token_file", "token_config",
};

void ac_nm_remember(const char *home, const json_t *cfg)
{
	if (!home || !json_is_object(cfg))
		return;
	json_t *c = json_object();
	for (size_t i = 0; i < AC_ARRAY_SIZE(conn_keys); i++) {
		json_t *v = json_object_get(cfg, conn_keys[i]);
		if (v)
			json_object_set(c, conn_keys[i], v);
	}
	char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	if (!text)
		return;
	unsigned char d[AC_SHA1_LEN];
	ac_sha1(text, strlen(text), d);
	char path[80];
	int n = snprintf(path, sizeof(path), AGENTS_DIR "/");
	for (int i = 0; i < 10; i++)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", d[i]);
	snprintf(path + n, sizeof(path) - (size_t)n, ".json");
	int hfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat sb;
	if (hfd >= 0 && fstatat(hfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0 &&
	    ac_mkdir_p_at(hfd, AGENTS_DIR, 0700, NULL) == 0)
		ac_write_file_atomic_at(hfd, path, text, strlen(text), 0600, NULL);
	if (hfd >= 0)
		close(hfd);
	free(text);
}

static const char *str_in(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* "" and absent are Nomad's "default" namespace. */
static const char *ns_or_default(const char *ns)
{
	return ns && *ns ? ns : "default";
}

/* Addresses as written by hand: "http://h:4646/" and "http://h:4646" are one agent. */
static bool same_addr(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t la = strlen(a), lb = strlen(b);
	while (la && a[la - 1] == '/')
		la--;
	while (lb && b[lb - 1] == '/')
		lb--;
	return la == lb && !strncmp(a, b, la);
}

/* Whether a managed job is the job of a sandbox of this store: the sandbox its Meta
 * names (else its id's) exists, is a Nomad sandbox, and its job is this id on this agent
 * (addr) and in this namespace. */
static bool owned(const ac_backend_ctx_t *ctx, const json_t *meta, const char *id, const char *addr,
		  const char *ns)
{
	const char *name = str_in(meta, AC_NM_META_SANDBOX);
	if (!name && !strncmp(id, AC_NM_JOB_PREFIX, strlen(AC_NM_JOB_PREFIX)))
		name = id + strlen(AC_NM_JOB_PREFIX);
	json_t *st = NULL;
	if (!name || !ctx->store || !ac_name_valid(name) ||
	    ac_store_load(ctx->store, name, &st, NULL) < 0)
		return false;
	const json_t *cfg = json_object_get(st, "nomad");
	const char *job = str_in(cfg, "job");
	char want[200];
	if (!job) {
		snprintf(want, sizeof(want), "%s%s", AC_NM_JOB_PREFIX, name);
		job = want;
	}
	bool yes = !strcmp(ac_state_str(st, "backend", ""), "nomad") && !strcmp(job, id) &&
		   !strcmp(ns_or_default(str_in(cfg, "namespace")), ns_or_default(ns)) &&
		   (!addr || same_addr(str_in(cfg, "address"), addr));
	json_decref(st);
	return yes;
}

/* The managed jobs of n's namespace (job stubs, each with its "Meta": an agent too old to
 * list Meta is asked job by job). NULL on error. */
static json_t *managed_jobs(ac_nm_t *n, ac_error_t **err)
{
	json_t *list = NULL;
	if (ac_nm_simple(n, "GET", LIST_PATH, NULL, false, "list jobs", &list, err) < 0) {
		json_decref(list);
		return NULL;
	}
	if (!json_is_array(list)) {
		json_decref(list);
		ac_error_set(err, AC_ERR_BACKEND, 0, "%s: list jobs: the answer is not a list",
			     n->conf.name);
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	json_t *stub;
	json_array_foreach(list, i, stub)
	{
		const char *id = str_in(stub, "ID");
		/* Ids go into paths: only what agentcell makes (a name, "run-" and hex). */
		if (!id || strncmp(id, AC_NM_JOB_PREFIX, strlen(AC_NM_JOB_PREFIX)) ||
		    strlen(id) >= 200 ||
		    strspn(id,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
			strlen(id))
			continue;
		if (!json_object_get(stub, "Meta")) {
			/* Meta is omitted when empty, and older agents ignore meta=true. */
			char path[300];
			snprintf(path, sizeof(path), "/v1/job/%s", id);
			json_t *job = NULL;
			int rc = ac_nm_simple(n, "GET", path, NULL, true, "read a job", &job, NULL);
			json_t *m = rc == 0 ? json_object_get(job, "Meta") : NULL;
			json_object_set(stub, "Meta", json_is_object(m) ? m : json_object());
			json_decref(job);
		}
		const char *managed = str_in(json_object_get(stub, "Meta"), AC_NM_META_MANAGED);
		if (managed && !strcmp(managed, "true"))
			json_array_append(out, stub);
	}
	json_decref(list);
	return out;
}

static const char *owner_of(const json_t *job)
{
	return str_in(json_object_get(job, "Meta"), AC_NM_META_OWNER);
}

/* The namespace a job is in (its stub's, else the one asked). */
static const char *job_ns(const json_t *job, const ac_nm_t *n)
{
	const char *ns = str_in(job, "Namespace");
	return ns_or_default(ns && *ns ? ns : n->ns);
}

/* ops.probe: the agent NOMAD_* names, its version, and the managed jobs of other homes no
 * sandbox owns (read-only: shown, never purged). */
json_t *ac_nomad_probe(const ac_backend_ctx_t *ctx)
{
	json_t *out = json_object();
	json_object_set_new(out, "label", json_string("nomad agent"));
	ac_nm_t n;
	ac_error_t *e = NULL;
	if (ac_nm_open(NULL, &n, &e) < 0) {
		json_object_set_new(out, "error", json_string(e ? e->msg : "no connection"));
		ac_error_free(e);
		return out;
	}
	const char *env = getenv("NOMAD_ADDR");
	json_object_set_new(out, "engine", json_string(n.conf.server));
	json_object_set_new(out, "source",
			    json_sprintf("%s, namespace %s",
					 env && *env ? "NOMAD_ADDR" : "the default address",
					 ns_or_default(n.ns)));
	json_object_set_new(out, "namespace", json_string(ns_or_default(n.ns)));
	json_t *self = NULL;
	if (ac_nm_simple(&n, "GET", "/v1/agent/self", NULL, false, "read the agent", &self, &e) ==
	    0) {
		/* A server's member tags and every agent's config carry the version. */
		const char *v =
		    str_in(json_object_get(json_object_get(self, "config"), "Version"), "Version");
		if (!v)
			v = str_in(json_object_get(json_object_get(self, "member"), "Tags"),
				   "build");
		json_object_set_new(out, "version", json_string(v ? v : "unknown version"));
	}
	json_decref(self);
	char owner[AC_OWNER_LEN + 1];
	const char *mine =
	    ctx->home && ac_owner_id(ctx->home, "nomad", false, owner, NULL) == 1 ? owner : NULL;
	json_t *jobs = e ? NULL : managed_jobs(&n, &e);
	if (jobs) {
		json_t *orphans = json_array();
		size_t i;
		json_t *job;
		json_array_foreach(jobs, i, job)
		{
			const char *id = str_in(job, "ID"), *o = owner_of(job);
			const char *ns = job_ns(job, &n);
			/* This home's own are sweep's: listed there, purged by gc. */
			if ((mine && o && !strcmp(o, mine)) ||
			    owned(ctx, json_object_get(job, "Meta"), id, n.conf.server, ns))
				continue;
			char fix[400];
			snprintf(fix, sizeof(fix), "nomad job stop -purge -namespace %s %s", ns,
				 id);
			json_array_append_new(orphans, json_pack("{ss ss ss ss}", "kind",
								 "nomad job", "name", id,
								 "namespace", ns, "remove", fix));
		}
		json_object_set_new(out, "orphans", orphans);
		json_decref(jobs);
	}
	if (e) { /* the message names the agent already */
		json_object_del(out, "engine");
		json_object_set_new(out, "error",
				    json_sprintf("%s%s", e->msg,
						 env && *env ? ""
							     : " (NOMAD_ADDR is not set: "
							       "the default address)"));
	}
	ac_error_free(e);
	ac_nm_close(&n);
	return out;
}

/* An agent or a job that could not be handled: an entry with "error" (not a leftover). */
static void add_error(json_t *found, const char *kind, const char *path, const char *ns,
		      const ac_error_t *e)
{
	/* The message names the agent; a namespace other than the default is said too. */
	bool other = ns && *ns && strcmp(ns, "default");
	json_array_append_new(
	    found, json_pack("{ss ss ss so}", "kind", kind, "path", path, "why",
			     "could not be checked", "error",
			     json_sprintf("%s%s%s%s", e && e->msg[0] ? e->msg : "unknown error",
					  other ? " (namespace " : "", other ? ns : "",
					  other ? ")" : "")));
}

/* This home's leftovers on one agent and namespace: appended to found (purged first with
 * remove). Returns how many jobs of this home it holds (leftover or not), -1 when it could
 * not be asked (an error entry is added). */
static int sweep_agent(const ac_backend_ctx_t *ctx, json_t *cfg, const char *owner, bool remove,
		       json_t *found)
{
	json_t *st = json_pack("{sO}", "nomad", cfg);
	ac_nm_t n;
	ac_error_t *e = NULL;
	int rc = ac_nm_open(st, &n, &e);
	json_decref(st);
	char where[400];
	snprintf(where, sizeof(where), "nomad at %s, namespace %s",
		 str_in(cfg, "address") ? str_in(cfg, "address") : "?",
		 ns_or_default(str_in(cfg, "namespace")));
	if (rc < 0) {
		add_error(found, "nomad jobs", where, str_in(cfg, "namespace"), e);
		ac_error_free(e);
		return -1;
	}
	json_t *jobs = managed_jobs(&n, &e);
	if (!jobs) {
		add_error(found, "nomad jobs", where, str_in(cfg, "namespace"), e);
		ac_error_free(e);
		ac_nm_close(&n);
		return -1;
	}
	int mine = 0;
	size_t i;
	json_t *job;
	json_array_foreach(jobs, i, job)
	{
		const char *id = str_in(job, "ID"), *o = owner_of(job);
		if (!o || strcmp(o, owner))
			continue; /* another home's: doctor shows it, nobody here purges it */
		mine++;
		const char *ns = job_ns(job, &n);
		json_t *meta = json_object_get(job, "Meta");
		if (owned(ctx, meta, id, str_in(cfg, "address"), ns) ||
		    ac_owner_creator_alive(str_in(meta, AC_NM_META_CREATOR)))
			continue;
		char what[600];
		snprintf(what, sizeof(what), "%s %s/%s", n.conf.name, ns, id);
		if (remove) {
			char path[300];
			snprintf(path, sizeof(path), "/v1/job/%s?purge=true", id);
			char act[260];
			snprintf(act, sizeof(act), "purge job %s", id);
			if (ac_nm_simple(&n, "DELETE", path, NULL, true, act, NULL, &e) < 0) {
				add_error(found, "nomad job", what, ns, e);
				ac_error_free(e);
				e = NULL;
				continue;
			}
			mine--; /* gone now */
		}
		json_array_append_new(
		    found, json_pack("{ss ss ss}", "kind", "nomad job", "path", what, "why",
				     "made by this home; no sandbox or running command "
				     "owns it"));
	}
	json_decref(jobs);
	ac_nm_close(&n);
	return mine;
}

/* Whether a sandbox of the store (a created one that never started has no job yet) uses
 * the agent and namespace of cfg. */
static bool agent_in_use(const ac_backend_ctx_t *ctx, const json_t *cfg)
{
	json_t *all = NULL;
	if (!ctx->store || ac_store_list(ctx->store, &all, NULL, NULL) < 0) {
		json_decref(all);
		return true; /* unknown: keep asking it */
	}
	bool used = false;
	size_t i;
	json_t *st;
	json_array_foreach(all, i, st)
	{
		const json_t *c = json_object_get(st, "nomad");
		used |= !strcmp(ac_state_str(st, "backend", ""), "nomad") &&
			same_addr(str_in(c, "address"), str_in(cfg, "address")) &&
			!strcmp(ns_or_default(str_in(c, "namespace")),
				ns_or_default(str_in(cfg, "namespace")));
	}
	json_decref(all);
	return used;
}

void ac_nomad_sweep(const ac_backend_ctx_t *ctx, bool remove, json_t *found)
{
	char owner[AC_OWNER_LEN + 1];
	if (!ctx->home || ac_owner_id(ctx->home, "nomad", false, owner, NULL) != 1)
		return; /* this home never made anything on an agent */
	char dir[1300];
	snprintf(dir, sizeof(dir), "%s/" AGENTS_DIR, ctx->home);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") || de->d_name[0] == '.')
			continue;
		char *text = NULL;
		size_t n = 0;
		if (ac_read_file_at(dirfd(d), de->d_name, 65536, &text, &n, NULL) < 0)
			continue;
		json_t *cfg = json_loads(text, 0, NULL);
		free(text);
		if (!json_is_object(cfg)) {
			json_decref(cfg);
			continue;
		}
		int mine = sweep_agent(ctx, cfg, owner, remove, found);
		/* Nothing of this home is left there nor will be: no reason to ask that agent
		 * again until a create records it anew. */
		if (mine == 0 && remove && !agent_in_use(ctx, cfg))
			unlinkat(dirfd(d), de->d_name, 0);
		json_decref(cfg);
	}
	closedir(d);
}
