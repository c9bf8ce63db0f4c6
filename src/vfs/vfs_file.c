/*
 * vfs_file.c - the data path of open files: buffered writes into slices,
 * commits, reads through slice lists, fallocate, SEEK_DATA/SEEK_HOLE,
 * copy_file_range.
 *
 * State of one open inode (struct vfs_file, shared by its handles):
 *
 *   clean --write--> dirty --commit--> clean
 *
 * While dirty, each chunk the application writes to has at most one active
 * slice writer (ws[]).  A write that continues or overwrites the active
 * slice goes into it; any other write to that chunk (or -EAGAIN from the
 * writer: the block is already uploading) finishes the active slice
 * ("seal": wait for its uploads, append it to pend[]) and starts a new one.
 * So within a chunk the order of pend[] is the order of the writes, which
 * is what "later slices cover earlier ones" needs.
 *
 * A commit seals every active writer and appends all of pend[] plus the new
 * length to metadata in ONE meta_write transaction.  It runs on flush
 * (close), fsync, release, before a read, truncate, fallocate or lseek of
 * the same inode, and when VFS_MAX_PENDING slices wait.  A failed commit
 * keeps pend[] for the next try; a failed upload loses that slice's bytes
 * and is reported once (f->err) by the next flush/fsync, as a writeback
 * error would be.
 *
 * Reads commit first (simple and correct), then resolve slice lists via a
 * small per-file cache, invalidated by every commit, truncate, fallocate
 * and compaction of the inode.  A read that fails with -EIO retries once
 * with a fresh list: a compaction here or on another mount may have
 * deleted the old slices under it.
 *
 * The virtual files' handles carry their text and never reach this path.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "object/object.h"
#include "util/crash.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK TESSERA_CHUNK_SIZE

/* ---- the table of open inodes ---- */

static struct vfs_file **file_slot(struct vfs *v, uint64_t ino)
{
	struct vfs_file **pp = &v->files[ino % VFS_FILE_BUCKETS];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

struct vfs_file *vfs_file_find(struct vfs *v, uint64_t ino)
{
	struct vfs_file *f;

	pthread_mutex_lock(&v->files_lock);
	f = *file_slot(v, ino);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&v->files_lock);
	return f;
}

/* Find or create the state of @ino; *created tells whether it is new. */
static int file_get(struct vfs *v, uint64_t ino, struct vfs_file **out,
		    bool *created)
{
	struct vfs_file **pp, *f;

	pthread_mutex_lock(&v->files_lock);
	pp = file_slot(v, ino);
	f = *pp;
	*created = false;
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&v->files_lock);
			return -ENOMEM;
		}
		f->ino = ino;
		pthread_mutex_init(&f->lock, NULL);
		*pp = f;
		v->nfiles++;
		*created = true;
	}
	f->refs++;
	pthread_mutex_unlock(&v->files_lock);
	*out = f;
	return 0;
}

static void file_free(struct vfs_file *f)
{
	vfs_file_invalidate(f);
	for (size_t i = 0; i < f->nws; i++)
		chunk_writer_free(f->ws[i].w);
	free(f->pend);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void vfs_file_put(struct vfs *v, struct vfs_file *f)
{
	bool last;

	pthread_mutex_lock(&v->files_lock);
	last = --f->refs == 0;
	if (last) {
		struct vfs_file **pp = file_slot(v, f->ino);

		*pp = f->next;
		v->nfiles--;
	}
	pthread_mutex_unlock(&v->files_lock);
	if (last)
		file_free(f);
}

void vfs_file_overlay(struct vfs *v, struct meta_attr *a)
{
	struct vfs_file *f;

	vfs_atime_overlay(v, a); /* files and directories (readdir) */
	if (!S_ISREG(a->mode))
		return;
	f = vfs_file_find(v, a->ino);
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->dirty) {
		a->length = MAX(a->length, f->wlen);
		a->mtime_ns = MAX(a->mtime_ns, f->wtime_ns);
		a->ctime_ns = MAX(a->ctime_ns, f->wtime_ns);
		f->wtime_shown = true;
	}
	pthread_mutex_unlock(&f->lock);
	vfs_file_put(v, f);
}

void vfs_file_invalidate(struct vfs_file *f)
{
	for (size_t i = 0; i < VFS_SCACHE_N; i++) {
		free(f->cache[i].s);
		f->cache[i].s = NULL;
		f->cache[i].valid = false;
	}
}

void vfs_file_invalidate_ino(struct vfs *v, uint64_t ino)
{
	struct vfs_file *f = vfs_file_find(v, ino);

	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	vfs_file_invalidate(f);
	pthread_mutex_unlock(&f->lock);
	vfs_file_put(v, f);
}

/* ---- writing ---- */

static int pend_push(struct vfs_file *f, uint32_t chunk, const struct slice *s)
{
	if (f->npend == f->cappend) {
		size_t nc = f->cappend ? f->cappend * 2 : 16;
		struct meta_slice_write *p = realloc(f->pend, nc * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->pend = p;
		f->cappend = nc;
	}
	f->pend[f->npend].chunk = chunk;
	f->pend[f->npend].s = *s;
	f->npend++;
	return 0;
}

/*
 * The blocks a writer uploaded before it failed (a full store, an outage)
 * belong to a slice that is never committed: delete them now, best
 * effort, rather than leave them for gc.  Only for slices never handed to
 * metadata: a commit that failed may still have happened.
 */
static void drop_uncommitted(struct vfs *v, uint64_t id, uint32_t len)
{
	if (chunk_delete_slice(v->cs, id, len) < 0)
		log_warn("cannot delete the blocks of unwritten slice %llu: "
			 "gc will find them",
			 (unsigned long long)id);
}

/*
 * Finish active writer @i: wait for its uploads and queue it for commit.
 * The slot is removed either way; on failure its bytes are lost and the
 * error is kept for the next flush.  Caller holds f->lock.
 */
static int seal(struct vfs *v, struct vfs_file *f, size_t i)
{
	struct vfs_wslot ws = f->ws[i];
	struct slice s;
	uint32_t len = chunk_writer_len(ws.w);
	uint64_t id;
	int rc = 0;

	f->ws[i] = f->ws[--f->nws];
	atomic_fetch_sub(&v->nwriters, 1);
	if (len > 0) {
		rc = chunk_writer_finish(ws.w);
		if (rc == 0) {
			s.pos = ws.pos;
			s.id = chunk_writer_id(ws.w);
			s.size = len;
			s.off = 0;
			s.len = len;
			rc = pend_push(f, ws.chunk, &s);
		}
	}
	id = chunk_writer_id(ws.w);
	chunk_writer_free(ws.w);
	if (rc < 0 && len > 0)
		drop_uncommitted(v, id, len);
	if (rc < 0) {
		log_error("cannot write inode %llu: %s",
			  (unsigned long long)f->ino, strerror(-rc));
		if (f->err == 0)
			f->err = rc;
	}
	return rc;
}

static bool over_writer_budget(const struct vfs *v)
{
	return atomic_load(&v->nwriters) * (uint64_t)v->block_size >
	       v->mem_limit / 2;
}

static int start_writer(struct vfs *v, struct vfs_file *f, uint32_t chunk,
			uint32_t pos, struct vfs_wslot **out)
{
	struct chunk_writer *w;
	uint64_t id;
	int rc;

	/*
	 * Bound the partial blocks that idle writers pin in the pool, or
	 * writers waiting for pool memory could wait for each other.
	 */
	if (f->nws == VFS_MAX_WRITERS ||
	    (f->nws > 0 && over_writer_budget(v))) {
		rc = seal(v, f, 0);
		if (rc < 0)
			return rc;
	}
	rc = meta_new_slice_id(v->m, &id);
	if (rc < 0)
		return rc;
	rc = chunk_writer_new(v->cs, id, &w);
	if (rc < 0)
		return rc;
	f->ws[f->nws].chunk = chunk;
	f->ws[f->nws].pos = pos;
	f->ws[f->nws].w = w;
	*out = &f->ws[f->nws++];
	atomic_fetch_add(&v->nwriters, 1);
	return 0;
}

/*
 * Seal the writers of other open files that nobody is using right now
 * (trylock: never wait for a busy file).  Called with no file lock held.
 */
static void relieve_writers(struct vfs *v, struct vfs_file *self)
{
	struct vfs_file *list[64];
	size_t n = 0;

	pthread_mutex_lock(&v->files_lock);
	for (size_t b = 0; b < VFS_FILE_BUCKETS && n < ARRAY_SIZE(list); b++) {
		for (struct vfs_file *g = v->files[b];
		     g && n < ARRAY_SIZE(list); g = g->next) {
			if (g == self)
				continue;
			g->refs++;
			list[n++] = g;
		}
	}
	pthread_mutex_unlock(&v->files_lock);
	for (size_t i = 0; i < n; i++) {
		struct vfs_file *g = list[i];

		if (over_writer_budget(v) &&
		    pthread_mutex_trylock(&g->lock) == 0) {
			while (g->nws > 0)
				seal(v, g, g->nws - 1);
			pthread_mutex_unlock(&g->lock);
		}
		vfs_file_put(v, g);
	}
}

/* Write @n bytes at @pos of chunk @chunk (n fits the chunk). */
static int write_piece(struct vfs *v, struct vfs_file *f, uint32_t chunk,
		       uint32_t pos, const char *p, size_t n)
{
	struct vfs_wslot *ws = NULL;
	ssize_t r;
	int rc;

	for (size_t i = 0; i < f->nws; i++) {
		if (f->ws[i].chunk == chunk) {
			ws = &f->ws[i];
			break;
		}
	}
	if (ws && pos >= ws->pos && pos <= ws->pos + chunk_writer_len(ws->w)) {
		r = chunk_writer_write(ws->w, pos - ws->pos, p, n);
		if (r == (ssize_t)n)
			return 0;
		if (r != -EAGAIN) {
			seal(v, f, (size_t)(ws - f->ws));
			return r < 0 ? (int)r : -EIO;
		}
	}
	if (ws) {
		rc = seal(v, f, (size_t)(ws - f->ws));
		if (rc < 0)
			return rc;
	}
	rc = start_writer(v, f, chunk, pos, &ws);
	if (rc < 0)
		return rc;
	r = chunk_writer_write(ws->w, 0, p, n);
	if (r == (ssize_t)n)
		return 0;
	rc = r < 0 ? (int)r : -EIO;
	seal(v, f, (size_t)(ws - f->ws));
	return rc;
}

/*
 * Ask the worker to check (> VFS_COMPACT_WRITE slices) the chunks this
 * commit added many slices to, and every 32nd commit of the file all the
 * chunks it touched (an append + fsync loop adds one slice per commit).
 */
static void commit_compact_hint(struct vfs *v, struct vfs_file *f)
{
	uint32_t seen[32];
	size_t nseen = 0;
	bool periodic = ++f->ncommits % 32 == 0;

	for (size_t i = 0; i < f->npend && nseen < ARRAY_SIZE(seen); i++) {
		uint32_t c = f->pend[i].chunk, cnt = 0;
		bool dup = false;

		for (size_t k = 0; k < nseen; k++)
			dup = dup || seen[k] == c;
		if (dup)
			continue;
		seen[nseen++] = c;
		for (size_t k = i; k < f->npend; k++)
			cnt += f->pend[k].chunk == c;
		if (cnt >= 8 || periodic)
			vfs_bg_compact(v, f->ino, c, VFS_COMPACT_WRITE + 1);
	}
}

/*
 * getattr showed the time of the last buffered write as mtime/ctime; the
 * commit stamped a later one.  Put back what was shown, so times do not
 * move without a write (a failure only leaves the later time).
 */
static void keep_shown_mtime(struct vfs *v, struct vfs_file *f)
{
	struct meta_attr in, out;

	memset(&in, 0, sizeof(in));
	in.mtime_ns = in.ctime_ns = f->wtime_ns;
	meta_setattr(v->m, NULL, f->ino, META_SET_MTIME | META_SET_CTIME, &in,
		     &out);
	f->wtime_shown = false;
}

int vfs_file_commit(struct vfs *v, struct vfs_file *f, bool sync)
{
	struct meta_attr attr;
	int rc = 0;

	while (f->nws > 0)
		seal(v, f, f->nws - 1);
	if (sync) {
		rc = obj_sync(v->os);
		if (rc < 0)
			return log_fail(rc, "cannot sync objects of '%s'",
					obj_describe(v->os));
	}
	if (!f->dirty)
		return 0;
	if (f->npend > 0 || f->wlen > f->length) {
		CRASH_POINT(CRASH_WRITE_BEFORE_COMMIT);
		rc = meta_write(v->m, f->ino, f->pend, f->npend, f->wlen,
				&attr);
		if (rc < 0)
			return log_fail(rc,
					"cannot commit %zu slices of inode "
					"%llu",
					f->npend, (unsigned long long)f->ino);
		CRASH_POINT(CRASH_WRITE_AFTER_COMMIT);
		f->length = attr.length;
		atomic_fetch_add(&f->mgen, 1);
		atomic_fetch_add(&v->st.commits, 1);
		commit_compact_hint(v, f);
		if (f->wtime_shown)
			keep_shown_mtime(v, f);
	}
	f->npend = 0;
	f->wlen = 0;
	f->dirty = false;
	f->wtime_shown = false;
	vfs_file_invalidate(f);
	return 0;
}

/* Drop what cannot be committed (file gone, or failing for good). */
static void file_discard(struct vfs *v, struct vfs_file *f)
{
	while (f->nws > 0) {
		struct vfs_wslot ws = f->ws[--f->nws];
		uint32_t len = chunk_writer_len(ws.w);
		uint64_t id = chunk_writer_id(ws.w);

		atomic_fetch_sub(&v->nwriters, 1);
		chunk_writer_free(ws.w);
		if (len > 0)
			drop_uncommitted(v, id, len);
	}
	f->npend = 0;
	f->wlen = 0;
	f->dirty = false;
}

static struct vfs_handle *handle_of(uint64_t fh, enum vfs_handle_kind kind)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	if (!h || h->magic != VFS_HANDLE_MAGIC || h->kind != kind)
		return NULL;
	return h;
}

static bool writable(const struct vfs_handle *h)
{
	return (h->flags & O_ACCMODE) != O_RDONLY;
}

/*
 * A write past everything buffered: -EDQUOT / -ENOSPC now, as ext4 gives
 * them, rather than at the commit on close; a write that fits in part is
 * cut short (*len) to what fits.  An answer holds for half the room it
 * saw, for at most a second, so an append asks about once a second, not
 * at every write (the commit checks each time anyway).  Caller holds
 * f->lock.
 */
static int check_grow(struct vfs *v, struct vfs_file *f, uint64_t off,
		      size_t *len)
{
	uint64_t max_end, end = off + *len;
	int64_t now = vfs_now_ns();
	int rc;

	if (end <= MAX(f->length, f->wlen))
		return 0;
	if (end <= f->grow_ok && now - f->grow_ns < 1000000000LL)
		return 0;
	rc = meta_check_grow(v->m, f->ino, f->length, end, &max_end);
	f->grow_ok = 0;
	if (rc == 0 && max_end > end) {
		f->grow_ok = end + (max_end - end) / 2;
		f->grow_ns = now;
	}
	if (rc == 0 || max_end >= end)
		return 0;
	if (max_end <= off)
		return rc;
	*len = (size_t)(max_end - off);
	return 0;
}

ssize_t vfs_write(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
		  const void *buf, size_t len)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	const char *p = buf;
	size_t done = 0;
	int rc = 0;

	if (!h && (h = handle_of(fh, VFS_H_VIRT)) && h->ctl && h->ino == ino)
		return vfs_control_write(v, h, buf, len);
	if (!h || h->kind != VFS_H_FILE || h->ino != ino || !writable(h))
		return -EBADF;
	if (v->conf.read_only)
		return -EROFS;
	if (len == 0)
		return 0;
	if (off + len < off || off + len > (uint64_t)INT64_MAX)
		return -EFBIG;
	f = h->f;
	if (over_writer_budget(v))
		relieve_writers(v, f);
	pthread_mutex_lock(&f->lock);
	rc = check_grow(v, f, off, &len);
	if (rc < 0) {
		pthread_mutex_unlock(&f->lock);
		return rc;
	}
	while (done < len) {
		uint64_t o = off + done;
		uint32_t chunk = (uint32_t)(o / CHUNK);
		uint32_t pos = (uint32_t)(o % CHUNK);
		size_t n = MIN(len - done, (size_t)(CHUNK - pos));

		rc = write_piece(v, f, chunk, pos, p + done, n);
		if (rc < 0)
			break;
		done += n;
		f->dirty = true;
		f->wlen = MAX(f->wlen, o + n);
		f->wtime_ns = vfs_now_ns();
	}
	if (done > 0) {
		vfs_file_invalidate(f);
		if (f->npend >= VFS_MAX_PENDING)
			vfs_file_commit(v, f, false);
	}
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add(&v->st.writes, 1);
	atomic_fetch_add(&v->st.write_bytes, done);
	return done > 0 ? (ssize_t)done : rc;
}

/* ---- reading ---- */

/*
 * Copy the slice list of @chunk into *out (malloc'ed), from the cache or
 * metadata.  Caller holds f->lock.
 */
static int chunk_slices(struct vfs *v, struct vfs_file *f, uint32_t chunk,
			struct slice **out, size_t *n)
{
	struct vfs_scache *c = NULL;
	struct slice *s;
	size_t ns;
	int rc;

	for (size_t i = 0; i < VFS_SCACHE_N; i++) {
		if (f->cache[i].valid && f->cache[i].chunk == chunk) {
			c = &f->cache[i];
			break;
		}
	}
	if (!c) {
		rc = meta_read_chunk(v->m, f->ino, chunk, &s, &ns);
		if (rc < 0)
			return rc;
		c = &f->cache[f->cache_next++ % VFS_SCACHE_N];
		free(c->s);
		c->s = s;
		c->n = ns;
		c->chunk = chunk;
		c->valid = true;
	}
	*n = c->n;
	*out = NULL;
	if (c->n == 0)
		return 0;
	*out = malloc(c->n * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, c->s, c->n * sizeof(**out));
	return 0;
}

/* Read [off, off+len) (inside one chunk) after committing pending writes. */
static ssize_t read_piece(struct vfs *v, struct vfs_file *f, uint64_t off,
			  char *dst, size_t len)
{
	uint32_t chunk = (uint32_t)(off / CHUNK);
	uint32_t pos = (uint32_t)(off % CHUNK);
	struct slice *s = NULL;
	size_t n = 0;
	ssize_t r;
	int rc;

	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&f->lock);
		rc = chunk_slices(v, f, chunk, &s, &n);
		pthread_mutex_unlock(&f->lock);
		if (rc < 0)
			return rc;
		r = chunk_read(v->cs, s, n, pos, dst, len);
		free(s);
		if (r != -EIO || attempt > 0)
			break;
		vfs_file_invalidate_ino(v, f->ino);
	}
	if (n >= VFS_COMPACT_READ && !v->conf.read_only)
		vfs_bg_compact(v, f->ino, chunk, VFS_COMPACT_READ);
	return r;
}

/*
 * A read of the handle @h ended at @end of a file of @size bytes: when the
 * reads are sequential and @end is within one readahead window of the end
 * of its chunk, prefetch the head of the next chunk (once per chunk).
 * Readahead inside chunk/ follows one slice; a file's chunks are separate
 * slices, so without this a sequential read stalls and ramps up again
 * every 64 MiB.
 */
static void readahead_next(struct vfs *v, struct vfs_handle *h, uint64_t off,
			   uint64_t end, uint64_t size)
{
	uint64_t prev = atomic_exchange(&h->ra_next, end);
	uint32_t ra = chunk_max_readahead(v->cs);
	uint32_t next = (uint32_t)(end / CHUNK) + 1;
	struct slice *s = NULL;
	size_t n = 0;

	if (prev != off || ra == 0 || (uint64_t)next * CHUNK >= size ||
	    (uint64_t)next * CHUNK - end > ra ||
	    atomic_exchange(&h->ra_chunk, next + 1) == next + 1)
		return;
	pthread_mutex_lock(&h->f->lock);
	if (chunk_slices(v, h->f, next, &s, &n) < 0)
		n = 0;
	pthread_mutex_unlock(&h->f->lock);
	if (n > 0)
		chunk_readahead_next(v->cs, s, n);
	free(s);
}

/*
 * A small file opened for reading is about to be read whole: fetch its
 * first chunk's head now (chunk_readahead_next), while the kernel answers
 * the open and sends the READ.  A cold read of a 4 KiB file waits for one
 * disk read or GET; started here, it overlaps the round trips between
 * OPEN and READ (an IOCTL from isatty, the READ itself).  Only files of
 * at most one block: any read of them needs that block, so at worst an
 * open that reads nothing costs one block fetch.  Not when the kernel
 * keeps its cached pages (no READ will come).
 */
void vfs_open_prefetch(struct vfs *v, uint64_t fh, const struct meta_attr *a)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct slice *s = NULL;
	size_t n = 0;

	if (!h || h->keep_cache || !S_ISREG(a->mode) || a->length == 0 ||
	    a->length > v->block_size || (h->flags & O_ACCMODE) == O_WRONLY ||
	    chunk_max_readahead(v->cs) == 0)
		return;
	pthread_mutex_lock(&h->f->lock);
	if (h->f->dirty || chunk_slices(v, h->f, 0, &s, &n) < 0)
		n = 0;
	pthread_mutex_unlock(&h->f->lock);
	if (n > 0)
		chunk_readahead_next(v->cs, s, n);
	free(s);
	vfs_ahead_opened(v, h->ino);
}

/*
 * relatime: update atime when older than mtime/ctime or a day.  The times
 * seen at open decide (close-to-open) unless this mount changed the file
 * since; the new atime is written lazily (vfs_atime.c); ctime stays, as on
 * ext4.  noatime: never; strictatime: every read (the lazy table keeps
 * one entry per inode, so that costs no transaction per read).
 */
static void touch_atime(struct vfs *v, struct vfs_handle *h)
{
	struct meta_attr a;
	int64_t now = vfs_now_ns();

	if (v->conf.read_only || v->conf.atime == VFS_NOATIME)
		return;
	if (v->conf.atime == VFS_STRICTATIME) {
		vfs_atime_note(v, h->ino, now);
		return;
	}
	if (atomic_exchange(&h->atime_done, true))
		return;
	if (atomic_load(&h->f->mgen) == h->mgen) {
		memset(&a, 0, sizeof(a));
		a.ino = h->ino;
		a.atime_ns = h->atime_ns;
		a.mtime_ns = h->mtime_ns;
		a.ctime_ns = h->ctime_ns;
	} else if (meta_getattr(v->m, h->ino, &a) < 0) {
		return;
	}
	vfs_atime_touch(v, &a, now);
}

ssize_t vfs_read(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
		 void *buf, size_t len)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	uint64_t size;
	size_t done = 0;
	int rc = 0;

	if (!h) {
		h = handle_of(fh, VFS_H_VIRT);
		if (!h || h->ino != ino)
			return -EBADF;
		if (h->ctl)
			return vfs_control_read(v, h, buf, len);
		if (h->alog)
			return vfs_accesslog_read(v, h, buf, len);
		if (off >= h->vlen)
			return 0;
		len = MIN(len, h->vlen - off);
		memcpy(buf, h->vdata + off, len);
		return (ssize_t)len;
	}
	if (h->ino != ino || (h->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	f = h->f;
	pthread_mutex_lock(&f->lock);
	if (f->dirty)
		rc = vfs_file_commit(v, f, false);
	size = f->length;
	pthread_mutex_unlock(&f->lock);
	if (rc < 0)
		return rc;
	if (off >= size || len == 0)
		return 0;
	len = (size_t)MIN((uint64_t)len, size - off);
	while (done < len) {
		uint64_t o = off + done;
		size_t n =
			(size_t)MIN((uint64_t)(len - done), CHUNK - o % CHUNK);
		ssize_t r = read_piece(v, f, o, (char *)buf + done, n);

		if (r < 0) {
			rc = (int)r;
			break;
		}
		done += n;
	}
	atomic_fetch_add(&v->st.reads, 1);
	atomic_fetch_add(&v->st.read_bytes, done);
	if (done > 0) {
		readahead_next(v, h, off, off + done, size);
		touch_atime(v, h);
	}
	return done > 0 ? (ssize_t)done : rc;
}

/* ---- open, flush, release, fsync ---- */

int vfs_handle_new(struct vfs *v, enum vfs_handle_kind kind, uint64_t ino,
		   int flags, struct vfs_handle **out)
{
	struct vfs_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->magic = VFS_HANDLE_MAGIC;
	h->kind = kind;
	h->ino = ino;
	h->flags = flags;
	atomic_init(&h->atime_done, false);
	pthread_mutex_lock(&v->files_lock);
	h->next = v->handles;
	if (h->next)
		h->next->prev = h;
	v->handles = h;
	pthread_mutex_unlock(&v->files_lock);
	*out = h;
	return 0;
}

void vfs_handle_free(struct vfs *v, struct vfs_handle *h)
{
	pthread_mutex_lock(&v->files_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		v->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&v->files_lock);
	h->magic = 0;
	free(h->vdata);
	vfs_control_free(h->ctl);
	vfs_accesslog_close(v, h);
	free(h);
}

/*
 * Page cache across opens: an open may keep the kernel's cached pages when
 * this mount's previous open of the file saw the same length and mtime,
 * and no handle wrote through this mount since (the release of a writable
 * handle forgets the file).  A change by another client moves mtime or the
 * length (compaction changes neither, nor the bytes).  Caller holds
 * seen_lock.
 */
static bool seen_same_locked(struct vfs *v, uint64_t ino,
			     const struct meta_attr *a, bool record)
{
	struct vfs_seen *s = &v->seen[ino % VFS_SEEN_N];
	bool same = s->ino == ino && s->length == a->length &&
		    s->mtime_ns == a->mtime_ns;

	if (record) {
		s->ino = ino;
		s->length = a->length;
		s->mtime_ns = a->mtime_ns;
	}
	return same;
}

static void seen_forget(struct vfs *v, uint64_t ino)
{
	pthread_mutex_lock(&v->seen_lock);
	if (v->seen[ino % VFS_SEEN_N].ino == ino)
		v->seen[ino % VFS_SEEN_N].ino = 0;
	pthread_mutex_unlock(&v->seen_lock);
}

bool vfs_keep_cache(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);

	UNUSED(v);
	return h && h->keep_cache;
}

int vfs_open_checked(struct vfs *v, uint64_t ino, int flags,
		     struct meta_attr *a, uint64_t *fh)
{
	struct vfs_handle *h;
	struct vfs_file *f;
	bool created;
	int rc;

	rc = vfs_handle_new(v, VFS_H_FILE, ino, flags, &h);
	if (rc < 0)
		return rc;
	rc = file_get(v, ino, &f, &created);
	if (rc < 0) {
		vfs_handle_free(v, h);
		return rc;
	}
	/* one meta_open_file per handle, one meta_close_file per release */
	meta_open_file(v->m, ino);
	atomic_fetch_add(&v->st.handles, 1);
	h->f = f;
	pthread_mutex_lock(&f->lock);
	if ((flags & O_TRUNC) && S_ISREG(a->mode)) {
		struct meta_attr in;

		rc = vfs_file_commit(v, f, false);
		if (rc == 0) {
			memset(&in, 0, sizeof(in));
			rc = meta_setattr(v->m, NULL, ino, META_SET_SIZE, &in,
					  a);
		}
		vfs_file_invalidate(f);
	}
	if (rc == 0 && !f->dirty) {
		/*
		 * close-to-open: take the length metadata has now, and forget
		 * slice lists another mount may have changed since
		 */
		f->length = a->length;
		vfs_file_invalidate(f);
	}
	if (f->dirty) {
		a->length = MAX(a->length, f->wlen);
		a->mtime_ns = MAX(a->mtime_ns, f->wtime_ns);
		a->ctime_ns = MAX(a->ctime_ns, f->wtime_ns);
		f->wtime_shown = true;
	}
	h->mgen = atomic_load(&f->mgen);
	h->atime_ns = a->atime_ns;
	h->mtime_ns = a->mtime_ns;
	h->ctime_ns = a->ctime_ns;
	if (rc == 0 && S_ISREG(a->mode)) {
		bool clean = !f->dirty && !(flags & O_TRUNC);

		pthread_mutex_lock(&v->seen_lock);
		h->keep_cache = seen_same_locked(v, ino, a, clean) && clean;
		pthread_mutex_unlock(&v->seen_lock);
		/* strictatime: reads served from the page cache never reach
		 * us; dropping it at open makes each open's reads come here */
		if (v->conf.atime == VFS_STRICTATIME)
			h->keep_cache = false;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc < 0) {
		vfs_release(v, ino, (uint64_t)(uintptr_t)h, 0);
		return rc;
	}
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

int vfs_open_virtual(struct vfs *v, uint64_t ino, int flags, uint64_t *fh)
{
	struct vfs_handle *h;
	int rc;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return -EACCES;
	rc = vfs_handle_new(v, VFS_H_VIRT, ino, flags, &h);
	if (rc < 0)
		return rc;
	rc = vfs_virtual_text(v, ino, &h->vdata, &h->vlen);
	if (rc < 0) {
		vfs_handle_free(v, h);
		return rc;
	}
	*fh = (uint64_t)(uintptr_t)h;
	return 0;
}

int vfs_flush(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t lock_owner)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	int rc;

	if (!h)
		return handle_of(fh, VFS_H_VIRT) ? 0 : -EBADF;
	if (h->ino != ino)
		return -EBADF;
	f = h->f;
	vfs_locks_drop(v, f, lock_owner, true, false);
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, false);
	if (rc == 0 && f->err) {
		rc = f->err;
		f->err = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vfs_release(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t lock_owner)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	bool last;
	int rc;

	if (!h) {
		h = handle_of(fh, VFS_H_VIRT);
		if (!h)
			return -EBADF;
		vfs_handle_free(v, h);
		return 0;
	}
	UNUSED(ino);
	atomic_fetch_add(&v->releasing, 1);
	if (writable(h))
		seen_forget(v, h->ino);
	f = h->f;
	vfs_locks_drop(v, f, lock_owner, false, true);
	vfs_locks_released(v);
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, false);
	pthread_mutex_lock(&v->files_lock);
	last = f->refs == 1;
	pthread_mutex_unlock(&v->files_lock);
	if (last && rc < 0) {
		log_error("dropping unwritable data of inode %llu",
			  (unsigned long long)f->ino);
		file_discard(v, f);
	}
	if (rc == 0 && f->err)
		rc = f->err;
	if (last)
		f->err = 0;
	pthread_mutex_unlock(&f->lock);
	vfs_file_put(v, f);
	/* after the commit: the last close of an unlinked file deletes it */
	meta_close_file(v->m, h->ino);
	atomic_fetch_sub(&v->st.handles, 1);
	vfs_handle_free(v, h);
	return rc;
}

int vfs_fsync(struct vfs *v, uint64_t ino, uint64_t fh, bool datasync)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	int rc;

	UNUSED(datasync);
	if (!h)
		return handle_of(fh, VFS_H_VIRT) ? 0 : -EBADF;
	if (h->ino != ino)
		return -EBADF;
	f = h->f;
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, true);
	if (rc == 0 && f->err) {
		rc = f->err;
		f->err = 0;
	}
	pthread_mutex_unlock(&f->lock);
	if (rc == 0) {
		CRASH_POINT(CRASH_FSYNC_BEFORE_SYNC);
		rc = meta_sync(v->m);
	}
	if (rc == 0)
		CRASH_POINT(CRASH_FSYNC_AFTER_SYNC);
	atomic_fetch_add(&v->st.fsyncs, 1);
	return rc;
}

int vfs_files_commit_all(struct vfs *v, bool sync)
{
	struct vfs_file **list = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&v->files_lock);
	if (v->nfiles > 0)
		list = malloc(v->nfiles * sizeof(*list));
	for (size_t b = 0; list && b < VFS_FILE_BUCKETS; b++) {
		for (struct vfs_file *f = v->files[b]; f; f = f->next) {
			f->refs++;
			list[n++] = f;
		}
	}
	pthread_mutex_unlock(&v->files_lock);
	if (v->nfiles > 0 && !list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r;

		pthread_mutex_lock(&list[i]->lock);
		r = vfs_file_commit(v, list[i], false);
		pthread_mutex_unlock(&list[i]->lock);
		if (rc == 0)
			rc = r;
		vfs_file_put(v, list[i]);
	}
	free(list);
	if (sync) {
		int r = obj_sync(v->os);

		if (r == 0)
			r = meta_sync(v->m);
		if (rc == 0)
			rc = r;
	}
	return rc;
}

void vfs_files_free_all(struct vfs *v)
{
	/* handles the kernel never released (unmounted with files open) */
	while (v->handles) {
		struct vfs_handle *h = v->handles;

		if (h->kind == VFS_H_FILE) {
			vfs_file_put(v, h->f);
			meta_close_file(v->m, h->ino);
		}
		vfs_handle_free(v, h);
	}
	for (size_t b = 0; b < VFS_FILE_BUCKETS; b++) {
		while (v->files[b]) {
			struct vfs_file *f = v->files[b];

			v->files[b] = f->next;
			file_free(f);
		}
	}
	v->nfiles = 0;
}

/* ---- fallocate, lseek, copy_file_range ---- */

int vfs_fallocate(struct vfs *v, uint64_t ino, uint64_t fh, int mode,
		  uint64_t off, uint64_t len)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	struct meta_attr a;
	int rc;

	if (!h || h->ino != ino || !writable(h))
		return -EBADF;
	if (v->conf.read_only)
		return -EROFS;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
		     FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (len == 0 || off + len < off || off + len > (uint64_t)INT64_MAX)
		return len == 0 ? -EINVAL : -EFBIG;
	f = h->f;
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, false);
	if (rc == 0)
		rc = meta_fallocate(v->m, NULL, ino, mode, off, len);
	atomic_fetch_add(&f->mgen, 1);
	if (rc == 0 && meta_getattr(v->m, ino, &a) == 0)
		f->length = a.length;
	vfs_file_invalidate(f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int vfs_resolve_slices(const struct slice *s, size_t n, struct vfs_seg **out,
		       size_t *nout)
{
	/* Painter's algorithm: each slice cuts what it covers. */
	struct vfs_seg *a = NULL, *b = NULL;
	size_t na = 0, cap = 2 * n + 1;

	a = malloc(cap * sizeof(*a));
	b = malloc(cap * sizeof(*b));
	if (!a || !b) {
		free(a);
		free(b);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s0 = s[i].pos, e0 = (uint64_t)s[i].pos + s[i].len;
		size_t nb = 0;
		bool placed = false;

		if (s[i].len == 0)
			continue;
		for (size_t k = 0; k < na; k++) {
			uint64_t ks = a[k].pos, ke = ks + a[k].len;

			if (!placed && ks >= s0) {
				b[nb++] = (struct vfs_seg){(uint32_t)s0,
							   s[i].len, s[i].id};
				placed = true;
			}
			if (ke <= s0 || ks >= e0) {
				b[nb++] = a[k];
				continue;
			}
			if (ks < s0) {
				b[nb++] = (struct vfs_seg){
					a[k].pos, (uint32_t)(s0 - ks), a[k].id};
				if (!placed) {
					b[nb++] = (struct vfs_seg){(uint32_t)s0,
								   s[i].len,
								   s[i].id};
					placed = true;
				}
			}
			if (ke > e0)
				b[nb++] = (struct vfs_seg){(uint32_t)e0,
							   (uint32_t)(ke - e0),
							   a[k].id};
		}
		if (!placed)
			b[nb++] = (struct vfs_seg){(uint32_t)s0, s[i].len,
						   s[i].id};
		memcpy(a, b, nb * sizeof(*a));
		na = nb;
	}
	free(b);
	*out = a;
	*nout = na;
	return 0;
}

/* First data byte >= @off in @chunk, or -ENXIO-like UINT64_MAX. */
static int seek_chunk(struct vfs *v, uint64_t ino, uint32_t chunk,
		      struct vfs_seg **segs, size_t *n)
{
	struct slice *s;
	size_t ns;
	int rc = meta_read_chunk(v->m, ino, chunk, &s, &ns);

	if (rc < 0)
		return rc;
	rc = vfs_resolve_slices(s, ns, segs, n);
	free(s);
	return rc;
}

static int seek_data(struct vfs *v, uint64_t ino, uint64_t off, uint64_t size,
		     uint64_t *out)
{
	for (uint64_t c = off / CHUNK; c * CHUNK < size; c++) {
		struct vfs_seg *sg;
		size_t n;
		int rc = seek_chunk(v, ino, (uint32_t)c, &sg, &n);

		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			uint64_t s = c * CHUNK + sg[i].pos, e = s + sg[i].len;

			if (sg[i].id == 0 || e <= off)
				continue;
			free(sg);
			s = MAX(s, off);
			if (s >= size)
				return -ENXIO;
			*out = s;
			return 0;
		}
		free(sg);
	}
	return -ENXIO;
}

static int seek_hole(struct vfs *v, uint64_t ino, uint64_t off, uint64_t size,
		     uint64_t *out)
{
	uint64_t p = off;

	while (p < size) {
		uint32_t c = (uint32_t)(p / CHUNK);
		struct vfs_seg *sg;
		size_t n;
		bool moved = false;
		int rc = seek_chunk(v, ino, c, &sg, &n);

		if (rc < 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			uint64_t s = (uint64_t)c * CHUNK + sg[i].pos;
			uint64_t e = s + sg[i].len;

			if (sg[i].id != 0 && s <= p && p < e) {
				p = e;
				moved = true;
			}
		}
		free(sg);
		if (!moved)
			break;
		if (p % CHUNK != 0)
			break; /* stopped inside the chunk: a hole */
	}
	*out = MIN(p, size);
	return 0;
}

int vfs_lseek(struct vfs *v, uint64_t ino, uint64_t fh, uint64_t off,
	      int whence, uint64_t *out)
{
	struct vfs_handle *h = handle_of(fh, VFS_H_FILE);
	struct vfs_file *f;
	uint64_t size;
	int rc;

	if (!h || h->ino != ino)
		return -EBADF;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	f = h->f;
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, false);
	size = f->length;
	pthread_mutex_unlock(&f->lock);
	if (rc < 0)
		return rc;
	if (off >= size)
		return -ENXIO;
	if (whence == SEEK_DATA)
		return seek_data(v, ino, off, size, out);
	return seek_hole(v, ino, off, size, out);
}

ssize_t vfs_copy_file_range(struct vfs *v, uint64_t ino_in, uint64_t fh_in,
			    uint64_t off_in, uint64_t ino_out, uint64_t fh_out,
			    uint64_t off_out, size_t len)
{
	size_t bufsz = (size_t)MIN((uint64_t)len, 1 * MiB), done = 0;
	char *buf;
	ssize_t rc = 0;

	if (len == 0)
		return 0;
	buf = malloc(bufsz);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t n = MIN(bufsz, len - done);
		ssize_t r = vfs_read(v, ino_in, fh_in, off_in + done, buf, n);

		if (r <= 0) {
			rc = r;
			break;
		}
		rc = vfs_write(v, ino_out, fh_out, off_out + done, buf,
			       (size_t)r);
		if (rc < 0)
			break;
		done += (size_t)rc;
		if ((size_t)r < n)
			break;
	}
	free(buf);
	return done > 0 ? (ssize_t)done : rc;
}
