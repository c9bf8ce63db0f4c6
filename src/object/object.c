/*
 * object.c - obj_open dispatch by scheme, the obj_* wrappers (the only code
 * that touches ->ops), key checks, and listing helpers.
 */
#include "util/common.h"
#include "object/object.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/url.h"

#include <stdatomic.h>

/*
 * Requests of this process by method and result, their latency, bytes up
 * and down, PUTs in flight and retries (the S3 client counts those): the
 * object-store part of a mount's metrics (obj_metrics_text).
 */
enum { M_GET, M_PUT, M_HEAD, M_DELETE, M_LIST, M_N };
enum { R_OK, R_NOTFOUND, R_ERROR, R_N };
static const char *const m_name[M_N] = {"GET", "PUT", "HEAD", "DELETE",
					"LIST"};
static const char *const r_name[R_N] = {"ok", "not_found", "error"};
static _Atomic uint64_t m_requests[M_N][R_N];
static struct metric_hist m_latency[M_N];
static _Atomic uint64_t m_bytes_up, m_bytes_down, m_retries;
static _Atomic int64_t m_puts_inflight;

static void count(int method, uint64_t t0, int rc)
{
	int r = rc >= 0 ? R_OK : rc == -ENOENT ? R_NOTFOUND : R_ERROR;

	atomic_fetch_add_explicit(&m_requests[method][r], 1,
				  memory_order_relaxed);
	metric_observe(&m_latency[method], metric_now_ns() - t0);
}

void obj_count_retry(void)
{
	atomic_fetch_add_explicit(&m_retries, 1, memory_order_relaxed);
}

int obj_metrics_text(struct buf *b, bool prom)
{
	uint64_t up = atomic_load(&m_bytes_up), down = atomic_load(&m_bytes_down);
	uint64_t retries = atomic_load(&m_retries);
	long long inflight = (long long)atomic_load(&m_puts_inflight);
	int rc = 0;

	if (!prom) {
		for (int m = 0; m < M_N && rc == 0; m++)
			rc = buf_appendf(
				b, "object_%s %llu %llu %llu %llu\n", m_name[m],
				(unsigned long long)atomic_load(&m_requests[m][R_OK]),
				(unsigned long long)atomic_load(
					&m_requests[m][R_NOTFOUND]),
				(unsigned long long)atomic_load(
					&m_requests[m][R_ERROR]),
				(unsigned long long)(atomic_load(&m_latency[m].sum_ns) /
						     1000));
		if (rc == 0)
			rc = buf_appendf(b,
					 "object_bytes_up %llu\n"
					 "object_bytes_down %llu\n"
					 "object_retries %llu\n"
					 "object_puts_inflight %lld\n",
					 (unsigned long long)up,
					 (unsigned long long)down,
					 (unsigned long long)retries, inflight);
		return rc;
	}
	rc = buf_appendf(b, "# HELP tessera_object_requests_total Object store "
			    "requests by method and result.\n"
			    "# TYPE tessera_object_requests_total counter\n");
	for (int m = 0; m < M_N && rc == 0; m++)
		for (int r = 0; r < R_N && rc == 0; r++)
			rc = buf_appendf(
				b,
				"tessera_object_requests_total{method=\"%s\","
				"result=\"%s\"} %llu\n",
				m_name[m], r_name[r],
				(unsigned long long)atomic_load(&m_requests[m][r]));
	if (rc == 0)
		rc = buf_appendf(
			b, "# HELP tessera_object_request_duration_seconds "
			   "Object store request latency, retries "
			   "included.\n"
			   "# TYPE tessera_object_request_duration_seconds "
			   "histogram\n");
	for (int m = 0; m < M_N && rc == 0; m++) {
		char lab[32];

		snprintf(lab, sizeof(lab), "method=\"%s\"", m_name[m]);
		rc = metric_hist_prom(b, "tessera_object_request_duration_seconds",
				      lab, &m_latency[m]);
	}
	if (rc == 0)
		rc = buf_appendf(
			b,
			"# HELP tessera_object_bytes_total Bytes sent to "
			"(up) and received from (down) the object store.\n"
			"# TYPE tessera_object_bytes_total counter\n"
			"tessera_object_bytes_total{direction=\"up\"} %llu\n"
			"tessera_object_bytes_total{direction=\"down\"} %llu\n"
			"# HELP tessera_object_retries_total Object store "
			"requests retried after a transient failure.\n"
			"# TYPE tessera_object_retries_total counter\n"
			"tessera_object_retries_total %llu\n"
			"# HELP tessera_object_uploads_inflight Object PUTs "
			"under way.\n"
			"# TYPE tessera_object_uploads_inflight gauge\n"
			"tessera_object_uploads_inflight %lld\n",
			(unsigned long long)up, (unsigned long long)down,
			(unsigned long long)retries, inflight);
	return rc;
}

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

static int open_file(const char *url, unsigned flags, struct obj_store **out)
{
	return obj_file_open(url, flags & OBJ_OPEN_CREATE, out);
}

/*
 * The store registry: every object-store scheme, listed once.  The URL
 * parser (url_store_rule), obj_open_flags and the CLI (obj_scheme_find via
 * obj_is_store_url) all consult this table.
 */
static const struct obj_scheme schemes[] = {
	{ "file", { "file", 0, 1, 0, 1, 0, 1, 0 }, open_file },
	{ "s3", { "s3", 1, 0, 0, 0, 0, 1, 0 }, obj_s3_open },
	{ "http", { "http", 1, 0, 0, 1, 0, 1, 0 }, obj_s3_open },
	{ "https", { "https", 1, 0, 0, 1, 0, 1, 0 }, obj_s3_open },
};

const struct obj_scheme *obj_scheme_find(const char *scheme)
{
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strcasecmp(schemes[i].name, scheme) == 0)
			return &schemes[i];
	return NULL;
}

bool obj_is_store_url(const char *s)
{
	const char *p = strstr(s, "://");
	char name[16];
	size_t n;

	if (!p || !url_is_url(s))
		return false;
	n = (size_t)(p - s);
	if (n >= sizeof(name))
		return false;
	memcpy(name, s, n);
	name[n] = '\0';
	return obj_scheme_find(name) != NULL;
}

const struct url_rule *url_store_rule(const char *scheme)
{
	const struct obj_scheme *c = obj_scheme_find(scheme);

	return c ? &c->url : NULL;
}

int obj_open_flags(const char *url, unsigned flags, struct obj_store **out)
{
	char red[1200];
	const char *why = NULL;
	const struct obj_scheme *c;
	struct obj_store *s = NULL;
	struct url u;
	int rc;

	rc = url_parse(url, &u, &why);
	if (rc < 0) {
		log_error("invalid storage URL '%s': %s",
			  url_redact(url, red, sizeof(red)), why);
		return rc;
	}
	c = obj_scheme_find(u.scheme);
	if (c) {
		rc = c->open(url, flags, &s);
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
	uint64_t t0 = metric_now_ns();
	int rc;

	atomic_fetch_add_explicit(&m_puts_inflight, 1, memory_order_relaxed);
	rc = s->ops->put(s, key, data, len);
	atomic_fetch_sub_explicit(&m_puts_inflight, 1, memory_order_relaxed);
	count(M_PUT, t0, rc);
	if (rc == 0)
		atomic_fetch_add_explicit(&m_bytes_up, len,
					  memory_order_relaxed);
	return rc;
}

int obj_get(struct obj_store *s, const char *key, uint64_t off, uint64_t len,
	    struct buf *out)
{
	uint64_t t0 = metric_now_ns();
	int rc = s->ops->get(s, key, off, len, out);

	count(M_GET, t0, rc);
	if (rc == 0)
		atomic_fetch_add_explicit(&m_bytes_down, out->len,
					  memory_order_relaxed);
	return rc;
}

int obj_head(struct obj_store *s, const char *key, struct obj_info *out)
{
	uint64_t t0 = metric_now_ns();
	int rc = s->ops->head(s, key, out);

	count(M_HEAD, t0, rc);
	return rc;
}

int obj_del(struct obj_store *s, const char *key)
{
	uint64_t t0 = metric_now_ns();
	int rc = s->ops->del(s, key);

	count(M_DELETE, t0, rc);
	return rc;
}

int obj_list(struct obj_store *s, const char *prefix, const char *start_after,
	     const char *token, int limit, struct obj_list *out)
{
	uint64_t t0 = metric_now_ns();
	int rc;

	if (limit <= 0 || limit > 1000)
		limit = 1000;
	rc = s->ops->list(s, prefix ? prefix : "", start_after, token, limit,
			  out);
	count(M_LIST, t0, rc);
	return rc;
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
