/*
 * listener.c — see listener.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"

#define ACCEPT_RETRY_MS	100

struct listener {
	struct listener		*next;
	struct loop		*loop;
	struct evconnlistener	*lev;
	struct event		*retry;		/* re-enables accept after EMFILE */
	char			*spec;
	unsigned		 opts;		/* CONN_TLS, … */
};

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener	*ls = arg;

	(void)lev;
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

static int
bind_one(const struct config_listen *cl, char **cause)
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

struct listener *
listeners_open(struct loop *l, const struct config *cfg, char **cause)
{
	struct listener	*list = NULL, *ls;
	size_t		 i;
	int		 fd;

	for (i = 0; i < cfg->nlistens; i++) {
		if ((fd = bind_one(&cfg->listens[i], cause)) == -1)
			goto fail;
		if ((ls = calloc(1, sizeof(*ls))) == NULL ||
		    (ls->spec = strdup(cfg->listens[i].spec)) == NULL) {
			free(ls);
			close(fd);
			*cause = strdup("out of memory");
			goto fail;
		}
		ls->loop = l;
		ls->opts = (cfg->listens[i].tls ? CONN_TLS : 0) |
		    (cfg->listens[i].proxy_protocol ? CONN_PROXY : 0);
		ls->next = list;
		list = ls;
		ls->retry = evtimer_new(l->base, retry_cb, ls);
		ls->lev = evconnlistener_new(l->base, accept_cb, ls,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
		if (ls->lev == NULL || ls->retry == NULL) {
			if (ls->lev == NULL)
				close(fd);
			*cause = strdup("cannot create a listener event");
			goto fail;
		}
		evconnlistener_set_error_cb(ls->lev, accept_error_cb);
		log_info("event=listening listen=%s", ls->spec);
	}
	return list;
fail:
	listeners_close(list);
	return NULL;
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
		free(list->spec);
		free(list);
	}
}
