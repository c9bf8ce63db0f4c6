/*
 * rename.c - rename(2) and renameat2 with RENAME_NOREPLACE and
 * RENAME_EXCHANGE, in one transaction, with the checks in the order Linux
 * makes them (fs/namei.c do_renameat2, vfs_rename, may_delete, may_create):
 *
 *   flags (-EINVAL), names (-EINVAL, -ENAMETOOLONG, "." / ".." -EBUSY),
 *   both parents (-ENOENT, -ENOTDIR, search -EACCES), the source entry
 *   (-ENOENT), NOREPLACE with a target (-EEXIST), EXCHANGE without one
 *   (-ENOENT), source an ancestor of the new parent (-EINVAL), target an
 *   ancestor of the old parent (-ENOTEMPTY, or -EINVAL with EXCHANGE), the
 *   same inode under both names (success, nothing changes), may_delete on
 *   the source (-EACCES, sticky -EPERM), may_create or may_delete on the
 *   target (-EACCES, -EPERM, -ENOTDIR, -EISDIR), write permission on a
 *   directory that changes parent (its ".." changes; -EACCES), and a
 *   non-empty target directory (-ENOTEMPTY).
 *
 * Effects: a directory moving between parents moves one link from the old
 * parent to the new one; a replaced directory takes its link with it; a
 * replaced file loses one link (meta_drop_replaced decides its fate: an
 * inode this mount's kernel still references is kept with nlink 0 until
 * it is forgotten, so an open racing the rename never gets ENOENT).  Both
 * parents get mtime and ctime, each moved inode ctime.  Within one
 * directory the entry keeps its readdir cookie (a listing sees it once);
 * between directories it gets a new cookie in the new one.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/crash.h"
#include "util/log.h"

#define RENAME_DEPTH_MAX 65536

struct rename_arg {
	const struct meta_cred *c;
	uint64_t sp_ino, dp_ino; /* old and new parent */
	const char *sname, *dname;
	size_t slen, dlen;
	uint32_t flags;
	struct meta_effects e;
};

/* The state one attempt loads. */
struct rename_st {
	struct inode_rec sp_rec, dp_rec;
	struct inode_rec *sp, *dp; /* dp == sp when one parent */
	struct dent sd, td;
	struct inode_rec sr, tr;
	bool have_t, src_dir, tgt_dir;
};

/* 1 when @anc is @ino or one of its ancestors. */
static int is_ancestor(struct kv_txn *t, uint64_t anc, uint64_t ino)
{
	struct inode_rec r;
	int rc;

	for (int depth = 0; depth < RENAME_DEPTH_MAX; depth++) {
		if (ino == anc)
			return 1;
		if (ino == TESSERA_ROOT_INO)
			return 0;
		rc = inode_get(t, ino, &r);
		if (rc < 0)
			return rc;
		ino = r.a.parent;
	}
	return log_fail(-EIO, "directory %llu: parent chain loops",
			(unsigned long long)ino);
}

static bool reserved(uint64_t parent, const char *name, size_t len)
{
	return parent == TESSERA_ROOT_INO && len == strlen(META_TRASH_NAME) &&
	       memcmp(name, META_TRASH_NAME, len) == 0;
}

static int load(struct kv_txn *t, struct rename_arg *a, struct rename_st *s)
{
	int rc;

	rc = inode_get(t, a->sp_ino, &s->sp_rec);
	if (rc == 0)
		rc = perm_lookup_t(t, a->c, &s->sp_rec.a);
	if (rc < 0)
		return rc;
	s->sp = &s->sp_rec;
	s->dp = &s->sp_rec;
	if (a->dp_ino != a->sp_ino) {
		rc = inode_get(t, a->dp_ino, &s->dp_rec);
		if (rc == 0)
			rc = perm_lookup_t(t, a->c, &s->dp_rec.a);
		if (rc < 0)
			return rc;
		s->dp = &s->dp_rec;
	}
	if (name_is_dot(a->sname, a->slen) || name_is_dot(a->dname, a->dlen))
		return -EBUSY;
	if (reserved(a->sp_ino, a->sname, a->slen) ||
	    reserved(a->dp_ino, a->dname, a->dlen) ||
	    a->dp_ino == META_TRASH_INO ||
	    (a->sp_ino == META_TRASH_INO && (a->flags & META_RENAME_EXCHANGE)))
		return -EPERM;
	rc = dent_get(t, a->sp_ino, a->sname, a->slen, &s->sd);
	if (rc == 0)
		rc = dent_get(t, a->dp_ino, a->dname, a->dlen, &s->td);
	s->have_t = rc == 0;
	if (rc == -ENOENT)
		rc = 0;
	if (rc < 0)
		return rc;
	if (s->have_t && (a->flags & META_RENAME_NOREPLACE))
		return -EEXIST;
	if (!s->have_t && (a->flags & META_RENAME_EXCHANGE))
		return -ENOENT;
	rc = inode_get(t, s->sd.ino, &s->sr);
	if (rc == 0 && s->have_t)
		rc = inode_get(t, s->td.ino, &s->tr);
	s->src_dir = S_ISDIR(s->sr.a.mode);
	s->tgt_dir = s->have_t && S_ISDIR(s->tr.a.mode);
	return rc;
}

/* Ancestry and permission checks; 1: same inode, nothing to do. */
static int check(struct kv_txn *t, struct rename_arg *a, struct rename_st *s)
{
	bool xchg = a->flags & META_RENAME_EXCHANGE;
	bool moved = a->sp_ino != a->dp_ino;
	int rc = 0;

	if (s->src_dir && moved) {
		rc = is_ancestor(t, s->sd.ino, a->dp_ino);
		if (rc > 0)
			return -EINVAL;
	}
	if (rc == 0 && s->tgt_dir && moved) {
		rc = is_ancestor(t, s->td.ino, a->sp_ino);
		if (rc > 0)
			return xchg ? -EINVAL : -ENOTEMPTY;
	}
	if (rc < 0)
		return rc;
	if (s->have_t && s->sd.ino == s->td.ino)
		return 1;
	rc = perm_may_delete_t(t, a->c, &s->sp->a, &s->sr.a);
	if (rc == 0 && !s->have_t)
		rc = perm_check_t(t, a->c, &s->dp->a,
				  META_MAY_WRITE | META_MAY_EXEC);
	else if (rc == 0)
		rc = perm_may_delete_t(t, a->c, &s->dp->a, &s->tr.a);
	if (rc < 0)
		return rc;
	if (s->have_t && !xchg && s->src_dir && !s->tgt_dir)
		return -ENOTDIR;
	if (s->have_t && !xchg && !s->src_dir && s->tgt_dir)
		return -EISDIR;
	if (moved && s->src_dir)
		rc = perm_check_t(t, a->c, &s->sr.a, META_MAY_WRITE);
	if (rc == 0 && moved && xchg && s->tgt_dir)
		rc = perm_check_t(t, a->c, &s->tr.a, META_MAY_WRITE);
	if (rc == 0 && s->tgt_dir && !xchg) {
		rc = dir_has_entries(t, s->td.ino);
		if (rc > 0)
			rc = -ENOTEMPTY;
	}
	return rc;
}

/* Drop the replaced target (its entry is already gone). */
static int drop_target(struct meta *m, struct kv_txn *t, struct rename_arg *a,
		       struct rename_st *s)
{
	if (!s->tgt_dir)
		return meta_drop_replaced(m, t, a->dp_ino, a->dname, a->dlen,
					  &s->tr, &a->e);
	s->dp->a.nlink--;
	return meta_drop_dir(m, t, &s->tr, true, &a->e);
}

/*
 * Quotas (quota.c): what @r (a name of it) takes along when it leaves
 * directory @from for @to.  ->moves false: a file whose home is elsewhere
 * stays charged there.  ->src / ->dst: the directories whose quota paths
 * lose / gain the usage (0: none, by the inode flags).  A directory's
 * usage is its own quota's, or a walk of its tree, only when a quota is
 * on either side; the walk flags the tree when it enters a quota's.
 */
struct moved {
	bool moves;
	uint64_t src, dst;
	int64_t space, inodes;
};

static int moved_usage(struct kv_txn *t, const struct inode_rec *r,
		       const struct inode_rec *from, const struct inode_rec *to,
		       struct moved *mv)
{
	memset(mv, 0, sizeof(*mv));
	mv->dst = to->quota ? to->a.ino : 0;
	if (!S_ISDIR(r->a.mode)) {
		mv->moves = r->a.parent == from->a.ino || r->a.parent == 0;
		mv->src = r->a.parent && r->quota ? r->a.parent : 0;
		mv->space = meta_space_of(&r->a);
		mv->inodes = 1;
		return 0;
	}
	mv->moves = true;
	mv->src = from->quota ? from->a.ino : 0;
	if (!mv->src && !mv->dst)
		return 0;
	return quota_dir_usage(t, r, mv->dst != 0, &mv->space, &mv->inodes);
}

/* After the move: @r's home and flag. */
static void moved_set(struct inode_rec *r, const struct inode_rec *to,
		      const struct moved *mv)
{
	if (!mv->moves)
		return;
	r->a.parent = to->a.ino;
	if (!S_ISDIR(r->a.mode))
		r->quota = to->quota;
	else if (to->quota)
		r->quota = true;
}

/* @r moves from @from to @to: its usage follows it (-EDQUOT). */
static int move_home(struct kv_txn *t, struct inode_rec *r,
		     const struct inode_rec *from, const struct inode_rec *to)
{
	struct moved mv;
	int rc = moved_usage(t, r, from, to, &mv);

	if (rc == 0 && mv.moves)
		rc = quota_move(t, mv.src, mv.dst, mv.space, mv.inodes, true);
	if (rc == 0)
		moved_set(r, to, &mv);
	return rc;
}

/*
 * RENAME_EXCHANGE between two directories: both leave first, then both
 * enter, each checked, so a swap of two items of equal size in a full
 * quota passes.
 */
static int exchange_homes(struct kv_txn *t, struct rename_st *s)
{
	struct moved m1, m2;
	int rc;

	rc = moved_usage(t, &s->sr, s->sp, s->dp, &m1);
	if (rc == 0)
		rc = moved_usage(t, &s->tr, s->dp, s->sp, &m2);
	if (rc == 0 && m1.moves)
		rc = quota_charge(NULL, t, m1.src, -m1.space, -m1.inodes,
				  false);
	if (rc == 0 && m2.moves)
		rc = quota_charge(NULL, t, m2.src, -m2.space, -m2.inodes,
				  false);
	if (rc == 0 && m1.moves)
		rc = quota_charge(NULL, t, m1.dst, m1.space, m1.inodes, true);
	if (rc == 0 && m2.moves)
		rc = quota_charge(NULL, t, m2.dst, m2.space, m2.inodes, true);
	moved_set(&s->sr, s->dp, &m1);
	moved_set(&s->tr, s->sp, &m2);
	return rc;
}

static int do_move(struct meta *m, struct kv_txn *t, struct rename_arg *a,
		   struct rename_st *s)
{
	struct dent d = s->sd;
	int rc;

	rc = dent_del(t, a->sp_ino, a->sname, a->slen, s->sd.cookie);
	if (rc == 0 && s->have_t)
		rc = dent_del(t, a->dp_ino, a->dname, a->dlen, s->td.cookie);
	if (rc == 0 && s->have_t)
		rc = drop_target(m, t, a, s);
	if (rc < 0)
		return rc;
	if (a->sp_ino != a->dp_ino) {
		d.cookie = s->dp->next_cookie++;
		rc = move_home(t, &s->sr, s->sp, s->dp);
		if (rc < 0)
			return rc;
		if (s->src_dir) {
			s->sp->a.nlink--;
			s->dp->a.nlink++;
		}
	}
	return dent_put(t, a->dp_ino, a->dname, a->dlen, &d);
}

static int do_exchange(struct kv_txn *t, struct rename_arg *a,
		       struct rename_st *s)
{
	struct dent d1 = s->td, d2 = s->sd;
	int rc;

	d1.cookie = s->sd.cookie;
	d2.cookie = s->td.cookie;
	rc = dent_put(t, a->sp_ino, a->sname, a->slen, &d1);
	if (rc == 0)
		rc = dent_put(t, a->dp_ino, a->dname, a->dlen, &d2);
	if (rc == 0 && a->sp_ino != a->dp_ino)
		rc = exchange_homes(t, s);
	if (a->sp_ino != a->dp_ino && s->src_dir) {
		s->sp->a.nlink--;
		s->dp->a.nlink++;
	}
	if (a->sp_ino != a->dp_ino && s->tgt_dir) {
		s->dp->a.nlink--;
		s->sp->a.nlink++;
	}
	s->tr.a.ctime_ns = meta_now_ns();
	if (rc == 0)
		rc = inode_put(t, &s->tr);
	return rc;
}

static int rename_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct rename_arg *a = arg;
	struct rename_st s;
	int64_t now = meta_now_ns();
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	memset(&s, 0, sizeof(s));
	rc = load(t, a, &s);
	if (rc == 0)
		rc = check(t, a, &s);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (a->flags & META_RENAME_EXCHANGE)
		rc = do_exchange(t, a, &s);
	else
		rc = do_move(m, t, a, &s);
	s.sr.a.ctime_ns = now;
	s.sp->a.mtime_ns = s.sp->a.ctime_ns = now;
	s.dp->a.mtime_ns = s.dp->a.ctime_ns = now;
	if (rc == 0)
		rc = inode_put(t, &s.sr);
	if (rc == 0)
		rc = inode_put(t, s.sp);
	if (rc == 0 && s.dp != s.sp)
		rc = inode_put(t, s.dp);
	if (rc == 0)
		CRASH_POINT(CRASH_RENAME_BEFORE_COMMIT);
	return rc;
}

int meta_rename(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name, uint64_t newparent, const char *newname,
		uint32_t flags)
{
	struct rename_arg a = {.c = c,
			       .sp_ino = parent,
			       .dp_ino = newparent,
			       .sname = name,
			       .dname = newname,
			       .flags = flags};
	int rc;

	if (flags & ~(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & META_RENAME_NOREPLACE) && (flags & META_RENAME_EXCHANGE))
		return -EINVAL;
	rc = name_check(name, &a.slen);
	if (rc == 0)
		rc = name_check(newname, &a.dlen);
	if (rc == 0)
		rc = meta_txn(m, true, rename_fn, &a);
	if (rc == 0) {
		CRASH_POINT(CRASH_RENAME_AFTER_COMMIT);
		meta_apply_effects(m, &a.e);
		meta_after_commit(m, &a.e);
	}
	return rc;
}
