/*
 * plugin_api.c — the wsr_timer_* part of plugin.h: one libevent timer per
 * wsr_timer, on the loop of the thread that first arms it. Routes are
 * created (create() may start timers) before the loop that runs them has
 * them; such timers wait on a list: the main loop's (armed by
 * handler_set_event_base()), or, while a per-loop instance is created
 * (handler_set_binding()), that instance's own list, armed by its loop's
 * thread when the loop takes the instance (handler_arm_pending()).
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

/* A worker thread's own loop (workers > 1): backend's bufferevents go there. */
static __thread struct event_base *thread_base;
/* While create() makes a per-loop instance: where its timers wait. */
static __thread struct wsr_timer **binding;

struct event_base *
handler_event_base(void)
{
	return thread_base != NULL ? thread_base : api_base;
}

/* On the calling thread's loop: the one whose instance started t. */
static int
timer_arm(struct wsr_timer *t)
{
	struct timeval	tv;

	if (!t->assigned) {
		if (evtimer_assign(&t->ev, handler_event_base(), timer_fire, t) == -1)
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

static void
wait_on(struct wsr_timer **list, struct wsr_timer *t)
{
	t->next = *list;
	t->pprev = list;
	if (*list != NULL)
		(*list)->pprev = &t->next;
	*list = t;
	t->waiting = true;
}

void
handler_set_binding(struct wsr_timer **pending)
{
	binding = pending;
}

void
handler_arm_pending(struct wsr_timer **pending)
{
	struct wsr_timer	*t;

	while ((t = *pending) != NULL) {
		unwait(t);
		timer_arm(t);
	}
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
	if (t->waiting)
		return 0;
	if (!t->assigned && binding != NULL) {
		wait_on(binding, t);
		return 0;
	}
	if (!t->assigned && handler_event_base() == NULL) {
		wait_on(&waiting, t);
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
