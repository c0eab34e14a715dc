// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-stress - rounds of concurrent senders on one acquire; print TAP
 *
 * Each round starts from no SA: it flushes the SAs of the namespace it runs
 * in, opens a round on the key manager (larval-km --control) with that
 * round's delay (0, 1, 5 or 50 ms after the ACQUIRE) and method (NEWSA, or
 * ALLOCSPI on the larval state then UPDSA), and lets loose, on every CPU
 * at once (threads pinned to each CPU, started by one barrier):
 *
 *   held    unconnected non-blocking sendto() streams: held on the acquire
 *   block   blocking senders without SO_SNDTIMEO, asleep until the SA is
 *           there: in connect() (a socket that asked for it with
 *           IP_XFRM_RESOLVE_STRICT), in send() after a non-blocking
 *           connect(), or in an unconnected sendto()
 *   poll    non-blocking connected sockets: send() (EAGAIN), then one
 *           poll() for POLLOUT, then send()
 *   epoll   the same with one epoll_wait()
 *   tcp     blocking connect(), a few messages echoed, then a reset
 *
 * Every datagram carries its flow and its number ("larval:FLOW:SEQ:"), and
 * the far side's echo (larval-echo --order) appends in what place of its
 * flow it arrived there.  After the round it checks that no held packet
 * failed (every datagram echoed; XfrmOutLarvalFailed, XfrmOutLarvalOverflow
 * and XfrmOutNoStates did not move), no wait failed (no call failed, no
 * POLLOUT before the SA; XfrmOutLarvalWaitFailed did not move), no larval
 * state is left beside the SA, the key manager saw exactly one ACQUIRE per
 * larval state and one larval state per SA and family, no call was still
 * asleep --asleep-ms after the SA's NEWSA/UPDSA event, and each flow
 * arrived in the order it was sent.
 *
 * A round's plan is a function of --seed and the round's number alone, so
 * --first-round N replays round N's plan (the timing is the kernel's).
 * Nothing can hang: a call still asleep past its bound is interrupted by a
 * signal (there is no SO_SNDTIMEO to end it, by design: a sender the SA
 * does not wake is what this looks for), a worker that does not come back
 * ends the run with a bail-out naming its kernel stack, and an alarm bounds
 * each round from outside.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/ipsec.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG		"larval-stress"
#include "guest.h"
#include "rng.h"
#include "tap.h"
#include "xfrm-nl.h"

#define MAX_WORKERS	256	/* the echo's flow numbers: 256 a round */
#define MAX_SEQ		64	/* datagrams of one flow in a round */
#define HELD_BUDGET	80	/* held per acquire, under xfrm_resolve_qlen */
#define PAYLOAD_LEN	64
#define POLL_BOUND_MS	20000	/* one poll(): the monitor ends it first */
#define ACK_WAIT_MS	2000
#define KM_WAIT_MS	5000
#define STUCK_MS	3000	/* after the first signal: stuck for good */
#define MAX_ASLEEP_KEPT	4	/* asleep calls described per failed round */

enum kind { K_HELD, K_BLOCK, K_POLL, K_EPOLL, K_TCP, NKINDS };
static const char *const kind_names[NKINDS] = {
	"held", "block", "poll", "epoll", "tcp",
};

/* Where a blocking sender sleeps. */
enum block_way { B_CONNECT, B_SEND, B_SENDTO, NWAYS };
/* As messages name a worker's kind: a blocking one with where it sleeps. */
static const char *const block_kind_names[NWAYS] = {
	"block/connect", "block/send", "block/sendto",
};

/* The assertions, each a TAP point at the end; a round fails any of them. */
enum check { C_HELD, C_WAIT, C_LARVAL, C_ACQUIRE, C_STATES, C_ASLEEP,
	     C_ORDER, C_KEYED, NCHECKS };
static const char *const check_names[NCHECKS] = {
	"no held packet failed",
	"no wait failed",
	"no larval state outlived its SA",
	"one ACQUIRE per larval state",
	"one larval state per SA",
	"no sender asleep after the install",
	"per-flow order kept",
	"every round's SA installed",
};
static const char *const check_tags[NCHECKS] = {
	"held", "wait", "larval", "acquire", "states", "asleep", "order",
	"keyed",
};

static struct {
	const char *peer[2];		/* IPv4, IPv6; NULL: not used */
	long port;
	long tcp_port;
	const char *control;
	unsigned long long seed;
	long first_round;
	long rounds;
	long cpus;
	long per_cpu[NKINDS];
	long seconds;
	long reply_wait_ms;
	long asleep_ms;
	long max_failures;
	long progress;
	long round_bound_s;
	bool keyed;
	const char *peer_stat;		/* the far side's xfrm_stat, or NULL */
} opt = {
	.port = 7001,
	.tcp_port = 7001,
	.rounds = 100,
	.per_cpu = { 1, 2, 1, 1, 1 },
	.reply_wait_ms = 1000,
	.asleep_ms = 1000,
	.max_failures = 20,
	.progress = 100,
	.round_bound_s = 60,
};

/* ---- the plan of a round -------------------------------------------- */

static const unsigned int delays_ms[] = { 0, 1, 5, 50 };
static const unsigned int gaps_us[] = { 0, 50, 200, 1000 };

struct round_plan {
	unsigned long long n;
	unsigned int delay_ms;
	bool updsa;
	unsigned int families;		/* bit 0: IPv4, bit 1: IPv6 */
	unsigned int due;		/* of those, the ones due an ACQUIRE */
	unsigned int held_count;	/* datagrams per held stream */
	unsigned int held_gap_us;
};

struct worker_plan {
	int fam;			/* 0: IPv4, 1: IPv6 */
	enum block_way way;
	unsigned int sends;
	unsigned int jitter_us;
};

/* What the peers and the held-packet budget allow; set once. */
static unsigned int fam_avail;
/* --keyed: the families whose SA stays from an earlier round */
static unsigned int keyed_fams;
static unsigned int nworkers;
static unsigned int held_workers, tcp_workers;

/*
 * The stream of round @n (and of its worker @salt): the round's number
 * goes through the mixer first, so neighbouring rounds do not draw
 * neighbouring streams.
 */
static struct rng round_rng(unsigned long long n, unsigned int salt)
{
	struct rng k = { .s = n ^ ((uint64_t)salt << 48) };
	struct rng r = { .s = opt.seed ^ rng_next(&k) };

	return r;
}

static void plan_round(unsigned long long n, struct round_plan *p)
{
	struct rng r = round_rng(n, 0xffff);
	/* TCP's SYNs are held too, one a connection */
	unsigned int kmax = (HELD_BUDGET - tcp_workers) /
			    (held_workers ? held_workers : 1);
	unsigned int pick;

	p->n = n;
	p->delay_ms = delays_ms[below(&r, 4)];
	p->updsa = chance(&r, 33);
	/* one family or both; with both, each worker draws its own */
	pick = below(&r, 3);
	p->families = fam_avail == 3 ? pick + 1 : fam_avail;
	if (kmax > 16)
		kmax = 16;
	p->held_count = between(&r, 1, kmax ? kmax : 1);
	p->held_gap_us = gaps_us[below(&r, 4)];
}

static void plan_worker(const struct round_plan *p, unsigned int i,
			struct worker_plan *w)
{
	struct rng r = round_rng(p->n, i);

	w->fam = p->families == 3 ? (int)below(&r, 2) : p->families == 2;
	w->way = below(&r, NWAYS);
	w->sends = between(&r, 1, 4);
	w->jitter_us = below(&r, 201);
}

/* ---- workers -------------------------------------------------------- */

struct worker_result {
	unsigned int sent, replies, dups, foreign, reordered;
	bool sent_seq[MAX_SEQ + 1];
	unsigned int arr[MAX_SEQ + 1];	/* arrival index at the peer, 0: none */
	unsigned int send_errors;
	int send_err;			/* the first failed send's errno */
	int wait_err;			/* a call that may sleep failed */
	const char *wait_call;
	unsigned int eagain;		/* non-blocking send before the SA */
	unsigned int spurious;		/* POLLOUT, then EAGAIN */
	bool wait_timeout;		/* poll()'s own bound, no POLLOUT */
	bool tcp_mismatch;
	int setup_err;			/* socket() and the like: ours */
	uint64_t last_send_ns;
};

struct worker {
	pthread_t th;
	unsigned int index;
	int cpu;
	enum kind kind;
	_Atomic pid_t tid;
	_Atomic int pin_err;
	struct worker_plan plan;
	struct worker_result res;
	/* what the monitor reads while the round runs */
	_Atomic bool in_call;
	_Atomic uint64_t call_ns;
	_Atomic uint64_t call_end_ns;
	_Atomic(const char *) call;
	_Atomic bool done;
	/* what the monitor found */
	bool asleep;
	bool no_install;		/* asleep because no SA ever came */
	const char *asleep_call;
	double asleep_ms;		/* after the install (or the start) */
	uint64_t asleep_base_ns;	/* the install (or the start) */
	uint64_t signalled_ns;		/* the first signal */
	uint64_t kicked_ns;		/* the last one */
	char wchan[64];
	char stack[480];
};

static struct worker workers[MAX_WORKERS];

static const char *kind_of(const struct worker *w)
{
	return w->kind == K_BLOCK ? block_kind_names[w->plan.way] :
	       kind_names[w->kind];
}
static pthread_barrier_t prepare_bar, go_bar;
static atomic_bool quitting;

/* The round in progress, as the workers see it. */
static struct {
	struct round_plan plan;
	uint64_t start_ns;
	uint64_t cap_ns;		/* replies are not awaited past this */
	_Atomic uint64_t install_ns[2];	/* outbound SA event seen, per family */
	atomic_bool over;
} cur;

static struct sockaddr_storage peer_ss[2], tcp_ss[2];
static socklen_t peer_len[2], tcp_len[2];

static void on_sigusr1(int sig)
{
	(void)sig;		/* only there to end a call with EINTR */
}

static void call_begin(struct worker *w, const char *what)
{
	atomic_store(&w->call, what);
	atomic_store(&w->call_ns, tap_now_ns());
	atomic_store(&w->in_call, true);
}

static void call_end(struct worker *w)
{
	atomic_store(&w->call_end_ns, tap_now_ns());
	atomic_store(&w->in_call, false);
}

static unsigned long long flow_of(const struct worker *w)
{
	return cur.plan.n * MAX_WORKERS + w->index;
}

static size_t payload(const struct worker *w, unsigned int seq, char *buf)
{
	int n = snprintf(buf, PAYLOAD_LEN, "larval:%llu:%u:", flow_of(w), seq);

	memset(buf + n, 'x', PAYLOAD_LEN - n);
	return PAYLOAD_LEN;
}

/* Notes a send's outcome; @seq counts as sent when the kernel took it. */
static void note_send(struct worker *w, unsigned int seq, ssize_t r, int e)
{
	if (r >= 0) {
		w->res.sent++;
		w->res.sent_seq[seq] = true;
		w->res.last_send_ns = tap_now_ns();
		return;
	}
	if (!w->res.send_errors++)
		w->res.send_err = e;
}

static void note_wait_err(struct worker *w, const char *call, int e)
{
	if (w->res.wait_err)
		return;
	w->res.wait_err = e;
	w->res.wait_call = call;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Busy: a few microseconds of skew between the CPUs' starts. */
static void spin_us(unsigned int us)
{
	uint64_t end = tap_now_ns() + us * 1000ull;

	while (tap_now_ns() < end)
		;
}

static int udp_socket(struct worker *w, bool nonblock)
{
	int fam = w->plan.fam ? AF_INET6 : AF_INET;
	int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC |
			(nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		w->res.setup_err = errno;
	return fd;
}

static void set_blocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

static const struct sockaddr *peer_of(const struct worker *w)
{
	return (const struct sockaddr *)&peer_ss[w->plan.fam];
}

static void run_held(struct worker *w, int fd)
{
	char buf[PAYLOAD_LEN];
	unsigned int seq;

	for (seq = 1; seq <= cur.plan.held_count; seq++) {
		size_t len = payload(w, seq, buf);
		ssize_t r;

		if (seq > 1 && cur.plan.held_gap_us)
			sleep_us(cur.plan.held_gap_us);
		/* never expected to sleep: watched all the same */
		call_begin(w, "sendto");
		r = sendto(fd, buf, len, MSG_DONTWAIT, peer_of(w),
			   peer_len[w->plan.fam]);
		call_end(w);
		note_send(w, seq, r, errno);
	}
}

static void run_block(struct worker *w, int fd)
{
	const char *call = w->plan.way == B_SENDTO ? "sendto" : "send";
	char buf[PAYLOAD_LEN];
	unsigned int seq;

	if (w->plan.way == B_CONNECT) {
		/*
		 * Only a strict socket's blocking connect() sleeps.  Stock
		 * knows no such option (ENOPROTOOPT): its connect() returns
		 * at once, as it always did.
		 */
		int strict = XFRM_RESOLVE_STRICT;

		if (setsockopt(fd, w->plan.fam ? IPPROTO_IPV6 : IPPROTO_IP,
			       w->plan.fam ? IPV6_XFRM_RESOLVE : IP_XFRM_RESOLVE,
			       &strict, sizeof(strict)) < 0 &&
		    errno != ENOPROTOOPT) {
			note_wait_err(w, "setsockopt", errno);
			return;
		}
	}
	if (w->plan.way != B_SENDTO) {
		call_begin(w, "connect");
		if (connect(fd, peer_of(w), peer_len[w->plan.fam]) < 0 &&
		    errno != EINPROGRESS) {
			call_end(w);
			note_wait_err(w, "connect", errno);
			return;
		}
		call_end(w);
		if (w->plan.way == B_SEND)
			set_blocking(fd);
	}
	for (seq = 1; seq <= w->plan.sends; seq++) {
		size_t len = payload(w, seq, buf);
		ssize_t r;
		int e;

		call_begin(w, call);
		r = w->plan.way == B_SENDTO ?
		    sendto(fd, buf, len, 0, peer_of(w), peer_len[w->plan.fam]) :
		    send(fd, buf, len, 0);
		e = errno;
		call_end(w);
		if (r < 0) {
			/* a blocking send that fails is a wait that failed */
			note_wait_err(w, call, e);
			return;
		}
		note_send(w, seq, r, 0);
	}
}

/* Waits for POLLOUT once, with poll() or epoll: 1 when writable. */
static int wait_writable(struct worker *w, int fd, int ep)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct epoll_event ev;
	const char *call = ep >= 0 ? "epoll_wait" : "poll";
	int r, e, soe = 0;
	socklen_t sl = sizeof(soe);

	call_begin(w, call);
	r = ep >= 0 ? epoll_wait(ep, &ev, 1, POLL_BOUND_MS) :
		      poll(&p, 1, POLL_BOUND_MS);
	e = errno;
	call_end(w);
	if (r < 0) {
		note_wait_err(w, call, e);
		return 0;
	}
	if (!r) {
		w->res.wait_timeout = true;
		return 0;
	}
	if ((ep >= 0 ? ev.events & EPOLLERR : p.revents & POLLERR) &&
	    !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe, &sl) && soe) {
		note_wait_err(w, "SO_ERROR", soe);
		return 0;
	}
	return 1;
}

static void run_poll(struct worker *w, int fd, int ep)
{
	char buf[PAYLOAD_LEN];
	unsigned int seq = 1;
	bool waited = false;

	if (connect(fd, peer_of(w), peer_len[w->plan.fam]) < 0 &&
	    errno != EINPROGRESS) {
		note_wait_err(w, "connect", errno);
		return;
	}
	if (ep >= 0) {
		struct epoll_event ev = { .events = EPOLLOUT };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			w->res.setup_err = errno;
			return;
		}
	}
	while (seq <= w->plan.sends) {
		size_t len = payload(w, seq, buf);
		ssize_t r = send(fd, buf, len, MSG_DONTWAIT);

		if (r >= 0) {
			note_send(w, seq++, r, 0);
			continue;
		}
		if (errno != EAGAIN) {
			note_send(w, seq++, r, errno);
			continue;
		}
		/* EAGAIN before the wait is the contract; after it, a lie */
		if (!waited)
			w->res.eagain++;
		else if (++w->res.spurious > 3)
			return;
		if (!wait_writable(w, fd, ep))
			return;
		waited = true;
	}
}

static void tcp_reset_close(int fd)
{
	/* A reset now, not a FIN exchange that could outlive the round. */
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void run_tcp(struct worker *w, int fd)
{
	char want[MAX_SEQ * PAYLOAD_LEN], got[sizeof(want)];
	size_t n = 0, have = 0;
	unsigned int seq;

	call_begin(w, "connect");
	if (connect(fd, (struct sockaddr *)&tcp_ss[w->plan.fam],
		    tcp_len[w->plan.fam]) < 0) {
		int e = errno;

		call_end(w);
		note_wait_err(w, "connect", e);
		return;
	}
	call_end(w);
	for (seq = 1; seq <= w->plan.sends; seq++)
		n += payload(w, seq, want + n);
	if (send(fd, want, n, MSG_NOSIGNAL) != (ssize_t)n) {
		note_send(w, 1, -1, errno);
		return;
	}
	w->res.last_send_ns = tap_now_ns();
	while (have < n && !atomic_load(&cur.over)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 20) <= 0)
			continue;
		r = recv(fd, got + have, n - have, MSG_DONTWAIT);
		if (r <= 0)
			break;
		have += r;
	}
	/* TCP's own order: what comes back is what was sent, or it is lost */
	if (have < n || memcmp(want, got, n))
		w->res.tcp_mismatch = true;
}

/* Reads "larval:FLOW:SEQ:...:arr=N:ooo=B" replies until @fd is empty. */
static void read_replies(struct worker *w, int fd)
{
	char buf[PAYLOAD_LEN + 64];

	for (;;) {
		unsigned long long flow;
		unsigned int seq, arr;
		const char *a;
		int ooo;
		ssize_t r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (r < 0)
			return;
		buf[r] = '\0';
		if (sscanf(buf, "larval:%llu:%u:", &flow, &seq) != 2 ||
		    flow != flow_of(w) || !seq || seq > MAX_SEQ ||
		    !(a = strstr(buf, ":arr=")) ||
		    sscanf(a, ":arr=%u:ooo=%d", &arr, &ooo) != 2) {
			w->res.foreign++;
			continue;
		}
		if (w->res.arr[seq]) {
			w->res.dups++;
			continue;
		}
		w->res.arr[seq] = arr;
		w->res.replies++;
		if (ooo)
			w->res.reordered++;
	}
}

/* Until every datagram is echoed, or the reply wait after the SA is over. */
static void collect_replies(struct worker *w, int fd)
{
	while (w->res.replies < w->res.sent && !atomic_load(&cur.over)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t inst = atomic_load(&cur.install_ns[w->plan.fam]);
		uint64_t from = inst > w->res.last_send_ns ? inst :
				w->res.last_send_ns;
		uint64_t now = tap_now_ns();

		if (inst && now > from + opt.reply_wait_ms * 1000000ull)
			return;
		if (now > cur.cap_ns)
			return;
		if (poll(&p, 1, 10) > 0)
			read_replies(w, fd);
	}
}

/* One round of one worker: its sockets are made before the start. */
static void run_worker_round(struct worker *w)
{
	int fd, ep = -1;

	memset(&w->res, 0, sizeof(w->res));
	switch (w->kind) {
	case K_HELD:
	case K_POLL:
	case K_EPOLL:
		fd = udp_socket(w, true);
		break;
	case K_BLOCK:
		fd = udp_socket(w, w->plan.way == B_SEND);
		break;
	default:
		fd = socket(w->plan.fam ? AF_INET6 : AF_INET,
			    SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			w->res.setup_err = errno;
	}
	if (w->kind == K_EPOLL && fd >= 0 &&
	    (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		w->res.setup_err = errno;
	pthread_barrier_wait(&go_bar);
	if (w->res.setup_err)
		goto out;
	spin_us(w->plan.jitter_us);
	switch (w->kind) {
	case K_HELD: run_held(w, fd); break;
	case K_BLOCK: run_block(w, fd); break;
	case K_POLL: run_poll(w, fd, -1); break;
	case K_EPOLL: run_poll(w, fd, ep); break;
	case K_TCP: run_tcp(w, fd); break;
	case NKINDS: break;
	}
	if (w->kind != K_TCP)
		collect_replies(w, fd);
out:
	if (ep >= 0)
		close(ep);
	if (fd >= 0 && w->kind == K_TCP)
		tcp_reset_close(fd);
	else if (fd >= 0)
		close(fd);
	atomic_store(&w->done, true);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		atomic_store(&w->pin_err, errno);
	/* last: the main thread reads pin_err once it sees the tid */
	atomic_store(&w->tid, gettid());
	for (;;) {
		pthread_barrier_wait(&prepare_bar);
		if (atomic_load(&quitting))
			return NULL;
		run_worker_round(w);
	}
}

static void start_workers(void)
{
	unsigned int i = 0, c, k, j;

	for (c = 0; c < opt.cpus; c++)
		for (k = 0; k < NKINDS; k++)
			for (j = 0; j < opt.per_cpu[k]; j++) {
				workers[i].index = i;
				workers[i].cpu = c;
				workers[i].kind = k;
				i++;
			}
	nworkers = i;
	held_workers = opt.cpus * opt.per_cpu[K_HELD];
	tcp_workers = opt.cpus * opt.per_cpu[K_TCP];
	if (pthread_barrier_init(&prepare_bar, NULL, nworkers + 1) ||
	    pthread_barrier_init(&go_bar, NULL, nworkers + 1))
		tap_bail_out("pthread_barrier_init failed");
	for (i = 0; i < nworkers; i++)
		if (pthread_create(&workers[i].th, NULL, worker_main,
				   &workers[i]))
			tap_bail_out("pthread_create failed for worker %u", i);
}

/* ---- netlink: the flush, the SA events, the larval states left ----- */

static int nl_req = -1, nl_ev = -1;

static int nl_socket(const unsigned int *groups, int ngroups)
{
	const struct xfrm_nl_cfg cfg = {
		.rcvbuf = 1 << 20, .ext_ack = true,
		.groups = groups, .ngroups = ngroups,
	};
	struct xfrm_nl_fail fail;
	int fd = xfrm_nl_open(&cfg, &fail);

	if (fd < 0)
		tap_bail_out("%s(NETLINK_XFRM) %u: %s", fail.call, fail.group,
			     strerror(errno));
	return fd;
}

static int flush_sas(void)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_flush *f;

	f = xfrm_nl_start(&req, XFRM_MSG_FLUSHSA, sizeof(*f));
	f->proto = IPSEC_PROTO_ANY;
	return xfrm_nl_request(nl_req, &req.n, ACK_WAIT_MS, NULL, NULL);
}

static bool is_peer(int fam, const xfrm_address_t *a)
{
	const struct sockaddr_storage *ss = &peer_ss[fam];

	if (!opt.peer[fam])
		return false;
	return fam ? !memcmp(a, &((const struct sockaddr_in6 *)ss)->sin6_addr,
			     16) :
		     !memcmp(a, &((const struct sockaddr_in *)ss)->sin_addr, 4);
}

/* The outbound SA's NEWSA or UPDSA event: the moment a round is keyed. */
static void read_sa_events(int wait_ms)
{
	static char buf[XFRM_NL_BUF] __attribute__((aligned(8)));
	struct pollfd p = { .fd = nl_ev, .events = POLLIN };

	if (poll(&p, 1, wait_ms) <= 0)
		return;
	for (;;) {
		ssize_t r = recv(nl_ev, buf, sizeof(buf), MSG_DONTWAIT);
		uint64_t t = tap_now_ns();
		struct nlmsghdr *h;

		if (r < 0)
			return;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			const struct xfrm_usersa_info *sa = NLMSG_DATA(h);
			int fam;

			if ((h->nlmsg_type != XFRM_MSG_NEWSA &&
			     h->nlmsg_type != XFRM_MSG_UPDSA) ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*sa)))
				continue;
			fam = sa->family == AF_INET6;
			if (is_peer(fam, &sa->id.daddr) &&
			    !atomic_load(&cur.install_ns[fam]))
				atomic_store(&cur.install_ns[fam], t);
		}
	}
}

struct larval_count {
	unsigned int left;
	char first[160];
};

/* A larval (acquire) state has no key: SPI 0, or no algorithm at all. */
static void count_larval(const struct nlmsghdr *h, void *arg)
{
	const struct xfrm_usersa_info *sa = NLMSG_DATA(h);
	struct larval_count *c = arg;
	const struct rtattr *rta;
	bool keyed = false;
	char a[INET6_ADDRSTRLEN];
	int rem;

	if (h->nlmsg_type != XFRM_MSG_NEWSA ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(*sa)))
		return;
	rta = xfrm_nl_attrs(h, sizeof(*sa), &rem);
	for (; RTA_OK(rta, rem); rta = RTA_NEXT(rta, rem))
		keyed |= rta->rta_type == XFRMA_ALG_AEAD ||
			 rta->rta_type == XFRMA_ALG_CRYPT ||
			 rta->rta_type == XFRMA_ALG_AUTH;
	if (sa->id.spi && keyed)
		return;
	if (!c->left++) {
		inet_ntop(sa->family, &sa->id.daddr, a, sizeof(a));
		snprintf(c->first, sizeof(c->first),
			 "dst %s spi 0x%08x seq %u reqid %u", a,
			 ntohl(sa->id.spi), sa->seq, sa->reqid);
	}
}

static int larval_states(struct larval_count *c)
{
	union xfrm_nl_msg req;

	memset(c, 0, sizeof(*c));
	/* a dump takes no body, as ip(8) sends it: the kernel parses none */
	xfrm_nl_start(&req, XFRM_MSG_GETSA, 0);
	return xfrm_nl_dump(nl_req, &req.n, ACK_WAIT_MS, count_larval, c);
}

/* ---- /proc/net/xfrm_stat ------------------------------------------- */

#define STATS(X)				\
	X(XfrmOutNoStates)			\
	X(XfrmOutLarvalHeld)			\
	X(XfrmOutLarvalReleased)		\
	X(XfrmOutLarvalOverflow)		\
	X(XfrmOutLarvalFailed)			\
	X(XfrmOutLarvalWait)			\
	X(XfrmOutLarvalWaitResolved)		\
	X(XfrmOutLarvalWaitFailed)		\
	X(XfrmInError)				\
	X(XfrmInNoStates)			\
	X(XfrmInStateProtoError)		\
	X(XfrmInStateSeqError)			\
	X(XfrmInTmplMismatch)			\
	X(XfrmInNoPols)

#define X_ENUM(name) S_##name,
enum xstat { STATS(X_ENUM) NSTATS };
#undef X_ENUM
#define X_NAME(name) #name,
static const char *const stat_names[NSTATS] = { STATS(X_NAME) };
#undef X_NAME
/* The far side's counters worth a look: what it refused of ours. */
#define FIRST_IN	S_XfrmInError

struct stats {
	bool have[NSTATS];
	unsigned long long v[NSTATS];
};

/* @path: /proc/net/xfrm_stat here, /proc/PID/net/xfrm_stat elsewhere. */
static void read_stats_of(const char *path, struct stats *s)
{
	FILE *f = fopen(path, "r");
	char name[64];
	unsigned long long v;
	int i;

	memset(s, 0, sizeof(*s));
	if (!f)
		return;
	while (fscanf(f, "%63s %llu", name, &v) == 2)
		for (i = 0; i < NSTATS; i++)
			if (!strcmp(name, stat_names[i])) {
				s->have[i] = true;
				s->v[i] = v;
			}
	fclose(f);
}

static void read_stats(struct stats *s)
{
	read_stats_of("/proc/net/xfrm_stat", s);
}

/*
 * Failed held packets are counted from a work item: read until two reads
 * 5 ms apart agree, so that a round's count does not land in the next.
 */
static void read_stats_settled(struct stats *s)
{
	struct stats again;
	int tries;

	read_stats(s);
	for (tries = 0; tries < 20; tries++) {
		sleep_us(5000);
		read_stats(&again);
		if (!memcmp(s, &again, sizeof(again)))
			return;
		*s = again;
	}
}

static long long stat_delta(const struct stats *a, const struct stats *b,
			    enum xstat i)
{
	return b->have[i] ? (long long)(b->v[i] - a->v[i]) : 0;
}

/* ---- the key manager's rounds --------------------------------------- */

static int km_fd = -1;

struct km_report {
	unsigned long long acquires, states, max_per_state, acq[2];
	unsigned long long installs, errors, pending, stray, duplicates;
	char out_err[16];
	char seqs[160];
};

static void km_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(opt.control) >= sizeof(sa.sun_path))
		die_usage("--control: path too long");
	strcpy(sa.sun_path, opt.control);
	km_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (km_fd < 0 || connect(km_fd, (struct sockaddr *)&sa, sizeof(sa)))
		tap_bail_out("key manager control %s: %s", opt.control,
			     strerror(errno));
}

/* One request, one answer, bounded: a dead key manager ends the run. */
static void km_ask(const char *q, char *a, size_t alen)
{
	struct pollfd p = { .fd = km_fd, .events = POLLIN };
	ssize_t r;

	if (send(km_fd, q, strlen(q), MSG_NOSIGNAL) < 0)
		tap_bail_out("key manager: send: %s", strerror(errno));
	if (poll(&p, 1, KM_WAIT_MS) <= 0)
		tap_bail_out("key manager: no answer to '%s' in %d ms", q,
			     KM_WAIT_MS);
	r = recv(km_fd, a, alen - 1, 0);
	if (r <= 0)
		tap_bail_out("key manager: gone (%s)",
			     r ? strerror(errno) : "eof");
	a[r] = '\0';
}

static unsigned long long field(const char *s, const char *key)
{
	char k[32];
	const char *p;

	snprintf(k, sizeof(k), " %s=", key);
	p = strstr(s, k);
	return p ? strtoull(p + strlen(k), NULL, 10) : 0;
}

static void field_str(const char *s, const char *key, char *out, size_t n)
{
	char k[32];
	const char *p;
	size_t l;

	snprintf(k, sizeof(k), " %s=", key);
	p = strstr(s, k);
	out[0] = '\0';
	if (!p)
		return;
	p += strlen(k);
	l = strcspn(p, " ");
	snprintf(out, n, "%.*s", (int)l, p);
}

static void km_open_round(const struct round_plan *p)
{
	char q[96], a[96], want[32];

	snprintf(q, sizeof(q), "ROUND %llu delay_ms=%u method=%s", p->n,
		 p->delay_ms, p->updsa ? "updsa" : "newsa");
	km_ask(q, a, sizeof(a));
	snprintf(want, sizeof(want), "OK %llu", p->n);
	if (strcmp(a, want))
		tap_bail_out("key manager: '%s' answered '%s'", q, a);
}

static void km_end_round(unsigned long long n, struct km_report *r)
{
	char q[32], a[768];

	snprintf(q, sizeof(q), "END %llu", n);
	km_ask(q, a, sizeof(a));
	if (strncmp(a, "REPORT ", 7))
		tap_bail_out("key manager: '%s' answered '%s'", q, a);
	r->acquires = field(a, "acquires");
	r->states = field(a, "states");
	r->max_per_state = field(a, "max_per_state");
	r->acq[0] = field(a, "acq4");
	r->acq[1] = field(a, "acq6");
	r->installs = field(a, "installs");
	r->errors = field(a, "errors");
	r->pending = field(a, "pending");
	r->stray = field(a, "stray");
	r->duplicates = field(a, "duplicates");
	field_str(a, "out_err", r->out_err, sizeof(r->out_err));
	field_str(a, "seqs", r->seqs, sizeof(r->seqs));
}

/* ---- the monitor ------------------------------------------------------ */

static void read_task_file(pid_t tid, const char *what, char *out, size_t n)
{
	char path[64];
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", tid, what);
	out[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	len = fread(out, 1, n - 1, f);
	out[len] = '\0';
	fclose(f);
}

/* A call asleep past its bound: say where it sleeps, then wake it. */
static void catch_asleep(struct worker *w, uint64_t base, bool no_install,
			 uint64_t now)
{
	pid_t tid = atomic_load(&w->tid);

	w->asleep = true;
	w->no_install = no_install;
	w->asleep_call = atomic_load(&w->call);
	w->asleep_ms = tap_ns_to_ms(now - base);
	w->asleep_base_ns = base;
	read_task_file(tid, "wchan", w->wchan, sizeof(w->wchan));
	read_task_file(tid, "stack", w->stack, sizeof(w->stack));
	w->signalled_ns = now;
	w->kicked_ns = now;
	pthread_kill(w->th, SIGUSR1);
}

static __attribute__((noreturn)) void bail_stuck(const struct worker *w)
{
	tap_diag("worker %u (%s, cpu %d) still in %s %.0f ms after it was "
		 "signalled; wchan %s", w->index, kind_of(w), w->cpu,
		 w->asleep_call, tap_ns_to_ms(tap_now_ns() - w->signalled_ns),
		 w->wchan);
	tap_diag("kernel stack: %s", w->stack);
	tap_bail_out("round %llu: worker %u stuck in %s, signals do not end "
		     "it", cur.plan.n, w->index, w->asleep_call);
}

/* Watches the workers until all are done: SA events, calls asleep too long. */
static void monitor_round(void)
{
	const uint64_t asleep_ns = opt.asleep_ms * 1000000ull;

	for (;;) {
		unsigned int i, done = 0;
		uint64_t now;

		read_sa_events(2);
		now = tap_now_ns();
		if (now > cur.cap_ns)
			atomic_store(&cur.over, true);
		for (i = 0; i < nworkers; i++) {
			struct worker *w = &workers[i];
			uint64_t inst, base, since;

			if (atomic_load(&w->done)) {
				done++;
				continue;
			}
			if (!atomic_load(&w->in_call))
				continue;
			if (w->asleep) {
				if (now > w->signalled_ns +
					  STUCK_MS * 1000000ull)
					bail_stuck(w);
				/* one signal may come between two calls */
				if (now > w->kicked_ns + 500000000ull) {
					w->kicked_ns = now;
					pthread_kill(w->th, SIGUSR1);
				}
				continue;
			}
			inst = atomic_load(&cur.install_ns[w->plan.fam]);
			since = atomic_load(&w->call_ns);
			base = inst > since ? inst : since;
			if (inst && now > base + asleep_ns)
				catch_asleep(w, inst, false, now);
			else if (!inst && now > cur.cap_ns)
				catch_asleep(w, cur.start_ns, true, now);
		}
		if (done == nworkers)
			return;
		if (now > cur.cap_ns + STUCK_MS * 1000000ull)
			tap_bail_out("round %llu: %u of %u workers still "
				     "running %d ms past the round's bound",
				     cur.plan.n,
				     nworkers - done, nworkers, STUCK_MS);
	}
}

/* ---- judging a round ------------------------------------------------- */

struct verdict {
	bool fail[NCHECKS];
	char problems[1024];
	size_t len;
};

static __attribute__((format(printf, 3, 4)))
void flag(struct verdict *v, enum check c, const char *fmt, ...)
{
	va_list ap;

	v->fail[c] = true;
	if (v->len >= sizeof(v->problems) - 2)
		return;
	if (v->len)
		v->len += snprintf(v->problems + v->len,
				   sizeof(v->problems) - v->len, "; ");
	va_start(ap, fmt);
	v->len += vsnprintf(v->problems + v->len, sizeof(v->problems) - v->len,
			    fmt, ap);
	va_end(ap);
	if (v->len > sizeof(v->problems) - 1)
		v->len = sizeof(v->problems) - 1;
}

/* The arrival places of @w's flow, in sending order: "1,3,2", '-' lost. */
static void arrivals(const struct worker *w, char *out, size_t n)
{
	size_t len = 0;
	unsigned int s;
	char place[12];

	out[0] = '\0';
	for (s = 1; s <= MAX_SEQ && len < n - 12; s++) {
		if (!w->res.sent_seq[s])
			continue;
		snprintf(place, sizeof(place), "%u", w->res.arr[s]);
		len += snprintf(out + len, n - len, "%s%s", len ? "," : "",
				w->res.arr[s] ? place : "-");
	}
}

struct round_totals {
	unsigned int lost[NKINDS], sent[NKINDS], reordered_by[NKINDS];
	unsigned int send_errors, wait_errors, spurious, timeouts;
	unsigned int reordered, tcp_mismatch, asleep, foreign;
	const struct worker *first_reorder, *first_wait_err, *first_send_err;
};

static void sum_workers(struct round_totals *t)
{
	unsigned int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < nworkers; i++) {
		const struct worker *w = &workers[i];
		const struct worker_result *r = &w->res;
		/* an EINTR that ended a call the monitor caught is its fault */
		bool our_eintr = w->asleep && r->wait_err == EINTR;

		t->sent[w->kind] += r->sent;
		if (w->kind != K_TCP)
			t->lost[w->kind] += r->sent - r->replies;
		if (r->send_errors && !t->send_errors)
			t->first_send_err = w;
		t->send_errors += r->send_errors;
		if (r->wait_err && !our_eintr && !t->wait_errors++)
			t->first_wait_err = w;
		t->spurious += r->spurious;
		t->timeouts += r->wait_timeout && !w->asleep;
		if (r->reordered && !t->reordered)
			t->first_reorder = w;
		t->reordered += r->reordered;
		t->reordered_by[w->kind] += r->reordered;
		t->tcp_mismatch += r->tcp_mismatch;
		t->asleep += w->asleep;
		t->foreign += r->foreign + r->dups;
	}
}

/* @f: the counters once the round's states were flushed after it. */
static void judge_packets(const struct round_totals *t,
			  const struct stats *b, const struct stats *a,
			  const struct stats *f, struct verdict *v)
{
	unsigned int k, lost = 0;
	long long d;

	for (k = 0; k < NKINDS; k++)
		lost += t->lost[k];
	if (lost)
		flag(v, C_HELD, "%u datagrams never echoed (held %u, block %u, "
		     "poll %u, epoll %u)", lost, t->lost[K_HELD],
		     t->lost[K_BLOCK], t->lost[K_POLL], t->lost[K_EPOLL]);
	if (t->send_errors)
		flag(v, C_HELD, "%u sends failed (first: %s, %s worker %u)",
		     t->send_errors,
		     errno_name(t->first_send_err->res.send_err),
		     kind_of(t->first_send_err),
		     t->first_send_err->index);
	if ((d = stat_delta(b, a, S_XfrmOutLarvalFailed)))
		flag(v, C_HELD, "XfrmOutLarvalFailed +%lld", d);
	if ((d = stat_delta(b, a, S_XfrmOutLarvalOverflow)))
		flag(v, C_HELD, "XfrmOutLarvalOverflow +%lld", d);
	if ((d = stat_delta(b, a, S_XfrmOutNoStates)))
		flag(v, C_HELD, "XfrmOutNoStates +%lld", d);
	/* held on a larval state nothing resolved: failed by the flush */
	if ((d = stat_delta(a, f, S_XfrmOutLarvalFailed)))
		flag(v, C_HELD, "%lld held packets still queued when the "
		     "round's states were flushed", d);
	if (t->reordered) {
		char arr[160];

		arrivals(t->first_reorder, arr, sizeof(arr));
		flag(v, C_ORDER, "%u datagrams arrived after a later one of "
		     "their flow (held %u, block %u, poll %u, epoll %u; first: "
		     "%s worker %u, arrival places %s)", t->reordered,
		     t->reordered_by[K_HELD], t->reordered_by[K_BLOCK],
		     t->reordered_by[K_POLL], t->reordered_by[K_EPOLL],
		     kind_of(t->first_reorder), t->first_reorder->index, arr);
	}
	if (t->tcp_mismatch)
		flag(v, C_ORDER, "%u TCP connections echoed other bytes than "
		     "they sent", t->tcp_mismatch);
}

static void judge_waits(const struct round_totals *t, const struct stats *b,
			const struct stats *a, struct verdict *v)
{
	unsigned int i, kept = 0;
	long long d;

	if (t->wait_errors)
		flag(v, C_WAIT, "%u calls failed (first: %s %s, %s worker %u)",
		     t->wait_errors, t->first_wait_err->res.wait_call,
		     errno_name(t->first_wait_err->res.wait_err),
		     kind_of(t->first_wait_err),
		     t->first_wait_err->index);
	if (t->spurious)
		flag(v, C_WAIT, "%u sends said EAGAIN after POLLOUT",
		     t->spurious);
	if (t->timeouts)
		flag(v, C_WAIT, "%u waits for POLLOUT ran out (%d ms)",
		     t->timeouts, POLL_BOUND_MS);
	if ((d = stat_delta(b, a, S_XfrmOutLarvalWaitFailed)))
		flag(v, C_WAIT, "XfrmOutLarvalWaitFailed +%lld", d);
	for (i = 0; i < nworkers && t->asleep; i++) {
		const struct worker *w = &workers[i];
		double back = tap_ns_to_ms(atomic_load(&w->call_end_ns) -
					   w->asleep_base_ns);

		if (!w->asleep || kept++ >= MAX_ASLEEP_KEPT)
			continue;
		/* a lost wake-up sleeps until the signal; a slow one returns */
		flag(v, C_ASLEEP, "%s worker %u (cpu %d, IPv%d) in %s %.0f ms "
		     "after %s, wchan %s, %s %.0f ms after it",
		     kind_of(w), w->index, w->cpu,
		     w->plan.fam ? 6 : 4, w->asleep_call, w->asleep_ms,
		     w->no_install ? "the round's start, no SA installed" :
		     "the install", *w->wchan ? w->wchan : "?",
		     w->res.wait_err == EINTR ? "ended by a signal" :
		     "returned by itself", back);
	}
}

static void judge_keying(const struct km_report *km,
			 const struct larval_count *lc, int dump_err,
			 struct verdict *v)
{
	const struct round_plan *p = &cur.plan;
	unsigned int f;

	for (f = 0; f < 2; f++) {
		unsigned long long want = (p->due >> f) & 1;

		/*
		 * Two larval states for one SA (lookups racing on two CPUs,
		 * or one made after the SA replaced the first) are two
		 * ACQUIREs: two negotiations for a real key manager.
		 */
		if (km->acq[f] != want)
			flag(v, C_STATES, "%llu larval states (ACQUIREs) for "
			     "the IPv%d SA, expected %llu "
			     "(family/seq:ACQUIREs %s)",
			     km->acq[f], f ? 6 : 4, want, km->seqs);
		if (want && !atomic_load(&cur.install_ns[f]))
			flag(v, C_KEYED, "no NEWSA/UPDSA event for the IPv%d "
			     "SA (key manager: out_err=%s, errors %llu)",
			     f ? 6 : 4, km->out_err, km->errors);
	}
	if (km->max_per_state > 1)
		flag(v, C_ACQUIRE, "a larval state got %llu ACQUIREs (%s)",
		     km->max_per_state, km->seqs);
	if (km->stray)
		flag(v, C_ACQUIRE, "%llu ACQUIREs between rounds", km->stray);
	if (dump_err)
		flag(v, C_LARVAL, "dumping the SAs failed: %s",
		     errno_name(dump_err));
	else if (lc->left)
		flag(v, C_LARVAL, "%u larval states left beside the SA (first: "
		     "%s)", lc->left, lc->first);
}

/* ---- reporting -------------------------------------------------------- */

static struct {
	unsigned long rounds, failed;
	unsigned long fails[NCHECKS];
	unsigned long long first_fail[NCHECKS];
	long long fail_rounds[NCHECKS][16];
	unsigned long long first_failed;
	unsigned long long stat[NSTATS];
	bool have_stats;
	double max_install_ms;
} tot;

static void report_round(const struct verdict *v, const struct stats *b,
			 const struct stats *a, const struct stats *fl,
			 const struct stats *pb, const struct stats *pa,
			 const struct km_report *km,
			 const struct larval_count *lc,
			 const struct round_totals *t)
{
	const struct round_plan *p = &cur.plan;
	char tags[64] = "", name[48];
	size_t len = 0;
	int c, i, f;

	for (c = 0; c < NCHECKS; c++)
		if (v->fail[c])
			len += snprintf(tags + len, sizeof(tags) - len, "%s%s",
					len ? "," : "", check_tags[c]);
	tap_not_ok("round %llu", p->n);
	tap_yaml_begin();
	tap_yaml_uint("round", p->n);
	tap_yaml_str("failed", tags);
	tap_yaml_str("problems", v->problems);
	tap_yaml_int("delay_ms", p->delay_ms);
	tap_yaml_str("method", p->updsa ? "updsa" : "newsa");
	tap_yaml_int("families", p->families);
	tap_yaml_int("families_due", p->due);
	tap_yaml_int("held_count", p->held_count);
	tap_yaml_int("held_gap_us", p->held_gap_us);
	for (f = 0; f < 2; f++) {
		uint64_t inst = atomic_load(&cur.install_ns[f]);

		snprintf(name, sizeof(name), "install_ms_%d", f ? 6 : 4);
		tap_yaml_double(name, inst ? tap_ns_to_ms(inst - cur.start_ns) :
				NAN);
	}
	for (i = 0; i < NSTATS; i++) {
		if (!a->have[i])
			continue;
		snprintf(name, sizeof(name), "d_%s", stat_names[i]);
		tap_yaml_int(name, stat_delta(b, a, i));
	}
	/* what the far side refused, to tell a drop there from one here */
	for (i = FIRST_IN; i < NSTATS; i++) {
		if (!pa->have[i])
			continue;
		snprintf(name, sizeof(name), "peer_d_%s", stat_names[i]);
		tap_yaml_int(name, stat_delta(pb, pa, i));
	}
	tap_yaml_int("flush_failed", stat_delta(a, fl, S_XfrmOutLarvalFailed));
	tap_yaml_int("acquires", km->acquires);
	tap_yaml_int("acq4", km->acq[0]);
	tap_yaml_int("acq6", km->acq[1]);
	tap_yaml_int("larval_states", km->states);
	tap_yaml_int("max_per_state", km->max_per_state);
	tap_yaml_str("acquire_seqs", km->seqs);
	tap_yaml_int("stray_acquires", km->stray);
	tap_yaml_int("km_errors", km->errors);
	/* second larval states of an SA in already: left to the kernel */
	tap_yaml_int("km_duplicates", km->duplicates);
	tap_yaml_int("larval_left", lc->left);
	for (i = 0; i < NKINDS; i++) {
		snprintf(name, sizeof(name), "lost_%s", kind_names[i]);
		tap_yaml_int(name, t->lost[i]);
	}
	tap_yaml_int("reordered", t->reordered);
	tap_yaml_int("asleep", t->asleep);
	tap_yaml_int("wait_errors", t->wait_errors);
	tap_yaml_int("send_errors", t->send_errors);
	for (i = 0; i < (int)nworkers; i++) {
		const struct worker *w = &workers[i];

		if (!w->asleep || !*w->stack)
			continue;
		/* the first sleeper's stack: where wakes go missing */
		tap_yaml_str("asleep_stack", w->stack);
		break;
	}
	tap_yaml_end();
}

static void account(const struct verdict *v, const struct stats *b,
		    const struct stats *a)
{
	bool failed = false;
	int c, i;

	tot.rounds++;
	for (i = 0; i < NSTATS; i++) {
		tot.stat[i] += stat_delta(b, a, i);
		tot.have_stats |= a->have[i];
	}
	for (c = 0; c < NCHECKS; c++) {
		if (!v->fail[c])
			continue;
		if (tot.fails[c] < 16)
			tot.fail_rounds[c][tot.fails[c]] = cur.plan.n;
		if (!tot.fails[c]++)
			tot.first_fail[c] = cur.plan.n;
		failed = true;
	}
	if (failed && !tot.failed++)
		tot.first_failed = cur.plan.n;
}

static void run_round(unsigned long long n)
{
	struct stats before, after, flushed, peer_before = { 0 }, peer_after;
	struct km_report km;
	struct larval_count lc;
	struct round_totals t;
	struct verdict v = { 0 };
	unsigned int i, used;
	int err, dump_err;

	plan_round(n, &cur.plan);
	used = 0;
	for (i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		plan_worker(&cur.plan, i, &w->plan);
		used |= 1u << w->plan.fam;
		w->asleep = w->no_install = false;
		atomic_store(&w->done, false);
		atomic_store(&w->in_call, false);
	}
	/* what the workers drew: one ACQUIRE is due for each, none else */
	cur.plan.families = used;
	cur.plan.due = used & ~keyed_fams;
	alarm(opt.round_bound_s);
	/* empty already, unless the last round bailed out: no SA, no acquire */
	if (!opt.keyed || !tot.rounds) {
		err = flush_sas();
		if (err)
			tap_bail_out("round %llu: flushing the SAs: %s", n,
				     errno_name(err));
	}
	read_sa_events(0);
	km_open_round(&cur.plan);
	read_stats(&before);
	if (opt.peer_stat)
		read_stats_of(opt.peer_stat, &peer_before);
	atomic_store(&cur.install_ns[0], 0);
	atomic_store(&cur.install_ns[1], 0);
	atomic_store(&cur.over, false);
	pthread_barrier_wait(&prepare_bar);
	cur.start_ns = tap_now_ns();
	cur.cap_ns = cur.start_ns + (cur.plan.delay_ms + opt.reply_wait_ms +
				     opt.asleep_ms + 2000) * 1000000ull;
	pthread_barrier_wait(&go_bar);
	monitor_round();
	read_sa_events(0);
	read_stats_settled(&after);
	memset(&peer_after, 0, sizeof(peer_after));
	if (opt.peer_stat)
		read_stats_of(opt.peer_stat, &peer_after);
	km_end_round(n, &km);
	dump_err = larval_states(&lc);
	/* what is left goes now, its held packets counted to this round */
	err = opt.keyed ? 0 : flush_sas();
	if (err)
		tap_bail_out("round %llu: flushing the SAs after it: %s", n,
			     errno_name(err));
	read_stats_settled(&flushed);
	if (opt.keyed)
		keyed_fams |= used;

	for (i = 0; i < nworkers; i++)
		if (workers[i].res.setup_err)
			tap_bail_out("round %llu: worker %u: setting up its "
				     "socket: %s", n, i,
				     strerror(workers[i].res.setup_err));
	sum_workers(&t);
	judge_packets(&t, &before, &after, &flushed, &v);
	judge_waits(&t, &before, &after, &v);
	judge_keying(&km, &lc, dump_err, &v);
	account(&v, &before, &flushed);
	for (i = 0; i < 2; i++) {
		uint64_t inst = atomic_load(&cur.install_ns[i]);
		double ms = inst ? tap_ns_to_ms(inst - cur.start_ns) : 0;

		if (ms > tot.max_install_ms)
			tot.max_install_ms = ms;
	}
	if (v.len)
		report_round(&v, &before, &after, &flushed, &peer_before,
			     &peer_after, &km, &lc, &t);
}

static void report_checks(void)
{
	int c;

	for (c = 0; c < NCHECKS; c++) {
		unsigned int k = tot.fails[c] < 16 ? tot.fails[c] : 16;

		tap_result(!tot.fails[c], "%s", check_names[c]);
		tap_yaml_begin();
		tap_yaml_int("failed_rounds", tot.fails[c]);
		tap_yaml_int("first_round", tot.fails[c] ?
			     (long long)tot.first_fail[c] : -1);
		tap_yaml_int_seq("rounds", tot.fail_rounds[c], k);
		if (c == C_ASLEEP)
			tap_yaml_int("asleep_ms", opt.asleep_ms);
		tap_yaml_end();
	}
}

static void report_summary(const char *stopped, uint64_t t0)
{
	double ms = tap_ns_to_ms(tap_now_ns() - t0);
	char name[48];
	int i;

	tap_ok("summary");
	tap_yaml_begin();
	tap_yaml_uint("seed", opt.seed);
	tap_yaml_uint("first_round", opt.first_round);
	tap_yaml_int("rounds_planned", opt.rounds);
	tap_yaml_int("rounds", tot.rounds);
	tap_yaml_int("failed_rounds", tot.failed);
	tap_yaml_int("first_failed_round", tot.failed ?
		     (long long)tot.first_failed : -1);
	tap_yaml_str("stopped", stopped);
	tap_yaml_int("cpus", opt.cpus);
	tap_yaml_int("workers", nworkers);
	tap_yaml_double("elapsed_ms", ms);
	tap_yaml_double("ms_per_round", tot.rounds ? ms / tot.rounds : NAN);
	tap_yaml_double("max_install_ms", tot.max_install_ms);
	tap_yaml_bool("xfrm_stat", tot.have_stats);
	for (i = 0; i < NSTATS; i++) {
		snprintf(name, sizeof(name), "total_%s", stat_names[i]);
		tap_yaml_uint(name, tot.stat[i]);
	}
	tap_yaml_end();
}

/* ---- arguments and main ---------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --control PATH [--peer4 ADDR] [--peer6 ADDR] [options]\n"
"\n"
"Rounds of concurrent senders on one acquire per family, against\n"
"larval-km --control PATH and larval-echo --order; print TAP 14.\n"
"\n"
"  --control PATH      larval-km's control socket (required)\n"
"  --peer4/--peer6 A   the far host (at least one)\n"
"  --port P            its larval-echo --order (UDP; default 7001)\n"
"  --tcp-port P        its TCP echo (default 7001)\n"
"  --seed S            the plan's seed (default 0)\n"
"  --rounds N          rounds to run (default 100)\n"
"  --first-round N     number of the first round (default 0): a round's\n"
"                      plan depends on the seed and its number only\n"
"  --cpus N            workers on CPUs 0..N-1 (default: every CPU online)\n"
"  --held/--block/--poll/--epoll/--tcp N\n"
"                      workers of each kind per CPU (default 1 2 1 1 1)\n"
"  --seconds N         start no round after N s (default 0: no bound)\n"
"  --reply-wait-ms N   wait N ms after the install for echoes (default 1000)\n"
"  --asleep-ms N       a call still asleep N ms after the install fails the\n"
"                      round (default 1000), and is then interrupted\n"
"  --max-failures N    stop after N failed rounds (default 20, 0: never)\n"
"  --progress N        a '# progress' line every N rounds (default 100)\n"
"  --round-bound-s N   an alarm ends the program when one round takes\n"
"                      N s (default 60)\n"
"  --peer-stat FILE    the far side's xfrm_stat (/proc/PID/net/xfrm_stat of\n"
"                      a process there): a failed round shows how its\n"
"                      XfrmIn* counters moved\n"
"  --keyed             the rig's own check: an SA once installed stays, so\n"
"                      after a family's first round no acquire is made and\n"
"                      whatever fails is the rig's (the wire, the echo)\n"
"\n"
"Points: 'round N' (not ok) for each failed round, then one per check\n"
"(no held packet failed, no wait failed, no larval state outlived its SA,\n"
"one ACQUIRE per larval state, one larval state per SA, no sender asleep\n"
"after the install, per-flow order kept, every round's SA installed),\n"
"then 'summary'.\n"
"Exit 0 when every round passed, 1 when one failed or on internal failure\n"
"(Bail out!), 2 on bad arguments.\n");
}

/* The numeric options: where each goes, and its bounds. */
static const struct num_opt {
	const char *name;
	long *v;
	long min, max;
} num_opts[] = {
	{ "port", &opt.port, 1, 65535 },
	{ "tcp-port", &opt.tcp_port, 1, 65535 },
	{ "rounds", &opt.rounds, 1, 100000000 },
	{ "first-round", &opt.first_round, 0, 1L << 40 },
	{ "cpus", &opt.cpus, 1, CPU_SETSIZE },
	{ "held", &opt.per_cpu[K_HELD], 0, 16 },
	{ "block", &opt.per_cpu[K_BLOCK], 0, 16 },
	{ "poll", &opt.per_cpu[K_POLL], 0, 16 },
	{ "epoll", &opt.per_cpu[K_EPOLL], 0, 16 },
	{ "tcp", &opt.per_cpu[K_TCP], 0, 16 },
	{ "seconds", &opt.seconds, 0, 864000 },
	{ "reply-wait-ms", &opt.reply_wait_ms, 1, 600000 },
	{ "asleep-ms", &opt.asleep_ms, 1, 600000 },
	{ "max-failures", &opt.max_failures, 0, 100000000 },
	{ "progress", &opt.progress, 1, 100000000 },
	{ "round-bound-s", &opt.round_bound_s, 1, 3600 },
};
#define NUM_OPTS	(sizeof(num_opts) / sizeof(num_opts[0]))

static void parse_num_opt(const struct num_opt *o, const char *s)
{
	char name[32];

	snprintf(name, sizeof(name), "--%s", o->name);
	*o->v = parse_num(name, s, o->min, o->max);
}

static void check_workers(void)
{
	long per = 0, k;

	for (k = 0; k < NKINDS; k++)
		per += opt.per_cpu[k];
	if (!per || per * opt.cpus > MAX_WORKERS)
		die_usage("%ld workers: 1..%d, all CPUs together",
			  per * opt.cpus, MAX_WORKERS);
	if (opt.cpus * opt.per_cpu[K_TCP] >= HELD_BUDGET)
		die_usage("%ld TCP workers: their SYNs alone pass the %d "
			  "packets an acquire may hold here",
			  opt.cpus * opt.per_cpu[K_TCP], HELD_BUDGET);
}

static void parse_args(int argc, char **argv)
{
	enum { O_CONTROL = 1, O_PEER4, O_PEER6, O_SEED, O_KEYED, O_PEERSTAT,
	       O_HELP, O_NUM };
	struct option lo[NUM_OPTS + 8] = {
		{ "control", required_argument, NULL, O_CONTROL },
		{ "peer4", required_argument, NULL, O_PEER4 },
		{ "peer6", required_argument, NULL, O_PEER6 },
		{ "seed", required_argument, NULL, O_SEED },
		{ "keyed", no_argument, NULL, O_KEYED },
		{ "peer-stat", required_argument, NULL, O_PEERSTAT },
		{ "help", no_argument, NULL, O_HELP },
	};
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int i;
	int c;

	for (i = 0; i < NUM_OPTS; i++)
		lo[7 + i] = (struct option){ num_opts[i].name,
					     required_argument, NULL,
					     O_NUM + i };
	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_CONTROL: opt.control = optarg; break;
		case O_PEER4: opt.peer[0] = optarg; break;
		case O_PEER6: opt.peer[1] = optarg; break;
		case O_SEED: opt.seed = parse_u64("--seed", optarg); break;
		case O_KEYED: opt.keyed = true; break;
		case O_PEERSTAT: opt.peer_stat = optarg; break;
		case O_HELP: usage(stdout); exit(0);
		default: parse_num_opt(&num_opts[c - O_NUM], optarg);
		}
	}
	if (!opt.control)
		die_usage("--control PATH is required");
	if (!opt.peer[0] && !opt.peer[1])
		die_usage("--peer4 or --peer6 is required");
	if (!opt.cpus)
		opt.cpus = online > 0 ? online : 1;
	if (opt.cpus > online)
		die_usage("--cpus %ld: only %ld CPUs online", opt.cpus, online);
	check_workers();
}

static void resolve_peers(void)
{
	int f;

	for (f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		if (!opt.peer[f])
			continue;
		fam_avail |= 1u << f;
		peer_len[f] = sockaddr_nth(family, opt.peer[f], opt.port, 0,
					   &peer_ss[f]);
		tcp_len[f] = sockaddr_nth(family, opt.peer[f], opt.tcp_port, 0,
					  &tcp_ss[f]);
	}
}

static void check_pinning(void)
{
	unsigned int i;

	/* the workers pin themselves first thing; give them a moment */
	for (i = 0; i < nworkers; i++) {
		int n = 0, e;

		while (!atomic_load(&workers[i].tid) && n++ < 1000)
			sleep_us(1000);
		e = atomic_load(&workers[i].pin_err);
		if (e)
			tap_bail_out("worker %u: pinning to CPU %d: %s", i,
				     workers[i].cpu, strerror(e));
	}
}

int main(int argc, char **argv)
{
	static const unsigned int groups[] = { XFRMNLGRP_SA };
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	const char *stopped = "rounds";
	uint64_t t0;
	long r;

	parse_args(argc, argv);
	resolve_peers();
	tap_init();
	/* no SA_RESTART: the signal is there to end a call that sleeps */
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	nl_req = nl_socket(NULL, 0);
	nl_ev = nl_socket(groups, 1);
	km_connect();
	start_workers();
	check_pinning();
	tap_diag(PROG " seed=%llu first_round=%ld rounds=%ld cpus=%ld "
		 "workers=%u (per cpu: held %ld, block %ld, poll %ld, epoll "
		 "%ld, tcp %ld) asleep_ms=%ld reply_wait_ms=%ld",
		 opt.seed, opt.first_round, opt.rounds, opt.cpus, nworkers,
		 opt.per_cpu[K_HELD], opt.per_cpu[K_BLOCK], opt.per_cpu[K_POLL],
		 opt.per_cpu[K_EPOLL], opt.per_cpu[K_TCP], opt.asleep_ms,
		 opt.reply_wait_ms);
	t0 = tap_now_ns();
	for (r = 0; r < opt.rounds; r++) {
		if (opt.seconds && tap_now_ns() - t0 >
		    (uint64_t)opt.seconds * 1000000000ull) {
			stopped = "time";
			break;
		}
		if (opt.max_failures && (long)tot.failed >= opt.max_failures) {
			stopped = "failures";
			break;
		}
		run_round(opt.first_round + r);
		if ((r + 1) % opt.progress == 0)
			tap_diag("progress round=%ld done=%lu failed=%lu "
				 "elapsed_ms=%.0f", opt.first_round + r,
				 tot.rounds, tot.failed,
				 tap_ns_to_ms(tap_now_ns() - t0));
	}
	alarm(0);
	report_checks();
	report_summary(stopped, t0);
	tap_plan_end();
	atomic_store(&quitting, true);
	pthread_barrier_wait(&prepare_bar);
	for (r = 0; r < (long)nworkers; r++)
		pthread_join(workers[r].th, NULL);
	flush_sas();
	return tot.failed ? 1 : 0;
}
