/*
 * perm.c - name rules and permission checks, as Linux applies them to ext4
 * (fs/namei.c generic_permission, may_delete, check_sticky; fs/inode.c
 * inode_init_owner).
 *
 * uid 0 stands for a caller with every capability: it passes every check
 * except execute on a non-directory without any x bit.  A NULL cred is an
 * internal caller and passes everything.  Search permission on the
 * directories above the parent is the kernel's job (it walks the path);
 * meta/ checks the parent the operation names.
 */
#include "util/common.h"
#include "meta/meta_int.h"

#include <fcntl.h>

int name_check(const char *name, size_t *len)
{
	size_t n = strlen(name);

	*len = n;
	if (n == 0 || memchr(name, '/', n))
		return -EINVAL;
	if (n > TESSERA_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

bool name_is_dot(const char *name, size_t len)
{
	return (len == 1 && name[0] == '.') ||
	       (len == 2 && name[0] == '.' && name[1] == '.');
}

bool perm_in_group(const struct meta_cred *c, uint32_t gid)
{
	if (!c || c->gid == gid)
		return true;
	for (uint32_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

bool perm_is_owner(const struct meta_cred *c, const struct meta_attr *a)
{
	return !c || c->uid == 0 || c->uid == a->uid;
}

int perm_check(const struct meta_cred *c, const struct meta_attr *a, int mask)
{
	uint32_t bits;

	mask &= META_MAY_READ | META_MAY_WRITE | META_MAY_EXEC;
	/* "nobody gets write access to an immutable file" (inode_permission) */
	if ((mask & META_MAY_WRITE) && (a->flags & META_FL_IMMUTABLE))
		return -EPERM;
	if (!c || mask == 0)
		return 0;
	if (c->uid == 0) {
		/* root may execute only what someone may execute */
		if ((mask & META_MAY_EXEC) && !S_ISDIR(a->mode) &&
		    !(a->mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
			return -EACCES;
		return 0;
	}
	if (c->uid == a->uid)
		bits = (a->mode >> 6) & 7;
	else if (perm_in_group(c, a->gid))
		bits = (a->mode >> 3) & 7;
	else
		bits = a->mode & 7;
	return ((uint32_t)mask & ~bits) ? -EACCES : 0;
}

int perm_lookup(const struct meta_cred *c, const struct meta_attr *dir)
{
	int rc;

	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	rc = perm_check(c, dir, META_MAY_EXEC);
	/* a removed directory kept while open: dead, like IS_DEADDIR */
	if (rc == 0 && dir->nlink == 0)
		rc = -ENOENT;
	return rc;
}

int perm_may_delete(const struct meta_cred *c, const struct meta_attr *dir,
		    const struct meta_attr *victim)
{
	int rc = perm_check(c, dir, META_MAY_WRITE | META_MAY_EXEC);

	if (rc < 0)
		return rc;
	if ((dir->flags & META_FL_APPEND) || perm_flags_modify(victim) < 0)
		return -EPERM;
	if (!c || c->uid == 0 || !(dir->mode & S_ISVTX))
		return 0;
	if (c->uid == victim->uid || c->uid == dir->uid)
		return 0;
	return -EPERM;
}

int perm_flags_modify(const struct meta_attr *a)
{
	return (a->flags & (META_FL_IMMUTABLE | META_FL_APPEND)) ? -EPERM : 0;
}

int meta_check_open_flags(const struct meta_attr *a, int oflags)
{
	bool wr = (oflags & O_ACCMODE) != O_RDONLY || (oflags & O_TRUNC);

	if (!wr)
		return 0;
	if (a->flags & META_FL_IMMUTABLE)
		return -EPERM;
	if ((a->flags & META_FL_APPEND) &&
	    (!(oflags & O_APPEND) || (oflags & O_TRUNC)))
		return -EPERM;
	return 0;
}

void perm_init_owner(const struct meta_cred *c, const struct meta_attr *dir,
		     struct meta_attr *a)
{
	a->uid = c ? c->uid : 0;
	if (!(dir->mode & S_ISGID)) {
		a->gid = c ? c->gid : 0;
		return;
	}
	a->gid = dir->gid;
	if (S_ISDIR(a->mode))
		a->mode |= S_ISGID;
	else if ((a->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
		 !perm_in_group(c, a->gid) && c->uid != 0)
		a->mode &= ~(uint32_t)S_ISGID;
}
