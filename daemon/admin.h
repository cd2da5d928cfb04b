/*
 * admin.h — the admin listener ([admin] listen =): GET /metrics (Prometheus
 * text format 0.0.4, metrics.h), /healthz (200 while the event loop runs)
 * and /readyz (200 when serving, 503 while draining or before the first
 * configuration is in service). Anything else is 404; a method other than
 * GET or HEAD on these paths is 405.
 *
 * HTTP is libevent's evhttp, on the main loop: the admin side needs no
 * speed, only correctness, and evhttp bounds header size and idle time.
 * Its sockets are bound like the [server] ones (listener.h), before the
 * privilege drop, so a unix socket in a root-owned directory works.
 */
#ifndef WSR_ADMIN_H
#define WSR_ADMIN_H

#include <stdbool.h>

#include "config.h"

struct event_base;
struct admin;
struct admin_pending;

struct route_table;

/* What admin asks main.c (with arg). */
struct admin_ops {
	/* Whether the daemon is ready to serve new connections; else why not. */
	bool			 (*ready)(void *arg, const char **why);
	/* The route table new connections get (for /metrics). */
	const struct route_table *(*routes)(void *arg);
};

/* The admin server (no socket yet); NULL when out of memory. */
struct admin	*admin_new(struct event_base *base, const struct admin_ops *ops, void *arg);
void		 admin_free(struct admin *a);

/*
 * Two steps, so that a reload that fails later changes nothing: binds the
 * listen lines of cfg's [admin] that a is not serving yet (matched as
 * written, like [server] listen), into *pending; -1 with a malloc'd *cause
 * when one cannot be bound (nothing stays bound then). admin_commit serves
 * the new ones and closes the lines cfg no longer has; admin_abort closes
 * the new ones. admin_commit frees pending.
 */
int		 admin_prepare(struct admin *a, const struct config *cfg,
		    struct admin_pending **pending, char **cause);
void		 admin_commit(struct admin *a, struct admin_pending *pending);
void		 admin_abort(struct admin_pending *pending);

#endif
