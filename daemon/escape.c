/*
 * escape.c — PURE. See escape.h. Written here because the three formats
 * each need their own rules and bounded, never-cut output; jansson could
 * escape JSON but builds a tree and allocates per value, and stops at
 * invalid UTF-8 instead of replacing it.
 */
#include <stdint.h>
#include <string.h>

#include "escape.h"

static const char hex[] = "0123456789abcdef";

/* Appends piece (n bytes) if it fits whole, keeping room for the NUL. */
static bool
put(char *out, size_t cap, size_t *o, const char *piece, size_t n)
{
	if (*o + n + 1 > cap)
		return false;
	memcpy(out + *o, piece, n);
	*o += n;
	return true;
}

static size_t
finish(char *out, size_t cap, size_t o, bool cut, bool *truncated)
{
	if (cap > 0)
		out[o] = '\0';
	if (truncated != NULL)
		*truncated = cut;
	return o;
}

size_t
esc_kv(char *out, size_t cap, const char *s, size_t len, bool *truncated)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			 buf[4];
	size_t			 i, o = 0, n;

	for (i = 0; i < len; i++) {
		n = 2;
		buf[0] = '\\';
		switch (p[i]) {
		case '"':  buf[1] = '"'; break;
		case '\\': buf[1] = '\\'; break;
		case '\n': buf[1] = 'n'; break;
		case '\r': buf[1] = 'r'; break;
		case '\t': buf[1] = 't'; break;
		default:
			if (p[i] >= 0x20 && p[i] < 0x7f) {
				buf[0] = (char)p[i];
				n = 1;
			} else {
				buf[1] = 'x';
				buf[2] = hex[p[i] >> 4];
				buf[3] = hex[p[i] & 15];
				n = 4;
			}
		}
		if (!put(out, cap, &o, buf, n))
			return finish(out, cap, o, true, truncated);
	}
	return finish(out, cap, o, false, truncated);
}

/* Length of the valid UTF-8 sequence at p[0..n) (2..4), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	uint32_t	cp;
	size_t		need, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

size_t
esc_json(char *out, size_t cap, const char *s, size_t len, bool *truncated)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			 buf[8];
	size_t			 i, o = 0, n, seq;
	const char		*piece;

	for (i = 0; i < len; i += seq) {
		seq = 1;
		piece = buf;
		n = 2;
		buf[0] = '\\';
		switch (p[i]) {
		case '"':  buf[1] = '"'; break;
		case '\\': buf[1] = '\\'; break;
		case '\n': buf[1] = 'n'; break;
		case '\r': buf[1] = 'r'; break;
		case '\t': buf[1] = 't'; break;
		case '\b': buf[1] = 'b'; break;
		case '\f': buf[1] = 'f'; break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f) {
				memcpy(buf, "\\u00", 4);
				buf[4] = hex[p[i] >> 4];
				buf[5] = hex[p[i] & 15];
				n = 6;
			} else if (p[i] < 0x80) {
				piece = (const char *)p + i;
				n = 1;
			} else if ((seq = utf8_seq(p + i, len - i)) != 0) {
				piece = (const char *)p + i;
				n = seq;
			} else {
				seq = 1;
				piece = "\xef\xbf\xbd";		/* U+FFFD */
				n = 3;
			}
		}
		if (!put(out, cap, &o, piece, n))
			return finish(out, cap, o, true, truncated);
	}
	return finish(out, cap, o, false, truncated);
}

size_t
esc_prom_label(char *out, size_t cap, const char *s, size_t len, bool *truncated)
{
	char	buf[2];
	size_t	i, o = 0, n;

	for (i = 0; i < len; i++) {
		n = 2;
		buf[0] = '\\';
		if (s[i] == '\\' || s[i] == '"')
			buf[1] = s[i];
		else if (s[i] == '\n')
			buf[1] = 'n';
		else {
			buf[0] = s[i];
			n = 1;
		}
		if (!put(out, cap, &o, buf, n))
			return finish(out, cap, o, true, truncated);
	}
	return finish(out, cap, o, false, truncated);
}
