/*
 * test_handshake.c — unit tests for daemon/handshake.c. Most request tests
 * start from one valid upgrade request and change one thing in it, so each
 * refusal is shown to come from that one thing.
 */

#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "handshake.h"

/* RFC 6455 §1.3 example. */
#define KEY	"dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT	"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char *const valid[] = {
	"GET /chat?room=1 HTTP/1.1",
	"Host: example.com",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: " KEY,
	"Sec-WebSocket-Version: 13",
	"Origin: https://example.com",
	"Sec-WebSocket-Protocol: chat, superchat",
	NULL
};

/*
 * Writes the valid request into buf with eol after every line, the line
 * starting with field replaced by with (dropped when with is NULL; with may
 * hold several lines separated by '\n'). A field of NULL, or one that is
 * not found, adds with as the last header instead. Returns the length.
 */
static size_t
build(char *buf, size_t cap, const char *field, const char *with,
    const char *eol)
{
	const char	*line, *nl;
	size_t		 i, len = 0;
	int		 done = 0;

	for (i = 0; valid[i] != NULL || !done; i++) {
		line = valid[i];
		if (line == NULL || (field != NULL &&
		    strncmp(line, field, strlen(field)) == 0 && !done)) {
			done = 1;
			for (line = with; line != NULL; line = nl) {
				nl = strchr(line, '\n');
				len += snprintf(buf + len, cap - len, "%.*s%s",
				    nl ? (int)(nl - line) : (int)strlen(line),
				    line, eol);
				if (nl != NULL)
					nl++;
			}
			if (valid[i] == NULL)
				break;
			continue;
		}
		len += snprintf(buf + len, cap - len, "%s%s", line, eol);
	}
	len += snprintf(buf + len, cap - len, "%s", eol);
	assert_true(len < cap);
	return len;
}

/* Parses buf, which must be exactly one head; status and error must agree. */
static int
parse_all(const char *buf, size_t len, struct hs_request *req)
{
	int	status;

	assert_int_equal(hs_head_end(buf, len), len);
	status = hs_request_parse(buf, len, req);
	assert_int_equal(req->status, status);
	if (status == 0)
		assert_null(req->error);
	else
		assert_non_null(req->error);
	return status;
}

/* The last variant's error, to tell refusals with the same status apart. */
static const char	*variant_error;

static int
variant_status(const char *field, const char *with)
{
	static char		buf[HS_HEAD_MAX];
	struct hs_request	req;
	size_t			len;
	int			status;

	len = build(buf, sizeof buf, field, with, "\r\n");
	status = parse_all(buf, len, &req);
	variant_error = req.error;
	return status;
}

/* The valid request with one line changed gets want; fails at the caller. */
#define assert_variant(field, with, want) \
	_assert_int_equal(variant_status((field), (with)), (want), \
	    __FILE__, __LINE__)

static void
assert_str(struct hs_str s, const char *want)
{
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

static void
test_valid(void **state)
{
	char			buf[1024];
	struct hs_request	req;
	size_t			len;

	(void)state;
	len = build(buf, sizeof buf, NULL, NULL, "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_str(req.method, "GET");
	assert_str(req.target, "/chat?room=1");
	assert_str(req.path, "/chat");
	assert_str(req.query, "room=1");
	assert_str(req.host, "example.com");
	assert_str(req.key, KEY);
	assert_str(req.origin, "https://example.com");
	assert_str(req.protocols, "chat, superchat");
	assert_int_equal(req.nheaders, 7);
	assert_str(req.headers[0].name, "Host");
	assert_str(req.headers[6].value, "chat, superchat");
	/* In place: every string points into buf. */
	assert_true(req.host.p > buf && req.host.p < buf + len);
	assert_true(req.key.p > buf && req.key.p + req.key.len < buf + len);
}

static void
test_valid_minimal(void **state)
{
	static const char	in[] = "GET / HTTP/1.1\r\nHost: h\r\n"
	    "Upgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n";
	struct hs_request	req;

	(void)state;
	assert_int_equal(parse_all(in, sizeof in - 1, &req), 0);
	assert_str(req.path, "/");
	assert_null(req.query.p);
	assert_null(req.origin.p);
	assert_null(req.protocols.p);
	assert_int_equal(req.nheaders, 5);
}

static void
test_target_split(void **state)
{
	char			buf[1024];
	struct hs_request	req;
	size_t			len;

	(void)state;
	len = build(buf, sizeof buf, "GET ", "GET /a/b? HTTP/1.1", "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_str(req.path, "/a/b");
	assert_non_null(req.query.p);
	assert_int_equal(req.query.len, 0);

	len = build(buf, sizeof buf, "GET ", "GET /x?a=1?b=%20 HTTP/1.1",
	    "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_str(req.path, "/x");
	assert_str(req.query, "a=1?b=%20");

	len = build(buf, sizeof buf, "GET ", "GET /?q HTTP/1.1", "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_str(req.path, "/");
	assert_str(req.query, "q");
}

static void
test_header_lookup(void **state)
{
	char			 buf[1024];
	struct hs_request	 req;
	const struct hs_header	*h;
	size_t			 len;

	(void)state;
	len = build(buf, sizeof buf, NULL, "X-A: \t first value \t\n"
	    "x-a: second\nX-Empty:\nX-Tab:a\tb", "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_non_null(h = hs_request_header(&req, "x-A"));
	assert_str(h->name, "X-A");
	assert_str(h->value, "first value");
	assert_non_null(h = hs_request_header(&req, "SEC-WEBSOCKET-KEY"));
	assert_str(h->value, KEY);
	assert_non_null(h = hs_request_header(&req, "X-Empty"));
	assert_int_equal(h->value.len, 0);
	assert_non_null(h = hs_request_header(&req, "x-tab"));
	assert_str(h->value, "a\tb");
	assert_null(hs_request_header(&req, "X"));
	assert_null(hs_request_header(&req, "X-A-B"));
	assert_null(hs_request_header(&req, "Cookie"));
}

static void
test_lf_only(void **state)
{
	char			buf[1024];
	struct hs_request	req;
	size_t			len;
	static const char	mixed[] = "GET / HTTP/1.1\nHost: h\r\n"
	    "Upgrade: websocket\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Key: " KEY "\nSec-WebSocket-Version: 13\n\r\n";

	(void)state;
	len = build(buf, sizeof buf, NULL, NULL, "\n");
	assert_int_equal(hs_head_end(buf, len), len);
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_str(req.host, "example.com");
	assert_str(req.protocols, "chat, superchat");

	assert_int_equal(parse_all(mixed, sizeof mixed - 1, &req), 0);
	assert_str(req.key, KEY);
	/* Ends in CRLF then LF. */
	assert_int_equal(hs_head_end("GET / HTTP/1.1\r\n\n", 17), 17);
}

static void
test_head_end(void **state)
{
	static const char	in[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	char			buf[256];

	(void)state;
	assert_int_equal(hs_head_end(in, sizeof in - 1), sizeof in - 1);
	/* Frame bytes that follow are not part of the head. */
	snprintf(buf, sizeof buf, "%s\x81\x85\x37\xfa\r\n\r\n", in);
	assert_int_equal(hs_head_end(buf, strlen(buf)), sizeof in - 1);
	assert_int_equal(hs_head_end("", 0), 0);
	assert_int_equal(hs_head_end(NULL, 0), 0);
	assert_int_equal(hs_head_end("GET / HTTP/1.1\r\n", 16), 0);
	/* CR CR LF and LF CR CR LF do not end a head. */
	assert_int_equal(hs_head_end("GET / HTTP/1.1\r\r\n", 17), 0);
	assert_int_equal(hs_head_end("GET / HTTP/1.1\n\r\r\nX", 19), 0);
	assert_int_equal(hs_head_end("\r\n\r\n", 4), 4);
}

/* Every proper prefix of a head needs more bytes and fails to parse. */
static void
split_head(const char *eol)
{
	char			buf[1024];
	struct hs_request	req;
	size_t			len, n;

	len = build(buf, sizeof buf, NULL, NULL, eol);
	for (n = 0; n < len; n++) {
		assert_int_equal(hs_head_end(buf, n), 0);
		assert_int_equal(hs_request_parse(buf, n, &req), 400);
	}
	assert_int_equal(hs_head_end(buf, len), len);
	assert_int_equal(hs_request_parse(buf, len, &req), 0);
}

static void
test_head_end_split(void **state)
{
	(void)state;
	split_head("\r\n");
	split_head("\n");
}

/* A valid head of exactly total bytes, padded with an X-Pad header. */
static void
padded_head(char *buf, size_t total, const char *eol)
{
	size_t	len, eollen = strlen(eol);

	len = build(buf, total, NULL, "X-Pad: ", eol);
	/* Drop the last "eol eol", pad, put them back. */
	len -= 2 * eollen;
	assert_true(len + 2 * eollen <= total);
	memset(buf + len, 'p', total - len - 2 * eollen);
	len = total - 2 * eollen;
	memcpy(buf + len, eol, eollen);
	memcpy(buf + len + eollen, eol, eollen);
}

static void
test_head_end_limit(void **state)
{
	static char		 buf[HS_HEAD_MAX + 64];
	struct hs_request	 req;
	const struct hs_header	*pad;
	const char		*eols[] = { "\r\n", "\n" };
	size_t			i;

	(void)state;
	for (i = 0; i < 2; i++) {
		/* 8192 bytes, terminator included: the largest head. */
		memset(buf, 'z', sizeof buf);
		padded_head(buf, HS_HEAD_MAX, eols[i]);
		assert_int_equal(hs_head_end(buf, HS_HEAD_MAX - 1), 0);
		assert_int_equal(hs_head_end(buf, HS_HEAD_MAX), HS_HEAD_MAX);
		assert_int_equal(hs_head_end(buf, sizeof buf), HS_HEAD_MAX);
		assert_int_equal(hs_request_parse(buf, HS_HEAD_MAX, &req), 0);
		pad = &req.headers[req.nheaders - 1];
		assert_int_equal(pad->value.len, HS_HEAD_MAX -
		    (pad->value.p - buf) - 2 * strlen(eols[i]));

		/* 8193 bytes: too large, however it arrives. */
		memset(buf, 'z', sizeof buf);
		padded_head(buf, HS_HEAD_MAX + 1, eols[i]);
		assert_int_equal(hs_head_end(buf, HS_HEAD_MAX - 1), 0);
		assert_int_equal(hs_head_end(buf, HS_HEAD_MAX), -1);
		assert_int_equal(hs_head_end(buf, HS_HEAD_MAX + 1), -1);
		assert_int_equal(hs_head_end(buf, sizeof buf), -1);
		assert_int_equal(hs_request_parse(buf, HS_HEAD_MAX + 1, &req),
		    431);
	}

	/* No line ends at all. */
	memset(buf, 'a', sizeof buf);
	assert_int_equal(hs_head_end(buf, HS_HEAD_MAX - 1), 0);
	assert_int_equal(hs_head_end(buf, HS_HEAD_MAX), -1);
	assert_int_equal(hs_head_end(buf, sizeof buf), -1);
	/* The terminator straddles the limit. */
	memset(buf, 'a', sizeof buf);
	memcpy(buf + HS_HEAD_MAX - 3, "\r\n\r\n", 4);
	assert_int_equal(hs_head_end(buf, HS_HEAD_MAX - 1), 0);
	assert_int_equal(hs_head_end(buf, HS_HEAD_MAX + 1), -1);
	memcpy(buf + HS_HEAD_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(hs_head_end(buf, HS_HEAD_MAX + 1), HS_HEAD_MAX);
}

static void
test_400_request_line(void **state)
{
	static const char *const bad[] = {
		"",
		"GET",
		"GET /chat",
		"GET /chat ",
		"GET  /chat HTTP/1.1",
		"GET /chat  HTTP/1.1",
		" GET /chat HTTP/1.1",
		"GET /chat HTTP/1.1 ",
		"GET\t/chat HTTP/1.1",
		"GET /chat\tHTTP/1.1",
		"G(T /chat HTTP/1.1",
		"G\x80T /chat HTTP/1.1",
		"GET chat HTTP/1.1",
		"GET * HTTP/1.1",
		"GET http://example.com/chat HTTP/1.1",
		"GET ws://example.com/chat HTTP/1.1",
		"GET /ch\x01t HTTP/1.1",
		"GET /ch\x7ft HTTP/1.1",
		"GET /ch\xc3\xa9t HTTP/1.1",
		"GET /chat#frag HTTP/1.1",
		"GET /chat HTTP/1.0",
		"GET /chat HTTP/2.0",
		"GET /chat HTTP/0.9",
		"GET /chat HTTP/2",
		"GET /chat HTTP/1",
		"GET /chat HTTP/1.11",
		"GET /chat HTTP/1.x",
		"GET /chat http/1.1",
		"GET /chat HTTPS/1.1",
		"GET /chat HTTP/1.1\r",
		"GET /chat HTTP/1.1\rX",
		NULL
	};
	size_t	i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		if (variant_status("GET ", bad[i]) != 400)
			fail_msg("request line %zu \"%s\" was not refused",
			    i, bad[i]);
	}
	/* RFC 9110 §2.5: a later 1.x is handled as 1.1. */
	assert_variant("GET ", "GET /chat HTTP/1.2", 0);
	assert_variant("GET ", "GET /chat HTTP/1.9", 0);
	/* Visible ASCII the path and query may hold. */
	assert_variant("GET ", "GET /a-._~!$&'()*+,;=:@%2F/?x=/?&y[]={}|^` "
	    "HTTP/1.1", 0);
}

static void
test_400_header_syntax(void **state)
{
	static const char *const bad[] = {
		"Host : example.com",		/* RFC 9112 §5.1 */
		"Host\t: example.com",
		"X-Ok: 1\nUpgrade : websocket",
		" folded",			/* obs-fold after a header */
		"\tfolded",
		"no colon here",
		": empty name",
		"Na(me: x",
		"Na me: x",
		"N\x80: x",
		"X: a\x01z",
		"X: a\x7fz",
		"X: a\rz",			/* bare CR */
		"X: az\r",
		"X: \x1b[31m",
		NULL
	};
	size_t	i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		if (variant_status("Origin:", bad[i]) != 400)
			fail_msg("header %zu \"%s\" was not refused", i,
			    bad[i]);
	}
	/* Whitespace between the request line and the first header. */
	assert_variant("Host:", " Host: example.com", 400);
	assert_string_equal(variant_error, "obsolete line folding");
	assert_variant("Origin:", "Origin: a\n\tb", 400);
	assert_string_equal(variant_error, "obsolete line folding");
	assert_variant("Origin:", "Origin : a", 400);
	assert_string_equal(variant_error, "whitespace before colon");
	/* Obs-text, HTAB, and odd but valid names are fine. */
	assert_variant("Origin:", "X-Latin: caf\xc3\xa9", 0);
	assert_variant("Origin:", "X-Tab:\tvalue\twith tabs\t", 0);
	assert_variant("Origin:", "!#$%&'*+-.^_`|~09az: x", 0);
	assert_variant("Origin:", "X-Colons: a:b::c", 0);
}

static void
test_400_host(void **state)
{
	(void)state;
	assert_variant("Host:", NULL, 400);
	assert_variant("Host:", "Host: example.com\nHost: example.com", 400);
	assert_variant("Host:", "Host: a.example\nhost: b.example", 400);
	assert_variant("Host:", "Host:", 400);
	assert_variant("Host:", "Host:   ", 400);
	assert_variant("Host:", "Host: exa mple.com", 400);
	assert_variant("Host:", "Host: example.com/chat", 400);
	assert_variant("Host:", "Host: user@example.com", 400);
	assert_variant("Host:", "Host: ex\"ample", 400);
	assert_variant("Host:", "Host: example.com:8080", 0);
	assert_variant("Host:", "Host: [::1]:8080", 0);
	assert_variant("Host:", "Host: 127.0.0.1", 0);
	assert_variant("Host:", "HOST:  example.com  ", 0);
}

static void
test_405(void **state)
{
	(void)state;
	assert_variant("GET ", "POST /chat HTTP/1.1", 405);
	assert_variant("GET ", "HEAD /chat HTTP/1.1", 405);
	assert_variant("GET ", "OPTIONS /chat HTTP/1.1", 405);
	/* RFC 9110 §9.1: methods are case-sensitive. */
	assert_variant("GET ", "get /chat HTTP/1.1", 405);
	assert_variant("GET ", "GETX /chat HTTP/1.1", 405);
}

static void
test_426(void **state)
{
	(void)state;
	assert_variant("Sec-WebSocket-Version:", NULL, 426);
	assert_variant("Sec-WebSocket-Version:", "Sec-WebSocket-Version:", 426);
	assert_variant("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8",
	    426);
	assert_variant("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 14",
	    426);
	assert_variant("Sec-WebSocket-Version:", "Sec-WebSocket-Version: 013",
	    426);
	assert_variant("Sec-WebSocket-Version:",
	    "Sec-WebSocket-Version: 13, 8", 426);
	assert_variant("Sec-WebSocket-Version:",
	    "Sec-WebSocket-Version: 13\nSec-WebSocket-Version: 8", 426);
	assert_variant("Sec-WebSocket-Version:",
	    "Sec-WebSocket-Version: 13\nSec-WebSocket-Version: 13", 426);
	assert_variant("Sec-WebSocket-Version:",
	    "sec-websocket-version:  13 ", 0);
}

static void
test_431(void **state)
{
	static char		buf[HS_HEAD_MAX + 1];
	char			extra[HS_HEAD_MAX];
	struct hs_request	req;
	size_t			len, i, n;

	(void)state;
	/* The valid request has 7 headers: pad it to 64, then 65. */
	for (n = HS_MAX_HEADERS - 7; n <= HS_MAX_HEADERS - 6; n++) {
		len = 0;
		for (i = 0; i < n; i++)
			len += snprintf(extra + len, sizeof extra - len,
			    "%sX-%zu: %zu", i ? "\n" : "", i, i);
		len = build(buf, sizeof buf, NULL, extra, "\r\n");
		if (n == HS_MAX_HEADERS - 7) {
			assert_int_equal(parse_all(buf, len, &req), 0);
			assert_int_equal(req.nheaders, HS_MAX_HEADERS);
		} else
			assert_int_equal(parse_all(buf, len, &req), 431);
	}
	/* A head longer than the limit, whatever hs_head_end said. */
	len = build(buf, sizeof buf, NULL, NULL, "\r\n");
	assert_int_equal(hs_request_parse(buf, HS_HEAD_MAX + 1, &req), 431);
}

static void
test_upgrade(void **state)
{
	(void)state;
	assert_variant("Upgrade:", NULL, 400);
	assert_variant("Upgrade:", "Upgrade:", 400);
	assert_variant("Upgrade:", "Upgrade: h2c", 400);
	assert_variant("Upgrade:", "Upgrade: websockets", 400);
	assert_variant("Upgrade:", "Upgrade: web socket", 400);
	assert_variant("Upgrade:", "Upgrade: websocket/13", 400);
	assert_variant("Upgrade:", "X-Upgrade: websocket", 400);
	assert_variant("Upgrade:", "Upgrade: WebSocket", 0);
	assert_variant("Upgrade:", "Upgrade: WEBSOCKET", 0);
	assert_variant("Upgrade:", "Upgrade: h2c, websocket", 0);
	assert_variant("Upgrade:", "Upgrade: foo\nUpgrade: websocket", 0);
}

static void
test_connection(void **state)
{
	(void)state;
	assert_variant("Connection:", NULL, 400);
	assert_variant("Connection:", "Connection:", 400);
	assert_variant("Connection:", "Connection: keep-alive", 400);
	assert_variant("Connection:", "Connection: close", 400);
	assert_variant("Connection:", "Connection: upgrades", 400);
	assert_variant("Connection:", "Connection: keep-alive upgrade", 400);
	assert_variant("Connection:", "Connection: up grade", 400);
	assert_variant("Connection:",
	    "Connection: close\nConnection: keep-alive", 400);
	assert_variant("Connection:", "Connection: upgrade", 0);
	assert_variant("Connection:", "Connection: UPGRADE", 0);
	assert_variant("Connection:", "Connection: keep-alive, Upgrade", 0);
	assert_variant("Connection:", "Connection: Upgrade,keep-alive", 0);
	assert_variant("Connection:", "Connection: , ,\tupgrade\t, ", 0);
	assert_variant("Connection:",
	    "Connection: keep-alive\nConnection: Upgrade", 0);
	assert_variant("Connection:", "connection: Upgrade\nConnection: close",
	    0);
}

static void
test_key(void **state)
{
	static const char *const bad[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",		/* 23 characters */
		"dGhlIHNhbXBsZSBub25jZQ===",		/* 25 */
		"dGhlIHNhbXBsZSBub25jZQ==A",
		"AAAAAAAAAAAAAAAAAAAA",			/* 15 bytes */
		"AAAAAAAAAAAAAAAAAAAA====",
		"AAAAAAAAAAAAAAAAAAAAAA=",
		"AAAAAAAAAAAAAAAAAAAAAAA=",		/* 17 bytes */
		"AAAAAAAAAAAAAAAAAAAAAAAA",		/* 18 bytes */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",	/* 32 */
		"dGhlIHNhbXBsZSBub25jZ===",
		"dGhlIHNhbXBsZSBub25jZQ=*",
		"dGhlIHNhbXBsZSBub25j*Q==",
		"dGhlIHNhbXBs ZSBub25jZQ=",
		"dGhlIHNhbXBsZSBub25jZQ\t=",
		"-_-_-_-_-_-_-_-_-_-_-w==",		/* base64url */
		"=GhlIHNhbXBsZSBub25jZQ==",
		"dGhlIHNhbXBsZSBub25jZQ\xc3\xa9",
		NULL
	};
	char	line[128];
	size_t	i;

	(void)state;
	assert_variant("Sec-WebSocket-Key:", NULL, 400);
	assert_variant("Sec-WebSocket-Key:",
	    "Sec-WebSocket-Key: " KEY "\nSec-WebSocket-Key: " KEY, 400);
	assert_variant("Sec-WebSocket-Key:", "Sec-WebSocket-Key: " KEY ", " KEY,
	    400);
	for (i = 0; bad[i] != NULL; i++) {
		snprintf(line, sizeof line, "Sec-WebSocket-Key: %s", bad[i]);
		if (variant_status("Sec-WebSocket-Key:", line) != 400)
			fail_msg("key %zu \"%s\" was not refused", i, bad[i]);
	}
	assert_variant("Sec-WebSocket-Key:",
	    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", 0);
	assert_variant("Sec-WebSocket-Key:",
	    "Sec-WebSocket-Key: +/+/+/+/+/+/+/+/+/+/+w==", 0);
	assert_variant("Sec-WebSocket-Key:",
	    "sec-websocket-key: \t" KEY " \t", 0);
	/* Non-zero unused bits still decode to 16 bytes (RFC 4648 §3.5). */
	assert_variant("Sec-WebSocket-Key:",
	    "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAB==", 0);
}

static void
test_400_other(void **state)
{
	static char		buf[1024];
	struct hs_request	req;
	size_t			len;

	(void)state;
	assert_variant("Origin:",
	    "Origin: https://example.com\nOrigin: https://evil.example", 400);
	assert_variant(NULL, "Transfer-Encoding: chunked", 400);
	assert_variant(NULL, "Content-Length: 5", 400);
	assert_variant(NULL, "Content-Length: 0\nContent-Length: 0", 400);
	assert_variant(NULL, "Content-Length: 0", 0);
	assert_variant("Sec-WebSocket-Protocol:", NULL, 0);

	/* The empty line must end what the caller passes. */
	len = build(buf, sizeof buf, NULL, NULL, "\r\n");
	memcpy(buf + len, "\x81\x80", 2);
	assert_int_equal(hs_request_parse(buf, len + 2, &req), 400);
	/* So must a line end. */
	assert_int_equal(hs_request_parse(buf, len - 1, &req), 400);
	assert_int_equal(hs_request_parse(buf, 0, &req), 400);
	assert_int_equal(hs_request_parse(NULL, 0, &req), 400);
}

static void
test_nul_bytes(void **state)
{
	static const char	*fields[] = { "GET ", "Host:", "Origin:" };
	char			buf[1024];
	struct hs_request	req;
	size_t			len, i;
	char			*at;

	(void)state;
	/* A NUL in the method, the target, a name and a value: all 400. */
	for (i = 0; i < 3; i++) {
		len = build(buf, sizeof buf, NULL, NULL, "\r\n");
		at = strstr(buf, fields[i]);
		at[1] = '\0';
		assert_int_equal(parse_all(buf, len, &req), 400);
		at[1] = fields[i][1];
		assert_int_equal(parse_all(buf, len, &req), 0);
		at[strlen(fields[i]) + 2] = '\0';
		assert_int_equal(parse_all(buf, len, &req), 400);
	}
}

/* Which check wins when a request is wrong in several ways. */
static void
test_check_order(void **state)
{
	static char		buf[1024];
	struct hs_request	req;
	size_t			len;

	(void)state;
	/* 405 before 426 before the upgrade headers... */
	len = snprintf(buf, sizeof buf, "POST /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 8\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 405);
	assert_str(req.method, "POST");
	assert_str(req.path, "/chat");
	len = snprintf(buf, sizeof buf, "GET /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 8\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 426);
	assert_str(req.path, "/chat");
	len = snprintf(buf, sizeof buf, "GET /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	/* ...but malformed requests and Host come first. */
	len = snprintf(buf, sizeof buf,
	    "POST /chat HTTP/1.1\r\nSec-WebSocket-Version: 8\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	len = snprintf(buf, sizeof buf,
	    "POST /chat HTTP/1.0\r\nHost: h\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	len = snprintf(buf, sizeof buf,
	    "POST /chat HTTP/1.1\r\nHost: h\r\nBad : x\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	len = snprintf(buf, sizeof buf,
	    "POST chat HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	/* Within the upgrade headers: Upgrade, Connection, then the key. */
	len = snprintf(buf, sizeof buf, "GET /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	assert_string_equal(req.error, "missing Upgrade: websocket");
	len = snprintf(buf, sizeof buf, "GET /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n"
	    "Upgrade: websocket\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	assert_string_equal(req.error, "missing Connection: Upgrade");
	len = snprintf(buf, sizeof buf, "GET /chat HTTP/1.1\r\nHost: h\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n"
	    "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	assert_string_equal(req.error, "bad Sec-WebSocket-Key");
}

/*
 * Every byte of a valid request replaced by each awkward byte: whatever the
 * answer, it is one of ours, and the sanitizers see no bad access.
 */
static void
test_mutations(void **state)
{
	static const char	subst[] = { '\0', '\r', '\n', ' ', '\t', ':',
	    ',', '=', '?', 'A', '\x7f', '\x80', '\xff' };
	char			orig[1024], buf[1024];
	struct hs_request	req;
	size_t			len, i, j;
	ssize_t			n;
	int			s;

	(void)state;
	len = build(orig, sizeof orig, NULL, NULL, "\r\n");
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof subst; j++) {
			memcpy(buf, orig, len);
			buf[i] = subst[j];
			n = hs_head_end(buf, len);
			assert_true(n >= 0 && (size_t)n <= len);
			if (n == 0)
				continue;
			s = hs_request_parse(buf, n, &req);
			assert_true(s == 0 || s == 400 || s == 405 ||
			    s == 426 || s == 431);
			assert_true((s == 0) == (req.error == NULL));
		}
	}
}

static void
test_accept_key(void **state)
{
	char	out[HS_ACCEPT_LEN + 1];

	(void)state;
	/* RFC 6455 §1.3. */
	memset(out, 'x', sizeof out);
	hs_accept_key(KEY, strlen(KEY), out);
	assert_string_equal(out, ACCEPT);
	hs_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
	assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
	/* Only key_len bytes count. */
	hs_accept_key(KEY "garbage", strlen(KEY), out);
	assert_string_equal(out, ACCEPT);
	hs_accept_key("", 0, out);
	assert_string_equal(out, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
}

static int
select_sub(const char *offered, char *const *supported, size_t n)
{
	struct hs_str	s = { offered, offered ? strlen(offered) : 0 };

	return hs_select_subprotocol(s, supported, n);
}

static void
test_select_subprotocol(void **state)
{
	char *const	sup[] = { "superchat", "chat", "v2.json" };

	(void)state;
	/* The client's order decides, not ours. */
	assert_int_equal(select_sub("chat, superchat", sup, 3), 1);
	assert_int_equal(select_sub("superchat, chat", sup, 3), 0);
	assert_int_equal(select_sub("mqtt, v2.json, chat", sup, 3), 2);
	assert_int_equal(select_sub("mqtt,chat", sup, 3), 1);
	assert_int_equal(select_sub(" \t, ,chat\t , ", sup, 3), 1);
	assert_int_equal(select_sub("v2.json", sup, 3), 2);
	/* Exact and case-sensitive. */
	assert_int_equal(select_sub("Chat", sup, 3), -1);
	assert_int_equal(select_sub("cha", sup, 3), -1);
	assert_int_equal(select_sub("chats", sup, 3), -1);
	assert_int_equal(select_sub("super chat", sup, 3), -1);
	assert_int_equal(select_sub("mqtt", sup, 3), -1);
	assert_int_equal(select_sub("", sup, 3), -1);
	assert_int_equal(select_sub(" , ", sup, 3), -1);
	assert_int_equal(select_sub(NULL, sup, 3), -1);
	assert_int_equal(select_sub("chat", sup, 0), -1);
	assert_int_equal(select_sub("chat", sup, 1), -1);
}

static int
origin_ok(const char *origin, char *const *allowed, size_t n)
{
	struct hs_str	s = { origin, origin ? strlen(origin) : 0 };

	return hs_origin_allowed(s, allowed, n);
}

static void
test_origin_allowed(void **state)
{
	char *const	allow[] = { "https://example.com",
	    "http://localhost:8080" };

	(void)state;
	assert_true(origin_ok(NULL, allow, 0));
	assert_true(origin_ok("https://evil.example", allow, 0));
	assert_false(origin_ok(NULL, allow, 2));
	assert_true(origin_ok("https://example.com", allow, 2));
	assert_true(origin_ok("HTTPS://Example.COM", allow, 2));
	assert_true(origin_ok("http://localhost:8080", allow, 2));
	assert_false(origin_ok("http://localhost:8080", allow, 1));
	assert_false(origin_ok("https://example.com.evil.example", allow, 2));
	assert_false(origin_ok("https://example.co", allow, 2));
	assert_false(origin_ok("https://example.com/", allow, 2));
	assert_false(origin_ok("http://example.com", allow, 2));
	assert_false(origin_ok("null", allow, 2));
	assert_false(origin_ok("", allow, 2));
}

/* What a built answer holds, read back the way a client would. */
struct answer {
	int		 status;
	char		 reason[64];
	const char	*body;
	size_t		 bodylen;
};

/*
 * Checks the framing of out[0..len): status line, CRLF everywhere, an empty
 * line, and a Content-Length that matches the body when there is one.
 */
static void
read_answer(const char *out, size_t len, struct answer *a)
{
	const char	*end, *p, *cl;
	int		 n = 0;

	assert_int_equal(strlen(out), len);
	assert_int_equal(sscanf(out, "HTTP/1.1 %3d %63[^\r]\r\n%n", &a->status,
	    a->reason, &n), 2);
	assert_true(n > 0);
	assert_non_null(end = strstr(out, "\r\n\r\n"));
	for (p = out; p < end + 4; p++) {
		if (*p == '\n')
			assert_true(p > out && p[-1] == '\r');
		else if (*p == '\r')
			assert_true(p[1] == '\n');
	}
	a->body = end + 4;
	a->bodylen = len - (a->body - out);
	if ((cl = strstr(out, "\r\nContent-Length: ")) != NULL && cl < end)
		assert_int_equal(strtoul(cl + 18, NULL, 10), a->bodylen);
	else
		assert_int_equal(a->bodylen, 0);
}

/* The value of a header in a built answer; fails when it is not there once. */
static const char *
answer_header(const char *out, const char *name, char *val, size_t cap)
{
	const char	*end, *p, *found = NULL;
	size_t		 nlen = strlen(name), vlen;

	end = strstr(out, "\r\n\r\n");
	for (p = strstr(out, "\r\n"); p != NULL && p < end;
	    p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, nlen) == 0 && p[2 + nlen] == ':') {
			assert_null(found);
			found = p + 2 + nlen + 1;
		}
	}
	if (found == NULL)
		return NULL;
	found += strspn(found, " ");
	vlen = strstr(found, "\r\n") - found;
	assert_true(vlen < cap);
	memcpy(val, found, vlen);
	val[vlen] = '\0';
	return val;
}

static void
test_build_101(void **state)
{
	char		out[512], v[128];
	struct answer	a;
	size_t		len;

	(void)state;
	len = hs_build_101(out, sizeof out, ACCEPT, NULL);
	assert_true(len > 0);
	read_answer(out, len, &a);
	assert_int_equal(a.status, 101);
	assert_string_equal(a.reason, "Switching Protocols");
	assert_string_equal(answer_header(out, "Upgrade", v, sizeof v),
	    "websocket");
	assert_string_equal(answer_header(out, "Connection", v, sizeof v),
	    "Upgrade");
	assert_string_equal(answer_header(out, "Sec-WebSocket-Accept", v,
	    sizeof v), ACCEPT);
	assert_null(answer_header(out, "Sec-WebSocket-Protocol", v, sizeof v));
	assert_null(answer_header(out, "Content-Length", v, sizeof v));

	len = hs_build_101(out, sizeof out, ACCEPT, "chat.v1");
	read_answer(out, len, &a);
	assert_int_equal(a.status, 101);
	assert_string_equal(answer_header(out, "Sec-WebSocket-Protocol", v,
	    sizeof v), "chat.v1");
	assert_string_equal(answer_header(out, "Sec-WebSocket-Accept", v,
	    sizeof v), ACCEPT);
}

static void
test_build_101_cap(void **state)
{
	char	out[512];
	size_t	len, cap;

	(void)state;
	len = hs_build_101(out, sizeof out, ACCEPT, "chat");
	for (cap = 0; cap <= len; cap++) {
		memset(out, '#', sizeof out);
		assert_int_equal(hs_build_101(out, cap, ACCEPT, "chat"), 0);
		/* Nothing is written past cap. */
		assert_true(out[cap] == '#');
	}
	assert_int_equal(hs_build_101(out, len + 1, ACCEPT, "chat"), len);
	assert_int_equal(out[len], '\0');
}

static void
test_build_101_refuses(void **state)
{
	char	out[512];

	(void)state;
	/* hs_accept_key's answer when libcrypto failed. */
	assert_int_equal(hs_build_101(out, sizeof out, "", NULL), 0);
	assert_int_equal(hs_build_101(out, sizeof out, ACCEPT "A", NULL), 0);
	assert_int_equal(hs_build_101(out, sizeof out,
	    "s3pPLMBiTxaQ9kYGzzhZRbK+xO=", NULL), 0);
	assert_int_equal(hs_build_101(out, sizeof out,
	    "s3pPLMBiTxaQ9kYGzzhZRbK\r\nxO=", NULL), 0);
	assert_int_equal(hs_build_101(out, sizeof out, ACCEPT,
	    "chat\r\nSet-Cookie: x=y"), 0);
	assert_int_equal(hs_build_101(out, sizeof out, ACCEPT, "a b"), 0);
	assert_int_equal(hs_build_101(out, sizeof out, ACCEPT, ""), 0);
}

static void
test_build_error(void **state)
{
	static const int	statuses[] = { 400, 403, 404, 405, 408, 426,
	    431, 500, 503 };
	char			out[512], v[128], body[128];
	struct answer		a;
	size_t			i, len;
	int			st;

	(void)state;
	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		st = statuses[i];
		len = hs_build_error(out, sizeof out, st, NULL);
		assert_true(len > 0);
		read_answer(out, len, &a);
		assert_int_equal(a.status, st);
		assert_string_equal(a.reason, hs_status_reason(st));
		snprintf(body, sizeof body, "%d %s\n", st,
		    hs_status_reason(st));
		assert_int_equal(a.bodylen, strlen(body));
		assert_memory_equal(a.body, body, a.bodylen);
		assert_string_equal(answer_header(out, "Content-Type", v,
		    sizeof v), "text/plain");
		assert_non_null(answer_header(out, "Content-Length", v,
		    sizeof v));
		if (st == 426) {
			assert_string_equal(answer_header(out,
			    "Sec-WebSocket-Version", v, sizeof v), "13");
			assert_string_equal(answer_header(out, "Upgrade", v,
			    sizeof v), "websocket");
			assert_string_equal(answer_header(out, "Connection", v,
			    sizeof v), "Upgrade, close");
		} else {
			assert_null(answer_header(out, "Sec-WebSocket-Version",
			    v, sizeof v));
			assert_null(answer_header(out, "Upgrade", v, sizeof v));
			assert_string_equal(answer_header(out, "Connection", v,
			    sizeof v), "close");
		}
		if (st == 405)
			assert_string_equal(answer_header(out, "Allow", v,
			    sizeof v), "GET");
		else
			assert_null(answer_header(out, "Allow", v, sizeof v));
	}
}

static void
test_build_error_detail(void **state)
{
	char		out[512];
	struct answer	a;
	size_t		len;

	(void)state;
	len = hs_build_error(out, sizeof out, 404, "no route for this path");
	read_answer(out, len, &a);
	assert_int_equal(a.status, 404);
	assert_string_equal(a.body, "404 Not Found: no route for this path\n");

	/* The body stays one line. */
	len = hs_build_error(out, sizeof out, 400, "bad\r\nX-Evil: 1\x7f");
	read_answer(out, len, &a);
	assert_string_equal(a.body, "400 Bad Request: bad??X-Evil: 1?\n");

	len = hs_build_error(out, sizeof out, 503, "");
	read_answer(out, len, &a);
	assert_string_equal(a.body, "503 Service Unavailable\n");

	/* What the parser said goes straight into the answer. */
	len = hs_build_error(out, sizeof out, 426,
	    "unsupported Sec-WebSocket-Version");
	read_answer(out, len, &a);
	assert_string_equal(a.body,
	    "426 Upgrade Required: unsupported Sec-WebSocket-Version\n");
}

static void
test_build_error_cap(void **state)
{
	char	out[512];
	size_t	len, cap;

	(void)state;
	len = hs_build_error(out, sizeof out, 426, "detail");
	for (cap = 0; cap <= len; cap++) {
		memset(out, '#', sizeof out);
		assert_int_equal(hs_build_error(out, cap, 426, "detail"), 0);
		assert_true(out[cap] == '#');
	}
	assert_int_equal(hs_build_error(out, len + 1, 426, "detail"), len);

	/* Statuses we do not know or that are not errors. */
	assert_int_equal(hs_build_error(out, sizeof out, 418, NULL), 0);
	assert_int_equal(hs_build_error(out, sizeof out, 101, NULL), 0);
	assert_int_equal(hs_build_error(out, sizeof out, 200, NULL), 0);
	assert_int_equal(hs_build_error(out, sizeof out, 0, NULL), 0);
	assert_int_equal(hs_build_error(out, sizeof out, -400, NULL), 0);
	assert_int_equal(hs_build_error(out, sizeof out, 4000, NULL), 0);
}

static void
test_status_reason(void **state)
{
	(void)state;
	assert_string_equal(hs_status_reason(101), "Switching Protocols");
	assert_string_equal(hs_status_reason(400), "Bad Request");
	assert_string_equal(hs_status_reason(403), "Forbidden");
	assert_string_equal(hs_status_reason(404), "Not Found");
	assert_string_equal(hs_status_reason(405), "Method Not Allowed");
	assert_string_equal(hs_status_reason(408), "Request Timeout");
	assert_string_equal(hs_status_reason(426), "Upgrade Required");
	assert_string_equal(hs_status_reason(431),
	    "Request Header Fields Too Large");
	assert_string_equal(hs_status_reason(500), "Internal Server Error");
	assert_string_equal(hs_status_reason(503), "Service Unavailable");
	assert_null(hs_status_reason(200));
	assert_null(hs_status_reason(0));
}

/*
 * The daemon's path through the module: parse, check the origin, pick a
 * subprotocol, answer 101, or 403 for an origin not on the list.
 */
static void
test_handshake_flow(void **state)
{
	char *const		 allow[] = { "https://example.com" };
	char *const		 other[] = { "https://other.example" };
	char *const		 sup[] = { "superchat", "chat" };
	char			 buf[1024], acc[HS_ACCEPT_LEN + 1], out[512];
	char			 v[128];
	struct hs_request	 req;
	struct answer		 a;
	size_t			 len;
	int			 i;

	(void)state;
	len = build(buf, sizeof buf, NULL, NULL, "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_true(hs_origin_allowed(req.origin, allow, 1));
	i = hs_select_subprotocol(req.protocols, sup, 2);
	assert_int_equal(i, 1);
	hs_accept_key(req.key.p, req.key.len, acc);
	len = hs_build_101(out, sizeof out, acc, sup[i]);
	read_answer(out, len, &a);
	assert_int_equal(a.status, 101);
	assert_string_equal(answer_header(out, "Sec-WebSocket-Accept", v,
	    sizeof v), ACCEPT);
	assert_string_equal(answer_header(out, "Sec-WebSocket-Protocol", v,
	    sizeof v), "chat");

	/* 403: the same request, another allowlist. */
	assert_false(hs_origin_allowed(req.origin, other, 1));
	len = hs_build_error(out, sizeof out, 403, "origin not allowed");
	read_answer(out, len, &a);
	assert_int_equal(a.status, 403);
	assert_string_equal(a.body, "403 Forbidden: origin not allowed\n");

	/* 403: no Origin at all, with an allowlist. */
	len = build(buf, sizeof buf, "Origin:", NULL, "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 0);
	assert_false(hs_origin_allowed(req.origin, allow, 1));
	assert_true(hs_origin_allowed(req.origin, allow, 0));

	/* A refused request's error becomes the answer's detail. */
	len = build(buf, sizeof buf, "Sec-WebSocket-Key:", NULL, "\r\n");
	assert_int_equal(parse_all(buf, len, &req), 400);
	len = hs_build_error(out, sizeof out, req.status, req.error);
	read_answer(out, len, &a);
	assert_int_equal(a.status, 400);
	assert_string_equal(a.body,
	    "400 Bad Request: missing Sec-WebSocket-Key\n");
}

/*
 * The checks find their headers by name: any case of the name counts, a
 * name of the same length that differs does not (the look-up compares
 * lengths first), and a list-valued header is read on every line.
 */
static void
test_known_headers(void **state)
{
	(void)state;
	assert_variant("Sec-WebSocket-Key:", "sec-websocket-key: " KEY, 0);
	assert_variant("Sec-WebSocket-Key:", "SEC-WEBSOCKET-KEY: " KEY, 0);
	assert_variant("Sec-WebSocket-Version:", "sec-websocket-VERSION: 13", 0);
	assert_variant("Host:", "HOST: example.com", 0);
	assert_variant("Upgrade:", "upgrade: WebSocket", 0);
	/* Same length as a known name, one letter off: not it. */
	assert_variant("Sec-WebSocket-Key:", "Sec-WebSocket-Kez: " KEY, 400);
	assert_string_equal(variant_error, "missing Sec-WebSocket-Key");
	assert_variant("Host:", "Hosx: example.com", 400);
	assert_string_equal(variant_error, "missing Host");
	assert_variant(NULL, "Transfer-Encodinx: chunked", 0);
	assert_variant(NULL, "TRANSFER-ENCODING: chunked", 400);
	assert_variant(NULL, "transfer-encoding: chunked", 400);
	assert_variant(NULL, "Xonnection: close", 0);
	/* Both names of length 17, each counted as itself. */
	assert_variant("Sec-WebSocket-Key:",
	    "Transfer-Encoding: chunked\nSec-WebSocket-Key: " KEY, 400);
	assert_string_equal(variant_error, "request body not allowed");
	assert_variant("Sec-WebSocket-Key:",
	    "Sec-WebSocket-Key: " KEY "\nsec-websocket-key: " KEY, 400);
	assert_string_equal(variant_error, "duplicate Sec-WebSocket-Key");
	/* A list on several lines, the token on a later one. */
	assert_variant("Upgrade:", "Upgrade: h2c\nX-Other: 1\nUPGRADE: websocket", 0);
	assert_variant("Upgrade:", "X-Upgrade: websocket", 400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_valid_minimal),
		cmocka_unit_test(test_target_split),
		cmocka_unit_test(test_header_lookup),
		cmocka_unit_test(test_known_headers),
		cmocka_unit_test(test_lf_only),
		cmocka_unit_test(test_head_end),
		cmocka_unit_test(test_head_end_split),
		cmocka_unit_test(test_head_end_limit),
		cmocka_unit_test(test_400_request_line),
		cmocka_unit_test(test_400_header_syntax),
		cmocka_unit_test(test_400_host),
		cmocka_unit_test(test_405),
		cmocka_unit_test(test_426),
		cmocka_unit_test(test_431),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_connection),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_400_other),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_check_order),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_select_subprotocol),
		cmocka_unit_test(test_origin_allowed),
		cmocka_unit_test(test_build_101),
		cmocka_unit_test(test_build_101_cap),
		cmocka_unit_test(test_build_101_refuses),
		cmocka_unit_test(test_build_error),
		cmocka_unit_test(test_build_error_detail),
		cmocka_unit_test(test_build_error_cap),
		cmocka_unit_test(test_status_reason),
		cmocka_unit_test(test_handshake_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
