/*
 * test_utf8.c — unit tests for the incremental UTF-8 validator (daemon/utf8.c).
 *
 * Besides hand-picked vectors (boundaries, overlongs, surrogates, Markus
 * Kuhn's UTF-8 decoder stress test), every 1-, 2- and 3-byte sequence and a
 * large slice of the 4-byte ones are checked against an independent reference
 * that defines validity by code point arithmetic rather than by a state table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Verdicts, independent of the validator's internal state numbering. */
enum verdict { V_ACCEPT, V_REJECT, V_INCOMPLETE };

static enum verdict
verdict_of(uint8_t st)
{
	if (st == UTF8_ACCEPT)
		return V_ACCEPT;
	if (st == UTF8_REJECT)
		return V_REJECT;
	return V_INCOMPLETE;
}

static const char *
verdict_name(enum verdict v)
{
	return v == V_ACCEPT ? "ACCEPT" : v == V_REJECT ? "REJECT" : "INCOMPLETE";
}

/* ------------------------------------------------------------------------
 * Reference model: a prefix (lead byte + continuation bytes) is viable when
 * some completion of it encodes, in the length its lead byte announces, a
 * code point that this length may encode (no overlong), that is not a
 * surrogate and is at most U+10FFFF. The first byte after which the prefix is
 * no longer viable is the first invalid byte.
 */
static int
ref_seq_len(uint8_t b)
{
	if (b < 0x80)
		return 1;
	if ((b & 0xe0) == 0xc0)
		return 2;
	if ((b & 0xf0) == 0xe0)
		return 3;
	if ((b & 0xf8) == 0xf0)
		return 4;
	return 0;
}

static bool
ref_viable(const uint8_t *q, int k, int len)
{
	static const uint32_t lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	static const uint32_t cp_min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	static const uint32_t cp_max[5] = { 0, 0x7f, 0x7ff, 0xffff, 0x10ffff };
	uint32_t lo, hi;
	int	 i;

	lo = q[0] & lead_mask[len];
	for (i = 1; i < k; i++) {
		if ((q[i] & 0xc0) != 0x80)
			return false;
		lo = lo << 6 | (q[i] & 0x3f);
	}
	hi = lo;
	for (; i < len; i++) {
		lo = lo << 6;
		hi = hi << 6 | 0x3f;
	}
	if (lo < cp_min[len])
		lo = cp_min[len];
	if (hi > cp_max[len])
		hi = cp_max[len];
	if (lo > hi)
		return false;
	if (lo >= 0xd800 && hi <= 0xdfff)	/* only surrogates left */
		return false;
	return true;
}

static enum verdict
ref_check(const uint8_t *s, size_t n, size_t *bad)
{
	uint8_t	q[4];
	int	k = 0, len = 0;
	size_t	i;

	for (i = 0; i < n; i++) {
		if (k == 0) {
			len = ref_seq_len(s[i]);
			if (len == 0) {
				*bad = i;
				return V_REJECT;
			}
		}
		q[k++] = s[i];
		if (!ref_viable(q, k, len)) {
			*bad = i;
			return V_REJECT;
		}
		if (k == len)
			k = 0;
	}
	return k == 0 ? V_ACCEPT : V_INCOMPLETE;
}

/* ------------------------------------------------------------------------
 * Helpers driving the code under test.
 */

/* Copies s into an exactly sized heap buffer (so ASan sees over-reads). */
static uint8_t *
dup_exact(const uint8_t *s, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	if (n)
		memcpy(p, s, n);
	return p;
}

static enum verdict
feed_once(const uint8_t *s, size_t n, size_t *bad)
{
	uint8_t	*p = dup_exact(s, n);
	uint8_t	 st;

	*bad = (size_t)-1;
	st = utf8_feed(UTF8_ACCEPT, p, n, bad);
	free(p);
	if (st != UTF8_REJECT)
		assert_int_equal(*bad, (size_t)-1);	/* untouched unless rejected */
	return verdict_of(st);
}

/*
 * Feeds s in chunks ending at the offsets cuts[] (then the rest); returns the
 * verdict and, on REJECT, the absolute offset of the bad byte. Once REJECT is
 * returned, the remaining chunks are fed anyway: REJECT must stay.
 */
static enum verdict
feed_chunks(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts,
    size_t *bad)
{
	uint8_t	 st = UTF8_ACCEPT;
	size_t	 start = 0, end, b, c;
	bool	 rejected = false;
	uint8_t	*p;

	*bad = (size_t)-1;
	for (c = 0; c <= ncuts; c++) {
		end = c < ncuts ? cuts[c] : n;
		p = dup_exact(s + start, end - start);
		b = (size_t)-1;
		st = utf8_feed(st, p, end - start, &b);
		free(p);
		if (rejected) {
			assert_int_equal(st, UTF8_REJECT);
		} else if (st == UTF8_REJECT) {
			assert_true(b < end - start);
			*bad = start + b;
			rejected = true;
		}
		start = end;
	}
	return verdict_of(st);
}

/*
 * The core assertion: s gets verdict `want` (and first bad byte `want_bad`)
 * one-shot, through utf8_valid, split into two chunks at every offset, and
 * byte by byte.
 */
static void
expect_utf8(const uint8_t *s, size_t n, enum verdict want, size_t want_bad)
{
	enum verdict	 v;
	size_t		 bad, cut, i, *cuts;

	v = feed_once(s, n, &bad);
	if (v != want || (want == V_REJECT && bad != want_bad)) {
		fprintf(stderr, "one-shot: got %s (bad %zu), want %s (bad %zu); input:",
		    verdict_name(v), bad, verdict_name(want), want_bad);
		for (i = 0; i < n && i < 64; i++)
			fprintf(stderr, " %02x", s[i]);
		fprintf(stderr, "\n");
		fail();
	}
	assert_int_equal(utf8_valid(s, n), want == V_ACCEPT);
	/* NULL bad pointer is allowed */
	assert_int_equal(verdict_of(utf8_feed(UTF8_ACCEPT, s, n, NULL)), want);

	for (cut = 0; cut <= n; cut++) {
		v = feed_chunks(s, n, &cut, 1, &bad);
		if (v != want || (want == V_REJECT && bad != want_bad)) {
			fprintf(stderr, "split at %zu: got %s (bad %zu), want %s (bad %zu)\n",
			    cut, verdict_name(v), bad, verdict_name(want), want_bad);
			fail();
		}
	}
	if (n > 1) {
		cuts = malloc((n - 1) * sizeof(*cuts));
		assert_non_null(cuts);
		for (i = 0; i < n - 1; i++)
			cuts[i] = i + 1;
		v = feed_chunks(s, n, cuts, n - 1, &bad);
		free(cuts);
		assert_int_equal(v, want);
		if (want == V_REJECT)
			assert_int_equal(bad, want_bad);
	}
}

#define BYTES(...)	((const uint8_t[]){ __VA_ARGS__ })
#define NBYTES(...)	sizeof((const uint8_t[]){ __VA_ARGS__ })
#define VALID(...)	expect_utf8(BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__), V_ACCEPT, 0)
#define INCOMPLETE(...)	expect_utf8(BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__), V_INCOMPLETE, 0)
#define INVALID_AT(off, ...) \
	expect_utf8(BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__), V_REJECT, (off))

static void
expect_str(const char *s, enum verdict want, size_t want_bad)
{
	expect_utf8((const uint8_t *)s, strlen(s), want, want_bad);
}

/* Encodes code point cp (any value < 2^21) in the 1-4 byte form. */
static size_t
encode(uint32_t cp, uint8_t *out)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* ------------------------------------------------------------------------
 * Tests.
 */

static void
test_empty(void **state)
{
	size_t bad = 42;

	(void)state;
	assert_int_equal(utf8_feed(UTF8_ACCEPT, NULL, 0, &bad), UTF8_ACCEPT);
	assert_int_equal(bad, 42);
	assert_true(utf8_valid((const uint8_t *)"", 0));
}

static void
test_ascii(void **state)
{
	uint8_t	all[128], big[1000];
	size_t	i;

	(void)state;
	for (i = 0; i < 128; i++)
		all[i] = (uint8_t)i;		/* includes NUL and DEL */
	expect_utf8(all, sizeof(all), V_ACCEPT, 0);
	for (i = 0; i < 128; i++)
		expect_utf8(all + i, 1, V_ACCEPT, 0);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(' ' + i % 95);
	expect_utf8(big, sizeof(big), V_ACCEPT, 0);
	expect_str("Hello, world", V_ACCEPT, 0);
}

static void
test_valid_multibyte(void **state)
{
	(void)state;
	VALID(0xc3, 0xa9);				/* é */
	VALID(0xe2, 0x82, 0xac);			/* € */
	VALID(0xf0, 0x9d, 0x84, 0x9e);			/* 𝄞 */
	VALID(0xf0, 0x9f, 0x98, 0x80);			/* 😀 */
	VALID(0xe4, 0xb8, 0xad, 0xe6, 0x96, 0x87);	/* 中文 */
	expect_str("caf\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x8d\xba!", V_ACCEPT, 0);
	expect_str("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", V_ACCEPT, 0); /* κόσμε */
	expect_str("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
	    V_ACCEPT, 0);	/* Autobahn case 6.2.1 */
	/* multibyte characters around 8-byte ASCII runs (fast path in and out) */
	expect_str("abcdefgh\xc3\xa9ijklmnop\xe2\x82\xacqrstuvwxyz012345\xf0\x9f\x98\x80"
	    "ABCDEFGHIJ", V_ACCEPT, 0);
}

static void
test_boundaries(void **state)
{
	(void)state;
	VALID(0x00);				/* U+0000 */
	VALID(0x7f);				/* U+007F */
	VALID(0xc2, 0x80);			/* U+0080 */
	VALID(0xdf, 0xbf);			/* U+07FF */
	VALID(0xe0, 0xa0, 0x80);		/* U+0800 */
	VALID(0xed, 0x9f, 0xbf);		/* U+D7FF */
	VALID(0xee, 0x80, 0x80);		/* U+E000 */
	VALID(0xef, 0xbf, 0xbd);		/* U+FFFD */
	VALID(0xef, 0xbf, 0xbf);		/* U+FFFF */
	VALID(0xf0, 0x90, 0x80, 0x80);		/* U+10000 */
	VALID(0xf3, 0xbf, 0xbf, 0xbf);		/* U+FFFFF */
	VALID(0xf4, 0x80, 0x80, 0x80);		/* U+100000 */
	VALID(0xf4, 0x8f, 0xbf, 0xbf);		/* U+10FFFF */
	/* one past each end */
	INVALID_AT(0, 0x80);			/* "U+0080" as one byte */
	INVALID_AT(0, 0xc1, 0xbf);		/* U+007F in 2 bytes */
	INVALID_AT(1, 0xe0, 0x9f, 0xbf);	/* U+07FF in 3 bytes */
	INVALID_AT(1, 0xed, 0xa0, 0x80);	/* U+D800 */
	INVALID_AT(1, 0xf0, 0x8f, 0xbf, 0xbf);	/* U+FFFF in 4 bytes */
	INVALID_AT(1, 0xf4, 0x90, 0x80, 0x80);	/* U+110000 */
}

/* Every code point encodes to a valid string, except the surrogates. */
static void
test_all_code_points(void **state)
{
	uint8_t	 buf[4];
	uint32_t cp;
	size_t	 n, bad;
	uint8_t	 st;

	(void)state;
	for (cp = 0; cp <= 0x10ffff; cp++) {
		n = encode(cp, buf);
		bad = (size_t)-1;
		st = utf8_feed(UTF8_ACCEPT, buf, n, &bad);
		if (cp >= 0xd800 && cp <= 0xdfff) {
			assert_int_equal(st, UTF8_REJECT);
			assert_int_equal(bad, 1);
		} else if (st != UTF8_ACCEPT) {
			fprintf(stderr, "U+%04X rejected\n", (unsigned)cp);
			fail();
		}
	}
	/* and nothing above U+10FFFF in the 4-byte form */
	for (cp = 0x110000; cp < 0x200000; cp += 0x3f) {
		n = encode(cp, buf);
		assert_int_equal(n, 4);
		st = utf8_feed(UTF8_ACCEPT, buf, n, &bad);
		assert_int_equal(st, UTF8_REJECT);
		assert_int_equal(bad, buf[0] == 0xf4 ? 1 : 0);
	}
}

static void
test_overlongs(void **state)
{
	uint8_t	b;

	(void)state;
	INVALID_AT(0, 0xc0, 0x80);		/* U+0000 */
	INVALID_AT(0, 0xc0, 0xaf);		/* '/' */
	INVALID_AT(0, 0xc1, 0xbf);		/* U+007F */
	INVALID_AT(1, 0xe0, 0x80, 0x80);
	INVALID_AT(1, 0xe0, 0x80, 0xaf);
	INVALID_AT(1, 0xe0, 0x9f, 0xbf);
	INVALID_AT(1, 0xf0, 0x80, 0x80, 0x80);
	INVALID_AT(1, 0xf0, 0x80, 0x80, 0xaf);
	INVALID_AT(1, 0xf0, 0x8f, 0xbf, 0xbf);
	/* every second byte that makes E0 / F0 overlong */
	for (b = 0x80; b < 0xa0; b++)
		expect_utf8((const uint8_t[]){ 0xe0, b, 0x80 }, 3, V_REJECT, 1);
	for (b = 0x80; b < 0x90; b++)
		expect_utf8((const uint8_t[]){ 0xf0, b, 0x80, 0x80 }, 4, V_REJECT, 1);
	/* C0 and C1 with every continuation */
	for (b = 0x80; b < 0xc0; b++) {
		expect_utf8((const uint8_t[]){ 0xc0, b }, 2, V_REJECT, 0);
		expect_utf8((const uint8_t[]){ 0xc1, b }, 2, V_REJECT, 0);
	}
}

static void
test_surrogates(void **state)
{
	unsigned b2, b3;

	(void)state;
	INVALID_AT(1, 0xed, 0xa0, 0x80);	/* U+D800 */
	INVALID_AT(1, 0xed, 0xad, 0xbf);	/* U+DB7F */
	INVALID_AT(1, 0xed, 0xae, 0x80);	/* U+DB80 */
	INVALID_AT(1, 0xed, 0xaf, 0xbf);	/* U+DBFF */
	INVALID_AT(1, 0xed, 0xb0, 0x80);	/* U+DC00 */
	INVALID_AT(1, 0xed, 0xbe, 0x80);	/* U+DF80 */
	INVALID_AT(1, 0xed, 0xbf, 0xbf);	/* U+DFFF */
	for (b2 = 0xa0; b2 <= 0xbf; b2++)
		for (b3 = 0x80; b3 <= 0xbf; b3++)
			expect_utf8((const uint8_t[]){ 0xed, (uint8_t)b2, (uint8_t)b3 }, 3,
			    V_REJECT, 1);
	/* paired surrogates (CESU-8 style) are invalid too */
	INVALID_AT(1, 0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xaf, 0xbf, 0xed, 0xbf, 0xbf);
	/* preceded by valid text */
	INVALID_AT(4, 'a', 'b', 'c', 0xed, 0xa0, 0x80);
}

static void
test_above_max(void **state)
{
	unsigned b;

	(void)state;
	INVALID_AT(1, 0xf4, 0x90, 0x80, 0x80);	/* U+110000 */
	INVALID_AT(1, 0xf4, 0xbf, 0xbf, 0xbf);	/* U+13FFFF */
	INVALID_AT(0, 0xf5, 0x80, 0x80, 0x80);
	INVALID_AT(0, 0xf7, 0xbf, 0xbf, 0xbf);	/* U+1FFFFF */
	INVALID_AT(0, 0xf8, 0x88, 0x80, 0x80, 0x80);		/* 5-byte form */
	INVALID_AT(0, 0xfc, 0x84, 0x80, 0x80, 0x80, 0x80);	/* 6-byte form */
	for (b = 0xf5; b <= 0xff; b++) {
		expect_utf8((const uint8_t[]){ (uint8_t)b }, 1, V_REJECT, 0);
		expect_utf8((const uint8_t[]){ (uint8_t)b, 0x80, 0x80, 0x80 }, 4, V_REJECT, 0);
		expect_utf8((const uint8_t[]){ 'x', (uint8_t)b, 'y' }, 3, V_REJECT, 1);
	}
	for (b = 0x90; b <= 0xbf; b++)
		expect_utf8((const uint8_t[]){ 0xf4, (uint8_t)b, 0x80, 0x80 }, 4, V_REJECT, 1);
}

static void
test_stray_continuation(void **state)
{
	unsigned b;

	(void)state;
	for (b = 0x80; b <= 0xbf; b++) {
		expect_utf8((const uint8_t[]){ (uint8_t)b }, 1, V_REJECT, 0);
		expect_utf8((const uint8_t[]){ 'a', (uint8_t)b }, 2, V_REJECT, 1);
		/* one continuation too many after a complete character */
		expect_utf8((const uint8_t[]){ 0xc3, 0xa9, (uint8_t)b }, 3, V_REJECT, 2);
		expect_utf8((const uint8_t[]){ 0xe2, 0x82, 0xac, (uint8_t)b }, 4, V_REJECT, 3);
		expect_utf8((const uint8_t[]){ 0xf0, 0x9d, 0x84, 0x9e, (uint8_t)b }, 5,
		    V_REJECT, 4);
	}
	INVALID_AT(0, 0x80, 0x80);
	INVALID_AT(0, 0xbf, 0x80, 0xbf);
}

/* A sequence cut short is "valid so far" but not ACCEPT; the rest completes it. */
static void
test_truncated(void **state)
{
	static const char *const seqs[] = {
		"\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf",
		"\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf3\xbf\xbf\xbf",
		"\xf4\x8f\xbf\xbf",
	};
	size_t	i, k, n, bad;
	uint8_t	st;

	(void)state;
	for (i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		n = strlen(seqs[i]);
		for (k = 1; k < n; k++) {
			expect_utf8((const uint8_t *)seqs[i], k, V_INCOMPLETE, 0);
			/* resuming from the intermediate state finishes the character */
			st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)seqs[i], k, &bad);
			assert_int_not_equal(st, UTF8_ACCEPT);
			assert_int_not_equal(st, UTF8_REJECT);
			st = utf8_feed(st, (const uint8_t *)seqs[i] + k, n - k, &bad);
			assert_int_equal(st, UTF8_ACCEPT);
			/* ... and ASCII instead of the missing continuation is rejected,
			 * at the ASCII byte */
			st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)seqs[i], k, &bad);
			st = utf8_feed(st, (const uint8_t *)"abcdefghijklmnop", 16, &bad);
			assert_int_equal(st, UTF8_REJECT);
			assert_int_equal(bad, 0);
		}
	}
	/* truncated after valid text */
	expect_str("valid text then \xe2\x82", V_INCOMPLETE, 0);
	expect_str("0123456789abcdef\xf0", V_INCOMPLETE, 0);
}

/*
 * The first bad byte is reported exactly, wherever it falls relative to the
 * 8-byte ASCII fast path, and whatever the buffer alignment.
 */
static void
test_bad_offset_fast_path(void **state)
{
	/* bytes that are invalid wherever they start a character */
	static const uint8_t bads[] = { 0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff };
	uint8_t	buf[64], *p;
	size_t	prefix, suffix, align, i, bad;
	uint8_t	st;

	(void)state;
	for (prefix = 0; prefix <= 17; prefix++) {
		for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
			for (suffix = 0; suffix <= 17; suffix++) {
				memset(buf, 'a', sizeof(buf));
				buf[prefix] = bads[i];
				expect_utf8(buf, prefix + 1 + suffix, V_REJECT, prefix);
			}
		}
		/* a lead byte followed by ASCII: the ASCII byte is the bad one */
		memset(buf, 'a', sizeof(buf));
		buf[prefix] = 0xe2;
		expect_utf8(buf, prefix + 20, V_REJECT, prefix + 1);
		memset(buf, 'a', sizeof(buf));
		buf[prefix] = 0xf0;
		buf[prefix + 1] = 0x9f;
		expect_utf8(buf, prefix + 20, V_REJECT, prefix + 2);
		/* a surrogate: its second byte */
		memset(buf, 'a', sizeof(buf));
		memcpy(buf + prefix, "\xed\xa0\x80", 3);
		expect_utf8(buf, prefix + 20, V_REJECT, prefix + 1);
		/* valid multibyte, then ASCII (fast path again), then a bad byte */
		memset(buf, 'a', sizeof(buf));
		memcpy(buf, "\xe2\x82\xac", 3);
		buf[3 + prefix] = 0x80;
		expect_utf8(buf, 3 + prefix + 9, V_REJECT, 3 + prefix);
	}
	/* unaligned starting addresses */
	for (align = 0; align < 8; align++) {
		for (prefix = 0; prefix <= 17; prefix++) {
			p = buf + align;
			memset(buf, 'z', sizeof(buf));
			p[prefix] = 0xfe;
			bad = 99;
			st = utf8_feed(UTF8_ACCEPT, p, 40, &bad);
			assert_int_equal(st, UTF8_REJECT);
			assert_int_equal(bad, prefix);
		}
	}
}

static void
test_reject_sticky(void **state)
{
	size_t	bad;
	uint8_t	st;

	(void)state;
	bad = 7;
	st = utf8_feed(UTF8_REJECT, (const uint8_t *)"abc", 3, &bad);
	assert_int_equal(st, UTF8_REJECT);
	assert_int_equal(bad, 0);
	assert_int_equal(utf8_feed(UTF8_REJECT, NULL, 0, NULL), UTF8_REJECT);
	assert_int_equal(utf8_feed(UTF8_REJECT, (const uint8_t *)"\xc3\xa9", 2, NULL),
	    UTF8_REJECT);
	assert_int_equal(utf8_feed(UTF8_REJECT, (const uint8_t *)"0123456789abcdef", 16, NULL),
	    UTF8_REJECT);

	st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)"ab\xff", 3, &bad);
	assert_int_equal(st, UTF8_REJECT);
	assert_int_equal(bad, 2);
	st = utf8_feed(st, (const uint8_t *)"valid", 5, &bad);
	assert_int_equal(st, UTF8_REJECT);
	st = utf8_feed(st, (const uint8_t *)"", 0, &bad);
	assert_int_equal(st, UTF8_REJECT);
	/* the rest of the buffer after the bad byte is not looked at */
	st = utf8_feed(UTF8_ACCEPT, (const uint8_t *)"\x80\xc3\xa9", 3, &bad);
	assert_int_equal(st, UTF8_REJECT);
	assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------------
 * Markus Kuhn's "UTF-8 decoder capability and stress test" (sections refer to
 * https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt). Under RFC 3629
 * every malformed case must be rejected; for each, the first bad offset is
 * given.
 */
static void
test_kuhn(void **state)
{
	uint8_t	buf[256];
	size_t	n;
	unsigned b;

	(void)state;
	/* 1. Some correct UTF-8 text: κόσμε */
	VALID(0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5);

	/* 2.1 First possible sequence of a certain length */
	VALID(0x00);
	VALID(0xc2, 0x80);
	VALID(0xe0, 0xa0, 0x80);
	VALID(0xf0, 0x90, 0x80, 0x80);
	INVALID_AT(0, 0xf8, 0x88, 0x80, 0x80, 0x80);
	INVALID_AT(0, 0xfc, 0x84, 0x80, 0x80, 0x80, 0x80);
	/* 2.2 Last possible sequence of a certain length */
	VALID(0x7f);
	VALID(0xdf, 0xbf);
	VALID(0xef, 0xbf, 0xbf);
	INVALID_AT(0, 0xf7, 0xbf, 0xbf, 0xbf);
	INVALID_AT(0, 0xfb, 0xbf, 0xbf, 0xbf, 0xbf);
	INVALID_AT(0, 0xfd, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf);
	/* 2.3 Other boundary conditions */
	VALID(0xed, 0x9f, 0xbf);
	VALID(0xee, 0x80, 0x80);
	VALID(0xef, 0xbf, 0xbd);
	VALID(0xf4, 0x8f, 0xbf, 0xbf);
	INVALID_AT(1, 0xf4, 0x90, 0x80, 0x80);

	/* 3.1 Unexpected continuation bytes */
	INVALID_AT(0, 0x80);
	INVALID_AT(0, 0xbf);
	INVALID_AT(0, 0x80, 0xbf);
	INVALID_AT(0, 0x80, 0xbf, 0x80);
	INVALID_AT(0, 0x80, 0xbf, 0x80, 0xbf);
	INVALID_AT(0, 0x80, 0xbf, 0x80, 0xbf, 0x80);
	INVALID_AT(0, 0x80, 0xbf, 0x80, 0xbf, 0x80, 0xbf);
	INVALID_AT(0, 0x80, 0xbf, 0x80, 0xbf, 0x80, 0xbf, 0x80);
	/* 3.1.9 Sequence of all 64 possible continuation bytes */
	for (n = 0; n < 64; n++)
		buf[n] = (uint8_t)(0x80 + n);
	expect_utf8(buf, 64, V_REJECT, 0);

	/* 3.2 Lonely start characters, each followed by a space */
	for (b = 0xc0, n = 0; b <= 0xdf; b++) {
		buf[n++] = (uint8_t)b;
		buf[n++] = ' ';
	}
	expect_utf8(buf, n, V_REJECT, 0);	/* C0 */
	expect_utf8(buf + 4, n - 4, V_REJECT, 1);	/* C2 then space */
	for (b = 0xc2; b <= 0xfd; b++)
		expect_utf8((const uint8_t[]){ (uint8_t)b, ' ' }, 2, V_REJECT,
		    b >= 0xf5 ? 0 : 1);

	/* 3.3 Sequences with last continuation byte missing (then a space) */
	INVALID_AT(0, 0xc0, ' ');
	INVALID_AT(1, 0xe0, 0x80, ' ');
	INVALID_AT(1, 0xf0, 0x80, 0x80, ' ');
	INVALID_AT(0, 0xf8, 0x80, 0x80, 0x80, ' ');
	INVALID_AT(0, 0xfc, 0x80, 0x80, 0x80, 0x80, ' ');
	INVALID_AT(1, 0xdf, ' ');
	INVALID_AT(2, 0xef, 0xbf, ' ');
	INVALID_AT(0, 0xf7, 0xbf, 0xbf, ' ');
	INVALID_AT(0, 0xfb, 0xbf, 0xbf, 0xbf, ' ');
	INVALID_AT(0, 0xfd, 0xbf, 0xbf, 0xbf, 0xbf, ' ');
	/* ... and at the very end of the input (valid code points only) */
	INCOMPLETE(0xdf);
	INCOMPLETE(0xef, 0xbf);
	INCOMPLETE(0xf4, 0x8f, 0xbf);
	/* 3.4 Concatenation of incomplete sequences */
	INVALID_AT(0, 0xc0, 0xe0, 0x80, 0xf0, 0x80, 0x80, 0xf8, 0x80, 0x80, 0x80,
	    0xfc, 0x80, 0x80, 0x80, 0x80, 0xdf, 0xef, 0xbf, 0xf7, 0xbf, 0xbf,
	    0xfb, 0xbf, 0xbf, 0xbf, 0xfd, 0xbf, 0xbf, 0xbf, 0xbf);
	INVALID_AT(1, 0xdf, 0xef, 0xbf, 0xf4, 0x8f, 0xbf);
	INVALID_AT(2, 0xef, 0xbf, 0xf4, 0x8f, 0xbf);
	/* 3.5 Impossible bytes */
	INVALID_AT(0, 0xfe);
	INVALID_AT(0, 0xff);
	INVALID_AT(0, 0xfe, 0xfe, 0xff, 0xff);

	/* 4.1 Examples of an overlong ASCII character ('/') */
	INVALID_AT(0, 0xc0, 0xaf);
	INVALID_AT(1, 0xe0, 0x80, 0xaf);
	INVALID_AT(1, 0xf0, 0x80, 0x80, 0xaf);
	INVALID_AT(0, 0xf8, 0x80, 0x80, 0x80, 0xaf);
	INVALID_AT(0, 0xfc, 0x80, 0x80, 0x80, 0x80, 0xaf);
	/* 4.2 Maximum overlong sequences */
	INVALID_AT(0, 0xc1, 0xbf);
	INVALID_AT(1, 0xe0, 0x9f, 0xbf);
	INVALID_AT(1, 0xf0, 0x8f, 0xbf, 0xbf);
	INVALID_AT(0, 0xf8, 0x87, 0xbf, 0xbf, 0xbf);
	INVALID_AT(0, 0xfc, 0x83, 0xbf, 0xbf, 0xbf, 0xbf);
	/* 4.3 Overlong representation of the NUL character */
	INVALID_AT(0, 0xc0, 0x80);
	INVALID_AT(1, 0xe0, 0x80, 0x80);
	INVALID_AT(1, 0xf0, 0x80, 0x80, 0x80);
	INVALID_AT(0, 0xf8, 0x80, 0x80, 0x80, 0x80);
	INVALID_AT(0, 0xfc, 0x80, 0x80, 0x80, 0x80, 0x80);

	/* 5.1 Single UTF-16 surrogates */
	INVALID_AT(1, 0xed, 0xa0, 0x80);
	INVALID_AT(1, 0xed, 0xad, 0xbf);
	INVALID_AT(1, 0xed, 0xae, 0x80);
	INVALID_AT(1, 0xed, 0xaf, 0xbf);
	INVALID_AT(1, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xbe, 0x80);
	INVALID_AT(1, 0xed, 0xbf, 0xbf);
	/* 5.2 Paired UTF-16 surrogates */
	INVALID_AT(1, 0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xa0, 0x80, 0xed, 0xbf, 0xbf);
	INVALID_AT(1, 0xed, 0xad, 0xbf, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xad, 0xbf, 0xed, 0xbf, 0xbf);
	INVALID_AT(1, 0xed, 0xae, 0x80, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xae, 0x80, 0xed, 0xbf, 0xbf);
	INVALID_AT(1, 0xed, 0xaf, 0xbf, 0xed, 0xb0, 0x80);
	INVALID_AT(1, 0xed, 0xaf, 0xbf, 0xed, 0xbf, 0xbf);
	/* 5.3 Noncharacters are well-formed UTF-8 (RFC 3629 does not exclude them) */
	VALID(0xef, 0xbf, 0xbe);		/* U+FFFE */
	VALID(0xef, 0xbf, 0xbf);		/* U+FFFF */
	VALID(0xef, 0xb7, 0x90);		/* U+FDD0 */
	VALID(0xef, 0xb7, 0xaf);		/* U+FDEF */
	VALID(0xf0, 0x9f, 0xbf, 0xbe);		/* U+1FFFE */
	VALID(0xf4, 0x8f, 0xbf, 0xbe);		/* U+10FFFE */
}

/* Several valid multibyte strings, split at every boundary and byte by byte. */
static void
test_split_valid(void **state)
{
	static const char *const strs[] = {
		"\xc3\xa9",
		"\xe2\x82\xac",
		"\xf0\x9d\x84\x9e",
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
		"a\xc2\x80" "b\xdf\xbf" "c\xe0\xa0\x80" "d\xef\xbf\xbf" "e\xf0\x90\x80\x80"
		    "f\xf4\x8f\xbf\xbf" "g\xed\x9f\xbf" "h\xee\x80\x80",
		"0123456789\xe4\xb8\xad\xe6\x96\x87" "0123456789abcdef\xf0\x9f\x98\x80" "xyz",
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
	};
	size_t	i, a, b, n, cuts[2], bad;

	(void)state;
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		expect_str(strs[i], V_ACCEPT, 0);	/* one-shot, 2 chunks, byte by byte */
		/* and three chunks, every pair of cut points */
		n = strlen(strs[i]);
		for (a = 0; a <= n; a++)
			for (b = a; b <= n; b++) {
				cuts[0] = a;
				cuts[1] = b;
				assert_int_equal(feed_chunks((const uint8_t *)strs[i], n, cuts, 2,
				    &bad), V_ACCEPT);
			}
	}
}

/* ------------------------------------------------------------------------
 * Exhaustive comparison with the reference model.
 */
static void
check_ref(const uint8_t *s, size_t n)
{
	enum verdict	want, got;
	size_t		want_bad = (size_t)-1, bad = (size_t)-1, i;
	uint8_t		st;

	want = ref_check(s, n, &want_bad);
	st = utf8_feed(UTF8_ACCEPT, s, n, &bad);
	got = verdict_of(st);
	if (got != want || (want == V_REJECT && bad != want_bad)) {
		fprintf(stderr, "mismatch: got %s (bad %zu), reference %s (bad %zu):",
		    verdict_name(got), bad, verdict_name(want), want_bad);
		for (i = 0; i < n; i++)
			fprintf(stderr, " %02x", s[i]);
		fprintf(stderr, "\n");
		fail();
	}
}

/* The sequence alone, and inside ASCII runs long enough for the fast path. */
static void
check_ref_padded(const uint8_t *seq, size_t n)
{
	uint8_t	buf[32];

	check_ref(seq, n);
	memcpy(buf, "0123456789", 10);
	memcpy(buf + 10, seq, n);
	memcpy(buf + 10 + n, "abcdefghijkl", 12);
	check_ref(buf, 10 + n + 12);
}

static void
test_exhaustive_1_2_bytes(void **state)
{
	uint8_t	s[2];
	unsigned a, b;

	(void)state;
	for (a = 0; a < 256; a++) {
		s[0] = (uint8_t)a;
		check_ref_padded(s, 1);
		for (b = 0; b < 256; b++) {
			s[1] = (uint8_t)b;
			check_ref_padded(s, 2);
		}
	}
	/* sanity of the reference itself */
	{
		size_t bad;

		assert_int_equal(ref_check(BYTES(0xe0, 0x9f, 0xbf), 3, &bad), V_REJECT);
		assert_int_equal(bad, 1);
		assert_int_equal(ref_check(BYTES(0xed, 0x9f, 0xbf), 3, &bad), V_ACCEPT);
		assert_int_equal(ref_check(BYTES(0xf4, 0x8f), 2, &bad), V_INCOMPLETE);
	}
}

/*
 * 3-byte sequences starting with a lead byte (an ASCII or continuation first
 * byte makes the rest a 2-byte case, covered above).
 */
static void
test_exhaustive_3_bytes(void **state)
{
	uint8_t	s[3];
	unsigned a, b, c;

	(void)state;
	for (a = 0xc0; a < 256; a++)
		for (b = 0; b < 256; b++)
			for (c = 0; c < 256; c++) {
				s[0] = (uint8_t)a;
				s[1] = (uint8_t)b;
				s[2] = (uint8_t)c;
				check_ref(s, 3);
			}
	/* the same with fast-path padding, for the lead bytes that matter */
	for (a = 0xc0; a < 256; a++)
		for (b = 0x70; b < 0xd0; b++)
			for (c = 0x70; c < 0xd0; c++) {
				s[0] = (uint8_t)a;
				s[1] = (uint8_t)b;
				s[2] = (uint8_t)c;
				check_ref_padded(s, 3);
			}
}

/* 4-byte sequences: all lead/second/third bytes around the valid ranges. */
static void
test_exhaustive_4_bytes(void **state)
{
	static const uint8_t lasts[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
	    0xbf, 0xc0, 0xc3, 0xe2, 0xf0, 0xff };
	uint8_t	s[4];
	unsigned a, b, c, d;

	(void)state;
	for (a = 0xe0; a < 256; a++)
		for (b = 0x70; b < 0xd0; b++)
			for (c = 0x70; c < 0xd0; c++)
				for (d = 0; d < sizeof(lasts); d++) {
					s[0] = (uint8_t)a;
					s[1] = (uint8_t)b;
					s[2] = (uint8_t)c;
					s[3] = lasts[d];
					check_ref(s, 4);
				}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ascii),
		cmocka_unit_test(test_valid_multibyte),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_all_code_points),
		cmocka_unit_test(test_overlongs),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_above_max),
		cmocka_unit_test(test_stray_continuation),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_offset_fast_path),
		cmocka_unit_test(test_reject_sticky),
		cmocka_unit_test(test_kuhn),
		cmocka_unit_test(test_split_valid),
		cmocka_unit_test(test_exhaustive_1_2_bytes),
		cmocka_unit_test(test_exhaustive_3_bytes),
		cmocka_unit_test(test_exhaustive_4_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
