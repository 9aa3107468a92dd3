/* What a local HTTP server must check because web pages reach it: a page the operator visits
 * may send requests to 127.0.0.1 (its Origin header says where it is from) or, through DNS
 * rebinding, make its own name point at 127.0.0.1 and read the replies (its Host header then
 * names the attacker's domain). Pure functions: the router calls them, unit tests drive
 * them with strings. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "api/http.h"

/* "" or ":" and 1-5 digits up to 65535. */
static bool port_ok(const char *p)
{
	if (!*p)
		return true;
	if (*p++ != ':')
		return false;
	unsigned v = 0;
	size_t n = 0;
	for (; p[n]; n++) {
		if (p[n] < '0' || p[n] > '9' || n >= 5)
			return false;
		v = v * 10 + (unsigned)(p[n] - '0');
	}
	return n > 0 && v <= 65535;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return want && strlen(want) == len && !strncasecmp(name, want, len);
}

bool ac_api_host_local(const char *host, const char *bound)
{
	if (!host || !*host)
		return false;
	const char *name, *rest;
	size_t len;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (!close)
			return false;
		name = host + 1;
		len = (size_t)(close - name);
		rest = close + 1;
	} else {
		name = host;
		rest = strchrnul(host, ':');
		len = (size_t)(rest - name);
	}
	if (!len || !port_ok(rest))
		return false;
	if (host[0] == '[') {
		if (name_is(name, len, "::1"))
			return true;
	} else if (name_is(name, len, "localhost") || name_is(name, len, "127.0.0.1")) {
		return true;
	}
	if (!bound || !*bound)
		return false;
	/* The address served, as given to --host: an IPv6 one with or without brackets. */
	size_t blen = strlen(bound);
	if (bound[0] == '[' && blen > 2 && bound[blen - 1] == ']') {
		bound++;
		blen -= 2;
	}
	bool v6 = memchr(bound, ':', blen) != NULL;
	if (v6 != (host[0] == '['))
		return false;
	return len == blen && !strncasecmp(name, bound, len);
}

bool ac_api_origin_local(const char *origin)
{
	if (!origin)
		return false;
	const char *rest;
	if (!strncasecmp(origin, "http://", 7))
		rest = origin + 7;
	else if (!strncasecmp(origin, "https://", 8))
		rest = origin + 8;
	else
		return false;
	/* A serialised origin is scheme://host[:port], nothing more: "http://localhost/x",
	 * "http://localhost.evil.example" and "http://u@localhost" are not this machine. */
	return ac_api_host_local(rest, NULL);
}

bool ac_api_type_json(const char *type)
{
	if (!type)
		return false;
	while (*type == ' ' || *type == '\t')
		type++;
	static const char want[] = "application/json";
	if (strncasecmp(type, want, sizeof(want) - 1))
		return false;
	type += sizeof(want) - 1;
	while (*type == ' ' || *type == '\t')
		type++;
	return *type == '\0' || *type == ';';
}
