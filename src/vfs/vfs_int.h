/*
 * vfs_int.h - private structures of src/vfs/ (not for other tiers).
 *
 * Lock order (outer first):
 *   vfs.files_lock -> vfs_file.lock -> vfs.bg_lock
 *   vfs_locktab.lock and vfs.seen_lock are leaves (taken alone or last;
 *   vfs_locktab.lock never across a txn).
 * files_lock and bg_lock are short data-structure locks.  vfs_file.lock is
 * the per-inode operation lock (like the kernel's inode rwsem): it is held
 * while a write is buffered and while pending slices are committed, so it
 * may be held across uploads and a metadata transaction; nothing else is
 * taken under it except bg_lock.
 */
#ifndef TESSERA_VFS_VFS_INT_H
#define TESSERA_VFS_VFS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "meta/meta.h"
#include "vfs/vfs.h"

struct chunk_store;
struct chunk_writer;
struct buf;
struct vfs_ctl;

/* Virtual files at the root; meta/ never hands out inode numbers this big. */
#define VFS_INO_STATS 0x7FFFFFFF00000001ULL
#define VFS_INO_CONFIG 0x7FFFFFFF00000002ULL
#define VFS_INO_CONTROL 0x7FFFFFFF00000003ULL
#define VFS_INO_ACCESSLOG 0x7FFFFFFF00000004ULL

#define VFS_FILE_BUCKETS 1024
#define VFS_SEEN_N 4096	      /* remembered (length, mtime) of opened files */
#define VFS_MAX_WRITERS 16    /* active slice writers per open inode */
#define VFS_MAX_PENDING 100   /* finished slices before a forced commit */
#define VFS_SCACHE_N 8	      /* cached slice lists per open inode */
#define VFS_COMPACT_READ 5    /* a read meeting this many slices compacts */
#define VFS_COMPACT_WRITE 350 /* a commit leaving more than this compacts */
#define VFS_COMPACT_QUEUE 256

/* One active slice writer: chunk @chunk, slice starts at @pos. */
struct vfs_wslot {
	uint32_t chunk;
	uint32_t pos;
	struct chunk_writer *w;
};

/* A cached slice list of one chunk. */
struct vfs_scache {
	bool valid;
	uint32_t chunk;
	struct slice *s;
	size_t n;
};

/* What an open of @ino saw, for keep_cache at the next open. */
struct vfs_seen {
	uint64_t ino; /* 0: free */
	uint64_t length;
	int64_t mtime_ns;
};

/* State of an inode open in this mount, shared by all its handles. */
struct vfs_file {
	uint64_t ino;
	int refs;	       /* guarded by vfs.files_lock */
	struct vfs_file *next; /* hash chain; guarded by vfs.files_lock */
	pthread_mutex_t lock;
	/* everything below guarded by lock */
	uint64_t length;   /* committed length as this mount knows it */
	uint64_t wlen;	   /* end of uncommitted writes (0: none) */
	int64_t wtime_ns;  /* time of the last uncommitted write */
	uint64_t grow_ok;  /* writes may grow the file to here without */
	int64_t grow_ns;   /* asking again until grow_ns + 1 s (check_grow) */
	bool dirty;	   /* writes not committed yet */
	bool wtime_shown;  /* wtime_ns was reported as mtime */
	int err;	   /* first failed upload/commit, reported once */
	uint32_t ncommits; /* commits since the inode was opened */
	atomic_bool locked; /* a lock call was made on it (not under lock) */
	atomic_uint mgen;  /* bumped by each change made through this mount */
	struct vfs_wslot ws[VFS_MAX_WRITERS];
	size_t nws;
	struct meta_slice_write *pend; /* finished, uncommitted slices */
	size_t npend;
	size_t cappend;
	struct vfs_scache cache[VFS_SCACHE_N];
	unsigned cache_next;
};

enum vfs_handle_kind {
	VFS_H_FILE = 1,
	VFS_H_DIR = 2,
	VFS_H_VIRT = 3,
};

#define VFS_HANDLE_MAGIC 0x7e55e4a1u

struct vfs_handle {
	uint32_t magic;
	enum vfs_handle_kind kind;
	uint64_t ino;
	int flags;		/* open(2) flags */
	struct vfs_file *f;	/* VFS_H_FILE: a reference */
	atomic_bool atime_done; /* relatime update done for this handle */
	/* Sequential reads: where the last read ended, and the last chunk
	 * whose head was prefetched (chunk_readahead_next) + 1. */
	_Atomic uint64_t ra_next;
	_Atomic uint32_t ra_chunk;
	bool keep_cache;	/* vfs_keep_cache (set at open) */
	bool direct_write;	/* vfs_direct_write (set at open) */
	unsigned mgen;		/* f->mgen when opened */
	int64_t atime_ns;	/* times when opened (relatime) */
	int64_t mtime_ns;
	int64_t ctime_ns;
	char *vdata; /* VFS_H_VIRT: the text */
	size_t vlen;
	struct vfs_handle *prev; /* all handles; guarded by vfs.files_lock */
	struct vfs_handle *next;
	struct vfs_ctl *ctl;	/* VFS_H_VIRT of ".control": its requests */
	struct vfs_alog *alog;	/* VFS_H_VIRT of ".accesslog": its queue */
};

/* ---- locks (vfs_lock.c): waiting for the locks kept by meta/ ---- */

struct vfs_locktab {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* broadcast when a lock here may have gone */
	uint64_t gen;	     /* guarded by lock; bumped by each broadcast */
};

void vfs_locktab_init(struct vfs_locktab *t);
void vfs_locktab_release(struct vfs_locktab *t);
/**
 * Drop @owner's fcntl locks (@posix) and/or its flock (@flock) on the
 * inode of @f; nothing to do (no metadata txn) when no lock call was ever
 * made on it while open here.
 */
void vfs_locks_drop(struct vfs *v, struct vfs_file *f, uint64_t owner,
		    bool posix, bool flock);
/** A release (which counted itself in v->releasing) dropped its flock. */
void vfs_locks_released(struct vfs *v);

/* ---- access times noted by reads (vfs_atime.c) ---- */

#define VFS_ATIME_BUCKETS 256
#define VFS_ATIME_MAX 4096 /* pending entries before a flush in-line */

struct vfs_atime_ent {
	uint64_t ino;
	int64_t atime_ns;
	struct vfs_atime_ent *next;
};

struct vfs_atimes {
	pthread_mutex_t flush_lock; /* one writer of the table at a time */
	pthread_mutex_t lock;
	struct vfs_atime_ent *buckets[VFS_ATIME_BUCKETS]; /* guarded by lock */
	size_t n;					  /* guarded by lock */
	atomic_size_t n_atomic; /* n, read without the lock */
};

void vfs_atime_init(struct vfs_atimes *t);
void vfs_atime_release(struct vfs_atimes *t);
/**
 * A read of @a (its attributes as the reader saw them) at @now_ns: note
 * the new atime unless relatime says it is recent enough.  The caller
 * checked noatime and read-only.
 */
void vfs_atime_touch(struct vfs *v, struct meta_attr *a, int64_t now_ns);
/** A read moved @ino's atime to @atime_ns (relatime decided). */
void vfs_atime_note(struct vfs *v, uint64_t ino, int64_t atime_ns);
/** Show a pending atime in @a. */
void vfs_atime_overlay(struct vfs *v, struct meta_attr *a);
/** Write pending atimes in one txn (background worker, unmount). */
int vfs_atime_flush(struct vfs *v);
/** Drop a pending atime of @ino; caller holds v->atimes.flush_lock
 *  across this and the explicit setattr that follows. */
void vfs_atime_forget_locked(struct vfs *v, uint64_t ino);

/* ---- the mount ---- */

struct vfs_creq {
	uint64_t ino;
	uint32_t chunk;
	uint32_t min_slices;
};

struct vfs_stats {
	atomic_uint_fast64_t lookups;
	atomic_uint_fast64_t reads;
	atomic_uint_fast64_t read_bytes;
	atomic_uint_fast64_t writes;
	atomic_uint_fast64_t write_bytes;
	atomic_uint_fast64_t commits;
	atomic_uint_fast64_t fsyncs;
	atomic_uint_fast64_t compactions;
	atomic_uint_fast64_t deleted_slices;
	atomic_uint_fast64_t handles;
	atomic_int_fast64_t kernel_refs; /* entries given minus forgotten */
};

/* readahead across small files (vfs_ahead.c) */
#define VFS_AHEAD_STREAMS 8 /* runs followed at once */
#define VFS_AHEAD_QUEUE 8   /* windows waiting for the worker */

struct vfs_ahead_stream {
	uint64_t use;	/* last use (a->clock); 0: free */
	uint64_t last;	/* the last small file it opened for reading */
	unsigned run;	/* opens in a row at last + 1 or + 2 */
	uint64_t until; /* inodes up to here were asked for */
};

struct vfs_ahead {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t th;
	bool inited, started, stop;
	struct vfs_ahead_stream st[VFS_AHEAD_STREAMS];
	uint64_t clock;
	struct {
		uint64_t from, to;
	} q[VFS_AHEAD_QUEUE]; /* pending windows, a ring */
	unsigned qhead, nq;
	atomic_uint_fast64_t blocks; /* block fetches it queued */
};

struct vfs {
	struct meta *m;
	struct obj_store *os;
	struct chunk_store *cs;
	struct meta_format fmt;
	struct vfs_conf conf;
	char mountpoint[4096];
	int64_t start_ns;

	pthread_mutex_t files_lock;
	struct vfs_file *files[VFS_FILE_BUCKETS]; /* guarded by files_lock */
	size_t nfiles;				  /* guarded by files_lock */
	struct vfs_handle
		*handles;	   /* all open handles; guarded by files_lock */
	pthread_mutex_t seen_lock; /* a leaf */
	struct vfs_seen seen[VFS_SEEN_N]; /* guarded by seen_lock */

	struct vfs_locktab locks;
	atomic_int releasing; /* vfs_release calls running (vfs_lock.c) */
	struct vfs_atimes atimes;
	atomic_uint_fast64_t nwriters; /* active slice writers, all files */
	uint64_t mem_limit;	       /* the chunk pool bound */
	uint32_t block_size;
	char *settings; /* the mount's effective settings, for ".config" */
	/* ".accesslog" readers (vfs_accesslog.c) */
	pthread_mutex_t alog_lock;
	pthread_cond_t alog_cond;
	struct vfs_alog *alog; /* guarded by alog_lock */
	atomic_int alog_n;     /* readers; read without the lock */

	/* background worker (vfs_bg.c) */
	pthread_t bg;
	bool bg_started;
	pthread_mutex_t bg_lock;
	pthread_cond_t bg_cond;
	bool bg_stop;				 /* guarded by bg_lock */
	struct vfs_creq creq[VFS_COMPACT_QUEUE]; /* guarded by bg_lock */
	size_t ncreq;				 /* guarded by bg_lock */
	atomic_uint_fast64_t compact_gen;	 /* bumped by each compaction */

	struct vfs_ahead ahead;
	struct vfs_stats st;
};

/* vfs.c */
int64_t vfs_now_ns(void);
/** The text of virtual file @ino, malloc'ed into *out. */
int vfs_virtual_text(struct vfs *v, uint64_t ino, char **out, size_t *len);

/* vfs_file.c */
/** A new handle, linked into v->handles (freed at shutdown if the kernel
 *  never releases it). */
int vfs_handle_new(struct vfs *v, enum vfs_handle_kind kind, uint64_t ino,
		   int flags, struct vfs_handle **out);
void vfs_handle_free(struct vfs *v, struct vfs_handle *h);
/** Find the open state of @ino and take a reference; NULL when not open. */
struct vfs_file *vfs_file_find(struct vfs *v, uint64_t ino);
void vfs_file_put(struct vfs *v, struct vfs_file *f);
/** Caller holds f->lock.  Finish writers and commit; @sync: obj_sync
 *  between upload and commit. */
int vfs_file_commit(struct vfs *v, struct vfs_file *f, bool sync);
/** Caller holds f->lock. */
void vfs_file_invalidate(struct vfs_file *f);
/** Show @a's pending writes (length, mtime, ctime) if its inode is open. */
void vfs_file_overlay(struct vfs *v, struct meta_attr *a);
/** Invalidate the cached slice lists of @ino if it is open. */
void vfs_file_invalidate_ino(struct vfs *v, uint64_t ino);
/** Commit every open file (vfs_flush_all). */
int vfs_files_commit_all(struct vfs *v, bool sync);
/**
 * Open @ino whose attributes are @a (permission already checked): take a
 * reference on its state, apply O_TRUNC; *a gets the length seen now.
 */
int vfs_open_checked(struct vfs *v, uint64_t ino, int flags,
		     struct meta_attr *a, uint64_t *fh);
/** After an open of @fh: start fetching a small file's block (see .c). */
void vfs_open_prefetch(struct vfs *v, uint64_t fh, const struct meta_attr *a);
/** Open a virtual file (read-only); its text is made now. */
int vfs_open_virtual(struct vfs *v, uint64_t ino, int flags, uint64_t *fh);
/** Free remaining file states at shutdown. */
void vfs_files_free_all(struct vfs *v);

/* vfs_control.c: ".control" (warmup requests) and cache counters */
/** Open ".control" (read-write) for the caller @c (may be NULL). */
int vfs_control_open(struct vfs *v, const struct vfs_ctx *c, int flags,
		     uint64_t *fh);
void vfs_control_free(struct vfs_ctl *ctl);
/** A request line; @len, -EINVAL (malformed) or -EBUSY. */
ssize_t vfs_control_write(struct vfs *v, struct vfs_handle *h,
			  const void *buf, size_t len);
/** The next response line (one per read), 0 bytes when idle. */
ssize_t vfs_control_read(struct vfs *v, struct vfs_handle *h, void *buf,
			 size_t len);
/** Append the disk cache's counters to ".stats" text (none: nothing). */
int vfs_cache_stats_text(struct vfs *v, struct buf *b);

/* vfs_bg.c */
int vfs_bg_start(struct vfs *v);
void vfs_bg_stop(struct vfs *v);
/** Ask the worker to compact (ino, chunk) if it has >= @min_slices. */
void vfs_bg_compact(struct vfs *v, uint64_t ino, uint32_t chunk,
		    uint32_t min_slices);
/** One deletion pass (also used at shutdown and by tests). */
int vfs_bg_delete_pass(struct vfs *v);
/** Compact now (synchronous; also used by tests).  0, or -ESTALE/-errno. */
int vfs_compact_chunk(struct vfs *v, uint64_t ino, uint32_t chunk,
		      uint32_t min_slices);

/* vfs_ahead.c */
int vfs_ahead_start(struct vfs *v);
void vfs_ahead_stop(struct vfs *v);
/** A small file @ino was opened for reading and its block fetched. */
void vfs_ahead_opened(struct vfs *v, uint64_t ino);

/* vfs_tools.c: the ".control" requests of info, summary and rmr */
struct vfs_tool_job;
/**
 * "info INO" and "summary INO DEPTH" (@req: the rest after the word,
 * @n bytes): append the whole answer (format in vfs_tools.c) to @reply.
 * Returns 0 (failures are answer lines), -EINVAL (malformed), -ENOMEM.
 */
int vfs_tool_info(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply);
int vfs_tool_summary(struct vfs *v, const struct meta_cred *c,
		     const char *req, size_t n, struct buf *reply);
/**
 * "rmr PARENT NAMELEN\nNAME": on success *job is set (the answer comes
 * from vfs_tool_job_step); otherwise an answer line goes to @reply.
 * @c is copied.  -EINVAL (malformed), -ENOMEM.
 */
int vfs_tool_rmr(struct vfs *v, const struct meta_cred *c, const char *req,
		 size_t n, struct buf *reply, struct vfs_tool_job **job);
/**
 * Work on @j for about 100 ms and append one answer line to @reply.
 * 0: more to do; 1: finished (free @j); -ENOMEM.  Caller holds the
 * handle's lock.
 */
int vfs_tool_job_step(struct vfs *v, struct vfs_tool_job *j,
		      struct buf *reply);
/** NULL: no-op. */
void vfs_tool_job_free(struct vfs_tool_job *j);

/* vfs_trash.c: the ".control" request "trash" */
/**
 * "restore NAMELEN\nENTRY" or "empty" (@req: the rest after the word
 * "trash", @n bytes), with the opener's credentials @c (may be NULL):
 * append the answer line to @reply (format in vfs_trash.c).  Returns 0
 * (failures are answer lines), -EINVAL (malformed), -ENOMEM.
 */
int vfs_ctl_trash(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply);

/* ---- ".accesslog" (vfs_accesslog.c) ---- */
struct vfs_alog;
int vfs_accesslog_open(struct vfs *v, int flags, uint64_t *fh);
/* Wait up to a second for lines; "#\n" when none came. */
ssize_t vfs_accesslog_read(struct vfs *v, struct vfs_handle *h, void *out,
			   size_t len);
void vfs_accesslog_close(struct vfs *v, struct vfs_handle *h);

/* vfs_quota.c: the ".control" request "quota" */
/**
 * "set INO WHICH SPACE INODES", "delete INO" or "check INO REPAIR" (@req:
 * the rest after the word "quota", @n bytes), root only: append the
 * answer line to @reply (format in vfs_quota.c).  Returns 0 (failures are
 * answer lines), -EINVAL (malformed), -ENOMEM.
 */
int vfs_ctl_quota(struct vfs *v, const struct meta_cred *c, const char *req,
		  size_t n, struct buf *reply);

#endif
