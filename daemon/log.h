/*
 * log.h — leveled logging to stderr, one line per event with key=value
 * fields. Under systemd (JOURNAL_STREAM set) each line starts with a
 * journald priority prefix ("<6>") instead of a timestamp.
 */
#ifndef WSR_LOG_H
#define WSR_LOG_H

#include "config.h"

void	log_init(enum log_level level);
void	log_set_level(enum log_level level);
int	log_enabled(enum log_level level);
void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * Copies s (len bytes, possibly not NUL-terminated, possibly hostile) into
 * out as printable ASCII, escaping everything else as \xNN; returns out.
 */
const char *log_escape(char *out, size_t cap, const char *s, size_t len);

#define log_error(...)	log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	do { if (log_enabled(LOG_LVL_INFO)) log_msg(LOG_LVL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...)	do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
