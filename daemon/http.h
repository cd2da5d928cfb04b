/*
 * http.h — PURE. The few HTTP/1.1 lexical helpers (RFC 9110/9112) shared by
 * the server side of the handshake (handshake.c) and the client's
 * (cli/client_handshake.c): character classes, case-insensitive compare,
 * comma lists, line splitting. Strings are (pointer, length) views.
 */
#ifndef WSR_HTTP_H
#define WSR_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct hs_str {
	const char	*p;	/* NULL when absent */
	size_t		 len;
};

bool	http_is_ows(char c);			/* SP or HTAB */
bool	http_is_ctl(unsigned char c);		/* < 0x20 or DEL */
bool	http_is_tchar(unsigned char c);		/* a token character */
int	http_lower(unsigned char c);		/* ASCII only, locale-free */
bool	http_str_eq(struct hs_str s, const char *lit);
bool	http_str_caseeq(struct hs_str s, const char *lit);
struct hs_str http_trim_ows(const char *p, size_t len);
/*
 * Next non-empty element of a comma-separated list from *pos on (OWS
 * trimmed); false at the end.
 */
bool	http_list_next(struct hs_str list, size_t *pos, struct hs_str *elem);
/* Next line of buf[*pos..end) without its LF or CRLF; false without an LF. */
bool	http_next_line(const char *buf, size_t end, size_t *pos, struct hs_str *line);

#endif
