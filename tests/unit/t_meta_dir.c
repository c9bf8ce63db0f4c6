/*
 * t_meta_dir.c - meta_readdir: ".", "..", order, READDIR_PLUS attributes,
 * stopping and resuming, and offsets that stay valid while entries are
 * added, removed and renamed (a 100,000-entry directory listed in two
 * halves with changes in between: no survivor lost or repeated).
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "unit/meta_fixture.h"

struct ent {
	char name[64];
	uint64_t ino;
	uint32_t type;
	uint64_t next;
	bool have_attr;
	struct meta_attr attr;
};

struct listing {
	struct ent *v;
	size_t n, cap;
	size_t stop_after; /* 0: never stop */
};

static int collect(void *arg, const struct meta_dirent *d)
{
	struct listing *l = arg;
	struct ent *e;

	if (l->stop_after && l->n == l->stop_after)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	e = &l->v[l->n++];
	assert_true(strlen(d->name) < sizeof(e->name));
	snprintf(e->name, sizeof(e->name), "%s", d->name);
	e->ino = d->ino;
	e->type = d->type;
	e->next = d->next;
	e->have_attr = d->attr != NULL;
	if (d->attr)
		e->attr = *d->attr;
	return 0;
}

static void listing_free(struct listing *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void test_meta_readdir_basic(void **state)
{
	struct meta *m = FX_M(state);
	struct listing l = {0};
	struct meta_attr a;
	uint64_t d, f, s, q;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "file", 0644);
	s = fx_dir(m, ROOT, d, "sub", 0700);
	assert_int_equal(meta_symlink(m, ROOT, d, "link", "file", &a), 0);
	q = a.ino;
	assert_int_equal(meta_readdir(m, ROOT, d, 0, 0, collect, &l), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[0].name, ".");
	assert_int_equal(l.v[0].ino, d);
	assert_int_equal(l.v[0].next, 1);
	assert_string_equal(l.v[1].name, "..");
	assert_int_equal(l.v[1].ino, R1);
	assert_int_equal(l.v[1].next, 2);
	assert_string_equal(l.v[2].name, "file");
	assert_int_equal(l.v[2].ino, f);
	assert_int_equal(l.v[2].type, S_IFREG);
	assert_string_equal(l.v[3].name, "sub");
	assert_int_equal(l.v[3].ino, s);
	assert_int_equal(l.v[3].type, S_IFDIR);
	assert_string_equal(l.v[4].name, "link");
	assert_int_equal(l.v[4].ino, q);
	assert_int_equal(l.v[4].type, S_IFLNK);
	assert_false(l.v[2].have_attr);
	listing_free(&l);
	/* with attributes */
	assert_int_equal(
	    meta_readdir(m, ROOT, d, 0, META_READDIR_PLUS, collect, &l), 0);
	assert_int_equal(l.n, 5);
	for (size_t i = 0; i < l.n; i++) {
		a = fx_get(m, l.v[i].ino);
		assert_true(l.v[i].have_attr);
		assert_int_equal(l.v[i].attr.ino, a.ino);
		assert_int_equal(l.v[i].attr.mode, a.mode);
		assert_int_equal(l.v[i].attr.nlink, a.nlink);
		assert_int_equal(l.v[i].attr.length, a.length);
	}
	assert_int_equal(l.v[1].attr.ino, R1);
	listing_free(&l);
	/* the root lists neither the trash nor "..": only its own entries */
	assert_int_equal(meta_readdir(m, ROOT, R1, 0, 0, collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[1].ino, R1);
	assert_string_equal(l.v[2].name, "d");
	listing_free(&l);
	/* errors */
	assert_int_equal(meta_readdir(m, ROOT, f, 0, 0, collect, &l), -ENOTDIR);
	assert_int_equal(meta_readdir(m, ROOT, 88888, 0, 0, collect, &l),
			 -ENOENT);
	assert_int_equal(meta_readdir(m, ALICE, s, 0, 0, collect, &l), -EACCES);
	assert_int_equal(meta_readdir(m, ALICE, d, 0, 0, collect, &l), 0);
	listing_free(&l);
}

static void test_meta_readdir_stop_resume(void **state)
{
	struct meta *m = FX_M(state);
	struct listing l = {0}, r = {0};
	char name[16];
	uint64_t d;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		fx_file(m, ROOT, d, name, 0644);
	}
	/* stop after "." only: ".." is not consumed */
	l.stop_after = 1;
	assert_int_equal(meta_readdir(m, ROOT, d, 0, 0, collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(meta_readdir(m, ROOT, d, l.v[0].next, 0, collect, &r),
			 0);
	assert_int_equal(r.n, 21);
	assert_string_equal(r.v[0].name, "..");
	assert_string_equal(r.v[1].name, "n00");
	listing_free(&l);
	listing_free(&r);
	/* resume in the middle, one entry at a time */
	l.stop_after = 7;
	assert_int_equal(meta_readdir(m, ROOT, d, 0, 0, collect, &l), 0);
	assert_string_equal(l.v[6].name, "n04");
	for (uint64_t off = l.v[6].next;;) {
		size_t before = r.n;

		r.stop_after = r.n + 1;
		assert_int_equal(meta_readdir(m, ROOT, d, off, 0, collect, &r),
				 0);
		if (r.n == before)
			break;
		off = r.v[r.n - 1].next;
	}
	assert_int_equal(r.n, 15);
	for (size_t i = 0; i < r.n; i++) {
		snprintf(name, sizeof(name), "n%02zu", i + 5);
		assert_string_equal(r.v[i].name, name);
	}
	listing_free(&l);
	listing_free(&r);
}

static void test_meta_readdir_rename_inside(void **state)
{
	struct meta *m = FX_M(state);
	struct listing l = {0};
	uint64_t d;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	fx_file(m, ROOT, d, "a", 0644);
	fx_file(m, ROOT, d, "b", 0644);
	fx_file(m, ROOT, d, "c", 0644);
	fx_file(m, ROOT, d, "e", 0644);
	l.stop_after = 4; /* ".", "..", "a", "b" */
	assert_int_equal(meta_readdir(m, ROOT, d, 0, 0, collect, &l), 0);
	/* renames inside the directory keep the entries' places */
	assert_int_equal(meta_rename(m, ROOT, d, "a", d, "z", 0), 0);
	assert_int_equal(meta_rename(m, ROOT, d, "c", d, "y", 0), 0);
	/* a replacing rename: "b" (listed) takes the name "e" (not listed) */
	assert_int_equal(meta_rename(m, ROOT, d, "b", d, "e", 0), 0);
	l.stop_after = 0;
	assert_int_equal(meta_readdir(m, ROOT, d, l.v[3].next, 0, collect, &l),
			 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.v[4].name, "y");
	listing_free(&l);
}

/* ---- 100,000 entries ---- */

/* 100,000 entries; 5,000 on etcd, whose round trips make 100k take an
 * hour (several scan pages still) */
static size_t BIG_N = 100000;
#define BIG_NEW 1000

static int idx_of(const char *name)
{
	if (name[0] == 'e' || name[0] == 'n')
		return atoi(name + 1) + (name[0] == 'n' ? BIG_N : 0);
	return -1;
}

static void test_meta_readdir_100k(void **state)
{
	struct meta *m = FX_M(state);
	struct listing a = {0}, b = {0};
	uint8_t *seen = calloc(BIG_N + BIG_NEW, 1);
	uint8_t *gone = calloc(BIG_N + BIG_NEW, 1);
	char name[32];
	uint64_t d;
	size_t i;

	assert_non_null(seen);
	assert_non_null(gone);
	d = fx_dir(m, ROOT, R1, "big", 0755);
	for (i = 0; i < BIG_N; i++) {
		struct meta_attr at;

		snprintf(name, sizeof(name), "e%06zu", i);
		assert_int_equal(
		    meta_mknod(m, NULL, d, name, S_IFREG | 0644, 0, &at), 0);
	}
	/* the first half (plus "." and "..") */
	a.stop_after = BIG_N / 2 + 2;
	assert_int_equal(meta_readdir(m, ROOT, d, 0, 0, collect, &a), 0);
	assert_int_equal(a.n, BIG_N / 2 + 2);
	for (i = 2; i < a.n; i++) {
		int k = idx_of(a.v[i].name);

		assert_true(k >= 0 && (size_t)k < BIG_N);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
	}
	/* change both halves: delete listed and unlisted, add new ones */
	for (i = 0; i < BIG_N; i += 97) {
		snprintf(name, sizeof(name), "e%06zu", i);
		assert_int_equal(meta_unlink(m, NULL, d, name), 0);
		gone[i] = 1;
	}
	for (i = 0; i < BIG_NEW; i++) {
		snprintf(name, sizeof(name), "n%06zu", i);
		fx_file(m, NULL, d, name, 0644);
	}
	assert_int_equal(
	    meta_readdir(m, ROOT, d, a.v[a.n - 1].next, 0, collect, &b), 0);
	for (i = 0; i < b.n; i++) {
		int k = idx_of(b.v[i].name);

		assert_true(k >= 0 && (size_t)k < BIG_N + BIG_NEW);
		assert_int_equal(gone[k], 0);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
	}
	/* every survivor exactly once, every new entry too */
	for (i = 0; i < BIG_N + BIG_NEW; i++)
		if (!gone[i] && !seen[i])
			fail_msg("entry %zu was never listed", i);
	listing_free(&a);
	listing_free(&b);
	free(seen);
	free(gone);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const char *url = getenv("TESSERA_TEST_META");

	if (url && strncmp(url, "etcd", 4) == 0)
		BIG_N = 5000;
	const struct CMUnitTest tests[] = {
	    T(test_meta_readdir_basic),
	    T(test_meta_readdir_stop_resume),
	    T(test_meta_readdir_rename_inside),
	    T(test_meta_readdir_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
