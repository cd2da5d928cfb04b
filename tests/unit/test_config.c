/*
 * test_config.c — the config loader: value parsers, every error message
 * (exact text, file and line), inheritance of limits, and the reference
 * conf/wsrouted.ini.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

#define NAME	"t.ini"
/* Two lines: whatever a test adds starts at line 3. */
#define SERVER	"[server]\nlisten = 127.0.0.1:8080\n"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
/* The longest line the loader reads (INI_MAX_LINE less '\n' and NUL). */
#define INI_LINE_MAX	198

static struct config *
parse(const char *text, struct config_errors *errs)
{
	return config_parse_string(text, strlen(text), NAME, errs);
}

static struct config *
parse_ok(const char *text)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	size_t			 i;

	cfg = parse(text, &errs);
	for (i = 0; i < errs.n; i++)
		print_message("unexpected error: %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	return cfg;
}

/* Parsing text fails with exactly the messages want[0..n), in that order. */
static void
check_errors(const char *text, size_t len, const char *const *want, size_t n)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	size_t			 i;
	int			 same;

	cfg = config_parse_string(text, len, NAME, &errs);
	same = errs.n == n;
	for (i = 0; same && i < n; i++)
		same = strcmp(errs.msgs[i], want[i]) == 0;
	if (!same) {
		for (i = 0; i < n; i++)
			print_message("want: %s\n", want[i]);
		for (i = 0; i < errs.n; i++)
			print_message("got:  %s\n", errs.msgs[i]);
	}
	assert_null(cfg);
	config_errors_clear(&errs);
	assert_true(same);
}

#define expect_errors(text, ...) do {					\
	const char *const want_[] = { __VA_ARGS__ };			\
	check_errors((text), strlen(text), want_, nitems(want_));	\
} while (0)

/*
 * Sizes and durations.
 */

static void
test_size_valid(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 v;
	} ok[] = {
		{ "0", 0 }, { "512", 512 }, { "512B", 512 }, { "007", 7 },
		{ "1K", 1024 }, { "64KiB", 65536 },
		{ "1M", 1 << 20 }, { "1MiB", 1 << 20 }, { "16MiB", 16 << 20 },
		{ "1G", 1ULL << 30 }, { "2GiB", 2ULL << 30 },
		{ "1 MiB", 1 << 20 }, { "1\tK", 1024 },
		{ "17179869183GiB", 17179869183ULL << 30 },
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073709551615B", UINT64_MAX },
	};
	uint64_t	v;
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(ok); i++) {
		v = 42;
		assert_int_equal(config_parse_size(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
}

static void
test_size_invalid(void **state)
{
	static const char *const bad[] = {
		"", " ", "-1", "+1", " 1", "1 ", "1MiB ", "0x10", "1.5MiB",
		"12 apples", "1KB", "1kib", "1k", "1mib", "1TiB", "MiB", "B",
		"1 MiB MiB", "1MiBB", "12XB", "1.5.5MiB", "ten",
		"18446744073709551616", "99999999999999999999999",
		"17179869184GiB", "18014398509481984MiB", "18014398509481984K",
	};
	uint64_t	v;
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		v = 42;
		if (config_parse_size(bad[i], &v) != -1)
			fail_msg("size '%s' accepted", bad[i]);
		assert_true(v == 42);		/* untouched on error */
	}
}

static void
test_duration_valid(void **state)
{
	static const struct {
		const char	*s;
		uint64_t	 v;
	} ok[] = {
		{ "0", 0 }, { "0ms", 0 }, { "0s", 0 }, { "30", 30000 },
		{ "1ms", 1 }, { "500ms", 500 }, { "10s", 10000 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "1 s", 1000 },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "18446744073709551s", 18446744073709551000ULL },
	};
	uint64_t	v;
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(ok); i++) {
		v = 42;
		assert_int_equal(config_parse_duration_ms(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
}

static void
test_duration_invalid(void **state)
{
	static const char *const bad[] = {
		"", "s", "ms", "-5s", "+5s", " 5s", "5s ", "5 ", "1d", "1.5s",
		"10parsecs", "abc", "1S", "1H", "1sec", "1min", "5s5",
		"18446744073709552",			/* bare: seconds */
		"18446744073709552s", "5124095576030432h",
		"18446744073709551616ms",
	};
	uint64_t	v;
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		v = 42;
		if (config_parse_duration_ms(bad[i], &v) != -1)
			fail_msg("duration '%s' accepted", bad[i]);
		assert_true(v == 42);
	}
}

/*
 * Listen addresses.
 */

static void
test_listen_ipv4(void **state)
{
	struct config_listen	 l;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&l.addr;

	(void)state;
	assert_int_equal(config_parse_listen("127.0.0.1:8080", &l), 0);
	assert_int_equal(l.kind, LISTEN_INET);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(l.addrlen, sizeof(struct sockaddr_in));
	assert_null(l.spec);
	assert_int_equal(l.line, 0);

	assert_int_equal(config_parse_listen("0.0.0.0:1", &l), 0);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(sin->sin_port), 1);

	assert_int_equal(config_parse_listen("10.1.2.3:65535", &l), 0);
	assert_int_equal(ntohs(sin->sin_port), 65535);
	assert_int_equal(config_parse_listen("10.1.2.3:0", &l), 0);
	assert_int_equal(ntohs(sin->sin_port), 0);
}

static void
test_listen_ipv6(void **state)
{
	struct config_listen	 l;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&l.addr;

	(void)state;
	assert_int_equal(config_parse_listen("[::1]:8080", &l), 0);
	assert_int_equal(l.kind, LISTEN_INET);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8080);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(l.addrlen, sizeof(struct sockaddr_in6));

	assert_int_equal(config_parse_listen("[2001:db8::42]:443", &l), 0);
	assert_int_equal(ntohs(sin6->sin6_port), 443);
	assert_int_equal(config_parse_listen("[::ffff:127.0.0.1]:80", &l), 0);

	/* "*" is every address, IPv4 included: [::] (the daemon clears V6ONLY). */
	assert_int_equal(config_parse_listen("*:8080", &l), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	assert_int_equal(ntohs(sin6->sin6_port), 8080);
}

static void
test_listen_unix(void **state)
{
	struct config_listen	 l;
	struct sockaddr_un	*su = (struct sockaddr_un *)&l.addr;
	char			 spec[sizeof(su->sun_path) + 16];

	(void)state;
	assert_int_equal(config_parse_listen("unix:/run/wsrouted.sock", &l), 0);
	assert_int_equal(l.kind, LISTEN_UNIX);
	assert_int_equal(su->sun_family, AF_UNIX);
	assert_string_equal(su->sun_path, "/run/wsrouted.sock");
	assert_int_equal(l.addrlen, offsetof(struct sockaddr_un, sun_path) +
	    strlen("/run/wsrouted.sock") + 1);

	/* The longest path that fits sun_path with its NUL, then one more. */
	memset(spec, 0, sizeof(spec));
	memcpy(spec, "unix:/", 6);
	memset(spec + 6, 'a', sizeof(su->sun_path) - 2);
	assert_int_equal(strlen(spec) - 5, sizeof(su->sun_path) - 1);
	assert_int_equal(config_parse_listen(spec, &l), 0);
	assert_int_equal(strlen(su->sun_path), sizeof(su->sun_path) - 1);
	spec[strlen(spec)] = 'a';
	assert_int_equal(config_parse_listen(spec, &l), -1);
}

static void
test_listen_invalid(void **state)
{
	static const char *const bad[] = {
		/* ports */
		"1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:", "1.2.3.4:-1",
		"1.2.3.4:+80", "1.2.3.4:http", "1.2.3.4:80x", "1.2.3.4: 80",
		"[::1]:65536", "[::1]:", "*:", "*:x", "*:99999999999999999999",
		/* addresses */
		"", "*", "127.0.0.1", "localhost:80", "localhost:abc",
		"example.com:443", "1.2.3:80", "256.1.1.1:80", "01.2.3.4:80",
		" 1.2.3.4:80", "1.2.3.4:80 ", ":80", "::1:80", "[::1", "[::1]",
		"[::1]8080", "[]:80", "[nope]:80", "[1.2.3.4]:80",
		"[fe80::1%eth0]:80", "**:80", "tcp://1.2.3.4:80",
		/* unix */
		"unix:", "unix:relative.sock", "unix:@abstract", "UNIX:/x",
	};
	struct config_listen	l;
	size_t			i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		if (config_parse_listen(bad[i], &l) != -1)
			fail_msg("listen '%s' accepted", bad[i]);
	}
}

/*
 * Whole configs.
 */

static void
test_defaults(void **state)
{
	struct config	*cfg;
	struct limits	*lim;

	(void)state;
	cfg = parse_ok(SERVER "[route /echo]\nhandler = echo\n");
	assert_string_equal(cfg->file, NAME);
	assert_int_equal(cfg->nlistens, 1);
	assert_string_equal(cfg->listens[0].spec, "127.0.0.1:8080");
	assert_int_equal(cfg->listens[0].line, 2);
	assert_int_equal(cfg->max_connections, CONFIG_DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(cfg->handshake_timeout_ms,
	    CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS);
	assert_int_equal(cfg->shutdown_timeout_ms,
	    CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS);
	assert_int_equal(cfg->log_level, LOG_LVL_INFO);
	lim = &cfg->limits;
	assert_int_equal(lim->ping_period_ms, CONFIG_DEFAULT_PING_PERIOD_MS);
	assert_int_equal(lim->timeout_ms, CONFIG_DEFAULT_TIMEOUT_MS);
	assert_int_equal(lim->close_timeout_ms, CONFIG_DEFAULT_CLOSE_TIMEOUT_MS);
	assert_int_equal(lim->max_frame_size, CONFIG_DEFAULT_MAX_FRAME_SIZE);
	assert_int_equal(lim->max_message_size, CONFIG_DEFAULT_MAX_MESSAGE_SIZE);
	assert_int_equal(lim->max_output_buffer, CONFIG_DEFAULT_MAX_OUTPUT_BUFFER);

	assert_int_equal(cfg->nroutes, 1);
	assert_string_equal(cfg->routes[0].path, "/echo");
	assert_string_equal(cfg->routes[0].handler, "echo");
	assert_int_equal(cfg->routes[0].line, 3);
	assert_memory_equal(&cfg->routes[0].limits, &cfg->limits,
	    sizeof(cfg->limits));
	assert_int_equal(cfg->routes[0].norigins, 0);
	assert_null(cfg->routes[0].origins);
	assert_int_equal(cfg->routes[0].nsubprotocols, 0);
	assert_int_equal(cfg->routes[0].noptions, 0);
	config_free(cfg);

	/* No route at all is valid: every request gets 404. */
	cfg = parse_ok(SERVER);
	assert_int_equal(cfg->nroutes, 0);
	config_free(cfg);
}

static void
test_every_server_key(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok(
	    "[server]\n"
	    "listen = 127.0.0.1:1\n"
	    "listen = [::1]:2\n"
	    "listen = *:3\n"
	    "listen = 0.0.0.0:4\n"
	    "listen = unix:/run/wsrouted.sock\n"
	    "max_connections = 10000000\n"
	    "handshake_timeout = 1500ms\n"
	    "shutdown_timeout = 0\n"
	    "log_level = debug\n"
	    "ping_period = 0\n"
	    "timeout = 1h\n"
	    "close_timeout = 1ms\n"
	    "max_frame_size = 1B\n"
	    "max_message_size = 2GiB\n"
	    "max_output_buffer = 4KiB\n");
	assert_int_equal(cfg->nlistens, 5);
	assert_string_equal(cfg->listens[2].spec, "*:3");
	assert_int_equal(cfg->listens[2].line, 4);
	assert_int_equal(cfg->listens[4].kind, LISTEN_UNIX);
	assert_int_equal(cfg->max_connections, 10000000);
	assert_int_equal(cfg->handshake_timeout_ms, 1500);
	assert_int_equal(cfg->shutdown_timeout_ms, 0);
	assert_int_equal(cfg->log_level, LOG_LVL_DEBUG);
	assert_int_equal(cfg->limits.ping_period_ms, 0);
	assert_int_equal(cfg->limits.timeout_ms, 3600000);
	assert_int_equal(cfg->limits.close_timeout_ms, 1);
	assert_int_equal(cfg->limits.max_frame_size, 1);
	assert_int_equal(cfg->limits.max_message_size, 2ULL << 30);
	assert_int_equal(cfg->limits.max_output_buffer, 4096);
	config_free(cfg);
}

static void
test_log_levels(void **state)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct config	*cfg;
	char		 text[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(names); i++) {
		snprintf(text, sizeof(text), SERVER "log_level = %s\n", names[i]);
		cfg = parse_ok(text);
		assert_int_equal(cfg->log_level, (int)i);
		config_free(cfg);
	}
}

static void
test_route_inherits_and_overrides(void **state)
{
	struct config		*cfg;
	struct config_route	*a, *b;

	(void)state;
	/* The routes come first: they still see the [server] values below. */
	cfg = parse_ok(
	    "[route /a]\n"
	    "handler = echo\n"
	    "timeout = 5s\n"
	    "max_frame_size = 100B\n"
	    "\n"
	    "[route /b]\n"
	    "handler = echo\n"
	    "ping_period = 0\n"
	    "close_timeout = 250ms\n"
	    "max_message_size = 64KiB\n"
	    "max_output_buffer = 8KiB\n"
	    "\n"
	    "[server]\n"
	    "listen = 127.0.0.1:8080\n"
	    "ping_period = 7s\n"
	    "timeout = 9s\n"
	    "max_frame_size = 2MiB\n"
	    "max_message_size = 3MiB\n");
	assert_int_equal(cfg->nroutes, 2);
	a = &cfg->routes[0];
	b = &cfg->routes[1];
	assert_string_equal(a->path, "/a");
	assert_string_equal(b->path, "/b");
	assert_int_equal(b->line, 6);

	assert_int_equal(a->limits.ping_period_ms, 7000);	/* [server] */
	assert_int_equal(a->limits.timeout_ms, 5000);		/* own */
	assert_int_equal(a->limits.close_timeout_ms, CONFIG_DEFAULT_CLOSE_TIMEOUT_MS);
	assert_int_equal(a->limits.max_frame_size, 100);
	assert_int_equal(a->limits.max_message_size, 3 << 20);
	assert_int_equal(a->limits.max_output_buffer, CONFIG_DEFAULT_MAX_OUTPUT_BUFFER);

	assert_int_equal(b->limits.ping_period_ms, 0);		/* 0 overrides too */
	assert_int_equal(b->limits.timeout_ms, 9000);
	assert_int_equal(b->limits.close_timeout_ms, 250);
	assert_int_equal(b->limits.max_frame_size, 2 << 20);
	assert_int_equal(b->limits.max_message_size, 64 << 10);
	assert_int_equal(b->limits.max_output_buffer, 8 << 10);

	/* The [server] values themselves are not touched by the overrides. */
	assert_int_equal(cfg->limits.timeout_ms, 9000);
	assert_int_equal(cfg->limits.max_frame_size, 2 << 20);
	config_free(cfg);
}

static void
test_server_twice(void **state)
{
	struct config	*cfg;

	(void)state;
	/* [server] may be opened again; listen accumulates. */
	cfg = parse_ok(
	    "[server]\n"
	    "listen = 127.0.0.1:1\n"
	    "timeout = 1s\n"
	    "[route /x]\n"
	    "handler = echo\n"
	    "[server]\n"
	    "listen = 127.0.0.1:2\n"
	    "ping_period = 2s\n");
	assert_int_equal(cfg->nlistens, 2);
	assert_int_equal(cfg->limits.timeout_ms, 1000);
	assert_int_equal(cfg->routes[0].limits.timeout_ms, 1000);
	assert_int_equal(cfg->routes[0].limits.ping_period_ms, 2000);
	config_free(cfg);
	/* But it is one section: no key is set twice (issue 10). */
	expect_errors(
	    "[server]\n"
	    "listen = 127.0.0.1:1\n"
	    "timeout = 1s\n"
	    "[route /x]\n"
	    "handler = echo\n"
	    "[server]\n"
	    "timeout = 2s\n",
	    NAME ":7: timeout: duplicate key, already set on line 3");
}

static void
test_origins(void **state)
{
	struct config		*cfg;
	struct config_route	*r;

	(void)state;
	cfg = parse_ok(SERVER
	    "[route /a]\nhandler = echo\n"
	    "origins = https://a.example, https://b.example\n"
	    "[route /b]\nhandler = echo\n"
	    "origins = https://a.example https://b.example:8443,http://[::1]:3000"
	    "  ,, null\n"
	    "[route /c]\nhandler = echo\norigins = *\n"
	    "[route /d]\nhandler = echo\norigins = HTTPS://A.example ; allowed\n");
	r = &cfg->routes[0];
	assert_int_equal(r->norigins, 2);
	assert_string_equal(r->origins[0], "https://a.example");
	assert_string_equal(r->origins[1], "https://b.example");
	r = &cfg->routes[1];
	assert_int_equal(r->norigins, 4);
	assert_string_equal(r->origins[0], "https://a.example");
	assert_string_equal(r->origins[1], "https://b.example:8443");
	assert_string_equal(r->origins[2], "http://[::1]:3000");
	assert_string_equal(r->origins[3], "null");
	r = &cfg->routes[2];
	assert_int_equal(r->norigins, 0);		/* "*": all */
	assert_null(r->origins);
	r = &cfg->routes[3];
	assert_int_equal(r->norigins, 1);
	assert_string_equal(r->origins[0], "HTTPS://A.example");
	config_free(cfg);
}

static void
test_subprotocols(void **state)
{
	struct config		*cfg;
	struct config_route	*r;

	(void)state;
	cfg = parse_ok(SERVER
	    "[route /a]\nhandler = echo\nsubprotocols = chat.v1, chat.v2\n"
	    "[route /b]\nhandler = echo\nsubprotocols = x,y ,\tz\n"
	    "[route /c]\nhandler = echo\nsubprotocols = v1.json.api-x_y~z\n");
	r = &cfg->routes[0];
	assert_int_equal(r->nsubprotocols, 2);
	assert_string_equal(r->subprotocols[0], "chat.v1");	/* order kept */
	assert_string_equal(r->subprotocols[1], "chat.v2");
	r = &cfg->routes[1];
	assert_int_equal(r->nsubprotocols, 3);
	assert_string_equal(r->subprotocols[0], "x");
	assert_string_equal(r->subprotocols[1], "y");
	assert_string_equal(r->subprotocols[2], "z");
	r = &cfg->routes[2];
	assert_int_equal(r->nsubprotocols, 1);
	assert_string_equal(r->subprotocols[0], "v1.json.api-x_y~z");
	config_free(cfg);
}

static void
test_syntax_accepted(void **state)
{
	struct config	*cfg;
	char		 path[300];
	char		 text[512];

	(void)state;
	/* BOM, CRLF, comments of both kinds, inline comments, indentation. */
	cfg = parse_ok(
	    "\xef\xbb\xbf; comment\r\n"
	    "# comment\r\n"
	    "\r\n"
	    "  [ server ]   ; inline\r\n"
	    "\tlisten=127.0.0.1:8080 ; inline comment\r\n"
	    "    timeout   =   3s\r\n"
	    "    ; indented comment\r\n"
	    "[route /echo] ; the echo route\r\n"
	    "  handler = echo\r\n"
	    "   \r\n"
	    "  # indented comment\r\n"
	    "  origins = https://a.example ;https://b.example\r\n");
	assert_int_equal(cfg->limits.timeout_ms, 3000);
	assert_string_equal(cfg->listens[0].spec, "127.0.0.1:8080");
	assert_int_equal(cfg->routes[0].line, 8);
	assert_int_equal(cfg->routes[0].norigins, 1);
	config_free(cfg);

	/* No final newline. */
	cfg = parse_ok(SERVER "[route /echo]\nhandler = echo");
	assert_string_equal(cfg->routes[0].handler, "echo");
	config_free(cfg);

	/*
	 * A route path longer than inih's section buffer (50 bytes), which
	 * would be cut short if we relied on inih's section name.
	 */
	memset(path, 'p', 150);
	path[0] = '/';
	path[150] = '\0';
	snprintf(text, sizeof(text), SERVER "[route %s]\nhandler = echo\n", path);
	cfg = parse_ok(text);
	assert_string_equal(cfg->routes[0].path, path);
	config_free(cfg);

	/* The longest line that fits inih's buffer: 198 bytes (+ "\r\n"). */
	memset(text, 0, sizeof(text));
	strcpy(text, SERVER ";");
	memset(text + strlen(text), 'x', 197);
	strcat(text, "\r\n");
	cfg = parse_ok(text);
	config_free(cfg);
}

static void
test_listen_duplicates(void **state)
{
	struct config	*cfg;

	(void)state;
	/* Two ephemeral ports are two listeners, not a duplicate. */
	cfg = parse_ok("[server]\nlisten = 127.0.0.1:0\nlisten = 127.0.0.1:0\n"
	    "listen = [::1]:0\nlisten = [::1]:0\n");
	assert_int_equal(cfg->nlistens, 4);
	config_free(cfg);

	expect_errors(SERVER "listen = 127.0.0.1:8080\n",
	    NAME ":3: listen: duplicate of line 2 ('127.0.0.1:8080')");
	expect_errors("[server]\nlisten = *:80\nlisten = [::]:80\n",
	    NAME ":3: listen: duplicate of line 2 ('*:80')");
	expect_errors("[server]\nlisten = unix:/a\nlisten = unix:/a\n",
	    NAME ":3: listen: duplicate of line 2 ('unix:/a')");
}

static void
test_reference_config(void **state)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	struct sockaddr_in	*sin;
	size_t			 i;

	(void)state;
	cfg = config_load(SRCDIR "/conf/wsrouted.ini", &errs);
	for (i = 0; i < errs.n; i++)
		print_message("%s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);

	assert_int_equal(cfg->nlistens, 1);
	assert_string_equal(cfg->listens[0].spec, "127.0.0.1:8080");
	sin = (struct sockaddr_in *)&cfg->listens[0].addr;
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(cfg->nroutes, 1);
	assert_string_equal(cfg->routes[0].path, "/echo");
	assert_string_equal(cfg->routes[0].handler, "echo");
	assert_int_equal(cfg->routes[0].norigins, 0);
	assert_int_equal(cfg->routes[0].nsubprotocols, 0);

	/* It documents the defaults: none is overridden. */
	assert_int_equal(cfg->max_connections, CONFIG_DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(cfg->log_level, LOG_LVL_INFO);
	assert_int_equal(cfg->limits.timeout_ms, CONFIG_DEFAULT_TIMEOUT_MS);
	assert_memory_equal(&cfg->routes[0].limits, &cfg->limits,
	    sizeof(cfg->limits));
	config_free(cfg);
}

/* Every commented-out "key = value" of the reference config is valid too. */
static void
test_reference_config_commented_keys(void **state)
{
	FILE		*f;
	char		 line[256], *text = NULL, *p;
	size_t		 len = 0, n;
	struct config	*cfg;

	(void)state;
	f = fopen(SRCDIR "/conf/wsrouted.ini", "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		p = line;
		/* ";key = value" (no blank after ';') is a disabled setting. */
		if (p[0] == ';' && p[1] >= 'a' && p[1] <= 'z' &&
		    strstr(p, " = ") != NULL && strstr(p, "subprotocols =\n") == NULL)
			p++;
		/* ";[tls]": a disabled section, whose keys follow. */
		else if (p[0] == ';' && p[1] == '[')
			p++;
		n = strlen(p);
		text = realloc(text, len + n + 1);
		assert_non_null(text);
		memcpy(text + len, p, n + 1);
		len += n;
	}
	fclose(f);
	cfg = parse_ok(text);
	assert_string_equal(cfg->routes[0].handler, "echo");
	assert_non_null(cfg->tls.certificate.v);
	assert_int_equal(cfg->tls.min_version, CONFIG_TLS12);
	assert_int_equal(cfg->tls.max_version, CONFIG_TLS13);
	assert_int_equal(cfg->proxy_protocol_timeout_ms,
	    CONFIG_DEFAULT_PROXY_PROTOCOL_TIMEOUT_MS);
	config_free(cfg);
	free(text);
}

/* listen = systemd[:NAME]: socket activation, the name kept for the listener. */
static void
test_listen_systemd(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok("[server]\nlisten = systemd\nlisten = systemd:admin\n"
	    "listen = 127.0.0.1:8080\n[route /e]\nhandler = echo\n");
	assert_int_equal(cfg->nlistens, 3);
	assert_int_equal(cfg->listens[0].kind, LISTEN_SYSTEMD);
	assert_null(cfg->listens[0].name);
	assert_int_equal(cfg->listens[1].kind, LISTEN_SYSTEMD);
	assert_string_equal(cfg->listens[1].name, "admin");
	assert_int_equal(cfg->listens[2].kind, LISTEN_INET);
	config_free(cfg);
	expect_errors("[server]\nlisten = systemd:\n",
	    NAME ":2: listen: expected 'systemd' or 'systemd:NAME' with NAME a "
	    "FileDescriptorName= of the .socket unit (1..255 printable characters, "
	    "no ':'), got 'systemd:'");
	expect_errors("[server]\nlisten = systemd:a:b\nlisten = systemd\n"
	    "listen = systemd\n",
	    NAME ":2: listen: expected 'systemd' or 'systemd:NAME' with NAME a "
	    "FileDescriptorName= of the .socket unit (1..255 printable characters, "
	    "no ':'), got 'systemd:a:b'",
	    NAME ":4: listen: duplicate of line 3 ('systemd')");
	expect_errors("[server]\nlisten = systemdx\n",
	    NAME ":2: listen: missing ':PORT' after the address, got 'systemdx'");
}

/*
 * listen = systemd:NAME OPTIONS: the name is NAME alone (it once kept the
 * options, "web tls", and so matched no FileDescriptorName=); the same
 * name twice is a duplicate whatever the options.
 */
static void
test_listen_systemd_options(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok("[server]\nlisten = systemd:web tls\n"
	    "listen = systemd:pp\tproxy_protocol\nlisten = systemd tls\n"
	    "trusted_proxies = 127.0.0.1\n"
	    "[tls]\ncertificate = /c.pem\nprivate_key = /k.pem\n"
	    "[route /e]\nhandler = echo\n");
	assert_int_equal(cfg->nlistens, 3);
	assert_int_equal(cfg->listens[0].kind, LISTEN_SYSTEMD);
	assert_string_equal(cfg->listens[0].name, "web");
	assert_string_equal(cfg->listens[0].spec, "systemd:web tls");
	assert_true(cfg->listens[0].tls);
	assert_string_equal(cfg->listens[1].name, "pp");
	assert_true(cfg->listens[1].proxy_protocol);
	assert_false(cfg->listens[1].tls);
	assert_null(cfg->listens[2].name);
	assert_true(cfg->listens[2].tls);
	config_free(cfg);
	expect_errors("[server]\nlisten = systemd:web\nlisten = systemd:web "
	    "proxy_protocol\ntrusted_proxies = 127.0.0.1\n",
	    NAME ":3: listen: duplicate of line 2 ('systemd:web')");
}

/* [server] user, group, allow_root: parsed here, resolved at start. */
static void
test_server_privilege_keys(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok(SERVER "[route /e]\nhandler = echo\n");
	assert_null(cfg->user);
	assert_null(cfg->group);
	assert_false(cfg->allow_root);
	config_free(cfg);
	cfg = parse_ok(SERVER "user = www-data\ngroup = 33\nallow_root = yes\n"
	    "[route /e]\nhandler = echo\n");
	assert_string_equal(cfg->user, "www-data");
	assert_string_equal(cfg->group, "33");
	assert_true(cfg->allow_root);
	config_free(cfg);
	cfg = parse_ok(SERVER "allow_root = off\n[route /e]\nhandler = echo\n");
	assert_false(cfg->allow_root);
	config_free(cfg);
	expect_errors(SERVER "user = a b\ngroup = x:y\nallow_root = maybe\n"
	    "[route /e]\nhandler = echo\nuser = z\n",
	    NAME ":3: user: expected a user name or numeric id (1..64 printable "
	    "characters, no spaces or ':'), got 'a b'",
	    NAME ":4: group: expected a group name or numeric id (1..64 printable "
	    "characters, no spaces or ':'), got 'x:y'",
	    NAME ":5: allow_root: expected yes or no, got 'maybe'",
	    NAME ":8: user: only valid in [server], not in [route /e]");
}

/*
 * Errors: one test per message.
 */

static void
test_error_cannot_open(void **state)
{
	struct config_errors	errs = { NULL, 0 };

	(void)state;
	assert_null(config_load("/nonexistent/wsrouted.ini", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0],
	    "/nonexistent/wsrouted.ini: cannot open: No such file or directory");
	config_errors_clear(&errs);
	assert_int_equal(errs.n, 0);
	assert_null(errs.msgs);
}

static void
test_error_cannot_read(void **state)
{
	struct config_errors	errs = { NULL, 0 };

	(void)state;
	/* fopen() of a directory works on Linux; reading it does not. */
	assert_null(config_load("/", &errs));
	assert_true(errs.n >= 1);
	assert_string_equal(errs.msgs[0], "/: cannot read: Is a directory");
	config_errors_clear(&errs);
}

static void
test_load_file(void **state)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	char			 path[] = "/tmp/test_config.XXXXXX";
	char			 want[64];
	int			 fd;
	static const char	 text[] = "[server]\nlisten = *:1\nbogus = 1\n";

	(void)state;
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, sizeof(text) - 1), sizeof(text) - 1);
	close(fd);

	assert_null(config_load(path, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:3: unknown key 'bogus' in [server]", path);
	assert_string_equal(errs.msgs[0], want);
	config_errors_clear(&errs);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, 22), 22);
	close(fd);
	cfg = config_load(path, &errs);
	assert_non_null(cfg);
	assert_string_equal(cfg->file, path);
	config_free(cfg);
	unlink(path);
}

static void
test_error_line_too_long(void **state)
{
	char	text[1024];

	(void)state;
	/* 199 bytes, then a good line (not eaten), then 400 bytes of a key. */
	memset(text, 0, sizeof(text));
	strcpy(text, SERVER ";");
	memset(text + strlen(text), 'x', 198);
	strcat(text, "\nmax_connections = 5\ntimeout = ");
	memset(text + strlen(text), '1', 390);
	strcat(text, "s\n");
	expect_errors(text,
	    NAME ":3: line too long (max 198 bytes)",
	    NAME ":5: line too long (max 198 bytes)");
}

static void
test_error_nul_byte(void **state)
{
	static const char	text[] = SERVER "timeout = 1\0s\nbogus = 1\n";
	const char *const	want[] = {
		NAME ":3: line contains a NUL byte",
		NAME ":4: unknown key 'bogus' in [server]",
	};

	(void)state;
	check_errors(text, sizeof(text) - 1, want, nitems(want));
}

static void
test_error_continuation(void **state)
{
	(void)state;
	/* Not a continuation of listen: an error, and the indented keys count. */
	expect_errors(SERVER "  127.0.0.2:8080\n  timeout = 5\n   ; comment\n"
	    "\tmax_connections = x\n",
	    NAME ":3: continuation lines are not supported: write one "
	    "'key = value' per line",
	    NAME ":6: max_connections: expected an integer 1..10000000, got 'x'");
}

static void
test_error_syntax(void **state)
{
	(void)state;
	expect_errors(SERVER "timeout 5s\n",
	    NAME ":3: syntax error: expected 'key = value' or '[section]'");
	/* inih would take ':' as a separator; the language has only '='. */
	expect_errors(SERVER "timeout: 5s\n",
	    NAME ":3: syntax error: expected 'key = value' or '[section]'");
	/* An '=' inside an inline comment does not count. */
	expect_errors(SERVER "timeout ; = 5s\n",
	    NAME ":3: syntax error: expected 'key = value' or '[section]'");
	expect_errors(SERVER " = 5s\n",
	    NAME ":3: syntax error: missing key before '='");
	expect_errors(SERVER "[route /x\n",
	    NAME ":3: syntax error: missing ']' in section header");
	expect_errors(SERVER "[route /x ; ]\n",
	    NAME ":3: syntax error: missing ']' in section header");
	expect_errors(SERVER "[route /x] handler = echo\n",
	    NAME ":3: syntax error: unexpected 'handler = echo' after ']'");
}

/* [admin] listen, log_format, access_log. */
static void
test_admin_and_access_log(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok(SERVER "log_format = json\naccess_log = /var/log/w.log\n"
	    "[admin]\nlisten = 127.0.0.1:9090\nlisten = [::1]:9090\n"
	    "listen = unix:/run/w.sock\n[admin]\nlisten = 10.0.0.1:9090 public\n"
	    "listen = 127.0.0.1:0\n");
	assert_int_equal(cfg->log_format, LOG_FORMAT_JSON);
	assert_string_equal(cfg->access_log, "/var/log/w.log");
	assert_int_equal(cfg->admin.nlistens, 5);
	assert_int_equal(cfg->admin.line, 5);
	assert_string_equal(cfg->admin.listens[3].spec, "10.0.0.1:9090 public");
	assert_int_equal(cfg->admin.listens[2].kind, LISTEN_UNIX);
	assert_int_equal(cfg->nlistens, 1);	/* [admin] listen is not [server]'s */
	config_free(cfg);
	cfg = parse_ok(SERVER);
	assert_null(cfg->access_log);		/* off */
	assert_int_equal(cfg->log_format, LOG_FORMAT_KV);
	assert_int_equal(cfg->admin.nlistens, 0);
	config_free(cfg);

	expect_errors(SERVER "[admin]\nlisten = 0.0.0.0:9090\n",
	    NAME ":4: listen: '0.0.0.0:9090' is not a loopback address: the admin "
	    "endpoints (metrics, readiness) would be reachable from the network; add "
	    "the option 'public' to mean it (listen = 0.0.0.0:9090 public) or use "
	    "127.0.0.1, [::1] or unix:/PATH");
	expect_errors(SERVER "[admin]\nlisten = [::ffff:10.0.0.1]:1\n",
	    NAME ":4: listen: '[::ffff:10.0.0.1]:1' is not a loopback address: the "
	    "admin endpoints (metrics, readiness) would be reachable from the network; "
	    "add the option 'public' to mean it (listen = [::ffff:10.0.0.1]:1 public) "
	    "or use 127.0.0.1, [::1] or unix:/PATH");
	expect_errors(SERVER "[admin]\nlisten = 127.0.0.1:9 pub\nlisten = unix:/a\n"
	    "listen = unix:/a\nlisten = 127.0.0.1:8080\n",
	    NAME ":4: listen: unexpected 'pub' after the address, the only option in "
	    "[admin] is 'public'",
	    NAME ":6: listen: duplicate of line 5 ('unix:/a')",
	    NAME ":7: listen: duplicate of line 2 ('127.0.0.1:8080' in [server])");
	expect_errors(SERVER "log_format = xml\naccess_log = log.txt\n[admin]\n"
	    "log_format = kv\n",
	    NAME ":3: log_format: expected one of kv, json, got 'xml'",
	    NAME ":4: access_log: expected stderr, off or an absolute file name, got "
	    "'log.txt'",
	    NAME ":6: log_format: not valid in [admin]");
	/* Passed sockets: named only, and one name once across [server] and [admin]. */
	cfg = parse_ok(SERVER "listen = systemd\n[admin]\nlisten = systemd:adm\n");
	assert_int_equal(cfg->admin.listens[0].kind, LISTEN_SYSTEMD);
	assert_string_equal(cfg->admin.listens[0].name, "adm");
	config_free(cfg);
	expect_errors(SERVER "listen = systemd:adm\n[admin]\nlisten = systemd:adm\n"
	    "listen = systemd\n",
	    NAME ":5: listen: duplicate of line 3 ('systemd:adm' in [server])",
	    NAME ":6: listen: a passed socket in [admin] must be named, expected "
	    "systemd:NAME (FileDescriptorName= of the .socket unit), got 'systemd'");
}

static void
test_error_sections(void **state)
{
	(void)state;
	/* The keys of a bad section are skipped, not reported again. */
	expect_errors(SERVER "[serverz]\nlisten = x\n",
	    NAME ":3: unknown section [serverz], expected [server], [tls], [admin] or "
	    "[route /PATH]");
	expect_errors(SERVER "[Server]\n",
	    NAME ":3: unknown section [Server], expected [server], [tls], [admin] or "
	    "[route /PATH]");
	expect_errors(SERVER "[routes /x]\n",
	    NAME ":3: unknown section [routes /x], expected [server], [tls], [admin] or "
	    "[route /PATH]");
	expect_errors(SERVER "[]\n",
	    NAME ":3: unknown section [], expected [server], [tls], [admin] or [route /PATH]");
	expect_errors(SERVER "[route]\nhandler = echo\n",
	    NAME ":3: [route]: missing path, expected [route /PATH]");
	expect_errors(SERVER "[route   ]\n",
	    NAME ":3: [route]: missing path, expected [route /PATH]");
	expect_errors(SERVER "[route echo]\nhandler = echo\n",
	    NAME ":3: [route echo]: the path must begin with '/', like "
	    "[route /chat]");
	expect_errors(SERVER "[route /echo?x=1]\n",
	    NAME ":3: [route /echo?x=1]: the path must not contain '?' (the "
	    "query string is not part of a route)");
	expect_errors(SERVER "[route /echo#top]\n",
	    NAME ":3: [route /echo#top]: the path must not contain '#' (the "
	    "query string is not part of a route)");
	expect_errors(SERVER "[route /a b]\n",
	    NAME ":3: [route /a b]: the path must not contain spaces or control "
	    "characters");
	expect_errors(SERVER "[route /a\x01]\n",
	    NAME ":3: [route /a?]: the path must not contain spaces or control "
	    "characters");
}

static void
test_error_duplicate_route(void **state)
{
	(void)state;
	/* The second one's keys are not checked: it is not a route. */
	expect_errors(SERVER "[route /echo]\nhandler = echo\n\n"
	    "[route /echo]\nhandler = nope\n",
	    NAME ":6: [route /echo]: duplicate route, first defined on line 3");
	/* Trailing slash: a different path, not a duplicate. */
	config_free(parse_ok(SERVER "[route /echo]\nhandler = echo\n"
	    "[route /echo/]\nhandler = echo\n"));
}

static void
test_error_outside_section(void **state)
{
	(void)state;
	expect_errors("listen = 127.0.0.1:1\n" SERVER,
	    NAME ":1: key 'listen' is outside any section, put it under "
	    "[server] or [route /PATH]");
}

static void
test_error_unknown_key(void **state)
{
	(void)state;
	expect_errors(SERVER "foo = 1\n",
	    NAME ":3: unknown key 'foo' in [server]");
	expect_errors(SERVER "max_conections = 5\n",
	    NAME ":3: unknown key 'max_conections' in [server]");
	/* Route keys that no handler claims are reported at their line. */
	expect_errors(SERVER "[route /p]\norigin = https://x.example\n"
	    "handler = echo\nmax_frame = 1\n",
	    NAME ":4: unknown key 'origin' in [route /p]",
	    NAME ":6: unknown key 'max_frame' in [route /p]");
}

static void
test_error_key_in_wrong_section(void **state)
{
	(void)state;
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "handshake_timeout = 1s\nlisten = 127.0.0.1:9\n",
	    NAME ":5: handshake_timeout: only valid in [server], not in "
	    "[route /p]",
	    NAME ":6: listen: only valid in [server], not in [route /p]");
	expect_errors(SERVER "handler = echo\norigins = *\n",
	    NAME ":3: handler: only valid in a [route /PATH] section, not in "
	    "[server]",
	    NAME ":4: origins: only valid in a [route /PATH] section, not in "
	    "[server]");
}

static void
test_error_duplicate_key(void **state)
{
	(void)state;
	expect_errors(SERVER "timeout = 1s\n\ntimeout = 2s\n",
	    NAME ":5: timeout: duplicate key, already set on line 3");
	expect_errors(SERVER "[route /p]\nhandler = echo\nhandler = echo\n",
	    NAME ":5: handler: duplicate key, already set on line 4");
	/* Even when the first value was bad. */
	expect_errors(SERVER "log_level = loud\nlog_level = info\n",
	    NAME ":3: log_level: expected one of error, warn, info, debug, "
	    "got 'loud'",
	    NAME ":4: log_level: duplicate key, already set on line 3");
}

static void
test_error_size(void **state)
{
	(void)state;
	expect_errors(SERVER "max_frame_size = 12 apples\n",
	    NAME ":3: max_frame_size: expected a size like 64KiB or 1MiB, "
	    "got '12 apples'");
	expect_errors(SERVER "max_message_size = -1\n",
	    NAME ":3: max_message_size: expected a size like 64KiB or 1MiB, "
	    "got '-1'");
	expect_errors(SERVER "max_message_size =\n",
	    NAME ":3: max_message_size: expected a size like 64KiB or 1MiB, "
	    "got ''");
	expect_errors(SERVER "max_frame_size = 99999999999999999999\n",
	    NAME ":3: max_frame_size: expected a size like 64KiB or 1MiB, "
	    "got '99999999999999999999'");
	expect_errors(SERVER "max_frame_size = 0\n",
	    NAME ":3: max_frame_size: must be greater than 0, got '0'");
	expect_errors(SERVER "max_message_size = 0B\n",
	    NAME ":3: max_message_size: must be greater than 0, got '0B'");
	expect_errors(SERVER "max_frame_size = 2049MiB\n",
	    NAME ":3: max_frame_size: must be at most 2GiB, got '2049MiB'");
	expect_errors(SERVER "max_output_buffer = 4095\n",
	    NAME ":3: max_output_buffer: must be at least 4KiB, got '4095'");
	expect_errors(SERVER "max_output_buffer = 3G\n",
	    NAME ":3: max_output_buffer: must be at most 2GiB, got '3G'");
}

static void
test_error_duration(void **state)
{
	(void)state;
	expect_errors(SERVER "close_timeout = soon\n",
	    NAME ":3: close_timeout: expected a duration like 500ms, 10s, 5m "
	    "or 1h, got 'soon'");
	expect_errors(SERVER "ping_period = 1d\n",
	    NAME ":3: ping_period: expected a duration like 500ms, 10s, 5m "
	    "or 1h, got '1d'");
	expect_errors(SERVER "close_timeout = 0\n",
	    NAME ":3: close_timeout: must be greater than 0, got '0'");
	expect_errors(SERVER "handshake_timeout = 0ms\n",
	    NAME ":3: handshake_timeout: must be greater than 0, got '0ms'");
	expect_errors(SERVER "timeout = 169h\n",
	    NAME ":3: timeout: must be at most 168h, got '169h'");
}

static void
test_error_count(void **state)
{
	(void)state;
	expect_errors(SERVER "max_connections = 0\n",
	    NAME ":3: max_connections: expected an integer 1..10000000, got '0'");
	expect_errors(SERVER "max_connections = 10000001\n",
	    NAME ":3: max_connections: expected an integer 1..10000000, "
	    "got '10000001'");
	expect_errors(SERVER "max_connections = 1k\n",
	    NAME ":3: max_connections: expected an integer 1..10000000, "
	    "got '1k'");
}

static void
test_error_log_level(void **state)
{
	(void)state;
	expect_errors(SERVER "log_level = verbose\n",
	    NAME ":3: log_level: expected one of error, warn, info, debug, "
	    "got 'verbose'");
	expect_errors(SERVER "log_level = INFO\n",
	    NAME ":3: log_level: expected one of error, warn, info, debug, "
	    "got 'INFO'");
}

static void
test_error_listen(void **state)
{
	char	path[128], text[256], want[256];

	(void)state;
	expect_errors("[server]\nlisten = 127.0.0.1\n",
	    NAME ":2: listen: missing ':PORT' after the address, got '127.0.0.1'");
	expect_errors("[server]\nlisten = 127.0.0.1:99999\n",
	    NAME ":2: listen: expected a port 0..65535 after ':', "
	    "got '127.0.0.1:99999'");
	expect_errors("[server]\nlisten = localhost:80\n",
	    NAME ":2: listen: expected an IPv4 address like 127.0.0.1, [IPv6] "
	    "or '*' before ':PORT' (host names are not resolved), "
	    "got 'localhost:80'");
	expect_errors("[server]\nlisten = ::1:80\n",
	    NAME ":2: listen: an IPv6 address must be in brackets, like "
	    "[::1]:8080, got '::1:80'");
	expect_errors("[server]\nlisten = [::1\n",
	    NAME ":2: listen: missing ']' after the IPv6 address, got '[::1'");
	expect_errors("[server]\nlisten = [::g]:80\n",
	    NAME ":2: listen: expected an IPv6 address in brackets, like "
	    "[::1]:8080 (zone indexes are not supported), got '[::g]:80'");
	expect_errors("[server]\nlisten = unix:run/x.sock\n",
	    NAME ":2: listen: a unix socket path must be absolute, like "
	    "unix:/run/wsrouted.sock, got 'unix:run/x.sock'");
	/* sun_path is 108 bytes: 107 and the NUL. */
	memset(path, 'a', 108);
	path[0] = '/';
	path[108] = '\0';
	snprintf(text, sizeof(text), "[server]\nlisten = unix:%s\n", path);
	snprintf(want, sizeof(want), NAME ":2: listen: unix socket path too "
	    "long (max 107 bytes), got 'unix:%s'", path);
	expect_errors(text, want);
	expect_errors("[server]\nlisten =\n",
	    NAME ":2: listen: missing ':PORT' after the address, got ''");
	expect_errors("[server]\nlisten = 127.0.0.1:443 tls\n",
	    NAME ":2: listen: option 'tls' needs a [tls] section with "
	    "certificate and private_key");
	expect_errors("[server]\nlisten = 127.0.0.1:443 tls tls\n",
	    NAME ":2: listen: option 'tls' given twice");
	expect_errors("[server]\nlisten = 127.0.0.1:80 proxy_protocol\n",
	    NAME ":2: listen: option 'proxy_protocol' needs trusted_proxies in "
	    "[server] (the PROXY header is only accepted from them)");
	expect_errors("[server]\nlisten = 127.0.0.1:80 127.0.0.1:81\n",
	    NAME ":2: listen: unexpected '127.0.0.1:81' after the address, "
	    "expected the options tls or proxy_protocol (one "
	    "address per line; comments start with ' ;')");
	expect_errors("[server]\nlisten = 127.0.0.1:80 # main\n",
	    NAME ":2: listen: unexpected '# main' after the address, "
	    "expected the options tls or proxy_protocol (one "
	    "address per line; comments start with ' ;')");
}

static void
test_error_listen_missing(void **state)
{
	(void)state;
	expect_errors("[route /echo]\nhandler = echo\n",
	    NAME ": listen: missing, at least one 'listen = ADDRESS:PORT' is "
	    "required in [server]");
	expect_errors("",
	    NAME ": listen: missing, at least one 'listen = ADDRESS:PORT' is "
	    "required in [server]");
	/* A bad listen is reported once, not also as missing. */
	expect_errors("[server]\nlisten = nope\n",
	    NAME ":2: listen: missing ':PORT' after the address, got 'nope'");
}

static void
test_error_handler(void **state)
{
	(void)state;
	expect_errors(SERVER "[route /p]\nhandler = ecco\n",
	    NAME ":4: handler: unknown handler 'ecco', expected one of: echo, broadcast, "
	    "backend, exec, or plugin:NAME");
	expect_errors(SERVER "[route /p]\nhandler =\n",
	    NAME ":4: handler: unknown handler '', expected one of: echo, broadcast, "
	    "backend, exec, or plugin:NAME");
	expect_errors(SERVER "[route /p]\ntimeout = 1s\n",
	    NAME ":3: [route /p]: handler: missing, expected e.g. "
	    "'handler = echo'");
	/* Keys a plugin might take are its business, not unknown keys. */
	expect_errors(SERVER "[route /p]\nhandler = plugin:chat\nroom = lobby\n"
	    "max_users = 5\nbogus = 1\n[route /q]\nhandler = plugin:../x\n",
	    NAME ":9: handler: bad plugin name in 'plugin:../x', expected "
	    "plugin:NAME with NAME made of letters, digits, '_', '-' and '.' "
	    "(not first), at most 64");
	expect_errors(SERVER "[route /p]\nhandler = plugin:\n",
	    NAME ":4: handler: bad plugin name in 'plugin:', expected "
	    "plugin:NAME with NAME made of letters, digits, '_', '-' and '.' "
	    "(not first), at most 64");
	/* echo takes no options: an unknown key there is a typo. */
	expect_errors(SERVER "[route /p]\nhandler = echo\nroom = lobby\n",
	    NAME ":5: unknown key 'room' in [route /p]");
	expect_errors(SERVER "[route /p]\nhandler = echo\ncontent = xml\n",
	    NAME ":5: content: expected one of any, text, binary, json, got 'xml'");
	expect_errors("[server]\nlisten = 127.0.0.1:1\nplugin_dir = plugins\n",
	    NAME ":3: plugin_dir: expected an absolute directory, got 'plugins'");
}

/* Plugin and broadcast routes keep their unknown keys, in order, with lines. */
static void
test_handler_options(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok("[server]\nlisten = 127.0.0.1:1\nplugin_dir = /opt/p\n"
	    "[route /a]\nhandler = plugin:chat\nroom = lobby\ncontent = json\n"
	    "max_users = 5\n[route /b]\nhandler = broadcast\nmax_queue = 9\n"
	    "[route /c]\nhandler = echo\n");
	assert_string_equal(cfg->plugin_dir, "/opt/p");
	assert_int_equal(cfg->nroutes, 3);
	assert_string_equal(cfg->routes[0].handler, "plugin:chat");
	assert_int_equal(cfg->routes[0].content, CONTENT_JSON);
	assert_int_equal(cfg->routes[0].noptions, 2);
	assert_string_equal(cfg->routes[0].options[0].key, "room");
	assert_string_equal(cfg->routes[0].options[0].value, "lobby");
	assert_int_equal(cfg->routes[0].options[0].line, 6);
	assert_string_equal(cfg->routes[0].options[1].key, "max_users");
	assert_int_equal(cfg->routes[0].options[1].line, 8);
	assert_int_equal(cfg->routes[1].noptions, 1);
	assert_string_equal(cfg->routes[1].options[0].key, "max_queue");
	assert_int_equal(cfg->routes[2].content, CONTENT_ANY);
	config_free(cfg);
	cfg = parse_ok(SERVER);
	assert_null(cfg->plugin_dir);
	config_free(cfg);
}

static void
test_error_origins(void **state)
{
	(void)state;
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "origins = https://a.example/\n",
	    NAME ":5: origins: 'https://a.example/' is not an origin, expected "
	    "scheme://host[:port] without a path, like https://example.com");
	expect_errors(SERVER "[route /p]\nhandler = echo\norigins = a.example\n",
	    NAME ":5: origins: 'a.example' is not an origin, expected "
	    "scheme://host[:port] without a path, like https://example.com");
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "origins = https://a.example, https://a.example\n",
	    NAME ":5: origins: 'https://a.example' is listed twice");
	expect_errors(SERVER "[route /p]\nhandler = echo\norigins = , ,\n",
	    NAME ":5: origins: expected '*' or a list of origins like "
	    "https://example.com, got ', ,'");
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "origins = *, https://a.example\n",
	    NAME ":5: origins: '*' (all origins) cannot be combined with a list "
	    "of origins");
}

static void
test_error_subprotocols(void **state)
{
	(void)state;
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "subprotocols = chat v1\n",
	    NAME ":5: subprotocols: expected comma-separated tokens like "
	    "chat.v1, chat.v2, got 'chat v1'");
	expect_errors(SERVER "[route /p]\nhandler = echo\nsubprotocols = a,,b\n",
	    NAME ":5: subprotocols: expected comma-separated tokens like "
	    "chat.v1, chat.v2, got 'a,,b'");
	expect_errors(SERVER "[route /p]\nhandler = echo\nsubprotocols = a,\n",
	    NAME ":5: subprotocols: expected comma-separated tokens like "
	    "chat.v1, chat.v2, got 'a,'");
	expect_errors(SERVER "[route /p]\nhandler = echo\nsubprotocols =\n",
	    NAME ":5: subprotocols: expected comma-separated tokens like "
	    "chat.v1, chat.v2, got ''");
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "subprotocols = chat/1\n",
	    NAME ":5: subprotocols: expected comma-separated tokens like "
	    "chat.v1, chat.v2, got 'chat/1'");
	expect_errors(SERVER "[route /p]\nhandler = echo\n"
	    "subprotocols = x, y, x\n",
	    NAME ":5: subprotocols: 'x' is listed twice");
}

static void
test_error_control_chars_in_messages(void **state)
{
	(void)state;
	/* Quoted values must not put escape sequences on a terminal. */
	expect_errors(SERVER "log_level = \x1b[31mred\n",
	    NAME ":3: log_level: expected one of error, warn, info, debug, "
	    "got '?[31mred'");
}

static void
test_all_errors_at_once(void **state)
{
	(void)state;
	/*
	 * Parsing goes on after every error, and the messages come out in
	 * line order even when found at the end (the unknown route keys).
	 */
	expect_errors(
	    "; line 1\n"
	    "[server]\n"
	    "listen = 127.0.0.1:1\n"
	    "foo = 1\n"				/* 4 */
	    "[route /a]\n"
	    "handler = echo\n"
	    "bar = 2\n"				/* 7 */
	    "close_timeout = soon\n"		/* 8 */
	    "[route /b]\n"			/* 9: no handler */
	    "[nope]\n"				/* 10 */
	    "[server]\n"
	    "max_connections = many\n"		/* 12 */
	    "oops\n",				/* 13 */
	    NAME ":4: unknown key 'foo' in [server]",
	    NAME ":7: unknown key 'bar' in [route /a]",
	    NAME ":8: close_timeout: expected a duration like 500ms, 10s, 5m "
	    "or 1h, got 'soon'",
	    NAME ":9: [route /b]: handler: missing, expected e.g. "
	    "'handler = echo'",
	    NAME ":10: unknown section [nope], expected [server], [tls], [admin] or [route /PATH]",
	    NAME ":12: max_connections: expected an integer 1..10000000, "
	    "got 'many'",
	    NAME ":13: syntax error: expected 'key = value' or '[section]'");
}

static void
test_errors_appended(void **state)
{
	struct config_errors	 errs = { NULL, 0 };
	char			*first;

	(void)state;
	assert_null(parse(SERVER "a = 1\n", &errs));
	assert_int_equal(errs.n, 1);
	first = errs.msgs[0];
	assert_null(parse(SERVER "b = 1\n", &errs));
	assert_int_equal(errs.n, 2);
	assert_ptr_equal(errs.msgs[0], first);
	assert_string_equal(errs.msgs[1], NAME ":3: unknown key 'b' in [server]");
	config_errors_clear(&errs);
	config_errors_clear(&errs);		/* twice is fine */

	/* No list: the errors are dropped, the result is the same. */
	assert_null(parse(SERVER "a = 1\n", NULL));
	config_free(NULL);
}

/*
 * Several files (issue 10): include, the default conf.d/ include, errors
 * naming both places, -T's dump. Each test builds a tree in a fresh
 * directory under /tmp and removes it.
 */

static char	tree[64];

static void
tree_new(void)
{
	snprintf(tree, sizeof(tree), "/tmp/test_config_tree.XXXXXX");
	assert_non_null(mkdtemp(tree));
}

static void
tree_rm(void)
{
	char	cmd[128];

	/* The directory is ours (mkdtemp), and its name has no quote. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tree);
	assert_int_equal(system(cmd), 0);
}

/* Writes tree/rel (creating conf.d/ if rel is in it). */
static void
tree_put(const char *rel, const char *text)
{
	char	 path[256];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/conf.d", tree);
	if (strncmp(rel, "conf.d/", 7) == 0)
		(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s", tree, rel);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* "%T" in a wanted message stands for the tree's directory. */
static char *
tree_msg(const char *fmt)
{
	static char	buf[8][512];
	static int	next;
	char		*out = buf[next++ % 8], *o = out;
	const char	*p;

	for (p = fmt; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == 'T') {
			o += sprintf(o, "%s", tree);
			p++;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Loading tree/main.ini fails with exactly want[0..n) ("%T": the tree). */
static void
tree_check(const char *const *want, size_t n)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	char			 main_ini[128];
	size_t			 i;
	int			 same;

	snprintf(main_ini, sizeof(main_ini), "%s/main.ini", tree);
	cfg = config_load(main_ini, &errs);
	same = errs.n == n;
	for (i = 0; same && i < n; i++)
		same = strcmp(errs.msgs[i], tree_msg(want[i])) == 0;
	if (!same) {
		for (i = 0; i < n; i++)
			print_message("want: %s\n", tree_msg(want[i]));
		for (i = 0; i < errs.n; i++)
			print_message("got:  %s\n", errs.msgs[i]);
	}
	config_free(cfg);
	config_errors_clear(&errs);
	assert_true(same);
	assert_null(cfg);
}

#define tree_errors(...) do {						\
	const char *const want_[] = { __VA_ARGS__ };			\
	tree_check(want_, nitems(want_));				\
} while (0)

static struct config *
tree_load_ok(void)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	char			 main_ini[128];
	size_t			 i;

	snprintf(main_ini, sizeof(main_ini), "%s/main.ini", tree);
	cfg = config_load(main_ini, &errs);
	for (i = 0; i < errs.n; i++)
		print_message("unexpected error: %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	return cfg;
}

static void
test_include_tree(void **state)
{
	struct config	*cfg;

	(void)state;
	tree_new();
	tree_put("main.ini", SERVER "include = extra/*.ini\n"
	    "[route /m]\nhandler = echo\n");
	(void)mkdir(tree_msg("%T/extra"), 0755);
	tree_put("extra/b.ini", "[server]\ntimeout = 30s\n");
	tree_put("extra/a.ini", "[route /x]\nhandler = echo\n"
	    "max_frame_size = 4KiB\n");
	/* Lexical order, after the main file: 10- before 9-. */
	tree_put("conf.d/9-b.ini", "[route /b]\nhandler = echo\n");
	tree_put("conf.d/10-a.ini", "[route /a]\nhandler = echo\n");
	tree_put("conf.d/skipped.conf", "not ini at all\n");
	cfg = tree_load_ok();
	assert_int_equal(cfg->nfiles, 5);
	assert_string_equal(cfg->files[0].path, tree_msg("%T/main.ini"));
	assert_null(cfg->files[0].from);
	assert_string_equal(cfg->files[1].path, tree_msg("%T/extra/a.ini"));
	assert_string_equal(cfg->files[1].from, cfg->files[0].path);
	assert_int_equal(cfg->files[1].from_line, 3);
	assert_string_equal(cfg->files[2].path, tree_msg("%T/extra/b.ini"));
	assert_string_equal(cfg->files[3].path, tree_msg("%T/conf.d/10-a.ini"));
	assert_int_equal(cfg->files[3].from_line, 0);	/* the default include */
	assert_string_equal(cfg->files[4].path, tree_msg("%T/conf.d/9-b.ini"));

	/* Routes in the order read; the main file's after its include line. */
	assert_int_equal(cfg->nroutes, 4);
	assert_string_equal(cfg->routes[0].path, "/x");
	assert_string_equal(cfg->routes[0].file, cfg->files[1].path);
	assert_int_equal(cfg->routes[0].line, 1);
	assert_int_equal(cfg->routes[0].limits.max_frame_size, 4096);
	assert_int_equal(cfg->routes[0].limits.timeout_ms, 30000);
	assert_string_equal(cfg->routes[1].path, "/m");
	assert_string_equal(cfg->routes[2].path, "/a");
	assert_string_equal(cfg->routes[3].path, "/b");
	assert_int_equal(cfg->limits.timeout_ms, 30000);
	config_free(cfg);

	/* include_default = no: conf.d/ is not read (its files are broken). */
	tree_put("conf.d/10-a.ini", "bogus\n");
	tree_put("main.ini", SERVER "include_default = no\n");
	cfg = tree_load_ok();
	assert_int_equal(cfg->nfiles, 1);
	assert_int_equal(cfg->include_default, 0);
	config_free(cfg);
	tree_rm();

	/* No conf.d at all, and an empty one, are fine. */
	tree_new();
	tree_put("main.ini", SERVER);
	cfg = tree_load_ok();
	assert_int_equal(cfg->nfiles, 1);
	assert_int_equal(cfg->include_default, 1);
	config_free(cfg);
	(void)mkdir(tree_msg("%T/conf.d"), 0755);
	cfg = tree_load_ok();
	config_free(cfg);
	tree_rm();
}

static void
test_include_special_dirs(void **state)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	char			 path[256];
	static const char	 text[] = SERVER "include = a.ini\n";

	(void)state;
	tree_new();
	/* Glob characters in the including file's directory are literal. */
	assert_int_equal(mkdir(tree_msg("%T/we*rd[1]"), 0755), 0);
	tree_put("we*rd[1]/main.ini", SERVER "include = *.inc\n");
	tree_put("we*rd[1]/r.inc", "[route /r]\nhandler = echo\n");
	assert_int_equal(mkdir(tree_msg("%T/werd1"), 0755), 0);
	tree_put("werd1/r.inc", "[route /wrong]\nhandler = echo\n");
	snprintf(path, sizeof(path), "%s/we*rd[1]/main.ini", tree);
	cfg = config_load(path, &errs);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->nroutes, 1);
	assert_string_equal(cfg->routes[0].path, "/r");
	config_free(cfg);

	/* Text in memory: include works from name's directory, conf.d not. */
	tree_put("conf.d/bad.ini", "bogus\n");
	tree_put("a.ini", "[route /a]\nhandler = echo\n");
	snprintf(path, sizeof(path), "%s/main.ini", tree);
	cfg = config_parse_string(text, strlen(text), path, &errs);
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->nfiles, 2);
	assert_string_equal(cfg->routes[0].path, "/a");
	config_free(cfg);
	tree_rm();
}

static void
test_include_origins(void **state)
{
	struct config	*cfg;
	size_t		 i;

	(void)state;
	tree_new();
	tree_put("main.ini", SERVER "include = a.ini\n");
	tree_put("a.ini", "[server]\nlisten = 127.0.0.1:2\ntimeout = 9s\n"
	    "[route /p]\nhandler = echo\nping_period = 1s\n");
	cfg = tree_load_ok();
	assert_int_equal(cfg->nlistens, 2);
	assert_string_equal(cfg->listens[0].file, cfg->files[0].path);
	assert_int_equal(cfg->listens[0].line, 2);
	assert_string_equal(cfg->listens[1].file, cfg->files[1].path);
	assert_int_equal(cfg->listens[1].line, 2);
	for (i = 0; i < CONFIG_KEYS_MAX; i++) {
		if (cfg->origin[i].file != NULL &&
		    cfg->origin[i].file == cfg->files[1].path &&
		    cfg->origin[i].line == 3)
			break;
	}
	assert_true(i < CONFIG_KEYS_MAX);	/* timeout, a.ini:3 */
	for (i = 0; i < CONFIG_KEYS_MAX; i++) {
		if (cfg->routes[0].origin[i].file == cfg->files[1].path &&
		    cfg->routes[0].origin[i].line == 6)
			break;
	}
	assert_true(i < CONFIG_KEYS_MAX);	/* ping_period, a.ini:6 */
	config_free(cfg);
	tree_rm();
}

static void
test_error_include_duplicates(void **state)
{
	(void)state;
	tree_new();
	/* The same route path, the same [server] key, the same address. */
	tree_put("main.ini", SERVER "timeout = 1s\n[route /x]\nhandler = echo\n");
	tree_put("conf.d/a.ini", "[route /x]\nhandler = echo\n"
	    "[server]\ntimeout = 2s\nlisten = 127.0.0.1:8080\n");
	tree_errors(
	    "%T/conf.d/a.ini:1: [route /x]: duplicate route, first defined at "
	    "%T/main.ini:4",
	    "%T/conf.d/a.ini:4: timeout: duplicate key, already set at "
	    "%T/main.ini:3",
	    "%T/conf.d/a.ini:5: listen: duplicate of %T/main.ini:2 "
	    "('127.0.0.1:8080')");
	tree_rm();
}

static void
test_error_include_files(void **state)
{
	char	path[256], name[16];
	int	i;

	(void)state;
	tree_new();
	/* A name must exist; a pattern may match nothing. */
	tree_put("main.ini", SERVER "include = nope.ini\ninclude = none/*.ini\n"
	    "include =\n");
	tree_errors(
	    "%T/main.ini:3: include: cannot open '%T/nope.ini': No such file "
	    "or directory",
	    "%T/main.ini:5: include: expected a file name or a pattern like "
	    "conf.d/*.ini");
	/* Cycles, and a file read twice. */
	tree_put("main.ini", SERVER "include = a.ini\ninclude = a.ini\n");
	tree_put("a.ini", "[server]\ninclude = b.ini\n");
	tree_put("b.ini", "[server]\ninclude = main.ini\ninclude = b.ini\n");
	tree_errors(
	    "%T/main.ini:4: include: '%T/a.ini' is already included from "
	    "%T/main.ini:3",
	    "%T/b.ini:2: include: '%T/main.ini' is already being read "
	    "(include cycle)",
	    "%T/b.ini:3: include: '%T/b.ini' is already being read "
	    "(include cycle)");
	/* Unreadable: a dangling link, a directory, a loop of links. */
	tree_put("main.ini", SERVER);
	(void)mkdir(tree_msg("%T/conf.d"), 0755);
	assert_int_equal(symlink(tree_msg("%T/gone"),
	    tree_msg("%T/conf.d/1.ini")), 0);
	assert_int_equal(mkdir(tree_msg("%T/conf.d/2.ini"), 0755), 0);
	assert_int_equal(symlink("3.ini", tree_msg("%T/conf.d/3.ini")), 0);
	tree_errors(
	    "%T/main.ini: include: cannot open '%T/conf.d/1.ini': No such "
	    "file or directory",
	    "%T/main.ini: include: '%T/conf.d/2.ini' is not a regular file",
	    "%T/main.ini: include: cannot open '%T/conf.d/3.ini': Too many "
	    "levels of symbolic links");
	tree_rm();

	/* Nesting: main.ini → f1 → … → f9, one level too many. */
	tree_new();
	tree_put("main.ini", SERVER "include = f1.ini\n");
	for (i = 1; i <= 9; i++) {
		snprintf(path, sizeof(path), "[server]\ninclude = f%d.ini\n", i + 1);
		snprintf(name, sizeof(name), "f%d.ini", i);
		tree_put(name, i < 9 ? path : "[route /deep]\nhandler = echo\n");
	}
	tree_errors(
	    "%T/f8.ini:2: include: '%T/f9.ini' is nested too deeply (at most "
	    "8 levels of include)");
	tree_rm();
}

static void
test_error_include_keys(void **state)
{
	(void)state;
	tree_new();
	tree_put("main.ini", SERVER "include = a.ini\nbogus = 1\n"
	    "include_default = maybe\n[route /x]\nhandler = echo\n"
	    "include = a.ini\n");
	/* Every file starts outside any section; errors: file order, line. */
	tree_put("a.ini", "timeout = 1s\n[server]\ninclude_default = no\n"
	    "[route /y]\n");
	tree_errors(
	    "%T/main.ini:4: unknown key 'bogus' in [server]",
	    "%T/main.ini:5: include_default: expected yes or no, got 'maybe'",
	    "%T/main.ini:8: include: only valid in [server], not in [route /x]",
	    "%T/a.ini:1: key 'timeout' is outside any section, put it under "
	    "[server] or [route /PATH]",
	    "%T/a.ini:3: include_default: only valid in the main file "
	    "(%T/main.ini)",
	    "%T/a.ini:4: [route /y]: handler: missing, expected e.g. "
	    "'handler = echo'");
	tree_rm();
}

/* The dump minus comments: what a config made of it sets. */
static void
strip_comments(char *s)
{
	char	*in = s, *out = s, *semi, *nl;

	while (*in != '\0') {
		nl = strchr(in, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (*in != ';') {
			if ((semi = strstr(in, " ; ")) != NULL)
				*semi = '\0';
			out += sprintf(out, "%s\n", in);
		}
		in = nl + 1;
	}
	*out = '\0';
}

static void
test_dump_round_trip(void **state)
{
	struct config	*cfg, *again;
	char		*one, *two, *p;
	char		 line[512], longdir[171];

	(void)state;
	tree_new();
	tree_put("main.ini", SERVER "listen = unix:/run/x.sock\n"
	    "log_level = debug\nmax_connections = 77\n");
	tree_put("conf.d/a.ini", "[server]\nping_period = 1500ms\n"
	    "max_output_buffer = 8KiB\n[route /a;b]\nhandler = echo\n"
	    "origins = https://a.example,http://b:3000\n"
	    "subprotocols = v2,v1\ntimeout = 0\nmax_message_size = 2G\n");
	tree_put("conf.d/b.ini", "[route /b]\nhandler = echo\n");
	/*
	 * A file whose name alone nearly fills a line: its "; FILE:LINE"
	 * comments go on lines of their own, shortened to fit, so that the
	 * dump stays readable as a config.
	 */
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	snprintf(line, sizeof(line), "%s/conf.d/%s", tree, longdir);
	assert_int_equal(mkdir(line, 0755), 0);
	snprintf(line, sizeof(line), "conf.d/%s/c.ini", longdir);
	tree_put(line, "[route /c]\nhandler = echo\n");
	tree_put("conf.d/c.ini", "[server]\ninclude = */c.ini\n");
	cfg = tree_load_ok();
	assert_non_null(one = config_dump(cfg));
	for (p = one; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(strcspn(p + 1, "\n") <= INI_LINE_MAX);
	assert_non_null(p = strstr(one, "[route /c]\n"));
	assert_true(p[-2] == '1' && p[-3] == ':');	/* "...c.ini:1" above */

	/* Every value, where it came from, defaults marked as such. */
	snprintf(line, sizeof(line), "\nlog_level = debug ; %s/main.ini:4\n",
	    tree);
	assert_non_null(strstr(one, line));
	assert_non_null(strstr(one, "\nhandshake_timeout = 10s ; default\n"));
	assert_non_null(strstr(one, "\ninclude_default = no ; everything is "
	    "below; was: yes (default)\n"));
	snprintf(line, sizeof(line), "\nping_period = 1500ms ; "
	    "%s/conf.d/a.ini:2\n", tree);
	assert_non_null(strstr(one, line));
	p = strstr(one, "[route /a;b]");
	assert_non_null(p);
	assert_non_null(strstr(p, "\ntimeout = 0s ; "));
	assert_non_null(strstr(p, "\nmax_message_size = 2GiB ; "));
	assert_non_null(strstr(p, "\n;ping_period = 1500ms ; inherited from "
	    "[server]\n"));
	assert_non_null(strstr(one, "[route /b] ; "));
	assert_non_null(strstr(one, "\norigins = * ; default\n"));

	/* Read back, it sets the same: the same dump but for the comments. */
	again = config_parse_string(one, strlen(one), "dump.ini", NULL);
	assert_non_null(again);
	assert_non_null(two = config_dump(again));
	assert_non_null(strstr(two, "\nlog_level = debug ; dump.ini:"));
	strip_comments(one);
	strip_comments(two);
	assert_string_equal(one, two);
	free(one);
	free(two);
	config_free(again);
	config_free(cfg);
	tree_rm();
}

/* drain_window, proxy_idle_timeout, max_connection_lifetime, devconsole. */
static void
test_ops_keys(void **state)
{
	struct config	*cfg;

	(void)state;
	cfg = parse_ok(SERVER "[route /a]\nhandler = echo\n");
	assert_int_equal(cfg->drain_window_ms, CONFIG_DEFAULT_DRAIN_WINDOW_MS);
	/* The defaults fit: 5 s of window + 5 s of close_timeout = 10 s. */
	assert_int_equal(config_drain_window_ms(cfg), CONFIG_DEFAULT_DRAIN_WINDOW_MS);
	assert_int_equal(cfg->proxy_idle_timeout_ms, 0);
	assert_int_equal(cfg->limits.max_connection_lifetime_ms, 0);
	assert_false(cfg->routes[0].devconsole);
	config_free(cfg);

	cfg = parse_ok(SERVER "drain_window = 0\nproxy_idle_timeout = 1m\n"
	    "max_connection_lifetime = 1h\n"
	    "[route /a]\nhandler = echo\ndevconsole = yes\n"
	    "[route /b]\nhandler = echo\nmax_connection_lifetime = 90s\n");
	assert_int_equal(cfg->drain_window_ms, 0);
	assert_int_equal(cfg->proxy_idle_timeout_ms, 60000);
	assert_true(cfg->routes[0].devconsole);
	assert_int_equal(cfg->routes[0].limits.max_connection_lifetime_ms, 3600000);
	assert_false(cfg->routes[1].devconsole);
	assert_int_equal(cfg->routes[1].limits.max_connection_lifetime_ms, 90000);
	config_free(cfg);

	expect_errors(SERVER "drain_window = soon\ndevconsole = yes\n"
	    "[route /a]\nhandler = echo\ndevconsole = maybe\ndrain_window = 1s\n"
	    "proxy_idle_timeout = 1s\n",
	    NAME ":3: drain_window: expected a duration like 500ms, 10s, 5m or 1h, "
	    "got 'soon'",
	    NAME ":4: devconsole: only valid in a [route /PATH] section, not in [server]",
	    NAME ":7: devconsole: expected yes or no, got 'maybe'",
	    NAME ":8: drain_window: only valid in [server], not in [route /a]",
	    NAME ":9: proxy_idle_timeout: only valid in [server], not in [route /a]");
	assert_true(config_key_index("devconsole") >= 0);
	assert_int_equal(config_key_index("no_such_key"), -1);

	/* The window a stop uses leaves the last peer a whole close_timeout. */
	cfg = parse_ok(SERVER "drain_window = 8s\nshutdown_timeout = 10s\nclose_timeout = 3s\n"
	    "[route /a]\nhandler = echo\n");
	assert_int_equal(config_drain_window_ms(cfg), 7000);
	config_free(cfg);
	cfg = parse_ok(SERVER "shutdown_timeout = 2s\n[route /a]\nhandler = echo\n");
	assert_int_equal(config_drain_window_ms(cfg), 0);
	config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_valid),
		cmocka_unit_test(test_size_invalid),
		cmocka_unit_test(test_duration_valid),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_listen_ipv4),
		cmocka_unit_test(test_listen_ipv6),
		cmocka_unit_test(test_listen_unix),
		cmocka_unit_test(test_listen_invalid),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_server_key),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_route_inherits_and_overrides),
		cmocka_unit_test(test_server_twice),
		cmocka_unit_test(test_origins),
		cmocka_unit_test(test_subprotocols),
		cmocka_unit_test(test_syntax_accepted),
		cmocka_unit_test(test_listen_duplicates),
		cmocka_unit_test(test_listen_systemd),
		cmocka_unit_test(test_listen_systemd_options),
		cmocka_unit_test(test_server_privilege_keys),
		cmocka_unit_test(test_reference_config),
		cmocka_unit_test(test_reference_config_commented_keys),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_error_cannot_open),
		cmocka_unit_test(test_error_cannot_read),
		cmocka_unit_test(test_error_line_too_long),
		cmocka_unit_test(test_error_nul_byte),
		cmocka_unit_test(test_error_continuation),
		cmocka_unit_test(test_error_syntax),
		cmocka_unit_test(test_error_sections),
		cmocka_unit_test(test_admin_and_access_log),
		cmocka_unit_test(test_error_duplicate_route),
		cmocka_unit_test(test_error_outside_section),
		cmocka_unit_test(test_error_unknown_key),
		cmocka_unit_test(test_error_key_in_wrong_section),
		cmocka_unit_test(test_error_duplicate_key),
		cmocka_unit_test(test_error_size),
		cmocka_unit_test(test_error_duration),
		cmocka_unit_test(test_error_count),
		cmocka_unit_test(test_error_log_level),
		cmocka_unit_test(test_error_listen),
		cmocka_unit_test(test_error_listen_missing),
		cmocka_unit_test(test_error_handler),
		cmocka_unit_test(test_handler_options),
		cmocka_unit_test(test_error_origins),
		cmocka_unit_test(test_error_subprotocols),
		cmocka_unit_test(test_error_control_chars_in_messages),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_errors_appended),
		cmocka_unit_test(test_include_tree),
		cmocka_unit_test(test_include_special_dirs),
		cmocka_unit_test(test_include_origins),
		cmocka_unit_test(test_error_include_duplicates),
		cmocka_unit_test(test_error_include_files),
		cmocka_unit_test(test_error_include_keys),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_ops_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
