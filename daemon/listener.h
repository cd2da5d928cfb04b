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
/* Closes every listening socket of the list and frees it. */
void		 listeners_close(struct listener *list);

#endif
