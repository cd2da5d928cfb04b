/*
 * perloop.c — a WSR_HANDLER_PER_LOOP plugin for the workers tests: it logs
 * on which thread each instance is made, its create() timer fires, and its
 * connections open, so that a test can check one instance per worker, each
 * used only on its own worker's thread:
 *   event=perloop_create instance=N tid=T
 *   event=perloop_timer instance=N tid=T     (a timer started in create())
 *   event=perloop_open instance=N tid=T
 *   event=perloop_destroy instance=N tid=T
 * A text message "all:X" is sent, as "N:X" (N the sender's instance), to
 * every open connection of every instance through wsr_handle_send, from the
 * sender's loop thread: handles across loops. Any other message is answered
 * with "instance N". Option fail_after = K: create() fails once K instances
 * have been made in this process (all-or-nothing binding).
 *
 * What instances share is process-wide and synchronised (the instance
 * counter is atomic, the connection list under a mutex), as the flag asks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wsrouted/plugin.h>

#define MAX_CONNS	1024

struct perloop {
	unsigned		 n;
	struct wsr_timer	*timer;
};

static unsigned		made;		/* __atomic: instances created */
static pthread_mutex_t	mu = PTHREAD_MUTEX_INITIALIZER;
static wsr_handle_t	conns[MAX_CONNS];	/* every instance's; 0: free */

static void
timer_cb(void *arg)
{
	struct perloop	*p = arg;

	wsr_log(NULL, WSR_LOG_INFO, "event=perloop_timer instance=%u tid=%ld", p->n,
	    (long)gettid());
}

static void *
pl_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct perloop	*p;
	unsigned long	 fail_after = 0;
	size_t		 i;

	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "fail_after") == 0)
			fail_after = strtoul(opts[i].value, NULL, 10);
		else {
			if (asprintf(cause, "%s: unknown option", opts[i].key) == -1)
				*cause = NULL;
			return NULL;
		}
	}
	if (fail_after > 0 && __atomic_load_n(&made, __ATOMIC_RELAXED) >= fail_after) {
		if (asprintf(cause, "fail_after: %lu instances made already", fail_after) == -1)
			*cause = NULL;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->timer = wsr_timer_new(timer_cb, p)) == NULL ||
	    wsr_timer_start(p->timer, 50) == -1) {
		if (p != NULL)
			wsr_timer_free(p->timer);
		free(p);
		*cause = strdup("out of memory");
		return NULL;
	}
	p->n = __atomic_add_fetch(&made, 1, __ATOMIC_RELAXED);
	wsr_log(NULL, WSR_LOG_INFO, "event=perloop_create instance=%u tid=%ld", p->n,
	    (long)gettid());
	return p;
}

static void
pl_destroy(void *self)
{
	struct perloop	*p = self;

	wsr_log(NULL, WSR_LOG_INFO, "event=perloop_destroy instance=%u tid=%ld", p->n,
	    (long)gettid());
	wsr_timer_free(p->timer);
	free(p);
}

static int
pl_on_open(void *self, struct wsr_conn *c)
{
	struct perloop	*p = self;
	wsr_handle_t	 h = wsr_conn_handle(c);
	size_t		 i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < MAX_CONNS && conns[i] != 0; i++)
		;
	if (i < MAX_CONNS)
		conns[i] = h;
	pthread_mutex_unlock(&mu);
	if (i == MAX_CONNS)
		return 503;
	wsr_log(c, WSR_LOG_INFO, "event=perloop_open instance=%u tid=%ld", p->n,
	    (long)gettid());
	return 0;
}

static void
pl_on_message(void *self, struct wsr_conn *c, int op, const void *data, size_t len)
{
	struct perloop	*p = self;
	char		 buf[256];
	int		 n;
	size_t		 i;

	if (op == WSR_TEXT && len >= 4 && len < 200 && memcmp(data, "all:", 4) == 0) {
		n = snprintf(buf, sizeof(buf), "%u:%.*s", p->n, (int)len - 4,
		    (const char *)data + 4);
		pthread_mutex_lock(&mu);
		for (i = 0; i < MAX_CONNS; i++)
			if (conns[i] != 0)
				wsr_handle_send(conns[i], WSR_TEXT, buf, (size_t)n);
		pthread_mutex_unlock(&mu);
		return;
	}
	n = snprintf(buf, sizeof(buf), "instance %u", p->n);
	wsr_send(c, WSR_TEXT, buf, (size_t)n);
}

static void
pl_on_close(void *self, struct wsr_conn *c, int code)
{
	wsr_handle_t	h = wsr_conn_handle(c);
	size_t		i;

	(void)self;
	(void)code;
	pthread_mutex_lock(&mu);
	for (i = 0; i < MAX_CONNS; i++)
		if (conns[i] == h)
			conns[i] = 0;
	pthread_mutex_unlock(&mu);
}

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI,
	.name = "perloop",
	.create = pl_create,
	.destroy = pl_destroy,
	.on_open = pl_on_open,
	.on_message = pl_on_message,
	.on_close = pl_on_close,
	.flags = WSR_HANDLER_PER_LOOP,
};
