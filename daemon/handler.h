/*
 * handler.h — the registry of handler types (built-ins now; plugins later
 * resolve through the same lookup) and the binding of a route table's
 * routes to handler instances.
 */
#ifndef WSR_HANDLER_H
#define WSR_HANDLER_H

#include <stdbool.h>
#include <stdint.h>

#include <wsrouted/plugin.h>

#include "config.h"

struct route_table;
struct route;

extern const struct wsr_handler handler_echo;
extern const struct wsr_handler handler_broadcast;
extern const struct wsr_handler handler_backend;
extern const struct wsr_handler handler_exec;

#ifndef PLUGINDIR
#define PLUGINDIR	"/usr/lib/wsrouted"
#endif

struct event_base;
/* The loop wsr_timer_* use; arms the timers started before it existed. */
void	handler_set_event_base(struct event_base *base);
/*
 * The calling loop thread stops, its connections closed: kills and reaps
 * the exec children it spawned that are still in their grace period (their
 * events are on its base). Before that base is freed.
 */
void	exec_thread_end(void);
/* The calling thread's loop, for built-ins that watch descriptors (backend). */
struct event_base *handler_event_base(void);
/* A worker thread's loop (worker.c); threads without one use the main loop. */
void	handler_set_thread_base(struct event_base *base);
struct wsr_timer;
/*
 * While a per-loop instance is created: timers it starts wait on *pending
 * (NULL: back to the calling thread's loop). handler_arm_pending arms the
 * ones waiting on *pending on the calling thread's loop.
 */
void	handler_set_binding(struct wsr_timer **pending);
void	handler_arm_pending(struct wsr_timer **pending);

/*
 * Worker threads (worker.c), for built-ins that span them (broadcast):
 * how many loops serve connections (1: no worker threads), which one the
 * caller runs on (0..count-1; the main thread is 0 then), and a way to
 * run fn(arg, 1) on worker idx's thread, in order of posting. If the
 * worker is gone (shutdown), fn(arg, 0) runs instead, to free arg.
 */
#define WORKERS_MAX	64
unsigned	worker_count(void);
unsigned	worker_self(void);
void		worker_post(unsigned idx, void (*fn)(void *arg, int run), void *arg);

/*
 * Connection handles (xthread.c): the loop side of wsr_handle_*. Each loop
 * that serves connections attaches its base under its index (the main
 * loop as 0 through handle_init; worker i replaces index i before its thread
 * starts and detaches on its thread before its base is freed); a handle's
 * messages are delivered on the loop its connection registered from.
 */
int	handle_init(struct event_base *base);
int	handle_attach(unsigned idx, struct event_base *base);
void	handle_detach(unsigned idx);
void	handle_shutdown(void);
int	handle_register(uint64_t id, struct wsr_conn *c, unsigned idx);
void	handle_unregister(uint64_t id);

/*
 * For built-ins (broadcast): a receiver of c's route fell max_queue messages
 * behind and was closed (closed) or missed one message (!closed); counted
 * in the route's metrics.
 */
void	conn_note_slow_consumer(struct wsr_conn *c, bool closed);

/* The built-in handler called name, or NULL. */
const struct wsr_handler *handler_find(const char *name);

/*
 * Binds every route of t to its handler and creates one instance per route
 * (nloops per route for WSR_HANDLER_PER_LOOP handlers when nloops > 1: the
 * number of loops that will serve t's connections; a plugin without the
 * flag is then refused).
 * "plugin:NAME" handlers are loaded from plugin_dir/NAME.so (dlopen keeps one
 * copy per process however many routes name it) and export the symbol
 * `wsr_handler`, a struct wsr_handler.
 * On failure returns -1 with a malloc'd "FILE:LINE: message" in *cause and
 * leaves no instance behind.
 */
int	handler_bind_routes(struct route_table *t, unsigned nloops, char **cause);
/*
 * route_table_unref's callback: destroys one route's instance (and the
 * per-loop instances no loop took, see below).
 */
void	handler_destroy_instance(struct route *r);
/*
 * Loop idx takes a reference to t (as its current table, or for one of its
 * connections; on the loop's thread, beside its route_table_ref), or lets
 * one go (handler_loop_release, which also does the route_table_unref).
 * For per-loop instances the first take arms the timers idx's instances
 * started in create(), and the last release destroys those instances,
 * there, on their own thread; tables without them only count the shared
 * reference.
 */
void	handler_loop_take(struct route_table *t, unsigned idx);
void	handler_loop_release(struct route_table *t, unsigned idx);

#endif
