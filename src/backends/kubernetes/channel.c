/* The remotecommand channel protocol, exec/attach/log URLs and the exec wrapper (see
 * channel.h). Pure. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/kubernetes/channel.h"
#include "base/util.h"

const char *const ac_k8s_exec_protocols[] = {AC_K8S_PROTO_V5, AC_K8S_PROTO_V4, NULL};

int ac_k8s_proto_version(const char *chosen)
{
	if (chosen && !strcmp(chosen, AC_K8S_PROTO_V5))
		return 5;
	if (chosen && !strcmp(chosen, AC_K8S_PROTO_V4))
		return 4;
	return -1;
}

/* ---- framing ---- */

size_t ac_k8s_frame(unsigned char *out, size_t cap, int channel, const void *data, size_t len)
{
	if (channel < 0 || channel > 255 || len >= cap || (len && !data))
		return 0;
	out[0] = (unsigned char)channel;
	if (len)
		memcpy(out + 1, data, len);
	return len + 1;
}

size_t ac_k8s_frame_resize(unsigned char *out, size_t cap, unsigned width, unsigned height)
{
	/* A terminal's size is 16-bit (struct winsize); the server decodes uint16. */
	if (width > 65535 || height > 65535)
		return 0;
	char json[48];
	int n = snprintf(json, sizeof(json), "{\"Width\":%u,\"Height\":%u}", width, height);
	return ac_k8s_frame(out, cap, AC_K8S_CH_RESIZE, json, (size_t)n);
}

size_t ac_k8s_frame_close(int version, int channel, unsigned char out[2])
{
	if (version < 5 || channel < 0 || channel > 254)
		return 0;
	out[0] = AC_K8S_CH_CLOSE;
	out[1] = (unsigned char)channel;
	return 2;
}

int ac_k8s_frame_decode(const unsigned char *msg, size_t len, int *channel,
			const unsigned char **payload, size_t *plen)
{
	if (len == 0)
		return 0;
	/* 0 and 4 are the client's, but a server may open them with an empty message; they
	 * are the caller's to ignore. Nothing else exists. */
	if (msg[0] > AC_K8S_CH_RESIZE)
		return -1;
	*channel = msg[0];
	*payload = msg + 1;
	*plen = len - 1;
	return 1;
}

/* ---- status ---- */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* "N" with 1-3 digits, 0-255. */
static int exit_code_of(const char *s)
{
	if (!s || !*s || strlen(s) > 3)
		return -1;
	int v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (*c - '0');
	}
	return v <= 255 ? v : -1;
}

int ac_k8s_exec_status(const void *data, size_t len, int *exit_code, ac_error_t **err)
{
	*exit_code = -1;
	if (len > AC_K8S_STATUS_MAX)
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the exec status from the cluster is too large (%zu bytes)",
				    len);
	json_error_t jerr;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return ac_error_set(err, AC_ERR_BACKEND, 0,
				    "the exec status from the cluster is not a JSON object");
	}
	const char *status = jstr(j, "status");
	const char *reason = jstr(j, "reason");
	const char *msg = jstr(j, "message");
	int rc = -1;
	if (status && !strcmp(status, "Success")) {
		*exit_code = 0;
		rc = 0;
	} else if (status && !strcmp(status, "Failure") && reason &&
		   !strcmp(reason, "NonZeroExitCode")) {
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(json_object_get(j, "details"), "causes"), i, c)
		{
			const char *r = jstr(c, "reason");
			int code = exit_code_of(jstr(c, "message"));
			if (r && !strcmp(r, "ExitCode") && code >= 0) {
				*exit_code = code;
				rc = 0;
				break;
			}
		}
		if (rc < 0)
			ac_error_set(err, AC_ERR_BACKEND, 0,
				     "the command failed but the cluster gave no exit code: %s",
				     msg ? msg : "(no message)");
	} else {
		/* The runtime's own words: "OCI runtime exec failed: ... exec: \"x\":
		 * executable file not found in $PATH: unknown". */
		ac_error_set(err, AC_ERR_BACKEND, 0, "%s",
			     msg && *msg	 ? msg
			     : reason && *reason ? reason
						 : "the cluster's exec status is not a success");
		if (err && *err && msg) {
			if (strstr(msg, "executable file not found") ||
			    strstr(msg, "no such file or directory"))
				(*err)->exit_code = 127;
			else if (strstr(msg, "permission denied"))
				(*err)->exit_code = 126;
		}
	}
	json_decref(j);
	return rc;
}

/* ---- URLs ---- */

bool ac_k8s_query_escape(const char *s, char *out, size_t cap, size_t *used)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = *used;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
			     *c == '~';
		if (o + (plain ? 1 : 3) >= cap)
			return false;
		if (plain) {
			out[o++] = (char)*c;
		} else {
			out[o++] = '%';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		}
	}
	out[o] = 0;
	*used = o;
	return true;
}

/* A namespace, pod or container name: 1-253 of [a-z0-9.-] (what may stand in a path
 * segment and a query value unescaped). */
static bool k8s_name(const char *s)
{
	size_t n = s ? strnlen(s, 254) : 0;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return strcmp(s, ".") && strcmp(s, "..");
}

static char *sub_path(const char *ns, const char *pod, const char *container, const char *sub,
		      const char *query, char *const *argv, ac_error_t **err)
{
	if (!k8s_name(ns) || !k8s_name(pod) || (container && !k8s_name(container))) {
		ac_error_set(err, AC_ERR_INVALID, 0,
			     "invalid namespace, pod or container name ('%s', '%s', '%s')",
			     ns ? ns : "", pod ? pod : "", container ? container : "");
		return NULL;
	}
	size_t cap = 1024;
	for (char *const *a = argv; a && *a; a++)
		cap += 9 + 3 * strlen(*a);
	char *buf = malloc(cap);
	if (!buf) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	int n = snprintf(buf, cap, "/api/v1/namespaces/%s/pods/%s/%s?%s%s%s%s", ns, pod, sub,
			 container ? "container=" : "", container ? container : "",
			 container && *query ? "&" : "", query);
	size_t used = (size_t)n;
	for (char *const *a = argv; a && *a; a++) {
		memcpy(buf + used, "&command=", 10);
		used += 9;
		if (!ac_k8s_query_escape(*a, buf, cap, &used)) {
			free(buf);
			ac_error_set(err, AC_ERR_INTERNAL, 0, "the exec URL does not fit");
			return NULL;
		}
	}
	return buf;
}

char *ac_k8s_exec_path(const char *ns, const char *pod, const char *container, char *const *argv,
		       bool in, bool tty, ac_error_t **err)
{
	if (!argv || !argv[0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	char q[96];
	snprintf(q, sizeof(q), "stdin=%s&stdout=true&stderr=%s&tty=%s", in ? "true" : "false",
		 tty ? "false" : "true", tty ? "true" : "false");
	return sub_path(ns, pod, container, "exec", q, argv, err);
}

char *ac_k8s_attach_path(const char *ns, const char *pod, const char *container, bool in, bool tty,
			 ac_error_t **err)
{
	char q[96];
	snprintf(q, sizeof(q), "stdin=%s&stdout=true&stderr=%s&tty=%s", in ? "true" : "false",
		 tty ? "false" : "true", tty ? "true" : "false");
	return sub_path(ns, pod, container, "attach", q, NULL, err);
}

char *ac_k8s_log_path(const char *ns, const char *pod, const char *container, bool follow,
		      ac_error_t **err)
{
	char *p = sub_path(ns, pod, container, "log", follow ? "follow=true" : "", NULL, err);
	size_t n = p ? strlen(p) : 0;
	if (n && p[n - 1] == '?') /* neither container nor follow */
		p[n - 1] = 0;
	return p;
}

/* ---- the exec wrapper ---- */

/* $1 id ("" for no kill handle), $2 cwd ("" for the image's), $3 count of K=V, then the
 * K=V words, "--" and the command. See channel.h for the three ways it execs. */
static const char wrapper[] =
    "id=$1 cwd=$2 n=$3; shift 3\n"
    "while [ \"$n\" -gt 0 ]; do export \"$1\" || exit 126; n=$((n - 1)); shift; done\n"
    "shift\n"
    "if [ -n \"$cwd\" ]; then cd \"$cwd\" || exit 126; fi\n"
    "[ -n \"$id\" ] || exec \"$@\"\n"
    "export " AC_K8S_EXEC_ID_ENV "=\"$id\"\n"
    "d=" AC_K8S_EXEC_DIR " f=" AC_K8S_EXEC_DIR "/$id pg= sid=\n"
    "mkdir -p \"$d\" 2>/dev/null\n"
    "ids() { set -- ${1##*\") \"}; pg=$3 sid=$4; }\n"
    "st=; read -r st 2>/dev/null </proc/$$/stat && ids \"$st\"\n"
    "if [ \"$sid\" = \"$$\" ]; then\n"
    "  { echo $$ >\"$f\"; } 2>/dev/null; exec \"$@\"\n"
    "fi\n"
    "ss=; command -v setsid >/dev/null 2>&1 && ss=setsid\n"
    "if [ -n \"$ss\" ] && [ -n \"$pg\" ] && [ \"$pg\" != \"$$\" ]; then\n"
    "  { echo $$ >\"$f\"; } 2>/dev/null; exec setsid \"$@\"\n"
    "fi\n"
    "exec 3<&0\n"
    "$ss \"$@\" <&3 3<&- &\n"
    "c=$!; exec 3<&-\n"
    "{ echo $c >\"$f\"; } 2>/dev/null\n"
    "wait $c; rc=$?; rm -f \"$f\"; exit $rc\n";

/* The sweep the killer and the prober share ($1 id): found() lists every process of the
 * recorded group or session and every one with the marker in its environment. */
#define FINDER                                                                                     \
	"id=$1 me=$$ p= ev=\n"                                                                     \
	"f=" AC_K8S_EXEC_DIR "/$id m=" AC_K8S_EXEC_ID_ENV "=$id\n"                                 \
	"[ -r \"$f\" ] && read -r p <\"$f\"\n"                                                     \
	"case $p in '' | *[!0-9]*) p= ;; esac\n"                                                   \
	"[ -n \"$p\" ] && [ \"$p\" -le 1 ] && p=\n"                                                \
	"printf 'a\\0%s\\0' \"$m\" 2>/dev/null | grep -qzxF \"$m\" 2>/dev/null && ev=1\n"          \
	"found() {\n"                                                                              \
	"  for e in /proc/[0-9]*; do\n"                                                            \
	"    q=${e#/proc/}\n"                                                                      \
	"    [ \"$q\" = \"$me\" ] && continue\n"                                                   \
	"    st=; read -r st 2>/dev/null <\"$e/stat\" || continue\n"                               \
	"    set -- ${st##*\") \"}\n"                                                              \
	"    [ \"$1\" = Z ] && continue\n"                                                         \
	"    if [ -n \"$p\" ] && { [ \"$3\" = \"$p\" ] || [ \"$4\" = \"$p\" ]; }; then echo "      \
	"\"$q\"; "                                                                                 \
	"continue; fi\n"                                                                           \
	"    [ -n \"$ev\" ] && grep -qzxF \"$m\" 2>/dev/null <\"$e/environ\" && echo \"$q\"\n"     \
	"  done\n"                                                                                 \
	"}\n"
/* Stops, then kills, what found() lists until a sweep finds none (a process forking while
 * it is swept is caught by the next sweep; stopped first so that none sees the others
 * die). */
static const char killer[] = FINDER "[ -n \"$p\" ] && kill -STOP -- \"-$p\" 2>/dev/null\n"
				    "i=0\n"
				    "while [ $i -lt 50 ]; do\n"
				    "  v=$(found)\n"
				    "  [ -n \"$v\" ] || break\n"
				    "  kill -STOP $v 2>/dev/null; kill -KILL $v 2>/dev/null\n"
				    "  i=$((i + 1))\n"
				    "done\n"
				    "[ -n \"$p\" ] && kill -KILL -- \"-$p\" 2>/dev/null\n"
				    "rm -f \"$f\"\n"
				    "exit 0\n";

/* $1 id. Prints "alive" when the killer would find a process of the command. */
static const char prober[] = FINDER "[ -n \"$(found)\" ] && echo alive\n"
				    "exit 0\n";

static bool handle_ok(const char *id)
{
	size_t n = id ? strnlen(id, AC_K8S_EXEC_ID_MAX + 1) : 0;
	if (n == 0 || n > AC_K8S_EXEC_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool shell_name(const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || (kv[0] >= '0' && kv[0] <= '9'))
		return false;
	for (const char *c = kv; c < eq; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

char **ac_k8s_exec_argv(const ac_cmd_t *cmd, const char *id, const char *pod_user, ac_error_t **err)
{
	if (!cmd || !cmd->argv || !cmd->argv[0] || !cmd->argv[0][0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	if (id && !handle_ok(id)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not an exec handle", id);
		return NULL;
	}
	if (cmd->user && (!pod_user || strcmp(cmd->user, pod_user))) {
		ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			     "the Kubernetes exec API runs every command as the pod's user (%s): "
			     "-u %s is not possible per command (set [kubernetes] run_as_user for "
			     "the pod)",
			     pod_user ? pod_user : "the image's", cmd->user);
		return NULL;
	}
	if (cmd->cwd && cmd->cwd[0] != '/') {
		ac_error_set(err, AC_ERR_INVALID, 0, "the working directory '%s' is not absolute",
			     cmd->cwd);
		return NULL;
	}
	size_t nenv = 0, nargv = 0;
	for (char *const *e = cmd->env; e && *e; e++, nenv++) {
		if (!shell_name(*e)) {
			ac_error_set(
			    err, AC_ERR_INVALID, 0,
			    "environment entry '%.100s' is not NAME=VALUE with a shell "
			    "name ([A-Za-z_][A-Za-z0-9_]*), which exec on Kubernetes needs",
			    *e);
			return NULL;
		}
	}
	for (char *const *a = cmd->argv; *a; a++)
		nargv++;
	size_t k = 0;
	char count[24];
	snprintf(count, sizeof(count), "%zu", nenv);
	const char *head[] = {
	    "sh", "-c", wrapper, "agentcell-exec", id ? id : "", cmd->cwd ? cmd->cwd : "", count};
	char **v = calloc(AC_ARRAY_SIZE(head) + nenv + 1 + nargv + 1, sizeof(char *));
	if (!v) {
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	bool ok = true;
	for (size_t i = 0; i < AC_ARRAY_SIZE(head); i++)
		ok = ok && (v[k++] = strdup(head[i]));
	for (size_t i = 0; i < nenv; i++)
		ok = ok && (v[k++] = strdup(cmd->env[i]));
	ok = ok && (v[k++] = strdup("--"));
	for (size_t i = 0; i < nargv; i++)
		ok = ok && (v[k++] = strdup(cmd->argv[i]));
	if (!ok) {
		ac_strv_free(v);
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	return v;
}

static char **script_argv(const char *script, const char *name, const char *id, ac_error_t **err)
{
	if (!handle_ok(id)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not an exec handle", id ? id : "");
		return NULL;
	}
	char **v = calloc(6, sizeof(char *));
	const char *src[] = {"sh", "-c", script, name, id};
	bool ok = v != NULL;
	for (size_t i = 0; ok && i < AC_ARRAY_SIZE(src); i++)
		ok = (v[i] = strdup(src[i])) != NULL;
	if (!ok) {
		ac_strv_free(v);
		ac_error_set(err, AC_ERR_INTERNAL, 0, "out of memory");
		return NULL;
	}
	return v;
}

char **ac_k8s_kill_argv(const char *id, ac_error_t **err)
{
	return script_argv(killer, "agentcell-kill", id, err);
}

char **ac_k8s_alive_argv(const char *id, ac_error_t **err)
{
	return script_argv(prober, "agentcell-alive", id, err);
}
