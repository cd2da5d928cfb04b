/*
 * tlsrec.h — the TLS 1.3 record layer of an established connection
 * (RFC 8446 §5; KeyUpdate §4.6.3; alerts §6), run by us once OpenSSL has
 * done the handshake, so that an idle TLS connection keeps ~300 bytes of
 * keys and counters instead of OpenSSL 3.0's ~14 KiB SSL object.
 *
 * Written by hand because no library offers it: OpenSSL has no way to
 * shrink or park an SSL, and the kernel's TLS offload (kTLS), which does
 * exactly this, is not available on every kernel (not on ours). All
 * cryptography is OpenSSL's (EVP AEAD and HKDF); only the framing is ours:
 * nonces from the sequence numbers, the record header as additional data,
 * content types and padding, KeyUpdate and alerts. docs/SECURITY.md lists
 * the rules enforced. OpenSSL keeps every TLS 1.2 connection, and every
 * connection with record_layer = openssl.
 */
#ifndef WSR_TLSREC_H
#define WSR_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define TLSREC_MAX_HASH		48
#define TLSREC_MAX_PLAIN	16384			/* 2^14 */
#define TLSREC_MAX_CIPHER	(TLSREC_MAX_PLAIN + 256)
#define TLSREC_HEADER		5
#define TLSREC_TAG		16
/* A record of up to 16 KiB of data: header, data, content type, tag. */
#define TLSREC_RECORD_MAX	(TLSREC_HEADER + TLSREC_MAX_PLAIN + 1 + TLSREC_TAG)
/*
 * Our write key is replaced (KeyUpdate) before this many records: RFC 8446
 * §5.5 allows about 2^24.5 full records per AES-GCM key.
 */
#define TLSREC_REKEY_AFTER	(1ULL << 24)

enum tlsrec_suite {
	TLSREC_AES_128_GCM_SHA256,
	TLSREC_AES_256_GCM_SHA384,
	TLSREC_CHACHA20_POLY1305_SHA256,
};

struct tlsrec_dir {
	uint8_t		 secret[TLSREC_MAX_HASH];	/* the traffic secret, for KeyUpdate */
	uint8_t		 key[32];
	uint8_t		 iv[12];
	uint64_t	 seq;
};

struct tlsrec {
	struct tlsrec_dir	 rd;		/* the peer's records */
	struct tlsrec_dir	 wr;		/* ours */
	uint8_t			*part;		/* a record spanning reads, while it does */
	uint8_t			*pend;		/* sealed bytes the socket refused, while it does */
	size_t			 npart;
	size_t			 npend, pend_off;
	size_t			 pend_plain;	/* the caller's bytes that pend carries */
	const char		*why;		/* after TLSREC_ERROR */
	uint8_t			 suite;		/* enum tlsrec_suite */
	uint8_t			 alert;		/* after TLSREC_ERROR: ours to send, 0: none */
	uint8_t			 nhs;		/* bytes of a handshake message in hs */
	uint8_t			 hs[5];		/* KeyUpdate is 5 bytes, the only one we take */
	bool			 part_used;	/* part holds a record already handed out */
	bool			 update_due;	/* the peer asked for our KeyUpdate */
};

enum tlsrec_result {
	TLSREC_ERROR = -1,	/* fatal: r->why, and r->alert to send */
	TLSREC_MORE = 0,	/* every byte taken; the rest of a record is awaited */
	TLSREC_DATA = 1,	/* *pt, *ptlen: one record's application data */
	TLSREC_EOF = 2,		/* close_notify */
};

/* The suite for OpenSSL's standard name ("TLS_AES_128_GCM_SHA256"), or -1. */
int	tlsrec_suite_of(const char *name);
/* Bytes of the suite's hash (its traffic secrets' length). */
size_t	tlsrec_hash_len(int suite);
/* HKDF-Expand-Label(secret, label, "", outlen) (RFC 8446 §7.1); 0 or -1. */
int	tlsrec_expand_label(int suite, const uint8_t *secret, const char *label,
	    uint8_t *out, size_t outlen);
/*
 * Sets r up (zeroed first) for a server: records read with the client's
 * traffic secret, written with the server's, from the given sequence
 * numbers. 0, or -1 (libcrypto failed).
 */
int	tlsrec_init(struct tlsrec *r, int suite, const uint8_t *client_secret,
	    const uint8_t *server_secret, uint64_t rseq, uint64_t wseq);
/*
 * Opens the next record of buf[*off..len) (decrypted in place) or of one
 * spanning reads, advancing *off. Returns TLSREC_DATA with the record's
 * data (valid until the next call), TLSREC_MORE once buf is used up (a
 * trailing partial record is kept), TLSREC_EOF or TLSREC_ERROR. KeyUpdate
 * and empty records are handled inside.
 */
int	tlsrec_next(struct tlsrec *r, uint8_t *buf, size_t len, size_t *off,
	    uint8_t **pt, size_t *ptlen);
/*
 * Seals iov's bytes and sends them on fd, in batches while the socket takes
 * them. OpenSSL's SSL_write contract, which conn.c relies on: returns how
 * many of the caller's bytes are done (maybe fewer than given, maybe 0);
 * *want_write then says sealed bytes wait for the socket: call again when
 * it is writable, offering the bytes not yet done, in order, first. -1 with
 * errno on a socket error.
 */
ssize_t	tlsrec_writev(struct tlsrec *r, int fd, const struct iovec *iov, int niov,
	    bool *want_write);
/*
 * Seals n bytes of content type ct, already at out + TLSREC_HEADER with
 * room for TLSREC_TAG + 1 more after them, into one record at out (n ≤
 * TLSREC_MAX_PLAIN). Returns the record's length, or 0 (libcrypto failed).
 */
size_t	tlsrec_seal(struct tlsrec *r, uint8_t *out, size_t n, uint8_t ct);
/* One try at an alert record (close_notify: level 1, 0) when nothing waits. */
void	tlsrec_alert(struct tlsrec *r, int fd, uint8_t level, uint8_t desc);
/* Wipes the keys and frees r. */
void	tlsrec_free(struct tlsrec *r);

#endif
