/* A plugin built against a future ABI: the daemon must refuse it at load. */
#include <wsrouted/plugin.h>

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI + 41,
	.name = "wrong_abi",
};
