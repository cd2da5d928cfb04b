/*
 * http.c — see http.h. Hand-written for the reason given in handshake.c:
 * no maintained HTTP parser library is packaged for C in Debian, and these
 * are a handful of lines each.
 */
#include <string.h>

#include "http.h"

bool
http_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool
http_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

bool
http_str_eq(struct hs_str s, const char *lit)
{
	return strlen(lit) == s.len && (s.len == 0 || memcmp(s.p, lit, s.len) == 0);
}

bool
http_str_caseeq(struct hs_str s, const char *lit)
{
	size_t	i;

	for (i = 0; i < s.len; i++) {
		if (lit[i] == '\0' ||
		    http_lower((unsigned char)s.p[i]) != http_lower((unsigned char)lit[i]))
			return false;
	}
	return lit[i] == '\0';
}

struct hs_str
http_trim_ows(const char *p, size_t len)
{
	struct hs_str	s;

	while (len > 0 && http_is_ows(p[0])) {
		p++;
		len--;
	}
	while (len > 0 && http_is_ows(p[len - 1]))
		len--;
	s.p = p;
	s.len = len;
	return s;
}

bool
http_list_next(struct hs_str list, size_t *pos, struct hs_str *elem)
{
	const char	*start, *comma;
	size_t		 left;

	while (list.p != NULL && *pos < list.len) {
		start = list.p + *pos;
		left = list.len - *pos;
		if ((comma = memchr(start, ',', left)) != NULL)
			left = comma - start;
		*pos += left + 1;
		*elem = http_trim_ows(start, left);
		if (elem->len > 0)
			return true;
	}
	return false;
}

bool
http_next_line(const char *buf, size_t end, size_t *pos, struct hs_str *line)
{
	const char	*lf;

	if (*pos >= end || (lf = memchr(buf + *pos, '\n', end - *pos)) == NULL)
		return false;
	line->p = buf + *pos;
	line->len = lf - line->p;
	if (line->len > 0 && line->p[line->len - 1] == '\r')
		line->len--;
	*pos = lf - buf + 1;
	return true;
}
