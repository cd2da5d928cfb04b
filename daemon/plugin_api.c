/*
 * plugin_api.c — the wsr_timer_* part of plugin.h: one libevent timer per
 * wsr_timer, on the daemon's loop. Routes are created (create() may start
 * timers) before the loop exists; such timers wait on a list and are armed
 * by handler_set_event_base().
 */
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include <wsrouted/plugin.h>

#include "handler.h"

struct wsr_timer {
	struct event		 ev;
	bool			 assigned;	/* ev is set up on the base */
	bool			 waiting;	/* on the list, for the loop to start */
	unsigned long long	 ms;
	void			(*cb)(void *);
	void			*arg;
	struct wsr_timer	*next, **pprev;
};

static struct event_base	*api_base;
static struct wsr_timer		*waiting;

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct wsr_timer	*t = arg;

	(void)fd;
	(void)what;
	t->cb(t->arg);		/* may start, stop or free t */
}

static int
timer_arm(struct wsr_timer *t)
{
	struct timeval	tv;

	if (!t->assigned) {
		if (evtimer_assign(&t->ev, api_base, timer_fire, t) == -1)
			return -1;
		t->assigned = true;
	}
	tv.tv_sec = t->ms / 1000;
	tv.tv_usec = (t->ms % 1000) * 1000;
	return evtimer_add(&t->ev, &tv);
}

static void
unwait(struct wsr_timer *t)
{
	if (!t->waiting)
		return;
	*t->pprev = t->next;
	if (t->next != NULL)
		t->next->pprev = t->pprev;
	t->waiting = false;
}

/* A worker thread's own loop (workers > 1): backend's bufferevents go there. */
static __thread struct event_base *thread_base;

struct event_base *
handler_event_base(void)
{
	return thread_base != NULL ? thread_base : api_base;
}

void
handler_set_thread_base(struct event_base *base)
{
	thread_base = base;
}

void
handler_set_event_base(struct event_base *base)
{
	struct wsr_timer	*t;

	api_base = base;
	while ((t = waiting) != NULL) {
		unwait(t);
		timer_arm(t);
	}
}

struct wsr_timer *
wsr_timer_new(void (*cb)(void *arg), void *arg)
{
	struct wsr_timer	*t;

	if (cb == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	return t;
}

int
wsr_timer_start(struct wsr_timer *t, unsigned long long ms)
{
	/* A week, as for every duration of the config. */
	if (t == NULL || ms > 7ULL * 24 * 3600 * 1000)
		return -1;
	t->ms = ms;
	if (api_base == NULL) {
		if (!t->waiting) {
			t->next = waiting;
			t->pprev = &waiting;
			if (waiting != NULL)
				waiting->pprev = &t->next;
			waiting = t;
			t->waiting = true;
		}
		return 0;
	}
	return timer_arm(t);
}

void
wsr_timer_stop(struct wsr_timer *t)
{
	if (t == NULL)
		return;
	unwait(t);
	if (t->assigned)
		evtimer_del(&t->ev);
}

void
wsr_timer_free(struct wsr_timer *t)
{
	if (t == NULL)
		return;
	wsr_timer_stop(t);
	free(t);
}
