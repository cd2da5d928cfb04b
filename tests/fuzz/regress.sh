#!/bin/sh
# regress.sh — every committed corpus input (seeds and past crashes) runs
# once through its fuzzer: a fixed bug stays fixed. Part of make check when
# clang's libFuzzer is available.
set -eu
srcdir=${srcdir:-.}
status=0
for t in frame handshake close config proxyproto forwarded tlsrec; do
	bin=tests/fuzz/fuzz_$t
	[ -x "$bin" ] || { echo "missing $bin"; exit 99; }
	if ! "$bin" -runs=0 "$srcdir/tests/fuzz/corpus/$t" >"tests/fuzz/regress-$t.out" 2>&1; then
		echo "FAIL: $t corpus"; tail -n 30 "tests/fuzz/regress-$t.out"; status=1
	else
		echo "ok: $t ($(ls "$srcdir/tests/fuzz/corpus/$t" | wc -l) inputs)"
	fi
done
exit $status
