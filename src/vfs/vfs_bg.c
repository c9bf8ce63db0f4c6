/*
 * vfs_bg.c - the mount's background worker: deletes the objects of slices
 * metadata has released, and compacts chunks with many slices.
 *
 * One thread.  Every second it writes the access times reads noted
 * (vfs_atime.c), runs meta_cleanup (expired trash, files whose last name
 * and last open are gone) and then drains meta_pending_slices: make the
 * metadata durable (meta_sync), delete the objects, drop cached blocks,
 * then tell metadata in one transaction per batch which slices are gone.
 * A failed object delete leaves the slice queued for the next pass.  The
 * sync comes first because an object must never go while the deletion that
 * released it could still be lost: by a crash of the database, or, with
 * replicated metadata, because another host took the volume over and
 * restored a state without that deletion (the replicated kv_sync fails with
 * -EROFS then, and nothing is deleted).
 *
 * Compaction requests (ino, chunk, threshold) arrive from reads that met
 * many slices and commits that added many; they are deduplicated in a
 * bounded queue (requests past it are dropped: a later read asks again).
 * Compacting a chunk: read its list, read the visible bytes between the
 * first and last data byte through chunk_read, write them as one new slice,
 * make the objects durable, then meta_compact swaps the list if it is
 * unchanged.  -ESTALE (a writer got there first) means skip; the new
 * slice's objects are deleted again.  Uncovered and zero ranges outside
 * the data read as zeros before and after, so they are simply dropped.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "object/object.h"
#include "util/crash.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DELETE_BATCH 256

int vfs_bg_delete_pass(struct vfs *v)
{
	struct meta_delslice *ds;
	size_t n;
	int rc;

	rc = meta_cleanup(v->m);
	if (rc < 0)
		return rc;
	for (;;) {
		uint64_t done[DELETE_BATCH];
		size_t ndone = 0;
		bool failed = false;
		int r;

		rc = meta_pending_slices(v->m, DELETE_BATCH, &ds, &n);
		if (rc < 0 || n == 0)
			return rc;
		rc = meta_sync(v->m);
		if (rc < 0) {
			free(ds);
			return rc;
		}
		CRASH_POINT(CRASH_DELETE_BEFORE_STORE);
		for (size_t i = 0; i < n; i++) {
			r = chunk_delete_slice(v->cs, ds[i].id, ds[i].size);
			if (r < 0) {
				failed = true;
				rc = r;
				continue;
			}
			chunk_forget_slice(v->cs, ds[i].id);
			done[ndone++] = ds[i].id;
		}
		free(ds);
		if (ndone > 0)
			CRASH_POINT(CRASH_DELETE_AFTER_STORE);
		/* one txn for the batch: the foreground shares the writer */
		r = meta_slices_deleted(v->m, done, ndone);
		if (r < 0) {
			failed = true;
			rc = r;
		} else {
			atomic_fetch_add(&v->st.deleted_slices, ndone);
		}
		if (failed || n < DELETE_BATCH)
			return rc;
		pthread_mutex_lock(&v->bg_lock);
		failed = v->bg_stop;
		pthread_mutex_unlock(&v->bg_lock);
		if (failed)
			return 0;
	}
}

/* Write bytes [lo, hi) of the chunk as a new slice; *id on success. */
static int compact_write(struct vfs *v, const struct slice *s, size_t n,
			 uint32_t lo, uint32_t hi, uint64_t *id)
{
	uint32_t bs = v->fmt.block_size ? v->fmt.block_size
					: (uint32_t)TESSERA_BLOCK_SIZE;
	struct chunk_writer *w = NULL;
	char *buf;
	int rc;

	buf = malloc(bs);
	if (!buf)
		return -ENOMEM;
	rc = meta_new_slice_id(v->m, id);
	if (rc == 0)
		rc = chunk_writer_new(v->cs, *id, &w);
	for (uint32_t p = lo; rc == 0 && p < hi;) {
		uint32_t k = MIN(bs, hi - p);
		ssize_t r = chunk_read(v->cs, s, n, p, buf, k);

		if (r == (ssize_t)k)
			r = chunk_writer_write(w, p - lo, buf, k);
		if (r != (ssize_t)k)
			rc = r < 0 ? (int)r : -EIO;
		p += k;
	}
	if (rc == 0)
		rc = chunk_writer_finish(w);
	if (rc == 0)
		rc = obj_sync(v->os);
	if (rc < 0 && w && chunk_writer_len(w) > 0)
		chunk_delete_slice(v->cs, *id, chunk_writer_len(w));
	chunk_writer_free(w);
	free(buf);
	return rc;
}

int vfs_compact_chunk(struct vfs *v, uint64_t ino, uint32_t chunk,
		      uint32_t min_slices)
{
	struct slice *s = NULL, repl;
	struct vfs_seg *sg = NULL;
	size_t n = 0, nsg = 0;
	uint32_t lo = UINT32_MAX, hi = 0, alo = UINT32_MAX, ahi = 0;
	uint64_t id = 0;
	int rc;

	rc = meta_read_chunk(v->m, ino, chunk, &s, &n);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	if (n < 2 || n < min_slices)
		goto out;
	rc = vfs_resolve_slices(s, n, &sg, &nsg);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < nsg; i++) {
		alo = MIN(alo, sg[i].pos);
		ahi = MAX(ahi, sg[i].pos + sg[i].len);
		if (sg[i].id == 0)
			continue;
		lo = MIN(lo, sg[i].pos);
		hi = MAX(hi, sg[i].pos + sg[i].len);
	}
	memset(&repl, 0, sizeof(repl));
	if (lo < hi) {
		rc = compact_write(v, s, n, lo, hi, &id);
		if (rc < 0)
			goto out;
		CRASH_POINT(CRASH_COMPACT_AFTER_UPLOAD);
		repl.pos = lo;
		repl.id = id;
		repl.size = repl.len = hi - lo;
	} else {
		/* only zeros: one zero slice over the same range */
		repl.pos = alo < ahi ? alo : 0;
		repl.size = repl.len = alo < ahi ? ahi - alo : 0;
	}
	rc = meta_compact(v->m, ino, chunk, s, n, &repl);
	if (rc < 0) {
		if (id)
			chunk_delete_slice(v->cs, id, repl.size);
		goto out;
	}
	CRASH_POINT(CRASH_COMPACT_AFTER_SWAP);
	atomic_fetch_add(&v->st.compactions, 1);
	atomic_fetch_add(&v->compact_gen, 1);
	vfs_file_invalidate_ino(v, ino);
out:
	free(sg);
	free(s);
	return rc;
}

void vfs_bg_compact(struct vfs *v, uint64_t ino, uint32_t chunk,
		    uint32_t min_slices)
{
	if (!v->bg_started)
		return;
	pthread_mutex_lock(&v->bg_lock);
	for (size_t i = 0; i < v->ncreq; i++) {
		if (v->creq[i].ino == ino && v->creq[i].chunk == chunk) {
			v->creq[i].min_slices =
				MIN(v->creq[i].min_slices, min_slices);
			goto out;
		}
	}
	if (v->ncreq < VFS_COMPACT_QUEUE) {
		v->creq[v->ncreq].ino = ino;
		v->creq[v->ncreq].chunk = chunk;
		v->creq[v->ncreq].min_slices = min_slices;
		v->ncreq++;
		pthread_cond_signal(&v->bg_cond);
	}
out:
	pthread_mutex_unlock(&v->bg_lock);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool past(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec ||
	       (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/*
 * The worker yields to requests: nice 10 and the lowest best-effort I/O
 * priority for this thread.  Deleting a big file's blocks (on ext4 with
 * the discard option, each unlink waits for a discard) took a quarter of
 * the mount's samples while a create loop ran beside it.  Best effort,
 * not idle: a disk that never rests must not stop deletions for good.
 */
static void bg_lower_priority(void)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	(void)setpriority(PRIO_PROCESS, (id_t)tid, 10);
	/* IOPRIO_WHO_PROCESS, IOPRIO_CLASS_BE << 13 | level 7 */
	(void)syscall(SYS_ioprio_set, 1, tid, (2 << 13) | 7);
}

static void *bg_main(void *arg)
{
	struct vfs *v = arg;
	struct timespec next;
	int last_err = 0;

	bg_lower_priority();

	deadline_in(&next, 1000);
	pthread_mutex_lock(&v->bg_lock);
	while (!v->bg_stop) {
		if (past(&next)) {
			int rc;

			pthread_mutex_unlock(&v->bg_lock);
			vfs_atime_flush(v); /* logs its failure */
			rc = vfs_bg_delete_pass(v);
			if (rc < 0 && rc != last_err)
				log_warn("cannot delete released slices: %s",
					 strerror(-rc));
			last_err = rc;
			deadline_in(&next, 1000);
			pthread_mutex_lock(&v->bg_lock);
			continue;
		}
		if (v->ncreq > 0) {
			struct vfs_creq r = v->creq[0];
			int rc;

			memmove(v->creq, v->creq + 1,
				--v->ncreq * sizeof(v->creq[0]));
			pthread_mutex_unlock(&v->bg_lock);
			rc = vfs_compact_chunk(v, r.ino, r.chunk, r.min_slices);
			if (rc < 0 && rc != -ESTALE)
				log_warn("cannot compact chunk %u of inode "
					 "%llu: %s",
					 r.chunk, (unsigned long long)r.ino,
					 strerror(-rc));
			pthread_mutex_lock(&v->bg_lock);
			continue;
		}
		pthread_cond_timedwait(&v->bg_cond, &v->bg_lock, &next);
	}
	pthread_mutex_unlock(&v->bg_lock);
	return NULL;
}

int vfs_bg_start(struct vfs *v)
{
	pthread_condattr_t ca;
	int rc;

	/* bg_cond waits on CLOCK_MONOTONIC deadlines */
	pthread_cond_destroy(&v->bg_cond);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->bg_cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&v->bg, NULL, bg_main, v);
	if (rc != 0)
		return log_fail(-rc, "cannot start the background worker");
	v->bg_started = true;
	return 0;
}

void vfs_bg_stop(struct vfs *v)
{
	if (!v->bg_started)
		return;
	pthread_mutex_lock(&v->bg_lock);
	v->bg_stop = true;
	pthread_cond_signal(&v->bg_cond);
	pthread_mutex_unlock(&v->bg_lock);
	pthread_join(v->bg, NULL);
	v->bg_started = false;
}
