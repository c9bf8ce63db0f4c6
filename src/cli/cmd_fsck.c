/*
 * cmd_fsck.c - `tessera fsck VOLUME [--path P] [--verify] [--repair]
 * [--json] [--quiet] [--encrypt-key FILE]` (DESIGN section 8).
 *
 * Passes, in this order:
 *   1. list the store once (prefix "NAME/chunks/"), keys parsed by
 *      chunk_key_parse into (slice id, block index, length, object size);
 *   2. read the metadata through one meta_view (Redis: again when the
 *      view saw a change, meta_view_end -EAGAIN): inodes, entries,
 *      sustained inodes, deleted files, chunks, the deletion queue and
 *      the usage counters, into plain arrays sorted by inode / slice id;
 *   3. check the tree: entries against inodes (missing inode, type,
 *      a directory's parent), link counts (non-directories: the entries
 *      naming them; directories: 2 + subdirectories), directory records
 *      (length 0, next readdir cookie above every cookie used), orphans
 *      (no entry, not sustained by a live session, not a deleted file),
 *      the counters (usedSpace, usedInodes: every inode but root and
 *      trash, meta_usage_of bytes each), and each directory quota's usage
 *      against its tree (meta_quota_check, a transaction each);
 *   4. check each referenced block: in the listing, with the object
 *      size its key and the volume's codec allow; a block the listing
 *      lacks gets one HEAD (it may be newer than the listing: on a live
 *      volume a slice is uploaded before its metadata commits, and the
 *      listing comes first, so an object the view references but the
 *      listing lacks was either written after the listing or is lost).
 *      --verify reads and decodes every referenced object.
 *   5. --repair (refused while a session is live): counters, quota
 *      usage, link counts, directory records, orphans into the trash; it
 *      never touches a chunk, slice or object.
 *
 * Findings are collected, repaired, then printed: one line each, naming
 * the path (first name of the inode; "?" when it has none), the inode and
 * the object key.  --path P limits passes 3 and 4 to the tree at P and
 * skips the volume-wide checks (counters, orphans).  Exit: 0 clean (or
 * every problem repaired), 1 problems left or an error, 2 usage.
 *
 * On a mounted volume, counters lag the metadata by up to a second (the
 * mounts keep deltas in memory), so a counter mismatch is then a warning,
 * not a finding.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "meta/meta_scan.h"
#include "object/frame.h"
#include "object/object.h"
#include "util/log.h"
#include "util/progress.h"

#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/stat.h>

#define FSCK_VIEW_TRIES 5
#define FSCK_DEPTH_MAX 4096
#define FSCK_PATH_MAX 4096

enum fix_kind { FIX_NONE, FIX_INODE, FIX_ORPHAN, FIX_COUNTERS, FIX_QUOTA };

/* One inode as fsck sees it. */
struct fino {
	struct meta_attr a;
	uint64_t next_cookie;
	uint64_t max_cookie; /* directories: largest cookie of an entry */
	uint64_t ep;	     /* parent of its first entry; 0: none */
	char *name;	     /* that entry's name (owned) */
	uint32_t links;	     /* entries naming it */
	uint32_t subdirs;    /* directories among its entries */
	bool corrupt, sustained, delfile;
};

/* A slice a chunk references. */
struct fref {
	uint64_t id;
	uint32_t size;
	uint64_t ino;
};

/* A block object the listing found. */
struct fobj {
	uint64_t id;
	uint32_t index, len;
	uint64_t size;
};

struct finding {
	uint64_t ino;
	char *key; /* may be NULL */
	char *what;
	enum fix_kind fix;
	struct meta_fix f;
	bool repaired;
	char *note; /* what the repair did */
};

struct fsck {
	/* options */
	const char *vol_arg, *path, *key_file;
	bool verify, repair, json, quiet;
	uint64_t threads; /* --verify reads in parallel */
	/* volume */
	struct cli_vol cv;
	struct meta_format f;
	struct meta *m;
	struct obj_store *os;
	struct frame_conf fc;
	uint64_t *live; /* live session ids, sorted */
	size_t nlive, clive;
	/* what pass 1 and 2 read */
	struct fobj *obj;
	size_t nobj, cobj;
	struct fino *ino;
	size_t nino, cino;
	struct fref *ref;
	size_t nref, cref;
	uint64_t *pend, *sus, *delf;
	size_t npend, cpend, nsus, csus, ndelf, cdelf;
	uint64_t used_space, used_inodes;
	uint64_t top; /* --path: its inode; else 0 */
	/* results */
	struct finding *fd;
	size_t nfd, cfd;
	uint64_t blocks, bytes;
	struct fvjob *vj; /* blocks to read and decode (--verify) */
	size_t nvj, cvj;
	char msg[256]; /* what check_block found */
	struct progress pg;
};

/* ---- small helpers ---- */

static int grow(void *pp, size_t *cap, size_t n, size_t sz)
{
	void **p = pp;
	size_t c = *cap ? *cap * 2 : 256;
	void *q;

	if (n < *cap)
		return 0;
	q = realloc(*p, c * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int push_u64(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
	if (grow(a, cap, *n, sizeof(**a)) < 0)
		return -ENOMEM;
	(*a)[(*n)++] = v;
	return 0;
}

/* qsort, but an empty array may be NULL (qsort's is declared nonnull). */
static void sort_n(void *base, size_t n, size_t size,
		   int (*cmp)(const void *, const void *))
{
	if (n > 0)
		qsort(base, n, size, cmp);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static bool has_u64(const uint64_t *a, size_t n, uint64_t v)
{
	return n && bsearch(&v, a, n, sizeof(*a), cmp_u64);
}

static int cmp_ino(const void *x, const void *y)
{
	return cmp_u64(&((const struct fino *)x)->a.ino,
		       &((const struct fino *)y)->a.ino);
}

static struct fino *find_ino(struct fsck *fs, uint64_t ino)
{
	struct fino key;

	key.a.ino = ino;
	return fs->nino ? bsearch(&key, fs->ino, fs->nino, sizeof(key), cmp_ino)
			: NULL;
}

static int cmp_obj(const void *x, const void *y)
{
	const struct fobj *a = x, *b = y;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_ref(const void *x, const void *y)
{
	const struct fref *a = x, *b = y;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return cmp_u64(&a->ino, &b->ino);
}

/* The path of @ino from its first names; "?/..." when cut off. */
static void path_of(struct fsck *fs, uint64_t ino, char *out, size_t n)
{
	const char *parts[FSCK_DEPTH_MAX];
	size_t np = 0, off = 0;
	bool cut = false;

	while (ino != TESSERA_ROOT_INO && np < FSCK_DEPTH_MAX) {
		struct fino *i = find_ino(fs, ino);

		if (ino == META_TRASH_INO) {
			parts[np++] = META_TRASH_NAME;
			ino = TESSERA_ROOT_INO;
		} else if (!i || !i->ep) {
			cut = true;
			break;
		} else {
			parts[np++] = i->name;
			ino = i->ep;
		}
	}
	out[0] = '\0';
	if (cut || np == FSCK_DEPTH_MAX)
		off = (size_t)snprintf(out, n, "?");
	if (np == 0 && !cut)
		snprintf(out, n, "/");
	while (np && off < n)
		off += (size_t)snprintf(out + off, n - off, "/%s", parts[--np]);
}

/* Is @ino inside the tree --path names (always, without --path)? */
static bool in_scope(struct fsck *fs, uint64_t ino)
{
	for (int d = 0; fs->top && d < FSCK_DEPTH_MAX; d++) {
		struct fino *i = find_ino(fs, ino);

		if (ino == fs->top)
			return true;
		if (ino == TESSERA_ROOT_INO || !i || !i->ep)
			return false;
		ino = i->ep;
	}
	return true;
}

static struct finding *add_finding(struct fsck *fs, uint64_t ino,
				   const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct finding *add_finding(struct fsck *fs, uint64_t ino,
				   const char *key, const char *fmt, ...)
{
	struct finding *f;
	va_list ap;

	if (grow(&fs->fd, &fs->cfd, fs->nfd, sizeof(*fs->fd)) < 0)
		return NULL;
	f = &fs->fd[fs->nfd];
	memset(f, 0, sizeof(*f));
	f->ino = ino;
	f->key = key ? strdup(key) : NULL;
	va_start(ap, fmt);
	if (vasprintf(&f->what, fmt, ap) < 0)
		f->what = NULL;
	va_end(ap);
	if (!f->what || (key && !f->key)) {
		free(f->key);
		free(f->what);
		return NULL;
	}
	fs->nfd++;
	return f;
}

/* add_finding for callers that cannot fail softly: -ENOMEM on failure. */
#define FINDING(fs, ino, key, ...)                                             \
	(add_finding(fs, ino, key, __VA_ARGS__) ? 0 : -ENOMEM)

/* ---- pass 1: the store ---- */

static int list_page(struct fsck *fs, const struct obj_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct fobj o;

		if (chunk_key_parse(fs->f.name, l->items[i].key, &o.id,
				    &o.index, &o.len) < 0)
			continue; /* not a block key (temporary files...) */
		o.size = l->items[i].size;
		if (grow(&fs->obj, &fs->cobj, fs->nobj, sizeof(o)) < 0)
			return -ENOMEM;
		fs->obj[fs->nobj++] = o;
	}
	progress_add(&fs->pg, l->n);
	return 0;
}

static int list_store(struct fsck *fs)
{
	char prefix[300], *token = NULL;
	struct obj_list l;
	int rc;

	chunk_key_prefix(fs->f.name, prefix, sizeof(prefix));
	obj_list_init(&l);
	progress_init(&fs->pg, "fsck: listing objects", "objects", 0,
		      fs->quiet);
	do {
		rc = obj_list(fs->os, prefix, NULL, token, 1000, &l);
		free(token);
		token = NULL;
		if (rc == 0)
			rc = list_page(fs, &l);
		if (rc == 0 && l.truncated && l.next_token) {
			token = strdup(l.next_token);
			if (!token)
				rc = -ENOMEM;
		}
	} while (rc == 0 && token);
	obj_list_release(&l);
	progress_end(&fs->pg);
	if (rc < 0)
		return log_fail(rc, "cannot list '%s' in '%s'", prefix,
				obj_describe(fs->os));
	sort_n(fs->obj, fs->nobj, sizeof(*fs->obj), cmp_obj);
	return 0;
}

/* ---- pass 2: the metadata ---- */

static int on_inode(void *arg, const struct meta_inode *i)
{
	struct fsck *fs = arg;
	struct fino *f;

	if (grow(&fs->ino, &fs->cino, fs->nino, sizeof(*f)) < 0)
		return -ENOMEM;
	f = &fs->ino[fs->nino++];
	memset(f, 0, sizeof(*f));
	f->a = i->a;
	f->next_cookie = i->next_cookie;
	f->corrupt = i->corrupt;
	return 0;
}

static int on_sustained(void *arg, uint64_t sid, uint64_t ino)
{
	struct fsck *fs = arg;

	if (!has_u64(fs->live, fs->nlive, sid))
		return 0; /* its session is gone: an orphan */
	return push_u64(&fs->sus, &fs->nsus, &fs->csus, ino);
}

static int on_delfile(void *arg, uint64_t ino)
{
	struct fsck *fs = arg;

	return push_u64(&fs->delf, &fs->ndelf, &fs->cdelf, ino);
}

static int on_pending(void *arg, const struct meta_pending *p)
{
	struct fsck *fs = arg;

	return p->corrupt ? 0
			  : push_u64(&fs->pend, &fs->npend, &fs->cpend, p->id);
}

static int on_chunk(void *arg, const struct meta_chunk *c)
{
	struct fsck *fs = arg;

	if (c->corrupt)
		return FINDING(fs, c->ino, NULL, "chunk %u: corrupt record",
			       c->index);
	for (size_t i = 0; i < c->n; i++) {
		if (!c->s[i].id)
			continue;
		if (grow(&fs->ref, &fs->cref, fs->nref, sizeof(*fs->ref)) < 0)
			return -ENOMEM;
		fs->ref[fs->nref++] =
			(struct fref){c->s[i].id, c->s[i].size, c->ino};
	}
	return 0;
}

/* Everything but the entries (read in pass 3, inodes known). */
static int read_records(struct fsck *fs, struct meta_view *v)
{
	int rc = meta_view_inodes(v, 0, on_inode, fs);

	if (rc == 0)
		rc = meta_view_sustained(v, on_sustained, fs);
	if (rc == 0)
		rc = meta_view_delfiles(v, on_delfile, fs);
	if (rc == 0)
		rc = meta_view_pending(v, on_pending, fs);
	if (rc == 0)
		rc = meta_view_counter(v, "usedSpace", &fs->used_space);
	if (rc == 0)
		rc = meta_view_counter(v, "usedInodes", &fs->used_inodes);
	if (rc < 0)
		return rc;
	sort_n(fs->ino, fs->nino, sizeof(*fs->ino), cmp_ino);
	sort_n(fs->sus, fs->nsus, sizeof(*fs->sus), cmp_u64);
	sort_n(fs->delf, fs->ndelf, sizeof(*fs->delf), cmp_u64);
	sort_n(fs->pend, fs->npend, sizeof(*fs->pend), cmp_u64);
	for (size_t i = 0; i < fs->nino; i++) {
		fs->ino[i].sustained =
			has_u64(fs->sus, fs->nsus, fs->ino[i].a.ino);
		fs->ino[i].delfile =
			has_u64(fs->delf, fs->ndelf, fs->ino[i].a.ino);
	}
	return meta_view_chunks(v, 0, on_chunk, fs);
}

/* ---- pass 3: the tree ---- */

static int entry_missing(struct fsck *fs, const struct meta_entry *e,
			 struct fino *p)
{
	if (!p)
		return FINDING(fs, 0, NULL,
			       "entry '%s' of missing directory %llu", e->name,
			       (unsigned long long)e->parent);
	return FINDING(fs, e->parent, NULL,
		       "entry '%s' names missing inode %llu", e->name,
		       (unsigned long long)e->ino);
}

static int on_entry(void *arg, const struct meta_entry *e)
{
	struct fsck *fs = arg;
	struct fino *c = find_ino(fs, e->ino), *p = find_ino(fs, e->parent);

	if (e->corrupt)
		return FINDING(fs, e->parent, NULL,
			       "entry '%s': corrupt record", e->name);
	if (!c || !p)
		return entry_missing(fs, e, p);
	if (c->links++ == 0) {
		c->ep = e->parent;
		c->name = strdup(e->name);
		if (!c->name)
			return -ENOMEM;
	}
	if (e->parent != META_TRASH_INO && e->cookie > p->max_cookie)
		p->max_cookie = e->cookie;
	if (!c->corrupt && S_ISDIR(c->a.mode))
		p->subdirs++;
	return 0;
}

/* Entries whose type disagrees with their inode; after on_entry. */
static int on_entry_type(void *arg, const struct meta_entry *e)
{
	struct fsck *fs = arg;
	struct fino *c = find_ino(fs, e->ino), *p = find_ino(fs, e->parent);

	if (e->corrupt || !c || !p || c->corrupt || !in_scope(fs, e->ino))
		return 0;
	if (!S_ISDIR(p->a.mode) && !p->corrupt)
		return FINDING(fs, e->ino, NULL,
			       "named in inode %llu, which is not a directory",
			       (unsigned long long)e->parent);
	if (e->type != (c->a.mode & S_IFMT))
		return FINDING(fs, e->ino, NULL,
			       "entry type %o, inode type %o (not repaired)",
			       e->type, c->a.mode & S_IFMT);
	return 0;
}

static int read_tree(struct fsck *fs, struct meta_view *v)
{
	int rc = meta_view_entries(v, 0, on_entry, fs);

	if (rc == 0)
		rc = meta_view_entries(v, 0, on_entry_type, fs);
	return rc;
}

/* A component of --path in directory @dir. */
struct walk {
	const char *name;
	size_t len;
	uint64_t ino;
};

static int on_walk(void *arg, const struct meta_entry *e)
{
	struct walk *w = arg;

	if (e->corrupt || e->name_len != w->len ||
	    memcmp(e->name, w->name, w->len))
		return 0;
	w->ino = e->ino;
	return 1;
}

static int resolve_path(struct fsck *fs, struct meta_view *v)
{
	const char *p = fs->path;
	uint64_t cur = TESSERA_ROOT_INO;
	int rc = 0;

	while (rc == 0 && *p) {
		struct walk w = {p, strcspn(p, "/"), 0};

		p += w.len;
		p += strspn(p, "/");
		if (w.len == 0 || (w.len == 1 && w.name[0] == '.'))
			continue;
		if (cur == TESSERA_ROOT_INO &&
		    w.len == strlen(META_TRASH_NAME) &&
		    !memcmp(w.name, META_TRASH_NAME, w.len))
			w.ino = META_TRASH_INO;
		else
			rc = meta_view_entries(v, cur, on_walk, &w);
		if (rc == 0 && !w.ino)
			rc = -ENOENT;
		cur = w.ino;
	}
	if (rc == -ENOENT)
		log_error("no such path in volume '%s': '%s'", fs->f.name,
			  fs->path);
	fs->top = cur;
	return rc;
}

static void free_state(struct fsck *fs)
{
	for (size_t i = 0; i < fs->nino; i++)
		free(fs->ino[i].name);
	for (size_t i = 0; i < fs->nfd; i++) {
		free(fs->fd[i].key);
		free(fs->fd[i].what);
		free(fs->fd[i].note);
	}
	free(fs->ino);
	free(fs->ref);
	free(fs->vj);
	fs->vj = NULL;
	fs->nvj = fs->cvj = 0;
	free(fs->pend);
	free(fs->sus);
	free(fs->delf);
	free(fs->fd);
	fs->ino = NULL;
	fs->ref = NULL;
	fs->pend = fs->sus = fs->delf = NULL;
	fs->fd = NULL;
	fs->nino = fs->cino = fs->nref = fs->cref = fs->nfd = fs->cfd = 0;
	fs->npend = fs->cpend = fs->nsus = fs->csus = fs->ndelf = 0;
	fs->cdelf = 0;
}

/* One pass over one view; -EAGAIN: the view changed meanwhile. */
static int read_view(struct fsck *fs)
{
	struct meta_view *v;
	int rc = meta_view_begin(fs->m, &v);

	if (rc < 0)
		return rc;
	if (fs->path)
		rc = resolve_path(fs, v);
	if (rc == 0)
		rc = read_records(fs, v);
	if (rc == 0)
		rc = read_tree(fs, v);
	if (rc < 0) {
		meta_view_end(v);
		return rc;
	}
	return meta_view_end(v);
}

static int read_meta(struct fsck *fs)
{
	int rc = -EAGAIN;

	for (int i = 0; i < FSCK_VIEW_TRIES && rc == -EAGAIN; i++) {
		free_state(fs);
		rc = read_view(fs);
	}
	if (rc < 0 && rc != -ENOENT)
		log_fail(rc, "cannot read the metadata of volume '%s'",
			 fs->f.name);
	return rc;
}

/* ---- pass 3: checks ---- */

static int fix_inode(struct fsck *fs, const struct fino *i,
		     const struct meta_fix *f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fix_inode(struct fsck *fs, const struct fino *i,
		     const struct meta_fix *f, const char *fmt, ...)
{
	struct finding *fd;
	char *what;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	fd = add_finding(fs, i->a.ino, NULL, "%s", what);
	free(what);
	if (!fd)
		return -ENOMEM;
	fd->fix = FIX_INODE;
	fd->f = *f;
	return 0;
}

static int check_dir(struct fsck *fs, const struct fino *i)
{
	uint32_t want = 2 + i->subdirs;
	uint64_t parent = i->ep ? i->ep : TESSERA_ROOT_INO;
	int rc = 0;

	if (i->links > 1 && i->a.ino != TESSERA_ROOT_INO)
		rc = FINDING(fs, i->a.ino, NULL,
			     "directory with %u names (not repaired)",
			     i->links);
	if (rc == 0 && i->a.nlink != want && (i->links || i->a.nlink))
		rc = fix_inode(
			fs, i,
			&(struct meta_fix){.set_nlink = true, .nlink = want},
			"directory link count %u, should be %u", i->a.nlink,
			want);
	if (rc == 0 && i->a.length)
		rc = fix_inode(fs, i, &(struct meta_fix){.set_length = true},
			       "directory size %llu, should be 0",
			       (unsigned long long)i->a.length);
	if (rc == 0 && (i->links || i->a.ino <= META_TRASH_INO) &&
	    i->a.parent != parent)
		rc = fix_inode(fs, i,
			       &(struct meta_fix){.set_parent = true,
						  .parent = parent},
			       "directory parent %llu, its entry is in %llu",
			       (unsigned long long)i->a.parent,
			       (unsigned long long)parent);
	if (rc == 0 && i->max_cookie && i->next_cookie <= i->max_cookie)
		rc = fix_inode(
			fs, i,
			&(struct meta_fix){.set_cookie = true,
					   .next_cookie = i->max_cookie + 1},
			"next readdir cookie %llu, already used up to %llu",
			(unsigned long long)i->next_cookie,
			(unsigned long long)i->max_cookie);
	return rc;
}

static int check_file(struct fsck *fs, const struct fino *i)
{
	int rc = 0;

	if (i->links && i->a.nlink != i->links)
		rc = fix_inode(fs, i,
			       &(struct meta_fix){.set_nlink = true,
						  .nlink = i->links},
			       "link count %u, %u entries name it", i->a.nlink,
			       i->links);
	/* a non-directory's parent is its quota home or 0 (quota.c) */
	return rc;
}

static bool is_orphan(const struct fino *i)
{
	return !i->links && i->a.ino > META_TRASH_INO && !i->sustained &&
	       !i->delfile;
}

static int check_inode(struct fsck *fs, struct fino *i)
{
	struct finding *f;

	if (!in_scope(fs, i->a.ino))
		return 0;
	if (i->corrupt)
		return FINDING(fs, i->a.ino, NULL,
			       "corrupt inode record (not repaired)");
	if (is_orphan(i) && !fs->top) {
		f = add_finding(fs, i->a.ino, NULL,
				"orphan %s: no entry names it (nlink %u)",
				S_ISDIR(i->a.mode) ? "directory" : "inode",
				i->a.nlink);
		if (!f)
			return -ENOMEM;
		f->fix = FIX_ORPHAN;
		return 0;
	}
	if (!i->links && i->a.ino > META_TRASH_INO)
		return 0; /* sustained, or outside --path */
	return S_ISDIR(i->a.mode) ? check_dir(fs, i) : check_file(fs, i);
}

static int check_counters(struct fsck *fs)
{
	uint64_t space = 0, inodes = 0;
	struct finding *f;

	for (size_t i = 0; i < fs->nino; i++) {
		if (fs->ino[i].a.ino <= META_TRASH_INO)
			continue;
		inodes++;
		if (!fs->ino[i].corrupt)
			space += (uint64_t)meta_usage_of(&fs->ino[i].a);
	}
	if (space == fs->used_space && inodes == fs->used_inodes)
		return 0;
	if (fs->nlive) {
		log_warn("usage counters say %llu bytes, %llu inodes; files "
			 "hold %llu bytes, %llu inodes (%zu live sessions: "
			 "counters may lag by a second)",
			 (unsigned long long)fs->used_space,
			 (unsigned long long)fs->used_inodes,
			 (unsigned long long)space, (unsigned long long)inodes,
			 fs->nlive);
		return 0;
	}
	f = add_finding(fs, TESSERA_ROOT_INO, NULL,
			"usage counters say %llu bytes, %llu inodes; files "
			"hold %llu bytes, %llu inodes",
			(unsigned long long)fs->used_space,
			(unsigned long long)fs->used_inodes,
			(unsigned long long)space, (unsigned long long)inodes);
	if (!f)
		return -ENOMEM;
	f->fix = FIX_COUNTERS;
	f->f.length = space;
	f->f.next_cookie = inodes;
	return 0;
}

/*
 * Directory quotas: each one's usage counted from its tree (one read
 * transaction each, by meta/'s rule) against the stored one.  Exact even
 * while mounts write, so a mismatch is always a finding.
 */
static int check_quotas(struct fsck *fs)
{
	struct meta_quota_check c;
	struct meta_quota *v = NULL;
	struct finding *f;
	size_t n = 0;
	int rc = meta_quota_list(fs->m, &v, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = meta_quota_check(fs->m, v[i].ino, false, &c);
		if (rc == -ENOENT) { /* deleted meanwhile */
			rc = 0;
			continue;
		}
		if (rc < 0 || (c.q.used_space == c.real_space &&
			       c.q.used_inodes == c.real_inodes))
			continue;
		f = add_finding(fs, v[i].ino, NULL,
				"quota usage says %lld bytes, %lld inodes; "
				"its tree holds %lld bytes, %lld inodes",
				(long long)c.q.used_space,
				(long long)c.q.used_inodes,
				(long long)c.real_space,
				(long long)c.real_inodes);
		if (!f)
			rc = -ENOMEM;
		else
			f->fix = FIX_QUOTA;
	}
	free(v);
	return rc;
}

static int check_tree(struct fsck *fs)
{
	int rc = 0;

	if (fs->top && !find_ino(fs, fs->top))
		return log_fail(-EIO, "'%s' has no inode record", fs->path);
	for (size_t i = 0; rc == 0 && i < fs->nino; i++)
		rc = check_inode(fs, &fs->ino[i]);
	if (rc == 0 && !fs->top)
		rc = check_counters(fs);
	if (rc == 0 && !fs->top)
		rc = check_quotas(fs);
	return rc;
}

/* ---- pass 4: the blocks ---- */

/* The largest object a block of @len bytes may be stored as. */
static uint64_t max_size(const struct fsck *fs, uint32_t len)
{
	bool enc = strcmp(fs->f.encrypt, "none") != 0;

	return FRAME_HDR_LEN + (enc ? FRAME_SEAL_OVERHEAD : 0) + (uint64_t)len;
}

static bool exact_size(const struct fsck *fs)
{
	return strcmp(fs->f.compress, "none") == 0;
}

/*
 * --verify: blocks whose size is right are queued (fvjob) while the
 * blocks are checked, then read and decoded by --threads threads at once
 * (each takes the next job; the calling thread works too and draws the
 * progress), and their findings added in order afterwards.
 */
struct fvjob {
	uint64_t id;
	uint32_t index, len;
	size_t a, b; /* refs [a, b) of the slice */
	const char *why; /* static reason, or NULL when it decodes */
};

/* check_block's answer for a block to verify later. */
static const char verify_later[] = "";

struct vpool {
	struct fsck *fs;
	atomic_size_t next;
	atomic_uint_fast64_t done, bytes;
};

/* NULL when block @key (@len bytes) decodes; else why not.  Any thread. */
static const char *verify_one(struct fsck *fs, const char *key, uint32_t len,
			      atomic_uint_fast64_t *bytes)
{
	struct buf raw = BUF_INIT;
	const char *why = "does not verify: cannot read it";
	int rc = obj_get(fs->os, key, 0, OBJ_TO_END, &raw);

	if (rc == 0) {
		struct frame_obj o = {key, raw.data, raw.len};
		const char *w = NULL;
		ssize_t got;

		atomic_fetch_add(bytes, raw.len);
		got = raw.len > FRAME_HDR_LEN
			      ? frame_decode_obj_to(&fs->fc, &o,
						    raw.data + FRAME_HDR_LEN,
						    raw.len - FRAME_HDR_LEN, &w)
			      : -EIO;
		if (got >= 0 && (uint64_t)got == len)
			why = NULL;
		else if (got >= 0)
			why = "does not verify: decoded length differs from "
			      "the key's";
		else if (got == -ENOMEM)
			why = "does not verify: out of memory";
		else if (w && !strcmp(w, "bad checksum"))
			why = "does not verify: bad checksum";
		else
			why = "does not verify: bad frame";
	} else if (rc == -ENOENT) {
		why = "is missing";
	}
	buf_release(&raw);
	return why;
}

/* Jobs until none is left; with @pg, draw progress (calling thread). */
static void verify_loop(struct vpool *p, struct progress *pg)
{
	struct fsck *fs = p->fs;
	char key[OBJ_KEY_MAX];

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		struct fvjob *j;

		if (i >= fs->nvj)
			break;
		j = &fs->vj[i];
		chunk_key(fs->f.name, j->id, j->index, j->len, key,
			  sizeof(key));
		j->why = verify_one(fs, key, j->len, &p->bytes);
		atomic_fetch_add(&p->done, 1);
		if (pg)
			progress_add(pg, atomic_load(&p->done) - pg->done);
	}
}

static void *verify_main(void *arg)
{
	verify_loop(arg, NULL);
	return NULL;
}

static int verify_all(struct fsck *fs)
{
	size_t nt = MIN((size_t)fs->threads, fs->nvj), started = 0;
	pthread_t *t = calloc(nt ? nt : 1, sizeof(*t));
	struct vpool p = {.fs = fs};
	char key[OBJ_KEY_MAX];
	int rc = 0;

	if (!t)
		return -ENOMEM;
	progress_init(&fs->pg, "fsck: verifying blocks", "blocks", fs->nvj,
		      fs->quiet);
	for (size_t i = 1; i < nt; i++)
		if (pthread_create(&t[started], NULL, verify_main, &p) == 0)
			started++;
	verify_loop(&p, &fs->pg);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	progress_end(&fs->pg);
	free(t);
	fs->bytes += atomic_load(&p.bytes);
	for (size_t i = 0; rc == 0 && i < fs->nvj; i++) {
		struct fvjob *j = &fs->vj[i];

		if (!j->why)
			continue;
		chunk_key(fs->f.name, j->id, j->index, j->len, key,
			  sizeof(key));
		for (size_t r = j->a; rc == 0 && r < j->b; r++)
			if (r == j->a || fs->ref[r].ino != fs->ref[r - 1].ino)
				rc = FINDING(fs, fs->ref[r].ino, key,
					     "object '%s' %s", key, j->why);
	}
	return rc;
}

static int verify_push(struct fsck *fs, const struct fref *r, uint32_t index,
		       uint32_t len, size_t a, size_t b)
{
	if (grow(&fs->vj, &fs->cvj, fs->nvj, sizeof(*fs->vj)) < 0)
		return -ENOMEM;
	fs->vj[fs->nvj++] = (struct fvjob){r->id, index, len, a, b, NULL};
	return 0;
}

/* What is wrong with block @index of slice @r, or NULL. */
static const char *check_block(struct fsck *fs, const struct fref *r,
			       uint32_t index, const char *key)
{
	uint32_t len = chunk_slice_block_len(r->size, fs->f.block_size, index);
	struct fobj k = {r->id, index, 0, 0}, *o;
	struct obj_info info;
	uint64_t size;

	o = fs->nobj ? bsearch(&k, fs->obj, fs->nobj, sizeof(k), cmp_obj)
		     : NULL;
	if (o && o->len == len) {
		size = o->size;
	} else {
		int rc = obj_head(fs->os, key, &info);

		if (rc == -ENOENT)
			return "is missing";
		if (rc < 0)
			return "cannot be read (HEAD failed)";
		size = info.size;
	}
	if (size <= FRAME_HDR_LEN || size > max_size(fs, len) ||
	    (exact_size(fs) && size != max_size(fs, len))) {
		snprintf(fs->msg, sizeof(fs->msg),
			 "has %llu bytes, a block of %u needs %s%llu",
			 (unsigned long long)size, len,
			 exact_size(fs) ? "" : "at most ",
			 (unsigned long long)max_size(fs, len));
		return fs->msg;
	}
	return fs->verify ? verify_later : NULL;
}

/* Check the blocks of the slice of refs [@a, @b) (same id). */
static int check_slice(struct fsck *fs, size_t a, size_t b)
{
	const struct fref *r = &fs->ref[a];
	uint32_t n = chunk_slice_blocks(r->size, fs->f.block_size);
	char key[OBJ_KEY_MAX];
	int rc = 0;

	if (has_u64(fs->pend, fs->npend, r->id))
		rc = FINDING(fs, r->ino, NULL,
			     "slice %llu is queued for deletion but in use",
			     (unsigned long long)r->id);
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		uint32_t len =
			chunk_slice_block_len(r->size, fs->f.block_size, i);
		const char *why;

		chunk_key(fs->f.name, r->id, i, len, key, sizeof(key));
		why = check_block(fs, r, i, key);
		if (why == verify_later) {
			rc = verify_push(fs, r, i, len, a, b);
			why = NULL;
		}
		for (size_t j = a; why && rc == 0 && j < b; j++)
			if (j == a || fs->ref[j].ino != fs->ref[j - 1].ino)
				rc = FINDING(fs, fs->ref[j].ino, key,
					     "object '%s' %s", key, why);
		fs->blocks++;
		progress_add(&fs->pg, 1);
	}
	return rc;
}

static int check_blocks(struct fsck *fs)
{
	uint64_t total = 0;
	size_t n = 0, a = 0;
	int rc = 0;

	for (size_t i = 0; i < fs->nref; i++)
		if (in_scope(fs, fs->ref[i].ino))
			fs->ref[n++] = fs->ref[i];
	fs->nref = n;
	sort_n(fs->ref, n, sizeof(*fs->ref), cmp_ref);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || fs->ref[i].id != fs->ref[i - 1].id)
			total += chunk_slice_blocks(fs->ref[i].size,
						    fs->f.block_size);
	progress_init(&fs->pg,
		      "fsck: checking blocks", "blocks", total, fs->quiet);
	for (size_t b = 1; rc == 0 && b <= n; b++) {
		if (b < n && fs->ref[b].id == fs->ref[a].id)
			continue;
		rc = check_slice(fs, a, b);
		a = b;
	}
	progress_end(&fs->pg);
	if (rc == 0 && fs->nvj)
		rc = verify_all(fs);
	return rc;
}

/* Chunks of inodes that neither exist nor wait for deletion. */
static int check_chunk_owners(struct fsck *fs)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < fs->nref; i++) {
		uint64_t ino = fs->ref[i].ino;

		if (i && fs->ref[i - 1].ino == ino)
			continue;
		if (!find_ino(fs, ino) && !has_u64(fs->delf, fs->ndelf, ino))
			rc = FINDING(
				fs, ino, NULL,
				"chunks of inode %llu, which has no record "
				"(not repaired)",
				(unsigned long long)ino);
	}
	return rc;
}

/* ---- pass 5: repairs ---- */

static int repair_one(struct fsck *fs, struct finding *f)
{
	char name[TESSERA_NAME_MAX + 1];
	int rc;

	switch (f->fix) {
	case FIX_INODE:
		rc = meta_fix_inode(fs->m, f->ino, &f->f);
		break;
	case FIX_COUNTERS:
		rc = meta_fix_counters(fs->m, f->f.length, f->f.next_cookie);
		break;
	case FIX_QUOTA: {
		struct meta_quota_check c;

		rc = meta_quota_check(fs->m, f->ino, true, &c);
		break;
	}
	case FIX_ORPHAN:
		rc = meta_orphan_to_trash(fs->m, f->ino, name, sizeof(name));
		if (rc == -EISDIR)
			return asprintf(&f->note, "not repaired: a directory") <
					       0
				       ? -ENOMEM
				       : 0;
		if (rc == 0 && asprintf(&f->note, "moved to /%s/%s",
					META_TRASH_NAME, name) < 0)
			return -ENOMEM;
		break;
	default:
		return 0;
	}
	if (rc == 0)
		f->repaired = true;
	return rc;
}

static int repair(struct fsck *fs)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < fs->nfd; i++)
		rc = repair_one(fs, &fs->fd[i]);
	return rc;
}

/* ---- output ---- */

static size_t count_left(const struct fsck *fs)
{
	size_t n = 0;

	for (size_t i = 0; i < fs->nfd; i++)
		n += !fs->fd[i].repaired;
	return n;
}

static void print_text(struct fsck *fs)
{
	char path[FSCK_PATH_MAX];

	for (size_t i = 0; i < fs->nfd; i++) {
		const struct finding *f = &fs->fd[i];

		path_of(fs, f->ino, path, sizeof(path));
		printf("%s (inode %llu): %s%s%s%s\n", path,
		       (unsigned long long)f->ino, f->what,
		       f->repaired ? "; repaired" : "", f->note ? ": " : "",
		       f->note ? f->note : "");
	}
	printf("volume '%s': %zu inodes, %llu blocks%s checked; %zu "
	       "problems, %zu repaired\n",
	       fs->f.name, fs->nino, (unsigned long long)fs->blocks,
	       fs->verify ? " read and" : "", fs->nfd,
	       fs->nfd - count_left(fs));
}

static int print_json(struct fsck *fs)
{
	json_t *a = json_array(), *root;
	char path[FSCK_PATH_MAX];

	for (size_t i = 0; a && i < fs->nfd; i++) {
		const struct finding *f = &fs->fd[i];
		json_t *o;

		path_of(fs, f->ino, path, sizeof(path));
		o = json_pack("{s:s, s:I, s:s, s:b}", "path", path, "inode",
			      (json_int_t)f->ino, "problem", f->what,
			      "repaired", (int)f->repaired);

		if (o && f->key)
			json_object_set_new(o, "key", json_string(f->key));
		if (o && f->note)
			json_object_set_new(o, "repair", json_string(f->note));
		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	root = a ? json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "volume",
			     fs->f.name, "inodes", (json_int_t)fs->nino,
			     "blocks", (json_int_t)fs->blocks, "problems",
			     (json_int_t)fs->nfd, "left",
			     (json_int_t)count_left(fs), "findings", a)
		 : NULL;
	if (!root)
		return log_fail(-ENOMEM, "cannot encode the findings as JSON");
	json_dumpf(root, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(root);
	return 0;
}

/* ---- the command ---- */

enum {
	OPT_PATH = 256,
	OPT_VERIFY,
	OPT_REPAIR,
	OPT_JSON,
	OPT_QUIET,
	OPT_KEY,
	OPT_THREADS
};

static const struct option fsck_opts[] = {
	{"path", required_argument, NULL, OPT_PATH},
	{"verify", no_argument, NULL, OPT_VERIFY},
	{"repair", no_argument, NULL, OPT_REPAIR},
	{"json", no_argument, NULL, OPT_JSON},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"encrypt-key", required_argument, NULL, OPT_KEY},
	{"threads", required_argument, NULL, OPT_THREADS},
	{NULL, 0, NULL, 0},
};

static int fsck_opt(void *arg, int c, const char *optval)
{
	struct fsck *fs = arg;

	switch (c) {
	case OPT_PATH:
		fs->path = optval;
		return *optval == '/' ? 0
				      : cli_usage_error("fsck",
							"--path must start "
							"with '/': '%s'",
							optval);
	case OPT_VERIFY:
		fs->verify = true;
		return 0;
	case OPT_REPAIR:
		fs->repair = true;
		return 0;
	case OPT_JSON:
		fs->json = true;
		return 0;
	case OPT_QUIET:
		fs->quiet = true;
		return 0;
	case OPT_KEY:
		fs->key_file = optval;
		return 0;
	case OPT_THREADS:
		if (cli_parse_uint(optval, &fs->threads) < 0 ||
		    fs->threads == 0 || fs->threads > 256)
			return cli_usage_error("fsck",
					       "--threads: 1 to 256, not '%s'",
					       optval);
		return 0;
	}
	return EXIT_USAGE;
}

static int live_sessions(struct fsck *fs)
{
	struct meta_session *s = NULL;
	size_t n = 0;
	int rc = meta_sessions(fs->m, &s, &n);

	if (rc < 0)
		return log_fail(rc, "cannot list the sessions of volume '%s'",
				fs->f.name);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (!s[i].stale)
			rc = push_u64(&fs->live, &fs->nlive, &fs->clive,
				      s[i].sid);
	free(s);
	if (rc < 0)
		return rc;
	sort_n(fs->live, fs->nlive, sizeof(*fs->live), cmp_u64);
	if (fs->repair && fs->nlive) {
		log_error("refusing to repair volume '%s': it has %zu live "
			  "sessions (mounts); unmount it first",
			  fs->f.name, fs->nlive);
		return -EBUSY;
	}
	return 0;
}

/* Open the metadata (@write: with the lease of a replicated volume). */
static int open_meta(struct fsck *fs, bool write)
{
	struct cli_open_opts o = {.write = write, .quiet = fs->quiet};
	int rc = cli_vol_open(fs->vol_arg, &o, &fs->cv, &fs->f);

	if (rc < 0)
		return rc;
	if (write)
		rc = cli_vol_wrap(&fs->cv);
	if (rc == 0)
		rc = cli_vol_meta(&fs->cv, &fs->m);
	cli_vol_close(&fs->cv);
	return rc;
}

/*
 * Sessions are checked on a read-only open first, so that --repair on a
 * mounted volume says so rather than asking for its lease.
 */
static int open_volume(struct fsck *fs)
{
	int rc = open_meta(fs, false);

	if (rc == 0)
		rc = live_sessions(fs);
	if (rc == 0 && fs->repair) {
		meta_close(fs->m);
		fs->m = NULL;
		rc = open_meta(fs, true);
	}
	if (rc == 0 && fs->verify)
		rc = cli_frame_conf(&fs->f, fs->key_file, &fs->fc);
	if (rc == 0)
		rc = obj_open(cli_vol_storage(&fs->cv, &fs->f), false, &fs->os);
	return rc;
}

static int run(struct fsck *fs)
{
	int rc = list_store(fs);

	if (rc == 0)
		rc = read_meta(fs);
	if (rc == 0)
		rc = check_tree(fs);
	if (rc == 0 && !fs->top)
		rc = check_chunk_owners(fs);
	if (rc == 0)
		rc = check_blocks(fs);
	if (rc == 0 && fs->repair)
		rc = repair(fs);
	if (rc == -ENOMEM)
		log_fail(rc, "cannot check volume '%s'", fs->f.name);
	if (rc < 0)
		return EXIT_ERR;
	if (fs->json && print_json(fs) < 0)
		return EXIT_ERR;
	if (!fs->json)
		print_text(fs);
	return count_left(fs) ? EXIT_ERR : EXIT_OK;
}

int cmd_fsck(int argc, char **argv)
{
	struct fsck fs;
	const char *pos[1];
	int npos, rc;

	memset(&fs, 0, sizeof(fs));
	fs.threads = 8;
	rc = cli_getopt("fsck", argc, argv, NULL, fsck_opts, fsck_opt, &fs, pos,
			1, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return cli_usage_error("fsck", "missing volume");
	fs.vol_arg = pos[0];
	rc = open_volume(&fs) < 0 ? EXIT_ERR : run(&fs);
	explicit_bzero(fs.fc.key, sizeof(fs.fc.key));
	free_state(&fs);
	free(fs.obj);
	free(fs.live);
	meta_close(fs.m);
	obj_close(fs.os);
	return rc;
}
