/*
 * utf8.c — incremental UTF-8 validation.
 *
 * Hand-written because it sits on the hot path of every text message and must
 * carry its state across arbitrary chunk boundaries; iconv and friends neither
 * stream byte-exact state nor fail at the first bad byte. The states follow
 * the table of well-formed sequences in RFC 3629 §4 (Unicode Table 3-7).
 */
#include <string.h>

#include "utf8.h"

enum {
	S_ACCEPT = UTF8_ACCEPT,
	S_REJECT = UTF8_REJECT,
	S_TAIL1,	/* one more 80..BF */
	S_TAIL2,	/* two more 80..BF */
	S_TAIL3,	/* three more 80..BF */
	S_E0,		/* after E0: A0..BF (no overlongs) */
	S_ED,		/* after ED: 80..9F (no surrogates) */
	S_F0,		/* after F0: 90..BF (no overlongs) */
	S_F4,		/* after F4: 80..8F (nothing above U+10FFFF) */
};

static inline uint8_t
utf8_step(uint8_t s, uint8_t b)
{
	switch (s) {
	case S_ACCEPT:
		if (b < 0x80)
			return S_ACCEPT;
		if (b < 0xc2)		/* stray continuation or overlong C0/C1 */
			return S_REJECT;
		if (b < 0xe0)
			return S_TAIL1;
		if (b == 0xe0)
			return S_E0;
		if (b == 0xed)
			return S_ED;
		if (b < 0xf0)
			return S_TAIL2;
		if (b == 0xf0)
			return S_F0;
		if (b < 0xf4)
			return S_TAIL3;
		if (b == 0xf4)
			return S_F4;
		return S_REJECT;
	case S_TAIL1:
		return (b & 0xc0) == 0x80 ? S_ACCEPT : S_REJECT;
	case S_TAIL2:
		return (b & 0xc0) == 0x80 ? S_TAIL1 : S_REJECT;
	case S_TAIL3:
		return (b & 0xc0) == 0x80 ? S_TAIL2 : S_REJECT;
	case S_E0:
		return (b >= 0xa0 && b <= 0xbf) ? S_TAIL1 : S_REJECT;
	case S_ED:
		return (b >= 0x80 && b <= 0x9f) ? S_TAIL1 : S_REJECT;
	case S_F0:
		return (b >= 0x90 && b <= 0xbf) ? S_TAIL2 : S_REJECT;
	case S_F4:
		return (b >= 0x80 && b <= 0x8f) ? S_TAIL2 : S_REJECT;
	default:
		return S_REJECT;
	}
}

uint8_t
utf8_feed(uint8_t state, const uint8_t *p, size_t n, size_t *bad)
{
	size_t	 i = 0;
	uint64_t w;

	if (state == S_REJECT) {
		if (bad != NULL)
			*bad = 0;
		return S_REJECT;
	}
	while (i < n) {
		/* Most text is ASCII: skip it eight bytes at a time. */
		if (state == S_ACCEPT) {
			while (n - i >= 8) {
				memcpy(&w, p + i, 8);
				if (w & 0x8080808080808080ULL)
					break;
				i += 8;
			}
			if (i == n)
				break;
		}
		state = utf8_step(state, p[i]);
		if (state == S_REJECT) {
			if (bad != NULL)
				*bad = i;
			return S_REJECT;
		}
		i++;
	}
	return state;
}
