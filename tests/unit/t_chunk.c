/*
 * t_chunk.c - the data path: slice writers, block objects, the read path
 * over overlapping slices, verification of fetched blocks, the memory
 * bound, shared fetches and readahead.
 *
 * Each test gets a fresh file:// store in a temp dir, wrapped in a "spy"
 * store that counts GETs per key and can fail or slow down puts.  Blocks
 * are 64 KiB so slices span several blocks cheaply.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk/chunk.h"
#include "chunk/chunk_int.h"
#include "object/frame.h"
#include "object/object.h"
#include "unit/spy_store.h"

#define BS (64 * 1024)

/* ---- fixture ---- */

struct fx {
	char dir[64];
	struct obj_store *fs;
	struct spy spy;
	struct chunk_store *cs;
	struct chunk_conf conf;
};

static int rm_cb(const char *path, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char url[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/tessera-tchunk-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(url, sizeof(url), "file://%s/", f->dir);
	if (obj_open(url, false, &f->fs) < 0)
		return -1;
	spy_init(&f->spy, f->fs);
	f->conf.volname = "vol";
	f->conf.block_size = BS;
	f->conf.buffer_size = 4 * MiB;
	f->conf.max_uploads = 4;
	f->conf.max_readahead = 0;
	*state = f;
	return 0;
}

static void fx_start(struct fx *f)
{
	assert_int_equal(chunk_store_new(&f->spy.base, &f->conf, &f->cs), 0);
	f->cs->backoff_ms = 1; /* retries, without the waiting */
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	chunk_store_free(f->cs);
	obj_close(f->fs);
	spy_release(&f->spy);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Deterministic bytes of slice @id at slice offset @off. */
static unsigned char byte_of(uint64_t id, uint64_t off)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ULL + off * 0xbf58476d1ce4e5b9ULL;

	x ^= x >> 29;
	return (unsigned char)(x ^ (x >> 11));
}

static unsigned char *slice_bytes(uint64_t id, uint32_t size)
{
	unsigned char *p = malloc(size ? size : 1);

	for (uint32_t i = 0; i < size; i++)
		p[i] = byte_of(id, i);
	return p;
}

/* Write slice @id of @size bytes in pieces of @step; finish. */
static void write_slice(struct fx *f, uint64_t id, uint32_t size, uint32_t step)
{
	unsigned char *p = slice_bytes(id, size);
	struct chunk_writer *w;

	assert_int_equal(chunk_writer_new(f->cs, id, &w), 0);
	for (uint32_t off = 0; off < size; off += step) {
		uint32_t n = MIN(step, size - off);

		assert_int_equal(chunk_writer_write(w, off, p + off, n), n);
	}
	assert_int_equal(chunk_writer_len(w), size);
	assert_int_equal(chunk_writer_id(w), id);
	assert_int_equal(chunk_writer_finish(w), 0);
	chunk_writer_free(w);
	free(p);
}

static void obj_path(struct fx *f, uint64_t id, uint32_t index, uint32_t len,
		     char *out, size_t n)
{
	char key[CHUNK_KEY_MAX];

	chunk_block_key(f->cs, id, index, len, key, sizeof(key));
	snprintf(out, n, "%s/%s", f->dir, key);
}

static struct slice rec(uint32_t pos, uint64_t id, uint32_t size, uint32_t off,
			uint32_t len)
{
	return (struct slice){pos, id, size, off, len};
}

/* ---- tests ---- */

static void test_chunk_key(void **state)
{
	struct fx *f = *state;
	char key[CHUNK_KEY_MAX];

	fx_start(f);
	chunk_block_key(f->cs, 1234567, 3, 65536, key, sizeof(key));
	assert_string_equal(key, "vol/chunks/1/1234/1234567_3_65536");
	chunk_block_key(f->cs, 7, 0, 10, key, sizeof(key));
	assert_string_equal(key, "vol/chunks/0/0/7_0_10");
}

/* chunk_key and chunk_key_parse round trip; anything else is refused. */
static void test_chunk_key_parse(void **state)
{
	static const struct {
		uint64_t id;
		uint32_t index, len;
	} ok[] = {
	    {1, 0, 1},
	    {7, 0, 10},
	    {999, 4, 65536},
	    {1000, 0, 4096},
	    {1234567, 3, 65536},
	    {UINT64_MAX, UINT32_MAX, UINT32_MAX},
	};
	static const char *const bad[] = {
	    "other/chunks/0/0/7_0_10",	     /* another volume */
	    "vo/chunks/0/0/7_0_10",	     /* a prefix of the name */
	    "vol2/chunks/0/0/7_0_10",	     /* the name is a prefix */
	    "vol/chunk/0/0/7_0_10",	     /* another directory */
	    "vol/chunks/0/7_0_10",	     /* one level missing */
	    "vol/chunks/0/0/0/7_0_10",	     /* one level too many */
	    "vol/chunks/0/1/7_0_10",	     /* level not id / 1000 */
	    "vol/chunks/1/1234/1234567_3",   /* no length */
	    "vol/chunks/0/0/7_0_10x",	     /* trailing bytes */
	    "vol/chunks/0/0/7_0_10/",	     /* trailing slash */
	    "vol/chunks/0/0/07_0_10",	     /* leading zero: id */
	    "vol/chunks/0/0/7_00_10",	     /* leading zero: index */
	    "vol/chunks/0/0/7_0_010",	     /* leading zero: length */
	    "vol/chunks/00/0/7_0_10",	     /* leading zero: level */
	    "vol/chunks/0/0/0_0_10",	     /* id 0 (zeros, no objects) */
	    "vol/chunks/0/0/-7_0_10",	     /* a sign */
	    "vol/chunks/0/0/7_0_4294967296", /* length past 32 bits */
	    "vol/chunks/18446744073709/18446744073709551/"
	    "18446744073709551616_0_1", /* id past 64 bits */
	    "vol/chunks/",
	    "",
	};
	char key[CHUNK_KEY_MAX];
	uint64_t id = 42;
	uint32_t index = 42, len = 42;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		chunk_key("vol", ok[i].id, ok[i].index, ok[i].len, key,
			  sizeof(key));
		assert_int_equal(
		    chunk_key_parse("vol", key, &id, &index, &len), 0);
		assert_true(id == ok[i].id);
		assert_int_equal(index, ok[i].index);
		assert_int_equal(len, ok[i].len);
		/* the same key belongs to no other volume */
		assert_int_equal(chunk_key_parse("vo", key, &id, &index, &len),
				 -EINVAL);
	}
	chunk_key_prefix("vol", key, sizeof(key));
	assert_string_equal(key, "vol/chunks/");
	id = 42;
	index = 42;
	len = 42;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (chunk_key_parse("vol", bad[i], &id, &index, &len) !=
		    -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
	/* nothing is written on failure */
	assert_true(id == 42);
	assert_int_equal(index, 42);
	assert_int_equal(len, 42);
}

static void test_chunk_write_read(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 4 * BS + 44 * 1024;
	unsigned char *want = slice_bytes(1001, size);
	unsigned char *got = malloc(size);
	struct slice s = rec(0, 1001, size, 0, size);
	struct obj_list l;

	fx_start(f);
	write_slice(f, 1001, size, 7000);
	/* The objects and their names. */
	obj_list_init(&l);
	assert_int_equal(obj_list(f->fs, "vol/chunks/", NULL, NULL, 100, &l),
			 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.items[0].key, "vol/chunks/0/1/1001_0_65536");
	assert_string_equal(l.items[3].key, "vol/chunks/0/1/1001_3_65536");
	assert_string_equal(l.items[4].key, "vol/chunks/0/1/1001_4_45056");
	assert_int_equal(l.items[4].size, 45056 + FRAME_HDR_LEN);
	obj_list_release(&l);
	/* Read after write comes from memory. */
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, want, size);
	assert_int_equal(spy_count(&f->spy, NULL), 0);
	/* From the store, whole and in odd pieces across block edges. */
	chunk_forget_slice(f->cs, 1001);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, want, size);
	assert_int_equal(spy_count(&f->spy, NULL), 5);
	for (uint32_t off = 1; off < size; off += 9999) {
		uint32_t n = MIN(size - off, 3 * BS / 2 + 17);

		memset(got, 0xaa, n);
		assert_int_equal(chunk_read(f->cs, &s, 1, off, got, n), n);
		assert_memory_equal(got, want + off, n);
	}
	free(want);
	free(got);
}

/* Reference model: apply records oldest first to a flat array. */
static void model_apply(unsigned char *m, const struct slice *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < s[i].len; j++)
			m[s[i].pos + j] =
			    s[i].id ? byte_of(s[i].id, s[i].off + j) : 0;
}

static void test_chunk_overlap(void **state)
{
	struct fx *f = *state;
	const uint32_t span = 6 * BS;
	const uint32_t sizes[] = {6 * BS, 3 * BS + 5, 2 * BS, 100};
	struct slice s[40];
	unsigned char *model = calloc(1, span), *got = malloc(span);
	uint64_t x = 12345;

	fx_start(f);
	for (uint64_t id = 1; id <= 4; id++)
		write_slice(f, id, sizes[id - 1], 30000);
	/* Hand-made partial overlaps, then random records. */
	s[0] = rec(0, 1, sizes[0], 0, span);
	s[1] = rec(BS / 2, 2, sizes[1], 100, BS);
	s[2] = rec(BS, 3, sizes[2], 1000, BS + 300);
	s[3] = rec(BS + 10, 0, 0, 0, 500);
	s[4] = rec(3 * BS - 7, 4, sizes[3], 3, 50);
	for (size_t i = 5; i < ARRAY_SIZE(s); i++) {
		uint64_t id;
		uint32_t size, off, len, pos;

		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		id = (x >> 33) % 5;
		size = id ? sizes[id - 1] : 0;
		off = id ? (uint32_t)((x >> 7) % size) : 0;
		len = (uint32_t)((x >> 21) % (BS + 1)) + 1;
		if (id && len > size - off)
			len = size - off;
		pos = (uint32_t)((x >> 40) % (span - len));
		s[i] = rec(pos, id, size, off, len);
	}
	for (size_t n = 1; n <= ARRAY_SIZE(s); n++) {
		memset(model, 0, span);
		model_apply(model, s, n);
		chunk_forget_slice(f->cs, 1 + n % 4);
		memset(got, 0xaa, span);
		assert_int_equal(chunk_read(f->cs, s, n, 0, got, span), span);
		assert_memory_equal(got, model, span);
		for (uint32_t off = n * 997 % BS; off < span; off += 40000) {
			uint32_t len = MIN(span - off, 12345);

			memset(got, 0xaa, len);
			assert_int_equal(chunk_read(f->cs, s, n, off, got, len),
					 len);
			assert_memory_equal(got, model + off, len);
		}
	}
	free(model);
	free(got);
}

static void test_chunk_zeros(void **state)
{
	struct fx *f = *state;
	unsigned char got[3000];
	struct slice s[2];

	fx_start(f);
	write_slice(f, 9, 1000, 1000);
	/* Hole [0, 500), slice 9 at [500, 1500), id 0 over [800, 900). */
	s[0] = rec(500, 9, 1000, 0, 1000);
	s[1] = rec(800, 0, 0, 0, 100);
	memset(got, 0xaa, sizeof(got));
	assert_int_equal(chunk_read(f->cs, s, 2, 0, got, sizeof(got)),
			 sizeof(got));
	for (int i = 0; i < 3000; i++) {
		unsigned char want = 0;

		if (i >= 500 && i < 1500 && !(i >= 800 && i < 900))
			want = byte_of(9, (uint64_t)i - 500);
		if (got[i] != want)
			fail_msg("byte %d: %u, want %u", i, got[i], want);
	}
	/* No records at all. */
	memset(got, 0xaa, sizeof(got));
	assert_int_equal(chunk_read(f->cs, NULL, 0, 12345, got, sizeof(got)),
			 sizeof(got));
	for (int i = 0; i < 3000; i++)
		assert_int_equal(got[i], 0);
	/* Reads past the chunk are refused. */
	assert_int_equal(
	    chunk_read(f->cs, s, 2, TESSERA_CHUNK_SIZE - 10, got, 20), -EINVAL);
	assert_int_equal(spy_count(&f->spy, NULL), 0);
}

static void damage_and_expect_eio(struct fx *f, int how)
{
	const uint32_t size = 2 * BS + 100;
	unsigned char *got = malloc(size);
	struct slice s = rec(0, 77, size, 0, size);
	char path[1024], key[CHUNK_KEY_MAX];
	size_t before;
	struct stat st;
	int fd;

	write_slice(f, 77, size, size);
	chunk_forget_slice(f->cs, 77);
	chunk_block_key(f->cs, 77, 1, BS, key, sizeof(key));
	obj_path(f, 77, 1, BS, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	if (how == 0) {
		/* Flip one byte in the middle of the payload. */
		unsigned char c;

		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &c, 1, st.st_size / 2), 1);
		c ^= 0x40;
		assert_int_equal(pwrite(fd, &c, 1, st.st_size / 2), 1);
		close(fd);
	} else if (how == 1) {
		assert_int_equal(truncate(path, st.st_size - 1), 0);
	} else {
		assert_int_equal(unlink(path), 0);
	}
	memset(got, 0, size);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), -EIO);
	/* Block 0 alone is still fine; block 1 fails on every try. */
	assert_int_equal(chunk_read(f->cs, &s, 1, 10, got, 100), 100);
	before = spy_count(&f->spy, key);
	assert_int_equal(chunk_read(f->cs, &s, 1, BS + 1, got, 10), -EIO);
	/*
	 * Tries per read: a cut body may be a transfer problem (all
	 * retries), a whole one that does not verify gets one more, a
	 * missing object none.
	 */
	assert_int_equal(spy_count(&f->spy, key) - before,
			 how == 1   ? 1 + CHUNK_IO_RETRIES
			 : how == 0 ? 1 + CHUNK_CORRUPT_RETRIES
				    : 1);
	assert_int_equal(chunk_read(f->cs, &s, 1, BS + 1, got, 10), -EIO);
	free(got);
}

static void test_chunk_corrupt(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	damage_and_expect_eio(f, 0);
}

static void test_chunk_truncated(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	damage_and_expect_eio(f, 1);
}

static void test_chunk_missing(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	damage_and_expect_eio(f, 2);
}

/* A record pointing past its slice's size is corrupt metadata. */
static void test_chunk_bad_record(void **state)
{
	struct fx *f = *state;
	struct slice s = rec(0, 5, 100, 50, 100);
	char got[100];

	fx_start(f);
	write_slice(f, 5, 100, 100);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, 100), -EIO);
}

static void test_chunk_writer_rules(void **state)
{
	struct fx *f = *state;
	unsigned char *p = slice_bytes(3, 2 * BS);
	unsigned char *got = malloc(2 * BS);
	unsigned char patch[100];
	struct slice s = rec(0, 3, 0, 0, 0);
	struct chunk_writer *w;

	fx_start(f);
	assert_int_equal(chunk_writer_new(f->cs, 0, &w), -EINVAL);
	assert_int_equal(chunk_writer_new(f->cs, 3, &w), 0);
	/* Past the current length: a hole, not allowed. */
	assert_int_equal(chunk_writer_write(w, 1, p, 10), -EAGAIN);
	assert_int_equal(chunk_writer_write(w, 0, p, BS + 100), BS + 100);
	/* Block 0 is full, hence uploading: no rewrite there. */
	assert_int_equal(chunk_writer_write(w, 10, patch, 10), -EAGAIN);
	assert_int_equal(chunk_writer_write(w, BS - 1, patch, 2), -EAGAIN);
	/* Block 1 is still being filled: rewrite and extend it. */
	memset(patch, 0xee, sizeof(patch));
	assert_int_equal(chunk_writer_write(w, BS + 50, patch, 100), 100);
	memcpy(p + BS + 50, patch, 100);
	assert_int_equal(chunk_writer_len(w), BS + 150);
	assert_int_equal(chunk_writer_write(w, BS + 150, p + BS + 150, 50), 50);
	/* Not past one chunk. */
	assert_int_equal(chunk_writer_write(w, BS + 200, p, TESSERA_CHUNK_SIZE),
			 -EFBIG);
	assert_int_equal(chunk_writer_finish(w), 0);
	assert_int_equal(chunk_writer_finish(w), 0);
	/* Finished: the last block is uploaded too. */
	assert_int_equal(chunk_writer_write(w, BS + 200, patch, 1), -EAGAIN);
	s.size = s.len = chunk_writer_len(w);
	chunk_writer_free(w);
	chunk_forget_slice(f->cs, 3);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, s.len), s.len);
	assert_memory_equal(got, p, s.len);
	/* Abandoning a writer frees it without finishing. */
	assert_int_equal(chunk_writer_new(f->cs, 4, &w), 0);
	assert_int_equal(chunk_writer_write(w, 0, p, 3 * BS / 2), 3 * BS / 2);
	chunk_writer_free(w);
	chunk_writer_free(NULL);
	free(p);
	free(got);
}

static void test_chunk_upload_retry(void **state)
{
	struct fx *f = *state;
	unsigned char *p = slice_bytes(11, 2 * BS);
	unsigned char *got = malloc(2 * BS);
	struct slice s = rec(0, 11, 2 * BS, 0, 2 * BS);
	struct chunk_writer *w;

	f->conf.max_uploads = 1;
	fx_start(f);
	/* Two transient failures: retried, the slice is complete. */
	atomic_store(&f->spy.fail_puts, 2);
	write_slice(f, 11, 2 * BS, 4096);
	assert_int_equal(atomic_load(&f->spy.puts_tried), 4);
	chunk_forget_slice(f->cs, 11);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, 2 * BS), 2 * BS);
	assert_memory_equal(got, p, 2 * BS);
	/* A store that always fails: the writer fails, finish says -EIO. */
	atomic_store(&f->spy.fail_puts, -1);
	atomic_store(&f->spy.puts_tried, 0);
	assert_int_equal(chunk_writer_new(f->cs, 12, &w), 0);
	assert_int_equal(chunk_writer_write(w, 0, p, BS + 10), BS + 10);
	assert_int_equal(chunk_writer_finish(w), -EIO);
	/* Each failed block was tried 1 + retries times (1 or 2 blocks). */
	assert_true(atomic_load(&f->spy.puts_tried) > 0);
	assert_int_equal(atomic_load(&f->spy.puts_tried) % (1 + CHUNK_IO_RETRIES),
			 0);
	assert_int_equal(chunk_writer_write(w, BS + 10, p, 1), -EAGAIN);
	chunk_writer_free(w);
	assert_int_equal(chunk_mem_used(f->cs) <= 2 * BS, true);
	free(p);
	free(got);
}

static void test_chunk_mem_bound(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 8 * MiB;
	unsigned char *got = malloc(size);
	unsigned char *want = slice_bytes(21, size);
	struct slice s = rec(0, 21, size, 0, size);

	f->conf.buffer_size = 4 * BS;
	f->conf.max_uploads = 2;
	fx_start(f);
	atomic_store(&f->spy.put_delay_us, 1000); /* uploads slower than memcpy */
	write_slice(f, 21, size, 32 * 1024);
	assert_true(chunk_mem_peak(f->cs) <= 4 * BS);
	assert_true(chunk_mem_peak(f->cs) >= BS);
	assert_true(chunk_mem_used(f->cs) <= 4 * BS);
	/* Reading it back also stays in the bound (cache evicts). */
	chunk_forget_slice(f->cs, 21);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, want, size);
	assert_true(chunk_mem_peak(f->cs) <= 4 * BS);
	free(got);
	free(want);
}

/* A pool full of idle writers' blocks does not block readers. */
static void test_chunk_read_pool_full(void **state)
{
	struct fx *f = *state;
	unsigned char *p = slice_bytes(31, 2 * BS);
	unsigned char *want = slice_bytes(31, BS);
	unsigned char *got = malloc(BS);
	struct slice s = rec(0, 31, BS, 0, BS);
	struct chunk_writer *a, *b;

	f->conf.buffer_size = 2 * BS;
	fx_start(f);
	write_slice(f, 31, BS, BS);
	chunk_forget_slice(f->cs, 31);
	assert_int_equal(chunk_writer_new(f->cs, 32, &a), 0);
	assert_int_equal(chunk_writer_new(f->cs, 33, &b), 0);
	assert_int_equal(chunk_writer_write(a, 0, p, BS - 1), BS - 1);
	assert_int_equal(chunk_writer_write(b, 0, p, BS - 1), BS - 1);
	assert_int_equal(chunk_mem_used(f->cs), 2 * BS);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, BS), BS);
	assert_memory_equal(got, want, BS);
	assert_true(chunk_mem_peak(f->cs) <= 2 * BS);
	assert_int_equal(chunk_writer_finish(a), 0);
	assert_int_equal(chunk_writer_finish(b), 0);
	chunk_writer_free(a);
	chunk_writer_free(b);
	assert_true(chunk_mem_used(f->cs) <= 2 * BS);
	free(p);
	free(want);
	free(got);
}

/*
 * Writers whose partial blocks fill the pool and who sit idle must not hang
 * a new writer: one idle tail gets sealed (its next write there: -EAGAIN),
 * and every byte written stays readable.
 */
static void test_chunk_writer_pressure(void **state)
{
	struct fx *f = *state;
	unsigned char *p = slice_bytes(81, BS);
	struct chunk_writer *w[3];
	unsigned char got[20];
	int sealed = 0;

	f->conf.buffer_size = 2 * BS;
	fx_start(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(chunk_writer_new(f->cs, 81 + i, &w[i]), 0);
		assert_int_equal(chunk_writer_write(w[i], 0, p, 10), 10);
		assert_true(chunk_mem_used(f->cs) <= 2 * BS);
	}
	for (int i = 0; i < 3; i++) {
		ssize_t r = chunk_writer_write(w[i], 10, p + 10, 10);

		if (r == -EAGAIN)
			sealed++;
		else
			assert_int_equal(r, 10);
	}
	assert_true(sealed >= 1);
	assert_true(chunk_mem_peak(f->cs) <= 2 * BS);
	for (int i = 0; i < 3; i++) {
		uint32_t len = chunk_writer_len(w[i]);
		struct slice s = rec(0, 81 + i, len, 0, len);

		assert_int_equal(chunk_writer_finish(w[i]), 0);
		chunk_writer_free(w[i]);
		chunk_forget_slice(f->cs, 81 + i);
		assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, len), len);
		assert_memory_equal(got, p, len);
	}
	free(p);
}

struct cw_arg {
	struct chunk_store *cs;
	atomic_uint_fast64_t *next_id;
	unsigned seed;
	uint64_t tag; /* content: byte_of(tag, file offset) */
	uint32_t size;
	struct slice recs[64];
	size_t nrecs;
	int bad;
};

/* Finish @w and record its slice at @pos; start a new one. */
static void cw_rotate(struct cw_arg *a, struct chunk_writer **w, uint32_t *pos)
{
	uint32_t len = chunk_writer_len(*w);

	if (chunk_writer_finish(*w) != 0 || a->nrecs == 64)
		a->bad++;
	else if (len > 0)
		a->recs[a->nrecs++] =
		    rec(*pos, chunk_writer_id(*w), len, 0, len);
	*pos += len;
	chunk_writer_free(*w);
	if (chunk_writer_new(a->cs, atomic_fetch_add(a->next_id, 1), w) != 0)
		a->bad++;
}

/* Write a "file" of a->size bytes the way vfs does, -EAGAIN included. */
static void *cw_thread(void *arg)
{
	struct cw_arg *a = arg;
	struct chunk_writer *w;
	uint32_t pos = 0, done = 0;

	if (chunk_writer_new(a->cs, atomic_fetch_add(a->next_id, 1), &w))
		a->bad++;
	while (done < a->size && !a->bad) {
		uint32_t n = MIN(a->size - done,
				 1000 + (uint32_t)rand_r(&a->seed) % 9000);
		unsigned char buf[10000];
		ssize_t r;

		for (uint32_t i = 0; i < n; i++)
			buf[i] = byte_of(a->tag, done + i);
		r = chunk_writer_write(w, done - pos, buf, n);
		if (r == -EAGAIN) {
			cw_rotate(a, &w, &pos);
			continue;
		}
		if (r != (ssize_t)n)
			a->bad++;
		done += n;
	}
	cw_rotate(a, &w, &pos);
	chunk_writer_free(w);
	return NULL;
}

/* Writers in parallel over a tiny pool: no hang, no loss, bound kept. */
static void test_chunk_concurrent_writers(void **state)
{
	struct fx *f = *state;
	atomic_uint_fast64_t next_id = 1000;
	struct cw_arg a[4];
	pthread_t t[4];
	unsigned char *got;

	f->conf.buffer_size = 2 * BS;
	f->conf.max_uploads = 2;
	fx_start(f);
	for (int i = 0; i < 4; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].cs = f->cs;
		a[i].next_id = &next_id;
		a[i].seed = (unsigned)i * 7 + 1;
		a[i].tag = 5000 + (uint64_t)i;
		a[i].size = 5 * BS + 123;
		assert_int_equal(pthread_create(&t[i], NULL, cw_thread, &a[i]),
				 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(chunk_mem_peak(f->cs) <= 2 * BS);
	got = malloc(5 * BS + 123);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(a[i].bad, 0);
		assert_int_equal(
		    chunk_read(f->cs, a[i].recs, a[i].nrecs, 0, got, a[i].size),
		    a[i].size);
		for (uint32_t j = 0; j < a[i].size; j++)
			if (got[j] != byte_of(a[i].tag, j))
				fail_msg("writer %d byte %u", i, j);
	}
	free(got);
}

struct reader_arg {
	struct chunk_store *cs;
	struct slice s;
	const unsigned char *want;
	int bad;
};

static void *reader(void *arg)
{
	struct reader_arg *a = arg;
	unsigned char *got = malloc(a->s.len);

	for (int i = 0; i < 20; i++) {
		uint32_t off = (uint32_t)(i * 4099) % a->s.len;

		if (chunk_read(a->cs, &a->s, 1, off, got, a->s.len - off) !=
			(ssize_t)(a->s.len - off) ||
		    memcmp(got, a->want + off, a->s.len - off) != 0)
			a->bad++;
	}
	free(got);
	return NULL;
}

static void test_chunk_shared_fetch(void **state)
{
	struct fx *f = *state;
	unsigned char *want = slice_bytes(41, BS);
	struct reader_arg a[8];
	pthread_t t[8];
	char key[CHUNK_KEY_MAX];

	fx_start(f);
	write_slice(f, 41, BS, BS);
	chunk_forget_slice(f->cs, 41);
	for (int i = 0; i < 8; i++) {
		a[i] =
		    (struct reader_arg){f->cs, rec(0, 41, BS, 0, BS), want, 0};
		assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].bad, 0);
	}
	chunk_block_key(f->cs, 41, 0, BS, key, sizeof(key));
	assert_int_equal(spy_count(&f->spy, key), 1);
	free(want);
}

static void test_chunk_readahead(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 16 * BS;
	unsigned char *want = slice_bytes(51, size);
	unsigned char *got = malloc(size);
	struct slice s = rec(0, 51, size, 0, size);
	char key[CHUNK_KEY_MAX];

	f->conf.max_readahead = 4 * BS;
	fx_start(f);
	write_slice(f, 51, size, BS);
	chunk_forget_slice(f->cs, 51);
	/* The first read at 0 starts a stream: block 1 gets fetched. */
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, 4096), 4096);
	chunk_prefetch_wait_idle(f->cs);
	chunk_block_key(f->cs, 51, 1, BS, key, sizeof(key));
	assert_int_equal(spy_count(&f->spy, key), 1);
	assert_int_equal(spy_count(&f->spy, NULL), 2);
	/* Sequential reads to the end: every block fetched exactly once. */
	for (uint32_t off = 4096; off < size; off += 32 * 1024) {
		uint32_t n = MIN(32 * 1024, size - off);

		assert_int_equal(chunk_read(f->cs, &s, 1, off, got + off, n),
				 n);
	}
	memcpy(got, want, 4096);
	assert_memory_equal(got, want, size);
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 16);
	/* Readahead stays inside the record's visible part. */
	chunk_forget_slice(f->cs, 51);
	s = rec(0, 51, size, 0, BS);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, BS), BS);
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 17);
	free(want);
	free(got);
}

/*
 * The head of the next chunk: its first max_readahead bytes are fetched
 * in the background, and the read that then starts there continues the
 * stream (each block fetched once).  Lists that are not one record from
 * the chunk's start get nothing.
 */
static void test_chunk_readahead_next(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 8 * BS;
	unsigned char *want = slice_bytes(52, size);
	unsigned char *got = malloc(size);
	struct slice s = rec(0, 52, size, 0, size);
	struct slice two[2] = {rec(0, 52, size, 0, BS),
			       rec(BS, 52, size, BS, BS)};
	char key[CHUNK_KEY_MAX];

	f->conf.max_readahead = 4 * BS;
	fx_start(f);
	write_slice(f, 52, size, BS);
	chunk_forget_slice(f->cs, 52);
	chunk_readahead_next(f->cs, two, 2); /* not one record: nothing */
	s.pos = 4096;
	chunk_readahead_next(f->cs, &s, 1); /* not at the start: nothing */
	s.pos = 0;
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 0);
	chunk_readahead_next(f->cs, &s, 1);
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 4); /* blocks 0-3 */
	chunk_block_key(f->cs, 52, 3, BS, key, sizeof(key));
	assert_int_equal(spy_count(&f->spy, key), 1);
	chunk_readahead_next(f->cs, &s, 1); /* again: nothing new */
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 4);
	for (uint32_t off = 0; off < size; off += 32 * 1024)
		assert_int_equal(chunk_read(f->cs, &s, 1, off, got + off,
					    32 * 1024),
				 32 * 1024);
	assert_memory_equal(got, want, size);
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 8);
	free(want);
	free(got);
}

static void test_chunk_compressed(void **state)
{
	struct fx *f = *state;
	struct frame_conf fc = {.codec = FRAME_CODEC_ZSTD};
	const uint32_t size = 3 * BS;
	unsigned char *p = malloc(size), *got = malloc(size);
	struct slice s = rec(0, 61, size, 0, size);
	struct chunk_writer *w;
	char path[1024];
	struct stat st;

	for (uint32_t i = 0; i < size; i++)
		p[i] = (unsigned char)("compressible "[i % 13]);
	f->conf.frame = &fc;
	fx_start(f);
	assert_int_equal(chunk_writer_new(f->cs, 61, &w), 0);
	assert_int_equal(chunk_writer_write(w, 0, p, size), size);
	assert_int_equal(chunk_writer_finish(w), 0);
	chunk_writer_free(w);
	obj_path(f, 61, 0, BS, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size < BS / 4);
	chunk_forget_slice(f->cs, 61);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, p, size);
	free(p);
	free(got);
}

static void test_chunk_delete(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 2 * BS + 1;
	struct slice s = rec(0, 71, size, 0, size);
	struct obj_list l;
	char got[10];

	fx_start(f);
	write_slice(f, 71, size, 5000);
	write_slice(f, 72, 10, 10);
	assert_int_equal(chunk_delete_slice(f->cs, 71, size), 0);
	obj_list_init(&l);
	assert_int_equal(obj_list(f->fs, "vol/", NULL, NULL, 100, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].key, "vol/chunks/0/0/72_0_10");
	obj_list_release(&l);
	/* Gone from the cache too; deleting again is fine. */
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, 10), -EIO);
	assert_int_equal(chunk_delete_slice(f->cs, 71, size), 0);
	assert_int_equal(chunk_delete_slice(f->cs, 0, 100), 0);
}

/*
 * A store failing 20% of calls and cutting 20% of GET bodies short (the
 * fault layer): every slice still uploads, and every block reads back with
 * the right bytes, through retries.
 */
static void test_chunk_faults_retried(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 5 * BS + 333;
	unsigned char *got = malloc(size);
	struct obj_fault_stats st;
	struct obj_store *faulty;

	assert_int_equal(
	    obj_fault_wrap(f->fs, "err=0.2,trunc=0.2,seed=7", &faulty), 0);
	f->fs = faulty; /* closing it closes the file store */
	f->spy.inner = faulty;
	fx_start(f);
	for (uint64_t id = 100; id < 120; id++)
		write_slice(f, id, size, 7000);
	for (uint64_t id = 100; id < 120; id++) {
		struct slice s = rec(0, id, size, 0, size);
		unsigned char *want = slice_bytes(id, size);

		chunk_forget_slice(f->cs, id);
		memset(got, 0, size);
		assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
		assert_memory_equal(got, want, size);
		free(want);
	}
	assert_int_equal(obj_fault_stats(faulty, &st), 0);
	assert_true(st.errors > 5);
	assert_true(st.truncs > 5);
	assert_true(atomic_load(&f->cs->n_retry) >= st.errors + st.truncs);
	free(got);
}

/* A store that always fails: a read gives up after the bounded retries. */
static void test_chunk_read_gives_up(void **state)
{
	struct fx *f = *state;
	struct slice s = rec(0, 31, 100, 0, 100);
	struct obj_store *faulty;
	char key[CHUNK_KEY_MAX], got[100];

	fx_start(f);
	write_slice(f, 31, 100, 100);
	chunk_forget_slice(f->cs, 31);
	chunk_block_key(f->cs, 31, 0, 100, key, sizeof(key));
	assert_int_equal(obj_fault_wrap(f->fs, "err=1,ops=get", &faulty), 0);
	f->fs = faulty;
	f->spy.inner = faulty;
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, 100), -EIO);
	assert_int_equal(spy_count(&f->spy, key), 1 + CHUNK_IO_RETRIES);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		T(test_chunk_key),
		cmocka_unit_test(test_chunk_key_parse),
		T(test_chunk_write_read),
		T(test_chunk_overlap),
		T(test_chunk_zeros),
		T(test_chunk_corrupt),
		T(test_chunk_truncated),
		T(test_chunk_missing),
		T(test_chunk_bad_record),
		T(test_chunk_writer_rules),
		T(test_chunk_upload_retry),
		T(test_chunk_mem_bound),
		T(test_chunk_read_pool_full),
		T(test_chunk_writer_pressure),
		T(test_chunk_concurrent_writers),
		T(test_chunk_shared_fetch),
		T(test_chunk_readahead),
		T(test_chunk_readahead_next),
		T(test_chunk_compressed),
		T(test_chunk_delete),
		T(test_chunk_faults_retried),
		T(test_chunk_read_gives_up),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
