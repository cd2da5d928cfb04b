/*
 * route.c — PURE. The route table: one struct route per [route] of a
 * config, sorted by path so that a request path is found with bsearch.
 *
 * Matching is exact and byte-wise: no prefix match, no normalisation (a
 * trailing slash is another path, percent-encoding is not decoded). The
 * caller passes the path without its query string. The table owns its
 * config, and is refcounted so that a reload can install a new table while
 * open connections keep the one they were accepted with.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

/* What bsearch looks for: the request path need not be NUL-terminated. */
struct route_key {
	const char	*path;
	size_t		 len;
};

static int
path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int	r;

	r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

static int
route_cmp(const void *a, const void *b)
{
	const struct route	*ra = a, *rb = b;

	return path_cmp(ra->conf->path, strlen(ra->conf->path),
	    rb->conf->path, strlen(rb->conf->path));
}

static int
route_key_cmp(const void *key, const void *elem)
{
	const struct route_key	*k = key;
	const struct route	*r = elem;

	return path_cmp(k->path, k->len, r->conf->path, strlen(r->conf->path));
}

struct route_table *
route_table_new(struct config *cfg)
{
	struct route_table	*t;
	size_t			 i;

	if (cfg == NULL)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	if (cfg->nroutes != 0) {
		t->routes = calloc(cfg->nroutes, sizeof(*t->routes));
		if (t->routes == NULL)
			goto fail;
	}
	for (i = 0; i < cfg->nroutes; i++) {
		t->routes[i].conf = &cfg->routes[i];
		t->routes[i].table = t;
		t->routes[i].wsl.max_frame_size = cfg->routes[i].limits.max_frame_size;
		t->routes[i].wsl.max_message_size = cfg->routes[i].limits.max_message_size;
		t->routes[i].wsl.expect_masked = true;
	}
	t->nroutes = cfg->nroutes;
	if (t->nroutes > 1)
		qsort(t->routes, t->nroutes, sizeof(*t->routes), route_cmp);
	t->cfg = cfg;
	t->refs = 1;
	return t;

fail:
	free(t);		/* cfg stays the caller's (main.c frees it) */
	return NULL;
}

struct route *
route_lookup(struct route_table *t, const char *path, size_t len)
{
	struct route_key	key = { path, len };

	/* bsearch on a NULL base is undefined even for zero elements. */
	if (t == NULL || t->nroutes == 0 || len == 0)
		return NULL;
	return bsearch(&key, t->routes, t->nroutes, sizeof(*t->routes),
	    route_key_cmp);
}

void
route_table_ref(struct route_table *t)
{
	/* Atomic: with workers > 1 connections on every thread hold references. */
	assert(__atomic_load_n(&t->refs, __ATOMIC_RELAXED) > 0);
	__atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
}

void
route_table_unref(struct route_table *t, void (*free_instances)(struct route *))
{
	size_t	i;

	if (t == NULL)
		return;
	assert(__atomic_load_n(&t->refs, __ATOMIC_RELAXED) > 0);
	/* Release/acquire: the thread that frees sees every other's last use. */
	if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (free_instances != NULL) {
		for (i = 0; i < t->nroutes; i++)
			free_instances(&t->routes[i]);
	}
	free(t->routes);
	free(t->loop_users);
	config_free(t->cfg);
	free(t);
}
