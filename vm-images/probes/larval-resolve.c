// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-resolve - one DNS query through glibc's own resolver, print TAP
 *
 * glibc's stub resolver (res_send.c, send_dg) opens a non-blocking UDP
 * socket, connect()s it, waits in poll() for POLLOUT, sends, and waits for
 * the answer for RES_TIMEOUT seconds before it sends again.  That code is
 * why the series keeps a non-blocking datagram connect() at 0 and tells
 * the truth through POLLOUT instead (sa-resolution.md, "Socket calls"):
 * this program runs it unchanged against a name server behind an IPsec
 * policy whose SA does not exist yet.
 *
 * The "name server" is the echo peer: it returns the query as it came, and
 * the resolver takes that as an answer without records (NO_DATA), which
 * is enough to time the round trip.  The query is reported the way
 * larval-probe reports a datagram ("send 1", "recv", "summary"), so the
 * harness judges both alike.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG		"larval-resolve"
#include "guest.h"
#include "tap.h"

static struct {
	const char *server;
	int port;
	int timeout_s;
	int attempts;
	const char *name;
} opt = {
	.port = 53,
	.timeout_s = 2,
	.attempts = 2,
	.name = "peer.larval.test",
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --server IPV4 [--port P] [--timeout-s T] [--attempts N]\n"
"                      [--name NAME]\n"
"\n"
"Ask glibc's resolver (res_nquery) for NAME's A record at IPV4:P, with\n"
"RES_TIMEOUT T s (default 2) and N attempts (default 2); print TAP 14.\n"
"Test points: send 1 (the query: duration, h_errno), recv, summary.\n"
"Exit 0 when the query was made, 1 on internal failure, 2 on bad\n"
"arguments.\n");
}

static const char *h_errno_name(int e)
{
	switch (e) {
	case 0: return "";
	case HOST_NOT_FOUND: return "HOST_NOT_FOUND";
	case TRY_AGAIN: return "TRY_AGAIN";
	case NO_RECOVERY: return "NO_RECOVERY";
	case NO_DATA: return "NO_DATA";
	default: return "NETDB_INTERNAL";
	}
}

static void parse_args(int argc, char **argv)
{
	enum { O_SERVER = 1, O_PORT, O_TIMEOUT, O_ATTEMPTS, O_NAME, O_HELP };
	static const struct option lo[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "port", required_argument, NULL, O_PORT },
		{ "timeout-s", required_argument, NULL, O_TIMEOUT },
		{ "attempts", required_argument, NULL, O_ATTEMPTS },
		{ "name", required_argument, NULL, O_NAME },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_SERVER: opt.server = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_TIMEOUT:
			opt.timeout_s = parse_num("--timeout-s", optarg, 1, 30);
			break;
		case O_ATTEMPTS:
			opt.attempts = parse_num("--attempts", optarg, 1, 5);
			break;
		case O_NAME: opt.name = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.server)
		die_usage("--server is required");
}

int main(int argc, char **argv)
{
	unsigned char answer[NS_PACKETSZ];
	struct __res_state rs;
	struct in_addr addr;
	uint64_t t1, t2;
	int n;

	parse_args(argc, argv);
	if (inet_pton(AF_INET, opt.server, &addr) != 1)
		die_usage("--server: '%s' is not an IPv4 address", opt.server);
	tap_init();
	tap_diag(PROG " server=%s port=%d timeout_s=%d attempts=%d name=%s",
		 opt.server, opt.port, opt.timeout_s, opt.attempts, opt.name);

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs))
		tap_bail_out("res_ninit failed");
	/* one server, ours; no /etc/resolv.conf in the guest decides */
	rs.nscount = 1;
	rs.nsaddr_list[0].sin_family = AF_INET;
	rs.nsaddr_list[0].sin_addr = addr;
	rs.nsaddr_list[0].sin_port = htons(opt.port);
	rs.retrans = opt.timeout_s;
	rs.retry = opt.attempts;

	t1 = tap_now_ns();
	n = res_nquery(&rs, opt.name, ns_c_in, ns_t_a, answer, sizeof(answer));
	t2 = tap_now_ns();

	/* NO_DATA is the echo coming back: the query went there and back */
	bool answered = n >= 0 || rs.res_h_errno == NO_DATA;

	tap_ok("send 1");
	tap_yaml_begin();
	tap_yaml_int("ret", n);
	tap_yaml_str("errno_name", answered ? "" : h_errno_name(rs.res_h_errno));
	tap_yaml_str("h_errno", h_errno_name(rs.res_h_errno));
	tap_yaml_double("duration_ms", tap_ns_to_ms(t2 - t1));
	tap_yaml_end();

	tap_ok("recv");
	tap_yaml_begin();
	tap_yaml_int("sent", 1);
	tap_yaml_int("received", answered);
	tap_yaml_int("lost", !answered);
	if (answered)
		tap_yaml_double("first_reply_ms", tap_ns_to_ms(t2 - tap_st.start_ns));
	else
		tap_yaml_str("first_reply_ms", NULL);
	tap_yaml_uint("probe_start_ns", tap_st.start_ns);
	tap_yaml_end();

	tap_ok("summary");
	tap_yaml_begin();
	tap_yaml_double("total_ms", tap_ns_to_ms(t2 - tap_st.start_ns));
	tap_yaml_uint("probe_start_ns", tap_st.start_ns);
	tap_yaml_uint("probe_end_ns", t2);
	tap_yaml_end();
	tap_plan_end();
	res_nclose(&rs);
	return 0;
}
