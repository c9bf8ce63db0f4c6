/*
 * chunk.h - slices and blocks: the data path between vfs/ and the object
 * store (DESIGN section 3 and 5).
 *
 * A slice's bytes are stored as blocks of the volume's block size (the last
 * one shorter) under NAME/chunks/{id/1000000}/{id/1000}/{id}_{index}_{len},
 * each object framed and checksummed (object/frame.h).  chunk/ knows nothing
 * of inodes or metadata: vfs/ reads slice lists from meta/ and hands them
 * here, and commits the slices that writers produce.
 *
 * Disk cache (conf.cache): reads go memory -> disk cache -> object store;
 * blocks fetched from the store and blocks uploaded by writers are written
 * to the disk cache in the background (a bounded queue; dropped when it
 * is full).  With conf.cache->writeback, a writer's blocks are staged on
 * local disk (fsynced) instead of uploaded, and finish returns once they
 * are; the cache uploads them later (see cache.h).
 *
 * Memory: every buffered write block and cached read block comes from one
 * pool bounded by conf.buffer_size; a writer that would pass it waits for
 * uploads to free memory.  Blocks queued for the disk cache, staged
 * uploads in flight and warmup buffers are charged to the same pool.
 * Uploads run on a bounded thread pool (conf.max_uploads); the transient
 * encoding buffers of compressed blocks (at most one per upload thread)
 * are the only block-sized memory outside the pool.
 *
 * Threads: a chunk_store may be used from any thread.  A chunk_writer
 * belongs to one file and must be serialized by the caller (vfs holds the
 * file's lock).
 */
#ifndef TESSERA_CHUNK_CHUNK_H
#define TESSERA_CHUNK_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/slice.h"

struct obj_store;
struct frame_conf;
struct cache;
struct cache_conf;
struct chunk_store;
struct chunk_writer;

struct chunk_conf {
	const char *volname;	/* key prefix: NAME/chunks/... */
	uint32_t block_size;	/* volume block size (default 4 MiB) */
	uint64_t buffer_size;	/* memory pool bound, bytes (default 300 MiB) */
	int max_uploads;	/* upload threads (default 20) */
	uint32_t max_readahead; /* bytes (default 32 MiB; 0 disables) */
	/* Compression/encryption of new blocks (copied); NULL = plain. */
	const struct frame_conf *frame;
	/*
	 * Local disk cache and write-back (cache/cache.h); NULL = none.
	 * Its frame member is ignored (the store's frame settings are used).
	 */
	const struct cache_conf *cache;
};

/** Start the data path over @os (borrowed; must outlive the store). */
int chunk_store_new(struct obj_store *os, const struct chunk_conf *conf,
		    struct chunk_store **out);
/** Waits for running uploads, then frees.  NULL is a no-op. */
void chunk_store_free(struct chunk_store *cs);

/** Object key of block @index (length @len) of slice @id, into @out. */
void chunk_block_key(const struct chunk_store *cs, uint64_t id, uint32_t index,
		     uint32_t len, char *out, size_t n);

/*
 * Object names without a store (fsck, gc, info): chunk/ is the one place
 * that spells them.  Every block key of volume NAME starts with
 * "NAME/chunks/" (chunk_key_prefix).
 */
/** Object key of block @index (@len bytes) of slice @id of @volname. */
void chunk_key(const char *volname, uint64_t id, uint32_t index, uint32_t len,
	       char *out, size_t n);
/** "NAME/chunks/" into @out. */
void chunk_key_prefix(const char *volname, char *out, size_t n);
/**
 * Parse a block key of @volname back into slice id, block index and block
 * length.  -EINVAL when @key is not exactly what chunk_key makes (another
 * volume, another directory level, trailing bytes, id 0).
 */
int chunk_key_parse(const char *volname, const char *key, uint64_t *id,
		    uint32_t *index, uint32_t *len);
/** Blocks of a slice of @size bytes stored in blocks of @bs bytes. */
uint32_t chunk_slice_blocks(uint32_t size, uint32_t bs);
/** Length of block @index of that slice. */
uint32_t chunk_slice_block_len(uint32_t size, uint32_t bs, uint32_t index);

/**
 * Read @len bytes at offset @off of a chunk whose slice list (oldest first)
 * is @s[0..n), into @dst.  Bytes no slice covers read as zeros.  Returns
 * @len, or -EIO (a block missing or corrupt, or the store failing past
 * the retry bound: logged with its key).  Reads go through the memory
 * cache; sequential patterns trigger readahead.  A failed GET, or a body
 * cut short, is retried a bounded number of times with backoff (at most
 * 6 retries, none started 20 s after the first try); a body that does not
 * verify is retried once.  Wrong bytes are never returned.
 */
ssize_t chunk_read(struct chunk_store *cs, const struct slice *s, size_t n,
		   uint32_t off, void *dst, size_t len);

/**
 * Fetch in the background the block holding the start of each slice
 * @s[0..n) (the heads of small files about to be read), in order, while
 * their total stays within @budget bytes and the queue has room; cached
 * or loading blocks are skipped.  Returns the blocks queued.  Any thread.
 */
int chunk_prefetch_blocks(struct chunk_store *cs, const struct slice *s,
			  size_t n, uint64_t budget);

/**
 * A file is being read sequentially towards the chunk whose slice list is
 * @s[0..n): fetch its first max_readahead bytes in the background and
 * start its readahead stream with a full window, so that crossing into
 * it neither stalls on a GET nor ramps up again.  Only for a list of one
 * record starting at the chunk's start (a file written sequentially);
 * otherwise nothing.  Any thread.
 */
void chunk_readahead_next(struct chunk_store *cs, const struct slice *s,
			  size_t n);
/** The readahead window bound in bytes (0: no readahead). */
uint32_t chunk_max_readahead(const struct chunk_store *cs);

/**
 * A writer fills one new slice (id from meta_new_slice_id).  Bytes are
 * addressed relative to the slice start.  Full blocks upload in the
 * background while the application keeps writing.
 */
int chunk_writer_new(struct chunk_store *cs, uint64_t slice_id,
		     struct chunk_writer **out);
/**
 * Write @len bytes at slice offset @off.  Allowed when off <= current length
 * and the block at @off is not yet uploading; otherwise -EAGAIN (start a new
 * slice).  A slice never grows past one chunk (64 MiB): -EFBIG.
 */
ssize_t chunk_writer_write(struct chunk_writer *w, uint32_t off,
			   const void *data, size_t len);
/** Bytes written so far (the slice size). */
uint32_t chunk_writer_len(const struct chunk_writer *w);
uint64_t chunk_writer_id(const struct chunk_writer *w);
/**
 * Upload what is buffered and wait for every upload of this slice.  Returns
 * 0 or -EIO (an upload failed past the retry bound of chunk_read).  After
 * success the slice's objects are durable once obj_sync() runs (file
 * store) and may be committed to metadata.
 */
int chunk_writer_finish(struct chunk_writer *w);
/** Free (after finish, or to abandon: uploaded blocks become garbage). */
void chunk_writer_free(struct chunk_writer *w);

/** Delete every block object of slice @id of @size bytes. */
int chunk_delete_slice(struct chunk_store *cs, uint64_t id, uint32_t size);

/** Drop cached blocks of slice @id (after it was deleted). */
void chunk_forget_slice(struct chunk_store *cs, uint64_t id);

/** Memory in use by the pool, bytes (for stats and tests). */
uint64_t chunk_mem_used(const struct chunk_store *cs);

/**
 * The disk cache, or NULL when there is none (for its counters, the
 * pending staged uploads, tests).  Lives as long as @cs.
 */
struct cache *chunk_disk_cache(const struct chunk_store *cs);

/** Blocks the disk-cache queue dropped because it was full. */
uint64_t chunk_cache_queue_drops(const struct chunk_store *cs);

/** Counters: block GETs from the store (@fetches, tries included),
 * block loads started by readahead (@prefetches), block reads served from
 * memory (@hits). */
void chunk_block_counts(const struct chunk_store *cs, uint64_t *fetches,
			uint64_t *prefetches, uint64_t *hits);

enum chunk_cache_op {
	CHUNK_CACHE_WARM,  /* fetch blocks into the disk cache */
	CHUNK_CACHE_EVICT, /* drop their cached copies (staged ones stay) */
	CHUNK_CACHE_CHECK, /* count what is cached */
};

/* What a chunk_cache_slices call saw; added to (never reset). */
struct chunk_cache_report {
	uint64_t blocks;	/* distinct blocks of the visible parts */
	uint64_t bytes;		/* their raw bytes */
	uint64_t cached_blocks; /* of them: cached (warm: now or already;
				   evict: were cached, dropped now) */
	uint64_t cached_bytes;
	uint64_t failed; /* warm: could not fetch or cache (logged) */
};

/**
 * Warm up, evict or check the disk cache for the blocks that the visible
 * parts of a chunk's slice list @s[0..n) use (warmup).  Blocks are taken
 * once per call even when several records share them.  Returns 0 (see
 * @r for per-block failures), -ENOSYS (no disk cache, or one of size 0)
 * or -ENOMEM.  Warming
 * fetches whole blocks synchronously in the calling thread.  Any thread.
 */
int chunk_cache_slices(struct chunk_store *cs, enum chunk_cache_op op,
		       const struct slice *s, size_t n,
		       struct chunk_cache_report *r);

#endif
