/*
 * xthread.c — connection handles: wsr_handle_send/wsr_handle_close from any
 * thread (plugin.h). A handle is the connection's id, never reused. The
 * loop thread registers each connection's id at the upgrade and removes it
 * when the connection is released; another thread's call checks the id
 * under a mutex (a closed connection gets -1 at once), appends a copy of the
 * message to a queue and wakes the loop with an eventfd, whose callback
 * delivers the queue through wsr_send/wsr_close. Only the loop thread ever
 * dereferences a struct wsr_conn.
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
};

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot	*slots;		/* open addressing, linear probing */
static size_t		 cap, used, live;
static struct xop	*head, **tailp = &head;
static size_t		 queued;	/* bytes in the queue */
static int		 efd = -1;
static struct event	*efd_ev;

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
handle_register(uint64_t id, struct wsr_conn *c)
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

static void
deliver(evutil_socket_t fd, short what, void *arg)
{
	struct xop	*list, *op;
	struct slot	*s;
	struct wsr_conn	*c;
	uint64_t	 n;

	(void)what;
	(void)arg;
	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("event=handle_wake_failed error=\"%s\"", strerror(errno));
	pthread_mutex_lock(&mu);
	list = head;
	head = NULL;
	tailp = &head;
	queued = 0;
	pthread_mutex_unlock(&mu);
	while ((op = list) != NULL) {
		list = op->next;
		/* Only this thread changes the table: c stays valid below. */
		pthread_mutex_lock(&mu);
		s = find(op->id);
		c = s != NULL ? s->conn : NULL;
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

int
handle_init(struct event_base *base)
{
	if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	if ((efd_ev = event_new(base, efd, EV_READ | EV_PERSIST, deliver, NULL)) == NULL ||
	    event_add(efd_ev, NULL) == -1)
		return -1;
	return 0;
}

void
handle_shutdown(void)
{
	struct xop	*op;

	if (efd_ev != NULL)
		event_free(efd_ev);
	efd_ev = NULL;
	pthread_mutex_lock(&mu);
	while ((op = head) != NULL) {
		head = op->next;
		free(op);
	}
	tailp = &head;
	queued = 0;
	free(slots);
	slots = NULL;
	cap = used = live = 0;
	if (efd != -1)
		close(efd);
	efd = -1;
	pthread_mutex_unlock(&mu);
}

static int
enqueue(uint64_t id, int kind, int arg, const void *data, size_t len)
{
	struct xop	*op;
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
	if (efd != -1 && find(id) != NULL && queued + len <= WSR_HANDLE_QUEUE_MAX) {
		*tailp = op;
		tailp = &op->next;
		queued += len;
		rv = 0;
		/*
		 * Under the lock, so handle_shutdown cannot close efd meanwhile.
		 * It fails only when the counter is saturated (EAGAIN), and then
		 * a wake-up is pending anyway.
		 */
		if (write(efd, &one, sizeof(one)) == -1)
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
