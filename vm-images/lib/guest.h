/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * guest.h - errors, event log, signals and arguments for larval's guest
 *	     programs
 *
 * Header only, like tap.h: every function is static inline and the one
 * piece of state is a static variable, so each guest program (one .c file,
 * one binary) gets its own copy and nothing needs linking.
 *
 * Define _GNU_SOURCE before any include (sigabbrev_np() needs it) and PROG,
 * the program's name, before this one: every message on stderr starts with
 * "PROG: ", so a line in a harness log says which program wrote it.
 *
 *	#define _GNU_SOURCE
 *	...
 *	#define PROG "larval-echo"
 *	#include "guest.h"
 *
 * Errors (neither returns)
 *
 *   die_usage(fmt, ...)     "PROG: text" and "(try PROG --help)" on stderr,
 *                           exit 2: the caller got something wrong, be it
 *                           an argument or a file the arguments name.
 *   die(fmt, ...)           "PROG: text" on stderr, exit 1: the program
 *                           itself failed.
 *
 * Event log (the key manager and the echo peer)
 *
 *   log_fp                  the log; NULL until log_open()
 *   log_open(path)          logs to path (truncated), or to stdout when
 *                           path is NULL; stdout and the log become line
 *                           buffered.  A path that cannot be opened is a
 *                           die_usage().
 *   log_at(ns, fmt, ...)    "<ns> text" as one line, flushed.  ns is a
 *                           tap_now_ns() stamp, so lines from every program
 *                           in the guest can be merged by time.
 *   log_ready(ns)           "READY <ns>" in the log and, when the log is a
 *                           file, on stdout as well: the harness waits for
 *                           it on whichever it reads.
 *   err_str(e)              errno_name(e), but "0" for 0, so "err=" fields
 *                           are never empty.
 *
 * Signals
 *
 *   signal_fd()             blocks SIGTERM, SIGINT and SIGHUP and returns a
 *                           non-blocking signalfd for them (die() if it
 *                           cannot): a poll loop then sees a signal as input
 *                           and can log and summarise before it exits 0.
 *   log_signal(fd)          reads one signal from that fd and logs it:
 *                           "<ns> SIGNAL TERM".
 *
 * Arguments (long options only, parsed with getopt_long())
 *
 *   next_opt(argc, argv, lo)    getopt_long(argc, argv, "", lo, NULL) that
 *                               never returns '?': an unknown option or a
 *                               missing value is a die_usage(), and so is a
 *                               non-option argument left when it would
 *                               return -1.
 *   parse_num(name, s, min, max)  s as a decimal long in min..max, or
 *                               die_usage("NAME: 'S' is not a number in
 *                               MIN..MAX").
 *   parse_u64(name, s)          s as a decimal unsigned 64-bit number (a
 *                               seed: every bit counts), or die_usage().
 *   parse_port(name, s)         parse_num(name, s, 1, 65535)
 *   parse_ip_proto(name, s)     parse_num(name, s, 1, 255), an IP protocol
 *                               number for raw sockets
 *   parse_family(s)             "4" or "6" as AF_INET or AF_INET6, or
 *                               die_usage().
 *
 * Addresses
 *
 *   sockaddr_nth(family, addr, port, n, ss)
 *                               ADDR + n (added to its low 32 bits) and
 *                               PORT in *ss, its length returned; ADDR
 *                               NULL is the wildcard.  An ADDR not of the
 *                               family is a die_usage(): the peers of a
 *                               wide policy are numbered from one address.
 *
 * Example
 *
 *	while ((c = next_opt(argc, argv, lo)) != -1) {
 *		switch (c) {
 *		case O_COUNT:
 *			opt.count = parse_num("--count", optarg, 0, 1000);
 *			break;
 *		...
 *		}
 *	}
 *	log_open(opt.log_path);
 *	sig_fd = signal_fd();
 *	log_ready(tap_now_ns());
 */
#ifndef LARVAL_GUEST_H
#define LARVAL_GUEST_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before the first include"
#endif
#ifndef PROG
#error "define PROG, the program's name, before including guest.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"

static FILE *log_fp __attribute__((unused));

/* die_usage() and die() differ only in what ends the message and the code. */
static inline void guest_vwarn(const char *tail, const char *fmt, va_list ap)
{
	fprintf(stderr, PROG ": ");
	vfprintf(stderr, fmt, ap);
	fputs(tail, stderr);
}

static inline __attribute__((noreturn, format(printf, 1, 2)))
void die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	guest_vwarn("\n(try " PROG " --help)\n", fmt, ap);
	va_end(ap);
	exit(2);
}

static inline __attribute__((noreturn, format(printf, 1, 2)))
void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	guest_vwarn("\n", fmt, ap);
	va_end(ap);
	exit(1);
}

static inline __attribute__((format(printf, 2, 3)))
void log_at(uint64_t ns, const char *fmt, ...)
{
	va_list ap;

	fprintf(log_fp, "%llu ", (unsigned long long)ns);
	va_start(ap, fmt);
	vfprintf(log_fp, fmt, ap);
	va_end(ap);
	fputc('\n', log_fp);
	fflush(log_fp);
}

static inline void log_open(const char *path)
{
	log_fp = stdout;
	if (path) {
		log_fp = fopen(path, "w");
		if (!log_fp)
			die_usage("cannot open log %s: %s", path,
				  strerror(errno));
	}
	/* Explicit: under the harness both are pipes or files. */
	setvbuf(log_fp, NULL, _IOLBF, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static inline void log_ready(uint64_t ns)
{
	fprintf(log_fp, "READY %llu\n", (unsigned long long)ns);
	fflush(log_fp);
	if (log_fp != stdout) {
		printf("READY %llu\n", (unsigned long long)ns);
		fflush(stdout);
	}
}

static inline const char *err_str(int e)
{
	return e ? errno_name(e) : "0";
}

static inline int signal_fd(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked, or the default action would kill us before we can log. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask: %s", strerror(errno));
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		die("signalfd: %s", strerror(errno));
	return fd;
}

static inline void log_signal(int fd)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_at(tap_now_ns(), "SIGNAL %s", sigabbrev_np(si.ssi_signo));
}

static inline int next_opt(int argc, char **argv, const struct option *lo)
{
	int c;

	/* getopt's own complaint would neither say --help nor exit 2. */
	opterr = 0;
	c = getopt_long(argc, argv, "", lo, NULL);
	if (c == '?')
		die_usage("unknown option or missing value: %s",
			  argv[optind - 1]);
	if (c == -1 && optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	return c;
}

static inline long parse_num(const char *name, const char *s, long min,
			     long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || errno || *end || v < min || v > max)
		die_usage("%s: '%s' is not a number in %ld..%ld", name, s, min,
			  max);
	return v;
}

static inline unsigned long long parse_u64(const char *name, const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	/* strtoull() takes a sign and wraps it: refused */
	if (!*s || *end || errno || *s == '-')
		die_usage("%s: '%s' is not a number", name, s);
	return v;
}

/* The echo peer and the probe must accept the same ports and protocols. */
static inline int parse_port(const char *name, const char *s)
{
	return parse_num(name, s, 1, 65535);
}

static inline int parse_ip_proto(const char *name, const char *s)
{
	return parse_num(name, s, 1, 255);
}

static inline int parse_family(const char *s)
{
	if (!strcmp(s, "4"))
		return AF_INET;
	if (!strcmp(s, "6"))
		return AF_INET6;
	die_usage("--family must be 4 or 6");
}

static inline socklen_t sockaddr_nth(int family, const char *addr, int port,
				     uint32_t n, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (addr && inet_pton(AF_INET, addr, &a->sin_addr) != 1)
			die_usage("'%s' is not an IPv4 address", addr);
		a->sin_addr.s_addr = htonl(ntohl(a->sin_addr.s_addr) + n);
		return sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		uint32_t low;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (addr && inet_pton(AF_INET6, addr, &a->sin6_addr) != 1)
			die_usage("'%s' is not an IPv6 address", addr);
		memcpy(&low, &a->sin6_addr.s6_addr[12], 4);
		low = htonl(ntohl(low) + n);
		memcpy(&a->sin6_addr.s6_addr[12], &low, 4);
		return sizeof(*a);
	}
}

/*
 * The series' per-socket option (kernel-patches/, IP_XFRM_RESOLVE in
 * include/uapi/linux/in.h): a kernel without it says ENOPROTOOPT.
 */
#ifndef IP_XFRM_RESOLVE
#define IP_XFRM_RESOLVE		53
#endif
#ifndef IPV6_XFRM_RESOLVE
#define IPV6_XFRM_RESOLVE	79
#endif
#define XFRM_RESOLVE_OFF	1
#define XFRM_RESOLVE_ON		2
/* and a datagram connect() waits for the SA (EINPROGRESS if non-blocking) */
#define XFRM_RESOLVE_STRICT	3

#endif /* LARVAL_GUEST_H */
