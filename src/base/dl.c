/* Optional libraries loaded on first use (see src/base/dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "base/dl.h"

static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;

int ac_dl_load(int *once, const char *soname, const char *package, const char *const *names,
	       void **slots, size_t n, ac_error_t **err)
{
	if (__atomic_load_n(once, __ATOMIC_ACQUIRE) == 1)
		return 0;
	pthread_mutex_lock(&dl_lock);
	int rc = 0;
	if (*once == 1)
		goto out;
	/* RTLD_LOCAL: the library's symbols stay out of the global namespace. */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		rc = ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
				  "cannot load %s (install the Debian package %s): %s", soname,
				  package, dlerror());
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		/* The slots form a struct of function pointers: same size and representation as
		 * void * on every platform that has dlsym. */
		void *p = dlsym(h, names[i]);
		if (!p) {
			memset(slots, 0, n * sizeof(void *));
			dlclose(h);
			rc = ac_error_set(err, AC_ERR_UNSUPPORTED, 0,
					  "%s has no symbol %s (version too old?)", soname,
					  names[i]);
			goto out;
		}
		memcpy(&slots[i], &p, sizeof(p));
	}
	__atomic_store_n(once, 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&dl_lock);
	return rc;
}
