/*
 * meta_scan.h - reading a whole volume's metadata, for the tools that check,
 * collect and copy it (fsck, gc, summary, dump, checkpoints), and the
 * record helpers replicate/ needs at the kv level.  meta/ is the one place
 * that knows what a record means; nobody else decodes a key or a value.
 *
 * A view (struct meta_view) is one read-only transaction: every scan made
 * through it sees the same state.  SQLite and PostgreSQL give a snapshot;
 * Redis has none, so meta_view_end answers -EAGAIN when anything the view
 * read changed meanwhile, and a caller that needs one consistent state
 * (gc: an object must not look unreferenced because its slice moved
 * between two scans) runs the whole pass again.  A view belongs to one
 * thread.  Scans deliver records in key order; the pointers a callback
 * gets live until it returns.  A callback returns 0 to go on, 1 to stop
 * the scan early (the scan then returns 0), -errno to abort it (returned).
 *
 * A record that does not decode is not an error of the scan: it is handed
 * to the callback with ->corrupt set (and nothing else trusted), so fsck
 * can report it and gc can refuse to delete anything.
 *
 * Errors: -EIO (engine), -ENOMEM, -EAGAIN (meta_view_end only).
 */
#ifndef TESSERA_META_META_SCAN_H
#define TESSERA_META_META_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"
#include "util/slice.h"

struct kv_txn;
struct meta_view;

/** Start a view of @m's metadata.  -EIO, -ENOMEM. */
int meta_view_begin(struct meta *m, struct meta_view **out);
/**
 * End the view.  0: every scan saw one consistent state.  -EAGAIN: (Redis)
 * something the view read changed meanwhile; what it showed may mix two
 * states.  Frees @v either way.  NULL: 0.
 */
int meta_view_end(struct meta_view *v);

/* One inode record. */
struct meta_inode {
	struct meta_attr a;   /* a.ino always set; the rest when !corrupt */
	uint64_t next_cookie; /* directories: next readdir cookie */
	bool corrupt;
};
typedef int (*meta_inode_fn)(void *arg, const struct meta_inode *i);
/** Every inode record, by inode number, from @from (0: the first). */
int meta_view_inodes(struct meta_view *v, uint64_t from, meta_inode_fn fn,
		     void *arg);
/** meta_view_inodes, at most @limit records (0: all): a page. */
int meta_view_inodes_n(struct meta_view *v, uint64_t from, size_t limit,
		       meta_inode_fn fn, void *arg);
/** One inode; -ENOENT when it has no record, -EIO when corrupt. */
int meta_view_inode(struct meta_view *v, uint64_t ino, struct meta_attr *out);

/* One directory entry (KV_DENTRY). */
struct meta_entry {
	uint64_t parent;
	const char *name; /* NUL-terminated */
	size_t name_len;
	uint64_t ino;
	uint32_t type;	 /* S_IFMT bits */
	uint64_t cookie; /* readdir cookie */
	bool corrupt;	 /* value malformed: ino, type, cookie not set */
};
typedef int (*meta_entry_fn)(void *arg, const struct meta_entry *e);
/** The entries of directory @dir (0: of every directory), by
 *  (parent, name).  "." and ".." are not records. */
int meta_view_entries(struct meta_view *v, uint64_t dir, meta_entry_fn fn,
		      void *arg);
/** The readdir index (KV_DIRIDX) of @dir (0: all), by (parent, cookie):
 *  ->name, ->ino, ->type as stored in the index. */
int meta_view_index(struct meta_view *v, uint64_t dir, meta_entry_fn fn,
		    void *arg);

/* One chunk record: the slice list of chunk @index of @ino, oldest first. */
struct meta_chunk {
	uint64_t ino;
	uint32_t index;
	const struct slice *s;
	size_t n;
	bool corrupt; /* value not a whole number of slice records */
};
typedef int (*meta_chunk_fn)(void *arg, const struct meta_chunk *c);
/** The chunks of @ino (0: of every inode, including deleted files whose
 *  chunks are not purged yet), by (ino, index). */
int meta_view_chunks(struct meta_view *v, uint64_t ino, meta_chunk_fn fn,
		     void *arg);

/* A slice with extra references (clone): ->refs of them beyond the first. */
struct meta_sliceref {
	uint64_t id;
	uint64_t refs;
	bool corrupt;
};
typedef int (*meta_sliceref_fn)(void *arg, const struct meta_sliceref *r);
int meta_view_slicerefs(struct meta_view *v, meta_sliceref_fn fn, void *arg);

/*
 * One slice in the deletion queue.  ->kept: a checkpoint still references
 * it (its id is below the checkpoint's next slice id and it was deleted
 * after the checkpoint's txn seq), so its objects must stay while that
 * checkpoint exists; otherwise the background worker deletes them.
 */
struct meta_pending {
	uint64_t id;
	uint32_t size;
	uint64_t deleted_at; /* txn seq */
	bool kept;
	bool corrupt;
};
typedef int (*meta_pending_fn)(void *arg, const struct meta_pending *p);
/** The deletion queue (KV_DELSLICE), by slice id. */
int meta_view_pending(struct meta_view *v, meta_pending_fn fn, void *arg);

/* A file whose last name went; its chunks are still to be queued. */
typedef int (*meta_ino_fn)(void *arg, uint64_t ino);
int meta_view_delfiles(struct meta_view *v, meta_ino_fn fn, void *arg);

/* An inode kept alive by session @sid (unlinked while open there). */
typedef int (*meta_sustained_fn)(void *arg, uint64_t sid, uint64_t ino);
int meta_view_sustained(struct meta_view *v, meta_sustained_fn fn, void *arg);

/* A checkpoint record (KV_CHECKPOINT). */
struct meta_ckpt {
	char name[256];
	uint64_t txn_seq;    /* the state it holds is the one at this seq */
	uint64_t next_slice; /* every slice it references has a smaller id */
	int64_t time_ns;
	uint64_t repl_seq; /* replication seq of that state (repl.h) */
};
typedef int (*meta_ckpt_fn)(void *arg, const struct meta_ckpt *c);
int meta_view_checkpoints(struct meta_view *v, meta_ckpt_fn fn, void *arg);

/* One quota record; @corrupt: it does not decode (only q->ino is set,
 * 0 when the key is malformed too). */
typedef int (*meta_quota_fn)(void *arg, const struct meta_quota *q,
			     bool corrupt);
/** The directory quotas (KV_QUOTA), by directory inode. */
int meta_view_quotas(struct meta_view *v, meta_quota_fn fn, void *arg);

/** The volume settings.  -ENOENT: no volume; -EIO: they do not decode. */
int meta_view_format(struct meta_view *v, struct meta_format *out);

/* One counter record; ->corrupt: the value is not 8 bytes. */
typedef int (*meta_counter_fn)(void *arg, const char *name, uint64_t value,
			       bool corrupt);
/** Every counter record, by name (names are at most 255 bytes). */
int meta_view_counters(struct meta_view *v, meta_counter_fn fn, void *arg);

/* One extended attribute of an inode; @name NUL-terminated. */
typedef int (*meta_xattr_fn)(void *arg, const char *name, size_t name_len,
			     const void *value, size_t len);
/** The xattrs of @ino (ACLs included: system.posix_acl_*), by name. */
int meta_view_xattrs(struct meta_view *v, uint64_t ino, meta_xattr_fn fn,
		     void *arg);

/* One xattr record of the whole volume (meta_view_xattrs_from). */
typedef int (*meta_xattr_rec_fn)(void *arg, uint64_t ino, const char *name,
				 size_t name_len, const void *value,
				 size_t len);
/**
 * The xattr records after (@ino, @name) (@name NULL: from inode @ino on,
 * its own included), by (inode, name), at most @limit (0: all): a page of
 * a walk beside another scan in inode order, one round trip per page on
 * Redis instead of one per inode.
 */
int meta_view_xattrs_from(struct meta_view *v, uint64_t ino, const char *name,
			  size_t name_len, size_t limit, meta_xattr_rec_fn fn,
			  void *arg);

/* A deleted file (KV_DELFILE) and its length; chunks still to purge. */
typedef int (*meta_delfile_fn)(void *arg, uint64_t ino, uint64_t length);
/** The deleted files, by inode, with their lengths (-EIO: corrupt). */
int meta_view_deleted(struct meta_view *v, meta_delfile_fn fn, void *arg);

/** Counter @name (0 when missing).  -EIO when malformed. */
int meta_view_counter(struct meta_view *v, const char *name, uint64_t *out);
/** Symlink target into @buf (NUL-terminated, truncated to @n - 1). */
int meta_view_symlink(struct meta_view *v, uint64_t ino, char *buf, size_t n);

/*
 * ---- records at the kv level (replicate/) ----
 *
 * replicate/ moves records without knowing them; where it must act on
 * them (checkpoints: which slices a snapshot references, queueing the ones
 * a restore drops, the checkpoint record, id counters) it calls these.
 * Each works inside the caller's txn @t.
 */

typedef int (*meta_slice_id_fn)(void *arg, uint64_t id, uint32_t size);
/**
 * The slices a raw record of group @grp references: each slice of a
 * KV_CHUNK value, the queued slice of a KV_DELSLICE record; nothing for
 * other groups.  Id 0 (zeros) is skipped.  A malformed record gives
 * -EIO.
 */
int meta_rec_slices(int grp, const void *key, size_t klen, const void *val,
		    size_t vlen, meta_slice_id_fn fn, void *arg);
/**
 * Every slice @t's chunks and deletion queue reference, via @fn (an id may
 * come more than once).  A record that does not decode is skipped with a
 * warning, not an error: a checkpoint restore, which replaces that state,
 * must not be blocked by its damage.  So this lists candidates (to queue
 * for deletion), and never proves a slice unreferenced.
 */
int meta_rec_all_slices(struct kv_txn *t, meta_slice_id_fn fn, void *arg);
/**
 * Queue slice @id (@size bytes) for deletion, deleted at txn seq @seq,
 * unless it is queued already.  Returns 1 when queued now, 0 when it was.
 */
int meta_rec_queue_slice(struct kv_txn *t, uint64_t id, uint32_t size,
			 uint64_t seq);
/**
 * Read checkpoint record @name into *out; -ENOENT when missing, -EIO when
 * it does not decode.  @out may be NULL: then only whether a record of
 * that name exists (0, even when it is corrupt, or -ENOENT).
 */
int meta_rec_ckpt_get(struct kv_txn *t, const char *name,
		      struct meta_ckpt *out);
/**
 * What a checkpoint taken now in @t holds: c->txn_seq (counter txnSeq)
 * and c->next_slice (counter nextSlice), 0 when missing; the other fields
 * are left alone.  -EIO when a counter is malformed.
 */
int meta_rec_ckpt_now(struct kv_txn *t, struct meta_ckpt *c);
/**
 * Put checkpoint record @c (overwriting one of that name), and move
 * counter txnSeq past c->txn_seq when it is not yet, so that every slice
 * deleted from now on carries a deleted-at seq above the checkpoint's:
 * the rule by which it keeps them (meta_view_pending).  -EINVAL when the
 * name is empty or has no NUL within c->name.
 */
int meta_rec_ckpt_put(struct kv_txn *t, const struct meta_ckpt *c);
/** Delete checkpoint record @name (missing: 0). */
int meta_rec_ckpt_del(struct kv_txn *t, const char *name);
/**
 * 1 when @t's database holds the marker of a `tessera load` that has not
 * finished (load.c; it may have died, or still run): no volume yet, and
 * what is there is part of one.  0 when not; -errno from the engine.
 */
int meta_rec_load_marker(struct kv_txn *t);
/** True for the group of checkpoint records (kept across a restore). */
bool meta_rec_is_ckpt(int grp);
/** Counter @name into *out (0 when missing); -EIO when malformed. */
int meta_rec_counter_get(struct kv_txn *t, const char *name, uint64_t *out);
int meta_rec_counter_put(struct kv_txn *t, const char *name, uint64_t v);
/** The id counters a checkpoint restore keeps at their larger value
 *  (META_REC_N_ID_COUNTERS of them, also in meta_rec_n_id_counters). */
#define META_REC_N_ID_COUNTERS 4
extern const char *const meta_rec_id_counters[META_REC_N_ID_COUNTERS];
extern const size_t meta_rec_n_id_counters;
/**
 * Move nextSlice @gap ids ahead (after a lease takeover the previous
 * holder may have used ids it reserved).  -ENOENT: not a volume (yet).
 */
int meta_rec_skip_slice_ids(struct kv_txn *t, uint64_t gap);

/*
 * ---- repairs (fsck.c; `tessera fsck --repair`) ----
 *
 * Each fix is one txn that re-reads the record and changes only the
 * fields named.  The caller checks no mount is live: fsck computed the
 * values from a view, and a live mount could have moved on since.
 */

/** Bytes of usage an inode counts for in usedSpace (as meta/ counts). */
int64_t meta_usage_of(const struct meta_attr *a);

/* Fields of an inode record to set (only those with set_* true). */
struct meta_fix {
	bool set_nlink, set_length, set_parent, set_cookie;
	uint32_t nlink;
	uint64_t length;
	uint64_t parent;
	uint64_t next_cookie; /* raised to at least this, never lowered */
};
/** Change @f's fields of inode @ino.  -ENOENT: no record; -EIO (logged). */
int meta_fix_inode(struct meta *m, uint64_t ino, const struct meta_fix *f);
/** Set the counters usedSpace and usedInodes.  -EIO (logged). */
int meta_fix_counters(struct meta *m, uint64_t space, uint64_t inodes);
/**
 * Give orphan inode @ino (no entry names it) a name in the trash
 * directory, "0-INO-SECONDS-orphan", written into @name (@n bytes), with
 * nlink 1.  -EISDIR: a directory (the trash holds none; not logged),
 * -ENOENT: no record, -EEXIST: the name is taken, -EIO (logged).
 */
int meta_orphan_to_trash(struct meta *m, uint64_t ino, char *name, size_t n);

#endif
