/*
 * fuzz_config.c — the config loader: INI text → config or errors, never
 * both, never neither, never a crash or a leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors	 errs = { NULL, 0 };
	struct config		*cfg;

	cfg = config_parse_string((const char *)data, size, "fuzz.ini", &errs);
	if ((cfg == NULL) == (errs.n == 0))
		abort();
	config_free(cfg);
	config_errors_clear(&errs);
	return 0;
}
