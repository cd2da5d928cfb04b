/*
 * test_client_handshake.c — unit tests for cli/client_handshake.c: URL
 * parsing, the upgrade request (checked against the daemon's own request
 * parser), and every check on the server's answer. Most answer tests start
 * from one valid 101 and change one line, so each refusal is shown to come
 * from that one line.
 */

#include <sys/types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_handshake.h"
#include "handshake.h"

/* RFC 6455 §1.3 example. */
#define KEY	"dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT	"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static void
assert_str(struct hs_str s, const char *want)
{
	assert_non_null(s.p);
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.p, want, s.len);
}

/* ---------------------------------------------------------------- URL */

static struct wsc_url
url_ok(const char *s)
{
	struct wsc_url	 u;
	const char	*why = NULL;

	if (wsc_url_parse(s, &u, &why) != 0)
		fail_msg("%s refused: %s", s, why);
	return u;
}

static void
test_url_valid(void **state)
{
	struct wsc_url	u;

	(void)state;
	u = url_ok("ws://example.com");
	assert_false(u.tls);
	assert_string_equal(u.host, "example.com");
	assert_int_equal(u.port, 80);
	assert_false(u.ip);
	assert_false(u.ipv6);
	assert_str(u.path, "/");
	assert_null(u.query.p);

	u = url_ok("wss://Example.COM:8443/a/b?x=1&y=%20");
	assert_true(u.tls);
	assert_string_equal(u.host, "Example.COM");
	assert_int_equal(u.port, 8443);
	assert_str(u.path, "/a/b");
	assert_str(u.query, "?x=1&y=%20");

	u = url_ok("wss://h");
	assert_int_equal(u.port, 443);
	u = url_ok("WS://h:65535/");
	assert_false(u.tls);
	assert_int_equal(u.port, 65535);
	assert_str(u.path, "/");

	/* A query without a path gets the path "/" (§3). */
	u = url_ok("ws://h?room=1");
	assert_str(u.path, "/");
	assert_str(u.query, "?room=1");
	u = url_ok("ws://h:81?");
	assert_int_equal(u.port, 81);
	assert_str(u.query, "?");

	u = url_ok("ws://[::1]:8080/x");
	assert_string_equal(u.host, "::1");
	assert_true(u.ipv6);
	assert_true(u.ip);
	assert_int_equal(u.port, 8080);
	assert_str(u.path, "/x");

	u = url_ok("wss://[2001:db8::7]");
	assert_string_equal(u.host, "2001:db8::7");
	assert_int_equal(u.port, 443);

	u = url_ok("ws://127.0.0.1/echo");
	assert_true(u.ip);
	assert_false(u.ipv6);
	u = url_ok("ws://127.0.0.1.example/echo");
	assert_false(u.ip);
	u = url_ok("ws://my-host_1.example~/");
	assert_string_equal(u.host, "my-host_1.example~");
}

static void
test_url_invalid(void **state)
{
	static const char *const bad[] = {
		"", "http://h/", "https://h/", "ws:/h", "ws//h", "ws://", "ws:///x",
		"ws://:80/", "ws://h:/", "ws://h:0/", "ws://h:65536/", "ws://h:99999999999999999999/",
		"ws://h:8a/", "ws://h:-1/", "ws://h:80:90/", "ws://user@h/", "ws://u:p@h:80/",
		"ws://h/#frag", "ws://h#", "ws://h/a b", "ws://h/\xc3\xa9", "ws://h/a\tb",
		"ws://h/\x7f", "ws://[::1", "ws://[::1]x/", "ws://[zz]/", "ws://[]/",
		"ws://[127.0.0.1]/", "ws://[fe80::1%25eth0]/", "ws://ho$t/", "ws://h st/",
		"ws://h\xc3\xa9/",
	};
	struct wsc_url	 u;
	const char	*why;
	char		 longhost[300];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (wsc_url_parse(bad[i], &u, &why) != -1)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_non_null(why);
	}
	/* 255 bytes fit, 256 do not. */
	memcpy(longhost, "ws://", 5);
	memset(longhost + 5, 'a', 255);
	longhost[260] = '\0';
	assert_int_equal(wsc_url_parse(longhost, &u, &why), 0);
	assert_int_equal(strlen(u.host), 255);
	longhost[260] = 'a';
	longhost[261] = '\0';
	assert_int_equal(wsc_url_parse(longhost, &u, &why), -1);
}

/* ---------------------------------------------------------------- key, headers */

static void
test_make_key(void **state)
{
	static const uint8_t	zero[16];
	char			key[WSC_KEY_LEN + 1];

	(void)state;
	wsc_make_key((const uint8_t *)"the sample nonce", key);
	assert_string_equal(key, KEY);
	wsc_make_key(zero, key);
	assert_string_equal(key, "AAAAAAAAAAAAAAAAAAAAAA==");
}

static void
test_header_check(void **state)
{
	static const char *const good[] = {
		"X-Token: abc", "X-Token:abc", "Authorization: Bearer a.b.c",
		"X-Empty:", "X-Tab: a\tb", "Host: other.example:8080",
		"User-Agent: test/1", "Cookie: a=1; b=2", "X-Obs-Text: caf\xc3\xa9",
	};
	static const struct {
		const char	*line;
		const char	*why_has;	/* a word of the reason */
	} bad[] = {
		{ "NoColon", "Name: value" },
		{ ": v", "name" },
		{ "Bad Name: v", "name" },
		{ "X-A : v", "name" },
		{ "X-A: a\rb", "control" },
		{ "X-A: a\x01", "control" },
		{ "upgrade: h2c", "handshake" },
		{ "Connection: close", "handshake" },
		{ "Sec-WebSocket-Key: x", "handshake" },
		{ "sec-websocket-version: 8", "handshake" },
		{ "Sec-WebSocket-Accept: x", "response" },
		{ "Sec-WebSocket-Extensions: permessage-deflate", "extensions" },
		{ "Sec-WebSocket-Protocol: chat", "--subprotocol" },
		{ "ORIGIN: https://a.example", "--origin" },
	};
	const char	*why;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = NULL;
		if (wsc_header_check(good[i], &why) != 0)
			fail_msg("refused \"%s\": %s", good[i], why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (wsc_header_check(bad[i].line, &why) != -1)
			fail_msg("accepted \"%s\"", bad[i].line);
		assert_non_null(why);
		if (strstr(why, bad[i].why_has) == NULL)
			fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", bad[i].line, why,
			    bad[i].why_has);
	}
}

static void
test_token(void **state)
{
	(void)state;
	assert_true(wsc_token_valid("chat.v1", 7));
	assert_true(wsc_token_valid("a!#$%&'*+-.^_`|~9", 17));
	assert_false(wsc_token_valid("", 0));
	assert_false(wsc_token_valid("a b", 3));
	assert_false(wsc_token_valid("a,b", 3));
	assert_false(wsc_token_valid("a/b", 3));
	assert_false(wsc_token_valid("a\0b", 3));
}

/* ---------------------------------------------------------------- request */

static size_t
build(char *out, size_t cap, const char *url, const char *origin,
    const char *const *protos, size_t nprotos, const char *const *hdrs, size_t nhdrs,
    const char *ua)
{
	static struct wsc_url	u;
	struct wsc_request	r;

	u = url_ok(url);
	memset(&r, 0, sizeof(r));
	r.url = &u;
	r.key = KEY;
	r.origin = origin;
	r.protocols = protos;
	r.nprotocols = nprotos;
	r.headers = hdrs;
	r.nheaders = nhdrs;
	r.user_agent = ua;
	return wsc_build_request(out, cap, &r);
}

static void
test_request_exact(void **state)
{
	static const char *const	protos[] = { "chat.v2", "chat.v1" };
	static const char *const	hdrs[] = { "X-Token:  abc  ", "Cookie: a=1" };
	static const char		want[] =
	    "GET /chat?room=1 HTTP/1.1\r\n"
	    "Host: example.com:8080\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: " KEY "\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Origin: https://app.example\r\n"
	    "Sec-WebSocket-Protocol: chat.v2, chat.v1\r\n"
	    "User-Agent: test/1\r\n"
	    "X-Token: abc\r\n"
	    "Cookie: a=1\r\n"
	    "\r\n";
	char				buf[2048];
	size_t				len;

	(void)state;
	len = build(buf, sizeof(buf), "ws://example.com:8080/chat?room=1",
	    "https://app.example", protos, 2, hdrs, 2, "test/1");
	assert_int_equal(len, sizeof(want) - 1);
	assert_string_equal(buf, want);

	/* Minimal: no origin, protocols, headers or user agent. */
	len = build(buf, sizeof(buf), "ws://h", NULL, NULL, 0, NULL, 0, NULL);
	assert_string_equal(buf, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: " KEY "\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n");
	assert_int_equal(len, strlen(buf));
}

static void
test_request_host(void **state)
{
	static const char *const	host[] = { "Host: other.example" };
	static const char *const	ua[] = { "user-agent: mine/2" };
	char				buf[2048];

	(void)state;
	/* §4.1 item 4: the port only when it is not the default. */
	assert_true(build(buf, sizeof(buf), "ws://h:80/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: h\r\n"));
	assert_true(build(buf, sizeof(buf), "wss://h:443/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: h\r\n"));
	assert_true(build(buf, sizeof(buf), "ws://h:443/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: h:443\r\n"));
	assert_true(build(buf, sizeof(buf), "wss://h:80/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: h:80\r\n"));
	assert_true(build(buf, sizeof(buf), "ws://[::1]:8080/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: [::1]:8080\r\n"));
	assert_true(build(buf, sizeof(buf), "ws://[::1]/", NULL, NULL, 0, NULL, 0, NULL) > 0);
	assert_non_null(strstr(buf, "\r\nHost: [::1]\r\n"));

	/* An extra Host or User-Agent replaces ours: one of each. */
	assert_true(build(buf, sizeof(buf), "ws://h:81/", NULL, NULL, 0, host, 1, "ua/1") > 0);
	assert_null(strstr(buf, "Host: h"));
	assert_non_null(strstr(buf, "\r\nHost: other.example\r\n"));
	assert_non_null(strstr(buf, "\r\nUser-Agent: ua/1\r\n"));
	assert_true(build(buf, sizeof(buf), "ws://h/", NULL, NULL, 0, ua, 1, "ua/1") > 0);
	assert_null(strstr(buf, "ua/1"));
	assert_non_null(strstr(buf, "\r\nuser-agent: mine/2\r\n"));
}

static void
test_request_cap_and_refusals(void **state)
{
	static const char *const	bad_proto[] = { "chat", "a b" };
	static const char *const	bad_hdr[] = { "X-A: a\r\nX-B: b" };
	char				buf[2048];
	size_t				len, cap;

	(void)state;
	len = build(buf, sizeof(buf), "ws://h/x", NULL, NULL, 0, NULL, 0, NULL);
	assert_true(len > 0);
	/* The NUL needs a byte: len + 1 fits, len does not, nor anything less. */
	assert_int_equal(build(buf, len + 1, "ws://h/x", NULL, NULL, 0, NULL, 0, NULL), len);
	assert_int_equal(buf[len], '\0');
	for (cap = 0; cap <= len; cap++)
		assert_int_equal(build(buf, cap, "ws://h/x", NULL, NULL, 0, NULL, 0, NULL), 0);

	/* Nothing that could split a header line gets through. */
	assert_int_equal(build(buf, sizeof(buf), "ws://h/", "https://a\r\nX: y", NULL, 0,
	    NULL, 0, NULL), 0);
	assert_int_equal(build(buf, sizeof(buf), "ws://h/", NULL, bad_proto, 2, NULL, 0,
	    NULL), 0);
	assert_int_equal(build(buf, sizeof(buf), "ws://h/", NULL, NULL, 0, bad_hdr, 1,
	    NULL), 0);
	assert_int_equal(build(buf, sizeof(buf), "ws://h/", NULL, NULL, 0, NULL, 0,
	    "ua\n"), 0);
}

/* The daemon's parser accepts what the client builds, field for field. */
static void
test_request_daemon_accepts(void **state)
{
	static const char *const	protos[] = { "a", "b.c" };
	static const char *const	hdrs[] = { "X-Token: t" };
	struct hs_request		req;
	const struct hs_header		*h;
	char				buf[2048];
	size_t				len;

	(void)state;
	len = build(buf, sizeof(buf), "ws://[::1]:9000/p/q?r=1", "http://o.example",
	    protos, 2, hdrs, 1, "wsrouted-cli/test");
	assert_int_equal(hs_head_end(buf, len), (ssize_t)len);
	assert_int_equal(hs_request_parse(buf, len, &req), 0);
	assert_str(req.path, "/p/q");
	assert_str(req.query, "r=1");
	assert_str(req.host, "[::1]:9000");
	assert_str(req.key, KEY);
	assert_str(req.origin, "http://o.example");
	assert_str(req.protocols, "a, b.c");
	assert_non_null(h = hs_request_header(&req, "X-Token"));
	assert_str(h->value, "t");
}

/* ---------------------------------------------------------------- response */

static const char *const valid101[] = {
	"HTTP/1.1 101 Switching Protocols",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Accept: " ACCEPT,
	NULL
};

/*
 * The valid 101 with the line starting with `field` replaced by `with`
 * (dropped when with is NULL), or `with` added when field is NULL; every
 * line ends with eol. Returns the length.
 */
static size_t
answer(char *buf, size_t cap, const char *field, const char *with, const char *eol)
{
	size_t	i, len = 0;

	for (i = 0; valid101[i] != NULL; i++) {
		if (field != NULL && strncmp(valid101[i], field, strlen(field)) == 0) {
			if (with != NULL)
				len += snprintf(buf + len, cap - len, "%s%s", with, eol);
			continue;
		}
		len += snprintf(buf + len, cap - len, "%s%s", valid101[i], eol);
	}
	if (field == NULL && with != NULL)
		len += snprintf(buf + len, cap - len, "%s%s", with, eol);
	len += snprintf(buf + len, cap - len, "%s", eol);
	assert_true(len < cap);
	return len;
}

static const char *const offered[] = { "chat.v2", "chat.v1" };

static enum wsc_answer
check(const char *field, const char *with, size_t noffered, struct wsc_response *res)
{
	char	buf[2048];
	size_t	len = answer(buf, sizeof(buf), field, with, "\r\n");

	assert_int_equal(hs_head_end(buf, len), (ssize_t)len);
	return wsc_response_check(buf, len, KEY, offered, noffered, res);
}

#define assert_answer(field, with, noffered, want) do {				\
	struct wsc_response	r_;						\
	enum wsc_answer		got_ = check((field), (with), (noffered), &r_);	\
	if (got_ != (want))							\
		fail_msg("%s -> %s: got %d (%s), want %d", (field) ? (field) : "+",	\
		    (with) ? (with) : "(dropped)", got_, r_.error ? r_.error : "", (want)); \
	if (got_ != WSC_ACCEPTED)						\
		assert_non_null(r_.error);					\
} while (0)

static void
test_response_valid(void **state)
{
	struct wsc_response	res;
	char			buf[2048];
	size_t			len;

	(void)state;
	assert_int_equal(check(NULL, NULL, 0, &res), WSC_ACCEPTED);
	assert_int_equal(res.status, 101);
	assert_str(res.status_line, "HTTP/1.1 101 Switching Protocols");
	assert_null(res.protocol.p);
	assert_null(res.error);

	/* What the daemon sends is accepted, with and without a subprotocol. */
	len = hs_build_101(buf, sizeof(buf), ACCEPT, "chat.v1");
	assert_true(len > 0);
	assert_int_equal(wsc_response_check(buf, len, KEY, offered, 2, &res), WSC_ACCEPTED);
	assert_str(res.protocol, "chat.v1");
	len = hs_build_101(buf, sizeof(buf), ACCEPT, NULL);
	assert_int_equal(wsc_response_check(buf, len, KEY, offered, 2, &res), WSC_ACCEPTED);
	assert_null(res.protocol.p);

	/* Bare LF line endings. */
	len = answer(buf, sizeof(buf), NULL, NULL, "\n");
	assert_int_equal(hs_head_end(buf, len), (ssize_t)len);
	assert_int_equal(wsc_response_check(buf, len, KEY, NULL, 0, &res), WSC_ACCEPTED);

	/* Case and list forms the RFC allows. */
	assert_answer("Upgrade", "UPGRADE:   WebSocket  ", 0, WSC_ACCEPTED);
	assert_answer("Connection", "connection: keep-alive, upgrade", 0, WSC_ACCEPTED);
	assert_answer("Connection", "Connection: ,UPGRADE,", 0, WSC_ACCEPTED);
	assert_answer("Sec-WebSocket-Accept", "sec-websocket-accept:" ACCEPT "\t", 0,
	    WSC_ACCEPTED);
	assert_answer("HTTP/1.1", "HTTP/1.1 101", 0, WSC_ACCEPTED);
	assert_answer("HTTP/1.1", "HTTP/1.2 101 Switching Protocols", 0, WSC_ACCEPTED);
	assert_answer(NULL, "Sec-WebSocket-Protocol: chat.v2", 2, WSC_ACCEPTED);
	assert_answer(NULL, "Sec-WebSocket-Extensions:", 0, WSC_ACCEPTED);
	assert_answer(NULL, "Server: x\x80y", 0, WSC_ACCEPTED);
	assert_answer(NULL, "Date: Mon, 01 Jan 2024 00:00:00 GMT", 0, WSC_ACCEPTED);
}

static void
test_response_refused(void **state)
{
	static const char	in403[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	static const char	in404[] = "HTTP/1.1 404\r\n\r\n";
	static const char	in200[] = "HTTP/1.0 200 OK\nServer: x\n\n";
	struct wsc_response	res;

	(void)state;
	assert_int_equal(wsc_response_check(in403, sizeof(in403) - 1, KEY, NULL, 0, &res),
	    WSC_REFUSED);
	assert_int_equal(res.status, 403);
	assert_str(res.status_line, "HTTP/1.1 403 Forbidden");
	assert_non_null(res.error);
	assert_int_equal(wsc_response_check(in404, sizeof(in404) - 1, KEY, NULL, 0, &res),
	    WSC_REFUSED);
	assert_int_equal(res.status, 404);
	assert_str(res.status_line, "HTTP/1.1 404");
	assert_int_equal(wsc_response_check(in200, sizeof(in200) - 1, KEY, NULL, 0, &res),
	    WSC_REFUSED);
	assert_int_equal(res.status, 200);
	assert_str(res.status_line, "HTTP/1.0 200 OK");
}

static void
test_response_malformed_status(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 10 Short", "HTTP/1.1 1011 Long", "HTTP/1.1 101Switching",
		"HTTP/1.1  101 Two spaces", "http/1.1 101 Switching Protocols",
		"HTTP/11 101 X", "ICY 200 OK", "HTTP/1.1 099 Low", "HTTP/1.1 600 High",
		"HTTP/1.1 abc", "", "HTTP/1.1 101 Bad\x01reason",
	};
	struct wsc_response	res;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check("HTTP/1.1", bad[i], 0, &res) != WSC_INVALID || res.status != 0)
			fail_msg("status line \"%s\" not refused as malformed", bad[i]);
	}
}

static void
test_response_invalid_101(void **state)
{
	(void)state;
	assert_answer("HTTP/1.1", "HTTP/1.0 101 Switching Protocols", 0, WSC_INVALID);
	assert_answer("HTTP/1.1", "HTTP/2.0 101 Switching Protocols", 0, WSC_INVALID);
	/* §4.1 items 2-4. */
	assert_answer("Upgrade", NULL, 0, WSC_INVALID);
	assert_answer("Upgrade", "Upgrade: h2c", 0, WSC_INVALID);
	assert_answer("Upgrade", "Upgrade: websocket, h2c", 0, WSC_INVALID);
	assert_answer("Upgrade", "Upgrade:", 0, WSC_INVALID);
	assert_answer(NULL, "Upgrade: h2c", 0, WSC_INVALID);
	assert_answer("Connection", NULL, 0, WSC_INVALID);
	assert_answer("Connection", "Connection: keep-alive", 0, WSC_INVALID);
	assert_answer("Connection", "Connection: upgraded", 0, WSC_INVALID);
	assert_answer("Sec-WebSocket-Accept", NULL, 0, WSC_INVALID);
	assert_answer("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: "
	    "s3pPLMBiTxaQ9kYGzzhZRbK+xOO=", 0, WSC_INVALID);
	assert_answer("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: ", 0, WSC_INVALID);
	assert_answer("Sec-WebSocket-Accept", "Sec-WebSocket-Accept: " ACCEPT "x", 0,
	    WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Accept: " ACCEPT, 0, WSC_INVALID);
	/* §4.1 items 5-6: only what was offered. */
	assert_answer(NULL, "Sec-WebSocket-Extensions: permessage-deflate", 0, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Extensions: , x", 0, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol: chat.v1", 0, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol: chat.v3", 2, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol: Chat.v1", 2, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol: chat.v2, chat.v1", 2, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol:", 2, WSC_INVALID);
	assert_answer(NULL, "Sec-WebSocket-Protocol: chat.v2\r\nSec-WebSocket-Protocol: chat.v2",
	    2, WSC_INVALID);
	/* Header syntax. */
	assert_answer(NULL, " folded", 0, WSC_INVALID);
	assert_answer(NULL, "NoColon", 0, WSC_INVALID);
	assert_answer(NULL, "Bad Name: x", 0, WSC_INVALID);
	assert_answer(NULL, "X-A: a\rb", 0, WSC_INVALID);
	assert_answer(NULL, "X-A: a\x7f", 0, WSC_INVALID);
	assert_answer(NULL, ": empty name", 0, WSC_INVALID);
}

static void
test_response_incomplete(void **state)
{
	static const char	a[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n";
	static const char	b[] = "HTTP/1.1 101 Switching Protocols";
	static const char	c[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\nX";
	struct wsc_response	res;

	(void)state;
	assert_int_equal(wsc_response_check(a, sizeof(a) - 1, KEY, NULL, 0, &res), WSC_INVALID);
	assert_int_equal(wsc_response_check(b, sizeof(b) - 1, KEY, NULL, 0, &res), WSC_INVALID);
	assert_int_equal(wsc_response_check(b, 0, KEY, NULL, 0, &res), WSC_INVALID);
	/* Only the head is given: a byte past the empty line is a caller bug. */
	assert_int_equal(wsc_response_check(c, sizeof(c) - 1, KEY, NULL, 0, &res), WSC_INVALID);
	assert_int_equal(wsc_response_check(c, sizeof(c) - 2, KEY, NULL, 0, &res), WSC_ACCEPTED);
}

/* The whole exchange, both halves from this tree, with a fresh key. */
static void
test_handshake_flow(void **state)
{
	static const char *const	protos[] = { "x", "chat.v1" };
	static char *const		server_protos[] = { "chat.v1" };
	uint8_t				nonce[16];
	char				key[WSC_KEY_LEN + 1], accept[HS_ACCEPT_LEN + 1];
	char				req[2048], resp[1024];
	struct hs_request		hr;
	struct wsc_response		res;
	struct wsc_url			u;
	struct wsc_request		r;
	const char			*why;
	size_t				len, i;
	int				sel;

	(void)state;
	for (i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(i * 37 + 11);
	wsc_make_key(nonce, key);
	assert_int_equal(wsc_url_parse("ws://127.0.0.1:8080/echo", &u, &why), 0);
	memset(&r, 0, sizeof(r));
	r.url = &u;
	r.key = key;
	r.protocols = protos;
	r.nprotocols = 2;
	len = wsc_build_request(req, sizeof(req), &r);
	assert_int_equal(hs_request_parse(req, len, &hr), 0);
	sel = hs_select_subprotocol(hr.protocols, server_protos, 1);
	assert_int_equal(sel, 0);
	hs_accept_key(hr.key.p, hr.key.len, accept);
	len = hs_build_101(resp, sizeof(resp), accept, server_protos[sel]);
	assert_int_equal(wsc_response_check(resp, len, key, protos, 2, &res), WSC_ACCEPTED);
	assert_str(res.protocol, "chat.v1");
	/* Another key does not match this answer. */
	assert_int_equal(wsc_response_check(resp, len, KEY, protos, 2, &res), WSC_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_valid),
		cmocka_unit_test(test_url_invalid),
		cmocka_unit_test(test_make_key),
		cmocka_unit_test(test_header_check),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_request_exact),
		cmocka_unit_test(test_request_host),
		cmocka_unit_test(test_request_cap_and_refusals),
		cmocka_unit_test(test_request_daemon_accepts),
		cmocka_unit_test(test_response_valid),
		cmocka_unit_test(test_response_refused),
		cmocka_unit_test(test_response_malformed_status),
		cmocka_unit_test(test_response_invalid_101),
		cmocka_unit_test(test_response_incomplete),
		cmocka_unit_test(test_handshake_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
