/*
 * repl_engine.c - the replicating kv engine: a wrapper in front of the real
 * engine that ships every committed change to the object store.
 *
 * Why logical replication (records at the kv layer) and not physical (WAL
 * frames, as Litestream does): kv.h already sees every committed put and
 * delete, so no SQLite internals (WAL format, checkpoints, page size) are
 * involved; segments hold only the changed records, not whole 4 KiB pages,
 * so they are small; the format is schema-agnostic and would work in front
 * of any engine.  The price: a change made to the database beside the
 * wrapper is not seen (every writer must go through it), which the seq
 * counter below detects when the other writer is a wrapper too.
 *
 * Sequence: each read-write txn that changed something puts counter
 * REPL_SEQ_COUNTER = previous + 1 inside the txn itself, so the database
 * knows the last sequence it contains and a restore can tell where it is.
 * commit_lock is held across "read replSeq, inner commit, append to the
 * current segment", so segment order is commit order and seqs are dense.
 *
 * States of the shipped history (all guarded by lock):
 *   need_base   the generation has no stored snapshot yet: the shipper takes
 *               one before shipping any segment of it; kv_sync waits for it.
 *   cur         txns committed but not cut into a segment yet.
 *   fly         the segment being uploaded (retried until stored; never
 *               re-cut, so a retry writes the same key with the same bytes).
 *   shipped_seq every txn <= it is stored and synced in generation gen.
 * Invariants: cur and fly each hold dense, ordered seqs; once need_base
 * is clear, every txn > shipped_seq is in fly or cur.  Setting need_base
 * (a broken history, or a txn that could not be kept) empties cur and bumps
 * base_epoch; a snapshot clears need_base only if no bump happened since it
 * began, so its seq S covers every txn missing from cur, and dropping the
 * txns <= S from cur restores the invariant.
 *
 * Generation rule (documented in repl.h's spirit, as Litestream does):
 * replication continues a stored generation G only when the local database
 * says it ships to G (KV_SETTING REPL_GEN_SETTING), G is the newest stored
 * generation with a snapshot, and G's unbroken history (newest snapshot plus
 * following segments) ends exactly at the local replSeq.  Anything else
 * (a restored or copied database, txns committed but lost before shipping
 * by a crash, another writer) may have diverged: a new generation starts,
 * and its first snapshot is its base.  While running, a commit that finds
 * replSeq different from the last seq this wrapper committed, or kv_wipe,
 * also starts a new generation.  Generation ids are 16 hex digits: the
 * upper 48 bits are the start time in ms, the lower 16 random, and a new id
 * is always above every id seen, so "newest" is simply the largest id
 * (restore needs no clock agreement beyond that).
 *
 * Threads: application threads run txns; one shipper thread uploads
 * segments and snapshots, renews the lease and applies retention.  Lock
 * order: commit_lock, then lock.  No mutex is held across object store I/O
 * or an inner txn, except commit_lock across the inner commit (that is its
 * purpose).  The shipper only ever opens read-only inner txns, so an
 * application thread holding an inner write txn while waiting for the
 * shipper (kv_sync, back pressure) cannot deadlock it.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RP_LAG_MS 1000
#define RP_SYNC_TIMEOUT_MS 30000
#define RP_SNAP_TXNS UINT64_MAX /* by bytes, not by count */
#define RP_SNAP_MIN_BYTES (16 * 1024 * 1024)
#define RP_SNAP_INTERVAL_MS 600000
#define RP_KEEP_SNAPSHOTS 2
#define RP_SEG_BYTES (4 * 1024 * 1024)
#define RP_PENDING_BYTES (64 * 1024 * 1024)
#define RP_LEASE_TTL_MS 30000
#define RP_BACKOFF_MIN_MS 100
#define RP_BACKOFF_MAX_MS 5000

struct repl_engine {
	struct kv_engine base;
	struct kv_engine *inner;
	struct obj_store *store;
	char vol[TESSERA_NAME_MAX + 1];
	struct repl_conf conf;
	pthread_t shipper;

	pthread_mutex_t commit_lock; /* inner commit + append */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* to the shipper: work may be due */
	pthread_cond_t done; /* from the shipper: progress or failure */

	/* All below guarded by lock. */
	char gen[REPL_GEN_SIZE];
	struct repl_seg cur;
	struct repl_seg fly;
	uint64_t committed_seq;
	uint64_t shipped_seq;
	uint64_t snap_seq;
	uint64_t nsegments, nsnapshots; /* stored by this process */
	int64_t snap_mono_ms; /* when the last snapshot was taken */
	uint64_t snap_raw;    /* record bytes of the last snapshot */
	uint64_t since_snap;  /* record bytes committed since */
	uint64_t flush_upto;  /* kv_sync/close want shipped_seq >= this */
	uint64_t snap_req;    /* repl_snapshot calls... */
	uint64_t snap_done;   /* ...and snapshots taken since */
	bool need_base;
	uint64_t base_epoch; /* bumped each time need_base is set */
	bool lost;	     /* lease taken by someone else */
	bool stop;	     /* shipper: exit now */
	int last_error;
	int64_t retry_mono_ms; /* no upload before this (backoff) */
	uint32_t backoff_ms;
	int64_t lease_mono_ms; /* next lease renewal */
	uint64_t verified_seq; /* kv_sync saw the lease ours after this was
				* stored */
};

struct repl_txn {
	struct kv_txn base;
	struct kv_txn *inner;
	struct buf recs; /* txn body (repl_int.h format) */
	uint32_t nrec;
	int err; /* recording failed: commit must fail */
};

static const struct kv_engine_ops repl_ops;

static struct repl_engine *rp_eng(struct kv_engine *e)
{
	return (struct repl_engine *)e;
}

static struct repl_txn *rp_tx(struct kv_txn *t)
{
	return (struct repl_txn *)t;
}

bool repl_is_wrapper(const struct kv_engine *e)
{
	return e && e->ops == &repl_ops;
}

static void rp_conf_defaults(struct repl_conf *c)
{
	if (!c->max_lag_ms)
		c->max_lag_ms = RP_LAG_MS;
	if (!c->sync_timeout_ms)
		c->sync_timeout_ms = RP_SYNC_TIMEOUT_MS;
	if (!c->snapshot_txns)
		c->snapshot_txns = RP_SNAP_TXNS;
	if (!c->snapshot_interval_ms)
		c->snapshot_interval_ms = RP_SNAP_INTERVAL_MS;
	if (!c->keep_snapshots)
		c->keep_snapshots = RP_KEEP_SNAPSHOTS;
	if (!c->max_segment_bytes)
		c->max_segment_bytes = RP_SEG_BYTES;
	if (!c->max_pending_bytes)
		c->max_pending_bytes = RP_PENDING_BYTES;
	if (!c->holder.proc.host[0])
		repl_holder_init(&c->holder);
	if (!c->holder.ttl_ms)
		c->holder.ttl_ms = RP_LEASE_TTL_MS;
}

/* Wait on @cv until @deadline_ms (monotonic).  Caller holds r->lock. */
static void rp_wait(struct repl_engine *r, pthread_cond_t *cv,
		    int64_t deadline_ms)
{
	struct timespec ts;

	ts.tv_sec = deadline_ms / 1000;
	ts.tv_nsec = (deadline_ms % 1000) * 1000000;
	pthread_cond_timedwait(cv, &r->lock, &ts);
}

static uint64_t rp_random(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint64_t)repl_mono_ms() ^ ((uint64_t)getpid() << 32);
	return v;
}

/* A new generation id above @floor (see the generation rule above). */
static void rp_new_gen_id(uint64_t floor, char out[REPL_GEN_SIZE])
{
	uint64_t id = ((uint64_t)repl_now_ms() << 16) | (rp_random() & 0xffff);

	if (id <= floor)
		id = floor + 1 + (rp_random() & 0xff);
	repl_gen_from_u64(id, out);
}

/*
 * The shipped history broke: the next snapshot must be a base.  Caller
 * holds lock.
 */
static void rp_need_base(struct repl_engine *r)
{
	r->need_base = true;
	r->base_epoch++;
	r->shipped_seq = 0;
	repl_seg_reset(&r->cur);
	pthread_cond_signal(&r->wake);
}

/* ---- transactions ---- */

static int rp_begin(struct kv_engine *e, bool rw, struct kv_txn **out)
{
	struct repl_engine *r = rp_eng(e);
	struct repl_txn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	rc = kv_begin(r->inner, rw, &t->inner);
	if (rc < 0) {
		free(t);
		return rc;
	}
	t->base.eng = e;
	t->base.rw = rw;
	buf_init(&t->recs);
	*out = &t->base;
	return 0;
}

static int rp_get(struct kv_txn *kt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	return kv_get(rp_tx(kt)->inner, grp, key, klen, val);
}

static int rp_scan(struct kv_txn *kt, int grp, const void *prefix, size_t plen,
		   const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		   void *arg)
{
	return kv_scan(rp_tx(kt)->inner, grp, prefix, plen, start, slen, limit,
		       fn, arg);
}

/* Remember one change of @t for shipping. */
static int rp_record(struct repl_txn *t, int op, int grp, const void *key,
		     size_t klen, const void *val, size_t vlen)
{
	int rc = 0;

	if (t->nrec == 0 && t->recs.len == 0)
		rc = repl_txn_start(&t->recs);
	if (rc == 0)
		rc = repl_txn_add(&t->recs, op, grp, key, klen, val, vlen);
	if (rc < 0) {
		if (!t->err)
			t->err = rc;
		return rc;
	}
	t->nrec++;
	return 0;
}

static int rp_put(struct kv_txn *kt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	struct repl_txn *t = rp_tx(kt);
	int rc = kv_put(t->inner, grp, key, klen, val, vlen);

	if (rc == 0 && kt->rw)
		rc = rp_record(t, REPL_OP_PUT, grp, key, klen, val, vlen);
	return rc;
}

static int rp_del(struct kv_txn *kt, int grp, const void *key, size_t klen)
{
	struct repl_txn *t = rp_tx(kt);
	int rc = kv_del(t->inner, grp, key, klen);

	if (rc == 0 && kt->rw)
		rc = rp_record(t, REPL_OP_DEL, grp, key, klen, NULL, 0);
	return rc;
}

static void rp_txn_free(struct repl_txn *t)
{
	buf_release(&t->recs);
	free(t);
}

static void rp_rollback(struct kv_txn *kt)
{
	struct repl_txn *t = rp_tx(kt);

	kv_rollback(t->inner);
	rp_txn_free(t);
}

/*
 * Before a commit: -EROFS once the lease is lost; wait while too much is
 * unshipped (the store is down or slow), -EIO after the bound.
 */
static int rp_wait_room(struct repl_engine *r)
{
	int64_t deadline = repl_mono_ms() + r->conf.sync_timeout_ms;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->lost && !r->stop &&
	       r->cur.body.len + r->fly.body.len > r->conf.max_pending_bytes &&
	       repl_mono_ms() < deadline) {
		pthread_cond_signal(&r->wake);
		rp_wait(r, &r->done, deadline);
	}
	if (r->lost)
		rc = -EROFS;
	else if (r->cur.body.len + r->fly.body.len > r->conf.max_pending_bytes)
		rc = log_fail(-EIO,
			      "metadata of volume '%s': %zu bytes wait "
			      "for the object store",
			      r->vol, r->cur.body.len + r->fly.body.len);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/*
 * Record bytes committed since the last snapshot that make the next one
 * due: as many as that snapshot held (replaying the segments then costs
 * about what loading it does), at least RP_SNAP_MIN_BYTES.  A snapshot
 * dumps the whole database, so taking one every N txns made a create
 * loop's cost grow with the volume's size.  Caller holds r->lock.
 */
static uint64_t rp_snap_bytes(const struct repl_engine *r)
{
	return MAX(r->snap_raw, (uint64_t)RP_SNAP_MIN_BYTES);
}

/*
 * Put the next seq into @t (and, when the history broke, the id of a new
 * generation), commit it, append its records.  Caller holds commit_lock.
 */
static int rp_commit_locked(struct repl_engine *r, struct repl_txn *t)
{
	char gen[REPL_GEN_SIZE] = "";
	uint64_t prev, seq;
	bool snap_crossed;
	int rc = meta_rec_counter_get(t->inner, REPL_SEQ_COUNTER, &prev);

	seq = prev + 1;
	if (rc == 0)
		rc = meta_rec_counter_put(t->inner, REPL_SEQ_COUNTER, seq);
	pthread_mutex_lock(&r->lock);
	if (prev != r->committed_seq)
		rp_new_gen_id(repl_gen_to_u64(r->gen), gen);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && gen[0])
		rc = kv_put(t->inner, KV_SETTING, REPL_GEN_SETTING,
			    strlen(REPL_GEN_SETTING), gen, REPL_GEN_LEN);
	if (rc < 0) {
		kv_rollback(t->inner);
		return rc;
	}
	rc = kv_commit(t->inner);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&r->lock);
	if (gen[0]) {
		log_warn("metadata of volume '%s' was changed outside "
			 "replication (txn %llu, expected %llu): starting "
			 "generation %s",
			 r->vol, (unsigned long long)prev,
			 (unsigned long long)r->committed_seq, gen);
		memcpy(r->gen, gen, REPL_GEN_SIZE);
		rp_need_base(r);
	}
	if (repl_seg_append(&r->cur, &t->recs, t->nrec, seq) < 0) {
		/* Committed but not kept: only a snapshot can cover it. */
		log_error("metadata of volume '%s': cannot keep txn %llu for "
			  "shipping: taking a snapshot instead",
			  r->vol, (unsigned long long)seq);
		rp_need_base(r);
	}
	r->committed_seq = seq;
	r->since_snap += t->recs.len;
	snap_crossed = r->since_snap >= rp_snap_bytes(r) &&
		       r->since_snap - t->recs.len < rp_snap_bytes(r);
	/* The first txn of a segment starts its max_lag_ms clock. */
	if (r->need_base || r->cur.ntxn == 1 ||
	    r->cur.body.len >= r->conf.max_segment_bytes ||
	    seq - r->snap_seq == r->conf.snapshot_txns ||
	    snap_crossed)
		pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static int rp_commit(struct kv_txn *kt)
{
	struct repl_engine *r = rp_eng(kt->eng);
	struct repl_txn *t = rp_tx(kt);
	int rc;

	if (!kt->rw || t->nrec == 0) {
		rc = kv_commit(t->inner);
		rp_txn_free(t);
		return rc;
	}
	rc = t->err;
	if (rc == 0)
		rc = rp_wait_room(r);
	if (rc < 0) {
		rp_rollback(kt);
		return rc;
	}
	pthread_mutex_lock(&r->commit_lock);
	rc = rp_commit_locked(r, t);
	pthread_mutex_unlock(&r->commit_lock);
	rp_txn_free(t);
	return rc;
}

/* ---- waiting for the shipper ---- */

/*
 * Ask the shipper to store every txn up to committed_seq and wait for it,
 * at most sync_timeout_ms.  0, -EROFS (lease lost) or -EIO.
 */
static int rp_flush(struct repl_engine *r, const char *why, uint64_t *upto)
{
	int64_t deadline = repl_mono_ms() + r->conf.sync_timeout_ms;
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	target = r->committed_seq;
	if (upto)
		*upto = target;
	if (r->flush_upto < target)
		r->flush_upto = target;
	pthread_cond_signal(&r->wake);
	while (!r->lost && (r->shipped_seq < target || r->need_base) &&
	       repl_mono_ms() < deadline)
		rp_wait(r, &r->done, deadline);
	if (r->lost) {
		rc = -EROFS;
	} else if (r->shipped_seq < target || r->need_base) {
		rc = -EIO;
		log_error("%s of volume '%s': txn %llu is not in '%s' after "
			  "%u ms%s%s",
			  why, r->vol, (unsigned long long)target,
			  obj_describe(r->store), r->conf.sync_timeout_ms,
			  r->last_error ? ": " : "",
			  r->last_error ? strerror(-r->last_error) : "");
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/*
 * After txns up to @seq were stored: read the lease back.  Had another
 * host taken it before, that host may have restored without them, so the
 * sync must not acknowledge them; had it taken it after, its restore lists
 * them.  One GET per sync that shipped something new.
 */
static int rp_verify_lease(struct repl_engine *r, uint64_t seq)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = r->lost ? -EROFS : 0;
	if (seq <= r->verified_seq)
		seq = 0;
	pthread_mutex_unlock(&r->lock);
	if (rc < 0 || seq == 0)
		return rc;
	rc = repl_lease_check(r->store, r->vol, &r->conf.holder);
	pthread_mutex_lock(&r->lock);
	if (rc == -EBUSY) {
		r->lost = true; /* logged by repl_lease_check */
		pthread_cond_broadcast(&r->done);
		rc = -EROFS;
	} else if (rc < 0) {
		rc = log_fail(-EIO, "sync of volume '%s': cannot read its lease",
			      r->vol);
	} else if (seq > r->verified_seq) {
		r->verified_seq = seq;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static int rp_sync(struct kv_engine *e)
{
	struct repl_engine *r = rp_eng(e);
	uint64_t seq = 0;
	int rc = rp_flush(r, "sync", &seq);

	if (rc == 0)
		rc = rp_verify_lease(r, seq);
	if (rc == 0)
		rc = kv_sync(r->inner);
	return rc;
}

int repl_snapshot(struct kv_engine *e, uint64_t *seq)
{
	struct repl_engine *r;
	int64_t deadline;
	uint64_t want;
	int rc = 0;

	if (!repl_is_wrapper(e))
		return -EINVAL;
	r = rp_eng(e);
	deadline = repl_mono_ms() + r->conf.sync_timeout_ms;
	pthread_mutex_lock(&r->lock);
	want = ++r->snap_req;
	pthread_cond_signal(&r->wake);
	while (!r->lost && r->snap_done < want && repl_mono_ms() < deadline)
		rp_wait(r, &r->done, deadline);
	if (r->lost)
		rc = -EROFS;
	else if (r->snap_done < want)
		rc = log_fail(r->last_error ? r->last_error : -EIO,
			      "cannot snapshot the metadata of volume '%s'",
			      r->vol);
	else if (seq)
		*seq = r->snap_seq;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int repl_status(struct kv_engine *e, struct repl_status *out)
{
	struct repl_engine *r;
	int64_t oldest = 0;

	if (!repl_is_wrapper(e))
		return -EINVAL;
	r = rp_eng(e);
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->lock);
	memcpy(out->generation, r->gen, REPL_GEN_SIZE);
	out->committed_seq = r->committed_seq;
	out->shipped_seq = r->shipped_seq;
	out->snapshot_seq = r->snap_seq;
	out->pending_bytes = r->cur.body.len + r->fly.body.len;
	out->lease_lost = r->lost;
	out->last_error = r->last_error;
	out->segments_shipped = r->nsegments;
	out->snapshots_shipped = r->nsnapshots;
	if (r->fly.ntxn)
		oldest = r->fly.started_ms;
	else if (r->cur.ntxn)
		oldest = r->cur.started_ms;
	if (r->committed_seq > r->shipped_seq && oldest)
		out->lag_ms = (uint64_t)MAX(0, repl_mono_ms() - oldest);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* ---- the shipper ---- */

/* An upload failed: remember it and back off.  Caller holds lock. */
static void rp_failed(struct repl_engine *r, int rc)
{
	r->last_error = rc;
	r->backoff_ms = r->backoff_ms
			    ? MIN(r->backoff_ms * 2, RP_BACKOFF_MAX_MS)
			    : RP_BACKOFF_MIN_MS;
	r->retry_mono_ms = repl_mono_ms() + r->backoff_ms;
	pthread_cond_broadcast(&r->done); /* waiters may report it */
}

static void rp_succeeded(struct repl_engine *r)
{
	if (r->last_error)
		log_info("metadata of volume '%s': object store '%s' works "
			 "again",
			 r->vol, obj_describe(r->store));
	r->last_error = 0;
	r->backoff_ms = 0;
	r->retry_mono_ms = 0;
}

static void rp_delete(struct repl_engine *r, const char *key)
{
	int rc = obj_del(r->store, key);

	if (rc < 0 && rc != -ENOENT)
		log_warn("cannot delete '%s' (retention): %s", key,
			 strerror(-rc));
}

/* Delete every object of generation @g. */
static void rp_drop_gen(struct repl_engine *r, const struct repl_gen *g)
{
	char key[OBJ_KEY_MAX + 1];

	for (size_t i = 0; i < g->nsegs; i++)
		if (repl_key_seg(key, sizeof(key), r->vol, g->id, g->segs[i].a,
				 g->segs[i].b) == 0)
			rp_delete(r, key);
	for (size_t i = 0; i < g->nsnaps; i++)
		if (repl_key_snap(key, sizeof(key), r->vol, g->id,
				  g->snaps[i].a) == 0)
			rp_delete(r, key);
}

/*
 * Retention after a snapshot of generation @gen: keep the newest
 * keep_snapshots snapshots; delete the segments wholly covered by the
 * oldest kept one (so every kept snapshot can still be rolled forward to
 * the newest txn, and a damaged newest snapshot is not fatal); once @gen
 * has all its kept snapshots, delete older generations.  Runs in the
 * shipper without the lock; failures only cost space.
 */
static void rp_retention(struct repl_engine *r, const char *gen)
{
	char key[OBJ_KEY_MAX + 1];
	struct repl_listing l;
	const struct repl_gen *g = NULL;
	size_t keep = r->conf.keep_snapshots, cut;
	uint64_t oldest;

	if (repl_list(r->store, r->vol, &l) < 0)
		return;
	for (size_t i = 0; i < l.ngens; i++)
		if (strcmp(l.gens[i].id, gen) == 0)
			g = &l.gens[i];
	if (!g || g->nsnaps == 0)
		goto out;
	cut = g->nsnaps > keep ? g->nsnaps - keep : 0;
	for (size_t i = 0; i < cut; i++)
		if (repl_key_snap(key, sizeof(key), r->vol, gen,
				  g->snaps[i].a) == 0)
			rp_delete(r, key);
	oldest = g->snaps[cut].a;
	for (size_t i = 0; i < g->nsegs; i++)
		if (g->segs[i].b <= oldest &&
		    repl_key_seg(key, sizeof(key), r->vol, gen, g->segs[i].a,
				 g->segs[i].b) == 0)
			rp_delete(r, key);
	if (g->nsnaps < keep)
		goto out;
	for (size_t i = 0; i < l.ngens; i++)
		if (strcmp(l.gens[i].id, gen) < 0)
			rp_drop_gen(r, &l.gens[i]);
out:
	repl_listing_release(&l);
}

/* Take and store a snapshot.  Called and returns with lock held. */
static void rp_take_snapshot(struct repl_engine *r)
{
	char gen[REPL_GEN_SIZE], key[OBJ_KEY_MAX + 1];
	struct repl_snap_info info;
	struct buf obj = BUF_INIT;
	uint64_t req = r->snap_req, epoch = r->base_epoch;
	int rc;

	memcpy(gen, r->gen, REPL_GEN_SIZE);
	pthread_mutex_unlock(&r->lock);
	rc = repl_snap_dump(r->inner, gen, &obj, &info);
	if (rc == 0)
		rc = repl_key_snap(key, sizeof(key), r->vol, gen, info.seq);
	if (rc == 0)
		rc = repl_put_durable(r->store, key, obj.data, obj.len);
	buf_release(&obj);
	if (rc == 0)
		log_info("stored snapshot '%s' (%llu records)", key,
			 (unsigned long long)info.records);
	pthread_mutex_lock(&r->lock);
	if (rc < 0) {
		if (rc != r->last_error)
			log_warn("cannot store a snapshot of the metadata of "
				 "volume '%s' in '%s': %s (retrying)",
				 r->vol, obj_describe(r->store), strerror(-rc));
		rp_failed(r, rc);
		return;
	}
	rp_succeeded(r);
	r->nsnapshots++;
	if (epoch != r->base_epoch)
		return; /* the history broke meanwhile: snapshot again */
	r->need_base = false;
	r->snap_seq = info.seq;
	r->snap_mono_ms = repl_mono_ms();
	r->snap_raw = info.raw_len;
	r->since_snap = 0;
	r->shipped_seq = MAX(r->shipped_seq, info.seq);
	repl_seg_drop_upto(&r->cur, info.seq);
	if (r->fly.ntxn && r->fly.last <= info.seq)
		repl_seg_reset(&r->fly);
	pthread_cond_broadcast(&r->done);
	pthread_mutex_unlock(&r->lock);
	rp_retention(r, gen);
	pthread_mutex_lock(&r->lock);
	/* repl_snapshot() callers wait for the retention too. */
	if (r->snap_done < req)
		r->snap_done = req;
	pthread_cond_broadcast(&r->done);
}

/* Upload the cut segment fly.  Called and returns with lock held. */
static void rp_ship(struct repl_engine *r)
{
	char gen[REPL_GEN_SIZE], key[OBJ_KEY_MAX + 1];
	struct buf obj = BUF_INIT;
	uint64_t last = r->fly.last;
	int rc;

	memcpy(gen, r->gen, REPL_GEN_SIZE);
	pthread_mutex_unlock(&r->lock);
	/* fly belongs to the shipper: no lock needed to read it. */
	rc = repl_key_seg(key, sizeof(key), r->vol, gen, r->fly.first, last);
	if (rc == 0)
		rc = repl_seg_encode(&r->fly, gen, &obj);
	if (rc == 0)
		rc = repl_put_durable(r->store, key, obj.data, obj.len);
	buf_release(&obj);
	pthread_mutex_lock(&r->lock);
	if (rc < 0) {
		if (rc != r->last_error)
			log_warn("cannot store segment '%s' in '%s': %s "
				 "(retrying)",
				 key, obj_describe(r->store), strerror(-rc));
		rp_failed(r, rc);
		return;
	}
	rp_succeeded(r);
	r->nsegments++;
	log_debug("stored segment '%s'", key);
	if (strcmp(gen, r->gen) == 0 && !r->need_base)
		r->shipped_seq = MAX(r->shipped_seq, last);
	if (r->fly.last == last)
		repl_seg_reset(&r->fly);
	pthread_cond_broadcast(&r->done);
}

static void rp_renew(struct repl_engine *r)
{
	int rc;

	pthread_mutex_unlock(&r->lock);
	rc = repl_lease_renew(r->store, r->vol, &r->conf.holder);
	pthread_mutex_lock(&r->lock);
	if (rc == -EBUSY) {
		/* repl_lease_renew logged who took it. */
		r->lost = true;
		pthread_cond_broadcast(&r->done);
		return;
	}
	if (rc < 0)
		log_warn("cannot renew the lease of volume '%s': %s "
			 "(retrying)",
			 r->vol, strerror(-rc));
	r->lease_mono_ms =
	    repl_mono_ms() +
	    (rc < 0 ? RP_BACKOFF_MAX_MS : r->conf.holder.ttl_ms / 3);
}

/* A snapshot that must come before any segment (base, or asked for). */
static bool rp_snapshot_urgent(struct repl_engine *r)
{
	return r->need_base || r->snap_req > r->snap_done;
}

/* A periodic snapshot (by txn count or time). */
static bool rp_snapshot_due(struct repl_engine *r, int64_t now)
{
	if (r->committed_seq == r->snap_seq)
		return false;
	return r->committed_seq - r->snap_seq >= r->conf.snapshot_txns ||
	       r->since_snap >= rp_snap_bytes(r) ||
	       now - r->snap_mono_ms >= (int64_t)r->conf.snapshot_interval_ms;
}

/* Is the current segment due to be cut?  Else when (*when). */
static bool rp_cut_due(struct repl_engine *r, int64_t now, int64_t *when)
{
	if (r->cur.ntxn == 0 || r->fly.ntxn || r->need_base)
		return false;
	if (r->flush_upto > r->shipped_seq ||
	    r->cur.body.len >= r->conf.max_segment_bytes ||
	    now - r->cur.started_ms >= (int64_t)r->conf.max_lag_ms)
		return true;
	*when = MIN(*when, r->cur.started_ms + r->conf.max_lag_ms);
	return false;
}

/* Do one due job; false when nothing was due (*when: next deadline). */
static bool rp_step(struct repl_engine *r, int64_t *when)
{
	int64_t now = repl_mono_ms();

	if (r->lost)
		return false; /* nothing more to do but wait for close */
	if (now >= r->lease_mono_ms) {
		rp_renew(r);
		return true;
	}
	*when = r->lease_mono_ms;
	if (now < r->retry_mono_ms) {
		*when = MIN(*when, r->retry_mono_ms);
		return false;
	}
	if (rp_snapshot_urgent(r)) {
		rp_take_snapshot(r);
		return true;
	}
	/* Segments before periodic snapshots: kv_sync waits for them. */
	if (rp_cut_due(r, now, when)) {
		struct repl_seg empty = r->fly; /* reuse its memory */

		r->fly = r->cur;
		r->cur = empty;
		repl_seg_reset(&r->cur);
	}
	if (r->fly.ntxn) {
		rp_ship(r);
		return true;
	}
	if (rp_snapshot_due(r, now)) {
		rp_take_snapshot(r);
		return true;
	}
	if (r->committed_seq > r->snap_seq)
		*when =
		    MIN(*when, r->snap_mono_ms + r->conf.snapshot_interval_ms);
	return false;
}

static void *rp_shipper_main(void *arg)
{
	struct repl_engine *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		int64_t when = INT64_MAX;

		if (!rp_step(r, &when) && !r->stop)
			rp_wait(r, &r->wake, MIN(when, repl_mono_ms() + 60000));
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- engine ---- */

static int rp_wipe(struct kv_engine *e)
{
	struct repl_engine *r = rp_eng(e);
	char gen[REPL_GEN_SIZE];
	struct kv_txn *t;
	int rc;

	/*
	 * One inner txn, then commit_lock for its commit: the lock order of
	 * every commit (an engine's write lock is taken at begin).
	 */
	rc = kv_begin(r->inner, true, &t);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	rp_new_gen_id(repl_gen_to_u64(r->gen), gen);
	pthread_mutex_unlock(&r->lock);
	rc = repl_clear_txn(t, NULL);
	if (rc == 0)
		rc = kv_put(t, KV_SETTING, REPL_GEN_SETTING,
			    strlen(REPL_GEN_SETTING), gen, REPL_GEN_LEN);
	if (rc < 0) {
		kv_rollback(t);
		return rc;
	}
	pthread_mutex_lock(&r->commit_lock);
	rc = kv_commit(t);
	if (rc == 0) {
		pthread_mutex_lock(&r->lock);
		memcpy(r->gen, gen, REPL_GEN_SIZE);
		rp_need_base(r);
		r->committed_seq = 0;
		pthread_mutex_unlock(&r->lock);
		log_info("metadata of volume '%s' wiped: starting generation "
			 "%s",
			 r->vol, gen);
	}
	pthread_mutex_unlock(&r->commit_lock);
	return rc;
}

static void rp_free(struct repl_engine *r)
{
	repl_seg_release(&r->cur);
	repl_seg_release(&r->fly);
	pthread_mutex_destroy(&r->commit_lock);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->done);
	free(r);
}

static void rp_close(struct kv_engine *e)
{
	struct repl_engine *r = rp_eng(e);
	bool lost;

	/* Ship what is pending (bounded), then stop the shipper. */
	rp_flush(r, "close", NULL);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	lost = r->lost;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->shipper, NULL);
	if (!lost)
		repl_lease_release(r->store, r->vol, &r->conf.holder);
	kv_close(r->inner);
	if (r->conf.own_store)
		obj_close(r->store);
	rp_free(r);
}

static const struct kv_engine_ops repl_ops = {
    .scheme = "repl",
    .begin = rp_begin,
    .get = rp_get,
    .put = rp_put,
    .del = rp_del,
    .scan = rp_scan,
    .commit = rp_commit,
    .rollback = rp_rollback,
    .sync = rp_sync,
    .wipe = rp_wipe,
    .close = rp_close,
};

/* ---- start ---- */

/* Read generation setting @key of @t into @gen ("" when absent). */
static int rp_read_gen(struct kv_txn *t, const char *key,
		       char gen[REPL_GEN_SIZE])
{
	struct buf v = BUF_INIT;
	int rc = kv_get(t, KV_SETTING, key, strlen(key), &v);

	gen[0] = '\0';
	if (rc == 0 && repl_is_gen(v.data, v.len)) {
		memcpy(gen, v.data, REPL_GEN_LEN);
		gen[REPL_GEN_LEN] = '\0';
	}
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}

/* Read the local seq and generation of @e; @from (may be NULL) gets the
 * generation it was restored from. */
static int rp_read_local(struct kv_engine *e, uint64_t *seq,
			 char gen[REPL_GEN_SIZE], char *from)
{
	struct kv_txn *t;
	int rc = kv_begin(e, false, &t);

	gen[0] = '\0';
	if (from)
		from[0] = '\0';
	if (rc < 0)
		return rc;
	rc = meta_rec_counter_get(t, REPL_SEQ_COUNTER, seq);
	if (rc == 0)
		rc = rp_read_gen(t, REPL_GEN_SETTING, gen);
	if (rc == 0 && from)
		rc = rp_read_gen(t, REPL_FROM_SETTING, from);
	kv_rollback(t);
	return rc;
}

/* Where the unbroken history of @g (newest snapshot + segments) ends. */
static uint64_t rp_gen_end(const struct repl_gen *g)
{
	uint64_t end;

	if (g->nsnaps == 0)
		return 0;
	end = g->snaps[g->nsnaps - 1].a;
	for (size_t i = 0; i < g->nsegs; i++) {
		if (g->segs[i].b <= end)
			continue;
		if (g->segs[i].a > end + 1)
			break;
		end = g->segs[i].b;
	}
	return end;
}

int repl_local_check(struct kv_engine *e, struct obj_store *store,
		     const char *volname, struct repl_local *out)
{
	char from[REPL_GEN_SIZE];
	struct repl_listing l;
	const struct repl_gen *g;
	int rc;

	memset(out, 0, sizeof(*out));
	/*
	 * The store first: a writer running beside us (a status of a
	 * mounted volume) ships only what it committed, so reading the
	 * local database second never makes it look behind.
	 */
	rc = repl_list(store, volname, &l);
	if (rc < 0)
		return log_fail(rc,
				"cannot list the metadata of volume '%s' "
				"in '%s'",
				volname, obj_describe(store));
	rc = rp_read_local(e, &out->local_seq, out->local_gen, from);
	if (rc < 0) {
		repl_listing_release(&l);
		return log_fail(rc, "cannot read the replication state of '%s'",
				e->desc);
	}
	g = repl_listing_latest(&l);
	if (!g) {
		out->state = REPL_LOCAL_NO_STORE;
	} else {
		memcpy(out->store_gen, g->id, REPL_GEN_SIZE);
		out->store_seq = rp_gen_end(g);
		if (!out->local_gen[0] && from[0])
			/* restored, never mounted: it may be current */
			memcpy(out->local_gen, from, REPL_GEN_SIZE);
		if (!out->local_gen[0])
			out->state = REPL_LOCAL_UNTRACKED;
		else if (strcmp(out->local_gen, g->id) > 0)
			/* a generation whose base never got stored */
			out->state = REPL_LOCAL_AHEAD;
		else if (strcmp(out->local_gen, g->id) < 0)
			out->state = REPL_LOCAL_BEHIND;
		else if (out->local_seq == out->store_seq)
			out->state = REPL_LOCAL_CURRENT;
		else
			out->state = out->local_seq > out->store_seq
					 ? REPL_LOCAL_AHEAD
					 : REPL_LOCAL_BEHIND;
	}
	repl_listing_release(&l);
	return 0;
}

/* Decide the generation (rule in the top comment); fills r->gen etc. */
static int rp_choose_gen(struct repl_engine *r)
{
	char local[REPL_GEN_SIZE];
	struct repl_listing l;
	const struct repl_gen *g;
	uint64_t seq, floor = 0;
	int rc = rp_read_local(r->inner, &seq, local, NULL);

	if (rc < 0)
		return rc;
	rc = repl_list(r->store, r->vol, &l);
	if (rc < 0)
		return log_fail(rc,
				"cannot list the metadata of volume '%s' "
				"in '%s'",
				r->vol, obj_describe(r->store));
	r->committed_seq = seq;
	g = repl_listing_latest(&l);
	if (g && strcmp(g->id, local) == 0 && rp_gen_end(g) == seq) {
		memcpy(r->gen, local, REPL_GEN_SIZE);
		r->shipped_seq = seq;
		r->snap_seq = g->snaps[g->nsnaps - 1].a;
		r->need_base = false;
		log_info("replicating volume '%s': continuing generation %s "
			 "at txn %llu",
			 r->vol, r->gen, (unsigned long long)seq);
		repl_listing_release(&l);
		return 0;
	}
	if (l.ngens)
		floor = repl_gen_to_u64(l.gens[l.ngens - 1].id);
	repl_listing_release(&l);
	rp_new_gen_id(floor, r->gen);
	r->need_base = true;
	log_info("replicating volume '%s': starting generation %s at txn %llu",
		 r->vol, r->gen, (unsigned long long)seq);
	return 0;
}

/* Write the chosen generation into the local database. */
static int rp_store_gen(struct repl_engine *r)
{
	struct kv_txn *t;
	int rc = kv_begin(r->inner, true, &t);

	if (rc < 0)
		return rc;
	rc = kv_put(t, KV_SETTING, REPL_GEN_SETTING, strlen(REPL_GEN_SETTING),
		    r->gen, REPL_GEN_LEN);
	if (rc < 0) {
		kv_rollback(t);
		return rc;
	}
	return kv_commit(t);
}

static struct repl_engine *rp_new(struct kv_engine *inner,
				  struct obj_store *store, const char *vol,
				  const struct repl_conf *conf)
{
	struct repl_engine *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (!r)
		return NULL;
	r->base.ops = &repl_ops;
	snprintf(r->base.desc, sizeof(r->base.desc), "%s", inner->desc);
	r->inner = inner;
	r->store = store;
	snprintf(r->vol, sizeof(r->vol), "%s", vol);
	if (conf)
		r->conf = *conf;
	rp_conf_defaults(&r->conf);
	repl_seg_init(&r->cur);
	repl_seg_init(&r->fly);
	pthread_mutex_init(&r->commit_lock, NULL);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->wake, &ca);
	pthread_cond_init(&r->done, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

/* After a takeover: slice ids skip REPL_TAKEOVER_SLICE_GAP, replicated. */
static int rp_skip_ids(struct repl_engine *r)
{
	struct kv_txn *t;
	int rc = -EAGAIN;

	for (int i = 0; i < 5 && rc == -EAGAIN; i++) {
		rc = kv_begin(&r->base, true, &t);
		if (rc < 0)
			continue;
		rc = meta_rec_skip_slice_ids(t, REPL_TAKEOVER_SLICE_GAP);
		if (rc == 0) {
			rc = kv_commit(t);
		} else {
			kv_rollback(t);
			if (rc == -ENOENT) /* not a volume (yet) */
				rc = 0;
		}
	}
	if (rc == 0)
		log_info("volume '%s': taken over, slice ids skip ahead",
			 r->vol);
	return rc;
}

int repl_wrap(struct kv_engine *inner, struct obj_store *store,
	      const char *volname, const struct repl_conf *conf,
	      struct kv_engine **out)
{
	struct repl_engine *r;
	bool displaced = false;
	int rc;

	if (repl_check_volname(volname) < 0) {
		log_error("cannot replicate volume '%s': invalid name",
			  volname ? volname : "");
		return -EINVAL;
	}
	r = rp_new(inner, store, volname, conf);
	if (!r)
		return -ENOMEM;
	rc = repl_lease_take(store, volname, &r->conf.holder, r->conf.force,
			     &displaced);
	if (rc < 0)
		goto fail;
	r->conf.takeover |= displaced;
	r->lease_mono_ms = repl_mono_ms() + r->conf.holder.ttl_ms / 3;
	rc = rp_choose_gen(r);
	if (rc == 0 && r->need_base)
		rc = rp_store_gen(r);
	if (rc < 0)
		goto fail_lease;
	r->snap_mono_ms = repl_mono_ms();
	rc = -pthread_create(&r->shipper, NULL, rp_shipper_main, r);
	if (rc < 0) {
		log_fail(rc, "cannot start replication of volume '%s'",
			 volname);
		goto fail_lease;
	}
	if (r->conf.takeover && rp_skip_ids(r) < 0)
		log_warn("volume '%s': cannot skip the slice ids of the "
			 "previous holder",
			 volname);
	*out = &r->base;
	return 0;
fail_lease:
	repl_lease_release(store, volname, &r->conf.holder);
fail:
	r->inner = NULL;
	rp_free(r);
	return rc;
}
