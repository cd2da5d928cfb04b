/*
 * systemd.c — see systemd.h.
 */
#include "build-config.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "systemd.h"

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
	char	buf[256];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", buf);
#else
	(void)fmt;
#endif
}
