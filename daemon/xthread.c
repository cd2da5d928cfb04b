/*
 * xthread.c — connection handles: wsr_handle_send/wsr_handle_close from any
 * thread (plugin.h). A handle is the connection's id, never reused. The
 * loop thread registers each connection's id at the upgrade, with the
 * index of its loop, and removes it when the connection is released;
 * another thread's call checks the id under a mutex (a closed connection
 * gets -1 at once), appends a copy of the message to the queue of the
 * connection's loop and wakes that loop with its eventfd, whose callback
 * delivers the queue through wsr_send/wsr_close. Only the connection's own
 * loop thread ever dereferences a struct wsr_conn. One table and one mutex
 * for every loop: a handle call is a lookup and an append, short enough
 * that per-loop locks would not pay for the extra table on every loop.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <wsrouted/plugin.h>

#include "handler.h"
#include "log.h"

enum { XOP_SEND, XOP_CLOSE };

struct xop {
	struct xop	*next;
	uint64_t	 id;
	int		 kind;
	int		 arg;		/* opcode or close code */
	size_t		 len;
	uint8_t		 data[];	/* message, or the close reason (NUL-terminated) */
};

struct slot {
	uint64_t	 id;		/* 0: empty */
	struct wsr_conn	*conn;		/* NULL with id != 0: deleted */
	unsigned	 loop;		/* index of the loop c lives on */
};

/* One loop's queue and wake-up. */
struct hloop {
	struct xop	*head, **tailp;
	bool		 attached;	/* efd is open, ev on the loop's base */
	int		 efd;
	struct event	*ev;
};

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot	*slots;		/* open addressing, linear probing */
static size_t		 cap, used, live;
static size_t		 queued;	/* bytes in all queues: one bound for the process */
static struct hloop	 loops[WORKERS_MAX];

static size_t
slot_of(uint64_t id, size_t n)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id & (n - 1);
}

/* Rebuilds the table with ncap slots (a power of two), dropping deleted ones. */
static int
rehash(size_t ncap)
{
	struct slot	*ns;
	size_t		 i, j;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < cap; i++) {
		if (slots[i].conn == NULL)
			continue;
		for (j = slot_of(slots[i].id, ncap); ns[j].id != 0; j = (j + 1) & (ncap - 1))
			;
		ns[j] = slots[i];
	}
	free(slots);
	slots = ns;
	cap = ncap;
	used = live;
	return 0;
}

static struct slot *
find(uint64_t id)
{
	size_t	i;

	if (cap == 0)
		return NULL;
	for (i = slot_of(id, cap); slots[i].id != 0; i = (i + 1) & (cap - 1))
		if (slots[i].id == id)
			return slots[i].conn != NULL ? &slots[i] : NULL;
	return NULL;
}

int
handle_register(uint64_t id, struct wsr_conn *c, unsigned idx)
{
	size_t	i;
	int	rv = 0;

	pthread_mutex_lock(&mu);
	if ((used + 1) * 2 > cap)
		rv = rehash(cap == 0 ? 64 : (live + 1) * 4 > cap ? cap * 2 : cap);
	if (rv == 0) {
		for (i = slot_of(id, cap); slots[i].id != 0; i = (i + 1) & (cap - 1))
			;
		slots[i].id = id;
		slots[i].conn = c;
		slots[i].loop = idx;
		used++;
		live++;
	}
	pthread_mutex_unlock(&mu);
	return rv;
}

void
handle_unregister(uint64_t id)
{
	struct slot	*s;

	pthread_mutex_lock(&mu);
	if ((s = find(id)) != NULL) {
		s->conn = NULL;		/* stays as a deleted mark for probing */
		live--;
	}
	pthread_mutex_unlock(&mu);
}

/* Unlinks every queued op of l; under mu. */
static struct xop *
take(struct hloop *l)
{
	struct xop	*list = l->head, *op;

	for (op = list; op != NULL; op = op->next)
		queued -= op->len;
	l->head = NULL;
	l->tailp = &l->head;
	return list;
}

static void
free_ops(struct xop *list)
{
	struct xop	*op;

	while ((op = list) != NULL) {
		list = op->next;
		free(op);
	}
}

static void
deliver(evutil_socket_t fd, short what, void *arg)
{
	struct hloop	*l = arg;
	struct xop	*list, *op;
	struct slot	*s;
	struct wsr_conn	*c;
	uint64_t	 n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("event=handle_wake_failed error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&mu);
	list = take(l);
	pthread_mutex_unlock(&mu);
	while ((op = list) != NULL) {
		list = op->next;
		/*
		 * Only this thread unregisters this loop's connections: c stays
		 * valid below. enqueue put op here because c is on this loop.
		 */
		pthread_mutex_lock(&mu);
		s = find(op->id);
		c = s != NULL && &loops[s->loop] == l ? s->conn : NULL;
		pthread_mutex_unlock(&mu);
		if (c != NULL) {
			if (op->kind == XOP_SEND)
				wsr_send(c, op->arg, op->data, op->len);
			else
				wsr_close(c, op->arg, (const char *)op->data);
		}
		free(op);
	}
}

/* Under mu: frees l's event (on the thread that runs, or will run, its base). */
static struct xop *
detach_locked(struct hloop *l)
{
	if (l->ev != NULL)
		event_free(l->ev);
	l->ev = NULL;
	if (l->attached)
		close(l->efd);
	l->attached = false;
	return take(l);
}

int
handle_attach(unsigned idx, struct event_base *base)
{
	struct hloop	*l;
	struct xop	*old;
	int		 fd, rv = 0;

	if (idx >= WORKERS_MAX || (fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	l = &loops[idx];
	pthread_mutex_lock(&mu);
	/* Index 0 may be the main loop's: workers take over before it runs. */
	old = detach_locked(l);
	l->efd = fd;
	l->attached = true;
	if ((l->ev = event_new(base, fd, EV_READ | EV_PERSIST, deliver, l)) == NULL ||
	    event_add(l->ev, NULL) == -1) {
		detach_locked(l);
		rv = -1;
	}
	pthread_mutex_unlock(&mu);
	free_ops(old);
	return rv;
}

void
handle_detach(unsigned idx)
{
	struct xop	*old;

	if (idx >= WORKERS_MAX)
		return;
	pthread_mutex_lock(&mu);
	old = detach_locked(&loops[idx]);
	pthread_mutex_unlock(&mu);
	free_ops(old);
}

int
handle_init(struct event_base *base)
{
	return handle_attach(0, base);
}

void
handle_shutdown(void)
{
	unsigned	i;

	for (i = 0; i < WORKERS_MAX; i++)
		handle_detach(i);
	pthread_mutex_lock(&mu);
	free(slots);
	slots = NULL;
	cap = used = live = 0;
	pthread_mutex_unlock(&mu);
}

static int
enqueue(uint64_t id, int kind, int arg, const void *data, size_t len)
{
	struct xop	*op;
	struct slot	*s;
	struct hloop	*l;
	uint64_t	 one = 1;
	int		 rv = -1;

	if (id == 0 || len > WSR_HANDLE_QUEUE_MAX)
		return -1;
	if ((op = malloc(sizeof(*op) + len + 1)) == NULL)
		return -1;
	op->next = NULL;
	op->id = id;
	op->kind = kind;
	op->arg = arg;
	op->len = len;
	if (len > 0)
		memcpy(op->data, data, len);
	op->data[len] = '\0';
	pthread_mutex_lock(&mu);
	if ((s = find(id)) != NULL && (l = &loops[s->loop])->attached &&
	    queued + len <= WSR_HANDLE_QUEUE_MAX) {
		*l->tailp = op;
		l->tailp = &op->next;
		queued += len;
		rv = 0;
		/*
		 * Under the lock, so handle_detach cannot close efd meanwhile.
		 * It fails only when the counter is saturated (EAGAIN), and then
		 * a wake-up is pending anyway.
		 */
		if (write(l->efd, &one, sizeof(one)) == -1)
			(void)errno;
	}
	pthread_mutex_unlock(&mu);
	if (rv == -1)
		free(op);
	return rv;
}

int
wsr_handle_send(wsr_handle_t h, int opcode, const void *data, size_t len)
{
	if (opcode != WSR_TEXT && opcode != WSR_BINARY)
		return -1;
	if (len > 0 && data == NULL)
		return -1;
	return enqueue(h, XOP_SEND, opcode, data, len);
}

int
wsr_handle_close(wsr_handle_t h, int code, const char *reason)
{
	size_t	len = reason != NULL ? strnlen(reason, 123) : 0;

	return enqueue(h, XOP_CLOSE, code, reason, len);
}
