/*
 * fuzz_handshake.c — the request-head parser and upgrade validation, and
 * the answers built from what it accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	*const protos[] = { "chat.v1", "chat.v2" };
	static const char	*const origins[] = { "https://ok.example" };
	struct hs_request	 req;
	char			 accept[HS_ACCEPT_LEN + 1], out[1024], *buf;
	ssize_t			 end;
	size_t			 i;

	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	end = hs_head_end(buf, size);
	if (end > 0) {
		if ((size_t)end > size || end > HS_HEAD_MAX)
			abort();
		if (hs_request_parse(buf, end, &req) == 0) {
			/* Every string must lie inside the head. */
			if (req.path.p < buf || req.path.p + req.path.len > buf + end)
				abort();
			for (i = 0; i < req.nheaders; i++)
				if (req.headers[i].value.p + req.headers[i].value.len > buf + end)
					abort();
			hs_accept_key(req.key.p, req.key.len, accept);
			hs_select_subprotocol(req.protocols, (char *const *)protos, 2);
			hs_origin_allowed(req.origin, (char *const *)origins, 1);
			if (hs_build_101(out, sizeof(out), accept, NULL) == 0)
				abort();
		} else if (hs_build_error(out, sizeof(out), req.status, req.error) == 0)
			abort();
	}
	free(buf);
	return 0;
}
