/*
 * exec.c — the built-in exec handler (websocketd-style): one process per
 * connection. In text mode each text message becomes a line on the
 * process's stdin and each line of its stdout a text message; in binary
 * mode bytes pass through unchanged both ways. stderr goes to the log, line
 * by line.
 *
 * Options (route keys):
 *   command = PROGRAM ARG...   required; split on blanks, PROGRAM looked up
 *                              in PATH, no shell (shell = yes: /bin/sh -c)
 *   shell = no | yes
 *   mode = text | binary       (text)
 *   max_processes = N          per route, 1..100000 (100); more → 503
 *   kill_grace = MS            SIGTERM → SIGKILL delay, e.g. 2000ms (2000ms)
 *
 * Environment (CGI-like): REMOTE_ADDR, REMOTE_PORT, SCRIPT_NAME (the route
 * path), PATH_INFO (""), QUERY_STRING, REQUEST_METHOD, SERVER_SOFTWARE,
 * GATEWAY_INTERFACE, HTTP_* for every request header, and PATH from the
 * daemon's environment.
 *
 * Lifetime: the process exiting (and its stdout reaching EOF) closes the
 * WebSocket with 1000, or 1011 for a non-zero status or a signal. The
 * WebSocket closing sends SIGTERM, then SIGKILL after kill_grace. Each
 * child is reaped through its own pidfd, watched on the loop of the thread
 * that spawned it, with waitpid() for that pid only (no SIGCHLD handler,
 * which is process-wide and would tie every child to one loop); the record
 * outlives its connection until the child is reaped, so none stays a
 * zombie. Every daemon descriptor is closed in the child (posix_spawn with
 * closefrom 3), so none leaks into it.
 *
 * Threads (workers = N): a child and its record belong to the loop thread
 * that spawned it (per-thread list, events on that thread's base). The
 * route instance is shared by every thread: its options are read-only
 * after create, and nprocs (max_processes) and refs are atomic.
 */
#include <sys/pidfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <wsrouted/plugin.h>

#include "conn.h"
#include "handler.h"
#include "utf8.h"

extern char **environ;

#define EX_HIGH		(1u << 20)
#define EX_LOW		(256u << 10)
#define EX_LINE_MAX	(1u << 20)

struct exec_route {
	char		**argv;
	bool		  binary;
	unsigned long	  max_processes;
	unsigned long	  grace_ms;
	/* Atomic: connections on every worker thread spawn and reap. */
	unsigned long	  nprocs;	/* running, including dying ones */
	/*
	 * The route's config (until destroy) plus one per child record: a
	 * child in its kill_grace may outlive the route (reload), and is
	 * reaped on its own thread, which destroy (any thread) cannot touch.
	 */
	unsigned long	  refs;
};

struct proc {
	struct exec_route	*r;
	struct wsr_conn		*c;		/* NULL once the connection is gone */
	pid_t			 pid;
	bool			 exited;
	int			 status;
	bool			 out_eof;
	bool			 closing;
	struct bufferevent	*in, *out, *err;
	struct event		*kill_ev;	/* SIGKILL after the grace period */
	int			 pidfd;
	struct event		*pid_ev;	/* pidfd readable: the child exited */
	struct proc		*next, **pprev;
};

/* Per loop thread: its children not yet reaped (their events are on its base). */
static __thread struct proc	*procs;

static void	proc_reaped(struct proc *);

static void
free_argv(char **argv)
{
	size_t	i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

static void
route_unref(struct exec_route *r)
{
	/* Release/acquire: whoever frees sees every other thread's last use. */
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free_argv(r->argv);
	free(r);
}

/*
 * Every connection of the route is gone, but children in their grace period
 * may still run on any loop thread: each holds a reference and is reaped
 * there (or killed by exec_thread_end when its loop stops).
 */
static void
ex_destroy(void *self)
{
	if (self != NULL)
		route_unref(self);
}

static void *
ex_fail(struct exec_route *r, char **cause, const char *fmt, const char *k, const char *v)
{
	if (asprintf(cause, fmt, k, v) == -1)
		*cause = NULL;
	ex_destroy(r);
	return NULL;
}

static char **
split_words(const char *s)
{
	char	**argv = NULL, **grown;
	size_t	  n = 0, len;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		len = strcspn(s, " \t");
		if ((grown = realloc(argv, (n + 2) * sizeof(*argv))) == NULL)
			goto fail;
		argv = grown;
		if ((argv[n] = strndup(s, len)) == NULL)
			goto fail;
		argv[++n] = NULL;
		s += len;
	}
	return argv;
fail:
	if (argv != NULL)
		argv[n] = NULL;
	free_argv(argv);
	return NULL;
}

static void *
ex_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	struct exec_route	*r;
	const char		*command = NULL;
	bool			 shell = false;
	unsigned long long	 n;
	char			*end;
	size_t			 i;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	r->refs = 1;
	r->max_processes = 100;
	r->grace_ms = 2000;
	for (i = 0; i < nopts; i++) {
		const char *k = opts[i].key, *v = opts[i].value;

		if (strcmp(k, "command") == 0) {
			if (v[strspn(v, " \t")] == '\0')
				return ex_fail(r, cause, "%s: expected a program and its "
				    "arguments, got '%s'", k, v);
			command = v;
		} else if (strcmp(k, "shell") == 0) {
			if (strcmp(v, "yes") == 0)
				shell = true;
			else if (strcmp(v, "no") == 0)
				shell = false;
			else
				return ex_fail(r, cause, "%s: expected yes or no, got '%s'", k, v);
		} else if (strcmp(k, "mode") == 0) {
			if (strcmp(v, "text") == 0)
				r->binary = false;
			else if (strcmp(v, "binary") == 0)
				r->binary = true;
			else
				return ex_fail(r, cause, "%s: expected text or binary, got '%s'", k, v);
		} else if (strcmp(k, "max_processes") == 0) {
			errno = 0;
			n = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < 1 ||
			    n > 100000)
				return ex_fail(r, cause, "%s: expected a number 1..100000, "
				    "got '%s'", k, v);
			r->max_processes = n;
		} else if (strcmp(k, "kill_grace") == 0) {
			n = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || strcmp(end, "ms") != 0 || n > 600000)
				return ex_fail(r, cause, "%s: expected milliseconds like 2000ms, "
				    "0..600000ms, got '%s'", k, v);
			r->grace_ms = n;
		} else
			return ex_fail(r, cause, "%s: unknown key for the exec handler, expected "
			    "command, shell, mode, max_processes or kill_grace%s", k, "");
	}
	if (command == NULL) {
		ex_destroy(r);
		*cause = strdup("the exec handler needs 'command = PROGRAM [ARG...]'");
		return NULL;
	}
	if (shell) {
		if ((r->argv = calloc(4, sizeof(*r->argv))) == NULL ||
		    (r->argv[0] = strdup("/bin/sh")) == NULL ||
		    (r->argv[1] = strdup("-c")) == NULL ||
		    (r->argv[2] = strdup(command)) == NULL) {
			ex_destroy(r);
			*cause = strdup("out of memory");
			return NULL;
		}
	} else if ((r->argv = split_words(command)) == NULL) {
		ex_destroy(r);
		*cause = strdup("out of memory");
		return NULL;
	}
	return r;
}

/* ---- environment ---------------------------------------------------------- */

struct env {
	char	**v;
	size_t	  n;
	bool	  nomem;
};

static void
env_add(struct env *e, const char *name, const char *value)
{
	char	**grown, *s;

	if (e->nomem)
		return;
	if ((grown = realloc(e->v, (e->n + 2) * sizeof(*e->v))) == NULL ||
	    asprintf(&s, "%s=%s", name, value != NULL ? value : "") == -1) {
		if (grown != NULL)
			e->v = grown;
		e->nomem = true;
		return;
	}
	e->v = grown;
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
}

static char **
build_env(struct wsr_conn *c)
{
	struct env	 e = { NULL, 0, false };
	const char	*peer = wsr_conn_peer(c), *colon, *block, *name, *value;
	char		 addr[64], var[128];
	size_t		 i, j, n;

	/* "1.2.3.4:5" or "[::1]:5" */
	colon = strrchr(peer, ':');
	n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);
	if (n > 0 && peer[0] == '[' && peer[n - 1] == ']')
		snprintf(addr, sizeof(addr), "%.*s", (int)(n - 2), peer + 1);
	else
		snprintf(addr, sizeof(addr), "%.*s", (int)n, peer);
	env_add(&e, "REMOTE_ADDR", addr);
	env_add(&e, "REMOTE_PORT", colon != NULL ? colon + 1 : "");
	env_add(&e, "SCRIPT_NAME", wsr_conn_path(c));
	env_add(&e, "PATH_INFO", "");
	env_add(&e, "QUERY_STRING", wsr_conn_query(c) != NULL ? wsr_conn_query(c) : "");
	env_add(&e, "REQUEST_METHOD", "GET");
	env_add(&e, "SERVER_SOFTWARE", "wsrouted");
	env_add(&e, "GATEWAY_INTERFACE", "websocketd-CGI/0.1");
	if (getenv("PATH") != NULL)
		env_add(&e, "PATH", getenv("PATH"));
	n = conn_headers(c, &block);
	for (i = 0, name = block; i < n; i++) {
		value = name + strlen(name) + 1;
		memcpy(var, "HTTP_", 5);
		for (j = 0; name[j] != '\0' && j + 6 < sizeof(var); j++)
			var[5 + j] = name[j] == '-' ? '_' : (char)toupper((unsigned char)name[j]);
		var[5 + j] = '\0';
		env_add(&e, var, value);
		name = value + strlen(value) + 1;
	}
	if (e.nomem) {
		free_argv(e.v);
		return NULL;
	}
	return e.v;
}

/* ---- the child ------------------------------------------------------------ */

static void
proc_unlink(struct proc *p)
{
	*p->pprev = p->next;
	if (p->next != NULL)
		p->next->pprev = p->pprev;
}

static void
proc_free_io(struct proc *p)
{
	if (p->in != NULL)
		bufferevent_free(p->in);
	if (p->out != NULL)
		bufferevent_free(p->out);
	if (p->err != NULL)
		bufferevent_free(p->err);
	p->in = p->out = p->err = NULL;
}

static void
proc_free(struct proc *p)
{
	struct exec_route	*r = p->r;

	proc_free_io(p);
	free(p);
	route_unref(r);
}

/* The child is gone for good: free it unless its connection still holds it. */
static void
proc_reaped(struct proc *p)
{
	p->exited = true;
	__atomic_fetch_sub(&p->r->nprocs, 1, __ATOMIC_RELAXED);
	proc_unlink(p);
	p->pprev = NULL;
	if (p->kill_ev != NULL)
		event_free(p->kill_ev);
	p->kill_ev = NULL;
	if (p->pid_ev != NULL)
		event_free(p->pid_ev);
	p->pid_ev = NULL;
	if (p->pidfd != -1)
		close(p->pidfd);
	p->pidfd = -1;
	if (p->c == NULL)
		proc_free(p);
}

static void
proc_maybe_close(struct proc *p)
{
	int	code;

	if (p->c == NULL || p->closing || !p->exited || !p->out_eof)
		return;
	p->closing = true;
	code = WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0 ? 1000 : 1011;
	wsr_log(p->c, WSR_LOG_INFO, "event=process_exit pid=%ld %s=%d", (long)p->pid,
	    WIFEXITED(p->status) ? "status" : "signal",
	    WIFEXITED(p->status) ? WEXITSTATUS(p->status) : WTERMSIG(p->status));
	wsr_close(p->c, code, code == 1000 ? "process exited" : "process failed");
}

/* The pidfd is readable: the child exited (a zombie until this waitpid). */
static void
pid_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc	*p = arg;
	pid_t		 pid;

	(void)fd;
	(void)what;
	while ((pid = waitpid(p->pid, &p->status, WNOHANG)) == -1 && errno == EINTR)
		continue;
	if (pid == 0)
		return;			/* not exited after all: keep watching */
	if (pid == -1) {
		/* ECHILD: nobody else waits for our children; count it as failed. */
		wsr_log(NULL, WSR_LOG_ERROR, "event=process_reap_failed pid=%ld error=\"%s\"",
		    (long)p->pid, strerror(errno));
		p->status = 0x7f00;	/* "exit status 127" for proc_maybe_close */
	}
	if (p->c == NULL) {
		proc_reaped(p);		/* frees p */
		return;
	}
	proc_reaped(p);
	proc_maybe_close(p);
}

/*
 * The calling loop thread stops (worker_main, or main after its loop): its
 * connections are closed, so every record left is a child in its grace
 * period, with events on the base about to be freed. Kill and reap them now.
 */
void
exec_thread_end(void)
{
	struct proc	*p;

	while ((p = procs) != NULL) {
		wsr_log(NULL, WSR_LOG_INFO, "event=process_kill pid=%ld signal=KILL "
		    "reason=stopping", (long)p->pid);
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &p->status, 0) == -1 && errno == EINTR)
			continue;
		p->c = NULL;	/* loop_free ran every on_close; be sure anyway */
		proc_reaped(p);	/* frees p */
	}
}

static void
out_read_cb(struct bufferevent *bev, void *arg)
{
	struct proc	*p = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	size_t		 n, len;
	uint8_t		*d;

	while (p->c != NULL && !p->closing && (n = evbuffer_get_length(in)) > 0) {
		if (wsr_conn_pending(p->c) > EX_HIGH) {
			bufferevent_disable(bev, EV_READ);	/* on_drain resumes */
			return;
		}
		if (p->r->binary) {
			len = n > 65536 ? 65536 : n;
			d = evbuffer_pullup(in, len);
			wsr_send(p->c, WSR_BINARY, d, len);
			evbuffer_drain(in, len);
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (n > EX_LINE_MAX) {
				p->closing = true;
				wsr_close(p->c, 1011, "process output line too long");
			}
			return;
		}
		len = (size_t)eol.pos;
		d = evbuffer_pullup(in, len + 1);
		n = len > 0 && d[len - 1] == '\r' ? len - 1 : len;
		if (!utf8_valid(d, n)) {
			p->closing = true;
			wsr_close(p->c, 1011, "process sent invalid UTF-8");
			return;
		}
		wsr_send(p->c, WSR_TEXT, d, n);
		evbuffer_drain(in, len + 1);
	}
}

static void
out_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proc	*p = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 n;
	uint8_t		*d;

	(void)what;
	/* EOF or error: a last line without '\n' still goes out. */
	if (p->c != NULL && !p->closing && (n = evbuffer_get_length(in)) > 0 &&
	    n <= EX_LINE_MAX) {
		d = evbuffer_pullup(in, n);
		if (p->r->binary || utf8_valid(d, n))
			wsr_send(p->c, p->r->binary ? WSR_BINARY : WSR_TEXT, d, n);
		evbuffer_drain(in, n);
	}
	bufferevent_disable(bev, EV_READ);
	p->out_eof = true;
	proc_maybe_close(p);
}

static void
err_read_cb(struct bufferevent *bev, void *arg)
{
	struct proc	*p = arg;
	char		*line;
	size_t		 n;

	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (p->c != NULL)
			wsr_log(p->c, WSR_LOG_WARN, "event=process_stderr pid=%ld line=\"%.*s\"",
			    (long)p->pid, (int)(n > 500 ? 500 : n), line);
		free(line);
	}
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 4096)
		evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(
		    bufferevent_get_input(bev)));
}

static void
err_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_disable(bev, EV_READ);
}

static void
in_write_cb(struct bufferevent *bev, void *arg)
{
	struct proc	*p = arg;

	(void)bev;
	if (p->c != NULL && !p->closing)
		wsr_conn_set_reading(p->c, 1);
}

static void
in_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	(void)what;
	/* The process closed its stdin (EPIPE): it may still write. */
	bufferevent_disable(bev, EV_WRITE);
}

static struct bufferevent *
pipe_bev(struct event_base *base, int fd, bufferevent_data_cb rd, bufferevent_data_cb wr,
    bufferevent_event_cb ev, struct proc *p, short enable)
{
	struct bufferevent	*bev;

	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return NULL;
	}
	bufferevent_setcb(bev, rd, wr, ev, p);
	bufferevent_enable(bev, enable);
	return bev;
}

static int
ex_on_open(void *self, struct wsr_conn *c)
{
	struct exec_route		*r = self;
	struct event_base		*base = handler_event_base();
	struct proc			*p = NULL;
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 attr;
	sigset_t			 none, def;
	char				**env = NULL;
	unsigned long			 n;
	int				 in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int				 rv;

	if (base == NULL)
		return 500;
	/* Claim a slot first: several threads may race for the last one. */
	if ((n = __atomic_add_fetch(&r->nprocs, 1, __ATOMIC_RELAXED)) > r->max_processes) {
		__atomic_fetch_sub(&r->nprocs, 1, __ATOMIC_RELAXED);
		wsr_log(c, WSR_LOG_INFO, "event=exec_full processes=%lu", n - 1);
		return 503;
	}
	if ((env = build_env(c)) == NULL ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		free_argv(env);
		__atomic_fetch_sub(&r->nprocs, 1, __ATOMIC_RELAXED);
		return 500;
	}
	p->r = r;
	p->c = c;
	p->pidfd = -1;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(err, O_CLOEXEC) == -1) {
		rv = errno;
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	/* Nothing of the daemon's beyond 0-2, CLOEXEC or not. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);	/* the daemon ignores it; the child must not */
	sigaddset(&def, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	rv = posix_spawnp(&p->pid, r->argv[0], &fa, &attr, r->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free_argv(env);
	env = NULL;
	if (rv != 0)
		goto fail;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	__atomic_fetch_add(&r->refs, 1, __ATOMIC_RELAXED);	/* held by p */
	p->next = procs;
	p->pprev = &procs;
	if (procs != NULL)
		procs->pprev = &p->next;
	procs = p;
	/*
	 * Nothing reaps the child but us, so its pid cannot be reused before
	 * this pidfd_open. If the watch cannot be set up, kill and reap it here.
	 */
	if ((p->pidfd = pidfd_open(p->pid, 0)) == -1 ||
	    (p->pid_ev = event_new(base, p->pidfd, EV_READ | EV_PERSIST, pid_cb, p)) == NULL ||
	    event_add(p->pid_ev, NULL) == -1) {
		wsr_log(c, WSR_LOG_ERROR, "event=exec_failed command=%s error=\"cannot watch "
		    "the process: %s\"", r->argv[0], strerror(errno));
		p->c = NULL;
		close(in[1]);
		close(out[0]);
		close(err[0]);
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, &p->status, 0) == -1 && errno == EINTR)
			continue;
		proc_reaped(p);		/* frees p */
		return 500;
	}
	p->in = pipe_bev(base, in[1], NULL, in_write_cb, in_event_cb, p, EV_WRITE);
	p->out = pipe_bev(base, out[0], out_read_cb, NULL, out_event_cb, p, EV_READ);
	p->err = pipe_bev(base, err[0], err_read_cb, NULL, err_event_cb, p, EV_READ);
	if (p->in == NULL || p->out == NULL || p->err == NULL) {
		/* A refused connection gets no on_close: pid_cb reaps it alone. */
		p->c = NULL;
		proc_free_io(p);
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		return 500;
	}
	bufferevent_setwatermark(p->in, EV_WRITE, EX_LOW, 0);
	bufferevent_setwatermark(p->out, EV_READ, 0, EX_HIGH);
	wsr_conn_set_data(c, p);
	wsr_log(c, WSR_LOG_INFO, "event=process_start pid=%ld", (long)p->pid);
	return 0;
fail:
	wsr_log(c, WSR_LOG_ERROR, "event=exec_failed command=%s error=\"%s\"", r->argv[0],
	    strerror(rv));
	free_argv(env);
	for (rv = 0; rv < 2; rv++) {
		if (in[rv] != -1)
			close(in[rv]);
		if (out[rv] != -1)
			close(out[rv]);
		if (err[rv] != -1)
			close(err[rv]);
	}
	free(p);
	__atomic_fetch_sub(&r->nprocs, 1, __ATOMIC_RELAXED);
	return 500;
}

static void
ex_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	struct proc	*p = wsr_conn_data(c);

	(void)self;
	(void)opcode;
	if (p == NULL || p->in == NULL || p->closing)
		return;
	bufferevent_write(p->in, data, len);
	if (!p->r->binary)
		bufferevent_write(p->in, "\n", 1);
	if (evbuffer_get_length(bufferevent_get_output(p->in)) > EX_HIGH)
		wsr_conn_set_reading(c, 0);		/* in_write_cb resumes */
}

static void
ex_on_drain(void *self, struct wsr_conn *c)
{
	struct proc	*p = wsr_conn_data(c);

	(void)self;
	if (p != NULL && p->out != NULL && !p->out_eof && !p->closing) {
		bufferevent_enable(p->out, EV_READ);
		out_read_cb(p->out, p);
	}
}

static void
kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proc	*p = arg;

	(void)fd;
	(void)what;
	wsr_log(NULL, WSR_LOG_INFO, "event=process_kill pid=%ld signal=KILL", (long)p->pid);
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
}

static void
ex_on_close(void *self, struct wsr_conn *c, int code)
{
	struct proc	*p = wsr_conn_data(c);
	struct timeval	 tv;

	(void)self;
	(void)code;
	if (p == NULL)
		return;
	wsr_conn_set_data(c, NULL);
	p->c = NULL;
	proc_free_io(p);
	if (p->exited) {		/* reaped already: nothing else holds it */
		proc_free(p);
		return;
	}
	/* SIGTERM to its process group, SIGKILL after the grace period. */
	kill(-p->pid, SIGTERM);
	kill(p->pid, SIGTERM);
	tv.tv_sec = p->r->grace_ms / 1000;
	tv.tv_usec = (p->r->grace_ms % 1000) * 1000;
	if ((p->kill_ev = evtimer_new(handler_event_base(), kill_cb, p)) == NULL ||
	    evtimer_add(p->kill_ev, &tv) == -1)
		kill_cb(-1, 0, p);
}

const struct wsr_handler handler_exec = {
	.abi = WSR_PLUGIN_ABI,
	.name = "exec",
	.create = ex_create,
	.destroy = ex_destroy,
	.on_open = ex_on_open,
	.on_message = ex_on_message,
	.on_close = ex_on_close,
	.on_drain = ex_on_drain,
};
