// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-probe - exercise socket calls through an IPsec policy, print TAP
 *
 * Opens one socket towards a peer whose traffic needs an SA that may not
 * exist yet, then connects, polls and sends the way the command line says
 * and records what each call returned and how long it took.  Every step is
 * one TAP 14 test point with YAML diagnostics.  "ok" means the step was
 * carried out and observed, whatever the kernel answered; judging the
 * answer is the harness's job.  "not ok" means the probe itself failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG		"larval-probe"
#include "guest.h"
#include "tap.h"

#define MSG_LEN		64	/* every message, ICMP header included */
#define MAX_COUNT	1000
#define MAX_SOCKOPTS	16

enum proto { P_TCP, P_UDP, P_RAW, P_PING };

static const char *const proto_names[] = { "tcp", "udp", "raw", "ping" };

struct sockopt_arg {
	int level, name, value;
};

static struct {
	int family;
	enum proto proto;
	bool have_proto;
	bool nonblock;
	const char *peer_str;
	int port;
	int raw_proto;
	int count;
	int interval_ms;
	int timeout_ms;
	int sndtimeo_ms;	/* -1: leave SO_SNDTIMEO alone */
	int shutdown_ms;	/* -1: no shutdown() from another process */
	int close_ms;		/* -1: no close() from another thread */
	bool no_connect;
	bool poll_before_send;
	bool wait_pollout;
	const char *reconnect_str;	/* connect() here after the poll */
	int reconnect_wait_ms;
	struct sockopt_arg sockopts[MAX_SOCKOPTS];
	int nsockopts;
} opt = {
	.port = -1,
	.raw_proto = 253,
	.count = 3,
	.timeout_ms = 2000,
	.sndtimeo_ms = -1,
	.shutdown_ms = -1,
	.close_ms = -1,
	.reconnect_wait_ms = 1000,
};

/* One message: when it left, whether the kernel took it, its echo. */
struct msg_rec {
	uint64_t t_send_ns;
	bool sent;
	bool received;
	uint64_t t_recv_ns;
	int ident;		/* ping: echo identifier of the reply */
};

static struct {
	int fd;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	uint64_t t0_ns;
	struct msg_rec msgs[MAX_COUNT + 1];	/* indexed by id, 1-based */
	unsigned int sent, received, duplicates, strays;
	uint64_t first_reply_ns;
	int last_error;		/* last asynchronous socket error seen */
	char stream[MSG_LEN * 4];	/* TCP bytes not yet framed */
	size_t stream_len;
} st = { .fd = -1 };

static volatile sig_atomic_t watchdog_fired;

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 --proto tcp|udp|raw|ping --peer ADDR\n"
"                    [--mode block|nonblock] [--port P] [--raw-proto N]\n"
"                    [--count N] [--interval-ms N] [--timeout-ms T]\n"
"                    [--sndtimeo-ms N] [--shutdown-after-ms N]\n"
"                    [--close-after-ms N] [--no-connect] [--poll-before-send]\n"
"                    [--wait-pollout] [--sockopt LEVEL:NAME:VALUE]...\n"
"\n"
"Exercise connect/poll/send towards ADDR and print TAP 14 on stdout.\n"
"\n"
"  --family 4|6          address family (required)\n"
"  --proto P             tcp, udp, raw or ping (required)\n"
"  --peer ADDR           peer address (required)\n"
"  --mode M              block (default) or nonblock socket\n"
"  --port P              peer port (required for tcp and udp)\n"
"  --raw-proto N         IP protocol for raw (default 253)\n"
"  --count N             messages to send (default 3, max %d)\n"
"  --interval-ms N       pause between sends (default 0)\n"
"  --timeout-ms T        bound for each wait: blocking connect/send,\n"
"                        poll for connect, echoes (default 2000)\n"
"  --sndtimeo-ms N       set SO_SNDTIMEO\n"
"  --shutdown-after-ms N another process calls shutdown(SHUT_WR) on the\n"
"                        socket N ms after it is opened\n"
"  --close-after-ms N    another thread close()s the socket N ms after it\n"
"                        is opened (later calls then say EBADF)\n"
"  --no-connect          datagram sockets: sendto() without connect()\n"
"  --poll-before-send    record poll() with 0 timeout right after connect\n"
"  --wait-pollout        after connect, wait up to T ms for POLLOUT\n"
"  --reconnect ADDR      after the poll, connect() to ADDR (same port),\n"
"                        wait --reconnect-wait-ms, then read SO_ERROR:\n"
"                        a failure of the first peer's acquire must not\n"
"                        reach a socket that left it\n"
"  --reconnect-wait-ms N how long to wait after --reconnect (1000)\n"
"  --sockopt L:N:V       setsockopt(fd, L, N, int V) after socket();\n"
"                        integers, repeatable (max %d)\n"
"  --help                this text\n"
"\n"
"Test points, in order: socket, sockopt L:N=V..., connect (or SKIP),\n"
"connect_again and poll_connect (non-blocking, after EINPROGRESS),\n"
"poll_before_send, wait_pollout, reconnect and so_error_after,\n"
"send 1..N, recv, summary; the plan\n"
"comes last.  Blocking calls are cut off after T ms by SIGALRM\n"
"(watchdog: true, errno EINTR).  Exit 0 when the probe ran, 1 on internal\n"
"failure (after 'Bail out!'), 2 on bad arguments.\n",
		MAX_COUNT, MAX_SOCKOPTS);
}

/* ---- small helpers ------------------------------------------------- */

static void on_alarm(int sig)
{
	(void)sig;
	watchdog_fired = 1;
}

/*
 * A blocking connect() or send() may sleep for minutes (TCP SYN retries),
 * or forever on a kernel that holds callers.  A timer signal without
 * SA_RESTART bounds it without touching the socket's own options.
 */
static void watchdog_arm(int ms)
{
	struct itimerval it = { 0 };

	watchdog_fired = 0;
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void watchdog_disarm(void)
{
	struct itimerval it = { 0 };

	setitimer(ITIMER_REAL, &it, NULL);
}

/* Only an EINTR says the timer cut the call short; it may fire just after. */
static bool cut_off(int err)
{
	return !opt.nonblock && watchdog_fired && err == EINTR;
}

static const char *revents_str(short r)
{
	static const struct { short bit; const char *name; } bits[] = {
		{ POLLIN, "POLLIN" }, { POLLPRI, "POLLPRI" },
		{ POLLOUT, "POLLOUT" }, { POLLERR, "POLLERR" },
		{ POLLHUP, "POLLHUP" }, { POLLNVAL, "POLLNVAL" },
		{ POLLRDHUP, "POLLRDHUP" },
	};
	static char buf[96];
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (r & bits[i].bit)
			len += snprintf(buf + len, sizeof(buf) - len, "%s%s",
					len ? "|" : "", bits[i].name);
	return buf;
}

static double ms_between(uint64_t a, uint64_t b)
{
	return tap_ns_to_ms((int64_t)(b - a));
}

static double ms_since_t0(uint64_t t)
{
	return ms_between(st.t0_ns, t);
}

static void yaml_call(int ret, int err, uint64_t t_start, uint64_t t_end)
{
	tap_yaml_int("ret", ret);
	tap_yaml_int("errno", err);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_uint("t_start_ns", t_start);
	tap_yaml_uint("t_end_ns", t_end);
	tap_yaml_double("duration_ms", ms_between(t_start, t_end));
}

static int sock_error(void)
{
	socklen_t l = sizeof(int);
	int e = 0;

	if (getsockopt(st.fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		return errno;
	return e;
}

/* ---- building and reading messages --------------------------------- */

static size_t header_len(void)
{
	return opt.proto == P_PING ? 8 : 0;
}

static void build_msg(int id, char *buf)
{
	size_t hl = header_len();
	int n;

	memset(buf, '.', MSG_LEN);
	if (opt.proto == P_PING) {
		/* The kernel fills in the identifier and the checksum. */
		buf[0] = opt.family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
		buf[1] = 0;
		memset(buf + 2, 0, 6);
		buf[6] = id >> 8;
		buf[7] = id & 0xff;
	}
	n = snprintf(buf + hl, MSG_LEN - hl, "larval:%d:", id);
	buf[hl + n] = '.';	/* snprintf's NUL becomes padding */
}

static int parse_id(const char *p, size_t len)
{
	static const char tag[] = "larval:";
	const char *hit = memmem(p, len, tag, sizeof(tag) - 1);
	const char *end = p + len;
	int id = 0;

	if (!hit)
		return -1;
	for (p = hit + sizeof(tag) - 1; p < end && *p >= '0' && *p <= '9'; p++)
		if ((id = id * 10 + (*p - '0')) > MAX_COUNT)
			return -1;
	return p < end && *p == ':' ? id : -1;
}

static void note_reply(int id, uint64_t t, int ident)
{
	struct msg_rec *m;

	if (id < 1 || id > opt.count) {
		st.strays++;
		return;
	}
	m = &st.msgs[id];
	if (m->received) {
		st.duplicates++;
		return;
	}
	m->received = true;
	m->t_recv_ns = t;
	m->ident = ident;
	st.received++;
	if (!st.first_reply_ns)
		st.first_reply_ns = t;
}

static bool from_peer(const struct sockaddr_storage *from)
{
	const struct sockaddr_in6 *a6 = (const void *)from;
	const struct sockaddr_in6 *b6 = (const void *)&st.peer;
	const struct sockaddr_in *a4 = (const void *)from;
	const struct sockaddr_in *b4 = (const void *)&st.peer;

	if (from->ss_family != opt.family)
		return false;
	if (opt.family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

/* Returns the echo payload inside a datagram, or NULL if it is not ours. */
static const char *datagram_payload(const char *buf, size_t *len, int *ident)
{
	*ident = -1;
	if (opt.proto == P_RAW && opt.family == AF_INET) {
		const struct iphdr *ip = (const void *)buf;
		size_t hl;

		if (*len < sizeof(*ip))
			return NULL;
		hl = ip->ihl * 4u;
		if (hl > *len || ip->protocol != opt.raw_proto)
			return NULL;
		*len -= hl;
		return buf + hl;
	}
	if (opt.proto == P_PING) {
		const unsigned char *h = (const void *)buf;
		int reply = opt.family == AF_INET ? ICMP_ECHOREPLY :
						    ICMP6_ECHO_REPLY;

		if (*len < 8 || h[0] != reply)
			return NULL;
		*ident = h[4] << 8 | h[5];
		*len -= 8;
		return buf + 8;
	}
	return buf;
}

static void read_datagrams(void)
{
	char buf[4096];

	for (;;) {
		struct sockaddr_storage from = { 0 };
		socklen_t fl = sizeof(from);
		const char *payload;
		size_t len;
		ssize_t r;
		uint64_t t;
		int ident;

		r = recvfrom(st.fd, buf, sizeof(buf), MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fl);
		t = tap_now_ns();
		if (r < 0) {
			/* Connected datagram sockets report ICMP errors. */
			if (errno != EAGAIN && errno != EINTR)
				st.last_error = errno;
			if (errno == EAGAIN)
				return;
			continue;
		}
		len = r;
		if (!from_peer(&from)) {
			st.strays++;
			continue;
		}
		payload = datagram_payload(buf, &len, &ident);
		if (!payload) {
			st.strays++;
			continue;
		}
		note_reply(parse_id(payload, len), t, ident);
	}
}

/*
 * TCP is a byte stream: the echo comes back in MSG_LEN-byte frames.
 * Returns false once nothing more can come (EOF or a hard error).
 */
static bool read_stream(void)
{
	for (;;) {
		ssize_t r = recv(st.fd, st.stream + st.stream_len,
				 sizeof(st.stream) - st.stream_len,
				 MSG_DONTWAIT);
		uint64_t t = tap_now_ns();

		if (r == 0)
			return false;
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			st.last_error = errno;
			return false;
		}
		st.stream_len += r;
		while (st.stream_len >= MSG_LEN) {
			note_reply(parse_id(st.stream, MSG_LEN), t, -1);
			st.stream_len -= MSG_LEN;
			memmove(st.stream, st.stream + MSG_LEN, st.stream_len);
		}
	}
}

static bool all_answered(void)
{
	return st.sent && st.received >= st.sent;
}

/* Collect echoes until @deadline, or until every sent message came back. */
static void collect_until(uint64_t deadline, bool stop_when_done)
{
	for (;;) {
		struct pollfd p = { .fd = st.fd, .events = POLLIN };
		uint64_t now = tap_now_ns();
		int ms;

		if (now >= deadline || (stop_when_done && all_answered()))
			return;
		ms = (deadline - now + 999999) / 1000000;
		if (poll(&p, 1, ms) <= 0)
			continue;
		/* closed by --close-after-ms: nothing more can come */
		if (p.revents & POLLNVAL)
			return;
		if (p.revents & POLLERR)
			st.last_error = sock_error();
		if (opt.proto != P_TCP)
			read_datagrams();
		else if (!read_stream())
			return;	/* else POLLIN would stay set: a busy loop */
	}
}

/* ---- the steps ------------------------------------------------------ */

static void step_socket(void)
{
	int type, protocol, flags;
	uint64_t t = tap_now_ns();
	int err;

	switch (opt.proto) {
	case P_TCP: type = SOCK_STREAM; protocol = IPPROTO_TCP; break;
	case P_UDP: type = SOCK_DGRAM; protocol = IPPROTO_UDP; break;
	case P_RAW: type = SOCK_RAW; protocol = opt.raw_proto; break;
	default:
		type = SOCK_DGRAM;
		protocol = opt.family == AF_INET ? IPPROTO_ICMP :
						   IPPROTO_ICMPV6;
	}
	flags = SOCK_CLOEXEC | (opt.nonblock ? SOCK_NONBLOCK : 0);
	st.fd = socket(opt.family, type | flags, protocol);
	err = st.fd < 0 ? errno : 0;
	if (err == EACCES && opt.proto == P_PING)
		fprintf(stderr, PROG ": ping socket refused (EACCES): gid %u "
			"is not in net.ipv4.ping_group_range of this network "
			"namespace; set it, e.g. sysctl -w "
			"net.ipv4.ping_group_range='0 2147483647'\n",
			(unsigned int)getgid());
	else if (err)
		fprintf(stderr, PROG ": socket: %s\n", strerror(err));

	tap_result(!err, "socket");
	tap_yaml_begin();
	tap_yaml_str("family", opt.family == AF_INET ? "ipv4" : "ipv6");
	tap_yaml_str("proto", proto_names[opt.proto]);
	tap_yaml_str("mode", opt.nonblock ? "nonblock" : "block");
	tap_yaml_str("peer", opt.peer_str);
	tap_yaml_int("port", opt.proto <= P_UDP ? opt.port : 0);
	tap_yaml_int("protocol", protocol);
	tap_yaml_int("fd", st.fd);
	tap_yaml_int("errno", err);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_uint("t_ns", t);
	tap_yaml_uint("probe_start_ns", st.t0_ns);
	tap_yaml_end();
	if (err)
		tap_bail_out("socket() failed: %s", errno_name(err));
}

static void step_sndtimeo(void)
{
	struct timeval tv = {
		.tv_sec = opt.sndtimeo_ms / 1000,
		.tv_usec = (opt.sndtimeo_ms % 1000) * 1000,
	};
	int ret, err;

	ret = setsockopt(st.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	err = ret ? errno : 0;
	tap_result(!ret, "sndtimeo");
	tap_yaml_begin();
	tap_yaml_int("sndtimeo_ms", opt.sndtimeo_ms);
	tap_yaml_int("ret", ret);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_end();
	if (ret)
		tap_bail_out("setsockopt(SO_SNDTIMEO) failed: %s",
			     errno_name(err));
}

/* The kernel's answer is the observation, so a refusal is still "ok". */
static void step_sockopt(const struct sockopt_arg *so)
{
	int ret, err;

	ret = setsockopt(st.fd, so->level, so->name, &so->value,
			 sizeof(so->value));
	err = ret ? errno : 0;
	tap_ok("sockopt %d:%d=%d", so->level, so->name, so->value);
	tap_yaml_begin();
	tap_yaml_int("level", so->level);
	tap_yaml_int("name", so->name);
	tap_yaml_int("value", so->value);
	tap_yaml_int("ret", ret);
	tap_yaml_int("errno", err);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_end();
}

static int step_connect(void)
{
	uint64_t t1, t2;
	int ret, err;

	if (!opt.nonblock)
		watchdog_arm(opt.timeout_ms);
	t1 = tap_now_ns();
	ret = connect(st.fd, (struct sockaddr *)&st.peer, st.peer_len);
	err = ret ? errno : 0;
	t2 = tap_now_ns();
	if (!opt.nonblock)
		watchdog_disarm();

	tap_ok("connect");
	tap_yaml_begin();
	yaml_call(ret, err, t1, t2);
	tap_yaml_double("t_end_ms", ms_since_t0(t2));
	tap_yaml_bool("watchdog", cut_off(err));
	tap_yaml_end();
	return err;
}

static void step_connect_again(void)
{
	uint64_t t1, t2;
	int ret, err;

	t1 = tap_now_ns();
	ret = connect(st.fd, (struct sockaddr *)&st.peer, st.peer_len);
	err = ret ? errno : 0;
	t2 = tap_now_ns();
	tap_ok("connect_again");
	tap_yaml_begin();
	yaml_call(ret, err, t1, t2);
	tap_yaml_end();
}

/* Wait up to the timeout for POLLOUT (or an error) and say what came. */
static void step_poll_wait(const char *name, bool read_so_error)
{
	struct pollfd p = { .fd = st.fd, .events = POLLOUT };
	uint64_t t1 = tap_now_ns(), t2;
	uint64_t deadline = t1 + opt.timeout_ms * 1000000ull;
	int ret, err = 0;

	for (;;) {
		uint64_t now = tap_now_ns();

		ret = 0;
		if (now >= deadline)
			break;
		ret = poll(&p, 1, (deadline - now + 999999) / 1000000);
		if (ret > 0 || (ret < 0 && errno != EINTR))
			break;
	}
	if (ret < 0)
		err = errno;
	t2 = tap_now_ns();
	tap_ok("%s", name);
	tap_yaml_begin();
	tap_yaml_int("ret", ret);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_str("revents", ret > 0 ? revents_str(p.revents) : "");
	tap_yaml_bool("timed_out", ret == 0);
	tap_yaml_double("waited_ms", ms_between(t1, t2));
	tap_yaml_uint("t_end_ns", t2);
	tap_yaml_double("t_end_ms", ms_since_t0(t2));
	if (read_so_error) {
		int e = sock_error();

		tap_yaml_int("so_error", e);
		tap_yaml_str("so_error_name", errno_name(e));
	}
	tap_yaml_end();
}

static void step_poll_now(void)
{
	struct pollfd p = { .fd = st.fd, .events = POLLIN | POLLOUT };
	uint64_t t = tap_now_ns();
	int ret, err;

	ret = poll(&p, 1, 0);
	err = ret < 0 ? errno : 0;
	tap_ok("poll_before_send");
	tap_yaml_begin();
	tap_yaml_int("ret", ret);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_str("revents", ret > 0 ? revents_str(p.revents) : "");
	tap_yaml_uint("t_ns", t);
	tap_yaml_end();
}

/* Connect elsewhere, then see whether anything was left in SO_ERROR
 * for the socket while it waited on nothing.
 */
static void step_reconnect(void)
{
	struct sockaddr_storage to = st.peer;
	struct sockaddr_in *s4 = (void *)&to;
	struct sockaddr_in6 *s6 = (void *)&to;
	struct timespec ts = { opt.reconnect_wait_ms / 1000,
			       (opt.reconnect_wait_ms % 1000) * 1000000L };
	uint64_t t1, t2;
	int ret, err, e;

	if ((opt.family == AF_INET ?
	     inet_pton(AF_INET, opt.reconnect_str, &s4->sin_addr) :
	     inet_pton(AF_INET6, opt.reconnect_str, &s6->sin6_addr)) != 1)
		die_usage("--reconnect '%s' is not an address of the family",
			  opt.reconnect_str);
	t1 = tap_now_ns();
	ret = connect(st.fd, (struct sockaddr *)&to, st.peer_len);
	err = ret < 0 ? errno : 0;
	t2 = tap_now_ns();
	tap_ok("reconnect");
	tap_yaml_begin();
	tap_yaml_str("to", opt.reconnect_str);
	yaml_call(ret, err, t1, t2);
	tap_yaml_end();

	nanosleep(&ts, NULL);
	e = sock_error();
	tap_ok("so_error_after");
	tap_yaml_begin();
	tap_yaml_int("so_error", e);
	tap_yaml_str("so_error_name", errno_name(e));
	tap_yaml_double("waited_ms", opt.reconnect_wait_ms);
	tap_yaml_end();
}

static void step_send(int id)
{
	struct msg_rec *m = &st.msgs[id];
	char buf[MSG_LEN];
	uint64_t t2;
	ssize_t ret;
	int err;

	build_msg(id, buf);
	if (!opt.nonblock)
		watchdog_arm(opt.timeout_ms);
	m->t_send_ns = tap_now_ns();
	if (opt.no_connect)
		ret = sendto(st.fd, buf, MSG_LEN, MSG_NOSIGNAL,
			     (struct sockaddr *)&st.peer, st.peer_len);
	else
		ret = send(st.fd, buf, MSG_LEN, MSG_NOSIGNAL);
	err = ret < 0 ? errno : 0;
	t2 = tap_now_ns();
	if (!opt.nonblock)
		watchdog_disarm();
	/* A short TCP write would break the framing of the echo: not sent. */
	m->sent = ret == MSG_LEN;
	if (m->sent)
		st.sent++;

	tap_ok("send %d", id);
	tap_yaml_begin();
	tap_yaml_int("id", id);
	tap_yaml_int("ret", ret);
	tap_yaml_int("errno", err);
	tap_yaml_str("errno_name", errno_name(err));
	tap_yaml_uint("t_ns", m->t_send_ns);
	tap_yaml_double("t_ms", ms_since_t0(m->t_send_ns));
	tap_yaml_double("duration_ms", ms_between(m->t_send_ns, t2));
	tap_yaml_bool("watchdog", cut_off(err));
	tap_yaml_end();
}

static int ping_ident(void)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);

	if (getsockname(st.fd, (struct sockaddr *)&ss, &l) < 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET ?
		     ((struct sockaddr_in *)&ss)->sin_port :
		     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void yaml_received(void)
{
	static long long ids[MAX_COUNT], lost[MAX_COUNT], idents[MAX_COUNT];
	static double rtt[MAX_COUNT];
	unsigned int nr = 0, nl = 0;
	int id;

	for (id = 1; id <= opt.count; id++) {
		const struct msg_rec *m = &st.msgs[id];

		if (m->received) {
			ids[nr] = id;
			idents[nr] = m->ident;
			/* An echo of a send that failed has no round trip. */
			rtt[nr++] = m->sent ? ms_between(m->t_send_ns,
							 m->t_recv_ns) : NAN;
		} else if (m->sent) {
			lost[nl++] = id;
		}
	}
	tap_yaml_int_seq("received_ids", ids, nr);
	tap_yaml_double_seq("rtt_ms", rtt, nr);
	tap_yaml_int_seq("lost_ids", lost, nl);
	if (opt.proto == P_PING) {
		/* The seq of an echo reply is the id; the ident is ours. */
		tap_yaml_int("echo_ident", ping_ident());
		tap_yaml_int_seq("reply_seqs", ids, nr);
		tap_yaml_int_seq("reply_idents", idents, nr);
	}
}

static void step_recv(void)
{
	uint64_t t1 = tap_now_ns();

	if (st.sent)
		collect_until(t1 + opt.timeout_ms * 1000000ull, true);
	else
		collect_until(t1, false);

	tap_ok("recv");
	tap_yaml_begin();
	tap_yaml_int("sent", st.sent);
	tap_yaml_int("received", st.received);
	tap_yaml_int("lost", (long long)st.sent - st.received);
	tap_yaml_int("duplicates", st.duplicates);
	tap_yaml_int("strays", st.strays);
	if (st.first_reply_ns)
		tap_yaml_double("first_reply_ms",
				ms_since_t0(st.first_reply_ns));
	else
		tap_yaml_str("first_reply_ms", NULL);
	yaml_received();
	tap_yaml_double("waited_ms", ms_between(t1, tap_now_ns()));
	tap_yaml_int("socket_error", st.last_error);
	tap_yaml_str("socket_error_name", errno_name(st.last_error));
	tap_yaml_end();
}

static void step_summary(void)
{
	uint64_t t = tap_now_ns();

	tap_ok("summary");
	tap_yaml_begin();
	tap_yaml_double("total_ms", ms_since_t0(t));
	tap_yaml_uint("probe_start_ns", st.t0_ns);
	tap_yaml_uint("probe_end_ns", t);
	tap_yaml_end();
}

static void run_sends(void)
{
	int id;

	for (id = 1; id <= opt.count; id++) {
		step_send(id);
		if (id < opt.count && opt.interval_ms)
			collect_until(tap_now_ns() +
				      opt.interval_ms * 1000000ull, false);
	}
}

static void run_connect(void)
{
	int err;

	if (opt.no_connect) {
		tap_skip("--no-connect", "connect");
		return;
	}
	err = step_connect();
	/* TCP, or a datagram socket that asked for IP_XFRM_RESOLVE_STRICT */
	if (opt.nonblock && err == EINPROGRESS) {
		step_connect_again();
		step_poll_wait("poll_connect", true);
	}
}

/*
 * shutdown() from another process while this one may sleep in connect()
 * or send(): the socket is shared, and a process, unlike the SIGALRM
 * watchdog, does not interrupt the sleeping call itself.
 */
static pid_t shutdown_later(int ms)
{
	pid_t pid = fork();

	if (pid < 0)
		tap_bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		shutdown(st.fd, SHUT_WR);
		_exit(0);
	}
	return pid;
}

/*
 * close() from another thread of this process: unlike shutdown(), it
 * does not end a call already sleeping on the socket (the call holds the
 * file), which returns when its wait ends; the calls after it say EBADF.
 */
static void *close_later(void *arg)
{
	struct timespec ts = { opt.close_ms / 1000,
			       (opt.close_ms % 1000) * 1000000L };

	(void)arg;
	nanosleep(&ts, NULL);
	close(st.fd);
	return NULL;
}

static void run_probe(void)
{
	pid_t shutdown_pid = 0;
	pthread_t closer;
	int i;

	step_socket();
	if (opt.shutdown_ms >= 0)
		shutdown_pid = shutdown_later(opt.shutdown_ms);
	if (opt.close_ms >= 0 &&
	    pthread_create(&closer, NULL, close_later, NULL))
		tap_bail_out("pthread_create failed");
	if (opt.sndtimeo_ms >= 0)
		step_sndtimeo();
	for (i = 0; i < opt.nsockopts; i++)
		step_sockopt(&opt.sockopts[i]);
	run_connect();
	if (opt.poll_before_send)
		step_poll_now();
	if (opt.wait_pollout)
		step_poll_wait("wait_pollout", false);
	if (opt.reconnect_str)
		step_reconnect();
	run_sends();
	step_recv();
	if (shutdown_pid > 0)
		waitpid(shutdown_pid, NULL, 0);
	if (opt.close_ms >= 0)
		pthread_join(closer, NULL);
	step_summary();
	tap_plan_end();
}

/* ---- arguments ------------------------------------------------------ */

static enum proto parse_proto(const char *s)
{
	enum proto p;

	for (p = P_TCP; p <= P_PING; p++)
		if (!strcmp(s, proto_names[p]))
			return p;
	die_usage("--proto must be tcp, udp, raw or ping");
}

static void parse_sockopt(const char *s)
{
	struct sockopt_arg *so;
	long v[3];
	const char *p = s;
	char *end;
	int i;

	if (opt.nsockopts == MAX_SOCKOPTS)
		die_usage("at most %d --sockopt", MAX_SOCKOPTS);
	for (i = 0; i < 3; i++) {
		errno = 0;
		v[i] = strtol(p, &end, 0);
		if (end == p || errno || v[i] < INT32_MIN || v[i] > INT32_MAX ||
		    *end != (i < 2 ? ':' : '\0'))
			die_usage("--sockopt wants LEVEL:NAME:VALUE "
				  "(integers), not '%s'", s);
		p = end + 1;
	}
	so = &opt.sockopts[opt.nsockopts++];
	so->level = v[0];
	so->name = v[1];
	so->value = v[2];
}

static void parse_peer(void)
{
	struct sockaddr_in *s4 = (void *)&st.peer;
	struct sockaddr_in6 *s6 = (void *)&st.peer;
	/* Raw and ping sockets take no port; raw IPv6 reads it as protocol. */
	int port = opt.proto <= P_UDP ? opt.port : 0;

	memset(&st.peer, 0, sizeof(st.peer));
	if (opt.family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, opt.peer_str, &s4->sin_addr) != 1)
			die_usage("--peer '%s' is not an IPv4 address",
				  opt.peer_str);
		st.peer_len = sizeof(*s4);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, opt.peer_str, &s6->sin6_addr) != 1)
			die_usage("--peer '%s' is not an IPv6 address",
				  opt.peer_str);
		st.peer_len = sizeof(*s6);
	}
}

static void check_args(void)
{
	if (!opt.family)
		die_usage("--family is required");
	if (!opt.have_proto)
		die_usage("--proto is required");
	if (!opt.peer_str)
		die_usage("--peer is required");
	if (opt.proto <= P_UDP && opt.port < 0)
		die_usage("--port is required for %s", proto_names[opt.proto]);
	if (opt.proto == P_TCP && opt.no_connect)
		die_usage("--no-connect is for datagram sockets only");
	parse_peer();
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_PROTO, O_MODE, O_PEER, O_PORT, O_RAWPROTO,
	       O_COUNT, O_INTERVAL, O_TIMEOUT, O_SNDTIMEO, O_NOCONNECT,
	       O_SOCKOPT, O_POLLBEFORE, O_WAITPOLLOUT, O_SHUTDOWN, O_CLOSE,
	       O_RECONNECT, O_RECONNECT_WAIT,
	       O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "proto", required_argument, NULL, O_PROTO },
		{ "mode", required_argument, NULL, O_MODE },
		{ "peer", required_argument, NULL, O_PEER },
		{ "port", required_argument, NULL, O_PORT },
		{ "raw-proto", required_argument, NULL, O_RAWPROTO },
		{ "count", required_argument, NULL, O_COUNT },
		{ "interval-ms", required_argument, NULL, O_INTERVAL },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "sndtimeo-ms", required_argument, NULL, O_SNDTIMEO },
		{ "no-connect", no_argument, NULL, O_NOCONNECT },
		{ "sockopt", required_argument, NULL, O_SOCKOPT },
		{ "poll-before-send", no_argument, NULL, O_POLLBEFORE },
		{ "wait-pollout", no_argument, NULL, O_WAITPOLLOUT },
		{ "shutdown-after-ms", required_argument, NULL, O_SHUTDOWN },
		{ "close-after-ms", required_argument, NULL, O_CLOSE },
		{ "reconnect", required_argument, NULL, O_RECONNECT },
		{ "reconnect-wait-ms", required_argument, NULL,
		  O_RECONNECT_WAIT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_PROTO:
			opt.proto = parse_proto(optarg);
			opt.have_proto = true;
			break;
		case O_MODE:
			opt.nonblock = !strcmp(optarg, "nonblock");
			if (!opt.nonblock && strcmp(optarg, "block"))
				die_usage("--mode must be block or nonblock");
			break;
		case O_PEER: opt.peer_str = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_RAWPROTO:
			opt.raw_proto = parse_ip_proto("--raw-proto", optarg);
			break;
		case O_COUNT:
			opt.count = parse_num("--count", optarg, 0, MAX_COUNT);
			break;
		case O_INTERVAL:
			opt.interval_ms = parse_num("--interval-ms", optarg, 0,
						    600000);
			break;
		case O_TIMEOUT:
			opt.timeout_ms = parse_num("--timeout-ms", optarg, 1,
						   600000);
			break;
		case O_SNDTIMEO:
			opt.sndtimeo_ms = parse_num("--sndtimeo-ms", optarg, 0,
						    600000);
			break;
		case O_NOCONNECT: opt.no_connect = true; break;
		case O_SOCKOPT: parse_sockopt(optarg); break;
		case O_POLLBEFORE: opt.poll_before_send = true; break;
		case O_WAITPOLLOUT: opt.wait_pollout = true; break;
		case O_SHUTDOWN:
			opt.shutdown_ms = parse_num("--shutdown-after-ms",
						    optarg, 0, 600000);
			break;
		case O_CLOSE:
			opt.close_ms = parse_num("--close-after-ms", optarg, 0,
						 600000);
			break;
		case O_RECONNECT: opt.reconnect_str = optarg; break;
		case O_RECONNECT_WAIT:
			opt.reconnect_wait_ms = parse_num("--reconnect-wait-ms",
							  optarg, 0, 600000);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	check_args();
}

static void install_watchdog(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };

	/* No SA_RESTART: the point is to make the blocked call return. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	install_watchdog();
	tap_init();
	st.t0_ns = tap_st.start_ns;
	tap_diag(PROG " family=%s proto=%s mode=%s peer=%s port=%d count=%d "
		 "timeout_ms=%d", opt.family == AF_INET ? "4" : "6",
		 proto_names[opt.proto], opt.nonblock ? "nonblock" : "block",
		 opt.peer_str, opt.proto <= P_UDP ? opt.port : 0, opt.count,
		 opt.timeout_ms);
	run_probe();
	return 0;
}
