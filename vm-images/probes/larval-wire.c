// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-wire - turn a device's GRO or TSO on or off (ethtool -K, which
 *		 the guest does not have)
 *
 * What it is for: a veth pair delivers packets sent from several CPUs in
 * whatever order the receiving CPUs' backlogs get to them, so a packet the
 * sender's kernel sent first can arrive second.  That is the test rig's
 * reordering, not the kernel's, and it hides the one larval-stress looks
 * for.  With GRO on at the receiving end veth hands every packet to one
 * NAPI ring instead, in the order the sending end transmitted them, and
 * with TSO off at the sending end every packet is allowed on that ring
 * (veth_skb_is_eligible_for_gro()).  The wire is then FIFO.
 *
 * Runs in the namespace of the device.  Prints the feature's value after
 * the change ("DEV gro on"); exit 0, 1 when the kernel refuses, 2 on bad
 * arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG		"larval-wire"
#include "guest.h"

/* The legacy one-feature commands: all this needs, and stable uapi. */
static const struct feature {
	const char *name;
	unsigned int get, set;
} features[] = {
	{ "gro", ETHTOOL_GGRO, ETHTOOL_SGRO },
	{ "tso", ETHTOOL_GTSO, ETHTOOL_STSO },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --dev DEV [--gro on|off] [--tso on|off]\n"
"\n"
"Set DEV's GRO and TSO (ethtool -K DEV gro on tso off), then print each\n"
"one asked for as it is now.\n");
}

static int ethtool(int fd, const char *dev, unsigned int cmd, unsigned int *v)
{
	struct ethtool_value ev = { .cmd = cmd, .data = *v };
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	ifr.ifr_data = (void *)&ev;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		return errno;
	*v = ev.data;
	return 0;
}

static bool parse_on_off(const char *name, const char *s)
{
	if (!strcmp(s, "on"))
		return true;
	if (!strcmp(s, "off"))
		return false;
	die_usage("--%s must be on or off", name);
}

int main(int argc, char **argv)
{
	enum { O_DEV = 1, O_GRO, O_TSO, O_HELP };
	static const struct option lo[] = {
		{ "dev", required_argument, NULL, O_DEV },
		{ "gro", required_argument, NULL, O_GRO },
		{ "tso", required_argument, NULL, O_TSO },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int want[2] = { -1, -1 };	/* per feature: -1 leave, 0 off, 1 on */
	const char *dev = NULL;
	unsigned int i, v;
	int c, fd, err;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_DEV: dev = optarg; break;
		case O_GRO: case O_TSO:
			want[c - O_GRO] = parse_on_off(features[c - O_GRO].name,
						       optarg);
			break;
		case O_HELP: usage(stdout); return 0;
		}
	}
	if (!dev || strlen(dev) >= IFNAMSIZ)
		die_usage("--dev DEV is required");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	for (i = 0; i < 2; i++) {
		if (want[i] < 0)
			continue;
		v = want[i];
		err = ethtool(fd, dev, features[i].set, &v);
		if (!err)
			err = ethtool(fd, dev, features[i].get, &v);
		if (err)
			die("%s %s %s: %s", dev, features[i].name,
			    want[i] ? "on" : "off", strerror(err));
		printf("%s %s %s\n", dev, features[i].name, v ? "on" : "off");
		if ((int)!!v != want[i])
			die("%s kept %s %s", dev, features[i].name,
			    v ? "on" : "off");
	}
	close(fd);
	return 0;
}
