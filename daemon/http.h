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

/*
 * The character classes are inline: the handshake calls them for every byte
 * of a request head, and a call per byte was most of its cost.
 */
extern const bool http_tchar[256];

/* SP or HTAB */
static inline bool
http_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* < 0x20 or DEL */
static inline bool
http_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* A token character (RFC 9110 §5.6.2). */
static inline bool
http_is_tchar(unsigned char c)
{
	return http_tchar[c];
}

/* ASCII only, locale-free */
static inline int
http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

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
