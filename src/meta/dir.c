/*
 * dir.c - meta_readdir with offsets that survive concurrent changes.
 *
 * Offsets: 0 starts with "." (next 1), ".." has next 2, and an entry with
 * cookie C (KV_DIRIDX dir, C) has next C + 1.  Cookies come from a counter
 * in the directory's record and only grow, so resuming at offset O scans
 * the cookies >= O: an entry removed meanwhile is simply gone, one added
 * meanwhile has a cookie larger than every older one (so it shows up at
 * the end of this listing), and no survivor is skipped or repeated.  A
 * rename inside the directory keeps the cookie; a rename into it is a new
 * entry.  Trash entries use their inode number as cookie (meta_int.h).
 *
 * The listing runs as a series of short read transactions of
 * READDIR_BATCH entries each; the callback is called outside any
 * transaction.  With META_READDIR_PLUS each batch also reads the entries'
 * inodes (an entry whose inode vanished between batches is skipped).
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

#define READDIR_BATCH 512

struct dir_ent {
	uint64_t cookie;
	uint64_t ino;
	uint32_t type;
	size_t name_off;
	uint8_t name_len;
	bool have_attr;
	struct meta_attr attr;
};

struct dir_batch {
	uint64_t dir;
	uint64_t start;
	bool plus;
	size_t n;
	struct dir_ent e[READDIR_BATCH];
	struct buf names;
};

static int batch_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	struct dir_batch *b = arg;
	const unsigned char *v = val;
	struct dir_ent *e = &b->e[b->n];
	int rc;

	if (klen != 16 || vlen < 13 || vlen - 12 > TESSERA_NAME_MAX)
		return log_fail(-EIO, "corrupt entry in directory %llu",
				(unsigned long long)b->dir);
	e->cookie = get_be64((const unsigned char *)key + 8);
	e->ino = get_be64(v);
	e->type = get_be32(v + 8);
	e->name_off = b->names.len;
	e->name_len = (uint8_t)(vlen - 12);
	e->have_attr = false;
	rc = buf_append(&b->names, v + 12, vlen - 12);
	if (rc == 0)
		rc = buf_append(&b->names, "", 1);
	if (rc == 0)
		b->n++;
	return rc;
}

static int batch_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct dir_batch *b = arg;
	unsigned char pre[8], start[16];
	struct inode_rec r;
	int rc;

	(void)m;
	b->n = 0;
	buf_reset(&b->names);
	key_ino(pre, b->dir);
	key_diridx(start, b->dir, b->start);
	rc = kv_scan(t, KV_DIRIDX, pre, sizeof(pre), start, sizeof(start),
		     READDIR_BATCH, batch_one, b);
	for (size_t i = 0; rc == 0 && b->plus && i < b->n; i++) {
		rc = inode_get(t, b->e[i].ino, &r);
		if (rc == 0) {
			b->e[i].attr = r.a;
			b->e[i].have_attr = true;
		} else if (rc == -ENOENT) {
			rc = 0;
		}
	}
	return rc;
}

struct dir_head {
	const struct meta_cred *c;
	uint64_t dir;
	struct meta_attr self, parent;
};

static int head_fn(struct meta *m, struct kv_txn *t, void *arg)
{
	struct dir_head *h = arg;
	struct inode_rec r;
	int rc;

	(void)m;
	rc = inode_get(t, h->dir, &r);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(r.a.mode))
		return -ENOTDIR;
	rc = perm_check_t(t, h->c, &r.a, META_MAY_READ);
	if (rc == 0 && r.a.nlink == 0)
		rc = -ENOENT; /* removed while open */
	if (rc < 0)
		return rc;
	h->self = r.a;
	if (r.a.parent == h->dir || r.a.parent == 0) {
		h->parent = r.a;
		return 0;
	}
	rc = inode_get(t, r.a.parent, &r);
	if (rc == 0)
		h->parent = r.a;
	return rc;
}

static int emit_dots(const struct dir_head *h, uint64_t offset, int flags,
		     meta_dirent_fn fn, void *arg)
{
	struct meta_dirent d;
	int rc = 0;

	if (offset == 0) {
		d.ino = h->self.ino;
		d.type = S_IFDIR;
		d.next = 1;
		d.name = ".";
		d.attr = (flags & META_READDIR_PLUS) ? &h->self : NULL;
		rc = fn(arg, &d);
	}
	if (rc == 0 && offset <= 1) {
		d.ino = h->parent.ino;
		d.type = S_IFDIR;
		d.next = 2;
		d.name = "..";
		d.attr = (flags & META_READDIR_PLUS) ? &h->parent : NULL;
		rc = fn(arg, &d);
	}
	return rc;
}

/* Hand out one batch; 1 when the callback stopped, 0 to go on. */
static int emit_batch(const struct dir_batch *b, meta_dirent_fn fn, void *arg)
{
	struct meta_dirent d;
	int rc = 0;

	for (size_t i = 0; i < b->n && rc == 0; i++) {
		const struct dir_ent *e = &b->e[i];

		if (b->plus && !e->have_attr)
			continue;
		d.ino = e->ino;
		d.type = e->type;
		d.next = e->cookie + 1;
		d.name = b->names.data + e->name_off;
		d.attr = b->plus ? &e->attr : NULL;
		rc = fn(arg, &d);
	}
	return rc;
}

int meta_readdir(struct meta *m, const struct meta_cred *c, uint64_t dir,
		 uint64_t offset, int flags, meta_dirent_fn fn, void *arg)
{
	struct dir_head h = {c, dir, {0}, {0}};
	struct dir_batch *b;
	int rc;

	rc = meta_txn(m, false, head_fn, &h);
	if (rc < 0)
		return rc;
	rc = emit_dots(&h, offset, flags, fn, arg);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->dir = dir;
	b->start = MAX(offset, (uint64_t)META_COOKIE_FIRST);
	b->plus = flags & META_READDIR_PLUS;
	do {
		rc = meta_txn(m, false, batch_fn, b);
		if (rc == 0)
			rc = emit_batch(b, fn, arg);
		if (b->n)
			b->start = b->e[b->n - 1].cookie + 1;
	} while (rc == 0 && b->n == READDIR_BATCH);
	buf_release(&b->names);
	free(b);
	return rc > 0 ? 0 : rc;
}
