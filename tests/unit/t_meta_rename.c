/*
 * t_meta_rename.c - the rename matrix of meta_rename: files and
 * directories, replace, NOREPLACE, EXCHANGE, moves into the own subtree,
 * no-op renames, nlink and '..' bookkeeping, timestamps and permissions.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "unit/meta_fixture.h"

static uint64_t ino_of(struct meta *m, uint64_t dir, const char *name)
{
	struct meta_attr a;
	int rc = meta_lookup(m, ROOT, dir, name, &a);

	return rc == 0 ? a.ino : 0;
}

static void test_meta_rename_file(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr d0, f0, d1, f1;
	uint64_t d, f;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "a", 0644);
	d0 = fx_get(m, d);
	f0 = fx_get(m, f);
	fx_tick();
	assert_int_equal(meta_rename(m, ROOT, d, "a", d, "b", 0), 0);
	assert_int_equal(ino_of(m, d, "a"), 0);
	assert_int_equal(ino_of(m, d, "b"), f);
	d1 = fx_get(m, d);
	f1 = fx_get(m, f);
	assert_true(d1.mtime_ns > d0.mtime_ns);
	assert_true(d1.ctime_ns > d0.ctime_ns);
	assert_int_equal(d1.nlink, 2);
	assert_true(f1.ctime_ns > f0.ctime_ns);
	assert_true(f1.mtime_ns == f0.mtime_ns);
	assert_int_equal(f1.nlink, 1);
	assert_int_equal(meta_rename(m, ROOT, d, "a", d, "c", 0), -ENOENT);
	assert_int_equal(meta_rename(m, ROOT, f, "b", d, "c", 0), -ENOTDIR);
	assert_int_equal(meta_rename(m, ROOT, d, "b", f, "c", 0), -ENOTDIR);
	assert_int_equal(meta_rename(m, ROOT, 12345, "b", d, "c", 0), -ENOENT);
}

static void test_meta_rename_replace_file(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t d, e, f, g, h;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	e = fx_dir(m, ROOT, R1, "e", 0755);
	f = fx_file(m, ROOT, d, "f", 0644);
	g = fx_file(m, ROOT, e, "g", 0644);
	assert_int_equal(meta_rename(m, ROOT, d, "f", e, "g", 0), 0);
	assert_int_equal(ino_of(m, e, "g"), f);
	assert_int_equal(ino_of(m, d, "f"), 0);
	assert_int_equal(meta_getattr(m, g, &a), -ENOENT);
	/* a replaced file with another link only loses one link */
	h = fx_file(m, ROOT, d, "h", 0644);
	assert_int_equal(meta_link(m, ROOT, h, d, "h2", &a), 0);
	f = fx_file(m, ROOT, d, "f", 0644);
	assert_int_equal(meta_rename(m, ROOT, d, "f", d, "h", 0), 0);
	assert_int_equal(ino_of(m, d, "h"), f);
	a = fx_get(m, h);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(ino_of(m, d, "h2"), h);
	assert_int_equal(fx_get(m, d).nlink, 2);
	assert_int_equal(fx_get(m, e).nlink, 2);
}

static void test_meta_rename_dirs(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t d1, d2, x, y, f;

	d1 = fx_dir(m, ROOT, R1, "d1", 0755);
	d2 = fx_dir(m, ROOT, R1, "d2", 0755);
	x = fx_dir(m, ROOT, d1, "x", 0755);
	fx_file(m, ROOT, x, "inside", 0644);
	assert_int_equal(fx_get(m, d1).nlink, 3);
	assert_int_equal(meta_rename(m, ROOT, d1, "x", d2, "x", 0), 0);
	assert_int_equal(fx_get(m, d1).nlink, 2);
	assert_int_equal(fx_get(m, d2).nlink, 3);
	assert_int_equal(fx_get(m, x).parent, d2);
	assert_int_equal(meta_lookup(m, ROOT, x, "..", &a), 0);
	assert_int_equal(a.ino, d2);
	assert_int_equal(ino_of(m, x, "inside") != 0, 1);
	/* replace an empty directory: it goes, the link count stays right */
	y = fx_dir(m, ROOT, d1, "y", 0755);
	assert_int_equal(fx_get(m, d1).nlink, 3);
	assert_int_equal(meta_rename(m, ROOT, d2, "x", d1, "y", 0), 0);
	assert_int_equal(meta_getattr(m, y, &a), -ENOENT);
	assert_int_equal(ino_of(m, d1, "y"), x);
	assert_int_equal(fx_get(m, d1).nlink, 3);
	assert_int_equal(fx_get(m, d2).nlink, 2);
	assert_int_equal(fx_get(m, x).parent, d1);
	/* a non-empty target directory */
	fx_dir(m, ROOT, d2, "z", 0755);
	fx_file(m, ROOT, ino_of(m, d2, "z"), "zz", 0644);
	assert_int_equal(meta_rename(m, ROOT, d1, "y", d2, "z", 0), -ENOTEMPTY);
	/* type mismatches */
	f = fx_file(m, ROOT, d2, "file", 0644);
	assert_int_equal(meta_rename(m, ROOT, d1, "y", d2, "file", 0),
			 -ENOTDIR);
	assert_int_equal(meta_rename(m, ROOT, d2, "file", d1, "y", 0), -EISDIR);
	assert_int_equal(ino_of(m, d2, "file"), f);
	assert_int_equal(ino_of(m, d1, "y"), x);
	/* same-directory move of a dir keeps the parent's link count */
	assert_int_equal(meta_rename(m, ROOT, d1, "y", d1, "w", 0), 0);
	assert_int_equal(fx_get(m, d1).nlink, 3);
	assert_int_equal(fx_get(m, x).parent, d1);
}

static void test_meta_rename_flags(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t a, b;

	a = fx_file(m, ROOT, R1, "a", 0644);
	b = fx_file(m, ROOT, R1, "b", 0644);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "a", R1, "b", META_RENAME_NOREPLACE),
	    -EEXIST);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "a", R1, "b",
			META_RENAME_NOREPLACE | META_RENAME_EXCHANGE),
	    -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, R1, "a", R1, "b", 1u << 7),
			 -EINVAL);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "a", R1, "c", META_RENAME_EXCHANGE),
	    -ENOENT);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "a", R1, "c", META_RENAME_NOREPLACE), 0);
	assert_int_equal(ino_of(m, R1, "c"), a);
	assert_int_equal(ino_of(m, R1, "b"), b);
	assert_int_equal(meta_rename(m, ROOT, R1, ".", R1, "x", 0), -EBUSY);
	assert_int_equal(meta_rename(m, ROOT, R1, "c", R1, "..", 0), -EBUSY);
	assert_int_equal(meta_rename(m, ROOT, R1, "", R1, "x", 0), -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, R1, "c", R1, "x/y", 0), -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, R1, "c", R1, META_TRASH_NAME, 0),
			 -EPERM);
	assert_int_equal(meta_rename(m, ROOT, R1, "c", META_TRASH_INO, "c", 0),
			 -EPERM);
	assert_int_equal(meta_rename(m, ROOT, META_TRASH_INO, "x", R1, "c",
				     META_RENAME_EXCHANGE),
			 -EPERM);
}

static void test_meta_rename_exchange(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a0, a1;
	uint64_t p, q, f, d, g;

	p = fx_dir(m, ROOT, R1, "p", 0755);
	q = fx_dir(m, ROOT, R1, "q", 0755);
	f = fx_file(m, ROOT, p, "f", 0644);
	d = fx_dir(m, ROOT, q, "d", 0755);
	fx_file(m, ROOT, d, "child", 0644);
	a0 = fx_get(m, f);
	fx_tick();
	/* a file and a non-empty directory swap places across parents */
	assert_int_equal(
	    meta_rename(m, ROOT, p, "f", q, "d", META_RENAME_EXCHANGE), 0);
	assert_int_equal(ino_of(m, p, "f"), d);
	assert_int_equal(ino_of(m, q, "d"), f);
	assert_int_equal(fx_get(m, p).nlink, 3);
	assert_int_equal(fx_get(m, q).nlink, 2);
	assert_int_equal(fx_get(m, d).parent, p);
	assert_int_equal(meta_lookup(m, ROOT, d, "..", &a1), 0);
	assert_int_equal(a1.ino, p);
	assert_true(fx_get(m, f).ctime_ns > a0.ctime_ns);
	assert_true(fx_get(m, q).mtime_ns > a0.ctime_ns);
	assert_true(fx_get(m, p).mtime_ns > a0.ctime_ns);
	/* two files in one directory */
	g = fx_file(m, ROOT, p, "g", 0644);
	assert_int_equal(
	    meta_rename(m, ROOT, p, "f", p, "g", META_RENAME_EXCHANGE), 0);
	assert_int_equal(ino_of(m, p, "f"), g);
	assert_int_equal(ino_of(m, p, "g"), d);
	assert_int_equal(fx_get(m, p).nlink, 3);
	assert_int_equal(fx_get(m, g).nlink, 1);
}

static void test_meta_rename_subtree(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t a, b, c;

	a = fx_dir(m, ROOT, R1, "a", 0755);
	b = fx_dir(m, ROOT, a, "b", 0755);
	c = fx_dir(m, ROOT, b, "c", 0755);
	assert_int_equal(meta_rename(m, ROOT, R1, "a", b, "a", 0), -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, R1, "a", c, "x", 0), -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, R1, "a", a, "x", 0), -EINVAL);
	assert_int_equal(meta_rename(m, ROOT, a, "b", c, "b", 0), -EINVAL);
	/* the target is an ancestor of the source */
	assert_int_equal(meta_rename(m, ROOT, b, "c", R1, "a", 0), -ENOTEMPTY);
	assert_int_equal(
	    meta_rename(m, ROOT, b, "c", R1, "a", META_RENAME_EXCHANGE),
	    -EINVAL);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "a", b, "c", META_RENAME_EXCHANGE),
	    -EINVAL);
	/* nothing moved */
	assert_int_equal(ino_of(m, R1, "a"), a);
	assert_int_equal(ino_of(m, a, "b"), b);
	assert_int_equal(ino_of(m, b, "c"), c);
	/* moving up is fine */
	assert_int_equal(meta_rename(m, ROOT, b, "c", R1, "c", 0), 0);
	assert_int_equal(fx_get(m, c).parent, R1);
	assert_int_equal(fx_get(m, b).nlink, 2);
	assert_int_equal(fx_get(m, R1).nlink, 4);
}

static void test_meta_rename_noop(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t f, d;

	f = fx_file(m, ROOT, R1, "f", 0644);
	d = fx_dir(m, ROOT, R1, "d", 0755);
	assert_int_equal(meta_rename(m, ROOT, R1, "f", R1, "f", 0), 0);
	assert_int_equal(ino_of(m, R1, "f"), f);
	assert_int_equal(meta_rename(m, ROOT, R1, "d", R1, "d", 0), 0);
	assert_int_equal(ino_of(m, R1, "d"), d);
	assert_int_equal(fx_get(m, R1).nlink, 3);
	/* two names of one inode: success, both stay */
	assert_int_equal(meta_link(m, ROOT, f, d, "g", &a), 0);
	assert_int_equal(meta_rename(m, ROOT, R1, "f", d, "g", 0), 0);
	assert_int_equal(ino_of(m, R1, "f"), f);
	assert_int_equal(ino_of(m, d, "g"), f);
	assert_int_equal(fx_get(m, f).nlink, 2);
	assert_int_equal(
	    meta_rename(m, ROOT, R1, "f", d, "g", META_RENAME_EXCHANGE), 0);
	assert_int_equal(fx_get(m, f).nlink, 2);
}

static void test_meta_rename_permissions(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr in;
	uint64_t ro, rw, rw2, sub;

	ro = fx_dir(m, ROOT, R1, "ro", 0755);
	rw = fx_dir(m, ROOT, R1, "rw", 0777);
	rw2 = fx_dir(m, ROOT, R1, "rw2", 0777);
	fx_file(m, ROOT, ro, "f", 0666);
	fx_file(m, ALICE, rw, "g", 0644);
	assert_int_equal(meta_rename(m, ALICE, ro, "f", rw, "f", 0), -EACCES);
	assert_int_equal(meta_rename(m, ALICE, rw, "g", ro, "g", 0), -EACCES);
	assert_int_equal(meta_rename(m, ALICE, rw, "g", rw2, "g", 0), 0);
	/* a directory changing parent needs write permission on itself */
	sub = fx_dir(m, ROOT, rw, "sub", 0755);
	assert_int_equal(meta_rename(m, ALICE, rw, "sub", rw2, "sub", 0),
			 -EACCES);
	assert_int_equal(meta_rename(m, ALICE, rw, "sub", rw, "sub2", 0), 0);
	in.mode = 0777;
	assert_int_equal(meta_setattr(m, ROOT, sub, META_SET_MODE, &in, NULL),
			 0);
	assert_int_equal(meta_rename(m, ALICE, rw, "sub2", rw2, "sub", 0), 0);
	/* search permission on the parents */
	in.mode = 0776;
	assert_int_equal(meta_setattr(m, ROOT, rw2, META_SET_MODE, &in, NULL),
			 0);
	assert_int_equal(meta_rename(m, BOB, rw2, "g", rw, "g", 0), -EACCES);
	assert_int_equal(meta_rename(m, ROOT, rw2, "g", rw, "g", 0), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_meta_rename_file),	  T(test_meta_rename_replace_file),
	    T(test_meta_rename_dirs),	  T(test_meta_rename_flags),
	    T(test_meta_rename_exchange), T(test_meta_rename_subtree),
	    T(test_meta_rename_noop),	  T(test_meta_rename_permissions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
