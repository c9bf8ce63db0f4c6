/*
 * acl.c - POSIX ACLs kept as the xattrs "system.posix_acl_access" and
 * "system.posix_acl_default", in the kernel's binary form (struct
 * posix_acl_xattr_header: le32 version 2; then struct
 * posix_acl_xattr_entry: le16 tag, le16 perm, le32 id), and their coupling
 * with the mode, as Linux fs/posix_acl.c does it:
 *
 *  - a stored ACL is valid (acl_valid): entries in tag order USER_OBJ,
 *    USER..., GROUP_OBJ, GROUP..., MASK, OTHER, each base entry once,
 *    named ids strictly increasing, perms within rwx, and a MASK whenever
 *    there is a named entry.
 *  - the mode's rwx bits are the owner, mask (or group) and other entries
 *    of the access ACL; chmod rewrites them (acl_chmod), setting the
 *    access ACL sets the mode, and an ACL the mode says all of is not
 *    stored (acl_equiv_mode).
 *  - a new inode under a directory with a default ACL gets that ACL,
 *    masked by the create mode, as its access ACL (acl_create); the umask
 *    is not applied then.
 *
 *  - permission checks: the kernel enforces ACLs exactly (the mount asks
 *    for FUSE_CAP_POSIX_ACL and uses default_permissions).  Meta's own
 *    checks (perm_check_t and friends) read the access ACL only when the
 *    mode bits refuse a caller other than the owner: they never refuse
 *    what the ACL grants, and cost no read for the common case, but an
 *    ACL entry narrower than the mode's group or other bits is left to
 *    the kernel.
 *
 * The functions work on the value in place: no allocation, and the value
 * a caller validated once stays valid through acl_chmod / acl_create.
 */
#include "util/common.h"
#include "meta/meta_int.h"

#define ACL_HDR 4
#define ACL_ENT 8

static uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static size_t acl_count(size_t len)
{
	return (len - ACL_HDR) / ACL_ENT;
}

static unsigned char *ent(const void *v, size_t i)
{
	return (unsigned char *)v + ACL_HDR + i * ACL_ENT;
}

/* Linux posix_acl_valid: a state machine over the tags in order. */
int acl_valid(const void *v, size_t len)
{
	enum { S_DONE, S_UOBJ, S_USER, S_GROUP, S_OTHER } state = S_UOBJ;
	bool need_mask = false;

	if (len < ACL_HDR + ACL_ENT || (len - ACL_HDR) % ACL_ENT ||
	    get_le32(v) != ACL_XATTR_VERSION)
		return -EINVAL;
	for (size_t i = 0; i < acl_count(len); i++) {
		const unsigned char *e = ent(v, i);

		if (get_le16(e + 2) & ~7u)
			return -EINVAL;
		switch (get_le16(e)) {
		case ACL_USER_OBJ:
			if (state != S_UOBJ)
				return -EINVAL;
			state = S_USER;
			break;
		case ACL_USER:
			if (state != S_USER)
				return -EINVAL;
			need_mask = true;
			break;
		case ACL_GROUP_OBJ:
			if (state != S_USER)
				return -EINVAL;
			state = S_GROUP;
			break;
		case ACL_GROUP:
			if (state != S_GROUP)
				return -EINVAL;
			need_mask = true;
			break;
		case ACL_MASK:
			if (state != S_GROUP)
				return -EINVAL;
			state = S_OTHER;
			break;
		case ACL_OTHER:
			if (state != S_OTHER && (state != S_GROUP || need_mask))
				return -EINVAL;
			state = S_DONE;
			break;
		default:
			return -EINVAL;
		}
	}
	return state == S_DONE ? 0 : -EINVAL;
}

/* The entry of @tag (a base entry or the mask), or NULL. */
static unsigned char *find(const void *v, size_t len, uint16_t tag)
{
	for (size_t i = 0; i < acl_count(len); i++)
		if (get_le16(ent(v, i)) == tag)
			return ent(v, i);
	return NULL;
}

static uint16_t perm_of(const unsigned char *e)
{
	return get_le16(e + 2);
}

int acl_equiv_mode(const void *v, size_t len, uint32_t *mode)
{
	unsigned char *mask = find(v, len, ACL_MASK);
	unsigned char *grp = mask ? mask : find(v, len, ACL_GROUP_OBJ);
	uint32_t bits = (uint32_t)perm_of(find(v, len, ACL_USER_OBJ)) << 6 |
			(uint32_t)perm_of(grp) << 3 |
			perm_of(find(v, len, ACL_OTHER));

	*mode = (*mode & ~0777u) | bits;
	return acl_count(len) == 3 ? 1 : 0;
}

void acl_chmod(void *v, size_t len, uint32_t mode)
{
	unsigned char *mask = find(v, len, ACL_MASK);
	unsigned char *grp = mask ? mask : find(v, len, ACL_GROUP_OBJ);

	put_le16(find(v, len, ACL_USER_OBJ) + 2, (mode >> 6) & 7);
	put_le16(grp + 2, (mode >> 3) & 7);
	put_le16(find(v, len, ACL_OTHER) + 2, mode & 7);
}

/* Linux posix_acl_create_masq. */
int acl_create(void *v, size_t len, uint32_t *mode)
{
	uint32_t m = *mode;
	unsigned char *mask = find(v, len, ACL_MASK);
	unsigned char *grp = mask ? mask : find(v, len, ACL_GROUP_OBJ);
	unsigned char *u = find(v, len, ACL_USER_OBJ);
	unsigned char *o = find(v, len, ACL_OTHER);

	put_le16(u + 2, perm_of(u) & ((m >> 6) & 7));
	put_le16(grp + 2, perm_of(grp) & ((m >> 3) & 7));
	put_le16(o + 2, perm_of(o) & (m & 7));
	return acl_equiv_mode(v, len, mode) ? 0 : 1;
}

/* Linux posix_acl_permission, for a caller that is not the owner. */
int acl_permission(const void *v, size_t len, const struct meta_cred *c,
		   const struct meta_attr *a, int want)
{
	unsigned char *mask = find(v, len, ACL_MASK);
	uint16_t mperm = mask ? perm_of(mask) : 7;
	bool group_found = false;

	want &= META_MAY_READ | META_MAY_WRITE | META_MAY_EXEC;
	for (size_t i = 0; i < acl_count(len); i++) {
		const unsigned char *e = ent(v, i);
		uint16_t p = perm_of(e);

		switch (get_le16(e)) {
		case ACL_USER_OBJ:
			if (c->uid == a->uid)
				return (want & ~p) ? -EACCES : 0;
			break;
		case ACL_USER:
			if (c->uid == get_le32(e + 4))
				return (want & ~(p & mperm)) ? -EACCES : 0;
			break;
		case ACL_GROUP_OBJ:
		case ACL_GROUP: {
			uint32_t gid = get_le16(e) == ACL_GROUP_OBJ
					   ? a->gid
					   : get_le32(e + 4);

			if (!perm_in_group(c, gid))
				break;
			group_found = true;
			if (!(want & ~(p & mperm)))
				return 0;
			break;
		}
		case ACL_OTHER:
			if (group_found)
				return -EACCES;
			return (want & ~p) ? -EACCES : 0;
		default:
			break;
		}
	}
	return -EACCES;
}

int acl_get(struct kv_txn *t, uint64_t ino, const char *name, struct buf *out)
{
	unsigned char k[8 + META_XATTR_NAME_MAX];
	size_t n = strlen(name);
	int rc;

	put_be64(k, ino);
	memcpy(k + 8, name, n);
	buf_reset(out);
	rc = kv_get(t, KV_XATTR, k, 8 + n, out);
	if (rc == 0 && acl_valid(out->data, out->len) < 0)
		rc = -ENOENT; /* damaged: as if absent; fsck's job */
	return rc;
}

int acl_put(struct kv_txn *t, uint64_t ino, const char *name, const void *v,
	    size_t len)
{
	unsigned char k[8 + META_XATTR_NAME_MAX];
	size_t n = strlen(name);

	put_be64(k, ino);
	memcpy(k + 8, name, n);
	return kv_put(t, KV_XATTR, k, 8 + n, v, len);
}

int perm_check_t(struct kv_txn *t, const struct meta_cred *c,
		 const struct meta_attr *a, int mask)
{
	struct buf v = BUF_INIT;
	int rc = perm_check(c, a, mask);

	if (rc != -EACCES || !c || c->uid == 0 || c->uid == a->uid)
		return rc;
	if (acl_get(t, a->ino, ACL_NAME_ACCESS, &v) == 0)
		rc = acl_permission(v.data, v.len, c, a, mask);
	buf_release(&v);
	return rc;
}

int perm_may_delete_t(struct kv_txn *t, const struct meta_cred *c,
		      const struct meta_attr *dir,
		      const struct meta_attr *victim)
{
	int rc = perm_check_t(t, c, dir, META_MAY_WRITE | META_MAY_EXEC);

	if (rc < 0)
		return rc;
	return perm_may_delete(NULL, dir, victim) == 0 &&
			       (!c || c->uid == 0 || !(dir->mode & S_ISVTX) ||
				c->uid == victim->uid || c->uid == dir->uid)
		   ? 0
		   : -EPERM;
}

int perm_lookup_t(struct kv_txn *t, const struct meta_cred *c,
		  const struct meta_attr *dir)
{
	int rc = perm_lookup(c, dir);

	if (rc == -EACCES)
		rc = perm_check_t(t, c, dir, META_MAY_EXEC);
	return rc;
}

void meta_set_acl(struct meta *m, bool on)
{
	m->no_acl = !on;
}

int acl_inherit(struct meta *m, struct kv_txn *t, uint64_t parent,
		uint32_t umask, struct meta_attr *a)
{
	struct buf v = BUF_INIT;
	int rc = -ENOENT;

	if (!m->no_acl && !S_ISLNK(a->mode))
		rc = acl_get(t, parent, ACL_NAME_DEFAULT, &v);
	if (rc == -ENOENT) {
		a->mode &= ~(umask & 0777);
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (S_ISDIR(a->mode))
		rc = acl_put(t, a->ino, ACL_NAME_DEFAULT, v.data, v.len);
	if (rc == 0 && acl_create(v.data, v.len, &a->mode) == 1)
		rc = acl_put(t, a->ino, ACL_NAME_ACCESS, v.data, v.len);
out:
	buf_release(&v);
	return rc;
}

int acl_chmod_t(struct meta *m, struct kv_txn *t, const struct meta_attr *a)
{
	struct buf v = BUF_INIT;
	int rc = -ENOENT;

	if (!m->no_acl)
		rc = acl_get(t, a->ino, ACL_NAME_ACCESS, &v);
	if (rc == 0) {
		acl_chmod(v.data, v.len, a->mode);
		rc = acl_put(t, a->ino, ACL_NAME_ACCESS, v.data, v.len);
	}
	buf_release(&v);
	return rc == -ENOENT ? 0 : rc;
}
