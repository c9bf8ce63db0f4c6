/*
 * repl_ckpt.c - checkpoints: named snapshots of a volume's metadata
 * (format: repl.h).  meta/ owns every record this touches: the checkpoint
 * record, the id counters, the slice records and the deletion queue are
 * read and written only through meta_scan.h's meta_rec_* helpers; this
 * file moves snapshots and decides when.
 *
 * Design: create dumps the content and writes the checkpoint record (which
 * also moves meta's txn seq past it) in ONE read-write txn, dump first, so
 * the snapshot is the state exactly at txn seq S and every later deletion
 * is numbered above S.  The object is stored after the commit (no txn is
 * held across object store I/O); if the upload fails the record is
 * deleted again, and a record without an object only makes gc keep more
 * than it must.
 *
 * Restore replaces the content in one txn: delete every record of every
 * group but the checkpoint records (keys collected first, then deleted,
 * since an engine need not support changing a group while scanning it),
 * put the checkpoint's records, and keep the id counters
 * (meta_rec_id_counters, and replicate's own REPL_SEQ_COUNTER) at their
 * larger value, so inode numbers and slice ids never repeat after going
 * back in time (an object written after the checkpoint keeps its unique
 * name and is simply unreferenced).  Those objects are not left behind:
 * every slice the current state references or has queued
 * (meta_rec_all_slices) that the checkpoint neither references nor queues
 * (meta_rec_slices of its records) is queued for deletion in the restored
 * state (meta_rec_queue_slice), deleted "now" (the current txn seq); a
 * checkpoint that may still reference it keeps it by the usual rule
 * (meta/delq.c).  The snapshot is verified whole before the txn starts, so
 * a damaged checkpoint changes nothing.
 *
 * Any thread; no state.  Conflicts (-EAGAIN) are retried a few times.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"

#define CKPT_RETRIES 5

/* The counters a restore keeps at their larger value: meta's, then ours. */
#define CKPT_N_COUNTERS (META_REC_N_ID_COUNTERS + 1)

static const char *ckpt_counter(size_t i)
{
	return i < META_REC_N_ID_COUNTERS ? meta_rec_id_counters[i]
					  : REPL_SEQ_COUNTER;
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

/* Dump, then put the checkpoint record, in @t.  Fills @c. */
static int ckpt_txn(struct kv_txn *t, const char *name, struct buf *obj,
		    struct repl_ckpt *c)
{
	struct repl_snap_info info;
	struct meta_ckpt rec;
	int rc = meta_rec_ckpt_get(t, name, NULL);

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
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	rec.txn_seq = info.txn_seq;
	rec.next_slice = info.next_slice;
	rec.time_ns = info.time_ns;
	rec.repl_seq = info.seq;
	return meta_rec_ckpt_put(t, &rec);
}

static int ckpt_del_record(struct kv_engine *e, const char *name)
{
	int rc = -EAGAIN;

	for (int i = 0; i < CKPT_RETRIES && rc == -EAGAIN; i++) {
		struct kv_txn *t;

		rc = kv_begin(e, true, &t);
		if (rc < 0)
			continue;
		rc = meta_rec_ckpt_del(t, name);
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
		struct kv_txn *t;

		rc = kv_begin(e, false, &t);
		if (rc == 0) {
			rc = meta_rec_ckpt_get(t, name, NULL);
			kv_rollback(t);
		}
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

/* Slice ids (with their stored size) that records reference. */
struct idset {
	struct {
		uint64_t id;
		uint32_t size;
	} *v;
	size_t n, cap;
};

/* A meta_slice_id_fn: add slice @id to the idset @arg. */
static int idset_add(void *arg, uint64_t id, uint32_t size)
{
	struct idset *s = arg;

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

struct load {
	struct kv_txn *t;
	struct idset keep; /* slices the checkpoint references or queues */
};

static int ckpt_put(void *arg, int grp, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	struct load *l = arg;
	int rc;

	if (meta_rec_is_ckpt(grp))
		return 0;
	rc = kv_put(l->t, grp, key, klen, val, vlen);
	if (rc == 0)
		rc = meta_rec_slices(grp, key, klen, val, vlen, idset_add,
				     &l->keep);
	return rc;
}

/*
 * Queue (deleted at @seq) every slice of @cur the checkpoint does not
 * reference and does not queue itself.  *n: how many.
 */
static int queue_dropped(struct kv_txn *t, struct idset *cur,
			 struct idset *keep, uint64_t seq, uint64_t *n)
{
	int rc = 0;

	idset_sort(cur);
	idset_sort(keep);
	for (size_t i = 0; rc == 0 && i < cur->n; i++) {
		if (idset_has(keep, cur->v[i].id))
			continue;
		rc = meta_rec_queue_slice(t, cur->v[i].id, cur->v[i].size, seq);
		if (rc > 0) {
			(*n)++;
			rc = 0;
		}
	}
	return rc;
}

/* Put back the counters of @cur that are larger than the checkpoint's. */
static int keep_counters(struct kv_txn *t, const uint64_t *cur)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < CKPT_N_COUNTERS; i++) {
		uint64_t v;

		rc = meta_rec_counter_get(t, ckpt_counter(i), &v);
		if (rc == 0 && cur[i] > v)
			rc = meta_rec_counter_put(t, ckpt_counter(i), cur[i]);
	}
	return rc;
}

static int ckpt_swap(struct kv_txn *t, const struct buf *obj, uint64_t *queued)
{
	uint64_t cur[CKPT_N_COUNTERS];
	struct load l = {.t = t};
	struct idset now = {0};
	struct meta_ckpt at;
	const char *why = NULL;
	int rc = 0;

	*queued = 0;
	for (size_t i = 0; rc == 0 && i < CKPT_N_COUNTERS; i++)
		rc = meta_rec_counter_get(t, ckpt_counter(i), &cur[i]);
	if (rc == 0)
		rc = meta_rec_all_slices(t, idset_add, &now);
	if (rc == 0)
		rc = repl_clear_txn(t, meta_rec_is_ckpt);
	if (rc == 0)
		rc = repl_snap_foreach(obj->data, obj->len, ckpt_put, &l, &why);
	if (rc == 0)
		rc = keep_counters(t, cur);
	/* the txn seq now, above every checkpoint's (create bumps it) */
	if (rc == 0)
		rc = meta_rec_ckpt_now(t, &at);
	if (rc == 0)
		rc = queue_dropped(t, &now, &l.keep, at.txn_seq, queued);
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
