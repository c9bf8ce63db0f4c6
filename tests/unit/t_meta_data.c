/*
 * t_meta_data.c - the file -> slice map and deletion: meta_write,
 * meta_read_chunk, truncate through setattr, fallocate, the compaction
 * swap, the deletion queue after unlink, unlink while open, the trash and
 * statfs accounting with capacity and inode limits.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <linux/falloc.h>

#include "unit/meta_fixture.h"

#define C64 (64 * MiB)

static struct meta_slice_write sw(uint32_t chunk, uint32_t pos, uint64_t id,
				  uint32_t size, uint32_t off, uint32_t len)
{
	struct meta_slice_write w;

	w.chunk = chunk;
	w.s.pos = pos;
	w.s.id = id;
	w.s.size = size;
	w.s.off = off;
	w.s.len = len;
	return w;
}

static uint64_t new_id(struct meta *m)
{
	uint64_t id = 0;

	assert_int_equal(meta_new_slice_id(m, &id), 0);
	assert_true(id > 0);
	return id;
}

static size_t chunk_of(struct meta *m, uint64_t ino, uint32_t idx,
		       struct slice *out, size_t max)
{
	struct slice *s = NULL;
	size_t n = 99;

	assert_int_equal(meta_read_chunk(m, ino, idx, &s, &n), 0);
	assert_true(n <= max);
	if (n)
		memcpy(out, s, n * sizeof(*s));
	free(s);
	return n;
}

static void assert_slice(const struct slice *s, uint32_t pos, uint64_t id,
			 uint32_t size, uint32_t off, uint32_t len)
{
	assert_int_equal(s->pos, pos);
	assert_int_equal(s->id, id);
	assert_int_equal(s->size, size);
	assert_int_equal(s->off, off);
	assert_int_equal(s->len, len);
}

/* Size of slice @id in the deletion queue; 0 when absent. */
static uint32_t queued(struct meta *m, uint64_t id)
{
	struct meta_delslice *d = NULL;
	size_t n = 0;
	uint32_t size = 0;

	assert_int_equal(meta_pending_slices(m, 100000, &d, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (d[i].id == id)
			size = d[i].size;
	free(d);
	return size;
}

static size_t queue_len(struct meta *m)
{
	struct meta_delslice *d = NULL;
	size_t n = 0;

	assert_int_equal(meta_pending_slices(m, 100000, &d, &n), 0);
	free(d);
	return n;
}

static void set_size(struct meta *m, const struct meta_cred *c, uint64_t ino,
		     uint64_t len, int expect)
{
	struct meta_attr in, out;

	in.length = len;
	assert_int_equal(meta_setattr(m, c, ino, META_SET_SIZE, &in, &out),
			 expect);
	if (expect == 0)
		assert_int_equal(out.length, len);
}

/* ---- write / read ---- */

static void test_meta_write_read(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[3];
	struct meta_attr a0, a;
	struct slice s[8];
	uint64_t f, d, i1, i2, i3;

	f = fx_file(m, ROOT, R1, "f", 0644);
	d = fx_dir(m, ROOT, R1, "d", 0755);
	i1 = new_id(m);
	i2 = new_id(m);
	i3 = new_id(m);
	assert_true(i1 != i2 && i2 != i3);
	a0 = fx_get(m, f);
	fx_tick();
	w[0] = sw(0, 0, i1, 100, 0, 100);
	assert_int_equal(meta_write(m, f, w, 1, 100, &a), 0);
	assert_int_equal(a.length, 100);
	assert_true(a.mtime_ns > a0.mtime_ns);
	assert_true(a.ctime_ns > a0.ctime_ns);
	/* two chunks in one call; the later slice of chunk 0 comes last */
	w[0] = sw(0, 50, i2, 10, 0, 10);
	w[1] = sw(1, 0, i3, 8192, 4096, 5);
	w[2] = sw(0, 70, i2, 10, 2, 3);
	assert_int_equal(meta_write(m, f, w, 3, C64 + 5, &a), 0);
	assert_int_equal(a.length, C64 + 5);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 3);
	assert_slice(&s[0], 0, i1, 100, 0, 100);
	assert_slice(&s[1], 50, i2, 10, 0, 10);
	assert_slice(&s[2], 70, i2, 10, 2, 3);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 1);
	assert_slice(&s[0], 0, i3, 8192, 4096, 5);
	assert_int_equal(chunk_of(m, f, 2, s, 8), 0);
	/* the length never shrinks through a write */
	w[0] = sw(0, 0, i1, 100, 0, 1);
	assert_int_equal(meta_write(m, f, w, 1, 1, &a), 0);
	assert_int_equal(a.length, C64 + 5);
	assert_int_equal(fx_get(m, f).length, C64 + 5);
	/* errors */
	assert_int_equal(meta_write(m, d, w, 1, 1, &a), -EISDIR);
	assert_int_equal(meta_write(m, 77777, w, 1, 1, &a), -ENOENT);
	w[0] = sw(0, C64 - 10, i1, 100, 0, 11);
	assert_int_equal(meta_write(m, f, w, 1, C64 + 1, &a), -EINVAL);
	w[0] = sw(0, 0, i1, 100, 90, 11);
	assert_int_equal(meta_write(m, f, w, 1, 100, &a), -EINVAL);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 4);
}

/* ---- truncate ---- */

static void test_meta_truncate(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[3];
	struct meta_attr a;
	struct slice s[8];
	uint64_t f, A, B, Cc;

	f = fx_file(m, ALICE, fx_dir(m, ROOT, R1, "d", 0777), "f", 0644);
	A = new_id(m);
	B = new_id(m);
	Cc = new_id(m);
	w[0] = sw(0, 0, A, C64, 0, C64);
	w[1] = sw(1, 0, B, 1 * MiB, 0, 1 * MiB);
	w[2] = sw(2, 0, Cc, 100, 0, 100);
	assert_int_equal(meta_write(m, f, w, 3, 2 * C64 + 100, &a), 0);
	assert_int_equal(queue_len(m), 0);
	set_size(m, BOB, f, 10, -EACCES);
	/* down into chunk 1: chunk 2 goes, chunk 1's tail turns to zeros */
	set_size(m, ALICE, f, C64 + 1000, 0);
	assert_int_equal(chunk_of(m, f, 2, s, 8), 0);
	assert_int_equal(queued(m, Cc), 100);
	assert_int_equal(queued(m, B), 0);
	assert_int_equal(queued(m, A), 0);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 2);
	assert_slice(&s[0], 0, B, 1 * MiB, 0, 1 * MiB);
	assert_slice(&s[1], 1000, 0, C64 - 1000, 0, C64 - 1000);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 1);
	/* up: only the length */
	set_size(m, ALICE, f, 3 * C64, 0);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 2);
	assert_int_equal(chunk_of(m, f, 2, s, 8), 0);
	/* down to a chunk boundary: nothing to hide in chunk 0 */
	set_size(m, ALICE, f, C64, 0);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 0);
	assert_int_equal(queued(m, B), 1 * MiB);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 1);
	/* a partial cut that stays inside the old length */
	set_size(m, ALICE, f, 100, 0);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 2);
	assert_slice(&s[1], 100, 0, C64 - 100, 0, C64 - 100);
	assert_int_equal(queued(m, A), 0);
	set_size(m, ALICE, f, 0, 0);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 0);
	assert_int_equal(queued(m, A), C64);
	assert_int_equal(queue_len(m), 3);
	assert_int_equal(fx_get(m, f).length, 0);
}

static void test_meta_truncate_small_tail(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w;
	struct meta_attr a;
	struct slice s[4];
	uint64_t f, id;

	f = fx_file(m, ROOT, R1, "f", 0644);
	id = new_id(m);
	w = sw(0, 0, id, 5000, 0, 5000);
	assert_int_equal(meta_write(m, f, &w, 1, 5000, &a), 0);
	set_size(m, ROOT, f, 1000, 0);
	/* zeros cover exactly the cut part [1000, 5000) */
	assert_int_equal(chunk_of(m, f, 0, s, 4), 2);
	assert_slice(&s[1], 1000, 0, 4000, 0, 4000);
	set_size(m, ROOT, f, 9000, 0);
	assert_int_equal(chunk_of(m, f, 0, s, 4), 2);
	assert_int_equal(queued(m, id), 0);
}

/* ---- fallocate ---- */

static void test_meta_fallocate(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[2];
	struct meta_attr a;
	struct slice s[8];
	uint64_t f, d, id, id2;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	f = fx_file(m, ALICE, d, "f", 0644);
	assert_int_equal(meta_fallocate(m, ALICE, f, 0, 0, 1000), 0);
	assert_int_equal(fx_get(m, f).length, 1000);
	assert_int_equal(
	    meta_fallocate(m, ALICE, f, FALLOC_FL_KEEP_SIZE, 0, 5000), 0);
	assert_int_equal(fx_get(m, f).length, 1000);
	assert_int_equal(meta_fallocate(m, ALICE, f, 0, 500, 100), 0);
	assert_int_equal(fx_get(m, f).length, 1000);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 0);
	/* mode errors */
	assert_int_equal(
	    meta_fallocate(m, ALICE, f, FALLOC_FL_PUNCH_HOLE, 0, 10),
	    -EOPNOTSUPP);
	assert_int_equal(meta_fallocate(m, ALICE, f,
					FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_ZERO_RANGE |
					    FALLOC_FL_KEEP_SIZE,
					0, 10),
			 -EINVAL);
	assert_int_equal(
	    meta_fallocate(m, ALICE, f, FALLOC_FL_COLLAPSE_RANGE, 0, 4096),
	    -EOPNOTSUPP);
	assert_int_equal(meta_fallocate(m, ALICE, f, 0, 0, 0), -EINVAL);
	assert_int_equal(meta_fallocate(m, ALICE, d, 0, 0, 10), -EISDIR);
	assert_int_equal(meta_fallocate(m, BOB, f, 0, 0, 10), -EACCES);
	assert_int_equal(meta_mknod(m, ALICE, d, "p", S_IFIFO | 0666, 0, &a),
			 0);
	assert_int_equal(meta_fallocate(m, ALICE, a.ino, 0, 0, 10), -ESPIPE);
	/* punch a hole across a chunk boundary */
	id = new_id(m);
	id2 = new_id(m);
	w[0] = sw(0, 0, id, C64, 0, C64);
	w[1] = sw(1, 0, id2, 100, 0, 100);
	assert_int_equal(meta_write(m, f, w, 2, C64 + 100, &a), 0);
	assert_int_equal(
	    meta_fallocate(m, ALICE, f,
			   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, C64 - 10,
			   20),
	    0);
	assert_int_equal(fx_get(m, f).length, C64 + 100);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 2);
	assert_slice(&s[1], C64 - 10, 0, 10, 0, 10);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 2);
	assert_slice(&s[1], 0, 0, 10, 0, 10);
	/* past the end: nothing to zero */
	assert_int_equal(
	    meta_fallocate(m, ALICE, f,
			   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			   C64 + 200, 1000),
	    0);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 2);
	/* zero range that extends: zeros only inside the old length */
	assert_int_equal(
	    meta_fallocate(m, ALICE, f, FALLOC_FL_ZERO_RANGE, C64 + 50, 1000),
	    0);
	assert_int_equal(fx_get(m, f).length, C64 + 1050);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 3);
	assert_slice(&s[2], 50, 0, 50, 0, 50);
	/* zero range with KEEP_SIZE keeps the length */
	assert_int_equal(
	    meta_fallocate(m, ALICE, f,
			   FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			   C64 + 1000, 5000),
	    0);
	assert_int_equal(fx_get(m, f).length, C64 + 1050);
	assert_int_equal(chunk_of(m, f, 1, s, 8), 4);
	assert_slice(&s[3], 1000, 0, 50, 0, 50);
	assert_int_equal(queue_len(m), 0);
}

/* ---- compaction ---- */

static void test_meta_compact(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[3];
	struct meta_attr a;
	struct slice s[8], old[8], repl;
	uint64_t f, s1, s2, s3, s4;
	size_t n;

	f = fx_file(m, ROOT, R1, "f", 0644);
	s1 = new_id(m);
	s2 = new_id(m);
	s3 = new_id(m);
	s4 = new_id(m);
	/* s1 appears twice after a partial overwrite by s2 */
	w[0] = sw(0, 0, s1, 100, 0, 50);
	w[1] = sw(0, 50, s2, 10, 0, 10);
	w[2] = sw(0, 60, s1, 100, 60, 40);
	assert_int_equal(meta_write(m, f, w, 3, 100, &a), 0);
	n = chunk_of(m, f, 0, old, 8);
	assert_int_equal(n, 3);
	repl.pos = 0;
	repl.id = s3;
	repl.size = 100;
	repl.off = 0;
	repl.len = 100;
	/* a list that changed since it was read: -ESTALE, nothing moves */
	assert_int_equal(meta_compact(m, f, 0, old, 2, &repl), -ESTALE);
	old[1].len = 9;
	assert_int_equal(meta_compact(m, f, 0, old, 3, &repl), -ESTALE);
	old[1].len = 10;
	assert_int_equal(meta_compact(m, f, 1, old, 3, &repl), -ESTALE);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 3);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(meta_compact(m, f, 0, old, 3, &repl), 0);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 1);
	assert_slice(&s[0], 0, s3, 100, 0, 100);
	assert_int_equal(queued(m, s1), 100);
	assert_int_equal(queued(m, s2), 10);
	assert_int_equal(queue_len(m), 2);
	/* a write after the read makes the swap stale */
	n = chunk_of(m, f, 0, old, 8);
	w[0] = sw(0, 0, s4, 1, 0, 1);
	assert_int_equal(meta_write(m, f, w, 1, 100, &a), 0);
	repl.id = new_id(m);
	assert_int_equal(meta_compact(m, f, 0, old, n, &repl), -ESTALE);
	assert_int_equal(chunk_of(m, f, 0, s, 8), 2);
	assert_int_equal(queued(m, s3), 0);
	assert_int_equal(meta_slice_deleted(m, s1), 0);
	assert_int_equal(queued(m, s1), 0);
	assert_int_equal(queue_len(m), 1);
}

/* ---- allocation (st_blocks) ---- */

/*
 * a.alloc follows every change of the slice map exactly: new data adds
 * only what no data covered, overwrites add nothing, holes (punch, zero
 * range, truncate) take away what they hide, and compaction counts the
 * holes its one slice stores as zeros.
 */
static void test_meta_alloc(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[2];
	struct meta_attr a;
	struct slice old[8], repl;
	uint64_t f;
	size_t n;

	f = fx_file(m, ROOT, R1, "f", 0644);
	assert_int_equal(fx_get(m, f).alloc, 0);
	/* a sparse file: length alone allocates nothing */
	set_size(m, ROOT, f, 2 * C64, 0);
	assert_int_equal(fx_get(m, f).alloc, 0);
	w[0] = sw(0, 0, new_id(m), 1000, 0, 1000);
	assert_int_equal(meta_write(m, f, w, 1, 1000, &a), 0);
	assert_int_equal(a.alloc, 1000);
	/* overlapping overwrite: [0, 1500) */
	w[0] = sw(0, 500, new_id(m), 1000, 0, 1000);
	assert_int_equal(meta_write(m, f, w, 1, 1500, &a), 0);
	assert_int_equal(a.alloc, 1500);
	/* the same bytes again: nothing new */
	w[0] = sw(0, 100, new_id(m), 50, 0, 50);
	assert_int_equal(meta_write(m, f, w, 1, 1500, &a), 0);
	assert_int_equal(a.alloc, 1500);
	/* two chunks in one write, one of them far away */
	w[0] = sw(2, 100, new_id(m), 4096, 0, 4096);
	w[1] = sw(0, 1400, new_id(m), 200, 0, 200);
	assert_int_equal(meta_write(m, f, w, 2, 2 * C64 + 4196, &a), 0);
	assert_int_equal(a.alloc, 1600 + 4096);
	/* punch [200, 700), refill [300, 400) */
	assert_int_equal(
		meta_fallocate(m, ROOT, f,
			       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 200,
			       500),
		0);
	assert_int_equal(fx_get(m, f).alloc, 1100 + 4096);
	w[0] = sw(0, 300, new_id(m), 100, 0, 100);
	assert_int_equal(meta_write(m, f, w, 1, 0, &a), 0);
	assert_int_equal(a.alloc, 1200 + 4096);
	/* zero range over a hole and data: only the data counts */
	assert_int_equal(
		meta_fallocate(m, ROOT, f, FALLOC_FL_ZERO_RANGE, 2 * C64, 196),
		0);
	assert_int_equal(fx_get(m, f).alloc, 1200 + 4000);
	/* truncate drops chunk 2, then hides [1000, 1600) of chunk 0 */
	set_size(m, ROOT, f, 2 * C64, 0);
	assert_int_equal(fx_get(m, f).alloc, 1200);
	set_size(m, ROOT, f, 1000, 0);
	assert_int_equal(fx_get(m, f).alloc, 600);
	set_size(m, ROOT, f, C64 + 10, 0);
	assert_int_equal(fx_get(m, f).alloc, 600);
	/* compaction stores chunk 0 as one slice [0, 1000): holes included */
	n = chunk_of(m, f, 0, old, 8);
	repl.pos = 0;
	repl.id = new_id(m);
	repl.size = repl.len = 1000;
	repl.off = 0;
	assert_int_equal(meta_compact(m, f, 0, old, n, &repl), 0);
	assert_int_equal(fx_get(m, f).alloc, 1000);
	set_size(m, ROOT, f, 0, 0);
	assert_int_equal(fx_get(m, f).alloc, 0);
}

/* Cut @ino's inode record to the 77 bytes written before a.alloc. */
static void make_old_record(struct meta *m, uint64_t ino)
{
	struct buf v = BUF_INIT;
	struct kv_txn *t;
	unsigned char k[8];

	put_be64(k, ino);
	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_get(t, KV_INODE, k, sizeof(k), &v), 0);
	assert_true(v.len > 77);
	assert_int_equal(kv_put(t, KV_INODE, k, sizeof(k), v.data, 77), 0);
	assert_int_equal(kv_commit(t), 0);
	buf_release(&v);
}

/* A record of before shows its length until a truncate to 0. */
static void test_meta_alloc_old_record(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[1];
	struct meta_attr a;
	uint64_t f;

	f = fx_file(m, ROOT, R1, "f", 0644);
	w[0] = sw(0, 0, new_id(m), 1000, 0, 1000);
	assert_int_equal(meta_write(m, f, w, 1, 1000, &a), 0);
	set_size(m, ROOT, f, 5000, 0);
	assert_int_equal(fx_get(m, f).alloc, 1000);
	make_old_record(m, f);
	a = fx_get(m, f);
	assert_int_equal(a.length, 5000);
	assert_int_equal(a.alloc, 5000);
	w[0] = sw(0, 2000, new_id(m), 10, 0, 10);
	assert_int_equal(meta_write(m, f, w, 1, 6000, &a), 0);
	assert_int_equal(a.alloc, 6000);
	set_size(m, ROOT, f, 0, 0);
	assert_int_equal(fx_get(m, f).alloc, 0);
	w[0] = sw(0, 100, new_id(m), 10, 0, 10);
	assert_int_equal(meta_write(m, f, w, 1, 110, &a), 0);
	assert_int_equal(a.alloc, 10);
	assert_int_equal(fx_get(m, f).alloc, 10);
}

/* ---- deletion ---- */

static void write_two_chunks(struct meta *m, uint64_t f, uint64_t *ids)
{
	struct meta_slice_write w[3];
	struct meta_attr a;

	ids[0] = new_id(m);
	ids[1] = new_id(m);
	ids[2] = new_id(m);
	w[0] = sw(0, 0, ids[0], 4096, 0, 4096);
	w[1] = sw(0, 10, ids[1], 20, 0, 20);
	w[2] = sw(1, 0, ids[2], 300, 0, 300);
	assert_int_equal(meta_write(m, f, w, 3, C64 + 300, &a), 0);
}

static void test_meta_unlink_queues_slices(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_statfs st0, st1;
	struct slice s[4];
	uint64_t f, g, ids[3];

	assert_int_equal(meta_statfs(m, &st0), 0);
	f = fx_file(m, ROOT, R1, "f", 0644);
	write_two_chunks(m, f, ids);
	g = fx_file(m, ROOT, R1, "g", 0644);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "f"), 0);
	assert_int_equal(queued(m, ids[0]), 4096);
	assert_int_equal(queued(m, ids[1]), 20);
	assert_int_equal(queued(m, ids[2]), 300);
	assert_int_equal(queue_len(m), 3);
	assert_int_equal(chunk_of(m, f, 0, s, 4), 0);
	assert_int_equal(chunk_of(m, f, 1, s, 4), 0);
	assert_int_equal(meta_statfs(m, &st1), 0);
	assert_int_equal(st1.used_inodes, st0.used_inodes + 1);
	assert_true(st1.avail_space == st0.avail_space);
	for (int i = 0; i < 3; i++)
		assert_int_equal(meta_slice_deleted(m, ids[i]), 0);
	assert_int_equal(queue_len(m), 0);
	/* cleanup has nothing left to do */
	assert_int_equal(meta_cleanup(m), 0);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(fx_get(m, g).nlink, 1);
}

/*
 * A file of many chunks is purged after the unlink txn (KV_DELFILE); a
 * small one inside it: both must leave every slice queued exactly once
 * and no chunk record behind.
 */
static void test_meta_unlink_large_queues_slices(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[12];
	struct meta_attr a;
	struct slice s[4];
	uint64_t f, ids[12];

	f = fx_file(m, ROOT, R1, "big", 0644);
	for (uint32_t i = 0; i < 12; i++) {
		ids[i] = new_id(m);
		w[i] = sw(i, 0, ids[i], 100 + i, 0, 100 + i);
	}
	assert_int_equal(meta_write(m, f, w, 12, 11 * C64 + 111, &a), 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "big"), 0);
	assert_int_equal(queue_len(m), 12);
	for (uint32_t i = 0; i < 12; i++) {
		assert_int_equal(queued(m, ids[i]), 100 + i);
		assert_int_equal(chunk_of(m, f, i, s, 4), 0);
	}
	assert_int_equal(meta_cleanup(m), 0);
	assert_int_equal(queue_len(m), 12);
}

static int add_name_any(void *arg, const struct meta_dirent *d)
{
	(void)arg;
	(void)d;
	return 0;
}

static void test_meta_unlink_while_open(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w;
	struct meta_attr a;
	struct slice s[4];
	uint64_t f, g, ids[3];

	f = fx_file(m, ROOT, R1, "f", 0644);
	write_two_chunks(m, f, ids);
	meta_open_file(m, f);
	meta_open_file(m, f);
	assert_int_equal(meta_unlink(m, ROOT, R1, "f"), 0);
	assert_int_equal(meta_lookup(m, ROOT, R1, "f", &a), -ENOENT);
	a = fx_get(m, f);
	assert_int_equal(a.nlink, 0);
	assert_int_equal(a.length, C64 + 300);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(chunk_of(m, f, 1, s, 4), 1);
	/* the open file still takes writes and refuses new links */
	w = sw(0, 0, new_id(m), 5, 0, 5);
	assert_int_equal(meta_write(m, f, &w, 1, 5, &a), 0);
	assert_int_equal(meta_link(m, ROOT, f, R1, "back", &a), -ENOENT);
	assert_int_equal(meta_close_file(m, f), 0);
	assert_int_equal(fx_get(m, f).nlink, 0);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(meta_close_file(m, f), 0);
	assert_int_equal(meta_getattr(m, f, &a), -ENOENT);
	assert_int_equal(queue_len(m), 4);
	assert_int_equal(queued(m, w.s.id), 5);
	/* a file replaced by rename while open is kept the same way */
	g = fx_file(m, ROOT, R1, "g", 0644);
	fx_file(m, ROOT, R1, "h", 0644);
	meta_open_file(m, g);
	assert_int_equal(meta_rename(m, ROOT, R1, "h", R1, "g", 0), 0);
	assert_int_equal(fx_get(m, g).nlink, 0);
	assert_int_equal(meta_close_file(m, g), 0);
	assert_int_equal(meta_getattr(m, g, &a), -ENOENT);
	/* a directory removed while open (opendir) stays until closed */
	g = fx_dir(m, ROOT, R1, "dir", 0755);
	meta_open_file(m, g);
	assert_int_equal(meta_rmdir(m, ROOT, R1, "dir"), 0);
	a = fx_get(m, g);
	assert_true(S_ISDIR(a.mode));
	assert_int_equal(a.nlink, 0);
	assert_int_equal(meta_mknod(m, ROOT, g, "x", S_IFREG | 0644, 0, &a),
			 -ENOENT);
	assert_int_equal(meta_lookup(m, ROOT, g, "x", &a), -ENOENT);
	assert_int_equal(meta_rename(m, ROOT, R1, "g", g, "x", 0), -ENOENT);
	assert_int_equal(meta_readdir(m, ROOT, g, 0, 0, add_name_any, NULL),
			 -ENOENT);
	assert_int_equal(meta_close_file(m, g), 0);
	assert_int_equal(meta_getattr(m, g, &a), -ENOENT);
	/* closing what was never opened is harmless */
	assert_int_equal(meta_close_file(m, 123456), 0);
}

/*
 * Kernel references keep a rename's victim (not an unlink's) until the
 * last forget; forgets and closes in any order; many inodes (the table
 * grows).
 */
static void test_meta_rename_kernel_ref(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_attr a;
	uint64_t f, g, d, ino[3000];

	f = fx_file(m, ROOT, R1, "f", 0644);
	fx_file(m, ROOT, R1, "t", 0644);
	meta_ref_inode(m, f, 2);
	assert_int_equal(meta_rename(m, ROOT, R1, "t", R1, "f", 0), 0);
	a = fx_get(m, f);
	assert_int_equal(a.nlink, 0);
	assert_int_equal(meta_forget_inode(m, f, 1), 0);
	assert_int_equal(fx_get(m, f).nlink, 0);
	/* open and referenced: both must let go, in either order */
	meta_open_file(m, f);
	assert_int_equal(meta_forget_inode(m, f, 1), 0);
	assert_int_equal(fx_get(m, f).nlink, 0);
	assert_int_equal(meta_close_file(m, f), 0);
	assert_int_equal(meta_getattr(m, f, &a), -ENOENT);
	/* an unlink deletes a referenced inode at once unless open */
	g = fx_file(m, ROOT, R1, "g", 0644);
	meta_ref_inode(m, g, 1);
	assert_int_equal(meta_unlink(m, ROOT, R1, "g"), 0);
	assert_int_equal(meta_getattr(m, g, &a), -ENOENT);
	assert_int_equal(meta_forget_inode(m, g, 1), 0);
	/* a replaced empty directory the kernel holds is kept too */
	d = fx_dir(m, ROOT, R1, "d", 0755);
	fx_dir(m, ROOT, R1, "e", 0755);
	meta_ref_inode(m, d, 1);
	assert_int_equal(meta_rename(m, ROOT, R1, "e", R1, "d", 0), 0);
	assert_int_equal(fx_get(m, d).nlink, 0);
	assert_int_equal(meta_forget_inode(m, d, 5), 0); /* more than held */
	assert_int_equal(meta_getattr(m, d, &a), -ENOENT);
	/* the table grows past thousands of inodes and keeps every count */
	f = fx_file(m, ROOT, R1, "k", 0644);
	fx_file(m, ROOT, R1, "l", 0644);
	for (size_t i = 0; i < 3000; i++) {
		ino[i] = 1000000 + i * 7919;
		meta_ref_inode(m, ino[i], 1);
		if (i == 10)
			meta_ref_inode(m, f, 1);
	}
	assert_int_equal(meta_forget_inode(m, 42424242, 1), 0);
	assert_int_equal(meta_rename(m, ROOT, R1, "l", R1, "k", 0), 0);
	for (size_t i = 0; i < 3000; i++)
		assert_int_equal(meta_forget_inode(m, ino[i], 1), 0);
	assert_int_equal(fx_get(m, f).nlink, 0);
	assert_int_equal(meta_forget_inode(m, f, 1), 0);
	assert_int_equal(meta_getattr(m, f, &a), -ENOENT);
}

/* ---- trash ---- */

struct names {
	char v[8][256];
	uint64_t ino[8];
	size_t n;
};

static int add_name(void *arg, const struct meta_dirent *d)
{
	struct names *l = arg;

	if (strcmp(d->name, ".") == 0 || strcmp(d->name, "..") == 0)
		return 0;
	assert_true(l->n < 8);
	snprintf(l->v[l->n], sizeof(l->v[0]), "%s", d->name);
	l->ino[l->n++] = d->ino;
	return 0;
}

static void test_meta_trash(void **state)
{
	struct fx *x = *state;
	struct meta *m = x->m;
	struct meta_format fmt;
	struct names l = {0};
	struct meta_attr a;
	char want[64];
	uint64_t d, f, h, ids[3];
	long long secs;

	d = fx_dir(m, ROOT, R1, "d", 0755);
	f = fx_file(m, ROOT, d, "precious", 0644);
	write_two_chunks(m, f, ids);
	assert_int_equal(meta_unlink(m, ROOT, d, "precious"), 0);
	assert_int_equal(meta_lookup(m, ROOT, d, "precious", &a), -ENOENT);
	a = fx_get(m, f);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(queue_len(m), 0);
	assert_int_equal(
	    meta_readdir(m, ROOT, META_TRASH_INO, 0, 0, add_name, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ino[0], f);
	snprintf(want, sizeof(want), "%llu-%llu-", (unsigned long long)d,
		 (unsigned long long)f);
	assert_memory_equal(l.v[0], want, strlen(want));
	secs = atoll(l.v[0] + strlen(want));
	assert_true(secs > 1600000000LL);
	assert_non_null(strstr(l.v[0], "-precious"));
	/* the root does not list it */
	memset(&l, 0, sizeof(l));
	assert_int_equal(meta_readdir(m, ROOT, R1, 0, 0, add_name, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "d");
	/* a name of a file with more links, and directories, skip it */
	h = fx_file(m, ROOT, d, "h", 0644);
	assert_int_equal(meta_link(m, ROOT, h, d, "h2", &a), 0);
	assert_int_equal(meta_unlink(m, ROOT, d, "h"), 0);
	fx_dir(m, ROOT, d, "sub", 0755);
	assert_int_equal(meta_rmdir(m, ROOT, d, "sub"), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(
	    meta_readdir(m, ROOT, META_TRASH_INO, 0, 0, add_name, &l), 0);
	assert_int_equal(l.n, 1);
	/* not expired after a day... */
	assert_int_equal(meta_cleanup(m), 0);
	assert_int_equal(fx_get(m, f).nlink, 1);
	/* ...but at once with trash_days 0 */
	assert_int_equal(meta_load_format(m, &fmt), 0);
	fmt.trash_days = 0;
	assert_int_equal(meta_store_format(m, &fmt), 0);
	assert_int_equal(meta_cleanup(m), 0);
	assert_int_equal(meta_getattr(m, f, &a), -ENOENT);
	assert_int_equal(queued(m, ids[0]), 4096);
	assert_int_equal(queue_len(m), 3);
	memset(&l, 0, sizeof(l));
	assert_int_equal(
	    meta_readdir(m, ROOT, META_TRASH_INO, 0, 0, add_name, &l), 0);
	assert_int_equal(l.n, 0);
	/* with trash_days 0 an unlink deletes directly */
	assert_int_equal(meta_unlink(m, ROOT, d, "h2"), 0);
	assert_int_equal(meta_getattr(m, h, &a), -ENOENT);
}

static void test_meta_trash_restore(void **state)
{
	struct meta *m = FX_M(state);
	struct names l = {0};
	struct meta_attr a;
	uint64_t d, f;

	d = fx_dir(m, ROOT, R1, "d", 0777);
	f = fx_file(m, ALICE, d, "f", 0644);
	assert_int_equal(meta_unlink(m, ALICE, d, "f"), 0);
	assert_int_equal(
	    meta_readdir(m, ROOT, META_TRASH_INO, 0, 0, add_name, &l), 0);
	assert_int_equal(l.n, 1);
	/* the trash is root's; moving an entry back out restores it */
	assert_int_equal(
	    meta_rename(m, ALICE, META_TRASH_INO, l.v[0], R1, "back", 0),
	    -EACCES);
	assert_int_equal(
	    meta_rename(m, ROOT, META_TRASH_INO, l.v[0], R1, "back", 0), 0);
	assert_int_equal(meta_lookup(m, ROOT, R1, "back", &a), 0);
	assert_int_equal(a.ino, f);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(meta_cleanup(m), 0);
	assert_int_equal(fx_get(m, f).nlink, 1);
}

/* ---- statfs ---- */

static int fx_setup_small(void **state)
{
	return fx_setup_with(state, 0, 1 * MiB, 6);
}

static void test_meta_statfs_limits(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w;
	struct meta_statfs st;
	struct meta_attr a;
	uint64_t f;
	char name[16];

	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.total_space, 1 * MiB);
	assert_int_equal(st.avail_space, 1 * MiB);
	assert_int_equal(st.used_inodes, 0);
	assert_int_equal(st.avail_inodes, 6);
	f = fx_file(m, ROOT, R1, "f", 0644);
	fx_dir(m, ROOT, R1, "d", 0755);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, 2);
	assert_int_equal(st.avail_inodes, 4);
	assert_int_equal(st.avail_space, 1 * MiB - 4096);
	/* usage is the length rounded up to 4 KiB */
	w = sw(0, 0, new_id(m), 5000, 0, 5000);
	assert_int_equal(meta_write(m, f, &w, 1, 5000, &a), 0);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.avail_space, 1 * MiB - 4096 - 8192);
	w = sw(0, 0, new_id(m), 4096, 0, 4096);
	assert_int_equal(meta_write(m, f, &w, 1, 1 * MiB, &a), -ENOSPC);
	set_size(m, ROOT, f, 2 * MiB, -ENOSPC);
	assert_int_equal(meta_fallocate(m, ROOT, f, 0, 0, 2 * MiB), -ENOSPC);
	assert_int_equal(fx_get(m, f).length, 5000);
	set_size(m, ROOT, f, 1 * MiB - 4096, 0);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.avail_space, 0);
	set_size(m, ROOT, f, 100, 0);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.avail_space, 1 * MiB - 4096 - 4096);
	/* inode limit */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		fx_file(m, ROOT, R1, name, 0644);
	}
	assert_int_equal(meta_mknod(m, ROOT, R1, "x", S_IFREG | 0644, 0, &a),
			 -ENOSPC);
	assert_int_equal(meta_mkdir(m, ROOT, R1, "x", 0755, &a), -ENOSPC);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, 6);
	assert_int_equal(st.avail_inodes, 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "n0"), 0);
	assert_int_equal(meta_mknod(m, ROOT, R1, "x", S_IFREG | 0644, 0, &a),
			 0);
	assert_int_equal(meta_unlink(m, ROOT, R1, "f"), 0);
	assert_int_equal(meta_rmdir(m, ROOT, R1, "d"), 0);
	assert_int_equal(meta_statfs(m, &st), 0);
	assert_int_equal(st.used_inodes, 4);
	assert_int_equal(st.avail_space, 1 * MiB);
}

static void test_meta_statfs_persists(void **state)
{
	struct fx *x = *state;
	struct meta_statfs st;

	fx_file(x->m, ROOT, R1, "a", 0644);
	fx_file(x->m, ROOT, R1, "b", 0644);
	fx_dir(x->m, ROOT, R1, "c", 0755);
	/* counters survive a reopen (close flushes them) */
	meta_close(x->m);
	assert_int_equal(meta_open(x->url, &x->m), 0);
	assert_int_equal(meta_statfs(x->m, &st), 0);
	assert_int_equal(st.used_inodes, 3);
	assert_true(st.total_space > 1ULL << 40);
	assert_int_equal(st.total_space - st.avail_space, 4096);
}

/* ---- heads of small files (readahead across files) ---- */

static void test_meta_read_heads(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_slice_write w[2];
	struct meta_head h[8];
	uint64_t a, b, c, d, e, dir, id[6];
	size_t n = 99;

	a = fx_file(m, ROOT, R1, "a", 0644);	/* one small slice: yes */
	dir = fx_dir(m, ROOT, R1, "dir", 0755); /* a directory: no */
	b = fx_file(m, ROOT, R1, "b", 0644);	/* two slices: no */
	c = fx_file(m, ROOT, R1, "c", 0644);	/* empty: no */
	d = fx_file(m, ROOT, R1, "d", 0644);	/* crosses a block: no */
	e = fx_file(m, ROOT, R1, "e", 0644);	/* tail of a slice: yes */
	assert_true(a < dir && dir < b && b < c && c < d && d < e);
	for (int i = 0; i < 6; i++)
		id[i] = new_id(m);
	w[0] = sw(0, 0, id[0], 5000, 0, 5000);
	assert_int_equal(meta_write(m, a, w, 1, 5000, NULL), 0);
	w[0] = sw(0, 0, id[1], 100, 0, 100);
	w[1] = sw(0, 50, id[2], 100, 0, 100);
	assert_int_equal(meta_write(m, b, w, 2, 150, NULL), 0);
	w[0] = sw(0, 0, id[3], 3 * MiB, MiB, 2 * MiB); /* bs 1 MiB: 2 blocks */
	assert_int_equal(meta_write(m, d, w, 1, 2 * MiB, NULL), 0);
	w[0] = sw(0, 0, id[4], 2 * MiB, MiB + 10, 20);
	assert_int_equal(meta_write(m, e, w, 1, 20, NULL), 0);

	assert_int_equal(meta_read_heads(m, a, e, MiB, h, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].ino, a);
	assert_slice(&h[0].s, 0, id[0], 5000, 0, 5000);
	assert_int_equal(h[1].ino, e);
	assert_slice(&h[1].s, 0, id[4], 2 * MiB, MiB + 10, 20);
	/* the range and the bound are kept */
	assert_int_equal(meta_read_heads(m, a + 1, e - 1, MiB, h, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_read_heads(m, a, e, MiB, h, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].ino, a);
	assert_int_equal(meta_read_heads(m, e, a, MiB, h, 8, &n), 0);
	assert_int_equal(n, 0);
	/* d qualifies once its slice lies in one block of a bigger size */
	assert_int_equal(meta_read_heads(m, d, d, 4 * MiB, h, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(h[0].ino, d);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define TT(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_trash, fx_teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_small, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_meta_write_read),
		T(test_meta_truncate),
		T(test_meta_truncate_small_tail),
		T(test_meta_fallocate),
		T(test_meta_compact),
		T(test_meta_alloc),
		T(test_meta_alloc_old_record),
		T(test_meta_unlink_queues_slices),
		T(test_meta_unlink_large_queues_slices),
		T(test_meta_unlink_while_open),
	T(test_meta_rename_kernel_ref),
		TT(test_meta_trash),
		TT(test_meta_trash_restore),
		TS(test_meta_statfs_limits),
		T(test_meta_statfs_persists),
		T(test_meta_read_heads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
