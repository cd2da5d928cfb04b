/*
 * timer.c — see timer.h.
 */
#include <time.h>

#include <event2/event.h>

#include "timer.h"

uint64_t
timer_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
wheel_arm(struct timer_wheel *w)
{
	struct timeval	tv = { 0, WHEEL_TICK_MS * 1000 };

	if (!evtimer_pending(w->ev, NULL))
		evtimer_add(w->ev, &tv);
}

static void
wheel_tick(evutil_socket_t fd, short what, void *arg)
{
	struct timer_wheel	*w = arg;
	struct timer_entry	*e, *list;
	uint64_t		 now = timer_now_ms(), target = now / WHEEL_TICK_MS;
	size_t			 slot;

	(void)fd;
	(void)what;
	/* Catch up on every tick since the last one (the loop may have been busy). */
	while (w->tick < target && w->count > 0) {
		w->tick++;
		slot = w->tick & (WHEEL_SLOTS - 1);
		/*
		 * Detach the slot and take its entries one by one: fire may
		 * cancel or reschedule any entry, those still on `list` too
		 * (they unlink through pprev), and each is looked at once.
		 */
		list = w->slots[slot];
		w->slots[slot] = NULL;
		if (list != NULL)
			list->pprev = &list;
		while ((e = list) != NULL) {
			w->visited++;
			list = e->next;
			if (list != NULL)
				list->pprev = &list;
			if (e->expires > now) {
				/* A later turn of the wheel: back into the slot. */
				e->next = w->slots[slot];
				e->pprev = &w->slots[slot];
				if (e->next != NULL)
					e->next->pprev = &e->next;
				w->slots[slot] = e;
				continue;
			}
			e->next = NULL;
			e->pprev = NULL;
			w->count--;
			w->fire(e, w->arg);
		}
	}
	w->tick = target;
	if (w->count > 0)
		wheel_arm(w);
}

int
timer_wheel_init(struct timer_wheel *w, struct event_base *base, timer_fire_cb fire,
    void *arg)
{
	size_t	i;

	for (i = 0; i < WHEEL_SLOTS; i++)
		w->slots[i] = NULL;
	w->tick = timer_now_ms() / WHEEL_TICK_MS;
	w->count = 0;
	w->visited = 0;
	w->fire = fire;
	w->arg = arg;
	w->ev = evtimer_new(base, wheel_tick, w);
	return w->ev != NULL ? 0 : -1;
}

void
timer_wheel_free(struct timer_wheel *w)
{
	if (w->ev != NULL)
		event_free(w->ev);
	w->ev = NULL;
}

void
timer_cancel(struct timer_wheel *w, struct timer_entry *e)
{
	if (e->pprev == NULL)
		return;
	*e->pprev = e->next;
	if (e->next != NULL)
		e->next->pprev = e->pprev;
	e->next = NULL;
	e->pprev = NULL;
	w->count--;
}

void
timer_schedule(struct timer_wheel *w, struct timer_entry *e, uint64_t expires)
{
	uint64_t	t = (expires + WHEEL_TICK_MS - 1) / WHEEL_TICK_MS;
	size_t		slot;

	timer_cancel(w, e);
	/* An empty wheel is not ticked: bring it up to date before inserting. */
	if (w->count == 0)
		w->tick = timer_now_ms() / WHEEL_TICK_MS;
	if (t <= w->tick)
		t = w->tick + 1;
	slot = t & (WHEEL_SLOTS - 1);
	e->expires = expires;
	e->next = w->slots[slot];
	e->pprev = &w->slots[slot];
	if (e->next != NULL)
		e->next->pprev = &e->next;
	w->slots[slot] = e;
	w->count++;
	wheel_arm(w);
}
