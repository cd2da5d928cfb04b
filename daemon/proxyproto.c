/*
 * proxyproto.c — PURE. See proxyproto.h; the format is HAProxy's
 * "proxy-protocol.txt" (versions 1 and 2). Written by hand: Debian has no
 * library for it, and it is a few dozen lines of bounds checks.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "proxyproto.h"

static const uint8_t v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static enum pp_status
fail(struct pp_result *out, const char *why)
{
	out->error = why;
	return PP_ERROR;
}

/* A decimal port without leading zeros, 0..65535. */
static int
v1_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long	v = 0;
	size_t		i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* The next space-terminated field of line[*off..end); -1 if none. */
static int
v1_field(const char *line, size_t end, size_t *off, char *buf, size_t cap, char sep)
{
	size_t	s = *off, i = s;

	while (i < end && line[i] != sep)
		i++;
	if (i == end || i == s || i - s >= cap)
		return -1;
	memcpy(buf, line + s, i - s);
	buf[i - s] = '\0';
	*off = i + 1;
	return 0;
}

static enum pp_status
parse_v1(const uint8_t *buf, size_t len, struct pp_result *out)
{
	static const char	 prefix[] = "PROXY ";
	const char		*line = (const char *)buf;
	char			 proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	char			 sport[8], dport[8];
	uint8_t			 tmp[16];
	uint16_t		 port;
	size_t			 i, end, off;
	int			 fam;

	out->version = 1;
	for (i = 0; i < len && i < 6; i++)
		if (buf[i] != (uint8_t)prefix[i])
			return fail(out, "not a PROXY protocol header");
	for (end = 0; end + 1 < len && !(buf[end] == '\r' && buf[end + 1] == '\n'); end++) {
		if (buf[end] < 0x20 || buf[end] > 0x7e)
			return fail(out, "PROXY v1: unexpected byte in the header line");
	}
	if (end + 1 >= len) {
		if (len >= PP_V1_MAX)
			return fail(out, "PROXY v1: no CRLF within 107 bytes");
		if (len > 0 && buf[len - 1] != '\r' && (buf[len - 1] < 0x20 || buf[len - 1] > 0x7e))
			return fail(out, "PROXY v1: unexpected byte in the header line");
		return PP_NEED_MORE;
	}
	if (end + 2 > PP_V1_MAX)
		return fail(out, "PROXY v1: header line longer than 107 bytes");
	out->len = end + 2;
	if (end == 13 && memcmp(line, "PROXY UNKNOWN", 13) == 0)
		return PP_OK;
	if (end > 13 && memcmp(line, "PROXY UNKNOWN ", 14) == 0)
		return PP_OK;		/* the rest is to be ignored, says the spec */
	off = 6;
	if (v1_field(line, end, &off, proto, sizeof(proto), ' ') == -1)
		return fail(out, "PROXY v1: expected TCP4, TCP6 or UNKNOWN");
	if (strcmp(proto, "TCP4") == 0)
		fam = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		fam = AF_INET6;
	else
		return fail(out, "PROXY v1: expected TCP4, TCP6 or UNKNOWN");
	if (v1_field(line, end, &off, src, sizeof(src), ' ') == -1 ||
	    v1_field(line, end, &off, dst, sizeof(dst), ' ') == -1 ||
	    v1_field(line, end, &off, sport, sizeof(sport), ' ') == -1)
		return fail(out, "PROXY v1: expected SRC DST SPORT DPORT");
	if (end - off == 0 || end - off >= sizeof(dport))
		return fail(out, "PROXY v1: bad destination port");
	memcpy(dport, line + off, end - off);
	dport[end - off] = '\0';
	if (inet_pton(fam, src, out->src) != 1 || inet_pton(fam, dst, tmp) != 1)
		return fail(out, "PROXY v1: bad address for the protocol");
	if (v1_port(sport, strlen(sport), &out->sport) == -1 ||
	    v1_port(dport, strlen(dport), &port) == -1)
		return fail(out, "PROXY v1: bad port");
	out->family = fam;
	return PP_OK;
}

static enum pp_status
parse_v2(const uint8_t *buf, size_t len, struct pp_result *out)
{
	size_t		total, need, off;
	unsigned	cmd, fam;

	out->version = 2;
	if (memcmp(buf, v2sig, len < 12 ? len : 12) != 0)
		return fail(out, "not a PROXY protocol header");
	if (len < 16)
		return PP_NEED_MORE;
	if ((buf[12] >> 4) != 2)
		return fail(out, "PROXY v2: unsupported version");
	cmd = buf[12] & 0x0f;
	if (cmd > 1)
		return fail(out, "PROXY v2: unknown command");
	total = 16 + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PP_V2_MAX)
		return fail(out, "PROXY v2: header longer than we accept (TLVs over 2 KiB)");
	fam = buf[13];
	/* Known family/protocol pairs; the address block must fit in the length. */
	switch (fam) {
	case 0x00: need = 0; break;			/* UNSPEC */
	case 0x11: case 0x12: need = 12; break;		/* TCP4, UDP4 */
	case 0x21: case 0x22: need = 36; break;		/* TCP6, UDP6 */
	case 0x31: case 0x32: need = 216; break;	/* UNIX */
	default:
		return fail(out, "PROXY v2: unknown address family");
	}
	if (cmd == 1 && fam != 0x00 && fam != 0x11 && fam != 0x21)
		return fail(out, "PROXY v2: only TCP over IPv4/IPv6 is served");
	if (total - 16 < need)
		return fail(out, "PROXY v2: length shorter than the addresses");
	if (len < total)
		return PP_NEED_MORE;
	/* TLVs: skipped, but each must fit exactly in what is left. */
	for (off = 16 + need; off < total; ) {
		if (total - off < 3)
			return fail(out, "PROXY v2: truncated TLV");
		off += 3 + ((size_t)buf[off + 1] << 8 | buf[off + 2]);
		if (off > total)
			return fail(out, "PROXY v2: TLV longer than the header");
	}
	out->len = total;
	if (cmd == 0 || fam == 0x00)
		return PP_OK;			/* LOCAL (health check) or UNSPEC */
	if (fam == 0x11) {
		out->family = AF_INET;
		memcpy(out->src, buf + 16, 4);
		out->sport = (uint16_t)(buf[24] << 8 | buf[25]);
	} else {
		out->family = AF_INET6;
		memcpy(out->src, buf + 16, 16);
		out->sport = (uint16_t)(buf[48] << 8 | buf[49]);
	}
	return PP_OK;
}

enum pp_status
pp_parse(const uint8_t *buf, size_t len, struct pp_result *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PP_NEED_MORE;
	if (buf[0] == 'P')
		return parse_v1(buf, len, out);
	if (buf[0] == 0x0d)
		return parse_v2(buf, len, out);
	return fail(out, "not a PROXY protocol header");
}
