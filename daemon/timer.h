/*
 * timer.h — one hashed timing wheel per event loop, ticked by one libevent
 * timer, instead of one event per connection. Each connection holds at most
 * one entry: its next deadline (handshake, ping, idle or close). Insert and
 * cancel are O(1); the owner re-checks its real state when the entry fires,
 * so activity never has to touch the wheel.
 */
#ifndef WSR_TIMER_H
#define WSR_TIMER_H

#include <stddef.h>
#include <stdint.h>

#define WHEEL_TICK_MS	20
/*
 * A power of two; one turn = 81.92 s, longer than every default deadline
 * (ping 25 s, timeout 60 s), so a tick looks only at entries that are due.
 * An entry further out (a longer timeout with pings off) stays in its slot
 * and is looked at once per turn until due. 32 KiB of slot heads per loop.
 */
#define WHEEL_SLOTS	4096

struct event_base;
struct event;

struct timer_entry {
	struct timer_entry	 *next;
	struct timer_entry	**pprev;	/* NULL when not scheduled */
	uint64_t		  expires;	/* ms, monotonic */
};

typedef void (*timer_fire_cb)(struct timer_entry *, void *arg);

struct timer_wheel {
	struct timer_entry	*slots[WHEEL_SLOTS];
	uint64_t		 tick;		/* last tick processed */
	size_t			 count;
	/*
	 * Entries the ticks have looked at, due or not: what a tick costs.
	 * With every deadline inside one turn it equals the entries fired
	 * (test_timer checks that a tick never scans the entries not due).
	 */
	uint64_t		 visited;
	struct event		*ev;
	timer_fire_cb		 fire;
	void			*arg;
};

/* Monotonic milliseconds (coarse clock: cheap, ~4 ms resolution). */
uint64_t timer_now_ms(void);

int	timer_wheel_init(struct timer_wheel *w, struct event_base *base,
	    timer_fire_cb fire, void *arg);
void	timer_wheel_free(struct timer_wheel *w);
/* (Re)schedules e to fire at or after `expires` (monotonic ms). */
void	timer_schedule(struct timer_wheel *w, struct timer_entry *e, uint64_t expires);
void	timer_cancel(struct timer_wheel *w, struct timer_entry *e);

#endif
