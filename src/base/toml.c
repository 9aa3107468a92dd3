/* Strict TOML 1.0 subset parser for agentcell.toml; what is accepted and how it maps onto
 * JSON is described in toml.h. It is generic (nothing here knows agentcell's keys), hence
 * base/.
 *
 * One pass over the text, building the jansson tree directly. jansson nodes cannot carry
 * the bookkeeping TOML's definition rules need (was this table defined by a header, made by
 * dotted keys, only implied?), so a side map from node address to kind holds it. Containers
 * absent from the map -- inline tables and arrays written as values -- are frozen.
 *
 * Why one file of ~1,200 lines: every function works on the one struct parser and is
 * static, and the file reads top-down in the grammar's order (input and errors, scratch
 * containers, whitespace, strings, keys, numbers, values, definitions). Splitting it into
 * a lexer and a parser would export some thirty static helpers (and struct parser) through
 * a private header to a single caller, and the values and the definitions cannot be
 * separated: an inline table holds key/value definitions, which obey the kind map. The one
 * public entry point is ac_toml_parse; the fuzz target fuzz_toml covers all of it. */
#include "base/toml.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/utf8.h"
#include "base/util.h"

enum node_kind {
	K_FROZEN = 0,  /* inline table, array value: never extended (not stored in the map) */
	K_IMPLICIT,    /* table implied by a header such as [a.b] (for a); [a] may define it once */
	K_EXPLICIT,    /* table defined by a [header] or an element made by [[header]] */
	K_DOTTED,      /* table made by dotted keys; headers may only define sub-tables of it */
	K_TABLE_ARRAY, /* array made by [[header]] */
};

struct kind_slot {
	const json_t *node;
	enum node_kind kind;
};

struct kind_map {
	struct kind_slot *slot;
	size_t cap, used; /* cap is 0 or a power of two */
};

struct sbuf {
	char *p;
	size_t len, cap;
};

struct key_part {
	char *s;
	size_t len;
	size_t off; /* where the part starts in the input, for messages */
};

struct key {
	struct key_part *part;
	size_t n, cap;
};

struct parser {
	const char *s;
	size_t len, pos;
	size_t bom; /* bytes of a leading byte order mark, not counted as a column */
	const char *name;
	ac_error_t **err;
	struct kind_map map;
	struct sbuf str; /* scratch for the string or number being decoded */
	json_t *root;
	json_t *cur; /* table that key/value lines go into */
	int cur_depth;
	locale_t c_locale; /* strtod must not follow a caller's LC_NUMERIC */
};

/* ---- input access and error reporting ---- */

static int peek_at(const struct parser *p, size_t ahead)
{
	return ahead < p->len - p->pos ? (unsigned char)p->s[p->pos + ahead] : -1;
}

static int peek(const struct parser *p)
{
	return peek_at(p, 0);
}

static bool is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static void line_col(const struct parser *p, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = p->bom; i < off && i < p->len; i++) {
		if (p->s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (!ac_utf8_is_cont((unsigned char)p->s[i])) {
			(*col)++; /* columns count characters, not bytes */
		}
	}
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct parser *p, size_t off,
							 const char *fmt, ...)
{
	char what[768];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (n < 0)
		what[0] = '\0';
	size_t line, col;
	line_col(p, off, &line, &col);
	return ac_error_set(p->err, AC_ERR_INVALID, 0, "%s:%zu:%zu: %s", p->name, line, col, what);
}
#ifdef __clang_analyzer__
/* The analyzer does not follow variadic calls: tell it what fail_at returns (as error.h
 * does for ac_error_set), or it takes `return fail_at(...)` for a success. */
#define fail_at(...) (fail_at(__VA_ARGS__), -1)
#endif

static int fail_oom(struct parser *p)
{
	return ac_error_set(p->err, AC_ERR_INTERNAL, ENOMEM, "%s", p->name);
}

/* Names the character at off for a message (ASCII only, so messages stay valid UTF-8). */
static const char *describe(const struct parser *p, size_t off, char buf[32])
{
	if (off >= p->len)
		return "end of input";
	unsigned char c = (unsigned char)p->s[off];
	if (c == '\n' || (c == '\r' && off + 1 < p->len && p->s[off + 1] == '\n'))
		return "end of line";
	if (c == '\'')
		snprintf(buf, 32, "\"'\"");
	else if (c > 0x20 && c < 0x7f)
		snprintf(buf, 32, "'%c'", c);
	else
		snprintf(buf, 32, "U+%04X",
			 (unsigned)ac_utf8_decode(p->s + off, p->len - off, NULL));
	return buf;
}

/* ---- small containers ---- */

static int sbuf_add(struct parser *p, const char *data, size_t n)
{
	struct sbuf *b = &p->str;
	if (n == 0)
		return 0;
	if (b->cap - b->len < n) {
		size_t ncap = b->cap ? b->cap : 64;
		while (ncap - b->len < n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (np == NULL)
			return fail_oom(p);
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

static int sbuf_addc(struct parser *p, char c)
{
	return sbuf_add(p, &c, 1);
}

static size_t map_index(const json_t *node, size_t cap)
{
	uint64_t h = (uint64_t)(uintptr_t)node;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (cap - 1);
}

static enum node_kind kind_of(const struct parser *p, const json_t *node)
{
	const struct kind_map *m = &p->map;
	if (m->cap == 0)
		return K_FROZEN;
	for (size_t i = map_index(node, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->slot[i].node == node)
			return m->slot[i].kind;
		if (m->slot[i].node == NULL)
			return K_FROZEN;
	}
}

static struct kind_slot *map_find_slot(struct kind_slot *slot, size_t cap, const json_t *node)
{
	size_t i = map_index(node, cap);
	while (slot[i].node != NULL && slot[i].node != node)
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

static int set_kind(struct parser *p, const json_t *node, enum node_kind kind)
{
	struct kind_map *m = &p->map;
	if ((m->used + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct kind_slot *ns = calloc(ncap, sizeof(*ns));
		if (ns == NULL)
			return fail_oom(p);
		for (size_t i = 0; i < m->cap; i++) {
			if (m->slot[i].node != NULL)
				*map_find_slot(ns, ncap, m->slot[i].node) = m->slot[i];
		}
		free(m->slot);
		m->slot = ns;
		m->cap = ncap;
	}
	struct kind_slot *s = map_find_slot(m->slot, m->cap, node);
	if (s->node == NULL)
		m->used++;
	s->node = node;
	s->kind = kind;
	return 0;
}

static void key_free(struct key *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->part[i].s);
	free(k->part);
}
#define _cleanup_key_ __attribute__((cleanup(key_free)))

static int fail_depth(struct parser *p, size_t off)
{
	return fail_at(p, off, "nesting deeper than %d levels", AC_TOML_MAX_DEPTH);
}

static int key_add(struct parser *p, struct key *k, const char *s, size_t len, size_t off)
{
	/* A longer key would nest tables beyond the depth limit wherever it appears. */
	if (k->n > AC_TOML_MAX_DEPTH)
		return fail_depth(p, off);
	if (k->n == k->cap) {
		size_t ncap = k->cap ? k->cap * 2 : 4;
		struct key_part *np = realloc(k->part, ncap * sizeof(*np));
		if (np == NULL)
			return fail_oom(p);
		k->part = np;
		k->cap = ncap;
	}
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return fail_oom(p);
	if (len > 0)
		memcpy(copy, s, len);
	copy[len] = '\0';
	k->part[k->n++] = (struct key_part){.s = copy, .len = len, .off = off};
	return 0;
}

static bool is_bare_key_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* Writes the first n parts of k as TOML would spell them, cut at a character boundary. */
static const char *format_key(const struct key *k, size_t n, char *buf, size_t size)
{
	size_t o = 0;
	bool cut = false;
#define PUT(str, l)                                                                                \
	do {                                                                                       \
		if (o + (l) + 4 > size) {                                                          \
			cut = true;                                                                \
			goto done;                                                                 \
		}                                                                                  \
		memcpy(buf + o, (str), (l));                                                       \
		o += (l);                                                                          \
	} while (0)
	for (size_t i = 0; i < n; i++) {
		const struct key_part *kp = &k->part[i];
		if (i > 0)
			PUT(".", 1);
		bool bare = kp->len > 0;
		for (size_t j = 0; j < kp->len && bare; j++)
			bare = is_bare_key_char((unsigned char)kp->s[j]);
		if (bare) {
			for (size_t j = 0; j < kp->len; j++)
				PUT(kp->s + j, 1);
			continue;
		}
		PUT("\"", 1);
		for (size_t j = 0; j < kp->len;) {
			unsigned char c = (unsigned char)kp->s[j];
			if (c == '"' || c == '\\') {
				char esc[2] = {'\\', (char)c};
				PUT(esc, 2);
				j++;
			} else if (is_control(c) || c == '\t') {
				char esc[8];
				snprintf(esc, sizeof(esc), "\\u%04X", c);
				PUT(esc, 6);
				j++;
			} else {
				/* the input was validated: keys hold whole sequences */
				int sl = ac_utf8_seq(kp->s + j, kp->len - j);
				size_t l = sl > 0 ? (size_t)sl : 1;
				PUT(kp->s + j, l);
				j += l;
			}
		}
		PUT("\"", 1);
	}
#undef PUT
done:
	if (cut)
		memcpy(buf + o, "...", 3), o += 3;
	buf[o] = '\0';
	return buf;
}

/* What a node is, for "it is already ..." messages. */
static const char *describe_node(const struct parser *p, const json_t *node)
{
	enum node_kind kind = kind_of(p, node);
	switch (json_typeof(node)) {
	case JSON_OBJECT:
		switch (kind) {
		case K_IMPLICIT:
			return "a table (implied by a header)";
		case K_EXPLICIT:
			return "a table defined by a header";
		case K_DOTTED:
			return "a table defined by dotted keys";
		default:
			return "an inline table, which cannot be extended";
		}
	case JSON_ARRAY:
		return kind == K_TABLE_ARRAY ? "an array of tables"
					     : "a static array, which cannot be extended";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a float";
	default:
		return "a boolean";
	}
}

/* ---- whitespace, comments, newlines ---- */

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

static int fail_bare_cr(struct parser *p)
{
	return fail_at(p, p->pos, "carriage return not followed by a line feed");
}

/* At '#': skips the comment, stopping before the end of line. */
static int skip_comment(struct parser *p)
{
	for (p->pos++; p->pos < p->len; p->pos++) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == '\n')
			break;
		if (c == '\r') {
			if (peek_at(p, 1) == '\n')
				break;
			return fail_bare_cr(p);
		}
		if (is_control(c))
			return fail_at(p, p->pos, "control character U+%04X in a comment", c);
	}
	return 0;
}

/* Consumes LF or CRLF: 1 if one was there, 0 if not, -1 for a bare CR. */
static int eat_newline(struct parser *p)
{
	int c = peek(p);
	if (c == '\n') {
		p->pos++;
		return 1;
	}
	if (c == '\r') {
		if (peek_at(p, 1) != '\n')
			return fail_bare_cr(p);
		p->pos += 2;
		return 1;
	}
	return 0;
}

/* Between array elements: whitespace, comments and newlines. */
static int skip_blank(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		if (peek(p) == '#' && skip_comment(p) < 0)
			return -1;
		int r = eat_newline(p);
		if (r <= 0)
			return r;
	}
}

/* After a key/value pair or a header: whitespace, an optional comment, then a newline or
 * the end of input. */
static int end_of_line(struct parser *p, const char *after)
{
	skip_ws(p);
	if (peek(p) == '#' && skip_comment(p) < 0)
		return -1;
	if (p->pos >= p->len)
		return 0;
	int r = eat_newline(p);
	if (r != 0)
		return r < 0 ? -1 : 0;
	char d[32];
	return fail_at(p, p->pos, "unexpected %s after %s, expected the end of the line",
		       describe(p, p->pos, d), after);
}

/* ---- strings (decoded into p->str, which the caller empties first) ---- */

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int add_utf8(struct parser *p, uint32_t cp)
{
	char b[4];
	return sbuf_add(p, b, ac_utf8_encode(cp, b));
}

/* At a backslash in a basic string. */
static int parse_escape(struct parser *p)
{
	size_t at = p->pos;
	int e = peek_at(p, 1);
	char simple;
	switch (e) {
	case 'b':
		simple = '\b';
		break;
	case 't':
		simple = '\t';
		break;
	case 'n':
		simple = '\n';
		break;
	case 'f':
		simple = '\f';
		break;
	case 'r':
		simple = '\r';
		break;
	case '"':
		simple = '"';
		break;
	case '\\':
		simple = '\\';
		break;
	case 'u':
	case 'U': {
		int digits = e == 'u' ? 4 : 8;
		uint32_t cp = 0;
		p->pos += 2;
		for (int i = 0; i < digits; i++) {
			int h = hex_value(peek(p));
			if (h < 0)
				return fail_at(p, at, "escape \\%c needs %d hex digits", e, digits);
			cp = cp << 4 | (uint32_t)h;
			p->pos++;
		}
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return fail_at(p, at, "escape %.*s is not a Unicode scalar value",
				       digits + 2, p->s + at);
		return add_utf8(p, cp);
	}
	default: {
		char d[32];
		return fail_at(p, at, "invalid escape: backslash followed by %s",
			       describe(p, at + 1, d));
	}
	}
	p->pos += 2;
	return sbuf_addc(p, simple);
}

/* Adds the run of bytes that need no attention (anything but quotes of kind q, backslash
 * when escapes apply, newlines and control characters). */
static int add_plain_run(struct parser *p, char q, bool escapes)
{
	size_t start = p->pos;
	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->s[p->pos];
		if (c == (unsigned char)q || (escapes && c == '\\') || is_control(c))
			break;
		p->pos++;
	}
	return sbuf_add(p, p->s + start, p->pos - start);
}

/* At the opening quote of a single-line string ("..." or '...'). */
static int parse_line_string(struct parser *p, char q)
{
	size_t start = p->pos++;
	for (;;) {
		int c = peek(p);
		if (c < 0 || c == '\n' || (c == '\r' && peek_at(p, 1) == '\n'))
			return fail_at(p, start, "unterminated string");
		if (c == q) {
			p->pos++;
			return 0;
		}
		if (q == '"' && c == '\\') {
			if (peek_at(p, 1) < 0)
				return fail_at(p, start, "unterminated string");
			if (parse_escape(p) < 0)
				return -1;
		} else if (is_control(c)) {
			return fail_at(p, p->pos, "control character U+%04X in a string%s", c,
				       q == '"' ? " (it must be escaped)" : "");
		} else if (add_plain_run(p, q, q == '"') < 0) {
			return -1;
		}
	}
}

/* At the opening """ or '''. The newline right after the delimiter is dropped, CRLF becomes
 * LF, and in basic strings a backslash ending a line swallows all whitespace and newlines
 * up to the next other character. */
static int parse_multiline_string(struct parser *p, char q)
{
	size_t start = p->pos;
	bool basic = q == '"';
	p->pos += 3;
	if (eat_newline(p) < 0)
		return -1;
	for (;;) {
		int c = peek(p);
		if (c < 0)
			return fail_at(p, start, "unterminated multi-line string");
		if (c == q) {
			/* Up to two quotes may sit right inside the closing delimiter. More are
			 * left for the caller to reject as text after the value. */
			size_t n = 0;
			while (peek_at(p, n) == q)
				n++;
			if (n < 3) {
				if (sbuf_add(p, p->s + p->pos, n) < 0)
					return -1;
				p->pos += n;
				continue;
			}
			size_t inside = n > 5 ? 2 : n - 3;
			if (sbuf_add(p, p->s + p->pos, inside) < 0)
				return -1;
			p->pos += inside + 3;
			return 0;
		}
		if (c == '\n' || c == '\r') {
			if (eat_newline(p) < 0 || sbuf_addc(p, '\n') < 0)
				return -1;
			continue;
		}
		if (basic && c == '\\') {
			size_t q2 = p->pos + 1;
			while (q2 < p->len && (p->s[q2] == ' ' || p->s[q2] == '\t'))
				q2++;
			if (q2 < p->len && (p->s[q2] == '\n' || p->s[q2] == '\r')) {
				p->pos = q2;
				int r;
				do {
					skip_ws(p);
					r = eat_newline(p);
				} while (r > 0);
				if (r < 0)
					return -1;
				continue;
			}
			if (q2 >= p->len)
				return fail_at(p, start, "unterminated multi-line string");
			if (parse_escape(p) < 0)
				return -1;
			continue;
		}
		if (is_control(c))
			return fail_at(p, p->pos, "control character U+%04X in a string%s", c,
				       basic ? " (it must be escaped)" : "");
		if (add_plain_run(p, q, basic) < 0)
			return -1;
	}
}

/* ---- keys ---- */

/* A simple or dotted key, with the whitespace around it. */
static int parse_key(struct parser *p, struct key *k)
{
	for (;;) {
		skip_ws(p);
		size_t off = p->pos;
		int c = peek(p);
		if (c == '"' || c == '\'') {
			if (peek_at(p, 1) == c && peek_at(p, 2) == c)
				return fail_at(p, off, "a multi-line string cannot be a key");
			p->str.len = 0;
			if (parse_line_string(p, (char)c) < 0)
				return -1;
			if (key_add(p, k, p->str.p, p->str.len, off) < 0)
				return -1;
		} else if (is_bare_key_char(c)) {
			while (is_bare_key_char(peek(p)))
				p->pos++;
			if (key_add(p, k, p->s + off, p->pos - off, off) < 0)
				return -1;
		} else {
			char d[32];
			return fail_at(p, off, "expected a key, found %s", describe(p, off, d));
		}
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->pos++;
	}
}

/* ---- numbers ---- */

static bool is_digit_in(int c, int base)
{
	switch (base) {
	case 2:
		return c == '0' || c == '1';
	case 8:
		return c >= '0' && c <= '7';
	case 10:
		return c >= '0' && c <= '9';
	default:
		return hex_value(c) >= 0;
	}
}

static const char *base_name(int base)
{
	return base == 2 ? "a binary" : base == 8 ? "an octal" : base == 16 ? "a hex" : "a";
}

/* Digits with single underscores between them; the digits are added to p->str. */
static int scan_digits(struct parser *p, int base, bool leading_zero_ok)
{
	size_t start = p->pos;
	if (!is_digit_in(peek(p), base)) {
		char d[32];
		return fail_at(p, p->pos, "expected %s digit, found %s", base_name(base),
			       describe(p, p->pos, d));
	}
	for (;;) {
		int c = peek(p);
		if (is_digit_in(c, base)) {
			if (sbuf_addc(p, (char)c) < 0)
				return -1;
		} else if (c == '_') {
			if (!is_digit_in(peek_at(p, 1), base))
				return fail_at(p, p->pos, "'_' must be between two digits");
		} else {
			break;
		}
		p->pos++;
	}
	if (!leading_zero_ok && p->s[start] == '0' && p->pos - start > 1)
		return fail_at(p, start, "leading zeros are not allowed");
	return 0;
}

static json_t *make_integer(struct parser *p, size_t start, int base, bool negative)
{
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (size_t i = negative ? 1 : 0; i < p->str.len; i++) {
		uint64_t d = (uint64_t)hex_value(p->str.p[i]);
		if (v > (limit - d) / (uint64_t)base) {
			int shown = p->pos - start > 64 ? 64 : (int)(p->pos - start);
			fail_at(p, start, "integer %.*s%s does not fit in 64 bits", shown,
				p->s + start, p->pos - start > 64 ? "..." : "");
			return NULL;
		}
		v = v * (uint64_t)base + d;
	}
	int64_t value = !negative ? (int64_t)v : v == limit ? INT64_MIN : -(int64_t)v;
	json_t *j = json_integer((json_int_t)value);
	if (j == NULL)
		fail_oom(p);
	return j;
}

static json_t *make_float(struct parser *p, size_t start)
{
	if (sbuf_addc(p, '\0') < 0)
		return NULL;
	if (p->c_locale == (locale_t)0) {
		p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
		if (p->c_locale == (locale_t)0) {
			fail_oom(p);
			return NULL;
		}
	}
	errno = 0;
	double d = strtod_l(p->str.p, NULL, p->c_locale);
	if (errno == ERANGE && isinf(d)) {
		fail_at(p, start, "float out of range");
		return NULL;
	}
	json_t *j = json_real(d);
	if (j == NULL)
		fail_oom(p);
	return j;
}

/* True at "1979-" or "07:" -- the start of a date or a time. */
static bool looks_like_date(const struct parser *p)
{
	int i = 0;
	while (i < 4 && is_digit_in(peek_at(p, (size_t)i), 10))
		i++;
	return (i == 4 && peek_at(p, 4) == '-') || (i >= 2 && peek_at(p, 2) == ':');
}

static bool at_word(const struct parser *p, size_t ahead, const char *word)
{
	size_t n = strlen(word);
	return p->len - p->pos >= ahead + n && memcmp(p->s + p->pos + ahead, word, n) == 0;
}

static json_t *parse_number(struct parser *p)
{
	size_t start = p->pos;
	bool sign = false, negative = false;
	p->str.len = 0;
	if (peek(p) == '+' || peek(p) == '-') {
		sign = true;
		negative = peek(p) == '-';
		p->pos++;
	}
	int c = peek(p), c1 = peek_at(p, 1);
	if (c == '0' && (c1 == 'x' || c1 == 'o' || c1 == 'b')) {
		if (sign) {
			fail_at(p, start, "hex, octal and binary integers cannot have a sign");
			return NULL;
		}
		int base = c1 == 'x' ? 16 : c1 == 'o' ? 8 : 2;
		p->pos += 2;
		if (scan_digits(p, base, true) < 0)
			return NULL;
		return make_integer(p, start, base, false);
	}
	if (!is_digit_in(c, 10)) {
		char d[32];
		fail_at(p, p->pos, "expected a digit, found %s", describe(p, p->pos, d));
		return NULL;
	}
	if (!sign && looks_like_date(p)) {
		fail_at(p, start, "dates and times are not supported");
		return NULL;
	}
	if ((negative && sbuf_addc(p, '-') < 0) || scan_digits(p, 10, false) < 0)
		return NULL;
	bool is_float = false;
	if (peek(p) == '.') {
		is_float = true;
		p->pos++;
		if (sbuf_addc(p, '.') < 0 || scan_digits(p, 10, true) < 0)
			return NULL;
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		is_float = true;
		p->pos++;
		if (sbuf_addc(p, 'e') < 0)
			return NULL;
		if (peek(p) == '+' || peek(p) == '-') {
			if (sbuf_addc(p, (char)peek(p)) < 0)
				return NULL;
			p->pos++;
		}
		if (scan_digits(p, 10, true) < 0)
			return NULL;
	}
	return is_float ? make_float(p, start) : make_integer(p, start, 10, negative);
}

/* ---- values ---- */

static json_t *parse_value(struct parser *p, int depth);

static int parse_keyval(struct parser *p, json_t *table, int depth);

static json_t *parse_array(struct parser *p, int depth)
{
	size_t start = p->pos;
	if (depth > AC_TOML_MAX_DEPTH) {
		fail_depth(p, start);
		return NULL;
	}
	p->pos++;
	json_t *arr = json_array();
	if (arr == NULL) {
		fail_oom(p);
		return NULL;
	}
	for (;;) {
		if (skip_blank(p) < 0)
			break;
		if (p->pos >= p->len) {
			fail_at(p, start, "unterminated array");
			break;
		}
		if (peek(p) == ']') {
			p->pos++;
			return arr;
		}
		json_t *v = parse_value(p, depth + 1);
		if (v == NULL)
			break;
		if (json_array_append_new(arr, v) < 0) {
			fail_oom(p);
			break;
		}
		if (skip_blank(p) < 0)
			break;
		if (peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p) == ']') {
			p->pos++;
			return arr;
		}
		if (p->pos >= p->len) {
			fail_at(p, start, "unterminated array");
		} else {
			char d[32];
			fail_at(p, p->pos, "expected ',' or ']' in an array, found %s",
				describe(p, p->pos, d));
		}
		break;
	}
	json_decref(arr);
	return NULL;
}

static json_t *parse_inline_table(struct parser *p, int depth)
{
	size_t start = p->pos;
	if (depth > AC_TOML_MAX_DEPTH) {
		fail_depth(p, start);
		return NULL;
	}
	p->pos++;
	json_t *t = json_object();
	if (t == NULL) {
		fail_oom(p);
		return NULL;
	}
	skip_ws(p);
	if (peek(p) == '}') {
		p->pos++;
		return t;
	}
	for (;;) {
		if (parse_keyval(p, t, depth) < 0)
			break;
		skip_ws(p);
		int c = peek(p);
		if (c == ',') {
			p->pos++;
			skip_ws(p);
			if (peek(p) == '}') {
				fail_at(p, p->pos, "trailing comma in an inline table");
				break;
			}
			continue;
		}
		if (c == '}') {
			p->pos++;
			return t;
		}
		if (c < 0) {
			fail_at(p, start, "unterminated inline table");
		} else if (c == '\n' || c == '\r') {
			fail_at(p, p->pos, "newline in an inline table (it must fit on one line)");
		} else {
			char d[32];
			fail_at(p, p->pos, "expected ',' or '}' in an inline table, found %s",
				describe(p, p->pos, d));
		}
		break;
	}
	json_decref(t);
	return NULL;
}

static json_t *new_string(struct parser *p)
{
	json_t *j = json_stringn(p->str.len ? p->str.p : "", p->str.len);
	if (j == NULL)
		fail_oom(p);
	return j;
}

/* A value whose containers, if it is one, sit at depth. */
static json_t *parse_value(struct parser *p, int depth)
{
	size_t start = p->pos;
	int c = peek(p);
	if (c == '"' || c == '\'') {
		p->str.len = 0;
		int r = peek_at(p, 1) == c && peek_at(p, 2) == c
			    ? parse_multiline_string(p, (char)c)
			    : parse_line_string(p, (char)c);
		return r < 0 ? NULL : new_string(p);
	}
	if (c == '[')
		return parse_array(p, depth);
	if (c == '{')
		return parse_inline_table(p, depth);
	if (at_word(p, 0, "true")) {
		p->pos += 4;
		return json_true();
	}
	if (at_word(p, 0, "false")) {
		p->pos += 5;
		return json_false();
	}
	size_t sign = c == '+' || c == '-';
	if (at_word(p, sign, "inf") || at_word(p, sign, "nan")) {
		fail_at(p, start, "inf and nan are not supported (JSON cannot represent them)");
		return NULL;
	}
	if (sign || is_digit_in(c, 10))
		return parse_number(p);
	char d[32];
	if (c < 0 || c == '\n' || c == '\r' || c == '#')
		fail_at(p, start, "missing value, found %s", describe(p, start, d));
	else
		fail_at(p, start, "expected a value, found %s", describe(p, start, d));
	return NULL;
}

/* ---- definitions ---- */

/* key = value into table (at depth): dotted keys create or extend tables on the way. */
static int parse_keyval(struct parser *p, json_t *table, int depth)
{
	_cleanup_key_ struct key k = {0};
	if (parse_key(p, &k) < 0)
		return -1;
	if (peek(p) != '=') {
		char d[32];
		return fail_at(p, p->pos, "expected '=' after a key, found %s",
			       describe(p, p->pos, d));
	}
	p->pos++;
	skip_ws(p);

	char name[160];
	json_t *parent = table;
	for (size_t i = 0; i + 1 < k.n; i++) {
		const struct key_part *kp = &k.part[i];
		json_t *child = json_object_getn(parent, kp->s, kp->len);
		depth++;
		if (child == NULL) {
			if (depth > AC_TOML_MAX_DEPTH)
				return fail_depth(p, kp->off);
			child = json_object();
			if (child == NULL ||
			    json_object_setn_new(parent, kp->s, kp->len, child) < 0)
				return fail_oom(p);
			if (set_kind(p, child, K_DOTTED) < 0)
				return -1;
		} else {
			enum node_kind kind = kind_of(p, child);
			/* A table a header only implied may still be defined here; from then
			 * on it counts as defined by dotted keys. */
			if (!json_is_object(child) || (kind != K_DOTTED && kind != K_IMPLICIT))
				return fail_at(p, kp->off,
					       "cannot add keys to '%s' with dotted keys: it is %s",
					       format_key(&k, i + 1, name, sizeof(name)),
					       describe_node(p, child));
			if (kind == K_IMPLICIT && set_kind(p, child, K_DOTTED) < 0)
				return -1;
		}
		parent = child;
	}
	const struct key_part *last = &k.part[k.n - 1];
	if (json_object_getn(parent, last->s, last->len) != NULL)
		return fail_at(p, last->off, "duplicate key '%s'",
			       format_key(&k, k.n, name, sizeof(name)));
	json_t *v = parse_value(p, depth + 1);
	if (v == NULL)
		return -1;
	if (json_object_setn_new(parent, last->s, last->len, v) < 0)
		return fail_oom(p);
	return 0;
}

/* [a.b.c] or [[a.b.c]]: makes the named table the current one. */
static int parse_header(struct parser *p)
{
	bool array = peek_at(p, 1) == '[';
	p->pos += array ? 2 : 1;
	_cleanup_key_ struct key k = {0};
	if (parse_key(p, &k) < 0)
		return -1;
	if (peek(p) != ']' || (array && peek_at(p, 1) != ']')) {
		char d[32];
		size_t at = peek(p) == ']' ? p->pos + 1 : p->pos;
		return fail_at(p, at, "expected '%s' to close the header, found %s",
			       array ? "]]" : "]", describe(p, at, d));
	}
	p->pos += array ? 2 : 1;

	char name[160];
	json_t *t = p->root;
	int depth = 0;
	for (size_t i = 0; i + 1 < k.n; i++) {
		const struct key_part *kp = &k.part[i];
		json_t *child = json_object_getn(t, kp->s, kp->len);
		depth++;
		if (child == NULL) {
			if (depth > AC_TOML_MAX_DEPTH)
				return fail_depth(p, kp->off);
			child = json_object();
			if (child == NULL || json_object_setn_new(t, kp->s, kp->len, child) < 0)
				return fail_oom(p);
			if (set_kind(p, child, K_IMPLICIT) < 0)
				return -1;
		} else {
			enum node_kind kind = kind_of(p, child);
			if (json_is_array(child) && kind == K_TABLE_ARRAY) {
				/* [a.b] after [[a]] goes into the last element of a. */
				child = json_array_get(child, json_array_size(child) - 1);
				depth++;
			} else if (!json_is_object(child) || kind == K_FROZEN) {
				return fail_at(p, kp->off, "cannot use '%s' as a table: it is %s",
					       format_key(&k, i + 1, name, sizeof(name)),
					       describe_node(p, child));
			}
		}
		t = child;
	}

	const struct key_part *last = &k.part[k.n - 1];
	json_t *node = json_object_getn(t, last->s, last->len);
	format_key(&k, k.n, name, sizeof(name));
	depth++;
	if (!array) {
		if (node == NULL) {
			if (depth > AC_TOML_MAX_DEPTH)
				return fail_depth(p, last->off);
			node = json_object();
			if (node == NULL || json_object_setn_new(t, last->s, last->len, node) < 0)
				return fail_oom(p);
		} else if (json_is_object(node) && kind_of(p, node) == K_EXPLICIT) {
			return fail_at(p, last->off, "duplicate table [%s]", name);
		} else if (!json_is_object(node) || kind_of(p, node) != K_IMPLICIT) {
			return fail_at(p, last->off, "cannot define table [%s]: it is already %s",
				       name, describe_node(p, node));
		}
	} else {
		if (node == NULL) {
			if (depth + 1 > AC_TOML_MAX_DEPTH)
				return fail_depth(p, last->off);
			node = json_array();
			if (node == NULL || json_object_setn_new(t, last->s, last->len, node) < 0)
				return fail_oom(p);
			if (set_kind(p, node, K_TABLE_ARRAY) < 0)
				return -1;
		} else if (!json_is_array(node) || kind_of(p, node) != K_TABLE_ARRAY) {
			return fail_at(p, last->off, "cannot append to [[%s]]: '%s' is %s", name,
				       name, describe_node(p, node));
		}
		json_t *elem = json_object();
		if (elem == NULL || json_array_append_new(node, elem) < 0)
			return fail_oom(p);
		node = elem;
		depth++;
	}
	if (set_kind(p, node, K_EXPLICIT) < 0)
		return -1;
	p->cur = node;
	p->cur_depth = depth;
	return 0;
}

static int parse_document(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		int c = peek(p);
		if (c < 0)
			return 0;
		const char *after = "the value";
		if (c == '[') {
			if (parse_header(p) < 0)
				return -1;
			after = "the header";
		} else if (c != '#' && c != '\n' && c != '\r') {
			if (parse_keyval(p, p->cur, p->cur_depth) < 0)
				return -1;
		}
		if (end_of_line(p, after) < 0)
			return -1;
	}
}

int ac_toml_parse(const char *text, size_t len, const char *name, json_t **out, ac_error_t **err)
{
	if (name == NULL)
		name = "<input>";
	if (len > AC_TOML_MAX_SIZE)
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: too large (%zu bytes, the limit is %u)", name, len,
				    AC_TOML_MAX_SIZE);
	if (text == NULL)
		text = "";
	struct parser p = {.s = text, .len = len, .name = name, .err = err};

	size_t bad = ac_utf8_invalid_at(text, len);
	if (bad < len)
		return fail_at(&p, bad, "invalid UTF-8 (byte 0x%02X)", (unsigned char)text[bad]);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		p.bom = p.pos = 3;

	int rc = -1;
	p.root = json_object();
	if (p.root == NULL) {
		fail_oom(&p);
	} else if (set_kind(&p, p.root, K_EXPLICIT) == 0) {
		p.cur = p.root;
		rc = parse_document(&p);
	}
	free(p.map.slot);
	free(p.str.p);
	if (p.c_locale != (locale_t)0)
		freelocale(p.c_locale);
	if (rc < 0) {
		json_decref(p.root);
		return -1;
	}
	*out = p.root;
	return 0;
}

int ac_toml_parse_file(const char *path, json_t **out, ac_error_t **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (ac_read_file_at(AT_FDCWD, path, AC_TOML_MAX_SIZE, &buf, &len, err) < 0)
		return -1;
	return ac_toml_parse(buf, len, path, out, err);
}
