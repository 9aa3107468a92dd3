/* The HTTP API server (src/api/server.c), agentkernel-compatible. */
#ifndef AGENTCELL_SERVER_H
#define AGENTCELL_SERVER_H

#include <stdbool.h>

#include "agentcell/error.h"

typedef struct ac_server ac_server_t;
struct ac_api;

typedef struct ac_server_opts {
	const char *host;	 /* default 127.0.0.1 */
	unsigned port;		 /* 0: any free port (see ac_server_port) */
	const char *socket_path; /* a unix socket instead of host:port */
	bool verbose;		 /* libmicrohttpd's own errors on stderr */
	unsigned idle_timeout;	 /* seconds a connection may send or read nothing (0: 30) */
	unsigned per_ip_limit;	 /* connections from one address (0: 64) */
} ac_server_opts_t;

#define AC_SERVER_IDLE_TIMEOUT_S 30
#define AC_SERVER_PER_IP_LIMIT	 64

/* Listens and serves api on its own threads until ac_server_stop. Refuses (AC_ERR_PERMISSION)
 * an address other than loopback when api has no API key. Sets api->bound_host and
 * api->any_host (Host checks) from o. */
int ac_server_start(const ac_server_opts_t *o, struct ac_api *api, ac_server_t **out,
		    ac_error_t **err);
unsigned ac_server_port(const ac_server_t *srv);
/* Stops accepting, waits for the connection threads, removes the unix socket. */
void ac_server_stop(ac_server_t *srv);

#endif
