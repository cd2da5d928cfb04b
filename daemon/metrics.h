/*
 * metrics.h — the daemon's counters and their Prometheus text exposition
 * (format 0.0.4) for the admin listener's /metrics.
 *
 * Every counter lives in a struct metrics embedded in its event loop
 * (struct loop) and is written only by that loop's thread, with
 * METRIC_ADD: a relaxed atomic load-add-store, which compiles to the same
 * plain add as `x++` on the architectures we run on (no lock prefix, no
 * fence), yet makes the scrape's relaxed loads from another thread a
 * defined read rather than a data race. A scrape may see one counter a few
 * increments ahead of another; Prometheus counters tolerate that.
 *
 * Per-route counters are keyed by the route's path, not by the route
 * table: a reload keeps a route's series going, a route new in the reload
 * gets new series, and a route removed by a reload keeps its (frozen)
 * series until the process exits, its connection gauge going down as its
 * last connections close. Entries are only ever prepended to a loop's list
 * (published with a release store) and freed with the loop, so a scrape on
 * another thread never sees one freed.
 *
 * Loops register with metrics_register (the main loop at start, worker
 * loops as they are created); /metrics sums the counters over every
 * registered loop and labels the open-connection gauge per worker.
 */
#ifndef WSR_METRICS_H
#define WSR_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct route;
struct route_table;

/* Single writer (the loop's thread), relaxed readers (the scrape). */
#define METRIC_ADD(field, n)	__atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define METRIC_SUB(field, n)	__atomic_store_n(&(field), (field) - (n), __ATOMIC_RELAXED)
#define METRIC_LOAD(field)	__atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Close codes by slot: 1000..1015 each, then 3000-3999, 4000-4999, anything else. */
#define METRICS_CLOSE_SLOTS	19
/* Ping round trips: bucket upper bounds in microseconds (metrics.c). */
#define METRICS_RTT_BUCKETS	12
/* Handshake answers: 101 400 403 404 405 426 431 500 503, anything else. */
#define METRICS_HS_SLOTS	10

/* Who ended a connection (also the access log's closed_by). */
enum closed_by {
	CLOSED_BY_NONE,		/* not decided yet */
	CLOSED_BY_SERVER,	/* our close frame or HTTP error answer came first */
	CLOSED_BY_CLIENT,	/* the peer's close frame came first */
	CLOSED_BY_ABORT,	/* no closing handshake: EOF, reset, I/O or TLS error */
	CLOSED_BY_TIMEOUT,	/* a deadline: handshake, idle or message timeout */
	CLOSED_BY_N
};

struct route_metrics {
	struct route_metrics	*next;
	char			*path;		/* the key; owned */
	uint64_t		 open;		/* gauge: upgraded connections now */
	uint64_t		 msgs_in;
	uint64_t		 msgs_out;
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	uint64_t		 close_sent[METRICS_CLOSE_SLOTS];
	uint64_t		 close_rcvd[METRICS_CLOSE_SLOTS];
	uint64_t		 closed[CLOSED_BY_N];
	uint64_t		 rtt[METRICS_RTT_BUCKETS];	/* not cumulative */
	uint64_t		 rtt_count;
	uint64_t		 rtt_sum_ms;
	uint64_t		 slow_closed;	/* broadcast receivers closed (max_queue) */
	uint64_t		 slow_skipped;	/* messages a receiver missed (overflow = skip) */
	uint64_t		 handler_errors;
};

struct metrics {
	struct metrics		*next_loop;	/* registration list (metrics.c) */
	unsigned		 worker;	/* label value, set by metrics_register */
	struct route_metrics	*routes;	/* prepend only, see above */
	/* The current route table's entries by route index (loop thread only). */
	struct route_metrics	**by_route;
	size_t			 nby_route;
	uint64_t		 accepted;
	uint64_t		 handshakes[METRICS_HS_SLOTS];
	uint64_t		 tls_ok;
	uint64_t		 tls_failed;
};

/* Adds m to the scraped loops (any thread; a mutex guards the list). */
void	metrics_register(struct metrics *m);
/* Removes m from it; then frees its entries. The loop must not run any more. */
void	metrics_unregister(struct metrics *m);

/*
 * The entry of route r of table t (t's routes array, r in it), created on
 * first use; NULL when out of memory (the connection is then not counted).
 * Loop thread only; not called per message (connections keep the pointer).
 */
struct route_metrics *metrics_route(struct metrics *m, const struct route_table *t,
	    const struct route *r);

/* Slots. */
int	metrics_close_slot(unsigned code);
int	metrics_hs_slot(int status);
void	metrics_rtt_observe(struct route_metrics *rm, uint64_t rtt_ms);

/* Daemon-wide, main thread only: configuration loads after the first. */
void	metrics_reload(bool ok, double when);
/* Wall-clock start time, for process_start_time_seconds. */
void	metrics_set_start_time(double when);

/*
 * Writes the whole exposition (every registered loop, the daemon's reload
 * counters, process_* from /proc/self) to f; every route of t (the current
 * table, may be NULL) has its series even before its first connection.
 * Returns 0, or -1 when f failed.
 */
int	metrics_render(FILE *f, const struct route_table *t);

#endif
