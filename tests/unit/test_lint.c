/*
 * test_lint.c — the configuration warnings (daemon/lint.c): where the
 * "comfortably below the proxy's idle timeout" line lies (at most half),
 * which scope and line a warning names, the proxy settings it suggests,
 * and the drain window that must fit in shutdown_timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "lint.h"

#define NAME	"t.ini"
#define SERVER	"[server]\nlisten = 127.0.0.1:8080\n"
#define ROUTE	"[route /a]\nhandler = echo\n"

/* The warnings for text, which must be a valid config. */
static struct config_errors
lint(const char *text)
{
	struct config_errors	 errs = { NULL, 0 }, out = { NULL, 0 };
	struct config		*cfg;
	size_t			 i;
	int			 n;

	cfg = config_parse_string(text, strlen(text), NAME, &errs);
	for (i = 0; i < errs.n; i++)
		print_message("unexpected error: %s\n", errs.msgs[i]);
	assert_non_null(cfg);
	n = config_lint(cfg, &out);
	assert_int_equal(n, (int)out.n);
	config_free(cfg);
	return out;
}

static void
expect_none(const char *text)
{
	struct config_errors	w = lint(text);
	size_t			i;

	for (i = 0; i < w.n; i++)
		print_message("unexpected warning: %s\n", w.msgs[i]);
	assert_int_equal(w.n, 0);
}

/* One warning, beginning with prefix and containing each of the rest. */
static void
expect_one(const char *text, const char *prefix, const char *has1, const char *has2)
{
	struct config_errors	w = lint(text);

	assert_int_equal(w.n, 1);
	if (strncmp(w.msgs[0], prefix, strlen(prefix)) != 0)
		fail_msg("warning '%s' does not begin with '%s'", w.msgs[0], prefix);
	if (has1 != NULL && strstr(w.msgs[0], has1) == NULL)
		fail_msg("warning '%s' lacks '%s'", w.msgs[0], has1);
	if (has2 != NULL && strstr(w.msgs[0], has2) == NULL)
		fail_msg("warning '%s' lacks '%s'", w.msgs[0], has2);
	config_errors_clear(&w);
}

static void
test_proxy_half_rule(void **state)
{
	(void)state;
	/* Unknown proxy: nothing to check. */
	expect_none(SERVER "ping_period = 0\n" ROUTE);
	/* Exactly half is comfortable; a millisecond more is not. */
	expect_none(SERVER "proxy_idle_timeout = 60s\nping_period = 30s\n" ROUTE);
	expect_one(SERVER "proxy_idle_timeout = 60s\nping_period = 30001ms\n" ROUTE,
	    NAME ":4: ping_period 30001ms is not comfortably below proxy_idle_timeout 1m "
	    "(at most half: 30s)", "nginx: proxy_read_timeout 90003ms; "
	    "proxy_send_timeout 90003ms; HAProxy: timeout tunnel 90003ms; "
	    "timeout client-fin 5s", "set ping_period to 30s or less");
	/* The default ping_period is named at proxy_idle_timeout's line. */
	expect_one(SERVER "proxy_idle_timeout = 40s\n" ROUTE,
	    NAME ":3: ping_period 25s is not comfortably below proxy_idle_timeout 40s",
	    "proxy_read_timeout 75s", NULL);
}

static void
test_proxy_routes(void **state)
{
	(void)state;
	/* A route that inherits shares [server]'s verdict; one that overrides has its own. */
	expect_one(SERVER "proxy_idle_timeout = 1m\n" ROUTE
	    "[route /b]\nhandler = echo\nping_period = 0\nclose_timeout = 2s\n",
	    NAME ":8: [route /b]: ping_period is 0 (no pings) but the proxy in front cuts "
	    "idle connections after proxy_idle_timeout 1m: set ping_period to 30s or less",
	    /* No pings: the proxy must outlast timeout (60s) and the close (2s). */
	    "proxy_read_timeout 62s", "timeout client-fin 2s");
	expect_one(SERVER "proxy_idle_timeout = 1m\nping_period = 0\ntimeout = 0\n" ROUTE,
	    NAME ":4: ping_period is 0 (no pings)", "no proxy idle timeout fits", NULL);
	/* A route with pings comfortably fast adds nothing to [server]'s finding. */
	expect_one(SERVER "proxy_idle_timeout = 1m\nping_period = 0\n" ROUTE
	    "[route /b]\nhandler = echo\nping_period = 20s\n",
	    NAME ":4: ping_period is 0 (no pings)", NULL, NULL);
}

static void
test_drain_window(void **state)
{
	(void)state;
	/* The defaults fit exactly: 5s + 5s = 10s. */
	expect_none(SERVER ROUTE);
	expect_none(SERVER "drain_window = 0\nshutdown_timeout = 1s\n" ROUTE);
	expect_one(SERVER "drain_window = 8s\n" ROUTE,
	    NAME ":3: drain_window 8s plus close_timeout 5s is more than shutdown_timeout 10s",
	    "spread over only 5s", "raise shutdown_timeout to 13s");
	expect_one(SERVER "shutdown_timeout = 2s\n" ROUTE,
	    NAME ":3: drain_window 5s plus close_timeout 5s is more than shutdown_timeout 2s",
	    "the closes are all sent at once", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_half_rule),
		cmocka_unit_test(test_proxy_routes),
		cmocka_unit_test(test_drain_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
