/*
 * repl.h - continuous replication of a volume's metadata into its object
 * store, and restore from it (DESIGN section 6: "durable state as a URL").
 *
 * Replication is logical: repl_wrap() puts a kv engine (kv.h) in front of
 * the real one and records every put and delete of each committed read-write
 * transaction.  Each such transaction gets the next number of the counter
 * "replSeq", written inside the transaction itself, so a database always
 * knows the last sequence it contains.  The records are shipped as
 * checksummed segments, next to periodic full snapshots, under
 *
 *   NAME/meta/<generation>/snap/<seq, 16 hex>
 *   NAME/meta/<generation>/seg/<first seq, 16 hex>-<last seq, 16 hex>
 *   NAME/meta/lease                 who may write the volume, until when
 *   NAME/meta/ckpt/<checkpoint>     named snapshots (tessera checkpoint)
 *
 * A generation is one unbroken history: a snapshot, then segments that
 * follow it without a gap.  Restore takes the newest generation that has a
 * snapshot, its newest readable snapshot, then every following segment, and
 * stops at the first gap or damaged segment (the database then holds exactly
 * the transactions before it).  The rules for starting a generation are in
 * repl_engine.c.
 *
 * Every writer of a replicated database must go through the wrapper: a
 * change made beside it is not shipped (a later snapshot includes it).
 *
 * Errors: 0 or -errno.  Failures are logged once, where the detail is.
 */
#ifndef TESSERA_REPLICATE_REPL_H
#define TESSERA_REPLICATE_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/procid.h"

struct kv_engine;
struct obj_store;

/* Length of a generation id (hex digits) and its buffer. */
#define REPL_GEN_LEN 16
#define REPL_GEN_SIZE (REPL_GEN_LEN + 1)

/* The counter (KV_COUNTER) holding the last replicated txn sequence. */
#define REPL_SEQ_COUNTER "replSeq"

/*
 * Who holds (or wants) the lease of a volume.  repl_holder_init() fills it
 * for this process: its identity (host, pid, and what tells whether that
 * pid is still this process: util/procid.h) and a random nonce (so two
 * mounts of one process are different holders).
 */
struct repl_holder {
	struct procid proc;
	uint64_t nonce;
	uint32_t ttl_ms; /* lease duration; 0: 30 s */
};

/* Replication settings; a field left 0 takes its default. */
struct repl_conf {
	uint32_t max_lag_ms;	       /* ship at least this often (1,000) */
	uint32_t sync_timeout_ms;      /* kv_sync gives -EIO after (30,000) */
	uint64_t snapshot_txns;	       /* snapshot every N txns (default:
					* when the txns since the last one
					* hold as many record bytes as it,
					* at least 16 MiB) */
	uint32_t snapshot_interval_ms; /* ... or this often (600,000) */
	uint32_t keep_snapshots;       /* snapshots kept per generation (2) */
	size_t max_segment_bytes;      /* ship early past this (4 MiB) */
	size_t max_pending_bytes;      /* unshipped bytes before commits wait
					* (64 MiB) */
	bool force;		       /* take the lease from a live holder */
	struct repl_holder holder;     /* host empty: repl_holder_init() */
	bool own_store;		       /* kv_close of the wrapper closes the
					* store (on success of repl_wrap) */
	bool takeover; /* the caller took the lease from a holder that may
			* still run (repl_lease_take said displaced) */
};

/*
 * After a takeover the previous holder may have reserved slice ids in txns
 * that never reached the store, and may still upload objects named by
 * them: the new writer skips this many ids (counter nextSlice) so that no
 * object name is ever written by both.
 */
#define REPL_TAKEOVER_SLICE_GAP (1ULL << 32)

/** Fill @h for this process (procid_self, random nonce, ttl 0). */
void repl_holder_init(struct repl_holder *h);

/**
 * Start replicating @inner into @store under @volname: take the lease
 * (repl_lease_acquire with conf->force), decide the generation, start the
 * shipper thread, and return in *out a kv engine that forwards every call to
 * @inner.  The first snapshot of a new generation is taken by the shipper;
 * kv_sync waits for it.  After a takeover (conf->takeover, or this lease
 * acquisition displaced someone) counter nextSlice, when present, is
 * raised by REPL_TAKEOVER_SLICE_GAP in a replicated txn.
 *
 * On success the wrapper owns @inner (kv_close(*out) ships what is pending,
 * with a bound, releases the lease and closes @inner); @store and @conf are
 * borrowed, the store must outlive the wrapper.  On failure @inner is left
 * open and untouched.  @conf may be NULL (defaults).
 *
 * kv semantics added by the wrapper:
 *   - commit of a read-write txn that changed something also puts
 *     REPL_SEQ_COUNTER = previous + 1; -EROFS once the lease was lost (the
 *     txn is rolled back); may wait while more than max_pending_bytes are
 *     unshipped, then -EIO after sync_timeout_ms.
 *   - kv_sync returns once every txn committed before the call is stored
 *     (and synced) in the object store and the lease, read back after
 *     that, is still ours (so a host that takes the volume over later
 *     restores every txn a kv_sync acknowledged); then it syncs @inner.
 *     -EIO when the store did not take it within sync_timeout_ms (the
 *     shipper keeps trying), -EROFS when the lease was lost.
 *
 * Errors: -EBUSY (lease held by a live holder; logged naming it), -EINVAL
 * (bad volname), -ENOMEM, -EIO (store or database failed).  Startup only.
 */
int repl_wrap(struct kv_engine *inner, struct obj_store *store,
	      const char *volname, const struct repl_conf *conf,
	      struct kv_engine **out);

/** True when @e is a replication wrapper made by repl_wrap(). */
bool repl_is_wrapper(const struct kv_engine *e);

/**
 * Take a snapshot of wrapper @e now (in the shipper thread) and wait for it
 * to be stored, then apply retention.  *seq (may be NULL) gets the sequence
 * it contains.  -EINVAL when @e is not a wrapper, -EROFS lease lost, -EIO
 * store failure after the bound.  Any thread.
 */
int repl_snapshot(struct kv_engine *e, uint64_t *seq);

struct repl_status {
	char generation[REPL_GEN_SIZE];
	uint64_t committed_seq; /* last txn committed locally */
	uint64_t shipped_seq;	/* last txn stored in the object store */
	uint64_t snapshot_seq;	/* newest snapshot of this generation */
	uint64_t lag_ms;	/* age of the oldest unshipped txn; 0: none */
	uint64_t pending_bytes; /* encoded records not yet stored */
	bool lease_lost;
	int last_error; /* last upload error (-errno), 0 if none */
	uint64_t segments_shipped;  /* stored by this process */
	uint64_t snapshots_shipped; /* stored by this process */
};

/** Live state of wrapper @e.  -EINVAL when @e is not a wrapper.  Any thread. */
int repl_status(struct kv_engine *e, struct repl_status *out);

/* What the object store holds for a volume (no local database needed). */
struct repl_store_status {
	char generation[REPL_GEN_SIZE]; /* "" when nothing is stored */
	uint64_t snapshot_seq;		/* newest snapshot */
	uint64_t last_seq;		/* last txn of the newest segment */
	uint64_t nsnapshots;
	uint64_t nsegments;
	uint64_t ngenerations;
};

/**
 * Describe the newest generation stored for @volname.  -ENOENT when the
 * store holds no generation with a snapshot.  Any thread.
 */
int repl_store_status(struct obj_store *store, const char *volname,
		      struct repl_store_status *out);

/* How a local database compares with what the store holds. */
enum repl_local_state {
	REPL_LOCAL_CURRENT = 1, /* it holds exactly the stored history */
	REPL_LOCAL_AHEAD,	/* it holds txns the store lacks (a crash
				 * before shipping); no one wrote since */
	REPL_LOCAL_BEHIND,	/* the store holds newer txns, or a newer
				 * generation (another host wrote) */
	REPL_LOCAL_UNTRACKED,	/* it never shipped to this store */
	REPL_LOCAL_NO_STORE,	/* nothing is stored for the volume */
};

struct repl_local {
	enum repl_local_state state;
	char local_gen[REPL_GEN_SIZE]; /* "" when untracked */
	uint64_t local_seq;	       /* REPL_SEQ_COUNTER of the database */
	char store_gen[REPL_GEN_SIZE]; /* newest stored generation, or "" */
	uint64_t store_seq; /* where its unbroken history ends */
};

/**
 * Compare the database of @e (plain engine) with the history of @volname
 * in @store, by the generation rule of repl_engine.c: a mount may use the
 * local database when it is CURRENT or AHEAD; BEHIND means restore first.
 * 0, or -errno when the database or the store failed (logged).  Any
 * thread.
 */
int repl_local_check(struct kv_engine *e, struct obj_store *store,
		     const char *volname, struct repl_local *out);

struct repl_restore_info {
	char generation[REPL_GEN_SIZE];
	uint64_t snapshot_seq;	/* the snapshot restored */
	uint64_t seq;		/* last txn in the restored database */
	uint64_t latest_seq;	/* last txn the store claims to hold */
	uint64_t records;	/* records written so far */
	uint64_t segments;	/* segments applied */
	bool complete;		/* seq == latest_seq: nothing refused */
	char stop_reason[1200]; /* why restore stopped early, or "" */
};

/* Progress of a restore (after the snapshot and after each segment). */
typedef void (*repl_progress_fn)(void *arg,
				 const struct repl_restore_info *sofar);

/**
 * Rebuild the metadata of @volname from @store into a new SQLite database
 * at @db_url (sqlite3:///path; the file must not exist).  The database is
 * written to "<path>.restore" and renamed into place at the end, so @path
 * is either absent or a complete database.  Each segment is applied in one
 * transaction, so the result holds exactly the transactions up to the last
 * good one.
 *
 * A missing, corrupt or truncated segment stops the restore there: one
 * ERROR line ("restore stopped at txn N: segment 'KEY' is corrupt"), the
 * database is still put in place, 0 is returned and @out says
 * complete=false with the reason.  @out and @progress may be NULL.
 *
 * Errors: -ENOENT (nothing stored for @volname), -EEXIST (@path exists),
 * -EINVAL (bad URL or name), -EIO (no readable snapshot, store or database
 * failure), -ENOMEM.  Any thread.
 */
int repl_restore(struct obj_store *store, const char *volname,
		 const char *db_url, struct repl_restore_info *out,
		 repl_progress_fn progress, void *arg);

/**
 * Take the lease of @volname for @h, unless another holder's lease has not
 * expired: then -EBUSY and one ERROR line naming that holder, or, with
 * @force, take it anyway (WARN).  Renewing our own lease is allowed.  A
 * holder that was a process of this host and is gone (procid_check says
 * PROCID_GONE: exited, killed, a zombie, its pid reused, the host
 * rebooted) holds nothing: its lease is taken at once, without @force,
 * with one WARN line "taking over the lease of dead mount pid N".
 *
 * Object stores here have no compare-and-swap: two hosts that read a free
 * lease within one GET+PUT round trip of each other both believe they won;
 * the loser finds out at its next renewal (within ttl/3) and stops writing.
 * Any thread.
 */
int repl_lease_acquire(struct obj_store *store, const char *volname,
		       const struct repl_holder *h, bool force);

/**
 * repl_lease_acquire, also telling in *displaced whether the lease belonged
 * to another holder that may still be running (a live one taken with
 * @force, or an expired one of another host), as opposed to none, ours, or
 * a dead process of this host.
 */
int repl_lease_take(struct obj_store *store, const char *volname,
		    const struct repl_holder *h, bool force, bool *displaced);

/**
 * Renew our lease.  -EBUSY (and an ERROR line) when someone else holds it
 * now; -EIO store failure.
 */
int repl_lease_renew(struct obj_store *store, const char *volname,
		     const struct repl_holder *h);

/**
 * Check that @h still holds the lease, without renewing it: 0, -EBUSY (and
 * an ERROR line) when someone else holds it or it is gone, -EIO store
 * failure.  Any thread.
 */
int repl_lease_check(struct obj_store *store, const char *volname,
		     const struct repl_holder *h);

/**
 * Read who holds the lease of @volname: *h (pid, host, nonce; ttl 0) and
 * its expiry (wall clock ms).  -ENOENT when there is none, -EBADMSG when
 * it is unreadable, -EIO.  Any thread.
 */
int repl_lease_read(struct obj_store *store, const char *volname,
		    struct repl_holder *h, int64_t *expires_ms);

/** Delete the lease when @h holds it.  Any thread. */
int repl_lease_release(struct obj_store *store, const char *volname,
		       const struct repl_holder *h);

/*
 * ---- checkpoints (named snapshots, tessera checkpoint) ----
 *
 * A checkpoint is a snapshot object NAME/meta/ckpt/<name> (the snapshot
 * format, generation 0) plus meta's checkpoint record <name> (struct
 * meta_ckpt in meta/meta_scan.h, written and read only by meta/): the txn
 * seq and next slice id of the state it holds, its time and replSeq.
 * Putting the record moves meta's txn seq past it in the same txn; so a
 * slice deleted after the checkpoint carries a deleted-at seq > txn seq,
 * and gc keeps the object of every slice with id < next slice id deleted
 * after a kept checkpoint (DESIGN section 6).  Checkpoint names follow the
 * volume name rules.
 */

struct repl_ckpt {
	char name[256];
	uint64_t txn_seq;    /* counter txnSeq it records */
	uint64_t next_slice; /* counter nextSlice at that time */
	int64_t time_ns;
	uint64_t size; /* bytes of the stored snapshot */
};

/* Bytes of meta's checkpoint record; only tests/unit/t_repl.c looks. */
#define REPL_CKPT_REC_LEN 32

/**
 * Record checkpoint @name of @e (a wrapper or a plain engine) in one
 * read-write txn that also dumps the content (so content and counters are
 * one point in time), then store the dump as NAME/meta/ckpt/<name>; if that
 * fails the record is removed again.  -EEXIST when the name is taken,
 * -EINVAL bad name, -EIO store or database failure.  *out (may be NULL)
 * describes it.  Holds a write txn of @e while dumping.
 */
int repl_ckpt_create(struct kv_engine *e, struct obj_store *store,
		     const char *volname, const char *name,
		     struct repl_ckpt *out);

/**
 * List the checkpoints stored for @volname, sorted by name (reads only the
 * header of each object).  *out is a malloc'ed array (caller frees, NULL
 * when *n is 0) of *n entries.
 */
int repl_ckpt_list(struct obj_store *store, const char *volname,
		   struct repl_ckpt **out, size_t *n);

/**
 * Delete checkpoint @name: the object, and the checkpoint record of @e
 * (may be NULL).  -ENOENT when neither exists.
 */
int repl_ckpt_delete(struct kv_engine *e, struct obj_store *store,
		     const char *volname, const char *name);

/**
 * Replace every record of @e with the content of checkpoint @name, in one
 * txn: O(metadata).  Kept from the current database: the checkpoint
 * records (later checkpoints stay known) and, when larger, meta's id
 * counters (meta_rec_id_counters: nextInode, nextSlice, nextSession,
 * txnSeq) and replSeq (ids never repeat).  The slices only the current
 * state references are queued for deletion.
 * Run it on the plain engine while no mount is active; the next repl_wrap
 * then starts a new generation (the checkpoint has no REPL_GEN_SETTING).
 * -ENOENT no such checkpoint, -EIO corrupt (nothing changed), -EINVAL.
 */
int repl_ckpt_restore(struct kv_engine *e, struct obj_store *store,
		      const char *volname, const char *name);

#endif
