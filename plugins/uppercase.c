/*
 * uppercase.c — the smallest useful plugin: text messages come back with
 * their ASCII letters in upper (or lower) case, binary messages unchanged.
 *
 *   [route /shout]
 *   handler = plugin:uppercase
 *   mode = upper            ; or lower
 *
 * A model for plugin authors: one exported `wsr_handler`, options checked in
 * create() (an unknown key or a bad value is a config error), per-route
 * state from create() handed back as `self`.
 *
 * WSR_HANDLER_PER_LOOP: an instance holds only its options, read-only
 * after create(), and nothing is static, so with `workers` > 1 each loop
 * gets its own instance and the route runs on every core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsrouted/plugin.h>

struct uppercase {
	int	lower;		/* 1: to lower case instead */
};

static void *
uc_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct uppercase	*u;
	size_t			 i;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	for (i = 0; i < nopts; i++) {
		if (strcmp(opts[i].key, "mode") != 0) {
			/* "KEY: ..." makes the daemon point at the option's line. */
			if (asprintf(cause, "%s: unknown option, the uppercase "
			    "plugin takes only 'mode'", opts[i].key) == -1)
				*cause = NULL;
			free(u);
			return NULL;
		}
		if (strcmp(opts[i].value, "upper") == 0)
			u->lower = 0;
		else if (strcmp(opts[i].value, "lower") == 0)
			u->lower = 1;
		else {
			if (asprintf(cause, "mode: expected upper or lower, got '%s'",
			    opts[i].value) == -1)
				*cause = NULL;
			free(u);
			return NULL;
		}
	}
	return u;
}

static void
uc_destroy(void *self)
{
	free(self);
}

static void
uc_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	const struct uppercase	*u = self;
	const unsigned char	*in = data;
	unsigned char		 buf[4096], *out;
	size_t			 i;

	if (opcode != WSR_TEXT || len == 0) {
		wsr_send(c, opcode, data, len);
		return;
	}
	/* data is read-only and valid only during the call: convert a copy. */
	out = len <= sizeof(buf) ? buf : malloc(len);
	if (out == NULL) {
		wsr_close(c, 1011, "out of memory");
		return;
	}
	for (i = 0; i < len; i++) {
		if (u->lower)
			out[i] = in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i];
		else
			out[i] = in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i];
	}
	/* wsr_send copies what it cannot hand to the kernel at once. */
	wsr_send(c, WSR_TEXT, out, len);
	if (out != buf)
		free(out);
}

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI,
	.name = "uppercase",
	.create = uc_create,
	.destroy = uc_destroy,
	.on_message = uc_on_message,
	.flags = WSR_HANDLER_PER_LOOP,
};
