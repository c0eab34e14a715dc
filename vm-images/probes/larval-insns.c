// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-insns - guest instructions per socket call, print TAP
 *
 * The deterministic fast-path benchmark.  Under QEMU's instruction
 * counter (-icount shift=0) the guest's TSC advances by exactly one per
 * instruction executed, whatever the host is doing, so the difference of
 * two rdtsc reads around a loop of socket calls is the number of
 * instructions the guest ran meanwhile: the calls, the kernel paths they
 * take (route and policy lookup, ESP, the veth hop, the peer's ESP input
 * and UDP or TCP receive) and the timer ticks that fell inside, which are
 * themselves paced by instructions.  Nothing of the host's load enters.
 *
 * Two roles:
 *
 *   --echo     listens on the TCP port and echoes what a connection
 *              sends; says "# READY", runs until SIGTERM.
 *   --op OP    runs OP --warmup times, then --batches times --ops times,
 *              reading the TSC around each batch:
 *                sendto  unconnected UDP sendto() (route and policy
 *                        lookup on every datagram)
 *                send    connected UDP send() (the cached route)
 *                poll    poll(POLLOUT) of a connected UDP socket
 *                tcp-rr  write --size bytes on an established TCP
 *                        connection to an --echo and read the echo back
 *
 * The harness sends the UDP calls' datagrams through ESP to a dummy
 * device, which frees each one as it is transmitted: the count is then
 * the sending path alone, every call alike, with no receiver whose
 * softirq batching would move it from batch to batch.
 *
 * Off icount the TSC counts host-scaled time, not instructions: the
 * harness only runs --op in a guest it booted with -icount.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <x86intrin.h>

#define PROG		"larval-insns"
#include "guest.h"
#include "tap.h"

#define MAX_SIZE	1400
#define MAX_BATCHES	64

enum op { OP_NONE, OP_SENDTO, OP_SEND, OP_POLL, OP_TCP_RR };

static const char *const op_names[] = {
	[OP_SENDTO] = "sendto", [OP_SEND] = "send", [OP_POLL] = "poll",
	[OP_TCP_RR] = "tcp-rr",
};

static struct {
	int family;
	bool echo;
	enum op op;
	const char *peer;
	int port;
	long size;
	long ops;
	long batches;
	long warmup;
} opt = {
	.port = 7200,
	.size = 64,
	.ops = 1000,
	.batches = 5,
	.warmup = 200,
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 (--echo | --op OP --peer ADDR) [options]\n"
"\n"
"Count the guest's instructions per socket call (rdtsc under QEMU's\n"
"-icount shift=0), or be the TCP peer that echoes; print TAP 14.\n"
"\n"
"  --op OP        sendto, send, poll or tcp-rr\n"
"  --port P       the peer's port (default 7200)\n"
"  --size BYTES   payload per call, 1..%d (default 64)\n"
"  --ops N        calls per batch (default 1000)\n"
"  --batches K    batches, 1..%d (default 5)\n"
"  --warmup W     calls before the first batch (default 200): caches,\n"
"                 the peer's receive buffer and TCP's windows settle\n"
"\n"
"Exit 0 when the role ran, 1 on internal failure, 2 on bad arguments.\n",
		MAX_SIZE, MAX_BATCHES);
}

static enum op parse_op(const char *s)
{
	size_t i;

	for (i = 1; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(s, op_names[i]))
			return (enum op)i;
	die_usage("--op: '%s' is not sendto, send, poll or tcp-rr", s);
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_ECHO, O_OP, O_PEER, O_PORT, O_SIZE, O_OPS,
	       O_BATCHES, O_WARMUP, O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "echo", no_argument, NULL, O_ECHO },
		{ "op", required_argument, NULL, O_OP },
		{ "peer", required_argument, NULL, O_PEER },
		{ "port", required_argument, NULL, O_PORT },
		{ "size", required_argument, NULL, O_SIZE },
		{ "ops", required_argument, NULL, O_OPS },
		{ "batches", required_argument, NULL, O_BATCHES },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_ECHO: opt.echo = true; break;
		case O_OP: opt.op = parse_op(optarg); break;
		case O_PEER: opt.peer = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_SIZE:
			opt.size = parse_num("--size", optarg, 1, MAX_SIZE);
			break;
		case O_OPS:
			opt.ops = parse_num("--ops", optarg, 1, 10000000);
			break;
		case O_BATCHES:
			opt.batches = parse_num("--batches", optarg, 1,
						MAX_BATCHES);
			break;
		case O_WARMUP:
			opt.warmup = parse_num("--warmup", optarg, 0, 10000000);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.family || opt.echo == (opt.op != OP_NONE))
		die_usage("--family and one of --echo or --op are required");
	if (opt.op != OP_NONE && !opt.peer)
		die_usage("--op needs --peer");
}

/* ------------------------------------------------------------------ */
/* The echo peer                                                       */

static void echo_some(int *conn)
{
	static char buf[MAX_SIZE * 4];
	ssize_t n = read(*conn, buf, sizeof(buf));
	ssize_t off = 0;

	if (n <= 0) {
		close(*conn);
		*conn = -1;
		return;
	}
	while (off < n) {
		ssize_t w = write(*conn, buf + off, n - off);

		if (w < 0) {
			close(*conn);
			*conn = -1;
			return;
		}
		off += w;
	}
}

static int run_echo(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_nth(opt.family, NULL, opt.port, 0, &ss);
	int one = 1, lst, conn = -1, sig_fd;
	unsigned long conns = 0;
	bool stopped = false;

	sig_fd = signal_fd();
	lst = socket(opt.family, SOCK_STREAM, 0);
	if (lst < 0)
		tap_bail_out("socket: %s", strerror(errno));
	setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lst, (struct sockaddr *)&ss, len) < 0 || listen(lst, 4) < 0)
		tap_bail_out("bind port %d: %s", opt.port, strerror(errno));
	tap_diag("READY");

	while (!stopped) {
		struct pollfd p[3] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = lst, .events = POLLIN },
			{ .fd = conn, .events = POLLIN },
		};

		if (poll(p, 3, -1) < 0 && errno != EINTR)
			tap_bail_out("poll: %s", strerror(errno));
		if (p[0].revents & POLLIN)
			stopped = true;
		if (p[1].revents & POLLIN) {
			int c = accept(lst, NULL, NULL);

			if (c >= 0) {
				if (conn >= 0)
					close(conn);
				conn = c;
				conns++;
				setsockopt(conn, IPPROTO_TCP, TCP_NODELAY,
					   &one, sizeof(one));
			}
		}
		if (conn >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			echo_some(&conn);
	}

	tap_result(true, "echo");
	tap_yaml_begin();
	tap_yaml_int("connections", conns);
	tap_yaml_end();
	tap_plan_end();
	return 0;
}

/* ------------------------------------------------------------------ */
/* The measured calls                                                  */

static char payload[MAX_SIZE];
static struct sockaddr_storage peer;
static socklen_t peer_len;
static unsigned long errors;
static int first_errno;

static void failed(void)
{
	if (!errors++)
		first_errno = errno;
}

static bool read_full(int fd, char *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = read(fd, buf + off, n - off);

		if (r <= 0)
			return false;
		off += r;
	}
	return true;
}

static void one_call(int fd)
{
	static char back[MAX_SIZE];
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	switch (opt.op) {
	case OP_SENDTO:
		if (sendto(fd, payload, opt.size, 0, (struct sockaddr *)&peer,
			   peer_len) != opt.size)
			failed();
		break;
	case OP_SEND:
		if (send(fd, payload, opt.size, 0) != opt.size)
			failed();
		break;
	case OP_POLL:
		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
			failed();
		break;
	case OP_TCP_RR:
		if (write(fd, payload, opt.size) != opt.size ||
		    !read_full(fd, back, opt.size))
			failed();
		break;
	case OP_NONE:
		break;
	}
}

static int open_socket(void)
{
	bool tcp = opt.op == OP_TCP_RR;
	int one = 1;
	int fd = socket(opt.family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);

	if (fd < 0)
		tap_bail_out("socket: %s", strerror(errno));
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.op != OP_SENDTO &&
	    connect(fd, (struct sockaddr *)&peer, peer_len) < 0)
		tap_bail_out("connect %s: %s", opt.peer, strerror(errno));
	return fd;
}

static int run_op(void)
{
	long long per_batch[MAX_BATCHES];
	uint64_t start_ns, end_ns;
	long b, i;
	int fd;

	memset(payload, 'i', sizeof(payload));
	peer_len = sockaddr_nth(opt.family, opt.peer, opt.port, 0, &peer);
	fd = open_socket();

	for (i = 0; i < opt.warmup; i++)
		one_call(fd);
	start_ns = tap_now_ns();
	for (b = 0; b < opt.batches; b++) {
		uint64_t t0 = __rdtsc();

		for (i = 0; i < opt.ops; i++)
			one_call(fd);
		per_batch[b] = (long long)(__rdtsc() - t0);
	}
	end_ns = tap_now_ns();
	close(fd);

	tap_result(!errors, "%s", op_names[opt.op]);
	tap_yaml_begin();
	tap_yaml_str("op", op_names[opt.op]);
	tap_yaml_int("family", opt.family == AF_INET ? 4 : 6);
	tap_yaml_int("size", opt.size);
	tap_yaml_int("ops", opt.ops);
	tap_yaml_int("warmup", opt.warmup);
	/* TSC ticks per batch: instructions under -icount shift=0 */
	tap_yaml_int_seq("tsc", per_batch, opt.batches);
	tap_yaml_uint("monotonic_ns", end_ns - start_ns);
	tap_yaml_int("errors", errors);
	tap_yaml_str("first_errno", err_str(first_errno));
	tap_yaml_end();
	tap_plan_end();
	return 0;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	tap_init();
	tap_diag(PROG " family=%d role=%s peer=%s port=%d size=%ld",
		 opt.family == AF_INET ? 4 : 6,
		 opt.echo ? "echo" : op_names[opt.op],
		 opt.peer ? opt.peer : "-", opt.port, opt.size);
	return opt.echo ? run_echo() : run_op();
}
