/*
 * lint.h — PURE. Warnings about a configuration that is valid but will
 * most likely not do what its author wants: pings too slow for the proxy in
 * front (proxy_idle_timeout), a drain window that does not fit in
 * shutdown_timeout. `wsrouted -t` prints them, the daemon logs them at start
 * and on every reload; they never stop a config from loading.
 */
#ifndef WSR_LINT_H
#define WSR_LINT_H

#include "config.h"

/*
 * Appends one "FILE:LINE: message" (or "FILE: message" for a default) per
 * finding to out. Returns how many were found, -1 when out of memory.
 */
int	config_lint(const struct config *cfg, struct config_errors *out);

#endif
