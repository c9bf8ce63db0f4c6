/*
 * vfs_lock.c - flock(2) and fcntl(2) byte-range locks among the handles of
 * one mount.
 *
 * One table for the whole mount, hashed by inode.  Each entry holds the
 * fcntl ranges (owner = the kernel's lock owner id, one per process/file
 * table) and the flock holders (owner = one open file description).  The
 * two kinds never conflict with each other, as on Linux.
 *
 * Invariants of an entry's fcntl ranges: ranges of one owner never overlap
 * and adjacent ranges of one owner with the same type are merged, so a
 * getlk answer and an unlock split behave like Linux.  Ends are inclusive;
 * UINT64_MAX means "to the end of the file, however long".
 *
 * Waiting (F_SETLKW, flock without LOCK_NB) blocks on one condition
 * variable, broadcast on every release; a waiter re-checks its conflict and
 * polls the request's interrupt flag every 100 ms.  Entries with no locks
 * are freed; a waiter looks its entry up again after each wait.
 */
#include "util/common.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>

struct vfs_plock {
	uint64_t owner;
	uint32_t pid;
	int type;
	uint64_t start;
	uint64_t end;
};

struct vfs_flk {
	uint64_t owner;
	int type;
};

struct vfs_lockent {
	uint64_t ino;
	struct vfs_lockent *next;
	struct vfs_plock *p;
	size_t np;
	size_t capp;
	struct vfs_flk *fl;
	size_t nfl;
	size_t capfl;
};

void vfs_locktab_init(struct vfs_locktab *t)
{
	pthread_condattr_t ca;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
}

static void ent_free(struct vfs_lockent *e)
{
	free(e->p);
	free(e->fl);
	free(e);
}

void vfs_locktab_release(struct vfs_locktab *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(t->buckets); i++) {
		struct vfs_lockent *e = t->buckets[i];

		while (e) {
			struct vfs_lockent *n = e->next;

			ent_free(e);
			e = n;
		}
		t->buckets[i] = NULL;
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

static struct vfs_lockent **ent_slot(struct vfs_locktab *t, uint64_t ino)
{
	struct vfs_lockent **pp = &t->buckets[ino % ARRAY_SIZE(t->buckets)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

/* Caller holds t->lock.  NULL when absent and !create, or on ENOMEM. */
static struct vfs_lockent *ent_get(struct vfs_locktab *t, uint64_t ino,
				   bool create)
{
	struct vfs_lockent **pp = ent_slot(t, ino);

	if (*pp || !create)
		return *pp;
	*pp = calloc(1, sizeof(**pp));
	if (*pp)
		(*pp)->ino = ino;
	return *pp;
}

/* Free @ino's entry when it holds nothing.  Caller holds t->lock. */
static void ent_gc(struct vfs_locktab *t, uint64_t ino)
{
	struct vfs_lockent **pp = ent_slot(t, ino);
	struct vfs_lockent *e = *pp;

	if (e && e->np == 0 && e->nfl == 0) {
		*pp = e->next;
		ent_free(e);
	}
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

static bool conflicts(int t1, int t2)
{
	return t1 == F_WRLCK || t2 == F_WRLCK;
}

static const struct vfs_plock *plock_conflict(const struct vfs_lockent *e,
					      uint64_t owner,
					      const struct vfs_lock *lk)
{
	for (size_t i = 0; e && i < e->np; i++) {
		const struct vfs_plock *p = &e->p[i];

		if (p->owner != owner &&
		    overlaps(p->start, p->end, lk->start, lk->end) &&
		    conflicts(p->type, lk->type))
			return p;
	}
	return NULL;
}

int vfs_locktab_getlk(struct vfs_locktab *t, uint64_t ino, uint64_t owner,
		      struct vfs_lock *lk)
{
	const struct vfs_plock *p;

	if (lk->start > lk->end)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	p = plock_conflict(ent_get(t, ino, false), owner, lk);
	if (p) {
		lk->type = p->type;
		lk->start = p->start;
		lk->end = p->end;
		lk->pid = p->pid;
	} else {
		lk->type = F_UNLCK;
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int plock_push(struct vfs_plock **arr, size_t *n, size_t *cap,
		      const struct vfs_plock *p)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4;
		struct vfs_plock *a = realloc(*arr, nc * sizeof(*a));

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = nc;
	}
	(*arr)[(*n)++] = *p;
	return 0;
}

/* Do [s1,e1] and [s2,e2] overlap or touch? */
static bool touches(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	if (overlaps(s1, e1, s2, e2))
		return true;
	return (e1 != UINT64_MAX && e1 + 1 == s2) ||
	       (e2 != UINT64_MAX && e2 + 1 == s1);
}

/*
 * Set @owner's lock state on [start, end] to @type (F_UNLCK removes),
 * splitting and merging its existing ranges.  Builds a new array so that a
 * failed allocation leaves the old state intact.
 */
static int plock_apply(struct vfs_lockent *e, uint64_t owner, uint32_t pid,
		       int type, uint64_t start, uint64_t end)
{
	struct vfs_plock *arr = NULL, nw = {owner, pid, type, start, end};
	size_t n = 0, cap = 0;
	int rc = 0;

	for (size_t i = 0; i < e->np && rc == 0; i++) {
		struct vfs_plock o = e->p[i], part;

		if (o.owner != owner ||
		    !touches(o.start, o.end, nw.start, nw.end)) {
			rc = plock_push(&arr, &n, &cap, &o);
			continue;
		}
		if (o.type == type) {
			/* merge into the new range */
			nw.start = MIN(nw.start, o.start);
			nw.end = MAX(nw.end, o.end);
			continue;
		}
		if (!overlaps(o.start, o.end, start, end)) {
			rc = plock_push(&arr, &n, &cap, &o); /* just adjacent */
			continue;
		}
		if (o.start < start) {
			part = o;
			part.end = start - 1;
			rc = plock_push(&arr, &n, &cap, &part);
		}
		if (rc == 0 && o.end > end) {
			part = o;
			part.start = end + 1;
			rc = plock_push(&arr, &n, &cap, &part);
		}
	}
	if (rc == 0 && type != F_UNLCK)
		rc = plock_push(&arr, &n, &cap, &nw);
	if (rc < 0) {
		free(arr);
		return rc;
	}
	free(e->p);
	e->p = arr;
	e->np = n;
	e->capp = cap;
	return 0;
}

static bool interrupted(const struct vfs_ctx *c)
{
	return c && c->interrupted && c->interrupted(c->arg);
}

/* Wait up to 100 ms for a release.  Caller holds t->lock. */
static void wait_release(struct vfs_locktab *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += 100 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&t->cond, &t->lock, &ts);
}

int vfs_locktab_setlk(struct vfs_locktab *t, const struct vfs_ctx *c,
		      uint64_t ino, uint64_t owner, const struct vfs_lock *lk,
		      bool wait)
{
	struct vfs_lockent *e;
	int rc = 0;

	if (lk->start > lk->end)
		return -EINVAL;
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (lk->type == F_UNLCK) {
		e = ent_get(t, ino, false);
		if (e)
			rc = plock_apply(e, owner, lk->pid, F_UNLCK, lk->start,
					 lk->end);
		goto out_wake;
	}
	for (;;) {
		e = ent_get(t, ino, true);
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
		if (!plock_conflict(e, owner, lk))
			break;
		if (!wait) {
			rc = -EAGAIN;
			goto out;
		}
		if (interrupted(c)) {
			rc = -EINTR;
			goto out;
		}
		wait_release(t);
	}
	rc = plock_apply(e, owner, lk->pid, lk->type, lk->start, lk->end);
out_wake:
	/* an unlock or a downgrade may let waiters in */
	pthread_cond_broadcast(&t->cond);
out:
	ent_gc(t, ino);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static struct vfs_flk *flk_find(struct vfs_lockent *e, uint64_t owner)
{
	for (size_t i = 0; e && i < e->nfl; i++)
		if (e->fl[i].owner == owner)
			return &e->fl[i];
	return NULL;
}

static void flk_remove(struct vfs_lockent *e, uint64_t owner)
{
	struct vfs_flk *f = flk_find(e, owner);

	if (f)
		*f = e->fl[--e->nfl];
}

static bool flk_conflict(const struct vfs_lockent *e, uint64_t owner, int type)
{
	for (size_t i = 0; e && i < e->nfl; i++)
		if (e->fl[i].owner != owner && conflicts(e->fl[i].type, type))
			return true;
	return false;
}

static int flk_add(struct vfs_lockent *e, uint64_t owner, int type)
{
	if (e->nfl == e->capfl) {
		size_t nc = e->capfl ? e->capfl * 2 : 4;
		struct vfs_flk *a = realloc(e->fl, nc * sizeof(*a));

		if (!a)
			return -ENOMEM;
		e->fl = a;
		e->capfl = nc;
	}
	e->fl[e->nfl].owner = owner;
	e->fl[e->nfl].type = type;
	e->nfl++;
	return 0;
}

int vfs_locktab_flock(struct vfs_locktab *t, const struct vfs_ctx *c,
		      uint64_t ino, uint64_t owner, int op)
{
	int type, rc = 0;
	bool nb = (op & LOCK_NB) != 0;
	struct vfs_lockent *e;
	struct vfs_flk *cur;

	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		type = F_RDLCK;
		break;
	case LOCK_EX:
		type = F_WRLCK;
		break;
	case LOCK_UN:
		type = F_UNLCK;
		break;
	default:
		return -EINVAL;
	}
	pthread_mutex_lock(&t->lock);
	e = ent_get(t, ino, type != F_UNLCK);
	if (!e) {
		rc = type == F_UNLCK ? 0 : -ENOMEM;
		goto out;
	}
	cur = flk_find(e, owner);
	if (cur && cur->type == type)
		goto out;
	/* Linux converts by dropping the old lock first (not atomic). */
	if (cur) {
		flk_remove(e, owner);
		pthread_cond_broadcast(&t->cond);
	}
	if (type == F_UNLCK)
		goto out;
	for (;;) {
		if (!flk_conflict(e, owner, type))
			break;
		if (nb) {
			rc = -EWOULDBLOCK;
			goto out;
		}
		if (interrupted(c)) {
			rc = -EINTR;
			goto out;
		}
		wait_release(t);
		e = ent_get(t, ino, true);
		if (!e) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = flk_add(e, owner, type);
out:
	ent_gc(t, ino);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void vfs_locktab_drop(struct vfs_locktab *t, uint64_t ino, uint64_t owner,
		      bool posix, bool flock)
{
	struct vfs_lockent *e;

	pthread_mutex_lock(&t->lock);
	e = ent_get(t, ino, false);
	if (e) {
		if (posix) {
			/* removing never allocates when nothing is split */
			if (plock_apply(e, owner, 0, F_UNLCK, 0, UINT64_MAX) <
			    0) {
				size_t k = 0;

				for (size_t i = 0; i < e->np; i++)
					if (e->p[i].owner != owner)
						e->p[k++] = e->p[i];
				e->np = k;
			}
		}
		if (flock)
			flk_remove(e, owner);
		pthread_cond_broadcast(&t->cond);
		ent_gc(t, ino);
	}
	pthread_mutex_unlock(&t->lock);
}
