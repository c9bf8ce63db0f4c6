/*
 * pool.c - a bounded pool of reusable items (pool.h).
 */
#include "util/common.h"
#include "util/pool.h"

void pool_init(struct pool *p, int max)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->idle = NULL;
	p->n = 0;
	p->max = max;
}

void pool_destroy(struct pool *p, void (*free_item)(struct pool_item *))
{
	while (p->idle) {
		struct pool_item *it = p->idle;

		p->idle = it->next;
		free_item(it);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
}

struct pool_item *pool_take(struct pool *p)
{
	struct pool_item *it = NULL;

	pthread_mutex_lock(&p->lock);
	while (!p->idle && p->n >= p->max)
		pthread_cond_wait(&p->cond, &p->lock);
	if (p->idle) {
		it = p->idle;
		p->idle = it->next;
	} else {
		p->n++;
	}
	pthread_mutex_unlock(&p->lock);
	return it;
}

void pool_give(struct pool *p, struct pool_item *it)
{
	pthread_mutex_lock(&p->lock);
	it->next = p->idle;
	p->idle = it;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void pool_forget(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->n--;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
