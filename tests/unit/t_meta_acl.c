/*
 * t_meta_acl.c - POSIX ACLs (meta/acl.c): validation of the kernel's
 * xattr form, the mode following the access ACL and the ACL following
 * chmod, default ACL inheritance instead of the umask, and permission
 * checks by named users and groups through the mask.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "unit/meta_fixture.h"
#include "meta/meta_int.h"

#define ACC ACL_NAME_ACCESS
#define DEF ACL_NAME_DEFAULT

struct acl_ent {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

/* The xattr value of @n entries into @v; returns its length. */
static size_t acl_enc(unsigned char *v, const struct acl_ent *e, size_t n)
{
	memset(v, 0, 4);
	v[0] = ACL_XATTR_VERSION;
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = v + 4 + 8 * i;

		p[0] = (unsigned char)e[i].tag;
		p[1] = (unsigned char)(e[i].tag >> 8);
		p[2] = (unsigned char)e[i].perm;
		p[3] = 0;
		p[4] = (unsigned char)e[i].id;
		p[5] = (unsigned char)(e[i].id >> 8);
		p[6] = (unsigned char)(e[i].id >> 16);
		p[7] = (unsigned char)(e[i].id >> 24);
	}
	return 4 + 8 * n;
}

/* user::rw- user:1001:r-- group::--- mask::r-- other::--- */
static const struct acl_ent bob_r[] = {
	{ACL_USER_OBJ, 6, 0}, {ACL_USER, 4, 1001}, {ACL_GROUP_OBJ, 0, 0},
	{ACL_MASK, 4, 0},     {ACL_OTHER, 0, 0},
};

/* The perm of entry @tag (id @id for named ones) in ACL @v, or -1. */
static int acl_perm(const unsigned char *v, ssize_t len, uint16_t tag,
		    uint32_t id)
{
	for (ssize_t i = 4; i + 8 <= len; i += 8) {
		uint32_t eid = v[i + 4] | v[i + 5] << 8 | v[i + 6] << 16 |
			       (uint32_t)v[i + 7] << 24;

		if ((v[i] | v[i + 1] << 8) == tag &&
		    ((tag != ACL_USER && tag != ACL_GROUP) || eid == id))
			return v[i + 2];
	}
	return -1;
}

static void test_meta_acl_valid(void **state)
{
	unsigned char v[128];
	struct acl_ent e[8];
	size_t n;

	(void)state;
	n = acl_enc(v, bob_r, ARRAY_SIZE(bob_r));
	assert_int_equal(acl_valid(v, n), 0);
	assert_int_equal(acl_valid(v, n - 1), -EINVAL);
	assert_int_equal(acl_valid(v, 4), -EINVAL);
	v[0] = 1; /* version */
	assert_int_equal(acl_valid(v, n), -EINVAL);
	/* named entry without a mask */
	memcpy(e, bob_r, sizeof(bob_r));
	e[3] = e[4];
	assert_int_equal(acl_valid(v, acl_enc(v, e, 4)), -EINVAL);
	/* out of order: group before user */
	memcpy(e, bob_r, sizeof(bob_r));
	e[1] = (struct acl_ent){ACL_GROUP, 4, 7};
	e[2] = (struct acl_ent){ACL_GROUP_OBJ, 0, 0};
	assert_int_equal(acl_valid(v, acl_enc(v, e, 5)), -EINVAL);
	/* perm bits beyond rwx */
	memcpy(e, bob_r, sizeof(bob_r));
	e[0].perm = 8;
	assert_int_equal(acl_valid(v, acl_enc(v, e, 5)), -EINVAL);
	/* no other entry; an unknown tag */
	assert_int_equal(acl_valid(v, acl_enc(v, bob_r, 4)), -EINVAL);
	memcpy(e, bob_r, sizeof(bob_r));
	e[1].tag = 0x40;
	assert_int_equal(acl_valid(v, acl_enc(v, e, 5)), -EINVAL);
	/* the three base entries alone */
	e[0] = bob_r[0];
	e[1] = bob_r[2];
	e[2] = bob_r[4];
	assert_int_equal(acl_valid(v, acl_enc(v, e, 3)), 0);
}

static void test_meta_acl_mode(void **state)
{
	struct meta *m = FX_M(state);
	unsigned char v[128], got[128];
	struct acl_ent e[3] = {
		{ACL_USER_OBJ, 7, 0}, {ACL_GROUP_OBJ, 5, 0}, {ACL_OTHER, 1, 0}};
	struct meta_attr a;
	uint64_t f;
	ssize_t n;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0600);
	n = (ssize_t)acl_enc(v, bob_r, ARRAY_SIZE(bob_r));
	/* only the owner sets ACLs; anyone reads them */
	assert_int_equal(meta_setxattr(m, BOB, f, ACC, v, (size_t)n, 0),
			 -EPERM);
	assert_int_equal(meta_setxattr(m, ALICE, f, ACC, v, (size_t)n, 0), 0);
	assert_int_equal(meta_getxattr(m, BOB, f, ACC, got, sizeof(got)), n);
	assert_memory_equal(got, v, (size_t)n);
	assert_int_equal(fx_get(m, f).mode & 07777, 0640); /* mask r */
	/* default ACLs only on directories */
	assert_int_equal(meta_setxattr(m, ALICE, f, DEF, v, (size_t)n, 0),
			 -EACCES);
	/* chmod rewrites owner, mask and other */
	a.mode = 0725;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &a, NULL), 0);
	n = meta_getxattr(m, ALICE, f, ACC, got, sizeof(got));
	assert_int_equal(n, 4 + 8 * 5);
	assert_int_equal(acl_perm(got, n, ACL_USER_OBJ, 0), 7);
	assert_int_equal(acl_perm(got, n, ACL_MASK, 0), 2);
	assert_int_equal(acl_perm(got, n, ACL_GROUP_OBJ, 0), 0);
	assert_int_equal(acl_perm(got, n, ACL_USER, 1001), 4);
	assert_int_equal(acl_perm(got, n, ACL_OTHER, 0), 5);
	/* an ACL the mode says all of is not stored */
	n = (ssize_t)acl_enc(v, e, 3);
	assert_int_equal(meta_setxattr(m, ALICE, f, ACC, v, (size_t)n, 0), 0);
	assert_int_equal(fx_get(m, f).mode & 07777, 0751);
	assert_int_equal(meta_getxattr(m, ALICE, f, ACC, got, sizeof(got)),
			 -ENODATA);
}

static void test_meta_acl_access(void **state)
{
	struct meta *m = FX_M(state);
	unsigned char v[128];
	struct acl_ent e[6];
	struct meta_attr a;
	uint64_t d, f;
	size_t n;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	f = fx_file(m, ALICE, d, "f", 0600);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_READ), -EACCES);
	n = acl_enc(v, bob_r, ARRAY_SIZE(bob_r));
	assert_int_equal(meta_setxattr(m, ALICE, f, ACC, v, n, 0), 0);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_READ), 0);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_WRITE), -EACCES);
	/* the mask limits the named user */
	a.mode = 0600;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &a, NULL), 0);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_READ), -EACCES);
	/* a named group (alice's supplementary 3000) on a directory */
	memcpy(e,
	       (struct acl_ent[]){{ACL_USER_OBJ, 7, 0},
				  {ACL_GROUP_OBJ, 0, 0},
				  {ACL_GROUP, 3, 3000},
				  {ACL_MASK, 7, 0},
				  {ACL_OTHER, 0, 0}},
	       5 * sizeof(e[0]));
	d = fx_dir(m, BOB, fx_dir(m, ROOT, R1, "w", 0777), "bd", 0700);
	assert_int_equal(meta_mknod(m, ALICE, d, "x", S_IFREG | 0644, 0, &a),
			 -EACCES);
	n = acl_enc(v, e, 5);
	assert_int_equal(meta_setxattr(m, BOB, d, ACC, v, n, 0), 0);
	assert_int_equal(meta_mknod(m, ALICE, d, "x", S_IFREG | 0644, 0, &a),
			 0);
	assert_int_equal(meta_unlink(m, ALICE, d, "x"), 0);
}

static void test_meta_acl_inherit(void **state)
{
	struct meta *m = FX_M(state);
	static const struct meta_cred alice_umask = {
		1000, 1000, 1, fx_alice_groups, 077, 2};
	unsigned char v[128], got[128];
	struct meta_attr a;
	uint64_t d;
	ssize_t n;

	d = fx_dir(m, ALICE, fx_dir(m, ROOT, R1, "w", 0777), "d", 0755);
	/* no default ACL: the umask applies */
	assert_int_equal(
		meta_mknod(m, &alice_umask, d, "u", S_IFREG | 0666, 0, &a), 0);
	assert_int_equal(a.mode & 07777, 0600);
	n = (ssize_t)acl_enc(v, bob_r, ARRAY_SIZE(bob_r));
	assert_int_equal(meta_setxattr(m, ALICE, d, DEF, v, (size_t)n, 0), 0);
	/* a file: the default masked by the create mode, no umask */
	assert_int_equal(
		meta_mknod(m, &alice_umask, d, "f", S_IFREG | 0664, 0, &a), 0);
	assert_int_equal(a.mode & 07777, 0640);
	assert_int_equal(meta_access(m, BOB, a.ino, META_MAY_READ), 0);
	n = meta_getxattr(m, ROOT, a.ino, ACC, got, sizeof(got));
	assert_int_equal(n, 4 + 8 * 5);
	assert_int_equal(acl_perm(got, n, ACL_USER, 1001), 4);
	assert_int_equal(meta_getxattr(m, ROOT, a.ino, DEF, got, sizeof(got)),
			 -ENODATA);
	/* a directory inherits the default ACL as well */
	assert_int_equal(meta_mkdir(m, &alice_umask, d, "sub", 0700, &a), 0);
	assert_int_equal(a.mode & 07777, 0600); /* user::rw- of the default */
	n = meta_getxattr(m, ROOT, a.ino, DEF, got, sizeof(got));
	assert_int_equal(n, 4 + 8 * 5);
	n = meta_getxattr(m, ROOT, a.ino, ACC, got, sizeof(got));
	assert_int_equal(acl_perm(got, n, ACL_MASK, 0), 0);
	/* symlinks take none */
	assert_int_equal(meta_symlink(m, ALICE, d, "l", "f", &a), 0);
	assert_int_equal(a.mode & 07777, 0777);
}

static void test_meta_acl_off(void **state)
{
	struct meta *m = FX_M(state);
	unsigned char v[128];
	size_t n = acl_enc(v, bob_r, ARRAY_SIZE(bob_r));
	uint64_t f =
		fx_file(m, ALICE, fx_dir(m, ROOT, R1, "w", 0777), "f", 0600);

	meta_set_acl(m, false);
	assert_int_equal(meta_setxattr(m, ALICE, f, ACC, v, n, 0), -EOPNOTSUPP);
	assert_int_equal(meta_getxattr(m, ALICE, f, ACC, v, sizeof(v)),
			 -EOPNOTSUPP);
	meta_set_acl(m, true);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_meta_acl_valid),	 T(test_meta_acl_mode),
		T(test_meta_acl_access), T(test_meta_acl_inherit),
		T(test_meta_acl_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
