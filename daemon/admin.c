/*
 * admin.c — see admin.h.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "systemd.h"

#define ADMIN_TIMEOUT_S		10	/* evhttp: idle and request time */
#define ADMIN_MAX_HEADERS	8192
#define ADMIN_MAX_BODY		1024	/* GET: nothing to upload */

struct admin_sock {
	struct admin_sock		*next;
	char				*spec;	/* as written: the reload key */
	int				 fd;	/* pending: bound, not served yet */
	struct evhttp_bound_socket	*bound;	/* serving */
};

struct admin {
	struct evhttp		*http;
	struct admin_sock	*socks;
	const struct admin_ops	*ops;
	void			*arg;
};

struct admin_pending {
	struct admin_sock	*added;
	const struct config	*cfg;
};

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
	struct evbuffer	*b = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	/* evhttp 2.1 would send a HEAD answer's body. */
	if (b != NULL && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

static void
serve_metrics(struct admin *a, struct evhttp_request *req)
{
	struct evbuffer	*b;
	FILE		*f;
	char		*text = NULL;
	size_t		 len = 0;
	int		 bad;

	if ((f = open_memstream(&text, &len)) == NULL) {
		reply_text(req, 500, "Internal Server Error", "out of memory\n");
		return;
	}
	bad = metrics_render(f, a->ops->routes(a->arg));
	if (fclose(f) != 0 || bad || (b = evbuffer_new()) == NULL) {
		free(text);
		reply_text(req, 500, "Internal Server Error", "out of memory\n");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(b, text, len);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
admin_request_cb(struct evhttp_request *req, void *arg)
{
	struct admin		*a = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char		*why = NULL;
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	char			 body[128];

	if (path == NULL || (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 &&
	    strcmp(path, "/readyz") != 0)) {
		reply_text(req, 404, "Not Found", "not found: try /metrics, /healthz or /readyz\n");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		reply_text(req, 405, "Method Not Allowed", "method not allowed: use GET\n");
		return;
	}
	if (strcmp(path, "/metrics") == 0)
		serve_metrics(a, req);
	else if (strcmp(path, "/healthz") == 0)
		reply_text(req, 200, "OK", "ok\n");
	else if (a->ops->ready(a->arg, &why))
		reply_text(req, 200, "OK", "ready\n");
	else {
		snprintf(body, sizeof(body), "not ready: %s\n", why != NULL ? why : "unknown");
		reply_text(req, 503, "Service Unavailable", body);
	}
}

struct admin *
admin_new(struct event_base *base, const struct admin_ops *ops, void *arg)
{
	struct admin	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	if ((a->http = evhttp_new(base)) == NULL) {
		free(a);
		return NULL;
	}
	a->ops = ops;
	a->arg = arg;
	/* Every method reaches the callback, which answers 405 itself. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
	evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
	evhttp_set_gencb(a->http, admin_request_cb, a);
	return a;
}

static void
sock_free(struct admin *a, struct admin_sock *s)
{
	if (s->bound != NULL)
		evhttp_del_accept_socket(a->http, s->bound);	/* closes the socket */
	else if (s->fd != -1)
		close(s->fd);
	free(s->spec);
	free(s);
}

void
admin_free(struct admin *a)
{
	struct admin_sock	*s, *next;

	if (a == NULL)
		return;
	for (s = a->socks; s != NULL; s = next) {
		next = s->next;
		sock_free(a, s);
	}
	evhttp_free(a->http);
	free(a);
}

static struct admin_sock *
sock_find(struct admin_sock *list, const char *spec)
{
	for (; list != NULL; list = list->next)
		if (strcmp(list->spec, spec) == 0)
			return list;
	return NULL;
}

static int
pending_add(struct admin_pending *p, const char *spec, int fd)
{
	struct admin_sock	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL || (s->spec = strdup(spec)) == NULL) {
		free(s);
		close(fd);
		return -1;
	}
	s->fd = fd;
	s->next = p->added;
	p->added = s;
	return 0;
}

/* Loopback (or unix) address of a passed socket; the config checked written ones. */
static bool
sock_is_local(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const struct in6_addr	*a6;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return false;
	if (ss.ss_family == AF_UNIX)
		return true;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	return ss.ss_family == AF_INET6 && (IN6_IS_ADDR_LOOPBACK(a6) ||
	    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127));
}

/*
 * systemd:NAME: every passed socket of that name. evhttp closes what it is
 * given when the line goes away, and passed sockets belong to systemd
 * (listener.c never closes them), so it gets a duplicate.
 */
static int
prepare_passed(struct admin_pending *p, const struct config_listen *cl, char **cause)
{
	const char	*name;
	bool		 pub;
	int		 i, fd, n = 0;

	/* "public" is the only option a line may have (config.c). */
	pub = cl->spec[strcspn(cl->spec, " \t")] != '\0';
	for (i = 0; i < systemd_nsockets(); i++) {
		fd = systemd_socket(i, &name);
		if (strcmp(name, cl->name) != 0)
			continue;
		if (!pub && !sock_is_local(fd)) {
			if (asprintf(cause, "%s:%d: listen %s: the passed socket is not on "
			    "a loopback address; add the option 'public' to mean it",
			    cl->file, cl->line, cl->spec) == -1)
				*cause = NULL;
			return -1;
		}
		if ((fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1 ||
		    pending_add(p, cl->spec, fd) == -1) {
			*cause = NULL;
			return -1;
		}
		n++;
	}
	if (n == 0) {
		if (asprintf(cause, "%s:%d: listen %s: no socket named '%s' was passed by "
		    "the service manager", cl->file, cl->line, cl->spec, cl->name) == -1)
			*cause = NULL;
		return -1;
	}
	return 0;
}

int
admin_prepare(struct admin *a, const struct config *cfg, struct admin_pending **pending,
    char **cause)
{
	const struct config_listen	*cl;
	struct admin_pending		*p;
	size_t				 i;
	int				 fd;

	*cause = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto nomem;
	p->cfg = cfg;
	for (i = 0; i < cfg->admin.nlistens; i++) {
		cl = &cfg->admin.listens[i];
		if (sock_find(a->socks, cl->spec) != NULL)
			continue;
		if (cl->kind == LISTEN_SYSTEMD) {
			if (prepare_passed(p, cl, cause) == -1)
				goto fail;
			continue;
		}
		if ((fd = listener_bind(cl, cause)) == -1 || pending_add(p, cl->spec, fd) == -1)
			goto fail;
	}
	*pending = p;
	return 0;
fail:
	admin_abort(p);
	if (*cause != NULL)
		return -1;
nomem:
	*cause = strdup("out of memory");
	return -1;
}

void
admin_abort(struct admin_pending *p)
{
	struct admin_sock	*s, *next;

	if (p == NULL)
		return;
	for (s = p->added; s != NULL; s = next) {
		next = s->next;
		if (s->fd != -1)
			close(s->fd);
		free(s->spec);
		free(s);
	}
	free(p);
}

/* True when spec is one of cfg's [admin] listen lines. */
static bool
in_config(const struct config *cfg, const char *spec)
{
	size_t	i;

	for (i = 0; i < cfg->admin.nlistens; i++)
		if (strcmp(cfg->admin.listens[i].spec, spec) == 0)
			return true;
	return false;
}

void
admin_commit(struct admin *a, struct admin_pending *p)
{
	struct admin_sock	**pp, *s, *next;

	for (pp = &a->socks; (s = *pp) != NULL; ) {
		if (in_config(p->cfg, s->spec)) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		log_info("event=admin_closed listen=%s", s->spec);
		sock_free(a, s);
	}
	for (s = p->added; s != NULL; s = next) {
		next = s->next;
		if ((s->bound = evhttp_accept_socket_with_handle(a->http, s->fd)) == NULL) {
			log_error("event=admin_failed listen=%s error=\"cannot serve the "
			    "socket\"", s->spec);
			close(s->fd);
			free(s->spec);
			free(s);
			continue;
		}
		s->fd = -1;
		s->next = a->socks;
		a->socks = s;
		log_info("event=admin_listening listen=%s", s->spec);
	}
	free(p);
}
