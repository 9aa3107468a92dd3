/* Exec credential plugins (client.authentication.k8s.io ExecCredential, as client-go
 * runs them): the command with the kubeconfig's arguments and environment and
 * KUBERNETES_EXEC_INFO, a deadline, stdout capped, the tail of stderr for the message. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/kubernetes/internal.h"
#include "base/time.h"
#include "base/util.h"

extern char **environ;

#define EXEC_TIMEOUT_DEFAULT_MS 60000L
#define EXEC_STDOUT_MAX		(1u * 1024 * 1024)
#define EXEC_STDERR_KEEP	8192

void ac_k8s_cred_free(ac_k8s_cred_t *c)
{
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	if (c->key)
		explicit_bzero(c->key, strlen(c->key));
	free(c->token);
	free(c->cert);
	free(c->key);
	memset(c, 0, sizeof(*c));
}

static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (nc < *len + n + 1)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = 0;
	return 0;
}

/* Builds the plugin's environment: ours, then the kubeconfig's env entries (they win),
 * then KUBERNETES_EXEC_INFO. */
static char **exec_env(const json_t *envs, const char *info, const char *where, ac_error_t **err)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	size_t extra = json_is_array(envs) ? json_array_size(envs) : 0;
	char **v = calloc(n + extra + 2, sizeof(char *));
	if (!v)
		goto oom;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21))
			continue;
		if (!(v[k++] = strdup(environ[i])))
			goto oom;
	}
	size_t i;
	json_t *e;
	json_array_foreach(envs, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *val = json_object_get(e, "value");
		if (!name || !*name || strchr(name, '=') ||
		    (val && !json_is_string(val) && !json_is_null(val))) {
			ac_strv_free(v);
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: exec.env[%zu] needs a name and a value", where, i);
			return NULL;
		}
		size_t nl = strlen(name);
		for (size_t j = 0; j < k; j++)
			if (!strncmp(v[j], name, nl) && v[j][nl] == '=') {
				free(v[j]);
				v[j] = v[--k];
				v[k] = NULL;
				break;
			}
		if (asprintf(&v[k], "%s=%s", name,
			     val && json_is_string(val) ? json_string_value(val) : "") < 0) {
			v[k] = NULL;
			goto oom;
		}
		k++;
	}
	if (asprintf(&v[k], "KUBERNETES_EXEC_INFO=%s", info) < 0) {
		v[k] = NULL;
		goto oom;
	}
	return v;
oom:
	ac_strv_free(v);
	ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return NULL;
}

static int run_plugin(char *const argv[], char *const envp[], long timeout_ms, const char *where,
		      char **out, size_t *out_len, ac_error_t **err)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		int e = errno;
		if (po[0] >= 0) {
			close(po[0]);
			close(po[1]);
		}
		return ac_error_set(err, AC_ERR_INTERNAL, e, "%s: pipe", where);
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETPGROUP);
	pid_t pid;
	/* posix_spawnp: the command is looked up in our PATH, never run through a shell. */
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		return ac_error_set(err, rc == ENOENT ? AC_ERR_NOT_FOUND : AC_ERR_BACKEND, rc,
				    "%s: cannot run exec plugin '%s'", where, argv[0]);
	}
	char *obuf = NULL, *ebuf = NULL;
	size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
	bool over = false, timed_out = false, oom = false;
	int64_t deadline = ac_time_now_ms() + timeout_ms;
	struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		int64_t left = deadline - ac_time_now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		int pr = poll(fds, 2, left > 1000 ? 1000 : (int)left);
		if (pr < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[8192];
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				continue;
			}
			if (i == 0) {
				if (olen + (size_t)r > EXEC_STDOUT_MAX) {
					over = true;
					continue;
				}
				if (append(&obuf, &olen, &ocap, buf, (size_t)r) < 0)
					oom = true;
			} else {
				if (elen + (size_t)r > EXEC_STDERR_KEEP * 2) { /* keep the tail */
					size_t keep =
					    elen > EXEC_STDERR_KEEP ? EXEC_STDERR_KEEP : elen;
					memmove(ebuf, ebuf + elen - keep, keep);
					elen = keep;
				}
				if (append(&ebuf, &elen, &ecap, buf, (size_t)r) < 0)
					oom = true;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	int status = 0;
	if (timed_out)
		kill(-pid, SIGKILL);
	pid_t w;
	do
		w = waitpid(pid, &status, 0);
	while (w < 0 && errno == EINTR);
	/* Whatever the plugin left behind in its process group goes too. */
	kill(-pid, SIGKILL);
	char tail[512] = "";
	if (ebuf)
		ac_k8s_last_line(ebuf, elen, tail, sizeof(tail));
	free(ebuf);
	int ret = 0;
	if (timed_out)
		ret = ac_error_set(err, AC_ERR_BACKEND, 0,
				   "%s: exec plugin '%s' did not finish within %ld ms%s%s", where,
				   argv[0], timeout_ms, *tail ? ": " : "", tail);
	else if (oom)
		ret = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	else if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char how[64];
		if (w >= 0 && WIFSIGNALED(status))
			snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
		else
			snprintf(how, sizeof(how), "exit status %d",
				 w >= 0 ? WEXITSTATUS(status) : -1);
		ret = ac_error_set(err, AC_ERR_BACKEND, 0, "%s: exec plugin '%s' failed (%s)%s%s",
				   where, argv[0], how, *tail ? ": " : "", tail);
	} else if (over)
		ret = ac_error_set(err, AC_ERR_BACKEND, 0,
				   "%s: exec plugin '%s' printed more than %u bytes", where,
				   argv[0], EXEC_STDOUT_MAX);
	if (ret < 0) {
		if (obuf)
			explicit_bzero(obuf, olen);
		free(obuf);
		return -1;
	}
	*out = obuf ? obuf : strdup("");
	*out_len = olen;
	return *out ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

int ac_k8s_exec_credential(const json_t *exec, const json_t *cluster, const char *dir,
			   const char *where, const ac_k8s_settings_t *s, ac_k8s_cred_t *cred,
			   ac_error_t **err)
{
	char w[700];
	snprintf(w, sizeof(w), "%s: exec", where);
	const char *api, *cmd, *mode;
	if (ac_k8s_get_str(exec, "apiVersion", w, &api, err) < 0 ||
	    ac_k8s_get_str(exec, "command", w, &cmd, err) < 0 ||
	    ac_k8s_get_str(exec, "interactiveMode", w, &mode, err) < 0)
		return -1;
	if (!cmd)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: 'command' is missing", w);
	if (!api)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: 'apiVersion' is missing", w);
	bool v1 = !strcmp(api, "client.authentication.k8s.io/v1");
	if (!v1 && strcmp(api, "client.authentication.k8s.io/v1beta1"))
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "%s: apiVersion '%s' is not supported (use "
				    "client.authentication.k8s.io/v1 or v1beta1)",
				    w, api);
	if (v1 && !mode)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: 'interactiveMode' is required with apiVersion %s", w, api);
	if (mode && strcmp(mode, "Never") && strcmp(mode, "IfAvailable") && strcmp(mode, "Always"))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: interactiveMode '%s' is not Never, IfAvailable or Always",
				    w, mode);
	/* agentcell never gives a plugin a terminal (serve and mcp have none to give). */
	if (mode && !strcmp(mode, "Always"))
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				    "%s: plugin '%s' needs an interactive terminal "
				    "(interactiveMode Always); agentcell runs plugins without one",
				    w, cmd);
	if (s->no_exec)
		return ac_error_set(err, AC_ERR_UNSUPPORTED, 0, "%s: exec plugins are disabled", w);
	json_t *args = json_object_get(exec, "args"), *env = json_object_get(exec, "env");
	if (args && !json_is_null(args) && !json_is_array(args))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: 'args' is not a list", w);
	if (env && !json_is_null(env) && !json_is_array(env))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: 'env' is not a list", w);
	bool cluster_info;
	if (ac_k8s_get_bool(exec, "provideClusterInfo", w, &cluster_info, err) < 0)
		return -1;

	/* KUBERNETES_EXEC_INFO, as client-go sets it. */
	_cleanup_json_ json_t *info = json_pack("{s:s,s:s,s:{s:b}}", "kind", "ExecCredential",
						"apiVersion", api, "spec", "interactive", 0);
	if (!info)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	if (cluster_info) {
		json_t *ci = json_object(), *v;
		if (!ci)
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		json_object_set_new(json_object_get(info, "spec"), "cluster", ci);
		static const char *const keys[][2] = {
		    {"server", "server"},
		    {"tls-server-name", "tls-server-name"},
		    {"insecure-skip-tls-verify", "insecure-skip-tls-verify"},
		    {"certificate-authority-data", "certificate-authority-data"},
		    {"proxy-url", "proxy-url"},
		    {"disable-compression", "disable-compression"}};
		for (size_t i = 0; i < AC_ARRAY_SIZE(keys); i++)
			if ((v = json_object_get(cluster, keys[i][0])) && !json_is_null(v))
				json_object_set(ci, keys[i][1], v);
		json_t *ext = json_object_get(cluster, "extensions");
		size_t i;
		json_t *e;
		json_array_foreach(ext, i, e)
		{
			const char *n = json_string_value(json_object_get(e, "name"));
			if (n && !strcmp(n, "client.authentication.k8s.io/exec"))
				json_object_set(ci, "config", json_object_get(e, "extension"));
		}
	}
	_cleanup_free_ char *info_s = json_dumps(info, JSON_COMPACT);
	if (!info_s)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	char **envp = exec_env(env, info_s, w, err);
	if (!envp)
		return -1;

	/* argv: a command with a slash but relative is the kubeconfig's directory's. */
	size_t nargs = json_is_array(args) ? json_array_size(args) : 0;
	char **argv = calloc(nargs + 2, sizeof(char *));
	int rc = -1;
	if (!argv) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	argv[0] = strchr(cmd, '/') ? ac_k8s_path_join(dir, cmd) : strdup(cmd);
	if (!argv[0]) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		const char *a = json_string_value(json_array_get(args, i));
		if (!a) {
			ac_error_set(err, AC_ERR_INVALID, 0, "%s: args[%zu] is not a string", w, i);
			goto out;
		}
		if (!(argv[i + 1] = strdup(a))) {
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			goto out;
		}
	}
	char *outb = NULL;
	size_t outl = 0;
	long tmo = s->exec_timeout_ms > 0 ? s->exec_timeout_ms : EXEC_TIMEOUT_DEFAULT_MS;
	if (run_plugin(argv, envp, tmo, where, &outb, &outl, err) < 0) {
		const char *hint = json_string_value(json_object_get(exec, "installHint"));
		if (hint && *err && (*err)->kind == AC_ERR_NOT_FOUND) {
			char h[300];
			ac_k8s_last_line(hint, strlen(hint), h, sizeof(h));
			ac_error_t *e2 = NULL;
			ac_error_set(&e2, AC_ERR_NOT_FOUND, 0, "%s (%s)", (*err)->msg, h);
			ac_error_free(*err);
			*err = e2;
		}
		goto out;
	}
	json_error_t je;
	json_t *ec = json_loadb(outb, outl, 0, &je);
	explicit_bzero(outb, outl);
	free(outb);
	const char *kind = json_string_value(json_object_get(ec, "kind"));
	const char *ver = json_string_value(json_object_get(ec, "apiVersion"));
	json_t *st = json_object_get(ec, "status");
	if (!ec || !kind || strcmp(kind, "ExecCredential") || !json_is_object(st)) {
		ac_error_set(
		    err, AC_ERR_BACKEND, 0,
		    "%s: exec plugin '%s' did not print an ExecCredential with a status%s%s", where,
		    cmd, ec ? "" : ": ", ec ? "" : je.text);
		json_decref(ec);
		goto out;
	}
	if (!ver || strcmp(ver, api)) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "%s: exec plugin '%s' answered with apiVersion '%s', configured '%s'",
			     where, cmd, ver ? ver : "", api);
		json_decref(ec);
		goto out;
	}
	const char *tok = json_string_value(json_object_get(st, "token"));
	const char *cd = json_string_value(json_object_get(st, "clientCertificateData"));
	const char *kd = json_string_value(json_object_get(st, "clientKeyData"));
	const char *exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	if (tok && !*tok)
		tok = NULL;
	if ((cd && *cd) != (kd && *kd) || (!tok && !(cd && *cd))) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "%s: exec plugin '%s' returned neither a token nor a client "
			     "certificate and key",
			     where, cmd);
		json_decref(ec);
		goto out;
	}
	if (exp && ac_time_parse_rfc3339(exp, &cred->expires_ms) < 0) {
		ac_error_set(err, AC_ERR_BACKEND, 0,
			     "%s: exec plugin '%s' returned a bad expirationTimestamp '%s'", where,
			     cmd, exp);
		json_decref(ec);
		goto out;
	}
	if ((tok && !(cred->token = strdup(tok))) || (cd && *cd && !(cred->cert = strdup(cd))) ||
	    (kd && *kd && !(cred->key = strdup(kd)))) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		json_decref(ec);
		goto out;
	}
	json_decref(ec);
	rc = 0;
out:
	ac_strv_free(argv);
	ac_strv_free(envp);
	return rc;
}
