/*
 * chunk_int.h - private to src/chunk/: the store structure, the memory
 * pool and block cache (bcache.c), writers and the worker threads
 * (writer.c), and the read path (chunk.c).
 *
 * One mutex, cs->lock, guards everything shared in a chunk_store: pool
 * accounting, the block cache table and LRU, the upload and prefetch
 * queues, writer upload states, and the readahead streams.  It is never
 * held across object store I/O, frame coding or a wait for a writer's
 * caller.  Block bytes are not guarded: a cache block's bytes are
 * immutable once READY (readers copy without the lock, holding a
 * reference), and a writer block's bytes belong to the writer's thread
 * until it is queued, then to one worker thread.
 */
#ifndef TESSERA_CHUNK_CHUNK_INT_H
#define TESSERA_CHUNK_CHUNK_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "chunk/chunk.h"
#include "object/frame.h"

/* Keys are at most "NAME/chunks/" + 3 numbers + 2: NAME <= 255 bytes. */
#define CHUNK_KEY_MAX 512
#define CHUNK_RA_STREAMS 32
#define CHUNK_PQ_MAX 64 /* queued prefetches */
/*
 * Retries of a block GET or PUT that failed in a way another try may fix
 * (store -EIO, a body cut short): at most CHUNK_IO_RETRIES after the first
 * try, pausing backoff_ms (CHUNK_IO_BACKOFF_MS), doubling up to
 * CHUNK_IO_BACKOFF_MAX_MS, and none started CHUNK_IO_DEADLINE_MS after the
 * first try (a store that hangs each try for its own timeout is not tried
 * seven times over).  A whole body that fails verification is corrupt,
 * not cut: CHUNK_CORRUPT_RETRIES more tries.  A missing object: none.
 * Nor while the store says it is down (obj_state): it failed after its
 * own retries, so the outage costs a reader or writer one store bound.
 */
#define CHUNK_IO_RETRIES 6
#define CHUNK_IO_BACKOFF_MS 50
#define CHUNK_IO_BACKOFF_MAX_MS 1000
#define CHUNK_IO_DEADLINE_MS 20000
#define CHUNK_CORRUPT_RETRIES 1
#define CHUNK_DQ_MAX 64		       /* blocks queued for the disk cache */
#define CHUNK_MMAP_THRESHOLD (1 << 20) /* see chunk_store_new */
#define CHUNK_SPARE_MAX 16		       /* see chunk_spare_take_locked */

enum cblock_state { CB_LOADING, CB_READY, CB_FAILED };

/* A block of a slice in the read cache. */
struct cblock {
	uint64_t id;
	uint32_t index;
	uint32_t len;	  /* raw bytes */
	char *mem;	  /* the allocation (freed with the block) */
	const char *data; /* len bytes inside mem, immutable */
	uint64_t charge;  /* pool bytes; 0 for an overdraft block */
	bool full_buf;	  /* mem is a full block buffer (chunk_spare_*) */
	bool framed;	  /* mem = plain frame header + data (data = mem +
			   * FRAME_HDR_LEN): the disk cache writes mem */
	char *pre;	  /* LOADING: full buffer to GET into, or NULL */
	/* guarded by cs->lock: */
	int refs;
	enum cblock_state state;
	bool in_table;
	bool overdraft; /* not charged: dropped when unreferenced */
	struct cblock *hnext;
	struct cblock *lru_prev; /* in the LRU iff READY, in_table, refs 0 */
	struct cblock *lru_next;
};

enum wblock_state { WB_FILLING, WB_QUEUED, WB_RUNNING, WB_DONE, WB_FAILED };

/* A block being written: FRAME_HDR_LEN spare bytes, then raw bytes. */
struct wblock {
	struct chunk_writer *w;
	uint32_t index;
	uint32_t len;	 /* bytes written */
	uint32_t cap;	 /* raw capacity allocated */
	uint32_t charge; /* pool bytes reserved: the full block length */
	char *mem;
	enum wblock_state state; /* FILLING: writer's; after: cs->lock */
	struct wblock *qnext;	 /* upload queue, guarded by cs->lock */
	struct wblock *qprev;
};

struct chunk_writer {
	struct chunk_store *cs;
	uint64_t id;
	/*
	 * mu guards the fields below against a thread sealing this writer's
	 * tail block under memory pressure; taken before cs->lock, or only
	 * tried (never waited for) while holding cs->lock.
	 */
	pthread_mutex_t mu;
	uint32_t len;	  /* slice size so far */
	uint32_t nsealed; /* blocks [0, nsealed) are queued or done */
	uint32_t nslots;
	struct wblock **blocks; /* [nslots], NULL where not written */
	bool finished;
	int result;		    /* of finish, once finished */
	atomic_int failed; /* 0, or the -errno an upload failed with for good
			    * (-EIO, -ENOSPC when the store is full...) */
	int pending;		    /* queued + running uploads; cs->lock */
	struct chunk_writer *wnext; /* cs->writers, guarded by cs->lock */
	struct chunk_writer *wprev;
};

struct ra_stream {
	uint64_t id;	     /* 0: free slot */
	uint32_t next_off;   /* slice offset a sequential read starts at */
	uint32_t window;     /* bytes to keep ahead; 0: not sequential */
	uint32_t next_block; /* first block not yet prefetched */
	uint64_t last_use;
};

struct prefetch_job {
	uint64_t id;
	uint32_t index;
	uint32_t len;
};

struct chunk_store {
	struct obj_store *os;
	char *volname;
	uint32_t bs;	     /* block size */
	uint32_t max_blocks; /* blocks per chunk: ceil(64 MiB / bs) */
	uint32_t max_ra;
	uint32_t backoff_ms; /* first retry pause (tests shorten it) */
	int nworkers;
	struct frame_conf fc;
	pthread_t *workers;

	pthread_mutex_t lock;
	pthread_cond_t mem_cond;  /* pool memory freed or uploads done */
	pthread_cond_t load_cond; /* a cache block left LOADING */
	pthread_cond_t upl_cond;  /* a writer's upload finished */
	pthread_cond_t work_cond; /* work queued, or stopping */
	pthread_cond_t nap_cond;  /* upload retry backoff (monotonic) */
	pthread_cond_t idle_cond; /* a prefetch job ended */

	/* guarded by lock: */
	uint64_t mem_limit;
	atomic_uint_fast64_t mem_used;
	atomic_uint_fast64_t mem_peak;
	struct cblock **buckets;
	size_t nbuckets;
	size_t ncached;
	struct cblock lru; /* sentinel: next = most recent */
	struct wblock *q_head;
	struct wblock *q_tail;
	int inflight;		      /* queued + running uploads */
	struct chunk_writer *writers; /* live writers */
	atomic_int mem_waiters;	      /* threads waiting in the pool */
	struct prefetch_job pq[CHUNK_PQ_MAX];
	unsigned pq_head;
	unsigned pq_n;
	int pf_running; /* prefetch jobs being run */
	struct ra_stream ra[CHUNK_RA_STREAMS];
	uint64_t ra_clock;
	bool stopping;
	/*
	 * Disk-cache queue: referenced READY blocks to write to the disk
	 * cache, at most CHUNK_DQ_MAX and dq_limit bytes (a share of the
	 * pool: queued blocks cannot be evicted from memory).
	 */
	struct cblock *dq[CHUNK_DQ_MAX];
	unsigned dq_head;
	unsigned dq_n;
	uint64_t dq_bytes;
	uint64_t dq_limit;

	/*
	 * Spare full block buffers (FRAME_HDR_LEN + bs bytes each), kept
	 * charged to the pool (bs each) for the next writer block: a fresh
	 * mmapped buffer costs a page fault per 4 KiB.
	 */
	char *spare[CHUNK_SPARE_MAX];
	unsigned nspare;
	unsigned spare_max;

	struct cache *dc; /* disk cache, or NULL; set at start */
	bool dc_blocks;	  /* it caches blocks (size > 0) */
	bool dc_large;	  /* ... also full blocks just uploaded */

	/* statistics */
	atomic_uint_fast64_t n_fetch;	 /* object GETs of blocks */
	atomic_uint_fast64_t n_hit;	 /* block reads served from memory */
	atomic_uint_fast64_t n_prefetch; /* GETs started by readahead */
	atomic_uint_fast64_t n_upload;	 /* blocks uploaded */
	atomic_uint_fast64_t n_dq_drop;	 /* disk-cache writes dropped */
	atomic_uint_fast64_t n_retry;	 /* GETs and PUTs tried again */
};

/* ---- bcache.c: memory pool and block cache ---- */

enum chunk_mem_mode {
	CHUNK_MEM_WAIT, /* writers: wait until it fits */
	CHUNK_MEM_READ, /* readers: wait while uploads may free memory */
	CHUNK_MEM_TRY,	/* prefetch: evict, but never wait */
};

int chunk_bcache_init(struct chunk_store *cs);
/** Free every cached block (no references may remain). */
void chunk_bcache_release(struct chunk_store *cs);

/**
 * Charge @n bytes to the pool, evicting unreferenced cache blocks first.
 * Caller holds cs->lock (it may be released while waiting).  Returns 0,
 * -EAGAIN (TRY/READ: does not fit now) or -ENOMEM (@n above the bound).
 */
int chunk_mem_reserve_locked(struct chunk_store *cs, uint64_t n,
			     enum chunk_mem_mode mode);
/**
 * A full block buffer (FRAME_HDR_LEN + bs bytes) already charged bs to the
 * pool: a spare one, or one freed by evicting unreferenced cache blocks
 * while the pool has no room for another block.  NULL when there is none
 * (then reserve and allocate as usual).  A @writer already evicts once
 * half the pool is used, a reader once a quarter is: a fresh buffer costs
 * a page fault per 4 KiB (a quarter of the mount's CPU in a 256 MiB write
 * into a fresh pool, more in a cold read), and the kernel's page cache
 * usually still holds what was just written or read.  A reader's bound
 * is never below twice the readahead window (32 MiB by default), so
 * blocks fetched ahead are not evicted before they are read.
 * Caller holds cs->lock.
 */
char *chunk_spare_take_locked(struct chunk_store *cs, bool writer);
/**
 * A new full block buffer, FRAME_HDR_LEN + bs bytes aligned to 4 KiB (the
 * file store writes such puts with O_DIRECT), or NULL.  No charge.
 */
char *chunk_full_buf_alloc(const struct chunk_store *cs);
/** Its allocation size (FRAME_HDR_LEN + bs rounded up to 4 KiB). */
size_t chunk_full_buf_size(const struct chunk_store *cs);
/**
 * Give back full block buffer @mem charged bs: kept as a spare, or freed
 * and its charge returned.  Caller holds cs->lock.
 */
void chunk_spare_give_locked(struct chunk_store *cs, char *mem);
/** Return @n bytes to the pool.  Caller holds cs->lock. */
void chunk_mem_release_locked(struct chunk_store *cs, uint64_t n);
/** Highest chunk_mem_used() seen (for tests). */
uint64_t chunk_mem_peak(const struct chunk_store *cs);

/**
 * Reference to block @index (of @len raw bytes) of slice @id, fetched and
 * verified when not cached; concurrent callers share one fetch.  0 and
 * *out, or -EIO (logged with the key) or -ENOMEM.  Any thread.
 */
int chunk_block_get(struct chunk_store *cs, uint64_t id, uint32_t index,
		    uint32_t len, struct cblock **out);
/** Drop a reference from chunk_block_get. */
void chunk_block_put(struct chunk_store *cs, struct cblock *b);
/** Fetch a block into the cache unless present (worker threads). */
void chunk_block_prefetch(struct chunk_store *cs, uint64_t id, uint32_t index,
			  uint32_t len);
/** Whether the block is cached or loading.  Caller holds cs->lock. */
bool chunk_block_known_locked(struct chunk_store *cs, uint64_t id,
			      uint32_t index, uint32_t len);
/**
 * Put an uploaded writer block into the cache: takes over @mem (whose
 * bytes start at @data) and its pool charge.  Returns the cached block
 * (unreferenced), or NULL when it was not kept.  Caller holds cs->lock.
 */
struct cblock *chunk_block_adopt_locked(struct chunk_store *cs, uint64_t id,
					uint32_t index, uint32_t len, char *mem,
					const char *data, uint64_t charge,
					bool full_buf, bool framed);

/**
 * Queue READY block @b for the disk cache (takes a reference), unless
 * there is no disk cache, the queue is full (counted as a drop) or @b is
 * an overdraft block.  Caller holds cs->lock.
 */
void chunk_dq_push_locked(struct chunk_store *cs, struct cblock *b);
/**
 * Take the next queued block (the reference moves to the caller), or
 * NULL.  Caller holds cs->lock.
 */
struct cblock *chunk_dq_pop_locked(struct chunk_store *cs);
/** Write @b (referenced) to the disk cache.  No lock held. */
void chunk_dq_write(struct chunk_store *cs, struct cblock *b);

/** Wait until no prefetch is queued or running (for tests). */
void chunk_prefetch_wait_idle(struct chunk_store *cs);

/* ---- writer.c: workers and retries ---- */

/** Monotonic clock, milliseconds. */
int64_t chunk_now_ms(void);
/**
 * Whether a block GET or PUT whose first try started at @t0_ms (from
 * chunk_now_ms) and whose try @attempt (0-based) failed may be tried
 * again (see CHUNK_IO_RETRIES).  Any thread, no lock held.
 */
bool chunk_may_retry(const struct chunk_store *cs, int attempt, int64_t t0_ms);
/**
 * Pause before the retry after failed try @attempt, counting it in
 * n_retry.  No lock held.
 */
void chunk_backoff(struct chunk_store *cs, int attempt);

/**
 * Seal (queue for upload) the partial tail block of one writer that is not
 * in a call right now.  Returns whether one was sealed.  Caller holds
 * cs->lock.
 */
bool chunk_steal_locked(struct chunk_store *cs);

/** Start cs->nworkers threads.  Startup only. */
int chunk_workers_start(struct chunk_store *cs);
/** Let queued uploads finish, then stop and join the workers. */
void chunk_workers_stop(struct chunk_store *cs);

#endif
