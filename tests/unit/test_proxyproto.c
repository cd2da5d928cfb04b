/*
 * test_proxyproto.c — the PROXY protocol parser: v1 and v2, byte-at-a-time
 * feeding, strictness, TLVs skipped but bounds-checked.
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

#include "proxyproto.h"

static const uint8_t SIG[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Feeds every prefix: NEED_MORE until the end, then the full result. */
static enum pp_status
feed(const uint8_t *buf, size_t len, size_t hdr_len, struct pp_result *out)
{
	size_t	i;

	for (i = 1; i < hdr_len; i++) {
		if (pp_parse(buf, i, out) != PP_NEED_MORE)
			fail_msg("prefix of %zu bytes was not NEED_MORE: %s", i,
			    out->error ? out->error : "ok");
	}
	return pp_parse(buf, len, out);
}

static void
test_v1(void **state)
{
	static const char	 tcp4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
	static const char	 tcp6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
	static const char	 unk[] = "PROXY UNKNOWN\r\n";
	static const char	 unk2[] = "PROXY UNKNOWN ff:: ff:: 1 2\r\nX";
	struct pp_result	 r;
	uint8_t			 a[16];

	(void)state;
	assert_int_equal(feed((const uint8_t *)tcp4, sizeof(tcp4) - 1, 45, &r), PP_OK);
	assert_int_equal(r.len, 45);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.family, AF_INET);
	inet_pton(AF_INET, "192.0.2.1", a);
	assert_memory_equal(r.src, a, 4);
	assert_int_equal(r.sport, 56324);
	assert_int_equal(feed((const uint8_t *)tcp6, sizeof(tcp6) - 1, sizeof(tcp6) - 1, &r), PP_OK);
	assert_int_equal(r.family, AF_INET6);
	assert_int_equal(r.sport, 65535);
	assert_int_equal(feed((const uint8_t *)unk, sizeof(unk) - 1, sizeof(unk) - 1, &r), PP_OK);
	assert_int_equal(r.family, 0);
	assert_int_equal(r.len, 15);
	assert_int_equal(pp_parse((const uint8_t *)unk2, sizeof(unk2) - 1, &r), PP_OK);
	assert_int_equal(r.len, sizeof(unk2) - 2);
}

static void
test_v1_strict(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n",
		"PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
		"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\r\n",
		"PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
		"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\x01\r\n",
		"PROXY\r\n",
	};
	struct pp_result	r;
	char			long_line[200];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pp_parse((const uint8_t *)bad[i], strlen(bad[i]), &r) != PP_ERROR)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(r.error);
	}
	/* No CRLF within 107 bytes. */
	memset(long_line, 'a', sizeof(long_line));
	memcpy(long_line, "PROXY UNKNOWN ", 14);
	assert_int_equal(pp_parse((const uint8_t *)long_line, 106, &r), PP_NEED_MORE);
	assert_int_equal(pp_parse((const uint8_t *)long_line, 107, &r), PP_ERROR);
	/* Junk is refused at the first byte, not after a timeout. */
	assert_int_equal(pp_parse((const uint8_t *)"G", 1, &r), PP_ERROR);
	assert_int_equal(pp_parse((const uint8_t *)"PROXX", 5, &r), PP_ERROR);
	assert_int_equal(pp_parse((const uint8_t *)"\x16\x03\x01", 3, &r), PP_ERROR);
}

/* A v2 header: cmd (0 LOCAL, 1 PROXY), fam, addresses, then tlv_len TLV bytes. */
static size_t
v2(uint8_t *b, uint8_t cmd, uint8_t fam, const uint8_t *addrs, size_t alen,
    const uint8_t *tlv, size_t tlen)
{
	size_t	len = alen + tlen;

	memcpy(b, SIG, 12);
	b[12] = 0x20 | cmd;
	b[13] = fam;
	b[14] = (uint8_t)(len >> 8);
	b[15] = (uint8_t)len;
	if (alen > 0)
		memcpy(b + 16, addrs, alen);
	if (tlen > 0)
		memcpy(b + 16 + alen, tlv, tlen);
	return 16 + len;
}

static void
test_v2(void **state)
{
	uint8_t			b[600], addrs[36];
	/* ALPN "h2", then a NOOP with 3 bytes, then SSL with a nested TLV. */
	static const uint8_t	tlv[] = { 0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x03, 0, 0, 0,
		0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0 };
	struct pp_result	r;
	size_t			n;

	(void)state;
	/* TCP4 192.0.2.1:4660 -> 198.51.100.2:443, with TLVs and client bytes after. */
	memcpy(addrs, "\xc0\x00\x02\x01\xc6\x33\x64\x02\x12\x34\x01\xbb", 12);
	n = v2(b, 1, 0x11, addrs, 12, tlv, sizeof(tlv));
	memcpy(b + n, "GET", 3);
	assert_int_equal(feed(b, n + 3, n, &r), PP_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.len, n);
	assert_int_equal(r.family, AF_INET);
	assert_memory_equal(r.src, "\xc0\x00\x02\x01", 4);
	assert_int_equal(r.sport, 0x1234);
	/* TCP6 */
	memset(addrs, 0, sizeof(addrs));
	addrs[0] = 0x20;
	addrs[15] = 1;
	addrs[32] = 0xab;
	addrs[33] = 0xcd;
	n = v2(b, 1, 0x21, addrs, 36, NULL, 0);
	assert_int_equal(feed(b, n, n, &r), PP_OK);
	assert_int_equal(r.family, AF_INET6);
	assert_int_equal(r.src[0], 0x20);
	assert_int_equal(r.sport, 0xabcd);
	/* LOCAL (a health check): no address, whatever the family. */
	n = v2(b, 0, 0x11, addrs, 12, NULL, 0);
	assert_int_equal(pp_parse(b, n, &r), PP_OK);
	assert_int_equal(r.family, 0);
	n = v2(b, 1, 0x00, NULL, 0, NULL, 0);
	assert_int_equal(pp_parse(b, n, &r), PP_OK);
	assert_int_equal(r.family, 0);
}

static void
test_v2_strict(void **state)
{
	uint8_t			b[PP_V2_MAX + 64], addrs[12] = { 0 };
	static const uint8_t	overrun[] = { 0x01, 0x00, 0x05, 'h', '2' };
	static const uint8_t	truncated[] = { 0x01, 0x00 };
	struct pp_result	r;
	size_t			n;

	(void)state;
	n = v2(b, 1, 0x11, addrs, 12, overrun, sizeof(overrun));
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	n = v2(b, 1, 0x11, addrs, 12, truncated, sizeof(truncated));
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	/* Length shorter than the addresses of the family. */
	n = v2(b, 1, 0x21, addrs, 12, NULL, 0);
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	/* Version 1 in the v2 format, unknown command, unknown family, UDP. */
	n = v2(b, 1, 0x11, addrs, 12, NULL, 0);
	b[12] = 0x11;
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	b[12] = 0x22;
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	b[12] = 0x21;
	b[13] = 0x41;
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	b[13] = 0x12;
	assert_int_equal(pp_parse(b, n, &r), PP_ERROR);
	/* A bad signature byte. */
	n = v2(b, 1, 0x11, addrs, 12, NULL, 0);
	b[7] = 'X';
	assert_int_equal(pp_parse(b, 8, &r), PP_ERROR);
	/* Longer than we accept: refused from the fixed part, before buffering it. */
	n = v2(b, 1, 0x11, addrs, 12, NULL, 0);
	b[14] = (uint8_t)((PP_V2_MAX - 16 + 1) >> 8);
	b[15] = (uint8_t)(PP_V2_MAX - 16 + 1);
	assert_int_equal(pp_parse(b, 16, &r), PP_ERROR);
	b[14] = (uint8_t)((PP_V2_MAX - 16) >> 8);
	b[15] = (uint8_t)(PP_V2_MAX - 16);
	memset(b + 28, 0, PP_V2_MAX - 28);
	assert_int_equal(pp_parse(b, 16, &r), PP_NEED_MORE);
	/* 2036 bytes of TLV: 0x00 type, length 2033. */
	b[28] = 0x04;
	b[29] = (uint8_t)((PP_V2_MAX - 28 - 3) >> 8);
	b[30] = (uint8_t)(PP_V2_MAX - 28 - 3);
	assert_int_equal(pp_parse(b, PP_V2_MAX, &r), PP_OK);
	assert_int_equal(r.len, PP_V2_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_strict),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_v2_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
