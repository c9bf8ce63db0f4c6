/*
 * object.c - obj_open dispatch by scheme, the obj_* wrappers (the only code
 * that touches ->ops), key checks, and listing helpers.
 */
#include "util/common.h"
#include "object/object.h"
#include "util/log.h"
#include "util/url.h"

#include <stdatomic.h>

int obj_key_check(const char *key)
{
	size_t n;
	const char *p;

	if (!key)
		return -EINVAL;
	n = strlen(key);
	if (n == 0 || n > OBJ_KEY_MAX || key[0] == '/')
		return -EINVAL;
	for (p = key; *p;) {
		size_t c = strcspn(p, "/");

		if ((c == 1 && p[0] == '.') ||
		    (c == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		p += c;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* Under TESSERA_FAULT=spec, every opened store gets a fault layer. */
static int maybe_faulty(struct obj_store **s)
{
	const char *spec = getenv("TESSERA_FAULT");
	struct obj_store *f;
	int rc;

	if (!spec || !*spec)
		return 0;
	rc = obj_fault_wrap(*s, spec, &f);
	if (rc < 0) {
		obj_close(*s);
		return rc;
	}
	log_warn("storage '%s': injecting faults (%s)", obj_describe(f),
		 spec);
	*s = f;
	return 0;
}

int obj_open(const char *url, bool create, struct obj_store **out)
{
	return obj_open_flags(url, create ? OBJ_OPEN_CREATE : 0, out);
}

int obj_open_flags(const char *url, unsigned flags, struct obj_store **out)
{
	bool create = flags & OBJ_OPEN_CREATE;
	char red[1200];
	const char *why = NULL;
	struct obj_store *s = NULL;
	struct url u;
	int rc;

	rc = url_parse(url, &u, &why);
	if (rc < 0) {
		log_error("invalid storage URL '%s': %s",
			  url_redact(url, red, sizeof(red)), why);
		return rc;
	}
	if (strcmp(u.scheme, "file") == 0) {
		rc = obj_file_open(url, create, &s);
	} else if (strcmp(u.scheme, "s3") == 0 ||
		   strcmp(u.scheme, "http") == 0 ||
		   strcmp(u.scheme, "https") == 0) {
		rc = obj_s3_open(url, flags, &s);
	} else {
		log_error("unsupported storage URL '%s': scheme '%s' is not an "
			  "object store",
			  url_redact(url, red, sizeof(red)), u.scheme);
		rc = -EINVAL;
	}
	url_release(&u);
	if (rc == 0)
		rc = maybe_faulty(&s);
	if (rc == 0)
		*out = s;
	return rc;
}

int obj_put(struct obj_store *s, const char *key, const void *data, size_t len)
{
	return s->ops->put(s, key, data, len);
}

int obj_get(struct obj_store *s, const char *key, uint64_t off, uint64_t len,
	    struct buf *out)
{
	return s->ops->get(s, key, off, len, out);
}

int obj_head(struct obj_store *s, const char *key, struct obj_info *out)
{
	return s->ops->head(s, key, out);
}

int obj_del(struct obj_store *s, const char *key)
{
	return s->ops->del(s, key);
}

int obj_list(struct obj_store *s, const char *prefix, const char *start_after,
	     const char *token, int limit, struct obj_list *out)
{
	if (limit <= 0 || limit > 1000)
		limit = 1000;
	return s->ops->list(s, prefix ? prefix : "", start_after, token, limit,
			    out);
}

int obj_sync(struct obj_store *s)
{
	return s->ops->sync ? s->ops->sync(s) : 0;
}

int obj_state(struct obj_store *s, struct obj_state *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->state ? s->ops->state(s, out) : 0;
}

const char *obj_describe(const struct obj_store *s)
{
	return s->desc;
}

struct obj_store *obj_ref(struct obj_store *s)
{
	atomic_fetch_add(&s->extra_refs, 1);
	return s;
}

void obj_close(struct obj_store *s)
{
	if (!s || atomic_fetch_sub(&s->extra_refs, 1) > 0)
		return;
	s->ops->close(s);
}

void obj_list_init(struct obj_list *l)
{
	memset(l, 0, sizeof(*l));
}

void obj_list_reset(struct obj_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].key);
	l->n = 0;
	l->truncated = false;
	free(l->next_token);
	l->next_token = NULL;
}

void obj_list_release(struct obj_list *l)
{
	obj_list_reset(l);
	free(l->items);
	obj_list_init(l);
}

int obj_list_add(struct obj_list *l, const char *key, uint64_t size,
		 int64_t mtime_ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct obj_entry *p = realloc(l->items, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n].key = strdup(key);
	if (!l->items[l->n].key)
		return -ENOMEM;
	l->items[l->n].size = size;
	l->items[l->n].mtime_ns = mtime_ns;
	l->n++;
	return 0;
}
