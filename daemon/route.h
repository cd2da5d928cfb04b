/*
 * route.h — PURE. The route table: request path → route (config + handler
 * instance). Exact match on the path; the query string is ignored for
 * matching and kept for the handler. Routes are refcounted so that a
 * config reload can swap tables while open connections keep theirs.
 */
#ifndef WSR_ROUTE_H
#define WSR_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "frame.h"

struct wsr_timer;

/*
 * One loop's instance of a WSR_HANDLER_PER_LOOP handler (workers > 1): made
 * on the thread that binds the table, then used and destroyed only by that
 * loop's thread (handler.c).
 */
struct route_loop {
	void			*instance;
	struct wsr_timer	*pending;	/* started in create(), armed by the loop */
	bool			 destroyed;
};

struct route {
	const struct config_route *conf;	/* owned by the table's config */
	const struct wsr_handler  *handler;	/* vtable */
	void			  *instance;	/* handler's per-route state */
	struct route_loop	  *loops;	/* per-loop instances [table->nloops], or
						   NULL: instance serves every loop */
	void			  *dl;		/* plugin: dlopen handle, else NULL */
	struct route_table	  *table;	/* back pointer for refcounting */
	/* The frame limits of conf, once per route rather than per connection. */
	struct ws_limits	   wsl;
};

struct route_table {
	struct config	*cfg;		/* owned */
	struct route	*routes;	/* sorted by path for bsearch */
	size_t		 nroutes;
	unsigned	 refs;		/* 1 per loop + 1 per open connection; atomic */
	unsigned	 nloops;	/* loops the instances were made for */
	/*
	 * With per-loop instances: per loop, its own references (the loop's
	 * and its connections'), each counted by that loop's thread only.
	 * NULL otherwise.
	 */
	unsigned	*loop_users;
};

/*
 * Builds a table for cfg (takes ownership of cfg); handlers are bound later.
 * Returns NULL only when out of memory, and cfg then remains the caller's.
 */
struct route_table	*route_table_new(struct config *cfg);
/* Exact path lookup; path need not be NUL-terminated. NULL when no route. */
struct route		*route_lookup(struct route_table *t, const char *path, size_t len);
void			 route_table_ref(struct route_table *t);
/* Drops a reference; calls free_instances(route) for every route then frees at 0. */
void			 route_table_unref(struct route_table *t, void (*free_instances)(struct route *));

#endif
