/* libarchive's one dlopen table (see libarchive.h). */
#include "base/libarchive.h"
#include "base/util.h"

struct ac_ar_fns ac_ar;
static int ar_loaded;

int ac_ar_load(ac_error_t **err)
{
	static const char *const names[] = {AC_AR_FNS(AC_DL_NAME_)};
	return ac_dl_load(&ar_loaded, "libarchive.so.13", "libarchive13", names, (void **)&ac_ar,
			  AC_ARRAY_SIZE(names), err);
}
