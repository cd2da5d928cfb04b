/*
 * handler.c — handler registry and per-route instances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "route.h"

static const struct wsr_handler *const builtin_handlers[] = {
	&handler_echo,
};

const struct wsr_handler *
handler_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(builtin_handlers) / sizeof(builtin_handlers[0]); i++)
		if (strcmp(builtin_handlers[i]->name, name) == 0)
			return builtin_handlers[i];
	return NULL;
}

void
handler_destroy_instance(struct route *r)
{
	if (r->handler != NULL && r->handler->destroy != NULL)
		r->handler->destroy(r->instance);
	r->instance = NULL;
	r->handler = NULL;
}

int
handler_bind_routes(struct route_table *t, char **cause)
{
	struct wsr_option		*opts = NULL;
	const struct config_route	*cr;
	struct route			*r;
	char				*why;
	size_t				 i, j;

	for (i = 0; i < t->nroutes; i++) {
		r = &t->routes[i];
		cr = r->conf;
		if ((r->handler = handler_find(cr->handler)) == NULL) {
			if (asprintf(cause, "%s:%d: handler: unknown handler '%s'",
			    cr->file, cr->line, cr->handler) == -1)
				*cause = NULL;
			goto fail;
		}
		if (r->handler->abi != WSR_PLUGIN_ABI) {
			if (asprintf(cause, "%s:%d: handler '%s' was built for ABI %d, "
			    "this daemon speaks %d", cr->file, cr->line,
			    cr->handler, r->handler->abi, WSR_PLUGIN_ABI) == -1)
				*cause = NULL;
			goto fail;
		}
		if (r->handler->create == NULL)
			continue;
		opts = calloc(cr->noptions + 1, sizeof(*opts));
		if (opts == NULL)
			goto oom;
		for (j = 0; j < cr->noptions; j++) {
			opts[j].key = cr->options[j].key;
			opts[j].value = cr->options[j].value;
		}
		why = NULL;
		r->instance = r->handler->create(opts, cr->noptions, &why);
		free(opts);
		opts = NULL;
		if (r->instance == NULL && why != NULL) {
			if (asprintf(cause, "%s:%d: handler '%s': %s", cr->file,
			    cr->line, cr->handler, why) == -1)
				*cause = NULL;
			free(why);
			goto fail;
		}
	}
	return 0;
oom:
	*cause = strdup("out of memory");
fail:
	while (i-- > 0)
		handler_destroy_instance(&t->routes[i]);
	for (i = 0; i < t->nroutes; i++)
		t->routes[i].handler = NULL;
	return -1;
}
