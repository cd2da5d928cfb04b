/*
 * listener.c — see listener.h.
 */
#include "build-config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "systemd.h"

#define ACCEPT_RETRY_MS	100

struct listener {
	struct listener		*next;
	struct loop		*loop;
	struct evconnlistener	*lev;
	struct event		*retry;		/* re-enables accept after EMFILE */
	char			*spec;
	/* What socket this is, to match a reloaded config's line (same_socket). */
	enum listen_kind	 kind;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			 passed_fd;	/* socket activation: not ours to close; else -1 */
	unsigned		 opts;		/* CONN_TLS, CONN_PROXY, CONN_NODELAY */
	char			*unix_path;	/* a socket file we bound: removed at close */
	dev_t			 unix_dev;	/* ... if it is still that file */
	ino_t			 unix_ino;
};

static unsigned
listen_opts(const struct config_listen *cl)
{
	return (cl->tls ? CONN_TLS : 0) | (cl->proxy_protocol ? CONN_PROXY : 0);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener	*ls = arg;

	(void)lev;
	/* workers > 1: the fd goes to a worker thread (worker.c). */
	if (ls->loop->dispatch != NULL)
		ls->loop->dispatch(ls->loop, fd, sa, salen, ls->opts);
	else
		conn_accept_opts(ls->loop, fd, sa, salen, ls->opts);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener	*ls = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(ls->lev);
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener	*ls = arg;
	struct timeval	 tv = { 0, ACCEPT_RETRY_MS * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	/*
	 * Out of descriptors: the pending connection stays queued and the
	 * socket stays readable, so accepting again at once would spin.
	 * Pause this listener briefly; existing connections carry on.
	 */
	log_warn("event=accept_failed listen=%s error=\"%s\" retry_ms=%d",
	    ls->spec, strerror(err), ACCEPT_RETRY_MS);
	evconnlistener_disable(lev);
	evtimer_add(ls->retry, &tv);
}

/* A leftover socket file from a previous run blocks bind(): remove it if dead. */
static void
unlink_stale_unix(const struct sockaddr_un *sun)
{
	struct stat	st;
	int		fd;

	if (stat(sun->sun_path, &st) == -1 || !S_ISSOCK(st.st_mode))
		return;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == -1 &&
	    errno == ECONNREFUSED)
		unlink(sun->sun_path);
	close(fd);
}

int
listener_bind(const struct config_listen *cl, char **cause)
{
	const struct sockaddr_in6	*sin6;
	int				 fd, one = 1, zero = 0;
	int				 family = cl->addr.ss_family;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (family != AF_UNIX &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (family == AF_INET6) {
		/* "*:port" is [::]: serve IPv4 on it too. */
		sin6 = (const struct sockaddr_in6 *)&cl->addr;
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == -1)
			goto fail;
	}
	if (family == AF_UNIX)
		unlink_stale_unix((const struct sockaddr_un *)&cl->addr);
	if (bind(fd, (const struct sockaddr *)&cl->addr, cl->addrlen) == -1)
		goto fail;
	if (listen(fd, SOMAXCONN) == -1)
		goto fail;
	return fd;
fail:
	if (asprintf(cause, "listen %s: %s", cl->spec, strerror(errno)) == -1)
		*cause = NULL;
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * A unix socket file we bound is ours to remove when its listener closes
 * (stop, or a reload that drops the line); a stale file would otherwise
 * stay until the next bind. Its device and inode are kept so that a file
 * someone else bound since (a new instance starting) is left alone. Not for
 * sockets systemd passed (its .socket unit owns them), nor abstract ones.
 */
static void
remember_unix_path(struct listener *ls, const struct config_listen *cl)
{
	const struct sockaddr_un	*sun = (const struct sockaddr_un *)&cl->addr;
	struct stat			 st;

	if (cl->addr.ss_family != AF_UNIX || sun->sun_path[0] == '\0' ||
	    stat(sun->sun_path, &st) == -1 || !S_ISSOCK(st.st_mode))
		return;
	if ((ls->unix_path = strdup(sun->sun_path)) == NULL)
		return;		/* only the clean-up is lost */
	ls->unix_dev = st.st_dev;
	ls->unix_ino = st.st_ino;
}

static void
remove_unix_path(const struct listener *ls)
{
	struct stat	st;

	if (ls->unix_path == NULL || stat(ls->unix_path, &st) == -1 ||
	    st.st_dev != ls->unix_dev || st.st_ino != ls->unix_ino)
		return;
	/* After a privilege drop the directory may not let us: the next bind cleans up. */
	if (unlink(ls->unix_path) == -1)
		log_info("event=unix_socket_kept path=%s error=\"%s\"", ls->unix_path,
		    strerror(errno));
}

/* Wraps a listening fd in a listener and puts it at the head of *list. */
static int
add_listener(struct loop *l, struct listener **list, int fd,
    const struct config_listen *cl, int passed, char **cause)
{
	struct listener	*ls;
	unsigned	 flags = LEV_OPT_CLOSE_ON_EXEC;

	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->spec = strdup(cl->spec)) == NULL) {
		free(ls);
		if (!passed)
			close(fd);
		*cause = strdup("out of memory");
		return -1;
	}
	ls->loop = l;
	ls->kind = cl->kind;
	ls->addr = cl->addr;
	ls->addrlen = cl->addrlen;
	ls->passed_fd = passed ? fd : -1;
	if (!passed)
		remember_unix_path(ls, cl);
	ls->opts = listen_opts(cl);
	/*
	 * Linux copies TCP_NODELAY from a listening socket to the sockets it
	 * accepts: set once here, it saves a setsockopt per connection (one
	 * syscall of about a dozen per short-lived connection). A unix socket
	 * refuses it, and then there is nothing to set per connection either.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int)) == 0)
		ls->opts |= CONN_NODELAY;
	ls->next = *list;
	*list = ls;
	if (!passed)
		flags |= LEV_OPT_CLOSE_ON_FREE;
	ls->retry = evtimer_new(l->base, retry_cb, ls);
	/*
	 * Backlog 0: the socket already listens (with our SOMAXCONN or systemd's
	 * Backlog=); -1 would make libevent listen() again with 128, and a
	 * connection burst would then see SYN retries of 1-3 s.
	 */
	ls->lev = evconnlistener_new(l->base, accept_cb, ls, flags, 0, fd);
	if (ls->lev == NULL || ls->retry == NULL) {
		if (ls->lev == NULL && !passed)
			close(fd);
		*cause = strdup("cannot create a listener event");
		return -1;
	}
	evconnlistener_set_error_cb(ls->lev, accept_error_cb);
	return 0;
}

/* Is passed socket i claimed by a "systemd:NAME" line of cfg? */
static int
passed_claimed(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->nlistens; i++) {
		if (cfg->listens[i].kind == LISTEN_SYSTEMD && cfg->listens[i].name != NULL &&
		    strcmp(cfg->listens[i].name, name) == 0)
			return 1;
	}
	/* [admin] listen = systemd:NAME (admin.c serves those). */
	for (i = 0; i < cfg->admin.nlistens; i++) {
		if (cfg->admin.listens[i].kind == LISTEN_SYSTEMD &&
		    strcmp(cfg->admin.listens[i].name, name) == 0)
			return 1;
	}
	return 0;
}

/* Is fd already served by a listener of list (other than spec)? */
static const char *
passed_in_use(const struct listener *list, int fd)
{
	for (; list != NULL; list = list->next) {
		if (list->passed_fd == fd)
			return list->spec;
	}
	return NULL;
}

/*
 * "systemd" / "systemd:NAME": listeners on the passed sockets the line
 * selects (see config.h). others: listeners that stay open beside these.
 */
static int
open_systemd(struct loop *l, struct listener **list, const struct listener *others,
    const struct config *cfg, const struct config_listen *cl, char **cause)
{
	const char	*name, *user;
	int		 i, fd, n = 0;

	if (systemd_nsockets() == 0) {
		if (asprintf(cause, "listen %s (line %d): no socket was passed by the "
		    "service manager (start wsrouted through wsrouted.socket or "
		    "systemd-socket-activate%s)", cl->spec, cl->line,
#ifdef HAVE_SYSTEMD
		    ""
#else
		    "; this build has no systemd support"
#endif
		    ) == -1)
			*cause = NULL;
		return -1;
	}
	for (i = 0; i < systemd_nsockets(); i++) {
		fd = systemd_socket(i, &name);
		if (cl->name != NULL ? strcmp(cl->name, name) != 0 : passed_claimed(cfg, name))
			continue;
		if ((user = passed_in_use(others, fd)) != NULL) {
			if (asprintf(cause, "listen %s (line %d): passed socket '%s' is "
			    "already served by 'listen = %s'; restart to regroup "
			    "passed sockets", cl->spec, cl->line, name, user) == -1)
				*cause = NULL;
			return -1;
		}
		if (add_listener(l, list, fd, cl, 1, cause) == -1)
			return -1;
		log_info("event=listening listen=%s fd=%d name=%s", cl->spec, fd, name);
		n++;
	}
	if (n == 0) {
		if (asprintf(cause, "listen %s (line %d): none of the %d passed "
		    "socket(s) %s", cl->spec, cl->line, systemd_nsockets(),
		    cl->name != NULL ? "has this FileDescriptorName=" :
		    "is left over by the systemd:NAME lines") == -1)
			*cause = NULL;
		return -1;
	}
	return 0;
}

static int
open_one(struct loop *l, struct listener **list, const struct listener *others,
    const struct config *cfg, const struct config_listen *cl, char **cause)
{
	int	fd;

	if (cl->kind == LISTEN_SYSTEMD)
		return open_systemd(l, list, others, cfg, cl, cause);
	if ((fd = listener_bind(cl, cause)) == -1)
		return -1;
	if (add_listener(l, list, fd, cl, 0, cause) == -1)
		return -1;
	log_info("event=listening listen=%s", cl->spec);
	return 0;
}

struct listener *
listeners_open(struct loop *l, const struct config *cfg, char **cause)
{
	struct listener	*list = NULL;
	size_t		 i;

	for (i = 0; i < cfg->nlistens; i++) {
		if (open_one(l, &list, list, cfg, &cfg->listens[i], cause) == -1)
			goto fail;
	}
	return list;
fail:
	listeners_close(list);
	return NULL;
}

/*
 * Does ls serve the socket that line cl asks for? The same address (for
 * systemd lines, the same "systemd" or "systemd:NAME"), whatever the
 * options: a reload that only adds or drops "tls" or "proxy_protocol" keeps
 * the bound socket (binding it again could only fail with EADDRINUSE) and
 * changes how new connections are taken. Port 0 is a fresh ephemeral port
 * per line, so such a line is only itself, as written.
 */
static bool
same_socket(const struct listener *ls, const struct config_listen *cl)
{
	struct config_listen	have = { .spec = ls->spec, .kind = ls->kind,
				    .addr = ls->addr, .addrlen = ls->addrlen };

	if (cl->kind == LISTEN_INET && config_listen_port(cl) == 0)
		return strcmp(ls->spec, cl->spec) == 0;
	return config_listen_same(&have, cl);
}

static const struct config_listen *
line_for(const struct config *cfg, const struct listener *ls)
{
	size_t	i;

	for (i = 0; i < cfg->nlistens; i++) {
		if (same_socket(ls, &cfg->listens[i]))
			return &cfg->listens[i];
	}
	return NULL;
}

static bool
served_by(const struct listener *list, const struct config_listen *cl)
{
	for (; list != NULL; list = list->next) {
		if (same_socket(list, cl))
			return true;
	}
	return false;
}

/*
 * A kept socket takes its line's options, for the connections it accepts
 * from now on (open ones keep how they were taken), and its spelling for
 * the logs: without memory for that, the old spelling stays.
 */
static void
apply_line(struct listener *ls, const struct config_listen *cl)
{
	char	*spec;

	if (strcmp(ls->spec, cl->spec) == 0)
		return;
	log_info("event=listen_changed listen=%s was=\"%s\" tls=%s proxy_protocol=%s",
	    cl->spec, ls->spec, cl->tls ? "yes" : "no", cl->proxy_protocol ? "yes" : "no");
	ls->opts = listen_opts(cl) | (ls->opts & CONN_NODELAY);
	if ((spec = strdup(cl->spec)) != NULL) {
		free(ls->spec);
		ls->spec = spec;
	}
}

int
listeners_reload(struct loop *l, struct listener **list, const struct config *cfg,
    char **cause)
{
	struct listener	*kept = NULL, *gone = NULL, *added = NULL, *ls, *next, *tail;
	size_t		 i;

	/* Split the open listeners: sockets still asked for stay open. */
	for (ls = *list; ls != NULL; ls = next) {
		next = ls->next;
		if (line_for(cfg, ls) != NULL) {
			ls->next = kept;
			kept = ls;
		} else {
			ls->next = gone;
			gone = ls;
		}
	}
	for (i = 0; i < cfg->nlistens; i++) {
		if (served_by(kept, &cfg->listens[i]))
			continue;
		if (open_one(l, &added, kept, cfg, &cfg->listens[i], cause) == -1) {
			/* Nothing changes: put the old list back. */
			listeners_close(added);
			for (tail = kept; tail != NULL && tail->next != NULL; tail = tail->next)
				/* nothing */;
			if (tail != NULL)
				tail->next = gone;
			else
				kept = gone;
			*list = kept;
			return -1;
		}
	}
	/* Every new line is open: only now may the kept ones change. */
	for (ls = kept; ls != NULL; ls = ls->next)
		apply_line(ls, line_for(cfg, ls));
	for (ls = gone; ls != NULL; ls = ls->next) {
		if (ls->passed_fd != -1)
			log_warn("event=listen_closed listen=%s fd=%d hint=\"the socket "
			    "stays bound by systemd: its clients queue until a restart "
			    "or a reload that serves it again\"", ls->spec, ls->passed_fd);
		else
			log_info("event=listen_closed listen=%s", ls->spec);
	}
	listeners_close(gone);
	if (added != NULL) {
		for (tail = added; tail->next != NULL; tail = tail->next)
			/* nothing */;
		tail->next = kept;
		kept = added;
	}
	*list = kept;
	return 0;
}

size_t
listeners_count(const struct listener *list)
{
	size_t	n = 0;

	for (; list != NULL; list = list->next)
		n++;
	return n;
}

void
listeners_close(struct listener *list)
{
	struct listener	*next;

	for (; list != NULL; list = next) {
		next = list->next;
		if (list->lev != NULL)
			evconnlistener_free(list->lev);
		if (list->retry != NULL)
			event_free(list->retry);
		remove_unix_path(list);
		free(list->unix_path);
		free(list->spec);
		free(list);
	}
}
