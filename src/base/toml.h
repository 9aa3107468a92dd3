/* A strict parser for the TOML 1.0 subset agentcell.toml uses, producing a jansson tree.
 *
 * Supported: tables [a.b], arrays of tables [[a]], bare/quoted/dotted keys, basic strings
 * (all TOML 1.0 escapes), literal strings, both multi-line string forms, integers (decimal,
 * 0x, 0o, 0b, underscores between digits), floats, booleans, arrays (mixed types, newlines,
 * comments, trailing comma) and inline tables. A leading UTF-8 byte order mark is skipped.
 *
 * Refused with an error: dates and times (agentcell does not use them), inf and nan (JSON
 * cannot represent them), integers outside int64, floats that overflow a double, invalid
 * UTF-8, control characters (bare CR included) outside what TOML allows, nesting deeper than
 * AC_TOML_MAX_DEPTH containers, input larger than AC_TOML_MAX_SIZE bytes.
 *
 * Mapping: tables -> objects, arrays -> arrays, integers -> json_integer, floats -> json_real,
 * booleans -> json_true/json_false, strings -> json_stringn (may contain NUL from \u0000;
 * CRLF inside multi-line strings becomes LF). Keys may contain NUL too (json_object_getn).
 *
 * Definition rules (TOML 1.0): a key or table is defined once; [x] may define a table that
 * an earlier header created implicitly, but not one made by dotted keys; dotted keys may
 * extend tables created implicitly by headers or by dotted keys, never a table defined by a
 * header; [[x]] appends only to arrays made by [[x]]; inline tables and arrays written as
 * values cannot be extended. */
#ifndef AGENTCELL_BASE_TOML_H
#define AGENTCELL_BASE_TOML_H

#include <stddef.h>

#include <jansson.h>

#include "agentcell/error.h"

#define AC_TOML_MAX_SIZE (1024u * 1024u)
/* Containers (tables and arrays) below the root table, counting each level once. */
#define AC_TOML_MAX_DEPTH 64

/* Parses TOML text (len bytes, need not be NUL-terminated) into a new JSON object in *out.
 * On error returns -1 and sets *err (AC_ERR_INVALID; AC_ERR_INTERNAL when out of memory)
 * with a one-line message "NAME:LINE:COL: what is wrong" (LINE and COL 1-based, COL counted
 * in characters; NAME is name, or "<input>" when name is NULL). */
int ac_toml_parse(const char *text, size_t len, const char *name, json_t **out, ac_error_t **err);

/* Reads path (at most AC_TOML_MAX_SIZE bytes, a regular file) and parses it as above, with
 * path as the NAME in messages. */
int ac_toml_parse_file(const char *path, json_t **out, ac_error_t **err);

#endif
