/*
 * t_meta_clone.c - meta_clone (metadata-only copies with slice reference
 * counts) and the checkpoint rule of the deletion queue (meta/delq.c).
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "unit/meta_fixture.h"

#define C64 (64 * MiB)

static struct meta_slice_write sw(uint32_t chunk, uint32_t pos, uint64_t id,
				  uint32_t size, uint32_t len)
{
	struct meta_slice_write w;

	memset(&w, 0, sizeof(w));
	w.chunk = chunk;
	w.s.pos = pos;
	w.s.id = id;
	w.s.size = size;
	w.s.len = len;
	return w;
}

static uint64_t new_id(struct meta *m)
{
	uint64_t id = 0;

	assert_int_equal(meta_new_slice_id(m, &id), 0);
	return id;
}

/* The slice list of (ino, chunk) as "id:pos:len," text. */
static void chunk_text(struct meta *m, uint64_t ino, uint32_t idx, char *out,
		       size_t n)
{
	struct slice *s = NULL;
	size_t cnt = 0, o = 0;

	assert_int_equal(meta_read_chunk(m, ino, idx, &s, &cnt), 0);
	out[0] = '\0';
	for (size_t i = 0; i < cnt; i++)
		o += (size_t)snprintf(out + o, n - o, "%llu:%u:%u,",
				      (unsigned long long)s[i].id, s[i].pos,
				      s[i].len);
	free(s);
}

static bool is_queued(struct meta *m, uint64_t id)
{
	struct meta_delslice *d = NULL;
	size_t n = 0;
	bool found = false;

	assert_int_equal(meta_pending_slices(m, 100000, &d, &n), 0);
	for (size_t i = 0; i < n; i++)
		found |= d[i].id == id;
	free(d);
	return found;
}

static size_t queue_len(struct meta *m)
{
	struct meta_delslice *d = NULL;
	size_t n = 0;

	assert_int_equal(meta_pending_slices(m, 100000, &d, &n), 0);
	free(d);
	return n;
}

static uint64_t lookup(struct meta *m, uint64_t parent, const char *name)
{
	struct meta_attr a;

	assert_int_equal(meta_lookup(m, ROOT, parent, name, &a), 0);
	return a.ino;
}

/* A file with 3 slices over 2 chunks; ids in ids[3]. */
static uint64_t data_file(struct meta *m, uint64_t dir, const char *name,
			  const struct meta_cred *c, uint32_t mode,
			  uint64_t ids[3])
{
	uint64_t f = fx_file(m, c, dir, name, mode);
	struct meta_slice_write w[3];

	for (int i = 0; i < 3; i++)
		ids[i] = new_id(m);
	w[0] = sw(0, 0, ids[0], 4096, 4096);
	w[1] = sw(0, 100, ids[1], 20, 20);
	w[2] = sw(1, 0, ids[2], 300, 300);
	assert_int_equal(meta_write(m, f, w, 3, C64 + 300, NULL), 0);
	return f;
}

static void test_meta_clone_file(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_clone_stats st;
	struct meta_attr a;
	struct meta_slice_write w;
	char before[256], after[256], cl[256], one[256];
	uint64_t f, g, ids[3], extra, h = fx_dir(m, ROOT, R1, "h", 0777);

	f = data_file(m, h, "f", ALICE, 0640, ids);
	assert_int_equal(meta_clone(m, ALICE, f, h, "g", 0, &a, &st), 0);
	g = a.ino;
	assert_true(g != f);
	assert_int_equal(a.length, C64 + 300);
	assert_int_equal(a.mode, S_IFREG | 0640);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(st.inodes, 1);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.slices, 3);
	assert_int_equal(lookup(m, h, "g"), g);
	chunk_text(m, f, 0, before, sizeof(before));
	chunk_text(m, g, 0, cl, sizeof(cl));
	assert_string_equal(before, cl);
	chunk_text(m, g, 1, cl, sizeof(cl));
	chunk_text(m, f, 1, one, sizeof(one));
	assert_string_equal(one, cl);

	/* writing the clone leaves the source untouched */
	extra = new_id(m);
	w = sw(0, 0, extra, 10, 10);
	assert_int_equal(meta_write(m, g, &w, 1, 10, NULL), 0);
	chunk_text(m, f, 0, after, sizeof(after));
	assert_string_equal(before, after);
	chunk_text(m, g, 0, cl, sizeof(cl));
	assert_string_not_equal(before, cl);

	/* deleting the source frees nothing the clone uses */
	assert_int_equal(meta_unlink(m, ROOT, h, "f"), 0);
	assert_int_equal(queue_len(m), 0);
	chunk_text(m, g, 1, cl, sizeof(cl));
	assert_string_equal(one, cl);
	/* the last reference queues them */
	assert_int_equal(meta_unlink(m, ROOT, h, "g"), 0);
	for (int i = 0; i < 3; i++)
		assert_true(is_queued(m, ids[i]));
	assert_true(is_queued(m, extra));
	assert_int_equal(queue_len(m), 4);
}

/* Truncating one of three copies keeps the data of the other two. */
static void test_meta_clone_refcount(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a, in, out;
	uint64_t f, ids[3];

	f = data_file(m, R1, "f", ROOT, 0644, ids);
	assert_int_equal(meta_clone(m, ROOT, f, R1, "g", 0, &a, NULL), 0);
	assert_int_equal(meta_clone(m, ROOT, a.ino, R1, "h", 0, &a, NULL), 0);
	in.length = 0;
	assert_int_equal(meta_setattr(m, ROOT, f, META_SET_SIZE, &in, &out), 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "g"), 0);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(fx_get(m, lookup(m, R1, "h")).length, C64 + 300);
	assert_int_equal(meta_unlink(m, ROOT, R1, "h"), 0);
	assert_int_equal(queue_len(m), 3);
}

static void test_meta_clone_tree(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_clone_stats st;
	struct meta_attr a, e;
	char target[64], val[16];
	uint64_t d, s, ids[3], ids2[3], x;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	s = fx_dir(m, ROOT, d, "s", 0750);
	data_file(m, d, "a", ROOT, 0644, ids);
	data_file(m, s, "b", ROOT, 0600, ids2);
	assert_int_equal(meta_symlink(m, ROOT, d, "l", "a", &a), 0);
	assert_int_equal(
		meta_setxattr(m, ROOT, lookup(m, d, "a"), "user.k", "v1", 2, 0),
		0);
	assert_int_equal(meta_clone(m, ROOT, d, R1, "e", 0, &e, &st), 0);
	assert_int_equal(st.inodes, 5);
	assert_int_equal(st.slices, 6);
	assert_true(S_ISDIR(e.mode));
	assert_int_equal(e.nlink, 3);
	assert_int_equal(fx_get(m, R1).nlink, 4); /* ., .., d, e */
	x = lookup(m, e.ino, "s");
	assert_int_equal(fx_get(m, x).parent, e.ino);
	assert_int_equal(fx_get(m, x).mode, S_IFDIR | 0750);
	assert_int_equal(fx_get(m, lookup(m, x, "b")).length, C64 + 300);
	assert_int_equal(
		meta_readlink(m, lookup(m, e.ino, "l"), target, sizeof(target)),
		1);
	assert_string_equal(target, "a");
	assert_int_equal(meta_getxattr(m, ROOT, lookup(m, e.ino, "a"), "user.k",
				       val, sizeof(val)),
			 2);
	/* a new entry in the clone does not show in the source */
	fx_file(m, ROOT, x, "new", 0644);
	assert_int_equal(meta_lookup(m, ROOT, s, "new", &a), -ENOENT);
	/* the source can go; the clone stays readable */
	assert_int_equal(meta_unlink(m, ROOT, s, "b"), 0);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(fx_get(m, lookup(m, x, "b")).length, C64 + 300);

	/* errors */
	assert_int_equal(meta_clone(m, ROOT, d, R1, "e", 0, &a, NULL), -EEXIST);
	assert_int_equal(meta_clone(m, ROOT, d, s, "in", 0, &a, NULL), -EINVAL);
	assert_int_equal(meta_clone(m, ROOT, d, d, "in", 0, &a, NULL), -EINVAL);
	assert_int_equal(meta_clone(m, ROOT, R1, d, "root", 0, &a, NULL),
			 -EINVAL);
	assert_int_equal(
		meta_clone(m, ROOT, d, META_TRASH_INO, "t", 0, &a, NULL),
		-EPERM);
	assert_int_equal(meta_clone(m, ROOT, 99999, R1, "z", 0, &a, NULL),
			 -ENOENT);
}

static void test_meta_clone_perm(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t f, pub, ids[3], d;

	pub = fx_dir(m, ROOT, R1, "pub", 0777);
	f = data_file(m, pub, "secret", ALICE, 0600, ids);
	assert_int_equal(meta_clone(m, BOB, f, pub, "x", 0, &a, NULL), -EACCES);
	/* not writable destination */
	d = fx_dir(m, ROOT, R1, "ro", 0755);
	assert_int_equal(meta_clone(m, ALICE, f, d, "x", 0, &a, NULL), -EACCES);
	/* a readable file: Bob's copy is Bob's, setuid dropped */
	f = data_file(m, pub, "tool", ALICE, 04755, ids);
	assert_int_equal(meta_clone(m, BOB, f, pub, "t", 0, &a, NULL), 0);
	assert_int_equal(a.uid, 1001);
	assert_int_equal(a.mode, S_IFREG | 0755);
	/* preserve: owners only for root */
	assert_int_equal(
		meta_clone(m, BOB, f, pub, "t2", META_CLONE_PRESERVE, &a, NULL),
		0);
	assert_int_equal(a.uid, 1001);
	assert_int_equal(meta_clone(m, ROOT, f, pub, "t3", META_CLONE_PRESERVE,
				    &a, NULL),
			 0);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.mode, S_IFREG | 04755);
	assert_int_equal(a.mtime_ns, fx_get(m, f).mtime_ns);
}

/* Cost follows records: a 100-chunk file costs 100 chunk copies. */
static void test_meta_clone_counts(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_clone_stats st;
	struct meta_slice_write w[100];
	struct meta_attr a;
	uint64_t big = fx_file(m, ROOT, R1, "big", 0644);

	for (uint32_t i = 0; i < 100; i++)
		w[i] = sw(i, 0, new_id(m), C64, C64);
	assert_int_equal(meta_write(m, big, w, 100, 100ULL * C64, NULL), 0);
	assert_int_equal(meta_clone(m, ROOT, big, R1, "big2", 0, &a, &st), 0);
	assert_int_equal(a.length, 100ULL * C64);
	assert_int_equal(st.chunks, 100);
	assert_int_equal(st.slices, 100);
}

/* ---- checkpoints hold on to deleted slices ---- */

static uint64_t counter(struct meta *m, const char *name)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	uint64_t x = 0;

	assert_int_equal(kv_begin(meta_engine(m), false, &t), 0);
	if (kv_get(t, KV_COUNTER, name, strlen(name), &v) == 0)
		x = get_be64((const unsigned char *)v.data);
	kv_rollback(t);
	buf_release(&v);
	return x;
}

/* What repl_ckpt_create records: txnSeq S, nextSlice N; txnSeq = S+1. */
static void put_checkpoint(struct meta *m, const char *name)
{
	unsigned char rec[32] = {0}, seq[8];
	struct kv_txn *t;
	uint64_t s = counter(m, "txnSeq");

	put_be64(rec, s);
	put_be64(rec + 8, counter(m, "nextSlice"));
	put_be64(seq, s + 1);
	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_put(t, KV_CHECKPOINT, name, strlen(name), rec, 32),
			 0);
	assert_int_equal(kv_put(t, KV_COUNTER, "txnSeq", 6, seq, 8), 0);
	assert_int_equal(kv_commit(t), 0);
}

static void del_checkpoint(struct meta *m, const char *name)
{
	struct kv_txn *t;

	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_del(t, KV_CHECKPOINT, name, strlen(name)), 0);
	assert_int_equal(kv_commit(t), 0);
}

static void test_meta_delq_checkpoint(void **state)
{
	struct meta *m = FX_M(state);
	uint64_t before[3], gone[3], after[3];
	struct meta_slice_write w;
	uint64_t f;

	/* deleted before the checkpoint: not in it, free to go */
	data_file(m, R1, "gone", ROOT, 0644, gone);
	assert_int_equal(meta_unlink(m, ROOT, R1, "gone"), 0);
	data_file(m, R1, "old", ROOT, 0644, before);
	put_checkpoint(m, "c1");
	assert_int_equal(queue_len(m), 3);
	assert_true(is_queued(m, gone[0]));

	/* deleted after it: kept while c1 exists */
	assert_int_equal(meta_unlink(m, ROOT, R1, "old"), 0);
	for (int i = 0; i < 3; i++)
		assert_false(is_queued(m, before[i]));
	assert_int_equal(queue_len(m), 3);
	/* a slice newer than the checkpoint is not in it: free to go */
	f = fx_file(m, ROOT, R1, "new", 0644);
	after[0] = counter(m, "nextSlice") + 5;
	w = sw(0, 0, after[0], 10, 10);
	assert_int_equal(meta_write(m, f, &w, 1, 10, NULL), 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "new"), 0);
	assert_true(is_queued(m, after[0]));
	/* a small batch finds due slices behind kept ones (ids order) */
	for (int i = 0; i < 3; i++)
		assert_int_equal(meta_slice_deleted(m, gone[i]), 0);
	{
		struct meta_delslice *d = NULL;
		size_t n = 0;

		assert_int_equal(meta_pending_slices(m, 1, &d, &n), 0);
		assert_int_equal(n, 1);
		assert_int_equal(d[0].id, after[0]);
		free(d);
	}
	/* a checkpoint taken after the deletion does not hold it */
	put_checkpoint(m, "c2");
	assert_false(is_queued(m, before[0]));
	del_checkpoint(m, "c1");
	for (int i = 0; i < 3; i++)
		assert_true(is_queued(m, before[i]));
	assert_int_equal(queue_len(m), 4);
	del_checkpoint(m, "c2");
	assert_int_equal(queue_len(m), 4);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_meta_clone_file),   T(test_meta_clone_refcount),
		T(test_meta_clone_tree),   T(test_meta_clone_perm),
		T(test_meta_clone_counts), T(test_meta_delq_checkpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
