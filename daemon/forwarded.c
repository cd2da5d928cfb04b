/*
 * forwarded.c — PURE. See forwarded.h. Written by hand: no Debian library
 * parses RFC 7239 / X-Forwarded-For, and the parser must be strict (its
 * input is written by the client, left of what trusted proxies append).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "forwarded.h"

#define FWD_MAX_NODES	64	/* more hops than this: the header is ignored */
#define FWD_MAX_VALUE	96

enum node_kind { NODE_NONE, NODE_IP, NODE_OPAQUE };	/* opaque: unknown, _obf, no for= */

struct node {
	enum node_kind	kind;
	int		family;
	uint8_t		addr[16];
	char		text[56];
	char		proto[8];
};

struct nodes {
	struct node	v[FWD_MAX_NODES];
	size_t		n;
};

static bool
is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool
is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* "80", at most 5 digits, 0..65535; obfuscated "_x" ports are accepted too. */
static bool
port_valid(const char *p, size_t len, unsigned *port)
{
	size_t		i;
	unsigned long	v = 0;

	*port = 0;
	if (len > 1 && p[0] == '_') {
		for (i = 1; i < len; i++)
			if (!isalnum((unsigned char)p[i]) && p[i] != '.' && p[i] != '_' && p[i] != '-')
				return false;
		return true;
	}
	if (len == 0 || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v > 65535)
		return false;
	*port = (unsigned)v;
	return true;
}

/*
 * A node: IPv4 [":" port] | "[" IPv6 "]" [":" port] | "unknown" | "_obf",
 * and (X-Forwarded-For, X-Real-IP) a bare IPv6. false: not a node.
 */
static bool
node_parse(const char *p, size_t len, bool bare_v6, struct node *n)
{
	char		 ip[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
	const char	*close, *colon;
	size_t		 iplen;
	unsigned	 port = 0;
	bool		 has_port = false, v6 = false;

	memset(n, 0, sizeof(*n));
	if (len == 7 && strncasecmp(p, "unknown", 7) == 0) {
		n->kind = NODE_OPAQUE;
		return true;
	}
	if (len > 1 && p[0] == '_') {
		if (!port_valid(p, len, &port))		/* the same alphabet */
			return false;
		n->kind = NODE_OPAQUE;
		return true;
	}
	if (len > 0 && p[0] == '[') {
		if ((close = memchr(p, ']', len)) == NULL)
			return false;
		iplen = (size_t)(close - p) - 1;
		if (iplen == 0 || iplen >= sizeof(ip))
			return false;
		memcpy(ip, p + 1, iplen);
		ip[iplen] = '\0';
		v6 = true;
		if ((size_t)(close - p) + 1 < len) {
			if (close[1] != ':' || !port_valid(close + 2, len - (size_t)(close - p) - 2, &port))
				return false;
			has_port = true;
		}
	} else {
		colon = memchr(p, ':', len);
		if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - p) - 1) != NULL) {
			if (!bare_v6)
				return false;
			colon = NULL;		/* a bare IPv6 address */
			v6 = true;
		}
		iplen = colon != NULL ? (size_t)(colon - p) : len;
		if (iplen == 0 || iplen >= sizeof(ip))
			return false;
		memcpy(ip, p, iplen);
		ip[iplen] = '\0';
		if (colon != NULL) {
			if (!port_valid(colon + 1, len - iplen - 1, &port))
				return false;
			has_port = true;
		}
	}
	if (!v6 && inet_pton(AF_INET, ip, n->addr) == 1)
		n->family = AF_INET;
	else if (v6 && inet_pton(AF_INET6, ip, n->addr) == 1)
		n->family = AF_INET6;
	else
		return false;
	inet_ntop(n->family, n->addr, canon, sizeof(canon));
	n->kind = NODE_IP;
	if (has_port && port != 0)
		snprintf(n->text, sizeof(n->text), n->family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		    canon, port);
	else
		snprintf(n->text, sizeof(n->text), "%s", canon);
	return true;
}

static bool
proto_set(char *dst, const char *p, size_t len)
{
	static const char *const known[] = { "http", "https", "ws", "wss" };
	size_t	i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strlen(known[i]) == len && strncasecmp(known[i], p, len) == 0) {
			memcpy(dst, known[i], len + 1);
			return true;
		}
	}
	return false;
}

/* token / quoted-string at *pp (unescaped into buf); false on bad syntax. */
static bool
value_parse(const char **pp, const char *end, char *buf, size_t *len)
{
	const char	*p = *pp;
	size_t		 n = 0;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && ++p == end)
				return false;
			if ((unsigned char)*p < 0x20 || *p == 0x7f || n == FWD_MAX_VALUE)
				return false;
			buf[n++] = *p;
		}
		if (p == end)
			return false;
		p++;
	} else {
		for (; p < end && is_tchar((unsigned char)*p); p++) {
			if (n == FWD_MAX_VALUE)
				return false;
			buf[n++] = *p;
		}
		if (n == 0)
			return false;
	}
	*pp = p;
	*len = n;
	return true;
}

/* One Forwarded line appended to ns; false: the header is invalid. */
static bool
forwarded_line(const char *p, size_t len, struct nodes *ns)
{
	const char	*end = p + len, *name;
	char		 val[FWD_MAX_VALUE];
	size_t		 nlen, vlen;
	struct node	*n;
	bool		 seen_for, seen_proto, seen_any;

	for (;;) {
		if (ns->n == FWD_MAX_NODES)
			return false;
		n = &ns->v[ns->n];
		memset(n, 0, sizeof(*n));
		n->kind = NODE_OPAQUE;		/* an element without for= */
		seen_for = seen_proto = seen_any = false;
		for (;;) {			/* pairs of one element */
			while (p < end && is_ows(*p))
				p++;
			if (p < end && *p != ';' && *p != ',') {
				for (name = p; p < end && is_tchar((unsigned char)*p); p++)
					/* nothing */;
				nlen = (size_t)(p - name);
				if (nlen == 0 || p == end || *p != '=')
					return false;
				p++;
				if (!value_parse(&p, end, val, &vlen))
					return false;
				seen_any = true;
				if (nlen == 3 && strncasecmp(name, "for", 3) == 0) {
					if (seen_for)
						return false;
					seen_for = true;
					if (!node_parse(val, vlen, false, n))
						return false;
				} else if (nlen == 5 && strncasecmp(name, "proto", 5) == 0) {
					if (seen_proto)
						return false;
					seen_proto = true;
					/* Any URI scheme is valid here; we only keep the ones we know. */
					proto_set(n->proto, val, vlen);
				}
				while (p < end && is_ows(*p))
					p++;
			}
			if (p == end || *p == ',')
				break;
			if (*p != ';')
				return false;
			p++;
		}
		if (seen_any)		/* a hop; without for= it hides the client */
			ns->n++;
		if (p == end)
			return true;
		p++;				/* ',' */
	}
}

/* X-Forwarded-For: comma-separated nodes (bare IPv6 allowed). */
static bool
xff_line(const char *p, size_t len, struct nodes *ns)
{
	const char	*end = p + len, *e, *s;

	for (;;) {
		while (p < end && is_ows(*p))
			p++;
		s = p;
		while (p < end && *p != ',')
			p++;
		for (e = p; e > s && is_ows(e[-1]); e--)
			/* nothing */;
		if (ns->n == FWD_MAX_NODES || e == s || !node_parse(s, (size_t)(e - s), true, &ns->v[ns->n]))
			return false;
		ns->n++;
		if (p == end)
			return true;
		p++;
	}
}

/* All lines of one header through parse; false when absent or invalid. */
static bool
collect(const struct hs_request *req, const char *name, struct nodes *ns,
    bool (*parse)(const char *, size_t, struct nodes *))
{
	size_t	i, nlen = strlen(name);
	bool	found = false;

	ns->n = 0;
	for (i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name.len != nlen ||
		    strncasecmp(req->headers[i].name.p, name, nlen) != 0)
			continue;
		found = true;
		if (!parse(req->headers[i].value.p, req->headers[i].value.len, ns))
			return false;
	}
	return found && ns->n > 0;
}

/* The rightmost node that is not a trusted proxy (the leftmost if all are). */
static const struct node *
choose(const struct nodes *ns, const struct config_cidr *trusted, size_t ntrusted)
{
	size_t	i;

	for (i = ns->n; i > 0; i--) {
		if (ns->v[i - 1].kind != NODE_IP ||
		    !config_cidr_match(trusted, ntrusted, ns->v[i - 1].family, ns->v[i - 1].addr))
			return &ns->v[i - 1];
	}
	return &ns->v[0];
}

static bool
xfp_line(const char *p, size_t len, struct nodes *ns)
{
	const char	*s, *e = p + len;

	/* The rightmost value: the one our proxy wrote. */
	for (s = e; s > p && s[-1] != ','; s--)
		/* nothing */;
	while (s < e && is_ows(*s))
		s++;
	while (e > s && is_ows(e[-1]))
		e--;
	ns->n = 1;
	memset(&ns->v[0], 0, sizeof(ns->v[0]));
	return proto_set(ns->v[0].proto, s, (size_t)(e - s));
}

bool
fwd_resolve(const struct hs_request *req, const struct config_cidr *trusted,
    size_t ntrusted, struct fwd_result *out)
{
	struct nodes		*ns;
	const struct node	*n;
	bool			 found = false;

	memset(out, 0, sizeof(*out));
	if ((ns = calloc(1, sizeof(*ns))) == NULL)
		return false;
	if (collect(req, "Forwarded", ns, forwarded_line)) {
		n = choose(ns, trusted, ntrusted);
		out->source = "Forwarded";
		memcpy(out->proto, n->proto, sizeof(out->proto));
		if (n->kind == NODE_IP) {
			memcpy(out->addr, n->text, sizeof(out->addr));
			found = true;
		}
	} else if (collect(req, "X-Forwarded-For", ns, xff_line)) {
		n = choose(ns, trusted, ntrusted);
		out->source = "X-Forwarded-For";
		if (n->kind == NODE_IP) {
			memcpy(out->addr, n->text, sizeof(out->addr));
			found = true;
		}
	} else if (collect(req, "X-Real-IP", ns, xff_line) && ns->n == 1 &&
	    ns->v[0].kind == NODE_IP) {
		out->source = "X-Real-IP";
		memcpy(out->addr, ns->v[0].text, sizeof(out->addr));
		found = true;
	}
	if (out->proto[0] == '\0' && collect(req, "X-Forwarded-Proto", ns, xfp_line))
		memcpy(out->proto, ns->v[0].proto, sizeof(out->proto));
	free(ns);
	return found;
}
