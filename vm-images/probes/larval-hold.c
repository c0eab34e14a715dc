// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-hold - make acquires pend and packets wait on them, print TAP
 *
 * The memory benchmark's load: from one unconnected non-blocking UDP
 * socket, --per-peer datagrams to each of --peers peers (ADDR, ADDR + 1,
 * ...), each its own sendto().  Behind a wide policy whose key manager
 * never answers, every peer is an acquire of its own, and with the
 * series' xfrm_resolve=1 each datagram is held on its acquire (an
 * unconnected non-blocking sendto() is held, not refused).  The harness
 * reads the kernel's memory before and after.
 *
 * Held datagrams stay charged to the socket's send buffer until they are
 * released or dropped, so the buffer is raised to what all of them need,
 * and the sender pauses now and then so that the key manager reads the
 * ACQUIREs before its socket overflows (an ACQUIRE nobody took creates no
 * acquire state).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG		"larval-hold"
#include "guest.h"
#include "tap.h"

#define MAX_PEERS	100000
#define MAX_PER_PEER	100000
#define MAX_SIZE	1400

static struct {
	int family;
	const char *peer;
	int port;
	long peers;
	long per_peer;
	long size;
	long batch;
	long pause_us;
} opt = {
	.port = 7000,
	.peers = 1,
	.per_peer = 1,
	.size = 64,
	.batch = 256,
	.pause_us = 5000,
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --family 4|6 --peer ADDR [options]\n"
"\n"
"Send datagrams that wait for SAs from one non-blocking unconnected UDP\n"
"socket; print TAP 14.\n"
"\n"
"  --peers N        peers ADDR .. ADDR + N - 1 (default 1)\n"
"  --per-peer K     datagrams to each peer (default 1)\n"
"  --size BYTES     payload of each datagram, 1..%d (default 64)\n"
"  --port P         UDP port of the peers (default 7000)\n"
"  --batch B        pause after every B datagrams (default 256) ...\n"
"  --pause-us U     ... for U microseconds (default 5000)\n"
"\n"
"Exit 0 when every call was made, 1 on internal failure, 2 on bad\n"
"arguments.\n",
		MAX_SIZE);
}

static void parse_args(int argc, char **argv)
{
	enum { O_FAMILY = 1, O_PEER, O_PORT, O_PEERS, O_PER_PEER, O_SIZE,
	       O_BATCH, O_PAUSE, O_HELP };
	static const struct option lo[] = {
		{ "family", required_argument, NULL, O_FAMILY },
		{ "peer", required_argument, NULL, O_PEER },
		{ "port", required_argument, NULL, O_PORT },
		{ "peers", required_argument, NULL, O_PEERS },
		{ "per-peer", required_argument, NULL, O_PER_PEER },
		{ "size", required_argument, NULL, O_SIZE },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "pause-us", required_argument, NULL, O_PAUSE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_FAMILY: opt.family = parse_family(optarg); break;
		case O_PEER: opt.peer = optarg; break;
		case O_PORT: opt.port = parse_port("--port", optarg); break;
		case O_PEERS:
			opt.peers = parse_num("--peers", optarg, 1, MAX_PEERS);
			break;
		case O_PER_PEER:
			opt.per_peer = parse_num("--per-peer", optarg, 1,
						 MAX_PER_PEER);
			break;
		case O_SIZE:
			opt.size = parse_num("--size", optarg, 1, MAX_SIZE);
			break;
		case O_BATCH:
			opt.batch = parse_num("--batch", optarg, 1, MAX_PEERS);
			break;
		case O_PAUSE:
			opt.pause_us = parse_num("--pause-us", optarg, 0,
						 1000000);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.family || !opt.peer)
		die_usage("--family and --peer are required");
}

int main(int argc, char **argv)
{
	static char payload[MAX_SIZE];
	unsigned long sent = 0, errors = 0;
	int first_errno = 0, fd, bytes;
	uint64_t start, end;
	long i, k;

	parse_args(argc, argv);
	tap_init();
	tap_diag(PROG " family=%d peer=%s peers=%ld per_peer=%ld size=%ld",
		 opt.family == AF_INET ? 4 : 6, opt.peer, opt.peers,
		 opt.per_peer, opt.size);
	memset(payload, 'h', sizeof(payload));

	fd = socket(opt.family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		tap_bail_out("socket: %s", strerror(errno));
	/* a held skb's truesize is ~1 KiB: 4 KiB each leaves room */
	bytes = (int)((opt.peers * opt.per_peer * 4096 > 1 << 30) ?
		      1 << 30 : opt.peers * opt.per_peer * 4096);
	if (bytes < 1 << 20)
		bytes = 1 << 20;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes,
		       sizeof(bytes)) < 0)
		tap_bail_out("SO_SNDBUFFORCE %d: %s", bytes, strerror(errno));

	start = tap_now_ns();
	for (i = 0; i < opt.peers; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sockaddr_nth(opt.family, opt.peer,
					     opt.port, i, &ss);

		for (k = 0; k < opt.per_peer; k++) {
			if (sendto(fd, payload, opt.size, 0,
				   (struct sockaddr *)&ss, len) == opt.size)
				sent++;
			else if (!errors++)
				first_errno = errno;
			if ((sent + errors) % opt.batch == 0 && opt.pause_us)
				usleep(opt.pause_us);
		}
	}
	end = tap_now_ns();

	tap_result(errors == 0, "send");
	tap_yaml_begin();
	tap_yaml_int("peers", opt.peers);
	tap_yaml_int("per_peer", opt.per_peer);
	tap_yaml_int("size", opt.size);
	tap_yaml_int("sent", sent);
	tap_yaml_int("errors", errors);
	tap_yaml_str("first_errno", err_str(first_errno));
	tap_yaml_double("duration_ms", tap_ns_to_ms(end - start));
	tap_yaml_end();
	tap_plan_end();
	/* the held datagrams outlive the socket: they hold its memory, not the fd */
	close(fd);
	return 0;
}
