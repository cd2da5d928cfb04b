/* A shared object that is not a plugin: it exports no wsr_handler. */
#include <wsrouted/plugin.h>

WSR_API int not_a_plugin(void);

int
not_a_plugin(void)
{
	return 42;
}
