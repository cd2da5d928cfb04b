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

/* Limits and timers that a [route] may override; durations in milliseconds. */
struct limits {
	uint64_t	ping_period_ms;		/* 0 = no pings */
	uint64_t	timeout_ms;		/* 0 = no idle timeout */
	uint64_t	close_timeout_ms;
	uint64_t	max_frame_size;		/* bytes */
	uint64_t	max_message_size;	/* bytes */
	uint64_t	max_output_buffer;	/* bytes queued before we stop reading */
	uint64_t	send_buffer;		/* SO_SNDBUF at upgrade; 0: kernel autotuning */
};

enum listen_kind { LISTEN_INET, LISTEN_UNIX };

struct config_listen {
	char			*spec;		/* as written, for logs */
	enum listen_kind	 kind;
	struct sockaddr_storage	 addr;		/* INET: sockaddr_in/in6; UNIX: sockaddr_un */
	socklen_t		 addrlen;
	int			 line;
};

struct config_option {		/* a key the daemon does not know, for a plugin */
	char	*key;
	char	*value;
	int	 line;
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
	struct config_option	*options;	/* unknown keys (handlers that take options) */
	size_t			 noptions;
	int			 line;		/* of the [route …] header */
};

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

struct config {
	char			*file;
	struct config_listen	*listens;
	size_t			 nlistens;
	uint64_t		 max_connections;
	uint64_t		 handshake_timeout_ms;
	uint64_t		 shutdown_timeout_ms;
	enum log_level		 log_level;
	char			*plugin_dir;	/* absolute; NULL: the built-in default */
	struct limits		 limits;	/* [server] defaults */
	struct config_route	*routes;
	size_t			 nroutes;
};

/* One error: "FILE:LINE: message". */
struct config_errors {
	char	**msgs;
	size_t	  n;
};

/* Defaults, documented in conf/wsrouted.ini. */
#define CONFIG_DEFAULT_MAX_CONNECTIONS		10000
#define CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS	10000
#define CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS	10000
#define CONFIG_DEFAULT_PING_PERIOD_MS		25000
#define CONFIG_DEFAULT_TIMEOUT_MS		60000
#define CONFIG_DEFAULT_CLOSE_TIMEOUT_MS		5000
#define CONFIG_DEFAULT_MAX_FRAME_SIZE		(1u << 20)
#define CONFIG_DEFAULT_MAX_MESSAGE_SIZE		(16u << 20)
#define CONFIG_DEFAULT_MAX_OUTPUT_BUFFER	(1u << 20)

/*
 * Reads and validates a config file. Returns the config, or NULL with every
 * error found appended to errs (parsing goes on after an error so that
 * `wsrouted -t` reports all of them at once), in line order. errs may be
 * NULL.
 */
struct config	*config_load(const char *path, struct config_errors *errs);

/* Same, from text in memory; name is used as FILE in messages. */
struct config	*config_parse_string(const char *text, size_t len, const char *name,
		    struct config_errors *errs);

void		 config_free(struct config *cfg);
void		 config_errors_clear(struct config_errors *errs);

/* "1MiB", "512", "64KiB" (B KiB MiB GiB, also K M G); -1 on error. */
int		 config_parse_size(const char *s, uint64_t *out);
/* "15s", "500ms", "2m", "1h", "0"; a bare number is seconds; -1 on error. */
int		 config_parse_duration_ms(const char *s, uint64_t *out);
/*
 * "127.0.0.1:8080", "[::1]:8080", "*:8080", "unix:/run/x.sock"; -1 on error.
 * Fills kind, addr and addrlen; spec is left NULL and line 0 (the loader
 * sets them).
 */
int		 config_parse_listen(const char *s, struct config_listen *out);

#endif
