/*
 * tree.c - whole trees: counting (meta_summary) and removing in batches
 * (meta_rmtree_*, meta_remove_tree), for `tessera summary` and `rmr`.
 *
 * Summary.  One view (meta_scan.h), walked breadth-first with an explicit
 * queue of directory nodes (no recursion: trees may be deep).  Nodes are
 * appended as found, so a parent's index is below its children's; after
 * the walk the totals are added up from the last node to the first.
 * Only nodes within the asked depth keep a path.  On Redis the view may
 * report a change meanwhile (-EAGAIN): the walk runs again, a few times,
 * then the last figures stand (they are a summary, not a check).
 *
 * Removal.  An iterator with a stack of directories to empty; the top
 * directory of the stack is worked on.  Each step is one transaction
 * over at most META_RMTREE_BATCH names of that directory, from its
 * first name: a non-directory is unlinked (meta_drop_link), an empty
 * directory removed (meta_drop_dir), a non-empty one left in place and
 * pushed after the commit.  A step that finds no name pops the
 * directory: now empty, it goes in its parent's next batch.  So a
 * directory is scanned again only after its pushed children are gone,
 * and every name is visited a bounded number of times.  The top is
 * removed by meta_rmdir at the end (unless META_RMTREE_KEEP_TOP).
 * Effects: a batch deletes many inodes, so the per-name purge and
 * sustain effects are collected in arrays and acted on after the commit.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "meta/meta_scan.h"
#include "util/log.h"

#include <sys/stat.h>

/* ---- summary ---- */

struct sum_node {
	uint64_t ino;
	size_t parent; /* index; the top is its own parent */
	uint32_t depth;
	char *path; /* within the asked depth only */
	uint64_t entries, files, dirs, bytes;
};

struct sum_walk {
	struct meta_view *v;
	const struct meta_cred *c;
	uint32_t depth;
	struct sum_node *nodes;
	size_t n, cap;
	size_t cur; /* the node being scanned */
};

static void sum_free(struct sum_walk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->nodes[i].path);
	free(w->nodes);
	w->nodes = NULL;
	w->n = w->cap = 0;
}

static int sum_push(struct sum_walk *w, uint64_t ino, size_t parent,
		    uint32_t depth, const char *name, size_t len)
{
	struct sum_node *nd;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct sum_node *p = realloc(w->nodes, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->nodes = p;
		w->cap = cap;
	}
	nd = &w->nodes[w->n];
	memset(nd, 0, sizeof(*nd));
	nd->ino = ino;
	nd->parent = parent;
	nd->depth = depth;
	nd->dirs = 1;
	if (depth <= w->depth) {
		const char *pp = depth > 1 ? w->nodes[parent].path : "";

		if (asprintf(&nd->path, "%s%s%.*s", pp, depth > 1 ? "/" : "",
			     (int)len, name) < 0)
			return -ENOMEM;
	}
	w->n++;
	return 0;
}

static int sum_entry(void *arg, const struct meta_entry *e)
{
	struct sum_walk *w = arg;
	struct sum_node *nd = &w->nodes[w->cur];
	struct meta_attr a;
	int rc;

	if (e->corrupt)
		return -EIO;
	nd->entries++;
	if (e->type == S_IFDIR)
		return sum_push(w, e->ino, w->cur, nd->depth + 1, e->name,
				e->name_len);
	rc = meta_view_inode(w->v, e->ino, &a);
	if (rc == -ENOENT)
		return 0; /* fsck's business */
	if (rc < 0)
		return rc;
	nd->files++;
	nd->bytes += a.length;
	return 0;
}

/* One walk over view @w->v from @ino. */
static int sum_walk(struct sum_walk *w, uint64_t ino)
{
	struct meta_attr a;
	int rc;

	rc = meta_view_inode(w->v, ino, &a);
	if (rc < 0)
		return rc;
	rc = sum_push(w, ino, 0, 0, "", 0);
	if (rc < 0 || !S_ISDIR(a.mode)) {
		if (rc == 0) {
			w->nodes[0].dirs = 0;
			w->nodes[0].files = 1;
			w->nodes[0].bytes = a.length;
		}
		return rc;
	}
	for (w->cur = 0; w->cur < w->n; w->cur++) {
		if (w->cur > 0)
			rc = meta_view_inode(w->v, w->nodes[w->cur].ino, &a);
		if (rc == 0)
			rc = perm_check(w->c, &a,
					META_MAY_READ | META_MAY_EXEC);
		if (rc == 0)
			rc = meta_view_entries(w->v, w->nodes[w->cur].ino,
					       sum_entry, w);
		if (rc < 0)
			return rc;
	}
	for (size_t i = w->n; i-- > 1;) {
		struct sum_node *c = &w->nodes[i], *p = &w->nodes[c->parent];

		p->files += c->files;
		p->dirs += c->dirs;
		p->bytes += c->bytes;
	}
	return 0;
}

static int sum_cmp(const void *x, const void *y)
{
	const struct sum_node *a = *(struct sum_node *const *)x;
	const struct sum_node *b = *(struct sum_node *const *)y;

	return strcmp(a->path, b->path);
}

static int sum_report(struct sum_walk *w, meta_summary_fn fn, void *arg)
{
	struct sum_node **out = calloc(w->n, sizeof(*out));
	size_t k = 0;
	int rc = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < w->n; i++)
		if (w->nodes[i].path)
			out[k++] = &w->nodes[i];
	qsort(out, k, sizeof(*out), sum_cmp);
	for (size_t i = 0; i < k && rc == 0; i++) {
		struct meta_summary_ent e = {
			out[i]->path,  out[i]->depth, out[i]->entries,
			out[i]->files, out[i]->dirs,  out[i]->bytes,
		};

		rc = fn(arg, &e);
	}
	free(out);
	return rc;
}

int meta_summary(struct meta *m, const struct meta_cred *c, uint64_t ino,
		 uint32_t depth, meta_summary_fn fn, void *arg)
{
	struct sum_walk w = {.c = c, .depth = depth};
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = meta_view_begin(m, &w.v);
		if (rc < 0)
			return rc;
		rc = sum_walk(&w, ino);
		if (meta_view_end(w.v) == -EAGAIN && rc == 0 && attempt < 3) {
			sum_free(&w);
			continue;
		}
		break;
	}
	if (rc == 0)
		rc = sum_report(&w, fn, arg);
	sum_free(&w);
	return rc;
}

/* ---- removal ---- */

struct rmt_ent {
	uint64_t ino;
	uint64_t cookie;
	uint32_t type;
	size_t len;
	char name[TESSERA_NAME_MAX + 1];
};

struct meta_rmtree {
	struct meta *m;
	const struct meta_cred *c;
	uint64_t parent;
	char name[TESSERA_NAME_MAX + 1];
	int flags;
	bool is_dir; /* else: one unlink */
	bool done;
	int err;
	uint64_t *stack; /* directories to empty; the last one first */
	size_t n, cap;
	struct meta_rmtree_stats st;
	/* one batch (reset by every attempt of its txn) */
	uint64_t dir;
	struct rmt_ent *ents;
	size_t nents;
	uint64_t *push; /* non-empty subdirectories found */
	size_t npush;
	struct meta_effects e, *effs;
	uint64_t files, dirs;
};

struct rmt_top {
	struct meta_rmtree *r;
	size_t len;
	uint32_t mode;
};

static int top_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct rmt_top *a = arg;
	struct inode_rec p, r;
	struct dent d;
	int rc;

	UNUSED(m);
	rc = inode_get(t, a->r->parent, &p);
	if (rc == 0)
		rc = perm_lookup_t(t, a->r->c, &p.a);
	if (rc == 0)
		rc = dent_get(t, a->r->parent, a->r->name, a->len, &d);
	if (rc == 0)
		rc = inode_get(t, d.ino, &r);
	if (rc == 0) {
		a->mode = r.a.mode;
		a->r->stack[0] = r.a.ino;
	}
	return rc;
}

int meta_rmtree_begin(struct meta *m, const struct meta_cred *c,
		      uint64_t parent, const char *name, int flags,
		      struct meta_rmtree **out)
{
	struct rmt_top a = {0};
	struct meta_rmtree *r;
	int rc = name_check(name, &a.len);

	if (rc < 0)
		return rc;
	if (name_is_dot(name, a.len))
		return -EINVAL;
	if (parent == TESSERA_ROOT_INO && strcmp(name, META_TRASH_NAME) == 0)
		return -EPERM;
	r = calloc(1, sizeof(*r));
	if (r) {
		r->cap = 64;
		r->stack = calloc(r->cap, sizeof(*r->stack));
		r->ents = calloc(META_RMTREE_BATCH, sizeof(*r->ents));
		r->push = calloc(META_RMTREE_BATCH, sizeof(*r->push));
		r->effs = calloc(META_RMTREE_BATCH, sizeof(*r->effs));
	}
	if (!r || !r->stack || !r->ents || !r->push || !r->effs) {
		meta_rmtree_free(r);
		return -ENOMEM;
	}
	r->m = m;
	r->c = c;
	r->parent = parent;
	r->flags = flags;
	memcpy(r->name, name, a.len + 1);
	a.r = r;
	rc = meta_txn(m, false, top_fn, &a);
	if (rc == 0 && !S_ISDIR(a.mode) && (flags & META_RMTREE_KEEP_TOP))
		rc = -ENOTDIR;
	if (rc < 0) {
		meta_rmtree_free(r);
		return rc;
	}
	r->is_dir = S_ISDIR(a.mode);
	r->n = r->is_dir ? 1 : 0;
	*out = r;
	return 0;
}

void meta_rmtree_free(struct meta_rmtree *r)
{
	if (!r)
		return;
	free(r->stack);
	free(r->ents);
	free(r->push);
	free(r->effs);
	free(r);
}

static int rmt_collect(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct meta_rmtree *r = arg;
	const unsigned char *p = val;
	struct rmt_ent *e = &r->ents[r->nents];

	if (klen <= 8 || klen - 8 > TESSERA_NAME_MAX || vlen < DENT_VAL_LEN)
		return log_fail(-EIO, "corrupt entry in directory %llu",
				(unsigned long long)r->dir);
	e->len = klen - 8;
	memcpy(e->name, (const unsigned char *)key + 8, e->len);
	e->name[e->len] = '\0';
	e->ino = get_be64(p);
	e->type = get_be32(p + 8);
	e->cookie = get_be64(p + 12);
	r->nents++;
	return 0;
}

/* Remove entry @e of directory @p (inside the batch txn). */
static int rmt_one(struct meta_rmtree *r, struct kv_txn *t, struct inode_rec *p,
		   const struct rmt_ent *e)
{
	struct meta_effects *ef = &r->effs[r->files + r->dirs];
	struct inode_rec v;
	int rc;

	rc = inode_get(t, e->ino, &v);
	if (rc == 0)
		rc = perm_may_delete_t(t, r->c, &p->a, &v.a);
	if (rc < 0)
		return rc;
	if (S_ISDIR(v.a.mode)) {
		rc = dir_has_entries(t, v.a.ino);
		if (rc != 0) {
			if (rc > 0)
				r->push[r->npush++] = v.a.ino;
			return rc < 0 ? rc : 0;
		}
	}
	rc = dent_del(t, r->dir, e->name, e->len, e->cookie);
	if (rc < 0)
		return rc;
	memset(ef, 0, sizeof(*ef));
	if (S_ISDIR(v.a.mode)) {
		p->a.nlink--;
		rc = meta_drop_dir(r->m, t, &v, false, ef);
		r->dirs++;
	} else {
		rc = meta_drop_link(r->m, t, r->dir, e->name, e->len, &v, ef);
		r->files++;
	}
	r->e.space += ef->space;
	r->e.inodes += ef->inodes;
	return rc;
}

static int batch_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct meta_rmtree *r = arg;
	unsigned char pre[8];
	struct inode_rec p;
	int rc;

	UNUSED(m);
	memset(&r->e, 0, sizeof(r->e));
	r->nents = r->npush = 0;
	r->files = r->dirs = 0;
	rc = inode_get(t, r->dir, &p);
	if (rc == -ENOENT)
		return 0; /* gone meanwhile: nothing to empty */
	if (rc == 0)
		rc = perm_check(r->c, &p.a, META_MAY_READ | META_MAY_EXEC);
	key_ino(pre, r->dir);
	if (rc == 0)
		rc = kv_scan(t, KV_DENTRY, pre, sizeof(pre), NULL, 0,
			     META_RMTREE_BATCH, rmt_collect, r);
	for (size_t i = 0; rc == 0 && i < r->nents; i++)
		rc = rmt_one(r, t, &p, &r->ents[i]);
	if (rc < 0 || r->files + r->dirs == 0 || r->dir == META_TRASH_INO)
		return rc;
	p.a.mtime_ns = p.a.ctime_ns = meta_now_ns();
	return inode_put(t, &p);
}

/* After a batch's commit: usage, purges, sustained inodes, the stack. */
static int rmt_after(struct meta_rmtree *r)
{
	size_t k = r->files + r->dirs;

	meta_apply_effects(r->m, &r->e);
	for (size_t i = 0; i < k; i++) {
		struct meta_effects one = {0, 0, r->effs[i].purge_ino,
					   r->effs[i].kept_ino};

		if (one.purge_ino || one.kept_ino)
			meta_after_commit(r->m, &one);
	}
	r->st.files += r->files;
	r->st.dirs += r->dirs;
	if (r->nents == 0) {
		r->n--; /* empty: its parent's next batch removes it */
		return 0;
	}
	if (r->n + r->npush > r->cap) {
		size_t cap = (r->n + r->npush) * 2;
		uint64_t *s = realloc(r->stack, cap * sizeof(*s));

		if (!s)
			return -ENOMEM;
		r->stack = s;
		r->cap = cap;
	}
	memcpy(r->stack + r->n, r->push, r->npush * sizeof(*r->push));
	r->n += r->npush;
	return 0;
}

/* The top itself, once its tree is gone. */
static int rmt_last(struct meta_rmtree *r)
{
	int rc;

	if (r->flags & META_RMTREE_KEEP_TOP)
		return 0;
	if (r->is_dir) {
		rc = meta_rmdir(r->m, r->c, r->parent, r->name);
		r->st.dirs += rc == 0;
	} else {
		rc = meta_unlink(r->m, r->c, r->parent, r->name);
		r->st.files += rc == 0;
	}
	return rc;
}

int meta_rmtree_step(struct meta_rmtree *r, struct meta_rmtree_stats *st)
{
	int rc;

	if (r->err == 0 && !r->done) {
		if (r->n == 0) {
			rc = rmt_last(r);
			r->done = rc == 0;
		} else {
			r->dir = r->stack[r->n - 1];
			rc = meta_txn(r->m, true, batch_fn, r);
			if (rc == 0)
				rc = rmt_after(r);
		}
		if (rc < 0)
			r->err = rc;
	}
	if (st)
		*st = r->st;
	return r->err ? r->err : r->done;
}

int meta_remove_tree(struct meta *m, const struct meta_cred *c, uint64_t parent,
		     const char *name, int flags, meta_rmtree_fn fn, void *arg,
		     struct meta_rmtree_stats *st)
{
	struct meta_rmtree_stats s = {0, 0};
	struct meta_rmtree *r = NULL;
	int rc = meta_rmtree_begin(m, c, parent, name, flags, &r);

	while (rc == 0) {
		rc = meta_rmtree_step(r, &s);
		if (rc >= 0 && fn) {
			int frc = fn(arg, &s);

			if (frc < 0)
				rc = frc;
		}
	}
	meta_rmtree_free(r);
	if (st)
		*st = s;
	return rc < 0 ? rc : 0;
}
