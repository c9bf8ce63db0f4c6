/*
 * t_meta_scan.c - whole-volume reads (meta_view_*) and the checkpoint
 * record helpers (meta_rec_*) of meta_scan.h.
 *
 * A small known tree is built through the ordinary meta_* calls; each scan
 * must return exactly its records, in key order, decoded: a view that
 * drops, repeats, misorders or misreads a record fails here.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "meta/meta_scan.h"
#include "unit/meta_fixture.h"

#define C64 (64 * MiB)
#define TXT 2048

/* ---- helpers ---- */

static uint64_t new_id(struct meta *m)
{
	uint64_t id = 0;

	assert_int_equal(meta_new_slice_id(m, &id), 0);
	return id;
}

/* Write one slice of @size bytes at @chunk offset 0 of @ino. */
static void put_slice(struct meta *m, uint64_t ino, uint32_t chunk, uint64_t id,
		      uint32_t size, uint64_t length)
{
	struct meta_slice_write w;

	memset(&w, 0, sizeof(w));
	w.chunk = chunk;
	w.s.id = id;
	w.s.size = size;
	w.s.len = size;
	assert_int_equal(meta_write(m, ino, &w, 1, length, NULL), 0);
}

/* Append printf output to the text @arg (TXT bytes). */
static void cat(char *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cat(char *t, const char *fmt, ...)
{
	size_t o = strlen(t);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t + o, TXT - o, fmt, ap);
	va_end(ap);
}

static int inode_txt(void *arg, const struct meta_inode *i)
{
	assert_false(i->corrupt);
	cat(arg, "%llu:%o:%u,", (unsigned long long)i->a.ino, i->a.mode,
	    i->a.nlink);
	return 0;
}

static int entry_txt(void *arg, const struct meta_entry *e)
{
	assert_false(e->corrupt);
	assert_int_equal(strlen(e->name), e->name_len);
	cat(arg, "%llu/%s:%llu:%o,", (unsigned long long)e->parent, e->name,
	    (unsigned long long)e->ino, e->type);
	return 0;
}

static int chunk_txt(void *arg, const struct meta_chunk *c)
{
	assert_false(c->corrupt);
	cat(arg, "%llu.%u[", (unsigned long long)c->ino, c->index);
	for (size_t i = 0; i < c->n; i++)
		cat(arg, "%llu@%u+%u/%u", (unsigned long long)c->s[i].id,
		    c->s[i].pos, c->s[i].len, c->s[i].size);
	cat(arg, "],");
	return 0;
}

static int ref_txt(void *arg, const struct meta_sliceref *r)
{
	assert_false(r->corrupt);
	cat(arg, "%llu*%llu,", (unsigned long long)r->id,
	    (unsigned long long)r->refs);
	return 0;
}

static int pend_txt(void *arg, const struct meta_pending *p)
{
	assert_false(p->corrupt);
	cat(arg, "%llu/%u@%llu%s,", (unsigned long long)p->id, p->size,
	    (unsigned long long)p->deleted_at, p->kept ? "K" : "");
	return 0;
}

static int ino_txt(void *arg, uint64_t ino)
{
	cat(arg, "%llu,", (unsigned long long)ino);
	return 0;
}

static int sus_txt(void *arg, uint64_t sid, uint64_t ino)
{
	cat(arg, "%llu:%llu,", (unsigned long long)sid,
	    (unsigned long long)ino);
	return 0;
}

static int ckpt_txt(void *arg, const struct meta_ckpt *c)
{
	cat(arg, "%s:%llu:%llu:%lld:%llu,", c->name,
	    (unsigned long long)c->txn_seq, (unsigned long long)c->next_slice,
	    (long long)c->time_ns, (unsigned long long)c->repl_seq);
	return 0;
}

static int stop_first(void *arg, const struct meta_inode *i)
{
	(*(int *)arg)++;
	return i->a.ino == R1 ? 1 : -EINTR;
}

static int fail_fn(void *arg, const struct meta_entry *e)
{
	(void)e;
	(*(int *)arg)++;
	return -ENOTSUP;
}

static uint64_t counter(struct meta_view *v, const char *name)
{
	uint64_t n = 0;

	assert_int_equal(meta_view_counter(v, name, &n), 0);
	return n;
}

/* The deletion queue as text, in a view of its own. */
static void pending(struct meta *m, char *t)
{
	struct meta_view *v;

	t[0] = '\0';
	assert_int_equal(meta_view_begin(m, &v), 0);
	assert_int_equal(meta_view_pending(v, pend_txt, t), 0);
	assert_int_equal(meta_view_end(v), 0);
}

/* ---- tests ---- */

/*
 * Tree: /d (dir), /d/f == /f2 (hard link; 2 chunks), /s -> "d/f", /c
 * (clone of f: both its slices get a reference), and /g written and
 * unlinked (its slice is queued, its inode gone).
 */
static void test_meta_scan_tree(void **state)
{
	struct meta *m = FX_M(state);
	char got[TXT], want[TXT];
	struct meta_clone_stats st;
	struct meta_attr a;
	struct meta_view *v;
	uint64_t d, f, s, g, c, ia, ib, ig;
	int n = 0;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "f", 0644);
	ia = new_id(m);
	ib = new_id(m);
	put_slice(m, f, 0, ia, 4096, 4096);
	put_slice(m, f, 1, ib, 300, C64 + 300);
	assert_int_equal(meta_link(m, ROOT, f, R1, "f2", &a), 0);
	assert_int_equal(meta_symlink(m, ROOT, R1, "s", "d/f", &a), 0);
	s = a.ino;
	g = fx_file(m, ROOT, R1, "g", 0600);
	ig = new_id(m);
	put_slice(m, g, 0, ig, 100, 100);
	assert_int_equal(meta_unlink(m, ROOT, R1, "g"), 0);
	assert_int_equal(meta_clone(m, ROOT, f, R1, "c", 0, &a, &st), 0);
	c = a.ino;
	assert_int_equal(st.slices, 2);

	assert_int_equal(meta_view_begin(m, &v), 0);

	/* inodes: root, trash, and the four live ones; g is gone */
	got[0] = '\0';
	assert_int_equal(meta_view_inodes(v, 0, inode_txt, got), 0);
	snprintf(want, sizeof(want),
		 "1:%o:3,2:%o:2,%llu:%o:2,%llu:%o:2,%llu:%o:1,%llu:%o:1,",
		 S_IFDIR | 0755, S_IFDIR | 0555, (unsigned long long)d,
		 S_IFDIR | 0755, (unsigned long long)f, S_IFREG | 0644,
		 (unsigned long long)s, S_IFLNK | 0777, (unsigned long long)c,
		 S_IFREG | 0644);
	assert_string_equal(got, want);
	/* from an inode on */
	got[0] = '\0';
	assert_int_equal(meta_view_inodes(v, f, inode_txt, got), 0);
	snprintf(want, sizeof(want), "%llu:%o:2,%llu:%o:1,%llu:%o:1,",
		 (unsigned long long)f, S_IFREG | 0644, (unsigned long long)s,
		 S_IFLNK | 0777, (unsigned long long)c, S_IFREG | 0644);
	assert_string_equal(got, want);
	/* 1 stops early (scan gives 0); the callback saw one record */
	assert_int_equal(meta_view_inodes(v, 0, stop_first, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(meta_view_inode(v, f, &a), 0);
	assert_int_equal(a.ino, f);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.length, C64 + 300);
	assert_int_equal(meta_view_inode(v, g, &a), -ENOENT);

	/* entries by (parent, name); "." and ".." are not records */
	got[0] = '\0';
	assert_int_equal(meta_view_entries(v, 0, entry_txt, got), 0);
	snprintf(want, sizeof(want),
		 "1/c:%llu:%o,1/d:%llu:%o,1/f2:%llu:%o,1/s:%llu:%o,"
		 "%llu/f:%llu:%o,",
		 (unsigned long long)c, S_IFREG, (unsigned long long)d, S_IFDIR,
		 (unsigned long long)f, S_IFREG, (unsigned long long)s, S_IFLNK,
		 (unsigned long long)d, (unsigned long long)f, S_IFREG);
	assert_string_equal(got, want);
	got[0] = '\0';
	assert_int_equal(meta_view_entries(v, d, entry_txt, got), 0);
	snprintf(want, sizeof(want), "%llu/f:%llu:%o,", (unsigned long long)d,
		 (unsigned long long)f, S_IFREG);
	assert_string_equal(got, want);
	/* an error of the callback aborts the scan and comes back */
	n = 0;
	assert_int_equal(meta_view_entries(v, 0, fail_fn, &n), -ENOTSUP);
	assert_int_equal(n, 1);
	/* the readdir index of / is in creation order */
	got[0] = '\0';
	assert_int_equal(meta_view_index(v, R1, entry_txt, got), 0);
	snprintf(want, sizeof(want),
		 "1/d:%llu:%o,1/f2:%llu:%o,1/s:%llu:%o,1/c:%llu:%o,",
		 (unsigned long long)d, S_IFDIR, (unsigned long long)f, S_IFREG,
		 (unsigned long long)s, S_IFLNK, (unsigned long long)c,
		 S_IFREG);
	assert_string_equal(got, want);

	/* chunks by (ino, index): f and its clone share the slices */
	got[0] = '\0';
	assert_int_equal(meta_view_chunks(v, 0, chunk_txt, got), 0);
	snprintf(want, sizeof(want),
		 "%llu.0[%llu@0+4096/4096],%llu.1[%llu@0+300/300],"
		 "%llu.0[%llu@0+4096/4096],%llu.1[%llu@0+300/300],",
		 (unsigned long long)f, (unsigned long long)ia,
		 (unsigned long long)f, (unsigned long long)ib,
		 (unsigned long long)c, (unsigned long long)ia,
		 (unsigned long long)c, (unsigned long long)ib);
	assert_string_equal(got, want);
	got[0] = '\0';
	assert_int_equal(meta_view_chunks(v, c, chunk_txt, got), 0);
	snprintf(want, sizeof(want),
		 "%llu.0[%llu@0+4096/4096],%llu.1[%llu@0+300/300],",
		 (unsigned long long)c, (unsigned long long)ia,
		 (unsigned long long)c, (unsigned long long)ib);
	assert_string_equal(got, want);

	/* one extra reference each (the clone's) */
	got[0] = '\0';
	assert_int_equal(meta_view_slicerefs(v, ref_txt, got), 0);
	snprintf(want, sizeof(want), "%llu*1,%llu*1,", (unsigned long long)ia,
		 (unsigned long long)ib);
	assert_string_equal(got, want);

	/* g's slice waits in the queue, deleted at txn seq 0, not kept */
	got[0] = '\0';
	assert_int_equal(meta_view_pending(v, pend_txt, got), 0);
	snprintf(want, sizeof(want), "%llu/100@0,", (unsigned long long)ig);
	assert_string_equal(got, want);

	got[0] = '\0';
	assert_int_equal(meta_view_delfiles(v, ino_txt, got), 0);
	assert_int_equal(meta_view_sustained(v, sus_txt, got), 0);
	assert_int_equal(meta_view_checkpoints(v, ckpt_txt, got), 0);
	assert_string_equal(got, "");

	assert_int_equal(meta_view_symlink(v, s, got, sizeof(got)), 0);
	assert_string_equal(got, "d/f");
	assert_int_equal(meta_view_symlink(v, s, got, 3), 0);
	assert_string_equal(got, "d/");

	/*
	 * Counters: inodes come 1024 at a time from 3 (after root and
	 * trash), and the clone takes its one directly; slice ids 4096 at a
	 * time from 1.  No checkpoint yet: txnSeq 0.
	 */
	assert_int_equal(counter(v, "nextInode"), 3 + 1024 + 1);
	assert_int_equal(counter(v, "nextSlice"), 1 + 4096);
	assert_int_equal(counter(v, "nextSession"), 1);
	assert_int_equal(counter(v, "txnSeq"), 0);
	assert_int_equal(counter(v, "noSuchCounter"), 0);
	assert_true(c < 3 + 1024 + 1 && ig < 1 + 4096);
	assert_int_equal(meta_view_end(v), 0);
	assert_int_equal(meta_view_end(NULL), 0);
}

/* Run @fn's record helpers in one read-write txn of @m's engine. */
static void rw_txn(struct meta *m, int (*fn)(struct kv_txn *t, void *arg),
		   void *arg)
{
	struct kv_txn *t;

	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(fn(t, arg), 0);
	assert_int_equal(kv_commit(t), 0);
}

static int ckpt_put_fn(struct kv_txn *t, void *arg)
{
	struct meta_ckpt *c = arg;
	int rc = meta_rec_ckpt_now(t, c);

	return rc ? rc : meta_rec_ckpt_put(t, c);
}

static int ckpt_check_fn(struct kv_txn *t, void *arg)
{
	const struct meta_ckpt *want = arg;
	struct meta_ckpt got;

	assert_int_equal(meta_rec_ckpt_get(t, want->name, &got), 0);
	assert_string_equal(got.name, want->name);
	assert_true(got.txn_seq == want->txn_seq);
	assert_true(got.next_slice == want->next_slice);
	assert_true(got.time_ns == want->time_ns);
	assert_true(got.repl_seq == want->repl_seq);
	assert_int_equal(meta_rec_ckpt_get(t, want->name, NULL), 0);
	assert_int_equal(meta_rec_ckpt_get(t, "other", &got), -ENOENT);
	assert_int_equal(meta_rec_ckpt_get(t, "other", NULL), -ENOENT);
	return 0;
}

static int ckpt_del_fn(struct kv_txn *t, void *arg)
{
	return meta_rec_ckpt_del(t, arg);
}

/*
 * A checkpoint at txn seq S with next slice id N keeps a queued slice
 * exactly when its id < N and it was deleted after S: x (deleted after,
 * old id) is kept; y (deleted before) and z (id from after) are not.
 */
static void test_meta_scan_ckpt_kept(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_delslice *ds = NULL;
	struct meta_ckpt ck;
	struct meta_view *v;
	char got[TXT], want[TXT];
	uint64_t x, y, z, ix, iy, iz;
	size_t n = 0;

	x = fx_file(m, ROOT, R1, "x", 0644);
	y = fx_file(m, ROOT, R1, "y", 0644);
	ix = new_id(m);
	iy = new_id(m);
	put_slice(m, x, 0, ix, 10, 10);
	put_slice(m, y, 0, iy, 20, 20);
	assert_int_equal(meta_unlink(m, ROOT, R1, "y"), 0);

	memset(&ck, 0, sizeof(ck));
	snprintf(ck.name, sizeof(ck.name), "ck1");
	ck.time_ns = 123456789;
	ck.repl_seq = 77;
	rw_txn(m, ckpt_put_fn, &ck);
	assert_true(ck.txn_seq == 0);
	assert_true(ck.next_slice == 1 + 4096);
	rw_txn(m, ckpt_check_fn, &ck);

	assert_int_equal(meta_unlink(m, ROOT, R1, "x"), 0);
	meta_forget_slice_ids(m);
	z = fx_file(m, ROOT, R1, "z", 0644);
	iz = new_id(m);
	assert_true(iz >= ck.next_slice);
	put_slice(m, z, 0, iz, 30, 30);
	assert_int_equal(meta_unlink(m, ROOT, R1, "z"), 0);

	/* putting the record moved txnSeq past it */
	assert_int_equal(meta_view_begin(m, &v), 0);
	assert_int_equal(counter(v, "txnSeq"), 1);
	got[0] = '\0';
	assert_int_equal(meta_view_checkpoints(v, ckpt_txt, got), 0);
	assert_string_equal(got, "ck1:0:4097:123456789:77,");
	assert_int_equal(meta_view_end(v), 0);

	pending(m, got);
	snprintf(want, sizeof(want), "%llu/10@1K,%llu/20@0,%llu/30@1,",
		 (unsigned long long)ix, (unsigned long long)iy,
		 (unsigned long long)iz);
	assert_string_equal(got, want);
	/* the background worker sees the same rule */
	assert_int_equal(meta_pending_slices(m, 100, &ds, &n), 0);
	assert_int_equal(n, 2);
	assert_true(ds[0].id == iy && ds[1].id == iz);
	free(ds);

	/* once the checkpoint goes, nothing is kept */
	rw_txn(m, ckpt_del_fn, ck.name);
	pending(m, got);
	snprintf(want, sizeof(want), "%llu/10@1,%llu/20@0,%llu/30@1,",
		 (unsigned long long)ix, (unsigned long long)iy,
		 (unsigned long long)iz);
	assert_string_equal(got, want);
}

/* meta_rec_* at the kv level: slices of records, queueing, counters. */
static int id_txt(void *arg, uint64_t id, uint32_t size)
{
	cat(arg, "%llu/%u,", (unsigned long long)id, size);
	return 0;
}

static int rec_fn(struct kv_txn *t, void *arg)
{
	char *got = arg;
	uint64_t n = 9;

	got[0] = '\0';
	assert_int_equal(meta_rec_all_slices(t, id_txt, got), 0);
	/* already queued: 0; new: 1 */
	assert_int_equal(meta_rec_queue_slice(t, 999999, 5, 3), 1);
	assert_int_equal(meta_rec_queue_slice(t, 999999, 6, 4), 0);
	assert_int_equal(meta_rec_counter_get(t, "repl.test", &n), 0);
	assert_true(n == 0);
	assert_int_equal(meta_rec_counter_put(t, "repl.test", 1ULL << 40), 0);
	assert_int_equal(meta_rec_counter_get(t, "repl.test", &n), 0);
	assert_true(n == 1ULL << 40);
	assert_int_equal(meta_rec_skip_slice_ids(t, 1000), 0);
	assert_true(meta_rec_is_ckpt(KV_CHECKPOINT));
	assert_false(meta_rec_is_ckpt(KV_CHUNK));
	return 0;
}

static void test_meta_scan_rec(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_view *v;
	char got[TXT], want[TXT];
	uint64_t f, g, ia, ib;

	f = fx_file(m, ROOT, R1, "f", 0644);
	g = fx_file(m, ROOT, R1, "g", 0644);
	ia = new_id(m);
	ib = new_id(m);
	put_slice(m, f, 0, ia, 10, 10);
	put_slice(m, g, 0, ib, 20, 20);
	assert_int_equal(meta_unlink(m, ROOT, R1, "g"), 0);
	rw_txn(m, rec_fn, got);
	/* chunks first, then the queue */
	snprintf(want, sizeof(want), "%llu/10,%llu/20,", (unsigned long long)ia,
		 (unsigned long long)ib);
	assert_string_equal(got, want);

	pending(m, got);
	snprintf(want, sizeof(want), "%llu/20@0,999999/5@3,",
		 (unsigned long long)ib);
	assert_string_equal(got, want);
	assert_int_equal(meta_view_begin(m, &v), 0);
	assert_int_equal(counter(v, "nextSlice"), 1 + 4096 + 1000);
	assert_true(counter(v, "repl.test") == 1ULL << 40);
	assert_int_equal(meta_view_end(v), 0);
	assert_int_equal(meta_rec_n_id_counters, META_REC_N_ID_COUNTERS);
	assert_string_equal(meta_rec_id_counters[0], "nextInode");
	assert_string_equal(meta_rec_id_counters[1], "nextSlice");
	assert_string_equal(meta_rec_id_counters[2], "nextSession");
	assert_string_equal(meta_rec_id_counters[3], "txnSeq");
}

/* A malformed record: meta_rec_slices refuses it, all_slices skips it. */
static int bad_rec_fn(struct kv_txn *t, void *arg)
{
	static const unsigned char k[12] = {0, 0, 0, 0, 0, 0, 0, 9};
	char *got = arg;

	assert_int_equal(kv_put(t, KV_CHUNK, k, sizeof(k), "xyz", 3), 0);
	assert_int_equal(
		meta_rec_slices(KV_CHUNK, k, sizeof(k), "xyz", 3, id_txt, got),
		-EIO);
	assert_int_equal(
		meta_rec_slices(KV_DELSLICE, k, 8, "x", 1, id_txt, got), -EIO);
	assert_int_equal(meta_rec_slices(KV_INODE, k, 8, "x", 1, id_txt, got),
			 0);
	got[0] = '\0';
	assert_int_equal(meta_rec_all_slices(t, id_txt, got), 0);
	return 0;
}

static int corrupt_chunk(void *arg, const struct meta_chunk *c)
{
	cat(arg, "%llu%s,", (unsigned long long)c->ino, c->corrupt ? "!" : "");
	return 0;
}

static void test_meta_scan_corrupt(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_view *v;
	char got[TXT], want[TXT];
	uint64_t f = fx_file(m, ROOT, R1, "f", 0644), ia = new_id(m);

	put_slice(m, f, 0, ia, 10, 10);
	rw_txn(m, bad_rec_fn, got);
	snprintf(want, sizeof(want), "%llu/10,", (unsigned long long)ia);
	assert_string_equal(got, want);
	/* a view hands it over marked, after the good one */
	got[0] = '\0';
	assert_int_equal(meta_view_begin(m, &v), 0);
	assert_int_equal(meta_view_chunks(v, 0, corrupt_chunk, got), 0);
	assert_int_equal(meta_view_end(v), 0);
	snprintf(want, sizeof(want), "%llu,9!,", (unsigned long long)f);
	assert_string_equal(got, want);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		T(test_meta_scan_tree),
		T(test_meta_scan_ckpt_kept),
		T(test_meta_scan_rec),
		T(test_meta_scan_corrupt),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
