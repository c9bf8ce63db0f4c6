/*
 * t_meta_ns.c - namespace rules of meta.h: format, names, lookup, creates,
 * links, unlink, rmdir, setattr, access, permissions, ids.  Errors are the
 * ones ext4 gives.  ELOOP is not tested here: meta/ never follows symlinks
 * (the kernel walks paths), so no meta call can meet a loop.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <pthread.h>

#include "unit/meta_fixture.h"

/* ---- format ---- */

static void test_meta_format_refuses_existing(void **state)
{
	struct fx *x = *state;
	struct meta_format f = x->f, g;

	assert_int_equal(meta_format(x->url, &f, false), -EEXIST);
	assert_int_equal(meta_load_format(x->m, &g), 0);
	assert_string_equal(g.uuid, x->f.uuid);
	assert_string_equal(g.name, "test");
	assert_int_equal(g.block_size, 4 * MiB);
	assert_int_equal(g.chunk_size, 64 * MiB);
	assert_string_equal(g.compress, "none");
	assert_int_equal(g.version, 1);
	assert_true(g.created_ns > 0);
}

static void test_meta_format_force_wipes(void **state)
{
	struct fx *x = *state;
	struct meta_format f = x->f;
	struct meta_attr a;

	fx_file(x->m, ROOT, R1, "old", 0644);
	meta_close(x->m);
	memset(f.uuid, 0, sizeof(f.uuid));
	snprintf(f.name, sizeof(f.name), "again");
	assert_int_equal(meta_format(x->url, &f, true), 0);
	assert_string_not_equal(f.uuid, x->f.uuid);
	assert_int_equal(meta_open(x->url, &x->m), 0);
	assert_int_equal(meta_lookup(x->m, ROOT, R1, "old", &a), -ENOENT);
	assert_int_equal(meta_load_format(x->m, &f), 0);
	assert_string_equal(f.name, "again");
}

static void test_meta_format_json(void **state)
{
	struct meta_format f, g;
	char *js;

	(void)state;
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "vol");
	snprintf(f.uuid, sizeof(f.uuid),
		 "0b5c7a9e-3f4e-4c1b-9a8e-2d6f1e0c3b7a");
	snprintf(f.storage, sizeof(f.storage), "s3://bucket/p");
	snprintf(f.compress, sizeof(f.compress), "zstd");
	snprintf(f.encrypt, sizeof(f.encrypt), "none");
	f.block_size = 1 * MiB;
	f.chunk_size = 64 * MiB;
	f.trash_days = 3;
	f.capacity = 10 * GiB;
	f.inodes = 12345;
	f.version = 1;
	f.created_ns = 1700000000123456789LL;
	js = meta_format_to_json(&f);
	assert_non_null(js);
	assert_non_null(strstr(js, "\"block_size\":1048576"));
	assert_non_null(strstr(js, "\"trash_days\":3"));
	assert_int_equal(meta_format_from_json(js, &g), 0);
	free(js);
	assert_string_equal(g.name, "vol");
	assert_string_equal(g.uuid, f.uuid);
	assert_string_equal(g.storage, "s3://bucket/p");
	assert_string_equal(g.compress, "zstd");
	assert_int_equal(g.block_size, f.block_size);
	assert_int_equal(g.capacity, f.capacity);
	assert_int_equal(g.inodes, 12345);
	assert_int_equal(g.trash_days, 3);
	assert_true(g.created_ns == f.created_ns);
	assert_int_equal(meta_format_from_json("{", &g), -EINVAL);
	assert_int_equal(meta_format_from_json("[]", &g), -EINVAL);
	assert_int_equal(meta_format_from_json("{\"name\":\"x\"}", &g),
			 -EINVAL);
	assert_int_equal(
	    meta_format_from_json("{\"name\":\"x\",\"uuid\":\"u\","
				  "\"block_size\":\"big\",\"chunk_size\":"
				  "67108864,\"version\":1}",
				  &g),
	    -EINVAL);
	assert_int_equal(meta_format_from_json(
			     "{\"name\":\"x\",\"uuid\":\"u\","
			     "\"block_size\":4194304,\"chunk_size\":"
			     "67108864,\"version\":1,\"compress\":\"rar\"}",
			     &g),
			 -EINVAL);
}

static void test_meta_format_root_and_trash(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a, t;

	a = fx_get(m, R1);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(a.mode & 07777, 0755);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(meta_lookup(m, ROOT, R1, "..", &a), 0);
	assert_int_equal(a.ino, R1);
	assert_int_equal(meta_lookup(m, ROOT, R1, META_TRASH_NAME, &t), 0);
	assert_int_equal(t.ino, META_TRASH_INO);
	assert_true(S_ISDIR(t.mode));
	assert_int_equal(meta_lookup(m, ROOT, META_TRASH_INO, "..", &a), 0);
	assert_int_equal(a.ino, R1);
	/* the name is reserved */
	assert_int_equal(meta_mkdir(m, ROOT, R1, META_TRASH_NAME, 0755, &a),
			 -EEXIST);
	assert_int_equal(meta_rmdir(m, ROOT, R1, META_TRASH_NAME), -EPERM);
	assert_int_equal(
	    meta_mknod(m, ROOT, META_TRASH_INO, "x", S_IFREG | 0644, 0, &a),
	    -EPERM);
}

static void test_meta_open_missing(void **state)
{
	struct fx *x = *state;
	struct meta *m = NULL;
	char url[200];

	snprintf(url, sizeof(url), "sqlite3://%s/none.db", x->dir);
	assert_int_equal(meta_open(url, &m), -ENOENT);
	assert_null(m);
}

/* ---- names and lookup ---- */

static void test_meta_names(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	char n255[256], n256[257];

	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(n256, 'b', 256);
	n256[256] = '\0';
	assert_int_equal(meta_mknod(m, ROOT, R1, "", S_IFREG, 0, &a), -EINVAL);
	assert_int_equal(meta_mknod(m, ROOT, R1, "a/b", S_IFREG, 0, &a),
			 -EINVAL);
	assert_int_equal(meta_mknod(m, ROOT, R1, n256, S_IFREG, 0, &a),
			 -ENAMETOOLONG);
	assert_int_equal(meta_mkdir(m, ROOT, R1, n256, 0755, &a),
			 -ENAMETOOLONG);
	assert_int_equal(meta_lookup(m, ROOT, R1, n256, &a), -ENAMETOOLONG);
	assert_int_equal(meta_unlink(m, ROOT, R1, n256), -ENAMETOOLONG);
	assert_int_equal(meta_rename(m, ROOT, R1, n256, R1, "x", 0),
			 -ENAMETOOLONG);
	assert_int_equal(meta_mknod(m, ROOT, R1, n255, S_IFREG, 0, &a), 0);
	assert_int_equal(meta_lookup(m, ROOT, R1, n255, &a), 0);
	assert_int_equal(meta_mknod(m, ROOT, R1, ".", S_IFREG, 0, &a), -EEXIST);
	assert_int_equal(meta_mkdir(m, ROOT, R1, "..", 0755, &a), -EEXIST);
	assert_int_equal(meta_symlink(m, ROOT, R1, ".", "t", &a), -EEXIST);
}

static void test_meta_lookup(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t d, f;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "f", 0644);
	assert_int_equal(meta_lookup(m, ROOT, d, "f", &a), 0);
	assert_int_equal(a.ino, f);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(meta_lookup(m, ROOT, d, "nope", &a), -ENOENT);
	assert_int_equal(meta_lookup(m, ROOT, f, "x", &a), -ENOTDIR);
	assert_int_equal(meta_lookup(m, ROOT, 999999, "x", &a), -ENOENT);
	assert_int_equal(meta_lookup(m, ROOT, d, ".", &a), 0);
	assert_int_equal(a.ino, d);
	assert_int_equal(meta_lookup(m, ROOT, d, "..", &a), 0);
	assert_int_equal(a.ino, R1);
	assert_int_equal(meta_lookup(m, ROOT, d, "", &a), -EINVAL);
	/* search permission on the parent */
	assert_int_equal(meta_lookup(m, ALICE, d, "f", &a), 0);
	a.mode = 0754;
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_MODE, &a, NULL), 0);
	assert_int_equal(meta_lookup(m, ALICE, d, "f", &a), -EACCES);
	assert_int_equal(meta_lookup(m, ROOT, d, "f", &a), 0);
	/* the trash is only found in the root */
	assert_int_equal(meta_lookup(m, ROOT, d, META_TRASH_NAME, &a), -ENOENT);
}

/* ---- creates ---- */

static void test_meta_mknod_types(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_cred um = fx_alice;
	struct meta_attr a, p0, p1;
	uint64_t d;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	p0 = fx_get(m, d);
	fx_tick();
	assert_int_equal(meta_mknod(m, ALICE, d, "r", S_IFREG | 0640, 0, &a),
			 0);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(a.mode & 07777, 0640);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 1000);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(a.length, 0);
	assert_int_equal(a.parent, d); /* its quota home */
	p1 = fx_get(m, d);
	assert_true(p1.mtime_ns > p0.mtime_ns);
	assert_true(p1.ctime_ns > p0.ctime_ns);
	assert_int_equal(p1.nlink, 2);
	assert_int_equal(meta_mknod(m, ALICE, d, "r", S_IFREG | 0640, 0, &a),
			 -EEXIST);
	assert_int_equal(meta_mknod(m, ALICE, d, "p", S_IFIFO | 0600, 7, &a),
			 0);
	assert_true(S_ISFIFO(a.mode));
	assert_int_equal(a.rdev, 0);
	assert_int_equal(meta_mknod(m, ALICE, d, "s", S_IFSOCK | 0600, 0, &a),
			 0);
	assert_true(S_ISSOCK(a.mode));
	assert_int_equal(
	    meta_mknod(m, ALICE, d, "c", S_IFCHR | 0600, 0x0103, &a), -EPERM);
	assert_int_equal(
	    meta_mknod(m, ROOT, d, "c", S_IFCHR | 0600, 0x0103, &a), 0);
	assert_true(S_ISCHR(a.mode));
	assert_int_equal(a.rdev, 0x0103);
	assert_int_equal(
	    meta_mknod(m, ROOT, d, "b", S_IFBLK | 0600, 0x0801, &a), 0);
	assert_true(S_ISBLK(a.mode));
	assert_int_equal(meta_mknod(m, ROOT, d, "z", 0644, 0, &a), 0);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(meta_mknod(m, ROOT, d, "dd", S_IFDIR | 0755, 0, &a),
			 -EPERM);
	assert_int_equal(meta_mknod(m, ROOT, d, "l", S_IFLNK | 0777, 0, &a),
			 -EINVAL);
	um.umask = 022;
	assert_int_equal(meta_mknod(m, &um, d, "u", S_IFREG | 0666, 0, &a), 0);
	assert_int_equal(a.mode & 07777, 0644);
	/* a file as parent, a missing parent */
	assert_int_equal(meta_mknod(m, ROOT, a.ino, "x", S_IFREG, 0, &a),
			 -ENOTDIR);
	assert_int_equal(meta_mknod(m, ROOT, 424242, "x", S_IFREG, 0, &a),
			 -ENOENT);
}

static void test_meta_create_permissions(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t d;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	fx_file(m, ROOT, d, "exists", 0644);
	assert_int_equal(meta_mknod(m, ALICE, d, "x", S_IFREG | 0644, 0, &a),
			 -EACCES);
	assert_int_equal(meta_mkdir(m, ALICE, d, "x", 0755, &a), -EACCES);
	assert_int_equal(meta_symlink(m, ALICE, d, "x", "t", &a), -EACCES);
	/* an existing name wins over the missing write permission */
	assert_int_equal(meta_mknod(m, ALICE, d, "exists", S_IFREG, 0, &a),
			 -EEXIST);
	/* group permission through a supplementary group */
	a.gid = 3000;
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_GID, &a, NULL), 0);
	a.mode = 0775;
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_MODE, &a, NULL), 0);
	assert_int_equal(meta_mknod(m, ALICE, d, "x", S_IFREG | 0644, 0, &a),
			 0);
	assert_int_equal(meta_mknod(m, BOB, d, "y", S_IFREG | 0644, 0, &a),
			 -EACCES);
	/* setgid directories hand down their group (and the bit to dirs) */
	a.mode = 02777;
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_MODE, &a, NULL), 0);
	assert_int_equal(meta_mknod(m, BOB, d, "y", S_IFREG | 0644, 0, &a), 0);
	assert_int_equal(a.gid, 3000);
	assert_int_equal(a.uid, 1001);
	assert_int_equal(meta_mkdir(m, BOB, d, "sub", 0755, &a), 0);
	assert_int_equal(a.gid, 3000);
	assert_true(a.mode & S_ISGID);
	/* bob is not in group 3000: his group-exec setgid file loses it */
	assert_int_equal(meta_mknod(m, BOB, d, "sg", S_IFREG | 02755, 0, &a),
			 0);
	assert_false(a.mode & S_ISGID);
	assert_int_equal(meta_mknod(m, ALICE, d, "sg2", S_IFREG | 02755, 0, &a),
			 0);
	assert_true(a.mode & S_ISGID);
}

static void test_meta_mkdir_nlink(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t d, s;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	assert_int_equal(fx_get(m, R1).nlink, 3);
	a = fx_get(m, d);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.parent, R1);
	assert_int_equal(a.uid, 0);
	assert_true(S_ISDIR(a.mode));
	s = fx_dir(m, ROOT, d, "s", 01777);
	assert_int_equal(fx_get(m, s).mode & 07777, 01777);
	fx_dir(m, ROOT, d, "t", 0700);
	fx_file(m, ROOT, d, "f", 0644);
	assert_int_equal(fx_get(m, d).nlink, 4);
	assert_int_equal(meta_mkdir(m, ROOT, d, "s", 0755, &a), -EEXIST);
	assert_int_equal(meta_rmdir(m, ROOT, d, "t"), 0);
	assert_int_equal(fx_get(m, d).nlink, 3);
	/* setuid/setgid bits are not given to directories by mkdir */
	assert_int_equal(meta_mkdir(m, ROOT, d, "u", 06755, &a), 0);
	assert_int_equal(a.mode & 07777, 0755);
}

static void test_meta_symlink_readlink(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	char buf[5000], target[4097];
	uint64_t f;

	assert_int_equal(meta_symlink(m, ALICE, R1, "l", "../some/where", &a),
			 -EACCES);
	assert_int_equal(meta_symlink(m, ROOT, R1, "l", "../some/where", &a),
			 0);
	assert_true(S_ISLNK(a.mode));
	assert_int_equal(a.mode & 0777, 0777);
	assert_int_equal(a.length, 13);
	assert_int_equal(meta_readlink(m, a.ino, buf, sizeof(buf)), 13);
	assert_string_equal(buf, "../some/where");
	assert_int_equal(meta_readlink(m, a.ino, buf, 4), 13);
	assert_string_equal(buf, "../");
	assert_int_equal(meta_symlink(m, ROOT, R1, "l", "x", &a), -EEXIST);
	assert_int_equal(meta_symlink(m, ROOT, R1, "e", "", &a), -ENOENT);
	memset(target, 'x', 4096);
	target[4096] = '\0';
	assert_int_equal(meta_symlink(m, ROOT, R1, "big", target, &a),
			 -ENAMETOOLONG);
	target[4095] = '\0';
	assert_int_equal(meta_symlink(m, ROOT, R1, "big", target, &a), 0);
	assert_int_equal(meta_readlink(m, a.ino, buf, sizeof(buf)), 4095);
	assert_memory_equal(buf, target, 4096);
	f = fx_file(m, ROOT, R1, "f", 0644);
	assert_int_equal(meta_readlink(m, f, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(meta_readlink(m, 777777, buf, sizeof(buf)), -ENOENT);
}

/* ---- link / unlink / rmdir ---- */

static void test_meta_link(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a, b;
	uint64_t d, e, f;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	e = fx_dir(m, ROOT, R1, "e", 0777);
	f = fx_file(m, ALICE, d, "f", 0644);
	a = fx_get(m, f);
	fx_tick();
	assert_int_equal(meta_link(m, ALICE, f, e, "g", &b), 0);
	assert_int_equal(b.ino, f);
	assert_int_equal(b.nlink, 2);
	assert_true(b.ctime_ns > a.ctime_ns);
	assert_true(fx_get(m, e).mtime_ns > a.ctime_ns);
	assert_int_equal(fx_get(m, e).nlink, 2); /* files do not count */
	assert_int_equal(meta_lookup(m, ROOT, e, "g", &b), 0);
	assert_int_equal(b.ino, f);
	assert_int_equal(meta_link(m, ALICE, f, e, "g", &b), -EEXIST);
	assert_int_equal(meta_link(m, ALICE, f, e, ".", &b), -EEXIST);
	assert_int_equal(meta_link(m, ROOT, d, e, "dl", &b), -EPERM);
	assert_int_equal(meta_link(m, ALICE, f, R1, "x", &b), -EACCES);
	assert_int_equal(meta_link(m, ALICE, f, f, "x", &b), -ENOTDIR);
	assert_int_equal(meta_link(m, ALICE, 555555, e, "x", &b), -ENOENT);
	assert_int_equal(meta_link(m, ALICE, f, e, "h", &b), 0);
	assert_int_equal(b.nlink, 3);
	assert_int_equal(meta_unlink(m, ALICE, d, "f"), 0);
	assert_int_equal(fx_get(m, f).nlink, 2);
	assert_int_equal(meta_unlink(m, ALICE, e, "g"), 0);
	assert_int_equal(fx_get(m, f).nlink, 1);
	assert_int_equal(meta_lookup(m, ROOT, e, "h", &b), 0);
	assert_int_equal(meta_unlink(m, ALICE, e, "h"), 0);
	assert_int_equal(meta_getattr(m, f, &b), -ENOENT);
}

static int count_ent(void *arg, const struct meta_dirent *d)
{
	(void)d;
	(*(size_t *)arg)++;
	return 0;
}

/* O_TMPFILE: unnamed, nlink 0, kept while open, linkable once or never */
static void test_meta_tmpfile(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_statfs st;
	struct meta_attr a, b;
	size_t n = 0;
	uint64_t d, f;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	assert_int_equal(meta_tmpfile(m, ALICE, R1, 0600, true, &a), -EACCES);
	assert_int_equal(meta_tmpfile(m, ALICE, 555555, 0600, true, &a),
			 -ENOENT);
	f = fx_file(m, ALICE, d, "f", 0644);
	assert_int_equal(meta_tmpfile(m, ALICE, f, 0600, true, &a), -ENOTDIR);
	assert_int_equal(meta_tmpfile(m, ALICE, d, 0640, true, &a), 0);
	assert_true(S_ISREG(a.mode));
	assert_int_equal(a.nlink, 0);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(meta_readdir(m, ROOT, d, 2, 0, count_ent, &n), 0);
	assert_int_equal(n, 1); /* only f */
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, 3);
	/* an ordinary unlinked file is not linkable */
	meta_open_file(m, f);
	assert_int_equal(meta_unlink(m, ALICE, d, "f"), 0);
	assert_int_equal(meta_link(m, ALICE, f, d, "back", &b), -ENOENT);
	assert_int_equal(meta_close_file(m, f), 0);
	/* the tmpfile is, once */
	assert_int_equal(meta_link(m, ALICE, a.ino, d, "named", &b), 0);
	assert_int_equal(b.nlink, 1);
	assert_int_equal(meta_link(m, ALICE, a.ino, d, "second", &b), 0);
	assert_int_equal(b.nlink, 2);
	assert_int_equal(meta_unlink(m, ALICE, d, "named"), 0);
	assert_int_equal(meta_unlink(m, ALICE, d, "second"), 0);
	/* still open (meta_tmpfile's hold): kept with nlink 0, not linkable */
	assert_int_equal(meta_getattr(m, a.ino, &b), 0);
	assert_int_equal(b.nlink, 0);
	assert_int_equal(meta_link(m, ALICE, a.ino, d, "again", &b), -ENOENT);
	assert_int_equal(meta_close_file(m, a.ino), 0);
	assert_int_equal(meta_getattr(m, a.ino, &b), -ENOENT);
	/* O_EXCL: never linkable; the last close deletes it */
	assert_int_equal(meta_tmpfile(m, ALICE, d, 0600, false, &a), 0);
	assert_int_equal(meta_link(m, ALICE, a.ino, d, "x", &b), -ENOENT);
	assert_int_equal(meta_close_file(m, a.ino), 0);
	assert_int_equal(meta_getattr(m, a.ino, &b), -ENOENT);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, 1);
}

static void test_meta_unlink(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr p0, p1, a;
	uint64_t d, f;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "f", 0644);
	fx_dir(m, ROOT, d, "sub", 0755);
	assert_int_equal(meta_unlink(m, ROOT, d, "nope"), -ENOENT);
	assert_int_equal(meta_unlink(m, ROOT, d, "sub"), -EISDIR);
	assert_int_equal(meta_unlink(m, ROOT, d, "."), -EISDIR);
	assert_int_equal(meta_unlink(m, ROOT, f, "x"), -ENOTDIR);
	assert_int_equal(meta_unlink(m, ALICE, d, "f"), -EACCES);
	p0 = fx_get(m, d);
	fx_tick();
	assert_int_equal(meta_unlink(m, ROOT, d, "f"), 0);
	p1 = fx_get(m, d);
	assert_true(p1.mtime_ns > p0.mtime_ns);
	assert_true(p1.ctime_ns > p0.ctime_ns);
	assert_int_equal(meta_lookup(m, ROOT, d, "f", &a), -ENOENT);
	assert_int_equal(meta_getattr(m, f, &a), -ENOENT);
	assert_int_equal(meta_unlink(m, ROOT, d, "f"), -ENOENT);
}

static void test_meta_sticky(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t t;

	t = fx_dir(m, ROOT, R1, "tmp", 01777);
	fx_file(m, ALICE, t, "a1", 0666);
	fx_file(m, ALICE, t, "a2", 0666);
	fx_file(m, ALICE, t, "a3", 0666);
	fx_file(m, BOB, t, "b1", 0666);
	assert_int_equal(meta_unlink(m, BOB, t, "a1"), -EPERM);
	assert_int_equal(meta_rename(m, BOB, t, "a1", t, "mine", 0), -EPERM);
	/* replacing someone else's file is deleting it */
	assert_int_equal(meta_rename(m, BOB, t, "b1", t, "a1", 0), -EPERM);
	assert_int_equal(meta_unlink(m, ALICE, t, "a1"), 0);
	assert_int_equal(meta_unlink(m, ROOT, t, "a2"), 0);
	/* the directory's owner may delete anything in it */
	a.uid = 1001;
	assert_int_equal(meta_setattr(m, ROOT, t, META_SET_UID, &a, NULL), 0);
	assert_int_equal(meta_unlink(m, BOB, t, "a3"), 0);
	assert_int_equal(meta_lookup(m, ROOT, t, "b1", &a), 0);
}

static void test_meta_rmdir(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a, p0;
	uint64_t d, s;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	s = fx_dir(m, ROOT, d, "s", 0755);
	fx_file(m, ROOT, s, "f", 0644);
	fx_file(m, ROOT, d, "file", 0644);
	assert_int_equal(meta_rmdir(m, ROOT, d, "s"), -ENOTEMPTY);
	assert_int_equal(meta_rmdir(m, ROOT, R1, "d"), -ENOTEMPTY);
	assert_int_equal(meta_rmdir(m, ROOT, d, "file"), -ENOTDIR);
	assert_int_equal(meta_rmdir(m, ROOT, d, "nope"), -ENOENT);
	assert_int_equal(meta_rmdir(m, ROOT, d, "."), -EINVAL);
	assert_int_equal(meta_rmdir(m, ROOT, d, ".."), -ENOTEMPTY);
	assert_int_equal(meta_unlink(m, ROOT, s, "f"), 0);
	assert_int_equal(meta_rmdir(m, ALICE, d, "s"), -EACCES);
	p0 = fx_get(m, d);
	assert_int_equal(p0.nlink, 3);
	fx_tick();
	assert_int_equal(meta_rmdir(m, ROOT, d, "s"), 0);
	a = fx_get(m, d);
	assert_int_equal(a.nlink, 2);
	assert_true(a.mtime_ns > p0.mtime_ns);
	assert_int_equal(meta_getattr(m, s, &a), -ENOENT);
	assert_int_equal(meta_mknod(m, ROOT, s, "x", S_IFREG, 0, &a), -ENOENT);
}

/* ---- setattr / access ---- */

static void test_meta_chmod_chown(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr in, out, a0;
	uint64_t f;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0644);
	a0 = fx_get(m, f);
	fx_tick();
	in.mode = 0600;
	assert_int_equal(meta_setattr(m, BOB, f, META_SET_MODE, &in, &out),
			 -EPERM);
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &in, &out),
			 0);
	assert_int_equal(out.mode, S_IFREG | 0600);
	assert_true(out.ctime_ns > a0.ctime_ns);
	assert_true(out.mtime_ns == a0.mtime_ns);
	/* chown: only root gives a file away */
	in.uid = 1001;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_UID, &in, &out),
			 -EPERM);
	assert_int_equal(meta_setattr(m, BOB, f, META_SET_UID, &in, &out),
			 -EPERM);
	in.uid = 1000;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_UID, &in, &out), 0);
	/* chgrp to a group the owner is in, not to others */
	in.gid = 3000;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_GID, &in, &out), 0);
	assert_int_equal(out.gid, 3000);
	in.gid = 1001;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_GID, &in, &out),
			 -EPERM);
	assert_int_equal(meta_setattr(m, BOB, f, META_SET_GID, &in, &out),
			 -EPERM);
	/* chmod g+s by an owner outside the group drops S_ISGID */
	in.gid = 1001;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_GID, &in, &out), 0);
	in.mode = 02755;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &in, &out),
			 0);
	assert_int_equal(out.mode & 07777, 0755);
	in.mode = 06755;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_MODE, &in, &out), 0);
	assert_int_equal(out.mode & 07777, 06755);
	/* chown clears setuid and group-exec setgid, even by root */
	in.uid = 1001;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_UID, &in, &out), 0);
	assert_int_equal(out.uid, 1001);
	assert_int_equal(out.mode & 07777, 0755);
	assert_int_equal(
	    meta_setattr(m, ROOT, 999999, META_SET_MODE, &in, &out), -ENOENT);
}

static void test_meta_utimes(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr in, out, a0;
	uint64_t f;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0666);
	a0 = fx_get(m, f);
	in.atime_ns = 1000000000LL;
	in.mtime_ns = 2000000000LL;
	assert_int_equal(
	    meta_setattr(m, BOB, f, META_SET_ATIME | META_SET_MTIME, &in, &out),
	    -EPERM);
	fx_tick();
	assert_int_equal(meta_setattr(m, ALICE, f,
				      META_SET_ATIME | META_SET_MTIME, &in,
				      &out),
			 0);
	assert_true(out.atime_ns == 1000000000LL);
	assert_true(out.mtime_ns == 2000000000LL);
	assert_true(out.ctime_ns > a0.ctime_ns);
	/* "now" needs only write permission (the file is 0666) */
	assert_int_equal(meta_setattr(m, BOB, f,
				      META_SET_ATIME | META_SET_ATIME_NOW |
					  META_SET_MTIME | META_SET_MTIME_NOW,
				      &in, &out),
			 0);
	assert_true(out.mtime_ns > a0.ctime_ns);
	assert_true(out.atime_ns > a0.ctime_ns);
	in.mode = 0644;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &in, &out),
			 0);
	assert_int_equal(meta_setattr(m, BOB, f, META_SET_MTIME_NOW, &in, &out),
			 -EACCES);
	assert_int_equal(
	    meta_setattr(m, ALICE, f, META_SET_MTIME_NOW, &in, &out), 0);
	in.ctime_ns = 5;
	assert_int_equal(meta_setattr(m, NULL, f, META_SET_CTIME, &in, &out),
			 0);
	assert_true(fx_get(m, f).ctime_ns == 5);
}

static void test_meta_setattr_size_rules(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr in, out;
	uint64_t d, f, p;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	f = fx_file(m, ALICE, d, "f", 0644);
	assert_int_equal(meta_mknod(m, ALICE, d, "p", S_IFIFO | 0666, 0, &out),
			 0);
	p = out.ino;
	in.length = 100;
	assert_int_equal(meta_setattr(m, BOB, f, META_SET_SIZE, &in, &out),
			 -EACCES);
	assert_int_equal(meta_setattr(m, ROOT, d, META_SET_SIZE, &in, &out),
			 -EISDIR);
	assert_int_equal(meta_setattr(m, ROOT, p, META_SET_SIZE, &in, &out),
			 -EINVAL);
	in.length = 1ULL << 62;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_SIZE, &in, &out),
			 -EFBIG);
	in.length = 100;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_SIZE, &in, &out),
			 0);
	assert_int_equal(out.length, 100);
	/* a non-root size change drops setuid */
	in.mode = 04755;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_MODE, &in, &out),
			 0);
	in.length = 10;
	assert_int_equal(meta_setattr(m, ALICE, f, META_SET_SIZE, &in, &out),
			 0);
	assert_int_equal(out.mode & 07777, 0755);
}

static void test_meta_access(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr in;
	uint64_t f;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0640);
	in.gid = 3000;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_GID, &in, NULL), 0);
	assert_int_equal(
	    meta_access(m, ALICE, f, META_MAY_READ | META_MAY_WRITE), 0);
	assert_int_equal(meta_access(m, ALICE, f, META_MAY_EXEC), -EACCES);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_READ), -EACCES);
	assert_int_equal(meta_access(m, BOB, f, 0), 0);
	assert_int_equal(
	    meta_access(m, ROOT, f, META_MAY_READ | META_MAY_WRITE), 0);
	/* root executes only what has some x bit */
	assert_int_equal(meta_access(m, ROOT, f, META_MAY_EXEC), -EACCES);
	in.mode = 0641;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_MODE, &in, NULL), 0);
	assert_int_equal(meta_access(m, ROOT, f, META_MAY_EXEC), 0);
	assert_int_equal(meta_access(m, BOB, f, META_MAY_EXEC), 0);
	assert_int_equal(meta_access(m, ALICE, f, META_MAY_EXEC), -EACCES);
	/* group members get the group bits, not the other bits */
	{
		uint32_t g[] = {5, 3000};
		struct meta_cred c = {2000, 2000, 2, g, 0, 9};

		assert_int_equal(meta_access(m, &c, f, META_MAY_READ), 0);
		assert_int_equal(meta_access(m, &c, f, META_MAY_EXEC), -EACCES);
	}
	assert_int_equal(meta_access(m, ROOT, 31337, META_MAY_READ), -ENOENT);
	/* directories: root may search even without x bits */
	in.mode = 0600;
	assert_int_equal(meta_setattr(m, ROOT, R1, META_SET_MODE, &in, NULL),
			 0);
	assert_int_equal(meta_access(m, ROOT, R1, META_MAY_EXEC), 0);
}

/* ---- ids ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_meta_ids_unique(void **state)
{
	struct fx *x = *state;
	enum { N = 3000 };
	uint64_t *ids = calloc(2 * N, sizeof(*ids));
	char name[32];

	assert_non_null(ids);
	for (int i = 0; i < N / 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ids[i] = fx_file(x->m, ROOT, R1, name, 0644);
		assert_true(ids[i] > META_TRASH_INO);
	}
	/* a reopened volume never hands out an id twice */
	meta_close(x->m);
	assert_int_equal(meta_open(x->url, &x->m), 0);
	for (int i = N / 3; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ids[i] = fx_file(x->m, ROOT, R1, name, 0644);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(meta_new_slice_id(x->m, &ids[N + i]), 0);
	meta_close(x->m);
	assert_int_equal(meta_open(x->url, &x->m), 0);
	assert_int_equal(meta_new_slice_id(x->m, &ids[N]), 0);
	assert_true(ids[N] > ids[2 * N - 1]);
	assert_true(ids[N + 1] > 0);
	qsort(ids, N, sizeof(*ids), cmp_u64);
	qsort(ids + N, N, sizeof(*ids), cmp_u64);
	for (int i = 1; i < N; i++) {
		assert_true(ids[i] != ids[i - 1]);
		assert_true(ids[N + i] != ids[N + i - 1]);
	}
	free(ids);
}

/* ---- threads ---- */

#define TH_N 4
#define TH_FILES 250

struct th_arg {
	struct meta *m;
	int id;
	uint64_t d, e;
	uint64_t inos[TH_FILES];
	uint64_t slices[2 * TH_FILES];
	int rc;
};

static void *th_main(void *p)
{
	struct th_arg *a = p;
	struct meta_attr at;
	char name[32];

	for (int i = 0; i < TH_FILES && a->rc == 0; i++) {
		snprintf(name, sizeof(name), "t%d_%d", a->id, i);
		a->rc =
		    meta_mknod(a->m, ALICE, a->d, name, S_IFREG | 0644, 0, &at);
		a->inos[i] = at.ino;
		if (a->rc == 0 && i % 2)
			a->rc =
			    meta_rename(a->m, ALICE, a->d, name, a->e, name, 0);
		if (a->rc == 0)
			a->rc = meta_new_slice_id(a->m, &a->slices[2 * i]);
		if (a->rc == 0)
			a->rc = meta_new_slice_id(a->m, &a->slices[2 * i + 1]);
	}
	return NULL;
}

static void test_meta_threads(void **state)
{
	struct meta *m = FX_M(state);
	struct th_arg *a = calloc(TH_N, sizeof(*a));
	uint64_t *all = calloc(TH_N * 3 * TH_FILES, sizeof(*all));
	pthread_t th[TH_N];
	struct meta_statfs st;
	uint64_t d, e;
	size_t nd = 0, ne = 0, k = 0;

	assert_non_null(a);
	assert_non_null(all);
	d = fx_dir(m, ROOT, R1, "d", 0777);
	e = fx_dir(m, ROOT, R1, "e", 0777);
	for (int i = 0; i < TH_N; i++) {
		a[i].m = m;
		a[i].id = i;
		a[i].d = d;
		a[i].e = e;
		assert_int_equal(pthread_create(&th[i], NULL, th_main, &a[i]),
				 0);
	}
	for (int i = 0; i < TH_N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].rc, 0);
	}
	assert_int_equal(meta_readdir(m, ROOT, d, 2, 0, count_ent, &nd), 0);
	assert_int_equal(meta_readdir(m, ROOT, e, 2, 0, count_ent, &ne), 0);
	assert_int_equal(nd, TH_N * TH_FILES / 2);
	assert_int_equal(ne, TH_N * TH_FILES / 2);
	assert_int_equal(fx_get(m, d).nlink, 2);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, TH_N * TH_FILES + 2);
	/* inode numbers and slice ids never repeat, across threads too */
	for (int i = 0; i < TH_N; i++) {
		memcpy(all + k, a[i].inos, sizeof(a[i].inos));
		k += TH_FILES;
	}
	qsort(all, k, sizeof(*all), cmp_u64);
	for (size_t i = 1; i < k; i++)
		assert_true(all[i] != all[i - 1]);
	k = 0;
	for (int i = 0; i < TH_N; i++) {
		memcpy(all + k, a[i].slices, sizeof(a[i].slices));
		k += 2 * TH_FILES;
	}
	qsort(all, k, sizeof(*all), cmp_u64);
	for (size_t i = 1; i < k; i++)
		assert_true(all[i] != all[i - 1]);
	free(a);
	free(all);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_meta_format_refuses_existing),
	    T(test_meta_format_force_wipes),
	    T(test_meta_format_json),
	    T(test_meta_format_root_and_trash),
	    T(test_meta_open_missing),
	    T(test_meta_names),
	    T(test_meta_lookup),
	    T(test_meta_mknod_types),
	    T(test_meta_create_permissions),
	    T(test_meta_mkdir_nlink),
	    T(test_meta_symlink_readlink),
	    T(test_meta_link),
	    T(test_meta_tmpfile),
	    T(test_meta_unlink),
	    T(test_meta_sticky),
	    T(test_meta_rmdir),
	    T(test_meta_chmod_chown),
	    T(test_meta_utimes),
	    T(test_meta_setattr_size_rules),
	    T(test_meta_access),
	    T(test_meta_ids_unique),
	    T(test_meta_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
