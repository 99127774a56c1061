/*
 * shmchan.h: a C11 reader and writer of shmchan regions (layout version 2:
 * SPSC, MPSC, work queue and broadcast), written from layout/FORMAT.md. The implementation is
 * shmchan.c; compile it with your program, or build a shared library:
 *
 *     cc -std=c11 -O2 -fPIC -shared -o libshmchan.so shmchan.c
 *
 * It needs Linux (futex, open-file-description locks, POSIX message queues
 * through their system calls) and nothing beyond libc.
 *
 * Values are slot bytes: a []byte channel carries them as they are, and a
 * raw channel carries the in-memory bytes of a pointer-free Go struct with
 * the same C layout (create it with the Go side's fingerprint, which
 * `shmchan stat NAME` prints).
 *
 * Threads: a handle is not safe for concurrent use; serialise the calls on
 * one handle with your own lock (one handle per thread is the simple way:
 * each takes its own role). Different handles are independent.
 *
 * Errors: every function returning int returns SHMCHAN_OK (0) or one of the
 * negative SHMCHAN_E* codes; after SHMCHAN_ESYS, errno holds the cause.
 *
 * Trust: every index, length and header field read from the region is
 * checked before use (SHMCHAN_ECORRUPT). A peer that truncates the file
 * under the mapping makes the next access raise SIGBUS, as with any shared
 * mapping; this library installs no signal handler.
 */
#ifndef SHMCHAN_H
#define SHMCHAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The byte format (layout/FORMAT.md, "C sketch" and tables) ---- */

#define SHMCHAN_MAGIC          "SHMCHAN\0"      /* compare 8 bytes */
#define SHMCHAN_VERSION        2
#define SHMCHAN_LINE           64
#define SHMCHAN_HEADER_SIZE    256
#define SHMCHAN_READY          0x59444552u      /* "REDY" */
#define SHMCHAN_CLOSED         (1ull << 63)     /* in tail */
#define SHMCHAN_SLOT_SKIP      (1u << 31)       /* in slot len */
#define SHMCHAN_SLOT_HEADER    8
#define SHMCHAN_MODE_SPSC      0
#define SHMCHAN_MODE_MPSC      1
#define SHMCHAN_MODE_WORKQUEUE 2
#define SHMCHAN_MODE_BROADCAST 3
#define SHMCHAN_OVERFLOW_WAIT  0
#define SHMCHAN_OVERFLOW_DROP  1
#define SHMCHAN_WAIT_FUTEX     0
#define SHMCHAN_WAIT_MQ        1
#define SHMCHAN_WAIT_SPIN      2
#define SHMCHAN_FLAG_RAW       1u
#define SHMCHAN_FLAG_MULTI     2u
#define SHMCHAN_ROLE_SLEEPING  1u
#define SHMCHAN_ROLE_JOINED    2u
#define SHMCHAN_MAX_CAPACITY   (1ull << 30)
#define SHMCHAN_MAX_WQ_CAPACITY (1ull << 29)
#define SHMCHAN_MAX_MSG        (1u << 30)
#define SHMCHAN_MAX_PRODUCERS  4096
#define SHMCHAN_MAX_CONSUMERS  4096
#define SHMCHAN_MAX_TOTAL      (1ull << 40)
#define SHMCHAN_ROLE_LOCK_BASE (1ull << 40)
#define SHMCHAN_RESCUE_LOCK    ((1ull << 40) + (1ull << 24)) /* work queue */
#define SHMCHAN_CONSUMED_BIT   0x80000000u      /* work queue: seq of a consumed slot */
#define SHMCHAN_OFF_ROLES      576
#define SHMCHAN_CODEC_NAME_LEN 32
#define SHMCHAN_TYPE_NAME_LEN  128

/* Fixed fingerprints (FORMAT.md, "Type fingerprint"): a Go Chan[[]byte]
 * (codec "bytes", type "[]uint8") and Chan[string] (codec "string"). */
#define SHMCHAN_FP_BYTES       0xfd9384023e8f5de7ull
#define SHMCHAN_FP_STRING      0xfe1e88373290a065ull

struct shmchan_header {                 /* immutable, little-endian */
	char     magic[8];              /*   0 */
	uint32_t version;               /*   8 */
	uint32_t data_offset;           /*  12 */
	uint32_t mode;                  /*  16 */
	uint32_t wait;                  /*  20 */
	uint64_t capacity;              /*  24 */
	uint32_t slot_size;             /*  32 */
	uint32_t max_msg;               /*  36 */
	uint32_t producers;             /*  40 */
	uint32_t flags;                 /*  44 */
	uint64_t fingerprint;           /*  48 */
	uint64_t total_size;            /*  56 */
	uint32_t creator_pid;           /*  64 */
	uint32_t creator_uid;           /*  68 */
	int64_t  created_ns;            /*  72 */
	char     codec_name[32];        /*  80 */
	uint32_t consumers;             /* 112 */
	uint32_t overflow;              /* 116 */
	char     type_name[128];        /* 120 */
	uint64_t checksum;              /* 248: XXH64(bytes [0, 248), 0) */
};

struct shmchan_role {                   /* one 64-byte line */
	uint32_t pid;                   /*  +0 */
	uint32_t flags;                 /*  +4 */
	uint64_t start_ticks;           /*  +8 */
	int64_t  since_ns;              /* +16 */
	uint64_t claim_lo;              /* +24 */
	uint64_t claim_hi;              /* +32 */
	uint64_t sent;                  /* +40 */
	uint64_t takeovers;             /* +48 */
	uint8_t  _pad[8];
};

struct shmchan_region {                 /* the mutable words follow the header */
	struct shmchan_header hdr;      /*   0 */
	uint32_t ready;                 /* 256 */
	uint8_t  _pad0[60];
	uint64_t tail;                  /* 320 */
	uint64_t sender_wakes;          /* 328 */
	uint8_t  _pad1[48];
	uint64_t head;                  /* 384 */
	uint64_t abandoned;             /* 392 */
	uint64_t receiver_wakes;        /* 400 */
	uint64_t claim_head;            /* 408 */
	uint64_t lagged;                /* 416 */
	uint8_t  _pad2[24];
	uint32_t recv_seq;              /* 448: futex word */
	uint32_t recv_waiting;          /* 452 */
	uint64_t recv_sleeps;           /* 456 */
	uint8_t  _pad3[48];
	uint32_t send_seq;              /* 512: futex word */
	uint32_t send_waiters;          /* 516 */
	uint64_t send_sleeps;           /* 520 */
	uint8_t  _pad4[48];
	/* 576: 1 + producers + consumers role entries (struct shmchan_role),
	 * then the slots. Entry 0: the receiver (SPSC, MPSC); 1..producers:
	 * senders; 1 + producers + k: consumer k (work queue, broadcast). */
};

struct shmchan_slot {                   /* at data_offset + s * slot_size */
	uint32_t seq;                   /* +0 */
	uint32_t len;                   /* +4 */
	/* +8: the payload */
};

/* ---- The API ---- */

typedef struct shmchan shmchan;

enum { SHMCHAN_OK = 0, SHMCHAN_EFULL = -1, SHMCHAN_EEMPTY = -2, SHMCHAN_ECLOSED = -3,
       SHMCHAN_ETOOLARGE = -4, SHMCHAN_ECORRUPT = -5, SHMCHAN_EINCOMPATIBLE = -6,
       SHMCHAN_EBUSY = -7, SHMCHAN_ENOENT = -8, SHMCHAN_ETIMEDOUT = -9,
       SHMCHAN_EINVAL = -10, SHMCHAN_ESYS = -11, SHMCHAN_ELAGGED = -12,
       SHMCHAN_EEXIST = -13, SHMCHAN_EPERM = -14 };

/* Topologies for shmchan_params.topology. SINGLE: one receiver (SPSC, or
 * MPSC with multi_producer). WORKQUEUE: receivers compete, each value goes
 * to exactly one (mode 2). BROADCAST: every receiver gets every value sent
 * after it joined (mode 3), with shmchan_params.overflow as its policy. */
enum { SHMCHAN_TOPO_SINGLE = 0, SHMCHAN_TOPO_WORKQUEUE = 1, SHMCHAN_TOPO_BROADCAST = 2 };
/* Broadcast overflow policies for shmchan_params.overflow (the values of
 * the header's overflow field). */
enum { SHMCHAN_WAIT_FOR_SLOWEST = 0, SHMCHAN_DROP_OLDEST = 1 };

/* Parameters of shmchan_create. All-zero (shmchan_params_init) is a []byte
 * SPSC channel of 1024 slots of up to 4096 bytes, futex waits, mode 0600,
 * which Go opens as shmchan.Open[[]byte]. Go's options, for comparison:
 * multi_producer is WithMultiProducer, topology WORKQUEUE is
 * WithMultiConsumer, BROADCAST is WithBroadcast(overflow), consumers is
 * WithConsumers, producers is WithProducers. */
typedef struct shmchan_params {
	uint32_t topology;        /* SHMCHAN_TOPO_*: 0, one receiver */
	uint32_t multi_producer;  /* nonzero: many senders (MPSC; FlagMulti in a work queue or broadcast) */
	uint32_t producers;       /* sender entries with multi_producer, 1..4096; 0: 64. Else 1 */
	uint32_t consumers;       /* work queue / broadcast receiver entries, 1..4096; 0: 64. Else unused, must be 0 */
	uint32_t overflow;        /* broadcast: SHMCHAN_WAIT_FOR_SLOWEST (0) or _DROP_OLDEST; else must be 0 */
	uint32_t wait;            /* SHMCHAN_WAIT_FUTEX (0), _MQ or _SPIN */
	uint64_t capacity;        /* slots, 1..2^30 (work queue 2^29), rounded up to a power of two; 0: 1024 */
	uint32_t max_msg;         /* largest value in bytes, 1..2^30; 0: 4096; raw: the value's size */
	uint32_t raw;             /* nonzero: FlagRaw, values are a pointer-free Go type's bytes */
	uint64_t fingerprint;     /* the type's fingerprint; ignored when codec_name is NULL and !raw */
	const char *codec_name;   /* NULL: "bytes" (raw: "raw"); at most 32 bytes */
	const char *type_name;    /* NULL: "[]uint8" for bytes, "" otherwise; cut at 128 bytes */
	uint32_t perm;            /* permission bits (0777 at most); 0: 0600. The umask does not apply. */
} shmchan_params;

/* What the validated header says (shmchan_get_info). */
typedef struct shmchan_info {
	uint32_t version, mode, wait, flags, producers, max_msg, slot_size, data_offset;
	uint64_t capacity, fingerprint, total_size;
	uint32_t creator_pid, creator_uid;
	int64_t  created_ns;
	char     codec_name[SHMCHAN_CODEC_NAME_LEN + 1];   /* NUL-terminated */
	char     type_name[SHMCHAN_TYPE_NAME_LEN + 1];
	uint32_t consumers, overflow;
} shmchan_info;

/* Counters of the region (a consistent picture only of a quiet channel). */
typedef struct shmchan_stats {
	uint64_t sent;      /* positions committed (SPSC) or claimed (others) */
	uint64_t received;  /* head: positions consumed, abandoned ones included
	                     * (broadcast: the lowest bound a sender computed) */
	uint64_t abandoned; /* slots skipped because their writer died */
	uint64_t sender_wakes, receiver_wakes, recv_sleeps, send_sleeps;
	int      closed;
	uint64_t claim_head; /* work queue: positions handed out to receivers */
	uint64_t lagged;     /* broadcast DropOldest: values receivers missed, summed */
} shmchan_stats;

/* Flags of shmchan_open_flags. */
#define SHMCHAN_ALLOW_FOREIGN_OWNER 1u  /* accept a region (and doorbells) owned by another uid */

void shmchan_params_init(shmchan_params *p);

/* Names: "/x" and "x" are /dev/shm/x. Empty, ".", "..", any other slash, or
 * more than 255 bytes: SHMCHAN_EINVAL. */
int  shmchan_open(const char *name, shmchan **out);               /* existing region, validated */
int  shmchan_open_flags(const char *name, unsigned flags, shmchan **out);
int  shmchan_create(const char *name, const shmchan_params *p, shmchan **out); /* EEXIST if present */
int  shmchan_unlink(const char *name);                            /* the region and its doorbells */

/* timeout_ns: < 0 waits forever, 0 tries once (EFULL / EEMPTY), > 0 waits at
 * most that long on CLOCK_MONOTONIC (ETIMEDOUT). A closed channel gives
 * ECLOSED to senders, and to a receiver once drained, whatever the timeout.
 * The first send (or close_send) takes a sender role, the first receive a
 * receiver role (a work queue's or broadcast's: the first free consumer
 * entry); EBUSY when no entry is free (a later call may retry). A
 * broadcast receiver joins at its first receive (a timeout-0 receive
 * joins) and gets the values sent from then on. */
int  shmchan_send(shmchan *c, const void *buf, size_t len, int64_t timeout_ns);
/* A value longer than cap: ETOOLARGE, *len = its size, nothing consumed (a
 * work-queue receiver keeps holding it: the next receive returns it; a
 * handle closed while holding one leaves it to be rescued by another
 * receiver). DropOldest broadcast: a receiver that fell more than a ring
 * behind gets SHMCHAN_ELAGGED once, with shmchan_missed(c) the number of
 * values it lost; the next receive goes on with the oldest intact one. */
int  shmchan_recv(shmchan *c, void *buf, size_t cap, size_t *len, int64_t timeout_ns);
int  shmchan_close_send(shmchan *c);
void shmchan_close(shmchan *c);                                   /* NULL allowed; releases its roles */
const char *shmchan_strerror(int code);

/* DropOldest broadcast: the values missed at the last SHMCHAN_ELAGGED this
 * handle returned (0 before any). */
uint64_t shmchan_missed(const shmchan *c);
/* What a failing call found, in words, for this thread: for example
 * "layout version 1, this library reads version 2" with
 * SHMCHAN_EINCOMPATIBLE, or which header field failed with
 * SHMCHAN_ECORRUPT. shmchan_open, _open_flags and _create clear it when
 * they start; later failures of any call with ECORRUPT or EINCOMPATIBLE
 * replace it. "" when nothing was recorded. */
const char *shmchan_last_error(void);

int      shmchan_get_info(const shmchan *c, shmchan_info *out);
int      shmchan_get_stats(const shmchan *c, shmchan_stats *out);
size_t   shmchan_cap(const shmchan *c);      /* slots */
size_t   shmchan_max_msg(const shmchan *c);  /* largest value in bytes */
size_t   shmchan_len(const shmchan *c);      /* values queued now, clamped to [0, cap];
                                              * a broadcast receiver: its own backlog */
/* How long a blocked call spins before it sleeps (default 50 us; < 0: no
 * spinning). Per handle. */
void     shmchan_set_spin(shmchan *c, int64_t ns);
/* The mapping (total_size bytes), for tools that read the counters. */
void    *shmchan_region_base(const shmchan *c, size_t *len);
/* XXH64 of n bytes (the header checksum is shmchan_xxh64(hdr, 248, 0)). */
uint64_t shmchan_xxh64(const void *p, size_t n, uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif /* SHMCHAN_H */
