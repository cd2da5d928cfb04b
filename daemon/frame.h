/*
 * frame.h — PURE. The RFC 6455 frame codec: a streaming parser that turns
 * bytes (split anywhere) into whole messages and control frames, enforcing
 * every framing rule of §5 and §7, and the builders for outgoing frames.
 *
 * The parser works in place: it unmasks payloads inside the caller's buffer
 * and, when a whole unfragmented message is in that buffer, hands it out
 * from there without copying. Only a message or control frame that spans
 * calls is copied into a buffer the parser owns (allocated then, freed as
 * soon as the message is delivered), so an idle parser owns no memory.
 */
#ifndef WSR_FRAME_H
#define WSR_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT	= 0x0,
	WS_OP_TEXT	= 0x1,
	WS_OP_BINARY	= 0x2,
	WS_OP_CLOSE	= 0x8,
	WS_OP_PING	= 0x9,
	WS_OP_PONG	= 0xa,
};

enum ws_close_code {
	WS_CLOSE_NORMAL		= 1000,
	WS_CLOSE_GOING_AWAY	= 1001,
	WS_CLOSE_PROTOCOL	= 1002,
	WS_CLOSE_UNSUPPORTED	= 1003,
	WS_CLOSE_NO_STATUS	= 1005,	/* never on the wire */
	WS_CLOSE_ABNORMAL	= 1006,	/* never on the wire */
	WS_CLOSE_INVALID_DATA	= 1007,
	WS_CLOSE_POLICY		= 1008,
	WS_CLOSE_TOO_BIG	= 1009,
	WS_CLOSE_INTERNAL	= 1011,
	WS_CLOSE_RESTART	= 1012,	/* service restart */
};

#define WS_MAX_HEADER		14	/* 2 + 8 (length) + 4 (mask) */
#define WS_MAX_CONTROL		125
#define WS_MAX_CLOSE_REASON	123

struct ws_limits {
	uint64_t	max_frame_size;		/* payload bytes of one frame */
	uint64_t	max_message_size;	/* payload bytes of a reassembled message */
	bool		expect_masked;		/* true on the server side */
};

struct ws_parser {
	/* the frame being read */
	/* (the byte-sized fields first, together: one per connection, 64 B) */
	uint8_t		 hdr[WS_MAX_HEADER];
	uint8_t		 hdr_len;		/* bytes of hdr collected so far */
	bool		 in_payload;
	uint8_t		 opcode;
	bool		 fin;
	bool		 masked;
	uint8_t		 msg_opcode;		/* TEXT/BINARY while a message is open, else 0 */
	uint8_t		 utf8;			/* validator state for text */
	uint8_t		 ctl_len;		/* of ctl */
	bool		 failed;		/* sticky after WS_EV_ERROR */
	uint8_t		 mask[4];
	uint64_t	 remaining;		/* payload bytes still to come */
	uint64_t	 payload_off;		/* payload bytes seen (mask phase) */
	/* the data message being assembled, NULL unless it spans frames or calls */
	struct ws_msgbuf *msg;
	/* a control frame split across calls (rare) */
	uint8_t		*ctl;
};

/* Length and capacity travel with the bytes: an idle parser pays one pointer. */
struct ws_msgbuf {
	size_t		 len;
	size_t		 cap;
	uint8_t		 data[];
};

enum ws_event_type {
	WS_EV_NONE,	/* every input byte consumed; feed more */
	WS_EV_MESSAGE,	/* a whole text/binary message */
	WS_EV_PING,
	WS_EV_PONG,
	WS_EV_CLOSE,	/* peer's close: code (1005 if none), reason */
	WS_EV_ERROR,	/* protocol failure: send close `code` and fail the connection */
};

struct ws_event {
	enum ws_event_type	 type;
	uint8_t			 opcode;	/* WS_EV_MESSAGE: TEXT or BINARY */
	const uint8_t		*data;		/* payload; valid until the next call */
	size_t			 len;
	uint16_t		 code;		/* WS_EV_CLOSE / WS_EV_ERROR */
	const char		*error;		/* WS_EV_ERROR: static description */
};

void	ws_parser_init(struct ws_parser *p);
/* Frees what the parser holds; it may be initialised again. */
void	ws_parser_free(struct ws_parser *p);
/* True while a frame or message is partially received (memory may be held). */
bool	ws_parser_busy(const struct ws_parser *p);

/* What ws_parser_echo turned into frames to send: buf[start..end). */
struct ws_echo_run {
	size_t		 start;
	size_t		 end;
	unsigned	 frames;
};

/*
 * An echo server's fast path: turns the whole, masked, final text and
 * binary frames (7- or 16-bit length, within the limits) at buf + *off into
 * the unmasked frames that echo them, in place: they end up contiguous in
 * buf[run->start..run->end), each moved down over the input's mask keys.
 * Stops, advancing *off past what it took, at the end of buf or at the first
 * frame it does not take (ws_parser_next handles that one), and takes
 * nothing unless the parser is between messages. Returns WS_EV_NONE, or
 * WS_EV_ERROR (ev filled, the parser failed) for a text frame that is not
 * UTF-8: it is consumed, but not in the run.
 */
enum ws_event_type ws_parser_echo(struct ws_parser *p, const struct ws_limits *lim,
	    uint8_t *buf, size_t len, size_t *off, struct ws_echo_run *run,
	    struct ws_event *ev);

/*
 * Consumes bytes from buf[*off..len), advancing *off, until it has one event
 * to report; returns its type (also in ev->type). WS_EV_NONE means *off ==
 * len and the parser needs more input. Payload bytes are unmasked in place
 * inside buf. After WS_EV_ERROR the parser refuses further input.
 */
enum ws_event_type ws_parser_next(struct ws_parser *p, const struct ws_limits *lim,
		    uint8_t *buf, size_t len, size_t *off, struct ws_event *ev);

/*
 * Writes a frame header for a payload of len bytes into out (at most
 * WS_MAX_HEADER bytes); mask == NULL for an unmasked (server) frame.
 * Returns the header length.
 */
size_t	ws_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len,
	    const uint8_t mask[4]);

/* XORs p[0..n) with mask, starting at payload offset `off` (for chunked payloads). */
void	ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off);

/*
 * Validates a received close payload. Returns 0 and sets *code (1005 when
 * empty), *reason, *reason_len; or the close code to fail with: 1002 for a
 * 1-byte payload or a code that may not be sent, 1007 for a non-UTF-8 reason.
 */
uint16_t ws_close_parse(const uint8_t *p, size_t n, uint16_t *code,
	    const uint8_t **reason, size_t *reason_len);

/* True for codes a peer may send in a close frame (RFC 6455 §7.4, IANA). */
bool	ws_close_code_valid(unsigned code);

/*
 * Builds a close payload: code (big-endian) + reason, the reason cut to
 * WS_MAX_CLOSE_REASON bytes at a UTF-8 boundary. code 0 → empty payload.
 * Returns the payload length (≤ WS_MAX_CONTROL).
 */
size_t	ws_close_build(uint8_t out[WS_MAX_CONTROL], uint16_t code, const char *reason);

#endif
