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
 * unreferenced).  Those objects are not left behind: every slice with an
 * id >= the checkpoint's next slice id that the current state references
 * (KV_CHUNK) or already queued (KV_DELSLICE) did not exist at the
 * checkpoint, so restore queues it in KV_DELSLICE of the restored state,
 * deleted "now" (the current txnSeq); a later checkpoint that still
 * references it keeps it by the usual rule (meta/delq.c).  This reads the
 * slice records of meta/ (util/slice.h layout: id at byte 4, size at byte
 * 12 of each SLICE_REC_LEN record).  The snapshot is verified whole before
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

static int ckpt_put(void *arg, int grp, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	if (grp == KV_CHECKPOINT)
		return 0;
	return kv_put(arg, grp, key, klen, val, vlen);
}

/* Slices newer than the checkpoint, to queue for deletion. */
struct newer {
	uint64_t floor; /* the checkpoint's next slice id */
	struct {
		uint64_t id;
		uint32_t size;
	} *v;
	size_t n, cap;
};

static int newer_add(struct newer *nw, uint64_t id, uint32_t size)
{
	if (id == 0 || id < nw->floor)
		return 0;
	if (nw->n == nw->cap) {
		size_t cap = nw->cap ? 2 * nw->cap : 256;
		void *p = realloc(nw->v, cap * sizeof(*nw->v));

		if (!p)
			return -ENOMEM;
		nw->v = p;
		nw->cap = cap;
	}
	nw->v[nw->n].id = id;
	nw->v[nw->n].size = size;
	nw->n++;
	return 0;
}

static int newer_chunk(void *arg, const void *key, size_t klen,
		       const void *val, size_t vlen)
{
	const unsigned char *p = val;
	int rc = 0;

	UNUSED(key);
	UNUSED(klen);
	for (size_t i = 0; rc == 0 && i + SLICE_REC_LEN <= vlen;
	     i += SLICE_REC_LEN)
		rc = newer_add(arg, get_be64(p + i + 4), get_be32(p + i + 12));
	return rc;
}

static int newer_queued(void *arg, const void *key, size_t klen,
			const void *val, size_t vlen)
{
	if (klen != 8 || vlen < 4)
		return 0; /* not ours to judge: meta/ reports it */
	return newer_add(arg, get_be64(key), get_be32(val));
}

static int cmp_newer(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Put a KV_DELSLICE record (size, deleted at @seq) for each distinct id. */
static int newer_queue(struct kv_txn *t, struct newer *nw, uint64_t seq)
{
	unsigned char k[8], v[12];
	int rc = 0;

	if (nw->n)
		qsort(nw->v, nw->n, sizeof(*nw->v), cmp_newer);
	for (size_t i = 0; rc == 0 && i < nw->n; i++) {
		uint32_t size = nw->v[i].size;

		for (; i + 1 < nw->n && nw->v[i + 1].id == nw->v[i].id; i++)
			size = MAX(size, nw->v[i + 1].size);
		put_be64(k, nw->v[i].id);
		put_be32(v, size);
		put_be64(v + 4, seq);
		rc = kv_put(t, KV_DELSLICE, k, 8, v, sizeof(v));
	}
	return rc;
}

static int ckpt_swap(struct kv_txn *t, const struct buf *obj,
		     const struct repl_snap_info *info, uint64_t *queued)
{
	uint64_t cur[ARRAY_SIZE(ckpt_counters)];
	struct newer nw = {.floor = info->next_slice};
	const char *why = NULL;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(ckpt_counters); i++)
		rc = repl_read_counter(t, ckpt_counters[i], &cur[i]);
	if (rc == 0 && nw.floor)
		rc = kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, newer_chunk,
			     &nw);
	if (rc == 0 && nw.floor)
		rc = kv_scan(t, KV_DELSLICE, NULL, 0, NULL, 0, 0, newer_queued,
			     &nw);
	if (rc == 0)
		rc = repl_clear_txn(t, KV_CHECKPOINT);
	if (rc == 0)
		rc = repl_snap_foreach(obj->data, obj->len, ckpt_put, t, &why);
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(ckpt_counters); i++) {
		uint64_t v;

		rc = repl_read_counter(t, ckpt_counters[i], &v);
		if (rc == 0 && cur[i] > v)
			rc = put_counter(t, ckpt_counters[i], cur[i]);
		if (rc == 0 && cur[i] > v)
			v = cur[i];
		/* txnSeq is above every checkpoint's (create bumps it) */
		if (rc == 0 && !strcmp(ckpt_counters[i], "txnSeq"))
			rc = newer_queue(t, &nw, v);
	}
	*queued = nw.n;
	free(nw.v);
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
		rc = ckpt_swap(t, &obj, &info, &queued);
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
