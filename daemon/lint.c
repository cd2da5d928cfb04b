/*
 * lint.c — see lint.h.
 *
 * The proxy rule. A reverse proxy or load balancer cuts a WebSocket that
 * carried nothing for its idle timeout (nginx proxy_read_timeout/
 * proxy_send_timeout, HAProxy timeout tunnel, AWS ALB: 60 s by default).
 * The daemon's pings are traffic both ways (ping out, pong back), so a
 * ping_period "comfortably" below the proxy's timeout keeps every quiet
 * connection alive. Comfortably means at most half: then one ping that is
 * lost or late (a busy loop, a retransmission) still leaves a second one
 * before the proxy gives up. The settings suggested for the proxy are three
 * ping periods, what conf/nginx.conf and conf/haproxy.cfg ship (75 s for the
 * default 25 s): above the half rule with a period to spare. HAProxy's
 * `timeout client-fin` (how long it keeps a client that has half-closed)
 * only has to cover our closing handshake, which close_timeout bounds.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lint.h"

#define PROXY_FACTOR	3	/* suggested proxy idle timeout, in ping periods */

static int
add(struct config_errors *out, const struct config_origin *at, const char *fallback,
    const char *fmt, ...)
{
	char	  msg[1024], **m;
	int	  n;
	va_list	  ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((m = realloc(out->msgs, (out->n + 1) * sizeof(*m))) == NULL)
		return -1;
	out->msgs = m;
	if (at->file != NULL)
		n = asprintf(&m[out->n], "%s:%d: %s", at->file, at->line, msg);
	else
		n = asprintf(&m[out->n], "%s: %s", fallback, msg);
	if (n < 0)
		return -1;
	out->n++;
	return 1;
}

/* Where a [server] key was set, or, for a default, where `other` was. */
static struct config_origin
server_origin(const struct config *cfg, const char *key, const char *other)
{
	int	i = config_key_index(key);

	if (i >= 0 && cfg->origin[i].file != NULL)
		return cfg->origin[i];
	i = config_key_index(other);
	if (i >= 0)
		return cfg->origin[i];
	return (struct config_origin){ NULL, 0 };
}

/* The proxy settings that match these limits, for the message. */
static void
proxy_settings(const struct limits *lim, char *buf, size_t len)
{
	char	t[32], fin[32];
	uint64_t idle;

	config_fmt_duration(lim->close_timeout_ms, fin, sizeof(fin));
	/*
	 * Without pings only the daemon's own idle timeout bounds a silence:
	 * the proxy has to outlast it and the close handshake that follows.
	 */
	if (lim->ping_period_ms > 0)
		idle = PROXY_FACTOR * lim->ping_period_ms;
	else
		idle = lim->timeout_ms > 0 ? lim->timeout_ms + lim->close_timeout_ms : 0;
	if (idle == 0) {
		snprintf(buf, len, "no proxy idle timeout fits a connection that may stay "
		    "silent forever (ping_period and timeout are 0)");
		return;
	}
	config_fmt_duration(idle, t, sizeof(t));
	snprintf(buf, len, "nginx: proxy_read_timeout %s; proxy_send_timeout %s; "
	    "HAProxy: timeout tunnel %s; timeout client-fin %s", t, t, t, fin);
}

/* One scope ([server] or a route that sets its own ping_period). */
static int
lint_ping(const struct config *cfg, const struct limits *lim, const char *scope,
    const struct config_origin *at, struct config_errors *out)
{
	uint64_t	proxy = cfg->proxy_idle_timeout_ms, half = proxy / 2;
	char		p[32], pp[32], h[32], hint[512];

	if (lim->ping_period_ms != 0 && lim->ping_period_ms <= half)
		return 0;
	config_fmt_duration(proxy, p, sizeof(p));
	config_fmt_duration(half, h, sizeof(h));
	proxy_settings(lim, hint, sizeof(hint));
	if (lim->ping_period_ms == 0)
		return add(out, at, cfg->file, "%sping_period is 0 (no pings) but the proxy in "
		    "front cuts idle connections after proxy_idle_timeout %s: set ping_period "
		    "to %s or less, or let the proxy wait longer (%s)", scope, p, h, hint);
	config_fmt_duration(lim->ping_period_ms, pp, sizeof(pp));
	return add(out, at, cfg->file, "%sping_period %s is not comfortably below "
	    "proxy_idle_timeout %s (at most half: %s), so one late or lost ping lets the "
	    "proxy cut an idle connection: set ping_period to %s or less, or set the proxy "
	    "to match (%s)", scope, pp, p, h, h, hint);
}

static int
lint_proxy(const struct config *cfg, struct config_errors *out)
{
	const struct config_route	*r;
	struct config_origin		 at;
	char				 scope[300];
	int				 ping = config_key_index("ping_period"), n = 0, rv;
	size_t				 i;

	if (cfg->proxy_idle_timeout_ms == 0 || ping < 0)
		return 0;
	at = server_origin(cfg, "ping_period", "proxy_idle_timeout");
	if ((rv = lint_ping(cfg, &cfg->limits, "", &at, out)) < 0)
		return -1;
	n += rv;
	/* Routes that inherit ping_period share the [server] finding. */
	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		if (r->origin[ping].file == NULL)
			continue;
		snprintf(scope, sizeof(scope), "[route %s]: ", r->path);
		if ((rv = lint_ping(cfg, &r->limits, scope, &r->origin[ping], out)) < 0)
			return -1;
		n += rv;
	}
	return n;
}

/*
 * The hard close at shutdown_timeout (counted from the signal) should leave
 * the last peers of the drain window a whole close_timeout to answer.
 */
static int
lint_drain(const struct config *cfg, struct config_errors *out)
{
	struct config_origin	at;
	char			w[32], c[32], s[32], need[32], cut[32], used[64];
	uint64_t		window = cfg->drain_window_ms;
	uint64_t		close = cfg->limits.close_timeout_ms;
	uint64_t		used_ms = config_drain_window_ms(cfg);

	if (window == 0 || window + close <= cfg->shutdown_timeout_ms)
		return 0;
	at = server_origin(cfg, "drain_window", "shutdown_timeout");
	config_fmt_duration(window, w, sizeof(w));
	config_fmt_duration(close, c, sizeof(c));
	config_fmt_duration(cfg->shutdown_timeout_ms, s, sizeof(s));
	config_fmt_duration(window + close, need, sizeof(need));
	config_fmt_duration(used_ms, cut, sizeof(cut));
	if (used_ms == 0)
		snprintf(used, sizeof(used), "all sent at once");
	else
		snprintf(used, sizeof(used), "spread over only %s", cut);
	return add(out, &at, cfg->file, "drain_window %s plus close_timeout %s is more than "
	    "shutdown_timeout %s: the closes are %s, so that the peers closed last still "
	    "get close_timeout to answer before the hard close; raise shutdown_timeout to %s "
	    "to spread them over the whole drain_window", w, c, s, used, need);
}

int
config_lint(const struct config *cfg, struct config_errors *out)
{
	int	a, b;

	if ((a = lint_proxy(cfg, out)) < 0 || (b = lint_drain(cfg, out)) < 0)
		return -1;
	return a + b;
}
