/* The image's and the volumes' part of a native sandbox's spec, from its state: the fields
 * core/build.c records (src/image/image.h: image_base, image_layers as layer directories
 * of the store, workdir, user) and "volumes" [{name, path, read_only}] as the volumes'
 * host directories. A state without them gives the spec it always gave. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agentcell/store.h"
#include "backends/native/native.h"
#include "image/image.h"
#include "runtime/layers.h"

void ac_native_mem_free(ac_native_mem_t *m)
{
	free(m->env);
	for (size_t i = 0; m->layers && m->layers[i]; i++)
		free(m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->nvols; i++)
		free((char *)m->vols[i].src);
	free(m->vols);
	*m = (ac_native_mem_t){0};
}

static bool hex64(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

int ac_native_image_spec(const ac_backend_ctx_t *ctx, const json_t *st, ac_rt_spec_t *spec,
			 ac_native_mem_t *mem, ac_error_t **err)
{
	const json_t *layers = json_object_get(st, "image_layers");
	size_t nl = json_array_size(layers);
	if (nl) {
		if (nl > AC_RT_LAYERS_MAX)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "sandbox '%s' has more than %d image layers",
					    spec->name, AC_RT_LAYERS_MAX);
		if (!(mem->layers = calloc(nl + 1, sizeof(char *))))
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		for (size_t i = 0; i < nl; i++) {
			const char *hex = json_string_value(json_array_get(layers, i));
			char dir[4200];
			if (!hex || !hex64(hex))
				return ac_error_set(
				    err, AC_ERR_INVALID, 0,
				    "sandbox '%s' has a bad image layer in its state "
				    "file",
				    spec->name);
			ac_image_layer_dir(ctx->home, hex, dir, sizeof(dir));
			if (!(mem->layers[i] = strdup(dir)))
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		spec->layers = mem->layers;
		/* What lies under the layers: nothing ("oci"), the host, an image directory. */
		spec->image = ac_state_str(st, "image_base", "oci");
	}
	spec->workdir = ac_state_str(st, "workdir", NULL);
	spec->user = ac_state_str(st, "user", NULL);
	const json_t *vols = json_object_get(st, "volumes");
	size_t nv = json_array_size(vols);
	if (nv) {
		if (nv > AC_RT_VOLUMES_MAX)
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "sandbox '%s' has more than %d volumes", spec->name,
					    AC_RT_VOLUMES_MAX);
		if (!(mem->vols = calloc(nv, sizeof(*mem->vols))))
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		for (size_t i = 0; i < nv; i++) {
			const json_t *v = json_array_get(vols, i);
			char src[4200];
			const char *vname = ac_state_str(v, "name", "");
			if (ac_volume_path(ctx->home, vname, src, sizeof(src), err) < 0) {
				ac_error_prefix(err, "sandbox '%s'", spec->name);
				return -1;
			}
			if (!(mem->vols[i].src = strdup(src)))
				return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
			mem->nvols = i + 1;
			mem->vols[i].dst = ac_state_str(v, "path", NULL);
			mem->vols[i].read_only = ac_state_bool(v, "read_only", false);
		}
		spec->volumes = mem->vols;
		spec->nvolumes = nv;
	}
	return ac_layers_check(spec, err);
}
