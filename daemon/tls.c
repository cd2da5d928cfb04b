/*
 * tls.c — see tls.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "tls.h"
#include "tlsrec.h"

/*
 * What handing an established TLS 1.3 connection to tlsrec needs from
 * OpenSSL, gathered during its handshake: the two application traffic
 * secrets (OpenSSL 3.0 shows them only through the key log callback) and
 * how many records OpenSSL wrote under the server's (its NewSessionTickets),
 * which is where our sequence numbers start. Nothing is read under the
 * client's before the handshake ends (no early data, no read-ahead).
 * Attached to each SSL of a context with record_layer = wsrouted; freed
 * with the SSL, or as soon as OpenSSL keeps the connection.
 */
struct tls_capture {
	uint8_t		client[TLSREC_MAX_HASH];
	uint8_t		server[TLSREC_MAX_HASH];
	uint8_t		nclient, nserver;
	uint32_t	written;	/* records written since the server's secret */
};

static pthread_once_t	capture_once = PTHREAD_ONCE_INIT;
static int		capture_idx = -1;

static void
capture_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (ptr != NULL) {
		OPENSSL_cleanse(ptr, sizeof(struct tls_capture));
		free(ptr);
	}
}

static void
capture_init(void)
{
	capture_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, capture_free);
}

/* "LABEL <client random> <secret>", both hex. */
static void
keylog_cb(const SSL *ssl, const char *line)
{
	struct tls_capture	*cap = SSL_get_ex_data(ssl, capture_idx);
	const char		*p;
	uint8_t			*dst, *n;
	unsigned		 b;

	if (cap == NULL)
		return;
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
		dst = cap->client;
		n = &cap->nclient;
	} else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
		dst = cap->server;
		n = &cap->nserver;
		cap->written = 0;
	} else
		return;
	*n = 0;
	if ((p = strchr(line + 24, ' ')) == NULL)
		return;
	for (p++; *n < TLSREC_MAX_HASH && sscanf(p, "%2x", &b) == 1; p += 2)
		dst[(*n)++] = (uint8_t)b;
	if (*p != '\0')
		*n = 0;		/* not what we expect: no detaching */
}

static void
msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl,
    void *arg)
{
	struct tls_capture	*cap;

	(void)version, (void)buf, (void)len, (void)arg;
	if (write_p && content_type == SSL3_RT_HEADER &&
	    (cap = SSL_get_ex_data(ssl, capture_idx)) != NULL && cap->nserver > 0)
		cap->written++;
}

/* OpenSSL keeps ssl for good: drop what detaching would have needed. */
static void
capture_drop(SSL *ssl)
{
	struct tls_capture	*cap = SSL_get_ex_data(ssl, capture_idx);

	if (cap != NULL) {
		SSL_set_ex_data(ssl, capture_idx, NULL);
		capture_free(NULL, cap, NULL, 0, 0, NULL);
	}
	SSL_set_msg_callback(ssl, NULL);
}

struct tlsrec *
tls_detach(SSL *ssl)
{
	struct tls_capture	*cap = SSL_get_ex_data(ssl, capture_idx);
	const SSL_CIPHER	*cipher = SSL_get_current_cipher(ssl);
	struct tlsrec		*r = NULL;
	int			 suite = -1;

	if (cap == NULL)
		return NULL;
	if (cipher != NULL)
		suite = tlsrec_suite_of(SSL_CIPHER_standard_name(cipher));
	if (SSL_version(ssl) == TLS1_3_VERSION && SSL_is_init_finished(ssl) &&
	    !SSL_has_pending(ssl) && suite >= 0 &&
	    cap->nclient == tlsrec_hash_len(suite) && cap->nserver == tlsrec_hash_len(suite) &&
	    (r = malloc(sizeof(*r))) != NULL &&
	    tlsrec_init(r, suite, cap->client, cap->server, 0, cap->written) == -1) {
		tlsrec_free(r);
		r = NULL;
	}
	if (r == NULL)
		capture_drop(ssl);
	return r;
}

/* A private key that other users can read is a leak waiting to happen: say so. */
static void
warn_if_exposed(const struct config *cfg, const char *path, int line)
{
	struct stat	st;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH))
		log_warn("event=config_warning file=%s line=%d key=private_key "
		    "reason=\"'%s' is readable by every user (mode %03o); "
		    "chmod o-r it\"", cfg->file, line, path, (unsigned)(st.st_mode & 0777));
}

/* TLS records are at most 16 KiB of plaintext: coalesce a batch up to that. */
#define TLS_RECORD	16384

/* "FILE:LINE: key: msg: OpenSSL's reason" into *cause; always returns NULL. */
static SSL_CTX *
ctx_fail(SSL_CTX *ctx, char **cause, const struct config *cfg, int line, const char *key,
    const char *fmt, ...)
{
	char		 msg[512], ossl[256] = "";
	unsigned long	 e, last = 0;
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The last error queued is the most specific one. */
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last != 0)
		snprintf(ossl, sizeof(ossl), ": %s", ERR_reason_error_string(last) ?
		    ERR_reason_error_string(last) : "unknown OpenSSL error");
	if (asprintf(cause, "%s:%d: %s: %s%s", cfg->file, line, key, msg, ossl) == -1)
		*cause = NULL;
	SSL_CTX_free(ctx);
	return NULL;
}

/* fopen first: "No such file" / "Permission denied" beat OpenSSL's wording. */
static int
readable(const char *path, char *why, size_t len)
{
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(why, len, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

/* Adds every certificate of a PEM file to the chain sent after the leaf. */
static int
add_chain_file(SSL_CTX *ctx, const char *path)
{
	FILE	*f;
	X509	*x;
	int	 n = 0;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			fclose(f);
			return -1;
		}
		n++;
	}
	fclose(f);
	/* PEM_read_X509 ends with "no start line" at EOF: not an error after a cert. */
	if (n > 0)
		ERR_clear_error();
	return n > 0 ? 0 : -1;
}

SSL_CTX *
tls_ctx_new(const struct config *cfg, char **cause)
{
	const struct config_tls	*t = &cfg->tls;
	SSL_CTX			*ctx;
	char			 why[600];

	*cause = NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return ctx_fail(NULL, cause, cfg, t->line, "[tls]", "cannot create an SSL_CTX");
	if (SSL_CTX_set_min_proto_version(ctx, t->min_version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, t->max_version) != 1)
		return ctx_fail(ctx, cause, cfg, t->line, "protocols", "not supported");
	/*
	 * IGNORE_UNEXPECTED_EOF: a TCP FIN without close_notify is an EOF, as on
	 * a plain socket; WebSocket has its own close handshake to detect
	 * truncation, and most clients just close after it.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/*
	 * RELEASE_BUFFERS: an idle connection keeps no read/write buffers
	 * (DESIGN §5). PARTIAL_WRITE + MOVING_WRITE_BUFFER: a refused write is
	 * retried from conn.c's output buffer, at another address and maybe
	 * longer, which is what conn.c does with the plain socket too.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No server-side session cache (memory per client); tickets still resume. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (t->record_layer == TLS_RECORDS_WSROUTED) {
		if (pthread_once(&capture_once, capture_init) != 0 || capture_idx < 0)
			return ctx_fail(ctx, cause, cfg, t->line, "[tls]",
			    "cannot set up the record layer");
		SSL_CTX_set_keylog_callback(ctx, keylog_cb);
		SSL_CTX_set_msg_callback(ctx, msg_cb);
	}

	if (readable(t->certificate.v, why, sizeof(why)) == -1)
		return ctx_fail(ctx, cause, cfg, t->certificate.line, "certificate", "%s", why);
	if (SSL_CTX_use_certificate_chain_file(ctx, t->certificate.v) != 1)
		return ctx_fail(ctx, cause, cfg, t->certificate.line, "certificate",
		    "cannot load a PEM certificate from '%s'", t->certificate.v);
	if (t->chain.v != NULL) {
		if (readable(t->chain.v, why, sizeof(why)) == -1)
			return ctx_fail(ctx, cause, cfg, t->chain.line, "chain", "%s", why);
		if (add_chain_file(ctx, t->chain.v) == -1)
			return ctx_fail(ctx, cause, cfg, t->chain.line, "chain",
			    "cannot load PEM certificates from '%s'", t->chain.v);
	}
	if (readable(t->private_key.v, why, sizeof(why)) == -1)
		return ctx_fail(ctx, cause, cfg, t->private_key.line, "private_key", "%s", why);
	if (SSL_CTX_use_PrivateKey_file(ctx, t->private_key.v, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, cause, cfg, t->private_key.line, "private_key",
		    "cannot load a PEM private key from '%s' (or it does not match the "
		    "certificate)", t->private_key.v);
	warn_if_exposed(cfg, t->private_key.v, t->private_key.line);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, cause, cfg, t->private_key.line, "private_key",
		    "'%s' does not match the certificate '%s'", t->private_key.v,
		    t->certificate.v);
	if (t->ciphers.v != NULL && SSL_CTX_set_cipher_list(ctx, t->ciphers.v) != 1)
		return ctx_fail(ctx, cause, cfg, t->ciphers.line, "ciphers",
		    "no usable cipher in '%s'", t->ciphers.v);
	if (t->ciphersuites.v != NULL && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites.v) != 1)
		return ctx_fail(ctx, cause, cfg, t->ciphersuites.line, "ciphersuites",
		    "no usable TLS 1.3 suite in '%s'", t->ciphersuites.v);
	if (t->groups.v != NULL && SSL_CTX_set1_groups_list(ctx, t->groups.v) != 1)
		return ctx_fail(ctx, cause, cfg, t->groups.line, "groups",
		    "unknown group in '%s'", t->groups.v);
	return ctx;
}

SSL *
tls_conn_new(SSL_CTX *ctx, int fd)
{
	SSL			*ssl;
	struct tls_capture	*cap = NULL;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	if (SSL_CTX_get_keylog_callback(ctx) != NULL &&
	    ((cap = calloc(1, sizeof(*cap))) == NULL || !SSL_set_ex_data(ssl, capture_idx, cap))) {
		free(cap);
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

/* Maps an SSL_get_error() onto tls_want; errno survives for SSL_ERROR_SYSCALL. */
static enum tls_want
map_error(SSL *ssl, int rv, const char **why)
{
	unsigned long	e;

	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLS_EOF;
	case SSL_ERROR_SYSCALL:
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			ERR_clear_error();
			return TLS_WANT_READ;
		}
		if (why != NULL)
			*why = errno == 0 ? "peer closed" : strerror(errno);
		ERR_clear_error();
		return errno == 0 ? TLS_EOF : TLS_ERROR;
	default:
		e = ERR_peek_last_error();
		if (why != NULL)
			*why = e != 0 && ERR_reason_error_string(e) != NULL ?
			    ERR_reason_error_string(e) : "TLS protocol error";
		ERR_clear_error();
		return TLS_ERROR;
	}
}

enum tls_want
tls_handshake(SSL *ssl, const char **why)
{
	int	rv;

	errno = 0;
	if ((rv = SSL_do_handshake(ssl)) == 1)
		return TLS_OK;
	*why = "TLS handshake failed";
	return map_error(ssl, rv, why);
}

ssize_t
tls_read(SSL *ssl, void *buf, size_t len, enum tls_want *want, const char **why)
{
	size_t	n;
	int	rv;

	errno = 0;
	if ((rv = SSL_read_ex(ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	*want = map_error(ssl, rv, why);
	return -1;
}

ssize_t
tls_writev(SSL *ssl, const struct iovec *iov, int niov, enum tls_want *want)
{
	uint8_t		 rec[TLS_RECORD];
	const uint8_t	*p;
	size_t		 total = 0, fill, off, n, take;
	int		 i = 0, rv;

	*want = TLS_OK;
	off = 0;
	while (i < niov) {
		/* One iov of a record or more goes as is; small ones are gathered. */
		if (off == 0 && iov[i].iov_len >= TLS_RECORD) {
			p = iov[i].iov_base;
			fill = iov[i].iov_len;
			i++;
		} else {
			for (fill = 0; i < niov && fill < TLS_RECORD; ) {
				take = iov[i].iov_len - off;
				if (take > TLS_RECORD - fill)
					take = TLS_RECORD - fill;
				memcpy(rec + fill, (const uint8_t *)iov[i].iov_base + off, take);
				fill += take;
				off += take;
				if (off == iov[i].iov_len) {
					i++;
					off = 0;
				}
			}
			p = rec;
		}
		while (fill > 0) {
			errno = 0;
			if ((rv = SSL_write_ex(ssl, p, fill, &n)) != 1) {
				*want = map_error(ssl, rv, NULL);
				if (*want == TLS_WANT_WRITE || *want == TLS_WANT_READ)
					return (ssize_t)total;
				return -1;
			}
			total += n;
			p += n;
			fill -= n;
		}
	}
	return (ssize_t)total;
}

void
tls_close_notify(SSL *ssl)
{
	/* One try: a peer that does not read gets the FIN (and the linger) anyway. */
	if (SSL_shutdown(ssl) < 0)
		ERR_clear_error();
}

const char *
tls_version(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

const char *
tls_cipher(const SSL *ssl)
{
	return SSL_get_cipher_name(ssl);
}
