/* The egress policy (net.h, "policy.c"): host patterns, the decision on a name before it is
 * resolved and the decision on every address the proxy would connect to. A policy does not
 * change once it is built and ac_net_policy_add_local has run, so the proxy's threads read
 * it without a lock. */
#include "net/net.h"
#include "net/pattern.h"
#include "base/utf8.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define R_UNSPEC    "unspecified address"
#define R_LOOPBACK  "loopback address"
#define R_PRIVATE   "private address"
#define R_SHARED    "shared address space"
#define R_LINK4	    "link-local address (cloud metadata)"
#define R_LINK6	    "link-local address"
#define R_MULTICAST "multicast address"
#define R_BROADCAST "broadcast address"
#define R_RESERVED  "reserved address"
#define R_LOCAL	    "the host's own address"
#define R_BLOCKED   "blocked by block_hosts"
#define R_NOT_ALLOW "not in allow_hosts (allowlist_only)"
#define R_BAD_NAME  "invalid host name"
#define R_FAMILY    "unsupported address family"

/* A pattern list in a JSON policy is a user's list, not a data set. */
#define PATTERNS_MAX 4096

typedef struct {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
} ipnet_t;

typedef enum { PAT_NAME, PAT_WILD, PAT_NET } pat_kind_t;

typedef struct {
	pat_kind_t kind;
	ipnet_t net;
	char name[AC_NET_HOST_MAX + 1]; /* PAT_NAME: the name; PAT_WILD: ".suffix" */
} pattern_t;

typedef struct {
	pattern_t *v;
	size_t n;
} patlist_t;

struct ac_net_policy {
	patlist_t allow, block;
	bool allowlist_only;
	ipnet_t *local; /* the host's own addresses, full-length prefixes */
	size_t nlocal, caplocal;
};

/* ---- parsing ---- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
	       c == '_';
}

/* s[0..len) (IPv6 may be in brackets) as an address; the prefix is the full length. */
static bool parse_ip(const char *s, size_t len, ipnet_t *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	bool bracket = len >= 2 && s[0] == '[' && s[len - 1] == ']';
	if (bracket) {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (!bracket && inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
		return true;
	}
	if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
		return true;
	}
	return false;
}

/* s[0..len) (no trailing dot) as a DNS name into out, lower-cased. Underscores are allowed:
 * real names use them (_dmarc, service records, some CDNs). */
static const char *name_parse(const char *s, size_t len, char out[AC_NET_HOST_MAX])
{
	out[0] = '\0';
	if (len == 0)
		return "empty name";
	if (len > 253)
		return "longer than 253 characters";
	size_t label = 0;
	bool numeric = true;
	char buf[AC_NET_HOST_MAX];
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return "empty label";
			if (s[i - 1] == '-')
				return "a label ends with '-'";
			label = 0;
			numeric = true;
			buf[i] = '.';
			continue;
		}
		if (!is_name_char(c))
			return "invalid character (names take letters, digits, '-', '_' and '.')";
		if (c == '-' && label == 0)
			return "a label starts with '-'";
		if (++label > 63)
			return "a label is longer than 63 characters";
		if (!is_digit(c))
			numeric = false;
		buf[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	if (label == 0)
		return "empty label";
	if (s[len - 1] == '-')
		return "a label ends with '-'";
	/* "1.2.3" or "127.1": resolvers read these as addresses, never as names. */
	if (numeric)
		return "not a valid IP address";
	buf[len] = '\0';
	memcpy(out, buf, len + 1);
	return NULL;
}

/* s[0..len): an IP literal (into *ip, *is_ip set) or a DNS name (into name). */
static const char *host_parse(const char *s, size_t len, ipnet_t *ip, bool *is_ip,
			      char name[AC_NET_HOST_MAX])
{
	*is_ip = false;
	name[0] = '\0';
	if (len == 0)
		return "empty";
	if (memchr(s, '\0', len) != NULL)
		return "contains a NUL byte";
	if (len > 254)
		return "longer than 253 characters";
	if (parse_ip(s, len, ip)) {
		*is_ip = true;
		return NULL;
	}
	if (s[0] == '[')
		return "not a valid IPv6 address";
	const char *colon = memchr(s, ':', len);
	if (colon != NULL)
		return memchr(colon + 1, ':', len - (size_t)(colon + 1 - s)) != NULL
			   ? "not a valid IPv6 address"
			   : "a host takes no port";
	if (memchr(s, '*', len) != NULL)
		return "'*' is only allowed as a leading '*.'";
	/* Forms inet_aton takes and inet_pton does not ("0x7f.1", "010.0.0.1"): getaddrinfo
	 * would connect to them as addresses. */
	char buf[AC_NET_HOST_MAX];
	memcpy(buf, s, len);
	buf[len] = '\0';
	struct in_addr a4;
	if (inet_aton(buf, &a4) != 0)
		return "not a valid IP address";
	if (s[len - 1] == '.')
		len--;
	return name_parse(s, len, name);
}

static const char *cidr_parse(const char *s, size_t len, const char *slash, ipnet_t *net)
{
	size_t alen = (size_t)(slash - s);
	if (!parse_ip(s, alen, net))
		return "not a valid IP address before '/'";
	const char *d = slash + 1;
	size_t dlen = len - alen - 1;
	if (dlen == 0 || dlen > 3 || (dlen > 1 && d[0] == '0'))
		return "invalid prefix length";
	unsigned v = 0;
	for (size_t i = 0; i < dlen; i++) {
		if (!is_digit(d[i]))
			return "invalid prefix length";
		v = v * 10 + (unsigned)(d[i] - '0');
	}
	if (v > net->prefix)
		return net->family == AF_INET ? "prefix length above 32"
					      : "prefix length above 128";
	for (unsigned bit = v; bit < net->prefix; bit++)
		if (net->addr[bit / 8] & (0x80u >> (bit % 8)))
			return "address bits set after the prefix length";
	net->prefix = v;
	return NULL;
}

static const char *pattern_parse(const char *s, size_t len, pattern_t *p)
{
	memset(p, 0, sizeof(*p));
	if (len == 0)
		return "empty";
	if (memchr(s, '\0', len) != NULL)
		return "contains a NUL byte";
	if (len > 254)
		return "longer than 253 characters";
	const char *slash = memchr(s, '/', len);
	if (slash != NULL) {
		p->kind = PAT_NET;
		return cidr_parse(s, len, slash, &p->net);
	}
	bool is_ip;
	if (s[0] != '*') {
		const char *why = host_parse(s, len, &p->net, &is_ip, p->name);
		p->kind = is_ip ? PAT_NET : PAT_NAME;
		return why;
	}
	if (len < 3 || s[1] != '.')
		return "'*' must be followed by '.' and a domain, as in '*.example.com'";
	const char *why = host_parse(s + 2, len - 2, &p->net, &is_ip, p->name + 1);
	if (why != NULL)
		return why;
	if (is_ip)
		return "a wildcard takes a domain name, not an address";
	size_t n = strlen(p->name + 1);
	if (n > 251) /* a name below it would be longer than 253 */
		return "longer than 253 characters";
	p->kind = PAT_WILD;
	p->name[0] = '.';
	return NULL;
}

static int pattern_error(ac_error_t **err, const char *s, size_t len, const char *why)
{
	char shown[201];
	shown[ac_utf8_sanitize(s, len, shown, sizeof(shown) - 1, '?')] = '\0';
	return ac_error_set(err, AC_ERR_INVALID, 0, "invalid host pattern '%s%s': %s", shown,
			    len > sizeof(shown) - 1 ? "..." : "", why);
}

int ac_net_pattern_check(const char *pattern, ac_error_t **err)
{
	if (pattern == NULL)
		return ac_error_set(err, AC_ERR_INVALID, 0, "invalid host pattern '': empty");
	pattern_t p;
	size_t len = strlen(pattern);
	const char *why = pattern_parse(pattern, len, &p);
	return why == NULL ? 0 : pattern_error(err, pattern, len, why);
}

const char *ac_net_host_normalize(const char *host, char out[AC_NET_HOST_MAX])
{
	out[0] = '\0';
	if (host == NULL)
		return "empty";
	ipnet_t ip;
	bool is_ip;
	const char *why = host_parse(host, strnlen(host, 300), &ip, &is_ip, out);
	if (why != NULL)
		return why;
	if (is_ip && inet_ntop(ip.family, ip.addr, out, AC_NET_HOST_MAX) == NULL) {
		out[0] = '\0';
		return "not a valid IP address";
	}
	return NULL;
}

/* ---- the policy object ---- */

static int load_list(const json_t *net, const char *key, patlist_t *out, ac_error_t **err)
{
	const json_t *arr = json_object_get(net, key);
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s must be an array of host patterns",
				    key);
	size_t n = json_array_size(arr);
	if (n > PATTERNS_MAX)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s has %zu patterns, the limit is %d",
				    key, n, PATTERNS_MAX);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (out->v == NULL)
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot load %s", key);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(arr, i);
		if (!json_is_string(e))
			return ac_error_set(err, AC_ERR_INVALID, 0, "%s[%zu] must be a string", key,
					    i);
		const char *s = json_string_value(e);
		size_t len = json_string_length(e);
		const char *why = pattern_parse(s, len, &out->v[i]);
		if (why != NULL)
			return pattern_error(err, s, len, why);
		out->n++;
	}
	return 0;
}

ac_net_policy_t *ac_net_policy_new(const json_t *net, ac_error_t **err)
{
	ac_net_policy_t *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "cannot create the network policy");
		return NULL;
	}
	if (net == NULL || json_is_null(net))
		return p;
	if (!json_is_object(net)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "the network policy must be an object");
		goto fail;
	}
	const json_t *only = json_object_get(net, "allowlist_only");
	if (only != NULL && !json_is_null(only) && !json_is_boolean(only)) {
		ac_error_set(err, AC_ERR_INVALID, 0, "allowlist_only must be true or false");
		goto fail;
	}
	p->allowlist_only = json_is_true(only);
	if (load_list(net, "allow_hosts", &p->allow, err) < 0 ||
	    load_list(net, "block_hosts", &p->block, err) < 0)
		goto fail;
	return p;
fail:
	ac_net_policy_free(p);
	return NULL;
}

void ac_net_policy_free(ac_net_policy_t *p)
{
	if (p == NULL)
		return;
	free(p->allow.v);
	free(p->block.v);
	free(p->local);
	free(p);
}

static int local_add(ac_net_policy_t *p, int family, const void *addr)
{
	if (p->nlocal == p->caplocal) {
		size_t cap = p->caplocal ? p->caplocal * 2 : 8;
		ipnet_t *v = realloc(p->local, cap * sizeof(*v));
		if (v == NULL) {
			errno = ENOMEM;
			return -1;
		}
		p->local = v;
		p->caplocal = cap;
	}
	ipnet_t *n = &p->local[p->nlocal++];
	memset(n, 0, sizeof(*n));
	n->family = family;
	n->prefix = family == AF_INET ? 32 : 128;
	memcpy(n->addr, addr, family == AF_INET ? 4 : 16);
	return 0;
}

int ac_net_policy_add_local(ac_net_policy_t *p)
{
	struct ifaddrs *ifs = NULL;
	if (p == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (getifaddrs(&ifs) < 0)
		return -1;
	int rc = 0;
	for (struct ifaddrs *i = ifs; i != NULL && rc == 0; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			rc = local_add(
			    p, AF_INET,
			    &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr);
		else if (i->ifa_addr->sa_family == AF_INET6)
			rc = local_add(
			    p, AF_INET6,
			    &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr);
	}
	int saved = errno;
	freeifaddrs(ifs);
	errno = saved;
	return rc;
}

/* ---- decisions ---- */

static bool net_contains(const ipnet_t *n, int family, const unsigned char *a)
{
	if (n->family != family)
		return false;
	unsigned full = n->prefix / 8, rest = n->prefix % 8;
	if (memcmp(n->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (n->addr[full] & mask) == (a[full] & mask);
}

static bool list_has_addr(const patlist_t *l, int family, const unsigned char *a)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == PAT_NET && net_contains(&l->v[i].net, family, a))
			return true;
	return false;
}

static bool list_has_name(const patlist_t *l, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < l->n; i++) {
		const pattern_t *p = &l->v[i];
		if (p->kind == PAT_NAME && strcmp(p->name, name) == 0)
			return true;
		if (p->kind == PAT_WILD) {
			size_t sl = strlen(p->name); /* ".suffix": strictly below it */
			if (len > sl && memcmp(name + len - sl, p->name, sl) == 0)
				return true;
		}
	}
	return false;
}

typedef enum { EMB_NONE, EMB_MAPPED, EMB_OTHER } embed_t;

/* The IPv4 address an IPv6 address stands for or carries: IPv4-mapped ::ffff:0:0/96 (the
 * same destination on a dual-stack socket), IPv4-translated ::ffff:0:0:0/96,
 * IPv4-compatible ::/96, NAT64 64:ff9b::/96 and 6to4 2002::/16 (relays deliver to it). */
static embed_t embedded_v4(const unsigned char a[16], unsigned char v4[4])
{
	static const unsigned char zero[12];
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};
	if (memcmp(a, zero, 10) == 0 && a[10] == 0xff && a[11] == 0xff) {
		memcpy(v4, a + 12, 4);
		return EMB_MAPPED;
	}
	if ((memcmp(a, zero, 8) == 0 && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0) ||
	    memcmp(a, zero, 12) == 0 || memcmp(a, nat64, 12) == 0) {
		memcpy(v4, a + 12, 4);
		return EMB_OTHER;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		memcpy(v4, a + 2, 4);
		return EMB_OTHER;
	}
	return EMB_NONE;
}

typedef struct {
	ipnet_t net;
	const char *why;
} range_t;

#define V4(a, b, c, d, len, why)                                                                   \
	{                                                                                          \
		{AF_INET, {a, b, c, d}, len}, why                                                  \
	}
#define V6(b0, b1, b2, b3, b4, b5, len, why)                                                       \
	{                                                                                          \
		{AF_INET6, {b0, b1, b2, b3, b4, b5}, len}, why                                     \
	}

/* The first that contains the address gives the reason: the narrow ones come first. */
static const range_t ranges[] = {
    V4(0, 0, 0, 0, 32, R_UNSPEC),
    V4(0, 0, 0, 0, 8, R_RESERVED),
    V4(127, 0, 0, 0, 8, R_LOOPBACK),
    V4(10, 0, 0, 0, 8, R_PRIVATE),
    V4(172, 16, 0, 0, 12, R_PRIVATE),
    V4(192, 168, 0, 0, 16, R_PRIVATE),
    V4(100, 64, 0, 0, 10, R_SHARED),
    V4(169, 254, 0, 0, 16, R_LINK4),
    V4(224, 0, 0, 0, 4, R_MULTICAST),
    V4(255, 255, 255, 255, 32, R_BROADCAST),
    V4(240, 0, 0, 0, 4, R_RESERVED),
    V6(0, 0, 0, 0, 0, 0, 128, R_UNSPEC),
    {{AF_INET6, {[15] = 1}, 128}, R_LOOPBACK},
    V6(0xfc, 0, 0, 0, 0, 0, 7, R_PRIVATE),
    V6(0xfe, 0x80, 0, 0, 0, 0, 10, R_LINK6),
    V6(0xfe, 0xc0, 0, 0, 0, 0, 10, R_PRIVATE), /* site-local, deprecated */
    V6(0xff, 0, 0, 0, 0, 0, 8, R_MULTICAST),
    V6(0x00, 0x64, 0xff, 0x9b, 0x00, 0x01, 48, R_PRIVATE), /* local-use NAT64 (RFC 8215) */
};

static const char *range_why(int family, const unsigned char *a)
{
	for (size_t i = 0; i < AC_ARRAY_SIZE(ranges); i++)
		if (net_contains(&ranges[i].net, family, a))
			return ranges[i].why;
	return NULL;
}

static bool local_has(const ac_net_policy_t *p, int family, const unsigned char *a)
{
	for (size_t i = 0; i < p->nlocal; i++)
		if (net_contains(&p->local[i], family, a))
			return true;
	return false;
}

/* An explicit block matches the address and any IPv4 address it carries. */
static bool addr_blocked(const ac_net_policy_t *p, int family, const unsigned char *a)
{
	unsigned char v4[4];
	return list_has_addr(&p->block, family, a) ||
	       (family == AF_INET6 && embedded_v4(a, v4) != EMB_NONE &&
		list_has_addr(&p->block, AF_INET, v4));
}

/* An explicit allow matches the address or, for an IPv4-mapped one, its IPv4 address: the
 * same destination. Other carried forms go through relays and stay refused. */
static bool addr_allowed(const ac_net_policy_t *p, int family, const unsigned char *a)
{
	unsigned char v4[4];
	return list_has_addr(&p->allow, family, a) ||
	       (family == AF_INET6 && embedded_v4(a, v4) == EMB_MAPPED &&
		list_has_addr(&p->allow, AF_INET, v4));
}

const char *ac_net_policy_check_name(const ac_net_policy_t *p, const char *host)
{
	static const ac_net_policy_t none;
	if (p == NULL)
		p = &none;
	if (host == NULL)
		return R_BAD_NAME;
	char name[AC_NET_HOST_MAX];
	ipnet_t ip;
	bool is_ip;
	if (host_parse(host, strnlen(host, 300), &ip, &is_ip, name) != NULL)
		return R_BAD_NAME;
	if (is_ip) {
		if (addr_blocked(p, ip.family, ip.addr))
			return R_BLOCKED;
		if (p->allowlist_only && !addr_allowed(p, ip.family, ip.addr))
			return R_NOT_ALLOW;
		return NULL;
	}
	if (list_has_name(&p->block, name))
		return R_BLOCKED;
	if (p->allowlist_only && !list_has_name(&p->allow, name))
		return R_NOT_ALLOW;
	return NULL;
}

const char *ac_net_policy_check_addr(const ac_net_policy_t *p, const struct sockaddr *sa)
{
	static const ac_net_policy_t none;
	if (p == NULL)
		p = &none;
	if (sa == NULL)
		return R_FAMILY;
	int family = sa->sa_family;
	unsigned char a[16];
	if (family == AF_INET)
		memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else if (family == AF_INET6)
		memcpy(a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	else
		return R_FAMILY;

	if (addr_blocked(p, family, a))
		return R_BLOCKED;
	if (addr_allowed(p, family, a))
		return NULL;
	const char *why = range_why(family, a);
	if (why != NULL)
		return why;
	unsigned char v4[4];
	bool carries = family == AF_INET6 && embedded_v4(a, v4) != EMB_NONE;
	if (carries && (why = range_why(AF_INET, v4)) != NULL)
		return why;
	if (local_has(p, family, a) || (carries && local_has(p, AF_INET, v4)))
		return R_LOCAL;
	return NULL;
}
