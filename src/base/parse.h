/* Strict parsers for small values taken from users: numbers, sandbox names, image
 * references (parse.c). */
#ifndef AGENTCELL_BASE_PARSE_H
#define AGENTCELL_BASE_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Strict decimal parse of a whole string into [min, max]. */
int ac_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Sandbox names: 1-63 of [A-Za-z0-9_-], first and last alphanumeric. */
bool ac_name_valid(const char *name);
/* A container image reference as engines take it (docker.io/library/python:3.12, a
 * registry host with a port, @sha256: digests): 1-255 printable non-space bytes, not
 * starting with '-', '/' or '.' (never an option or a path). The engine checks the rest. */
bool ac_image_ref_valid(const char *ref);
/* Whether a directory entry is NAME followed by suffix (".lock", ".exec") with a valid
 * sandbox name; if so the name is copied into name. */
bool ac_name_from_entry(const char *entry, const char *suffix, char name[64]);

#endif
