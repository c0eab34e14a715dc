// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-waiters - many sockets waiting for SAs at once, print TAP
 *
 * Opens N non-blocking UDP sockets, connects them (to one peer, or each to
 * a peer of its own: N acquires), adds them all to one epoll set for
 * EPOLLOUT, and records which of them become writable and when, on
 * CLOCK_MONOTONIC, so the harness can set the wakes against the key
 * manager's installation.  It shows two things about the series' wake-ups
 * (sa-resolution.md, "Socket calls"): one installation wakes every socket
 * waiting on that acquire, and only those; and what stock says instead
 * (every socket writable at once, while nothing can leave).
 *
 * After a socket became writable it reads SO_ERROR (a failed acquire
 * leaves EHOSTUNREACH there) and sends one datagram: a wake that came
 * before the SA would show as EAGAIN there.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG		"larval-waiters"
#include "guest.h"
#include "tap.h"

#define MAX_SOCKETS	20000
#define LIST_MAX	16	/* woken indexes listed in the report */

static struct {
	int family;
	const char *peer;
	int port;
	long count;
	bool distinct;
	long expect;
	long timeout_ms;
	long settle_ms;
} opt = {
	.port = 7000,
	.count = 1000,
	.expect = -1,
	.timeout_ms = 10000,
	.settle_ms = 300,
};

struct waiter {
	int fd;
	uint64_t woken_ns;	/* 0: not (yet) writable */
	int send_errno;
};

static struct waiter *w;

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 --peer ADDR [options]\n"
"\n"
"Connect N non-blocking UDP sockets and wait for them to become writable;\n"
"print TAP 14.\n"
"\n"
"  --count N        sockets (default 1000)\n"
"  --distinct       socket i connects to ADDR + i (its own peer, its own\n"
"                   acquire); default: every socket to ADDR\n"
"  --port P         UDP port of the peer(s) (default 7000)\n"
"  --expect K       stop waiting once K sockets are writable (default N)\n"
"  --timeout-ms T   give up waiting after T ms (default 10000)\n"
"  --settle-ms S    then watch S ms more for wakes that should not come\n"
"                   (default 300)\n"
"\n"
"Test points: connect, writable at once, woken (with SO_ERROR), send after\n"
"wake, summary; times are CLOCK_MONOTONIC ns.  Exit 0 when every call was\n"
"made, 1 on internal failure, 2 on bad arguments.\n");
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_PEER, O_PORT, O_COUNT, O_DISTINCT, O_EXPECT,
	       O_TIMEOUT, O_SETTLE, O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "peer", required_argument, NULL, O_PEER },
		{ "port", required_argument, NULL, O_PORT },
		{ "count", required_argument, NULL, O_COUNT },
		{ "distinct", no_argument, NULL, O_DISTINCT },
		{ "expect", required_argument, NULL, O_EXPECT },
		{ "timeout-ms", required_argument, NULL, O_TIMEOUT },
		{ "settle-ms", required_argument, NULL, O_SETTLE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_PEER: opt.peer = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_COUNT:
			opt.count = parse_num("--count", optarg, 1, MAX_SOCKETS);
			break;
		case O_DISTINCT: opt.distinct = true; break;
		case O_EXPECT:
			opt.expect = parse_num("--expect", optarg, 0, MAX_SOCKETS);
			break;
		case O_TIMEOUT:
			opt.timeout_ms = parse_num("--timeout-ms", optarg, 1, 600000);
			break;
		case O_SETTLE:
			opt.settle_ms = parse_num("--settle-ms", optarg, 0, 600000);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.family || !opt.peer)
		die_usage("--family and --peer are required");
	if (opt.expect < 0)
		opt.expect = opt.count;
	if (opt.expect > opt.count)
		die_usage("--expect %ld is more than --count %ld", opt.expect,
			  opt.count);
}

static void raise_nofile(void)
{
	struct rlimit rl = {
		.rlim_cur = opt.count + 64,
		.rlim_max = opt.count + 64,
	};

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		tap_bail_out("setrlimit(RLIMIT_NOFILE, %ld): %s",
			     opt.count + 64, strerror(errno));
}

/* Marks the sockets of @n events woken at @now and stops watching them. */
static long take_events(int ep, const struct epoll_event *ev, int n,
			uint64_t now)
{
	int k;

	for (k = 0; k < n; k++) {
		struct waiter *x = &w[ev[k].data.u32];

		x->woken_ns = now;
		epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
	}
	return n;
}

/* Takes the sockets epoll reports writable right now, without waiting. */
static long drain_ready(int ep)
{
	struct epoll_event ev[256];
	long woken = 0;
	int n;

	while ((n = epoll_wait(ep, ev, 256, 0)) > 0)
		woken += take_events(ep, ev, n, tap_now_ns());
	if (n < 0)
		tap_bail_out("epoll_wait: %s", strerror(errno));
	return woken;
}

/* Collects wakes until @until_ns or until @stop_at sockets are woken. */
static long collect(int ep, uint64_t until_ns, long woken, long stop_at,
		    unsigned long *rounds)
{
	struct epoll_event ev[256];

	while (woken < stop_at) {
		uint64_t now = tap_now_ns();
		int n;

		if (now >= until_ns)
			break;
		n = epoll_wait(ep, ev, 256,
			       (int)((until_ns - now + 999999) / 1000000));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tap_bail_out("epoll_wait: %s", strerror(errno));
		}
		if (n > 0)
			(*rounds)++;
		woken += take_events(ep, ev, n, tap_now_ns());
	}
	return woken;
}

int main(int argc, char **argv)
{
	unsigned long rounds = 0;
	long connect_errors = 0, woken, at_once, send_errors = 0, so_errors = 0;
	int first_so_error = 0;
	long long listed[LIST_MAX];
	long nlisted = 0, i;
	int first_errno = 0, first_send_errno = 0;
	uint64_t t_setup, ready_ns, first = 0, last = 0, settle_start;
	char byte = 'w';
	int ep;

	parse_args(argc, argv);
	tap_init();
	tap_diag(PROG " family=%d peer=%s count=%ld distinct=%d expect=%ld",
		 opt.family == AF_INET ? 4 : 6, opt.peer, opt.count,
		 opt.distinct, opt.expect);
	raise_nofile();
	w = calloc(opt.count, sizeof(*w));
	if (!w)
		tap_bail_out("out of memory for %ld sockets", opt.count);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		tap_bail_out("epoll_create1: %s", strerror(errno));

	t_setup = tap_now_ns();
	for (i = 0; i < opt.count; i++) {
		struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = i };
		struct sockaddr_storage ss;
		socklen_t len = sockaddr_nth(opt.family, opt.peer, opt.port,
					     opt.distinct ? i : 0, &ss);

		w[i].fd = socket(opt.family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (w[i].fd < 0)
			tap_bail_out("socket %ld: %s", i, strerror(errno));
		if (connect(w[i].fd, (struct sockaddr *)&ss, len) < 0) {
			if (!connect_errors++)
				first_errno = errno;
		}
		/* ep_insert() polls the socket once: that is its registration */
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w[i].fd, &ev) < 0)
			tap_bail_out("epoll_ctl %ld: %s", i, strerror(errno));
	}
	ready_ns = tap_now_ns();
	tap_result(connect_errors == 0, "connect");
	tap_yaml_begin();
	tap_yaml_int("sockets", opt.count);
	tap_yaml_int("peers", opt.distinct ? opt.count : 1);
	tap_yaml_int("connect_errors", connect_errors);
	tap_yaml_str("first_errno", err_str(first_errno));
	tap_yaml_double("setup_ms", tap_ns_to_ms(ready_ns - t_setup));
	tap_yaml_uint("ready_ns", ready_ns);
	tap_yaml_end();

	/* what poll() says before any SA can exist for most of them */
	at_once = drain_ready(ep);
	tap_ok("writable at once");
	tap_yaml_begin();
	tap_yaml_int("writable", at_once);
	tap_yaml_end();

	woken = collect(ep, ready_ns + opt.timeout_ms * 1000000ull, at_once,
			opt.expect, &rounds);
	settle_start = tap_now_ns();
	woken = collect(ep, settle_start + opt.settle_ms * 1000000ull, woken,
			opt.count, &rounds);

	for (i = 0; i < opt.count; i++) {
		uint64_t t = w[i].woken_ns;

		if (!t)
			continue;
		if (!first || t < first)
			first = t;
		if (t > last)
			last = t;
		if (nlisted < LIST_MAX)
			listed[nlisted++] = i;
		/* a failed acquire wakes its sockets with their error set */
		{
			socklen_t len = sizeof(int);
			int e = 0;

			getsockopt(w[i].fd, SOL_SOCKET, SO_ERROR, &e, &len);
			if (e && !so_errors++)
				first_so_error = e;
		}
		if (send(w[i].fd, &byte, 1, 0) < 0) {
			w[i].send_errno = errno;
			if (!send_errors++)
				first_send_errno = errno;
		}
	}

	tap_result(woken >= opt.expect, "woken");
	tap_yaml_begin();
	tap_yaml_int("woken", woken);
	tap_yaml_int("after_wait", woken - at_once);
	tap_yaml_int("epoll_rounds", rounds);
	tap_yaml_uint("first_wake_ns", first);
	tap_yaml_uint("last_wake_ns", last);
	tap_yaml_uint("settle_start_ns", settle_start);
	tap_yaml_int_seq("woken_index", listed, nlisted);
	tap_yaml_int("so_errors", so_errors);
	tap_yaml_str("first_so_error", err_str(first_so_error));
	tap_yaml_end();

	tap_result(send_errors == 0, "send after wake");
	tap_yaml_begin();
	tap_yaml_int("send_errors", send_errors);
	tap_yaml_str("first_errno", err_str(first_send_errno));
	tap_yaml_end();

	tap_ok("summary");
	tap_yaml_begin();
	tap_yaml_uint("probe_start_ns", tap_st.start_ns);
	tap_yaml_uint("probe_end_ns", tap_now_ns());
	tap_yaml_end();
	tap_plan_end();
	for (i = 0; i < opt.count; i++)
		close(w[i].fd);
	return 0;
}
