/*
 * pool.h - a bounded pool of reusable items (the metadata engines'
 * connections).
 *
 * An item embeds struct pool_item as its first member.  pool_take hands
 * out an idle item, or NULL meaning "room for one more: make it" (the
 * caller allocates and dials it, or calls pool_forget when that fails); it
 * waits while @max items are out.  pool_give returns an item for reuse;
 * pool_forget drops one (already freed by the caller) from the count.
 * Thread-safe; the lock is never held while the caller dials or does I/O.
 */
#ifndef TESSERA_UTIL_POOL_H
#define TESSERA_UTIL_POOL_H

#include <pthread.h>

struct pool_item {
	struct pool_item *next; /* in the idle list */
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_item *idle; /* guarded by lock */
	int n;			/* guarded by lock: idle and in use */
	int max;
};

void pool_init(struct pool *p, int max);
/** Free every idle item with @free_item, then the pool (none in use). */
void pool_destroy(struct pool *p, void (*free_item)(struct pool_item *));
/** An idle item, or NULL: make a new one (counted already).  May wait. */
struct pool_item *pool_take(struct pool *p);
/** Give @it back for reuse. */
void pool_give(struct pool *p, struct pool_item *it);
/** One item taken (or a NULL take) is gone for good. */
void pool_forget(struct pool *p);

#endif
