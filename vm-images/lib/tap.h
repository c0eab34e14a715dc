/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tap.h - TAP 14 output and small shared helpers for larval's guest programs
 *
 * Header only: every function is static inline and all state lives in one
 * static struct, so each guest program (one .c file, one binary) gets its
 * own copy and nothing needs linking.
 *
 * Output goes to stdout.  Every call that emits text ends a line and flushes,
 * so a program killed at any moment leaves only complete lines behind, and
 * stdout may be a pipe or a file without changing what is seen.
 *
 * Starting and planning
 *
 *   tap_init()              prints "TAP version 14", makes stdout line
 *                           buffered and starts the clock used by
 *                           tap_ms_since_start().  Call it first.
 *   tap_plan(n)             prints "1..n".  Call before the first test point
 *                           when the count is known in advance ...
 *   tap_plan_end()          ... or at the very end: prints "1..<points so
 *                           far>" (TAP 14 allows the plan after the points).
 *
 * Test points (numbered automatically, the description is printf-style;
 * '#' and '\' in it are escaped, newlines become spaces, 511 bytes at most)
 *
 *   tap_ok(fmt, ...)              "ok N - desc"
 *   tap_not_ok(fmt, ...)          "not ok N - desc"
 *   tap_result(pass, fmt, ...)    either of the two above
 *   tap_skip(reason, fmt, ...)    "ok N - desc # SKIP reason"
 *
 * YAML diagnostics attached to the test point just printed
 *
 *   tap_yaml_begin()              "  ---"
 *   tap_yaml_int(key, long long)  "  key: 42"
 *   tap_yaml_uint(key, u64)       "  key: 42" (timestamps in ns)
 *   tap_yaml_double(key, v)       "  key: 1.234" (3 decimals; .nan/.inf)
 *   tap_yaml_str(key, s)          "  key: \"...\"" always double quoted,
 *                                 with quotes, backslashes and control or
 *                                 non-ASCII bytes escaped; NULL gives ~
 *   tap_yaml_bool(key, b)         "  key: true" / "  key: false"
 *   tap_yaml_int_seq(key, a, n)   "  key: [1, 2, 3]"   (flow sequence)
 *   tap_yaml_double_seq(key, a, n) "  key: [0.512, 1.020]"
 *   tap_yaml_end()                "  ..."
 *
 *   Keys are written as given: use plain identifiers ([a-z0-9_]).
 *
 * Other output
 *
 *   tap_diag(fmt, ...)      "# text", a comment the parser ignores
 *   tap_bail_out(fmt, ...)  "Bail out! reason", then exit(1).  Use it when
 *                           the program cannot go on; the stream stays valid
 *                           without a plan.
 *
 * Clock
 *
 *   tap_now_ns()            CLOCK_MONOTONIC in ns.  The clock is shared by
 *                           every network namespace in the guest, so stamps
 *                           from the key manager, the echo peer and the
 *                           probe can be compared directly.
 *   tap_ms_since_start()    ms (double) since tap_init() or tap_clock_start()
 *   tap_clock_start()       starts the clock without printing anything, for
 *                           programs that use the helpers but not TAP
 *   tap_ns_to_ms(ns)        ns delta as double ms
 *
 * Errors
 *
 *   errno_name(e)           "EAGAIN", "EINPROGRESS", ... for e > 0; "" for
 *                           0; "E?<n>" for numbers it does not know.  The
 *                           string is static (not thread safe for unknown
 *                           values, which use a shared buffer).
 *
 * Example
 *
 *	tap_init();
 *	tap_ok("connect");
 *	tap_yaml_begin();
 *	tap_yaml_int("ret", -1);
 *	tap_yaml_str("errno_name", errno_name(EINPROGRESS));
 *	tap_yaml_end();
 *	tap_plan_end();
 *
 * gives
 *
 *	TAP version 14
 *	ok 1 - connect
 *	  ---
 *	  ret: -1
 *	  errno_name: "EINPROGRESS"
 *	  ...
 *	1..1
 */
#ifndef LARVAL_TAP_H
#define LARVAL_TAP_H

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static struct {
	unsigned int points;
	uint64_t start_ns;
} tap_st __attribute__((unused));

static inline uint64_t tap_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double tap_ns_to_ms(int64_t ns)
{
	return (double)ns / 1e6;
}

static inline void tap_clock_start(void)
{
	tap_st.start_ns = tap_now_ns();
}

static inline double tap_ms_since_start(void)
{
	return tap_ns_to_ms((int64_t)(tap_now_ns() - tap_st.start_ns));
}

static inline void tap_init(void)
{
	/* Explicit: under the harness stdout is a pipe or a file. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	tap_clock_start();
	printf("TAP version 14\n");
	fflush(stdout);
}

static inline void tap_plan(unsigned int n)
{
	printf("1..%u\n", n);
	fflush(stdout);
}

static inline void tap_plan_end(void)
{
	tap_plan(tap_st.points);
}

/* TAP reads '#' in a description as the start of a directive: escape it. */
static inline void tap_put_desc(const char *fmt, va_list ap)
{
	char buf[512];
	const char *p;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (p = buf; *p; p++) {
		if (*p == '#' || *p == '\\')
			putchar('\\');
		putchar(*p == '\n' ? ' ' : *p);
	}
}

static inline void tap_vpoint(bool pass, const char *skip, const char *fmt,
			      va_list ap)
{
	tap_st.points++;
	printf("%sok %u - ", pass ? "" : "not ", tap_st.points);
	tap_put_desc(fmt, ap);
	if (skip)
		printf(" # SKIP %s", skip);
	putchar('\n');
	fflush(stdout);
}

static inline __attribute__((format(printf, 1, 2)))
void tap_ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vpoint(true, NULL, fmt, ap);
	va_end(ap);
}

static inline __attribute__((format(printf, 1, 2)))
void tap_not_ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vpoint(false, NULL, fmt, ap);
	va_end(ap);
}

static inline __attribute__((format(printf, 2, 3)))
void tap_result(bool pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vpoint(pass, NULL, fmt, ap);
	va_end(ap);
}

static inline __attribute__((format(printf, 2, 3)))
void tap_skip(const char *reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vpoint(true, reason ? reason : "", fmt, ap);
	va_end(ap);
}

static inline __attribute__((format(printf, 1, 2)))
void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static inline __attribute__((noreturn, format(printf, 1, 2)))
void tap_bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(1);
}

static inline void tap_yaml_begin(void)
{
	printf("  ---\n");
	fflush(stdout);
}

static inline void tap_yaml_end(void)
{
	printf("  ...\n");
	fflush(stdout);
}

static inline void tap_yaml_int(const char *key, long long v)
{
	printf("  %s: %lld\n", key, v);
	fflush(stdout);
}

static inline void tap_yaml_uint(const char *key, uint64_t v)
{
	printf("  %s: %llu\n", key, (unsigned long long)v);
	fflush(stdout);
}

/* YAML spells the non-finite values its own way; printf's "nan" is a string. */
static inline void tap_yaml_put_double(double v)
{
	if (isnan(v))
		printf(".nan");
	else if (isinf(v))
		printf(v < 0 ? "-.inf" : ".inf");
	else
		printf("%.3f", v);
}

static inline void tap_yaml_double(const char *key, double v)
{
	printf("  %s: ", key);
	tap_yaml_put_double(v);
	putchar('\n');
	fflush(stdout);
}

static inline void tap_yaml_bool(const char *key, bool v)
{
	printf("  %s: %s\n", key, v ? "true" : "false");
	fflush(stdout);
}

/*
 * Double quoted is the only YAML scalar style where every byte can be
 * written safely: escape what would end or bend the scalar, and anything
 * outside printable ASCII so the line stays one line.
 */
static inline void tap_yaml_str(const char *key, const char *s)
{
	const unsigned char *p;

	printf("  %s: ", key);
	if (!s) {
		printf("~\n");
		fflush(stdout);
		return;
	}
	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p == '\n')
			printf("\\n");
		else if (*p == '\t')
			printf("\\t");
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	printf("\"\n");
	fflush(stdout);
}

static inline void tap_yaml_int_seq(const char *key, const long long *a,
				    unsigned int n)
{
	unsigned int i;

	printf("  %s: [", key);
	for (i = 0; i < n; i++)
		printf("%s%lld", i ? ", " : "", a[i]);
	printf("]\n");
	fflush(stdout);
}

static inline void tap_yaml_double_seq(const char *key, const double *a,
				       unsigned int n)
{
	unsigned int i;

	printf("  %s: [", key);
	for (i = 0; i < n; i++) {
		if (i)
			printf(", ");
		tap_yaml_put_double(a[i]);
	}
	printf("]\n");
	fflush(stdout);
}

#define TAP_ERRNO_CASE(e) case e: return #e

static inline const char *errno_name(int e)
{
	static char unknown[16];

	/* EWOULDBLOCK and ENOTSUP are aliases on Linux, hence absent. */
	switch (e) {
	case 0: return "";
	TAP_ERRNO_CASE(EPERM);
	TAP_ERRNO_CASE(ENOENT);
	TAP_ERRNO_CASE(ESRCH);
	TAP_ERRNO_CASE(EINTR);
	TAP_ERRNO_CASE(EIO);
	TAP_ERRNO_CASE(EBADF);
	TAP_ERRNO_CASE(EAGAIN);
	TAP_ERRNO_CASE(ENOMEM);
	TAP_ERRNO_CASE(EACCES);
	TAP_ERRNO_CASE(EFAULT);
	TAP_ERRNO_CASE(EBUSY);
	TAP_ERRNO_CASE(EEXIST);
	TAP_ERRNO_CASE(ENODEV);
	TAP_ERRNO_CASE(EINVAL);
	TAP_ERRNO_CASE(ENFILE);
	TAP_ERRNO_CASE(EMFILE);
	TAP_ERRNO_CASE(ENOSPC);
	TAP_ERRNO_CASE(EPIPE);
	TAP_ERRNO_CASE(ERANGE);
	TAP_ERRNO_CASE(ENOSYS);
	TAP_ERRNO_CASE(ENOTSOCK);
	TAP_ERRNO_CASE(EDESTADDRREQ);
	TAP_ERRNO_CASE(EMSGSIZE);
	TAP_ERRNO_CASE(EPROTOTYPE);
	TAP_ERRNO_CASE(ENOPROTOOPT);
	TAP_ERRNO_CASE(EPROTONOSUPPORT);
	TAP_ERRNO_CASE(ESOCKTNOSUPPORT);
	TAP_ERRNO_CASE(EOPNOTSUPP);
	TAP_ERRNO_CASE(EAFNOSUPPORT);
	TAP_ERRNO_CASE(EADDRINUSE);
	TAP_ERRNO_CASE(EADDRNOTAVAIL);
	TAP_ERRNO_CASE(ENETDOWN);
	TAP_ERRNO_CASE(ENETUNREACH);
	TAP_ERRNO_CASE(ENETRESET);
	TAP_ERRNO_CASE(ECONNABORTED);
	TAP_ERRNO_CASE(ECONNRESET);
	TAP_ERRNO_CASE(ENOBUFS);
	TAP_ERRNO_CASE(EISCONN);
	TAP_ERRNO_CASE(ENOTCONN);
	TAP_ERRNO_CASE(ESHUTDOWN);
	TAP_ERRNO_CASE(ETIMEDOUT);
	TAP_ERRNO_CASE(ECONNREFUSED);
	TAP_ERRNO_CASE(EHOSTDOWN);
	TAP_ERRNO_CASE(EHOSTUNREACH);
	TAP_ERRNO_CASE(EALREADY);
	TAP_ERRNO_CASE(EINPROGRESS);
	TAP_ERRNO_CASE(ESTALE);
	TAP_ERRNO_CASE(EKEYEXPIRED);
	TAP_ERRNO_CASE(EKEYREJECTED);
	}
	snprintf(unknown, sizeof(unknown), "E?%d", e);
	return unknown;
}

#undef TAP_ERRNO_CASE

#endif /* LARVAL_TAP_H */
