/*
 * test_route.c — the route table: exact lookup, ordering, refcounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static const char CONFIG[] =
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "[route /echo]\n"
    "handler = echo\n"
    "[route /chat/room]\n"
    "handler = echo\n"
    "timeout = 5s\n"
    "[route /]\n"
    "handler = echo\n"
    "[route /echo/]\n"
    "handler = echo\n"
    "[route /a]\n"
    "handler = echo\n"
    "[route /Echo]\n"
    "handler = echo\n"
    "[route /echo2]\n"
    "handler = echo\n";

static struct config *
load(const char *text)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;

	cfg = config_parse_string(text, strlen(text), "t.ini", &errs);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	return cfg;
}

static int
setup(void **state)
{
	*state = route_table_new(load(CONFIG));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	route_table_unref(*state, NULL);
	return 0;
}

static struct route *
lookup(struct route_table *t, const char *path)
{
	return route_lookup(t, path, strlen(path));
}

static void
test_table(void **state)
{
	struct route_table	*t = *state;
	size_t			 i;

	assert_int_equal(t->nroutes, 7);
	assert_int_equal(t->refs, 1);
	assert_non_null(t->cfg);
	for (i = 0; i < t->nroutes; i++) {
		assert_ptr_equal(t->routes[i].table, t);
		assert_null(t->routes[i].handler);	/* bound later */
		assert_null(t->routes[i].instance);
		if (i > 0)				/* sorted, bytewise */
			assert_true(strcmp(t->routes[i - 1].conf->path,
			    t->routes[i].conf->path) < 0);
	}
}

static void
test_hit(void **state)
{
	struct route_table	*t = *state;
	struct route		*r;
	size_t			 i;

	/* Every configured path is found, and is its own route. */
	for (i = 0; i < t->cfg->nroutes; i++) {
		r = lookup(t, t->cfg->routes[i].path);
		assert_non_null(r);
		assert_ptr_equal(r->conf, &t->cfg->routes[i]);
	}
	r = lookup(t, "/chat/room");
	assert_non_null(r);
	assert_int_equal(r->conf->limits.timeout_ms, 5000);
	assert_int_equal(r->conf->line, 5);
}

static void
test_miss(void **state)
{
	static const char *const miss[] = {
		"/nope", "/ech", "/echo3", "/chat", "/chat/", "/chat/room/x",
		"/ECHO", "//echo", "/echo//", "echo", "/b", "/0", "/~",
		"/echo/x",		/* no prefix match */
		"/echo?x=1",		/* the caller strips the query */
		"/echo#f", "/echo ",
	};
	struct route_table	*t = *state;
	size_t			 i;

	for (i = 0; i < nitems(miss); i++) {
		if (lookup(t, miss[i]) != NULL)
			fail_msg("'%s' matched a route", miss[i]);
	}
	assert_null(route_lookup(t, "", 0));
	assert_null(route_lookup(t, NULL, 0));
}

static void
test_trailing_slash_and_case(void **state)
{
	struct route_table	*t = *state;

	assert_string_equal(lookup(t, "/echo")->conf->path, "/echo");
	assert_string_equal(lookup(t, "/echo/")->conf->path, "/echo/");
	assert_string_equal(lookup(t, "/Echo")->conf->path, "/Echo");
	assert_string_equal(lookup(t, "/")->conf->path, "/");
}

static void
test_not_nul_terminated(void **state)
{
	struct route_table	*t = *state;
	struct route		*r;
	const char		 target[] = "/echo?x=1";
	char			 buf[5];

	/* A path inside a request buffer: only len bytes count. */
	r = route_lookup(t, target, 5);
	assert_non_null(r);
	assert_string_equal(r->conf->path, "/echo");
	assert_string_equal(route_lookup(t, target, 1)->conf->path, "/");
	assert_null(route_lookup(t, target, 4));		/* "/ech" */
	assert_null(route_lookup(t, target, 6));		/* "/echo?" */

	memcpy(buf, "/echo", 5);				/* no NUL at all */
	assert_ptr_equal(route_lookup(t, buf, sizeof(buf)), r);
}

static void
test_empty_table(void **state)
{
	struct route_table	*t;

	(void)state;
	t = route_table_new(load("[server]\nlisten = 127.0.0.1:1\n"));
	assert_non_null(t);
	assert_int_equal(t->nroutes, 0);
	assert_null(lookup(t, "/echo"));
	assert_null(lookup(t, "/"));
	route_table_unref(t, NULL);

	assert_null(route_table_new(NULL));
	route_table_unref(NULL, NULL);
}

static int	 freed;
static void	*expected_instance;

static void
free_instance(struct route *r)
{
	assert_non_null(r->table);
	assert_int_equal(r->table->refs, 0);
	if (r->instance != NULL) {
		assert_ptr_equal(r->instance, expected_instance);
		free(r->instance);
		r->instance = NULL;
	}
	freed++;
}

static void
test_refcount(void **state)
{
	struct route_table	*t;
	struct route		*r;

	(void)state;
	t = route_table_new(load(CONFIG));
	assert_non_null(t);
	assert_int_equal(t->refs, 1);

	r = lookup(t, "/chat/room");
	r->instance = expected_instance = malloc(16);

	/* Two connections take the table; the daemon drops it (a reload). */
	route_table_ref(r->table);
	route_table_ref(r->table);
	assert_int_equal(t->refs, 3);
	freed = 0;
	route_table_unref(t, free_instance);
	assert_int_equal(t->refs, 2);
	assert_int_equal(freed, 0);

	/* The connections still see their route and its config. */
	assert_string_equal(r->conf->path, "/chat/room");
	assert_ptr_equal(lookup(t, "/chat/room"), r);

	route_table_unref(t, free_instance);
	assert_int_equal(freed, 0);
	route_table_unref(t, free_instance);	/* last: everything goes */
	assert_int_equal(freed, 7);		/* once per route */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_slash_and_case,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_nul_terminated, setup,
		    teardown),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_refcount),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
