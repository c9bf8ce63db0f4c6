/*
 * engine_redis.c - the kv.h engine on a stock redis-server (hiredis).
 *
 * Layout, inside the database the URL selects:
 *
 *   tessera:schema   "1": written by format (create); an open without create
 *                    refuses a database without it (-ENOENT)
 *   tessera:version  integer, bumped by every commit that writes (what
 *                    read-only txns watch, below)
 *   t:<g>:<key>      string, the value of record <key> of group <g>
 *   z:<g>            sorted set of every key of group <g>, all at score 0,
 *                    so ZRANGEBYLEX walks a group in byte order
 *
 * One string per record (not one hash per group) because WATCH works on
 * whole Redis keys: a txn then conflicts only on the records it read.
 * Invariant: t:<g>:<k> exists iff <k> is a member of z:<g>; both change
 * together, inside one MULTI/EXEC.
 *
 * Transactions are optimistic:
 * - a txn holds one pooled connection from begin to commit or rollback;
 * - every read of a read-write txn WATCHes what it reads before reading
 *   it, in the same round trip: get watches t:<g>:<k>; scan watches z:<g>
 *   (phantoms) before asking for keys, then each returned t: key before
 *   reading the values (read-only txns: below);
 * - writes of a read-write txn are buffered in the txn (a hash map); get
 *   sees them first and scan merges them with the server's keys;
 * - commit sends MULTI, the buffered writes and EXEC in one round trip; a
 *   nil EXEC reply means something watched changed: -EAGAIN.
 *
 * What a read-only txn guarantees: Redis has no snapshots, so each read
 * sees the latest committed state.  commit then validates like a
 * read-write txn (an empty MULTI/EXEC): it returns 0 only when no key the
 * txn read changed between its read and the check, so all its reads were
 * one consistent state; otherwise -EAGAIN.  It watches the first
 * RD_RO_WATCH_MAX keys it reads one by one; past that it watches one key,
 * tessera:version, which every read-write commit that writes bumps (INCR
 * inside its MULTI): keys read before the switch are watched, and after
 * it no commit may write anything.  A view of n records then costs n
 * reads, not n watches (Redis checks a connection's watched keys one by
 * one, so watching every record of a dump was quadratic: 89 s for 20k
 * files).  The price: a long read-only txn fails on any write to the
 * volume after its switch, not only on writes to what it read, and every
 * writer must bump the key (an older tessera writing the same database
 * does not).  A single get, or a scan that fits in one page, is atomic by
 * itself, so commit skips the check after at most one read.  A caller
 * that rolls back (or uses results without committing) gets only per-read
 * consistency.
 *
 * A commit whose connection fails after EXEC was sent has an unknown
 * outcome and returns -EIO.
 *
 * Connections: a bounded pool (RD_POOL_MAX), dialed lazily; begin blocks
 * while all are in use (a thread holding several txns at once could wait
 * forever).  Every connection has connect and command timeouts
 * (RD_TIMEOUT_MS): a dead server gives -EIO, never a hang.  An idle
 * connection the server closed (restart) is noticed before reuse (poll)
 * and redialed.  An I/O error drops the connection and bumps the pool
 * generation, so idle connections dialed before are redialed on their next
 * use; a txn whose first batch (reads only) fails that way redials once and
 * resends it, so the mount recovers when the server is back.
 * UNWATCH is lazy: watches left by a rolled-back txn are cleared by an
 * UNWATCH sent in front of the next batch on that connection.
 *
 * sync is NULL: Redis answers EXEC once the writes are applied in memory;
 * durability is the server's (appendonly yes, appendfsync everysec or
 * always).  open warns when maxmemory-policy could evict keys.
 *
 * Locking: only the pool (util/pool.h) locks, never across I/O.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "util/log.h"
#include "util/pool.h"
#include "util/url.h"

#include <hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#define RD_POOL_MAX 16
#define RD_TIMEOUT_MS 5000
#define RD_PAGE_MIN 16
#define RD_PAGE_FIRST 128
#define RD_PAGE_MAX 512
#define RD_PAGE_BYTES (4 * 1024 * 1024)
#define RD_SCHEMA_KEY "tessera:schema"
#define RD_SCHEMA_VERSION "1"
#define RD_VERSION_KEY "tessera:version"
#define RD_RO_WATCH_MAX 256 /* record keys a read-only txn watches */
#define RD_VKEY_MAX (16 + KV_KEY_MAX)
#define STR_(x) #x
#define STR(x) STR_(x)

struct rd_conn {
	struct pool_item item; /* first: the pool's link */
	redisContext *c;       /* NULL: must be dialed */
	unsigned gen;	       /* pool generation when dialed */
	bool stale;	       /* a past txn left watches: UNWATCH first */
};

struct rd_engine {
	struct kv_engine base;
	char *host;
	int port;
	char *user;
	char *pass;
	int db;
	atomic_uint gen;
	struct pool pool; /* of rd_conn, at most RD_POOL_MAX */
};

/* One buffered write of a read-write txn. */
struct rd_wr {
	int grp;
	bool del;
	size_t klen;
	size_t vlen;
	uint64_t hash;
	unsigned char *data; /* klen key bytes, then vlen value bytes */
};

/* The write set: entries in an array, found through an index table. */
struct rd_wset {
	struct rd_wr *v;
	size_t n;
	size_t cap;
	uint32_t *slot; /* 1 + index into v; 0 = empty */
	size_t nslot;	/* 0 or a power of two, > 2 * n */
};

struct rd_txn {
	struct kv_txn base;
	struct rd_conn *conn;
	bool used;     /* a batch already reached the connection */
	bool watched;  /* WATCH sent and not yet ended by EXEC */
	int nreads;    /* read round trips (a scan page counts 2) */
	size_t nwatch; /* record keys watched (read-only txns) */
	bool coarse;   /* read-only: tessera:version watched instead */
	struct rd_wset ws;
};

/*
 * Should a read of @t that would watch @n more keys watch tessera:version
 * instead?  Read-write txns: never.  Read-only ones: once past
 * RD_RO_WATCH_MAX watched keys, and from then on (see the top).
 */
static bool watch_coarse(struct rd_txn *t, size_t n)
{
	if (t->base.rw)
		return false;
	if (!t->coarse && t->nwatch + n > RD_RO_WATCH_MAX)
		t->coarse = true;
	if (!t->coarse)
		t->nwatch += n;
	return t->coarse;
}

/* Commands formatted for one round trip. */
struct rd_batch {
	struct buf cmds;
	int n;
	int err;    /* -ENOMEM while formatting */
	bool watch; /* holds a WATCH */
	bool exec;  /* holds an EXEC: never resend */
};

#define BATCH_INIT                                                             \
	{                                                                      \
		BUF_INIT, 0, 0, false, false                                   \
	}

static struct rd_engine *rd_eng(struct kv_engine *e)
{
	return (struct rd_engine *)e;
}

static struct rd_txn *rd_txn(struct kv_txn *t)
{
	return (struct rd_txn *)t;
}

/* ---- keys ---- */

static bool has_prefix(const void *k, size_t klen, const void *p, size_t plen)
{
	return klen >= plen && memcmp(k, p, plen) == 0;
}

/*
 * "t:<g>:<key>" into @dst, which has room for RD_VKEY_MAX - KV_KEY_MAX
 * bytes plus @klen; returns its length.
 */
static size_t vkey(char *dst, int grp, const void *key, size_t klen)
{
	int n = snprintf(dst, RD_VKEY_MAX - KV_KEY_MAX, "t:%d:", grp);

	memcpy(dst + n, key, klen);
	return (size_t)n + klen;
}

static size_t zkey(char *dst, int grp)
{
	return (size_t)snprintf(dst, 16, "z:%d", grp);
}

/* ---- batches and replies ---- */

static void batch_addv(struct rd_batch *b, int argc, const char **argv,
		       const size_t *len)
{
	char *cmd;
	int n;

	if (b->err)
		return;
	n = redisFormatCommandArgv(&cmd, argc, argv, len);
	if (n < 0) {
		b->err = -ENOMEM;
		return;
	}
	if (buf_append(&b->cmds, cmd, (size_t)n) < 0)
		b->err = -ENOMEM;
	else
		b->n++;
	redisFreeCommand(cmd);
}

/* Add a command of up to 4 binary arguments (NULL ends the list). */
static void batch_add(struct rd_batch *b, const char *a0, size_t l0,
		      const char *a1, size_t l1, const char *a2, size_t l2,
		      const char *a3, size_t l3)
{
	const char *argv[4] = {a0, a1, a2, a3};
	size_t len[4] = {l0, l1, l2, l3};
	int argc = 1;

	while (argc < 4 && argv[argc])
		argc++;
	batch_addv(b, argc, argv, len);
}

#define CMD(s) s, strlen(s)

/* Free the commands; @b is empty (BATCH_INIT) again. */
static void batch_release(struct rd_batch *b)
{
	buf_release(&b->cmds);
	*b = (struct rd_batch)BATCH_INIT;
}

static void free_replies(redisReply **rep, int n)
{
	for (int i = 0; i < n; i++) {
		if (rep[i])
			freeReplyObject(rep[i]);
		rep[i] = NULL;
	}
}

/* Map an error reply to -errno and log it (not for EXEC conflicts). */
static int reply_err(struct rd_engine *e, const redisReply *r, const char *what)
{
	const char *s = r->str ? r->str : "";
	int rc = -EIO;

	if (!strncmp(s, "NOAUTH", 6) || !strncmp(s, "WRONGPASS", 9) ||
	    !strncmp(s, "NOPERM", 6))
		rc = -EACCES;
	else if (!strncmp(s, "OOM", 3))
		rc = -ENOSPC;
	else if (!strncmp(s, "READONLY", 8))
		rc = -EROFS;
	log_error("redis '%s': %s failed: %s", e->base.desc, what, s);
	return rc;
}

/* 0 when @r is a status reply (OK, QUEUED), else the mapped error. */
static int reply_status(struct rd_engine *e, const redisReply *r,
			const char *what)
{
	if (r->type == REDIS_REPLY_STATUS)
		return 0;
	if (r->type == REDIS_REPLY_ERROR)
		return reply_err(e, r, what);
	log_error("redis '%s': %s: unexpected reply type %d", e->base.desc,
		  what, r->type);
	return -EIO;
}

/* ---- connections ---- */

/* The reason a connection failed, in words ("no answer" for a timeout). */
static const char *io_why(const redisContext *c)
{
	if (strstr(c->errstr, "temporarily unavailable") ||
	    strstr(c->errstr, "timed out"))
		return "no answer within " STR(RD_TIMEOUT_MS) " ms";
	return c->errstr[0] ? c->errstr : "I/O error";
}

static int dial_errno(const char *why)
{
	if (strstr(why, "refused"))
		return -ECONNREFUSED;
	if (strstr(why, "timed out") || strstr(why, "temporarily"))
		return -ETIMEDOUT;
	if (strstr(why, "Name or service") || strstr(why, "resolve"))
		return -EHOSTUNREACH;
	return -EIO;
}

static int dial_auth(struct rd_engine *e, redisContext *c)
{
	redisReply *r;
	int rc = 0;

	if (!e->pass)
		return 0;
	if (e->user)
		r = redisCommand(c, "AUTH %s %s", e->user, e->pass);
	else
		r = redisCommand(c, "AUTH %s", e->pass);
	if (!r) {
		log_error("cannot connect to '%s': %s", e->base.desc,
			  io_why(c));
		return -EIO;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_error("cannot connect to '%s': authentication failed: %s",
			  e->base.desc, r->str);
		rc = -EACCES;
	}
	freeReplyObject(r);
	return rc;
}

static int dial_select(struct rd_engine *e, redisContext *c)
{
	redisReply *r = redisCommand(c, "SELECT %d", e->db);
	int rc = 0;

	if (!r) {
		log_error("cannot connect to '%s': %s", e->base.desc,
			  io_why(c));
		return -EIO;
	}
	if (r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOAUTH", 6)) {
		log_error("cannot connect to '%s': authentication required "
			  "(put user:password in the URL)",
			  e->base.desc);
		rc = -EACCES;
	} else if (r->type == REDIS_REPLY_ERROR) {
		log_error("cannot select database %d on '%s': %s", e->db,
			  e->base.desc, r->str);
		rc = -EINVAL;
	}
	freeReplyObject(r);
	return rc;
}

/* Connect, authenticate and select the database.  Logs on failure. */
static int dial(struct rd_engine *e, redisContext **out)
{
	struct timeval tv = {RD_TIMEOUT_MS / 1000,
			     (RD_TIMEOUT_MS % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(e->host, e->port, tv);
	int rc;

	if (!c)
		return log_fail(-ENOMEM, "cannot connect to '%s'",
				e->base.desc);
	if (c->err) {
		rc = dial_errno(c->errstr);
		log_error("cannot connect to '%s': %s", e->base.desc,
			  io_why(c));
		redisFree(c);
		return rc;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK)
		log_warn("redis '%s': cannot set timeouts", e->base.desc);
	redisEnableKeepAlive(c);
	rc = dial_auth(e, c);
	if (rc == 0)
		rc = dial_select(e, c);
	if (rc < 0) {
		redisFree(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void conn_free(struct pool_item *it)
{
	struct rd_conn *conn = (struct rd_conn *)it;

	if (conn->c)
		redisFree(conn->c);
	free(conn);
}

/* Forget a connection slot (NULL: one that was never allocated). */
static void pool_drop(struct rd_engine *e, struct rd_conn *conn)
{
	if (conn)
		conn_free(&conn->item);
	pool_forget(&e->pool);
}

/*
 * An idle connection has nothing to read: readable means the server closed
 * it (restart, timeout, CLIENT KILL).  Checked before each reuse, so a
 * txn never starts on a connection known to be dead.
 */
static bool idle_alive(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 0;
}

static int pool_get(struct rd_engine *e, struct rd_conn **out)
{
	unsigned gen = atomic_load(&e->gen);
	struct rd_conn *conn = (struct rd_conn *)pool_take(&e->pool);
	int rc;

	if (!conn) {
		conn = calloc(1, sizeof(*conn));
		if (!conn) {
			pool_drop(e, NULL);
			return -ENOMEM;
		}
	}
	if (conn->c && (conn->gen != gen || !idle_alive(conn->c->fd))) {
		redisFree(conn->c);
		conn->c = NULL;
	}
	if (!conn->c) {
		conn->stale = false;
		conn->gen = gen;
		rc = dial(e, &conn->c);
		if (rc < 0) {
			pool_drop(e, conn);
			return rc;
		}
	}
	*out = conn;
	return 0;
}

static void pool_put(struct rd_engine *e, struct rd_conn *conn)
{
	if (!conn->c) {
		pool_drop(e, conn);
		return;
	}
	pool_give(&e->pool, &conn->item);
}

/* The connection failed: drop it, and make idle ones redial. */
static void conn_broken(struct rd_engine *e, struct rd_conn *conn)
{
	redisFree(conn->c);
	conn->c = NULL;
	conn->stale = false;
	atomic_fetch_add(&e->gen, 1);
}

/*
 * Send @b and read its replies into rep[0..b->n-1].  Returns 0, -ENOMEM, or
 * -ENOTCONN when the connection failed (it is then dropped; *why holds the
 * reason).  Error replies are left to the caller.
 */
static int send_batch(struct rd_engine *e, struct rd_conn *conn,
		      struct rd_batch *b, redisReply **rep, char *why,
		      size_t whylen)
{
	redisContext *c = conn->c;
	int pre = conn->stale ? 1 : 0;
	void *r;

	if (b->err)
		return b->err;
	if ((pre && redisAppendCommand(c, "UNWATCH") != REDIS_OK) ||
	    redisAppendFormattedCommand(c, b->cmds.data, b->cmds.len) !=
		    REDIS_OK)
		goto broken;
	for (int i = 0; i < pre + b->n; i++) {
		if (redisGetReply(c, &r) != REDIS_OK || !r) {
			free_replies(rep, i - pre > 0 ? i - pre : 0);
			goto broken;
		}
		if (i < pre)
			freeReplyObject(r);
		else
			rep[i - pre] = r;
	}
	conn->stale = false;
	return 0;
broken:
	snprintf(why, whylen, "%s", io_why(c));
	conn_broken(e, conn);
	return -ENOTCONN;
}

/*
 * Run @b on @conn.  With @may_redial (nothing happened on this connection
 * for the caller yet, and @b changes nothing), a failed connection is
 * redialed once and @b resent.  Connection failures are logged: -EIO.
 */
static int run_batch(struct rd_engine *e, struct rd_conn *conn, bool may_redial,
		     struct rd_batch *b, redisReply **rep)
{
	char why[256];
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = send_batch(e, conn, b, rep, why, sizeof(why));
		if (rc != -ENOTCONN)
			return rc;
		if (!may_redial || b->exec || attempt > 0)
			break;
		log_warn("redis '%s': connection lost (%s), reconnecting",
			 e->base.desc, why);
		conn->gen = atomic_load(&e->gen);
		if (dial(e, &conn->c) < 0)
			return -EIO;
	}
	log_error("redis '%s': %s", e->base.desc, why);
	return -EIO;
}

static int txn_run(struct rd_txn *t, struct rd_batch *b, redisReply **rep)
{
	struct rd_engine *e = rd_eng(t->base.eng);
	int rc = run_batch(e, t->conn, !t->used, b, rep);

	t->used = true;
	if (rc == 0 && b->watch)
		t->watched = true;
	if (rc == 0 && b->exec)
		t->watched = false;
	return rc;
}

/* ---- the write set ---- */

static uint64_t wr_hash(int grp, const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)grp;

	for (size_t i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Slot of the entry for (grp, key), or of the empty slot it would take. */
static size_t ws_slot(const struct rd_wset *ws, int grp, const void *key,
		      size_t klen, uint64_t h)
{
	size_t mask = ws->nslot - 1;
	size_t i = (size_t)h & mask;

	for (;; i = (i + 1) & mask) {
		const struct rd_wr *w;

		if (!ws->slot[i])
			return i;
		w = &ws->v[ws->slot[i] - 1];
		if (w->hash == h && w->grp == grp && w->klen == klen &&
		    memcmp(w->data, key, klen) == 0)
			return i;
	}
}

static struct rd_wr *ws_find(const struct rd_wset *ws, int grp, const void *key,
			     size_t klen)
{
	size_t i;

	if (!ws->n)
		return NULL;
	i = ws_slot(ws, grp, key, klen, wr_hash(grp, key, klen));
	return ws->slot[i] ? &ws->v[ws->slot[i] - 1] : NULL;
}

static int ws_grow(struct rd_wset *ws)
{
	size_t nslot = ws->nslot ? ws->nslot * 2 : 64;
	uint32_t *slot;

	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 16;
		struct rd_wr *v = realloc(ws->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ws->v = v;
		ws->cap = cap;
	}
	if ((ws->n + 1) * 2 <= ws->nslot)
		return 0;
	if (nslot > UINT32_MAX)
		return -ENOMEM;
	slot = calloc(nslot, sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	free(ws->slot);
	ws->slot = slot;
	ws->nslot = nslot;
	for (size_t j = 0; j < ws->n; j++) {
		const struct rd_wr *w = &ws->v[j];

		slot[ws_slot(ws, w->grp, w->data, w->klen, w->hash)] =
			(uint32_t)(j + 1);
	}
	return 0;
}

static int ws_set(struct rd_wset *ws, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen, bool del)
{
	uint64_t h = wr_hash(grp, key, klen);
	unsigned char *data = malloc(klen + vlen + 1);
	struct rd_wr *w;
	size_t i;

	if (!data || ws_grow(ws) < 0) {
		free(data);
		return -ENOMEM;
	}
	memcpy(data, key, klen);
	if (vlen)
		memcpy(data + klen, val, vlen);
	i = ws_slot(ws, grp, key, klen, h);
	if (ws->slot[i]) {
		w = &ws->v[ws->slot[i] - 1];
		free(w->data);
	} else {
		w = &ws->v[ws->n++];
		ws->slot[i] = (uint32_t)ws->n;
	}
	*w = (struct rd_wr){.grp = grp,
			    .del = del,
			    .klen = klen,
			    .vlen = vlen,
			    .hash = h,
			    .data = data};
	return 0;
}

static void ws_release(struct rd_wset *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->v[i].data);
	free(ws->v);
	free(ws->slot);
	memset(ws, 0, sizeof(*ws));
}

/* ---- transactions ---- */

static int rd_begin(struct kv_engine *base, bool rw, struct kv_txn **out)
{
	struct rd_engine *e = rd_eng(base);
	struct rd_txn *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	rc = pool_get(e, &t->conn);
	if (rc < 0) {
		free(t);
		return rc == -ENOMEM ? rc : -EIO;
	}
	t->base.eng = base;
	t->base.rw = rw;
	*out = &t->base;
	return 0;
}

static void txn_end(struct rd_txn *t)
{
	/* watches left on a live connection: cleared by its next user */
	t->conn->stale = t->watched;
	pool_put(rd_eng(t->base.eng), t->conn);
	ws_release(&t->ws);
	free(t);
}

static int rd_get(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  struct buf *val)
{
	struct rd_txn *t = rd_txn(bt);
	struct rd_batch b = BATCH_INIT;
	const struct rd_wr *w = ws_find(&t->ws, grp, key, klen);
	redisReply *rep[2] = {NULL, NULL};
	char k[RD_VKEY_MAX];
	size_t kl;
	int rc;

	buf_reset(val);
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	if (w)
		return w->del ? -ENOENT
			      : buf_append(val, w->data + w->klen, w->vlen);
	kl = vkey(k, grp, key, klen);
	if (!watch_coarse(t, 1))
		batch_add(&b, CMD("WATCH"), k, kl, NULL, 0, NULL, 0);
	else /* see the top: one watched key for a long read-only txn */
		batch_add(&b, CMD("WATCH"), CMD(RD_VERSION_KEY), NULL, 0, NULL,
			  0);
	batch_add(&b, CMD("GET"), k, kl, NULL, 0, NULL, 0);
	b.watch = true;
	rc = txn_run(t, &b, rep);
	t->nreads++;
	batch_release(&b);
	if (rc < 0)
		return rc;
	rc = reply_status(rd_eng(bt->eng), rep[0], "WATCH");
	if (rc == 0 && rep[1]->type == REDIS_REPLY_STRING)
		rc = buf_append(val, rep[1]->str, rep[1]->len);
	else if (rc == 0 && rep[1]->type == REDIS_REPLY_NIL)
		rc = -ENOENT;
	else if (rc == 0)
		rc = reply_status(rd_eng(bt->eng), rep[1], "GET");
	free_replies(rep, 2);
	return rc;
}

static int rd_put(struct kv_txn *bt, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX || vlen > KV_VAL_MAX)
		return -EINVAL;
	return ws_set(&rd_txn(bt)->ws, grp, key, klen, val, vlen, false);
}

static int rd_del(struct kv_txn *bt, int grp, const void *key, size_t klen)
{
	if (!bt->rw)
		return -EROFS;
	if (klen > KV_KEY_MAX)
		return -EINVAL;
	return ws_set(&rd_txn(bt)->ws, grp, key, klen, NULL, 0, true);
}

/* ---- scan ---- */

/* A buffered write in the scanned range, copied: callbacks may write. */
struct rd_loc {
	bool del;
	size_t klen;
	size_t vlen;
	const unsigned char *data;
};

struct rd_scan {
	struct rd_txn *t;
	int grp;
	const unsigned char *prefix;
	size_t plen;
	const unsigned char *lo; /* first key to visit */
	size_t lolen;
	unsigned char hi[KV_KEY_MAX]; /* end of the prefix range */
	size_t hilen;		      /* 0: no end */
	size_t limit;
	size_t done; /* records visited */
	size_t rows; /* next page size, from the last page's value sizes */
	kv_scan_fn fn;
	void *arg;
	struct rd_loc *loc; /* buffered writes in range, in key order */
	unsigned char *locbuf;
	size_t nloc;
	size_t li;
};

static int loc_cmp(const void *a, const void *b)
{
	const struct rd_loc *x = a, *y = b;

	return kv_key_cmp(x->data, x->klen, y->data, y->klen);
}

static bool in_range(const struct rd_scan *s, const struct rd_wr *w)
{
	return w->grp == s->grp &&
	       has_prefix(w->data, w->klen, s->prefix, s->plen) &&
	       kv_key_cmp(w->data, w->klen, s->lo, s->lolen) >= 0;
}

/* Copy the buffered writes of the scanned range, sorted. */
static int scan_local(struct rd_scan *s)
{
	const struct rd_wset *ws = &s->t->ws;
	size_t n = 0, bytes = 0;
	unsigned char *p;

	for (size_t i = 0; i < ws->n; i++) {
		if (in_range(s, &ws->v[i])) {
			n++;
			bytes += ws->v[i].klen + ws->v[i].vlen;
		}
	}
	if (!n)
		return 0;
	s->loc = malloc(n * sizeof(*s->loc));
	p = s->locbuf = malloc(bytes + 1);
	if (!s->loc || !p)
		return -ENOMEM;
	for (size_t i = 0; i < ws->n; i++) {
		const struct rd_wr *w = &ws->v[i];

		if (!in_range(s, w))
			continue;
		memcpy(p, w->data, w->klen + w->vlen);
		s->loc[s->nloc++] = (struct rd_loc){.del = w->del,
						    .klen = w->klen,
						    .vlen = w->vlen,
						    .data = p};
		p += w->klen + w->vlen;
	}
	qsort(s->loc, s->nloc, sizeof(*s->loc), loc_cmp);
	return 0;
}

/* Visit one record: 0 go on, 1 stop (limit or callback), <0 error. */
static int scan_emit(struct rd_scan *s, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	int rc = s->fn(s->arg, k, kl, v, vl);

	if (rc)
		return rc;
	s->done++;
	return s->limit && s->done >= s->limit;
}

/*
 * Visit the buffered puts before server key @k (NULL: all that are left);
 * *same is set when a buffered write has key @k itself (it then replaces
 * the server's record).
 */
static int scan_local_upto(struct rd_scan *s, const void *k, size_t kl,
			   bool *same)
{
	int rc = 0;

	*same = false;
	while (s->li < s->nloc) {
		const struct rd_loc *w = &s->loc[s->li];
		int c = k ? kv_key_cmp(w->data, w->klen, k, kl) : -1;

		if (c > 0)
			break;
		s->li++;
		*same = c == 0;
		if (!w->del)
			rc = scan_emit(s, w->data, w->klen, w->data + w->klen,
				       w->vlen);
		if (rc || *same)
			break;
	}
	return rc;
}

/* How many server keys to ask for next. */
static size_t scan_page(const struct rd_scan *s)
{
	size_t want;

	if (!s->limit)
		return s->rows;
	/* each buffered write may hide one server record */
	want = s->limit - s->done + (s->nloc - s->li);
	return MIN(want, s->rows);
}

/* Rows for the next page: about RD_PAGE_BYTES, given the last page. */
static size_t next_rows(const redisReply *vals)
{
	size_t bytes = 0, n;

	for (size_t i = 0; i < vals->elements; i++)
		bytes += vals->element[i]->len;
	n = RD_PAGE_BYTES / (bytes / (vals->elements ? vals->elements : 1) + 1);
	return MAX(MIN(n, (size_t)RD_PAGE_MAX), (size_t)RD_PAGE_MIN);
}

/* ZRANGEBYLEX min and max: "[lo" or "(after"; "(hi" or "+". */
static int lex_bounds(const struct rd_scan *s, const char *after, size_t alen,
		      struct buf *min, struct buf *max)
{
	int rc = buf_append(min, after ? "(" : "[", 1);

	if (rc == 0)
		rc = after ? buf_append(min, after, alen)
			   : buf_append(min, s->lo, s->lolen);
	if (rc == 0)
		rc = buf_append(max, s->hilen ? "(" : "+", 1);
	if (rc == 0)
		rc = buf_append(max, s->hi, s->hilen);
	return rc;
}

/* Ask for up to @page keys after @after (NULL: from s->lo, and WATCH). */
static int scan_keys(struct rd_scan *s, const char *after, size_t alen,
		     size_t page, redisReply **keys)
{
	struct rd_engine *e = rd_eng(s->t->base.eng);
	struct rd_batch b = BATCH_INIT;
	redisReply *rep[2] = {NULL, NULL};
	struct buf min = BUF_INIT, max = BUF_INIT;
	char z[16], lim[24];
	size_t zl = zkey(z, s->grp);
	int first = after == NULL;
	int rc = lex_bounds(s, after, alen, &min, &max);

	if (rc < 0)
		goto out;
	snprintf(lim, sizeof(lim), "%zu", page);
	if (first && !watch_coarse(s->t, 1))
		batch_add(&b, CMD("WATCH"), z, zl, NULL, 0, NULL, 0);
	else if (first)
		batch_add(&b, CMD("WATCH"), CMD(RD_VERSION_KEY), NULL, 0, NULL,
			  0);
	batch_addv(&b, 7,
		   (const char *[]){"ZRANGEBYLEX", z, min.data, max.data,
				    "LIMIT", "0", lim},
		   (size_t[]){11, zl, min.len, max.len, 5, 1, strlen(lim)});
	b.watch = true;
	rc = txn_run(s->t, &b, rep);
	s->t->nreads++;
	if (rc < 0)
		goto out;
	if (first)
		rc = reply_status(e, rep[0], "WATCH");
	if (rc == 0 && rep[first]->type != REDIS_REPLY_ARRAY)
		rc = reply_status(e, rep[first], "ZRANGEBYLEX");
	if (rc == 0) {
		*keys = rep[first];
		rep[first] = NULL;
	}
	free_replies(rep, 2);
out:
	buf_release(&min);
	buf_release(&max);
	batch_release(&b);
	return rc;
}

/* WATCH then MGET the values of a page of keys. */
static int scan_values(struct rd_scan *s, const redisReply *keys,
		       redisReply **vals)
{
	struct rd_engine *e = rd_eng(s->t->base.eng);
	size_t n = keys->elements;
	struct rd_batch b = BATCH_INIT;
	redisReply *rep[2] = {NULL, NULL};
	const char **argv = malloc((n + 1) * sizeof(*argv));
	size_t *len = malloc((n + 1) * sizeof(*len));
	size_t total = 0, off = 0;
	char *kbuf;
	int rc = -ENOMEM;

	for (size_t i = 0; i < n; i++)
		total += RD_VKEY_MAX - KV_KEY_MAX +
			 MIN(keys->element[i]->len, (size_t)KV_KEY_MAX);
	kbuf = malloc(total + 1);
	if (!argv || !len || !kbuf)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];
		size_t kl = MIN(k->len, (size_t)KV_KEY_MAX);

		argv[i + 1] = kbuf + off;
		len[i + 1] = vkey(kbuf + off, s->grp, k->str, kl);
		off += RD_VKEY_MAX - KV_KEY_MAX + kl;
	}
	argv[0] = "WATCH", len[0] = 5;
	if (!watch_coarse(s->t, n))
		batch_addv(&b, (int)n + 1, argv, len);
	else
		batch_add(&b, CMD("WATCH"), CMD(RD_VERSION_KEY), NULL, 0, NULL,
			  0);
	argv[0] = "MGET", len[0] = 4;
	batch_addv(&b, (int)n + 1, argv, len);
	b.watch = true;
	rc = txn_run(s->t, &b, rep);
	s->t->nreads++;
	if (rc < 0)
		goto out;
	rc = reply_status(e, rep[0], "WATCH");
	if (rc == 0 &&
	    (rep[1]->type != REDIS_REPLY_ARRAY || rep[1]->elements != n))
		rc = reply_status(e, rep[1], "MGET");
	if (rc == 0 && rep[1]->elements != n)
		rc = log_fail(-EIO, "redis '%s': short MGET reply",
			      e->base.desc);
	if (rc == 0) {
		*vals = rep[1];
		rep[1] = NULL;
	}
	free_replies(rep, 2);
out:
	batch_release(&b);
	free(argv);
	free(len);
	free(kbuf);
	return rc;
}

/* Merge one page of server records with the buffered writes. */
static int scan_merge(struct rd_scan *s, const redisReply *keys,
		      const redisReply *vals)
{
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		const redisReply *v = vals->element[i];
		bool same;
		int rc = scan_local_upto(s, k->str, k->len, &same);

		if (rc)
			return rc;
		/* nil: deleted since the key list (EXEC will fail) */
		if (same || v->type != REDIS_REPLY_STRING)
			continue;
		if (!has_prefix(k->str, k->len, s->prefix, s->plen))
			return 1;
		rc = scan_emit(s, k->str, k->len, v->str, v->len);
		if (rc)
			return rc;
	}
	return 0;
}

static int scan_server(struct rd_scan *s)
{
	char last[KV_KEY_MAX];
	size_t lastlen = 0, page;
	bool first = true, more = true;
	int rc = 0;

	while (more && rc == 0) {
		redisReply *keys = NULL, *vals = NULL;

		page = scan_page(s);
		rc = scan_keys(s, first ? NULL : last, lastlen, page, &keys);
		first = false;
		if (rc < 0)
			break;
		more = keys->elements == page;
		if (keys->elements > 0) {
			const redisReply *l = keys->element[keys->elements - 1];

			lastlen = MIN(l->len, sizeof(last));
			memcpy(last, l->str, lastlen);
			rc = scan_values(s, keys, &vals);
		}
		if (rc == 0 && keys->elements > 0) {
			s->rows = next_rows(vals);
			rc = scan_merge(s, keys, vals);
		}
		freeReplyObject(keys);
		if (vals)
			freeReplyObject(vals);
	}
	return rc;
}

static int rd_scan(struct kv_txn *bt, int grp, const void *prefix, size_t plen,
		   const void *start, size_t slen, size_t limit, kv_scan_fn fn,
		   void *arg)
{
	struct rd_scan s = {.t = rd_txn(bt),
			    .grp = grp,
			    .prefix = prefix,
			    .plen = plen,
			    .lo = prefix,
			    .lolen = plen,
			    .limit = limit,
			    .rows = RD_PAGE_FIRST,
			    .fn = fn,
			    .arg = arg};
	bool same;
	int rc;

	if (plen > KV_KEY_MAX || slen > KV_KEY_MAX)
		return -EINVAL;
	if (!plen)
		s.prefix = s.lo = (const unsigned char *)"";
	if (start && kv_key_cmp(start, slen, s.lo, s.lolen) > 0) {
		s.lo = start;
		s.lolen = slen;
	}
	s.hilen = kv_prefix_end(s.prefix, plen, s.hi);
	rc = scan_local(&s);
	if (rc == 0)
		rc = scan_server(&s);
	if (rc == 0)
		rc = scan_local_upto(&s, NULL, 0, &same);
	free(s.loc);
	free(s.locbuf);
	return rc > 0 ? 0 : rc;
}

/* ---- commit ---- */

static void commit_add(struct rd_batch *b, const struct rd_wr *w)
{
	char k[RD_VKEY_MAX], z[16];
	size_t kl = vkey(k, w->grp, w->data, w->klen);
	size_t zl = zkey(z, w->grp);
	const char *key = (const char *)w->data;

	if (w->del) {
		batch_add(b, CMD("DEL"), k, kl, NULL, 0, NULL, 0);
		batch_add(b, CMD("ZREM"), z, zl, key, w->klen, NULL, 0);
	} else {
		batch_add(b, CMD("SET"), k, kl, key + w->klen, w->vlen, NULL,
			  0);
		batch_add(b, CMD("ZADD"), z, zl, CMD("0"), key, w->klen);
	}
}

/* Check the replies of MULTI ... EXEC; a nil EXEC is a conflict. */
static int commit_check(struct rd_engine *e, redisReply **rep, int n)
{
	const redisReply *ex = rep[n - 1];
	int rc;

	if (ex->type == REDIS_REPLY_NIL)
		return -EAGAIN;
	for (int i = 0; i < n - 1; i++) {
		rc = reply_status(e, rep[i], i ? "queueing" : "MULTI");
		if (rc < 0)
			return rc;
	}
	if (ex->type != REDIS_REPLY_ARRAY)
		return reply_status(e, ex, "EXEC");
	for (size_t i = 0; i < ex->elements; i++)
		if (ex->element[i]->type == REDIS_REPLY_ERROR)
			return reply_err(e, ex->element[i], "EXEC");
	return 0;
}

static int rd_commit(struct kv_txn *bt)
{
	struct rd_txn *t = rd_txn(bt);
	struct rd_engine *e = rd_eng(bt->eng);
	struct rd_batch b = BATCH_INIT;
	redisReply **rep = NULL;
	int rc = 0;

	if (!t->ws.n && t->nreads <= 1)
		goto out;
	batch_add(&b, CMD("MULTI"), NULL, 0, NULL, 0, NULL, 0);
	for (size_t i = 0; i < t->ws.n; i++)
		commit_add(&b, &t->ws.v[i]);
	if (t->ws.n) /* read-only txns watch it: see the top */
		batch_add(&b, CMD("INCR"), CMD(RD_VERSION_KEY), NULL, 0, NULL,
			  0);
	batch_add(&b, CMD("EXEC"), NULL, 0, NULL, 0, NULL, 0);
	b.exec = true;
	rc = b.err;
	if (rc == 0) {
		rep = calloc((size_t)b.n, sizeof(*rep));
		rc = rep ? txn_run(t, &b, rep) : -ENOMEM;
	}
	if (rc == 0) {
		rc = commit_check(e, rep, b.n);
		free_replies(rep, b.n);
	}
	free(rep);
	batch_release(&b);
out:
	txn_end(t);
	return rc;
}

static void rd_rollback(struct kv_txn *bt)
{
	txn_end(rd_txn(bt));
}

/* ---- engine ---- */

/* UNLINK every key matching @pat, a page at a time. */
static int wipe_pattern(struct rd_engine *e, struct rd_conn *conn,
			const char *pat)
{
	char cursor[32] = "0";
	int rc;

	do {
		struct rd_batch b = BATCH_INIT;
		redisReply *rep[1] = {NULL}, *del[1] = {NULL};
		redisReply *ks;

		batch_add(&b, CMD("SCAN"), cursor, strlen(cursor), CMD("MATCH"),
			  pat, strlen(pat));
		rc = run_batch(e, conn, false, &b, rep);
		batch_release(&b);
		if (rc < 0)
			return rc;
		if (rep[0]->type != REDIS_REPLY_ARRAY ||
		    rep[0]->elements != 2) {
			rc = reply_status(e, rep[0], "SCAN");
			free_replies(rep, 1);
			return rc;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep[0]->element[0]->str);
		ks = rep[0]->element[1];
		if (ks->elements) {
			const char **argv =
				calloc(ks->elements + 1, sizeof(*argv));
			size_t *len = calloc(ks->elements + 1, sizeof(*len));

			rc = argv && len ? 0 : -ENOMEM;
			for (size_t i = 0; rc == 0 && i < ks->elements; i++) {
				argv[i + 1] = ks->element[i]->str;
				len[i + 1] = ks->element[i]->len;
			}
			if (rc == 0) {
				argv[0] = "UNLINK", len[0] = 6;
				batch_addv(&b, (int)ks->elements + 1, argv,
					   len);
				rc = run_batch(e, conn, false, &b, del);
				batch_release(&b);
			}
			if (rc == 0 && del[0]->type == REDIS_REPLY_ERROR)
				rc = reply_err(e, del[0], "UNLINK");
			free_replies(del, 1);
			free(argv);
			free(len);
		}
		free_replies(rep, 1);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	return rc;
}

static int rd_wipe(struct kv_engine *base)
{
	struct rd_engine *e = rd_eng(base);
	struct rd_conn *conn;
	int rc = pool_get(e, &conn);

	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	rc = wipe_pattern(e, conn, "t:*");
	if (rc == 0)
		rc = wipe_pattern(e, conn, "z:*");
	pool_put(e, conn);
	return rc;
}

static void rd_free(struct rd_engine *e)
{
	pool_destroy(&e->pool, conn_free);
	free(e->host);
	free(e->user);
	free(e->pass);
	free(e);
}

static void rd_close(struct kv_engine *base)
{
	rd_free(rd_eng(base));
}

static const struct kv_engine_ops redis_ops = {
	.scheme = "redis",
	.begin = rd_begin,
	.get = rd_get,
	.put = rd_put,
	.del = rd_del,
	.scan = rd_scan,
	.commit = rd_commit,
	.rollback = rd_rollback,
	.sync = NULL, /* durability is the server's: see the top comment */
	.wipe = rd_wipe,
	.close = rd_close,
};

static int rd_from_url(struct rd_engine *e, const char *url)
{
	const char *why = "invalid";
	struct url u = {.path = NULL}; /* untouched by a failed parse */
	int rc = url_parse(url, &u, &why);

	if (rc == 0 && strcmp(u.scheme, "redis") != 0) {
		why = "not a redis:// URL";
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
	u.host = u.user = u.pass = NULL;
	e->port = u.port ? u.port : 6379;
	e->db = u.path[0] && u.path[1] ? atoi(u.path + 1) : 0;
	url_release(&u);
	return 0;
}

/* Warn when the server may evict keys: metadata would silently vanish. */
static void check_policy(struct rd_engine *e, const redisReply *r)
{
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[1]->str, "noeviction") != 0)
		log_warn("redis '%s': maxmemory-policy is '%s'; use "
			 "'noeviction' or metadata may be lost",
			 e->base.desc, r->element[1]->str);
}

/* Check (or with @create, write) the schema marker. */
static int check_schema(struct rd_engine *e, struct rd_conn *conn, bool create)
{
	struct rd_batch b = BATCH_INIT;
	redisReply *rep[3] = {NULL, NULL, NULL};
	const redisReply *get;
	int rc, i = create ? 1 : 0;

	if (create)
		batch_add(&b, CMD("SET"), CMD(RD_SCHEMA_KEY),
			  CMD(RD_SCHEMA_VERSION), CMD("NX"));
	batch_add(&b, CMD("GET"), CMD(RD_SCHEMA_KEY), NULL, 0, NULL, 0);
	batch_add(&b, CMD("CONFIG"), CMD("GET"), CMD("maxmemory-policy"), NULL,
		  0);
	rc = run_batch(e, conn, false, &b, rep);
	batch_release(&b);
	if (rc < 0)
		return rc;
	if (create && rep[0]->type == REDIS_REPLY_ERROR)
		rc = reply_err(e, rep[0], "SET");
	get = rep[i];
	if (rc == 0 && get->type == REDIS_REPLY_NIL) {
		log_error("no tessera metadata in '%s' (not formatted)",
			  e->base.desc);
		rc = -ENOENT;
	} else if (rc == 0 && get->type != REDIS_REPLY_STRING) {
		rc = reply_status(e, get, "GET");
		rc = rc ? rc : -EIO;
	} else if (rc == 0 && strcmp(get->str, RD_SCHEMA_VERSION) != 0) {
		log_error("'%s' holds metadata schema version '%s'; this "
			  "tessera reads version " RD_SCHEMA_VERSION,
			  e->base.desc, get->str);
		rc = -EINVAL;
	}
	if (rc == 0)
		check_policy(e, rep[i + 1]);
	free_replies(rep, 3);
	return rc;
}

int kv_redis_open(const char *url, bool create, struct kv_engine **out)
{
	struct rd_engine *e = calloc(1, sizeof(*e));
	struct rd_conn *conn;
	int rc;

	if (!e)
		return -ENOMEM;
	e->base.ops = &redis_ops;
	url_redact(url, e->base.desc, sizeof(e->base.desc));
	pool_init(&e->pool, RD_POOL_MAX);
	rc = rd_from_url(e, url);
	if (rc == 0)
		rc = pool_get(e, &conn);
	if (rc < 0) {
		rd_free(e);
		return rc;
	}
	rc = check_schema(e, conn, create);
	pool_put(e, conn);
	if (rc < 0) {
		rd_free(e);
		return rc;
	}
	*out = &e->base;
	return 0;
}
