/*
 * fuzz_proxyproto.c — the PROXY protocol v1/v2 parser. Besides "no crash",
 * it checks the contract the daemon relies on to consume bytes as they
 * arrive: growing prefixes go NEED_MORE… then OK or ERROR and stay there,
 * and an OK header has the same length whatever follows it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_result	r, whole;
	enum pp_status		st, final;
	uint8_t			*buf;
	size_t			k, limit;

	if (size > PP_MAX + 64)
		return 0;
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	final = pp_parse(buf, size, &whole);
	if (final == PP_OK && (whole.len == 0 || whole.len > size ||
	    (whole.version != 1 && whole.version != 2)))
		abort();
	limit = size < 160 ? size : 160;
	for (k = 1; k <= limit; k++) {
		st = pp_parse(buf, k, &r);
		if (st == PP_OK && (final != PP_OK || r.len != whole.len))
			abort();
		if (st == PP_ERROR && final != PP_ERROR)
			abort();
		if (st == PP_NEED_MORE && final == PP_OK && k >= whole.len)
			abort();
	}
	free(buf);
	return 0;
}
