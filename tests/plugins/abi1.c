/*
 * abi1.c — a plugin as built against the ABI-1 header, which this daemon
 * still loads: its struct wsr_handler ends with on_drain, without the
 * `flags` member ABI 2 appended, so the daemon must not read past it (an
 * ASan build of this object puts a redzone right after the struct). Declared
 * here with the ABI-1 layout rather than by compiling against an old copy of
 * plugin.h. It echoes text with the prefix "abi1:".
 */
#include <stdio.h>
#include <string.h>

#include <wsrouted/plugin.h>

/* struct wsr_handler of ABI 1, member for member. */
struct wsr_handler_abi1 {
	int		 abi;
	const char	*name;
	void		*(*create)(const struct wsr_option *, size_t, char **);
	void		 (*destroy)(void *);
	int		 (*on_open)(void *, struct wsr_conn *);
	void		 (*on_message)(void *, struct wsr_conn *, int, const void *, size_t);
	void		 (*on_close)(void *, struct wsr_conn *, int);
	void		 (*on_drain)(void *, struct wsr_conn *);
};

static void
on_message(void *self, struct wsr_conn *c, int op, const void *data, size_t len)
{
	char	buf[256];
	int	n;

	(void)self;
	if (op != WSR_TEXT || len > 200)
		return;
	n = snprintf(buf, sizeof(buf), "abi1:%.*s", (int)len, (const char *)data);
	wsr_send(c, WSR_TEXT, buf, (size_t)n);
}

WSR_PLUGIN const struct wsr_handler_abi1 wsr_handler = {
	.abi = 1,
	.name = "abi1",
	.on_message = on_message,
};
