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
 *   open in this process   nlink 0, KV_SUSTAINED (sid, ino); deleted when
 *   (rename: or held by    the last meta_close_file or meta_forget_inode
 *   this mount's kernel)   lets go of it, or by whoever cleans session sid
 *                          once it is stale (session.c)
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
 * Open-file table: ino -> {count, refs, unlinked}, guarded by open_lock: a
 * chained hash table that doubles when it holds more entries than buckets
 * (every inode the kernel references has one, so it may hold millions).
 * count is open handles, refs kernel references (only a rename's victim is
 * kept for those: an unlink may win a race with an open, a rename-over may
 * not, since the name exists throughout).  A txn reads the table when
 * deciding to sustain; the flag is set only after the commit.  If the last
 * close or forget happened in between, the entry is gone and the unlinker
 * deletes the inode itself, so no sustained inode is ever forgotten.  At
 * meta_close the table is emptied first, so session end deletes them all.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

/* ---- open-file table ---- */

/* Caller holds open_lock; NULL only when the table cannot be allocated. */
static struct meta_openf **open_slot(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp;

	if (!m->open_tab) {
		m->open_tab = calloc(META_OPEN_BUCKETS, sizeof(*m->open_tab));
		if (!m->open_tab)
			return NULL;
		m->open_nb = META_OPEN_BUCKETS;
	}
	pp = &m->open_tab[(ino * 0x9E3779B97F4A7C15ULL >> 20) % m->open_nb];
	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next;
	return pp;
}

static struct meta_openf *open_find(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp = m->open_tab ? open_slot(m, ino) : NULL;

	return pp ? *pp : NULL;
}

/* Double the buckets when entries outnumber them (failure: keep going). */
static void open_grow(struct meta *m)
{
	size_t nb = m->open_nb * 2;
	struct meta_openf **old = m->open_tab, **tab;

	if (m->open_n <= m->open_nb || nb > (SIZE_MAX >> 4))
		return;
	tab = calloc(nb, sizeof(*tab));
	if (!tab)
		return;
	m->open_tab = tab;
	m->open_nb = nb;
	for (size_t i = 0; i < nb / 2; i++) {
		while (old[i]) {
			struct meta_openf *f = old[i], **pp;

			old[i] = f->next;
			pp = open_slot(m, f->ino);
			f->next = *pp;
			*pp = f;
		}
	}
	free(old);
}

/* The entry of @ino, added if missing; caller holds open_lock. */
static struct meta_openf *open_get(struct meta *m, uint64_t ino)
{
	struct meta_openf **pp = open_slot(m, ino), *f;

	if (!pp)
		goto oom;
	if (*pp)
		return *pp;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto oom;
	f->ino = ino;
	*pp = f;
	m->open_n++;
	open_grow(m);
	return f;
oom:
	log_error("cannot track open inode %llu: out of memory",
		  (unsigned long long)ino);
	return NULL;
}

/*
 * Drop @f when nothing holds it any more; caller holds open_lock.  Returns
 * true when it was unlinked meanwhile: the caller deletes the inode.
 */
static bool open_put(struct meta *m, struct meta_openf *f)
{
	struct meta_openf **pp;
	bool del;

	if (f->count || f->refs)
		return false;
	pp = open_slot(m, f->ino);
	*pp = f->next;
	m->open_n--;
	del = f->unlinked;
	free(f);
	return del;
}

void meta_open_file(struct meta *m, uint64_t ino)
{
	struct meta_openf *f;

	pthread_mutex_lock(&m->open_lock);
	f = open_get(m, ino);
	if (f)
		f->count++;
	pthread_mutex_unlock(&m->open_lock);
}

void meta_ref_inode(struct meta *m, uint64_t ino, uint64_t n)
{
	struct meta_openf *f;

	pthread_mutex_lock(&m->open_lock);
	f = open_get(m, ino);
	if (f)
		f->refs += n;
	pthread_mutex_unlock(&m->open_lock);
}

int meta_is_open(struct meta *m, uint64_t ino)
{
	struct meta_openf *f;
	int open;

	pthread_mutex_lock(&m->open_lock);
	f = open_find(m, ino);
	open = f && f->count > 0;
	pthread_mutex_unlock(&m->open_lock);
	return open;
}

int meta_is_held(struct meta *m, uint64_t ino)
{
	int held;

	pthread_mutex_lock(&m->open_lock);
	held = open_find(m, ino) != NULL;
	pthread_mutex_unlock(&m->open_lock);
	return held;
}

void meta_open_table_free(struct meta *m)
{
	pthread_mutex_lock(&m->open_lock);
	for (size_t i = 0; m->open_tab && i < m->open_nb; i++) {
		while (m->open_tab[i]) {
			struct meta_openf *f = m->open_tab[i];

			m->open_tab[i] = f->next;
			free(f);
		}
	}
	free(m->open_tab);
	m->open_tab = NULL;
	m->open_nb = m->open_n = 0;
	pthread_mutex_unlock(&m->open_lock);
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
	    !(a->check_open && meta_is_held(m, a->ino))) {
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
	struct meta_openf *f;
	bool del = false;

	pthread_mutex_lock(&m->open_lock);
	f = open_find(m, ino);
	if (f && f->count > 0) {
		f->count--;
		del = open_put(m, f);
	}
	pthread_mutex_unlock(&m->open_lock);
	return del ? meta_unsustain(m, m->sid, ino, true) : 0;
}

int meta_forget_inode(struct meta *m, uint64_t ino, uint64_t n)
{
	struct meta_openf *f;
	bool del = false;

	pthread_mutex_lock(&m->open_lock);
	f = open_find(m, ino);
	if (f && f->refs > 0) {
		f->refs -= MIN(n, f->refs);
		del = open_put(m, f);
	}
	pthread_mutex_unlock(&m->open_lock);
	return del ? meta_unsustain(m, m->sid, ino, true) : 0;
}

/* After a commit that sustained @ino: flag it, or delete if closed since. */
static void mark_unlinked(struct meta *m, uint64_t ino)
{
	struct meta_openf *f;

	pthread_mutex_lock(&m->open_lock);
	f = open_find(m, ino);
	if (f)
		f->unlinked = true;
	pthread_mutex_unlock(&m->open_lock);
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

int meta_sustain_new(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		     struct meta_effects *e)
{
	return sustain(m, t, r, e);
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

/* The name that went, and whether a kernel reference keeps the inode. */
struct dropped {
	uint64_t parent;
	const char *name;
	size_t len;
	bool replaced; /* by a rename: held counts like open */
};

static int drop_link(struct meta *m, struct kv_txn *t, const struct dropped *d,
		     struct inode_rec *r, struct meta_effects *e)
{
	unsigned char k[8], v[8];
	bool purged = false;
	int rc;

	r->a.ctime_ns = meta_now_ns();
	if (r->a.parent && (r->a.nlink <= 1 || r->a.parent == d->parent)) {
		/* its home name goes: homeless from now on (quota.c) */
		rc = r->quota ? quota_charge(m, t, r->a.parent,
					     -meta_space_of(&r->a), -1, false)
			      : 0;
		if (rc < 0)
			return rc;
		r->a.parent = 0;
		r->quota = false;
	}
	if (r->a.nlink > 1) {
		r->a.nlink--;
		return inode_put(t, r);
	}
	if (d->parent != META_TRASH_INO && meta_trash_days(m) > 0) {
		rc = to_trash(t, d->parent, d->name, d->len, r);
		return rc < 0 ? rc : inode_put(t, r);
	}
	if (d->replaced ? meta_is_held(m, r->a.ino) : meta_is_open(m, r->a.ino))
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

int meta_drop_link(struct meta *m, struct kv_txn *t, uint64_t parent,
		   const char *name, size_t len, struct inode_rec *r,
		   struct meta_effects *e)
{
	struct dropped d = {parent, name, len, false};

	return drop_link(m, t, &d, r, e);
}

int meta_drop_replaced(struct meta *m, struct kv_txn *t, uint64_t parent,
		       const char *name, size_t len, struct inode_rec *r,
		       struct meta_effects *e)
{
	struct dropped d = {parent, name, len, true};

	return drop_link(m, t, &d, r, e);
}

int meta_drop_dir(struct meta *m, struct kv_txn *t, struct inode_rec *r,
		  bool replaced, struct meta_effects *e)
{
	int rc = 0;

	if (r->quota) /* quota.c */
		rc = quota_charge(m, t, r->a.parent, -meta_space_of(&r->a), -1,
				  false);
	if (rc == 0 && r->quota)
		rc = quota_forget_dir(t, r->a.ino);
	if (rc < 0)
		return rc;
	r->a.ctime_ns = meta_now_ns();
	if (replaced ? meta_is_held(m, r->a.ino) : meta_is_open(m, r->a.ino))
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
		rc = perm_lookup_t(t, a->c, &p->a);
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
		rc = perm_may_delete_t(t, a->c, &p->a, &r->a);
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
		rc = meta_drop_dir(m, t, &r, false, &a->e);
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
