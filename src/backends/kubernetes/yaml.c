/* A kubeconfig's text (YAML 1.1, or its JSON form) to a JSON tree, with libyaml.
 *
 * libyaml is loaded with dlopen like libcurl (src/base/dl.h): only the Kubernetes
 * backend reads YAML, and every other start of the CLI should not pay for mapping it. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "backends/kubernetes/k8s.h"
#include "base/dl.h"
#include "base/util.h"

#define YAML_FNS(X)                                                                                \
	X(yaml_parser_initialize)                                                                  \
	X(yaml_parser_set_input_string)                                                            \
	X(yaml_parser_load)                                                                        \
	X(yaml_parser_delete)                                                                      \
	X(yaml_document_get_root_node)                                                             \
	X(yaml_document_get_node)                                                                  \
	X(yaml_document_delete)
AC_DL_TABLE(yaml, YAML_FNS)

#define YAML_DEPTH_MAX 64
/* Aliases can repeat a subtree many times ("billion laughs"): the tree is capped. */
#define YAML_NODES_MAX 200000

typedef struct conv {
	yaml_document_t *doc;
	const char *origin;
	size_t nodes;
} conv_t;

static bool plain_null(const yaml_node_t *n)
{
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	size_t l = n->data.scalar.length;
	return l == 0 || (l == 1 && v[0] == '~') ||
	       (l == 4 &&
		(!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

static json_t *convert(conv_t *c, yaml_node_t *n, int depth, ac_error_t **err)
{
	if (!n) {
		ac_error_set(err, AC_ERR_INVALID, 0, "%s: broken YAML document", c->origin);
		return NULL;
	}
	unsigned long line = (unsigned long)n->start_mark.line + 1;
	if (depth > YAML_DEPTH_MAX || ++c->nodes > YAML_NODES_MAX) {
		ac_error_set(err, AC_ERR_INVALID, 0, "%s: line %lu: nested or repeated too deeply",
			     c->origin, line);
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		if (plain_null(n))
			return json_null();
		json_t *s = json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
		if (!s)
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: line %lu: a value is not UTF-8 text", c->origin, line);
		return s;
	}
	case YAML_SEQUENCE_NODE: {
		json_t *a = json_array();
		if (!a)
			goto oom;
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			json_t *v =
			    convert(c, yaml_fn.yaml_document_get_node(c->doc, *it), depth + 1, err);
			if (!v || json_array_append_new(a, v) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case YAML_MAPPING_NODE: {
		json_t *o = json_object();
		if (!o)
			goto oom;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_fn.yaml_document_get_node(c->doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE) {
				ac_error_set(err, AC_ERR_INVALID, 0,
					     "%s: line %lu: a mapping key is not a plain value",
					     c->origin,
					     k ? (unsigned long)k->start_mark.line + 1 : line);
				json_decref(o);
				return NULL;
			}
			_cleanup_free_ char *key =
			    strndup((const char *)k->data.scalar.value, k->data.scalar.length);
			AC_ANALYZER_OWNED(key);
			json_t *v =
			    key ? convert(c, yaml_fn.yaml_document_get_node(c->doc, p->value),
					  depth + 1, err)
				: NULL;
			if (!v || strlen(key) != k->data.scalar.length ||
			    json_object_set_new(o, key, v) < 0) {
				if (v) {
					json_decref(v);
					ac_error_set(err, AC_ERR_INVALID, 0,
						     "%s: line %lu: a key is not UTF-8 text",
						     c->origin,
						     (unsigned long)k->start_mark.line + 1);
				}
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	default:
		ac_error_set(err, AC_ERR_INVALID, 0, "%s: line %lu: empty node", c->origin, line);
		return NULL;
	}
oom:
	ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	return NULL;
}

int ac_k8s_yaml_parse(const char *data, size_t len, const char *origin, json_t **out,
		      ac_error_t **err)
{
	*out = NULL;
	size_t i = 0;
	while (i < len && isspace((unsigned char)data[i]))
		i++;
	if (i == len) { /* an empty file is an empty configuration (kubectl agrees) */
		*out = json_object();
		return *out ? 0 : ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	}
	/* The JSON form, exactly: YAML 1.2 is its superset, but libyaml is a 1.1 parser. */
	if (data[i] == '{') {
		json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
		if (j) {
			*out = j;
			return 0;
		}
	}
	if (memchr(data, 0, len))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: not a text file (NUL byte)",
				    origin);
	if (yaml_load("libyaml-0.so.2", "libyaml-0-2", err) < 0)
		return -1;
	yaml_parser_t p;
	if (!yaml_fn.yaml_parser_initialize(&p))
		return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	yaml_fn.yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	yaml_document_t doc;
	if (!yaml_fn.yaml_parser_load(&p, &doc)) {
		if (p.error == YAML_MEMORY_ERROR)
			ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		else
			ac_error_set(err, AC_ERR_INVALID, 0,
				     "%s: line %lu column %lu: invalid YAML: %s%s%s", origin,
				     (unsigned long)p.problem_mark.line + 1,
				     (unsigned long)p.problem_mark.column + 1,
				     p.problem ? p.problem : "syntax error", p.context ? " " : "",
				     p.context ? p.context : "");
		yaml_fn.yaml_parser_delete(&p);
		return -1;
	}
	yaml_node_t *root = yaml_fn.yaml_document_get_root_node(&doc);
	int rc = 0;
	if (!root) {
		*out = json_object();
		if (!*out)
			rc = ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
	} else {
		conv_t c = {.doc = &doc, .origin = origin};
		*out = convert(&c, root, 0, err);
		if (!*out)
			rc = -1;
	}
	yaml_fn.yaml_document_delete(&doc);
	yaml_fn.yaml_parser_delete(&p);
	if (rc == 0 && json_is_null(*out)) {
		json_decref(*out);
		*out = json_object();
	}
	if (rc == 0 && !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: not a kubeconfig (not a mapping)",
				    origin);
	}
	return rc;
}
