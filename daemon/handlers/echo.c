/*
 * echo.c — the built-in echo handler: every message goes back whole, with
 * its opcode. Written only against plugin.h, like any plugin. The payload is
 * handed straight back from the read buffer: no copy, no allocation.
 */
#include <wsrouted/plugin.h>

#include "handler.h"

static void
echo_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	(void)self;
	wsr_send(c, opcode, data, len);
}

const struct wsr_handler handler_echo = {
	.abi = WSR_PLUGIN_ABI,
	.name = "echo",
	.on_message = echo_on_message,
};
