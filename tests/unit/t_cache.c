/*
 * t_cache.c - the local disk cache and write-back staging (cache/), alone
 * and under chunk/: size bound, free-space floor, verification of cached
 * files, index rebuild, reads with the object store gone, write-back
 * staging surviving a SIGKILL, warmup, memory bound with the disk queue,
 * readahead window growth; and all of it on an encrypted volume, where no
 * file of the cache directory may hold plaintext.
 *
 * Each test gets a temp dir holding a file:// store ("store/") and a cache
 * directory ("cache/"); the store is wrapped in a spy that counts GETs and
 * can fail puts.  Blocks are 64 KiB.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "chunk/chunk.h"
#include "chunk/chunk_int.h"
#include "object/frame.h"
#include "object/object.h"
#include "unit/spy_store.h"

#define BS (64 * 1024)
/* A 64 KiB block's file: header + bytes, charged in 4 KiB units. */
#define BLOCK_CHARGE (BS + 4096)

/* ---- fixture ---- */

struct fx {
	char dir[64];
	char store_dir[96];
	char cache_dir[96];
	struct obj_store *fs;
	struct spy spy;
	struct cache_conf cc;
	struct chunk_conf conf;
	struct chunk_store *cs;
	struct cache *c;      /* a cache opened alone */
	bool tmpfs;	      /* cache_dir is a tmpfs we mounted */
	struct frame_conf fc; /* fx_encrypt: the volume's frame conf */
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
	char url[160];

	snprintf(f->dir, sizeof(f->dir), "/tmp/tessera-tcache-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->store_dir, sizeof(f->store_dir), "%s/store", f->dir);
	snprintf(f->cache_dir, sizeof(f->cache_dir), "%s/cache", f->dir);
	if (mkdir(f->store_dir, 0700) < 0)
		return -1;
	snprintf(url, sizeof(url), "file://%s/", f->store_dir);
	if (obj_open(url, false, &f->fs) < 0)
		return -1;
	spy_init(&f->spy, f->fs);
	f->cc.dir = f->cache_dir;
	f->cc.size = 64 * MiB;
	f->cc.free_ratio = 0;
	f->cc.upload_threads = 2;
	f->cc.cache_large_write = true; /* most cases test write caching */
	f->conf.volname = "vol";
	f->conf.block_size = BS;
	f->conf.buffer_size = 4 * MiB;
	f->conf.max_uploads = 4;
	f->conf.cache = &f->cc;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	chunk_store_free(f->cs);
	cache_close(f->c);
	obj_close(f->fs);
	spy_release(&f->spy);
	if (f->tmpfs)
		umount2(f->cache_dir, MNT_DETACH);
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void fx_start(struct fx *f)
{
	assert_int_equal(chunk_store_new(&f->spy.base, &f->conf, &f->cs), 0);
	cache_wait_scan(chunk_disk_cache(f->cs));
}

/* Free the chunk store: its disk-cache queue drains into the cache. */
static void fx_stop(struct fx *f)
{
	chunk_store_free(f->cs);
	f->cs = NULL;
}

/* Make the volume encrypted (with @codec): chunk store and cache alone. */
static void fx_encrypt(struct fx *f, int codec)
{
	f->fc.encrypt = true;
	f->fc.codec = codec;
	for (size_t i = 0; i < sizeof(f->fc.key); i++)
		f->fc.key[i] = (unsigned char)(0xa5 ^ (i * 7));
	f->conf.frame = &f->fc;
	f->cc.frame = &f->fc;
}

static void open_cache(struct fx *f)
{
	assert_int_equal(cache_open(&f->spy.base, &f->cc, &f->c), 0);
	cache_wait_scan(f->c);
}

static void close_cache(struct fx *f)
{
	cache_close(f->c);
	f->c = NULL;
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

static void write_slice(struct fx *f, uint64_t id, uint32_t size)
{
	unsigned char *p = slice_bytes(id, size);
	struct chunk_writer *w;

	assert_int_equal(chunk_writer_new(f->cs, id, &w), 0);
	for (uint32_t off = 0; off < size; off += 10000) {
		uint32_t n = MIN(10000, size - off);

		assert_int_equal(chunk_writer_write(w, off, p + off, n), n);
	}
	assert_int_equal(chunk_writer_finish(w), 0);
	chunk_writer_free(w);
	free(p);
}

static void check_slice(struct fx *f, uint64_t id, uint32_t size)
{
	unsigned char *want = slice_bytes(id, size);
	unsigned char *got = malloc(size);
	struct slice s = {0, id, size, 0, size};

	memset(got, 0, size);
	assert_int_equal(chunk_read(f->cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, want, size);
	free(want);
	free(got);
}

/* A plain frame of @len bytes of pattern @id as one buffer. */
static char *frame_of(uint64_t id, uint32_t len, size_t *flen)
{
	unsigned char *raw = slice_bytes(id, len);
	struct buf b = BUF_INIT;

	assert_int_equal(frame_encode(NULL, raw, len, &b), 0);
	free(raw);
	*flen = b.len;
	return b.data;
}

static void key_of(uint64_t id, uint32_t len, char *out, size_t n)
{
	snprintf(out, n, "vol/chunks/0/0/%llu_0_%u", (unsigned long long)id,
		 len);
}

static void put_block(struct cache *c, uint64_t id, uint32_t len)
{
	char key[128];
	size_t flen;
	char *fr = frame_of(id, len, &flen);

	key_of(id, len, key, sizeof(key));
	cache_put(c, key, fr, flen, NULL, 0);
	free(fr);
}

/* Is block @id cached with the right bytes? */
static bool has_block(struct cache *c, uint64_t id, uint32_t len)
{
	unsigned char *want = slice_bytes(id, len);
	const char *data;
	char key[128], *mem;
	bool ok;

	key_of(id, len, key, sizeof(key));
	ok = cache_get(c, key, len, &mem, &data) == 0;
	if (ok) {
		assert_memory_equal(data, want, len);
		free(mem);
	}
	free(want);
	return ok;
}

static uint64_t g_sum, g_files;

static int sum_cb(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(sb->st_mode)) {
		g_sum += (uint64_t)sb->st_size;
		g_files++;
	}
	return 0;
}

/* Bytes and number of files under @sub of the cache directory. */
static uint64_t dir_bytes(struct fx *f, const char *sub, uint64_t *files)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", f->cache_dir, sub);
	g_sum = g_files = 0;
	nftw(path, sum_cb, 16, FTW_PHYS);
	if (files)
		*files = g_files;
	return g_sum;
}

/* Windows of plaintext looked for in files by plain_files(). */
static const unsigned char *g_raw;
static uint32_t g_raw_len;
static uint64_t g_plain, g_scanned;

static bool has_window(const char *p, size_t n)
{
	const uint32_t w = 32;

	for (uint64_t at = 100; at + w <= g_raw_len; at += BS / 2)
		if (memmem(p, n, g_raw + at, w))
			return true;
	return false;
}

static int plain_cb(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	char *p;
	int fd;

	(void)ftw;
	if (flag != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	p = malloc((size_t)sb->st_size + 1);
	fd = open(path, O_RDONLY);
	assert_true(p && fd >= 0);
	assert_int_equal(read(fd, p, (size_t)sb->st_size), sb->st_size);
	close(fd);
	g_scanned++;
	g_plain += has_window(p, (size_t)sb->st_size);
	free(p);
	return 0;
}

/*
 * Files under @sub ("" = the whole cache directory) holding any 32-byte
 * window of slice @id's @size bytes; *scanned (may be NULL): files read.
 */
static uint64_t plain_files(struct fx *f, const char *sub, uint64_t id,
			    uint32_t size, uint64_t *scanned)
{
	unsigned char *raw = slice_bytes(id, size);
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", f->cache_dir, sub);
	g_raw = raw;
	g_raw_len = size;
	g_plain = g_scanned = 0;
	nftw(path, plain_cb, 16, FTW_PHYS);
	free(raw);
	if (scanned)
		*scanned = g_scanned;
	return g_plain;
}

static void cache_file(struct fx *f, const char *sub, uint64_t id,
		       uint32_t index, uint32_t len, char *out, size_t n)
{
	snprintf(out, n, "%s/%s/vol/chunks/0/%llu/%llu_%u_%u", f->cache_dir,
		 sub, (unsigned long long)(id / 1000), (unsigned long long)id,
		 index, len);
}

static void flip_byte(const char *path, off_t at)
{
	unsigned char c;
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static size_t store_objects(struct fx *f)
{
	struct obj_list l;
	size_t n;

	obj_list_init(&l);
	assert_int_equal(obj_list(f->fs, "vol/", NULL, NULL, 1000, &l), 0);
	n = l.n;
	obj_list_release(&l);
	return n;
}

static void delete_store_objects(struct fx *f)
{
	struct obj_list l;

	obj_list_init(&l);
	assert_int_equal(obj_list(f->fs, "vol/", NULL, NULL, 1000, &l), 0);
	for (size_t i = 0; i < l.n; i++)
		assert_int_equal(obj_del(f->fs, l.items[i].key), 0);
	obj_list_release(&l);
	assert_int_equal(store_objects(f), 0);
}

/* ---- the cache alone ---- */

static void test_cache_put_get(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	struct stat sb;
	char key[128];
	const char *data;
	char *mem;

	open_cache(f);
	assert_int_equal(stat(f->cache_dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	put_block(f->c, 1, 1000);
	put_block(f->c, 2, BS);
	assert_true(has_block(f->c, 1, 1000));
	assert_true(has_block(f->c, 2, BS));
	key_of(1, 1000, key, sizeof(key));
	assert_true(cache_has(f->c, key));
	/* Asked with another length: the frame does not match. */
	assert_int_equal(cache_get(f->c, key, 999, &mem, &data), -ENOENT);
	assert_false(cache_has(f->c, key)); /* deleted as bad */
	key_of(3, 10, key, sizeof(key));
	assert_int_equal(cache_get(f->c, key, 10, &mem, &data), -ENOENT);
	cache_get_stats(f->c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.writes, 2);
	assert_int_equal(st.blocks, 1);
	assert_int_equal(st.used_bytes, BLOCK_CHARGE);
	/* Drop is idempotent. */
	key_of(2, BS, key, sizeof(key));
	cache_drop(f->c, key);
	cache_drop(f->c, key);
	assert_false(cache_has(f->c, key));
	cache_get_stats(f->c, &st);
	assert_int_equal(st.used_bytes, 0);
	assert_int_equal(dir_bytes(f, "raw", NULL), 0);
}

/* Many puts: the files never pass the size, the newest stay. */
static void test_cache_size_bound(void **state)
{
	struct fx *f = *state;
	const uint64_t limit = 10 * BLOCK_CHARGE;
	struct cache_stats st;
	uint64_t files;

	f->cc.size = limit;
	open_cache(f);
	for (uint64_t id = 1; id <= 100; id++) {
		put_block(f->c, id, BS);
		assert_true(dir_bytes(f, "raw", &files) <= limit);
		assert_true(has_block(f->c, id, BS)); /* just put: there */
	}
	cache_get_stats(f->c, &st);
	assert_true(st.used_bytes <= limit);
	assert_int_equal(st.used_bytes, st.blocks * BLOCK_CHARGE);
	assert_int_equal(files, st.blocks);
	assert_true(files >= 8); /* eviction makes just enough room */
	assert_int_equal(st.evictions, 100 - files);
	/* A block larger than the whole cache is refused. */
	f->cc.size = BS;
	close_cache(f);
	open_cache(f);
	put_block(f->c, 500, BS);
	assert_false(has_block(f->c, 500, BS));
	cache_get_stats(f->c, &st);
	assert_int_equal(st.drops, 1);
	/* Size 0: nothing is cached. */
	f->cc.size = 0;
	close_cache(f);
	open_cache(f);
	put_block(f->c, 501, 100);
	assert_false(has_block(f->c, 501, 100));
}

/*
 * Recently used blocks survive eviction; a FIFO or random evictor would
 * lose most of them.  2-random evicts a hot block only when both picks are
 * hot: p = 5/200 x 4/199 per eviction, so losing 3 of 5 in 200 evictions
 * has a probability below 1e-3.
 */
static void test_cache_eviction_prefers_cold(void **state)
{
	struct fx *f = *state;
	int hot = 0;

	f->cc.size = 200 * 4096;
	open_cache(f);
	for (uint64_t id = 1; id <= 200; id++)
		put_block(f->c, id, 1000);
	for (uint64_t id = 201; id <= 400; id++) {
		for (uint64_t h = 1; h <= 5; h++)
			has_block(f->c, h, 1000); /* keep 1..5 hot */
		put_block(f->c, id, 1000);
	}
	for (uint64_t h = 1; h <= 5; h++)
		hot += has_block(f->c, h, 1000);
	assert_true(hot >= 3);
}

static void test_cache_corrupt_file(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	char path[256];

	open_cache(f);
	put_block(f->c, 7, BS);
	cache_file(f, "raw", 7, 0, BS, path, sizeof(path));
	flip_byte(path, FRAME_HDR_LEN + 100);
	assert_false(has_block(f->c, 7, BS));
	assert_int_equal(access(path, F_OK), -1);
	cache_get_stats(f->c, &st);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.used_bytes, 0);
	/* Truncated file: same. */
	put_block(f->c, 8, BS);
	cache_file(f, "raw", 8, 0, BS, path, sizeof(path));
	assert_int_equal(truncate(path, 1000), 0);
	assert_false(has_block(f->c, 8, BS));
	assert_int_equal(access(path, F_OK), -1);
	/* And it can be cached again. */
	put_block(f->c, 8, BS);
	assert_true(has_block(f->c, 8, BS));
}

static void test_cache_rebuild(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	char path[256];

	open_cache(f);
	for (uint64_t id = 1; id <= 12; id++)
		put_block(f->c, id, BS);
	close_cache(f);
	/* A temp file of a dead process is cleaned; ours is kept. */
	snprintf(path, sizeof(path), "%s/tmp/999999999.1", f->cache_dir);
	assert_int_equal(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	open_cache(f);
	assert_int_equal(access(path, F_OK), -1);
	cache_get_stats(f->c, &st);
	assert_false(st.scanning);
	assert_int_equal(st.blocks, 12);
	assert_int_equal(st.used_bytes, 12 * BLOCK_CHARGE);
	assert_true(has_block(f->c, 12, BS));
	close_cache(f);
	/* Reopened with a smaller size: the evictor trims after the scan. */
	f->cc.size = 5 * BLOCK_CHARGE;
	open_cache(f);
	cache_enforce(f->c);
	cache_get_stats(f->c, &st);
	assert_int_equal(st.blocks, 5);
	assert_true(dir_bytes(f, "raw", NULL) <= 5 * BLOCK_CHARGE);
}

static bool mount_tmpfs(struct fx *f, const char *size)
{
	char opts[64];

	if (geteuid() != 0)
		return false;
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (mkdir(f->cache_dir, 0700) < 0 ||
	    mount("tessera-test", f->cache_dir, "tmpfs", 0, opts) < 0)
		return false;
	f->tmpfs = true;
	return true;
}

static uint64_t fs_avail(const char *dir, uint64_t *total)
{
	struct statvfs sv;

	assert_int_equal(statvfs(dir, &sv), 0);
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* The free-space floor on a 32 MiB tmpfs: puts stop short of it, and
 * space taken by others makes the evictor give blocks back. */
static void test_cache_free_floor(void **state)
{
	struct fx *f = *state;
	uint64_t total, avail, floor;
	struct cache_stats st;
	char path[160];
	void *junk;
	int fd;

	if (!mount_tmpfs(f, "32m"))
		skip();
	f->cc.size = 1 * GiB;
	f->cc.free_ratio = 0.5;
	open_cache(f);
	avail = fs_avail(f->cache_dir, &total);
	floor = total / 2;
	for (uint64_t id = 1; id <= 400; id++) {
		put_block(f->c, id, BS);
		avail = fs_avail(f->cache_dir, &total);
		assert_true(avail >= floor);
	}
	cache_get_stats(f->c, &st);
	assert_true(st.drops + st.evictions > 0);
	/* Within a few blocks of the floor: caching stopped there. */
	assert_true(avail < floor + 4 * BLOCK_CHARGE);
	assert_true(st.blocks > 100);
	/* Someone else takes 8 MiB: the evictor frees as much. */
	snprintf(path, sizeof(path), "%s/junk", f->cache_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	junk = calloc(1, 8 * MiB);
	memset(junk, 1, 8 * MiB);
	assert_int_equal(write(fd, junk, 8 * MiB), 8 * MiB);
	close(fd);
	free(junk);
	assert_true(fs_avail(f->cache_dir, &total) < floor);
	cache_enforce(f->c);
	assert_true(fs_avail(f->cache_dir, &total) >= floor);
	cache_get_stats(f->c, &st);
	assert_true(dir_bytes(f, "raw", NULL) + 8 * MiB <= total - floor);
}

/* ---- write-back staging, cache alone ---- */

static void stage_block(struct cache *c, uint64_t id, uint32_t len)
{
	char key[128];
	size_t flen;
	char *fr = frame_of(id, len, &flen);

	key_of(id, len, key, sizeof(key));
	assert_int_equal(cache_stage(c, key, fr, flen), 0);
	free(fr);
}

static void test_cache_stage_upload(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	struct buf b = BUF_INIT;
	char key[128], path[256];

	f->cc.writeback = true;
	open_cache(f);
	assert_true(cache_writeback(f->c));
	for (uint64_t id = 1; id <= 5; id++)
		stage_block(f->c, id, BS);
	assert_int_equal(cache_wait_staged(f->c, 20000), 0);
	assert_int_equal(cache_staged_pending(f->c), 0);
	assert_int_equal(store_objects(f), 5);
	key_of(3, BS, key, sizeof(key));
	assert_int_equal(obj_get(f->fs, key, 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, BS + FRAME_HDR_LEN);
	buf_release(&b);
	/* Uploaded blocks moved from staging to the cache. */
	assert_int_equal(dir_bytes(f, "staging", NULL), 0);
	cache_file(f, "raw", 3, 0, BS, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	assert_true(has_block(f->c, 3, BS));
	cache_get_stats(f->c, &st);
	assert_int_equal(st.uploads, 5);
	assert_int_equal(st.blocks, 5);
	assert_int_equal(st.used_bytes, 5 * BLOCK_CHARGE);
}

/* Store down: staged blocks stay readable and go out once it is back;
 * a forgotten one is never uploaded. */
static void test_cache_stage_store_down(void **state)
{
	struct fx *f = *state;
	char key[128];

	f->cc.writeback = true;
	atomic_store(&f->spy.fail_puts, -1);
	open_cache(f);
	stage_block(f->c, 1, BS);
	stage_block(f->c, 2, 100);
	while (atomic_load(&f->spy.puts_tried) < 2)
		usleep(10000);
	assert_int_equal(cache_staged_pending(f->c), 2);
	assert_int_equal(cache_wait_staged(f->c, 100), -ETIMEDOUT);
	assert_true(has_block(f->c, 1, BS));
	assert_true(has_block(f->c, 2, 100));
	key_of(2, 100, key, sizeof(key));
	cache_forget(f->c, key);
	assert_false(cache_has(f->c, key));
	atomic_store(&f->spy.fail_puts, 0);
	assert_int_equal(cache_wait_staged(f->c, 60000), 0);
	assert_int_equal(store_objects(f), 1);
	assert_true(has_block(f->c, 1, BS));
}

/* A corrupt staged file is dropped, never uploaded. */
static void test_cache_stage_corrupt(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	char path[256];

	f->cc.writeback = true;
	atomic_store(&f->spy.fail_puts, -1);
	open_cache(f);
	stage_block(f->c, 4, BS);
	close_cache(f);
	cache_file(f, "staging", 4, 0, BS, path, sizeof(path));
	flip_byte(path, 5000);
	atomic_store(&f->spy.fail_puts, 0);
	open_cache(f);
	assert_int_equal(cache_wait_staged(f->c, 20000), 0);
	assert_int_equal(store_objects(f), 0);
	assert_int_equal(access(path, F_OK), -1);
	cache_get_stats(f->c, &st);
	assert_int_equal(st.corrupt, 1);
}

/* ---- encrypted volumes, cache alone ---- */

/* Block @id of @len bytes, encoded with @fc for the object @key. */
static char *sealed_of(const struct frame_conf *fc, const char *key,
		       uint64_t id, uint32_t len, size_t *flen)
{
	unsigned char *raw = slice_bytes(id, len);
	struct buf b = BUF_INIT;

	assert_int_equal(frame_encode_obj(fc, key, raw, len, &b), 0);
	free(raw);
	*flen = b.len;
	return b.data;
}

/*
 * With the volume's key the cache stores and serves encrypted frames
 * only: plain ones are refused on the way in, and a frame sealed for
 * another object key does not open.
 */
static void test_cache_crypt_put_get(void **state)
{
	struct fx *f = *state;
	char key[128], other[128], *fr;
	struct cache_stats st;
	uint64_t files;
	size_t flen;

	fx_encrypt(f, FRAME_CODEC_NONE);
	open_cache(f);
	key_of(1, BS, key, sizeof(key));
	fr = frame_of(1, BS, &flen);
	assert_int_equal(cache_put(f->c, key, fr, 10, fr + 10, flen - 10),
			 -EINVAL);
	assert_int_equal(cache_put(f->c, key, NULL, 0, fr, flen), -EINVAL);
	free(fr);
	assert_false(cache_has(f->c, key));
	dir_bytes(f, "", &files);
	assert_int_equal(files, 0);
	fr = sealed_of(&f->fc, key, 1, BS, &flen);
	assert_int_equal(cache_put(f->c, key, fr, 30, fr + 30, flen - 30), 0);
	free(fr);
	assert_true(has_block(f->c, 1, BS));
	assert_int_equal(plain_files(f, "", 1, BS, &files), 0);
	assert_int_equal(files, 1);
	/* Sealed for block 3's key, stored as block 2: the tag fails. */
	key_of(2, BS, key, sizeof(key));
	key_of(3, BS, other, sizeof(other));
	fr = sealed_of(&f->fc, other, 2, BS, &flen);
	assert_int_equal(cache_put(f->c, key, fr, flen, NULL, 0), 0);
	free(fr);
	assert_false(has_block(f->c, 2, BS));
	assert_false(cache_has(f->c, key)); /* deleted as bad */
	cache_get_stats(f->c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.drops, 2);
	assert_int_equal(st.blocks, 1);
	close_cache(f);
	/* The same files without the key: nothing opens. */
	f->cc.frame = NULL;
	open_cache(f);
	assert_false(has_block(f->c, 1, BS));
}

/*
 * Write-back of an encrypted volume: plain frames are never staged; the
 * staged object is uploaded byte for byte (it is verified with the key,
 * not dropped as corrupt).
 */
static void test_cache_crypt_stage(void **state)
{
	struct fx *f = *state;
	struct buf b = BUF_INIT;
	struct cache_stats st;
	char key[128], *fr;
	uint64_t files;
	size_t flen;

	fx_encrypt(f, FRAME_CODEC_ZSTD);
	f->cc.writeback = true;
	atomic_store(&f->spy.fail_puts, -1);
	open_cache(f);
	key_of(5, BS, key, sizeof(key));
	fr = frame_of(5, BS, &flen);
	assert_int_equal(cache_stage(f->c, key, fr, flen), -EINVAL);
	free(fr);
	dir_bytes(f, "staging", &files);
	assert_int_equal(files, 0);
	fr = sealed_of(&f->fc, key, 5, BS, &flen);
	assert_int_equal(cache_stage(f->c, key, fr, flen), 0);
	assert_int_equal(plain_files(f, "", 5, BS, &files), 0);
	assert_int_equal(files, 1);
	assert_true(has_block(f->c, 5, BS)); /* from staging */
	atomic_store(&f->spy.fail_puts, 0);
	assert_int_equal(cache_wait_staged(f->c, 60000), 0);
	assert_int_equal(obj_get(f->fs, key, 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, flen);
	assert_memory_equal(b.data, fr, flen);
	buf_release(&b);
	free(fr);
	assert_true(has_block(f->c, 5, BS)); /* moved to raw/ */
	cache_get_stats(f->c, &st);
	assert_int_equal(st.uploads, 1);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(st.hits, 2);
}

/* ---- under chunk/ ---- */

/* Written blocks land in the disk cache; reads work with the store gone. */
static void test_chunk_cache_store_gone(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 5 * BS + 1234;
	struct cache_stats st;
	uint64_t files;

	fx_start(f);
	write_slice(f, 11, size);
	write_slice(f, 12, 777);
	fx_stop(f);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 7);
	/* A plain volume caches plain frames (plain_files sees them). */
	assert_int_equal(plain_files(f, "raw", 11, size, NULL), 6);
	delete_store_objects(f);
	fx_start(f); /* a fresh memory cache; the index is rebuilt */
	check_slice(f, 11, size);
	check_slice(f, 12, 777);
	assert_int_equal(spy_count(&f->spy, NULL), 0);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.hits, 7);
	assert_int_equal(st.blocks, 7);
}

/* By default only partial blocks are cached when written; full ones are
 * cached when first read. */
static void test_chunk_cache_partial_only(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 5 * BS + 1234;
	uint64_t files;

	f->cc.cache_large_write = false;
	fx_start(f);
	write_slice(f, 21, size);
	write_slice(f, 22, 777);
	fx_stop(f);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 2);
	fx_start(f);
	check_slice(f, 21, size);
	fx_stop(f);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 7);
}

/* Blocks fetched from the store are cached; a corrupt cached file is
 * replaced with a good copy from the store. */
static void test_chunk_cache_refetch_corrupt(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 3 * BS;
	struct cache_stats st;
	char path[256];
	uint64_t files;

	f->cc.size = 0; /* write without caching */
	fx_start(f);
	write_slice(f, 21, size);
	fx_stop(f);
	f->cc.size = 64 * MiB;
	fx_start(f);
	check_slice(f, 21, size); /* from the store: 3 GETs, cached after */
	assert_int_equal(spy_count(&f->spy, NULL), 3);
	fx_stop(f);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 3);
	cache_file(f, "raw", 21, 1, BS, path, sizeof(path));
	flip_byte(path, FRAME_HDR_LEN + 10);
	fx_start(f);
	check_slice(f, 21, size); /* block 1 from the store again */
	assert_int_equal(spy_count(&f->spy, NULL), 4);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.corrupt, 1);
	fx_stop(f);
	/* The file was replaced by a good one: served without the store. */
	delete_store_objects(f);
	fx_start(f);
	check_slice(f, 21, size);
	assert_int_equal(spy_count(&f->spy, NULL), 4);
}

/* Writing far more than the cache size keeps the directory bounded. */
static void test_chunk_cache_bounded(void **state)
{
	struct fx *f = *state;
	const uint64_t limit = 16 * BLOCK_CHARGE;

	f->cc.size = limit;
	fx_start(f);
	for (uint64_t id = 1; id <= 8; id++) {
		write_slice(f, 100 + id, 8 * BS);
		assert_true(dir_bytes(f, "raw", NULL) <= limit);
	}
	fx_stop(f);
	assert_true(dir_bytes(f, "raw", NULL) <= limit);
	fx_start(f);
	check_slice(f, 108, 8 * BS);
}

/* The disk queue pins pool memory: the bound holds, nothing hangs. */
static void test_chunk_cache_mem_bound(void **state)
{
	struct fx *f = *state;

	f->conf.buffer_size = 4 * BS;
	f->conf.max_uploads = 2;
	fx_start(f);
	for (uint64_t id = 1; id <= 4; id++)
		write_slice(f, 200 + id, 32 * BS);
	assert_true(chunk_mem_peak(f->cs) <= 4 * BS);
	for (uint64_t id = 1; id <= 4; id++) {
		chunk_forget_slice(f->cs, 200 + id);
		check_slice(f, 200 + id, 32 * BS);
	}
	assert_true(chunk_mem_peak(f->cs) <= 4 * BS);
	assert_true(chunk_mem_used(f->cs) <= 4 * BS);
}

/* Write-back: finish returns once staged; objects appear later. */
static void test_chunk_writeback(void **state)
{
	struct fx *f = *state;
	uint64_t files;

	f->cc.writeback = true;
	atomic_store(&f->spy.fail_puts, -1); /* hold uploads back */
	fx_start(f);
	write_slice(f, 31, 3 * BS + 5);
	dir_bytes(f, "staging", &files);
	assert_int_equal(files, 4);
	assert_int_equal(store_objects(f), 0);
	assert_int_equal(cache_staged_pending(chunk_disk_cache(f->cs)), 4);
	chunk_forget_slice(f->cs, 31);
	check_slice(f, 31, 3 * BS + 5); /* from staging */
	assert_int_equal(spy_count(&f->spy, NULL), 0);
	atomic_store(&f->spy.fail_puts, 0);
	assert_int_equal(cache_wait_staged(chunk_disk_cache(f->cs), 60000), 0);
	assert_int_equal(store_objects(f), 4);
	dir_bytes(f, "staging", &files);
	assert_int_equal(files, 0);
	/* Deleting a slice forgets its cached blocks too. */
	assert_int_equal(chunk_delete_slice(f->cs, 31, 3 * BS + 5), 0);
	assert_int_equal(store_objects(f), 0);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 0);
}

/* Staged blocks survive a SIGKILL right after finish returned and are
 * uploaded by the next start. */
static void test_chunk_writeback_crash(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 4 * BS + 99;
	int pfd[2], status;
	uint64_t files;
	pid_t pid;
	char c;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		f->cc.writeback = true;
		atomic_store(&f->spy.fail_puts, -1);
		if (chunk_store_new(&f->spy.base, &f->conf, &f->cs) < 0)
			_exit(1);
		write_slice(f, 41, size);
		if (write(pfd[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(store_objects(f), 0);
	dir_bytes(f, "staging", &files);
	assert_int_equal(files, 5);
	/* Next start (write-back off): readable at once, then uploaded. */
	fx_start(f);
	check_slice(f, 41, size);
	assert_int_equal(cache_wait_staged(chunk_disk_cache(f->cs), 60000), 0);
	assert_int_equal(store_objects(f), 5);
	dir_bytes(f, "staging", &files);
	assert_int_equal(files, 0);
	fx_stop(f);
	f->cc.size = 0; /* no cache: the store alone has it all */
	fx_start(f);
	check_slice(f, 41, size);
}

static void test_chunk_cache_warmup(void **state)
{
	struct fx *f = *state;
	struct chunk_cache_report r;
	struct slice s[3];
	uint64_t files;

	f->cc.size = 0;
	fx_start(f);
	write_slice(f, 51, 4 * BS);
	write_slice(f, 52, 2 * BS);
	fx_stop(f);
	f->cc.size = 64 * MiB;
	fx_start(f);
	/* Record 0: blocks 1-2 of 51; record 1: block 0 of 52; record 2
	 * shares block 2 of 51 and a hole. */
	s[0] = (struct slice){0, 51, 4 * BS, BS + 5, 2 * BS - 10};
	s[1] = (struct slice){2 * BS, 52, 2 * BS, 0, 100};
	s[2] = (struct slice){3 * BS, 51, 4 * BS, 2 * BS, 10};
	memset(&r, 0, sizeof(r));
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_CHECK, s, 3, &r),
			 0);
	assert_int_equal(r.blocks, 3);
	assert_int_equal(r.bytes, 3 * BS);
	assert_int_equal(r.cached_blocks, 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_WARM, s, 3, &r),
			 0);
	assert_int_equal(r.cached_blocks, 3);
	assert_int_equal(r.failed, 0);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 3);
	memset(&r, 0, sizeof(r));
	chunk_cache_slices(f->cs, CHUNK_CACHE_CHECK, s, 3, &r);
	assert_int_equal(r.cached_blocks, 3);
	assert_int_equal(r.cached_bytes, 3 * BS);
	/* Warm blocks serve reads with the store gone. */
	fx_stop(f);
	delete_store_objects(f);
	fx_start(f);
	{
		unsigned char got[100], *want = slice_bytes(52, 100);

		assert_int_equal(chunk_read(f->cs, &s[1], 1, 2 * BS, got, 100),
				 100);
		assert_memory_equal(got, want, 100);
		free(want);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_EVICT, s, 3, &r),
			 0);
	assert_int_equal(r.cached_blocks, 3);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 0);
	/* Warming what the store lost fails per block, loudly. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_WARM, s, 3, &r),
			 0);
	assert_int_equal(r.failed, 3);
	fx_stop(f);
	f->conf.cache = NULL;
	fx_start(f);
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_WARM, s, 3, &r),
			 -ENOSYS);
}

/* ---- encrypted volumes under chunk/ ---- */

/*
 * Uploaded and fetched blocks of an encrypted volume reach the disk cache
 * encrypted, and serve reads with the store gone (no GET, no corrupt).
 */
static void test_chunk_crypt_cache_store_gone(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 5 * BS + 1234;
	struct cache_stats st;
	uint64_t files;

	fx_encrypt(f, FRAME_CODEC_NONE);
	f->cc.size = 0;
	fx_start(f);
	write_slice(f, 12, 3 * BS); /* not cached */
	fx_stop(f);
	f->cc.size = 64 * MiB;
	fx_start(f);
	write_slice(f, 11, size);   /* uploaded: cached after the upload */
	check_slice(f, 12, 3 * BS); /* fetched: cached after the GET */
	assert_int_equal(spy_count(&f->spy, NULL), 3);
	fx_stop(f);
	dir_bytes(f, "raw", &files);
	assert_int_equal(files, 9);
	assert_int_equal(plain_files(f, "", 11, size, &files), 0);
	assert_int_equal(plain_files(f, "", 12, 3 * BS, NULL), 0);
	assert_int_equal(files, 9);
	delete_store_objects(f);
	fx_start(f);
	check_slice(f, 11, size);
	check_slice(f, 12, 3 * BS);
	assert_int_equal(spy_count(&f->spy, NULL), 3);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.hits, 9);
	assert_int_equal(st.misses, 0);
	assert_int_equal(st.corrupt, 0);
}

/* A plain block left in an encrypted volume's cache is not served. */
static void test_chunk_crypt_cache_plain_file(void **state)
{
	struct fx *f = *state;
	struct cache_stats st;
	char path[256];
	size_t flen;
	char *fr;
	int fd;

	fx_encrypt(f, FRAME_CODEC_NONE);
	fx_start(f);
	write_slice(f, 13, BS);
	fx_stop(f);
	cache_file(f, "raw", 13, 0, BS, path, sizeof(path));
	fr = frame_of(13, BS, &flen);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, fr, flen), (ssize_t)flen);
	close(fd);
	free(fr);
	fx_start(f);
	check_slice(f, 13, BS); /* from the store */
	assert_int_equal(spy_count(&f->spy, NULL), 1);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.corrupt, 1);
	fx_stop(f);
	assert_int_equal(plain_files(f, "", 13, BS, NULL), 0);
}

/* Warmup of an encrypted volume caches the encrypted objects. */
static void test_chunk_crypt_warmup(void **state)
{
	struct fx *f = *state;
	struct chunk_cache_report r;
	struct slice s = {0, 51, 4 * BS, 0, 4 * BS};
	struct cache_stats st;
	uint64_t files;

	fx_encrypt(f, FRAME_CODEC_NONE);
	f->cc.size = 0;
	fx_start(f);
	write_slice(f, 51, 4 * BS);
	fx_stop(f);
	f->cc.size = 64 * MiB;
	fx_start(f);
	memset(&r, 0, sizeof(r));
	assert_int_equal(chunk_cache_slices(f->cs, CHUNK_CACHE_WARM, &s, 1, &r),
			 0);
	assert_int_equal(r.failed, 0);
	assert_int_equal(r.cached_blocks, 4);
	fx_stop(f);
	assert_int_equal(plain_files(f, "", 51, 4 * BS, &files), 0);
	assert_int_equal(files, 4);
	delete_store_objects(f);
	fx_start(f);
	check_slice(f, 51, 4 * BS);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.hits, 4);
	assert_int_equal(st.corrupt, 0);
}

/*
 * Write-back of an encrypted volume: staged files hold no plaintext, are
 * read back with the key, and are uploaded (not dropped as corrupt).
 */
static void test_chunk_crypt_writeback(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 3 * BS + 5;
	struct cache_stats st;
	uint64_t files;

	fx_encrypt(f, FRAME_CODEC_LZ4);
	f->cc.writeback = true;
	atomic_store(&f->spy.fail_puts, -1);
	fx_start(f);
	write_slice(f, 31, size);
	assert_int_equal(plain_files(f, "staging", 31, size, &files), 0);
	assert_int_equal(files, 4);
	chunk_forget_slice(f->cs, 31);
	check_slice(f, 31, size); /* from staging */
	assert_int_equal(spy_count(&f->spy, NULL), 0);
	atomic_store(&f->spy.fail_puts, 0);
	assert_int_equal(cache_wait_staged(chunk_disk_cache(f->cs), 60000), 0);
	cache_get_stats(chunk_disk_cache(f->cs), &st);
	assert_int_equal(st.uploads, 4);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(store_objects(f), 4);
	fx_stop(f);
	assert_int_equal(plain_files(f, "", 31, size, &files), 0);
	assert_int_equal(files, 4);
	f->cc.size = 0; /* the store alone has it, encrypted */
	fx_start(f);
	check_slice(f, 31, size);
	assert_int_equal(spy_count(&f->spy, NULL), 4);
}

/* Encoding for the disk cache keeps the pool within its bound. */
static void test_chunk_crypt_mem_bound(void **state)
{
	struct fx *f = *state;

	fx_encrypt(f, FRAME_CODEC_NONE);
	test_chunk_cache_mem_bound(state);
}

/* The readahead window doubles per sequential read up to the maximum. */
static void test_chunk_readahead_window(void **state)
{
	struct fx *f = *state;
	const uint32_t size = 32 * BS;
	struct slice s = {0, 61, size, 0, size};
	unsigned char *got = malloc(BS);

	f->conf.cache = NULL;
	f->conf.max_readahead = 4 * BS;
	fx_start(f);
	write_slice(f, 61, size);
	chunk_forget_slice(f->cs, 61);
	/*
	 * Reading block k sequentially sets the window to w = min(2^k, 4)
	 * blocks and prefetches up to block k + w: after it, blocks
	 * 0 .. k + w were each fetched once.  Window 1, 2, 4, 4, ...
	 */
	for (uint32_t k = 0; k < 12; k++) {
		size_t w = MIN((size_t)1 << k, 4);

		assert_int_equal(chunk_read(f->cs, &s, 1, k * BS, got, BS), BS);
		chunk_prefetch_wait_idle(f->cs);
		assert_int_equal(spy_count(&f->spy, NULL), k + 1 + w);
	}
	/* A jump resets the window: no readahead for a random read. */
	chunk_forget_slice(f->cs, 61);
	assert_int_equal(chunk_read(f->cs, &s, 1, 20 * BS + 7, got, 100), 100);
	chunk_prefetch_wait_idle(f->cs);
	assert_int_equal(spy_count(&f->spy, NULL), 11 + 1 + 4 + 1);
	free(got);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		T(test_cache_put_get),
		T(test_cache_size_bound),
		T(test_cache_eviction_prefers_cold),
		T(test_cache_corrupt_file),
		T(test_cache_rebuild),
		T(test_cache_free_floor),
		T(test_cache_stage_upload),
		T(test_cache_stage_store_down),
		T(test_cache_stage_corrupt),
		T(test_chunk_cache_store_gone),
		T(test_chunk_cache_partial_only),
		T(test_chunk_cache_refetch_corrupt),
		T(test_chunk_cache_bounded),
		T(test_chunk_cache_mem_bound),
		T(test_chunk_writeback),
		T(test_chunk_writeback_crash),
		T(test_chunk_cache_warmup),
		T(test_chunk_readahead_window),
		T(test_cache_crypt_put_get),
		T(test_cache_crypt_stage),
		T(test_chunk_crypt_cache_store_gone),
		T(test_chunk_crypt_cache_plain_file),
		T(test_chunk_crypt_warmup),
		T(test_chunk_crypt_writeback),
		T(test_chunk_crypt_mem_bound),
	};
	/* The cache's puts again, on the fallback without O_TMPFILE. */
	const struct CMUnitTest named[] = {
		T(test_cache_put_get),
		T(test_cache_size_bound),
		T(test_cache_corrupt_file),
		T(test_cache_rebuild),
		T(test_chunk_cache_partial_only),
	};
	/* clang-format on */
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	setenv("TESSERA_FILE_NAMED_PUTS", "1", 1);
	return failed + cmocka_run_group_tests_name("named puts", named, NULL,
						    NULL);
}
