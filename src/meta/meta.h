/*
 * meta.h - the metadata rules of a Tessera volume (DESIGN section 4).
 *
 * Everything here is engine-independent: each call is one or a few
 * transactions over kv.h, retried on -EAGAIN inside meta/ (never returned).
 * Errors are negative errno values, the same ones ext4 gives:
 * -ENOENT -EEXIST -ENOTDIR -EISDIR -ENOTEMPTY -EINVAL -ENAMETOOLONG -EACCES
 * -EPERM -ELOOP -EXDEV -ENOSPC -EDQUOT -ENODATA -ERANGE -EIO -ENOMEM.
 *
 * Permission checks use the caller's credentials (struct meta_cred).  uid 0
 * passes every check but execute on files with no x bit.  A NULL cred means
 * "internal caller": no checks.
 *
 * Threads: a struct meta may be used from any number of threads at once.
 * Times are nanoseconds since the epoch (CLOCK_REALTIME).
 */
#ifndef TESSERA_META_META_H
#define TESSERA_META_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/slice.h"
#include "util/procid.h"

struct meta;
struct kv_engine;

/*
 * The hidden trash directory: looked up by name in the root directory, never
 * listed by readdir of the root.  With trash_days > 0 the last name of a
 * file goes there as "PARENT-INO-SECONDS-NAME" until it expires
 * (meta_cleanup).
 */
#define META_TRASH_INO 2
#define META_TRASH_NAME ".trash"

/* Volume settings, stored as JSON in KV_SETTING "volume" at format time. */
struct meta_format {
	char name[256];
	char uuid[37];
	char storage[1024];    /* storage URL (password never stored) */
	uint32_t block_size;   /* bytes; default 4 MiB */
	uint64_t chunk_size;   /* always 64 MiB */
	char compress[16];     /* "none", "lz4", "zstd" */
	char encrypt[32];      /* "none" or "aes-256-gcm" */
	char key_wrapped[256]; /* base64 data key wrapped with the user key */
	uint32_t trash_days;   /* 0: no trash */
	uint64_t capacity;     /* bytes; 0 = unlimited */
	uint64_t inodes;       /* 0 = unlimited */
	uint32_t version;      /* format version, 1 */
	int64_t created_ns;
	bool replicate; /* SQLite: metadata replicated into the store (repl.h);
			 * JSON "replicate", absent means true */
};

struct meta_cred {
	uint32_t uid;
	uint32_t gid;
	uint32_t ngroups;
	const uint32_t *groups; /* supplementary groups, borrowed */
	uint32_t umask;          /* applied by mknod/mkdir/create */
	uint32_t pid;
};

struct meta_attr {
	uint64_t ino;
	uint32_t mode;  /* S_IFMT type bits | permission bits, as st_mode */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint64_t length;
	uint64_t rdev;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t parent; /* directories: parent ino; others: the home
			  * directory quotas charge, 0 when none (quota.c) */
	uint32_t flags;	 /* META_FL_* */
	uint64_t alloc;	 /* regular files: bytes that hold data, holes and
			  * zero ranges excluded (st_blocks * 512) */
};

/*
 * Inode flags (meta_attr.flags), the values of FS_IOC_GETFLAGS (linux/fs.h)
 * that chattr sets: enforced as ext4 does, even for uid 0.
 *  - immutable: no write, truncate, fallocate, unlink, rename (of it or
 *    over it), link, setattr, setxattr/removexattr; a directory takes no
 *    new or removed names.
 *  - append-only: open for writing only with O_APPEND; no truncate,
 *    unlink, rename, link, chmod/chown/explicit times, xattr changes,
 *    hole punching; a directory takes new names but loses none.
 * Only uid 0 (CAP_LINUX_IMMUTABLE) sets or clears them.
 */
#define META_FL_IMMUTABLE 0x00000010u /* FS_IMMUTABLE_FL */
#define META_FL_APPEND 0x00000020u    /* FS_APPEND_FL */
#define META_FL_USER (META_FL_IMMUTABLE | META_FL_APPEND)

/* setattr mask bits */
#define META_SET_MODE (1u << 0)
#define META_SET_UID (1u << 1)
#define META_SET_GID (1u << 2)
#define META_SET_SIZE (1u << 3)
#define META_SET_ATIME (1u << 4)
#define META_SET_MTIME (1u << 5)
#define META_SET_ATIME_NOW (1u << 6)
#define META_SET_MTIME_NOW (1u << 7)
#define META_SET_CTIME (1u << 8)

/* rename flags (values of RENAME_NOREPLACE / RENAME_EXCHANGE) */
#define META_RENAME_NOREPLACE (1u << 0)
#define META_RENAME_EXCHANGE (1u << 1)

/* xattr flags (values of XATTR_CREATE / XATTR_REPLACE) */
#define META_XATTR_CREATE 1
#define META_XATTR_REPLACE 2

/* access mask (R_OK W_OK X_OK) */
#define META_MAY_READ 4
#define META_MAY_WRITE 2
#define META_MAY_EXEC 1

struct meta_statfs {
	uint64_t total_space;  /* capacity, or a large default */
	uint64_t avail_space;
	uint64_t used_inodes;
	uint64_t avail_inodes;
};

/* One directory entry from meta_readdir. */
struct meta_dirent {
	uint64_t ino;
	uint32_t type;  /* S_IFMT bits */
	uint64_t next;  /* offset to resume after this entry */
	const char *name; /* valid during the callback */
	const struct meta_attr *attr; /* with META_READDIR_PLUS, else NULL */
};

#define META_READDIR_PLUS 1

/*
 * Readdir callback: return 0 to continue, 1 to stop (the entry was NOT
 * consumed; the next call resumes with it), -errno to abort.
 */
typedef int (*meta_dirent_fn)(void *arg, const struct meta_dirent *d);

/* One slice to commit into a file (meta_write). */
struct meta_slice_write {
	uint32_t chunk;     /* chunk index = file offset / 64 MiB */
	struct slice s;
};

/* ---- lifecycle ---- */

/** Open the metadata at @url.  -ENOENT if no database; logs the reason. */
int meta_open(const char *url, struct meta **out);
/**
 * Open the metadata held by engine @kv (e.g. a replication wrapper made by
 * repl_wrap).  On success the struct meta owns @kv (meta_close closes it);
 * on failure @kv is left open.  @desc names it in messages (URL, password
 * masked).  Errors as meta_open.
 */
int meta_open_kv(struct kv_engine *kv, const char *desc, struct meta **out);
/** Create the database as needed and format a volume.  -EEXIST when one
 *  exists and !force.  @f->uuid and created_ns are filled in. */
int meta_format(const char *url, struct meta_format *f, bool force);
/** Read the settings.  -ENOENT when the database holds no volume. */
int meta_load_format(struct meta *m, struct meta_format *out);
int meta_store_format(struct meta *m, const struct meta_format *f);
/** Flush counters; end the session if one was started (stop the
 *  heartbeat, release its locks and sustained inodes, delete its record);
 *  close.  NULL: no-op. */
void meta_close(struct meta *m);
/**
 * POSIX ACLs ("system.posix_acl_access" / "_default", acl.c) on (the
 * default) or off: off, "system." names are -EOPNOTSUPP and creates
 * ignore default ACLs.  Startup only, before any other call.
 */
void meta_set_acl(struct meta *m, bool on);
/** Make all committed metadata durable (application fsync). */
int meta_sync(struct meta *m);
struct kv_engine *meta_engine(struct meta *m);
/** Transaction attempts run again after a conflict or a busy engine
 *  (-EAGAIN) since the open; for ".stats".  Any thread. */
uint64_t meta_txn_retries(struct meta *m);
/** Transactions committed (read-only ones included) since the open. */
uint64_t meta_txn_count(struct meta *m);

/* ---- format JSON (also used by status --json) ---- */
/** Encode to a malloc'ed JSON string; NULL on ENOMEM. */
char *meta_format_to_json(const struct meta_format *f);
int meta_format_from_json(const char *json, struct meta_format *out);

/* ---- namespace ---- */
int meta_lookup(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name, struct meta_attr *out);
int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out);
/** Change what @mask says, from @in; *out is the result.  SIZE truncates or
 *  extends (zero slices), checking write permission.  Truncate down hides
 *  the cut tail with a zero slice and queues the slices of whole chunks
 *  past the end; extending only sets the length (uncovered bytes read as
 *  zeros).  Pass a NULL cred for ftruncate on a handle opened for writing
 *  (the kernel checked at open).  -EPERM / -EACCES as Linux chmod, chown,
 *  utimes, and for META_FL_* files whatever the cred; -EISDIR, -EINVAL (not a file), -EFBIG, -ENOSPC for SIZE. */
int meta_setattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		 uint32_t mask, const struct meta_attr *in,
		 struct meta_attr *out);
/**
 * Set the inode flags of @ino to @flags (META_FL_*; chattr), ctime to now.
 * *out (may be NULL): the new attributes.  Errors: -EOPNOTSUPP (a flag
 * other than META_FL_USER), -EPERM (@c neither owner nor root; a change
 * of META_FL_USER bits by other than uid 0), -ENOENT, -EIO.
 */
int meta_set_flags(struct meta *m, const struct meta_cred *c, uint64_t ino,
		   uint32_t flags, struct meta_attr *out);
/**
 * -EPERM when open(2) flags @oflags may not open a file of attributes @a
 * for its flags: writing an immutable file, writing an append-only one
 * without O_APPEND, O_TRUNC on either.  0 otherwise.
 */
int meta_check_open_flags(const struct meta_attr *a, int oflags);
int meta_access(struct meta *m, const struct meta_cred *c, uint64_t ino,
		int mask);
/* One access time to record (meta_set_atimes). */
struct meta_atime {
	uint64_t ino;
	int64_t atime_ns;
};
/**
 * Record access times in one transaction, as reads update them (relatime,
 * decided by the caller): an inode's atime only moves forward, ctime stays,
 * inodes deleted since are skipped.  No permission check (internal).
 */
int meta_set_atimes(struct meta *m, const struct meta_atime *v, size_t n);
/**
 * meta_getattr and meta_access in one transaction: *out gets the
 * attributes whenever the inode exists, also when the check fails with
 * -EACCES (so callers can apply checks Linux makes first, like -EISDIR).
 * With @xattr non-NULL, *has_xattr tells whether the inode has that
 * extended attribute (no permission check: internal callers).
 */
int meta_getattr_access(struct meta *m, const struct meta_cred *c,
			uint64_t ino, int mask, const char *xattr,
			bool *has_xattr, struct meta_attr *out);
/** Regular file, fifo, socket, char or block device (S_IFMT in @mode). */
int meta_mknod(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name, uint32_t mode, uint64_t rdev,
	       struct meta_attr *out);
int meta_mkdir(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name, uint32_t mode, struct meta_attr *out);
/**
 * An unnamed regular file for O_TMPFILE in directory @parent (write and
 * search permission needed there): nlink 0, kept (KV_SUSTAINED) while open
 * here, deleted at its last meta_close_file or with this session.  When
 * @linkable (no O_EXCL), meta_link may give it a first name, once.  Returns
 * with the file counted open once, as by meta_open_file: the caller opens
 * its handle, then calls meta_close_file once.
 */
int meta_tmpfile(struct meta *m, const struct meta_cred *c, uint64_t parent,
		 uint32_t mode, bool linkable, struct meta_attr *out);
int meta_symlink(struct meta *m, const struct meta_cred *c, uint64_t parent,
		 const char *name, const char *target, struct meta_attr *out);
/** Target into @buf (size @n, NUL-terminated); returns length or -errno.
 *  A short buffer gets the first n - 1 bytes; the full length is returned.
 *  -EINVAL: not a symlink. */
ssize_t meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t n);
int meta_link(struct meta *m, const struct meta_cred *c, uint64_t ino,
	      uint64_t newparent, const char *newname, struct meta_attr *out);
/**
 * Remove a name.  When the last link of a file goes and the file is open in
 * this process (meta_open_file), the inode is kept until meta_close_file.
 * Otherwise its slices are queued for deletion (or it goes to .trash).
 */
int meta_unlink(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name);
int meta_rmdir(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name);
int meta_rename(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name, uint64_t newparent, const char *newname,
		uint32_t flags);
/**
 * List @dir from @offset (0 = start; 1, 2 after "." and ".."; otherwise an
 * entry's ->next).  Offsets stay valid while entries are added or removed.
 * "." and ".." are included.  @flags: META_READDIR_PLUS.
 */
int meta_readdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
		 uint64_t offset, int flags, meta_dirent_fn fn, void *arg);
int meta_statfs(struct meta *m, struct meta_statfs *out);

/* ---- xattrs ---- */
/** Value into @buf; @n == 0 asks for the size.  -ENODATA, -ERANGE. */
ssize_t meta_getxattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		      const char *name, void *buf, size_t n);
int meta_setxattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		  const char *name, const void *val, size_t len, int flags);
/** NUL-separated names into @buf; @n == 0 asks for the size. */
ssize_t meta_listxattr(struct meta *m, const struct meta_cred *c,
		       uint64_t ino, char *buf, size_t n);
int meta_removexattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		     const char *name);

/* ---- open files (unlink while open) ---- */
/**
 * Note one more open of @ino in this process.  An inode whose last name
 * goes while open here is kept (KV_SUSTAINED under this session) until the
 * last meta_close_file, or until this session is found stale.  Opens and
 * kernel references in other sessions are not known here: unlinking or
 * replacing on one mount a file open on another deletes it at once (that
 * mount then gets -ENOENT for the inode; see vfs_open).
 */
void meta_open_file(struct meta *m, uint64_t ino);
/** Last close of an unlinked file deletes it (unless still referenced). */
int meta_close_file(struct meta *m, uint64_t ino);
/**
 * The kernel of this mount took @n more references to @ino (entries it was
 * given: lookup, create, mknod, mkdir, symlink, link, readdirplus).  While
 * any is left, an inode whose last name a rename replaces is kept with
 * nlink 0 (KV_SUSTAINED, as for an open file), so that an open or getattr
 * racing the rename, or coming later through a name or descriptor the
 * kernel still has, finds it.  An unlink deletes at once unless the inode
 * is open: an open racing an unlink may fail, one racing a rename may not.
 * Cheap (a hash table under a mutex, no txn).  Any thread.
 */
void meta_ref_inode(struct meta *m, uint64_t ino, uint64_t n);
/**
 * The kernel dropped @n references to @ino (FORGET).  The last reference
 * of an inode that is not open and lost its last name deletes it (one
 * txn); the error is logged and returned, session cleanup retries.
 */
int meta_forget_inode(struct meta *m, uint64_t ino, uint64_t n);

/* ---- sessions (DESIGN section 4, multi-client rules) ---- */

/*
 * Every mount of a volume is a session: a record (host, pid, mountpoint,
 * version, start time, heartbeat) refreshed by a heartbeat thread.  Its
 * id tags what dies with it: the inodes it keeps alive after their last
 * unlink (KV_SUSTAINED) and its flock/fcntl locks.  A session silent for
 * META_SESSION_EXPIRY heartbeats is stale: any other session's heartbeat
 * deletes its record, releases its locks and deletes its sustained
 * inodes.  So is, at once, a session whose process was of this host and
 * is gone (procid_check: killed, a zombie, its pid reused, a reboot):
 * a mount restarted after a crash frees what the dead one held before it
 * serves.  Records of other hosts, and records written before they held
 * the process's start time, are judged by silence alone.  Without meta_session_start a struct meta works as session 0
 * (tools, tests): nothing of session 0 is ever cleaned by others.
 */
#define META_HEARTBEAT_MS 12000
#define META_SESSION_EXPIRY 5 /* heartbeats */

struct meta_session_conf {
	const char *mountpoint; /* shown by status; may be NULL */
	uint32_t heartbeat_ms;	/* 0: META_HEARTBEAT_MS */
};

/* One session record, as meta_sessions lists it. */
struct meta_session {
	uint64_t sid;
	struct procid proc; /* the mount process (util/procid.h) */
	char mountpoint[1024];
	char version[32];
	int64_t start_ns;
	int64_t heartbeat_ns; /* last heartbeat */
	uint32_t heartbeat_ms;
	uint32_t expiry_ms; /* stale when silent this long */
	bool stale;	    /* silent too long, or dead */
	bool dead;	    /* its process, of this host, is gone */
	uint64_t sustained; /* inodes it keeps alive */
	uint64_t locks;	    /* flock holders and fcntl ranges */
};

/**
 * Register this process as a new session, clean the stale sessions of
 * others (dead processes of this host included) before returning, and
 * start the heartbeat thread, which cleans them from then on.  Once per
 * struct meta, before files are opened.  -EINVAL (started twice), -EIO, -ENOMEM.
 */
int meta_session_start(struct meta *m, const struct meta_session_conf *c);
/** The session id (0: no session started). */
uint64_t meta_session_id(const struct meta *m);
/**
 * All session records, by id; *out malloc'ed (free it).  ->stale is
 * judged with this host's clock.
 */
int meta_sessions(struct meta *m, struct meta_session **out, size_t *n);
/**
 * Clean every stale session of others now (the heartbeat does this
 * every beat): delete its record, release its locks, delete the inodes it
 * sustained.  Also sweeps records left by a cleaner that died half-way.
 * *cleaned (may be NULL): sessions removed.
 */
int meta_clean_sessions(struct meta *m, size_t *cleaned);

/* ---- locks (shared by all sessions of the volume) ---- */

/*
 * flock(2) and fcntl(2) locks live in metadata, so they exclude each other
 * across mounts.  A lock owner is (session, @owner): @owner is the
 * kernel's lock owner (fcntl) or open file description (flock) of this
 * session.  flock and fcntl locks never conflict with each other, as on
 * Linux.  These calls never wait: the caller polls (vfs/).  They return
 * -EAGAIN (== -EWOULDBLOCK) for "a conflicting lock is held", the only
 * -EAGAIN of this header.
 */
struct meta_plock {
	int type;	/* F_RDLCK, F_WRLCK, F_UNLCK (fcntl.h values) */
	uint64_t start;
	uint64_t end;	/* inclusive; UINT64_MAX: to the end of the file */
	uint32_t pid;
	uint64_t sid;	/* meta_getlk: session of the conflicting lock */
};

/**
 * F_GETLK: *lk in: range and type asked for @owner; out: the first lock of
 * another owner (any session) it conflicts with, or type F_UNLCK.
 * -EINVAL: start > end or a bad type.
 */
int meta_getlk(struct meta *m, uint64_t ino, uint64_t owner,
	       struct meta_plock *lk);
/**
 * F_SETLK: set @owner's lock state on [start, end] to lk->type (F_UNLCK
 * unlocks), splitting and merging its ranges as Linux does.  -EAGAIN:
 * another owner holds a conflicting lock (nothing changed); -EINVAL.
 */
int meta_setlk(struct meta *m, uint64_t ino, uint64_t owner,
	       const struct meta_plock *lk);
/**
 * flock: @type F_RDLCK (LOCK_SH), F_WRLCK (LOCK_EX) or F_UNLCK.  Changing
 * the type of a held lock drops it first, as Linux does: a conversion that
 * fails with -EAGAIN leaves no lock.  -EINVAL: bad type.  @own (may be
 * NULL): set true when -EAGAIN came only from locks of this session.
 */
int meta_flock(struct meta *m, uint64_t ino, uint64_t owner, int type,
	       bool *own);
/** Drop @owner's fcntl locks (@posix) and/or its flock (@flock) on @ino. */
int meta_unlock_owner(struct meta *m, uint64_t ino, uint64_t owner,
		      bool posix, bool flock);

/* ---- file data map ---- */
/** Reserve a new slice id (batched). */
int meta_new_slice_id(struct meta *m, uint64_t *out);
/**
 * Drop the slice ids reserved but not handed out yet, so the next ones come
 * from counter nextSlice: after a checkpoint, whose "next slice id" then
 * bounds every slice written later.  The dropped ids are never used.  Any
 * thread.
 */
void meta_forget_slice_ids(struct meta *m);
/** The slice list of one chunk, oldest first; *out malloc'ed (free it). */
int meta_read_chunk(struct meta *m, uint64_t ino, uint32_t chunk,
		    struct slice **out, size_t *n);
/** A small file's data: its chunk 0 is the one slice @s, within one block. */
struct meta_head {
	uint64_t ino;
	struct slice s;
};
/**
 * The small files among inodes [@from, @to], in inode order, at most @max
 * into @out: those whose chunk 0 is a single slice whose visible bytes lie
 * in one block of @bs bytes.  One read transaction.
 */
int meta_read_heads(struct meta *m, uint64_t from, uint64_t to, uint32_t bs,
		    struct meta_head *out, size_t max, size_t *n);
/**
 * Append @n slices to their chunks in one transaction, set length to
 * max(length, @new_length), mtime/ctime to now.  *out: the new attributes
 * (may be NULL).  A slice id is used in one chunk of one file only (a write
 * crossing a chunk boundary commits one slice per chunk); deletion relies
 * on it.  -EINVAL: a slice past its chunk or its own size; -EISDIR,
 * -ENOENT, -EFBIG, -ENOSPC.
 */
int meta_write(struct meta *m, uint64_t ino, const struct meta_slice_write *w,
	       size_t n, uint64_t new_length, struct meta_attr *out);
/**
 * Replace a chunk's slice list with @repl (one slice) if it still equals
 * @old (n_old records); -EAGAIN-free: returns -ESTALE when it changed.  The
 * replaced slices are queued for deletion.  After -ESTALE the caller still
 * owns @repl's objects (delete them or reuse them).
 */
int meta_compact(struct meta *m, uint64_t ino, uint32_t chunk,
		 const struct slice *old, size_t n_old,
		 const struct slice *repl);
/** fallocate: mode 0 extends length; FALLOC_FL_PUNCH_HOLE writes zeros;
 *  FALLOC_FL_KEEP_SIZE / FALLOC_FL_ZERO_RANGE as Linux.  -EOPNOTSUPP for
 *  other modes and PUNCH_HOLE without KEEP_SIZE, -EINVAL (len 0), -EISDIR,
 *  -ESPIPE (fifo), -ENODEV, -EFBIG, -ENOSPC; write permission is checked
 *  unless @c is NULL (a handle opened for writing). */
int meta_fallocate(struct meta *m, const struct meta_cred *c, uint64_t ino,
		   int mode, uint64_t off, uint64_t len);

/* ---- clone (metadata-only copy; clone.c) ---- */

/* Keep owners (uid 0 only), permission bits and atime/mtime. */
#define META_CLONE_PRESERVE 1

struct meta_clone_stats {
	uint64_t inodes; /* inodes created */
	uint64_t chunks; /* chunk records copied */
	uint64_t slices; /* slice references added (KV_SLICEREF) */
};

/**
 * Copy file, symlink, special file or directory tree @src to the new name
 * @name in directory @dstparent, in one transaction, by metadata only:
 * chunk records are copied and every slice they name gets one more
 * reference, so no object is read or written and the cost grows with the
 * number of inodes and slice records, not with bytes.  Writing either
 * copy later leaves the other unchanged; deleting one leaves the other
 * readable (a slice's objects are queued only when its last reference
 * goes).  The clone belongs to the caller with @src's permission bits and
 * the current time, unless @flags has META_CLONE_PRESERVE (see there).
 * Hard links inside a tree become separate files.  *out (may be NULL):
 * the new top inode; *st (may be NULL): what was copied.
 * Errors: -EEXIST (@name exists), -ENOENT, -ENOTDIR, -EACCES (read on each
 * source file, read+search on each source directory, write+search on
 * @dstparent), -EPERM (into the trash), -EINVAL (the root, the trash, or
 * a directory into itself), -ENOSPC, -ENAMETOOLONG, -EIO.
 */
int meta_clone(struct meta *m, const struct meta_cred *c, uint64_t src,
	       uint64_t dstparent, const char *name, int flags,
	       struct meta_attr *out, struct meta_clone_stats *st);

/* ---- deletion queue (background worker) ---- */
struct meta_delslice {
	uint64_t id;
	uint32_t size;
};
/** Up to @max slices whose objects may be deleted now; *out malloc'ed. */
int meta_pending_slices(struct meta *m, size_t max,
			struct meta_delslice **out, size_t *n);
/** Forget a slice after its objects were deleted. */
int meta_slice_deleted(struct meta *m, uint64_t id);
/** meta_slice_deleted for @n slices in one transaction. */
int meta_slices_deleted(struct meta *m, const uint64_t *ids, size_t n);
/** Move expired .trash entries and deleted files into the slice queue. */
int meta_cleanup(struct meta *m);

/* ---- directory quotas (quota.c; `tessera quota`) ---- */

/*
 * A quota limits the space (bytes, each inode counted as the volume counts
 * it: length rounded up to 4 KiB, 4 KiB per directory) and the inodes
 * below one directory (not the directory itself).  Usage is kept exact in
 * the transaction of every change, on every mount; a change that would
 * pass a limit of any quota above it (nested quotas all count) fails with
 * -EDQUOT.  A file counts once, at its home directory (meta_attr.parent):
 * hard links add no usage; see quota.c for the whole rule.  The root and
 * the trash take no quota (the volume's capacity and inodes limit them).
 */
struct meta_quota {
	uint64_t ino;	       /* the directory */
	uint64_t space_limit;  /* bytes; 0: none */
	uint64_t inodes_limit; /* 0: none */
	int64_t used_space;    /* bytes charged below the directory */
	int64_t used_inodes;
};

#define META_QUOTA_SPACE 1  /* meta_quota_set: change the space limit */
#define META_QUOTA_INODES 2 /* and/or the inode limit */

/**
 * Set the limits of the quota on directory @ino that @which names (the
 * others keep their value; 0 for none).  A new quota's usage is counted
 * by walking the tree below @ino in the same transaction (single-named
 * files written before homes existed are adopted: see quota.c).  *out
 * (may be NULL): the quota now.  Errors: -EINVAL (the root, the trash, a
 * limit > INT64_MAX, unknown @which bits), -ENOTDIR, -ENOENT, -EIO,
 * -ENOMEM.  Also for dump/load: a load sets each quota after the tree is
 * in place, and its usage is recounted.
 */
int meta_quota_set(struct meta *m, uint64_t ino, uint32_t which,
		   uint64_t space_limit, uint64_t inodes_limit,
		   struct meta_quota *out);
/** The quota on @ino (O(1)).  -ENOENT: none. */
int meta_quota_get(struct meta *m, uint64_t ino, struct meta_quota *out);
/** Remove the quota on @ino.  -ENOENT: none. */
int meta_quota_delete(struct meta *m, uint64_t ino);
/** Every quota, by directory inode; *out malloc'ed (free it; NULL when
 *  *n is 0), from one read transaction. */
int meta_quota_list(struct meta *m, struct meta_quota **out, size_t *n);

/* What meta_quota_check found for one quota. */
struct meta_quota_check {
	struct meta_quota q;	  /* as stored (repaired: as stored now) */
	int64_t real_space;	  /* counted from the tree */
	int64_t real_inodes;
	int64_t adopted;	  /* homeless files given a home (repair) */
	bool fixed;		  /* the usage was rewritten */
};
/**
 * Count the usage of the quota on @ino from its tree and compare it with
 * the stored one; with @repair, store the counted usage (and adopt
 * homeless single-named files) in the same read-write transaction, so the
 * result is exact even while mounts write.  Errors: -ENOENT (no quota),
 * -EIO, -ENOMEM.
 */
int meta_quota_check(struct meta *m, uint64_t ino, bool repair,
		     struct meta_quota_check *out);
/** Path of directory @ino from the root ("/a/b") into @buf (@n bytes).
 *  -ENOENT: removed; -ENAMETOOLONG. */
int meta_dir_path(struct meta *m, uint64_t ino, char *buf, size_t n);

/**
 * Would growing file @ino from @len (its committed length as the caller
 * knows it; the record's wins when read) to @end bytes pass a quota above its
 * home or the volume's capacity?  A cheap advisory check for write(2),
 * which buffers data and commits it later, so that the error comes from
 * the write as on ext4 (the commit's own check stays authoritative).  0:
 * it fits.  -EDQUOT / -ENOSPC: it does not; *max_end is the largest end
 * that fits (<= @len: nothing does); on success *max_end is that end too
 * (as of now; others may take the room meanwhile).  When no quota exists
 * (as read at most a second ago) no transaction runs.  Any thread.
 */
int meta_check_grow(struct meta *m, uint64_t ino, uint64_t len, uint64_t end,
		    uint64_t *max_end);

/* ---- trees: summary and removal (tree.c) ---- */

/* The totals of one directory's tree (meta_summary). */
struct meta_summary_ent {
	const char *path; /* relative to the top ("" for it), '/'-joined;
			   * valid during the callback */
	uint32_t depth;	  /* 0: the top */
	uint64_t entries; /* names directly in it */
	uint64_t files;	  /* non-directories in the tree, one per name */
	uint64_t dirs;	  /* directories in the tree, itself included */
	uint64_t bytes;	  /* sum of the non-directories' lengths */
};
/* Return 0 to go on, -errno to stop (returned by meta_summary). */
typedef int (*meta_summary_fn)(void *arg, const struct meta_summary_ent *e);

/**
 * Count files, directories and bytes of the tree at @ino from one read
 * view (meta_scan.h), without reading data: one scan per directory and
 * one inode read per name.  @fn gets the top and every directory down to
 * @depth levels below it, sorted by path (a parent before its children),
 * after the whole walk.  A non-directory @ino gives one entry (files 1).
 * Hard links count once per name; the trash is not part of the root.
 * Read and search permission on each directory (-EACCES, like du).
 * Errors: -ENOENT, -EACCES, -EIO, -ENOMEM.  Any thread.
 */
int meta_summary(struct meta *m, const struct meta_cred *c, uint64_t ino,
		 uint32_t depth, meta_summary_fn fn, void *arg);

/*
 * Removing a tree in batches (`tessera rmr`).  Bottom-up: the names of a
 * directory go META_RMTREE_BATCH at a time, one transaction each, with
 * the checks and the fate of meta_unlink and meta_rmdir (read permission
 * to list a directory, may_delete on each name; files to the trash when
 * the volume keeps one, open files sustained); a directory goes in its
 * parent's batch once it is empty.  The first error stops the removal:
 * what was removed before stays removed, nothing the caller may not
 * remove goes.  Not atomic as a whole: entries created meanwhile inside
 * the tree are removed too, or make the last rmdir fail (-ENOTEMPTY).
 */
#define META_RMTREE_BATCH 256
/* Empty the top directory but keep it (the caller removes it). */
#define META_RMTREE_KEEP_TOP 1

struct meta_rmtree;
struct meta_rmtree_stats {
	uint64_t files; /* non-directory names removed */
	uint64_t dirs;	/* directories removed */
};

/**
 * Start removing @name in directory @parent for @c (kept by pointer,
 * with its groups, until meta_rmtree_free).  A non-directory is one
 * meta_unlink (with META_RMTREE_KEEP_TOP: -ENOTDIR).  Errors: -ENOENT,
 * -ENOTDIR, -EACCES (search on @parent), -EPERM (the trash), -EINVAL
 * ("." or ".."), -ENAMETOOLONG, -EIO, -ENOMEM.  *out only on success.
 */
int meta_rmtree_begin(struct meta *m, const struct meta_cred *c,
		      uint64_t parent, const char *name, int flags,
		      struct meta_rmtree **out);
/**
 * Run one batch (one transaction).  1: the removal is complete; 0: call
 * again; -errno: stopped (later calls return it again).  *st (may be
 * NULL): the totals so far.  One thread at a time.
 */
int meta_rmtree_step(struct meta_rmtree *r, struct meta_rmtree_stats *st);
/** NULL: no-op. */
void meta_rmtree_free(struct meta_rmtree *r);

/* Progress of meta_remove_tree: 0 to go on, -errno to stop there. */
typedef int (*meta_rmtree_fn)(void *arg, const struct meta_rmtree_stats *st);
/**
 * The whole removal: begin, steps (@fn, may be NULL, after each), free.
 * *st (may be NULL): what was removed, also on failure.
 */
int meta_remove_tree(struct meta *m, const struct meta_cred *c,
		     uint64_t parent, const char *name, int flags,
		     meta_rmtree_fn fn, void *arg, struct meta_rmtree_stats *st);

/* ---- trash (trash.c; `tessera trash`) ---- */

/*
 * The trash directory (META_TRASH_INO) holds the last name of each removed
 * non-directory as "PARENT-INO-SECONDS-NAME" (remove.c); directories are
 * never there, so a file whose directory was removed too cannot go back
 * until that directory exists again.
 */
#define META_TRASH_PATH_MAX 4096

/* One trash entry, as meta_trash_list delivers it. */
struct meta_trash_entry {
	const char *entry; /* the name in the trash */
	const char *path;  /* original path ("/a/b/NAME"), or "?/NAME" when
			    * its directory is gone, "?" when the entry name
			    * does not parse */
	uint64_t ino;
	uint64_t parent;   /* original directory (0: unknown) */
	uint32_t mode;	   /* 0 when the inode record is missing */
	uint64_t length;
	int64_t deleted_s; /* deletion time (seconds), -1 when unknown */
	bool parent_gone;
};

/* Return 0 to go on, 1 to stop, -errno to abort (returned). */
typedef int (*meta_trash_fn)(void *arg, const struct meta_trash_entry *e);
/**
 * Every trash entry, in inode order, from one read transaction; @fn runs
 * after it ended (the pointers live until @fn returns).  Errors: -EIO,
 * -ENOMEM, or @fn's.  Any thread.
 */
int meta_trash_list(struct meta *m, meta_trash_fn fn, void *arg);
/**
 * Put trash entry @entry back under its original name in its original
 * directory, in one transaction, like a rename: the directory gets a new
 * readdir cookie for it and mtime/ctime, the inode ctime.  @c (NULL: no
 * checks) must own the file or be root, and may write and search the
 * directory.  @path (may be NULL; @n bytes) gets the original path on
 * success and on -EEXIST / -ESTALE.
 * Errors: -ENOENT (no such entry), -EINVAL (a name that does not parse),
 * -ESTALE (the original directory is gone), -EEXIST (the name is taken),
 * -EACCES, -EPERM, -EIO.
 */
int meta_trash_restore(struct meta *m, const struct meta_cred *c,
		       const char *entry, char *path, size_t n);
/**
 * Delete every trash entry now (as expiry does: data queued for deletion,
 * or kept while open in this process).  @c (NULL: all entries) other than
 * root removes only the entries it owns.  *removed, *kept (may be NULL):
 * entries removed, entries left because @c does not own them.  -EIO.
 */
int meta_trash_empty(struct meta *m, const struct meta_cred *c,
		     uint64_t *removed, uint64_t *kept);

#endif
