/* libcurl's one dlopen table (see curl.h). */
#include <pthread.h>

#include "base/curl.h"
#include "base/util.h"

struct ac_curl_fns ac_curl;
static int curl_loaded;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
	ac_curl.curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ac_curl_load(ac_error_t **err)
{
	static const char *const names[] = {AC_CURL_FNS(AC_DL_NAME_)};
	if (ac_dl_load(&curl_loaded, "libcurl.so.4", "libcurl4", names, (void **)&ac_curl,
		       AC_ARRAY_SIZE(names), err) < 0)
		return -1;
	pthread_once(&global_once, global_init);
	return 0;
}
