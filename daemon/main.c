/*
 * main.c — wsrouted: argv, config, start, signals, stop.
 */
#include "build-config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "admin.h"
#include "config.h"
#include "conn.h"
#include "handler.h"
#include "lint.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "privdrop.h"
#include "route.h"
#include "systemd.h"
#include "tls.h"
#include "worker.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/wsrouted/wsrouted.ini"

struct daemon {
	const char		*config_path;
	struct event_base	*base;
	struct loop		 loop;		/* with workers: the acceptor only */
	struct workers		*workers;	/* NULL: workers = 1, one loop */
	struct listener		*listeners;
	struct event		*shutdown_timer;
	uint64_t		 shutdown_timeout_ms;
	int			 stopping;
	uint64_t		 stop_started;		/* monotonic ms of the first stop signal */
	uint16_t		 drain_code;		/* 1001, or 1012 for a restart */
	int			 exit_status;
	struct event		*status_timer;		/* STATUS= refresh */
	struct event		*watchdog_timer;	/* WATCHDOG=1 */
	char			 reload_error[256];	/* "" or why the last reload failed */
	struct admin		*admin;			/* [admin] endpoints */
	bool			 serving;		/* the first config is in service (readyz) */
};

#define STATUS_PERIOD_MS	1000
/*
 * Exit status after a SIGUSR2 drain: EX_TEMPFAIL of sysexits(3), "try
 * again". The unit lists it in SuccessExitStatus= (not a failure) and
 * RestartForceExitStatus= (systemd starts the daemon again whatever
 * Restart= says); any supervisor that restarts on failure does too.
 */
#define EXIT_RESTART		75
#define EXIT_RESTART_STR	"75"

/* The first error of the last failed load, for STATUS= (set by load_routes). */
static char	last_load_error[200];

static void	notify_status(struct daemon *d);

/* Open connections, on the one loop or across the workers. */
static size_t
nconns(struct daemon *d)
{
	return d->workers != NULL ? workers_nconns(d->workers, NULL, 0) : d->loop.nconns;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: wsrouted [-t | -T] [-c FILE]\n"
	    "\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -t, --test         check the configuration and exit (0: valid, 1: errors)\n"
	    "  -T, --test-dump    check it, print the effective configuration (every\n"
	    "                     value with the FILE:LINE it came from) and exit\n"
	    "  -v, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT close every\n"
	    "connection with 1001, spread over drain_window, and exit 0; SIGUSR2 does\n"
	    "the same with 1012 (service restart) and exits " EXIT_RESTART_STR " (restart me).\n");
}

static void
print_errors(struct config_errors *errs)
{
	size_t	i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "wsrouted: %s\n", errs->msgs[i]);
}

/* Warnings about a valid config (lint.h): -t prints them, the daemon logs them. */
static void
report_lint(const struct config *cfg, int to_stderr)
{
	struct config_errors	warnings = { NULL, 0 };
	size_t			i;

	if (config_lint(cfg, &warnings) < 0) {
		if (to_stderr)
			fprintf(stderr, "wsrouted: warning: out of memory checking the "
			    "configuration for warnings\n");
		else
			log_warn("event=config_warning warning=\"out of memory\"");
	}
	for (i = 0; i < warnings.n; i++) {
		if (to_stderr)
			fprintf(stderr, "wsrouted: warning: %s\n", warnings.msgs[i]);
		else
			log_warn("event=config_warning warning=\"%s\"", warnings.msgs[i]);
	}
	config_errors_clear(&warnings);
}

/*
 * Loads and binds a config: the route table with its handler instances,
 * and in *tls the SSL_CTX of its [tls] section (NULL when it has none).
 * nloops: the loops that will serve it (the running workers at a reload),
 * or 0: as many as its `workers` asks for (start, -t).
 */
static struct route_table *
load_routes(const char *path, int to_stderr, SSL_CTX **tls, unsigned nloops)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	struct route_table	*t;
	char			*cause = NULL;
	size_t			 i;

	if ((cfg = config_load(path, &errs)) == NULL) {
		snprintf(last_load_error, sizeof(last_load_error), "%s",
		    errs.n > 0 ? errs.msgs[0] : "cannot load the configuration");
		if (to_stderr)
			print_errors(&errs);
		else
			for (i = 0; i < errs.n; i++)
				log_error("event=config_error error=\"%s\"", errs.msgs[i]);
		config_errors_clear(&errs);
		return NULL;
	}
	if ((t = route_table_new(cfg)) == NULL) {
		config_free(cfg);
		cause = strdup("out of memory");
	} else if (handler_bind_routes(t, nloops != 0 ? nloops : workers_for(cfg->workers),
	    &cause) == -1) {
		route_table_unref(t, NULL);
		t = NULL;
	} else if (t->cfg->tls.line != 0 && (*tls = tls_ctx_new(t->cfg, &cause)) == NULL) {
		route_table_unref(t, handler_destroy_instance);
		t = NULL;
	}
	if (t == NULL) {
		snprintf(last_load_error, sizeof(last_load_error), "%s",
		    cause ? cause : "out of memory");
		if (to_stderr)
			fprintf(stderr, "wsrouted: %s\n", cause ? cause : "out of memory");
		else
			log_error("event=config_error error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
	}
	return t;
}

/* -T: the whole tree was loaded and bound like -t; now show what it says. */
static int
dump_config(struct route_table *t)
{
	char	*text;
	int	 ret = 0;

	if ((text = config_dump(t->cfg)) == NULL) {
		fprintf(stderr, "wsrouted: out of memory\n");
		ret = 1;
	} else if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
		fprintf(stderr, "wsrouted: cannot write the configuration: %s\n",
		    strerror(errno));
		ret = 1;
	}
	free(text);
	route_table_unref(t, handler_destroy_instance);
	return ret;
}

static void
apply_server_settings(struct daemon *d, const struct config *cfg)
{
	d->loop.max_connections = cfg->max_connections;
	d->loop.handshake_timeout_ms = cfg->handshake_timeout_ms;
	d->loop.proxy_protocol_timeout_ms = cfg->proxy_protocol_timeout_ms;
	d->loop.max_per_ip = cfg->max_connections_per_ip;
	d->loop.linger_ms = cfg->limits.close_timeout_ms;
	d->loop.drain_window_ms = config_drain_window_ms(cfg);
	d->shutdown_timeout_ms = cfg->shutdown_timeout_ms;
	log_set_level(cfg->log_level);
}

/* libevent's own warnings go through our log, not raw to stderr. */
static void
libevent_log_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("event=libevent msg=\"%s\"", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("event=libevent msg=\"%s\"", msg);
		break;
	case EVENT_LOG_WARN:
		log_warn("event=libevent msg=\"%s\"", msg);
		break;
	default:
		log_error("event=libevent msg=\"%s\"", msg);
		break;
	}
}

static void
on_drained(struct loop *l)
{
	event_base_loopbreak(l->base);
}

static void
shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;

	(void)fd;
	(void)what;
	log_warn("event=shutdown_timeout open=%zu", nconns(d));
	event_base_loopbreak(d->base);
}

/*
 * SIGTERM, SIGINT: drain with 1001 (going away) and exit 0. SIGUSR2: the same
 * with 1012 (service restart) and exit EXIT_RESTART, for a supervisor to
 * start us again. The closes are spread over drain_window; whatever is left
 * at shutdown_timeout is cut. A second signal exits at once.
 */
static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;
	struct timeval	 tv;

	(void)what;
	if (d->stopping++) {
		log_warn("event=shutdown_forced signal=%d open=%zu", (int)sig, nconns(d));
		event_base_loopbreak(d->base);
		return;
	}
	d->stop_started = timer_now_ms();
	d->drain_code = sig == SIGUSR2 ? WS_CLOSE_RESTART : WS_CLOSE_GOING_AWAY;
	d->exit_status = sig == SIGUSR2 ? EXIT_RESTART : 0;
	log_info("event=shutdown signal=%s connections=%zu code=%u drain_window_ms=%llu "
	    "shutdown_timeout_ms=%llu", sig == SIGTERM ? "TERM" : sig == SIGINT ? "INT" :
	    "USR2", nconns(d), d->drain_code,
	    (unsigned long long)d->loop.drain_window_ms,
	    (unsigned long long)d->shutdown_timeout_ms);
	systemd_notify_stopping();
	listeners_close(d->listeners);
	d->listeners = NULL;
	tv.tv_sec = d->shutdown_timeout_ms / 1000;
	tv.tv_usec = (d->shutdown_timeout_ms % 1000) * 1000;
	evtimer_add(d->shutdown_timer, &tv);
	if (d->workers != NULL) {
		d->loop.draining = true;	/* what readiness reads */
		workers_drain(d->workers, d->drain_code);	/* workers_drained() when all are */
	} else
		conn_drain_all(&d->loop, d->drain_code);
	notify_status(d);
}

static void
workers_drained(void *arg)
{
	struct daemon	*d = arg;

	event_base_loopbreak(d->base);
}

/* ", workers 3+2+4": connections per worker thread, for STATUS=. */
static void
format_workers(struct daemon *d, char *buf, size_t cap)
{
	size_t		counts[CONFIG_WORKERS_MAX], len;
	unsigned	i, n;
	int		k;

	buf[0] = '\0';
	if (d->workers == NULL)
		return;
	n = workers_n(d->workers);
	workers_nconns(d->workers, counts, CONFIG_WORKERS_MAX);
	len = (size_t)snprintf(buf, cap, ", workers ");
	for (i = 0; i < n && len < cap; i++) {
		k = snprintf(buf + len, cap - len, "%s%zu", i > 0 ? "+" : "", counts[i]);
		if (k < 0)
			break;
		len += (size_t)k;
	}
}

static double
wall_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * /readyz: ready from READY=1 until shutdown begins. Draining is read from
 * the loop as well as from the signal, so that whatever starts a drain
 * (SIGTERM, or a drain that spreads closes over time) turns readiness off.
 */
static bool
daemon_ready(void *arg, const char **why)
{
	struct daemon	*d = arg;

	if (d->stopping || d->loop.draining) {
		*why = "draining";
		return false;
	}
	if (!d->serving) {
		*why = "starting";
		return false;
	}
	return true;
}

static const struct route_table *
daemon_routes(void *arg)
{
	return ((struct daemon *)arg)->loop.routes;
}

static const struct admin_ops admin_ops = { daemon_ready, daemon_routes };

/* STATUS=: live counts, and the last reload's failure until one succeeds. */
static void
notify_status(struct daemon *d)
{
	char		per[CONFIG_WORKERS_MAX * 8 + 16];
	uint64_t	elapsed, left;

	format_workers(d, per, sizeof(per));
	if (d->stopping) {
		elapsed = timer_now_ms() - d->stop_started;
		left = elapsed < d->shutdown_timeout_ms ? d->shutdown_timeout_ms - elapsed : 0;
		systemd_notify_status("draining, closing with %u: %zu connection(s) left, "
		    "hard close in %llus%s", d->drain_code, nconns(d),
		    (unsigned long long)(left + 999) / 1000, per);
	} else if (d->reload_error[0] != '\0')
		systemd_notify_status("serving %zu connection(s), %zu route(s), %zu "
		    "listener(s)%s; reload failed, serving the previous configuration: %s",
		    nconns(d), d->loop.routes->nroutes,
		    listeners_count(d->listeners), per, d->reload_error);
	else
		systemd_notify_status("serving %zu connection(s), %zu route(s), %zu "
		    "listener(s)%s", nconns(d), d->loop.routes->nroutes,
		    listeners_count(d->listeners), per);
}

static void
status_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify_status(arg);
}

static void
watchdog_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	systemd_notify_watchdog();
}

/* A persistent timer; 0 when period_usec is 0 (not wanted) or it is set up. */
static int
start_periodic(struct daemon *d, struct event **ev, uint64_t period_usec,
    event_callback_fn cb)
{
	struct timeval	tv;

	if (period_usec == 0)
		return 0;
	tv.tv_sec = (time_t)(period_usec / 1000000);
	tv.tv_usec = (suseconds_t)(period_usec % 1000000);
	if ((*ev = event_new(d->base, -1, EV_PERSIST, cb, d)) == NULL ||
	    event_add(*ev, &tv) == -1)
		return -1;
	return 0;
}

static void
reload_failed(struct daemon *d, const char *why)
{
	snprintf(d->reload_error, sizeof(d->reload_error), "%s", why);
	metrics_reload(false, wall_now());
	log_error("event=reload_failed file=%s keeping=previous error=\"%s\"",
	    d->config_path, why);
	systemd_notify_ready(d->loop.routes->nroutes);
	notify_status(d);
}

static int
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Privileges were dropped (or not) at start for good: say so when the file changes them. */
static void
warn_identity_change(const struct config *old, const struct config *new)
{
	if (str_differs(old->user, new->user) || str_differs(old->group, new->group) ||
	    old->allow_root != new->allow_root)
		log_warn("event=reload_partial keys=\"user group allow_root\" "
		    "hint=\"these take effect at the next restart\"");
	if (old->workers != new->workers)
		log_warn("event=reload_partial keys=workers "
		    "hint=\"the number of workers changes at the next restart\"");
}

/* Sockets passed by systemd that no listen line takes: their clients would wait forever. */
static void
warn_unused_passed_sockets(const struct config *cfg)
{
	size_t	i;

	if (systemd_nsockets() == 0)
		return;
	for (i = 0; i < cfg->nlistens; i++) {
		if (cfg->listens[i].kind == LISTEN_SYSTEMD)
			return;
	}
	for (i = 0; i < cfg->admin.nlistens; i++) {
		if (cfg->admin.listens[i].kind == LISTEN_SYSTEMD)
			return;
	}
	log_warn("event=passed_sockets_unused count=%d hint=\"add 'listen = systemd' to "
	    "%s or stop the .socket unit\"", systemd_nsockets(), cfg->file);
}

/*
 * SIGHUP: new connections get the new route table; open connections keep
 * the routes (and handler instances) they started with until they close.
 * A broken config changes nothing.
 */
static void
on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon		*d = arg;
	struct route_table	*t;
	struct admin_pending	*admin = NULL;
	char			*cause = NULL;
	SSL_CTX			*tls = NULL;
	int			 alog = -1;
	size_t			 n;

	(void)sig;
	(void)what;
	if (d->stopping)
		return;
	systemd_notify_reloading();
	log_info("event=reload file=%s", d->config_path);
	/* Workers start and stop with the process: a reload keeps their count. */
	if ((t = load_routes(d->config_path, 0, &tls, d->workers != NULL ?
	    workers_n(d->workers) : 1)) == NULL) {
		reload_failed(d, last_load_error);
		return;
	}
	/*
	 * What can fail goes first and is only committed once all of it worked:
	 * the access log (reopened even when unchanged: logrotate), the new
	 * admin sockets, then the listeners (which commit themselves).
	 */
	if (accesslog_open(t->cfg->access_log, &alog, &cause) == -1 ||
	    admin_prepare(d->admin, t->cfg, &admin, &cause) == -1 ||
	    listeners_reload(&d->loop, &d->listeners, t->cfg, &cause) == -1) {
		log_error("event=config_error error=\"%s\"", cause ? cause : "out of memory");
		reload_failed(d, cause ? cause : "out of memory");
		free(cause);
		admin_abort(admin);
		accesslog_abort(alog);
		route_table_unref(t, handler_destroy_instance);
		SSL_CTX_free(tls);
		return;
	}
	accesslog_commit(t->cfg->access_log, alog, t->cfg->log_format);
	admin_commit(d->admin, admin);
	metrics_reload(true, wall_now());
	d->reload_error[0] = '\0';
	report_lint(t->cfg, 0);
	warn_identity_change(d->loop.routes->cfg, t->cfg);
	route_table_unref(d->loop.routes, handler_destroy_instance);
	d->loop.routes = t;
	/* New handshakes get the new certificate; open TLS connections hold theirs. */
	if (tls != NULL) {
		SSL_CTX_free(d->loop.tls_ctx);
		d->loop.tls_ctx = tls;
		log_info("event=tls_reloaded certificate=%s", t->cfg->tls.certificate.v);
	} else if (d->loop.tls_ctx != NULL)
		log_warn("event=reload_warning reason=\"no [tls] section: TLS listeners keep "
		    "the previous certificate until a restart\"");
	apply_server_settings(d, t->cfg);
	/* Each worker takes its own references; its queue orders it before later accepts. */
	if (d->workers != NULL)
		workers_reload(d->workers, t, tls);
	/* The connections of routes this config no longer has go, spread out. */
	if ((n = conn_drain_removed_routes(&d->loop, t)) > 0)
		log_info("event=route_drain connections=%zu code=%u drain_window_ms=%llu", n,
		    WS_CLOSE_GOING_AWAY, (unsigned long long)d->loop.drain_window_ms);
	log_info("event=reloaded routes=%zu listeners=%zu", t->nroutes,
	    listeners_count(d->listeners));
	systemd_notify_ready(t->nroutes);
	notify_status(d);
}

static void
block_stop_signals(void)
{
	sigset_t	set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "test",	no_argument,		NULL, 't' },
		{ "test-dump",	no_argument,		NULL, 'T' },
		{ "version",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon		 d;
	struct route_table	*t;
	struct admin_pending	*admin = NULL;
	SSL_CTX			*tls = NULL;
	int			 alog = -1;
	struct event		*sigterm, *sigint, *sighup, *sigusr2;
	struct privdrop		 pd;
	char			*cause = NULL;
	int			 ch, rc, test_only = 0;
	unsigned		 nworkers;

	memset(&d, 0, sizeof(d));
	d.config_path = DEFAULT_CONFIG;
	metrics_set_start_time(wall_now());
	while ((ch = getopt_long(argc, argv, "c:tTvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		case 'T':
			test_only = 2;
			break;
		case 'v':
			printf("wsrouted %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init(LOG_LVL_INFO);
	if ((t = load_routes(d.config_path, 1, &tls, 0)) == NULL)
		return 1;
	/* -t and -T print the warnings; the daemon logs them (journald priority). */
	report_lint(t->cfg, test_only != 0);
	if (test_only == 2)
		return dump_config(t);
	if (test_only) {
		/*
		 * The access log is opened as the daemon will (as root, before
		 * any privilege drop): a path it cannot write is an error now,
		 * not at the next start.
		 */
		rc = 0;
		if (accesslog_open(t->cfg->access_log, &alog, &cause) == -1) {
			fprintf(stderr, "wsrouted: %s\n", cause ? cause : "out of memory");
			free(cause);
			rc = 1;
		} else {
			if (alog != -1)
				close(alog);
			printf("wsrouted: configuration file %s test is successful\n",
			    d.config_path);
		}
		SSL_CTX_free(tls);
		route_table_unref(t, handler_destroy_instance);
		return rc;
	}

	/* Before binding: a refusal must not leave a port half-served. */
	if (privdrop_prepare(t->cfg, &pd, &cause) == -1 ||
	    systemd_take_sockets(&cause) == -1) {
		fprintf(stderr, "wsrouted: %s\n", cause ? cause : "out of memory");
		free(cause);
		route_table_unref(t, handler_destroy_instance);
		return 1;
	}

	signal(SIGPIPE, SIG_IGN);
	/*
	 * exec reaps each child through its pidfd with waitpid(pid): an
	 * inherited SIG_IGN would have the kernel reap them first (ECHILD).
	 */
	signal(SIGCHLD, SIG_DFL);
	event_set_log_callback(libevent_log_cb);
	if ((d.base = event_base_new()) == NULL || loop_init(&d.loop, d.base) == -1) {
		log_error("event=startup_failed error=\"cannot create the event loop\"");
		return 1;
	}
	handler_set_event_base(d.base);
	if (handle_init(d.base) == -1) {
		log_error("event=startup_failed error=\"cannot create the handle eventfd\"");
		return 1;
	}
	d.loop.routes = t;
	d.loop.tls_ctx = tls;
	d.loop.on_drained = on_drained;
	apply_server_settings(&d, t->cfg);
	d.shutdown_timer = evtimer_new(d.base, shutdown_timeout_cb, &d);
	sigterm = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	sigint = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	sighup = evsignal_new(d.base, SIGHUP, on_reload_signal, &d);
	sigusr2 = evsignal_new(d.base, SIGUSR2, on_stop_signal, &d);
	if (d.shutdown_timer == NULL || sigterm == NULL || sigint == NULL || sighup == NULL ||
	    sigusr2 == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1 || evsignal_add(sighup, NULL) == -1 ||
	    evsignal_add(sigusr2, NULL) == -1) {
		log_error("event=startup_failed error=\"cannot install signal handlers\"");
		return 1;
	}
	/*
	 * Before the privilege drop: the access log file may be root's, an
	 * admin unix socket may live in a root-owned directory.
	 */
	if ((d.admin = admin_new(d.base, &admin_ops, &d)) == NULL ||
	    accesslog_open(t->cfg->access_log, &alog, &cause) == -1 ||
	    admin_prepare(d.admin, t->cfg, &admin, &cause) == -1) {
		log_error("event=startup_failed error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	accesslog_commit(t->cfg->access_log, alog, t->cfg->log_format);
	admin_commit(d.admin, admin);
	/* Only now: a client may connect (and a supervisor signal us) the moment we listen. */
	if ((d.listeners = listeners_open(&d.loop, t->cfg, &cause)) == NULL) {
		log_error("event=startup_failed error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	warn_unused_passed_sockets(t->cfg);
	if (privdrop_apply(&pd, &cause) == -1) {
		log_error("event=startup_failed error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	if (pd.active)
		log_info("event=privileges_dropped uid=%ld gid=%ld", (long)pd.uid, (long)pd.gid);
	/* After the privilege drop: threads then start with the final identity. */
	/* As many as the instances were made for (workers = auto counted once). */
	nworkers = t->nloops;
	if (nworkers > 1 &&
	    (d.workers = workers_start(nworkers, &d.loop, workers_drained, &d, &cause)) == NULL) {
		log_error("event=startup_failed error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	if (start_periodic(&d, &d.status_timer, STATUS_PERIOD_MS * 1000ULL, status_timer_cb) == -1 ||
	    start_periodic(&d, &d.watchdog_timer, systemd_watchdog_interval_usec(),
	    watchdog_timer_cb) == -1) {
		log_error("event=startup_failed error=\"cannot create the status timers\"");
		return 1;
	}
	log_info("event=started version=%s config=%s routes=%zu pid=%ld", PACKAGE_VERSION,
	    d.config_path, t->nroutes, (long)getpid());
	systemd_notify_ready(t->nroutes);
	d.serving = true;
	notify_status(&d);
	if (systemd_watchdog_interval_usec() != 0)
		systemd_notify_watchdog();

	event_base_dispatch(d.base);

	/*
	 * Freeing the signal events below restores the default actions: a stop
	 * signal arriving during the rest of the teardown would then kill us
	 * with its signal instead of the exit status already decided. Blocked,
	 * it stays pending and dies with the process.
	 */
	block_stop_signals();
	log_info("event=stopped open=%zu exit=%d", nconns(&d), d.exit_status);
	listeners_close(d.listeners);
	workers_stop(d.workers);	/* joins: each drops its connections on its thread */
	d.workers = NULL;
	admin_free(d.admin);
	loop_free(&d.loop);
	exec_thread_end();
	SSL_CTX_free(d.loop.tls_ctx);
	route_table_unref(d.loop.routes, handler_destroy_instance);
	handle_shutdown();	/* after destroy(): plugin threads are gone */
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_free(sigusr2);
	event_free(d.shutdown_timer);
	if (d.status_timer != NULL)
		event_free(d.status_timer);
	if (d.watchdog_timer != NULL)
		event_free(d.watchdog_timer);
	event_base_free(d.base);
	return d.exit_status;
}
