#!/bin/sh
# workers.sh — issue 8 "All cores": what workers = 2 costs against workers = 1.
#
#   tests/bench/workers.sh [ROUNDS]      (from the top of the tree, after a build)
#
# Per round, for workers = 1 then 2 (interleaved, ROUNDS rounds, default 3),
# the server pinned to CPUs 0,1 (taskset) and wsload beside it:
#   echo       100 conns x 16 in flight x 32 B: server CPU us per message
#              (wsload -p), and with 2 workers the split of connections (from
#              the conn ids in the log: id mod 2 is the worker) and of CPU
#              (utime+stime of each wsr-wN thread in /proc/PID/task/TID/stat)
#   broadcast  1,000 idle receivers (wsload hold) + one sender keeping 16
#              messages of 32 B in flight on a broadcast route (it gets each
#              back, so wsload's echo mode paces it): server CPU us per
#              broadcast message, i.e. per fan-out to 1,001 connections
# Prints every figure and the medians. A benchmark, not a test: nothing is
# asserted. Env: WSLOAD (default /root/wsload/wsload), WSROUTED_BIN
# (default build/daemon/wsrouted), DURATION (measured seconds, default 5).
set -eu

ROUNDS=${1:-3}
WSLOAD=${WSLOAD:-/root/wsload/wsload}
BIN=${WSROUTED_BIN:-build/daemon/wsrouted}
DURATION=${DURATION:-5}
CPUS=0,1
tmp=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT

[ -x "$WSLOAD" ] || { echo "workers.sh: no wsload at $WSLOAD (set WSLOAD)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "workers.sh: no daemon at $BIN (build first or set WSROUTED_BIN)" >&2; exit 1; }

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server WORKERS: $pid, $port; the server answers before this returns.
start_server() {
	port=$(free_port)
	cat >"$tmp/w.ini" <<EOC
[server]
listen = 127.0.0.1:$port
workers = $1
allow_root = yes
max_connections = 20000
ping_period = 0
timeout = 0
log_level = info
[route /echo]
handler = echo
[route /bc]
handler = broadcast
max_queue = 100000
EOC
	: >"$tmp/log"
	taskset -c $CPUS "$BIN" -c "$tmp/w.ini" 2>>"$tmp/log" >&2 &
	pid=$!
	i=0
	until grep -q 'event=started' "$tmp/log"; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "workers.sh: server did not start" >&2; cat "$tmp/log" >&2; exit 1; }
		sleep 0.05
	done
}

stop_server() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

# thread_cpu NAME: utime+stime ticks of the server thread called NAME.
thread_cpu() {
	for t in /proc/$pid/task/*; do
		if [ "$(cat "$t/comm")" = "$1" ]; then
			# fields 14, 15 after the "(comm)" field, which has no spaces here
			awk '{ print $14 + $15 }' "$t/stat"
			return
		fi
	done
	echo 0
}

field() {	# field KEY < RESULT line
	sed -n "s/.* $1=\([^ ]*\).*/\1/p"
}

median() {	# median of the numbers on stdin
	sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

: >"$tmp/results"
r=1
while [ $r -le "$ROUNDS" ]; do
	for w in 1 2; do
		# --- echo
		start_server $w
		c0=$(thread_cpu wsr-w1); c1=$(thread_cpu wsr-w2)
		taskset -c $CPUS "$WSLOAD" -m echo -c 100 -P 16 -s 32 -d "$DURATION" -w 2 \
		    -p "$pid" "ws://127.0.0.1:$port/echo" >"$tmp/out" 2>&1 || true
		line=$(grep '^RESULT' "$tmp/out" || echo "RESULT failed=1")
		us=$(echo "$line" | field srv_cpu_us_per_msg)
		errs=$(echo "$line" | field errors)
		other=$(echo "$line" | field other_cpu_pct)
		split=
		if [ $w -eq 2 ]; then
			d0=$(( $(thread_cpu wsr-w1) - c0 )); d1=$(( $(thread_cpu wsr-w2) - c1 ))
			n0=$(grep -c 'event=open' "$tmp/log" | tr -d ' ' || true)
			odd=$(sed -n 's/^.* conn=\([0-9]*\) .*event=open.*/\1/p' "$tmp/log" | awk '$1 % 2 { n++ } END { print n + 0 }')
			split="conns_w1=$((n0 - odd)) conns_w2=$odd cpu_ticks_w1=$d0 cpu_ticks_w2=$d1"
		fi
		stop_server
		echo "round=$r workers=$w test=echo us_per_msg=$us errors=$errs other_cpu_pct=$other $split" | tee -a "$tmp/results"

		# --- broadcast to 1,000 receivers
		start_server $w
		taskset -c $CPUS "$WSLOAD" -m hold -c 1000 -d $((DURATION + 8)) --no-ping-check \
		    "ws://127.0.0.1:$port/bc" >"$tmp/hold" 2>&1 &
		hold=$!
		i=0
		until [ "$(grep -c 'event=open' "$tmp/log")" -ge 1000 ]; do
			i=$((i + 1))
			[ $i -lt 200 ] || { echo "workers.sh: receivers did not connect" >&2; exit 1; }
			sleep 0.05
		done
		taskset -c $CPUS "$WSLOAD" -m echo -c 1 -P 16 -s 32 -d "$DURATION" -w 1 \
		    -p "$pid" "ws://127.0.0.1:$port/bc" >"$tmp/out" 2>&1 || true
		line=$(grep '^RESULT' "$tmp/out" || echo "RESULT failed=1")
		us=$(echo "$line" | field srv_cpu_us_per_msg)
		errs=$(echo "$line" | field errors)
		other=$(echo "$line" | field other_cpu_pct)
		rate=$(echo "$line" | field msgs_per_s)
		kill $hold 2>/dev/null || true
		wait $hold 2>/dev/null || true
		stop_server
		echo "round=$r workers=$w test=broadcast1000 us_per_msg=$us msgs_per_s=$rate errors=$errs other_cpu_pct=$other" | tee -a "$tmp/results"
	done
	r=$((r + 1))
done

echo
for t in echo broadcast1000; do
	m1=$(grep "workers=1 test=$t " "$tmp/results" | sed 's/.*us_per_msg=\([^ ]*\).*/\1/' | median)
	m2=$(grep "workers=2 test=$t " "$tmp/results" | sed 's/.*us_per_msg=\([^ ]*\).*/\1/' | median)
	echo "$t: median server CPU us/msg: workers=1 $m1, workers=2 $m2, ratio $(awk -v a="$m1" -v b="$m2" 'BEGIN { printf "%.3f", b / a }')"
done
