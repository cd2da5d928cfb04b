/*
 * accesslog.h — the access log: one line per connection when it ends,
 * `key=value` (log_format = kv) or one JSON object (json), written with a
 * single write(2) to stderr or to a file (access_log =).
 *
 * The line is formatted by accesslog_format (no I/O; unit-tested). Peer
 * strings (path, query) are quoted and escaped (escape.h) and cut at
 * ACCESSLOG_FIELD_MAX bytes of output each.
 *
 * The destination is swapped without a window in which a writer on another
 * thread could hit a closed or reused descriptor: the log always writes to
 * one descriptor number, and a reopen dup3()s the new file (or stderr) onto
 * it. So SIGHUP reopens the file in place (for logrotate) and any thread
 * may write.
 */
#ifndef WSR_ACCESSLOG_H
#define WSR_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define ACCESSLOG_FIELD_MAX	1024
#define ACCESSLOG_LINE_MAX	(6 * ACCESSLOG_FIELD_MAX + 1024)

struct access_rec {
	double		 time;		/* when it ended, seconds since the epoch */
	uint64_t	 conn;
	const char	*client;	/* resolved behind trusted proxies */
	int		 status;	/* HTTP answer: 101, 4xx, 5xx; 0: none */
	const char	*route;		/* NULL: not routed */
	const char	*path;		/* the request's path; NULL: none parsed */
	size_t		 path_len;
	const char	*query;		/* NULL: none */
	const char	*subprotocol;	/* NULL: none */
	uint64_t	 duration_ms;	/* from accept */
	uint64_t	 bytes_in;
	uint64_t	 bytes_out;
	uint64_t	 msgs_in;
	uint64_t	 msgs_out;
	int		 close_code;	/* 0: never upgraded */
	const char	*closed_by;	/* server, client, abort, timeout */
	const char	*reason;	/* ours, short */
};

/* The line (with its '\n') into out; returns its length (< cap). */
size_t	accesslog_format(char *out, size_t cap, const struct access_rec *r,
	    enum log_format fmt);

/*
 * Two steps, so that a reload that fails later changes nothing:
 * accesslog_open opens spec ("stderr", "off" or a path: O_APPEND|O_CREAT,
 * mode 0640) into *fd (-1 for stderr and off), or returns -1 with a
 * malloc'd *cause; accesslog_commit makes it the log (taking fd);
 * accesslog_abort closes it.
 */
int	accesslog_open(const char *spec, int *fd, char **cause);
void	accesslog_commit(const char *spec, int fd, enum log_format fmt);
void	accesslog_abort(int fd);

bool	accesslog_enabled(void);
/* Formats r and writes the line (a failed write loses it: the event log has the close). */
void	accesslog_write(const struct access_rec *r);

#endif
