/*
 * systemd.c — see systemd.h.
 */
#include "build-config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "systemd.h"

/* The passed sockets, kept for the life of the process (reloads reuse them). */
static int	  npassed;
static int	 *passed_fds;
static char	**passed_names;

void
systemd_notify_ready(unsigned long nroutes)
{
#ifdef HAVE_SYSTEMD
	sd_notifyf(0, "READY=1\nSTATUS=serving %lu route(s)", nroutes);
#else
	(void)nroutes;
#endif
}

void
systemd_notify_reloading(void)
{
#ifdef HAVE_SYSTEMD
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
#endif
}

void
systemd_notify_stopping(void)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}

void
systemd_notify_status(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
	char	buf[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
#else
	(void)fmt;
#endif
}

void
systemd_notify_watchdog(void)
{
#ifdef HAVE_SYSTEMD
	sd_notify(0, "WATCHDOG=1");
#endif
}

uint64_t
systemd_watchdog_interval_usec(void)
{
#ifdef HAVE_SYSTEMD
	uint64_t	usec = 0;

	/* Keeps WATCHDOG_USEC/PID in the environment: harmless, and re-readable. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2)
		return usec / 2;
#endif
	return 0;
}

int
systemd_take_sockets(char **cause)
{
#ifdef HAVE_SYSTEMD
	char	**names = NULL;
	int	  n, i, fd, fl;

	*cause = NULL;
	if ((n = sd_listen_fds_with_names(1, &names)) < 0) {
		if (asprintf(cause, "socket activation: %s", strerror(-n)) == -1)
			*cause = NULL;
		return -1;
	}
	if (n == 0) {
		free(names);
		return 0;
	}
	if ((passed_fds = calloc((size_t)n, sizeof(*passed_fds))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			if (asprintf(cause, "socket activation: passed fd %d (%s) is "
			    "not a listening stream socket (Accept=no, ListenStream= "
			    "are required)", fd, names ? names[i] : "?") == -1)
				*cause = NULL;
			goto fail;
		}
		/* libevent wants non-blocking accept()s. */
		if ((fl = fcntl(fd, F_GETFL)) == -1 ||
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
			if (asprintf(cause, "socket activation: fd %d: %s", fd,
			    strerror(errno)) == -1)
				*cause = NULL;
			goto fail;
		}
		passed_fds[i] = fd;
	}
	passed_names = names;
	npassed = n;
	return n;
nomem:
	*cause = strdup("out of memory");
fail:
	free(passed_fds);
	passed_fds = NULL;
	if (names != NULL) {
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return -1;
#else
	*cause = NULL;
	return 0;
#endif
}

int
systemd_nsockets(void)
{
	return npassed;
}

int
systemd_socket(int i, const char **name)
{
	if (i < 0 || i >= npassed)
		return -1;
	*name = passed_names != NULL && passed_names[i] != NULL ? passed_names[i] : "unknown";
	return passed_fds[i];
}
