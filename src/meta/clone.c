/*
 * clone.c - meta_clone: copy a file or a tree by metadata only (DESIGN
 * section 6, `tessera clone`).
 *
 * One read-write transaction, in three passes:
 *   1. checks, as a create would make them: the new name, the target
 *      directory (search and write permission, not the trash), the source
 *      (read permission on every file, read and search on every directory
 *      of the tree), and a directory is not cloned into itself;
 *   2. the walk: the source tree in pre-order (parents before children)
 *      into an array, then one kv_incr of nextInode reserves all new inode
 *      numbers (the id batches of meta.c need a transaction of their own);
 *   3. the copy: for each node a new inode record, its dentry in the new
 *      parent (cookies from the new directory's counter), symlink target,
 *      xattrs and chunk records.  Chunk values are copied byte for byte,
 *      and each distinct slice id of each copied chunk record gets one more
 *      reference in KV_SLICEREF (meta_int.h invariant 3): the slice list is
 *      shared, so cost grows with the number of slice records, not bytes.
 * Later writes to either file append new slices to that file's own chunk
 * records; truncate, compaction and deletion drop references through
 * slices_unref, which queues a slice's objects only when the last
 * reference goes.
 *
 * Owners and times: by default the clone belongs to the caller (group as
 * for a create) with the source's permission bits (setuid/setgid dropped
 * when the owner changes, as cp does) and the current time; with
 * META_CLONE_PRESERVE the owners (only for uid 0), the permission bits
 * and atime/mtime are kept.  Hard links inside a tree become separate
 * files.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

/* One node of the source tree. */
struct cnode {
	uint64_t src;
	uint64_t dst;
	size_t parent; /* index of the parent node; SIZE_MAX for the root */
	uint32_t type;
	char *name; /* NULL for the root (it gets the new name) */
	size_t len;
};

struct clone_arg {
	const struct meta_cred *c;
	uint64_t src;
	uint64_t dstparent;
	const char *name;
	size_t len;
	int flags;
	struct cnode *v;
	size_t n, cap;
	struct meta_clone_stats st;
	struct meta_effects e;
	struct meta_attr *out;
	int64_t now;
};

static void nodes_free(struct clone_arg *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].name);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static int node_add(struct clone_arg *a, uint64_t src, size_t parent,
		    uint32_t type, const char *name, size_t len)
{
	struct cnode *p;

	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;

		p = realloc(a->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		a->v = p;
		a->cap = cap;
	}
	p = &a->v[a->n];
	memset(p, 0, sizeof(*p));
	p->src = src;
	p->parent = parent;
	p->type = type;
	if (name) {
		p->name = malloc(len + 1);
		if (!p->name)
			return -ENOMEM;
		memcpy(p->name, name, len);
		p->name[len] = '\0';
		p->len = len;
	}
	a->n++;
	return 0;
}

/* ---- pass 1 and 2: checks and the walk ---- */

struct walk {
	struct clone_arg *a;
	size_t parent;
	int rc;
};

static int walk_entry(void *arg, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	struct walk *w = arg;

	(void)key;
	(void)klen;
	if (vlen < 12 || vlen - 12 > TESSERA_NAME_MAX)
		return log_fail(-EIO, "corrupt directory index entry");
	return node_add(w->a, get_be64(val), w->parent,
			get_be32((const unsigned char *)val + 8),
			(const char *)val + 12, vlen - 12);
}

/* Check permission on node @i and, for a directory, add its children. */
static int walk_node(struct kv_txn *t, struct clone_arg *a, size_t i)
{
	struct walk w = {a, i, 0};
	struct inode_rec r;
	unsigned char pre[8];
	int rc = inode_get(t, a->v[i].src, &r);

	if (rc == -ENOENT && i > 0)
		return log_fail(-EIO,
				"directory entry points to missing "
				"inode %llu",
				(unsigned long long)a->v[i].src);
	if (rc < 0)
		return rc;
	a->v[i].type = r.a.mode & S_IFMT;
	if (!S_ISDIR(r.a.mode))
		return perm_check(a->c, &r.a, META_MAY_READ);
	rc = perm_check(a->c, &r.a, META_MAY_READ | META_MAY_EXEC);
	if (rc < 0)
		return rc;
	key_ino(pre, a->v[i].src);
	return kv_scan(t, KV_DIRIDX, pre, sizeof(pre), NULL, 0, 0, walk_entry,
		       &w);
}

/* Is @dir (a directory) @anc or below it? */
static int is_below(struct kv_txn *t, uint64_t dir, uint64_t anc)
{
	struct inode_rec r;
	int rc;

	for (int depth = 0; depth < 100000; depth++) {
		if (dir == anc)
			return 1;
		if (dir == TESSERA_ROOT_INO || dir == META_TRASH_INO)
			return 0;
		rc = inode_get(t, dir, &r);
		if (rc < 0)
			return rc;
		if (!r.a.parent || r.a.parent == dir)
			return 0;
		dir = r.a.parent;
	}
	return log_fail(-EIO, "directory %llu has no way to the root",
			(unsigned long long)dir);
}

static int clone_check(struct kv_txn *t, struct clone_arg *a,
		       struct inode_rec *p)
{
	struct dent d;
	int rc = inode_get(t, a->dstparent, p);

	if (rc == 0)
		rc = perm_lookup_t(t, a->c, &p->a);
	if (rc < 0)
		return rc;
	if (name_is_dot(a->name, a->len) ||
	    (a->dstparent == TESSERA_ROOT_INO &&
	     a->len == strlen(META_TRASH_NAME) &&
	     memcmp(a->name, META_TRASH_NAME, a->len) == 0))
		return -EEXIST;
	rc = dent_get(t, a->dstparent, a->name, a->len, &d);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = perm_check(a->c, &p->a, META_MAY_WRITE | META_MAY_EXEC);
	if (rc == 0 && a->dstparent == META_TRASH_INO)
		rc = -EPERM;
	if (rc == 0 && (a->src == TESSERA_ROOT_INO || a->src == META_TRASH_INO))
		rc = -EINVAL;
	return rc;
}

/* ---- pass 3: the copy ---- */

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* One more reference to slice @id. */
static int ref_one(struct kv_txn *t, uint64_t id)
{
	struct buf v = BUF_INIT;
	unsigned char k[8], enc[8];
	uint64_t refs = 0;
	int rc;

	put_be64(k, id);
	rc = kv_get(t, KV_SLICEREF, k, sizeof(k), &v);
	if (rc == 0 && v.len == 8)
		refs = get_be64((const unsigned char *)v.data);
	else if (rc == 0)
		rc = log_fail(-EIO, "corrupt reference count of slice %llu",
			      (unsigned long long)id);
	buf_release(&v);
	if (rc == -ENOENT)
		rc = 0;
	put_be64(enc, refs + 1);
	if (rc == 0)
		rc = kv_put(t, KV_SLICEREF, k, sizeof(k), enc, 8);
	return rc;
}

/* One more reference to each distinct slice id of chunk value @val. */
static int ref_slices(struct kv_txn *t, const void *val, size_t vlen,
		      struct clone_arg *a)
{
	const unsigned char *p = val;
	size_t n = vlen / SLICE_REC_LEN, k = 0;
	uint64_t *ids;
	int rc = 0;

	if (vlen % SLICE_REC_LEN)
		return log_fail(-EIO, "corrupt chunk record (%zu bytes)", vlen);
	if (n == 0)
		return 0;
	ids = malloc(n * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t id = get_be64(p + i * SLICE_REC_LEN + 4);

		if (id)
			ids[k++] = id;
	}
	qsort(ids, k, sizeof(*ids), cmp_u64);
	for (size_t i = 0; rc == 0 && i < k; i++) {
		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		rc = ref_one(t, ids[i]);
		a->st.slices++;
	}
	free(ids);
	return rc;
}

struct copy {
	struct kv_txn *t;
	struct clone_arg *a;
	uint64_t dst;
	int grp;
};

static int copy_rec(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct copy *c = arg;
	unsigned char k[KV_KEY_MAX];
	int rc;

	if (klen < 8 || klen > sizeof(k))
		return log_fail(-EIO, "corrupt record key");
	memcpy(k, key, klen);
	put_be64(k, c->dst);
	rc = kv_put(c->t, c->grp, k, klen, val, vlen);
	if (rc == 0 && c->grp == KV_CHUNK) {
		c->a->st.chunks++;
		rc = ref_slices(c->t, val, vlen, c->a);
	}
	return rc;
}

/* Copy the records of @grp keyed by src ino (+ suffix) to @dst. */
static int copy_group(struct kv_txn *t, struct clone_arg *a, int grp,
		      uint64_t src, uint64_t dst)
{
	struct copy c = {t, a, dst, grp};
	unsigned char pre[8];

	key_ino(pre, src);
	return kv_scan(t, grp, pre, sizeof(pre), NULL, 0, 0, copy_rec, &c);
}

/* The new inode record of node @i, whose new parent record is @p. */
static void new_attr(struct clone_arg *a, const struct inode_rec *src,
		     const struct inode_rec *p, struct inode_rec *r, size_t i)
{
	bool preserve = a->flags & META_CLONE_PRESERVE;

	*r = *src;
	r->a.ino = a->v[i].dst;
	r->a.nlink = S_ISDIR(src->a.mode) ? 2 : 1;
	r->a.parent = p->a.ino; /* files: their home (quota.c) */
	r->quota = p->quota;
	r->next_cookie = S_ISDIR(src->a.mode) ? META_COOKIE_FIRST : 0;
	r->a.ctime_ns = a->now;
	r->a.flags &= ~META_FL_USER; /* a new inode, as cp makes */
	if (!preserve) {
		r->a.atime_ns = r->a.mtime_ns = a->now;
	}
	if (!preserve || (a->c && a->c->uid != 0)) {
		uint32_t uid = r->a.uid, gid = r->a.gid;

		perm_init_owner(a->c, &p->a, &r->a);
		if (r->a.uid != uid || r->a.gid != gid)
			r->a.mode &=
				~(uint32_t)(S_ISUID |
					    (S_ISDIR(r->a.mode) ? 0 : S_ISGID));
	}
}

/* Copy node @i into its new parent @p (record updated, not stored). */
static int copy_node(struct kv_txn *t, struct clone_arg *a, size_t i,
		     struct inode_rec *p)
{
	struct inode_rec src, r;
	struct dent d;
	const char *name = a->v[i].name ? a->v[i].name : a->name;
	size_t len = a->v[i].name ? a->v[i].len : a->len;
	int rc = inode_get(t, a->v[i].src, &src);

	if (rc < 0)
		return rc;
	new_attr(a, &src, p, &r, i);
	rc = inode_put(t, &r);
	if (rc == 0)
		rc = copy_group(t, a, KV_SYMLINK, src.a.ino, r.a.ino);
	if (rc == 0)
		rc = copy_group(t, a, KV_XATTR, src.a.ino, r.a.ino);
	if (rc == 0 && S_ISREG(src.a.mode))
		rc = copy_group(t, a, KV_CHUNK, src.a.ino, r.a.ino);
	d.ino = r.a.ino;
	d.type = r.a.mode & S_IFMT;
	d.cookie = p->next_cookie++;
	if (rc == 0)
		rc = dent_put(t, p->a.ino, name, len, &d);
	if (S_ISDIR(r.a.mode))
		p->a.nlink++;
	p->a.mtime_ns = p->a.ctime_ns = a->now;
	a->e.inodes++;
	a->e.space += meta_space_of(&r.a);
	return rc;
}

/*
 * Copy every node in pre-order.  Parents come before their children, so
 * each directory record is loaded when its first child is copied and
 * stored when the walk leaves it; @p is the current parent record.
 */
static int copy_all(struct kv_txn *t, struct clone_arg *a,
		    struct inode_rec *top)
{
	struct inode_rec p = *top;
	size_t cur = SIZE_MAX; /* node whose record is in p */
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < a->n; i++) {
		size_t want = a->v[i].parent;

		if (want != cur) {
			rc = inode_put(t, &p);
			if (rc == 0)
				rc = inode_get(t,
					       want == SIZE_MAX
						       ? a->dstparent
						       : a->v[want].dst,
					       &p);
			cur = want;
		}
		if (rc == 0)
			rc = copy_node(t, a, i, &p);
	}
	if (rc == 0)
		rc = inode_put(t, &p);
	return rc;
}

static int clone_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct clone_arg *a = arg;
	struct inode_rec p;
	int64_t end;
	int rc;

	nodes_free(a);
	memset(&a->st, 0, sizeof(a->st));
	memset(&a->e, 0, sizeof(a->e));
	a->now = meta_now_ns();
	rc = clone_check(t, a, &p);
	if (rc == 0)
		rc = node_add(a, a->src, SIZE_MAX, 0, NULL, 0);
	for (size_t i = 0; rc == 0 && i < a->n; i++)
		rc = walk_node(t, a, i);
	if (rc == 0 && S_ISDIR(a->v[0].type)) {
		rc = is_below(t, a->dstparent, a->src);
		if (rc == 1)
			rc = -EINVAL;
	}
	if (rc == 0)
		rc = kv_incr(t, "nextInode", (int64_t)a->n, &end);
	for (size_t i = 0; rc == 0 && i < a->n; i++)
		a->v[i].dst = (uint64_t)end - a->n + i;
	if (rc == 0)
		rc = copy_all(t, a, &p);
	if (rc == 0 && p.quota)
		rc = quota_charge(m, t, a->dstparent, a->e.space, a->e.inodes,
				  true);
	if (rc == 0)
		rc = meta_check_space(m, a->e.space, a->e.inodes);
	if (rc == 0 && a->out) {
		struct inode_rec top;

		rc = inode_get(t, a->v[0].dst, &top);
		if (rc == 0)
			*a->out = top.a;
	}
	a->st.inodes = a->n;
	return rc;
}

int meta_clone(struct meta *m, const struct meta_cred *c, uint64_t src,
	       uint64_t dstparent, const char *name, int flags,
	       struct meta_attr *out, struct meta_clone_stats *st)
{
	struct clone_arg a = {.c = c,
			      .src = src,
			      .dstparent = dstparent,
			      .name = name,
			      .flags = flags,
			      .out = out};
	int rc = name_check(name, &a.len);

	if (rc == 0)
		rc = meta_txn(m, true, clone_fn, &a);
	if (rc == 0)
		meta_apply_effects(m, &a.e);
	if (rc == 0 && st)
		*st = a.st;
	nodes_free(&a);
	return rc;
}
