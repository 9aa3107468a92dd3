/* Coding agents a sandbox can be made for (agentkernel's table): which API key variables
 * of the caller's environment reach the sandbox. The keys live only in the supervisor's
 * memory: never in the state file, never in the audit log. */
#include <string.h>

#include "agentcell/agents.h"
#include "base/util.h"

static const struct {
	const char *name, *cli;
	const char *keys[4];
} agents[] = {
    {"claude", "@anthropic-ai/claude-code (npm)", {"ANTHROPIC_API_KEY", NULL}},
    {"codex", "@openai/codex (npm)", {"OPENAI_API_KEY", NULL}},
    {"gemini", "@google/gemini-cli (npm)", {"GOOGLE_API_KEY", "GEMINI_API_KEY", NULL}},
    {"opencode",
     "opencode-ai (npm)",
     {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GOOGLE_API_KEY", NULL}},
    {"amp", "@sourcegraph/amp (npm)", {"ANTHROPIC_API_KEY", NULL}},
    {"pi", "@mariozechner/pi-coding-agent (npm)", {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", NULL}},
    {"copilot", "@github/copilot (npm)", {"GITHUB_TOKEN", NULL}},
};

const char *const *ac_agent_keys(const char *name)
{
	for (size_t i = 0; name && i < AC_ARRAY_SIZE(agents); i++)
		if (!strcmp(agents[i].name, name))
			return agents[i].keys;
	return NULL;
}

json_t *ac_agents_table(void)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < AC_ARRAY_SIZE(agents); i++) {
		json_t *keys = json_array();
		for (const char *const *k = agents[i].keys; *k; k++)
			json_array_append_new(keys, json_string(*k));
		json_array_append_new(arr, json_pack("{ss ss so}", "name", agents[i].name, "cli",
						     agents[i].cli, "env", keys));
	}
	return arr;
}
