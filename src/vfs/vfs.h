/*
 * vfs.h - POSIX file semantics over meta/ (namespace, slice map) and chunk/
 * (slice bytes).  DESIGN sections 1, 3 and 5.
 *
 * The API is inode-level, shaped like the FUSE low-level protocol, so that
 * src/fuse/ is only marshalling: every call takes inode numbers (the root
 * is TESSERA_ROOT_INO) and, where a file is open, the handle that
 * vfs_open/vfs_create/vfs_opendir returned.  Handles are opaque 64-bit
 * values; one open file description = one handle.
 *
 * Semantics:
 *  - Permission checks happen in meta/ with the caller's credentials
 *    (struct vfs_ctx).  Data calls on a handle (read, write, fallocate,
 *    ftruncate through a writable handle) use the access mode the handle
 *    was opened with, as Linux does.
 *  - Writes are buffered per open inode (shared by all handles of it in
 *    this mount) and committed to metadata in one transaction by flush,
 *    fsync, release, a read of the same inode, a truncate, or when too many
 *    slices are pending.  getattr reports the length including pending
 *    writes.  fsync makes the objects durable (obj_sync), commits, then
 *    makes the metadata durable (meta_sync).
 *  - Locks (flock and fcntl byte ranges) live in metadata (meta_setlk,
 *    meta_flock): they exclude other owners of this mount and of every
 *    other mount of the volume, and go when the mount's session ends or
 *    is found dead.  A blocking request polls with backoff and wakes at
 *    once on a release in this mount.
 *  - The root holds virtual files ".stats" and ".config" (read-only text,
 *    hidden from readdir).  ".stats" starts with "pid N" of the mount
 *    process (tessera umount uses it).  ".control" (read-write, also
 *    hidden) takes requests: disk-cache warmup, clone, and what
 *    vfs_conf.control serves (vfs_control.c).
 *
 * Errors: 0 / byte counts, or -errno as meta/ defines them, plus -EBADF
 * (bad handle), -EROFS (read-only mount), -EIO (data path), -EINTR (a
 * blocking lock wait was interrupted).
 *
 * Threads: every call may be made from any thread at once.  A vfs_ctx is
 * borrowed for the call.
 */
#ifndef TESSERA_VFS_VFS_H
#define TESSERA_VFS_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta/meta.h"

struct vfs;
struct obj_store;
struct frame_conf;
struct cache_conf;
struct statvfs;
struct buf;
struct vfs_ctx;

/* When reads move atime (the mount options of the same names). */
enum vfs_atime_mode {
	VFS_RELATIME = 0, /* when atime <= mtime or ctime, or a day old */
	VFS_NOATIME,	  /* never */
	VFS_STRICTATIME,  /* every read */
};

struct vfs_conf {
	bool read_only;
	enum vfs_atime_mode atime;
	bool nodiratime; /* readdir leaves directories' atime alone */
	uint64_t buffer_size;	/* chunk memory pool, bytes (0: 300 MiB) */
	int max_uploads;	/* upload threads (0: 20) */
	uint32_t max_readahead; /* bytes (0: chunk default) */
	const char *mountpoint; /* shown in .stats; may be NULL */
	bool no_background;	/* no deletion/compaction worker (tests) */
	/* How blocks are encoded (copied, not kept): the codec and, for an
	 * encrypted volume, the data key (cli_frame_conf).  NULL: from @fmt,
	 * which works for plain and compressed volumes only. */
	const struct frame_conf *frame;
	/* Local disk cache and write-back (cache/cache.h), borrowed for
	 * vfs_new; NULL: none. */
	const struct cache_conf *cache;
	/* More ".stats" lines, appended to @b (e.g. replication state of
	 * the metadata engine); may be NULL.  Any thread. */
	int (*stats_extra)(void *arg, struct buf *b);
	void *stats_arg;
	/*
	 * Requests to ".control" that vfs/ does not handle itself
	 * ("checkpoint", vfs_control.c), after every open file was committed
	 * and synced, with the opener's credentials (@c may be NULL): @cmd
	 * is the first word, @req the rest of the request (@alen bytes).
	 * Append the answer's text to @reply (sent after "0 " or "-ERRNO
	 * "); return 0 or -errno.  May be NULL (-ENOSYS).
	 */
	int (*control)(void *arg, const struct vfs_ctx *c, const char *cmd,
		       const char *req, size_t alen, struct buf *reply);
	void *control_arg;
	bool no_readahead;	/* no readahead (max_readahead is ignored) */
};

/* The caller of one request. */
struct vfs_ctx {
	struct meta_cred cred;
	/* Set by fuse/: true when the request was interrupted (may be NULL). */
	bool (*interrupted)(void *arg);
	void *arg;
};

/* A byte-range lock, as fcntl F_GETLK/F_SETLK see it. */
struct vfs_lock {
	int type; /* F_RDLCK, F_WRLCK, F_UNLCK */
	uint64_t start;
	uint64_t end; /* inclusive; UINT64_MAX: to the end of file */
	uint32_t pid;
};

/* One directory entry handed to a vfs_readdir callback. */
struct vfs_dirent {
	const char *name;
	uint64_t ino;
	uint32_t type; /* S_IFMT bits */
	uint64_t next; /* offset to pass to resume after this entry */
	const struct meta_attr *attr; /* readdirplus only, else NULL */
};

/* Return 0 to continue, 1 to stop (entry not consumed), -errno to abort. */
typedef int (*vfs_dirent_fn)(void *arg, const struct vfs_dirent *d);

/* ---- lifecycle ---- */

/**
 * Start a mount's file layer.  On success the vfs owns @m and @os (they are
 * closed by vfs_free) and starts the background worker (slice deletion,
 * compaction).  @fmt and @conf are copied.  -ENOMEM, or the chunk store's
 * error.
 */
int vfs_new(struct meta *m, struct obj_store *os, const struct meta_format *fmt,
	    const struct vfs_conf *conf, struct vfs **out);
/**
 * Commit every pending write of every open file, then make objects and
 * metadata durable.  Returns the first error.  Any thread.
 */
int vfs_flush_all(struct vfs *v);
/** vfs_flush_all, stop the worker, free everything.  NULL: no-op. */
void vfs_free(struct vfs *v);

/* ---- namespace ---- */
int vfs_lookup(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, struct meta_attr *out);
/**
 * The kernel is given @n references to @ino: an entry in a reply to
 * lookup, create, mknod, mkdir, symlink, link or readdirplus (not "." and
 * "..").  Call before the reply goes out, and vfs_forget if it fails, so a
 * FORGET never overtakes its reference.  While referenced, an inode that a
 * rename replaces stays openable (nlink 0) until the last forget.  Cheap;
 * any thread.
 */
void vfs_ref(struct vfs *v, uint64_t ino, uint64_t n);
/** The kernel dropped @n references to @ino; the last may delete it. */
void vfs_forget(struct vfs *v, uint64_t ino, uint64_t n);
/** Attributes; the length includes this mount's pending writes. */
int vfs_getattr(struct vfs *v, uint64_t ino, struct meta_attr *out);
/**
 * Change attributes (META_SET_* in @mask, values in @in).  @fh is the handle
 * of ftruncate/futimens or 0.  A size change first commits pending writes.
 */
int vfs_setattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		uint64_t fh, uint32_t mask, const struct meta_attr *in,
		struct meta_attr *out);
/**
 * chattr: set the inode flags (META_FL_*, meta_set_flags); read them with
 * vfs_getattr.  -EPERM for virtual files, -EROFS, -EOPNOTSUPP.
 */
int vfs_set_flags(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		  uint32_t flags, struct meta_attr *out);
int vfs_access(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int mask);
int vfs_mknod(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, uint64_t rdev,
	      struct meta_attr *out);
int vfs_mkdir(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, struct meta_attr *out);
int vfs_symlink(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
		const char *name, const char *target, struct meta_attr *out);
/** Target into @buf (size @n, NUL-terminated); length or -errno. */
ssize_t vfs_readlink(struct vfs *v, uint64_t ino, char *buf, size_t n);
int vfs_link(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	     uint64_t newparent, const char *newname, struct meta_attr *out);
int vfs_unlink(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name);
int vfs_rmdir(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name);
/** @flags: META_RENAME_NOREPLACE, META_RENAME_EXCHANGE. */
int vfs_rename(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, uint64_t newparent, const char *newname,
	       uint32_t flags);

/* ---- files ---- */
/**
 * Open @ino with open(2) @flags (access mode, O_TRUNC, O_APPEND...).
 * Checks permission, truncates on O_TRUNC, returns a handle in *fh and the
 * fresh attributes in *out (may be NULL).
 */
int vfs_open(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int flags,
	     uint64_t *fh, struct meta_attr *out);
/**
 * Whether the kernel may keep the page cache of the file behind handle
 * @fh (from vfs_open): this mount saw the same length and mtime at the
 * previous open, and nothing was written through it since.  False for
 * anything but an open file handle.
 */
bool vfs_keep_cache(struct vfs *v, uint64_t fh);
/**
 * Whether writes through handle @fh (from vfs_open or vfs_create) may
 * bypass the kernel's page cache: a write-only descriptor on a file whose
 * writes need not drop privileges (no set-id bits, no file capabilities).
 */
bool vfs_direct_write(struct vfs *v, uint64_t fh);
/**
 * O_TMPFILE: an unnamed regular file in @parent, opened (@flags without
 * the O_TMPFILE bits); linkable by a later link unless O_EXCL.  Deleted
 * at its last release unless linked meanwhile.
 */
int vfs_tmpfile(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
		uint32_t mode, int flags, uint64_t *fh, struct meta_attr *out);
/** Create a regular file and open it (O_EXCL honoured). */
int vfs_create(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, uint32_t mode, int flags, uint64_t *fh,
	       struct meta_attr *out);
/** Read up to @len bytes at @off into @buf; short only at end of file. */
ssize_t vfs_read(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
		 void *buf, size_t len);
/** Buffer a write; returns @len or -errno (-EBADF: not open for writing). */
ssize_t vfs_write(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
		  const void *buf, size_t len);
/**
 * close(2) of one descriptor: commit pending writes; drop the fcntl locks
 * of @lock_owner.  Reports an earlier write error once.
 */
int vfs_flush(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t lock_owner);
/** Last close of a handle: commit, drop its flock lock, free it. */
int vfs_release(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t lock_owner);
/** Commit pending writes and make data and metadata durable. */
int vfs_fsync(struct vfs *v, uint64_t ino, uint64_t fh, bool datasync);
/** fallocate(2) @mode: 0, FALLOC_FL_KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE. */
int vfs_fallocate(struct vfs *v, uint64_t ino, uint64_t fh, int mode,
		  uint64_t off, uint64_t len);
/** SEEK_DATA / SEEK_HOLE from @off; result in *out.  -ENXIO past EOF. */
int vfs_lseek(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
	      int whence, uint64_t *out);
/** Copy through read/write; returns bytes copied. */
ssize_t vfs_copy_file_range(struct vfs *v, uint64_t ino_in, uint64_t fh_in,
			    uint64_t off_in, uint64_t ino_out, uint64_t fh_out,
			    uint64_t off_out, size_t len);

/* ---- locks (shared by all mounts of the volume) ---- */
/** F_GETLK: *lk in: the range and type asked for; out: a conflicting lock
 *  or type F_UNLCK. */
int vfs_getlk(struct vfs *v, uint64_t ino, uint64_t owner, struct vfs_lock *lk);
/**
 * F_SETLK (@wait false: -EAGAIN on conflict) or F_SETLKW (@wait: block;
 * -EINTR when @c says the request was interrupted).
 */
int vfs_setlk(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	      uint64_t owner, const struct vfs_lock *lk, bool wait);
/** flock(2): @op LOCK_SH/LOCK_EX/LOCK_UN, optionally | LOCK_NB. */
int vfs_flock(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	      uint64_t owner, int op);

/* ---- directories ---- */
int vfs_opendir(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int flags,
		uint64_t *fh);
/**
 * List from @off (0: start; otherwise a vfs_dirent.next) calling @fn.
 * @plus asks for attributes.
 */
int vfs_readdir(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		uint64_t fh, uint64_t off, bool plus, vfs_dirent_fn fn,
		void *arg);
int vfs_releasedir(struct vfs *v, uint64_t ino, uint64_t fh);
int vfs_fsyncdir(struct vfs *v, uint64_t ino, uint64_t fh, bool datasync);

/* ---- misc ---- */
int vfs_statfs(struct vfs *v, uint64_t ino, struct statvfs *out);
ssize_t vfs_getxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		     const char *name, void *buf, size_t n);
int vfs_setxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		 const char *name, const void *val, size_t len, int flags);
ssize_t vfs_listxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		      char *buf, size_t n);
int vfs_removexattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		    const char *name);

/** True for the root's virtual files (fuse/ opens them with direct_io). */
bool vfs_is_virtual(uint64_t ino);

/* ---- helpers shared with tests ---- */

/* A visible piece of a chunk: [pos, pos+len) shows slice @id (0: zeros). */
struct vfs_seg {
	uint32_t pos;
	uint32_t len;
	uint64_t id;
};

/**
 * Resolve a chunk's slice list (oldest first) into its visible pieces in
 * position order; uncovered ranges are left out.  *out is malloc'ed.
 * 0 or -ENOMEM.
 */
int vfs_resolve_slices(const struct slice *s, size_t n, struct vfs_seg **out,
		       size_t *nout);

/**
 * The mount's counters as ".stats" shows them ("name value" lines, then
 * the conf's stats_extra lines), appended to @b.  Any thread.
 */
int vfs_stats_text(struct vfs *v, struct buf *b);

/**
 * ".accesslog" at the mount root streams one line per request to whoever
 * reads it.  vfs_accesslog_on: is anyone reading (one atomic load; format
 * lines only then); vfs_accesslog_add: queue @line (@n bytes, ending in a
 * newline) for every reader.  Any thread.
 */
bool vfs_accesslog_on(struct vfs *v);
void vfs_accesslog_add(struct vfs *v, const char *line, size_t n);

#endif
