/*
 * fuzz_close.c — the close-payload parser, and build∘parse round trips.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*reason;
	uint8_t		 out[WS_MAX_CONTROL], *copy;
	char		 text[WS_MAX_CONTROL + 1];
	size_t		 rlen, n;
	uint16_t	 code, code2, err;

	if (size > WS_MAX_CONTROL)
		return 0;
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	err = ws_close_parse(copy, size, &code, &reason, &rlen);
	if (err == 0 && size >= 2) {
		if (!ws_close_code_valid(code) || !utf8_valid(reason, rlen))
			abort();
		/* What we accept we can send back identically. */
		memcpy(text, reason, rlen);
		text[rlen] = '\0';
		if (memchr(text, '\0', rlen) == NULL) {
			n = ws_close_build(out, code, text);
			if (n != size || memcmp(out, copy, n) != 0)
				abort();
			if (ws_close_parse(out, n, &code2, &reason, &rlen) != 0 || code2 != code)
				abort();
		}
	} else if (err != 0 && err != WS_CLOSE_PROTOCOL && err != WS_CLOSE_INVALID_DATA)
		abort();
	free(copy);
	return 0;
}
