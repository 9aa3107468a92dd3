/* Small jansson helpers shared by the library. */
#ifndef AGENTCELL_JSON_H
#define AGENTCELL_JSON_H

#include <jansson.h>

/* Sorts a JSON array in place; cmp receives pointers to json_t * elements (qsort style). */
int ac_json_array_sort(json_t *arr, int (*cmp)(const void *, const void *));

#endif
