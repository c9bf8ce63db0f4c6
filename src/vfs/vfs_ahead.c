/*
 * vfs_ahead.c - readahead across small files, by inode number.
 *
 * Reading many small files one after another (cat *, grep -r, a build, a
 * backup) waits for one block fetch per file: a disk read on the local
 * store, a GET on S3, each after the kernel's OPEN and before its READ.
 * Files written together get consecutive inode numbers, and are often
 * read together in that order.  So when small files are opened for
 * reading at inode numbers rising by 1 or 2 (AHEAD_RUN opens in a row),
 * the next AHEAD_FILES inodes' small files have their block fetched in
 * the background, a window kept AHEAD_FILES/2 ahead of the reader.  A
 * worker thread does it: one metadata scan of the chunk records for the
 * window (meta_read_heads), then chunk_prefetch_blocks, bounded by the
 * readahead size.  VFS_AHEAD_STREAMS runs are followed at once: an open
 * continues the run whose last inode is 1 or 2 below its own, whichever
 * process made it (a shell loop runs one cat per file), or starts a new
 * one in place of the least recently used.  So readers working side by
 * side (make -j, parallel grep) do not break each other's runs.  Windows
 * wait for the worker in a ring of VFS_AHEAD_QUEUE (the oldest dropped
 * when full).
 *
 * Only files whose data is one slice within one block qualify, and only
 * the committed slice list is read: blocks are immutable and found by
 * slice id, so a stale list costs at most a useless fetch.  With
 * readahead off (max_readahead 0) nothing happens.
 *
 * Locks: a.lock is a leaf.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#define AHEAD_FILES 32 /* inodes looked at ahead of the reader */
#define AHEAD_RUN 2    /* sequential opens before the first window */

/* The run @ino continues, else a new one (run 0) in the LRU slot. */
static struct vfs_ahead_stream *stream_of(struct vfs_ahead *a, uint64_t ino)
{
	struct vfs_ahead_stream *st, *victim = &a->st[0];

	for (int i = 0; i < VFS_AHEAD_STREAMS; i++) {
		st = &a->st[i];
		if (st->use && ino > st->last && ino - st->last <= 2) {
			st->use = ++a->clock;
			st->last = ino;
			st->run++;
			return st;
		}
		if (st->use < victim->use)
			victim = st;
	}
	memset(victim, 0, sizeof(*victim));
	victim->last = ino;
	victim->use = ++a->clock;
	return victim;
}

static void *ahead_main(void *arg)
{
	struct vfs *v = arg;
	struct vfs_ahead *a = &v->ahead;
	struct meta_head h[AHEAD_FILES];
	struct slice s[AHEAD_FILES];

	pthread_mutex_lock(&a->lock);
	for (;;) {
		uint64_t from, to;
		size_t n = 0;
		int q;

		while (!a->stop && a->nq == 0)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->stop)
			break;
		from = a->q[a->qhead].from;
		to = a->q[a->qhead].to;
		a->qhead = (a->qhead + 1) % VFS_AHEAD_QUEUE;
		a->nq--;
		pthread_mutex_unlock(&a->lock);
		if (meta_read_heads(v->m, from, to, v->block_size, h,
				    AHEAD_FILES, &n) < 0)
			n = 0;
		for (size_t i = 0; i < n; i++)
			s[i] = h[i].s;
		q = chunk_prefetch_blocks(v->cs, s, n,
					  chunk_max_readahead(v->cs));
		atomic_fetch_add(&a->blocks, (uint64_t)q);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int vfs_ahead_start(struct vfs *v)
{
	struct vfs_ahead *a = &v->ahead;
	int rc;

	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->inited = true;
	if (chunk_max_readahead(v->cs) == 0)
		return 0;
	rc = pthread_create(&a->th, NULL, ahead_main, v);
	if (rc != 0)
		return log_fail(-rc, "cannot start the readahead thread: %s",
				strerror(rc));
	a->started = true;
	return 0;
}

void vfs_ahead_stop(struct vfs *v)
{
	struct vfs_ahead *a = &v->ahead;

	if (!a->inited)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->th, NULL);
		a->started = false;
	}
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	a->inited = false;
}

void vfs_ahead_opened(struct vfs *v, uint64_t ino)
{
	struct vfs_ahead *a = &v->ahead;
	struct vfs_ahead_stream *st;

	if (!a->started)
		return;
	pthread_mutex_lock(&a->lock);
	st = stream_of(a, ino);
	if (st->run >= AHEAD_RUN && st->until < ino + AHEAD_FILES / 2) {
		unsigned slot;

		if (a->nq == VFS_AHEAD_QUEUE) { /* drop the oldest window */
			a->qhead = (a->qhead + 1) % VFS_AHEAD_QUEUE;
			a->nq--;
		}
		slot = (a->qhead + a->nq++) % VFS_AHEAD_QUEUE;
		a->q[slot].from = MAX(st->until + 1, ino + 1);
		a->q[slot].to = ino + AHEAD_FILES;
		st->until = a->q[slot].to;
		pthread_cond_signal(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
}
