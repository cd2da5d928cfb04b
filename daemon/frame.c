/*
 * frame.c — the RFC 6455 frame codec.
 *
 * Hand-written rather than taken from wslay (Debian's libwslay): wslay's
 * frame layer pulls bytes through a recv callback and copies every payload
 * into its own buffers; we want to parse the loop's shared read buffer in
 * place, hand unfragmented messages to handlers without a copy, and fail
 * fast on bad UTF-8 across fragments. The codec does no I/O, so the daemon,
 * the client, the unit tests and the fuzzers all drive the same code.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"

#define MSG_MIN_ALLOC	1024

/*
 * mask_wide is built twice on x86-64 with GCC; see mask_wide. Not in the
 * sanitizer builds: the loader runs an ifunc's resolver before the
 * sanitizer's runtime is set up, and under ThreadSanitizer the
 * instrumented resolver crashes there. They, and clang (the fuzzers), get
 * the one generic copy; the normal build's tests and valgrind run AVX2's.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define MASK_CLONES	__attribute__((target_clones("avx2", "default")))
#else
#define MASK_CLONES
#endif

static inline uint8_t mask_run(uint8_t *, size_t, uint32_t);
static inline uint8_t mask_move(uint8_t *, const uint8_t *, size_t, uint32_t);

static inline size_t
msg_len(const struct ws_parser *p)
{
	return p->msg != NULL ? p->msg->len : 0;
}
static uint32_t	mask_key(const uint8_t[4], uint64_t);

void
ws_parser_init(struct ws_parser *p)
{
	memset(p, 0, sizeof(*p));
}

void
ws_parser_free(struct ws_parser *p)
{
	free(p->msg);
	free(p->ctl);
	ws_parser_init(p);
}

bool
ws_parser_busy(const struct ws_parser *p)
{
	return p->hdr_len != 0 || p->in_payload || p->msg_opcode != 0;
}

static enum ws_event_type
fail(struct ws_parser *p, struct ws_event *ev, uint16_t code, const char *why)
{
	p->failed = true;
	ev->type = WS_EV_ERROR;
	ev->code = code;
	ev->error = why;
	return WS_EV_ERROR;
}

/* Header size implied by its first two bytes. */
static uint8_t
header_size(const uint8_t *h)
{
	uint8_t	n = 2, len7 = h[1] & 0x7f;

	if (len7 == 126)
		n += 2;
	else if (len7 == 127)
		n += 8;
	if (h[1] & 0x80)
		n += 4;
	return n;
}

/* Validates a complete header against §5.2-5.5 and the limits; 0 if fine. */
static enum ws_event_type
header_accept(struct ws_parser *p, const struct ws_limits *lim, const uint8_t *h,
    struct ws_event *ev)
{
	uint8_t		 len7 = h[1] & 0x7f;
	uint64_t	 len;
	const uint8_t	*q = h + 2;
	int		 i;

	p->fin = (h[0] & 0x80) != 0;
	p->opcode = h[0] & 0x0f;
	p->masked = (h[1] & 0x80) != 0;

	if (h[0] & 0x70)
		return fail(p, ev, WS_CLOSE_PROTOCOL, "reserved bits set without an extension");
	switch (p->opcode) {
	case WS_OP_CONT: case WS_OP_TEXT: case WS_OP_BINARY:
	case WS_OP_CLOSE: case WS_OP_PING: case WS_OP_PONG:
		break;
	default:
		return fail(p, ev, WS_CLOSE_PROTOCOL, "unknown opcode");
	}
	if (lim->expect_masked && !p->masked)
		return fail(p, ev, WS_CLOSE_PROTOCOL, "unmasked client frame");
	if (!lim->expect_masked && p->masked)
		return fail(p, ev, WS_CLOSE_PROTOCOL, "masked server frame");

	if (len7 == 126) {
		len = (uint64_t)q[0] << 8 | q[1];
		q += 2;
	} else if (len7 == 127) {
		len = 0;
		for (i = 0; i < 8; i++)
			len = len << 8 | q[i];
		q += 8;
		if (len >> 63)
			return fail(p, ev, WS_CLOSE_PROTOCOL, "64-bit length with the top bit set");
	} else
		len = len7;
	if (p->masked)
		memcpy(p->mask, q, 4);

	if (p->opcode & 0x08) {
		if (!p->fin)
			return fail(p, ev, WS_CLOSE_PROTOCOL, "fragmented control frame");
		if (len > WS_MAX_CONTROL)
			return fail(p, ev, WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
	} else {
		if (p->opcode == WS_OP_CONT && p->msg_opcode == 0)
			return fail(p, ev, WS_CLOSE_PROTOCOL, "continuation frame without a message");
		if (p->opcode != WS_OP_CONT && p->msg_opcode != 0)
			return fail(p, ev, WS_CLOSE_PROTOCOL, "new message inside a fragmented message");
		if (len > lim->max_frame_size)
			return fail(p, ev, WS_CLOSE_TOO_BIG, "frame larger than max_frame_size");
		if (len > lim->max_message_size ||
		    msg_len(p) > lim->max_message_size - len)
			return fail(p, ev, WS_CLOSE_TOO_BIG, "message larger than max_message_size");
		if (p->opcode != WS_OP_CONT) {
			p->msg_opcode = p->opcode;
			p->utf8 = UTF8_ACCEPT;
		}
	}
	p->remaining = len;
	p->payload_off = 0;
	p->in_payload = true;
	return WS_EV_NONE;
}

/*
 * Collects the header, from buf directly when it is all there (the common
 * case), else through p->hdr. Returns WS_EV_NONE with p->in_payload set when
 * a header was accepted, WS_EV_NONE without it when more bytes are needed.
 */
static enum ws_event_type
read_header(struct ws_parser *p, const struct ws_limits *lim, const uint8_t *buf,
    size_t len, size_t *off, struct ws_event *ev)
{
	size_t	avail = len - *off, take;
	uint8_t	need;

	if (p->hdr_len == 0 && avail >= 2) {
		need = header_size(buf + *off);
		if (avail >= need) {
			*off += need;
			return header_accept(p, lim, buf + *off - need, ev);
		}
	}
	/* Slow path: the header is split across reads. */
	need = p->hdr_len >= 2 ? header_size(p->hdr) : 2;
	while (avail > 0) {
		take = need - p->hdr_len;
		if (take > avail)
			take = avail;
		memcpy(p->hdr + p->hdr_len, buf + *off, take);
		p->hdr_len += take;
		*off += take;
		avail -= take;
		if (p->hdr_len < need)
			break;
		if (need == 2) {
			need = header_size(p->hdr);
			if (need > 2)
				continue;
		}
		p->hdr_len = 0;
		return header_accept(p, lim, p->hdr, ev);
	}
	return WS_EV_NONE;
}

static bool
msg_reserve(struct ws_parser *p, const struct ws_limits *lim, size_t want)
{
	struct ws_msgbuf	*m;
	size_t			 cap, have = p->msg != NULL ? p->msg->cap : 0;

	if (want <= have)
		return true;
	/* Doubling keeps a partial message within 2x its payload bytes. */
	cap = have ? have * 2 : MSG_MIN_ALLOC;
	if (cap < want)
		cap = want;
	if (cap > lim->max_message_size && want <= lim->max_message_size)
		cap = lim->max_message_size;
	if ((m = realloc(p->msg, sizeof(*m) + cap)) == NULL)
		return false;
	if (p->msg == NULL)
		m->len = 0;
	m->cap = cap;
	p->msg = m;
	return true;
}

static void
msg_release(struct ws_parser *p)
{
	free(p->msg);
	p->msg = NULL;
	p->msg_opcode = 0;
}

static void
frame_done(struct ws_parser *p)
{
	p->in_payload = false;
	p->hdr_len = 0;
}

static enum ws_event_type
control_event(struct ws_parser *p, const uint8_t *data, size_t n, struct ws_event *ev)
{
	const uint8_t	*reason;
	size_t		 rlen;
	uint16_t	 code, err;

	ev->data = data;
	ev->len = n;
	switch (p->opcode) {
	case WS_OP_PING:
		ev->type = WS_EV_PING;
		break;
	case WS_OP_PONG:
		ev->type = WS_EV_PONG;
		break;
	default:
		if ((err = ws_close_parse(data, n, &code, &reason, &rlen)) != 0)
			return fail(p, ev, err, err == WS_CLOSE_INVALID_DATA ?
			    "close reason is not UTF-8" : "invalid close payload or code");
		ev->type = WS_EV_CLOSE;
		ev->code = code;
		ev->data = reason;
		ev->len = rlen;
		break;
	}
	return ev->type;
}

/*
 * The common case on a busy connection: a whole masked final text or binary
 * frame with a 7- or 16-bit length at h, within both size limits (the
 * checks are header_accept's for exactly these frames: opcode, FIN, RSV,
 * mask bit, limits). Its header length and payload length go to *hl, *n.
 */
static inline bool
whole_frame(const struct ws_limits *lim, const uint8_t *h, size_t avail, size_t *hl,
    size_t *n)
{
	if (avail < 6 || (h[0] != 0x81 && h[0] != 0x82) || !(h[1] & 0x80))
		return false;
	*n = h[1] & 0x7f;
	*hl = 6;
	if (*n == 126) {
		if (avail < 8)
			return false;
		*n = (size_t)h[2] << 8 | h[3];
		*hl = 8;
	} else if (*n == 127)
		return false;
	return avail - *hl >= *n && *n <= lim->max_frame_size && *n <= lim->max_message_size;
}

/*
 * Unmasks a whole payload into dst; false when it is text that is not
 * UTF-8. ASCII (no top bit anywhere) is valid UTF-8: the text check is
 * skipped.
 */
static inline bool
unmask_valid(uint8_t *dst, const uint8_t *src, size_t n, uint32_t key, bool text)
{
	if (mask_move(dst, src, n, key) && text)
		return utf8_feed(UTF8_ACCEPT, dst, n, NULL) == UTF8_ACCEPT;
	return true;
}

/*
 * That frame, in one step, behind an idle parser. Returns false, having
 * consumed nothing, for anything else (which the general path then handles).
 */
static bool
parse_whole(struct ws_parser *p, const struct ws_limits *lim, uint8_t *buf, size_t len,
    size_t *off, struct ws_event *ev)
{
	const uint8_t	*h = buf + *off;
	size_t		 hl, n;
	uint32_t	 key;
	uint8_t		*data;

	if (!whole_frame(lim, h, len - *off, &hl, &n))
		return false;
	memcpy(&key, h + hl - 4, 4);
	data = buf + *off + hl;
	*off += hl + n;
	if (!unmask_valid(data, data, n, key, h[0] == 0x81)) {
		memset(ev, 0, sizeof(*ev));
		fail(p, ev, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
		return true;
	}
	ev->type = WS_EV_MESSAGE;
	ev->opcode = h[0] & 0x0f;
	ev->data = data;
	ev->len = n;
	ev->code = 0;
	ev->error = NULL;
	return true;
}

/* What the previous event handed out from our own buffers is done with. */
static void
release_handed_out(struct ws_parser *p)
{
	if (p->ctl != NULL && !p->in_payload) {
		free(p->ctl);
		p->ctl = NULL;
		p->ctl_len = 0;
	}
	if (p->msg_opcode == 0 && p->msg != NULL)
		msg_release(p);
}

enum ws_event_type
ws_parser_echo(struct ws_parser *p, const struct ws_limits *lim, uint8_t *buf,
    size_t len, size_t *off, struct ws_echo_run *run, struct ws_event *ev)
{
	size_t		 in = *off, out = *off, hl, n;
	const uint8_t	*h;
	uint8_t		*data, *o, b0;
	uint32_t	 key;

	run->start = run->end = *off;
	run->frames = 0;
	if (p->failed || ws_parser_busy(p) || !lim->expect_masked)
		return WS_EV_NONE;
	release_handed_out(p);
	while (whole_frame(lim, buf + in, len - in, &hl, &n)) {
		h = buf + in;
		memcpy(&key, h + hl - 4, 4);
		/*
		 * Our header has no key, so it is at least 4 bytes shorter
		 * than the client's and written before a byte of it is unread
		 * (a 16-bit length under 126 gets the minimal encoding).
		 */
		o = buf + out;
		b0 = h[0];
		o[0] = b0;
		if (n < 126) {
			o[1] = (uint8_t)n;
			data = o + 2;
		} else {
			o[1] = 126;
			o[2] = (uint8_t)(n >> 8);
			o[3] = (uint8_t)n;
			data = o + 4;
		}
		in += hl + n;
		if (!unmask_valid(data, buf + in - n, n, key, b0 == 0x81)) {
			*off = in;
			run->end = out;
			memset(ev, 0, sizeof(*ev));
			return fail(p, ev, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
		}
		out = (size_t)(data - buf) + n;
		run->frames++;
	}
	*off = in;
	run->end = out;
	return WS_EV_NONE;
}

enum ws_event_type
ws_parser_next(struct ws_parser *p, const struct ws_limits *lim, uint8_t *buf,
    size_t len, size_t *off, struct ws_event *ev)
{
	size_t		avail, chunk;
	size_t		bad;
	uint8_t		st, nonascii;

	if (p->failed) {
		memset(ev, 0, sizeof(*ev));
		return fail(p, ev, WS_CLOSE_PROTOCOL, "input after a protocol error");
	}
	release_handed_out(p);
	if (!ws_parser_busy(p) && lim->expect_masked && parse_whole(p, lim, buf, len, off, ev))
		return ev->type;
	memset(ev, 0, sizeof(*ev));

	for (;;) {
		if (!p->in_payload) {
			if (*off == len)
				return (ev->type = WS_EV_NONE);
			if (read_header(p, lim, buf, len, off, ev) == WS_EV_ERROR)
				return WS_EV_ERROR;
			if (!p->in_payload)
				return (ev->type = WS_EV_NONE);
		}
		avail = len - *off;

		if (p->opcode & 0x08) {
			/* Control frame: at most 125 bytes, whole or via p->ctl. */
			if (p->ctl == NULL && avail >= p->remaining) {
				chunk = p->remaining;
				if (p->masked)
					ws_mask(buf + *off, chunk, p->mask, 0);
				*off += chunk;
				frame_done(p);
				return control_event(p, buf + *off - chunk, chunk, ev);
			}
			if (p->ctl == NULL && (p->ctl = malloc(WS_MAX_CONTROL)) == NULL)
				return fail(p, ev, WS_CLOSE_INTERNAL, "out of memory");
			chunk = avail < p->remaining ? avail : p->remaining;
			if (chunk > 0)	/* buf may be NULL when len == 0 */
				memcpy(p->ctl + p->ctl_len, buf + *off, chunk);
			if (p->masked)
				ws_mask(p->ctl + p->ctl_len, chunk, p->mask, p->payload_off);
			p->ctl_len += chunk;
			p->payload_off += chunk;
			p->remaining -= chunk;
			*off += chunk;
			if (p->remaining > 0)
				return (ev->type = WS_EV_NONE);
			frame_done(p);
			return control_event(p, p->ctl, p->ctl_len, ev);
		}

		/* Fast path: a whole unfragmented message already in buf. */
		if (p->fin && msg_len(p) == 0 && p->payload_off == 0 &&
		    avail >= p->remaining) {
			chunk = p->remaining;
			nonascii = p->masked ? mask_run(buf + *off, chunk, mask_key(p->mask, 0)) : 1;
			if (p->msg_opcode == WS_OP_TEXT && nonascii &&
			    utf8_feed(UTF8_ACCEPT, buf + *off, chunk, NULL) != UTF8_ACCEPT)
				return fail(p, ev, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
			ev->type = WS_EV_MESSAGE;
			ev->opcode = p->msg_opcode;
			ev->data = buf + *off;
			ev->len = chunk;
			*off += chunk;
			p->msg_opcode = 0;
			frame_done(p);
			return WS_EV_MESSAGE;
		}

		/* Slow path: copy what is here into the message buffer. */
		chunk = avail < p->remaining ? avail : p->remaining;
		if (chunk > 0) {
			nonascii = p->masked ? mask_run(buf + *off, chunk,
			    mask_key(p->mask, p->payload_off)) : 1;
			/* All-ASCII input leaves ACCEPT as it is; inside a sequence it is an error. */
			if (p->msg_opcode == WS_OP_TEXT && (nonascii || p->utf8 != UTF8_ACCEPT)) {
				/* Fail fast: refuse at the first bad byte, not at FIN. */
				st = utf8_feed(p->utf8, buf + *off, chunk, &bad);
				if (st == UTF8_REJECT)
					return fail(p, ev, WS_CLOSE_INVALID_DATA, "text message is not UTF-8");
				p->utf8 = st;
			}
			if (!msg_reserve(p, lim, msg_len(p) + chunk))
				return fail(p, ev, WS_CLOSE_INTERNAL, "out of memory");
			memcpy(p->msg->data + p->msg->len, buf + *off, chunk);
			p->msg->len += chunk;
			p->payload_off += chunk;
			p->remaining -= chunk;
			*off += chunk;
		}
		if (p->remaining > 0)
			return (ev->type = WS_EV_NONE);
		frame_done(p);
		if (!p->fin)
			continue;
		if (p->msg_opcode == WS_OP_TEXT && p->utf8 != UTF8_ACCEPT)
			return fail(p, ev, WS_CLOSE_INVALID_DATA, "text message ends inside a UTF-8 sequence");
		ev->type = WS_EV_MESSAGE;
		ev->opcode = p->msg_opcode;
		ev->data = p->msg != NULL ? p->msg->data : NULL;
		ev->len = msg_len(p);
		/* Released at the next call, once the caller is done with it. */
		p->msg_opcode = 0;
		return WS_EV_MESSAGE;
	}
}

size_t
ws_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len, const uint8_t mask[4])
{
	size_t	n = 2;
	int	i;

	out[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
	out[1] = mask != NULL ? 0x80 : 0;
	if (len < 126)
		out[1] |= (uint8_t)len;
	else if (len <= 0xffff) {
		out[1] |= 126;
		out[2] = len >> 8;
		out[3] = len & 0xff;
		n = 4;
	} else {
		out[1] |= 127;
		for (i = 0; i < 8; i++)
			out[2 + i] = (len >> (56 - 8 * i)) & 0xff;
		n = 10;
	}
	if (mask != NULL) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/*
 * GCC's generic vectors (SSE2 or AVX2 on x86-64, NEON on arm64, words
 * elsewhere); memcpy does the unaligned loads. Multiples of 4 bytes keep the
 * key in phase.
 */
typedef uint64_t v2u64 __attribute__((vector_size(16)));
typedef uint64_t v4u64 __attribute__((vector_size(32)));

#define HIGH_BITS	0x8080808080808080ULL

/*
 * The unmasking below reads src and writes dst, which may be the same
 * buffer (in place) or lie below it in the same buffer (the echo run moves
 * frames down as it goes): every chunk is loaded before it is stored and
 * chunks go forwards, so with dst <= src a store never reaches bytes not
 * yet read.
 */

/* The last < 32 bytes: words, then bytes. Returns hi with their top bits. */
static inline uint64_t
mask_tail(uint8_t *dst, const uint8_t *src, size_t i, size_t n, uint32_t m32, uint64_t hi)
{
	uint64_t	m64 = (uint64_t)m32 << 32 | m32, w;
	uint8_t		m[4];

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, src + i, 8);
		w ^= m64;
		memcpy(dst + i, &w, 8);
		hi |= w;
	}
	memcpy(m, &m32, 4);
	for (; i < n; i++) {
		dst[i] = src[i] ^ m[i & 3];
		hi |= dst[i];
	}
	return hi;
}

/*
 * Payloads of 64 bytes and more, 64 bytes a turn. On x86-64 this one is
 * built twice and the loader picks the AVX2 copy on CPUs that have it (an
 * ifunc), so a package built for every x86-64 still unmasks a 16 KiB frame
 * in half the instructions where it can (callgrind, PERFORMANCE.md).
 */
MASK_CLONES static uint8_t
mask_wide(uint8_t *dst, const uint8_t *src, size_t n, uint32_t m32)
{
	uint64_t	m64 = (uint64_t)m32 << 32 | m32;
	v4u64		mv = { m64, m64, m64, m64 }, a, b, acc = { 0, 0, 0, 0 };
	size_t		i = 0;

	for (; i + 64 <= n; i += 64) {
		memcpy(&a, src + i, 32);
		memcpy(&b, src + i + 32, 32);
		a ^= mv;
		b ^= mv;
		memcpy(dst + i, &a, 32);
		memcpy(dst + i + 32, &b, 32);
		acc |= a | b;
	}
	if (i + 32 <= n) {
		memcpy(&a, src + i, 32);
		a ^= mv;
		memcpy(dst + i, &a, 32);
		acc |= a;
		i += 32;
	}
	return (mask_tail(dst, src, i, n, m32, acc[0] | acc[1] | acc[2] | acc[3]) &
	    HIGH_BITS) != 0;
}

/*
 * dst[0..n) = src[0..n) XOR the key (already rotated to src's phase);
 * returns the OR of every unmasked byte's top bit: 0 means the bytes are
 * all ASCII, so a text payload needs no UTF-8 pass. One sweep over the
 * payload, not two. Short payloads (most messages) stay inline, without the
 * ifunc's call.
 */
static inline uint8_t
mask_move(uint8_t *dst, const uint8_t *src, size_t n, uint32_t m32)
{
	uint64_t	m64 = (uint64_t)m32 << 32 | m32;
	v2u64		m128 = { m64, m64 }, a, b;

	if (n >= 64)
		return mask_wide(dst, src, n, m32);
	if (n >= 32) {
		memcpy(&a, src, 16);
		memcpy(&b, src + 16, 16);
		a ^= m128;
		b ^= m128;
		memcpy(dst, &a, 16);
		memcpy(dst + 16, &b, 16);
		a |= b;
		return (mask_tail(dst, src, 32, n, m32, a[0] | a[1]) & HIGH_BITS) != 0;
	}
	return (mask_tail(dst, src, 0, n, m32, 0) & HIGH_BITS) != 0;
}

/* In place. */
static inline uint8_t
mask_run(uint8_t *p, size_t n, uint32_t m32)
{
	return mask_move(p, p, n, m32);
}

static uint32_t
mask_key(const uint8_t mask[4], uint64_t off)
{
	uint8_t		m[4];
	uint32_t	m32;
	size_t		i;

	if ((off & 3) == 0)
		memcpy(&m32, mask, 4);
	else {
		for (i = 0; i < 4; i++)
			m[i] = mask[(off + i) & 3];
		memcpy(&m32, m, 4);
	}
	return m32;
}

void
ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off)
{
	(void)mask_run(p, n, mask_key(mask, off));
}

bool
ws_close_code_valid(unsigned code)
{
	if (code >= 1000 && code <= 1003)
		return true;
	if (code >= 1007 && code <= 1014)
		return true;
	return code >= 3000 && code <= 4999;
}

uint16_t
ws_close_parse(const uint8_t *p, size_t n, uint16_t *code, const uint8_t **reason,
    size_t *reason_len)
{
	*reason = NULL;
	*reason_len = 0;
	if (n == 0) {
		*code = WS_CLOSE_NO_STATUS;
		return 0;
	}
	if (n == 1)
		return WS_CLOSE_PROTOCOL;
	*code = (uint16_t)(p[0] << 8 | p[1]);
	if (!ws_close_code_valid(*code))
		return WS_CLOSE_PROTOCOL;
	if (!utf8_valid(p + 2, n - 2))
		return WS_CLOSE_INVALID_DATA;
	*reason = p + 2;
	*reason_len = n - 2;
	return 0;
}

size_t
ws_close_build(uint8_t out[WS_MAX_CONTROL], uint16_t code, const char *reason)
{
	size_t	rlen = reason != NULL ? strlen(reason) : 0;

	if (code == 0)
		return 0;
	if (rlen > WS_MAX_CLOSE_REASON) {
		rlen = WS_MAX_CLOSE_REASON;
		/* Never cut a multi-byte character in half. */
		while (rlen > 0 && ((uint8_t)reason[rlen] & 0xc0) == 0x80)
			rlen--;
	}
	out[0] = code >> 8;
	out[1] = code & 0xff;
	if (rlen > 0)		/* reason may be NULL: memcpy(_, NULL, 0) is UB */
		memcpy(out + 2, reason, rlen);
	return rlen + 2;
}
