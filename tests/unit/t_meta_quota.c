/*
 * t_meta_quota.c - directory quotas (meta/quota.c): limits hit by creates,
 * writes, truncate, fallocate and renames, nested quotas, hard links and
 * the home rule, the trash, and check/repair of a drifted usage.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "meta/kv.h"
#include "unit/meta_fixture.h"

#define K4 4096

static struct meta_quota qget(struct meta *m, uint64_t ino)
{
	struct meta_quota q;

	assert_int_equal(meta_quota_get(m, ino, &q), 0);
	return q;
}

static void qset(struct meta *m, uint64_t ino, uint64_t space,
		 uint64_t inodes)
{
	assert_int_equal(meta_quota_set(m, ino,
					META_QUOTA_SPACE | META_QUOTA_INODES,
					space, inodes, NULL),
			 0);
}

/* Set the length of @ino (truncate). */
static int set_len(struct meta *m, uint64_t ino, uint64_t len)
{
	struct meta_attr in, out;

	memset(&in, 0, sizeof(in));
	in.length = len;
	return meta_setattr(m, NULL, ino, META_SET_SIZE, &in, &out);
}

/* Usage stored and usage counted from the tree agree. */
static void assert_exact(struct meta *m, uint64_t ino)
{
	struct meta_quota_check c;

	assert_int_equal(meta_quota_check(m, ino, false, &c), 0);
	assert_int_equal(c.q.used_space, c.real_space);
	assert_int_equal(c.q.used_inodes, c.real_inodes);
}

static void test_quota_inodes_limit(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t d = fx_dir(m, ROOT, R1, "d", 0777);
	struct meta_attr a;
	char name[16];

	fx_file(m, ROOT, d, "old", 0644);
	qset(m, d, 0, 3);
	assert_int_equal(qget(m, d).used_inodes, 1);
	fx_file(m, ROOT, d, "a", 0644);
	fx_dir(m, ROOT, d, "s", 0755);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		assert_int_equal(meta_mknod(m, ROOT, d, name, S_IFREG | 0644,
					    0, &a),
				 -EDQUOT);
	}
	assert_int_equal(meta_mkdir(m, ROOT, d, "t", 0755, &a), -EDQUOT);
	assert_int_equal(meta_symlink(m, ROOT, d, "l", "x", &a), -EDQUOT);
	/* outside the quota nothing is limited */
	fx_file(m, ROOT, R1, "free", 0644);
	assert_int_equal(qget(m, d).used_inodes, 3);
	assert_int_equal(meta_unlink(m, ROOT, d, "a"), 0);
	assert_int_equal(qget(m, d).used_inodes, 2);
	fx_file(m, ROOT, d, "b", 0644);
	assert_exact(m, d);
}

static void test_quota_space_truncate_fallocate(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t d = fx_dir(m, ROOT, R1, "d", 0777);
	uint64_t f = fx_file(m, ROOT, d, "f", 0644);

	qset(m, d, 10 * K4, 0);
	assert_int_equal(set_len(m, f, 10 * K4), 0);
	assert_int_equal(qget(m, d).used_space, 10 * K4);
	assert_int_equal(set_len(m, f, 10 * K4 + 1), -EDQUOT);
	assert_int_equal(fx_get(m, f).length, 10 * K4);
	assert_int_equal(set_len(m, f, 4 * K4), 0);
	assert_int_equal(qget(m, d).used_space, 4 * K4);
	assert_int_equal(meta_fallocate(m, NULL, f, 0, 0, 11 * K4), -EDQUOT);
	assert_int_equal(meta_fallocate(m, NULL, f, 0, 0, 10 * K4), 0);
	assert_int_equal(qget(m, d).used_space, 10 * K4);
	/* a directory counts 4 KiB: no room left */
	assert_int_equal(meta_mkdir(m, ROOT, d, "s", 0755, NULL), -EDQUOT);
	assert_exact(m, d);
}

static void test_quota_write(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t d = fx_dir(m, ROOT, R1, "d", 0777);
	uint64_t f = fx_file(m, ROOT, d, "f", 0644);
	struct meta_slice_write w;
	uint64_t id;

	qset(m, d, 8 * K4, 0);
	assert_int_equal(meta_new_slice_id(m, &id), 0);
	memset(&w, 0, sizeof(w));
	w.s.id = id;
	w.s.size = w.s.len = 8 * K4;
	assert_int_equal(meta_write(m, f, &w, 1, 8 * K4, NULL), 0);
	w.s.pos = 8 * K4;
	w.s.len = w.s.size = 1;
	assert_int_equal(meta_write(m, f, &w, 1, 8 * K4 + 1, NULL), -EDQUOT);
	assert_int_equal(fx_get(m, f).length, 8 * K4);
	assert_int_equal(qget(m, d).used_space, 8 * K4);
}

static void test_quota_nested(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t a = fx_dir(m, ROOT, R1, "a", 0777);
	uint64_t b = fx_dir(m, ROOT, a, "b", 0777);
	uint64_t c = fx_dir(m, ROOT, b, "c", 0777);

	qset(m, a, 0, 4);
	qset(m, c, 0, 10);
	assert_int_equal(qget(m, a).used_inodes, 2); /* b, c */
	fx_file(m, ROOT, c, "1", 0644);
	fx_file(m, ROOT, c, "2", 0644);
	/* the outer quota is full though the inner one is not */
	assert_int_equal(meta_mknod(m, ROOT, c, "3", S_IFREG, 0, NULL),
			 -EDQUOT);
	assert_int_equal(qget(m, c).used_inodes, 2);
	assert_int_equal(qget(m, a).used_inodes, 4);
	/* the inner one limits alone too */
	qset(m, a, 0, 0);
	qset(m, c, 0, 3);
	fx_file(m, ROOT, c, "3", 0644);
	assert_int_equal(meta_mknod(m, ROOT, c, "4", S_IFREG, 0, NULL),
			 -EDQUOT);
	fx_file(m, ROOT, b, "4", 0644);
	assert_int_equal(qget(m, a).used_inodes, 6);
	assert_exact(m, a);
	assert_exact(m, c);
}

static void test_quota_rename(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t o = fx_dir(m, ROOT, R1, "o", 0777);
	uint64_t t = fx_dir(m, ROOT, o, "t", 0777);
	uint64_t f = fx_file(m, ROOT, o, "f", 0644);
	uint64_t g = fx_file(m, ROOT, t, "g", 0644);

	assert_int_equal(set_len(m, f, 5 * K4), 0);
	assert_int_equal(set_len(m, g, 2 * K4), 0);
	qset(m, q, 2 * K4, 0);
	/* a file bigger than the room left */
	assert_int_equal(meta_rename(m, ROOT, o, "f", q, "f", 0), -EDQUOT);
	assert_int_equal(qget(m, q).used_space, 0);
	/* a tree: t (4 KiB) and g (8 KiB) do not fit, then fit */
	assert_int_equal(meta_rename(m, ROOT, o, "t", q, "t", 0), -EDQUOT);
	qset(m, q, 6 * K4, 0);
	assert_int_equal(meta_rename(m, ROOT, o, "t", q, "t", 0), 0);
	assert_int_equal(qget(m, q).used_space, 3 * K4);
	assert_int_equal(qget(m, q).used_inodes, 2);
	assert_int_equal(fx_get(m, t).parent, q);
	/* within the quota: no change, even when full */
	qset(m, q, 3 * K4, 0);
	assert_int_equal(meta_rename(m, ROOT, t, "g", q, "g", 0), 0);
	assert_int_equal(fx_get(m, g).parent, q);
	assert_int_equal(qget(m, q).used_space, 3 * K4);
	/* out again: freed */
	assert_int_equal(meta_rename(m, ROOT, q, "t", o, "t", 0), 0);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	/* replacing a file frees its usage first */
	assert_int_equal(set_len(m, f, 2 * K4), 0);
	qset(m, q, 2 * K4, 0);
	assert_int_equal(meta_rename(m, ROOT, o, "f", q, "g", 0), 0);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	assert_exact(m, q);
}

static void test_quota_exchange(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t f = fx_file(m, ROOT, q, "f", 0644);
	uint64_t g = fx_file(m, ROOT, R1, "g", 0644);

	assert_int_equal(set_len(m, f, 2 * K4), 0);
	assert_int_equal(set_len(m, g, 2 * K4), 0);
	qset(m, q, 2 * K4, 0);
	assert_int_equal(meta_rename(m, ROOT, R1, "g", q, "f",
				     META_RENAME_EXCHANGE),
			 0);
	assert_int_equal(fx_get(m, g).parent, q);
	assert_int_equal(fx_get(m, f).parent, R1);
	assert_int_equal(set_len(m, f, 3 * K4), 0);
	assert_int_equal(meta_rename(m, ROOT, R1, "g", q, "f",
				     META_RENAME_EXCHANGE),
			 -EDQUOT);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	assert_exact(m, q);
}

static void test_quota_hard_links(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t o = fx_dir(m, ROOT, R1, "o", 0777);
	uint64_t f = fx_file(m, ROOT, q, "f", 0644);

	qset(m, q, 0, 0);
	assert_int_equal(set_len(m, f, K4), 0);
	assert_int_equal(meta_link(m, ROOT, f, o, "f2", NULL), 0);
	assert_int_equal(meta_link(m, ROOT, f, o, "f3", NULL), 0);
	/* counted once, at its home */
	assert_int_equal(qget(m, q).used_inodes, 1);
	assert_int_equal(qget(m, q).used_space, K4);
	assert_exact(m, q);
	/* a write through any name charges the home */
	assert_int_equal(set_len(m, f, 2 * K4), 0);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	/* another name going: still home */
	assert_int_equal(meta_unlink(m, ROOT, o, "f3"), 0);
	assert_int_equal(qget(m, q).used_inodes, 1);
	/* the home name going: homeless, counts nowhere */
	assert_int_equal(meta_unlink(m, ROOT, q, "f"), 0);
	assert_int_equal(fx_get(m, f).parent, 0);
	assert_int_equal(qget(m, q).used_inodes, 0);
	assert_int_equal(qget(m, q).used_space, 0);
	assert_exact(m, q);
	/* a link gives it a home again, charged and checked */
	qset(m, q, 0, 0);
	assert_int_equal(meta_link(m, ROOT, f, q, "back", NULL), 0);
	assert_int_equal(fx_get(m, f).parent, q);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	assert_exact(m, q);
}

static void test_quota_trash(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t f = fx_file(m, ROOT, q, "f", 0644);
	char entry[128], path[256];

	qset(m, q, 0, 1);
	assert_int_equal(meta_unlink(m, ROOT, q, "f"), 0);
	assert_int_equal(qget(m, q).used_inodes, 0);
	fx_file(m, ROOT, q, "g", 0644);
	snprintf(entry, sizeof(entry), "%llu-%llu-%lld-f",
		 (unsigned long long)q, (unsigned long long)f,
		 (long long)(fx_get(m, f).ctime_ns / 1000000000LL));
	assert_int_equal(meta_trash_restore(m, ROOT, entry, path,
					    sizeof(path)),
			 -EDQUOT);
	assert_int_equal(meta_unlink(m, ROOT, q, "g"), 0);
	assert_int_equal(meta_trash_restore(m, ROOT, entry, path,
					    sizeof(path)),
			 0);
	assert_int_equal(qget(m, q).used_inodes, 1);
	assert_exact(m, q);
}

/* Change a quota record behind meta/'s back, as a crash of a buggy
 * writer could; check sees it, repair fixes it. */
static void test_quota_check_repair(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	struct meta_quota_check c;
	struct kv_txn *t;
	unsigned char k[8], v[32];

	fx_file(m, ROOT, q, "a", 0644);
	fx_dir(m, ROOT, q, "b", 0755);
	qset(m, q, 0, 5);
	put_be64(k, q);
	memset(v, 0, sizeof(v));
	put_be64(v + 8, 5);
	put_be64(v + 16, 123);
	put_be64(v + 24, 9);
	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_put(t, KV_QUOTA, k, 8, v, sizeof(v)), 0);
	assert_int_equal(kv_commit(t), 0);
	assert_int_equal(meta_quota_check(m, q, false, &c), 0);
	assert_false(c.fixed);
	assert_int_equal(c.q.used_inodes, 9);
	assert_int_equal(c.real_inodes, 2);
	assert_int_equal(c.real_space, K4); /* b; a is empty */
	assert_int_equal(meta_quota_check(m, q, true, &c), 0);
	assert_true(c.fixed);
	assert_int_equal(qget(m, q).used_inodes, 2);
	assert_int_equal(qget(m, q).used_space, K4);
	assert_exact(m, q);
}

static void test_quota_list_delete_errors(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t a = fx_dir(m, ROOT, R1, "a", 0777);
	uint64_t b = fx_dir(m, ROOT, a, "b", 0777);
	uint64_t f = fx_file(m, ROOT, a, "f", 0644);
	struct meta_quota *v = NULL, q;
	char path[64];
	size_t n = 0;

	assert_int_equal(meta_quota_set(m, R1, META_QUOTA_SPACE, 1, 0, NULL),
			 -EINVAL);
	assert_int_equal(meta_quota_set(m, f, META_QUOTA_SPACE, 1, 0, NULL),
			 -ENOTDIR);
	assert_int_equal(meta_quota_get(m, a, &q), -ENOENT);
	assert_int_equal(meta_quota_delete(m, a), -ENOENT);
	qset(m, a, 100 * K4, 0);
	qset(m, b, 0, 7);
	/* changing one limit keeps the other */
	assert_int_equal(meta_quota_set(m, a, META_QUOTA_INODES, 0, 9, &q), 0);
	assert_int_equal(q.space_limit, 100 * K4);
	assert_int_equal(q.inodes_limit, 9);
	assert_int_equal(meta_quota_list(m, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].ino, a);
	assert_int_equal(v[1].ino, b);
	assert_int_equal(v[1].inodes_limit, 7);
	free(v);
	assert_int_equal(meta_dir_path(m, b, path, sizeof(path)), 0);
	assert_string_equal(path, "/a/b");
	assert_int_equal(meta_quota_delete(m, b), 0);
	assert_int_equal(meta_quota_list(m, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	/* with no quota left, creates do not care */
	assert_int_equal(meta_quota_delete(m, a), 0);
	fx_file(m, ROOT, b, "x", 0644);
	/* a removed directory takes its quota along */
	qset(m, b, 0, 9);
	assert_int_equal(meta_unlink(m, ROOT, b, "x"), 0);
	assert_int_equal(meta_rmdir(m, ROOT, a, "b"), 0);
	assert_int_equal(meta_quota_list(m, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
}

static void test_quota_clone(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t s = fx_dir(m, ROOT, R1, "s", 0777);
	uint64_t f = fx_file(m, ROOT, s, "f", 0644);
	struct meta_attr out;

	fx_file(m, ROOT, s, "g", 0644);
	assert_int_equal(set_len(m, f, 3 * K4), 0);
	qset(m, q, 0, 2);
	/* s, f and g: three inodes */
	assert_int_equal(meta_clone(m, ROOT, s, q, "c", 0, &out, NULL),
			 -EDQUOT);
	qset(m, q, 7 * K4, 3);
	assert_int_equal(meta_clone(m, ROOT, s, q, "c", 0, &out, NULL), 0);
	assert_int_equal(qget(m, q).used_inodes, 3);
	assert_int_equal(qget(m, q).used_space, K4 + 3 * K4);
	assert_exact(m, q);
}

/* A tree moved into a quota's directory is charged from then on, deep
 * inside too; moved out, it is not. */
static void test_quota_moved_tree(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t q = fx_dir(m, ROOT, R1, "q", 0777);
	uint64_t t = fx_dir(m, ROOT, R1, "t", 0777);
	uint64_t u = fx_dir(m, ROOT, t, "u", 0777);
	uint64_t f = fx_file(m, ROOT, u, "f", 0644);

	qset(m, q, 10 * K4, 0);
	assert_int_equal(meta_rename(m, ROOT, R1, "t", q, "t", 0), 0);
	assert_int_equal(qget(m, q).used_space, 2 * K4);
	assert_int_equal(set_len(m, f, 8 * K4), 0);
	assert_int_equal(qget(m, q).used_space, 10 * K4);
	assert_int_equal(set_len(m, f, 8 * K4 + 1), -EDQUOT);
	assert_int_equal(meta_mkdir(m, ROOT, u, "v", 0755, NULL), -EDQUOT);
	assert_int_equal(set_len(m, f, 0), 0);
	fx_dir(m, ROOT, u, "v", 0755);
	assert_int_equal(qget(m, q).used_inodes, 4);
	assert_exact(m, q);
	/* out again: nothing of it counts, writes are free */
	assert_int_equal(meta_rename(m, ROOT, q, "t", R1, "t", 0), 0);
	assert_int_equal(qget(m, q).used_space, 0);
	assert_int_equal(qget(m, q).used_inodes, 0);
	assert_int_equal(set_len(m, f, 100 * K4), 0);
	assert_int_equal(qget(m, q).used_space, 0);
	/* a nested quota moved in brings its usage in O(1) */
	qset(m, u, 0, 0);
	assert_int_equal(meta_rename(m, ROOT, t, "u", q, "u", 0), -EDQUOT);
	assert_int_equal(set_len(m, f, K4), 0);
	assert_int_equal(meta_rename(m, ROOT, t, "u", q, "u", 0), 0);
	assert_int_equal(qget(m, q).used_space, 3 * K4); /* u, v, f */
	assert_exact(m, q);
	assert_exact(m, u);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define TT(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_trash, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_quota_inodes_limit),
	    T(test_quota_space_truncate_fallocate),
	    T(test_quota_write),
	    T(test_quota_nested),
	    T(test_quota_rename),
	    T(test_quota_exchange),
	    T(test_quota_hard_links),
	    TT(test_quota_trash),
	    T(test_quota_check_repair),
	    T(test_quota_list_delete_errors),
	    T(test_quota_clone),
	    T(test_quota_moved_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
