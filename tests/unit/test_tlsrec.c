/*
 * test_tlsrec.c — unit tests for the TLS 1.3 record layer (daemon/tlsrec.c).
 *
 * Known answers from RFC 8448 §3 ("Simple 1-RTT Handshake",
 * TLS_AES_128_GCM_SHA256): the application traffic secrets, the keys and
 * ivs derived from them, and the complete records of that trace (the
 * client's 50 bytes 00..31 at client sequence 0, the server's echo at
 * server sequence 1, after its NewSessionTicket, and both close_notify
 * alerts). Then every receive rule of tlsrec.h, a record split at every
 * byte, KeyUpdate both ways, and partial sends through a small socket
 * buffer. Records for the daemon to read are sealed by a second tlsrec
 * playing the client (its secrets swapped).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsrec.h"

#define SUITE	TLSREC_AES_128_GCM_SHA256

static const char C_AP[] = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 "
    "df 00 87 f7 92 eb b7 c1 75 04 a5";
static const char S_AP[] = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b "
    "fb 6b 3a 4b 4f 1f 3f cb 63 16 43";
static const char C_KEY[] = "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51";
static const char C_IV[] = "5b 78 92 3d ee 08 57 90 33 e5 23 d9";
static const char S_KEY[] = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56";
static const char S_IV[] = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84";
static const char C_APP_REC[] = "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb "
    "ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e "
    "1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";
static const char S_APP_REC[] = "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 "
    "69 32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c "
    "4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";
static const char C_ALERT_REC[] = "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d "
    "b6 d0 b0 e3";
static const char S_ALERT_REC[] = "17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa "
    "7a 88 64 a9";

static size_t
hex(const char *s, uint8_t *out)
{
	size_t		n = 0;
	unsigned	b;

	while (*s != '\0') {
		if (*s == ' ') {
			s++;
			continue;
		}
		assert_int_equal(sscanf(s, "%2x", &b), 1);
		out[n++] = (uint8_t)b;
		s += 2;
	}
	return n;
}

/* The daemon's side (server) and a client, from RFC 8448's secrets. */
static void
pair(struct tlsrec *server, struct tlsrec *client, uint64_t cseq, uint64_t sseq)
{
	uint8_t	c[48], s[48];

	hex(C_AP, c);
	hex(S_AP, s);
	assert_int_equal(tlsrec_init(server, SUITE, c, s, cseq, sseq), 0);
	/* The client reads with the server's secret and writes with its own. */
	assert_int_equal(tlsrec_init(client, SUITE, s, c, sseq, cseq), 0);
}

/* Content of type ct sealed by r as one record into out; its length. */
static size_t
seal(struct tlsrec *r, uint8_t *out, const void *content, size_t n, uint8_t ct)
{
	memcpy(out + TLSREC_HEADER, content, n);
	n = tlsrec_seal(r, out, n, ct);
	assert_true(n > 0);
	return n;
}

/* Feeds buf to r and expects exactly one result. */
static int
feed(struct tlsrec *r, uint8_t *buf, size_t len, uint8_t **pt, size_t *ptlen)
{
	size_t	off = 0;
	int	rv;

	rv = tlsrec_next(r, buf, len, &off, pt, ptlen);
	if (rv == TLSREC_DATA || rv == TLSREC_MORE)
		assert_int_equal(off, len);
	return rv;
}

static void
free_parts(struct tlsrec *r)
{
	free(r->part);
	free(r->pend);
	r->part = r->pend = NULL;
}

static void
test_rfc8448_keys(void **state)
{
	uint8_t	secret[48], want[32], got[32];

	(void)state;
	hex(S_AP, secret);
	assert_int_equal(tlsrec_expand_label(SUITE, secret, "key", got, 16), 0);
	assert_memory_equal(got, want, hex(S_KEY, want));
	assert_int_equal(tlsrec_expand_label(SUITE, secret, "iv", got, 12), 0);
	assert_memory_equal(got, want, hex(S_IV, want));
	hex(C_AP, secret);
	assert_int_equal(tlsrec_expand_label(SUITE, secret, "key", got, 16), 0);
	assert_memory_equal(got, want, hex(C_KEY, want));
	assert_int_equal(tlsrec_expand_label(SUITE, secret, "iv", got, 12), 0);
	assert_memory_equal(got, want, hex(C_IV, want));
	assert_int_equal(tlsrec_suite_of("TLS_AES_128_GCM_SHA256"), TLSREC_AES_128_GCM_SHA256);
	assert_int_equal(tlsrec_suite_of("TLS_CHACHA20_POLY1305_SHA256"),
	    TLSREC_CHACHA20_POLY1305_SHA256);
	assert_int_equal(tlsrec_suite_of("ECDHE-RSA-AES128-GCM-SHA256"), -1);
}

/* The trace's records, both ways, byte for byte. */
static void
test_rfc8448_records(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 rec[128], want[128], *pt;
	size_t		 n, ptlen, i;
	int		 sp[2];
	uint8_t		 payload[50];

	(void)state;
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	/* The server has sent one NewSessionTicket: its sequence is 1. */
	pair(&s, &c, 0, 1);
	n = hex(C_APP_REC, rec);
	assert_int_equal(feed(&s, rec, n, &pt, &ptlen), TLSREC_DATA);
	assert_int_equal(ptlen, 50);
	assert_memory_equal(pt, payload, 50);
	/* Our echo, through the socket path, is the server's record. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	{
		struct iovec	iov = { payload, sizeof(payload) };
		bool		ww;

		assert_int_equal(tlsrec_writev(&s, sp[0], &iov, 1, &ww), 50);
		assert_false(ww);
	}
	n = hex(S_APP_REC, want);
	assert_int_equal(read(sp[1], rec, sizeof(rec)), (ssize_t)n);
	assert_memory_equal(rec, want, n);
	/* close_notify both ways. */
	n = hex(C_ALERT_REC, rec);
	assert_int_equal(feed(&s, rec, n, &pt, &ptlen), TLSREC_EOF);
	tlsrec_alert(&s, sp[0], 1, 0);
	n = hex(S_ALERT_REC, want);
	assert_int_equal(read(sp[1], rec, sizeof(rec)), (ssize_t)n);
	assert_memory_equal(rec, want, n);
	close(sp[0]);
	close(sp[1]);
}

/* Any change to the header, the ciphertext or the tag fails authentication. */
static void
test_tampering(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 rec[128], *pt;
	size_t		 n, ptlen, i;

	(void)state;
	n = hex(C_APP_REC, rec);
	/* Byte 0 is the type (checked apart); byte 3 would announce more than comes. */
	for (i = 1; i < n; i++) {
		if (i == 3)
			continue;
		pair(&s, &c, 0, 1);
		hex(C_APP_REC, rec);
		rec[i] ^= 0x01;
		assert_int_equal(feed(&s, rec, n, &pt, &ptlen), TLSREC_ERROR);
		assert_int_equal(s.alert, 20);	/* bad_record_mac */
		free_parts(&s);
	}
	/* the wrong sequence number (a replayed or dropped record) */
	pair(&s, &c, 1, 1);
	hex(C_APP_REC, rec);
	assert_int_equal(feed(&s, rec, n, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 20);
}

/* The trace's record split at every byte into two reads, then one byte at a time. */
static void
test_split_records(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 rec[128], copy[128], *pt;
	size_t		 n, ptlen, split, off, i;
	int		 rv;

	(void)state;
	n = hex(C_APP_REC, rec);
	for (split = 0; split <= n; split++) {
		pair(&s, &c, 0, 1);
		memcpy(copy, rec, n);
		off = 0;
		rv = tlsrec_next(&s, copy, split, &off, &pt, &ptlen);
		if (split < n) {
			assert_int_equal(rv, TLSREC_MORE);
			assert_int_equal(off, split);
			off = 0;
			rv = tlsrec_next(&s, copy + split, n - split, &off, &pt, &ptlen);
		}
		assert_int_equal(rv, TLSREC_DATA);
		assert_int_equal(ptlen, 50);
		for (i = 0; i < 50; i++)
			assert_int_equal(pt[i], i);
		free_parts(&s);
	}
	pair(&s, &c, 0, 1);
	memcpy(copy, rec, n);
	for (i = 0; i + 1 < n; i++) {
		off = 0;
		assert_int_equal(tlsrec_next(&s, copy + i, 1, &off, &pt, &ptlen), TLSREC_MORE);
	}
	off = 0;
	assert_int_equal(tlsrec_next(&s, copy + n - 1, 1, &off, &pt, &ptlen), TLSREC_DATA);
	assert_int_equal(ptlen, 50);
	/* the next call frees the kept record */
	off = 0;
	assert_int_equal(tlsrec_next(&s, copy, 0, &off, &pt, &ptlen), TLSREC_MORE);
	assert_null(s.part);
}

/* Several records in one read come out one by one; empty ones are skipped. */
static void
test_coalesced_records(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 buf[4096], *pt;
	size_t		 n = 0, ptlen, off = 0;

	(void)state;
	pair(&s, &c, 0, 0);
	n += seal(&c, buf + n, "one", 3, 23);
	n += seal(&c, buf + n, "", 0, 23);
	n += seal(&c, buf + n, "two", 3, 23);
	assert_int_equal(tlsrec_next(&s, buf, n, &off, &pt, &ptlen), TLSREC_DATA);
	assert_int_equal(ptlen, 3);
	assert_memory_equal(pt, "one", 3);
	assert_int_equal(tlsrec_next(&s, buf, n, &off, &pt, &ptlen), TLSREC_DATA);
	assert_memory_equal(pt, "two", 3);
	assert_int_equal(tlsrec_next(&s, buf, n, &off, &pt, &ptlen), TLSREC_MORE);
	assert_int_equal(off, n);
}

/* One bad record of each kind: the result and the alert we owe. */
static void
expect_error(const void *content, size_t n, uint8_t ct, uint8_t alert)
{
	struct tlsrec	 s, c;
	uint8_t		 buf[TLSREC_RECORD_MAX + 64], *pt;
	size_t		 len, ptlen;

	pair(&s, &c, 0, 0);
	len = seal(&c, buf, content, n, ct);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, alert);
	assert_non_null(s.why);
	free_parts(&s);
}

static void
test_receive_rules(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 buf[TLSREC_RECORD_MAX + 64], big[TLSREC_MAX_PLAIN + 1], *pt;
	size_t		 len, ptlen, off;

	(void)state;
	memset(big, 'x', sizeof(big));
	/* handshake content other than KeyUpdate (a NewSessionTicket here) */
	expect_error((const uint8_t[]){ 4, 0, 0, 1, 0 }, 5, 22, 10);
	/* KeyUpdate with a wrong length, a wrong value, data after it */
	expect_error((const uint8_t[]){ 24, 0, 0, 2, 0, 0 }, 6, 22, 50);
	expect_error((const uint8_t[]){ 24, 0, 0, 1, 2 }, 5, 22, 47);
	expect_error((const uint8_t[]){ 24, 0, 0, 1, 0, 24 }, 6, 22, 10);
	/* an empty handshake record; an alert of 1 or 3 bytes */
	expect_error("", 0, 22, 10);
	expect_error("\x01", 1, 21, 50);
	expect_error("\x01\x00\x00", 3, 21, 50);
	/* an unknown content type; change_cipher_spec inside */
	expect_error("x", 1, 24, 10);
	expect_error("\x01", 1, 20, 10);
	/* a fatal alert from the peer: an error, nothing owed */
	expect_error("\x02\x28", 2, 21, 0);
	/* content over 16 KiB, sealed legally otherwise */
	pair(&s, &c, 0, 0);
	memcpy(buf + TLSREC_HEADER, big, sizeof(big));
	len = tlsrec_seal(&c, buf, sizeof(big), 23);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 22);
	/* an inner plaintext of zeros only (no content type) */
	pair(&s, &c, 0, 0);
	len = seal(&c, buf, "\0\0\0", 3, 0);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 10);
	/* an unprotected record; an announced length over 2^14 + 256, before its body */
	pair(&s, &c, 0, 0);
	memcpy(buf, "\x16\x03\x03\x00\x05", 5);
	off = 0;
	assert_int_equal(tlsrec_next(&s, buf, 5, &off, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 10);
	pair(&s, &c, 0, 0);
	memcpy(buf, "\x17\x03\x03\x41\x01", 5);
	off = 0;
	assert_int_equal(tlsrec_next(&s, buf, 5, &off, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 22);
	assert_null(s.part);
	/* the same, announced in a record kept from an earlier read */
	pair(&s, &c, 0, 0);
	off = 0;
	assert_int_equal(tlsrec_next(&s, buf, 3, &off, &pt, &ptlen), TLSREC_MORE);
	off = 0;
	assert_int_equal(tlsrec_next(&s, buf + 3, 2, &off, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 22);
	free_parts(&s);
	/* a handshake fragment, then application data: interleaved */
	pair(&s, &c, 0, 0);
	len = seal(&c, buf, (const uint8_t[]){ 24, 0 }, 2, 22);
	len += seal(&c, buf + len, "data", 4, 23);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_ERROR);
	assert_int_equal(s.alert, 10);
	/* user_canceled is not an error (a close_notify follows) */
	pair(&s, &c, 0, 0);
	len = seal(&c, buf, "\x01\x5a", 2, 21);
	len += seal(&c, buf + len, "\x01\x00", 2, 21);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_EOF);
}

/*
 * The client updates its key, fragmented over two records, and asks for
 * ours: the daemon reads on with the new key, and its next write starts
 * with its own KeyUpdate, after which the client reads with the new key.
 */
static void
test_key_update(void **state)
{
	struct tlsrec	 s, c, c2;
	uint8_t		 buf[4096], c_ap[48], c_next[48], s_ap[48], *pt;
	size_t		 len, ptlen, off;
	int		 sp[2];
	struct iovec	 iov = { "after", 5 };
	bool		 ww;

	(void)state;
	pair(&s, &c, 0, 0);
	len = seal(&c, buf, (const uint8_t[]){ 24, 0, 0 }, 3, 22);
	len += seal(&c, buf + len, (const uint8_t[]){ 1, 1 }, 2, 22);
	/* the client's next records use its next secret */
	hex(C_AP, c_ap);
	hex(S_AP, s_ap);
	assert_int_equal(tlsrec_expand_label(SUITE, c_ap, "traffic upd", c_next, 32), 0);
	assert_int_equal(tlsrec_init(&c2, SUITE, s_ap, c_next, 0, 0), 0);
	len += seal(&c2, buf + len, "hello", 5, 23);
	assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_DATA);
	assert_int_equal(ptlen, 5);
	assert_memory_equal(pt, "hello", 5);
	assert_true(s.update_due);
	assert_int_equal(s.rd.seq, 1);
	/* our answer: KeyUpdate(update_not_requested), then data under the new key */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(tlsrec_writev(&s, sp[0], &iov, 1, &ww), 5);
	assert_false(s.update_due);
	len = (size_t)read(sp[1], buf, sizeof(buf));
	off = 0;
	assert_int_equal(tlsrec_next(&c2, buf, len, &off, &pt, &ptlen), TLSREC_DATA);
	assert_memory_equal(pt, "after", 5);
	assert_false(c2.update_due);	/* ours did not ask back */
	close(sp[0]);
	close(sp[1]);
}

/*
 * Through a small socket buffer: sealed bytes the socket refuses are kept
 * and sent first, and the caller's bytes are reported done only then, never
 * sealed twice. The reader gets every byte, in order.
 */
static void
test_partial_sends(void **state)
{
	struct tlsrec	 s, c;
	static uint8_t	 data[300000], got[300000], rbuf[65536];
	size_t		 sent = 0, ngot = 0, off, ptlen, i;
	uint8_t		*pt;
	ssize_t		 n, r;
	int		 sp[2], small = 4096, rounds = 0, rv;
	bool		 ww, waited = false;

	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	pair(&s, &c, 0, 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(sp[1], F_SETFL, O_NONBLOCK);
	while (ngot < sizeof(data) && rounds++ < 100000) {
		if (sent < sizeof(data)) {
			struct iovec	iov = { data + sent, sizeof(data) - sent };

			n = tlsrec_writev(&s, sp[0], &iov, 1, &ww);
			assert_true(n >= 0);
			if (ww) {
				assert_int_equal(n, 0);
				waited = true;
			}
			sent += (size_t)n;
		}
		r = read(sp[1], rbuf, sizeof(rbuf));
		if (r <= 0)
			continue;
		off = 0;
		/* the client reads with the server's secret */
		while ((rv = tlsrec_next(&c, rbuf, (size_t)r, &off, &pt, &ptlen)) == TLSREC_DATA) {
			assert_true(ngot + ptlen <= sizeof(got));
			memcpy(got + ngot, pt, ptlen);
			ngot += ptlen;
		}
		assert_int_equal(rv, TLSREC_MORE);
	}
	assert_true(waited);
	assert_int_equal(ngot, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	assert_null(s.pend);
	free_parts(&c);
	close(sp[0]);
	close(sp[1]);
}

/* Every suite seals and opens (with the secret lengths of its hash). */
static void
test_suites(void **state)
{
	struct tlsrec	 s, c;
	uint8_t		 sec1[48], sec2[48], buf[256], *pt;
	size_t		 len, ptlen;
	int		 suite;

	(void)state;
	memset(sec1, 0x11, sizeof(sec1));
	memset(sec2, 0x22, sizeof(sec2));
	for (suite = 0; suite <= TLSREC_CHACHA20_POLY1305_SHA256; suite++) {
		assert_int_equal(tlsrec_init(&s, suite, sec1, sec2, 0, 0), 0);
		assert_int_equal(tlsrec_init(&c, suite, sec2, sec1, 0, 0), 0);
		len = seal(&c, buf, "suite", 5, 23);
		assert_int_equal(feed(&s, buf, len, &pt, &ptlen), TLSREC_DATA);
		assert_memory_equal(pt, "suite", 5);
	}
	assert_int_equal(tlsrec_hash_len(TLSREC_AES_256_GCM_SHA384), 48);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8448_keys),
		cmocka_unit_test(test_rfc8448_records),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_split_records),
		cmocka_unit_test(test_coalesced_records),
		cmocka_unit_test(test_receive_rules),
		cmocka_unit_test(test_key_update),
		cmocka_unit_test(test_partial_sends),
		cmocka_unit_test(test_suites),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
