/*
 * accesslog.c — see accesslog.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "escape.h"

enum al_mode { AL_OFF, AL_STDERR, AL_FILE };

static int		al_fd = -1;	/* the one descriptor number writers use */
static int		al_mode = AL_OFF;	/* read by writers: atomics */
static int		al_format = LOG_FORMAT_KV;
static int		al_journal;	/* stderr goes to journald: "<6>" prefix */

/* Appends with snprintf semantics, never past cap - 1. */
static void
add(char *out, size_t cap, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add(char *out, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (*o + 1 >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *o, cap - *o, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*o += (size_t)n < cap - *o ? (size_t)n : cap - *o - 1;
}

/* key="escaped" (kv) or "key":"escaped" (json); NULL: key=- or "key":null. */
static void
add_str(char *out, size_t cap, size_t *o, enum log_format fmt, const char *key,
    const char *s, size_t len)
{
	char	esc[ACCESSLOG_FIELD_MAX];

	if (fmt == LOG_FORMAT_JSON) {
		if (s == NULL)
			add(out, cap, o, ",\"%s\":null", key);
		else {
			esc_json(esc, sizeof(esc), s, len, NULL);
			add(out, cap, o, ",\"%s\":\"%s\"", key, esc);
		}
	} else {
		if (s == NULL)
			add(out, cap, o, " %s=-", key);
		else {
			esc_kv(esc, sizeof(esc), s, len, NULL);
			add(out, cap, o, " %s=\"%s\"", key, esc);
		}
	}
}

static void
add_num(char *out, size_t cap, size_t *o, enum log_format fmt, const char *key,
    unsigned long long v, bool present)
{
	if (fmt == LOG_FORMAT_JSON)
		add(out, cap, o, present ? ",\"%s\":%llu" : ",\"%s\":null", key, v);
	else
		add(out, cap, o, present ? " %s=%llu" : " %s=-", key, v);
}

size_t
accesslog_format(char *out, size_t cap, const struct access_rec *r, enum log_format fmt)
{
	char		ts[40], day[32];
	struct tm	tm;
	time_t		sec = (time_t)r->time;
	size_t		o = 0;
	long		ms;

	if (cap < 2)
		return 0;
	ms = (long)((r->time - (double)sec) * 1000.0);
	if (ms < 0 || ms > 999)
		ms = 0;
	gmtime_r(&sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, sizeof(ts), "%s.%03ldZ", day, ms);
	if (fmt == LOG_FORMAT_JSON)
		add(out, cap - 1, &o, "{\"time\":\"%s\",\"conn\":%llu", ts,
		    (unsigned long long)r->conn);
	else
		add(out, cap - 1, &o, "time=%s conn=%llu", ts, (unsigned long long)r->conn);
	add_str(out, cap - 1, &o, fmt, "client", r->client, r->client ? strlen(r->client) : 0);
	add_num(out, cap - 1, &o, fmt, "status", (unsigned)r->status, r->status != 0);
	add_str(out, cap - 1, &o, fmt, "route", r->route, r->route ? strlen(r->route) : 0);
	add_str(out, cap - 1, &o, fmt, "path", r->path, r->path_len);
	add_str(out, cap - 1, &o, fmt, "query", r->query, r->query ? strlen(r->query) : 0);
	add_str(out, cap - 1, &o, fmt, "subprotocol", r->subprotocol,
	    r->subprotocol ? strlen(r->subprotocol) : 0);
	add_num(out, cap - 1, &o, fmt, "duration_ms", r->duration_ms, true);
	add_num(out, cap - 1, &o, fmt, "bytes_in", r->bytes_in, true);
	add_num(out, cap - 1, &o, fmt, "bytes_out", r->bytes_out, true);
	add_num(out, cap - 1, &o, fmt, "msgs_in", r->msgs_in, true);
	add_num(out, cap - 1, &o, fmt, "msgs_out", r->msgs_out, true);
	add_num(out, cap - 1, &o, fmt, "close_code", (unsigned)r->close_code, r->close_code != 0);
	add_str(out, cap - 1, &o, fmt, "closed_by", r->closed_by,
	    r->closed_by ? strlen(r->closed_by) : 0);
	add_str(out, cap - 1, &o, fmt, "reason", r->reason, r->reason ? strlen(r->reason) : 0);
	if (fmt == LOG_FORMAT_JSON)
		add(out, cap - 1, &o, "}");
	/* cap - 1 above kept room for the newline (a cut line still ends). */
	out[o++] = '\n';
	out[o] = '\0';
	return o;
}

int
accesslog_open(const char *spec, int *fd, char **cause)
{
	*fd = -1;
	if (spec == NULL || strcmp(spec, "off") == 0 || strcmp(spec, "stderr") == 0)
		return 0;
	if ((*fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640)) == -1) {
		if (asprintf(cause, "access_log: cannot open '%s': %s", spec,
		    strerror(errno)) == -1)
			*cause = NULL;
		return -1;
	}
	return 0;
}

void
accesslog_commit(const char *spec, int fd, enum log_format fmt)
{
	int	mode, src;

	if (spec == NULL || strcmp(spec, "off") == 0)
		mode = AL_OFF;
	else if (strcmp(spec, "stderr") == 0)
		mode = AL_STDERR;
	else
		mode = AL_FILE;
	src = mode == AL_FILE ? fd : STDERR_FILENO;
	if (mode != AL_OFF) {
		if (al_fd == -1)
			al_fd = fcntl(src, F_DUPFD_CLOEXEC, 3);
		else if (dup3(src, al_fd, O_CLOEXEC) == -1)
			mode = AL_OFF;		/* not expected: EBADF/EINVAL only */
	}
	if (fd != -1)
		close(fd);
	if (al_fd == -1)
		mode = AL_OFF;
	al_journal = mode == AL_STDERR && getenv("JOURNAL_STREAM") != NULL;
	__atomic_store_n(&al_format, (int)fmt, __ATOMIC_RELAXED);
	__atomic_store_n(&al_mode, mode, __ATOMIC_RELEASE);
}

void
accesslog_abort(int fd)
{
	if (fd != -1)
		close(fd);
}

bool
accesslog_enabled(void)
{
	return __atomic_load_n(&al_mode, __ATOMIC_RELAXED) != AL_OFF;
}

void
accesslog_write(const struct access_rec *r)
{
	char	line[ACCESSLOG_LINE_MAX + 4];
	size_t	n, off = 0;
	ssize_t	w;
	int	mode = __atomic_load_n(&al_mode, __ATOMIC_ACQUIRE);
	int	i;

	if (mode == AL_OFF)
		return;
	if (mode == AL_STDERR && al_journal) {
		memcpy(line, "<6>", 3);		/* journald priority: info */
		off = 3;
	}
	n = off + accesslog_format(line + off, sizeof(line) - off, r,
	    (enum log_format)__atomic_load_n(&al_format, __ATOMIC_RELAXED));
	/* One write: O_APPEND keeps concurrent lines whole. Bounded retries. */
	for (i = 0, off = 0; off < n && i < 8; i++) {
		if ((w = write(al_fd, line + off, n - off)) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += (size_t)w;
	}
}
