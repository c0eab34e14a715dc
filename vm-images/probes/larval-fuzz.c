// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-fuzz - random XFRM and socket operations across network
 * namespaces, seeded and bounded in time; print TAP
 *
 * Issues a random sequence of policy and SA additions and deletions
 * (flushes included), sysctl flips (net.core.xfrm_resolve, xfrm_acq_expires,
 * xfrm_larval_drop and the series' queue limits) and socket calls (socket,
 * connect, send, sendto, poll, recv, close; TCP, UDP, raw and ping; IPv4 and
 * IPv6; blocking with short timeouts and non-blocking) in the namespaces
 * named by --ns, plus short-lived namespaces that die with larval states
 * and held packets in them.  It is its own key manager too: it listens for
 * ACQUIREs in every namespace and answers some with NEWSA, some the way an
 * IKE daemon does (ALLOCSPI on the larval state, then UPDSA), deletes the
 * larval state of others, flushes, or ignores them.
 *
 * The kernel's own checkers (KASAN, lockdep, ...) judge the run; the one
 * thing checked here is that no call outlives its bound by more than
 * --overrun-ms: every blocking call has SO_SNDTIMEO/SO_RCVTIMEO and an
 * interval timer behind it, so a call that overruns is stuck in the kernel.
 *
 * Determinism: the sequence of operations is a function of --seed alone
 * (nothing it does depends on what the kernel answered).  What is done with
 * each ACQUIRE comes from a second stream of the same seed, in the order the
 * ACQUIREs arrive, which depends on timing.  --max-ops cuts the sequence
 * where a run that found something stopped.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG		"larval-fuzz"
#include "guest.h"
#include "rng.h"
#include "tap.h"
#include "xfrm-nl.h"

#define MAX_NS		4
#define MAX_PEERS	16
#define MAX_SOCKS	48
#define MAX_POLS	32
#define MAX_SAS		64
#define MAX_JOBS	64
#define MAX_CONNS	16
#define PORT		7000
#define RAW_PROTO	253
#define KEY_LEN		20
#define AEAD_NAME	"rfc4106(gcm(aes))"
#define ACK_WAIT_MS	2000
#define GUARD_MS	1500	/* interval timer behind every blocking call */
#define REQIDS		4
#define OVERRUNS_KEPT	8
#define RING		64	/* last operations, printed at the end */

/* ---- operation kinds ------------------------------------------------ */

/*
 * One entry per kind the summary counts.  Weighted kinds are what the main
 * loop picks from; the acquire kinds happen when an ACQUIRE arrives.
 */
#define KINDS(X)				\
	X(policy_add, 8)			\
	X(policy_del, 4)			\
	X(policy_flush, 1)			\
	X(state_add, 6)				\
	X(state_del, 3)				\
	X(state_flush, 1)			\
	X(sysctl, 4)				\
	X(socket, 10)				\
	X(connect, 14)				\
	X(send, 14)				\
	X(sendto, 10)				\
	X(poll, 10)				\
	X(recv, 4)				\
	X(close, 8)				\
	X(netns, 2)				\
	X(acquire, 0)				\
	X(acq_newsa, 0)				\
	X(acq_updsa, 0)				\
	X(acq_delete, 0)			\
	X(acq_flush, 0)				\
	X(acq_ignore, 0)			\
	X(expire, 0)

#define X_ENUM(name, w) K_##name,
enum kind { KINDS(X_ENUM) NKINDS };
#undef X_ENUM
#define X_NAME(name, w) #name,
static const char *const kind_name[NKINDS] = { KINDS(X_NAME) };
#undef X_NAME
#define X_WEIGHT(name, w) w,
static const unsigned int kind_weight[NKINDS] = { KINDS(X_WEIGHT) };
#undef X_WEIGHT

#define MAX_ERRNO	160

/*
 * Calls made, how many the kernel refused, and with which errno.  Shared
 * with the key manager process, which counts what it does here too.
 */
static struct counters {
	unsigned long ops[NKINDS];
	unsigned long fails[NKINDS];
	unsigned long errnos[NKINDS][MAX_ERRNO];
} *cnt;

static void bump(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void count(enum kind k, int err)
{
	bump(&cnt->ops[k]);
	if (!err)
		return;
	bump(&cnt->fails[k]);
	bump(&cnt->errnos[k][err > 0 && err < MAX_ERRNO ? err : 0]);
}

/* ---- options -------------------------------------------------------- */

struct addr {
	int family;
	xfrm_address_t a;
};

struct netns {
	const char *path;
	int fd;
	struct addr local[2];		/* [0] v4, [1] v6 */
	int nl_req;
	int nl_ev;
	int tcp_srv;
	int udp_srv;
	int conns[MAX_CONNS];
};

static struct {
	uint64_t seed;
	unsigned long seconds;
	unsigned long max_ops;
	unsigned long overrun_ms;
	const char *trace_path;
} opt = {
	.seconds = 60,
	.overrun_ms = 5000,
};

static struct netns ns[MAX_NS];
static int nns;
static int cur_ns = -1;
static struct addr peers[MAX_PEERS];
static int npeers;
static FILE *trace;

/* ---- PRNG (rng.h): one stream for the operations, one for ACQUIREs -- */

static struct rng op_rng, acq_rng;

/* ---- trace ---------------------------------------------------------- */

static char ring[RING][160];
static unsigned long nring;

/*
 * Each operation is one line: to --trace if given, and to a ring of the
 * last RING that the summary prints, so a run that went wrong says what it
 * was doing even without the file.
 */
static __attribute__((format(printf, 2, 3)))
void note(enum kind k, const char *fmt, ...)
{
	char *line = ring[nring++ % RING];
	int n;
	va_list ap;

	n = snprintf(line, sizeof(ring[0]), "%lu %.3f %s ", nring,
		     tap_ms_since_start(), kind_name[k]);
	if (n < 0 || (size_t)n >= sizeof(ring[0]))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(ring[0]) - n, fmt, ap);
	va_end(ap);
	if (trace) {
		fputs(line, trace);
		fputc('\n', trace);
	}
}

/* ---- bounded blocking calls ----------------------------------------- */

static struct {
	unsigned long count;
	char first[OVERRUNS_KEPT][128];
} overrun;

static void on_alarm(int sig)
{
	(void)sig;
}

static uint64_t guard_start(unsigned int ms)
{
	struct itimerval it = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
	return tap_now_ns();
}

/* Disarms the timer and records a call that outlived its bound. */
static void guard_end(uint64_t t0, unsigned int ms, enum kind k,
		      const char *what)
{
	struct itimerval off = { 0 };
	double took = tap_ns_to_ms(tap_now_ns() - t0);

	setitimer(ITIMER_REAL, &off, NULL);
	if (took <= ms + opt.overrun_ms)
		return;
	if (overrun.count < OVERRUNS_KEPT)
		snprintf(overrun.first[overrun.count], sizeof(overrun.first[0]),
			 "op %lu %s %s took %.0f ms (bound %u ms)", nring,
			 kind_name[k], what, took, ms);
	overrun.count++;
	tap_diag("OVERRUN op %lu %s %s took %.0f ms", nring, kind_name[k],
		 what, took);
}

/* Waits up to @ms for @pid, then kills it; false when even that did not reap it. */
static bool reap(pid_t pid, unsigned int ms, int *status)
{
	uint64_t t0 = tap_now_ns();

	while (waitpid(pid, status, WNOHANG) == 0) {
		if (tap_now_ns() - t0 > ms * 1000000ull) {
			kill(pid, SIGKILL);
			t0 = tap_now_ns();
			while (waitpid(pid, status, WNOHANG) == 0) {
				if (tap_now_ns() - t0 > opt.overrun_ms *
				    1000000ull)
					return false;
				usleep(2000);
			}
			return true;
		}
		usleep(2000);
	}
	return true;
}

/* ---- namespaces ----------------------------------------------------- */

static void enter_ns(int i)
{
	if (cur_ns == i)
		return;
	if (setns(ns[i].fd, CLONE_NEWNET) < 0)
		tap_bail_out("setns(%s): %s", ns[i].path, strerror(errno));
	cur_ns = i;
}

static bool parse_addr(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->a) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a->a) == 1)
		a->family = AF_INET6;
	return a->family != 0;
}

static const char *addr_str(const struct addr *a)
{
	static char buf[4][INET6_ADDRSTRLEN];
	static unsigned int next;
	char *b = buf[next++ % 4];

	if (!inet_ntop(a->family, &a->a, b, INET6_ADDRSTRLEN))
		snprintf(b, INET6_ADDRSTRLEN, "?");
	return b;
}

static int fidx(int family)
{
	return family == AF_INET6;
}

/* Any address the namespaces or the far peers have, of @family. */
static struct addr pick_dst(struct rng *r, int family)
{
	struct addr pool[MAX_NS + MAX_PEERS];
	int n = 0, i;

	for (i = 0; i < nns; i++)
		pool[n++] = ns[i].local[fidx(family)];
	for (i = 0; i < npeers; i++)
		if (peers[i].family == family)
			pool[n++] = peers[i];
	return pool[below(r, n)];
}

static int pick_family(struct rng *r)
{
	return chance(r, 50) ? AF_INET : AF_INET6;
}

/* ---- netlink -------------------------------------------------------- */

static int nl_socket(const unsigned int *groups, int ngroups)
{
	const struct xfrm_nl_cfg cfg = {
		.sock_flags = SOCK_NONBLOCK, .rcvbuf = 4 << 20,
		.groups = groups, .ngroups = ngroups,
	};
	struct xfrm_nl_fail fail;
	int fd;

	fd = xfrm_nl_open(&cfg, &fail);
	if (fd >= 0)
		return fd;
	if (fail.group)
		tap_bail_out("joining XFRM group %u: %s", fail.group,
			     strerror(errno));
	tap_bail_out("%s(NETLINK_XFRM): %s", fail.call, strerror(errno));
}

/* Every request here is built to fit: one that does not is a bug here. */
static void nl_put(struct nlmsghdr *n, size_t max, int type, const void *data,
		   size_t len)
{
	if (xfrm_nl_put(n, max, type, data, len))
		tap_bail_out("netlink message too long");
}

static void allocspi_reply(const struct nlmsghdr *h, void *arg)
{
	struct xfrm_usersa_info *sa = arg;

	if (h->nlmsg_type == XFRM_MSG_NEWSA &&
	    h->nlmsg_len >= NLMSG_LENGTH(sizeof(*sa)))
		memcpy(sa, NLMSG_DATA(h), sizeof(*sa));
}

/*
 * Sends one request in namespace @i and waits, bounded, for its ack.  A
 * reply carrying an SA (ALLOCSPI's) is copied to @sa.  Returns 0 or an
 * errno.
 */
static int nl_request(int i, struct nlmsghdr *n, struct xfrm_usersa_info *sa)
{
	return xfrm_nl_request(ns[i].nl_req, n, ACK_WAIT_MS,
			       sa ? allocspi_reply : NULL, sa);
}

/* ---- policies ------------------------------------------------------- */

struct pol {
	bool used;
	int ns;
	struct xfrm_selector sel;
	uint8_t dir;
	uint32_t priority;
};

static struct pol pols[MAX_POLS];

static const char *dir_str(int dir)
{
	return dir == XFRM_POLICY_IN ? "in" : dir == XFRM_POLICY_OUT ? "out" :
	       "fwd";
}

static void random_selector(struct rng *r, int i, struct xfrm_selector *sel)
{
	int family = pick_family(r);
	struct addr dst = pick_dst(r, family);
	int full = family == AF_INET ? 32 : 128;
	/* 255 stands for the family's ICMP */
	static const uint8_t protos[] = { 0, IPPROTO_TCP, IPPROTO_UDP, 255,
					  RAW_PROTO };

	memset(sel, 0, sizeof(*sel));
	sel->family = family;
	/* Host, wide (/24, /64) or everything: each catches other flows. */
	switch (below(r, 4)) {
	case 0:
	case 1:
		sel->daddr = dst.a;
		sel->prefixlen_d = full;
		break;
	case 2:
		sel->daddr = dst.a;
		sel->prefixlen_d = family == AF_INET ? 24 : 64;
		if (family == AF_INET)
			sel->daddr.a4 &= htonl(0xffffff00);
		else
			memset(&sel->daddr.a6[2], 0, 8);
		break;
	}
	if (chance(r, 50)) {
		sel->saddr = ns[i].local[fidx(family)].a;
		sel->prefixlen_s = full;
	}
	sel->proto = protos[below(r, sizeof(protos))];
	if (sel->proto == 255)
		sel->proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	if ((sel->proto == IPPROTO_TCP || sel->proto == IPPROTO_UDP) &&
	    chance(r, 30)) {
		sel->dport = htons(PORT);
		sel->dport_mask = 0xffff;
	}
}

static void fill_tmpl(struct rng *r, int i, const struct xfrm_selector *sel,
		      struct xfrm_user_tmpl *t)
{
	int other = (i + 1) % nns;

	memset(t, 0, sizeof(*t));
	t->id.proto = IPPROTO_ESP;
	t->family = sel->family;
	t->reqid = below(r, REQIDS);
	t->mode = XFRM_MODE_TRANSPORT;
	t->aalgos = t->ealgos = t->calgos = ~0u;
	/* level "use": an SA if there is one, plaintext otherwise */
	t->optional = chance(r, 10);
	if (chance(r, 20)) {
		t->mode = XFRM_MODE_TUNNEL;
		t->saddr = ns[i].local[fidx(sel->family)].a;
		t->id.daddr = ns[other].local[fidx(sel->family)].a;
	}
}

static void op_policy_add(struct rng *r)
{
	union xfrm_nl_msg req;
	struct xfrm_userpolicy_info *p;
	struct xfrm_user_tmpl t;
	struct pol *slot = &pols[below(r, MAX_POLS)];
	int i = below(r, nns), err;
	bool upd = chance(r, 50);
	unsigned int d = below(r, 100);

	p = xfrm_nl_start(&req, upd ? XFRM_MSG_UPDPOLICY : XFRM_MSG_NEWPOLICY, sizeof(*p));
	random_selector(r, i, &p->sel);
	p->dir = d < 70 ? XFRM_POLICY_OUT : d < 85 ? XFRM_POLICY_IN :
		 XFRM_POLICY_FWD;
	p->priority = below(r, 3);
	p->action = chance(r, 5) ? XFRM_POLICY_BLOCK : XFRM_POLICY_ALLOW;
	p->lft.soft_byte_limit = p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = p->lft.hard_packet_limit = XFRM_INF;
	fill_tmpl(r, i, &p->sel, &t);
	nl_put(&req.n, sizeof(req), XFRMA_TMPL, &t, sizeof(t));

	*slot = (struct pol){ .used = true, .ns = i, .sel = p->sel,
			      .dir = p->dir, .priority = p->priority };
	err = nl_request(i, &req.n, NULL);
	count(K_policy_add, err);
	note(K_policy_add, "ns=%d %s dir=%s dst=%s/%u src=/%u proto=%u "
	     "mode=%u reqid=%u err=%s", i, upd ? "upd" : "new",
	     dir_str(p->dir), addr_str(&(struct addr){ p->sel.family,
	     p->sel.daddr }), p->sel.prefixlen_d, p->sel.prefixlen_s,
	     p->sel.proto, t.mode, t.reqid, err_str(err));
}

static void op_policy_del(struct rng *r)
{
	union xfrm_nl_msg req;
	struct xfrm_userpolicy_id *id;
	struct pol *slot = &pols[below(r, MAX_POLS)];
	struct pol fresh = { .ns = below(r, nns), .dir = XFRM_POLICY_OUT };
	const struct pol *pl = slot->used ? slot : &fresh;
	int err;

	if (!slot->used)
		random_selector(r, fresh.ns, &fresh.sel);
	id = xfrm_nl_start(&req, XFRM_MSG_DELPOLICY, sizeof(*id));
	id->sel = pl->sel;
	id->dir = pl->dir;
	slot->used = false;
	err = nl_request(pl->ns, &req.n, NULL);
	count(K_policy_del, err);
	note(K_policy_del, "ns=%d dir=%s err=%s", pl->ns, dir_str(pl->dir),
	     err_str(err));
}

static void op_policy_flush(struct rng *r)
{
	struct nlmsghdr n = { .nlmsg_len = NLMSG_LENGTH(0),
			      .nlmsg_type = XFRM_MSG_FLUSHPOLICY };
	int i = below(r, nns), err, k;

	for (k = 0; k < MAX_POLS; k++)
		if (pols[k].ns == i)
			pols[k].used = false;
	err = nl_request(i, &n, NULL);
	count(K_policy_flush, err);
	note(K_policy_flush, "ns=%d err=%s", i, err_str(err));
}

/* ---- SAs ------------------------------------------------------------ */

struct sa {
	bool used;
	int ns;
	int family;
	xfrm_address_t src, dst;
	uint32_t spi;		/* host order */
};

static struct sa sas[MAX_SAS];

static const uint8_t sa_key[KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
};

struct sa_spec {
	int family;
	xfrm_address_t src, dst;
	uint32_t spi;
	uint8_t mode;
	uint32_t reqid;
	uint32_t seq;
	const struct xfrm_mark *mark;
	uint32_t if_id;
};

static int sa_install(int i, int type, const struct sa_spec *s)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_info *p;

	p = xfrm_nl_start(&req, type, sizeof(*p));
	p->id.daddr = s->dst;
	p->id.spi = htonl(s->spi);
	p->id.proto = IPPROTO_ESP;
	p->saddr = s->src;
	p->lft.soft_byte_limit = p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = p->lft.hard_packet_limit = XFRM_INF;
	p->seq = s->seq;
	p->reqid = s->reqid;
	p->family = s->family;
	p->mode = s->mode;
	p->replay_window = 32;

	if (xfrm_nl_put_aead(&req.n, sizeof(req), AEAD_NAME, sa_key, KEY_LEN,
			     128))
		tap_bail_out("netlink message too long");
	if (s->mark)
		nl_put(&req.n, sizeof(req), XFRMA_MARK, s->mark,
		       sizeof(*s->mark));
	if (s->if_id)
		nl_put(&req.n, sizeof(req), XFRMA_IF_ID, &s->if_id,
		       sizeof(s->if_id));
	return nl_request(i, &req.n, NULL);
}

static int sa_delete(int i, int family, const xfrm_address_t *src,
		     const xfrm_address_t *dst, uint32_t spi)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_id *id;

	id = xfrm_nl_start(&req, XFRM_MSG_DELSA, sizeof(*id));
	id->daddr = *dst;
	id->spi = htonl(spi);
	id->family = family;
	id->proto = IPPROTO_ESP;
	nl_put(&req.n, sizeof(req), XFRMA_SRCADDR, src, sizeof(*src));
	return nl_request(i, &req.n, NULL);
}

static int sa_flush(int i, uint8_t proto)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_flush *f;

	f = xfrm_nl_start(&req, XFRM_MSG_FLUSHSA, sizeof(*f));
	f->proto = proto;
	return nl_request(i, &req.n, NULL);
}

static void remember_sa(struct rng *r, int i, const struct sa_spec *s)
{
	sas[below(r, MAX_SAS)] = (struct sa){
		.used = true, .ns = i, .family = s->family, .src = s->src,
		.dst = s->dst, .spi = s->spi,
	};
}

/*
 * An SA nobody asked for: it may resolve a waiting acquire, collide with
 * one, or sit there.  SPIs come from a small range so additions collide and
 * deletions find something.
 */
static void op_state_add(struct rng *r)
{
	int i = below(r, nns), family = pick_family(r), err;
	struct addr dst = pick_dst(r, family);
	bool upd = chance(r, 30);
	struct sa_spec s = {
		.family = family,
		.src = ns[i].local[fidx(family)].a,
		.dst = dst.a,
		.spi = between(r, 0x1000, 0x103f),
		.mode = chance(r, 20) ? XFRM_MODE_TUNNEL : XFRM_MODE_TRANSPORT,
		.reqid = below(r, REQIDS),
	};

	remember_sa(r, i, &s);
	err = sa_install(i, upd ? XFRM_MSG_UPDSA : XFRM_MSG_NEWSA, &s);
	count(K_state_add, err);
	note(K_state_add, "ns=%d %s spi=0x%x %s->%s mode=%u reqid=%u err=%s",
	     i, upd ? "upd" : "new", s.spi,
	     addr_str(&ns[i].local[fidx(family)]), addr_str(&dst), s.mode,
	     s.reqid, err_str(err));
}

static void op_state_del(struct rng *r)
{
	struct sa *slot = &sas[below(r, MAX_SAS)];
	int err;

	if (!slot->used) {
		slot->ns = below(r, nns);
		slot->family = pick_family(r);
		slot->src = ns[slot->ns].local[fidx(slot->family)].a;
		slot->dst = pick_dst(r, slot->family).a;
		slot->spi = between(r, 0x1000, 0x103f);
	}
	slot->used = false;
	err = sa_delete(slot->ns, slot->family, &slot->src, &slot->dst,
			slot->spi);
	count(K_state_del, err);
	note(K_state_del, "ns=%d spi=0x%x err=%s", slot->ns, slot->spi,
	     err_str(err));
}

static void op_state_flush(struct rng *r)
{
	int i = below(r, nns), err, k;
	/* 0 is IPSEC_PROTO_ANY: larval states go too */
	uint8_t proto = chance(r, 50) ? 0 : IPPROTO_ESP;

	for (k = 0; k < MAX_SAS; k++)
		if (sas[k].ns == i)
			sas[k].used = false;
	err = sa_flush(i, proto);
	count(K_state_flush, err);
	note(K_state_flush, "ns=%d proto=%u err=%s", i, proto, err_str(err));
}

/* ---- sysctls -------------------------------------------------------- */

static int sysctl_write(int i, const char *name, unsigned int v)
{
	char path[128], val[16];
	int fd, n, err = 0;

	enter_ns(i);
	snprintf(path, sizeof(path), "/proc/sys/net/core/%s", name);
	/* /proc/sys/net is the namespace of whoever opens it */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = snprintf(val, sizeof(val), "%u\n", v);
	if (write(fd, val, n) != n)
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

static const struct {
	const char *name;
	unsigned int values[6];
	unsigned int nvalues;
} knobs[] = {
	{ "xfrm_resolve", { 1, 1, 1, 0 }, 4 },
	{ "xfrm_acq_expires", { 1, 2, 3, 5, 30 }, 5 },
	{ "xfrm_larval_drop", { 0, 1 }, 2 },
	{ "xfrm_resolve_qlen", { 0, 1, 2, 5, 100 }, 5 },
	{ "xfrm_resolve_qlen_net", { 0, 1, 10, 100, 1000 }, 5 },
};

#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

static void op_sysctl(struct rng *r)
{
	unsigned int k = below(r, NKNOBS);
	unsigned int v = knobs[k].values[below(r, knobs[k].nvalues)];
	int i = below(r, nns), err;

	err = sysctl_write(i, knobs[k].name, v);
	count(K_sysctl, err);
	note(K_sysctl, "ns=%d %s=%u err=%s", i, knobs[k].name, v,
	     err_str(err));
}

/* ---- sockets -------------------------------------------------------- */

enum sk_type { SK_TCP, SK_UDP, SK_RAW, SK_PING, SK_TYPES };
static const char *const sk_type_name[] = { "tcp", "udp", "raw", "ping" };

struct sk {
	bool used;
	int fd;
	int ns;
	int family;
	enum sk_type type;
	bool nonblock;
	bool connected;		/* connect() was called, whatever it said */
	unsigned int timeo_ms;
};

static struct sk socks[MAX_SOCKS];

static socklen_t sockaddr_of(const struct addr *a, enum sk_type t,
			     struct sockaddr_storage *ss)
{
	int port = t == SK_TCP || t == SK_UDP ? PORT : 0;

	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		memcpy(&s->sin_addr, &a->a.a4, 4);
		return sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		memcpy(&s->sin6_addr, &a->a.a6, 16);
		return sizeof(*s);
	}
}

static void sk_open(struct rng *r, struct sk *s)
{
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
				     SOCK_DGRAM };
	int i = below(r, nns), family = pick_family(r), proto = 0;
	enum sk_type t = below(r, SK_TYPES);
	bool nonblock = chance(r, 50);
	unsigned int timeo = between(r, 20, 400);
	bool set_resolve = chance(r, 25);
	int resolve = below(r, 5);	/* 4 is not a valid value */
	int fd, err;

	if (t == SK_RAW)
		proto = RAW_PROTO;
	else if (t == SK_PING)
		proto = family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
	enter_ns(i);
	fd = socket(family, types[t] | SOCK_CLOEXEC |
		    (nonblock ? SOCK_NONBLOCK : 0), proto);
	err = fd < 0 ? errno : 0;
	*s = (struct sk){ .used = true, .fd = fd, .ns = i, .family = family,
			  .type = t, .nonblock = nonblock, .timeo_ms = timeo };
	count(K_socket, err);
	if (fd >= 0) {
		struct timeval tv = { timeo / 1000, (timeo % 1000) * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (set_resolve)
			setsockopt(fd, family == AF_INET ? SOL_IP : SOL_IPV6,
				   family == AF_INET ? IP_XFRM_RESOLVE :
				   IPV6_XFRM_RESOLVE, &resolve,
				   sizeof(resolve));
	}
	note(K_socket, "ns=%d %s%d %s timeo=%u resolve=%d err=%s", i,
	     sk_type_name[t], family == AF_INET ? 4 : 6,
	     nonblock ? "nonblock" : "block", timeo, set_resolve ? resolve : -1,
	     err_str(err));
}

/* The socket of a random slot, opened first when the slot is empty. */
static struct sk *pick_sock(struct rng *r)
{
	struct sk *s = &socks[below(r, MAX_SOCKS)];

	if (!s->used)
		sk_open(r, s);
	return s;
}

static size_t payload(struct rng *r, const struct sk *s, char *buf,
		      size_t max)
{
	size_t len = chance(r, 90) ? between(r, 8, 200) :
		     between(r, 8, (uint32_t)max);

	memset(buf, 'f', len);
	if (s->type == SK_PING) {
		/* The kernel fills in the id and the checksum. */
		buf[0] = s->family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
		buf[1] = 0;
	}
	return len;
}

static void connect_sock(struct rng *r, struct sk *s)
{
	struct addr dst = pick_dst(r, s->family);
	bool disconnect = s->type != SK_TCP && chance(r, 5);
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(&dst, s->type, &ss);
	uint64_t t0;
	int ret, err;

	if (disconnect) {
		ss.ss_family = AF_UNSPEC;
		len = sizeof(ss.ss_family);
	}
	s->connected = !disconnect;
	t0 = guard_start(GUARD_MS);
	ret = connect(s->fd, (struct sockaddr *)&ss, len);
	err = ret < 0 ? errno : 0;
	guard_end(t0, GUARD_MS, K_connect, sk_type_name[s->type]);
	count(K_connect, err);
	note(K_connect, "fd=%d %s%d %s %s err=%s", s->fd,
	     sk_type_name[s->type], s->family == AF_INET ? 4 : 6,
	     s->nonblock ? "nonblock" : "block",
	     disconnect ? "AF_UNSPEC" : addr_str(&dst), err_str(err));
}

static void op_connect(struct rng *r)
{
	connect_sock(r, pick_sock(r));
}

static void op_send(struct rng *r)
{
	static char buf[2000];
	struct sk *s = pick_sock(r);
	size_t len = payload(r, s, buf, sizeof(buf));
	int flags = MSG_NOSIGNAL | (chance(r, 10) ? MSG_DONTWAIT : 0);
	uint64_t t0;
	ssize_t ret;
	int err;

	/* mostly on connected sockets: EDESTADDRREQ tells little */
	if (!s->connected && chance(r, 70))
		connect_sock(r, s);
	t0 = guard_start(GUARD_MS);
	ret = send(s->fd, buf, len, flags);
	err = ret < 0 ? errno : 0;
	guard_end(t0, GUARD_MS, K_send, sk_type_name[s->type]);
	count(K_send, err);
	note(K_send, "fd=%d len=%zu flags=0x%x err=%s", s->fd, len, flags,
	     err_str(err));
}

static void op_sendto(struct rng *r)
{
	static char buf[2000];
	struct sk *s = pick_sock(r);
	struct addr dst = pick_dst(r, s->family);
	size_t len = payload(r, s, buf, sizeof(buf));
	struct sockaddr_storage ss;
	socklen_t sl = sockaddr_of(&dst, s->type, &ss);
	uint64_t t0;
	ssize_t ret;
	int err;

	t0 = guard_start(GUARD_MS);
	ret = sendto(s->fd, buf, len, MSG_NOSIGNAL, (struct sockaddr *)&ss,
		     sl);
	err = ret < 0 ? errno : 0;
	guard_end(t0, GUARD_MS, K_sendto, sk_type_name[s->type]);
	count(K_sendto, err);
	note(K_sendto, "fd=%d %s len=%zu err=%s", s->fd, addr_str(&dst), len,
	     err_str(err));
}

static void op_poll(struct rng *r)
{
	struct sk *s = pick_sock(r);
	struct pollfd p = { .fd = s->fd, .events = POLLIN | POLLOUT };
	unsigned int ms = chance(r, 50) ? 0 : between(r, 1, 100);
	socklen_t sl = sizeof(int);
	int ret, err, soerr = 0;
	uint64_t t0;

	t0 = guard_start(GUARD_MS);
	ret = poll(&p, 1, ms);
	err = ret < 0 ? errno : 0;
	guard_end(t0, ms, K_poll, sk_type_name[s->type]);
	getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	count(K_poll, err);
	note(K_poll, "fd=%d timeout=%u ret=%d revents=0x%x so_error=%s",
	     s->fd, ms, ret, ret > 0 ? p.revents : 0, err_str(soerr));
}

static void op_recv(struct rng *r)
{
	static char buf[2000];
	struct sk *s = pick_sock(r);
	int flags = chance(r, 70) ? MSG_DONTWAIT : 0;
	uint64_t t0;
	ssize_t ret;
	int err;

	t0 = guard_start(GUARD_MS);
	ret = recv(s->fd, buf, sizeof(buf), flags);
	err = ret < 0 ? errno : 0;
	guard_end(t0, GUARD_MS, K_recv, sk_type_name[s->type]);
	count(K_recv, err);
	note(K_recv, "fd=%d flags=0x%x ret=%zd err=%s", s->fd, flags, ret,
	     err_str(err));
}

static void op_close(struct rng *r)
{
	struct sk *s = &socks[below(r, MAX_SOCKS)];
	bool abort_it = chance(r, 20);
	int ret = 0;

	if (s->used && s->fd >= 0) {
		/* linger 0: a TCP close sends RST, through the larval route too */
		if (abort_it) {
			struct linger l = { 1, 0 };

			setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		ret = close(s->fd) < 0 ? errno : 0;
	}
	count(K_close, ret);
	note(K_close, "fd=%d used=%d abort=%d", s->used ? s->fd : -1, s->used,
	     abort_it);
	s->used = false;
}

/* ---- short-lived namespaces ----------------------------------------- */

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, s, strlen(s)) < 0)
		_exit(5);
	close(fd);
}

static void child_policy(int nl, int family, const xfrm_address_t *dst)
{
	union xfrm_nl_msg req;
	struct xfrm_userpolicy_info *p;
	struct xfrm_user_tmpl t;

	p = xfrm_nl_start(&req, XFRM_MSG_NEWPOLICY, sizeof(*p));
	req.n.nlmsg_flags = NLM_F_REQUEST;
	p->sel.family = family;
	p->sel.daddr = *dst;
	p->sel.prefixlen_d = family == AF_INET ? 32 : 128;
	p->dir = XFRM_POLICY_OUT;
	p->lft.soft_byte_limit = p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = p->lft.hard_packet_limit = XFRM_INF;
	memset(&t, 0, sizeof(t));
	t.id.proto = IPPROTO_ESP;
	t.family = family;
	t.mode = XFRM_MODE_TRANSPORT;
	t.aalgos = t.ealgos = t.calgos = ~0u;
	nl_put(&req.n, sizeof(req), XFRMA_TMPL, &t, sizeof(t));
	xfrm_nl_send(nl, &req.n);
}

/*
 * A child in a namespace of its own: loopback up, SA resolution on, a
 * policy without SA for 127.0.0.2 and ::1, packets sent from several
 * sockets, then exit.  The namespace dies with its larval states, held
 * packets and (sometimes) sockets still in them.
 */
static void netns_child(uint64_t seed)
{
	struct rng r = { seed };
	struct ifreq ifr = { .ifr_name = "lo" };
	xfrm_address_t d4 = { 0 }, d6 = { 0 };
	char buf[64] = "larval-fuzz";
	int fd, nl, k, n;

	/* the parent's handler would make the alarm a no-op */
	signal(SIGALRM, SIG_DFL);
	alarm(5);
	if (unshare(CLONE_NEWNET) < 0)
		_exit(3);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		_exit(4);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		_exit(4);
	close(fd);
	write_file("/proc/sys/net/core/xfrm_resolve", "1\n");
	write_file("/proc/sys/net/ipv4/ping_group_range", "0 2147483647\n");
	nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_XFRM);
	if (nl < 0)
		_exit(6);
	d4.a4 = htonl(0x7f000002);
	d6.a6[3] = htonl(1);
	child_policy(nl, AF_INET, &d4);
	/* netlink runs a request in sendmsg(): the policies are in place */
	child_policy(nl, AF_INET6, &d6);
	n = between(&r, 1, 6);
	for (k = 0; k < n; k++) {
		int family = pick_family(&r);
		enum sk_type t = below(&r, SK_TYPES);
		struct addr a = { family, family == AF_INET ? d4 : d6 };
		struct sockaddr_storage ss;
		socklen_t sl = sockaddr_of(&a, t, &ss);
		static const int types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
					     SOCK_DGRAM };
		int proto = t == SK_RAW ? RAW_PROTO : t == SK_PING ?
			    (family == AF_INET ? IPPROTO_ICMP :
			     IPPROTO_ICMPV6) : 0;

		fd = socket(family, types[t] | SOCK_NONBLOCK, proto);
		if (fd < 0)
			continue;
		buf[0] = t != SK_PING ? 'f' : family == AF_INET ? ICMP_ECHO :
			 ICMP6_ECHO_REQUEST;
		if (chance(&r, 50))
			connect(fd, (struct sockaddr *)&ss, sl);
		sendto(fd, buf, sizeof(buf), MSG_NOSIGNAL,
		       (struct sockaddr *)&ss, sl);
		/* leave some open: exit closes them with the namespace */
	}
	if (chance(&r, 30))
		usleep(between(&r, 1, 200) * 1000);
	_exit(0);
}

static void op_netns(struct rng *r)
{
	uint64_t seed = rng_next(r), t0 = tap_now_ns();
	int status = 0, err = 0;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		netns_child(seed);
	if (pid < 0) {
		err = errno;
	} else {
		/* The child's own alarm(5) bounds it; this bounds the wait. */
		if (!reap(pid, 6000 + opt.overrun_ms, &status))
			guard_end(t0, 6000, K_netns, "child");
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			err = ECHILD;
	}
	count(K_netns, err);
	note(K_netns, "status=0x%x took=%.1fms", status,
	     tap_ns_to_ms(tap_now_ns() - t0));
}

/* ---- the key manager ------------------------------------------------- */

enum acq_action { ACQ_NEWSA, ACQ_UPDSA, ACQ_DELETE, ACQ_FLUSH, ACQ_IGNORE };

struct job {
	bool used;
	enum acq_action action;
	uint64_t due_ns;
	int ns;
	struct xfrm_user_acquire ua;
	struct xfrm_user_tmpl tmpl;
	bool has_tmpl;
	struct xfrm_mark mark;
	bool has_mark;
	uint32_t if_id;
	bool reverse;		/* also key the far side, when it is ours */
};

static struct job jobs[MAX_JOBS];
static uint32_t next_spi = 0x20000;

static int ns_of_addr(int family, const xfrm_address_t *a)
{
	int i;

	for (i = 0; i < nns; i++)
		if (!memcmp(&ns[i].local[fidx(family)].a, a,
			    family == AF_INET ? 4 : 16))
			return i;
	return -1;
}

static void job_spec(const struct job *j, struct sa_spec *s)
{
	int family = j->has_tmpl && j->tmpl.family ? j->tmpl.family :
		     j->ua.sel.family;

	memset(s, 0, sizeof(*s));
	s->family = family;
	s->src = j->ua.saddr;
	s->dst = j->ua.id.daddr;
	s->mode = j->has_tmpl ? j->tmpl.mode : XFRM_MODE_TRANSPORT;
	s->reqid = j->has_tmpl ? j->tmpl.reqid : 0;
	s->seq = j->ua.seq;
	s->mark = j->has_mark ? &j->mark : NULL;
	s->if_id = j->if_id;
}

/* ALLOCSPI on the larval state, as an IKE daemon does before UPDSA. */
static int alloc_spi(const struct job *j, const struct sa_spec *s,
		     uint32_t *spi)
{
	union xfrm_nl_msg req;
	struct xfrm_userspi_info *u;
	struct xfrm_usersa_info got = { 0 };
	int err;

	u = xfrm_nl_start(&req, XFRM_MSG_ALLOCSPI, sizeof(*u));
	u->info.id.daddr = s->dst;
	u->info.id.proto = IPPROTO_ESP;
	u->info.saddr = s->src;
	u->info.family = s->family;
	u->info.mode = s->mode;
	u->info.reqid = s->reqid;
	u->info.seq = s->seq;
	u->min = 0x30000;
	u->max = 0x3ffff;
	if (s->mark)
		nl_put(&req.n, sizeof(req), XFRMA_MARK, s->mark,
		       sizeof(*s->mark));
	err = nl_request(j->ns, &req.n, &got);
	*spi = ntohl(got.id.spi);
	if (!err && !*spi)
		err = ENOENT;
	return err;
}

static void run_job(const struct job *j)
{
	struct sa_spec s;
	enum kind k = K_acq_newsa;
	int err = 0, peer;
	uint32_t spi = 0;

	job_spec(j, &s);
	switch (j->action) {
	case ACQ_NEWSA:
		s.spi = next_spi++;
		err = sa_install(j->ns, XFRM_MSG_NEWSA, &s);
		break;
	case ACQ_UPDSA:
		k = K_acq_updsa;
		err = alloc_spi(j, &s, &spi);
		s.spi = spi;
		if (!err)
			err = sa_install(j->ns, XFRM_MSG_UPDSA, &s);
		break;
	case ACQ_DELETE:
		k = K_acq_delete;
		err = alloc_spi(j, &s, &spi);
		if (!err)
			err = sa_delete(j->ns, s.family, &s.src, &s.dst, spi);
		break;
	case ACQ_FLUSH:
		k = K_acq_flush;
		err = sa_flush(j->ns, 0);
		break;
	case ACQ_IGNORE:
		return;
	}
	count(k, err);
	/* The far side's inbound SA, so that what is released arrives. */
	peer = ns_of_addr(s.family, &s.dst);
	if (!err && j->reverse && peer >= 0 && s.spi) {
		s.mark = NULL;
		s.if_id = 0;
		s.seq = 0;
		sa_install(peer, XFRM_MSG_NEWSA, &s);
	}
	note(k, "ns=%d acq_seq=%u spi=0x%x err=%s", j->ns, j->ua.seq,
	     s.spi ? s.spi : spi, err_str(err));
}

static void add_job(const struct job *j)
{
	int k;

	for (k = 0; k < MAX_JOBS; k++) {
		if (jobs[k].used)
			continue;
		jobs[k] = *j;
		jobs[k].used = true;
		return;
	}
	/* Full: the ACQUIRE goes unanswered and its state expires. */
	bump(&cnt->ops[K_acq_ignore]);
}

static void run_due_jobs(void)
{
	uint64_t now = tap_now_ns();
	int k;

	for (k = 0; k < MAX_JOBS; k++) {
		struct job j = jobs[k];

		if (!j.used || j.due_ns > now)
			continue;
		jobs[k].used = false;
		run_job(&j);
	}
}

static void handle_acquire(int i, const struct nlmsghdr *h)
{
	const struct xfrm_user_acquire *ua = NLMSG_DATA(h);
	const struct rtattr *rta;
	struct job j = { .ns = i };
	unsigned int d = below(&acq_rng, 100);
	int rem;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ua)))
		return;
	bump(&cnt->ops[K_acquire]);
	j.ua = *ua;
	rta = xfrm_nl_attrs(h, sizeof(*ua), &rem);
	for (; RTA_OK(rta, rem); rta = RTA_NEXT(rta, rem)) {
		if (rta->rta_type == XFRMA_TMPL)
			j.has_tmpl |= xfrm_nl_attr_copy(rta, &j.tmpl,
							sizeof(j.tmpl));
		else if (rta->rta_type == XFRMA_MARK &&
			 xfrm_nl_attr_copy(rta, &j.mark, sizeof(j.mark)))
			j.has_mark = j.mark.v || j.mark.m;
		else if (rta->rta_type == XFRMA_IF_ID)
			xfrm_nl_attr_copy(rta, &j.if_id, sizeof(j.if_id));
	}
	j.action = d < 35 ? ACQ_NEWSA : d < 55 ? ACQ_UPDSA : d < 70 ?
		   ACQ_DELETE : d < 75 ? ACQ_FLUSH : ACQ_IGNORE;
	j.reverse = chance(&acq_rng, 60);
	/* late answers leave time for more sockets to wait on the acquire */
	j.due_ns = tap_now_ns() + (chance(&acq_rng, 50) ? 0 :
		   between(&acq_rng, 5, 800) * 1000000ull);
	note(K_acquire, "ns=%d seq=%u dst=%s action=%d", i, ua->seq,
	     addr_str(&(struct addr){ j.has_tmpl && j.tmpl.family ?
	     j.tmpl.family : ua->sel.family, ua->id.daddr }), j.action);
	if (j.action == ACQ_IGNORE) {
		bump(&cnt->ops[K_acq_ignore]);
		return;
	}
	add_job(&j);
}

static void read_events(int i)
{
	static char buf[XFRM_NL_BUF] __attribute__((aligned(8)));
	int budget = 32;

	while (budget--) {
		struct nlmsghdr *h;
		ssize_t r = recv(ns[i].nl_ev, buf, sizeof(buf), MSG_DONTWAIT);

		if (r < 0) {
			if (errno == ENOBUFS)
				continue;	/* lost events: go on */
			return;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_type == XFRM_MSG_ACQUIRE)
				handle_acquire(i, h);
			else if (h->nlmsg_type == XFRM_MSG_EXPIRE)
				bump(&cnt->ops[K_expire]);
		}
	}
}

/* ---- the far ends: TCP and UDP servers in every namespace ------------ */

static int server(int i, int type)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_port = htons(PORT) };
	int zero = 0, one = 1, fd;

	enter_ns(i);
	fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		tap_bail_out("server socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		tap_bail_out("server bind in %s: %s", ns[i].path,
			     strerror(errno));
	if (type == SOCK_STREAM && listen(fd, 64) < 0)
		tap_bail_out("listen: %s", strerror(errno));
	return fd;
}

/*
 * Accepts, keeps the last MAX_CONNS connections open (their ACKs and FINs
 * go through the larval routes too) and echoes UDP: the answers need SAs
 * the other way, which sends ACQUIREs from the far side.
 */
static void serve(int i)
{
	static char buf[2000];
	static unsigned int next_conn;
	struct netns *n = &ns[i];
	int k, fd;

	for (k = 0; k < 8; k++) {
		fd = accept4(n->tcp_srv, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		if (n->conns[next_conn % MAX_CONNS] > 0)
			close(n->conns[next_conn % MAX_CONNS]);
		n->conns[next_conn++ % MAX_CONNS] = fd;
	}
	for (k = 0; k < MAX_CONNS; k++)
		if (n->conns[k] > 0 &&
		    recv(n->conns[k], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			send(n->conns[k], buf, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (k = 0; k < 8; k++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t r = recvfrom(n->udp_srv, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);

		if (r < 0)
			break;
		sendto(n->udp_srv, buf, r, MSG_DONTWAIT,
		       (struct sockaddr *)&from, fl);
	}
}

/* ---- the key manager's process ---------------------------------------- */

static struct rng chaos_rng;

static uint64_t next_due(uint64_t limit)
{
	int k;

	for (k = 0; k < MAX_JOBS; k++)
		if (jobs[k].used && jobs[k].due_ns < limit)
			limit = jobs[k].due_ns;
	return limit;
}

static void chaos(void)
{
	static void (*const fns[])(struct rng *) = {
		op_policy_del, op_policy_del, op_policy_del,
		op_state_del, op_state_del, op_state_del,
		op_sysctl, op_sysctl, op_sysctl,
		op_policy_flush, op_state_flush,
	};

	fns[below(&chaos_rng, sizeof(fns) / sizeof(fns[0]))](&chaos_rng);
}

/*
 * The key manager runs beside the socket calls, in a process of its own:
 * a blocking connect() or send() waits for an SA that only it can install.
 * Every 50-600 ms it also deletes or flushes policies or SAs, or flips a
 * sysctl, under whoever is waiting.  It ends with the parent.
 */
static __attribute__((noreturn)) void km_run(void)
{
	struct pollfd p[MAX_NS];
	uint64_t next_chaos = tap_now_ns();
	int i;

	signal(SIGALRM, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(opt.seconds + 60);
	for (i = 0; i < nns; i++) {
		/* The parent's request socket would get our acks mixed in. */
		enter_ns(i);
		close(ns[i].nl_req);
		ns[i].nl_req = nl_socket(NULL, 0);
		close(ns[i].tcp_srv);
		close(ns[i].udp_srv);
		p[i] = (struct pollfd){ .fd = ns[i].nl_ev, .events = POLLIN };
	}
	for (;;) {
		uint64_t now = tap_now_ns(), wake = next_due(next_chaos);

		if (now >= next_chaos) {
			chaos();
			next_chaos = now + between(&chaos_rng, 50, 600) *
				     1000000ull;
			continue;
		}
		poll(p, nns, wake > now ? (wake - now) / 1000000 + 1 : 0);
		for (i = 0; i < nns; i++)
			if (p[i].revents)
				read_events(i);
		run_due_jobs();
	}
}

static pid_t km_start(void)
{
	pid_t pid;
	int i;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		tap_bail_out("fork: %s", strerror(errno));
	if (pid == 0)
		km_run();
	for (i = 0; i < nns; i++)
		close(ns[i].nl_ev);
	return pid;
}

static void km_stop(pid_t pid)
{
	uint64_t t0 = tap_now_ns();
	int status;

	kill(pid, SIGTERM);
	if (!reap(pid, 2000, &status))
		guard_end(t0, 2000, K_acquire, "key manager exit");
}

/* ---- set-up, main loop, summary -------------------------------------- */

static void setup_ns(int i)
{
	static const unsigned int groups[] = { XFRMNLGRP_ACQUIRE,
					       XFRMNLGRP_EXPIRE };
	struct netns *n = &ns[i];

	n->fd = open(n->path, O_RDONLY | O_CLOEXEC);
	if (n->fd < 0)
		tap_bail_out("open %s: %s", n->path, strerror(errno));
	enter_ns(i);
	n->nl_req = nl_socket(NULL, 0);
	n->nl_ev = nl_socket(groups, 2);
	n->tcp_srv = server(i, SOCK_STREAM);
	n->udp_srv = server(i, SOCK_DGRAM);
	/* A known start; the operations flip them from here. */
	sysctl_write(i, "xfrm_resolve", 1);
	sysctl_write(i, "xfrm_acq_expires", 3);
}

typedef void (*op_fn)(struct rng *r);

static const op_fn op_fns[] = {
	[K_policy_add] = op_policy_add,
	[K_policy_del] = op_policy_del,
	[K_policy_flush] = op_policy_flush,
	[K_state_add] = op_state_add,
	[K_state_del] = op_state_del,
	[K_state_flush] = op_state_flush,
	[K_sysctl] = op_sysctl,
	[K_socket] = NULL,	/* through pick_sock() and the slot below */
	[K_connect] = op_connect,
	[K_send] = op_send,
	[K_sendto] = op_sendto,
	[K_poll] = op_poll,
	[K_recv] = op_recv,
	[K_close] = op_close,
	[K_netns] = op_netns,
};

static void op_socket(struct rng *r)
{
	struct sk *s = &socks[below(r, MAX_SOCKS)];

	if (s->used && s->fd >= 0)
		close(s->fd);
	sk_open(r, s);
}

static enum kind pick_kind(struct rng *r)
{
	unsigned int total = 0, k, x;

	for (k = 0; k < NKINDS; k++)
		total += kind_weight[k];
	x = below(r, total);
	for (k = 0; k < NKINDS; k++) {
		if (x < kind_weight[k])
			return k;
		x -= kind_weight[k];
	}
	return K_poll;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --ns PATH,V4,V6 --ns PATH,V4,V6 [options]\n"
"\n"
"Random XFRM policy/SA/sysctl/socket operations in the named network\n"
"namespaces (e.g. /run/netns/fz0 and its addresses), answering ACQUIREs\n"
"itself; print TAP 14 with a summary of what was done.\n"
"\n"
"  --ns PATH,V4,V6   a namespace and its own addresses (2 to %d)\n"
"  --peer ADDR       a far address the namespaces route to (up to %d)\n"
"  --seed N          the sequence's seed (default 1)\n"
"  --seconds N       stop after N s (default 60)\n"
"  --max-ops N       stop after N operations (default: no limit)\n"
"  --overrun-ms N    a call that outlives its bound by more than N ms\n"
"                    fails the run (default 5000)\n"
"  --trace FILE      every operation, one line each\n"
"\n"
"Exit 0 when no call overran, 1 when one did, 2 on bad arguments.\n",
		MAX_NS, MAX_PEERS);
}

static void parse_ns(const char *arg)
{
	char buf[512], *v4, *v6;
	struct netns *n = &ns[nns];

	if (nns == MAX_NS)
		die_usage("more than %d --ns", MAX_NS);
	snprintf(buf, sizeof(buf), "%s", arg);
	v4 = strchr(buf, ',');
	v6 = v4 ? strchr(v4 + 1, ',') : NULL;
	if (!v6)
		die_usage("--ns wants PATH,V4,V6, not '%s'", arg);
	*v4++ = '\0';
	*v6++ = '\0';
	n->path = strdup(buf);
	if (!parse_addr(v4, &n->local[0]) || n->local[0].family != AF_INET ||
	    !parse_addr(v6, &n->local[1]) || n->local[1].family != AF_INET6)
		die_usage("--ns %s: bad addresses", arg);
	nns++;
}

static void parse_args(int argc, char **argv)
{
	enum { O_NS = 1, O_PEER, O_SEED, O_SECONDS, O_MAXOPS, O_OVERRUN,
	       O_TRACE, O_HELP };
	static const struct option lo[] = {
		{ "ns", required_argument, NULL, O_NS },
		{ "peer", required_argument, NULL, O_PEER },
		{ "seed", required_argument, NULL, O_SEED },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "max-ops", required_argument, NULL, O_MAXOPS },
		{ "overrun-ms", required_argument, NULL, O_OVERRUN },
		{ "trace", required_argument, NULL, O_TRACE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_NS: parse_ns(optarg); break;
		case O_PEER:
			if (npeers == MAX_PEERS)
				die_usage("more than %d --peer", MAX_PEERS);
			if (!parse_addr(optarg, &peers[npeers++]))
				die_usage("--peer: bad address '%s'", optarg);
			break;
		case O_SEED: opt.seed = parse_u64("--seed", optarg); break;
		case O_SECONDS:
			opt.seconds = parse_num("--seconds", optarg, 1, 86400);
			break;
		case O_MAXOPS:
			opt.max_ops = parse_num("--max-ops", optarg, 1,
						1000000000);
			break;
		case O_OVERRUN:
			opt.overrun_ms = parse_num("--overrun-ms", optarg, 1,
						   3600000);
			break;
		case O_TRACE: opt.trace_path = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (nns < 2)
		die_usage("at least two --ns are needed");
}

/* "EAGAIN=12 EINPROGRESS=4": which errors a kind met, for coverage. */
static void put_errnos(const char *key, const unsigned long *e)
{
	char buf[512];
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < MAX_ERRNO && len < sizeof(buf) - 32; i++)
		if (e[i])
			len += snprintf(buf + len, sizeof(buf) - len, "%s%s=%lu",
					len ? " " : "",
					i ? errno_name(i) : "other", e[i]);
	tap_yaml_str(key, buf);
}

static void summary(unsigned long n, double ms)
{
	unsigned long k;

	tap_result(overrun.count == 0, "no call overran its bound");
	tap_yaml_begin();
	tap_yaml_int("overruns", overrun.count);
	tap_yaml_int("overrun_ms", opt.overrun_ms);
	for (k = 0; k < overrun.count && k < OVERRUNS_KEPT; k++) {
		char key[16];

		snprintf(key, sizeof(key), "overrun_%lu", k);
		tap_yaml_str(key, overrun.first[k]);
	}
	tap_yaml_end();

	tap_ok("summary");
	tap_yaml_begin();
	tap_yaml_uint("seed", opt.seed);
	tap_yaml_int("ops", n);
	tap_yaml_double("elapsed_ms", ms);
	tap_yaml_int("namespaces", nns);
	for (k = 0; k < NKINDS; k++) {
		char key[40];

		snprintf(key, sizeof(key), "ops_%s", kind_name[k]);
		tap_yaml_int(key, cnt->ops[k]);
		snprintf(key, sizeof(key), "fails_%s", kind_name[k]);
		tap_yaml_int(key, cnt->fails[k]);
		if (cnt->fails[k]) {
			snprintf(key, sizeof(key), "errnos_%s", kind_name[k]);
			put_errnos(key, cnt->errnos[k]);
		}
	}
	tap_yaml_str("result", overrun.count ? "fail" : "pass");
	tap_yaml_end();
	for (k = nring > RING ? nring - RING : 0; k < nring; k++)
		tap_diag("last %s", ring[k % RING]);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	uint64_t deadline, next_progress;
	unsigned long n = 0;
	pid_t km;
	int i;

	parse_args(argc, argv);
	cnt = mmap(NULL, sizeof(*cnt), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (cnt == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	tap_init();
	tap_diag(PROG " seed=%llu seconds=%lu max_ops=%lu namespaces=%d "
		 "peers=%d", (unsigned long long)opt.seed, opt.seconds,
		 opt.max_ops, nns, npeers);
	op_rng.s = opt.seed;
	acq_rng.s = opt.seed ^ 0xacacacacacacacacull;
	chaos_rng.s = opt.seed ^ 0xc4a05c4a05c4a05cull;
	/* No SA_RESTART: the timer must end a blocked call with EINTR. */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (opt.trace_path) {
		trace = fopen(opt.trace_path, "w");
		if (!trace)
			die_usage("cannot open %s: %s", opt.trace_path,
				  strerror(errno));
		setvbuf(trace, NULL, _IOLBF, 0);
	}
	for (i = 0; i < nns; i++)
		setup_ns(i);
	km = km_start();
	tap_ok("set-up");
	tap_yaml_begin();
	tap_yaml_bool("xfrm_resolve",
		      access("/proc/sys/net/core/xfrm_resolve", F_OK) == 0);
	tap_yaml_end();

	deadline = tap_now_ns() + opt.seconds * 1000000000ull;
	next_progress = tap_now_ns() + 5000000000ull;
	while (tap_now_ns() < deadline && (!opt.max_ops || n < opt.max_ops)) {
		enum kind k = pick_kind(&op_rng);

		for (i = 0; i < nns; i++)
			serve(i);
		if (k == K_socket)
			op_socket(&op_rng);
		else
			op_fns[k](&op_rng);
		n++;
		if (tap_now_ns() >= next_progress) {
			tap_diag("progress ops=%lu acquires=%lu t=%.0fms", n,
				 cnt->ops[K_acquire], tap_ms_since_start());
			next_progress += 5000000000ull;
		}
	}
	km_stop(km);
	summary(n, tap_ms_since_start());
	tap_plan_end();
	return overrun.count ? 1 : 0;
}
