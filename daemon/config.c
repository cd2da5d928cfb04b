/*
 * config.c — PURE. The config loader: INI text → a validated struct config,
 * or every error found, each as "FILE:LINE: key: what was expected".
 *
 * inih is used as the tokenizer only (key, '=', value, inline comments), and
 * the Debian build of it (r55) has three properties that shape this file:
 *
 *  - its handler gets no line number, and it has no section-start callback,
 *    so a [route] with no keys (or an unknown [section]) would never be seen.
 *    We therefore feed inih through our own reader, which counts lines and
 *    handles blank lines, comments and [section] headers itself: inih only
 *    ever sees "key = value" lines, and our handler knows their line from
 *    the reader.
 *  - lines are read into a fixed INI_MAX_LINE buffer and a longer one is
 *    silently split in two. The reader measures every line first and refuses
 *    one that would not fit ("line too long"), always handing inih a line
 *    that ends in '\n' (newer inih releases discard "the rest" of a line
 *    that does not, which would eat our next line).
 *  - multi-line values are on: an indented line continues the previous key,
 *    so "  max_frame_size = 1MiB" under a key would silently become part of
 *    that key's value. Indentation carries no meaning here: the reader strips
 *    it before inih looks, and an indented line without '=' (what someone
 *    writing a continuation would type) is an error that says so.
 *
 * Errors are collected with their line and sorted at the end, so that the
 * checks done after parsing (missing handler, unknown route keys) still come
 * out in file order.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

#define KiB		(1024ULL)
#define MiB		(1024ULL * KiB)
#define GiB		(1024ULL * MiB)

#define SIZE_MAX_BYTES		(2 * GiB)
#define MAX_CONNECTIONS_MAX	10000000
/*
 * Upper bound for every duration. Not a policy but a guard: the daemon adds
 * these to a monotonic clock and turns them into struct timeval, and a week
 * is far beyond any sensible timer while nowhere near overflowing either.
 */
#define DURATION_MAX_MS		(7ULL * 24 * 3600 * 1000)

/* Handlers compiled into the daemon (daemon/handlers/, handler.c). */
static const char *const builtin_handlers[] = {
	"echo",
	"broadcast",
	"backend",
	"exec",
};
/*
 * Built-ins that take the route's unknown keys as options (their create()
 * judges them, like a plugin's); for the others an unknown key is a typo.
 */
static const char *const option_handlers[] = {
	"broadcast",
	"backend",
	"exec",
};
#define PLUGIN_PREFIX	"plugin:"
/* A plugin's NAME becomes a file name: plugin_dir/NAME.so. */
#define PLUGIN_NAME_CHARS "abcdefghijklmnopqrstuvwxyz" \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
#define PLUGIN_NAME_MAX	64

struct ctx;
struct key;

typedef int	(*key_setter)(struct ctx *, const struct key *, const char *,
		    void *);

/* Where a key may appear. */
#define IN_SERVER	0x1
#define IN_ROUTE	0x2
#define IN_TLS		0x4
#define IN_ADMIN	0x8

/* Key flags. */
#define K_REPEAT	0x1	/* each line adds a value (listen) */
#define K_LIMIT		0x2	/* in struct limits: a default and overrides */

struct key {
	const char	*name;
	int		 where;
	int		 flags;
	key_setter	 set;
	/*
	 * Offset of the value in struct limits (K_LIMIT), else in struct
	 * config ([server] keys) or struct config_route ([route] keys).
	 */
	size_t		 off;
	uint64_t	 min;
	uint64_t	 max;
	const char *const *names;	/* set_named: the values, by enum value */
	size_t		 nnames;
};

#define SETTER(f)	static int f(struct ctx *, const struct key *, \
			    const char *, void *)
SETTER(set_listen);
SETTER(set_named);
SETTER(set_count);
SETTER(set_duration);
SETTER(set_size);
SETTER(set_handler);
SETTER(set_origins);
SETTER(set_subprotocols);
SETTER(set_include);
SETTER(set_include_default);
SETTER(set_account);
SETTER(set_bool);
SETTER(set_string);
SETTER(set_tls_protocols);
SETTER(set_trusted_proxies);
SETTER(set_plugin_dir);
SETTER(set_access_log);
SETTER(set_admin_listen);
SETTER(set_workers);

#define CFG(f)	offsetof(struct config, f)
#define LIM(f)	offsetof(struct limits, f)
#define RTE(f)	offsetof(struct config_route, f)

/*
 * Every key of the language; conf/wsrouted.ini documents each of them.
 * listen, origins and subprotocols fill more than one field: their setters
 * get the whole struct config or struct config_route (offset 0).
 */
static const char *const log_level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const char *const log_format_names[] = {
	[LOG_FORMAT_KV] = "kv",
	[LOG_FORMAT_JSON] = "json",
};

static const char *const tls_record_layer_names[] = {
	[TLS_RECORDS_WSROUTED] = "wsrouted",
	[TLS_RECORDS_OPENSSL] = "openssl",
};

static const char *const content_names[] = {
	[CONTENT_ANY] = "any",
	[CONTENT_TEXT] = "text",
	[CONTENT_BINARY] = "binary",
	[CONTENT_JSON] = "json",
};

/* A key whose value is one of names (an enum stored as int). */
#define NAMES(a)	0, 0, (a), nitems(a)

/* Only set_named keys give the trailing names/nnames; the others leave them 0. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct key keys[] = {
	{ "listen",		IN_SERVER, K_REPEAT, set_listen, 0, 0, 0 },
	{ "max_connections",	IN_SERVER, 0, set_count,
	  CFG(max_connections), 1, MAX_CONNECTIONS_MAX },
	{ "max_connections_per_ip", IN_SERVER, 0, set_count,
	  CFG(max_connections_per_ip), 0, MAX_CONNECTIONS_MAX },
	{ "handshake_timeout",	IN_SERVER, 0, set_duration,
	  CFG(handshake_timeout_ms), 1, DURATION_MAX_MS },
	{ "shutdown_timeout",	IN_SERVER, 0, set_duration,
	  CFG(shutdown_timeout_ms), 0, DURATION_MAX_MS },
	{ "log_level",		IN_SERVER, 0, set_named,
	  CFG(log_level), NAMES(log_level_names) },
	{ "include",		IN_SERVER, K_REPEAT, set_include, 0, 0, 0 },
	{ "include_default",	IN_SERVER, 0, set_include_default,
	  CFG(include_default), 0, 0 },
	{ "user",		IN_SERVER, 0, set_account, CFG(user), 0, 0 },
	{ "group",		IN_SERVER, 0, set_account, CFG(group), 0, 0 },
	{ "allow_root",		IN_SERVER, 0, set_bool, CFG(allow_root), 0, 0 },
	{ "trusted_proxies",	IN_SERVER, 0, set_trusted_proxies, 0, 0, 0 },
	{ "proxy_protocol_timeout", IN_SERVER, 0, set_duration,
	  CFG(proxy_protocol_timeout_ms), 1, DURATION_MAX_MS },
	{ "log_format",		IN_SERVER, 0, set_named, CFG(log_format),
	  NAMES(log_format_names) },
	{ "access_log",		IN_SERVER, 0, set_access_log, CFG(access_log), 0, 0 },
	{ "drain_window",	IN_SERVER, 0, set_duration,
	  CFG(drain_window_ms), 0, DURATION_MAX_MS },
	{ "proxy_idle_timeout",	IN_SERVER, 0, set_duration,
	  CFG(proxy_idle_timeout_ms), 0, DURATION_MAX_MS },

	{ "certificate",	IN_TLS, 0, set_string, CFG(tls.certificate), 0, 0 },
	{ "private_key",	IN_TLS, 0, set_string, CFG(tls.private_key), 0, 0 },
	{ "chain",		IN_TLS, 0, set_string, CFG(tls.chain), 0, 0 },
	{ "ciphers",		IN_TLS, 0, set_string, CFG(tls.ciphers), 0, 0 },
	{ "ciphersuites",	IN_TLS, 0, set_string, CFG(tls.ciphersuites), 0, 0 },
	{ "groups",		IN_TLS, 0, set_string, CFG(tls.groups), 0, 0 },
	{ "protocols",		IN_TLS, 0, set_tls_protocols, CFG(tls), 0, 0 },
	{ "record_layer",	IN_TLS, 0, set_named, CFG(tls.record_layer),
	  NAMES(tls_record_layer_names) },
	/* [admin] listen: its own key (another setter) with the same name. */
	{ "listen",		IN_ADMIN, K_REPEAT, set_admin_listen, 0, 0, 0 },
	{ "plugin_dir",		IN_SERVER, 0, set_plugin_dir,
	  CFG(plugin_dir), 0, 0 },
	{ "workers",		IN_SERVER, 0, set_workers,
	  CFG(workers), 1, CONFIG_WORKERS_MAX },

	{ "ping_period",	IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(ping_period_ms), 0, DURATION_MAX_MS },
	{ "timeout",		IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(timeout_ms), 0, DURATION_MAX_MS },
	{ "close_timeout",	IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(close_timeout_ms), 1, DURATION_MAX_MS },
	{ "close_linger_max",	IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(close_linger_max_ms), 0, DURATION_MAX_MS },
	{ "max_frame_size",	IN_SERVER|IN_ROUTE, K_LIMIT, set_size,
	  LIM(max_frame_size), 1, SIZE_MAX_BYTES },
	{ "max_message_size",	IN_SERVER|IN_ROUTE, K_LIMIT, set_size,
	  LIM(max_message_size), 1, SIZE_MAX_BYTES },
	{ "max_output_buffer",	IN_SERVER|IN_ROUTE, K_LIMIT, set_size,
	  LIM(max_output_buffer), 4 * KiB, SIZE_MAX_BYTES },
	{ "send_buffer",	IN_SERVER|IN_ROUTE, K_LIMIT, set_size,
	  LIM(send_buffer), 0, 64 * MiB },
	{ "message_timeout",	IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(message_timeout_ms), 0, DURATION_MAX_MS },
	{ "max_connection_lifetime", IN_SERVER|IN_ROUTE, K_LIMIT, set_duration,
	  LIM(max_connection_lifetime_ms), 0, DURATION_MAX_MS },

	{ "handler",		IN_ROUTE, 0, set_handler,
	  RTE(handler), 0, 0 },
	{ "origins",		IN_ROUTE, 0, set_origins, 0, 0, 0 },
	{ "subprotocols",	IN_ROUTE, 0, set_subprotocols, 0, 0, 0 },
	{ "content",		IN_ROUTE, 0, set_named, RTE(content), NAMES(content_names) },
	{ "devconsole",		IN_ROUTE, 0, set_bool, RTE(devconsole), 0, 0 },
};
#pragma GCC diagnostic pop

_Static_assert(nitems(keys) <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

/* Every struct limits field is a uint64_t: one override bit per field. */
#define LIMIT_BIT(off)	(1u << ((off) / sizeof(uint64_t)))

enum section {
	SECTION_NONE,		/* before the first header */
	SECTION_SERVER,
	SECTION_ROUTE,
	SECTION_TLS,
	SECTION_ADMIN,
	SECTION_SKIP,		/* after a bad header: keys are ignored */
};

/* A route's overrides, applied over the [server] limits once all is read. */
struct override {
	struct limits	 v;
	unsigned	 set;
	size_t		 fidx;	/* the route's file */
};

struct error {
	size_t	 file;		/* in cfg->files: errors sort by file, then line */
	int	 line;
	size_t	 seq;
	char	*msg;
};

struct ctx {
	const char		*name;
	struct config		*cfg;

	FILE			*fp;		/* config_load */
	const char		*text;		/* config_parse_string */
	size_t			 len;
	size_t			 off;
	int			 eof;
	int			 read_errno;
	int			 line;

	enum section		 section;
	size_t			 route;		/* in cfg->routes */
	int			 seen[nitems(keys)]; /* line, in this section */
	struct override		*overrides;	/* one per cfg->routes */
	int			 listen_lines;	/* valid or not */

	/* Includes (the fields from name to seen are per file: see include_file). */
	size_t			 fidx;		/* name's index in cfg->files */
	int			 depth;		/* 0: the main file */
	char			*stack[CONFIG_INCLUDE_DEPTH_MAX + 1]; /* realpaths */
	char			**real;		/* realpath of each cfg->files */
	struct {
		size_t	file;
		int	line;			/* 0: not set yet */
	}			 server_seen[nitems(keys)];

	struct error		*errors;
	size_t			 nerrors;
	int			 nomem;
};

/*
 * Errors.
 */

static char *
vxprintf(const char *fmt, va_list ap)
{
	va_list	 ap2;
	char	*s;
	int	 n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *
xprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = vxprintf(fmt, ap);
	va_end(ap);
	return s;
}

/*
 * Records "NAME:LINE: message" (or "NAME: message" for line 0). Values from
 * the file are quoted in messages, so control characters are replaced: the
 * messages go to a terminal (wsrouted -t) and to logs.
 */
static void
vconf_error(struct ctx *c, size_t fidx, const char *name, int line,
    const char *fmt, va_list ap)
{
	struct error	*e;
	char		*msg, *full, *p;

	msg = vxprintf(fmt, ap);
	if (msg == NULL) {
		c->nomem = 1;
		return;
	}
	if (line > 0)
		full = xprintf("%s:%d: %s", name, line, msg);
	else
		full = xprintf("%s: %s", name, msg);
	free(msg);
	if (full == NULL) {
		c->nomem = 1;
		return;
	}
	for (p = full; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	e = realloc(c->errors, (c->nerrors + 1) * sizeof(*c->errors));
	if (e == NULL) {
		free(full);
		c->nomem = 1;
		return;
	}
	c->errors = e;
	e[c->nerrors].file = fidx;
	e[c->nerrors].line = line;
	e[c->nerrors].seq = c->nerrors;
	e[c->nerrors].msg = full;
	c->nerrors++;
}

/* An error in the file being read. */
static void
conf_error(struct ctx *c, int line, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vconf_error(c, c->fidx, c->name, line, fmt, ap);
	va_end(ap);
}

/* An error in file fidx of cfg->files (checks done after reading). */
static void
conf_error_in(struct ctx *c, size_t fidx, int line, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vconf_error(c, fidx, c->cfg->files[fidx].path, line, fmt, ap);
	va_end(ap);
}

static int
line_has_error(struct ctx *c, int line)
{
	size_t	i;

	for (i = 0; i < c->nerrors; i++) {
		if (c->errors[i].file == c->fidx && c->errors[i].line == line)
			return 1;
	}
	return 0;
}

/*
 * For "already set on line 3" (same file) or "already set at b.ini:3": the
 * place of an earlier definition, as "on line N" or "at FILE:N".
 */
static const char *
where(struct ctx *c, const char *file, int line, char *buf, size_t len)
{
	if (file == NULL || strcmp(file, c->name) == 0)
		snprintf(buf, len, "on line %d", line);
	else
		snprintf(buf, len, "at %s:%d", file, line);
	return buf;
}

static int
error_cmp(const void *a, const void *b)
{
	const struct error	*ea = a, *eb = b;

	if (ea->file != eb->file)
		return ea->file < eb->file ? -1 : 1;
	if (ea->line != eb->line)
		return ea->line < eb->line ? -1 : 1;
	return ea->seq < eb->seq ? -1 : ea->seq > eb->seq;
}

static int
errors_add(struct config_errors *errs, char *msg)
{
	char	**m;

	m = realloc(errs->msgs, (errs->n + 1) * sizeof(*errs->msgs));
	if (m == NULL)
		return -1;
	errs->msgs = m;
	errs->msgs[errs->n++] = msg;
	return 0;
}

/* Moves the collected errors, in file order, to the caller's list. */
static void
errors_flush(struct ctx *c, struct config_errors *errs)
{
	size_t	i;

	if (c->nomem)
		conf_error(c, 0, "out of memory");
	qsort(c->errors, c->nerrors, sizeof(*c->errors), error_cmp);
	for (i = 0; i < c->nerrors; i++) {
		if (errs == NULL || errors_add(errs, c->errors[i].msg) == -1)
			free(c->errors[i].msg);
	}
	free(c->errors);
	c->errors = NULL;
	c->nerrors = 0;
}

/*
 * Formatting limits back for messages.
 */

static const char *
fmt_size(uint64_t v, char *buf, size_t len)
{
	if (v != 0 && v % GiB == 0)
		snprintf(buf, len, "%lluGiB", (unsigned long long)(v / GiB));
	else if (v != 0 && v % MiB == 0)
		snprintf(buf, len, "%lluMiB", (unsigned long long)(v / MiB));
	else if (v != 0 && v % KiB == 0)
		snprintf(buf, len, "%lluKiB", (unsigned long long)(v / KiB));
	else
		snprintf(buf, len, "%lluB", (unsigned long long)v);
	return buf;
}

static const char *
fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return buf;
}

uint64_t
config_drain_window_ms(const struct config *cfg)
{
	uint64_t	room;

	room = cfg->shutdown_timeout_ms > cfg->limits.close_timeout_ms ?
	    cfg->shutdown_timeout_ms - cfg->limits.close_timeout_ms : 0;
	return cfg->drain_window_ms < room ? cfg->drain_window_ms : room;
}

const char *
config_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	return fmt_duration(ms, buf, len);
}

/*
 * Value parsers (also exported for the daemon and the tests).
 */

/* Decimal digits only: no sign, no space, no base prefix; overflow-checked. */
static int
parse_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t	v = 0;
	unsigned	d;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

struct unit {
	const char	*name;
	uint64_t	 mult;
};

/* A number, then optionally blanks and one of units. */
static int
parse_with_unit(const char *s, const struct unit *units, size_t nunits,
    uint64_t *out)
{
	const char	*p, *q;
	uint64_t	 v;
	size_t		 i;

	if (parse_u64(s, &v, &p) == -1)
		return -1;
	for (q = p; *q == ' ' || *q == '\t'; q++)
		/* nothing */;
	if (q != p && *q == '\0')
		return -1;		/* trailing blanks but no unit */
	for (i = 0; i < nunits; i++) {
		if (strcmp(q, units[i].name) == 0)
			break;
	}
	if (i == nunits)
		return -1;
	if (units[i].mult != 0 && v > UINT64_MAX / units[i].mult)
		return -1;
	*out = v * units[i].mult;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	/* Binary multiples only: "K" is KiB, as in nginx and ulimit. */
	static const struct unit units[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", KiB }, { "KiB", KiB },
		{ "M", MiB }, { "MiB", MiB },
		{ "G", GiB }, { "GiB", GiB },
	};

	return parse_with_unit(s, units, nitems(units), out);
}

int
config_parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 },
	};

	return parse_with_unit(s, units, nitems(units), out);
}

static int
parse_port(const char *s, in_port_t *out)
{
	uint64_t	 v;
	const char	*end;

	/* 0 is allowed: the kernel picks a port (tests, ephemeral servers). */
	if (parse_u64(s, &v, &end) == -1 || *end != '\0' || v > 65535)
		return -1;
	*out = htons((in_port_t)v);
	return 0;
}

/*
 * "systemd" or "systemd:NAME". NAME follows systemd's FileDescriptorName=
 * rules: 1..255 printable ASCII characters, no ':'.
 */
static int
listen_parse_systemd(const char *s, struct config_listen *out, char *why,
    size_t whylen)
{
	const char	*name = s + 7;
	size_t		 i;

	out->kind = LISTEN_SYSTEMD;
	if (*name == '\0')
		return 0;
	name++;
	for (i = 0; name[i] != '\0'; i++) {
		if (name[i] <= ' ' || name[i] > '~' || name[i] == ':')
			break;
	}
	if (i == 0 || i > 255 || name[i] != '\0') {
		snprintf(why, whylen, "expected 'systemd' or 'systemd:NAME' with "
		    "NAME a FileDescriptorName= of the .socket unit (1..255 "
		    "printable characters, no ':')");
		return -1;
	}
	return 0;
}

/*
 * Parses one listen address. On error returns -1 with why (whylen bytes)
 * saying what is wrong. spec and line are left NULL and 0 for the caller.
 */
static int
listen_parse(const char *s, struct config_listen *out, char *why,
    size_t whylen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&out->addr;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&out->addr;
	struct sockaddr_un	*su = (struct sockaddr_un *)&out->addr;
	const char		*colon, *close, *err;
	char			 host[INET6_ADDRSTRLEN];
	size_t			 len;
	in_port_t		 port;

	memset(out, 0, sizeof(*out));	/* padding too: compared by memcmp */

	if (strncmp(s, "systemd", 7) == 0 && (s[7] == '\0' || s[7] == ':'))
		return listen_parse_systemd(s, out, why, whylen);

	if (strncmp(s, "unix:", 5) == 0) {
		s += 5;
		len = strlen(s);
		if (*s != '/') {
			err = "a unix socket path must be absolute, like "
			    "unix:/run/wsrouted.sock";
			goto fail;
		}
		if (len >= sizeof(su->sun_path)) {
			snprintf(why, whylen, "unix socket path too long "
			    "(max %zu bytes)", sizeof(su->sun_path) - 1);
			return -1;
		}
		out->kind = LISTEN_UNIX;
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, s, len + 1);
		out->addrlen = (socklen_t)(offsetof(struct sockaddr_un,
		    sun_path) + len + 1);
		return 0;
	}

	out->kind = LISTEN_INET;
	if (s[0] == '*' && s[1] == ':') {
		/* All addresses: [::] with IPV6_V6ONLY off takes IPv4 too. */
		sin6->sin6_addr = in6addr_any;
		colon = s + 1;
		goto in6;
	}
	if (*s == '[') {
		if ((close = strchr(s, ']')) == NULL) {
			err = "missing ']' after the IPv6 address";
			goto fail;
		}
		if (close[1] != ':') {
			err = "missing ':PORT' after the address";
			goto fail;
		}
		len = (size_t)(close - (s + 1));
		if (len >= sizeof(host))
			len = sizeof(host) - 1;	/* inet_pton refuses it */
		memcpy(host, s + 1, len);
		host[len] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			err = "expected an IPv6 address in brackets, like "
			    "[::1]:8080 (zone indexes are not supported)";
			goto fail;
		}
		colon = close + 1;
		goto in6;
	}

	if ((colon = strrchr(s, ':')) == NULL) {
		err = "missing ':PORT' after the address";
		goto fail;
	}
	len = (size_t)(colon - s);
	if (memchr(s, ':', len) != NULL) {
		err = "an IPv6 address must be in brackets, like [::1]:8080";
		goto fail;
	}
	if (len >= sizeof(host))
		len = sizeof(host) - 1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		err = "expected an IPv4 address like 127.0.0.1, [IPv6] or '*' "
		    "before ':PORT' (host names are not resolved)";
		goto fail;
	}
	if (parse_port(colon + 1, &port) == -1)
		goto bad_port;
	sin->sin_family = AF_INET;
	sin->sin_port = port;
	out->addrlen = sizeof(*sin);
	return 0;

in6:
	if (parse_port(colon + 1, &port) == -1)
		goto bad_port;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = port;
	out->addrlen = sizeof(*sin6);
	return 0;

bad_port:
	err = "expected a port 0..65535 after ':'";
fail:
	snprintf(why, whylen, "%s", err);
	return -1;
}

int
config_parse_listen(const char *s, struct config_listen *out)
{
	char	why[128];

	return listen_parse(s, out, why, sizeof(why));
}

/*
 * Key setters: each parses one value into dst, or records an error naming
 * the key and returns -1.
 */

static int
check_range(struct ctx *c, const struct key *k, const char *value, uint64_t v,
    const char *(*fmt)(uint64_t, char *, size_t))
{
	char	lo[32], hi[32];

	if (v >= k->min && v <= k->max)
		return 0;
	if (v < k->min && k->min == 1)
		conf_error(c, c->line, "%s: must be greater than 0, got '%s'",
		    k->name, value);
	else if (v < k->min)
		conf_error(c, c->line, "%s: must be at least %s, got '%s'",
		    k->name, fmt(k->min, lo, sizeof(lo)), value);
	else
		conf_error(c, c->line, "%s: must be at most %s, got '%s'",
		    k->name, fmt(k->max, hi, sizeof(hi)), value);
	return -1;
}

static int
set_size(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	uint64_t	v;

	if (config_parse_size(value, &v) == -1) {
		conf_error(c, c->line, "%s: expected a size like 64KiB or 1MiB, "
		    "got '%s'", k->name, value);
		return -1;
	}
	if (check_range(c, k, value, v, fmt_size) == -1)
		return -1;
	*(uint64_t *)dst = v;
	return 0;
}

static int
set_duration(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	uint64_t	v;

	if (config_parse_duration_ms(value, &v) == -1) {
		conf_error(c, c->line, "%s: expected a duration like 500ms, 10s, "
		    "5m or 1h, got '%s'", k->name, value);
		return -1;
	}
	if (check_range(c, k, value, v, fmt_duration) == -1)
		return -1;
	*(uint64_t *)dst = v;
	return 0;
}

static int
set_count(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	const char	*end;
	uint64_t	 v;

	if (parse_u64(value, &v, &end) == -1 || *end != '\0' ||
	    v < k->min || v > k->max) {
		conf_error(c, c->line, "%s: expected an integer %llu..%llu, "
		    "got '%s'", k->name, (unsigned long long)k->min,
		    (unsigned long long)k->max, value);
		return -1;
	}
	*(uint64_t *)dst = v;
	return 0;
}

/*
 * A value out of a fixed list of names: its index in *dst. The error lists
 * the names, so the message never drifts from the table.
 */
static int
set_enum(struct ctx *c, const struct key *k, const char *value, int *dst,
    const char *const *names, size_t n)
{
	char	expected[128];
	size_t	i, len = 0;

	for (i = 0; i < n; i++) {
		if (strcmp(value, names[i]) == 0) {
			*dst = (int)i;
			return 0;
		}
	}
	expected[0] = '\0';
	for (i = 0; i < n; i++)
		len += snprintf(expected + len, sizeof(expected) - len, "%s%s",
		    i > 0 ? ", " : "", names[i]);
	conf_error(c, c->line, "%s: expected one of %s, got '%s'", k->name,
	    expected, value);
	return -1;
}

_Static_assert(sizeof(enum log_level) == sizeof(int) && sizeof(enum log_format) == sizeof(int) &&
    sizeof(enum content) == sizeof(int) && sizeof(enum tls_record_layer) == sizeof(int),
    "set_named stores an int");

/* One of k->names; stored as its index (the enum value). */
static int
set_named(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	return set_enum(c, k, value, (int *)dst, k->names, k->nnames);
}

/* "stderr", "off" or an absolute file name (opened by the daemon, not here). */
static int
set_access_log(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	char	**p = dst;

	if (strcmp(value, "stderr") != 0 && strcmp(value, "off") != 0 &&
	    value[0] != '/') {
		conf_error(c, c->line, "%s: expected stderr, off or an absolute "
		    "file name, got '%s'", k->name, value);
		return -1;
	}
	free(*p);
	if ((*p = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	return 0;
}

/* workers = N | auto: auto is kept as 0 and resolved at start (sched_getaffinity). */
static int
set_workers(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	const char	*end;
	uint64_t	 v;

	if (strcmp(value, "auto") == 0) {
		*(uint64_t *)dst = 0;
		return 0;
	}
	if (parse_u64(value, &v, &end) == -1 || *end != '\0' ||
	    v < k->min || v > k->max) {
		conf_error(c, c->line, "%s: expected an integer %llu..%llu or auto, "
		    "got '%s'", k->name, (unsigned long long)k->min,
		    (unsigned long long)k->max, value);
		return -1;
	}
	*(uint64_t *)dst = v;
	return 0;
}

uint16_t
config_listen_port(const struct config_listen *l)
{
	if (l->addr.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

bool
config_listen_same(const struct config_listen *a, const struct config_listen *b)
{
	size_t	len;

	if (a->kind != b->kind)
		return false;
	if (a->kind == LISTEN_SYSTEMD) {
		len = strcspn(a->spec, " \t");
		return strcspn(b->spec, " \t") == len && strncmp(a->spec, b->spec, len) == 0;
	}
	return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* The words after a listen address: "tls", "proxy_protocol", once each. */
static int
listen_options_parse(struct ctx *c, const struct key *k, const char *rest,
    bool *tls, bool *pp)
{
	size_t	i;
	bool	*flag;

	*tls = *pp = false;
	for (;;) {
		while (*rest == ' ' || *rest == '\t')
			rest++;
		if (*rest == '\0')
			return 0;
		i = strcspn(rest, " \t");
		if (i == 3 && memcmp(rest, "tls", 3) == 0)
			flag = tls;
		else if (i == 14 && memcmp(rest, "proxy_protocol", 14) == 0)
			flag = pp;
		else {
			conf_error(c, c->line, "%s: unexpected '%s' after the "
			    "address, expected the options tls or proxy_protocol "
			    "(one address per line; comments start with ' ;')",
			    k->name, rest);
			return -1;
		}
		if (*flag) {
			conf_error(c, c->line, "%s: option '%.*s' given twice",
			    k->name, (int)i, rest);
			return -1;
		}
		*flag = true;
		rest += i;
	}
}

static int
set_listen(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config		*cfg = dst;
	struct config_listen	 l, *ls, *o;
	char			*addr, why[PATH_MAX + 32];
	size_t			 len, i;
	bool			 tls, pp;

	memset(&l, 0, sizeof(l));

	c->listen_lines++;

	/* "ADDRESS [OPTION ...]" */
	len = strcspn(value, " \t");
	if (listen_options_parse(c, k, value + len, &l.tls, &l.proxy_protocol) == -1)
		return -1;
	if ((addr = strndup(value, len)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	tls = l.tls;
	pp = l.proxy_protocol;
	if (listen_parse(addr, &l, why, sizeof(why)) == -1) {
		conf_error(c, c->line, "%s: %s, got '%s'", k->name, why, addr);
		free(addr);
		return -1;
	}
	l.tls = tls;
	l.proxy_protocol = pp;
	free(addr);
	if ((addr = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	/* Port 0 twice is two different ephemeral ports, not a duplicate. */
	if (l.kind == LISTEN_INET && config_listen_port(&l) == 0)
		i = cfg->nlistens;
	else
		i = 0;
	l.spec = addr;
	for (; i < cfg->nlistens; i++) {
		o = &cfg->listens[i];
		if (config_listen_same(o, &l)) {
			/*
			 * "duplicate of line 3" or "duplicate of b.ini:3";
			 * systemd lines: the same name, whatever the options.
			 */
			conf_error(c, c->line, "%s: duplicate of %s ('%s')",
			    k->name, where(c, o->file, o->line, why,
			    sizeof(why)) + 3, o->spec);
			free(addr);
			return -1;
		}
	}
	ls = realloc(cfg->listens, (cfg->nlistens + 1) * sizeof(*ls));
	if (ls == NULL) {
		free(addr);
		c->nomem = 1;
		return -1;
	}
	cfg->listens = ls;
	/*
	 * The name is the address part only: spec also holds the options
	 * ("systemd:web tls" is named "web"). Owned, freed by config_free().
	 */
	if (l.kind == LISTEN_SYSTEMD && value[7] == ':' &&
	    (l.name = strndup(value + 8, len - 8)) == NULL) {
		free(addr);
		c->nomem = 1;
		return -1;
	}
	l.line = c->line;
	l.file = c->name;
	ls[cfg->nlistens++] = l;
	return 0;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
static bool
listen_is_loopback(const struct config_listen *l)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)&l->addr;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)&l->addr;

	if (l->addr.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
}

/*
 * [admin] listen = ADDRESS [public]. The admin endpoints tell whoever reaches
 * them about the traffic and the routes, so an address other than loopback
 * (or a unix socket) must be asked for with "public". A socket passed by
 * systemd must be named (systemd:NAME, so that "listen = systemd" in [server]
 * leaves it alone); its address is checked when it is taken (admin.c).
 */
static int
set_admin_listen(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config		*cfg = dst;
	struct config_admin	*a = &cfg->admin;
	const struct config_listen *o;
	struct config_listen	 l, *ls;
	char			*addr, why[PATH_MAX + 32];
	const char		*rest;
	size_t			 len, i, n;
	bool			 pub = false;

	len = strcspn(value, " \t");
	for (rest = value + len; *rest == ' ' || *rest == '\t'; rest++)
		/* nothing */;
	if (strcmp(rest, "public") == 0)
		pub = true;
	else if (*rest != '\0') {
		conf_error(c, c->line, "%s: unexpected '%s' after the address, the "
		    "only option in [admin] is 'public'", k->name, rest);
		return -1;
	}
	if ((addr = strndup(value, len)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	if (listen_parse(addr, &l, why, sizeof(why)) == -1) {
		conf_error(c, c->line, "%s: %s, got '%s'", k->name, why, addr);
		free(addr);
		return -1;
	}
	if (l.kind == LISTEN_SYSTEMD && addr[7] != ':') {
		conf_error(c, c->line, "%s: a passed socket in [admin] must be named, "
		    "expected systemd:NAME (FileDescriptorName= of the .socket unit), "
		    "got '%s'", k->name, addr);
		free(addr);
		return -1;
	}
	if (l.kind == LISTEN_SYSTEMD && (l.name = strdup(addr + 8)) == NULL) {
		free(addr);
		c->nomem = 1;
		return -1;
	}
	if (l.kind == LISTEN_INET && !listen_is_loopback(&l) && !pub) {
		conf_error(c, c->line, "%s: '%s' is not a loopback address: the "
		    "admin endpoints (metrics, readiness) would be reachable from "
		    "the network; add the option 'public' to mean it (listen = "
		    "%s public) or use 127.0.0.1, [::1] or unix:/PATH", k->name,
		    addr, addr);
		free(addr);
		return -1;
	}
	free(addr);
	/* The same address (or passed socket name) twice could never be bound. */
	n = l.kind == LISTEN_INET && config_listen_port(&l) == 0 ? 0 : a->nlistens + cfg->nlistens;
	for (i = 0; i < n; i++) {
		o = i < a->nlistens ? &a->listens[i] : &cfg->listens[i - a->nlistens];
		if (o->kind == l.kind && (l.kind == LISTEN_SYSTEMD ? o->name != NULL &&
		    strcmp(o->name, l.name) == 0 : o->addrlen == l.addrlen &&
		    memcmp(&o->addr, &l.addr, l.addrlen) == 0)) {
			free(l.name);
			conf_error(c, c->line, "%s: duplicate of %s ('%s'%s)", k->name,
			    where(c, o->file, o->line, why, sizeof(why)) + 3, o->spec,
			    i < a->nlistens ? "" : " in [server]");
			return -1;
		}
	}
	if ((ls = realloc(a->listens, (a->nlistens + 1) * sizeof(*ls))) == NULL) {
		free(l.name);
		c->nomem = 1;
		return -1;
	}
	a->listens = ls;
	if ((l.spec = strdup(value)) == NULL) {
		free(l.name);
		c->nomem = 1;
		return -1;
	}
	l.line = c->line;
	l.file = c->name;
	ls[a->nlistens++] = l;
	return 0;
}

/*
 * user / group: a name or a numeric id; resolved when the daemon starts (this
 * module does no I/O), so only the shape is checked here.
 */
static int
set_account(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	char	**p = dst;
	size_t	  i;

	for (i = 0; value[i] != '\0'; i++) {
		if (value[i] <= ' ' || value[i] > '~' || value[i] == ':')
			break;
	}
	if (i == 0 || i > 64 || value[i] != '\0') {
		conf_error(c, c->line, "%s: expected a %s name or numeric id "
		    "(1..64 printable characters, no spaces or ':'), got '%s'",
		    k->name, k->name, value);
		return -1;
	}
	if ((*p = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	return 0;
}

static int
set_bool(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
	    strcmp(value, "on") == 0 || strcmp(value, "1") == 0) {
		*(bool *)dst = true;
		return 0;
	}
	if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
	    strcmp(value, "off") == 0 || strcmp(value, "0") == 0) {
		*(bool *)dst = false;
		return 0;
	}
	conf_error(c, c->line, "%s: expected yes or no, got '%s'", k->name, value);
	return -1;
}

/*
 * The one place that decides which handler names exist. A handler is kept
 * even when refused so that the end-of-file checks know whether it was a
 * plugin (whose unknown keys are options, not typos).
 */
static int
set_handler(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	char	**handler = dst, known[256];
	size_t	  i, len;
	int	  n;

	free(*handler);
	if ((*handler = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	for (i = 0; i < nitems(builtin_handlers); i++) {
		if (strcmp(value, builtin_handlers[i]) == 0)
			return 0;
	}
	if (strncmp(value, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) == 0) {
		const char *name = value + strlen(PLUGIN_PREFIX);

		len = strlen(name);
		if (len == 0 || len > PLUGIN_NAME_MAX || name[0] == '.' ||
		    strspn(name, PLUGIN_NAME_CHARS) != len) {
			conf_error(c, c->line, "%s: bad plugin name in '%s', "
			    "expected plugin:NAME with NAME made of letters, "
			    "digits, '_', '-' and '.' (not first), at most %d",
			    k->name, value, PLUGIN_NAME_MAX);
			return -1;
		}
		return 0;
	}
	known[0] = '\0';
	for (i = 0, len = 0; i < nitems(builtin_handlers); i++) {
		n = snprintf(known + len, sizeof(known) - len, "%s%s",
		    i == 0 ? "" : ", ", builtin_handlers[i]);
		if (n < 0 || (size_t)n >= sizeof(known) - len)
			break;
		len += (size_t)n;
	}
	conf_error(c, c->line, "%s: unknown handler '%s', expected one of: %s, "
	    "or plugin:NAME", k->name, value, known);
	return -1;
}

static int
set_plugin_dir(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	char	**dir = dst;

	if (value[0] != '/') {
		conf_error(c, c->line, "%s: expected an absolute directory, "
		    "got '%s'", k->name, value);
		return -1;
	}
	free(*dir);
	if ((*dir = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	return 0;
}

/* Whether the route's handler takes unknown keys as options. */
static int
takes_options(const char *handler)
{
	size_t	i;

	if (handler == NULL)
		return 0;
	if (strncmp(handler, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) == 0)
		return 1;
	for (i = 0; i < nitems(option_handlers); i++)
		if (strcmp(handler, option_handlers[i]) == 0)
			return 1;
	return 0;
}

static void
free_list(char **list, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Appends s[0..len) to *list unless it is already there (then returns 1). */
static int
list_add(struct ctx *c, char ***list, size_t *n, const char *s, size_t len)
{
	char	**l, *copy;
	size_t	  i;

	for (i = 0; i < *n; i++) {
		if (strlen((*list)[i]) == len && memcmp((*list)[i], s, len) == 0)
			return 1;
	}
	if ((copy = strndup(s, len)) == NULL)
		goto nomem;
	if ((l = realloc(*list, (*n + 1) * sizeof(*l))) == NULL) {
		free(copy);
		goto nomem;
	}
	l[(*n)++] = copy;
	*list = l;
	return 0;
nomem:
	c->nomem = 1;
	return -1;
}

/*
 * An origin as browsers send it (RFC 6454 §6.2): scheme "://" host [":"
 * port], nothing after; or "null". The common mistake this catches is a
 * trailing slash or a path, which no Origin header ever carries, so such an
 * entry would silently refuse everyone.
 */
static int
origin_valid(const char *s, size_t len)
{
	size_t	i = 0;

	if (len == 4 && memcmp(s, "null", 4) == 0)
		return 1;
	if (len == 0 || !isalpha((unsigned char)s[0]))
		return 0;
	while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' ||
	    s[i] == '-' || s[i] == '.'))
		i++;
	if (len - i < 4 || memcmp(s + i, "://", 3) != 0)
		return 0;
	for (i += 3; i < len; i++) {
		if (strchr("/?#@\\", s[i]) != NULL ||
		    (unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

static int
set_origins(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config_route	*r = dst;
	const char		*p = value, *sep = ", \t";
	char			**list = NULL;
	size_t			 n = 0, len;
	int			 star = 0, dup;

	for (;;) {
		p += strspn(p, sep);
		if (*p == '\0')
			break;
		len = strcspn(p, sep);
		if (len == 1 && *p == '*')
			star = 1;
		else if (!origin_valid(p, len)) {
			conf_error(c, c->line, "%s: '%.*s' is not an origin, "
			    "expected scheme://host[:port] without a path, like "
			    "https://example.com", k->name, (int)len, p);
			goto fail;
		} else if ((dup = list_add(c, &list, &n, p, len)) == -1)
			goto fail;
		else if (dup) {
			conf_error(c, c->line, "%s: '%.*s' is listed twice",
			    k->name, (int)len, p);
			goto fail;
		}
		p += len;
	}
	if (!star && n == 0) {
		conf_error(c, c->line, "%s: expected '*' or a list of origins "
		    "like https://example.com, got '%s'", k->name, value);
		goto fail;
	}
	if (star && n != 0) {
		conf_error(c, c->line, "%s: '*' (all origins) cannot be combined "
		    "with a list of origins", k->name);
		goto fail;
	}
	free_list(r->origins, r->norigins);
	r->origins = list;		/* "*": none listed, all allowed */
	r->norigins = n;
	return 0;
fail:
	free_list(list, n);
	return -1;
}

/* RFC 9110 §5.6.2: tchar. */
static int
is_tchar(unsigned char ch)
{
	return isalnum(ch) ||
	    (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
set_subprotocols(struct ctx *c, const struct key *k, const char *value,
    void *dst)
{
	struct config_route	*r = dst;
	const char		*p = value, *end;
	char			**list = NULL;
	size_t			 n = 0, len, i;
	int			 dup;

	for (;;) {
		p += strspn(p, " \t");
		len = strcspn(p, ",");
		end = p + len;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		for (i = 0; p + i < end && is_tchar((unsigned char)p[i]); i++)
			/* nothing */;
		if (end == p || p + i != end) {
			conf_error(c, c->line, "%s: expected comma-separated "
			    "tokens like chat.v1, chat.v2, got '%s'", k->name,
			    value);
			goto fail;
		}
		if ((dup = list_add(c, &list, &n, p, (size_t)(end - p))) == -1)
			goto fail;
		if (dup) {
			conf_error(c, c->line, "%s: '%.*s' is listed twice",
			    k->name, (int)(end - p), p);
			goto fail;
		}
		p += len;
		if (*p == '\0')
			break;
		p++;				/* the comma */
	}
	free_list(r->subprotocols, r->nsubprotocols);
	r->subprotocols = list;
	r->nsubprotocols = n;
	return 0;
fail:
	free_list(list, n);
	return -1;
}

/* A file name or an OpenSSL list: any non-empty value, kept with its line. */
static int
set_string(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config_str	*str = dst;
	char			*v;

	if (*value == '\0') {
		conf_error(c, c->line, "%s: expected a value", k->name);
		return -1;
	}
	if ((v = strdup(value)) == NULL) {
		c->nomem = 1;
		return -1;
	}
	free(str->v);
	str->v = v;
	str->line = c->line;
	return 0;
}

/* "TLSv1.2 TLSv1.3" (spaces or commas): the range from the lowest to the highest. */
static int
set_tls_protocols(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config_tls	*t = dst;
	const char		*p = value;
	size_t			 len;
	int			 v, lo = 0, hi = 0;

	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		if (len == 7 && strncmp(p, "TLSv1.2", 7) == 0)
			v = CONFIG_TLS12;
		else if (len == 7 && strncmp(p, "TLSv1.3", 7) == 0)
			v = CONFIG_TLS13;
		else {
			conf_error(c, c->line, "%s: expected TLSv1.2 and/or "
			    "TLSv1.3 (older versions are not offered), got '%.*s'",
			    k->name, (int)len, p);
			return -1;
		}
		if (lo == 0 || v < lo)
			lo = v;
		if (v > hi)
			hi = v;
		p += len;
	}
	if (lo == 0) {
		conf_error(c, c->line, "%s: expected TLSv1.2 and/or TLSv1.3",
		    k->name);
		return -1;
	}
	t->min_version = lo;
	t->max_version = hi;
	return 0;
}

int
config_parse_cidr(const char *s, size_t len, struct config_cidr *out)
{
	char		 buf[INET6_ADDRSTRLEN + 8], *slash;
	uint64_t	 prefix;
	const char	*end;
	unsigned	 max, i;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(out, 0, sizeof(*out));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else
		return -1;
	out->prefix = max;
	if (slash != NULL) {
		if (parse_u64(slash + 1, &prefix, &end) == -1 || *end != '\0' ||
		    prefix > max)
			return -1;
		out->prefix = (unsigned)prefix;
	}
	/* Host bits must be zero: "10.1.2.3/8" is more likely a typo than meant. */
	for (i = out->prefix; i < max; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

bool
config_cidr_match(const struct config_cidr *list, size_t n, int family,
    const void *addr)
{
	static const uint8_t	 mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
	const uint8_t		*a = addr;
	size_t			 i;
	unsigned		 bits, full;

	/* A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d. */
	if (family == AF_INET6 && memcmp(a, mapped, 12) == 0) {
		family = AF_INET;
		a += 12;
	}
	for (i = 0; i < n; i++) {
		if (list[i].family != family)
			continue;
		full = list[i].prefix / 8;
		bits = list[i].prefix % 8;
		if (memcmp(list[i].addr, a, full) != 0)
			continue;
		if (bits != 0 && ((list[i].addr[full] ^ a[full]) & (0xff00 >> bits) & 0xff))
			continue;
		return true;
	}
	return false;
}

/* "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8" */
static int
set_trusted_proxies(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	struct config		*cfg = dst;
	struct config_cidr	*list = NULL, *l;
	const char		*p = value, *end;
	size_t			 n = 0, len;

	for (;;) {
		p += strspn(p, " \t");
		len = strcspn(p, ",");
		end = p + len;
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((l = realloc(list, (n + 1) * sizeof(*l))) == NULL) {
			c->nomem = 1;
			goto fail;
		}
		list = l;
		if (config_parse_cidr(p, (size_t)(end - p), &list[n]) == -1) {
			conf_error(c, c->line, "%s: expected comma-separated "
			    "addresses or networks like 127.0.0.1, 10.0.0.0/8, "
			    "fd00::/8 (host bits zero), got '%.*s'", k->name,
			    (int)(end - p), p);
			goto fail;
		}
		n++;
		p += len;
		if (*p == '\0')
			break;
		p++;
	}
	free(cfg->trusted_proxies);
	cfg->trusted_proxies = list;
	cfg->ntrusted_proxies = n;
	return 0;
fail:
	free(list);
	return -1;
}

/*
 * Sections.
 */

static void
start_route(struct ctx *c, const char *path, size_t len)
{
	struct config		*cfg = c->cfg;
	struct config_route	*r;
	struct override		*ov;
	size_t			 i;
	char			 buf[PATH_MAX + 32];

	for (i = 0; i < len; i++) {
		if (path[i] == '?' || path[i] == '#') {
			conf_error(c, c->line, "[route %.*s]: the path must not "
			    "contain '%c' (the query string is not part of a "
			    "route)", (int)len, path, path[i]);
			return;
		}
		if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f) {
			conf_error(c, c->line, "[route %.*s]: the path must not "
			    "contain spaces or control characters", (int)len,
			    path);
			return;
		}
	}
	if (len == 0 || path[0] != '/') {
		conf_error(c, c->line, "[route %.*s]: the path must begin with "
		    "'/', like [route /chat]", (int)len, path);
		return;
	}
	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		if (strlen(r->path) == len && memcmp(r->path, path, len) == 0) {
			conf_error(c, c->line, "[route %s]: duplicate route, "
			    "first defined %s", r->path,
			    where(c, r->file, r->line, buf, sizeof(buf)));
			return;
		}
	}

	if ((r = realloc(cfg->routes, (cfg->nroutes + 1) * sizeof(*r))) == NULL)
		goto nomem;
	cfg->routes = r;
	ov = realloc(c->overrides, (cfg->nroutes + 1) * sizeof(*ov));
	if (ov == NULL)
		goto nomem;
	c->overrides = ov;

	r = &cfg->routes[cfg->nroutes];
	memset(r, 0, sizeof(*r));
	memset(&ov[cfg->nroutes], 0, sizeof(*ov));
	if ((r->path = strndup(path, len)) == NULL)
		goto nomem;
	r->line = c->line;
	r->file = c->name;
	ov[cfg->nroutes].fidx = c->fidx;
	c->route = cfg->nroutes++;
	c->section = SECTION_ROUTE;
	return;
nomem:
	c->nomem = 1;
}

/*
 * A "[...]" line, p at the '['. Found the way inih finds it (up to ']' or an
 * inline comment), but stricter about what may follow.
 */
static void
start_section(struct ctx *c, char *p)
{
	char	*name, *end, *q;
	int	 was_space = 0;

	memset(c->seen, 0, sizeof(c->seen));
	c->section = SECTION_SKIP;

	for (q = p + 1; *q != '\0' && *q != ']'; q++) {
		if (was_space && *q == ';')
			break;
		was_space = isspace((unsigned char)*q);
	}
	if (*q != ']') {
		conf_error(c, c->line, "syntax error: missing ']' in section "
		    "header");
		return;
	}
	*q = '\0';
	for (end = q + 1; isspace((unsigned char)*end); end++)
		/* nothing */;
	if (*end != '\0' && !(*end == ';' && isspace((unsigned char)end[-1]))) {
		conf_error(c, c->line, "syntax error: unexpected '%s' after ']'",
		    end);
		return;
	}

	for (name = p + 1; isspace((unsigned char)*name); name++)
		/* nothing */;
	for (end = q; end > name && isspace((unsigned char)end[-1]); end--)
		/* nothing */;
	*end = '\0';

	if (strcmp(name, "server") == 0)
		c->section = SECTION_SERVER;
	else if (strcmp(name, "tls") == 0) {
		if (c->cfg->tls.line != 0)
			conf_error(c, c->line, "duplicate [tls] section, the first "
			    "is on line %d", c->cfg->tls.line);
		else {
			c->cfg->tls.line = c->line;
			c->section = SECTION_TLS;
		}
	}
	else if (strcmp(name, "admin") == 0) {
		/* Like [server]: one section, however many headers and files. */
		if (c->cfg->admin.line == 0)
			c->cfg->admin.line = c->line;
		c->section = SECTION_ADMIN;
	}
	else if (strncmp(name, "route", 5) == 0 &&
	    (name[5] == '\0' || isspace((unsigned char)name[5]))) {
		for (p = name + 5; isspace((unsigned char)*p); p++)
			/* nothing */;
		if (*p == '\0')
			conf_error(c, c->line, "[route]: missing path, expected "
			    "[route /PATH]");
		else
			start_route(c, p, strlen(p));
	} else
		conf_error(c, c->line, "unknown section [%s], expected [server], "
		    "[tls], [admin] or [route /PATH]", name);
}

/*
 * inih glue.
 */

static int
src_getc(struct ctx *c)
{
	int	ch;

	if (c->fp != NULL) {
		if ((ch = getc(c->fp)) == EOF && ferror(c->fp))
			c->read_errno = errno != 0 ? errno : EIO;
		return ch;
	}
	if (c->off == c->len)
		return EOF;
	return (unsigned char)c->text[c->off++];
}

/* Replaces a line inih must not act on (already handled, or reported). */
static char *
blank(char *str)
{
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

/*
 * inih's fgets-like reader: one line per call, into str (num bytes). Only
 * "key = value" lines are passed on, unindented and ending in '\n'; the
 * rest is handled here and replaced by a blank line.
 */
static char *
reader(char *str, int num, void *arg)
{
	struct ctx	*c = arg;
	size_t		 max, n = 0, total = 0;
	char		*p, *q;
	int		 ch, prev = EOF, got = 0, nul = 0, indented, was_space;

	if (c->eof || num < 3)
		return NULL;
	max = (size_t)num - 2;			/* room for '\n' and NUL */
	for (;;) {
		if ((ch = src_getc(c)) == EOF) {
			c->eof = 1;
			if (!got)
				return NULL;	/* nothing after last '\n' */
			break;
		}
		got = 1;
		if (ch == '\n')
			break;
		if (ch == '\0')
			nul = 1;
		if (n < max)
			str[n++] = (char)ch;
		total++;
		prev = ch;
	}
	if (prev == '\r') {			/* CRLF */
		total--;
		if (n > total)
			n = total;
	}
	str[n] = '\0';
	c->line++;

	if (total > max) {
		conf_error(c, c->line, "line too long (max %zu bytes)", max);
		return blank(str);
	}
	if (nul) {
		conf_error(c, c->line, "line contains a NUL byte");
		return blank(str);
	}

	p = str;
	if (c->line == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;				/* UTF-8 BOM */
	indented = isspace((unsigned char)*p);
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return blank(str);
	if (*p == '[') {
		start_section(c, p);
		return blank(str);
	}

	/* As inih splits "name = value": at the first '=' or ':'. */
	was_space = 0;
	for (q = p; *q != '\0' && *q != '=' && *q != ':'; q++) {
		if (was_space && *q == ';')
			break;
		was_space = isspace((unsigned char)*q);
	}
	if (*q != '=') {
		if (indented && strchr(p, '=') == NULL)
			conf_error(c, c->line, "continuation lines are not "
			    "supported: write one 'key = value' per line");
		else
			conf_error(c, c->line, "syntax error: expected "
			    "'key = value' or '[section]'");
		return blank(str);
	}
	if (q == p) {
		conf_error(c, c->line, "syntax error: missing key before '='");
		return blank(str);
	}

	n = strlen(p);
	memmove(str, p, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* The key valid in where, else the first of that name (for the error). */
static const struct key *
key_find(const char *name, int where)
{
	const struct key	*any = NULL;
	size_t			 i;

	for (i = 0; i < nitems(keys); i++) {
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if (keys[i].where & where)
			return &keys[i];
		if (any == NULL)
			any = &keys[i];
	}
	return any;
}

static const char *
section_name(int where)
{
	switch (where) {
	case IN_TLS:
		return "tls";
	case IN_ADMIN:
		return "admin";
	case IN_ROUTE:
		return "route";
	default:
		return "server";
	}
}

int
config_key_index(const char *name)
{
	const struct key	*k = key_find(name, IN_SERVER | IN_ROUTE);

	return k != NULL ? (int)(k - keys) : -1;
}

static void
add_option(struct ctx *c, struct config_route *r, const char *key,
    const char *value)
{
	struct config_option	*o;

	o = realloc(r->options, (r->noptions + 1) * sizeof(*o));
	if (o == NULL)
		goto nomem;
	r->options = o;
	o = &r->options[r->noptions];
	o->key = strdup(key);
	o->value = strdup(value);
	o->line = c->line;
	o->file = c->name;
	r->noptions++;
	if (o->key == NULL || o->value == NULL)
		goto nomem;
	return;
nomem:
	c->nomem = 1;
}

/*
 * Includes. One file is read at a time, depth first: an `include` line reads
 * the files it names right there, then the including file goes on where it
 * was. The per-file part of struct ctx is saved around that.
 */

static int	handler(void *, const char *, const char *, const char *);

struct file_state {
	const char	*name;
	size_t		 fidx;
	FILE		*fp;
	const char	*text;
	size_t		 len;
	size_t		 off;
	int		 eof;
	int		 read_errno;
	int		 line;
	enum section	 section;
	size_t		 route;
	int		 seen[nitems(keys)];
};

static void
file_state_save(const struct ctx *c, struct file_state *fs)
{
	fs->name = c->name;
	fs->fidx = c->fidx;
	fs->fp = c->fp;
	fs->text = c->text;
	fs->len = c->len;
	fs->off = c->off;
	fs->eof = c->eof;
	fs->read_errno = c->read_errno;
	fs->line = c->line;
	fs->section = c->section;
	fs->route = c->route;
	memcpy(fs->seen, c->seen, sizeof(fs->seen));
}

static void
file_state_restore(struct ctx *c, const struct file_state *fs)
{
	c->name = fs->name;
	c->fidx = fs->fidx;
	c->fp = fs->fp;
	c->text = fs->text;
	c->len = fs->len;
	c->off = fs->off;
	c->eof = fs->eof;
	c->read_errno = fs->read_errno;
	c->line = fs->line;
	c->section = fs->section;
	c->route = fs->route;
	memcpy(c->seen, fs->seen, sizeof(c->seen));
}

/*
 * A [server] key set a second time, in any file or [server] section, is an
 * error naming both places: with several files, "the last one wins" would
 * depend on file names nobody looks at together.
 */
static int
server_key_seen(struct ctx *c, const struct key *k, size_t idx)
{
	char	buf[PATH_MAX + 32];

	if ((k->flags & K_REPEAT) == 0 && c->server_seen[idx].line != 0) {
		conf_error(c, c->line, "%s: duplicate key, already set %s",
		    k->name, where(c, c->cfg->files[c->server_seen[idx].file].path,
		    c->server_seen[idx].line, buf, sizeof(buf)));
		return 1;
	}
	c->server_seen[idx].file = c->fidx;
	c->server_seen[idx].line = c->line;
	return 0;
}

/* Runs inih over the current source, then reports what it could not read. */
static void
read_stream(struct ctx *c)
{
	int	ret;

	ret = ini_parse_stream(reader, c, handler, c);
	if (ret < 0)
		c->nomem = 1;		/* -2: inih could not allocate its line */
	else if (ret > 0 && !line_has_error(c, ret)) {
		/* Not expected (the reader checks syntax first), but never lost. */
		conf_error(c, ret, "syntax error: expected 'key = value' or "
		    "'[section]'");
	}
	if (c->read_errno != 0)
		conf_error(c, 0, "cannot read: %s", strerror(c->read_errno));
}

static int
add_file(struct ctx *c, const char *path, char *real, int from_line)
{
	struct config		*cfg = c->cfg;
	struct config_file	*f;
	char			**r;

	f = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*f));
	if (f == NULL)
		return -1;
	cfg->files = f;
	r = realloc(c->real, (cfg->nfiles + 1) * sizeof(*r));
	if (r == NULL)
		return -1;
	c->real = r;
	f = &cfg->files[cfg->nfiles];
	f->from = cfg->nfiles == 0 ? NULL : c->name;
	f->from_line = from_line;
	if ((f->path = strdup(path)) == NULL)
		return -1;
	r[cfg->nfiles++] = real;
	return 0;
}

/* "FILE:LINE" or, for the default include, "FILE (conf.d/...)". */
static const char *
included_from(const struct config_file *f, char *buf, size_t len)
{
	if (f->from_line == 0)
		snprintf(buf, len, "%s (%s)", f->from, CONFIG_DEFAULT_INCLUDE);
	else
		snprintf(buf, len, "%s:%d", f->from, f->from_line);
	return buf;
}

/* Reads one file named by an include on line (0: the default include). */
static void
include_file(struct ctx *c, const char *path, int line)
{
	struct file_state	 fs;
	struct stat		 st;
	FILE			*fp;
	char			*real, buf[PATH_MAX + 64];
	size_t			 i;
	int			 depth;

	if (stat(path, &st) == -1 || (real = realpath(path, NULL)) == NULL) {
		conf_error(c, line, "include: cannot open '%s': %s", path,
		    strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_error(c, line, "include: '%s' is not a regular file", path);
		free(real);
		return;
	}
	for (i = 0; i <= (size_t)c->depth; i++) {
		if (strcmp(c->stack[i], real) == 0) {
			conf_error(c, line, "include: '%s' is already being read "
			    "(include cycle)", path);
			free(real);
			return;
		}
	}
	for (i = 0; i < c->cfg->nfiles; i++) {
		if (strcmp(c->real[i], real) == 0) {
			conf_error(c, line, "include: '%s' is already included "
			    "from %s", path, included_from(&c->cfg->files[i],
			    buf, sizeof(buf)));
			free(real);
			return;
		}
	}
	if (c->depth >= CONFIG_INCLUDE_DEPTH_MAX) {
		conf_error(c, line, "include: '%s' is nested too deeply (at "
		    "most %d levels of include)", path, CONFIG_INCLUDE_DEPTH_MAX);
		free(real);
		return;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		conf_error(c, line, "include: cannot open '%s': %s", path,
		    strerror(errno));
		free(real);
		return;
	}
	if (add_file(c, path, real, line) == -1) {
		free(real);
		fclose(fp);
		c->nomem = 1;
		return;
	}

	file_state_save(c, &fs);
	depth = c->depth;
	c->stack[++c->depth] = real;
	c->fidx = c->cfg->nfiles - 1;
	c->name = c->cfg->files[c->fidx].path;
	c->fp = fp;
	c->text = NULL;
	c->len = c->off = 0;
	c->eof = c->read_errno = c->line = 0;
	c->section = SECTION_NONE;
	c->route = 0;
	memset(c->seen, 0, sizeof(c->seen));

	read_stream(c);

	fclose(fp);
	c->depth = depth;
	file_state_restore(c, &fs);
}

/*
 * Glob metacharacters in the including file's directory are taken
 * literally: only the pattern as written is a pattern.
 */
static char *
include_pattern(const char *including, const char *pattern)
{
	const char	*slash, *p;
	char		*full, *q;

	if (pattern[0] == '/' || (slash = strrchr(including, '/')) == NULL)
		return strdup(pattern);
	if ((full = malloc(2 * (size_t)(slash - including) + strlen(pattern) +
	    2)) == NULL)
		return NULL;
	for (p = including, q = full; p < slash; p++) {
		if (strchr("*?[\\", *p) != NULL)
			*q++ = '\\';
		*q++ = *p;
	}
	*q++ = '/';
	strcpy(q, pattern);
	return full;
}

/* `include = PATTERN` on line (0: the default include of the main file). */
static void
include_glob(struct ctx *c, const char *pattern, int line)
{
	glob_t	 g;
	char	*full;
	size_t	 i;
	int	 ret;

	if ((full = include_pattern(c->name, pattern)) == NULL) {
		c->nomem = 1;
		return;
	}
	/* Sorted (glob's default), in the C locale: byte order. */
	ret = glob(full, 0, NULL, &g);
	switch (ret) {
	case 0:
		for (i = 0; i < g.gl_pathc && !c->nomem; i++)
			include_file(c, g.gl_pathv[i], line);
		globfree(&g);
		break;
	case GLOB_NOMATCH:
		/* A pattern may match nothing (an empty conf.d); a name must. */
		if (strpbrk(pattern, "*?[") == NULL)
			conf_error(c, line, "include: cannot open '%s': %s",
			    full, strerror(ENOENT));
		break;
	case GLOB_NOSPACE:
		c->nomem = 1;
		break;
	default:
		conf_error(c, line, "include: cannot read the directories of "
		    "'%s'", full);
		break;
	}
	free(full);
}

static int
set_include(struct ctx *c, const struct key *k, const char *value, void *dst)
{
	(void)dst;
	if (*value == '\0') {
		conf_error(c, c->line, "%s: expected a file name or a pattern "
		    "like conf.d/*.ini", k->name);
		return -1;
	}
	include_glob(c, value, c->line);
	return 0;
}

static int
set_include_default(struct ctx *c, const struct key *k, const char *value,
    void *dst)
{
	if (strcmp(value, "yes") == 0)
		*(int *)dst = 1;
	else if (strcmp(value, "no") == 0)
		*(int *)dst = 0;
	else {
		conf_error(c, c->line, "%s: expected yes or no, got '%s'",
		    k->name, value);
		return -1;
	}
	return 0;
}

/*
 * inih's handler, for every "key = value" line the reader passed on. Always
 * returns 1: errors are recorded here, with their line, not left to inih
 * (which only remembers the first).
 */
static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct ctx		*c = arg;
	struct config		*cfg = c->cfg;
	struct config_route	*r = NULL;
	struct override		*ov = NULL;
	const struct key	*k;
	size_t			 idx;
	void			*dst;
	int			 where;

	(void)section;		/* the reader's is complete, inih's is not */

	switch (c->section) {
	case SECTION_NONE:
		conf_error(c, c->line, "key '%s' is outside any section, put it "
		    "under [server] or [route /PATH]", name);
		return 1;
	case SECTION_SERVER:
		where = IN_SERVER;
		break;
	case SECTION_TLS:
		where = IN_TLS;
		break;
	case SECTION_ADMIN:
		where = IN_ADMIN;
		break;
	case SECTION_ROUTE:
		where = IN_ROUTE;
		r = &cfg->routes[c->route];
		ov = &c->overrides[c->route];
		break;
	case SECTION_SKIP:
	default:
		return 1;
	}

	if ((k = key_find(name, where)) == NULL) {
		if (r == NULL)
			conf_error(c, c->line, "unknown key '%s' in [%s]",
			    name, section_name(where));
		else
			add_option(c, r, name, value); /* judged at the end */
		return 1;
	}
	if ((k->where & where) == 0) {
		if (where == IN_TLS || k->where == IN_TLS || where == IN_ADMIN ||
		    k->where == IN_ADMIN)
			conf_error(c, c->line, "%s: not valid in [%s]", name,
			    section_name(where));
		else if (r == NULL)
			conf_error(c, c->line, "%s: only valid in a "
			    "[route /PATH] section, not in [server]", name);
		else
			conf_error(c, c->line, "%s: only valid in [server], "
			    "not in [route %s]", name, r->path);
		return 1;
	}
	idx = (size_t)(k - keys);
	if (k->set == set_include_default && c->depth != 0) {
		/* conf.d/ is read after the main file: too late to say no. */
		conf_error(c, c->line, "%s: only valid in the main file (%s)",
		    name, cfg->files[0].path);
		return 1;
	}
	if (r == NULL) {
		/* [server] is one section, however many files and headers. */
		if (server_key_seen(c, k, idx))
			return 1;
	} else if (c->seen[idx] != 0 && (k->flags & K_REPEAT) == 0) {
		conf_error(c, c->line, "%s: duplicate key, already set on line %d",
		    name, c->seen[idx]);
		return 1;
	}
	c->seen[idx] = c->line;

	if (k->flags & K_LIMIT)
		dst = (char *)(r != NULL ? &ov->v : &cfg->limits) + k->off;
	else
		dst = (char *)(r != NULL ? (void *)r : (void *)cfg) + k->off;
	if (k->set(c, k, value, dst) == 0) {
		if (ov != NULL && (k->flags & K_LIMIT))
			ov->set |= LIMIT_BIT(k->off);
		(r != NULL ? r->origin : cfg->origin)[idx] =
		    (struct config_origin){ c->name, c->line };
	}
	return 1;
}

/* TLS listeners need a [tls] with a key pair; a [tls] needs both files. */
static void
finish_tls(struct ctx *c)
{
	struct config		*cfg = c->cfg;
	struct config_tls	*t = &cfg->tls;
	size_t			 i;

	for (i = 0; i < cfg->nlistens; i++) {
		if (cfg->listens[i].tls && t->line == 0)
			conf_error(c, cfg->listens[i].line, "listen: option 'tls' "
			    "needs a [tls] section with certificate and private_key");
		if (cfg->listens[i].proxy_protocol && cfg->ntrusted_proxies == 0)
			conf_error(c, cfg->listens[i].line, "listen: option "
			    "'proxy_protocol' needs trusted_proxies in [server] "
			    "(the PROXY header is only accepted from them)");
	}
	if (t->line == 0)
		return;
	if (t->certificate.v == NULL)
		conf_error(c, t->line, "[tls]: certificate: missing, expected "
		    "'certificate = /path/to/cert.pem'");
	if (t->private_key.v == NULL)
		conf_error(c, t->line, "[tls]: private_key: missing, expected "
		    "'private_key = /path/to/key.pem'");
}

/* Checks that need the whole file: every route sees the final [server]. */
static void
finish(struct ctx *c)
{
	struct config		*cfg = c->cfg;
	struct config_route	*r;
	struct override		*ov;
	size_t			 i, j;
	int			 plugin;

	if (c->listen_lines == 0)
		conf_error_in(c, 0, 0, "listen: missing, at least one 'listen = "
		    "ADDRESS:PORT' is required in [server]");
	finish_tls(c);

	for (i = 0; i < cfg->nroutes; i++) {
		r = &cfg->routes[i];
		ov = &c->overrides[i];

		if (r->handler == NULL)
			conf_error_in(c, ov->fidx, r->line, "[route %s]: "
			    "handler: missing, expected e.g. 'handler = echo'",
			    r->path);
		plugin = takes_options(r->handler);
		for (j = 0; !plugin && j < r->noptions; j++) {
			conf_error_in(c, ov->fidx, r->options[j].line,
			    "unknown key '%s' in [route %s]", r->options[j].key,
			    r->path);
		}

		r->limits = cfg->limits;
		for (j = 0; j < nitems(keys); j++) {
			if ((keys[j].flags & K_LIMIT) &&
			    (ov->set & LIMIT_BIT(keys[j].off)))
				memcpy((char *)&r->limits + keys[j].off,
				    (char *)&ov->v + keys[j].off, sizeof(uint64_t));
		}
	}
}

static void
free_reals(struct ctx *c)
{
	size_t	i;

	for (i = 0; c->cfg != NULL && i < c->cfg->nfiles; i++)
		free(c->real[i]);
	free(c->real);
	c->real = NULL;
}

static struct config *
parse(struct ctx *c, struct config_errors *errs)
{
	struct config	*cfg;
	char		*real;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->file = strdup(c->name)) == NULL) {
		c->nomem = 1;
		goto fail;
	}
	cfg->include_default = 1;
	cfg->max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS;
	cfg->handshake_timeout_ms = CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->shutdown_timeout_ms = CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS;
	cfg->workers = 1;
	cfg->log_level = LOG_LVL_INFO;
	cfg->limits.ping_period_ms = CONFIG_DEFAULT_PING_PERIOD_MS;
	cfg->limits.timeout_ms = CONFIG_DEFAULT_TIMEOUT_MS;
	cfg->limits.close_timeout_ms = CONFIG_DEFAULT_CLOSE_TIMEOUT_MS;
	cfg->limits.close_linger_max_ms = CONFIG_DEFAULT_CLOSE_LINGER_MAX_MS;
	cfg->limits.message_timeout_ms = CONFIG_DEFAULT_MESSAGE_TIMEOUT_MS;
	cfg->limits.max_frame_size = CONFIG_DEFAULT_MAX_FRAME_SIZE;
	cfg->limits.max_message_size = CONFIG_DEFAULT_MAX_MESSAGE_SIZE;
	cfg->limits.max_output_buffer = CONFIG_DEFAULT_MAX_OUTPUT_BUFFER;
	cfg->proxy_protocol_timeout_ms = CONFIG_DEFAULT_PROXY_PROTOCOL_TIMEOUT_MS;
	cfg->drain_window_ms = CONFIG_DEFAULT_DRAIN_WINDOW_MS;
	cfg->tls.min_version = CONFIG_TLS12;
	cfg->tls.max_version = CONFIG_TLS13;
	c->cfg = cfg;

	/* The main file is files[0]; text in memory is known by its name. */
	if ((real = realpath(c->name, NULL)) == NULL &&
	    (real = strdup(c->name)) == NULL) {
		c->nomem = 1;
		goto fail;
	}
	if (add_file(c, c->name, real, 0) == -1) {
		free(real);
		c->nomem = 1;
		goto fail;
	}
	c->name = cfg->files[0].path;
	c->stack[0] = real;

	read_stream(c);
	if (c->fp != NULL && cfg->include_default && !c->nomem) {
		c->line = 0;
		include_glob(c, CONFIG_DEFAULT_INCLUDE, 0);
	}
	if (!c->nomem)
		finish(c);

	if (c->nerrors == 0 && !c->nomem) {
		free_reals(c);
		free(c->overrides);
		return cfg;
	}
fail:
	errors_flush(c, errs);
	free_reals(c);
	free(c->overrides);
	config_free(cfg);
	return NULL;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct ctx	 c;
	struct config	*cfg;

	memset(&c, 0, sizeof(c));
	c.name = path;
	if ((c.fp = fopen(path, "r")) == NULL) {
		conf_error(&c, 0, "cannot open: %s", strerror(errno));
		errors_flush(&c, errs);
		return NULL;
	}
	cfg = parse(&c, errs);
	fclose(c.fp);
	return cfg;
}

struct config *
config_parse_string(const char *text, size_t len, const char *name,
    struct config_errors *errs)
{
	struct ctx	c;

	memset(&c, 0, sizeof(c));
	c.name = name;
	c.text = text;
	c.len = len;
	return parse(&c, errs);
}

/*
 * wsrouted -T: the effective configuration, as a config file.
 */

/* What read_stream accepts: INI_MAX_LINE less the '\n' and the NUL. */
#define DUMP_LINE_MAX	(INI_MAX_LINE - 2)

/* A comment line; a long one keeps its end (the file name and line). */
static void
dump_comment(FILE *f, const char *text)
{
	size_t	len = strlen(text);

	if (len + 2 <= DUMP_LINE_MAX)
		fprintf(f, "; %s\n", text);
	else
		fprintf(f, "; ...%s\n", text + len - (DUMP_LINE_MAX - 5));
}

/*
 * "key = value ; comment", or, when that would not fit on one line, the
 * comment on a line of its own before. commented: the key is shown, not set.
 */
static void
dump_key(FILE *f, int commented, const char *key, const char *value,
    const char *comment)
{
	const char	*semi = commented ? ";" : "";
	size_t		 len;

	len = strlen(semi) + strlen(key) + 3 + strlen(value);
	if (len + 3 + strlen(comment) <= DUMP_LINE_MAX) {
		fprintf(f, "%s%s = %s ; %s\n", semi, key, value, comment);
		return;
	}
	dump_comment(f, comment);
	if (len <= DUMP_LINE_MAX)
		fprintf(f, "%s%s = %s\n", semi, key, value);
	else
		fprintf(f, "%s%s=%s\n", semi, key, value);
}

static const char *
dump_origin(const struct config_origin *o, char *buf, size_t len)
{
	if (o->file == NULL)
		snprintf(buf, len, "default");
	else
		snprintf(buf, len, "%s:%d", o->file, o->line);
	return buf;
}

/* A list as one value: ", " between items, or "," if that is too long. */
static char *
dump_list(char **list, size_t n)
{
	size_t	 i, len = 0;
	char	*s;
	int	 tight;

	for (i = 0; i < n; i++)
		len += strlen(list[i]) + 2;
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	tight = len > DUMP_LINE_MAX / 2;
	s[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(s, tight ? "," : ", ");
		strcat(s, list[i]);
	}
	return s;
}

/* The value of a number key (sizes, durations, counts, log_level). */
static const char *
dump_value(const struct key *k, const void *src, char *buf, size_t len)
{
	uint64_t	v;

	if (k->set == set_named) {
		snprintf(buf, len, "%s", k->names[*(const int *)src]);
		return buf;
	}
	if (k->set == set_workers && *(const uint64_t *)src == 0) {
		snprintf(buf, len, "auto");
		return buf;
	}
	memcpy(&v, src, sizeof(v));
	if (k->set == set_size)
		return fmt_size(v, buf, len);
	if (k->set == set_duration)
		return fmt_duration(v, buf, len);
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

/* trusted_proxies as written back: "127.0.0.1/32, ::1/128". malloc'd. */
static char *
fmt_cidrs(const struct config *cfg)
{
	const struct config_cidr	*cd;
	char				*out, addr[INET6_ADDRSTRLEN];
	size_t				 i, len = 0, cap;

	cap = cfg->ntrusted_proxies * (INET6_ADDRSTRLEN + 8) + 1;
	if ((out = malloc(cap)) == NULL)
		return NULL;
	out[0] = '\0';
	for (i = 0; i < cfg->ntrusted_proxies; i++) {
		cd = &cfg->trusted_proxies[i];
		if (inet_ntop(cd->family, cd->addr, addr, sizeof(addr)) == NULL)
			snprintf(addr, sizeof(addr), "?");
		len += snprintf(out + len, cap - len, "%s%s/%u", i ? ", " : "", addr,
		    cd->prefix);
	}
	return out;
}

/* [tls], when the config has one. */
static void
dump_tls(FILE *f, const struct config *cfg)
{
	const struct key	*k;
	const struct config_str	*str;
	char			 where[2 * PATH_MAX + 64], val[32];
	size_t			 i;

	if (cfg->tls.line == 0)
		return;
	fprintf(f, "\n[tls]\n");
	for (i = 0; i < nitems(keys); i++) {
		k = &keys[i];
		if ((k->where & IN_TLS) == 0)
			continue;
		dump_origin(&cfg->origin[i], where, sizeof(where));
		if (k->set == set_tls_protocols) {
			snprintf(val, sizeof(val), "%s%s%s",
			    cfg->tls.min_version <= CONFIG_TLS12 ? "TLSv1.2" : "",
			    cfg->tls.min_version <= CONFIG_TLS12 &&
			    cfg->tls.max_version >= CONFIG_TLS13 ? " " : "",
			    cfg->tls.max_version >= CONFIG_TLS13 ? "TLSv1.3" : "");
			dump_key(f, 0, k->name, val, where);
			continue;
		}
		if (k->set == set_named) {
			dump_key(f, cfg->origin[i].line == 0, k->name,
			    k->names[*(const int *)((const char *)cfg + k->off)], where);
			continue;
		}
		str = (const struct config_str *)((const char *)cfg + k->off);
		if (str->v == NULL)
			dump_key(f, 1, k->name, "", where);
		else
			dump_key(f, 0, k->name, str->v, where);
	}
}

static void
dump_server(FILE *f, const struct config *cfg)
{
	const struct key	*k;
	const void		*src;
	char			 where[2 * PATH_MAX + 64], val[64];
	char			 from[PATH_MAX + 32];
	size_t			 i, j;

	fprintf(f, "[server]\n");
	for (i = 0; i < nitems(keys); i++) {
		k = &keys[i];
		if ((k->where & IN_SERVER) == 0 || k->set == set_include)
			continue;
		if (k->set == set_listen) {
			for (j = 0; j < cfg->nlistens; j++) {
				snprintf(where, sizeof(where), "%s:%d",
				    cfg->listens[j].file, cfg->listens[j].line);
				dump_key(f, 0, k->name, cfg->listens[j].spec, where);
			}
			continue;
		}
		if (k->set == set_include_default) {
			dump_origin(&cfg->origin[i], from, sizeof(from));
			snprintf(where, sizeof(where), "everything is below; "
			    "was: %s (%s)", cfg->include_default ? "yes" : "no",
			    from);
			dump_key(f, 0, k->name, "no", where);
			continue;
		}
		src = (k->flags & K_LIMIT) ? (const char *)&cfg->limits + k->off :
		    (const char *)cfg + k->off;
		if (k->set == set_account) {
			/* Unset: shown commented out, so the dump reads back the same. */
			dump_origin(&cfg->origin[i], where, sizeof(where));
			if (*(char *const *)src == NULL)
				dump_key(f, 1, k->name, "", where);
			else
				dump_key(f, 0, k->name, *(char *const *)src, where);
			continue;
		}
		if (k->set == set_trusted_proxies) {
			dump_origin(&cfg->origin[i], where, sizeof(where));
			if (cfg->ntrusted_proxies == 0)
				dump_key(f, 1, k->name, "", where);
			else {
				char *list = fmt_cidrs(cfg);

				if (list == NULL)
					continue;
				dump_key(f, 0, k->name, list, where);
				free(list);
			}
			continue;
		}
		if (k->set == set_access_log) {
			dump_key(f, 0, k->name, *(char *const *)src != NULL ?
			    *(char *const *)src : "off",
			    dump_origin(&cfg->origin[i], where, sizeof(where)));
			continue;
		}
		if (k->set == set_plugin_dir) {
			/* Unset: the build's directory, shown commented out. */
			dump_origin(&cfg->origin[i], where, sizeof(where));
			if (*(char *const *)src == NULL)
				dump_key(f, 1, k->name, "", "default: the build's plugin directory");
			else
				dump_key(f, 0, k->name, *(char *const *)src, where);
			continue;
		}
		if (k->set == set_bool) {
			dump_key(f, 0, k->name, *(const bool *)src ? "yes" : "no",
			    dump_origin(&cfg->origin[i], where, sizeof(where)));
			continue;
		}
		dump_key(f, 0, k->name, dump_value(k, src, val, sizeof(val)),
		    dump_origin(&cfg->origin[i], where, sizeof(where)));
	}
}

/* [admin], when the config has one. */
static void
dump_admin(FILE *f, const struct config *cfg)
{
	const struct config_listen	*l;
	char				 where[PATH_MAX + 64];
	size_t				 i;

	if (cfg->admin.line == 0 && cfg->admin.nlistens == 0)
		return;
	fprintf(f, "\n[admin]\n");
	for (i = 0; i < cfg->admin.nlistens; i++) {
		l = &cfg->admin.listens[i];
		snprintf(where, sizeof(where), "%s:%d", l->file, l->line);
		dump_key(f, 0, "listen", l->spec, where);
	}
	if (cfg->admin.nlistens == 0)
		dump_key(f, 1, "listen", "", "default: none (no admin endpoints)");
}

static int
dump_route(FILE *f, const struct config_route *r)
{
	const struct key	*k;
	char			 where[PATH_MAX + 64], val[64], *list;
	size_t			 i, len, pass;
	int			 inherited;

	snprintf(where, sizeof(where), "%s:%d", r->file, r->line);
	len = strlen(r->path) + 8;
	if (len + 3 + strlen(where) <= DUMP_LINE_MAX)
		fprintf(f, "[route %s] ; %s\n", r->path, where);
	else {
		dump_comment(f, where);
		fprintf(f, "[route %s]\n", r->path);
	}
	/* handler, origins, subprotocols, then the limits. */
	for (pass = 0, i = 0; pass < 2; i = 0, pass++)
	for (; i < nitems(keys); i++) {
		k = &keys[i];
		if ((k->where & IN_ROUTE) == 0 ||
		    ((k->flags & K_LIMIT) != 0) != (pass == 1))
			continue;
		dump_origin(&r->origin[i], where, sizeof(where));
		if (k->set == set_handler)
			dump_key(f, 0, k->name, r->handler, where);
		else if (k->set == set_named)
			dump_key(f, 0, k->name, k->names[*(const int *)((const char *)r + k->off)],
			    where);
		else if (k->set == set_bool)
			dump_key(f, 0, k->name, *(const bool *)((const char *)r + k->off) ?
			    "yes" : "no", where);
		else if (k->set == set_origins || k->set == set_subprotocols) {
			if (k->set == set_origins && r->norigins == 0) {
				dump_key(f, 0, k->name, "*", where);
				continue;
			}
			if (k->set == set_subprotocols && r->nsubprotocols == 0) {
				dump_key(f, 1, k->name, "", "default: none");
				continue;
			}
			list = k->set == set_origins ?
			    dump_list(r->origins, r->norigins) :
			    dump_list(r->subprotocols, r->nsubprotocols);
			if (list == NULL)
				return -1;
			dump_key(f, 0, k->name, list, where);
			free(list);
		} else {
			/* A limit the route does not set is shown, not set. */
			inherited = r->origin[i].file == NULL;
			dump_key(f, inherited, k->name, dump_value(k,
			    (const char *)&r->limits + k->off, val, sizeof(val)),
			    inherited ? "inherited from [server]" : where);
		}
	}
	for (i = 0; i < r->noptions; i++) {
		snprintf(where, sizeof(where), "%s:%d", r->options[i].file,
		    r->options[i].line);
		dump_key(f, 0, r->options[i].key, r->options[i].value, where);
	}
	return 0;
}

char *
config_dump(const struct config *cfg)
{
	const struct config_file	*cf;
	FILE				*f;
	char				*text = NULL, line[2 * PATH_MAX + 64];
	char				 from[PATH_MAX + 64];
	size_t				 size = 0, i;
	int				 bad = 0;

	if ((f = open_memstream(&text, &size)) == NULL)
		return NULL;
	snprintf(line, sizeof(line), "The effective configuration of %s",
	    cfg->file);
	dump_comment(f, line);
	dump_comment(f, "(wsrouted -T). After each value: the FILE:LINE it "
	    "was set on, or default.");
	dump_comment(f, "Files read, in this order:");
	for (i = 0; i < cfg->nfiles; i++) {
		cf = &cfg->files[i];
		if (cf->from == NULL)
			snprintf(line, sizeof(line), "  %s", cf->path);
		else
			snprintf(line, sizeof(line), "  %s, included from %s",
			    cf->path, included_from(cf, from, sizeof(from)));
		dump_comment(f, line);
	}
	fprintf(f, "\n");
	dump_server(f, cfg);
	dump_tls(f, cfg);
	dump_admin(f, cfg);
	for (i = 0; i < cfg->nroutes && !bad; i++) {
		fprintf(f, "\n");
		bad = dump_route(f, &cfg->routes[i]) == -1;
	}
	if (ferror(f))
		bad = 1;
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}

static void
route_free(struct config_route *r)
{
	size_t	i;

	free(r->path);
	free(r->handler);
	free_list(r->origins, r->norigins);
	free_list(r->subprotocols, r->nsubprotocols);
	for (i = 0; i < r->noptions; i++) {
		free(r->options[i].key);
		free(r->options[i].value);
	}
	free(r->options);
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlistens; i++) {
		free(cfg->listens[i].spec);
		free(cfg->listens[i].name);
	}
	free(cfg->listens);
	for (i = 0; i < cfg->admin.nlistens; i++) {
		free(cfg->admin.listens[i].spec);
		free(cfg->admin.listens[i].name);
	}
	free(cfg->admin.listens);
	free(cfg->access_log);
	for (i = 0; i < cfg->nroutes; i++)
		route_free(&cfg->routes[i]);
	free(cfg->routes);
	for (i = 0; i < cfg->nfiles; i++)
		free(cfg->files[i].path);
	free(cfg->files);
	free(cfg->tls.certificate.v);
	free(cfg->tls.private_key.v);
	free(cfg->tls.chain.v);
	free(cfg->tls.ciphers.v);
	free(cfg->tls.ciphersuites.v);
	free(cfg->tls.groups.v);
	free(cfg->trusted_proxies);
	free(cfg->plugin_dir);
	free(cfg->file);
	free(cfg->user);
	free(cfg->group);
	free(cfg);
}

void
config_errors_clear(struct config_errors *errs)
{
	size_t	i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}
