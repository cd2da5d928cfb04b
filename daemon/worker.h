/*
 * worker.h — workers = N > 1: N threads, each with its own event_base and
 * struct loop (wheel, read buffer, connections). The listeners stay on the
 * main thread's loop (the acceptor), which hands each accepted fd to a
 * worker through that worker's queue (the memcached model); reloads, the
 * drain and cross-worker broadcast travel through the same queues. A
 * connection is only ever touched by its own worker.
 */
#ifndef WSR_WORKER_H
#define WSR_WORKER_H

#include <stddef.h>

#include <openssl/ssl.h>

struct loop;
struct route_table;
struct workers;

/*
 * The worker count `workers = configured` means: configured itself, or for
 * auto (0) the CPUs in our affinity mask, capped.
 */
unsigned	workers_for(int configured);
/*
 * Starts n threads serving connections accepted on acceptor's listeners,
 * with acceptor's route table, TLS context and settings (each worker takes
 * its own references). on_drained(arg) runs on the main thread once every
 * worker has drained after workers_drain(). NULL with *cause on failure.
 */
struct workers	*workers_start(unsigned n, struct loop *acceptor,
		    void (*on_drained)(void *), void *arg, char **cause);
/* SIGHUP succeeded: t (and tls, when not NULL) and the acceptor's settings to every worker. */
void		 workers_reload(struct workers *ws, struct route_table *t, SSL_CTX *tls);
/* SIGTERM: every worker runs conn_drain_all on its loop. */
void		 workers_drain(struct workers *ws, uint16_t code);
/* Stops every thread (dropping what is left), joins them and frees ws. */
void		 workers_stop(struct workers *ws);
/* Connections across all workers; per worker into counts[0..n-1] when not NULL. */
size_t		 workers_nconns(struct workers *ws, size_t *counts, size_t n);
unsigned	 workers_n(const struct workers *ws);

#endif
