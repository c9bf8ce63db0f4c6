/*
 * attr.c - meta_setattr: chmod, chown, truncate, utimes, as Linux
 * setattr_prepare / notify_change apply them on ext4.
 *
 * Rules (uid 0 passes all but the ones marked "also root"):
 *  - chown to another uid: root only (-EPERM); the owner may "change" the
 *    uid to itself.
 *  - chgrp: the owner, to a group it belongs to or the current group
 *    (-EPERM otherwise).
 *  - chmod: owner only (-EPERM); S_ISGID is dropped when a non-root caller
 *    is not in the file's (new) group.
 *  - chown/chgrp of a non-directory clears S_ISUID, and S_ISGID when group
 *    execute is set (also root), unless the same call sets the mode.
 *  - explicit atime/mtime: owner only (-EPERM); "now": owner or write
 *    permission (-EACCES).
 *  - size: write permission (-EACCES), directories -EISDIR, other non-files
 *    -EINVAL, past the largest length -EFBIG; a non-root size change clears
 *    S_ISUID and group-executable S_ISGID.  The caller passes a NULL cred
 *    for ftruncate on a handle opened for writing (the kernel checked at
 *    open).
 *  - inode flags (META_FL_*, also root): immutable refuses every change,
 *    append-only refuses chmod, chown, explicit times and size changes
 *    (-EPERM, may_setattr and do_truncate); "now" times stay allowed.
 *  - every call sets ctime (unless META_SET_CTIME gives one); a size change
 *    also sets mtime.
 */
#include "util/common.h"
#include "meta/meta_int.h"

struct setattr_arg {
	const struct meta_cred *c;
	uint64_t ino;
	uint32_t mask;
	const struct meta_attr *in;
	struct meta_attr *out;
	struct meta_effects e;
};

static bool is_root(const struct meta_cred *c)
{
	return !c || c->uid == 0;
}

static int setattr_check(struct kv_txn *t, const struct setattr_arg *a,
			 const struct meta_attr *r)
{
	const struct meta_cred *c = a->c;
	const struct meta_attr *in = a->in;
	bool owner = perm_is_owner(c, r);
	uint32_t m = a->mask;
	uint32_t fixed = META_SET_MODE | META_SET_UID | META_SET_GID |
			 META_SET_SIZE | META_SET_ATIME | META_SET_MTIME;

	if ((r->flags & META_FL_IMMUTABLE) && m)
		return -EPERM;
	/* explicit times, not "now" ones (ATTR_TIMES_SET) */
	if (m & META_SET_ATIME_NOW)
		fixed &= ~META_SET_ATIME;
	if (m & META_SET_MTIME_NOW)
		fixed &= ~META_SET_MTIME;
	if ((r->flags & META_FL_APPEND) && (m & fixed))
		return -EPERM;
	if ((m & META_SET_UID) && !is_root(c) &&
	    !(c->uid == r->uid && in->uid == r->uid))
		return -EPERM;
	if ((m & META_SET_GID) && !is_root(c) &&
	    !(c->uid == r->uid &&
	      (perm_in_group(c, in->gid) || in->gid == r->gid)))
		return -EPERM;
	if ((m & META_SET_MODE) && !owner)
		return -EPERM;
	if ((m & META_SET_ATIME) && !(m & META_SET_ATIME_NOW) && !owner)
		return -EPERM;
	if ((m & META_SET_MTIME) && !(m & META_SET_MTIME_NOW) && !owner)
		return -EPERM;
	if ((m & (META_SET_ATIME_NOW | META_SET_MTIME_NOW)) && !owner &&
	    perm_check_t(t, c, r, META_MAY_WRITE) < 0)
		return -EACCES;
	if (m & META_SET_SIZE) {
		if (S_ISDIR(r->mode))
			return -EISDIR;
		if (!S_ISREG(r->mode))
			return -EINVAL;
		if (in->length > META_MAX_LENGTH)
			return -EFBIG;
		return perm_check_t(t, c, r, META_MAY_WRITE);
	}
	return 0;
}

static void kill_suid(struct meta_attr *r)
{
	r->mode &= ~(uint32_t)S_ISUID;
	if ((r->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		r->mode &= ~(uint32_t)S_ISGID;
}

static int setattr_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct setattr_arg *a = arg;
	const struct meta_attr *in = a->in;
	int64_t now = meta_now_ns();
	struct inode_rec r;
	uint32_t mask = a->mask;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	rc = inode_get(t, a->ino, &r);
	if (rc == 0)
		rc = setattr_check(t, a, &r.a);
	if (rc < 0)
		return rc;
	if (mask & META_SET_UID)
		r.a.uid = in->uid;
	if (mask & META_SET_GID)
		r.a.gid = in->gid;
	if ((mask & (META_SET_UID | META_SET_GID)) && !S_ISDIR(r.a.mode) &&
	    !(mask & META_SET_MODE))
		kill_suid(&r.a);
	if (mask & META_SET_MODE) {
		uint32_t mode = in->mode & 07777;

		if (!is_root(a->c) && !perm_in_group(a->c, r.a.gid))
			mode &= ~(uint32_t)S_ISGID;
		r.a.mode = (r.a.mode & S_IFMT) | mode;
		rc = acl_chmod_t(m, t, &r.a);
		if (rc < 0)
			return rc;
	}
	if ((mask & META_SET_SIZE) && in->length != r.a.length) {
		rc = data_set_length(m, t, &r, in->length, &a->e);
		if (rc < 0)
			return rc;
		r.a.mtime_ns = now;
		if (!is_root(a->c))
			kill_suid(&r.a);
	}
	if (mask & META_SET_ATIME_NOW)
		r.a.atime_ns = now;
	else if (mask & META_SET_ATIME)
		r.a.atime_ns = in->atime_ns;
	if (mask & META_SET_MTIME_NOW)
		r.a.mtime_ns = now;
	else if (mask & META_SET_MTIME)
		r.a.mtime_ns = in->mtime_ns;
	r.a.ctime_ns = (mask & META_SET_CTIME) ? in->ctime_ns : now;
	rc = inode_put(t, &r);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

int meta_setattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		 uint32_t mask, const struct meta_attr *in,
		 struct meta_attr *out)
{
	struct setattr_arg a = {c, ino, mask, in, out, {0, 0, 0, 0}};
	int rc = meta_txn(m, true, setattr_fn, &a);

	if (rc == 0) {
		meta_apply_effects(m, &a.e);
		meta_after_commit(m, &a.e);
	}
	return rc;
}

/* ---- inode flags (chattr) ---- */

struct flags_arg {
	const struct meta_cred *c;
	uint64_t ino;
	uint32_t flags;
	struct meta_attr *out;
};

static int flags_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct flags_arg *a = arg;
	struct inode_rec r;
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc;
	if (!perm_is_owner(a->c, &r.a))
		return -EPERM;
	/* CAP_LINUX_IMMUTABLE (fileattr_set_prepare) */
	if (((r.a.flags ^ a->flags) & META_FL_USER) && !is_root(a->c))
		return -EPERM;
	r.a.flags = (r.a.flags & ~META_FL_USER) | a->flags;
	r.a.ctime_ns = meta_now_ns();
	rc = inode_put(t, &r);
	if (rc == 0 && a->out)
		*a->out = r.a;
	return rc;
}

int meta_set_flags(struct meta *m, const struct meta_cred *c, uint64_t ino,
		   uint32_t flags, struct meta_attr *out)
{
	struct flags_arg a = {c, ino, flags, out};

	if (flags & ~META_FL_USER)
		return -EOPNOTSUPP;
	return meta_txn(m, true, flags_fn, &a);
}

/* ---- deferred atime updates ---- */

struct atimes_arg {
	const struct meta_atime *v;
	size_t n;
};

static int atimes_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct atimes_arg *a = arg;
	struct inode_rec r;
	int rc = 0;

	(void)m;
	for (size_t i = 0; i < a->n && rc == 0; i++) {
		rc = inode_get(t, a->v[i].ino, &r);
		if (rc == -ENOENT) {
			rc = 0; /* deleted since the read */
			continue;
		}
		if (rc == 0 && r.a.atime_ns < a->v[i].atime_ns) {
			r.a.atime_ns = a->v[i].atime_ns;
			rc = inode_put(t, &r);
		}
	}
	return rc;
}

int meta_set_atimes(struct meta *m, const struct meta_atime *v, size_t n)
{
	struct atimes_arg a = {v, n};

	return n ? meta_txn(m, true, atimes_fn, &a) : 0;
}
