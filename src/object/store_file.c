/*
 * store_file.c - the file:// object store: one file per key under a root
 * directory, a key's '/' separated components being directories.
 *
 * Design note.
 *
 * Atomic puts: an object is written to an unnamed file (O_TMPFILE) in
 * its key's own directory and linked to its key once complete, so a reader
 * (or a crash) sees the object whole or not at all; a crash leaves no
 * file behind.  A key that exists already is replaced as rename(2) does:
 * the unnamed file is linked to a temporary name under ROOT/.tmp/ and
 * renamed over the key.  Where O_TMPFILE is refused (some filesystems) or
 * /proc is missing (the link goes through /proc/self/fd), every put writes
 * a named temporary file under ROOT/.tmp/ and renames it (so does every
 * put with TESSERA_FILE_NAMED_PUTS set, for tests).  ROOT/.tmp is on
 * the same filesystem as the objects (it is inside the root), so renames
 * never cross devices.  The first key component ".tmp" is therefore
 * reserved and listings skip it; temporary files left by a crash are
 * removed at open once they are an hour old (a younger one may belong to
 * another process writing to the same store).
 *
 * Why not always the temporary directory: ext4 allocates a new file's
 * inode in its parent directory's block group, so every object would come
 * from .tmp's group, and deleted objects free inodes there.  Without a
 * journal, ext4 skips inodes deleted in the last ~35 s one by one when it
 * allocates: after deleting 3,000 objects, creating small files took
 * 500 us per put in find_inode_bit/recently_deleted (perf), against 25 us
 * once the deletes were older.  So objects are born in their own
 * directories, and the directories the store makes are marked to spread
 * their subdirectories over the disk (fio_spread_children): the objects of
 * new slices then land in other block groups than those just deleted
 * (3,000 creates right after 3,000 deletes: 1,336/s before, 5,430/s
 * after; the same loop on a quiet volume, 5,000/s).
 *
 * Durability: a put does not fsync.  sync() calls syncfs(2) on the root
 * directory: it writes back every dirty page and inode of the filesystem
 * holding the root, which includes the data of each object linked or
 * renamed into place before the call and the directory entries of those
 * links and renames (metadata changes of the same filesystem).  Every put
 * that returned before sync() started has finished its write and link or
 * rename, so all of it is covered.  Since Linux 5.8 syncfs reports writeback errors that
 * happened since the file descriptor was opened, so a lost write surfaces
 * as -EIO.  A put counter lets sync() skip the syscall when nothing was
 * written since the last successful sync.  Limit: a directory inside the
 * root that is itself a mount point of another filesystem is not covered.
 *
 * Direct writes: a put of a 4 KiB-aligned buffer of 64 KiB or more (a
 * block from chunk/, whose full buffers are aligned) writes its aligned
 * bulk with O_DIRECT, the tail buffered.  The bytes then go from our
 * buffer to the device instead of being copied into the page cache and
 * written back later: a 1 GiB sequential write spent ~45% of the mount's
 * CPU in that copy.  syncfs still covers them (O_DIRECT data is on the
 * device, syncfs commits the metadata and flushes the device cache).  A
 * filesystem that refuses O_DIRECT (EINVAL) gets buffered puts from then
 * on.  Gets of a whole object into such a buffer (chunk/'s block fetches)
 * read with O_DIRECT the same way: the device writes into our buffer, no
 * page-cache copy (a cold 256 MiB sequential read went from ~150 to
 * ~300 MB/s on a loaded 2-core machine); other gets read buffered.
 *
 * Keys map to paths literally, so two keys where one is a directory prefix
 * of the other ("a" and "a/b") cannot both exist here (S3 allows it;
 * Tessera never writes such keys).  Keys with empty components ("a//b", a
 * trailing '/') are rejected with -EINVAL for the same reason.
 *
 * Listing walks the tree in key byte order: the entries of one directory
 * are sorted by name, a subdirectory sorting as "name/" (all its keys start
 * with that), and subtrees that cannot hold keys after the start key or
 * under the prefix are skipped without opening them.  The continuation
 * token is the last key returned, so a page costs a walk from the root
 * along one path plus the keys it returns.
 *
 * Deleting a key also removes the directories it leaves empty (up to the
 * root).  A put racing with that rmdir finds its parent gone at rename
 * time and recreates it, retrying a few times.
 *
 * Thread safety: no locks; every call works on its own file descriptors.
 * The counters are atomics.
 */
#include "util/common.h"
#include "object/object.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/url.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_DIR ".tmp"
#define TMP_MAX_AGE_S 3600
#define PUT_RETRIES 8

struct file_store {
	struct obj_store base;
	char *root;	   /* absolute path, no trailing '/' */
	int root_fd;	   /* O_DIRECTORY of root */
	uint64_t tmp_seed; /* random, makes temp names unique */
	atomic_uint_fast64_t tmp_seq;
	atomic_uint_fast64_t puts;   /* puts completed */
	atomic_uint_fast64_t synced; /* value of puts at the last good sync */
	atomic_bool no_direct;	     /* O_DIRECT refused: buffered puts */
	atomic_bool no_direct_read;  /* O_DIRECT refused: buffered gets */
	atomic_bool no_tmpfile;	     /* O_TMPFILE refused: named temporaries */
};

static struct file_store *fs_of(struct obj_store *s)
{
	return (struct file_store *)s;
}

/* Map an errno of a system call to the codes of object.h. */
static int fs_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return -ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return -EACCES;
	case ENAMETOOLONG:
	case EINVAL:
	case EISDIR:
	case EEXIST:
	case ENOTEMPTY:
		return -EINVAL;
	case ENOMEM:
		return -ENOMEM;
	case ENOSPC:
	case EDQUOT:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* Keys this store can hold: object.h rules, no empty component, no ".tmp". */
static int fs_key_check(const char *key)
{
	size_t n;

	if (obj_key_check(key) < 0)
		return -EINVAL;
	n = strlen(key);
	if (key[n - 1] == '/' || strstr(key, "//"))
		return -EINVAL;
	if (strncmp(key, TMP_DIR, strlen(TMP_DIR)) == 0 &&
	    (key[strlen(TMP_DIR)] == '/' || key[strlen(TMP_DIR)] == '\0'))
		return -EINVAL;
	return 0;
}

/* mkdir -p of every directory of @key (relative to the root). */
static int make_parents(struct file_store *fs, const char *key)
{
	char path[OBJ_KEY_MAX + 1];
	char *p;

	snprintf(path, sizeof(path), "%s", key);
	for (p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(fs->root_fd, path, 0755) == 0)
			fio_spread_children(fs->root_fd, path);
		else if (errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* A fresh temporary name (relative to root) into @name. */
static void tmp_name(struct file_store *fs, char *name, size_t n)
{
	uint64_t seq = atomic_fetch_add(&fs->tmp_seq, 1);

	snprintf(name, n, TMP_DIR "/%d.%016llx.%llu", (int)getpid(),
		 (unsigned long long)fs->tmp_seed, (unsigned long long)seq);
}

/* Create a new temporary file; its name (relative to root) into @name. */
static int tmp_create(struct file_store *fs, char *name, size_t n)
{
	for (int i = 0; i < 100; i++) {
		int fd;

		tmp_name(fs, name, n);
		fd = openat(fs->root_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0)
			return fd;
		if (errno == ENOENT && mkdirat(fs->root_fd, TMP_DIR, 0700) == 0)
			continue;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* rename(2) @tmp to @key, making the key's directories if gone. */
static int place(struct file_store *fs, const char *tmp, const char *key)
{
	for (int i = 0;; i++) {
		int rc;

		if (renameat(fs->root_fd, tmp, fs->root_fd, key) == 0)
			return 0;
		rc = -errno;
		if (rc != -ENOENT || i == PUT_RETRIES)
			return rc;
		rc = make_parents(fs, key);
		if (rc < 0)
			return rc;
	}
}

/* The put of a store without O_TMPFILE: a named temporary, renamed. */
static int put_named(struct file_store *fs, const char *key, const void *data,
		     size_t len)
{
	char tmp[128];
	int fd, rc;

	fd = tmp_create(fs, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	rc = fio_write_new(fd, data, len, &fs->no_direct);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = place(fs, tmp, key);
	if (rc < 0)
		unlinkat(fs->root_fd, tmp, 0);
	return rc;
}

/*
 * An unnamed file in @key's directory (made if missing); -EOPNOTSUPP when
 * the filesystem has no O_TMPFILE (then put_named from now on).
 */
static int open_unnamed(struct file_store *fs, const char *key)
{
	for (int i = 0;; i++) {
		int fd = fio_open_unnamed(fs->root_fd, key, 0644), rc;

		if (fd >= 0)
			return fd;
		if (fd == -EOPNOTSUPP)
			atomic_store(&fs->no_tmpfile, true);
		if (fd != -ENOENT || i == PUT_RETRIES)
			return fd;
		rc = make_parents(fs, key);
		if (rc < 0)
			return rc;
	}
}

/* Give the unnamed file @fd the name @key, replacing what is there. */
static int link_unnamed(struct file_store *fs, int fd, const char *key)
{
	char tmp[128];
	int rc;

	for (int i = 0;; i++) {
		rc = fio_link_unnamed(fd, fs->root_fd, key);
		if (rc == 0)
			return 0;
		if (rc == -EEXIST)
			break;
		/* the directory went away with its last object: again */
		if (rc != -ENOENT || i == PUT_RETRIES)
			return rc;
		rc = make_parents(fs, key);
		if (rc < 0)
			return rc;
	}
	for (int i = 0;; i++) {
		tmp_name(fs, tmp, sizeof(tmp));
		rc = fio_link_unnamed(fd, fs->root_fd, tmp);
		if (rc == 0)
			break;
		if (i == PUT_RETRIES ||
		    (rc == -ENOENT && mkdirat(fs->root_fd, TMP_DIR, 0700) < 0 &&
		     errno != EEXIST) ||
		    (rc != -ENOENT && rc != -EEXIST))
			return rc;
	}
	rc = place(fs, tmp, key);
	if (rc < 0)
		unlinkat(fs->root_fd, tmp, 0);
	return rc;
}

static int put_unnamed(struct file_store *fs, const char *key,
		       const void *data, size_t len)
{
	int fd = open_unnamed(fs, key), rc;

	if (fd < 0)
		return fd;
	rc = fio_write_new(fd, data, len, &fs->no_direct);
	if (rc == 0)
		rc = link_unnamed(fs, fd, key);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int fs_put(struct obj_store *s, const char *key, const void *data,
		  size_t len)
{
	struct file_store *fs = fs_of(s);
	int rc = -EOPNOTSUPP;

	if (fs_key_check(key) < 0)
		return -EINVAL;
	if (!atomic_load(&fs->no_tmpfile))
		rc = put_unnamed(fs, key, data, len);
	if (rc == -EOPNOTSUPP)
		rc = put_named(fs, key, data, len);
	if (rc < 0) {
		log_error("cannot write '%s' in '%s': %s", key, s->desc,
			  strerror(-rc));
		return fs_errno(-rc);
	}
	atomic_fetch_add(&fs->puts, 1);
	return 0;
}

static int read_range(int fd, uint64_t off, uint64_t len, struct buf *out)
{
	int rc = buf_grow(out, (size_t)len);

	if (rc < 0)
		return rc;
	while (len > 0) {
		ssize_t n =
		    pread(fd, out->data + out->len, (size_t)len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break; /* shrank under us: return what there is */
		out->len += (size_t)n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	out->data[out->len] = '\0';
	return 0;
}

/*
 * A whole object into an aligned buffer with room for it rounded up to
 * the direct I/O alignment (chunk/'s full block buffers): read it with
 * O_DIRECT, from the device into @out, without a page-cache copy.
 * Returns 1 when done that way, 0 when the caller should read buffered
 * (not eligible, or the filesystem refuses O_DIRECT), -errno.
 */
static int read_direct(struct file_store *fs, int fd, uint64_t size,
		       struct buf *out)
{
	size_t want = ((size_t)size + FIO_DIRECT_ALIGN - 1) &
		      ~(size_t)(FIO_DIRECT_ALIGN - 1);
	size_t got = 0;
	int fl;

	if (size < FIO_DIRECT_MIN || (uintptr_t)out->data % FIO_DIRECT_ALIGN ||
	    out->cap < want || out->cap <= size ||
	    atomic_load(&fs->no_direct_read))
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
		if (fl >= 0 && errno == EINVAL)
			atomic_store(&fs->no_direct_read, true);
		return fl < 0 ? -errno : errno == EINVAL ? 0 : -errno;
	}
	while (got < size) {
		ssize_t n = pread(fd, out->data + got, want - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && got == 0) {
			atomic_store(&fs->no_direct_read, true);
			fcntl(fd, F_SETFL, fl);
			return 0;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* shrank under us: return what there is */
		got += (size_t)n;
		if (got % FIO_DIRECT_ALIGN)
			break; /* the end of the file */
	}
	out->len = MIN(got, (size_t)size);
	out->data[out->len] = '\0';
	return 1;
}

static int fs_get(struct obj_store *s, const char *key, uint64_t off,
		  uint64_t len, struct buf *out)
{
	struct file_store *fs = fs_of(s);
	struct stat st;
	uint64_t size;
	int fd, rc;

	buf_reset(out);
	if (fs_key_check(key) < 0)
		return -EINVAL;
	fd = openat(fs->root_fd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP
			   ? -ENOENT
			   : log_fail(fs_errno(errno), "cannot read '%s'", key);
	if (fstat(fd, &st) < 0) {
		rc = log_fail(fs_errno(errno), "cannot stat '%s'", key);
		goto out;
	}
	rc = -ENOENT;
	if (!S_ISREG(st.st_mode))
		goto out;
	size = (uint64_t)st.st_size;
	rc = 0;
	if (off >= size)
		goto out;
	if (len > size - off)
		len = size - off;
	rc = off == 0 && len == size ? read_direct(fs, fd, size, out) : 0;
	if (rc == 0)
		rc = read_range(fd, off, len, out);
	else if (rc > 0)
		rc = 0;
	if (rc < 0)
		rc = log_fail(fs_errno(-rc), "cannot read '%s'", key);
out:
	close(fd);
	return rc;
}

static int fs_head(struct obj_store *s, const char *key, struct obj_info *out)
{
	struct file_store *fs = fs_of(s);
	struct stat st;

	if (fs_key_check(key) < 0)
		return -EINVAL;
	if (fstatat(fs->root_fd, key, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fs_errno(errno);
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	out->size = (uint64_t)st.st_size;
	out->mtime_ns =
	    (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	return 0;
}

static int fs_del(struct obj_store *s, const char *key)
{
	struct file_store *fs = fs_of(s);
	char path[OBJ_KEY_MAX + 1];
	char *p;

	if (fs_key_check(key) < 0)
		return -EINVAL;
	if (unlinkat(fs->root_fd, key, 0) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return log_fail(fs_errno(errno), "cannot delete '%s' in '%s'",
				key, s->desc);
	}
	/* Remove the directories this left empty; stop at the first not. */
	snprintf(path, sizeof(path), "%s", key);
	while ((p = strrchr(path, '/')) != NULL) {
		*p = '\0';
		if (unlinkat(fs->root_fd, path, AT_REMOVEDIR) < 0)
			break;
	}
	return 0;
}

/* ---- listing ---- */

struct dent {
	char *name; /* with a trailing '/' for directories */
	bool dir;
};

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name,
		      ((const struct dent *)b)->name);
}

struct walk {
	const char *prefix;
	size_t plen;
	const char *after; /* NULL: from the start */
	size_t want;	   /* stop once out has this many */
	struct obj_list *out;
	char key[OBJ_KEY_MAX + 2]; /* key of the directory being walked */
	size_t klen;
};

static void dents_free(struct dent *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].name);
	free(d);
}

static bool is_dir_entry(int dfd, const struct dirent *e)
{
	struct stat st;

	if (e->d_type == DT_DIR)
		return true;
	if (e->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Read and sort the entries of directory @dfd (left open). */
static int read_dents(int dfd, bool at_root, struct dent **out, size_t *nout)
{
	int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (dup_fd < 0)
		return -errno;
	d = fdopendir(dup_fd);
	if (!d) {
		rc = -errno;
		close(dup_fd);
		return rc;
	}
	while ((errno = 0, e = readdir(d)) != NULL) {
		bool dir;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (at_root && strcmp(e->d_name, TMP_DIR) == 0)
			continue;
		if (n == cap) {
			struct dent *nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		dir = is_dir_entry(dfd, e);
		if (asprintf(&v[n].name, "%s%s", e->d_name, dir ? "/" : "") <
		    0) {
			rc = -ENOMEM;
			goto out;
		}
		v[n++].dir = dir;
	}
	if (errno)
		rc = -errno;
out:
	closedir(d);
	if (rc < 0) {
		dents_free(v, n);
		return rc;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), dent_cmp);
	*out = v;
	*nout = n;
	return 0;
}

/* Can a key starting with @k (a directory's "a/b/") match the prefix? */
static bool dir_may_match(const struct walk *w, const char *k, size_t klen)
{
	size_t m = MIN(klen, w->plen);

	if (memcmp(k, w->prefix, m) != 0)
		return false;
	if (!w->after)
		return true;
	/*
	 * Every key below sorts at or before after unless after starts with
	 * k (strncmp 0) or k sorts after it within its length.
	 */
	return strncmp(k, w->after, klen) >= 0;
}

static int walk_dir(struct walk *w, int dfd);

static int walk_entry(struct walk *w, int dfd, const struct dent *e)
{
	size_t nlen = strlen(e->name);
	size_t base = w->klen;
	struct stat st;
	int rc = 0;

	if (base + nlen > OBJ_KEY_MAX)
		return 0; /* not a key we could have written */
	memcpy(w->key + base, e->name, nlen + 1);
	if (e->dir) {
		int sub;

		if (!dir_may_match(w, w->key, base + nlen))
			goto out;
		w->key[base + nlen - 1] = '\0';
		sub = openat(dfd, w->key + base,
			     O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		w->key[base + nlen - 1] = '/';
		if (sub < 0) {
			rc = errno == ENOENT ? 0 : -errno; /* raced a delete */
			goto out;
		}
		w->klen = base + nlen;
		rc = walk_dir(w, sub);
		goto out;
	}
	if (strncmp(w->key, w->prefix, w->plen) != 0)
		goto out;
	if (w->after && strcmp(w->key, w->after) <= 0)
		goto out;
	if (fstatat(dfd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode))
		goto out;
	rc = obj_list_add(w->out, w->key, (uint64_t)st.st_size,
			  (int64_t)st.st_mtim.tv_sec * 1000000000LL +
			      st.st_mtim.tv_nsec);
out:
	w->klen = base;
	w->key[base] = '\0';
	return rc;
}

static int walk_dir(struct walk *w, int dfd)
{
	struct dent *v = NULL;
	size_t n = 0;
	int rc;

	rc = read_dents(dfd, w->klen == 0, &v, &n);
	if (rc < 0) {
		close(dfd);
		return rc == -ENOENT ? 0 : rc;
	}
	for (size_t i = 0; i < n && w->out->n < w->want; i++) {
		rc = walk_entry(w, dfd, &v[i]);
		if (rc < 0)
			break;
	}
	dents_free(v, n);
	close(dfd);
	return rc;
}

static int fs_list(struct obj_store *s, const char *prefix,
		   const char *start_after, const char *token, int limit,
		   struct obj_list *out)
{
	struct file_store *fs = fs_of(s);
	struct walk w;
	int dfd, rc;

	obj_list_reset(out);
	memset(&w, 0, sizeof(w));
	w.prefix = prefix;
	w.plen = strlen(prefix);
	w.after = start_after;
	if (token && (!w.after || strcmp(token, w.after) > 0))
		w.after = token;
	w.want = (size_t)limit + 1;
	w.out = out;
	dfd = openat(fs->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return log_fail(fs_errno(errno), "cannot list '%s'", s->desc);
	rc = walk_dir(&w, dfd);
	if (rc < 0) {
		obj_list_reset(out);
		return log_fail(fs_errno(-rc), "cannot list '%s'", s->desc);
	}
	if (out->n > (size_t)limit) {
		out->n--;
		free(out->items[out->n].key);
		out->truncated = true;
		out->next_token = strdup(out->items[out->n - 1].key);
		if (!out->next_token) {
			obj_list_reset(out);
			return -ENOMEM;
		}
	}
	return 0;
}

static int fs_sync(struct obj_store *s)
{
	struct file_store *fs = fs_of(s);
	uint_fast64_t puts = atomic_load(&fs->puts);
	uint_fast64_t done = atomic_load(&fs->synced);

	if (puts == done)
		return 0; /* nothing written since the last good sync */
	if (syncfs(fs->root_fd) < 0)
		return log_fail(-EIO, "cannot sync '%s'", s->desc);
	/* Raise synced to puts, unless a concurrent sync went further. */
	while (done < puts &&
	       !atomic_compare_exchange_weak(&fs->synced, &done, puts))
		;
	return 0;
}

/* mkdir -p @path (absolute); the last component gets @mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *p, *d = strdup(path);
	int rc = 0;

	if (!d)
		return -ENOMEM;
	for (p = strchr(d + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(d, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		*p = '/';
	}
	if (mkdir(d, mode) < 0 && errno != EEXIST)
		rc = -errno;
out:
	free(d);
	return rc;
}

static int fs_create(struct obj_store *s)
{
	struct file_store *fs = fs_of(s);
	int rc = mkdir_p(fs->root, 0700);

	return rc < 0 ? log_fail(fs_errno(-rc), "cannot create '%s'", s->desc)
		      : 0;
}

static void fs_close(struct obj_store *s)
{
	struct file_store *fs = fs_of(s);

	if (fs->root_fd >= 0)
		close(fs->root_fd);
	free(fs->root);
	free(fs);
}

static const struct obj_store_ops obj_file_ops = {
    .scheme = "file",
    .put = fs_put,
    .get = fs_get,
    .head = fs_head,
    .del = fs_del,
    .list = fs_list,
    .sync = fs_sync,
    .create = fs_create,
    .close = fs_close,
};

/* Remove temporary files a crashed writer left behind (older than 1 h). */
static void tmp_cleanup(struct file_store *fs)
{
	int dfd = openat(fs->root_fd, TMP_DIR,
			 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	time_t now = time(NULL);
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (dfd < 0)
		return;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && st.st_mtime + TMP_MAX_AGE_S < now)
			unlinkat(dfd, e->d_name, 0);
	}
	closedir(d);
}

/* The directory is writable: make ROOT/.tmp and a file in it. */
static int probe_writable(struct file_store *fs)
{
	char tmp[128];
	int fd;

	if (mkdirat(fs->root_fd, TMP_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = tmp_create(fs, tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	close(fd);
	unlinkat(fs->root_fd, tmp, 0);
	return 0;
}

static int open_root(struct file_store *fs, bool create)
{
	const char *desc = fs->base.desc;
	int rc;

	if (create) {
		rc = mkdir_p(fs->root, 0700);
		if (rc < 0)
			goto fail;
	}
	fs->root_fd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = probe_writable(fs);
	if (rc < 0) {
		log_error("cannot open storage '%s': directory is not writable "
			  "(%s)",
			  desc, strerror(-rc));
		return rc == -ENOMEM ? rc : -EACCES;
	}
	tmp_cleanup(fs);
	if (!fio_unnamed_usable())
		atomic_store(&fs->no_tmpfile, true);
	return 0;
fail:
	if (rc == -ENOENT) {
		log_error("cannot open storage '%s': directory does not exist",
			  desc);
		return -ENOENT;
	}
	if (rc == -ENOTDIR) {
		log_error("cannot open storage '%s': not a directory", desc);
		return -ENOTDIR;
	}
	log_error("cannot open storage '%s': %s", desc, strerror(-rc));
	return fs_errno(-rc);
}

int obj_file_open(const char *url, bool create, struct obj_store **out)
{
	struct file_store *fs;
	const char *why = NULL;
	struct url u;
	size_t n;
	int rc;

	rc = url_parse(url, &u, &why);
	if (rc < 0 || strcmp(u.scheme, "file") != 0) {
		char red[1200];

		if (rc == 0)
			url_release(&u);
		log_error("invalid storage URL '%s': %s",
			  url_redact(url, red, sizeof(red)),
			  why ? why : "not a file:// URL");
		return -EINVAL;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		url_release(&u);
		return -ENOMEM;
	}
	fs->base.ops = &obj_file_ops;
	url_redact(url, fs->base.desc, sizeof(fs->base.desc));
	fs->root_fd = -1;
	fs->root = u.path; /* taken over from the url */
	u.path = NULL;
	url_release(&u);
	n = strlen(fs->root);
	while (n > 1 && fs->root[n - 1] == '/')
		fs->root[--n] = '\0';
	if (getrandom(&fs->tmp_seed, sizeof(fs->tmp_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(fs->tmp_seed))
		fs->tmp_seed =
		    (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	rc = open_root(fs, create);
	if (rc < 0) {
		fs_close(&fs->base);
		return rc;
	}
	*out = &fs->base;
	return 0;
}
