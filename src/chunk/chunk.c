/*
 * chunk.c - the chunk store: setup, block keys, the read path over a
 * chunk's slice list, readahead, and slice deletion.
 *
 * Design note.
 *
 * Resolving a read: the slice list is oldest first and later records win.
 * chunk_read keeps a stack of (range, newest record that may serve it):
 * for a range it finds the newest record j overlapping it, serves the
 * overlap from j, and pushes the uncovered parts left and right of it with
 * "records older than j".  A range that no record covers is zeros, as is
 * a range served by slice id 0.  Each byte is thus taken from the newest
 * record covering it, and the work is O(records x pieces).
 *
 * Serving a piece of a slice: slice offset = rec.off + (pos - rec.pos);
 * for each block it touches, take a reference on the cached block (fetched
 * and verified on a miss, see bcache.c), copy, drop the reference.  A
 * record that points outside its slice is corrupt metadata: -EIO.
 *
 * Readahead: a small table of streams keyed by slice id remembers where
 * the last read of a slice ended.  A read that starts there (or at offset
 * 0) is sequential: the stream's window doubles from one block up to
 * max_readahead, and the blocks between the read's end and end + window
 * (within the record's visible part) that are neither cached nor already
 * requested are queued for the workers, which fetch them if the pool has
 * room without waiting.  Any other read resets the window to 0.
 *
 * Memory: the pool counts block bytes; for the process's RSS to follow,
 * chunk_store_new fixes glibc's mmap threshold (process-wide) so that
 * block buffers are mmapped and freed back to the system, not kept in
 * malloc arenas.
 *
 * Disk cache: chunk_store_new opens it (cache/cache.h) before the
 * workers start and chunk_store_free closes it after they stopped, so the
 * last uploads and disk-cache writes still reach it.  Deleting a slice
 * forgets its blocks there too (cached copies, staged uploads).  Warmup
 * (chunk_cache_slices) works block by block in the caller's thread,
 * outside the memory cache: GET, verify (with the object key and the data
 * key, like a read), write the object's bytes as fetched to the disk cache
 * (so an encrypted volume's cache gets the encrypted object), with its
 * buffers charged to the pool.
 *
 * Locking: cs->lock guards the streams and the prefetch queue (see
 * chunk_int.h for the rest).
 */
#include "util/common.h"
#include "chunk/chunk_int.h"
#include "cache/cache.h"
#include "object/object.h"
#include "util/log.h"

#include <inttypes.h>
#include <malloc.h>

#define DEF_BUFFER (300 * MiB)
#define DEF_UPLOADS 20
#define MAX_UPLOADS 256

static int conf_check(const struct chunk_conf *conf, uint32_t *bs,
		      uint64_t *limit, int *nworkers)
{
	if (!conf->volname || !conf->volname[0] ||
	    strlen(conf->volname) > TESSERA_NAME_MAX ||
	    conf->block_size > TESSERA_CHUNK_SIZE)
		return -EINVAL;
	*bs = conf->block_size ? conf->block_size : TESSERA_BLOCK_SIZE;
	*limit = conf->buffer_size ? conf->buffer_size : DEF_BUFFER;
	if (*limit < *bs) {
		log_warn("buffer size %" PRIu64 " is below the block size %u: "
			 "using %u",
			 *limit, *bs, *bs);
		*limit = *bs;
	}
	*nworkers = conf->max_uploads > 0 ? conf->max_uploads : DEF_UPLOADS;
	*nworkers = MIN(*nworkers, MAX_UPLOADS);
	return 0;
}

static int store_init_sync(struct chunk_store *cs)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->mem_cond, NULL);
	pthread_cond_init(&cs->load_cond, NULL);
	pthread_cond_init(&cs->upl_cond, NULL);
	pthread_cond_init(&cs->work_cond, NULL);
	pthread_cond_init(&cs->idle_cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&cs->nap_cond, &ca);
	pthread_condattr_destroy(&ca);
	return -rc;
}

static void store_release_sync(struct chunk_store *cs)
{
	pthread_cond_destroy(&cs->nap_cond);
	pthread_cond_destroy(&cs->work_cond);
	pthread_cond_destroy(&cs->idle_cond);
	pthread_cond_destroy(&cs->upl_cond);
	pthread_cond_destroy(&cs->load_cond);
	pthread_cond_destroy(&cs->mem_cond);
	pthread_mutex_destroy(&cs->lock);
}

/* The disk cache's staged uploads hold pool memory while they run. */
static int dc_mem_reserve(void *arg, uint64_t n)
{
	struct chunk_store *cs = arg;
	int rc;

	pthread_mutex_lock(&cs->lock);
	rc = chunk_mem_reserve_locked(cs, n, CHUNK_MEM_WAIT);
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

static void dc_mem_release(void *arg, uint64_t n)
{
	struct chunk_store *cs = arg;

	pthread_mutex_lock(&cs->lock);
	chunk_mem_release_locked(cs, n);
	pthread_mutex_unlock(&cs->lock);
}

static int open_disk_cache(struct chunk_store *cs,
			   const struct cache_conf *conf)
{
	struct cache_conf cc = *conf;

	cc.frame = &cs->fc;
	cc.mem_reserve = dc_mem_reserve;
	cc.mem_release = dc_mem_release;
	cc.mem_arg = cs;
	if (cc.upload_threads == 0)
		cc.upload_threads = MIN(cs->nworkers, 8);
	cs->dc_blocks = cc.size > 0;
	cs->dc_large = cc.cache_large_write;
	return cache_open(cs->os, &cc, &cs->dc);
}

int chunk_store_new(struct obj_store *os, const struct chunk_conf *conf,
		    struct chunk_store **out)
{
	struct chunk_store *cs;
	int rc;

	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	rc = conf_check(conf, &cs->bs, &cs->mem_limit, &cs->nworkers);
	if (rc < 0) {
		free(cs);
		return log_fail(rc, "invalid data path settings");
	}
	cs->os = os;
	cs->max_blocks = (uint32_t)((TESSERA_CHUNK_SIZE + cs->bs - 1) / cs->bs);
	cs->max_ra = conf->max_readahead;
	cs->backoff_ms = CHUNK_IO_BACKOFF_MS;
	if (conf->frame)
		cs->fc = *conf->frame;
	cs->volname = strdup(conf->volname);
	if (!cs->volname) {
		free(cs);
		return -ENOMEM;
	}
	cs->dq_limit = MAX(cs->mem_limit / 4, (uint64_t)cs->bs);
	cs->spare_max = (unsigned)MIN((uint64_t)CHUNK_SPARE_MAX,
				      MAX(cs->mem_limit / cs->bs / 4, 1));
	/*
	 * Blocks are big and short-lived: with glibc's default, the mmap
	 * threshold grows to the block size after the first frees, then
	 * freed blocks stay in the heap (RSS well above the pool).  A fixed
	 * threshold keeps them mmapped: freeing returns them at once.
	 */
	mallopt(M_MMAP_THRESHOLD, CHUNK_MMAP_THRESHOLD);
	rc = store_init_sync(cs);
	if (rc == 0)
		rc = chunk_bcache_init(cs);
	if (rc == 0 && conf->cache)
		rc = open_disk_cache(cs, conf->cache);
	if (rc == 0)
		rc = chunk_workers_start(cs);
	if (rc < 0) {
		cache_close(cs->dc);
		chunk_bcache_release(cs);
		store_release_sync(cs);
		free(cs->volname);
		free(cs);
		return rc;
	}
	*out = cs;
	return 0;
}

void chunk_store_free(struct chunk_store *cs)
{
	if (!cs)
		return;
	chunk_workers_stop(cs);
	cache_close(cs->dc);
	chunk_bcache_release(cs);
	store_release_sync(cs);
	free(cs->volname);
	free(cs);
}

void chunk_key(const char *volname, uint64_t id, uint32_t index, uint32_t len,
	       char *out, size_t n)
{
	snprintf(out, n, "%s/chunks/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "_%u_%u",
		 volname, id / 1000000, id / 1000, id, index, len);
}

void chunk_block_key(const struct chunk_store *cs, uint64_t id, uint32_t index,
		     uint32_t len, char *out, size_t n)
{
	chunk_key(cs->volname, id, index, len, out, n);
}

void chunk_key_prefix(const char *volname, char *out, size_t n)
{
	snprintf(out, n, "%s/chunks/", volname);
}

/* A decimal number without sign or leading zeros at *p; advances *p. */
static int parse_num(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

int chunk_key_parse(const char *volname, const char *key, uint64_t *id,
		    uint32_t *index, uint32_t *len)
{
	char expect[OBJ_KEY_MAX + 1];
	size_t vlen = strlen(volname);
	uint64_t d1, d2, v, idx, l;
	const char *p = key;

	if (strncmp(p, volname, vlen) || strncmp(p + vlen, "/chunks/", 8))
		return -EINVAL;
	p += vlen + 8;
	if (parse_num(&p, UINT64_MAX, &d1) || *p++ != '/' ||
	    parse_num(&p, UINT64_MAX, &d2) || *p++ != '/' ||
	    parse_num(&p, UINT64_MAX, &v) || *p++ != '_' ||
	    parse_num(&p, UINT32_MAX, &idx) || *p++ != '_' ||
	    parse_num(&p, UINT32_MAX, &l) || *p)
		return -EINVAL;
	if (v == 0 || d1 != v / 1000000 || d2 != v / 1000)
		return -EINVAL;
	chunk_key(volname, v, (uint32_t)idx, (uint32_t)l, expect,
		  sizeof(expect));
	if (strcmp(expect, key))
		return -EINVAL;
	*id = v;
	*index = (uint32_t)idx;
	*len = (uint32_t)l;
	return 0;
}

uint32_t chunk_slice_blocks(uint32_t size, uint32_t bs)
{
	return bs ? (uint32_t)(((uint64_t)size + bs - 1) / bs) : 0;
}

uint32_t chunk_slice_block_len(uint32_t size, uint32_t bs, uint32_t index)
{
	uint64_t start = (uint64_t)index * bs;

	return start >= size ? 0 : (uint32_t)MIN((uint64_t)bs, size - start);
}

static uint32_t block_len(const struct chunk_store *cs, uint32_t size,
			  uint32_t index)
{
	return MIN(cs->bs, size - index * cs->bs);
}

static struct ra_stream *ra_find_locked(struct chunk_store *cs, uint64_t id,
					bool *found)
{
	struct ra_stream *victim = &cs->ra[0];

	for (int i = 0; i < CHUNK_RA_STREAMS; i++) {
		struct ra_stream *st = &cs->ra[i];

		if (st->id == id) {
			*found = true;
			return st;
		}
		if (st->last_use < victim->last_use)
			victim = st;
	}
	*found = false;
	memset(victim, 0, sizeof(*victim));
	victim->id = id;
	return victim;
}

static bool pq_push_locked(struct chunk_store *cs, uint64_t id, uint32_t index,
			   uint32_t len)
{
	struct prefetch_job *j;

	if (cs->pq_n == CHUNK_PQ_MAX)
		return false;
	j = &cs->pq[(cs->pq_head + cs->pq_n) % CHUNK_PQ_MAX];
	j->id = id;
	j->index = index;
	j->len = len;
	cs->pq_n++;
	return true;
}

/*
 * Wake workers for @queued new prefetch jobs, one wakeup per job: a
 * broadcast woke every idle worker for one block, and on 2 CPUs the caller
 * (a FUSE request) then waited for them all to run and sleep again (~95 us
 * per queued block).  Caller holds cs->lock.
 */
static void wake_for_jobs_locked(struct chunk_store *cs, int queued)
{
	if (queued >= cs->nworkers)
		pthread_cond_broadcast(&cs->work_cond);
	else
		while (queued-- > 0)
			pthread_cond_signal(&cs->work_cond);
}

/*
 * Queue for the workers blocks [first, last] of record @s's slice that are
 * neither cached nor requested, advancing @st->next_block past each one
 * handled; stop when the queue is full.  Caller holds cs->lock.
 */
static void queue_ahead_locked(struct chunk_store *cs, struct ra_stream *st,
			       const struct slice *s, uint32_t first,
			       uint32_t last)
{
	int queued = 0;

	for (uint32_t i = first; i <= last; i++) {
		uint32_t len = block_len(cs, s->size, i);

		if (!chunk_block_known_locked(cs, s->id, i, len)) {
			if (!pq_push_locked(cs, s->id, i, len))
				break;
			queued++;
		}
		st->next_block = i + 1;
	}
	wake_for_jobs_locked(cs, queued);
}

/*
 * A read of slice bytes [start, end) of record @s happened: update the
 * slice's stream and queue the blocks ahead of it.  @vis_end is the end
 * of the record's visible part, in slice offsets.
 */
static void readahead(struct chunk_store *cs, const struct slice *s,
		      uint32_t start, uint32_t end, uint32_t vis_end)
{
	struct ra_stream *st;
	uint32_t first;
	uint64_t stop;
	bool found;

	if (cs->max_ra == 0)
		return;
	pthread_mutex_lock(&cs->lock);
	st = ra_find_locked(cs, s->id, &found);
	if (found && st->next_off == start) {
		st->window = st->window ? MIN(st->window * 2, cs->max_ra)
					: MIN(cs->bs, cs->max_ra);
	} else {
		/* A new pattern; reading from the start counts as sequential.
		 */
		st->window = start == 0 ? MIN(cs->bs, cs->max_ra) : 0;
		st->next_block = 0;
	}
	st->next_off = end;
	st->last_use = ++cs->ra_clock;
	stop = MIN((uint64_t)end + st->window, (uint64_t)vis_end);
	if (st->window == 0 || stop <= end)
		goto out;
	first = MAX((end - 1) / cs->bs + 1, st->next_block);
	queue_ahead_locked(cs, st, s, first, (uint32_t)((stop - 1) / cs->bs));
out:
	pthread_mutex_unlock(&cs->lock);
}

void chunk_readahead_next(struct chunk_store *cs, const struct slice *s,
			  size_t n)
{
	const struct slice *r = n == 1 ? &s[0] : NULL;
	struct ra_stream *st;
	uint32_t last, vis_end;
	bool found;

	if (cs->max_ra == 0 || !r || r->pos != 0 || r->id == 0 ||
	    r->len == 0 || (uint64_t)r->off + r->len > r->size)
		return;
	vis_end = r->off + r->len;
	pthread_mutex_lock(&cs->lock);
	st = ra_find_locked(cs, r->id, &found);
	if (found) /* being read or prefetched already */
		goto out;
	/* As if read sequentially up to r->off: the first read starts
	 * there and finds the window full. */
	st->window = cs->max_ra;
	st->next_off = r->off;
	st->next_block = r->off / cs->bs;
	st->last_use = ++cs->ra_clock;
	last = (uint32_t)((MIN((uint64_t)r->off + cs->max_ra, vis_end) - 1) /
			  cs->bs);
	queue_ahead_locked(cs, st, r, st->next_block, last);
out:
	pthread_mutex_unlock(&cs->lock);
}

int chunk_prefetch_blocks(struct chunk_store *cs, const struct slice *s,
			  size_t n, uint64_t budget)
{
	int queued = 0;

	if (cs->max_ra == 0)
		return 0;
	pthread_mutex_lock(&cs->lock);
	for (size_t i = 0; i < n; i++) {
		uint32_t idx = s[i].off / cs->bs;
		uint32_t len = block_len(cs, s[i].size, idx);

		if (s[i].id == 0 || len > budget)
			break;
		if (chunk_block_known_locked(cs, s[i].id, idx, len))
			continue;
		if (!pq_push_locked(cs, s[i].id, idx, len))
			break;
		budget -= len;
		queued++;
	}
	wake_for_jobs_locked(cs, queued);
	pthread_mutex_unlock(&cs->lock);
	return queued;
}

uint32_t chunk_max_readahead(const struct chunk_store *cs)
{
	return cs->max_ra;
}

/* Copy slice bytes [so, so + n) of record @s into @dst. */
static int read_slice(struct chunk_store *cs, const struct slice *s,
		      uint32_t so, uint32_t n, char *dst)
{
	uint64_t end = (uint64_t)so + n;

	if (end > s->size || (uint64_t)s->off + s->len > s->size) {
		log_error("cannot read slice %" PRIu64 ": record [%u, +%u) "
			  "lies outside its %u bytes",
			  s->id, s->off, s->len, s->size);
		return -EIO;
	}
	readahead(cs, s, so, (uint32_t)end, s->off + s->len);
	while (n > 0) {
		uint32_t index = so / cs->bs, boff = so % cs->bs;
		uint32_t len = block_len(cs, s->size, index);
		uint32_t take = MIN(n, len - boff);
		struct cblock *b;
		int rc = chunk_block_get(cs, s->id, index, len, &b);

		if (rc < 0)
			return rc;
		memcpy(dst, b->data + boff, take);
		chunk_block_put(cs, b);
		dst += take;
		so += take;
		n -= take;
	}
	return 0;
}

struct piece {
	size_t below; /* records [0, below) may serve the range */
	uint64_t a, b;
};

struct pstack {
	struct piece *v;
	size_t n, cap;
};

static int push(struct pstack *st, size_t below, uint64_t a, uint64_t b)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct piece *v = realloc(st->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		st->v = v;
		st->cap = cap;
	}
	st->v[st->n++] = (struct piece){below, a, b};
	return 0;
}

/* Serve piece @p; push what the newest overlapping record leaves. */
static int resolve(struct chunk_store *cs, const struct slice *s,
		   struct piece p, struct pstack *st, uint64_t off, char *dst)
{
	size_t j = p.below;
	uint64_t x, y;
	int rc;

	while (j > 0) {
		const struct slice *r = &s[j - 1];

		if (r->len > 0 && r->pos < p.b &&
		    (uint64_t)r->pos + r->len > p.a)
			break;
		j--;
	}
	if (j == 0) {
		memset(dst + (p.a - off), 0, p.b - p.a);
		return 0;
	}
	x = MAX(p.a, (uint64_t)s[j - 1].pos);
	y = MIN(p.b, (uint64_t)s[j - 1].pos + s[j - 1].len);
	if (s[j - 1].id == 0)
		memset(dst + (x - off), 0, y - x);
	else if ((rc = read_slice(cs, &s[j - 1],
				  (uint32_t)(s[j - 1].off + (x - s[j - 1].pos)),
				  (uint32_t)(y - x), dst + (x - off))) < 0)
		return rc;
	/* Right part first so the left one is served next. */
	if (y < p.b && (rc = push(st, j - 1, y, p.b)) < 0)
		return rc;
	if (p.a < x && (rc = push(st, j - 1, p.a, x)) < 0)
		return rc;
	return 0;
}

ssize_t chunk_read(struct chunk_store *cs, const struct slice *s, size_t n,
		   uint32_t off, void *dst, size_t len)
{
	struct pstack st = {NULL, 0, 0};
	int rc;

	if ((uint64_t)off + len > TESSERA_CHUNK_SIZE)
		return -EINVAL;
	if (len == 0)
		return 0;
	rc = push(&st, n, off, (uint64_t)off + len);
	while (rc == 0 && st.n > 0) {
		struct piece p = st.v[--st.n];

		rc = resolve(cs, s, p, &st, off, (char *)dst);
	}
	free(st.v);
	return rc < 0 ? rc : (ssize_t)len;
}

int chunk_delete_slice(struct chunk_store *cs, uint64_t id, uint32_t size)
{
	uint32_t nblocks = (uint32_t)(((uint64_t)size + cs->bs - 1) / cs->bs);
	char key[CHUNK_KEY_MAX];
	int first = 0;

	if (id == 0)
		return 0;
	chunk_forget_slice(cs, id);
	for (uint32_t i = 0; i < nblocks; i++) {
		int rc;

		chunk_block_key(cs, id, i, block_len(cs, size, i), key,
				sizeof(key));
		cache_forget(cs->dc, key);
		rc = obj_del(cs->os, key);
		if (rc < 0 && first == 0)
			first = rc;
	}
	return first;
}

struct cache *chunk_disk_cache(const struct chunk_store *cs)
{
	return cs->dc;
}

void chunk_block_counts(const struct chunk_store *cs, uint64_t *fetches,
			uint64_t *prefetches, uint64_t *hits)
{
	*fetches = atomic_load(&cs->n_fetch);
	*prefetches = atomic_load(&cs->n_prefetch);
	*hits = atomic_load(&cs->n_hit);
}

uint64_t chunk_cache_queue_drops(const struct chunk_store *cs)
{
	return atomic_load(&cs->n_dq_drop);
}

struct blk_ref {
	uint64_t id;
	uint32_t index;
	uint32_t len;
};

static int blk_cmp(const void *a, const void *b)
{
	const struct blk_ref *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The distinct blocks under the visible parts of @s[0..n). */
static int visible_blocks(struct chunk_store *cs, const struct slice *s,
			  size_t n, struct blk_ref **out, size_t *nout)
{
	struct blk_ref *v = NULL;
	size_t cnt = 0, cap = 0, k = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t first, last;

		if (s[i].id == 0 || s[i].len == 0 ||
		    (uint64_t)s[i].off + s[i].len > s[i].size)
			continue;
		first = s[i].off / cs->bs;
		last = (s[i].off + s[i].len - 1) / cs->bs;
		for (uint32_t j = first; j <= last; j++) {
			if (cnt == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct blk_ref *p = realloc(v, nc * sizeof(*p));

				if (!p) {
					free(v);
					return -ENOMEM;
				}
				v = p;
				cap = nc;
			}
			v[cnt++] = (struct blk_ref){
				s[i].id, j, block_len(cs, s[i].size, j)};
		}
	}
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), blk_cmp);
	for (size_t i = 0; i < cnt; i++)
		if (k == 0 || blk_cmp(&v[k - 1], &v[i]) != 0)
			v[k++] = v[i];
	*out = v;
	*nout = k;
	return 0;
}

/*
 * Verify the frame in @raw, the object @key, as @len raw bytes.  NULL or
 * the reason.
 */
static const char *warm_verify(struct chunk_store *cs, const char *key,
			       struct buf *raw, uint32_t len)
{
	struct frame_obj o = {.key = key, .data = raw->data, .len = raw->len};
	const char *why = NULL;
	struct frame_hdr h;
	char *dec;
	ssize_t n;

	if (frame_parse_hdr(raw->data, raw->len, &h, &why) < 0)
		return why;
	if (h.raw_len != len)
		return "length does not match the key";
	if (h.codec == FRAME_CODEC_NONE && !(h.flags & FRAME_F_ENCRYPTED)) {
		n = frame_decode_obj_to(&cs->fc, &o, raw->data + FRAME_HDR_LEN,
					len, &why);
		return n < 0 ? why : NULL;
	}
	dec = malloc(len ? len : 1);
	if (!dec)
		return strerror(ENOMEM);
	n = frame_decode_obj_to(&cs->fc, &o, dec, len, &why);
	free(dec);
	return n < 0 ? why : NULL;
}

/*
 * GET (with retries), verify and cache one block.  0 or -errno (logged).
 * The GET buffer and a decoding buffer are charged to the pool meanwhile
 * (both at once: a warmer never holds memory while waiting for more).
 */
static int warm_block(struct chunk_store *cs, const char *key, uint32_t len)
{
	uint64_t charge = MIN(2 * (uint64_t)len + FRAME_HDR_LEN, cs->mem_limit);
	int64_t t0 = chunk_now_ms();
	struct buf raw = BUF_INIT;
	const char *why = NULL;
	int rc;

	pthread_mutex_lock(&cs->lock);
	rc = chunk_mem_reserve_locked(cs, charge, CHUNK_MEM_WAIT);
	pthread_mutex_unlock(&cs->lock);
	if (rc < 0)
		return log_fail(rc, "cannot warm up block '%s'", key);
	for (int attempt = 0;; attempt++) {
		rc = obj_get(cs->os, key, 0, OBJ_TO_END, &raw);
		if (rc < 0)
			why = rc == -ENOENT ? "object is missing"
					    : strerror(-rc);
		else if ((why = warm_verify(cs, key, &raw, len)))
			rc = -EIO;
		/* Not latency bound: any -EIO gets the read path's retries */
		if (rc != -EIO || !chunk_may_retry(cs, attempt, t0))
			break;
		log_warn("cannot warm up block '%s' (try %d): %s, retrying",
			 key, attempt + 1, why);
		chunk_backoff(cs, attempt);
	}
	if (rc == 0) {
		rc = cache_put(cs->dc, key, raw.data, raw.len, NULL, 0);
		if (rc < 0)
			why = rc == -ENOSPC ? "the cache is full"
					    : strerror(-rc);
	}
	if (rc < 0)
		log_error("cannot warm up block '%s': %s", key, why);
	buf_release(&raw);
	pthread_mutex_lock(&cs->lock);
	chunk_mem_release_locked(cs, charge);
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

int chunk_cache_slices(struct chunk_store *cs, enum chunk_cache_op op,
		       const struct slice *s, size_t n,
		       struct chunk_cache_report *r)
{
	char key[CHUNK_KEY_MAX];
	struct blk_ref *v;
	size_t nv;
	int rc;

	if (!cs->dc_blocks)
		return -ENOSYS;
	rc = visible_blocks(cs, s, n, &v, &nv);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nv; i++) {
		bool cached;

		chunk_block_key(cs, v[i].id, v[i].index, v[i].len, key,
				sizeof(key));
		cached = cache_has(cs->dc, key);
		if (op == CHUNK_CACHE_WARM && !cached) {
			cached = warm_block(cs, key, v[i].len) == 0;
			r->failed += !cached;
		} else if (op == CHUNK_CACHE_EVICT && cached) {
			cache_drop(cs->dc, key);
		}
		r->blocks++;
		r->bytes += v[i].len;
		r->cached_blocks += cached;
		r->cached_bytes += cached ? v[i].len : 0;
	}
	free(v);
	return 0;
}
