/*
 * vfs_atime.c - access times recorded lazily.
 *
 * A read that relatime says must move atime used to run a metadata write
 * transaction on the read path, for every first read of a file written
 * since its last read: a third of the cost of reading a small file.  The
 * new atime is instead noted in a table (ino -> atime) that the background
 * worker writes out once a second, all entries in one transaction
 * (meta_set_atimes), as Linux's lazytime keeps atime in memory.
 *
 * Until written, the table is overlaid on every attribute this mount hands
 * out (vfs_file_overlay), so stat(2) after read(2) shows the new atime.  An
 * entry leaves the table only after a commit that wrote at least its time,
 * so there is no window where neither the table nor metadata has it.  A
 * crash loses at most a second of atime updates; other mounts see them a
 * second late.
 *
 * An explicit atime (utimes) must not be overwritten by an older pending
 * read: vfs_atime_forget drops the entry under flush_lock, which the
 * caller holds across its setattr, so no flush that saw the entry can
 * commit after it.  Without a background worker (tests, read-only), notes
 * are written at once, as before.
 *
 * Locks: flush_lock (held across a metadata txn) before lock (a leaf).
 * flush_lock may be taken under a vfs_file.lock (setattr), never the
 * reverse.
 */
#include "util/common.h"
#include "meta/meta.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

static struct vfs_atime_ent **atime_slot(struct vfs_atimes *t, uint64_t ino)
{
	struct vfs_atime_ent **pp = &t->buckets[ino % VFS_ATIME_BUCKETS];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

void vfs_atime_init(struct vfs_atimes *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->flush_lock, NULL);
}

void vfs_atime_release(struct vfs_atimes *t)
{
	for (size_t b = 0; b < VFS_ATIME_BUCKETS; b++) {
		while (t->buckets[b]) {
			struct vfs_atime_ent *e = t->buckets[b];

			t->buckets[b] = e->next;
			free(e);
		}
	}
	t->n = 0;
	pthread_mutex_destroy(&t->flush_lock);
	pthread_mutex_destroy(&t->lock);
}

void vfs_atime_overlay(struct vfs *v, struct meta_attr *a)
{
	struct vfs_atimes *t = &v->atimes;
	struct vfs_atime_ent *e;

	if (atomic_load(&t->n_atomic) == 0)
		return;
	pthread_mutex_lock(&t->lock);
	e = *atime_slot(t, a->ino);
	if (e && e->atime_ns > a->atime_ns)
		a->atime_ns = e->atime_ns;
	pthread_mutex_unlock(&t->lock);
}

void vfs_atime_note(struct vfs *v, uint64_t ino, int64_t atime_ns)
{
	struct vfs_atimes *t = &v->atimes;
	struct meta_atime one = {ino, atime_ns};
	struct vfs_atime_ent **pp, *e;
	bool full;

	if (!v->bg_started) {
		meta_set_atimes(v->m, &one, 1); /* best effort, as relatime */
		return;
	}
	pthread_mutex_lock(&t->lock);
	pp = atime_slot(t, ino);
	if (*pp) {
		(*pp)->atime_ns = MAX((*pp)->atime_ns, atime_ns);
	} else if ((e = malloc(sizeof(*e))) != NULL) {
		e->ino = ino;
		e->atime_ns = atime_ns;
		e->next = NULL;
		*pp = e;
		t->n++;
		atomic_store(&t->n_atomic, t->n);
	}
	full = t->n >= VFS_ATIME_MAX;
	pthread_mutex_unlock(&t->lock);
	if (full)
		vfs_atime_flush(v);
}

int vfs_atime_flush(struct vfs *v)
{
	struct vfs_atimes *t = &v->atimes;
	struct meta_atime *snap = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&t->flush_lock);
	pthread_mutex_lock(&t->lock);
	if (t->n > 0)
		snap = malloc(t->n * sizeof(*snap));
	for (size_t b = 0; snap && b < VFS_ATIME_BUCKETS; b++)
		for (struct vfs_atime_ent *e = t->buckets[b]; e; e = e->next)
			snap[n++] = (struct meta_atime){e->ino, e->atime_ns};
	pthread_mutex_unlock(&t->lock);
	if (n > 0)
		rc = meta_set_atimes(v->m, snap, n);
	if (rc == 0 && n > 0) {
		/* drop what was written, unless a newer read came since */
		pthread_mutex_lock(&t->lock);
		for (size_t i = 0; i < n; i++) {
			struct vfs_atime_ent **pp = atime_slot(t, snap[i].ino);
			struct vfs_atime_ent *e = *pp;

			if (e && e->atime_ns <= snap[i].atime_ns) {
				*pp = e->next;
				free(e);
				t->n--;
			}
		}
		atomic_store(&t->n_atomic, t->n);
		pthread_mutex_unlock(&t->lock);
	} else if (rc < 0) {
		log_warn("cannot record access times of %zu files: %s", n,
			 strerror(-rc));
	}
	pthread_mutex_unlock(&t->flush_lock);
	free(snap);
	return rc;
}

void vfs_atime_forget_locked(struct vfs *v, uint64_t ino)
{
	struct vfs_atimes *t = &v->atimes;
	struct vfs_atime_ent **pp, *e;

	pthread_mutex_lock(&t->lock);
	pp = atime_slot(t, ino);
	e = *pp;
	if (e) {
		*pp = e->next;
		free(e);
		t->n--;
		atomic_store(&t->n_atomic, t->n);
	}
	pthread_mutex_unlock(&t->lock);
}

void vfs_atime_touch(struct vfs *v, struct meta_attr *a, int64_t now_ns)
{
	vfs_atime_overlay(v, a);
	if (v->conf.atime == VFS_RELATIME && a->atime_ns > a->mtime_ns &&
	    a->atime_ns > a->ctime_ns &&
	    now_ns - a->atime_ns < 24LL * 3600 * 1000000000LL)
		return;
	vfs_atime_note(v, a->ino, now_ns);
}
