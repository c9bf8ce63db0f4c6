/*
 * vfs_lock.c - flock(2) and fcntl(2) locks of a mount: the requests go to
 * meta/ (meta_getlk, meta_setlk, meta_flock), which keeps every lock of
 * every mount of the volume; this file adds waiting and release on close.
 *
 * Waiting (F_SETLKW, flock without LOCK_NB): try; on -EAGAIN wait on the
 * mount's condition variable, broadcast whenever a call here may have
 * released something (unlock, downgrade, flock conversion, close), or for
 * the poll delay, which starts at WAIT_MIN_MS and doubles up to
 * WAIT_MAX_MS (a release on another mount is seen within that).  The
 * request's interrupt flag (FUSE INTERRUPT: the application got a signal)
 * is checked before each wait and ends the wait with -EINTR.  A metadata
 * error ends it too (-EIO after the engine's bounded retries).
 *
 * Close: every close(2) drops the closing process's fcntl locks (FLUSH,
 * which close waits for) and the last close of an open file description
 * its flock (RELEASE, which the kernel sends without waiting: a process
 * that saw another exit may ask for the lock before that release ran).
 * So a non-blocking flock that meets only locks of this mount tries again
 * for a moment (GRACE_MS: the release may not have started yet), and as
 * long as releases are running here (bounded by SETTLE_MS).  Drops cost a metadata txn, so they are skipped for inodes on
 * which no lock call was made while open here (vfs_file.locked, set
 * before the first lock call).
 */
#include "util/common.h"
#include "meta/meta.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>

#define WAIT_MIN_MS 5
#define WAIT_MAX_MS 200
#define SETTLE_MS 2000
#define GRACE_MS 60

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

void vfs_locktab_release(struct vfs_locktab *t)
{
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

static uint64_t locktab_gen(struct vfs_locktab *t)
{
	uint64_t g;

	pthread_mutex_lock(&t->lock);
	g = t->gen;
	pthread_mutex_unlock(&t->lock);
	return g;
}

/* Wake the waiters of this mount: something may have been released. */
static void locktab_wake(struct vfs_locktab *t)
{
	pthread_mutex_lock(&t->lock);
	t->gen++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Wait until a wake after generation @gen, or @ms milliseconds. */
static void locktab_wait(struct vfs_locktab *t, uint64_t gen, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->lock);
	while (t->gen == gen &&
	       pthread_cond_timedwait(&t->cond, &t->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&t->lock);
}

static bool interrupted(const struct vfs_ctx *c)
{
	return c && c->interrupted && c->interrupted(c->arg);
}

/* Note a lock call on @ino, before it is made (see the top comment). */
static void mark_locked(struct vfs *v, uint64_t ino)
{
	struct vfs_file *f = vfs_file_find(v, ino);

	if (f) {
		atomic_store(&f->locked, true);
		vfs_file_put(v, f);
	}
}

/*
 * Run @try (one non-blocking attempt) until it does not answer -EAGAIN,
 * waiting as the top comment says; without @wait only while @settle (may
 * be NULL) says a release here may still end the conflict.
 */
static int lock_loop(struct vfs *v, const struct vfs_ctx *c, bool wait,
		     bool (*settle)(struct vfs *v, void *arg, long waited_ms),
		     int (*try)(struct vfs *v, void *arg), void *arg)
{
	long ms = WAIT_MIN_MS, waited = 0;
	int rc;

	for (;;) {
		uint64_t gen = locktab_gen(&v->locks);

		rc = try(v, arg);
		if (rc != -EAGAIN)
			return rc;
		if (!wait && !(settle && settle(v, arg, waited)))
			return rc;
		waited += ms;
		if (interrupted(c))
			return -EINTR;
		locktab_wait(&v->locks, gen, ms);
		ms = MIN(ms * 2, WAIT_MAX_MS);
	}
}

static void to_meta(const struct vfs_lock *lk, struct meta_plock *ml)
{
	memset(ml, 0, sizeof(*ml));
	ml->type = lk->type;
	ml->start = lk->start;
	ml->end = lk->end;
	ml->pid = lk->pid;
}

int vfs_getlk(struct vfs *v, uint64_t ino, uint64_t owner, struct vfs_lock *lk)
{
	struct meta_plock ml;
	int rc;

	to_meta(lk, &ml);
	rc = meta_getlk(v->m, ino, owner, &ml);
	if (rc < 0)
		return rc;
	lk->type = ml.type;
	if (ml.type != F_UNLCK) {
		lk->start = ml.start;
		lk->end = ml.end;
		lk->pid = ml.pid;
	}
	return 0;
}

struct setlk_arg {
	uint64_t ino;
	uint64_t owner;
	struct meta_plock lk;
};

static int try_setlk(struct vfs *v, void *arg)
{
	struct setlk_arg *a = arg;

	return meta_setlk(v->m, a->ino, a->owner, &a->lk);
}

int vfs_setlk(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	      uint64_t owner, const struct vfs_lock *lk, bool wait)
{
	struct setlk_arg a = {ino, owner, {0}};
	int rc;

	if (lk->start > lk->end)
		return -EINVAL;
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	to_meta(lk, &a.lk);
	mark_locked(v, ino);
	rc = lock_loop(v, c, wait, NULL, try_setlk, &a);
	/* an unlock or a downgrade may let waiters in */
	if (rc == 0 && lk->type != F_WRLCK)
		locktab_wake(&v->locks);
	return rc;
}

struct flock_arg {
	uint64_t ino;
	uint64_t owner;
	int type;
	bool own; /* the last conflict was with this mount's locks only */
};

static int try_flock(struct vfs *v, void *arg)
{
	struct flock_arg *a = arg;

	return meta_flock(v->m, a->ino, a->owner, a->type, &a->own);
}

static bool settle_flock(struct vfs *v, void *arg, long waited_ms)
{
	struct flock_arg *a = arg;

	if (!a->own)
		return false;
	if (waited_ms < GRACE_MS)
		return true;
	return waited_ms < SETTLE_MS && atomic_load(&v->releasing) > 0;
}

int vfs_flock(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	      uint64_t owner, int op)
{
	struct flock_arg a = {ino, owner, 0, false};
	int rc;

	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		a.type = F_RDLCK;
		break;
	case LOCK_EX:
		a.type = F_WRLCK;
		break;
	case LOCK_UN:
		a.type = F_UNLCK;
		break;
	default:
		return -EINVAL;
	}
	mark_locked(v, ino);
	rc = lock_loop(v, c, !(op & LOCK_NB), settle_flock, try_flock, &a);
	/* unlock, downgrade, or a conversion that dropped the old lock */
	if (rc != 0 || a.type != F_WRLCK)
		locktab_wake(&v->locks);
	return rc == -EAGAIN ? -EWOULDBLOCK : rc;
}

void vfs_locks_drop(struct vfs *v, struct vfs_file *f, uint64_t owner,
		    bool posix, bool flock)
{
	int rc;

	if (!atomic_load(&f->locked))
		return;
	rc = meta_unlock_owner(v->m, f->ino, owner, posix, flock);
	if (rc < 0)
		log_error("cannot release the locks of inode %llu: %s",
			  (unsigned long long)f->ino, strerror(-rc));
	locktab_wake(&v->locks);
}

void vfs_locks_released(struct vfs *v)
{
	atomic_fetch_sub(&v->releasing, 1);
	locktab_wake(&v->locks);
}
