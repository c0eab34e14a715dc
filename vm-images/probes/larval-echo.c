// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-echo - the far end for larval-probe
 *
 * Echoes every UDP datagram, raw IP payload or TCP chunk back to its
 * sender and logs what arrived, with the id larval-probe writes into each
 * payload ("larval:<id>:..."), so the harness can tell which messages
 * crossed the IPsec policy and when.
 *
 * With --order (UDP) it also tells each sender in what order its datagrams
 * arrived here: larval-stress numbers its flows and their datagrams
 * ("larval:<flow>:<seq>:"), and the echo appends the arrival index within
 * the flow to the reply.  The replies may come back in any order; what they
 * say is the order at this end, after the IPsec policy.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG		"larval-echo"
#include "guest.h"
#include "tap.h"

#define MAX_CONNS	64
#define BUF_SIZE	65536
#define WRITE_WAIT_MS	1000
#define MAX_IDS		64
/*
 * Flows --order follows at once.  larval-stress numbers a round's flows
 * round * 256 + worker, so the flows of one round never share a slot.
 */
#define ORDER_SLOTS	1024

enum proto { P_TCP, P_UDP, P_RAW };

static struct {
	int family;
	enum proto proto;
	int port;
	int raw_proto;
	const char *log_path;
	unsigned long max_runtime_s;
	bool dns;
	bool order;
	bool quiet;
} opt = {
	.family = 0,
	.port = -1,
	.raw_proto = 253,
	.max_runtime_s = 600,
};

static const char *const proto_names[] = { "tcp", "udp", "raw" };

static struct {
	unsigned long recv, echoed, errors, accepted, reordered;
} cnt;

/* --order: the last flow seen in each slot, and how far it got. */
static struct {
	unsigned long long flow;
	unsigned long long max_seq;
	unsigned long long arrivals;
	bool used;
} flows[ORDER_SLOTS];

struct conn {
	int fd;
	struct sockaddr_storage peer;
};

static struct conn conns[MAX_CONNS];
static int nconns;

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 --proto tcp|udp|raw [--port P]\n"
"                   [--raw-proto N] [--log FILE] [--max-runtime-s N] [--dns]\n"
"                   [--order] [--quiet]\n"
"\n"
"Echo what arrives back to its sender, logging each arrival.\n"
"\n"
"  --family 4|6        address family (required)\n"
"  --proto P           tcp, udp or raw (required)\n"
"  --port P            port to listen on (required for tcp and udp)\n"
"  --raw-proto N       IP protocol number for raw (default 253)\n"
"  --log FILE          event log (default stdout)\n"
"  --max-runtime-s N   exit after N s (default 600)\n"
"  --dns               udp: answer as a name server without records: the\n"
"                      query goes back with QR and RA set (NOERROR, no\n"
"                      answer), which a stub resolver takes as NO_DATA\n"
"  --order             udp: to a datagram 'larval:FLOW:SEQ:...' append\n"
"                      ':arr=N:ooo=0|1' to the reply: N is its arrival index\n"
"                      in FLOW (1 for the first), ooo 1 when a SEQ as high\n"
"                      or higher arrived before it\n"
"  --quiet             no line per arrival, connection or close (a stress\n"
"                      sends too many); errors and the summary stay\n"
"  --help              this text\n"
"\n"
"Log: 'READY <ns>' once listening (also on stdout with --log), then\n"
"'<ns> RECV proto=.. from=ADDR:PORT len=N id=ID echo=ERR' per arrival\n"
"(IPv6 as [ADDR]:PORT, port 0 for raw), '<ns> SUMMARY ...' at exit.\n"
"Exit 0 on SIGTERM/SIGINT or max runtime, 2 on bad arguments.\n");
}

static const char *sockaddr_str(const struct sockaddr_storage *ss)
{
	static char buf[INET6_ADDRSTRLEN + 16];
	char a[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, sizeof(buf), "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, sizeof(buf), "%s:%u", a, ntohs(s4->sin_port));
	}
	return buf;
}

/*
 * "id=<first>" and, when a TCP chunk carries several messages, also
 * "ids=<a>,<b>,...".  The ids are copied as the digits the probe wrote.
 */
static void format_ids(const char *p, size_t len, char *out, size_t outlen)
{
	static const char tag[] = "larval:";
	const char *end = p + len;
	char first[24] = "-";
	char all[256] = "";
	size_t alen = 0;
	int n = 0;

	while (p < end) {
		const char *hit = memmem(p, end - p, tag, sizeof(tag) - 1);
		const char *d;
		size_t dl;

		if (!hit)
			break;
		d = hit + sizeof(tag) - 1;
		for (dl = 0; d + dl < end && dl < 20 && d[dl] >= '0' &&
		     d[dl] <= '9'; dl++)
			;
		p = d + dl;
		if (!dl)
			continue;
		if (!n)
			snprintf(first, sizeof(first), "%.*s", (int)dl, d);
		if (n < MAX_IDS && alen + dl + 2 < sizeof(all))
			alen += snprintf(all + alen, sizeof(all) - alen,
					 "%s%.*s", n ? "," : "", (int)dl, d);
		n++;
	}
	if (n > 1)
		snprintf(out, outlen, "id=%s ids=%s", first, all);
	else
		snprintf(out, outlen, "id=%s", first);
}

static void log_recv(uint64_t t, const struct sockaddr_storage *from,
		     const char *payload, size_t len, int echo_err)
{
	char ids[320];

	if (!opt.quiet) {
		format_ids(payload, len, ids, sizeof(ids));
		log_at(t, "RECV proto=%s from=%s len=%zu %s echo=%s",
		       proto_names[opt.proto], sockaddr_str(from), len, ids,
		       err_str(echo_err));
	}
	cnt.recv++;
	if (echo_err)
		cnt.errors++;
	else
		cnt.echoed++;
}

static int open_listener(void)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int one = 1;
	int type, protocol, fd;

	type = opt.proto == P_TCP ? SOCK_STREAM :
	       opt.proto == P_UDP ? SOCK_DGRAM : SOCK_RAW;
	protocol = opt.proto == P_RAW ? opt.raw_proto : 0;
	fd = socket(opt.family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (opt.family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		/* One family per echo, so the log says what was tested. */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = opt.proto == P_RAW ? 0 : htons(opt.port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = opt.proto == P_RAW ? 0 : htons(opt.port);
		sl = sizeof(*s4);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		die("bind: %s", strerror(errno));
	if (opt.proto == P_TCP && listen(fd, 64) < 0)
		die("listen: %s", strerror(errno));
	return fd;
}

/*
 * --order: notes the arrival of "larval:FLOW:SEQ:..." in its flow and
 * appends ":arr=N:ooo=0|1" to the @len bytes at @p (room for @cap).
 * Returns the new length; a payload of another shape is left as it is.
 */
static size_t note_order(char *p, size_t len, size_t cap)
{
	unsigned long long flow, seq;
	size_t head = len < 63 ? len : 63;
	char tmp[64];
	bool ooo;
	int n, w;

	/* The payload is not a string: parse a terminated copy of its head. */
	memcpy(tmp, p, head);
	tmp[head] = '\0';
	if (sscanf(tmp, "larval:%llu:%llu:", &flow, &seq) != 2)
		return len;
	n = flow % ORDER_SLOTS;
	if (!flows[n].used || flows[n].flow != flow) {
		flows[n].used = true;
		flows[n].flow = flow;
		flows[n].max_seq = 0;
		flows[n].arrivals = 0;
	}
	ooo = flows[n].arrivals && seq <= flows[n].max_seq;
	flows[n].arrivals++;
	if (seq > flows[n].max_seq)
		flows[n].max_seq = seq;
	if (ooo)
		cnt.reordered++;
	w = snprintf(p + len, cap - len, ":arr=%llu:ooo=%d", flows[n].arrivals,
		     ooo);
	return w > 0 && (size_t)w < cap - len ? len + w : len;
}

/* Raw IPv4 sockets hand us the IP header too; IPv6 ones do not. */
static const char *raw_payload(const char *buf, size_t *len)
{
	const struct iphdr *ip = (const void *)buf;
	size_t hl;

	if (opt.family != AF_INET || *len < sizeof(*ip))
		return buf;
	hl = ip->ihl * 4u;
	if (hl > *len)
		hl = *len;
	*len -= hl;
	return buf + hl;
}

static void serve_datagrams(int fd)
{
	static char buf[BUF_SIZE];

	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		const char *payload;
		size_t len;
		ssize_t r;
		uint64_t t;
		int err = 0;

		r = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
			     (struct sockaddr *)&from, &fl);
		t = tap_now_ns();
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			log_at(t, "ERROR recvfrom %s", errno_name(errno));
			cnt.errors++;
			return;
		}
		len = r;
		payload = opt.proto == P_RAW ? raw_payload(buf, &len) : buf;
		/*
		 * A reply with neither RA nor AA nor records is a referral
		 * to glibc's resolver, which then tries the next server.
		 */
		if (opt.dns && len >= 4) {
			buf[2] |= 0x80;		/* QR: a response */
			buf[3] |= 0x80;		/* RA: recursion available */
		}
		if (opt.order)
			len = note_order(buf, len, sizeof(buf));
		if (sendto(fd, payload, len, MSG_DONTWAIT,
			   (struct sockaddr *)&from, fl) < 0)
			err = errno;
		log_recv(t, &from, payload, len, err);
	}
}

static void close_conn(int i, const char *why)
{
	if (!opt.quiet)
		log_at(tap_now_ns(), "CLOSE proto=tcp from=%s reason=%s",
		       sockaddr_str(&conns[i].peer), why);
	close(conns[i].fd);
	conns[i] = conns[--nconns];
}

/* Chunks are small; wait, bounded, instead of buffering per connection. */
static int write_all(int fd, const char *p, size_t len)
{
	uint64_t deadline = tap_now_ns() + WRITE_WAIT_MS * 1000000ull;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			len -= w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return errno;
		if (tap_now_ns() >= deadline)
			return ETIMEDOUT;
		poll(&pfd, 1, 10);
	}
	return 0;
}

/* Returns false when the connection is finished and was closed. */
static bool serve_conn(int i)
{
	static char buf[BUF_SIZE];

	for (;;) {
		ssize_t r = recv(conns[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
		uint64_t t = tap_now_ns();

		if (r == 0) {
			close_conn(i, "eof");
			return false;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			close_conn(i, errno_name(errno));
			return false;
		}
		log_recv(t, &conns[i].peer, buf, r,
			 write_all(conns[i].fd, buf, r));
	}
}

static void accept_all(int lfd)
{
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		int fd;

		fd = accept4(lfd, (struct sockaddr *)&from, &fl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		cnt.accepted++;
		if (nconns == MAX_CONNS) {
			log_at(tap_now_ns(), "ERROR too many connections, "
			       "closing one from %s", sockaddr_str(&from));
			cnt.errors++;
			close(fd);
			continue;
		}
		conns[nconns].fd = fd;
		conns[nconns].peer = from;
		nconns++;
		if (!opt.quiet)
			log_at(tap_now_ns(), "ACCEPT proto=tcp from=%s",
			       sockaddr_str(&from));
	}
}

static void run(int lfd, int sig_fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[MAX_CONNS + 2];
		uint64_t now = tap_now_ns();
		int i, n = nconns, timeout;

		if (now >= deadline) {
			log_at(now, "MAXRUNTIME %lus", opt.max_runtime_s);
			return;
		}
		p[0] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < n; i++)
			p[i + 2] = (struct pollfd){ .fd = conns[i].fd,
						    .events = POLLIN };
		timeout = (deadline - now) / 1000000 + 1;
		if (poll(p, n + 2, timeout) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (p[0].revents & POLLIN) {
			log_signal(sig_fd);
			return;
		}
		/* Backwards: serve_conn() may move the last entry into i. */
		for (i = n - 1; i >= 0; i--)
			if (p[i + 2].revents)
				serve_conn(i);
		if (p[1].revents & POLLIN) {
			if (opt.proto == P_TCP)
				accept_all(lfd);
			else
				serve_datagrams(lfd);
		}
	}
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_PROTO, O_PORT, O_RAWPROTO, O_LOG, O_MAXRT,
	       O_DNS, O_ORDER, O_QUIET, O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "proto", required_argument, NULL, O_PROTO },
		{ "port", required_argument, NULL, O_PORT },
		{ "raw-proto", required_argument, NULL, O_RAWPROTO },
		{ "log", required_argument, NULL, O_LOG },
		{ "max-runtime-s", required_argument, NULL, O_MAXRT },
		{ "dns", no_argument, NULL, O_DNS },
		{ "order", no_argument, NULL, O_ORDER },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool have_proto = false;
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_PROTO:
			for (opt.proto = P_TCP; opt.proto <= P_RAW; opt.proto++)
				if (!strcmp(optarg, proto_names[opt.proto]))
					break;
			if (opt.proto > P_RAW)
				die_usage("--proto must be tcp, udp or raw");
			have_proto = true;
			break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_RAWPROTO:
			opt.raw_proto = parse_ip_proto("--raw-proto", optarg);
			break;
		case O_LOG: opt.log_path = optarg; break;
		case O_MAXRT:
			opt.max_runtime_s = parse_num("--max-runtime-s", optarg,
						      1, 86400);
			break;
		case O_DNS: opt.dns = true; break;
		case O_ORDER: opt.order = true; break;
		case O_QUIET: opt.quiet = true; break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (opt.dns && opt.proto != P_UDP)
		die_usage("--dns is for udp");
	if (opt.order && opt.proto != P_UDP)
		die_usage("--order is for udp");
	if (opt.order && opt.dns)
		die_usage("--order and --dns are two different answers");
	if (!opt.family)
		die_usage("--family is required");
	if (!have_proto)
		die_usage("--proto is required");
	if (opt.proto != P_RAW && opt.port < 0)
		die_usage("--port is required for %s", proto_names[opt.proto]);
}

int main(int argc, char **argv)
{
	uint64_t start, ready;
	int lfd, sig_fd;

	tap_clock_start();
	parse_args(argc, argv);
	log_open(opt.log_path);
	signal(SIGPIPE, SIG_IGN);
	sig_fd = signal_fd();
	start = tap_now_ns();
	alarm(opt.max_runtime_s + 5);
	lfd = open_listener();

	ready = tap_now_ns();
	log_ready(ready);

	run(lfd, sig_fd, start + opt.max_runtime_s * 1000000000ull);
	log_at(tap_now_ns(), "SUMMARY recv=%lu echoed=%lu accepted=%lu "
	       "errors=%lu reordered=%lu", cnt.recv, cnt.echoed, cnt.accepted,
	       cnt.errors, cnt.reordered);
	return 0;
}
