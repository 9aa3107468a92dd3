/* The exec wrapper, its killer and its prober (see execwrap.h). Pure. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/execwrap.h"
#include "base/util.h"

/* $1 id ("" for no kill handle), $2 cwd ("" for the image's), $3 count of K=V, then the
 * K=V words, "--" and the command. See execwrap.h for the three ways it execs. */
static const char wrapper[] =
    "id=$1 cwd=$2 n=$3; shift 3\n"
    "while [ \"$n\" -gt 0 ]; do export \"$1\" || exit 126; n=$((n - 1)); shift; done\n"
    "shift\n"
    "if [ -n \"$cwd\" ]; then cd \"$cwd\" || exit 126; fi\n"
    "[ -n \"$id\" ] || exec \"$@\"\n"
    "export " AC_EXECWRAP_ID_ENV "=\"$id\"\n"
    "d=" AC_EXECWRAP_DIR " f=" AC_EXECWRAP_DIR "/$id pg= sid=\n"
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
	"f=" AC_EXECWRAP_DIR "/$id m=" AC_EXECWRAP_ID_ENV "=$id\n"                                 \
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
	size_t n = id ? strnlen(id, AC_EXECWRAP_ID_MAX + 1) : 0;
	if (n == 0 || n > AC_EXECWRAP_ID_MAX)
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

char **ac_execwrap_argv(const ac_cmd_t *cmd, const char *id, const char *run_user, const char *hint,
			ac_error_t **err)
{
	if (!cmd || !cmd->argv || !cmd->argv[0] || !cmd->argv[0][0]) {
		ac_error_set(err, AC_ERR_INVALID, 0, "no command to run");
		return NULL;
	}
	if (id && !handle_ok(id)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "'%s' is not an exec handle", id);
		return NULL;
	}
	if (cmd->user && (!run_user || strcmp(cmd->user, run_user))) {
		ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
			     "the exec API runs every command as the sandbox's user (%s): -u %s is "
			     "not possible per command%s%s%s",
			     run_user ? run_user : "the image's", cmd->user, hint ? " (" : "",
			     hint ? hint : "", hint ? ")" : "");
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
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "environment entry '%.100s' is not NAME=VALUE with a shell "
				     "name ([A-Za-z_][A-Za-z0-9_]*), which the exec wrapper needs",
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

char **ac_execwrap_kill_argv(const char *id, ac_error_t **err)
{
	return script_argv(killer, "agentcell-kill", id, err);
}

char **ac_execwrap_alive_argv(const char *id, ac_error_t **err)
{
	return script_argv(prober, "agentcell-alive", id, err);
}
