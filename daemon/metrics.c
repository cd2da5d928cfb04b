/*
 * metrics.c — see metrics.h. The exposition is written by hand: the format
 * is a few printf lines per family, and Debian has no C Prometheus client
 * library (libprom is not packaged).
 */
#include "build-config.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "metrics.h"
#include "route.h"

static pthread_mutex_t	 reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics	*loops;		/* guarded by reg_lock */
static unsigned		 next_worker;	/* guarded by reg_lock */

/* Daemon-wide (main thread: reloads and scrapes both run there). */
static struct {
	uint64_t	reloads_ok;
	uint64_t	reloads_failed;
	bool		last_ok;
	double		last_ok_time;
	double		start_time;
} daemon_m = { 0, 0, true, 0, 0 };

static const unsigned	rtt_bounds_us[METRICS_RTT_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000,
};
static const int	hs_codes[METRICS_HS_SLOTS - 1] = {
	101, 400, 403, 404, 405, 426, 431, 500, 503,
};
static const char *const closed_by_names[CLOSED_BY_N] = {
	[CLOSED_BY_NONE] = "unknown",
	[CLOSED_BY_SERVER] = "server",
	[CLOSED_BY_CLIENT] = "client",
	[CLOSED_BY_ABORT] = "abort",
	[CLOSED_BY_TIMEOUT] = "timeout",
};

/* Everything after path is a uint64_t counter: summed as an array. */
#define RM_FIRST	offsetof(struct route_metrics, open)
#define RM_COUNT	((sizeof(struct route_metrics) - RM_FIRST) / sizeof(uint64_t))
_Static_assert((sizeof(struct route_metrics) - offsetof(struct route_metrics, open)) %
    sizeof(uint64_t) == 0, "struct route_metrics: only uint64_t after path");

void
metrics_register(struct metrics *m)
{
	struct metrics	**pp;

	pthread_mutex_lock(&reg_lock);
	m->worker = next_worker++;
	/* At the tail: workers are listed in their order. */
	for (pp = &loops; *pp != NULL; pp = &(*pp)->next_loop)
		/* nothing */;
	m->next_loop = NULL;
	*pp = m;
	pthread_mutex_unlock(&reg_lock);
}

void
metrics_unregister(struct metrics *m)
{
	struct metrics		**pp;
	struct route_metrics	*rm, *next;

	pthread_mutex_lock(&reg_lock);
	for (pp = &loops; *pp != NULL; pp = &(*pp)->next_loop) {
		if (*pp == m) {
			*pp = m->next_loop;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	for (rm = m->routes; rm != NULL; rm = next) {
		next = rm->next;
		free(rm->path);
		free(rm);
	}
	m->routes = NULL;
	free(m->by_route);
	m->by_route = NULL;
	m->nby_route = 0;
}

static struct route_metrics *
find_or_create(struct metrics *m, const char *path)
{
	struct route_metrics	*rm;

	for (rm = m->routes; rm != NULL; rm = rm->next) {
		if (strcmp(rm->path, path) == 0)
			return rm;
	}
	if ((rm = calloc(1, sizeof(*rm))) == NULL)
		return NULL;
	if ((rm->path = strdup(path)) == NULL) {
		free(rm);
		return NULL;
	}
	rm->next = m->routes;
	/* Release: a scrape that sees rm sees its path and zeroed counters. */
	__atomic_store_n(&m->routes, rm, __ATOMIC_RELEASE);
	return rm;
}

struct route_metrics *
metrics_route(struct metrics *m, const struct route_table *t, const struct route *r)
{
	struct route_metrics	**map;
	size_t			  i = (size_t)(r - t->routes);

	/*
	 * The map is for whichever table was current when it was filled; an
	 * entry is right for t when its path is r's (entries are keyed by path).
	 */
	if (i < m->nby_route && m->by_route[i] != NULL &&
	    strcmp(m->by_route[i]->path, r->conf->path) == 0)
		return m->by_route[i];
	if (t->nroutes > m->nby_route) {
		if ((map = realloc(m->by_route, t->nroutes * sizeof(*map))) == NULL)
			return find_or_create(m, r->conf->path);
		memset(map + m->nby_route, 0, (t->nroutes - m->nby_route) * sizeof(*map));
		m->by_route = map;
		m->nby_route = t->nroutes;
	}
	return m->by_route[i] = find_or_create(m, r->conf->path);
}

int
metrics_close_slot(unsigned code)
{
	if (code >= 1000 && code <= 1015)
		return (int)(code - 1000);
	if (code >= 3000 && code <= 3999)
		return 16;
	if (code >= 4000 && code <= 4999)
		return 17;
	return 18;
}

static const char *
close_slot_name(int slot, char *buf, size_t len)
{
	if (slot < 16)
		snprintf(buf, len, "%d", 1000 + slot);
	else
		snprintf(buf, len, "%s", slot == 16 ? "3xxx" : slot == 17 ? "4xxx" : "other");
	return buf;
}

int
metrics_hs_slot(int status)
{
	int	i;

	for (i = 0; i < METRICS_HS_SLOTS - 1; i++) {
		if (hs_codes[i] == status)
			return i;
	}
	return METRICS_HS_SLOTS - 1;
}

void
metrics_rtt_observe(struct route_metrics *rm, uint64_t rtt_ms)
{
	int	i;

	for (i = 0; i < METRICS_RTT_BUCKETS; i++) {
		if (rtt_ms * 1000 <= rtt_bounds_us[i]) {
			METRIC_ADD(rm->rtt[i], 1);
			break;
		}
	}
	/* Above the last bound: only in +Inf, i.e. in the count. */
	METRIC_ADD(rm->rtt_sum_ms, rtt_ms);
	METRIC_ADD(rm->rtt_count, 1);
}

void
metrics_reload(bool ok, double when)
{
	if (ok) {
		daemon_m.reloads_ok++;
		daemon_m.last_ok_time = when;
	} else
		daemon_m.reloads_failed++;
	daemon_m.last_ok = ok;
}

void
metrics_set_start_time(double when)
{
	daemon_m.start_time = when;
	daemon_m.last_ok_time = when;
}

/* ---- rendering ----------------------------------------------------------- */

/* One route's counters summed over every loop (reg_lock held). */
struct agg {
	const char		*path;
	char			 label[512];	/* escaped */
	struct route_metrics	 sum;
};

static void
rm_add(struct route_metrics *dst, const struct route_metrics *src)
{
	uint64_t	*d = (uint64_t *)((char *)dst + RM_FIRST);
	const uint64_t	*s = (const uint64_t *)((const char *)src + RM_FIRST);
	size_t		 i;

	for (i = 0; i < RM_COUNT; i++)
		d[i] += __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

static int
agg_cmp(const void *a, const void *b)
{
	return strcmp(((const struct agg *)a)->path, ((const struct agg *)b)->path);
}

/* The entry for path in a[0..*n), added (zeroed) when missing; NULL: no memory. */
static struct agg *
agg_get(struct agg **a, size_t *n, size_t *cap, const char *path)
{
	struct agg	*grown;
	size_t		 i;

	for (i = 0; i < *n; i++)
		if (strcmp((*a)[i].path, path) == 0)
			return &(*a)[i];
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		if ((grown = realloc(*a, *cap * sizeof(**a))) == NULL)
			return NULL;
		*a = grown;
	}
	memset(&(*a)[i], 0, sizeof((*a)[i]));
	(*a)[i].path = path;
	esc_prom_label((*a)[i].label, sizeof((*a)[i].label), path, strlen(path), NULL);
	(*n)++;
	return &(*a)[i];
}

/*
 * Every route path of t (so that a route has its series, at 0, from the
 * start) and every path any loop has counted, with the sums over the loops;
 * sorted by path. NULL with *n 0 when there is none or no memory.
 */
static struct agg *
aggregate(const struct route_table *t, size_t *n)
{
	struct metrics		*m;
	struct route_metrics	*rm;
	struct agg		*a = NULL, *e;
	size_t			 i, cap = 0;

	*n = 0;
	for (i = 0; t != NULL && i < t->nroutes; i++)
		if (agg_get(&a, n, &cap, t->routes[i].conf->path) == NULL)
			goto nomem;
	for (m = loops; m != NULL; m = m->next_loop) {
		for (rm = __atomic_load_n(&m->routes, __ATOMIC_ACQUIRE); rm != NULL;
		    rm = rm->next) {
			if ((e = agg_get(&a, n, &cap, rm->path)) == NULL)
				goto nomem;
			rm_add(&e->sum, rm);
		}
	}
	if (*n > 1)
		qsort(a, *n, sizeof(*a), agg_cmp);
	return a;
nomem:
	free(a);
	*n = 0;
	return NULL;
}

static bool
loop_has(const struct metrics *m, const char *path)
{
	const struct route_metrics	*rm;

	for (rm = __atomic_load_n(&m->routes, __ATOMIC_ACQUIRE); rm != NULL; rm = rm->next)
		if (strcmp(rm->path, path) == 0)
			return true;
	return false;
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A per-route counter family: one sample per route. */
static void
route_counter(FILE *f, const struct agg *a, size_t n, const char *name, const char *help,
    size_t off)
{
	size_t	i;

	family(f, name, "counter", help);
	for (i = 0; i < n; i++)
		fprintf(f, "%s{route=\"%s\"} %llu\n", name, a[i].label, (unsigned long long)
		    *(const uint64_t *)((const char *)&a[i].sum + off));
}

static void
render_routes(FILE *f, const struct agg *a, size_t n)
{
	char		 code[16];
	uint64_t	 cum;
	size_t		 i;
	int		 s, b;

	route_counter(f, a, n, "wsrouted_messages_received_total",
	    "WebSocket messages received (whole messages, after reassembly).",
	    offsetof(struct route_metrics, msgs_in));
	route_counter(f, a, n, "wsrouted_messages_sent_total",
	    "WebSocket data messages sent by handlers.",
	    offsetof(struct route_metrics, msgs_out));
	route_counter(f, a, n, "wsrouted_received_bytes_total",
	    "Bytes read from upgraded connections (frames; TLS: decrypted).",
	    offsetof(struct route_metrics, bytes_in));
	route_counter(f, a, n, "wsrouted_sent_bytes_total",
	    "Bytes written to upgraded connections (the 101 answer and frames; TLS: before encryption).",
	    offsetof(struct route_metrics, bytes_out));

	family(f, "wsrouted_close_frames_sent_total", "counter",
	    "Close frames sent, by close code (1005: a close without a code).");
	for (i = 0; i < n; i++)
		for (s = 0; s < METRICS_CLOSE_SLOTS; s++)
			if (a[i].sum.close_sent[s] != 0)
				fprintf(f, "wsrouted_close_frames_sent_total{route=\"%s\",code=\"%s\"} "
				    "%llu\n", a[i].label, close_slot_name(s, code, sizeof(code)),
				    (unsigned long long)a[i].sum.close_sent[s]);
	family(f, "wsrouted_close_frames_received_total", "counter",
	    "Close frames received, by close code (1005: a close without a code).");
	for (i = 0; i < n; i++)
		for (s = 0; s < METRICS_CLOSE_SLOTS; s++)
			if (a[i].sum.close_rcvd[s] != 0)
				fprintf(f, "wsrouted_close_frames_received_total{route=\"%s\","
				    "code=\"%s\"} %llu\n", a[i].label,
				    close_slot_name(s, code, sizeof(code)),
				    (unsigned long long)a[i].sum.close_rcvd[s]);
	family(f, "wsrouted_connections_closed_total", "counter",
	    "Upgraded connections closed, by who ended them.");
	for (i = 0; i < n; i++)
		for (s = CLOSED_BY_SERVER; s < CLOSED_BY_N; s++)
			fprintf(f, "wsrouted_connections_closed_total{route=\"%s\",closed_by=\"%s\"} "
			    "%llu\n", a[i].label, closed_by_names[s],
			    (unsigned long long)a[i].sum.closed[s]);

	family(f, "wsrouted_ping_rtt_seconds", "histogram",
	    "Time from our ping to the peer's pong (millisecond resolution).");
	for (i = 0; i < n; i++) {
		for (b = 0, cum = 0; b < METRICS_RTT_BUCKETS; b++) {
			cum += a[i].sum.rtt[b];
			fprintf(f, "wsrouted_ping_rtt_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
			    a[i].label, rtt_bounds_us[b] / 1e6, (unsigned long long)cum);
		}
		fprintf(f, "wsrouted_ping_rtt_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    a[i].label, (unsigned long long)a[i].sum.rtt_count);
		fprintf(f, "wsrouted_ping_rtt_seconds_sum{route=\"%s\"} %.3f\n", a[i].label,
		    a[i].sum.rtt_sum_ms / 1000.0);
		fprintf(f, "wsrouted_ping_rtt_seconds_count{route=\"%s\"} %llu\n", a[i].label,
		    (unsigned long long)a[i].sum.rtt_count);
	}

	route_counter(f, a, n, "wsrouted_slow_consumer_closes_total",
	    "Broadcast receivers closed (1008) for falling max_queue messages behind.",
	    offsetof(struct route_metrics, slow_closed));
	route_counter(f, a, n, "wsrouted_slow_consumer_skipped_messages_total",
	    "Broadcast messages a slow receiver missed (overflow = skip).",
	    offsetof(struct route_metrics, slow_skipped));
	route_counter(f, a, n, "wsrouted_handler_errors_total",
	    "Handler (built-in or plugin) failures: on_open answered 500, or a close with 1011.",
	    offsetof(struct route_metrics, handler_errors));
}

static void
render_loops(FILE *f, const struct agg *a, size_t n)
{
	struct metrics		*m;
	struct route_metrics	*rm;
	char			 label[512];
	uint64_t		 hs[METRICS_HS_SLOTS] = { 0 }, accepted = 0, ok = 0, failed = 0;
	int			 s;

	family(f, "wsrouted_connections", "gauge",
	    "Upgraded WebSocket connections open now, by route and worker.");
	for (m = loops; m != NULL; m = m->next_loop) {
		for (rm = __atomic_load_n(&m->routes, __ATOMIC_ACQUIRE); rm != NULL;
		    rm = rm->next) {
			esc_prom_label(label, sizeof(label), rm->path, strlen(rm->path), NULL);
			fprintf(f, "wsrouted_connections{route=\"%s\",worker=\"%u\"} %llu\n",
			    label, m->worker, (unsigned long long)METRIC_LOAD(rm->open));
		}
		/* Routes this loop has not served yet (a has the current table's). */
		for (s = 0; (size_t)s < n; s++)
			if (!loop_has(m, a[s].path))
				fprintf(f, "wsrouted_connections{route=\"%s\",worker=\"%u\"} 0\n",
				    a[s].label, m->worker);
		accepted += METRIC_LOAD(m->accepted);
		for (s = 0; s < METRICS_HS_SLOTS; s++)
			hs[s] += METRIC_LOAD(m->handshakes[s]);
		ok += METRIC_LOAD(m->tls_ok);
		failed += METRIC_LOAD(m->tls_failed);
	}
	family(f, "wsrouted_connections_accepted_total", "counter",
	    "Connections accepted on the listeners (before any handshake).");
	fprintf(f, "wsrouted_connections_accepted_total %llu\n", (unsigned long long)accepted);
	family(f, "wsrouted_handshakes_total", "counter",
	    "HTTP answers to upgrade requests, by status (101: upgraded).");
	for (s = 0; s < METRICS_HS_SLOTS; s++) {
		if (s < METRICS_HS_SLOTS - 1)
			fprintf(f, "wsrouted_handshakes_total{code=\"%d\"} %llu\n", hs_codes[s],
			    (unsigned long long)hs[s]);
		else
			fprintf(f, "wsrouted_handshakes_total{code=\"other\"} %llu\n",
			    (unsigned long long)hs[s]);
	}
	family(f, "wsrouted_tls_handshakes_total", "counter",
	    "TLS handshakes, completed or failed (errors, timeouts, peers leaving).");
	fprintf(f, "wsrouted_tls_handshakes_total{result=\"ok\"} %llu\n", (unsigned long long)ok);
	fprintf(f, "wsrouted_tls_handshakes_total{result=\"failed\"} %llu\n",
	    (unsigned long long)failed);
}

/* /proc/self/stat: utime, stime (ticks), vsize (bytes), rss (pages); -1 if unreadable. */
static int
proc_stat(double *cpu, double *vsize, double *rss)
{
	unsigned long long	 v[22];
	char			 buf[1024], *p, *end;
	FILE			*fp;
	size_t			 n;
	int			 i;

	if ((fp = fopen("/proc/self/stat", "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields start after the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p += 2;		/* ") " then field 3, the state */
	if (*p == '\0')
		return -1;
	p++;
	for (i = 0; i < 22; i++) {
		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	/* v[0] is field 4; utime 14, stime 15, vsize 23, rss 24. */
	*cpu = (double)(v[10] + v[11]) / (double)sysconf(_SC_CLK_TCK);
	*vsize = (double)v[19];
	*rss = (double)v[20] * (double)sysconf(_SC_PAGESIZE);
	return 0;
}

static long
open_fds(void)
{
	DIR		*d;
	struct dirent	*e;
	long		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* the directory's own descriptor */
}

static void
render_process(FILE *f)
{
	struct rlimit	rl;
	double		cpu, vsize, rss;
	long		fds;

	family(f, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch in seconds.");
	fprintf(f, "process_start_time_seconds %.3f\n", daemon_m.start_time);
	if (proc_stat(&cpu, &vsize, &rss) == 0) {
		family(f, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		fprintf(f, "process_cpu_seconds_total %.2f\n", cpu);
		family(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
		fprintf(f, "process_virtual_memory_bytes %.0f\n", vsize);
		family(f, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.");
		fprintf(f, "process_resident_memory_bytes %.0f\n", rss);
	}
	if ((fds = open_fds()) >= 0) {
		family(f, "process_open_fds", "gauge", "Number of open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		family(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

int
metrics_render(FILE *f, const struct route_table *t)
{
	struct agg	*a;
	size_t		 n;

	family(f, "wsrouted_build_info", "gauge", "The version of the running daemon.");
	fprintf(f, "wsrouted_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);

	pthread_mutex_lock(&reg_lock);
	a = aggregate(t, &n);
	render_loops(f, a, n);
	render_routes(f, a, n);
	pthread_mutex_unlock(&reg_lock);
	free(a);

	family(f, "wsrouted_config_reloads_total", "counter",
	    "Configuration reloads (SIGHUP), by result.");
	fprintf(f, "wsrouted_config_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)daemon_m.reloads_ok);
	fprintf(f, "wsrouted_config_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)daemon_m.reloads_failed);
	family(f, "wsrouted_config_last_reload_successful", "gauge",
	    "1 when the last configuration load succeeded, 0 when the daemon runs an older one.");
	fprintf(f, "wsrouted_config_last_reload_successful %d\n", daemon_m.last_ok ? 1 : 0);
	family(f, "wsrouted_config_last_reload_success_timestamp_seconds", "gauge",
	    "When the configuration in use was loaded, since the Unix epoch.");
	fprintf(f, "wsrouted_config_last_reload_success_timestamp_seconds %.3f\n",
	    daemon_m.last_ok_time);
	render_process(f);
	return ferror(f) ? -1 : 0;
}
