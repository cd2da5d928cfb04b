/*
 * ping_floor — the floor for keep-alive pings: the least a WebSocket server
 * can do to ping every idle connection once per period on this machine.
 *
 * One thread, epoll, level-triggered. It upgrades each connection with the
 * minimum RFC 6455 handshake, then every 20 ms tick sends a 2-byte Ping to
 * the connections whose turn it is (each exactly once per period, spread
 * over the period like wsrouted's timing wheel spreads them), and reads
 * whatever arrives with one recv per readable event: a Pong is dropped, a
 * Ping is answered (wsload's liveness check), a Close ends the connection.
 * No timeouts, no buffering, no logging: one send per ping and one recv per
 * pong is all the kernel work the scenario needs, so wsrouted's CPU at the
 * same load is compared against this (`make bench`, idle rows).
 *
 * Only for benchmarks on loopback: it trusts its peer (wsload) to send
 * small, whole frames and a request that fits one read.
 *
 * Usage: ping_floor PORT [PERIOD_MS]   (listens on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define TICK_MS		20
#define MAX_FDS		65536

static uint8_t	upgraded[MAX_FDS];

static int
upgrade(int fd, char *req, ssize_t n)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char		 key[128], reply[256];
	unsigned char	 digest[SHA_DIGEST_LENGTH], accept[64];
	char		*k, *end;
	size_t		 klen;
	int		 len;

	req[n] = '\0';
	if ((k = strcasestr(req, "\r\nSec-WebSocket-Key:")) == NULL)
		return -1;
	k += strlen("\r\nSec-WebSocket-Key:");
	while (*k == ' ')
		k++;
	if ((end = strstr(k, "\r\n")) == NULL || (klen = (size_t)(end - k)) > 64)
		return -1;
	memcpy(key, k, klen);
	memcpy(key + klen, guid, sizeof(guid) - 1);
	SHA1((unsigned char *)key, klen + sizeof(guid) - 1, digest);
	EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
	len = snprintf(reply, sizeof(reply), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	return write(fd, reply, (size_t)len) == len ? 0 : -1;
}

/* Client frames, masked, small and whole (see the top). */
static int
frames(int fd, uint8_t *p, ssize_t n)
{
	uint8_t	 pong[2 + 125];
	size_t	 len, i;

	while (n >= 6) {
		len = p[1] & 0x7f;
		if (len > 125 || (ssize_t)(6 + len) > n)
			return -1;
		switch (p[0] & 0x0f) {
		case 0x8:
			return -1;
		case 0x9:
			pong[0] = 0x8a;
			pong[1] = (uint8_t)len;
			for (i = 0; i < len; i++)
				pong[2 + i] = p[6 + i] ^ p[2 + (i & 3)];
			if (send(fd, pong, 2 + len, MSG_NOSIGNAL) < 0)
				return -1;
			break;
		}
		p += 6 + len;
		n -= (ssize_t)(6 + len);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const uint8_t	 ping[2] = { 0x89, 0x00 };
	static char		 buf[64 * 1024];
	struct epoll_event	 ev, evs[1024];
	struct itimerspec	 its = { { 0, TICK_MS * 1000000 }, { 0, TICK_MS * 1000000 } };
	struct sockaddr_in	 a = { .sin_family = AF_INET };
	uint64_t		 ticks, tick = 0;
	int			 ls, ep, tfd, one = 1, nslots, fd, c, i, n;
	ssize_t			 r;

	if (argc < 2) {
		fprintf(stderr, "usage: ping_floor PORT [PERIOD_MS]\n");
		return 2;
	}
	nslots = (argc > 2 ? atoi(argv[2]) : 1000) / TICK_MS;
	if (nslots < 1)
		nslots = 1;
	signal(SIGPIPE, SIG_IGN);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_port = htons((uint16_t)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(ls, 4096) == -1) {
		perror("ping_floor: bind/listen");
		return 1;
	}
	ep = epoll_create1(0);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	timerfd_settime(tfd, 0, &its, NULL);
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	for (;;) {
		n = epoll_wait(ep, evs, 1024, -1);
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == ls) {
				while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (c >= MAX_FDS) {
						close(c);
						continue;
					}
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
			} else if (fd == tfd) {
				/* A late tick still pings each slot once per turn. */
				if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
					continue;
				for (; ticks > 0; ticks--, tick++)
					for (c = (int)(tick % (uint64_t)nslots); c < MAX_FDS; c += nslots)
						if (upgraded[c])
							send(c, ping, sizeof(ping), MSG_NOSIGNAL);
			} else {
				r = recv(fd, buf, sizeof(buf) - 1, 0);
				if (r < 0 && errno == EAGAIN)
					continue;
				if (r <= 0 || (upgraded[fd] ? frames(fd, (uint8_t *)buf, r) :
				    upgrade(fd, buf, r)) == -1) {
					upgraded[fd] = 0;
					close(fd);
				} else
					upgraded[fd] = 1;
			}
		}
	}
}
