/*
 * meta.c - lifecycle of a struct meta: format, open, close, the volume
 * settings as JSON, the transaction runner, id batches, usage counters and
 * statfs.
 *
 * Transactions: every rule runs as a meta_txn_fn inside meta_txn(), which
 * retries on -EAGAIN (engine conflict or busy) with a randomized
 * exponential backoff capped at META_TXN_BACKOFF_MAX_US, with no bound on
 * the number of tries (DESIGN 7, promise 8): -EAGAIN means the engine
 * answered, so contention must wait, never become an application's EIO.
 * An outage is not -EAGAIN: the engines give -EIO after their own time
 * bounds (connect/command timeouts), and that is returned at once.  A txn
 * retrying for long logs a WARN every META_TXN_WARN_NS.  A function run by
 * it must start from scratch on every attempt, and must not return -EAGAIN
 * for a reason a retry cannot cure.
 *
 * Ids: inode numbers and slice ids come from the counters nextInode and
 * nextSlice, reserved META_INO_BATCH / META_SLICE_BATCH at a time.  A
 * counter holds the first id no client has reserved, so ids never repeat
 * (a crash only loses the rest of a batch).  Two threads that refill at
 * once keep the second batch as a spare instead of returning it.
 *
 * Usage: usedSpace / usedInodes change on almost every create, write and
 * unlink.  Updating them inside each transaction would make every pair of
 * writers conflict, so a struct meta collects committed deltas in memory and
 * adds them to the counters at most every META_STATS_FLUSH_NS (and at
 * statfs, sync and close).  Limits are checked against the last counter
 * values plus the local deltas; other clients' recent deltas may be missed
 * by up to a second.  A crash loses at most a second of deltas: the next
 * mount that cleans the dead session recounts them from the inodes when it
 * is the only session (meta_usage_recount), else fsck --repair does.
 * Each flush also rereads the settings, so a capacity, inode limit or
 * trash_days changed by `tessera config` binds the mounts from their next
 * flush (statfs flushes: df shows it at once).
 *
 * Lock: m->lock guards the settings copy, id pools, usage and the open-file
 * table; it is never held across a transaction.
 */
#include "util/common.h"
#include <jansson.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "meta/meta_int.h"
#include "meta/meta_scan.h"
#include "util/log.h"
#include "util/url.h"

#define META_TXN_BACKOFF_MIN_US 200	/* ceiling of the first backoff */
#define META_TXN_BACKOFF_MAX_US 51200	/* doubled up to here (<< 8) */
#define META_TXN_WARN_NS 10000000000LL /* WARN a long retry this often */
#define SETTING_KEY "volume"

int64_t meta_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep 50 us plus a random time below MIN << attempt, at most MAX. */
static void txn_backoff(unsigned int attempt)
{
	long max_us = META_TXN_BACKOFF_MAX_US;
	unsigned int r = 0;
	struct timespec ts;

	if (attempt < 8)
		max_us = (long)META_TXN_BACKOFF_MIN_US << attempt;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) < 0)
		r = (unsigned int)meta_now_ns();
	max_us = (long)(r % (unsigned long)max_us) + 50;
	ts.tv_sec = max_us / 1000000;
	ts.tv_nsec = (max_us % 1000000) * 1000;
	nanosleep(&ts, NULL);
}

int meta_txn(struct meta *m, bool rw, meta_txn_fn fn, void *arg)
{
	int64_t since = 0, warn_at = 0, now;
	unsigned int attempt = 0;
	struct kv_txn *t;
	int rc, res;

	for (;; attempt += attempt < 8) { /* no bound: see the top */
		rc = kv_begin(m->kv, rw, &t);
		if (rc == 0) {
			res = fn(m, t, arg);
			if (res < 0) {
				kv_rollback(t);
				rc = res;
			} else {
				rc = kv_commit(t);
				if (rc == 0) {
					atomic_fetch_add_explicit(
						&m->txns, 1,
						memory_order_relaxed);
					return res;
				}
			}
		}
		if (rc != -EAGAIN)
			return rc;
		atomic_fetch_add(&m->txn_retries, 1);
		now = mono_ns();
		if (!since) {
			since = now;
			warn_at = now + META_TXN_WARN_NS;
		} else if (now >= warn_at) {
			log_warn("metadata transaction on '%s' still "
				 "conflicting after %lld s: retrying",
				 m->desc, (long long)((now - since) / 1000000000));
			warn_at = now + META_TXN_WARN_NS;
		}
		txn_backoff(attempt);
	}
}

/* ---- ids ---- */

struct incr_arg {
	const char *name;
	int64_t delta;
	int64_t out;
};

static int incr_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct incr_arg *a = arg;

	(void)m;
	return kv_incr(t, a->name, a->delta, &a->out);
}

static int id_take(struct meta *m, struct meta_idpool *p, const char *counter,
		   uint64_t batch, uint64_t *out)
{
	struct incr_arg a = {counter, (int64_t)batch, 0};
	int rc;

	pthread_mutex_lock(&m->lock);
	for (;;) {
		if (p->next < p->end) {
			*out = p->next++;
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		if (p->spare_next < p->spare_end) {
			p->next = p->spare_next;
			p->end = p->spare_end;
			p->spare_next = p->spare_end = 0;
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		rc = meta_txn(m, true, incr_fn, &a);
		if (rc < 0)
			return rc;
		if (a.out < (int64_t)batch)
			return log_fail(-EIO, "counter %s of '%s' is corrupt",
					counter, m->desc);
		pthread_mutex_lock(&m->lock);
		if (p->next < p->end) {
			p->spare_next = (uint64_t)a.out - batch;
			p->spare_end = (uint64_t)a.out;
		} else {
			p->next = (uint64_t)a.out - batch;
			p->end = (uint64_t)a.out;
		}
	}
}

int meta_new_ino(struct meta *m, uint64_t *out)
{
	return id_take(m, &m->inos, "nextInode", META_INO_BATCH, out);
}

int meta_new_slice_id(struct meta *m, uint64_t *out)
{
	return id_take(m, &m->slices, "nextSlice", META_SLICE_BATCH, out);
}

void meta_forget_slice_ids(struct meta *m)
{
	pthread_mutex_lock(&m->lock);
	memset(&m->slices, 0, sizeof(m->slices));
	pthread_mutex_unlock(&m->lock);
}

/* ---- usage counters ---- */

struct flush_arg {
	int64_t space, inodes;
	int64_t out_space, out_inodes;
	struct meta_format f; /* the settings now, when have_f */
	bool have_f;
};

/* The volume's settings into a->f: limits changed by `tessera config`
 * reach the mounts with the counters (a damaged record: keep ours). */
static int settings_read(struct kv_txn *t, struct flush_arg *a)
{
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_SETTING, SETTING_KEY, strlen(SETTING_KEY), &v);

	a->have_f = rc == 0 &&
		    meta_format_from_json(v.data ? v.data : "", &a->f) == 0;
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}

static int flush_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct flush_arg *a = arg;
	int rc;

	(void)m;
	rc = kv_incr(t, "usedSpace", a->space, &a->out_space);
	if (rc == 0)
		rc = kv_incr(t, "usedInodes", a->inodes, &a->out_inodes);
	if (rc == 0)
		rc = settings_read(t, a);
	return rc;
}

static int counters_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct flush_arg *a = arg;
	struct buf v = BUF_INIT;
	int rc;

	(void)m;
	a->out_space = a->out_inodes = 0;
	rc = kv_get(t, KV_COUNTER, "usedSpace", 9, &v);
	if (rc == 0 && v.len == 8)
		a->out_space = (int64_t)get_be64((unsigned char *)v.data);
	if (rc == 0 || rc == -ENOENT)
		rc = kv_get(t, KV_COUNTER, "usedInodes", 10, &v);
	if (rc == 0 && v.len == 8)
		a->out_inodes = (int64_t)get_be64((unsigned char *)v.data);
	buf_release(&v);
	if (rc == 0 || rc == -ENOENT)
		rc = settings_read(t, a);
	return rc;
}

int meta_stats_flush(struct meta *m)
{
	struct flush_arg a = {0};
	int rc;

	pthread_mutex_lock(&m->lock);
	if (m->flushing) {
		pthread_mutex_unlock(&m->lock);
		return 0;
	}
	m->flushing = true;
	a.space = m->pend_space;
	a.inodes = m->pend_inodes;
	m->pend_space = m->pend_inodes = 0;
	pthread_mutex_unlock(&m->lock);

	if (a.space || a.inodes)
		rc = meta_txn(m, true, flush_fn, &a);
	else /* nothing to add: just refresh, without writing */
		rc = meta_txn(m, false, counters_fn, &a);

	pthread_mutex_lock(&m->lock);
	m->flushing = false;
	if (rc < 0) {
		m->pend_space += a.space;
		m->pend_inodes += a.inodes;
	} else {
		m->used_space = a.out_space;
		m->used_inodes = a.out_inodes;
		m->flushed_ns = meta_now_ns();
		if (a.have_f) {
			m->fmt.capacity = a.f.capacity;
			m->fmt.inodes = a.f.inodes;
			m->fmt.trash_days = a.f.trash_days;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

struct recount_arg {
	uint64_t sid; /* ours: the only session allowed */
	bool others;  /* out: another session exists */
	int64_t space, inodes;
};

static int recount_session(void *arg, const void *key, size_t klen,
			   const void *val, size_t vlen)
{
	struct recount_arg *a = arg;

	UNUSED(val);
	UNUSED(vlen);
	if (klen != 8 || get_be64(key) != a->sid)
		a->others = true;
	return 0;
}

static int recount_inode(void *arg, const void *key, size_t klen,
			 const void *val, size_t vlen)
{
	struct recount_arg *a = arg;
	struct inode_rec r;

	/* as fsck counts: every inode but the root and the trash; a
	 * corrupt one for its inode only */
	if (klen != 8 || get_be64(key) <= META_TRASH_INO)
		return 0;
	a->inodes++;
	if (inode_decode(val, vlen, &r) == 0)
		a->space += meta_space_of(&r.a);
	return 0;
}

static int recount_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct recount_arg *a = arg;
	int rc;

	UNUSED(m);
	a->others = false;
	a->space = a->inodes = 0;
	rc = kv_scan(t, KV_SESSION, NULL, 0, NULL, 0, 0, recount_session, a);
	if (rc < 0 || a->others)
		return rc;
	rc = kv_scan(t, KV_INODE, NULL, 0, NULL, 0, 0, recount_inode, a);
	if (rc == 0)
		rc = meta_rec_counter_put(t, "usedSpace", (uint64_t)a->space);
	if (rc == 0)
		rc = meta_rec_counter_put(t, "usedInodes", (uint64_t)a->inodes);
	return rc;
}

int meta_usage_recount(struct meta *m)
{
	struct recount_arg a = {m->sid, false, 0, 0};
	int rc = meta_txn(m, true, recount_fn, &a);

	if (rc < 0)
		return log_fail(rc, "cannot recount the usage of '%s'",
				m->desc);
	if (a.others) {
		log_info("usage counters of '%s' may miss a dead session's "
			 "last second: other sessions are live (fsck --repair "
			 "recounts)",
			 m->desc);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	m->used_space = a.space;
	m->used_inodes = a.inodes;
	m->pend_space = m->pend_inodes = 0;
	m->flushed_ns = meta_now_ns();
	pthread_mutex_unlock(&m->lock);
	log_info("recounted the usage of '%s' after a dead session: %lld "
		 "bytes, %lld inodes",
		 m->desc, (long long)a.space, (long long)a.inodes);
	return 0;
}

void meta_apply_effects(struct meta *m, const struct meta_effects *e)
{
	bool flush;

	if (e->space == 0 && e->inodes == 0)
		return;
	pthread_mutex_lock(&m->lock);
	m->pend_space += e->space;
	m->pend_inodes += e->inodes;
	flush = meta_now_ns() - m->flushed_ns > META_STATS_FLUSH_NS;
	pthread_mutex_unlock(&m->lock);
	if (flush)
		meta_stats_flush(m); /* failure: deltas stay pending */
}

int64_t meta_space_room(struct meta *m)
{
	int64_t room = INT64_MAX;

	pthread_mutex_lock(&m->lock);
	if (m->fmt.capacity)
		room = (int64_t)m->fmt.capacity - m->used_space - m->pend_space;
	pthread_mutex_unlock(&m->lock);
	return room < 0 ? 0 : room;
}

int meta_check_space(struct meta *m, int64_t space, int64_t inodes)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (space > 0 && m->fmt.capacity &&
	    m->used_space + m->pend_space + space > (int64_t)m->fmt.capacity)
		rc = -ENOSPC;
	if (inodes > 0 && m->fmt.inodes &&
	    m->used_inodes + m->pend_inodes + inodes > (int64_t)m->fmt.inodes)
		rc = -ENOSPC;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

uint32_t meta_trash_days(struct meta *m)
{
	uint32_t d;

	pthread_mutex_lock(&m->lock);
	d = m->fmt.trash_days;
	pthread_mutex_unlock(&m->lock);
	return d;
}

int meta_statfs(struct meta *m, struct meta_statfs *out)
{
	int64_t used, inodes;
	uint64_t cap, ilimit;

	meta_stats_flush(m); /* on failure report what we know */
	pthread_mutex_lock(&m->lock);
	used = m->used_space + m->pend_space;
	inodes = m->used_inodes + m->pend_inodes;
	cap = m->fmt.capacity ? m->fmt.capacity : META_DEFAULT_SPACE;
	ilimit = m->fmt.inodes ? m->fmt.inodes : META_DEFAULT_INODES;
	pthread_mutex_unlock(&m->lock);
	if (used < 0)
		used = 0;
	if (inodes < 0)
		inodes = 0;
	out->total_space = cap;
	out->avail_space = (uint64_t)used < cap ? cap - (uint64_t)used : 0;
	out->used_inodes = (uint64_t)inodes;
	out->avail_inodes =
	    (uint64_t)inodes < ilimit ? ilimit - (uint64_t)inodes : 0;
	return 0;
}

/* ---- settings JSON ---- */

char *meta_format_to_json(const struct meta_format *f)
{
	json_t *o = json_object();
	char *s;

	if (!o)
		return NULL;
	json_object_set_new(o, "name", json_string(f->name));
	json_object_set_new(o, "uuid", json_string(f->uuid));
	json_object_set_new(o, "storage", json_string(f->storage));
	json_object_set_new(o, "block_size", json_integer(f->block_size));
	json_object_set_new(o, "chunk_size",
			    json_integer((json_int_t)f->chunk_size));
	json_object_set_new(o, "compress", json_string(f->compress));
	json_object_set_new(o, "encrypt", json_string(f->encrypt));
	if (f->key_wrapped[0])
		json_object_set_new(o, "key_wrapped",
				    json_string(f->key_wrapped));
	json_object_set_new(o, "trash_days", json_integer(f->trash_days));
	json_object_set_new(o, "capacity",
			    json_integer((json_int_t)f->capacity));
	json_object_set_new(o, "inodes", json_integer((json_int_t)f->inodes));
	json_object_set_new(o, "version", json_integer(f->version));
	json_object_set_new(o, "created", json_integer(f->created_ns));
	json_object_set_new(o, "replicate", json_boolean(f->replicate));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Copy string member @key (absent: @def; NULL @def: required). */
static int json_str(json_t *o, const char *key, const char *def, char *dst,
		    size_t n)
{
	json_t *v = json_object_get(o, key);
	const char *s = def;

	if (v) {
		if (!json_is_string(v))
			return -EINVAL;
		s = json_string_value(v);
	}
	if (!s || strlen(s) >= n)
		return -EINVAL;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Integer member @key in [0, max] (absent: @def; @def < 0: required). */
static int json_num(json_t *o, const char *key, int64_t def, uint64_t max,
		    uint64_t *dst)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	if (!v) {
		if (def < 0)
			return -EINVAL;
		*dst = (uint64_t)def;
		return 0;
	}
	if (!json_is_integer(v))
		return -EINVAL;
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > max)
		return -EINVAL;
	*dst = (uint64_t)x;
	return 0;
}

static int format_check(const struct meta_format *f)
{
	if (!f->name[0] || f->chunk_size != TESSERA_CHUNK_SIZE)
		return -EINVAL;
	if (f->block_size < 4096 || f->block_size > f->chunk_size)
		return -EINVAL;
	if (strcmp(f->compress, "none") && strcmp(f->compress, "lz4") &&
	    strcmp(f->compress, "zstd"))
		return -EINVAL;
	if (strcmp(f->encrypt, "none") && strcmp(f->encrypt, "aes-256-gcm"))
		return -EINVAL;
	return 0;
}

int meta_format_from_json(const char *json, struct meta_format *out)
{
	struct meta_format f;
	uint64_t bs = 0, cs = 0, td = 0, ver = 0, created = 0;
	json_t *o = json_loads(json, 0, NULL);
	int rc = -EINVAL;

	if (!o)
		return -EINVAL;
	memset(&f, 0, sizeof(f));
	if (!json_is_object(o) ||
	    json_str(o, "name", NULL, f.name, sizeof(f.name)) ||
	    json_str(o, "uuid", NULL, f.uuid, sizeof(f.uuid)) ||
	    json_str(o, "storage", "", f.storage, sizeof(f.storage)) ||
	    json_str(o, "compress", "none", f.compress, sizeof(f.compress)) ||
	    json_str(o, "encrypt", "none", f.encrypt, sizeof(f.encrypt)) ||
	    json_str(o, "key_wrapped", "", f.key_wrapped,
		     sizeof(f.key_wrapped)) ||
	    json_num(o, "block_size", -1, UINT32_MAX, &bs) ||
	    json_num(o, "chunk_size", -1, UINT64_MAX, &cs) ||
	    json_num(o, "trash_days", 0, UINT32_MAX, &td) ||
	    json_num(o, "capacity", 0, INT64_MAX, &f.capacity) ||
	    json_num(o, "inodes", 0, INT64_MAX, &f.inodes) ||
	    json_num(o, "version", -1, UINT32_MAX, &ver) ||
	    json_num(o, "created", 0, INT64_MAX, &created))
		goto out;
	f.block_size = (uint32_t)bs;
	f.chunk_size = cs;
	f.trash_days = (uint32_t)td;
	f.version = (uint32_t)ver;
	f.created_ns = (int64_t)created;
	f.replicate = true;
	if (json_object_get(o, "replicate")) {
		if (!json_is_boolean(json_object_get(o, "replicate")))
			goto out;
		f.replicate = json_is_true(json_object_get(o, "replicate"));
	}
	if (format_check(&f) < 0 || f.version < 1)
		goto out;
	*out = f;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ---- format ---- */

static void uuid_new(char out[37])
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t r = getrandom(b + got, sizeof(b) - got, 0);

		if (r > 0)
			got += (size_t)r;
		else if (errno != EINTR)
			break;
	}
	for (; got < sizeof(b); got++) /* no entropy: still unique enough */
		b[got] = (unsigned char)(meta_now_ns() >> (got % 8 * 8));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int put_counter(struct kv_txn *t, const char *name, int64_t v)
{
	unsigned char enc[8];

	put_be64(enc, (uint64_t)v);
	return kv_put(t, KV_COUNTER, name, strlen(name), enc, sizeof(enc));
}

static void dir_rec(struct inode_rec *r, uint64_t ino, uint32_t mode,
		    int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->a.ino = ino;
	r->a.mode = S_IFDIR | mode;
	r->a.uid = (uint32_t)getuid();
	r->a.gid = (uint32_t)getgid();
	r->a.nlink = 2;
	r->a.atime_ns = r->a.mtime_ns = r->a.ctime_ns = now;
	r->a.parent = TESSERA_ROOT_INO;
	r->next_cookie = META_COOKIE_FIRST;
}

struct format_arg {
	const struct meta_format *f;
	const char *json;
	bool force;
};

static int format_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct format_arg *a = arg;
	struct buf v = BUF_INIT;
	struct inode_rec r;
	int rc;

	(void)m;
	rc = kv_get(t, KV_SETTING, SETTING_KEY, strlen(SETTING_KEY), &v);
	buf_release(&v);
	if (rc == 0 && !a->force)
		return -EEXIST;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	rc = kv_put(t, KV_SETTING, SETTING_KEY, strlen(SETTING_KEY), a->json,
		    strlen(a->json));
	dir_rec(&r, TESSERA_ROOT_INO, 0755, a->f->created_ns);
	if (rc == 0)
		rc = inode_put(t, &r);
	dir_rec(&r, META_TRASH_INO, 0555, a->f->created_ns);
	if (rc == 0)
		rc = inode_put(t, &r);
	if (rc == 0)
		rc = put_counter(t, "nextInode", META_TRASH_INO + 1);
	if (rc == 0)
		rc = put_counter(t, "nextSlice", 1);
	if (rc == 0)
		rc = put_counter(t, "nextSession", 1);
	if (rc == 0)
		rc = put_counter(t, "txnSeq", 0);
	if (rc == 0)
		rc = put_counter(t, "usedSpace", 0);
	if (rc == 0)
		rc = put_counter(t, "usedInodes", 0);
	return rc;
}

static void format_defaults(struct meta_format *f)
{
	if (!f->block_size)
		f->block_size = TESSERA_BLOCK_SIZE;
	if (!f->chunk_size)
		f->chunk_size = TESSERA_CHUNK_SIZE;
	if (!f->compress[0])
		snprintf(f->compress, sizeof(f->compress), "none");
	if (!f->encrypt[0])
		snprintf(f->encrypt, sizeof(f->encrypt), "none");
	if (!f->version)
		f->version = 1;
}

int meta_format(const char *url, struct meta_format *f, bool force)
{
	struct meta tmp;
	struct format_arg a = {f, NULL, force};
	char red[1200];
	char *json = NULL;
	int rc;

	url_redact(url, red, sizeof(red));
	format_defaults(f);
	if (!f->uuid[0])
		uuid_new(f->uuid);
	f->created_ns = meta_now_ns();
	if (format_check(f) < 0)
		return log_fail(-EINVAL, "invalid settings for volume '%s'",
				f->name);
	memset(&tmp, 0, sizeof(tmp));
	url_redact(url, tmp.desc, sizeof(tmp.desc));
	rc = kv_open(url, true, &tmp.kv);
	if (rc < 0)
		return rc; /* logged by the engine */
	if (force) {
		rc = kv_wipe(tmp.kv);
		if (rc < 0) {
			log_fail(rc, "cannot wipe '%s'", red);
			goto out;
		}
	}
	json = meta_format_to_json(f);
	if (!json) {
		rc = -ENOMEM;
		goto out;
	}
	a.json = json;
	rc = meta_txn(&tmp, true, format_fn, &a);
	if (rc == -EEXIST)
		log_error("cannot format '%s': it already holds a volume "
			  "(use --force to overwrite it)",
			  red);
	else if (rc < 0)
		log_fail(rc, "cannot format '%s'", red);
out:
	free(json);
	kv_close(tmp.kv);
	return rc;
}

/* ---- open / close ---- */

struct load_arg {
	struct meta_format *f;
};

static int load_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct load_arg *a = arg;
	struct buf v = BUF_INIT;
	int rc;

	rc = kv_get(t, KV_SETTING, SETTING_KEY, strlen(SETTING_KEY), &v);
	if (rc == 0 && meta_format_from_json(v.data ? v.data : "", a->f) < 0)
		rc = log_fail(-EIO, "corrupt volume settings in '%s'", m->desc);
	buf_release(&v);
	return rc;
}

int meta_load_format(struct meta *m, struct meta_format *out)
{
	struct load_arg a = {out};
	int rc = meta_txn(m, false, load_fn, &a);

	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		m->fmt = *out;
		pthread_mutex_unlock(&m->lock);
	}
	return rc;
}

static int store_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	const char *json = arg;

	(void)m;
	return kv_put(t, KV_SETTING, SETTING_KEY, strlen(SETTING_KEY), json,
		      strlen(json));
}

int meta_store_format(struct meta *m, const struct meta_format *f)
{
	char *json;
	int rc;

	if (format_check(f) < 0)
		return -EINVAL;
	json = meta_format_to_json(f);
	if (!json)
		return -ENOMEM;
	rc = meta_txn(m, true, store_fn, json);
	free(json);
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		m->fmt = *f;
		pthread_mutex_unlock(&m->lock);
	}
	return rc;
}

/* 1 when the marker of an unfinished load (load.c) is there. */
static int marker_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	(void)m;
	(void)arg;
	return meta_rec_load_marker(t);
}

/* Load and check the settings of a new struct meta.  Logs. */
static int meta_open_check(struct meta *m)
{
	struct meta_format f;
	int rc = meta_load_format(m, &f);

	if (rc == -ENOENT && meta_txn(m, false, marker_fn, NULL) == 1) {
		log_error("no volume in '%s': a `tessera load` into it did not "
			  "finish (or still runs)", m->desc);
		return rc;
	}
	if (rc == -ENOENT) {
		log_error("no volume in '%s' (format it first)", m->desc);
		return rc;
	}
	if (rc < 0)
		return rc;
	if (f.version != 1)
		return log_fail(-EINVAL, "volume in '%s' has format version %u",
				m->desc, f.version);
	return meta_stats_flush(m);
}

static struct meta *meta_alloc(const char *desc)
{
	struct meta *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	snprintf(m->desc, sizeof(m->desc), "%s", desc);
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->open_lock, NULL);
	return m;
}

static void meta_dealloc(struct meta *m)
{
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->open_lock);
	free(m);
}

int meta_open(const char *url, struct meta **out)
{
	char red[512];
	struct meta *m;
	int rc;

	url_redact(url, red, sizeof(red));
	m = meta_alloc(red);
	if (!m)
		return -ENOMEM;
	rc = kv_open(url, false, &m->kv);
	if (rc < 0)
		goto fail; /* logged by the engine */
	rc = meta_open_check(m);
	if (rc < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	kv_close(m->kv);
	meta_dealloc(m);
	return rc;
}

int meta_open_kv(struct kv_engine *kv, const char *desc, struct meta **out)
{
	struct meta *m = meta_alloc(desc ? desc : kv->desc);
	int rc;

	if (!m)
		return -ENOMEM;
	m->kv = kv;
	rc = meta_open_check(m);
	if (rc < 0) {
		meta_dealloc(m);
		return rc;
	}
	*out = m;
	return 0;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	meta_stats_flush(m);
	/* nothing holds an inode now: session end deletes every sustained */
	meta_open_table_free(m);
	meta_session_end(m);
	kv_close(m->kv);
	meta_dealloc(m);
}

int meta_sync(struct meta *m)
{
	meta_stats_flush(m);
	return kv_sync(m->kv);
}

struct kv_engine *meta_engine(struct meta *m)
{
	return m->kv;
}

uint64_t meta_txn_count(struct meta *m)
{
	return (uint64_t)atomic_load(&m->txns);
}

uint64_t meta_txn_retries(struct meta *m)
{
	return (uint64_t)atomic_load(&m->txn_retries);
}
