/*
 * worker.c — see worker.h.
 *
 * Each worker owns a FIFO of items (accepted fd, new route table, drain,
 * stop, or a function to run) under a mutex, woken by an eventfd that is
 * written only when the queue goes from empty to non-empty, so a burst of
 * items costs one wake-up. Items are run on the worker's thread in the
 * order posted, so a sender's broadcasts arrive in order and a connection
 * accepted after a reload gets the new routes.
 *
 * Choice of worker: the one with the fewest live connections (ties taken
 * round-robin). Round-robin alone balances accepts, not connections: after
 * short connections come and go on one worker, long-lived ones would pile
 * up on the other. The counts are atomics the acceptor raises at dispatch
 * (so a burst spreads before any worker has run) and conn_release lowers.
 *
 * Global limits: max_connections is counted in the acceptor (the sum of
 * those atomics; the acceptor is one thread, so it never admits more than
 * the limit; a count a worker has just lowered may be read late, which can
 * only refuse early). An over-limit connection still goes to a worker, marked
 * CONN_FULL, which answers 503 as with one loop. max_connections_per_ip
 * uses one peercount shared by every worker under a mutex.
 */
#include "build-config.h"

#include <sys/eventfd.h>
#include <sys/prctl.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "handler.h"
#include "log.h"
#include "peercount.h"
#include "route.h"
#include "worker.h"

enum witem_kind {
	W_ACCEPT,
	W_RELOAD,
	W_DRAIN,
	W_STOP,
	W_CALL,
};

struct witem {
	struct witem		*next;
	enum witem_kind		 kind;
	union {
		struct {
			int			 fd;
			unsigned		 opts;
			socklen_t		 salen;
			struct sockaddr_storage	 ss;
		} acc;
		struct {
			struct route_table	*t;
			SSL_CTX			*tls;
			uint64_t		 max_per_ip;
			uint64_t		 handshake_timeout_ms;
			uint64_t		 proxy_protocol_timeout_ms;
			uint64_t		 linger_ms;
			uint64_t		 drain_window_ms;
		} rl;
		struct {
			void			(*fn)(void *, int);
			void			*arg;
		} call;
	} u;
};

struct worker {
	struct workers		*ws;
	unsigned		 index;
	pthread_t		 thread;
	bool			 started;
	bool			 handles;	/* its base is attached for handle delivery */
	struct event_base	*base;
	struct loop		 loop;
	struct event		*wake_ev;
	int			 efd;
	pthread_mutex_t		 mu;		/* guards head/tail/closed */
	struct witem		*head, **tail;
	bool			 closed;	/* thread ended: posts are refused */
	bool			 drained;
	struct witem		*drain_it;	/* allocated up front: these two */
	struct witem		*stop_it;	/* must not fail for want of memory */
};

struct workers {
	unsigned		 n;
	struct worker		*w;
	struct loop		*acceptor;
	unsigned		 rr;		/* round-robin start among equals */
	pthread_mutex_t		 ip_lock;
	struct peercount	*per_ip;
	unsigned		 ndrained;	/* __atomic */
	int			 done_fd;	/* eventfd: all drained (main thread) */
	struct event		*done_ev;
	void			(*on_drained)(void *);
	void			*arg;
	uint16_t		 drain_code;	/* set before the drain items are posted */
};

/* For worker_post/worker_count: set while threads run (main thread writes it before/after). */
static struct workers	*current;
static __thread unsigned self_index;

unsigned
workers_for(int configured)
{
	cpu_set_t	set;
	int		n;

	if (configured > 0)
		return (unsigned)configured;
	if (sched_getaffinity(0, sizeof(set), &set) == -1 || (n = CPU_COUNT(&set)) < 1)
		n = 1;
	return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)n;
}

unsigned
workers_n(const struct workers *ws)
{
	return ws->n;
}

unsigned
worker_count(void)
{
	return current != NULL ? current->n : 1;
}

unsigned
worker_self(void)
{
	return self_index;
}

/* Appends it to w's queue; -1 when w's thread has ended. */
static int
push(struct worker *w, struct witem *it)
{
	uint64_t	one = 1;
	bool		wake;

	it->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->closed) {
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	wake = w->head == NULL;
	*w->tail = it;
	w->tail = &it->next;
	pthread_mutex_unlock(&w->mu);
	/* Only the empty → non-empty step wakes: the reader takes the whole list. */
	if (wake && write(w->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_error("event=worker_wake_failed worker=%u error=\"%s\"", w->index,
		    strerror(errno));
	return 0;
}

/* An item that will not run: give back what it holds. */
static void
discard(struct worker *w, struct witem *it)
{
	switch (it->kind) {
	case W_ACCEPT:
		close(it->u.acc.fd);
		__atomic_fetch_sub(&w->loop.live, 1, __ATOMIC_RELAXED);
		break;
	case W_RELOAD:
		route_table_unref(it->u.rl.t, handler_destroy_instance);
		SSL_CTX_free(it->u.rl.tls);
		break;
	case W_CALL:
		it->u.call.fn(it->u.call.arg, 0);
		break;
	case W_DRAIN:
	case W_STOP:
		break;
	}
	free(it);
}

static void
run(struct worker *w, struct witem *it)
{
	struct loop	*l = &w->loop;
	size_t		 n;

	switch (it->kind) {
	case W_ACCEPT:
		conn_accept_opts(l, it->u.acc.fd, (struct sockaddr *)&it->u.acc.ss,
		    it->u.acc.salen, it->u.acc.opts);
		break;
	case W_RELOAD:
		/* This loop's old per-loop instances go once unused. */
		handler_loop_release(l->routes, w->index);
		l->routes = it->u.rl.t;
		handler_loop_take(l->routes, w->index);
		if (it->u.rl.tls != NULL) {
			SSL_CTX_free(l->tls_ctx);
			l->tls_ctx = it->u.rl.tls;
		}
		l->max_per_ip = it->u.rl.max_per_ip;
		l->handshake_timeout_ms = it->u.rl.handshake_timeout_ms;
		l->proxy_protocol_timeout_ms = it->u.rl.proxy_protocol_timeout_ms;
		l->linger_ms = it->u.rl.linger_ms;
		l->drain_window_ms = it->u.rl.drain_window_ms;
		/* The connections of routes the new table lacks go, spread out. */
		n = conn_drain_removed_routes(l, l->routes);
		if (n > 0)
			log_info("event=route_drain worker=%u connections=%zu code=%u "
			    "drain_window_ms=%llu", w->index + 1, n, WS_CLOSE_GOING_AWAY,
			    (unsigned long long)l->drain_window_ms);
		break;
	case W_DRAIN:
		/* The queue's mutex orders the main thread's write of drain_code before this. */
		conn_drain_all(l, w->ws->drain_code);
		break;
	case W_STOP:
		event_base_loopbreak(w->base);
		break;
	case W_CALL:
		it->u.call.fn(it->u.call.arg, 1);
		break;
	}
	free(it);
}

/* Takes every queued item (oldest first); with closing, later posts are refused. */
static struct witem *
take_queue(struct worker *w, bool closing)
{
	struct witem	*list;

	pthread_mutex_lock(&w->mu);
	if (closing)
		w->closed = true;
	list = w->head;
	w->head = NULL;
	w->tail = &w->head;
	pthread_mutex_unlock(&w->mu);
	return list;
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct witem	*list, *next;
	uint64_t	 v;

	(void)what;
	/* Read first: a post after the list is taken below wakes us again. */
	if (read(fd, &v, sizeof(v)) == -1 && errno != EAGAIN)
		log_error("event=worker_wake_failed worker=%u error=\"%s\"", w->index,
		    strerror(errno));
	for (list = take_queue(w, false); list != NULL; list = next) {
		next = list->next;
		run(w, list);
	}
}

/* conn.c's on_drained for a worker loop: the last worker to drain tells main. */
static void
worker_loop_drained(struct loop *l)
{
	struct worker	*w = (struct worker *)((char *)l - offsetof(struct worker, loop));
	uint64_t	 one = 1;

	if (w->drained)
		return;
	w->drained = true;
	if (__atomic_add_fetch(&w->ws->ndrained, 1, __ATOMIC_ACQ_REL) == w->ws->n &&
	    write(w->ws->done_fd, &one, sizeof(one)) == -1)
		log_error("event=worker_wake_failed error=\"%s\"", strerror(errno));
}

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workers	*ws = arg;
	uint64_t	 v;

	(void)what;
	if (read(fd, &v, sizeof(v)) == -1)
		return;
	ws->on_drained(ws->arg);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct loop	*l = &w->loop;
	struct witem	*list, *next;
	char		 name[16];

	/*
	 * "wsr-wN" in /proc/PID/task/TID/comm: per-thread CPU can be told apart.
	 * N counts from 1, as the metrics' worker label (the main loop is 0).
	 */
	snprintf(name, sizeof(name), "wsr-w%u", w->index + 1);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	self_index = w->index;
	handler_set_thread_base(w->base);
	/* Here, not in worker_init: create()'s timers must be armed by this thread. */
	handler_loop_take(l->routes, w->index);
	event_base_dispatch(w->base);

	for (list = take_queue(w, true); list != NULL; list = next) {
		next = list->next;
		discard(w, list);
	}
	/* Every connection's on_close runs here, on its own thread. */
	l->per_ip = NULL;	/* shared: freed by workers_stop */
	loop_free(l);
	exec_thread_end();
	/* Its per-loop instances' destroy() runs here, while its base is alive. */
	handler_loop_release(l->routes, w->index);
	l->routes = NULL;
	SSL_CTX_free(l->tls_ctx);
	l->tls_ctx = NULL;
	/* After destroy(): a plugin thread may call wsr_handle_* until joined there. */
	handle_detach(w->index);
	event_free(w->wake_ev);
	w->wake_ev = NULL;
	event_base_free(w->base);
	w->base = NULL;
	return NULL;
}

/* The acceptor's dispatch hook (listener.c calls it instead of conn_accept_opts). */
static void
dispatch(struct loop *acc, int fd, const struct sockaddr *sa, socklen_t salen, unsigned opts)
{
	struct workers	*ws = acc->dispatch_arg;
	struct worker	*w;
	struct witem	*it;
	size_t		 total = 0, best = SIZE_MAX, v;
	unsigned	 i, k, pick = 0;

	for (k = 0; k < ws->n; k++) {
		i = (ws->rr + k) % ws->n;
		v = __atomic_load_n(&ws->w[i].loop.live, __ATOMIC_RELAXED);
		total += v;
		if (v < best) {
			best = v;
			pick = i;
		}
	}
	ws->rr = (pick + 1) % ws->n;
	w = &ws->w[pick];
	if ((it = calloc(1, sizeof(*it))) == NULL ||
	    (size_t)salen > sizeof(it->u.acc.ss)) {
		log_error("event=accept_failed reason=\"out of memory\"");
		free(it);
		close(fd);
		return;
	}
	if (total + 1 > acc->max_connections)
		opts |= CONN_FULL;
	it->kind = W_ACCEPT;
	it->u.acc.fd = fd;
	it->u.acc.opts = opts;
	it->u.acc.salen = salen;
	memcpy(&it->u.acc.ss, sa, salen);
	__atomic_fetch_add(&w->loop.live, 1, __ATOMIC_RELAXED);
	if (push(w, it) == -1)
		discard(w, it);
}

void
worker_post(unsigned idx, void (*fn)(void *, int), void *arg)
{
	struct witem	*it;

	if (current == NULL || idx >= current->n || (it = calloc(1, sizeof(*it))) == NULL) {
		fn(arg, 0);
		return;
	}
	it->kind = W_CALL;
	it->u.call.fn = fn;
	it->u.call.arg = arg;
	if (push(&current->w[idx], it) == -1) {
		free(it);
		fn(arg, 0);
	}
}

/* Posts the worker's preallocated drain or stop item (once). */
static void
post_simple(struct worker *w, struct witem **itp)
{
	struct witem	*it = *itp;

	if (it == NULL)
		return;
	*itp = NULL;
	if (push(w, it) == -1)
		free(it);
}

void
workers_reload(struct workers *ws, struct route_table *t, SSL_CTX *tls)
{
	struct loop	*acc = ws->acceptor;
	struct witem	*it;
	unsigned	 i;

	for (i = 0; i < ws->n; i++) {
		if ((it = calloc(1, sizeof(*it))) == NULL) {
			log_error("event=reload_partial worker=%u reason=\"out of memory\"", i);
			continue;
		}
		it->kind = W_RELOAD;
		route_table_ref(t);
		it->u.rl.t = t;
		if (tls != NULL && SSL_CTX_up_ref(tls) == 1)
			it->u.rl.tls = tls;
		it->u.rl.max_per_ip = acc->max_per_ip;
		it->u.rl.handshake_timeout_ms = acc->handshake_timeout_ms;
		it->u.rl.proxy_protocol_timeout_ms = acc->proxy_protocol_timeout_ms;
		it->u.rl.linger_ms = acc->linger_ms;
		it->u.rl.drain_window_ms = acc->drain_window_ms;
		if (push(&ws->w[i], it) == -1)
			discard(&ws->w[i], it);
	}
}

void
workers_drain(struct workers *ws, uint16_t code)
{
	unsigned	i;

	ws->drain_code = code;
	for (i = 0; i < ws->n; i++)
		post_simple(&ws->w[i], &ws->w[i].drain_it);
}

size_t
workers_nconns(struct workers *ws, size_t *counts, size_t n)
{
	size_t		total = 0, v;
	unsigned	i;

	for (i = 0; i < ws->n; i++) {
		v = __atomic_load_n(&ws->w[i].loop.live, __ATOMIC_RELAXED);
		if (counts != NULL && i < n)
			counts[i] = v;
		total += v;
	}
	return total;
}

static int
worker_init(struct workers *ws, struct worker *w, unsigned i)
{
	struct loop	*acc = ws->acceptor, *l = &w->loop;

	w->ws = ws;
	w->index = i;
	w->efd = -1;
	w->head = NULL;
	w->tail = &w->head;
	if (pthread_mutex_init(&w->mu, NULL) != 0 ||
	    (w->drain_it = calloc(1, sizeof(*w->drain_it))) == NULL ||
	    (w->stop_it = calloc(1, sizeof(*w->stop_it))) == NULL)
		return -1;
	w->drain_it->kind = W_DRAIN;
	w->stop_it->kind = W_STOP;
	if ((w->base = event_base_new()) == NULL || loop_init(l, w->base) == -1)
		return -1;
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (w->wake_ev = event_new(w->base, w->efd, EV_READ | EV_PERSIST, wake_cb, w)) == NULL ||
	    event_add(w->wake_ev, NULL) == -1 || handle_attach(i, w->base) == -1)
		return -1;
	w->handles = true;
	l->index = i;
	route_table_ref(acc->routes);
	l->routes = acc->routes;
	if (acc->tls_ctx != NULL && SSL_CTX_up_ref(acc->tls_ctx) == 1)
		l->tls_ctx = acc->tls_ctx;
	l->max_connections = UINT64_MAX;	/* the acceptor counts (CONN_FULL) */
	l->max_per_ip = acc->max_per_ip;
	l->per_ip = ws->per_ip;
	l->ip_lock = &ws->ip_lock;
	l->handshake_timeout_ms = acc->handshake_timeout_ms;
	l->proxy_protocol_timeout_ms = acc->proxy_protocol_timeout_ms;
	l->linger_ms = acc->linger_ms;
	l->drain_window_ms = acc->drain_window_ms;
	l->on_drained = worker_loop_drained;
	l->counted = true;
	l->id_stride = ws->n;
	l->id_offset = i;
	return 0;
}

struct workers *
workers_start(unsigned n, struct loop *acceptor, void (*on_drained)(void *), void *arg,
    char **cause)
{
	struct workers	*ws;
	sigset_t	 all, old;
	unsigned	 i;

	if ((ws = calloc(1, sizeof(*ws))) == NULL ||
	    (ws->w = calloc(n, sizeof(*ws->w))) == NULL) {
		free(ws);
		*cause = strdup("out of memory");
		return NULL;
	}
	ws->n = n;
	ws->acceptor = acceptor;
	ws->on_drained = on_drained;
	ws->arg = arg;
	ws->done_fd = -1;
	if (pthread_mutex_init(&ws->ip_lock, NULL) != 0 ||
	    (ws->per_ip = peercount_new()) == NULL ||
	    (ws->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (ws->done_ev = event_new(acceptor->base, ws->done_fd, EV_READ | EV_PERSIST,
	    done_cb, ws)) == NULL || event_add(ws->done_ev, NULL) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (worker_init(ws, &ws->w[i], i) == -1)
			goto fail;
	}
	/* Signals stay with the main thread (libevent's handlers are on its loop). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	current = ws;
	for (i = 0; i < n; i++) {
		if (pthread_create(&ws->w[i].thread, NULL, worker_main, &ws->w[i]) != 0)
			break;
		ws->w[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i < n)
		goto fail;
	acceptor->dispatch_arg = ws;
	acceptor->dispatch = dispatch;
	log_info("event=workers_started count=%u", n);
	return ws;
fail:
	*cause = strdup("cannot start the worker threads");
	workers_stop(ws);
	return NULL;
}

void
workers_stop(struct workers *ws)
{
	struct worker	*w;
	unsigned	 i;

	if (ws == NULL)
		return;
	ws->acceptor->dispatch = NULL;
	for (i = 0; i < ws->n; i++)
		if (ws->w[i].started)
			post_simple(&ws->w[i], &ws->w[i].stop_it);
	for (i = 0; i < ws->n; i++) {
		w = &ws->w[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		else {
			/* Set up but never run: free it here. */
			w->loop.per_ip = NULL;
			if (w->loop.rbuf != NULL)
				loop_free(&w->loop);
			route_table_unref(w->loop.routes, handler_destroy_instance);
			SSL_CTX_free(w->loop.tls_ctx);
			if (w->handles)
				handle_detach(i);
			if (w->wake_ev != NULL)
				event_free(w->wake_ev);
			if (w->base != NULL)
				event_base_free(w->base);
		}
		free(w->drain_it);
		free(w->stop_it);
		if (w->efd != -1)
			close(w->efd);
		pthread_mutex_destroy(&w->mu);
	}
	current = NULL;
	if (ws->done_ev != NULL)
		event_free(ws->done_ev);
	if (ws->done_fd != -1)
		close(ws->done_fd);
	peercount_free(ws->per_ip);
	pthread_mutex_destroy(&ws->ip_lock);
	free(ws->w);
	free(ws);
}
