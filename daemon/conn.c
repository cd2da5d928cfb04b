/*
 * conn.c — the connection state machine (see conn.h for the I/O model).
 *
 *   HANDSHAKE --101--> OPEN --close sent or received--> LINGER --EOF/deadline--> freed
 *       \--4xx/5xx------------------------------------/
 *
 * Closing: once our close frame (or an HTTP error answer) has left, we
 * shut down our write side and read and discard until the peer's EOF or the
 * close_timeout deadline ("lingering close"), so that closing with unread
 * input never turns into a RST that destroys the close frame in flight.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include <jansson.h>

#include <wsrouted/plugin.h>

#include "accesslog.h"
#include "conn.h"
#include "devconsole.h"
#include "forwarded.h"
#include "proxyproto.h"
#include "handler.h"
#include "handshake.h"
#include "log.h"
#include "peercount.h"
#include "route.h"
#include "tls.h"
#include "tlsrec.h"
#include "utf8.h"

enum conn_state {
	ST_HANDSHAKE,
	ST_OPEN,
	ST_LINGER,
};

/*
 * A close the daemon decided on in advance (c->close_at): the end of the
 * connection's lifetime, or its point of a drain window.
 */
enum close_plan {
	PLAN_NONE,
	PLAN_LIFETIME,
	PLAN_SHUTDOWN,
	PLAN_RESTART,
	PLAN_ROUTE_REMOVED,
};

static const struct {
	uint16_t	 code;
	const char	*reason;	/* in the close frame and the log */
} close_plans[] = {
	[PLAN_NONE] = { 0, NULL },
	[PLAN_LIFETIME] = { WS_CLOSE_GOING_AWAY, "connection lifetime reached" },
	[PLAN_SHUTDOWN] = { WS_CLOSE_GOING_AWAY, "server shutting down" },
	[PLAN_RESTART] = { WS_CLOSE_RESTART, "service restart" },
	[PLAN_ROUTE_REMOVED] = { WS_CLOSE_GOING_AWAY, "route removed" },
};

/*
 * The handshake's bytes that span reads, one phase after the other: the
 * PROXY header (PP_MAX bytes while pp_pending), then the HTTP request head
 * (at most HS_HEAD_MAX + one read). Freed when the phase ends.
 */
struct inbuf {
	uint32_t	len;
	uint8_t		data[];
};

/* Output the kernel refused, bookkeeping inside (idle connections have none). */
struct outbuf {
	size_t	off;		/* sent so far */
	size_t	len;		/* of data */
	size_t	cap;
	uint8_t	data[];
};

/*
 * Layout (issue 8, idle memory): every connection, idle or not, holds this
 * one calloc'd block and nothing else of ours, so its size is the idle cost
 * that is ours to cut (libevent adds its fd map entry, the kernel the
 * socket). Pointers and 64-bit fields first, then the small ones packed,
 * flags as bits; the frame limits live in the route (route->wsl), the
 * linger deadline shares its word with the ping time and the linger's
 * progress mark with the planned close time (never both needed),
 * the limits and the subprotocol are found through the route, the query
 * and a plugin's headers share one block, the request being upgraded is
 * the loop's (l->req), and what only the handshake needs is allocated only
 * while it needs it (the peer address in binary is parsed back from the
 * string when it is needed).
 * CONN_SIZE_MAX below keeps it from growing back unnoticed: raise it only
 * with a reason.
 */
struct wsr_conn {
	struct event		 ev;		/* the one event on fd */
	struct loop		*loop;
	struct wsr_conn		*next;
	struct wsr_conn		**pprev;
	struct timer_entry	 tm;		/* next deadline */
	struct route		*route;		/* holds a table reference */
	struct route_metrics	*rm;		/* the route's counters (metrics.h), or NULL */
	struct ws_parser	 parser;
	uint64_t		 id;
	uint64_t		 accepted_at;
	uint64_t		 last_rx;
	union {
		uint64_t	 next_ping;	/* ST_OPEN */
		uint64_t	 deadline;	/* ST_LINGER: linger/close deadline */
	};
	union {
		uint64_t	 msg_started;	/* ST_OPEN: when the unfinished frame/message
						   began; 0: none */
		uint64_t	 linger_since;	/* ST_LINGER: when closing began */
	};
	union {
		uint64_t	 close_at;	/* ST_OPEN: planned close (close_plan); 0: none */
		uint64_t	 linger_mark;	/* ST_LINGER: conn_acked_mark() at the deadline */
	};
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	uint64_t		 msgs_in;
	uint64_t		 msgs_out;
	struct outbuf		*out;		/* what the kernel refused; NULL: nothing */
	void			*user;
	struct inbuf		*in;		/* handshake bytes spanning reads, see inbuf */
	/*
	 * [query\0] then, for plugins, "name\0value\0" × nhdrs; after a
	 * refusal (path_kept) the request's path, for the access log.
	 */
	char			*reqdata;
	const char		*end_reason;
	union {
		SSL		*ssl;		/* NULL: plain TCP */
		struct tlsrec	*trec;		/* tls_own: our record layer (tlsrec.h) */
	};
	int			 fd;
	uint16_t		 close_code;	/* for on_close and the log */
	uint16_t		 http_status;	/* what the handshake was answered; 0: nothing */
	uint8_t			 ev_flags;	/* EV_READ | EV_WRITE (EV_PERSIST is added) */
	uint8_t			 close_plan:3;	/* enum close_plan, for close_at */
	uint8_t			 closed_by:3;	/* enum closed_by: the first cause wins */
	uint8_t			 state:2;	/* enum conn_state */
	uint8_t			 in_cb;
	uint8_t			 nhdrs;		/* ≤ HS_MAX_HEADERS */
	uint8_t			 subprotocol;	/* 1 + its index in the route's list; 0: none */
	bool			 dead:1;	/* free at the end of the callback */
	bool			 opened:1;	/* the handler saw on_open */
	bool			 paused:1;	/* reading stopped by backpressure */
	bool			 close_sent:1;
	bool			 close_rcvd:1;
	bool			 shut_pending:1; /* shutdown(SHUT_WR) once out drains */
	bool			 tls_done:1;	/* TLS handshake finished */
	bool			 tls_want_write:1; /* SSL_do_handshake/SSL_read wants EV_WRITE */
	bool			 tls_own:1;	/* TLS records are ours (trec), not OpenSSL's */
	bool			 pp_pending:1;	/* a PROXY header is expected first */
	bool			 has_handle:1;	/* registered for wsr_handle_* */
	bool			 hpaused:1;	/* reading stopped by the handler */
	bool			 ip_counted:1;	/* holds a max_connections_per_ip count */
	bool			 releasing:1;	/* conn_release began: no new handle */
	bool			 ping_out:1;	/* our last ping has not been answered */
	bool			 has_query:1;	/* reqdata starts with the query string */
	bool			 path_kept:1;	/* reqdata is a refused request's path */
	char			 peer[56];	/* resolved (trusted proxies) or direct; see conn_peer_addr */
};

/*
 * 456 B on x86-64 (a 464 B malloc chunk): 440 B before the admin and ops
 * branches added metrics, access-log and drain fields; see docs/PERFORMANCE.md.
 */
#define CONN_SIZE_MAX	456
_Static_assert(sizeof(struct wsr_conn) <= CONN_SIZE_MAX,
    "struct wsr_conn grew: every idle connection pays for it (docs/PERFORMANCE.md)");

/* The route's limits; NULL before the upgrade. */
static inline const struct limits *
conn_lim(const struct wsr_conn *c)
{
	return c->route != NULL ? &c->route->conf->limits : NULL;
}

/*
 * The handler instance c's callbacks get: the route's one instance, or with
 * per-loop instances (WSR_HANDLER_PER_LOOP, workers > 1) the one of c's loop.
 * A branch on a field beside instance, no lookup, for the common case.
 */
static inline void *
conn_instance(const struct wsr_conn *c)
{
	const struct route	*r = c->route;

	return r->loops == NULL ? r->instance : r->loops[c->loop->index].instance;
}

static void	conn_event_cb(evutil_socket_t, short, void *);
static void	conn_release(struct wsr_conn *);
static int	conn_flush(struct wsr_conn *);
static void	conn_begin_linger(struct wsr_conn *);
static void	conn_tls_readable(struct wsr_conn *);
static void	conn_on_eof(struct wsr_conn *);

/* ---- loop ------------------------------------------------------------- */

static void
conn_timer_fire(struct timer_entry *e, void *arg);

int
loop_init(struct loop *l, struct event_base *base)
{
	memset(l, 0, sizeof(*l));
	l->base = base;
	l->id_stride = 1;
	l->now = timer_now_ms();
	if ((l->rbuf = malloc(LOOP_READ_BUF)) == NULL)
		return -1;
	/* Not in the first handshake: its cost belongs to start-up. */
	if (hs_init() == -1)
		return -1;
	if (timer_wheel_init(&l->wheel, base, conn_timer_fire, l) == -1)
		return -1;
	metrics_register(&l->metrics);
	return 0;
}

void
loop_free(struct loop *l)
{
	conn_free_all(l);
	timer_wheel_free(&l->wheel);
	peercount_free(l->per_ip);
	l->per_ip = NULL;
	free(l->rbuf);
	l->rbuf = NULL;
	metrics_unregister(&l->metrics);
}

/* ---- helpers ---------------------------------------------------------- */

/* The first cause of the end is the one the access log and metrics show. */
static void
conn_closed_by(struct wsr_conn *c, enum closed_by by)
{
	if (c->closed_by == CLOSED_BY_NONE)
		c->closed_by = (uint8_t)by;
}

static void
conn_destroy(struct wsr_conn *c, const char *why)
{
	conn_closed_by(c, CLOSED_BY_ABORT);
	if (c->end_reason == NULL)
		c->end_reason = why;
	if (c->in_cb > 0)
		c->dead = true;
	else
		conn_release(c);
}

static void
conn_set_events(struct wsr_conn *c, short flags)
{
	if (flags == c->ev_flags)
		return;
	if (c->ev_flags != 0)
		event_del(&c->ev);
	c->ev_flags = (uint8_t)flags;
	if (flags == 0)
		return;
	event_assign(&c->ev, c->loop->base, c->fd, flags | EV_PERSIST, conn_event_cb, c);
	event_add(&c->ev, NULL);
}

static void
conn_update_events(struct wsr_conn *c)
{
	short	flags = 0;

	if (!c->paused && !(c->hpaused && c->state == ST_OPEN))
		flags |= EV_READ;
	if (c->out != NULL || c->tls_want_write)
		flags |= EV_WRITE;
	conn_set_events(c, flags);
}

static void
conn_schedule(struct wsr_conn *c)
{
	uint64_t	at = UINT64_MAX;

	switch (c->state) {
	case ST_HANDSHAKE:
		at = c->accepted_at + c->loop->handshake_timeout_ms;
		if (c->pp_pending && c->accepted_at + c->loop->proxy_protocol_timeout_ms < at)
			at = c->accepted_at + c->loop->proxy_protocol_timeout_ms;
		break;
	case ST_OPEN:
		if (conn_lim(c)->timeout_ms > 0)
			at = c->last_rx + conn_lim(c)->timeout_ms;
		if (conn_lim(c)->ping_period_ms > 0 && c->next_ping < at)
			at = c->next_ping;
		if (conn_lim(c)->message_timeout_ms > 0 && c->msg_started != 0 &&
		    c->msg_started + conn_lim(c)->message_timeout_ms < at)
			at = c->msg_started + conn_lim(c)->message_timeout_ms;
		if (c->close_at != 0 && c->close_at < at)
			at = c->close_at;
		break;
	case ST_LINGER:
		at = c->deadline;
		break;
	}
	if (at == UINT64_MAX)
		timer_cancel(&c->loop->wheel, &c->tm);
	else
		timer_schedule(&c->loop->wheel, &c->tm, at);
}

/* Appends bytes to what the kernel has yet to take. */
static int
out_append(struct wsr_conn *c, const void *p, size_t n)
{
	struct outbuf	*o = c->out;
	size_t		 need, cap;

	if (n == 0)
		return 0;
	if (o != NULL && o->off > 0) {
		/* Compact before growing (and drop what was sent). */
		memmove(o->data, o->data + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	need = (o != NULL ? o->len : 0) + n;
	if (o == NULL || need > o->cap) {
		cap = o != NULL ? o->cap * 2 : 4096 - sizeof(*o);
		while (cap < need)
			cap *= 2;
		if ((o = realloc(o, sizeof(*o) + cap)) == NULL)
			return -1;
		if (c->out == NULL)
			o->off = o->len = 0;
		o->cap = cap;
		c->out = o;
	}
	memcpy(o->data + o->len, p, n);
	o->len += n;
	return 0;
}

static size_t
out_pending(const struct wsr_conn *c)
{
	return c->out != NULL ? c->out->len - c->out->off : 0;
}

static void
out_release(struct wsr_conn *c)
{
	free(c->out);
	c->out = NULL;
}

/* Backpressure: stop reading past the high-water mark, resume below half. */
static void
conn_check_backpressure(struct wsr_conn *c)
{
	uint64_t	hw = conn_lim(c) != NULL ? conn_lim(c)->max_output_buffer : 65536;

	if (!c->paused && out_pending(c) > hw) {
		c->paused = true;
		log_debug("conn=%llu event=paused queued=%zu",
		    (unsigned long long)c->id, out_pending(c));
	} else if (c->paused && out_pending(c) <= hw / 2) {
		c->paused = false;
		log_debug("conn=%llu event=resumed", (unsigned long long)c->id);
	}
}

/* TLS under conn_writev: -1 with errno EAGAIN when nothing could go. */
static ssize_t
conn_tls_writev(struct wsr_conn *c, struct iovec *iov, int niov)
{
	enum tls_want	want;
	ssize_t		n;
	bool		want_write;

	if (c->tls_own) {
		n = tlsrec_writev(c->trec, c->fd, iov, niov, &want_write);
		want = want_write ? TLS_WANT_WRITE : TLS_OK;
	} else
		n = tls_writev(c->ssl, iov, niov, &want);
	if (n < 0)
		errno = EPIPE;
	else if (n == 0 && want != TLS_OK) {
		errno = EAGAIN;
		n = -1;
	}
	return n;
}

/* close_notify, once the handshake is done, by whoever runs the records. */
static void
conn_tls_close_notify(struct wsr_conn *c)
{
	if (c->ssl == NULL || !c->tls_done)
		return;
	if (c->tls_own)
		tlsrec_alert(c->trec, c->fd, 1, 0);
	else
		tls_close_notify(c->ssl);
}

/* Our side is done: close_notify first on TLS, then the FIN. */
static void
conn_shut_wr(struct wsr_conn *c)
{
	conn_tls_close_notify(c);
	shutdown(c->fd, SHUT_WR);
}

/*
 * Write first: hand the kernel what it takes now and keep only the rest.
 * Returns -1 when the connection is dead.
 */
static int
conn_writev(struct wsr_conn *c, struct iovec *iov, int niov)
{
	struct msghdr	msg;
	ssize_t		n;
	size_t		total = 0, skip;
	int		i;

	if (c->dead)
		return -1;
	for (i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (total == 0)
		return 0;
	n = 0;
	if (out_pending(c) == 0) {
		if (c->ssl != NULL)
			n = conn_tls_writev(c, iov, niov);
		else if (niov == 1) {
			/*
			 * A read's replies are staged contiguously, so this is
			 * the common case; send() skips sendmsg's copy-in and
			 * import of the msghdr and iovec array.
			 */
			n = send(c->fd, iov[0].iov_base, iov[0].iov_len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			memset(&msg, 0, sizeof(msg));
			msg.msg_iov = iov;
			msg.msg_iovlen = niov;
			n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				conn_destroy(c, errno == EPIPE || errno == ECONNRESET ?
				    "peer reset" : "write error");
				return -1;
			}
			n = 0;
		}
		c->bytes_out += n;
		if (c->rm != NULL)
			METRIC_ADD(c->rm->bytes_out, (uint64_t)n);
		if ((size_t)n == total)
			return 0;
	}
	skip = n;
	for (i = 0; i < niov; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		if (out_append(c, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip) == -1) {
			conn_destroy(c, "out of memory");
			return -1;
		}
		skip = 0;
	}
	conn_check_backpressure(c);
	conn_update_events(c);
	return 0;
}

static int
conn_write(struct wsr_conn *c, const void *p, size_t n)
{
	struct iovec	iov = { (void *)p, n };

	return conn_writev(c, &iov, 1);
}

/* Sends the batch gathered for c during a read. */
static int
conn_flush(struct wsr_conn *c)
{
	struct loop	*l = c->loop;
	int		 rv = 0;

	if (l->batch_conn == c && l->niov > 0) {
		rv = conn_writev(c, l->iov, l->niov);
		l->niov = 0;
		l->nstage = 0;
	}
	return rv;
}

/*
 * Queues one frame. While c's read batch is open, a frame joins it: its
 * header and a small payload (any source) are copied into the loop's stage,
 * a larger payload in the read buffer is referenced (it stays valid until
 * the batch is flushed). Any other frame is written at once, behind the
 * batch. So a caller's data is never referenced after this returns.
 */
static int
conn_send_frame(struct wsr_conn *c, uint8_t opcode, const void *data, size_t len)
{
	struct loop	*l = c->loop;
	struct iovec	 iov[2], *last;
	uint8_t		 hdr[WS_MAX_HEADER + LOOP_STAGE_COPY], *h;
	size_t		 hlen, seg;
	bool		 copy = len <= LOOP_STAGE_COPY;

	if (c->dead)
		return -1;
	/*
	 * Only the read buffer outlives the handler's call until the batch
	 * is flushed; a larger payload from anywhere else (the handler's
	 * memory, a reassembled message) is written now, behind the batch.
	 */
	if (l->batch_conn != c || (!copy && ((const uint8_t *)data < l->rbuf ||
	    (const uint8_t *)data + len > l->rbuf + LOOP_READ_BUF))) {
		if (l->batch_conn == c && conn_flush(c) == -1)
			return -1;
		hlen = ws_frame_header(hdr, true, opcode, len, NULL);
		if (copy) {
			/*
			 * Pings, closes, a broadcast's copy to each member: a
			 * small frame is one buffer, so one send() rather than
			 * a sendmsg of two iovecs (the kernel imports and
			 * copies per iovec).
			 */
			if (len > 0)
				memcpy(hdr + hlen, data, len);
			return conn_write(c, hdr, hlen + len);
		}
		iov[0].iov_base = hdr;
		iov[0].iov_len = hlen;
		iov[1].iov_base = (void *)data;
		iov[1].iov_len = len;
		return conn_writev(c, iov, 2);
	}
	if ((l->niov + 2 > LOOP_BATCH_IOV ||
	    l->nstage + WS_MAX_HEADER + (copy ? len : 0) > LOOP_STAGE) && conn_flush(c) == -1)
		return -1;
	h = l->stage + l->nstage;
	seg = hlen = ws_frame_header(h, true, opcode, len, NULL);
	if (copy && len > 0) {
		memcpy(h + hlen, data, len);
		seg += len;
	}
	l->nstage += seg;
	/* Contiguous with the previous segment of the stage: one iovec. */
	last = l->niov > 0 ? &l->iov[l->niov - 1] : NULL;
	if (last != NULL && (uint8_t *)last->iov_base + last->iov_len == h)
		last->iov_len += seg;
	else {
		l->iov[l->niov].iov_base = h;
		l->iov[l->niov++].iov_len = seg;
	}
	if (!copy) {
		l->iov[l->niov].iov_base = (void *)data;
		l->iov[l->niov++].iov_len = len;
	}
	return 0;
}

/*
 * Moves whenever the peer takes our bytes: what we handed the kernel less
 * what it still holds unacknowledged (SIOCOUTQ). Our own queue alone would
 * not do: with a large send buffer the kernel only asks us for more once
 * the peer has read a third of it, which can take longer than close_timeout
 * for a peer that reads all the time. Only compared for a change (under TLS
 * the two counts are in different units).
 */
static uint64_t
conn_acked_mark(const struct wsr_conn *c, int *unacked)
{
	if (ioctl(c->fd, SIOCOUTQ, unacked) == -1 || *unacked < 0)
		*unacked = 0;
	return c->bytes_out - (uint64_t)*unacked;
}

/* How long a linger waits: the route's close_timeout after our Close, else the server's. */
static uint64_t
conn_linger_ms(const struct wsr_conn *c)
{
	return c->close_sent ? conn_lim(c)->close_timeout_ms : c->loop->linger_ms;
}

/*
 * The next linger deadline from now: close_timeout on, but never past
 * close_linger_max after closing began (the route's, else the server's).
 */
static uint64_t
conn_linger_deadline(const struct wsr_conn *c, uint64_t now)
{
	const struct limits	*lim = c->route != NULL ? conn_lim(c) :
				    c->loop->routes != NULL ? &c->loop->routes->cfg->limits : NULL;
	uint64_t		 at = now + conn_linger_ms(c);

	if (lim != NULL && lim->close_linger_max_ms > 0 &&
	    at > c->linger_since + lim->close_linger_max_ms)
		at = c->linger_since + lim->close_linger_max_ms;
	return at;
}

/*
 * Makes the coming close() a reset that drops what the kernel still holds
 * for the peer. A plain close would leave an orphaned socket delivering it
 * (up to the send buffer, megabytes with autotuning) for as long as the
 * peer keeps reading, however slowly: kernel memory outside
 * max_connections, which is what the linger limits are there to bound.
 */
static void
conn_abort_on_close(struct wsr_conn *c)
{
	struct linger	lg = { 1, 0 };

	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* After our close frame or HTTP answer: FIN our side, drain theirs. */
static void
conn_begin_linger(struct wsr_conn *c)
{
	int	unacked;

	c->state = ST_LINGER;
	c->linger_since = c->loop->now;
	c->deadline = conn_linger_deadline(c, c->loop->now);
	c->linger_mark = conn_acked_mark(c, &unacked);
	c->paused = false;
	if (out_pending(c) > 0)
		c->shut_pending = true;
	else
		conn_shut_wr(c);
	conn_update_events(c);
	conn_schedule(c);
}

/* Sends a close frame (code 0: empty payload) and starts lingering. */
static void
conn_send_close(struct wsr_conn *c, uint16_t code, const char *reason)
{
	uint8_t	payload[WS_MAX_CONTROL];
	size_t	n;

	if (c->state != ST_OPEN || c->close_sent)
		return;
	n = ws_close_build(payload, code, reason);
	c->close_sent = true;
	if (!c->close_rcvd)
		c->close_code = code ? code : WS_CLOSE_NO_STATUS;
	conn_closed_by(c, c->close_rcvd ? CLOSED_BY_CLIENT : CLOSED_BY_SERVER);
	if (c->rm != NULL)
		METRIC_ADD(c->rm->close_sent[metrics_close_slot(code ? code : WS_CLOSE_NO_STATUS)], 1);
	if (conn_send_frame(c, WS_OP_CLOSE, payload, n) == -1 || conn_flush(c) == -1)
		return;
	/*
	 * Their Close came first and all of ours is with the kernel: the
	 * closing handshake is complete, so close now rather than linger
	 * (RFC 6455 7.1.1: the server closes the TCP connection first). The
	 * kernel still delivers our Close, then a FIN; a conforming peer sends
	 * nothing after its Close, so nothing unread turns the close into a
	 * reset. Saves the shutdown, the read of their FIN and the linger's
	 * ioctl: three syscalls of about a dozen per short connection.
	 */
	if (c->close_rcvd && out_pending(c) == 0) {
		conn_tls_close_notify(c);
		conn_destroy(c, "closed");
		return;
	}
	conn_begin_linger(c);
}

static void
conn_fail(struct wsr_conn *c, uint16_t code, const char *why)
{
	log_info("conn=%llu peer=%s event=protocol_error code=%u reason=\"%s\"",
	    (unsigned long long)c->id, c->peer, code, why);
	c->end_reason = why;
	conn_send_close(c, code, why);
}

/*
 * Plans c's close for `at`; the earlier plan wins (a connection whose
 * lifetime ends before its point of a drain window keeps that). The caller
 * reschedules c.
 */
static void
conn_plan_close(struct wsr_conn *c, uint64_t at, enum close_plan why)
{
	if (c->close_at != 0 && c->close_at <= at)
		return;
	c->close_at = at;
	c->close_plan = why;
}

static void
conn_planned_close(struct wsr_conn *c)
{
	const char	*reason = close_plans[c->close_plan].reason;

	log_debug("conn=%llu peer=%s event=planned_close code=%u reason=\"%s\"",
	    (unsigned long long)c->id, c->peer, close_plans[c->close_plan].code, reason);
	c->end_reason = reason;
	conn_send_close(c, close_plans[c->close_plan].code, reason);
}

/*
 * The i-th of n points spread over [start, start + window): n even slots,
 * each point at a random place of its own slot. The close rate is flat over
 * the whole window (n independent random draws would bunch), the first
 * close comes near the start and the last near the end, and no two peers
 * are closed in lockstep. window is at most DURATION_MAX_MS (< 2^32).
 */
static uint64_t
spread_point(uint64_t start, uint64_t window, size_t i, size_t n)
{
	return start + ((uint64_t)i * window + arc4random_uniform((uint32_t)window)) / n;
}

/* ---- handshake -------------------------------------------------------- */

static void
conn_reject(struct wsr_conn *c, int status, const char *detail)
{
	char	resp[512], *path;
	size_t	n;

	log_info("conn=%llu peer=%s event=rejected status=%d reason=\"%s\"",
	    (unsigned long long)c->id, c->peer, status, detail != NULL ? detail : "");
	METRIC_ADD(c->loop->metrics.handshakes[metrics_hs_slot(status)], 1);
	c->http_status = (uint16_t)status;
	conn_closed_by(c, CLOSED_BY_SERVER);
	/* Only for the access log: the request head is gone by the time it is written. */
	if (c->loop->req_conn == c && !c->path_kept && accesslog_enabled() &&
	    (path = strndup(c->loop->req->path.p, c->loop->req->path.len < ACCESSLOG_FIELD_MAX ?
	    c->loop->req->path.len : ACCESSLOG_FIELD_MAX)) != NULL) {
		/* A refused connection never reaches its handler again: reqdata is free. */
		free(c->reqdata);
		c->reqdata = path;
		c->has_query = false;
		c->nhdrs = 0;
		c->path_kept = true;
	}
	n = hs_build_error(resp, sizeof(resp), status, detail);
	free(c->in);
	c->in = NULL;
	c->end_reason = "rejected";
	if (n == 0) {
		conn_destroy(c, "cannot build the error answer");
		return;
	}
	if (conn_write(c, resp, n) == -1)
		return;
	conn_begin_linger(c);
}

static void conn_frames_input(struct wsr_conn *, uint8_t *, size_t);

/*
 * The address in c->peer, in binary, for the trusted_proxies check; returns
 * its family, or 0 (unix socket). Parsed back from the string rather than
 * kept beside it: it is needed once, during the handshake, and 17 bytes per
 * connection would outlive it. Until conn_resolve_peer has run, c->peer is
 * the direct peer or the PROXY header's source, as the check requires.
 */
static int
conn_peer_addr(const struct wsr_conn *c, uint8_t addr[16])
{
	char		 tmp[sizeof(c->peer)];
	const char	*end;
	size_t		 n;

	if (c->peer[0] == '[') {
		if ((end = strchr(c->peer, ']')) == NULL)
			return 0;
		n = end - c->peer - 1;
		memcpy(tmp, c->peer + 1, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET6, tmp, addr) == 1 ? AF_INET6 : 0;
	}
	if ((end = strrchr(c->peer, ':')) == NULL)
		return 0;
	n = end - c->peer;
	memcpy(tmp, c->peer, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET, tmp, addr) == 1 ? AF_INET : 0;
}

/* Whether an accepted socket's peer is in trusted_proxies. */
static bool
conn_trusted_sa(const struct loop *l, const struct sockaddr *sa)
{
	const struct config	*cfg = l->routes->cfg;

	if (sa->sa_family == AF_INET)
		return config_cidr_match(cfg->trusted_proxies, cfg->ntrusted_proxies, AF_INET,
		    (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return config_cidr_match(cfg->trusted_proxies, cfg->ntrusted_proxies, AF_INET6,
		    (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

/*
 * Behind a trusted proxy the client is the one its headers name (see
 * forwarded.h); from anyone else those headers mean nothing. c->peer is
 * what logs and handlers (wsr_conn_peer) see from here on.
 */
static void
conn_resolve_peer(struct wsr_conn *c, const struct hs_request *req)
{
	const struct config	*cfg = c->loop->routes->cfg;
	struct fwd_result	 fr;
	char			 direct[sizeof(c->peer)];

	uint8_t			 addr[16];
	int			 family;

	if (cfg->ntrusted_proxies == 0 || (family = conn_peer_addr(c, addr)) == 0 ||
	    !config_cidr_match(cfg->trusted_proxies, cfg->ntrusted_proxies, family, addr))
		return;
	if (!fwd_resolve(req, cfg->trusted_proxies, cfg->ntrusted_proxies, &fr))
		return;
	memcpy(direct, c->peer, sizeof(direct));
	snprintf(c->peer, sizeof(c->peer), "%s", fr.addr);
	log_info("conn=%llu peer=%s event=forwarded proxy=%s source=%s proto=%s",
	    (unsigned long long)c->id, c->peer, direct, fr.source,
	    fr.proto[0] != '\0' ? fr.proto : "-");
}

/*
 * What handlers may ask for after the upgrade, in one block: the query
 * string (NUL-terminated) when there is one, then, when `headers` (plugin
 * and exec routes), the request headers as nhdrs × "name\0value\0".
 */
static int
conn_keep_request(struct wsr_conn *c, const struct hs_request *req, bool headers)
{
	size_t	 i, need = 0;
	char	*p;

	if (req->query.p != NULL)
		need += req->query.len + 1;
	for (i = 0; headers && i < req->nheaders; i++)
		need += req->headers[i].name.len + req->headers[i].value.len + 2;
	if (need == 0)
		return 0;
	if ((c->reqdata = p = malloc(need)) == NULL)
		return -1;
	if (req->query.p != NULL) {
		memcpy(p, req->query.p, req->query.len);
		p += req->query.len;
		*p++ = '\0';
		c->has_query = true;
	}
	for (i = 0; headers && i < req->nheaders; i++) {
		memcpy(p, req->headers[i].name.p, req->headers[i].name.len);
		p += req->headers[i].name.len;
		*p++ = '\0';
		memcpy(p, req->headers[i].value.p, req->headers[i].value.len);
		p += req->headers[i].value.len;
		*p++ = '\0';
	}
	if (headers)
		c->nhdrs = (uint8_t)req->nheaders;
	return 0;
}

/* The headers kept by conn_keep_request, or NULL. */
static const char *
conn_hdrs(const struct wsr_conn *c)
{
	if (c->nhdrs == 0)
		return NULL;
	return c->has_query ? c->reqdata + strlen(c->reqdata) + 1 : c->reqdata;
}

/*
 * max_connections_per_ip, by the client address as resolved behind trusted
 * proxies (so a proxy's clients are counted one by one, not as the proxy).
 * Returns -1 when c was refused.
 */
static int
conn_count_peer(struct wsr_conn *c)
{
	struct loop	*l = c->loop;
	char		 key[sizeof(c->peer)];
	int		 rv;

	if (l->max_per_ip == 0)
		return 0;
	if (l->per_ip == NULL && (l->per_ip = peercount_new()) == NULL) {
		conn_reject(c, 503, "out of memory");
		return -1;
	}
	peercount_key(c->peer, key, sizeof(key));
	if (l->ip_lock != NULL)
		pthread_mutex_lock(l->ip_lock);
	rv = peercount_acquire(l->per_ip, key, l->max_per_ip);
	if (l->ip_lock != NULL)
		pthread_mutex_unlock(l->ip_lock);
	if (rv == -1) {
		conn_reject(c, 503, "too many connections from this address");
		return -1;
	}
	c->ip_counted = true;
	return 0;
}

static void
conn_upgrade(struct wsr_conn *c, const struct hs_request *req, uint8_t *rest, size_t nrest)
{
	const struct config_route	*cr;
	struct route			*r;
	char				 accept[HS_ACCEPT_LEN + 1], resp[512];
	char				 path[256];
	size_t				 n, i;
	int				 sp, st;

	conn_resolve_peer(c, req);
	if (conn_count_peer(c) == -1)
		return;
	r = route_lookup(c->loop->routes, req->path.p, req->path.len);
	if (r == NULL) {
		conn_reject(c, 404, log_escape(path, sizeof(path), req->path.p, req->path.len));
		return;
	}
	cr = r->conf;
	if (!hs_origin_allowed(req->origin, cr->origins, cr->norigins)) {
		conn_reject(c, 403, "origin not allowed");
		return;
	}
	/* Several Sec-WebSocket-Protocol lines form one list (RFC 6455 §11.3.4). */
	sp = -1;
	for (i = 0; cr->nsubprotocols > 0 && sp < 0 && i < req->nheaders; i++)
		if (req->headers[i].name.len == 22 &&
		    strncasecmp(req->headers[i].name.p, "Sec-WebSocket-Protocol", 22) == 0)
			sp = hs_select_subprotocol(req->headers[i].value, cr->subprotocols,
			    cr->nsubprotocols);
	if (conn_keep_request(c, req, r->dl != NULL || r->handler == &handler_exec) == -1) {
		conn_reject(c, 500, "out of memory");
		return;
	}
	c->route = r;
	route_table_ref(r->table);
	handler_loop_take(r->table, c->loop->index);
	c->rm = metrics_route(&c->loop->metrics, c->loop->routes, r);
	c->subprotocol = sp >= 0 ? (uint8_t)(sp + 1) : 0;
	if (conn_lim(c)->send_buffer > 0) {
		/* Bounds what the kernel holds for a slow peer (no autotuning). */
		int sndbuf = (int)conn_lim(c)->send_buffer;

		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}

	hs_accept_key(req->key.p, req->key.len, accept);
	if ((n = hs_build_101(resp, sizeof(resp), accept, wsr_conn_subprotocol(c))) == 0) {
		conn_reject(c, 500, "cannot build the 101 answer");
		return;
	}
	if (r->handler->on_open != NULL && (st = r->handler->on_open(conn_instance(c), c)) != 0) {
		/* plugin.h: 500 and 503 are answered as such, anything else as 403. */
		if (st == 500 && c->rm != NULL)
			METRIC_ADD(c->rm->handler_errors, 1);
		conn_reject(c, st == 500 || st == 503 ? st : 403, "refused by the handler");
		return;
	}
	c->opened = true;
	c->loop->nopen++;
	c->http_status = 101;
	METRIC_ADD(c->loop->metrics.handshakes[metrics_hs_slot(101)], 1);
	if (c->rm != NULL)
		METRIC_ADD(c->rm->open, 1);
	c->state = ST_OPEN;
	c->next_ping = c->loop->now + conn_lim(c)->ping_period_ms;
	if (conn_lim(c)->max_connection_lifetime_ms > 0) {
		uint64_t life = conn_lim(c)->max_connection_lifetime_ms;
		uint64_t jitter = life * CONFIG_LIFETIME_JITTER_PERCENT / 100;

		/* Within [life - jitter, life]: see CONFIG_LIFETIME_JITTER_PERCENT. */
		conn_plan_close(c, c->loop->now + life -
		    arc4random_uniform((uint32_t)jitter + 1), PLAN_LIFETIME);
	}
	log_info("conn=%llu peer=%s event=open route=%s subprotocol=%s",
	    (unsigned long long)c->id, c->peer, cr->path,
	    wsr_conn_subprotocol(c) != NULL ? wsr_conn_subprotocol(c) : "-");
	if (conn_write(c, resp, n) == -1)
		return;
	conn_schedule(c);
	/* A client may send its first frames right behind the head. */
	if (nrest > 0)
		conn_frames_input(c, rest, nrest);
}

/*
 * devconsole = yes: a plain GET (or HEAD) of the route, one that is no
 * upgrade attempt at all (no Upgrade, no Sec-WebSocket-Key: what a browser's
 * address bar sends), gets the console page instead of 426 (405 for HEAD).
 * Anything else keeps its answer. Returns false when it is not such a request.
 */
static bool
conn_devconsole(struct wsr_conn *c, const struct hs_request *req, int status)
{
	struct route	*r;
	struct iovec	 iov[2];
	char		 head[1024];
	size_t		 n;
	bool		 head_only;

	if (status != 426 && status != 405)
		return false;
	head_only = http_str_eq(req->method, "HEAD");
	if (!head_only && !http_str_eq(req->method, "GET"))
		return false;
	if (hs_request_header(req, "Upgrade") != NULL ||
	    hs_request_header(req, "Sec-WebSocket-Key") != NULL)
		return false;
	r = route_lookup(c->loop->routes, req->path.p, req->path.len);
	if (r == NULL || !r->conf->devconsole)
		return false;
	conn_resolve_peer(c, req);
	if ((n = devconsole_head(head, sizeof(head))) == 0) {
		conn_reject(c, 500, "cannot build the dev console page");
		return true;
	}
	log_info("conn=%llu peer=%s event=devconsole route=%s method=%s",
	    (unsigned long long)c->id, c->peer, r->conf->path, head_only ? "HEAD" : "GET");
	iov[0].iov_base = head;
	iov[0].iov_len = n;
	iov[1].iov_base = (void *)devconsole_body(&iov[1].iov_len);
	free(c->in);
	c->in = NULL;
	c->end_reason = "dev console page served";
	if (conn_writev(c, iov, head_only ? 1 : 2) == -1)
		return true;
	conn_begin_linger(c);
	return true;
}

static void
conn_handshake_input(struct wsr_conn *c, uint8_t *buf, size_t n)
{
	struct hs_request	 req;
	struct inbuf		*grown;
	char			*head;
	size_t			 len;
	ssize_t			 end;
	int			 status;

	/* Reached the HTTP stage after the drain began (TLS, PROXY): a clean no. */
	if (c->loop->draining) {
		conn_reject(c, 503, "server shutting down");
		return;
	}
	/* A TLS ClientHello on a plain listener will never end a head: say so now. */
	if (c->in == NULL && n > 0 && buf[0] == 0x16) {
		conn_reject(c, 400, "TLS handshake on a plain-text listener");
		return;
	}
	if (c->in != NULL) {
		if ((grown = realloc(c->in, sizeof(*grown) + c->in->len + n)) == NULL) {
			conn_destroy(c, "out of memory");
			return;
		}
		memcpy(grown->data + grown->len, buf, n);
		c->in = grown;
		c->in->len += n;
		head = (char *)c->in->data;
		len = c->in->len;
	} else {
		head = (char *)buf;
		len = n;
	}
	end = hs_head_end(head, len);
	if (end < 0) {
		conn_reject(c, 431, "request head larger than 8 KiB");
		return;
	}
	if (end == 0) {
		if (c->in == NULL) {
			/* The head spans reads: keep it (at most 8 KiB + one read). */
			if ((c->in = malloc(sizeof(*c->in) + n)) == NULL) {
				conn_destroy(c, "out of memory");
				return;
			}
			memcpy(c->in->data, buf, n);
			c->in->len = n;
		}
		return;
	}
	if ((status = hs_request_parse(head, end, &req)) != 0) {
		if (!conn_devconsole(c, &req, status))
			conn_reject(c, status, req.error);
		return;
	}
	c->loop->req = &req;
	c->loop->req_conn = c;
	conn_upgrade(c, &req, (uint8_t *)head + end, len - end);
	c->loop->req = NULL;
	c->loop->req_conn = NULL;
	if (c->in != NULL && !c->dead) {
		free(c->in);
		c->in = NULL;
	}
}

/* ---- frames ------------------------------------------------------------ */

/*
 * The route's `content` rule; on a violation closes c (1003 for a message
 * type the route does not take, 1007 for text that is not JSON) and returns
 * false. JSON is checked with jansson, Debian's JSON library: any value at
 * the top level, the whole message, nothing after it.
 */
static bool
conn_content_ok(struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	json_error_t	 err;
	json_t		*j;

	switch (c->route->conf->content) {
	case CONTENT_TEXT:
	case CONTENT_JSON:
		if (opcode != WS_OP_TEXT) {
			conn_fail(c, WS_CLOSE_UNSUPPORTED, "binary messages not accepted");
			return false;
		}
		break;
	case CONTENT_BINARY:
		if (opcode != WS_OP_BINARY) {
			conn_fail(c, WS_CLOSE_UNSUPPORTED, "text messages not accepted");
			return false;
		}
		return true;
	case CONTENT_ANY:
	default:
		return true;
	}
	if (c->route->conf->content != CONTENT_JSON)
		return true;
	if ((j = json_loadb(data, len, JSON_DECODE_ANY, &err)) == NULL) {
		log_debug("conn=%llu event=invalid_json position=%d error=\"%s\"",
		    (unsigned long long)c->id, err.position, err.text);
		conn_fail(c, WS_CLOSE_INVALID_DATA, "message is not JSON");
		return false;
	}
	json_decref(j);
	return true;
}

/*
 * A pong answering our last ping (its payload is the ping's: our clock in
 * ms when we sent it) gives one round-trip time. Unsolicited pongs, and
 * repeats, are ignored.
 */
static void
conn_pong(struct wsr_conn *c, const struct ws_event *ev)
{
	const uint8_t	*p = ev->data;
	uint64_t	 sent = 0;
	int		 i;

	if (!c->ping_out || ev->len != 8 || c->rm == NULL)
		return;
	for (i = 0; i < 8; i++)
		sent = (sent << 8) | p[i];
	if (sent != c->next_ping - conn_lim(c)->ping_period_ms || sent > c->loop->now)
		return;
	c->ping_out = false;
	metrics_rtt_observe(c->rm, c->loop->now - sent);
}

/*
 * The built-in echo's messages, answered without the handler: what
 * echo_on_message would send, built by the codec in place in buf (the
 * payload unmasked straight into its reply, one segment for the whole run)
 * and referenced by the batch, which is flushed before buf is reused. This
 * is the benchmark path: a third of the instructions per message of the
 * general one (PERFORMANCE.md). Returns -1 when the connection failed.
 */
static int
conn_echo_run(struct wsr_conn *c, uint8_t *buf, size_t len, size_t *off)
{
	struct loop		*l = c->loop;
	struct ws_echo_run	 run;
	struct ws_event		 ev;
	enum ws_event_type	 t;

	t = ws_parser_echo(&c->parser, &c->route->wsl, buf, len, off, &run, &ev);
	if (run.frames > 0) {
		c->msgs_in += run.frames;
		c->msgs_out += run.frames;
		if (c->rm != NULL) {
			METRIC_ADD(c->rm->msgs_in, run.frames);
			METRIC_ADD(c->rm->msgs_out, run.frames);
		}
		if (l->niov + 1 > LOOP_BATCH_IOV && conn_flush(c) == -1)
			return -1;
		l->iov[l->niov].iov_base = buf + run.start;
		l->iov[l->niov++].iov_len = run.end - run.start;
	}
	if (t == WS_EV_ERROR) {
		/* A text message that is not UTF-8: the frames before it go first. */
		conn_fail(c, ev.code, ev.error);
		return -1;
	}
	return 0;
}

static void
conn_frames_input(struct wsr_conn *c, uint8_t *buf, size_t len)
{
	struct loop		*l = c->loop;
	struct route		*r = c->route;
	void			*inst = conn_instance(c);	/* once per read, not per message */
	struct ws_event		 ev;
	enum ws_event_type	 t;
	size_t			 off = 0;
	bool			 echo_in_place = r->handler == &handler_echo &&
				    r->conf->content == CONTENT_ANY;

	l->batch_conn = c;
	l->niov = 0;
	l->nstage = 0;
	while (c->state == ST_OPEN && !c->dead) {
		/* (Our Close moves c to ST_LINGER: nothing is echoed after it.) */
		if (echo_in_place) {
			if (conn_echo_run(c, buf, len, &off) == -1)
				break;
			if (off == len && !ws_parser_busy(&c->parser))
				break;		/* all taken: ws_parser_next has nothing to say */
		}
		if ((t = ws_parser_next(&c->parser, &r->wsl, buf, len, &off, &ev)) == WS_EV_NONE)
			break;
		switch (t) {
		case WS_EV_MESSAGE:
			c->msgs_in++;
			if (c->rm != NULL)
				METRIC_ADD(c->rm->msgs_in, 1);
			c->msg_started = 0;	/* the next one has its own deadline */
			if (r->conf->content != CONTENT_ANY &&
			    !conn_content_ok(c, ev.opcode, ev.data, ev.len))
				break;
			if (r->handler->on_message != NULL)
				r->handler->on_message(inst, c, ev.opcode, ev.data, ev.len);
			break;
		case WS_EV_PING:
			conn_send_frame(c, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_PONG:
			conn_pong(c, &ev);
			break;
		case WS_EV_CLOSE:
			c->close_rcvd = true;
			c->close_code = ev.code;
			if (c->rm != NULL)
				METRIC_ADD(c->rm->close_rcvd[metrics_close_slot(ev.code)], 1);
			/* Echo the peer's code; a close without one gets an empty one. */
			conn_send_close(c, ev.code == WS_CLOSE_NO_STATUS ? 0 : ev.code, NULL);
			break;
		case WS_EV_ERROR:
			conn_fail(c, ev.code, ev.error);
			break;
		default:
			break;
		}
	}
	if (!c->dead)
		conn_flush(c);
	l->batch_conn = NULL;
	l->niov = 0;
	l->nstage = 0;
	/*
	 * A message (or frame) left unfinished starts the assembly deadline; any
	 * byte resets the idle timeout, so without it a peer trickling one
	 * fragment a minute could pin a partial message forever.
	 */
	if (!c->dead && c->state == ST_OPEN) {
		if (!ws_parser_busy(&c->parser))
			c->msg_started = 0;
		else if (c->msg_started == 0) {
			c->msg_started = l->now;
			if (conn_lim(c)->message_timeout_ms > 0)
				conn_schedule(c);
		}
	}
}

/* ---- events ------------------------------------------------------------ */

/* The handler's on_drain: its chance to refill an emptied output queue. */
static void
conn_drained(struct wsr_conn *c)
{
	struct route	*r = c->route;

	if (c->state == ST_OPEN && c->opened && !c->close_sent && !c->dead &&
	    r->handler->on_drain != NULL)
		r->handler->on_drain(conn_instance(c), c);
}

static void
conn_on_writable(struct wsr_conn *c)
{
	struct iovec	iov;
	ssize_t		n;

	if (c->tls_want_write) {
		/* The TLS layer, not our output, wanted the socket writable. */
		c->tls_want_write = false;
		conn_tls_readable(c);
		if (c->dead)
			return;
	}
	while (out_pending(c) > 0) {
		if (c->ssl != NULL) {
			iov.iov_base = c->out->data + c->out->off;
			iov.iov_len = out_pending(c);
			n = conn_tls_writev(c, &iov, 1);
		} else
			n = send(c->fd, c->out->data + c->out->off, out_pending(c),
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			conn_destroy(c, "peer reset");
			return;
		}
		c->out->off += n;
		c->bytes_out += n;
		if (c->rm != NULL)
			METRIC_ADD(c->rm->bytes_out, (uint64_t)n);
	}
	if (out_pending(c) == 0) {
		out_release(c);
		if (c->shut_pending) {
			c->shut_pending = false;
			conn_shut_wr(c);
		}
		conn_drained(c);
	}
	conn_check_backpressure(c);
	conn_update_events(c);
}

static void
conn_on_eof(struct wsr_conn *c)
{
	if (c->state == ST_OPEN && !c->close_rcvd) {
		c->close_code = WS_CLOSE_ABNORMAL;
		conn_destroy(c, "peer closed without a close frame");
	} else if (c->state == ST_HANDSHAKE)
		conn_destroy(c, "peer closed during the handshake");
	else
		conn_destroy(c, c->end_reason != NULL ? c->end_reason : "closed");
}

/* What was read (plain or decrypted), by state. */
static void
conn_input(struct wsr_conn *c, uint8_t *buf, size_t n)
{
	c->bytes_in += n;
	if (c->rm != NULL)
		METRIC_ADD(c->rm->bytes_in, n);
	c->last_rx = c->loop->now;
	switch (c->state) {
	case ST_HANDSHAKE:
		conn_handshake_input(c, buf, n);
		break;
	case ST_OPEN:
		conn_frames_input(c, buf, n);
		break;
	case ST_LINGER:
		break;		/* discarded: we are closing */
	}
}

/*
 * One recv into the loop's read buffer: > 0 bytes read; 0 when there is
 * nothing to do (EAGAIN) or the connection ended (EOF, error: handled here).
 */
static ssize_t
conn_recv(struct wsr_conn *c)
{
	ssize_t	n = recv(c->fd, c->loop->rbuf, LOOP_READ_BUF, 0);

	if (n > 0)
		return n;
	if (n == 0)
		conn_on_eof(c);
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		conn_destroy(c, errno == ECONNRESET ? "peer reset" : "read error");
	return 0;
}

/*
 * The handshake is done: a TLS 1.3 connection leaves OpenSSL for our record
 * layer (tlsrec.h), which keeps ~300 bytes where OpenSSL kept ~14 KiB.
 */
static void
conn_tls_established(struct wsr_conn *c)
{
	struct tlsrec	*r;
	const char	*version = tls_version(c->ssl), *cipher = tls_cipher(c->ssl);

	if ((r = tls_detach(c->ssl)) != NULL) {
		SSL_free(c->ssl);
		c->trec = r;
		c->tls_own = true;
	}
	log_debug("conn=%llu peer=%s event=tls_established version=%s cipher=%s records=%s",
	    (unsigned long long)c->id, c->peer, version, cipher, r != NULL ? "wsrouted" : "openssl");
}

/*
 * Our record layer's read: whole records from one recv are opened in place
 * in the loop's read buffer and handed on one by one, as SSL_read would.
 */
static void
conn_tlsrec_readable(struct wsr_conn *c)
{
	struct loop	*l = c->loop;
	uint8_t		*pt;
	size_t		 off = 0, ptlen;
	ssize_t		 n;
	int		 rv;

	/* A FIN without close_notify is an EOF, as OpenSSL is told to take it. */
	if ((n = conn_recv(c)) <= 0)
		return;
	while ((rv = tlsrec_next(c->trec, l->rbuf, (size_t)n, &off, &pt, &ptlen)) == TLSREC_DATA) {
		conn_input(c, pt, ptlen);
		if (c->dead)
			return;
	}
	if (rv == TLSREC_EOF)
		conn_on_eof(c);
	else if (rv == TLSREC_ERROR) {
		log_info("conn=%llu peer=%s event=tls_error reason=\"%s\"",
		    (unsigned long long)c->id, c->peer, c->trec->why);
		if (c->trec->alert != 0)
			tlsrec_alert(c->trec, c->fd, 2, c->trec->alert);
		conn_destroy(c, "TLS error");
	}
}

/*
 * The TLS side of conn_on_readable: the handshake first (covered by
 * handshake_timeout like the HTTP one), then SSL_read. A record is at most
 * 16 KiB and the buffer is 64 KiB, so one SSL_read takes a whole record and
 * nothing stays decrypted inside OpenSSL unseen by the event loop; the loop
 * below still drains SSL_pending() should that ever change.
 */
static void
conn_tls_readable(struct wsr_conn *c)
{
	struct loop	*l = c->loop;
	enum tls_want	 want;
	const char	*why = NULL;
	ssize_t		 n;
	int		 i;

	if (!c->tls_done) {
		switch (tls_handshake(c->ssl, &why)) {
		case TLS_OK:
			c->tls_done = true;
			METRIC_ADD(l->metrics.tls_ok, 1);
			conn_tls_established(c);
			break;
		case TLS_WANT_READ:
			conn_update_events(c);
			return;
		case TLS_WANT_WRITE:
			c->tls_want_write = true;
			conn_update_events(c);
			return;
		case TLS_EOF:
			conn_destroy(c, "peer closed during the TLS handshake");
			return;
		default:
			log_info("conn=%llu peer=%s event=tls_error reason=\"%s\"",
			    (unsigned long long)c->id, c->peer, why != NULL ? why : "");
			conn_destroy(c, "TLS handshake failed");
			return;
		}
		conn_update_events(c);
	}
	if (c->tls_own) {
		conn_tlsrec_readable(c);
		return;
	}
	for (i = 0; i < 8 && !c->dead && !c->paused; i++) {
		if ((n = tls_read(c->ssl, l->rbuf, LOOP_READ_BUF, &want, &why)) < 0) {
			switch (want) {
			case TLS_WANT_READ:
				return;
			case TLS_WANT_WRITE:
				c->tls_want_write = true;
				conn_update_events(c);
				return;
			case TLS_EOF:
				conn_on_eof(c);
				return;
			default:
				log_debug("conn=%llu peer=%s event=tls_error reason=\"%s\"",
				    (unsigned long long)c->id, c->peer, why != NULL ? why : "");
				conn_destroy(c, errno == ECONNRESET ? "peer reset" : "TLS error");
				return;
			}
		}
		conn_input(c, l->rbuf, (size_t)n);
		if (c->dead || SSL_pending(c->ssl) == 0)
			break;
	}
}

static void	format_peer(char *, size_t, const struct sockaddr *);

/*
 * The PROXY header, before TLS and HTTP. It is peeked at and only its own
 * bytes are consumed (pp_parse guarantees that NEED_MORE bytes are all
 * header), so what follows stays in the socket for OpenSSL or recv().
 */
static void
conn_pp_readable(struct wsr_conn *c)
{
	struct pp_result	 pr;
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	enum pp_status		 st;
	char			 direct[sizeof(c->peer)];
	struct inbuf		*pp;
	ssize_t			 n;
	size_t			 take;

	if (c->in == NULL) {
		if ((c->in = malloc(sizeof(*c->in) + PP_MAX)) == NULL) {
			conn_destroy(c, "out of memory");
			return;
		}
		c->in->len = 0;
	}
	pp = c->in;
	n = recv(c->fd, pp->data + pp->len, PP_MAX - pp->len, MSG_PEEK);
	if (n == 0) {
		conn_destroy(c, "peer closed before the PROXY header");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_destroy(c, errno == ECONNRESET ? "peer reset" : "read error");
		return;
	}
	st = pp_parse(pp->data, pp->len + (size_t)n, &pr);
	if (st == PP_ERROR) {
		log_info("conn=%llu peer=%s event=proxy_protocol_error reason=\"%s\"",
		    (unsigned long long)c->id, c->peer, pr.error);
		conn_destroy(c, "bad PROXY protocol header");
		return;
	}
	take = st == PP_OK ? pr.len - pp->len : (size_t)n;
	if (recv(c->fd, pp->data + pp->len, take, 0) != (ssize_t)take) {
		conn_destroy(c, "read error");
		return;
	}
	pp->len += take;
	c->bytes_in += take;
	if (st == PP_NEED_MORE)
		return;
	if (pr.family != 0) {
		memcpy(direct, c->peer, sizeof(direct));
		if (pr.family == AF_INET) {
			memset(&sin, 0, sizeof(sin));
			sin.sin_family = AF_INET;
			memcpy(&sin.sin_addr, pr.src, 4);
			sin.sin_port = htons(pr.sport);
			format_peer(c->peer, sizeof(c->peer), (struct sockaddr *)&sin);
		} else {
			memset(&sin6, 0, sizeof(sin6));
			sin6.sin6_family = AF_INET6;
			memcpy(&sin6.sin6_addr, pr.src, 16);
			sin6.sin6_port = htons(pr.sport);
			format_peer(c->peer, sizeof(c->peer), (struct sockaddr *)&sin6);
		}
		/* Forwarded headers are now trusted only if the client is a proxy. */
		log_info("conn=%llu peer=%s event=proxy_protocol version=%d proxy=%s",
		    (unsigned long long)c->id, c->peer, pr.version, direct);
	} else
		log_debug("conn=%llu peer=%s event=proxy_protocol version=%d command=local",
		    (unsigned long long)c->id, c->peer, pr.version);
	free(c->in);
	c->in = NULL;
	c->pp_pending = false;
	conn_schedule(c);
}

static void
conn_on_readable(struct wsr_conn *c)
{
	struct loop	*l = c->loop;
	ssize_t		 n;

	if (c->pp_pending) {
		conn_pp_readable(c);
		if (c->dead || c->pp_pending)
			return;
	}
	if (c->ssl != NULL) {
		conn_tls_readable(c);
		return;
	}
	if ((n = conn_recv(c)) > 0)
		conn_input(c, l->rbuf, (size_t)n);
}

static void
conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wsr_conn	*c = arg;

	(void)fd;
	if (c->dead) {		/* see conn_api_leave */
		conn_release(c);
		return;
	}
	c->loop->now = timer_now_ms();
	c->in_cb++;
	if (what & EV_WRITE)
		conn_on_writable(c);
	if ((what & EV_READ) && !c->dead && !c->paused &&
	    !(c->hpaused && c->state == ST_OPEN))
		conn_on_readable(c);
	c->in_cb--;
	if (c->dead)
		conn_release(c);
}

static void
conn_timer_fire(struct timer_entry *e, void *arg)
{
	struct loop	*l = arg;
	struct wsr_conn	*c = (struct wsr_conn *)((char *)e - offsetof(struct wsr_conn, tm));
	uint8_t		 ts[8];
	uint64_t	 now, mark;
	int		 i, unacked;
	const char	*why;

	l->now = now = timer_now_ms();
	c->in_cb++;
	switch (c->state) {
	case ST_HANDSHAKE:
		log_info("conn=%llu peer=%s event=%s", (unsigned long long)c->id, c->peer,
		    c->pp_pending ? "proxy_protocol_timeout" : "handshake_timeout");
		conn_closed_by(c, CLOSED_BY_TIMEOUT);
		conn_destroy(c, "handshake timeout");
		break;
	case ST_OPEN:
		if (c->close_at != 0 && now >= c->close_at) {
			conn_planned_close(c);
			break;
		}
		if (conn_lim(c)->timeout_ms > 0 && now >= c->last_rx + conn_lim(c)->timeout_ms) {
			log_info("conn=%llu peer=%s event=idle_timeout",
			    (unsigned long long)c->id, c->peer);
			c->end_reason = "idle timeout";
			conn_closed_by(c, CLOSED_BY_TIMEOUT);
			conn_send_close(c, WS_CLOSE_GOING_AWAY, "idle timeout");
			break;
		}
		if (conn_lim(c)->message_timeout_ms > 0 && c->msg_started != 0 &&
		    now >= c->msg_started + conn_lim(c)->message_timeout_ms) {
			log_info("conn=%llu peer=%s event=message_timeout",
			    (unsigned long long)c->id, c->peer);
			c->end_reason = "message not completed in time";
			conn_closed_by(c, CLOSED_BY_TIMEOUT);
			conn_send_close(c, WS_CLOSE_POLICY, "message not completed in time");
			break;
		}
		if (conn_lim(c)->ping_period_ms > 0 && now >= c->next_ping) {
			/* The payload is our clock, handy when reading captures. */
			for (i = 0; i < 8; i++)
				ts[i] = (now >> (56 - 8 * i)) & 0xff;
			conn_send_frame(c, WS_OP_PING, ts, sizeof(ts));
			c->ping_out = true;	/* conn_pong recognises it by next_ping */
			c->next_ping = now + conn_lim(c)->ping_period_ms;
		}
		if (!c->dead)
			conn_schedule(c);
		break;
	case ST_LINGER:
		/*
		 * close_timeout bounds a peer that stops, not one still
		 * reading what was queued before our Close (a 16 MiB echo,
		 * then the Close reply, to a slow client; closing then would
		 * cut the echo short). While the peer keeps taking our bytes
		 * the wait restarts; what is queued is bounded by
		 * max_output_buffer and the socket's send buffer.
		 */
		why = c->end_reason != NULL ? c->end_reason : "close timeout";
		mark = conn_acked_mark(c, &unacked);
		if ((out_pending(c) > 0 || unacked > 0) && mark != c->linger_mark) {
			if (conn_linger_deadline(c, now) > now) {
				c->linger_mark = mark;
				c->deadline = conn_linger_deadline(c, now);
				conn_schedule(c);
				break;
			}
			why = "close_linger_max";	/* still reading, too slowly */
		}
		if (out_pending(c) > 0 || unacked > 0)
			conn_abort_on_close(c);
		conn_destroy(c, why);
		break;
	}
	c->in_cb--;
	if (c->dead)
		conn_release(c);
}

/* ---- lifetime ------------------------------------------------------------ */

/*
 * "addr:port" / "[addr]:port" without printf: it runs for every accepted
 * connection (inet_ntop does the address, the port is five digits at most).
 * cap is sizeof(c->peer) (56), room for any of them.
 */
static void
format_peer(char *out, size_t cap, const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;
	const uint8_t			*a;
	char				 port[8];
	size_t				 n = 0, i = sizeof(port);
	unsigned			 v = 0;

	switch (sa->sa_family) {
	case AF_INET:
		/* By hand: glibc's inet_ntop formats IPv4 with sprintf. */
		a = (const uint8_t *)&sin->sin_addr;
		for (i = 0; i < 4; i++) {
			if (a[i] >= 100)
				out[n++] = (char)('0' + a[i] / 100);
			if (a[i] >= 10)
				out[n++] = (char)('0' + a[i] / 10 % 10);
			out[n++] = (char)('0' + a[i] % 10);
			out[n++] = '.';
		}
		out[--n] = '\0';
		i = sizeof(port);
		v = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		out[0] = '[';
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, out + 1, cap - 1) == NULL)
			break;
		n = strlen(out);
		out[n++] = ']';
		v = ntohs(sin6->sin6_port);
		break;
	case AF_UNIX:
		snprintf(out, cap, "unix");
		return;
	}
	if (n == 0 || n + sizeof(port) > cap) {
		snprintf(out, cap, "unknown");
		return;
	}
	do {
		port[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	out[n++] = ':';
	memcpy(out + n, port + i, sizeof(port) - i);
	out[n + sizeof(port) - i] = '\0';
}

void
conn_accept(struct loop *l, int fd, const struct sockaddr *sa, socklen_t salen)
{
	conn_accept_opts(l, fd, sa, salen, 0);
}

void
conn_accept_opts(struct loop *l, int fd, const struct sockaddr *sa, socklen_t salen,
    unsigned opts)
{
	struct wsr_conn	*c;
	int		 one = 1;

	(void)salen;
	l->now = timer_now_ms();
	if (!(opts & CONN_NODELAY) && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_error("event=accept_failed reason=\"out of memory\"");
		close(fd);
		if (l->counted)
			__atomic_fetch_sub(&l->live, 1, __ATOMIC_RELAXED);
		return;
	}
	c->loop = l;
	c->fd = fd;
	c->id = ++l->next_id * l->id_stride + l->id_offset;
	METRIC_ADD(l->metrics.accepted, 1);
	c->accepted_at = c->last_rx = l->now;
	c->close_code = WS_CLOSE_ABNORMAL;
	ws_parser_init(&c->parser);
	format_peer(c->peer, sizeof(c->peer), sa);
	c->next = l->conns;
	c->pprev = &l->conns;
	if (l->conns != NULL)
		l->conns->pprev = &c->next;
	l->conns = c;
	l->nconns++;
	log_debug("conn=%llu peer=%s event=accept", (unsigned long long)c->id, c->peer);

	if (opts & CONN_PROXY) {
		/* Only a trusted proxy may tell us who the client is. */
		if (!conn_trusted_sa(l, sa)) {
			log_info("conn=%llu peer=%s event=rejected reason=\"PROXY protocol "
			    "listener, peer not in trusted_proxies\"", (unsigned long long)c->id,
			    c->peer);
			conn_destroy(c, "untrusted peer on a PROXY protocol listener");
			return;
		}
		c->pp_pending = true;
	}
	if (opts & CONN_TLS) {
		/* No 503 over TLS: that would need a handshake first. */
		if (l->nconns > l->max_connections || (opts & CONN_FULL)) {
			log_info("conn=%llu peer=%s event=rejected reason=\"too many "
			    "connections\"", (unsigned long long)c->id, c->peer);
			conn_destroy(c, "too many connections");
			return;
		}
		if (l->tls_ctx == NULL || (c->ssl = tls_conn_new(l->tls_ctx, fd)) == NULL) {
			log_error("conn=%llu event=accept_failed reason=\"cannot create "
			    "the TLS session\"", (unsigned long long)c->id);
			conn_destroy(c, "cannot create the TLS session");
			return;
		}
	}
	conn_update_events(c);
	if (l->nconns > l->max_connections || (opts & CONN_FULL)) {
		conn_reject(c, 503, "too many connections");
		return;
	}
	conn_schedule(c);
}

static const char *const closed_by_names[CLOSED_BY_N] = {
	[CLOSED_BY_NONE] = "server",	/* not reached: every end sets one */
	[CLOSED_BY_SERVER] = "server",
	[CLOSED_BY_CLIENT] = "client",
	[CLOSED_BY_ABORT] = "abort",
	[CLOSED_BY_TIMEOUT] = "timeout",
};

/* The access log line of c, which is ending. */
static void
conn_access_log(const struct wsr_conn *c)
{
	struct access_rec	r;
	struct timespec		ts;

	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	r.conn = c->id;
	r.client = c->peer;
	r.status = c->http_status;
	if (c->opened) {
		r.route = c->route->conf->path;
		r.path = r.route;
		r.path_len = strlen(r.route);
		r.close_code = c->close_code;
	} else if (c->path_kept) {
		r.path = c->reqdata;
		r.path_len = strlen(c->reqdata);
	}
	r.query = c->opened ? wsr_conn_query(c) : NULL;
	r.subprotocol = c->opened ? wsr_conn_subprotocol(c) : NULL;
	r.duration_ms = c->loop->now - c->accepted_at;
	r.bytes_in = c->bytes_in;
	r.bytes_out = c->bytes_out;
	r.msgs_in = c->msgs_in;
	r.msgs_out = c->msgs_out;
	r.closed_by = closed_by_names[c->closed_by];
	r.reason = c->end_reason;
	accesslog_write(&r);
}

static void
conn_release(struct wsr_conn *c)
{
	struct loop	*l = c->loop;

	/* Before on_close: from then on a late wsr_handle_send gets -1. */
	c->releasing = true;
	if (c->has_handle)
		handle_unregister(c->id);
	if (c->ssl != NULL && !c->tls_done)
		METRIC_ADD(l->metrics.tls_failed, 1);
	if (c->opened && c->rm != NULL) {
		METRIC_SUB(c->rm->open, 1);
		METRIC_ADD(c->rm->closed[c->closed_by], 1);
	}
	if (accesslog_enabled())
		conn_access_log(c);
	if (c->opened) {
		if (c->route->handler->on_close != NULL)
			c->route->handler->on_close(conn_instance(c), c, c->close_code);
		l->nopen--;
		log_info("conn=%llu peer=%s event=close route=%s code=%u reason=\"%s\" "
		    "bytes_in=%llu bytes_out=%llu msgs_in=%llu duration_ms=%llu",
		    (unsigned long long)c->id, c->peer, c->route->conf->path,
		    c->close_code, c->end_reason != NULL ? c->end_reason : "",
		    (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
		    (unsigned long long)c->msgs_in,
		    (unsigned long long)(l->now - c->accepted_at));
	} else
		log_debug("conn=%llu peer=%s event=close reason=\"%s\"",
		    (unsigned long long)c->id, c->peer,
		    c->end_reason != NULL ? c->end_reason : "");
	if (c->ip_counted) {
		char	key[sizeof(c->peer)];

		peercount_key(c->peer, key, sizeof(key));
		if (l->ip_lock != NULL)
			pthread_mutex_lock(l->ip_lock);
		peercount_release(l->per_ip, key);
		if (l->ip_lock != NULL)
			pthread_mutex_unlock(l->ip_lock);
	}
	if (c->route != NULL)
		handler_loop_release(c->route->table, l->index);
	if (l->batch_conn == c) {
		l->batch_conn = NULL;
		l->niov = 0;
		l->nstage = 0;
	}
	timer_cancel(&l->wheel, &c->tm);
	/* Always: a deferred release may have made ev active (conn_api_leave). */
	event_del(&c->ev);
	if (c->tls_own)
		tlsrec_free(c->trec);
	else
		SSL_free(c->ssl);
	close(c->fd);
	ws_parser_free(&c->parser);
	out_release(c);
	free(c->in);
	free(c->reqdata);
	*c->pprev = c->next;
	if (c->next != NULL)
		c->next->pprev = c->pprev;
	l->nconns--;
	if (l->counted)
		__atomic_fetch_sub(&l->live, 1, __ATOMIC_RELAXED);
	free(c);
	if (l->draining && l->nconns == 0 && l->on_drained != NULL)
		l->on_drained(l);
}

/* Open, not closing yet and, with t, on a route path that t does not have. */
static bool
conn_drain_candidate(const struct wsr_conn *c, struct route_table *t)
{
	const char	*path;

	if (c->state != ST_OPEN || c->close_sent || c->dead)
		return false;
	if (t == NULL)
		return true;
	path = c->route->conf->path;
	return route_lookup(t, path, strlen(path)) == NULL;
}

/*
 * Gives every candidate its point of the drain window (or closes it now
 * when the window is 0). Each loop spreads its own connections.
 */
static size_t
conn_drain_spread(struct loop *l, struct route_table *t, enum close_plan why)
{
	struct wsr_conn	*c, *next;
	size_t		 n = 0, i = 0;

	l->now = timer_now_ms();
	for (c = l->conns; c != NULL; c = c->next)
		if (conn_drain_candidate(c, t))
			n++;
	for (c = l->conns; c != NULL; c = next) {
		next = c->next;
		c->in_cb++;
		if (t == NULL && c->state == ST_HANDSHAKE) {
			/*
			 * A clean 503 rather than a drop. A connection still in
			 * its TLS handshake or waiting for its PROXY header gets
			 * it once it reaches HTTP (conn_handshake_input).
			 */
			if (!c->pp_pending && (c->ssl == NULL || c->tls_done))
				conn_reject(c, 503, "server shutting down");
		} else if (conn_drain_candidate(c, t)) {
			if (l->drain_window_ms == 0) {
				c->close_plan = why;
				conn_planned_close(c);
			} else {
				conn_plan_close(c, spread_point(l->now, l->drain_window_ms, i,
				    n), why);
				conn_schedule(c);
			}
			i++;
		}
		c->in_cb--;
		if (c->dead)
			conn_release(c);
	}
	return n;
}

void
conn_drain_all(struct loop *l, uint16_t code)
{
	l->draining = true;	/* first: readiness checks and new handshakes see it */
	conn_drain_spread(l, NULL, code == WS_CLOSE_RESTART ? PLAN_RESTART : PLAN_SHUTDOWN);
	if (l->nconns == 0 && l->on_drained != NULL)
		l->on_drained(l);
}

size_t
conn_drain_removed_routes(struct loop *l, struct route_table *t)
{
	return conn_drain_spread(l, t, PLAN_ROUTE_REMOVED);
}

void
conn_free_all(struct loop *l)
{
	l->draining = false;
	while (l->conns != NULL)
		conn_release(l->conns);
}

/* ---- plugin.h: what handlers may call ------------------------------------ */

/*
 * A handler may send to or close a connection other than the one whose
 * callback it is in (broadcast does). If that fails and kills c, c must not
 * be freed under the handler's feet (its on_close would run in the middle
 * of the caller's loop): c's release is deferred to its own event, which
 * conn_event_cb turns into conn_release.
 */
static void
conn_api_leave(struct wsr_conn *c)
{
	if (--c->in_cb == 0 && c->dead)
		event_active(&c->ev, EV_READ, 0);
}

int
wsr_send(struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	int	rv;

	if (c == NULL || c->dead || c->state != ST_OPEN || c->close_sent)
		return -1;
	if (opcode != WSR_TEXT && opcode != WSR_BINARY)
		return -1;
	c->in_cb++;
	rv = conn_send_frame(c, opcode, data, len);
	if (rv == 0) {
		c->msgs_out++;
		if (c->rm != NULL)
			METRIC_ADD(c->rm->msgs_out, 1);
	}
	conn_api_leave(c);
	return rv;
}

void
wsr_close(struct wsr_conn *c, int code, const char *reason)
{
	if (c == NULL || c->dead || c->state != ST_OPEN)
		return;
	if (code != 0 && (!ws_close_code_valid(code) || code == 1002 || code == 1007 ||
	    code == 1009 || code == 1010))
		code = WS_CLOSE_INTERNAL;
	if (code == WS_CLOSE_INTERNAL && !c->close_sent && c->rm != NULL)
		METRIC_ADD(c->rm->handler_errors, 1);
	c->end_reason = "closed by handler";
	c->in_cb++;
	conn_send_close(c, code, reason);
	conn_api_leave(c);
}

void
wsr_conn_set_reading(struct wsr_conn *c, int on)
{
	if (c == NULL || c->dead)
		return;
	c->hpaused = !on;
	conn_update_events(c);
}

size_t
wsr_conn_pending(const struct wsr_conn *c)
{
	return c != NULL ? out_pending(c) : 0;
}

const char *
wsr_conn_path(const struct wsr_conn *c)
{
	return c->route != NULL ? c->route->conf->path : NULL;
}

const char *
wsr_conn_query(const struct wsr_conn *c)
{
	return c->has_query ? c->reqdata : NULL;
}

const char *
wsr_conn_peer(const struct wsr_conn *c)
{
	return c->peer;
}

const char *
wsr_conn_subprotocol(const struct wsr_conn *c)
{
	return c->subprotocol != 0 ? c->route->conf->subprotocols[c->subprotocol - 1] : NULL;
}

size_t
conn_headers(const struct wsr_conn *c, const char **block)
{
	*block = conn_hdrs(c);
	return c->nhdrs;
}

const char *
wsr_conn_header(const struct wsr_conn *c, const char *name)
{
	const char	*p;
	size_t		 i;

	if (c == NULL || name == NULL || conn_hdrs(c) == NULL)
		return NULL;
	for (i = 0, p = conn_hdrs(c); i < c->nhdrs; i++) {
		if (strcasecmp(p, name) == 0)
			return p + strlen(p) + 1;
		p += strlen(p) + 1;
		p += strlen(p) + 1;
	}
	return NULL;
}

unsigned long long
wsr_conn_id(const struct wsr_conn *c)
{
	return c->id;
}

wsr_handle_t
wsr_conn_handle(const struct wsr_conn *cc)
{
	struct wsr_conn	*c = (struct wsr_conn *)cc;	/* registering shows nowhere */

	if (c == NULL)
		return 0;
	/*
	 * Registered on first use rather than for every connection: the table
	 * entry (32-64 B with its load factor) is idle memory an echo or
	 * broadcast connection never needs. A plugin can only hand a handle to
	 * a thread after this returned it, so nothing is missed. Once release
	 * has begun the handle is dead and stays unregistered.
	 */
	if (!c->has_handle && !c->releasing) {
		if (handle_register(c->id, c, c->loop->index) == -1)
			return 0;	/* every wsr_handle_* call refuses 0 */
		c->has_handle = true;
	}
	return c->id;
}

void *
wsr_conn_data(const struct wsr_conn *c)
{
	return c->user;
}

void
wsr_conn_set_data(struct wsr_conn *c, void *data)
{
	c->user = data;
}

void
wsr_log(const struct wsr_conn *c, int level, const char *fmt, ...)
{
	char	msg[1024];
	va_list	ap;

	if (level < WSR_LOG_ERROR || level > WSR_LOG_DEBUG || !log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c != NULL)
		log_msg(level, "conn=%llu peer=%s route=%s %s", (unsigned long long)c->id,
		    c->peer, wsr_conn_path(c) ? wsr_conn_path(c) : "-", msg);
	else
		log_msg(level, "%s", msg);
}

void
conn_note_slow_consumer(struct wsr_conn *c, bool closed)
{
	if (c == NULL || c->rm == NULL)
		return;
	if (closed)
		METRIC_ADD(c->rm->slow_closed, 1);
	else
		METRIC_ADD(c->rm->slow_skipped, 1);
}
