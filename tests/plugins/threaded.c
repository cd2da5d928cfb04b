/*
 * threaded.c — a plugin with its own thread, for the connection-handle
 * tests (run under ThreadSanitizer too). The thread sends "tick N" to every
 * connection it knows through wsr_handle_send, keeps sending to connections
 * after their on_close, and counts: a late send must be refused (-1) once
 * on_close has run, never accepted. The counts are logged by destroy():
 *   event=threaded_stats sent=N late_refused=N late_accepted=N
 * A client message "close" makes the thread close that connection with 4000
 * through wsr_handle_close.
 *
 * WSR_HANDLER_PER_LOOP: all of an instance's state is under its mutex and
 * nothing is static, so with workers = 2 it runs as two instances, each
 * with its own thread, and is the TSan witness for handles across loops.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wsrouted/plugin.h>

#define MAX_ENTRIES	4096

struct entry {
	wsr_handle_t	h;
	bool		closed;		/* on_close ran */
	bool		close_req;	/* the client asked for wsr_handle_close */
	bool		used;
};

struct threaded {
	pthread_mutex_t	 mu;
	pthread_t	 thread;
	bool		 stop;
	struct entry	 e[MAX_ENTRIES];
	unsigned long	 sent, late_refused, late_accepted;
};

static void *
run(void *arg)
{
	struct threaded		*t = arg;
	struct timespec		 ts = { 0, 1000000 };
	struct entry		 snap[MAX_ENTRIES];
	char			 msg[32];
	unsigned long		 n = 0;
	size_t			 i;
	int			 rv;

	for (;;) {
		pthread_mutex_lock(&t->mu);
		if (t->stop) {
			pthread_mutex_unlock(&t->mu);
			break;
		}
		memcpy(snap, t->e, sizeof(snap));
		pthread_mutex_unlock(&t->mu);
		for (i = 0; i < MAX_ENTRIES; i++) {
			if (!snap[i].used)
				continue;
			if (snap[i].close_req && !snap[i].closed) {
				wsr_handle_close(snap[i].h, 4000, "asked for it");
				continue;
			}
			snprintf(msg, sizeof(msg), "tick %lu", n++);
			rv = wsr_handle_send(snap[i].h, WSR_TEXT, msg, strlen(msg));
			pthread_mutex_lock(&t->mu);
			if (!snap[i].closed && rv == 0)
				t->sent++;
			if (snap[i].closed) {
				/* on_close ran before our snapshot: the handle is dead. */
				if (rv == 0)
					t->late_accepted++;
				else
					t->late_refused++;
				t->e[i].used = false;
			}
			pthread_mutex_unlock(&t->mu);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *
th_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct threaded	*t;

	(void)opts;
	if (nopts > 0) {
		if (asprintf(cause, "%s: the threaded plugin takes no options", opts[0].key) == -1)
			*cause = NULL;
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	if (pthread_create(&t->thread, NULL, run, t) != 0) {
		free(t);
		*cause = strdup("cannot start the thread");
		return NULL;
	}
	return t;
}

static void
th_destroy(void *self)
{
	struct threaded	*t = self;

	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	wsr_log(NULL, WSR_LOG_INFO, "event=threaded_stats sent=%lu late_refused=%lu "
	    "late_accepted=%lu", t->sent, t->late_refused, t->late_accepted);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int
th_on_open(void *self, struct wsr_conn *c)
{
	struct threaded	*t = self;
	size_t		 i;

	pthread_mutex_lock(&t->mu);
	for (i = 0; i < MAX_ENTRIES && t->e[i].used; i++)
		;
	if (i < MAX_ENTRIES) {
		memset(&t->e[i], 0, sizeof(t->e[i]));
		t->e[i].used = true;
		t->e[i].h = wsr_conn_handle(c);
	}
	pthread_mutex_unlock(&t->mu);
	return i < MAX_ENTRIES ? 0 : -1;
}

static struct entry *
lookup(struct threaded *t, wsr_handle_t h)
{
	size_t	i;

	for (i = 0; i < MAX_ENTRIES; i++)
		if (t->e[i].used && t->e[i].h == h)
			return &t->e[i];
	return NULL;
}

static void
th_on_message(void *self, struct wsr_conn *c, int op, const void *data, size_t len)
{
	struct threaded	*t = self;
	struct entry	*e;

	if (op != WSR_TEXT || len != 5 || memcmp(data, "close", 5) != 0)
		return;
	pthread_mutex_lock(&t->mu);
	if ((e = lookup(t, wsr_conn_handle(c))) != NULL)
		e->close_req = true;
	pthread_mutex_unlock(&t->mu);
}

static void
th_on_close(void *self, struct wsr_conn *c, int code)
{
	struct threaded	*t = self;
	struct entry	*e;

	(void)code;
	pthread_mutex_lock(&t->mu);
	if ((e = lookup(t, wsr_conn_handle(c))) != NULL)
		e->closed = true;	/* the thread keeps trying, and must fail */
	pthread_mutex_unlock(&t->mu);
}

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI,
	.name = "threaded",
	.create = th_create,
	.destroy = th_destroy,
	.on_open = th_on_open,
	.on_message = th_on_message,
	.on_close = th_on_close,
	.flags = WSR_HANDLER_PER_LOOP,
};
