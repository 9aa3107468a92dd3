/* Unix stream sockets at paths of any length (see sock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "runtime/sock.h"

int ac_sock_addr(const char *path, struct sockaddr_un *sa, int *dirfd_out, ac_error_t **err)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd_out = -1;
	if (strlen(path) < sizeof(sa->sun_path)) {
		snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
		return 0;
	}
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir = strndup(path, slash ? (size_t)(slash - path) : 0);
	AC_ANALYZER_OWNED(dir);
	int fd = open(dir && *dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot open %s", dir);
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", fd,
		 slash ? slash + 1 : path);
	*dirfd_out = fd;
	return 0;
}

int ac_sock_listen(const char *path, ac_error_t **err)
{
	struct sockaddr_un sa;
	_cleanup_close_ int dfd = -1;
	if (ac_sock_addr(path, &sa, &dfd, err) < 0)
		return -1;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "socket");
	unlink(path);
	mode_t old = umask(077);
	int r = bind(s, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(s, 512) < 0) {
		close(s);
		return ac_error_set(err, AC_ERR_INTERNAL, errno, "cannot listen on %s", path);
	}
	return s;
}
