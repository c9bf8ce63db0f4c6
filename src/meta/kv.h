/*
 * kv.h - the small transactional interface every metadata engine implements
 * (SQLite, Redis, PostgreSQL, MariaDB/MySQL, etcd).  meta/ writes every namespace rule once on top
 * of it; an engine knows nothing of inodes or permissions.
 *
 * Model: records live in numbered groups (enum kv_group).  Inside a group a
 * key is a byte string (at most KV_KEY_MAX bytes) and a value a byte string
 * (at most KV_VAL_MAX bytes).  meta/ encodes numbers in keys big-endian so
 * that byte order is numeric order; scan returns keys in byte order.
 *
 * Transactions: read-only ones see a consistent snapshot, taken at begin
 * (commits that end after begin are not visible); read-write ones are
 * serializable.  commit may answer -EAGAIN ("conflict: retry"): the caller
 * rolls nothing back (the txn is finished either way) and runs the whole
 * transaction again.  A txn belongs to one thread; an engine may be used from
 * many threads at once (each with its own txns).
 *
 * Errors: 0 or -errno.  -ENOENT (get: no such key), -EAGAIN (commit:
 * conflict), -EIO (engine failed; logged by the engine with the detail),
 * -ENOMEM.  Library codes never leave the engine.
 */
#ifndef TESSERA_META_KV_H
#define TESSERA_META_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/url.h"

#define KV_KEY_MAX 1024
#define KV_VAL_MAX (16 * 1024 * 1024)

enum kv_group {
	KV_SETTING = 1,  /* "volume" -> format JSON */
	KV_COUNTER = 2,  /* name -> int64 (8 bytes big-endian) */
	KV_INODE = 3,    /* ino -> packed attributes */
	KV_DENTRY = 4,   /* parent ino + name -> child ino, type, cookie */
	KV_DIRIDX = 5,   /* parent ino + cookie -> name (readdir order) */
	KV_CHUNK = 6,    /* ino + chunk index -> packed slice list */
	KV_SLICEREF = 7, /* slice id -> extra reference count */
	KV_SYMLINK = 8,  /* ino -> target */
	KV_XATTR = 9,    /* ino + name -> value */
	KV_FLOCK = 10,   /* ino -> {session, owner, type}... (meta_int.h) */
	KV_PLOCK = 11,   /* ino -> {session, owner, range}... (meta_int.h) */
	KV_SESSION = 12, /* session id -> info; heartbeat */
	KV_SUSTAINED = 13, /* session id + ino -> "" (unlinked while open) */
	KV_DELFILE = 14, /* ino -> length (file to delete) */
	KV_DELSLICE = 15, /* slice id -> size, deleted-at txn seq */
	KV_DIRSTAT = 16, /* ino -> length, space, inodes */
	KV_QUOTA = 17,   /* ino -> limits and usage */
	KV_CHECKPOINT = 18, /* name -> txn seq, next slice id, time */
	KV_GROUP_MAX = 19,
};

struct kv_engine;
struct kv_txn;

/*
 * Called by scan for each record in key order.  Key and value are valid only
 * during the call.  Return 0 to continue, 1 to stop early (scan then returns
 * 0), or -errno to abort the scan with that code (the txn stays usable).
 * The callback may call get, put, del and scan on the same txn; deleting
 * the record being visited does not disturb the scan, but whether records
 * put or deleted further ahead are visited is unspecified.
 */
typedef int (*kv_scan_fn)(void *arg, const void *key, size_t klen,
			  const void *val, size_t vlen);

struct kv_engine_ops {
	const char *scheme;
	/**
	 * Start a transaction; read-write when @rw.  -EAGAIN: the store is
	 * busy (e.g. locked by another process); retry as after a commit
	 * conflict.  SQLite: one read-write txn per thread at a time
	 * (-EDEADLK otherwise); read-only txns may run beside it.
	 */
	int (*begin)(struct kv_engine *e, bool rw, struct kv_txn **out);
	/** Read a value into @val (reset first); -ENOENT when missing. */
	int (*get)(struct kv_txn *t, int grp, const void *key, size_t klen,
		   struct buf *val);
	int (*put)(struct kv_txn *t, int grp, const void *key, size_t klen,
		   const void *val, size_t vlen);
	/** Delete a key; a missing key is not an error. */
	int (*del)(struct kv_txn *t, int grp, const void *key, size_t klen);
	/**
	 * Visit records of @grp whose key starts with @prefix (plen may be 0)
	 * and is >= @start (NULL: from the first), in key order, at most
	 * @limit records (0: no limit).
	 */
	int (*scan)(struct kv_txn *t, int grp, const void *prefix, size_t plen,
		    const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		    void *arg);
	/** Commit; -EAGAIN: conflict, run the transaction again.  Frees @t. */
	int (*commit)(struct kv_txn *t);
	/** Abandon the transaction.  Frees @t. */
	void (*rollback)(struct kv_txn *t);
	/** Make every committed transaction durable (fsync).  May be NULL. */
	int (*sync)(struct kv_engine *e);
	/** Remove every record of the volume (format --force, destroy). */
	int (*wipe)(struct kv_engine *e);
	void (*close)(struct kv_engine *e);
};

/* Base of every engine and txn; implementations embed them first. */
struct kv_engine {
	const struct kv_engine_ops *ops;
	char desc[512]; /* URL, password masked */
};

struct kv_txn {
	struct kv_engine *eng;
	bool rw;
};

/*
 * The engine registry (kv_registry.c): one row per URL scheme, the only
 * list of metadata schemes.  kv_open, url_parse (url_meta_rule) and the CLI
 * (kv_url_is_file) all consult it, the way SQLite consults its VFS list.
 * A new engine is one row here plus its kv_xxx_open.
 */
enum {
	/*
	 * The database is a file of this host, reached through its path: one
	 * mount at a time (mount lock), and what replication ships.
	 */
	KV_ENG_FILE = 1u << 0,
};

struct kv_engine_class {
	struct url_rule url;  /* .name is the scheme, lower case */
	const char *form;     /* URL form, for messages and help */
	unsigned flags;       /* KV_ENG_* */
	int (*open)(const char *url, bool create, struct kv_engine **out);
};

/** The row for @scheme (lower case, without "://"); NULL when none. */
const struct kv_engine_class *kv_engine_find(const char *scheme);
/** The row for the scheme of @url; NULL when not a metadata URL. */
const struct kv_engine_class *kv_engine_for_url(const char *url);
/** True when @url names a file database (KV_ENG_FILE: sqlite3://). */
bool kv_url_is_file(const char *url);
/** The rows, *n of them (help texts, tests). */
const struct kv_engine_class *kv_engines(size_t *n);

/**
 * Open the engine for @url (a scheme of the registry).  With
 * @create, the database (file, schema) is created when missing; otherwise a
 * missing database is -ENOENT.  Logs one clear line naming the URL (password
 * masked) on failure.  Do not carry an open engine across fork(): open it
 * in the process that uses it.
 */
int kv_open(const char *url, bool create, struct kv_engine **out);
/** kv_close(NULL) is a no-op. */
void kv_close(struct kv_engine *e);

int kv_begin(struct kv_engine *e, bool rw, struct kv_txn **out);
int kv_get(struct kv_txn *t, int grp, const void *key, size_t klen,
	   struct buf *val);
int kv_put(struct kv_txn *t, int grp, const void *key, size_t klen,
	   const void *val, size_t vlen);
int kv_del(struct kv_txn *t, int grp, const void *key, size_t klen);
int kv_scan(struct kv_txn *t, int grp, const void *prefix, size_t plen,
	    const void *start, size_t slen, size_t limit, kv_scan_fn fn,
	    void *arg);
int kv_commit(struct kv_txn *t);
void kv_rollback(struct kv_txn *t);
int kv_sync(struct kv_engine *e);
int kv_wipe(struct kv_engine *e);

/** Compare two keys in byte order (memcmp, then shorter first): <0, 0, >0. */
int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/**
 * The smallest key greater than every key starting with @p (@n bytes): drop
 * trailing 0xff bytes, then increment the last byte.  Writes it to @out
 * (room for @n bytes) and returns its length; 0 when @p is empty or all
 * 0xff (no upper bound).  For engines that scan a prefix as a key range.
 */
size_t kv_prefix_end(const unsigned char *p, size_t n, unsigned char *out);

/** Add @delta to counter @name (missing = 0) inside @t; *out = new value. */
int kv_incr(struct kv_txn *t, const char *name, int64_t delta, int64_t *out);

/* Engine constructors (used by kv_open). */
/**
 * sqlite3:///abs/path.db[?busy_timeout=MS&readers=N]: busy_timeout bounds
 * the wait for a file locked by another process (default 5000 ms), readers
 * the pool of read-only connections (default 16).  @create needs the
 * parent directory to exist.  -ENOENT: no such file (or an empty one) and
 * not @create; -EINVAL: not an SQLite database, or not a Tessera one.
 */
int kv_sqlite_open(const char *url, bool create, struct kv_engine **out);
/**
 * redis://[user:pass@]host[:port][/db]: optimistic txns (WATCH/MULTI/EXEC).
 * A read-only txn's commit may also answer -EAGAIN: Redis has no snapshots,
 * so commit checks that nothing the txn read changed meanwhile.  Errors at
 * open: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH (cannot connect), -EACCES
 * (authentication), -ENOENT (not formatted, without @create), -EINVAL.
 */
int kv_redis_open(const char *url, bool create, struct kv_engine **out);
/**
 * postgres://user[:pass]@host[:port]/db (postgresql:// too; query
 * parameters go to libpq).  Read-write txns are SERIALIZABLE: get, put,
 * del and scan may also answer -EAGAIN (serialization failure); the txn is
 * then doomed and must be rolled back and run again.  Errors at open:
 * -ECONNREFUSED, -ETIMEDOUT, -EACCES (authentication), -ENOENT (database
 * or schema missing), -EINVAL.
 */
int kv_pg_open(const char *url, bool create, struct kv_engine **out);
/**
 * mysql://user[:pass]@host[:port]/db (MariaDB or MySQL; password also from
 * TESSERA_META_PASSWORD).  Read-write txns lock what they read (2PL):
 * get, put, del and scan may also answer -EAGAIN (deadlock, lock wait
 * timeout); the txn is then doomed and must be rolled back and run again.
 * A read-write txn may wait up to the lock wait timeout (4 s) for another
 * txn's locks.  Errors at open: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH,
 * -EACCES (authentication), -ENOENT (database or schema missing), -EINVAL.
 */
int kv_mysql_open(const char *url, bool create, struct kv_engine **out);
/**
 * etcd://[user:pass@]host:port[,host:port...][/prefix] (etcds:// for
 * https; password also from TESSERA_META_PASSWORD; port 2379 when absent):
 * etcd v3 through its JSON gateway.  Optimistic txns: reads at one
 * revision, commit compares what was read; commit answers -EAGAIN on a
 * conflict, -EFBIG when the txn exceeds the server's request limits
 * (--max-txn-ops, --max-request-bytes).  Requests fail over between the
 * listed members; an outage gives -EIO after a bound (about 15 s).
 * Errors at open: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -EACCES
 * (authentication), -ENOENT (not formatted, without @create), -EINVAL.
 */
int kv_etcd_open(const char *url, bool create, struct kv_engine **out);

#endif
