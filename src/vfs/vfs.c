/*
 * vfs.c - the mount's file layer: lifecycle, namespace operations,
 * directories, attributes, xattrs, statfs and the virtual files (locks:
 * vfs_lock.c).
 *
 * Most calls are one meta_* call with the caller's credentials; what this
 * file adds is what metadata alone cannot know: lengths of writes still
 * buffered in this mount (vfs_file.c), the ordering of commits before
 * truncates and explicit timestamps, the handle-based permission rules of
 * Linux (ftruncate through a writable descriptor is allowed whatever the
 * mode says now), read-only mounts, and the virtual files at the root.
 *
 * Virtual files: ".stats" and ".config" in the root directory, inode
 * numbers VFS_INO_STATS / VFS_INO_CONFIG, mode 0444, hidden from readdir,
 * not removable.  Their text is generated at open; fuse/ opens them with
 * direct_io so the kernel does not trust their length of 0.
 */
#include "util/common.h"
#include "cache/cache.h"
#include "chunk/chunk.h"
#include "meta/meta.h"
#include "object/frame.h"
#include "object/object.h"
#include "util/buf.h"
#include "util/log.h"
#include "vfs/vfs_int.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int64_t vfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool vfs_is_virtual(uint64_t ino)
{
	return ino == VFS_INO_STATS || ino == VFS_INO_CONFIG ||
	       ino == VFS_INO_CONTROL || ino == VFS_INO_ACCESSLOG;
}

static const struct meta_cred *cred_of(const struct vfs_ctx *c)
{
	return c ? &c->cred : NULL;
}

/* ---- lifecycle ---- */

/*
 * The mount's effective settings, one "name value" line each, after the
 * volume's JSON in ".config" (what a mount option or fstab line set).
 */
static int settings_text(struct vfs *v, const struct chunk_conf *cc)
{
	static const char *const atime[] = {"relatime", "noatime",
					    "strictatime"};
	const struct cache_conf *c = cc->cache;
	struct buf b = BUF_INIT;
	int rc;

	rc = buf_appendf(&b,
			 "mountpoint %s\nread_only %d\nbuffer_size %llu\n"
			 "max_uploads %d\nmax_readahead %u\natime %s\n"
			 "nodiratime %d\n",
			 v->mountpoint, (int)v->conf.read_only,
			 (unsigned long long)cc->buffer_size, cc->max_uploads,
			 cc->max_readahead, atime[v->conf.atime],
			 (int)v->conf.nodiratime);
	if (rc == 0 && c)
		rc = buf_appendf(&b,
				 "cache_dir %s\ncache_size %llu\n"
				 "free_space_ratio %g\nwriteback %d\n"
				 "cache_large_write %d\n",
				 c->dir ? c->dir : "", (unsigned long long)c->size,
				 c->free_ratio, (int)c->writeback,
				 (int)c->cache_large_write);
	else if (rc == 0)
		rc = buf_appendf(&b, "cache_size 0\nwriteback 0\n");
	if (rc < 0) {
		buf_release(&b);
		return rc;
	}
	v->settings = buf_detach(&b, NULL);
	return v->settings ? 0 : -ENOMEM;
}

int vfs_new(struct meta *m, struct obj_store *os, const struct meta_format *fmt,
	    const struct vfs_conf *conf, struct vfs **out)
{
	struct chunk_conf cc;
	struct frame_conf frame;
	struct vfs *v;
	int rc;

	memset(&frame, 0, sizeof(frame));
	if (conf->frame) {
		frame = *conf->frame;
	} else if (fmt->compress[0] &&
		   frame_codec_parse(fmt->compress, &frame.codec)) {
		log_error("volume '%s': unknown compression '%s'", fmt->name,
			  fmt->compress);
		return -EINVAL;
	}
	if (!frame.encrypt && fmt->encrypt[0] &&
	    strcmp(fmt->encrypt, "none") != 0) {
		log_error("volume '%s' is encrypted: no key given", fmt->name);
		return -ENOKEY;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->fmt = *fmt;
	v->conf = *conf;
	if (conf->mountpoint)
		snprintf(v->mountpoint, sizeof(v->mountpoint), "%s",
			 conf->mountpoint);
	v->conf.mountpoint = v->mountpoint;
	v->conf.frame = NULL; /* the chunk store keeps its own copy */
	v->start_ns = vfs_now_ns();
	memset(&cc, 0, sizeof(cc));
	cc.volname = v->fmt.name;
	cc.block_size = fmt->block_size ? fmt->block_size : TESSERA_BLOCK_SIZE;
	cc.buffer_size = conf->buffer_size ? conf->buffer_size : 300 * MiB;
	cc.max_uploads = conf->max_uploads > 0 ? conf->max_uploads : 20;
	cc.max_readahead = conf->no_readahead	 ? 0
			   : conf->max_readahead ? conf->max_readahead
						 : 32 * MiB;
	cc.frame = &frame;
	cc.cache = conf->cache;
	v->conf.cache = NULL; /* borrowed for this call only */
	v->mem_limit = cc.buffer_size;
	v->block_size = cc.block_size;
	rc = settings_text(v, &cc);
	if (rc == 0)
		rc = chunk_store_new(os, &cc, &v->cs);
	explicit_bzero(&frame, sizeof(frame));
	if (rc < 0) {
		free(v->settings);
		free(v);
		return rc;
	}
	v->m = m;
	v->os = os;
	pthread_mutex_init(&v->files_lock, NULL);
	pthread_mutex_init(&v->seen_lock, NULL);
	pthread_mutex_init(&v->bg_lock, NULL);
	pthread_cond_init(&v->bg_cond, NULL);
	pthread_mutex_init(&v->alog_lock, NULL);
	pthread_cond_init(&v->alog_cond, NULL);
	vfs_locktab_init(&v->locks);
	vfs_atime_init(&v->atimes);
	rc = vfs_ahead_start(v);
	if (rc == 0 && !conf->no_background && !conf->read_only)
		rc = vfs_bg_start(v);
	if (rc < 0) {
		v->m = NULL;
		v->os = NULL;
		vfs_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int vfs_flush_all(struct vfs *v)
{
	int rc = v->conf.read_only ? 0 : vfs_atime_flush(v);
	int r = vfs_files_commit_all(v, !v->conf.read_only);

	return rc < 0 ? rc : r;
}

void vfs_free(struct vfs *v)
{
	if (!v)
		return;
	if (v->m)
		vfs_flush_all(v);
	if (v->bg_started) {
		vfs_bg_stop(v);
		vfs_bg_delete_pass(v); /* what the last commits released */
	}
	vfs_ahead_stop(v);
	if (v->m)
		vfs_files_free_all(v);
	chunk_store_free(v->cs);
	vfs_locktab_release(&v->locks);
	vfs_atime_release(&v->atimes);
	pthread_cond_destroy(&v->bg_cond);
	pthread_mutex_destroy(&v->bg_lock);
	pthread_cond_destroy(&v->alog_cond);
	pthread_mutex_destroy(&v->alog_lock);
	pthread_mutex_destroy(&v->seen_lock);
	pthread_mutex_destroy(&v->files_lock);
	obj_close(v->os);
	if (v->m)
		meta_close(v->m);
	free(v->settings);
	free(v);
}

/* ---- virtual files ---- */

static bool virtual_name(uint64_t parent, const char *name, uint64_t *ino)
{
	if (parent != TESSERA_ROOT_INO)
		return false;
	if (strcmp(name, ".stats") == 0) {
		*ino = VFS_INO_STATS;
		return true;
	}
	if (strcmp(name, ".config") == 0) {
		*ino = VFS_INO_CONFIG;
		return true;
	}
	if (strcmp(name, ".control") == 0) {
		*ino = VFS_INO_CONTROL;
		return true;
	}
	if (strcmp(name, ".accesslog") == 0) {
		*ino = VFS_INO_ACCESSLOG;
		return true;
	}
	return false;
}

static void virtual_attr(struct vfs *v, uint64_t ino, struct meta_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = S_IFREG | (ino == VFS_INO_CONTROL	? 0666
			     : ino == VFS_INO_ACCESSLOG ? 0400
							: 0444);
	a->nlink = 1;
	a->atime_ns = a->mtime_ns = a->ctime_ns = v->start_ns;
}

static int stats_text(struct vfs *v, struct buf *b)
{
	int64_t now = vfs_now_ns();
	size_t nfiles;
	int rc;

	pthread_mutex_lock(&v->files_lock);
	nfiles = v->nfiles;
	pthread_mutex_unlock(&v->files_lock);
#define STAT(name) (unsigned long long)atomic_load(&v->st.name)
	rc = buf_appendf(
		b,
		"pid %d\nmountpoint %s\nvolume %s\nuptime_s %lld\n"
		"open_inodes %zu\nhandles %llu\nkernel_refs %lld\n"
		"mem_used %llu\n"
		"lookups %llu\nreads %llu\nread_bytes %llu\nwrites %llu\n"
		"write_bytes %llu\ncommits %llu\nfsyncs %llu\n"
		"compactions %llu\ndeleted_slices %llu\n",
		(int)getpid(), v->mountpoint, v->fmt.name,
		(long long)((now - v->start_ns) / 1000000000LL), nfiles,
		STAT(handles), (long long)atomic_load(&v->st.kernel_refs),
		(unsigned long long)chunk_mem_used(v->cs), STAT(lookups),
		STAT(reads), STAT(read_bytes), STAT(writes), STAT(write_bytes),
		STAT(commits), STAT(fsyncs), STAT(compactions),
		STAT(deleted_slices));
#undef STAT
	if (rc == 0) {
		uint64_t fetches, prefetches, hits;

		chunk_block_counts(v->cs, &fetches, &prefetches, &hits);
		rc = buf_appendf(
			b,
			"block_fetches %llu\nblock_prefetches %llu\n"
			"block_hits %llu\nahead_blocks %llu\n"
			"meta_retries %llu\nmeta_txns %llu\nmem_limit %llu\n",
			(unsigned long long)fetches,
			(unsigned long long)prefetches,
			(unsigned long long)hits,
			(unsigned long long)atomic_load(&v->ahead.blocks),
			(unsigned long long)meta_txn_retries(v->m),
			(unsigned long long)meta_txn_count(v->m),
			(unsigned long long)v->mem_limit);
	}
	if (rc == 0) {
		struct obj_state os;

		obj_state(v->os, &os);
		rc = buf_appendf(b, "store_down %d\nstore_outages %llu\n",
				 os.down ? 1 : 0,
				 (unsigned long long)os.outages);
	}
	if (rc == 0)
		rc = vfs_cache_stats_text(v, b);
	if (rc == 0 && v->conf.stats_extra)
		rc = v->conf.stats_extra(v->conf.stats_arg, b);
	return rc;
}

int vfs_stats_text(struct vfs *v, struct buf *b)
{
	return stats_text(v, b);
}

int vfs_virtual_text(struct vfs *v, uint64_t ino, char **out, size_t *len)
{
	struct buf b = BUF_INIT;
	int rc;

	if (ino == VFS_INO_STATS) {
		rc = stats_text(v, &b);
	} else {
		struct meta_format f = v->fmt;
		char *json;

		memset(f.key_wrapped, 0, sizeof(f.key_wrapped));
		json = meta_format_to_json(&f);
		if (!json)
			return -ENOMEM;
		rc = buf_appendf(&b, "%s\n%s", json, v->settings);
		free(json);
	}
	if (rc < 0) {
		buf_release(&b);
		return rc;
	}
	*out = buf_detach(&b, len);
	return 0;
}

/* ---- namespace ---- */

/*
 * Kernel references: every entry handed to the kernel (lookup, create,
 * mknod, mkdir, symlink, link, readdirplus) is one reference until forget.
 * fuse/ counts them as it replies (vfs_ref, undone by vfs_forget when the
 * reply fails); meta/ keeps a per-inode count so that an inode a rename
 * replaces stays openable while the kernel still has it (meta_ref_inode).
 * The total is kept for .stats.
 */
void vfs_ref(struct vfs *v, uint64_t ino, uint64_t n)
{
	atomic_fetch_add(&v->st.kernel_refs, (int_fast64_t)n);
	if (!vfs_is_virtual(ino))
		meta_ref_inode(v->m, ino, n);
}

int vfs_lookup(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, struct meta_attr *out)
{
	uint64_t vino;
	int rc;

	atomic_fetch_add(&v->st.lookups, 1);
	if (virtual_name(parent, name, &vino)) {
		virtual_attr(v, vino, out);
		return 0;
	}
	rc = meta_lookup(v->m, cred_of(c), parent, name, out);
	if (rc == 0)
		vfs_file_overlay(v, out);
	return rc;
}

void vfs_forget(struct vfs *v, uint64_t ino, uint64_t n)
{
	atomic_fetch_sub(&v->st.kernel_refs, (int_fast64_t)n);
	if (!vfs_is_virtual(ino))
		meta_forget_inode(v->m, ino, n); /* logged; cleanup retries */
}

int vfs_getattr(struct vfs *v, uint64_t ino, struct meta_attr *out)
{
	int rc;

	if (vfs_is_virtual(ino)) {
		virtual_attr(v, ino, out);
		return 0;
	}
	rc = meta_getattr(v->m, ino, out);
	if (rc == 0)
		vfs_file_overlay(v, out);
	return rc == -ENOENT ? -ESTALE : rc; /* see vfs_open */
}

static struct vfs_handle *file_handle(uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	if (!h || h->magic != VFS_HANDLE_MAGIC || h->kind != VFS_H_FILE)
		return NULL;
	return h;
}

/*
 * The kernel clears set-id bits after a write by a non-owner with a plain
 * chmod; allow exactly that without the owner check.
 */
static bool is_kill_priv(struct vfs *v, uint64_t ino, uint32_t mask,
			 const struct meta_attr *in)
{
	struct meta_attr a;

	if (mask != META_SET_MODE || meta_getattr(v->m, ino, &a) < 0)
		return false;
	if (!(a.mode & (S_ISUID | S_ISGID)))
		return false;
	return (in->mode & 07777) ==
		       (a.mode & 07777 & ~(uint32_t)(S_ISUID | S_ISGID)) ||
	       (in->mode & 07777) == (a.mode & 07777 & ~(uint32_t)S_ISUID);
}

static int setattr_meta(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
			uint64_t fh, uint32_t mask, const struct meta_attr *in,
			struct meta_attr *out)
{
	struct vfs_handle *h = fh ? file_handle(fh) : NULL;
	const struct meta_cred *cr = cred_of(c);
	int rc;

	if ((mask & META_SET_SIZE) && h && (h->flags & O_ACCMODE) != O_RDONLY) {
		/* ftruncate: the descriptor's access mode decides */
		rc = meta_setattr(v->m, NULL, ino, META_SET_SIZE, in, out);
		mask &= ~META_SET_SIZE;
		if (rc < 0 || mask == 0)
			return rc;
	}
	if (cr && is_kill_priv(v, ino, mask, in))
		cr = NULL;
	return meta_setattr(v->m, cr, ino, mask, in, out);
}

/*
 * setattr_meta, keeping pending atimes of reads right: an explicit atime
 * replaces the pending one (vfs_atime.c); otherwise it is shown.
 */
static int setattr_atime(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
			 uint64_t fh, uint32_t mask, const struct meta_attr *in,
			 struct meta_attr *out)
{
	int rc;

	if (!(mask & (META_SET_ATIME | META_SET_ATIME_NOW))) {
		rc = setattr_meta(v, c, ino, fh, mask, in, out);
		if (rc == 0)
			vfs_atime_overlay(v, out);
		return rc;
	}
	pthread_mutex_lock(&v->atimes.flush_lock);
	vfs_atime_forget_locked(v, ino);
	rc = setattr_meta(v, c, ino, fh, mask, in, out);
	pthread_mutex_unlock(&v->atimes.flush_lock);
	return rc;
}

int vfs_set_flags(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		  uint32_t flags, struct meta_attr *out)
{
	int rc;

	if (vfs_is_virtual(ino))
		return -EPERM;
	if (v->conf.read_only)
		return -EROFS;
	rc = meta_set_flags(v->m, cred_of(c), ino, flags, out);
	return rc == -ENOENT ? -ESTALE : rc;
}

int vfs_setattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		uint64_t fh, uint32_t mask, const struct meta_attr *in,
		struct meta_attr *out)
{
	struct vfs_file *f;
	int rc = 0;

	if (vfs_is_virtual(ino))
		return -EPERM;
	if (v->conf.read_only)
		return -EROFS;
	f = vfs_file_find(v, ino);
	if (!f)
		return setattr_atime(v, c, ino, fh, mask, in, out);
	/*
	 * Commit first: a truncate must cut buffered data too, and a later
	 * commit must not overwrite an explicit mtime.
	 */
	pthread_mutex_lock(&f->lock);
	rc = vfs_file_commit(v, f, false);
	if (rc == 0)
		rc = setattr_atime(v, c, ino, fh, mask, in, out);
	atomic_fetch_add(&f->mgen, 1);
	if (rc == 0 && (mask & META_SET_SIZE)) {
		f->length = out->length;
		vfs_file_invalidate(f);
	}
	pthread_mutex_unlock(&f->lock);
	vfs_file_put(v, f);
	return rc;
}

int vfs_access(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int mask)
{
	if (vfs_is_virtual(ino))
		return (mask & (META_MAY_WRITE | META_MAY_EXEC)) ? -EACCES : 0;
	return meta_access(v->m, cred_of(c), ino, mask);
}

/* Creating in the root under a virtual file's name. */
static int check_create(struct vfs *v, uint64_t parent, const char *name)
{
	uint64_t vino;

	if (v->conf.read_only)
		return -EROFS;
	if (virtual_name(parent, name, &vino))
		return -EEXIST;
	return 0;
}

static int check_remove(struct vfs *v, uint64_t parent, const char *name)
{
	uint64_t vino;

	if (v->conf.read_only)
		return -EROFS;
	if (virtual_name(parent, name, &vino))
		return -EPERM;
	return 0;
}

int vfs_mknod(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, uint64_t rdev,
	      struct meta_attr *out)
{
	int rc = check_create(v, parent, name);

	if (rc < 0)
		return rc;
	return meta_mknod(v->m, cred_of(c), parent, name, mode, rdev, out);
}

int vfs_mkdir(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, struct meta_attr *out)
{
	int rc = check_create(v, parent, name);

	if (rc < 0)
		return rc;
	return meta_mkdir(v->m, cred_of(c), parent, name, mode, out);
}

int vfs_symlink(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
		const char *name, const char *target, struct meta_attr *out)
{
	int rc = check_create(v, parent, name);

	if (rc < 0)
		return rc;
	return meta_symlink(v->m, cred_of(c), parent, name, target, out);
}

ssize_t vfs_readlink(struct vfs *v, uint64_t ino, char *buf, size_t n)
{
	if (vfs_is_virtual(ino))
		return -EINVAL;
	return meta_readlink(v->m, ino, buf, n);
}

int vfs_link(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
	     uint64_t newparent, const char *newname, struct meta_attr *out)
{
	int rc;

	if (vfs_is_virtual(ino))
		return -EPERM;
	rc = check_create(v, newparent, newname);
	if (rc < 0)
		return rc;
	rc = meta_link(v->m, cred_of(c), ino, newparent, newname, out);
	if (rc == 0)
		vfs_file_overlay(v, out);
	return rc;
}

int vfs_unlink(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name)
{
	int rc = check_remove(v, parent, name);

	if (rc < 0)
		return rc;
	return meta_unlink(v->m, cred_of(c), parent, name);
}

int vfs_rmdir(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	      const char *name)
{
	int rc = check_remove(v, parent, name);

	if (rc < 0)
		return rc;
	return meta_rmdir(v->m, cred_of(c), parent, name);
}

int vfs_rename(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, uint64_t newparent, const char *newname,
	       uint32_t flags)
{
	int rc = check_remove(v, parent, name);

	if (rc == 0)
		rc = check_remove(v, newparent, newname);
	if (rc < 0)
		return rc;
	if (flags & ~(uint32_t)(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
		return -EINVAL;
	return meta_rename(v->m, cred_of(c), parent, name, newparent, newname,
			   flags);
}

/* ---- files ---- */

/*
 * The kernel's __FMODE_EXEC open flag: it opens a file for execve (or
 * uselib) itself, which needs execute permission, not read (a 0711
 * program runs for others, as on ext4).
 */
#define VFS_FMODE_EXEC 0x20

static int open_mask(int flags)
{
	int mask = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		mask = (flags & VFS_FMODE_EXEC) ? META_MAY_EXEC : META_MAY_READ;
		break;
	case O_WRONLY:
		mask = META_MAY_WRITE;
		break;
	default:
		mask = META_MAY_READ | META_MAY_WRITE;
		break;
	}
	if (flags & O_TRUNC)
		mask |= META_MAY_WRITE;
	return mask;
}

/*
 * Writes through a write-only descriptor may bypass the page cache
 * (vfs_direct_write): the kernel then sends them without first asking
 * for "security.capability" (file_remove_privs, one getxattr request per
 * write(2)) and without copying them into cached pages; it drops cached
 * pages of the range itself.  Not for files whose writes must drop
 * privileges (set-id bits, file capabilities): only the cached path makes
 * the kernel do that.
 */
#define VFS_CAPS_XATTR "security.capability"

static void set_direct(uint64_t fh, int flags, const struct meta_attr *a,
		       bool caps)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	h->direct_write = (flags & O_ACCMODE) == O_WRONLY && S_ISREG(a->mode) &&
			  !caps && !(a->mode & (S_ISUID | S_ISGID));
}

bool vfs_direct_write(struct vfs *v, uint64_t fh)
{
	struct vfs_handle *h = file_handle(fh);

	UNUSED(v);
	return h && h->direct_write;
}

int vfs_open(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int flags,
	     uint64_t *fh, struct meta_attr *out)
{
	bool wronly = (flags & O_ACCMODE) == O_WRONLY, caps = false;
	struct meta_attr a;
	int rc;

	if (vfs_is_virtual(ino)) {
		if (out)
			virtual_attr(v, ino, out);
		if (ino == VFS_INO_CONTROL)
			return vfs_control_open(v, c, flags, fh);
		if (ino == VFS_INO_ACCESSLOG) {
			/* who may see every request's uid, pid and names */
			if (c && c->cred.uid != 0)
				return -EACCES;
			return vfs_accesslog_open(v, flags, fh);
		}
		return vfs_open_virtual(v, ino, flags, fh);
	}
	if (v->conf.read_only && (open_mask(flags) & META_MAY_WRITE))
		return -EROFS;
	/* one txn: the attributes, and the permission check on them */
	rc = meta_getattr_access(v->m, cred_of(c), ino, open_mask(flags),
				 wronly ? VFS_CAPS_XATTR : NULL, &caps, &a);
	/*
	 * An inode the kernel names but metadata no longer has was deleted
	 * by another mount (or by an unlink here that this open raced): a
	 * stale handle, as NFS says.  Linux then repeats the path walk once
	 * with revalidation, so an open of a name that another mount's
	 * rename replaced finds the new file instead of failing.
	 */
	if (rc == -ENOENT)
		return -ESTALE;
	if ((rc == 0 || rc == -EACCES) && S_ISDIR(a.mode) &&
	    (flags & O_ACCMODE) != O_RDONLY)
		return -EISDIR;
	if (rc == 0)
		rc = meta_check_open_flags(&a, flags); /* chattr +i, +a */
	if (rc < 0)
		return rc;
	rc = vfs_open_checked(v, ino, flags, &a, fh);
	if (rc == 0)
		set_direct(*fh, flags, &a, caps);
	if (rc == 0)
		vfs_open_prefetch(v, *fh, &a);
	if (rc == 0 && out)
		*out = a;
	return rc;
}

int vfs_create(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
	       const char *name, uint32_t mode, int flags, uint64_t *fh,
	       struct meta_attr *out)
{
	struct meta_attr a;
	uint64_t vino;
	int rc;

	if (virtual_name(parent, name, &vino) && !(flags & O_EXCL))
		return vfs_open(v, c, vino, flags, fh, out);
	rc = check_create(v, parent, name);
	if (rc < 0)
		return rc;
	rc = meta_mknod(v->m, cred_of(c), parent, name,
			S_IFREG | (mode & 07777), 0, &a);
	if (rc == -EEXIST && !(flags & O_EXCL)) {
		/* lost a race with another creator: open what is there */
		rc = meta_lookup(v->m, cred_of(c), parent, name, &a);
		if (rc < 0)
			return rc;
		if (S_ISDIR(a.mode))
			return -EISDIR;
		return vfs_open(v, c, a.ino, flags, fh, out);
	}
	if (rc < 0)
		return rc;
	/* a new file is writable through this descriptor whatever its mode */
	rc = vfs_open_checked(v, a.ino, flags & ~O_TRUNC, &a, fh);
	if (rc == 0)
		set_direct(*fh, flags, &a, false); /* new: no xattrs */
	if (rc == 0 && out)
		*out = a;
	return rc;
}

int vfs_tmpfile(struct vfs *v, const struct vfs_ctx *c, uint64_t parent,
		uint32_t mode, int flags, uint64_t *fh, struct meta_attr *out)
{
	struct meta_attr a;
	int rc;

	if (v->conf.read_only)
		return -EROFS;
	if (vfs_is_virtual(parent))
		return -ENOTDIR;
	rc = meta_tmpfile(v->m, cred_of(c), parent, mode, !(flags & O_EXCL),
			  &a);
	if (rc < 0)
		return rc;
	flags &= ~(O_TMPFILE | O_CREAT | O_EXCL | O_TRUNC);
	rc = vfs_open_checked(v, a.ino, flags, &a, fh);
	if (rc == 0)
		set_direct(*fh, flags, &a, false); /* new: no xattrs */
	meta_close_file(v->m, a.ino); /* meta_tmpfile's hold; ours stays */
	if (rc == 0 && out)
		*out = a;
	return rc;
}

/* ---- directories ---- */

int vfs_opendir(struct vfs *v, const struct vfs_ctx *c, uint64_t ino, int flags,
		uint64_t *fh)
{
	struct vfs_handle *h;
	struct meta_attr a;
	int rc;

	rc = meta_getattr_access(v->m, cred_of(c), ino, META_MAY_READ, NULL,
				 NULL, &a);
	if ((rc == 0 || rc == -EACCES) && !S_ISDIR(a.mode))
		return -ENOTDIR;
	if (rc < 0)
		return rc;
	rc = vfs_handle_new(v, VFS_H_DIR, ino, flags, &h);
	if (rc == 0) {
		h->atime_ns = a.atime_ns;
		h->mtime_ns = a.mtime_ns;
		h->ctime_ns = a.ctime_ns;
		*fh = (uint64_t)(uintptr_t)h;
	}
	return rc;
}

/* Listing a directory reads it: its atime moves as a file's does. */
static void dir_atime(struct vfs *v, struct vfs_handle *h)
{
	struct meta_attr a;

	if (v->conf.read_only || v->conf.atime == VFS_NOATIME ||
	    v->conf.nodiratime || vfs_is_virtual(h->ino))
		return;
	if (v->conf.atime != VFS_STRICTATIME &&
	    atomic_exchange(&h->atime_done, true))
		return;
	memset(&a, 0, sizeof(a));
	a.ino = h->ino;
	a.atime_ns = h->atime_ns;
	a.mtime_ns = h->mtime_ns;
	a.ctime_ns = h->ctime_ns;
	vfs_atime_touch(v, &a, vfs_now_ns());
}

struct readdir_arg {
	struct vfs *v;
	vfs_dirent_fn fn;
	void *arg;
	bool root;
};

static int readdir_cb(void *arg, const struct meta_dirent *d)
{
	struct readdir_arg *ra = arg;
	struct vfs_dirent e;
	struct meta_attr a;
	uint64_t vino;

	if (ra->root && virtual_name(TESSERA_ROOT_INO, d->name, &vino))
		return 0; /* a real file shadowed by a virtual one */
	e.name = d->name;
	e.ino = d->ino;
	e.type = d->type;
	e.next = d->next;
	e.attr = d->attr;
	if (d->attr && S_ISREG(d->attr->mode)) {
		/* the kernel takes these attributes: show pending writes */
		a = *d->attr;
		vfs_file_overlay(ra->v, &a);
		e.attr = &a;
	}
	return ra->fn(ra->arg, &e);
}

int vfs_readdir(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		uint64_t fh, uint64_t off, bool plus, vfs_dirent_fn fn,
		void *arg)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;
	struct readdir_arg ra = {v, fn, arg, ino == TESSERA_ROOT_INO};

	/* permission was checked by opendir, as Linux does */
	UNUSED(c);
	if (!h || h->magic != VFS_HANDLE_MAGIC || h->kind != VFS_H_DIR ||
	    h->ino != ino)
		return -EBADF;
	if (off == 0)
		dir_atime(v, h);
	return meta_readdir(v->m, NULL, ino, off, plus ? META_READDIR_PLUS : 0,
			    readdir_cb, &ra);
}

int vfs_releasedir(struct vfs *v, uint64_t ino, uint64_t fh)
{
	struct vfs_handle *h = (struct vfs_handle *)(uintptr_t)fh;

	UNUSED(ino);
	if (!h || h->magic != VFS_HANDLE_MAGIC || h->kind != VFS_H_DIR)
		return -EBADF;
	vfs_handle_free(v, h);
	return 0;
}

int vfs_fsyncdir(struct vfs *v, uint64_t ino, uint64_t fh, bool datasync)
{
	UNUSED(ino);
	UNUSED(fh);
	UNUSED(datasync);
	return meta_sync(v->m);
}

/* ---- misc ---- */

int vfs_statfs(struct vfs *v, uint64_t ino, struct statvfs *out)
{
	struct meta_statfs s;
	const uint64_t bs = 4096;
	int rc;

	UNUSED(ino);
	rc = meta_statfs(v->m, &s);
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->f_bsize = bs;
	out->f_frsize = bs;
	out->f_blocks = s.total_space / bs;
	out->f_bfree = s.avail_space / bs;
	out->f_bavail = s.avail_space / bs;
	out->f_files = s.used_inodes + s.avail_inodes;
	out->f_ffree = s.avail_inodes;
	out->f_favail = s.avail_inodes;
	out->f_namemax = TESSERA_NAME_MAX;
	if (v->conf.read_only)
		out->f_flag |= ST_RDONLY;
	return 0;
}

ssize_t vfs_getxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		     const char *name, void *buf, size_t n)
{
	if (vfs_is_virtual(ino))
		return -ENODATA;
	return meta_getxattr(v->m, cred_of(c), ino, name, buf, n);
}

int vfs_setxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		 const char *name, const void *val, size_t len, int flags)
{
	if (vfs_is_virtual(ino))
		return -EPERM;
	if (v->conf.read_only)
		return -EROFS;
	return meta_setxattr(v->m, cred_of(c), ino, name, val, len, flags);
}

ssize_t vfs_listxattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		      char *buf, size_t n)
{
	if (vfs_is_virtual(ino))
		return 0;
	return meta_listxattr(v->m, cred_of(c), ino, buf, n);
}

int vfs_removexattr(struct vfs *v, const struct vfs_ctx *c, uint64_t ino,
		    const char *name)
{
	if (vfs_is_virtual(ino))
		return -EPERM;
	if (v->conf.read_only)
		return -EROFS;
	return meta_removexattr(v->m, cred_of(c), ino, name);
}
