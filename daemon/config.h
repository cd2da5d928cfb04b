/*
 * config.h — PURE. INI text (inih is the tokenizer) → a validated struct
 * config, or a list of errors each naming file:line, the key and what was
 * expected. Unknown sections and keys are errors: a typo must never silently
 * disable a limit. See conf/wsrouted.ini for the language.
 */
#ifndef WSR_CONFIG_H
#define WSR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Where a value came from: a file (one of struct config's files[].path) and
 * a line. file NULL means the built-in default.
 */
struct config_origin {
	const char	*file;
	int		 line;
};

/* Room for one origin per key of the language (config.c checks it fits). */
#define CONFIG_KEYS_MAX		64

/* Limits and timers that a [route] may override; durations in milliseconds. */
struct limits {
	uint64_t	ping_period_ms;		/* 0 = no pings */
	uint64_t	timeout_ms;		/* 0 = no idle timeout */
	uint64_t	close_timeout_ms;
	uint64_t	close_linger_max_ms;	/* closing lasts at most this, however the
						   peer reads; 0 = no cap */
	uint64_t	max_frame_size;		/* bytes */
	uint64_t	max_message_size;	/* bytes */
	uint64_t	max_output_buffer;	/* bytes queued before we stop reading */
	uint64_t	send_buffer;		/* SO_SNDBUF at upgrade; 0: kernel autotuning */
	uint64_t	message_timeout_ms;	/* a started message must end within; 0 = off */
	uint64_t	max_connection_lifetime_ms; /* close (1001) open connections after, less
						   up to CONFIG_LIFETIME_JITTER of it; 0 = off */
};

/*
 * LISTEN_SYSTEMD: sockets passed by the service manager (socket activation,
 * sd_listen_fds_with_names): "systemd" takes every passed socket not claimed
 * by a "systemd:NAME" line, which takes those named NAME
 * (FileDescriptorName= in the .socket unit). addr is unused; name is NULL
 * for plain "systemd".
 */
enum listen_kind { LISTEN_INET, LISTEN_UNIX, LISTEN_SYSTEMD };

struct config_listen {
	char			*spec;		/* as written, for logs */
	enum listen_kind	 kind;
	struct sockaddr_storage	 addr;		/* INET: sockaddr_in/in6; UNIX: sockaddr_un */
	socklen_t		 addrlen;
	char			*name;		/* SYSTEMD: NAME of systemd:NAME (no options), or NULL */
	int			 line;
	const char		*file;		/* where line is */
	bool			 tls;		/* option "tls": TLS is terminated here */
	bool			 proxy_protocol; /* option "proxy_protocol" */
};

/* A string value with the line it came from (for errors found later). */
struct config_str {
	char	*v;		/* NULL: not set */
	int	 line;
};

/* TLS protocol versions, as on the wire (TLS1_2_VERSION, TLS1_3_VERSION). */
#define CONFIG_TLS12	0x0303
#define CONFIG_TLS13	0x0304

/*
 * [tls]: only paths and names here (config.c is pure); tls.c turns them
 * into an SSL_CTX and reports unreadable or mismatched files with these
 * lines.
 */
struct config_tls {
	int			 line;		/* of the [tls] header; 0: no section */
	struct config_str	 certificate;	/* PEM: the leaf, may be followed by its chain */
	struct config_str	 private_key;	/* PEM */
	struct config_str	 chain;		/* PEM: intermediates, optional */
	struct config_str	 ciphers;	/* TLS 1.2 cipher list, optional */
	struct config_str	 ciphersuites;	/* TLS 1.3 suites, optional */
	struct config_str	 groups;	/* key exchange groups, optional */
	int			 min_version;	/* CONFIG_TLS12 by default */
	int			 max_version;	/* CONFIG_TLS13 by default */
	int			 record_layer;	/* enum tls_record_layer */
};

/*
 * Who runs the records of an established TLS 1.3 connection: our own
 * layer (daemon/tlsrec.h: ~300 bytes a connection instead of OpenSSL's
 * ~14 KiB), or OpenSSL, as for every TLS 1.2 connection.
 */
enum tls_record_layer { TLS_RECORDS_WSROUTED, TLS_RECORDS_OPENSSL };

/* One trusted_proxies entry. */
struct config_cidr {
	int		family;		/* AF_INET or AF_INET6 */
	uint8_t		addr[16];	/* network byte order, host bits zero */
	unsigned	prefix;
};

struct config_option {		/* a key the daemon does not know, for a plugin */
	char	*key;
	char	*value;
	int	 line;
	const char *file;
};

/* What a route's messages may be ("content ="); checked before the handler. */
enum content { CONTENT_ANY, CONTENT_TEXT, CONTENT_BINARY, CONTENT_JSON };

struct config_route {
	char			*path;		/* begins with '/', no '?' */
	char			*handler;	/* "echo", "broadcast", "plugin:NAME" */
	struct limits		 limits;	/* [server] values with this route's overrides */
	char			**origins;	/* allowlist; norigins == 0 allows all */
	size_t			 norigins;
	char			**subprotocols;	/* in server preference order */
	size_t			 nsubprotocols;
	enum content		 content;
	bool			 devconsole;	/* a plain GET gets the test page (devconsole.c) */
	struct config_option	*options;	/* unknown keys (handlers that take options) */
	size_t			 noptions;
	int			 line;		/* of the [route …] header */
	const char		*file;		/* the file it is in */
	/* Per key (config.c's table order): where the route set it, if it did. */
	struct config_origin	 origin[CONFIG_KEYS_MAX];
};

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* access log line format ("log_format =") */
enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };

/*
 * [admin] (metrics, health, readiness): listen lines as in [server] (INET or
 * UNIX; no options but "public"). A non-loopback address is refused unless
 * its line says "public".
 */
struct config_admin {
	int			 line;		/* of the first [admin] header; 0: none */
	struct config_listen	*listens;	/* tls/proxy_protocol always false */
	size_t			 nlistens;
};

struct config {
	char			*file;
	struct config_listen	*listens;
	size_t			 nlistens;
	uint64_t		 max_connections;
	uint64_t		 max_connections_per_ip; /* 0: no limit */
	uint64_t		 handshake_timeout_ms;
	uint64_t		 shutdown_timeout_ms;
	uint64_t		 workers;	/* event loops; 0: auto (CPUs we may run on) */
	enum log_level		 log_level;
	char			*plugin_dir;	/* absolute; NULL: the built-in default */
	struct limits		 limits;	/* [server] defaults */
	struct config_route	*routes;
	size_t			 nroutes;

	/* Every file read, in the order read; files[0] is the main file. */
	struct config_file {
		char		*path;		/* as opened (and shown in messages) */
		const char	*from;		/* the including file; NULL: main */
		int		 from_line;	/* 0: the default conf.d/ include */
	}			*files;
	size_t			 nfiles;
	int			 include_default; /* the default include (main file) */
	/* Per [server] key (config.c's table order): where it was set. */
	struct config_origin	 origin[CONFIG_KEYS_MAX];
	char			*user;		/* privilege drop after binding; NULL: none */
	char			*group;		/* NULL: the user's primary group */
	bool			 allow_root;	/* may keep running as root without user */
	struct config_tls	 tls;
	struct config_cidr	*trusted_proxies;
	size_t			 ntrusted_proxies;
	uint64_t		 proxy_protocol_timeout_ms;
	struct config_admin	 admin;
	enum log_format		 log_format;	/* of the access log */
	char			*access_log;	/* "stderr", "off" or an absolute path */
	uint64_t		 drain_window_ms;	/* closes spread over this at shutdown */
	uint64_t		 proxy_idle_timeout_ms;	/* of the proxy in front; 0: unknown */
};

/* One error: "FILE:LINE: message". */
struct config_errors {
	char	**msgs;
	size_t	  n;
};

/* Defaults, documented in conf/wsrouted.ini. */
#define CONFIG_DEFAULT_MAX_CONNECTIONS		10000
#define CONFIG_WORKERS_MAX			64	/* also the cap of workers = auto */
#define CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS	10000
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS	10000
#define CONFIG_DEFAULT_PROXY_PROTOCOL_TIMEOUT_MS	3000
/*
 * 5 s: a full instance (max_connections' default, 10,000) sends its clients
 * back at ~2,000/s instead of all in one instant, the window fits in the
 * default shutdown_timeout with a whole close_timeout to spare for the last
 * peers' answers, and a stop or restart costs at most 5 s more (nothing when
 * no connection is open).
 */
#define CONFIG_DEFAULT_DRAIN_WINDOW_MS		5000
/*
 * max_connection_lifetime closes each connection at a random point of the
 * last tenth of its lifetime, so connections opened together (after a
 * deploy) do not all come back together either.
 */
#define CONFIG_LIFETIME_JITTER_PERCENT		10
#define CONFIG_DEFAULT_PING_PERIOD_MS		25000
#define CONFIG_DEFAULT_TIMEOUT_MS		60000
#define CONFIG_DEFAULT_CLOSE_TIMEOUT_MS		5000
/*
 * close_timeout restarts while the peer still takes our bytes (so a slow
 * client gets a big last message whole); this caps the whole closing phase,
 * so one reading a byte per close_timeout cannot hold a connection for days.
 * Like nginx's lingering_time (30 s) beside lingering_timeout; longer, as a
 * WebSocket's last message may be large.
 */
#define CONFIG_DEFAULT_CLOSE_LINGER_MAX_MS	60000
#define CONFIG_DEFAULT_MESSAGE_TIMEOUT_MS	60000
#define CONFIG_DEFAULT_MAX_FRAME_SIZE		(1u << 20)
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE		(16u << 20)
#define CONFIG_DEFAULT_MAX_OUTPUT_BUFFER	(1u << 20)
#define CONFIG_DEFAULT_INCLUDE			"conf.d/*.ini"
#define CONFIG_INCLUDE_DEPTH_MAX		8

/*
 * Reads and validates a config file and every file it includes: `include =
 * PATTERN` in [server] (a glob relative to the including file's directory,
 * matches read in lexical order, at that line) and, unless the main file
 * says `include_default = no`, CONFIG_DEFAULT_INCLUDE next to the main file
 * once the main file has been read. Returns the config, or NULL with every
 * error found appended to errs (parsing goes on after an error so that
 * `wsrouted -t` reports all of them at once), ordered by file (in the order
 * the files were read), then line. errs may be NULL.
 */
struct config	*config_load(const char *path, struct config_errors *errs);

/*
 * Same, from text in memory; name is used as FILE in messages. `include`
 * works (relative to name's directory); the default include does not apply.
 */
struct config	*config_parse_string(const char *text, size_t len, const char *name,
		    struct config_errors *errs);

/*
 * The effective configuration as INI text (malloc'd, NULL when out of
 * memory), for `wsrouted -T`: every key with its value and, in a comment,
 * the file:line it came from or "default". Include lines are left out and
 * include_default is off: the text is a complete configuration by itself,
 * which read back gives the same values.
 */
char		*config_dump(const struct config *cfg);

void		 config_free(struct config *cfg);
void		 config_errors_clear(struct config_errors *errs);

/* "1MiB", "512", "64KiB" (B KiB MiB GiB, also K M G); -1 on error. */
int		 config_parse_size(const char *s, uint64_t *out);
/* "15s", "500ms", "2m", "1h", "0"; a bare number is seconds; -1 on error. */
int		 config_parse_duration_ms(const char *s, uint64_t *out);
/*
 * "127.0.0.1:8080", "[::1]:8080", "*:8080", "unix:/run/x.sock", "systemd",
 * "systemd:NAME"; -1 on error.
 * Fills kind, addr and addrlen; spec is left NULL and line 0 (the loader
 * sets them).
 */
int		 config_parse_listen(const char *s, struct config_listen *out);
/* An INET line's port (0: a fresh ephemeral port each time it is bound). */
uint16_t	 config_listen_port(const struct config_listen *l);
/*
 * Whether two lines name the same socket: the same address, or the same
 * "systemd" / "systemd:NAME", whatever their options. Port 0 is for the
 * caller to judge (two such lines are two sockets).
 */
bool		 config_listen_same(const struct config_listen *a, const struct config_listen *b);
/*
 * The drain window a stop actually uses: drain_window, cut so that the peer
 * closed last still has a whole close_timeout to answer before the hard
 * close at shutdown_timeout (0, all at once, when close_timeout alone fills
 * shutdown_timeout).
 */
uint64_t	 config_drain_window_ms(const struct config *cfg);
/* A duration as the config writes it: "25s", "1m", "500ms". Returns buf. */
const char	*config_fmt_duration(uint64_t ms, char *buf, size_t len);
/* A key's index in the origin[] arrays of struct config and config_route; -1: no such key. */
int		 config_key_index(const char *name);
/* "10.0.0.0/8", "::1", "fd00::/8" (no prefix: one host); -1 on error. */
int		 config_parse_cidr(const char *s, size_t len, struct config_cidr *out);
/* Whether the address (4 or 16 bytes, family AF_INET/AF_INET6) is in the list. */
bool		 config_cidr_match(const struct config_cidr *list, size_t n, int family,
		    const void *addr);

#endif
