/* Small jansson helpers (see src/base/json.h). */
#include <stdlib.h>

#include "base/json.h"
#include "base/utf8.h"

int ac_json_array_sort(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	if (n < 2)
		return 0;
	json_t **items = calloc(n, sizeof(json_t *));
	if (!items)
		return -1;
	for (size_t i = 0; i < n; i++)
		items[i] = json_incref(json_array_get(arr, i));
	qsort(items, n, sizeof(json_t *), cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, items[i]);
	free(items);
	return 0;
}

json_t *ac_json_text(const char *s, size_t n)
{
	if (!s)
		return json_string("");
	if (ac_utf8_valid(s, n))
		return json_stringn_nocheck(s, n);
	size_t len = 0;
	char *fixed = ac_utf8_lossy(s, n, &len);
	json_t *j = fixed ? json_stringn_nocheck(fixed, len) : NULL;
	free(fixed);
	return j;
}
