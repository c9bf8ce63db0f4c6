/*
 * meta_int.h - private to src/meta/ (not the engines): struct meta, the
 * record encodings, the transaction runner and the helpers the rule files
 * (meta.c ns.c remove.c rename.c attr.c dir.c xattr.c perm.c data.c
 * quota.c) share.
 *
 * Records (kv.h groups; every number big-endian):
 *   KV_INODE    key ino(8)               -> inode record (INODE_REC_LEN:
 *                                           ... next_cookie(8) known(1:
 *                                           bit 0 alloc known, bit 1
 *                                           quota) alloc(8); 77-byte
 *                                           records of before alloc are
 *                                           still read)
 *   KV_DENTRY   key parent(8) name       -> ino(8) type(4) cookie(8)
 *   KV_DIRIDX   key parent(8) cookie(8)  -> ino(8) type(4) name
 *   KV_CHUNK    key ino(8) index(4)      -> n * slice(24)
 *   KV_SYMLINK  key ino(8)               -> target bytes
 *   KV_XATTR    key ino(8) name          -> value
 *   KV_SLICEREF key id(8)                -> extra references(8)
 *   KV_SUSTAINED key sid(8) ino(8)       -> ""
 *   KV_SESSION  key sid(8)               -> session JSON (session.c)
 *   KV_FLOCK    key ino(8)               -> n * {sid(8) owner(8) type(1)}
 *   KV_PLOCK    key ino(8)               -> n * {sid(8) owner(8) pid(4)
 *                                           type(1) start(8) end(8)}
 *   (one lock record per inode holding every session's locks on it, so
 *   a lock txn reads one record, not a scan; lock.c)
 *   KV_DELFILE  key ino(8)               -> length(8)
 *   KV_DELSLICE key id(8)                -> size(4) deleted-at txn seq(8)
 *   KV_QUOTA    key ino(8)               -> limits and usage (quota.c)
 *   KV_CHECKPOINT key name               -> txn seq(8) next slice(8)
 *                                           time(8) replSeq(8) (repl.h)
 *
 * Invariants:
 *  1. Every dentry (P, name) has exactly one DIRIDX (P, cookie) twin with
 *     the same ino and type; both are written and removed together.
 *  2. A directory's record holds next_cookie > every cookie it ever handed
 *     out (cookies start at META_COOKIE_FIRST; offsets 1 and 2 are "." and
 *     ".."), so cookies never repeat inside one directory.  Entries of the
 *     trash directory use their inode number as cookie instead, so moving a
 *     file to the trash does not write the trash inode (no conflicts).
 *  3. A slice id belongs to one chunk of one inode unless KV_SLICEREF counts
 *     extra references (clone); dropping a reference decrements that count
 *     first and queues the slice in KV_DELSLICE only when none is left.
 *  4. Directories carry their parent's ino.  Non-directories carry their
 *     "home" directory for quotas (quota.c): the directory of the name
 *     they were created or last moved under, or 0 when homeless (the home
 *     name went while others were left, in the trash, unlinked while
 *     open, or written before homes existed).
 *  5. No visible non-zero byte lies beyond a file's length: truncate down
 *     covers the tail of the last chunk with a zero slice.
 *  6. A regular file's a.alloc (unless alloc_unknown) equals the sum over
 *     its chunk records of the bytes a non-zero slice shows
 *     (chunk_alloc in data.c): every txn that changes a chunk list
 *     changes the inode record by the same amount.
 */
#ifndef TESSERA_META_META_INT_H
#define TESSERA_META_META_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "meta/kv.h"
#include "meta/meta.h"
#include "util/buf.h"

#define META_INO_BATCH 1024
#define META_SLICE_BATCH 4096
#define META_COOKIE_FIRST 3
#define META_SYMLINK_MAX 4095
#define META_XATTR_NAME_MAX 255
#define META_XATTR_SIZE_MAX (64 * 1024)
#define META_LINK_MAX 65000
/* chunk index is 32 bits: keep well inside it */
#define META_MAX_LENGTH (1ULL << 56)
#define META_DEFAULT_SPACE (1ULL << 50) /* statfs when capacity is 0 */
#define META_DEFAULT_INODES (1ULL << 40)
#define META_STATS_FLUSH_NS 1000000000LL

#define INODE_REC_LEN 86
#define INODE_REC_LEN_V0 77 /* before alloc: still read */
#define DENT_VAL_LEN 20

/* A range of reserved ids: [next, end). */
struct meta_idpool {
	uint64_t next, end;
	uint64_t spare_next, spare_end;
};

/* One inode open in this process (meta_open_file) or referenced by the
 * kernel (meta_ref_inode); in the table while either count is non-zero. */
struct meta_openf {
	uint64_t ino;
	uint32_t count; /* open handles */
	uint64_t refs;	/* kernel references */
	bool unlinked;	/* last link removed while held: delete when let go */
	struct meta_openf *next;
};

#define META_OPEN_BUCKETS 256 /* initial; the table doubles as it fills */

struct meta {
	struct kv_engine *kv;
	bool no_acl; /* meta_set_acl(false); set at startup only */
	char desc[512]; /* URL, password masked */
	uint64_t sid;	/* session id; 0 until sessions exist */
	atomic_uint_fast64_t txn_retries; /* attempts lost to -EAGAIN */
	atomic_uint_fast64_t txns;	  /* transactions committed */

	pthread_mutex_t lock; /* guards every field below; never held
			       * across a transaction */
	struct meta_format fmt;
	struct meta_idpool inos;
	struct meta_idpool slices;
	int64_t used_space; /* counters as of the last flush */
	int64_t used_inodes;
	int64_t pend_space; /* deltas not yet added to the counters */
	int64_t pend_inodes;
	int64_t flushed_ns;
	bool flushing;
	int64_t quota_seen_ns; /* when quota_none was read (meta_check_grow) */
	bool quota_none;       /* no quota on the volume then */

	pthread_mutex_t open_lock; /* guards the open-file table below; taken
				    * inside txns, never held across one */
	struct meta_openf **open_tab; /* open_nb buckets, NULL until used */
	size_t open_nb;
	size_t open_n;

	/* session (session.c); sid and sess are set before the heartbeat
	 * thread starts and never change after */
	struct meta_session sess;
	pthread_t hb_thread;
	bool hb_started;
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_cond;
	bool hb_stop; /* guarded by hb_lock */
};

/* An inode record: the attributes plus what only meta/ sees. */
struct inode_rec {
	struct meta_attr a;
	uint64_t next_cookie; /* directories: next readdir cookie */
	bool alloc_unknown;   /* a record written before a.alloc existed:
			       * a.alloc shows the length until a truncate
			       * to 0 makes it known */
	bool quota;	      /* a quota may be above it (quota.c): charges
			       * for it walk its path; unset, they cost
			       * nothing.  Bit 1 of the "known" byte */
	bool linkable;	      /* an O_TMPFILE made without O_EXCL, never
			       * linked: a link may give it its first name
			       * (meta_tmpfile).  Bit 2 of the "known" byte */
};

struct dent {
	uint64_t ino;
	uint32_t type; /* S_IFMT bits */
	uint64_t cookie;
};

/*
 * What one namespace transaction did besides its writes; reset at the start
 * of every attempt and acted on after a successful commit.
 */
struct meta_effects {
	int64_t space;	    /* usedSpace delta */
	int64_t inodes;	    /* usedInodes delta */
	uint64_t purge_ino; /* KV_DELFILE written: drop its chunks */
	uint64_t kept_ino;  /* unlinked while open: sustained */
};

/* ---- transactions (meta.c) ---- */

typedef int (*meta_txn_fn)(struct meta *m, struct kv_txn *t, void *arg);

/**
 * Run @fn inside a transaction, again on -EAGAIN (from the engine or the
 * commit) after a randomized backoff (at most ~50 ms), without a bound on
 * the number of tries: -EAGAIN never leaves this function.  Other errors
 * (an engine's -EIO after its time bound, @fn's own) end it at once.  @fn
 * must start from scratch on every attempt (reset its outputs) and return
 * -EAGAIN only when a retry can cure it.  A negative return of @fn rolls
 * back and is returned; otherwise the txn commits and @fn's value is
 * returned.  Any thread; the caller holds no lock of @m.
 */
int meta_txn(struct meta *m, bool rw, meta_txn_fn fn, void *arg);

int64_t meta_now_ns(void);

/** Reserve a new inode number (batched). */
int meta_new_ino(struct meta *m, uint64_t *out);

/** Apply committed usage deltas; flushes the counters now and then. */
void meta_apply_effects(struct meta *m, const struct meta_effects *e);
/** Add pending usage deltas to the counters (and refresh the cache). */
int meta_stats_flush(struct meta *m);
/**
 * Set usedSpace / usedInodes to what the inode records hold, in one txn,
 * when no session but ours (m->sid; 0: none) is registered: a dead
 * session's unflushed deltas are lost with it.  With other sessions live
 * the counters are left alone (their own unflushed deltas would count
 * twice) and a line says so.  Our pending deltas are dropped (the recount
 * holds them), so call it only before this process commits anything
 * else: meta_session_start does, after cleaning a dead session.  Cost: a
 * scan of every inode record.  -errno of the txn (logged).
 */
int meta_usage_recount(struct meta *m);
/** -ENOSPC if growing usage by @space bytes / @inodes would pass a limit. */
int meta_check_space(struct meta *m, int64_t space, int64_t inodes);
/** Bytes the volume's capacity has left (INT64_MAX: no capacity). */
int64_t meta_space_room(struct meta *m);
/** trash_days of the volume (settings can change while mounted). */
uint32_t meta_trash_days(struct meta *m);

/* ---- records (rec.c) ---- */

void key_ino(unsigned char k[8], uint64_t ino);
/** @k must hold 8 + TESSERA_NAME_MAX bytes; returns the key length. */
size_t key_name(unsigned char *k, uint64_t ino, const char *name, size_t len);
void key_diridx(unsigned char k[16], uint64_t dir, uint64_t cookie);
void key_chunk(unsigned char k[12], uint64_t ino, uint32_t idx);

void inode_encode(const struct inode_rec *r, unsigned char v[INODE_REC_LEN]);
int inode_decode(const void *v, size_t len, struct inode_rec *r);
/** -ENOENT when missing, -EIO when the record is corrupt (logged). */
int inode_get(struct kv_txn *t, uint64_t ino, struct inode_rec *r);
int inode_put(struct kv_txn *t, const struct inode_rec *r);
/** Remove an inode record and its symlink and xattr records. */
int inode_del(struct kv_txn *t, uint64_t ino);

int dent_get(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     struct dent *d);
/** Write the dentry and its DIRIDX twin. */
int dent_put(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     const struct dent *d);
int dent_del(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     uint64_t cookie);
/** 1 when @dir has at least one entry, 0 when empty. */
int dir_has_entries(struct kv_txn *t, uint64_t dir);

/** One slice record (SLICE_REC_LEN bytes) into @s. */
void slice_decode(const unsigned char v[SLICE_REC_LEN], struct slice *s);
/** Decode a chunk value into a malloc'ed array (NULL when empty). */
int slices_decode(const void *v, size_t len, struct slice **out, size_t *n);
/** Append encoded slice records to @b. */
int slices_append(struct buf *b, const struct slice *s, size_t n);

/* ---- names and permissions (perm.c) ---- */

/** -EINVAL ("" or '/'), -ENAMETOOLONG (> 255 bytes); *len = strlen. */
int name_check(const char *name, size_t *len);
bool name_is_dot(const char *name, size_t len);
bool perm_in_group(const struct meta_cred *c, uint32_t gid);
bool perm_is_owner(const struct meta_cred *c, const struct meta_attr *a);
/** -EACCES unless @c may @mask (META_MAY_*) @a.  NULL cred: allowed.
 *  Writing an immutable inode: -EPERM, whatever the cred. */
int perm_check(const struct meta_cred *c, const struct meta_attr *a, int mask);
/** Search permission on @dir, which must be a directory (-ENOTDIR) and
 *  not removed (-ENOENT). */
int perm_lookup(const struct meta_cred *c, const struct meta_attr *dir);
/** Linux may_delete: W+X on @dir, then the sticky rule (-EPERM); an
 *  append-only @dir, an immutable or append-only @victim: -EPERM. */
int perm_may_delete(const struct meta_cred *c, const struct meta_attr *dir,
		    const struct meta_attr *victim);
/** -EPERM when inode flags forbid changing @a's data, names, links or
 *  xattrs (immutable or append-only, META_FL_*); 0 otherwise. */
int perm_flags_modify(const struct meta_attr *a);
/** Mode and group of a new inode as Linux inode_init_owner. */
void perm_init_owner(const struct meta_cred *c, const struct meta_attr *dir,
		     struct meta_attr *a);

/* ---- POSIX ACLs (acl.c) ---- */

#define ACL_NAME_ACCESS "system.posix_acl_access"
#define ACL_NAME_DEFAULT "system.posix_acl_default"
#define ACL_XATTR_VERSION 2
/* tags of struct posix_acl_xattr_entry */
#define ACL_USER_OBJ 0x01
#define ACL_USER 0x02
#define ACL_GROUP_OBJ 0x04
#define ACL_GROUP 0x08
#define ACL_MASK 0x10
#define ACL_OTHER 0x20

/** 0 if @v (@len bytes) is a valid ACL xattr value, else -EINVAL. */
int acl_valid(const void *v, size_t len);
/** Set the rwx bits of *@mode from valid ACL @v (owner, mask or group,
 *  other); 1 if @v has only the three base entries (the mode says all). */
int acl_equiv_mode(const void *v, size_t len, uint32_t *mode);
/** Rewrite valid access ACL @v after a chmod to @mode (owner, mask or
 *  group, other entries), in place. */
void acl_chmod(void *v, size_t len, uint32_t mode);
/** Mask default ACL @v (a copy) by create mode *@mode and set *@mode's
 *  rwx bits from the result; 1 if the result must be stored as the new
 *  inode's access ACL, 0 if the mode says all. */
int acl_create(void *v, size_t len, uint32_t *mode);
/** -EACCES unless @c (not NULL, not root) may @want on @a by ACL @v. */
int acl_permission(const void *v, size_t len, const struct meta_cred *c,
		   const struct meta_attr *a, int want);
/** The valid ACL xattr @name of @ino into @out; -ENOENT if none (a
 *  damaged value counts as none), other -errno from the engine. */
int acl_get(struct kv_txn *t, uint64_t ino, const char *name, struct buf *out);
int acl_put(struct kv_txn *t, uint64_t ino, const char *name, const void *v,
	    size_t len);
/** For a new inode @a (mode, ino set) in @parent: with a default ACL
 *  there, store the inherited ACLs and mask @a's mode by them; else
 *  apply @umask.  -errno from the engine. */
int acl_inherit(struct meta *m, struct kv_txn *t, uint64_t parent,
		uint32_t umask, struct meta_attr *a);
/** After a chmod of @a (new mode set): its access ACL, if any, follows. */
int acl_chmod_t(struct meta *m, struct kv_txn *t, const struct meta_attr *a);
/** perm_check, then for a caller other than the owner the access ACL. */
int perm_check_t(struct kv_txn *t, const struct meta_cred *c,
		 const struct meta_attr *a, int mask);
/** perm_may_delete with the directory's access ACL. */
int perm_may_delete_t(struct kv_txn *t, const struct meta_cred *c,
		      const struct meta_attr *dir,
		      const struct meta_attr *victim);
/** perm_lookup with the access ACL. */
int perm_lookup_t(struct kv_txn *t, const struct meta_cred *c,
		  const struct meta_attr *dir);

/* ---- removal (remove.c) ---- */

/**
 * A name of non-directory @r in @parent (record @pr, already loaded) went
 * away.  Drops the link and decides the inode's fate: survives (nlink > 1),
 * moves to the trash, stays sustained while open here, or is deleted
 * (records gone, KV_DELFILE written, usage in @e).  @pr's times are not
 * touched.  @name is the removed name (for the trash name).
 */
int meta_drop_link(struct meta *m, struct kv_txn *t, uint64_t parent,
		   const char *name, size_t len, struct inode_rec *r,
		   struct meta_effects *e);
/**
 * meta_drop_link for the target a rename replaces: an inode the kernel
 * still references (meta_ref_inode) is sustained like an open one, so an
 * open racing the rename finds the old file, never ENOENT.
 */
int meta_drop_replaced(struct meta *m, struct kv_txn *t, uint64_t parent,
		       const char *name, size_t len, struct inode_rec *r,
		       struct meta_effects *e);
/** Directory @r (empty, its entry already gone) goes: deleted, or kept
 *  with nlink 0 while open here (@replaced: or referenced by the kernel,
 *  as in meta_drop_replaced). */
int meta_drop_dir(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		  bool replaced, struct meta_effects *e);
/** Remove trash entry @name (internal, no checks); missing is fine. */
int meta_trash_remove(struct meta *m, const char *name);
/** Write new inode @r with nlink 0, sustained by this session (O_TMPFILE):
 *  deleted at its last close here, or with the session. */
int meta_sustain_new(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		     struct meta_effects *e);
/** Act on @e after commit: drop purged data, delete closed sustained. */
void meta_after_commit(struct meta *m, const struct meta_effects *e);
/** Queue all chunks of a deleted file (KV_DELFILE @ino) for deletion. */
int meta_purge_file(struct meta *m, uint64_t ino);
/**
 * Delete sustained inode @ino of session @sid if it has no link left, and
 * drop the KV_SUSTAINED record.  @check_open (this session's own): not
 * while open here.  Otherwise (a dead session's): only while session @sid
 * has no record.
 */
int meta_unsustain(struct meta *m, uint64_t sid, uint64_t ino,
		   bool check_open);
/** 1 when @ino is open in this process. */
int meta_is_open(struct meta *m, uint64_t ino);
/** 1 when @ino is open in this process or referenced by its kernel. */
int meta_is_held(struct meta *m, uint64_t ino);
void meta_open_table_free(struct meta *m);

/* ---- sessions and locks (session.c, lock.c) ---- */

/** 1 when session @sid has a record, 0 when not, or -errno. */
int meta_session_exists(struct kv_txn *t, uint64_t sid);
/** Stop the heartbeat and remove this session and what it holds. */
void meta_session_end(struct meta *m);
/**
 * Drop every lock entry of a session not in @live (sorted ids) that has no
 * record (checked inside each txn; sid 0 is never touched).  *n: entries
 * dropped.
 */
int meta_locks_sweep(struct meta *m, const uint64_t *live, size_t nlive,
		     size_t *n);
/** Set ->locks of each of @s[0..n) to its number of lock entries. */
int meta_locks_count(struct meta *m, struct meta_session *s, size_t n);
/** Release all locks of this session (clean shutdown). */
int meta_locks_drop_session(struct meta *m);

/* ---- deletion queue (delq.c) ---- */

/**
 * The checkpoint rule: a checkpoint taken at txn seq @ckpt_seq, when the
 * next slice id was @ckpt_next_slice, still references slice @id deleted
 * at txn seq @deleted_at.
 */
bool delq_ckpt_keeps(uint64_t ckpt_seq, uint64_t ckpt_next_slice, uint64_t id,
		     uint64_t deleted_at);

/* ---- quotas (quota.c) ---- */

/**
 * Add @space bytes and @inodes inodes (negative: release) to every quota
 * on the path from directory @dir (0: none) up to the root.  With @check,
 * -EDQUOT when an addition would pass a limit (nothing written then).
 * Callers skip it for inodes without the quota flag (inode_rec.quota).
 * It reads counter "quotas" first (one read when no quota is left); what
 * it saw is noted in @m (may be NULL) for meta_check_grow.
 */
int quota_charge(struct meta *m, struct kv_txn *t, uint64_t dir,
		 int64_t space, int64_t inodes, bool check);
/**
 * Usage @space / @inodes moves from home @from to home @to (either may be
 * 0): quotas on both paths see no change; those it enters are checked
 * (-EDQUOT) when @check.
 */
int quota_move(struct kv_txn *t, uint64_t from, uint64_t to, int64_t space,
	       int64_t inodes, bool check);
/** Directory @ino is removed: its quota, if any, goes with it. */
int quota_forget_dir(struct kv_txn *t, uint64_t ino);
/** 1 when the volume has a quota, 0 when not, or -errno. */
int quota_any(struct kv_txn *t);
/**
 * Usage of the tree below directory @dir (not @dir itself), by the
 * charging rule of quota.c.  With @adopt, single-named homeless files get
 * the directory holding them as home (written, and charged to the quotas
 * above it); *adopted (may be NULL) counts them.  With @flag (or @adopt),
 * what it counts gets inode_rec.quota set.
 */
int quota_tree_usage(struct kv_txn *t, uint64_t dir, bool adopt, bool flag,
		     int64_t *space, int64_t *inodes, int64_t *adopted);
/** Usage of directory @d with its tree: its quota's usage when it has
 *  one (O(1)), a walk otherwise. */
int quota_dir_usage(struct kv_txn *t, const struct inode_rec *d, bool flag,
		    int64_t *space, int64_t *inodes);
/** Decode a KV_QUOTA record into *q (q->ino set when @klen is 8).
 *  -EIO: it does not decode. */
int quota_decode(const void *key, size_t klen, const void *val, size_t vlen,
		 struct meta_quota *q);
/**
 * A load puts back the quota on directory @ino (load.c): its usage is
 * counted from the tree as it is in @t (homes as loaded, none adopted),
 * the tree flagged (inode_rec.quota) and the record written.  Counter
 * "quotas" is left alone (the dump's counters carry it).  -EINVAL (the
 * root or the trash), -ENOTDIR, -ENOENT, -EIO, -ENOMEM.
 */
int quota_restore(struct kv_txn *t, uint64_t ino, uint64_t space_limit,
		  uint64_t inodes_limit);
/** The path of live directory @dir (trash.c); -ENOENT when gone. */
int meta_dir_path_t(struct kv_txn *t, uint64_t dir, char *out, size_t n);

/* ---- data (data.c) ---- */

/**
 * Drop one reference to each distinct id of @s[0..n) (0 ignored, @skip
 * ignored): decrement KV_SLICEREF or queue it in KV_DELSLICE.  @seq caches
 * the txnSeq counter (start at -1).
 */
int slices_unref(struct kv_txn *t, const struct slice *s, size_t n,
		 uint64_t skip, int64_t *seq);
/** 1 when inode @ino has xattr @name, 0 when not, or -errno (xattr.c). */
int xattr_has(struct kv_txn *t, uint64_t ino, const char *name);
/**
 * Inside the txn deleting inode @ino (of @length bytes): when the file is
 * small (a few chunks), queue its slices for deletion and drop its chunk
 * records now, setting *done; otherwise leave them (*done false) for
 * KV_DELFILE and meta_purge_file.
 */
int data_purge_small(struct kv_txn *t, uint64_t ino, uint64_t length,
		     bool *done);
/** Change the length of regular file @r inside @t (truncate / extend). */
int data_set_length(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		    uint64_t len, struct meta_effects *e);
/** Bytes of usage an inode counts for. */
int64_t meta_space_of(const struct meta_attr *a);

#endif
