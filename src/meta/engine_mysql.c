/*
 * engine_mysql.c - the kv.h engine on MariaDB or MySQL (libmariadb).
 *
 * URL: mysql://user[:pass]@host[:port]/db (password also from
 * TESSERA_META_PASSWORD; every message shows the URL with it masked).
 *
 * Schema, in the database the URL names (InnoDB, utf8mb4, binary keys):
 *
 *   tessera_kv(g INT, k VARBINARY(1024), v LONGBLOB, PRIMARY KEY (g, k))
 *   tessera_schema(version INT): one row, MY_SCHEMA_VERSION
 *
 * format (create) makes both; an open without create refuses a database
 * without them (-ENOENT), a missing database too.  VARBINARY compares
 * bytewise (memcmp, then length; no padding), so ORDER BY k is kv.h's byte
 * order, served by the primary key.
 *
 * Transactions: read-only ones are START TRANSACTION READ ONLY, WITH
 * CONSISTENT SNAPSHOT at REPEATABLE READ: a snapshot taken at begin, plain
 * reads never lock and never fail.  Read-write ones are serializable by
 * two-phase locking: every read is a locking read of what it returns (get:
 * SELECT ... FOR UPDATE, an exclusive lock, since a txn mostly writes
 * back what it got; scan: LOCK IN SHARE MODE, next-key locks that also keep
 * phantoms out of the range), held to commit, so no write skew.  They read
 * the latest committed rows, not a snapshot, which 2PL makes consistent.
 * Deadlocks (1213, the whole txn is rolled back) and lock waits over
 * innodb_lock_wait_timeout (1205) become -EAGAIN on whichever call met
 * them; meta/ runs the txn again.  The first error is sticky: later calls
 * return it without a round trip, and commit rolls back and returns it.  A
 * commit whose connection breaks has an unknown outcome: -EIO.
 *
 * Statements are prepared once per connection (at its first txn) with
 * binary parameters.  Scans fetch pages (`k >= lo [AND k < hi] ORDER BY k
 * LIMIT n`, next page from last key + 0x00) sized by rm_next_rows; a page
 * is copied out before the callback runs, so callbacks may use the txn,
 * nested scans included.
 *
 * Connections: remote.h's pool, at most MY_POOL_MAX (the mount's FUSE
 * threads, 64 by default, each hold at most one txn), dialed lazily.  Each
 * has connect/read/write timeouts and server-side lock and statement
 * limits, so a dead or hung server gives -EIO, never a hang; a broken one
 * makes the idle ones redial (server restart), and begin redials once when
 * a pooled connection turns out dead.  max_allowed_packet must hold a
 * KV_VAL_MAX value: open warns when the server's is smaller.
 *
 * sync is NULL: COMMIT returns after InnoDB's log flush under the default
 * innodb_flush_log_at_trx_commit=1.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "meta/remote.h"
#include "util/log.h"
#include "util/url.h"

#include <errmsg.h>
#include <mysql.h>
#include <pthread.h>

#define MY_POOL_MAX 64
#define MY_CONNECT_S 5
#define MY_WAIT_S 10 /* client side; the server's limits are below */
#define MY_SCHEMA_VERSION 1
#define MY_PORT 3306

enum my_stmt {
	S_GET,
	S_GET_LOCK,
	S_PUT,
	S_DEL,
	S_SCAN,
	S_SCAN_TO,
	S_SCAN_LOCK,
	S_SCAN_TO_LOCK,
	S_COUNT
};

#define SCAN_SQL "SELECT k, v FROM tessera_kv WHERE g = ? AND k >= ? "
#define SCAN_TO_SQL SCAN_SQL "AND k < ? "

static const struct {
	const char *name;
	const char *sql;
} stmts[S_COUNT] = {
	[S_GET] = {"get", "SELECT v FROM tessera_kv WHERE g = ? AND k = ?"},
	[S_GET_LOCK] = {"get", "SELECT v FROM tessera_kv WHERE g = ? AND "
			       "k = ? FOR UPDATE"},
	[S_PUT] = {"put", "INSERT INTO tessera_kv (g, k, v) VALUES (?, ?, ?) "
			  "ON DUPLICATE KEY UPDATE v = VALUES(v)"},
	[S_DEL] = {"del", "DELETE FROM tessera_kv WHERE g = ? AND k = ?"},
	[S_SCAN] = {"scan", SCAN_SQL "ORDER BY k LIMIT ?"},
	[S_SCAN_TO] = {"scan", SCAN_TO_SQL "ORDER BY k LIMIT ?"},
	[S_SCAN_LOCK] = {"scan", SCAN_SQL "ORDER BY k LIMIT ? "
					  "LOCK IN SHARE MODE"},
	[S_SCAN_TO_LOCK] = {"scan", SCAN_TO_SQL "ORDER BY k LIMIT ? "
						"LOCK IN SHARE MODE"},
};

static const char *const schema_sql[] = {
	"CREATE TABLE IF NOT EXISTS tessera_kv (g INT NOT NULL, "
	"k VARBINARY(1024) NOT NULL, v LONGBLOB NOT NULL, "
	"PRIMARY KEY (g, k)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	"CREATE TABLE IF NOT EXISTS tessera_schema (version INT NOT NULL) "
	"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	"INSERT INTO tessera_schema SELECT 1 FROM DUAL WHERE NOT EXISTS "
	"(SELECT 1 FROM tessera_schema)",
};

/* Server-side bounds, set on every new connection. */
static const char *const session_sql[] = {
	"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
	"SET SESSION innodb_lock_wait_timeout = 4, "
	"SESSION max_statement_time = 8, "
	"SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
};

struct my_conn {
	struct rm_conn rm; /* first: the pool's */
	MYSQL *c;
	MYSQL_STMT *st[S_COUNT];
	bool prepared;
	bool dirty; /* a txn may be open on the server: do not reuse */
};

struct my_engine {
	struct kv_engine base;
	char *host;
	char *user;
	char *pass;
	char *db;
	unsigned port;
	struct rm_pool pool;
};

struct my_txn {
	struct kv_txn base;
	struct my_conn *conn;
	int failed; /* first error: sticky */
};

static struct my_engine *my_eng(struct kv_engine *e)
{
	return (struct my_engine *)e;
}

static struct my_txn *my_txn(struct kv_txn *t)
{
	return (struct my_txn *)t;
}

/* Client-side codes: the connection itself failed. */
static bool conn_error(unsigned no)
{
	return (no >= 2000 && no < 3000) || no >= 5000;
}

/* ---- connections ---- */

static int dial_errno(unsigned no, const char *msg)
{
	switch (no) {
	case 1045: /* access denied for user */
	case 1044: /* access denied to database */
	case 1251: /* client does not support the auth protocol */
	case 1698: /* access denied (unknown user, no password) */
		return -EACCES;
	case 1049: /* unknown database */
		return -ENOENT;
	case CR_UNKNOWN_HOST:
		return -EHOSTUNREACH;
	default:
		break;
	}
	if (strstr(msg, "Access denied"))
		return -EACCES;
	if (strstr(msg, "(110)"))
		return -ETIMEDOUT;
	/* the connector's non-blocking connect may say (115), not (111) */
	if (no == CR_CONN_HOST_ERROR || no == CR_CONNECTION_ERROR)
		return -ECONNREFUSED;
	return rm_dial_errno(msg);
}

static void conn_hangup(struct rm_conn *rc)
{
	struct my_conn *conn = (struct my_conn *)rc;

	for (int i = 0; i < S_COUNT; i++) {
		if (conn->st[i])
			mysql_stmt_close(conn->st[i]);
		conn->st[i] = NULL;
	}
	if (conn->c)
		mysql_close(conn->c);
	conn->c = NULL;
	conn->prepared = false;
	conn->dirty = false;
}

static bool conn_alive(struct rm_conn *rc)
{
	struct my_conn *conn = (struct my_conn *)rc;

	return conn->c && rm_fd_idle((int)mysql_get_socket(conn->c));
}

static int conn_dial(void *eng, struct rm_conn *rmc)
{
	struct my_engine *e = eng;
	struct my_conn *conn = (struct my_conn *)rmc;
	unsigned ct = MY_CONNECT_S, wt = MY_WAIT_S;
	unsigned long maxpkt = 1024UL * 1024 * 1024;
	my_bool off = 0;
	MYSQL *c = mysql_init(NULL);
	int rc;

	if (!c)
		return log_fail(-ENOMEM, "cannot connect to '%s'",
				e->base.desc);
	mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &wt);
	mysql_options(c, MYSQL_OPT_WRITE_TIMEOUT, &wt);
	mysql_options(c, MYSQL_OPT_RECONNECT, &off);
	mysql_options(c, MYSQL_OPT_MAX_ALLOWED_PACKET, &maxpkt);
	mysql_options(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(c, MYSQL_READ_DEFAULT_GROUP, NULL);
	if (!mysql_real_connect(c, e->host, e->user, rm_password(e->pass),
				e->db, e->port, NULL, 0)) {
		rc = dial_errno(mysql_errno(c), mysql_error(c));
		log_error("cannot connect to '%s': %s", e->base.desc,
			  mysql_error(c));
		mysql_close(c);
		return rc;
	}
	for (size_t i = 0; i < ARRAY_SIZE(session_sql); i++) {
		if (mysql_real_query(c, session_sql[i],
				     strlen(session_sql[i])) != 0) {
			log_error("mysql '%s': cannot set session limits: %s",
				  e->base.desc, mysql_error(c));
			mysql_close(c);
			return -EIO;
		}
	}
	conn->c = c;
	return 0;
}

static const struct rm_pool_ops my_pool_ops = {
	.conn_size = sizeof(struct my_conn),
	.dial = conn_dial,
	.hangup = conn_hangup,
	.alive = conn_alive,
};

/*
 * Map error @no (message @msg) to -errno, logging all but conflicts.  A
 * broken connection makes the pool redial the idle ones.
 */
static int err_rc(struct my_engine *e, struct my_conn *conn, unsigned no,
		  const char *msg, const char *what)
{
	if (no == 1213 || no == 1205) {
		log_debug("mysql '%s': %s: conflict (%u)", e->base.desc, what,
			  no);
		return -EAGAIN;
	}
	if (conn_error(no)) {
		log_error("mysql '%s': %s: connection lost: %s", e->base.desc,
			  what, msg);
		rm_broken(&e->pool, &conn->rm);
		return -EIO;
	}
	log_error("mysql '%s': %s failed: %s", e->base.desc, what, msg);
	switch (no) {
	case 1114: /* table is full */
	case 1021: /* disk full */
		return -ENOSPC;
	case 1290: /* --read-only */
	case 1792: /* read-only transaction */
		return -EROFS;
	case 1142: /* command denied */
	case 1044:
		return -EACCES;
	default:
		return -EIO;
	}
}

static int conn_rc(struct my_engine *e, struct my_conn *conn, const char *what)
{
	return err_rc(e, conn, mysql_errno(conn->c), mysql_error(conn->c),
		      what);
}

static int stmt_rc(struct my_engine *e, struct my_conn *conn, enum my_stmt s)
{
	MYSQL_STMT *st = conn->st[s];

	return err_rc(e, conn, mysql_stmt_errno(st), mysql_stmt_error(st),
		      stmts[s].name);
}

/* Run @sql on @conn; 0 or -errno. */
static int conn_exec(struct my_engine *e, struct my_conn *conn,
		     const char *sql, const char *what)
{
	if (mysql_real_query(conn->c, sql, strlen(sql)) == 0)
		return 0;
	return conn_rc(e, conn, what);
}

static int prepare(struct my_engine *e, struct my_conn *conn)
{
	for (int i = 0; i < S_COUNT; i++) {
		conn->st[i] = mysql_stmt_init(conn->c);
		if (!conn->st[i])
			return -ENOMEM;
		if (mysql_stmt_prepare(conn->st[i], stmts[i].sql,
				       strlen(stmts[i].sql)) != 0) {
			int rc = stmt_rc(e, conn, (enum my_stmt)i);

			log_error("mysql '%s': cannot prepare statements",
				  e->base.desc);
			return rc < 0 && rc != -EAGAIN ? rc : -EIO;
		}
	}
	conn->prepared = true;
	return 0;
}

/* ---- transactions ---- */

static int txn_start(struct my_engine *e, struct my_conn *conn, bool rw)
{
	int rc = conn->prepared ? 0 : prepare(e, conn);

	if (rc < 0)
		return rc;
	conn->dirty = true;
	return conn_exec(e, conn,
			 rw ? "START TRANSACTION READ WRITE"
			    : "START TRANSACTION READ ONLY, WITH CONSISTENT "
			      "SNAPSHOT",
			 "BEGIN");
}

static int my_begin(struct kv_engine *base, bool rw, struct kv_txn **out)
{
	struct my_engine *e = my_eng(base);
	struct my_txn *t = calloc(1, sizeof(*t));
	struct rm_conn *rc_conn;
	bool fresh;
	int rc;

	if (!t)
		return -ENOMEM;
	rc = rm_get(&e->pool, &rc_conn, &fresh);
	if (rc == 0) {
		t->conn = (struct my_conn *)rc_conn;
		rc = txn_start(e, t->conn, rw);
		/* an idle connection may have died with a server restart */
		if (rc == -EIO && !fresh && !t->conn->rm.up) {
			log_warn("mysql '%s': reconnecting", e->base.desc);
			rc = rm_redial(&e->pool, &t->conn->rm);
			if (rc == 0)
				rc = txn_start(e, t->conn, rw);
		}
		if (rc < 0)
			rm_put(&e->pool, &t->conn->rm, false);
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

static void bind_blob(MYSQL_BIND *b, const void *p, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(p ? p : "");
	b->buffer_length = (unsigned long)n;
}

static void bind_int(MYSQL_BIND *b, enum enum_field_types type, void *p)
{
	memset(b, 0, sizeof(*b));
	b->buffer_type = type;
	b->buffer = p;
	b->is_unsigned = type == MYSQL_TYPE_LONGLONG;
}

/* Execute @s with @params; on failure the txn is doomed.  0 or -errno. */
static int txn_exec(struct my_txn *t, enum my_stmt s, MYSQL_BIND *params)
{
	struct my_engine *e = my_eng(t->base.eng);
	MYSQL_STMT *st;
	int rc;

	if (t->failed)
		return t->failed;
	st = t->conn->st[s];
	if (mysql_stmt_bind_param(st, params) == 0 &&
	    mysql_stmt_execute(st) == 0 &&
	    (mysql_stmt_field_count(st) == 0 ||
	     mysql_stmt_store_result(st) == 0))
		return 0;
	rc = stmt_rc(e, t->conn, s);
	t->failed = rc;
	return rc;
}

/*
 * Fetch the next row of @st: key (when @kcol) into @kb and value (column
 * @vcol) appended to @vb.  1 row, 0 no more, <0 error.
 */
static int fetch_row(struct my_txn *t, enum my_stmt s, bool kcol,
		     struct buf *kb, struct buf *vb)
{
	MYSQL_STMT *st = t->conn->st[s];
	unsigned long len[2] = {0, 0};
	MYSQL_BIND r[2];
	unsigned vcol = kcol ? 1 : 0;
	unsigned char kbuf[KV_KEY_MAX + 1];
	int f, rc;

	memset(r, 0, sizeof(r));
	if (kcol) {
		r[0].buffer_type = MYSQL_TYPE_BLOB;
		r[0].buffer = kbuf;
		r[0].buffer_length = sizeof(kbuf);
		r[0].length = &len[0];
	}
	r[vcol].buffer_type = MYSQL_TYPE_BLOB;
	r[vcol].length = &len[1];
	if (mysql_stmt_bind_result(st, r) != 0)
		return stmt_rc(my_eng(t->base.eng), t->conn, s);
	f = mysql_stmt_fetch(st);
	if (f == MYSQL_NO_DATA)
		return 0;
	if (f != 0 && f != MYSQL_DATA_TRUNCATED)
		return stmt_rc(my_eng(t->base.eng), t->conn, s);
	if (kcol) {
		if (len[0] > KV_KEY_MAX)
			return log_fail(-EIO, "mysql: key longer than %d bytes",
					KV_KEY_MAX);
		rc = buf_append(kb, kbuf, len[0]);
		if (rc < 0)
			return rc;
	}
	if (len[1] > KV_VAL_MAX)
		return log_fail(-EIO, "mysql: value longer than %d bytes",
				KV_VAL_MAX);
	rc = buf_grow(vb, len[1] + 1);
	if (rc < 0)
		return rc;
	if (len[1] > 0) {
		MYSQL_BIND v;

		memset(&v, 0, sizeof(v));
		v.buffer_type = MYSQL_TYPE_BLOB;
		v.buffer = vb->data + vb->len;
		v.buffer_length = len[1];
		if (mysql_stmt_fetch_column(st, &v, vcol, 0) != 0)
			return stmt_rc(my_eng(t->base.eng), t->conn, s);
		vb->len += len[1];
	}
	vb->data[vb->len] = '\0'; /* as buf_append leaves it */
	return 1;
}

static int my_get(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	struct my_txn *t = my_txn(bt);
	enum my_stmt s = bt->rw ? S_GET_LOCK : S_GET;
	MYSQL_BIND p[2];
	int32_t g = grp;
	int rc;

	buf_reset(val);
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	bind_int(&p[0], MYSQL_TYPE_LONG, &g);
	bind_blob(&p[1], key, klen);
	rc = txn_exec(t, s, p);
	if (rc < 0)
		return rc;
	rc = fetch_row(t, s, false, NULL, val);
	if (t->conn->st[s]) /* NULL: the connection broke */
		mysql_stmt_free_result(t->conn->st[s]);
	if (rc < 0) {
		t->failed = rc;
		return rc;
	}
	return rc == 1 ? 0 : -ENOENT;
}

static int my_put(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	MYSQL_BIND p[3];
	int32_t g = grp;

	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX || vlen > KV_VAL_MAX)
		return -EINVAL;
	bind_int(&p[0], MYSQL_TYPE_LONG, &g);
	bind_blob(&p[1], key, klen);
	bind_blob(&p[2], val, vlen);
	return txn_exec(my_txn(bt), S_PUT, p);
}

static int my_del(struct kv_txn *bt, int grp, const void *key, size_t klen)
{
	MYSQL_BIND p[2];
	int32_t g = grp;

	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	bind_int(&p[0], MYSQL_TYPE_LONG, &g);
	bind_blob(&p[1], key, klen);
	return txn_exec(my_txn(bt), S_DEL, p);
}

struct my_scan {
	struct my_txn *t;
	const unsigned char *prefix;
	size_t plen;
	int32_t g;
	unsigned char lo[KV_KEY_MAX + 1]; /* next key to visit */
	size_t lolen;
	unsigned char hi[KV_KEY_MAX]; /* end of the prefix range */
	size_t hilen;		      /* 0: no end */
	size_t limit;
	size_t done;
	size_t rows; /* next page size */
	kv_scan_fn fn;
	void *arg;
	struct buf keys; /* the page, copied out: keys, then values */
	struct buf vals;
	size_t *off; /* per row: key end, value end */
	size_t offcap;
};

/* Fetch one page into s->keys/vals/off; *n rows. */
static int scan_fetch(struct my_scan *s, size_t page, size_t *n)
{
	struct my_txn *t = s->t;
	bool lock = t->base.rw;
	enum my_stmt st = s->hilen ? (lock ? S_SCAN_TO_LOCK : S_SCAN_TO)
				   : (lock ? S_SCAN_LOCK : S_SCAN);
	unsigned long long lim = page;
	MYSQL_BIND p[4];
	int i = 0, rc;

	bind_int(&p[i++], MYSQL_TYPE_LONG, &s->g);
	bind_blob(&p[i++], s->lo, s->lolen);
	if (s->hilen)
		bind_blob(&p[i++], s->hi, s->hilen);
	bind_int(&p[i++], MYSQL_TYPE_LONGLONG, &lim);
	rc = txn_exec(t, st, p);
	if (rc < 0)
		return rc;
	buf_reset(&s->keys);
	buf_reset(&s->vals);
	*n = 0;
	for (;;) {
		if (*n * 2 + 2 > s->offcap) {
			size_t cap = s->offcap ? s->offcap * 2 : 256;
			size_t *o = realloc(s->off, cap * sizeof(*o));

			if (!o) {
				rc = -ENOMEM;
				break;
			}
			s->off = o;
			s->offcap = cap;
		}
		rc = fetch_row(t, st, true, &s->keys, &s->vals);
		if (rc <= 0)
			break;
		s->off[*n * 2] = s->keys.len;
		s->off[*n * 2 + 1] = s->vals.len;
		(*n)++;
	}
	if (t->conn->st[st]) /* NULL: the connection broke */
		mysql_stmt_free_result(t->conn->st[st]);
	if (rc < 0)
		t->failed = rc;
	return rc;
}

/* Fetch and visit one page: 0 more pages, 1 finished, <0 error. */
static int scan_page(struct my_scan *s)
{
	size_t page = s->limit ? MIN(s->limit - s->done, s->rows) : s->rows;
	size_t n = 0, kbeg = 0, vbeg = 0;
	int rc = scan_fetch(s, page, &n);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const unsigned char *k = (unsigned char *)s->keys.data + kbeg;
		size_t kl = s->off[2 * i] - kbeg;
		const char *v = s->vals.data + vbeg;
		size_t vl = s->off[2 * i + 1] - vbeg;

		kbeg = s->off[2 * i];
		vbeg = s->off[2 * i + 1];
		if (kl < s->plen || memcmp(k, s->prefix, s->plen) != 0) {
			rc = 1;
			break;
		}
		if (i == n - 1) {
			/* next page: the smallest key above the last one */
			memcpy(s->lo, k, kl);
			s->lo[kl] = 0;
			s->lolen = kl + 1;
		}
		rc = s->fn(s->arg, k, kl, v, vl);
		if (rc == 0 && s->limit && ++s->done >= s->limit)
			rc = 1;
	}
	if (rc == 0 && n < page)
		rc = 1;
	s->rows = rm_next_rows(n, s->keys.len + s->vals.len);
	return rc;
}

static int my_scan(struct kv_txn *bt, int grp, const void *prefix, size_t plen,
		   const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		   void *arg)
{
	struct my_scan *s;
	int rc;

	if (plen > KV_KEY_MAX || slen > KV_KEY_MAX)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct my_scan){.t = my_txn(bt),
			      .prefix = plen ? prefix : (const void *)"",
			      .plen = plen,
			      .g = grp,
			      .limit = limit,
			      .rows = RM_PAGE_FIRST,
			      .fn = fn,
			      .arg = arg,
			      .keys = BUF_INIT,
			      .vals = BUF_INIT};
	if (start && kv_key_cmp(start, slen, s->prefix, plen) > 0) {
		memcpy(s->lo, start, slen);
		s->lolen = slen;
	} else {
		memcpy(s->lo, s->prefix, plen);
		s->lolen = plen;
	}
	s->hilen = kv_prefix_end(s->prefix, plen, s->hi);
	do
		rc = scan_page(s);
	while (rc == 0);
	buf_release(&s->keys);
	buf_release(&s->vals);
	free(s->off);
	free(s);
	return rc > 0 ? 0 : rc;
}

static void txn_end(struct my_txn *t, bool clean)
{
	if (clean)
		t->conn->dirty = false;
	rm_put(&my_eng(t->base.eng)->pool, &t->conn->rm, !t->conn->dirty);
	free(t);
}

/* Roll back on the server; true when the connection is clean again. */
static bool conn_rollback(struct my_engine *e, struct my_conn *conn)
{
	return conn->rm.up && conn_exec(e, conn, "ROLLBACK", "ROLLBACK") == 0;
}

static int my_commit(struct kv_txn *bt)
{
	struct my_txn *t = my_txn(bt);
	struct my_engine *e = my_eng(bt->eng);
	int rc = t->failed;

	if (rc) {
		txn_end(t, conn_rollback(e, t->conn));
		return rc;
	}
	rc = conn_exec(e, t->conn, "COMMIT", "COMMIT");
	if (rc == -EAGAIN) {
		txn_end(t, conn_rollback(e, t->conn));
		return rc;
	}
	txn_end(t, rc == 0);
	return rc;
}

static void my_rollback(struct kv_txn *bt)
{
	struct my_txn *t = my_txn(bt);

	txn_end(t, conn_rollback(my_eng(bt->eng), t->conn));
}

/* ---- engine ---- */

static int my_wipe(struct kv_engine *base)
{
	struct my_engine *e = my_eng(base);
	struct rm_conn *rc_conn;
	struct my_conn *conn;
	int rc = rm_get(&e->pool, &rc_conn, NULL);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	conn = (struct my_conn *)rc_conn;
	/* not TRUNCATE: it would wait for every reader's metadata lock */
	rc = conn_exec(e, conn,
		       "SET STATEMENT max_statement_time = 0 FOR "
		       "DELETE FROM tessera_kv",
		       "wipe");
	rm_put(&e->pool, rc_conn, true);
	return rc == -EAGAIN ? -EBUSY : rc;
}

static void my_free(struct my_engine *e)
{
	rm_pool_destroy(&e->pool);
	free(e->host);
	free(e->user);
	free(e->pass);
	free(e->db);
	free(e);
}

static void my_close(struct kv_engine *base)
{
	my_free(my_eng(base));
}

static const struct kv_engine_ops my_ops = {
	.scheme = "mysql",
	.begin = my_begin,
	.get = my_get,
	.put = my_put,
	.del = my_del,
	.scan = my_scan,
	.commit = my_commit,
	.rollback = my_rollback,
	.sync = NULL, /* COMMIT is durable: see the top comment */
	.wipe = my_wipe,
	.close = my_close,
};

/* Check (or with @create, make) the schema. */
static int check_schema(struct my_engine *e, struct my_conn *conn, bool create)
{
	static const char q[] =
		"SELECT version, @@max_allowed_packet FROM tessera_schema";
	MYSQL_RES *res;
	MYSQL_ROW row;
	long version = -1;
	unsigned long long maxpkt = 0;
	int rc = 0;

	for (size_t i = 0; create && rc == 0 && i < ARRAY_SIZE(schema_sql);
	     i++)
		rc = conn_exec(e, conn, schema_sql[i], "create schema");
	if (rc < 0)
		return rc;
	if (mysql_real_query(conn->c, q, sizeof(q) - 1) != 0) {
		if (mysql_errno(conn->c) == 1146) /* no such table */
			return log_fail(-ENOENT,
					"no tessera metadata in '%s' (not "
					"formatted)",
					e->base.desc);
		return conn_rc(e, conn, "read schema version");
	}
	res = mysql_store_result(conn->c);
	if (!res)
		return conn_rc(e, conn, "read schema version");
	row = mysql_num_rows(res) == 1 ? mysql_fetch_row(res) : NULL;
	if (row && row[0])
		version = atol(row[0]);
	if (row && row[1])
		maxpkt = strtoull(row[1], NULL, 10);
	mysql_free_result(res);
	rc = rm_check_version(e->base.desc, version, MY_SCHEMA_VERSION);
	if (rc == 0 && maxpkt < (unsigned long long)KV_VAL_MAX + 65536)
		log_warn("mysql '%s': max_allowed_packet is %llu; values "
			 "above that fail (set it to 64M or more)",
			 e->base.desc, maxpkt);
	return rc;
}

static int my_from_url(struct my_engine *e, const char *url)
{
	const char *why = "invalid";
	struct url u = {.path = NULL}; /* untouched by a failed parse */
	int rc = url_parse(url, &u, &why);

	if (rc == 0 && strcmp(u.scheme, "mysql") != 0) {
		why = "not a mysql:// URL";
		rc = -EINVAL;
	}
	if (rc == 0 && u.query) {
		why = "mysql:// takes no query parameters";
		rc = -EINVAL;
	}
	if (rc == 0 && strchr(u.path + 1, '/')) {
		why = "the path must be one database name";
		rc = -EINVAL;
	}
	if (rc < 0) {
		url_release(&u);
		log_error("invalid metadata URL '%s': %s", e->base.desc, why);
		return -EINVAL;
	}
	e->host = u.host;
	e->user = u.user;
	e->pass = u.pass;
	e->db = url_pct_decode(u.path + 1, strlen(u.path + 1));
	u.host = u.user = u.pass = NULL;
	e->port = u.port ? (unsigned)u.port : MY_PORT;
	url_release(&u);
	return e->db ? 0 : -ENOMEM;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

int kv_mysql_open(const char *url, bool create, struct kv_engine **out)
{
	struct my_engine *e = calloc(1, sizeof(*e));
	struct rm_conn *conn;
	int rc;

	if (!e)
		return -ENOMEM;
	pthread_once(&lib_once, lib_init);
	e->base.ops = &my_ops;
	url_redact(url, e->base.desc, sizeof(e->base.desc));
	rm_pool_init(&e->pool, MY_POOL_MAX, &my_pool_ops, e);
	rc = my_from_url(e, url);
	if (rc == 0)
		rc = rm_get(&e->pool, &conn, NULL);
	if (rc < 0) {
		my_free(e);
		return rc;
	}
	rc = check_schema(e, (struct my_conn *)conn, create);
	rm_put(&e->pool, conn, true);
	if (rc < 0) {
		my_free(e);
		return rc;
	}
	*out = &e->base;
	return 0;
}
