// SPDX-License-Identifier: GPL-2.0-only
/*
 * larval-km - a scriptable test key manager for the larval harness
 *
 * Listens for XFRM_MSG_ACQUIRE in the network namespace it runs in and
 * answers from a static keying table instead of negotiating: it installs
 * the SA the kernel asked for plus the SA for the reverse direction, when
 * and how the command line says (at once, late, never, then deleted, or by
 * dying first).  Every event is logged with its CLOCK_MONOTONIC time so the
 * harness can line it up with what the probes saw.
 *
 * The outbound SA goes in by NEWSA, or as an IKE daemon puts it in: ALLOCSPI
 * on the larval state, then UPDSA (--method updsa), which is another path
 * through the kernel (xfrm_state_update() on the acquire state).
 *
 * With --control a stress program (larval-stress) runs rounds: it opens one
 * with the delay and method for that round's ACQUIREs, and at its end asks
 * how many ACQUIREs came, for how many larval states: the kernel promises
 * one ACQUIRE per larval state and one larval state per SA it waits for.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROG		"larval-km"
#include "guest.h"
#include "tap.h"
#include "xfrm-nl.h"

#define KEY_LEN		20	/* rfc4106: 16 bytes AES key + 4 bytes salt */
#define ICV_BITS	128
#define AEAD_NAME	"rfc4106(gcm(aes))"
#define MAX_KEYS	256
#define MAX_JOBS	128
#define ACK_WAIT_MS	2000
#define ROUND_STATES	16	/* larval states one round tells apart */

struct key_entry {
	int family;
	xfrm_address_t src;
	xfrm_address_t dst;
	uint8_t proto;
	uint8_t mode;
	uint32_t spi;		/* host order */
	uint32_t reqid;
	uint8_t key[KEY_LEN];
};

/* What an ACQUIRE asked for that the SA we answer with must carry over. */
struct acq_ctx {
	uint32_t seq;
	uint64_t t_ns;
	bool has_mark;
	struct xfrm_mark mark;
	bool has_if_id;
	uint32_t if_id;
};

enum job_kind { JOB_INSTALL, JOB_DELETE };

/* How the outbound SA is installed. */
enum method { M_NEWSA, M_UPDSA };

static const char *const method_names[] = { "newsa", "updsa" };

struct job {
	bool used;
	enum job_kind kind;
	enum method method;
	uint64_t due_ns;
	int out;		/* key index of the SA the kernel asked for */
	int in;			/* key index of the reverse SA, or -1 */
	struct acq_ctx acq;
};

static struct {
	const char *keys_path;
	const char *log_path;
	unsigned long delay_ms;
	long delete_after_ms;	/* -1: keep the SAs */
	unsigned long max_runtime_s;
	bool never;
	bool exit_after_first;
	enum method method;
	const char *control_path;
	unsigned long replay_window;
} opt = {
	.delete_after_ms = -1,
	.max_runtime_s = 600,
	.replay_window = 32,
};

static struct key_entry keys[MAX_KEYS];
static int nkeys;
static struct job jobs[MAX_JOBS];
static int ev_fd = -1;		/* multicast events */
static int req_fd = -1;		/* our requests and their acks */

static struct {
	unsigned long acquires, installs, deletes, errors;
} cnt;

/*
 * The round a stress program opened on the control socket: what its
 * ACQUIREs get, and what they were.  ACQUIREs while no round is open are
 * strays, reported with the next round's end.
 */
static struct {
	bool open;
	unsigned long n;
	unsigned long delay_ms;
	enum method method;
	unsigned long acquires, installs, errors, stray;
	unsigned int acq_by_family[2];		/* IPv4, IPv6 */
	struct {
		int family;
		uint32_t seq;
		unsigned int acquires;
	} states[ROUND_STATES];
	unsigned int nstates, untold;		/* untold: past ROUND_STATES */
	uint64_t out_sent_ns;			/* first outbound install */
	int out_err;
	bool installed[MAX_KEYS];		/* outbound SAs in this round */
	unsigned long duplicates;		/* ACQUIREs for one of those */
} rnd;

static int ctl_listen_fd = -1;	/* --control: the listening socket */
static int ctl_fd = -1;		/* the stress program, once connected */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " --keys FILE [options]\n"
"\n"
"Answer XFRM ACQUIREs in this network namespace from a keying table.\n"
"\n"
"  --keys FILE           keying table (required), one SA per line:\n"
"                        SRC DST esp SPI transport|tunnel REQID KEY\n"
"                        SPI hex (0x...), KEY 0x + 40 hex digits,\n"
"                        " AEAD_NAME " with a 128-bit ICV; '#' comments\n"
"  --delay-ms N          answer N ms after the ACQUIRE (default 0)\n"
"  --method newsa|updsa  install the outbound SA with NEWSA (default), or\n"
"                        with ALLOCSPI on the larval state and UPDSA\n"
"  --replay-window N     the SAs' anti-replay window, 0..32 (default 32;\n"
"                        0: none, as the far side's static SAs have)\n"
"  --control PATH        take rounds from a stress program on the unix\n"
"                        SOCK_SEQPACKET socket PATH: 'ROUND N delay_ms=D\n"
"                        method=M' answers 'OK N' and sets how this round's\n"
"                        ACQUIREs are answered; 'END N' answers 'REPORT N\n"
"                        acquires=.. states=.. max_per_state=.. acq4=..\n"
"                        acq6=.. installs=.. errors=.. pending=.. stray=..\n"
"                        duplicates=.. out_sent_ns=.. out_err=..\n"
"                        seqs=FAMILY/SEQ:COUNT,..'; an ACQUIRE for an SA the\n"
"                        round installed already is logged, not answered\n"
"  --never               log ACQUIREs, never answer\n"
"  --delete-after-ms N   delete both SAs N ms after installing them\n"
"  --exit-after-first    exit at the first ACQUIRE without answering\n"
"  --max-runtime-s N     exit after N s whatever happens (default 600)\n"
"  --log FILE            event log (default stdout)\n"
"  --help                this text\n"
"\n"
"Once subscribed it logs 'READY <ns>' (also on stdout with --log).  Every\n"
"other log line starts with CLOCK_MONOTONIC ns, then one of CONFIG,\n"
"ACQUIRE, NOMATCH, NOREVERSE, ALLOCSPI, INSTALL, DUPLICATE, DELETE,\n"
"EXPIRE, POLEXPIRE, SA, EVENT, OVERRUN, ERROR, ROUND, REPORT, SIGNAL,\n"
"MAXRUNTIME, SUMMARY.\n"
"Exit 0 on SIGTERM/SIGINT/SIGHUP or max runtime, 2 on bad arguments,\n"
"1 on internal failure.\n");
}

/* ---- formatting ---------------------------------------------------- */

static const char *addr_str(int family, const xfrm_address_t *a)
{
	/* Rotating buffers: one log line prints up to six addresses. */
	static char buf[8][INET6_ADDRSTRLEN];
	static unsigned int next;
	char *b = buf[next++ % 8];

	if (!inet_ntop(family, a, b, INET6_ADDRSTRLEN))
		snprintf(b, INET6_ADDRSTRLEN, "?af%d", family);
	return b;
}

static const char *proto_str(uint8_t proto)
{
	static char buf[8];

	switch (proto) {
	case IPPROTO_ESP: return "esp";
	case IPPROTO_AH: return "ah";
	case IPPROTO_COMP: return "comp";
	}
	snprintf(buf, sizeof(buf), "%u", proto);
	return buf;
}

static const char *mode_str(int mode)
{
	switch (mode) {
	case XFRM_MODE_TRANSPORT: return "transport";
	case XFRM_MODE_TUNNEL: return "tunnel";
	case XFRM_MODE_ROUTEOPTIMIZATION: return "ro";
	case XFRM_MODE_IN_TRIGGER: return "in_trigger";
	case XFRM_MODE_BEET: return "beet";
	case -1: return "?";
	}
	return "other";
}

/* ---- keying table -------------------------------------------------- */

static bool addr_eq(int family, const xfrm_address_t *a,
		    const xfrm_address_t *b)
{
	/* Only the family's bytes: the kernel does not promise the rest. */
	return !memcmp(a, b, family == AF_INET ? 4 : 16);
}

static bool parse_addr(const char *s, int *family, xfrm_address_t *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, a) == 1) {
		*family = AF_INET6;
		return true;
	}
	return false;
}

static bool parse_hex_key(const char *s, uint8_t *out)
{
	int i;

	if (strncmp(s, "0x", 2) || strlen(s) != 2 + 2 * KEY_LEN)
		return false;
	for (i = 0; i < KEY_LEN; i++) {
		unsigned int v;

		if (!isxdigit((unsigned char)s[2 + 2 * i]) ||
		    !isxdigit((unsigned char)s[3 + 2 * i]) ||
		    sscanf(s + 2 + 2 * i, "%2x", &v) != 1)
			return false;
		out[i] = v;
	}
	return true;
}

static bool parse_u32(const char *s, int base, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end || v > UINT32_MAX)
		return false;
	*out = v;
	return true;
}

static __attribute__((noreturn, format(printf, 3, 4)))
void table_error(const char *path, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": %s:%d: ", path, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void parse_key_line(char *s, const char *path, int line)
{
	struct key_entry *k = &keys[nkeys];
	char *f[8];
	int n = 0, fam2;
	char *tok, *save;

	for (tok = strtok_r(s, " \t\r\n", &save); tok;
	     tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 8)
			break;
		f[n++] = tok;
	}
	if (!n)
		return;
	if (n != 7)
		table_error(path, line, "expected 7 fields, got %d", n);
	if (nkeys == MAX_KEYS)
		table_error(path, line, "more than %d entries", MAX_KEYS);

	memset(k, 0, sizeof(*k));
	if (!parse_addr(f[0], &k->family, &k->src))
		table_error(path, line, "bad source address '%s'", f[0]);
	if (!parse_addr(f[1], &fam2, &k->dst) || fam2 != k->family)
		table_error(path, line, "bad or mixed-family destination '%s'",
			    f[1]);
	if (strcmp(f[2], "esp"))
		table_error(path, line, "protocol must be esp, not '%s'", f[2]);
	k->proto = IPPROTO_ESP;
	if (!parse_u32(f[3], 16, &k->spi) || k->spi < 256)
		table_error(path, line, "bad SPI '%s' (hex, >= 0x100)", f[3]);
	if (!strcmp(f[4], "transport"))
		k->mode = XFRM_MODE_TRANSPORT;
	else if (!strcmp(f[4], "tunnel"))
		k->mode = XFRM_MODE_TUNNEL;
	else
		table_error(path, line, "mode must be transport or tunnel");
	if (!parse_u32(f[5], 10, &k->reqid))
		table_error(path, line, "bad reqid '%s'", f[5]);
	if (!parse_hex_key(f[6], k->key))
		table_error(path, line, "key must be 0x + %d hex digits",
			    2 * KEY_LEN);
	nkeys++;
}

static void load_keys(const char *path)
{
	char buf[1024];
	int line = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		die_usage("cannot open keying table %s: %s", path,
			  strerror(errno));
	while (fgets(buf, sizeof(buf), f)) {
		char *hash = strchr(buf, '#');

		line++;
		if (!strchr(buf, '\n') && !feof(f))
			table_error(path, line, "line too long");
		if (hash)
			*hash = '\0';
		parse_key_line(buf, path, line);
	}
	fclose(f);
	if (!nkeys)
		die_usage("keying table %s has no entries", path);
}

static int find_key(int family, const xfrm_address_t *src,
		    const xfrm_address_t *dst, uint8_t proto, int mode)
{
	int i;

	for (i = 0; i < nkeys; i++) {
		const struct key_entry *k = &keys[i];

		if (k->family == family && k->proto == proto &&
		    (mode < 0 || k->mode == mode) &&
		    addr_eq(family, &k->src, src) &&
		    addr_eq(family, &k->dst, dst))
			return i;
	}
	return -1;
}

/* ---- netlink ------------------------------------------------------- */

static int nl_socket(const unsigned int *groups, int ngroups, int rcvbuf)
{
	/* Error strings from the kernel say which attribute it disliked. */
	const struct xfrm_nl_cfg cfg = {
		.rcvbuf = rcvbuf, .ext_ack = true,
		.groups = groups, .ngroups = ngroups,
	};
	struct xfrm_nl_fail fail;
	int fd;

	fd = xfrm_nl_open(&cfg, &fail);
	if (fd >= 0)
		return fd;
	if (fail.group)
		die("joining XFRM netlink group %u: %s", fail.group,
		    strerror(errno));
	die("%s(NETLINK_XFRM): %s", fail.call, strerror(errno));
}

static void nl_open(void)
{
	static const unsigned int groups[] = {
		XFRMNLGRP_ACQUIRE, XFRMNLGRP_EXPIRE, XFRMNLGRP_SA,
	};

	/* A burst of ACQUIREs must not overrun us while we wait for acks. */
	ev_fd = nl_socket(groups, sizeof(groups) / sizeof(groups[0]),
			  4 << 20);
	req_fd = nl_socket(NULL, 0, 0);
}

static void ack_message(const struct nlmsghdr *h, char *msg, size_t len)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	const struct rtattr *rta;
	int rem;

	msg[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	/* NETLINK_CAP_ACK: the TLVs follow the echoed header at once. */
	rta = xfrm_nl_attrs(h, sizeof(*e), &rem);
	for (; RTA_OK(rta, rem); rta = RTA_NEXT(rta, rem))
		if (rta->rta_type == NLMSGERR_ATTR_MSG)
			snprintf(msg, len, "%.*s", (int)RTA_PAYLOAD(rta),
				 (const char *)RTA_DATA(rta));
}

struct ack_msg {
	char *buf;
	size_t len;
};

static void ack_reply(const struct nlmsghdr *h, void *arg)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	struct ack_msg *m = arg;

	if (h->nlmsg_type == NLMSG_ERROR && e->error)
		ack_message(h, m->buf, m->len);
}

/*
 * Send one request and wait, bounded, for its ack.  *acked_ns is stamped
 * when the ack has been read: the kernel has done the work by then.
 */
static int nl_request(struct nlmsghdr *n, uint64_t *acked_ns, char *msg,
		      size_t msglen)
{
	struct ack_msg m = { msg, msglen };
	int err;

	msg[0] = '\0';
	err = xfrm_nl_request(req_fd, n, ACK_WAIT_MS, ack_reply, &m);
	*acked_ns = tap_now_ns();
	return err;
}

/* ---- installing and deleting SAs ----------------------------------- */

static void fill_sa_info(struct xfrm_usersa_info *p, const struct key_entry *k,
			 uint32_t seq)
{
	memset(p, 0, sizeof(*p));
	/* sel.family 0: the SA carries any traffic between the two hosts. */
	p->id.daddr = k->dst;
	p->id.spi = htonl(k->spi);
	p->id.proto = k->proto;
	p->saddr = k->src;
	p->lft.soft_byte_limit = XFRM_INF;
	p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = XFRM_INF;
	p->lft.hard_packet_limit = XFRM_INF;
	p->seq = seq;
	p->reqid = k->reqid;
	p->family = k->family;
	p->mode = k->mode;
	p->replay_window = opt.replay_window;
}

/* NEWSA, or UPDSA of the larval state ALLOCSPI gave the SA's SPI. */
static int sa_add(int type, const struct key_entry *k, uint32_t seq,
		  const struct acq_ctx *acq, uint64_t *done_ns, char *msg,
		  size_t msglen)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_info *p;

	p = xfrm_nl_start(&req, type, sizeof(*p));
	fill_sa_info(p, k, seq);

	xfrm_nl_put_aead(&req.n, sizeof(req), AEAD_NAME, k->key, KEY_LEN,
			 ICV_BITS);
	/* The kernel only uses an SA for a marked policy if the marks agree. */
	if (acq && acq->has_mark)
		xfrm_nl_put(&req.n, sizeof(req), XFRMA_MARK, &acq->mark,
			    sizeof(acq->mark));
	if (acq && acq->has_if_id)
		xfrm_nl_put(&req.n, sizeof(req), XFRMA_IF_ID, &acq->if_id,
			    sizeof(acq->if_id));
	return nl_request(&req.n, done_ns, msg, msglen);
}

/*
 * ALLOCSPI on the larval state of @acq (found by its seq), with the one
 * SPI the far side knows: the state keeps its place in the tables and
 * gets an SPI, and UPDSA then turns it into the SA.
 */
static int sa_allocspi(const struct key_entry *k, const struct acq_ctx *acq,
		       uint64_t *done_ns, char *msg, size_t msglen)
{
	union xfrm_nl_msg req;
	struct xfrm_userspi_info *u;

	u = xfrm_nl_start(&req, XFRM_MSG_ALLOCSPI, sizeof(*u));
	fill_sa_info(&u->info, k, acq->seq);
	u->min = k->spi;
	u->max = k->spi;
	if (acq->has_mark)
		xfrm_nl_put(&req.n, sizeof(req), XFRMA_MARK, &acq->mark,
			    sizeof(acq->mark));
	if (acq->has_if_id)
		xfrm_nl_put(&req.n, sizeof(req), XFRMA_IF_ID, &acq->if_id,
			    sizeof(acq->if_id));
	return nl_request(&req.n, done_ns, msg, msglen);
}

static int sa_del(const struct key_entry *k, const struct acq_ctx *acq,
		  uint64_t *done_ns, char *msg, size_t msglen)
{
	union xfrm_nl_msg req;
	struct xfrm_usersa_id *id;

	id = xfrm_nl_start(&req, XFRM_MSG_DELSA, sizeof(*id));
	id->daddr = k->dst;
	id->spi = htonl(k->spi);
	id->family = k->family;
	id->proto = k->proto;
	xfrm_nl_put(&req.n, sizeof(req), XFRMA_SRCADDR, &k->src,
		    sizeof(k->src));
	if (acq && acq->has_mark)
		xfrm_nl_put(&req.n, sizeof(req), XFRMA_MARK, &acq->mark,
			    sizeof(acq->mark));
	return nl_request(&req.n, done_ns, msg, msglen);
}

/*
 * The line is stamped when the kernel's ack was read; sent_ns is when the
 * request left.  A kernel that releases held packets while it processes
 * NEWSA delivers them before the ack is read, so latency from installation
 * must be measured from sent_ns.
 */
static void log_sa_result(const char *what, const char *dir,
			  const struct key_entry *k, uint32_t seq,
			  const struct acq_ctx *acq, uint64_t sent, uint64_t t,
			  int err, const char *msg)
{
	log_at(t, "%s dir=%s spi=0x%08x src=%s dst=%s proto=%s mode=%s "
	       "reqid=%u seq=%u acq_seq=%u since_acquire_ms=%.3f "
	       "sent_ns=%llu err=%s%s%s%s",
	       what, dir, k->spi, addr_str(k->family, &k->src),
	       addr_str(k->family, &k->dst), proto_str(k->proto),
	       mode_str(k->mode), k->reqid, seq, acq->seq,
	       tap_ns_to_ms((int64_t)(t - acq->t_ns)),
	       (unsigned long long)sent, err_str(err),
	       *msg ? " msg=\"" : "", msg, *msg ? "\"" : "");
}

/* An install in a round: what its report says about it. */
static void round_note_install(const struct key_entry *k, bool out,
			       uint64_t sent, int err)
{
	if (!rnd.open)
		return;
	if (err)
		rnd.errors++;
	else
		rnd.installs++;
	if (out && !err)
		rnd.installed[k - keys] = true;
	if (out && !rnd.out_sent_ns) {
		rnd.out_sent_ns = sent;
		rnd.out_err = err;
	}
}

static uint64_t install_one(const struct key_entry *k, const char *dir,
			    uint32_t seq, const struct acq_ctx *acq,
			    enum method m)
{
	bool out = dir[0] == 'o';
	uint64_t sent = tap_now_ns();
	char msg[256];
	uint64_t t;
	int err;

	/* Only the outbound SA has a larval state to allocate the SPI on. */
	if (out && m == M_UPDSA) {
		err = sa_allocspi(k, acq, &t, msg, sizeof(msg));
		log_sa_result("ALLOCSPI", dir, k, seq, acq, sent, t, err, msg);
		if (err) {
			cnt.errors++;
			round_note_install(k, out, sent, err);
			return t;
		}
		sent = tap_now_ns();
	}
	err = sa_add(out && m == M_UPDSA ? XFRM_MSG_UPDSA : XFRM_MSG_NEWSA, k,
		     seq, out ? acq : NULL, &t, msg, sizeof(msg));
	log_sa_result("INSTALL", dir, k, seq, acq, sent, t, err, msg);
	if (err)
		cnt.errors++;
	else
		cnt.installs++;
	round_note_install(k, out, sent, err);
	return t;
}

static void delete_one(const struct key_entry *k, const char *dir,
		       const struct acq_ctx *acq)
{
	uint64_t sent = tap_now_ns();
	char msg[256];
	uint64_t t;
	int err;

	err = sa_del(k, dir[0] == 'o' ? acq : NULL, &t, msg, sizeof(msg));
	log_sa_result("DELETE", dir, k, 0, acq, sent, t, err, msg);
	if (err)
		cnt.errors++;
	else
		cnt.deletes++;
}

static bool add_job(enum job_kind kind, enum method m, uint64_t due, int out,
		    int in, const struct acq_ctx *acq)
{
	int i;

	for (i = 0; i < MAX_JOBS; i++) {
		if (jobs[i].used)
			continue;
		jobs[i] = (struct job){
			.used = true, .kind = kind, .method = m, .due_ns = due,
			.out = out, .in = in, .acq = *acq,
		};
		return true;
	}
	log_at(tap_now_ns(), "ERROR job queue full, dropping acq_seq=%u",
	       acq->seq);
	cnt.errors++;
	return false;
}

/*
 * Reverse SA first: once the outbound SA replaces the larval state the
 * first packet may leave at once, and the answer must find its SA here.
 */
static void run_install(const struct job *j)
{
	uint64_t t;

	/*
	 * A second larval state for an SA the round installed already is
	 * the kernel's to clean up: answering it (ALLOCSPI would make yet
	 * another larval state when the first is gone) would hide that.
	 */
	if (rnd.open && rnd.installed[j->out]) {
		log_at(tap_now_ns(), "DUPLICATE acq_seq=%u spi=0x%08x: this "
		       "round's SA is in already, not answered", j->acq.seq,
		       keys[j->out].spi);
		rnd.duplicates++;
		return;
	}
	if (j->in >= 0)
		install_one(&keys[j->in], "in", 0, &j->acq, M_NEWSA);
	t = install_one(&keys[j->out], "out", j->acq.seq, &j->acq, j->method);
	if (opt.delete_after_ms >= 0)
		add_job(JOB_DELETE, j->method,
			t + opt.delete_after_ms * 1000000ull, j->out, j->in,
			&j->acq);
}

static void run_delete(const struct job *j)
{
	delete_one(&keys[j->out], "out", &j->acq);
	if (j->in >= 0)
		delete_one(&keys[j->in], "in", &j->acq);
}

static void run_job(const struct job *j)
{
	if (j->kind == JOB_INSTALL)
		run_install(j);
	else
		run_delete(j);
}

static void run_due_jobs(void)
{
	uint64_t now = tap_now_ns();
	int i;

	for (i = 0; i < MAX_JOBS; i++) {
		struct job j = jobs[i];

		if (!j.used || j.due_ns > now)
			continue;
		jobs[i].used = false;
		run_job(&j);
	}
}

static uint64_t next_due(uint64_t limit)
{
	int i;

	for (i = 0; i < MAX_JOBS; i++)
		if (jobs[i].used && jobs[i].due_ns < limit)
			limit = jobs[i].due_ns;
	return limit;
}

/* ---- rounds of a stress program (--control) ------------------------ */

/* One more ACQUIRE for the larval state @seq of @family. */
static void round_count_acquire(int family, uint32_t seq)
{
	unsigned int i;

	if (!rnd.open) {
		rnd.stray++;
		return;
	}
	rnd.acquires++;
	rnd.acq_by_family[family == AF_INET6]++;
	for (i = 0; i < rnd.nstates; i++) {
		if (rnd.states[i].family == family &&
		    rnd.states[i].seq == seq) {
			rnd.states[i].acquires++;
			return;
		}
	}
	if (rnd.nstates == ROUND_STATES) {
		rnd.untold++;
		return;
	}
	rnd.states[rnd.nstates].family = family;
	rnd.states[rnd.nstates].seq = seq;
	rnd.states[rnd.nstates].acquires = 1;
	rnd.nstates++;
}

/* Installs the round did not get to: they must not land in the next one. */
static unsigned int cancel_install_jobs(void)
{
	unsigned int n = 0;
	int i;

	for (i = 0; i < MAX_JOBS; i++) {
		if (jobs[i].used && jobs[i].kind == JOB_INSTALL) {
			jobs[i].used = false;
			n++;
		}
	}
	return n;
}

static void ctl_reply(const char *text)
{
	/* A stress program that went away must not take us with it. */
	if (send(ctl_fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_at(tap_now_ns(), "ERROR control reply: %s",
		       errno_name(errno));
}

static void ctl_round(unsigned long n, const char *args)
{
	unsigned long delay_ms;
	char method[16], reply[64];
	unsigned long stray = rnd.stray;

	if (sscanf(args, " delay_ms=%lu method=%15s", &delay_ms, method) != 2 ||
	    delay_ms > 3600000 ||
	    (strcmp(method, "newsa") && strcmp(method, "updsa"))) {
		log_at(tap_now_ns(), "ERROR control: bad ROUND '%s'", args);
		ctl_reply("ERROR bad ROUND");
		return;
	}
	memset(&rnd, 0, sizeof(rnd));
	rnd.open = true;
	rnd.n = n;
	rnd.delay_ms = delay_ms;
	rnd.method = strcmp(method, "newsa") ? M_UPDSA : M_NEWSA;
	rnd.stray = stray;
	log_at(tap_now_ns(), "ROUND %lu delay_ms=%lu method=%s", n, delay_ms,
	       method_names[rnd.method]);
	snprintf(reply, sizeof(reply), "OK %lu", n);
	ctl_reply(reply);
}

static void ctl_end(unsigned long n)
{
	char text[768], seqs[384] = "";
	unsigned int i, max = 0;
	size_t len = 0;
	unsigned int pending;

	if (!rnd.open || rnd.n != n) {
		ctl_reply("ERROR no such round");
		return;
	}
	pending = cancel_install_jobs();
	for (i = 0; i < rnd.nstates; i++) {
		if (rnd.states[i].acquires > max)
			max = rnd.states[i].acquires;
		if (len < sizeof(seqs) - 24)
			len += snprintf(seqs + len, sizeof(seqs) - len,
					"%s%d/%u:%u", i ? "," : "",
					rnd.states[i].family == AF_INET6 ?
					6 : 4, rnd.states[i].seq,
					rnd.states[i].acquires);
	}
	snprintf(text, sizeof(text),
		 "REPORT %lu acquires=%lu states=%u max_per_state=%u acq4=%u "
		 "acq6=%u installs=%lu errors=%lu pending=%u stray=%lu "
		 "duplicates=%lu out_sent_ns=%llu out_err=%s seqs=%s",
		 n, rnd.acquires, rnd.nstates + rnd.untold, max,
		 rnd.acq_by_family[0], rnd.acq_by_family[1],
		 rnd.installs, rnd.errors, pending, rnd.stray, rnd.duplicates,
		 (unsigned long long)rnd.out_sent_ns,
		 err_str(rnd.out_err), *seqs ? seqs : "-");
	log_at(tap_now_ns(), "%s", text);
	ctl_reply(text);
	rnd.open = false;
	rnd.stray = 0;
}

static void ctl_drop(const char *why)
{
	log_at(tap_now_ns(), "CONTROL closed (%s)", why);
	close(ctl_fd);
	ctl_fd = -1;
	rnd.open = false;
}

static void ctl_read(void)
{
	char buf[256];
	unsigned long n;
	ssize_t r;
	int off = 0;

	r = recv(ctl_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		ctl_drop(r ? errno_name(errno) : "eof");
		return;
	}
	buf[r] = '\0';
	if (sscanf(buf, "ROUND %lu%n", &n, &off) == 1)
		ctl_round(n, buf + off);
	else if (sscanf(buf, "END %lu", &n) == 1)
		ctl_end(n);
	else
		ctl_reply("ERROR unknown command");
}

static void ctl_accept(void)
{
	int fd = accept4(ctl_listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* One stress program at a time: a newcomer replaces a dead one. */
	if (ctl_fd >= 0)
		ctl_drop("replaced");
	ctl_fd = fd;
	log_at(tap_now_ns(), "CONTROL connected");
}

static void ctl_open(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		die_usage("--control: path too long: %s", path);
	strcpy(sa.sun_path, path);
	unlink(path);
	ctl_listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ctl_listen_fd < 0)
		die("socket(AF_UNIX): %s", strerror(errno));
	if (bind(ctl_listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(ctl_listen_fd, 4) < 0)
		die("control socket %s: %s", path, strerror(errno));
}

/* ---- events from the kernel ---------------------------------------- */

static __attribute__((noreturn)) void finish(uint64_t t)
{
	log_at(t, "SUMMARY acquires=%lu installs=%lu deletes=%lu errors=%lu",
	       cnt.acquires, cnt.installs, cnt.deletes, cnt.errors);
	exit(0);
}

/* The template the ACQUIRE is about: same protocol, daddr or wildcard. */
static const struct xfrm_user_tmpl *
pick_tmpl(const struct xfrm_user_acquire *ua, const struct rtattr *rta)
{
	const struct xfrm_user_tmpl *t = RTA_DATA(rta);
	size_t n = RTA_PAYLOAD(rta) / sizeof(*t), i;
	static const xfrm_address_t any;

	for (i = 0; i < n; i++) {
		int fam = t[i].family ? t[i].family : ua->sel.family;

		if (t[i].id.proto == ua->id.proto &&
		    (addr_eq(fam, &t[i].id.daddr, &ua->id.daddr) ||
		     addr_eq(fam, &t[i].id.daddr, &any)))
			return &t[i];
	}
	return n ? &t[0] : NULL;
}

static void parse_acquire_attrs(const struct nlmsghdr *h,
				const struct xfrm_user_acquire *ua,
				struct acq_ctx *acq,
				const struct xfrm_user_tmpl **tmpl)
{
	const struct rtattr *rta;
	int rem;

	*tmpl = NULL;
	rta = xfrm_nl_attrs(h, sizeof(*ua), &rem);
	for (; RTA_OK(rta, rem); rta = RTA_NEXT(rta, rem)) {
		switch (rta->rta_type) {
		case XFRMA_TMPL:
			*tmpl = pick_tmpl(ua, rta);
			break;
		case XFRMA_MARK:
			if (xfrm_nl_attr_copy(rta, &acq->mark,
					      sizeof(acq->mark)))
				acq->has_mark = acq->mark.v || acq->mark.m;
			break;
		case XFRMA_IF_ID:
			if (xfrm_nl_attr_copy(rta, &acq->if_id,
					      sizeof(acq->if_id)))
				acq->has_if_id = acq->if_id != 0;
			break;
		}
	}
}

static void answer_acquire(int family, const struct xfrm_user_acquire *ua,
			   int mode, const struct acq_ctx *acq)
{
	unsigned long delay_ms;
	enum method m;
	int out, in;

	out = find_key(family, &ua->saddr, &ua->id.daddr, ua->id.proto, mode);
	if (out < 0) {
		log_at(tap_now_ns(), "NOMATCH seq=%u src=%s dst=%s proto=%s "
		       "mode=%s", ua->seq, addr_str(family, &ua->saddr),
		       addr_str(family, &ua->id.daddr),
		       proto_str(ua->id.proto), mode_str(mode));
		return;
	}
	in = find_key(family, &keys[out].dst, &keys[out].src,
		      keys[out].proto, keys[out].mode);
	if (in < 0)
		log_at(tap_now_ns(), "NOREVERSE seq=%u src=%s dst=%s",
		       ua->seq, addr_str(family, &keys[out].dst),
		       addr_str(family, &keys[out].src));

	/* An open round decides, else the command line. */
	delay_ms = rnd.open ? rnd.delay_ms : opt.delay_ms;
	m = rnd.open ? rnd.method : opt.method;
	if (!delay_ms) {
		struct job j = { .kind = JOB_INSTALL, .method = m, .out = out,
				 .in = in, .acq = *acq };

		run_install(&j);
		return;
	}
	add_job(JOB_INSTALL, m, acq->t_ns + delay_ms * 1000000ull, out, in,
		acq);
}

static void handle_acquire(const struct nlmsghdr *h, uint64_t t)
{
	const struct xfrm_user_acquire *ua = NLMSG_DATA(h);
	const struct xfrm_user_tmpl *tmpl;
	struct acq_ctx acq = { .t_ns = t };
	int family, mode;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ua))) {
		log_at(t, "ERROR short ACQUIRE (%u bytes)", h->nlmsg_len);
		cnt.errors++;
		return;
	}
	acq.seq = ua->seq;
	parse_acquire_attrs(h, ua, &acq, &tmpl);
	family = tmpl && tmpl->family ? tmpl->family : ua->sel.family;
	mode = tmpl ? tmpl->mode : -1;
	cnt.acquires++;
	round_count_acquire(family, ua->seq);

	log_at(t, "ACQUIRE seq=%u src=%s dst=%s proto=%s mode=%s reqid=%u "
	       "sel_src=%s/%u sel_dst=%s/%u sel_proto=%u sel_sport=%u "
	       "sel_dport=%u",
	       ua->seq, addr_str(family, &ua->saddr),
	       addr_str(family, &ua->id.daddr), proto_str(ua->id.proto),
	       mode_str(mode), tmpl ? tmpl->reqid : 0,
	       addr_str(ua->sel.family, &ua->sel.saddr), ua->sel.prefixlen_s,
	       addr_str(ua->sel.family, &ua->sel.daddr), ua->sel.prefixlen_d,
	       ua->sel.proto, ntohs(ua->sel.sport), ntohs(ua->sel.dport));

	if (opt.exit_after_first)
		finish(tap_now_ns());
	if (!opt.never)
		answer_acquire(family, ua, mode, &acq);
}

static void log_state(uint64_t t, const char *what,
		      const struct xfrm_usersa_info *p, const char *extra)
{
	log_at(t, "%s spi=0x%08x src=%s dst=%s proto=%s mode=%s reqid=%u "
	       "seq=%u%s", what, ntohl(p->id.spi),
	       addr_str(p->family, &p->saddr),
	       addr_str(p->family, &p->id.daddr), proto_str(p->id.proto),
	       mode_str(p->mode), p->reqid, p->seq, extra);
}

static void handle_expire(const struct nlmsghdr *h, uint64_t t)
{
	const struct xfrm_user_expire *ue = NLMSG_DATA(h);
	char extra[48];

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ue)))
		return;
	/* A hard expire with SPI 0 is a larval state timing out. */
	snprintf(extra, sizeof(extra), " hard=%u larval=%u", ue->hard,
		 ue->state.id.spi == 0);
	log_state(t, "EXPIRE", &ue->state, extra);
}

static void handle_sa_event(const struct nlmsghdr *h, uint64_t t)
{
	const size_t info_len = NLMSG_LENGTH(sizeof(struct xfrm_usersa_info));

	switch (h->nlmsg_type) {
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA:
		if (h->nlmsg_len < info_len)
			break;
		log_state(t, h->nlmsg_type == XFRM_MSG_NEWSA ?
			  "SA event=NEWSA" : "SA event=UPDSA",
			  NLMSG_DATA(h), "");
		break;
	case XFRM_MSG_DELSA: {
		const struct xfrm_usersa_id *id = NLMSG_DATA(h);

		if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*id)))
			log_at(t, "SA event=DELSA spi=0x%08x dst=%s proto=%s",
			       ntohl(id->spi), addr_str(id->family, &id->daddr),
			       proto_str(id->proto));
		break;
	}
	case XFRM_MSG_FLUSHSA:
		log_at(t, "SA event=FLUSHSA");
		break;
	}
}

static void handle_message(const struct nlmsghdr *h, uint64_t t)
{
	switch (h->nlmsg_type) {
	case XFRM_MSG_ACQUIRE:
		handle_acquire(h, t);
		break;
	case XFRM_MSG_EXPIRE:
		handle_expire(h, t);
		break;
	case XFRM_MSG_POLEXPIRE:
		log_at(t, "POLEXPIRE");
		break;
	case XFRM_MSG_NEWSA:
	case XFRM_MSG_UPDSA:
	case XFRM_MSG_DELSA:
	case XFRM_MSG_FLUSHSA:
		handle_sa_event(h, t);
		break;
	default:
		log_at(t, "EVENT type=%u len=%u", h->nlmsg_type, h->nlmsg_len);
	}
}

static void read_events(void)
{
	static char buf[XFRM_NL_BUF] __attribute__((aligned(8)));

	for (;;) {
		struct nlmsghdr *h;
		ssize_t r;
		uint64_t t;

		r = recv(ev_fd, buf, sizeof(buf), MSG_DONTWAIT);
		t = tap_now_ns();
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ENOBUFS) {
				/* Events were lost; say so, then go on. */
				log_at(t, "OVERRUN events lost");
				cnt.errors++;
				continue;
			}
			die("recv(NETLINK_XFRM): %s", strerror(errno));
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r))
			handle_message(h, t);
	}
}

/* ---- main loop ------------------------------------------------------ */

static void run(int sig_fd, uint64_t deadline)
{
	for (;;) {
		/* A negative fd (no --control, nobody connected) is skipped. */
		struct pollfd p[4] = {
			{ .fd = ev_fd, .events = POLLIN },
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = ctl_listen_fd, .events = POLLIN },
			{ .fd = ctl_fd, .events = POLLIN },
		};
		uint64_t now = tap_now_ns();
		uint64_t wake = next_due(deadline);
		struct timespec ts;

		if (now >= deadline) {
			log_at(now, "MAXRUNTIME %lus", opt.max_runtime_s);
			return;
		}
		wake = wake > now ? wake - now : 0;
		ts.tv_sec = wake / 1000000000ull;
		ts.tv_nsec = wake % 1000000000ull;
		if (ppoll(p, 4, &ts, NULL) < 0 && errno != EINTR)
			die("ppoll: %s", strerror(errno));
		if (p[1].revents & POLLIN) {
			log_signal(sig_fd);
			return;
		}
		if (p[0].revents & POLLIN)
			read_events();
		else if (p[0].revents & (POLLERR | POLLHUP))
			die("netlink socket error (revents 0x%x)",
			    p[0].revents);
		/* Jobs due before the round's end run before it is reported. */
		run_due_jobs();
		if (p[3].revents)
			ctl_read();
		if (p[2].revents & POLLIN)
			ctl_accept();
	}
}

/* Durations and counts: a sign gets the plainer message, as it always has. */
static unsigned long parse_unsigned(const char *name, const char *s,
				    unsigned long max)
{
	if (!*s || *s == '-')
		die_usage("%s: '%s' is not a number", name, s);
	return parse_num(name, s, 0, max);
}

static void parse_args(int argc, char **argv)
{
	enum { O_KEYS = 1, O_DELAY, O_NEVER, O_DELETE, O_EXIT, O_MAXRT,
	       O_LOG, O_METHOD, O_CONTROL, O_REPLAY, O_HELP };
	static const struct option lo[] = {
		{ "keys", required_argument, NULL, O_KEYS },
		{ "delay-ms", required_argument, NULL, O_DELAY },
		{ "never", no_argument, NULL, O_NEVER },
		{ "delete-after-ms", required_argument, NULL, O_DELETE },
		{ "exit-after-first", no_argument, NULL, O_EXIT },
		{ "max-runtime-s", required_argument, NULL, O_MAXRT },
		{ "log", required_argument, NULL, O_LOG },
		{ "method", required_argument, NULL, O_METHOD },
		{ "control", required_argument, NULL, O_CONTROL },
		{ "replay-window", required_argument, NULL, O_REPLAY },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = next_opt(argc, argv, lo)) != -1) {
		switch (c) {
		case O_KEYS: opt.keys_path = optarg; break;
		case O_DELAY:
			opt.delay_ms = parse_unsigned("--delay-ms", optarg,
						      3600000);
			break;
		case O_NEVER: opt.never = true; break;
		case O_DELETE:
			opt.delete_after_ms = parse_unsigned("--delete-after-ms",
							     optarg, 3600000);
			break;
		case O_EXIT: opt.exit_after_first = true; break;
		case O_MAXRT:
			opt.max_runtime_s = parse_unsigned("--max-runtime-s",
							   optarg, 86400);
			break;
		case O_LOG: opt.log_path = optarg; break;
		case O_METHOD:
			if (!strcmp(optarg, "newsa"))
				opt.method = M_NEWSA;
			else if (!strcmp(optarg, "updsa"))
				opt.method = M_UPDSA;
			else
				die_usage("--method must be newsa or updsa");
			break;
		case O_CONTROL: opt.control_path = optarg; break;
		case O_REPLAY:
			/* 32: the widest window without ESN's bitmap */
			opt.replay_window = parse_unsigned("--replay-window",
							   optarg, 32);
			break;
		case O_HELP: usage(stdout); exit(0);
		}
	}
	if (!opt.keys_path)
		die_usage("--keys FILE is required");
	if (!opt.max_runtime_s)
		die_usage("--max-runtime-s must be at least 1");
	if (opt.never && (opt.delay_ms || opt.delete_after_ms >= 0))
		die_usage("--never cannot be combined with --delay-ms or "
			  "--delete-after-ms");
	if (opt.control_path && (opt.never || opt.exit_after_first))
		die_usage("--control rounds answer every ACQUIRE: no --never "
			  "or --exit-after-first");
}

int main(int argc, char **argv)
{
	uint64_t start, ready;
	int sig_fd;

	tap_clock_start();
	parse_args(argc, argv);
	load_keys(opt.keys_path);

	log_open(opt.log_path);

	sig_fd = signal_fd();
	start = tap_now_ns();
	/* Backstop should the loop ever wedge: the default action kills us. */
	alarm(opt.max_runtime_s + 5);
	nl_open();
	if (opt.control_path)
		ctl_open(opt.control_path);

	ready = tap_now_ns();
	log_at(ready, "CONFIG keys=%d delay_ms=%lu never=%d "
	       "delete_after_ms=%ld exit_after_first=%d max_runtime_s=%lu "
	       "method=%s control=%s replay_window=%lu",
	       nkeys, opt.delay_ms, opt.never, opt.delete_after_ms,
	       opt.exit_after_first, opt.max_runtime_s,
	       method_names[opt.method],
	       opt.control_path ? opt.control_path : "-", opt.replay_window);
	log_ready(ready);

	run(sig_fd, start + opt.max_runtime_s * 1000000000ull);
	finish(tap_now_ns());
}
