/*
 * t_meta_xattr.c - extended attributes: flags, sizes, namespaces and
 * permissions, as Linux gives them on ext4.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "unit/meta_fixture.h"

static void test_meta_xattr_flags(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a0;
	char buf[64];
	uint64_t f;

	f = fx_file(m, ROOT, R1, "f", 0644);
	a0 = fx_get(m, f);
	fx_tick();
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, sizeof(buf)),
			 -ENODATA);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.a", "v1", 2,
				       META_XATTR_REPLACE),
			 -ENODATA);
	assert_int_equal(
		meta_setxattr(m, ROOT, f, "user.a", "v1", 2, META_XATTR_CREATE),
		0);
	assert_true(fx_get(m, f).ctime_ns > a0.ctime_ns);
	assert_int_equal(
		meta_setxattr(m, ROOT, f, "user.a", "v2", 2, META_XATTR_CREATE),
		-EEXIST);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, sizeof(buf)),
			 2);
	assert_memory_equal(buf, "v1", 2);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.a", "value2", 6,
				       META_XATTR_REPLACE),
			 0);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", NULL, 0), 6);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, 5), -ERANGE);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, 6), 6);
	assert_memory_equal(buf, "value2", 6);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.a", "x", 1, 0), 0);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.a", "x", 1, 4),
			 -EINVAL);
	/* empty values exist */
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.empty", "", 0, 0), 0);
	assert_int_equal(
		meta_getxattr(m, ROOT, f, "user.empty", buf, sizeof(buf)), 0);
	assert_int_equal(meta_removexattr(m, ROOT, f, "user.empty"), 0);
	assert_int_equal(meta_removexattr(m, ROOT, f, "user.empty"), -ENODATA);
	assert_int_equal(
		meta_getxattr(m, ROOT, f, "user.empty", buf, sizeof(buf)),
		-ENODATA);
	assert_int_equal(
		meta_getxattr(m, ROOT, 99999, "user.a", buf, sizeof(buf)),
		-ENOENT);
	assert_int_equal(meta_setxattr(m, ROOT, 99999, "user.a", "x", 1, 0),
			 -ENOENT);
}

static void test_meta_xattr_sizes(void **state)
{
	struct meta *m = FX_M(state);
	char name[300], *val;
	uint64_t f;

	f = fx_file(m, ROOT, R1, "f", 0644);
	memcpy(name, "user.", 5);
	memset(name + 5, 'n', 250);
	name[255] = '\0';
	assert_int_equal(meta_setxattr(m, ROOT, f, name, "v", 1, 0), 0);
	assert_int_equal(meta_getxattr(m, ROOT, f, name, NULL, 0), 1);
	name[255] = 'n';
	name[256] = '\0';
	assert_int_equal(meta_setxattr(m, ROOT, f, name, "v", 1, 0), -ERANGE);
	assert_int_equal(meta_getxattr(m, ROOT, f, name, NULL, 0), -ERANGE);
	assert_int_equal(meta_setxattr(m, ROOT, f, "", "v", 1, 0), -ERANGE);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.", "v", 1, 0),
			 -EINVAL);
	assert_int_equal(meta_setxattr(m, ROOT, f, "bogus.x", "v", 1, 0),
			 -EOPNOTSUPP);
	assert_int_equal(meta_setxattr(m, ROOT, f, "system.other", "v", 1, 0),
			 -EOPNOTSUPP);
	assert_int_equal(
		meta_setxattr(m, ROOT, f, "system.posix_acl_access", "v", 1, 0),
		-EINVAL);
	val = malloc(65537);
	assert_non_null(val);
	memset(val, 0xab, 65537);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.big", val, 65537, 0),
			 -E2BIG);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.big", val, 65536, 0),
			 0);
	memset(val, 0, 65537);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.big", val, 65537),
			 65536);
	assert_int_equal((unsigned char)val[65535], 0xab);
	assert_int_equal(val[65536], 0);
	free(val);
}

static void test_meta_xattr_list(void **state)
{
	struct meta *m = FX_M(state);
	char buf[256];
	uint64_t f;
	ssize_t n;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0644);
	assert_int_equal(meta_listxattr(m, ROOT, f, buf, sizeof(buf)), 0);
	assert_int_equal(meta_setxattr(m, ALICE, f, "user.b", "2", 1, 0), 0);
	assert_int_equal(meta_setxattr(m, ALICE, f, "user.a", "1", 1, 0), 0);
	assert_int_equal(meta_setxattr(m, ROOT, f, "trusted.t", "3", 1, 0), 0);
	assert_int_equal(meta_setxattr(m, ALICE, f, "security.s", "4", 1, 0),
			 0);
	n = meta_listxattr(m, ROOT, f, NULL, 0);
	assert_int_equal(n, 7 + 7 + 10 + 11);
	assert_int_equal(meta_listxattr(m, ROOT, f, buf, (size_t)n - 1),
			 -ERANGE);
	assert_int_equal(meta_listxattr(m, ROOT, f, buf, sizeof(buf)), n);
	/* sorted by name, NUL-separated */
	assert_memory_equal(buf, "security.s\0trusted.t\0user.a\0user.b\0",
			    (size_t)n);
	/* trusted.* is root's: hidden from others, not settable */
	n = meta_listxattr(m, ALICE, f, buf, sizeof(buf));
	assert_int_equal(n, 11 + 7 + 7);
	assert_memory_equal(buf, "security.s\0user.a\0user.b\0", (size_t)n);
	assert_int_equal(
		meta_getxattr(m, ALICE, f, "trusted.t", buf, sizeof(buf)),
		-ENODATA);
	assert_int_equal(meta_setxattr(m, ALICE, f, "trusted.u", "x", 1, 0),
			 -EPERM);
	assert_int_equal(meta_removexattr(m, ALICE, f, "user.b"), 0);
	assert_int_equal(meta_listxattr(m, ALICE, f, NULL, 0), 11 + 7);
}

static void test_meta_xattr_permissions(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	char buf[16];
	uint64_t d, f, s;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	f = fx_file(m, ALICE, d, "f", 0640);
	assert_int_equal(meta_setxattr(m, ALICE, f, "user.a", "1", 1, 0), 0);
	assert_int_equal(meta_getxattr(m, BOB, f, "user.a", buf, sizeof(buf)),
			 -EACCES);
	assert_int_equal(meta_setxattr(m, BOB, f, "user.a", "2", 1, 0),
			 -EACCES);
	assert_int_equal(meta_removexattr(m, BOB, f, "user.a"), -EACCES);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, sizeof(buf)),
			 1);
	/* user.* is for files and directories only */
	assert_int_equal(meta_symlink(m, ALICE, d, "l", "f", &a), 0);
	s = a.ino;
	assert_int_equal(meta_setxattr(m, ALICE, s, "user.a", "1", 1, 0),
			 -EPERM);
	assert_int_equal(meta_getxattr(m, ALICE, s, "user.a", buf, sizeof(buf)),
			 -ENODATA);
	assert_int_equal(meta_setxattr(m, ALICE, s, "security.x", "1", 1, 0),
			 0);
	/* a sticky directory: only its owner sets user.* on it */
	a.mode = 01777;
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_MODE, &a, NULL), 0);
	assert_int_equal(meta_setxattr(m, ALICE, d, "user.a", "1", 1, 0),
			 -EPERM);
	assert_int_equal(meta_setxattr(m, ROOT, d, "user.a", "1", 1, 0), 0);
	assert_int_equal(meta_getxattr(m, ALICE, d, "user.a", buf, sizeof(buf)),
			 1);
}

static void test_meta_xattr_unlink(void **state)
{
	struct meta *m = FX_M(state);
	char buf[16];
	uint64_t f, g;

	/* xattrs die with their inode and do not leak to a new one */
	f = fx_file(m, ROOT, R1, "f", 0644);
	assert_int_equal(meta_setxattr(m, ROOT, f, "user.a", "1", 1, 0), 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "f"), 0);
	g = fx_file(m, ROOT, R1, "g", 0644);
	assert_true(g != f);
	assert_int_equal(meta_getxattr(m, ROOT, f, "user.a", buf, sizeof(buf)),
			 -ENOENT);
	assert_int_equal(meta_listxattr(m, ROOT, g, buf, sizeof(buf)), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_meta_xattr_flags),  T(test_meta_xattr_sizes),
		T(test_meta_xattr_list),   T(test_meta_xattr_permissions),
		T(test_meta_xattr_unlink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
