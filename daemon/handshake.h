/*
 * handshake.h — PURE. The HTTP/1.1 side of RFC 6455 §4: find the end of a
 * request head, parse and validate an upgrade request, build the 101 answer
 * or an HTTP error answer. No I/O, no allocation (but for one SHA-1 context
 * per thread, see hs_accept_key): every string in a parsed
 * request points into the caller's buffer, which must outlive the request.
 */
#ifndef WSR_HANDSHAKE_H
#define WSR_HANDSHAKE_H

#include <stddef.h>
#include <sys/types.h>

#include "http.h"

#define HS_HEAD_MAX      8192   /* request head limit (431 beyond) */
#define HS_MAX_HEADERS   64     /* more header lines than this → 431 */
#define HS_ACCEPT_LEN    28     /* base64(SHA-1) length, without NUL */


struct hs_header {
	struct hs_str	 name;
	struct hs_str	 value;	/* leading/trailing OWS stripped */
};

struct hs_request {
	struct hs_str	 method;
	struct hs_str	 target;	/* raw request-target */
	struct hs_str	 path;		/* target up to '?' */
	struct hs_str	 query;		/* after '?', p == NULL when there is none */
	struct hs_str	 host;
	struct hs_str	 key;		/* Sec-WebSocket-Key */
	struct hs_str	 origin;	/* Origin, p == NULL when absent */
	struct hs_str	 protocols;	/* Sec-WebSocket-Protocol (first occurrence) */
	struct hs_header headers[HS_MAX_HEADERS]; /* [nheaders..] are not cleared */
	size_t		 nheaders;
	int		 status;	/* 0 when valid, else the HTTP status to answer */
	const char	*error;		/* short static reason when status != 0 */
};

/*
 * Looks for the blank line that ends a request head in buf[0..len).
 * Returns the head length including the final CRLFCRLF (or LFLF), 0 when more
 * bytes are needed, -1 when no end was found within HS_HEAD_MAX bytes (431).
 */
ssize_t	 hs_head_end(const char *buf, size_t len);

/*
 * Parses and validates buf[0..head_len) (as returned by hs_head_end) as a
 * WebSocket upgrade request. Returns 0 when it is a valid upgrade, otherwise
 * the HTTP status to answer (also stored in req->status, with req->error):
 *   400 malformed request line / header / missing or bad Host, Upgrade,
 *       Connection or Sec-WebSocket-Key (must base64-decode to 16 bytes),
 *       HTTP version other than 1.1 (or later 1.x)
 *   405 method other than GET
 *   426 Sec-WebSocket-Version missing or not 13
 *   431 more than HS_MAX_HEADERS header lines
 * Checked in this order: HTTP syntax and Host (400, 431), method (405),
 * version (426), the other upgrade headers (400); so a POST without
 * Sec-WebSocket-Version is 405, a GET with version 8 and no key 426.
 * Also 400: duplicate Sec-WebSocket-Key or Origin, a request body
 * (Transfer-Encoding, Content-Length other than 0), bytes after the empty
 * line. Bare LF line endings are accepted, obs-fold and bare CR are not.
 * On error the fields are filled as far as parsing got (method and target
 * are set for a 405 or 426, for the log).
 */
int	 hs_request_parse(const char *buf, size_t head_len, struct hs_request *req);

/* Case-insensitive lookup of a header by name: first occurrence, or NULL. */
const struct hs_header *hs_request_header(const struct hs_request *req, const char *name);

/*
 * Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), NUL-terminated.
 * out is "" if libcrypto fails (out of memory); hs_build_101 refuses that.
 */
void	 hs_accept_key(const char *key, size_t key_len, char out[HS_ACCEPT_LEN + 1]);

/*
 * Loads what hs_accept_key needs from libcrypto now (its provider tables
 * are ~2 MiB of RSS) instead of in the first handshake. 0, or -1 if that
 * failed (hs_accept_key would then answer "").
 */
int	 hs_init(void);

/*
 * Picks the first subprotocol of the client's comma-separated offer (in the
 * client's order of preference) that appears in supported[0..n).
 * Returns its index in supported, or -1 when there is no match.
 */
int	 hs_select_subprotocol(struct hs_str offered, char *const *supported, size_t n);

/*
 * Origin allowlist check: exact, case-insensitive match against allowed[0..n).
 * n == 0 allows everything. A request without Origin is allowed only when
 * n == 0 (non-browser clients must not bypass a configured allowlist).
 */
int	 hs_origin_allowed(struct hs_str origin, char *const *allowed, size_t n);

/*
 * Writes "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection,
 * Sec-WebSocket-Accept and, when subprotocol != NULL, Sec-WebSocket-Protocol.
 * Returns the length written, or 0 if cap is too small. out is NUL-terminated
 * (not counted, but it needs room). Also 0, to keep header lines intact, when
 * accept is not 28 base64 characters or subprotocol is not a token.
 */
size_t	 hs_build_101(char *out, size_t cap, const char *accept, const char *subprotocol);

/*
 * Writes an error answer: status line with the standard reason phrase,
 * Content-Type: text/plain, Content-Length, Connection: close, for 426 also
 * "Sec-WebSocket-Version: 13", and a one-line body ("<reason>\n", e.g.
 * "404 Not Found: no route for this path\n" when detail is given).
 * A 405 also carries "Allow: GET" (RFC 9110 §15.5.6); a 426 also
 * "Upgrade: websocket", which RFC 9110 §15.5.22 requires, and so
 * "Connection: Upgrade, close" (§7.8). Control characters in detail become
 * '?'. Returns the length written, or 0 if cap is too small or status is not
 * a 4xx/5xx that hs_status_reason knows. out is NUL-terminated as above.
 */
size_t	 hs_build_error(char *out, size_t cap, int status, const char *detail);

/* Standard reason phrase for the statuses we send ("Bad Request", …), or NULL. */
const char *hs_status_reason(int status);

#endif
