/*
 * t_repl.c - metadata replication (src/replicate/): shipping, kv_sync,
 * restore (complete, and refused at corrupt, truncated and missing
 * segments), snapshots and retention, generations, the lease, upload
 * failures, and a writer killed with SIGKILL right after kv_sync.
 *
 * Every test uses real SQLite databases and a real file:// store in a fresh
 * temp dir, behind a thin pass-through store that can make puts fail.  The
 * workload is deterministic (txn i always does the same puts and deletes),
 * so the expected content after txn N is rebuilt in a plain reference
 * database and compared record by record with what restore produced.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "meta/kv.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/buf.h"
#include "util/log.h"

#define VOL "vol1"

/* ---- a pass-through store that can fail puts ---- */

struct fault_store {
	struct obj_store base;
	struct obj_store *inner;
	atomic_int fail_puts;
};

static struct obj_store *fs_in(struct obj_store *s)
{
	return ((struct fault_store *)s)->inner;
}

static int ft_put(struct obj_store *s, const char *key, const void *data,
		  size_t len)
{
	if (atomic_load(&((struct fault_store *)s)->fail_puts))
		return -EIO;
	return obj_put(fs_in(s), key, data, len);
}

static int ft_get(struct obj_store *s, const char *key, uint64_t off,
		  uint64_t len, struct buf *out)
{
	return obj_get(fs_in(s), key, off, len, out);
}

static int ft_head(struct obj_store *s, const char *key, struct obj_info *out)
{
	return obj_head(fs_in(s), key, out);
}

static int ft_del(struct obj_store *s, const char *key)
{
	return obj_del(fs_in(s), key);
}

static int ft_list(struct obj_store *s, const char *prefix,
		   const char *start_after, const char *token, int limit,
		   struct obj_list *out)
{
	return obj_list(fs_in(s), prefix, start_after, token, limit, out);
}

static int ft_sync(struct obj_store *s)
{
	return obj_sync(fs_in(s));
}

static void ft_close(struct obj_store *s)
{
	obj_close(fs_in(s));
	free(s);
}

static const struct obj_store_ops fault_ops = {
    .scheme = "fault",
    .put = ft_put,
    .get = ft_get,
    .head = ft_head,
    .del = ft_del,
    .list = ft_list,
    .sync = ft_sync,
    .close = ft_close,
};

/* ---- fixture ---- */

struct fx {
	char dir[256];
	char objdir[300];
	struct fault_store *fs;
	struct obj_store *store;
};

static struct obj_store *open_store(struct fx *f)
{
	char url[400];
	struct fault_store *fs = calloc(1, sizeof(*fs));

	assert_non_null(fs);
	snprintf(url, sizeof(url), "file://%s/", f->objdir);
	assert_int_equal(obj_open(url, true, &fs->inner), 0);
	fs->base.ops = &fault_ops;
	snprintf(fs->base.desc, sizeof(fs->base.desc), "%s", url);
	f->fs = fs;
	return &fs->base;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/t_repl.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->objdir, sizeof(f->objdir), "%s/objects", f->dir);
	if (mkdir(f->objdir, 0755) < 0)
		return -1;
	f->store = open_store(f);
	*state = f;
	return 0;
}

static int rm_one(const char *p, const struct stat *sb, int type,
		  struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(p);
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	obj_close(f->store);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void db_url(const struct fx *f, const char *name, char *out, size_t n)
{
	snprintf(out, n, "sqlite3://%s/%s.db", f->dir, name);
}

static struct kv_engine *open_db(const struct fx *f, const char *name)
{
	char url[400];
	struct kv_engine *e = NULL;

	db_url(f, name, url, sizeof(url));
	assert_int_equal(kv_open(url, true, &e), 0);
	return e;
}

/* Conf for tests: nothing ships on its own unless @lag_ms says so. */
static struct repl_conf test_conf(uint32_t lag_ms)
{
	struct repl_conf c;

	memset(&c, 0, sizeof(c));
	c.max_lag_ms = lag_ms ? lag_ms : 600000;
	c.snapshot_txns = 1000000;
	c.sync_timeout_ms = 10000;
	return c;
}

/* Wrap @name and wait for the generation's base snapshot. */
static struct kv_engine *wrap_db(struct fx *f, const char *name,
				 const struct repl_conf *c)
{
	struct kv_engine *inner = open_db(f, name), *e = NULL;

	assert_int_equal(repl_wrap(inner, f->store, VOL, c, &e), 0);
	assert_true(repl_is_wrapper(e));
	assert_int_equal(repl_snapshot(e, NULL), 0);
	return e;
}

/* ---- the workload ---- */

static int work_txn(struct kv_txn *t, int i)
{
	unsigned char bk[9] = {0, 1, 2, 0, 0, 0xff, 0, 7, 0};
	char k[32], v[64], big[3000];
	int rc;

	snprintf(k, sizeof(k), "ino%06d", i);
	snprintf(v, sizeof(v), "val%d", i * 7);
	rc = kv_put(t, KV_INODE, k, strlen(k), v, strlen(v));
	snprintf(k, sizeof(k), "d%d", i % 5);
	snprintf(v, sizeof(v), "gen%d", i);
	if (rc == 0)
		rc = kv_put(t, KV_DENTRY, k, strlen(k), v, strlen(v));
	if (rc == 0 && i % 3 == 0 && i > 2) {
		snprintf(k, sizeof(k), "ino%06d", i - 2);
		rc = kv_del(t, KV_INODE, k, strlen(k));
	}
	if (rc == 0 && i % 4 == 0) {
		bk[4] = (unsigned char)i;
		for (size_t j = 0; j < sizeof(big); j++)
			big[j] = (char)(j * 31 + (size_t)i);
		rc = kv_put(t, KV_CHUNK, bk, sizeof(bk), big, sizeof(big));
	}
	if (rc == 0 && i % 7 == 0)
		rc = kv_put(t, KV_XATTR, "empty", 5, "", 0);
	if (rc == 0)
		rc = kv_incr(t, "nextInode", 1, NULL);
	return rc;
}

static void run_txns(struct kv_engine *e, int from, int to)
{
	for (int i = from; i <= to; i++) {
		struct kv_txn *t;

		assert_int_equal(kv_begin(e, true, &t), 0);
		assert_int_equal(work_txn(t, i), 0);
		assert_int_equal(kv_commit(t), 0);
	}
}

/* ---- comparing databases ---- */

struct dump {
	struct buf *b;
	int grp;
};

/* Groups dump_db leaves out (bit per group); 0 = compare everything. */
static unsigned g_skip_groups;

static int dump_rec(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct dump *d = arg;
	struct buf *b = d->b;
	int grp = d->grp;

	/* Replication's own records differ by design. */
	if ((grp == KV_COUNTER && klen == 7 && !memcmp(key, "replSeq", 7)) ||
	    (grp == KV_SETTING && klen == 14 &&
	     !memcmp(key, "replGeneration", 14)) ||
	    (grp == KV_SETTING && klen == 16 &&
	     !memcmp(key, "replRestoredFrom", 16)))
		return 0;
	buf_appendf(b, "|%zu:", klen);
	buf_append(b, key, klen);
	buf_appendf(b, "=%zu:", vlen);
	buf_append(b, val, vlen);
	return 0;
}

static void dump_db(struct kv_engine *e, struct buf *out)
{
	struct kv_txn *t;

	buf_reset(out);
	assert_int_equal(kv_begin(e, false, &t), 0);
	for (int g = 1; g < KV_GROUP_MAX; g++) {
		struct dump d = {out, g};

		if (g_skip_groups & (1u << g))
			continue;
		buf_appendf(out, "\n#%d", g);
		assert_int_equal(
		    kv_scan(t, g, NULL, 0, NULL, 0, 0, dump_rec, &d), 0);
	}
	kv_rollback(t);
}

static uint64_t read_seq(struct kv_engine *e)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	uint64_t seq = 0;
	int rc;

	assert_int_equal(kv_begin(e, false, &t), 0);
	rc = kv_get(t, KV_COUNTER, "replSeq", 7, &v);
	if (rc == 0) {
		assert_int_equal(v.len, 8);
		seq = get_be64((const unsigned char *)v.data);
	} else {
		assert_int_equal(rc, -ENOENT);
	}
	kv_rollback(t);
	buf_release(&v);
	return seq;
}

/* The content after txns 1..n, from a plain database. */
static void expected(struct fx *f, int n, struct buf *out)
{
	char name[64];
	struct kv_engine *e;

	snprintf(name, sizeof(name), "ref-%d-%ld", n, random());
	e = open_db(f, name);
	run_txns(e, 1, n);
	dump_db(e, out);
	kv_close(e);
}

/* Assert that database @name holds exactly txns 1..n. */
static void assert_db_is(struct fx *f, const char *name, int n)
{
	struct buf want = BUF_INIT, got = BUF_INIT;
	struct kv_engine *e = open_db(f, name);

	dump_db(e, &got);
	assert_int_equal(read_seq(e), (uint64_t)n);
	kv_close(e);
	expected(f, n, &want);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, got.len);
	buf_release(&want);
	buf_release(&got);
}

static void assert_integrity_ok(struct fx *f, const char *name)
{
	char path[400];
	sqlite3 *db;
	sqlite3_stmt *st;

	snprintf(path, sizeof(path), "%s/%s.db", f->dir, name);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static int do_restore(struct fx *f, const char *name,
		      struct repl_restore_info *info)
{
	char url[400];

	db_url(f, name, url, sizeof(url));
	return repl_restore(f->store, VOL, url, info, NULL, NULL);
}

/* ---- store helpers ---- */

/* Keys under VOL/meta/ containing @kind ("/seg/", "/snap/"), sorted. */
static size_t list_keys(struct fx *f, const char *kind, char keys[][128],
			size_t max)
{
	struct obj_list l;
	size_t n = 0;

	obj_list_init(&l);
	assert_int_equal(obj_list(f->store, VOL "/meta/", NULL, NULL, 1000, &l),
			 0);
	for (size_t i = 0; i < l.n; i++)
		if (strstr(l.items[i].key, kind) && n < max)
			snprintf(keys[n++], 128, "%s", l.items[i].key);
	obj_list_release(&l);
	return n;
}

static void key_path(struct fx *f, const char *key, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", f->objdir, key);
}

static void flip_byte(struct fx *f, const char *key)
{
	char path[600];
	unsigned char c;
	struct stat sb;
	int fd;

	key_path(f, key, path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(pread(fd, &c, 1, sb.st_size / 2), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, sb.st_size / 2), 1);
	close(fd);
}

/* Run @fn with stderr captured into @out. */
static int captured(struct buf *out, int (*fn)(void *), void *arg)
{
	char path[] = "/tmp/t_repl_err.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), rc;
	char chunk[4096];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	dup2(fd, STDERR_FILENO);
	rc = fn(arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	buf_reset(out);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	close(fd);
	/* Show it too, for whoever reads the test log. */
	if (write(STDERR_FILENO, out->data ? out->data : "", out->len) < 0)
		rc = rc ? rc : -EIO;
	return rc;
}

struct restore_call {
	struct fx *f;
	const char *name;
	struct repl_restore_info info;
};

static int restore_fn(void *arg)
{
	struct restore_call *c = arg;

	return do_restore(c->f, c->name, &c->info);
}

/* Three segments: txns 1-5, 6-10, 11-15 (plus the base snapshot at 0). */
static void three_segments(struct fx *f, char keys[][128])
{
	struct repl_conf c = test_conf(0);
	struct kv_engine *e = wrap_db(f, "src", &c);

	for (int i = 0; i < 3; i++) {
		run_txns(e, i * 5 + 1, i * 5 + 5);
		assert_int_equal(kv_sync(e), 0);
	}
	kv_close(e);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 3);
	assert_non_null(strstr(keys[1], "0000000000000006-000000000000000a"));
}

/* ---- tests ---- */

/* Shipped commits restore to exactly the same content. */
static void test_repl_ship_restore(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(50);
	struct repl_restore_info info;
	struct repl_status st;
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct kv_engine *e = wrap_db(f, "src", &c), *r;
	struct kv_txn *t;

	run_txns(e, 1, 40);
	/* Neither a read-only nor an unchanged read-write txn is a txn. */
	assert_int_equal(kv_begin(e, true, &t), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(kv_begin(e, false, &t), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(read_seq(e), 40);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(repl_status(e, &st), 0);
	assert_int_equal(st.committed_seq, 40);
	assert_int_equal(st.shipped_seq, 40);
	assert_int_equal(st.lag_ms, 0);
	assert_false(st.lease_lost);
	dump_db(e, &a);
	kv_close(e);

	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_int_equal(info.seq, 40);
	assert_int_equal(info.latest_seq, 40);
	assert_string_equal(info.stop_reason, "");
	r = open_db(f, "dst");
	dump_db(r, &b);
	assert_int_equal(read_seq(r), 40);
	kv_close(r);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_db_is(f, "dst", 40);
	assert_integrity_ok(f, "dst");
	/* Restore never overwrites a database. */
	assert_int_equal(do_restore(f, "dst", &info), -EEXIST);
	buf_release(&a);
	buf_release(&b);
}

/* kv_sync returns only once the txn's segment is in the store. */
static void test_repl_sync_waits(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct kv_engine *e = wrap_db(f, "src", &c);
	struct repl_status st;
	char keys[8][128];

	run_txns(e, 1, 3);
	/* max_lag is 10 minutes: nothing is shipped yet. */
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 0);
	assert_int_equal(repl_status(e, &st), 0);
	assert_int_equal(st.committed_seq, 3);
	assert_int_equal(st.shipped_seq, 0);
	assert_true(st.pending_bytes > 0);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 1);
	assert_non_null(strstr(keys[0], "/seg/0000000000000001-"
					"0000000000000003"));
	run_txns(e, 4, 4);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 2);
	assert_non_null(strstr(keys[1], "/seg/0000000000000004-"
					"0000000000000004"));
	kv_close(e);
}

/* A snapshot in the middle: restore = snapshot + later segments. */
static void test_repl_snapshot_segments(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e = wrap_db(f, "src", &c);
	uint64_t seq = 0;

	run_txns(e, 1, 10);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(repl_snapshot(e, &seq), 0);
	assert_int_equal(seq, 10);
	run_txns(e, 11, 17);
	assert_int_equal(kv_sync(e), 0);
	run_txns(e, 18, 25);
	kv_close(e); /* a clean close ships the rest */

	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_int_equal(info.snapshot_seq, 10);
	assert_int_equal(info.segments, 2);
	assert_int_equal(info.seq, 25);
	assert_db_is(f, "dst", 25);
	assert_integrity_ok(f, "dst");
}

static void assert_stopped_at_5(struct fx *f, const char *keys1,
				const char *what)
{
	struct restore_call call = {.f = f, .name = "dst"};
	struct buf err = BUF_INIT;
	char line[600];

	assert_int_equal(captured(&err, restore_fn, &call), 0);
	assert_false(call.info.complete);
	assert_int_equal(call.info.seq, 5);
	assert_int_equal(call.info.latest_seq, 15);
	if (keys1)
		snprintf(line, sizeof(line),
			 "restore stopped at txn 5: segment '%s' is %s", keys1,
			 what);
	else
		snprintf(line, sizeof(line), "restore stopped at txn 5: %s",
			 what);
	assert_non_null(strstr(call.info.stop_reason, line));
	assert_non_null(strstr(err.data, line));
	assert_db_is(f, "dst", 5);
	assert_integrity_ok(f, "dst");
	buf_release(&err);
}

static void test_repl_corrupt_segment(void **state)
{
	struct fx *f = *state;
	char keys[8][128];

	three_segments(f, keys);
	flip_byte(f, keys[1]);
	assert_stopped_at_5(f, keys[1], "corrupt (checksum mismatch)");
}

static void test_repl_truncated_segment(void **state)
{
	struct fx *f = *state;
	char keys[8][128], path[600];
	struct stat sb;

	three_segments(f, keys);
	key_path(f, keys[1], path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 9), 0);
	assert_stopped_at_5(f, keys[1], "corrupt");
}

/*
 * The newest segment cut short (a crash during a non-atomic PUT): its
 * txns were never acknowledged; the restore ends before it, complete.
 * The same segment with a flipped byte is damage: a stop.
 */
static void test_repl_torn_tail(void **state)
{
	struct fx *f = *state;
	struct restore_call call = {.f = f, .name = "dst"};
	struct buf err = BUF_INIT;
	char keys[8][128], path[600];
	struct stat sb;

	three_segments(f, keys);
	key_path(f, keys[2], path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size / 2), 0);
	assert_int_equal(captured(&err, restore_fn, &call), 0);
	assert_true(call.info.complete);
	assert_int_equal(call.info.seq, 10);
	assert_string_equal(call.info.stop_reason, "");
	assert_non_null(strstr(err.data, "cut short"));
	assert_db_is(f, "dst", 10);
	assert_int_equal(truncate(path, 0), 0);
	call.name = "dst0";
	assert_int_equal(captured(&err, restore_fn, &call), 0);
	assert_true(call.info.complete);
	assert_int_equal(call.info.seq, 10);
	buf_release(&err);
}

/* A full-length last segment with a bad checksum is damage, not a tear. */
static void test_repl_corrupt_tail(void **state)
{
	struct fx *f = *state;
	struct restore_call call = {.f = f, .name = "dst"};
	struct buf err = BUF_INIT;
	char keys[8][128];

	three_segments(f, keys);
	flip_byte(f, keys[2]);
	assert_int_equal(captured(&err, restore_fn, &call), 0);
	assert_false(call.info.complete);
	assert_int_equal(call.info.seq, 10);
	assert_non_null(strstr(call.info.stop_reason, "is corrupt"));
	buf_release(&err);
}

static void test_repl_gap(void **state)
{
	struct fx *f = *state;
	char keys[8][128], what[300];

	three_segments(f, keys);
	assert_int_equal(obj_del(f->store, keys[1]), 0);
	snprintf(what, sizeof(what), "no segment holds txn 6 (next is '%s')",
		 keys[2]);
	assert_stopped_at_5(f, NULL, what);
}

struct acquire_call {
	struct fx *f;
	struct repl_holder *h;
	bool force;
};

static int acquire_fn(void *arg)
{
	struct acquire_call *c = arg;

	return repl_lease_acquire(c->f->store, VOL, c->h, c->force);
}

struct commit_call {
	struct kv_engine *e;
	int i;
};

/* Commit until the lease loss shows (bounded); returns the last rc. */
static int commit_until_rofs(void *arg)
{
	struct commit_call *c = arg;
	int64_t end = (int64_t)time(NULL) + 30;
	int rc = 0;

	while (rc == 0 && (int64_t)time(NULL) < end) {
		struct kv_txn *t;
		struct timespec ts = {0, 20 * 1000000};

		assert_int_equal(kv_begin(c->e, true, &t), 0);
		assert_int_equal(work_txn(t, c->i++), 0);
		rc = kv_commit(t);
		nanosleep(&ts, NULL);
	}
	return rc;
}

static void test_repl_lease(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_holder other;
	struct acquire_call ac = {f, &other, false};
	struct commit_call cc;
	struct buf err = BUF_INIT;
	struct kv_engine *e, *e2 = NULL, *inner;
	char line[400];

	repl_holder_init(&c.holder);
	c.holder.ttl_ms = 3000; /* renewed every second */
	e = wrap_db(f, "src", &c);
	run_txns(e, 1, 2);

	repl_holder_init(&other);
	assert_int_equal(captured(&err, acquire_fn, &ac), -EBUSY);
	snprintf(line, sizeof(line), "volume '%s' is in use by %s (pid %ld",
		 VOL, c.holder.proc.host, c.holder.proc.pid);
	assert_non_null(strstr(err.data, line));
	/* A second writer is refused the same way. */
	inner = open_db(f, "other");
	assert_int_equal(repl_wrap(inner, f->store, VOL, NULL, &e2), -EBUSY);
	kv_close(inner);

	ac.force = true;
	assert_int_equal(acquire_fn(&ac), 0);
	cc.e = e;
	cc.i = 3;
	assert_int_equal(captured(&err, commit_until_rofs, &cc), -EROFS);
	snprintf(line, sizeof(line),
		 "lease of volume '%s' was taken by %s (pid %ld): this mount "
		 "stops writing",
		 VOL, other.proc.host, other.proc.pid);
	assert_non_null(strstr(err.data, line));
	assert_int_equal(kv_sync(e), -EROFS);
	kv_close(e);
	/* The loser did not release the winner's lease. */
	assert_int_equal(repl_lease_acquire(f->store, VOL, &c.holder, false),
			 -EBUSY);
	assert_int_equal(repl_lease_release(f->store, VOL, &other), 0);
	assert_int_equal(repl_lease_acquire(f->store, VOL, &c.holder, false),
			 0);
	buf_release(&err);
}

/* keep_snapshots=1: a snapshot deletes what it covers. */
static void test_repl_retention(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e;
	char keys[8][128];
	uint64_t seq;

	c.keep_snapshots = 1;
	e = wrap_db(f, "src", &c);
	run_txns(e, 1, 5);
	assert_int_equal(kv_sync(e), 0);
	run_txns(e, 6, 10);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 2);
	assert_int_equal(repl_snapshot(e, &seq), 0);
	assert_int_equal(seq, 10);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 0);
	assert_int_equal(list_keys(f, "/snap/", keys, 8), 1);
	assert_non_null(strstr(keys[0], "/snap/000000000000000a"));
	run_txns(e, 11, 12);
	kv_close(e);
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 1);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_int_equal(info.snapshot_seq, 10);
	assert_db_is(f, "dst", 12);
}

/* keep_snapshots=2: a damaged newest snapshot falls back to the older. */
static void test_repl_snapshot_fallback(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e = wrap_db(f, "src", &c);
	char keys[8][128];

	run_txns(e, 1, 5);
	assert_int_equal(repl_snapshot(e, NULL), 0);
	run_txns(e, 6, 10);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(repl_snapshot(e, NULL), 0);
	run_txns(e, 11, 13);
	kv_close(e);
	/* Snapshot 0 and the segment 1-5 are gone; 6-10 rolls 5 forward. */
	assert_int_equal(list_keys(f, "/snap/", keys, 8), 2);
	assert_non_null(strstr(keys[0], "/snap/0000000000000005"));
	assert_int_equal(list_keys(f, "/seg/", keys, 8), 2);
	assert_non_null(strstr(keys[0], "/seg/0000000000000006-"));
	list_keys(f, "/snap/", keys, 8);
	flip_byte(f, keys[1]);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_int_equal(info.snapshot_seq, 5);
	assert_int_equal(info.seq, 13);
	assert_db_is(f, "dst", 13);
}

/* Clean restarts continue a generation; a diverged database does not. */
static void test_repl_generations(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct repl_status st;
	char g1[REPL_GEN_SIZE], g2[REPL_GEN_SIZE];
	struct kv_engine *e = wrap_db(f, "src", &c), *plain;
	struct kv_txn *t;

	run_txns(e, 1, 3);
	assert_int_equal(repl_status(e, &st), 0);
	memcpy(g1, st.generation, sizeof(g1));
	kv_close(e);
	e = wrap_db(f, "src", &c);
	assert_int_equal(repl_status(e, &st), 0);
	assert_string_equal(st.generation, g1);
	run_txns(e, 4, 5);
	kv_close(e);

	/* A txn committed locally but never shipped (a crash). */
	plain = open_db(f, "src");
	assert_int_equal(kv_begin(plain, true, &t), 0);
	assert_int_equal(work_txn(t, 6), 0);
	assert_int_equal(kv_incr(t, "replSeq", 1, NULL), 0);
	assert_int_equal(kv_commit(t), 0);
	kv_close(plain);
	e = wrap_db(f, "src", &c);
	assert_int_equal(repl_status(e, &st), 0);
	assert_string_not_equal(st.generation, g1);
	assert_true(strcmp(st.generation, g1) > 0);
	memcpy(g2, st.generation, sizeof(g2));
	run_txns(e, 7, 8);
	kv_close(e);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_string_equal(info.generation, g2);
	assert_int_equal(info.snapshot_seq, 6);
	assert_db_is(f, "dst", 8);

	/* A restored database starts its own generation. */
	e = wrap_db(f, "dst", &c);
	assert_int_equal(repl_status(e, &st), 0);
	assert_true(strcmp(st.generation, g2) > 0);
	assert_int_equal(st.committed_seq, 8);
	kv_close(e);
}

/* Uploads that fail make kv_sync fail, and heal when the store does. */
static void test_repl_upload_failure(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e;
	int64_t end;
	int rc;

	c.sync_timeout_ms = 300;
	e = wrap_db(f, "src", &c);
	run_txns(e, 1, 4);
	atomic_store(&f->fs->fail_puts, 1);
	assert_int_equal(kv_sync(e), -EIO);
	run_txns(e, 5, 6);
	atomic_store(&f->fs->fail_puts, 0);
	end = (int64_t)time(NULL) + 30;
	do {
		rc = kv_sync(e);
	} while (rc == -EIO && (int64_t)time(NULL) < end);
	assert_int_equal(rc, 0);
	kv_close(e);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_db_is(f, "dst", 6);
}

/* A writer killed right after kv_sync: every synced txn is restored. */
static void test_repl_sigkill(void **state)
{
	struct fx *f = *state;
	struct repl_restore_info info;
	int p[2], status;
	char msg[8];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct repl_conf c = test_conf(0);
		struct obj_store *s;
		struct kv_engine *inner, *e;
		char url[400];

		close(p[0]);
		snprintf(url, sizeof(url), "file://%s/", f->objdir);
		if (obj_open(url, false, &s) < 0)
			_exit(2);
		db_url(f, "src", url, sizeof(url));
		if (kv_open(url, true, &inner) < 0 ||
		    repl_wrap(inner, s, VOL, &c, &e) < 0)
			_exit(3);
		run_txns(e, 1, 20);
		if (kv_sync(e) < 0)
			_exit(4);
		if (write(p[1], "synced", 6) != 6)
			_exit(5);
		run_txns(e, 21, 25); /* committed, not synced */
		if (write(p[1], "more", 2) != 2)
			_exit(5);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], msg, 6), 6);
	assert_int_equal(read(p[0], msg, 2), 2);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	close(p[0]);

	/* A dead holder on this host does not block the volume. */
	{
		struct repl_holder h;

		repl_holder_init(&h);
		assert_int_equal(repl_lease_acquire(f->store, VOL, &h, false),
				 0);
	}
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.seq >= 20);
	assert_true(info.complete);
	assert_db_is(f, "dst", (int)info.seq);
	assert_integrity_ok(f, "dst");
}

static void test_repl_restore_errors(void **state)
{
	struct fx *f = *state;
	struct repl_restore_info info;
	struct repl_store_status ss;
	char path[400];

	assert_int_equal(do_restore(f, "dst", &info), -ENOENT);
	assert_int_equal(repl_store_status(f->store, VOL, &ss), -ENOENT);
	assert_int_equal(repl_restore(f->store, "../x", "sqlite3:///tmp/x.db",
				      &info, NULL, NULL),
			 -EINVAL);
	assert_int_equal(
	    repl_restore(f->store, VOL, "redis://localhost", &info, NULL, NULL),
	    -EINVAL);
	snprintf(path, sizeof(path), "%s/dst.db", f->dir);
	assert_int_equal(access(path, F_OK), -1);
}

/* kv_wipe through the wrapper starts a generation that restores empty. */
static void test_repl_wipe(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct repl_store_status ss;
	struct kv_engine *e = wrap_db(f, "src", &c);

	run_txns(e, 1, 5);
	assert_int_equal(kv_sync(e), 0);
	assert_int_equal(kv_wipe(e), 0);
	run_txns(e, 1, 2);
	assert_int_equal(kv_sync(e), 0);
	kv_close(e);
	assert_int_equal(repl_store_status(f->store, VOL, &ss), 0);
	assert_int_equal(ss.last_seq, 2);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_db_is(f, "dst", 2);
}

static void set_counter(struct kv_engine *e, const char *name, uint64_t v)
{
	unsigned char enc[8];
	struct kv_txn *t;

	put_be64(enc, v);
	assert_int_equal(kv_begin(e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_COUNTER, name, strlen(name), enc, 8), 0);
	assert_int_equal(kv_commit(t), 0);
}

static uint64_t get_counter(struct kv_engine *e, const char *name)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	uint64_t n;

	assert_int_equal(kv_begin(e, false, &t), 0);
	assert_int_equal(kv_get(t, KV_COUNTER, name, strlen(name), &v), 0);
	assert_int_equal(v.len, 8);
	n = get_be64((const unsigned char *)v.data);
	kv_rollback(t);
	buf_release(&v);
	return n;
}

static bool has_ckpt_record(struct kv_engine *e, const char *name)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	int rc;

	assert_int_equal(kv_begin(e, false, &t), 0);
	rc = kv_get(t, KV_CHECKPOINT, name, strlen(name), &v);
	kv_rollback(t);
	if (rc == 0)
		assert_int_equal(v.len, REPL_CKPT_REC_LEN);
	buf_release(&v);
	return rc == 0;
}

/* Checkpoints: create, list, restore (O(metadata) swap), delete. */
static void test_repl_checkpoint(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct repl_status st;
	struct repl_ckpt ck, *list = NULL;
	struct buf want = BUF_INIT, got = BUF_INIT, before = BUF_INIT;
	char gen[REPL_GEN_SIZE], key[128];
	struct kv_engine *e = wrap_db(f, "src", &c), *plain;
	size_t n;

	run_txns(e, 1, 10);
	set_counter(e, "nextSlice", 100);
	set_counter(e, "txnSeq", 5);
	assert_int_equal(repl_ckpt_create(e, f->store, VOL, "c1", &ck), 0);
	assert_int_equal(ck.txn_seq, 5);
	assert_int_equal(ck.next_slice, 100);
	assert_int_equal(get_counter(e, "txnSeq"), 6);
	assert_true(has_ckpt_record(e, "c1"));
	assert_int_equal(repl_ckpt_create(e, f->store, VOL, "c1", &ck),
			 -EEXIST);
	assert_int_equal(repl_ckpt_create(e, f->store, VOL, "../x", &ck),
			 -EINVAL);
	run_txns(e, 11, 20);
	set_counter(e, "nextSlice", 200);
	assert_int_equal(repl_ckpt_create(e, f->store, VOL, "c2", &ck), 0);
	assert_int_equal(ck.txn_seq, 6);
	assert_int_equal(repl_ckpt_list(f->store, VOL, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "c1");
	assert_int_equal(list[0].txn_seq, 5);
	assert_int_equal(list[0].next_slice, 100);
	assert_string_equal(list[1].name, "c2");
	assert_int_equal(list[1].next_slice, 200);
	assert_true(list[1].size > 0);
	free(list);
	assert_int_equal(repl_status(e, &st), 0);
	memcpy(gen, st.generation, sizeof(gen));
	kv_close(e);

	/* Back to c1: content of txn 10, ids and checkpoints kept. */
	plain = open_db(f, "src");
	assert_int_equal(repl_ckpt_restore(plain, f->store, VOL, "c1"), 0);
	/* (the fake chunk records read as slices: newer ones get queued) */
	g_skip_groups =
	    1u << KV_COUNTER | 1u << KV_CHECKPOINT | 1u << KV_DELSLICE;
	dump_db(plain, &got);
	expected(f, 10, &want);
	g_skip_groups = 0;
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, got.len);
	assert_int_equal(get_counter(plain, "nextInode"), 20);
	assert_int_equal(get_counter(plain, "nextSlice"), 200);
	assert_int_equal(get_counter(plain, "txnSeq"), 7);
	assert_true(has_ckpt_record(plain, "c1"));
	assert_true(has_ckpt_record(plain, "c2"));
	/* A corrupt checkpoint changes nothing. */
	snprintf(key, sizeof(key), VOL "/meta/ckpt/c2");
	flip_byte(f, key);
	dump_db(plain, &before);
	assert_int_equal(repl_ckpt_restore(plain, f->store, VOL, "c2"), -EIO);
	dump_db(plain, &got);
	assert_int_equal(got.len, before.len);
	assert_memory_equal(got.data, before.data, got.len);
	assert_int_equal(repl_ckpt_restore(plain, f->store, VOL, "nope"),
			 -ENOENT);
	kv_close(plain);

	/* The next replication starts a generation holding the swap. */
	e = wrap_db(f, "src", &c);
	assert_int_equal(repl_status(e, &st), 0);
	assert_true(strcmp(st.generation, gen) > 0);
	assert_int_equal(repl_ckpt_delete(e, f->store, VOL, "c1"), 0);
	assert_false(has_ckpt_record(e, "c1"));
	assert_int_equal(repl_ckpt_delete(e, f->store, VOL, "c1"), -ENOENT);
	assert_int_equal(repl_ckpt_list(f->store, VOL, &list, &n), 0);
	assert_int_equal(n, 1);
	free(list);
	dump_db(e, &before);
	kv_close(e);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	plain = open_db(f, "dst");
	dump_db(plain, &got);
	kv_close(plain);
	assert_int_equal(got.len, before.len);
	assert_memory_equal(got.data, before.data, got.len);
	buf_release(&want);
	buf_release(&got);
	buf_release(&before);
}

struct conc {
	struct kv_engine *e;
	int id;
	int err;
};

static void *conc_main(void *arg)
{
	struct conc *c = arg;

	for (int i = 0; i < 40 && !c->err; i++) {
		char k[32], v[32];
		struct kv_txn *t;
		int rc;

		snprintf(k, sizeof(k), "t%d-%03d", c->id, i);
		snprintf(v, sizeof(v), "v%d", i * c->id);
		do {
			rc = kv_begin(c->e, true, &t);
			if (rc < 0)
				break;
			rc = kv_put(t, KV_XATTR, k, strlen(k), v, strlen(v));
			if (rc == 0 && i % 2)
				rc = kv_incr(t, "nextInode", 1, NULL);
			if (rc == 0 && i % 5 == 4) {
				snprintf(k, sizeof(k), "t%d-%03d", c->id,
					 i - 1);
				rc = kv_del(t, KV_XATTR, k, strlen(k));
			}
			rc = rc == 0 ? kv_commit(t) : (kv_rollback(t), rc);
		} while (rc == -EAGAIN);
		if (rc == 0 && i % 10 == 9)
			rc = kv_sync(c->e);
		c->err = rc;
	}
	return NULL;
}

/* Writers in 4 threads while the shipper cuts segments every few ms. */
static void test_repl_concurrent(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(3);
	struct repl_restore_info info;
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct kv_engine *e = wrap_db(f, "src", &c), *r;
	struct conc cs[4];
	pthread_t th[4];

	for (int i = 0; i < 4; i++) {
		cs[i] = (struct conc){e, i + 1, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, conc_main, &cs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(cs[i].err, 0);
	}
	assert_int_equal(read_seq(e), 160);
	dump_db(e, &a);
	kv_close(e);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_int_equal(info.seq, 160);
	r = open_db(f, "dst");
	dump_db(r, &b);
	kv_close(r);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	assert_integrity_ok(f, "dst");
	buf_release(&a);
	buf_release(&b);
}

/* Snapshots come by themselves every snapshot_txns txns. */
static void test_repl_periodic_snapshot(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e;
	char keys[8][128];
	int64_t end = (int64_t)time(NULL) + 20;
	size_t n;

	c.snapshot_txns = 5;
	e = wrap_db(f, "src", &c);
	run_txns(e, 1, 12);
	assert_int_equal(kv_sync(e), 0);
	do {
		struct timespec ts = {0, 10 * 1000000};

		n = list_keys(f, "/snap/", keys, 8);
		nanosleep(&ts, NULL);
	} while (n < 2 && (int64_t)time(NULL) < end);
	assert_true(n >= 2);
	assert_true(strcmp(strrchr(keys[n - 1], '/') + 1, "0000000000000005") >=
		    0);
	kv_close(e);
	assert_int_equal(do_restore(f, "dst", &info), 0);
	assert_true(info.complete);
	assert_true(info.snapshot_seq >= 5);
	assert_db_is(f, "dst", 12);
}

/* No readable snapshot: restore fails and leaves nothing behind. */
static void test_repl_corrupt_snapshot(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_restore_info info;
	struct kv_engine *e = wrap_db(f, "src", &c);
	char keys[8][128], path[400];

	run_txns(e, 1, 3);
	kv_close(e);
	assert_int_equal(list_keys(f, "/snap/", keys, 8), 1);
	flip_byte(f, keys[0]);
	assert_int_equal(do_restore(f, "dst", &info), -EIO);
	snprintf(path, sizeof(path), "%s/dst.db", f->dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/dst.db.restore", f->dir);
	assert_int_equal(access(path, F_OK), -1);
}

/* A txn ships by itself within max_lag_ms (not at the next renewal). */
static void test_repl_lag_ships(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(50);
	struct kv_engine *e = wrap_db(f, "src", &c);
	struct repl_status st;
	struct timespec ts = {0, 20000000};

	run_txns(e, 1, 1);
	/* the lease is renewed every 10 s: a ship must not wait for it */
	for (int i = 0; i < 250; i++) {
		assert_int_equal(repl_status(e, &st), 0);
		if (st.shipped_seq == 1)
			break;
		nanosleep(&ts, NULL);
	}
	assert_int_equal(st.shipped_seq, 1);
	kv_close(e);
}

/* kv_sync reads the lease back: taken meanwhile means not durable. */
static void test_repl_sync_checks_lease(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct repl_holder other;
	struct repl_status st;
	struct kv_engine *e = wrap_db(f, "src", &c);

	run_txns(e, 1, 2);
	assert_int_equal(kv_sync(e), 0);
	repl_holder_init(&other);
	assert_int_equal(repl_lease_acquire(f->store, VOL, &other, true), 0);
	run_txns(e, 3, 3);
	assert_int_equal(kv_sync(e), -EROFS);
	assert_int_equal(repl_status(e, &st), 0);
	assert_true(st.lease_lost);
	kv_close(e);
	assert_int_equal(repl_lease_release(f->store, VOL, &other), 0);
}

/* A takeover skips the slice ids the previous holder may have used. */
static void test_repl_takeover_skips_ids(void **state)
{
	struct fx *f = *state;
	struct repl_conf c = test_conf(0);
	struct kv_engine *e = wrap_db(f, "src", &c);

	set_counter(e, "nextSlice", 100);
	kv_close(e);
	c.takeover = true;
	e = wrap_db(f, "src", &c);
	assert_int_equal(get_counter(e, "nextSlice"),
			 100 + REPL_TAKEOVER_SLICE_GAP);
	kv_close(e);
	c.takeover = false;
	e = wrap_db(f, "src", &c);
	assert_int_equal(get_counter(e, "nextSlice"),
			 100 + REPL_TAKEOVER_SLICE_GAP);
	kv_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	    T(test_repl_ship_restore),
	    T(test_repl_sync_waits),
	    T(test_repl_snapshot_segments),
	    T(test_repl_corrupt_segment),
	    T(test_repl_truncated_segment),
	    T(test_repl_gap),
	    T(test_repl_torn_tail),
	    T(test_repl_corrupt_tail),
	    T(test_repl_lease),
	    T(test_repl_retention),
	    T(test_repl_snapshot_fallback),
	    T(test_repl_generations),
	    T(test_repl_upload_failure),
	    T(test_repl_sigkill),
	    T(test_repl_restore_errors),
	    T(test_repl_wipe),
	    T(test_repl_checkpoint),
	    T(test_repl_lag_ships),
	    T(test_repl_sync_checks_lease),
	    T(test_repl_takeover_skips_ids),
	    T(test_repl_concurrent),
	    T(test_repl_periodic_snapshot),
	    T(test_repl_corrupt_snapshot),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
