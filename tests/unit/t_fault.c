/*
 * t_fault.c - the fault layer: injected error and truncation rates are
 * roughly honoured and counted, the same seed gives the same faults, the
 * ops filter and delay work, bad specs are refused, and TESSERA_FAULT makes
 * obj_open wrap a store.  The inner store is a small in-memory store
 * defined here (one mutex), so the numbers are the layer's alone.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <unistd.h>

#include "object/object.h"
#include "util/buf.h"

/* ---- an in-memory store ---------------------------------------------- */

#define MEM_MAX 64

struct mem_store {
	struct obj_store base;
	pthread_mutex_t lock;
	char *key[MEM_MAX];   /* guarded by lock */
	struct buf val[MEM_MAX];
	int n;
	int closed;
};

static struct mem_store *to_mem(struct obj_store *s)
{
	return (struct mem_store *)s;
}

static int mem_find(struct mem_store *m, const char *key)
{
	for (int i = 0; i < m->n; i++)
		if (strcmp(m->key[i], key) == 0)
			return i;
	return -1;
}

static int mem_put(struct obj_store *s, const char *key, const void *d,
		   size_t len)
{
	struct mem_store *m = to_mem(s);
	int i;

	pthread_mutex_lock(&m->lock);
	i = mem_find(m, key);
	if (i < 0 && m->n < MEM_MAX) {
		i = m->n++;
		m->key[i] = strdup(key);
		buf_init(&m->val[i]);
	}
	if (i >= 0) {
		buf_reset(&m->val[i]);
		buf_append(&m->val[i], d, len);
	}
	pthread_mutex_unlock(&m->lock);
	return i < 0 ? -ENOSPC : 0;
}

static int mem_get(struct obj_store *s, const char *key, uint64_t off,
		   uint64_t len, struct buf *out)
{
	struct mem_store *m = to_mem(s);
	int i, rc = 0;

	buf_reset(out);
	pthread_mutex_lock(&m->lock);
	i = mem_find(m, key);
	if (i < 0) {
		rc = -ENOENT;
	} else if (off < m->val[i].len) {
		uint64_t n = MIN(len, m->val[i].len - off);

		rc = buf_append(out, m->val[i].data + off, (size_t)n);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int mem_head(struct obj_store *s, const char *key,
		    struct obj_info *out)
{
	struct mem_store *m = to_mem(s);
	int i;

	pthread_mutex_lock(&m->lock);
	i = mem_find(m, key);
	if (i >= 0 && out) {
		out->size = m->val[i].len;
		out->mtime_ns = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return i < 0 ? -ENOENT : 0;
}

static int mem_del(struct obj_store *s, const char *key)
{
	struct mem_store *m = to_mem(s);
	int i;

	pthread_mutex_lock(&m->lock);
	i = mem_find(m, key);
	if (i >= 0) {
		free(m->key[i]);
		buf_release(&m->val[i]);
		m->key[i] = m->key[m->n - 1];
		m->val[i] = m->val[m->n - 1];
		m->n--;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A real paging listing: sorted, after @token (the last key), @limit. */
static int mem_list(struct obj_store *s, const char *prefix,
		    const char *start_after, const char *token, int limit,
		    struct obj_list *out)
{
	struct mem_store *m = to_mem(s);
	char *keys[MEM_MAX];
	int n = 0;

	(void)start_after;
	obj_list_reset(out);
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->n; i++)
		if (strncmp(m->key[i], prefix, strlen(prefix)) == 0 &&
		    (!token || strcmp(m->key[i], token) > 0))
			keys[n++] = m->key[i];
	qsort(keys, (size_t)n, sizeof(keys[0]), cmp_str);
	for (int i = 0; i < n && i < limit; i++)
		obj_list_add(out, keys[i], 0, 0);
	if (n > limit) {
		out->truncated = true;
		out->next_token = strdup(keys[limit - 1]);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int g_closed;

static void mem_close(struct obj_store *s)
{
	struct mem_store *m = to_mem(s);

	for (int i = 0; i < m->n; i++) {
		free(m->key[i]);
		buf_release(&m->val[i]);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
	g_closed++;
}

static const struct obj_store_ops mem_ops = {
	.scheme = "mem", .put = mem_put, .get = mem_get, .head = mem_head,
	.del = mem_del, .list = mem_list, .close = mem_close,
};

static struct obj_store *mem_new(void)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->base.ops = &mem_ops;
	snprintf(m->base.desc, sizeof(m->base.desc), "mem://test");
	pthread_mutex_init(&m->lock, NULL);
	return &m->base;
}

static struct obj_store *faulty(const char *spec)
{
	struct obj_store *f = NULL;

	assert_int_equal(obj_fault_wrap(mem_new(), spec, &f), 0);
	assert_non_null(f);
	return f;
}

/* ---- tests ------------------------------------------------------------ */

#define N_CALLS 4000

static void test_fault_error_rate(void **state)
{
	struct obj_store *f = faulty("err=0.3,seed=42");
	struct obj_fault_stats st;
	struct buf b = BUF_INIT;
	int errs = 0;

	(void)state;
	/* Puts fail too (30%): retry until the key is there. */
	while (obj_put(f, "k", "value", 5) != 0)
		;
	assert_int_equal(obj_fault_stats(f, &st), 0);
	{
		uint64_t calls0 = st.calls, errors0 = st.errors;

		for (int i = 0; i < N_CALLS; i++) {
			int rc = obj_get(f, "k", 0, OBJ_TO_END, &b);

			if (rc == -EIO) {
				errs++;
				assert_int_equal(b.len, 0);
			} else {
				assert_int_equal(rc, 0);
				assert_int_equal(b.len, 5);
			}
		}
		assert_int_equal(obj_fault_stats(f, &st), 0);
		assert_int_equal(st.calls - calls0, N_CALLS);
		assert_int_equal(st.errors - errors0, (uint64_t)errs);
	}
	/* 30% of 4000 = 1200; binomial sd ~29: a wide margin. */
	assert_true(errs > 1000 && errs < 1400);
	assert_int_equal(st.truncs, 0);
	assert_string_equal(obj_describe(f), "mem://test");
	obj_close(f);
	buf_release(&b);
}

static void test_fault_truncation(void **state)
{
	struct obj_store *f = faulty("trunc=0.25,seed=7");
	const char *v = "0123456789abcdefghij";
	struct obj_fault_stats st;
	struct buf b = BUF_INIT;
	int cut = 0;

	(void)state;
	assert_int_equal(obj_put(f, "k", v, 20), 0);
	for (int i = 0; i < N_CALLS; i++) {
		assert_int_equal(obj_get(f, "k", 0, OBJ_TO_END, &b), 0);
		assert_true(b.len <= 20);
		/* A cut body is a true prefix, still NUL-terminated. */
		assert_memory_equal(b.data, v, b.len);
		assert_int_equal(b.data[b.len], '\0');
		cut += b.len < 20;
	}
	assert_int_equal(obj_fault_stats(f, &st), 0);
	assert_int_equal(st.truncs, (uint64_t)cut);
	assert_int_equal(st.errors, 0);
	assert_true(cut > 850 && cut < 1150);
	/* Ranged reads are cut too, but an empty result never is. */
	assert_int_equal(obj_get(f, "k", 20, 5, &b), 0);
	assert_int_equal(b.len, 0);
	obj_close(f);
	buf_release(&b);
}

/* The outcome sequence of @spec over 300 mixed calls, as a string. */
static void outcomes(const char *spec, char *out)
{
	struct obj_store *f = faulty(spec);
	struct buf b = BUF_INIT;
	struct obj_info info;

	for (int i = 0; i < 300; i++) {
		int rc;

		switch (i % 3) {
		case 0:
			rc = obj_put(f, "k", "abcdef", 6);
			break;
		case 1:
			rc = obj_get(f, "k", 0, OBJ_TO_END, &b);
			if (rc == 0 && b.len < 6)
				rc = 1;
			break;
		default:
			rc = obj_head(f, "k", &info);
			break;
		}
		out[i] = rc == 0 ? '.' : rc == 1 ? 't' : rc == -EIO ? 'E' : '?';
	}
	out[300] = '\0';
	obj_close(f);
	buf_release(&b);
}

static void test_fault_deterministic(void **state)
{
	char a[301], b[301], c[301];

	(void)state;
	outcomes("err=0.2,trunc=0.2,seed=99", a);
	outcomes("err=0.2,trunc=0.2,seed=99", b);
	outcomes("err=0.2,trunc=0.2,seed=100", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_non_null(strchr(a, 'E'));
	assert_non_null(strchr(a, 't'));
	assert_null(strchr(a, '?'));
}

static void test_fault_ops_filter(void **state)
{
	struct obj_store *f = faulty("err=1,ops=put+del");
	struct obj_fault_stats st;
	struct buf b = BUF_INIT;
	struct obj_list l;
	int stored = 0;

	(void)state;
	/* Every put fails, yet some fail after storing (as real stores do). */
	for (int i = 0; i < 50; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(obj_put(f, k, "v", 1), -EIO);
		stored += obj_head(f, k, NULL) == 0;
	}
	assert_true(stored > 5 && stored < 45);
	/* get, head, list are not selected: they never fail. */
	obj_list_init(&l);
	assert_int_equal(obj_list(f, "k", NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, (size_t)stored);
	obj_list_release(&l);
	assert_int_equal(obj_get(f, "nope", 0, 1, &b), -ENOENT);
	assert_int_equal(obj_fault_stats(f, &st), 0);
	assert_int_equal(st.calls, 50);
	assert_int_equal(st.errors, 50);
	obj_close(f);
	buf_release(&b);
}

static void test_fault_delay(void **state)
{
	struct obj_store *f = faulty("delay_ms=2,delay=0.5,seed=3");
	struct obj_fault_stats st;

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(obj_put(f, "k", "v", 1), 0);
	assert_int_equal(obj_fault_stats(f, &st), 0);
	assert_int_equal(st.calls, 100);
	assert_true(st.delays > 25 && st.delays < 75);
	assert_int_equal(st.errors, 0);
	obj_close(f);
}

static void test_fault_bad_spec(void **state)
{
	static const char *bad[] = {
		"err=1.5", "err=-0.1", "err", "foo=1", "ops=put+bogus", "ops=",
		"seed=-1", "delay_ms=abc", "trunc=0.5x", "err=nan",
		"after=-1", "after=x", "page=1001", "keys=",
	};
	struct obj_store *in = mem_new(), *f = NULL;
	int closed = g_closed;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (obj_fault_wrap(in, bad[i], &f) != -EINVAL)
			fail_msg("spec '%s' was accepted", bad[i]);
		assert_null(f);
	}
	/* The inner store is untouched on failure, and usable. */
	assert_int_equal(g_closed, closed);
	assert_int_equal(obj_put(in, "k", "v", 1), 0);
	assert_int_equal(obj_fault_stats(in, &(struct obj_fault_stats){ 0 }),
			 -EINVAL);
	/* Empty spec: a transparent layer; closing it closes the inner one. */
	assert_int_equal(obj_fault_wrap(in, "", &f), 0);
	assert_int_equal(obj_head(f, "k", NULL), 0);
	obj_close(f);
	assert_int_equal(g_closed, closed + 1);
}

/*
 * keys= selects by prefix, after= spares the first calls, page= caps list
 * pages: a listing of "a/" fails on its second page, "b/" never does.
 */
static void test_fault_after_keys_page(void **state)
{
	struct obj_store *f = faulty("err=1,ops=list,keys=a/,after=1,page=2");
	struct obj_fault_stats st;
	struct obj_list l;

	(void)state;
	for (int i = 0; i < 5; i++) {
		char k[16];

		snprintf(k, sizeof(k), "a/%d", i);
		assert_int_equal(obj_put(f, k, "v", 1), 0);
	}
	assert_int_equal(obj_put(f, "b/1", "v", 1), 0);
	assert_int_equal(obj_put(f, "b/2", "v", 1), 0);
	assert_int_equal(obj_put(f, "b/3", "v", 1), 0);
	obj_list_init(&l);
	assert_int_equal(obj_list(f, "a/", NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.truncated);
	assert_string_equal(l.items[1].key, "a/1");
	assert_string_equal(l.next_token, "a/1");
	{
		char *tok = strdup(l.next_token);

		assert_int_equal(obj_list(f, "a/", NULL, tok, 1000, &l), -EIO);
		assert_int_equal(l.n, 0);
		free(tok);
	}
	/* Not selected: neither capped nor failed nor counted. */
	assert_int_equal(obj_list(f, "b/", NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, 3);
	assert_false(l.truncated);
	assert_int_equal(obj_fault_stats(f, &st), 0);
	assert_int_equal(st.calls, 2);
	assert_int_equal(st.errors, 1);
	obj_list_release(&l);
	obj_close(f);

	/* after= alone: exactly the first N calls pass. */
	f = faulty("err=1,ops=head,after=3");
	assert_int_equal(obj_put(f, "k", "v", 1), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(obj_head(f, "k", NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(obj_head(f, "k", NULL), -EIO);
	obj_close(f);
}

struct thr {
	struct obj_store *f;
	int errs;
};

static void *hammer(void *p)
{
	struct thr *t = p;
	struct buf b = BUF_INIT;

	for (int i = 0; i < 2000; i++)
		t->errs += obj_get(t->f, "k", 0, OBJ_TO_END, &b) == -EIO;
	buf_release(&b);
	return NULL;
}

static void test_fault_threads(void **state)
{
	struct obj_store *f = faulty("err=0.5,ops=get");
	struct obj_fault_stats st;
	struct thr t[4];
	pthread_t th[4];
	int errs = 0;

	(void)state;
	assert_int_equal(obj_put(f, "k", "v", 1), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ f, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &t[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		errs += t[i].errs;
	}
	assert_int_equal(obj_fault_stats(f, &st), 0);
	assert_int_equal(st.calls, 8000);
	assert_int_equal(st.errors, (uint64_t)errs);
	assert_true(errs > 3600 && errs < 4400);
	obj_close(f);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_fault_env(void **state)
{
	char dir[] = "/tmp/t_fault-XXXXXX", url[128];
	struct obj_store *s = NULL;
	struct obj_fault_stats st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(url, sizeof(url), "file://%s/", dir);
	setenv("TESSERA_FAULT", "err=1,ops=put", 1);
	assert_int_equal(obj_open(url, false, &s), 0);
	assert_int_equal(obj_put(s, "k", "v", 1), -EIO);
	assert_int_equal(obj_fault_stats(s, &st), 0);
	assert_int_equal(st.errors, 1);
	obj_close(s);
	s = NULL;
	setenv("TESSERA_FAULT", "err=2", 1);
	assert_int_equal(obj_open(url, false, &s), -EINVAL);
	assert_null(s);
	unsetenv("TESSERA_FAULT");
	assert_int_equal(obj_open(url, false, &s), 0);
	assert_int_equal(obj_fault_stats(s, &st), -EINVAL);
	assert_int_equal(obj_put(s, "k", "v", 1), 0);
	obj_close(s);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_error_rate),
		cmocka_unit_test(test_fault_truncation),
		cmocka_unit_test(test_fault_deterministic),
		cmocka_unit_test(test_fault_ops_filter),
		cmocka_unit_test(test_fault_delay),
		cmocka_unit_test(test_fault_bad_spec),
		cmocka_unit_test(test_fault_after_keys_page),
		cmocka_unit_test(test_fault_threads),
		cmocka_unit_test(test_fault_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
