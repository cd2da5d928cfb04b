/*
 * tls.h — TLS termination with OpenSSL 3 (DESIGN.md §5): the connection's
 * second recv/send pair. conn.c keeps one code path and branches on
 * c->ssl: SSL_read/SSL_write run on the same non-blocking fd, and
 * WANT_READ/WANT_WRITE map onto the connection's one embedded event.
 *
 * The SSL_CTX is built when the config is loaded (so `wsrouted -t` catches a
 * missing, unreadable or mismatched key or certificate, with file:line) and
 * swapped on SIGHUP: each SSL holds a reference to the SSL_CTX it started
 * with, so open connections keep theirs.
 */
#ifndef WSR_TLS_H
#define WSR_TLS_H

#include <sys/types.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

#include "config.h"

enum tls_want {
	TLS_OK = 0,
	TLS_WANT_READ,
	TLS_WANT_WRITE,
	TLS_EOF,		/* close_notify or TCP EOF */
	TLS_ERROR,
};

/*
 * A server SSL_CTX for cfg->tls, or NULL with *cause set (malloc'd,
 * "FILE:LINE: key: what is wrong").
 */
SSL_CTX		*tls_ctx_new(const struct config *cfg, char **cause);

/* A server-side SSL on fd, or NULL (out of memory). */
SSL		*tls_conn_new(SSL_CTX *ctx, int fd);
/* Drives the handshake: TLS_OK when done, TLS_WANT_*, or TLS_ERROR with *why. */
enum tls_want	 tls_handshake(SSL *ssl, const char **why);
/* > 0 bytes read, or -1 with *want (TLS_WANT_*, TLS_EOF, TLS_ERROR with *why). */
ssize_t		 tls_read(SSL *ssl, void *buf, size_t len, enum tls_want *want,
		    const char **why);
/* Bytes written (maybe fewer than asked, maybe 0 with *want), or -1 on error. */
ssize_t		 tls_writev(SSL *ssl, const struct iovec *iov, int niov, enum tls_want *want);
/* Sends close_notify if it can without blocking (before shutdown(SHUT_WR)). */
void		 tls_close_notify(SSL *ssl);
struct tlsrec;
/*
 * Once the handshake is done: a TLS 1.3 connection of a context with
 * record_layer = wsrouted, with nothing left unread or unsent inside
 * OpenSSL, becomes a tlsrec (the caller then frees ssl), else NULL and
 * OpenSSL keeps it for good.
 */
struct tlsrec	*tls_detach(SSL *ssl);
/* "TLSv1.3/TLS_AES_256_GCM_SHA384" for the logs. */
const char	*tls_version(const SSL *ssl);
const char	*tls_cipher(const SSL *ssl);

#endif
