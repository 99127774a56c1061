/*
 * shmchan.c: the implementation of shmchan.h, written from layout/FORMAT.md.
 *
 * The sections follow the document: names and opening, the header and its
 * validation (with our own XXH64), role entries and their locks, waiting
 * and waking, then one group of functions per topology (SPSC, MPSC, work
 * queue, broadcast) behind a small table, chosen once when a region is
 * opened.
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
#include <stdarg.h>
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
_Static_assert(offsetof(struct shmchan_region, claim_head) == 408, "claim_head");
_Static_assert(offsetof(struct shmchan_header, type_name) == 120, "type_name");

/* Tunables, as in the Go implementation (FORMAT.md, "Waiting"). */
#define DEFAULT_SPIN_NS   50000LL      /* spin before sleeping */
#define MAX_SLEEP_NS      200000000LL  /* every sleep is bounded */
#define FIRST_SLEEP_NS    100000LL     /* the first sleep of a call, taken without the barrier */
#define POLL_SLEEP_NS     1000000LL    /* sleeps when no barrier is available */
#define STUCK_CHECK_NS    10000000LL   /* wait on a peer that may be dead before checking its role lock */
#define READY_WAIT_NS     1000000000LL /* an opener waits this long for the creator */
#define DEFAULT_CAPACITY  1024
#define DEFAULT_MAX_MSG   4096
#define DEFAULT_PRODUCERS 64
#define DEFAULT_CONSUMERS 64
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
	uint64_t s_head;              /* last head (broadcast: bound) seen; head only grows */
	int s_closed;
	uint64_t s_sent;              /* MPSC, fan-out: this entry's sent counter */
	int gated;                    /* broadcast: the bound gate_at has gated us since gate_since */
	uint64_t gate_at;
	int64_t gate_since;

	/* Receiver role: entry 0 (SPSC, MPSC) or a consumer entry (work
	 * queue, broadcast), valid while r_held. */
	int r_held;
	int r_entry;
	uint64_t r_head;              /* head; work queue: the position held; broadcast: the cursor */
	uint64_t r_tail;              /* tail count last seen */
	int r_closed;
	uint64_t stuck_pos;           /* the uncommitted position waited on, and since when */
	int64_t stuck_since;
	int check_now;                /* the last position was abandoned: check the next one at once */
	int wq_holding;               /* work queue: r_head is held (claimed, not consumed) */
	int wq_pending;               /* work queue: a dead holder's claim not yet resolved */
	int64_t last_rescue;          /* work queue: when the last rescue was tried */
	uint64_t missed;              /* broadcast: values missed at the last ELAGGED */
};

/* ------------------------------------------------------------------------ */
/* Error details                                                             */

static _Thread_local char last_err[256];

const char *shmchan_last_error(void) { return last_err; }

/* Records what went wrong, for shmchan_last_error, and returns code. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_err, sizeof last_err, fmt, ap);
	va_end(ap);
	return code;
}

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

/* Takes a doorbell token if one is there (never blocking). */
static int mq_take(int fd)
{
	char buf[8];
	unsigned prio;
	return syscall(SYS_mq_timedreceive, fd, buf, sizeof buf, &prio, NULL) >= 0;
}

/* Sleeps on a doorbell for at most ns (FORMAT.md, "WaitMQ doorbells"):
 * a token already there ends it; else, unless the seq word has moved from
 * the value announced (a wake whose token another sleeper took), wait for
 * the queue to become readable, then take the token if it is still there.
 * Every poller hears an arrival, so one token wakes all the sleepers of a
 * side with many; nothing is passed on. */
static void mq_sleep(int fd, const uint32_t *seq, uint32_t announced, int64_t ns)
{
	if (mq_take(fd))
		return;
	if (LOAD_SC(seq) != announced)
		return;
	struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
	struct timespec ts = rel_ts(ns);
	if (ppoll(&p, 1, &ts, NULL) > 0 && (p.revents & POLLIN))
		mq_take(fd);
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

struct params {
	uint32_t mode, wait, max_msg, producers, flags, consumers, overflow;
	uint64_t capacity;
};

struct geometry {
	uint32_t slot_size, data_offset;
	uint64_t total_size;
};

static int fanout(uint32_t mode) { return mode == SHMCHAN_MODE_WORKQUEUE || mode == SHMCHAN_MODE_BROADCAST; }

/* Parameter checks of FORMAT.md, Validation step 6, in its order, and the
 * derived sizes. Every failure is SHMCHAN_ECORRUPT, with a detail. */
static int check_params(const struct params *p, struct geometry *g)
{
	if (p->mode > SHMCHAN_MODE_BROADCAST)
		return fail(SHMCHAN_ECORRUPT, "mode %u", p->mode);
	if (p->wait > SHMCHAN_WAIT_SPIN)
		return fail(SHMCHAN_ECORRUPT, "wait mode %u", p->wait);
	if (p->mode == SHMCHAN_MODE_WORKQUEUE && p->capacity > SHMCHAN_MAX_WQ_CAPACITY)
		return fail(SHMCHAN_ECORRUPT, "work-queue capacity %llu over 2^29", (unsigned long long)p->capacity);
	if (p->capacity == 0 || p->capacity > SHMCHAN_MAX_CAPACITY || (p->capacity & (p->capacity - 1)) != 0)
		return fail(SHMCHAN_ECORRUPT, "capacity %llu is not a power of two in [1, 2^30]",
			    (unsigned long long)p->capacity);
	if (p->max_msg == 0 || p->max_msg > SHMCHAN_MAX_MSG)
		return fail(SHMCHAN_ECORRUPT, "max message size %u not in [1, 2^30]", p->max_msg);
	if (p->mode == SHMCHAN_MODE_SPSC && p->producers != 1)
		return fail(SHMCHAN_ECORRUPT, "SPSC region with %u sender entries", p->producers);
	if (p->producers == 0 || p->producers > SHMCHAN_MAX_PRODUCERS)
		return fail(SHMCHAN_ECORRUPT, "%u sender entries not in [1, 4096]", p->producers);
	if (p->flags & ~(SHMCHAN_FLAG_RAW | SHMCHAN_FLAG_MULTI))
		return fail(SHMCHAN_ECORRUPT, "unknown flags %#x", p->flags);
	if ((p->flags & SHMCHAN_FLAG_MULTI) && !fanout(p->mode))
		return fail(SHMCHAN_ECORRUPT, "multi-producer flag in a mode-%u region", p->mode);
	if (!fanout(p->mode) && p->consumers != 0)
		return fail(SHMCHAN_ECORRUPT, "mode-%u region with %u consumer entries", p->mode, p->consumers);
	if (fanout(p->mode) && (p->consumers == 0 || p->consumers > SHMCHAN_MAX_CONSUMERS))
		return fail(SHMCHAN_ECORRUPT, "%u consumer entries not in [1, 4096]", p->consumers);
	if ((p->mode != SHMCHAN_MODE_BROADCAST && p->overflow != 0) || p->overflow > SHMCHAN_OVERFLOW_DROP)
		return fail(SHMCHAN_ECORRUPT, "overflow policy %u in a mode-%u region", p->overflow, p->mode);
	/* The region limit, on the derived sizes; capacity <= 2^30 and
	 * slot_size < 2^31 keep the product below 2^61. */
	g->slot_size = (SHMCHAN_SLOT_HEADER + p->max_msg + 7) & ~7u;
	g->data_offset = SHMCHAN_OFF_ROLES + SHMCHAN_LINE * (1 + p->producers + p->consumers);
	uint64_t slots = p->capacity * (uint64_t)g->slot_size;
	if (slots > SHMCHAN_MAX_TOTAL || slots + g->data_offset > SHMCHAN_MAX_TOTAL)
		return fail(SHMCHAN_ECORRUPT, "%llu slots of %u bytes exceed the 2^40-byte region limit",
			    (unsigned long long)p->capacity, g->slot_size);
	g->total_size = slots + g->data_offset;
	return SHMCHAN_OK;
}

static struct params params_of(const struct shmchan_header *h)
{
	struct params p = { h->mode, h->wait, h->max_msg, h->producers, h->flags, h->consumers, h->overflow,
			    h->capacity };
	return p;
}

/* Validation steps 2..7 on a private copy of the first 256 bytes. */
static int validate_header(const unsigned char *img, struct shmchan_header *out)
{
	unsigned char b[SHMCHAN_HEADER_SIZE];
	memcpy(b, img, sizeof b);
	struct shmchan_header h;
	memcpy(&h, b, sizeof h);
	if (memcmp(h.magic, SHMCHAN_MAGIC, 8) != 0)
		return fail(SHMCHAN_ECORRUPT, "bad magic");
	if (h.version != SHMCHAN_VERSION)
		return fail(SHMCHAN_EINCOMPATIBLE, "layout version %u, this library reads version %d", h.version,
			    SHMCHAN_VERSION);
	uint64_t sum = shmchan_xxh64(b, 248, 0);
	if (sum != h.checksum)
		return fail(SHMCHAN_ECORRUPT, "header checksum %#llx, computed %#llx", (unsigned long long)h.checksum,
			    (unsigned long long)sum);
	struct geometry g;
	struct params p = params_of(&h);
	int rc = check_params(&p, &g);
	if (rc != SHMCHAN_OK)
		return rc;
	if (h.slot_size != g.slot_size)
		return fail(SHMCHAN_ECORRUPT, "slot size %u, parameters give %u", h.slot_size, g.slot_size);
	if (h.data_offset != g.data_offset)
		return fail(SHMCHAN_ECORRUPT, "data offset %u, parameters give %u", h.data_offset, g.data_offset);
	if (h.total_size != g.total_size)
		return fail(SHMCHAN_ECORRUPT, "total size %llu, parameters give %llu", (unsigned long long)h.total_size,
			    (unsigned long long)g.total_size);
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

/* Takes the OFD lock on the byte at off without waiting: OK, EBUSY (a
 * live holder has it) or ESYS. */
static int ofd_lock(shmchan *c, uint64_t off)
{
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_WRLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)off;
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

static void ofd_unlock(shmchan *c, uint64_t off)
{
	struct flock lk;
	memset(&lk, 0, sizeof lk);
	lk.l_type = F_UNLCK;
	lk.l_whence = SEEK_SET;
	lk.l_start = (off_t)off;
	lk.l_len = 1;
	fcntl(c->fd, F_OFD_SETLK, &lk);
}

static int role_lock(shmchan *c, int i) { return ofd_lock(c, SHMCHAN_ROLE_LOCK_BASE + (uint64_t)i); }
static void role_unlock(shmchan *c, int i) { ofd_unlock(c, SHMCHAN_ROLE_LOCK_BASE + (uint64_t)i); }

/* Whether another open file description holds entry i's lock. A lock of
 * this handle's own description does not show in F_OFD_GETLK, so the
 * caller counts its own entry as alive. Returns 1, 0, or SHMCHAN_ESYS. */
static int role_alive(shmchan *c, int i)
{
	if (i == c->s_entry || (c->r_held && i == c->r_entry))
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
			  &c->r->sender_wakes, !fanout(c->h.mode), c->mq[0] };
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

/* Takes one sleeper out of a many-sleeper count a dead holder left, never
 * below zero. */
static void leave_count(uint32_t *w)
{
	for (;;) {
		uint32_t n = LOAD_SC(w);
		if (n == 0 || cas32(w, n, n - 1))
			return;
	}
}

/* RoleSleeping is set and cleared with OR and AND: a broadcast receiver's
 * flags also hold RoleJoined. */
static void leave(const struct side *s, uint32_t *mark)
{
	if (mark != NULL)
		__atomic_and_fetch(mark, ~SHMCHAN_ROLE_SLEEPING, __ATOMIC_SEQ_CST);
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
			__atomic_or_fetch(mark, SHMCHAN_ROLE_SLEEPING, __ATOMIC_SEQ_CST);
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
		if (c->h.wait == SHMCHAN_WAIT_MQ)
			mq_sleep(s.bell, s.seq, seq, t);
		else
			futex_wait(s.seq, seq, t);
		leave(&s, mark);
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
	int (*try_send)(shmchan *c, const void *buf, uint32_t n, int *stuck);
	int (*close_send)(shmchan *c);
	/* Likewise for the receiver, in c->r_entry. */
	int (*join_receiver)(shmchan *c);
	int (*try_recv)(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck);
};

static unsigned char *slot(const shmchan *c, uint64_t pos)
{
	return c->mem + c->h.data_offset + (pos & c->mask) * c->stride;
}

static uint32_t *slot_seq(const shmchan *c, uint64_t pos) { return (uint32_t *)slot(c, pos); }
static uint32_t *slot_len(const shmchan *c, uint64_t pos) { return (uint32_t *)(slot(c, pos) + 4); }

/* Whether position pos is committed: its slot's seq is uint32(pos + 1)
 * (an acquire load, after which the slot may be read). */
static int committed(const shmchan *c, uint64_t pos)
{
	return LOAD(slot_seq(c, pos)) == (uint32_t)(pos + 1);
}

static uint64_t consumer_entry(const shmchan *c, uint32_t k) { return 1 + (uint64_t)c->h.producers + k; }

/* Joining as a sender (FORMAT.md, "Taking and releasing a role"): head,
 * then tail, then head again. */
static int sender_view(shmchan *c, uint64_t *count, int *closed, uint64_t *head)
{
	uint64_t h0 = LOAD_SC(&c->r->head);
	uint64_t t = LOAD_SC(&c->r->tail);
	uint64_t h1 = LOAD_SC(&c->r->head);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (h0 > cnt || h1 < h0 || (h1 <= cnt && cnt - h1 > c->cap))
		return fail(SHMCHAN_ECORRUPT, "head %llu then %llu, tail %llu, capacity %llu", (unsigned long long)h0,
			    (unsigned long long)h1, (unsigned long long)cnt, (unsigned long long)c->cap);
	*count = cnt;
	*closed = (t & SHMCHAN_CLOSED) != 0;
	*head = h1;
	return SHMCHAN_OK;
}

/* Joining as the receiver of entry 0: head, then tail. */
static int join_receiver_common(shmchan *c)
{
	uint64_t h = LOAD_SC(&c->r->head);
	uint64_t t = LOAD_SC(&c->r->tail);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (h > cnt || cnt - h > c->cap)
		return fail(SHMCHAN_ECORRUPT, "head %llu, tail %llu, capacity %llu", (unsigned long long)h,
			    (unsigned long long)cnt, (unsigned long long)c->cap);
	c->r_head = h;
	c->r_tail = cnt;
	c->r_closed = (t & SHMCHAN_CLOSED) != 0;
	return SHMCHAN_OK;
}

/* The single receiver re-reads the tail: its count never goes back, and is
 * never more than a ring's worth past head. */
static int refresh_tail(shmchan *c)
{
	uint64_t t = LOAD(&c->r->tail);
	uint64_t cnt = t & ~SHMCHAN_CLOSED;
	if (cnt < c->r_tail || cnt - c->r_head > c->cap)
		return fail(SHMCHAN_ECORRUPT, "tail %llu outside [%llu, %llu]", (unsigned long long)cnt,
			    (unsigned long long)c->r_tail, (unsigned long long)(c->r_head + c->cap));
	c->r_tail = cnt;
	c->r_closed = (t & SHMCHAN_CLOSED) != 0;
	return SHMCHAN_OK;
}

static void wake_senders(shmchan *c)
{
	struct side s = send_side(c);
	wake(c, &s);
}

static void wake_receivers(shmchan *c)
{
	struct side s = recv_side(c);
	wake(c, &s);
}

static void advance(shmchan *c)
{
	c->r_head++;
	publish64(&c->r->head, c->r_head);
	wake_senders(c);
}

/* Copies out a committed slot's value at head; len was read once by the
 * caller. */
static int deliver(shmchan *c, uint64_t pos, uint32_t n, void *buf, size_t cap, size_t *len)
{
	if (n > c->max_msg)
		return fail(SHMCHAN_ECORRUPT, "slot %llu holds length %u, the maximum is %u", (unsigned long long)pos, n,
			    c->max_msg);
	*len = n;
	if (n > cap)
		return SHMCHAN_ETOOLARGE;
	if (n > 0)
		memcpy(buf, slot(c, pos) + SHMCHAN_SLOT_HEADER, n);
	advance(c);
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

static void writer_reset(shmchan *c)
{
	c->stuck_pos = UINT64_MAX;
	c->check_now = 0;
}

/* The claimed but uncommitted position pos: has its writer died? After the
 * receiver waited a stuck check on it (at once, right after an abandoned
 * position: a dead claim often covers several), it looks for a live sender
 * whose claim covers pos, then at seq once more. 1: dead, the position is
 * abandoned; 0: wait on; < 0: an error. */
static int writer_dead(shmchan *c, uint64_t pos)
{
	int64_t now = mono_ns();
	if (c->stuck_pos != pos) {
		c->stuck_pos = pos;
		c->stuck_since = now;
		if (!c->check_now)
			return 0;
	} else if (now - c->stuck_since < c->stuck_ns) {
		return 0;
	}
	c->check_now = 0;
	c->stuck_since = now;
	int live = live_claimer(c, pos);
	if (live != 0)
		return live < 0 ? live : 0;
	if (LOAD_SC(slot_seq(c, pos)) == (uint32_t)(pos + 1)) {
		writer_reset(c); /* committed meanwhile */
		return 0;
	}
	c->stuck_pos = UINT64_MAX;
	c->check_now = 1;
	return 1;
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
		return fail(SHMCHAN_ECORRUPT, "head %llu past the tail %llu", (unsigned long long)head,
			    (unsigned long long)cnt);
	c->s_tail = cnt;
	c->s_head = head;
	c->s_closed = closed;
	return SHMCHAN_OK;
}

static int spsc_try_send(shmchan *c, const void *buf, uint32_t n, int *stuck)
{
	(void)stuck;
	if (c->s_closed)
		return SHMCHAN_ECLOSED;
	if (c->s_tail - c->s_head >= c->cap) {
		uint64_t h = LOAD(&c->r->head);
		if (h < c->s_head || h > c->s_tail)
			return fail(SHMCHAN_ECORRUPT, "head %llu outside [%llu, %llu]", (unsigned long long)h,
				    (unsigned long long)c->s_head, (unsigned long long)c->s_tail);
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
	wake_receivers(c);
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

/* ---- MPSC (mode 1); its sender is also the fan-out topologies' ---- */

static int mpsc_join_sender(shmchan *c)
{
	struct shmchan_role *e = role(c, c->s_entry);
	/* No claim in progress: the receiver may now skip any slot the dead
	 * holder claimed and never committed. */
	STORE(&e->claim_lo, LOAD_SC(&e->claim_hi));
	c->s_sent = LOAD_SC(&e->sent);
	c->gated = 0;
	uint64_t cnt, head;
	int closed;
	if (c->h.mode == SHMCHAN_MODE_BROADCAST) {
		/* head is a statistic here (the lowest bound some sender
		 * computed) and may lag the tail by more than a ring: the bound
		 * is computed afresh when the cached one shows no room. */
		uint64_t t = LOAD_SC(&c->r->tail);
		c->s_head = 0;
		c->s_closed = (t & SHMCHAN_CLOSED) != 0;
		return SHMCHAN_OK;
	}
	int rc = sender_view(c, &cnt, &closed, &head);
	if (rc != SHMCHAN_OK)
		return rc;
	c->s_head = head;
	c->s_closed = closed;
	return SHMCHAN_OK;
}

static int bcast_bound(shmchan *c, uint64_t t, uint64_t *bound, int *stuck);

static int mpsc_try_send(shmchan *c, const void *buf, uint32_t n, int *stuck)
{
	struct shmchan_role *e = role(c, c->s_entry);
	int bcast = c->h.mode == SHMCHAN_MODE_BROADCAST;
	uint64_t claimed = UINT64_MAX; /* hi of a claim recorded for a CAS that failed */
	int rc = SHMCHAN_ECORRUPT;
	for (int try = 0; try < (1 << 20); try++) {
		uint64_t t = LOAD_SC(&c->r->tail);
		if (t & SHMCHAN_CLOSED) {
			c->s_closed = 1;
			rc = SHMCHAN_ECLOSED;
			goto withdraw;
		}
		uint64_t h = c->s_head;
		if (t < h || t - h >= c->cap) {
			/* The bound: head (MPSC, work queue) or the slowest
			 * receiver or writer (broadcast). */
			if (bcast) {
				if ((rc = bcast_bound(c, t, &h, stuck)) != SHMCHAN_OK)
					goto withdraw;
			} else {
				h = LOAD_SC(&c->r->head);
			}
			if (h > t)
				continue; /* the tail moved on since we read it */
			if (bcast && t - h > c->cap) {
				/* A cursor more than a ring behind: a receiver
				 * between the two cursor stores of its join. Wait. */
				*stuck = 1;
				rc = EAGAIN_;
				goto withdraw;
			}
			if ((!bcast && h < c->s_head) || t - h > c->cap) {
				rc = fail(SHMCHAN_ECORRUPT, "tail %llu, head %llu (last seen %llu), capacity %llu",
					  (unsigned long long)t, (unsigned long long)h, (unsigned long long)c->s_head,
					  (unsigned long long)c->cap);
				goto withdraw;
			}
			c->s_head = h;
			if (t - h == c->cap) {
				rc = EAGAIN_;
				goto withdraw;
			}
		}
		/* Record the claim [t, t+1) before the CAS: hi first, then lo. */
		publish64(&e->claim_hi, t + 1);
		publish64(&e->claim_lo, t);
		claimed = t + 1;
		if (cas64(&c->r->tail, t, t + 1)) {
			/* The CAS is a full barrier on amd64; elsewhere make
			 * sure a DropOldest receiver that reads our writes to
			 * the slot also sees the tail that claimed it. */
			if (bcast)
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (n > 0)
				memcpy(slot(c, t) + SHMCHAN_SLOT_HEADER, buf, n);
			__atomic_store_n(slot_len(c, t), n, __ATOMIC_RELAXED);
			publish32(slot_seq(c, t), (uint32_t)(t + 1)); /* commits position t */
			c->s_sent++;
			publish64(&e->sent, c->s_sent);
			publish64(&e->claim_lo, t + 1); /* no claim */
			wake_receivers(c);
			return SHMCHAN_OK;
		}
	}
	rc = fail(SHMCHAN_ECORRUPT, "tail and head never consistent");
withdraw:
	if (claimed != UINT64_MAX)
		publish64(&e->claim_lo, claimed);
	return rc;
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
		if (committed(c, h)) {
			writer_reset(c);
			uint32_t n = __atomic_load_n(slot_len(c, h), __ATOMIC_RELAXED);
			if (n == SHMCHAN_SLOT_SKIP) {
				advance(c);
				continue;
			}
			return deliver(c, h, n, buf, cap, len);
		}
		/* Claimed, not committed: wait, and after a while check that
		 * some live sender's claim covers it. */
		int d = writer_dead(c, h);
		if (d < 0)
			return d;
		if (d == 0) {
			*stuck = 1;
			return EAGAIN_;
		}
		/* Abandoned: its writer died between claim and commit. The
		 * slot gets the position's commit mark, so that no slot below
		 * head is more than a lap stale. */
		ADD(&c->r->abandoned, 1);
		publish32(slot_seq(c, h), (uint32_t)(h + 1));
		advance(c);
	}
}

static const struct topo mpsc_topo = {
	mpsc_join_sender, mpsc_try_send, mpsc_close_send, join_receiver_common, mpsc_try_recv,
};

/* ---- Work queue (mode 2; FORMAT.md, "Work queue protocol") ---- */

static uint32_t wq_mark(uint64_t p) { return (uint32_t)(p + 1) ^ SHMCHAN_CONSUMED_BIT; }

static int wq_consumed(const shmchan *c, uint64_t p) { return LOAD(slot_seq(c, p)) == wq_mark(p); }

/* Moves head over the consumed positions at head (receivers finish out of
 * order: whoever finds the position at head consumed moves head on). */
static void wq_move_head(shmchan *c)
{
	for (uint64_t n = 0; n <= c->cap; n++) {
		uint64_t h = LOAD_SC(&c->r->head);
		if (h >= LOAD_SC(&c->r->claim_head) || !wq_consumed(c, h))
			break;
		cas64(&c->r->head, h, h + 1);
	}
}

/* Consumes the held position: its consumed mark, the claim withdrawn,
 * head moved, senders woken. */
static void wq_consume(shmchan *c, int got)
{
	struct shmchan_role *e = role(c, c->r_entry);
	uint64_t p = c->r_head;
	publish32(slot_seq(c, p), wq_mark(p));
	STORE(&e->claim_lo, LOAD_SC(&e->claim_hi));
	c->wq_holding = 0;
	if (got)
		ADD(&e->sent, 1);
	wq_move_head(c);
	wake_senders(c);
}

/* Whether a live receiver other than us has a claim covering p. */
static int wq_live_claim(shmchan *c, uint64_t p)
{
	for (uint32_t k = 0; k < c->h.consumers; k++) {
		int i = (int)consumer_entry(c, k);
		if (i == c->r_entry)
			continue;
		struct shmchan_role *e = role(c, i);
		uint64_t lo = LOAD_SC(&e->claim_lo), hi = LOAD_SC(&e->claim_hi);
		if (p < lo || p >= hi)
			continue;
		int a = role_alive(c, i);
		if (a != 0)
			return a;
	}
	return 0;
}

/* A rescue: at most once per stuck check, under the rescue lock, take over
 * a position in [h, ch) that another entry claims, that is not consumed,
 * and that no live receiver claims. 1 if we now hold one. */
static int wq_rescue(shmchan *c, uint64_t h, uint64_t ch)
{
	int64_t now = mono_ns();
	if (c->last_rescue != 0 && now - c->last_rescue < c->stuck_ns)
		return 0;
	c->last_rescue = now;
	if (ofd_lock(c, SHMCHAN_RESCUE_LOCK) != SHMCHAN_OK)
		return 0; /* someone else is rescuing (or the lock failed: try later) */
	int got = 0;
	struct shmchan_role *me = role(c, c->r_entry);
	for (uint32_t k = 0; k < c->h.consumers && !got; k++) {
		int i = (int)consumer_entry(c, k);
		if (i == c->r_entry)
			continue;
		struct shmchan_role *e = role(c, i);
		uint64_t lo = LOAD_SC(&e->claim_lo), hi = LOAD_SC(&e->claim_hi);
		if (hi != lo + 1 || lo < h || lo >= ch || wq_consumed(c, lo))
			continue;
		if (wq_live_claim(c, lo) != 0)
			continue; /* a live holder, or we cannot tell */
		/* A receiver that finished meanwhile had no live claim left to
		 * find: it marks the position consumed before it withdraws its
		 * claim, and head passes a position (so that its slot can be
		 * reused) only once it is consumed. Look again, in that order. */
		if (LOAD_SC(&e->claim_lo) != lo || LOAD_SC(&e->claim_hi) != lo + 1 || wq_consumed(c, lo) ||
		    LOAD_SC(&c->r->head) > lo)
			continue;
		/* Ours now: record our claim, then withdraw the dead ones. */
		STORE(&me->claim_hi, lo + 1);
		STORE(&me->claim_lo, lo);
		for (uint32_t k2 = 0; k2 < c->h.consumers; k2++) {
			int i2 = (int)consumer_entry(c, k2);
			if (i2 == c->r_entry)
				continue;
			struct shmchan_role *e2 = role(c, i2);
			if (LOAD_SC(&e2->claim_lo) == lo)
				STORE(&e2->claim_lo, LOAD_SC(&e2->claim_hi));
		}
		c->wq_holding = 1;
		c->r_head = lo;
		got = 1;
	}
	ofd_unlock(c, SHMCHAN_RESCUE_LOCK);
	return got;
}

/* A dead predecessor's claim in our entry: resume it if it is still
 * pending, else withdraw it; under the rescue lock, so that a rescuer and
 * we never both take it. With the lock busy the claim stays recorded and
 * unresolved (withdrawing it without the lock could lose a value). */
static int wq_resolve(shmchan *c)
{
	int rc = ofd_lock(c, SHMCHAN_RESCUE_LOCK);
	if (rc == SHMCHAN_EBUSY)
		return EAGAIN_;
	if (rc != SHMCHAN_OK)
		return rc;
	struct shmchan_role *e = role(c, c->r_entry);
	uint64_t lo = LOAD_SC(&e->claim_lo), hi = LOAD_SC(&e->claim_hi);
	int free = 0;
	if (hi == lo + 1 && lo < LOAD_SC(&c->r->claim_head)) {
		/* The dead holder recorded its claim before its claim CAS: one
		 * that died between the two, or after losing the CAS, claims a
		 * position another receiver won. So: no live claim of another
		 * receiver covers it, and (read after the claims) head has not
		 * passed it and it is not consumed. */
		free = wq_live_claim(c, lo);
		if (free < 0) {
			ofd_unlock(c, SHMCHAN_RESCUE_LOCK);
			return free;
		}
		free = !free && LOAD_SC(&c->r->head) <= lo && !wq_consumed(c, lo);
	}
	if (free) {
		c->wq_holding = 1;
		c->r_head = lo;
	} else {
		STORE(&e->claim_lo, hi);
	}
	ofd_unlock(c, SHMCHAN_RESCUE_LOCK);
	c->wq_pending = 0;
	return SHMCHAN_OK;
}

static int wq_join_receiver(shmchan *c)
{
	c->wq_holding = 0;
	c->wq_pending = 1;
	c->last_rescue = 0;
	int rc = wq_resolve(c);
	return rc == EAGAIN_ ? SHMCHAN_OK : rc;
}

/* Claims the next position (or rescues a dead receiver's). */
static int wq_claim(shmchan *c, int *stuck)
{
	struct shmchan_role *e = role(c, c->r_entry);
	for (int try = 0; try < (1 << 20); try++) {
		/* head, claim_head, tail, head again: each only grows and
		 * head <= claim_head <= count(tail) <= head + capacity at every
		 * instant, so a legal race cannot fail these checks. */
		uint64_t h0 = LOAD_SC(&c->r->head);
		uint64_t ch = LOAD_SC(&c->r->claim_head);
		uint64_t t = LOAD_SC(&c->r->tail);
		uint64_t h = LOAD_SC(&c->r->head);
		uint64_t cnt = t & ~SHMCHAN_CLOSED;
		if (ch < h0 || ch > cnt || h < h0 || cnt > h + c->cap) /* h may pass the older tail */
			return fail(SHMCHAN_ECORRUPT, "head %llu then %llu, claim head %llu, tail %llu, capacity %llu",
				    (unsigned long long)h0, (unsigned long long)h, (unsigned long long)ch,
				    (unsigned long long)cnt, (unsigned long long)c->cap);
		c->r_tail = cnt;
		c->r_closed = (t & SHMCHAN_CLOSED) != 0;
		if (ch == cnt) {
			if (h == cnt)
				return c->r_closed ? SHMCHAN_ECLOSED : EAGAIN_;
			/* Others hold values, or consumed them and died before
			 * moving head. */
			wq_move_head(c);
			if (wq_rescue(c, h < ch ? h : ch, ch))
				return SHMCHAN_OK;
			*stuck = 1;
			return EAGAIN_;
		}
		STORE(&e->claim_hi, ch + 1);
		STORE(&e->claim_lo, ch);
		if (cas64(&c->r->claim_head, ch, ch + 1)) {
			c->wq_holding = 1;
			c->r_head = ch;
			return SHMCHAN_OK;
		}
		STORE(&e->claim_lo, ch + 1); /* lost: withdraw */
	}
	return fail(SHMCHAN_ECORRUPT, "claim head never settles");
}

static int wq_try_recv(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck)
{
	if (c->wq_pending) {
		int rc = wq_resolve(c);
		if (rc == EAGAIN_)
			*stuck = 1;
		if (rc != SHMCHAN_OK)
			return rc;
	}
	for (;;) {
		if (!c->wq_holding) {
			int rc = wq_claim(c, stuck);
			if (rc != SHMCHAN_OK)
				return rc;
		}
		uint64_t p = c->r_head;
		if (!committed(c, p)) {
			int d = writer_dead(c, p);
			if (d < 0)
				return d;
			if (d == 0) {
				*stuck = 1;
				return EAGAIN_;
			}
			ADD(&c->r->abandoned, 1);
			wq_consume(c, 0);
			continue;
		}
		writer_reset(c);
		uint32_t n = __atomic_load_n(slot_len(c, p), __ATOMIC_RELAXED);
		if (n == SHMCHAN_SLOT_SKIP) {
			wq_consume(c, 0);
			continue;
		}
		if (n > c->max_msg) {
			wq_consume(c, 0); /* do not wedge on it */
			return fail(SHMCHAN_ECORRUPT, "slot %llu holds length %u, the maximum is %u",
				    (unsigned long long)p, n, c->max_msg);
		}
		*len = n;
		if (n > cap)
			return SHMCHAN_ETOOLARGE; /* still held: the next receive returns it */
		if (n > 0)
			memcpy(buf, slot(c, p) + SHMCHAN_SLOT_HEADER, n);
		wq_consume(c, 1);
		return SHMCHAN_OK;
	}
}

static const struct topo wq_topo = {
	mpsc_join_sender, mpsc_try_send, mpsc_close_send, wq_join_receiver, wq_try_recv,
};

/* ---- Broadcast (mode 3; FORMAT.md, "Broadcast protocol") ---- */

static void clear_flag(uint32_t *w, uint32_t f) { __atomic_and_fetch(w, ~f, __ATOMIC_SEQ_CST); }

/* Moves head up to h (a statistic: the lowest bound a sender computed).
 * One attempt: a lost race means someone else moved it. */
static void raise_head(shmchan *c, uint64_t h)
{
	uint64_t old = LOAD_SC(&c->r->head);
	if (old < h)
		cas64(&c->r->head, old, h);
}

/* The senders' bound for tail count t: the lowest position not to lap. The
 * other senders' claims in progress, and with WaitForSlowest the joined
 * receivers' cursors. A bound that gates us and stays put for a stuck
 * check has its holder's lock tested: a dead receiver stops gating
 * (RoleJoined cleared), a dead sender's claim is withdrawn. */
static int bcast_bound(shmchan *c, uint64_t t, uint64_t *bound, int *stuck)
{
	int wait = c->h.overflow == SHMCHAN_OVERFLOW_WAIT;
	for (int round = 0; round < 2; round++) {
		uint64_t h = t;
		int gate = -1;
		for (int i = 1; i <= (int)c->h.producers; i++) {
			if (i == c->s_entry)
				continue;
			struct shmchan_role *e = role(c, i);
			uint64_t lo = LOAD_SC(&e->claim_lo), hi = LOAD_SC(&e->claim_hi);
			/* A claim that won its CAS is never more than a ring
			 * behind the tail (it gates the others); one further
			 * behind is stale (a claim that can no longer win, or
			 * one half-recorded: the new hi, the old end as lo). */
			if (hi > lo && lo < h && t - lo <= c->cap) {
				h = lo;
				gate = i;
			}
		}
		for (uint32_t k = 0; wait && k < c->h.consumers; k++) {
			int i = (int)consumer_entry(c, k);
			struct shmchan_role *e = role(c, i);
			if (!(LOAD_SC(&e->flags) & SHMCHAN_ROLE_JOINED))
				continue;
			uint64_t cur = LOAD_SC(&e->claim_lo); /* RoleCursor */
			if (cur < h) {
				h = cur;
				gate = i;
			}
		}
		*bound = h;
		if (t - h < c->cap || gate < 0) {
			c->gated = 0;
			raise_head(c, h);
			return SHMCHAN_OK;
		}
		*stuck = 1;
		int64_t now = mono_ns();
		if (!c->gated || c->gate_at != h) {
			c->gated = 1;
			c->gate_at = h;
			c->gate_since = now;
			return SHMCHAN_OK;
		}
		if (now - c->gate_since < c->stuck_ns)
			return SHMCHAN_OK;
		c->gate_since = now;
		int a = role_alive(c, gate);
		if (a != 0)
			return a < 0 ? a : SHMCHAN_OK;
		struct shmchan_role *e = role(c, gate);
		if (gate <= (int)c->h.producers)
			STORE(&e->claim_lo, LOAD_SC(&e->claim_hi)); /* a dead sender: its slots are skipped */
		else
			clear_flag(&e->flags, SHMCHAN_ROLE_JOINED); /* a dead receiver stops gating */
		c->gated = 0;
	}
	*bound = t - c->cap;
	return SHMCHAN_OK;
}

/* Joining: the cursor first, then the flag that makes senders read it,
 * then the tail again. A sender that computed its bound before it could
 * see us read its tail before our second load, so it never overwrites a
 * position at or after what that load returns; every later sender is
 * gated by our cursor. So the cursor moves to the second load's count,
 * and reading starts there. (The first load alone is not enough: a
 * sender's bound computed between it and the flag may be past it.) */
static int bcast_join_receiver(shmchan *c)
{
	struct shmchan_role *e = role(c, c->r_entry);
	uint64_t t1 = LOAD_SC(&c->r->tail) & ~SHMCHAN_CLOSED;
	STORE(&e->claim_lo, t1);
	STORE(&e->claim_hi, 0);
	__atomic_or_fetch(&e->flags, SHMCHAN_ROLE_JOINED, __ATOMIC_SEQ_CST);
	uint64_t t = LOAD_SC(&c->r->tail);
	uint64_t t2 = t & ~SHMCHAN_CLOSED;
	if (t2 < t1)
		return fail(SHMCHAN_ECORRUPT, "tail %llu went back from %llu", (unsigned long long)t2,
			    (unsigned long long)t1);
	if (t2 != t1)
		STORE(&e->claim_lo, t2);
	c->r_head = c->r_tail = t2;
	c->r_closed = (t & SHMCHAN_CLOSED) != 0;
	return SHMCHAN_OK;
}

static void bcast_release(shmchan *c)
{
	struct shmchan_role *e = role(c, c->r_entry);
	c->r_head++;
	publish64(&e->claim_lo, c->r_head); /* senders read cursors */
	ADD(&e->sent, 1);
	if (c->h.overflow == SHMCHAN_OVERFLOW_WAIT)
		wake_senders(c);
}

/* DropOldest: whether a sender has claimed the next lap of pos's slot; a
 * full barrier first, so that the tail is read after the slot was. */
static int bcast_lapped(shmchan *c, uint64_t pos)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint64_t t = LOAD_SC(&c->r->tail) & ~SHMCHAN_CLOSED;
	if (t >= c->r_tail)
		c->r_tail = t;
	return c->r_tail - pos > c->cap;
}

static int bcast_try_recv(shmchan *c, void *buf, size_t cap, size_t *len, int *stuck)
{
	struct shmchan_role *e = role(c, c->r_entry);
	int drop = c->h.overflow == SHMCHAN_OVERFLOW_DROP;
	for (;;) {
		uint64_t pos = c->r_head;
		if (pos >= c->r_tail || c->r_tail - pos > c->cap) {
			uint64_t t = LOAD(&c->r->tail);
			uint64_t cnt = t & ~SHMCHAN_CLOSED;
			if (cnt < c->r_tail)
				return fail(SHMCHAN_ECORRUPT, "tail %llu went back from %llu", (unsigned long long)cnt,
					    (unsigned long long)c->r_tail);
			c->r_tail = cnt;
			c->r_closed = (t & SHMCHAN_CLOSED) != 0;
			if (pos == cnt)
				return c->r_closed ? SHMCHAN_ECLOSED : EAGAIN_;
		}
		if (c->r_tail - pos > c->cap) {
			if (!drop)
				return fail(SHMCHAN_ECORRUPT, "tail %llu is more than %llu past this receiver's cursor %llu",
					    (unsigned long long)c->r_tail, (unsigned long long)c->cap,
					    (unsigned long long)pos);
			/* Lapped: the oldest position that can be intact. */
			uint64_t resume = c->r_tail - c->cap;
			c->missed = resume - pos;
			c->r_head = resume;
			STORE(&e->claim_lo, resume);
			ADD(&c->r->lagged, c->missed);
			writer_reset(c);
			return SHMCHAN_ELAGGED;
		}
		if (!committed(c, pos)) {
			/* Not committed for pos: not yet, or (DropOldest)
			 * lapped; only a fresh tail tells. */
			if (bcast_lapped(c, pos))
				continue;
			int d = writer_dead(c, pos);
			if (d < 0)
				return d;
			if (d == 0) {
				*stuck = 1;
				return EAGAIN_;
			}
			ADD(&c->r->abandoned, 1);
			bcast_release(c);
			continue;
		}
		writer_reset(c);
		uint32_t n = __atomic_load_n(slot_len(c, pos), __ATOMIC_RELAXED);
		if (n == SHMCHAN_SLOT_SKIP) {
			if (drop && bcast_lapped(c, pos))
				continue; /* the mark may be the next lap's */
			bcast_release(c);
			continue;
		}
		if (n > c->max_msg) {
			if (drop && bcast_lapped(c, pos))
				continue;
			return fail(SHMCHAN_ECORRUPT, "slot %llu holds length %u, the maximum is %u",
				    (unsigned long long)pos, n, c->max_msg);
		}
		if (n > cap) {
			if (drop && bcast_lapped(c, pos))
				continue;
			*len = n;
			return SHMCHAN_ETOOLARGE;
		}
		/* WaitForSlowest: our cursor gates every sender, the slot
		 * stays. DropOldest: copy, then make sure nobody claimed the
		 * slot's next lap meanwhile, else the copy may be torn. */
		if (n > 0)
			memcpy(buf, slot(c, pos) + SHMCHAN_SLOT_HEADER, n);
		if (drop && bcast_lapped(c, pos))
			continue; /* the next round reports the lag */
		*len = n;
		bcast_release(c);
		return SHMCHAN_OK;
	}
}

static const struct topo bcast_topo = {
	mpsc_join_sender, mpsc_try_send, mpsc_close_send, bcast_join_receiver, bcast_try_recv,
};

/* The topology of a validated header. */
static const struct topo *topo_for(const struct shmchan_header *h)
{
	switch (h->mode) {
	case SHMCHAN_MODE_SPSC: return &spsc_topo;
	case SHMCHAN_MODE_MPSC: return &mpsc_topo;
	case SHMCHAN_MODE_WORKQUEUE: return &wq_topo;
	case SHMCHAN_MODE_BROADCAST: return &bcast_topo;
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
		struct side ss = send_side(c);
		/* A holder that died asleep left itself counted in the waiters. */
		if ((LOAD_SC(&e->flags) & SHMCHAN_ROLE_SLEEPING) && !ss.single)
			leave_count(ss.waiting);
		STORE(&e->flags, 0u);
		if (ss.single)
			STORE(ss.waiting, 0u); /* the only sender is us */
		stamp(c, i);
		c->s_entry = i;
		rc = c->t->join_sender(c);
		if (rc != SHMCHAN_OK) {
			STORE(&e->pid, 0u);
			c->s_entry = 0;
			role_unlock(c, i);
			return rc;
		}
		/* A new sender wakes the receivers, which may sleep on a wake
		 * the dead holder never sent. */
		struct side s = recv_side(c);
		ring_all(c, &s);
		return SHMCHAN_OK;
	}
	return SHMCHAN_EBUSY;
}

/* Takes entry i as the receiver: OK, EBUSY, or an error. */
static int take_receiver_entry(shmchan *c, int i)
{
	int rc = role_lock(c, i);
	if (rc != SHMCHAN_OK)
		return rc;
	struct shmchan_role *e = role(c, i);
	if (i == 0) {
		STORE(&c->r->recv_waiting, 0u); /* the only receiver is us */
	} else {
		/* A consumer that died asleep left itself counted. */
		if (LOAD_SC(&e->flags) & SHMCHAN_ROLE_SLEEPING)
			leave_count(&c->r->recv_waiting);
		STORE(&e->flags, 0u);
	}
	stamp(c, i);
	c->r_entry = i;
	c->r_held = 1; /* our own entry counts as alive from now on */
	writer_reset(c);
	rc = c->t->join_receiver(c);
	if (rc != SHMCHAN_OK) {
		STORE(&e->pid, 0u);
		c->r_held = 0;
		role_unlock(c, i);
		return rc;
	}
	/* Senders asleep on a full ring wait for space the dead receiver
	 * may never have announced. */
	struct side s = send_side(c);
	ring_all(c, &s);
	return SHMCHAN_OK;
}

static int take_receiver(shmchan *c)
{
	if (c->r_held)
		return SHMCHAN_OK;
	if (!fanout(c->h.mode))
		return take_receiver_entry(c, 0);
	for (uint32_t k = 0; k < c->h.consumers; k++) {
		int rc = take_receiver_entry(c, (int)consumer_entry(c, k));
		if (rc != SHMCHAN_EBUSY)
			return rc;
	}
	return SHMCHAN_EBUSY;
}

/* ------------------------------------------------------------------------ */
/* Send and receive                                                          */

struct send_arg { const void *buf; uint32_t n; };

static int send_attempt(shmchan *c, void *arg, int *stuck)
{
	struct send_arg *a = (struct send_arg *)arg;
	*stuck = 0;
	return c->t->try_send(c, a->buf, a->n, stuck);
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
	/* Fan-out receivers are many sleepers: each marks its own entry. */
	uint32_t *mark = fanout(c->h.mode) ? &role(c, c->r_entry)->flags : NULL;
	rc = block(c, recv_side(c), mark, timeout_ns, recv_attempt, &a);
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
	last_err[0] = 0;
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
			return fail(SHMCHAN_ECORRUPT, "not a regular file");
		}
		return sys_err(e);
	}
	struct stat st;
	if (fstat(c->fd, &st) != 0) {
		rc = sys_err(errno);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(SHMCHAN_ECORRUPT, "not a regular file");
		goto fail;
	}
	if (!foreign && st.st_uid != geteuid()) {
		errno = EPERM;
		rc = fail(SHMCHAN_EPERM, "owned by uid %u (SHMCHAN_ALLOW_FOREIGN_OWNER allows it)", (unsigned)st.st_uid);
		goto fail;
	}

	/* Wait for the header and the ready word, then validate. */
	struct shmchan_header h;
	for (;;) {
		if (st.st_size > (off_t)SHMCHAN_MAX_TOTAL) {
			rc = fail(SHMCHAN_ECORRUPT, "file of %lld bytes, larger than any region", (long long)st.st_size);
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
				/* The creator died, or not a shmchan region. */
				rc = fail(SHMCHAN_ECORRUPT, "the ready word never came");
				goto fail;
			}
			rc = validate_header((const unsigned char *)m, &h);
			munmap(m, n);
			if (rc != SHMCHAN_OK)
				goto fail;
			break;
		}
		if (mono_ns() >= deadline) {
			rc = fail(SHMCHAN_ECORRUPT, "a %lld-byte file: the header and ready word never came",
				  (long long)st.st_size);
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
		rc = fail(SHMCHAN_ECORRUPT, "file is %lld bytes, header claims %llu", (long long)st.st_size,
			  (unsigned long long)h.total_size);
		goto fail;
	}
	c->len = (size_t)h.total_size;
	void *m = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (m == MAP_FAILED) {
		rc = sys_err(errno);
		goto fail;
	}
	c->mem = (unsigned char *)m;
	c->t = topo_for(&h); /* every mode validation lets through has one */
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
	last_err[0] = 0;
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
	if (p->topology > SHMCHAN_TOPO_BROADCAST)
		return fail(SHMCHAN_EINVAL, "topology %u", p->topology);
	int fan = p->topology != SHMCHAN_TOPO_SINGLE;
	if ((!fan && p->consumers != 0) || (p->topology != SHMCHAN_TOPO_BROADCAST && p->overflow != 0))
		return fail(SHMCHAN_EINVAL, "consumers or overflow set for a topology without them");

	struct shmchan_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, SHMCHAN_MAGIC, 8);
	h.version = SHMCHAN_VERSION;
	switch (p->topology) {
	case SHMCHAN_TOPO_WORKQUEUE: h.mode = SHMCHAN_MODE_WORKQUEUE; break;
	case SHMCHAN_TOPO_BROADCAST: h.mode = SHMCHAN_MODE_BROADCAST; break;
	default: h.mode = p->multi_producer ? SHMCHAN_MODE_MPSC : SHMCHAN_MODE_SPSC;
	}
	h.wait = p->wait;
	h.producers = p->multi_producer ? (p->producers ? p->producers : DEFAULT_PRODUCERS) : 1;
	h.consumers = fan ? (p->consumers ? p->consumers : DEFAULT_CONSUMERS) : 0;
	h.overflow = p->overflow;
	uint64_t want = p->capacity ? p->capacity : DEFAULT_CAPACITY;
	if (want > SHMCHAN_MAX_CAPACITY)
		return fail(SHMCHAN_EINVAL, "capacity %llu over 2^30", (unsigned long long)want);
	h.capacity = 1;
	while (h.capacity < want)
		h.capacity <<= 1;
	h.max_msg = p->max_msg ? p->max_msg : DEFAULT_MAX_MSG;
	h.flags = (p->raw ? SHMCHAN_FLAG_RAW : 0) | (fan && p->multi_producer ? SHMCHAN_FLAG_MULTI : 0);
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
		return fail(SHMCHAN_EINVAL, "codec name, raw size or permissions");
	struct geometry g;
	struct params hp = params_of(&h);
	if (check_params(&hp, &g) != SHMCHAN_OK)
		return SHMCHAN_EINVAL; /* the detail says which */
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
		if (c->r_held) {
			struct shmchan_role *e = role(c, c->r_entry);
			/* A broadcast receiver stops gating senders at once. */
			if (c->h.mode == SHMCHAN_MODE_BROADCAST)
				clear_flag(&e->flags, SHMCHAN_ROLE_JOINED);
			STORE(&e->pid, 0u);
		}
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

uint64_t shmchan_missed(const shmchan *c) { return c ? c->missed : 0; }

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
	o->consumers = h->consumers;
	o->overflow = h->overflow;
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
	o->claim_head = LOAD_SC(&c->r->claim_head);
	o->lagged = LOAD_SC(&c->r->lagged);
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
	if (c->h.mode == SHMCHAN_MODE_BROADCAST && c->r_held)
		h = c->r_head; /* its own backlog */
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
