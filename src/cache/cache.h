/*
 * cache.h - the local disk cache of block objects and the write-back
 * staging area (DESIGN section 5).
 *
 * A cache lives in one directory (the mount's default is
 * $TESSERA_HOME/cache/<volume uuid>/, mode 0700):
 *
 *   raw/<object key>      cached blocks: evictable copies
 *   staging/<object key>  write-back blocks not uploaded yet: never evicted
 *   tmp/                  files being written (renamed into place)
 *
 * Every file holds a block frame (object/frame.h): the object's bytes as
 * stored, or a plain frame of the raw bytes.  Reads verify the frame
 * (checksum, lengths) and treat a bad file as a miss after deleting it, so
 * the caller fetches the block from the object store again.  On an
 * encrypted volume (conf.frame has a key) every file is an encrypted frame
 * sealed for its object key, as in the store: puts and stages of plain
 * frames are refused, a plain file found is bad, and reads decrypt with
 * the volume's data key, so no plaintext is ever written to local disk.
 *
 * Bounds: the bytes of raw/ and staging/ together stay within conf.size
 * (0: no block is cached, staging still works), and the filesystem holding
 * the directory keeps conf.free_ratio of its space free: a put that would
 * pass either bound evicts cached blocks first (2-random: of two random
 * blocks, the one used longer ago) and is dropped when that is not enough.
 * A background thread rebuilds the index by scanning raw/ at open (reads
 * and puts work meanwhile) and re-checks both bounds every second.
 * Staged blocks are never evicted; staging is refused only below the
 * free-space floor (the caller then uploads directly).
 *
 * Write-back: cache_stage() writes a block durably (fsync of the file and
 * its directories) into staging/ and queues it; uploader threads PUT it to
 * the object store (retrying with backoff while the store fails) and then
 * move it into raw/.  At open, everything found in staging/ (left by a
 * crash) is queued again.
 *
 * Sizes are counted in 4 KiB units (a file's length rounded up), the
 * space a file takes on common filesystems; directories are not counted.
 *
 * One directory belongs to one process at a time (the mount lock of the
 * volume guarantees it for embedded volumes).
 *
 * Threads: every call may be made from any thread at once.
 */
#ifndef TESSERA_CACHE_CACHE_H
#define TESSERA_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct obj_store;
struct frame_conf;
struct cache;

#define CACHE_DEF_SIZE (100ULL << 30) /* --cache-size default */
#define CACHE_DEF_FREE_RATIO 0.1      /* --free-space-ratio default */

struct cache_conf {
	const char *dir;    /* created (0700) when missing */
	uint64_t size;	    /* bytes; 0: cache no blocks (staging only) */
	double free_ratio;  /* keep this share of the filesystem free */
	bool writeback;	    /* chunk/ stages new blocks (cache_stage) */
	/* chunk/ also caches full blocks it has just uploaded (partial
	 * blocks are always cached): off by default, as in JuiceFS, since
	 * a big write would otherwise be written twice to local disk. */
	bool cache_large_write;
	int upload_threads; /* staged-block uploaders (0: 4) */
	/*
	 * The volume's frame configuration with its data key (copied;
	 * NULL = plain): files are decoded with it, and when it encrypts
	 * only encrypted frames are stored.
	 */
	const struct frame_conf *frame;
	/*
	 * Optional accounting of the memory a staged upload holds (the file
	 * read whole), so that it counts against the caller's bound:
	 * mem_reserve may wait and returns 0 or -errno (the upload is then
	 * retried later); mem_release returns what it reserved.  Called
	 * from uploader threads with no cache lock held.
	 */
	int (*mem_reserve)(void *arg, uint64_t n);
	void (*mem_release)(void *arg, uint64_t n);
	void *mem_arg;
};

struct cache_stats {
	uint64_t hits; /* blocks served from the cache */
	uint64_t hit_bytes;
	uint64_t misses; /* lookups that found nothing usable */
	uint64_t writes; /* blocks added */
	uint64_t write_bytes;
	uint64_t drops;	    /* puts refused: bounds, queue, errors */
	uint64_t evictions; /* blocks evicted for the bounds */
	uint64_t evicted_bytes;
	uint64_t corrupt;    /* bad cached files deleted */
	uint64_t used_bytes; /* raw/ + staging/, 4 KiB units */
	uint64_t blocks;     /* files in raw/ */
	uint64_t staged;     /* staged blocks not uploaded yet */
	uint64_t staged_bytes;
	uint64_t uploads; /* staged blocks uploaded */
	bool scanning;	  /* the index is still being rebuilt */
};

/**
 * Open (creating it when missing) the cache in conf->dir and start its
 * threads.  @os (borrowed, must outlive the cache) receives staged blocks.
 * Returns 0 and *out, or -errno (the directory cannot be created or
 * written: logged with its path; -EINVAL: bad conf).
 */
int cache_open(struct obj_store *os, const struct cache_conf *conf,
	       struct cache **out);

/**
 * Create the cache directory @dir (0700) and its subdirectories when
 * missing and check it is writable, as cache_open does first; for callers
 * that want to report a bad directory before starting anything.  0 or
 * -errno (logged with the path).
 */
int cache_check_dir(const char *dir);

/**
 * Stop the threads and free.  Staged uploads continue until the queue is
 * empty or one fails (what is left is uploaded at the next open).  NULL is
 * a no-op.
 */
void cache_close(struct cache *c);

/** Whether cache_stage should be used for new blocks (conf.writeback). */
bool cache_writeback(const struct cache *c);

/**
 * Look @key up (raw/, then staging/) and verify it as a frame of @len raw
 * bytes.  0: *mem (malloc'd, the caller frees it) holds the @len raw bytes
 * at *data.  -ENOENT: not cached, or the file was bad (then it is deleted,
 * unless staged, and logged).  -ENOMEM.
 */
int cache_get(struct cache *c, const char *key, uint32_t len, char **mem,
	      const char **data);

/**
 * Add @key: an object made of @hdr[0..@hlen) followed by @body[0..@blen)
 * (a verified frame; either part may be empty).  Synchronous.  0 (added,
 * or already cached or staged), -ENOSPC (the bounds refused it, or the
 * cache size is 0), -EINVAL (a plain frame while conf.frame encrypts:
 * never stored), or -errno of the filesystem (not logged per block).
 */
int cache_put(struct cache *c, const char *key, const void *hdr, size_t hlen,
	      const void *body, size_t blen);

/**
 * Write-back: store the framed object @data[0..@len) durably under
 * staging/ and queue its upload.  Returns once the file and its directory
 * entries are fsynced: 0, -ENOSPC (below the free-space floor), -EINVAL (a
 * plain frame while conf.frame encrypts: never written; logged), or -errno
 * of the filesystem (logged).  On failure the caller uploads directly.
 */
int cache_stage(struct cache *c, const char *key, const void *data, size_t len);

/** Whether @key is cached or staged. */
bool cache_has(struct cache *c, const char *key);

/** Delete the cached copy of @key (a staged one stays).  Idempotent. */
void cache_drop(struct cache *c, const char *key);

/**
 * The object @key was deleted: drop the cached copy and any staged one
 * (cancelling its upload; one already running deletes the object again
 * after its PUT).  Idempotent.
 */
void cache_forget(struct cache *c, const char *key);

/** Staged blocks not uploaded yet (includes any still being scanned). */
uint64_t cache_staged_pending(struct cache *c);

/**
 * Wait until no staged block is pending (the startup scan included), for
 * at most @timeout_ms (< 0: forever).  0, or -ETIMEDOUT.
 */
int cache_wait_staged(struct cache *c, int timeout_ms);

/** Wait until the startup index scan is over (for tests). */
void cache_wait_scan(struct cache *c);

/**
 * Run one pass of the background evictor now (for tests: the floor is
 * otherwise re-checked every second).
 */
void cache_enforce(struct cache *c);

void cache_get_stats(struct cache *c, struct cache_stats *out);

#endif
