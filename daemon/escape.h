/*
 * escape.h — PURE. Strings (possibly from the peer, possibly not text) made
 * safe for one line of output: a logfmt ("key=value") quoted value, a JSON
 * string and a Prometheus label value.
 *
 * Each function writes the escaped form of s[0..len) into out (cap bytes,
 * NUL-terminated) without the surrounding quotes and returns its length.
 * When out is too small the output stops before the first input character
 * that does not fit whole (an escape is never cut), and *truncated, when
 * not NULL, is set.
 */
#ifndef WSR_ESCAPE_H
#define WSR_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * For "key=\"...\"": \" \\ \n \r \t, and every other byte below 0x20, 0x7f
 * and every byte >= 0x80 as \xNN, so the line is plain ASCII, one line,
 * and grep-able whatever the peer sent.
 */
size_t	esc_kv(char *out, size_t cap, const char *s, size_t len, bool *truncated);

/*
 * A JSON string's contents (RFC 8259): \" \\ \n \r \t \b \f, other control
 * characters and 0x7f as \u00XX; valid UTF-8 is kept; each byte that is not
 * part of a valid UTF-8 sequence (overlong, surrogate, > U+10FFFF,
 * truncated) becomes U+FFFD, so the result is always valid UTF-8 JSON.
 */
size_t	esc_json(char *out, size_t cap, const char *s, size_t len, bool *truncated);

/* A Prometheus text-format label value: \\ \" and \n (format 0.0.4). */
size_t	esc_prom_label(char *out, size_t cap, const char *s, size_t len, bool *truncated);

#endif
