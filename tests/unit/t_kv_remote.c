/*
 * t_kv_remote.c - what the Redis, PostgreSQL and MariaDB engines add to
 * kv.h:
 * opening (authentication, refused connections, missing databases, not
 * formatted), conflicts and serializability of read-write txns, multi-page
 * scans merged with buffered writes, more threads than pooled connections,
 * recovery after the server dropped every connection, and a server that
 * stops answering (through a pausable TCP proxy): -EIO, then recovery.
 *
 * The servers are those of tests/lib/services.sh (TESSERA_TEST_REDIS,
 * TESSERA_TEST_PG, defaults on 127.0.0.1); a test skips when its server does
 * not answer.  Redis uses databases 11 and 13; PostgreSQL the schemas
 * t_kv_remote and t_kv_remote_empty of the test database; MariaDB
 * (TESSERA_TEST_MYSQL) the databases tessera_kv_remote(_empty).  MariaDB
 * locks instead of failing at commit, so its conflict tests run two
 * threads and check the outcome (never both writes), not the interleaving.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <hiredis.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "meta/kv.h"
#include "util/log.h"

#define REDIS_DB 11
#define REDIS_DB_EMPTY 13
#define PG_SCHEMA "t_kv_remote"
#define PG_SCHEMA_EMPTY "t_kv_remote_empty"

struct fix {
	bool redis;
	bool mysql;
	int port; /* of the server, for the proxy */
	char url[1024];
	struct kv_engine *e;
};

/* ---- servers ---- */

static const char *redis_base(void)
{
	const char *s = getenv("TESSERA_TEST_REDIS");

	return s && *s ? s : "redis://127.0.0.1:6379";
}

static const char *pg_base(void)
{
	const char *s = getenv("TESSERA_TEST_PG");

	return s && *s ? s
		       : "postgres://tessera:tessera@127.0.0.1:5432/tessera";
}

/* A raw connection to the test Redis server (host and port of the URL). */
static redisContext *raw_redis(int db)
{
	struct timeval tv = {2, 0};
	char host[256] = "127.0.0.1";
	const char *p = strstr(redis_base(), "://");
	int port = 6379;
	redisContext *c;
	redisReply *r;

	if (p && sscanf(p + 3, "%255[^:/]:%d", host, &port) < 1)
		return NULL;
	c = redisConnectWithTimeout(host, port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	r = redisCommand(c, "SELECT %d", db);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		if (r)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

static void raw_redis_cmd(int db, const char *cmd)
{
	redisContext *c = raw_redis(db);
	redisReply *r;

	assert_non_null(c);
	r = redisCommand(c, cmd);
	assert_non_null(r);
	assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	redisFree(c);
}

static PGconn *raw_pg(void)
{
	PGconn *c = PQconnectdb(pg_base());

	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static void raw_pg_exec(const char *sql)
{
	PGconn *c = raw_pg();
	PGresult *r;

	assert_non_null(c);
	r = PQexec(c, "SET client_min_messages = warning");
	PQclear(r);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static bool redis_up(void)
{
	redisContext *c = raw_redis(0);

	if (c)
		redisFree(c);
	return c != NULL;
}

static bool pg_up(void)
{
	PGconn *c = raw_pg();

	PQfinish(c);
	return c != NULL;
}

static void redis_url(char *out, size_t n, int db)
{
	snprintf(out, n, "%s/%d", redis_base(), db);
}

/* The test database with search_path = @schema, and a name to find us. */
static void pg_url(char *out, size_t n, const char *schema)
{
	snprintf(out, n,
		 "%s?options=-csearch_path%%3D%s&application_name=t_kv_remote_%"
		 "d",
		 pg_base(), schema, (int)getpid());
}

/* MariaDB: databases tessera_kv_remote and tessera_kv_remote_empty. */
#define MY_DB "tessera_kv_remote"
#define MY_DB_EMPTY "tessera_kv_remote_empty"

static const char *my_base(void)
{
	const char *s = getenv("TESSERA_TEST_MYSQL");

	return s && *s ? s : "mysql://tessera:tessera@127.0.0.1:3316/tessera";
}

static int my_port(void)
{
	const char *p = strrchr(my_base(), ':');

	return p ? atoi(p + 1) : 3306;
}

/* A raw admin connection (user tessera, its password from the URL). */
static MYSQL *raw_my(void)
{
	char user[64] = "", pass[64] = "";
	const char *p = strstr(my_base(), "://");
	MYSQL *c = mysql_init(NULL);
	unsigned t = 2;

	if (!c || !p || sscanf(p + 3, "%63[^:]:%63[^@]", user, pass) != 2) {
		if (c)
			mysql_close(c);
		return NULL;
	}
	mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &t);
	if (!mysql_real_connect(c, "127.0.0.1", user, pass, NULL,
				(unsigned)my_port(), NULL, 0)) {
		mysql_close(c);
		return NULL;
	}
	return c;
}

static void raw_my_exec(const char *sql)
{
	MYSQL *c = raw_my();

	assert_non_null(c);
	if (mysql_query(c, sql) != 0)
		fail_msg("%s: %s", sql, mysql_error(c));
	mysql_close(c);
}

static bool my_up(void)
{
	MYSQL *c = raw_my();

	if (c)
		mysql_close(c);
	return c != NULL;
}

static void my_url(char *out, size_t n, const char *db)
{
	const char *slash = strrchr(my_base(), '/');

	snprintf(out, n, "%.*s/%s", (int)(slash - my_base()), my_base(), db);
}

/* ---- fixture: one engine, wiped ---- */

static int setup(void **state, bool redis)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->redis = redis;
	f->port = redis ? 6379 : 5432;
	*state = f;
	if (redis && redis_up()) {
		redis_url(f->url, sizeof(f->url), REDIS_DB);
	} else if (!redis && pg_up()) {
		raw_pg_exec("CREATE SCHEMA IF NOT EXISTS " PG_SCHEMA);
		pg_url(f->url, sizeof(f->url), PG_SCHEMA);
	} else {
		return 0; /* tests skip */
	}
	if (kv_open(f->url, true, &f->e) < 0 || kv_wipe(f->e) < 0)
		return -1;
	return 0;
}

static int setup_redis(void **state)
{
	return setup(state, true);
}

static int setup_pg(void **state)
{
	return setup(state, false);
}

static int setup_mysql(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->mysql = true;
	f->port = my_port();
	*state = f;
	if (!my_up())
		return 0; /* tests skip */
	raw_my_exec("CREATE DATABASE IF NOT EXISTS " MY_DB);
	my_url(f->url, sizeof(f->url), MY_DB);
	if (kv_open(f->url, true, &f->e) < 0 || kv_wipe(f->e) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	kv_close(f->e);
	free(f);
	return 0;
}

static struct fix *need(void **state)
{
	struct fix *f = *state;

	if (!f->e)
		skip();
	return f;
}

/* ---- helpers ---- */

static void put1(struct kv_engine *e, int grp, const char *k, const char *v)
{
	struct kv_txn *t;

	assert_int_equal(kv_begin(e, true, &t), 0);
	assert_int_equal(kv_put(t, grp, k, strlen(k), v, strlen(v)), 0);
	assert_int_equal(kv_commit(t), 0);
}

static void assert_val(struct kv_engine *e, int grp, const char *k,
		       const char *want)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	assert_int_equal(kv_begin(e, false, &t), 0);
	assert_int_equal(kv_get(t, grp, k, strlen(k), &v), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.data, want, v.len);
	buf_release(&v);
}

static int count_cb(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	(*(int *)arg)++;
	return 0;
}

/* An operation inside a txn that may be doomed: 0, or -EAGAIN (pg). */
static int may_conflict(int rc)
{
	assert_true(rc == 0 || rc == -EAGAIN);
	return rc;
}

/* ---- opening ---- */

static void test_remote_redis_open_errors(void **state)
{
	struct kv_engine *e = NULL;
	char url[512];

	(void)state;
	/* Nothing listens on port 1: refused at once, whatever the server. */
	assert_int_equal(kv_open("redis://127.0.0.1:1/0", true, &e),
			 -ECONNREFUSED);
	assert_int_equal(kv_open("redis://127.0.0.1/abc", true, &e), -EINVAL);
	assert_null(e);
	if (!redis_up())
		skip();
	/* An unknown user or a password the server does not want. */
	assert_int_equal(
		kv_open("redis://nobody:wrong@127.0.0.1:6379/11", true, &e),
		-EACCES);
	assert_int_equal(kv_open("redis://:wrong@127.0.0.1:6379/11", true, &e),
			 -EACCES);
	/* A database index the server does not have. */
	snprintf(url, sizeof(url), "%s/99999", redis_base());
	assert_int_equal(kv_open(url, true, &e), -EINVAL);
	assert_null(e);
}

static void test_remote_redis_not_formatted(void **state)
{
	struct kv_engine *e = NULL;
	char url[512];

	(void)state;
	if (!redis_up())
		skip();
	redis_url(url, sizeof(url), REDIS_DB_EMPTY);
	raw_redis_cmd(REDIS_DB_EMPTY, "DEL tessera:schema");
	assert_int_equal(kv_open(url, false, &e), -ENOENT);
	assert_null(e);
	assert_int_equal(kv_open(url, true, &e), 0);
	kv_close(e);
	assert_int_equal(kv_open(url, false, &e), 0);
	kv_close(e);
	/* A marker from another version of Tessera is refused. */
	raw_redis_cmd(REDIS_DB_EMPTY, "SET tessera:schema 99");
	e = NULL;
	assert_int_equal(kv_open(url, false, &e), -EINVAL);
	assert_int_equal(kv_open(url, true, &e), -EINVAL);
	assert_null(e);
	raw_redis_cmd(REDIS_DB_EMPTY, "DEL tessera:schema");
}

/* wipe deletes Tessera's keys only. */
static void test_remote_redis_wipe_foreign(void **state)
{
	struct fix *f = need(state);
	redisContext *c;
	redisReply *r;

	put1(f->e, KV_INODE, "mine", "1");
	raw_redis_cmd(REDIS_DB, "SET foreign:key keep");
	assert_int_equal(kv_wipe(f->e), 0);
	c = raw_redis(REDIS_DB);
	assert_non_null(c);
	r = redisCommand(c, "GET foreign:key");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "keep");
	freeReplyObject(r);
	r = redisCommand(c, "EXISTS t:3:mine z:3");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	r = redisCommand(c, "DEL foreign:key");
	freeReplyObject(r);
	redisFree(c);
}

static void test_remote_pg_open_errors(void **state)
{
	struct kv_engine *e = NULL;
	char url[1024], base[512];
	char *at;

	(void)state;
	assert_int_equal(kv_open("postgres://u:p@127.0.0.1:1/db", true, &e),
			 -ECONNREFUSED);
	assert_int_equal(kv_open("postgres://127.0.0.1/db", true, &e), -EINVAL);
	assert_null(e);
	if (!pg_up())
		skip();
	/* base without "user:pass@" */
	at = strchr(pg_base(), '@');
	assert_non_null(at);
	snprintf(base, sizeof(base), "%s", at + 1);
	snprintf(url, sizeof(url), "postgres://tessera:wrong@%s", base);
	assert_int_equal(kv_open(url, true, &e), -EACCES);
	snprintf(url, sizeof(url), "postgres://nobody_here:x@%s", base);
	assert_int_equal(kv_open(url, true, &e), -EACCES);
	/* A database that does not exist. */
	snprintf(url, sizeof(url), "%s_no_such_db", pg_base());
	assert_int_equal(kv_open(url, true, &e), -ENOENT);
	assert_null(e);
}

static void test_remote_pg_not_formatted(void **state)
{
	struct kv_engine *e = NULL;
	char url[1024];

	(void)state;
	if (!pg_up())
		skip();
	raw_pg_exec("DROP SCHEMA IF EXISTS " PG_SCHEMA_EMPTY " CASCADE");
	raw_pg_exec("CREATE SCHEMA " PG_SCHEMA_EMPTY);
	pg_url(url, sizeof(url), PG_SCHEMA_EMPTY);
	assert_int_equal(kv_open(url, false, &e), -ENOENT);
	assert_null(e);
	assert_int_equal(kv_open(url, true, &e), 0);
	put1(e, KV_SETTING, "volume", "{}");
	kv_close(e);
	/* The tables went into the schema of the URL's search_path. */
	raw_pg_exec("SELECT 1 FROM " PG_SCHEMA_EMPTY ".kv");
	assert_int_equal(kv_open(url, false, &e), 0);
	assert_val(e, KV_SETTING, "volume", "{}");
	kv_close(e);
	raw_pg_exec("UPDATE " PG_SCHEMA_EMPTY
		    ".tessera_schema SET version = 99");
	e = NULL;
	assert_int_equal(kv_open(url, false, &e), -EINVAL);
	assert_null(e);
	raw_pg_exec("DROP SCHEMA " PG_SCHEMA_EMPTY " CASCADE");
}

/* ---- transactions ---- */

/* t1 reads k, t2 overwrites it and commits, t1 writes k: t1 must fail. */
static void test_remote_lost_update(void **state)
{
	struct fix *f = need(state);
	struct buf v = BUF_INIT;
	struct kv_txn *t1, *t2;
	int rc;

	put1(f->e, KV_COUNTER, "k", "0");
	assert_int_equal(kv_begin(f->e, true, &t1), 0);
	assert_int_equal(kv_get(t1, KV_COUNTER, "k", 1, &v), 0);
	assert_int_equal(kv_begin(f->e, true, &t2), 0);
	assert_int_equal(kv_get(t2, KV_COUNTER, "k", 1, &v), 0);
	assert_int_equal(kv_put(t2, KV_COUNTER, "k", 1, "t2", 2), 0);
	assert_int_equal(kv_commit(t2), 0);
	rc = may_conflict(kv_put(t1, KV_COUNTER, "k", 1, "t1", 2));
	if (rc == 0)
		rc = kv_commit(t1);
	else
		assert_int_equal(kv_commit(t1), -EAGAIN); /* doomed stays so */
	assert_int_equal(rc, -EAGAIN);
	assert_val(f->e, KV_COUNTER, "k", "t2");
	buf_release(&v);
}

/*
 * Write skew: both read x and y, each writes one.  Under snapshot
 * isolation both would commit; serializable lets at most one through.
 */
static void test_remote_write_skew(void **state)
{
	struct fix *f = need(state);
	struct buf v = BUF_INIT;
	struct kv_txn *t1, *t2;
	int rc1, rc2;

	put1(f->e, KV_INODE, "x", "0");
	put1(f->e, KV_INODE, "y", "0");
	assert_int_equal(kv_begin(f->e, true, &t1), 0);
	assert_int_equal(kv_begin(f->e, true, &t2), 0);
	assert_int_equal(kv_get(t1, KV_INODE, "x", 1, &v), 0);
	assert_int_equal(kv_get(t1, KV_INODE, "y", 1, &v), 0);
	assert_int_equal(kv_get(t2, KV_INODE, "x", 1, &v), 0);
	assert_int_equal(kv_get(t2, KV_INODE, "y", 1, &v), 0);
	rc1 = may_conflict(kv_put(t1, KV_INODE, "x", 1, "1", 1));
	rc2 = may_conflict(kv_put(t2, KV_INODE, "y", 1, "1", 1));
	rc1 = may_conflict(kv_commit(t1)) ? -EAGAIN : rc1;
	rc2 = may_conflict(kv_commit(t2)) ? -EAGAIN : rc2;
	assert_true(rc1 == -EAGAIN || rc2 == -EAGAIN);
	buf_release(&v);
}

/*
 * Phantoms: t1 finds group A empty and writes into B; t2 finds B empty
 * and writes into A.  Both committing would be serializable in no order.
 */
static void test_remote_phantom(void **state)
{
	struct fix *f = need(state);
	struct kv_txn *t1, *t2;
	int n = 0, rc1, rc2;

	assert_int_equal(kv_begin(f->e, true, &t1), 0);
	assert_int_equal(kv_begin(f->e, true, &t2), 0);
	assert_int_equal(
		kv_scan(t1, KV_DENTRY, "d", 1, NULL, 0, 0, count_cb, &n), 0);
	assert_int_equal(
		kv_scan(t2, KV_XATTR, "x", 1, NULL, 0, 0, count_cb, &n), 0);
	assert_int_equal(n, 0);
	rc1 = may_conflict(kv_put(t1, KV_XATTR, "x1", 2, "", 0));
	rc2 = may_conflict(kv_put(t2, KV_DENTRY, "d1", 2, "", 0));
	rc1 = may_conflict(kv_commit(t1)) ? -EAGAIN : rc1;
	rc2 = may_conflict(kv_commit(t2)) ? -EAGAIN : rc2;
	assert_true(rc1 == -EAGAIN || rc2 == -EAGAIN);
}

/*
 * A read-only txn.  PostgreSQL: a snapshot, commit always succeeds.
 * Redis: reads see the latest commit, and commit fails when a read could
 * not have happened together with the others.
 */
static void test_remote_read_only(void **state)
{
	struct fix *f = need(state);
	struct buf v = BUF_INIT;
	struct kv_txn *r;

	put1(f->e, KV_INODE, "a", "1");
	put1(f->e, KV_INODE, "b", "1");
	/* One read is atomic by itself, whatever happens next. */
	assert_int_equal(kv_begin(f->e, false, &r), 0);
	assert_int_equal(kv_get(r, KV_INODE, "a", 1, &v), 0);
	put1(f->e, KV_INODE, "a", "2");
	assert_int_equal(kv_commit(r), 0);

	assert_int_equal(kv_begin(f->e, false, &r), 0);
	assert_int_equal(kv_get(r, KV_INODE, "a", 1, &v), 0);
	assert_memory_equal(v.data, "2", 1);
	put1(f->e, KV_INODE, "a", "3");
	put1(f->e, KV_INODE, "b", "3");
	assert_int_equal(kv_get(r, KV_INODE, "b", 1, &v), 0);
	assert_int_equal(kv_put(r, KV_INODE, "c", 1, "", 0), -EROFS);
	if (f->redis) {
		assert_memory_equal(v.data, "3", 1);
		assert_int_equal(kv_commit(r), -EAGAIN);
	} else {
		assert_memory_equal(v.data, "1", 1);
		assert_int_equal(kv_commit(r), 0);
	}
	/* Without a change in between, many reads commit fine. */
	assert_int_equal(kv_begin(f->e, false, &r), 0);
	assert_int_equal(kv_get(r, KV_INODE, "a", 1, &v), 0);
	assert_int_equal(kv_get(r, KV_INODE, "b", 1, &v), 0);
	assert_int_equal(kv_commit(r), 0);
	buf_release(&v);
}

/* ---- scans across pages ---- */

#define PAGE_KEYS 1300

static void page_key(unsigned char *k, int i)
{
	k[0] = 'p';
	put_be32(k + 1, (uint32_t)i);
}

struct pscan {
	int n;
	int next; /* index the next key must have */
	int err;
	const bool *present;
};

/* Keys must come in order and be exactly the present ones. */
static int pscan_cb(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	struct pscan *p = arg;
	int i;

	if (kl != 5 || vl != 4) {
		p->err = 1;
		return -EPROTO;
	}
	i = (int)get_be32((const unsigned char *)k + 1);
	while (p->next < i && !p->present[p->next])
		p->next++;
	if (i != p->next || !p->present[i] ||
	    get_be32((const unsigned char *)v) != (uint32_t)(i * 7)) {
		p->err = 1;
		return -EPROTO;
	}
	p->next++;
	p->n++;
	return 0;
}

static void put_page_key(struct kv_txn *t, int i)
{
	unsigned char k[5], v[4];

	page_key(k, i);
	put_be32(v, (uint32_t)(i * 7));
	assert_int_equal(kv_put(t, KV_CHUNK, k, 5, v, 4), 0);
}

/*
 * Every third key committed; then, in one txn, delete some, add others
 * (buffered in Redis), and scan the whole range and windows of it.
 */
static void test_remote_scan_pages(void **state)
{
	struct fix *f = need(state);
	static bool present[PAGE_KEYS];
	struct pscan p;
	struct kv_txn *t;
	unsigned char k[5];
	int want = 0;

	assert_int_equal(kv_begin(f->e, true, &t), 0);
	for (int i = 0; i < PAGE_KEYS; i++) {
		present[i] = i % 3 != 0;
		if (present[i])
			put_page_key(t, i);
	}
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	for (int i = 0; i < PAGE_KEYS; i++) {
		unsigned char kk[5];

		page_key(kk, i);
		if (i % 3 == 0 && i % 2 == 0) {
			put_page_key(t, i);
			present[i] = true;
		} else if (i % 5 == 1 || (i > 500 && i < 530)) {
			assert_int_equal(kv_del(t, KV_CHUNK, kk, 5), 0);
			present[i] = false;
		}
	}
	for (int i = 0; i < PAGE_KEYS; i++)
		want += present[i];
	memset(&p, 0, sizeof(p));
	p.present = present;
	assert_int_equal(kv_scan(t, KV_CHUNK, "p", 1, NULL, 0, 0, pscan_cb, &p),
			 0);
	assert_int_equal(p.err, 0);
	assert_int_equal(p.n, want);
	/* A window: from key 400, at most 600 records. */
	memset(&p, 0, sizeof(p));
	p.present = present;
	p.next = 400;
	page_key(k, 400);
	assert_int_equal(kv_scan(t, KV_CHUNK, "p", 1, k, 5, 600, pscan_cb, &p),
			 0);
	assert_int_equal(p.err, 0);
	assert_int_equal(p.n, 600);
	assert_int_equal(kv_commit(t), 0);
	/* The same as committed data, in a read-only txn. */
	memset(&p, 0, sizeof(p));
	p.present = present;
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(
		kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, pscan_cb, &p), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(p.err, 0);
	assert_int_equal(p.n, want);
}

/* ---- connections ---- */

#define POOL_THREADS 24
#define POOL_EACH 40

struct pool_arg {
	struct kv_engine *e;
	int err;
};

static void *pool_worker(void *arg)
{
	struct pool_arg *a = arg;

	for (int i = 0; i < POOL_EACH && !a->err; i++) {
		struct kv_txn *t;
		int rc = kv_begin(a->e, true, &t);

		if (rc == 0) {
			rc = kv_incr(t, "hits", 1, NULL);
			if (rc == 0)
				rc = kv_commit(t);
			else
				kv_rollback(t);
		}
		if (rc == -EAGAIN)
			i--;
		else if (rc < 0)
			a->err = rc;
	}
	return NULL;
}

/* More threads than pooled connections: all finish, no update lost. */
static void test_remote_pool_threads(void **state)
{
	struct fix *f = need(state);
	struct pool_arg a[POOL_THREADS];
	pthread_t th[POOL_THREADS];
	struct kv_txn *t;
	int64_t v = 0;

	for (int i = 0; i < POOL_THREADS; i++) {
		a[i] = (struct pool_arg){f->e, 0};
		assert_int_equal(
			pthread_create(&th[i], NULL, pool_worker, &a[i]), 0);
	}
	for (int i = 0; i < POOL_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < POOL_THREADS; i++)
		assert_int_equal(a[i].err, 0);
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_incr(t, "hits", 0, &v), -EROFS);
	kv_rollback(t);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_incr(t, "hits", 0, &v), 0);
	kv_rollback(t);
	assert_int_equal(v, POOL_THREADS * POOL_EACH);
}

/* Kill the Redis clients on our database; returns how many there were. */
static int kill_redis(bool kill)
{
	redisContext *c = raw_redis(0);
	redisReply *r;
	char needle[32], *line;
	int n = 0;

	assert_non_null(c);
	r = redisCommand(c, "CLIENT LIST");
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(needle, sizeof(needle), " db=%d ", REDIS_DB);
	for (line = strtok(r->str, "\n"); line; line = strtok(NULL, "\n")) {
		long long id;
		redisReply *k;

		if (!strstr(line, needle) || sscanf(line, "id=%lld", &id) != 1)
			continue;
		n++;
		if (!kill)
			continue;
		k = redisCommand(c, "CLIENT KILL ID %lld", id);
		freeReplyObject(k);
	}
	freeReplyObject(r);
	redisFree(c);
	return n;
}

/* Terminate our PostgreSQL backends; returns how many there were. */
static int kill_pg(bool kill)
{
	PGconn *c = raw_pg();
	PGresult *r;
	char sql[256];
	int n;

	assert_non_null(c);
	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM pg_stat_activity WHERE application_name = "
		 "'t_kv_remote_%d'",
		 kill ? "pg_terminate_backend(pid)" : "pid", (int)getpid());
	r = PQexec(c, sql);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	n = PQntuples(r);
	PQclear(r);
	PQfinish(c);
	return n;
}

/* Kill the MariaDB connections on our database; how many there were. */
static int kill_my(bool kill)
{
	MYSQL *c = raw_my();
	MYSQL_RES *r;
	MYSQL_ROW row;
	char sql[64];
	int n = 0;

	assert_non_null(c);
	assert_int_equal(mysql_query(c, "SELECT id FROM "
				     "information_schema.processlist WHERE "
				     "db = '" MY_DB "'"),
			 0);
	r = mysql_store_result(c);
	assert_non_null(r);
	while ((row = mysql_fetch_row(r)) != NULL) {
		n++;
		snprintf(sql, sizeof(sql), "KILL CONNECTION %s", row[0]);
		if (kill)
			mysql_query(c, sql);
	}
	mysql_free_result(r);
	mysql_close(c);
	return n;
}

static int kill_any(struct fix *f, bool kill)
{
	if (f->mysql)
		return kill_my(kill);
	return f->redis ? kill_redis(kill) : kill_pg(kill);
}

/*
 * Drop every connection of our engine, as a server restart would, and
 * wait until the server has closed them all.
 */
static void kill_ours(struct fix *f)
{
	assert_true(kill_any(f, true));
	for (int i = 0; i < 500; i++) {
		if (!kill_any(f, false))
			return;
		usleep(10 * 1000);
	}
	fail_msg("connections still alive after the kill");
}

static void test_remote_reconnect(void **state)
{
	struct fix *f = need(state);
	struct kv_txn *t[4];

	/* Fill the pool with a few connections, then lose them all. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(kv_begin(f->e, true, &t[i]), 0);
	for (int i = 0; i < 4; i++)
		kv_rollback(t[i]);
	put1(f->e, KV_INODE, "before", "1");
	kill_ours(f);
	/* A blind write and reads work at once: nothing must fail. */
	put1(f->e, KV_INODE, "after", "2");
	assert_val(f->e, KV_INODE, "before", "1");
	assert_val(f->e, KV_INODE, "after", "2");
	kill_ours(f);
	assert_val(f->e, KV_INODE, "after", "2");
}

/* ---- a server that stops answering ---- */

#define PROXY_PAIRS 32

/* A TCP proxy to the server that can stop forwarding (a hung server). */
struct proxy {
	int lfd;
	int port;
	int upstream;
	atomic_bool paused;
	atomic_bool stop;
	int fd[2 * PROXY_PAIRS]; /* client, server; -1 when free */
	pthread_t th;
};

static int tcp_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void proxy_accept(struct proxy *p)
{
	int c = accept(p->lfd, NULL, NULL);
	int u = c >= 0 ? tcp_to(p->upstream) : -1;

	for (int i = 0; u >= 0 && i < PROXY_PAIRS; i++) {
		if (p->fd[2 * i] < 0) {
			p->fd[2 * i] = c;
			p->fd[2 * i + 1] = u;
			return;
		}
	}
	if (c >= 0)
		close(c);
	if (u >= 0)
		close(u);
}

/* Copy what @from has to its partner; close the pair at EOF. */
static void proxy_copy(struct proxy *p, int from)
{
	char buf[65536];
	int to = from ^ 1;
	ssize_t n = read(p->fd[from], buf, sizeof(buf));

	if (n > 0 && write(p->fd[to], buf, (size_t)n) == n)
		return;
	close(p->fd[from]);
	close(p->fd[to]);
	p->fd[from] = p->fd[to] = -1;
}

static void *proxy_run(void *arg)
{
	struct proxy *p = arg;
	struct pollfd pf[1 + 2 * PROXY_PAIRS];

	while (!atomic_load(&p->stop)) {
		bool paused = atomic_load(&p->paused);

		pf[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
		for (int i = 0; i < 2 * PROXY_PAIRS; i++)
			pf[i + 1] = (struct pollfd){
				.fd = paused ? -1 : p->fd[i], .events = POLLIN};
		/* a short tick notices pause and stop */
		if (poll(pf, 1 + 2 * PROXY_PAIRS, 20) <= 0)
			continue;
		if (pf[0].revents)
			proxy_accept(p);
		for (int i = 0; i < 2 * PROXY_PAIRS; i++)
			if (pf[i + 1].revents && p->fd[i] >= 0)
				proxy_copy(p, i);
	}
	for (int i = 0; i < 2 * PROXY_PAIRS; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	close(p->lfd);
	return NULL;
}

static void proxy_start(struct proxy *p, int upstream)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 2 * PROXY_PAIRS; i++)
		p->fd[i] = -1;
	p->upstream = upstream;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 64), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &alen), 0);
	p->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&p->th, NULL, proxy_run, p), 0);
}

static void proxy_stop(struct proxy *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->th, NULL);
}

/* The URL of the fixture's server, through the proxy on @port. */
static void proxied_url(struct fix *f, int port, char *out, size_t n)
{
	char base[512];
	const char *hp = strstr(f->url, "127.0.0.1:");
	const char *rest;

	assert_non_null(hp);
	rest = strpbrk(hp, "/");
	assert_non_null(rest);
	snprintf(base, sizeof(base), "%.*s127.0.0.1:%d", (int)(hp - f->url),
		 f->url, port);
	snprintf(out, n, "%s%s", base, rest);
}

/*
 * The server stops answering: txns fail with -EIO after the engine's
 * timeouts instead of hanging; when it answers again, so does the engine.
 */
static void test_remote_hung_server(void **state)
{
	struct fix *f = need(state);
	struct kv_engine *e = NULL;
	struct proxy p;
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	char url[1024];
	int rc;

	proxy_start(&p, f->port);
	proxied_url(f, p.port, url, sizeof(url));
	assert_int_equal(kv_open(url, false, &e), 0);
	put1(e, KV_INODE, "k", "1");
	atomic_store(&p.paused, true);
	rc = kv_begin(e, false, &t);
	if (rc == 0) {
		rc = kv_get(t, KV_INODE, "k", 1, &v);
		kv_rollback(t);
	}
	assert_int_equal(rc, -EIO);
	/* a blind write cannot know its outcome: -EIO as well */
	rc = kv_begin(e, true, &t);
	if (rc == 0) {
		rc = kv_put(t, KV_INODE, "k", 1, "2", 1);
		rc = rc ? rc : kv_commit(t);
	}
	assert_int_equal(rc, -EIO);
	atomic_store(&p.paused, false);
	put1(e, KV_INODE, "k", "3");
	assert_val(e, KV_INODE, "k", "3");
	kv_close(e);
	proxy_stop(&p);
	buf_release(&v);
}

/* ---- MariaDB: opening, and serializability under 2PL ---- */

static void test_remote_mysql_open_errors(void **state)
{
	struct kv_engine *e = NULL;
	char url[1024], base[512];
	const char *at;

	(void)state;
	assert_int_equal(kv_open("mysql://u:p@127.0.0.1:1/db", true, &e),
			 -ECONNREFUSED);
	assert_int_equal(kv_open("mysql://127.0.0.1/db", true, &e), -EINVAL);
	assert_int_equal(kv_open("mysql://u@127.0.0.1/db?x=1", true, &e),
			 -EINVAL);
	assert_null(e);
	if (!my_up())
		skip();
	at = strchr(my_base(), '@');
	assert_non_null(at);
	snprintf(base, sizeof(base), "%s", at + 1);
	snprintf(url, sizeof(url), "mysql://tessera:wrong@%s", base);
	assert_int_equal(kv_open(url, true, &e), -EACCES);
	snprintf(url, sizeof(url), "mysql://nobody_here:x@%s", base);
	assert_int_equal(kv_open(url, true, &e), -EACCES);
	/* without a password in the URL: TESSERA_META_PASSWORD */
	snprintf(url, sizeof(url), "mysql://tessera@%s", base);
	setenv("TESSERA_META_PASSWORD", "wrong", 1);
	assert_int_equal(kv_open(url, true, &e), -EACCES);
	unsetenv("TESSERA_META_PASSWORD");
	my_url(url, sizeof(url), "tessera_no_such_db");
	assert_int_equal(kv_open(url, true, &e), -ENOENT);
	assert_null(e);
}

static void test_remote_mysql_not_formatted(void **state)
{
	struct kv_engine *e = NULL;
	char url[1024];

	(void)state;
	if (!my_up())
		skip();
	raw_my_exec("DROP DATABASE IF EXISTS " MY_DB_EMPTY);
	raw_my_exec("CREATE DATABASE " MY_DB_EMPTY);
	my_url(url, sizeof(url), MY_DB_EMPTY);
	assert_int_equal(kv_open(url, false, &e), -ENOENT);
	assert_null(e);
	assert_int_equal(kv_open(url, true, &e), 0);
	put1(e, KV_SETTING, "volume", "{}");
	kv_close(e);
	assert_int_equal(kv_open(url, false, &e), 0);
	assert_val(e, KV_SETTING, "volume", "{}");
	kv_close(e);
	raw_my_exec("UPDATE " MY_DB_EMPTY ".tessera_schema SET version = 99");
	e = NULL;
	assert_int_equal(kv_open(url, false, &e), -EINVAL);
	assert_null(e);
	raw_my_exec("DROP DATABASE " MY_DB_EMPTY);
}

#define SKEW_ROUNDS 20

struct skew_arg {
	struct kv_engine *e;
	pthread_barrier_t *go;
	bool phantom; /* scan a group instead of reading two keys */
	int me;	      /* 0 or 1 */
	int err;
	int retries;
};

/*
 * One side of a write skew: if x and y are both unset, set mine.  The
 * phantom variant: if group A (mine is the other's) is empty, put into B.
 */
static int skew_txn(struct skew_arg *a)
{
	static const char *const keys[2] = {"x", "y"};
	static const int grp[2] = {KV_DENTRY, KV_XATTR};
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	int n = 0, rc = kv_begin(a->e, true, &t);

	if (rc < 0)
		return rc;
	if (a->phantom) {
		rc = kv_scan(t, grp[a->me], NULL, 0, NULL, 0, 0, count_cb, &n);
	} else {
		for (int i = 0; i < 2 && rc == 0; i++) {
			rc = kv_get(t, KV_INODE, keys[i], 1, &v);
			n += rc == 0;
			rc = rc == -ENOENT ? 0 : rc;
		}
	}
	if (rc == 0 && n == 0)
		rc = a->phantom ? kv_put(t, grp[!a->me], "k", 1, "", 0)
				: kv_put(t, KV_INODE, keys[a->me], 1, "1", 1);
	buf_release(&v);
	if (rc < 0) {
		kv_rollback(t);
		return rc;
	}
	return kv_commit(t);
}

static void *skew_worker(void *p)
{
	struct skew_arg *a = p;
	int rc;

	pthread_barrier_wait(a->go);
	while ((rc = skew_txn(a)) == -EAGAIN)
		a->retries++;
	a->err = rc;
	return NULL;
}

/*
 * Two txns at once, each writing only when the other's write is absent:
 * serializable means never both, whatever the interleaving (here the
 * engine blocks or answers -EAGAIN, and the loser retries).
 */
static void run_skew(struct fix *f, bool phantom)
{
	for (int round = 0; round < SKEW_ROUNDS; round++) {
		pthread_barrier_t go;
		struct skew_arg a[2];
		pthread_t th[2];
		struct kv_txn *t;
		struct buf v = BUF_INIT;
		int n[2] = {0, 0};

		assert_int_equal(kv_wipe(f->e), 0);
		pthread_barrier_init(&go, NULL, 2);
		for (int i = 0; i < 2; i++) {
			a[i] = (struct skew_arg){f->e, &go, phantom, i, 0, 0};
			assert_int_equal(pthread_create(&th[i], NULL,
							skew_worker, &a[i]),
					 0);
		}
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(a[i].err, 0);
		}
		pthread_barrier_destroy(&go);
		assert_int_equal(kv_begin(f->e, false, &t), 0);
		if (phantom) {
			assert_int_equal(kv_scan(t, KV_DENTRY, NULL, 0, NULL, 0,
						 0, count_cb, &n[0]),
					 0);
			assert_int_equal(kv_scan(t, KV_XATTR, NULL, 0, NULL, 0,
						 0, count_cb, &n[1]),
					 0);
		} else {
			n[0] = kv_get(t, KV_INODE, "x", 1, &v) == 0;
			n[1] = kv_get(t, KV_INODE, "y", 1, &v) == 0;
		}
		assert_int_equal(kv_commit(t), 0);
		buf_release(&v);
		assert_int_equal(n[0] + n[1], 1);
	}
}

static void test_remote_skew_threads(void **state)
{
	run_skew(need(state), false);
}

static void test_remote_phantom_threads(void **state)
{
	run_skew(need(state), true);
}

#define R(fn) cmocka_unit_test_setup_teardown(fn, setup_redis, teardown)
#define M(fn) cmocka_unit_test_setup_teardown(fn, setup_mysql, teardown)
#define P(fn) cmocka_unit_test_setup_teardown(fn, setup_pg, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remote_redis_open_errors),
		cmocka_unit_test(test_remote_redis_not_formatted),
		R(test_remote_redis_wipe_foreign),
		cmocka_unit_test(test_remote_pg_open_errors),
		cmocka_unit_test(test_remote_pg_not_formatted),
		R(test_remote_lost_update),
		P(test_remote_lost_update),
		R(test_remote_write_skew),
		P(test_remote_write_skew),
		R(test_remote_phantom),
		P(test_remote_phantom),
		R(test_remote_read_only),
		P(test_remote_read_only),
		R(test_remote_scan_pages),
		P(test_remote_scan_pages),
		R(test_remote_pool_threads),
		P(test_remote_pool_threads),
		R(test_remote_reconnect),
		P(test_remote_reconnect),
		R(test_remote_hung_server),
		P(test_remote_hung_server),
		cmocka_unit_test(test_remote_mysql_open_errors),
		cmocka_unit_test(test_remote_mysql_not_formatted),
		M(test_remote_skew_threads),
		M(test_remote_phantom_threads),
		P(test_remote_skew_threads),
		M(test_remote_read_only),
		M(test_remote_scan_pages),
		M(test_remote_pool_threads),
		M(test_remote_reconnect),
		M(test_remote_hung_server),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
