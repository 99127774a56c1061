/*
 * peer.c: the C side of the Go tests in c_test.go. One program, many modes;
 * arguments are key=value pairs. It reports on stdout, one line per event,
 * written with write(2) so that a SIGKILL loses nothing it printed, and
 * exits 0 only if everything it checked was right.
 */
#define _GNU_SOURCE
#include "shmchan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int argc_;
static char **argv_;

static const char *arg(const char *key, const char *def)
{
	size_t n = strlen(key);
	for (int i = 2; i < argc_; i++)
		if (strncmp(argv_[i], key, n) == 0 && argv_[i][n] == '=')
			return argv_[i] + n + 1;
	return def;
}

static uint64_t num(const char *key, uint64_t def)
{
	const char *v = arg(key, NULL);
	return v ? strtoull(v, NULL, 0) : def;
}

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(1, buf + off, (size_t)(n - off));
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static int die(const char *what, int rc)
{
	say("error %s: %d %s (%s)", what, rc, shmchan_strerror(rc), shmchan_last_error());
	fprintf(stderr, "peer %s: %s: %d %s (%s)\n", argv_[1], what, rc, shmchan_strerror(rc), shmchan_last_error());
	return 1;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t mix(uint64_t i) { return i * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995ull; }

/* Values. "rec": the raw Go struct {Seq, Sum uint64}. "bytes": 8 bytes of
 * seq, then seq % 50 filler bytes derived from it. Seq carries the
 * producer in its top bits: id << 40 | i. */
struct rec { uint64_t seq, sum; };

static size_t encode(int bytes, uint64_t seq, unsigned char *buf)
{
	if (!bytes) {
		struct rec r = { seq, mix(seq) };
		memcpy(buf, &r, sizeof r);
		return sizeof r;
	}
	memcpy(buf, &seq, 8);
	size_t k = (size_t)(seq % 50);
	for (size_t j = 0; j < k; j++)
		buf[8 + j] = (unsigned char)(seq + j);
	return 8 + k;
}

static int decode(int bytes, const unsigned char *buf, size_t n, uint64_t *seq)
{
	if (!bytes) {
		struct rec r;
		if (n != sizeof r)
			return 0;
		memcpy(&r, buf, sizeof r);
		*seq = r.seq;
		return r.sum == mix(r.seq);
	}
	if (n < 8)
		return 0;
	memcpy(seq, buf, 8);
	size_t k = (size_t)(*seq % 50);
	if (n != 8 + k)
		return 0;
	for (size_t j = 0; j < k; j++)
		if (buf[8 + j] != (unsigned char)(*seq + j))
			return 0;
	return 1;
}

static int wait_mode(void)
{
	const char *w = arg("wait", "futex");
	if (strcmp(w, "mq") == 0)
		return SHMCHAN_WAIT_MQ;
	if (strcmp(w, "spin") == 0)
		return SHMCHAN_WAIT_SPIN;
	return SHMCHAN_WAIT_FUTEX;
}

/* Opens name=, or creates it when create=spsc|mpsc|wq|bcast|bcast-drop is
 * given (multi=1: many senders in a work queue or broadcast). */
static int attach(shmchan **c)
{
	const char *name = arg("name", "");
	const char *create = arg("create", NULL);
	if (create == NULL)
		return shmchan_open_flags(name, (unsigned)num("foreign", 0), c);
	shmchan_params p;
	shmchan_params_init(&p);
	p.multi_producer = strcmp(create, "mpsc") == 0 || num("multi", 0);
	if (strcmp(create, "wq") == 0)
		p.topology = SHMCHAN_TOPO_WORKQUEUE;
	if (strncmp(create, "bcast", 5) == 0) {
		p.topology = SHMCHAN_TOPO_BROADCAST;
		p.overflow = strcmp(create, "bcast-drop") == 0 ? SHMCHAN_DROP_OLDEST : SHMCHAN_WAIT_FOR_SLOWEST;
	}
	p.consumers = (uint32_t)num("consumers", 0);
	p.producers = (uint32_t)num("producers", 0);
	p.capacity = num("cap", 0);
	p.wait = (uint32_t)wait_mode();
	if (strcmp(arg("kind", "bytes"), "rec") == 0) {
		p.raw = 1;
		p.max_msg = sizeof(struct rec);
		p.fingerprint = num("fp", 0);
		p.type_name = "c_test.rec";
	} else {
		p.max_msg = (uint32_t)num("max", 64);
	}
	return shmchan_create(name, &p, c);
}

/* fail: die, and exit with its code. */
_Noreturn static void fail(const char *what, int rc)
{
	exit(die(what, rc));
}

/* open_peer: attach (see above), failing on an error; *bytes says whether
 * the values are kind=bytes (else rec). */
static shmchan *open_peer(int *bytes)
{
	shmchan *c;
	int rc = attach(&c);
	if (rc != SHMCHAN_OK)
		fail("attach", rc);
	if (bytes)
		*bytes = strcmp(arg("kind", "bytes"), "bytes") == 0;
	return c;
}

/* seq_of: the seq of a received value, failing (what) on a torn one. */
static uint64_t seq_of(int bytes, const unsigned char *buf, size_t n, const char *what)
{
	uint64_t seq;
	if (!decode(bytes, buf, n, &seq))
		fail(what, SHMCHAN_ECORRUPT);
	return seq;
}

/* hang: wait to be killed. */
_Noreturn static void hang(void)
{
	for (;;)
		pause();
}

/* own_role: this process's role entry among the count entries from index
 * first (FORMAT.md: the role table), failing if it holds none. */
static struct shmchan_role *own_role(unsigned char *mem, uint32_t first, uint32_t count)
{
	for (uint32_t i = first; i < first + count; i++) {
		struct shmchan_role *e = (struct shmchan_role *)(mem + SHMCHAN_OFF_ROLES + 64 * i);
		if (__atomic_load_n(&e->pid, __ATOMIC_SEQ_CST) == (uint32_t)getpid())
			return e;
	}
	fail("own entry", SHMCHAN_ECORRUPT);
}

/* A reader receives a stream until it is closed. join takes the receiver
 * role with a try receive (so that the test knows this process holds it),
 * which may already bring a value when value_ok; next returns the next
 * value's seq in *seq, 0 at ECLOSED. */
struct reader {
	shmchan *c;
	int bytes, rc;
	unsigned char buf[128];
	size_t n;
};

static void reader_join(struct reader *r, int value_ok)
{
	r->rc = shmchan_recv(r->c, r->buf, sizeof r->buf, &r->n, 0);
	if (r->rc != SHMCHAN_EEMPTY && !(value_ok && r->rc == SHMCHAN_OK))
		fail("first recv", r->rc);
	say("ready");
}

static int reader_next(struct reader *r, uint64_t *seq)
{
	if (r->rc != SHMCHAN_OK)
		r->rc = shmchan_recv(r->c, r->buf, sizeof r->buf, &r->n, -1);
	if (r->rc == SHMCHAN_ECLOSED)
		return 0;
	if (r->rc != SHMCHAN_OK)
		fail("recv", r->rc);
	r->rc = SHMCHAN_EEMPTY;
	*seq = seq_of(r->bytes, r->buf, r->n, "torn or corrupt value");
	return 1;
}

/* send: count values, seq = id<<40 | start.., pausing pause_us= after
 * every every= values, then close_send if close=1. */
static int do_send(void)
{
	int bytes, rc;
	shmchan *c = open_peer(&bytes);
	uint64_t id = num("id", 0), start = num("start", 0), count = num("count", 0);
	uint64_t every = num("every", 0), pause_us = num("pause_us", 0); /* pause every so many values */
	unsigned char buf[128];
	say("ready");
	for (uint64_t i = start; i < start + count; i++) {
		size_t n = encode(bytes, id << 40 | i, buf);
		if ((rc = shmchan_send(c, buf, n, -1)) != SHMCHAN_OK)
			return die("send", rc);
		if (every && (i + 1) % every == 0) {
			struct timespec p = { 0, (long)pause_us * 1000 };
			nanosleep(&p, NULL);
		}
	}
	if (num("close", 0) && (rc = shmchan_close_send(c)) != SHMCHAN_OK)
		return die("close_send", rc);
	say("done");
	shmchan_close(c);
	return 0;
}

/* recv: receive until closed (or total= values), checking that each
 * producer's values arrive in order, from 0, and intact. */
static int do_recv(void)
{
	struct reader r = { 0 };
	r.c = open_peer(&r.bytes);
	uint64_t total = num("total", UINT64_MAX), got = 0, seq;
	uint64_t next[64] = { 0 };
	reader_join(&r, 1);
	for (; got < total && reader_next(&r, &seq); got++) {
		uint64_t id = seq >> 40, i = seq & ((1ull << 40) - 1);
		if (id >= 64 || i != next[id]) {
			say("error order: producer %" PRIu64 " sent %" PRIu64 ", want %" PRIu64, id, i,
			    id < 64 ? next[id] : 0);
			return 1;
		}
		next[id]++;
	}
	if (total != UINT64_MAX && num("close", 0)) {
		/* All arrived; the close follows (the sender may still be on
		 * its way to it). */
		int rc = shmchan_recv(r.c, r.buf, sizeof r.buf, &r.n, -1);
		if (rc != SHMCHAN_ECLOSED)
			return die("after the last value", rc);
	}
	for (int id = 0; id < 64; id++)
		if (next[id])
			say("producer %d %" PRIu64, id, next[id]);
	say("received %" PRIu64, got);
	shmchan_close(r.c);
	return 0;
}

/* report: receive forever, printing each value's seq. */
static int do_report(void)
{
	struct reader r = { 0 };
	r.c = open_peer(&r.bytes);
	uint64_t seq;
	reader_join(&r, 0);
	while (reader_next(&r, &seq))
		say("got %" PRIu64, seq);
	return die("recv", SHMCHAN_ECLOSED);
}

/* claimhang: send count values, then claim the next claims= positions
 * (default 1) the way a producer does (FORMAT.md, MPSC steps 2 and 3) and
 * never commit them. */
static int do_claimhang(void)
{
	int rc;
	shmchan *c = open_peer(NULL);
	unsigned char buf[128];
	uint64_t id = num("id", 0), count = num("count", 0);
	for (uint64_t i = 0; i < count; i++) {
		size_t n = encode(0, id << 40 | i, buf);
		if ((rc = shmchan_send(c, buf, n, -1)) != SHMCHAN_OK)
			return die("send", rc);
	}
	size_t len;
	unsigned char *mem = (unsigned char *)shmchan_region_base(c, &len);
	struct shmchan_region *r = (struct shmchan_region *)mem;
	struct shmchan_role *e = own_role(mem, 1, r->hdr.producers);
	uint64_t k = num("claims", 1);
	for (;;) {
		uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_SEQ_CST);
		__atomic_store_n(&e->claim_hi, t + k, __ATOMIC_SEQ_CST);
		__atomic_store_n(&e->claim_lo, t, __ATOMIC_SEQ_CST);
		if (__atomic_compare_exchange_n(&r->tail, &t, t + k, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			say("claimed %" PRIu64, t);
			break;
		}
	}
	hang();
}

/* hold: take a role (role=send|recv) and keep it until killed. */
static int do_hold(void)
{
	int rc;
	shmchan *c = open_peer(NULL);
	unsigned char buf[128];
	size_t n;
	if (strcmp(arg("role", "recv"), "recv") == 0)
		rc = shmchan_recv(c, buf, sizeof buf, &n, 0);
	else
		rc = shmchan_close_send(c) == SHMCHAN_OK ? SHMCHAN_EEMPTY : SHMCHAN_EBUSY;
	if (rc != SHMCHAN_EEMPTY)
		return die("take role", rc);
	say("holding");
	hang();
}

/* wqrecv: a work-queue receiver. Receive until closed, checking that each
 * value is intact and that each producer's values come in increasing order
 * (a receiver claims positions in order); write every seq, 8 bytes, to
 * out=. */
static int do_wqrecv(void)
{
	struct reader r = { 0 };
	r.c = open_peer(&r.bytes);
	FILE *out = fopen(arg("out", ""), "wb");
	if (out == NULL)
		return die("out file", SHMCHAN_ESYS);
	uint64_t got = 0, last[64], seq;
	memset(last, 0xff, sizeof last);
	reader_join(&r, 1);
	for (; reader_next(&r, &seq); got++) {
		uint64_t id = seq >> 40, i = seq & ((1ull << 40) - 1);
		if (id >= 64 || (last[id] != UINT64_MAX && i <= last[id])) {
			say("error order: producer %" PRIu64 " sent %" PRIu64 " after %" PRIu64, id, i, id < 64 ? last[id] : 0);
			return 1;
		}
		last[id] = i;
		fwrite(&seq, 8, 1, out);
	}
	if (fclose(out) != 0)
		return die("out file", SHMCHAN_ESYS);
	say("received %" PRIu64, got);
	shmchan_close(r.c);
	return 0;
}

/* wqhold: take a work-queue receiver role and hold one value (a receive
 * into a buffer too small for it: ETOOLARGE keeps it held) until killed. */
static int do_wqhold(void)
{
	int rc;
	shmchan *c = open_peer(NULL);
	unsigned char buf[1];
	size_t n;
	if ((rc = shmchan_recv(c, buf, 0, &n, -1)) != SHMCHAN_ETOOLARGE)
		return die("hold", rc);
	say("holding %zu", n);
	hang();
}

/* wqstale: a work-queue receiver that dies half-way through consuming:
 * it holds a value (as wqhold), stores the slot's consumed mark and
 * withdraws its claim (FORMAT.md, work queue step 3), then exits before
 * moving head. */
static int do_wqstale(void)
{
	int rc;
	shmchan *c = open_peer(NULL);
	unsigned char buf[1];
	size_t n, len;
	if ((rc = shmchan_recv(c, buf, 0, &n, -1)) != SHMCHAN_ETOOLARGE)
		return die("hold", rc);
	unsigned char *mem = (unsigned char *)shmchan_region_base(c, &len);
	struct shmchan_region *r = (struct shmchan_region *)mem;
	struct shmchan_role *e = own_role(mem, 1 + r->hdr.producers, r->hdr.consumers);
	uint64_t p = __atomic_load_n(&e->claim_lo, __ATOMIC_SEQ_CST);
	struct shmchan_slot *sl = (struct shmchan_slot *)(mem + r->hdr.data_offset +
							  (p & (r->hdr.capacity - 1)) * r->hdr.slot_size);
	__atomic_store_n(&sl->seq, (uint32_t)(p + 1) ^ SHMCHAN_CONSUMED_BIT, __ATOMIC_SEQ_CST);
	__atomic_store_n(&e->claim_lo, __atomic_load_n(&e->claim_hi, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
	say("consumed %" PRIu64, p);
	_exit(0);
}

/* lock: hold the OFD lock on byte off= of /dev/shm/name= until killed (the
 * rescue lock, say). */
static int do_lock(void)
{
	char path[512];
	snprintf(path, sizeof path, "/dev/shm/%s", arg("name", ""));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return die("open", SHMCHAN_ESYS);
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)num("off", 0);
	lk.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &lk) != 0)
		return die("lock", SHMCHAN_EBUSY);
	say("locked");
	hang();
}

/* bcast: a broadcast receiver that reads in phases. It joins and prints
 * "ready"; then, for each line on stdin, it receives what is there (try
 * receives until EEMPTY), printing "lagged N" for an ELAGGED and "got SEQ"
 * per value, then "idle"; at ECLOSED it prints "closed" and exits. */
static int do_bcast(void)
{
	int bytes, rc;
	shmchan *c = open_peer(&bytes);
	unsigned char buf[128];
	size_t n;
	if ((rc = shmchan_recv(c, buf, sizeof buf, &n, 0)) != SHMCHAN_EEMPTY)
		return die("join", rc);
	say("ready");
	char line[64];
	while (fgets(line, sizeof line, stdin) != NULL) {
		for (;;) {
			rc = shmchan_recv(c, buf, sizeof buf, &n, 0);
			if (rc == SHMCHAN_ELAGGED) {
				say("lagged %" PRIu64, shmchan_missed(c));
				continue;
			}
			if (rc == SHMCHAN_EEMPTY)
				break;
			if (rc == SHMCHAN_ECLOSED) {
				say("closed");
				shmchan_close(c);
				return 0;
			}
			if (rc != SHMCHAN_OK)
				return die("recv", rc);
			say("got %" PRIu64, seq_of(bytes, buf, n, "torn value"));
		}
		say("idle");
	}
	return die("stdin closed", SHMCHAN_EINVAL);
}

/* bcastslow: a DropOldest receiver slower than its sender. It receives
 * until closed, pausing now and then; every value must be intact and be
 * exactly the next one expected, where an ELAGGED with missed = m moves
 * the expectation on by m (one producer, id=). Prints the totals. */
static int do_bcastslow(void)
{
	int bytes, rc;
	shmchan *c = open_peer(&bytes);
	uint64_t id = num("id", 0), every = num("every", 100), pause_us = num("pause_us", 300);
	unsigned char buf[128];
	size_t n;
	if ((rc = shmchan_recv(c, buf, sizeof buf, &n, 0)) != SHMCHAN_EEMPTY)
		return die("join", rc);
	say("ready");
	uint64_t next = 0, got = 0, missed = 0, lags = 0;
	for (;;) {
		rc = shmchan_recv(c, buf, sizeof buf, &n, -1);
		if (rc == SHMCHAN_ECLOSED)
			break;
		if (rc == SHMCHAN_ELAGGED) {
			uint64_t m = shmchan_missed(c);
			if (m == 0)
				return die("ELAGGED with nothing missed", rc);
			next += m;
			missed += m;
			lags++;
			continue;
		}
		if (rc != SHMCHAN_OK)
			return die("recv", rc);
		uint64_t seq = seq_of(bytes, buf, n, "torn value");
		if (seq != (id << 40 | next)) {
			say("error order: got %" PRIu64 ", want %" PRIu64, seq & ((1ull << 40) - 1), next);
			return 1;
		}
		next++;
		got++;
		if (every && got % every == 0) {
			struct timespec p = { 0, (long)pause_us * 1000 };
			nanosleep(&p, NULL);
		}
	}
	say("received %" PRIu64 " missed %" PRIu64 " lags %" PRIu64, got, missed, lags);
	shmchan_close(c);
	return 0;
}

/* open: open each name read from stdin (one per line), print its code. */
static int do_open(void)
{
	char line[512];
	unsigned flags = (unsigned)num("foreign", 0);
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\n")] = 0;
		shmchan *c = NULL;
		int64_t t0 = mono_ns();
		int rc = shmchan_open_flags(line, flags, &c);
		int64_t dt = mono_ns() - t0;
		shmchan_close(c);
		say("%s %d %" PRId64 " %s", line, rc, dt / 1000000, shmchan_last_error());
	}
	return 0;
}

/* info: open name= and print what the header says. */
static int do_info(void)
{
	shmchan *c = open_peer(NULL);
	shmchan_info in;
	shmchan_get_info(c, &in);
	say("mode %u wait %u flags %u producers %u max_msg %u capacity %" PRIu64 " fingerprint %#" PRIx64
	    " codec %s type %s", in.mode, in.wait, in.flags, in.producers, in.max_msg, in.capacity,
	    in.fingerprint, in.codec_name, in.type_name);
	shmchan_close(c);
	return 0;
}

/* unlink: shmchan_unlink(name=), printing its code. */
static int do_unlink(void)
{
	say("unlink %d", shmchan_unlink(arg("name", "")));
	return 0;
}

/* xxh: XXH64 of the buffers b[i] = (i*131+7) & 0xff of every length up to
 * max=, seed=; and of the []byte fingerprint's input. */
static int do_xxh(void)
{
	uint64_t max = num("max", 300), seed = num("seed", 0);
	unsigned char *b = (unsigned char *)malloc(max + 1);
	for (uint64_t i = 0; i <= max; i++)
		b[i] = (unsigned char)(i * 131 + 7);
	for (uint64_t n = 0; n <= max; n++)
		say("%" PRIu64 " %016" PRIx64, n, shmchan_xxh64(b, n, seed));
	free(b);
	static const char in[] = "shmchan/codec/v1\0bytes\0[]uint8";
	say("bytes %016" PRIx64 " %016" PRIx64, shmchan_xxh64(in, sizeof in - 1, 0), (uint64_t)SHMCHAN_FP_BYTES);
	static const char sin[] = "shmchan/codec/v1\0string\0string";
	say("string %016" PRIx64 " %016" PRIx64, shmchan_xxh64(sin, sizeof sin - 1, 0), (uint64_t)SHMCHAN_FP_STRING);
	return 0;
}

/* echo: the wake-up stress. Receive a timestamp on in=, note how late it
 * arrived, pause a random while (so the Go side falls asleep), send a fresh
 * timestamp on out=; n= rounds. Prints the worst and the sum of latencies,
 * the wakes and sleeps, and the rounds that look like a lost wake-up: the
 * value came late (> lost_ms=), the receiver slept at least twice in the
 * round (past its first, bounded sleep), and the sender issued no wake. */
static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int do_echo(void)
{
	shmchan *in, *out;
	int rc = shmchan_open(arg("in", ""), &in);
	if (rc != SHMCHAN_OK)
		return die("open in", rc);
	if ((rc = shmchan_open(arg("out", ""), &out)) != SHMCHAN_OK)
		return die("open out", rc);
	uint64_t rounds = num("n", 100), maxpause = num("pause_us", 1500);
	int64_t worst = 0, sum = 0, lost_ns = (int64_t)num("lost_ms", 10) * 1000000;
	uint64_t lost = 0, late = 0;
	int64_t *lats = (int64_t *)calloc(rounds + 1, sizeof *lats);
	shmchan_stats st0, st1;
	unsigned seed = (unsigned)getpid();
	unsigned char buf[64];
	size_t n;
	rc = shmchan_recv(in, buf, sizeof buf, &n, 0);
	if (rc != SHMCHAN_EEMPTY)
		return die("join", rc);
	say("ready");
	for (uint64_t i = 0; i < rounds; i++) {
		shmchan_get_stats(in, &st0);
		if ((rc = shmchan_recv(in, buf, sizeof buf, &n, -1)) != SHMCHAN_OK)
			return die("recv", rc);
		int64_t now = mono_ns(), ts;
		shmchan_get_stats(in, &st1);
		if (n != 16)
			return die("size", SHMCHAN_ECORRUPT);
		memcpy(&ts, buf, 8);
		int64_t lat = now - ts;
		if (lat > lost_ns) {
			late++;
			if (st1.sender_wakes == st0.sender_wakes && st1.recv_sleeps - st0.recv_sleeps >= 2) {
				lost++;
				say("lost? round %" PRIu64 ": %" PRId64 " ns late, %" PRIu64 " sleeps, no wake", i, lat,
				    st1.recv_sleeps - st0.recv_sleeps);
			}
		}
		lats[i] = lat;
		if (lat > worst)
			worst = lat;
		sum += lat;
		struct timespec p = { 0, (long)(rand_r(&seed) % (maxpause + 1)) * 1000 };
		nanosleep(&p, NULL);
		int64_t t = mono_ns();
		memcpy(buf, &t, 8);
		memcpy(buf + 8, &i, 8);
		if ((rc = shmchan_send(out, buf, 16, -1)) != SHMCHAN_OK)
			return die("send", rc);
	}
	shmchan_stats st;
	shmchan_get_stats(in, &st);
	qsort(lats, rounds, sizeof *lats, cmp64);
	say("worst %" PRId64 " sum %" PRId64 " wakes %" PRIu64 " sleeps %" PRIu64 " late %" PRIu64 " lost %" PRIu64
	    " p99 %" PRId64, worst, sum, st.sender_wakes, st.recv_sleeps, late, lost, lats[rounds * 99 / 100]);
	free(lats);
	shmchan_close(in);
	shmchan_close(out);
	return 0;
}

/* api: the calls' edge cases, on a fresh channel name= of its own. */
static int do_api(void)
{
	const char *name = arg("name", "");
	int fails = 0;
#define CHECK(expr, want) do { int got_ = (expr); if (got_ != (want)) { \
	say("error %s = %d (%s), want %d", #expr, got_, shmchan_strerror(got_), (want)); fails++; } } while (0)
	shmchan *c = NULL, *d = NULL;
	shmchan_params p;
	shmchan_params_init(&p);
	CHECK(shmchan_open("", &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open("/", &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open(".", &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open("/..", &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open("a/b", &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open("//a", &c), SHMCHAN_EINVAL);
	char longname[300];
	memset(longname, 'x', 256);
	longname[256] = 0;
	CHECK(shmchan_open(longname, &c), SHMCHAN_EINVAL);
	CHECK(shmchan_open(longname + 1, &c), SHMCHAN_ENOENT); /* 255 bytes: valid, absent */
	CHECK(shmchan_unlink(name), SHMCHAN_ENOENT);
	p.topology = 3;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.topology = SHMCHAN_TOPO_SINGLE;
	p.consumers = 2;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.consumers = 0;
	p.overflow = SHMCHAN_DROP_OLDEST;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.topology = SHMCHAN_TOPO_WORKQUEUE;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.overflow = 0;
	p.capacity = (1ull << 29) + 1; /* rounds up to 2^30: over a work queue's limit */
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.topology = SHMCHAN_TOPO_BROADCAST;
	p.overflow = 2;
	p.capacity = 0;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.overflow = 0;
	p.consumers = SHMCHAN_MAX_CONSUMERS + 1;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.consumers = 0;
	p.topology = SHMCHAN_TOPO_SINGLE;
	p.wait = 7;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_EINVAL);
	p.wait = 0;
	p.capacity = 5; /* rounded up to 8 */
	p.max_msg = 10;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_OK);
	CHECK(shmchan_create(name, &p, &d), SHMCHAN_EEXIST);
	if (c == NULL)
		return 1;
	CHECK((int)shmchan_cap(c), 8);
	CHECK(shmchan_open(name, &d), SHMCHAN_OK); /* a second handle */
	unsigned char buf[32];
	size_t n = 99;
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), SHMCHAN_EEMPTY);
	CHECK((int)n, 0);
	CHECK(shmchan_recv(d, buf, sizeof buf, &n, 0), SHMCHAN_EBUSY); /* c holds the receiver role */
	int64_t t0 = mono_ns();
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, 20000000), SHMCHAN_ETIMEDOUT);
	int64_t dt = mono_ns() - t0;
	if (dt < 20000000 || dt > 2000000000) {
		say("error a 20 ms receive timeout took %" PRId64 " ns", dt);
		fails++;
	}
	CHECK(shmchan_send(c, "0123456789A", 11, 0), SHMCHAN_ETOOLARGE);
	for (int i = 0; i < 8; i++)
		CHECK(shmchan_send(c, "0123456789", (size_t)i + 1, 0), SHMCHAN_OK);
	CHECK(shmchan_send(d, "x", 1, 0), SHMCHAN_EBUSY); /* SPSC: c holds the sender role */
	CHECK(shmchan_send(c, "x", 1, 0), SHMCHAN_EFULL);
	t0 = mono_ns();
	CHECK(shmchan_send(c, "x", 1, 20000000), SHMCHAN_ETIMEDOUT);
	if (mono_ns() - t0 < 20000000) {
		say("error a 20 ms send timeout returned early");
		fails++;
	}
	CHECK((int)shmchan_len(c), 8);
	CHECK(shmchan_recv(c, buf, 0, &n, 0), SHMCHAN_ETOOLARGE); /* nothing consumed */
	CHECK((int)n, 1);
	CHECK(shmchan_recv(c, buf, 1, &n, 0), SHMCHAN_OK);
	CHECK((int)n, 1);
	CHECK(shmchan_recv(c, buf, 1, &n, 0), SHMCHAN_ETOOLARGE);
	CHECK((int)n, 2);
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), SHMCHAN_OK);
	CHECK((int)n, 2);
	CHECK(memcmp(buf, "01", 2), 0);
	CHECK(shmchan_close_send(c), SHMCHAN_OK);
	CHECK(shmchan_send(c, "x", 1, -1), SHMCHAN_ECLOSED);
	for (int i = 2; i < 8; i++)
		CHECK(shmchan_recv(c, buf, sizeof buf, &n, -1), SHMCHAN_OK);
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, -1), SHMCHAN_ECLOSED);
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), SHMCHAN_ECLOSED);
	shmchan_stats st;
	CHECK(shmchan_get_stats(c, &st), SHMCHAN_OK);
	CHECK((int)st.sent, 8);
	CHECK(st.closed, 1);
	CHECK((int)shmchan_missed(c), 0);
	shmchan_close(d);
	shmchan_close(c);
	shmchan_close(NULL);
	/* Both roles released: a new handle takes them. */
	CHECK(shmchan_open(name, &c), SHMCHAN_OK);
	CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), SHMCHAN_ECLOSED);
	CHECK(shmchan_send(c, "x", 1, 0), SHMCHAN_ECLOSED);
	shmchan_close(c);
	CHECK(shmchan_unlink(name), SHMCHAN_OK);
	CHECK(shmchan_unlink(name), SHMCHAN_ENOENT);

	/* A raw channel: short sends are EINVAL. */
	shmchan_params_init(&p);
	p.raw = 1;
	p.max_msg = 16;
	p.fingerprint = 0x1234;
	CHECK(shmchan_create(name, &p, &c), SHMCHAN_OK);
	CHECK(shmchan_send(c, buf, 15, 0), SHMCHAN_EINVAL);
	CHECK(shmchan_send(c, buf, 17, 0), SHMCHAN_ETOOLARGE);
	CHECK(shmchan_send(c, buf, 16, 0), SHMCHAN_OK);
	shmchan_info in;
	CHECK(shmchan_get_info(c, &in), SHMCHAN_OK);
	CHECK(strcmp(in.codec_name, "raw"), 0);
	CHECK(in.fingerprint == 0x1234, 1);
	shmchan_close(c);
	CHECK(shmchan_unlink(name), SHMCHAN_OK);
	/* Fan-out: a receiver takes a free consumer entry (EBUSY past them);
	 * a broadcast receiver joins at a timeout-0 receive, its len is its
	 * own backlog, and it has missed nothing before a lag. */
	for (int topo = SHMCHAN_TOPO_WORKQUEUE; topo <= SHMCHAN_TOPO_BROADCAST; topo++) {
		shmchan_params_init(&p);
		p.topology = (uint32_t)topo;
		p.consumers = 1;
		p.capacity = 4;
		p.max_msg = 8;
		CHECK(shmchan_create(name, &p, &c), SHMCHAN_OK);
		if (c == NULL)
			return 1;
		CHECK(shmchan_open(name, &d), SHMCHAN_OK);
		shmchan_info fi;
		CHECK(shmchan_get_info(c, &fi), SHMCHAN_OK);
		CHECK((int)fi.mode, topo == SHMCHAN_TOPO_WORKQUEUE ? SHMCHAN_MODE_WORKQUEUE : SHMCHAN_MODE_BROADCAST);
		CHECK((int)fi.consumers, 1);
		CHECK((int)fi.producers, 1);
		CHECK((int)fi.flags, 0);
		CHECK(shmchan_send(c, "a", 1, 0), SHMCHAN_OK); /* before the broadcast receiver joins: not its */
		CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), topo == SHMCHAN_TOPO_WORKQUEUE ? SHMCHAN_OK : SHMCHAN_EEMPTY);
		CHECK(shmchan_recv(d, buf, sizeof buf, &n, 0), SHMCHAN_EBUSY); /* the one consumer entry is c's */
		CHECK(shmchan_send(d, "b", 1, 0), SHMCHAN_EBUSY);           /* one sender entry: c's */
		CHECK(shmchan_send(c, "b", 1, 0), SHMCHAN_OK);
		CHECK((int)shmchan_len(c), 1);
		CHECK(shmchan_recv(c, buf, 0, &n, 0), SHMCHAN_ETOOLARGE);
		CHECK(shmchan_recv(c, buf, sizeof buf, &n, 0), SHMCHAN_OK);
		CHECK(n == 1 && buf[0] == 'b', 1);
		CHECK((int)shmchan_missed(c), 0);
		CHECK(shmchan_close_send(c), SHMCHAN_OK);
		CHECK(shmchan_recv(c, buf, sizeof buf, &n, -1), SHMCHAN_ECLOSED);
		shmchan_close(d);
		shmchan_close(c);
		CHECK(shmchan_unlink(name), SHMCHAN_OK);
	}
	if (strcmp(shmchan_strerror(SHMCHAN_EBUSY), shmchan_strerror(12345)) == 0)
		fails++;
	say(fails ? "failed %d" : "ok", fails);
	return fails != 0;
}

int main(int argc, char **argv)
{
	argc_ = argc;
	argv_ = argv;
	if (argc < 2) {
		fprintf(stderr, "usage: peer MODE key=value...\n");
		return 2;
	}
	const char *m = argv[1];
	if (strcmp(m, "send") == 0) return do_send();
	if (strcmp(m, "recv") == 0) return do_recv();
	if (strcmp(m, "report") == 0) return do_report();
	if (strcmp(m, "claimhang") == 0) return do_claimhang();
	if (strcmp(m, "hold") == 0) return do_hold();
	if (strcmp(m, "open") == 0) return do_open();
	if (strcmp(m, "info") == 0) return do_info();
	if (strcmp(m, "xxh") == 0) return do_xxh();
	if (strcmp(m, "echo") == 0) return do_echo();
	if (strcmp(m, "api") == 0) return do_api();
	if (strcmp(m, "unlink") == 0) return do_unlink();
	if (strcmp(m, "wqrecv") == 0) return do_wqrecv();
	if (strcmp(m, "wqhold") == 0) return do_wqhold();
	if (strcmp(m, "wqstale") == 0) return do_wqstale();
	if (strcmp(m, "lock") == 0) return do_lock();
	if (strcmp(m, "bcast") == 0) return do_bcast();
	if (strcmp(m, "bcastslow") == 0) return do_bcastslow();
	fprintf(stderr, "peer: unknown mode %s\n", m);
	return 2;
}
