/*
 * client_handshake.c — PURE (+libcrypto). The client side of the RFC 6455
 * opening handshake: the URL (§3), the request (§4.1, first half) and the
 * checks on the server's answer (§4.1, second half). The server side lives in
 * daemon/handshake.c; the accept key is computed by the same hs_accept_key.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "client_handshake.h"

struct out {
	char	*p;
	size_t	 cap;
	size_t	 len;
	bool	 full;
};

static void
out_add(struct out *o, const char *s, size_t len)
{
	if (o->full || len >= o->cap - o->len) {	/* >=: keep room for the NUL */
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, len);
	o->len += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}


bool
wsc_token_valid(const char *s, size_t len)
{
	size_t	i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (!http_is_tchar((unsigned char)s[i]))
			return false;
	}
	return true;
}



/* A header value: no control characters but HTAB (RFC 9110 §5.5). */
static bool
value_valid(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (http_is_ctl((unsigned char)p[i]) && p[i] != '\t')
			return false;
	}
	return true;
}




static struct hs_str
mkstr(const char *p, size_t len)
{
	struct hs_str	s;

	s.p = p;
	s.len = len;
	return s;
}


/* Next non-empty element of a comma-separated list (RFC 9110 §5.6.1). */

/* ---------------------------------------------------------------- URL */

static bool
is_unreserved_host(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

static int
fail_why(const char **why, const char *reason)
{
	*why = reason;
	return -1;
}

int
wsc_url_parse(const char *s, struct wsc_url *u, const char **why)
{
	const char	*p, *auth, *auth_end, *host, *host_end, *port = NULL, *q;
	struct in6_addr	 a6;
	struct in_addr	 a4;
	unsigned long	 v;
	size_t		 hlen, i;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "ws://", 5) == 0) {
		auth = s + 5;
	} else if (strncasecmp(s, "wss://", 6) == 0) {
		auth = s + 6;
		u->tls = true;
	} else
		return fail_why(why, "the URL must begin with ws:// or wss://");
	if (strchr(s, '#') != NULL)
		return fail_why(why, "a WebSocket URL has no fragment (#)");

	auth_end = auth + strcspn(auth, "/?");
	if (memchr(auth, '@', auth_end - auth) != NULL)
		return fail_why(why, "user information (user@host) is not supported");

	if (*auth == '[') {
		host = auth + 1;
		if ((host_end = memchr(host, ']', auth_end - host)) == NULL)
			return fail_why(why, "missing ']' after an IPv6 address");
		p = host_end + 1;
		u->ipv6 = u->ip = true;
	} else {
		host = auth;
		host_end = memchr(host, ':', auth_end - host);
		if (host_end == NULL)
			host_end = auth_end;
		p = host_end;
	}
	if (p < auth_end) {
		if (*p != ':')
			return fail_why(why, "unexpected characters after the host");
		port = p + 1;
	}
	hlen = host_end - host;
	if (hlen == 0)
		return fail_why(why, "the URL has no host");
	if (hlen > WSC_HOST_MAX)
		return fail_why(why, "the host is too long");
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	if (u->ipv6) {
		if (inet_pton(AF_INET6, u->host, &a6) != 1)
			return fail_why(why, "invalid IPv6 address (zone IDs are not supported)");
	} else {
		for (i = 0; i < hlen; i++) {
			if (!is_unreserved_host((unsigned char)u->host[i]))
				return fail_why(why, "invalid character in the host");
		}
		u->ip = inet_pton(AF_INET, u->host, &a4) == 1;
	}

	u->port = u->tls ? 443 : 80;
	if (port != NULL) {
		if (port == auth_end)
			return fail_why(why, "empty port");
		v = 0;
		for (p = port; p < auth_end; p++) {
			if (*p < '0' || *p > '9')
				return fail_why(why, "invalid port");
			v = v * 10 + (unsigned long)(*p - '0');
			if (v > 65535)
				return fail_why(why, "port out of range (1-65535)");
		}
		if (v == 0)
			return fail_why(why, "port out of range (1-65535)");
		u->port = (uint16_t)v;
	}

	/* The resource name (§3): path, "/" if empty, then the query. */
	for (p = auth_end; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return fail_why(why, "the path or query has a space or a non-ASCII "
			    "character (percent-encode it)");
	}
	q = strchr(auth_end, '?');
	if (*auth_end == '/')
		u->path = mkstr(auth_end, q != NULL ? (size_t)(q - auth_end) : strlen(auth_end));
	else
		u->path = mkstr("/", 1);
	if (q != NULL)
		u->query = mkstr(q, strlen(q));
	return 0;
}

/* ---------------------------------------------------------------- request */

void
wsc_make_key(const uint8_t nonce[16], char key[WSC_KEY_LEN + 1])
{
	/* 16 bytes → 24 characters + NUL, exactly the size of key. */
	EVP_EncodeBlock((unsigned char *)key, nonce, 16);
}

/* Names the handshake writes itself, and the option that sets each one. */
static const struct {
	const char	*name;
	const char	*why;
} reserved[] = {
	{ "Upgrade", "Upgrade is set by the handshake" },
	{ "Connection", "Connection is set by the handshake" },
	{ "Sec-WebSocket-Key", "Sec-WebSocket-Key is set by the handshake" },
	{ "Sec-WebSocket-Version", "Sec-WebSocket-Version is set by the handshake" },
	{ "Sec-WebSocket-Accept", "Sec-WebSocket-Accept is a response header" },
	{ "Sec-WebSocket-Extensions", "no extensions are supported" },
	{ "Sec-WebSocket-Protocol", "use --subprotocol" },
	{ "Origin", "use --origin" },
};

/* Splits "Name: value"; false when there is no colon. */
static bool
header_split(const char *line, struct hs_str *name, struct hs_str *value)
{
	const char	*colon;

	if ((colon = strchr(line, ':')) == NULL)
		return false;
	*name = mkstr(line, colon - line);
	*value = http_trim_ows(colon + 1, strlen(colon + 1));
	return true;
}

int
wsc_header_check(const char *line, const char **why)
{
	struct hs_str	name, value;
	size_t		i;

	if (!header_split(line, &name, &value))
		return fail_why(why, "a header is written \"Name: value\"");
	if (!wsc_token_valid(name.p, name.len))
		return fail_why(why, "invalid header name");
	if (!value_valid(value.p, value.len))
		return fail_why(why, "control character in the header value");
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (http_str_caseeq(name, reserved[i].name))
			return fail_why(why, reserved[i].why);
	}
	return 0;
}

static bool
has_header(const struct wsc_request *req, const char *lit)
{
	struct hs_str	name, value;
	size_t		i;

	for (i = 0; i < req->nheaders; i++) {
		if (header_split(req->headers[i], &name, &value) && http_str_caseeq(name, lit))
			return true;
	}
	return false;
}

size_t
wsc_build_request(char *out, size_t cap, const struct wsc_request *req)
{
	const struct wsc_url	*u = req->url;
	struct out		 o = { out, cap, 0, false };
	struct hs_str		 name, value;
	char			 port[8];
	size_t			 i;

	if (strlen(req->key) != WSC_KEY_LEN ||
	    (req->origin != NULL && !value_valid(req->origin, strlen(req->origin))) ||
	    (req->user_agent != NULL && !value_valid(req->user_agent, strlen(req->user_agent))))
		return 0;
	for (i = 0; i < req->nprotocols; i++) {
		if (!wsc_token_valid(req->protocols[i], strlen(req->protocols[i])))
			return 0;
	}

	out_str(&o, "GET ");
	out_add(&o, u->path.p, u->path.len);
	if (u->query.p != NULL)
		out_add(&o, u->query.p, u->query.len);
	out_str(&o, " HTTP/1.1\r\n");
	if (!has_header(req, "Host")) {
		/* §4.1 item 4: the port only when it is not the scheme's default. */
		out_str(&o, "Host: ");
		out_str(&o, u->ipv6 ? "[" : "");
		out_str(&o, u->host);
		out_str(&o, u->ipv6 ? "]" : "");
		if (u->port != (u->tls ? 443 : 80)) {
			snprintf(port, sizeof(port), ":%u", (unsigned)u->port);
			out_str(&o, port);
		}
		out_str(&o, "\r\n");
	}
	out_str(&o, "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: ");
	out_str(&o, req->key);
	out_str(&o, "\r\nSec-WebSocket-Version: 13\r\n");
	if (req->origin != NULL) {
		out_str(&o, "Origin: ");
		out_str(&o, req->origin);
		out_str(&o, "\r\n");
	}
	if (req->nprotocols > 0) {
		/* One line with the list: some servers read only the first line. */
		out_str(&o, "Sec-WebSocket-Protocol: ");
		for (i = 0; i < req->nprotocols; i++) {
			out_str(&o, i > 0 ? ", " : "");
			out_str(&o, req->protocols[i]);
		}
		out_str(&o, "\r\n");
	}
	if (req->user_agent != NULL && !has_header(req, "User-Agent")) {
		out_str(&o, "User-Agent: ");
		out_str(&o, req->user_agent);
		out_str(&o, "\r\n");
	}
	for (i = 0; i < req->nheaders; i++) {
		if (!header_split(req->headers[i], &name, &value) ||
		    !wsc_token_valid(name.p, name.len) || !value_valid(value.p, value.len))
			return 0;
		out_add(&o, name.p, name.len);
		out_str(&o, ": ");
		out_add(&o, value.p, value.len);
		out_str(&o, "\r\n");
	}
	out_str(&o, "\r\n");
	if (o.full)
		return 0;
	out[o.len] = '\0';
	return o.len;
}

/* ---------------------------------------------------------------- response */

static enum wsc_answer
invalid(struct wsc_response *res, const char *why)
{
	res->error = why;
	return WSC_INVALID;
}

/* The line at *pos, without LF and one CR before it; false when none is left. */

/* "HTTP/1.1 101 Switching Protocols": RFC 9112 §4, reason phrase optional. */
static int
parse_status_line(struct hs_str l, bool *http11)
{
	const char	*p = l.p;

	if (l.len < 12 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
	    p[6] != '.' || p[7] < '0' || p[7] > '9' || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (l.len > 12 && p[12] != ' '))
		return 0;
	if (!value_valid(p, l.len))
		return 0;
	*http11 = p[5] == '1' && p[7] != '0';
	return (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
}

enum wsc_answer
wsc_response_check(const char *buf, size_t head_len, const char *key,
    const char *const *protocols, size_t nprotocols, struct wsc_response *res)
{
	char		 accept[HS_ACCEPT_LEN + 1];
	struct hs_str	 line, name, value, elem, accept_v = { NULL, 0 }, proto = { NULL, 0 };
	const char	*colon;
	size_t		 pos = 0, lpos, i, naccept = 0, nproto = 0;
	bool		 http11 = false, upgrade = false, connection = false;

	memset(res, 0, sizeof(*res));
	if (!http_next_line(buf, head_len, &pos, &line))
		return invalid(res, "incomplete response head");
	res->status_line = line;
	if ((res->status = parse_status_line(line, &http11)) == 0)
		return invalid(res, "malformed HTTP status line");
	if (res->status != 101) {
		res->error = "the server did not switch protocols";
		return WSC_REFUSED;
	}
	if (!http11)
		return invalid(res, "101 answer is not HTTP/1.1");

	for (;;) {
		if (!http_next_line(buf, head_len, &pos, &line))
			return invalid(res, "incomplete response head");
		if (line.len == 0)
			break;
		if (http_is_ows(line.p[0]))
			return invalid(res, "obsolete line folding in the response");
		if ((colon = memchr(line.p, ':', line.len)) == NULL)
			return invalid(res, "response header line without a colon");
		name = mkstr(line.p, colon - line.p);
		if (!wsc_token_valid(name.p, name.len))
			return invalid(res, "malformed response header name");
		value = http_trim_ows(colon + 1, line.len - name.len - 1);
		if (!value_valid(value.p, value.len))
			return invalid(res, "control character in a response header");

		if (http_str_caseeq(name, "Upgrade")) {
			/* §4.1: the value must be "websocket", nothing else. */
			if (!http_str_caseeq(value, "websocket"))
				return invalid(res, "Upgrade is not \"websocket\"");
			upgrade = true;
		} else if (http_str_caseeq(name, "Connection")) {
			lpos = 0;
			while (http_list_next(value, &lpos, &elem)) {
				if (http_str_caseeq(elem, "upgrade"))
					connection = true;
			}
		} else if (http_str_caseeq(name, "Sec-WebSocket-Accept")) {
			naccept++;
			accept_v = value;
		} else if (http_str_caseeq(name, "Sec-WebSocket-Protocol")) {
			nproto++;
			proto = value;
		} else if (http_str_caseeq(name, "Sec-WebSocket-Extensions")) {
			lpos = 0;
			if (http_list_next(value, &lpos, &elem))
				return invalid(res, "the server chose an extension that was not offered");
		}
	}
	if (pos != head_len)
		return invalid(res, "bytes after the end of the response head");
	if (!upgrade)
		return invalid(res, "missing Upgrade: websocket");
	if (!connection)
		return invalid(res, "missing Connection: Upgrade");
	if (naccept == 0)
		return invalid(res, "missing Sec-WebSocket-Accept");
	if (naccept > 1)
		return invalid(res, "more than one Sec-WebSocket-Accept");
	hs_accept_key(key, strlen(key), accept);
	if (accept[0] == '\0')
		return invalid(res, "cannot compute the accept key (out of memory)");
	if (!http_str_eq(accept_v, accept))
		return invalid(res, "Sec-WebSocket-Accept does not match the key");
	if (nproto > 1)
		return invalid(res, "more than one Sec-WebSocket-Protocol");
	if (nproto == 1) {
		for (i = 0; i < nprotocols; i++) {
			if (http_str_eq(proto, protocols[i]))
				break;
		}
		if (i == nprotocols)
			return invalid(res, nprotocols == 0 ?
			    "the server chose a subprotocol but none was offered" :
			    "the server chose a subprotocol that was not offered");
		res->protocol = proto;
	}
	return WSC_ACCEPTED;
}
