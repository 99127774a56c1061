/*
 * shmchan.c: the implementation of shmchan.h, written from layout/FORMAT.md.
 *
 * The sections follow the document: names and opening, the header and its
 * validation (with our own XXH64), role entries and their locks, waiting
 * and waking, then one group of functions per topology (SPSC, MPSC) behind
 * a small table, chosen once when a region is opened. A later layout version
 * adds its topologies as further tables.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64

#include "shmchan.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shmchan regions are little-endian and use native atomics: a big-endian host cannot take part"
#endif

_Static_assert(sizeof(struct shmchan_header) == 256, "header size");
_Static_assert(sizeof(struct shmchan_role) == 64, "role entry size");
_Static_assert(sizeof(struct shmchan_region) == SHMCHAN_OFF_ROLES, "mutable words end at the roles");
_Static_assert(offsetof(struct shmchan_region, tail) == 320, "tail");
_Static_assert(offsetof(struct shmchan_region, send_seq) == 512, "send_seq");

/* Tunables, as in the Go implementation (FORMAT.md, "Waiting"). */
#define DEFAULT_SPIN_NS   50000LL      /* spin before sleeping */
#define MAX_SLEEP_NS      200000000LL  /* every sleep is bounded */
#define FIRST_SLEEP_NS    100000LL     /* the first sleep of a call, taken without the barrier */
#define POLL_SLEEP_NS     1000000LL    /* sleeps when no barrier is available */
#define STUCK_CHECK_NS    10000000LL   /* MPSC: wait on an uncommitted slot before checking its writer */
#define READY_WAIT_NS     1000000000LL /* an opener waits this long for the creator */
#define DEFAULT_CAPACITY  1024
#define DEFAULT_MAX_MSG   4096
#define DEFAULT_PRODUCERS 64
#define SHM_DIR           "/dev/shm/"
#define NAME_MAX_LEN      255

struct topo;

struct shmchan {
	int fd;                       /* the region's descriptor: holds the role locks */
	unsigned char *mem;           /* the mapping, total_size bytes */
	size_t len;
	struct shmchan_region *r;
	struct shmchan_header h;      /* the validated private copy */
	uint64_t cap, mask, stride;
	uint32_t max_msg;
	const struct topo *t;
	int mq[2];                    /* WaitMQ doorbells: [0] /<name>.rx, [1] /<name>.tx; -1 otherwise */
	char base[NAME_MAX_LEN + 1];  /* name without the leading slash */
	int64_t spin_ns, stuck_ns;

	/* Sender role: entry 1..producers, 0 while none is held. */
	int s_entry;
	uint64_t s_tail;              /* SPSC: next position to write (the authoritative tail) */
	uint64_t s_head;              /* last head seen: it only grows, so a stale copy is conservative */
	int s_closed;
	uint64_t s_sent;              /* MPSC: this entry's sent counter */

	/* Receiver role (entry 0). */
	int r_held;
	uint64_t r_head;              /* the authoritative head */
	uint64_t r_tail;              /* tail count last seen */
	int r_closed;
	uint64_t stuck_pos;           /* MPSC: the uncommitted position waited on, and since when */
	int64_t stuck_since;
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

const char *shmchan_strerror(int code)
{
	switch (code) {
	case SHMCHAN_OK: return "success";
	case SHMCHAN_EFULL: return "channel full";
	case SHMCHAN_EEMPTY: return "channel empty";
	case SHMCHAN_ECLOSED: return "channel closed";
	case SHMCHAN_ETOOLARGE: return "value too large";
	case SHMCHAN_ECORRUPT: return "region corrupt";
	case SHMCHAN_EINCOMPATIBLE: return "region incompatible (layout version or parameters)";
	case SHMCHAN_EBUSY: return "role held by a live process";
	case SHMCHAN_ENOENT: return "no such channel";
	case SHMCHAN_ETIMEDOUT: return "timed out";
	case SHMCHAN_EINVAL: return "invalid argument";
	case SHMCHAN_ESYS: return "system call failed (see errno)";
	case SHMCHAN_ELAGGED: return "values were overwritten before they were read";
	case SHMCHAN_EEXIST: return "channel exists";
	case SHMCHAN_EPERM: return "permission denied (or owned by another user)";
	}
	return "unknown shmchan error";
}

/* ------------------------------------------------------------------------ */
/* XXH64, from the algorithm's description (FORMAT.md, "Checksum").          */

#define XP1 0x9E3779B185EBCA87ull
#define XP2 0xC2B2AE3D27D4EB4Full
#define XP3 0x165667B19E3779F9ull
#define XP4 0x85EBCA77C2B2AE63ull
#define XP5 0x27D4EB2F165667C5ull

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8); /* little-endian host */
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t xround(uint64_t acc, uint64_t in)
{
	acc += in * XP2;
	acc = rotl64(acc, 31);
	return acc * XP1;
}

static uint64_t xmerge(uint64_t acc, uint64_t v)
{
	acc ^= xround(0, v);
	return acc * XP1 + XP4;
}

uint64_t shmchan_xxh64(const void *data, size_t n, uint64_t seed)
{
	const unsigned char *p = (const unsigned char *)data, *end = p + n;
	uint64_t h;
	if (n >= 32) {
		uint64_t v1 = seed + XP1 + XP2, v2 = seed + XP2, v3 = seed, v4 = seed - XP1;
		do {
			v1 = xround(v1, rd64(p));
			v2 = xround(v2, rd64(p + 8));
			v3 = xround(v3, rd64(p + 16));
			v4 = xround(v4, rd64(p + 24));
			p += 32;
		} while (end - p >= 32);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = xmerge(h, v1);
		h = xmerge(h, v2);
		h = xmerge(h, v3);
		h = xmerge(h, v4);
	} else {
		h = seed + XP5;
	}
	h += (uint64_t)n;
	for (; end - p >= 8; p += 8) {
		h ^= xround(0, rd64(p));
		h = rotl64(h, 27) * XP1 + XP4;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)rd32(p) * XP1;
		h = rotl64(h, 23) * XP2 + XP3;
		p += 4;
	}
	for (; p < end; p++) {
		h ^= (uint64_t)*p * XP5;
		h = rotl64(h, 11) * XP1;
	}
	h ^= h >> 33;
	h *= XP2;
	h ^= h >> 29;
	h *= XP3;
	h ^= h >> 32;
	return h;
}

/* ------------------------------------------------------------------------ */
/* Time, futexes, membarrier                                                 */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec rel_ts(int64_t ns)
{
	struct timespec ts;
	if (ns < 0)
		ns = 0;
	ts.tv_sec = (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	return ts;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = rel_ts(ns);
	nanosleep(&ts, NULL);
}

/* Shared futexes (no FUTEX_PRIVATE_FLAG): the sleepers are in other
 * processes. FUTEX_WAIT's timeout is relative, measured on CLOCK_MONOTONIC. */
static void futex_wait(uint32_t *addr, uint32_t val, int64_t ns)
{
	struct timespec ts = rel_ts(ns);
	syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void futex_wake_all(uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* membarrier(2) commands (linux/membarrier.h). */
#define MB_CMD_QUERY                    0
#define MB_CMD_GLOBAL_EXPEDITED         (1 << 1)
#define MB_CMD_REGISTER_GLOBAL_EXPEDITED (1 << 2)

/* 0: not tried yet; 1: this process is registered and the barrier works
 * (publish with plain release stores, sleepers issue the barrier); 2: it
 * does not (publish with sequentially consistent stores; sleepers poll). */
static int barrier_state;

static int barrier_ok(void)
{
	int s = __atomic_load_n(&barrier_state, __ATOMIC_ACQUIRE);
	if (s != 0)
		return s == 1;
	s = 2;
	long mask = syscall(SYS_membarrier, MB_CMD_QUERY, 0, 0);
	const long need = MB_CMD_GLOBAL_EXPEDITED | MB_CMD_REGISTER_GLOBAL_EXPEDITED;
	if (mask >= 0 && (mask & need) == need &&
	    syscall(SYS_membarrier, MB_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0 &&
	    syscall(SYS_membarrier, MB_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
		s = 1;
	__atomic_store_n(&barrier_state, s, __ATOMIC_RELEASE);
	return s == 1;
}

static int barrier_now(void)
{
	return syscall(SYS_membarrier, MB_CMD_GLOBAL_EXPEDITED, 0, 0) == 0;
}

/* Publishing stores (FORMAT.md, "Waiting", the fence rule): a plain release
 * store only when this process is registered for the global expedited
 * barrier, and only on x86, where a release store is a plain MOV; otherwise
 * a sequentially consistent store, correct against any sleeper. */
static void publish64(uint64_t *p, uint64_t v)
{
#if defined(__x86_64__)
	if (__atomic_load_n(&barrier_state, __ATOMIC_RELAXED) == 1) {
		__atomic_store_n(p, v, __ATOMIC_RELEASE);
		return;
	}
#endif
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static void publish32(uint32_t *p, uint32_t v)
{
#if defined(__x86_64__)
	if (__atomic_load_n(&barrier_state, __ATOMIC_RELAXED) == 1) {
		__atomic_store_n(p, v, __ATOMIC_RELEASE);
		return;
	}
#endif
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_SC(p)  __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v)   __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

static int cas32(uint32_t *p, uint32_t old, uint32_t nw)
{
	return __atomic_compare_exchange_n(p, &old, nw, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static int cas64(uint64_t *p, uint64_t old, uint64_t nw)
{
	return __atomic_compare_exchange_n(p, &old, nw, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------------ */
/* POSIX message queues, through their system calls (no librt needed).       */

struct kmq_attr {        /* struct mq_attr as the kernel sees it */
	long mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs, pad[4];
};

static int mq_open_sys(const char *name, int oflag, unsigned mode, struct kmq_attr *a)
{
	return (int)syscall(SYS_mq_open, name, oflag, mode, a);
}

/* Ring a doorbell: a one-byte token, never blocking (the descriptor is
 * O_NONBLOCK); a full queue already holds a pending ring. */
static void mq_ring(int fd)
{
	static const char token = 1;
	syscall(SYS_mq_timedsend, fd, &token, (size_t)1, 0u, NULL);
}

/* Sleep on a doorbell for at most ns: poll the non-blocking descriptor,
 * then take one token. Returns 1 if a token was taken. */
static int mq_sleep(int fd, int64_t ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
	struct timespec ts = rel_ts(ns);
	if (ppoll(&p, 1, &ts, NULL) <= 0 || !(p.revents & POLLIN))
		return 0;
	char buf[8];
	unsigned prio;
	return syscall(SYS_mq_timedreceive, fd, buf, sizeof buf, &prio, NULL) >= 0;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

/* Checks a name and copies it without its optional leading slash. */
static int clean_name(const char *name, char *base)
{
	if (name == NULL)
		return SHMCHAN_EINVAL;
	if (name[0] == '/')
		name++;
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return SHMCHAN_EINVAL;
	memcpy(base, name, n + 1);
	return SHMCHAN_OK;
}

static void shm_path(const char *base, char *path)
{
	memcpy(path, SHM_DIR, sizeof SHM_DIR - 1);
	memcpy(path + sizeof SHM_DIR - 1, base, strlen(base) + 1);
}

/* The doorbell names, "<base>.rx" and "<base>.tx" (mq_open takes them
 * without the slash). */
static int bell_name(const char *base, int which, char *out)
{
	size_t n = strlen(base);
	if (n + 3 > NAME_MAX_LEN)
		return SHMCHAN_EINVAL;
	memcpy(out, base, n);
	memcpy(out + n, which == 0 ? ".rx" : ".tx", 4);
	return SHMCHAN_OK;
}

/* ------------------------------------------------------------------------ */
/* The header                                                                */

struct geometry {
	uint32_t slot_size, data_offset;
	uint64_t total_size;
};

/* Parameter checks of FORMAT.md, Validation step 6, in its order, and the
 * derived sizes. Every failure is SHMCHAN_ECORRUPT. */
static int check_params(uint32_t mode, uint32_t wait, uint64_t capacity, uint32_t max_msg,
			uint32_t producers, uint32_t flags, struct geometry *g)
{
	if (mode != SHMCHAN_MODE_SPSC && mode != SHMCHAN_MODE_MPSC)
		return SHMCHAN_ECORRUPT;
	if (wait > SHMCHAN_WAIT_SPIN)
		return SHMCHAN_ECORRUPT;
	if (capacity == 0 || capacity > SHMCHAN_MAX_CAPACITY || (capacity & (capacity - 1)) != 0)
		return SHMCHAN_ECORRUPT;
	if (max_msg == 0 || max_msg > SHMCHAN_MAX_MSG)
		return SHMCHAN_ECORRUPT;
	if (mode == SHMCHAN_MODE_SPSC && producers != 1)
		return SHMCHAN_ECORRUPT;
	if (producers == 0 || producers > SHMCHAN_MAX_PRODUCERS)
		return SHMCHAN_ECORRUPT;
	if (flags & ~SHMCHAN_FLAG_RAW)
		return SHMCHAN_ECORRUPT;
	/* The region limit, on the derived sizes; capacity <= 2^30 and
	 * slot_size < 2^31 keep the product below 2^61. */
	g->slot_size = (SHMCHAN_SLOT_HEADER + max_msg + 7) & ~7u;
	g->data_offset = SHMCHAN_OFF_ROLES + SHMCHAN_LINE * (1 + producers);
	uint64_t slots = capacity * (uint64_t)g->slot_size;
	if (slots > SHMCHAN_MAX_TOTAL || slots + g->data_offset > SHMCHAN_MAX_TOTAL)
		return SHMCHAN_ECORRUPT;
	g->total_size = slots + g->data_offset;
	return SHMCHAN_OK;
}

/* Validation steps 2..7 on a private copy of the first 256 bytes. */
static int validate_header(const unsigned char *img, struct shmchan_header *out)
{
	unsigned char b[SHMCHAN_HEADER_SIZE];
	memcpy(b, img, sizeof b);
	struct shmchan_header h;
	memcpy(&h, b, sizeof h);
	if (memcmp(h.magic, SHMCHAN_MAGIC, 8) != 0)
		return SHMCHAN_ECORRUPT;
	if (h.version != SHMCHAN_VERSION)
		return SHMCHAN_EINCOMPATIBLE;
	if (shmchan_xxh64(b, 248, 0) != h.checksum)
		return SHMCHAN_ECORRUPT;
	struct geometry g;
	int rc = check_params(h.mode, h.wait, h.capacity, h.max_msg, h.producers, h.flags, &g);
	if (rc != SHMCHAN_OK)
		return rc;
	if (h.slot_size != g.slot_size || h.data_offset != g.data_offset || h.total_size != g.total_size)
		return SHMCHAN_ECORRUPT;
	*out = h;
	return SHMCHAN_OK;
}

/* Copies a name into a NUL-padded field, cut at a UTF-8 boundary. */
static void put_name(char *dst, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (n > cap) {
		n = cap;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	memset(dst, 0, cap);
	memcpy(dst, s, n);
}

static void get_name(char *dst, const char *field, size_t cap)
{
	size_t n = 0;
	while (n < cap && field[n] != 0)
		n++;
	memcpy(dst, field, n);
	dst[n] = 0;
}

/* ------------------------------------------------------------------------ */
/* Role entries and their locks                                              */

static struct shmchan_role *role(const shmchan *c, int i)
{
	return (struct shmchan_role *)(c->mem + SHMCHAN_OFF_ROLES + (size_t)i * SHMCHAN_LINE);
}

static int role_lock(shmchan *c, int i)
{
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)(SHMCHAN_ROLE_LOCK_BASE + (uint64_t)i);
	lk.l_len = 1;
	lk.l_pid = 0;
	for (;;) {
		if (fcntl(c->fd, F_OFD_SETLK, &lk) == 0)
			return SHMCHAN_OK;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return SHMCHAN_EBUSY;
		return SHMCHAN_ESYS;
	}
}

/* Whether another open file description holds entry i's lock. A lock of
 * this handle's own description does not show in F_OFD_GETLK, so the
 * caller counts its own entry as alive. Returns 1, 0, or SHMCHAN_ESYS. */
static int role_alive(shmchan *c, int i)
{
	if (i == c->s_entry)
		return 1;
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)(SHMCHAN_ROLE_LOCK_BASE + (uint64_t)i);
	lk.l_len = 1;
	while (fcntl(c->fd, F_OFD_GETLK, &lk) != 0) {
		if (errno != EINTR)
			return SHMCHAN_ESYS;
	}
	return lk.l_type != F_UNLCK;
}

/* Field 22 of /proc/self/stat, counted after the last ')'. 0 if unknown. */
static uint64_t start_ticks(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	for (int field = 2; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (field == 21)
			return strtoull(p, NULL, 10);
		while (*p != 0 && *p != ' ')
			p++;
	}
	return 0;
}

/* What a new holder writes into its entry (FORMAT.md, "Taking and
 * releasing a role"): a takeover is counted when a pid was left there. */
static void stamp(shmchan *c, int i)
{
	struct shmchan_role *e = role(c, i);
	if (LOAD(&e->pid) != 0)
		ADD(&e->takeovers, 1);
	STORE(&e->pid, (uint32_t)getpid());
	STORE(&e->start_ticks, start_ticks());
	STORE(&e->since_ns, wall_ns());
}

/* ------------------------------------------------------------------------ */
/* Waiting and waking (FORMAT.md, "Waiting")                                 */

struct side {
	uint32_t *seq;       /* futex word */
	uint32_t *waiting;   /* single: 0 or 1 + seq slept on; multi: sleepers */
	uint64_t *sleeps;
	uint64_t *wakes;     /* the waker's counter */
	int single;
	int bell;            /* WaitMQ doorbell descriptor, or -1 */
};

static struct side recv_side(shmchan *c)
{
	struct side s = { &c->r->recv_seq, &c->r->recv_waiting, &c->r->recv_sleeps,
			  &c->r->sender_wakes, 1, c->mq[0] };
	return s;
}

static struct side send_side(shmchan *c)
{
	struct side s = { &c->r->send_seq, &c->r->send_waiters, &c->r->send_sleeps,
			  &c->r->receiver_wakes, c->h.mode == SHMCHAN_MODE_SPSC, c->mq[1] };
	return s;
}

static void notify(shmchan *c, const struct side *s)
{
	if (c->h.wait == SHMCHAN_WAIT_MQ)
		mq_ring(s->bell);
	else
		futex_wake_all(s->seq);
}

/* Every sleeper of s: move the futex word, then wake. */
static void ring_all(shmchan *c, const struct side *s)
{
	if (c->h.wait == SHMCHAN_WAIT_SPIN)
		return;
	ADD(s->seq, 1);
	notify(c, s);
}

/* After publishing: wake the side's sleepers if any announced themselves. */
static void wake(shmchan *c, const struct side *s)
{
	uint32_t w = LOAD_SC(s->waiting);
	if (w == 0)
		return;
	if (!s->single) {
		ADD(s->wakes, 1);
		ring_all(c, s);
		return;
	}
	if (cas32(s->seq, w - 1, w)) {
		ADD(s->wakes, 1);
		notify(c, s);
		cas32(s->waiting, w, 0);
	} else if (LOAD_SC(s->seq) == w && LOAD_SC(s->waiting) == w) {
		/* The waker that moved seq may have died before its wake. */
		notify(c, s);
	}
}

static void leave(const struct side *s, uint32_t *mark)
{
	if (mark != NULL)
		STORE(mark, 0u);
	if (s->single)
		STORE(s->waiting, 0u);
	else
		ADD(s->waiting, (uint32_t)-1);
}

/* One attempt at an operation: SHMCHAN_OK, or EAGAIN_ (not ready; *stuck
 * set when waiting on a peer that may have died), or an error. */
#define EAGAIN_ 1
typedef int (*attempt_fn)(shmchan *c, void *arg, int *stuck);

/* Waits until attempt succeeds or fails, or the timeout passes
 * (SHMCHAN_ETIMEDOUT). With timeout 0 it tries once and returns EAGAIN_ if
 * that was not enough. */
static int block(shmchan *c, struct side s, uint32_t *mark, int64_t timeout_ns, attempt_fn f, void *arg)
{
	int stuck = 0;
	int rc = f(c, arg, &stuck);
	if (rc != EAGAIN_)
		return rc;
	if (timeout_ns == 0)
		return EAGAIN_;
	int64_t start = mono_ns();
	int64_t deadline = timeout_ns > 0 ? start + timeout_ns : INT64_MAX;

	/* Spin, re-checking; yield now and then so that a spinner does not
	 * starve the side it waits for on a busy machine. */
	int spin_only = c->h.wait == SHMCHAN_WAIT_SPIN;
	int64_t spin_until = c->spin_ns < 0 ? start : start + c->spin_ns;
	for (unsigned i = 1;; i++) {
		cpu_relax();
		rc = f(c, arg, &stuck);
		if (rc != EAGAIN_)
			return rc;
		if ((i & 63) == 0) {
			int64_t now = mono_ns();
			if (now >= deadline)
				return SHMCHAN_ETIMEDOUT;
			if (!spin_only && now >= spin_until)
				break;
			if ((i & (spin_only ? 255 : 1023)) == 0)
				sched_yield();
		}
	}

	int barrier = barrier_ok();
	for (int first = 1;; first = 0) {
		uint32_t seq = LOAD_SC(s.seq);
		if (s.single) {
			if (seq == UINT32_MAX) { /* 1 + seq must not be 0, "nobody waits" */
				cas32(s.seq, seq, 0);
				continue;
			}
			STORE(s.waiting, seq + 1);
		} else {
			ADD(s.waiting, 1u);
		}
		if (mark != NULL)
			STORE(mark, SHMCHAN_ROLE_SLEEPING);
		int must_poll = !barrier;
		if (barrier && !first && !barrier_now())
			must_poll = 1;
		rc = f(c, arg, &stuck);
		if (rc != EAGAIN_) {
			leave(&s, mark);
			return rc;
		}
		int64_t now = mono_ns();
		if (now >= deadline) {
			leave(&s, mark);
			return SHMCHAN_ETIMEDOUT;
		}
		int64_t t = MAX_SLEEP_NS;
		if (stuck && c->stuck_ns < t)
			t = c->stuck_ns;
		if (must_poll && POLL_SLEEP_NS < t)
			t = POLL_SLEEP_NS;
		if (barrier && first && FIRST_SLEEP_NS < t)
			t = FIRST_SLEEP_NS;
		if (deadline - now < t)
			t = deadline - now;
		ADD(s.sleeps, 1);
		int token = 0;
		if (c->h.wait == SHMCHAN_WAIT_MQ)
			token = mq_sleep(s.bell, t);
		else
			futex_wait(s.seq, seq, t);
		leave(&s, mark);
		/* A doorbell token wakes one sleeper: pass one on while others
		 * sleep and the seq word moved since we went to sleep. */
		if (token && !s.single && LOAD_SC(s.waiting) > 0 && LOAD_SC(s.seq) != seq)
			mq_ring(s.bell);
		rc = f(c, arg, &stuck);
		if (rc != EAGAIN_)
			return rc;
	}
}

/* ------------------------------------------------------------------------ */
/* Topologies                                                                */

struct topo {
	/* Called with the entry's lock held and the entry stamped: set up the
	 * sender's state from the region, or SHMCHAN_ECORRUPT. */
	int (*join_sender)(shmchan *c);
	int (*try_send)(shmchan *c, const void *buf, uint32_t n);
	int (*close_send)(shmchan *c);
	int (*join_receiver)(shmchan *c);
	int (*try_recv)(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck);
};

static unsigned char *slot(const shmchan *c, uint64_t pos)
{
	return c->mem + c->h.data_offset + (pos & c->mask) * c->stride;
}

static uint32_t *slot_seq(const shmchan *c, uint64_t pos) { return (uint32_t *)slot(c, pos); }
static uint32_t *slot_len(const shmchan *c, uint64_t pos) { return (uint32_t *)(slot(c, pos) + 4); }

/* Joining as a sender (FORMAT.md, "Taking and releasing a role"): head,
 * then tail, then head again. */
static int sender_view(shmchan *c, uint64_t *count, int *closed, uint64_t *head)
{
	uint64_t h0 = LOAD_SC(&c->r->head);
	uint64_t t = LOAD_SC(&c->r->tail);
	uint64_t h1 = LOAD_SC(&c->r->head);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (h0 > cnt || h1 < h0 || (h1 <= cnt && cnt - h1 > c->cap))
		return SHMCHAN_ECORRUPT;
	*count = cnt;
	*closed = (t & SHMCHAN_CLOSED) != 0;
	*head = h1;
	return SHMCHAN_OK;
}

/* Joining as the receiver: head, then tail. */
static int join_receiver_common(shmchan *c)
{
	uint64_t h = LOAD_SC(&c->r->head);
	uint64_t t = LOAD_SC(&c->r->tail);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (h > cnt || cnt - h > c->cap)
		return SHMCHAN_ECORRUPT;
	c->r_head = h;
	c->r_tail = cnt;
	c->r_closed = (t & SHMCHAN_CLOSED) != 0;
	c->stuck_pos = UINT64_MAX;
	return SHMCHAN_OK;
}

/* The receiver re-reads the tail: its count never goes back, and is never
 * more than a ring's worth past head. */
static int refresh_tail(shmchan *c)
{
	uint64_t t = LOAD(&c->r->tail);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (cnt < c->r_tail || cnt - c->r_head > c->cap)
		return SHMCHAN_ECORRUPT;
	c->r_tail = cnt;
	c->r_closed = (t & SHMCHAN_CLOSED) != 0;
	return SHMCHAN_OK;
}

static void advance(shmchan *c)
{
	c->r_head++;
	publish64(&c->r->head, c->r_head);
	struct side s = send_side(c);
	wake(c, &s);
}

/* Copies out a committed slot's value; len was read once by the caller. */
static int deliver(shmchan *c, uint64_t pos, uint32_t n, void *buf, size_t cap, size_t *len)
{
	if (n > c->max_msg)
		return SHMCHAN_ECORRUPT;
	*len = n;
	if (n > cap)
		return SHMCHAN_ETOOLARGE;
	if (n > 0)
		memcpy(buf, slot(c, pos) + SHMCHAN_SLOT_HEADER, n);
	advance(c);
	return SHMCHAN_OK;
}

/* ---- SPSC (mode 0) ---- */

static int spsc_join_sender(shmchan *c)
{
	uint64_t cnt, head;
	int closed;
	int rc = sender_view(c, &cnt, &closed, &head);
	if (rc != SHMCHAN_OK)
		return rc;
	if (head > cnt) /* only we write the tail: head cannot pass it */
		return SHMCHAN_ECORRUPT;
	c->s_tail = cnt;
	c->s_head = head;
	c->s_closed = closed;
	return SHMCHAN_OK;
}

static int spsc_try_send(shmchan *c, const void *buf, uint32_t n)
{
	if (c->s_closed)
		return SHMCHAN_ECLOSED;
	if (c->s_tail - c->s_head >= c->cap) {
		uint64_t h = LOAD(&c->r->head);
		if (h < c->s_head || h > c->s_tail)
			return SHMCHAN_ECORRUPT;
		c->s_head = h;
		if (c->s_tail - h >= c->cap)
			return EAGAIN_;
	}
	uint64_t p = c->s_tail;
	if (n > 0)
		memcpy(slot(c, p) + SHMCHAN_SLOT_HEADER, buf, n);
	__atomic_store_n(slot_len(c, p), n, __ATOMIC_RELAXED);
	c->s_tail = p + 1;
	publish64(&c->r->tail, c->s_tail);
	struct side s = recv_side(c);
	wake(c, &s);
	return SHMCHAN_OK;
}

static int spsc_close_send(shmchan *c)
{
	if (!c->s_closed)
		STORE(&c->r->tail, c->s_tail | SHMCHAN_CLOSED);
	c->s_closed = 1;
	return SHMCHAN_OK;
}

static int spsc_try_recv(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck)
{
	(void)stuck;
	if (c->r_head == c->r_tail) {
		int rc = refresh_tail(c);
		if (rc != SHMCHAN_OK)
			return rc;
		if (c->r_head == c->r_tail)
			return c->r_closed ? SHMCHAN_ECLOSED : EAGAIN_;
	}
	uint32_t n = __atomic_load_n(slot_len(c, c->r_head), __ATOMIC_RELAXED);
	return deliver(c, c->r_head, n, buf, cap, len);
}

static const struct topo spsc_topo = {
	spsc_join_sender, spsc_try_send, spsc_close_send, join_receiver_common, spsc_try_recv,
};

/* ---- MPSC (mode 1) ---- */

static int mpsc_join_sender(shmchan *c)
{
	struct shmchan_role *e = role(c, c->s_entry);
	/* No claim in progress: the receiver may now skip any slot the dead
	 * holder claimed and never committed. */
	STORE(&e->claim_lo, LOAD_SC(&e->claim_hi));
	c->s_sent = LOAD_SC(&e->sent);
	uint64_t cnt, head;
	int closed;
	int rc = sender_view(c, &cnt, &closed, &head);
	if (rc != SHMCHAN_OK)
		return rc;
	c->s_head = head;
	c->s_closed = closed;
	return SHMCHAN_OK;
}

static int mpsc_try_send(shmchan *c, const void *buf, uint32_t n)
{
	struct shmchan_role *e = role(c, c->s_entry);
	uint64_t claimed = UINT64_MAX; /* hi of a claim recorded for a CAS that failed */
	for (int try = 0; try < (1 << 20); try++) {
		uint64_t t = LOAD_SC(&c->r->tail);
		if (t & SHMCHAN_CLOSED) {
			if (claimed != UINT64_MAX)
				publish64(&e->claim_lo, claimed);
			c->s_closed = 1;
			return SHMCHAN_ECLOSED;
		}
		uint64_t h = c->s_head;
		if (t < h || t - h >= c->cap) {
			h = LOAD_SC(&c->r->head);
			if (h > t)
				continue; /* the tail moved on since we read it */
			if (h < c->s_head || t - h > c->cap) {
				if (claimed != UINT64_MAX)
					publish64(&e->claim_lo, claimed);
				return SHMCHAN_ECORRUPT;
			}
			c->s_head = h;
			if (t - h == c->cap) {
				if (claimed != UINT64_MAX)
					publish64(&e->claim_lo, claimed);
				return EAGAIN_;
			}
		}
		/* Record the claim [t, t+1) before the CAS: hi first, then lo. */
		publish64(&e->claim_hi, t + 1);
		publish64(&e->claim_lo, t);
		claimed = t + 1;
		if (cas64(&c->r->tail, t, t + 1)) {
			if (n > 0)
				memcpy(slot(c, t) + SHMCHAN_SLOT_HEADER, buf, n);
			__atomic_store_n(slot_len(c, t), n, __ATOMIC_RELAXED);
			publish32(slot_seq(c, t), (uint32_t)(t + 1)); /* commits position t */
			c->s_sent++;
			publish64(&e->sent, c->s_sent);
			publish64(&e->claim_lo, t + 1); /* no claim */
			struct side s = recv_side(c);
			wake(c, &s);
			return SHMCHAN_OK;
		}
	}
	if (claimed != UINT64_MAX)
		publish64(&e->claim_lo, claimed);
	return SHMCHAN_ECORRUPT; /* tail and head never consistent */
}

static int mpsc_close_send(shmchan *c)
{
	for (;;) {
		uint64_t t = LOAD_SC(&c->r->tail);
		if ((t & SHMCHAN_CLOSED) || cas64(&c->r->tail, t, t | SHMCHAN_CLOSED))
			break;
	}
	c->s_closed = 1;
	return SHMCHAN_OK;
}

/* Whether a sender whose holder is alive has a claim covering pos. */
static int live_claimer(shmchan *c, uint64_t pos)
{
	for (int i = 1; i <= (int)c->h.producers; i++) {
		struct shmchan_role *e = role(c, i);
		uint64_t lo = LOAD_SC(&e->claim_lo);
		uint64_t hi = LOAD_SC(&e->claim_hi);
		if (pos < lo || pos >= hi)
			continue;
		int a = role_alive(c, i);
		if (a != 0)
			return a; /* alive, or SHMCHAN_ESYS */
	}
	return 0;
}

static int mpsc_try_recv(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck)
{
	for (;;) {
		uint64_t h = c->r_head;
		if (h == c->r_tail) {
			int rc = refresh_tail(c);
			if (rc != SHMCHAN_OK)
				return rc;
			if (h == c->r_tail)
				return c->r_closed ? SHMCHAN_ECLOSED : EAGAIN_;
		}
		if (LOAD(slot_seq(c, h)) == (uint32_t)(h + 1)) {
			c->stuck_pos = UINT64_MAX;
			uint32_t n = __atomic_load_n(slot_len(c, h), __ATOMIC_RELAXED);
			if (n == SHMCHAN_SLOT_SKIP) {
				advance(c);
				continue;
			}
			return deliver(c, h, n, buf, cap, len);
		}
		/* Claimed, not committed: wait, and after a while check that
		 * some live sender's claim covers it. */
		*stuck = 1;
		int64_t now = mono_ns();
		if (c->stuck_pos != h) {
			c->stuck_pos = h;
			c->stuck_since = now;
			return EAGAIN_;
		}
		if (now - c->stuck_since < c->stuck_ns)
			return EAGAIN_;
		c->stuck_since = now;
		int live = live_claimer(c, h);
		if (live < 0)
			return live;
		if (live)
			return EAGAIN_;
		if (LOAD_SC(slot_seq(c, h)) == (uint32_t)(h + 1))
			continue; /* committed meanwhile */
		/* Abandoned: its writer died between claim and commit. */
		ADD(&c->r->abandoned, 1);
		publish32(slot_seq(c, h), (uint32_t)(h + 1));
		advance(c);
		/* Check the next uncommitted position's claimers at once. */
		c->stuck_pos = h + 1;
		c->stuck_since = now - c->stuck_ns;
	}
}

static const struct topo mpsc_topo = {
	mpsc_join_sender, mpsc_try_send, mpsc_close_send, join_receiver_common, mpsc_try_recv,
};

/* The topology of a validated header; NULL for one this build cannot run. */
static const struct topo *topo_for(const struct shmchan_header *h)
{
	if (h->version != 1)
		return NULL;
	switch (h->mode) {
	case SHMCHAN_MODE_SPSC: return &spsc_topo;
	case SHMCHAN_MODE_MPSC: return &mpsc_topo;
	}
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Roles                                                                     */

static int take_sender(shmchan *c)
{
	if (c->s_entry != 0)
		return SHMCHAN_OK;
	for (int i = 1; i <= (int)c->h.producers; i++) {
		int rc = role_lock(c, i);
		if (rc == SHMCHAN_EBUSY)
			continue;
		if (rc != SHMCHAN_OK)
			return rc;
		struct shmchan_role *e = role(c, i);
		/* A holder that died asleep left itself counted in the waiters. */
		if (LOAD_SC(&e->flags) & SHMCHAN_ROLE_SLEEPING) {
			for (;;) {
				uint32_t w = LOAD_SC(&c->r->send_waiters);
				if (w == 0 || cas32(&c->r->send_waiters, w, w - 1))
					break;
			}
		}
		STORE(&e->flags, 0u);
		struct side ss = send_side(c);
		if (ss.single)
			STORE(ss.waiting, 0u); /* the only sender is us */
		stamp(c, i);
		c->s_entry = i;
		rc = c->t->join_sender(c);
		if (rc != SHMCHAN_OK) {
			STORE(&e->pid, 0u);
			c->s_entry = 0;
			struct flock lk;
			memset(&lk, 0, sizeof lk);
			lk.l_type = F_UNLCK;
			lk.l_whence = SEEK_SET;
			lk.l_start = (off_t)(SHMCHAN_ROLE_LOCK_BASE + (uint64_t)i);
			lk.l_len = 1;
			fcntl(c->fd, F_OFD_SETLK, &lk);
			return rc;
		}
		/* A new sender wakes the receiver, which may sleep on a wake
		 * the dead holder never sent. */
		struct side s = recv_side(c);
		ring_all(c, &s);
		return SHMCHAN_OK;
	}
	return SHMCHAN_EBUSY;
}

static int take_receiver(shmchan *c)
{
	if (c->r_held)
		return SHMCHAN_OK;
	int rc = role_lock(c, 0);
	if (rc != SHMCHAN_OK)
		return rc;
	STORE(&c->r->recv_waiting, 0u); /* the only receiver is us */
	stamp(c, 0);
	rc = c->t->join_receiver(c);
	if (rc != SHMCHAN_OK) {
		STORE(&role(c, 0)->pid, 0u);
		struct flock lk;
		memset(&lk, 0, sizeof lk);
		lk.l_type = F_UNLCK;
		lk.l_whence = SEEK_SET;
		lk.l_start = (off_t)SHMCHAN_ROLE_LOCK_BASE;
		lk.l_len = 1;
		fcntl(c->fd, F_OFD_SETLK, &lk);
		return rc;
	}
	c->r_held = 1;
	/* Senders asleep on a full ring wait for space the dead receiver
	 * may never have announced. */
	struct side s = send_side(c);
	ring_all(c, &s);
	return SHMCHAN_OK;
}

/* ------------------------------------------------------------------------ */
/* Send and receive                                                          */

struct send_arg { const void *buf; uint32_t n; };

static int send_attempt(shmchan *c, void *arg, int *stuck)
{
	(void)stuck;
	struct send_arg *a = (struct send_arg *)arg;
	return c->t->try_send(c, a->buf, a->n);
}

int shmchan_send(shmchan *c, const void *buf, size_t len, int64_t timeout_ns)
{
	if (c == NULL || (buf == NULL && len > 0))
		return SHMCHAN_EINVAL;
	if (len > c->max_msg)
		return SHMCHAN_ETOOLARGE;
	if ((c->h.flags & SHMCHAN_FLAG_RAW) && len < c->max_msg)
		return SHMCHAN_EINVAL;
	int rc = take_sender(c);
	if (rc != SHMCHAN_OK)
		return rc;
	struct send_arg a = { buf, (uint32_t)len };
	rc = block(c, send_side(c), &role(c, c->s_entry)->flags, timeout_ns, send_attempt, &a);
	if (rc == EAGAIN_)
		rc = SHMCHAN_EFULL;
	return rc;
}

struct recv_arg { void *buf; size_t cap; size_t *len; };

static int recv_attempt(shmchan *c, void *arg, int *stuck)
{
	struct recv_arg *a = (struct recv_arg *)arg;
	*stuck = 0;
	return c->t->try_recv(c, a->buf, a->cap, a->len, stuck);
}

int shmchan_recv(shmchan *c, void *buf, size_t cap, size_t *len, int64_t timeout_ns)
{
	if (c == NULL || len == NULL || (buf == NULL && cap > 0))
		return SHMCHAN_EINVAL;
	*len = 0;
	int rc = take_receiver(c);
	if (rc != SHMCHAN_OK)
		return rc;
	struct recv_arg a = { buf, cap, len };
	rc = block(c, recv_side(c), NULL, timeout_ns, recv_attempt, &a);
	if (rc == EAGAIN_)
		rc = SHMCHAN_EEMPTY;
	return rc;
}

int shmchan_close_send(shmchan *c)
{
	if (c == NULL)
		return SHMCHAN_EINVAL;
	int rc = take_sender(c);
	if (rc != SHMCHAN_OK)
		return rc;
	rc = c->t->close_send(c);
	if (rc != SHMCHAN_OK)
		return rc;
	struct side rs = recv_side(c), ss = send_side(c);
	wake(c, &rs);
	/* Senders asleep on a full ring must learn of the close too. */
	if (LOAD_SC(ss.waiting) != 0)
		ring_all(c, &ss);
	return SHMCHAN_OK;
}

/* ------------------------------------------------------------------------ */
/* Open, create, close, unlink                                               */

static shmchan *alloc_handle(const char *base)
{
	shmchan *c = (shmchan *)calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->mq[0] = c->mq[1] = -1;
	c->spin_ns = DEFAULT_SPIN_NS;
	c->stuck_ns = STUCK_CHECK_NS;
	c->stuck_pos = UINT64_MAX;
	strcpy(c->base, base);
	return c;
}

static void free_handle(shmchan *c)
{
	int e = errno;
	if (c->mem != NULL)
		munmap(c->mem, c->len);
	for (int i = 0; i < 2; i++)
		if (c->mq[i] >= 0)
			close(c->mq[i]);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	errno = e;
}

/* The handle's view of a validated header, in a mapping of total_size. */
static void setup(shmchan *c, const struct shmchan_header *h)
{
	c->h = *h;
	c->r = (struct shmchan_region *)c->mem;
	c->cap = h->capacity;
	c->mask = h->capacity - 1;
	c->stride = h->slot_size;
	c->max_msg = h->max_msg;
}

static int sys_err(int e)
{
	errno = e;
	switch (e) {
	case ENOENT: return SHMCHAN_ENOENT;
	case EEXIST: return SHMCHAN_EEXIST;
	case EACCES: case EPERM: return SHMCHAN_EPERM;
	case ENAMETOOLONG: return SHMCHAN_EINVAL;
	}
	return SHMCHAN_ESYS;
}

/* Opens both doorbells (creating them with mode perm if create). */
static int open_bells(shmchan *c, int create, unsigned perm, int foreign)
{
	for (int i = 0; i < 2; i++) {
		char bn[NAME_MAX_LEN + 1];
		if (bell_name(c->base, i, bn) != SHMCHAN_OK)
			return SHMCHAN_EINVAL;
		struct kmq_attr a;
		memset(&a, 0, sizeof a);
		a.mq_maxmsg = 4;
		a.mq_msgsize = 1;
		int fl = O_RDWR | O_NONBLOCK | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
		int fd = mq_open_sys(bn, fl, perm, create ? &a : NULL);
		if (fd < 0)
			return sys_err(errno);
		c->mq[i] = fd;
		struct stat st;
		if (create) {
			if (fchmod(fd, perm) != 0) /* mq_open applies the umask */
				return sys_err(errno);
			continue;
		}
		if (fstat(fd, &st) != 0)
			return sys_err(errno);
		if (!foreign && st.st_uid != geteuid()) {
			errno = EPERM;
			return SHMCHAN_EPERM;
		}
		struct kmq_attr cur;
		if (syscall(SYS_mq_getsetattr, fd, NULL, &cur) != 0)
			return sys_err(errno);
		if (cur.mq_msgsize < 1 || cur.mq_msgsize > 8 || cur.mq_maxmsg < 1)
			return SHMCHAN_ECORRUPT; /* not a doorbell of ours */
	}
	return SHMCHAN_OK;
}

static void unlink_bells(const char *base)
{
	for (int i = 0; i < 2; i++) {
		char bn[NAME_MAX_LEN + 1];
		if (bell_name(base, i, bn) == SHMCHAN_OK)
			syscall(SYS_mq_unlink, bn);
	}
}

int shmchan_open(const char *name, shmchan **out)
{
	return shmchan_open_flags(name, 0, out);
}

int shmchan_open_flags(const char *name, unsigned flags, shmchan **out)
{
	if (out == NULL)
		return SHMCHAN_EINVAL;
	*out = NULL;
	char base[NAME_MAX_LEN + 1], path[sizeof SHM_DIR + NAME_MAX_LEN];
	int rc = clean_name(name, base);
	if (rc != SHMCHAN_OK)
		return rc;
	shm_path(base, path);
	int foreign = (flags & SHMCHAN_ALLOW_FOREIGN_OWNER) != 0;
	int64_t deadline = mono_ns() + READY_WAIT_NS;

	shmchan *c = alloc_handle(base);
	if (c == NULL)
		return sys_err(ENOMEM);
	/* O_NONBLOCK: never block on a FIFO planted at the name. */
	for (;;) {
		c->fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (c->fd >= 0)
			break;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EACCES && mono_ns() < deadline) {
			/* A creator between its exclusive create (mode 0) and
			 * its fchmod: wait for it, as for the ready word. */
			struct stat st;
			if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0) {
				sleep_ns(1000000);
				continue;
			}
		}
		free_handle(c);
		if (e == ELOOP || e == EISDIR || e == ENXIO) {
			errno = e;
			return SHMCHAN_ECORRUPT; /* not a regular file */
		}
		return sys_err(e);
	}
	struct stat st;
	if (fstat(c->fd, &st) != 0) {
		rc = sys_err(errno);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = SHMCHAN_ECORRUPT;
		goto fail;
	}
	if (!foreign && st.st_uid != geteuid()) {
		errno = EPERM;
		rc = SHMCHAN_EPERM;
		goto fail;
	}

	/* Wait for the header and the ready word, then validate. */
	struct shmchan_header h;
	for (;;) {
		if (st.st_size > (off_t)SHMCHAN_MAX_TOTAL) {
			rc = SHMCHAN_ECORRUPT;
			goto fail;
		}
		if (st.st_size >= SHMCHAN_HEADER_SIZE + 4) {
			size_t n = 4096;
			if ((uint64_t)st.st_size < n)
				n = (size_t)st.st_size;
			void *m = mmap(NULL, n, PROT_READ, MAP_SHARED, c->fd, 0);
			if (m == MAP_FAILED) {
				rc = sys_err(errno);
				goto fail;
			}
			const struct shmchan_region *img = (const struct shmchan_region *)m;
			while (LOAD(&img->ready) != SHMCHAN_READY && mono_ns() < deadline)
				sleep_ns(1000000);
			if (LOAD(&img->ready) != SHMCHAN_READY) {
				munmap(m, n);
				rc = SHMCHAN_ECORRUPT; /* creator died, or not a shmchan region */
				goto fail;
			}
			rc = validate_header((const unsigned char *)m, &h);
			munmap(m, n);
			if (rc != SHMCHAN_OK)
				goto fail;
			break;
		}
		if (mono_ns() >= deadline) {
			rc = SHMCHAN_ECORRUPT;
			goto fail;
		}
		sleep_ns(1000000);
		if (fstat(c->fd, &st) != 0) {
			rc = sys_err(errno);
			goto fail;
		}
	}
	/* Step 8: the file holds the whole region (st is from before mapping). */
	if ((uint64_t)st.st_size < h.total_size) {
		rc = SHMCHAN_ECORRUPT;
		goto fail;
	}
	c->len = (size_t)h.total_size;
	void *m = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (m == MAP_FAILED) {
		rc = sys_err(errno);
		goto fail;
	}
	c->mem = (unsigned char *)m;
	c->t = topo_for(&h);
	if (c->t == NULL) {
		rc = SHMCHAN_EINCOMPATIBLE;
		goto fail;
	}
	setup(c, &h);
	if (h.wait == SHMCHAN_WAIT_MQ && (rc = open_bells(c, 0, 0, foreign)) != SHMCHAN_OK)
		goto fail;
	barrier_ok();
	*out = c;
	return SHMCHAN_OK;
fail:
	free_handle(c);
	return rc;
}

void shmchan_params_init(shmchan_params *p)
{
	if (p != NULL)
		memset(p, 0, sizeof *p);
}

/* Reserves the file's pages now (tmpfs), so that a full /dev/shm fails
 * here and not with SIGBUS at the first write. */
static int reserve(int fd, uint64_t size)
{
	const uint64_t chunk = 16u << 20;
	for (uint64_t off = 0; off < size; off += chunk) {
		uint64_t n = size - off < chunk ? size - off : chunk;
		int r;
		while ((r = fallocate(fd, 0, (off_t)off, (off_t)n)) != 0 && errno == EINTR)
			;
		if (r != 0) {
			if (errno == EOPNOTSUPP && off == 0)
				return 0;
			return -1;
		}
	}
	return 0;
}

int shmchan_create(const char *name, const shmchan_params *p, shmchan **out)
{
	if (out == NULL)
		return SHMCHAN_EINVAL;
	*out = NULL;
	shmchan_params def;
	if (p == NULL) {
		shmchan_params_init(&def);
		p = &def;
	}
	char base[NAME_MAX_LEN + 1], path[sizeof SHM_DIR + NAME_MAX_LEN];
	int rc = clean_name(name, base);
	if (rc != SHMCHAN_OK)
		return rc;
	shm_path(base, path);
	if (p->topology != SHMCHAN_TOPO_SINGLE || p->consumers != 0 || p->overflow != 0)
		return SHMCHAN_EINCOMPATIBLE; /* work queue, broadcast: a later layout version */

	struct shmchan_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, SHMCHAN_MAGIC, 8);
	h.version = SHMCHAN_VERSION;
	h.mode = p->multi_producer ? SHMCHAN_MODE_MPSC : SHMCHAN_MODE_SPSC;
	h.wait = p->wait;
	h.producers = p->multi_producer ? (p->producers ? p->producers : DEFAULT_PRODUCERS) : 1;
	uint64_t want = p->capacity ? p->capacity : DEFAULT_CAPACITY;
	if (want > SHMCHAN_MAX_CAPACITY)
		return SHMCHAN_EINVAL;
	h.capacity = 1;
	while (h.capacity < want)
		h.capacity <<= 1;
	h.max_msg = p->max_msg ? p->max_msg : DEFAULT_MAX_MSG;
	h.flags = p->raw ? SHMCHAN_FLAG_RAW : 0;
	const char *codec = p->codec_name, *type = p->type_name;
	if (codec == NULL && !p->raw) {
		codec = "bytes";
		h.fingerprint = SHMCHAN_FP_BYTES;
		if (type == NULL)
			type = "[]uint8";
	} else {
		if (codec == NULL)
			codec = "raw";
		h.fingerprint = p->fingerprint;
	}
	if (type == NULL)
		type = "";
	size_t cl = strlen(codec);
	if (cl == 0 || cl > SHMCHAN_CODEC_NAME_LEN || (p->raw && p->max_msg == 0) || p->perm > 0777)
		return SHMCHAN_EINVAL;
	struct geometry g;
	if (check_params(h.mode, h.wait, h.capacity, h.max_msg, h.producers, h.flags, &g) != SHMCHAN_OK)
		return SHMCHAN_EINVAL;
	h.slot_size = g.slot_size;
	h.data_offset = g.data_offset;
	h.total_size = g.total_size;
	h.creator_pid = (uint32_t)getpid();
	h.creator_uid = (uint32_t)geteuid();
	h.created_ns = wall_ns();
	put_name(h.codec_name, sizeof h.codec_name, codec);
	put_name(h.type_name, sizeof h.type_name, type);
	h.checksum = shmchan_xxh64(&h, 248, 0);
	if (g.total_size > (uint64_t)SIZE_MAX)
		return SHMCHAN_EINVAL;
	unsigned perm = p->perm ? p->perm : 0600;

	shmchan *c = alloc_handle(base);
	if (c == NULL)
		return sys_err(ENOMEM);
	/* Mode 0 at creation: nobody opens it before fchmod gives it its mode. */
	while ((c->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0)) < 0 &&
	       errno == EINTR)
		;
	if (c->fd < 0) {
		rc = sys_err(errno);
		free_handle(c);
		return rc;
	}
	int bells = 0;
	if (fchmod(c->fd, perm) != 0 || ftruncate(c->fd, (off_t)g.total_size) != 0 ||
	    reserve(c->fd, g.total_size) != 0) {
		rc = sys_err(errno);
		goto fail;
	}
	c->len = (size_t)g.total_size;
	void *m = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (m == MAP_FAILED) {
		rc = sys_err(errno);
		goto fail;
	}
	c->mem = (unsigned char *)m;
	memcpy(c->mem, &h, sizeof h);
	c->t = topo_for(&h);
	setup(c, &h);
	if (h.wait == SHMCHAN_WAIT_MQ) {
		bells = 1;
		if ((rc = open_bells(c, 1, perm, 0)) != SHMCHAN_OK)
			goto fail;
	}
	barrier_ok();
	/* Publish: everything above is written; openers wait for this word. */
	__atomic_store_n(&c->r->ready, SHMCHAN_READY, __ATOMIC_SEQ_CST);
	*out = c;
	return SHMCHAN_OK;
fail:;
	int e = errno;
	unlink(path);
	if (bells)
		unlink_bells(base);
	free_handle(c);
	errno = e;
	return rc;
}

void shmchan_close(shmchan *c)
{
	if (c == NULL)
		return;
	if (c->mem != NULL) {
		/* Mark the entries free (informational: the locks, dropped when
		 * the descriptor closes, are what count). */
		if (c->s_entry != 0)
			STORE(&role(c, c->s_entry)->pid, 0u);
		if (c->r_held)
			STORE(&role(c, 0)->pid, 0u);
	}
	free_handle(c);
}

int shmchan_unlink(const char *name)
{
	char base[NAME_MAX_LEN + 1], path[sizeof SHM_DIR + NAME_MAX_LEN];
	int rc = clean_name(name, base);
	if (rc != SHMCHAN_OK)
		return rc;
	shm_path(base, path);
	rc = SHMCHAN_OK;
	if (unlink(path) != 0)
		rc = sys_err(errno);
	unlink_bells(base);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */

uint64_t shmchan_missed(const shmchan *c)
{
	(void)c;
	return 0;
}

int shmchan_get_info(const shmchan *c, shmchan_info *o)
{
	if (c == NULL || o == NULL)
		return SHMCHAN_EINVAL;
	memset(o, 0, sizeof *o);
	const struct shmchan_header *h = &c->h;
	o->version = h->version;
	o->mode = h->mode;
	o->wait = h->wait;
	o->flags = h->flags;
	o->producers = h->producers;
	o->max_msg = h->max_msg;
	o->slot_size = h->slot_size;
	o->data_offset = h->data_offset;
	o->capacity = h->capacity;
	o->fingerprint = h->fingerprint;
	o->total_size = h->total_size;
	o->creator_pid = h->creator_pid;
	o->creator_uid = h->creator_uid;
	o->created_ns = h->created_ns;
	get_name(o->codec_name, h->codec_name, sizeof h->codec_name);
	get_name(o->type_name, h->type_name, sizeof h->type_name);
	return SHMCHAN_OK;
}

int shmchan_get_stats(const shmchan *c, shmchan_stats *o)
{
	if (c == NULL || o == NULL)
		return SHMCHAN_EINVAL;
	uint64_t t = LOAD_SC(&c->r->tail);
	o->sent = t & ~SHMCHAN_CLOSED;
	o->closed = (t & SHMCHAN_CLOSED) != 0;
	o->received = LOAD_SC(&c->r->head);
	o->abandoned = LOAD_SC(&c->r->abandoned);
	o->sender_wakes = LOAD_SC(&c->r->sender_wakes);
	o->receiver_wakes = LOAD_SC(&c->r->receiver_wakes);
	o->recv_sleeps = LOAD_SC(&c->r->recv_sleeps);
	o->send_sleeps = LOAD_SC(&c->r->send_sleeps);
	return SHMCHAN_OK;
}

size_t shmchan_cap(const shmchan *c) { return c ? (size_t)c->cap : 0; }
size_t shmchan_max_msg(const shmchan *c) { return c ? (size_t)c->max_msg : 0; }

size_t shmchan_len(const shmchan *c)
{
	if (c == NULL)
		return 0;
	uint64_t h = LOAD_SC(&c->r->head);
	uint64_t t = LOAD_SC(&c->r->tail) & ~SHMCHAN_CLOSED;
	if (t <= h)
		return 0;
	return (size_t)(t - h < c->cap ? t - h : c->cap);
}

void shmchan_set_spin(shmchan *c, int64_t ns)
{
	if (c != NULL)
		c->spin_ns = ns;
}

void *shmchan_region_base(const shmchan *c, size_t *len)
{
	if (c == NULL)
		return NULL;
	if (len != NULL)
		*len = c->len;
	return c->mem;
}
