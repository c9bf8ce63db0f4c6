/*
 * xattr.c - extended attributes (KV_XATTR ino + name -> value), with the
 * rules of Linux fs/xattr.c and ext4:
 *
 *  - names: 1..255 bytes, else -ERANGE; a known namespace prefix followed
 *    by at least one byte ("user." alone is -EINVAL); "user.", "trusted.",
 *    "security." are stored; of "system." only the POSIX ACLs
 *    "system.posix_acl_access" and "system.posix_acl_default" (acl.c),
 *    unless meta_set_acl(false); others and unknown prefixes are
 *    -EOPNOTSUPP.
 *  - ACLs: anyone may read them; only the owner (or root) set or remove
 *    them (-EPERM); a value must be valid (-EINVAL), a default ACL only on
 *    a directory (-EACCES).  Setting the access ACL sets the mode's rwx
 *    bits from it (and drops set-group-ID for a caller outside the
 *    group); an ACL the mode says all of is not stored.  A value with no
 *    entries removes the ACL.
 *  - values: at most 64 KiB (-E2BIG); empty values are allowed.
 *  - flags: META_XATTR_CREATE on an existing name -EEXIST, META_XATTR_REPLACE
 *    on a missing one -ENODATA, other bits -EINVAL.
 *  - "user.": only on regular files and directories (set -EPERM, get
 *    -ENODATA otherwise); read needs read permission, write needs write
 *    permission (-EACCES), and on a sticky directory ownership (-EPERM).
 *  - "trusted.": root only (set -EPERM, get -ENODATA); hidden from other
 *    callers' lists.  "security.": no permission check here.
 *  - buffers: @n == 0 asks for the size; a smaller buffer is -ERANGE.
 *  - set and remove change ctime.
 */
#include "util/common.h"
#include "meta/meta_int.h"

enum xattr_ns { XNS_USER, XNS_TRUSTED, XNS_SECURITY, XNS_SYSTEM };

static int xname_check(const char *name, size_t *len, enum xattr_ns *ns)
{
	static const struct {
		const char *prefix;
		int ns; /* < 0: -errno */
	} tab[] = {
	    {"user.", XNS_USER},
	    {"trusted.", XNS_TRUSTED},
	    {"security.", XNS_SECURITY},
	    {"system.", XNS_SYSTEM},
	};
	size_t n = strnlen(name, META_XATTR_NAME_MAX + 1);

	*len = n;
	if (n == 0 || n > META_XATTR_NAME_MAX)
		return -ERANGE;
	for (size_t i = 0; i < ARRAY_SIZE(tab); i++) {
		size_t pl = strlen(tab[i].prefix);

		if (strncmp(name, tab[i].prefix, pl))
			continue;
		if (tab[i].ns < 0)
			return tab[i].ns;
		if (n == pl)
			return -EINVAL;
		*ns = (enum xattr_ns)tab[i].ns;
		if (*ns == XNS_SYSTEM && strcmp(name, ACL_NAME_ACCESS) &&
		    strcmp(name, ACL_NAME_DEFAULT))
			return -EOPNOTSUPP;
		return 0;
	}
	return -EOPNOTSUPP;
}

static bool is_root(const struct meta_cred *c)
{
	return !c || c->uid == 0;
}

/* Linux xattr_permission. */
static int xattr_perm(struct kv_txn *t, const struct meta_cred *c,
		      const struct meta_attr *a, enum xattr_ns ns, bool write)
{
	if (write && perm_flags_modify(a) < 0)
		return -EPERM;
	if (ns == XNS_SECURITY)
		return 0;
	if (ns == XNS_SYSTEM)
		return write && !perm_is_owner(c, a) ? -EPERM : 0;
	if (ns == XNS_TRUSTED) {
		if (is_root(c))
			return 0;
		return write ? -EPERM : -ENODATA;
	}
	if (!S_ISREG(a->mode) && !S_ISDIR(a->mode))
		return write ? -EPERM : -ENODATA;
	if (write && S_ISDIR(a->mode) && (a->mode & S_ISVTX) &&
	    !perm_is_owner(c, a))
		return -EPERM;
	return perm_check_t(t, c, a, write ? META_MAY_WRITE : META_MAY_READ);
}

struct xattr_arg {
	const struct meta_cred *c;
	uint64_t ino;
	const char *name;
	size_t len;
	enum xattr_ns ns;
	const void *val;
	size_t vlen;
	int flags;
	bool remove;
	struct buf out;
};

static size_t xkey(unsigned char *k, const struct xattr_arg *a)
{
	put_be64(k, a->ino);
	memcpy(k + 8, a->name, a->len);
	return 8 + a->len;
}

int xattr_has(struct kv_txn *t, uint64_t ino, const char *name)
{
	unsigned char k[8 + META_XATTR_NAME_MAX];
	struct buf v = BUF_INIT;
	size_t len = strnlen(name, META_XATTR_NAME_MAX + 1);
	int rc;

	if (len > META_XATTR_NAME_MAX)
		return 0;
	put_be64(k, ino);
	memcpy(k + 8, name, len);
	rc = kv_get(t, KV_XATTR, k, 8 + len, &v);
	buf_release(&v);
	if (rc == -ENOENT)
		return 0;
	return rc < 0 ? rc : 1;
}

static int get_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct xattr_arg *a = arg;
	unsigned char k[8 + META_XATTR_NAME_MAX];
	struct inode_rec r;
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc == 0)
		rc = xattr_perm(t, a->c, &r.a, a->ns, false);
	if (rc < 0)
		return rc;
	rc = kv_get(t, KV_XATTR, k, xkey(k, a), &a->out);
	return rc == -ENOENT ? -ENODATA : rc;
}

ssize_t meta_getxattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		      const char *name, void *buf, size_t n)
{
	struct xattr_arg a = {.c = c, .ino = ino, .name = name};
	ssize_t rc = xname_check(name, &a.len, &a.ns);

	if (rc == 0 && a.ns == XNS_SYSTEM && m->no_acl)
		rc = -EOPNOTSUPP;
	if (rc == 0)
		rc = meta_txn(m, false, get_fn, &a);
	if (rc == 0 && n && a.out.len > n)
		rc = -ERANGE;
	if (rc == 0) {
		if (n && a.out.len)
			memcpy(buf, a.out.data, a.out.len);
		rc = (ssize_t)a.out.len;
	}
	buf_release(&a.out);
	return rc;
}

/*
 * Linux set_posix_acl and posix_acl_update_mode for a "system." value:
 * validate it, set the mode from an access ACL, and turn the set into a
 * quiet removal (*drop) when nothing needs storing (no entries, or the
 * mode says all).  @a is left alone: the txn may run again.
 */
static uint32_t get_le32_acl(const void *v)
{
	const unsigned char *p = v;

	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int acl_set_prep(const struct xattr_arg *a, struct meta_attr *r,
			bool *drop)
{
	uint32_t mode = r->mode;

	*drop = false;
	if (a->vlen == 4 && get_le32_acl(a->val) == ACL_XATTR_VERSION) {
		*drop = true;
		return 0;
	}
	if (acl_valid(a->val, a->vlen) < 0)
		return -EINVAL;
	if (strcmp(a->name, ACL_NAME_ACCESS))
		return S_ISDIR(r->mode) ? 0 : -EACCES;
	*drop = acl_equiv_mode(a->val, a->vlen, &mode) == 1;
	if (a->c && a->c->uid != 0 && !perm_in_group(a->c, r->gid))
		mode &= ~(uint32_t)S_ISGID;
	r->mode = mode;
	return 0;
}

static int set_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct xattr_arg *a = arg;
	unsigned char k[8 + META_XATTR_NAME_MAX];
	size_t klen = xkey(k, a);
	struct inode_rec r;
	bool exists, drop = false;
	int rc;

	(void)m;
	rc = inode_get(t, a->ino, &r);
	if (rc == 0)
		rc = xattr_perm(t, a->c, &r.a, a->ns, true);
	if (rc == 0 && a->ns == XNS_SYSTEM && !a->remove)
		rc = acl_set_prep(a, &r.a, &drop);
	if (rc < 0)
		return rc;
	rc = kv_get(t, KV_XATTR, k, klen, &a->out);
	exists = rc == 0;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (a->remove && !exists)
		return -ENODATA;
	if ((a->flags & META_XATTR_CREATE) && exists)
		return -EEXIST;
	if ((a->flags & META_XATTR_REPLACE) && !exists)
		return -ENODATA;
	rc = 0;
	if (a->remove || (drop && exists))
		rc = kv_del(t, KV_XATTR, k, klen);
	else if (!drop)
		rc = kv_put(t, KV_XATTR, k, klen, a->val, a->vlen);
	r.a.ctime_ns = meta_now_ns();
	if (rc == 0)
		rc = inode_put(t, &r);
	return rc;
}

int meta_setxattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		  const char *name, const void *val, size_t len, int flags)
{
	struct xattr_arg a = {.c = c,
			      .ino = ino,
			      .name = name,
			      .val = val,
			      .vlen = len,
			      .flags = flags};
	int rc;

	if (flags & ~(META_XATTR_CREATE | META_XATTR_REPLACE))
		return -EINVAL;
	rc = xname_check(name, &a.len, &a.ns);
	if (rc == 0 && a.ns == XNS_SYSTEM && m->no_acl)
		rc = -EOPNOTSUPP;
	if (rc == 0 && len > META_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (rc == 0)
		rc = meta_txn(m, true, set_fn, &a);
	buf_release(&a.out);
	return rc;
}

int meta_removexattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		     const char *name)
{
	struct xattr_arg a = {.c = c, .ino = ino, .name = name, .remove = true};
	int rc = xname_check(name, &a.len, &a.ns);

	if (rc == 0 && a.ns == XNS_SYSTEM && m->no_acl)
		rc = -EOPNOTSUPP;
	if (rc == 0)
		rc = meta_txn(m, true, set_fn, &a);
	buf_release(&a.out);
	return rc;
}

static int list_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct xattr_arg *a = arg;
	const char *name = (const char *)key + 8;
	size_t nlen = klen - 8;
	int rc;

	(void)val;
	(void)vlen;
	if (klen <= 8)
		return 0;
	if (!is_root(a->c) && nlen >= 8 && memcmp(name, "trusted.", 8) == 0)
		return 0;
	rc = buf_append(&a->out, name, nlen);
	return rc < 0 ? rc : buf_append(&a->out, "", 1);
}

static int list_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct xattr_arg *a = arg;
	unsigned char k[8];
	struct inode_rec r;
	int rc;

	(void)m;
	buf_reset(&a->out);
	rc = inode_get(t, a->ino, &r);
	key_ino(k, a->ino);
	if (rc == 0)
		rc =
		    kv_scan(t, KV_XATTR, k, sizeof(k), NULL, 0, 0, list_one, a);
	return rc;
}

ssize_t meta_listxattr(struct meta *m, const struct meta_cred *c, uint64_t ino,
		       char *buf, size_t n)
{
	struct xattr_arg a = {.c = c, .ino = ino};
	ssize_t rc = meta_txn(m, false, list_fn, &a);

	if (rc == 0 && n && a.out.len > n)
		rc = -ERANGE;
	if (rc == 0) {
		if (n && a.out.len)
			memcpy(buf, a.out.data, a.out.len);
		rc = (ssize_t)a.out.len;
	}
	buf_release(&a.out);
	return rc;
}
