/*
 * client_handshake.h — PURE (+libcrypto). The client half of the RFC 6455
 * opening handshake (§3, §4.1): parse a ws:// or wss:// URL, build the
 * upgrade request, and parse and validate the server's answer. No I/O, no
 * allocation: every string in a parsed URL or response points into the
 * caller's buffer, which must outlive it.
 */
#ifndef WSC_CLIENT_HANDSHAKE_H
#define WSC_CLIENT_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"		/* struct hs_str, HS_ACCEPT_LEN, hs_head_end */

#define WSC_KEY_LEN	24	/* base64 of the 16-byte nonce, without NUL */
#define WSC_HOST_MAX	255	/* bytes of a host name or IP literal */

struct wsc_url {
	bool		 tls;			/* wss:// */
	char		 host[WSC_HOST_MAX + 1];	/* without brackets: for DNS, SNI, verification */
	bool		 ipv6;			/* host is an IPv6 literal (bracketed in Host:) */
	bool		 ip;			/* host is an IPv4 or IPv6 literal */
	uint16_t	 port;			/* given, or 80 / 443 */
	struct hs_str	 path;			/* "/" when the URL has none */
	struct hs_str	 query;			/* including the '?'; p == NULL when none */
};

/*
 * Parses ws://HOST[:PORT][/PATH][?QUERY] or wss://… (scheme
 * case-insensitive; HOST a name, an IPv4 address or [IPv6]). Refused, with
 * *why set to a static reason: another scheme, user info, a fragment
 * (RFC 6455 §3), an empty or invalid host or port, characters other than
 * visible ASCII in the path or query (spaces must be percent-encoded).
 * Returns 0 or -1.
 */
int	 wsc_url_parse(const char *s, struct wsc_url *u, const char **why);

/* Sec-WebSocket-Key: base64 of a 16-byte nonce (from a CSPRNG), NUL-terminated. */
void	 wsc_make_key(const uint8_t nonce[16], char key[WSC_KEY_LEN + 1]);

/*
 * Checks an extra request header given as "Name: value": the name must be an
 * HTTP token, the value free of control characters (HTAB allowed), and the
 * name not one the handshake sets itself (Upgrade, Connection,
 * Sec-WebSocket-*) or that has its own option (Origin). Host is allowed and
 * replaces the one derived from the URL. Returns 0, or -1 with *why set.
 */
int	 wsc_header_check(const char *line, const char **why);

/* A subprotocol must be an HTTP token (RFC 6455 §4.1). */
bool	 wsc_token_valid(const char *s, size_t len);

struct wsc_request {
	const struct wsc_url	 *url;
	const char		 *key;		/* from wsc_make_key */
	const char		 *origin;	/* NULL: no Origin header */
	const char *const	 *protocols;	/* offered subprotocols, in preference order */
	size_t			  nprotocols;
	const char *const	 *headers;	/* extra "Name: value" lines, checked */
	size_t			  nheaders;
	const char		 *user_agent;	/* NULL: none; an extra User-Agent wins */
};

/*
 * Writes the GET upgrade request (head only, ending with the empty line).
 * Returns its length, or 0 if it does not fit in cap (out is NUL-terminated,
 * which needs one more byte) or a string in it would break a header line.
 */
size_t	 wsc_build_request(char *out, size_t cap, const struct wsc_request *req);

enum wsc_answer {
	WSC_ACCEPTED	= 0,	/* a valid 101 */
	WSC_REFUSED	= 1,	/* a well-formed status line other than 101 */
	WSC_INVALID	= 2,	/* not HTTP, or a 101 that breaks RFC 6455 §4.1 */
};

struct wsc_response {
	int		 status;	/* HTTP status, 0 when the status line is malformed */
	struct hs_str	 status_line;	/* first line without its line ending */
	struct hs_str	 protocol;	/* subprotocol chosen by the server; p == NULL: none */
	const char	*error;		/* static reason for WSC_INVALID / WSC_REFUSED */
};

/*
 * Parses buf[0..head_len) (a whole response head, as found by hs_head_end)
 * and, for a 101, checks it against RFC 6455 §4.1: HTTP/1.1 (or later 1.x),
 * "Upgrade: websocket", a Connection header listing "upgrade", exactly one
 * Sec-WebSocket-Accept matching key, at most one Sec-WebSocket-Protocol
 * naming one of protocols[0..nprotocols) (case-sensitive), and no
 * Sec-WebSocket-Extensions (this client offers none). Header syntax as the
 * daemon reads requests: bare LF accepted; obs-fold, bare CR and other
 * control characters refused.
 */
enum wsc_answer wsc_response_check(const char *buf, size_t head_len, const char *key,
		    const char *const *protocols, size_t nprotocols, struct wsc_response *res);

#endif
