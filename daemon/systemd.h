/*
 * systemd.h — the little we tell systemd (Type=notify) and the sockets it
 * passes us (socket activation). Built without libsystemd
 * (./configure --without-systemd) the notifications are no-ops and no
 * socket is ever passed.
 */
#ifndef WSR_SYSTEMD_H
#define WSR_SYSTEMD_H

#include <stdint.h>

void	systemd_notify_ready(unsigned long nroutes);
void	systemd_notify_reloading(void);
void	systemd_notify_stopping(void);
void	systemd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	systemd_notify_watchdog(void);
/* Microseconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), 0: none. */
uint64_t systemd_watchdog_interval_usec(void);

/*
 * Takes the sockets passed by the service manager (LISTEN_FDS, once: the
 * variables are removed from the environment so that child processes do
 * not see them). Returns how many, or -1 with a malloc'd *cause when one of
 * them is not a listening stream socket.
 */
int	systemd_take_sockets(char **cause);
/* Number of passed sockets; fd and name (never NULL, "unknown" when unnamed) of the i-th. */
int	systemd_nsockets(void);
int	systemd_socket(int i, const char **name);

#endif
