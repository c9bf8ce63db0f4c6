/*
 * t_vfs.c - the file layer without FUSE: a real SQLite volume and file://
 * store in a temp dir, vfs calls as fuse/ makes them, results compared with
 * a byte-array model.  The background worker is off; tests run compaction
 * and deletion passes themselves.  Also locks (their rules are tested in
 * t_meta_session.c) and the slice resolver on its own.
 */
#include "util/common.h"

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/meta.h"
#include "object/object.h"
#include "vfs/vfs.h"
#include "vfs/vfs_int.h"

#define CHUNK TESSERA_CHUNK_SIZE

struct fix {
	char dir[64];
	struct vfs *v;
};

static int rm_cb(const char *p, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	UNUSED(st);
	UNUSED(flag);
	UNUSED(ftw);
	return remove(p);
}

static int open_vfs(struct fix *f, bool ro)
{
	char url[200], surl[200];
	struct meta_format fmt;
	struct vfs_conf conf;
	struct obj_store *os;
	struct meta *m;

	snprintf(url, sizeof(url), "sqlite3://%s/meta.db", f->dir);
	snprintf(surl, sizeof(surl), "file://%s/objects/", f->dir);
	if (meta_open(url, &m) < 0)
		return -1;
	if (meta_load_format(m, &fmt) < 0 || obj_open(surl, false, &os) < 0) {
		meta_close(m);
		return -1;
	}
	memset(&conf, 0, sizeof(conf));
	conf.no_background = true;
	conf.read_only = ro;
	conf.buffer_size = 64 * MiB;
	conf.max_uploads = 4;
	if (vfs_new(m, os, &fmt, &conf, &f->v) < 0) {
		obj_close(os);
		meta_close(m);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct meta_format fmt;
	struct obj_store *os;
	char url[200], surl[200];

	snprintf(f->dir, sizeof(f->dir), "/tmp/t_vfs.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(url, sizeof(url), "sqlite3://%s/meta.db", f->dir);
	snprintf(surl, sizeof(surl), "file://%s/objects/", f->dir);
	memset(&fmt, 0, sizeof(fmt));
	snprintf(fmt.name, sizeof(fmt.name), "tv");
	snprintf(fmt.storage, sizeof(fmt.storage), "%s", surl);
	snprintf(fmt.compress, sizeof(fmt.compress), "none");
	snprintf(fmt.encrypt, sizeof(fmt.encrypt), "none");
	fmt.block_size = 1 * MiB; /* small blocks: more objects per test */
	fmt.chunk_size = CHUNK;
	fmt.trash_days = 0;
	fmt.version = 1;
	if (meta_format(url, &fmt, false) < 0)
		return -1;
	if (obj_open(surl, true, &os) < 0)
		return -1;
	obj_close(os);
	if (open_vfs(f, false) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	vfs_free(f->v);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static size_t n_objects;

static int count_cb(const char *p, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	UNUSED(st);
	UNUSED(ftw);
	if (flag == FTW_F && strstr(p, "/chunks/") && !strstr(p, ".tmp"))
		n_objects++;
	return 0;
}

static size_t objects(struct fix *f)
{
	char d[100];

	snprintf(d, sizeof(d), "%s/objects", f->dir);
	n_objects = 0;
	nftw(d, count_cb, 16, FTW_PHYS);
	return n_objects;
}

static uint64_t create(struct fix *f, const char *name, uint64_t *fh)
{
	struct meta_attr a;

	assert_int_equal(vfs_create(f->v, NULL, TESSERA_ROOT_INO, name, 0644,
				    O_RDWR, fh, &a),
			 0);
	return a.ino;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
	}
}

static void check_read(struct fix *f, uint64_t ino, uint64_t fh,
		       const unsigned char *model, uint64_t len)
{
	unsigned char *buf = malloc(len + 100);

	assert_int_equal(vfs_read(f->v, ino, fh, 0, buf, len + 100),
			 (ssize_t)len);
	assert_memory_equal(buf, model, len);
	free(buf);
}

static void test_vfs_write_read_model(void **state)
{
	struct fix *f = *state;
	const uint64_t size = 3 * MiB + 777;
	unsigned char *model = calloc(1, size), *data = malloc(MiB);
	struct meta_attr a;
	uint64_t fh, ino = create(f, "a", &fh);
	unsigned seed = 7;
	uint64_t end = 0;

	/* sequential, backwards, overlapping, and a hole */
	static const struct {
		uint64_t off;
		size_t len;
	} w[] = {
		{0, 100000},	  {100000, 500000}, {50000, 10},
		{2 * MiB, 70000}, {1 * MiB, 4096},  {3 * MiB, 777},
		{90000, 20000},	  {2 * MiB + 5, 3}, {0, 1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(w); i++) {
		fill(data, w[i].len, seed++);
		assert_int_equal(
			vfs_write(f->v, ino, fh, w[i].off, data, w[i].len),
			(ssize_t)w[i].len);
		memcpy(model + w[i].off, data, w[i].len);
		end = MAX(end, w[i].off + w[i].len);
		/* getattr sees the pending length */
		assert_int_equal(vfs_getattr(f->v, ino, &a), 0);
		assert_int_equal(a.length, end);
	}
	assert_int_equal(end, size);
	check_read(f, ino, fh, model, size);
	/* after release and reopen (close-to-open) */
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	assert_int_equal(vfs_open(f->v, NULL, ino, O_RDONLY, &fh, &a), 0);
	assert_int_equal(a.length, size);
	check_read(f, ino, fh, model, size);
	assert_int_equal(vfs_write(f->v, ino, fh, 0, "x", 1), -EBADF);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	free(model);
	free(data);
}

static void test_vfs_compact_and_delete(void **state)
{
	struct fix *f = *state;
	const uint64_t size = 2 * MiB;
	unsigned char *model = malloc(size), data[5000];
	struct slice *s;
	size_t n;
	uint64_t fh, ino = create(f, "c", &fh);

	fill(model, size, 1);
	assert_int_equal(vfs_write(f->v, ino, fh, 0, model, size),
			 (ssize_t)size);
	/* scattered overwrites: each one a new slice */
	for (unsigned i = 0; i < 40; i++) {
		uint64_t off = (i * 104729u) % (size - sizeof(data));

		fill(data, sizeof(data), 100 + i);
		assert_int_equal(
			vfs_write(f->v, ino, fh, off, data, sizeof(data)),
			(ssize_t)sizeof(data));
		memcpy(model + off, data, sizeof(data));
	}
	assert_int_equal(vfs_fsync(f->v, ino, fh, false), 0);
	assert_int_equal(meta_read_chunk(f->v->m, ino, 0, &s, &n), 0);
	free(s);
	assert_true(n > 20);
	assert_true(objects(f) > 20);
	check_read(f, ino, fh, model, size);

	assert_int_equal(vfs_compact_chunk(f->v, ino, 0, 5), 0);
	assert_int_equal(meta_read_chunk(f->v->m, ino, 0, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].pos, 0);
	assert_int_equal(s[0].len, size);
	free(s);
	check_read(f, ino, fh, model, size);
	/* the replaced slices' objects go; the new slice's 2 blocks stay */
	assert_int_equal(vfs_bg_delete_pass(f->v), 0);
	assert_int_equal(objects(f), 2);
	/* below the threshold nothing happens */
	assert_int_equal(vfs_compact_chunk(f->v, ino, 0, 5), 0);

	/* unlink while open: objects stay until the release */
	assert_int_equal(vfs_unlink(f->v, NULL, TESSERA_ROOT_INO, "c"), 0);
	assert_int_equal(vfs_bg_delete_pass(f->v), 0);
	assert_int_equal(objects(f), 2);
	check_read(f, ino, fh, model, size);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	assert_int_equal(vfs_bg_delete_pass(f->v), 0);
	assert_int_equal(objects(f), 0);
	free(model);
}

static void test_vfs_truncate_pending(void **state)
{
	struct fix *f = *state;
	unsigned char model[300000], buf[300000];
	struct meta_attr in, out;
	uint64_t fh, ino = create(f, "t", &fh);

	fill(model, sizeof(model), 3);
	assert_int_equal(vfs_write(f->v, ino, fh, 0, model, sizeof(model)),
			 (ssize_t)sizeof(model));
	/* truncate while the writes are still buffered */
	memset(&in, 0, sizeof(in));
	in.length = 1000;
	assert_int_equal(
		vfs_setattr(f->v, NULL, ino, fh, META_SET_SIZE, &in, &out), 0);
	assert_int_equal(out.length, 1000);
	in.length = 5000;
	assert_int_equal(
		vfs_setattr(f->v, NULL, ino, 0, META_SET_SIZE, &in, &out), 0);
	assert_int_equal(vfs_read(f->v, ino, fh, 0, buf, sizeof(buf)), 5000);
	assert_memory_equal(buf, model, 1000);
	for (int i = 1000; i < 5000; i++)
		assert_int_equal(buf[i], 0);
	/* O_TRUNC through open */
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	assert_int_equal(vfs_open(f->v, NULL, ino, O_RDWR | O_TRUNC, &fh, &out),
			 0);
	assert_int_equal(out.length, 0);
	assert_int_equal(vfs_read(f->v, ino, fh, 0, buf, 10), 0);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
}

static void test_vfs_seek_fallocate(void **state)
{
	struct fix *f = *state;
	unsigned char data[4096];
	uint64_t fh, ino = create(f, "s", &fh), r;

	fill(data, sizeof(data), 9);
	assert_int_equal(
		vfs_write(f->v, ino, fh, CHUNK + 8192, data, sizeof(data)),
		(ssize_t)sizeof(data));
	assert_int_equal(vfs_write(f->v, ino, fh, 100, data, 10), 10);
	assert_int_equal(vfs_lseek(f->v, ino, fh, 0, SEEK_DATA, &r), 0);
	assert_int_equal(r, 100);
	assert_int_equal(vfs_lseek(f->v, ino, fh, 100, SEEK_HOLE, &r), 0);
	assert_int_equal(r, 110);
	assert_int_equal(vfs_lseek(f->v, ino, fh, 110, SEEK_DATA, &r), 0);
	assert_int_equal(r, CHUNK + 8192);
	assert_int_equal(vfs_lseek(f->v, ino, fh, CHUNK + 8193, SEEK_HOLE, &r),
			 0);
	assert_int_equal(r, CHUNK + 8192 + sizeof(data)); /* EOF */
	assert_int_equal(vfs_lseek(f->v, ino, fh, CHUNK + 8192 + sizeof(data),
				   SEEK_DATA, &r),
			 -ENXIO);
	/* punch the first piece: data starts in the second chunk */
	assert_int_equal(
		vfs_fallocate(f->v, ino, fh,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			      4096),
		0);
	assert_int_equal(vfs_lseek(f->v, ino, fh, 0, SEEK_DATA, &r), 0);
	assert_int_equal(r, CHUNK + 8192);
	assert_int_equal(vfs_fallocate(f->v, ino, fh, 0, 0, 3 * CHUNK), 0);
	assert_int_equal(vfs_lseek(f->v, ino, fh, CHUNK + 8192, SEEK_HOLE, &r),
			 0);
	assert_int_equal(r, CHUNK + 8192 + sizeof(data));
	assert_int_equal(
		vfs_fallocate(f->v, ino, fh, 0x40 /* INSERT */, 0, 4096),
		-EOPNOTSUPP);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
}

struct names {
	int n;
	bool stats;
};

static int name_cb(void *arg, const struct vfs_dirent *d)
{
	struct names *nm = arg;

	nm->n++;
	if (strcmp(d->name, ".stats") == 0)
		nm->stats = true;
	return 0;
}

static void test_vfs_virtual_files(void **state)
{
	struct fix *f = *state;
	struct meta_attr a;
	struct names nm = {0, false};
	char buf[4096];
	uint64_t fh;
	ssize_t n;

	assert_int_equal(vfs_lookup(f->v, NULL, TESSERA_ROOT_INO, ".stats", &a),
			 0);
	assert_true(vfs_is_virtual(a.ino));
	assert_int_equal(vfs_open(f->v, NULL, a.ino, O_RDWR, &fh, NULL),
			 -EACCES);
	assert_int_equal(vfs_open(f->v, NULL, a.ino, O_RDONLY, &fh, NULL), 0);
	n = vfs_read(f->v, a.ino, fh, 0, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(strncmp(buf, "pid ", 4), 0);
	assert_int_equal(atoi(buf + 4), (int)getpid());
	assert_int_equal(vfs_release(f->v, a.ino, fh, 0), 0);
	assert_int_equal(vfs_unlink(f->v, NULL, TESSERA_ROOT_INO, ".stats"),
			 -EPERM);
	assert_int_equal(
		vfs_mkdir(f->v, NULL, TESSERA_ROOT_INO, ".config", 0755, &a),
		-EEXIST);
	assert_int_equal(vfs_opendir(f->v, NULL, TESSERA_ROOT_INO, 0, &fh), 0);
	assert_int_equal(vfs_readdir(f->v, NULL, TESSERA_ROOT_INO, fh, 0, true,
				     name_cb, &nm),
			 0);
	assert_false(nm.stats);
	assert_int_equal(vfs_releasedir(f->v, TESSERA_ROOT_INO, fh), 0);
}

/* ".control": clone a file with writes still buffered, by metadata. */
static void test_vfs_control_clone(void **state)
{
	struct fix *f = *state;
	const uint64_t size = 3 * MiB + 5;
	unsigned char *model = malloc(size);
	char req[200], ans[200];
	struct meta_attr a;
	uint64_t fh, cfh, ino = create(f, "src", &fh), cl;
	size_t n0;
	ssize_t n;
	int len;

	fill(model, size, 9);
	assert_int_equal(vfs_write(f->v, ino, fh, 0, model, size),
			 (ssize_t)size);
	assert_int_equal(
		vfs_lookup(f->v, NULL, TESSERA_ROOT_INO, ".control", &a), 0);
	assert_int_equal(a.mode, S_IFREG | 0666);
	assert_int_equal(vfs_open(f->v, NULL, a.ino, O_RDWR, &cfh, NULL), 0);
	/* malformed requests are refused */
	assert_int_equal(vfs_write(f->v, a.ino, cfh, 0, "clone 1 1", 9),
			 -EINVAL);
	len = snprintf(req, sizeof(req), "clone %llu %llu 0 3\ndst",
		       (unsigned long long)ino,
		       (unsigned long long)TESSERA_ROOT_INO);
	assert_int_equal(vfs_write(f->v, a.ino, cfh, 0, req, (size_t)len),
			 len);
	n = vfs_read(f->v, a.ino, cfh, 0, ans, sizeof(ans) - 1);
	assert_true(n > 0);
	ans[n] = '\0';
	assert_int_equal(strncmp(ans, "0 ino ", 6), 0);
	assert_non_null(strstr(ans, " inodes 1 "));
	cl = strtoull(ans + 6, NULL, 10);
	/* again: the name exists now, the answer says so */
	assert_int_equal(vfs_write(f->v, a.ino, cfh, 0, req, (size_t)len),
			 len);
	n = vfs_read(f->v, a.ino, cfh, 0, ans, sizeof(ans) - 1);
	ans[n] = '\0';
	assert_int_equal(atoi(ans), -EEXIST);
	/* other requests need the mount's hook */
	assert_int_equal(
		vfs_write(f->v, a.ino, cfh, 0, "checkpoint x", 12), 12);
	n = vfs_read(f->v, a.ino, cfh, 0, ans, sizeof(ans) - 1);
	ans[n] = '\0';
	assert_int_equal(atoi(ans), -ENOSYS);
	assert_int_equal(vfs_release(f->v, a.ino, cfh, 0), 0);

	/* the clone reads the same bytes and shares every object */
	n0 = objects(f);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	assert_int_equal(vfs_open(f->v, NULL, cl, O_RDONLY, &fh, &a), 0);
	assert_int_equal(a.length, size);
	check_read(f, cl, fh, model, size);
	assert_int_equal(vfs_release(f->v, cl, fh, 0), 0);
	assert_int_equal(objects(f), n0);
	/* deleting one copy frees nothing; the last one frees all */
	assert_int_equal(vfs_unlink(f->v, NULL, TESSERA_ROOT_INO, "src"), 0);
	assert_int_equal(vfs_bg_delete_pass(f->v), 0);
	assert_int_equal(objects(f), n0);
	assert_int_equal(vfs_unlink(f->v, NULL, TESSERA_ROOT_INO, "dst"), 0);
	assert_int_equal(vfs_bg_delete_pass(f->v), 0);
	assert_int_equal(objects(f), 0);
	free(model);
}

static void test_vfs_read_only(void **state)
{
	struct fix *f = *state;
	struct meta_attr a;
	uint64_t fh, ino = create(f, "ro", &fh);

	assert_int_equal(vfs_write(f->v, ino, fh, 0, "abc", 3), 3);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
	vfs_free(f->v);
	assert_int_equal(open_vfs(f, true), 0);
	assert_int_equal(vfs_open(f->v, NULL, ino, O_WRONLY, &fh, &a), -EROFS);
	assert_int_equal(vfs_mkdir(f->v, NULL, TESSERA_ROOT_INO, "d", 0755, &a),
			 -EROFS);
	assert_int_equal(vfs_open(f->v, NULL, ino, O_RDONLY, &fh, &a), 0);
	assert_int_equal(a.length, 3);
	assert_int_equal(vfs_release(f->v, ino, fh, 0), 0);
}

/* ---- slice resolution ---- */

static void test_vfs_resolve_slices(void **state)
{
	struct slice s[] = {
		{0, 1, 100, 0, 100},  /* [0,100) id 1 */
		{50, 2, 10, 0, 10},   /* [50,60) id 2 splits it */
		{200, 0, 50, 0, 50},  /* [200,250) zeros */
		{90, 3, 130, 0, 130}, /* [90,220) id 3 */
	};
	struct vfs_seg *g;
	size_t n;

	UNUSED(state);
	assert_int_equal(vfs_resolve_slices(s, ARRAY_SIZE(s), &g, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(g[0].pos, 0);
	assert_int_equal(g[0].len, 50);
	assert_int_equal(g[0].id, 1);
	assert_int_equal(g[1].pos, 50);
	assert_int_equal(g[1].len, 10);
	assert_int_equal(g[1].id, 2);
	assert_int_equal(g[2].pos, 60);
	assert_int_equal(g[2].len, 30);
	assert_int_equal(g[2].id, 1);
	assert_int_equal(g[3].pos, 90);
	assert_int_equal(g[3].len, 130);
	assert_int_equal(g[3].id, 3);
	assert_int_equal(g[4].pos, 220);
	assert_int_equal(g[4].len, 30);
	assert_int_equal(g[4].id, 0);
	free(g);
	assert_int_equal(vfs_resolve_slices(s, 0, &g, &n), 0);
	assert_int_equal(n, 0);
	free(g);
}

/* ---- locks ---- */

static struct vfs_lock lk(int type, uint64_t start, uint64_t end)
{
	struct vfs_lock l = {type, start, end, 42};

	return l;
}

static bool always(void *arg)
{
	UNUSED(arg);
	return true;
}

/* Locks through the vfs: close drops them, a wait can be interrupted. */
static void test_vfs_locks(void **state)
{
	struct fix *f = *state;
	struct vfs_ctx intr = {{0, 0, 0, NULL, 0, 1}, always, NULL};
	uint64_t fh, fh2, ino = create(f, "locked", &fh);
	struct vfs_lock l;

	assert_int_equal(vfs_open(f->v, NULL, ino, O_RDWR, &fh2, NULL), 0);
	l = lk(F_WRLCK, 0, 99);
	assert_int_equal(vfs_setlk(f->v, NULL, ino, 10, &l, false), 0);
	assert_int_equal(vfs_setlk(f->v, NULL, ino, 11, &l, false), -EAGAIN);
	assert_int_equal(vfs_setlk(f->v, &intr, ino, 11, &l, true), -EINTR);
	l = lk(F_RDLCK, 50, 50);
	assert_int_equal(vfs_getlk(f->v, ino, 11, &l), 0);
	assert_int_equal(l.type, F_WRLCK);
	assert_int_equal(l.pid, 42);
	/* close(2) by owner 10 drops its fcntl locks */
	assert_int_equal(vfs_flush(f->v, ino, fh, 10), 0);
	l = lk(F_WRLCK, 0, 99);
	assert_int_equal(vfs_setlk(f->v, NULL, ino, 11, &l, true), 0);

	assert_int_equal(vfs_flock(f->v, NULL, ino, fh, LOCK_EX), 0);
	assert_int_equal(vfs_flock(f->v, NULL, ino, fh2, LOCK_SH | LOCK_NB),
			 -EWOULDBLOCK);
	assert_int_equal(vfs_flock(f->v, &intr, ino, fh2, LOCK_SH), -EINTR);
	assert_int_equal(vfs_flock(f->v, NULL, ino, fh2, 0), -EINVAL);
	/* the last close of the description drops its flock */
	assert_int_equal(vfs_release(f->v, ino, fh, fh), 0);
	assert_int_equal(vfs_flock(f->v, NULL, ino, fh2, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(vfs_release(f->v, ino, fh2, fh2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vfs_write_read_model,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vfs_compact_and_delete,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vfs_truncate_pending,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vfs_seek_fallocate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vfs_virtual_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vfs_control_clone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_vfs_read_only, setup,
						teardown),
		cmocka_unit_test(test_vfs_resolve_slices),
		cmocka_unit_test_setup_teardown(test_vfs_locks, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
