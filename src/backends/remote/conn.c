/* The set-up both transports of remote engines share (see conn.h): http.c drives curl's
 * HTTP layer, ws.c only lets curl connect (CURLOPT_CONNECT_ONLY) and writes its own
 * Upgrade request, but both reach the server the same way. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/remote/conn.h"
#include "base/base64.h"
#include "base/io.h"
#include "base/util.h"

#define TOKEN_FILE_MAX (64u * 1024)

bool ac_remote_header_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int ac_remote_conf_check(const ac_remote_conf_t *c, const char *who, ac_error_t **err)
{
	if (!c->server || !*c->server)
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: no server URL", who);
	if (strncasecmp(c->server, "https://", 8) && strncasecmp(c->server, "http://", 7))
		return ac_error_set(err, AC_ERR_INVALID, 0,
				    "%s: server '%s' is not an http:// or https:// URL", who,
				    c->server);
	if (!ac_remote_header_safe(c->server))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: server URL has control bytes",
				    who);
	if (c->tls_server_name && *c->tls_server_name &&
	    (!ac_remote_header_safe(c->tls_server_name) || strpbrk(c->tls_server_name, ":/[]@?# ")))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: invalid tls-server-name '%s'", who,
				    c->tls_server_name);
	if (c->token && !ac_remote_header_safe(c->token))
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: the token has control bytes", who);
	for (char **h = c->headers; h && *h; h++)
		if (!ac_remote_header_safe(*h) || !strchr(*h, ':'))
			return ac_error_set(err, AC_ERR_INVALID, 0,
					    "%s: extra header '%s' is not 'Name: value'", who, *h);
	return 0;
}

/* scheme://authority/prefix -> parts; authority is host[:port] or [v6][:port], neither
 * part empty. */
static int split_url(const char *url, char **scheme, char **host, char **port, char **rest)
{
	*scheme = *host = *port = *rest = NULL;
	const char *p = strstr(url, "://");
	if (!p)
		return -1;
	const char *a = p + 3;
	const char *end = a + strcspn(a, "/?#");
	const char *hend, *pstart = NULL;
	if (*a == '[') {
		hend = memchr(a, ']', (size_t)(end - a));
		if (!hend)
			return -1;
		hend++;
		if (hend < end && *hend == ':')
			pstart = hend + 1;
		else if (hend != end)
			return -1;
	} else {
		hend = memchr(a, ':', (size_t)(end - a));
		if (hend)
			pstart = hend + 1;
		else
			hend = end;
	}
	if (hend == a || (pstart && pstart == end))
		return -1;
	*scheme = strndup(url, (size_t)(p - url));
	*host = strndup(a, (size_t)(hend - a));
	*port = pstart ? strndup(pstart, (size_t)(end - pstart)) : NULL;
	*rest = strdup(end);
	if (!*scheme || !*host || !*rest || (pstart && !*port))
		return -1;
	return 0;
}

void ac_remote_endpoint_free(ac_remote_endpoint_t *e)
{
	free(e->scheme);
	free(e->name);
	free(e->port);
	free(e->prefix);
	free(e->authority);
	if (e->connect_list)
		ac_curl.curl_slist_free_all(e->connect_list);
	memset(e, 0, sizeof(*e));
}

int ac_remote_endpoint_init(ac_remote_endpoint_t *e, const ac_remote_conf_t *c, const char *who,
			    ac_error_t **err)
{
	memset(e, 0, sizeof(*e));
	_cleanup_free_ char *host = NULL, *port = NULL, *connect_to = NULL;
	int split = split_url(c->server, &e->scheme, &host, &port, &e->prefix);
	AC_ANALYZER_OWNED(host);
	AC_ANALYZER_OWNED(port);
	if (split < 0) {
		ac_remote_endpoint_free(e);
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: server '%s' is not a URL", who,
				    c->server);
	}
	size_t pl = strlen(e->prefix);
	while (pl && e->prefix[pl - 1] == '/')
		e->prefix[--pl] = 0;
	const char *dport = port ? port : (!strcasecmp(e->scheme, "http") ? "80" : "443");
	bool rename = c->tls_server_name && *c->tls_server_name;
	e->name = strdup(rename ? c->tls_server_name : host);
	e->port = strdup(dport);
	if (asprintf(&e->authority, "%s%s%s", host, port ? ":" : "", port ? port : "") < 0)
		e->authority = NULL;
	if (!e->name || !e->port || !e->authority)
		goto oom;
	if (rename) {
		/* CONNECT_TO wants a bare IPv6 address in brackets, as the URL has it. */
		if (asprintf(&connect_to, "%s:%s:%s:%s", c->tls_server_name, dport, host, dport) <
		    0) {
			connect_to = NULL;
			goto oom;
		}
		e->connect_list = ac_curl.curl_slist_append(NULL, connect_to);
		if (!e->connect_list)
			goto oom;
	}
	return 0;
oom:
	ac_remote_endpoint_free(e);
	return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

void ac_remote_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

int ac_remote_token(const ac_remote_conf_t *c, const char *who, char **last, const char **tok,
		    ac_error_t **err)
{
	*tok = c->token && *c->token ? c->token : NULL;
	if (!c->token_file)
		return 0;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ac_error_t *rerr = NULL;
	if (ac_read_file_at(AT_FDCWD, c->token_file, TOKEN_FILE_MAX, &buf, &len, &rerr) < 0) {
		if (*last || *tok) {
			ac_error_free(rerr);
			if (*last)
				*tok = *last;
			return 0;
		}
		ac_error_set(err, rerr->kind, 0, "%s: cannot read the token file: %s", who,
			     rerr->msg);
		ac_error_free(rerr);
		return -1;
	}
	while (len && isspace((unsigned char)buf[len - 1]))
		buf[--len] = 0;
	char *t = buf;
	while (*t && isspace((unsigned char)*t))
		t++;
	if (!*t || !ac_remote_header_safe(t)) {
		bool empty = !*t;
		explicit_bzero(buf, len);
		return ac_error_set(err, AC_ERR_INVALID, 0, "%s: the token file %s is %s", who,
				    c->token_file, empty ? "empty" : "not one line of text");
	}
	if (!*last || strcmp(*last, t)) {
		char *nt = strdup(t);
		if (!nt) {
			explicit_bzero(buf, len);
			return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
		}
		ac_remote_free_secret(*last);
		*last = nt;
	}
	explicit_bzero(buf, len);
	*tok = *last;
	return 0;
}

int ac_remote_auth_header(const ac_remote_conf_t *c, const char *tok, bool basic, char **out,
			  ac_error_t **err)
{
	*out = NULL;
	if (tok) {
		if (asprintf(out, "Authorization: Bearer %s", tok) < 0) {
			*out = NULL;
			goto oom;
		}
		return 0;
	}
	if (!basic || !c->username)
		return 0;
	char *up = NULL, *b64 = NULL;
	if (asprintf(&up, "%s:%s", c->username, c->password ? c->password : "") < 0)
		goto oom;
	b64 = ac_base64_encode(up, strlen(up));
	ac_remote_free_secret(up);
	if (!b64)
		goto oom;
	if (asprintf(out, "Authorization: Basic %s", b64) < 0)
		*out = NULL;
	ac_remote_free_secret(b64);
	if (!*out)
		goto oom;
	return 0;
oom:
	return ac_error_set(err, AC_ERR_INTERNAL, ENOMEM, "out of memory");
}

static void set_blob(CURL *h, CURLoption opt, const char *pem)
{
	struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
	ac_curl.curl_easy_setopt(h, opt, &b);
}

/* One PEM item from bytes or a file (bytes win), with its type when there is one. */
static void set_pem(CURL *h, const char *data, CURLoption blob_opt, const char *file,
		    CURLoption file_opt, CURLoption type_opt)
{
	if (data)
		set_blob(h, blob_opt, data);
	else if (file)
		ac_curl.curl_easy_setopt(h, file_opt, file);
	if ((data || file) && type_opt)
		ac_curl.curl_easy_setopt(h, type_opt, "PEM");
}

void ac_remote_set_connection(CURL *h, const ac_remote_conf_t *c, const char *url,
			      const ac_remote_endpoint_t *e, long timeout_ms, char *errbuf)
{
	errbuf[0] = 0;
	ac_curl.curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	ac_curl.curl_easy_setopt(h, CURLOPT_URL, url);
	ac_curl.curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	ac_curl.curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	ac_curl.curl_easy_setopt(
	    h, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < AC_REMOTE_CONNECT_TIMEOUT_MS ? timeout_ms : AC_REMOTE_CONNECT_TIMEOUT_MS);
	ac_curl.curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_CONNECT_TO, e->connect_list);
	ac_curl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	ac_curl.curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
	set_pem(h, c->ca_data, CURLOPT_CAINFO_BLOB, c->ca_file, CURLOPT_CAINFO, 0);
	set_pem(h, c->cert_data, CURLOPT_SSLCERT_BLOB, c->cert_file, CURLOPT_SSLCERT,
		CURLOPT_SSLCERTTYPE);
	set_pem(h, c->key_data, CURLOPT_SSLKEY_BLOB, c->key_file, CURLOPT_SSLKEY,
		CURLOPT_SSLKEYTYPE);
}

const char *ac_remote_curl_detail(CURLcode cc, const char *errbuf)
{
	return errbuf && errbuf[0] ? errbuf : ac_curl.curl_easy_strerror(cc);
}

int ac_remote_curl_fail(const char *who, const char *server, CURLcode cc, const char *errbuf,
			const char *otherwise, ac_error_t **err)
{
	const char *cause;
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		cause = "cannot resolve the host name (DNS)";
		break;
	case CURLE_COULDNT_CONNECT:
		cause = "connection refused or unreachable";
		break;
	case CURLE_OPERATION_TIMEDOUT:
		cause = "timed out";
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		cause = "TLS verification of the server failed";
		break;
	case CURLE_SSL_CACERT_BADFILE:
		cause = "cannot load the certificate authority";
		break;
	case CURLE_SSL_CERTPROBLEM:
		cause = "cannot use the client certificate";
		break;
	case CURLE_SSL_CONNECT_ERROR:
		cause = "TLS handshake failed";
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		cause = "the connection was closed without an answer";
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		cause = "unsupported protocol";
		break;
	default:
		cause = otherwise;
		break;
	}
	return ac_error_set(err, AC_ERR_BACKEND, 0, "%s at %s: %s (%s)", who, server, cause,
			    ac_remote_curl_detail(cc, errbuf));
}
