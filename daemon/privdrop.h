/*
 * privdrop.h — [server] user / group / allow_root: started as root, the
 * daemon binds its sockets and then becomes user:group for good; without
 * user it refuses to run as root unless allow_root = yes.
 */
#ifndef WSR_PRIVDROP_H
#define WSR_PRIVDROP_H

#include <sys/types.h>

#include "config.h"

struct privdrop {
	int	active;		/* 1: switch to uid/gid after binding */
	uid_t	uid;
	gid_t	gid;
};

/*
 * Before binding: resolves user/group and applies the root rule. Returns 0,
 * or -1 with a malloc'd *cause.
 */
int	privdrop_prepare(const struct config *cfg, struct privdrop *pd, char **cause);
/* After binding: setgroups, setgid, setuid, and checks root cannot come back. */
int	privdrop_apply(const struct privdrop *pd, char **cause);

#endif
