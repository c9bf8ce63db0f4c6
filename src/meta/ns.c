/*
 * ns.c - namespace reads and creates: lookup, getattr, access, mknod,
 * mkdir, symlink, readlink, link.
 *
 * Check order follows Linux (fs/namei.c) so callers see the error ext4
 * gives when several apply: the name itself (-EINVAL, -ENAMETOOLONG), the
 * parent (-ENOENT, -ENOTDIR, search permission -EACCES), an existing name
 * (-EEXIST, before write permission), write permission on the parent
 * (-EACCES), then the operation's own rules (device nodes -EPERM, links to
 * directories -EPERM, -EMLINK, -ENOSPC).
 *
 * "." and ".." are never stored: lookup answers them from the directory
 * record, and creating them is -EEXIST.  The trash directory has no dentry;
 * lookup of META_TRASH_NAME in the root finds it, creating that name is
 * -EEXIST and creating anything inside the trash is -EPERM.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

static bool is_trash_name(uint64_t parent, const char *name, size_t len)
{
	return parent == TESSERA_ROOT_INO && len == strlen(META_TRASH_NAME) &&
	       memcmp(name, META_TRASH_NAME, len) == 0;
}

/* ---- lookup / getattr / access ---- */

struct lookup_arg {
	const struct meta_cred *c;
	uint64_t parent;
	const char *name;
	size_t len;
	struct meta_attr *out;
};

static int lookup_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct lookup_arg *a = arg;
	struct inode_rec p, r;
	struct dent d;
	int rc;

	(void)m;
	rc = inode_get(t, a->parent, &p);
	if (rc == 0)
		rc = perm_lookup_t(t, a->c, &p.a);
	if (rc < 0)
		return rc;
	if (a->len == 1 && a->name[0] == '.') {
		*a->out = p.a;
		return 0;
	}
	if (name_is_dot(a->name, a->len))
		rc = inode_get(t, p.a.parent ? p.a.parent : a->parent, &r);
	else if (is_trash_name(a->parent, a->name, a->len))
		rc = inode_get(t, META_TRASH_INO, &r);
	else {
		rc = dent_get(t, a->parent, a->name, a->len, &d);
		if (rc == 0) {
			rc = inode_get(t, d.ino, &r);
			if (rc == -ENOENT)
				rc = log_fail(-EIO,
					      "entry '%.*s' of directory "
					      "%llu points to missing inode",
					      (int)a->len, a->name,
					      (unsigned long long)a->parent);
		}
	}
	if (rc == 0)
		*a->out = r.a;
	return rc;
}

int meta_lookup(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name, struct meta_attr *out)
{
	struct lookup_arg a = {c, parent, name, 0, out};
	int rc = name_check(name, &a.len);

	if (rc < 0)
		return rc;
	return meta_txn(m, false, lookup_fn, &a);
}

struct getattr_arg {
	uint64_t ino;
	const struct meta_cred *c;
	int mask;
	struct meta_attr *out;
	const char *xattr; /* also tell whether it exists (may be NULL) */
	bool *has_xattr;
};

static int getattr_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct getattr_arg *a = arg;
	struct inode_rec r;
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc == 0 && a->out)
		*a->out = r.a;
	if (rc == 0 && a->xattr) {
		int has = xattr_has(t, a->ino, a->xattr);

		if (has < 0)
			return has;
		*a->has_xattr = has > 0;
	}
	if (rc == 0 && a->mask)
		rc = perm_check_t(t, a->c, &r.a, a->mask);
	return rc;
}

int meta_getattr(struct meta *m, uint64_t ino, struct meta_attr *out)
{
	struct getattr_arg a = {ino, NULL, 0, out, NULL, NULL};

	return meta_txn(m, false, getattr_fn, &a);
}

int meta_access(struct meta *m, const struct meta_cred *c, uint64_t ino,
		int mask)
{
	struct getattr_arg a = {ino, c, mask, NULL, NULL, NULL};

	return meta_txn(m, false, getattr_fn, &a);
}

int meta_getattr_access(struct meta *m, const struct meta_cred *c, uint64_t ino,
			int mask, const char *xattr, bool *has_xattr,
			struct meta_attr *out)
{
	struct getattr_arg a = {ino, c, mask, out, xattr, has_xattr};

	if (xattr)
		*has_xattr = false;
	return meta_txn(m, false, getattr_fn, &a);
}

/* ---- creates ---- */

struct create_arg {
	const struct meta_cred *c;
	uint64_t parent;
	const char *name;
	size_t len;
	uint32_t mode; /* type | permission bits, umask not yet applied */
	uint32_t umask; /* applied unless the parent has a default ACL */
	uint64_t rdev;
	const char *target; /* symlinks */
	size_t tlen;
	uint64_t ino;
	struct meta_attr *out;
	struct meta_effects e;
};

/* The parent checks every create and link share; loads @p. */
static int create_parent(struct kv_txn *t, const struct meta_cred *c,
			 uint64_t parent, const char *name, size_t len,
			 struct inode_rec *p)
{
	struct dent d;
	int rc;

	rc = inode_get(t, parent, p);
	if (rc == 0)
		rc = perm_lookup_t(t, c, &p->a);
	if (rc < 0)
		return rc;
	if (name_is_dot(name, len) || is_trash_name(parent, name, len))
		return -EEXIST;
	rc = dent_get(t, parent, name, len, &d);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = perm_check_t(t, c, &p->a, META_MAY_WRITE | META_MAY_EXEC);
	if (rc == 0 && parent == META_TRASH_INO)
		rc = -EPERM;
	return rc;
}

static int create_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct create_arg *a = arg;
	int64_t now = meta_now_ns();
	struct inode_rec p, r;
	struct dent d;
	unsigned char k[8];
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	rc = create_parent(t, a->c, a->parent, a->name, a->len, &p);
	if (rc < 0)
		return rc;
	if ((S_ISCHR(a->mode) || S_ISBLK(a->mode)) && a->c && a->c->uid != 0)
		return -EPERM;
	memset(&r, 0, sizeof(r));
	r.a.ino = a->ino;
	r.a.mode = a->mode;
	r.a.nlink = S_ISDIR(a->mode) ? 2 : 1;
	r.a.rdev = a->rdev;
	r.a.length = a->tlen;
	r.a.atime_ns = r.a.mtime_ns = r.a.ctime_ns = now;
	r.a.parent = a->parent; /* home of a non-directory (quota.c) */
	if (S_ISDIR(a->mode))
		r.next_cookie = META_COOKIE_FIRST;
	perm_init_owner(a->c, &p.a, &r.a);
	rc = acl_inherit(m, t, a->parent, a->umask, &r.a);
	if (rc < 0)
		return rc;
	a->e.inodes = 1;
	a->e.space = meta_space_of(&r.a);
	r.quota = p.quota;
	rc = p.quota ? quota_charge(m, t, a->parent, a->e.space, 1, true) : 0;
	if (rc == 0)
		rc = meta_check_space(m, a->e.space, 1);
	if (rc < 0)
		return rc;
	rc = inode_put(t, &r);
	if (rc == 0 && a->target) {
		key_ino(k, a->ino);
		rc = kv_put(t, KV_SYMLINK, k, sizeof(k), a->target, a->tlen);
	}
	d.ino = a->ino;
	d.type = a->mode & S_IFMT;
	d.cookie = p.next_cookie++;
	if (rc == 0)
		rc = dent_put(t, a->parent, a->name, a->len, &d);
	if (S_ISDIR(a->mode))
		p.a.nlink++;
	p.a.mtime_ns = p.a.ctime_ns = now;
	if (rc == 0)
		rc = inode_put(t, &p);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

static int create(struct meta *m, struct create_arg *a)
{
	int rc = name_check(a->name, &a->len);

	if (rc == 0)
		rc = meta_new_ino(m, &a->ino);
	if (rc == 0)
		rc = meta_txn(m, true, create_fn, a);
	if (rc == 0)
		meta_apply_effects(m, &a->e);
	return rc;
}

static uint32_t umask_of(const struct meta_cred *c)
{
	return c ? c->umask : 0;
}

int meta_mknod(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name, uint32_t mode, uint64_t rdev,
	       struct meta_attr *out)
{
	struct create_arg a = {
	    .c = c, .parent = parent, .name = name, .out = out};
	uint32_t type = mode & S_IFMT;

	switch (type) {
	case 0:
		type = S_IFREG;
		/* fall through */
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	case S_IFDIR:
		return -EPERM;
	default:
		return -EINVAL;
	}
	a.mode = type | (mode & 07777);
	a.umask = umask_of(c);
	a.rdev = rdev;
	return create(m, &a);
}

/* ---- O_TMPFILE ---- */

struct tmpfile_arg {
	const struct meta_cred *c;
	uint64_t parent;
	uint32_t mode;
	uint32_t umask;
	bool linkable;
	uint64_t ino;
	struct meta_attr *out;
	struct meta_effects e;
};

static int tmpfile_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct tmpfile_arg *a = arg;
	struct inode_rec p, r;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	rc = inode_get(t, a->parent, &p);
	if (rc == 0 && !S_ISDIR(p.a.mode))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = perm_check_t(t, a->c, &p.a,
				  META_MAY_WRITE | META_MAY_EXEC);
	if (rc == 0 && a->parent == META_TRASH_INO)
		rc = -EPERM;
	if (rc < 0)
		return rc;
	memset(&r, 0, sizeof(r));
	r.a.ino = a->ino;
	r.a.mode = a->mode;
	r.a.nlink = 0;
	r.a.atime_ns = r.a.mtime_ns = r.a.ctime_ns = meta_now_ns();
	r.a.parent = 0; /* homeless until a link names it (quota.c) */
	r.linkable = a->linkable;
	perm_init_owner(a->c, &p.a, &r.a);
	rc = acl_inherit(m, t, a->parent, a->umask, &r.a);
	if (rc < 0)
		return rc;
	a->e.inodes = 1;
	a->e.space = meta_space_of(&r.a);
	rc = meta_check_space(m, a->e.space, 1);
	if (rc == 0)
		rc = meta_sustain_new(m, t, &r, &a->e);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

int meta_tmpfile(struct meta *m, const struct meta_cred *c, uint64_t parent,
		 uint32_t mode, bool linkable, struct meta_attr *out)
{
	struct tmpfile_arg a = {.c = c,
				.parent = parent,
				.mode = S_IFREG | (mode & 07777),
				.umask = umask_of(c),
				.linkable = linkable,
				.out = out};
	int rc = meta_new_ino(m, &a.ino);

	if (rc < 0)
		return rc;
	/* held open across the commit, so its after-commit step keeps it */
	meta_open_file(m, a.ino);
	rc = meta_txn(m, true, tmpfile_fn, &a);
	if (rc < 0) {
		meta_close_file(m, a.ino);
		return rc;
	}
	meta_apply_effects(m, &a.e);
	meta_after_commit(m, &a.e);
	return 0;
}

int meta_mkdir(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name, uint32_t mode, struct meta_attr *out)
{
	struct create_arg a = {
	    .c = c, .parent = parent, .name = name, .out = out};

	a.mode = S_IFDIR | (mode & (0777 | S_ISVTX));
	a.umask = umask_of(c);
	return create(m, &a);
}

int meta_symlink(struct meta *m, const struct meta_cred *c, uint64_t parent,
		 const char *name, const char *target, struct meta_attr *out)
{
	struct create_arg a = {
	    .c = c, .parent = parent, .name = name, .out = out};
	size_t tlen = strlen(target);

	if (tlen == 0)
		return -ENOENT;
	if (tlen > META_SYMLINK_MAX)
		return -ENAMETOOLONG;
	a.mode = S_IFLNK | 0777;
	a.target = target;
	a.tlen = tlen;
	return create(m, &a);
}

/* ---- readlink ---- */

struct readlink_arg {
	uint64_t ino;
	struct buf target;
};

static int readlink_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct readlink_arg *a = arg;
	struct inode_rec r;
	unsigned char k[8];
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc;
	if (!S_ISLNK(r.a.mode))
		return -EINVAL;
	key_ino(k, a->ino);
	rc = kv_get(t, KV_SYMLINK, k, sizeof(k), &a->target);
	if (rc == -ENOENT)
		rc = log_fail(-EIO, "symlink %llu has no target",
			      (unsigned long long)a->ino);
	return rc;
}

ssize_t meta_readlink(struct meta *m, uint64_t ino, char *buf, size_t n)
{
	struct readlink_arg a = {ino, BUF_INIT};
	ssize_t rc = meta_txn(m, false, readlink_fn, &a);

	if (rc == 0) {
		size_t cp = n ? MIN(a.target.len, n - 1) : 0;

		if (n) {
			memcpy(buf, a.target.data, cp);
			buf[cp] = '\0';
		}
		rc = (ssize_t)a.target.len;
	}
	buf_release(&a.target);
	return rc;
}

/* ---- link ---- */

struct link_arg {
	const struct meta_cred *c;
	uint64_t ino;
	uint64_t parent;
	const char *name;
	size_t len;
	struct meta_attr *out;
};

static int link_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct link_arg *a = arg;
	int64_t now = meta_now_ns();
	struct inode_rec p, r;
	struct dent d;
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc == 0)
		rc = create_parent(t, a->c, a->parent, a->name, a->len, &p);
	if (rc < 0)
		return rc;
	if (S_ISDIR(r.a.mode) || perm_flags_modify(&r.a) < 0)
		return -EPERM;
	if (r.a.nlink == 0 && !r.linkable)
		return -ENOENT;
	if (r.a.nlink >= META_LINK_MAX)
		return -EMLINK;
	if (r.a.parent == 0) { /* homeless (quota.c): this is its home now */
		if (p.quota)
			rc = quota_charge(m, t, a->parent, meta_space_of(&r.a),
					  1, true);
		if (rc < 0)
			return rc;
		r.a.parent = a->parent;
		r.quota = p.quota;
	}
	r.a.nlink++;
	r.linkable = false; /* an O_TMPFILE gets its first name once */
	r.a.ctime_ns = now;
	d.ino = a->ino;
	d.type = r.a.mode & S_IFMT;
	d.cookie = p.next_cookie++;
	p.a.mtime_ns = p.a.ctime_ns = now;
	rc = dent_put(t, a->parent, a->name, a->len, &d);
	if (rc == 0)
		rc = inode_put(t, &r);
	if (rc == 0)
		rc = inode_put(t, &p);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

int meta_link(struct meta *m, const struct meta_cred *c, uint64_t ino,
	      uint64_t newparent, const char *newname, struct meta_attr *out)
{
	struct link_arg a = {c, ino, newparent, newname, 0, out};
	int rc = name_check(newname, &a.len);

	if (rc < 0)
		return rc;
	return meta_txn(m, true, link_fn, &a);
}
