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
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "handler.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "systemd.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/wsrouted/wsrouted.ini"

struct daemon {
	const char		*config_path;
	struct event_base	*base;
	struct loop		 loop;
	struct listener		*listeners;
	struct event		*shutdown_timer;
	uint64_t		 shutdown_timeout_ms;
	int			 stopping;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: wsrouted [-t] [-c FILE]\n"
	    "\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -t, --test         check the configuration and exit (0: valid, 1: errors)\n"
	    "  -v, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT close every\n"
	    "connection with 1001 and exit.\n");
}

static void
print_errors(struct config_errors *errs)
{
	size_t	i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "wsrouted: %s\n", errs->msgs[i]);
}

/* Loads and binds a config: the route table with its handler instances. */
static struct route_table *
load_routes(const char *path, int to_stderr)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;
	struct route_table	*t;
	char			*cause = NULL;
	size_t			 i;

	if ((cfg = config_load(path, &errs)) == NULL) {
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
	} else if (handler_bind_routes(t, &cause) == -1) {
		route_table_unref(t, NULL);
		t = NULL;
	}
	if (t == NULL) {
		if (to_stderr)
			fprintf(stderr, "wsrouted: %s\n", cause ? cause : "out of memory");
		else
			log_error("event=config_error error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
	}
	return t;
}

static void
apply_server_settings(struct daemon *d, const struct config *cfg)
{
	d->loop.max_connections = cfg->max_connections;
	d->loop.handshake_timeout_ms = cfg->handshake_timeout_ms;
	d->loop.linger_ms = cfg->limits.close_timeout_ms;
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
	log_warn("event=shutdown_timeout open=%zu", d->loop.nconns);
	event_base_loopbreak(d->base);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon	*d = arg;
	struct timeval	 tv;

	(void)what;
	if (d->stopping++) {
		log_warn("event=shutdown_forced signal=%d", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	log_info("event=shutdown signal=%s connections=%zu",
	    sig == SIGTERM ? "TERM" : "INT", d->loop.nconns);
	systemd_notify_stopping();
	listeners_close(d->listeners);
	d->listeners = NULL;
	tv.tv_sec = d->shutdown_timeout_ms / 1000;
	tv.tv_usec = (d->shutdown_timeout_ms % 1000) * 1000;
	evtimer_add(d->shutdown_timer, &tv);
	conn_drain_all(&d->loop);
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

	(void)sig;
	(void)what;
	if (d->stopping)
		return;
	systemd_notify_reloading();
	log_info("event=reload file=%s", d->config_path);
	if ((t = load_routes(d->config_path, 0)) == NULL) {
		log_error("event=reload_failed file=%s keeping=previous", d->config_path);
		systemd_notify_ready(d->loop.routes->nroutes);
		systemd_notify_status("reload failed, serving the previous configuration");
		return;
	}
	/* Listeners are not re-bound yet: that needs a restart for now. */
	route_table_unref(d->loop.routes, handler_destroy_instance);
	d->loop.routes = t;
	apply_server_settings(d, t->cfg);
	log_info("event=reloaded routes=%zu", t->nroutes);
	systemd_notify_ready(t->nroutes);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "test",	no_argument,		NULL, 't' },
		{ "version",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct daemon		 d;
	struct route_table	*t;
	struct event		*sigterm, *sigint, *sighup;
	char			*cause = NULL;
	int			 ch, test_only = 0;

	memset(&d, 0, sizeof(d));
	d.config_path = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:tvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			test_only = 1;
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
	if ((t = load_routes(d.config_path, 1)) == NULL)
		return 1;
	if (test_only) {
		printf("wsrouted: configuration file %s test is successful\n", d.config_path);
		route_table_unref(t, handler_destroy_instance);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
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
	d.loop.on_drained = on_drained;
	apply_server_settings(&d, t->cfg);
	d.shutdown_timer = evtimer_new(d.base, shutdown_timeout_cb, &d);
	sigterm = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
	sigint = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
	sighup = evsignal_new(d.base, SIGHUP, on_reload_signal, &d);
	if (d.shutdown_timer == NULL || sigterm == NULL || sigint == NULL || sighup == NULL ||
	    evsignal_add(sigterm, NULL) == -1 || evsignal_add(sigint, NULL) == -1 ||
	    evsignal_add(sighup, NULL) == -1) {
		log_error("event=startup_failed error=\"cannot install signal handlers\"");
		return 1;
	}
	/* Only now: a client may connect (and a supervisor signal us) the moment we listen. */
	if ((d.listeners = listeners_open(&d.loop, t->cfg, &cause)) == NULL) {
		log_error("event=startup_failed error=\"%s\"", cause ? cause : "out of memory");
		free(cause);
		return 1;
	}
	log_info("event=started version=%s config=%s routes=%zu pid=%ld", PACKAGE_VERSION,
	    d.config_path, t->nroutes, (long)getpid());
	systemd_notify_ready(t->nroutes);

	event_base_dispatch(d.base);

	log_info("event=stopped open=%zu", d.loop.nconns);
	listeners_close(d.listeners);
	loop_free(&d.loop);
	route_table_unref(d.loop.routes, handler_destroy_instance);
	handle_shutdown();	/* after destroy(): plugin threads are gone */
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	event_free(d.shutdown_timer);
	event_base_free(d.base);
	return 0;
}
