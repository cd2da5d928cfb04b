/*
 * broadcast.c — the built-in broadcast handler: every message a connection
 * sends goes to every connection of the route (or of its room), the sender
 * included unless `include_sender = no`. Written against plugin.h, plus
 * conn_note_slow_consumer (handler.h) to count slow receivers in /metrics.
 *
 * Memory: a message is copied once, into a refcounted struct bmsg shared by
 * every receiver that cannot take it at once. A receiver whose socket is
 * keeping up gets it straight into the kernel (wsr_send with nothing
 * pending); otherwise a reference joins the receiver's FIFO, refilled from
 * on_drain. The FIFO holds at most max_queue messages; past that the
 * receiver is closed with 1008 (overflow = close) or misses the message
 * (overflow = skip). So per receiver the daemon holds at most max_queue
 * references plus the unsent part of one frame, whatever the senders do.
 *
 * Order: a receiver is sent to directly only while its FIFO is empty and
 * nothing is pending, so every receiver sees each sender's messages in the
 * order they were sent.
 *
 * Workers (workers > 1): each worker keeps its own rooms and members, touched
 * only by its thread. A message is fanned out to the sender's worker's
 * members here, and posted once (struct xpost, one refcounted copy shared by
 * every worker and every queue) to each other worker that has members; that
 * worker fans it out to its own members of the room with the same rules.
 * Worker queues are FIFOs, so per-sender order holds across workers too.
 *
 * Options (route keys):
 *   max_queue = N           messages queued per receiver, 1..1000000 (1024)
 *   overflow = close|skip   what a full queue does (close)
 *   room_param = NAME       the room is the value of query parameter NAME
 *                           (none: one room for the whole route)
 *   include_sender = yes|no (yes)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsrouted/plugin.h>

#include "handler.h"

#define BC_DEFAULT_MAX_QUEUE	1024
#define BC_MAX_MAX_QUEUE	1000000
#define BC_ROOM_MAX		128	/* bytes of a room name */

struct bmsg {
	unsigned	refs;		/* __atomic: receivers on several workers */
	int		opcode;
	size_t		len;
	uint8_t		data[];
};

struct room;

struct member {
	struct wsr_conn	*conn;
	struct room	*room;
	struct member	*next, **pprev;
	struct bmsg	**q;		/* ring, grown by doubling up to max_queue */
	size_t		 qcap, qhead, qlen;
	uint64_t	 skipped;
	bool		 dropped;	/* closed for being slow: send nothing more */
};

struct room {
	char		*name;
	struct member	*members;
	size_t		 nmembers;
	struct room	*next, **pprev;
};

struct broadcast {
	unsigned	 refs;		/* __atomic: the route + each xpost in flight */
	size_t		 max_queue;
	bool		 skip;
	bool		 include_sender;
	char		*room_param;
	struct room	*rooms[WORKERS_MAX];	/* per worker: only its thread touches it */
	size_t		 nmembers[WORKERS_MAX];	/* __atomic: who needs a post */
};

/* A message on its way to other workers: one per message, however many. */
struct xpost {
	unsigned		 refs;		/* __atomic: one per worker posted to */
	struct broadcast	*b;
	struct bmsg		*msg;
	char			 room[];
};

static void
bmsg_unref(struct bmsg *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(m);
}

static void
bmsg_ref(struct bmsg *m)
{
	__atomic_fetch_add(&m->refs, 1, __ATOMIC_RELAXED);
}

static void
bc_unref(struct broadcast *b)
{
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(b->room_param);
	free(b);
}

static int
parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0)
		*out = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

static void *
bc_fail(struct broadcast *b, char **cause, const char *key, const char *value,
    const char *expected)
{
	if (asprintf(cause, "%s: expected %s, got '%s'", key, expected, value) == -1)
		*cause = NULL;
	if (b != NULL)
		free(b->room_param);
	free(b);
	return NULL;
}

static void *
bc_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct broadcast	*b;
	unsigned long long	 n;
	char			*end;
	size_t			 i;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	b->refs = 1;
	b->max_queue = BC_DEFAULT_MAX_QUEUE;
	b->include_sender = true;
	for (i = 0; i < nopts; i++) {
		const char *k = opts[i].key, *v = opts[i].value;

		if (strcmp(k, "max_queue") == 0) {
			errno = 0;
			n = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
			    n < 1 || n > BC_MAX_MAX_QUEUE)
				return bc_fail(b, cause, k, v, "a number of messages, 1..1000000");
			b->max_queue = n;
		} else if (strcmp(k, "overflow") == 0) {
			if (strcmp(v, "close") == 0)
				b->skip = false;
			else if (strcmp(v, "skip") == 0)
				b->skip = true;
			else
				return bc_fail(b, cause, k, v, "close or skip");
		} else if (strcmp(k, "include_sender") == 0) {
			if (parse_bool(v, &b->include_sender) == -1)
				return bc_fail(b, cause, k, v, "yes or no");
		} else if (strcmp(k, "room_param") == 0) {
			if (v[0] == '\0' || strpbrk(v, "&=?# ") != NULL)
				return bc_fail(b, cause, k, v, "a query parameter name");
			free(b->room_param);
			if ((b->room_param = strdup(v)) == NULL) {
				free(b);
				*cause = strdup("out of memory");
				return NULL;
			}
		} else {
			if (asprintf(cause, "%s: unknown key for the broadcast handler, "
			    "expected max_queue, overflow, room_param or include_sender",
			    k) == -1)
				*cause = NULL;
			free(b->room_param);
			free(b);
			return NULL;
		}
	}
	return b;
}

static void
bc_destroy(void *self)
{
	struct broadcast	*b = self;

	/* Every connection has closed (the route table is refcounted); posts may be in flight. */
	if (b == NULL)
		return;
	bc_unref(b);
}

/*
 * The value of parameter name in query (raw, not percent-decoded: a room is
 * an opaque token), or "" when absent. -1 when it is too long.
 */
static int
room_from_query(const char *query, const char *name, char *out, size_t cap)
{
	size_t		 nlen = strlen(name), vlen;
	const char	*p = query, *amp;

	out[0] = '\0';
	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			p += nlen + 1;
			vlen = amp != NULL ? (size_t)(amp - p) : strlen(p);
			if (vlen >= cap)
				return -1;
			memcpy(out, p, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return 0;
}

static int
bc_on_open(void *self, struct wsr_conn *c)
{
	struct broadcast	*b = self;
	struct member		*m;
	struct room		*r, **rooms = &b->rooms[worker_self()];
	char			 name[BC_ROOM_MAX];

	name[0] = '\0';
	if (b->room_param != NULL && wsr_conn_query(c) != NULL &&
	    room_from_query(wsr_conn_query(c), b->room_param, name, sizeof(name)) == -1) {
		wsr_log(c, WSR_LOG_INFO, "event=refused reason=\"room name longer "
		    "than %d bytes\"", BC_ROOM_MAX - 1);
		return -1;
	}
	for (r = *rooms; r != NULL; r = r->next)
		if (strcmp(r->name, name) == 0)
			break;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return -1;
		if ((r->name = strdup(name)) == NULL) {
			free(r);
			return -1;
		}
		r->next = *rooms;
		r->pprev = rooms;
		if (*rooms != NULL)
			(*rooms)->pprev = &r->next;
		*rooms = r;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		if (r->nmembers == 0) {
			*r->pprev = r->next;
			if (r->next != NULL)
				r->next->pprev = r->pprev;
			free(r->name);
			free(r);
		}
		return -1;
	}
	m->conn = c;
	m->room = r;
	m->next = r->members;
	m->pprev = &r->members;
	if (r->members != NULL)
		r->members->pprev = &m->next;
	r->members = m;
	r->nmembers++;
	__atomic_fetch_add(&b->nmembers[worker_self()], 1, __ATOMIC_RELAXED);
	wsr_conn_set_data(c, m);
	return 0;
}

static void
member_clear_queue(struct member *m)
{
	while (m->qlen > 0) {
		bmsg_unref(m->q[m->qhead]);
		m->qhead = (m->qhead + 1) % m->qcap;
		m->qlen--;
	}
	free(m->q);
	m->q = NULL;
	m->qcap = m->qhead = 0;
}

static void
bc_on_close(void *self, struct wsr_conn *c, int code)
{
	struct broadcast	*b = self;
	struct member		*m = wsr_conn_data(c);
	struct room		*r;

	(void)code;
	if (m == NULL)
		return;
	__atomic_fetch_sub(&b->nmembers[worker_self()], 1, __ATOMIC_RELAXED);
	if (m->skipped > 0)
		wsr_log(c, WSR_LOG_INFO, "event=broadcast_skipped messages=%llu",
		    (unsigned long long)m->skipped);
	member_clear_queue(m);
	r = m->room;
	*m->pprev = m->next;
	if (m->next != NULL)
		m->next->pprev = m->pprev;
	if (--r->nmembers == 0) {
		*r->pprev = r->next;
		if (r->next != NULL)
			r->next->pprev = r->pprev;
		free(r->name);
		free(r);
	}
	free(m);
	wsr_conn_set_data(c, NULL);
}

/* Sends queued messages while the socket takes them whole. */
static void
member_flush(struct member *m)
{
	struct bmsg	*msg;

	while (m->qlen > 0 && !m->dropped && wsr_conn_pending(m->conn) == 0) {
		msg = m->q[m->qhead];
		m->q[m->qhead] = NULL;
		m->qhead = (m->qhead + 1) % m->qcap;
		m->qlen--;
		/* The daemon copies only what the kernel refuses now. */
		if (wsr_send(m->conn, msg->opcode, msg->data, msg->len) == -1)
			m->dropped = true;
		bmsg_unref(msg);
	}
	if (m->qlen == 0 || m->dropped)
		member_clear_queue(m);
}

static int
member_enqueue(struct broadcast *b, struct member *m, struct bmsg *msg)
{
	struct bmsg	**q;
	size_t		  cap, i;

	if (m->qlen == m->qcap) {
		cap = m->qcap == 0 ? 16 : m->qcap * 2;
		if (cap > b->max_queue)
			cap = b->max_queue;
		if ((q = malloc(cap * sizeof(*q))) == NULL)
			return -1;
		for (i = 0; i < m->qlen; i++)
			q[i] = m->q[(m->qhead + i) % m->qcap];
		free(m->q);
		m->q = q;
		m->qcap = cap;
		m->qhead = 0;
	}
	m->q[(m->qhead + m->qlen) % m->qcap] = msg;
	m->qlen++;
	bmsg_ref(msg);
	return 0;
}

/*
 * Sends to every member of room but skip: at once where nothing is queued,
 * else a reference to *msgp (made on first need from data) joins the FIFO.
 * -1 when out of memory for the copy.
 */
static int
fan_out(struct broadcast *b, struct room *room, struct member *skip, int opcode,
    const void *data, size_t len, struct bmsg **msgp, struct wsr_conn *log_conn)
{
	struct member	*m;
	struct bmsg	*msg = *msgp;

	for (m = room->members; m != NULL; m = m->next) {
		if (m->dropped || m == skip)
			continue;
		if (m->qlen == 0 && wsr_conn_pending(m->conn) == 0) {
			/*
			 * Straight to the socket; for the sender, data joins
			 * its reply batch by reference, as echo does.
			 */
			if (wsr_send(m->conn, opcode, data, len) == -1)
				m->dropped = true;
			continue;
		}
		if (m->qlen >= b->max_queue) {
			if (b->skip) {
				m->skipped++;
				conn_note_slow_consumer(m->conn, false);
				continue;
			}
			wsr_log(m->conn, WSR_LOG_INFO, "event=broadcast_overflow "
			    "queued=%zu", m->qlen);
			m->dropped = true;
			member_clear_queue(m);
			conn_note_slow_consumer(m->conn, true);
			wsr_close(m->conn, 1008, "too slow");
			continue;
		}
		if (msg == NULL) {
			if ((msg = malloc(sizeof(*msg) + len)) == NULL) {
				wsr_log(log_conn, WSR_LOG_ERROR, "event=broadcast_oom len=%zu", len);
				return -1;
			}
			msg->refs = 1;	/* the caller's, until it is done */
			msg->opcode = opcode;
			msg->len = len;
			memcpy(msg->data, data, len);
			*msgp = msg;
		}
		if (member_enqueue(b, m, msg) == -1) {
			m->dropped = true;
			member_clear_queue(m);
			wsr_close(m->conn, 1011, "out of memory");
		}
	}
	return 0;
}

static void
xpost_unref(struct xpost *xp)
{
	if (__atomic_sub_fetch(&xp->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	bmsg_unref(xp->msg);
	bc_unref(xp->b);
	free(xp);
}

/* On another worker's thread: its members of the room get the message. */
static void
bc_remote(void *arg, int run)
{
	struct xpost	*xp = arg;
	struct room	*r;
	struct bmsg	*msg = xp->msg;

	if (run) {
		for (r = xp->b->rooms[worker_self()]; r != NULL; r = r->next)
			if (strcmp(r->name, xp->room) == 0)
				break;
		if (r != NULL)
			fan_out(xp->b, r, NULL, msg->opcode, msg->data, msg->len, &msg, NULL);
	}
	xpost_unref(xp);
}

/* The other workers with members get one shared copy each through their queues. */
static void
post_others(struct broadcast *b, struct member *sender, int opcode, const void *data,
    size_t len, struct bmsg **msgp, struct wsr_conn *c)
{
	struct xpost	*xp;
	struct bmsg	*msg;
	unsigned	 i, n = worker_count(), self = worker_self(), targets = 0;
	bool		 want[WORKERS_MAX];
	size_t		 nlen;

	for (i = 0; i < n; i++) {
		want[i] = i != self && __atomic_load_n(&b->nmembers[i], __ATOMIC_RELAXED) > 0;
		targets += want[i];
	}
	if (targets == 0)
		return;
	if ((msg = *msgp) == NULL) {
		if ((msg = malloc(sizeof(*msg) + len)) == NULL) {
			wsr_log(c, WSR_LOG_ERROR, "event=broadcast_oom len=%zu", len);
			return;
		}
		msg->refs = 1;
		msg->opcode = opcode;
		msg->len = len;
		memcpy(msg->data, data, len);
		*msgp = msg;
	}
	nlen = strlen(sender->room->name) + 1;
	if ((xp = malloc(sizeof(*xp) + nlen)) == NULL) {
		wsr_log(c, WSR_LOG_ERROR, "event=broadcast_oom len=%zu", len);
		return;
	}
	memcpy(xp->room, sender->room->name, nlen);
	xp->refs = targets;
	xp->b = b;
	__atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
	xp->msg = msg;
	bmsg_ref(msg);
	for (i = 0; i < n; i++)
		if (want[i])
			worker_post(i, bc_remote, xp);
}

static void
bc_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	struct broadcast	*b = self;
	struct member		*sender = wsr_conn_data(c);
	struct bmsg		*msg = NULL;

	if (sender == NULL)
		return;
	if (fan_out(b, sender->room, b->include_sender ? NULL : sender, opcode, data, len,
	    &msg, c) == 0 && worker_count() > 1)
		post_others(b, sender, opcode, data, len, &msg, c);
	if (msg != NULL)
		bmsg_unref(msg);
}

static void
bc_on_drain(void *self, struct wsr_conn *c)
{
	struct member	*m = wsr_conn_data(c);

	(void)self;
	if (m != NULL)
		member_flush(m);
}

const struct wsr_handler handler_broadcast = {
	.abi = WSR_PLUGIN_ABI,
	.name = "broadcast",
	.create = bc_create,
	.destroy = bc_destroy,
	.on_open = bc_on_open,
	.on_message = bc_on_message,
	.on_close = bc_on_close,
	.on_drain = bc_on_drain,
};
