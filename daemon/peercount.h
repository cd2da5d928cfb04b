/*
 * peercount.h — open connections per client address, for
 * max_connections_per_ip. Keys are the address as logged, without the port
 * (after trusted-proxy resolution), so a proxy's clients count one by one.
 */
#ifndef WSR_PEERCOUNT_H
#define WSR_PEERCOUNT_H

#include <stddef.h>
#include <stdint.h>

struct peercount;

struct peercount *peercount_new(void);
void		  peercount_free(struct peercount *);
/* Counts one more for addr; -1 (and no count) when max is reached or no memory. */
int		  peercount_acquire(struct peercount *, const char *addr, uint32_t max);
void		  peercount_release(struct peercount *, const char *addr);
/* "192.0.2.1:443" → "192.0.2.1", "[2001:db8::1]:443" → "[2001:db8::1]". */
void		  peercount_key(const char *peer, char *out, size_t cap);

#endif
