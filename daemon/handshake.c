/*
 * handshake.c — PURE (+libcrypto). The HTTP/1.1 half of the WebSocket
 * opening handshake (RFC 6455 §4.2): find the end of a request head, parse
 * and validate it in place, build the 101 or the error answer.
 *
 * Why the HTTP parser is written by hand: the only C HTTP parser packaged in
 * Debian is nodejs's http-parser (libhttp-parser-dev 2.9.4), which upstream
 * has archived and no longer maintains; its successor llhttp is generated
 * from TypeScript and is not packaged as a C library. And we need far less
 * than a general HTTP parser: one request head of at most HS_HEAD_MAX bytes,
 * already whole in memory, read once, in place, with no allocation, no
 * callbacks and a fixed cap on header lines. Where RFC 9112 lets a recipient
 * choose between leniency and refusal (whitespace, folding, bare CR) we
 * refuse: our peers are browsers and WebSocket libraries, which never need
 * the leniency, and every ambiguity accepted is one a proxy in front of us
 * may resolve differently. The one syntactic leniency kept is bare LF line
 * endings (RFC 9112 §2.2), which hand-typed test clients send.
 *
 * Every string in a struct hs_request points into the caller's buffer.
 * The only library used is libcrypto (SHA-1 and base64 encoding); the SHA-1
 * context is kept per thread (see hs_accept_key), the only state here.
 */

#include <sys/types.h>

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include <openssl/evp.h>

#include "handshake.h"

/* RFC 6455 §1.3: appended to the key before hashing. */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* RFC 6455 §4.2.1: base64 of 16 bytes is 22 symbols and "==". */
#define WS_KEY_LEN	24

/* A bounded output buffer; after the first thing that did not fit, no more. */
struct out {
	char	*p;
	size_t	 cap;
	size_t	 len;
	int	 full;
};

static int
fail(struct hs_request *req, int status, const char *error)
{
	req->status = status;
	req->error = error;
	return status;
}

/* RFC 9110 §5.6.2: tchar. */

static int
is_token(const char *p, size_t len)
{
	size_t	i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (!http_is_tchar((unsigned char)p[i]))
			return 0;
	}
	return 1;
}


/* Control characters: RFC 5234 CTL, which HTAB belongs to. */

static int
is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* ASCII-only, so the answer does not depend on the locale. */

/* Case-insensitive comparison of s with the NUL-terminated lit. */



/*
 * Next non-empty element of a comma-separated list, OWS trimmed (RFC 9110
 * §5.6.1: recipients must accept and ignore empty elements). Returns 0 at
 * the end of the list.
 */

/*
 * Cuts the line starting at *pos off buf[0..end), without its LF and one CR
 * before it (RFC 9112 §2.2 lets us accept a bare LF). Returns 0 when there is
 * no LF left. Any other CR stays in the line and is refused as a CTL.
 */

ssize_t
hs_head_end(const char *buf, size_t len)
{
	const char	*lf;
	size_t		 n, i, j;

	/*
	 * The head ends with an empty line: a LF followed by LF or CR LF.
	 * Looking only at the first HS_HEAD_MAX bytes bounds the work per call
	 * and means a terminator that ends past the limit is never found.
	 */
	n = len < HS_HEAD_MAX ? len : HS_HEAD_MAX;
	for (i = 0; i < n && (lf = memchr(buf + i, '\n', n - i)) != NULL;) {
		i = j = lf - buf + 1;
		if (j < n && buf[j] == '\r')
			j++;
		if (j < n && buf[j] == '\n')
			return j + 1;
	}
	return len >= HS_HEAD_MAX ? -1 : 0;
}

/* RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive. */
static int
parse_version(struct hs_str v, struct hs_request *req)
{
	if (v.len != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[6] != '.' ||
	    v.p[5] < '0' || v.p[5] > '9' || v.p[7] < '0' || v.p[7] > '9')
		return fail(req, 400, "malformed HTTP version");
	/*
	 * RFC 6455 §4.1 requires 1.1; RFC 9110 §2.5 says a later 1.x is to be
	 * handled as 1.1.
	 */
	if (v.p[5] != '1' || v.p[7] == '0')
		return fail(req, 400, "HTTP/1.1 required");
	return 0;
}

/* RFC 9112 §3: method SP request-target SP HTTP-version. */
static int
parse_request_line(struct hs_str line, struct hs_request *req)
{
	const char	*end, *sp1, *sp2, *q;
	struct hs_str	 version;
	size_t		 i;

	end = line.p + line.len;
	if ((sp1 = memchr(line.p, ' ', line.len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', end - sp1 - 1)) == NULL)
		return fail(req, 400, "malformed request line");

	if (!is_token(line.p, sp1 - line.p))
		return fail(req, 400, "malformed method");
	req->method.p = line.p;
	req->method.len = sp1 - line.p;

	/*
	 * RFC 6455 §4.1 sends origin-form (RFC 9112 §3.2.1), which has no
	 * fragment (RFC 6455 §3). Only visible ASCII: URIs have nothing else
	 * (RFC 3986 §2), and refusing the rest keeps control bytes out of
	 * routing and logs.
	 */
	req->target.p = sp1 + 1;
	req->target.len = sp2 - sp1 - 1;
	if (req->target.len == 0 || req->target.p[0] != '/')
		return fail(req, 400, "request-target is not origin-form");
	for (i = 0; i < req->target.len; i++) {
		if ((unsigned char)req->target.p[i] <= 0x20 ||
		    (unsigned char)req->target.p[i] >= 0x7f ||
		    req->target.p[i] == '#')
			return fail(req, 400,
			    "bad character in request-target");
	}
	req->path = req->target;
	if ((q = memchr(req->target.p, '?', req->target.len)) != NULL) {
		req->path.len = q - req->target.p;
		req->query.p = q + 1;
		req->query.len = req->target.len - req->path.len - 1;
	}

	version.p = sp2 + 1;
	version.len = end - version.p;
	return parse_version(version, req);
}

/* RFC 9112 §5: field-name ":" OWS field-value OWS. */
static int
parse_header(struct hs_str line, struct hs_request *req)
{
	struct hs_header	*h;
	const char		*colon;
	size_t			 i, nlen;

	/* RFC 9112 §5.2: obs-fold is refused rather than unfolded. */
	if (http_is_ows(line.p[0]))
		return fail(req, 400, "obsolete line folding");
	if ((colon = memchr(line.p, ':', line.len)) == NULL)
		return fail(req, 400, "header line without colon");
	nlen = colon - line.p;
	/* RFC 9112 §5.1: no whitespace between field name and colon. */
	if (nlen > 0 && http_is_ows(line.p[nlen - 1]))
		return fail(req, 400, "whitespace before colon");
	if (!is_token(line.p, nlen))
		return fail(req, 400, "malformed header name");
	/* RFC 9110 §5.5: field-content is VCHAR, obs-text, SP and HTAB. */
	for (i = nlen + 1; i < line.len; i++) {
		if (http_is_ctl((unsigned char)line.p[i]) && line.p[i] != '\t')
			return fail(req, 400, "bad character in header value");
	}

	h = &req->headers[req->nheaders++];
	h->name.p = line.p;
	h->name.len = nlen;
	h->value = http_trim_ows(colon + 1, line.len - nlen - 1);
	return 0;
}

/* How many times the header occurs; *first is its first occurrence. */
static size_t
header_count(const struct hs_request *req, const char *name,
    const struct hs_header **first)
{
	size_t	i, n = 0, len = strlen(name);

	*first = NULL;
	/* Length first: most names differ in it, and it costs one compare. */
	for (i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name.len != len ||
		    !http_str_caseeq(req->headers[i].name, name))
			continue;
		if (n++ == 0)
			*first = &req->headers[i];
	}
	return n;
}

/*
 * Whether any occurrence of the list-valued header holds the element token,
 * case-insensitively: "Connection: keep-alive" and "Connection: Upgrade" on
 * two lines mean the same as one line with both (RFC 9110 §5.3).
 */
static int
list_has(const struct hs_request *req, const char *name, const char *token)
{
	struct hs_str	elem;
	size_t		i, pos, len = strlen(name);

	for (i = 0; i < req->nheaders; i++) {
		if (req->headers[i].name.len != len ||
		    !http_str_caseeq(req->headers[i].name, name))
			continue;
		pos = 0;
		while (http_list_next(req->headers[i].value, &pos, &elem)) {
			if (http_str_caseeq(elem, token))
				return 1;
		}
	}
	return 0;
}

/* RFC 3986 §3.2.2-3: reg-name, IP-literal or IPv4, then ":" port. */
static int
host_valid(struct hs_str host)
{
	size_t		i;
	unsigned char	c;

	if (host.len == 0)
		return 0;
	for (i = 0; i < host.len; i++) {
		c = host.p[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (strchr("-._~%!$&'()*+,;=:[]", c) == NULL || c == '\0')
			return 0;
	}
	return 1;
}

/*
 * RFC 6455 §4.2.1 item 5: the key must decode to 16 bytes, which in base64 is
 * exactly 22 symbols and "==". The unused low bits of the last symbol are
 * not checked (RFC 4648 §3.5 leaves that to the decoder): they change
 * nothing about the length, and the key is only ever hashed as text.
 */
static int
key_valid(struct hs_str key)
{
	size_t	i;

	if (key.len != WS_KEY_LEN || key.p[22] != '=' || key.p[23] != '=')
		return 0;
	for (i = 0; i < 22; i++) {
		if (!is_b64((unsigned char)key.p[i]))
			return 0;
	}
	return 1;
}

/* Splits the head into lines, the request line and headers: 400 or 431. */
static int
parse_head(const char *buf, size_t head_len, struct hs_request *req)
{
	const struct hs_header	*h;
	struct hs_str		 line;
	size_t			 pos = 0, n;

	if (head_len > HS_HEAD_MAX)
		return fail(req, 431, "request head too large");
	if (head_len == 0 || !http_next_line(buf, head_len, &pos, &line))
		return fail(req, 400, "incomplete request head");
	if (parse_request_line(line, req) != 0)
		return req->status;
	for (;;) {
		if (!http_next_line(buf, head_len, &pos, &line))
			return fail(req, 400, "incomplete request head");
		if (line.len == 0)
			break;
		if (req->nheaders == HS_MAX_HEADERS)
			return fail(req, 431, "too many header lines");
		if (parse_header(line, req) != 0)
			return req->status;
	}
	/* head_len comes from hs_head_end, so the empty line is the last. */
	if (pos != head_len)
		return fail(req, 400, "bytes after the request head");

	/* RFC 9112 §3.2: exactly one Host, and a valid one. */
	if ((n = header_count(req, "Host", &h)) == 0)
		return fail(req, 400, "missing Host");
	if (n > 1)
		return fail(req, 400, "duplicate Host");
	if (!host_valid(h->value))
		return fail(req, 400, "bad Host");
	req->host = h->value;
	return 0;
}

/* RFC 6455 §4.2.2 item 4 and §4.4: 426 unless the one version is 13. */
static int
check_version(struct hs_request *req)
{
	const struct hs_header	*h;
	size_t			 n;

	if ((n = header_count(req, "Sec-WebSocket-Version", &h)) == 0)
		return fail(req, 426, "missing Sec-WebSocket-Version");
	if (n > 1 || !http_str_eq(h->value, "13"))
		return fail(req, 426, "unsupported Sec-WebSocket-Version");
	return 0;
}

/* RFC 6455 §4.2.1: the rest of what makes this an upgrade request. */
static int
check_upgrade(struct hs_request *req)
{
	const struct hs_header	*h;
	size_t			 n;

	if (!list_has(req, "Upgrade", "websocket"))
		return fail(req, 400, "missing Upgrade: websocket");
	if (!list_has(req, "Connection", "upgrade"))
		return fail(req, 400, "missing Connection: Upgrade");

	if ((n = header_count(req, "Sec-WebSocket-Key", &h)) == 0)
		return fail(req, 400, "missing Sec-WebSocket-Key");
	if (n > 1)
		return fail(req, 400, "duplicate Sec-WebSocket-Key");
	if (!key_valid(h->value))
		return fail(req, 400, "bad Sec-WebSocket-Key");
	req->key = h->value;

	/*
	 * Two Origins would leave the allowlist check and a proxy in front of
	 * us free to disagree on which one counts.
	 */
	if ((n = header_count(req, "Origin", &h)) > 1)
		return fail(req, 400, "duplicate Origin");
	if (h != NULL)
		req->origin = h->value;

	/*
	 * Bytes after the head are WebSocket frames to us; a body would be
	 * read as frames, and a proxy that forwards it as a body would not
	 * see the same stream as we do.
	 */
	if (header_count(req, "Transfer-Encoding", &h) > 0)
		return fail(req, 400, "request body not allowed");
	n = header_count(req, "Content-Length", &h);
	if (n > 1 || (n == 1 && !http_str_eq(h->value, "0")))
		return fail(req, 400, "request body not allowed");

	if (header_count(req, "Sec-WebSocket-Protocol", &h) > 0)
		req->protocols = h->value;
	return 0;
}

int
hs_request_parse(const char *buf, size_t head_len, struct hs_request *req)
{
	/*
	 * Everything but the header array, which is 2 KiB: parse_head fills
	 * headers[0..nheaders) and nothing reads past that.
	 */
	memset(req, 0, offsetof(struct hs_request, headers));
	req->nheaders = 0;
	req->status = 0;
	req->error = NULL;
	if (parse_head(buf, head_len, req) != 0)
		return req->status;
	/* RFC 6455 §4.1: the method is GET; RFC 9110 §15.5.6 says 405. */
	if (!http_str_eq(req->method, "GET"))
		return fail(req, 405, "method not allowed");
	if (check_version(req) != 0)
		return req->status;
	return check_upgrade(req);
}

const struct hs_header *
hs_request_header(const struct hs_request *req, const char *name)
{
	const struct hs_header	*h;

	header_count(req, name, &h);
	return h;
}

/*
 * SHA-1 through libcrypto without its per-call costs: EVP_sha1() makes
 * OpenSSL 3 look the algorithm up (locks, hash tables) on every init, and
 * a fresh EVP_MD_CTX is a malloc and a free. So the algorithm is fetched
 * once per process and each thread (event loop) keeps one context, freed
 * when the thread exits.
 */
static pthread_once_t	 sha1_once = PTHREAD_ONCE_INIT;
static EVP_MD		*sha1_md;
static pthread_key_t	 sha1_key;
static _Thread_local EVP_MD_CTX *sha1_ctx;

static void
sha1_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void
sha1_init(void)
{
	sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL);
	if (pthread_key_create(&sha1_key, sha1_ctx_free) != 0 && sha1_md != NULL) {
		EVP_MD_free(sha1_md);
		sha1_md = NULL;
	}
}

int
hs_init(void)
{
	return pthread_once(&sha1_once, sha1_init) == 0 && sha1_md != NULL ? 0 : -1;
}

void
hs_accept_key(const char *key, size_t key_len, char out[HS_ACCEPT_LEN + 1])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	int		 ok;

	/*
	 * Two updates rather than one buffer: key_len is the caller's, so
	 * no fixed buffer holds key + GUID. If libcrypto fails (out of
	 * memory) the answer is "" and hs_build_101 refuses it.
	 */
	out[0] = '\0';
	if (pthread_once(&sha1_once, sha1_init) != 0 || sha1_md == NULL)
		return;
	if (sha1_ctx == NULL) {
		if ((sha1_ctx = EVP_MD_CTX_new()) == NULL)
			return;
		if (pthread_setspecific(sha1_key, sha1_ctx) != 0) {
			EVP_MD_CTX_free(sha1_ctx);
			sha1_ctx = NULL;
			return;
		}
	}
	ok = EVP_DigestInit_ex2(sha1_ctx, sha1_md, NULL) &&
	    EVP_DigestUpdate(sha1_ctx, key, key_len) &&
	    EVP_DigestUpdate(sha1_ctx, WS_GUID, sizeof WS_GUID - 1) &&
	    EVP_DigestFinal_ex(sha1_ctx, md, &mdlen);
	if (ok && mdlen == 20)
		EVP_EncodeBlock((unsigned char *)out, md, mdlen);
}

int
hs_select_subprotocol(struct hs_str offered, char *const *supported, size_t n)
{
	struct hs_str	elem;
	size_t		i, pos = 0;

	/* RFC 6455 §4.1: subprotocol names are compared case-sensitively. */
	while (http_list_next(offered, &pos, &elem)) {
		for (i = 0; i < n; i++) {
			if (http_str_eq(elem, supported[i]))
				return (int)i;
		}
	}
	return -1;
}

int
hs_origin_allowed(struct hs_str origin, char *const *allowed, size_t n)
{
	size_t	i;

	if (n == 0)
		return 1;
	if (origin.p == NULL)
		return 0;
	/* RFC 6454 §6.2 serializes scheme and host in lower case. */
	for (i = 0; i < n; i++) {
		if (http_str_caseeq(origin, allowed[i]))
			return 1;
	}
	return 0;
}

static void
out_add(struct out *o, const char *s, size_t len)
{
	if (o->full || len > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, len);
	o->len += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void
out_uint(struct out *o, size_t v)
{
	char	tmp[24];
	size_t	i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	out_add(o, tmp + i, sizeof tmp - i);
}

/* NUL-terminates; the length, or 0 when the answer and NUL did not fit. */
static size_t
out_finish(struct out *o)
{
	if (o->full || o->len == o->cap)
		return 0;
	o->p[o->len] = '\0';
	return o->len;
}

static int
accept_valid(const char *accept)
{
	size_t	i;

	for (i = 0; i < HS_ACCEPT_LEN - 1; i++) {
		if (!is_b64((unsigned char)accept[i]))
			return 0;
	}
	return accept[i] == '=' && accept[i + 1] == '\0';
}

size_t
hs_build_101(char *out, size_t cap, const char *accept, const char *subprotocol)
{
	struct out	o = { out, cap, 0, 0 };

	/* Both go into header lines: refuse anything that could break one. */
	if (!accept_valid(accept))
		return 0;
	if (subprotocol != NULL && !is_token(subprotocol, strlen(subprotocol)))
		return 0;

	out_str(&o, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: ");
	out_str(&o, accept);
	out_str(&o, "\r\n");
	if (subprotocol != NULL) {
		out_str(&o, "Sec-WebSocket-Protocol: ");
		out_str(&o, subprotocol);
		out_str(&o, "\r\n");
	}
	out_str(&o, "\r\n");
	return out_finish(&o);
}

size_t
hs_build_error(char *out, size_t cap, int status, const char *detail)
{
	struct out	 o = { out, cap, 0, 0 };
	const char	*reason;
	size_t		 body, i;
	char		 c;

	if (status < 400 || status > 599 ||
	    (reason = hs_status_reason(status)) == NULL)
		return 0;
	if (detail != NULL && *detail == '\0')
		detail = NULL;
	/* "NNN Reason[: detail]\n" */
	body = 4 + strlen(reason) + (detail ? 2 + strlen(detail) : 0) + 1;

	out_str(&o, "HTTP/1.1 ");
	out_uint(&o, (size_t)status);
	out_str(&o, " ");
	out_str(&o, reason);
	out_str(&o, "\r\nContent-Type: text/plain\r\nContent-Length: ");
	out_uint(&o, body);
	out_str(&o, "\r\n");
	if (status == 405) {
		/* RFC 9110 §15.5.6: a 405 lists the allowed methods. */
		out_str(&o, "Allow: GET\r\n");
	}
	if (status == 426) {
		/*
		 * RFC 6455 §4.4 names the versions we speak; RFC 9110
		 * §15.5.22 requires Upgrade in a 426, and §7.8 a Connection
		 * option with it.
		 */
		out_str(&o, "Upgrade: websocket\r\n"
		    "Sec-WebSocket-Version: 13\r\n"
		    "Connection: Upgrade, close\r\n");
	} else
		out_str(&o, "Connection: close\r\n");
	out_str(&o, "\r\n");

	out_uint(&o, (size_t)status);
	out_str(&o, " ");
	out_str(&o, reason);
	if (detail != NULL) {
		out_str(&o, ": ");
		/* The body is promised to be one line. */
		for (i = 0; detail[i] != '\0'; i++) {
			c = http_is_ctl((unsigned char)detail[i]) ? '?' : detail[i];
			out_add(&o, &c, 1);
		}
	}
	out_str(&o, "\n");
	return out_finish(&o);
}

const char *
hs_status_reason(int status)
{
	switch (status) {
	case 101:
		return "Switching Protocols";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	}
	return NULL;
}
