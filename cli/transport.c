/*
 * transport.c — TCP and TLS for wsrouted-cli. Everything is non-blocking and
 * every wait goes through io_poll with a deadline, so no step can hang.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "transport.h"

/* One TLS record at most per SSL_write, so a retry can repeat it exactly. */
#define TLS_WRITE_MAX	16384

static volatile sig_atomic_t	caught;
static sigset_t			poll_mask;	/* the mask while in ppoll */

int64_t
io_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_signal(int sig)
{
	caught = sig;
}

void
io_signals_init(void)
{
	struct sigaction	sa;
	sigset_t		block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* No SA_RESTART: ppoll must return EINTR. */
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Blocked everywhere but inside ppoll: no signal can slip in unseen. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &poll_mask);
	sigdelset(&poll_mask, SIGINT);
	sigdelset(&poll_mask, SIGTERM);
}

int
io_take_signal(void)
{
	int	sig = caught;

	caught = 0;
	return sig;
}

enum io_status
io_poll(struct pollfd *fds, nfds_t n, int64_t deadline, bool now)
{
	struct timespec	 ts, *tsp = NULL;
	int64_t		 left;
	nfds_t		 i;

	for (i = 0; i < n; i++)
		fds[i].revents = 0;
	if (caught)
		return IO_SIGNAL;
	if (now)
		left = 0;
	else if (deadline >= 0) {
		if ((left = deadline - io_now()) <= 0)
			return IO_TIMEOUT;
	} else
		left = -1;
	if (left >= 0) {
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		tsp = &ts;
	}
	if (ppoll(fds, n, tsp, &poll_mask) == -1) {
		if (errno == EINTR)
			return caught ? IO_SIGNAL : IO_OK;
		return IO_FAIL;
	}
	return IO_OK;
}

void
transport_init(struct transport *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
}

/* Waits until fd is ready for events; IO_OK when it is. */
static enum io_status
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd	pfd = { fd, events, 0 };
	enum io_status	st;

	do {
		if ((st = io_poll(&pfd, 1, deadline, false)) != IO_OK)
			return st;
	} while (pfd.revents == 0);
	return IO_OK;
}

static enum io_status
connect_one(struct transport *t, const struct addrinfo *ai, int64_t deadline)
{
	enum io_status	st;
	socklen_t	len;
	int		fd, err = 0, one = 1;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1) {
		snprintf(t->err, sizeof(t->err), "socket: %s", strerror(errno));
		return IO_FAIL;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		if ((st = wait_fd(fd, POLLOUT, deadline)) != IO_OK) {
			close(fd);
			if (st == IO_TIMEOUT)
				snprintf(t->err, sizeof(t->err), "connection timed out");
			else if (st == IO_FAIL)
				snprintf(t->err, sizeof(t->err), "poll: %s", strerror(errno));
			return st;
		}
		len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0)
			goto fail;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->fd = fd;
	return IO_OK;
fail:
	close(fd);
	snprintf(t->err, sizeof(t->err), "%s", strerror(err));
	return IO_FAIL;
}

enum io_status
transport_connect(struct transport *t, const char *host, uint16_t port, int64_t deadline,
    bool verbose)
{
	struct addrinfo	 hints, *res, *ai;
	enum io_status	 st = IO_FAIL;
	char		 serv[8], addr[INET6_ADDRSTRLEN];
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, serv, &hints, &res)) != 0) {
		snprintf(t->err, sizeof(t->err), "cannot resolve %s: %s", host,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return IO_FAIL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0,
		    NI_NUMERICHOST) != 0)
			snprintf(addr, sizeof(addr), "?");
		if (verbose)
			fprintf(stderr, "* Connecting to %s port %u\n", addr, (unsigned)port);
		st = connect_one(t, ai, deadline);
		if (st == IO_OK) {
			if (verbose)
				fprintf(stderr, "* Connected to %s port %u\n", addr, (unsigned)port);
			break;
		}
		if (verbose)
			fprintf(stderr, "* %s port %u: %s\n", addr, (unsigned)port, t->err);
		if (st != IO_FAIL)	/* timeout or signal: no time for the next one */
			break;
	}
	freeaddrinfo(res);
	return st;
}

/* The first queued OpenSSL error, or fallback. */
static void
tls_error(struct transport *t, const char *what, const char *fallback)
{
	unsigned long	e = ERR_get_error();
	char		buf[200];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(t->err, sizeof(t->err), "%s: %s", what, buf);
	} else
		snprintf(t->err, sizeof(t->err), "%s: %s", what, fallback);
	ERR_clear_error();
}

enum io_status
transport_tls(struct transport *t, const char *host, bool host_is_ip,
    const struct tls_options *o, int64_t deadline)
{
	enum io_status	 st;
	long		 vr;
	int		 rc, e;
	short		 ev;

	if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		tls_error(t, "TLS", "cannot create a context");
		return IO_FAIL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	/* A peer that drops TCP without close_notify is an EOF to us: the
	 * WebSocket close frame, not TLS, says whether the end was clean. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (o->insecure)
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
	else {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		if (o->cacert != NULL) {
			if (SSL_CTX_load_verify_locations(t->ctx, o->cacert, NULL) != 1) {
				tls_error(t, o->cacert, "cannot load the CA certificates");
				return IO_FAIL;
			}
		} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
			tls_error(t, "TLS", "cannot load the default CA certificates");
			return IO_FAIL;
		}
	}
	if ((t->ssl = SSL_new(t->ctx)) == NULL || SSL_set_fd(t->ssl, t->fd) != 1) {
		tls_error(t, "TLS", "cannot create a connection");
		return IO_FAIL;
	}
	/* RFC 6066 §3: SNI carries host names only, never IP literals. */
	if (!host_is_ip && SSL_set_tlsext_host_name(t->ssl, host) != 1) {
		tls_error(t, "TLS", "cannot set the server name");
		return IO_FAIL;
	}
	if (!o->insecure) {
		rc = host_is_ip ?
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) :
		    SSL_set1_host(t->ssl, host);
		if (rc != 1) {
			tls_error(t, "TLS", "cannot set the name to verify");
			return IO_FAIL;
		}
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_connect(t->ssl)) == 1)
			break;
		e = SSL_get_error(t->ssl, rc);
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			vr = SSL_get_verify_result(t->ssl);
			if (vr != X509_V_OK)
				snprintf(t->err, sizeof(t->err),
				    "certificate verification failed: %s",
				    X509_verify_cert_error_string(vr));
			else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
				snprintf(t->err, sizeof(t->err), "TLS handshake: %s",
				    errno != 0 ? strerror(errno) : "connection closed by the server");
			else
				tls_error(t, "TLS handshake", "failed");
			return IO_FAIL;
		}
		if ((st = wait_fd(t->fd, ev, deadline)) != IO_OK) {
			if (st == IO_TIMEOUT)
				snprintf(t->err, sizeof(t->err), "TLS handshake timed out");
			return st;
		}
	}
	if (o->verbose) {
		fprintf(stderr, "* TLS: %s, %s, certificate %s\n", SSL_get_version(t->ssl),
		    SSL_get_cipher_name(t->ssl),
		    o->insecure ? "NOT verified (--insecure)" : "verified");
	}
	return IO_OK;
}

ssize_t
transport_read(struct transport *t, void *buf, size_t n)
{
	ssize_t	r;
	int	rc, e;

	if (t->ssl == NULL) {
		do
			r = read(t->fd, buf, n);
		while (r == -1 && errno == EINTR);
		if (r >= 0)
			return r;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		snprintf(t->err, sizeof(t->err), "%s", strerror(errno));
		return -2;
	}
	t->read_wants_write = false;
	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_read(t->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n))) > 0)
		return rc;
	switch ((e = SSL_get_error(t->ssl, rc))) {
	case SSL_ERROR_WANT_READ:
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->read_wants_write = true;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			if (errno == 0)
				return 0;
			snprintf(t->err, sizeof(t->err), "%s", strerror(errno));
			return -2;
		}
		/* FALLTHROUGH */
	default:
		tls_error(t, "TLS", "read failed");
		return -2;
	}
}

ssize_t
transport_write(struct transport *t, const void *buf, size_t n)
{
	ssize_t	r;
	int	rc;

	if (t->ssl == NULL) {
		do
			r = send(t->fd, buf, n, MSG_NOSIGNAL);
		while (r == -1 && errno == EINTR);
		if (r >= 0)
			return r;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		snprintf(t->err, sizeof(t->err), "%s", strerror(errno));
		return -2;
	}
	/* A write that wanted to be retried is repeated with the same length
	 * (the bytes are the same: the caller's buffer only grows at the end). */
	if (t->write_retry != 0)
		n = t->write_retry;
	else if (n > TLS_WRITE_MAX)
		n = TLS_WRITE_MAX;
	t->write_wants_read = false;
	ERR_clear_error();
	errno = 0;
	if ((rc = SSL_write(t->ssl, buf, (int)n)) > 0) {
		t->write_retry = 0;
		return rc;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		t->write_wants_read = true;
		t->write_retry = n;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->write_retry = n;
		return -1;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(t->err, sizeof(t->err), "%s",
			    errno != 0 ? strerror(errno) : "connection closed");
			return -2;
		}
		/* FALLTHROUGH */
	default:
		tls_error(t, "TLS", "write failed");
		return -2;
	}
}

bool
transport_pending(const struct transport *t)
{
	return t->ssl != NULL && SSL_pending(t->ssl) > 0;
}

short
transport_events(const struct transport *t, bool want_read, bool want_write)
{
	short	ev = 0;

	if (want_read || t->write_wants_read)
		ev |= POLLIN;
	if ((want_write && !t->write_wants_read) || t->read_wants_write)
		ev |= POLLOUT;
	return ev;
}

void
transport_shutdown(struct transport *t)
{
	if (t->ssl != NULL) {
		/* One try: close_notify is a courtesy, the close frame is what counts. */
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
	} else if (t->fd != -1)
		shutdown(t->fd, SHUT_WR);
}

void
transport_close(struct transport *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	if (t->fd != -1)
		close(t->fd);
	transport_init(t);
}
