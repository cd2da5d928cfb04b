/*
 * http.c — see http.h. Hand-written for the reason given in handshake.c:
 * no maintained HTTP parser library is packaged for C in Debian, and these
 * are a handful of lines each.
 */
#include <string.h>

#include "http.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / ... / "~" / DIGIT / ALPHA */
#define T1(c)	[c] = true
const bool http_tchar[256] = {
	T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'),
	T1('.'), T1('^'), T1('_'), T1('`'), T1('|'), T1('~'),
	T1('0'), T1('1'), T1('2'), T1('3'), T1('4'), T1('5'), T1('6'), T1('7'), T1('8'), T1('9'),
	T1('A'), T1('B'), T1('C'), T1('D'), T1('E'), T1('F'), T1('G'), T1('H'), T1('I'),
	T1('J'), T1('K'), T1('L'), T1('M'), T1('N'), T1('O'), T1('P'), T1('Q'), T1('R'),
	T1('S'), T1('T'), T1('U'), T1('V'), T1('W'), T1('X'), T1('Y'), T1('Z'),
	T1('a'), T1('b'), T1('c'), T1('d'), T1('e'), T1('f'), T1('g'), T1('h'), T1('i'),
	T1('j'), T1('k'), T1('l'), T1('m'), T1('n'), T1('o'), T1('p'), T1('q'), T1('r'),
	T1('s'), T1('t'), T1('u'), T1('v'), T1('w'), T1('x'), T1('y'), T1('z'),
};
#undef T1

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
