/*
 * main.c — wsrouted-cli, the command-line WebSocket client: options, the
 * opening handshake, then one poll(2) loop over stdin and the connection.
 *
 * Frames are parsed by the daemon's codec (daemon/frame.c) with
 * expect_masked = false, so the server's frames are held to the same rules
 * the daemon applies to clients. Output is one byte queue: every frame is
 * built whole (header, then the payload masked with a fresh RAND_bytes key)
 * at its end, and the loop writes from its front as the socket accepts.
 */
#include "build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "client_handshake.h"
#include "frame.h"
#include "handshake.h"
#include "transport.h"
#include "utf8.h"

/* Exit statuses (documented in wsrouted-cli(1)). */
enum {
	RC_OK		= 0,	/* closed normally */
	RC_LOCAL	= 1,	/* local error: stdin/stdout, memory, interrupted */
	RC_USAGE	= 2,
	RC_CONNECT	= 3,	/* DNS, TCP connect, connect timeout */
	RC_REFUSED	= 4,	/* the server answered the upgrade with another status */
	RC_PROTOCOL	= 5,	/* the server broke RFC 6455 (or our size limits) */
	RC_TIMEOUT	= 6,
	RC_ABNORMAL	= 7,	/* no close frame, or a close code other than 1000/1001 */
	RC_TLS		= 8,
};

#define PROG			"wsrouted-cli"
#define DEFAULT_CONNECT_MS	10000
#define DEFAULT_HANDSHAKE_MS	10000
#define DEFAULT_CLOSE_MS	5000
#define DEFAULT_MAX_FRAME	(1ULL << 20)
#define DEFAULT_MAX_MESSAGE	(16ULL << 20)
#define MAX_SIZE_LIMIT		(2ULL << 30)
#define READ_BUF		(256 * 1024)
#define OUT_HIGH		(1 << 20)	/* stop reading stdin above this much unsent */
#define RESPONSE_MAX		HS_HEAD_MAX

struct options {
	struct wsc_url	 url;
	const char	*url_arg;
	const char	**messages;
	size_t		 nmessages;
	uint64_t	 count;		/* -n */
	bool		 count_set;
	bool		 binary;
	bool		 raw;
	bool		 verbose;
	const char	**headers;
	size_t		 nheaders;
	char		**protocols;
	size_t		 nprotocols;
	const char	*origin;
	uint64_t	 ping_ms;	/* 0: no pings */
	uint64_t	 timeout_ms;	/* 0: not given */
	uint64_t	 connect_timeout_ms;
	uint64_t	 max_frame;	/* fragment size; with max_frame_set, also the limit */
	bool		 max_frame_set;
	uint64_t	 max_message;
	uint16_t	 close_code;
	const char	*close_reason;
	struct tls_options tls;
};

struct buf {
	uint8_t	*p;
	size_t	 off;	/* data is p[off..len) */
	size_t	 len;
	size_t	 cap;
};

enum state {
	S_OPEN,		/* messages flow both ways */
	S_CLOSE_SENT,	/* our close is queued; waiting for the server's */
	S_DRAIN,	/* the WebSocket is over: flush, half-close, wait for EOF */
};

struct session {
	const struct options	*o;
	struct transport	*t;
	struct buf		 out;		/* frames to send */
	struct buf		 line;		/* stdin text not yet ending in a newline */
	uint8_t			*rbuf;		/* socket reads */
	uint8_t			*ibuf;		/* stdin reads (--binary) */
	size_t			 ichunk;
	struct ws_parser	 parser;
	struct ws_limits	 lim;
	enum state		 state;
	int			 result;	/* exit status, once in S_DRAIN */
	bool			 done;
	bool			 stdin_open;
	bool			 stdout_ok;
	bool			 close_sent;
	bool			 shut;		/* our side is half-closed */
	uint16_t		 sent_code;
	size_t			 next_message;	/* -m: index of the next to send */
	uint64_t		 received;	/* data messages received */
	uint64_t		 lines;		/* stdin lines read */
	uint32_t		 ping_seq;
	int64_t			 idle_deadline;	/* S_OPEN with --timeout; else -1 */
	int64_t			 close_deadline;/* S_CLOSE_SENT */
	int64_t			 drain_deadline;/* S_DRAIN */
	int64_t			 next_ping;	/* -1: none */
};

/* ---------------------------------------------------------------- helpers */

static void
warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
warnx_(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((noreturn))
die(int rc, const char *what)
{
	warnx_("%s", what);
	exit(rc);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die(RC_LOCAL, "out of memory");
	return p;
}

/* Control characters and bytes >= 0x7f as '?': for status lines and reasons. */
static void
print_sanitized(FILE *f, const void *data, size_t len)
{
	const unsigned char	*p = data;
	size_t			 i;

	for (i = 0; i < len; i++)
		fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?', f);
}

/* Prints a UTF-8 close reason as is unless it has control characters. */
static void
print_reason(FILE *f, const uint8_t *r, size_t len)
{
	size_t	i;

	fputc('"', f);
	for (i = 0; i < len; i++)
		fputc(r[i] < 0x20 || r[i] == 0x7f ? '?' : r[i], f);
	fputc('"', f);
}

static void
fmt_duration(char *out, size_t cap, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(out, cap, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(out, cap, "%" PRIu64 "ms", ms);
}

/* ---------------------------------------------------------------- buffers */

/* Room for `more` bytes at p[len..]; moves the data down before growing. */
static uint8_t *
buf_reserve(struct buf *b, size_t more)
{
	size_t	need, cap;

	if (b->off > 0 && (b->off == b->len || b->cap - b->len < more)) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + more;
	if (need > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	return b->p + b->len;
}

static size_t
buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* ---------------------------------------------------------------- parsing */

/* A number, optional blanks, one of the units: the daemon's grammar. */
static int
parse_unit(const char *s, const char *const *names, const uint64_t *mult, size_t n,
    uint64_t *out)
{
	uint64_t	 v = 0;
	const char	*p = s, *q;
	size_t		 i;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	for (q = p; *q == ' ' || *q == '\t'; q++)
		;
	if (q != p && *q == '\0')
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(q, names[i]) == 0)
			break;
	}
	if (i == n || (mult[i] != 0 && v > UINT64_MAX / mult[i]))
		return -1;
	*out = v * mult[i];
	return 0;
}

static int
parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const	names[] = { "", "ms", "s", "m", "h" };
	static const uint64_t		mult[] = { 1000, 1, 1000, 60000, 3600000 };

	if (parse_unit(s, names, mult, 5, out) == -1 || *out > 168ULL * 3600000)
		return -1;
	return 0;
}

static int
parse_size(const char *s, uint64_t *out)
{
	static const char *const	names[] = { "", "B", "K", "KiB", "M", "MiB", "G", "GiB" };
	static const uint64_t		mult[] = { 1, 1, 1ULL << 10, 1ULL << 10, 1ULL << 20,
					    1ULL << 20, 1ULL << 30, 1ULL << 30 };

	return parse_unit(s, names, mult, 8, out);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	exit(RC_USAGE);
}

static void
usage(void)
{
	printf(
	    "usage: " PROG " [options] ws://HOST[:PORT][/PATH] | wss://...\n"
	    "\n"
	    "Connects, upgrades to WebSocket, sends each stdin line as a text message and\n"
	    "prints each message received, one per line (binary ones in hex). At the end\n"
	    "of stdin it closes with 1000 and waits for the server's close.\n"
	    "\n"
	    "  -m, --message TEXT      send TEXT, print the reply, then close (repeatable:\n"
	    "                          each is sent after the reply to the one before)\n"
	    "  -n, --count N           close after N messages received\n"
	    "      --binary            send stdin (and -m) as binary messages: each read of\n"
	    "                          stdin, up to --max-message-size bytes, is one message\n"
	    "      --raw               write binary messages to stdout unchanged, not in hex\n"
	    "  -H, --header 'K: V'     add a request header (repeatable)\n"
	    "      --subprotocol P     offer subprotocol P (repeatable, or P1,P2,...)\n"
	    "      --origin ORIGIN     send Origin: ORIGIN\n"
	    "      --ping-period DUR   send a ping every DUR\n"
	    "      --timeout DUR       give up when nothing is received for DUR (exit 6);\n"
	    "                          also the handshake (default 10s) and close (5s) waits\n"
	    "      --connect-timeout DUR  TCP connect limit (default 10s)\n"
	    "      --max-frame-size SIZE  fragment longer messages (default 1MiB) and\n"
	    "                          refuse longer frames (default: --max-message-size)\n"
	    "      --max-message-size SIZE  largest message sent or received (default 16MiB)\n"
	    "      --close CODE[:REASON]  the close we send when done (default 1000)\n"
	    "      --cacert FILE       trust the CA certificates in FILE (PEM)\n"
	    "  -k, --insecure          do not verify the server's certificate or name\n"
	    "  -v, --verbose           print the handshake and control frames on stderr\n"
	    "  -h, --help              print this help and exit\n"
	    "      --version           print the version and exit\n"
	    "\n"
	    "DUR: a number with ms, s, m or h (bare: seconds). SIZE: bytes, or with\n"
	    "K/KiB, M/MiB, G/GiB.\n"
	    "Exit status: 0 normal close, 1 local error, 2 usage, 3 connection failed,\n"
	    "4 handshake refused, 5 protocol error, 6 timeout, 7 abnormal close,\n"
	    "8 TLS failure. See wsrouted-cli(1).\n");
}

static void
add_protocols(struct options *o, const char *arg)
{
	const char	*p = arg, *end;
	size_t		 len, i;
	char		*s;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strcspn(p, ",");
		len = end - p;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!wsc_token_valid(p, len))
			usage_error("--subprotocol: '%s' is not a list of tokens", arg);
		s = xrealloc(NULL, len + 1);
		memcpy(s, p, len);
		s[len] = '\0';
		for (i = 0; i < o->nprotocols; i++) {
			if (strcmp(o->protocols[i], s) == 0)
				usage_error("--subprotocol: '%s' offered twice", s);
		}
		o->protocols = xrealloc(o->protocols, (o->nprotocols + 1) * sizeof(char *));
		o->protocols[o->nprotocols++] = s;
		if (*end == '\0')
			break;
		p = end + 1;
	}
}

static void
parse_close(struct options *o, const char *arg)
{
	const char	*colon = strchr(arg, ':');
	char		 num[8];
	uint64_t	 v;
	size_t		 n = colon ? (size_t)(colon - arg) : strlen(arg);

	if (n == 0 || n >= sizeof(num))
		usage_error("--close: '%s' is not CODE[:REASON]", arg);
	memcpy(num, arg, n);
	num[n] = '\0';
	if (strspn(num, "0123456789") != n || (v = strtoull(num, NULL, 10)) > 65535 ||
	    !ws_close_code_valid((unsigned)v))
		usage_error("--close: %s is not a close code that may be sent "
		    "(1000-1003, 1007-1014, 3000-4999)", num);
	o->close_code = (uint16_t)v;
	o->close_reason = colon ? colon + 1 : NULL;
	if (o->close_reason != NULL) {
		if (strlen(o->close_reason) > WS_MAX_CLOSE_REASON)
			usage_error("--close: the reason is longer than 123 bytes");
		if (!utf8_valid((const uint8_t *)o->close_reason, strlen(o->close_reason)))
			usage_error("--close: the reason is not UTF-8");
	}
}

static void
parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_BINARY = 256, OPT_RAW, OPT_SUBPROTOCOL, OPT_ORIGIN, OPT_PING,
		OPT_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_MAX_FRAME, OPT_MAX_MESSAGE,
		OPT_CLOSE, OPT_CACERT, OPT_VERSION,
	};
	static const struct option longopts[] = {
		{ "message",		required_argument,	NULL, 'm' },
		{ "count",		required_argument,	NULL, 'n' },
		{ "binary",		no_argument,		NULL, OPT_BINARY },
		{ "raw",		no_argument,		NULL, OPT_RAW },
		{ "header",		required_argument,	NULL, 'H' },
		{ "subprotocol",	required_argument,	NULL, OPT_SUBPROTOCOL },
		{ "origin",		required_argument,	NULL, OPT_ORIGIN },
		{ "ping-period",	required_argument,	NULL, OPT_PING },
		{ "timeout",		required_argument,	NULL, OPT_TIMEOUT },
		{ "connect-timeout",	required_argument,	NULL, OPT_CONNECT_TIMEOUT },
		{ "max-frame-size",	required_argument,	NULL, OPT_MAX_FRAME },
		{ "max-message-size",	required_argument,	NULL, OPT_MAX_MESSAGE },
		{ "close",		required_argument,	NULL, OPT_CLOSE },
		{ "cacert",		required_argument,	NULL, OPT_CACERT },
		{ "insecure",		no_argument,		NULL, 'k' },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	const char	*why;
	uint64_t	 v;
	size_t		 i;
	int		 ch;

	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = DEFAULT_CONNECT_MS;
	o->max_frame = DEFAULT_MAX_FRAME;
	o->max_message = DEFAULT_MAX_MESSAGE;
	o->close_code = WS_CLOSE_NORMAL;

	while ((ch = getopt_long(argc, argv, "m:n:H:kvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			o->messages = xrealloc(o->messages, (o->nmessages + 1) * sizeof(char *));
			o->messages[o->nmessages++] = optarg;
			break;
		case 'n':
			if (parse_unit(optarg, (const char *const[]){ "" },
			    (const uint64_t[]){ 1 }, 1, &o->count) == -1)
				usage_error("-n: '%s' is not a number", optarg);
			o->count_set = true;
			break;
		case OPT_BINARY:
			o->binary = true;
			break;
		case OPT_RAW:
			o->raw = true;
			break;
		case 'H':
			if (wsc_header_check(optarg, &why) == -1) {
				fprintf(stderr, PROG ": --header '%s': %s\n", optarg, why);
				exit(RC_USAGE);
			}
			o->headers = xrealloc(o->headers, (o->nheaders + 1) * sizeof(char *));
			o->headers[o->nheaders++] = optarg;
			break;
		case OPT_SUBPROTOCOL:
			add_protocols(o, optarg);
			break;
		case OPT_ORIGIN:
			for (i = 0; optarg[i] != '\0'; i++) {
				if ((unsigned char)optarg[i] < 0x20 || optarg[i] == 0x7f)
					usage_error("--origin: control character in '%s'", optarg);
			}
			o->origin = optarg;
			break;
		case OPT_PING:
			if (parse_duration_ms(optarg, &o->ping_ms) == -1)
				usage_error("--ping-period: '%s' is not a duration (500ms, 10s, 1m)", optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_duration_ms(optarg, &o->timeout_ms) == -1)
				usage_error("--timeout: '%s' is not a duration (500ms, 10s, 1m)", optarg);
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_duration_ms(optarg, &o->connect_timeout_ms) == -1)
				usage_error("--connect-timeout: '%s' is not a duration (500ms, 10s, 1m)", optarg);
			break;
		case OPT_MAX_FRAME:
		case OPT_MAX_MESSAGE:
			if (parse_size(optarg, &v) == -1 || v == 0 || v > MAX_SIZE_LIMIT)
				usage_error("'%s' is not a size from 1 to 2GiB (64KiB, 1MiB)", optarg);
			if (ch == OPT_MAX_FRAME) {
				o->max_frame = v;
				o->max_frame_set = true;
			} else
				o->max_message = v;
			break;
		case OPT_CLOSE:
			parse_close(o, optarg);
			break;
		case OPT_CACERT:
			o->tls.cacert = optarg;
			break;
		case 'k':
			o->tls.insecure = true;
			break;
		case 'v':
			o->verbose = o->tls.verbose = true;
			break;
		case 'h':
			usage();
			exit(RC_OK);
		case OPT_VERSION:
			printf(PROG " %s\n", PACKAGE_VERSION);
			exit(RC_OK);
		default:
			fprintf(stderr, "Try '" PROG " --help' for more information.\n");
			exit(RC_USAGE);
		}
	}
	if (optind + 1 != argc)
		usage_error("%s", optind == argc ? "no URL given" : "more than one URL given");
	o->url_arg = argv[optind];
	if (wsc_url_parse(o->url_arg, &o->url, &why) == -1) {
		fprintf(stderr, PROG ": %s: %s\n", o->url_arg, why);
		exit(RC_USAGE);
	}
	for (i = 0; i < o->nmessages && !o->binary; i++) {
		if (!utf8_valid((const uint8_t *)o->messages[i], strlen(o->messages[i])))
			usage_error("-m: '%s' is not UTF-8 (use --binary)", o->messages[i]);
	}
	for (i = 0; i < o->nmessages; i++) {
		if (strlen(o->messages[i]) > o->max_message)
			usage_error("-m: message longer than --max-message-size");
	}
	if (!o->url.tls && (o->tls.cacert != NULL || o->tls.insecure))
		warnx_("--cacert and --insecure only apply to wss:// URLs");
}

/* ---------------------------------------------------------------- output */

static void
session_local_error(struct session *s, const char *what, const char *detail);

/* Writes all of p to stdout (blocking); false once stdout has failed. */
static bool
out_write(struct session *s, const void *p, size_t n)
{
	const uint8_t	*q = p;
	ssize_t		 w;

	while (s->stdout_ok && n > 0) {
		if ((w = write(STDOUT_FILENO, q, n)) == -1) {
			if (errno == EINTR)
				continue;
			s->stdout_ok = false;
			session_local_error(s, "stdout", strerror(errno));
			break;
		}
		q += w;
		n -= (size_t)w;
	}
	return s->stdout_ok;
}

static void
print_message(struct session *s, uint8_t opcode, const uint8_t *data, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 tmp[8192];
	size_t			 i, n = 0;

	if (opcode == WS_OP_TEXT || s->o->raw) {
		if (out_write(s, data, len) && opcode == WS_OP_TEXT)
			out_write(s, "\n", 1);
		return;
	}
	for (i = 0; i < len; i++) {
		tmp[n++] = hex[data[i] >> 4];
		tmp[n++] = hex[data[i] & 15];
		if (n == sizeof(tmp)) {
			if (!out_write(s, tmp, n))
				return;
			n = 0;
		}
	}
	tmp[n++] = '\n';	/* n < sizeof(tmp) here */
	out_write(s, tmp, n);
}

/* ---------------------------------------------------------------- sending */

static const char *
opname(uint8_t op)
{
	switch (op) {
	case WS_OP_PING:	return "ping";
	case WS_OP_PONG:	return "pong";
	case WS_OP_CLOSE:	return "close";
	case WS_OP_TEXT:	return "text";
	case WS_OP_BINARY:	return "binary";
	default:		return "continuation";
	}
}

/* Appends one frame, masked with a fresh key (RFC 6455 §5.3). */
static void
queue_frame(struct session *s, bool fin, uint8_t opcode, const uint8_t *data, size_t len)
{
	uint8_t	mask[4], *p;
	size_t	h;

	if (RAND_bytes(mask, sizeof(mask)) != 1)
		die(RC_LOCAL, "RAND_bytes failed: no masking key");
	p = buf_reserve(&s->out, WS_MAX_HEADER + len);
	h = ws_frame_header(p, fin, opcode, len, mask);
	if (len > 0) {
		memcpy(p + h, data, len);
		ws_mask(p + h, len, mask, 0);
	}
	s->out.len += h + len;
}

static void
queue_control(struct session *s, uint8_t opcode, const uint8_t *data, size_t len)
{
	if (s->o->verbose)
		fprintf(stderr, "> %s (%zu bytes)\n", opname(opcode), len);
	queue_frame(s, true, opcode, data, len);
}

/* A data message, in frames of at most --max-frame-size. */
static void
queue_message(struct session *s, uint8_t opcode, const uint8_t *data, size_t len)
{
	size_t	off = 0, n;

	do {
		n = len - off;
		if (n > s->o->max_frame)
			n = (size_t)s->o->max_frame;
		queue_frame(s, off + n == len, off == 0 ? opcode : WS_OP_CONT, data + off, n);
		off += n;
	} while (off < len);
}

static void
queue_close(struct session *s, uint16_t code, const char *reason)
{
	uint8_t	payload[WS_MAX_CONTROL];
	size_t	n;

	if (s->close_sent)
		return;
	n = ws_close_build(payload, code, reason);
	if (s->o->verbose) {
		fprintf(stderr, "> close");
		if (code != 0)
			fprintf(stderr, " %u", code);
		if (n > 2) {
			fputc(' ', stderr);
			print_reason(stderr, payload + 2, n - 2);
		}
		fputc('\n', stderr);
	}
	queue_frame(s, true, WS_OP_CLOSE, payload, n);
	s->close_sent = true;
	s->sent_code = code;
}

static int64_t
close_wait_ms(const struct session *s)
{
	return s->o->timeout_ms ? (int64_t)s->o->timeout_ms : DEFAULT_CLOSE_MS;
}

/* We are done sending: close with the configured code, wait for the server's. */
static void
begin_close(struct session *s, uint16_t code, const char *reason)
{
	if (s->state != S_OPEN)
		return;
	queue_close(s, code, reason);
	s->state = S_CLOSE_SENT;
	s->stdin_open = false;
	s->close_deadline = io_now() + close_wait_ms(s);
}

static void
begin_normal_close(struct session *s)
{
	begin_close(s, s->o->close_code, s->o->close_reason);
}

/* The WebSocket is over, with this exit status: flush, half-close, await EOF. */
static void
enter_drain(struct session *s, int result)
{
	if (s->state == S_DRAIN)
		return;
	s->state = S_DRAIN;
	s->result = result;
	s->stdin_open = false;
	s->drain_deadline = io_now() + close_wait_ms(s);
}

/* Fails the connection because of something on our side (exit 1). */
static void
session_local_error(struct session *s, const char *what, const char *detail)
{
	warnx_("%s: %s", what, detail);
	if (s->state == S_DRAIN)
		return;
	queue_close(s, WS_CLOSE_GOING_AWAY, "client error");
	enter_drain(s, RC_LOCAL);
}

static void
send_next_message(struct session *s)
{
	const char	*m;

	if (s->state != S_OPEN || s->next_message >= s->o->nmessages)
		return;
	m = s->o->messages[s->next_message++];
	queue_message(s, s->o->binary ? WS_OP_BINARY : WS_OP_TEXT, (const uint8_t *)m,
	    strlen(m));
}

/* ---------------------------------------------------------------- receiving */

static void
maybe_finish(struct session *s)
{
	if (s->state != S_OPEN)
		return;
	if (s->o->count_set) {
		if (s->received >= s->o->count)
			begin_normal_close(s);
	} else if (s->o->nmessages > 0 && s->received >= s->o->nmessages &&
	    s->next_message >= s->o->nmessages)
		begin_normal_close(s);
}

static void
on_message(struct session *s, const struct ws_event *ev)
{
	/* -n N prints exactly N, even if more arrive before the server's close. */
	if (s->o->count_set && s->received >= s->o->count)
		return;
	print_message(s, ev->opcode, ev->data, ev->len);
	s->received++;
	if (s->state != S_OPEN)
		return;
	if (!s->o->count_set || s->received < s->o->count)
		send_next_message(s);
	maybe_finish(s);
}

static bool
normal_code(uint16_t code)
{
	return code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY;
}

static void
on_close(struct session *s, const struct ws_event *ev)
{
	bool	ok;

	if (s->o->verbose) {
		fprintf(stderr, "< close");
		if (ev->code != WS_CLOSE_NO_STATUS)
			fprintf(stderr, " %u", ev->code);
		if (ev->len > 0) {
			fputc(' ', stderr);
			print_reason(stderr, ev->data, ev->len);
		}
		fputc('\n', stderr);
	}
	if (s->state == S_OPEN) {
		/* The server closes first: answer with its code (§5.5.1). */
		ok = normal_code(ev->code);
		queue_close(s, ev->code == WS_CLOSE_NO_STATUS ? 0 : ev->code, NULL);
	} else {
		/* The answer to our close completes the closing handshake. */
		ok = normal_code(ev->code) || ev->code == WS_CLOSE_NO_STATUS ||
		    ev->code == s->sent_code;
	}
	if (!ok) {
		fprintf(stderr, PROG ": the server closed the connection with ");
		if (ev->code == WS_CLOSE_NO_STATUS)
			fprintf(stderr, "no status code (1005)");
		else
			fprintf(stderr, "code %u", ev->code);
		if (ev->len > 0) {
			fprintf(stderr, ", reason ");
			print_reason(stderr, ev->data, ev->len);
		}
		fputc('\n', stderr);
	}
	enter_drain(s, ok ? RC_OK : RC_ABNORMAL);
}

static void
on_protocol_error(struct session *s, const struct ws_event *ev)
{
	warnx_("protocol error: %s (closing with %u)", ev->error, ev->code);
	queue_close(s, ev->code, ev->error);
	enter_drain(s, RC_PROTOCOL);
}

/* Runs the parser over freshly read bytes. */
static void
process_input(struct session *s, uint8_t *data, size_t len)
{
	struct ws_event	ev;
	size_t		off = 0;

	while (s->state != S_DRAIN) {
		switch (ws_parser_next(&s->parser, &s->lim, data, len, &off, &ev)) {
		case WS_EV_NONE:
			return;
		case WS_EV_MESSAGE:
			on_message(s, &ev);
			break;
		case WS_EV_PING:
			if (s->o->verbose)
				fprintf(stderr, "< ping (%zu bytes)\n", ev.len);
			if (s->state == S_OPEN)
				queue_control(s, WS_OP_PONG, ev.data, ev.len);
			break;
		case WS_EV_PONG:
			if (s->o->verbose)
				fprintf(stderr, "< pong (%zu bytes)\n", ev.len);
			break;
		case WS_EV_CLOSE:
			on_close(s, &ev);
			break;
		case WS_EV_ERROR:
			on_protocol_error(s, &ev);
			break;
		}
	}
}

static void
on_eof(struct session *s, const char *err)
{
	if (s->state != S_DRAIN) {
		if (err != NULL)
			warnx_("connection lost: %s (no close frame, 1006)", err);
		else
			warnx_("the server closed the connection without a close frame (1006)");
		s->result = RC_ABNORMAL;
	}
	s->done = true;
}

static void
read_socket(struct session *s)
{
	ssize_t	n;
	int	i;

	/* A bounded number of reads per turn keeps stdin and timers served. */
	for (i = 0; i < 16 && !s->done; i++) {
		n = transport_read(s->t, s->rbuf, READ_BUF);
		if (n == -1)
			return;
		if (n == 0 || n == -2) {
			on_eof(s, n == -2 ? s->t->err : NULL);
			return;
		}
		if (s->o->timeout_ms)
			s->idle_deadline = io_now() + (int64_t)s->o->timeout_ms;
		if (s->state == S_CLOSE_SENT)
			s->close_deadline = io_now() + close_wait_ms(s);
		if (s->state != S_DRAIN)
			process_input(s, s->rbuf, (size_t)n);
	}
}

static void
flush_socket(struct session *s)
{
	ssize_t	n;
	size_t	used;

	while ((used = buf_used(&s->out)) > 0) {
		n = transport_write(s->t, s->out.p + s->out.off, used);
		if (n == -1)
			return;
		if (n == -2) {
			/* A close frame may be waiting to be read: look before giving up. */
			s->out.off = s->out.len = 0;
			read_socket(s);
			if (!s->done)
				on_eof(s, s->t->err);
			return;
		}
		s->out.off += (size_t)n;
		if (s->state == S_CLOSE_SENT)
			s->close_deadline = io_now() + close_wait_ms(s);
	}
	s->out.off = s->out.len = 0;
}

/* ---------------------------------------------------------------- stdin */

static void
send_line(struct session *s, const uint8_t *p, size_t len)
{
	char	what[64];

	s->lines++;
	if (!utf8_valid(p, len)) {
		snprintf(what, sizeof(what), "stdin line %" PRIu64, s->lines);
		session_local_error(s, what, "not UTF-8 (use --binary to send bytes)");
		return;
	}
	queue_message(s, WS_OP_TEXT, p, len);
}

static void
stdin_eof(struct session *s)
{
	s->stdin_open = false;
	/* With -n the count, not the end of input, ends the session. */
	if (!s->o->count_set)
		begin_normal_close(s);
}

static void
read_stdin(struct session *s)
{
	uint8_t	*p, *nl;
	size_t	 start;
	ssize_t	 n;

	if (s->o->binary) {
		n = read(STDIN_FILENO, s->ibuf, s->ichunk);
		if (n > 0)
			queue_message(s, WS_OP_BINARY, s->ibuf, (size_t)n);
	} else {
		p = buf_reserve(&s->line, 65536);
		if ((n = read(STDIN_FILENO, p, 65536)) > 0) {
			s->line.len += (size_t)n;
			start = s->line.off;
			while (s->state == S_OPEN && (nl = memchr(s->line.p + start, '\n',
			    s->line.len - start)) != NULL) {
				send_line(s, s->line.p + start, (size_t)(nl - s->line.p) - start);
				start = (size_t)(nl - s->line.p) + 1;
			}
			s->line.off = start;
			if (buf_used(&s->line) > s->o->max_message && s->state == S_OPEN)
				session_local_error(s, "stdin",
				    "line longer than --max-message-size");
		}
	}
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == -1) {
		session_local_error(s, "stdin", strerror(errno));
		return;
	}
	if (n == 0) {
		if (!s->o->binary && buf_used(&s->line) > 0 && s->state == S_OPEN)
			send_line(s, s->line.p + s->line.off, buf_used(&s->line));
		s->line.off = s->line.len = 0;
		stdin_eof(s);
	}
}

/* ---------------------------------------------------------------- the loop */

static void
check_timers(struct session *s, int64_t now)
{
	char		d[32];
	uint8_t		seq[4];

	switch (s->state) {
	case S_OPEN:
		if (s->idle_deadline >= 0 && now >= s->idle_deadline) {
			fmt_duration(d, sizeof(d), s->o->timeout_ms);
			warnx_("timeout: nothing received for %s", d);
			queue_close(s, WS_CLOSE_GOING_AWAY, "timeout");
			enter_drain(s, RC_TIMEOUT);
			/* Send the close, but do not wait for an answer. */
			s->drain_deadline = now + 1000;
			break;
		}
		if (s->next_ping >= 0 && now >= s->next_ping) {
			s->ping_seq++;
			seq[0] = s->ping_seq >> 24;
			seq[1] = s->ping_seq >> 16;
			seq[2] = s->ping_seq >> 8;
			seq[3] = s->ping_seq;
			queue_control(s, WS_OP_PING, seq, sizeof(seq));
			s->next_ping = now + (int64_t)s->o->ping_ms;
		}
		break;
	case S_CLOSE_SENT:
		if (now >= s->close_deadline) {
			fmt_duration(d, sizeof(d), (uint64_t)close_wait_ms(s));
			warnx_("timeout: no close frame from the server within %s", d);
			s->result = RC_TIMEOUT;
			s->done = true;
		}
		break;
	case S_DRAIN:
		if (now >= s->drain_deadline)
			s->done = true;	/* the server keeps the TCP open: enough */
		break;
	}
}

static int64_t
next_deadline(const struct session *s)
{
	int64_t	d = -1;

	switch (s->state) {
	case S_OPEN:
		d = s->idle_deadline;
		if (s->next_ping >= 0 && (d < 0 || s->next_ping < d))
			d = s->next_ping;
		break;
	case S_CLOSE_SENT:
		d = s->close_deadline;
		break;
	case S_DRAIN:
		d = s->drain_deadline;
		break;
	}
	return d;
}

static void
on_signal(struct session *s, int sig)
{
	if (s->state == S_OPEN) {
		if (s->o->verbose)
			fprintf(stderr, "* %s: closing\n", strsignal(sig));
		begin_close(s, WS_CLOSE_GOING_AWAY, NULL);
		return;
	}
	warnx_("%s: exiting without waiting for the server", strsignal(sig));
	s->result = RC_LOCAL;
	s->done = true;
}

static int
run_session(const struct options *o, struct transport *t, uint8_t *early, size_t early_len)
{
	struct session	 s;
	struct pollfd	 pfd[2];
	enum io_status	 st;
	nfds_t		 n;
	bool		 want_stdin;
	int		 sig;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.t = t;
	s.state = S_OPEN;
	s.result = RC_OK;
	s.stdout_ok = true;
	s.stdin_open = o->nmessages == 0;
	/* Without --max-frame-size any frame within the message limit is fine:
	 * a server may answer our 1 MiB fragments with one big frame. */
	s.lim.max_frame_size = o->max_frame_set ? o->max_frame : o->max_message;
	s.lim.max_message_size = o->max_message;
	s.lim.expect_masked = false;
	ws_parser_init(&s.parser);
	s.rbuf = xrealloc(NULL, READ_BUF);
	s.ichunk = (size_t)o->max_message;
	if (o->binary && s.stdin_open)
		s.ibuf = xrealloc(NULL, s.ichunk);
	s.idle_deadline = o->timeout_ms ? io_now() + (int64_t)o->timeout_ms : -1;
	s.next_ping = o->ping_ms ? io_now() + (int64_t)o->ping_ms : -1;

	/* Frames that came with the 101. */
	if (early_len > 0)
		process_input(&s, early, early_len);
	send_next_message(&s);
	maybe_finish(&s);		/* -n 0 */

	while (!s.done) {
		check_timers(&s, io_now());
		if (s.done)
			break;
		if (s.state == S_DRAIN && buf_used(&s.out) == 0 && !s.shut) {
			transport_shutdown(t);
			s.shut = true;
		}
		pfd[0].fd = t->fd;
		pfd[0].events = transport_events(t, true, buf_used(&s.out) > 0);
		n = 1;
		want_stdin = s.state == S_OPEN && s.stdin_open && buf_used(&s.out) < OUT_HIGH;
		if (want_stdin) {
			pfd[1].fd = STDIN_FILENO;
			pfd[1].events = POLLIN;
			n = 2;
		}
		st = io_poll(pfd, n, next_deadline(&s), transport_pending(t));
		if (st == IO_SIGNAL) {
			sig = io_take_signal();
			on_signal(&s, sig);
			continue;
		}
		if (st == IO_FAIL) {
			session_local_error(&s, "poll", strerror(errno));
			s.done = true;
			break;
		}
		if (st == IO_TIMEOUT)
			continue;	/* check_timers acts on it */
		if (pfd[0].revents != 0 || transport_pending(t)) {
			read_socket(&s);
			if (s.done)
				break;
		}
		if (buf_used(&s.out) > 0)
			flush_socket(&s);
		if (want_stdin && pfd[1].revents != 0 && s.state == S_OPEN && s.stdin_open) {
			if (pfd[1].revents & POLLNVAL)
				stdin_eof(&s);
			else
				read_stdin(&s);
			if (buf_used(&s.out) > 0)
				flush_socket(&s);
		}
	}
	ws_parser_free(&s.parser);
	free(s.out.p);
	free(s.line.p);
	free(s.rbuf);
	free(s.ibuf);
	return s.result;
}

/* ---------------------------------------------------------------- handshake */

static void
print_head(const char *prefix, const char *head, size_t len)
{
	const char	*p = head, *end = head + len, *nl;
	size_t		 l;

	while (p < end) {
		nl = memchr(p, '\n', end - p);
		l = (nl ? nl : end) - p;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		fprintf(stderr, "%s", prefix);
		print_sanitized(stderr, p, l);
		fputc('\n', stderr);
		p = nl ? nl + 1 : end;
	}
}

/* Writes all of p before deadline. */
static enum io_status
send_all(struct transport *t, const char *p, size_t n, int64_t deadline)
{
	struct pollfd	pfd;
	enum io_status	st;
	ssize_t		w;

	while (n > 0) {
		if ((w = transport_write(t, p, n)) == -2)
			return IO_FAIL;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		pfd.fd = t->fd;
		pfd.events = transport_events(t, false, true);
		if ((st = io_poll(&pfd, 1, deadline, false)) != IO_OK)
			return st;
	}
	return IO_OK;
}

static int
handshake_failed(enum io_status st, const struct transport *t, const char *what)
{
	if (st == IO_SIGNAL) {
		warnx_("interrupted");
		return RC_LOCAL;
	}
	if (st == IO_TIMEOUT) {
		warnx_("timeout: %s", what);
		return RC_TIMEOUT;
	}
	warnx_("%s", t->err);
	return RC_ABNORMAL;
}

/*
 * The HTTP upgrade. Returns -1 on success with the bytes read past the head
 * moved to the front of resp (*extra of them); otherwise the exit status.
 */
static int
upgrade(const struct options *o, struct transport *t, char *resp, size_t *extra,
    int64_t deadline)
{
	char			 req[16384], key[WSC_KEY_LEN + 1];
	uint8_t			 nonce[16];
	struct wsc_request	 r;
	struct wsc_response	 res;
	struct pollfd		 pfd;
	enum io_status		 st;
	size_t			 len, got = 0;
	ssize_t			 n, head = 0;

	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		die(RC_LOCAL, "RAND_bytes failed: no handshake key");
	wsc_make_key(nonce, key);
	memset(&r, 0, sizeof(r));
	r.url = &o->url;
	r.key = key;
	r.origin = o->origin;
	r.protocols = (const char *const *)o->protocols;
	r.nprotocols = o->nprotocols;
	r.headers = o->headers;
	r.nheaders = o->nheaders;
	r.user_agent = PROG "/" PACKAGE_VERSION;
	if ((len = wsc_build_request(req, sizeof(req), &r)) == 0) {
		warnx_("the request head is too large");
		return RC_USAGE;
	}
	if (o->verbose)
		print_head("> ", req, len);
	if ((st = send_all(t, req, len, deadline)) != IO_OK)
		return handshake_failed(st, t, "sending the upgrade request");

	while (head == 0) {
		n = transport_read(t, resp + got, RESPONSE_MAX - got);
		if (n == 0 || n == -2) {
			warnx_("%s during the opening handshake", n == 0 ?
			    "the server closed the connection" : t->err);
			return RC_ABNORMAL;
		}
		if (n > 0) {
			got += (size_t)n;
			if ((head = hs_head_end(resp, got)) == -1 ||
			    (head == 0 && got == RESPONSE_MAX)) {
				warnx_("the response head is larger than %d bytes", RESPONSE_MAX);
				return RC_PROTOCOL;
			}
			continue;
		}
		pfd.fd = t->fd;
		pfd.events = transport_events(t, true, false);
		if ((st = io_poll(&pfd, 1, deadline, transport_pending(t))) != IO_OK)
			return handshake_failed(st, t, "no answer to the upgrade request");
	}
	if (o->verbose)
		print_head("< ", resp, (size_t)head);
	switch (wsc_response_check(resp, (size_t)head, key,
	    (const char *const *)o->protocols, o->nprotocols, &res)) {
	case WSC_ACCEPTED:
		break;
	case WSC_REFUSED:
		fprintf(stderr, PROG ": handshake refused: ");
		print_sanitized(stderr, res.status_line.p, res.status_line.len);
		fputc('\n', stderr);
		return RC_REFUSED;
	case WSC_INVALID:
		fprintf(stderr, PROG ": invalid handshake answer: %s", res.error);
		if (res.status == 0) {
			fprintf(stderr, " (");
			print_sanitized(stderr, res.status_line.p,
			    res.status_line.len > 80 ? 80 : res.status_line.len);
			fputc(')', stderr);
		}
		fputc('\n', stderr);
		return RC_PROTOCOL;
	}
	if (o->verbose) {
		if (res.protocol.p != NULL)
			fprintf(stderr, "* Subprotocol: %.*s\n", (int)res.protocol.len,
			    res.protocol.p);
		fprintf(stderr, "* WebSocket open\n");
	}
	*extra = got - (size_t)head;
	memmove(resp, resp + head, *extra);
	return -1;
}

static void
options_free(struct options *o)
{
	size_t	i;

	for (i = 0; i < o->nprotocols; i++)
		free(o->protocols[i]);
	free(o->protocols);
	free(o->messages);
	free(o->headers);
}

/* Descriptors 0-2 must be open, or the socket could become "stdin". */
static void
sanitize_fds(void)
{
	int	fd;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
		    open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			exit(RC_LOCAL);
	}
}

int
main(int argc, char **argv)
{
	struct options		 o;
	struct transport	 t;
	enum io_status		 st;
	char			*resp;
	size_t			 extra = 0;
	int64_t			 deadline;
	int			 rc;

	sanitize_fds();
	parse_args(argc, argv, &o);
	io_signals_init();
	transport_init(&t);

	deadline = io_now() + (int64_t)(o.connect_timeout_ms ? o.connect_timeout_ms :
	    168ULL * 3600000);
	if ((st = transport_connect(&t, o.url.host, o.url.port, deadline, o.verbose)) != IO_OK) {
		if (st == IO_SIGNAL)
			warnx_("interrupted");
		else
			warnx_("cannot connect to %s port %u: %s", o.url.host,
			    (unsigned)o.url.port, t.err);
		transport_close(&t);
		options_free(&o);
		return st == IO_SIGNAL ? RC_LOCAL : RC_CONNECT;
	}

	/* The opening handshake, TLS and HTTP together, has one deadline. */
	deadline = io_now() + (int64_t)(o.timeout_ms ? o.timeout_ms : DEFAULT_HANDSHAKE_MS);
	if (o.url.tls &&
	    (st = transport_tls(&t, o.url.host, o.url.ip, &o.tls, deadline)) != IO_OK) {
		if (st == IO_FAIL) {
			warnx_("%s", t.err);
			rc = RC_TLS;
		} else
			rc = handshake_failed(st, &t, "TLS handshake");
		transport_close(&t);
		options_free(&o);
		return rc;
	}
	resp = xrealloc(NULL, RESPONSE_MAX);
	if ((rc = upgrade(&o, &t, resp, &extra, deadline)) == -1)
		rc = run_session(&o, &t, (uint8_t *)resp, extra);
	free(resp);
	transport_close(&t);
	options_free(&o);
	return rc;
}
