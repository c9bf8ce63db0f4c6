/*
 * engine_sqlite.c - the SQLite metadata engine (kv.h on one local file).
 *
 * Layout: one table kv(g, k, v) keyed by (group, key) WITHOUT ROWID, so a
 * group's records are one contiguous B-tree range in key (memcmp) order, plus
 * tessera_schema(version) with a single row.  Keys and values are always
 * bound as BLOBs: SQLite orders BLOBs with memcmp then length, which is the
 * byte order kv.h promises (a TEXT binding would sort before every BLOB).
 *
 * Connections and concurrency:
 *   - one writer connection, guarded by wlock.  A read-write txn takes wlock
 *     in begin (BEGIN IMMEDIATE) and drops it in commit/rollback, so
 *     read-write txns of this process are serialized and commit never meets
 *     a conflict from inside the process.  Another process holding the write
 *     lock makes begin wait busy_timeout, then answer -EAGAIN.
 *   - a bounded pool of reader connections (query_only).  A read-only txn
 *     takes one (waiting on pool_cond when all are busy), runs BEGIN and one
 *     read so its WAL snapshot is fixed at begin, not at its first get.
 *   - every connection caches its prepared statements (SQ_NSTMT).  A scan
 *     started from inside a scan callback of the same txn finds the cached
 *     statement busy and prepares a private one.
 * Lock order: wlock before pool_lock (wipe/close take both; nothing else
 * holds two).  No mutex is held while calling a scan callback except wlock,
 * which belongs to the calling txn anyway.
 *
 * Failure inside a txn: SQLite may roll a txn back by itself (SQLITE_FULL,
 * IOERR, NOMEM).  Later statements would then run in autocommit mode and
 * commit one by one, so the first real error is remembered in t->err and
 * every later call, commit included, returns it; commit rolls back.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL, so a commit survives
 * a process crash but not a power loss until the WAL is synced.  sq_sync
 * fsyncs the -wal file and the db file (through SQLite's own file handles:
 * see there why) and the directory: a frame committed
 * before the call is either still in the WAL, or was copied by a checkpoint
 * which (under NORMAL) synced the db before the WAL could be reused.
 *
 * Errors: SQLite codes become -errno in sq_errno(): BUSY/LOCKED -> -EAGAIN,
 * FULL -> -ENOSPC, NOMEM -> -ENOMEM, READONLY -> -EROFS, the rest -EIO.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "util/log.h"
#include "util/url.h"

#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQ_SCHEMA_VERSION 1
#define SQ_BUSY_TIMEOUT_MS 5000 /* default; ?busy_timeout=MS */
#define SQ_MAX_READERS 16       /* default; ?readers=N */

enum sq_stmt_id {
	SQ_BEGIN_RO,
	SQ_BEGIN_RW,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_SNAPSHOT,
	SQ_GET,
	SQ_PUT,
	SQ_DEL,
	SQ_SCAN,
	SQ_SCAN_TO,
	SQ_NSTMT,
};

static const char *const sq_sql[SQ_NSTMT] = {
	[SQ_BEGIN_RO] = "BEGIN DEFERRED",
	[SQ_BEGIN_RW] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_SNAPSHOT] = "SELECT version FROM tessera_schema LIMIT 1",
	[SQ_GET] = "SELECT v FROM kv WHERE g = ?1 AND k = ?2",
	[SQ_PUT] = "INSERT OR REPLACE INTO kv (g, k, v) VALUES (?1, ?2, ?3)",
	[SQ_DEL] = "DELETE FROM kv WHERE g = ?1 AND k = ?2",
	[SQ_SCAN] = "SELECT k, v FROM kv WHERE g = ?1 AND k >= ?2 "
		    "ORDER BY k LIMIT ?3",
	[SQ_SCAN_TO] = "SELECT k, v FROM kv WHERE g = ?1 AND k >= ?2 "
		       "AND k < ?4 ORDER BY k LIMIT ?3",
};

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *st[SQ_NSTMT]; /* prepared on first use */
	struct sq_conn *next;       /* free list of the reader pool */
};

struct sq_engine {
	struct kv_engine base;
	char *path;
	int busy_ms;     /* how long a locked file is waited for */
	int max_readers; /* bound of the reader pool */
	pthread_mutex_t wlock;  /* held by the running read-write txn */
	struct sq_conn *writer; /* used only by the wlock holder */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct sq_conn *free_readers; /* guarded by pool_lock */
	int nreaders;                 /* guarded by pool_lock: opened */
};

struct sq_txn {
	struct kv_txn base;
	struct sq_conn *c;
	int err; /* first engine failure; sticks until the txn ends */
};

static const unsigned char sq_empty[1];

static int sq_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EAGAIN;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	default:
		return -EIO;
	}
}

static struct sq_engine *sq_eng(struct kv_engine *e)
{
	return (struct sq_engine *)e;
}

static struct sq_txn *sq_tx(struct kv_txn *t)
{
	return (struct sq_txn *)t;
}

/* Log an SQLite failure of @what once, with the engine's URL. */
static int sq_fail(struct sq_engine *se, sqlite3 *db, int rc, const char *what)
{
	int err = sq_errno(rc);

	if (err == -EAGAIN)
		log_warn("metadata '%s': %s: database is busy", se->base.desc,
			 what);
	else
		log_error("metadata '%s': %s: %s", se->base.desc, what,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return err;
}

static void sq_conn_close(struct sq_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	free(c);
}

/* The cached statement @id of @c, reset and unbound; NULL: see *rc. */
static sqlite3_stmt *sq_stmt(struct sq_conn *c, enum sq_stmt_id id, int *rc)
{
	sqlite3_stmt *st = c->st[id];

	if (!st) {
		*rc = sqlite3_prepare_v3(c->db, sq_sql[id], -1,
					 SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (*rc != SQLITE_OK)
			return NULL;
		c->st[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	*rc = SQLITE_OK;
	return st;
}

/* Run a statement without result rows (BEGIN, COMMIT, DELETE...). */
static int sq_exec(struct sq_conn *c, enum sq_stmt_id id)
{
	int rc;
	sqlite3_stmt *st = sq_stmt(c, id, &rc);

	if (!st)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int sq_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	/* A NULL pointer would bind SQL NULL, not an empty BLOB. */
	return sqlite3_bind_blob64(st, i, n ? p : sq_empty, n, SQLITE_STATIC);
}

/* Switch the file to WAL; the first read, so a non-database fails here. */
static int sq_set_wal(sqlite3 *db, bool *not_wal)
{
	sqlite3_stmt *st;
	int rc;

	*not_wal = false;
	rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		*not_wal = !mode || sqlite3_stricmp(mode, "wal") != 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Log why a connection could not be set up; returns -errno. */
static int sq_conn_fail(struct sq_engine *se, sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		log_error("cannot open '%s': not an SQLite database",
			  se->base.desc);
		return -EINVAL;
	case SQLITE_CANTOPEN:
		log_error("cannot open '%s': %s", se->base.desc,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		return -EIO;
	default:
		return sq_fail(se, db, rc, "cannot open");
	}
}

/*
 * Open one connection to the file and apply the settings: busy timeout,
 * foreign keys off, and WAL + synchronous=NORMAL on the writer (the journal
 * mode is persistent, so readers inherit it); readers are query_only.
 * Logs on failure; returns 0 or -errno.
 */
static int sq_conn_open(struct sq_engine *se, bool writer, bool create,
			struct sq_conn **out)
{
	static const char *const wsql =
		"PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;";
	static const char *const rsql =
		"PRAGMA foreign_keys=OFF; PRAGMA query_only=1;";
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	struct sq_conn *c = calloc(1, sizeof(*c));
	bool not_wal = false;
	int rc;

	if (!c)
		return log_fail(-ENOMEM, "cannot open '%s'", se->base.desc);
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(se->path, &c->db, flags, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(c->db, 1);
		sqlite3_busy_timeout(c->db, se->busy_ms);
		if (writer)
			rc = sq_set_wal(c->db, &not_wal);
	}
	if (rc == SQLITE_OK && not_wal) {
		log_error("cannot open '%s': cannot switch to WAL journal "
			  "mode (read-only file or directory?)",
			  se->base.desc);
		sq_conn_close(c);
		return -EIO;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->db, writer ? wsql : rsql, NULL, NULL,
				  NULL);
	if (rc != SQLITE_OK) {
		rc = sq_conn_fail(se, c->db, rc);
		sq_conn_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* ---- reader pool ---- */

static int sq_reader_get(struct sq_engine *se, struct sq_conn **out)
{
	struct sq_conn *c = NULL;
	int rc;

	pthread_mutex_lock(&se->pool_lock);
	while (!se->free_readers && se->nreaders >= se->max_readers)
		pthread_cond_wait(&se->pool_cond, &se->pool_lock);
	if (se->free_readers) {
		c = se->free_readers;
		se->free_readers = c->next;
		c->next = NULL;
		pthread_mutex_unlock(&se->pool_lock);
		*out = c;
		return 0;
	}
	se->nreaders++;
	pthread_mutex_unlock(&se->pool_lock);

	rc = sq_conn_open(se, false, false, &c);
	if (rc < 0) {
		pthread_mutex_lock(&se->pool_lock);
		se->nreaders--;
		pthread_cond_signal(&se->pool_cond);
		pthread_mutex_unlock(&se->pool_lock);
		return rc;
	}
	*out = c;
	return 0;
}

static void sq_reader_put(struct sq_engine *se, struct sq_conn *c)
{
	pthread_mutex_lock(&se->pool_lock);
	c->next = se->free_readers;
	se->free_readers = c;
	pthread_cond_signal(&se->pool_cond);
	pthread_mutex_unlock(&se->pool_lock);
}

/* ---- transactions ---- */

static int sq_begin_rw(struct sq_engine *se, struct sq_txn *t)
{
	int rc;

	rc = pthread_mutex_lock(&se->wlock);
	if (rc != 0) {
		log_error("metadata '%s': nested read-write transaction",
			  se->base.desc);
		return -EDEADLK;
	}
	t->c = se->writer;
	rc = sq_exec(t->c, SQ_BEGIN_RW);
	if (rc != SQLITE_OK) {
		rc = sq_fail(se, t->c->db, rc, "cannot begin a transaction");
		pthread_mutex_unlock(&se->wlock);
		return rc;
	}
	return 0;
}

static int sq_begin_ro(struct sq_engine *se, struct sq_txn *t)
{
	int rc = sq_reader_get(se, &t->c);

	if (rc < 0)
		return rc;
	rc = sq_exec(t->c, SQ_BEGIN_RO);
	/* Fix the snapshot now: a deferred txn would take it at first read. */
	if (rc == SQLITE_OK)
		rc = sq_exec(t->c, SQ_SNAPSHOT);
	if (rc != SQLITE_OK) {
		rc = sq_fail(se, t->c->db, rc, "cannot begin a transaction");
		if (!sqlite3_get_autocommit(t->c->db))
			sq_exec(t->c, SQ_ROLLBACK);
		sq_reader_put(se, t->c);
		return rc;
	}
	return 0;
}

static int sq_begin(struct kv_engine *e, bool rw, struct kv_txn **out)
{
	struct sq_engine *se = sq_eng(e);
	struct sq_txn *t;
	int rc;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->base.eng = e;
	t->base.rw = rw;
	rc = rw ? sq_begin_rw(se, t) : sq_begin_ro(se, t);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = &t->base;
	return 0;
}

/* Remember the first failure of @t and log it once. */
static int sq_txn_fail(struct sq_txn *t, int rc, const char *what)
{
	int err = sq_fail(sq_eng(t->base.eng), t->c->db, rc, what);

	if (!t->err)
		t->err = err;
	return err;
}

/* End @t: release the connection (and wlock) and free it. */
static void sq_txn_end(struct sq_txn *t)
{
	struct sq_engine *se = sq_eng(t->base.eng);

	for (int i = 0; i < SQ_NSTMT; i++)
		if (t->c->st[i])
			sqlite3_reset(t->c->st[i]);
	if (t->base.rw) {
		pthread_mutex_unlock(&se->wlock);
	} else {
		sq_reader_put(se, t->c);
	}
	free(t);
}

static void sq_rollback(struct kv_txn *kt)
{
	struct sq_txn *t = sq_tx(kt);

	for (int i = 0; i < SQ_NSTMT; i++)
		if (t->c->st[i])
			sqlite3_reset(t->c->st[i]);
	/* SQLite may already have rolled back after an error. */
	if (!sqlite3_get_autocommit(t->c->db)) {
		int rc = sq_exec(t->c, SQ_ROLLBACK);

		if (rc != SQLITE_OK)
			sq_fail(sq_eng(kt->eng), t->c->db, rc,
				"cannot roll back");
	}
	sq_txn_end(t);
}

static int sq_commit(struct kv_txn *kt)
{
	struct sq_txn *t = sq_tx(kt);
	int rc;

	if (t->err) {
		rc = t->err;
		sq_rollback(kt);
		return rc;
	}
	for (int i = 0; i < SQ_NSTMT; i++)
		if (t->c->st[i])
			sqlite3_reset(t->c->st[i]);
	rc = sq_exec(t->c, SQ_COMMIT);
	if (rc != SQLITE_OK) {
		int err = sq_errno(rc);

		if (err != -EAGAIN)
			sq_fail(sq_eng(kt->eng), t->c->db, rc,
				"cannot commit");
		sq_rollback(kt);
		return err;
	}
	sq_txn_end(t);
	return 0;
}

static int sq_check(struct sq_txn *t, int grp, size_t klen)
{
	if (t->err)
		return t->err;
	if (grp <= 0 || grp >= KV_GROUP_MAX || klen > KV_KEY_MAX)
		return -EINVAL;
	return 0;
}

static int sq_get(struct kv_txn *kt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	struct sq_txn *t = sq_tx(kt);
	sqlite3_stmt *st;
	int rc = sq_check(t, grp, klen);

	if (rc < 0)
		return rc;
	st = sq_stmt(t->c, SQ_GET, &rc);
	if (!st)
		return sq_txn_fail(t, rc, "cannot prepare get");
	sqlite3_bind_int(st, 1, grp);
	sq_bind_blob(st, 2, key, klen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return sq_txn_fail(t, rc, "cannot read a record");
	}
	buf_reset(val);
	rc = buf_append(val, sqlite3_column_blob(st, 0),
			(size_t)sqlite3_column_bytes(st, 0));
	sqlite3_reset(st);
	return rc;
}

static int sq_put(struct kv_txn *kt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	struct sq_txn *t = sq_tx(kt);
	sqlite3_stmt *st;
	int rc = sq_check(t, grp, klen);

	if (rc < 0)
		return rc;
	if (!kt->rw)
		return -EROFS;
	st = sq_stmt(t->c, SQ_PUT, &rc);
	if (!st)
		return sq_txn_fail(t, rc, "cannot prepare put");
	sqlite3_bind_int(st, 1, grp);
	sq_bind_blob(st, 2, key, klen);
	sq_bind_blob(st, 3, val, vlen);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_txn_fail(t, rc, "cannot write a record");
	return 0;
}

static int sq_del(struct kv_txn *kt, int grp, const void *key, size_t klen)
{
	struct sq_txn *t = sq_tx(kt);
	sqlite3_stmt *st;
	int rc = sq_check(t, grp, klen);

	if (rc < 0)
		return rc;
	if (!kt->rw)
		return -EROFS;
	st = sq_stmt(t->c, SQ_DEL, &rc);
	if (!st)
		return sq_txn_fail(t, rc, "cannot prepare delete");
	sqlite3_bind_int(st, 1, grp);
	sq_bind_blob(st, 2, key, klen);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_txn_fail(t, rc, "cannot delete a record");
	return 0;
}

/* Step through a prepared scan and feed the callback. */
static int sq_scan_run(struct sq_txn *t, sqlite3_stmt *st, kv_scan_fn fn,
		       void *arg)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *k = sqlite3_column_blob(st, 0);
		size_t kl = (size_t)sqlite3_column_bytes(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		size_t vl = (size_t)sqlite3_column_bytes(st, 1);
		int r = fn(arg, k ? k : sq_empty, kl, v ? v : sq_empty, vl);

		if (r != 0)
			return r > 0 ? 0 : r;
	}
	if (rc != SQLITE_DONE)
		return sq_txn_fail(t, rc, "cannot scan records");
	return 0;
}

static int sq_scan(struct kv_txn *kt, int grp, const void *prefix,
		   size_t plen, const void *start, size_t slen, size_t limit,
		   kv_scan_fn fn, void *arg)
{
	struct sq_txn *t = sq_tx(kt);
	unsigned char end[KV_KEY_MAX];
	size_t elen;
	const void *lo = prefix;
	size_t lolen = plen;
	enum sq_stmt_id id;
	sqlite3_stmt *st, *own = NULL;
	int rc = sq_check(t, grp, plen);

	if (rc < 0)
		return rc;
	if (!prefix)
		plen = lolen = 0;
	elen = kv_prefix_end(prefix, plen, end);
	/* Lower bound: the larger of prefix and start. */
	if (start) {
		int c = memcmp(start, prefix ? prefix : sq_empty,
			       MIN(slen, plen));

		if (c > 0 || (c == 0 && slen > plen)) {
			lo = start;
			lolen = slen;
		}
	}
	id = elen ? SQ_SCAN_TO : SQ_SCAN;
	st = t->c->st[id];
	if (st && sqlite3_stmt_busy(st)) {
		/* Scan from inside a scan callback: use a private stmt. */
		rc = sqlite3_prepare_v2(t->c->db, sq_sql[id], -1, &own, NULL);
		st = own;
	} else {
		st = sq_stmt(t->c, id, &rc);
	}
	if (!st)
		return sq_txn_fail(t, rc, "cannot prepare scan");
	sqlite3_bind_int(st, 1, grp);
	sq_bind_blob(st, 2, lo, lolen);
	sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
	if (elen)
		sq_bind_blob(st, 4, end, elen);
	rc = sq_scan_run(t, st, fn, arg);
	if (own)
		sqlite3_finalize(own);
	else
		sqlite3_reset(st);
	return rc;
}

/* ---- engine ---- */

static int sq_fsync_dir(const char *path)
{
	int fd = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* xSync the file SQLite hands out for @op on @db (none open: nothing). */
static int sq_sync_file(sqlite3 *db, int op)
{
	sqlite3_file *f = NULL;
	int rc = sqlite3_file_control(db, "main", op, &f);

	if (rc != SQLITE_OK || !f || !f->pMethods)
		return rc == SQLITE_NOTFOUND ? SQLITE_OK : rc;
	return f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
}

/*
 * Through SQLite's own descriptors of the -wal and db files, never a
 * descriptor of ours: closing any descriptor of a file drops every fcntl
 * lock this process holds on it (POSIX), SQLite's included, and another
 * process could then think the database unused and delete the WAL the
 * mount is writing.  The writer connection (wlock held) has both open.
 */
static int sq_sync(struct kv_engine *e)
{
	struct sq_engine *se = sq_eng(e);
	char *dir = strdup(se->path);
	int rc, src;

	if (!dir)
		return -ENOMEM;
	pthread_mutex_lock(&se->wlock);
	src = sq_sync_file(se->writer->db, SQLITE_FCNTL_JOURNAL_POINTER);
	if (src == SQLITE_OK)
		src = sq_sync_file(se->writer->db, SQLITE_FCNTL_FILE_POINTER);
	pthread_mutex_unlock(&se->wlock);
	rc = sq_errno(src);
	if (rc == 0)
		rc = sq_fsync_dir(dirname(dir));
	if (rc < 0)
		log_fail(rc, "metadata '%s': cannot sync", e->desc);
	free(dir);
	return rc;
}

static int sq_wipe(struct kv_engine *e)
{
	struct sq_engine *se = sq_eng(e);
	struct kv_txn *kt;
	struct sq_txn *t;
	int rc = sq_begin(e, true, &kt);

	if (rc < 0)
		return rc;
	t = sq_tx(kt);
	rc = sqlite3_exec(t->c->db, "DELETE FROM kv", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = sq_fail(se, t->c->db, rc, "cannot wipe");
		sq_rollback(kt);
		return rc;
	}
	return sq_commit(kt);
}

static void sq_close(struct kv_engine *e)
{
	struct sq_engine *se = sq_eng(e);
	struct sq_conn *c;

	while ((c = se->free_readers)) {
		se->free_readers = c->next;
		sq_conn_close(c);
	}
	/* The writer last: closing the last connection checkpoints. */
	sq_conn_close(se->writer);
	pthread_mutex_destroy(&se->wlock);
	pthread_mutex_destroy(&se->pool_lock);
	pthread_cond_destroy(&se->pool_cond);
	free(se->path);
	free(se);
}

static const struct kv_engine_ops sqlite_ops = {
	.scheme = "sqlite3",
	.begin = sq_begin,
	.get = sq_get,
	.put = sq_put,
	.del = sq_del,
	.scan = sq_scan,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.sync = sq_sync,
	.wipe = sq_wipe,
	.close = sq_close,
};

/* ---- open ---- */

/* Is there an SQLite table @name?  1 yes, 0 no, < 0 SQLite error code. */
static int sq_has_table(sqlite3 *db, const char *name, int *ntables)
{
	sqlite3_stmt *st;
	int rc, found = 0;

	rc = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master "
				    "WHERE type = 'table'",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return -rc;
	*ntables = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);

		(*ntables)++;
		if (n && strcmp(n, name) == 0)
			found = 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? found : -rc;
}

static int sq_schema_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT version FROM tessera_schema", -1,
				&st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static const char sq_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS kv (g INTEGER NOT NULL, k BLOB NOT NULL, "
	"v BLOB NOT NULL, PRIMARY KEY (g, k)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS tessera_schema (version INTEGER NOT NULL);"
	"INSERT INTO tessera_schema (version) SELECT 1 WHERE NOT EXISTS "
	"(SELECT 1 FROM tessera_schema);";

/*
 * Check (and with @create, make) the schema inside one write txn so that two
 * processes creating the same volume do not race.
 */
static int sq_schema(struct sq_engine *se, bool create)
{
	sqlite3 *db = se->writer->db;
	const char *url = se->base.desc;
	int rc, has, ntables = 0, version = 0;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(se, db, rc, "cannot open");
	has = sq_has_table(db, "tessera_schema", &ntables);
	if (has < 0) {
		rc = sq_fail(se, db, -has, "cannot read the schema");
		goto out;
	}
	if (!has && !create) {
		if (ntables == 0) {
			log_error("no volume at '%s': the database is empty",
				  url);
			rc = -ENOENT;
		} else {
			log_error("cannot open '%s': not a tessera metadata "
				  "database",
				  url);
			rc = -EINVAL;
		}
		goto out;
	}
	if (!has || create) {
		rc = sqlite3_exec(db, sq_schema_sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			rc = sq_fail(se, db, rc, "cannot create the schema");
			goto out;
		}
	}
	rc = sq_schema_version(db, &version);
	if (rc != SQLITE_OK) {
		rc = sq_fail(se, db, rc, "cannot read the schema");
		goto out;
	}
	if (version != SQ_SCHEMA_VERSION) {
		log_error("cannot open '%s': unsupported schema version %d "
			  "(this tessera knows %d)",
			  url, version, SQ_SCHEMA_VERSION);
		rc = -EINVAL;
		goto out;
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_fail(se, db, rc, "cannot create the schema");
	return 0;
out:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Explain a missing or unusable path before SQLite gives a vague error. */
static int sq_check_path(const char *path, const char *url, bool create)
{
	struct stat sb;
	char *copy, *dir;
	int rc = 0;

	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode)) {
			log_error("cannot open '%s': is a directory", url);
			return -EISDIR;
		}
		return 0;
	}
	if (errno != ENOENT) {
		rc = -errno;
		return log_fail(rc, "cannot open '%s'", url);
	}
	if (!create) {
		log_error("no volume at '%s': no such file", url);
		return -ENOENT;
	}
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		log_error("cannot create '%s': directory '%s' does not exist",
			  url, dir);
		rc = -ENOENT;
	}
	free(copy);
	return rc;
}

/*
 * Options in the URL's query: busy_timeout=MS (how long to wait for a file
 * locked by another process, default 5000) and readers=N (reader pool
 * size, default 16).  Unknown options are refused.
 */
static int sq_parse_query(struct sq_engine *se, const char *query)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	se->busy_ms = SQ_BUSY_TIMEOUT_MS;
	se->max_readers = SQ_MAX_READERS;
	if (!query || !*query)
		return 0;
	copy = strdup(query);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, "&", &save); tok && rc == 0;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '='), *end = NULL;
		long v = -1;

		if (eq) {
			*eq = '\0';
			errno = 0;
			v = strtol(eq + 1, &end, 10);
			if (errno || end == eq + 1 || *end)
				v = -1;
		}
		if (strcmp(tok, "busy_timeout") == 0 && v >= 0 && v <= 600000) {
			se->busy_ms = (int)v;
		} else if (strcmp(tok, "readers") == 0 && v >= 1 && v <= 256) {
			se->max_readers = (int)v;
		} else {
			log_error("invalid metadata URL '%s': bad option '%s' "
				  "(known: busy_timeout=0..600000, "
				  "readers=1..256)",
				  se->base.desc, tok);
			rc = -EINVAL;
		}
	}
	free(copy);
	return rc;
}

static struct sq_engine *sq_engine_new(const char *url, const char *path)
{
	struct sq_engine *se = calloc(1, sizeof(*se));
	pthread_mutexattr_t ma;

	if (!se)
		return NULL;
	se->path = strdup(path);
	if (!se->path) {
		free(se);
		return NULL;
	}
	se->base.ops = &sqlite_ops;
	url_redact(url, se->base.desc, sizeof(se->base.desc));
	pthread_mutexattr_init(&ma);
	/* Relocking by the holder (a nested rw txn) fails, not hangs. */
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&se->wlock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_mutex_init(&se->pool_lock, NULL);
	pthread_cond_init(&se->pool_cond, NULL);
	return se;
}

int kv_sqlite_open(const char *url, bool create, struct kv_engine **out)
{
	char red[sizeof(((struct kv_engine *)0)->desc)];
	const char *why = NULL;
	struct sq_engine *se = NULL;
	struct url u;
	int rc;

	url_redact(url, red, sizeof(red));
	rc = url_parse(url, &u, &why);
	if (rc < 0) {
		log_error("invalid metadata URL '%s': %s", red, why);
		return rc;
	}
	if (strcmp(u.scheme, "sqlite3") != 0 || u.path[0] != '/') {
		log_error("invalid metadata URL '%s': not sqlite3:///path", red);
		rc = -EINVAL;
		goto out;
	}
	se = sq_engine_new(url, u.path);
	if (!se) {
		rc = log_fail(-ENOMEM, "cannot open '%s'", red);
		goto out;
	}
	rc = sq_parse_query(se, u.query);
	if (rc < 0)
		goto out;
	rc = sq_check_path(u.path, red, create);
	if (rc < 0)
		goto out;
	rc = sq_conn_open(se, true, create, &se->writer);
	if (rc < 0)
		goto out;
	rc = sq_schema(se, create);
	if (rc < 0)
		goto out;
	*out = &se->base;
	se = NULL;
out:
	if (se)
		sq_close(&se->base);
	url_release(&u);
	return rc;
}
