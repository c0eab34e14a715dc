/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xfrm-nl.h - NETLINK_XFRM requests for larval's guest programs
 *
 * Header only, like tap.h: every function is static inline and the little
 * state there is (a sequence counter, a receive buffer) is static, so each
 * guest program (one .c file, one binary) gets its own copy and nothing
 * needs linking.
 *
 * Nothing here prints or exits: the programs that use it fail differently
 * (larval-km dies with a message on stderr, larval-fuzz bails out of its
 * TAP stream), so every function says what went wrong and the caller
 * decides.
 *
 *   xfrm_nl_open(cfg, fail)  a NETLINK_XFRM socket bound to the kernel,
 *                            with the receive buffer, extended acks and
 *                            multicast groups @cfg asks for; the
 *                            descriptor, or -1 with errno set and @fail
 *                            saying which step failed
 *   xfrm_nl_start(m, type, len)
 *                            zeroes @m, starts a message of @type whose
 *                            fixed part is @len bytes, returns that part
 *   xfrm_nl_put(n, max, type, data, len)
 *                            appends an attribute; -EMSGSIZE (and @n
 *                            unchanged) if it would pass @max bytes
 *   xfrm_nl_put_aead(n, max, name, key, key_len, icv_bits)
 *                            appends XFRMA_ALG_AEAD for algorithm @name
 *   xfrm_nl_attrs(h, len, &rem)
 *                            the first attribute after the fixed part
 *                            (@len bytes) of a received message, for
 *                            RTA_OK()/RTA_NEXT()
 *   xfrm_nl_attr_copy(rta, dst, len)
 *                            copies @len bytes of the attribute's payload
 *                            if it has that many
 *   xfrm_nl_send(fd, n)      sends @n to the kernel; 0 or an errno
 *   xfrm_nl_request(fd, n, wait_ms, reply, arg)
 *                            sends @n asking for an ack and waits for it,
 *                            at most @wait_ms; 0 or an errno (ETIMEDOUT)
 *   xfrm_nl_dump(fd, n, wait_ms, reply, arg)
 *                            the same for a dump (XFRM_MSG_GETSA, ...):
 *                            every entry goes to @reply, and it returns
 *                            at the end of the dump
 *
 * Example
 *
 *	union xfrm_nl_msg req;
 *	struct xfrm_usersa_flush *f;
 *
 *	f = xfrm_nl_start(&req, XFRM_MSG_FLUSHSA, sizeof(*f));
 *	f->proto = IPPROTO_ESP;
 *	err = xfrm_nl_request(fd, &req.n, 2000, NULL, NULL);
 */
#ifndef LARVAL_XFRM_NL_H
#define LARVAL_XFRM_NL_H

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"

/* A receive buffer larger than any datagram NETLINK_XFRM sends: none is cut. */
#define XFRM_NL_BUF	65536

/* What xfrm_nl_open() sets up besides the bound socket. */
struct xfrm_nl_cfg {
	int sock_flags;			/* e.g. SOCK_NONBLOCK; SOCK_RAW and
					 * SOCK_CLOEXEC are always set */
	int rcvbuf;			/* bytes; 0 keeps the default */
	bool ext_ack;			/* error strings in acks, request not
					 * echoed back (EXT_ACK + CAP_ACK) */
	const unsigned int *groups;	/* XFRMNLGRP_* to join */
	int ngroups;
};

/* Where xfrm_nl_open() failed, for the caller's message; errno says why. */
struct xfrm_nl_fail {
	const char *call;		/* "socket", "bind" or "join" */
	unsigned int group;		/* the group refused; 0 unless "join" */
};

static inline int xfrm_nl_open(const struct xfrm_nl_cfg *cfg,
			       struct xfrm_nl_fail *fail)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1;
	int fd, i, e;

	fail->call = "socket";
	fail->group = 0;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | cfg->sock_flags,
		    NETLINK_XFRM);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fail->call = "bind";
		goto err;
	}
	/*
	 * Best effort, like the receive buffer below: an old kernel without
	 * them still does the work, its acks just say less.
	 */
	if (cfg->ext_ack) {
		setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
		setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	}
	/*
	 * A burst of ACQUIREs must not overrun a socket whose owner is busy
	 * waiting for acks.  SO_RCVBUFFORCE passes rmem_max but needs
	 * CAP_NET_ADMIN; without it take what SO_RCVBUF allows.
	 */
	if (cfg->rcvbuf &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->rcvbuf,
		       sizeof(cfg->rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf,
			   sizeof(cfg->rcvbuf));
	for (i = 0; i < cfg->ngroups; i++) {
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
			       &cfg->groups[i], sizeof(cfg->groups[i])) < 0) {
			fail->call = "join";
			fail->group = cfg->groups[i];
			goto err;
		}
	}
	return fd;
err:
	/* The caller's message wants the errno of the call that failed. */
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* Room for any request the programs send: a fixed part and a few attributes. */
union xfrm_nl_msg {
	struct nlmsghdr n;
	char raw[1024];
};

/* Zeroes @m and starts a message of @type whose fixed part is @len bytes. */
static inline void *xfrm_nl_start(union xfrm_nl_msg *m, int type, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->n.nlmsg_type = type;
	m->n.nlmsg_len = NLMSG_LENGTH(len);
	return NLMSG_DATA(&m->n);
}

/*
 * Appends attribute @type to @n, a buffer of @max bytes.  Returns 0, or
 * -EMSGSIZE with @n unchanged: whether a request without the attribute is
 * still worth sending is the caller's call.
 */
static inline int xfrm_nl_put(struct nlmsghdr *n, size_t max, int type,
			      const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(n->nlmsg_len);
	struct rtattr *rta = (struct rtattr *)((char *)n + off);

	if (off + RTA_SPACE(len) > max)
		return -EMSGSIZE;
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	n->nlmsg_len = off + RTA_SPACE(len);
	return 0;
}

/* Longest key xfrm_nl_put_aead() takes: rfc4106 with AES-256 needs 36. */
#define XFRM_NL_KEY_MAX	64

/*
 * Appends an XFRMA_ALG_AEAD attribute: algorithm @name with the @key_len
 * byte @key and an ICV of @icv_bits.  The kernel wants the key right after
 * struct xfrm_algo_aead, in the same attribute, hence the copy.  Returns 0,
 * -EINVAL for a key longer than XFRM_NL_KEY_MAX, or -EMSGSIZE.
 */
static inline int xfrm_nl_put_aead(struct nlmsghdr *n, size_t max,
				   const char *name, const void *key,
				   size_t key_len, unsigned int icv_bits)
{
	struct {
		struct xfrm_algo_aead a;
		uint8_t key[XFRM_NL_KEY_MAX];
	} aead;

	if (key_len > sizeof(aead.key))
		return -EINVAL;
	memset(&aead, 0, sizeof(aead));
	snprintf(aead.a.alg_name, sizeof(aead.a.alg_name), "%s", name);
	aead.a.alg_key_len = key_len * 8;
	aead.a.alg_icv_len = icv_bits;
	memcpy(aead.key, key, key_len);
	return xfrm_nl_put(n, max, XFRMA_ALG_AEAD, &aead,
			   sizeof(aead.a) + key_len);
}

/*
 * The first attribute after the @len byte fixed part of @h (a struct
 * xfrm_user_acquire, a struct nlmsgerr, ...); *@rem gets what is left of
 * @h from there, for RTA_OK() and RTA_NEXT().
 */
static inline const struct rtattr *xfrm_nl_attrs(const struct nlmsghdr *h,
						 size_t len, int *rem)
{
	*rem = (int)h->nlmsg_len - (int)NLMSG_LENGTH(NLMSG_ALIGN(len));
	return (const struct rtattr *)((const char *)NLMSG_DATA(h) +
				       NLMSG_ALIGN(len));
}

/*
 * Copies the first @len bytes of @rta's payload to @dst.  A shorter
 * payload is left alone rather than read past: returns whether it copied.
 */
static inline bool xfrm_nl_attr_copy(const struct rtattr *rta, void *dst,
				     size_t len)
{
	if (RTA_PAYLOAD(rta) < len)
		return false;
	memcpy(dst, RTA_DATA(rta), len);
	return true;
}

/* Sends @n to the kernel as it is.  Returns 0 or an errno. */
static inline int xfrm_nl_send(int fd, const struct nlmsghdr *n)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (sendto(fd, n, n->nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return errno;
	return 0;
}

/* Called for each message answering a request, the ack last. */
typedef void (*xfrm_nl_reply_fn)(const struct nlmsghdr *h, void *arg);

/*
 * Sends @n on @fd as a request with an ack and waits for the ack, at most
 * @wait_ms: a kernel that never answers must not hang the caller.  Every
 * message carrying @n's sequence number, the ack included, is passed to
 * @reply if it is not NULL (ALLOCSPI answers with the SA before the ack;
 * the ack may hold an extended error).  Messages of earlier requests that
 * timed out are dropped.  Returns 0, the kernel's errno for the request,
 * ETIMEDOUT, or the errno of a failed send or receive.
 *
 * A dump (NLM_F_DUMP in @n's flags) is answered with its entries and
 * NLMSG_DONE instead of an ack, which ends the wait the same way.
 */
static inline int xfrm_nl_request(int fd, struct nlmsghdr *n,
				  unsigned int wait_ms, xfrm_nl_reply_fn reply,
				  void *arg)
{
	static char buf[XFRM_NL_BUF] __attribute__((aligned(8)));
	static uint32_t seq;
	uint64_t deadline;
	int err;

	n->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	n->nlmsg_seq = ++seq;
	err = xfrm_nl_send(fd, n);
	if (err)
		return err;
	deadline = tap_now_ns() + wait_ms * 1000000ull;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = tap_now_ns();
		struct nlmsghdr *h;
		ssize_t r;

		if (now >= deadline)
			return ETIMEDOUT;
		/* +1: never a 0 ms poll that spins out the last millisecond */
		if (poll(&p, 1, (deadline - now) / 1000000 + 1) <= 0)
			continue;
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_seq != n->nlmsg_seq)
				continue;
			if (reply)
				reply(h, arg);
			if (h->nlmsg_type == NLMSG_ERROR)
				return -((const struct nlmsgerr *)
					 NLMSG_DATA(h))->error;
			/* A dump's end carries its status, 0 or -errno. */
			if (h->nlmsg_type == NLMSG_DONE)
				return h->nlmsg_len <
				       NLMSG_LENGTH(sizeof(int)) ? 0 :
				       -*(const int *)NLMSG_DATA(h);
		}
	}
}

/* xfrm_nl_request() for a dump: each entry of it is passed to @reply. */
static inline int xfrm_nl_dump(int fd, struct nlmsghdr *n,
			       unsigned int wait_ms, xfrm_nl_reply_fn reply,
			       void *arg)
{
	n->nlmsg_flags |= NLM_F_DUMP;
	return xfrm_nl_request(fd, n, wait_ms, reply, arg);
}

#endif /* LARVAL_XFRM_NL_H */
