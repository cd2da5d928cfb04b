/*
 * forwarded.h — PURE. The client address (and scheme) behind trusted
 * proxies, from the request head of a connection whose direct peer is in
 * trusted_proxies (the caller checks that; from anyone else these headers
 * are ignored):
 *
 *   Forwarded (RFC 7239)  >  X-Forwarded-For  >  X-Real-IP
 *
 * For the list headers the client is the rightmost address that is not
 * itself a trusted proxy: everything left of it was written by the client
 * or by hops we do not trust. Several lines of one header form one list.
 * A header that does not parse is ignored as a whole (the next one is
 * tried); one whose chosen node is "unknown" or obfuscated ("_x") decides
 * that the address is unknown and the direct peer is kept.
 */
#ifndef WSR_FORWARDED_H
#define WSR_FORWARDED_H

#include <stdbool.h>

#include "config.h"
#include "handshake.h"

struct fwd_result {
	char	addr[56];	/* "192.0.2.1", "2001:db8::1", with ":port" / "[v6]:port" if given */
	char	proto[8];	/* "http", "https", "ws", "wss"; "" when not given */
	const char *source;	/* "Forwarded", "X-Forwarded-For", "X-Real-IP"; NULL */
};

/*
 * Fills out and returns true when a client address was found. out->proto
 * is filled from Forwarded's proto= (of the chosen element) or from
 * X-Forwarded-Proto even when no address was found.
 */
bool	fwd_resolve(const struct hs_request *req, const struct config_cidr *trusted,
	    size_t ntrusted, struct fwd_result *out);

#endif
