/*
 * transport.h — the byte stream under wsrouted-cli: a non-blocking TCP
 * socket, optionally wrapped in TLS (OpenSSL), plus the clock and the
 * signal-aware poll the client's loops wait in.
 */
#ifndef WSC_TRANSPORT_H
#define WSC_TRANSPORT_H

#include <sys/types.h>

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

enum io_status {
	IO_OK,
	IO_TIMEOUT,	/* the deadline passed */
	IO_SIGNAL,	/* SIGINT or SIGTERM arrived (see io_take_signal) */
	IO_FAIL,	/* t->err says why */
};

struct transport {
	int		 fd;
	SSL_CTX		*ctx;
	SSL		*ssl;
	bool		 read_wants_write;	/* TLS: SSL_read needs the socket writable */
	bool		 write_wants_read;	/* TLS: SSL_write needs the socket readable */
	size_t		 write_retry;		/* TLS: length of a write to repeat, else 0 */
	char		 err[256];		/* last error, for the user */
};

struct tls_options {
	const char	*cacert;	/* NULL: the system's default verify paths */
	bool		 insecure;	/* no certificate or host name verification */
	bool		 verbose;
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t		 io_now(void);

/* Blocks SIGINT/SIGTERM outside io_poll, which alone lets them in; ignores SIGPIPE. */
void		 io_signals_init(void);
/* The signal number caught since the last call, or 0. */
int		 io_take_signal(void);

/*
 * poll(2) until deadline (ms on the io_now clock; -1: none), or 0 ms when
 * now is true. Returns IO_OK (revents set, maybe none), IO_TIMEOUT,
 * IO_SIGNAL, or IO_FAIL.
 */
enum io_status	 io_poll(struct pollfd *fds, nfds_t n, int64_t deadline, bool now);

void		 transport_init(struct transport *t);

/*
 * Resolves host (getaddrinfo, not bounded by the deadline) and connects to
 * its addresses in turn, non-blocking, until one answers or the deadline
 * passes. The socket stays non-blocking, with TCP_NODELAY.
 */
enum io_status	 transport_connect(struct transport *t, const char *host, uint16_t port,
		    int64_t deadline, bool verbose);

/* TLS client handshake with SNI (for names) and verification of host. */
enum io_status	 transport_tls(struct transport *t, const char *host, bool host_is_ip,
		    const struct tls_options *o, int64_t deadline);

/*
 * One non-blocking read or write: > 0 bytes, 0 end of stream (read only),
 * -1 would block, -2 error (t->err).
 */
ssize_t		 transport_read(struct transport *t, void *buf, size_t n);
ssize_t		 transport_write(struct transport *t, const void *buf, size_t n);

/* Decrypted bytes are waiting inside the TLS layer (poll would not say so). */
bool		 transport_pending(const struct transport *t);

/* poll events to ask for, given what the caller wants to do. */
short		 transport_events(const struct transport *t, bool want_read, bool want_write);

/* Ends our sending direction: TLS close_notify, or shutdown(SHUT_WR). */
void		 transport_shutdown(struct transport *t);

void		 transport_close(struct transport *t);

#endif
