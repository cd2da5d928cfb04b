/*
 * systemd.h — the little we tell systemd (Type=notify). Built without
 * libsystemd (./configure --without-systemd) these are no-ops.
 */
#ifndef WSR_SYSTEMD_H
#define WSR_SYSTEMD_H

void	systemd_notify_ready(unsigned long nroutes);
void	systemd_notify_reloading(void);
void	systemd_notify_stopping(void);
void	systemd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
