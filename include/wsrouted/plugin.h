/*
 * wsrouted/plugin.h — the handler interface of wsrouted.
 *
 * This is the only public header. Built-in handlers (echo, …) and plugins
 * are written against it alike: a handler is a `struct wsr_handler` vtable,
 * instantiated once per [route] that names it, and it talks back to the
 * daemon only through the wsr_* functions below.
 *
 * Threading: every callback of an instance runs on one event loop thread,
 * the loop the instance belongs to; the wsr_* functions must be called from
 * there (inside a callback), except wsr_handle_send/wsr_handle_close, which
 * any thread may call. By default a route has one instance and the daemon
 * runs it on its only loop: such a handler is refused when `workers` gives
 * more than one loop. A handler that sets WSR_HANDLER_PER_LOOP in `flags`
 * instead gets one instance per loop (see there), each still on one thread.
 *
 * Versioning: WSR_PLUGIN_ABI changes whenever this header changes
 * incompatibly; the daemon refuses a handler built against an ABI it does
 * not know. `abi` stays the first member of struct wsr_handler in every
 * version. ABI 2 appended `flags`; this daemon still loads ABI 1 handlers
 * (which have no `flags`, and so run on one loop only).
 *
 * Writing a plugin (see plugins/ in the source tree for two models):
 *
 *   #include <wsrouted/plugin.h>
 *   static void on_message(void *self, struct wsr_conn *c, int op,
 *       const void *data, size_t len) { wsr_send(c, op, data, len); }
 *   WSR_PLUGIN const struct wsr_handler wsr_handler = {
 *       .abi = WSR_PLUGIN_ABI, .name = "myecho", .on_message = on_message,
 *   };
 *
 *   cc -shared -fPIC $(pkg-config --cflags wsrouted-plugin) -o myecho.so myecho.c
 *
 * (In C++: extern "C" WSR_PLUGIN const wsr_handler wsr_handler = { ... };)
 *
 * and in the config:  [route /x]  handler = plugin:myecho  (the daemon loads
 * plugin_dir/myecho.so once per configuration, with RTLD_NOW|RTLD_LOCAL).
 * Keys of the [route] section that the daemon does not know reach create()
 * as options, in file order; create() must reject the ones it does not know
 * (a config error: `wsrouted -t` shows it, a reload keeps the old config).
 * A cause beginning with "KEY:" (an option's key) points at that option's
 * line. The daemon exports only the wsr_* functions below to plugins.
 *
 * Lifetime: a struct wsr_conn pointer is valid from on_open until on_close
 * returns, and must not be kept past it. A route's instance (create's
 * result) lives until the last connection using it has closed, so a config
 * reload never pulls an instance from under open connections.
 */
#ifndef WSROUTED_PLUGIN_H
#define WSROUTED_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WSR_PLUGIN_ABI	2

#if defined(__GNUC__)
#define WSR_API	__attribute__((visibility("default")))
#else
#define WSR_API
#endif

/* Marks the one symbol a plugin exports: `wsr_handler`. */
#define WSR_PLUGIN	WSR_API

/* Message opcodes, as on the wire. */
#define WSR_TEXT	0x1
#define WSR_BINARY	0x2

/* Log levels for wsr_log(). */
#define WSR_LOG_ERROR	0
#define WSR_LOG_WARN	1
#define WSR_LOG_INFO	2
#define WSR_LOG_DEBUG	3

struct wsr_conn;	/* opaque: one WebSocket connection */

/*
 * flags: WSR_HANDLER_PER_LOOP promises that the handler's instances share
 * no state that is not synchronised (nothing static, or only what is under
 * a lock or atomic), so that several of them may run at once, each on its
 * own thread. With `workers` > 1 the daemon then, for every route naming
 * the handler:
 *  - calls create() once per worker loop, with the same options (N
 *    instances); if any fails, the route is a config error as with one
 *    instance, and the instances already made are destroyed;
 *  - gives each connection the instance of the loop it was accepted on,
 *    and runs all its callbacks on that loop's thread; a timer started
 *    in create() fires on that instance's loop, as does any wsr_timer
 *    started from its callbacks;
 *  - calls destroy() for each instance on its own loop's thread once that
 *    loop has no connection using it left (after a reload, or when the
 *    loop stops); an instance that never reached its loop (`wsrouted -t`,
 *    a reload refused after create()) is destroyed with the configuration,
 *    on whichever thread lets go of it last, its timers never having fired.
 * Connections of one instance are not visible to another except through
 * handles (wsr_handle_send/close work from any thread, for a connection on
 * any loop). With one loop (workers = 1) the flag changes nothing.
 */
#define WSR_HANDLER_PER_LOOP	0x1u

/* A route option (a key of the [route] section the daemon does not know). */
struct wsr_option {
	const char	*key;
	const char	*value;
};

struct wsr_handler {
	int		 abi;		/* WSR_PLUGIN_ABI */
	const char	*name;		/* as written after "handler =" */
	/*
	 * Called once per route (once per loop and route with
	 * WSR_HANDLER_PER_LOOP). Returns the route's state (may be NULL only
	 * if the handler keeps none and sets no *cause), or NULL with *cause
	 * set to a malloc'd message (a config error).
	 */
	void		*(*create)(const struct wsr_option *opts, size_t nopts, char **cause);
	void		 (*destroy)(void *self);
	/*
	 * A connection is being upgraded; non-zero refuses it: 503 (e.g. full)
	 * and 500 are answered as such, any other value as 403.
	 */
	int		 (*on_open)(void *self, struct wsr_conn *c);
	/* A whole message; data is valid until the callback returns. */
	void		 (*on_message)(void *self, struct wsr_conn *c, int opcode,
			    const void *data, size_t len);
	/* The connection is gone (code as received or sent, 1006 if none). */
	void		 (*on_close)(void *self, struct wsr_conn *c, int code);
	/*
	 * Optional: everything queued for c has been handed to the kernel
	 * (wsr_conn_pending(c) is 0 again after having been non-zero). A
	 * handler that sends faster than a peer reads keeps its own bounded
	 * queue and refills from here, instead of letting the daemon buffer.
	 */
	void		 (*on_drain)(void *self, struct wsr_conn *c);
	/* ABI 2: WSR_HANDLER_PER_LOOP or 0 (the daemon reads it only when abi >= 2). */
	unsigned	 flags;
};

/*
 * Sends a whole message (WSR_TEXT, which must be UTF-8, or WSR_BINARY); 0 on
 * success, -1 if the connection is closing or closed. data is not referenced
 * after the call returns: what the kernel does not take at once is copied.
 * Safe on any connection of the loop, not only the one whose callback runs
 * (a failure there never frees that connection during the call).
 */
WSR_API int	 wsr_send(struct wsr_conn *c, int opcode, const void *data, size_t len);
/* Starts the closing handshake with code (1000, 1001, 1003, 1008, 1011, 3000-4999). */
WSR_API void	 wsr_close(struct wsr_conn *c, int code, const char *reason);

/*
 * Stops (on = 0) or resumes (on = 1) reading from the peer: backpressure for
 * a handler whose own destination is slow. Pings, timeouts and closing go on.
 */
WSR_API void	 wsr_conn_set_reading(struct wsr_conn *c, int on);

/*
 * Bytes queued for c that the kernel has not taken yet (0: the next
 * wsr_send goes straight to the socket).
 */
WSR_API size_t	 wsr_conn_pending(const struct wsr_conn *c);

WSR_API const char *wsr_conn_path(const struct wsr_conn *c);	/* "/echo" */
WSR_API const char *wsr_conn_query(const struct wsr_conn *c);	/* after '?', or NULL */
WSR_API const char *wsr_conn_peer(const struct wsr_conn *c);	/* "127.0.0.1:4242" */
WSR_API const char *wsr_conn_subprotocol(const struct wsr_conn *c); /* or NULL */
/*
 * A request header of the upgrade (the first with that name, matched without
 * regard to case), or NULL. Kept for plugins only (built-ins get NULL), until
 * on_close returns.
 */
WSR_API const char *wsr_conn_header(const struct wsr_conn *c, const char *name);
WSR_API unsigned long long wsr_conn_id(const struct wsr_conn *c);
WSR_API void	*wsr_conn_data(const struct wsr_conn *c);
WSR_API void	 wsr_conn_set_data(struct wsr_conn *c, void *data);

/*
 * Connection handles: the only way to reach a connection from a plugin's own
 * threads (or from anywhere outside the connection's callbacks). A handle
 * is a number, never reused, that outlives its connection safely: once the
 * connection is closed (from just before on_close runs), every call with it
 * returns -1. wsr_handle_send copies data and queues it for the daemon's
 * loop (the one the connection lives on, whichever thread calls), which
 * sends it with wsr_send; 0 means queued (the connection may
 * still close before it goes out). -1 also when WSR_HANDLE_QUEUE_MAX bytes
 * from all threads are already waiting for the loop. Safe from any thread.
 * (wsr_send/wsr_close themselves are for the loop's callbacks only.)
 * wsr_conn_handle is for the loop's callbacks too (it registers the handle
 * on first use); it returns 0, which every wsr_handle_* call refuses, if the
 * daemon is out of memory. The handle is wsr_conn_handle's value, even
 * though it equals wsr_conn_id's.
 */
typedef unsigned long long wsr_handle_t;
#define WSR_HANDLE_QUEUE_MAX	(64u << 20)
WSR_API wsr_handle_t wsr_conn_handle(const struct wsr_conn *c);
WSR_API int	 wsr_handle_send(wsr_handle_t h, int opcode, const void *data, size_t len);
WSR_API int	 wsr_handle_close(wsr_handle_t h, int code, const char *reason);

/*
 * Timers, on the daemon's event loop, so that a plugin never touches the
 * loop itself. A timer is one-shot: cb(arg) runs once, ms after the last
 * wsr_timer_start (which re-arms a pending one); start it again from cb for
 * a periodic one. cb runs on the loop of the instance that started it. A
 * timer started in create(), before that loop runs the instance, is armed
 * when the loop takes the instance (at start, or when a reload reaches it). wsr_timer_free stops it (NULL is
 * fine); free every timer in on_close or destroy.
 */
struct wsr_timer;
WSR_API struct wsr_timer *wsr_timer_new(void (*cb)(void *arg), void *arg);	/* NULL: no memory */
WSR_API int	 wsr_timer_start(struct wsr_timer *t, unsigned long long ms);	/* 0 or -1 */
WSR_API void	 wsr_timer_stop(struct wsr_timer *t);
WSR_API void	 wsr_timer_free(struct wsr_timer *t);

/* Logs one line (c may be NULL); the daemon adds conn, peer and route. */
#if defined(__GNUC__)
WSR_API void	 wsr_log(const struct wsr_conn *c, int level, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
#else
WSR_API void	 wsr_log(const struct wsr_conn *c, int level, const char *fmt, ...);
#endif

#ifdef __cplusplus
}
#endif

#endif
