/*
 * test_timer.c — unit tests for the timing wheel (daemon/timer.c), on a real
 * libevent base: entries fire once, in time, may cancel or reschedule each
 * other from their callbacks, and a tick looks only at the entries that are
 * due (issue 8: the cost of a tick does not grow with the idle connections
 * whose deadlines are further out).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "timer.h"

#define NFAR	20000
#define NNEAR	200

struct ent {
	struct timer_entry	 tm;
	int			 fired;
	struct ent		*victim;	/* cancelled by this one's callback */
};

struct ctx {
	struct timer_wheel	 w;
	struct event_base	*base;
	size_t			 fired;
	size_t			 want;
	uint64_t		 late_ms;	/* worst lateness seen */
};

static void
on_fire(struct timer_entry *e, void *arg)
{
	struct ctx	*x = arg;
	struct ent	*n = (struct ent *)e;
	uint64_t	 now = timer_now_ms();

	n->fired++;
	x->fired++;
	if (now > e->expires && now - e->expires > x->late_ms)
		x->late_ms = now - e->expires;
	if (n->victim != NULL)
		timer_cancel(&x->w, &n->victim->tm);
	if (x->fired >= x->want)
		event_base_loopbreak(x->base);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Runs the loop until `want` entries fired or 3 s passed (bounded). */
static void
run_until(struct ctx *x, size_t want)
{
	struct event	*guard;
	struct timeval	 tv = { 3, 0 };

	x->want = want;
	guard = evtimer_new(x->base, guard_cb, x->base);
	assert_non_null(guard);
	evtimer_add(guard, &tv);
	event_base_dispatch(x->base);
	event_free(guard);
}

static void
setup_ctx(struct ctx *x)
{
	memset(x, 0, sizeof(*x));
	x->base = event_base_new();
	assert_non_null(x->base);
	assert_int_equal(timer_wheel_init(&x->w, x->base, on_fire, x), 0);
}

static void
teardown_ctx(struct ctx *x)
{
	timer_wheel_free(&x->w);
	event_base_free(x->base);
}

/*
 * 20,000 entries spread from 2 s to 80 s out, over every slot of the wheel
 * (idle connections waiting for their ping or timeout), and 200 due within
 * 150 ms: the ticks that fire the 200 look at exactly those 200. (With a
 * turn shorter than 80 s the far entries would share the near ones' slots.)
 */
static void
test_tick_visits_only_due_entries(void **state)
{
	struct ctx	 x;
	struct ent	*far, *near;
	uint64_t	 now;
	size_t		 i;

	(void)state;
	setup_ctx(&x);
	far = calloc(NFAR, sizeof(*far));
	near = calloc(NNEAR, sizeof(*near));
	assert_non_null(far);
	assert_non_null(near);
	now = timer_now_ms();
	for (i = 0; i < NFAR; i++)
		timer_schedule(&x.w, &far[i].tm, now + 2000 + (uint64_t)i * 39 / 10);
	for (i = 0; i < NNEAR; i++)
		timer_schedule(&x.w, &near[i].tm, now + 20 + i % 130);
	assert_int_equal(x.w.count, NFAR + NNEAR);
	run_until(&x, NNEAR);
	assert_int_equal(x.fired, NNEAR);
	for (i = 0; i < NNEAR; i++)
		assert_int_equal(near[i].fired, 1);
	assert_int_equal(x.w.visited, NNEAR);
	assert_int_equal(x.w.count, NFAR);
	/* Coarse clock (~4 ms) + one 20 ms tick; generous for a loaded machine. */
	assert_true(x.late_ms < 1000);
	for (i = 0; i < NFAR; i++) {
		assert_int_equal(far[i].fired, 0);
		timer_cancel(&x.w, &far[i].tm);
	}
	assert_int_equal(x.w.count, 0);
	free(far);
	free(near);
	teardown_ctx(&x);
}

/*
 * Callbacks cancel entries of the same slot still waiting to be looked at,
 * and entries of a later turn share a slot with due ones: every due entry
 * that was not cancelled fires exactly once, the cancelled never.
 */
static void
test_cancel_from_callback_and_later_turns(void **state)
{
	struct ctx	 x;
	struct ent	 e[64], later;
	uint64_t	 now;
	size_t		 i;

	(void)state;
	setup_ctx(&x);
	memset(e, 0, sizeof(e));
	memset(&later, 0, sizeof(later));
	now = timer_now_ms();
	/* all in one slot: the same expiry */
	for (i = 0; i < 64; i++) {
		timer_schedule(&x.w, &e[i].tm, now + 60);
		/* pairs: whichever of the two fires first cancels the other */
		e[i].victim = &e[i ^ 1];
	}
	/* one turn later, same slot */
	timer_schedule(&x.w, &later.tm, now + 60 + (uint64_t)WHEEL_TICK_MS * WHEEL_SLOTS);
	/* 32 fire; then 200 ms more in which nothing else may. */
	run_until(&x, 32);
	x.want = SIZE_MAX;
	{
		struct event	*stop = evtimer_new(x.base, guard_cb, x.base);
		struct timeval	 tv = { 0, 200000 };

		evtimer_add(stop, &tv);
		event_base_dispatch(x.base);
		event_free(stop);
	}
	for (i = 0; i < 64; i += 2)
		assert_int_equal(e[i].fired + e[i + 1].fired, 1);
	assert_int_equal(x.fired, 32);
	assert_int_equal(later.fired, 0);
	assert_int_equal(x.w.count, 1);
	timer_cancel(&x.w, &later.tm);
	teardown_ctx(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tick_visits_only_due_entries),
		cmocka_unit_test(test_cancel_from_callback_and_later_turns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
