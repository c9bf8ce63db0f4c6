/*
 * disk.c - the disk block cache: index, lookups, puts, eviction and the
 * background thread (index rebuild, periodic bound checks).
 *
 * Design note.
 *
 * Files: a cached block is raw/<key>, written under tmp/<pid>.<seq> and
 * renamed into place, so a reader (or a crash) never sees half a file;
 * cache files are not fsynced (a torn file after a power loss fails its
 * frame checksum and is refetched).  Temporary files of dead processes are
 * removed at open.
 *
 * Index: a hash table key -> centry {charged size, last use} plus a dense
 * array of the same entries for random picks.  An entry is "not ready"
 * while its file is being written: it is charged already (so concurrent
 * puts cannot together pass the bound) but never evicted; a drop meanwhile
 * marks it doomed and the writer discards its file.  The rename into place
 * and an eviction's unlink happen under c->lock together with the index
 * change, so a file exists exactly when its ready entry does (up to files
 * the startup scan has not reached yet, and outside interference).
 *
 * Bounds, checked in every put (synchronously, so they are never passed)
 * and once a second by the background thread (for space the rest of the
 * filesystem takes, and after the scan): used + new <= size, and free
 * space - new >= free_ratio x filesystem size.  Eviction is 2-random: of
 * two entries picked at random the one used longer ago goes.  It needs no
 * list upkeep on hits (a hit just stamps the entry) and approximates LRU
 * well for blocks of similar size.
 *
 * Startup: the background thread first scans staging/ (write-back blocks
 * to upload, stage.c), then raw/, adding entries with the file's atime or
 * mtime (whichever is later) as last use.  Meanwhile lookups open files
 * directly (an unindexed file found by a lookup is indexed then) and puts
 * evict among the entries known so far; the bound may thus be passed
 * until the scan is over, by at most what the scan has not reached.
 *
 * Verification: every lookup parses the frame, checks its raw length
 * against the length asked for, and verifies the xxh3 of the raw bytes.  A
 * bad raw/ file is deleted (logged at WARN, counted) and reported as a
 * miss, so chunk/ fetches the block from the store and caches it again.
 *
 * Encryption: c->fc is the volume's frame configuration with its data key.
 * Files are decoded as frames of their object key (frame_decode_obj_to),
 * like objects from the store, so an encrypted frame opens only under the
 * key it was sealed for.  With a key configured, puts and stages refuse
 * plain frames (cache_frame_ok) and lookups refuse plain files (frame.h:
 * "plain block in an encrypted volume"; deleted as corrupt): the cache of
 * an encrypted volume holds ciphertext only, and a hit costs one AES-GCM
 * decryption (cheap with AES-NI) into a fresh buffer.
 *
 * Locking: c->lock (cache_int.h); statvfs, unlink, rename and mkdir may
 * run under it, reads and writes of file bytes never do.
 */
#include "util/common.h"
#include "cache/cache_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/fileio.h"
#include "util/log.h"

#define HT_MIN 256
#define BG_PERIOD_MS 1000
#define CHARGE_UNIT 4096ULL
#define WALK_DEPTH_MAX 16
#define DEF_UPLOADERS 4
#define MAX_UPLOADERS 64

/* ---- small helpers ---- */

uint64_t cache_charge(uint64_t len)
{
	return (len + CHARGE_UNIT - 1) & ~(CHARGE_UNIT - 1);
}

int cache_path(const char *sub, const char *key, char *out, size_t n)
{
	int r = snprintf(out, n, "%s/%s", sub, key);

	return r < 0 || (size_t)r >= n ? -ENAMETOOLONG : 0;
}

int64_t cache_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/* ---- hash table ---- */

void cache_htab_init(struct htab *t)
{
	t->b = NULL;
	t->nb = 0;
	t->n = 0;
}

void cache_htab_release(struct htab *t)
{
	free(t->b);
	cache_htab_init(t);
}

static uint64_t hash_key(const char *key)
{
	return XXH3_64bits(key, strlen(key));
}

struct hnode *cache_htab_find(const struct htab *t, const char *key)
{
	uint64_t h;

	if (t->nb == 0)
		return NULL;
	h = hash_key(key);
	for (struct hnode *nd = t->b[h & (t->nb - 1)]; nd; nd = nd->next)
		if (nd->hash == h && strcmp(nd->key, key) == 0)
			return nd;
	return NULL;
}

static int htab_grow(struct htab *t)
{
	size_t nb = t->nb ? t->nb * 2 : HT_MIN;
	struct hnode **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nb; i++) {
		struct hnode *nd = t->b[i], *next;

		for (; nd; nd = next) {
			next = nd->next;
			nd->next = b[nd->hash & (nb - 1)];
			b[nd->hash & (nb - 1)] = nd;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

int cache_htab_add(struct htab *t, struct hnode *nd)
{
	size_t i;

	if (t->n >= t->nb && htab_grow(t) < 0 && t->nb == 0)
		return -ENOMEM; /* else keep the longer chains */
	nd->hash = hash_key(nd->key);
	i = nd->hash & (t->nb - 1);
	nd->next = t->b[i];
	t->b[i] = nd;
	t->n++;
	return 0;
}

void cache_htab_del(struct htab *t, struct hnode *nd)
{
	struct hnode **pp = &t->b[nd->hash & (t->nb - 1)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == nd) {
			*pp = nd->next;
			t->n--;
			break;
		}
	}
	nd->next = NULL;
}

/* ---- files ---- */

/* Write a frame (header, then body) into the new empty file @fd. */
static int write_frame(struct cache *c, int fd, const void *hdr, size_t hlen,
		       const void *body, size_t blen)
{
	int rc;

	if ((const char *)hdr + hlen == (const char *)body) {
		/* One buffer (a block with its frame header in front):
		 * possibly written with O_DIRECT (util/fileio.h). */
		return fio_write_new(fd, hdr, hlen + blen, &c->no_direct);
	}
	rc = fio_write_all(fd, hdr, hlen);
	if (rc == 0)
		rc = fio_write_all(fd, body, blen);
	return rc;
}

int cache_write_tmp(struct cache *c, const void *hdr, size_t hlen,
		    const void *body, size_t blen, bool sync, char *tmp,
		    size_t n)
{
	unsigned long long seq = atomic_fetch_add(&c->tmp_seq, 1);
	int fd, rc;

	snprintf(tmp, n, CACHE_TMP "/%d.%llu", (int)c->pid, seq);
	fd = openat(c->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	rc = write_frame(c, fd, hdr, hlen, body, blen);
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(c->dir_fd, tmp, 0);
	return rc;
}

/* fsync the directory @rel ("" or NULL: the cache directory). */
static int fsync_dir(struct cache *c, const char *rel)
{
	int fd = openat(c->dir_fd, rel && *rel ? rel : ".",
			O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Create the parent directories of @path; fsync parents of new ones. */
static int mkparents(struct cache *c, const char *path, bool sync)
{
	char buf[CACHE_PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(c->dir_fd, buf, 0700) == 0) {
			char *q = strrchr(buf, '/');
			int rc;

			fio_spread_children(c->dir_fd, buf);

			if (q)
				*q = '\0';
			rc = sync ? fsync_dir(c, q ? buf : "") : 0;
			if (q)
				*q = '/';
			if (rc < 0)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

int cache_place(struct cache *c, const char *tmp, const char *path, bool sync)
{
	int rc = 0;

	for (int attempt = 0;; attempt++) {
		if (renameat(c->dir_fd, tmp, c->dir_fd, path) == 0)
			break;
		rc = -errno;
		if (rc != -ENOENT || attempt == 3 ||
		    (rc = mkparents(c, path, sync)) < 0) {
			unlinkat(c->dir_fd, tmp, 0);
			return rc;
		}
	}
	if (sync) {
		char dir[CACHE_PATH_MAX];
		char *q;

		snprintf(dir, sizeof(dir), "%s", path);
		q = strrchr(dir, '/');
		if (q)
			*q = '\0';
		rc = fsync_dir(c, q ? dir : "");
	}
	return rc;
}

/* ---- index ---- */

static struct centry *entry_new_locked(struct cache *c, const char *key,
				       uint64_t size, bool ready, int64_t stamp)
{
	struct centry *e = calloc(1, sizeof(*e));

	if (!e || !(e->h.key = strdup(key)))
		goto fail;
	if (c->nslots == c->cap_slots) {
		size_t cap = c->cap_slots ? c->cap_slots * 2 : HT_MIN;
		struct centry **v = realloc(c->slots, cap * sizeof(*v));

		if (!v)
			goto fail;
		c->slots = v;
		c->cap_slots = cap;
	}
	if (cache_htab_add(&c->index, &e->h) < 0)
		goto fail;
	e->size = size;
	e->ready = ready;
	e->stamp = stamp;
	e->slot = c->nslots;
	c->slots[c->nslots++] = e;
	c->used += size;
	return e;
fail:
	if (e)
		free(e->h.key);
	free(e);
	return NULL;
}

static void entry_del_locked(struct cache *c, struct centry *e)
{
	cache_htab_del(&c->index, &e->h);
	c->slots[e->slot] = c->slots[--c->nslots];
	c->slots[e->slot]->slot = e->slot;
	c->used -= e->size;
	free(e->h.key);
	free(e);
}

static struct centry *find_locked(struct cache *c, const char *key)
{
	return (struct centry *)cache_htab_find(&c->index, key);
}

int cache_index_add_locked(struct cache *c, const char *key, uint64_t size,
			   int64_t stamp)
{
	if (find_locked(c, key))
		return -EEXIST;
	return entry_new_locked(c, key, size, true, stamp) ? 0 : -ENOMEM;
}

/* Delete a ready entry's file and the entry. */
static void remove_locked(struct cache *c, struct centry *e)
{
	char path[CACHE_PATH_MAX];

	if (cache_path(CACHE_RAW, e->h.key, path, sizeof(path)) == 0 &&
	    unlinkat(c->dir_fd, path, 0) < 0 && errno != ENOENT)
		log_warn("cannot delete cached block '%s': %s", e->h.key,
			 strerror(errno));
	entry_del_locked(c, e);
}

static uint64_t rnd_locked(struct cache *c)
{
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static struct centry *pick_victim_locked(struct cache *c)
{
	struct centry *best = NULL;
	int picked = 0;

	if (c->nslots == 0)
		return NULL;
	for (int tries = 0; tries < 16 && picked < 2; tries++) {
		struct centry *e = c->slots[rnd_locked(c) % c->nslots];

		if (!e->ready || e == best)
			continue;
		if (!best || e->stamp < best->stamp)
			best = e;
		picked++;
	}
	for (size_t i = 0; !best && i < c->nslots; i++)
		if (c->slots[i]->ready)
			best = c->slots[i];
	return best;
}

/* Evict one block; returns its charged size, 0 when none is evictable. */
static uint64_t evict_one_locked(struct cache *c)
{
	struct centry *e = pick_victim_locked(c);
	uint64_t size;

	if (!e)
		return 0;
	size = e->size;
	remove_locked(c, e);
	atomic_fetch_add(&c->n_evict, 1);
	atomic_fetch_add(&c->n_evict_bytes, size);
	return size ? size : 1;
}

bool cache_room_locked(struct cache *c, uint64_t need)
{
	while (c->used + need > c->limit)
		if (evict_one_locked(c) == 0)
			return false;
	return true;
}

/* Bytes to free so that @need more leave the floor free; 0 when fine. */
static uint64_t floor_deficit(struct cache *c, uint64_t need)
{
	struct statvfs sv;
	uint64_t total, avail, floor;

	if (c->free_ratio <= 0 || fstatvfs(c->dir_fd, &sv) < 0)
		return 0;
	total = (uint64_t)sv.f_blocks * sv.f_frsize;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	floor = (uint64_t)((double)total * c->free_ratio);
	return avail >= floor + need ? 0 : floor + need - avail;
}

bool cache_floor_locked(struct cache *c, uint64_t need)
{
	uint64_t deficit;

	while ((deficit = floor_deficit(c, need)) > 0) {
		uint64_t freed = 0;

		while (freed < deficit) {
			uint64_t n = evict_one_locked(c);

			if (n == 0)
				return false;
			freed += n;
		}
	}
	return true;
}

/* ---- lookups ---- */

static int bad_file(const char **why, const char *reason)
{
	*why = reason;
	return -EIO;
}

static int read_exact(int fd, char *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

/*
 * Decode the frame in @buf (@size bytes, ours), stored under the object
 * key @key, as @len raw bytes into *mem / *data; @buf is consumed.  0,
 * -EIO (*why) or -ENOMEM.
 */
static int decode(struct cache *c, const char *key, char *buf, size_t size,
		  uint32_t len, char **mem, const char **data, const char **why)
{
	struct frame_obj o = {.key = key, .data = buf, .len = size};
	struct frame_hdr h;
	const char *d;
	char *out;
	ssize_t n;

	if (frame_parse_hdr(buf, size, &h, why) < 0 || h.raw_len != len) {
		free(buf);
		return *why ? -EIO : bad_file(why, "length does not match");
	}
	if (h.codec == FRAME_CODEC_NONE && !(h.flags & FRAME_F_ENCRYPTED)) {
		/* Plain (refused when a key is configured): in place. */
		n = frame_decode_obj_to(&c->fc, &o, buf + FRAME_HDR_LEN, len,
					why);
		out = buf;
		d = buf + FRAME_HDR_LEN;
	} else {
		out = malloc(len ? len : 1);
		if (!out) {
			free(buf);
			return -ENOMEM;
		}
		n = frame_decode_obj_to(&c->fc, &o, out, len, why);
		free(buf);
		d = out;
	}
	if (n < 0 || (uint32_t)n != len) {
		free(out);
		return -EIO;
	}
	*mem = out;
	*data = d;
	return 0;
}

/*
 * Read and verify <sub>/<key>.  0 (*linked: the file still had a name),
 * -ENOENT, -EIO (*why set) or -ENOMEM.
 */
static int load(struct cache *c, const char *sub, const char *key, uint32_t len,
		char **mem, const char **data, uint64_t *fsize,
		const char **why)
{
	char path[CACHE_PATH_MAX];
	struct stat st;
	char *buf;
	int fd, rc;

	*why = NULL;
	if (cache_path(sub, key, path, sizeof(path)) < 0)
		return -ENOENT;
	fd = openat(c->dir_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
		close(fd);
		return -ENOENT;
	}
	/* Payload: compressed or raw, plus at most nonce and tag. */
	if (st.st_size < FRAME_HDR_LEN ||
	    (uint64_t)st.st_size > (uint64_t)FRAME_HDR_LEN + len + 64) {
		close(fd);
		return bad_file(why, "bad file length");
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	rc = read_exact(fd, buf, (size_t)st.st_size);
	close(fd);
	if (rc < 0) {
		free(buf);
		return bad_file(why, "short read");
	}
	*fsize = (uint64_t)st.st_size;
	return decode(c, key, buf, (size_t)st.st_size, len, mem, data, why);
}

/* A hit in raw/: stamp the entry, or index a file the scan missed. */
static void touch(struct cache *c, const char *key, uint64_t fsize)
{
	struct centry *e;

	pthread_mutex_lock(&c->lock);
	e = find_locked(c, key);
	if (e)
		e->stamp = cache_now_ns();
	else if (!cache_is_staged_locked(c, key))
		cache_index_add_locked(c, key, cache_charge(fsize),
				       cache_now_ns());
	pthread_mutex_unlock(&c->lock);
}

/* A bad raw/ file: delete it with its entry (not one being rewritten). */
static void discard_bad(struct cache *c, const char *key, const char *why)
{
	char path[CACHE_PATH_MAX];
	struct centry *e;

	log_warn("cached block '%s' is corrupt (%s): deleting it", key, why);
	atomic_fetch_add(&c->n_corrupt, 1);
	pthread_mutex_lock(&c->lock);
	e = find_locked(c, key);
	if (e && e->ready)
		remove_locked(c, e);
	else if (!e && cache_path(CACHE_RAW, key, path, sizeof(path)) == 0)
		unlinkat(c->dir_fd, path, 0);
	pthread_mutex_unlock(&c->lock);
}

int cache_get(struct cache *c, const char *key, uint32_t len, char **mem,
	      const char **data)
{
	const char *why;
	uint64_t fsize = 0;
	int rc;

	if (!c)
		return -ENOENT;
	rc = load(c, CACHE_RAW, key, len, mem, data, &fsize, &why);
	if (rc == 0)
		touch(c, key, fsize);
	else if (rc == -EIO)
		discard_bad(c, key, why);
	if (rc == -ENOENT || rc == -EIO) {
		rc = load(c, CACHE_STAGING, key, len, mem, data, &fsize, &why);
		if (rc == -EIO) {
			log_error("staged block '%s' is corrupt: %s", key, why);
			atomic_fetch_add(&c->n_corrupt, 1);
		}
	}
	if (rc == 0) {
		atomic_fetch_add(&c->n_hits, 1);
		atomic_fetch_add(&c->n_hit_bytes, len);
		return 0;
	}
	atomic_fetch_add(&c->n_misses, 1);
	return rc == -ENOMEM ? rc : -ENOENT;
}

bool cache_has(struct cache *c, const char *key)
{
	char path[CACHE_PATH_MAX];

	if (!c)
		return false;
	if (cache_path(CACHE_RAW, key, path, sizeof(path)) == 0 &&
	    faccessat(c->dir_fd, path, F_OK, 0) == 0)
		return true;
	return cache_path(CACHE_STAGING, key, path, sizeof(path)) == 0 &&
	       faccessat(c->dir_fd, path, F_OK, 0) == 0;
}

/* ---- puts and drops ---- */

static int drop_put(struct cache *c, int rc)
{
	atomic_fetch_add(&c->n_drops, 1);
	return rc;
}

bool cache_frame_ok(const struct cache *c, const void *hdr, size_t hlen,
		    const void *body, size_t blen)
{
	const size_t at = 6; /* the flags byte of the frame header */
	unsigned char flags;

	if (!c->fc.encrypt)
		return true;
	if (hlen + blen < FRAME_HDR_LEN)
		return false;
	flags = hlen > at ? ((const unsigned char *)hdr)[at]
			  : ((const unsigned char *)body)[at - hlen];
	return (flags & FRAME_F_ENCRYPTED) != 0;
}

/*
 * An unnamed file (O_TMPFILE) in the directory of @path (made if missing)
 * holding the frame: its fd, -EOPNOTSUPP where the filesystem has none
 * (then named temporaries from now on), or -errno.  Why not tmp/: see
 * src/object/store_file.c (ext4 allocates a file's inode in its
 * directory's block group, and skips recently freed ones one by one).
 */
static int write_unnamed(struct cache *c, const char *path, const void *hdr,
			 size_t hlen, const void *body, size_t blen)
{
	int fd, rc;

	for (int i = 0;; i++) {
		fd = fio_open_unnamed(c->dir_fd, path, 0600);
		if (fd >= 0)
			break;
		if (fd == -EOPNOTSUPP)
			atomic_store(&c->no_tmpfile, true);
		if (fd != -ENOENT || i == 3)
			return fd;
		rc = mkparents(c, path, false);
		if (rc < 0)
			return rc;
	}
	rc = write_frame(c, fd, hdr, hlen, body, blen);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Name the unnamed file @fd @path, replacing a file nobody indexes. */
static int link_unnamed(struct cache *c, int fd, const char *path)
{
	for (int i = 0;; i++) {
		int rc = fio_link_unnamed(fd, c->dir_fd, path);

		if (rc == 0 || i == 3)
			return rc;
		if (rc == -EEXIST)
			unlinkat(c->dir_fd, path, 0);
		else if (rc != -ENOENT || (rc = mkparents(c, path, false)) < 0)
			return rc;
	}
}

int cache_put(struct cache *c, const char *key, const void *hdr, size_t hlen,
	      const void *body, size_t blen)
{
	char path[CACHE_PATH_MAX], tmp[64];
	uint64_t size = cache_charge(hlen + blen);
	struct centry *e;
	int fd, rc;

	if (!c || c->limit == 0)
		return c ? drop_put(c, -ENOSPC) : -ENOSPC;
	if (!cache_frame_ok(c, hdr, hlen, body, blen))
		return drop_put(c, -EINVAL);
	if (cache_path(CACHE_RAW, key, path, sizeof(path)) < 0)
		return drop_put(c, -ENAMETOOLONG);
	pthread_mutex_lock(&c->lock);
	if (find_locked(c, key) || cache_is_staged_locked(c, key)) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (atomic_load(&c->stopping) || size > c->limit ||
	    !cache_room_locked(c, size) || !cache_floor_locked(c, size)) {
		pthread_mutex_unlock(&c->lock);
		return drop_put(c, -ENOSPC);
	}
	e = entry_new_locked(c, key, size, false, cache_now_ns());
	pthread_mutex_unlock(&c->lock);
	if (!e)
		return drop_put(c, -ENOMEM);
	fd = atomic_load(&c->no_tmpfile)
		 ? -EOPNOTSUPP
		 : write_unnamed(c, path, hdr, hlen, body, blen);
	if (fd != -EOPNOTSUPP) {
		rc = fd < 0 ? fd : 0;
		pthread_mutex_lock(&c->lock);
		if (rc == 0 && !e->doomed)
			rc = link_unnamed(c, fd, path);
		if (fd >= 0)
			close(fd);
	} else {
		rc = cache_write_tmp(c, hdr, hlen, body, blen, false, tmp,
				     sizeof(tmp));
		pthread_mutex_lock(&c->lock);
		if (rc == 0 && e->doomed)
			unlinkat(c->dir_fd, tmp, 0);
		else if (rc == 0)
			rc = cache_place(c, tmp, path, false);
	}
	if (rc == 0 && !e->doomed) {
		e->ready = true;
		e->stamp = cache_now_ns();
		atomic_fetch_add(&c->n_writes, 1);
		atomic_fetch_add(&c->n_write_bytes, hlen + blen);
	} else {
		entry_del_locked(c, e);
		if (rc < 0)
			atomic_fetch_add(&c->n_drops, 1);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static void drop_locked(struct cache *c, const char *key)
{
	char path[CACHE_PATH_MAX];
	struct centry *e = find_locked(c, key);

	if (e && e->ready)
		remove_locked(c, e);
	else if (e)
		e->doomed = true;
	else if (cache_path(CACHE_RAW, key, path, sizeof(path)) == 0)
		unlinkat(c->dir_fd, path, 0); /* not indexed yet */
}

void cache_drop(struct cache *c, const char *key)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	drop_locked(c, key);
	pthread_mutex_unlock(&c->lock);
}

void cache_forget(struct cache *c, const char *key)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	drop_locked(c, key);
	cache_unstage_locked(c, key);
	pthread_mutex_unlock(&c->lock);
}

/* ---- background thread ---- */

static void
walk_dir(struct cache *c, int dfd, char *key, size_t klen, int depth,
	 int (*fn)(struct cache *c, const char *key, const struct stat *st))
{
	DIR *d;
	struct dirent *de;

	if (depth > WALK_DEPTH_MAX)
		return;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) && !atomic_load(&c->stopping)) {
		struct stat st;
		size_t n = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    klen + n + 2 > CACHE_PATH_MAX ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		snprintf(key + klen, CACHE_PATH_MAX - klen, "%s%s",
			 klen ? "/" : "", de->d_name);
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (sub >= 0)
				walk_dir(c, sub, key, strlen(key), depth + 1,
					 fn);
		} else if (S_ISREG(st.st_mode) && fn(c, key, &st) != 0) {
			break;
		}
		key[klen] = '\0';
	}
	closedir(d);
}

void cache_walk(struct cache *c, const char *sub,
		int (*fn)(struct cache *c, const char *key,
			  const struct stat *st))
{
	char key[CACHE_PATH_MAX] = "";
	int fd = openat(c->dir_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
		walk_dir(c, fd, key, 0, 0, fn);
}

static int scan_raw_cb(struct cache *c, const char *key, const struct stat *st)
{
	int64_t a = ts_ns(&st->st_atim), m = ts_ns(&st->st_mtim);

	pthread_mutex_lock(&c->lock);
	if (!cache_is_staged_locked(c, key))
		cache_index_add_locked(
			c, key, cache_charge((uint64_t)st->st_size), MAX(a, m));
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void enforce_locked(struct cache *c)
{
	cache_room_locked(c, 0);
	cache_floor_locked(c, 0);
}

void cache_enforce(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	enforce_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void deadline_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *bg_main(void *arg)
{
	struct cache *c = arg;
	struct timespec ts;

	cache_scan_staging(c);
	cache_walk(c, CACHE_RAW, scan_raw_cb);
	pthread_mutex_lock(&c->lock);
	c->scan_raw = false;
	pthread_cond_broadcast(&c->idle_cond);
	while (!atomic_load(&c->stopping)) {
		enforce_locked(c);
		deadline_ms(&ts, BG_PERIOD_MS);
		pthread_cond_timedwait(&c->bg_cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- open and close ---- */

static int mkdir_p(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Remove temporary files of processes that are gone. */
static void clean_tmp(struct cache *c)
{
	int fd = openat(c->dir_fd, CACHE_TMP,
			O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		long pid = strtol(de->d_name, NULL, 10);

		if (de->d_name[0] == '.')
			continue;
		if (pid <= 0 || pid == c->pid ||
		    (kill((pid_t)pid, 0) < 0 && errno == ESRCH))
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

int cache_check_dir(const char *dir)
{
	static const char *const subs[] = {CACHE_RAW, CACHE_STAGING, CACHE_TMP};
	char probe[64];
	int fd, pfd, rc = mkdir_p(dir);

	if (rc < 0)
		return log_fail(rc, "cannot create cache directory '%s'", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_fail(-errno, "cannot open cache directory '%s'",
				dir);
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		if (mkdirat(fd, subs[i], 0700) < 0 && errno != EEXIST) {
			rc = log_fail(-errno, "cannot create '%s/%s'", dir,
				      subs[i]);
			goto out;
		}
	}
	snprintf(probe, sizeof(probe), CACHE_TMP "/%d.probe", (int)getpid());
	pfd = openat(fd, probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (pfd < 0) {
		rc = log_fail(-errno, "cache directory '%s' is not writable",
			      dir);
		goto out;
	}
	close(pfd);
	unlinkat(fd, probe, 0);
out:
	close(fd);
	return rc;
}

static int open_dir(struct cache *c, const char *dir)
{
	int rc = cache_check_dir(dir);

	if (rc < 0)
		return rc;
	c->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dir_fd < 0)
		return log_fail(-errno, "cannot open cache directory '%s'",
				dir);
	clean_tmp(c);
	return 0;
}

static int init_sync(struct cache *c)
{
	pthread_condattr_t ca;
	int rc;

	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&c->bg_cond, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&c->up_cond, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&c->idle_cond, &ca);
	if (rc == 0)
		rc = pthread_cond_init(&c->nap_cond, &ca);
	pthread_condattr_destroy(&ca);
	return -rc;
}

static void release_sync(struct cache *c)
{
	pthread_cond_destroy(&c->nap_cond);
	pthread_cond_destroy(&c->idle_cond);
	pthread_cond_destroy(&c->up_cond);
	pthread_cond_destroy(&c->bg_cond);
	pthread_mutex_destroy(&c->lock);
}

static void cache_free(struct cache *c)
{
	while (c->nslots > 0)
		entry_del_locked(c, c->slots[c->nslots - 1]);
	free(c->slots);
	cache_htab_release(&c->index);
	cache_staged_release(c);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	release_sync(c);
	explicit_bzero(&c->fc, sizeof(c->fc));
	free(c->dir);
	free(c);
}

int cache_open(struct obj_store *os, const struct cache_conf *conf,
	       struct cache **out)
{
	struct cache *c;
	int nup, rc;

	if (!conf->dir || !conf->dir[0] || !(conf->free_ratio >= 0) ||
	    conf->free_ratio >= 1 || conf->upload_threads < 0)
		return log_fail(-EINVAL, "invalid cache settings");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dir_fd = -1;
	c->os = os;
	c->limit = conf->size;
	c->free_ratio = conf->free_ratio;
	c->writeback = conf->writeback;
	if (conf->frame)
		c->fc = *conf->frame;
	c->mem_reserve = conf->mem_reserve;
	c->mem_release = conf->mem_release;
	c->mem_arg = conf->mem_arg;
	c->pid = getpid();
	if (!fio_unnamed_usable())
		atomic_store(&c->no_tmpfile, true);
	c->rng = (uint64_t)cache_now_ns() | 1;
	c->scan_raw = c->scan_staging = true;
	cache_htab_init(&c->index);
	cache_htab_init(&c->staged);
	c->dir = strdup(conf->dir);
	if (!c->dir) {
		free(c);
		return -ENOMEM;
	}
	rc = init_sync(c);
	if (rc == 0)
		rc = open_dir(c, conf->dir);
	nup = conf->upload_threads ? conf->upload_threads : DEF_UPLOADERS;
	if (rc == 0)
		rc = cache_uploaders_start(c, MIN(nup, MAX_UPLOADERS));
	if (rc == 0) {
		rc = -pthread_create(&c->bg, NULL, bg_main, c);
		c->bg_started = rc == 0;
	}
	if (rc < 0) {
		cache_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->stopping, true);
	pthread_cond_broadcast(&c->bg_cond);
	pthread_cond_broadcast(&c->up_cond);
	pthread_cond_broadcast(&c->nap_cond);
	pthread_mutex_unlock(&c->lock);
	if (c->bg_started)
		pthread_join(c->bg, NULL);
	cache_uploaders_join(c);
	cache_free(c);
}

bool cache_writeback(const struct cache *c)
{
	return c && c->writeback;
}

void cache_wait_scan(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	while (c->scan_raw || c->scan_staging)
		pthread_cond_wait(&c->idle_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	out->hits = atomic_load(&c->n_hits);
	out->hit_bytes = atomic_load(&c->n_hit_bytes);
	out->misses = atomic_load(&c->n_misses);
	out->writes = atomic_load(&c->n_writes);
	out->write_bytes = atomic_load(&c->n_write_bytes);
	out->drops = atomic_load(&c->n_drops);
	out->evictions = atomic_load(&c->n_evict);
	out->evicted_bytes = atomic_load(&c->n_evict_bytes);
	out->corrupt = atomic_load(&c->n_corrupt);
	out->uploads = atomic_load(&c->n_uploads);
	pthread_mutex_lock(&c->lock);
	out->used_bytes = c->used;
	out->blocks = c->nslots;
	out->staged = c->staged.n;
	out->staged_bytes = c->staged_bytes;
	out->scanning = c->scan_raw || c->scan_staging;
	pthread_mutex_unlock(&c->lock);
}
