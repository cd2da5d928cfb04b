/*
 * handler.h — the registry of handler types (built-ins now; plugins later
 * resolve through the same lookup) and the binding of a route table's
 * routes to handler instances.
 */
#ifndef WSR_HANDLER_H
#define WSR_HANDLER_H

#include <wsrouted/plugin.h>

#include "config.h"

struct route_table;
struct route;

extern const struct wsr_handler handler_echo;

/* The built-in handler called name, or NULL. */
const struct wsr_handler *handler_find(const char *name);

/*
 * Binds every route of t to its handler and creates one instance per route.
 * On failure returns -1 with a malloc'd "FILE:LINE: message" in *cause and
 * leaves no instance behind.
 */
int	handler_bind_routes(struct route_table *t, char **cause);
/* route_table_unref's callback: destroys one route's instance. */
void	handler_destroy_instance(struct route *r);

#endif
