/*
 * fuzz_forwarded.c — the client address behind trusted proxies: Forwarded,
 * X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, and the trusted_proxies
 * CIDR parser and matcher they are checked against.
 *
 * Input: the first line is a trusted_proxies list (comma-separated CIDRs,
 * the ones that do not parse are skipped); every further line is one header
 * "Name: value". Each name and value is copied into its own exactly-sized
 * allocation, so a read past a header's length is an ASan error rather than
 * a silent read of the next line. Headers are fed straight to fwd_resolve
 * (not through the handshake parser) so the fuzzer also reaches bytes the
 * handshake would refuse: the parser must not depend on that filtering.
 *
 * Besides "no crash": a parsed CIDR contains its own network address (also
 * as an IPv4-mapped IPv6 peer), and has no host bits; the result is the same
 * twice; a found address is a canonical IP literal with an optional port;
 * proto is "" or one of the four schemes; a source is named when found.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "forwarded.h"

#define MAX_CIDRS	16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
dup_exact(const uint8_t *p, size_t len)
{
	char	*s = malloc(len ? len : 1);

	if (s == NULL)
		abort();
	memcpy(s, p, len);
	return s;
}

static void
check_cidr(const struct config_cidr *c)
{
	uint8_t		v6[16] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	unsigned	max = c->family == AF_INET ? 32 : 128, i;

	if ((c->family != AF_INET && c->family != AF_INET6) || c->prefix > max)
		abort();
	for (i = c->prefix; i < max; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			abort();
	if (!config_cidr_match(c, 1, c->family, c->addr))
		abort();
	if (c->family == AF_INET) {
		memcpy(v6 + 12, c->addr, 4);
		if (!config_cidr_match(c, 1, AF_INET6, v6))
			abort();
	}
}

/* "a.b.c.d", "a.b.c.d:port", "v6", "[v6]:port", canonical as inet_ntop writes it. */
static void
check_addr(const char *a)
{
	char		ip[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
	uint8_t		bin[16];
	const char	*end, *colon;
	size_t		len;
	int		family;

	if (a[0] == '[') {
		if ((end = strchr(a, ']')) == NULL || end[1] != ':' || end[2] == '\0')
			abort();
		len = (size_t)(end - a - 1);
		memcpy(ip, a + 1, len < sizeof(ip) ? len : 0);
		family = AF_INET6;
	} else if ((colon = strchr(a, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		len = (size_t)(colon - a);
		memcpy(ip, a, len < sizeof(ip) ? len : 0);
		family = AF_INET;
	} else {
		len = strlen(a);
		memcpy(ip, a, len < sizeof(ip) ? len : 0);
		family = colon != NULL ? AF_INET6 : AF_INET;
	}
	if (len == 0 || len >= sizeof(ip))
		abort();
	ip[len] = '\0';
	if (inet_pton(family, ip, bin) != 1 || inet_ntop(family, bin, canon, sizeof(canon)) == NULL ||
	    strcmp(ip, canon) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	*const protos[] = { "", "http", "https", "ws", "wss" };
	struct config_cidr	 cidrs[MAX_CIDRS];
	struct hs_request	*req;
	struct fwd_result	 r1, r2;
	const uint8_t		*p = data, *end = data + size, *nl, *c, *colon;
	size_t			 ncidrs = 0, i;
	bool			 f1, f2, proto_ok = false;

	if (size > 8192)
		return 0;
	/* Line 1: trusted_proxies, split like set_trusted_proxies does. */
	nl = memchr(p, '\n', size);
	if (nl == NULL)
		nl = end;
	while (p < nl) {
		if ((c = memchr(p, ',', (size_t)(nl - p))) == NULL)
			c = nl;
		if (ncidrs < MAX_CIDRS && config_parse_cidr((const char *)p, (size_t)(c - p),
		    &cidrs[ncidrs]) == 0)
			check_cidr(&cidrs[ncidrs++]);
		p = c < nl ? c + 1 : nl;
	}
	p = nl < end ? nl + 1 : end;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	while (p < end && req->nheaders < HS_MAX_HEADERS) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((colon = memchr(p, ':', (size_t)(nl - p))) != NULL) {
			struct hs_header *h = &req->headers[req->nheaders++];

			h->name.p = dup_exact(p, (size_t)(colon - p));
			h->name.len = (size_t)(colon - p);
			c = colon + 1;
			while (c < nl && (*c == ' ' || *c == '\t'))	/* leading OWS, as the handshake strips */
				c++;
			h->value.p = dup_exact(c, (size_t)(nl - c));
			h->value.len = (size_t)(nl - c);
		}
		p = nl < end ? nl + 1 : end;
	}

	f1 = fwd_resolve(req, cidrs, ncidrs, &r1);
	f2 = fwd_resolve(req, cidrs, ncidrs, &r2);
	if (f1 != f2 || memcmp(r1.addr, r2.addr, sizeof(r1.addr)) != 0 ||
	    memcmp(r1.proto, r2.proto, sizeof(r1.proto)) != 0 || r1.source != r2.source)
		abort();
	if (memchr(r1.addr, '\0', sizeof(r1.addr)) == NULL ||
	    memchr(r1.proto, '\0', sizeof(r1.proto)) == NULL)
		abort();
	for (i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		proto_ok |= strcmp(r1.proto, protos[i]) == 0;
	if (!proto_ok)
		abort();
	if (f1) {
		if (r1.source == NULL)
			abort();
		check_addr(r1.addr);
	} else if (r1.addr[0] != '\0')
		abort();

	for (i = 0; i < req->nheaders; i++) {
		free((void *)req->headers[i].name.p);
		free((void *)req->headers[i].value.p);
	}
	free(req);
	return 0;
}
