/*
 * chat.c — a rate-limited JSON chat room, written as a model plugin.
 *
 *   [route /chat]
 *   handler = plugin:chat
 *   content = json          ; the daemon rejects non-JSON before we see it
 *   rate = 5                ; messages per second per user (token bucket)
 *   burst = 10              ; bucket size
 *   max_users = 100         ; more get 403 at the handshake
 *   max_text = 1000         ; bytes of "text" per message
 *   max_pending = 256KiB    ; a user this far behind is closed with 1008
 *   presence_ms = 0         ; every N ms, {"type":"presence","users":[...]}
 *                           ; to everyone (0: never)
 *
 * Protocol. Connect to /chat?nick=NAME (letters, digits, '_' and '-', at
 * most 32; default "user-ID"). Every user receives
 *   {"type":"join","nick":N}  {"type":"leave","nick":N}
 *   {"type":"message","from":N,"text":T}
 * and sends {"type":"say","text":T}. A request that is not understood or
 * exceeds the rate gets {"type":"error","error":WHY} and is dropped.
 *
 * What it shows: options validated in create(), per-route state (the user
 * list) and per-connection state (wsr_conn_set_data), JSON built with
 * jansson (never by hand), bounded memory for slow readers through
 * wsr_conn_pending(), a periodic wsr_timer, request headers.
 *
 * No WSR_HANDLER_PER_LOOP, so the route needs workers = 1: the room (the
 * user list) is the instance's, and one instance per loop would split it
 * into one room per worker, each user seeing only those on its own worker.
 * Spanning loops would take the room in shared state under a lock and
 * every delivery through wsr_handle_send; for a model plugin, one loop.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <wsrouted/plugin.h>

#define NICK_MAX	32

struct user {
	struct wsr_conn	*conn;
	struct user	*next, **pprev;
	double		 tokens;
	double		 last;		/* seconds, monotonic */
	char		 nick[NICK_MAX + 1];
};

struct chat {
	double		 rate, burst;
	unsigned long	 max_users, max_text, max_pending, presence_ms;
	unsigned long	 nusers;
	struct user	*users;
	struct wsr_timer *presence;
};

static void	presence_tick(void *);

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A whole decimal number in [min, max], with an optional KiB/MiB suffix. */
static int
parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "KiB") == 0)
		v *= 1024;
	else if (strcmp(end, "MiB") == 0)
		v *= 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void *
chat_create(const struct wsr_option *opts, size_t nopts, char **cause)
{
	static const struct {
		const char	*key;
		unsigned long	 min, max;
	} keys[] = {
		{ "rate", 1, 10000 }, { "burst", 1, 10000 },
		{ "max_users", 1, 1000000 }, { "max_text", 1, 1 << 20 },
		{ "max_pending", 4096, 1 << 30 }, { "presence_ms", 0, 3600000 },
	};
	unsigned long	 v[6] = { 5, 10, 100, 1000, 256 * 1024, 0 };
	struct chat	*ch;
	size_t		 i, k;

	for (i = 0; i < nopts; i++) {
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(opts[i].key, keys[k].key) == 0)
				break;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			if (asprintf(cause, "%s: unknown option, the chat plugin "
			    "takes rate, burst, max_users, max_text, max_pending, "
			    "presence_ms",
			    opts[i].key) == -1)
				*cause = NULL;
			return NULL;
		}
		if (parse_num(opts[i].value, keys[k].min, keys[k].max, &v[k]) == -1) {
			if (asprintf(cause, "%s: expected a number %lu..%lu, got '%s'",
			    keys[k].key, keys[k].min, keys[k].max, opts[i].value) == -1)
				*cause = NULL;
			return NULL;
		}
	}
	if ((ch = calloc(1, sizeof(*ch))) == NULL) {
		*cause = strdup("out of memory");
		return NULL;
	}
	ch->rate = v[0];
	ch->burst = v[1];
	ch->max_users = v[2];
	ch->max_text = v[3];
	ch->max_pending = v[4];
	ch->presence_ms = v[5];
	if (ch->presence_ms > 0) {
		/* Started now, armed by the daemon once its loop runs. */
		if ((ch->presence = wsr_timer_new(presence_tick, ch)) == NULL ||
		    wsr_timer_start(ch->presence, ch->presence_ms) == -1) {
			wsr_timer_free(ch->presence);
			free(ch);
			*cause = strdup("cannot create the presence timer");
			return NULL;
		}
	}
	return ch;
}

static void
chat_destroy(void *self)
{
	struct chat	*ch = self;

	/* The daemon destroys a route only after its last connection closed. */
	wsr_timer_free(ch->presence);
	free(ch);
}

/* Sends a JSON value to one user; a user too far behind is let go. */
static void
send_json(struct chat *ch, struct user *u, const char *text)
{
	if (wsr_conn_pending(u->conn) > ch->max_pending) {
		wsr_close(u->conn, 1008, "too slow");
		return;
	}
	wsr_send(u->conn, WSR_TEXT, text, strlen(text));
}

static void
broadcast(struct chat *ch, json_t *j)
{
	struct user	*u;
	char		*text;

	/* Serialized once, sent to everyone. */
	if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
		return;
	for (u = ch->users; u != NULL; u = u->next)
		send_json(ch, u, text);
	free(text);
}

static void
presence_tick(void *arg)
{
	struct chat	*ch = arg;
	struct user	*u;
	json_t		*j, *users;

	if (ch->users != NULL && (users = json_array()) != NULL) {
		for (u = ch->users; u != NULL; u = u->next)
			json_array_append_new(users, json_string(u->nick));
		if ((j = json_pack("{s:s, s:o}", "type", "presence", "users", users)) != NULL) {
			broadcast(ch, j);
			json_decref(j);
		}
	}
	wsr_timer_start(ch->presence, ch->presence_ms);
}

static void
reply_error(struct chat *ch, struct user *u, const char *why)
{
	json_t	*j = json_pack("{s:s, s:s}", "type", "error", "error", why);
	char	*text;

	if (j == NULL)
		return;
	if ((text = json_dumps(j, JSON_COMPACT)) != NULL)
		send_json(ch, u, text);
	free(text);
	json_decref(j);
}

/* nick=NAME from the query string, checked; the default is user-ID. */
static int
nick_from_query(const struct wsr_conn *c, char *out)
{
	const char	*q = wsr_conn_query(c), *p;
	size_t		 n;

	for (p = q; p != NULL && *p != '\0'; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, "nick=", 5) != 0)
			continue;
		p += 5;
		n = strcspn(p, "&");
		if (n == 0 || n > NICK_MAX)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		for (p = out; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
				return -1;
		return 0;
	}
	snprintf(out, NICK_MAX + 1, "user-%llu", wsr_conn_id(c));
	return 0;
}

/* Logs the User-Agent header, shortened and without quotes or backslashes. */
static void
log_join(struct wsr_conn *c, const char *nick)
{
	const char	*ua = wsr_conn_header(c, "user-agent");
	char		 buf[81];
	size_t		 i;

	for (i = 0; ua != NULL && ua[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = ua[i] == '"' || ua[i] == '\\' ? '_' : ua[i];
	buf[i] = '\0';
	wsr_log(c, WSR_LOG_INFO, "event=chat_join nick=%s user_agent=\"%s\"", nick,
	    ua != NULL ? buf : "-");
}

static int
chat_on_open(void *self, struct wsr_conn *c)
{
	struct chat	*ch = self;
	struct user	*u;
	json_t		*j;

	if (ch->nusers >= ch->max_users) {
		wsr_log(c, WSR_LOG_INFO, "event=chat_full users=%lu", ch->nusers);
		return -1;	/* 403 */
	}
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -1;
	if (nick_from_query(c, u->nick) == -1) {
		wsr_log(c, WSR_LOG_INFO, "event=chat_bad_nick");
		free(u);
		return -1;
	}
	log_join(c, u->nick);
	u->conn = c;
	u->tokens = ch->burst;
	u->last = now_s();
	/* Announced before joining the list: the newcomer cannot be sent to yet. */
	if ((j = json_pack("{s:s, s:s}", "type", "join", "nick", u->nick)) != NULL) {
		broadcast(ch, j);
		json_decref(j);
	}
	u->next = ch->users;
	u->pprev = &ch->users;
	if (ch->users != NULL)
		ch->users->pprev = &u->next;
	ch->users = u;
	ch->nusers++;
	wsr_conn_set_data(c, u);
	return 0;
}

static void
chat_on_close(void *self, struct wsr_conn *c, int code)
{
	struct chat	*ch = self;
	struct user	*u = wsr_conn_data(c);
	json_t		*j;

	(void)code;
	if (u == NULL)
		return;
	*u->pprev = u->next;
	if (u->next != NULL)
		u->next->pprev = u->pprev;
	ch->nusers--;
	if ((j = json_pack("{s:s, s:s}", "type", "leave", "nick", u->nick)) != NULL) {
		broadcast(ch, j);
		json_decref(j);
	}
	free(u);
}

static void
chat_on_message(void *self, struct wsr_conn *c, int opcode, const void *data, size_t len)
{
	struct chat	*ch = self;
	struct user	*u = wsr_conn_data(c);
	json_t		*req, *out;
	const char	*type, *text;
	size_t		 tlen;
	double		 t;

	if (u == NULL)
		return;
	if (opcode != WSR_TEXT) {
		reply_error(ch, u, "expected a JSON text message");
		return;
	}
	/* Token bucket: rate per second, at most burst saved up. */
	t = now_s();
	u->tokens += (t - u->last) * ch->rate;
	if (u->tokens > ch->burst)
		u->tokens = ch->burst;
	u->last = t;
	if (u->tokens < 1) {
		reply_error(ch, u, "rate limited");
		return;
	}
	u->tokens -= 1;

	if ((req = json_loadb(data, len, 0, NULL)) == NULL ||
	    json_unpack(req, "{s:s, s:s%}", "type", &type, "text", &text, &tlen) != 0 ||
	    strcmp(type, "say") != 0) {
		reply_error(ch, u, "expected {\"type\":\"say\",\"text\":...}");
		json_decref(req);
		return;
	}
	if (tlen > ch->max_text) {
		reply_error(ch, u, "text too long");
		json_decref(req);
		return;
	}
	out = json_pack("{s:s, s:s, s:s%}", "type", "message", "from", u->nick,
	    "text", text, tlen);
	if (out != NULL) {
		broadcast(ch, out);
		json_decref(out);
	}
	json_decref(req);
}

WSR_PLUGIN const struct wsr_handler wsr_handler = {
	.abi = WSR_PLUGIN_ABI,
	.name = "chat",
	.create = chat_create,
	.destroy = chat_destroy,
	.on_open = chat_on_open,
	.on_message = chat_on_message,
	.on_close = chat_on_close,
};
