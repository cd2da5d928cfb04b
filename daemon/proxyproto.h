/*
 * proxyproto.h — PURE. The PROXY protocol header (HAProxy's spec, v1 text
 * and v2 binary) that a trusted load balancer sends before anything else
 * on a `listen = … proxy_protocol` connection. Strict: anything that is not
 * exactly a valid header is an error, never "no header".
 */
#ifndef WSR_PROXYPROTO_H
#define WSR_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>

#define PP_V1_MAX	107		/* the whole v1 line, CRLF included */
#define PP_V2_MAX	(16 + 2048)	/* we refuse longer v2 headers (TLVs) */
#define PP_MAX		PP_V2_MAX

enum pp_status {
	PP_ERROR = -1,
	PP_NEED_MORE = 0,	/* every byte seen so far belongs to the header */
	PP_OK = 1,
};

struct pp_result {
	int		 version;	/* 1 or 2 */
	int		 family;	/* AF_INET, AF_INET6; 0: LOCAL/UNKNOWN, keep the socket's */
	uint8_t		 src[16];	/* network byte order */
	uint16_t	 sport;		/* host byte order */
	size_t		 len;		/* bytes of the header (PP_OK) */
	const char	*error;		/* PP_ERROR: static text */
};

/*
 * Parses buf[0..len). PP_NEED_MORE guarantees that all len bytes are part of
 * the header (so a caller may consume them); PP_OK sets out->len, which may
 * be less than len (the rest is the client's first bytes).
 */
enum pp_status	pp_parse(const uint8_t *buf, size_t len, struct pp_result *out);

#endif
