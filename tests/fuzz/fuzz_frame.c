/*
 * fuzz_frame.c — the frame codec and UTF-8 validator fed as a stream.
 *
 * Input: byte 0 picks the side (server or client limits) and small limits,
 * bytes 1-2 seed the split points, the rest is the stream. The stream is
 * parsed once whole and once cut into chunks at pseudo-random points; both
 * runs must report the same events with the same payloads (a differential
 * check: any state the parser carries across calls wrongly shows up here).
 * A third run cuts the same chunks and lets ws_parser_echo (the echo
 * server's fast path) take what it can first; the frames it builds are
 * decoded back and must carry the same messages.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define MAX_EVENTS	256

struct rec {
	int		type;
	uint8_t		opcode;
	uint16_t	code;
	size_t		len;
	uint32_t	sum;
};

static uint32_t
checksum(const uint8_t *p, size_t n)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Records the server frames an echo run built as the messages they carry. */
static size_t
echo_events(const uint8_t *b, size_t n, struct rec *out, size_t nev)
{
	size_t	hl, len;

	while (n > 0 && nev < MAX_EVENTS) {
		if (n < 2 || (b[0] != 0x81 && b[0] != 0x82) || (b[1] & 0x80) || (b[1] & 0x7f) == 127)
			abort();
		len = b[1] & 0x7f;
		hl = 2;
		if (len == 126) {
			if (n < 4)
				abort();
			len = (size_t)b[2] << 8 | b[3];
			hl = 4;
			if (len < 126)
				abort();	/* not the minimal encoding */
		}
		if (n - hl < len)
			abort();
		out[nev].type = WS_EV_MESSAGE;
		out[nev].opcode = b[0] & 0x0f;
		out[nev].code = 0;
		out[nev].len = len;
		out[nev].sum = len ? checksum(b + hl, len) : 0;
		nev++;
		b += hl + len;
		n -= hl + len;
	}
	return nev;
}

static size_t
run(const struct ws_limits *lim, const uint8_t *data, size_t n, uint32_t seed,
    int split, int echo, struct rec *out)
{
	struct ws_parser	p;
	struct ws_echo_run	er;
	struct ws_event		ev;
	enum ws_event_type	t;
	size_t			pos = 0, nev = 0, chunk, off;
	uint8_t			*buf;

	ws_parser_init(&p);
	while (pos < n && nev < MAX_EVENTS) {
		chunk = n - pos;
		if (split) {
			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 16) % 40;
			if (chunk > n - pos)
				chunk = n - pos;
		}
		/* An exact-size copy so ASan sees any read past the chunk. */
		buf = malloc(chunk);
		memcpy(buf, data + pos, chunk);
		off = 0;
		while (nev < MAX_EVENTS) {
			if (echo) {
				t = ws_parser_echo(&p, lim, buf, chunk, &off, &er, &ev);
				if (er.start > er.end || er.end > off || off > chunk)
					abort();
				nev = echo_events(buf + er.start, er.end - er.start, out, nev);
				if (nev == MAX_EVENTS)
					break;
				if (t != WS_EV_NONE && t != WS_EV_ERROR)
					abort();
			}
			if (!echo || t != WS_EV_ERROR)
				t = ws_parser_next(&p, lim, buf, chunk, &off, &ev);
			if (t == WS_EV_NONE)
				break;
			out[nev].type = t;
			out[nev].opcode = ev.opcode;
			out[nev].code = ev.code;
			out[nev].len = ev.len;
			out[nev].sum = ev.len ? checksum(ev.data, ev.len) : 0;
			nev++;
			if (t == WS_EV_ERROR)
				break;
		}
		free(buf);
		pos += chunk;
		if (nev > 0 && out[nev - 1].type == WS_EV_ERROR)
			break;
	}
	ws_parser_free(&p);
	return nev;
}

static int
same(const struct rec *a, const struct rec *b)
{
	return a->type == b->type && a->opcode == b->opcode && a->code == b->code &&
	    a->len == b->len && a->sum == b->sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec	whole[MAX_EVENTS], split[MAX_EVENTS], echo[MAX_EVENTS];
	struct ws_limits	lim;
	size_t			nw, ns, ne, i;
	uint32_t		seed;

	if (size < 3)
		return 0;
	lim.expect_masked = (data[0] & 1) == 0;
	lim.max_frame_size = (data[0] & 2) ? 200 : 1 << 20;
	lim.max_message_size = (data[0] & 4) ? 300 : 16 << 20;
	seed = data[1] | data[2] << 8;
	data += 3;
	size -= 3;

	nw = run(&lim, data, size, seed, 0, 0, whole);
	ns = run(&lim, data, size, seed, 1, 0, split);
	ne = run(&lim, data, size, seed, 1, 1, echo);
	if (nw == MAX_EVENTS || ns == MAX_EVENTS || ne == MAX_EVENTS)
		return 0;	/* truncated: nothing to compare */
	if (nw != ns || nw != ne)
		abort();
	for (i = 0; i < nw; i++)
		if (!same(&whole[i], &split[i]) || !same(&whole[i], &echo[i]))
			abort();
	return 0;
}
