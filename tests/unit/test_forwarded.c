/*
 * test_forwarded.c — client address behind trusted proxies: Forwarded
 * (RFC 7239) > X-Forwarded-For (rightmost untrusted) > X-Real-IP, strict
 * parsing, X-Forwarded-Proto; CIDR parsing and matching.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "forwarded.h"

static struct config_cidr	trusted[3];
static size_t			ntrusted;

static int
setup(void **state)
{
	(void)state;
	assert_int_equal(config_parse_cidr("10.0.0.0/8", 10, &trusted[0]), 0);
	assert_int_equal(config_parse_cidr("127.0.0.1", 9, &trusted[1]), 0);
	assert_int_equal(config_parse_cidr("fd00::/8", 8, &trusted[2]), 0);
	ntrusted = 3;
	return 0;
}

/* Resolves with headers given as "Name", "value", …, NULL. */
static bool
resolve(struct fwd_result *out, ...)
{
	static struct hs_request	 req;
	const char			*name, *value;
	va_list				 ap;

	memset(&req, 0, sizeof(req));
	va_start(ap, out);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		req.headers[req.nheaders].name.p = name;
		req.headers[req.nheaders].name.len = strlen(name);
		req.headers[req.nheaders].value.p = value;
		req.headers[req.nheaders].value.len = strlen(value);
		req.nheaders++;
	}
	va_end(ap);
	return fwd_resolve(&req, trusted, ntrusted, out);
}

static void
test_forwarded_rfc7239_examples(void **state)
{
	struct fwd_result	r;

	(void)state;
	assert_true(resolve(&r, "Forwarded", "for=\"_gazonk\", for=192.0.2.60", NULL));
	assert_string_equal(r.addr, "192.0.2.60");
	assert_string_equal(r.source, "Forwarded");
	assert_true(resolve(&r, "Forwarded", "For=\"[2001:db8:cafe::17]:4711\"", NULL));
	assert_string_equal(r.addr, "[2001:db8:cafe::17]:4711");
	assert_true(resolve(&r, "Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43", NULL));
	assert_string_equal(r.addr, "192.0.2.60");
	assert_string_equal(r.proto, "https");
	assert_true(resolve(&r, "forwarded", "for=192.0.2.43, for=198.51.100.17", NULL));
	assert_string_equal(r.addr, "198.51.100.17");
	assert_true(resolve(&r, "Forwarded", "for=\"192.0.2.43:47011\"", NULL));
	assert_string_equal(r.addr, "192.0.2.43:47011");
}

static void
test_rightmost_untrusted(void **state)
{
	struct fwd_result	r;

	(void)state;
	/* The client may write anything on the left; our proxies append on the right. */
	assert_true(resolve(&r, "Forwarded", "for=6.6.6.6, for=198.51.100.17, for=10.1.2.3", NULL));
	assert_string_equal(r.addr, "198.51.100.17");
	assert_true(resolve(&r, "X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.0.0.2, 127.0.0.1",
	    NULL));
	assert_string_equal(r.addr, "203.0.113.9");
	assert_string_equal(r.source, "X-Forwarded-For");
	/* Several lines are one list. */
	assert_true(resolve(&r, "X-Forwarded-For", "6.6.6.6", "X-Forwarded-For",
	    "203.0.113.9, 10.0.0.2", NULL));
	assert_string_equal(r.addr, "203.0.113.9");
	/* All trusted: the leftmost is the client. */
	assert_true(resolve(&r, "X-Forwarded-For", "10.9.9.9, 127.0.0.1", NULL));
	assert_string_equal(r.addr, "10.9.9.9");
	/* IPv6, bare in X-Forwarded-For; fd00::/8 trusted. */
	assert_true(resolve(&r, "X-Forwarded-For", "2001:db8::1, fd00::5", NULL));
	assert_string_equal(r.addr, "2001:db8::1");
	/* An IPv4-mapped address matches the IPv4 entries. */
	assert_true(resolve(&r, "X-Forwarded-For", "198.51.100.1, ::ffff:10.0.0.1", NULL));
	assert_string_equal(r.addr, "198.51.100.1");
}

static void
test_precedence(void **state)
{
	struct fwd_result	r;

	(void)state;
	assert_true(resolve(&r, "X-Real-IP", "198.51.100.3", "X-Forwarded-For", "198.51.100.2",
	    "Forwarded", "for=198.51.100.1", NULL));
	assert_string_equal(r.addr, "198.51.100.1");
	assert_true(resolve(&r, "X-Real-IP", "198.51.100.3", "X-Forwarded-For", "198.51.100.2",
	    NULL));
	assert_string_equal(r.addr, "198.51.100.2");
	assert_true(resolve(&r, "X-Real-IP", "198.51.100.3", NULL));
	assert_string_equal(r.addr, "198.51.100.3");
	assert_string_equal(r.source, "X-Real-IP");
	/* An invalid Forwarded is ignored as a whole: the next header decides. */
	assert_true(resolve(&r, "Forwarded", "for=1.2.3.4;;for=5.6.7.8", "X-Forwarded-For",
	    "198.51.100.2", NULL));
	assert_string_equal(r.addr, "198.51.100.2");
	assert_false(resolve(&r, NULL));
	assert_null(r.source);
}

static void
test_unknown_keeps_the_direct_peer(void **state)
{
	struct fwd_result	r;

	(void)state;
	assert_false(resolve(&r, "Forwarded", "for=198.51.100.1, for=unknown",
	    "X-Forwarded-For", "198.51.100.2", NULL));
	assert_string_equal(r.source, "Forwarded");
	assert_false(resolve(&r, "Forwarded", "for=198.51.100.1, for=_hidden", NULL));
	assert_false(resolve(&r, "Forwarded", "for=198.51.100.1, by=10.0.0.1", NULL));
}

static void
test_invalid_headers(void **state)
{
	static const char *const bad_forwarded[] = {
		"for=", "for", "=1.2.3.4", "for=1.2.3.4;for=1.2.3.5", "for=\"1.2.3.4",
		"for=1.2.3.4 x", "for=2001:db8::1", "for=\"[2001:db8::1\"", "for=1.2.3.4:99999",
		"for=1.2.3.4:", "for=\"1.2.3.4:80:80\"", "for=999.1.1.1", "for=1.2.3",
		"for=\"[1.2.3.4]\"", "for=\"\x01\"", "for=_", "for=\"_a b\"",
	};
	static const char *const bad_xff[] = {
		"", ",", "1.2.3.4,", "1.2.3.4,,5.6.7.8", "1.2.3.4 5.6.7.8", "unknownx",
		"[2001:db8::1", "01.2.3.4x", "1.2.3.4/24", "localhost",
	};
	struct fwd_result	r;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(bad_forwarded) / sizeof(bad_forwarded[0]); i++) {
		if (resolve(&r, "Forwarded", bad_forwarded[i], NULL))
			fail_msg("accepted Forwarded: %s", bad_forwarded[i]);
		assert_null(r.source);
	}
	for (i = 0; i < sizeof(bad_xff) / sizeof(bad_xff[0]); i++) {
		if (resolve(&r, "X-Forwarded-For", bad_xff[i], NULL))
			fail_msg("accepted X-Forwarded-For: %s", bad_xff[i]);
	}
	assert_false(resolve(&r, "X-Real-IP", "1.2.3.4, 5.6.7.8", NULL));
}

static void
test_proto(void **state)
{
	struct fwd_result	r;

	(void)state;
	assert_true(resolve(&r, "X-Forwarded-For", "198.51.100.2", "X-Forwarded-Proto", "https",
	    NULL));
	assert_string_equal(r.proto, "https");
	assert_false(resolve(&r, "X-Forwarded-Proto", "http, WSS", NULL));
	assert_string_equal(r.proto, "wss");
	assert_false(resolve(&r, "X-Forwarded-Proto", "gopher", NULL));
	assert_string_equal(r.proto, "");
	/* Forwarded's proto= of the chosen element wins. */
	assert_true(resolve(&r, "Forwarded", "for=198.51.100.1;proto=http",
	    "X-Forwarded-Proto", "https", NULL));
	assert_string_equal(r.proto, "http");
}

static void
test_cidr(void **state)
{
	struct config_cidr	c;
	uint8_t			a[16];

	(void)state;
	assert_int_equal(config_parse_cidr("10.1.0.0/16", 11, &c), 0);
	assert_int_equal(c.prefix, 16);
	inet_pton(AF_INET, "10.1.255.3", a);
	assert_true(config_cidr_match(&c, 1, AF_INET, a));
	inet_pton(AF_INET, "10.2.0.1", a);
	assert_false(config_cidr_match(&c, 1, AF_INET, a));
	assert_int_equal(config_parse_cidr("10.1.0.0/12", 11, &c), -1);	/* host bits */
	assert_int_equal(config_parse_cidr("10.1.0.0/33", 11, &c), -1);
	assert_int_equal(config_parse_cidr("10.1.0.0/", 9, &c), -1);
	assert_int_equal(config_parse_cidr("0.0.0.0/0", 9, &c), 0);
	inet_pton(AF_INET, "203.0.113.1", a);
	assert_true(config_cidr_match(&c, 1, AF_INET, a));
	inet_pton(AF_INET6, "2001:db8::1", a);
	assert_false(config_cidr_match(&c, 1, AF_INET6, a));
	assert_int_equal(config_parse_cidr("2001:db8::/33", 13, &c), 0);
	inet_pton(AF_INET6, "2001:db8:7fff::1", a);
	assert_true(config_cidr_match(&c, 1, AF_INET6, a));
	inet_pton(AF_INET6, "2001:db8:8000::1", a);
	assert_false(config_cidr_match(&c, 1, AF_INET6, a));
	assert_int_equal(config_parse_cidr("2001:db8::1/129", 15, &c), -1);
	assert_int_equal(config_parse_cidr("example.com", 11, &c), -1);
}

static void
test_config_trusted_proxies(void **state)
{
	static const char ok[] = "[server]\nlisten = 127.0.0.1:1\n"
	    "trusted_proxies = 127.0.0.1, 10.0.0.0/8 , ::1, fd00::/8\n";
	static const char bad[] = "[server]\nlisten = 127.0.0.1:1\n"
	    "trusted_proxies = 127.0.0.1, 10.0.0.1/8\n";
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;

	(void)state;
	cfg = config_parse_string(ok, sizeof(ok) - 1, "t.ini", &errs);
	assert_non_null(cfg);
	assert_int_equal(cfg->ntrusted_proxies, 4);
	assert_int_equal(cfg->trusted_proxies[3].family, AF_INET6);
	assert_int_equal(cfg->trusted_proxies[3].prefix, 8);
	config_free(cfg);
	assert_null(config_parse_string(bad, sizeof(bad) - 1, "t.ini", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "t.ini:3: trusted_proxies: expected comma-separated "
	    "addresses or networks like 127.0.0.1, 10.0.0.0/8, fd00::/8 (host bits zero), "
	    "got '10.0.0.1/8'");
	config_errors_clear(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forwarded_rfc7239_examples),
		cmocka_unit_test(test_rightmost_untrusted),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_unknown_keeps_the_direct_peer),
		cmocka_unit_test(test_invalid_headers),
		cmocka_unit_test(test_proto),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_config_trusted_proxies),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
