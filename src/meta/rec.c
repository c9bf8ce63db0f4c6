/*
 * rec.c - encoding of meta/'s records into kv.h keys and values, and the
 * small get/put helpers over them.  The layouts are listed in meta_int.h;
 * every number is big-endian so that key byte order is numeric order.
 *
 * Decoders accept longer values than they know (fields are only ever
 * appended) and answer -EIO, logged, for shorter or malformed ones: a
 * corrupt record never becomes wrong attributes.
 */
#include "util/common.h"
#include "meta/meta_int.h"
#include "util/log.h"

void key_ino(unsigned char k[8], uint64_t ino)
{
	put_be64(k, ino);
}

size_t key_name(unsigned char *k, uint64_t ino, const char *name, size_t len)
{
	put_be64(k, ino);
	memcpy(k + 8, name, len);
	return 8 + len;
}

void key_diridx(unsigned char k[16], uint64_t dir, uint64_t cookie)
{
	put_be64(k, dir);
	put_be64(k + 8, cookie);
}

void key_chunk(unsigned char k[12], uint64_t ino, uint32_t idx)
{
	put_be64(k, ino);
	put_be32(k + 8, idx);
}

void inode_encode(const struct inode_rec *r, unsigned char v[INODE_REC_LEN])
{
	const struct meta_attr *a = &r->a;

	v[0] = 1;
	put_be32(v + 1, a->mode);
	put_be32(v + 5, a->uid);
	put_be32(v + 9, a->gid);
	put_be32(v + 13, a->nlink);
	put_be32(v + 17, a->flags);
	put_be64(v + 21, a->length);
	put_be64(v + 29, a->rdev);
	put_be64(v + 37, (uint64_t)a->atime_ns);
	put_be64(v + 45, (uint64_t)a->mtime_ns);
	put_be64(v + 53, (uint64_t)a->ctime_ns);
	put_be64(v + 61, a->parent);
	put_be64(v + 69, r->next_cookie);
	v[77] = (r->alloc_unknown ? 0 : 1) | (r->quota ? 2 : 0) |
		(r->linkable ? 4 : 0);
	put_be64(v + 78, r->alloc_unknown ? 0 : a->alloc);
}

int inode_decode(const void *val, size_t len, struct inode_rec *r)
{
	const unsigned char *v = val;
	struct meta_attr *a = &r->a;

	if (len < INODE_REC_LEN_V0 || v[0] != 1)
		return -EIO;
	a->mode = get_be32(v + 1);
	a->uid = get_be32(v + 5);
	a->gid = get_be32(v + 9);
	a->nlink = get_be32(v + 13);
	a->flags = get_be32(v + 17);
	a->length = get_be64(v + 21);
	a->rdev = get_be64(v + 29);
	a->atime_ns = (int64_t)get_be64(v + 37);
	a->mtime_ns = (int64_t)get_be64(v + 45);
	a->ctime_ns = (int64_t)get_be64(v + 53);
	a->parent = get_be64(v + 61);
	r->next_cookie = get_be64(v + 69);
	r->alloc_unknown = len < INODE_REC_LEN || !(v[77] & 1);
	r->quota = len >= INODE_REC_LEN && (v[77] & 2);
	r->linkable = len >= INODE_REC_LEN && (v[77] & 4);
	a->alloc = r->alloc_unknown ? a->length : get_be64(v + 78);
	return 0;
}

int inode_get(struct kv_txn *t, uint64_t ino, struct inode_rec *r)
{
	struct buf v = BUF_INIT;
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_get(t, KV_INODE, k, sizeof(k), &v);
	if (rc == 0) {
		memset(r, 0, sizeof(*r));
		rc = inode_decode(v.data, v.len, r);
		if (rc < 0)
			log_error("corrupt inode record %llu (%zu bytes)",
				  (unsigned long long)ino, v.len);
		r->a.ino = ino;
	}
	buf_release(&v);
	return rc;
}

int inode_put(struct kv_txn *t, const struct inode_rec *r)
{
	unsigned char k[8], v[INODE_REC_LEN];

	key_ino(k, r->a.ino);
	inode_encode(r, v);
	return kv_put(t, KV_INODE, k, sizeof(k), v, sizeof(v));
}

struct key_list {
	struct buf keys; /* each key: 2-byte length, then the bytes */
	size_t n;
};

static int collect_key(void *arg, const void *key, size_t klen, const void *val,
		       size_t vlen)
{
	struct key_list *l = arg;
	unsigned char len[2];
	int rc;

	(void)val;
	(void)vlen;
	len[0] = (unsigned char)(klen >> 8);
	len[1] = (unsigned char)klen;
	rc = buf_append(&l->keys, len, 2);
	if (rc == 0)
		rc = buf_append(&l->keys, key, klen);
	l->n++;
	return rc;
}

/* Delete every key of @grp starting with @prefix. */
static int del_prefix(struct kv_txn *t, int grp, const void *prefix,
		      size_t plen)
{
	struct key_list l = {BUF_INIT, 0};
	size_t off = 0;
	int rc;

	rc = kv_scan(t, grp, prefix, plen, NULL, 0, 0, collect_key, &l);
	while (rc == 0 && off < l.keys.len) {
		const unsigned char *p = (const unsigned char *)l.keys.data;
		size_t klen = ((size_t)p[off] << 8) | p[off + 1];

		rc = kv_del(t, grp, p + off + 2, klen);
		off += 2 + klen;
	}
	buf_release(&l.keys);
	return rc;
}

int inode_del(struct kv_txn *t, uint64_t ino)
{
	unsigned char k[8];
	int rc;

	key_ino(k, ino);
	rc = kv_del(t, KV_INODE, k, sizeof(k));
	if (rc == 0)
		rc = kv_del(t, KV_SYMLINK, k, sizeof(k));
	if (rc == 0)
		rc = del_prefix(t, KV_XATTR, k, sizeof(k));
	return rc;
}

int dent_get(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     struct dent *d)
{
	unsigned char k[8 + TESSERA_NAME_MAX];
	struct buf v = BUF_INIT;
	size_t klen = key_name(k, parent, name, len);
	int rc;

	rc = kv_get(t, KV_DENTRY, k, klen, &v);
	if (rc == 0 && v.len < DENT_VAL_LEN) {
		rc = log_fail(-EIO, "corrupt entry '%.*s' in directory %llu",
			      (int)len, name, (unsigned long long)parent);
	} else if (rc == 0) {
		const unsigned char *p = (const unsigned char *)v.data;

		d->ino = get_be64(p);
		d->type = get_be32(p + 8);
		d->cookie = get_be64(p + 12);
	}
	buf_release(&v);
	return rc;
}

int dent_put(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     const struct dent *d)
{
	unsigned char k[8 + TESSERA_NAME_MAX], ik[16];
	unsigned char v[12 + TESSERA_NAME_MAX];
	size_t klen = key_name(k, parent, name, len);
	int rc;

	put_be64(v, d->ino);
	put_be32(v + 8, d->type);
	put_be64(v + 12, d->cookie);
	rc = kv_put(t, KV_DENTRY, k, klen, v, DENT_VAL_LEN);
	if (rc < 0)
		return rc;
	key_diridx(ik, parent, d->cookie);
	memcpy(v + 12, name, len);
	return kv_put(t, KV_DIRIDX, ik, sizeof(ik), v, 12 + len);
}

int dent_del(struct kv_txn *t, uint64_t parent, const char *name, size_t len,
	     uint64_t cookie)
{
	unsigned char k[8 + TESSERA_NAME_MAX], ik[16];
	size_t klen = key_name(k, parent, name, len);
	int rc;

	rc = kv_del(t, KV_DENTRY, k, klen);
	if (rc < 0)
		return rc;
	key_diridx(ik, parent, cookie);
	return kv_del(t, KV_DIRIDX, ik, sizeof(ik));
}

static int found_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	*(int *)arg = 1;
	return 1;
}

int dir_has_entries(struct kv_txn *t, uint64_t dir)
{
	unsigned char k[8];
	int found = 0;
	int rc;

	key_ino(k, dir);
	rc = kv_scan(t, KV_DENTRY, k, sizeof(k), NULL, 0, 1, found_one, &found);
	return rc < 0 ? rc : found;
}

void slice_decode(const unsigned char v[SLICE_REC_LEN], struct slice *s)
{
	s->pos = get_be32(v);
	s->id = get_be64(v + 4);
	s->size = get_be32(v + 12);
	s->off = get_be32(v + 16);
	s->len = get_be32(v + 20);
}

int slices_decode(const void *val, size_t len, struct slice **out, size_t *n)
{
	const unsigned char *v = val;
	struct slice *s = NULL;
	size_t cnt = len / SLICE_REC_LEN;

	*out = NULL;
	*n = 0;
	if (len % SLICE_REC_LEN)
		return log_fail(-EIO, "corrupt chunk record (%zu bytes)", len);
	if (cnt == 0)
		return 0;
	s = calloc(cnt, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++, v += SLICE_REC_LEN)
		slice_decode(v, &s[i]);
	*out = s;
	*n = cnt;
	return 0;
}

int slices_append(struct buf *b, const struct slice *s, size_t n)
{
	unsigned char v[SLICE_REC_LEN];
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		put_be32(v, s[i].pos);
		put_be64(v + 4, s[i].id);
		put_be32(v + 12, s[i].size);
		put_be32(v + 16, s[i].off);
		put_be32(v + 20, s[i].len);
		rc = buf_append(b, v, sizeof(v));
	}
	return rc;
}
