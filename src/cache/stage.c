/*
 * stage.c - write-back: blocks staged on local disk, uploaded later.
 *
 * Design note.
 *
 * Staging a block: write it to tmp/, fsync, rename to staging/<key>,
 * fsync the directories that got new entries (the key's directory, and
 * the parents of directories created for it).  When cache_stage returns,
 * the block survives a crash of the process or of the machine, so chunk/
 * may let the writer's finish (and an application fsync) return before
 * the block reaches the object store.  The staged file holds the object's
 * exact bytes (as chunk/ encoded them), so uploading is a plain PUT.
 *
 * The staged set (hash by key) holds every staged block this process
 * knows; the queue holds those waiting for an uploader.  States:
 *
 *   queued --uploader takes it--> running --PUT ok--> moved to raw/ (or
 *      ^                            |                 deleted when the
 *      +------- PUT failed ---------+                 cache is full)
 *
 * The staged file is deleted only after the PUT and a store sync
 * (obj_sync: the file:// store does not make a put durable by itself;
 * a no-op on S3), so a block is always durable in one place or the other.
 *
 * A failed PUT (store down) puts the block back at the tail and pauses
 * every uploader (1 s doubling to 30 s, reset by a successful PUT), so an
 * outage costs no busy loop and the blocks go out when the store is back.
 * The pause is shared: a per-thread one let the requeued block go to the
 * next idle uploader at once, so N uploaders tried N times a round.  A
 * failure inside a pause (another uploader's PUT that was in flight) does
 * not lengthen it.  A pause ends early when the store is found back by
 * another request (obj_state).  While the store is down (it logged that
 * once), the uploaders' retries log at DEBUG.
 * Before the PUT the file is verified as a frame of its object key (with
 * the volume's data key when encrypted: the staged file is the encrypted
 * object, exactly as uploaded, so no plaintext is ever staged; a plain
 * frame in an encrypted volume fails): a staged file that fails (disk
 * corruption) is logged at ERROR and dropped, never uploaded.
 *
 * A forgotten block (its slice deleted) leaves the queue and its file is
 * deleted; when an uploader is running it, it is marked cancelled and the
 * uploader deletes the object after the PUT instead of keeping it.
 *
 * Restart: the background thread scans staging/ first thing and queues
 * what it finds; reads see staged blocks all along (cache_get looks in
 * staging/ too).  At close the uploaders drain the queue and stop at the
 * first failure; what is left stays for the next open.
 *
 * Accounting: a staged block is charged to c->used like a cached one (so
 * the directory's total stays within the size bound while it can), but is
 * never evicted; moving it to raw/ keeps the charge.
 *
 * Locking: c->lock; no file bytes or object I/O under it.
 */
#include "util/common.h"
#include "cache/cache_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "object/object.h"
#include "util/crash.h"
#include "util/log.h"

#define NAP_MIN_MS 1000
#define NAP_MAX_MS 30000
#define NAP_STEP_MS 500

static struct staged *staged_find(struct cache *c, const char *key)
{
	return (struct staged *)cache_htab_find(&c->staged, key);
}

bool cache_is_staged_locked(struct cache *c, const char *key)
{
	return staged_find(c, key) != NULL;
}

static void staged_free(struct staged *s)
{
	free(s->h.key);
	free(s);
}

/* Remove @s from the set and its charge (not from the queue). */
static void staged_del_locked(struct cache *c, struct staged *s)
{
	cache_htab_del(&c->staged, &s->h);
	c->used -= s->size;
	c->staged_bytes -= s->size;
	staged_free(s);
	pthread_cond_broadcast(&c->idle_cond);
}

static void enqueue_locked(struct cache *c, struct staged *s)
{
	s->qnext = NULL;
	if (c->sq_tail)
		c->sq_tail->qnext = s;
	else
		c->sq_head = s;
	c->sq_tail = s;
	pthread_cond_signal(&c->up_cond);
}

static void dequeue_locked(struct cache *c, struct staged *s)
{
	struct staged **pp = &c->sq_head, *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp == s) {
			*pp = s->qnext;
			if (c->sq_tail == s)
				c->sq_tail = prev;
			break;
		}
	}
	s->qnext = NULL;
}

/* Register staged @key of @fsize bytes unless known; queue it. */
static int register_locked(struct cache *c, const char *key, uint64_t fsize)
{
	struct staged *s;

	if (staged_find(c, key))
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->h.key = strdup(key)) ||
	    cache_htab_add(&c->staged, &s->h) < 0) {
		if (s)
			free(s->h.key);
		free(s);
		return -ENOMEM;
	}
	s->size = cache_charge(fsize);
	c->used += s->size;
	c->staged_bytes += s->size;
	enqueue_locked(c, s);
	return 0;
}

int cache_stage(struct cache *c, const char *key, const void *data, size_t len)
{
	char path[CACHE_PATH_MAX], tmp[64];
	uint64_t size = cache_charge(len);
	int rc;

	if (!c)
		return -ENOSYS;
	if (!cache_frame_ok(c, NULL, 0, data, len))
		return log_fail(-EINVAL, "cannot stage plain block '%s'", key);
	if (cache_path(CACHE_STAGING, key, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&c->lock);
	if (staged_find(c, key)) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	cache_room_locked(c, size); /* staging is never refused for size */
	if (!cache_floor_locked(c, size)) {
		pthread_mutex_unlock(&c->lock);
		return -ENOSPC;
	}
	pthread_mutex_unlock(&c->lock);
	rc = cache_write_tmp(c, "", 0, data, len, true, tmp, sizeof(tmp));
	if (rc == 0)
		rc = cache_place(c, tmp, path, true);
	if (rc < 0)
		return log_fail(rc, "cannot stage block '%s' in '%s'", key,
				c->dir);
	CRASH_POINT(CRASH_STAGE_AFTER_WRITE);
	pthread_mutex_lock(&c->lock);
	rc = register_locked(c, key, len);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) /* on disk: the next open uploads it */
		log_warn("cannot queue staged block '%s': %s", key,
			 strerror(-rc));
	return 0;
}

static int scan_cb(struct cache *c, const char *key, const struct stat *st)
{
	pthread_mutex_lock(&c->lock);
	register_locked(c, key, (uint64_t)st->st_size);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void cache_scan_staging(struct cache *c)
{
	size_t n;

	cache_walk(c, CACHE_STAGING, scan_cb);
	pthread_mutex_lock(&c->lock);
	c->scan_staging = false;
	n = c->staged.n;
	pthread_cond_broadcast(&c->idle_cond);
	pthread_mutex_unlock(&c->lock);
	if (n > 0)
		log_info("uploading %zu staged blocks left from an earlier run "
			 "in '%s'",
			 n, c->dir);
}

void cache_unstage_locked(struct cache *c, const char *key)
{
	struct staged *s = staged_find(c, key);
	char path[CACHE_PATH_MAX];

	if (!s)
		return;
	if (s->running) {
		s->cancelled = true;
		return;
	}
	dequeue_locked(c, s);
	if (cache_path(CACHE_STAGING, key, path, sizeof(path)) == 0)
		unlinkat(c->dir_fd, path, 0);
	staged_del_locked(c, s);
}

enum up_result { UP_DONE, UP_GONE, UP_BAD, UP_RETRY };

/*
 * Read staging/<key> whole into @out, after reserving its size with the
 * memory hook (*charged: what to release).
 */
static int read_staged(struct cache *c, const char *path, struct buf *out,
		       uint64_t *charged)
{
	int fd = openat(c->dir_fd, path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (c->mem_reserve) {
		rc = c->mem_reserve(c->mem_arg, (uint64_t)st.st_size);
		if (rc < 0)
			goto out;
		*charged = (uint64_t)st.st_size;
	}
	out->data = malloc((size_t)st.st_size + 1); /* exact: no doubling */
	out->cap = out->data ? (size_t)st.st_size + 1 : 0;
	out->len = 0;
	rc = out->data ? 0 : -ENOMEM;
	while (rc == 0 && out->len < (size_t)st.st_size) {
		ssize_t r =
			pread(fd, out->data + out->len,
			      (size_t)st.st_size - out->len, (off_t)out->len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			rc = r < 0 ? -errno : -EIO;
		else
			out->len += (size_t)r;
	}
	if (rc == 0)
		out->data[out->len] = '\0';
out:
	close(fd);
	return rc;
}

/*
 * Is @f a sound frame of the object @key (the tag of an encrypted frame
 * binds the key)?  NULL, or the reason it is not.
 */
static const char *check_frame(struct cache *c, const char *key,
			       const struct buf *f)
{
	struct frame_obj o = {.key = key, .data = f->data, .len = f->len};
	const char *why = NULL;
	struct frame_hdr h;
	char *raw;

	if (frame_parse_hdr(f->data, f->len, &h, &why) < 0)
		return why;
	if (h.codec == FRAME_CODEC_NONE && !(h.flags & FRAME_F_ENCRYPTED)) {
		/* Plain (refused when a key is configured): in place. */
		if (frame_decode_obj_to(&c->fc, &o, f->data + FRAME_HDR_LEN,
					h.raw_len, &why) < 0)
			return why;
		return NULL;
	}
	raw = malloc(h.raw_len ? h.raw_len : 1);
	if (!raw)
		return NULL; /* cannot check now: the store gets it as is */
	if (frame_decode_obj_to(&c->fc, &o, raw, h.raw_len, &why) < 0)
		why = why ? why : "bad frame";
	free(raw);
	return why;
}

static enum up_result upload_one(struct cache *c, const char *key)
{
	char path[CACHE_PATH_MAX];
	struct buf b = BUF_INIT;
	enum up_result res = UP_DONE;
	uint64_t charged = 0;
	const char *why;
	int rc;

	if (cache_path(CACHE_STAGING, key, path, sizeof(path)) < 0)
		return UP_GONE;
	rc = read_staged(c, path, &b, &charged);
	if (rc == -ENOENT) {
		res = UP_GONE;
	} else if (rc < 0) {
		log_warn("cannot read staged block '%s': %s", key,
			 strerror(-rc));
		res = UP_RETRY;
	} else if ((why = check_frame(c, key, &b))) {
		log_error("staged block '%s' is corrupt (%s): dropping it, "
			  "its data is lost",
			  key, why);
		atomic_fetch_add(&c->n_corrupt, 1);
		res = UP_BAD;
	} else if ((rc = obj_put(c->os, key, b.data, b.len)) < 0 ||
		   ((rc = obj_sync(c->os)) < 0 && rc != -ENOSYS)) {
		struct obj_state st;

		obj_state(c->os, &st); /* a down store said so, once */
		if (st.down)
			log_debug("cannot upload staged block '%s': %s "
				  "(will retry)",
				  key, strerror(-rc));
		else
			log_warn("cannot upload staged block '%s': %s (will "
				 "retry)",
				 key, strerror(-rc));
		res = UP_RETRY;
	} else {
		CRASH_POINT(CRASH_STAGE_AFTER_UPLOAD);
	}
	buf_release(&b);
	if (charged)
		c->mem_release(c->mem_arg, charged);
	return res;
}

/* After its upload: move staged @s to raw/ (or delete it).  lock held. */
static void settle_locked(struct cache *c, struct staged *s, bool uploaded)
{
	char from[CACHE_PATH_MAX], to[CACHE_PATH_MAX];
	const char *key = s->h.key;
	uint64_t size = s->size;
	bool keep = false;

	if (cache_path(CACHE_STAGING, key, from, sizeof(from)) < 0 ||
	    cache_path(CACHE_RAW, key, to, sizeof(to)) < 0)
		goto out;
	if (uploaded && c->limit > 0 && !cache_htab_find(&c->index, key)) {
		/* The charge moves with the file: evict for any excess. */
		cache_room_locked(c, 0);
		keep = c->used <= c->limit;
	}
	/* The index adds the charge, staged_del_locked takes it back. */
	if (keep && cache_place(c, from, to, false) == 0) {
		if (cache_index_add_locked(c, key, size, cache_now_ns()) < 0)
			unlinkat(c->dir_fd, to, 0);
	} else {
		unlinkat(c->dir_fd, from, 0);
	}
out:
	staged_del_locked(c, s);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep until @until_ms (monotonic) or a wakeup.  lock held. */
static void nap_until_locked(struct cache *c, int64_t until_ms)
{
	struct timespec ts;

	ts.tv_sec = until_ms / 1000;
	ts.tv_nsec = (until_ms % 1000) * 1000000L;
	pthread_cond_timedwait(&c->nap_cond, &c->lock, &ts);
}

/*
 * Wait out the shared pause, or less: while the store is down, look at its
 * state each NAP_STEP_MS and end the pause as soon as a read (or another
 * uploader) found it back, so the queue drains then, not after the rest
 * of a pause that may be 30 s.  obj_state takes a leaf lock, no I/O.
 * lock held.
 */
static void pause_wait_locked(struct cache *c)
{
	int64_t until = c->up_retry_ms;
	struct obj_state st;

	obj_state(c->os, &st);
	if (!st.down) {
		nap_until_locked(c, until);
		return;
	}
	while (!atomic_load(&c->stopping) && mono_ms() < until) {
		nap_until_locked(c, MIN(until, mono_ms() + NAP_STEP_MS));
		obj_state(c->os, &st);
		if (!st.down) {
			c->up_retry_ms = 0;
			return;
		}
	}
}

/* A staged upload failed: pause them all, unless a pause is on.  lock held. */
static void pause_uploads_locked(struct cache *c)
{
	int64_t now = mono_ms();

	if (now < c->up_retry_ms)
		return;
	if (c->up_nap_ms < NAP_MIN_MS)
		c->up_nap_ms = NAP_MIN_MS;
	c->up_retry_ms = now + c->up_nap_ms;
	c->up_nap_ms = MIN(c->up_nap_ms * 2, (long)NAP_MAX_MS);
}

/* The uploader of a cancelled block: delete the object it put. */
static void undo_locked(struct cache *c, struct staged *s, bool uploaded)
{
	char path[CACHE_PATH_MAX];
	char *key = strdup(s->h.key);

	if (cache_path(CACHE_STAGING, s->h.key, path, sizeof(path)) == 0)
		unlinkat(c->dir_fd, path, 0);
	staged_del_locked(c, s);
	if (uploaded && key) {
		pthread_mutex_unlock(&c->lock);
		obj_del(c->os, key);
		pthread_mutex_lock(&c->lock);
	}
	free(key);
}

static void *uploader_main(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct staged *s = c->sq_head;
		enum up_result r;

		if (!s) {
			if (atomic_load(&c->stopping))
				break;
			pthread_cond_wait(&c->up_cond, &c->lock);
			continue;
		}
		/* at close: one more try each, then what is left stays */
		if (!atomic_load(&c->stopping) && mono_ms() < c->up_retry_ms) {
			pause_wait_locked(c);
			continue;
		}
		dequeue_locked(c, s);
		s->running = true;
		pthread_mutex_unlock(&c->lock);
		r = upload_one(c, s->h.key);
		pthread_mutex_lock(&c->lock);
		s->running = false;
		if (s->cancelled) {
			undo_locked(c, s, r == UP_DONE);
		} else if (r == UP_RETRY) {
			enqueue_locked(c, s);
			if (atomic_load(&c->stopping))
				break; /* the rest waits for the next open */
			pause_uploads_locked(c);
		} else {
			if (r == UP_DONE) {
				atomic_fetch_add(&c->n_uploads, 1);
				c->up_nap_ms = NAP_MIN_MS;
			}
			settle_locked(c, s, r == UP_DONE);
		}
	}
	c->uploaders_alive--;
	pthread_cond_broadcast(&c->idle_cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int cache_uploaders_start(struct cache *c, int n)
{
	c->up = calloc((size_t)n, sizeof(*c->up));
	if (!c->up)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&c->up[i], NULL, uploader_main, c);

		if (rc != 0)
			return log_fail(-rc, "cannot start upload threads");
		pthread_mutex_lock(&c->lock);
		c->uploaders_alive++;
		pthread_mutex_unlock(&c->lock);
		c->nup++;
	}
	return 0;
}

void cache_uploaders_join(struct cache *c)
{
	for (int i = 0; i < c->nup; i++)
		pthread_join(c->up[i], NULL);
	free(c->up);
	c->up = NULL;
	c->nup = 0;
}

void cache_staged_release(struct cache *c)
{
	for (size_t i = 0; i < c->staged.nb; i++) {
		struct hnode *nd = c->staged.b[i], *next;

		for (; nd; nd = next) {
			next = nd->next;
			staged_free((struct staged *)nd);
		}
	}
	cache_htab_release(&c->staged);
	c->sq_head = c->sq_tail = NULL;
}

uint64_t cache_staged_pending(struct cache *c)
{
	uint64_t n;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->staged.n;
	pthread_mutex_unlock(&c->lock);
	return n;
}

int cache_wait_staged(struct cache *c, int timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (!c)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while ((c->scan_staging || c->staged.n > 0) && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&c->idle_cond, &c->lock);
		else
			rc = pthread_cond_timedwait(&c->idle_cond, &c->lock,
						    &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return rc ? -ETIMEDOUT : 0;
}
