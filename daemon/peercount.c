/*
 * peercount.c — see peercount.h. A chained hash table of small entries;
 * an entry lives only while its address has open connections.
 */
#include <stdlib.h>
#include <string.h>

#include "peercount.h"

#define PEERCOUNT_BUCKETS	4096	/* a power of two */

struct peer_entry {
	struct peer_entry	*next;
	uint32_t		 n;
	char			 key[];
};

struct peercount {
	struct peer_entry	*buckets[PEERCOUNT_BUCKETS];
};

static uint32_t
hash(const char *s)
{
	uint32_t	h = 2166136261u;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h & (PEERCOUNT_BUCKETS - 1);
}

struct peercount *
peercount_new(void)
{
	return calloc(1, sizeof(struct peercount));
}

void
peercount_free(struct peercount *pc)
{
	struct peer_entry	*e, *next;
	size_t			 i;

	if (pc == NULL)
		return;
	for (i = 0; i < PEERCOUNT_BUCKETS; i++)
		for (e = pc->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(pc);
}

int
peercount_acquire(struct peercount *pc, const char *addr, uint32_t max)
{
	struct peer_entry	**b = &pc->buckets[hash(addr)], *e;
	size_t			  len;

	for (e = *b; e != NULL; e = e->next)
		if (strcmp(e->key, addr) == 0)
			break;
	if (e == NULL) {
		if (max == 0)
			return -1;
		len = strlen(addr) + 1;
		if ((e = malloc(sizeof(*e) + len)) == NULL)
			return -1;
		memcpy(e->key, addr, len);
		e->n = 0;
		e->next = *b;
		*b = e;
	}
	if (e->n >= max)
		return -1;
	e->n++;
	return 0;
}

void
peercount_release(struct peercount *pc, const char *addr)
{
	struct peer_entry	**pp = &pc->buckets[hash(addr)], *e;

	for (; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->key, addr) != 0)
			continue;
		if (--e->n == 0) {
			*pp = e->next;
			free(e);
		}
		return;
	}
}

void
peercount_key(const char *peer, char *out, size_t cap)
{
	const char	*end;
	size_t		 len;

	if (peer[0] == '[' && (end = strchr(peer, ']')) != NULL)
		len = end - peer + 1;
	else if ((end = strchr(peer, ':')) != NULL && strchr(end + 1, ':') == NULL)
		len = end - peer;	/* IPv4:port; a bare IPv6 has several ':' */
	else
		len = strlen(peer);
	if (len >= cap)
		len = cap - 1;
	memcpy(out, peer, len);
	out[len] = '\0';
}
