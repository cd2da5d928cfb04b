/*
 * listener.h — listening sockets: bound from the config's listen lines,
 * accepted through libevent's evconnlistener, with a back-off when the
 * process runs out of file descriptors.
 */
#ifndef WSR_LISTENER_H
#define WSR_LISTENER_H

#include "config.h"

struct loop;
struct listener;

/*
 * Binds and listens on every listen line of cfg. Returns the list, or NULL
 * with a malloc'd message in *cause (nothing is left open then).
 */
struct listener	*listeners_open(struct loop *l, const struct config *cfg, char **cause);
/*
 * SIGHUP: makes *list match cfg's listen lines, matched by the line as
 * written: unchanged lines keep their socket (and its queue), new lines are
 * bound, removed lines closed. On error (e.g. a new address in use) nothing
 * changes and *cause says why.
 */
int		 listeners_reload(struct loop *l, struct listener **list,
		    const struct config *cfg, char **cause);
/*
 * Binds and listens on one INET or UNIX address (non-blocking, close on
 * exec; a stale unix socket file is removed first). Returns the socket, or
 * -1 with a malloc'd *cause naming the line. Also used for [admin].
 */
int		 listener_bind(const struct config_listen *cl, char **cause);
size_t		 listeners_count(const struct listener *list);
/*
 * Closes every listening socket of the list and frees it. Sockets passed by
 * the service manager are only unregistered: systemd owns them.
 */
void		 listeners_close(struct listener *list);

#endif
