/*
 * engine_pg.c - the kv.h engine on PostgreSQL (libpq).
 *
 * Schema, in the database (and search_path) the URL names:
 *
 *   kv(g integer, k bytea, v bytea, PRIMARY KEY (g, k))
 *   tessera_schema(version integer): one row, PG_SCHEMA_VERSION
 *
 * format (create) makes both; an open without create refuses a database
 * without them (-ENOENT).  bytea compares bytewise (memcmp, then length), so
 * ORDER BY k is the byte order kv.h promises, served by the primary key.
 *
 * Transactions: begin takes the snapshot at once (BEGIN; SELECT 1 in one
 * round trip: PostgreSQL would otherwise take it at the first statement).
 * Read-write ones run SERIALIZABLE, because kv.h promises
 * serializable read-write txns and REPEATABLE READ (snapshot isolation)
 * allows write skew; read-only ones run REPEATABLE READ READ ONLY, a
 * consistent snapshot that never fails.  Serialization failures (40001),
 * deadlocks (40P01) and lock timeouts (55P03) become -EAGAIN wherever they
 * happen, commit or not.  Any error aborts a PostgreSQL txn, so the first
 * error is sticky: later calls on the txn return it without a round trip,
 * and commit rolls back and returns it.  A commit whose connection breaks
 * has an unknown outcome: -EIO.
 *
 * Writes are pipelined: put and del send their statement and return
 * (libpq pipeline mode); the answers are collected before the txn's next
 * get, scan or commit, or every PG_PIPE_MAX writes, so a txn of n writes
 * costs about n / PG_PIPE_MAX round trips instead of n (a load of 200k
 * files is mostly writes).  An error there dooms the txn like any other.
 *
 * Statements are prepared once per connection (lazily, at its first txn)
 * and take binary parameters; results are binary too.  Scans fetch pages:
 * `k >= lo [AND k < hi] ORDER BY k LIMIT n`, where hi is the byte successor
 * of the prefix and the next page starts at last key + 0x00.  A page holds
 * PG_PAGE_MIN..PG_PAGE_MAX rows, sized from the previous page to about
 * PG_PAGE_BYTES, so scans of big values stay small in memory.
 *
 * Connections: a bounded pool (PG_POOL_MAX), dialed lazily; begin blocks
 * while all are in use (a thread holding several txns at once could wait
 * forever).  Each connection has connect_timeout, TCP keepalives,
 * tcp_user_timeout and server-side statement/lock timeouts, so a dead
 * server gives -EIO, never a hang.  An idle connection the server closed
 * (restart) is noticed before reuse (poll) and redialed.  A broken
 * connection is dropped and bumps the pool generation, so idle connections
 * dialed before are redialed on their next use; begin redials once when
 * its BEGIN finds the connection dead anyway.
 *
 * sync is NULL: COMMIT returns after the server's WAL flush under the
 * default synchronous_commit=on.
 *
 * Locking: only the pool (util/pool.h) locks, never across I/O.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/url.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define PG_POOL_MAX 8
#define PG_PAGE_MIN 16
#define PG_PAGE_FIRST 128
#define PG_PAGE_MAX 512
#define PG_PAGE_BYTES (4 * 1024 * 1024)
#define PG_PIPE_MAX 256	 /* writes sent before their answers are read */
#define PG_WAIT_MS 10000 /* client side; the server's limit is 5 s */
#define PG_SCHEMA_VERSION 1

#define OID_INT4 23
#define OID_INT8 20
#define OID_BYTEA 17

enum pg_stmt { S_GET, S_PUT, S_DEL, S_SCAN, S_SCAN_TO, S_COUNT };

static const struct {
	const char *name;
	const char *sql;
	int nparams;
	Oid types[4];
} stmts[S_COUNT] = {
	[S_GET] = {"tessera_get",
		   "SELECT v FROM kv WHERE g = $1 AND k = $2",
		   2,
		   {OID_INT4, OID_BYTEA}},
	[S_PUT] = {"tessera_put",
		   "INSERT INTO kv (g, k, v) VALUES ($1, $2, $3) "
		   "ON CONFLICT (g, k) DO UPDATE SET v = EXCLUDED.v",
		   3,
		   {OID_INT4, OID_BYTEA, OID_BYTEA}},
	[S_DEL] = {"tessera_del",
		   "DELETE FROM kv WHERE g = $1 AND k = $2",
		   2,
		   {OID_INT4, OID_BYTEA}},
	[S_SCAN] = {"tessera_scan",
		    "SELECT k, v FROM kv WHERE g = $1 AND k >= $2 "
		    "ORDER BY k LIMIT $3",
		    3,
		    {OID_INT4, OID_BYTEA, OID_INT8}},
	[S_SCAN_TO] = {"tessera_scan_to",
		       "SELECT k, v FROM kv WHERE g = $1 AND k >= $2 "
		       "AND k < $3 ORDER BY k LIMIT $4",
		       4,
		       {OID_INT4, OID_BYTEA, OID_BYTEA, OID_INT8}},
};

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS kv (g integer NOT NULL, "
	"k bytea NOT NULL, v bytea NOT NULL, PRIMARY KEY (g, k));"
	"CREATE TABLE IF NOT EXISTS tessera_schema (version integer NOT NULL);"
	"INSERT INTO tessera_schema SELECT 1 WHERE NOT EXISTS "
	"(SELECT 1 FROM tessera_schema)";

struct pg_conn {
	struct pool_item item; /* first: the pool's link */
	PGconn *c;	       /* NULL: must be dialed */
	unsigned gen;	       /* pool generation when dialed */
	bool prepared;	       /* statements prepared on c */
};

struct pg_engine {
	struct kv_engine base;
	char *url;
	atomic_uint gen;
	struct pool pool; /* of pg_conn, at most PG_POOL_MAX */
};

struct pg_txn {
	struct kv_txn base;
	struct pg_conn *conn;
	int failed;    /* first error: the server aborted the txn */
	size_t queued; /* puts and dels sent in pipeline mode, unanswered */
};

static struct pg_engine *pg_eng(struct kv_engine *e)
{
	return (struct pg_engine *)e;
}

static struct pg_txn *pg_txn(struct kv_txn *t)
{
	return (struct pg_txn *)t;
}

/* The first line of a libpq message, without "...failed: " and "FATAL:". */
static void one_line(const char *msg, char *out, size_t n)
{
	const char *p = strstr(msg, "failed: ");
	size_t len;

	p = p && p < msg + strcspn(msg, "\n") ? p + 8 : msg;
	if (!strncmp(p, "FATAL:", 6) || !strncmp(p, "ERROR:", 6))
		p += 6;
	while (*p == ' ')
		p++;
	len = strcspn(p, "\n");
	snprintf(out, n, "%.*s", (int)len, p);
}

/* ---- queries with a client-side bound ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Collect the results of the query just sent: the first error, else the
 * last result.  A server that does not answer within PG_WAIT_MS (hung,
 * stopped) gets its socket shut down: libpq then fails the query and the
 * connection exactly as for a server that died.
 */
static PGresult *get_results(const char *desc, PGconn *c)
{
	int64_t deadline = now_ms() + PG_WAIT_MS;
	PGresult *keep = NULL, *r;

	for (;;) {
		while (PQisBusy(c)) {
			struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
			int64_t left = deadline - now_ms();
			int n = left > 0 ? poll(&p, 1, (int)left) : 0;

			if (p.fd < 0 || (n < 0 && errno != EINTR))
				break;
			if (n == 0) {
				log_error("postgres '%s': no answer in %d ms",
					  desc, PG_WAIT_MS);
				shutdown(p.fd, SHUT_RDWR);
			}
			if (!PQconsumeInput(c))
				break;
		}
		r = PQgetResult(c);
		if (!r)
			break;
		if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(keep);
			keep = r;
		}
	}
	return keep;
}

/* PQexec with a bound; NULL when the query could not be sent. */
static PGresult *q_exec(const char *desc, PGconn *c, const char *sql)
{
	return PQsendQuery(c, sql) ? get_results(desc, c) : NULL;
}

static PGresult *q_prepared(const char *desc, PGconn *c, enum pg_stmt s,
			    const char *const *vals, const int *lens)
{
	static const int fmts[4] = {1, 1, 1, 1};

	if (!PQsendQueryPrepared(c, stmts[s].name, stmts[s].nparams, vals, lens,
				 fmts, 1))
		return NULL;
	return get_results(desc, c);
}

/* ---- connections ---- */

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgres: %s", msg);
}

static int dial_errno(const char *msg)
{
	if (strstr(msg, "authentication failed") ||
	    strstr(msg, "no password supplied") ||
	    strstr(msg, "no pg_hba.conf entry") ||
	    (strstr(msg, "role \"") && strstr(msg, "does not exist")))
		return -EACCES;
	if (strstr(msg, "database \"") && strstr(msg, "does not exist"))
		return -ENOENT;
	if (strstr(msg, "refused"))
		return -ECONNREFUSED;
	if (strstr(msg, "timeout expired") || strstr(msg, "timed out"))
		return -ETIMEDOUT;
	if (strstr(msg, "translate host name"))
		return -EHOSTUNREACH;
	return -EIO;
}

/* Server-side bounds, set on every new connection (they win over URL). */
static const char session_sql[] =
	"SET statement_timeout = 5000; SET lock_timeout = 4000; "
	"SET idle_in_transaction_session_timeout = 60000; "
	"SET client_min_messages = warning";

/*
 * Connect with our client-side timeouts; parameters in the URL's query
 * (sslmode, options, application_name...) override them.
 */
static int dial(struct pg_engine *e, PGconn **out)
{
	static const char *const kw[] = {
		"connect_timeout",
		"application_name",
		"keepalives",
		"keepalives_idle",
		"keepalives_interval",
		"keepalives_count",
		"tcp_user_timeout",
		"dbname",
		NULL,
	};
	const char *val[] = {
		"5", "tessera", "1", "10", "3", "3", "10000", e->url, NULL,
	};
	PGconn *c = PQconnectdbParams(kw, val, 1);
	PGresult *r;
	char why[512];
	int rc;

	if (!c)
		return log_fail(-ENOMEM, "cannot connect to '%s'",
				e->base.desc);
	if (PQstatus(c) != CONNECTION_OK) {
		rc = dial_errno(PQerrorMessage(c));
		one_line(PQerrorMessage(c), why, sizeof(why));
		log_error("cannot connect to '%s': %s", e->base.desc, why);
		PQfinish(c);
		return rc;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	r = q_exec(e->base.desc, c, session_sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		one_line(PQerrorMessage(c), why, sizeof(why));
		log_error("postgres '%s': cannot set timeouts: %s",
			  e->base.desc, why);
		PQclear(r);
		PQfinish(c);
		return -EIO;
	}
	PQclear(r);
	*out = c;
	return 0;
}

static int prepare(struct pg_engine *e, struct pg_conn *conn)
{
	char why[512];

	for (int i = 0; i < S_COUNT; i++) {
		PGresult *r = NULL;

		if (PQsendPrepare(conn->c, stmts[i].name, stmts[i].sql,
				  stmts[i].nparams, stmts[i].types))
			r = get_results(e->base.desc, conn->c);
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;

		if (!ok) {
			one_line(PQerrorMessage(conn->c), why, sizeof(why));
			log_error("postgres '%s': cannot prepare statements: "
				  "%s",
				  e->base.desc, why);
		}
		PQclear(r);
		if (!ok)
			return -EIO;
	}
	conn->prepared = true;
	return 0;
}

static void conn_free(struct pool_item *it)
{
	struct pg_conn *conn = (struct pg_conn *)it;

	if (conn->c)
		PQfinish(conn->c);
	free(conn);
}

/* Forget a connection slot (NULL: one that was never allocated). */
static void pool_drop(struct pg_engine *e, struct pg_conn *conn)
{
	if (conn)
		conn_free(&conn->item);
	pool_forget(&e->pool);
}

/*
 * An idle connection has nothing to read: readable means the server sent
 * its goodbye (restart, pg_terminate_backend) or closed it.
 */
static bool idle_alive(PGconn *c)
{
	struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};

	return PQstatus(c) == CONNECTION_OK && p.fd >= 0 && poll(&p, 1, 0) == 0;
}

/* (Re)dial @conn when needed.  *fresh tells whether it was just dialed. */
static int conn_ready(struct pg_engine *e, struct pg_conn *conn, bool *fresh)
{
	unsigned gen = atomic_load(&e->gen);
	int rc;

	*fresh = false;
	if (conn->c && (conn->gen != gen || !idle_alive(conn->c))) {
		PQfinish(conn->c);
		conn->c = NULL;
	}
	if (conn->c)
		return 0;
	conn->prepared = false;
	conn->gen = gen;
	rc = dial(e, &conn->c);
	*fresh = rc == 0;
	return rc;
}

static int pool_get(struct pg_engine *e, struct pg_conn **out, bool *fresh)
{
	struct pg_conn *conn = (struct pg_conn *)pool_take(&e->pool);
	int rc;

	if (!conn) {
		conn = calloc(1, sizeof(*conn));
		if (!conn) {
			pool_drop(e, NULL);
			return -ENOMEM;
		}
	}
	rc = conn_ready(e, conn, fresh);
	if (rc < 0) {
		pool_drop(e, conn);
		return rc;
	}
	*out = conn;
	return 0;
}

static void pool_put(struct pg_engine *e, struct pg_conn *conn)
{
	if (!conn->c || PQstatus(conn->c) != CONNECTION_OK ||
	    PQtransactionStatus(conn->c) != PQTRANS_IDLE) {
		pool_drop(e, conn);
		return;
	}
	pool_give(&e->pool, &conn->item);
}

/*
 * Map a result to 0 or -errno (logged, except -EAGAIN).  A broken
 * connection bumps the pool generation so idle ones get redialed.
 */
static int result_rc(struct pg_engine *e, struct pg_conn *conn,
		     const PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	char why[512];
	int rc = -EIO;

	if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
		return 0;
	if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
		      !strcmp(state, "55P03"))) {
		log_debug("postgres '%s': %s: conflict (%s)", e->base.desc,
			  what, state);
		return -EAGAIN;
	}
	if (state && !strcmp(state, "53100"))
		rc = -ENOSPC;
	else if (state && !strcmp(state, "53200"))
		rc = -ENOMEM;
	else if (state && !strcmp(state, "25006"))
		rc = -EROFS;
	else if (state && !strcmp(state, "42501"))
		rc = -EACCES; /* insufficient privilege */
	one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(conn->c), why,
		 sizeof(why));
	if (!why[0])
		one_line(PQerrorMessage(conn->c), why, sizeof(why));
	if (PQstatus(conn->c) != CONNECTION_OK) {
		atomic_fetch_add(&e->gen, 1);
		log_error("postgres '%s': %s: connection lost: %s",
			  e->base.desc, what, why);
		return -EIO;
	}
	log_error("postgres '%s': %s failed: %s", e->base.desc, what, why);
	return rc;
}

/* Run a command on @conn outside any prepared statement. */
static int conn_exec(struct pg_engine *e, struct pg_conn *conn, const char *sql,
		     const char *what)
{
	PGresult *r = q_exec(e->base.desc, conn->c, sql);
	int rc = result_rc(e, conn, r, what);

	PQclear(r);
	return rc;
}

/* ---- transactions ---- */

static int txn_start(struct pg_engine *e, struct pg_conn *conn, bool rw)
{
	if (!conn->prepared && prepare(e, conn) < 0)
		return -EIO;
	/* the SELECT takes the snapshot now, not at the first read */
	return conn_exec(e, conn,
			 rw ? "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1"
			    : "BEGIN ISOLATION LEVEL REPEATABLE READ READ "
			      "ONLY; SELECT 1",
			 "BEGIN");
}

static int pg_begin(struct kv_engine *base, bool rw, struct kv_txn **out)
{
	struct pg_engine *e = pg_eng(base);
	struct pg_txn *t = calloc(1, sizeof(*t));
	bool fresh;
	int rc;

	if (!t)
		return -ENOMEM;
	rc = pool_get(e, &t->conn, &fresh);
	if (rc == 0) {
		rc = txn_start(e, t->conn, rw);
		/* an idle connection may have died with a server restart */
		if (rc == -EIO && !fresh &&
		    PQstatus(t->conn->c) != CONNECTION_OK) {
			log_warn("postgres '%s': reconnecting", e->base.desc);
			rc = conn_ready(e, t->conn, &fresh);
			if (rc == 0)
				rc = txn_start(e, t->conn, rw);
		}
		if (rc < 0)
			pool_put(e, t->conn);
	}
	if (rc < 0) {
		free(t);
		return rc == -ENOMEM || rc == -EAGAIN ? rc : -EIO;
	}
	t->base.eng = base;
	t->base.rw = rw;
	*out = &t->base;
	return 0;
}

/*
 * Collect the answers of the writes queued in pipeline mode (the first
 * error dooms the txn: later ones were skipped by the server) and leave
 * pipeline mode.  Returns t->failed.
 */
static int txn_drain(struct pg_txn *t)
{
	struct pg_engine *e = pg_eng(t->base.eng);
	PGconn *c = t->conn->c;
	int rc = 0;

	if (PQpipelineStatus(c) == PQ_PIPELINE_OFF)
		return t->failed;
	if (!PQpipelineSync(c))
		rc = result_rc(e, t->conn, NULL, "pipeline");
	for (; rc == 0 && t->queued > 0; t->queued--) {
		PGresult *r = get_results(e->base.desc, c);

		rc = result_rc(e, t->conn, r, "put");
		PQclear(r);
	}
	if (rc == 0) { /* the sync's own result */
		PGresult *r = get_results(e->base.desc, c);

		if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			rc = result_rc(e, t->conn, r, "pipeline sync");
		PQclear(r);
	}
	t->queued = 0;
	if (rc < 0 && !t->failed)
		t->failed = rc;
	if (rc < 0 && PQstatus(c) == CONNECTION_OK) {
		/* skip what is left up to the sync, then leave the mode */
		PGresult *r;

		while (PQpipelineStatus(c) != PQ_PIPELINE_OFF &&
		       !PQexitPipelineMode(c)) {
			r = get_results(e->base.desc, c);
			if (!r)
				break;
			PQclear(r);
		}
	} else if (rc == 0 && !PQexitPipelineMode(c)) {
		t->failed = rc = log_fail(-EIO,
					  "postgres '%s': cannot leave "
					  "pipeline mode",
					  e->base.desc);
	}
	return t->failed;
}

/*
 * Send a put or a del without waiting for its answer (pipeline mode):
 * a read-write txn's writes then cost one round trip per PG_PIPE_MAX of
 * them instead of one each.  Their errors come back at the next get,
 * scan or commit (txn_drain), which is where a doomed txn learns it.
 */
static int txn_send(struct pg_txn *t, enum pg_stmt s, const char *const *vals,
		    const int *lens)
{
	static const int fmts[4] = {1, 1, 1, 1};
	struct pg_engine *e = pg_eng(t->base.eng);
	PGconn *c = t->conn->c;

	if (t->failed)
		return t->failed;
	if (PQpipelineStatus(c) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c))
		return t->failed = result_rc(e, t->conn, NULL, "pipeline");
	if (!PQsendQueryPrepared(c, stmts[s].name, stmts[s].nparams, vals, lens,
				 fmts, 1)) {
		t->failed = result_rc(e, t->conn, NULL, stmts[s].name + 8);
		return t->failed ? t->failed : (t->failed = -EIO);
	}
	if (++t->queued >= PG_PIPE_MAX)
		return txn_drain(t);
	return 0;
}

/*
 * Run prepared statement @s with binary parameters; NULL and *rc on
 * failure (the txn is then doomed).  The caller PQclears the result.
 */
static PGresult *txn_exec(struct pg_txn *t, enum pg_stmt s,
			  const char *const *vals, const int *lens, int *rc)
{
	struct pg_engine *e = pg_eng(t->base.eng);
	PGresult *r;

	if (txn_drain(t)) {
		*rc = t->failed;
		return NULL;
	}
	r = q_prepared(e->base.desc, t->conn->c, s, vals, lens);
	*rc = result_rc(e, t->conn, r, stmts[s].name + 8);
	if (*rc == 0)
		return r;
	PQclear(r);
	t->failed = *rc;
	return NULL;
}

static int pg_get(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	unsigned char g[4];
	const char *vals[2] = {(const char *)g, key};
	int lens[2] = {4, (int)klen};
	PGresult *r;
	int rc;

	buf_reset(val);
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	put_be32(g, (uint32_t)grp);
	r = txn_exec(pg_txn(bt), S_GET, vals, lens, &rc);
	if (!r)
		return rc;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		rc = buf_append(val, PQgetvalue(r, 0, 0),
				(size_t)PQgetlength(r, 0, 0));
	PQclear(r);
	return rc;
}

static int pg_put(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	unsigned char g[4];
	const char *vals[3] = {(const char *)g, key, val ? val : ""};
	int lens[3] = {4, (int)klen, (int)vlen};

	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX || vlen > KV_VAL_MAX)
		return -EINVAL;
	put_be32(g, (uint32_t)grp);
	return txn_send(pg_txn(bt), S_PUT, vals, lens);
}

static int pg_del(struct kv_txn *bt, int grp, const void *key, size_t klen)
{
	unsigned char g[4];
	const char *vals[2] = {(const char *)g, key};
	int lens[2] = {4, (int)klen};

	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	put_be32(g, (uint32_t)grp);
	return txn_send(pg_txn(bt), S_DEL, vals, lens);
}

struct pg_scan {
	struct pg_txn *t;
	const unsigned char *prefix;
	size_t plen;
	unsigned char g[4];
	unsigned char lo[KV_KEY_MAX + 1]; /* next key to visit */
	size_t lolen;
	unsigned char hi[KV_KEY_MAX]; /* end of the prefix range */
	size_t hilen;		      /* 0: no end */
	size_t limit;
	size_t done;
	size_t rows; /* next page size */
	kv_scan_fn fn;
	void *arg;
};

/* Rows for the next page: about PG_PAGE_BYTES, given the last page. */
static size_t next_rows(size_t rows, size_t bytes)
{
	size_t n = PG_PAGE_BYTES / (bytes / (rows ? rows : 1) + 1);

	return MAX(MIN(n, (size_t)PG_PAGE_MAX), (size_t)PG_PAGE_MIN);
}

/* Fetch and visit one page: 0 more pages, 1 finished, <0 error. */
static int scan_page(struct pg_scan *s)
{
	size_t page = s->limit ? MIN(s->limit - s->done, s->rows) : s->rows;
	size_t bytes = 0;
	unsigned char n[8];
	const char *vals[4] = {(const char *)s->g, (const char *)s->lo,
			       (const char *)s->hi, (const char *)n};
	int lens[4] = {4, (int)s->lolen, (int)s->hilen, 8};
	PGresult *r;
	int rc = 0, rows;

	put_be64(n, page);
	if (!s->hilen) {
		vals[2] = vals[3];
		lens[2] = lens[3];
	}
	r = txn_exec(s->t, s->hilen ? S_SCAN_TO : S_SCAN, vals, lens, &rc);
	if (!r)
		return rc;
	rows = PQntuples(r);
	for (int i = 0; i < rows && rc == 0; i++) {
		const char *k = PQgetvalue(r, i, 0);
		size_t kl = (size_t)PQgetlength(r, i, 0);

		bytes += kl + (size_t)PQgetlength(r, i, 1);
		if (kl > KV_KEY_MAX || kl < s->plen ||
		    memcmp(k, s->prefix, s->plen) != 0) {
			rc = 1;
			break;
		}
		rc = s->fn(s->arg, k, kl, PQgetvalue(r, i, 1),
			   (size_t)PQgetlength(r, i, 1));
		if (rc == 0 && s->limit && ++s->done >= s->limit)
			rc = 1;
		if (i == rows - 1) {
			/* next page: the smallest key above the last one */
			memcpy(s->lo, k, kl);
			s->lo[kl] = 0;
			s->lolen = kl + 1;
		}
	}
	if (rc == 0 && (size_t)rows < page)
		rc = 1;
	s->rows = next_rows((size_t)rows, bytes);
	PQclear(r);
	return rc;
}

static int pg_scan(struct kv_txn *bt, int grp, const void *prefix, size_t plen,
		   const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		   void *arg)
{
	struct pg_scan s = {.t = pg_txn(bt),
			    .prefix = prefix,
			    .plen = plen,
			    .limit = limit,
			    .rows = PG_PAGE_FIRST,
			    .fn = fn,
			    .arg = arg};
	int rc;

	if (plen > KV_KEY_MAX || slen > KV_KEY_MAX)
		return -EINVAL;
	if (!plen)
		s.prefix = (const unsigned char *)"";
	put_be32(s.g, (uint32_t)grp);
	if (start && kv_key_cmp(start, slen, s.prefix, plen) > 0) {
		memcpy(s.lo, start, slen);
		s.lolen = slen;
	} else {
		memcpy(s.lo, s.prefix, plen);
		s.lolen = plen;
	}
	s.hilen = kv_prefix_end(s.prefix, plen, s.hi);
	do
		rc = scan_page(&s);
	while (rc == 0);
	return rc > 0 ? 0 : rc;
}

static void txn_end(struct pg_txn *t)
{
	pool_put(pg_eng(t->base.eng), t->conn);
	free(t);
}

static int pg_commit(struct kv_txn *bt)
{
	struct pg_txn *t = pg_txn(bt);
	struct pg_engine *e = pg_eng(bt->eng);
	PGresult *r;
	int rc = txn_drain(t);

	if (rc) {
		conn_exec(e, t->conn, "ROLLBACK", "ROLLBACK");
		txn_end(t);
		return rc;
	}
	r = q_exec(e->base.desc, t->conn->c, "COMMIT");
	rc = result_rc(e, t->conn, r, "COMMIT");
	if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = log_fail(-EIO,
			      "postgres '%s': transaction was rolled "
			      "back",
			      e->base.desc);
	PQclear(r);
	if (rc < 0 && PQstatus(t->conn->c) == CONNECTION_OK &&
	    PQtransactionStatus(t->conn->c) != PQTRANS_IDLE)
		conn_exec(e, t->conn, "ROLLBACK", "ROLLBACK");
	txn_end(t);
	return rc;
}

static void pg_rollback(struct kv_txn *bt)
{
	struct pg_txn *t = pg_txn(bt);

	txn_drain(t); /* its writes' answers: the connection must be idle */
	if (PQstatus(t->conn->c) == CONNECTION_OK)
		conn_exec(pg_eng(bt->eng), t->conn, "ROLLBACK", "ROLLBACK");
	txn_end(t);
}

/* ---- engine ---- */

static int pg_wipe(struct kv_engine *base)
{
	struct pg_engine *e = pg_eng(base);
	struct pg_conn *conn;
	bool fresh;
	int rc = pool_get(e, &conn, &fresh);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	/* not TRUNCATE: its exclusive lock would wait for every reader */
	rc = conn_exec(e, conn,
		       "BEGIN; SET LOCAL statement_timeout = 0; "
		       "DELETE FROM kv; COMMIT",
		       "wipe");
	if (rc < 0 && PQstatus(conn->c) == CONNECTION_OK &&
	    PQtransactionStatus(conn->c) != PQTRANS_IDLE)
		conn_exec(e, conn, "ROLLBACK", "ROLLBACK");
	pool_put(e, conn);
	return rc == -EAGAIN ? -EBUSY : rc;
}

static void pg_free(struct pg_engine *e)
{
	pool_destroy(&e->pool, conn_free);
	free(e->url);
	free(e);
}

static void pg_close(struct kv_engine *base)
{
	pg_free(pg_eng(base));
}

static const struct kv_engine_ops pg_ops = {
	.scheme = "postgres",
	.begin = pg_begin,
	.get = pg_get,
	.put = pg_put,
	.del = pg_del,
	.scan = pg_scan,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.sync = NULL, /* COMMIT is durable: see the top comment */
	.wipe = pg_wipe,
	.close = pg_close,
};

/* Check (or with @create, make) the schema. */
static int check_schema(struct pg_engine *e, struct pg_conn *conn, bool create)
{
	PGresult *r;
	const char *state;
	int rc = 0, version = -1;

	if (create)
		rc = conn_exec(e, conn, schema_sql, "create schema");
	if (rc < 0)
		return rc;
	r = q_exec(e->base.desc, conn->c, "SELECT version FROM tessera_schema");
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && !strcmp(state, "42P01")) {
		log_error("no tessera metadata in '%s' (not formatted)",
			  e->base.desc);
		rc = -ENOENT;
	} else {
		rc = result_rc(e, conn, r, "read schema version");
	}
	if (rc == 0 && PQntuples(r) == 1)
		version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (rc == 0 && version != PG_SCHEMA_VERSION) {
		log_error("'%s' holds metadata schema version %d; this tessera "
			  "reads version %d",
			  e->base.desc, version, PG_SCHEMA_VERSION);
		rc = -EINVAL;
	}
	return rc;
}

static int pg_from_url(struct pg_engine *e, const char *url)
{
	const char *why = "invalid";
	struct url u = {.path = NULL}; /* untouched by a failed parse */
	int rc = url_parse(url, &u, &why);

	if (rc == 0 && strcmp(u.scheme, "postgres") != 0 &&
	    strcmp(u.scheme, "postgresql") != 0) {
		why = "not a postgres:// URL";
		rc = -EINVAL;
	}
	url_release(&u);
	if (rc < 0) {
		log_error("invalid metadata URL '%s': %s", e->base.desc, why);
		return -EINVAL;
	}
	e->url = strdup(url);
	return e->url ? 0 : -ENOMEM;
}

int kv_pg_open(const char *url, bool create, struct kv_engine **out)
{
	struct pg_engine *e = calloc(1, sizeof(*e));
	struct pg_conn *conn;
	bool fresh;
	int rc;

	if (!e)
		return -ENOMEM;
	e->base.ops = &pg_ops;
	url_redact(url, e->base.desc, sizeof(e->base.desc));
	pool_init(&e->pool, PG_POOL_MAX);
	rc = pg_from_url(e, url);
	if (rc == 0)
		rc = pool_get(e, &conn, &fresh);
	if (rc < 0) {
		pg_free(e);
		return rc;
	}
	rc = check_schema(e, conn, create);
	pool_put(e, conn);
	if (rc < 0) {
		pg_free(e);
		return rc;
	}
	*out = &e->base;
	return 0;
}
