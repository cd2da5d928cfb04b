/*
 * devconsole.h — the test page of a route with `devconsole = yes`: a
 * browser's plain GET of the route gets a small self-contained page that
 * connects back to the route, sends what is typed and shows what comes back
 * (daemon/devconsole.html, compiled in at build time).
 */
#ifndef WSR_DEVCONSOLE_H
#define WSR_DEVCONSOLE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The "200 OK" head (Content-Length of the page, a strict
 * Content-Security-Policy, Connection: close) into out. Returns its length,
 * 0 when cap is too small or the policy's hashes could not be computed.
 */
size_t		 devconsole_head(char *out, size_t cap);
/* The page itself. */
const char	*devconsole_body(size_t *len);

#endif
