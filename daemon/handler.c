/*
 * handler.c — handler registry and per-route instances, and the lifetime of
 * per-loop instances (WSR_HANDLER_PER_LOOP with workers > 1): loop i's
 * instance is used only on loop i's thread, so its own references to the
 * table (loop_users[i], counted without atomics by that thread) decide when
 * it is destroyed, there, while its loop and timers still exist; the
 * table's shared refcount only frees memory and what no loop ever took.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "route.h"
#include "worker.h"

static const struct wsr_handler *const builtin_handlers[] = {
	&handler_echo,
	&handler_broadcast,
	&handler_backend,
	&handler_exec,
};

#define PLUGIN_PREFIX	"plugin:"

const struct wsr_handler *
handler_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(builtin_handlers) / sizeof(builtin_handlers[0]); i++)
		if (strcmp(builtin_handlers[i]->name, name) == 0)
			return builtin_handlers[i];
	return NULL;
}

/* Loop i's instance of r, once. */
static void
destroy_loop_instance(struct route *r, unsigned i)
{
	if (r->loops[i].destroyed)
		return;
	if (r->handler->destroy != NULL)
		r->handler->destroy(r->loops[i].instance);
	r->loops[i].instance = NULL;
	r->loops[i].destroyed = true;
}

/* Destroys the per-loop instances not destroyed yet, and frees r->loops. */
static void
destroy_loops(struct route *r, unsigned n)
{
	unsigned	i;

	for (i = 0; i < n; i++)
		destroy_loop_instance(r, i);
	free(r->loops);
	r->loops = NULL;
}

void
handler_destroy_instance(struct route *r)
{
	if (r->loops != NULL)
		destroy_loops(r, r->table->nloops);
	else if (r->handler != NULL && r->handler->destroy != NULL)
		r->handler->destroy(r->instance);
	r->instance = NULL;
	r->handler = NULL;
	/* After destroy: the plugin's code must outlive its last instance. */
	if (r->dl != NULL)
		dlclose(r->dl);
	r->dl = NULL;
}

/*
 * Loads plugin_dir/NAME.so and finds its `wsr_handler`. dlopen counts
 * references, so routes naming the same plugin share one copy; RTLD_NOW makes
 * a plugin calling a wsr_* function this daemon lacks fail here, at load,
 * with the symbol named, not later at the call. On failure returns NULL with
 * a malloc'd message holding dlerror()'s text in *why.
 */
static const struct wsr_handler *
plugin_load(struct route *r, const char *dir, const char *name, char **why)
{
	const struct wsr_handler	*h;
	char				 path[PATH_MAX];
	const char			*err;
	int				 n;

	n = snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		if (asprintf(why, "plugin path '%s/%s.so' is too long", dir, name) == -1)
			*why = NULL;
		return NULL;
	}
	dlerror();
	if ((r->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		err = dlerror();
		if (asprintf(why, "cannot load plugin: %s", err ? err : path) == -1)
			*why = NULL;
		return NULL;
	}
	dlerror();
	if ((h = dlsym(r->dl, "wsr_handler")) == NULL) {
		err = dlerror();
		if (asprintf(why, "%s is not a wsrouted plugin, it exports no "
		    "'wsr_handler': %s", path, err ? err : "symbol is NULL") == -1)
			*why = NULL;
		dlclose(r->dl);
		r->dl = NULL;
		return NULL;
	}
	return h;
}

void
handler_loop_take(struct route_table *t, unsigned idx)
{
	size_t	i;

	if (t->loop_users == NULL || idx >= t->nloops || t->loop_users[idx]++ > 0)
		return;
	for (i = 0; i < t->nroutes; i++)
		if (t->routes[i].loops != NULL)
			handler_arm_pending(&t->routes[i].loops[idx].pending);
}

void
handler_loop_release(struct route_table *t, unsigned idx)
{
	size_t	i;

	if (t->loop_users != NULL && idx < t->nloops && --t->loop_users[idx] == 0) {
		/* No connection of this loop uses t, and the loop moved on (or stops). */
		for (i = 0; i < t->nroutes; i++)
			if (t->routes[i].loops != NULL)
				destroy_loop_instance(&t->routes[i], idx);
	}
	route_table_unref(t, handler_destroy_instance);
}

/*
 * A create() message that begins with "KEY:" where KEY is one of the route's
 * options is about that option: the error then names the option's line.
 */
static int
cause_line(const struct config_route *cr, const char *why)
{
	size_t	i, n;

	for (i = 0; i < cr->noptions; i++) {
		n = strlen(cr->options[i].key);
		if (strncmp(why, cr->options[i].key, n) == 0 && why[n] == ':')
			return cr->options[i].line;
	}
	return cr->line;
}

int
handler_bind_routes(struct route_table *t, unsigned nloops, char **cause)
{
	struct wsr_option		*opts = NULL;
	const struct config_route	*cr;
	struct route			*r = NULL;
	char				*why;
	void				*inst;
	size_t				 i, j, nper = 0;
	unsigned			 k, flags, nconf;
	bool				 per_loop;

	t->nloops = nloops > 1 ? nloops : 1;
	if (nloops > 1 && (t->loop_users = calloc(nloops, sizeof(*t->loop_users))) == NULL) {
		*cause = strdup("out of memory");
		return -1;
	}
	for (i = 0; i < t->nroutes; i++) {
		r = &t->routes[i];
		cr = r->conf;
		if (strncmp(cr->handler, PLUGIN_PREFIX, strlen(PLUGIN_PREFIX)) == 0) {
			why = NULL;
			r->handler = plugin_load(r, t->cfg->plugin_dir != NULL ?
			    t->cfg->plugin_dir : PLUGINDIR,
			    cr->handler + strlen(PLUGIN_PREFIX), &why);
			if (r->handler == NULL) {
				if (why == NULL || asprintf(cause, "%s:%d: handler '%s': %s",
				    t->cfg->file, cr->line, cr->handler, why) == -1)
					*cause = NULL;
				free(why);
				goto fail;
			}
		} else if ((r->handler = handler_find(cr->handler)) == NULL) {
			if (asprintf(cause, "%s:%d: handler: unknown handler '%s'",
			    cr->file, cr->line, cr->handler) == -1)
				*cause = NULL;
			goto fail;
		}
		if (r->handler->abi != 1 && r->handler->abi != WSR_PLUGIN_ABI) {
			if (asprintf(cause, "%s:%d: handler '%s' was built for ABI %d, "
			    "this daemon speaks 1 and %d", cr->file, cr->line,
			    cr->handler, r->handler->abi, WSR_PLUGIN_ABI) == -1)
				*cause = NULL;
			goto fail;
		}
		/* ABI 1's struct ends before flags: reading it would overrun. */
		flags = r->handler->abi >= 2 ? r->handler->flags : 0;
		/*
		 * Built-ins are written for every loop (one shared instance);
		 * a plugin is promised one loop thread unless it opted out.
		 */
		if (nloops > 1 && r->dl != NULL && !(flags & WSR_HANDLER_PER_LOOP)) {
			nconf = workers_for(t->cfg->workers);
			if (asprintf(cause, "%s:%d: [route %s]: handler '%s' needs "
			    "workers = 1 (it does not declare WSR_HANDLER_PER_LOOP), "
			    "but %u workers %s", cr->file, cr->line, cr->path,
			    cr->handler, nloops, nconf == nloops ? "are configured" :
			    "run until a restart") == -1)
				*cause = NULL;
			goto fail;
		}
		per_loop = nloops > 1 && (flags & WSR_HANDLER_PER_LOOP) &&
		    r->handler->create != NULL;
		if (r->handler->create == NULL) {
			if (cr->noptions > 0) {
				if (asprintf(cause, "%s:%d: handler '%s' takes no options, "
				    "got '%s'", t->cfg->file, cr->options[0].line,
				    cr->handler, cr->options[0].key) == -1)
					*cause = NULL;
				goto fail;
			}
			continue;
		}
		opts = calloc(cr->noptions + 1, sizeof(*opts));
		if (opts == NULL)
			goto oom;
		for (j = 0; j < cr->noptions; j++) {
			opts[j].key = cr->options[j].key;
			opts[j].value = cr->options[j].value;
		}
		if (per_loop) {
			if ((r->loops = calloc(nloops, sizeof(*r->loops))) == NULL)
				goto oom;
			nper++;
		}
		why = NULL;
		for (k = 0; k < (per_loop ? nloops : 1); k++) {
			/* Timers started now wait for loop k to take the instance. */
			if (per_loop)
				handler_set_binding(&r->loops[k].pending);
			inst = r->handler->create(opts, cr->noptions, &why);
			handler_set_binding(NULL);
			if (inst == NULL && why != NULL)
				break;
			if (per_loop)
				r->loops[k].instance = inst;
			else
				r->instance = inst;
		}
		free(opts);
		opts = NULL;
		if (why != NULL) {
			if (asprintf(cause, "%s:%d: handler '%s': %s", cr->file,
			    cause_line(cr, why), cr->handler, why) == -1)
				*cause = NULL;
			free(why);
			/* All or nothing: the instances made for loops before k go too. */
			if (r->loops != NULL)
				destroy_loops(r, k);
			goto fail;
		}
	}
	/* Only per-loop instances need the counts: the rest pay nothing for them. */
	if (nper == 0) {
		free(t->loop_users);
		t->loop_users = NULL;
	}
	return 0;
oom:
	free(opts);	/* r->loops is still NULL: no instance was made */
	*cause = strdup("out of memory");
fail:
	/* The failing route has no instance, maybe a plugin to unload. */
	r = &t->routes[i];
	r->handler = NULL;
	r->instance = NULL;
	handler_destroy_instance(r);
	while (i-- > 0)
		handler_destroy_instance(&t->routes[i]);
	for (i = 0; i < t->nroutes; i++)
		t->routes[i].handler = NULL;
	free(t->loop_users);
	t->loop_users = NULL;
	return -1;
}
