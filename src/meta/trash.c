/*
 * trash.c - listing, restoring and emptying the trash (`tessera trash`).
 *
 * The trash directory (META_TRASH_INO) holds the last name of each removed
 * non-directory as "PARENT-INO-SECONDS-NAME" (remove.c to_trash; fsck puts
 * orphans there with PARENT 0).  Its entries use their inode number as
 * readdir cookie (meta_int.h invariant 2), so neither moving a file in nor
 * taking it out writes the trash inode.
 *
 * Original paths: a directory knows its parent (invariant 4) but not its
 * name, so the path of PARENT is found by walking up to the root and
 * looking for each directory among its parent's entries (a scan of that
 * directory).  A list caches the paths it resolved per directory.  PARENT
 * is "gone" when it has no record, is no directory, or was removed (nlink
 * 0, kept while open somewhere).
 *
 * Restore is one read-write transaction per entry: the entry, its parent
 * (alive, a directory), NAME free there, then the entry moves from the
 * trash to the parent with a cookie from the parent's next_cookie, and
 * times change as a rename's do (parent mtime/ctime, inode ctime).
 *
 * Empty reads the trash in batches of names and removes each with
 * meta_trash_remove (remove.c), like expiry: one transaction per entry.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

#define TRASH_BATCH 256
#define TRASH_DEPTH_MAX 4096
#define TRASH_PATH_CACHE 1024

/* ---- names and paths ---- */

/* Split "PARENT-INO-SECONDS-NAME"; *name points into @entry.  0/-EINVAL */
static int parse_entry(const char *entry, uint64_t *parent, int64_t *when,
		       const char **name)
{
	unsigned long long p, ino;
	long long s;
	int used = -1;

	if (sscanf(entry, "%llu-%llu-%lld-%n", &p, &ino, &s, &used) != 3 ||
	    used < 0 || entry[used] == '\0')
		return -EINVAL;
	*parent = p;
	*when = s;
	*name = entry + used;
	return 0;
}

struct find_name {
	uint64_t ino;
	char name[TESSERA_NAME_MAX + 1];
	bool found;
};

static int find_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct find_name *f = arg;

	if (klen <= 8 || klen - 8 > TESSERA_NAME_MAX || vlen < DENT_VAL_LEN)
		return 0; /* corrupt: fsck's business */
	if (get_be64(val) != f->ino)
		return 0;
	memcpy(f->name, (const char *)key + 8, klen - 8);
	f->name[klen - 8] = '\0';
	f->found = true;
	return 1;
}

/*
 * The path of live directory @dir into @out ("/" for the root).  -ENOENT:
 * gone (see the top); -ENAMETOOLONG; -EIO.
 */
int meta_dir_path_t(struct kv_txn *t, uint64_t dir, char *out, size_t n)
{
	char tmp[META_TRASH_PATH_MAX];
	size_t pos = sizeof(tmp) - 1;
	struct inode_rec r;
	struct find_name f;
	unsigned char pre[8];
	int rc;

	tmp[pos] = '\0';
	for (int depth = 0; dir != TESSERA_ROOT_INO; depth++) {
		if (depth == TRASH_DEPTH_MAX || dir == META_TRASH_INO)
			return -ENOENT;
		rc = inode_get(t, dir, &r);
		if (rc < 0)
			return rc;
		if (!S_ISDIR(r.a.mode) || r.a.nlink == 0)
			return -ENOENT;
		f.ino = dir;
		f.found = false;
		key_ino(pre, r.a.parent);
		rc = kv_scan(t, KV_DENTRY, pre, sizeof(pre), NULL, 0, 0,
			     find_one, &f);
		if (rc < 0)
			return rc;
		if (!f.found)
			return -ENOENT;
		if (strlen(f.name) + 1 > pos)
			return -ENAMETOOLONG;
		pos -= strlen(f.name);
		memcpy(tmp + pos, f.name, strlen(f.name));
		tmp[--pos] = '/';
		dir = r.a.parent;
	}
	if (tmp[pos] == '\0')
		tmp[--pos] = '/';
	if (sizeof(tmp) - 1 - pos >= n)
		return -ENAMETOOLONG;
	memcpy(out, tmp + pos, sizeof(tmp) - pos);
	return 0;
}

/* "DIR/NAME" into @out, or "?/NAME" when @dir_rc says the dir is gone. */
static void join_path(char *out, size_t n, int dir_rc, const char *dir,
		      const char *name)
{
	if (dir_rc < 0)
		snprintf(out, n, "?/%s", name);
	else
		snprintf(out, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "",
			 name);
}

/* ---- list ---- */

struct trash_item {
	char *entry;
	char *path;
	uint64_t ino;
	uint64_t parent;
	uint32_t mode;
	uint64_t length;
	int64_t when;
	bool gone;
};

struct dir_cached {
	uint64_t ino;
	int rc;
	char *path;
};

struct list_arg {
	struct trash_item *v;
	size_t n, cap;
	struct dir_cached *dc;
	size_t ndc;
};

static void list_reset(struct list_arg *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i].entry);
		free(a->v[i].path);
	}
	for (size_t i = 0; i < a->ndc; i++)
		free(a->dc[i].path);
	a->n = a->ndc = 0;
}

static int collect_one(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct list_arg *a = arg;
	struct trash_item *it;

	UNUSED(key);
	if (klen != 16 || vlen < 12 || vlen - 12 > TESSERA_NAME_MAX)
		return log_fail(-EIO, "corrupt trash entry");
	if (a->n == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 64;
		struct trash_item *p = realloc(a->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		a->v = p;
		a->cap = cap;
	}
	it = &a->v[a->n];
	memset(it, 0, sizeof(*it));
	it->entry = strndup((const char *)val + 12, vlen - 12);
	if (!it->entry)
		return -ENOMEM;
	it->ino = get_be64(val);
	a->n++;
	return 0;
}

/* The path of directory @dir, cached: 0 or -ENOENT (gone). */
static int cached_dir(struct kv_txn *t, struct list_arg *a, uint64_t dir,
		      const char **path)
{
	char buf[META_TRASH_PATH_MAX];
	struct dir_cached *d;
	int rc;

	for (size_t i = 0; i < a->ndc; i++) {
		if (a->dc[i].ino == dir) {
			*path = a->dc[i].path;
			return a->dc[i].rc;
		}
	}
	rc = meta_dir_path_t(t, dir, buf, sizeof(buf));
	if (rc < 0 && rc != -ENOENT && rc != -ENAMETOOLONG)
		return rc;
	if (rc < 0)
		buf[0] = '\0';
	if (!a->dc)
		a->dc = calloc(TRASH_PATH_CACHE, sizeof(*a->dc));
	if (!a->dc)
		return -ENOMEM;
	if (a->ndc == TRASH_PATH_CACHE) { /* full: start over */
		for (size_t i = 0; i < a->ndc; i++)
			free(a->dc[i].path);
		a->ndc = 0;
	}
	d = &a->dc[a->ndc];
	d->path = strdup(buf);
	if (!d->path)
		return -ENOMEM;
	d->ino = dir;
	d->rc = rc < 0 ? -ENOENT : 0;
	a->ndc++;
	*path = d->path;
	return d->rc;
}

static int describe(struct kv_txn *t, struct list_arg *a, struct trash_item *it)
{
	char path[META_TRASH_PATH_MAX + TESSERA_NAME_MAX + 2];
	struct inode_rec r;
	const char *name, *dir = "";
	int rc;

	rc = inode_get(t, it->ino, &r);
	if (rc == 0) {
		it->mode = r.a.mode;
		it->length = r.a.length;
	} else if (rc != -ENOENT) {
		return rc;
	}
	it->when = -1;
	if (parse_entry(it->entry, &it->parent, &it->when, &name) < 0) {
		it->gone = true;
		it->path = strdup("?");
		return it->path ? 0 : -ENOMEM;
	}
	rc = it->parent ? cached_dir(t, a, it->parent, &dir) : -ENOENT;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	it->gone = rc < 0;
	join_path(path, sizeof(path), rc, dir, name);
	it->path = strdup(path);
	return it->path ? 0 : -ENOMEM;
}

static int list_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct list_arg *a = arg;
	unsigned char pre[8];
	int rc;

	UNUSED(m);
	list_reset(a);
	key_ino(pre, META_TRASH_INO);
	rc = kv_scan(t, KV_DIRIDX, pre, sizeof(pre), NULL, 0, 0, collect_one,
		     a);
	for (size_t i = 0; rc == 0 && i < a->n; i++)
		rc = describe(t, a, &a->v[i]);
	return rc;
}

int meta_trash_list(struct meta *m, meta_trash_fn fn, void *arg)
{
	struct list_arg a = {0};
	int rc = meta_txn(m, false, list_fn, &a);

	for (size_t i = 0; rc == 0 && i < a.n; i++) {
		const struct trash_item *it = &a.v[i];
		struct meta_trash_entry e = {
			.entry = it->entry,
			.path = it->path,
			.ino = it->ino,
			.parent = it->parent,
			.mode = it->mode,
			.length = it->length,
			.deleted_s = it->when,
			.parent_gone = it->gone,
		};

		rc = fn(arg, &e);
	}
	list_reset(&a);
	free(a.v);
	free(a.dc);
	return rc > 0 ? 0 : rc;
}

/* ---- restore ---- */

struct restore_arg {
	const struct meta_cred *c;
	const char *entry;
	size_t elen;
	char *path;
	size_t n;
};

/* The parent of a restore: alive, a directory, NAME free in it. */
static int restore_target(struct kv_txn *t, struct restore_arg *a,
			  uint64_t parent, const char *name, size_t len,
			  struct inode_rec *p)
{
	char dir[META_TRASH_PATH_MAX];
	struct dent d;
	int rc;

	rc = parent ? inode_get(t, parent, p) : -ENOENT;
	if (rc == 0 && (!S_ISDIR(p->a.mode) || p->a.nlink == 0))
		rc = -ENOENT;
	if (rc == 0)
		rc = meta_dir_path_t(t, parent, dir, sizeof(dir));
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (a->path)
		join_path(a->path, a->n, rc, dir, name);
	if (rc < 0)
		return -ESTALE;
	if (parent == TESSERA_ROOT_INO && len == strlen(META_TRASH_NAME) &&
	    memcmp(name, META_TRASH_NAME, len) == 0)
		return -EEXIST;
	rc = dent_get(t, parent, name, len, &d);
	if (rc == 0)
		return -EEXIST;
	return rc == -ENOENT ? 0 : rc;
}

static int restore_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct restore_arg *a = arg;
	struct inode_rec p, r;
	struct dent d, nd;
	const char *name;
	uint64_t parent;
	int64_t when, now = meta_now_ns();
	size_t len;
	int rc;

	if (a->path && a->n)
		a->path[0] = '\0';
	rc = dent_get(t, META_TRASH_INO, a->entry, a->elen, &d);
	if (rc == 0 && parse_entry(a->entry, &parent, &when, &name) < 0)
		rc = -EINVAL;
	if (rc == 0)
		rc = name_check(name, &len);
	if (rc == 0)
		rc = restore_target(t, a, parent, name, len, &p);
	if (rc == 0)
		rc = inode_get(t, d.ino, &r);
	if (rc == 0 && a->c && a->c->uid != 0 && a->c->uid != r.a.uid)
		rc = -EPERM;
	if (rc == 0)
		rc = perm_check_t(t, a->c, &p.a,
				  META_MAY_WRITE | META_MAY_EXEC);
	if (rc < 0)
		return rc;
	if (r.a.parent == 0) { /* back home: charged again (quota.c) */
		if (p.quota)
			rc = quota_charge(m, t, parent, meta_space_of(&r.a), 1,
					  true);
		if (rc < 0)
			return rc;
		r.a.parent = parent;
		r.quota = p.quota;
	}
	nd = d;
	nd.cookie = p.next_cookie++;
	rc = dent_del(t, META_TRASH_INO, a->entry, a->elen, d.cookie);
	if (rc == 0)
		rc = dent_put(t, parent, name, len, &nd);
	r.a.ctime_ns = now;
	p.a.mtime_ns = p.a.ctime_ns = now;
	if (rc == 0)
		rc = inode_put(t, &r);
	if (rc == 0)
		rc = inode_put(t, &p);
	return rc;
}

int meta_trash_restore(struct meta *m, const struct meta_cred *c,
		       const char *entry, char *path, size_t n)
{
	struct restore_arg a = {.c = c, .entry = entry, .path = path, .n = n};
	int rc;

	if (path && n)
		path[0] = '\0';
	rc = name_check(entry, &a.elen);
	if (rc < 0)
		return rc == -EINVAL ? -ENOENT : rc;
	return meta_txn(m, true, restore_fn, &a);
}

/* ---- empty ---- */

struct empty_scan {
	const struct meta_cred *c; /* non-root: only its own entries */
	struct kv_txn *t;
	uint64_t from; /* cookie this batch starts at */
	uint64_t next; /* cookie to resume from */
	size_t seen;
	uint64_t kept;	  /* in this batch */
	struct buf names; /* NUL-separated */
};

static int empty_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct empty_scan *s = arg;
	const char *name = (const char *)val + 12;
	struct inode_rec r;
	int rc;

	if (klen != 16 || vlen < 12 || vlen - 12 > TESSERA_NAME_MAX)
		return log_fail(-EIO, "corrupt trash entry");
	s->next = get_be64((const unsigned char *)key + 8) + 1;
	s->seen++;
	if (vlen == 12 || memchr(name, '\0', vlen - 12))
		return 0; /* not a name meta_trash_remove can take */
	if (s->c && s->c->uid != 0) {
		rc = inode_get(s->t, get_be64(val), &r);
		if (rc == 0 && r.a.uid != s->c->uid) {
			s->kept++;
			return 0;
		}
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	rc = buf_append(&s->names, name, vlen - 12);
	return rc < 0 ? rc : buf_append(&s->names, "", 1);
}

static int empty_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct empty_scan *s = arg;
	unsigned char pre[8], start[16];

	UNUSED(m);
	s->t = t;
	s->next = s->from;
	s->seen = 0;
	s->kept = 0;
	buf_reset(&s->names);
	key_ino(pre, META_TRASH_INO);
	key_diridx(start, META_TRASH_INO, s->next);
	return kv_scan(t, KV_DIRIDX, pre, sizeof(pre), start, sizeof(start),
		       TRASH_BATCH, empty_one, s);
}

int meta_trash_empty(struct meta *m, const struct meta_cred *c,
		     uint64_t *removed, uint64_t *kept)
{
	struct empty_scan s = {.c = c};
	uint64_t n = 0, nkept = 0;
	int rc;

	do {
		s.from = s.next;
		rc = meta_txn(m, false, empty_fn, &s);
		if (rc == 0)
			nkept += s.kept;
		for (size_t off = 0; rc == 0 && off < s.names.len;) {
			const char *name = s.names.data + off;

			rc = meta_trash_remove(m, name);
			n += rc == 0;
			off += strlen(name) + 1;
		}
	} while (rc == 0 && s.seen == TRASH_BATCH && s.next > s.from);
	buf_release(&s.names);
	if (removed)
		*removed = n;
	if (kept)
		*kept = nkept;
	return rc;
}
