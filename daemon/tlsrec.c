/*
 * tlsrec.c — see tlsrec.h.
 */
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "tlsrec.h"

#define CT_ALERT		21
#define CT_HANDSHAKE		22
#define CT_APPDATA		23
#define HS_KEY_UPDATE		24

/* Alert descriptions (RFC 8446 §6). */
#define AL_CLOSE_NOTIFY		0
#define AL_UNEXPECTED_MESSAGE	10
#define AL_BAD_RECORD_MAC	20
#define AL_RECORD_OVERFLOW	22
#define AL_ILLEGAL_PARAMETER	47
#define AL_DECODE_ERROR		50
#define AL_USER_CANCELED	90

/* Records sealed per send: 4 × 16 KiB, the size of the loop's read buffer. */
#define BATCH_RECORDS		4

static const struct {
	const char	*name;		/* OpenSSL's standard name */
	const char	*cipher;
	const char	*digest;
	uint8_t		 keylen;
	uint8_t		 hashlen;
} suites[] = {
	[TLSREC_AES_128_GCM_SHA256] = { "TLS_AES_128_GCM_SHA256", "AES-128-GCM", "SHA256", 16, 32 },
	[TLSREC_AES_256_GCM_SHA384] = { "TLS_AES_256_GCM_SHA384", "AES-256-GCM", "SHA384", 32, 48 },
	[TLSREC_CHACHA20_POLY1305_SHA256] = { "TLS_CHACHA20_POLY1305_SHA256",
	    "ChaCha20-Poly1305", "SHA256", 32, 32 },
};
#define NSUITES	(sizeof(suites) / sizeof(suites[0]))

/*
 * Algorithms fetched once per process (OpenSSL 3 looks a name up in its
 * provider tables, with locks, on every implicit fetch). Each thread keeps
 * one cipher context per suite, re-keyed per record (no allocation per
 * record), and the buffer records are sealed into before a send.
 */
struct tlsrec_thread {
	EVP_CIPHER_CTX	*ctx[NSUITES];
	uint8_t		 out[BATCH_RECORDS * TLSREC_RECORD_MAX + 64];
};

static pthread_once_t	 fetch_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER	*ciphers[NSUITES];
static EVP_KDF		*hkdf;
static pthread_key_t	 thread_key;
static bool		 fetched;
static _Thread_local struct tlsrec_thread *thread_state;

static void
thread_free(void *p)
{
	struct tlsrec_thread	*t = p;
	size_t			 i;

	for (i = 0; i < NSUITES; i++)
		EVP_CIPHER_CTX_free(t->ctx[i]);
	free(t);
}

static void
fetch(void)
{
	size_t	i;

	for (i = 0; i < NSUITES; i++)
		if ((ciphers[i] = EVP_CIPHER_fetch(NULL, suites[i].cipher, NULL)) == NULL)
			return;
	if ((hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    pthread_key_create(&thread_key, thread_free) != 0)
		return;
	fetched = true;
}

static struct tlsrec_thread *
thread_get(void)
{
	struct tlsrec_thread	*t;

	if (thread_state != NULL)
		return thread_state;
	if (pthread_once(&fetch_once, fetch) != 0 || !fetched ||
	    (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (pthread_setspecific(thread_key, t) != 0) {
		free(t);
		return NULL;
	}
	return thread_state = t;
}

/* The thread's context for the suite, set up for it once. */
static EVP_CIPHER_CTX *
cipher_ctx(int suite)
{
	struct tlsrec_thread	*t = thread_get();

	if (t == NULL)
		return NULL;
	if (t->ctx[suite] == NULL) {
		if ((t->ctx[suite] = EVP_CIPHER_CTX_new()) == NULL)
			return NULL;
		if (EVP_CipherInit_ex(t->ctx[suite], ciphers[suite], NULL, NULL, NULL, 1) != 1) {
			EVP_CIPHER_CTX_free(t->ctx[suite]);
			t->ctx[suite] = NULL;
			return NULL;
		}
	}
	return t->ctx[suite];
}

int
tlsrec_suite_of(const char *name)
{
	size_t	i;

	for (i = 0; name != NULL && i < NSUITES; i++)
		if (strcmp(name, suites[i].name) == 0)
			return (int)i;
	return -1;
}

size_t
tlsrec_hash_len(int suite)
{
	return suites[suite].hashlen;
}

int
tlsrec_expand_label(int suite, const uint8_t *secret, const char *label, uint8_t *out,
    size_t outlen)
{
	uint8_t		 info[2 + 1 + 6 + 255 + 1];
	size_t		 llen = strlen(label), n = 0;
	OSSL_PARAM	 params[5], *p = params;
	EVP_KDF_CTX	*kctx;
	int		 mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, ok;

	if (llen > 255 - 6 || outlen > 255 || pthread_once(&fetch_once, fetch) != 0 || !fetched)
		return -1;
	/* struct HkdfLabel: length, "tls13 " + label, an empty context. */
	info[n++] = (uint8_t)(outlen >> 8);
	info[n++] = (uint8_t)outlen;
	info[n++] = (uint8_t)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = 0;
	*p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)suites[suite].digest, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
	    suites[suite].hashlen);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	*p = OSSL_PARAM_construct_end();
	if ((kctx = EVP_KDF_CTX_new(hkdf)) == NULL)
		return -1;
	ok = EVP_KDF_derive(kctx, out, outlen, params) == 1;
	EVP_KDF_CTX_free(kctx);
	return ok ? 0 : -1;
}

/* A direction's key and iv from its current secret. */
static int
dir_keys(int suite, struct tlsrec_dir *d)
{
	return tlsrec_expand_label(suite, d->secret, "key", d->key, suites[suite].keylen) == 0 &&
	    tlsrec_expand_label(suite, d->secret, "iv", d->iv, sizeof(d->iv)) == 0 ? 0 : -1;
}

/* KeyUpdate: the next traffic secret, its key and iv, sequence 0 (§7.2). */
static int
dir_update(int suite, struct tlsrec_dir *d)
{
	uint8_t	next[TLSREC_MAX_HASH];

	if (tlsrec_expand_label(suite, d->secret, "traffic upd", next,
	    suites[suite].hashlen) == -1)
		return -1;
	memcpy(d->secret, next, suites[suite].hashlen);
	OPENSSL_cleanse(next, sizeof(next));
	d->seq = 0;
	return dir_keys(suite, d);
}

int
tlsrec_init(struct tlsrec *r, int suite, const uint8_t *client_secret,
    const uint8_t *server_secret, uint64_t rseq, uint64_t wseq)
{
	memset(r, 0, sizeof(*r));
	if (suite < 0 || (size_t)suite >= NSUITES)
		return -1;
	r->suite = (uint8_t)suite;
	memcpy(r->rd.secret, client_secret, suites[suite].hashlen);
	memcpy(r->wr.secret, server_secret, suites[suite].hashlen);
	r->rd.seq = rseq;
	r->wr.seq = wseq;
	return dir_keys(suite, &r->rd) == 0 && dir_keys(suite, &r->wr) == 0 ? 0 : -1;
}

/*
 * AEAD over p[0..n) in place (§5.2): nonce = iv XOR the sequence number,
 * the record header as additional data. Opening checks tag; sealing writes
 * it. 0, or -1 (bad tag, or libcrypto failed).
 */
static int
aead(int suite, const struct tlsrec_dir *d, int seal, const uint8_t hdr[TLSREC_HEADER],
    uint8_t *p, size_t n, uint8_t tag[TLSREC_TAG])
{
	EVP_CIPHER_CTX	*ctx = cipher_ctx(suite);
	uint8_t		 nonce[12];
	int		 outl, i;

	if (ctx == NULL || n > INT32_MAX)
		return -1;
	memcpy(nonce, d->iv, sizeof(nonce));
	for (i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
	if (EVP_CipherInit_ex(ctx, NULL, NULL, d->key, nonce, seal) != 1 ||
	    (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TLSREC_TAG, tag) != 1) ||
	    EVP_CipherUpdate(ctx, NULL, &outl, hdr, TLSREC_HEADER) != 1 ||
	    EVP_CipherUpdate(ctx, p, &outl, p, (int)n) != 1 ||
	    EVP_CipherFinal_ex(ctx, p + outl, &outl) != 1)
		return -1;
	if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TLSREC_TAG, tag) != 1)
		return -1;
	return 0;
}

static int
fail(struct tlsrec *r, uint8_t alert, const char *why)
{
	r->alert = alert;
	r->why = why;
	return TLSREC_ERROR;
}

size_t
tlsrec_seal(struct tlsrec *r, uint8_t *out, size_t n, uint8_t ct)
{
	size_t	clen = n + 1 + TLSREC_TAG;

	out[TLSREC_HEADER + n] = ct;
	out[0] = CT_APPDATA;
	out[1] = 0x03;
	out[2] = 0x03;
	out[3] = (uint8_t)(clen >> 8);
	out[4] = (uint8_t)clen;
	if (aead(r->suite, &r->wr, 1, out, out + TLSREC_HEADER, n + 1,
	    out + TLSREC_HEADER + n + 1) == -1)
		return 0;
	r->wr.seq++;
	return TLSREC_HEADER + clen;
}

/* Handshake content after the handshake: only KeyUpdate (§4.6.3). */
static int
handshake_content(struct tlsrec *r, const uint8_t *p, size_t n)
{
	size_t	take;

	while (n > 0) {
		take = sizeof(r->hs) - r->nhs;
		if (take > n)
			take = n;
		memcpy(r->hs + r->nhs, p, take);
		r->nhs += (uint8_t)take;
		p += take;
		n -= take;
		if (r->hs[0] != HS_KEY_UPDATE)
			return fail(r, AL_UNEXPECTED_MESSAGE,
			    "handshake message after the handshake (not KeyUpdate)");
		if (r->nhs >= 4 && (r->hs[1] != 0 || r->hs[2] != 0 || r->hs[3] != 1))
			return fail(r, AL_DECODE_ERROR, "KeyUpdate of a wrong length");
		if (r->nhs < sizeof(r->hs))
			continue;
		if (r->hs[4] > 1)
			return fail(r, AL_ILLEGAL_PARAMETER, "KeyUpdate request neither 0 nor 1");
		/* §5.1: handshake messages must not span a key change. */
		if (n > 0)
			return fail(r, AL_UNEXPECTED_MESSAGE, "data after KeyUpdate in its record");
		if (dir_update(r->suite, &r->rd) == -1)
			return fail(r, 0, "KeyUpdate: key derivation failed");
		if (r->hs[4] == 1)
			r->update_due = true;
		r->nhs = 0;
	}
	return 0;
}

/*
 * Opens the record at rec (rlen bytes, header included) in place. On
 * TLSREC_DATA, *pt and *ptlen are its application data (maybe empty).
 */
static int
open_record(struct tlsrec *r, uint8_t *rec, size_t rlen, uint8_t **pt, size_t *ptlen)
{
	uint8_t	*p = rec + TLSREC_HEADER;
	size_t	 n = rlen - TLSREC_HEADER - TLSREC_TAG;
	uint8_t	 ct;

	if (r->rd.seq == UINT64_MAX)
		return fail(r, 0, "record sequence number exhausted");
	if (aead(r->suite, &r->rd, 0, rec, p, n, p + n) == -1)
		return fail(r, AL_BAD_RECORD_MAC, "record failed authentication");
	r->rd.seq++;
	/* TLSInnerPlaintext: content, type, zeros (§5.4). */
	while (n > 0 && p[n - 1] == 0)
		n--;
	if (n == 0)
		return fail(r, AL_UNEXPECTED_MESSAGE, "record without a content type");
	ct = p[--n];
	if (n > TLSREC_MAX_PLAIN)
		return fail(r, AL_RECORD_OVERFLOW, "record content over 16 KiB");
	if (r->nhs > 0 && ct != CT_HANDSHAKE)
		return fail(r, AL_UNEXPECTED_MESSAGE, "handshake message interleaved");
	switch (ct) {
	case CT_APPDATA:
		*pt = p;
		*ptlen = n;
		return TLSREC_DATA;
	case CT_ALERT:
		if (n != 2)
			return fail(r, AL_DECODE_ERROR, "alert record not 2 bytes");
		if (p[1] == AL_CLOSE_NOTIFY)
			return TLSREC_EOF;
		if (p[1] == AL_USER_CANCELED) {		/* a close_notify follows */
			*ptlen = 0;
			return TLSREC_DATA;
		}
		r->alert = 0;
		r->why = "peer sent a fatal alert";
		return TLSREC_ERROR;
	case CT_HANDSHAKE:
		if (n == 0)
			return fail(r, AL_UNEXPECTED_MESSAGE, "empty handshake record");
		if (handshake_content(r, p, n) == TLSREC_ERROR)
			return TLSREC_ERROR;
		*ptlen = 0;
		return TLSREC_DATA;
	default:
		return fail(r, AL_UNEXPECTED_MESSAGE, "unexpected record content type");
	}
}

/* The outer header's checks, before any byte of the record is kept (§5.1, §5.2). */
static int
check_header(struct tlsrec *r, const uint8_t *h, size_t *rlen)
{
	size_t	clen = (size_t)h[3] << 8 | h[4];

	if (h[0] != CT_APPDATA)
		return fail(r, AL_UNEXPECTED_MESSAGE, "unprotected record after the handshake");
	if (clen > TLSREC_MAX_CIPHER)
		return fail(r, AL_RECORD_OVERFLOW, "record over 16 KiB + 256");
	if (clen < 1 + TLSREC_TAG)
		return fail(r, AL_DECODE_ERROR, "record too short");
	*rlen = TLSREC_HEADER + clen;
	return 0;
}

int
tlsrec_next(struct tlsrec *r, uint8_t *buf, size_t len, size_t *off, uint8_t **pt,
    size_t *ptlen)
{
	uint8_t	*rec;
	size_t	 rlen, need, take;
	int	 rv;

	for (;;) {
		if (r->part_used) {
			free(r->part);
			r->part = NULL;
			r->npart = 0;
			r->part_used = false;
		}
		if (r->part != NULL) {
			/* Complete the kept record from buf: its header first. */
			need = TLSREC_HEADER;
			if (r->npart >= TLSREC_HEADER &&
			    check_header(r, r->part, &need) == TLSREC_ERROR)
				return TLSREC_ERROR;
			take = need - r->npart;
			if (take > len - *off)
				take = len - *off;
			memcpy(r->part + r->npart, buf + *off, take);
			r->npart += take;
			*off += take;
			if (r->npart < need)
				return TLSREC_MORE;	/* buf is used up */
			if (need == TLSREC_HEADER)
				continue;		/* now its length is known */
			rec = r->part;
			rlen = need;
			r->part_used = true;
		} else {
			if (*off == len)
				return TLSREC_MORE;
			rec = buf + *off;
			rlen = 0;
			if (len - *off >= TLSREC_HEADER &&
			    check_header(r, rec, &rlen) == TLSREC_ERROR)
				return TLSREC_ERROR;
			if (rlen == 0 || len - *off < rlen) {
				/* Kept whole (at most one record), only while it spans reads. */
				if ((r->part = malloc(TLSREC_HEADER + TLSREC_MAX_CIPHER)) == NULL)
					return fail(r, 0, "out of memory");
				r->npart = len - *off;
				memcpy(r->part, rec, r->npart);
				*off = len;
				return TLSREC_MORE;
			}
			*off += rlen;
		}
		if ((rv = open_record(r, rec, rlen, pt, ptlen)) != TLSREC_DATA)
			return rv;
		if (*ptlen > 0)
			return TLSREC_DATA;
	}
}

/* Sends what pend holds; true once it is all out. -1: socket error. */
static int
flush_pend(struct tlsrec *r, int fd)
{
	ssize_t	n;

	while (r->pend_off < r->npend) {
		n = send(fd, r->pend + r->pend_off, r->npend - r->pend_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			return -1;
		}
		r->pend_off += (size_t)n;
	}
	free(r->pend);
	r->pend = NULL;
	r->npend = r->pend_off = 0;
	return 1;
}

ssize_t
tlsrec_writev(struct tlsrec *r, int fd, const struct iovec *iov, int niov, bool *want_write)
{
	struct tlsrec_thread	*t;
	uint8_t			*rec;
	size_t			 olen, done = 0, batch, fill, take, off = 0, n;
	ssize_t			 w;
	int			 i = 0, nrec, rv;

	*want_write = false;
	if (r->pend != NULL) {
		if ((rv = flush_pend(r, fd)) == -1)
			return -1;
		if (rv == 0) {
			*want_write = true;
			return 0;
		}
		done = r->pend_plain;
		r->pend_plain = 0;
		return (ssize_t)done;
	}
	if ((t = thread_get()) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* Batches of up to BATCH_RECORDS records, one send each, while the socket takes them. */
	do {
		olen = batch = 0;
		/* Our KeyUpdate first: asked for (§4.6.3), or our key's limit (§5.5). */
		if (r->update_due || r->wr.seq >= TLSREC_REKEY_AFTER) {
			memcpy(t->out + TLSREC_HEADER, (const uint8_t[]){ HS_KEY_UPDATE, 0, 0, 1, 0 }, 5);
			if ((n = tlsrec_seal(r, t->out, 5, CT_HANDSHAKE)) == 0 ||
			    dir_update(r->suite, &r->wr) == -1) {
				errno = EPROTO;
				return -1;
			}
			olen += n;
			r->update_due = false;
		}
		for (nrec = 0; nrec < BATCH_RECORDS && i < niov; nrec++) {
			rec = t->out + olen;
			for (fill = 0; i < niov && fill < TLSREC_MAX_PLAIN; ) {
				take = iov[i].iov_len - off;
				if (take > TLSREC_MAX_PLAIN - fill)
					take = TLSREC_MAX_PLAIN - fill;
				memcpy(rec + TLSREC_HEADER + fill,
				    (const uint8_t *)iov[i].iov_base + off, take);
				fill += take;
				off += take;
				if (off == iov[i].iov_len) {
					i++;
					off = 0;
				}
			}
			if (fill == 0)
				break;
			if ((n = tlsrec_seal(r, rec, fill, CT_APPDATA)) == 0) {
				errno = EPROTO;
				return -1;
			}
			olen += n;
			batch += fill;
		}
		if (olen == 0)
			break;
		w = send(fd, t->out, olen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return done > 0 ? (ssize_t)done : -1;
			w = 0;
		}
		if ((size_t)w < olen) {
			/*
			 * Sealed is sent: keep the rest, and report this batch's
			 * bytes once it is out (the caller offers them again).
			 */
			if ((r->pend = malloc(olen - (size_t)w)) == NULL) {
				errno = ENOMEM;
				return done > 0 ? (ssize_t)done : -1;
			}
			memcpy(r->pend, t->out + w, olen - (size_t)w);
			r->npend = olen - (size_t)w;
			r->pend_off = 0;
			r->pend_plain = batch;
			*want_write = true;
			return (ssize_t)done;
		}
		done += batch;
	} while (i < niov);
	return (ssize_t)done;
}

void
tlsrec_alert(struct tlsrec *r, int fd, uint8_t level, uint8_t desc)
{
	uint8_t	rec[TLSREC_HEADER + 2 + 1 + TLSREC_TAG];
	size_t	n;

	if (r->pend != NULL)
		return;
	rec[TLSREC_HEADER] = level;
	rec[TLSREC_HEADER + 1] = desc;
	if ((n = tlsrec_seal(r, rec, 2, CT_ALERT)) > 0)
		(void)send(fd, rec, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void
tlsrec_free(struct tlsrec *r)
{
	if (r == NULL)
		return;
	free(r->part);
	free(r->pend);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}
