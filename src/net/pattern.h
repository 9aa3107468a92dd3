/* Host names and IP literals as the network layer takes them (policy.c): shared by the
 * policy and the secret bindings (secrets.c) so that both accept and spell a host the same
 * way. Private to src/net/. */
#ifndef AGENTCELL_NET_PATTERN_H
#define AGENTCELL_NET_PATTERN_H

#include <stddef.h>

/* Longest normalised host: a DNS name (253) or an IPv6 literal (INET6_ADDRSTRLEN). */
#define AC_NET_HOST_MAX 256

/* host is a DNS name (labels of [A-Za-z0-9_-], no wildcard, no port) or an IP literal
 * (IPv6 optionally in brackets). NULL and out := its normal form (lower case, no trailing
 * dot, IPv6 without brackets as inet_ntop spells it); else a static reason and out is "". */
const char *ac_net_host_normalize(const char *host, char out[AC_NET_HOST_MAX]);

#endif
