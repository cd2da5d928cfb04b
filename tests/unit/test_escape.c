/*
 * test_escape.c — escaping of peer strings (escape.c) and the access log
 * line (accesslog_format): kv and JSON, control characters, invalid UTF-8,
 * truncation that never cuts an escape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accesslog.h"
#include "escape.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

struct esc_case {
	const char	*in;
	size_t		 len;
	const char	*out;
};

#define S(lit)	lit, sizeof(lit) - 1

static void
test_kv(void **state)
{
	static const struct esc_case cases[] = {
		{ S("/echo"), "/echo" },
		{ S("a\"b\\c"), "a\\\"b\\\\c" },
		{ S("line\nbreak\r\t"), "line\\nbreak\\r\\t" },
		{ S("nul\0x\x01\x7f"), "nul\\x00x\\x01\\x7f" },
		{ S("caf\xc3\xa9 \xff"), "caf\\xc3\\xa9 \\xff" },
		{ S("a=b c"), "a=b c" },
		{ S(""), "" },
	};
	char	out[128];
	bool	cut;
	size_t	i, n;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		n = esc_kv(out, sizeof(out), cases[i].in, cases[i].len, &cut);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
		assert_false(cut);
	}
}

static void
test_json(void **state)
{
	static const struct esc_case cases[] = {
		{ S("/echo"), "/echo" },
		{ S("a\"b\\c/"), "a\\\"b\\\\c/" },
		{ S("\n\r\t\b\f"), "\\n\\r\\t\\b\\f" },
		{ S("\x01\x1f\x7f"), "\\u0001\\u001f\\u007f" },
		{ S("nul\0"), "nul\\u0000" },
		/* Valid UTF-8 stays: é, €, U+1F600. */
		{ S("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
		/* Invalid: lone continuation, overlong, surrogate, > U+10FFFF, cut. */
		{ S("\x80"), "\xef\xbf\xbd" },
		{ S("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd" },
		{ S("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ S("\xf4\x90\x80\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ S("a\xe2\x82"), "a\xef\xbf\xbd\xef\xbf\xbd" },
		{ S("\xff" "b"), "\xef\xbf\xbd" "b" },
	};
	char	out[128];
	bool	cut;
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		esc_json(out, sizeof(out), cases[i].in, cases[i].len, &cut);
		assert_string_equal(out, cases[i].out);
		assert_false(cut);
	}
}

static void
test_prom(void **state)
{
	char	out[64];

	(void)state;
	esc_prom_label(out, sizeof(out), S("/a\"b\\c\nd"), NULL);
	assert_string_equal(out, "/a\\\"b\\\\c\\nd");
}

/* A full buffer stops before an escape that does not fit whole. */
static void
test_truncation(void **state)
{
	char	out[6];
	bool	cut = false;
	size_t	n;

	(void)state;
	n = esc_kv(out, sizeof(out), S("ab\x01xyz"), &cut);
	assert_true(cut);
	assert_string_equal(out, "ab");		/* \x01 needs 4 bytes, 3 left */
	assert_int_equal(n, 2);
	n = esc_json(out, sizeof(out), S("abc\xe2\x82\xac"), &cut);
	assert_true(cut);
	assert_string_equal(out, "abc");	/* the euro sign is never split */
	n = esc_kv(out, sizeof(out), S("abcde"), &cut);
	assert_false(cut);
	assert_string_equal(out, "abcde");
	n = esc_prom_label(out, 1, S("x"), &cut);
	assert_true(cut);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
}

static const struct access_rec REC = {
	.time = 1700000000.25, .conn = 42, .client = "127.0.0.1:5000", .status = 101,
	.route = "/echo", .path = "/echo", .path_len = 5, .query = "q=\"x\"\n",
	.subprotocol = "chat.v1", .duration_ms = 1500, .bytes_in = 10, .bytes_out = 20,
	.msgs_in = 1, .msgs_out = 2, .close_code = 1000, .closed_by = "client",
	.reason = "closed",
};

static void
test_line_kv(void **state)
{
	char	line[ACCESSLOG_LINE_MAX];
	size_t	n;

	(void)state;
	n = accesslog_format(line, sizeof(line), &REC, LOG_FORMAT_KV);
	assert_int_equal(n, strlen(line));
	assert_string_equal(line, "time=2023-11-14T22:13:20.250Z conn=42 "
	    "client=\"127.0.0.1:5000\" status=101 route=\"/echo\" path=\"/echo\" "
	    "query=\"q=\\\"x\\\"\\n\" subprotocol=\"chat.v1\" duration_ms=1500 bytes_in=10 "
	    "bytes_out=20 msgs_in=1 msgs_out=2 close_code=1000 closed_by=\"client\" "
	    "reason=\"closed\"\n");
}

static void
test_line_json_absent(void **state)
{
	struct access_rec	r = REC;
	char			line[ACCESSLOG_LINE_MAX];

	(void)state;
	r.status = 404;
	r.route = NULL;
	r.path = "/n\"o\x01";
	r.path_len = 5;
	r.query = NULL;
	r.subprotocol = NULL;
	r.close_code = 0;
	r.closed_by = "server";
	accesslog_format(line, sizeof(line), &r, LOG_FORMAT_JSON);
	assert_string_equal(line, "{\"time\":\"2023-11-14T22:13:20.250Z\",\"conn\":42,"
	    "\"client\":\"127.0.0.1:5000\",\"status\":404,\"route\":null,"
	    "\"path\":\"/n\\\"o\\u0001\",\"query\":null,\"subprotocol\":null,"
	    "\"duration_ms\":1500,\"bytes_in\":10,\"bytes_out\":20,\"msgs_in\":1,"
	    "\"msgs_out\":2,\"close_code\":null,\"closed_by\":\"server\","
	    "\"reason\":\"closed\"}\n");
}

/* A hostile path of the largest size still gives one bounded line ending in '\n'. */
static void
test_line_bounded(void **state)
{
	struct access_rec	 r = REC;
	char			*big, line[ACCESSLOG_LINE_MAX];
	size_t			 n;

	(void)state;
	big = malloc(8193);
	assert_non_null(big);
	memset(big, '\n', 8192);
	big[8192] = '\0';
	r.path = big;
	r.path_len = 8192;
	r.query = big;
	n = accesslog_format(line, sizeof(line), &r, LOG_FORMAT_KV);
	assert_true(n < sizeof(line));
	assert_int_equal(line[n - 1], '\n');
	assert_null(memchr(line, '\n', n - 1));
	n = accesslog_format(line, 64, &r, LOG_FORMAT_JSON);
	assert_int_equal(n, 63);
	assert_int_equal(line[62], '\n');
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_prom),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_line_kv),
		cmocka_unit_test(test_line_json_absent),
		cmocka_unit_test(test_line_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
