/*
 * kv.c - kv_open (through the registry, kv_registry.c) and the kv_*
 * wrappers (the only code that touches ->ops), plus counters built on
 * get/put.
 */
#include "util/common.h"
#include "meta/kv.h"
#include "util/log.h"
#include "util/url.h"

int kv_open(const char *url, bool create, struct kv_engine **out)
{
	char red[1200];
	const char *why = NULL;
	const struct kv_engine_class *cls;
	struct url u;
	int rc;

	rc = url_parse(url, &u, &why);
	if (rc < 0) {
		log_error("invalid metadata URL '%s': %s",
			  url_redact(url, red, sizeof(red)), why);
		return rc;
	}
	cls = kv_engine_find(u.scheme);
	if (cls) {
		rc = cls->open(url, create, out);
	} else {
		log_error("unsupported metadata URL '%s': scheme '%s' is not a "
			  "metadata engine",
			  url_redact(url, red, sizeof(red)), u.scheme);
		rc = -EINVAL;
	}
	url_release(&u);
	return rc;
}

void kv_close(struct kv_engine *e)
{
	if (e)
		e->ops->close(e);
}

int kv_begin(struct kv_engine *e, bool rw, struct kv_txn **out)
{
	return e->ops->begin(e, rw, out);
}

int kv_get(struct kv_txn *t, int grp, const void *key, size_t klen,
	   struct buf *val)
{
	return t->eng->ops->get(t, grp, key, klen, val);
}

int kv_put(struct kv_txn *t, int grp, const void *key, size_t klen,
	   const void *val, size_t vlen)
{
	if (klen > KV_KEY_MAX || vlen > KV_VAL_MAX)
		return -EINVAL;
	return t->eng->ops->put(t, grp, key, klen, val, vlen);
}

int kv_del(struct kv_txn *t, int grp, const void *key, size_t klen)
{
	return t->eng->ops->del(t, grp, key, klen);
}

int kv_scan(struct kv_txn *t, int grp, const void *prefix, size_t plen,
	    const void *start, size_t slen, size_t limit, kv_scan_fn fn,
	    void *arg)
{
	return t->eng->ops->scan(t, grp, prefix, plen, start, slen, limit, fn,
				 arg);
}

int kv_commit(struct kv_txn *t)
{
	return t->eng->ops->commit(t);
}

void kv_rollback(struct kv_txn *t)
{
	t->eng->ops->rollback(t);
}

int kv_sync(struct kv_engine *e)
{
	return e->ops->sync ? e->ops->sync(e) : 0;
}

int kv_wipe(struct kv_engine *e)
{
	return e->ops->wipe ? e->ops->wipe(e) : -ENOSYS;
}

int kv_incr(struct kv_txn *t, const char *name, int64_t delta, int64_t *out)
{
	struct buf v = BUF_INIT;
	unsigned char enc[8];
	int64_t cur = 0;
	int rc;

	rc = kv_get(t, KV_COUNTER, name, strlen(name), &v);
	if (rc == 0 && v.len == 8)
		cur = (int64_t)get_be64((const unsigned char *)v.data);
	else if (rc == 0)
		rc = -EIO;
	buf_release(&v);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	cur += delta;
	put_be64(enc, (uint64_t)cur);
	rc = kv_put(t, KV_COUNTER, name, strlen(name), enc, 8);
	if (rc == 0 && out)
		*out = cur;
	return rc;
}

int kv_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int c = memcmp(a, b, MIN(alen, blen));

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

size_t kv_prefix_end(const unsigned char *p, size_t n, unsigned char *out)
{
	while (n > 0 && p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	memcpy(out, p, n);
	out[n - 1]++;
	return n;
}
