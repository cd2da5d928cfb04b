/*
 * fuzz_frame.c — the frame codec and UTF-8 validator fed as a stream.
 *
 * Input: byte 0 picks the side (server or client limits) and small limits,
 * bytes 1-2 seed the split points, the rest is the stream. The stream is
 * parsed once whole and once cut into chunks at pseudo-random points; both
 * runs must report the same events with the same payloads (a differential
 * check: any state the parser carries across calls wrongly shows up here).
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

static size_t
run(const struct ws_limits *lim, const uint8_t *data, size_t n, uint32_t seed,
    int split, struct rec *out)
{
	struct ws_parser	p;
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
		while (nev < MAX_EVENTS &&
		    (t = ws_parser_next(&p, lim, buf, chunk, &off, &ev)) != WS_EV_NONE) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec	whole[MAX_EVENTS], split[MAX_EVENTS];
	struct ws_limits	lim;
	size_t			nw, ns, i;
	uint32_t		seed;

	if (size < 3)
		return 0;
	lim.expect_masked = (data[0] & 1) == 0;
	lim.max_frame_size = (data[0] & 2) ? 200 : 1 << 20;
	lim.max_message_size = (data[0] & 4) ? 300 : 16 << 20;
	seed = data[1] | data[2] << 8;
	data += 3;
	size -= 3;

	nw = run(&lim, data, size, seed, 0, whole);
	ns = run(&lim, data, size, seed, 1, split);
	if (nw == MAX_EVENTS || ns == MAX_EVENTS)
		return 0;	/* truncated: nothing to compare */
	if (nw != ns)
		abort();
	for (i = 0; i < nw; i++)
		if (whole[i].type != split[i].type || whole[i].opcode != split[i].opcode ||
		    whole[i].code != split[i].code || whole[i].len != split[i].len ||
		    whole[i].sum != split[i].sum)
			abort();
	return 0;
}
