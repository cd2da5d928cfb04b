/*
 * privdrop.c — see privdrop.h.
 */
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"

static int
numeric_id(const char *s, unsigned long *out)
{
	char	*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out >= (unsigned long)INT_MAX)
		return -1;
	return 0;
}

static int
fail(char **cause, const char *fmt, const char *arg)
{
	if (asprintf(cause, fmt, arg) == -1)
		*cause = NULL;
	return -1;
}

int
privdrop_prepare(const struct config *cfg, struct privdrop *pd, char **cause)
{
	struct passwd	*pw;
	struct group	*gr;
	unsigned long	 id;
	int		 have_gid = 0;

	memset(pd, 0, sizeof(*pd));
	*cause = NULL;
	if (cfg->user == NULL) {
		if (cfg->group != NULL)
			return fail(cause, "%s: group is set but user is not (set "
			    "both in [server])", cfg->file);
		if (geteuid() == 0 && !cfg->allow_root)
			return fail(cause, "%s: refusing to run as root: set 'user =' "
			    "(and 'group =') in [server] to drop privileges after "
			    "binding, run under a service manager as an unprivileged "
			    "user, or set 'allow_root = yes'", cfg->file);
		return 0;
	}
	if ((pw = getpwnam(cfg->user)) != NULL) {
		pd->uid = pw->pw_uid;
		pd->gid = pw->pw_gid;
		have_gid = 1;
	} else if (numeric_id(cfg->user, &id) == 0) {
		pd->uid = (uid_t)id;
	} else
		return fail(cause, "user: no such user '%s'", cfg->user);
	if (cfg->group != NULL) {
		if ((gr = getgrnam(cfg->group)) != NULL)
			pd->gid = gr->gr_gid;
		else if (numeric_id(cfg->group, &id) == 0)
			pd->gid = (gid_t)id;
		else
			return fail(cause, "group: no such group '%s'", cfg->group);
		have_gid = 1;
	}
	if (!have_gid)
		return fail(cause, "user: '%s' is a bare uid: set 'group =' too", cfg->user);
	if (pd->uid == 0 && !cfg->allow_root)
		return fail(cause, "user: '%s' is root; set 'allow_root = yes' to "
		    "mean it", cfg->user);
	if (geteuid() != 0) {
		if (geteuid() == pd->uid && getegid() == pd->gid)
			return 0;	/* already that user: nothing to drop */
		return fail(cause, "user: switching to '%s' needs to be started as "
		    "root", cfg->user);
	}
	pd->active = 1;
	return 0;
}

int
privdrop_apply(const struct privdrop *pd, char **cause)
{
	*cause = NULL;
	if (!pd->active)
		return 0;
	if (setgroups(1, &pd->gid) == -1)
		return fail(cause, "privilege drop: setgroups: %s", strerror(errno));
	if (setresgid(pd->gid, pd->gid, pd->gid) == -1)
		return fail(cause, "privilege drop: setresgid: %s", strerror(errno));
	if (setresuid(pd->uid, pd->uid, pd->uid) == -1)
		return fail(cause, "privilege drop: setresuid: %s", strerror(errno));
	if (pd->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		return fail(cause, "privilege drop: %s", "root could be regained");
	return 0;
}
