/*
 * dump.c - write a volume's metadata as one JSON document (dump.h; the
 * format is described in docs/dump.md).
 *
 * Everything is read through one meta_view, section by section, and
 * written as it is read: each inode, entry, chunk... is one small object
 * in a top-level array, so nothing is held per file.  The few things held
 * are bounded by what is in flight, not by the volume: the inodes kept
 * alive by sessions (unlinked while open) and the deleted files whose
 * chunks are not purged yet.
 *
 * Sessions do not go into a dump: an inode a session keeps alive after
 * its last name went (nlink 0) is written as a deleted file, so that a
 * loaded volume purges its data instead of keeping an orphan.  A chunk
 * record whose inode is neither a regular file nor a deleted file (damage
 * fsck reports) is skipped with a warning.
 *
 * The checksum member is the xxh3-64 of every byte before its key's
 * opening quote; the writer hashes what it flushes.
 */
#include "util/common.h"
#include "meta/dump_int.h"
#include "meta/meta_int.h"
#include "util/log.h"

#include <sys/stat.h>
#include <xxhash.h>

#define DW_FLUSH (64 * 1024)
#define DW_DEPTH 8
#define DW_PROGRESS_EVERY 4096
#define DW_PAGE 512		    /* records a page of xattrs or inodes */
#define DW_PAGE_BYTES (1024 * 1024) /* or this many bytes of xattrs */

struct dw {
	meta_dump_write_fn w;
	void *arg;
	const struct meta_dump_opts *o;
	struct buf out;
	XXH3_state_t *hs;
	int depth;
	bool first[DW_DEPTH];
	bool inl[DW_DEPTH]; /* an inline array: no newlines inside */
	struct meta_dump_stats st;
	uint64_t items;
	struct meta_view *v;
	/* inodes kept by sessions with no name left: written as deleted */
	struct gone {
		uint64_t ino, length;
	} * gone;
	size_t ngone, cgone;
	uint64_t *sus; /* sustained inodes, sorted */
	size_t nsus, csus;
	uint64_t *del; /* deleted files, sorted (chunk owners) */
	size_t ndel, cdel;
	uint64_t chunk_ino; /* owner check of the last chunk's inode */
	bool chunk_ok;
	/* the xattr records, a page at a time beside the inode scan:
	 * packed ino(8) name length(1) name value length(4) value */
	struct buf xp;
	size_t xoff;
	bool xend, xany, xfull;
	size_t xn;
	uint64_t xlast_ino;
	char xlast[META_XATTR_NAME_MAX + 1];
	size_t xlast_len;
	/* the inodes, a page at a time beside the chunk scan */
	struct ipage {
		uint64_t ino;
		uint32_t mode, nlink;
	} * ip;
	size_t nip, ioff;
	bool iend;
	uint64_t skipped;
};

/* ---- output ---- */

static int dw_flush(struct dw *d)
{
	int rc = 0;

	if (d->out.len == 0)
		return 0;
	XXH3_64bits_update(d->hs, d->out.data, d->out.len);
	rc = d->w(d->arg, d->out.data, d->out.len);
	d->st.bytes += d->out.len;
	buf_reset(&d->out);
	return rc;
}

static int dw_raw(struct dw *d, const char *s, size_t n)
{
	int rc = buf_append(&d->out, s, n);

	if (rc == 0 && d->out.len >= DW_FLUSH)
		rc = dw_flush(d);
	return rc;
}

static int dw_s(struct dw *d, const char *s)
{
	return dw_raw(d, s, strlen(s));
}

static bool dw_nl(const struct dw *d, int depth)
{
	return depth >= 1 && !d->inl[depth] && (d->o->indent || depth <= 2);
}

static int dw_newline(struct dw *d, int depth)
{
	static const char sp[] = "\n                ";
	int n = d->o->indent ? 2 * depth : 0;

	return dw_raw(d, sp, 1 + (size_t)MIN(n, 16));
}

/* Before a member or an element at the current depth. */
static int dw_sep(struct dw *d)
{
	int rc = 0;

	if (!d->first[d->depth])
		rc = dw_raw(d, ",", 1);
	d->first[d->depth] = false;
	if (rc == 0 && dw_nl(d, d->depth))
		rc = dw_newline(d, d->depth);
	return rc;
}

static int dw_escape(struct dw *d, const char *p, size_t n)
{
	char tmp[8];
	size_t i, run = 0;
	int rc = dw_raw(d, "\"", 1);

	for (i = 0; rc == 0 && i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		rc = dw_raw(d, p + run, i - run);
		run = i + 1;
		if (rc < 0)
			break;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			rc = dw_raw(d, tmp, 2);
		} else if (c == '\n') {
			rc = dw_raw(d, "\\n", 2);
		} else if (c == '\t') {
			rc = dw_raw(d, "\\t", 2);
		} else {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			rc = dw_raw(d, tmp, 6);
		}
	}
	if (rc == 0)
		rc = dw_raw(d, p + run, n - run);
	if (rc == 0)
		rc = dw_raw(d, "\"", 1);
	return rc;
}

static int dw_key(struct dw *d, const char *k)
{
	int rc = dw_sep(d);

	if (rc == 0)
		rc = dw_escape(d, k, strlen(k));
	if (rc == 0)
		rc = dw_raw(d, d->o->indent ? ": " : ":", d->o->indent ? 2 : 1);
	return rc;
}

static int dw_open(struct dw *d, const char *k, char c, bool inl)
{
	int rc = k ? dw_key(d, k) : d->depth ? dw_sep(d) : 0;

	if (rc == 0)
		rc = dw_raw(d, &c, 1);
	if (rc == 0 && d->depth + 1 >= DW_DEPTH)
		rc = -EINVAL;
	if (rc == 0) {
		d->depth++;
		d->first[d->depth] = true;
		d->inl[d->depth] = inl || d->inl[d->depth - 1];
	}
	return rc;
}

static int dw_close(struct dw *d, char c)
{
	bool empty = d->first[d->depth];
	int rc = 0;

	d->depth--;
	if (!empty && dw_nl(d, d->depth + 1))
		rc = dw_newline(d, d->depth);
	if (rc == 0)
		rc = dw_raw(d, &c, 1);
	return rc;
}

static int dw_i64(struct dw *d, const char *k, int64_t v)
{
	char tmp[32];
	int rc = k ? dw_key(d, k) : dw_sep(d);

	snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	return rc ? rc : dw_s(d, tmp);
}

static int dw_u64(struct dw *d, const char *k, uint64_t v)
{
	char tmp[32];
	int rc = k ? dw_key(d, k) : dw_sep(d);

	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	return rc ? rc : dw_s(d, tmp);
}

static int dw_bool(struct dw *d, const char *k, bool v)
{
	int rc = dw_key(d, k);

	return rc ? rc : dw_s(d, v ? "true" : "false");
}

/* A string member: "k": text, or "k_b64": base64 when not text. */
static int dw_str(struct dw *d, const char *k, const void *p, size_t n)
{
	struct buf b = BUF_INIT;
	char key[64];
	int rc;

	if (dump_is_text(p, n)) {
		rc = dw_key(d, k);
		return rc ? rc : dw_escape(d, p, n);
	}
	snprintf(key, sizeof(key), "%s_b64", k);
	rc = dw_key(d, key);
	if (rc == 0)
		rc = dump_b64_encode(&b, p, n);
	if (rc == 0)
		rc = dw_escape(d, b.data ? b.data : "", b.len);
	buf_release(&b);
	return rc;
}

static void dw_item(struct dw *d)
{
	if (++d->items % DW_PROGRESS_EVERY == 0 && d->o->progress)
		d->o->progress(d->o->progress_arg, d->items);
}

/* ---- sets of inode numbers ---- */

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static bool in_set(const uint64_t *a, size_t n, uint64_t v)
{
	return n && bsearch(&v, a, n, sizeof(*a), cmp_u64);
}

static int push(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		uint64_t *p = realloc(*a, c * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*a = p;
		*cap = c;
	}
	(*a)[(*n)++] = v;
	return 0;
}

/* ---- sections ---- */

static int dump_volume(struct dw *d)
{
	struct meta_format f;
	int rc = meta_view_format(d->v, &f);

	if (rc == -ENOENT)
		rc = log_fail(-EIO, "no volume settings");
	if (rc == 0)
		rc = dw_open(d, "volume", '{', false);
	if (rc == 0)
		rc = dw_str(d, "name", f.name, strlen(f.name));
	if (rc == 0)
		rc = dw_str(d, "uuid", f.uuid, strlen(f.uuid));
	if (rc == 0)
		rc = dw_str(d, "storage", f.storage, strlen(f.storage));
	if (rc == 0)
		rc = dw_u64(d, "block_size", f.block_size);
	if (rc == 0)
		rc = dw_u64(d, "chunk_size", f.chunk_size);
	if (rc == 0)
		rc = dw_str(d, "compress", f.compress, strlen(f.compress));
	if (rc == 0)
		rc = dw_str(d, "encrypt", f.encrypt, strlen(f.encrypt));
	if (rc == 0 && f.key_wrapped[0])
		rc = dw_str(d, "key_wrapped", f.key_wrapped,
			    strlen(f.key_wrapped));
	if (rc == 0)
		rc = dw_u64(d, "trash_days", f.trash_days);
	if (rc == 0)
		rc = dw_u64(d, "capacity", f.capacity);
	if (rc == 0)
		rc = dw_u64(d, "inodes", f.inodes);
	if (rc == 0)
		rc = dw_u64(d, "version", f.version);
	if (rc == 0)
		rc = dw_i64(d, "created", f.created_ns);
	if (rc == 0)
		rc = dw_bool(d, "replicate", f.replicate);
	return rc ? rc : dw_close(d, '}');
}

static int counter_one(void *arg, const char *name, uint64_t v, bool corrupt)
{
	struct dw *d = arg;

	if (corrupt)
		return log_fail(-EIO, "corrupt counter '%s'", name);
	return dw_i64(d, name, (int64_t)v);
}

static int sus_one(void *arg, uint64_t sid, uint64_t ino)
{
	struct dw *d = arg;

	UNUSED(sid);
	return push(&d->sus, &d->nsus, &d->csus, ino);
}

/* ---- xattrs: a page of records at a time ---- */

static int xpage_one(void *arg, uint64_t ino, const char *name, size_t name_len,
		     const void *value, size_t len)
{
	struct dw *d = arg;
	unsigned char h[13];
	int rc;

	put_be64(h, ino);
	h[8] = (unsigned char)name_len;
	rc = buf_append(&d->xp, h, 9);
	if (rc == 0)
		rc = buf_append(&d->xp, name, name_len);
	put_be32(h, (uint32_t)len);
	if (rc == 0)
		rc = buf_append(&d->xp, h, 4);
	if (rc == 0)
		rc = buf_append(&d->xp, value, len);
	d->xlast_ino = ino;
	memcpy(d->xlast, name, name_len);
	d->xlast_len = name_len;
	d->xany = true;
	d->xn++;
	if (rc == 0 && d->xp.len >= DW_PAGE_BYTES) {
		d->xfull = true;
		return 1; /* a full page: the rest next time */
	}
	return rc;
}

static int xpage_fill(struct dw *d)
{
	int rc;

	buf_reset(&d->xp);
	d->xoff = d->xn = 0;
	d->xfull = false;
	rc = meta_view_xattrs_from(d->v, d->xlast_ino,
				   d->xany ? d->xlast : NULL, d->xlast_len,
				   DW_PAGE, xpage_one, d);
	/* a short page not stopped for its bytes is the last one */
	d->xend = d->xn < DW_PAGE && !d->xfull;
	return rc;
}

/* The xattrs of inode @ino into its item (records of inodes without an
 * item, damage, are passed over). */
static int dump_xattrs(struct dw *d, uint64_t ino)
{
	bool started = false;
	int rc = 0;

	while (rc == 0) {
		const unsigned char *p;
		size_t nlen, vlen;
		uint64_t xi;

		if (d->xoff == d->xp.len) {
			if (d->xend)
				break;
			rc = xpage_fill(d);
			continue;
		}
		p = (const unsigned char *)d->xp.data + d->xoff;
		xi = get_be64(p);
		if (xi > ino)
			break;
		nlen = p[8];
		vlen = get_be32(p + 9 + nlen);
		d->xoff += 13 + nlen + vlen;
		if (xi < ino)
			continue;
		if (!started)
			rc = dw_open(d, "xattrs", '[', false);
		started = true;
		if (rc == 0)
			rc = dw_open(d, NULL, '{', false);
		if (rc == 0)
			rc = dw_str(d, "name", p + 9, nlen);
		if (rc == 0)
			rc = dw_str(d, "value", p + 13 + nlen, vlen);
		if (rc == 0)
			rc = dw_close(d, '}');
		d->st.xattrs++;
	}
	if (rc == 0 && started)
		rc = dw_close(d, ']');
	return rc;
}

static int inode_body(struct dw *d, const struct meta_inode *i)
{
	const struct meta_attr *a = &i->a;
	uint32_t type = a->mode & S_IFMT;
	char mode[16], target[META_SYMLINK_MAX + 2];
	int rc;

	snprintf(mode, sizeof(mode), "%04o", a->mode & 07777);
	rc = dw_u64(d, "ino", a->ino);
	if (rc == 0)
		rc = dw_key(d, "type");
	if (rc == 0)
		rc = dw_escape(d, dump_type_name(type),
			       strlen(dump_type_name(type)));
	if (rc == 0)
		rc = dw_str(d, "mode", mode, strlen(mode));
	if (rc == 0)
		rc = dw_u64(d, "uid", a->uid);
	if (rc == 0)
		rc = dw_u64(d, "gid", a->gid);
	if (rc == 0)
		rc = dw_u64(d, "nlink", a->nlink);
	if (rc == 0)
		rc = dw_u64(d, "length", a->length);
	if (rc == 0 && type == S_IFREG)
		rc = dw_u64(d, "alloc", a->alloc);
	if (rc == 0 && (type == S_IFCHR || type == S_IFBLK))
		rc = dw_u64(d, "rdev", a->rdev);
	if (rc == 0 && a->flags)
		rc = dw_u64(d, "flags", a->flags);
	if (rc == 0)
		rc = dw_i64(d, "atime", a->atime_ns);
	if (rc == 0)
		rc = dw_i64(d, "mtime", a->mtime_ns);
	if (rc == 0)
		rc = dw_i64(d, "ctime", a->ctime_ns);
	/* a file's home (quota.c's charging rule) when it has one */
	if (rc == 0 && (type == S_IFDIR || a->parent))
		rc = dw_u64(d, "parent", a->parent);
	if (rc == 0 && type == S_IFDIR)
		rc = dw_u64(d, "next_cookie", i->next_cookie);
	if (rc == 0 && type == S_IFLNK) {
		rc = meta_view_symlink(d->v, a->ino, target, sizeof(target));
		if (rc == -ENOENT)
			rc = log_fail(-EIO, "symlink %llu has no target",
				      (unsigned long long)a->ino);
		if (rc == 0)
			rc = dw_str(d, "target", target, strlen(target));
	}
	return rc ? rc : dump_xattrs(d, a->ino);
}

static int inode_one(void *arg, const struct meta_inode *i)
{
	struct dw *d = arg;
	int rc;

	if (i->corrupt)
		return log_fail(-EIO, "corrupt inode record %llu (run fsck)",
				(unsigned long long)i->a.ino);
	if (!dump_type_name(i->a.mode & S_IFMT))
		return log_fail(-EIO, "inode %llu has an unknown type %o",
				(unsigned long long)i->a.ino, i->a.mode);
	if (i->a.nlink == 0 && in_set(d->sus, d->nsus, i->a.ino)) {
		/* unlinked while open: a deleted file in the dump */
		if ((i->a.mode & S_IFMT) != S_IFREG)
			return 0;
		if (d->ngone == d->cgone) {
			size_t c = d->cgone ? d->cgone * 2 : 16;
			struct gone *p = realloc(d->gone, c * sizeof(*p));

			if (!p)
				return -ENOMEM;
			d->gone = p;
			d->cgone = c;
		}
		d->gone[d->ngone].ino = i->a.ino;
		d->gone[d->ngone++].length = i->a.length;
		return 0;
	}
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = inode_body(d, i);
	if (rc == 0)
		rc = dw_close(d, '}');
	d->st.inodes++;
	dw_item(d);
	return rc;
}

static int deleted_put(struct dw *d, uint64_t ino, uint64_t length)
{
	int rc = dw_open(d, NULL, '{', false);

	if (rc == 0)
		rc = dw_u64(d, "ino", ino);
	if (rc == 0)
		rc = dw_u64(d, "length", length);
	if (rc == 0)
		rc = dw_close(d, '}');
	if (rc == 0)
		rc = push(&d->del, &d->ndel, &d->cdel, ino);
	d->st.deleted++;
	return rc;
}

struct gone_merge {
	struct dw *d;
	size_t next; /* of d->gone */
};

static int deleted_one(void *arg, uint64_t ino, uint64_t length)
{
	struct gone_merge *g = arg;
	struct dw *d = g->d;
	int rc = 0;

	while (rc == 0 && g->next < d->ngone && d->gone[g->next].ino <= ino) {
		if (d->gone[g->next].ino != ino)
			rc = deleted_put(d, d->gone[g->next].ino,
					 d->gone[g->next].length);
		g->next++;
	}
	return rc ? rc : deleted_put(d, ino, length);
}

static int dump_deleted(struct dw *d)
{
	struct gone_merge g = {d, 0};
	int rc = dw_open(d, "deleted", '[', false);

	if (rc == 0)
		rc = meta_view_deleted(d->v, deleted_one, &g);
	while (rc == 0 && g.next < d->ngone) {
		rc = deleted_put(d, d->gone[g.next].ino,
				 d->gone[g.next].length);
		g.next++;
	}
	return rc ? rc : dw_close(d, ']');
}

static int entry_one(void *arg, const struct meta_entry *e)
{
	struct dw *d = arg;
	const char *tn = dump_type_name(e->type);
	int rc;

	if (e->corrupt || !tn)
		return log_fail(-EIO,
				"corrupt entry '%s' in directory %llu "
				"(run fsck)",
				e->name, (unsigned long long)e->parent);
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = dw_u64(d, "parent", e->parent);
	if (rc == 0)
		rc = dw_str(d, "name", e->name, e->name_len);
	if (rc == 0)
		rc = dw_u64(d, "ino", e->ino);
	if (rc == 0)
		rc = dw_key(d, "type");
	if (rc == 0)
		rc = dw_escape(d, tn, strlen(tn));
	if (rc == 0)
		rc = dw_u64(d, "cookie", e->cookie);
	d->st.entries++;
	dw_item(d);
	return rc ? rc : dw_close(d, '}');
}

static int ipage_one(void *arg, const struct meta_inode *i)
{
	struct dw *d = arg;
	struct ipage *e = &d->ip[d->nip++];

	e->ino = i->a.ino;
	e->mode = i->corrupt ? 0 : i->a.mode;
	e->nlink = i->a.nlink;
	return 0;
}

/* The inode record @ino from the page walk (chunks come in inode order);
 * NULL when there is none. */
static int ipage_find(struct dw *d, uint64_t ino, struct ipage **out)
{
	int rc = 0;

	*out = NULL;
	if (!d->ip && !(d->ip = calloc(DW_PAGE, sizeof(*d->ip))))
		return -ENOMEM;
	while (rc == 0) {
		if (d->ioff == d->nip) {
			uint64_t from = d->nip ? d->ip[d->nip - 1].ino + 1 : 0;

			if (d->iend)
				break;
			d->nip = d->ioff = 0;
			rc = meta_view_inodes_n(d->v, from, DW_PAGE, ipage_one,
						d);
			d->iend = d->nip < DW_PAGE;
			continue;
		}
		if (d->ip[d->ioff].ino > ino)
			break;
		if (d->ip[d->ioff].ino == ino) {
			*out = &d->ip[d->ioff];
			break;
		}
		d->ioff++;
	}
	return rc;
}

/* Whether chunk records of @ino belong in the dump (see the top). */
static int chunk_owner(struct dw *d, uint64_t ino)
{
	struct ipage *a;
	int rc;

	if (ino == d->chunk_ino)
		return d->chunk_ok;
	d->chunk_ino = ino;
	d->chunk_ok = in_set(d->del, d->ndel, ino);
	if (d->chunk_ok)
		return 1;
	rc = ipage_find(d, ino, &a);
	if (rc < 0)
		return rc;
	d->chunk_ok = a && (a->mode & S_IFMT) == S_IFREG &&
		      !(a->nlink == 0 && in_set(d->sus, d->nsus, ino));
	if (!d->chunk_ok)
		log_warn("skipping the chunks of inode %llu: %s",
			 (unsigned long long)ino,
			 !a ? "no such inode" : "not a regular file");
	return d->chunk_ok;
}

static int chunk_one(void *arg, const struct meta_chunk *c)
{
	struct dw *d = arg;
	int rc;

	if (c->corrupt)
		return log_fail(-EIO,
				"corrupt chunk %u of inode %llu "
				"(run fsck)",
				c->index, (unsigned long long)c->ino);
	rc = chunk_owner(d, c->ino);
	if (rc <= 0) {
		d->skipped += rc == 0;
		return rc;
	}
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = dw_u64(d, "ino", c->ino);
	if (rc == 0)
		rc = dw_u64(d, "index", c->index);
	if (rc == 0)
		rc = dw_open(d, "slices", '[', false);
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		const struct slice *s = &c->s[i];

		rc = dw_open(d, NULL, '[', true);
		if (rc == 0)
			rc = dw_u64(d, NULL, s->pos);
		if (rc == 0)
			rc = dw_u64(d, NULL, s->id);
		if (rc == 0)
			rc = dw_u64(d, NULL, s->size);
		if (rc == 0)
			rc = dw_u64(d, NULL, s->off);
		if (rc == 0)
			rc = dw_u64(d, NULL, s->len);
		if (rc == 0)
			rc = dw_close(d, ']');
	}
	if (rc == 0)
		rc = dw_close(d, ']');
	d->st.chunks++;
	d->st.slices += c->n;
	dw_item(d);
	return rc ? rc : dw_close(d, '}');
}

/* A quota: its directory and limits; usage is not written (a load
 * counts it from the tree). */
static int quota_one(void *arg, const struct meta_quota *q, bool corrupt)
{
	struct dw *d = arg;
	int rc;

	if (corrupt)
		return log_fail(-EIO, "corrupt quota record of directory %llu",
				(unsigned long long)q->ino);
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = dw_u64(d, "ino", q->ino);
	if (rc == 0)
		rc = dw_u64(d, "space", q->space_limit);
	if (rc == 0)
		rc = dw_u64(d, "inodes", q->inodes_limit);
	d->st.quotas++;
	dw_item(d);
	return rc ? rc : dw_close(d, '}');
}

static int ref_one(void *arg, const struct meta_sliceref *r)
{
	struct dw *d = arg;
	int rc;

	if (r->corrupt)
		return log_fail(-EIO, "corrupt slice reference %llu",
				(unsigned long long)r->id);
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = dw_u64(d, "id", r->id);
	if (rc == 0)
		rc = dw_u64(d, "refs", r->refs);
	d->st.slicerefs++;
	return rc ? rc : dw_close(d, '}');
}

static int pend_one(void *arg, const struct meta_pending *p)
{
	struct dw *d = arg;
	int rc;

	if (p->corrupt)
		return log_fail(-EIO, "corrupt deletion queue record %llu",
				(unsigned long long)p->id);
	rc = dw_open(d, NULL, '{', false);
	if (rc == 0)
		rc = dw_u64(d, "id", p->id);
	if (rc == 0)
		rc = dw_u64(d, "size", p->size);
	if (rc == 0)
		rc = dw_u64(d, "deleted_at", p->deleted_at);
	d->st.pending++;
	return rc ? rc : dw_close(d, '}');
}

static int ckpt_one(void *arg, const struct meta_ckpt *c)
{
	struct dw *d = arg;
	int rc = dw_open(d, NULL, '{', false);

	if (rc == 0)
		rc = dw_str(d, "name", c->name, strlen(c->name));
	if (rc == 0)
		rc = dw_u64(d, "txn_seq", c->txn_seq);
	if (rc == 0)
		rc = dw_u64(d, "next_slice", c->next_slice);
	if (rc == 0)
		rc = dw_i64(d, "time", c->time_ns);
	if (rc == 0)
		rc = dw_u64(d, "repl_seq", c->repl_seq);
	d->st.checkpoints++;
	return rc ? rc : dw_close(d, '}');
}

static int dump_summary(struct dw *d)
{
	const struct meta_dump_stats *s = &d->st;
	int rc = dw_open(d, "summary", '{', false);

	if (rc == 0)
		rc = dw_u64(d, "quotas", s->quotas);
	if (rc == 0)
		rc = dw_u64(d, "inodes", s->inodes);
	if (rc == 0)
		rc = dw_u64(d, "deleted", s->deleted);
	if (rc == 0)
		rc = dw_u64(d, "entries", s->entries);
	if (rc == 0)
		rc = dw_u64(d, "chunks", s->chunks);
	if (rc == 0)
		rc = dw_u64(d, "slicerefs", s->slicerefs);
	if (rc == 0)
		rc = dw_u64(d, "pending", s->pending);
	if (rc == 0)
		rc = dw_u64(d, "checkpoints", s->checkpoints);
	return rc ? rc : dw_close(d, '}');
}

/* The last member: the hash of every byte before its key. */
static int dump_checksum(struct dw *d)
{
	char sum[32];
	int rc = dw_sep(d);

	if (rc == 0)
		rc = dw_flush(d);
	snprintf(sum, sizeof(sum), "xxh3:%016llx",
		 (unsigned long long)XXH3_64bits_digest(d->hs));
	if (rc == 0) /* the separator is written: the key alone */
		rc = dw_s(d, d->o->indent ? "\"checksum\": \""
					  : "\"checksum\":\"");
	if (rc == 0)
		rc = dw_s(d, sum);
	if (rc == 0)
		rc = dw_s(d, "\"");
	return rc;
}

typedef int (*dw_section_fn)(struct dw *d);

static int sec_inodes(struct dw *d)
{
	return meta_view_inodes(d->v, 0, inode_one, d);
}

static int sec_entries(struct dw *d)
{
	return meta_view_entries(d->v, 0, entry_one, d);
}

static int sec_chunks(struct dw *d)
{
	return meta_view_chunks(d->v, 0, chunk_one, d);
}

static int sec_quotas(struct dw *d)
{
	return meta_view_quotas(d->v, quota_one, d);
}

static int sec_refs(struct dw *d)
{
	return meta_view_slicerefs(d->v, ref_one, d);
}

static int sec_pending(struct dw *d)
{
	return meta_view_pending(d->v, pend_one, d);
}

static int sec_ckpts(struct dw *d)
{
	return meta_view_checkpoints(d->v, ckpt_one, d);
}

static int dw_array(struct dw *d, const char *k, dw_section_fn fn)
{
	int rc = dw_open(d, k, '[', false);

	if (rc == 0)
		rc = fn(d);
	return rc ? rc : dw_close(d, ']');
}

static int dump_all(struct dw *d)
{
	int rc = dw_open(d, NULL, '{', false);

	if (rc == 0)
		rc = dw_key(d, "format");
	if (rc == 0)
		rc = dw_escape(d, META_DUMP_FORMAT, strlen(META_DUMP_FORMAT));
	if (rc == 0)
		rc = dw_u64(d, "version", META_DUMP_VERSION);
	if (rc == 0)
		rc = dw_i64(d, "dumped", meta_now_ns());
	if (rc == 0)
		rc = dump_volume(d);
	if (rc == 0)
		rc = dw_open(d, "counters", '{', false);
	if (rc == 0)
		rc = meta_view_counters(d->v, counter_one, d);
	if (rc == 0)
		rc = dw_close(d, '}');
	if (rc == 0)
		rc = dw_array(d, "quotas", sec_quotas);
	if (rc == 0)
		rc = meta_view_sustained(d->v, sus_one, d);
	if (rc == 0 && d->nsus)
		qsort(d->sus, d->nsus, sizeof(*d->sus), cmp_u64);
	if (rc == 0)
		rc = dw_array(d, "inodes", sec_inodes);
	if (rc == 0)
		rc = dump_deleted(d);
	if (rc == 0)
		rc = dw_array(d, "entries", sec_entries);
	if (rc == 0)
		rc = dw_array(d, "chunks", sec_chunks);
	if (rc == 0)
		rc = dw_array(d, "slicerefs", sec_refs);
	if (rc == 0)
		rc = dw_array(d, "pending", sec_pending);
	if (rc == 0)
		rc = dw_array(d, "checkpoints", sec_ckpts);
	if (rc == 0)
		rc = dump_summary(d);
	if (rc == 0)
		rc = dump_checksum(d);
	if (rc == 0)
		rc = dw_close(d, '}');
	if (rc == 0)
		rc = dw_raw(d, "\n", 1);
	return rc;
}

int meta_dump(struct meta *m, const struct meta_dump_opts *o,
	      meta_dump_write_fn w, void *arg, struct meta_dump_stats *st)
{
	static const struct meta_dump_opts defaults;
	struct dw d;
	int rc, end;

	memset(&d, 0, sizeof(d));
	d.w = w;
	d.arg = arg;
	d.o = o ? o : &defaults;
	d.hs = XXH3_createState();
	if (!d.hs)
		return -ENOMEM;
	XXH3_64bits_reset(d.hs);
	rc = meta_view_begin(m, &d.v);
	if (rc < 0)
		goto out;
	rc = dump_all(&d);
	end = meta_view_end(d.v);
	if (rc == 0)
		rc = end;
	if (rc == 0)
		rc = dw_flush(&d);
	if (rc == 0 && d.skipped)
		log_warn("skipped %llu chunk records of inodes that are "
			 "not regular files (fsck reports them)",
			 (unsigned long long)d.skipped);
	if (rc == 0 && st)
		*st = d.st;
out:
	XXH3_freeState(d.hs);
	buf_release(&d.out);
	free(d.gone);
	free(d.ip);
	buf_release(&d.xp);
	free(d.sus);
	free(d.del);
	return rc;
}
