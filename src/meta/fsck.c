/*
 * fsck.c - the repairs `tessera fsck --repair` makes (meta_scan.h, last
 * section).  fsck finds what is wrong through a meta_view; each fix here
 * is then one small txn that re-reads the record it changes and writes
 * only the fields fsck computed, so a fix never rewrites a record from a
 * stale copy.  The caller makes sure no mount is live (the truth fsck
 * computed would otherwise move under it).
 *
 * Orphans move into the trash directory under the name remove.c gives a
 * removed file, "PARENT-INO-SECONDS-NAME" (parent 0: unknown; NAME
 * "orphan"; SECONDS now, so the trash keeps it trash_days from the
 * repair on), with the inode number as cookie (meta_int.h invariant 2).
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "meta/meta_scan.h"
#include "util/log.h"

int64_t meta_usage_of(const struct meta_attr *a)
{
	return meta_space_of(a);
}

struct fix_arg {
	uint64_t ino;
	const struct meta_fix *f;
	char *name; /* orphans: the trash name, out */
	size_t name_n;
};

static int fix_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct fix_arg *a = arg;
	const struct meta_fix *f = a->f;
	struct inode_rec r;
	int rc;

	UNUSED(m);
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc;
	if (f->set_nlink)
		r.a.nlink = f->nlink;
	if (f->set_length)
		r.a.length = f->length;
	if (f->set_parent)
		r.a.parent = f->parent;
	if (f->set_cookie && r.next_cookie < f->next_cookie)
		r.next_cookie = f->next_cookie;
	return inode_put(t, &r);
}

int meta_fix_inode(struct meta *m, uint64_t ino, const struct meta_fix *f)
{
	struct fix_arg a = {ino, f, NULL, 0};
	int rc = meta_txn(m, true, fix_fn, &a);

	if (rc < 0)
		return log_fail(rc, "cannot fix inode %llu",
				(unsigned long long)ino);
	return 0;
}

struct counters_arg {
	uint64_t space, inodes;
};

static int counters_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct counters_arg *a = arg;
	int rc;

	UNUSED(m);
	rc = meta_rec_counter_put(t, "usedSpace", a->space);
	if (rc == 0)
		rc = meta_rec_counter_put(t, "usedInodes", a->inodes);
	return rc;
}

int meta_fix_counters(struct meta *m, uint64_t space, uint64_t inodes)
{
	struct counters_arg a = {space, inodes};
	int rc = meta_txn(m, true, counters_fn, &a);

	if (rc < 0)
		return log_fail(rc, "cannot set the usage counters");
	return 0;
}

static int orphan_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct fix_arg *a = arg;
	struct inode_rec r;
	struct dent d;
	int n, rc;

	UNUSED(m);
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc;
	if (S_ISDIR(r.a.mode))
		return -EISDIR; /* the trash holds no directories */
	n = snprintf(a->name, a->name_n, "0-%llu-%lld-orphan",
		     (unsigned long long)a->ino,
		     (long long)(meta_now_ns() / 1000000000LL));
	if (n < 0 || (size_t)n >= a->name_n)
		return -ENAMETOOLONG;
	rc = dent_get(t, META_TRASH_INO, a->name, (size_t)n, &d);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	d.ino = a->ino;
	d.type = r.a.mode & S_IFMT;
	d.cookie = a->ino;
	rc = dent_put(t, META_TRASH_INO, a->name, (size_t)n, &d);
	r.a.nlink = 1;
	r.a.parent = 0;
	if (rc == 0)
		rc = inode_put(t, &r);
	return rc;
}

int meta_orphan_to_trash(struct meta *m, uint64_t ino, char *name, size_t n)
{
	struct fix_arg a = {ino, NULL, name, n};
	int rc = meta_txn(m, true, orphan_fn, &a);

	if (rc < 0 && rc != -EISDIR)
		return log_fail(rc,
				"cannot move orphan inode %llu to the trash",
				(unsigned long long)ino);
	return rc;
}
