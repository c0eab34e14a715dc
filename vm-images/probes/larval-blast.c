// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-blast - UDP packets per second through a policy, print TAP
 *
 * The fast-path benchmark: with the SA in place, how many datagrams a
 * sender gets through ESP in a fixed time, and how many the peer takes
 * in.  Two roles, run in the two namespaces of the transport topology:
 *
 *   --recv   binds the port, says "# READY" once it can take datagrams,
 *            counts them until SIGTERM, then prints what it counted.
 *   --send   sends fixed-size datagrams to the peer for --duration-ms,
 *            each with its own sendto() on an unconnected socket, so that
 *            every datagram goes through the route and policy lookup the
 *            series changed (a connected socket would reuse its route).
 *
 * Both print TAP 14 on stdout; times are CLOCK_MONOTONIC ns.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG		"larval-blast"
#include "guest.h"
#include "tap.h"

#define MAX_SIZE	1400
#define RECV_BATCH	64
/* Reading the clock for every datagram would cost as much as a send under TCG. */
#define CLOCK_EVERY	32
#define BUF_BYTES	(8 << 20)

static struct {
	int family;
	bool send;
	bool recv;
	const char *peer;
	int port;
	long size;
	long duration_ms;
	long max_runtime_s;
} opt = {
	.port = 7100,
	.size = 64,
	.duration_ms = 2000,
	.max_runtime_s = 120,
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 (--send --peer ADDR | --recv) [options]\n"
"\n"
"Send UDP datagrams for a fixed time, or count those that arrive; print\n"
"TAP 14.\n"
"\n"
"  --port P           UDP port (default 7100)\n"
"  --size BYTES       payload of each datagram, 1..%d (default 64)\n"
"  --duration-ms D    how long the sender sends (default 2000)\n"
"  --max-runtime-s S  the receiver gives up after S s (default 120)\n"
"\n"
"Exit 0 when the role ran, 1 on internal failure, 2 on bad arguments.\n",
		MAX_SIZE);
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_SEND, O_RECV, O_PEER, O_PORT, O_SIZE,
	       O_DURATION, O_MAXRT, O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "send", no_argument, NULL, O_SEND },
		{ "recv", no_argument, NULL, O_RECV },
		{ "peer", required_argument, NULL, O_PEER },
		{ "port", required_argument, NULL, O_PORT },
		{ "size", required_argument, NULL, O_SIZE },
		{ "duration-ms", required_argument, NULL, O_DURATION },
		{ "max-runtime-s", required_argument, NULL, O_MAXRT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_SEND: opt.send = true; break;
		case O_RECV: opt.recv = true; break;
		case O_PEER: opt.peer = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_SIZE:
			opt.size = parse_num("--size", optarg, 1, MAX_SIZE);
			break;
		case O_DURATION:
			opt.duration_ms = parse_num("--duration-ms", optarg, 1,
						    600000);
			break;
		case O_MAXRT:
			opt.max_runtime_s = parse_num("--max-runtime-s", optarg,
						      1, 7200);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.family || opt.send == opt.recv)
		die_usage("--family and one of --send or --recv are required");
	if (opt.send && !opt.peer)
		die_usage("--send needs --peer");
}

/* Root in the guest: FORCE passes net.core.[rw]mem_max, plain is the fallback. */
static void big_buffer(int fd, int force, int plain)
{
	int bytes = BUF_BYTES;

	if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof(bytes)) < 0)
		setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof(bytes));
}

static int run_send(void)
{
	static char payload[MAX_SIZE];
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_nth(opt.family, opt.peer, opt.port, 0, &ss);
	unsigned long sent = 0, errors = 0;
	int first_errno = 0, fd;
	uint64_t start, end, now;

	memset(payload, 'b', sizeof(payload));
	fd = socket(opt.family, SOCK_DGRAM, 0);
	if (fd < 0)
		tap_bail_out("socket: %s", strerror(errno));
	big_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);

	start = tap_now_ns();
	end = start + opt.duration_ms * 1000000ull;
	now = start;
	while (now < end) {
		int k;

		for (k = 0; k < CLOCK_EVERY; k++) {
			if (sendto(fd, payload, opt.size, 0,
				   (struct sockaddr *)&ss, len) == opt.size) {
				sent++;
			} else if (!errors++) {
				first_errno = errno;
			}
		}
		now = tap_now_ns();
	}
	close(fd);

	tap_result(sent > 0, "send");
	tap_yaml_begin();
	tap_yaml_int("sent", sent);
	tap_yaml_int("errors", errors);
	tap_yaml_str("first_errno", err_str(first_errno));
	tap_yaml_int("size", opt.size);
	tap_yaml_uint("start_ns", start);
	tap_yaml_uint("end_ns", now);
	tap_yaml_double("pps", sent / ((double)(now - start) / 1e9));
	tap_yaml_end();
	tap_plan_end();
	return 0;
}

/* Takes every datagram waiting now; returns how many, or -1 once none is. */
static long drain(int fd, uint64_t *bytes)
{
	static char bufs[RECV_BATCH][MAX_SIZE];
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];
	long total = 0;
	int n, k;

	for (k = 0; k < RECV_BATCH; k++) {
		iov[k] = (struct iovec){ .iov_base = bufs[k],
					 .iov_len = sizeof(bufs[k]) };
		msgs[k] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[k],
							 .msg_iovlen = 1 } };
	}
	for (;;) {
		n = recvmmsg(fd, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		for (k = 0; k < n; k++)
			*bytes += msgs[k].msg_len;
		total += n;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		tap_bail_out("recvmmsg: %s", strerror(errno));
	return total;
}

static int run_recv(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_nth(opt.family, NULL, opt.port, 0, &ss);
	uint64_t bytes = 0, first = 0, last = 0, deadline;
	unsigned long received = 0;
	bool stopped = false;
	int fd, sig_fd;

	sig_fd = signal_fd();
	fd = socket(opt.family, SOCK_DGRAM, 0);
	if (fd < 0)
		tap_bail_out("socket: %s", strerror(errno));
	big_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		tap_bail_out("bind port %d: %s", opt.port, strerror(errno));
	tap_diag("READY");

	deadline = tap_now_ns() + opt.max_runtime_s * 1000000000ull;
	while (!stopped) {
		struct pollfd p[2] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = fd, .events = POLLIN },
		};
		uint64_t now = tap_now_ns();
		long n;

		if (now >= deadline)
			break;
		if (poll(p, 2, (int)((deadline - now) / 1000000 + 1)) < 0 &&
		    errno != EINTR)
			tap_bail_out("poll: %s", strerror(errno));
		if (p[0].revents & POLLIN)
			stopped = true;
		/* what arrived before the signal still counts */
		n = drain(fd, &bytes);
		if (n > 0) {
			last = tap_now_ns();
			if (!first)
				first = last;
			received += n;
		}
	}

	tap_result(stopped, "receive");
	tap_yaml_begin();
	tap_yaml_int("received", received);
	tap_yaml_uint("bytes", bytes);
	tap_yaml_uint("first_ns", first);
	tap_yaml_uint("last_ns", last);
	tap_yaml_bool("stopped_by_signal", stopped);
	tap_yaml_end();
	tap_plan_end();
	return 0;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	tap_init();
	tap_diag(PROG " family=%d role=%s peer=%s port=%d size=%ld",
		 opt.family == AF_INET ? 4 : 6, opt.send ? "send" : "recv",
		 opt.peer ? opt.peer : "-", opt.port, opt.size);
	return opt.send ? run_send() : run_recv();
}
