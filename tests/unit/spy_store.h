/*
 * spy_store.h - an object store that wraps another one and records what
 * passes through it, for the t_chunk and t_cache suites (header-only).
 *
 * It records the key of every GET, counts the PUTs tried, and can fail
 * PUTs (fail_puts: that many with -EIO, -1 all) or slow them down
 * (put_delay_us).  A test may change fail_puts and put_delay_us while the
 * store is in use.
 */
#ifndef TESSERA_TESTS_SPY_STORE_H
#define TESSERA_TESTS_SPY_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "object/object.h"

struct spy {
	struct obj_store base;
	struct obj_store *inner;
	pthread_mutex_t lock;
	char **gets; /* keys of every GET, in order; guarded by lock */
	size_t ngets;
	atomic_int fail_puts; /* fail this many puts with -EIO (-1: all) */
	atomic_int puts_tried;
	atomic_uint put_delay_us;
};

#define SPY_UNUSED __attribute__((unused))

static struct spy *spy_of(struct obj_store *s)
{
	return (struct spy *)s;
}

static int spy_put(struct obj_store *s, const char *key, const void *data,
		   size_t len)
{
	struct spy *p = spy_of(s);
	int left = atomic_load(&p->fail_puts);
	unsigned delay = atomic_load(&p->put_delay_us);
	bool fail = false;

	atomic_fetch_add(&p->puts_tried, 1);
	/* Take one failure if any is left (-1: endless). */
	while (left != 0 && !fail) {
		if (left < 0 ||
		    atomic_compare_exchange_weak(&p->fail_puts, &left, left - 1))
			fail = true;
	}
	if (delay)
		usleep(delay);
	if (fail)
		return -EIO;
	return obj_put(p->inner, key, data, len);
}

static int spy_get(struct obj_store *s, const char *key, uint64_t off,
		   uint64_t len, struct buf *out)
{
	struct spy *p = spy_of(s);
	char **g;

	pthread_mutex_lock(&p->lock);
	g = realloc(p->gets, (p->ngets + 1) * sizeof(*p->gets));
	if (g) {
		p->gets = g;
		p->gets[p->ngets++] = strdup(key);
	}
	pthread_mutex_unlock(&p->lock);
	return obj_get(p->inner, key, off, len, out);
}

static int spy_head(struct obj_store *s, const char *key, struct obj_info *o)
{
	return obj_head(spy_of(s)->inner, key, o);
}

static int spy_del(struct obj_store *s, const char *key)
{
	return obj_del(spy_of(s)->inner, key);
}

static int spy_list(struct obj_store *s, const char *prefix, const char *sa,
		    const char *token, int limit, struct obj_list *out)
{
	return obj_list(spy_of(s)->inner, prefix, sa, token, limit, out);
}

static void spy_close(struct obj_store *s)
{
	(void)s;
}

static const struct obj_store_ops spy_ops = {
    .scheme = "spy",
    .put = spy_put,
    .get = spy_get,
    .head = spy_head,
    .del = spy_del,
    .list = spy_list,
    .close = spy_close,
};

/* Wrap @inner (borrowed: not closed by the spy). */
static SPY_UNUSED void spy_init(struct spy *p, struct obj_store *inner)
{
	memset(p, 0, sizeof(*p));
	p->base.ops = &spy_ops;
	snprintf(p->base.desc, sizeof(p->base.desc), "spy");
	p->inner = inner;
	pthread_mutex_init(&p->lock, NULL);
}

static SPY_UNUSED void spy_release(struct spy *p)
{
	for (size_t i = 0; i < p->ngets; i++)
		free(p->gets[i]);
	free(p->gets);
	p->gets = NULL;
	p->ngets = 0;
	pthread_mutex_destroy(&p->lock);
}

/* GETs of @key so far (NULL: of any key). */
static SPY_UNUSED size_t spy_count(struct spy *p, const char *key)
{
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->ngets; i++)
		if (!key || strcmp(p->gets[i], key) == 0)
			n++;
	pthread_mutex_unlock(&p->lock);
	return n;
}

#endif
