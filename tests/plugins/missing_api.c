/*
 * A plugin calling a wsr_* function this daemon does not have: RTLD_NOW
 * must make that a load error naming the symbol.
 */
#include <wsrouted/plugin.h>

WSR_API void wsr_no_such_function(struct wsr_conn *);

static void
on_message(void *self, struct wsr_conn *c, int op, const void *data, size_t len)
{
	(void)self; (void)op; (void)data; (void)len;
	wsr_no_such_function(c);
}

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI,
	.name = "missing_api",
	.on_message = on_message,
};
