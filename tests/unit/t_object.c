/*
 * t_object.c - conformance suite for object.h.
 *
 * Runs against the store named by TESSERA_TEST_STORE (any URL obj_open
 * accepts, e.g. http://127.0.0.1:4568/bucket for s3rver), or against a
 * fresh file:// store in a temporary directory.  Every key lives under a
 * per-run prefix, deleted at the end, so runs can share a bucket.  Tests
 * named test_object_file_* only run on the temporary file store.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "object/object.h"
#include "util/buf.h"

static struct obj_store *g_store;
static bool g_many_done; /* put_many ran on this store */
static char g_dir[256];	  /* temp dir of the file store, "" otherwise */
static char g_prefix[64]; /* per-run key prefix, ends with '/' */

static char *key_of(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Build a key under the run prefix (static buffer rotation: 4 at once). */
static char *key_of(const char *fmt, ...)
{
	static char keys[4][OBJ_KEY_MAX + 1];
	static int next;
	char *k = keys[next++ % 4];
	size_t n = strlen(g_prefix);
	va_list ap;

	memcpy(k, g_prefix, n);
	va_start(ap, fmt);
	vsnprintf(k + n, sizeof(keys[0]) - n, fmt, ap);
	va_end(ap);
	return k;
}

static void put_str(const char *key, const char *s)
{
	assert_int_equal(obj_put(g_store, key, s, strlen(s)), 0);
}

static void assert_content(const char *key, const char *want)
{
	struct buf b = BUF_INIT;

	assert_int_equal(obj_get(g_store, key, 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	buf_release(&b);
}

/* Every key under @prefix, via pages of @limit; checks the page rules. */
static char **list_all(const char *prefix, int limit, bool use_after,
		       size_t *n_out)
{
	struct obj_list l;
	char **keys = NULL;
	size_t n = 0;
	char *after = NULL, *token = NULL;

	obj_list_init(&l);
	for (int pages = 0;; pages++) {
		assert_true(pages < 10000);
		assert_int_equal(
		    obj_list(g_store, prefix, after, token, limit, &l), 0);
		assert_true(l.n <= (size_t)limit);
		keys = realloc(keys, (n + l.n + 1) * sizeof(*keys));
		assert_non_null(keys);
		for (size_t i = 0; i < l.n; i++) {
			assert_int_equal(
			    strncmp(l.items[i].key, prefix, strlen(prefix)), 0);
			keys[n++] = strdup(l.items[i].key);
		}
		free(after);
		free(token);
		after = token = NULL;
		if (!l.truncated)
			break;
		assert_true(l.n > 0);
		if (use_after)
			after = strdup(l.items[l.n - 1].key);
		else
			token = strdup(l.next_token);
	}
	obj_list_release(&l);
	*n_out = n;
	return keys;
}

static void free_keys(char **k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(k[i]);
	free(k);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int suite_setup(void **state)
{
	const char *url = getenv("TESSERA_TEST_STORE");
	char buf[300];

	(void)state;
	g_many_done = false;
	snprintf(g_prefix, sizeof(g_prefix), "tobj-%d-%ld/", (int)getpid(),
		 (long)time(NULL));
	if (url && *url)
		return obj_open(url, true, &g_store) == 0 ? 0 : -1;
	snprintf(g_dir, sizeof(g_dir), "/tmp/tessera-tobj-XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(buf, sizeof(buf), "file://%s/store/", g_dir);
	return obj_open(buf, true, &g_store) == 0 ? 0 : -1;
}

static int suite_teardown(void **state)
{
	struct obj_list l;

	(void)state;
	/* Delete what this run left (no cmocka asserts outside tests). */
	obj_list_init(&l);
	while (obj_list(g_store, g_prefix, NULL, NULL, 1000, &l) == 0 &&
	       l.n > 0) {
		for (size_t i = 0; i < l.n; i++)
			obj_del(g_store, l.items[i].key);
	}
	obj_list_release(&l);
	obj_close(g_store);
	if (g_dir[0])
		nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static bool on_file_store(void)
{
	return g_dir[0] != '\0';
}

static void test_object_put_get(void **state)
{
	const char *k = key_of("basic/obj");
	struct obj_info info;

	(void)state;
	put_str(k, "hello, object store");
	assert_content(k, "hello, object store");
	assert_int_equal(obj_head(g_store, k, &info), 0);
	assert_int_equal(info.size, 19);
	/* Overwrite with a shorter value replaces it whole. */
	put_str(k, "bye");
	assert_content(k, "bye");
	assert_int_equal(obj_head(g_store, k, &info), 0);
	assert_int_equal(info.size, 3);
	assert_int_equal(obj_del(g_store, k), 0);
	assert_int_equal(obj_head(g_store, k, &info), -ENOENT);
}

/*
 * Big puts from 4 KiB-aligned buffers (the file store writes their aligned
 * bulk with O_DIRECT, the tail buffered) read back exact, at lengths on
 * and off the alignment, and a shorter one replaces a longer one whole.
 */
static void test_object_aligned_put(void **state)
{
	static const size_t lens[] = {64 << 10, (64 << 10) + 4095,
				      (1 << 20) + 24, (4 << 20) + 24, 70000};
	size_t cap = (4 << 20) + 4096;
	char *p = aligned_alloc(4096, cap);
	const char *k = key_of("aligned/obj");

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < cap; i++)
		p[i] = (char)(i * 2654435761u >> 13);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		struct buf b = BUF_INIT;

		p[0] = (char)i; /* each put differs */
		assert_int_equal(obj_put(g_store, k, p, lens[i]), 0);
		assert_int_equal(obj_get(g_store, k, 0, OBJ_TO_END, &b), 0);
		assert_int_equal(b.len, lens[i]);
		assert_memory_equal(b.data, p, lens[i]);
		buf_release(&b);
	}
	assert_int_equal(obj_del(g_store, k), 0);
	free(p);
}

/*
 * Whole objects read into an aligned buffer with room for the rounded-up
 * length (chunk/'s full block buffers: the file store reads them with
 * O_DIRECT): exact length and bytes, sizes aligned and not, and a buffer
 * one byte short of the rounded length read the ordinary way.
 */
static void test_object_aligned_get(void **state)
{
	static const size_t lens[] = {64 << 10, (64 << 10) + 4095,
				      (1 << 20) + 24, 4 << 20, 70000};
	size_t cap = (4 << 20) + 8192;
	char *p = aligned_alloc(4096, cap);
	const char *k = key_of("aligned/get");

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < cap; i++)
		p[i] = (char)(i * 2654435761u >> 11);
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		for (int shrt = 0; shrt < 2; shrt++) {
			size_t room = (lens[i] + 4095) & ~(size_t)4095;
			struct buf b = BUF_INIT;

			if (room == lens[i])
				room += 4096; /* the NUL after the data */
			b.data = aligned_alloc(4096, room + 4096);
			assert_non_null(b.data);
			b.cap = room - (size_t)shrt;
			b.data[0] = '\0';
			p[0] = (char)(i + 10 * shrt);
			assert_int_equal(obj_put(g_store, k, p, lens[i]), 0);
			assert_int_equal(
				obj_get(g_store, k, 0, OBJ_TO_END, &b), 0);
			assert_int_equal(b.len, lens[i]);
			assert_memory_equal(b.data, p, lens[i]);
			assert_int_equal(b.data[b.len], '\0');
			buf_release(&b);
		}
	}
	assert_int_equal(obj_del(g_store, k), 0);
	free(p);
}

static void test_object_range(void **state)
{
	const char *k = key_of("range/obj");
	char data[100];
	struct buf b = BUF_INIT;

	(void)state;
	for (int i = 0; i < 100; i++)
		data[i] = (char)('A' + i % 50);
	assert_int_equal(obj_put(g_store, k, data, sizeof(data)), 0);
	/* First byte. */
	assert_int_equal(obj_get(g_store, k, 0, 1, &b), 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], data[0]);
	/* Last byte. */
	assert_int_equal(obj_get(g_store, k, 99, 1, &b), 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], data[99]);
	/* Middle. */
	assert_int_equal(obj_get(g_store, k, 37, 20, &b), 0);
	assert_int_equal(b.len, 20);
	assert_memory_equal(b.data, data + 37, 20);
	/* A range past the end is cut at the end. */
	assert_int_equal(obj_get(g_store, k, 90, 20, &b), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, data + 90, 10);
	/* To the end. */
	assert_int_equal(obj_get(g_store, k, 10, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 90);
	assert_memory_equal(b.data, data + 10, 90);
	/* At or past the end: 0 bytes, not an error (and out is reset). */
	assert_int_equal(obj_get(g_store, k, 100, 5, &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(obj_get(g_store, k, 0, 3, &b), 0);
	assert_int_equal(obj_get(g_store, k, 5000, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 0);
	/* Zero length. */
	assert_int_equal(obj_get(g_store, k, 4, 0, &b), 0);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_object_empty(void **state)
{
	const char *k = key_of("empty/zero");
	struct obj_info info;
	struct buf b = BUF_INIT;
	struct obj_list l;

	(void)state;
	assert_int_equal(obj_put(g_store, k, "", 0), 0);
	assert_int_equal(obj_head(g_store, k, &info), 0);
	assert_int_equal(info.size, 0);
	assert_int_equal(buf_append(&b, "junk", 4), 0);
	assert_int_equal(obj_get(g_store, k, 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 0);
	buf_release(&b);
	obj_list_init(&l);
	assert_int_equal(
	    obj_list(g_store, key_of("empty/"), NULL, NULL, 10, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].key, k);
	assert_int_equal(l.items[0].size, 0);
	assert_false(l.truncated);
	obj_list_release(&l);
}

static void test_object_missing(void **state)
{
	const char *k = key_of("missing/nothing-here");
	struct buf b = BUF_INIT;
	struct obj_info info;

	(void)state;
	assert_int_equal(obj_get(g_store, k, 0, OBJ_TO_END, &b), -ENOENT);
	assert_int_equal(obj_head(g_store, k, &info), -ENOENT);
	assert_int_equal(obj_del(g_store, k), 0);
	put_str(k, "x");
	assert_int_equal(obj_del(g_store, k), 0);
	assert_int_equal(obj_del(g_store, k), 0);
	assert_int_equal(obj_get(g_store, k, 0, OBJ_TO_END, &b), -ENOENT);
	buf_release(&b);
}

static void test_object_names(void **state)
{
	static const char *names[] = {
	    "names/with space",
	    "names/two  spaces and trailing ",
	    /* "ünïcödé/日本語" */
	    "names/\xc3\xbc"
	    "n\xc3\xaf"
	    "c\xc3\xb6"
	    "d\xc3\xa9/"
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "names/sym+bols=&;,$@!'()*",
	    "names/percent%20not-decoded",
	    "names/q?uestion#hash",
	    "names/tilde~under_score-dash.dot",
	};
	size_t n = ARRAY_SIZE(names), got_n;
	char *want[ARRAY_SIZE(names)];
	char **got;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		want[i] = strdup(key_of("%s", names[i]));
		put_str(want[i], names[i]);
	}
	for (size_t i = 0; i < n; i++)
		assert_content(want[i], names[i]);
	got = list_all(key_of("names/"), 1000, false, &got_n);
	assert_int_equal(got_n, n);
	/* Byte order: sort the expectation the same way. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(want[i], want[j]) > 0) {
				char *t = want[i];

				want[i] = want[j];
				want[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(got[i], want[i]);
		free(want[i]);
	}
	free_keys(got, got_n);
}

#define MANY 1100

static void put_many(void)
{
	if (g_many_done)
		return;
	for (int i = 0; i < MANY; i++) {
		char v[16];

		snprintf(v, sizeof(v), "%d", i);
		put_str(key_of("many/k%04d", i), v);
	}
	/* Neighbours that must not show up under "many/". */
	put_str(key_of("man"), "x");
	put_str(key_of("manyx"), "x");
	put_str(key_of("many0/k"), "x");
	g_many_done = true;
}

static void check_many(char **keys, size_t n)
{
	assert_int_equal(n, MANY);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(keys[i], key_of("many/k%04zu", i));
}

static void test_object_list_token(void **state)
{
	struct obj_list l;
	char **keys;
	size_t n;

	(void)state;
	put_many();
	obj_list_init(&l);
	assert_int_equal(
	    obj_list(g_store, key_of("many/"), NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, 1000);
	assert_true(l.truncated);
	assert_non_null(l.next_token);
	{
		char *tok = strdup(l.next_token);

		assert_int_equal(
		    obj_list(g_store, key_of("many/"), NULL, tok, 1000, &l), 0);
		free(tok);
	}
	assert_int_equal(l.n, 100);
	assert_false(l.truncated);
	assert_null(l.next_token);
	assert_string_equal(l.items[0].key, key_of("many/k1000"));
	assert_string_equal(l.items[99].key, key_of("many/k1099"));
	obj_list_release(&l);
	keys = list_all(key_of("many/"), 1000, false, &n);
	check_many(keys, n);
	free_keys(keys, n);
	keys = list_all(key_of("many/"), 7, false, &n);
	check_many(keys, n);
	free_keys(keys, n);
}

static void test_object_list_after(void **state)
{
	struct obj_list l;
	char **keys;
	size_t n;

	(void)state;
	put_many();
	keys = list_all(key_of("many/"), 1000, true, &n);
	check_many(keys, n);
	free_keys(keys, n);
	obj_list_init(&l);
	/* Strictly after: k0499 itself is not listed. */
	assert_int_equal(obj_list(g_store, key_of("many/"),
				  key_of("many/k0499"), NULL, 3, &l),
			 0);
	assert_int_equal(l.n, 3);
	assert_true(l.truncated);
	assert_string_equal(l.items[0].key, key_of("many/k0500"));
	assert_string_equal(l.items[2].key, key_of("many/k0502"));
	/* A start key that is not itself a key. */
	assert_int_equal(obj_list(g_store, key_of("many/"),
				  key_of("many/k0499x"), NULL, 1, &l),
			 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].key, key_of("many/k0500"));
	/* After everything: empty, not truncated. */
	assert_int_equal(obj_list(g_store, key_of("many/"), key_of("many/z"),
				  NULL, 1000, &l),
			 0);
	assert_int_equal(l.n, 0);
	assert_false(l.truncated);
	/* The last page exactly: not truncated. */
	assert_int_equal(obj_list(g_store, key_of("many/"),
				  key_of("many/k1096"), NULL, 3, &l),
			 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[2].key, key_of("many/k1099"));
	if (l.truncated) {
		/* Allowed (S3 may say so); then the next page is empty. */
		char *tok = strdup(l.next_token);

		assert_int_equal(
		    obj_list(g_store, key_of("many/"), NULL, tok, 3, &l), 0);
		assert_int_equal(l.n, 0);
		free(tok);
	}
	obj_list_release(&l);
}

static void test_object_list_prefix(void **state)
{
	static const char *all[] = {
	    "pre/ab", "pre/abc", "pre/abd/x", "pre/abd/y/z", "pre/b", "pre/a",
	};
	char **keys;
	size_t n;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		put_str(key_of("%s", all[i]), all[i]);
	keys = list_all(key_of("pre/ab"), 1000, false, &n);
	assert_int_equal(n, 4);
	assert_string_equal(keys[0], key_of("pre/ab"));
	assert_string_equal(keys[1], key_of("pre/abc"));
	assert_string_equal(keys[2], key_of("pre/abd/x"));
	assert_string_equal(keys[3], key_of("pre/abd/y/z"));
	free_keys(keys, n);
	keys = list_all(key_of("pre/abd/"), 1000, false, &n);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], key_of("pre/abd/x"));
	free_keys(keys, n);
	keys = list_all(key_of("pre/zz"), 1000, false, &n);
	assert_int_equal(n, 0);
	free_keys(keys, n);
	keys = list_all(key_of("pre/"), 2, false, &n);
	assert_int_equal(n, 6);
	assert_string_equal(keys[0], key_of("pre/a"));
	assert_string_equal(keys[5], key_of("pre/b"));
	free_keys(keys, n);
}

/* Byte order across '/': "a-c" < "a.x" < "a/b" < "a0" (0x2d 0x2e 0x2f 0x30). */
static void test_object_list_order(void **state)
{
	static const char *want[] = {
	    "order/a-c",   "order/a.x", "order/a/b", "order/a/b0",
	    "order/a/c/d", "order/a0",	"order/b",
	};
	char **keys;
	size_t n;

	(void)state;
	for (size_t i = ARRAY_SIZE(want); i-- > 0;)
		put_str(key_of("%s", want[i]), "v");
	keys = list_all(key_of("order/"), 1000, false, &n);
	assert_int_equal(n, ARRAY_SIZE(want));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(keys[i], key_of("%s", want[i]));
	free_keys(keys, n);
	/* Page by page, each page of one key, with start_after. */
	keys = list_all(key_of("order/"), 1, true, &n);
	assert_int_equal(n, ARRAY_SIZE(want));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(keys[i], key_of("%s", want[i]));
	free_keys(keys, n);
}

struct rw_arg {
	const char *key;
	size_t len;
	int rounds;
	int bad;
};

static void *overwriter(void *p)
{
	struct rw_arg *a = p;
	char *v = malloc(a->len);

	for (int r = 0; r < a->rounds; r++) {
		memset(v, r % 2 ? 'b' : 'a', a->len);
		if (obj_put(g_store, a->key, v, a->len) != 0)
			a->bad++;
	}
	free(v);
	return NULL;
}

/* Readers see a whole old or whole new object, never a mix or a prefix. */
static void test_object_atomic_put(void **state)
{
	struct rw_arg a = {key_of("atomic/obj"), 256 * 1024, 20, 0};
	struct buf b = BUF_INIT;
	char *v = malloc(a.len);
	pthread_t t;

	(void)state;
	assert_non_null(v);
	memset(v, 'a', a.len);
	assert_int_equal(obj_put(g_store, a.key, v, a.len), 0);
	free(v);
	assert_int_equal(pthread_create(&t, NULL, overwriter, &a), 0);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(obj_get(g_store, a.key, 0, OBJ_TO_END, &b), 0);
		assert_int_equal(b.len, a.len);
		for (size_t j = 1; j < b.len; j++)
			if (b.data[j] != b.data[0])
				fail_msg("mixed object at byte %zu", j);
	}
	pthread_join(t, NULL);
	assert_int_equal(a.bad, 0);
	buf_release(&b);
}

static void test_object_sync(void **state)
{
	(void)state;
	put_str(key_of("sync/a"), "a");
	assert_int_equal(obj_sync(g_store), 0);
	assert_int_equal(obj_sync(g_store), 0);
}

/* ---- file store specifics ---- */

static int count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void test_object_file_no_temp(void **state)
{
	char path[512];
	char **keys;
	size_t n;

	(void)state;
	if (!on_file_store())
		skip();
	for (int i = 0; i < 50; i++)
		put_str(key_of("tmpcheck/k%d", i), "data");
	keys = list_all("", 1000, false, &n);
	assert_true(n >= 50);
	for (size_t i = 0; i < n; i++)
		assert_null(strstr(keys[i], ".tmp"));
	free_keys(keys, n);
	snprintf(path, sizeof(path), "%s/store/.tmp", g_dir);
	assert_int_equal(count_files(path), 0);
	/* The reserved name is refused rather than silently hidden. */
	assert_int_equal(obj_put(g_store, ".tmp/x", "x", 1), -EINVAL);
	assert_int_equal(obj_put(g_store, key_of("a//b"), "x", 1), -EINVAL);
}

static void test_object_file_open_errors(void **state)
{
	struct obj_store *s = NULL;
	char url[600];

	(void)state;
	if (!on_file_store())
		skip();
	snprintf(url, sizeof(url), "file://%s/does-not-exist/", g_dir);
	assert_int_equal(obj_open(url, false, &s), -ENOENT);
	assert_null(s);
	/* create makes it (with parents). */
	snprintf(url, sizeof(url), "file://%s/new/deep/dir/", g_dir);
	assert_int_equal(obj_open(url, true, &s), 0);
	assert_non_null(s);
	assert_int_equal(obj_put(s, "k", "v", 1), 0);
	assert_int_equal(obj_sync(s), 0);
	obj_close(s);
	s = NULL;
	/* A file, not a directory. */
	snprintf(url, sizeof(url), "file://%s/new/deep/dir/k", g_dir);
	assert_true(obj_open(url, false, &s) < 0);
	assert_null(s);
	/* Unwritable (root bypasses modes: use sysfs, which refuses mkdir). */
	if (geteuid() == 0 && access("/sys/kernel", F_OK) == 0) {
		assert_int_equal(obj_open("file:///sys/kernel/", false, &s),
				 -EACCES);
		assert_null(s);
	} else if (geteuid() != 0) {
		char dir[400];

		snprintf(dir, sizeof(dir), "%s/ro", g_dir);
		assert_int_equal(mkdir(dir, 0500), 0);
		snprintf(url, sizeof(url), "file://%s/", dir);
		assert_int_equal(obj_open(url, false, &s), -EACCES);
		assert_null(s);
		chmod(dir, 0700);
	}
}

static void test_object_file_delete_prunes(void **state)
{
	char path[900];
	struct stat st;

	(void)state;
	if (!on_file_store())
		skip();
	put_str(key_of("prune/x/y/z/obj"), "v");
	put_str(key_of("prune/x/keep"), "v");
	snprintf(path, sizeof(path), "%s/store/%s", g_dir, key_of("prune/x/y"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(obj_del(g_store, key_of("prune/x/y/z/obj")), 0);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/store/%s", g_dir, key_of("prune/x"));
	assert_int_equal(stat(path, &st), 0);
	/* A put into a pruned directory recreates it. */
	put_str(key_of("prune/x/y/z/obj"), "again");
	assert_content(key_of("prune/x/y/z/obj"), "again");
}

/*
 * obj_ref: the store stays open until its last owner closes it (the suite
 * teardown closes the last hold; ASan sees a use after free otherwise).
 * A store that is up reports so through obj_state.
 */
static void test_object_ref_state(void **state)
{
	struct obj_state st;

	(void)state;
	assert_ptr_equal(obj_ref(g_store), g_store);
	obj_close(g_store); /* one of two holds */
	put_str(key_of("ref/obj"), "still open");
	assert_content(key_of("ref/obj"), "still open");
	memset(&st, 0xff, sizeof(st));
	assert_int_equal(obj_state(g_store, &st), 0);
	assert_false(st.down);
	assert_int_equal(st.outages, 0);
	assert_int_equal(st.down_ms, 0);
	assert_string_equal(st.why, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_object_put_get),
	    cmocka_unit_test(test_object_aligned_put),
	    cmocka_unit_test(test_object_aligned_get),
	    cmocka_unit_test(test_object_range),
	    cmocka_unit_test(test_object_empty),
	    cmocka_unit_test(test_object_missing),
	    cmocka_unit_test(test_object_names),
	    cmocka_unit_test(test_object_list_token),
	    cmocka_unit_test(test_object_list_after),
	    cmocka_unit_test(test_object_list_prefix),
	    cmocka_unit_test(test_object_list_order),
	    cmocka_unit_test(test_object_atomic_put),
	    cmocka_unit_test(test_object_sync),
	    cmocka_unit_test(test_object_file_no_temp),
	    cmocka_unit_test(test_object_file_open_errors),
	    cmocka_unit_test(test_object_file_delete_prunes),
	    cmocka_unit_test(test_object_ref_state),
	};

	int failed = cmocka_run_group_tests(tests, suite_setup, suite_teardown);

	if (getenv("TESSERA_TEST_STORE"))
		return failed;
	/* The file store again, on its fallback without O_TMPFILE. */
	setenv("TESSERA_FILE_NAMED_PUTS", "1", 1);
	memset(g_dir, 0, sizeof(g_dir));
	return failed + cmocka_run_group_tests_name("named puts", tests,
						    suite_setup,
						    suite_teardown);
}
