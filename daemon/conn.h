/*
 * conn.h — one WebSocket connection: the state machine from accept to
 * close, and the per-loop context it runs in. Only conn.c does I/O on a
 * connection; handlers see a `struct wsr_conn` through plugin.h.
 *
 * I/O model (DESIGN.md §5): one embedded event per connection; reads go into
 * the loop's shared buffer and frames are parsed in place; replies are
 * gathered into one writev per read batch and the kernel gets them first
 * (EV_WRITE is armed only when it refuses bytes); an idle connection owns
 * no buffers; one timing wheel per loop holds every deadline.
 */
#ifndef WSR_CONN_H
#define WSR_CONN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "frame.h"
#include "metrics.h"
#include "timer.h"

#define LOOP_READ_BUF	(64 * 1024)
#define LOOP_BATCH_IOV	64
/*
 * The batch's own bytes: every frame header, and small payloads copied
 * whole, so that a read's worth of small replies leaves as one contiguous
 * iovec (the kernel pays per iovec segment; a 34-byte copy costs less).
 */
#define LOOP_STAGE	16384
#define LOOP_STAGE_COPY	512	/* payloads up to this are copied, larger ones referenced */

struct wsr_conn;
struct route_table;

struct loop {
	struct event_base	*base;
	struct timer_wheel	 wheel;
	uint8_t			*rbuf;		/* shared read buffer */
	struct route_table	*routes;	/* current table (new connections) */
	uint64_t		 now;		/* cached monotonic ms */
	struct wsr_conn	*conns;		/* every live connection */
	size_t			 nconns;
	size_t			 nopen;		/* upgraded ones */
	uint64_t		 next_id;
	uint64_t		 max_connections;
	uint64_t		 handshake_timeout_ms;
	uint64_t		 proxy_protocol_timeout_ms;
	uint64_t		 max_per_ip;	/* open connections per client address; 0: no limit */
	struct peercount	*per_ip;	/* counts, while max_per_ip is set or counts remain */
	uint64_t		 linger_ms;	/* for connections without a route */
	uint64_t		 drain_window_ms; /* closes spread over this (conn_drain_*) */
	bool			 draining;	/* shutdown: no new connections */
	struct ssl_ctx_st	*tls_ctx;	/* SSL_CTX for new TLS connections (owned) */
	void			(*on_drained)(struct loop *);
	struct metrics		 metrics;	/* this loop's counters (metrics.h) */

	/* the request being upgraded (conn_upgrade), for conn_reject's access log */
	const struct hs_request	*req;
	struct wsr_conn		*req_conn;

	/* the write batch of the connection being read (see conn_send) */
	struct wsr_conn	*batch_conn;
	struct iovec		 iov[LOOP_BATCH_IOV];
	int			 niov;
	size_t			 nstage;	/* bytes of stage in use */
	uint8_t			 stage[LOOP_STAGE];

	/* workers > 1 (worker.c); with one loop: dispatch NULL, the rest unused */
	void			(*dispatch)(struct loop *, int, const struct sockaddr *,
				    socklen_t, unsigned);	/* acceptor: hand fds on */
	void			*dispatch_arg;
	size_t			 live;		/* assigned connections; __atomic (acceptor
						   +1 at dispatch, conn_release -1) */
	bool			 counted;	/* live is kept */
	pthread_mutex_t		*ip_lock;	/* per_ip is shared by every worker */
	uint64_t		 id_stride;	/* ids: ++next_id * stride + offset, */
	uint64_t		 id_offset;	/* unique across workers (handles) */
	unsigned		 index;		/* worker index (0 with one loop): per-loop
						   handler instances, handle delivery */
};

int	loop_init(struct loop *l, struct event_base *base);
void	loop_free(struct loop *l);

/* Takes ownership of an accepted, non-blocking socket. */
void	conn_accept(struct loop *l, int fd, const struct sockaddr *sa, socklen_t salen);
/* Listener options for conn_accept_opts. */
#define CONN_TLS	0x1	/* TLS handshake (l->tls_ctx) before HTTP */
#define CONN_PROXY	0x2	/* a PROXY protocol header before anything else */
#define CONN_FULL	0x4	/* the acceptor counted it past max_connections (workers) */
#define CONN_NODELAY	0x8	/* TCP_NODELAY is inherited from the listening socket */
void	conn_accept_opts(struct loop *l, int fd, const struct sockaddr *sa, socklen_t salen,
	    unsigned opts);
/*
 * Shutdown: sets l->draining first (no new connection is accepted from then
 * on), answers 503 to every connection still in its handshake and sends each
 * open one a close frame with code (1001 going away, 1012 service restart)
 * at its own point of l->drain_window_ms, evenly spread with jitter.
 * l->on_drained runs when none is left.
 */
void	conn_drain_all(struct loop *l, uint16_t code);
/*
 * After a reload to table t: the open connections whose route path t no
 * longer has are closed with 1001, spread over l->drain_window_ms likewise.
 * Returns how many were scheduled.
 */
size_t	conn_drain_removed_routes(struct loop *l, struct route_table *t);
/* Last resort at exit: drop every connection now. */
void	conn_free_all(struct loop *l);
/* The request headers kept for c: n × "name\0value\0" (exec's HTTP_* variables). */
size_t	conn_headers(const struct wsr_conn *c, const char **block);

#endif
