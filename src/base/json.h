/* Small jansson helpers shared by the library. */
#ifndef AGENTCELL_BASE_JSON_H
#define AGENTCELL_BASE_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Sorts a JSON array in place; cmp receives pointers to json_t * elements (qsort style). */
int ac_json_array_sort(json_t *arr, int (*cmp)(const void *, const void *));

/* Bytes as a JSON string (NULL: ""): JSON text is UTF-8, program output and file contents
 * need not be, so each invalid byte becomes U+FFFD. NUL bytes are kept. NULL: out of memory. */
json_t *ac_json_text(const char *s, size_t n);

#endif
