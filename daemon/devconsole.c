/*
 * devconsole.c — see devconsole.h.
 *
 * The page's one inline script and one inline style are allowed by their
 * SHA-256 (CSP Level 2 hash sources), computed once from the embedded page,
 * so the policy forbids everything else: no other script or style, no
 * image, frame, plugin, base URL or form target, and network connections
 * to the page's own origin only (connect-src 'self', which since CSP Level 3
 * also matches ws:// and wss:// of the same host and port). The hashes are
 * computed here rather than written into the source so the page can be
 * edited freely.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "devconsole.h"

/* Generated from devconsole.html by the Makefile (devconsole_html.c). */
extern const char	devconsole_html[];
extern const size_t	devconsole_html_len;

#define SHA256_B64	45	/* 44 base64 characters and a NUL */

static pthread_once_t	hash_once = PTHREAD_ONCE_INIT;
static char		script_hash[SHA256_B64];
static char		style_hash[SHA256_B64];

/* base64(SHA-256) of what lies between <tag> and </tag>; "" if absent. */
static void
element_hash(const char *open, const char *close, char out[SHA256_B64])
{
	const char	*p, *q;
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;

	out[0] = '\0';
	if ((p = strstr(devconsole_html, open)) == NULL ||
	    (q = strstr(p, close)) == NULL)
		return;
	p += strlen(open);
	if (EVP_Digest(p, (size_t)(q - p), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return;
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static void
compute_hashes(void)
{
	element_hash("<script>", "</script>", script_hash);
	element_hash("<style>", "</style>", style_hash);
}

size_t
devconsole_head(char *out, size_t cap)
{
	int	n;

	/* Once for the process, whichever event loop serves the page first. */
	pthread_once(&hash_once, compute_hashes);
	if (script_hash[0] == '\0' || style_hash[0] == '\0')
		return 0;
	n = snprintf(out, cap,
	    "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Content-Security-Policy: default-src 'none'; script-src 'sha256-%s'; "
	    "style-src 'sha256-%s'; connect-src 'self'; base-uri 'none'; "
	    "form-action 'none'; frame-ancestors 'none'\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Cache-Control: no-store\r\n"
	    "Connection: close\r\n"
	    "\r\n", devconsole_html_len, script_hash, style_hash);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

const char *
devconsole_body(size_t *len)
{
	*len = devconsole_html_len;
	return devconsole_html;
}
