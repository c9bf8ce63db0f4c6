/*
 * fuse.c - libfuse3 low-level operations mapped onto vfs_* calls.
 *
 * Nothing here knows files or metadata: each op builds the caller's
 * credentials (struct vfs_ctx), converts arguments, calls one vfs_ function
 * and marshals the reply.  Errors come back from vfs/ as -errno and go to
 * the kernel as fuse_reply_err(req, -rc): the only sign flip of the mount.
 *
 * Every entry the kernel is given (entry replies, create, readdirplus
 * entries but "." and "..") is counted with vfs_ref before the reply goes
 * out, and given back with vfs_forget if the reply fails, so the per-inode
 * counts match the kernel's lookup counts that FORGET decrements.
 *
 * Supplementary groups are read (fuse_req_getgroups parses /proc) only for
 * callers other than root, whose checks never need them.  A blocking lock
 * request polls fuse_req_interrupted through vfs_ctx.interrupted.
 *
 * Close-to-open across mounts: open keeps the page cache only when the
 * file is unchanged since the last open here (vfs_keep_cache), and when
 * the attributes open read from metadata differ from what the kernel was
 * last given for that inode (a small direct-mapped memo of mtime, ctime
 * and length, filled wherever attributes are replied), the kernel's
 * cached attributes are dropped before the open is answered, so the size
 * another mount committed is seen at once, not after the attribute
 * timeout.
 */
#define FUSE_USE_VERSION 314
#include "util/common.h"
#include "fuse/fsop.h"
#include "fuse/fuse_int.h"
#include "util/log.h"
#include "vfs/vfs.h"

#include <fcntl.h>
#include <fuse_log.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Every error reply is recorded for the access log (fuse_int.h). */
static int reply_err_logged(fuse_req_t req, int err)
{
	fsop_reply_errno = err;
	return fuse_reply_err(req, err);
}
#define fuse_reply_err(req, err) reply_err_logged(req, err)

#define FSOP_MAX_GROUPS 64
#define FSOP_MEMO_N 65536 /* power of two */
#define FSOP_MEMO_LOCKS 64

/* What the kernel was last told about a regular file. */
struct fsop_memo {
	uint64_t ino; /* 0: empty */
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t length;
};

struct fsop {
	struct vfs *v;
	struct fuse_session *se;
	struct fsop_conf conf;
	char *mountpoint;
	bool mounted;
	bool signals;
	struct fsop_memo *memo; /* entry i guarded by memo_lock[i % N] */
	pthread_mutex_t memo_lock[FSOP_MEMO_LOCKS];
};

/* Per-request credentials with storage for the group list. */
struct fsop_req {
	struct vfs_ctx c;
	uint32_t groups[FSOP_MAX_GROUPS];
};

static struct fsop *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool req_interrupted(void *arg)
{
	return fuse_req_interrupted((fuse_req_t)arg) != 0;
}

static void mkctx(fuse_req_t req, struct fsop_req *r)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);

	memset(&r->c, 0, sizeof(r->c));
	r->c.cred.uid = fc->uid;
	r->c.cred.gid = fc->gid;
	r->c.cred.pid = (uint32_t)fc->pid;
	r->c.cred.umask = fc->umask;
	r->c.cred.groups = r->groups;
	if (fc->uid != 0) {
		gid_t g[FSOP_MAX_GROUPS];
		int n = fuse_req_getgroups(req, FSOP_MAX_GROUPS, g);

		n = n < 0 ? 0 : MIN(n, FSOP_MAX_GROUPS);
		for (int i = 0; i < n; i++)
			r->groups[i] = g[i];
		r->c.cred.ngroups = (uint32_t)n;
	}
	r->c.interrupted = req_interrupted;
	r->c.arg = req;
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000LL);
	ts->tv_nsec = (long)(ns % 1000000000LL);
	if (ts->tv_nsec < 0) {
		ts->tv_sec--;
		ts->tv_nsec += 1000000000L;
	}
}

static int64_t ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void to_stat(const struct meta_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->length;
	st->st_blksize = 4096;
	/* regular files: what holds data (holes excluded), as ext4 counts */
	st->st_blocks = (blkcnt_t)(((S_ISREG(a->mode) ? a->alloc : a->length) +
				    511) /
				   512);
	ns_to_ts(a->atime_ns, &st->st_atim);
	ns_to_ts(a->mtime_ns, &st->st_mtim);
	ns_to_ts(a->ctime_ns, &st->st_ctim);
}

/* ---- close-to-open memo ---- */

static size_t memo_slot(uint64_t ino)
{
	return (size_t)(ino * 0x9E3779B97F4A7C15ULL >> 48) & (FSOP_MEMO_N - 1);
}

/*
 * Record @a as the kernel's view; with @check, first say whether it
 * differs from the recorded one (an unknown inode counts as changed).
 */
static bool memo_update(struct fsop *fs, const struct meta_attr *a,
			bool check)
{
	size_t i = memo_slot(a->ino);
	pthread_mutex_t *l = &fs->memo_lock[i % FSOP_MEMO_LOCKS];
	struct fsop_memo *e = &fs->memo[i];
	bool changed;

	pthread_mutex_lock(l);
	changed = e->ino != a->ino || e->mtime_ns != a->mtime_ns ||
		  e->ctime_ns != a->ctime_ns || e->length != a->length;
	e->ino = a->ino;
	e->mtime_ns = a->mtime_ns;
	e->ctime_ns = a->ctime_ns;
	e->length = a->length;
	pthread_mutex_unlock(l);
	return check && changed;
}

static void memo_note(struct fsop *fs, const struct meta_attr *a)
{
	if (fs->memo && S_ISREG(a->mode))
		memo_update(fs, a, false);
}

static void fill_entry(struct fsop *fs, const struct meta_attr *a,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 1;
	to_stat(a, &e->attr);
	e->attr_timeout = fs->conf.attr_timeout;
	e->entry_timeout = fs->conf.entry_timeout;
	memo_note(fs, a);
}

static void reply_entry(fuse_req_t req, int rc, const struct meta_attr *a)
{
	struct fuse_entry_param e;

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs_of(req), a, &e);
	/* the kernel's reference counts before it can be forgotten */
	vfs_ref(fs_of(req)->v, a->ino, 1);
	if (fuse_reply_entry(req, &e) < 0)
		vfs_forget(fs_of(req)->v, a->ino, 1);
}

static void reply_attr(fuse_req_t req, int rc, const struct meta_attr *a)
{
	struct stat st;

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	to_stat(a, &st);
	memo_note(fs_of(req), a);
	fuse_reply_attr(req, &st, fs_of(req)->conf.attr_timeout);
}

/* ---- lifecycle ops ---- */

static void fsop_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fsop *fs = userdata;
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_POSIX_LOCKS |
			FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_READDIRPLUS | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_IOCTL_DIR;

	/* POSIX ACLs: the kernel checks them (default_permissions) and
	 * leaves the umask to us (DONT_MASK): a new inode under a default
	 * ACL takes that instead (meta/acl.c) */
	if (!fs->conf.no_acl)
		want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	conn->want |= want & conn->capable;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1 * MiB;
	conn->max_readahead = MIN(conn->max_readahead, 1 * MiB);
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	log_info("mounted '%s' (kernel protocol %u.%u)", fs->mountpoint,
		 conn->proto_major, conn->proto_minor);
}

static void fsop_destroy(void *userdata)
{
	struct fsop *fs = userdata;
	int rc = vfs_flush_all(fs->v);

	if (rc < 0)
		log_error("cannot flush at unmount: %s", strerror(-rc));
}

/* ---- namespace ---- */

static void fsop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsop_req r;
	struct meta_attr a;
	int rc;

	mkctx(req, &r);
	rc = vfs_lookup(fs_of(req)->v, &r.c, parent, name, &a);
	reply_entry(req, rc, &a);
}

static void fsop_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	vfs_forget(fs_of(req)->v, ino, nlookup);
	fuse_reply_none(req);
}

static void fsop_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		vfs_forget(fs_of(req)->v, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fsop_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct meta_attr a;
	int rc;

	UNUSED(fi);
	rc = vfs_getattr(fs_of(req)->v, ino, &a);
	reply_attr(req, rc, &a);
}

static void fsop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int to_set, struct fuse_file_info *fi)
{
	struct fsop_req r;
	struct meta_attr in, out;
	uint32_t mask = 0;
	int rc;

	memset(&in, 0, sizeof(in));
	if (to_set & FUSE_SET_ATTR_MODE) {
		mask |= META_SET_MODE;
		in.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		mask |= META_SET_UID;
		in.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		mask |= META_SET_GID;
		in.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		mask |= META_SET_SIZE;
		in.length = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		mask |= META_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		mask |= META_SET_ATIME;
		in.atime_ns = ts_to_ns(&attr->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		mask |= META_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		mask |= META_SET_MTIME;
		in.mtime_ns = ts_to_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		mask |= META_SET_CTIME;
		in.ctime_ns = ts_to_ns(&attr->st_ctim);
	}
	mkctx(req, &r);
	rc = vfs_setattr(fs_of(req)->v, &r.c, ino, fi ? fi->fh : 0, mask, &in,
			 &out);
	reply_attr(req, rc, &out);
}

static void fsop_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = vfs_readlink(fs_of(req)->v, ino, buf, sizeof(buf));

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_readlink(req, buf);
}

static void fsop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	struct fsop_req r;
	struct meta_attr a;
	int rc;

	mkctx(req, &r);
	rc = vfs_mknod(fs_of(req)->v, &r.c, parent, name, mode, rdev, &a);
	reply_entry(req, rc, &a);
}

static void fsop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	struct fsop_req r;
	struct meta_attr a;
	int rc;

	mkctx(req, &r);
	rc = vfs_mkdir(fs_of(req)->v, &r.c, parent, name, mode & 07777, &a);
	reply_entry(req, rc, &a);
}

static void fsop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsop_req r;

	mkctx(req, &r);
	fuse_reply_err(req, -vfs_unlink(fs_of(req)->v, &r.c, parent, name));
}

static void fsop_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsop_req r;

	mkctx(req, &r);
	fuse_reply_err(req, -vfs_rmdir(fs_of(req)->v, &r.c, parent, name));
}

static void fsop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	struct fsop_req r;
	struct meta_attr a;
	int rc;

	mkctx(req, &r);
	rc = vfs_symlink(fs_of(req)->v, &r.c, parent, name, link, &a);
	reply_entry(req, rc, &a);
}

static void fsop_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	struct fsop_req r;
	uint32_t f = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= META_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= META_RENAME_EXCHANGE;
	mkctx(req, &r);
	fuse_reply_err(req, -vfs_rename(fs_of(req)->v, &r.c, parent, name,
					newparent, newname, f));
}

static void fsop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		      const char *newname)
{
	struct fsop_req r;
	struct meta_attr a;
	int rc;

	mkctx(req, &r);
	rc = vfs_link(fs_of(req)->v, &r.c, ino, newparent, newname, &a);
	reply_entry(req, rc, &a);
}

/* ---- files ---- */

static void fsop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsop *fs = fs_of(req);
	struct fsop_req r;
	struct meta_attr a;
	uint64_t fh;
	int rc;

	mkctx(req, &r);
	rc = vfs_open(fs->v, &r.c, ino, fi->flags, &fh, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* close-to-open: drop stale attributes before the open returns */
	if (fs->memo && S_ISREG(a.mode) && !vfs_is_virtual(ino) &&
	    fs->conf.attr_timeout > 0 && memo_update(fs, &a, true))
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
	fi->fh = fh;
	fi->direct_io =
		vfs_is_virtual(ino) || vfs_direct_write(fs_of(req)->v, fh);
	fi->keep_cache = vfs_keep_cache(fs_of(req)->v, fh);
	if (fuse_reply_open(req, fi) == -ENOENT)
		vfs_release(fs_of(req)->v, ino, fh, 0); /* interrupted */
}

static void fsop_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	struct fsop_req r;
	struct fuse_entry_param e;
	struct meta_attr a;
	uint64_t fh;
	int rc;

	mkctx(req, &r);
	if (strcmp(name, FSOP_TMPFILE_NAME) == 0) /* FUSE_TMPFILE (loop.c) */
		rc = vfs_tmpfile(fs_of(req)->v, &r.c, parent, mode, fi->flags,
				 &fh, &a);
	else
		rc = vfs_create(fs_of(req)->v, &r.c, parent, name, mode,
				fi->flags, &fh, &a);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = fh;
	fi->direct_io =
		vfs_is_virtual(a.ino) || vfs_direct_write(fs_of(req)->v, fh);
	fill_entry(fs_of(req), &a, &e);
	vfs_ref(fs_of(req)->v, a.ino, 1);
	if (fuse_reply_create(req, &e, fi) < 0) {
		vfs_release(fs_of(req)->v, a.ino, fh, 0);
		vfs_forget(fs_of(req)->v, a.ino, 1);
	}
}

static void fsop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = vfs_read(fs_of(req)->v, ino, fi->fh, (uint64_t)off, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void fsop_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	ssize_t n =
		vfs_write(fs_of(req)->v, ino, fi->fh, (uint64_t)off, buf, size);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void fsop_flush(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req,
		       -vfs_flush(fs_of(req)->v, ino, fi->fh, fi->lock_owner));
}

static void fsop_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	int rc = vfs_release(fs_of(req)->v, ino, fi->fh,
			     fi->flock_release ? fi->lock_owner : 0);

	if (rc < 0)
		log_warn("release of inode %llu: %s", (unsigned long long)ino,
			 strerror(-rc));
	fuse_reply_err(req, 0);
}

static void fsop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	fsop_loop_may_block();
	fuse_reply_err(req,
		       -vfs_fsync(fs_of(req)->v, ino, fi->fh, datasync != 0));
}

static void fsop_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			   off_t offset, off_t length,
			   struct fuse_file_info *fi)
{
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -vfs_fallocate(fs_of(req)->v, ino, fi->fh, mode,
					   (uint64_t)offset, (uint64_t)length));
}

/*
 * chattr / lsattr: FS_IOC_GETFLAGS and FS_IOC_SETFLAGS.  Linux 5.13+ sends
 * them from its fileattr code with an int (4 bytes); older kernels pass
 * the ioctl through with _IOC_SIZE, a long (8).  The flags are the low 32
 * bits either way (little or big endian: read and write as the int the
 * size says).  FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR carry the same two
 * flags.  Every other ioctl: ENOTTY, as a file system without it.
 */
static uint32_t ioctl_get_u32(const void *in, size_t n)
{
	uint32_t v32 = 0;
	uint64_t v64 = 0;

	if (n >= sizeof(v64)) {
		memcpy(&v64, in, sizeof(v64));
		return (uint32_t)v64;
	}
	if (n >= sizeof(v32))
		memcpy(&v32, in, sizeof(v32));
	return v32;
}

static void ioctl_reply_u32(fuse_req_t req, uint32_t v, size_t n)
{
	uint64_t v64 = v;
	uint32_t v32 = v;

	if (n >= sizeof(v64))
		fuse_reply_ioctl(req, 0, &v64, sizeof(v64));
	else if (n >= sizeof(v32))
		fuse_reply_ioctl(req, 0, &v32, sizeof(v32));
	else
		fuse_reply_err(req, EINVAL);
}

/* FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR (Linux asks the former before
 * every FS_IOC_SETFLAGS): the same two flags as FS_XFLAG_* bits. */
static uint32_t xflags_of(uint32_t flags)
{
	return ((flags & META_FL_IMMUTABLE) ? FS_XFLAG_IMMUTABLE : 0) |
	       ((flags & META_FL_APPEND) ? FS_XFLAG_APPEND : 0);
}

static int flags_of_xattr(const struct fsxattr *x, uint32_t *flags)
{
	if (x->fsx_xflags & ~(uint32_t)(FS_XFLAG_IMMUTABLE | FS_XFLAG_APPEND))
		return -EOPNOTSUPP;
	*flags = 0;
	if (x->fsx_xflags & FS_XFLAG_IMMUTABLE)
		*flags |= META_FL_IMMUTABLE;
	if (x->fsx_xflags & FS_XFLAG_APPEND)
		*flags |= META_FL_APPEND;
	return 0;
}

static void ioctl_get(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		      size_t out_bufsz)
{
	struct meta_attr a;
	struct fsxattr x;
	int rc = vfs_getattr(fs_of(req)->v, ino, &a);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else if (cmd == (unsigned int)FS_IOC_GETFLAGS) {
		ioctl_reply_u32(req, a.flags & META_FL_USER, out_bufsz);
	} else if (out_bufsz < sizeof(x)) {
		fuse_reply_err(req, EINVAL);
	} else {
		memset(&x, 0, sizeof(x));
		x.fsx_xflags = xflags_of(a.flags);
		fuse_reply_ioctl(req, 0, &x, sizeof(x));
	}
}

static void fsop_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		       void *arg, struct fuse_file_info *fi, unsigned flags,
		       const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct fsop_req r;
	struct meta_attr a;
	struct fsxattr x;
	uint32_t fl = 0;
	int rc = 0;

	UNUSED(arg);
	UNUSED(fi);
	UNUSED(flags);
	if (cmd == (unsigned int)FS_IOC_GETFLAGS ||
	    cmd == (unsigned int)FS_IOC_FSGETXATTR) {
		ioctl_get(req, ino, cmd, out_bufsz);
		return;
	}
	if (cmd == (unsigned int)FS_IOC_SETFLAGS &&
	    in_bufsz >= sizeof(uint32_t)) {
		fl = ioctl_get_u32(in_buf, in_bufsz);
	} else if (cmd == (unsigned int)FS_IOC_FSSETXATTR &&
		   in_bufsz >= sizeof(x)) {
		memcpy(&x, in_buf, sizeof(x));
		rc = flags_of_xattr(&x, &fl);
	} else if (cmd == (unsigned int)FS_IOC_SETFLAGS ||
		   cmd == (unsigned int)FS_IOC_FSSETXATTR) {
		rc = -EINVAL;
	} else {
		rc = -ENOTTY;
	}
	if (rc == 0) {
		mkctx(req, &r);
		rc = vfs_set_flags(fs_of(req)->v, &r.c, ino, fl, &a);
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

static void fsop_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	uint64_t out;
	int rc;

	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	rc = vfs_lseek(fs_of(req)->v, ino, fi->fh, (uint64_t)off, whence, &out);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_lseek(req, (off_t)out);
}

static void fsop_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				 off_t off_in, struct fuse_file_info *fi_in,
				 fuse_ino_t ino_out, off_t off_out,
				 struct fuse_file_info *fi_out, size_t len,
				 int flags)
{
	ssize_t n;

	if (flags != 0 || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = vfs_copy_file_range(fs_of(req)->v, ino_in, fi_in->fh,
				(uint64_t)off_in, ino_out, fi_out->fh,
				(uint64_t)off_out, len);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* ---- locks ---- */

static void flock_to_vfs(const struct flock *fl, struct vfs_lock *lk)
{
	lk->type = fl->l_type;
	lk->start = (uint64_t)fl->l_start;
	lk->end = fl->l_len == 0 ? UINT64_MAX
				 : (uint64_t)(fl->l_start + fl->l_len - 1);
	lk->pid = (uint32_t)fl->l_pid;
}

static void fsop_getlk(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi, struct flock *lock)
{
	struct vfs_lock lk;
	int rc;

	flock_to_vfs(lock, &lk);
	rc = vfs_getlk(fs_of(req)->v, ino, fi->lock_owner, &lk);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	lock->l_type = (short)lk.type;
	if (lk.type != F_UNLCK) {
		lock->l_whence = SEEK_SET;
		lock->l_start = (off_t)lk.start;
		lock->l_len = lk.end == UINT64_MAX
				      ? 0
				      : (off_t)(lk.end - lk.start + 1);
		lock->l_pid = (pid_t)lk.pid;
	}
	fuse_reply_lock(req, lock);
}

static void fsop_setlk(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	struct fsop_req r;
	struct vfs_lock lk;

	mkctx(req, &r);
	flock_to_vfs(lock, &lk);
	if (sleep)
		fsop_loop_may_block();
	fuse_reply_err(req, -vfs_setlk(fs_of(req)->v, &r.c, ino, fi->lock_owner,
				       &lk, sleep != 0));
}

static void fsop_flock(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi, int op)
{
	struct fsop_req r;

	mkctx(req, &r);
	if (!(op & LOCK_NB))
		fsop_loop_may_block();
	fuse_reply_err(
		req, -vfs_flock(fs_of(req)->v, &r.c, ino, fi->lock_owner, op));
}

/* ---- directories ---- */

static void fsop_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fsop_req r;
	uint64_t fh;
	int rc;

	mkctx(req, &r);
	rc = vfs_opendir(fs_of(req)->v, &r.c, ino, fi->flags, &fh);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = fh;
	if (fuse_reply_open(req, fi) == -ENOENT)
		vfs_releasedir(fs_of(req)->v, ino, fh);
}

struct dirbuf {
	fuse_req_t req;
	struct fsop *fs;
	char *buf;
	size_t size;
	size_t len;
	bool plus;
	uint64_t *refs; /* readdirplus: inodes given to the kernel */
	size_t nrefs, refs_cap;
};

/*
 * The kernel takes a reference to every readdirplus entry but "." and
 * ".." (it forgets those it cannot use itself); count it before the reply
 * and remember it, to undo if the reply fails.  1: no memory, stop here.
 */
static int dir_ref(struct dirbuf *b, const char *name, uint64_t ino)
{
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	if (b->nrefs == b->refs_cap) {
		size_t cap = b->refs_cap ? 2 * b->refs_cap : 64;
		uint64_t *r = realloc(b->refs, cap * sizeof(*r));

		if (!r)
			return 1;
		b->refs = r;
		b->refs_cap = cap;
	}
	b->refs[b->nrefs++] = ino;
	vfs_ref(b->fs->v, ino, 1);
	return 0;
}

static int dir_add(void *arg, const struct vfs_dirent *d)
{
	struct dirbuf *b = arg;
	size_t n, room = b->size - b->len;

	if (b->plus) {
		struct fuse_entry_param e;
		struct meta_attr a;

		if (d->attr) {
			fill_entry(b->fs, d->attr, &e);
		} else {
			memset(&a, 0, sizeof(a));
			a.ino = d->ino;
			a.mode = d->type;
			fill_entry(b->fs, &a, &e);
			e.attr_timeout = 0;
			e.entry_timeout = 0;
		}
		n = fuse_add_direntry_plus(b->req, b->buf + b->len, room,
					   d->name, &e, (off_t)d->next);
		if (n <= room && dir_ref(b, d->name, d->ino))
			return 1;
	} else {
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = d->ino;
		st.st_mode = d->type;
		n = fuse_add_direntry(b->req, b->buf + b->len, room, d->name,
				      &st, (off_t)d->next);
	}
	if (n > room)
		return 1;
	b->len += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fsop_req r;
	struct dirbuf b = {req, fs_of(req), NULL, size, 0, plus, NULL, 0, 0};
	int rc;

	b.buf = malloc(size ? size : 1);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mkctx(req, &r);
	rc = vfs_readdir(b.fs->v, &r.c, ino, fi->fh, (uint64_t)off, plus,
			 dir_add, &b);
	if (rc < 0 && b.len == 0) {
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_buf(req, b.buf, b.len) < 0) {
		for (size_t i = 0; i < b.nrefs; i++)
			vfs_forget(b.fs->v, b.refs[i], 1);
	}
	free(b.refs);
	free(b.buf);
}

static void fsop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void fsop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void fsop_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	vfs_releasedir(fs_of(req)->v, ino, fi->fh);
	fuse_reply_err(req, 0);
}

static void fsop_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			  struct fuse_file_info *fi)
{
	fuse_reply_err(
		req, -vfs_fsyncdir(fs_of(req)->v, ino, fi->fh, datasync != 0));
}

/* ---- misc ---- */

static void fsop_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int rc = vfs_statfs(fs_of(req)->v, ino, &st);

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &st);
}

static void fsop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	struct fsop_req r;

	mkctx(req, &r);
	fuse_reply_err(req, -vfs_setxattr(fs_of(req)->v, &r.c, ino, name, value,
					  size, flags));
}

static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void fsop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	struct fsop_req r;
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mkctx(req, &r);
	n = vfs_getxattr(fs_of(req)->v, &r.c, ino, name, buf, size);
	reply_xattr(req, n, buf, size);
	free(buf);
}

static void fsop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fsop_req r;
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mkctx(req, &r);
	n = vfs_listxattr(fs_of(req)->v, &r.c, ino, buf, size);
	reply_xattr(req, n, buf, size);
	free(buf);
}

static void fsop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fsop_req r;

	mkctx(req, &r);
	fuse_reply_err(req, -vfs_removexattr(fs_of(req)->v, &r.c, ino, name));
}

static void fsop_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fsop_req r;

	mkctx(req, &r);
	fuse_reply_err(req, -vfs_access(fs_of(req)->v, &r.c, ino, mask));
}

static const struct fuse_lowlevel_ops fsop_ops = {
	.init = fsop_init,
	.destroy = fsop_destroy,
	.lookup = fsop_lookup,
	.forget = fsop_forget,
	.forget_multi = fsop_forget_multi,
	.getattr = fsop_getattr,
	.setattr = fsop_setattr,
	.readlink = fsop_readlink,
	.mknod = fsop_mknod,
	.mkdir = fsop_mkdir,
	.unlink = fsop_unlink,
	.rmdir = fsop_rmdir,
	.symlink = fsop_symlink,
	.rename = fsop_rename,
	.link = fsop_link,
	.open = fsop_open,
	.create = fsop_create,
	.read = fsop_read,
	.write = fsop_write,
	.flush = fsop_flush,
	.release = fsop_release,
	.fsync = fsop_fsync,
	.fallocate = fsop_fallocate,
	.ioctl = fsop_ioctl,
	.lseek = fsop_lseek,
	.copy_file_range = fsop_copy_file_range,
	.getlk = fsop_getlk,
	.setlk = fsop_setlk,
	.flock = fsop_flock,
	.opendir = fsop_opendir,
	.readdir = fsop_readdir,
	.readdirplus = fsop_readdirplus,
	.releasedir = fsop_releasedir,
	.fsyncdir = fsop_fsyncdir,
	.statfs = fsop_statfs,
	.setxattr = fsop_setxattr,
	.getxattr = fsop_getxattr,
	.listxattr = fsop_listxattr,
	.removexattr = fsop_removexattr,
	.access = fsop_access,
};

/* ---- session ---- */

/*
 * libfuse's own messages: DEBUG in our log; the last error is kept so that
 * a failed mount is reported in one line of ours with libfuse's reason.
 * libfuse may write one line in pieces ("unknown option(s): `-o " then
 * "bogus'\n"): a piece without a newline is continued by the next one.
 */
static pthread_mutex_t fsop_err_lock = PTHREAD_MUTEX_INITIALIZER;
static char fsop_last_err[256]; /* guarded by fsop_err_lock */
static bool fsop_err_open;	/* guarded by fsop_err_lock */

static void fsop_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;
	bool open;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	open = n == 0 || msg[n - 1] != '\n';
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		msg[--n] = '\0';
	if (level <= FUSE_LOG_ERR) {
		size_t have;

		pthread_mutex_lock(&fsop_err_lock);
		have = fsop_err_open ? strlen(fsop_last_err) : 0;
		snprintf(fsop_last_err + have, sizeof(fsop_last_err) - have,
			 "%s", msg);
		fsop_err_open = open;
		pthread_mutex_unlock(&fsop_err_lock);
	}
	log_debug("libfuse: %s", msg);
}

static void last_err(char *out, size_t n)
{
	pthread_mutex_lock(&fsop_err_lock);
	snprintf(out, n, "%s", fsop_last_err[0] ? fsop_last_err : "unknown");
	fsop_last_err[0] = '\0';
	fsop_err_open = false;
	pthread_mutex_unlock(&fsop_err_lock);
}

static int build_args(const struct fsop_conf *conf, struct fuse_args *args)
{
	char opts[4096];
	int n;

	n = snprintf(opts, sizeof(opts),
		     "fsname=%s,subtype=tessera,default_permissions%s%s%s",
		     conf->fsname ? conf->fsname : "tessera",
		     conf->read_only ? ",ro" : "",
		     conf->options && *conf->options ? "," : "",
		     conf->options ? conf->options : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return -EINVAL;
	if (fuse_opt_add_arg(args, "tessera") < 0 ||
	    fuse_opt_add_arg(args, "-o") < 0 ||
	    fuse_opt_add_arg(args, opts) < 0 ||
	    (conf->debug && fuse_opt_add_arg(args, "-d") < 0))
		return -ENOMEM;
	return 0;
}

int fsop_mount(struct vfs *v, const char *mountpoint,
	       const struct fsop_conf *conf, struct fsop **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fsop *fs;
	char why[256];
	int rc;

	fuse_set_log_func(fsop_log);
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->v = v;
	fsop_alog_vfs = v;
	fs->conf = *conf;
	fs->memo = calloc(FSOP_MEMO_N, sizeof(*fs->memo));
	for (int i = 0; i < FSOP_MEMO_LOCKS; i++)
		pthread_mutex_init(&fs->memo_lock[i], NULL);
	fs->conf.fsname = NULL;
	fs->conf.options = NULL;
	fs->mountpoint = strdup(mountpoint);
	rc = fs->mountpoint ? build_args(conf, &args) : -ENOMEM;
	if (rc < 0)
		goto fail;
	fs->se = fuse_session_new(&args, &fsop_ops, sizeof(fsop_ops), fs);
	if (!fs->se) {
		rc = -EINVAL;
		last_err(why, sizeof(why));
		log_error("cannot mount '%s' with options '%s': %s", mountpoint,
			  conf->options ? conf->options : "", why);
		goto fail;
	}
	if (fuse_set_signal_handlers(fs->se) == 0)
		fs->signals = true;
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		rc = -EIO;
		last_err(why, sizeof(why));
		log_error("cannot mount '%s': %s", mountpoint, why);
		goto fail;
	}
	fs->mounted = true;
	if (!conf->no_uring && !conf->debug && fsop_uring_available()) {
		rc = fsop_uring_attach(fs->se);
		if (rc < 0)
			log_warn("FUSE over io_uring: %s: using /dev/fuse",
				 strerror(-rc));
		rc = 0;
	}
	fuse_opt_free_args(&args);
	*out = fs;
	return 0;
fail:
	fuse_opt_free_args(&args);
	fsop_free(fs);
	return rc;
}

int fsop_run(struct fsop *fs)
{
	int rc = fsop_loop_run(
		fs->se, fs->conf.max_threads > 0 ? fs->conf.max_threads : 64);

	fsop_uring_stop();
	return rc;
}

void fsop_free(struct fsop *fs)
{
	if (!fs)
		return;
	if (fs->se) {
		if (fs->signals)
			fuse_remove_signal_handlers(fs->se);
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	for (int i = 0; i < FSOP_MEMO_LOCKS; i++)
		pthread_mutex_destroy(&fs->memo_lock[i]);
	free(fs->memo);
	free(fs->mountpoint);
	free(fs);
}
