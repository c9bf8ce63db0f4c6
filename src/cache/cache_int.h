/*
 * cache_int.h - private to src/cache/: the cache structure shared by the
 * disk cache (disk.c: index, lookups, puts, eviction, the background
 * scanner) and write-back staging (stage.c: staging files, uploaders).
 *
 * One mutex, c->lock, guards the index, the staged set and queue, the
 * used-bytes counter and the flags.  Held across unlink and rename of
 * cache files (cheap metadata calls, so that a file and its index entry
 * change together), never across reading or writing a file's bytes or
 * object store I/O.
 */
#ifndef TESSERA_CACHE_CACHE_INT_H
#define TESSERA_CACHE_CACHE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "cache/cache.h"
#include "object/frame.h"

#define CACHE_RAW "raw"
#define CACHE_STAGING "staging"
#define CACHE_TMP "tmp"
#define CACHE_PATH_MAX 1400 /* "staging/" + key (<= 1,024) + slack */

struct stat;

/* A node of a string-keyed chained hash table (embedded first). */
struct hnode {
	char *key;
	uint64_t hash;
	struct hnode *next;
};

struct htab {
	struct hnode **b;
	size_t nb; /* power of two */
	size_t n;
};

/* A file of raw/ known to the index. */
struct centry {
	struct hnode h;
	uint64_t size; /* charged bytes (4 KiB units) */
	int64_t stamp; /* last use, ns since the epoch */
	size_t slot;   /* position in c->slots */
	bool ready;    /* in place; else being written (not evictable) */
	bool doomed;   /* dropped while being written: discard */
};

/* A file of staging/ waiting for (or in) its upload. */
struct staged {
	struct hnode h;
	uint64_t size;	      /* charged bytes */
	bool running;	      /* an uploader has it */
	bool cancelled;	      /* forgotten while running: delete after PUT */
	struct staged *qnext; /* upload queue, when not running */
};

struct cache {
	struct obj_store *os;
	char *dir;
	int dir_fd;
	uint64_t limit;
	double free_ratio;
	bool writeback;
	struct frame_conf fc;
	int (*mem_reserve)(void *arg, uint64_t n);
	void (*mem_release)(void *arg, uint64_t n);
	void *mem_arg;
	pid_t pid;
	atomic_bool no_direct; /* O_DIRECT refused (util/fileio.h) */
	atomic_bool no_tmpfile; /* O_TMPFILE refused: named temporaries */
	atomic_uint_fast64_t tmp_seq;

	pthread_mutex_t lock;
	pthread_cond_t bg_cond;	  /* wake the background thread */
	pthread_cond_t up_cond;	  /* staged work queued, or stopping */
	pthread_cond_t idle_cond; /* a staged upload ended, scans ended */
	pthread_cond_t nap_cond;  /* uploader backoff (monotonic clock) */

	/* guarded by lock: */
	struct htab index;     /* centry by key */
	struct centry **slots; /* every centry, for random picks */
	size_t nslots;
	size_t cap_slots;
	uint64_t used; /* raw + staged charged bytes */
	uint64_t rng;
	struct htab staged; /* struct staged by key */
	struct staged *sq_head;
	struct staged *sq_tail;
	uint64_t staged_bytes;
	bool scan_raw;	      /* raw/ scan not over */
	bool scan_staging;    /* staging/ scan not over */
	atomic_bool stopping; /* set under lock; read anywhere */
	int uploaders_alive;
	int64_t up_retry_ms; /* monotonic: no staged upload starts before */
	long up_nap_ms;	     /* the next pause after a failed upload */

	pthread_t bg;
	bool bg_started;
	pthread_t *up;
	int nup;

	/* statistics */
	atomic_uint_fast64_t n_hits, n_hit_bytes, n_misses;
	atomic_uint_fast64_t n_writes, n_write_bytes, n_drops;
	atomic_uint_fast64_t n_evict, n_evict_bytes, n_corrupt, n_uploads;
};

/* ---- disk.c ---- */

/** Wall-clock time, ns (the stamps of index entries). */
int64_t cache_now_ns(void);
/** Bytes charged for a file of @len bytes. */
uint64_t cache_charge(uint64_t len);
/** "<sub>/<key>" into @out; -ENAMETOOLONG. */
int cache_path(const char *sub, const char *key, char *out, size_t n);

void cache_htab_init(struct htab *t);
void cache_htab_release(struct htab *t);
struct hnode *cache_htab_find(const struct htab *t, const char *key);
/** Insert @nd (key set; hash computed here).  0 or -ENOMEM. */
int cache_htab_add(struct htab *t, struct hnode *nd);
void cache_htab_del(struct htab *t, struct hnode *nd);

/**
 * Whether the object @hdr[0..@hlen) || @body[0..@blen) may be stored: with
 * a key configured (c->fc.encrypt) only encrypted frames are, so that no
 * plaintext reaches the disk.  Checks the header flags only.
 */
bool cache_frame_ok(const struct cache *c, const void *hdr, size_t hlen,
		    const void *body, size_t blen);

/**
 * Write @hdr then @body to a new file under tmp/ (fsynced when @sync);
 * its name (relative to the cache directory) into @tmp.  0 or -errno.
 */
int cache_write_tmp(struct cache *c, const void *hdr, size_t hlen,
		    const void *body, size_t blen, bool sync, char *tmp,
		    size_t n);
/**
 * Rename @tmp to @path (both relative to the cache directory), creating
 * @path's parent directories; when @sync, fsync every directory that got
 * a new entry.  0 or -errno.
 */
int cache_place(struct cache *c, const char *tmp, const char *path, bool sync);

/**
 * Make room for @need more bytes within the size bound, by evicting
 * cached blocks.  Returns whether used + need fits.  Caller holds lock.
 */
bool cache_room_locked(struct cache *c, uint64_t need);
/**
 * Free-space floor: evict until @need more bytes would leave the floor
 * free.  Returns whether they do.  Caller holds lock (statvfs under it).
 */
bool cache_floor_locked(struct cache *c, uint64_t need);
/** Add a ready raw/ entry unless known.  Caller holds lock. */
int cache_index_add_locked(struct cache *c, const char *key, uint64_t size,
			   int64_t stamp);

/* ---- stage.c ---- */

/** Start the uploader threads.  Startup only. */
int cache_uploaders_start(struct cache *c, int n);
/** Join the uploaders (c->stopping already set). */
void cache_uploaders_join(struct cache *c);
/** Scan staging/ and queue what it holds (background thread). */
void cache_scan_staging(struct cache *c);
/** Free the staged set (no thread left). */
void cache_staged_release(struct cache *c);
/** cache_forget's staging part.  Caller holds lock. */
void cache_unstage_locked(struct cache *c, const char *key);
/** Whether @key is staged.  Caller holds lock. */
bool cache_is_staged_locked(struct cache *c, const char *key);

/**
 * Walk the regular files under @sub ("raw" or "staging"), calling @fn with
 * each key (path below @sub) and its stat; stops early when @fn returns
 * nonzero or c->stopping is seen.
 */
void cache_walk(struct cache *c, const char *sub,
		int (*fn)(struct cache *c, const char *key,
			  const struct stat *st));

#endif
