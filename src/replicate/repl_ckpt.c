/*
 * repl_ckpt.c - checkpoints: named snapshots of a volume's metadata
 * (format and record: repl.h).
 *
 * Design: create dumps the content and writes the KV_CHECKPOINT record and
 * the txnSeq bump in ONE read-write txn, dump first, so the snapshot is the
 * state exactly at txn seq S and every later deletion is numbered above S.
 * The object is stored after the commit (no txn is held across object
 * store I/O); if the upload fails the record is deleted again, and a record
 * without an object only makes gc keep more than it must.
 *
 * Restore replaces the content in one txn: delete every record of every
 * group but KV_CHECKPOINT (keys collected first, then deleted, since an
 * engine need not support changing a group while scanning it), put the
 * checkpoint's records, and keep the id counters at their larger value, so
 * inode numbers and slice ids never repeat after going back in time (an
 * object written after the checkpoint keeps its unique name and is simply
 * unreferenced).  Those objects are not left behind: every slice the
 * current state references (KV_CHUNK) or has queued (KV_DELSLICE) that the
 * checkpoint neither references nor queues is queued in KV_DELSLICE of the
 * restored state, deleted "now" (the current txnSeq); a checkpoint that
 * may still reference it keeps it by the usual rule (meta/delq.c).  This
 * reads the slice records of meta/ (util/slice.h layout: id at byte 4,
 * size at byte 12 of each SLICE_REC_LEN record).  The snapshot is verified whole before
 * the txn starts, so a damaged checkpoint changes nothing.
 *
 * Any thread; no state.  Conflicts (-EAGAIN) are retried a few times.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"
#include "util/slice.h"

#define CKPT_RETRIES 5

static const char *const ckpt_counters[] = {
    "nextInode", "nextSlice", "nextSession", "txnSeq", REPL_SEQ_COUNTER,
};

static int put_counter(struct kv_txn *t, const char *name, uint64_t v)
{
	unsigned char enc[8];

	put_be64(enc, v);
	return kv_put(t, KV_COUNTER, name, strlen(name), enc, 8);
}

static int ckpt_key(char *key, size_t n, const char *vol, const char *name)
{
	if (repl_key_ckpt(key, n, vol, name) < 0) {
		log_error(
		    "invalid checkpoint name '%s' (1 to 255 letters, "
		    "digits, '.', '_', '-', not starting with '.' or '-')",
		    name ? name : "");
		return -EINVAL;
	}
	return 0;
}

/* ---- create ---- */

/* Dump, then record and bump txnSeq, in @t.  Fills @c. */
static int ckpt_txn(struct kv_txn *t, const char *name, struct buf *obj,
		    struct repl_ckpt *c)
{
	unsigned char rec[REPL_CKPT_REC_LEN];
	struct repl_snap_info info;
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_CHECKPOINT, name, strlen(name), &v);

	buf_release(&v);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = repl_snap_dump_txn(t, NULL, obj, &info);
	if (rc < 0)
		return rc;
	c->txn_seq = info.txn_seq;
	c->next_slice = info.next_slice;
	c->time_ns = info.time_ns;
	c->size = obj->len;
	put_be64(rec, info.txn_seq);
	put_be64(rec + 8, info.next_slice);
	put_be64(rec + 16, (uint64_t)info.time_ns);
	put_be64(rec + 24, info.seq);
	rc = kv_put(t, KV_CHECKPOINT, name, strlen(name), rec, sizeof(rec));
	if (rc == 0)
		rc = put_counter(t, "txnSeq", info.txn_seq + 1);
	return rc;
}

static int ckpt_del_record(struct kv_engine *e, const char *name)
{
	int rc = -EAGAIN;

	for (int i = 0; i < CKPT_RETRIES && rc == -EAGAIN; i++) {
		struct kv_txn *t;

		rc = kv_begin(e, true, &t);
		if (rc < 0)
			continue;
		rc = kv_del(t, KV_CHECKPOINT, name, strlen(name));
		if (rc == 0)
			rc = kv_commit(t);
		else
			kv_rollback(t);
	}
	return rc;
}

int repl_ckpt_create(struct kv_engine *e, struct obj_store *store,
		     const char *volname, const char *name,
		     struct repl_ckpt *out)
{
	char key[OBJ_KEY_MAX + 1];
	struct buf obj = BUF_INIT;
	struct obj_info oi;
	struct repl_ckpt c;
	int rc = ckpt_key(key, sizeof(key), volname, name);

	if (rc < 0)
		return rc;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	rc = obj_head(store, key, &oi);
	if (rc == 0)
		rc = -EEXIST;
	else if (rc == -ENOENT)
		rc = -EAGAIN;
	for (int i = 0; i < CKPT_RETRIES && rc == -EAGAIN; i++) {
		struct kv_txn *t;

		rc = kv_begin(e, true, &t);
		if (rc < 0)
			continue;
		rc = ckpt_txn(t, name, &obj, &c);
		if (rc == 0)
			rc = kv_commit(t);
		else
			kv_rollback(t);
	}
	if (rc == -EEXIST) {
		log_error("checkpoint '%s' of volume '%s' exists", name,
			  volname);
		goto out;
	}
	if (rc < 0) {
		log_fail(rc, "cannot create checkpoint '%s' of volume '%s'",
			 name, volname);
		goto out;
	}
	rc = repl_put_durable(store, key, obj.data, obj.len);
	if (rc < 0) {
		log_fail(rc, "cannot store checkpoint '%s' in '%s'", key,
			 obj_describe(store));
		ckpt_del_record(e, name);
		goto out;
	}
	if (out)
		*out = c;
out:
	buf_release(&obj);
	return rc;
}

/* ---- list and delete ---- */

static int ckpt_push(struct repl_ckpt **v, size_t *n, const char *name,
		     uint64_t size)
{
	struct repl_ckpt *p = realloc(*v, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*v = p;
	p += (*n)++;
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->size = size;
	return 0;
}

/* Fill the counters of @c from the header of its object. */
static void ckpt_read_header(struct obj_store *s, const char *key,
			     struct repl_ckpt *c)
{
	struct repl_snap_info info;
	struct buf b = BUF_INIT;
	int rc = obj_get(s, key, 0, REPL_SNAP_HDR, &b);

	if (rc == 0 && repl_snap_header(b.data, b.len, &info) == 0) {
		c->txn_seq = info.txn_seq;
		c->next_slice = info.next_slice;
		c->time_ns = info.time_ns;
	} else {
		log_warn("checkpoint '%s' is unreadable: %s", key,
			 rc < 0 ? strerror(-rc) : "bad header");
	}
	buf_release(&b);
}

int repl_ckpt_list(struct obj_store *store, const char *volname,
		   struct repl_ckpt **out, size_t *n)
{
	char prefix[OBJ_KEY_MAX + 1];
	struct obj_list l;
	char *token = NULL;
	size_t plen;
	int rc = repl_key_meta(prefix, sizeof(prefix), volname);

	*out = NULL;
	*n = 0;
	if (rc < 0 || strlen(prefix) + 5 >= sizeof(prefix))
		return -EINVAL;
	strcat(prefix, "ckpt/");
	plen = strlen(prefix);
	obj_list_init(&l);
	do {
		rc = obj_list(store, prefix, NULL, token, 1000, &l);
		free(token);
		token = NULL;
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			const char *name = l.items[i].key + plen;

			if (repl_check_volname(name) < 0)
				continue;
			rc = ckpt_push(out, n, name, l.items[i].size);
			if (rc == 0)
				ckpt_read_header(store, l.items[i].key,
						 &(*out)[*n - 1]);
		}
		if (rc == 0 && l.truncated && l.next_token &&
		    !(token = strdup(l.next_token)))
			rc = -ENOMEM;
	} while (rc == 0 && token);
	obj_list_release(&l);
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return log_fail(rc,
				"cannot list the checkpoints of volume "
				"'%s'",
				volname);
	}
	return 0;
}

int repl_ckpt_delete(struct kv_engine *e, struct obj_store *store,
		     const char *volname, const char *name)
{
	char key[OBJ_KEY_MAX + 1];
	struct obj_info oi;
	bool found = false;
	int rc = ckpt_key(key, sizeof(key), volname, name);

	if (rc < 0)
		return rc;
	rc = obj_head(store, key, &oi);
	if (rc == 0) {
		found = true;
		rc = obj_del(store, key);
	}
	if (rc < 0 && rc != -ENOENT)
		return log_fail(rc, "cannot delete checkpoint '%s'", key);
	if (e) {
		struct buf v = BUF_INIT;
		struct kv_txn *t;

		rc = kv_begin(e, false, &t);
		if (rc == 0) {
			rc = kv_get(t, KV_CHECKPOINT, name, strlen(name), &v);
			kv_rollback(t);
		}
		buf_release(&v);
		if (rc == 0) {
			found = true;
			rc = ckpt_del_record(e, name);
		}
		if (rc < 0 && rc != -ENOENT)
			return log_fail(rc,
					"cannot delete checkpoint '%s' of "
					"volume '%s'",
					name, volname);
	}
	if (!found) {
		log_error("no checkpoint '%s' of volume '%s'", name, volname);
		return -ENOENT;
	}
	return 0;
}

/* ---- restore ---- */

/* Slice ids (with their stored size) seen in chunk or queue records. */
struct idset {
	struct {
		uint64_t id;
		uint32_t size;
	} *v;
	size_t n, cap;
};

static int idset_add(struct idset *s, uint64_t id, uint32_t size)
{
	if (id == 0)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		void *p = realloc(s->v, cap * sizeof(*s->v));

		if (!p)
			return -ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n].id = id;
	s->v[s->n].size = size;
	s->n++;
	return 0;
}

/* Add every slice of chunk value @val. */
static int idset_chunk(struct idset *s, const void *val, size_t vlen)
{
	const unsigned char *p = val;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i + SLICE_REC_LEN <= vlen;
	     i += SLICE_REC_LEN)
		rc = idset_add(s, get_be64(p + i + 4), get_be32(p + i + 12));
	return rc;
}

static int cmp_id(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Sort and merge duplicates (keeping the largest size). */
static void idset_sort(struct idset *s)
{
	size_t o = 0;

	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_id);
	for (size_t i = 1; i < s->n; i++) {
		if (s->v[i].id == s->v[o].id)
			s->v[o].size = MAX(s->v[o].size, s->v[i].size);
		else
			s->v[++o] = s->v[i];
	}
	s->n = o + 1;
}

static bool idset_has(const struct idset *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].id == id)
			return true;
		if (s->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cur_chunk(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	UNUSED(key);
	UNUSED(klen);
	return idset_chunk(arg, val, vlen);
}

static int cur_queued(void *arg, const void *key, size_t klen,
		      const void *val, size_t vlen)
{
	if (klen != 8 || vlen < 4)
		return 0; /* not ours to judge: meta/ reports it */
	return idset_add(arg, get_be64(key), get_be32(val));
}

struct load {
	struct kv_txn *t;
	struct idset keep; /* slices the checkpoint references */
};

static int ckpt_put(void *arg, int grp, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	struct load *l = arg;
	int rc;

	if (grp == KV_CHECKPOINT)
		return 0;
	rc = kv_put(l->t, grp, key, klen, val, vlen);
	if (rc == 0 && grp == KV_CHUNK)
		rc = idset_chunk(&l->keep, val, vlen);
	return rc;
}

/*
 * Queue (KV_DELSLICE, deleted at @seq) every slice of @cur the checkpoint
 * does not reference and does not queue itself.  *n: how many.
 */
static int queue_dropped(struct kv_txn *t, struct idset *cur,
			 struct idset *keep, uint64_t seq, uint64_t *n)
{
	unsigned char k[8], v[12];
	struct buf old = BUF_INIT;
	int rc = 0;

	idset_sort(cur);
	idset_sort(keep);
	for (size_t i = 0; rc == 0 && i < cur->n; i++) {
		if (idset_has(keep, cur->v[i].id))
			continue;
		put_be64(k, cur->v[i].id);
		rc = kv_get(t, KV_DELSLICE, k, 8, &old);
		if (rc == 0)
			continue; /* the checkpoint queued it already */
		if (rc != -ENOENT)
			break;
		put_be32(v, cur->v[i].size);
		put_be64(v + 4, seq);
		rc = kv_put(t, KV_DELSLICE, k, 8, v, sizeof(v));
		(*n)++;
	}
	buf_release(&old);
	return rc;
}

static int ckpt_swap(struct kv_txn *t, const struct buf *obj, uint64_t *queued)
{
	uint64_t cur[ARRAY_SIZE(ckpt_counters)], seq = 0;
	struct load l = {.t = t};
	struct idset now = {0};
	const char *why = NULL;
	int rc = 0;

	*queued = 0;
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(ckpt_counters); i++)
		rc = repl_read_counter(t, ckpt_counters[i], &cur[i]);
	if (rc == 0)
		rc = kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, cur_chunk, &now);
	if (rc == 0)
		rc = kv_scan(t, KV_DELSLICE, NULL, 0, NULL, 0, 0, cur_queued,
			     &now);
	if (rc == 0)
		rc = repl_clear_txn(t, KV_CHECKPOINT);
	if (rc == 0)
		rc = repl_snap_foreach(obj->data, obj->len, ckpt_put, &l, &why);
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(ckpt_counters); i++) {
		uint64_t v;

		rc = repl_read_counter(t, ckpt_counters[i], &v);
		if (rc == 0 && cur[i] > v)
			rc = put_counter(t, ckpt_counters[i], cur[i]);
		if (!strcmp(ckpt_counters[i], "txnSeq"))
			seq = MAX(cur[i], v);
	}
	/* txnSeq is above every checkpoint's (create bumps it) */
	if (rc == 0)
		rc = queue_dropped(t, &now, &l.keep, seq, queued);
	free(now.v);
	free(l.keep.v);
	return rc;
}

int repl_ckpt_restore(struct kv_engine *e, struct obj_store *store,
		      const char *volname, const char *name)
{
	char key[OBJ_KEY_MAX + 1];
	struct repl_snap_info info;
	struct buf obj = BUF_INIT;
	const char *why = NULL;
	uint64_t queued = 0;
	int rc = ckpt_key(key, sizeof(key), volname, name);

	if (rc < 0)
		return rc;
	rc = obj_get(store, key, 0, OBJ_TO_END, &obj);
	if (rc == -ENOENT) {
		log_error("no checkpoint '%s' of volume '%s'", name, volname);
		goto out;
	}
	if (rc < 0) {
		log_fail(rc, "cannot read checkpoint '%s'", key);
		goto out;
	}
	if (repl_snap_check(obj.data, obj.len, &info, &why) < 0) {
		rc = -EIO;
		log_error("checkpoint '%s' is corrupt (%s): nothing changed",
			  key, why);
		goto out;
	}
	rc = -EAGAIN;
	for (int i = 0; i < CKPT_RETRIES && rc == -EAGAIN; i++) {
		struct kv_txn *t;

		rc = kv_begin(e, true, &t);
		if (rc < 0)
			continue;
		rc = ckpt_swap(t, &obj, &queued);
		if (rc == 0)
			rc = kv_commit(t);
		else
			kv_rollback(t);
	}
	if (rc < 0)
		log_fail(rc, "cannot restore checkpoint '%s' of volume '%s'",
			 name, volname);
	else
		log_info("restored checkpoint '%s' of volume '%s' (%llu "
			 "records; %llu newer slices queued for deletion)",
			 name, volname, (unsigned long long)info.records,
			 (unsigned long long)queued);
out:
	buf_release(&obj);
	return rc;
}
