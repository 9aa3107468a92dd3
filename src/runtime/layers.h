/* Image layers and named volumes in the sandbox's root (layers.c): what the builder
 * accepts of them, the read-only layer mounts and overlay lower lists, the volume binds. */
#ifndef AGENTCELL_RT_LAYERS_H
#define AGENTCELL_RT_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "agentcell/error.h"
#include "runtime/spec.h"

#define AC_RT_LAYERS_MAX  128
#define AC_RT_VOLUMES_MAX 32

/* The builder's check of the layers, volumes and command defaults it received: absolute
 * paths without "..", at most AC_RT_LAYERS_MAX layers and AC_RT_VOLUMES_MAX volumes, no volume
 * at / or under /proc, /sys, /dev, image "oci" only with layers. AC_ERR_INVALID. */
int ac_layers_check(const ac_rt_spec_t *spec, ac_error_t **err);
/* The number of layers in spec (0 for NULL). */
size_t ac_layers_count(const ac_rt_spec_t *spec);
/* A detached clone of the tree at src (recursive), idmapped through userns_fd with attrs
 * added; returns its descriptor (to move_mount), or -1. */
int ac_idmap_clone(const char *src, int userns_fd, uint64_t attrs, ac_error_t **err);
/* Mounts each layer of spec idmapped, read-only, nosuid, nodev at lower/L<i> (bottom
 * first) in lowerdir (an existing directory). */
int ac_layers_mount(const ac_rt_spec_t *spec, int userns_fd, const char *lowerdir,
		    ac_error_t **err);
/* An overlay lowerdir value relative to lowerdir, top first: "L<i>/<sub>" for every layer
 * where sub (NULL: the layer's root) is a real directory that no layer above hides (a
 * whiteout, or an opaque directory stops the list), then base (NULL: none) unless hidden.
 * An empty buf means nothing of the layers or base shows at sub. */
int ac_layers_lowerdir(size_t nlayers, const char *lowerdir, const char *sub, const char *base,
		       char *buf, size_t len, ac_error_t **err);
/* Binds each volume of spec (idmapped; read-only when asked) at its path inside root,
 * creating the path (owned by uid) where it is missing; the path is resolved inside root,
 * so an image's symlink cannot send a bind elsewhere. */
int ac_volumes_mount(const ac_rt_spec_t *spec, int userns_fd, const char *root, uid_t uid,
		     ac_error_t **err);

#endif
