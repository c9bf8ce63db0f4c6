/*
 * data.c - the file -> slice map: reading a chunk's slice list, committing
 * written slices, truncate, fallocate and the compaction swap.
 *
 * A chunk record (KV_CHUNK ino, index) is the chunk's slice list, oldest
 * first; later records cover earlier ones.  Records are only appended,
 * except by compaction (which swaps the whole list for one slice) and by
 * truncate (which drops whole chunks past the end).
 *
 * Invariant (meta_int.h 5): nothing non-zero is visible past a file's
 * length.  Writes extend the length to cover what they commit; truncate
 * down appends a zero slice (id 0) over the cut part of the last chunk, so
 * a later extend shows zeros there; truncate up and fallocate mode 0 only
 * change the length.  Hence zero slices are needed only below the length:
 * PUNCH_HOLE and ZERO_RANGE append them over the part of the range that is
 * inside the file.
 *
 * Usage: a file counts its length rounded up to 4 KiB (meta_space_of).
 *
 * Allocation (meta_int.h invariant 6, st_blocks): the inode record keeps
 * the bytes its chunk lists show from non-zero slices.  Every txn that
 * changes a chunk list already holds that list (write, zero_range,
 * truncate, compaction), so it measures the list before and after
 * (chunk_alloc, one pass over the slices, newest first) and adds the
 * difference to the inode record it writes anyway; compaction writes the
 * inode only when the difference is not 0 (its slice shows the holes of
 * the lists it replaces as stored zeros).  getattr reads one record.
 */
#include "util/common.h"
#include <linux/falloc.h>

#include "meta/meta_int.h"
#include "util/log.h"

#define CHUNK TESSERA_CHUNK_SIZE

int64_t meta_space_of(const struct meta_attr *a)
{
	if (S_ISDIR(a->mode))
		return 4096;
	if (S_ISREG(a->mode) || S_ISLNK(a->mode))
		return (int64_t)((a->length + 4095) & ~4095ULL);
	return 0;
}

/* ---- slice references ---- */

static int cmp_id(const void *x, const void *y)
{
	const struct slice *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static int txn_seq(struct kv_txn *t, int64_t *seq)
{
	struct buf v = BUF_INIT;
	int rc;

	if (*seq >= 0)
		return 0;
	rc = kv_get(t, KV_COUNTER, "txnSeq", 6, &v);
	*seq = 0;
	if (rc == 0 && v.len == 8)
		*seq = (int64_t)get_be64((const unsigned char *)v.data);
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}

/* Drop one reference to slice @id (stored size @size). */
static int unref_one(struct kv_txn *t, uint64_t id, uint32_t size, int64_t *seq)
{
	struct buf v = BUF_INIT;
	unsigned char k[8], val[12];
	uint64_t refs = 0;
	int rc;

	put_be64(k, id);
	/* hook for clone: extra references are counted here */
	rc = kv_get(t, KV_SLICEREF, k, sizeof(k), &v);
	if (rc == 0 && v.len == 8)
		refs = get_be64((const unsigned char *)v.data);
	buf_release(&v);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (refs > 1) {
		put_be64(val, refs - 1);
		return kv_put(t, KV_SLICEREF, k, sizeof(k), val, 8);
	}
	if (refs == 1)
		return kv_del(t, KV_SLICEREF, k, sizeof(k));
	if (rc == 0) /* a malformed count: keep the slice, be safe */
		return log_fail(-EIO, "corrupt reference count of slice %llu",
				(unsigned long long)id);
	rc = txn_seq(t, seq);
	if (rc < 0)
		return rc;
	put_be32(val, size);
	put_be64(val + 4, (uint64_t)*seq);
	return kv_put(t, KV_DELSLICE, k, sizeof(k), val, sizeof(val));
}

int slices_unref(struct kv_txn *t, const struct slice *s, size_t n,
		 uint64_t skip, int64_t *seq)
{
	struct slice *v;
	int rc = 0;

	if (n == 0)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, s, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_id);
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint32_t size = v[i].size;

		if (v[i].id == 0 || v[i].id == skip)
			continue;
		for (; i + 1 < n && v[i + 1].id == v[i].id; i++)
			size = MAX(size, v[i + 1].size);
		rc = unref_one(t, v[i].id, size, seq);
	}
	free(v);
	return rc;
}

/* ---- allocation ---- */

struct ival {
	uint32_t a, b;
};

/*
 * Bytes of chunk list @s[0..n) that a non-zero slice shows (later slices
 * cover earlier ones).  Newest first: @cv holds the sorted, disjoint
 * ranges already covered; each slice adds what it shows outside them.
 */
static int chunk_alloc(const struct slice *s, size_t n, uint64_t *out)
{
	struct ival *cv = malloc((n + 1) * sizeof(*cv));
	size_t nc = 0;
	uint64_t sum = 0;

	if (!cv)
		return -ENOMEM;
	for (size_t i = n; i-- > 0;) {
		uint32_t a = s[i].pos, b = s[i].pos + s[i].len;
		uint64_t fresh = b - a;
		size_t lo = 0, hi = nc;

		if (a >= b)
			continue;
		while (lo < hi) { /* first range ending at or after a */
			size_t mid = (lo + hi) / 2;

			if (cv[mid].b < a)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (hi = lo; hi < nc && cv[hi].a <= b; hi++)
			if (MIN(b, cv[hi].b) > MAX(a, cv[hi].a))
				fresh -= MIN(b, cv[hi].b) - MAX(a, cv[hi].a);
		if (s[i].id)
			sum += fresh;
		if (lo < hi) {
			a = MIN(a, cv[lo].a);
			b = MAX(b, cv[hi - 1].b);
		}
		memmove(&cv[lo + 1], &cv[hi], (nc - hi) * sizeof(*cv));
		nc = nc - (hi - lo) + 1;
		cv[lo].a = a;
		cv[lo].b = b;
	}
	free(cv);
	*out = sum;
	return 0;
}

/* Allocation of encoded list @v[0..new_len) minus that of its first
 * @old_len bytes (the list before an append) into *d. */
static int list_alloc_delta(const void *v, size_t old_len, size_t new_len,
			    int64_t *d)
{
	struct slice *s = NULL;
	uint64_t before = 0, after = 0;
	size_t n = 0;
	int rc = slices_decode(v, new_len, &s, &n);

	if (rc == 0)
		rc = chunk_alloc(s, old_len / SLICE_REC_LEN, &before);
	if (rc == 0)
		rc = chunk_alloc(s, n, &after);
	if (rc == 0)
		*d += (int64_t)after - (int64_t)before;
	free(s);
	return rc;
}

static void alloc_add(struct inode_rec *r, int64_t d)
{
	if (r->alloc_unknown) { /* shows the length (inode_decode) */
		r->a.alloc = r->a.length;
		return;
	}
	if (d < 0 && (uint64_t)-d > r->a.alloc)
		r->a.alloc = 0; /* not for a consistent volume */
	else
		r->a.alloc = (uint64_t)((int64_t)r->a.alloc + d);
}

/* ---- chunk records ---- */

struct chunk_rec {
	uint32_t idx;
	struct slice *s;
	size_t n;
};

struct chunk_list {
	struct chunk_rec *v;
	size_t n, cap;
};

static void chunk_list_release(struct chunk_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].s);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int collect_chunk(void *arg, const void *key, size_t klen,
			 const void *val, size_t vlen)
{
	struct chunk_list *l = arg;
	struct chunk_rec *c;
	int rc;

	if (klen != 12)
		return log_fail(-EIO, "corrupt chunk key (%zu bytes)", klen);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct chunk_rec *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	c = &l->v[l->n];
	c->idx = get_be32((const unsigned char *)key + 8);
	rc = slices_decode(val, vlen, &c->s, &c->n);
	if (rc == 0)
		l->n++;
	return rc;
}

/* Chunks of @ino from index @from on, at most @limit (0: all). */
static int chunks_load(struct kv_txn *t, uint64_t ino, uint64_t from,
		       size_t limit, struct chunk_list *l)
{
	unsigned char pre[8], start[12];

	if (from > UINT32_MAX)
		return 0;
	key_ino(pre, ino);
	key_chunk(start, ino, (uint32_t)from);
	return kv_scan(t, KV_CHUNK, pre, sizeof(pre), start, sizeof(start),
		       limit, collect_chunk, l);
}

/* Drop chunk records in @l, unreferencing their slices; *@dalloc (may be
 * NULL) loses their allocation. */
static int chunks_drop(struct kv_txn *t, uint64_t ino,
		       const struct chunk_list *l, int64_t *seq,
		       int64_t *dalloc)
{
	unsigned char k[12];
	uint64_t n;
	int rc = 0;

	for (size_t i = 0; i < l->n && rc == 0; i++) {
		if (dalloc) {
			rc = chunk_alloc(l->v[i].s, l->v[i].n, &n);
			*dalloc -= (int64_t)n;
		}
		if (rc == 0)
			rc = slices_unref(t, l->v[i].s, l->v[i].n, 0, seq);
		key_chunk(k, ino, l->v[i].idx);
		if (rc == 0)
			rc = kv_del(t, KV_CHUNK, k, sizeof(k));
	}
	return rc;
}

/* Append @n slices to chunk @idx; with !@create a missing chunk stays.
 * *@dalloc gets the change of allocation. */
static int chunk_append(struct kv_txn *t, uint64_t ino, uint32_t idx,
			const struct slice *s, size_t n, bool create,
			int64_t *dalloc)
{
	struct buf v = BUF_INIT;
	unsigned char k[12];
	size_t old_len;
	int rc;

	key_chunk(k, ino, idx);
	rc = kv_get(t, KV_CHUNK, k, sizeof(k), &v);
	if (rc == -ENOENT && create)
		rc = 0;
	if (rc == 0 && v.len % SLICE_REC_LEN)
		rc = log_fail(-EIO, "corrupt chunk %u of inode %llu", idx,
			      (unsigned long long)ino);
	old_len = v.len;
	if (rc == 0)
		rc = slices_append(&v, s, n);
	if (rc == 0)
		rc = list_alloc_delta(v.data, old_len, v.len, dalloc);
	if (rc == 0)
		rc = kv_put(t, KV_CHUNK, k, sizeof(k), v.data, v.len);
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}

/* Append zero slices over [start, end) to the chunks that exist;
 * *@dalloc gets the change of allocation. */
static int zero_range(struct kv_txn *t, uint64_t ino, uint64_t start,
		      uint64_t end, int64_t *dalloc)
{
	int rc = 0;

	while (start < end && rc == 0) {
		uint64_t idx = start / CHUNK;
		uint64_t stop = MIN(end, (idx + 1) * CHUNK);
		struct slice z = {0};

		z.pos = (uint32_t)(start % CHUNK);
		z.size = z.len = (uint32_t)(stop - start);
		rc = chunk_append(t, ino, (uint32_t)idx, &z, 1, false, dalloc);
		start = stop;
	}
	return rc;
}

/* ---- length ---- */

static int64_t space_of_len(uint64_t len)
{
	return (int64_t)((len + 4095) & ~4095ULL);
}

int data_set_length(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		    uint64_t len, struct meta_effects *e)
{
	uint64_t old = r->a.length, ino = r->a.ino;
	int64_t delta = space_of_len(len) - space_of_len(old);
	struct chunk_list l = {0};
	int64_t seq = -1, dalloc = 0;
	int rc;

	if (len > META_MAX_LENGTH)
		return -EFBIG;
	rc = 0;
	if (r->quota) /* charged to its home's quotas (quota.c) */
		rc = quota_charge(m, t, r->a.parent, delta, 0, true);
	if (rc == 0)
		rc = meta_check_space(m, delta, 0);
	if (rc < 0 || len >= old)
		goto out;
	rc = chunks_load(t, ino, (len + CHUNK - 1) / CHUNK, 0, &l);
	if (rc == 0)
		rc = chunks_drop(t, ino, &l, &seq, &dalloc);
	if (rc == 0 && len % CHUNK)
		rc = zero_range(t, ino, len,
				MIN(old, (len / CHUNK + 1) * CHUNK), &dalloc);
out:
	chunk_list_release(&l);
	if (rc == 0) {
		r->a.length = len;
		e->space += delta;
		alloc_add(r, dalloc);
		if (len == 0) { /* no chunk left: known from now on */
			r->alloc_unknown = false;
			r->a.alloc = 0;
		}
	}
	return rc;
}

/* ---- read ---- */

struct read_arg {
	uint64_t ino;
	uint32_t chunk;
	struct buf v;
};

static int read_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct read_arg *a = arg;
	unsigned char k[12];
	int rc;

	(void)m;
	key_chunk(k, a->ino, a->chunk);
	rc = kv_get(t, KV_CHUNK, k, sizeof(k), &a->v);
	if (rc == -ENOENT) {
		buf_reset(&a->v);
		rc = 0;
	}
	return rc;
}

int meta_read_chunk(struct meta *m, uint64_t ino, uint32_t chunk,
		    struct slice **out, size_t *n)
{
	struct read_arg a = {ino, chunk, BUF_INIT};
	int rc = meta_txn(m, false, read_fn, &a);

	if (rc == 0)
		rc = slices_decode(a.v.data, a.v.len, out, n);
	buf_release(&a.v);
	return rc;
}

/*
 * Heads of small files by inode number: one scan of the chunk records
 * from (from, 0), so a run of files created together costs one read txn.
 * Only a chunk 0 that is one slice of at most one block qualifies (a small
 * file written in one go); anything else is skipped.
 */
struct heads_arg {
	uint64_t from, to;
	uint32_t bs;
	size_t max;
	struct meta_head *h;
	size_t n;
};

static int heads_cb(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct heads_arg *a = arg;
	const unsigned char *k = key;
	struct slice s;

	if (klen != 12)
		return 0;
	if (get_be64(k) > a->to || a->n == a->max)
		return 1;
	if (get_be32(k + 8) != 0 || vlen != SLICE_REC_LEN)
		return 0;
	slice_decode(val, &s);
	if (s.pos != 0 || s.id == 0 || s.len == 0 ||
	    (uint64_t)s.off + s.len > s.size ||
	    s.off / a->bs != (s.off + s.len - 1) / a->bs)
		return 0;
	a->h[a->n].ino = get_be64(k);
	a->h[a->n++].s = s;
	return 0;
}

static int heads_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct heads_arg *a = arg;
	unsigned char k[12];

	(void)m;
	a->n = 0;
	key_chunk(k, a->from, 0);
	return kv_scan(t, KV_CHUNK, NULL, 0, k, sizeof(k), 4 * a->max, heads_cb,
		       a);
}

int meta_read_heads(struct meta *m, uint64_t from, uint64_t to, uint32_t bs,
		    struct meta_head *out, size_t max, size_t *n)
{
	struct heads_arg a = {from, to, bs, max, out, 0};
	int rc;

	*n = 0;
	if (max == 0 || from > to || bs == 0)
		return 0;
	rc = meta_txn(m, false, heads_fn, &a);
	if (rc == 0)
		*n = a.n;
	return rc;
}

/* ---- write ---- */

struct write_arg {
	uint64_t ino;
	const struct meta_slice_write *w;
	size_t n;
	uint64_t new_length;
	struct meta_attr *out;
	bool *done;
	struct meta_effects e;
};

static int check_file(const struct meta_attr *a)
{
	if (S_ISDIR(a->mode))
		return -EISDIR;
	return S_ISREG(a->mode) ? 0 : -EINVAL;
}

static int write_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct write_arg *a = arg;
	struct inode_rec r;
	struct buf v = BUF_INIT;
	int64_t dalloc = 0;
	size_t old_len;
	uint64_t len;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	memset(a->done, 0, a->n * sizeof(*a->done));
	rc = inode_get(t, a->ino, &r);
	if (rc == 0)
		rc = check_file(&r.a);
	if (rc == 0 && (r.a.flags & META_FL_IMMUTABLE))
		rc = -EPERM; /* ext4_write_checks */
	if (rc < 0)
		return rc;
	len = MAX(r.a.length, a->new_length);
	rc = data_set_length(m, t, &r, len, &a->e);
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		uint32_t idx = a->w[i].chunk;
		unsigned char k[12];

		if (a->done[i])
			continue;
		key_chunk(k, a->ino, idx);
		rc = kv_get(t, KV_CHUNK, k, sizeof(k), &v);
		if (rc == -ENOENT)
			rc = 0;
		old_len = v.len;
		for (size_t j = i; j < a->n && rc == 0; j++) {
			if (a->done[j] || a->w[j].chunk != idx)
				continue;
			rc = slices_append(&v, &a->w[j].s, 1);
			a->done[j] = true;
		}
		if (rc == 0)
			rc = list_alloc_delta(v.data, old_len, v.len, &dalloc);
		if (rc == 0)
			rc = kv_put(t, KV_CHUNK, k, sizeof(k), v.data, v.len);
		buf_reset(&v);
	}
	buf_release(&v);
	alloc_add(&r, dalloc);
	r.a.mtime_ns = r.a.ctime_ns = meta_now_ns();
	if (rc == 0)
		rc = inode_put(t, &r);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

static bool slice_ok(const struct slice *s, uint64_t chunk)
{
	return s->len > 0 && (uint64_t)s->pos + s->len <= CHUNK &&
	       (uint64_t)s->off + s->len <= s->size &&
	       chunk * CHUNK + s->pos + s->len <= META_MAX_LENGTH;
}

int meta_write(struct meta *m, uint64_t ino, const struct meta_slice_write *w,
	       size_t n, uint64_t new_length, struct meta_attr *out)
{
	struct write_arg a = {ino, w, n, new_length, out, NULL, {0, 0, 0, 0}};
	int rc;

	if (new_length > META_MAX_LENGTH)
		return -EFBIG;
	for (size_t i = 0; i < n; i++)
		if (!slice_ok(&w[i].s, w[i].chunk))
			return -EINVAL;
	a.done = calloc(n ? n : 1, sizeof(*a.done));
	if (!a.done)
		return -ENOMEM;
	rc = meta_txn(m, true, write_fn, &a);
	free(a.done);
	if (rc == 0)
		meta_apply_effects(m, &a.e);
	return rc;
}

/* ---- fallocate ---- */

struct falloc_arg {
	const struct meta_cred *c;
	uint64_t ino;
	int mode;
	uint64_t off, end;
	struct meta_effects e;
};

static int falloc_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct falloc_arg *a = arg;
	bool keep = a->mode & FALLOC_FL_KEEP_SIZE;
	struct inode_rec r;
	int64_t dalloc = 0;
	uint64_t old;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc;
	if (S_ISDIR(r.a.mode))
		return -EISDIR;
	if (S_ISFIFO(r.a.mode))
		return -ESPIPE;
	if (!S_ISREG(r.a.mode))
		return -ENODEV;
	rc = perm_check_t(t, a->c, &r.a, META_MAY_WRITE);
	if (rc < 0)
		return rc;
	/* ext4_fallocate: immutable, or append-only for all but allocation */
	if ((r.a.flags & META_FL_IMMUTABLE) ||
	    ((r.a.flags & META_FL_APPEND) && (a->mode & ~FALLOC_FL_KEEP_SIZE)))
		return -EPERM;
	old = r.a.length;
	if (a->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		rc = zero_range(t, a->ino, a->off, MIN(a->end, old), &dalloc);
	alloc_add(&r, dalloc);
	if (rc == 0 && !keep && a->end > old)
		rc = data_set_length(m, t, &r, a->end, &a->e);
	if (rc < 0)
		return rc;
	if (r.a.length != old ||
	    (a->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		r.a.mtime_ns = meta_now_ns();
	r.a.ctime_ns = meta_now_ns();
	return inode_put(t, &r);
}

int meta_fallocate(struct meta *m, const struct meta_cred *c, uint64_t ino,
		   int mode, uint64_t off, uint64_t len)
{
	struct falloc_arg a = {c, ino, mode, off, 0, {0, 0, 0, 0}};
	int known =
	    FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	int rc;

	if (mode & ~known)
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))
		return -EINVAL;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off > META_MAX_LENGTH || len > META_MAX_LENGTH - off)
		return -EFBIG;
	a.end = off + len;
	rc = meta_txn(m, true, falloc_fn, &a);
	if (rc == 0)
		meta_apply_effects(m, &a.e);
	return rc;
}

/* ---- compaction ---- */

struct compact_arg {
	uint64_t ino;
	uint32_t chunk;
	const struct slice *old;
	size_t n_old;
	const struct slice *repl;
};

static bool slice_eq(const struct slice *a, const struct slice *b)
{
	return a->pos == b->pos && a->id == b->id && a->size == b->size &&
	       a->off == b->off && a->len == b->len;
}

/* Invariant 6 across a compaction: the new slice may show as data what
 * the old list showed as holes (or the other way). */
static int compact_alloc(struct kv_txn *t, uint64_t ino,
			 const struct slice *cur, size_t n,
			 const struct slice *repl)
{
	uint64_t before = 0, after = 0;
	struct inode_rec r;
	int rc = chunk_alloc(cur, n, &before);

	if (rc == 0)
		rc = chunk_alloc(repl, 1, &after);
	if (rc < 0 || before == after)
		return rc;
	rc = inode_get(t, ino, &r);
	if (rc < 0)
		return rc;
	alloc_add(&r, (int64_t)after - (int64_t)before);
	return inode_put(t, &r);
}

static int compact_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct compact_arg *a = arg;
	struct buf v = BUF_INIT, nv = BUF_INIT;
	struct slice *cur = NULL;
	unsigned char k[12];
	int64_t seq = -1;
	size_t n = 0;
	int rc;

	(void)m;
	key_chunk(k, a->ino, a->chunk);
	rc = kv_get(t, KV_CHUNK, k, sizeof(k), &v);
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc == 0)
		rc = slices_decode(v.data, v.len, &cur, &n);
	if (rc == 0 && n != a->n_old)
		rc = -ESTALE;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!slice_eq(&cur[i], &a->old[i]))
			rc = -ESTALE;
	if (rc == 0)
		rc = slices_append(&nv, a->repl, 1);
	if (rc == 0)
		rc = kv_put(t, KV_CHUNK, k, sizeof(k), nv.data, nv.len);
	if (rc == 0)
		rc = compact_alloc(t, a->ino, cur, n, a->repl);
	if (rc == 0)
		rc = slices_unref(t, cur, n, a->repl->id, &seq);
	free(cur);
	buf_release(&v);
	buf_release(&nv);
	return rc;
}

int meta_compact(struct meta *m, uint64_t ino, uint32_t chunk,
		 const struct slice *old, size_t n_old,
		 const struct slice *repl)
{
	struct compact_arg a = {ino, chunk, old, n_old, repl};

	if (!slice_ok(repl, chunk) || n_old == 0)
		return -EINVAL;
	return meta_txn(m, true, compact_fn, &a);
}

/* ---- purge of a deleted file ---- */

#define PURGE_BATCH 256
#define PURGE_INLINE_LEN (4ULL * CHUNK)
#define PURGE_INLINE_CHUNKS 8

static int purge_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	uint64_t ino = *(uint64_t *)arg;
	struct chunk_list l = {0};
	unsigned char k[8];
	int64_t seq = -1;
	int rc;

	(void)m;
	rc = chunks_load(t, ino, 0, PURGE_BATCH, &l);
	if (rc == 0)
		rc = chunks_drop(t, ino, &l, &seq, NULL);
	if (rc == 0 && l.n < PURGE_BATCH) {
		key_ino(k, ino);
		rc = kv_del(t, KV_DELFILE, k, sizeof(k));
		if (rc == 0)
			rc = 1;
	}
	chunk_list_release(&l);
	return rc;
}

int data_purge_small(struct kv_txn *t, uint64_t ino, uint64_t length,
		     bool *done)
{
	struct chunk_list l = {0};
	int64_t seq = -1;
	int rc;

	*done = false;
	if (length > PURGE_INLINE_LEN)
		return 0;
	rc = chunks_load(t, ino, 0, PURGE_INLINE_CHUNKS + 1, &l);
	if (rc == 0 && l.n <= PURGE_INLINE_CHUNKS) {
		rc = chunks_drop(t, ino, &l, &seq, NULL);
		*done = rc == 0;
	}
	chunk_list_release(&l);
	return rc;
}

int meta_purge_file(struct meta *m, uint64_t ino)
{
	int rc;

	do
		rc = meta_txn(m, true, purge_fn, &ino);
	while (rc == 0);
	if (rc < 0)
		return log_fail(rc,
				"cannot queue the data of deleted inode "
				"%llu",
				(unsigned long long)ino);
	return 0;
}
