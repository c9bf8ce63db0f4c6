/*
 * delq.c - the deletion queue seen from the background worker: pending
 * slices (KV_DELSLICE), forgetting deleted ones, and meta_cleanup, which
 * expires trash entries and finishes interrupted purges (KV_DELFILE).
 *
 * Checkpoints (KV_CHECKPOINT, DESIGN section 6) hold on to old data: a
 * checkpoint taken at txn seq S when the next slice id was N still
 * references every slice with id < N that was live at S.  Such a slice
 * deleted after it (its deleted-at seq > S: creating a checkpoint bumps
 * txnSeq past S) must keep its objects while the checkpoint exists, so
 * meta_pending_slices skips it; once the checkpoint record is deleted the
 * next pass hands it out.  A slice deleted at or before S is not in the
 * checkpoint, and one with id >= N did not exist then.
 *
 * Trash entries are named "PARENT-INO-SECONDS-NAME" (remove.c); one
 * expires when SECONDS + trash_days days has passed, so with trash_days 0
 * every entry left in the trash expires at the next cleanup.  A name that
 * does not parse is left alone: cleanup never removes what it does not
 * understand.
 */
#include "util/common.h"
#include <inttypes.h>

#include "meta/meta_int.h"
#include "util/log.h"

#define CLEANUP_BATCH 256

/* ---- pending slices ---- */

/* What a checkpoint protects: ids below next_slice deleted after txn_seq. */
struct ckpt_guard {
	uint64_t txn_seq;
	uint64_t next_slice;
};

struct pending_arg {
	size_t max;
	struct meta_delslice *v;
	size_t n;
	struct ckpt_guard *ck;
	size_t nck, capck;
	uint64_t kept; /* slices skipped for a checkpoint */
};

static int ckpt_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct pending_arg *a = arg;

	(void)key;
	(void)klen;
	if (vlen < 16)
		return log_fail(-EIO, "corrupt checkpoint record");
	if (a->nck == a->capck) {
		size_t cap = a->capck ? 2 * a->capck : 8;
		struct ckpt_guard *p = realloc(a->ck, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		a->ck = p;
		a->capck = cap;
	}
	a->ck[a->nck].txn_seq = get_be64(val);
	a->ck[a->nck].next_slice = get_be64((const unsigned char *)val + 8);
	a->nck++;
	return 0;
}

bool delq_ckpt_keeps(uint64_t ckpt_seq, uint64_t ckpt_next_slice, uint64_t id,
		     uint64_t deleted_at)
{
	return id < ckpt_next_slice && deleted_at > ckpt_seq;
}

static bool ckpt_keeps(const struct pending_arg *a, uint64_t id,
		       uint64_t deleted_at)
{
	for (size_t i = 0; i < a->nck; i++)
		if (delq_ckpt_keeps(a->ck[i].txn_seq, a->ck[i].next_slice, id,
				    deleted_at))
			return true;
	return false;
}

static int pending_one(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct pending_arg *a = arg;
	uint64_t id, at;

	if (klen != 8 || vlen < 4)
		return log_fail(-EIO, "corrupt deletion queue record");
	id = get_be64(key);
	at = vlen >= 12 ? get_be64((const unsigned char *)val + 4) : 0;
	if (a->nck && ckpt_keeps(a, id, at)) {
		a->kept++;
		return 0;
	}
	a->v[a->n].id = id;
	a->v[a->n].size = get_be32(val);
	a->n++;
	return a->n >= a->max ? 1 : 0;
}

static int pending_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct pending_arg *a = arg;
	int rc;

	(void)m;
	a->n = 0;
	a->nck = 0;
	a->kept = 0;
	rc = kv_scan(t, KV_CHECKPOINT, NULL, 0, NULL, 0, 0, ckpt_one, a);
	if (rc < 0)
		return rc;
	/* Without checkpoints the first max records are all due. */
	return kv_scan(t, KV_DELSLICE, NULL, 0, NULL, 0, a->nck ? 0 : a->max,
		       pending_one, a);
}

int meta_pending_slices(struct meta *m, size_t max, struct meta_delslice **out,
			size_t *n)
{
	struct pending_arg a = {.max = max};
	int rc;

	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	a.v = calloc(max, sizeof(*a.v));
	if (!a.v)
		return -ENOMEM;
	rc = meta_txn(m, false, pending_fn, &a);
	free(a.ck);
	if (rc == 0 && a.kept)
		log_debug("%llu deleted slices kept for checkpoints",
			  (unsigned long long)a.kept);
	if (rc < 0 || a.n == 0) {
		free(a.v);
		return rc;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

struct deleted_arg {
	const uint64_t *ids;
	size_t n;
};

static int deleted_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct deleted_arg *a = arg;
	unsigned char k[8];
	int rc = 0;

	(void)m;
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		put_be64(k, a->ids[i]);
		rc = kv_del(t, KV_DELSLICE, k, sizeof(k));
	}
	return rc;
}

int meta_slices_deleted(struct meta *m, const uint64_t *ids, size_t n)
{
	struct deleted_arg a = {ids, n};

	return n ? meta_txn(m, true, deleted_fn, &a) : 0;
}

int meta_slice_deleted(struct meta *m, uint64_t id)
{
	return meta_slices_deleted(m, &id, 1);
}

/* ---- cleanup ---- */

struct trash_scan {
	int64_t now_s;
	int64_t keep_s;
	uint64_t next; /* cookie to resume from */
	size_t seen;
	struct buf names; /* expired names, NUL-separated */
};

static int trash_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct trash_scan *s = arg;
	char name[TESSERA_NAME_MAX + 1];
	unsigned long long parent, ino;
	long long when;
	int rc = 0;

	if (klen != 16 || vlen < 12 || vlen - 12 > TESSERA_NAME_MAX)
		return log_fail(-EIO, "corrupt trash entry");
	s->next = get_be64((const unsigned char *)key + 8) + 1;
	s->seen++;
	memcpy(name, (const char *)val + 12, vlen - 12);
	name[vlen - 12] = '\0';
	if (sscanf(name, "%llu-%llu-%lld-", &parent, &ino, &when) == 3 &&
	    when + s->keep_s <= s->now_s)
		rc = buf_append(&s->names, name, vlen - 12 + 1);
	return rc;
}

static int trash_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct trash_scan *s = arg;
	unsigned char pre[8], start[16];

	(void)m;
	s->seen = 0;
	buf_reset(&s->names);
	key_ino(pre, META_TRASH_INO);
	key_diridx(start, META_TRASH_INO, s->next);
	return kv_scan(t, KV_DIRIDX, pre, sizeof(pre), start, sizeof(start),
		       CLEANUP_BATCH, trash_one, s);
}

static int expire_trash(struct meta *m)
{
	struct trash_scan s = {0};
	int rc, first = 0;

	s.now_s = meta_now_ns() / 1000000000LL;
	s.keep_s = (int64_t)meta_trash_days(m) * 86400;
	s.next = 0;
	do {
		rc = meta_txn(m, false, trash_fn, &s);
		for (size_t off = 0; rc == 0 && off < s.names.len;) {
			const char *name = s.names.data + off;
			int r = meta_trash_remove(m, name);

			if (r < 0 && !first)
				first = r;
			off += strlen(name) + 1;
		}
	} while (rc == 0 && s.seen == CLEANUP_BATCH);
	buf_release(&s.names);
	return rc < 0 ? rc : first;
}

struct delfile_scan {
	uint64_t next;
	size_t n;
	uint64_t ino[CLEANUP_BATCH];
};

static int delfile_one(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct delfile_scan *s = arg;

	(void)val;
	(void)vlen;
	if (klen != 8)
		return log_fail(-EIO, "corrupt deleted-file record");
	s->ino[s->n++] = get_be64(key);
	s->next = get_be64(key) + 1;
	return 0;
}

static int delfile_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct delfile_scan *s = arg;
	unsigned char start[8];

	(void)m;
	s->n = 0;
	key_ino(start, s->next);
	return kv_scan(t, KV_DELFILE, NULL, 0, start, sizeof(start),
		       CLEANUP_BATCH, delfile_one, s);
}

static int finish_purges(struct meta *m)
{
	struct delfile_scan *s = calloc(1, sizeof(*s));
	int rc, first = 0;

	if (!s)
		return -ENOMEM;
	do {
		rc = meta_txn(m, false, delfile_fn, s);
		for (size_t i = 0; rc == 0 && i < s->n; i++) {
			int r = meta_purge_file(m, s->ino[i]);

			if (r < 0 && !first)
				first = r;
		}
	} while (rc == 0 && s->n == CLEANUP_BATCH);
	free(s);
	return rc < 0 ? rc : first;
}

int meta_cleanup(struct meta *m)
{
	int rc = expire_trash(m);
	int rc2 = finish_purges(m);

	return rc < 0 ? rc : rc2;
}
