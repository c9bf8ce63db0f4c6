/*
 * remove.c - unlink, rmdir, the fate of an inode whose last name goes, and
 * the table of inodes open in this process.
 *
 * Fate of a non-directory when a name of it is removed (meta_drop_link):
 *   nlink > 1              nlink - 1, ctime
 *   trash_days > 0         the name moves into the trash directory as
 *                          "PARENT-INO-SECONDS-NAME" (nlink stays 1); the
 *                          trash takes precedence over open files, which
 *                          keep working since the inode lives on
 *   open in this process   nlink 0, KV_SUSTAINED (sid, ino); deleted by the
 *                          last meta_close_file, or by whoever cleans
 *                          session sid once it is stale (session.c)
 *   otherwise              inode, symlink and xattr records go; a small
 *                          file's slices move to KV_DELSLICE in the same
 *                          txn; for a larger one KV_DELFILE ino -> length
 *                          is written instead, and after the commit
 *                          meta_purge_file moves the chunks' slices to
 *                          KV_DELSLICE and drops the KV_DELFILE record
 *                          (meta_cleanup finishes purges a crash
 *                          interrupted)
 * A directory removed while open here (opendir) is sustained the same way.
 *
 * Open-file table: ino -> {count, unlinked}, guarded by m->lock.  A txn
 * reads it when deciding to sustain; the flag is set only after the commit.
 * If the last close happened in between, the entry is gone and the unlinker
 * deletes the inode itself, so no sustained inode is ever forgotten.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

/* ---- open-file table ---- */

static struct meta_openf **open_slot(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp = &m->open_tab[ino % META_OPEN_BUCKETS];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

void meta_open_file(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp, *f;

	pthread_mutex_lock(&m->lock);
	pp = open_slot(m, ino);
	if (*pp) {
		(*pp)->count++;
	} else {
		f = calloc(1, sizeof(*f));
		if (f) {
			f->ino = ino;
			f->count = 1;
			*pp = f;
		} else {
			log_error("cannot track open inode %llu: out of memory",
				  (unsigned long long)ino);
		}
	}
	pthread_mutex_unlock(&m->lock);
}

int meta_is_open(struct meta *m, uint64_t ino)
{
	int open;

	pthread_mutex_lock(&m->lock);
	open = *open_slot(m, ino) != NULL;
	pthread_mutex_unlock(&m->lock);
	return open;
}

void meta_open_table_free(struct meta *m)
{
	for (size_t i = 0; i < META_OPEN_BUCKETS; i++) {
		while (m->open_tab[i]) {
			struct meta_openf *f = m->open_tab[i];

			m->open_tab[i] = f->next;
			free(f);
		}
	}
}

static void sustained_key(unsigned char k[16], uint64_t sid, uint64_t ino)
{
	put_be64(k, sid);
	put_be64(k + 8, ino);
}

struct sustain_arg {
	uint64_t sid;
	uint64_t ino;
	bool check_open;
	struct meta_effects e;
};

/* Delete a sustained inode once nothing holds it open. */
static int unsustain_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct sustain_arg *a = arg;
	unsigned char k[16], len[8];
	struct inode_rec r;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	sustained_key(k, a->sid, a->ino);
	if (!a->check_open) {
		rc = meta_session_exists(t, a->sid);
		if (rc != 0)
			return rc < 0 ? rc : 0; /* it is alive again */
	}
	rc = inode_get(t, a->ino, &r);
	if (rc == 0 && r.a.nlink == 0 &&
	    !(a->check_open && meta_is_open(m, a->ino))) {
		bool purged = false;

		rc = inode_del(t, a->ino);
		put_be64(len, r.a.length);
		if (rc == 0 && S_ISREG(r.a.mode))
			rc = data_purge_small(t, a->ino, r.a.length, &purged);
		if (rc == 0 && !S_ISDIR(r.a.mode) && !purged) {
			rc = kv_put(t, KV_DELFILE, k + 8, 8, len, sizeof(len));
			a->e.purge_ino = a->ino;
		}
		a->e.inodes = -1;
		a->e.space = -meta_space_of(&r.a);
	} else if (rc == -ENOENT || (rc == 0 && r.a.nlink)) {
		rc = 0;
	} else {
		return rc; /* still open, or an error */
	}
	if (rc == 0)
		rc = kv_del(t, KV_SUSTAINED, k, sizeof(k));
	return rc;
}

int meta_unsustain(struct meta *m, uint64_t sid, uint64_t ino,
		   bool check_open)
{
	struct sustain_arg a = {sid, ino, check_open, {0, 0, 0, 0}};
	int rc = meta_txn(m, true, unsustain_fn, &a);

	if (rc < 0)
		return log_fail(rc, "cannot delete unlinked inode %llu",
				(unsigned long long)ino);
	meta_apply_effects(m, &a.e);
	meta_after_commit(m, &a.e);
	return 0;
}

int meta_close_file(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp, *f;
	bool del = false;

	pthread_mutex_lock(&m->lock);
	pp = open_slot(m, ino);
	f = *pp;
	if (f && --f->count == 0) {
		*pp = f->next;
		del = f->unlinked;
		free(f);
	}
	pthread_mutex_unlock(&m->lock);
	return del ? meta_unsustain(m, m->sid, ino, true) : 0;
}

/* After a commit that sustained @ino: flag it, or delete if closed since. */
static void mark_unlinked(struct meta *m, uint64_t ino)
{
	struct meta_openf *f;

	pthread_mutex_lock(&m->lock);
	f = *open_slot(m, ino);
	if (f)
		f->unlinked = true;
	pthread_mutex_unlock(&m->lock);
	if (!f)
		meta_unsustain(m, m->sid, ino, true);
}

void meta_after_commit(struct meta *m, const struct meta_effects *e)
{
	if (e->kept_ino)
		mark_unlinked(m, e->kept_ino);
	if (e->purge_ino)
		meta_purge_file(m, e->purge_ino); /* failure: cleanup retries */
}

/* ---- fate of an inode ---- */

static int sustain(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		   struct meta_effects *e)
{
	unsigned char k[16];
	int rc;

	r->a.nlink = 0;
	rc = inode_put(t, r);
	sustained_key(k, m->sid, r->a.ino);
	if (rc == 0)
		rc = kv_put(t, KV_SUSTAINED, k, sizeof(k), "", 0);
	e->kept_ino = r->a.ino;
	return rc;
}

static int to_trash(struct kv_txn *t, uint64_t parent, const char *name,
		    size_t len, struct inode_rec *r)
{
	char tname[TESSERA_NAME_MAX + 1];
	struct dent d;
	int n;

	n = snprintf(tname, sizeof(tname), "%llu-%llu-%lld-",
		     (unsigned long long)parent, (unsigned long long)r->a.ino,
		     (long long)(r->a.ctime_ns / 1000000000LL));
	if (n < 0 || (size_t)n >= sizeof(tname))
		return -EIO;
	len = MIN(len, sizeof(tname) - 1 - (size_t)n);
	memcpy(tname + n, name, len);
	d.ino = r->a.ino;
	d.type = r->a.mode & S_IFMT;
	d.cookie = r->a.ino; /* see meta_int.h invariant 2 */
	return dent_put(t, META_TRASH_INO, tname, (size_t)n + len, &d);
}

int meta_drop_link(struct meta *m, struct kv_txn *t, uint64_t parent,
		   const char *name, size_t len, struct inode_rec *r,
		   struct meta_effects *e)
{
	unsigned char k[8], v[8];
	bool purged = false;
	int rc;

	r->a.ctime_ns = meta_now_ns();
	if (r->a.nlink > 1) {
		r->a.nlink--;
		return inode_put(t, r);
	}
	if (parent != META_TRASH_INO && meta_trash_days(m) > 0) {
		rc = to_trash(t, parent, name, len, r);
		return rc < 0 ? rc : inode_put(t, r);
	}
	if (meta_is_open(m, r->a.ino))
		return sustain(m, t, r, e);
	rc = inode_del(t, r->a.ino);
	e->inodes -= 1;
	e->space -= meta_space_of(&r->a);
	if (rc < 0)
		return rc;
	/* a small file's slices are queued in this txn: no second one */
	if (S_ISREG(r->a.mode))
		rc = data_purge_small(t, r->a.ino, r->a.length, &purged);
	if (rc < 0 || purged)
		return rc;
	key_ino(k, r->a.ino);
	put_be64(v, r->a.length);
	e->purge_ino = r->a.ino;
	return kv_put(t, KV_DELFILE, k, sizeof(k), v, sizeof(v));
}

int meta_drop_dir(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		  struct meta_effects *e)
{
	r->a.ctime_ns = meta_now_ns();
	if (meta_is_open(m, r->a.ino))
		return sustain(m, t, r, e);
	e->inodes -= 1;
	e->space -= meta_space_of(&r->a);
	return inode_del(t, r->a.ino);
}

/* ---- unlink / rmdir ---- */

struct remove_arg {
	const struct meta_cred *c;
	uint64_t parent;
	const char *name;
	size_t len;
	bool dir;
	struct meta_effects e;
};

/* Shared by unlink and rmdir: parent checks, the entry, may_delete. */
static int remove_prep(struct kv_txn *t, struct remove_arg *a,
		       struct inode_rec *p, struct dent *d, struct inode_rec *r)
{
	int rc;

	rc = inode_get(t, a->parent, p);
	if (rc == 0)
		rc = perm_lookup(a->c, &p->a);
	if (rc < 0)
		return rc;
	if (name_is_dot(a->name, a->len)) {
		if (!a->dir)
			return -EISDIR;
		return a->len == 1 ? -EINVAL : -ENOTEMPTY;
	}
	if (a->parent == TESSERA_ROOT_INO &&
	    a->len == strlen(META_TRASH_NAME) &&
	    memcmp(a->name, META_TRASH_NAME, a->len) == 0)
		return -EPERM;
	rc = dent_get(t, a->parent, a->name, a->len, d);
	if (rc == 0)
		rc = inode_get(t, d->ino, r);
	if (rc == 0)
		rc = perm_may_delete(a->c, &p->a, &r->a);
	if (rc < 0)
		return rc;
	if (a->dir && !S_ISDIR(r->a.mode))
		return -ENOTDIR;
	if (!a->dir && S_ISDIR(r->a.mode))
		return -EISDIR;
	return 0;
}

static int remove_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct remove_arg *a = arg;
	struct inode_rec p, r;
	struct dent d;
	int rc;

	memset(&a->e, 0, sizeof(a->e));
	rc = remove_prep(t, a, &p, &d, &r);
	if (rc == 0 && a->dir) {
		rc = dir_has_entries(t, r.a.ino);
		if (rc > 0)
			rc = -ENOTEMPTY;
	}
	if (rc == 0)
		rc = dent_del(t, a->parent, a->name, a->len, d.cookie);
	if (rc < 0)
		return rc;
	if (a->dir) {
		p.a.nlink--;
		rc = meta_drop_dir(m, t, &r, &a->e);
	} else {
		rc =
		    meta_drop_link(m, t, a->parent, a->name, a->len, &r, &a->e);
	}
	p.a.mtime_ns = p.a.ctime_ns = meta_now_ns();
	if (rc == 0 && a->parent != META_TRASH_INO)
		rc = inode_put(t, &p);
	return rc;
}

static int remove_name(struct meta *m, struct remove_arg *a)
{
	int rc = name_check(a->name, &a->len);

	if (rc == 0)
		rc = meta_txn(m, true, remove_fn, a);
	if (rc == 0) {
		meta_apply_effects(m, &a->e);
		meta_after_commit(m, &a->e);
	}
	return rc;
}

int meta_unlink(struct meta *m, const struct meta_cred *c, uint64_t parent,
		const char *name)
{
	struct remove_arg a = {.c = c, .parent = parent, .name = name};

	return remove_name(m, &a);
}

int meta_rmdir(struct meta *m, const struct meta_cred *c, uint64_t parent,
	       const char *name)
{
	struct remove_arg a = {
	    .c = c, .parent = parent, .name = name, .dir = true};

	return remove_name(m, &a);
}

/* Internal unlink from the trash (meta_cleanup); absent is fine. */
int meta_trash_remove(struct meta *m, const char *name)
{
	struct remove_arg a = {.parent = META_TRASH_INO, .name = name};
	int rc = remove_name(m, &a);

	return rc == -ENOENT ? 0 : rc;
}
