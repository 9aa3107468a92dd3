/* The MCP tools: their schemas (published by tools/list and enforced on tools/call) and
 * their handlers, thin calls into the manager, files and capture APIs.
 *
 * Error split (MCP spec, "Error Handling" of tools): arguments that break the schema, or
 * whose syntax is wrong in a way a schema pattern would catch (a duration, an environment
 * entry, base64), are JSON-RPC -32602 errors; everything the manager refuses or that goes
 * wrong while the tool runs (unknown sandbox, command not found, non-zero exit, timeout)
 * is a result with isError true and a text saying what happened. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/backend.h"
#include "agentcell/manager.h"
#include "base/util.h"
#include "mcp/tool.h"

#define TIMEOUT_MAX 604800 /* a week, in seconds */
#define ENV_MAX	    256
#define ARGV_MAX    4096

/* ------------------------------------------------------------------ schemas
 * Written with ' for " (converted once at start-up) to keep them readable; no description
 * may therefore contain an apostrophe. */

#define P_NAME                                                                                     \
	"'name':{'type':'string','minLength':1,'maxLength':63,'description':'Sandbox name: 1-63 "  \
	"characters of A-Z a-z 0-9 _ -, starting and ending with a letter or digit'}"
#define P_COMMAND                                                                                  \
	"'command':{'description':'The command: an array of strings is executed directly "         \
	"(argv, first element the program, looked up in PATH); a string is run with /bin/sh "      \
	"-c','anyOf':[{'type':'array','items':{'type':'string'},'minItems':1,'maxItems':4096},"    \
	"{'type':'string','minLength':1,'maxLength':1048576}]}"
/* A code run: the alternative to command (sandbox_run checks that exactly one is given). */
#define P_LANGUAGE                                                                                 \
	"'language':{'type':'string','minLength':1,'maxLength':32,'description':'Run code "        \
	"instead of a command, with this language interpreter: python or python3 (python3 -c), "   \
	"node, javascript or js (node -e), ruby or perl (-e), php (php -r); sh, bash, shell and "  \
	"any other name run the code with sh -c. Names ignore case. native: the host "             \
	"interpreter; docker/podman: the default image is the language one'},"                     \
	"'code':{'type':'string','minLength':1,'maxLength':1048576,'description':'The code for "   \
	"language: passed to the interpreter as one argument, never through a shell unless the "   \
	"language is a shell'}"
#define P_TIMEOUT                                                                                  \
	"'timeout':{'type':'number','exclusiveMinimum':0,'maximum':604800,'description':'Seconds " \
	"(fractions allowed): the command and everything it started are killed after this long "   \
	"and the exit code is 124. Default: no limit'}"
#define P_ENV                                                                                      \
	"'env':{'description':'Extra environment variables: an object {KEY: value} or an array "   \
	"of KEY=VALUE strings','anyOf':[{'type':'object','additionalProperties':{'type':'string'}" \
	",'maxProperties':256},{'type':'array','items':{'type':'string','minLength':2},"           \
	"'maxItems':256}]}"
#define P_CWD                                                                                      \
	"'cwd':{'type':'string','minLength':1,'maxLength':4096,'description':'Absolute working "   \
	"directory inside the sandbox (default: /, or /workspace with the permissive profile)'}"
/* agentkernel's spellings (its src/mcp.rs): mapped onto the arguments above. */
#define P_WORKDIR                                                                                  \
	"'workdir':{'type':'string','minLength':1,'maxLength':4096,'description':'agentkernel "    \
	"name of cwd: absolute working directory inside the sandbox (not together with a "         \
	"different cwd)'}"
#define P_SUDO                                                                                     \
	"'sudo':{'type':'boolean','description':'Run the command as root of the sandbox "          \
	"(agentkernel). Refused unless the operator set [api] allow_sudo_exec = true in "          \
	"agentcell.toml or agentkernel.toml'}"
#define P_PORTS                                                                                    \
	"'ports':{'type':'array','items':{'type':'string','minLength':1,'maxLength':80},"          \
	"'maxItems':64,'description':'agentkernel port mappings, added to publish: "               \
	"HOSTPORT:PORT, [ADDR:]HOSTPORT:PORT or PORT (the same port on both sides), optionally "   \
	"with /tcp. /udp is refused: agentcell publishes TCP ports only'}"
#define P_RUN_COMPAT                                                                               \
	"'fast':{'type':'boolean','description':'agentkernel: use its warm container pool. "       \
	"Accepted; both values run the command in a fresh sandbox that honours every other "       \
	"argument (agentcell sandboxes start without a pool)'},"                                   \
	"'timeout_ms':{'type':'integer','minimum':1,'maximum':604800000,'description':"            \
	"'agentkernel name of timeout, in milliseconds (not together with timeout)'},"             \
	"'compatibility_mode':{'type':'string','enum':['native','claude','codex','gemini'],"       \
	"'description':'agentkernel agent preset, taking the place of profile: native, claude "    \
	"and gemini run under the moderate profile, codex under the restrictive one; all of "      \
	"them with network on unless network is given. The host directory agentkernel mounts "     \
	"for claude, codex and gemini is not mounted (see mcp --mount-cwd)'}"
#define P_SANDBOX                                                                                  \
	"'backend':{'type':'string','enum':[],'description':"                                      \
	"'Isolation backend: native (default; Linux namespaces, no daemon), docker or podman "     \
	"(their Engine API), kubernetes (a pod in the configured cluster), nomad (a job on the "   \
	"configured Nomad agent), auto (native where it can run, else an engine that answers)'},"  \
	"'image':{'type':'string','minLength':1,'maxLength':4096,'description':'native: host "     \
	"(default; the host /usr, /bin, /lib and a filtered /etc under a private writable layer)," \
	" an image reference (such as python:3.12-slim; pulled into the agentcell image store "    \
	"when missing) or the absolute path of a root directory below an --image-root directory "  \
	"of the server; docker/podman/kubernetes/nomad: an image reference. sandbox_run without "  \
	"command runs the image Entrypoint and Cmd'},"                                             \
	"'template':{'type':'string','minLength':1,'maxLength':63,'description':'native: start "   \
	"from this template (made with agentcell snapshot; 1-63 of a-z 0-9 _ . -) instead of an "  \
	"image; not together with image'},"                                                        \
	"'profile':{'type':'string','enum':[],"                                                    \
	"'description':'moderate (default): 512 MB, 1 CPU; restrictive: read-only root, 256 MB, "  \
	"0.5 CPU; permissive: no memory limit, and the server working directory mounted at "       \
	"/workspace if the operator allowed it (mcp --mount-cwd)'},"                               \
	"'memory_mb':{'type':'integer','minimum':16,'maximum':1048576,'description':'Memory "      \
	"limit in MB'},"                                                                           \
	"'disk_mb':{'type':'integer','minimum':16,'maximum':1048576,'description':'Disk limit "    \
	"of the sandbox writable layer in MB, blocks and inodes (default 10240)'},"                \
	"'cpus':{'type':'number','minimum':0.01,'maximum':1024,'description':'CPU limit, "         \
	"fractions allowed'},"                                                                     \
	"'network':{'type':'boolean','description':'Network access. false (default): only "        \
	"loopback (kubernetes: a deny-all NetworkPolicy; nomad: network mode none). true: native " \
	"sandboxes reach out only through agentcell egress proxy (HTTP_PROXY/HTTPS_PROXY), under " \
	"allow_hosts/block_hosts; the container engines give their own network'},"                 \
	"'allow_hosts':{'type':'array','items':{'type':'string','minLength':1,'maxLength':300},"   \
	"'maxItems':256,'description':'native, with network: hosts allowed (name, *.domain, IP "   \
	"or CIDR; an IP or CIDR also opens private addresses)'},"                                  \
	"'block_hosts':{'type':'array','items':{'type':'string','minLength':1,'maxLength':300},"   \
	"'maxItems':256,'description':'native, with network: hosts refused'},"                     \
	"'allowlist_only':{'type':'boolean','description':'native, with network: nothing but "     \
	"allow_hosts'},"                                                                           \
	"'secret_bindings':{'type':'array','items':{'type':'string','minLength':3,'maxLength':"    \
	"600},'maxItems':64,'description':'KEY@HOST[:HEADER[:PREFIX]]: the stored secret KEY is "  \
	"sent to HOST by the proxy; the sandbox sees a placeholder'},"                             \
	"'publish':{'type':'array','items':{'type':'string','minLength':3,'maxLength':80},"        \
	"'maxItems':64,'description':'[ADDR:]HOSTPORT:PORT: a host port forwarded into the "       \
	"sandbox'},"                                                                               \
	"'volumes':{'type':'array','items':{'type':'string','minLength':3,'maxLength':1100},"      \
	"'maxItems':32,'description':'native: NAME:/path[:ro]: named volume NAME (agentcell "      \
	"volume create) mounted at /path, read-write or read-only; its files outlive the "         \
	"sandbox'}"

#define O_EXEC                                                                                     \
	"{'type':'object','properties':{'exit_code':{'type':'integer','description':'0-255; 124 "  \
	"on timeout; 128+N when killed by signal N; 127 command not found'},"                      \
	"'stdout':{'type':'string'},'stderr':{'type':'string'},'timed_out':{'type':'boolean'},"    \
	"'signal':{'type':'integer'},'stdout_truncated_bytes':{'type':'integer'},"                 \
	"'stderr_truncated_bytes':{'type':'integer'}},"                                            \
	"'required':['exit_code','stdout','stderr','timed_out']}"
#define O_INFO                                                                                     \
	"{'type':'object','properties':{'name':{'type':'string'},'status':{'type':'string',"       \
	"'description':'running, stopped or archived'},'uuid':{'type':['string','null']},"         \
	"'backend':{'type':['string','null']},'image':{'type':['string','null']},"                 \
	"'profile':{'type':['string','null']},'memory_mb':{'type':['integer','null']},"            \
	"'disk_mb':{'type':['integer','null'],'description':'null: no disk limit'},"               \
	"'cpus':{'type':['number','null']},'pids_limit':{'type':['integer','null']},"              \
	"'created_at':{'type':['string','null']},'last_activity_at':{'type':['string','null']},"   \
	"'expires_at':{'type':['string','null']},'ttl_seconds':{'type':['integer','null']},"       \
	"'labels':{'type':['object','null'],'additionalProperties':{'type':'string'}},"            \
	"'description':{'type':['string','null']},'agent':{'type':['string','null']},"             \
	"'archived_at':{'type':['string','null']},"                                                \
	"'created_from_template':{'type':['string','null']},"                                      \
	"'template_help_text':{'type':['string','null']}},'required':['name','status']}"

#define P_ID                                                                                       \
	"'id':{'type':'string','minLength':1,'maxLength':64,'description':'The command id that "   \
	"sandbox_exec_detach returned'}"
#define O_DETACHED                                                                                 \
	"{'type':'object','properties':{'id':{'type':'string'},'sandbox':{'type':'string'},"       \
	"'command':{'type':'array','items':{'type':'string'}},'pid':{'type':['integer','null']},"  \
	"'status':{'type':'string','enum':['running','completed','failed'],'description':"         \
	"'completed: exit code 0; failed: any other end'},'exit_code':{'type':['integer',"         \
	"'null']},'started_at':{'type':['string','null']}},'required':['id','sandbox','status']}"

typedef struct tool {
	const char *name, *title, *description;
	const char *input, *output;
	bool read_only, destructive, idempotent;
	tool_fn fn;
} tool_t;

/* ------------------------------------------------------------------ the table */

static const tool_t tools[] = {
    {"sandbox_run", "Run a command in a fresh sandbox",
     "Runs one command, or code in a language (language and code instead of command), in a "
     "new, isolated sandbox that is removed when it ends, and returns its exit code, stdout "
     "and stderr. Nothing persists: use sandbox_create and sandbox_exec to keep files between "
     "commands.",
     "{'type':'object','properties':{" P_COMMAND "," P_LANGUAGE "," P_SANDBOX "," P_TIMEOUT
     "," P_ENV "," P_CWD "," P_RUN_COMPAT "," P_PORTS "},'additionalProperties':false}",
     O_EXEC, false, false, false, ac_mcp_tool_run},
    {"sandbox_create", "Create a persistent sandbox",
     "Creates a named sandbox whose files persist across commands, stop and start, and "
     "starts it (unless start is false). Run commands in it with sandbox_exec; remove it "
     "with sandbox_remove.",
     "{'type':'object','properties':{" P_NAME "," P_SANDBOX "," P_PORTS
     ",'source_url':{'type':'string','minLength':1,'maxLength':4096,'description':"
     "'agentkernel: a git repository to clone into /workspace. Refused with a tool error: "
     "create the sandbox with network true and run git clone with sandbox_exec'},"
     "'source_ref':{'type':'string','minLength':1,'maxLength':256,'description':"
     "'agentkernel: the ref to check out after source_url (refused with it)'}"
     ",'labels':{'type':'object','additionalProperties':{'type':'string','maxLength':255},"
     "'maxProperties':64,'description':'Labels {key: value}; keys 1-63 of A-Z a-z 0-9 . _ / "
     "-, values up to 255 printable characters'},"
     "'ttl':{'anyOf':[{'type':'string','minLength':1,'maxLength':32},{'type':'integer',"
     "'minimum':1}],'description':'Time to live: 90s, 30m, 2h, 1d or seconds; the sandbox "
     "is removed by agentcell gc once it has passed'},"
     "'description':{'type':'string','maxLength':1024,'description':'Free text, at most 1024 "
     "bytes'},"
     "'init_script':{'type':'string','minLength':1,'maxLength':65536,'description':'Shell "
     "commands run with sh -c at every start; if they fail, the start fails'},"
     "'agent':{'type':'string','enum':['claude','codex','gemini','opencode','amp','pi',"
     "'copilot'],'description':'Pass this coding agent API key variables from the server "
     "environment at every start (never stored)'},"
     "'start':{'type':'boolean','description':'Start the sandbox (default true)'}},"
     "'required':['name'],'additionalProperties':false}",
     O_INFO, false, false, false, ac_mcp_tool_create},
    {"sandbox_exec", "Run a command in a sandbox",
     "Runs a command in a running sandbox made with sandbox_create and returns its exit "
     "code, stdout and stderr.",
     "{'type':'object','properties':{" P_NAME "," P_COMMAND "," P_TIMEOUT "," P_ENV "," P_CWD
     "," P_WORKDIR "," P_SUDO
     ",'user':{'type':'string','minLength':1,'maxLength':256,'description':'Run as this user: "
     "a uid or a name from the sandbox /etc/passwd (default root of the sandbox)'}},"
     "'required':['name','command'],'additionalProperties':false}",
     O_EXEC, false, true, false, ac_mcp_tool_exec},
    {"sandbox_list", "List sandboxes",
     "Lists the persistent sandboxes with their status, settings, labels and expiry.",
     "{'type':'object','properties':{'label':{'description':'Only sandboxes with this label "
     "(KEY=VALUE), or with all of these labels','anyOf':[{'type':'string','minLength':1},"
     "{'type':'array','items':{'type':'string','minLength':1},'maxItems':64}]}},"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'sandboxes':{'type':'array','items':" O_INFO "}},"
     "'required':['sandboxes']}",
     true, false, true, ac_mcp_tool_list},
    {"sandbox_start", "Start a sandbox",
     "Starts a stopped sandbox (a running one is left as it is).",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     O_INFO, false, false, true, ac_mcp_tool_start},
    {"sandbox_stop", "Stop a sandbox",
     "Stops a sandbox: every process in it is killed; its files are kept.",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     O_INFO, false, true, true, ac_mcp_tool_stop},
    {"sandbox_remove", "Remove a sandbox",
     "Stops a sandbox if it runs and deletes it with all its files.",
     "{'type':'object','properties':{" P_NAME "},'required':['name'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'name':{'type':'string'},'removed':{'type':'boolean'}},"
     "'required':['name','removed']}",
     false, true, true, ac_mcp_tool_remove},
    {"sandbox_file_read", "Read a file from a sandbox",
     "Reads a regular file of a sandbox (running or stopped), up to 8 MiB. UTF-8 text comes "
     "back as it is, anything else base64-encoded (see encoding).",
     "{'type':'object','properties':{" P_NAME ",'path':{'type':'string','minLength':1,"
     "'maxLength':4096,'description':'Absolute path inside the sandbox'}},"
     "'required':['name','path'],'additionalProperties':false}",
     "{'type':'object','properties':{'path':{'type':'string'},'content':{'type':'string'},"
     "'encoding':{'type':'string','enum':['utf8','base64']},'size':{'type':'integer'}},"
     "'required':['path','content','encoding','size']}",
     true, false, true, ac_mcp_tool_file_read},
    {"sandbox_file_write", "Write a file into a sandbox",
     "Writes a file into a sandbox (running or stopped), creating missing parent directories "
     "and replacing an existing file.",
     "{'type':'object','properties':{" P_NAME ",'path':{'type':'string','minLength':1,"
     "'maxLength':4096,'description':'Absolute path inside the sandbox'},"
     "'content':{'type':'string','description':'The file content, as text or (encoding "
     "base64) base64-encoded bytes'},"
     "'encoding':{'type':'string','enum':['utf8','base64'],'description':'utf8 (default) or "
     "base64'},"
     "'mode':{'anyOf':[{'type':'integer','minimum':0,'maximum':4095},{'type':'string',"
     "'minLength':1,'maxLength':5}],'description':'Permission bits: an octal string such as "
     "0755 or an integer (default 0644); setuid and setgid are dropped'}},"
     "'required':['name','path','content'],'additionalProperties':false}",
     "{'type':'object','properties':{'path':{'type':'string'},'size':{'type':'integer'},"
     "'mode':{'type':'string'}},'required':['path','size','mode']}",
     false, true, true, ac_mcp_tool_file_write},
    {"sandbox_extend_ttl", "Extend a sandbox time to live",
     "Pushes a sandbox expiry further out: the new expiry is the later of now and the "
     "current expiry, plus by (default 1h). A sandbox without a TTL gets one.",
     "{'type':'object','properties':{" P_NAME ",'by':{'anyOf':[{'type':'string','minLength':1,"
     "'maxLength':32},{'type':'integer','minimum':1}],'description':'How much longer: 90s, "
     "30m, 2h, 1d or seconds (default 1h)'}},'required':['name'],'additionalProperties':false}",
     "{'type':'object','properties':{'name':{'type':'string'},'expires_at':{'type':'string'},"
     "'ttl_seconds':{'type':['integer','null']}},'required':['name','expires_at']}",
     false, false, false, ac_mcp_tool_extend},
    {"sandbox_write_files", "Write several files into a sandbox",
     "Writes several files into a sandbox (running or stopped) in one call, creating missing "
     "parent directories and replacing existing files (mode 0644). Stops at the first file "
     "that cannot be written; the files before it stay written.",
     "{'type':'object','properties':{" P_NAME ",'files':{'type':'object','additionalProperties':"
     "{'type':'string','maxLength':8388608},'maxProperties':256,'description':'{absolute path "
     "inside the sandbox: UTF-8 content}, at least one'}},'required':['name','files'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'name':{'type':'string'},'count':{'type':'integer'},"
     "'files':{'type':'array','items':{'type':'object','properties':{'path':{'type':'string'},"
     "'size':{'type':'integer'}},'required':['path','size']}}},'required':['name','count',"
     "'files']}",
     false, true, true, ac_mcp_tool_write_files},
    {"sandbox_exec_detach", "Start a background command in a sandbox",
     "Starts a command in the background in a running sandbox and returns at once with its "
     "id. Follow it with sandbox_exec_status, sandbox_exec_logs and sandbox_exec_kill; its "
     "output is kept (8 MiB per stream) until the sandbox is removed.",
     "{'type':'object','properties':{" P_NAME "," P_COMMAND "," P_ENV "," P_CWD "," P_WORKDIR
     "," P_SUDO ",'user':{'type':'string','minLength':1,'maxLength':256,'description':'Run as "
     "this user: a uid or a name from the sandbox /etc/passwd (default root of the sandbox)'}},"
     "'required':['name','command'],'additionalProperties':false}",
     O_DETACHED, false, false, false, ac_mcp_tool_exec_detach},
    {"sandbox_exec_status", "Status of a background command",
     "The status of a command started with sandbox_exec_detach: running, completed (exit "
     "code 0) or failed, with its exit code once it has ended.",
     "{'type':'object','properties':{" P_ID "},'required':['id'],'additionalProperties':false}",
     O_DETACHED, true, false, true, ac_mcp_tool_exec_status},
    {"sandbox_exec_logs", "Output of a background command",
     "The output a command started with sandbox_exec_detach has written so far: stdout "
     "(default) or stderr.",
     "{'type':'object','properties':{" P_ID ",'stream':{'type':'string','enum':['stdout',"
     "'stderr'],'description':'Which stream: stdout (default) or stderr'}},'required':['id'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'id':{'type':'string'},'stream':{'type':'string'},"
     "'content':{'type':'string'}},'required':['id','stream','content']}",
     true, false, true, ac_mcp_tool_exec_logs},
    {"sandbox_exec_kill", "Kill a background command",
     "Kills a command started with sandbox_exec_detach and everything it started.",
     "{'type':'object','properties':{" P_ID "},'required':['id'],'additionalProperties':false}",
     "{'type':'object','properties':{'id':{'type':'string'},'killed':{'type':'boolean'}},"
     "'required':['id','killed']}",
     false, true, true, ac_mcp_tool_exec_kill},
    {"sandbox_exec_list", "List background commands",
     "Lists the commands started with sandbox_exec_detach, of one sandbox or of all, oldest "
     "first.",
     "{'type':'object','properties':{'name':{'type':'string','minLength':1,'maxLength':63,"
     "'description':'Only the commands of this sandbox (default: all)'}},"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'commands':{'type':'array','items':" O_DETACHED "}},"
     "'required':['commands']}",
     true, false, true, ac_mcp_tool_exec_list},
};

#define NTOOLS AC_ARRAY_SIZE(tools)

static json_t *schemas[NTOOLS][2];
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;
static char schemas_error[512];

static json_t *load_schema(const char *text)
{
	char *s = strdup(text);
	if (!s)
		return NULL;
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	json_error_t jerr;
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	free(s);
	if (!j)
		snprintf(schemas_error, sizeof(schemas_error), "%s at %d", jerr.text,
			 jerr.position);
	return j;
}

/* The enums of "backend" and "profile" come from their tables (src/backends/registry.c,
 * src/core/profiles.c), wherever they appear: the schema never restates the lists. */
static void fill_enums(json_t *node)
{
	const char *key;
	json_t *v;
	if (json_is_array(node)) {
		size_t i;
		json_array_foreach(node, i, v) fill_enums(v);
		return;
	}
	json_object_foreach(json_object_get(node, "properties"), key, v)
	{
		json_t *e = json_array();
		size_t n;
		if (!strcmp(key, "backend")) {
			const ac_backend_t *bs = ac_backends(&n);
			for (size_t i = 0; i < n; i++)
				json_array_append_new(e, json_string(bs[i].name));
			json_array_append_new(e, json_string("auto"));
		} else if (!strcmp(key, "profile")) {
			const ac_profile_t *ps = ac_profiles(&n);
			for (size_t i = 0; i < n; i++)
				json_array_append_new(e, json_string(ps[i].name));
		}
		if (json_array_size(e) && json_is_array(json_object_get(v, "enum")))
			json_object_set(v, "enum", e);
		json_decref(e);
		fill_enums(v);
	}
	json_object_foreach(node, key, v) if (strcmp(key, "properties") &&
					      (json_is_object(v) || json_is_array(v)))
	    fill_enums(v);
}

static void load_schemas(void)
{
	for (size_t i = 0; i < NTOOLS; i++) {
		for (int o = 0; o < 2; o++) {
			const char *text = o ? tools[i].output : tools[i].input;
			if (!text)
				continue;
			char msg[256];
			schemas[i][o] = load_schema(text);
			fill_enums(schemas[i][o]);
			if (!schemas[i][o] ||
			    !ac_mcp_schema_supported(schemas[i][o], msg, sizeof(msg))) {
				if (schemas[i][o])
					snprintf(schemas_error, sizeof(schemas_error), "%s", msg);
				char tmp[512];
				snprintf(tmp, sizeof(tmp), "%s %s schema: %s", tools[i].name,
					 o ? "output" : "input", schemas_error);
				memcpy(schemas_error, tmp, sizeof(tmp));
				return;
			}
		}
	}
}

int ac_mcp_tools_init(ac_error_t **err)
{
	pthread_once(&schemas_once, load_schemas);
	if (schemas_error[0])
		return ac_error_set(err, AC_ERR_INTERNAL, 0, "MCP tool table: %s", schemas_error);
	return 0;
}

const char *ac_mcp_tool_name(size_t i)
{
	return i < NTOOLS ? tools[i].name : NULL;
}

json_t *ac_mcp_tool_schema(size_t i, bool output)
{
	return i < NTOOLS ? schemas[i][output] : NULL;
}

json_t *ac_mcp_tools_list(const char *version)
{
	bool annotations = strcmp(version, "2025-03-26") >= 0;
	bool newest = strcmp(version, "2025-06-18") >= 0;
	json_t *list = json_array();
	for (size_t i = 0; list && i < NTOOLS; i++) {
		const tool_t *t = &tools[i];
		json_t *o = json_pack("{ss ss sO}", "name", t->name, "description", t->description,
				      "inputSchema", schemas[i][0]);
		if (!o) {
			json_decref(list);
			return NULL;
		}
		if (newest) {
			json_object_set_new(o, "title", json_string(t->title));
			if (schemas[i][1])
				json_object_set(o, "outputSchema", schemas[i][1]);
		}
		if (annotations)
			json_object_set_new(
			    o, "annotations",
			    json_pack("{ss sb sb sb sb}", "title", t->title, "readOnlyHint",
				      t->read_only, "destructiveHint", t->destructive,
				      "idempotentHint", t->idempotent, "openWorldHint", 0));
		json_array_append_new(list, o);
	}
	return list ? json_pack("{so}", "tools", list) : NULL;
}

bool ac_mcp_tools_call(const ac_mcp_tool_env_t *env, const char *version, const char *name,
		       json_t *args, ac_mcp_call_t *call)
{
	*call = (ac_mcp_call_t){0};
	size_t i;
	for (i = 0; i < NTOOLS && strcmp(tools[i].name, name) != 0; i++)
		;
	if (i == NTOOLS)
		return false;
	json_t *empty = NULL;
	if (!args)
		args = empty = json_object();
	if (!ac_mcp_schema_check(schemas[i][0], args, call->invalid, sizeof(call->invalid))) {
		json_decref(empty);
		return true;
	}
	tool_ctx_t c = {.env = env,
			.m = env->manager,
			.structured = strcmp(version, "2025-06-18") >= 0,
			.call = call};
	req_t r = {0};
	/* A tool that takes code (sandbox_run) needs a command or code: one of the two. */
	bool code_tool = json_object_get(json_object_get(schemas[i][0], "properties"), "code");
	bool ok = ac_mcp_parse_args(&c, args, &r);
	/* Without either, an image or template runs its Entrypoint and Cmd. */
	if (ok && code_tool && !r.cmd.argv && !r.o.image && !r.o.template) {
		ac_mcp_invalid(&c, "arguments: missing required field 'command' (or 'language' "
				   "and 'code' for a code run); without either, an 'image' or "
				   "'template' runs its Entrypoint and Cmd");
		ok = false;
	}
	if (ok) {
		if (env->validate_only)
			ac_mcp_tool_error(&c, "%s: arguments valid; not run (validate-only server)",
					  name);
		else
			tools[i].fn(&c, &r);
	}
	ac_mcp_req_free(&r);
	json_decref(empty);
	if (!call->result && !call->invalid[0]) {
		call->internal = true;
		snprintf(call->invalid, sizeof(call->invalid), "the tool gave no result");
	}
	return true;
}
