/*
 * log.c — see log.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level	log_level = LOG_LVL_INFO;
static int		log_journal;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
/* syslog priorities: err, warning, info, debug */
static const int level_prio[] = { 3, 4, 6, 7 };

void
log_init(enum log_level level)
{
	log_level = level;
	/* systemd sets JOURNAL_STREAM when stderr is connected to journald. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_set_level(enum log_level level)
{
	/* Relaxed atomics: SIGHUP sets it while worker threads log. */
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int
log_enabled(enum log_level level)
{
	return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		 line[2048], ts[32];
	struct timespec	 now;
	struct tm	 tm;
	va_list		 ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", level_prio[level], line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000,
	    level_names[level], line);
}

const char *
log_escape(char *out, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		  o = 0, i;
	unsigned char	  ch;

	if (cap == 0)
		return out;
	for (i = 0; i < len; i++) {
		ch = (unsigned char)s[i];
		if (ch > 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
			if (o + 1 >= cap)
				break;
			out[o++] = ch;
		} else {
			if (o + 4 >= cap)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}
