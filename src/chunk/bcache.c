/*
 * bcache.c - the memory pool and the block cache of the data path.
 *
 * Design note.
 *
 * Pool: one counter, mem_used, of the bytes held by writer blocks (a full
 * block each, reserved when the block is started) and cached blocks (their
 * length), bounded by mem_limit.  A reservation that does not fit first
 * evicts unreferenced cache blocks, least recently used first.  Then, when
 * uploads are in flight, it waits on mem_cond for them (an uploaded block
 * becomes an evictable cache block).  When none are, the pool is held by
 * writers' partial blocks, and nothing would ever free it: so it seals the
 * tail block of an idle writer (chunk_steal_locked; that writer's next
 * write there gets -EAGAIN and starts a new slice) and waits for that
 * upload.  A writer in a call cannot be sealed, but it holds a full block
 * reservation and is not waiting for memory (a writer only reserves when
 * all its earlier blocks are sealed), so it finishes its call and then
 * wakes the waiters (mem_waiters).  Writers thus never pass the bound and
 * never wait forever.  Readers that find nothing to seal read through an
 * uncharged "overdraft" block, dropped as soon as nobody holds it;
 * prefetches just give up.
 *
 * Cache: a chained hash table on (slice id, block index) holding blocks in
 * three states.  LOADING: one thread (the first to ask) is fetching it;
 * later askers take a reference and wait on load_cond, so concurrent
 * readers of a block share one GET.  READY: bytes immutable, verified.
 * FAILED: the fetch failed; the block left the table before waiters wake,
 * so the next reader tries again.  A block is in the LRU list exactly when
 * it is READY, in the table and unreferenced; only those are evicted.
 * A block removed from the table while referenced (forget, failure) is
 * freed by its last chunk_block_put().
 *
 * Fetch: whole-block GET, frame checked (frame.h) and the raw length
 * compared with the length in the key.  A plain frame is verified in place
 * and kept in the GET buffer (no copy; trimmed, since a buf may have twice
 * the room it needs); a compressed one is decoded into an exact-size
 * allocation.  A failed try is retried when another may succeed: a store
 * error (-EIO: the store's own retries are spent, or a layer above it
 * failed) or a body whose length is not the one its frame header
 * announces (cut short in transit) gets up to CHUNK_IO_RETRIES more tries
 * with backoff; a whole body that does not verify (corrupt at rest, or
 * damaged on the way) one more; a missing object none.  What is left is
 * -EIO with one log line naming the key; wrong bytes are never cached.
 *
 * Disk cache (cache/cache.h): a miss asks the disk cache before the store
 * (it verifies the frame and reports a bad file as a miss).  A block that
 * came from the store is queued, referenced, for the disk cache (the dq
 * ring, written by the workers; full: dropped), and so are uploaded
 * blocks (writer.c).  A queued block is pinned in memory until written,
 * so the queue is bounded to a quarter of the pool; when its reference is
 * dropped, threads waiting for memory are woken, as the block has become
 * evictable.  Overdraft blocks are not queued (their memory is not
 * charged).  A block goes to disk as a plain frame (header written apart,
 * no copy), except on an encrypted volume: there it is encoded like the
 * object in the store (the volume's frame configuration, sealed for its
 * object key), so the disk cache never holds plaintext.  That encoding is
 * a transient buffer the pool does not count, like the upload encodings
 * of writer.c and for the same reason; the worker threads write the
 * queue, one block each at a time, so at most max_uploads such buffers
 * exist, uploads and disk-cache writes together.
 *
 * Locking: cs->lock (see chunk_int.h); no I/O or decoding under it.
 */
#include "util/common.h"
#include "chunk/chunk_int.h"

#include <assert.h>

#include "cache/cache.h"
#include "object/object.h"
#include "util/log.h"

#define BUCKETS_MIN 1024

static size_t bucket_of(const struct chunk_store *cs, uint64_t id,
			uint32_t index)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ULL + index;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)(x & (cs->nbuckets - 1));
}

int chunk_bcache_init(struct chunk_store *cs)
{
	cs->nbuckets = BUCKETS_MIN;
	cs->buckets = calloc(cs->nbuckets, sizeof(*cs->buckets));
	if (!cs->buckets)
		return -ENOMEM;
	cs->lru.lru_next = cs->lru.lru_prev = &cs->lru;
	return 0;
}

static void block_free(struct cblock *b)
{
	free(b->pre);
	free(b->mem);
	free(b);
}

void chunk_bcache_release(struct chunk_store *cs)
{
	for (size_t i = 0; i < cs->nbuckets && cs->buckets; i++) {
		struct cblock *b = cs->buckets[i], *next;

		for (; b; b = next) {
			next = b->hnext;
			block_free(b);
		}
	}
	free(cs->buckets);
	cs->buckets = NULL;
	while (cs->nspare > 0)
		free(cs->spare[--cs->nspare]);
}

static void lru_unlink(struct cblock *b)
{
	if (!b->lru_next)
		return;
	b->lru_prev->lru_next = b->lru_next;
	b->lru_next->lru_prev = b->lru_prev;
	b->lru_next = b->lru_prev = NULL;
}

static void lru_push(struct chunk_store *cs, struct cblock *b)
{
	b->lru_next = cs->lru.lru_next;
	b->lru_prev = &cs->lru;
	cs->lru.lru_next->lru_prev = b;
	cs->lru.lru_next = b;
}

static void grow_table(struct chunk_store *cs)
{
	size_t old_n = cs->nbuckets;
	struct cblock **old = cs->buckets;
	struct cblock **nb = calloc(old_n * 2, sizeof(*nb));

	if (!nb)
		return; /* keep the longer chains */
	cs->buckets = nb;
	cs->nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct cblock *b = old[i], *next;

		for (; b; b = next) {
			size_t h = bucket_of(cs, b->id, b->index);

			next = b->hnext;
			b->hnext = nb[h];
			nb[h] = b;
		}
	}
	free(old);
}

static struct cblock *lookup(struct chunk_store *cs, uint64_t id,
			     uint32_t index, uint32_t len)
{
	struct cblock *b = cs->buckets[bucket_of(cs, id, index)];

	for (; b; b = b->hnext)
		if (b->id == id && b->index == index && b->len == len)
			return b;
	return NULL;
}

static void table_insert(struct chunk_store *cs, struct cblock *b)
{
	size_t h;

	if (cs->ncached >= cs->nbuckets * 2)
		grow_table(cs);
	h = bucket_of(cs, b->id, b->index);
	b->hnext = cs->buckets[h];
	cs->buckets[h] = b;
	b->in_table = true;
	cs->ncached++;
}

static void table_remove(struct chunk_store *cs, struct cblock *b)
{
	struct cblock **pp = &cs->buckets[bucket_of(cs, b->id, b->index)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == b) {
			*pp = b->hnext;
			break;
		}
	}
	b->hnext = NULL;
	b->in_table = false;
	cs->ncached--;
	lru_unlink(b);
}

/*
 * Give back block memory @mem charged @charge: a full block buffer becomes
 * a spare (chunk_spare_give_locked), anything else is freed and its charge
 * returned.  Caller holds cs->lock.
 */
static void mem_return_locked(struct chunk_store *cs, char *mem,
			      uint64_t charge, bool full_buf)
{
	if (full_buf && charge == cs->bs) {
		chunk_spare_give_locked(cs, mem);
		return;
	}
	chunk_mem_release_locked(cs, charge);
	free(mem);
}

/* Free a block out of the table and unreferenced, returning its charge. */
static void drop_locked(struct chunk_store *cs, struct cblock *b)
{
	mem_return_locked(cs, b->mem, b->charge, b->full_buf);
	b->mem = NULL;
	block_free(b);
}

static bool evict_one_locked(struct chunk_store *cs)
{
	struct cblock *b = cs->lru.lru_prev;

	if (b == &cs->lru)
		return false;
	table_remove(cs, b);
	drop_locked(cs, b);
	return true;
}

char *chunk_spare_take_locked(struct chunk_store *cs, bool writer)
{
	/* A writer recycles once half the pool is used, a reader once a
	 * quarter is, but never inside twice the readahead window (see
	 * chunk_int.h). */
	uint64_t room = writer ? cs->mem_limit / 2
			       : MIN(cs->mem_limit,
				     MAX(cs->mem_limit / 4,
					 2 * (uint64_t)cs->max_ra));

	for (;;) {
		if (cs->nspare > 0)
			return cs->spare[--cs->nspare];
		if (atomic_load(&cs->mem_used) + cs->bs <= room)
			return NULL; /* room for a new one */
		if (!evict_one_locked(cs))
			return NULL;
	}
}

size_t chunk_full_buf_size(const struct chunk_store *cs)
{
	return ((size_t)FRAME_HDR_LEN + cs->bs + 4095) & ~(size_t)4095;
}

char *chunk_full_buf_alloc(const struct chunk_store *cs)
{
	return aligned_alloc(4096, chunk_full_buf_size(cs));
}

void chunk_spare_give_locked(struct chunk_store *cs, char *mem)
{
	if (cs->nspare < cs->spare_max) {
		cs->spare[cs->nspare++] = mem;
		/* Someone may wait for pool room a spare could give. */
		if (atomic_load(&cs->mem_waiters) > 0)
			pthread_cond_broadcast(&cs->mem_cond);
		return;
	}
	free(mem);
	chunk_mem_release_locked(cs, cs->bs);
}

/* Free one spare buffer and return its charge; false when none. */
static bool free_spare_locked(struct chunk_store *cs)
{
	if (cs->nspare == 0)
		return false;
	free(cs->spare[--cs->nspare]);
	chunk_mem_release_locked(cs, cs->bs);
	return true;
}

int chunk_mem_reserve_locked(struct chunk_store *cs, uint64_t n,
			     enum chunk_mem_mode mode)
{
	bool waiting = false;
	int rc;

	if (n > cs->mem_limit)
		return -ENOMEM;
	for (;;) {
		uint64_t used = atomic_load(&cs->mem_used);

		if (used + n <= cs->mem_limit) {
			used += n;
			atomic_store(&cs->mem_used, used);
			if (used > atomic_load(&cs->mem_peak))
				atomic_store(&cs->mem_peak, used);
			rc = 0;
			break;
		}
		if (free_spare_locked(cs) || evict_one_locked(cs))
			continue;
		if (mode == CHUNK_MEM_TRY) {
			rc = -EAGAIN;
			break;
		}
		/* Counted before trying writers: see chunk_writer_write. */
		if (!waiting) {
			atomic_fetch_add(&cs->mem_waiters, 1);
			waiting = true;
		}
		if (cs->inflight == 0) {
			/* Nothing will free memory unless we seal some. */
			if (chunk_steal_locked(cs))
				continue;
			if (mode == CHUNK_MEM_READ) {
				rc = -EAGAIN;
				break;
			}
		}
		pthread_cond_wait(&cs->mem_cond, &cs->lock);
	}
	if (waiting)
		atomic_fetch_sub(&cs->mem_waiters, 1);
	return rc;
}

void chunk_mem_release_locked(struct chunk_store *cs, uint64_t n)
{
	if (n == 0)
		return;
	assert(atomic_load(&cs->mem_used) >= n);
	atomic_fetch_sub(&cs->mem_used, n);
	pthread_cond_broadcast(&cs->mem_cond);
}

uint64_t chunk_mem_used(const struct chunk_store *cs)
{
	return atomic_load(&cs->mem_used);
}

uint64_t chunk_mem_peak(const struct chunk_store *cs)
{
	return atomic_load(&cs->mem_peak);
}

/* How a try to fetch a block failed. */
enum fetch_fail {
	FETCH_AGAIN,   /* store error, or a body cut short: retry */
	FETCH_CORRUPT, /* a whole body that does not verify */
	FETCH_FINAL,   /* missing object, or out of memory */
};

/*
 * Whether @len bytes look like a whole object: the length its frame header
 * announces.  A body cut short in transit fails this; one damaged at rest
 * usually does not (flipped bytes keep the length).
 */
static bool body_whole(const char *p, size_t len)
{
	uint64_t payload;

	if (len < FRAME_HDR_LEN)
		return false;
	payload = get_be32((const unsigned char *)p + 12);
	return payload + FRAME_HDR_LEN == len;
}

/*
 * One try: GET block @b (LOADING, ours) from the store and verify it into
 * b->mem and b->data.  On failure, *why and *kind say why and whether to
 * try again.
 */
static int fetch_once(struct chunk_store *cs, struct cblock *b, const char *key,
		      const char **why, enum fetch_fail *kind)
{
	struct buf raw = BUF_INIT;
	struct frame_hdr h;
	struct frame_obj o;
	char *mem = NULL;
	bool full = false;
	ssize_t n = -1;
	int rc;

	*kind = FETCH_AGAIN;
	atomic_fetch_add(&cs->n_fetch, 1);
	if (b->pre) {
		/* GET into the full buffer the block got (no realloc unless
		 * the object is bigger than a block: then it is not kept). */
		raw.data = b->pre;
		raw.cap = chunk_full_buf_size(cs);
		raw.data[0] = '\0';
		b->pre = NULL;
	} else if (b->len == cs->bs && (raw.data = chunk_full_buf_alloc(cs))) {
		/* A full block buffer all the same: the GET lands in place
		 * (no growing copies), and the page-aligned buffer goes to
		 * the disk cache with O_DIRECT instead of through the page
		 * cache (a third of a cold S3 read's CPU). */
		raw.cap = chunk_full_buf_size(cs);
		raw.data[0] = '\0';
	}
	rc = obj_get(cs->os, key, 0, OBJ_TO_END, &raw);
	if (rc == -ENOENT) {
		*why = "object is missing";
		*kind = FETCH_FINAL;
		goto out;
	}
	if (rc < 0) {
		*why = strerror(-rc);
		goto out;
	}
	rc = -EIO;
	if (frame_parse_hdr(raw.data, raw.len, &h, why) < 0)
		goto bad;
	if (h.raw_len != b->len) {
		*why = "length does not match the key";
		goto bad;
	}
	o.key = key;
	o.len = raw.len;
	if (h.codec == FRAME_CODEC_NONE && !(h.flags & FRAME_F_ENCRYPTED)) {
		/* Verify in place and keep the GET buffer, trimmed to size
		 * unless it is a full block buffer (kept for reuse). */
		full = raw.cap == chunk_full_buf_size(cs) &&
		       (uintptr_t)raw.data % 4096 == 0;
		mem = full ? NULL : realloc(raw.data, raw.len + 1);
		if (!mem)
			mem = raw.data;
		raw.data = NULL;
		o.data = mem;
		n = frame_decode_obj_to(&cs->fc, &o, mem + FRAME_HDR_LEN,
					b->len, why);
		b->data = mem + FRAME_HDR_LEN;
	} else {
		mem = malloc(b->len ? b->len : 1);
		if (!mem) {
			*kind = FETCH_FINAL;
			rc = -ENOMEM;
			goto out;
		}
		o.data = raw.data;
		n = frame_decode_obj_to(&cs->fc, &o, mem, b->len, why);
		b->data = mem;
	}
	if (n >= 0 && (uint32_t)n == b->len) {
		b->mem = mem;
		b->framed = b->data == mem + FRAME_HDR_LEN;
		b->full_buf = full && b->framed && b->len == cs->bs;
		rc = 0;
		goto out;
	}
	free(mem);
	b->data = NULL;
	*kind = FETCH_CORRUPT;
	goto out;
bad:
	if (body_whole(raw.data, raw.len))
		*kind = FETCH_CORRUPT;
out:
	buf_release(&raw);
	return rc;
}

static bool store_down(struct chunk_store *cs)
{
	struct obj_state st;

	obj_state(cs->os, &st);
	return st.down;
}

/*
 * Load one block into @b (LOADING, owned by this thread) from the disk
 * cache (*from_disk set) or the store, verified, retrying what another
 * try may fix (see CHUNK_IO_RETRIES); a prefetch tries the store once, as
 * the reader that needs the block will try again.  Wrong bytes are never
 * kept: the block is only filled by a try that verified.
 */
static int fetch(struct chunk_store *cs, struct cblock *b, bool prefetch,
		 bool *from_disk)
{
	char key[CHUNK_KEY_MAX];
	int corrupt_left = CHUNK_CORRUPT_RETRIES;
	int64_t t0 = chunk_now_ms();
	const char *why = "unknown error";
	enum fetch_fail kind;
	int rc;

	chunk_block_key(cs, b->id, b->index, b->len, key, sizeof(key));
	*from_disk = false;
	if (cs->dc && cache_get(cs->dc, key, b->len, &b->mem, &b->data) == 0) {
		*from_disk = true;
		free(b->pre); /* its charge stays with the block */
		b->pre = NULL;
		return 0;
	}
	for (int attempt = 0;; attempt++) {
		rc = fetch_once(cs, b, key, &why, &kind);
		if (rc == 0 || rc == -ENOMEM)
			return rc;
		if (prefetch || kind == FETCH_FINAL ||
		    (kind == FETCH_CORRUPT && corrupt_left-- == 0) ||
		    !chunk_may_retry(cs, attempt, t0))
			break;
		log_warn("cannot read block '%s' (try %d): %s, retrying", key,
			 attempt + 1, why);
		chunk_backoff(cs, attempt);
	}
	if (prefetch && store_down(cs)) /* the store said so, once */
		log_debug("readahead of block '%s' failed: %s", key, why);
	else if (prefetch)
		log_warn("readahead of block '%s' failed: %s", key, why);
	else
		log_error("cannot read block '%s': %s", key, why);
	return -EIO;
}

static struct cblock *block_new(uint64_t id, uint32_t index, uint32_t len)
{
	struct cblock *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->id = id;
	b->index = index;
	b->len = len;
	b->state = CB_LOADING;
	return b;
}

/* The LOADING block @b (with our reference) is done: publish or drop it. */
static void finish_load_locked(struct chunk_store *cs, struct cblock *b, int rc)
{
	if (rc == 0) {
		b->state = CB_READY;
	} else {
		b->state = CB_FAILED;
		table_remove(cs, b);
	}
	pthread_cond_broadcast(&cs->load_cond);
}

/* Wait for a LOADING block; our reference is held.  0 or -EIO. */
static int wait_load_locked(struct chunk_store *cs, struct cblock *b)
{
	while (b->state == CB_LOADING)
		pthread_cond_wait(&cs->load_cond, &cs->lock);
	if (b->state == CB_READY)
		return 0;
	if (--b->refs == 0)
		drop_locked(cs, b);
	return -EIO;
}

int chunk_block_get(struct chunk_store *cs, uint64_t id, uint32_t index,
		    uint32_t len, struct cblock **out)
{
	struct cblock *b;
	bool from_disk;
	int rc;

	pthread_mutex_lock(&cs->lock);
	b = lookup(cs, id, index, len);
	if (b) {
		if (b->refs++ == 0)
			lru_unlink(b);
		rc = wait_load_locked(cs, b);
		if (rc == 0)
			atomic_fetch_add(&cs->n_hit, 1);
		goto out;
	}
	b = block_new(id, index, len);
	if (!b) {
		rc = -ENOMEM;
		goto out;
	}
	b->refs = 1;
	table_insert(cs, b);
	if (len == cs->bs && (b->pre = chunk_spare_take_locked(cs, false)))
		rc = 0; /* its charge is ours */
	else
		rc = chunk_mem_reserve_locked(cs, len, CHUNK_MEM_READ);
	if (rc == -EAGAIN || rc == -ENOMEM) {
		b->overdraft = true; /* pool full of unflushable data */
		rc = 0;
	} else {
		b->charge = len;
	}
	pthread_mutex_unlock(&cs->lock);
	rc = fetch(cs, b, false, &from_disk);
	pthread_mutex_lock(&cs->lock);
	finish_load_locked(cs, b, rc);
	if (rc == 0 && !from_disk)
		chunk_dq_push_locked(cs, b);
	if (rc < 0 && --b->refs == 0)
		drop_locked(cs, b);
out:
	pthread_mutex_unlock(&cs->lock);
	if (rc == 0)
		*out = b;
	return rc;
}

void chunk_block_put(struct chunk_store *cs, struct cblock *b)
{
	pthread_mutex_lock(&cs->lock);
	if (--b->refs == 0) {
		if (b->in_table && b->overdraft)
			table_remove(cs, b);
		if (!b->in_table) {
			drop_locked(cs, b);
		} else {
			lru_push(cs, b);
			/* Evictable now: memory waiters may proceed. */
			if (atomic_load(&cs->mem_waiters) > 0)
				pthread_cond_broadcast(&cs->mem_cond);
		}
	}
	pthread_mutex_unlock(&cs->lock);
}

bool chunk_block_known_locked(struct chunk_store *cs, uint64_t id,
			      uint32_t index, uint32_t len)
{
	return lookup(cs, id, index, len) != NULL;
}

void chunk_block_prefetch(struct chunk_store *cs, uint64_t id, uint32_t index,
			  uint32_t len)
{
	struct cblock *b;
	bool from_disk;
	int rc;

	char *pre = NULL;

	pthread_mutex_lock(&cs->lock);
	if (lookup(cs, id, index, len))
		goto out;
	if (len != cs->bs || !(pre = chunk_spare_take_locked(cs, false))) {
		if (chunk_mem_reserve_locked(cs, len, CHUNK_MEM_TRY) < 0)
			goto out;
	}
	b = block_new(id, index, len);
	if (!b) {
		if (pre)
			chunk_spare_give_locked(cs, pre);
		else
			chunk_mem_release_locked(cs, len);
		goto out;
	}
	b->pre = pre;
	b->charge = len;
	b->refs = 1;
	table_insert(cs, b);
	pthread_mutex_unlock(&cs->lock);
	atomic_fetch_add(&cs->n_prefetch, 1);
	rc = fetch(cs, b, true, &from_disk);
	pthread_mutex_lock(&cs->lock);
	finish_load_locked(cs, b, rc);
	if (rc == 0 && !from_disk)
		chunk_dq_push_locked(cs, b);
	if (--b->refs == 0) {
		if (b->in_table)
			lru_push(cs, b);
		else
			drop_locked(cs, b);
	}
out:
	pthread_mutex_unlock(&cs->lock);
}

struct cblock *chunk_block_adopt_locked(struct chunk_store *cs, uint64_t id,
					uint32_t index, uint32_t len, char *mem,
					const char *data, uint64_t charge,
					bool full_buf, bool framed)
{
	struct cblock *b = lookup(cs, id, index, len);

	if (b || !(b = block_new(id, index, len))) {
		mem_return_locked(cs, mem, charge, full_buf);
		return NULL;
	}
	b->full_buf = full_buf;
	b->framed = framed;
	b->mem = mem;
	b->data = data;
	b->charge = charge;
	b->state = CB_READY;
	table_insert(cs, b);
	lru_push(cs, b);
	return b;
}

void chunk_dq_push_locked(struct chunk_store *cs, struct cblock *b)
{
	if (!cs->dc_blocks || b->overdraft || b->state != CB_READY)
		return;
	if (cs->dq_n == CHUNK_DQ_MAX || cs->dq_bytes + b->len > cs->dq_limit) {
		atomic_fetch_add(&cs->n_dq_drop, 1);
		return;
	}
	if (b->refs++ == 0)
		lru_unlink(b);
	cs->dq[(cs->dq_head + cs->dq_n) % CHUNK_DQ_MAX] = b;
	cs->dq_n++;
	cs->dq_bytes += b->len;
	pthread_cond_signal(&cs->work_cond);
}

struct cblock *chunk_dq_pop_locked(struct chunk_store *cs)
{
	struct cblock *b;

	if (cs->dq_n == 0)
		return NULL;
	b = cs->dq[cs->dq_head];
	cs->dq_head = (cs->dq_head + 1) % CHUNK_DQ_MAX;
	cs->dq_n--;
	cs->dq_bytes -= b->len;
	return b;
}

/* Write the READY block @b (referenced) to the disk cache. */
static void dq_store(struct chunk_store *cs, struct cblock *b)
{
	char key[CHUNK_KEY_MAX];
	unsigned char hdr[FRAME_HDR_LEN];
	struct buf enc = BUF_INIT;

	chunk_block_key(cs, b->id, b->index, b->len, key, sizeof(key));
	if (!cs->fc.encrypt && b->framed) {
		/* Header and bytes in one buffer: one (direct) write. */
		cache_put(cs->dc, key, b->mem, FRAME_HDR_LEN, b->data, b->len);
		return;
	}
	if (!cs->fc.encrypt) {
		frame_plain_hdr(hdr, b->data, b->len);
		cache_put(cs->dc, key, hdr, sizeof(hdr), b->data, b->len);
		return;
	}
	/* Sealed for its object key, like the object in the store. */
	if (frame_encode_obj(&cs->fc, key, b->data, b->len, &enc) == 0)
		cache_put(cs->dc, key, enc.data, enc.len, NULL, 0);
	else
		atomic_fetch_add(&cs->n_dq_drop, 1);
	buf_release(&enc);
}

void chunk_dq_write(struct chunk_store *cs, struct cblock *b)
{
	bool live;

	pthread_mutex_lock(&cs->lock);
	live = b->in_table; /* a forgotten block is not worth writing */
	pthread_mutex_unlock(&cs->lock);
	if (live)
		dq_store(cs, b);
	chunk_block_put(cs, b);
}

void chunk_forget_slice(struct chunk_store *cs, uint64_t id)
{
	pthread_mutex_lock(&cs->lock);
	for (uint32_t i = 0; i < cs->max_blocks; i++) {
		struct cblock *b = cs->buckets[bucket_of(cs, id, i)], *next;

		for (; b; b = next) {
			next = b->hnext;
			if (b->id != id || b->index != i ||
			    b->state == CB_LOADING)
				continue;
			table_remove(cs, b);
			if (b->refs == 0)
				drop_locked(cs, b);
		}
	}
	pthread_mutex_unlock(&cs->lock);
}
