/* Drives the network proxy without a sandbox (tests/integration/test_net_proxy.sh).
 *
 *   netproxy_drive [--netns PATH] [--pidfile PATH] ORDERS.json
 *       makes the listener at 127.0.0.1:<free port> (inside the network namespace PATH
 *       when given: the sandbox's stand-in), starts the proxy with ac_net_proxy_spawn,
 *       prints "port PORT pid PID" and waits for EOF on stdin; then it closes the life
 *       pipe (the proxy must exit) and exits 0. A failed start: "error KIND: MESSAGE" on
 *       stderr, exit 3.
 *   netproxy_drive --stop PIDFILE        ac_net_proxy_stop
 *   netproxy_drive __netproxy            the proxy itself (/proc/self/exe is this tool)
 *
 * Linked with libagentcell.a (the Makefile's rule for this tool). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/proctitle.h"
#include "net/net.h"

static int listener(const char *netns)
{
	int own = -1;
	if (netns) {
		int ns = open(netns, O_RDONLY | O_CLOEXEC);
		own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ns < 0 || own < 0 || setns(ns, CLONE_NEWNET) < 0) {
			perror("netproxy_drive: netns");
			exit(2);
		}
		close(ns);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		perror("netproxy_drive: listen");
		exit(2);
	}
	if (own >= 0) {
		if (setns(own, CLONE_NEWNET) < 0) {
			perror("netproxy_drive: setns back");
			exit(2);
		}
		close(own);
	}
	return fd;
}

int main(int argc, char **argv)
{
	ac_proctitle_init(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], AC_NET_PROXY_ARG))
		return ac_net_proxy_main(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "--stop")) {
		ac_net_proxy_stop(argv[2]);
		return 0;
	}
	const char *netns = NULL, *pidfile = NULL;
	int i = 1;
	for (; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--netns"))
			netns = argv[i + 1];
		else if (!strcmp(argv[i], "--pidfile"))
			pidfile = argv[i + 1];
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: netproxy_drive [--netns PATH] [--pidfile PATH] ORDERS\n");
		return 2;
	}
	json_error_t je;
	json_t *orders = json_load_file(argv[i], 0, &je);
	if (!orders) {
		fprintf(stderr, "netproxy_drive: %s: %s\n", argv[i], je.text);
		return 2;
	}
	int lfd = listener(netns);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	int life[2];
	if (pipe2(life, O_CLOEXEC) < 0)
		return 2;
	ac_net_proxy_req_t req = {
	    .orders = orders, .listen_fd = lfd, .life_fd = life[0], .pidfile = pidfile};
	pid_t pid = 0;
	ac_error_t *err = NULL;
	int rc = ac_net_proxy_spawn(&req, &pid, &err);
	json_decref(orders);
	close(lfd);
	close(life[0]);
	if (rc < 0) {
		fprintf(stderr, "error %d: %s\n", err ? (int)err->kind : 0, err ? err->msg : "?");
		ac_error_free(err);
		return 3;
	}
	printf("port %d pid %d\n", ntohs(sa.sin_port), (int)pid);
	fflush(stdout);
	char buf[256];
	while (read(0, buf, sizeof(buf)) > 0 || errno == EINTR)
		errno = 0;
	close(life[1]);
	return 0;
}
