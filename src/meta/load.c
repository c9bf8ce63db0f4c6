/*
 * load.c - write a checked dump document into an empty target (dump.h).
 *
 * States of the target:
 *   empty -> claimed: one txn finds no record in any group and puts the
 *            marker KV_SETTING "load" (pid, host, start time); a second
 *            load then finds the target taken;
 *   claimed -> loading: the parser's items are written in batches of
 *            LD_BATCH items, one txn each (records exactly as meta/ would
 *            write them: rec.c's encoders);
 *   quotas: once every item is in, each quota is put back in its own
 *            txn, its usage counted from the loaded tree (quota.c);
 *   loading -> volume: the last txn puts the settings KV_SETTING "volume"
 *            and deletes the marker.  Before that, meta_open finds no
 *            volume and names the marker, so nothing mounts a half load.
 *   any failure after the claim -> empty again (kv_wipe).
 * A crash leaves the marker; `tessera load --force` wipes such a target
 * (never one holding a volume) and loads again.
 *
 * Nothing else writes an empty target, so a commit conflict means someone
 * does: the load fails (and wipes) rather than retrying.
 */
#include "util/common.h"
#include "meta/dump_int.h"
#include "meta/meta_int.h"
#include "util/log.h"
#include "util/url.h"

#include <jansson.h>
#include <unistd.h>

#define LD_BATCH 512 /* items per txn */
#define LD_MARKER "load"
#define LD_PROGRESS_EVERY 4096

struct ld {
	struct kv_engine *kv;
	struct kv_txn *t;
	const struct meta_load_opts *o;
	const char *desc;
	struct meta_format f;
	bool have_f;
	size_t batch;
	uint64_t items;
	struct buf b;
	/* the quotas, put back once the tree is in (ld_quotas) */
	struct meta_quota *q;
	size_t nq;
};

int meta_rec_load_marker(struct kv_txn *t)
{
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_SETTING, LD_MARKER, strlen(LD_MARKER), &v);

	buf_release(&v);
	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

/* ---- claiming the target ---- */

static int found_any(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	UNUSED(key);
	UNUSED(klen);
	UNUSED(val);
	UNUSED(vlen);
	*(bool *)arg = true;
	return 1;
}

/* What the target holds: 0 nothing, 1 only an unfinished load's records,
 * 2 other records, 3 a volume. */
static int target_state(struct kv_txn *t, struct buf *marker)
{
	struct buf v = BUF_INIT;
	bool any = false;
	int rc;

	rc = kv_get(t, KV_SETTING, "volume", 6, &v);
	buf_release(&v);
	if (rc == 0)
		return 3;
	if (rc != -ENOENT)
		return rc;
	rc = kv_get(t, KV_SETTING, LD_MARKER, strlen(LD_MARKER), marker);
	if (rc == 0)
		return 1;
	if (rc != -ENOENT)
		return rc;
	for (int g = 1; g < KV_GROUP_MAX && !any; g++) {
		rc = kv_scan(t, g, NULL, 0, NULL, 0, 1, found_any, &any);
		if (rc < 0)
			return rc;
	}
	return any ? 2 : 0;
}

static int put_marker(struct kv_txn *t)
{
	char host[256] = "?", val[512];

	gethostname(host, sizeof(host) - 1);
	snprintf(val, sizeof(val),
		 "{\"pid\":%ld,\"host\":\"%.200s\",\"started\":%lld}",
		 (long)getpid(), host, (long long)meta_now_ns());
	return kv_put(t, KV_SETTING, LD_MARKER, strlen(LD_MARKER), val,
		      strlen(val));
}

static int claim_once(struct ld *l, int *state, struct buf *marker)
{
	struct kv_txn *t;
	int rc = kv_begin(l->kv, true, &t);

	if (rc < 0)
		return rc;
	rc = target_state(t, marker);
	*state = rc;
	if (rc == 0)
		rc = put_marker(t);
	if (rc == 0)
		return kv_commit(t);
	kv_rollback(t);
	return rc < 0 ? rc : -EEXIST;
}

static int claim(struct ld *l)
{
	struct buf marker = BUF_INIT;
	int state = 0, rc = claim_once(l, &state, &marker);

	if (rc == -EEXIST && state == 1 && l->o->force) {
		log_warn("wiping the records of an unfinished load in '%s' "
			 "(%s)",
			 l->desc, marker.data ? marker.data : "");
		rc = kv_wipe(l->kv);
		if (rc == 0)
			rc = claim_once(l, &state, &marker);
	}
	if (rc == -EEXIST && state == 3)
		log_error("cannot load into '%s': it holds a volume (load "
			  "needs an empty target)",
			  l->desc);
	else if (rc == -EEXIST && state == 1)
		log_error("cannot load into '%s': it holds a load that did not "
			  "finish (%s); give --force to wipe it and load again",
			  l->desc, marker.data ? marker.data : "");
	else if (rc == -EEXIST)
		log_error("cannot load into '%s': it is not empty (load needs "
			  "an empty target)",
			  l->desc);
	else if (rc == -EAGAIN)
		rc = log_fail(-EBUSY,
			      "cannot load into '%s': another client "
			      "writes it",
			      l->desc);
	else if (rc < 0)
		log_fail(rc, "cannot load into '%s'", l->desc);
	buf_release(&marker);
	return rc;
}

/* ---- batches ---- */

static int ld_txn(struct ld *l)
{
	return l->t ? 0 : kv_begin(l->kv, true, &l->t);
}

static int ld_commit(struct ld *l)
{
	int rc = 0;

	if (l->t)
		rc = kv_commit(l->t);
	l->t = NULL;
	l->batch = 0;
	if (rc == -EAGAIN)
		rc = -EBUSY; /* see the top */
	return rc;
}

/* After an item's writes: commit every LD_BATCH items. */
static int ld_done(struct ld *l, int rc)
{
	if (rc < 0)
		return rc;
	if (++l->items % LD_PROGRESS_EVERY == 0 && l->o->progress)
		l->o->progress(l->o->progress_arg, l->items);
	return ++l->batch >= LD_BATCH ? ld_commit(l) : 0;
}

/* ---- the sink ---- */

static int ld_volume(void *arg, const struct meta_format *f)
{
	struct ld *l = arg;

	l->f = *f;
	l->f.replicate = false; /* see dump.h: the store is shared */
	l->have_f = true;
	return 0;
}

static int ld_counter(void *arg, const char *name, uint64_t v)
{
	struct ld *l = arg;
	int rc = ld_txn(l);

	if (rc == 0)
		rc = meta_rec_counter_put(l->t, name, v);
	return ld_done(l, rc);
}

static int ld_quota(void *arg, uint64_t ino, uint64_t space_limit,
		    uint64_t inodes_limit)
{
	struct ld *l = arg;
	struct meta_quota *q = realloc(l->q, (l->nq + 1) * sizeof(*q));

	if (!q)
		return -ENOMEM;
	l->q = q;
	memset(&q[l->nq], 0, sizeof(*q));
	q[l->nq].ino = ino;
	q[l->nq].space_limit = space_limit;
	q[l->nq++].inodes_limit = inodes_limit;
	return 0;
}

/* Each quota in its own txn, its usage counted from the loaded tree. */
static int ld_quotas(struct ld *l)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < l->nq; i++) {
		rc = ld_txn(l);
		if (rc == 0)
			rc = quota_restore(l->t, l->q[i].ino,
					   l->q[i].space_limit,
					   l->q[i].inodes_limit);
		if (rc < 0)
			return log_fail(rc,
					"cannot put back the quota on "
					"directory %llu",
					(unsigned long long)l->q[i].ino);
		rc = ld_commit(l);
	}
	return rc;
}

static int put_xattrs(struct ld *l, const struct dump_inode *i)
{
	unsigned char k[8 + TESSERA_NAME_MAX];
	const unsigned char *p = i->xattrs, *end;
	int rc = 0;

	if (!p)
		return 0;
	end = p + i->xattrs_len;

	while (rc == 0 && p < end) {
		size_t nlen = p[0], klen, vlen;

		klen = key_name(k, i->a.ino, (const char *)p + 1, nlen);
		p += 1 + nlen;
		vlen = get_be32(p);
		p += 4;
		rc = kv_put(l->t, KV_XATTR, k, klen, p, vlen);
		p += vlen;
	}
	return rc;
}

static int ld_inode(void *arg, const struct dump_inode *i)
{
	struct ld *l = arg;
	struct inode_rec r;
	unsigned char k[8];
	int rc = ld_txn(l);

	memset(&r, 0, sizeof(r));
	r.a = i->a;
	r.next_cookie = i->next_cookie;
	r.alloc_unknown = (i->a.mode & S_IFMT) == S_IFREG && !i->alloc_known;
	if (rc == 0)
		rc = inode_put(l->t, &r);
	key_ino(k, i->a.ino);
	if (rc == 0 && i->target)
		rc = kv_put(l->t, KV_SYMLINK, k, sizeof(k), i->target,
			    i->target_len);
	if (rc == 0)
		rc = put_xattrs(l, i);
	return ld_done(l, rc);
}

static int ld_deleted(void *arg, uint64_t ino, uint64_t length)
{
	struct ld *l = arg;
	unsigned char k[8], v[8];
	int rc = ld_txn(l);

	key_ino(k, ino);
	put_be64(v, length);
	if (rc == 0)
		rc = kv_put(l->t, KV_DELFILE, k, sizeof(k), v, sizeof(v));
	return ld_done(l, rc);
}

static int ld_entry(void *arg, const struct dump_entry *e)
{
	struct ld *l = arg;
	struct dent d = {e->ino, e->type, e->cookie};
	int rc = ld_txn(l);

	if (rc == 0)
		rc = dent_put(l->t, e->parent, e->name, e->name_len, &d);
	return ld_done(l, rc);
}

static int ld_chunk(void *arg, uint64_t ino, uint32_t index,
		    const struct slice *s, size_t n)
{
	struct ld *l = arg;
	unsigned char k[12];
	int rc = ld_txn(l);

	buf_reset(&l->b);
	key_chunk(k, ino, index);
	if (rc == 0)
		rc = slices_append(&l->b, s, n);
	if (rc == 0)
		rc = kv_put(l->t, KV_CHUNK, k, sizeof(k),
			    l->b.data ? l->b.data : "", l->b.len);
	return ld_done(l, rc);
}

static int ld_sliceref(void *arg, uint64_t id, uint64_t refs)
{
	struct ld *l = arg;
	unsigned char k[8], v[8];
	int rc = ld_txn(l);

	put_be64(k, id);
	put_be64(v, refs);
	if (rc == 0)
		rc = kv_put(l->t, KV_SLICEREF, k, sizeof(k), v, sizeof(v));
	return ld_done(l, rc);
}

static int ld_pending(void *arg, uint64_t id, uint32_t size,
		      uint64_t deleted_at)
{
	struct ld *l = arg;
	int rc = ld_txn(l);

	if (rc == 0)
		rc = meta_rec_queue_slice(l->t, id, size, deleted_at);
	return ld_done(l, rc < 0 ? rc : 0);
}

static int ld_checkpoint(void *arg, const struct meta_ckpt *c)
{
	struct ld *l = arg;
	int rc = ld_txn(l);

	if (rc == 0)
		rc = meta_rec_ckpt_put(l->t, c);
	return ld_done(l, rc);
}

/* The settings, and the marker gone: the volume exists from here. */
static int ld_finish(struct ld *l)
{
	char *json;
	int rc = ld_commit(l);

	if (rc == 0)
		rc = ld_quotas(l);
	if (rc < 0)
		return rc;
	if (!l->have_f)
		return -EINVAL;
	json = meta_format_to_json(&l->f);
	if (!json)
		return -ENOMEM;
	rc = ld_txn(l);
	if (rc == 0)
		rc = kv_put(l->t, KV_SETTING, "volume", 6, json, strlen(json));
	if (rc == 0)
		rc = kv_del(l->t, KV_SETTING, LD_MARKER, strlen(LD_MARKER));
	free(json);
	if (rc == 0)
		rc = ld_commit(l);
	if (rc == 0)
		rc = kv_sync(l->kv);
	if (rc == -ENOSYS)
		rc = 0;
	return rc;
}

int meta_load(const char *url, const struct meta_load_opts *o,
	      meta_dump_read_fn r, void *arg, struct meta_dump_stats *st,
	      struct meta_dump_error *err)
{
	static const struct meta_load_opts defaults;
	const struct dump_sink sink = {
		.volume = ld_volume,
		.counter = ld_counter,
		.quota = ld_quota,
		.inode = ld_inode,
		.deleted = ld_deleted,
		.entry = ld_entry,
		.chunk = ld_chunk,
		.sliceref = ld_sliceref,
		.pending = ld_pending,
		.checkpoint = ld_checkpoint,
	};
	struct dump_sink s = sink;
	char red[1200];
	struct ld l;
	int rc, wrc;

	memset(&l, 0, sizeof(l));
	memset(err, 0, sizeof(*err));
	l.o = o ? o : &defaults;
	l.desc = url_redact(url, red, sizeof(red));
	s.arg = &l;
	rc = kv_open(url, true, &l.kv);
	if (rc < 0)
		return rc; /* logged by the engine */
	rc = claim(&l);
	if (rc < 0)
		goto out;
	rc = dump_parse(r, arg, &s, st, err);
	if (rc == 0)
		rc = ld_finish(&l);
	if (rc < 0) {
		if (l.t)
			kv_rollback(l.t);
		l.t = NULL;
		if (rc != -EINVAL) /* -EINVAL: the document, in err */
			log_fail(rc, "cannot load into '%s'", l.desc);
		wrc = kv_wipe(l.kv);
		if (wrc < 0)
			log_fail(wrc,
				 "cannot wipe '%s' after the failed load: "
				 "it holds part of a volume, which will not "
				 "mount; wipe it with `tessera load --force`",
				 l.desc);
	}
out:
	free(l.q);
	buf_release(&l.b);
	kv_close(l.kv);
	return rc;
}
