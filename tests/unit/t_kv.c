/*
 * t_kv.c - conformance suite for the kv.h interface, run on one engine.
 *
 * The engine is the URL in TESSERA_TEST_META; when unset, a fresh SQLite
 * file in a temp dir is used for each test.  A URL from the environment is
 * wiped before each test (redis, postgres: shared servers).  Only kv.h calls
 * are used, except the SQLite-only checks (integrity_check after a crash,
 * opening missing or garbage files), which are skipped on other engines.
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/kv.h"
#include "util/log.h"
#include "util/url.h"

struct fix {
	char dir[64];   /* temp dir of this test */
	char url[1200]; /* engine under test */
	char path[1100]; /* SQLite file when sqlite, else "" */
	bool sqlite;
	struct kv_engine *e;
};

/* ---- fixture ---- */

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void fix_url(struct fix *f)
{
	const char *env = getenv("TESSERA_TEST_META");
	struct url u;

	if (env && *env)
		snprintf(f->url, sizeof(f->url), "%s", env);
	else
		snprintf(f->url, sizeof(f->url), "sqlite3://%s/meta.db",
			 f->dir);
	f->sqlite = strncmp(f->url, "sqlite3:", 8) == 0;
	f->path[0] = '\0';
	if (f->sqlite && url_parse(f->url, &u, NULL) == 0) {
		snprintf(f->path, sizeof(f->path), "%s", u.path);
		url_release(&u);
	}
}

static int fix_setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/t_kv.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	fix_url(f);
	if (kv_open(f->url, true, &f->e) < 0 || kv_wipe(f->e) < 0) {
		kv_close(f->e);
		nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fix_teardown(void **state)
{
	struct fix *f = *state;

	kv_close(f->e);
	nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static void put1(struct kv_engine *e, int grp, const void *k, size_t kl,
		 const void *v, size_t vl)
{
	struct kv_txn *t;

	assert_int_equal(kv_begin(e, true, &t), 0);
	assert_int_equal(kv_put(t, grp, k, kl, v, vl), 0);
	assert_int_equal(kv_commit(t), 0);
}

/* Get in a fresh read-only txn; returns the rc, value in @v. */
static int get1(struct kv_engine *e, int grp, const void *k, size_t kl,
		struct buf *v)
{
	struct kv_txn *t;
	int rc;

	assert_int_equal(kv_begin(e, false, &t), 0);
	rc = kv_get(t, grp, k, kl, v);
	assert_int_equal(kv_commit(t), 0);
	return rc;
}

static void assert_val(struct kv_engine *e, int grp, const char *k,
		       const char *want)
{
	struct buf v = BUF_INIT;

	assert_int_equal(get1(e, grp, k, strlen(k), &v), 0);
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.data, want, v.len);
	buf_release(&v);
}

#define MAX_SEEN 64

/* What a scan visited, for comparison with an expected list. */
struct seen {
	int n;
	int stop_after; /* 0: never; n: return 1 after n records */
	int fail_at;    /* 0: never; n: return -EIO on the n-th record */
	unsigned char key[MAX_SEEN][16];
	size_t klen[MAX_SEEN];
	char val[MAX_SEEN][16];
};

static int seen_cb(void *arg, const void *k, size_t kl, const void *v,
		   size_t vl)
{
	struct seen *s = arg;

	if (s->n >= MAX_SEEN || kl > 16 || vl > 15)
		return -E2BIG;
	if (s->fail_at && s->n + 1 == s->fail_at)
		return -EIO;
	memcpy(s->key[s->n], k, kl);
	s->klen[s->n] = kl;
	memcpy(s->val[s->n], v, vl);
	s->val[s->n][vl] = '\0';
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 1 : 0;
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

struct bkey {
	size_t len;
	unsigned char b[8];
};

static int bkey_cmp(const void *a, const void *b)
{
	const struct bkey *x = a, *y = b;
	int c = memcmp(x->b, y->b, MIN(x->len, y->len));

	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

/* Keys with 0x00 and 0xff bytes, prefixes of each other, unsorted. */
static const struct bkey test_keys[] = {
	{ 2, { 0x01, 0xff } },
	{ 1, { 0xff } },
	{ 3, { 0x01, 0xff, 0x00 } },
	{ 1, { 0x00 } },
	{ 3, { 0x01, 0xff, 0xff } },
	{ 2, { 0x00, 0x00 } },
	{ 1, { 0x02 } },
	{ 3, { 0x01, 0xfe, 0xff } },
	{ 3, { 0xff, 0xff, 0xff } },
	{ 1, { 0x01 } },
	{ 2, { 0x01, 0x00 } },
	{ 4, { 0x01, 0xff, 0xff, 0x01 } },
	{ 1, { 0xfe } },
	{ 2, { 0x00, 0xff } },
};

/* Load test_keys into @grp (value = index as text) and noise around it. */
static void load_keys(struct kv_engine *e, int grp)
{
	struct kv_txn *t;
	char v[16];

	assert_int_equal(kv_begin(e, true, &t), 0);
	for (size_t i = 0; i < ARRAY_SIZE(test_keys); i++) {
		snprintf(v, sizeof(v), "%zu", i);
		assert_int_equal(kv_put(t, grp, test_keys[i].b,
					test_keys[i].len, v, strlen(v)),
				 0);
		/* Same keys in the neighbouring groups must never show. */
		assert_int_equal(kv_put(t, grp - 1, test_keys[i].b,
					test_keys[i].len, "x", 1),
				 0);
		assert_int_equal(kv_put(t, grp + 1, test_keys[i].b,
					test_keys[i].len, "y", 1),
				 0);
	}
	assert_int_equal(kv_commit(t), 0);
}

static bool has_prefix(const struct bkey *k, const unsigned char *p, size_t pl)
{
	return pl == 0 || (k->len >= pl && memcmp(k->b, p, pl) == 0);
}

/*
 * Scan @grp with the given bounds and compare with the model: the sorted
 * test keys that have the prefix and are >= start, at most @limit.
 */
static void check_scan(struct kv_engine *e, int grp, const void *prefix,
		       size_t plen, const void *start, size_t slen,
		       size_t limit)
{
	struct bkey sorted[ARRAY_SIZE(test_keys)];
	struct bkey st = { 0, { 0 } };
	struct seen s;
	struct kv_txn *t;
	size_t want = 0;

	memset(&s, 0, sizeof(s));
	memcpy(sorted, test_keys, sizeof(sorted));
	qsort(sorted, ARRAY_SIZE(sorted), sizeof(sorted[0]), bkey_cmp);
	if (start) {
		st.len = slen;
		memcpy(st.b, start, slen);
	}
	assert_int_equal(kv_begin(e, false, &t), 0);
	assert_int_equal(kv_scan(t, grp, prefix, plen, start, slen, limit,
				 seen_cb, &s),
			 0);
	assert_int_equal(kv_commit(t), 0);
	for (size_t i = 0; i < ARRAY_SIZE(sorted); i++) {
		if (!has_prefix(&sorted[i], prefix, plen))
			continue;
		if (start && bkey_cmp(&sorted[i], &st) < 0)
			continue;
		if (limit && want == limit)
			break;
		assert_true((int)want < s.n);
		assert_int_equal(s.klen[want], sorted[i].len);
		assert_memory_equal(s.key[want], sorted[i].b, sorted[i].len);
		want++;
	}
	assert_int_equal(s.n, (int)want);
}

/* ---- basic operations ---- */

static void test_kv_get_missing(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	assert_int_equal(get1(f->e, KV_INODE, "nope", 4, &v), -ENOENT);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_get(t, KV_INODE, "nope", 4, &v), -ENOENT);
	/* A missing key does not spoil the transaction. */
	assert_int_equal(kv_put(t, KV_INODE, "yes", 3, "1", 1), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_val(f->e, KV_INODE, "yes", "1");
	buf_release(&v);
}

static void test_kv_put_get_overwrite(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_INODE, "a", 1, "first", 5), 0);
	/* Read your own writes. */
	assert_int_equal(kv_get(t, KV_INODE, "a", 1, &v), 0);
	assert_int_equal(v.len, 5);
	assert_memory_equal(v.data, "first", 5);
	assert_int_equal(kv_put(t, KV_INODE, "a", 1, "2nd", 3), 0);
	assert_int_equal(kv_put(t, KV_DENTRY, "a", 1, "other group", 11), 0);
	assert_int_equal(kv_put(t, KV_INODE, "empty", 5, "", 0), 0);
	assert_int_equal(kv_commit(t), 0);

	assert_val(f->e, KV_INODE, "a", "2nd");
	assert_val(f->e, KV_DENTRY, "a", "other group");
	/* An empty value exists and is empty. */
	assert_int_equal(get1(f->e, KV_INODE, "empty", 5, &v), 0);
	assert_int_equal(v.len, 0);
	/* Overwrite with a shorter value leaves no tail. */
	put1(f->e, KV_DENTRY, "a", 1, "x", 1);
	assert_val(f->e, KV_DENTRY, "a", "x");
	assert_val(f->e, KV_INODE, "a", "2nd");
	buf_release(&v);
}

static void test_kv_del(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	put1(f->e, KV_XATTR, "k1", 2, "v1", 2);
	put1(f->e, KV_XATTR, "k2", 2, "v2", 2);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_del(t, KV_XATTR, "missing", 7), 0);
	assert_int_equal(kv_del(t, KV_XATTR, "k1", 2), 0);
	assert_int_equal(kv_get(t, KV_XATTR, "k1", 2, &v), -ENOENT);
	assert_int_equal(kv_del(t, KV_XATTR, "k1", 2), 0);
	/* Deleting in another group must not touch this one. */
	assert_int_equal(kv_del(t, KV_INODE, "k2", 2), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(get1(f->e, KV_XATTR, "k1", 2, &v), -ENOENT);
	assert_val(f->e, KV_XATTR, "k2", "v2");
	/* Delete then put again in one txn. */
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_del(t, KV_XATTR, "k2", 2), 0);
	assert_int_equal(kv_put(t, KV_XATTR, "k2", 2, "again", 5), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_val(f->e, KV_XATTR, "k2", "again");
	buf_release(&v);
}

static void test_kv_key_limits(void **state)
{
	struct fix *f = *state;
	unsigned char k[KV_KEY_MAX + 1];
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	memset(k, 0xab, sizeof(k));
	k[0] = 0;
	put1(f->e, KV_XATTR, k, KV_KEY_MAX, "max", 3);
	assert_int_equal(get1(f->e, KV_XATTR, k, KV_KEY_MAX, &v), 0);
	assert_int_equal(v.len, 3);
	/* A shorter key sharing the bytes is another record. */
	assert_int_equal(get1(f->e, KV_XATTR, k, KV_KEY_MAX - 1, &v),
			 -ENOENT);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_XATTR, k, KV_KEY_MAX + 1, "x", 1),
			 -EINVAL);
	kv_rollback(t);
	buf_release(&v);
}

/* ---- scan ---- */

static void test_kv_scan_order(void **state)
{
	struct fix *f = *state;
	struct kv_txn *t;
	int n = 0;

	load_keys(f->e, KV_DENTRY);
	check_scan(f->e, KV_DENTRY, NULL, 0, NULL, 0, 0);
	/* The neighbours hold the same keys; an empty group scans empty. */
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_scan(t, KV_DENTRY + 1, NULL, 0, NULL, 0, 0,
				 count_cb, &n),
			 0);
	assert_int_equal(n, (int)ARRAY_SIZE(test_keys));
	n = 0;
	assert_int_equal(kv_scan(t, KV_DENTRY + 2, NULL, 0, NULL, 0, 0,
				 count_cb, &n),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(kv_commit(t), 0);
}

static void test_kv_scan_prefix(void **state)
{
	static const unsigned char p01[] = { 0x01 };
	static const unsigned char p01ff[] = { 0x01, 0xff };
	static const unsigned char p01ffff[] = { 0x01, 0xff, 0xff };
	static const unsigned char pff[] = { 0xff };
	static const unsigned char pffff[] = { 0xff, 0xff };
	static const unsigned char p00[] = { 0x00 };
	static const unsigned char p01fe[] = { 0x01, 0xfe };
	static const unsigned char p03[] = { 0x03 };
	struct fix *f = *state;
	struct seen s;
	struct kv_txn *t;

	load_keys(f->e, KV_DENTRY);
	check_scan(f->e, KV_DENTRY, p01, 1, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, p01ff, 2, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, p01ffff, 3, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, pff, 1, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, pffff, 2, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, p00, 1, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, p01fe, 2, NULL, 0, 0);
	check_scan(f->e, KV_DENTRY, p03, 1, NULL, 0, 0);

	/* Spot-check the model itself: 01 ff covers exactly four keys. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_scan(t, KV_DENTRY, p01ff, 2, NULL, 0, 0, seen_cb,
				 &s),
			 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.klen[0], 2);
	assert_int_equal(s.klen[3], 4);
	assert_int_equal(s.key[3][3], 0x01);
}

static void test_kv_scan_start_limit(void **state)
{
	static const unsigned char p01[] = { 0x01 };
	static const unsigned char p01ff[] = { 0x01, 0xff };
	static const unsigned char s01ff00[] = { 0x01, 0xff, 0x00 };
	static const unsigned char s01ff01[] = { 0x01, 0xff, 0x01 };
	static const unsigned char s00[] = { 0x00 };
	static const unsigned char s02[] = { 0x02 };
	static const unsigned char sff[] = { 0xff, 0xff, 0xff, 0xff };
	struct fix *f = *state;

	load_keys(f->e, KV_DENTRY);
	/* Start on an existing key, between keys, before, after. */
	check_scan(f->e, KV_DENTRY, NULL, 0, s01ff00, 3, 0);
	check_scan(f->e, KV_DENTRY, NULL, 0, s01ff01, 3, 0);
	check_scan(f->e, KV_DENTRY, NULL, 0, sff, 4, 0);
	check_scan(f->e, KV_DENTRY, NULL, 0, s00, 1, 0);
	/* Start inside, below and above the prefix range. */
	check_scan(f->e, KV_DENTRY, p01ff, 2, s01ff00, 3, 0);
	check_scan(f->e, KV_DENTRY, p01ff, 2, s01ff01, 3, 0);
	check_scan(f->e, KV_DENTRY, p01ff, 2, s00, 1, 0);
	check_scan(f->e, KV_DENTRY, p01, 1, s02, 1, 0);
	/* Limits. */
	for (size_t l = 1; l <= ARRAY_SIZE(test_keys) + 1; l++) {
		check_scan(f->e, KV_DENTRY, NULL, 0, NULL, 0, l);
		check_scan(f->e, KV_DENTRY, p01, 1, NULL, 0, l);
		check_scan(f->e, KV_DENTRY, p01, 1, s01ff00, 3, l);
	}
}

static void test_kv_scan_stop_and_error(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct seen s;
	struct kv_txn *t;

	load_keys(f->e, KV_DENTRY);
	memset(&s, 0, sizeof(s));
	s.stop_after = 3;
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_scan(t, KV_DENTRY, NULL, 0, NULL, 0, 0, seen_cb,
				 &s),
			 0);
	assert_int_equal(s.n, 3);

	memset(&s, 0, sizeof(s));
	s.fail_at = 5;
	assert_int_equal(kv_scan(t, KV_DENTRY, NULL, 0, NULL, 0, 0, seen_cb,
				 &s),
			 -EIO);
	assert_int_equal(s.n, 4);
	/* The txn is still usable after the callback's error. */
	assert_int_equal(kv_put(t, KV_DENTRY, "after", 5, "ok", 2), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(kv_scan(t, KV_DENTRY, NULL, 0, NULL, 0, 0, seen_cb,
				 &s),
			 0);
	assert_int_equal(s.n, (int)ARRAY_SIZE(test_keys) + 1);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(get1(f->e, KV_DENTRY, "after", 5, &v), 0);
	buf_release(&v);
}

static void test_kv_scan_own_writes(void **state)
{
	static const unsigned char k01[] = { 0x01 };
	struct fix *f = *state;
	struct seen s;
	struct kv_txn *t;

	load_keys(f->e, KV_DENTRY);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_del(t, KV_DENTRY, k01, 1), 0);
	assert_int_equal(kv_put(t, KV_DENTRY, "\x01\x80", 2, "new", 3), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(kv_scan(t, KV_DENTRY, k01, 1, NULL, 0, 0, seen_cb,
				 &s),
			 0);
	/* 01 gone; 01 00, 01 80, 01 fe ff, 01 ff, 01 ff 00, 01 ff ff... */
	assert_int_equal(s.n, 7);
	assert_int_equal(s.klen[0], 2);
	assert_int_equal(s.key[0][1], 0x00);
	assert_int_equal(s.key[1][1], 0x80);
	assert_string_equal(s.val[1], "new");
	kv_rollback(t);
	check_scan(f->e, KV_DENTRY, k01, 1, NULL, 0, 0);
}

/* A scan callback that reads and scans inside the same txn. */
struct nested {
	struct kv_txn *t;
	int outer, inner, gets;
};

static int inner_cb(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	struct nested *n = arg;

	(void)k;
	(void)kl;
	(void)v;
	(void)vl;
	n->inner++;
	return 0;
}

static int outer_cb(void *arg, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	struct nested *n = arg;
	struct buf b = BUF_INIT;
	int rc;

	(void)v;
	(void)vl;
	n->outer++;
	rc = kv_get(n->t, KV_DENTRY, k, kl, &b);
	if (rc == 0)
		n->gets++;
	buf_release(&b);
	if (rc < 0)
		return rc;
	return kv_scan(n->t, KV_DENTRY, k, kl, NULL, 0, 0, inner_cb, n);
}

static void test_kv_scan_nested(void **state)
{
	struct fix *f = *state;
	struct nested n = { NULL, 0, 0, 0 };
	int want_inner = 0;

	load_keys(f->e, KV_DENTRY);
	for (size_t i = 0; i < ARRAY_SIZE(test_keys); i++)
		for (size_t j = 0; j < ARRAY_SIZE(test_keys); j++)
			want_inner += has_prefix(&test_keys[j], test_keys[i].b,
						 test_keys[i].len);
	assert_int_equal(kv_begin(f->e, false, &n.t), 0);
	assert_int_equal(kv_scan(n.t, KV_DENTRY, NULL, 0, NULL, 0, 0,
				 outer_cb, &n),
			 0);
	assert_int_equal(kv_commit(n.t), 0);
	assert_int_equal(n.outer, (int)ARRAY_SIZE(test_keys));
	assert_int_equal(n.gets, (int)ARRAY_SIZE(test_keys));
	assert_int_equal(n.inner, want_inner);
}

/* The callback deletes every record it visits (rmdir, chunk cleanup). */
struct deleter {
	struct kv_txn *t;
	int n, err;
	unsigned char last[16];
	size_t last_len;
};

static int delete_cb(void *arg, const void *k, size_t kl, const void *v,
		     size_t vl)
{
	struct deleter *d = arg;
	struct bkey a = { 0, { 0 } }, b = { 0, { 0 } };

	(void)v;
	(void)vl;
	if (kl > 8)
		return -E2BIG;
	a.len = d->last_len;
	memcpy(a.b, d->last, a.len);
	b.len = kl;
	memcpy(b.b, k, kl);
	if (d->n > 0 && bkey_cmp(&a, &b) >= 0)
		d->err = -EPROTO; /* out of order or visited twice */
	memcpy(d->last, k, kl);
	d->last_len = kl;
	d->n++;
	return kv_del(d->t, KV_DENTRY, k, kl);
}

static void test_kv_scan_delete_during(void **state)
{
	struct fix *f = *state;
	struct deleter d;
	int n = 0;

	load_keys(f->e, KV_DENTRY);
	memset(&d, 0, sizeof(d));
	assert_int_equal(kv_begin(f->e, true, &d.t), 0);
	assert_int_equal(kv_scan(d.t, KV_DENTRY, NULL, 0, NULL, 0, 0,
				 delete_cb, &d),
			 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.n, (int)ARRAY_SIZE(test_keys));
	assert_int_equal(kv_scan(d.t, KV_DENTRY, NULL, 0, NULL, 0, 0,
				 count_cb, &n),
			 0);
	assert_int_equal(n, 0);
	assert_int_equal(kv_commit(d.t), 0);
	assert_int_equal(kv_begin(f->e, false, &d.t), 0);
	assert_int_equal(kv_scan(d.t, KV_DENTRY, NULL, 0, NULL, 0, 0,
				 count_cb, &n),
			 0);
	assert_int_equal(kv_commit(d.t), 0);
	assert_int_equal(n, 0);
	/* The neighbouring groups are untouched. */
	assert_val(f->e, KV_DENTRY + 1, "\x02", "y");
}

/* ---- transactions ---- */

static void test_kv_rollback(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	put1(f->e, KV_INODE, "keep", 4, "old", 3);
	put1(f->e, KV_INODE, "gone?", 5, "still", 5);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_INODE, "new", 3, "n", 1), 0);
	assert_int_equal(kv_put(t, KV_INODE, "keep", 4, "changed", 7), 0);
	assert_int_equal(kv_del(t, KV_INODE, "gone?", 5), 0);
	kv_rollback(t);
	assert_int_equal(get1(f->e, KV_INODE, "new", 3, &v), -ENOENT);
	assert_val(f->e, KV_INODE, "keep", "old");
	assert_val(f->e, KV_INODE, "gone?", "still");
	/* A read-only txn may end with rollback too. */
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_get(t, KV_INODE, "keep", 4, &v), 0);
	kv_rollback(t);
	/* And the engine keeps working after both. */
	put1(f->e, KV_INODE, "new", 3, "n2", 2);
	assert_val(f->e, KV_INODE, "new", "n2");
	buf_release(&v);
}

static void test_kv_snapshot(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *r1, *r2, *r3;
	struct seen s;

	/*
	 * Redis has no snapshots: its read-only txns see the latest commits
	 * and are validated at commit instead (t_kv_remote.c tests that).
	 */
	if (strncmp(f->url, "redis:", 6) == 0)
		skip();
	put1(f->e, KV_INODE, "a", 1, "1", 1);
	/* r1 has begun only; r2 has read already. */
	assert_int_equal(kv_begin(f->e, false, &r1), 0);
	assert_int_equal(kv_begin(f->e, false, &r2), 0);
	assert_int_equal(kv_get(r2, KV_INODE, "a", 1, &v), 0);

	put1(f->e, KV_INODE, "b", 1, "2", 1);
	put1(f->e, KV_INODE, "a", 1, "changed", 7);

	assert_int_equal(kv_get(r1, KV_INODE, "b", 1, &v), -ENOENT);
	assert_int_equal(kv_get(r1, KV_INODE, "a", 1, &v), 0);
	assert_int_equal(v.len, 1);
	assert_int_equal(kv_get(r2, KV_INODE, "b", 1, &v), -ENOENT);
	memset(&s, 0, sizeof(s));
	assert_int_equal(kv_scan(r2, KV_INODE, NULL, 0, NULL, 0, 0, seen_cb,
				 &s),
			 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.val[0], "1");
	/* A txn begun after the commits sees them. */
	assert_int_equal(kv_begin(f->e, false, &r3), 0);
	assert_int_equal(kv_get(r3, KV_INODE, "b", 1, &v), 0);
	assert_int_equal(kv_commit(r3), 0);
	assert_int_equal(kv_commit(r1), 0);
	assert_int_equal(kv_commit(r2), 0);
	buf_release(&v);
}

/* A read-only txn that read @n0 records, then one write by another txn to
 * @key (NULL: a key it never read); its commit must answer @want. */
static void long_view_case(struct fix *f, size_t n0, const char *key, int want)
{
	struct kv_txn *r, *w;
	struct buf v = BUF_INIT;
	int n = 0;

	assert_int_equal(kv_begin(f->e, false, &r), 0);
	if (n0 > 2)
		assert_int_equal(kv_scan(r, KV_INODE, NULL, 0, NULL, 0, n0,
					 count_cb, &n),
				 0);
	else
		for (size_t i = 0; i < n0; i++, n++)
			assert_int_equal(kv_get(r, KV_INODE,
						i ? "k0001" : "k0000", 5, &v),
					 0);
	assert_int_equal(n, (int)n0);
	assert_int_equal(kv_begin(f->e, true, &w), 0);
	if (key)
		assert_int_equal(kv_put(w, KV_INODE, key, 5, "x", 1), 0);
	else
		assert_int_equal(kv_put(w, KV_XATTR, "other", 5, "x", 1), 0);
	assert_int_equal(kv_commit(w), 0);
	assert_int_equal(kv_commit(r), want);
	buf_release(&v);
}

/*
 * Read-only txns of any length see one state.  Redis validates at commit:
 * a short txn fails only when what it read changed; a long one (past
 * RD_RO_WATCH_MAX keys) on any write, whether to a key it read early
 * (watched one by one) or late (covered by tessera:version).  Snapshot
 * engines commit every case.
 */
static void test_kv_long_view(void **state)
{
	struct fix *f = *state;
	int redis = strncmp(f->url, "redis:", 6) == 0 ? -EAGAIN : 0;
	struct kv_txn *t;
	char k[16];

	assert_int_equal(kv_begin(f->e, true, &t), 0);
	for (int i = 0; i < 600; i++) {
		snprintf(k, sizeof(k), "k%04d", i);
		assert_int_equal(kv_put(t, KV_INODE, k, 5, "v", 1), 0);
	}
	assert_int_equal(kv_commit(t), 0);
	long_view_case(f, 2, NULL, 0);		/* short, unrelated write */
	long_view_case(f, 2, "k0001", redis);	/* short, what it read */
	long_view_case(f, 600, "k0000", redis); /* long, read early */
	long_view_case(f, 600, "k0599", redis); /* long, read late */
	long_view_case(f, 600, NULL, redis);	/* long, unrelated write */
}

struct reader_arg {
	struct kv_engine *e;
	int rc;
};

static void *uncommitted_reader(void *p)
{
	struct reader_arg *a = p;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	a->rc = kv_begin(a->e, false, &t);
	if (a->rc == 0) {
		a->rc = kv_get(t, KV_INODE, "pending", 7, &v);
		if (kv_commit(t) < 0)
			a->rc = -EPROTO;
	}
	buf_release(&v);
	return NULL;
}

static void test_kv_uncommitted_invisible(void **state)
{
	struct fix *f = *state;
	struct reader_arg a = { f->e, 0 };
	struct kv_txn *t;
	pthread_t th;

	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_INODE, "pending", 7, "x", 1), 0);
	/* A reader in another thread runs while the writer is open. */
	assert_int_equal(pthread_create(&th, NULL, uncommitted_reader, &a), 0);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, -ENOENT);
	assert_int_equal(kv_commit(t), 0);
	uncommitted_reader(&a);
	assert_int_equal(a.rc, 0);
}

static void test_kv_incr_basic(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	int64_t out = 0;

	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_incr(t, "nextInode", 5, &out), 0);
	assert_int_equal(out, 5);
	assert_int_equal(kv_incr(t, "nextInode", -7, &out), 0);
	assert_int_equal(out, -2);
	assert_int_equal(kv_incr(t, "other", 1, NULL), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(get1(f->e, KV_COUNTER, "nextInode", 9, &v), 0);
	assert_int_equal(v.len, 8);
	assert_int_equal((int64_t)get_be64((unsigned char *)v.data), -2);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_incr(t, "nextInode", 1LL << 40, &out), 0);
	assert_int_equal(out, (1LL << 40) - 2);
	kv_rollback(t);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_incr(t, "nextInode", 0, &out), 0);
	assert_int_equal(out, -2);
	assert_int_equal(kv_commit(t), 0);
	buf_release(&v);
}

#define INCR_THREADS 4
#define INCR_EACH 500

struct incr_arg {
	struct kv_engine *e;
	int err;     /* first unexpected rc */
	int retries; /* -EAGAIN seen */
	int64_t last;
};

static void *incr_worker(void *p)
{
	struct incr_arg *a = p;

	for (int i = 0; i < INCR_EACH && !a->err; i++) {
		for (;;) {
			struct kv_txn *t;
			int rc = kv_begin(a->e, true, &t);

			if (rc == 0) {
				rc = kv_incr(t, "hits", 1, &a->last);
				if (rc == 0)
					rc = kv_commit(t);
				else
					kv_rollback(t);
			}
			if (rc == 0)
				break;
			if (rc != -EAGAIN) {
				a->err = rc;
				break;
			}
			a->retries++;
		}
	}
	return NULL;
}

static void test_kv_incr_threads(void **state)
{
	struct fix *f = *state;
	struct incr_arg a[INCR_THREADS];
	pthread_t th[INCR_THREADS];
	struct kv_txn *t;
	int64_t v = 0;

	memset(a, 0, sizeof(a));
	for (int i = 0; i < INCR_THREADS; i++) {
		a[i].e = f->e;
		assert_int_equal(pthread_create(&th[i], NULL, incr_worker,
						&a[i]),
				 0);
	}
	for (int i = 0; i < INCR_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < INCR_THREADS; i++) {
		assert_int_equal(a[i].err, 0);
		assert_true(a[i].last >= INCR_EACH);
	}
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_incr(t, "hits", 0, &v), 0);
	kv_rollback(t);
	assert_int_equal(v, INCR_THREADS * INCR_EACH);
}

/*
 * Readers in several threads while one writer keeps two keys equal: every
 * snapshot must show them equal, and a reader never goes back in time.
 */
#define SNAP_READERS 6
#define SNAP_WRITES 300

struct snap_arg {
	struct kv_engine *e;
	atomic_bool *done;
	int err, bad, reads;
};

static int64_t snap_val(struct kv_txn *t, const char *k, int *err)
{
	struct buf v = BUF_INIT;
	int64_t x = -1;
	int rc = kv_get(t, KV_COUNTER, k, strlen(k), &v);

	if (rc == 0 && v.len == 8)
		x = (int64_t)get_be64((unsigned char *)v.data);
	else if (rc != -ENOENT && !*err)
		*err = rc ? rc : -EPROTO;
	buf_release(&v);
	return x;
}

static void *snap_reader(void *p)
{
	struct snap_arg *a = p;
	int64_t prev = -1;

	/* At least one read each, however late the thread starts. */
	do {
		struct kv_txn *t;
		int64_t x, y;
		int rc = kv_begin(a->e, false, &t);

		if (rc < 0) {
			a->err = rc;
			break;
		}
		x = snap_val(t, "x", &a->err);
		sched_yield();
		y = snap_val(t, "y", &a->err);
		rc = kv_commit(t);
		if (rc < 0 && rc != -EAGAIN && !a->err)
			a->err = rc;
		/* a txn that failed to commit read nothing valid */
		if (rc == -EAGAIN)
			continue;
		if (x != y || x < prev)
			a->bad++;
		prev = x;
		a->reads++;
	} while ((!atomic_load(a->done) || !a->reads) && !a->err);
	return NULL;
}

static void test_kv_snapshot_threads(void **state)
{
	struct fix *f = *state;
	struct snap_arg a[SNAP_READERS];
	pthread_t th[SNAP_READERS];
	atomic_bool done = false;
	unsigned char enc[8];

	memset(a, 0, sizeof(a));
	for (int i = 0; i < SNAP_READERS; i++) {
		a[i].e = f->e;
		a[i].done = &done;
		assert_int_equal(pthread_create(&th[i], NULL, snap_reader,
						&a[i]),
				 0);
	}
	for (int i = 1; i <= SNAP_WRITES; i++) {
		struct kv_txn *t;
		int rc;

		put_be64(enc, (uint64_t)i);
		assert_int_equal(kv_begin(f->e, true, &t), 0);
		assert_int_equal(kv_put(t, KV_COUNTER, "x", 1, enc, 8), 0);
		sched_yield();
		assert_int_equal(kv_put(t, KV_COUNTER, "y", 1, enc, 8), 0);
		rc = kv_commit(t);
		assert_true(rc == 0 || rc == -EAGAIN);
		if (rc == -EAGAIN)
			i--;
	}
	atomic_store(&done, true);
	for (int i = 0; i < SNAP_READERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SNAP_READERS; i++) {
		assert_int_equal(a[i].err, 0);
		assert_int_equal(a[i].bad, 0);
		assert_true(a[i].reads > 0);
	}
}

/* ---- persistence and sizes ---- */

static void test_kv_persist(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;

	put1(f->e, KV_SETTING, "volume", 6, "{\"name\":\"v\"}", 12);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_INODE, "lost", 4, "x", 1), 0);
	kv_rollback(t);
	assert_int_equal(kv_sync(f->e), 0);
	kv_close(f->e);
	f->e = NULL;
	assert_int_equal(kv_open(f->url, false, &f->e), 0);
	assert_val(f->e, KV_SETTING, "volume", "{\"name\":\"v\"}");
	assert_int_equal(get1(f->e, KV_INODE, "lost", 4, &v), -ENOENT);
	/* Reopening with create keeps the data too. */
	kv_close(f->e);
	f->e = NULL;
	assert_int_equal(kv_open(f->url, true, &f->e), 0);
	assert_val(f->e, KV_SETTING, "volume", "{\"name\":\"v\"}");
	buf_release(&v);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

static int size_cb(void *arg, const void *k, size_t kl, const void *v,
		   size_t vl)
{
	size_t *sizes = arg;

	(void)v;
	if (kl != 1 || ((const unsigned char *)k)[0] >= 4)
		return -EPROTO;
	sizes[((const unsigned char *)k)[0]] = vl;
	return 0;
}

static void test_kv_big_value(void **state)
{
	static const size_t lens[] = { 1 * MiB, 1 * MiB - 1, 64 * KiB, 1 };
	struct fix *f = *state;
	unsigned char *big = malloc(1 * MiB);
	struct buf v = BUF_INIT;
	size_t sizes[4] = { 0 };
	struct kv_txn *t;

	assert_non_null(big);
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	for (unsigned char i = 0; i < 4; i++) {
		fill(big, lens[i], i + 1);
		assert_int_equal(kv_put(t, KV_CHUNK, &i, 1, big, lens[i]), 0);
	}
	assert_int_equal(kv_commit(t), 0);
	for (unsigned char i = 0; i < 4; i++) {
		fill(big, lens[i], i + 1);
		assert_int_equal(get1(f->e, KV_CHUNK, &i, 1, &v), 0);
		assert_int_equal(v.len, lens[i]);
		assert_memory_equal(v.data, big, lens[i]);
	}
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, size_cb,
				 sizes),
			 0);
	assert_int_equal(kv_commit(t), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sizes[i], lens[i]);
	/* Shrink the 1 MiB value. */
	put1(f->e, KV_CHUNK, "\x00", 1, "small", 5);
	assert_int_equal(get1(f->e, KV_CHUNK, "\x00", 1, &v), 0);
	assert_int_equal(v.len, 5);
	buf_release(&v);
	free(big);
}

static void test_kv_wipe_sync(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct seen s;
	struct kv_txn *t;

	load_keys(f->e, KV_DENTRY);
	put1(f->e, KV_SETTING, "volume", 6, "{}", 2);
	assert_int_equal(kv_sync(f->e), 0);
	assert_int_equal(kv_wipe(f->e), 0);
	assert_int_equal(get1(f->e, KV_SETTING, "volume", 6, &v), -ENOENT);
	for (int g = 1; g < KV_GROUP_MAX; g++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(kv_begin(f->e, false, &t), 0);
		assert_int_equal(kv_scan(t, g, NULL, 0, NULL, 0, 0, seen_cb,
					 &s),
				 0);
		assert_int_equal(kv_commit(t), 0);
		assert_int_equal(s.n, 0);
	}
	put1(f->e, KV_SETTING, "volume", 6, "{}", 2);
	assert_val(f->e, KV_SETTING, "volume", "{}");
	assert_int_equal(kv_sync(f->e), 0);
	buf_release(&v);
}

/* ---- crashes ---- */

#define CRASH_KEYS 10000
#define CRASH_BASE 100

static void crash_key(char *k, const char *tag, int i)
{
	snprintf(k, 16, "%s%05d", tag, i);
}

/*
 * Child body: commit CRASH_BASE keys "b" in KV_CHUNK; then, in one txn,
 * overwrite and delete those and write CRASH_KEYS keys "c" in KV_INODE.
 * With @commit, commit it.  Then tell the parent (one byte on @fd) and
 * wait to be killed.  Never returns.
 */
static void crash_child(const char *url, bool commit, int fd)
{
	unsigned char val[400];
	struct kv_engine *e;
	struct kv_txn *t;
	char k[16];
	int rc;

	fill(val, sizeof(val), 7);
	if (kv_open(url, false, &e) < 0)
		_exit(2);
	if (kv_begin(e, true, &t) < 0)
		_exit(3);
	for (int i = 0; i < CRASH_BASE; i++) {
		crash_key(k, "b", i);
		if (kv_put(t, KV_CHUNK, k, strlen(k), "base", 4) < 0)
			_exit(4);
	}
	if (kv_commit(t) < 0 || kv_begin(e, true, &t) < 0)
		_exit(5);
	for (int i = 0; i < CRASH_BASE; i++) {
		crash_key(k, "b", i);
		rc = i % 2 ? kv_del(t, KV_CHUNK, k, strlen(k))
			   : kv_put(t, KV_CHUNK, k, strlen(k), "new", 3);
		if (rc < 0)
			_exit(6);
	}
	for (int i = 0; i < CRASH_KEYS; i++) {
		crash_key(k, "c", i);
		val[0] = (unsigned char)i;
		if (kv_put(t, KV_INODE, k, strlen(k), val, sizeof(val)) < 0)
			_exit(7);
	}
	if (commit && kv_commit(t) < 0)
		_exit(8);
	if (write(fd, "x", 1) != 1)
		_exit(9);
	for (;;)
		pause();
}

static void check_integrity(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void crash_run(struct fix *f, bool commit)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	int pfd[2], status, n = 0;
	char c, k[16];
	pid_t pid;

	/* No connection may cross fork: close ours first. */
	kv_close(f->e);
	f->e = NULL;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		crash_child(f->url, commit, pfd[1]);
	}
	close(pfd[1]);
	n = (int)read(pfd[0], &c, 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pfd[0]);
	assert_int_equal(n, 1); /* else the child failed: see its exit code */
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	if (f->sqlite)
		check_integrity(f->path);
	assert_int_equal(kv_open(f->url, false, &f->e), 0);
	n = 0;
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_scan(t, KV_INODE, NULL, 0, NULL, 0, 0, count_cb,
				 &n),
			 0);
	assert_int_equal(n, commit ? CRASH_KEYS : 0);
	for (int i = 0; i < CRASH_BASE; i++) {
		int rc;

		crash_key(k, "b", i);
		rc = kv_get(t, KV_CHUNK, k, strlen(k), &v);
		if (commit && i % 2) {
			assert_int_equal(rc, -ENOENT);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(v.data, commit ? "new" : "base");
	}
	crash_key(k, "c", CRASH_KEYS - 1);
	assert_int_equal(kv_get(t, KV_INODE, k, strlen(k), &v),
			 commit ? 0 : -ENOENT);
	if (commit) {
		assert_int_equal(v.len, 400);
		assert_int_equal((unsigned char)v.data[0],
				 (unsigned char)(CRASH_KEYS - 1));
	}
	assert_int_equal(kv_commit(t), 0);
	/* The volume stays writable after recovery. */
	put1(f->e, KV_INODE, "after", 5, "1", 1);
	kv_close(f->e);
	f->e = NULL;
	if (f->sqlite)
		check_integrity(f->path);
	assert_int_equal(kv_open(f->url, false, &f->e), 0);
	assert_val(f->e, KV_INODE, "after", "1");
	buf_release(&v);
}

static void test_kv_crash_uncommitted(void **state)
{
	crash_run(*state, false);
}

static void test_kv_crash_committed(void **state)
{
	crash_run(*state, true);
}

/* ---- opening (SQLite files) ---- */

static void sq_url(struct fix *f, const char *name, char *out, size_t n)
{
	snprintf(out, n, "sqlite3://%s/%s", f->dir, name);
}

static bool exists(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0;
}

static void test_kv_open_missing(void **state)
{
	struct fix *f = *state;
	struct kv_engine *e = NULL;
	char url[256], p[256];

	sq_url(f, "nope.db", url, sizeof(url));
	snprintf(p, sizeof(p), "%s/nope.db", f->dir);
	assert_int_equal(kv_open(url, false, &e), -ENOENT);
	assert_null(e);
	assert_false(exists(p));
	/* create with a missing parent directory: ENOENT, nothing made. */
	sq_url(f, "sub/dir/x.db", url, sizeof(url));
	assert_int_equal(kv_open(url, true, &e), -ENOENT);
	assert_null(e);
	snprintf(p, sizeof(p), "%s/sub", f->dir);
	assert_false(exists(p));
	/* A directory is not a database, with or without create. */
	assert_int_equal(mkdir(p, 0700), 0);
	sq_url(f, "sub", url, sizeof(url));
	assert_true(kv_open(url, false, &e) < 0);
	assert_true(kv_open(url, true, &e) < 0);
	assert_null(e);
	/* Malformed URLs. */
	assert_int_equal(kv_open("sqlite3://host/x.db", true, &e), -EINVAL);
	assert_int_equal(kv_open("sqlite3://", true, &e), -EINVAL);
	assert_null(e);
	/* create makes it; then it opens without create. */
	sq_url(f, "made.db", url, sizeof(url));
	assert_int_equal(kv_open(url, true, &e), 0);
	kv_close(e);
	e = NULL;
	assert_int_equal(kv_open(url, false, &e), 0);
	kv_close(e);
}

static void write_file(const char *p, const void *d, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, d, n), (ssize_t)n);
	close(fd);
}

static void test_kv_open_garbage(void **state)
{
	static const char text[] = "this is not a database\n";
	struct fix *f = *state;
	unsigned char junk[8192], back[8192];
	struct kv_engine *e = NULL;
	char url[256], p[256];
	sqlite3 *db;
	int fd;

	fill(junk, sizeof(junk), 99);
	snprintf(p, sizeof(p), "%s/junk.db", f->dir);
	write_file(p, junk, sizeof(junk));
	sq_url(f, "junk.db", url, sizeof(url));
	assert_true(kv_open(url, false, &e) < 0);
	/* create must not overwrite someone's file either. */
	assert_true(kv_open(url, true, &e) < 0);
	assert_null(e);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)sizeof(back));
	close(fd);
	assert_memory_equal(back, junk, sizeof(junk));

	snprintf(p, sizeof(p), "%s/text.db", f->dir);
	write_file(p, text, sizeof(text) - 1);
	sq_url(f, "text.db", url, sizeof(url));
	assert_true(kv_open(url, false, &e) < 0);
	assert_null(e);

	/* An SQLite file header followed by garbage. */
	memcpy(junk, "SQLite format 3", 16);
	snprintf(p, sizeof(p), "%s/hdr.db", f->dir);
	write_file(p, junk, sizeof(junk));
	sq_url(f, "hdr.db", url, sizeof(url));
	assert_true(kv_open(url, false, &e) < 0);
	assert_null(e);

	/* A valid SQLite database of something else. */
	snprintf(p, sizeof(p), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	sq_url(f, "other.db", url, sizeof(url));
	assert_int_equal(kv_open(url, false, &e), -EINVAL);
	assert_null(e);

	/* An empty file is an empty database: no volume, until created. */
	snprintf(p, sizeof(p), "%s/empty.db", f->dir);
	write_file(p, "", 0);
	sq_url(f, "empty.db", url, sizeof(url));
	assert_int_equal(kv_open(url, false, &e), -ENOENT);
	assert_int_equal(kv_open(url, true, &e), 0);
	kv_close(e);
}

static void sqlite_only(void **state)
{
	struct fix *f = *state;

	if (!f->sqlite)
		skip();
}

/* Another process (here: a raw connection) holds the write lock. */
static void test_kv_sqlite_busy(void **state)
{
	struct fix *f = *state;
	struct kv_engine *e = NULL;
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	char url[1300];
	sqlite3 *db;

	sqlite_only(state);
	snprintf(url, sizeof(url), "sqlite3://%s?busy_timeout=50", f->path);
	assert_int_equal(kv_open(url, false, &e), 0);
	put1(e, KV_INODE, "old", 3, "1", 1);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO kv "
					  "VALUES (3, x'6e6577', x'32')",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(kv_begin(e, true, &t), -EAGAIN);
	assert_int_equal(kv_wipe(e), -EAGAIN);
	/* Readers are not blocked and do not see the other's txn. */
	assert_val(e, KV_INODE, "old", "1");
	assert_int_equal(get1(e, KV_INODE, "new", 3, &v), -ENOENT);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_val(e, KV_INODE, "new", "2");
	put1(e, KV_INODE, "old", 3, "3", 1);
	assert_val(f->e, KV_INODE, "old", "3");
	kv_close(e);
	buf_release(&v);
}

static void test_kv_sqlite_misuse(void **state)
{
	struct fix *f = *state;
	struct kv_txn *t, *t2 = NULL;
	struct buf v = BUF_INIT;

	sqlite_only(state);
	/* A nested read-write txn in one thread fails instead of hanging. */
	assert_int_equal(kv_begin(f->e, true, &t), 0);
	assert_int_equal(kv_put(t, KV_INODE, "a", 1, "1", 1), 0);
	assert_int_equal(kv_begin(f->e, true, &t2), -EDEADLK);
	assert_null(t2);
	/* A read-only txn in the same thread is fine. */
	assert_int_equal(kv_begin(f->e, false, &t2), 0);
	assert_int_equal(kv_get(t2, KV_INODE, "a", 1, &v), -ENOENT);
	/* Writes through a read-only txn are refused. */
	assert_int_equal(kv_put(t2, KV_INODE, "b", 1, "1", 1), -EROFS);
	assert_int_equal(kv_del(t2, KV_INODE, "a", 1), -EROFS);
	assert_int_equal(kv_commit(t2), 0);
	/* Bad groups. */
	assert_int_equal(kv_put(t, 0, "a", 1, "1", 1), -EINVAL);
	assert_int_equal(kv_get(t, KV_GROUP_MAX, "a", 1, &v), -EINVAL);
	assert_int_equal(kv_commit(t), 0);
	assert_val(f->e, KV_INODE, "a", "1");
	buf_release(&v);
}

static void test_kv_sqlite_options(void **state)
{
	static const char *const bad[] = {
		"?readers=0", "?readers=x", "?busy_timeout=-1", "?nosuch=1",
		"?readers", "?readers=2&busy_timeout=1e3", "?readers=9999",
	};
	struct fix *f = *state;
	struct kv_engine *e = NULL;
	char url[1300];

	sqlite_only(state);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(url, sizeof(url), "sqlite3://%s%s", f->path, bad[i]);
		if (kv_open(url, false, &e) != -EINVAL)
			fail_msg("accepted '%s'", url);
		assert_null(e);
	}
	snprintf(url, sizeof(url), "sqlite3://%s?readers=2&busy_timeout=0",
		 f->path);
	assert_int_equal(kv_open(url, false, &e), 0);
	kv_close(e);
}

/*
 * Child body of the write-error test: a txn whose writes fail (file size
 * limit) must fail as a whole, even if SQLite rolled it back by itself
 * and later puts would otherwise autocommit.  Exit code 0 = as expected.
 */
static int write_error_child(const char *url)
{
	struct rlimit rl = { 0, RLIM_INFINITY };
	static unsigned char val[10000];
	struct kv_engine *e;
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	struct stat sb;
	char k[32], wal[1200];
	int rc = 0, i, failed_at = -1;

	signal(SIGXFSZ, SIG_IGN);
	if (kv_open(url, false, &e) < 0)
		return 10;
	for (i = 0; i < 20; i++) {
		snprintf(k, sizeof(k), "base%02d", i);
		if (kv_begin(e, true, &t) < 0 ||
		    kv_put(t, KV_CHUNK, k, strlen(k), "b", 1) < 0 ||
		    kv_commit(t) < 0)
			return 11;
	}
	snprintf(wal, sizeof(wal), "%s-wal", url + strlen("sqlite3://"));
	if (stat(wal, &sb) < 0)
		return 12;
	rl.rlim_cur = (rlim_t)sb.st_size + 64 * 1024;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return 13;
	if (kv_begin(e, true, &t) < 0)
		return 14;
	for (i = 0; i < 1000 && rc == 0; i++) {
		snprintf(k, sizeof(k), "big%04d", i);
		fill(val, sizeof(val), (unsigned)i);
		rc = kv_put(t, KV_CHUNK, k, strlen(k), val, sizeof(val));
		if (rc < 0)
			failed_at = i;
	}
	if (rc < 0) {
		/* Every later call fails too, and so does the commit. */
		if (kv_put(t, KV_CHUNK, "late", 4, "x", 1) == 0)
			return 15;
		if (kv_commit(t) == 0)
			return 16;
	} else if (kv_commit(t) == 0) {
		return 17; /* 10 MB fitted in 64 KiB? */
	}
	rl.rlim_cur = RLIM_INFINITY;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return 18;
	(void)failed_at;
	if (kv_begin(e, false, &t) < 0)
		return 19;
	if (kv_get(t, KV_CHUNK, "late", 4, &v) != -ENOENT ||
	    kv_get(t, KV_CHUNK, "big0000", 7, &v) != -ENOENT ||
	    kv_get(t, KV_CHUNK, "base19", 6, &v) != 0)
		return 20;
	kv_rollback(t);
	/* The engine recovers once space is back. */
	if (kv_begin(e, true, &t) < 0 ||
	    kv_put(t, KV_CHUNK, "after", 5, val, sizeof(val)) < 0 ||
	    kv_commit(t) < 0)
		return 21;
	kv_close(e);
	buf_release(&v);
	return 0;
}

static void test_kv_sqlite_write_error(void **state)
{
	struct fix *f = *state;
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	int status, n = 0;
	pid_t pid;

	sqlite_only(state);
	kv_close(f->e);
	f->e = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(write_error_child(f->url));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	check_integrity(f->path);
	assert_int_equal(kv_open(f->url, false, &f->e), 0);
	assert_int_equal(kv_begin(f->e, false, &t), 0);
	assert_int_equal(kv_scan(t, KV_CHUNK, NULL, 0, NULL, 0, 0, count_cb,
				 &n),
			 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(n, 21); /* 20 base keys and "after" */
	assert_int_equal(get1(f->e, KV_CHUNK, "after", 5, &v), 0);
	assert_int_equal(v.len, 10000);
	buf_release(&v);
}

/* More reader threads than pooled connections: they wait their turn. */
static void test_kv_sqlite_reader_pool(void **state)
{
	struct fix *f = *state;
	struct snap_arg a[SNAP_READERS];
	pthread_t th[SNAP_READERS];
	atomic_bool done = false;
	struct kv_engine *e = NULL;
	unsigned char enc[8];
	char url[1300];

	sqlite_only(state);
	snprintf(url, sizeof(url), "sqlite3://%s?readers=2", f->path);
	assert_int_equal(kv_open(url, false, &e), 0);
	memset(a, 0, sizeof(a));
	for (int i = 0; i < SNAP_READERS; i++) {
		a[i].e = e;
		a[i].done = &done;
		assert_int_equal(pthread_create(&th[i], NULL, snap_reader,
						&a[i]),
				 0);
	}
	for (int i = 1; i <= SNAP_WRITES / 3; i++) {
		struct kv_txn *t;

		put_be64(enc, (uint64_t)i);
		assert_int_equal(kv_begin(e, true, &t), 0);
		assert_int_equal(kv_put(t, KV_COUNTER, "x", 1, enc, 8), 0);
		assert_int_equal(kv_put(t, KV_COUNTER, "y", 1, enc, 8), 0);
		assert_int_equal(kv_commit(t), 0);
	}
	atomic_store(&done, true);
	for (int i = 0; i < SNAP_READERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SNAP_READERS; i++) {
		assert_int_equal(a[i].err, 0);
		assert_int_equal(a[i].bad, 0);
	}
	kv_close(e);
}

static void test_kv_open_missing_sq(void **state)
{
	sqlite_only(state);
	test_kv_open_missing(state);
}

static void test_kv_open_garbage_sq(void **state)
{
	sqlite_only(state);
	test_kv_open_garbage(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fix_setup, fix_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_kv_get_missing),
		T(test_kv_put_get_overwrite),
		T(test_kv_del),
		T(test_kv_key_limits),
		T(test_kv_scan_order),
		T(test_kv_scan_prefix),
		T(test_kv_scan_start_limit),
		T(test_kv_scan_stop_and_error),
		T(test_kv_scan_own_writes),
		T(test_kv_scan_nested),
		T(test_kv_scan_delete_during),
		T(test_kv_rollback),
		T(test_kv_snapshot),
		T(test_kv_long_view),
		T(test_kv_uncommitted_invisible),
		T(test_kv_incr_basic),
		T(test_kv_incr_threads),
		T(test_kv_snapshot_threads),
		T(test_kv_persist),
		T(test_kv_big_value),
		T(test_kv_wipe_sync),
		T(test_kv_crash_uncommitted),
		T(test_kv_crash_committed),
		T(test_kv_open_missing_sq),
		T(test_kv_open_garbage_sq),
		T(test_kv_sqlite_busy),
		T(test_kv_sqlite_misuse),
		T(test_kv_sqlite_options),
		T(test_kv_sqlite_reader_pool),
		T(test_kv_sqlite_write_error),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
