/*
 * utf8.h — PURE. Incremental UTF-8 validator (RFC 3629): the state is carried
 * across fragments and buffer chunks, so a text message can be checked as
 * its bytes arrive and refused at the first bad byte (RFC 6455 §8.1).
 * Overlongs, surrogates (U+D800..U+DFFF) and code points above U+10FFFF are
 * invalid.
 */
#ifndef WSR_UTF8_H
#define WSR_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_ACCEPT	0	/* between code points: a message may end here */
#define UTF8_REJECT	1	/* sticky: invalid input was seen */

/*
 * Feeds n bytes; returns the new state. UTF8_REJECT means an invalid byte was
 * seen (at offset *bad when bad != NULL); any other state means "valid so far".
 */
uint8_t	utf8_feed(uint8_t state, const uint8_t *p, size_t n, size_t *bad);

/* One-shot check of a complete string. */
static inline int
utf8_valid(const uint8_t *p, size_t n)
{
	return utf8_feed(UTF8_ACCEPT, p, n, NULL) == UTF8_ACCEPT;
}

#endif
