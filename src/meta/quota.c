/*
 * quota.c - directory quotas (DESIGN section 8): limits on the space and
 * the inodes below a directory, and their usage, kept exact in the same
 * transaction as every change.
 *
 * Records:
 *   KV_QUOTA   key ino(8) -> space limit(8) inode limit(8) used space(8)
 *                            used inodes(8)   (limits: 0 = none)
 *   KV_COUNTER "quotas"   -> number of KV_QUOTA records
 *
 * Charging rule.  Every inode counts once, to one directory, its "home":
 *   - a directory: its parent (a.parent);
 *   - a non-directory: a.parent too (meta_int.h invariant 4), the
 *     directory it was created in or last renamed into while it had its
 *     home name.  link(2) adds a name but no usage (the file counts once).
 *     When the home name goes (unlink, rename away of another name does
 *     not count) and other names are left, or the last name goes to the
 *     trash, or the file lives on unlinked while open, the usage leaves the
 *     home's quotas and a.parent becomes 0: the file is "homeless" and
 *     counts nowhere until a rename or link gives it a home again (it is
 *     then charged there).  Files written before this rule existed carry
 *     parent 0 too; `quota set` and `quota check --repair` adopt those
 *     with a single name into the directory that holds it.
 * An inode counts 1 inode and meta_space_of() bytes (length rounded up to
 * 4 KiB, 4 KiB for a directory): the volume's usage counts the same way.
 * The usage of a quota on directory Q is the sum over the inodes whose
 * home is Q or below Q; Q itself is not part of it (a quota of 10 inodes
 * holds 10 names).  Nested quotas are each charged: a change is checked
 * against, and added to, every quota on the path from the home up to (not
 * including) the root, which takes no quota (the volume's --capacity and
 * --inodes are its limits).
 *
 * Checks: a change that adds space or inodes fails with -EDQUOT when any
 * quota on the path would pass its limit (used + delta > limit), before
 * the volume's -ENOSPC check, as ext4 checks dquot before free blocks.
 * Nothing that frees usage is ever refused.  A rename checks only the
 * quotas the moved tree enters (those on both paths see no change).
 *
 * Cost: an inode record carries a flag (inode_rec.quota) telling whether
 * a quota may be above it: set on the whole tree by quota set and check
 * --repair, inherited by what is created, cloned, linked or restored
 * below a flagged directory, and set on a tree renamed into a flagged one
 * (by the walk that counts its usage).  Invariant: a quota's tree is all
 * flagged, so an unflagged directory has no quota above it.  A change to
 * an unflagged inode reads nothing more than before.  A flagged one reads
 * counter "quotas" (a pre-filter for flags left behind: a tree moved out,
 * a quota deleted; such flags only cost reads) and the home's ancestors
 * up to the first unflagged one (an inode and a quota get per level).  A
 * moved directory's usage is its own quota's when it has one, else a walk
 * of its tree in the rename txn (only when a quota is on either side).
 *
 * Exactness across mounts: usage changes inside the txn that makes the
 * change, so two mounts writing under one quota conflict and retry (kv.h)
 * rather than both passing the limit.  A crash cannot leave a usage half
 * applied; a volume whose records were changed behind meta/'s back is
 * fixed by meta_quota_check with repair.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

#define QUOTA_REC_LEN 32
#define QUOTA_DEPTH_MAX 4096
#define QUOTA_COUNTER "quotas"
#define QUOTA_CHAIN_MAX 64 /* nested quotas on one path */

/* ---- records ---- */

static void quota_encode(const struct meta_quota *q,
			 unsigned char v[QUOTA_REC_LEN])
{
	put_be64(v, q->space_limit);
	put_be64(v + 8, q->inodes_limit);
	put_be64(v + 16, (uint64_t)q->used_space);
	put_be64(v + 24, (uint64_t)q->used_inodes);
}

int quota_decode(const void *key, size_t klen, const void *val, size_t vlen,
		 struct meta_quota *q)
{
	const unsigned char *p = val;

	memset(q, 0, sizeof(*q));
	if (klen == 8)
		q->ino = get_be64(key);
	if (klen != 8 || vlen < QUOTA_REC_LEN)
		return -EIO;
	q->space_limit = get_be64(p);
	q->inodes_limit = get_be64(p + 8);
	q->used_space = (int64_t)get_be64(p + 16);
	q->used_inodes = (int64_t)get_be64(p + 24);
	return 0;
}

/* -ENOENT: no quota on @ino; -EIO: corrupt (logged). */
static int quota_get(struct kv_txn *t, uint64_t ino, struct meta_quota *q)
{
	struct buf v = BUF_INIT;
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_get(t, KV_QUOTA, k, sizeof(k), &v);
	if (rc == 0 && v.len < QUOTA_REC_LEN)
		rc = log_fail(-EIO, "corrupt quota record of directory %llu",
			      (unsigned long long)ino);
	if (rc == 0) {
		const unsigned char *p = (const unsigned char *)v.data;

		q->ino = ino;
		q->space_limit = get_be64(p);
		q->inodes_limit = get_be64(p + 8);
		q->used_space = (int64_t)get_be64(p + 16);
		q->used_inodes = (int64_t)get_be64(p + 24);
	}
	buf_release(&v);
	return rc;
}

static int quota_put(struct kv_txn *t, const struct meta_quota *q)
{
	unsigned char k[8], v[QUOTA_REC_LEN];

	key_ino(k, q->ino);
	quota_encode(q, v);
	return kv_put(t, KV_QUOTA, k, sizeof(k), v, sizeof(v));
}

/* The number of quota records (counter "quotas"; missing = 0); noted in
 * @m (may be NULL) for meta_check_grow. */
static int quota_count(struct meta *m, struct kv_txn *t, int64_t *n)
{
	struct buf v = BUF_INIT;
	int rc =
		kv_get(t, KV_COUNTER, QUOTA_COUNTER, strlen(QUOTA_COUNTER), &v);

	*n = 0;
	if (rc == 0 && v.len == 8)
		*n = (int64_t)get_be64((const unsigned char *)v.data);
	buf_release(&v);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0 && m) {
		pthread_mutex_lock(&m->lock);
		m->quota_none = *n <= 0;
		m->quota_seen_ns = meta_now_ns();
		pthread_mutex_unlock(&m->lock);
	}
	return rc;
}

/* ---- the path of quotas above a directory ---- */

struct quota_chain {
	struct meta_quota q[QUOTA_CHAIN_MAX];
	size_t n;
};

/*
 * The quotas on the path from @dir (included) up to the root (excluded),
 * nearest first.  @dir 0 (homeless) or the trash: none.  The walk stops at
 * the first directory without the quota flag: nothing above it has a quota
 * (flags are set on a whole tree when it gains a quota, and inherited).
 */
static int chain_load(struct kv_txn *t, uint64_t dir, struct quota_chain *c)
{
	struct inode_rec r;
	int rc;

	c->n = 0;
	for (int depth = 0; depth < QUOTA_DEPTH_MAX; depth++) {
		if (dir == 0 || dir == TESSERA_ROOT_INO ||
		    dir == META_TRASH_INO)
			return 0;
		rc = inode_get(t, dir, &r);
		if (rc == -ENOENT)
			return 0; /* a removed home: nothing above it */
		if (rc < 0)
			return rc;
		if (!S_ISDIR(r.a.mode))
			return log_fail(-EIO,
					"inode %llu on a parent chain is "
					"not a directory",
					(unsigned long long)dir);
		if (!r.quota)
			return 0;
		rc = quota_get(t, dir, &c->q[c->n]);
		if (rc == 0 && ++c->n == QUOTA_CHAIN_MAX)
			return log_fail(-EIO,
					"more than %d nested quotas "
					"above directory %llu",
					QUOTA_CHAIN_MAX,
					(unsigned long long)dir);
		if (rc < 0 && rc != -ENOENT)
			return rc;
		dir = r.a.parent;
	}
	return log_fail(-EIO, "directory %llu: parent chain loops",
			(unsigned long long)dir);
}

static bool chain_has(const struct quota_chain *c, uint64_t ino)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->q[i].ino == ino)
			return true;
	return false;
}

/* -EDQUOT if adding @space / @inodes to @q passes one of its limits. */
static int quota_fits(const struct meta_quota *q, int64_t space, int64_t inodes)
{
	if (space > 0 && q->space_limit &&
	    q->used_space + space > (int64_t)q->space_limit)
		return -EDQUOT;
	if (inodes > 0 && q->inodes_limit &&
	    q->used_inodes + inodes > (int64_t)q->inodes_limit)
		return -EDQUOT;
	return 0;
}

/*
 * Add @space / @inodes to the quotas of @to not in @skip (may be NULL),
 * checking limits first when @check.
 */
static int chain_add(struct kv_txn *t, struct quota_chain *to,
		     const struct quota_chain *skip, int64_t space,
		     int64_t inodes, bool check)
{
	int rc;

	for (size_t i = 0; check && i < to->n; i++) {
		if (skip && chain_has(skip, to->q[i].ino))
			continue;
		rc = quota_fits(&to->q[i], space, inodes);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < to->n; i++) {
		if (skip && chain_has(skip, to->q[i].ino))
			continue;
		to->q[i].used_space += space;
		to->q[i].used_inodes += inodes;
		rc = quota_put(t, &to->q[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int quota_charge(struct meta *m, struct kv_txn *t, uint64_t dir, int64_t space,
		 int64_t inodes, bool check)
{
	struct quota_chain *c;
	int64_t n;
	int rc;

	if (dir == 0 || (space == 0 && inodes == 0))
		return 0;
	rc = quota_count(m, t, &n);
	if (rc < 0 || n <= 0)
		return rc;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = chain_load(t, dir, c);
	if (rc == 0)
		rc = chain_add(t, c, NULL, space, inodes, check);
	free(c);
	return rc;
}

int quota_move(struct kv_txn *t, uint64_t from, uint64_t to, int64_t space,
	       int64_t inodes, bool check)
{
	struct quota_chain *c;
	int64_t n;
	int rc;

	if (from == to || (space == 0 && inodes == 0))
		return 0;
	rc = quota_count(NULL, t, &n);
	if (rc < 0 || n <= 0)
		return rc;
	c = malloc(2 * sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = chain_load(t, from, &c[0]);
	if (rc == 0)
		rc = chain_load(t, to, &c[1]);
	/* entering first: a refused move changes nothing */
	if (rc == 0)
		rc = chain_add(t, &c[1], &c[0], space, inodes, check);
	if (rc == 0)
		rc = chain_add(t, &c[0], &c[1], -space, -inodes, false);
	free(c);
	return rc;
}

int quota_any(struct kv_txn *t)
{
	int64_t n;
	int rc = quota_count(NULL, t, &n);

	return rc < 0 ? rc : n > 0;
}

int quota_forget_dir(struct kv_txn *t, uint64_t ino)
{
	struct meta_quota q;
	unsigned char k[8];
	int64_t n, out;
	int rc = quota_count(NULL, t, &n);

	if (rc < 0 || n <= 0)
		return rc;
	rc = quota_get(t, ino, &q);
	if (rc == -ENOENT)
		return 0;
	key_ino(k, ino);
	if (rc == 0)
		rc = kv_del(t, KV_QUOTA, k, sizeof(k));
	if (rc == 0)
		rc = kv_incr(t, QUOTA_COUNTER, -1, &out);
	return rc;
}

/* ---- usage of a tree ---- */

struct walk {
	struct kv_txn *t;
	bool adopt;
	bool flag; /* set inode_rec.quota on what it counts */
	int64_t space, inodes;
	uint64_t *stack; /* directories still to list */
	size_t n, cap;
	uint64_t dir;
	int64_t adopted;
	/* hard-linked files counted in w.dir: a file with two names in its
	 * home counts once (open addressing; reset per directory) */
	uint64_t *seen;
	size_t nseen, cseen; /* cseen: 0 or a power of two */
};

/* 1 when @ino was seen in this directory already, else note it: 0. */
static int walk_seen(struct walk *w, uint64_t ino)
{
	size_t i;

	if (2 * (w->nseen + 1) > w->cseen) {
		size_t c = w->cseen ? w->cseen * 2 : 64;
		uint64_t *n = calloc(c, sizeof(*n)), *old = w->seen;
		size_t oc = w->cseen;

		if (!n)
			return -ENOMEM;
		w->seen = n;
		w->cseen = c;
		w->nseen = 0;
		for (size_t j = 0; j < oc; j++)
			if (old[j])
				walk_seen(w, old[j]);
		free(old);
	}
	for (i = (ino * 0x9e3779b97f4a7c15ULL) >> 7 & (w->cseen - 1);
	     w->seen[i]; i = (i + 1) & (w->cseen - 1))
		if (w->seen[i] == ino)
			return 1;
	w->seen[i] = ino;
	w->nseen++;
	return 0;
}

static int walk_push(struct walk *w, uint64_t ino)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		uint64_t *s = realloc(w->stack, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		w->stack = s;
		w->cap = cap;
	}
	w->stack[w->n++] = ino;
	return 0;
}

static int walk_entry(void *arg, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	struct walk *w = arg;
	struct inode_rec r;
	uint64_t ino;
	int rc;

	UNUSED(key);
	if (klen <= 8 || vlen < DENT_VAL_LEN)
		return log_fail(-EIO, "corrupt entry in directory %llu",
				(unsigned long long)w->dir);
	ino = get_be64(val);
	rc = inode_get(w->t, ino, &r);
	if (rc == -ENOENT)
		return 0; /* a dangling entry counts nothing (fsck's) */
	if (rc < 0)
		return rc;
	if (r.a.parent == 0 && r.a.nlink == 1 && w->adopt &&
	    !S_ISDIR(r.a.mode)) {
		/* charged to the quotas above too: they did not count it */
		r.a.parent = w->dir;
		r.quota = true;
		rc = inode_put(w->t, &r);
		if (rc == 0)
			rc = quota_charge(NULL, w->t, w->dir,
					  meta_space_of(&r.a), 1, false);
		if (rc < 0)
			return rc;
		w->adopted++;
	}
	if (!S_ISDIR(r.a.mode) && r.a.parent != w->dir)
		return 0; /* counted at its home, if any */
	if (!S_ISDIR(r.a.mode) && r.a.nlink > 1) {
		rc = walk_seen(w, ino); /* another name here counted it */
		if (rc)
			return rc < 0 ? rc : 0;
	}
	w->space += meta_space_of(&r.a);
	w->inodes++;
	if (w->flag && !r.quota) {
		r.quota = true;
		rc = inode_put(w->t, &r);
		if (rc < 0)
			return rc;
	}
	return S_ISDIR(r.a.mode) ? walk_push(w, ino) : 0;
}

int quota_tree_usage(struct kv_txn *t, uint64_t dir, bool adopt, bool flag,
		     int64_t *space, int64_t *inodes, int64_t *adopted)
{
	struct walk w = {.t = t, .adopt = adopt, .flag = flag || adopt};
	unsigned char pre[8];
	int rc = walk_push(&w, dir);

	while (rc == 0 && w.n > 0) {
		w.dir = w.stack[--w.n];
		if (w.nseen) {
			memset(w.seen, 0, w.cseen * sizeof(*w.seen));
			w.nseen = 0;
		}
		key_ino(pre, w.dir);
		rc = kv_scan(t, KV_DENTRY, pre, sizeof(pre), NULL, 0, 0,
			     walk_entry, &w);
	}
	free(w.stack);
	free(w.seen);
	if (rc == 0) {
		*space = w.space;
		*inodes = w.inodes;
		if (adopted)
			*adopted = w.adopted;
	}
	return rc;
}

int quota_dir_usage(struct kv_txn *t, const struct inode_rec *d, bool flag,
		    int64_t *space, int64_t *inodes)
{
	struct meta_quota q;
	int rc = quota_get(t, d->a.ino, &q);

	if (rc == 0) {
		*space = q.used_space;
		*inodes = q.used_inodes;
	} else if (rc == -ENOENT) {
		rc = quota_tree_usage(t, d->a.ino, false, flag, space, inodes,
				      NULL);
	}
	if (rc == 0) {
		*space += meta_space_of(&d->a);
		*inodes += 1;
	}
	return rc;
}

/* ---- the API (meta.h) ---- */

/* A quota's directory: an existing directory other than root and trash. */
static int quota_target(struct kv_txn *t, uint64_t ino)
{
	struct inode_rec r;
	int rc;

	if (ino == TESSERA_ROOT_INO || ino == META_TRASH_INO)
		return -EINVAL;
	rc = inode_get(t, ino, &r);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(r.a.mode))
		return -ENOTDIR;
	return r.a.nlink ? 0 : -ENOENT;
}

static int counter_add(struct kv_txn *t, int64_t d)
{
	int64_t out;

	return kv_incr(t, QUOTA_COUNTER, d, &out);
}

/* Mark directory @ino: what is created below it walks the quota path. */
static int flag_dir(struct kv_txn *t, uint64_t ino)
{
	struct inode_rec r;
	int rc = inode_get(t, ino, &r);

	if (rc < 0 || r.quota)
		return rc;
	r.quota = true;
	return inode_put(t, &r);
}

struct set_arg {
	uint64_t ino;
	uint32_t which;
	uint64_t space, inodes;
	struct meta_quota *out;
};

static int set_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct set_arg *a = arg;
	struct meta_quota q;
	int rc;

	UNUSED(m);
	rc = quota_target(t, a->ino);
	if (rc == 0)
		rc = quota_get(t, a->ino, &q);
	if (rc == -ENOENT) {
		memset(&q, 0, sizeof(q));
		q.ino = a->ino;
		rc = quota_tree_usage(t, a->ino, true, true, &q.used_space,
				      &q.used_inodes, NULL);
		if (rc == 0)
			rc = counter_add(t, 1);
		if (rc == 0)
			rc = flag_dir(t, a->ino);
	}
	if (rc < 0)
		return rc;
	if (a->which & META_QUOTA_SPACE)
		q.space_limit = a->space;
	if (a->which & META_QUOTA_INODES)
		q.inodes_limit = a->inodes;
	rc = quota_put(t, &q);
	if (rc == 0 && a->out)
		*a->out = q;
	return rc;
}

int quota_restore(struct kv_txn *t, uint64_t ino, uint64_t space_limit,
		  uint64_t inodes_limit)
{
	struct meta_quota q = {ino, space_limit, inodes_limit, 0, 0};
	int rc = quota_target(t, ino);

	if (rc == 0)
		rc = quota_tree_usage(t, ino, false, true, &q.used_space,
				      &q.used_inodes, NULL);
	if (rc == 0)
		rc = flag_dir(t, ino);
	return rc ? rc : quota_put(t, &q);
}

int meta_quota_set(struct meta *m, uint64_t ino, uint32_t which,
		   uint64_t space_limit, uint64_t inodes_limit,
		   struct meta_quota *out)
{
	struct set_arg a = {ino, which, space_limit, inodes_limit, out};
	int rc;

	if (which & ~(uint32_t)(META_QUOTA_SPACE | META_QUOTA_INODES) ||
	    space_limit > INT64_MAX || inodes_limit > INT64_MAX)
		return -EINVAL;
	rc = meta_txn(m, true, set_fn, &a);
	if (rc == 0) { /* this mount's write(2) checks see it at once */
		pthread_mutex_lock(&m->lock);
		m->quota_none = false;
		pthread_mutex_unlock(&m->lock);
	}
	return rc;
}

struct get_arg {
	uint64_t ino;
	struct meta_quota *out;
};

static int get_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct get_arg *a = arg;

	UNUSED(m);
	return quota_get(t, a->ino, a->out);
}

int meta_quota_get(struct meta *m, uint64_t ino, struct meta_quota *out)
{
	struct get_arg a = {ino, out};

	return meta_txn(m, false, get_fn, &a);
}

static int del_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	uint64_t ino = *(uint64_t *)arg;
	struct meta_quota q;
	unsigned char k[8];
	int rc;

	UNUSED(m);
	rc = quota_get(t, ino, &q);
	key_ino(k, ino);
	if (rc == 0)
		rc = kv_del(t, KV_QUOTA, k, sizeof(k));
	if (rc == 0)
		rc = counter_add(t, -1);
	return rc;
}

int meta_quota_delete(struct meta *m, uint64_t ino)
{
	return meta_txn(m, true, del_fn, &ino);
}

struct list_arg {
	struct meta_quota *v;
	size_t n, cap;
};

static int list_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct list_arg *a = arg;
	struct meta_quota q;

	if (quota_decode(key, klen, val, vlen, &q) < 0)
		return log_fail(-EIO, "corrupt quota record");
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct meta_quota *v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = q;
	return 0;
}

static int list_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct list_arg *a = arg;

	UNUSED(m);
	a->n = 0;
	return kv_scan(t, KV_QUOTA, NULL, 0, NULL, 0, 0, list_one, a);
}

int meta_quota_list(struct meta *m, struct meta_quota **out, size_t *n)
{
	struct list_arg a = {NULL, 0, 0};
	int rc = meta_txn(m, false, list_fn, &a);

	if (rc < 0) {
		free(a.v);
		return rc;
	}
	*out = a.v;
	*n = a.n;
	return 0;
}

struct check_arg {
	uint64_t ino;
	bool repair;
	struct meta_quota_check *out;
};

static int check_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct check_arg *a = arg;
	struct meta_quota_check *c = a->out;
	int rc;

	UNUSED(m);
	memset(c, 0, sizeof(*c));
	rc = quota_get(t, a->ino, &c->q);
	if (rc == 0)
		rc = quota_tree_usage(t, a->ino, a->repair, a->repair,
				      &c->real_space, &c->real_inodes,
				      &c->adopted);
	if (rc < 0)
		return rc;
	if (!a->repair || (c->real_space == c->q.used_space &&
			   c->real_inodes == c->q.used_inodes && !c->adopted))
		return 0;
	c->q.used_space = c->real_space;
	c->q.used_inodes = c->real_inodes;
	c->fixed = true;
	return quota_put(t, &c->q);
}

int meta_quota_check(struct meta *m, uint64_t ino, bool repair,
		     struct meta_quota_check *out)
{
	struct check_arg a = {ino, repair, out};

	return meta_txn(m, repair, check_fn, &a);
}

struct path_arg {
	uint64_t ino;
	char *buf;
	size_t n;
};

static int path_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct path_arg *a = arg;

	UNUSED(m);
	return meta_dir_path_t(t, a->ino, a->buf, a->n);
}

int meta_dir_path(struct meta *m, uint64_t ino, char *buf, size_t n)
{
	struct path_arg a = {ino, buf, n};

	return meta_txn(m, false, path_fn, &a);
}

/* ---- the advisory check of write(2) ---- */

#define QUOTA_NONE_TTL_NS 1000000000LL

static int64_t space4k(uint64_t len)
{
	return (int64_t)((len + 4095) & ~4095ULL);
}

/* The largest end a file of @len bytes may grow to with @room bytes. */
static uint64_t end_within(uint64_t len, int64_t room)
{
	uint64_t s = (uint64_t)space4k(len);

	if (room <= 0)
		return MAX(len, s);
	if ((uint64_t)room > UINT64_MAX - s)
		return UINT64_MAX;
	return (s + (uint64_t)room) & ~4095ULL;
}

struct grow_arg {
	uint64_t ino;
	uint64_t len; /* in: the caller's; out: the record's */
	int64_t room; /* smallest room of the quotas above, INT64_MAX */
	bool none;    /* no quota on the volume */
};

static int grow_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct grow_arg *a = arg;
	struct quota_chain *c;
	struct inode_rec r;
	int rc;

	UNUSED(m);
	a->room = INT64_MAX;
	rc = quota_any(t);
	a->none = rc == 0;
	if (rc <= 0)
		return rc;
	rc = inode_get(t, a->ino, &r);
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	a->len = r.a.length; /* what the quotas were charged for */
	if (!r.quota)
		return 0;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = chain_load(t, r.a.parent, c);
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		int64_t left;

		if (!c->q[i].space_limit)
			continue;
		left = (int64_t)c->q[i].space_limit - c->q[i].used_space;
		a->room = MIN(a->room, left);
	}
	free(c);
	return rc;
}

int meta_check_grow(struct meta *m, uint64_t ino, uint64_t len, uint64_t end,
		    uint64_t *max_end)
{
	struct grow_arg a = {ino, len, INT64_MAX, false};
	int64_t now = meta_now_ns(), delta;
	bool skip;
	int rc;

	*max_end = (uint64_t)space4k(len);
	if (space4k(end) <= space4k(len))
		return 0;
	pthread_mutex_lock(&m->lock);
	skip = m->quota_none && now - m->quota_seen_ns < QUOTA_NONE_TTL_NS;
	pthread_mutex_unlock(&m->lock);
	if (!skip) {
		rc = meta_txn(m, false, grow_fn, &a);
		if (rc < 0)
			return 0; /* advisory: the commit decides */
		pthread_mutex_lock(&m->lock);
		m->quota_none = a.none;
		m->quota_seen_ns = now;
		pthread_mutex_unlock(&m->lock);
	}
	delta = space4k(end) - space4k(a.len);
	*max_end = MIN(end_within(a.len, a.room),
		       end_within(a.len, meta_space_room(m)));
	if (delta <= 0)
		return 0;
	if (delta > a.room) {
		*max_end = end_within(a.len, a.room);
		return -EDQUOT;
	}
	if (delta > meta_space_room(m)) {
		*max_end = end_within(a.len, meta_space_room(m));
		return -ENOSPC;
	}
	return 0;
}
