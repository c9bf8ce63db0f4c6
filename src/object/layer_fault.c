/*
 * layer_fault.c - a store wrapper that injects faults, for tests only.
 *
 * Each call of a selected operation draws from one RNG: first whether to
 * sleep (delay), then whether to fail (err), then for put/del whether the
 * failure comes before or after the inner call, and for get whether to cut
 * the body (trunc) and where.  The RNG is a counter-based generator: draw
 * number i is splitmix64(seed + i * golden), with i taken from an atomic
 * counter, so draws are thread-safe without a lock, and a single-threaded
 * run with the same seed and calls sees the same faults every time.
 *
 * A cut GET returns success with a shorter body, as a broken server or
 * proxy might: the layers above (the block frame checksum) must notice.
 *
 * A call is selected when its operation is in ops= and its key (for list:
 * the prefix) starts with keys=.  Selected calls are counted; the first
 * after= of them pass untouched, so a fault can hit a later page of a
 * listing.  page= caps the keys of every selected list page (stores may
 * return short pages; callers must follow next_token).
 * Injected events are counted (atomics) and logged at DEBUG.
 *
 * No locks.  The configuration is immutable after wrap.
 */
#include "util/common.h"
#include "object/object.h"
#include "util/log.h"

#include <stdatomic.h>
#include <time.h>

enum fault_op {
	F_PUT,
	F_GET,
	F_HEAD,
	F_DEL,
	F_LIST,
	F_NOPS
};

static const char *const op_names[F_NOPS] = { "put", "get", "head", "del",
					      "list" };

struct fault_store {
	struct obj_store base;
	struct obj_store *inner;
	double err;
	double trunc;
	double delay;
	long delay_ms;
	uint64_t seed;
	uint64_t after;	 /* selected calls that pass untouched */
	uint64_t page;	 /* list: at most this many keys a page (0: any) */
	char *keys;	 /* only keys with this prefix (NULL: all) */
	unsigned ops_mask;
	_Atomic uint64_t draws;
	_Atomic uint64_t calls;
	_Atomic uint64_t errors;
	_Atomic uint64_t truncs;
	_Atomic uint64_t delays;
};

static const struct obj_store_ops fault_ops;

static struct fault_store *to_f(struct obj_store *s)
{
	return (struct fault_store *)s;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t draw_u64(struct fault_store *f)
{
	uint64_t i = atomic_fetch_add(&f->draws, 1) + 1;

	return splitmix64(f->seed + i * 0x9e3779b97f4a7c15ULL);
}

/* Uniform in [0, 1). */
static double draw(struct fault_store *f)
{
	return (double)(draw_u64(f) >> 11) * 0x1.0p-53;
}

static bool selected(const struct fault_store *f, enum fault_op op,
		     const char *key)
{
	if (!((f->ops_mask >> op) & 1u))
		return false;
	return !f->keys || strncmp(key ? key : "", f->keys,
				   strlen(f->keys)) == 0;
}

/*
 * Count a selected call; delay it, then decide whether it fails (true).
 * *armed (may be NULL): selected and past after=, so a GET may be cut.
 */
static bool fault_pre(struct fault_store *f, enum fault_op op,
		      const char *key, bool *armed)
{
	if (armed)
		*armed = false;
	if (!selected(f, op, key))
		return false;
	if (atomic_fetch_add(&f->calls, 1) < f->after)
		return false;
	if (armed)
		*armed = true;
	if (f->delay_ms > 0 && draw(f) < f->delay) {
		struct timespec ts = { f->delay_ms / 1000,
				       (f->delay_ms % 1000) * 1000000L };

		atomic_fetch_add(&f->delays, 1);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (f->err > 0 && draw(f) < f->err) {
		atomic_fetch_add(&f->errors, 1);
		log_debug("fault: failing %s '%s'", op_names[op],
			  key ? key : "");
		return true;
	}
	return false;
}

static int f_put(struct obj_store *s, const char *key, const void *data,
		 size_t len)
{
	struct fault_store *f = to_f(s);
	int rc;

	if (fault_pre(f, F_PUT, key, NULL)) {
		if (draw(f) < 0.5)
			return -EIO;
		rc = obj_put(f->inner, key, data, len); /* stored, yet fails */
		return rc < 0 ? rc : -EIO;
	}
	return obj_put(f->inner, key, data, len);
}

static int f_get(struct obj_store *s, const char *key, uint64_t off,
		 uint64_t len, struct buf *out)
{
	struct fault_store *f = to_f(s);
	bool armed;
	size_t cut;
	int rc;

	if (fault_pre(f, F_GET, key, &armed)) {
		buf_reset(out);
		return -EIO;
	}
	rc = obj_get(f->inner, key, off, len, out);
	if (rc < 0 || !armed || out->len == 0 || f->trunc <= 0 ||
	    draw(f) >= f->trunc)
		return rc;
	cut = (size_t)(draw_u64(f) % out->len);
	log_debug("fault: cutting get '%s' to %zu of %zu bytes", key, cut,
		  out->len);
	atomic_fetch_add(&f->truncs, 1);
	out->len = cut;
	out->data[cut] = '\0';
	return 0;
}

static int f_head(struct obj_store *s, const char *key, struct obj_info *out)
{
	struct fault_store *f = to_f(s);

	if (fault_pre(f, F_HEAD, key, NULL))
		return -EIO;
	return obj_head(f->inner, key, out);
}

static int f_del(struct obj_store *s, const char *key)
{
	struct fault_store *f = to_f(s);
	int rc;

	if (fault_pre(f, F_DEL, key, NULL)) {
		if (draw(f) < 0.5)
			return -EIO;
		rc = obj_del(f->inner, key);
		return rc < 0 ? rc : -EIO;
	}
	return obj_del(f->inner, key);
}

static int f_list(struct obj_store *s, const char *prefix,
		  const char *start_after, const char *token, int limit,
		  struct obj_list *out)
{
	struct fault_store *f = to_f(s);

	if (fault_pre(f, F_LIST, prefix, NULL)) {
		obj_list_reset(out);
		return -EIO;
	}
	if (f->page && selected(f, F_LIST, prefix) &&
	    (uint64_t)limit > f->page)
		limit = (int)f->page;
	return obj_list(f->inner, prefix, start_after, token, limit, out);
}

static int f_sync(struct obj_store *s)
{
	return obj_sync(to_f(s)->inner);
}

static int f_create(struct obj_store *s)
{
	struct obj_store *in = to_f(s)->inner;

	return in->ops->create ? in->ops->create(in) : 0;
}

static int f_state(struct obj_store *s, struct obj_state *out)
{
	return obj_state(to_f(s)->inner, out);
}

static void f_close(struct obj_store *s)
{
	struct fault_store *f = to_f(s);

	obj_close(f->inner);
	free(f->keys);
	free(f);
}

static const struct obj_store_ops fault_ops = {
	.scheme = "fault",
	.put = f_put,
	.get = f_get,
	.head = f_head,
	.del = f_del,
	.list = f_list,
	.sync = f_sync,
	.create = f_create,
	.state = f_state,
	.close = f_close,
};

/* ---- spec parsing ----------------------------------------------------- */

static int parse_prob(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= 0.0 && d <= 1.0))
		return -EINVAL;
	*out = d;
	return 0;
}

static int parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v == '-' || !*v)
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_ops(char *v, unsigned *mask)
{
	char *save = NULL;

	*mask = 0;
	for (char *t = strtok_r(v, "+:", &save); t;
	     t = strtok_r(NULL, "+:", &save)) {
		unsigned i;

		for (i = 0; i < F_NOPS; i++)
			if (strcmp(t, op_names[i]) == 0)
				break;
		if (i == F_NOPS)
			return -EINVAL;
		*mask |= 1u << i;
	}
	return *mask ? 0 : -EINVAL;
}

static int parse_item(struct fault_store *f, char *name, char *val)
{
	uint64_t n;

	if (strcmp(name, "err") == 0)
		return parse_prob(val, &f->err);
	if (strcmp(name, "trunc") == 0)
		return parse_prob(val, &f->trunc);
	if (strcmp(name, "delay") == 0)
		return parse_prob(val, &f->delay);
	if (strcmp(name, "seed") == 0)
		return parse_u64(val, &f->seed);
	if (strcmp(name, "ops") == 0)
		return parse_ops(val, &f->ops_mask);
	if (strcmp(name, "after") == 0)
		return parse_u64(val, &f->after);
	if (strcmp(name, "page") == 0)
		return parse_u64(val, &f->page) < 0 || f->page > 1000 ? -EINVAL
								       : 0;
	if (strcmp(name, "keys") == 0) {
		if (!*val)
			return -EINVAL;
		free(f->keys);
		f->keys = strdup(val);
		return f->keys ? 0 : -ENOMEM;
	}
	if (strcmp(name, "delay_ms") == 0) {
		if (parse_u64(val, &n) < 0 || n > 600000)
			return -EINVAL;
		f->delay_ms = (long)n;
		return 0;
	}
	return -EINVAL;
}

static int parse_spec(struct fault_store *f, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ",", &save); t && rc == 0;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		rc = eq ? (*eq = '\0', parse_item(f, t, eq + 1)) : -EINVAL;
		if (rc < 0)
			log_error("invalid fault spec '%s': bad item '%s' "
				  "(expected err=P, trunc=P, delay_ms=N, "
				  "delay=P, seed=N, ops=put+get+head+del+list, "
				  "after=N, page=N, keys=PREFIX)",
				  spec, t);
	}
	free(copy);
	return rc;
}

int obj_fault_wrap(struct obj_store *inner, const char *spec,
		   struct obj_store **out)
{
	struct fault_store *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	f->delay = 1.0;
	f->seed = 1;
	f->ops_mask = (1u << F_NOPS) - 1;
	rc = parse_spec(f, spec ? spec : "");
	if (rc < 0) {
		free(f->keys);
		free(f);
		return rc;
	}
	f->base.ops = &fault_ops;
	f->inner = inner;
	snprintf(f->base.desc, sizeof(f->base.desc), "%s", inner->desc);
	*out = &f->base;
	return 0;
}

int obj_fault_stats(const struct obj_store *s, struct obj_fault_stats *out)
{
	struct fault_store *f;

	if (!s || s->ops != &fault_ops)
		return -EINVAL;
	f = (struct fault_store *)s;
	out->calls = atomic_load(&f->calls);
	out->errors = atomic_load(&f->errors);
	out->truncs = atomic_load(&f->truncs);
	out->delays = atomic_load(&f->delays);
	return 0;
}
