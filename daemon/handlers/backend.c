/*
 * backend.c — the built-in backend handler (websockify-style): each
 * WebSocket connection gets its own TCP or Unix-socket connection to the
 * backend; every message's payload is written to it, and every chunk the
 * backend sends becomes one message (binary, or text with `framing = text`).
 *
 * Options (route keys):
 *   backend = HOST:PORT | [V6]:PORT | unix:/PATH   (required; numeric hosts)
 *   framing = binary | text                        (binary)
 *   connect_timeout = MS                           (5000)
 *
 * Closing: backend refuses the connection → 1013 (try again later); other
 * connect failures and backend errors → 1011; backend EOF → 1000. The
 * backend connection is closed when the WebSocket one goes.
 *
 * Backpressure both ways: past BK_HIGH bytes waiting for the backend we
 * stop reading the client (wsr_conn_set_reading) until it is down to
 * BK_LOW; past BK_HIGH bytes waiting for the client we stop reading the
 * backend until on_drain.
 *
 * Text framing: a chunk is cut before an incomplete UTF-8 sequence at its
 * end (kept for the next chunk); invalid UTF-8 from the backend closes the
 * WebSocket with 1011, as a text message must be valid UTF-8.
 *
 * Uses libevent's bufferevents on the daemon's loop directly: a built-in is
 * part of the daemon (plugins would use a watcher API, not there yet).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <wsrouted/plugin.h>

#include "config.h"
#include "handler.h"
#include "utf8.h"

#define BK_HIGH		(1u << 20)
#define BK_LOW		(256u << 10)

struct backend {
	struct config_listen	 addr;		/* addr.spec: our copy of the value */
	bool			 text;
	unsigned long		 connect_timeout_ms;
};

struct bconn {
	struct backend		*b;
	struct wsr_conn		*c;
	struct bufferevent	*bev;
	struct event		*fail_ev;	/* a connect that failed in on_open */
	int			 fail_err;
	bool			 connected;
	bool			 closing;
};

static void
bk_destroy(void *self)
{
	struct backend	*b = self;

	if (b != NULL)
		free(b->addr.spec);
	free(b);
}

static void *
bk_fail(struct backend *b, char **cause, const char *fmt, const char *key, const char *v)
{
	if (asprintf(cause, fmt, key, v) == -1)
		*cause = NULL;
	bk_destroy(b);
	return NULL;
}

static void *
bk_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct backend		*b;
	unsigned long long	 n;
	char			*end;
	bool			 have = false;
	size_t			 i;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	b->connect_timeout_ms = 5000;
	for (i = 0; i < nopts; i++) {
		const char *k = opts[i].key, *v = opts[i].value;

		if (strcmp(k, "backend") == 0) {
			if (have)
				return bk_fail(b, cause, "%s: given twice, got '%s' too", k, v);
			if (v[0] == '*' || config_parse_listen(v, &b->addr) == -1 ||
			    (b->addr.kind == LISTEN_INET &&
			    ((b->addr.addr.ss_family == AF_INET &&
			    ((struct sockaddr_in *)&b->addr.addr)->sin_port == 0) ||
			    (b->addr.addr.ss_family == AF_INET6 &&
			    ((struct sockaddr_in6 *)&b->addr.addr)->sin6_port == 0))))
				return bk_fail(b, cause, "%s: expected HOST:PORT, [IPv6]:PORT "
				    "or unix:/PATH with a numeric host and a port, got '%s'", k, v);
			if ((b->addr.spec = strdup(v)) == NULL)
				return bk_fail(b, cause, "%s: out of memory%s", k, "");
			have = true;
		} else if (strcmp(k, "framing") == 0) {
			if (strcmp(v, "binary") == 0)
				b->text = false;
			else if (strcmp(v, "text") == 0)
				b->text = true;
			else
				return bk_fail(b, cause, "%s: expected binary or text, got '%s'", k, v);
		} else if (strcmp(k, "connect_timeout") == 0) {
			n = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || strcmp(end, "ms") != 0 || n < 1 ||
			    n > 600000)
				return bk_fail(b, cause, "%s: expected milliseconds like "
				    "5000ms, 1..600000ms, got '%s'", k, v);
			b->connect_timeout_ms = n;
		} else
			return bk_fail(b, cause, "%s: unknown key for the backend handler, "
			    "expected backend, framing or connect_timeout%s", k, "");
	}
	if (!have) {
		bk_destroy(b);
		*cause = strdup("the backend handler needs 'backend = HOST:PORT' or "
		    "'backend = unix:/PATH'");
		return NULL;
	}
	return b;
}

static void
bc_free(struct bconn *bc)
{
	if (bc->bev != NULL)
		bufferevent_free(bc->bev);	/* closes the backend socket */
	bc->bev = NULL;
	if (bc->fail_ev != NULL)
		event_free(bc->fail_ev);
	bc->fail_ev = NULL;
}

static void
bc_close(struct bconn *bc, int code, const char *reason)
{
	if (bc->closing)
		return;
	bc->closing = true;
	if (bc->bev != NULL)
		bufferevent_disable(bc->bev, EV_READ | EV_WRITE);
	wsr_close(bc->c, code, reason);
}

/* Length of the prefix of p[0..n) that ends on a UTF-8 sequence boundary. */
static size_t
utf8_complete(const uint8_t *p, size_t n)
{
	size_t	i, need;

	for (i = n; i > 0 && n - i < 4; i--) {
		uint8_t b = p[i - 1];

		if ((b & 0xc0) == 0x80)
			continue;		/* continuation: look further back */
		if (b < 0x80)
			return n;
		need = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : 4;
		return n - (i - 1) >= need ? n : i - 1;
	}
	return n;
}

static void
bk_read_cb(struct bufferevent *bev, void *arg)
{
	struct bconn	*bc = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 n, take;
	uint8_t		*p;

	while (!bc->closing && (n = evbuffer_get_length(in)) > 0) {
		if (n > 65536)
			n = 65536;
		if ((p = evbuffer_pullup(in, n)) == NULL)
			return;
		take = n;
		if (bc->b->text) {
			take = utf8_complete(p, n);
			if (take == 0) {
				if (evbuffer_get_length(in) < 4)
					return;		/* wait for the rest */
				take = n;		/* not a sequence start at all */
			}
			if (!utf8_valid(p, take)) {
				bc_close(bc, 1011, "backend sent invalid UTF-8");
				return;
			}
		}
		if (wsr_send(bc->c, bc->b->text ? WSR_TEXT : WSR_BINARY, p, take) == -1) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
		evbuffer_drain(in, take);
		if (take < n)
			return;
		if (wsr_conn_pending(bc->c) > BK_HIGH) {
			/* The client is slow: resume from on_drain. */
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
}

static void
bk_write_cb(struct bufferevent *bev, void *arg)
{
	struct bconn	*bc = arg;

	/* At the low watermark: the client may send again. */
	(void)bev;
	if (!bc->closing)
		wsr_conn_set_reading(bc->c, 1);
}

static void
bk_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct bconn	*bc = arg;
	int		 err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		bc->connected = true;
		if (bc->b->addr.kind == LISTEN_INET)
			setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
			    &one, sizeof(one));
		bufferevent_set_timeouts(bev, NULL, NULL);
		wsr_log(bc->c, WSR_LOG_DEBUG, "event=backend_connected backend=%s",
		    bc->b->addr.spec);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Whatever is still in the input buffer went out in read_cb. */
		bc_close(bc, 1000, "backend closed");
		return;
	}
	if (!bc->connected) {
		wsr_log(bc->c, WSR_LOG_INFO, "event=backend_connect_failed backend=%s "
		    "error=\"%s\"", bc->b->addr.spec, (what & BEV_EVENT_TIMEOUT) ? "timeout" : evutil_socket_error_to_string(err));
		if ((what & BEV_EVENT_ERROR) && (err == ECONNREFUSED || err == ENOENT))
			bc_close(bc, 1013, "backend unavailable");
		else
			bc_close(bc, 1011, "backend connect failed");
		return;
	}
	wsr_log(bc->c, WSR_LOG_INFO, "event=backend_error error=\"%s\"",
	    (what & BEV_EVENT_TIMEOUT) ? "timeout" : evutil_socket_error_to_string(err));
	bc_close(bc, 1011, "backend error");
}

/* After the 101: report a connect that failed synchronously in on_open. */
static void
bk_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bconn	*bc = arg;

	(void)fd;
	(void)what;
	wsr_log(bc->c, WSR_LOG_INFO, "event=backend_connect_failed backend=%s error=\"%s\"",
	    bc->b->addr.spec, evutil_socket_error_to_string(bc->fail_err));
	if (bc->fail_err == ECONNREFUSED || bc->fail_err == ENOENT)
		bc_close(bc, 1013, "backend unavailable");
	else
		bc_close(bc, 1011, "backend connect failed");
}

static int
bk_on_open(void *self, struct wsr_conn *c)
{
	struct backend		*b = self;
	struct bconn		*bc;
	struct event_base	*base = handler_event_base();
	struct timeval		 tv;

	if (base == NULL || (bc = calloc(1, sizeof(*bc))) == NULL)
		return -1;
	bc->b = b;
	bc->c = c;
	/* Deferred callbacks: a connect that fails at once reports after the 101. */
	bc->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bc->bev == NULL) {
		free(bc);
		return -1;
	}
	bufferevent_setcb(bc->bev, bk_read_cb, bk_write_cb, bk_event_cb, bc);
	bufferevent_setwatermark(bc->bev, EV_WRITE, BK_LOW, 0);
	bufferevent_setwatermark(bc->bev, EV_READ, 0, BK_HIGH);	/* bounds the input buffer */
	tv.tv_sec = b->connect_timeout_ms / 1000;
	tv.tv_usec = (b->connect_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(bc->bev, NULL, &tv);	/* covers the connect */
	bufferevent_enable(bc->bev, EV_READ | EV_WRITE);
	wsr_conn_set_data(c, bc);
	if (bufferevent_socket_connect(bc->bev, (struct sockaddr *)&b->addr.addr,
	    (int)b->addr.addrlen) == -1) {
		/* Failed at once (a Unix socket that is not there): close after the 101. */
		static const struct timeval now = { 0, 0 };

		bc->fail_err = EVUTIL_SOCKET_ERROR();
		if ((bc->fail_ev = evtimer_new(base, bk_fail_cb, bc)) == NULL ||
		    evtimer_add(bc->fail_ev, &now) == -1) {
			bc_free(bc);
			free(bc);
			wsr_conn_set_data(c, NULL);
			return -1;
		}
	}
	return 0;
}

static void
bk_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	struct bconn	*bc = wsr_conn_data(c);

	(void)self;
	(void)opcode;
	if (bc == NULL || bc->closing || bc->bev == NULL)
		return;
	if (bufferevent_write(bc->bev, data, len) == -1) {
		bc_close(bc, 1011, "out of memory");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(bc->bev)) > BK_HIGH)
		wsr_conn_set_reading(c, 0);	/* resumed by bk_write_cb */
}

static void
bk_on_drain(void *self, struct wsr_conn *c)
{
	struct bconn	*bc = wsr_conn_data(c);

	(void)self;
	if (bc != NULL && !bc->closing && bc->bev != NULL) {
		bufferevent_enable(bc->bev, EV_READ);
		bk_read_cb(bc->bev, bc);	/* what waited in the input buffer */
	}
}

static void
bk_on_close(void *self, struct wsr_conn *c, int code)
{
	struct bconn	*bc = wsr_conn_data(c);

	(void)self;
	(void)code;
	if (bc == NULL)
		return;
	bc_free(bc);
	free(bc);
	wsr_conn_set_data(c, NULL);
}

const struct wsr_handler handler_backend = {
	.abi = WSR_PLUGIN_ABI,
	.name = "backend",
	.create = bk_create,
	.destroy = bk_destroy,
	.on_open = bk_on_open,
	.on_message = bk_on_message,
	.on_close = bk_on_close,
	.on_drain = bk_on_drain,
};
