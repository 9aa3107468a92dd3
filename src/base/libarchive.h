/* libarchive, loaded with dlopen (src/base/dl.h) once per process into one table for every
 * user: the tar transport of remote backends' files (src/backends/tarfiles.c) and the image
 * store's layer reader (unpack.c), layer writer (diff.c) and docker save / OCI layout
 * import and export (archive.c). */
#ifndef AGENTCELL_BASE_LIBARCHIVE_H
#define AGENTCELL_BASE_LIBARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

#include "agentcell/error.h"
#include "base/dl.h"

/* The libarchive functions agentcell calls. */
#define AC_AR_FNS(X)                                                                               \
	X(archive_read_new)                                                                        \
	X(archive_read_support_filter_gzip)                                                        \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_raw)                                                         \
	X(archive_read_support_format_tar)                                                         \
	X(archive_read_open)                                                                       \
	X(archive_read_open_fd)                                                                    \
	X(archive_read_next_header)                                                                \
	X(archive_read_data)                                                                       \
	X(archive_read_data_skip)                                                                  \
	X(archive_read_free)                                                                       \
	X(archive_filter_code)                                                                     \
	X(archive_error_string)                                                                    \
	X(archive_set_error)                                                                       \
	X(archive_write_new)                                                                       \
	X(archive_write_set_format_pax_restricted)                                                 \
	X(archive_write_set_format_raw)                                                            \
	X(archive_write_add_filter_gzip)                                                           \
	X(archive_write_set_bytes_per_block)                                                       \
	X(archive_write_set_bytes_in_last_block)                                                   \
	X(archive_write_open)                                                                      \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_header)                                                                    \
	X(archive_write_data)                                                                      \
	X(archive_write_close)                                                                     \
	X(archive_write_free)                                                                      \
	X(archive_entry_new)                                                                       \
	X(archive_entry_free)                                                                      \
	X(archive_entry_clear)                                                                     \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_size)                                                                      \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_mode)                                                                      \
	X(archive_entry_uid)                                                                       \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_nsec)                                                                \
	X(archive_entry_mtime_is_set)                                                              \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_filetype)                                                              \
	X(archive_entry_set_perm)                                                                  \
	X(archive_entry_set_uid)                                                                   \
	X(archive_entry_set_gid)                                                                   \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_symlink)                                                               \
	X(archive_entry_set_hardlink)                                                              \
	X(archive_entry_xattr_add_entry)                                                           \
	X(archive_entry_xattr_reset)                                                               \
	X(archive_entry_xattr_next)

struct ac_ar_fns {
	AC_AR_FNS(AC_DL_FIELD_)
};
/* Filled by ac_ar_load; call nothing in it before that succeeded. */
extern struct ac_ar_fns ac_ar;

/* Loads libarchive once per process (thread-safe); fails with AC_ERR_UNSUPPORTED naming
 * the Debian package when it is missing. */
int ac_ar_load(ac_error_t **err);

#endif
