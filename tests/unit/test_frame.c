/*
 * test_frame.c — unit tests for the RFC 6455 frame codec (daemon/frame.c).
 *
 * Every input is fed to the parser in exactly sized heap buffers, one per
 * chunk, freed as soon as the chunk is consumed: under ASan or valgrind any
 * read past a chunk or any pointer the parser keeps into an old chunk shows
 * up. Event payloads are copied as they arrive (they are only valid until the
 * next call) and compared with the expected events; the same input split at
 * every offset and fed byte by byte must give the same events.
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

#include "frame.h"

#define KiB	1024u
#define MiB	(1024u * 1024u)

/* The daemon's (server side) limits, and the client side ones. */
static const struct ws_limits LIM = { 1 * MiB, 16 * MiB, true };
static const struct ws_limits LIM_CLIENT = { 1 * MiB, 16 * MiB, false };

static const uint8_t KEY[4] = { 0x37, 0xfa, 0x21, 0x3d };	/* RFC 6455 §5.7 */

#define RSV1	0x40
#define RSV2	0x20
#define RSV3	0x10

/* ------------------------------------------------------------------------
 * Building input.
 */
struct bytes {
	uint8_t	*p;
	size_t	 len, cap;
};

static void
b_put(struct bytes *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void
b_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

enum len_enc { ENC_AUTO, ENC_7, ENC_16, ENC_64 };

/*
 * Appends a frame. enc forces the length encoding (ENC_AUTO: the minimal one,
 * through ws_frame_header); rsv is ORed into the first byte; mask NULL for an
 * unmasked frame. The payload is masked with ws_mask.
 */
static void
add_frame_ex(struct bytes *b, bool fin, uint8_t rsv, uint8_t op, const void *payload,
    size_t n, const uint8_t *mask, enum len_enc enc)
{
	uint8_t	h[WS_MAX_HEADER];
	size_t	hl = 2, start;
	int	i;

	if (enc == ENC_AUTO)
		hl = ws_frame_header(h, fin, op, n, mask);
	else {
		h[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
		h[1] = mask != NULL ? 0x80 : 0;
		switch (enc) {
		case ENC_7:
			assert_true(n <= 125);
			h[1] |= (uint8_t)n;
			break;
		case ENC_16:
			assert_true(n <= 0xffff);
			h[1] |= 126;
			h[hl++] = (uint8_t)(n >> 8);
			h[hl++] = (uint8_t)n;
			break;
		default:
			h[1] |= 127;
			for (i = 0; i < 8; i++)
				h[hl++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
			break;
		}
		if (mask != NULL) {
			memcpy(h + hl, mask, 4);
			hl += 4;
		}
	}
	h[0] |= rsv;
	b_put(b, h, hl);
	start = b->len;
	b_put(b, payload, n);
	if (mask != NULL)
		ws_mask(b->p + start, n, mask, 0);
}

/* A masked client frame with the minimal length encoding. */
static void
add_frame(struct bytes *b, bool fin, uint8_t op, const void *payload, size_t n)
{
	add_frame_ex(b, fin, 0, op, payload, n, KEY, ENC_AUTO);
}

static void
add_str(struct bytes *b, bool fin, uint8_t op, const char *s)
{
	add_frame(b, fin, op, s, strlen(s));
}

/* Deterministic payload bytes; text payloads stay ASCII. */
static uint8_t *
make_payload(size_t n, bool text)
{
	uint8_t	*p = malloc(n ? n : 1);
	size_t	 i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = text ? (uint8_t)('a' + (i * 7 + i / 26) % 26) : (uint8_t)(i * 131 + 17);
	return p;
}

/* ------------------------------------------------------------------------
 * Running the parser and recording its events.
 */
#define MAX_EVENTS	64

struct rec {
	enum ws_event_type	 type;
	uint8_t			 opcode;
	uint16_t		 code;
	size_t			 len;
	uint8_t			*data;		/* copy */
	bool			 zero_copy;	/* data pointed into the input chunk */
};

struct recs {
	struct rec	ev[MAX_EVENTS];
	size_t		n;
};

static void
recs_free(struct recs *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->ev[i].data);
	r->n = 0;
}

/*
 * Feeds in[0..n) to p in chunks ending at cuts[] (and a last one), each in
 * its own exactly sized heap buffer. Stops after WS_EV_ERROR. With
 * empty_calls, an empty call (buf NULL, len 0) is made before every chunk but
 * the first: it must report nothing.
 */
static void
run_parser_ex(struct ws_parser *p, const struct ws_limits *lim, const uint8_t *in, size_t n,
    const size_t *cuts, size_t ncuts, bool empty_calls, struct recs *r)
{
	struct ws_event		 ev;
	enum ws_event_type	 t;
	size_t			 c, start = 0, end, clen, off;
	uint8_t			*buf;
	struct rec		*e;

	for (c = 0; c <= ncuts; c++) {
		end = c < ncuts ? cuts[c] : n;
		assert_true(end >= start && end <= n);
		clen = end - start;
		buf = malloc(clen ? clen : 1);
		assert_non_null(buf);
		if (clen)
			memcpy(buf, in + start, clen);
		if (empty_calls && c > 0) {
			off = 0;
			assert_int_equal(ws_parser_next(p, lim, NULL, 0, &off, &ev), WS_EV_NONE);
			assert_int_equal(off, 0);
		}
		off = 0;
		for (;;) {
			t = ws_parser_next(p, lim, buf, clen, &off, &ev);
			assert_int_equal(t, ev.type);
			assert_true(off <= clen);
			if (t == WS_EV_NONE) {
				assert_int_equal(off, clen);
				break;
			}
			assert_true(r->n < MAX_EVENTS);
			e = &r->ev[r->n++];
			memset(e, 0, sizeof(*e));
			e->type = t;
			e->opcode = ev.opcode;
			e->code = ev.code;
			e->len = ev.len;
			if (t == WS_EV_ERROR) {
				assert_non_null(ev.error);
				assert_true(ev.code >= 1000);
				free(buf);
				return;
			}
			if (ev.len > 0) {
				assert_non_null(ev.data);
				/* payloads come from the chunk or the parser's buffers */
				e->zero_copy = ev.data >= buf && ev.data + ev.len <= buf + clen;
				if (!e->zero_copy)
					assert_true((p->msg != NULL && ev.data == p->msg->data) || ev.data == p->ctl ||
					    (p->ctl != NULL && ev.data == p->ctl + 2));
				e->data = malloc(ev.len);
				assert_non_null(e->data);
				memcpy(e->data, ev.data, ev.len);
			}
		}
		free(buf);
		start = end;
	}
}

static void
run_parser(struct ws_parser *p, const struct ws_limits *lim, const uint8_t *in, size_t n,
    const size_t *cuts, size_t ncuts, struct recs *r)
{
	run_parser_ex(p, lim, in, n, cuts, ncuts, false, r);
}

/* Expected events. */
struct exp {
	enum ws_event_type	 type;
	uint8_t			 opcode;
	uint16_t		 code;
	const void		*data;
	size_t			 len;
};

#define E_MSG(op, s)		{ WS_EV_MESSAGE, (op), 0, (s), sizeof(s) - 1 }
#define E_TEXT(s)		E_MSG(WS_OP_TEXT, s)
#define E_BIN(s)		E_MSG(WS_OP_BINARY, s)
#define E_PING(s)		{ WS_EV_PING, 0, 0, (s), sizeof(s) - 1 }
#define E_PONG(s)		{ WS_EV_PONG, 0, 0, (s), sizeof(s) - 1 }
#define E_CLOSE(c, s)		{ WS_EV_CLOSE, 0, (c), (s), sizeof(s) - 1 }
#define E_ERR(c)		{ WS_EV_ERROR, 0, (c), NULL, 0 }

static const char *
type_name(enum ws_event_type t)
{
	static const char *const names[] = { "NONE", "MESSAGE", "PING", "PONG", "CLOSE",
	    "ERROR" };

	return (unsigned)t < 6 ? names[t] : "?";
}

static void
compare(const struct recs *r, const struct exp *x, size_t nx, const char *how)
{
	size_t i;

	for (i = 0; i < r->n && i < nx; i++) {
		if (r->ev[i].type != x[i].type || r->ev[i].opcode != x[i].opcode ||
		    r->ev[i].code != x[i].code ||
		    (x[i].type != WS_EV_ERROR && (r->ev[i].len != x[i].len ||
		    (x[i].len > 0 && memcmp(r->ev[i].data, x[i].data, x[i].len) != 0)))) {
			fprintf(stderr, "%s: event %zu: got %s op %u code %u len %zu, "
			    "want %s op %u code %u len %zu\n", how, i,
			    type_name(r->ev[i].type), r->ev[i].opcode, r->ev[i].code,
			    r->ev[i].len, type_name(x[i].type), x[i].opcode, x[i].code,
			    x[i].len);
			fail();
		}
	}
	if (r->n != nx) {
		fprintf(stderr, "%s: got %zu events, want %zu\n", how, r->n, nx);
		fail();
	}
}

/*
 * Runs one feeding of the input on a fresh parser; checks the events and,
 * for a stream that ends cleanly, that the parser is idle and owns no memory
 * once the next call has been made.
 */
static void
check_run(const struct ws_limits *lim, const uint8_t *in, size_t n, const size_t *cuts,
    size_t ncuts, bool empty_calls, const struct exp *x, size_t nx, const char *how)
{
	struct ws_parser	p;
	struct ws_event		ev;
	struct recs		r = { .n = 0 };
	size_t			off = 0;
	uint8_t			dummy = 0;

	ws_parser_init(&p);
	run_parser_ex(&p, lim, in, n, cuts, ncuts, empty_calls, &r);
	compare(&r, x, nx, how);
	if (nx == 0 || x[nx - 1].type != WS_EV_ERROR) {
		assert_false(ws_parser_busy(&p));
		assert_int_equal(ws_parser_next(&p, lim, &dummy, 0, &off, &ev), WS_EV_NONE);
		assert_null(p.msg);
		assert_null(p.ctl);
	}
	ws_parser_free(&p);
	recs_free(&r);
}

/*
 * The input gives the expected events one-shot, split in two at every offset
 * (a sample of offsets for big inputs; with an empty call at the cut, which
 * thus happens in every parser state), and byte by byte.
 */
static void
check_stream(const struct ws_limits *lim, const uint8_t *in, size_t n, const struct exp *x,
    size_t nx)
{
	size_t	 cut, *cuts, i, step;
	char	 how[64];

	check_run(lim, in, n, NULL, 0, false, x, nx, "one-shot");

	step = n <= 4 * KiB ? 1 : n / 61;
	for (cut = 0; cut <= n; cut++) {
		if (n > 4 * KiB && cut > 40 && cut < n - 40 && cut % step != 0)
			continue;
		snprintf(how, sizeof(how), "split at %zu", cut);
		check_run(lim, in, n, &cut, 1, true, x, nx, how);
	}

	if (n > 1) {
		cuts = malloc((n - 1) * sizeof(*cuts));
		assert_non_null(cuts);
		for (i = 0; i < n - 1; i++)
			cuts[i] = i + 1;
		check_run(lim, in, n, cuts, n - 1, false, x, nx, "byte by byte");
		free(cuts);
	}
}

#define CHECK_STREAM(lim, b, ...) do {						\
	const struct exp x_[] = { __VA_ARGS__ };				\
	check_stream((lim), (b)->p, (b)->len, x_, sizeof(x_) / sizeof(x_[0]));	\
} while (0)

#define CHECK_BYTES(lim, arr, ...) do {						\
	const struct exp x_[] = { __VA_ARGS__ };				\
	check_stream((lim), (arr), sizeof(arr), x_, sizeof(x_) / sizeof(x_[0])); \
} while (0)

/* One frame (or a few) expected to fail with `code`, every way of feeding it. */
static void
expect_error(const struct ws_limits *lim, const struct bytes *b, uint16_t code)
{
	const struct exp x[] = { E_ERR(code) };

	check_stream(lim, b->p, b->len, x, 1);
}

/* ------------------------------------------------------------------------
 * Well-formed input.
 */

/* The examples of RFC 6455 §5.7, byte for byte. */
static void
test_rfc_examples(void **state)
{
	static const uint8_t unmasked_hello[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const uint8_t masked_hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
	    0x9f, 0x4d, 0x51, 0x58 };
	static const uint8_t fragmented[] = { 0x01, 0x03, 0x48, 0x65, 0x6c,
	    0x80, 0x02, 0x6c, 0x6f };
	static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
	static const uint8_t masked_pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
	    0x9f, 0x4d, 0x51, 0x58 };
	static const uint8_t bin256_hdr[] = { 0x82, 0x7e, 0x01, 0x00 };
	static const uint8_t bin64k_hdr[] = { 0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x01, 0x00, 0x00 };
	struct bytes	 b = { 0 };
	uint8_t		*payload;
	struct exp	 x;

	(void)state;
	CHECK_BYTES(&LIM_CLIENT, unmasked_hello, E_TEXT("Hello"));
	CHECK_BYTES(&LIM, masked_hello, E_TEXT("Hello"));
	CHECK_BYTES(&LIM_CLIENT, fragmented, E_TEXT("Hello"));
	CHECK_BYTES(&LIM_CLIENT, ping, E_PING("Hello"));
	CHECK_BYTES(&LIM, masked_pong, E_PONG("Hello"));
	/* and the wrong side's framing is refused */
	CHECK_BYTES(&LIM, unmasked_hello, E_ERR(1002));
	CHECK_BYTES(&LIM_CLIENT, masked_hello, E_ERR(1002));

	payload = make_payload(65536, false);
	b_put(&b, bin256_hdr, sizeof(bin256_hdr));
	b_put(&b, payload, 256);
	x = (struct exp){ WS_EV_MESSAGE, WS_OP_BINARY, 0, payload, 256 };
	check_stream(&LIM_CLIENT, b.p, b.len, &x, 1);
	b_free(&b);
	b_put(&b, bin64k_hdr, sizeof(bin64k_hdr));
	b_put(&b, payload, 65536);
	x = (struct exp){ WS_EV_MESSAGE, WS_OP_BINARY, 0, payload, 65536 };
	check_stream(&LIM_CLIENT, b.p, b.len, &x, 1);
	b_free(&b);
	free(payload);
}

/* Single text and binary frames with 7-, 16- and 64-bit lengths. */
static void
test_single_frame_lengths(void **state)
{
	static const size_t lens[] = { 0, 1, 125, 126, 127, 1000, 65535, 65536, 70001 };
	static const uint8_t ops[] = { WS_OP_TEXT, WS_OP_BINARY };
	struct bytes	 b = { 0 };
	uint8_t		*payload;
	size_t		 i, j, hl;
	struct exp	 x;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (j = 0; j < 2; j++) {
			payload = make_payload(lens[i], ops[j] == WS_OP_TEXT);
			add_frame(&b, true, ops[j], payload, lens[i]);
			hl = lens[i] < 126 ? 6 : lens[i] < 65536 ? 8 : 14;
			assert_int_equal(b.len, hl + lens[i]);
			x = (struct exp){ WS_EV_MESSAGE, ops[j], 0, payload, lens[i] };
			check_stream(&LIM, b.p, b.len, &x, 1);
			b_free(&b);
			free(payload);
		}
	}
}

/*
 * The length field is decoded whatever its encoding: a non-minimal 16- or
 * 64-bit encoding of a short length is accepted (RFC 6455 only requires the
 * sender to use the minimal one).
 */
static void
test_length_encodings(void **state)
{
	static const enum len_enc encs[] = { ENC_7, ENC_16, ENC_64 };
	struct bytes	b = { 0 };
	size_t		i;

	(void)state;
	for (i = 0; i < 3; i++) {
		add_frame_ex(&b, true, 0, WS_OP_TEXT, "hello", 5, KEY, encs[i]);
		CHECK_STREAM(&LIM, &b, E_TEXT("hello"));
		b_free(&b);
		add_frame_ex(&b, true, 0, WS_OP_PING, "p", 1, KEY, encs[i]);
		CHECK_STREAM(&LIM, &b, E_PING("p"));
		b_free(&b);
		add_frame_ex(&b, true, 0, WS_OP_BINARY, "", 0, KEY, encs[i]);
		CHECK_STREAM(&LIM, &b, E_BIN(""));
		b_free(&b);
	}
	add_frame_ex(&b, true, 0, WS_OP_BINARY, "0123456789", 10, KEY, ENC_64);
	add_frame_ex(&b, true, 0, WS_OP_TEXT, "abc", 3, KEY, ENC_16);
	CHECK_STREAM(&LIM, &b, E_BIN("0123456789"), E_TEXT("abc"));
	b_free(&b);
}

/* A whole unfragmented message in the buffer is unmasked in place and handed out from there. */
static void
test_zero_copy(void **state)
{
	static const size_t lens[] = { 0, 5, 125, 126, 65535, 65536 };
	struct ws_parser	 p;
	struct ws_event		 ev;
	struct bytes		 b = { 0 };
	uint8_t			*payload;
	size_t			 i, off, hl;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		payload = make_payload(lens[i], false);
		add_frame(&b, true, WS_OP_BINARY, payload, lens[i]);
		hl = b.len - lens[i];
		ws_parser_init(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_MESSAGE);
		assert_int_equal(ev.opcode, WS_OP_BINARY);
		assert_int_equal(off, b.len);
		assert_ptr_equal(ev.data, b.p + hl);
		assert_int_equal(ev.len, lens[i]);
		if (lens[i])	/* unmasked in place */
			assert_memory_equal(b.p + hl, payload, lens[i]);
		assert_null(p.msg);
		assert_null(p.ctl);
		assert_false(ws_parser_busy(&p));
		assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_NONE);
		ws_parser_free(&p);
		b_free(&b);
		free(payload);
	}

	/* the RFC example: "Hello" appears in the buffer itself */
	{
		uint8_t buf[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
		    0x51, 0x58 };

		ws_parser_init(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, buf, sizeof(buf), &off, &ev),
		    WS_EV_MESSAGE);
		assert_ptr_equal(ev.data, buf + 6);
		assert_memory_equal(buf + 6, "Hello", 5);
		ws_parser_free(&p);
	}

	/* several frames in one buffer: each event points into it, control ones too */
	{
		struct recs r = { .n = 0 };

		add_str(&b, true, WS_OP_TEXT, "one");
		add_str(&b, true, WS_OP_PING, "ping");
		add_str(&b, true, WS_OP_BINARY, "two");
		add_str(&b, true, WS_OP_PONG, "pong");
		ws_parser_init(&p);
		run_parser(&p, &LIM, b.p, b.len, NULL, 0, &r);
		assert_int_equal(r.n, 4);
		for (i = 0; i < r.n; i++)
			assert_true(r.ev[i].zero_copy);
		recs_free(&r);
		ws_parser_free(&p);
		b_free(&b);
	}
}

static void
test_several_frames_one_buffer(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	add_str(&b, true, WS_OP_TEXT, "first");
	add_str(&b, true, WS_OP_BINARY, "second");
	add_frame(&b, true, WS_OP_TEXT, "", 0);
	add_str(&b, true, WS_OP_PING, "are you there");
	add_str(&b, true, WS_OP_PONG, "");
	add_str(&b, true, WS_OP_TEXT, "caf\xc3\xa9 \xf0\x9f\x8d\xba");
	add_frame(&b, true, WS_OP_CLOSE, "\x03\xe8" "bye", 5);
	CHECK_STREAM(&LIM, &b, E_TEXT("first"), E_BIN("second"), E_TEXT(""),
	    E_PING("are you there"), E_PONG(""), E_TEXT("caf\xc3\xa9 \xf0\x9f\x8d\xba"),
	    E_CLOSE(1000, "bye"));
	b_free(&b);
}

/* A text message across three frames, the last an empty continuation. */
static void
test_fragmented(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	add_str(&b, false, WS_OP_TEXT, "Hello, w\xc3");	/* 'ö' split across frames */
	add_str(&b, false, WS_OP_CONT, "\xb6rld");
	add_frame(&b, true, WS_OP_CONT, "", 0);
	CHECK_STREAM(&LIM, &b, E_TEXT("Hello, w\xc3\xb6rld"));
	b_free(&b);

	/* a 4-byte character split over three frames */
	add_str(&b, false, WS_OP_TEXT, "\xf0\x9f");
	add_str(&b, false, WS_OP_CONT, "\x98");
	add_str(&b, true, WS_OP_CONT, "\x80!");
	CHECK_STREAM(&LIM, &b, E_TEXT("\xf0\x9f\x98\x80!"));
	b_free(&b);

	/* empty first fragment, then the payload in the final one */
	add_frame(&b, false, WS_OP_TEXT, "", 0);
	add_str(&b, true, WS_OP_CONT, "abc");
	CHECK_STREAM(&LIM, &b, E_TEXT("abc"));
	b_free(&b);

	/* all fragments empty */
	add_frame(&b, false, WS_OP_BINARY, "", 0);
	add_frame(&b, false, WS_OP_CONT, "", 0);
	add_frame(&b, true, WS_OP_CONT, "", 0);
	CHECK_STREAM(&LIM, &b, E_BIN(""));
	b_free(&b);

	/* binary, many fragments, then another message */
	add_str(&b, false, WS_OP_BINARY, "a");
	add_str(&b, false, WS_OP_CONT, "bc");
	add_str(&b, false, WS_OP_CONT, "def");
	add_str(&b, true, WS_OP_CONT, "ghij");
	add_str(&b, true, WS_OP_TEXT, "next");
	CHECK_STREAM(&LIM, &b, E_BIN("abcdefghij"), E_TEXT("next"));
	b_free(&b);

	/* two fragmented messages back to back */
	add_str(&b, false, WS_OP_TEXT, "12");
	add_str(&b, true, WS_OP_CONT, "34");
	add_str(&b, false, WS_OP_BINARY, "56");
	add_str(&b, true, WS_OP_CONT, "78");
	CHECK_STREAM(&LIM, &b, E_TEXT("1234"), E_BIN("5678"));
	b_free(&b);
}

/* A large fragmented message: fragments of 16-bit and 64-bit lengths. */
static void
test_fragmented_large(void **state)
{
	uint8_t		*payload;
	struct bytes	 b = { 0 };
	struct exp	 x;
	size_t		 n = 200000;

	(void)state;
	payload = make_payload(n, true);
	add_frame(&b, false, WS_OP_TEXT, payload, 100);
	add_frame(&b, false, WS_OP_CONT, payload + 100, 70000);
	add_frame(&b, false, WS_OP_CONT, payload + 70100, 1000);
	add_frame(&b, true, WS_OP_CONT, payload + 71100, n - 71100);
	x = (struct exp){ WS_EV_MESSAGE, WS_OP_TEXT, 0, payload, n };
	check_stream(&LIM, b.p, b.len, &x, 1);
	b_free(&b);
	free(payload);
}

/* Control frames between fragments are reported in order; the message still completes. */
static void
test_fragmented_interleaved_control(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	add_str(&b, false, WS_OP_TEXT, "Hel");
	add_str(&b, true, WS_OP_PING, "ping 1");
	add_str(&b, false, WS_OP_CONT, "lo \xe2\x82");
	add_str(&b, true, WS_OP_PONG, "");
	add_str(&b, true, WS_OP_PING, "");
	add_str(&b, false, WS_OP_CONT, "\xac");
	add_frame(&b, true, WS_OP_PING, "\x00\x01\x02", 3);
	add_frame(&b, true, WS_OP_CONT, "", 0);
	add_str(&b, true, WS_OP_TEXT, "after");
	CHECK_STREAM(&LIM, &b, E_PING("ping 1"), E_PONG(""), E_PING(""),
	    E_PING("\x00\x01\x02"), E_TEXT("Hello \xe2\x82\xac"), E_TEXT("after"));
	b_free(&b);

	/* a close frame between fragments is reported too */
	add_str(&b, false, WS_OP_BINARY, "ab");
	add_frame(&b, true, WS_OP_CLOSE, "\x03\xe9", 2);
	add_str(&b, true, WS_OP_CONT, "cd");
	CHECK_STREAM(&LIM, &b, E_CLOSE(1001, ""), E_BIN("abcd"));
	b_free(&b);

	/* a 125-byte ping between fragments */
	{
		char big[126];

		memset(big, 'P', 125);
		big[125] = '\0';
		add_str(&b, false, WS_OP_TEXT, "x");
		add_str(&b, true, WS_OP_PING, big);
		add_str(&b, true, WS_OP_CONT, "y");
		{
			const struct exp x[] = {
				{ WS_EV_PING, 0, 0, big, 125 },
				E_TEXT("xy"),
			};

			check_stream(&LIM, b.p, b.len, x, 2);
		}
		b_free(&b);
	}
}

static void
test_ping_pong(void **state)
{
	char		big[126];
	struct bytes	b = { 0 };
	const uint8_t	zeros[4] = { 0 }, ones[4] = { 0xff, 0xff, 0xff, 0xff };

	(void)state;
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 125; i++)
		big[i] = (char)('!' + i % 90);

	add_frame(&b, true, WS_OP_PING, "", 0);
	add_frame(&b, true, WS_OP_PONG, "", 0);
	add_str(&b, true, WS_OP_PING, big);
	add_str(&b, true, WS_OP_PONG, big);
	{
		const struct exp x[] = {
			E_PING(""), E_PONG(""),
			{ WS_EV_PING, 0, 0, big, 125 },
			{ WS_EV_PONG, 0, 0, big, 125 },
		};

		check_stream(&LIM, b.p, b.len, x, 4);
	}
	b_free(&b);

	/* binary payloads, other mask keys */
	add_frame_ex(&b, true, 0, WS_OP_PING, "\x00\xff\x80", 3, zeros, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_PONG, "\x00\xff\x80", 3, ones, ENC_AUTO);
	CHECK_STREAM(&LIM, &b, E_PING("\x00\xff\x80"), E_PONG("\x00\xff\x80"));
	b_free(&b);
}

/* ------------------------------------------------------------------------
 * Protocol errors, each with its close code.
 */
static void
test_err_masking(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	/* server side: unmasked client frames */
	add_frame_ex(&b, true, 0, WS_OP_TEXT, "hi", 2, NULL, ENC_AUTO);
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	add_frame_ex(&b, true, 0, WS_OP_PING, "", 0, NULL, ENC_AUTO);
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	/* ... also after good frames */
	add_str(&b, true, WS_OP_TEXT, "ok");
	add_frame_ex(&b, true, 0, WS_OP_BINARY, "x", 1, NULL, ENC_AUTO);
	CHECK_STREAM(&LIM, &b, E_TEXT("ok"), E_ERR(1002));
	b_free(&b);
	/* a continuation unmasked mid-message */
	add_str(&b, false, WS_OP_TEXT, "ok");
	add_frame_ex(&b, true, 0, WS_OP_CONT, "x", 1, NULL, ENC_AUTO);
	expect_error(&LIM, &b, 1002);
	b_free(&b);

	/* client side: masked server frames */
	add_str(&b, true, WS_OP_TEXT, "hi");
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
	add_str(&b, true, WS_OP_CLOSE, "");
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
}

static void
test_err_rsv(void **state)
{
	static const uint8_t rsv[] = { RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3 };
	static const uint8_t ops[] = { WS_OP_TEXT, WS_OP_BINARY, WS_OP_PING, WS_OP_CLOSE };
	struct bytes	b = { 0 };
	size_t		i, j;

	(void)state;
	for (i = 0; i < sizeof(rsv); i++) {
		for (j = 0; j < sizeof(ops); j++) {
			add_frame_ex(&b, true, rsv[i], ops[j], "", 0, KEY, ENC_AUTO);
			expect_error(&LIM, &b, 1002);
			b_free(&b);
		}
		/* on a continuation */
		add_str(&b, false, WS_OP_TEXT, "a");
		add_frame_ex(&b, true, rsv[i], WS_OP_CONT, "b", 1, KEY, ENC_AUTO);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		/* client side too */
		add_frame_ex(&b, true, rsv[i], WS_OP_TEXT, "x", 1, NULL, ENC_AUTO);
		expect_error(&LIM_CLIENT, &b, 1002);
		b_free(&b);
	}
}

static void
test_err_opcodes(void **state)
{
	struct bytes	b = { 0 };
	uint8_t		op;

	(void)state;
	for (op = 0; op < 16; op++) {
		if (op <= 2 || (op >= 8 && op <= 0xa))
			continue;
		add_frame(&b, true, op, "", 0);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		add_frame(&b, false, op, "xyz", 3);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		/* in the middle of a fragmented message */
		add_str(&b, false, WS_OP_TEXT, "a");
		add_frame(&b, true, op, "", 0);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
	}
}

static void
test_err_control_frames(void **state)
{
	static const uint8_t ops[] = { WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE };
	uint8_t		payload[130];
	struct bytes	b = { 0 };
	size_t		i;

	(void)state;
	memset(payload, 'x', sizeof(payload));
	payload[0] = 0x03;	/* close code 1000 */
	payload[1] = 0xe8;
	for (i = 0; i < sizeof(ops); i++) {
		/* 125 bytes is fine, 126 is not (16-bit length), nor 127 */
		add_frame(&b, true, ops[i], payload, 125);
		{
			struct exp x = { WS_EV_PING, 0, 0, payload, 125 };

			if (ops[i] == WS_OP_PONG)
				x.type = WS_EV_PONG;
			else if (ops[i] == WS_OP_CLOSE)
				x = (struct exp){ WS_EV_CLOSE, 0, 1000, payload + 2, 123 };
			check_stream(&LIM, b.p, b.len, &x, 1);
		}
		b_free(&b);
		add_frame(&b, true, ops[i], payload, 126);
		assert_int_equal(b.p[1], 0x80 | 126);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		add_frame_ex(&b, true, 0, ops[i], payload, 127, KEY, ENC_64);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		/* fragmented control frames (FIN=0), even empty ones */
		add_frame(&b, false, ops[i], "", 0);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		add_frame(&b, false, ops[i], payload, 2);
		expect_error(&LIM, &b, 1002);
		b_free(&b);
	}
}

static void
test_err_fragmentation(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	/* a continuation without a message */
	add_str(&b, true, WS_OP_CONT, "x");
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	add_str(&b, false, WS_OP_CONT, "x");
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	/* ... right after a complete message */
	add_str(&b, false, WS_OP_TEXT, "a");
	add_str(&b, true, WS_OP_CONT, "b");
	add_str(&b, true, WS_OP_CONT, "c");
	CHECK_STREAM(&LIM, &b, E_TEXT("ab"), E_ERR(1002));
	b_free(&b);
	add_str(&b, true, WS_OP_BINARY, "a");
	add_frame(&b, true, WS_OP_CONT, "", 0);
	CHECK_STREAM(&LIM, &b, E_BIN("a"), E_ERR(1002));
	b_free(&b);

	/* a new data frame while a message is open */
	add_str(&b, false, WS_OP_TEXT, "a");
	add_str(&b, true, WS_OP_TEXT, "b");
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	add_str(&b, false, WS_OP_TEXT, "a");
	add_str(&b, false, WS_OP_BINARY, "b");
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	add_str(&b, false, WS_OP_BINARY, "a");
	add_str(&b, true, WS_OP_PING, "p");
	add_str(&b, false, WS_OP_CONT, "b");
	add_str(&b, true, WS_OP_BINARY, "c");
	CHECK_STREAM(&LIM, &b, E_PING("p"), E_ERR(1002));
	b_free(&b);
}

static void
test_err_length_top_bit(void **state)
{
	/* masked binary, 64-bit length 0x8000000000000000 (+ mask key) */
	static const uint8_t top[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0,
	    0x37, 0xfa, 0x21, 0x3d };
	static const uint8_t all_ones[] = { 0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0x37, 0xfa, 0x21, 0x3d };
	static const uint8_t top_small[] = { 0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x05,
	    0x37, 0xfa, 0x21, 0x3d };
	/* client side, unmasked */
	static const uint8_t top_unmasked[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0 };
	/* 2^63 - 1: legal encoding, just too big */
	static const uint8_t max63[] = { 0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0x37, 0xfa, 0x21, 0x3d };

	(void)state;
	CHECK_BYTES(&LIM, top, E_ERR(1002));
	CHECK_BYTES(&LIM, all_ones, E_ERR(1002));
	CHECK_BYTES(&LIM, top_small, E_ERR(1002));
	CHECK_BYTES(&LIM_CLIENT, top_unmasked, E_ERR(1002));
	CHECK_BYTES(&LIM, max63, E_ERR(1009));
}

/* Feeds `in` one byte at a time; the error must come exactly with byte `at`. */
static void
expect_error_at(const struct ws_limits *lim, const uint8_t *in, size_t n, size_t at,
    uint16_t code)
{
	struct ws_parser	p;
	struct ws_event		ev;
	enum ws_event_type	t = WS_EV_NONE;
	size_t			i, off;
	uint8_t			byte;

	ws_parser_init(&p);
	for (i = 0; i < n; i++) {
		byte = in[i];
		off = 0;
		t = ws_parser_next(&p, lim, &byte, 1, &off, &ev);
		if (t != WS_EV_NONE)
			break;
	}
	if (i != at || t != WS_EV_ERROR || ev.code != code) {
		fprintf(stderr, "error %s %u at byte %zu, want ERROR %u at byte %zu\n",
		    type_name(t), ev.code, i, code, at);
		fail();
	}
	ws_parser_free(&p);
}

/* Too big: 1009, reported from the header alone. */
static void
test_err_too_big(void **state)
{
	struct ws_parser	 p;
	struct ws_event		 ev;
	uint8_t			 h[WS_MAX_HEADER];
	size_t			 hl, off;
	struct bytes		 b = { 0 };
	const struct ws_limits	 small = { 100, 250, true };
	const struct ws_limits	 msg_small = { 1000, 50, true };
	uint8_t			*payload;

	(void)state;
	/* max_frame_size + 1: only the 14 header bytes are there */
	hl = ws_frame_header(h, true, WS_OP_BINARY, 1 * MiB + 1, KEY);
	assert_int_equal(hl, 14);
	ws_parser_init(&p);
	off = 0;
	assert_int_equal(ws_parser_next(&p, &LIM, h, hl, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ev.code, 1009);
	assert_int_equal(off, hl);
	ws_parser_free(&p);
	expect_error_at(&LIM, h, hl, hl - 1, 1009);
	/* the same for a text frame and a continuation */
	hl = ws_frame_header(h, false, WS_OP_TEXT, 2 * MiB, KEY);
	expect_error_at(&LIM, h, hl, hl - 1, 1009);
	add_str(&b, false, WS_OP_TEXT, "abc");
	hl = ws_frame_header(h, true, WS_OP_CONT, 1 * MiB + 1, KEY);
	b_put(&b, h, hl);
	expect_error_at(&LIM, b.p, b.len, b.len - 1, 1009);
	expect_error(&LIM, &b, 1009);
	b_free(&b);

	/* small limits: exactly max_frame_size is fine, one more is not */
	payload = make_payload(300, false);
	add_frame(&b, true, WS_OP_BINARY, payload, 100);
	{
		const struct exp x[] = { { WS_EV_MESSAGE, WS_OP_BINARY, 0, payload, 100 } };

		check_stream(&small, b.p, b.len, x, 1);
	}
	b_free(&b);
	add_frame(&b, true, WS_OP_BINARY, payload, 101);
	expect_error(&small, &b, 1009);
	expect_error_at(&small, b.p, b.len, 5, 1009);	/* 2 + 4 header bytes */
	b_free(&b);

	/* fragments summing above max_message_size: 100 + 100 + 50 fine, + 1 not */
	add_frame(&b, false, WS_OP_BINARY, payload, 100);
	add_frame(&b, false, WS_OP_CONT, payload + 100, 100);
	add_frame(&b, true, WS_OP_CONT, payload + 200, 50);
	{
		const struct exp x[] = { { WS_EV_MESSAGE, WS_OP_BINARY, 0, payload, 250 } };

		check_stream(&small, b.p, b.len, x, 1);
	}
	b_free(&b);
	add_frame(&b, false, WS_OP_BINARY, payload, 100);
	add_frame(&b, false, WS_OP_CONT, payload + 100, 100);
	add_frame(&b, true, WS_OP_CONT, payload + 200, 51);
	expect_error(&small, &b, 1009);
	/* reported at the third header, before its payload */
	expect_error_at(&small, b.p, b.len, 2 * (6 + 100) + 6 - 1, 1009);
	b_free(&b);
	/* with an empty fragment and a ping in between */
	add_frame(&b, false, WS_OP_TEXT, payload, 0);
	add_str(&b, false, WS_OP_CONT, "0123456789012345678901234567890123456789");
	add_str(&b, true, WS_OP_PING, "");
	add_str(&b, true, WS_OP_CONT, "01234567890");
	CHECK_STREAM(&msg_small, &b, E_PING(""), E_ERR(1009));
	b_free(&b);
	/* a single frame within max_frame_size but above max_message_size */
	add_frame(&b, true, WS_OP_BINARY, payload, 51);
	expect_error(&msg_small, &b, 1009);
	b_free(&b);
	free(payload);
}

/* The daemon's real limits: 16 MiB in 16 fragments of 1 MiB is accepted, 1 byte more is not. */
static void
test_err_message_size_16mib(void **state)
{
	struct ws_parser	 p;
	struct ws_event		 ev;
	uint8_t			*buf, *expect;
	size_t			 hl, off, i, j;
	enum ws_event_type	 t;
	int			 round;

	(void)state;
	buf = malloc(WS_MAX_HEADER + MiB);
	expect = malloc(MiB);
	assert_non_null(buf);
	assert_non_null(expect);
	for (round = 0; round < 2; round++) {
		ws_parser_init(&p);
		for (i = 0; i < 16; i++) {
			hl = ws_frame_header(buf, round == 0 && i == 15,
			    i == 0 ? WS_OP_BINARY : WS_OP_CONT, MiB, KEY);
			for (j = 0; j < MiB; j++)
				buf[hl + j] = (uint8_t)(i + j);
			ws_mask(buf + hl, MiB, KEY, 0);
			off = 0;
			t = ws_parser_next(&p, &LIM, buf, hl + MiB, &off, &ev);
			if (round == 0 && i == 15) {
				assert_int_equal(t, WS_EV_MESSAGE);
				assert_int_equal(ev.opcode, WS_OP_BINARY);
				assert_int_equal(ev.len, 16 * MiB);
				for (j = 0; j < 16; j++) {
					size_t k;

					for (k = 0; k < MiB; k++)
						expect[k] = (uint8_t)(j + k);
					assert_memory_equal(ev.data + j * MiB, expect, MiB);
				}
			} else
				assert_int_equal(t, WS_EV_NONE);
			assert_int_equal(off, hl + MiB);
		}
		if (round == 1) {
			/* a 17th fragment of one byte: refused at its header */
			hl = ws_frame_header(buf, true, WS_OP_CONT, 1, KEY);
			off = 0;
			assert_int_equal(ws_parser_next(&p, &LIM, buf, hl, &off, &ev), WS_EV_ERROR);
			assert_int_equal(ev.code, 1009);
		} else {
			off = 0;
			assert_int_equal(ws_parser_next(&p, &LIM, buf, 0, &off, &ev), WS_EV_NONE);
			assert_null(p.msg);
		}
		ws_parser_free(&p);
	}
	free(buf);
	free(expect);
}

static void
test_err_utf8(void **state)
{
	struct bytes b = { 0 };

	(void)state;
	/* invalid UTF-8 in a single text frame */
	add_str(&b, true, WS_OP_TEXT, "bad \xff byte");
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, true, WS_OP_TEXT, "\xed\xa0\x80");		/* surrogate */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, true, WS_OP_TEXT, "\xc0\xaf");		/* overlong */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, true, WS_OP_TEXT, "\xf4\x90\x80\x80");	/* > U+10FFFF */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	/* after a valid message */
	add_str(&b, true, WS_OP_TEXT, "good");
	add_str(&b, true, WS_OP_TEXT, "\x80");
	CHECK_STREAM(&LIM, &b, E_TEXT("good"), E_ERR(1007));
	b_free(&b);
	/* client side */
	add_frame_ex(&b, true, 0, WS_OP_TEXT, "\xc3\x28", 2, NULL, ENC_AUTO);
	expect_error(&LIM_CLIENT, &b, 1007);
	b_free(&b);

	/* invalid across fragments: each fragment alone could be valid */
	add_str(&b, false, WS_OP_TEXT, "ok \xc3");
	add_str(&b, true, WS_OP_CONT, "(");
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, false, WS_OP_TEXT, "\xed");
	add_str(&b, true, WS_OP_CONT, "\xa0\x80");		/* surrogate */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, false, WS_OP_TEXT, "\xf0\x9f");
	add_str(&b, true, WS_OP_PING, "");
	add_str(&b, false, WS_OP_CONT, "\x98");
	add_str(&b, true, WS_OP_CONT, "x");
	CHECK_STREAM(&LIM, &b, E_PING(""), E_ERR(1007));
	b_free(&b);

	/* text message ending inside a sequence */
	add_str(&b, true, WS_OP_TEXT, "abc\xe2\x82");		/* one frame (fast path) */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, false, WS_OP_TEXT, "abc");
	add_str(&b, true, WS_OP_CONT, "\xf0\x9f\x98");		/* fragmented */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	add_str(&b, false, WS_OP_TEXT, "abc\xc3");
	add_frame(&b, true, WS_OP_CONT, "", 0);			/* empty final fragment */
	expect_error(&LIM, &b, 1007);
	b_free(&b);

	/* binary frames may carry anything */
	add_str(&b, true, WS_OP_BINARY, "\xff\xfe\xc0\x80\xed\xa0\x80");
	add_str(&b, false, WS_OP_BINARY, "\xe2");
	add_str(&b, true, WS_OP_CONT, "(");
	add_str(&b, true, WS_OP_BINARY, "\xf0");
	CHECK_STREAM(&LIM, &b, E_BIN("\xff\xfe\xc0\x80\xed\xa0\x80"), E_BIN("\xe2("),
	    E_BIN("\xf0"));
	b_free(&b);
	/* ... and so may ping/pong payloads */
	add_str(&b, true, WS_OP_PING, "\xff");
	add_str(&b, true, WS_OP_PONG, "\xc0\x80");
	CHECK_STREAM(&LIM, &b, E_PING("\xff"), E_PONG("\xc0\x80"));
	b_free(&b);
}

/*
 * Fail fast: a text frame announcing 1000 bytes whose first 10 bytes contain
 * an invalid sequence fails with 1007 as soon as those bytes are fed.
 */
static void
test_err_utf8_fail_fast(void **state)
{
	struct ws_parser	 p;
	struct ws_event		 ev;
	uint8_t			*payload, *copy;
	struct bytes		 b = { 0 };
	size_t			 hl, off;

	(void)state;
	payload = make_payload(1000, true);
	memcpy(payload + 4, "\xc3\x28", 2);
	add_frame(&b, true, WS_OP_TEXT, payload, 1000);
	hl = b.len - 1000;
	assert_int_equal(hl, 8);

	ws_parser_init(&p);
	off = 0;
	copy = malloc(hl + 10);		/* the parser unmasks in place */
	assert_non_null(copy);
	memcpy(copy, b.p, hl + 10);
	assert_int_equal(ws_parser_next(&p, &LIM, copy, hl + 10, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ev.code, 1007);
	free(copy);
	ws_parser_free(&p);
	/* byte by byte: exactly at the bad byte (payload offset 5) */
	expect_error_at(&LIM, b.p, b.len, hl + 5, 1007);
	expect_error(&LIM, &b, 1007);
	b_free(&b);

	/* in a later fragment, before that fragment is complete */
	add_str(&b, false, WS_OP_TEXT, "fine");
	add_frame(&b, true, WS_OP_CONT, payload, 1000);
	expect_error_at(&LIM, b.p, b.len, 10 + 8 + 5, 1007);
	b_free(&b);
	/* a sequence split across fragments, refused at the next fragment's first byte */
	add_str(&b, false, WS_OP_TEXT, "fine\xe2\x82");
	add_frame(&b, true, WS_OP_CONT, payload, 1000);
	expect_error_at(&LIM, b.p, b.len, 12 + 8, 1007);
	b_free(&b);
	free(payload);
}

/* ------------------------------------------------------------------------
 * Close frames.
 */
static void
close_frame(struct bytes *b, unsigned code, const char *reason)
{
	uint8_t	pl[WS_MAX_CONTROL];
	size_t	n = strlen(reason);

	pl[0] = (uint8_t)(code >> 8);
	pl[1] = (uint8_t)code;
	memcpy(pl + 2, reason, n);
	add_frame(b, true, WS_OP_CLOSE, pl, n + 2);
}

static void
test_close_frames(void **state)
{
	static const unsigned bad_codes[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016,
	    1100, 2000, 2999, 5000, 65535 };
	static const unsigned good_codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009,
	    1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };
	struct bytes	b = { 0 };
	char		reason[124];
	size_t		i;

	(void)state;
	/* empty payload: no status */
	add_frame(&b, true, WS_OP_CLOSE, "", 0);
	CHECK_STREAM(&LIM, &b, E_CLOSE(1005, ""));
	b_free(&b);
	/* 1-byte payload */
	add_frame(&b, true, WS_OP_CLOSE, "\x03", 1);
	expect_error(&LIM, &b, 1002);
	b_free(&b);
	for (i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
		close_frame(&b, bad_codes[i], "");
		expect_error(&LIM, &b, 1002);
		b_free(&b);
		close_frame(&b, bad_codes[i], "reason");
		expect_error(&LIM, &b, 1002);
		b_free(&b);
	}
	for (i = 0; i < sizeof(good_codes) / sizeof(good_codes[0]); i++) {
		close_frame(&b, good_codes[i], "");
		{
			const struct exp x[] = { { WS_EV_CLOSE, 0, (uint16_t)good_codes[i], "", 0 } };

			check_stream(&LIM, b.p, b.len, x, 1);
		}
		b_free(&b);
		close_frame(&b, good_codes[i], "going \xe2\x86\x92 away");
		{
			const struct exp x[] = { { WS_EV_CLOSE, 0, (uint16_t)good_codes[i],
			    "going \xe2\x86\x92 away", 14 } };

			check_stream(&LIM, b.p, b.len, x, 1);
		}
		b_free(&b);
	}
	/* the longest reason: 123 bytes */
	memset(reason, 'r', 123);
	reason[123] = '\0';
	close_frame(&b, 1000, reason);
	{
		const struct exp x[] = { { WS_EV_CLOSE, 0, 1000, reason, 123 } };

		check_stream(&LIM, b.p, b.len, x, 1);
	}
	b_free(&b);
	/* reasons that are not UTF-8 */
	close_frame(&b, 1000, "\xff");
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	close_frame(&b, 1001, "cut \xe2\x82");		/* truncated sequence */
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	close_frame(&b, 4000, "\xed\xa0\x80");
	expect_error(&LIM, &b, 1007);
	b_free(&b);
	/* client side, unmasked */
	add_frame_ex(&b, true, 0, WS_OP_CLOSE, "\x03\xe8ok", 4, NULL, ENC_AUTO);
	CHECK_STREAM(&LIM_CLIENT, &b, E_CLOSE(1000, "ok"));
	b_free(&b);
}

static void
test_close_parse(void **state)
{
	const uint8_t	*reason = (const uint8_t *)"x";
	size_t		 rlen = 99;
	uint16_t	 code = 0;

	(void)state;
	assert_int_equal(ws_close_parse((const uint8_t *)"", 0, &code, &reason, &rlen), 0);
	assert_int_equal(code, 1005);
	assert_null(reason);
	assert_int_equal(rlen, 0);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03", 1, &code, &reason, &rlen),
	    1002);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8", 2, &code, &reason, &rlen),
	    0);
	assert_int_equal(code, 1000);
	assert_int_equal(rlen, 0);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x0f\xa0hi", 4, &code, &reason,
	    &rlen), 0);
	assert_int_equal(code, 4000);
	assert_int_equal(rlen, 2);
	assert_memory_equal(reason, "hi", 2);
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xed", 2, &code, &reason, &rlen),
	    1002);	/* 1005 */
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xe8\xc0\x80", 4, &code, &reason,
	    &rlen), 1007);
	/* a bad code wins over a bad reason */
	assert_int_equal(ws_close_parse((const uint8_t *)"\x03\xec\xff", 3, &code, &reason,
	    &rlen), 1002);
}

static void
test_close_code_valid(void **state)
{
	unsigned c;
	bool	 want;

	(void)state;
	for (c = 0; c <= 70000; c++) {
		want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
		    (c >= 3000 && c <= 4999);
		if (ws_close_code_valid(c) != want) {
			fprintf(stderr, "ws_close_code_valid(%u) != %d\n", c, want);
			fail();
		}
	}
	assert_false(ws_close_code_valid(0));
	assert_false(ws_close_code_valid(999));
	assert_true(ws_close_code_valid(1000));
	assert_true(ws_close_code_valid(1003));
	assert_false(ws_close_code_valid(1004));
	assert_false(ws_close_code_valid(1005));
	assert_false(ws_close_code_valid(1006));
	assert_true(ws_close_code_valid(1007));
	assert_true(ws_close_code_valid(1014));
	assert_false(ws_close_code_valid(1015));
	assert_false(ws_close_code_valid(1016));
	assert_false(ws_close_code_valid(2999));
	assert_true(ws_close_code_valid(3000));
	assert_true(ws_close_code_valid(4999));
	assert_false(ws_close_code_valid(5000));
	assert_false(ws_close_code_valid(65536 + 1000));
	assert_false(ws_close_code_valid(~0u));
}

/* ------------------------------------------------------------------------
 * Parser state: errors are sticky, busy, memory.
 */
static void
test_error_sticky(void **state)
{
	struct ws_parser	p;
	struct ws_event		ev;
	struct bytes		b = { 0 }, good = { 0 };
	size_t			off;

	(void)state;
	add_frame_ex(&b, true, RSV1, WS_OP_TEXT, "x", 1, KEY, ENC_AUTO);
	add_str(&good, true, WS_OP_TEXT, "fine");

	ws_parser_init(&p);
	off = 0;
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ev.code, 1002);
	/* valid input, no input, the rest of the buffer: all refused */
	off = 0;
	assert_int_equal(ws_parser_next(&p, &LIM, good.p, good.len, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ev.type, WS_EV_ERROR);
	assert_non_null(ev.error);
	assert_int_equal(off, 0);
	assert_int_equal(ws_parser_next(&p, &LIM, good.p, 0, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ws_parser_next(&p, &LIM, good.p, good.len, &off, &ev), WS_EV_ERROR);
	assert_int_equal(off, 0);
	ws_parser_free(&p);
	/* the parser can be used again after ws_parser_free */
	off = 0;
	assert_int_equal(ws_parser_next(&p, &LIM, good.p, good.len, &off, &ev), WS_EV_MESSAGE);
	assert_int_equal(ev.len, 4);
	ws_parser_free(&p);
	b_free(&good);
	b_free(&b);

	/* an error mid-message (memory held) stays an error, and free releases it */
	add_str(&b, false, WS_OP_TEXT, "partial");
	add_str(&b, true, WS_OP_CONT, "\xff");
	ws_parser_init(&p);
	off = 0;
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_ERROR);
	assert_int_equal(ev.code, 1007);
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_ERROR);
	ws_parser_free(&p);
	b_free(&b);
}

/* Feeds buf[0..n) as one chunk; returns the single event type it produced (or NONE). */
static enum ws_event_type
feed(struct ws_parser *p, const struct ws_limits *lim, struct bytes *b, size_t from,
    size_t to, struct ws_event *ev)
{
	size_t			off = from;
	enum ws_event_type	t;

	t = ws_parser_next(p, lim, b->p, to, &off, ev);
	assert_int_equal(off, to);
	return t;
}

static void
test_busy_and_memory(void **state)
{
	struct ws_parser	p;
	struct ws_event		ev;
	struct bytes		b = { 0 };
	size_t			f1, f2, f3, f4, off;

	(void)state;
	ws_parser_init(&p);
	assert_false(ws_parser_busy(&p));

	add_str(&b, false, WS_OP_TEXT, "Hello, ");	/* 6 + 7 */
	f1 = b.len;
	add_str(&b, true, WS_OP_PING, "pp");
	f2 = b.len;
	add_str(&b, false, WS_OP_CONT, "world");
	f3 = b.len;
	add_str(&b, true, WS_OP_CONT, "!");
	f4 = b.len;

	/* one header byte */
	assert_int_equal(feed(&p, &LIM, &b, 0, 1, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	/* the whole header */
	assert_int_equal(feed(&p, &LIM, &b, 1, 6, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	/* part of the payload */
	assert_int_equal(feed(&p, &LIM, &b, 6, 9, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	/* the first fragment is complete: a message is open */
	assert_int_equal(feed(&p, &LIM, &b, 9, f1, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	assert_non_null(p.msg);
	/* a ping, split: still busy, message kept */
	assert_int_equal(feed(&p, &LIM, &b, f1, f1 + 7, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	off = f1 + 7;
	assert_non_null(p.ctl);		/* the ping is being collected */
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, f2, &off, &ev), WS_EV_PING);
	assert_int_equal(ev.len, 2);
	assert_memory_equal(ev.data, "pp", 2);
	assert_true(ws_parser_busy(&p));
	assert_non_null(p.msg);
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, f2, &off, &ev), WS_EV_NONE);
	assert_null(p.ctl);		/* the ping's copy is gone */
	assert_int_equal(feed(&p, &LIM, &b, f2, f3, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	/* the final fragment */
	off = f3;
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, f4, &off, &ev), WS_EV_MESSAGE);
	assert_int_equal(off, f4);
	assert_int_equal(ev.opcode, WS_OP_TEXT);
	assert_int_equal(ev.len, 13);
	assert_memory_equal(ev.data, "Hello, world!", 13);
	assert_false(ws_parser_busy(&p));
	/* the next call releases the message buffer: an idle parser owns nothing */
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, f4, &off, &ev), WS_EV_NONE);
	assert_null(p.msg);
	assert_null(p.ctl);
	assert_false(ws_parser_busy(&p));
	/* nothing to free, but free is harmless */
	ws_parser_free(&p);
	b_free(&b);

	/* an unfragmented message split across calls is also copied and released */
	ws_parser_init(&p);
	add_str(&b, true, WS_OP_BINARY, "split message");
	assert_int_equal(feed(&p, &LIM, &b, 0, 10, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	off = 10;
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_MESSAGE);
	assert_memory_equal(ev.data, "split message", 13);
	assert_false(ws_parser_busy(&p));
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_NONE);
	assert_null(p.msg);
	b_free(&b);
	ws_parser_free(&p);

	/* a control frame split across calls: busy until complete, copy released */
	ws_parser_init(&p);
	add_str(&b, true, WS_OP_CLOSE, "\x03\xe8" "bye");
	assert_int_equal(feed(&p, &LIM, &b, 0, 8, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	off = 8;
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_CLOSE);
	assert_int_equal(ev.code, 1000);
	assert_int_equal(ev.len, 3);
	assert_memory_equal(ev.data, "bye", 3);
	assert_false(ws_parser_busy(&p));
	assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_NONE);
	assert_null(p.ctl);
	b_free(&b);
	ws_parser_free(&p);
}

/* Empty input (buf NULL, len 0) in any state reports nothing and changes nothing. */
static void
test_empty_input(void **state)
{
	struct ws_parser	 p;
	struct ws_event		 ev;
	struct bytes		 b = { 0 };
	size_t			 cut, off, f1;
	struct recs		 r;

	(void)state;
	add_str(&b, false, WS_OP_TEXT, "ab\xc3");
	add_str(&b, true, WS_OP_PING, "ping");
	add_str(&b, true, WS_OP_CONT, "\xa9");
	f1 = b.len;
	for (cut = 0; cut <= f1; cut++) {
		ws_parser_init(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, NULL, 0, &off, &ev), WS_EV_NONE);
		r.n = 0;
		run_parser_ex(&p, &LIM, b.p, b.len, &cut, 1, true, &r);
		assert_int_equal(r.n, 2);
		assert_int_equal(r.ev[0].type, WS_EV_PING);
		assert_int_equal(r.ev[1].type, WS_EV_MESSAGE);
		assert_int_equal(r.ev[1].len, 4);
		assert_memory_equal(r.ev[1].data, "ab\xc3\xa9", 4);
		recs_free(&r);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, NULL, 0, &off, &ev), WS_EV_NONE);
		assert_null(p.msg);
		ws_parser_free(&p);
	}
	b_free(&b);
}

/* ws_parser_free on a parser holding memory releases it (checked by ASan/valgrind). */
static void
test_free_mid_message(void **state)
{
	struct ws_parser	p;
	struct ws_event		ev;
	struct bytes		b = { 0 };
	uint8_t			*payload;

	(void)state;
	payload = make_payload(5000, true);
	/* mid-message, several fragments in */
	ws_parser_init(&p);
	add_frame(&b, false, WS_OP_TEXT, payload, 3000);
	add_frame(&b, false, WS_OP_CONT, payload, 2000);
	assert_int_equal(feed(&p, &LIM, &b, 0, b.len, &ev), WS_EV_NONE);
	assert_true(ws_parser_busy(&p));
	assert_non_null(p.msg);
	ws_parser_free(&p);
	assert_false(ws_parser_busy(&p));
	assert_null(p.msg);
	b_free(&b);
	/* reusable afterwards */
	add_str(&b, true, WS_OP_TEXT, "again");
	assert_int_equal(feed(&p, &LIM, &b, 0, b.len, &ev), WS_EV_MESSAGE);
	assert_int_equal(ev.len, 5);
	ws_parser_free(&p);
	b_free(&b);

	/* mid-frame (a partial unfragmented message) */
	ws_parser_init(&p);
	add_frame(&b, true, WS_OP_BINARY, payload, 5000);
	assert_int_equal(feed(&p, &LIM, &b, 0, 2000, &ev), WS_EV_NONE);
	assert_non_null(p.msg);
	ws_parser_free(&p);
	b_free(&b);

	/* mid-control-frame */
	ws_parser_init(&p);
	add_frame(&b, true, WS_OP_PING, payload, 100);
	assert_int_equal(feed(&p, &LIM, &b, 0, 50, &ev), WS_EV_NONE);
	assert_non_null(p.ctl);
	ws_parser_free(&p);
	assert_null(p.ctl);
	b_free(&b);

	/* holding a delivered message that was never released by a further call */
	ws_parser_init(&p);
	add_str(&b, false, WS_OP_TEXT, "ab");
	add_str(&b, true, WS_OP_CONT, "cd");
	assert_int_equal(feed(&p, &LIM, &b, 0, b.len, &ev), WS_EV_MESSAGE);
	assert_non_null(p.msg);
	ws_parser_free(&p);
	b_free(&b);

	/* after an error in a split control frame */
	ws_parser_init(&p);
	add_frame(&b, true, WS_OP_CLOSE, "\x03\xe8\xff", 3);
	assert_int_equal(feed(&p, &LIM, &b, 0, 7, &ev), WS_EV_NONE);
	{
		size_t off = 7;

		assert_int_equal(ws_parser_next(&p, &LIM, b.p, b.len, &off, &ev), WS_EV_ERROR);
		assert_int_equal(ev.code, 1007);
	}
	ws_parser_free(&p);
	b_free(&b);
	free(payload);
}

/* ------------------------------------------------------------------------
 * Builders.
 */
static void
check_header(bool fin, uint8_t op, uint64_t len, const uint8_t *mask, const uint8_t *want,
    size_t want_len)
{
	uint8_t	out[WS_MAX_HEADER + 2];
	size_t	n, i;

	memset(out, 0xaa, sizeof(out));
	n = ws_frame_header(out, fin, op, len, mask);
	assert_int_equal(n, want_len);
	assert_memory_equal(out, want, want_len);
	for (i = n; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xaa);		/* nothing written past it */
}

#define HDR(fin, op, len, mask, ...) \
	check_header((fin), (op), (len), (mask), (const uint8_t[]){ __VA_ARGS__ }, \
	    sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void
test_frame_header(void **state)
{
	const uint8_t m[4] = { 0x01, 0x02, 0x03, 0x04 };

	(void)state;
	HDR(true, WS_OP_TEXT, 0, NULL, 0x81, 0x00);
	HDR(true, WS_OP_TEXT, 5, NULL, 0x81, 0x05);
	HDR(true, WS_OP_BINARY, 125, NULL, 0x82, 0x7d);
	HDR(true, WS_OP_BINARY, 126, NULL, 0x82, 0x7e, 0x00, 0x7e);
	HDR(true, WS_OP_BINARY, 256, NULL, 0x82, 0x7e, 0x01, 0x00);
	HDR(true, WS_OP_BINARY, 65535, NULL, 0x82, 0x7e, 0xff, 0xff);
	HDR(true, WS_OP_BINARY, 65536, NULL, 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
	HDR(true, WS_OP_BINARY, 1ULL << 32, NULL, 0x82, 0x7f, 0, 0, 0, 0x01, 0, 0, 0, 0);
	HDR(true, WS_OP_BINARY, 0x0102030405060708ULL, NULL,
	    0x82, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08);
	HDR(true, WS_OP_BINARY, 0x7fffffffffffffffULL, NULL,
	    0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

	HDR(true, WS_OP_TEXT, 0, m, 0x81, 0x80, 0x01, 0x02, 0x03, 0x04);
	HDR(true, WS_OP_TEXT, 125, m, 0x81, 0xfd, 0x01, 0x02, 0x03, 0x04);
	HDR(true, WS_OP_TEXT, 126, m, 0x81, 0xfe, 0x00, 0x7e, 0x01, 0x02, 0x03, 0x04);
	HDR(true, WS_OP_TEXT, 65535, m, 0x81, 0xfe, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04);
	HDR(true, WS_OP_TEXT, 65536, m, 0x81, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00,
	    0x01, 0x02, 0x03, 0x04);
	HDR(true, WS_OP_TEXT, 1ULL << 32, m, 0x81, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0,
	    0x01, 0x02, 0x03, 0x04);

	/* FIN and opcodes */
	HDR(false, WS_OP_TEXT, 3, NULL, 0x01, 0x03);
	HDR(false, WS_OP_CONT, 3, NULL, 0x00, 0x03);
	HDR(true, WS_OP_CONT, 0, NULL, 0x80, 0x00);
	HDR(true, WS_OP_CLOSE, 2, NULL, 0x88, 0x02);
	HDR(true, WS_OP_PING, 0, NULL, 0x89, 0x00);
	HDR(true, WS_OP_PONG, 125, m, 0x8a, 0xfd, 0x01, 0x02, 0x03, 0x04);
	/* RFC 6455 §5.7 masked "Hello" */
	HDR(true, WS_OP_TEXT, 5, KEY, 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d);
}

static void
test_mask(void **state)
{
	static const uint8_t keys[][4] = {
		{ 0x37, 0xfa, 0x21, 0x3d }, { 0x00, 0x00, 0x00, 0x00 },
		{ 0xff, 0xff, 0xff, 0xff }, { 0x01, 0x02, 0x04, 0x80 },
	};
	/* Past 160 bytes: every path (< 32, 32-63, the 64-byte turns and tails). */
	uint8_t	src[168], one[168 + 8], chunked[168 + 8], want[168];
	size_t	k, off, len, split, align, i;

	(void)state;
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 37 + 11);
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
	for (off = 0; off <= 7; off++)
	for (len = 0; len <= sizeof(src); len++) {
		for (i = 0; i < len; i++)
			want[i] = src[i] ^ keys[k][(off + i) % 4];
		for (align = 0; align < 8; align++) {
			/* one shot, at every buffer alignment */
			memcpy(one + align, src, len);
			ws_mask(one + align, len, keys[k], off);
			if (len)
				assert_memory_equal(one + align, want, len);
			/* unmasking is the same operation */
			ws_mask(one + align, len, keys[k], off);
			if (len)
				assert_memory_equal(one + align, src, len);
		}
		/* two chunks, split anywhere, continuing at the right offset */
		for (split = 0; split <= len; split++) {
			memcpy(chunked, src, len);
			ws_mask(chunked, split, keys[k], off);
			ws_mask(chunked + split, len - split, keys[k], off + split);
			if (len)
				assert_memory_equal(chunked, want, len);
		}
		/* byte by byte */
		memcpy(chunked, src, len);
		for (i = 0; i < len; i++)
			ws_mask(chunked + i, 1, keys[k], off + i);
		if (len)
			assert_memory_equal(chunked, want, len);
	}
	/* a large offset keeps the phase */
	memcpy(one, src, 8);
	ws_mask(one, 8, keys[0], (1ULL << 40) + 2);
	for (i = 0; i < 8; i++)
		assert_int_equal(one[i], src[i] ^ keys[0][(2 + i) % 4]);
	/* the bytes around the masked range are untouched */
	memset(one, 0x55, sizeof(one));
	ws_mask(one + 3, 21, keys[0], 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(one[i], 0x55);
	for (i = 24; i < sizeof(one); i++)
		assert_int_equal(one[i], 0x55);
}

static void
test_close_build(void **state)
{
	uint8_t	*out;
	char	 reason[300];
	size_t	 n;

	(void)state;
	out = malloc(WS_MAX_CONTROL);		/* exactly sized for ASan */
	assert_non_null(out);

	assert_int_equal(ws_close_build(out, 0, NULL), 0);
	assert_int_equal(ws_close_build(out, 0, "ignored"), 0);
	assert_int_equal(ws_close_build(out, 1000, NULL), 2);
	assert_memory_equal(out, "\x03\xe8", 2);
	assert_int_equal(ws_close_build(out, 1000, ""), 2);
	assert_int_equal(ws_close_build(out, 1001, "bye"), 5);
	assert_memory_equal(out, "\x03\xe9" "bye", 5);
	assert_int_equal(ws_close_build(out, 4999, "x"), 3);
	assert_memory_equal(out, "\x13\x87x", 3);

	/* 123 ASCII bytes fit; 124 are cut to 123 */
	memset(reason, 'a', sizeof(reason));
	reason[123] = '\0';
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	reason[123] = 'a';
	reason[124] = '\0';
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	memset(reason, 'a', sizeof(reason));
	reason[299] = '\0';
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	assert_memory_equal(out + 2, reason, 123);

	/* 122 ASCII + a 2-byte char: the char does not fit, 122 bytes */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 122, "\xc3\xa9", 3);
	n = ws_close_build(out, 1000, reason);
	assert_int_equal(n, 2 + 122);
	/* 121 ASCII + a 2-byte char: fits exactly */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 121, "\xc3\xa9", 3);
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	assert_memory_equal(out + 2 + 121, "\xc3\xa9", 2);
	/* ... followed by more: still cut after the char */
	memcpy(reason + 121, "\xc3\xa9zzz", 6);
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	/* 121 ASCII + a 3-byte char: 121 */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 121, "\xe2\x82\xac", 4);
	assert_int_equal(ws_close_build(out, 1000, reason), 2 + 121);
	/* 122 ASCII + a 3-byte char: 122 */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 122, "\xe2\x82\xac", 4);
	assert_int_equal(ws_close_build(out, 1000, reason), 2 + 122);
	/* 120 ASCII + a 4-byte char: 120; 119 + 4-byte: 123 */
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 120, "\xf0\x9f\x98\x80", 5);
	assert_int_equal(ws_close_build(out, 1000, reason), 2 + 120);
	memset(reason, 'a', sizeof(reason));
	memcpy(reason + 119, "\xf0\x9f\x98\x80z", 6);
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	assert_memory_equal(out + 2 + 119, "\xf0\x9f\x98\x80", 4);
	/* all multibyte: 41 x 3 = 123 fits, 42 x 3 is cut to 41 chars */
	for (n = 0; n < 42; n++)
		memcpy(reason + 3 * n, "\xe2\x82\xac", 3);
	reason[126] = '\0';
	assert_int_equal(ws_close_build(out, 1000, reason), 125);
	/* 62 x 2-byte = 124: cut to 61 chars = 122 bytes */
	for (n = 0; n < 62; n++)
		memcpy(reason + 2 * n, "\xc3\xa9", 2);
	reason[124] = '\0';
	assert_int_equal(ws_close_build(out, 1000, reason), 2 + 122);
	/* whatever was cut, the result parses back */
	{
		uint16_t	 code;
		const uint8_t	*r;
		size_t		 rl;

		n = ws_close_build(out, 1011, reason);
		assert_int_equal(ws_close_parse(out, n, &code, &r, &rl), 0);
		assert_int_equal(code, 1011);
		assert_int_equal(rl, 122);
		assert_memory_equal(r, reason, 122);
	}
	free(out);
}

/*
 * Unmasking also tells whether a text payload is all ASCII (then UTF-8
 * validation is skipped), so a single non-ASCII byte at any position, in
 * every unmasking path (short, 32-63 bytes, 64-byte turns, tails), must
 * still reach the validator: a lone continuation byte fails the frame, a
 * two-byte character passes.
 */
/* payload[0..n) as one masked text frame, parsed from fresh: the event. */
static enum ws_event_type
parse_text_frame(const uint8_t *payload, size_t n, uint8_t *buf, struct ws_event *ev)
{
	static const uint8_t	 key[4] = { 0x9e, 0x01, 0x7f, 0x80 };
	struct ws_parser	 p;
	enum ws_event_type	 t;
	size_t			 hl, off = 0;

	hl = ws_frame_header(buf, true, WS_OP_TEXT, n, key);
	memcpy(buf + hl, payload, n);
	ws_mask(buf + hl, n, key, 0);
	ws_parser_init(&p);
	t = ws_parser_next(&p, &LIM, buf, hl + n, &off, ev);
	ws_parser_free(&p);	/* ev->data points into buf, not the parser */
	return t;
}

static void
test_text_non_ascii_anywhere(void **state)
{
	struct ws_event	 ev;
	uint8_t		 payload[300], buf[WS_MAX_HEADER + 300];
	size_t		 n, at;

	(void)state;
	for (n = 1; n <= sizeof(payload); n += (n < 140 ? 1 : 37))
	for (at = 0; at < n; at++) {
		memset(payload, 'a', n);
		payload[at] = 0x80;
		assert_int_equal(parse_text_frame(payload, n, buf, &ev), WS_EV_ERROR);
		if (at + 1 == n)
			continue;
		payload[at] = 0xc3;
		payload[at + 1] = 0xa9;
		assert_int_equal(parse_text_frame(payload, n, buf, &ev), WS_EV_MESSAGE);
		assert_int_equal(ev.len, n);
		assert_memory_equal(ev.data, payload, n);
	}
}

/* Frames built with ws_frame_header + ws_mask parse back to their payload. */
static void
test_round_trip(void **state)
{
	static const size_t lens[] = { 0, 1, 3, 4, 7, 8, 9, 125, 126, 200, 65535, 65536, 100000 };
	static const uint8_t keys[][4] = {
		{ 0x12, 0x34, 0x56, 0x78 }, { 0, 0, 0, 0 }, { 0xff, 0xff, 0xff, 0xff },
	};
	struct ws_parser	 p;
	struct ws_event		 ev;
	uint8_t			*payload, *buf;
	size_t			 i, k, hl, off, half, n;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
	for (k = 0; k < 3; k++) {
		n = lens[i];
		payload = make_payload(n, false);
		buf = malloc(WS_MAX_HEADER + n + 1);
		assert_non_null(buf);
		/* one frame, masked in one go */
		hl = ws_frame_header(buf, true, WS_OP_BINARY, n, keys[k]);
		memcpy(buf + hl, payload, n);
		ws_mask(buf + hl, n, keys[k], 0);
		ws_parser_init(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, buf, hl + n, &off, &ev), WS_EV_MESSAGE);
		assert_int_equal(ev.len, n);
		if (n)
			assert_memory_equal(ev.data, payload, n);
		/* the same frame masked in two chunks, parsed in two calls */
		half = n / 2;
		hl = ws_frame_header(buf, true, WS_OP_BINARY, n, keys[k]);
		memcpy(buf + hl, payload, n);
		ws_mask(buf + hl, half, keys[k], 0);
		ws_mask(buf + hl + half, n - half, keys[k], half);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, buf, hl + half, &off, &ev),
		    n == 0 ? WS_EV_MESSAGE : WS_EV_NONE);
		if (n) {
			assert_int_equal(ws_parser_next(&p, &LIM, buf, hl + n, &off, &ev),
			    WS_EV_MESSAGE);
			assert_int_equal(ev.len, n);
			assert_memory_equal(ev.data, payload, n);
		}
		/* unmasked, as the server sends it, read by a client */
		hl = ws_frame_header(buf, true, WS_OP_BINARY, n, NULL);
		memcpy(buf + hl, payload, n);
		ws_parser_free(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM_CLIENT, buf, hl + n, &off, &ev),
		    WS_EV_MESSAGE);
		assert_int_equal(ev.len, n);
		if (n)
			assert_memory_equal(ev.data, payload, n);
		/* control frames */
		if (n <= WS_MAX_CONTROL) {
			hl = ws_frame_header(buf, true, WS_OP_PING, n, keys[k]);
			memcpy(buf + hl, payload, n);
			ws_mask(buf + hl, n, keys[k], 0);
			off = 0;
			assert_int_equal(ws_parser_next(&p, &LIM_CLIENT, buf, hl + n, &off, &ev),
			    WS_EV_ERROR);	/* masked, at the client */
			ws_parser_free(&p);
			off = 0;
			assert_int_equal(ws_parser_next(&p, &LIM, buf, hl + n, &off, &ev),
			    WS_EV_PING);
			assert_int_equal(ev.len, n);
			if (n)
				assert_memory_equal(ev.data, payload, n);
		}
		ws_parser_free(&p);
		free(buf);
		free(payload);
	}

	/* a close payload from ws_close_build, framed and parsed back */
	{
		uint8_t	 frame[WS_MAX_HEADER + WS_MAX_CONTROL];
		uint8_t	 pl[WS_MAX_CONTROL];

		n = ws_close_build(pl, 1001, "server going down \xe2\x86\x93");
		hl = ws_frame_header(frame, true, WS_OP_CLOSE, n, keys[0]);
		memcpy(frame + hl, pl, n);
		ws_mask(frame + hl, n, keys[0], 0);
		ws_parser_init(&p);
		off = 0;
		assert_int_equal(ws_parser_next(&p, &LIM, frame, hl + n, &off, &ev), WS_EV_CLOSE);
		assert_int_equal(ev.code, 1001);
		assert_int_equal(ev.len, n - 2);
		assert_memory_equal(ev.data, "server going down \xe2\x86\x93", n - 2);
		ws_parser_free(&p);
	}
}

/* Client side: unmasked server frames are the norm. */
static void
test_client_side(void **state)
{
	struct bytes	 b = { 0 };
	uint8_t		*payload;
	struct exp	 x;

	(void)state;
	add_frame_ex(&b, true, 0, WS_OP_TEXT, "hello", 5, NULL, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_BINARY, "\x00\x01", 2, NULL, ENC_AUTO);
	add_frame_ex(&b, false, 0, WS_OP_TEXT, "frag", 4, NULL, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_PING, "", 0, NULL, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_CONT, "ment", 4, NULL, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_PONG, "x", 1, NULL, ENC_AUTO);
	add_frame_ex(&b, true, 0, WS_OP_CLOSE, "\x03\xe8", 2, NULL, ENC_AUTO);
	CHECK_STREAM(&LIM_CLIENT, &b, E_TEXT("hello"), E_MSG(WS_OP_BINARY, "\x00\x01"),
	    E_PING(""), E_TEXT("fragment"), E_PONG("x"), E_CLOSE(1000, ""));
	b_free(&b);

	payload = make_payload(70000, false);
	add_frame_ex(&b, true, 0, WS_OP_BINARY, payload, 70000, NULL, ENC_AUTO);
	x = (struct exp){ WS_EV_MESSAGE, WS_OP_BINARY, 0, payload, 70000 };
	check_stream(&LIM_CLIENT, b.p, b.len, &x, 1);
	b_free(&b);
	free(payload);

	/* same rules otherwise */
	add_frame_ex(&b, true, 0, WS_OP_CONT, "x", 1, NULL, ENC_AUTO);
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
	add_frame_ex(&b, true, 0, 0x3, "x", 1, NULL, ENC_AUTO);
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
	add_frame_ex(&b, false, 0, WS_OP_PING, "", 0, NULL, ENC_AUTO);
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
	add_frame_ex(&b, true, 0, WS_OP_CLOSE, "\x03\xed", 2, NULL, ENC_AUTO);
	expect_error(&LIM_CLIENT, &b, 1002);
	b_free(&b);
}

/* ------------------------------------------------------------------------
 * The echo run (ws_parser_echo) against the general parser.
 */
static uint32_t
prng(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * What a server echoing everything sends for in[] fed in chunks ending at
 * cuts[], as conn_frames_input drives the codec: with fast, ws_parser_echo
 * first at every step, else only ws_parser_next, whose messages are framed
 * with ws_frame_header. Other events become marker bytes, so the two
 * transcripts match only if the events, their order and the bytes do.
 */
static void
echo_transcript(const struct ws_limits *lim, const uint8_t *in, size_t n, const size_t *cuts,
    size_t ncuts, bool fast, struct bytes *out)
{
	struct ws_parser	 p;
	struct ws_echo_run	 run;
	struct ws_event		 ev;
	enum ws_event_type	 t;
	uint8_t			 hdr[WS_MAX_HEADER], *buf, mark[3];
	size_t			 c, start = 0, end, clen, off;
	bool			 failed = false;

	ws_parser_init(&p);
	for (c = 0; c <= ncuts && !failed; c++) {
		end = c < ncuts ? cuts[c] : n;
		clen = end - start;
		buf = malloc(clen ? clen : 1);
		assert_non_null(buf);
		if (clen)
			memcpy(buf, in + start, clen);
		off = 0;
		for (;;) {
			if (fast) {
				t = ws_parser_echo(&p, lim, buf, clen, &off, &run, &ev);
				assert_true(run.start <= run.end && run.end <= off && off <= clen);
				assert_true(run.frames > 0 || run.start == run.end);
				b_put(out, buf + run.start, run.end - run.start);
				if (t == WS_EV_ERROR) {
					mark[0] = 'E';
					mark[1] = (uint8_t)(ev.code >> 8);
					mark[2] = (uint8_t)ev.code;
					b_put(out, mark, 3);
					failed = true;
					break;
				}
				assert_int_equal(t, WS_EV_NONE);
			}
			t = ws_parser_next(&p, lim, buf, clen, &off, &ev);
			if (t == WS_EV_NONE)
				break;
			if (t == WS_EV_MESSAGE) {
				b_put(out, hdr, ws_frame_header(hdr, true, ev.opcode, ev.len, NULL));
				b_put(out, ev.data, ev.len);
				continue;
			}
			mark[0] = t == WS_EV_ERROR ? 'E' : t == WS_EV_PING ? 'P' : 'X';
			mark[1] = (uint8_t)(ev.code >> 8);
			mark[2] = (uint8_t)ev.code;
			b_put(out, mark, 3);
			if (t == WS_EV_ERROR || t == WS_EV_CLOSE) {
				failed = true;
				break;
			}
		}
		free(buf);
		start = end;
	}
	ws_parser_free(&p);
}

/*
 * Random streams of whole and fragmented text and binary messages of every
 * length class and encoding, pings, a close, bad UTF-8 and frames over the
 * limits, cut at random points: the echo run must send what the general
 * path sends, byte for byte, and report the same errors at the same place.
 */
static void
test_echo_run(void **state)
{
	static const size_t lens[] = { 0, 1, 5, 8, 31, 32, 33, 63, 64, 65, 100, 125, 126,
		127, 300, 1000, 1001, 4000, 65535 };
	static const struct ws_limits small = { 1000, 3000, true };
	const struct ws_limits *lim;
	struct bytes	 in = { 0 }, a = { 0 }, b = { 0 };
	uint8_t		 mask[4], *pl;
	uint32_t	 seed = 0x9e3779b9, r;
	size_t		 cuts[4], ncuts, i, k, nframes, len, l;
	int		 round;
	enum len_enc	 enc;
	uint8_t		 op;
	unsigned	 fast_frames = 0;

	(void)state;
	for (round = 0; round < 3000; round++) {
		lim = round % 4 == 3 ? &small : &LIM;
		nframes = 1 + prng(&seed) % 12;
		for (i = 0; i < nframes; i++) {
			r = prng(&seed);
			len = lens[r % (sizeof(lens) / sizeof(lens[0]))];
			for (k = 0; k < 4; k++)
				mask[k] = (uint8_t)prng(&seed);
			op = (r >> 8) % 3 == 0 ? 0x2 : 0x1;
			enc = (r >> 12) % 16 == 0 ? ENC_64 : (r >> 12) % 16 == 1 && len <= 0xffff ?
			    ENC_16 : ENC_AUTO;
			pl = make_payload(len, op == 0x1);
			switch ((r >> 16) % 24) {
			case 0:		/* a ping between messages */
				add_frame_ex(&in, true, 0, 0x9, "hi", 2, mask, ENC_AUTO);
				break;
			case 1:		/* a fragmented message */
				l = len / 2;
				add_frame_ex(&in, false, 0, op, pl, l, mask, ENC_AUTO);
				add_frame_ex(&in, true, 0, 0x0, pl + l, len - l, mask, ENC_AUTO);
				break;
			case 2:		/* non-ASCII text, valid */
				if (len >= 2 && op == 0x1) {
					pl[len / 2 - (len / 2 > 0)] = 0xc3;
					pl[len / 2 - (len / 2 > 0) + 1] = 0xa9;
				}
				add_frame_ex(&in, true, 0, op, pl, len, mask, enc);
				break;
			case 3:		/* bad UTF-8 in text (harmless in binary) */
				if (len > 0)
					pl[(r >> 24) % len] = 0xff;
				add_frame_ex(&in, true, 0, op, pl, len, mask, enc);
				break;
			case 4:		/* unmasked: a protocol error */
				add_frame_ex(&in, true, 0, op, pl, len, NULL, ENC_AUTO);
				break;
			case 5:
				add_frame_ex(&in, true, 0, 0x8, "\x03\xe8", 2, mask, ENC_AUTO);
				break;
			default:
				add_frame_ex(&in, true, 0, op, pl, len, mask, enc);
				fast_frames++;
				break;
			}
			free(pl);
		}
		ncuts = prng(&seed) % 4;
		for (k = 0; k < ncuts; k++)
			cuts[k] = in.len ? prng(&seed) % (in.len + 1) : 0;
		for (k = 1; k < ncuts; k++)	/* sorted */
			for (i = k; i > 0 && cuts[i - 1] > cuts[i]; i--) {
				l = cuts[i];
				cuts[i] = cuts[i - 1];
				cuts[i - 1] = l;
			}
		echo_transcript(lim, in.p, in.len, cuts, ncuts, false, &a);
		echo_transcript(lim, in.p, in.len, cuts, ncuts, true, &b);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.p, b.p, a.len);
		a.len = b.len = in.len = 0;
	}
	assert_true(fast_frames > 10000);
	b_free(&in);
	b_free(&a);
	b_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_single_frame_lengths),
		cmocka_unit_test(test_length_encodings),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_several_frames_one_buffer),
		cmocka_unit_test(test_fragmented),
		cmocka_unit_test(test_fragmented_large),
		cmocka_unit_test(test_fragmented_interleaved_control),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_err_masking),
		cmocka_unit_test(test_err_rsv),
		cmocka_unit_test(test_err_opcodes),
		cmocka_unit_test(test_err_control_frames),
		cmocka_unit_test(test_err_fragmentation),
		cmocka_unit_test(test_err_length_top_bit),
		cmocka_unit_test(test_err_too_big),
		cmocka_unit_test(test_err_message_size_16mib),
		cmocka_unit_test(test_err_utf8),
		cmocka_unit_test(test_err_utf8_fail_fast),
		cmocka_unit_test(test_close_frames),
		cmocka_unit_test(test_close_parse),
		cmocka_unit_test(test_close_code_valid),
		cmocka_unit_test(test_error_sticky),
		cmocka_unit_test(test_busy_and_memory),
		cmocka_unit_test(test_empty_input),
		cmocka_unit_test(test_free_mid_message),
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_close_build),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_text_non_ascii_anywhere),
		cmocka_unit_test(test_client_side),
		cmocka_unit_test(test_echo_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
