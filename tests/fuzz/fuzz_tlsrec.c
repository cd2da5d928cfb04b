/*
 * fuzz_tlsrec.c — the TLS 1.3 record reader (daemon/tlsrec.c) after the
 * handshake. Random bytes would almost never authenticate, so the input is
 * a script: a client tlsrec seals the contents it names (any content type,
 * any bytes, KeyUpdates it then follows itself), raw bytes are mixed in,
 * and the resulting stream is fed to the server in pieces of sizes the
 * input also picks. Besides "no crash, no leak": results are only the
 * documented ones, data never exceeds 16 KiB a record and, as long as
 * nothing unsealed went in, every byte of application data comes out, in
 * order.
 *
 * Script, repeated: op, len (2 bytes, little-endian), then len bytes.
 * op & 3 == 0: seal the bytes with content type (op >> 2); 1: append them
 * raw; 2: the next piece sizes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STREAM_MAX	(64 * 1024)

static const uint8_t client_secret[32] = { 1, 2, 3 };
static const uint8_t server_secret[32] = { 4, 5, 6 };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t	 stream[STREAM_MAX], want[STREAM_MAX], got[STREAM_MAX];
	uint8_t		 secret[32], next[32], *pt;
	uint8_t		 sizes[64];
	struct tlsrec	 server, client;
	size_t		 n = 0, nwant = 0, ngot = 0, nsizes = 0, i = 0, len, off, piece, k = 0;
	size_t		 ptlen, pos;
	int		 rv = TLSREC_MORE, raw = 0;
	uint8_t		 op;

	if (tlsrec_init(&server, TLSREC_AES_128_GCM_SHA256, client_secret, server_secret, 0, 0) ||
	    tlsrec_init(&client, TLSREC_AES_128_GCM_SHA256, server_secret, client_secret, 0, 0))
		abort();
	memcpy(secret, client_secret, sizeof(secret));
	while (i + 3 <= size) {
		op = data[i];
		len = data[i + 1] | (size_t)data[i + 2] << 8;
		i += 3;
		if (len > size - i)
			len = size - i;
		switch (op & 3) {
		case 0:
			if (len > TLSREC_MAX_PLAIN + 1 ||
			    n + TLSREC_HEADER + len + 1 + TLSREC_TAG > STREAM_MAX)
				break;
			memcpy(stream + n + TLSREC_HEADER, data + i, len);
			k = tlsrec_seal(&client, stream + n, len, (uint8_t)(op >> 2));
			if (k == 0)
				abort();
			n += k;
			if ((op >> 2) == 23 && !raw) {
				memcpy(want + nwant, data + i, len);
				nwant += len;
			}
			/* Type 0: its padding rule makes the content's last byte the type. */
			raw |= (op >> 2) == 0;
			/* A well-formed KeyUpdate: the client moves to its next key. */
			if ((op >> 2) == 22 && len == 5 && data[i] == 24 && data[i + 1] == 0 &&
			    data[i + 2] == 0 && data[i + 3] == 1 && data[i + 4] <= 1) {
				if (tlsrec_expand_label(TLSREC_AES_128_GCM_SHA256, secret,
				    "traffic upd", next, sizeof(next)) != 0)
					abort();
				memcpy(secret, next, sizeof(secret));
				if (tlsrec_init(&client, TLSREC_AES_128_GCM_SHA256, server_secret,
				    secret, 0, 0) != 0)
					abort();
			}
			break;
		case 1:
			if (n + len > STREAM_MAX)
				break;
			memcpy(stream + n, data + i, len);
			n += len;
			raw |= len > 0;
			break;
		default:
			for (k = 0; k < len && nsizes < sizeof(sizes); k++)
				sizes[nsizes++] = data[i + k];
			break;
		}
		i += len;
	}
	/* Feed the stream in pieces. */
	for (pos = 0, k = 0; pos < n && rv != TLSREC_ERROR && rv != TLSREC_EOF; k++) {
		piece = nsizes > 0 ? (size_t)sizes[k % nsizes] * 37 + 1 : n;
		if (piece > n - pos)
			piece = n - pos;
		off = 0;
		while ((rv = tlsrec_next(&server, stream + pos, piece, &off, &pt, &ptlen)) ==
		    TLSREC_DATA) {
			if (ptlen == 0 || ptlen > TLSREC_MAX_PLAIN || ngot + ptlen > STREAM_MAX)
				abort();
			memcpy(got + ngot, pt, ptlen);
			ngot += ptlen;
		}
		if (rv != TLSREC_MORE && rv != TLSREC_EOF && rv != TLSREC_ERROR)
			abort();
		if (rv == TLSREC_MORE && off != piece)
			abort();
		if (rv == TLSREC_ERROR && server.why == NULL)
			abort();
		pos += piece;
	}
	/* Data that came out is what was sealed, in order (before anything raw). */
	if (!raw && memcmp(got, want, ngot < nwant ? ngot : nwant) != 0)
		abort();
	if (!raw && rv == TLSREC_MORE && ngot != nwant)
		abort();
	free(server.part);
	free(server.pend);
	return 0;
}
