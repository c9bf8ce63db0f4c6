/*
 * writer.c - slice writers and the worker threads that upload their blocks
 * (and run readahead fetches).
 *
 * Design note.
 *
 * A writer fills the blocks of one new slice.  Writes land at offsets
 * <= the slice length, so a slice's bytes are always contiguous from 0 and
 * block k is complete exactly when the length passes its end; at that
 * moment it is queued for upload ("sealed").  Sealed blocks are therefore a
 * prefix [0, nsealed) of the slice, and a write into a sealed block gets
 * -EAGAIN (the caller starts a new slice; objects are never rewritten).
 * finish() seals the partial last block, uploads it in the calling thread
 * (it would only wait for a worker to do it) and waits for the slice's
 * other uploads.
 *
 * Block states: FILLING (the writer's thread owns the bytes) -> QUEUED (in
 * the upload queue) -> RUNNING (one worker owns them) -> DONE or FAILED.
 * From QUEUED on, the state is guarded by cs->lock.  A DONE block's memory
 * moves, with its pool charge, into the block cache, so reading a slice
 * right after writing it costs no GET.
 *
 * Memory: starting a block reserves a full block in the pool (this may
 * wait, see bcache.c: other writers' idle tail blocks can be sealed to make
 * room), so a writer never waits for memory while it holds a partially
 * reserved block, and buffered bytes never pass conf.buffer_size.  The
 * allocation itself grows by doubling from 4 KiB (small files stay small
 * in RAM), except that blocks after the first of a slice start at full
 * size (the writer is streaming).  After the upload the buffer is trimmed
 * and the cache keeps exactly its length charged.
 *
 * A writer's own fields are guarded by w->mu, held for the length of each
 * call, because a thread short of memory may seal the tail block of a
 * writer that is not in a call (chunk_steal_locked, which only trylocks
 * w->mu while holding cs->lock).  A sealed tail behaves like any uploading
 * block: writing there gets -EAGAIN.
 *
 * The FRAME_HDR_LEN spare bytes in front of each buffer let plain blocks
 * be framed in place and uploaded without a copy; a compressed or
 * encrypted block needs a second, transient buffer for its encoding while
 * it uploads (at most max_uploads of them), which the pool does not count:
 * charging it could deadlock the workers against writers waiting for those
 * very uploads.
 *
 * Uploads: max_uploads worker threads take blocks in queue order; an
 * upload failing with -EIO is retried (CHUNK_IO_RETRIES times at most,
 * with a doubling pause, within CHUNK_IO_DEADLINE_MS), then fails the
 * writer (finish returns -EIO, or -ENOSPC / -EDQUOT when the store said
 * so: a full disk is not an I/O error).  A put that failed may still have stored
 * the object: the retry writes the same key and bytes again.  Workers
 * take uploads before readahead jobs, and never wait for pool memory, so
 * uploads always make progress.  At shutdown they finish queued uploads.
 *
 * Disk cache: an uploaded block, once in the memory cache, is queued for
 * the disk cache too (bcache.c).  With write-back, the worker stages the
 * encoded block on local disk (cache_stage: written and fsynced) instead
 * of uploading it, and the block counts as done; the cache uploads it
 * later.  When staging fails (disk full, below the free-space floor, I/O
 * error) the worker uploads the block as usual.  Workers take uploads
 * first, then disk-cache writes (they pin pool memory), then readahead.
 *
 * Locking: w->mu, then cs->lock (chunk_int.h); no I/O under cs->lock.
 * A writer itself is used by one thread at a time (the caller's rule).
 */
#include "util/common.h"
#include "chunk/chunk_int.h"
#include "cache/cache.h"
#include "object/object.h"
#include "util/crash.h"
#include "util/log.h"

#include <time.h>

#define GROW_MIN (4 * 1024)

static uint32_t full_len(const struct chunk_store *cs, uint32_t index)
{
	uint64_t start = (uint64_t)index * cs->bs;

	return (uint32_t)MIN((uint64_t)cs->bs, TESSERA_CHUNK_SIZE - start);
}

int chunk_writer_new(struct chunk_store *cs, uint64_t slice_id,
		     struct chunk_writer **out)
{
	struct chunk_writer *w;

	if (slice_id == 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->blocks = calloc(cs->max_blocks, sizeof(*w->blocks));
	if (!w->blocks) {
		free(w);
		return -ENOMEM;
	}
	w->cs = cs;
	w->id = slice_id;
	w->nslots = cs->max_blocks;
	atomic_init(&w->failed, 0);
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_lock(&cs->lock);
	w->wnext = cs->writers;
	if (cs->writers)
		cs->writers->wprev = w;
	cs->writers = w;
	pthread_mutex_unlock(&cs->lock);
	*out = w;
	return 0;
}

uint32_t chunk_writer_len(const struct chunk_writer *w)
{
	return w->len;
}

uint64_t chunk_writer_id(const struct chunk_writer *w)
{
	return w->id;
}

/*
 * Make room for @need raw bytes in @b.  The pool already holds a full
 * block for it, so growing allocates without waiting.
 */
static int ensure_cap(struct chunk_store *cs, struct wblock *b, uint32_t need)
{
	uint32_t full = full_len(cs, b->index);
	uint32_t cap;
	char *p;

	if (need <= b->cap)
		return 0;
	if (b->index > 0) {
		cap = full;
	} else {
		cap = b->cap ? b->cap : GROW_MIN;
		while (cap < need)
			cap *= 2;
		cap = MIN(cap, full);
	}
	if (cap == cs->bs) {
		/* Its charge is held already: the spare's goes back. */
		pthread_mutex_lock(&cs->lock);
		p = chunk_spare_take_locked(cs, true);
		if (p)
			chunk_mem_release_locked(cs, cs->bs);
		pthread_mutex_unlock(&cs->lock);
		if (!p)
			p = chunk_full_buf_alloc(cs);
		if (!p)
			return -ENOMEM;
		if (b->mem)
			memcpy(p, b->mem, (size_t)FRAME_HDR_LEN + b->len);
		free(b->mem);
		b->mem = p;
		b->cap = cap;
		return 0;
	}
	p = realloc(b->mem, (size_t)FRAME_HDR_LEN + cap);
	if (!p)
		return -ENOMEM;
	b->mem = p;
	b->cap = cap;
	return 0;
}

/* Start block @index of @w, reserving a full block (may wait). */
static int block_start(struct chunk_writer *w, uint32_t index,
		       struct wblock **out)
{
	struct chunk_store *cs = w->cs;
	uint32_t full = full_len(cs, index);
	struct wblock *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	pthread_mutex_lock(&cs->lock);
	/* A later block fills whole: start it in a spare buffer. */
	if (index > 0 && full == cs->bs &&
	    (b->mem = chunk_spare_take_locked(cs, true))) {
		b->cap = full;
		rc = 0;
	} else {
		rc = chunk_mem_reserve_locked(cs, full, CHUNK_MEM_WAIT);
	}
	pthread_mutex_unlock(&cs->lock);
	if (rc < 0) {
		free(b);
		return rc;
	}
	b->w = w;
	b->index = index;
	b->charge = full;
	w->blocks[index] = b;
	*out = b;
	return 0;
}

/* Queue @b of @w for upload.  Caller holds w->mu and cs->lock. */
static void enqueue_locked(struct chunk_store *cs, struct chunk_writer *w,
			   struct wblock *b)
{
	w->nsealed = b->index + 1;
	b->state = WB_QUEUED;
	b->qnext = NULL;
	b->qprev = cs->q_tail;
	if (cs->q_tail)
		cs->q_tail->qnext = b;
	else
		cs->q_head = b;
	cs->q_tail = b;
	w->pending++;
	cs->inflight++;
	pthread_cond_signal(&cs->work_cond);
}

static void enqueue(struct chunk_writer *w, struct wblock *b)
{
	pthread_mutex_lock(&w->cs->lock);
	enqueue_locked(w->cs, w, b);
	pthread_mutex_unlock(&w->cs->lock);
}

/* The partial tail block of @w, if it is still being filled.  w->mu held. */
static struct wblock *tail_filling(struct chunk_writer *w)
{
	uint32_t last;

	if (w->finished || w->len == 0)
		return NULL;
	last = (w->len - 1) / w->cs->bs;
	return last >= w->nsealed ? w->blocks[last] : NULL;
}

bool chunk_steal_locked(struct chunk_store *cs)
{
	for (struct chunk_writer *w = cs->writers; w; w = w->wnext) {
		struct wblock *b;

		if (pthread_mutex_trylock(&w->mu) != 0)
			continue; /* in a call: it will wake us after */
		b = tail_filling(w);
		if (b)
			enqueue_locked(cs, w, b);
		pthread_mutex_unlock(&w->mu);
		if (b)
			return true;
	}
	return false;
}

static void dequeue_locked(struct chunk_store *cs, struct wblock *b)
{
	if (b->qprev)
		b->qprev->qnext = b->qnext;
	else
		cs->q_head = b->qnext;
	if (b->qnext)
		b->qnext->qprev = b->qprev;
	else
		cs->q_tail = b->qprev;
	b->qnext = b->qprev = NULL;
}

static ssize_t write_locked(struct chunk_writer *w, uint32_t off,
			    const void *data, size_t len)
{
	struct chunk_store *cs = w->cs;
	size_t done = 0;

	if (w->finished || off > w->len || off / cs->bs < w->nsealed)
		return -EAGAIN;
	if (atomic_load(&w->failed))
		return atomic_load(&w->failed);
	if (len == 0)
		return 0;
	if ((uint64_t)off + len > TESSERA_CHUNK_SIZE)
		return -EFBIG;
	while (done < len) {
		uint32_t pos = off + (uint32_t)done;
		uint32_t index = pos / cs->bs, boff = pos % cs->bs;
		uint32_t full = full_len(cs, index);
		uint32_t n = (uint32_t)MIN(len - done, (size_t)(full - boff));
		struct wblock *b = w->blocks[index];
		int rc = 0;

		if (!b)
			rc = block_start(w, index, &b);
		if (rc == 0)
			rc = ensure_cap(cs, b, boff + n);
		if (rc < 0)
			return done ? (ssize_t)done : rc;
		memcpy(b->mem + FRAME_HDR_LEN + boff, (const char *)data + done,
		       n);
		b->len = MAX(b->len, boff + n);
		done += n;
		w->len = MAX(w->len, pos + n);
		if (b->len == full)
			enqueue(w, b);
	}
	return (ssize_t)done;
}

ssize_t chunk_writer_write(struct chunk_writer *w, uint32_t off,
			   const void *data, size_t len)
{
	struct chunk_store *cs = w->cs;
	ssize_t r;

	pthread_mutex_lock(&w->mu);
	r = write_locked(w, off, data, len);
	pthread_mutex_unlock(&w->mu);
	/* Waiters may have skipped us while we were busy: let them retry. */
	if (atomic_load(&cs->mem_waiters) > 0) {
		pthread_mutex_lock(&cs->lock);
		pthread_cond_broadcast(&cs->mem_cond);
		pthread_mutex_unlock(&cs->lock);
	}
	return r;
}

static void upload(struct chunk_store *cs, struct wblock *b);

int chunk_writer_finish(struct chunk_writer *w)
{
	struct chunk_store *cs = w->cs;
	struct wblock *b;

	if (w->finished)
		return w->result;
	pthread_mutex_lock(&w->mu);
	b = atomic_load(&w->failed) ? NULL : tail_filling(w);
	if (b) {
		/*
		 * We would only wait for it: upload the tail here, sparing a
		 * worker's wakeup and ours (a small file's one block).
		 */
		pthread_mutex_lock(&cs->lock);
		w->nsealed = b->index + 1;
		b->state = WB_RUNNING;
		w->pending++;
		cs->inflight++;
		pthread_mutex_unlock(&cs->lock);
	}
	w->finished = true;
	pthread_mutex_unlock(&w->mu);
	if (b)
		upload(cs, b);
	pthread_mutex_lock(&cs->lock);
	while (w->pending > 0)
		pthread_cond_wait(&cs->upl_cond, &cs->lock);
	pthread_mutex_unlock(&cs->lock);
	w->result = atomic_load(&w->failed);
	return w->result;
}

void chunk_writer_free(struct chunk_writer *w)
{
	struct chunk_store *cs;

	if (!w)
		return;
	cs = w->cs;
	pthread_mutex_lock(&cs->lock);
	/* Out of the list first: nobody can seal our blocks after this. */
	if (w->wprev)
		w->wprev->wnext = w->wnext;
	else
		cs->writers = w->wnext;
	if (w->wnext)
		w->wnext->wprev = w->wprev;
	/* Cancel what no worker has started; wait for the rest. */
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct wblock *b = w->blocks[i];

		if (!b || b->state != WB_QUEUED)
			continue;
		dequeue_locked(cs, b);
		b->state = WB_FAILED;
		w->pending--;
		cs->inflight--;
		chunk_mem_release_locked(cs, b->charge);
		free(b->mem);
		b->mem = NULL;
	}
	pthread_cond_broadcast(&cs->mem_cond);
	while (w->pending > 0)
		pthread_cond_wait(&cs->upl_cond, &cs->lock);
	for (uint32_t i = 0; i < w->nslots; i++) {
		struct wblock *b = w->blocks[i];

		if (b && b->state == WB_FILLING)
			chunk_mem_release_locked(cs, b->charge);
	}
	pthread_mutex_unlock(&cs->lock);
	for (uint32_t i = 0; i < w->nslots; i++) {
		if (w->blocks[i])
			free(w->blocks[i]->mem);
		free(w->blocks[i]);
	}
	pthread_mutex_destroy(&w->mu);
	free(w->blocks);
	free(w);
}

int64_t chunk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool chunk_may_retry(const struct chunk_store *cs, int attempt, int64_t t0_ms)
{
	struct obj_state st;

	if (attempt >= CHUNK_IO_RETRIES ||
	    chunk_now_ms() - t0_ms >= CHUNK_IO_DEADLINE_MS)
		return false;
	/* A store that found itself unreachable spent its own retries. */
	obj_state(cs->os, &st);
	return !st.down;
}

void chunk_backoff(struct chunk_store *cs, int attempt)
{
	long ms = cs->backoff_ms;
	struct timespec ts;

	atomic_fetch_add(&cs->n_retry, 1);
	while (attempt-- > 0 && ms < CHUNK_IO_BACKOFF_MAX_MS)
		ms *= 2;
	ms = MIN(ms, (long)CHUNK_IO_BACKOFF_MAX_MS);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cs->lock);
	pthread_cond_timedwait(&cs->nap_cond, &cs->lock, &ts);
	pthread_mutex_unlock(&cs->lock);
}

/* Encode and upload (or stage: *staged) one block. */
static int put_block(struct chunk_store *cs, struct wblock *b, const char *key,
		     bool *staged)
{
	struct buf enc = BUF_INIT;
	const char *data = b->mem;
	size_t n = (size_t)FRAME_HDR_LEN + b->len;
	int64_t t0 = chunk_now_ms();
	int rc;

	*staged = false;
	if (frame_encode_in_place(&cs->fc, b->mem, b->len) < 0) {
		rc = frame_encode_obj(&cs->fc, key, b->mem + FRAME_HDR_LEN,
				      b->len, &enc);
		if (rc < 0)
			return log_fail(rc, "cannot encode block '%s'", key);
		data = enc.data;
		n = enc.len;
	}
	if (cache_writeback(cs->dc)) {
		rc = cache_stage(cs->dc, key, data, n);
		if (rc == 0) {
			*staged = true;
			buf_release(&enc);
			return 0;
		}
		log_warn("cannot stage block '%s' (%s): uploading it now", key,
			 strerror(-rc));
	}
	for (int attempt = 0;; attempt++) {
		rc = obj_put(cs->os, key, data, n);
		if (rc != -EIO || !chunk_may_retry(cs, attempt, t0))
			break;
		log_warn("cannot upload block '%s' (try %d), retrying", key,
			 attempt + 1);
		chunk_backoff(cs, attempt);
	}
	buf_release(&enc);
	if (rc < 0)
		log_error("cannot upload block '%s': %s", key, strerror(-rc));
	return rc;
}

/* Worker: upload @b (RUNNING, ours), then hand its memory to the cache. */
static void upload(struct chunk_store *cs, struct wblock *b)
{
	struct chunk_writer *w = b->w;
	char key[CHUNK_KEY_MAX];
	struct cblock *cb;
	bool staged;
	int rc;

	chunk_block_key(cs, w->id, b->index, b->len, key, sizeof(key));
	rc = put_block(cs, b, key, &staged);
	if (rc == 0 && !staged)
		CRASH_POINT(CRASH_WRITE_BLOCK_UPLOADED);
	if (rc == 0 && b->cap > b->len) {
		char *p = realloc(b->mem, (size_t)FRAME_HDR_LEN + b->len);

		if (p) {
			b->mem = p;
			b->cap = b->len;
		}
	}
	pthread_mutex_lock(&cs->lock);
	if (rc == 0) {
		b->state = WB_DONE;
		/* The cache keeps what is allocated; return the rest. */
		chunk_mem_release_locked(cs, b->charge - b->cap);
		cb = chunk_block_adopt_locked(cs, w->id, b->index, b->len,
					      b->mem, b->mem + FRAME_HDR_LEN,
					      b->cap, b->cap == cs->bs,
					      cs->fc.codec == FRAME_CODEC_NONE &&
						  !cs->fc.encrypt);
		/* A staged block is in the cache dir already; a full one
		 * is cached only when asked (--cache-large-write). */
		if (cb && !staged && (cs->dc_large || b->len < cs->bs))
			chunk_dq_push_locked(cs, cb);
		atomic_fetch_add(&cs->n_upload, 1);
	} else {
		int ok = 0;

		b->state = WB_FAILED;
		/* the first error stays; a full store or quota is told as
		 * such, anything else is an I/O error */
		atomic_compare_exchange_strong(
		    &w->failed, &ok,
		    rc == -ENOSPC || rc == -EDQUOT || rc == -ENOMEM ? rc
								    : -EIO);
		chunk_mem_release_locked(cs, b->charge);
		free(b->mem);
	}
	b->mem = NULL;
	w->pending--;
	cs->inflight--;
	pthread_cond_broadcast(&cs->upl_cond);
	pthread_cond_broadcast(&cs->mem_cond);
	pthread_mutex_unlock(&cs->lock);
}

static void *worker_main(void *arg)
{
	struct chunk_store *cs = arg;

	pthread_mutex_lock(&cs->lock);
	for (;;) {
		if (cs->q_head) {
			struct wblock *b = cs->q_head;

			dequeue_locked(cs, b);
			b->state = WB_RUNNING;
			pthread_mutex_unlock(&cs->lock);
			upload(cs, b);
			pthread_mutex_lock(&cs->lock);
			continue;
		}
		if (cs->dq_n > 0) {
			struct cblock *cb = chunk_dq_pop_locked(cs);

			pthread_mutex_unlock(&cs->lock);
			chunk_dq_write(cs, cb);
			pthread_mutex_lock(&cs->lock);
			continue;
		}
		if (cs->pq_n > 0 && !cs->stopping) {
			struct prefetch_job j = cs->pq[cs->pq_head];

			cs->pq_head = (cs->pq_head + 1) % CHUNK_PQ_MAX;
			cs->pq_n--;
			cs->pf_running++;
			pthread_mutex_unlock(&cs->lock);
			chunk_block_prefetch(cs, j.id, j.index, j.len);
			pthread_mutex_lock(&cs->lock);
			cs->pf_running--;
			pthread_cond_broadcast(&cs->idle_cond);
			continue;
		}
		if (cs->stopping)
			break;
		pthread_cond_wait(&cs->work_cond, &cs->lock);
	}
	pthread_mutex_unlock(&cs->lock);
	return NULL;
}

int chunk_workers_start(struct chunk_store *cs)
{
	cs->workers = calloc((size_t)cs->nworkers, sizeof(*cs->workers));
	if (!cs->workers)
		return -ENOMEM;
	for (int i = 0; i < cs->nworkers; i++) {
		int rc = pthread_create(&cs->workers[i], NULL, worker_main, cs);

		if (rc != 0) {
			cs->nworkers = i;
			chunk_workers_stop(cs);
			return log_fail(-rc, "cannot start upload threads");
		}
	}
	return 0;
}

void chunk_prefetch_wait_idle(struct chunk_store *cs)
{
	pthread_mutex_lock(&cs->lock);
	while (cs->pq_n > 0 || cs->pf_running > 0)
		pthread_cond_wait(&cs->idle_cond, &cs->lock);
	pthread_mutex_unlock(&cs->lock);
}

void chunk_workers_stop(struct chunk_store *cs)
{
	pthread_mutex_lock(&cs->lock);
	cs->stopping = true;
	pthread_cond_broadcast(&cs->work_cond);
	pthread_mutex_unlock(&cs->lock);
	for (int i = 0; i < cs->nworkers; i++)
		pthread_join(cs->workers[i], NULL);
	free(cs->workers);
	cs->workers = NULL;
	cs->nworkers = 0;
}
