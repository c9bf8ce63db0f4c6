/*
 * scan.c - whole-volume reads for the tools (meta_scan.h): a view is one
 * read-only kv transaction, and each meta_view_* scan decodes one record
 * group through rec.c's layouts.  Also the kv-level record helpers that
 * replicate/ calls instead of spelling records itself.
 *
 * The checkpoint rule of meta_view_pending is the one of delq.c (a
 * checkpoint at txn seq S with next slice id N keeps every slice with id
 * < N deleted after S): both call delq_ckpt_keeps.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "meta/meta_scan.h"
#include "util/log.h"

#define CKPT_REC_LEN 32

struct meta_view {
	struct meta *m;
	struct kv_txn *t;
	/* checkpoints, read once for meta_view_pending */
	struct meta_ckpt *ck;
	size_t nck;
	bool ck_read;
};

int meta_view_begin(struct meta *m, struct meta_view **out)
{
	struct meta_view *v = calloc(1, sizeof(*v));
	int rc;

	if (!v)
		return -ENOMEM;
	v->m = m;
	rc = kv_begin(m->kv, false, &v->t);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int meta_view_end(struct meta_view *v)
{
	int rc;

	if (!v)
		return 0;
	rc = kv_commit(v->t);
	free(v->ck);
	free(v);
	return rc;
}

/* ---- inodes ---- */

struct inode_scan {
	meta_inode_fn fn;
	void *arg;
};

static int inode_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct inode_scan *s = arg;
	struct meta_inode i;
	struct inode_rec r;

	memset(&i, 0, sizeof(i));
	memset(&r, 0, sizeof(r));
	if (klen != 8) {
		i.corrupt = true;
	} else {
		i.a.ino = get_be64(key);
		if (inode_decode(val, vlen, &r) < 0) {
			i.corrupt = true;
		} else {
			i.a = r.a;
			i.a.ino = get_be64(key);
			i.next_cookie = r.next_cookie;
		}
	}
	return s->fn(s->arg, &i);
}

int meta_view_inodes_n(struct meta_view *v, uint64_t from, size_t limit,
		       meta_inode_fn fn, void *arg)
{
	struct inode_scan s = {fn, arg};
	unsigned char start[8];

	key_ino(start, from);
	return kv_scan(v->t, KV_INODE, NULL, 0, from ? start : NULL,
		       from ? sizeof(start) : 0, limit, inode_one, &s);
}

int meta_view_inodes(struct meta_view *v, uint64_t from, meta_inode_fn fn,
		     void *arg)
{
	return meta_view_inodes_n(v, from, 0, fn, arg);
}

int meta_view_inode(struct meta_view *v, uint64_t ino, struct meta_attr *out)
{
	struct inode_rec r;
	int rc = inode_get(v->t, ino, &r);

	if (rc == 0)
		*out = r.a;
	return rc;
}

/* ---- entries ---- */

struct entry_scan {
	meta_entry_fn fn;
	void *arg;
	bool index; /* KV_DIRIDX records */
};

static int entry_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct entry_scan *s = arg;
	const unsigned char *k = key, *p = val;
	char name[TESSERA_NAME_MAX + 1];
	struct meta_entry e;
	size_t nlen;

	memset(&e, 0, sizeof(e));
	name[0] = '\0';
	e.name = name;
	if (klen < 8) {
		e.corrupt = true;
		return s->fn(s->arg, &e);
	}
	e.parent = get_be64(k);
	if (s->index) {
		if (klen != 16 || vlen < 12 || vlen - 12 > TESSERA_NAME_MAX) {
			e.corrupt = true;
			return s->fn(s->arg, &e);
		}
		e.cookie = get_be64(k + 8);
		nlen = vlen - 12;
		memcpy(name, p + 12, nlen);
	} else {
		nlen = MIN(klen - 8, (size_t)TESSERA_NAME_MAX);
		memcpy(name, k + 8, nlen);
		if (vlen < DENT_VAL_LEN || klen - 8 > TESSERA_NAME_MAX ||
		    klen == 8)
			e.corrupt = true;
		else
			e.cookie = get_be64(p + 12);
	}
	name[nlen] = '\0';
	e.name_len = nlen;
	if (!e.corrupt) {
		e.ino = get_be64(p);
		e.type = get_be32(p + 8);
	}
	return s->fn(s->arg, &e);
}

static int entries(struct meta_view *v, int grp, uint64_t dir,
		   meta_entry_fn fn, void *arg)
{
	struct entry_scan s = {fn, arg, grp == KV_DIRIDX};
	unsigned char pre[8];

	key_ino(pre, dir);
	return kv_scan(v->t, grp, dir ? pre : NULL, dir ? sizeof(pre) : 0,
		       NULL, 0, 0, entry_one, &s);
}

int meta_view_entries(struct meta_view *v, uint64_t dir, meta_entry_fn fn,
		      void *arg)
{
	return entries(v, KV_DENTRY, dir, fn, arg);
}

int meta_view_index(struct meta_view *v, uint64_t dir, meta_entry_fn fn,
		    void *arg)
{
	return entries(v, KV_DIRIDX, dir, fn, arg);
}

/* ---- chunks and slices ---- */

struct chunk_scan {
	meta_chunk_fn fn;
	void *arg;
};

static int chunk_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct chunk_scan *s = arg;
	struct meta_chunk c;
	struct slice *sl = NULL;
	int rc;

	memset(&c, 0, sizeof(c));
	if (klen != 12 || vlen % SLICE_REC_LEN) {
		c.corrupt = true;
		if (klen >= 8)
			c.ino = get_be64(key);
		if (klen >= 12)
			c.index = get_be32((const unsigned char *)key + 8);
		return s->fn(s->arg, &c);
	}
	c.ino = get_be64(key);
	c.index = get_be32((const unsigned char *)key + 8);
	rc = slices_decode(val, vlen, &sl, &c.n);
	if (rc < 0)
		return rc;
	c.s = sl;
	rc = s->fn(s->arg, &c);
	free(sl);
	return rc;
}

int meta_view_chunks(struct meta_view *v, uint64_t ino, meta_chunk_fn fn,
		     void *arg)
{
	struct chunk_scan s = {fn, arg};
	unsigned char pre[8];

	key_ino(pre, ino);
	return kv_scan(v->t, KV_CHUNK, ino ? pre : NULL, ino ? sizeof(pre) : 0,
		       NULL, 0, 0, chunk_one, &s);
}

struct ref_scan {
	meta_sliceref_fn fn;
	void *arg;
};

static int ref_one(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct ref_scan *s = arg;
	struct meta_sliceref r;

	memset(&r, 0, sizeof(r));
	if (klen == 8)
		r.id = get_be64(key);
	if (klen != 8 || vlen != 8)
		r.corrupt = true;
	else
		r.refs = get_be64(val);
	return s->fn(s->arg, &r);
}

int meta_view_slicerefs(struct meta_view *v, meta_sliceref_fn fn, void *arg)
{
	struct ref_scan s = {fn, arg};

	return kv_scan(v->t, KV_SLICEREF, NULL, 0, NULL, 0, 0, ref_one, &s);
}

struct quota_scan {
	meta_quota_fn fn;
	void *arg;
};

static int quota_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct quota_scan *s = arg;
	struct meta_quota q;
	bool bad = quota_decode(key, klen, val, vlen, &q) < 0;

	return s->fn(s->arg, &q, bad);
}

int meta_view_quotas(struct meta_view *v, meta_quota_fn fn, void *arg)
{
	struct quota_scan s = {fn, arg};

	return kv_scan(v->t, KV_QUOTA, NULL, 0, NULL, 0, 0, quota_one, &s);
}

/* ---- checkpoints and the deletion queue ---- */

static int ckpt_decode(const void *key, size_t klen, const void *val,
		       size_t vlen, struct meta_ckpt *c)
{
	const unsigned char *p = val;

	memset(c, 0, sizeof(*c));
	if (klen == 0 || klen >= sizeof(c->name) || vlen < 16)
		return -EIO;
	memcpy(c->name, key, klen);
	c->txn_seq = get_be64(p);
	c->next_slice = get_be64(p + 8);
	if (vlen >= 24)
		c->time_ns = (int64_t)get_be64(p + 16);
	if (vlen >= 32)
		c->repl_seq = get_be64(p + 24);
	return 0;
}

struct ckpt_scan {
	meta_ckpt_fn fn;
	void *arg;
};

static int ckpt_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct ckpt_scan *s = arg;
	struct meta_ckpt c;

	if (ckpt_decode(key, klen, val, vlen, &c) < 0)
		return log_fail(-EIO, "corrupt checkpoint record");
	return s->fn(s->arg, &c);
}

int meta_view_checkpoints(struct meta_view *v, meta_ckpt_fn fn, void *arg)
{
	struct ckpt_scan s = {fn, arg};

	return kv_scan(v->t, KV_CHECKPOINT, NULL, 0, NULL, 0, 0, ckpt_one, &s);
}

static int ckpt_collect(void *arg, const struct meta_ckpt *c)
{
	struct meta_view *v = arg;
	struct meta_ckpt *p = realloc(v->ck, (v->nck + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	v->ck = p;
	v->ck[v->nck++] = *c;
	return 0;
}

struct pend_scan {
	struct meta_view *v;
	meta_pending_fn fn;
	void *arg;
};

static int pend_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct pend_scan *s = arg;
	struct meta_pending p;

	memset(&p, 0, sizeof(p));
	if (klen == 8)
		p.id = get_be64(key);
	if (klen != 8 || vlen < 4) {
		p.corrupt = true;
		return s->fn(s->arg, &p);
	}
	p.size = get_be32(val);
	p.deleted_at = vlen >= 12 ? get_be64((const unsigned char *)val + 4)
				  : 0;
	for (size_t i = 0; i < s->v->nck && !p.kept; i++)
		p.kept = delq_ckpt_keeps(s->v->ck[i].txn_seq,
					 s->v->ck[i].next_slice, p.id,
					 p.deleted_at);
	return s->fn(s->arg, &p);
}

int meta_view_pending(struct meta_view *v, meta_pending_fn fn, void *arg)
{
	struct pend_scan s = {v, fn, arg};
	int rc;

	if (!v->ck_read) {
		rc = meta_view_checkpoints(v, ckpt_collect, v);
		if (rc < 0)
			return rc;
		v->ck_read = true;
	}
	return kv_scan(v->t, KV_DELSLICE, NULL, 0, NULL, 0, 0, pend_one, &s);
}

struct ino_scan {
	meta_ino_fn fn;
	void *arg;
};

static int delfile_one(void *arg, const void *key, size_t klen,
		       const void *val, size_t vlen)
{
	struct ino_scan *s = arg;

	UNUSED(val);
	UNUSED(vlen);
	if (klen != 8)
		return log_fail(-EIO, "corrupt deleted-file record");
	return s->fn(s->arg, get_be64(key));
}

int meta_view_delfiles(struct meta_view *v, meta_ino_fn fn, void *arg)
{
	struct ino_scan s = {fn, arg};

	return kv_scan(v->t, KV_DELFILE, NULL, 0, NULL, 0, 0, delfile_one, &s);
}

struct sus_scan {
	meta_sustained_fn fn;
	void *arg;
};

static int sus_one(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct sus_scan *s = arg;
	const unsigned char *k = key;

	UNUSED(val);
	UNUSED(vlen);
	if (klen != 16)
		return log_fail(-EIO, "corrupt sustained-inode record");
	return s->fn(s->arg, get_be64(k), get_be64(k + 8));
}

int meta_view_sustained(struct meta_view *v, meta_sustained_fn fn, void *arg)
{
	struct sus_scan s = {fn, arg};

	return kv_scan(v->t, KV_SUSTAINED, NULL, 0, NULL, 0, 0, sus_one, &s);
}

int meta_view_format(struct meta_view *v, struct meta_format *out)
{
	struct buf val = BUF_INIT;
	int rc = kv_get(v->t, KV_SETTING, "volume", 6, &val);

	if (rc == 0 && meta_format_from_json(val.data ? val.data : "", out) < 0)
		rc = log_fail(-EIO, "corrupt volume settings in '%s'",
			      v->m->desc);
	buf_release(&val);
	return rc;
}

struct counter_scan {
	meta_counter_fn fn;
	void *arg;
};

static int counter_one(void *arg, const void *key, size_t klen,
		       const void *val, size_t vlen)
{
	struct counter_scan *s = arg;
	char name[256];
	size_t n = MIN(klen, sizeof(name) - 1);

	memcpy(name, key, n);
	name[n] = '\0';
	return s->fn(s->arg, name, vlen == 8 ? get_be64(val) : 0, vlen != 8);
}

int meta_view_counters(struct meta_view *v, meta_counter_fn fn, void *arg)
{
	struct counter_scan s = {fn, arg};

	return kv_scan(v->t, KV_COUNTER, NULL, 0, NULL, 0, 0, counter_one, &s);
}

struct xattr_scan {
	meta_xattr_fn fn;
	void *arg;
};

static int xattr_one(void *arg, const void *key, size_t klen,
		     const void *val, size_t vlen)
{
	struct xattr_scan *s = arg;
	char name[META_XATTR_NAME_MAX + 1];

	if (klen <= 8 || klen - 8 > META_XATTR_NAME_MAX)
		return log_fail(-EIO, "corrupt xattr record (%zu-byte key)",
				klen);
	memcpy(name, (const unsigned char *)key + 8, klen - 8);
	name[klen - 8] = '\0';
	return s->fn(s->arg, name, klen - 8, val, vlen);
}

int meta_view_xattrs(struct meta_view *v, uint64_t ino, meta_xattr_fn fn,
		     void *arg)
{
	struct xattr_scan s = {fn, arg};
	unsigned char pre[8];

	key_ino(pre, ino);
	return kv_scan(v->t, KV_XATTR, pre, sizeof(pre), NULL, 0, 0, xattr_one,
		       &s);
}

struct xrec_scan {
	meta_xattr_rec_fn fn;
	void *arg;
};

static int xrec_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct xrec_scan *s = arg;
	char name[META_XATTR_NAME_MAX + 1];

	if (klen <= 8 || klen - 8 > META_XATTR_NAME_MAX)
		return log_fail(-EIO, "corrupt xattr record (%zu-byte key)",
				klen);
	memcpy(name, (const unsigned char *)key + 8, klen - 8);
	name[klen - 8] = '\0';
	return s->fn(s->arg, get_be64(key), name, klen - 8, val, vlen);
}

int meta_view_xattrs_from(struct meta_view *v, uint64_t ino, const char *name,
			  size_t name_len, size_t limit, meta_xattr_rec_fn fn,
			  void *arg)
{
	struct xrec_scan s = {fn, arg};
	unsigned char k[8 + META_XATTR_NAME_MAX + 1];
	size_t klen = 8;

	if (name && name_len > META_XATTR_NAME_MAX)
		return -EINVAL;
	key_ino(k, ino);
	if (name) { /* the smallest key after (ino, name): one NUL more */
		memcpy(k + 8, name, name_len);
		k[8 + name_len] = 0;
		klen += name_len + 1;
	}
	return kv_scan(v->t, KV_XATTR, NULL, 0, k, klen, limit, xrec_one, &s);
}

struct deleted_scan {
	meta_delfile_fn fn;
	void *arg;
};

static int deleted_one(void *arg, const void *key, size_t klen,
		       const void *val, size_t vlen)
{
	struct deleted_scan *s = arg;

	if (klen != 8 || vlen < 8)
		return log_fail(-EIO, "corrupt deleted-file record");
	return s->fn(s->arg, get_be64(key), get_be64(val));
}

int meta_view_deleted(struct meta_view *v, meta_delfile_fn fn, void *arg)
{
	struct deleted_scan s = {fn, arg};

	return kv_scan(v->t, KV_DELFILE, NULL, 0, NULL, 0, 0, deleted_one, &s);
}

int meta_view_counter(struct meta_view *v, const char *name, uint64_t *out)
{
	return meta_rec_counter_get(v->t, name, out);
}

int meta_view_symlink(struct meta_view *v, uint64_t ino, char *buf, size_t n)
{
	struct buf val = BUF_INIT;
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_get(v->t, KV_SYMLINK, k, sizeof(k), &val);
	if (rc == 0 && n) {
		size_t len = MIN(val.len, n - 1);

		memcpy(buf, val.data, len);
		buf[len] = '\0';
	}
	buf_release(&val);
	return rc;
}

/* ---- records at the kv level ---- */

/* Whether a record of group @grp referencing slices has the right shape. */
static bool rec_slices_ok(int grp, size_t klen, size_t vlen)
{
	if (grp == KV_DELSLICE)
		return klen == 8 && vlen >= 4;
	if (grp == KV_CHUNK)
		return vlen % SLICE_REC_LEN == 0;
	return true;
}

int meta_rec_slices(int grp, const void *key, size_t klen, const void *val,
		    size_t vlen, meta_slice_id_fn fn, void *arg)
{
	const unsigned char *p = val;
	int rc = 0;

	if (!rec_slices_ok(grp, klen, vlen))
		return log_fail(-EIO, "corrupt %s record (%zu bytes)",
				grp == KV_CHUNK ? "chunk" : "deletion queue",
				vlen);
	if (grp == KV_DELSLICE)
		return fn(arg, get_be64(key), get_be32(p));
	if (grp != KV_CHUNK)
		return 0;
	for (size_t i = 0; rc == 0 && i < vlen; i += SLICE_REC_LEN) {
		struct slice s;

		slice_decode(p + i, &s);
		if (s.id)
			rc = fn(arg, s.id, s.size);
	}
	return rc;
}

struct all_scan {
	int grp;
	meta_slice_id_fn fn;
	void *arg;
};

static int all_one(void *arg, const void *key, size_t klen, const void *val,
		   size_t vlen)
{
	struct all_scan *s = arg;

	if (!rec_slices_ok(s->grp, klen, vlen)) {
		log_warn("skipping a corrupt %s record (%zu bytes)",
			 s->grp == KV_CHUNK ? "chunk" : "deletion queue", vlen);
		return 0;
	}
	return meta_rec_slices(s->grp, key, klen, val, vlen, s->fn, s->arg);
}

int meta_rec_all_slices(struct kv_txn *t, meta_slice_id_fn fn, void *arg)
{
	struct all_scan s = {KV_CHUNK, fn, arg};
	int rc = kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, all_one, &s);

	s.grp = KV_DELSLICE;
	if (rc == 0)
		rc = kv_scan(t, KV_DELSLICE, NULL, 0, NULL, 0, 0, all_one, &s);
	return rc;
}

int meta_rec_queue_slice(struct kv_txn *t, uint64_t id, uint32_t size,
			 uint64_t seq)
{
	struct buf old = BUF_INIT;
	unsigned char k[8], v[12];
	int rc;

	put_be64(k, id);
	rc = kv_get(t, KV_DELSLICE, k, sizeof(k), &old);
	buf_release(&old);
	if (rc == 0)
		return 0;
	if (rc != -ENOENT)
		return rc;
	put_be32(v, size);
	put_be64(v + 4, seq);
	rc = kv_put(t, KV_DELSLICE, k, sizeof(k), v, sizeof(v));
	return rc < 0 ? rc : 1;
}

int meta_rec_ckpt_get(struct kv_txn *t, const char *name,
		      struct meta_ckpt *out)
{
	struct buf v = BUF_INIT;
	size_t len = strlen(name);
	int rc = kv_get(t, KV_CHECKPOINT, name, len, &v);

	if (rc == 0 && out && ckpt_decode(name, len, v.data, v.len, out) < 0)
		rc = log_fail(-EIO, "corrupt checkpoint record '%s'", name);
	buf_release(&v);
	return rc;
}

int meta_rec_ckpt_now(struct kv_txn *t, struct meta_ckpt *c)
{
	int rc = meta_rec_counter_get(t, "txnSeq", &c->txn_seq);

	if (rc == 0)
		rc = meta_rec_counter_get(t, "nextSlice", &c->next_slice);
	return rc;
}

int meta_rec_ckpt_put(struct kv_txn *t, const struct meta_ckpt *c)
{
	unsigned char rec[CKPT_REC_LEN];
	size_t len = strnlen(c->name, sizeof(c->name));
	uint64_t seq;
	int rc;

	if (len == 0 || len >= sizeof(c->name))
		return -EINVAL;
	put_be64(rec, c->txn_seq);
	put_be64(rec + 8, c->next_slice);
	put_be64(rec + 16, (uint64_t)c->time_ns);
	put_be64(rec + 24, c->repl_seq);
	rc = kv_put(t, KV_CHECKPOINT, c->name, len, rec, sizeof(rec));
	if (rc == 0)
		rc = meta_rec_counter_get(t, "txnSeq", &seq);
	/* deletions from now on are numbered above the checkpoint */
	if (rc == 0 && seq <= c->txn_seq)
		rc = meta_rec_counter_put(t, "txnSeq", c->txn_seq + 1);
	return rc;
}

int meta_rec_ckpt_del(struct kv_txn *t, const char *name)
{
	return kv_del(t, KV_CHECKPOINT, name, strlen(name));
}

bool meta_rec_is_ckpt(int grp)
{
	return grp == KV_CHECKPOINT;
}

int meta_rec_counter_get(struct kv_txn *t, const char *name, uint64_t *out)
{
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_COUNTER, name, strlen(name), &v);

	*out = 0;
	if (rc == -ENOENT) {
		rc = 0;
	} else if (rc == 0 && v.len == 8) {
		*out = get_be64((const unsigned char *)v.data);
	} else if (rc == 0) {
		rc = log_fail(-EIO, "counter '%s' has %zu bytes, not 8", name,
			      v.len);
	}
	buf_release(&v);
	return rc;
}

int meta_rec_counter_put(struct kv_txn *t, const char *name, uint64_t v)
{
	unsigned char enc[8];

	put_be64(enc, v);
	return kv_put(t, KV_COUNTER, name, strlen(name), enc, sizeof(enc));
}

const char *const meta_rec_id_counters[META_REC_N_ID_COUNTERS] = {
    "nextInode",
    "nextSlice",
    "nextSession",
    "txnSeq",
};
const size_t meta_rec_n_id_counters = ARRAY_SIZE(meta_rec_id_counters);

int meta_rec_skip_slice_ids(struct kv_txn *t, uint64_t gap)
{
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_COUNTER, "nextSlice", 9, &v);

	buf_release(&v);
	if (rc == 0)
		rc = kv_incr(t, "nextSlice", (int64_t)gap, NULL);
	return rc;
}
