/*
 * cmd_objbench.c - `tessera objbench STORAGE-URL [--objects N] [--size S]
 * [--threads P]`: throughput and latency of an object store, per operation.
 *
 * Phases run one after the other on P threads that take object numbers
 * from a shared atomic counter: put N objects of S bytes, head them, get
 * them (checking every byte), list them (one thread, pages of 1000), delete
 * them.  Objects live under a fresh prefix "objbench-PID-TIME/", and the
 * delete phase runs even when an earlier phase failed, followed by one more
 * listing that removes any leftover, so a run leaves nothing behind.  A
 * phase stops early after OB_MAX_ERRORS failures: against a dead store each
 * call may take the store's whole retry budget.
 *
 * Output: one table row per phase (count, errors, ops/s, MiB/s, average
 * latency).  Exit status 1 when any operation failed or returned wrong
 * bytes.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "object/object.h"
#include "util/log.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define OB_MAX_ERRORS 10
#define OB_MAX_THREADS 256
#define OB_MAX_OBJECTS 10000000ULL
#define OB_MAX_SIZE (1ULL << 30)

enum ob_phase { OB_PUT, OB_HEAD, OB_GET, OB_LIST, OB_DEL, OB_NPHASES };

static const char *const ob_names[OB_NPHASES] = { "put", "head", "get",
						  "list", "delete" };

struct ob_result {
	uint64_t count;    /* operations done (list: pages) */
	uint64_t errors;
	uint64_t bytes;
	uint64_t lat_ns;   /* sum over operations */
	uint64_t wall_ns;
	bool ran;
};

struct ob_run {
	struct obj_store *s;
	char prefix[64];
	uint64_t objects;
	uint64_t size;
	int threads;
	enum ob_phase phase;
	_Atomic uint64_t next;
	_Atomic uint64_t count;
	_Atomic uint64_t errors;
	_Atomic uint64_t bytes;
	_Atomic uint64_t lat_ns;
};

static uint64_t ob_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void ob_key(const struct ob_run *r, uint64_t i, char *key, size_t n)
{
	snprintf(key, n, "%sobj-%08llu", r->prefix, (unsigned long long)i);
}

/* The bytes of object @i: cheap to make, different for every object. */
static void ob_fill(char *p, uint64_t len, uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ULL + 1;

	for (uint64_t k = 0; k < len; k++) {
		if ((k & 7) == 0) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		p[k] = (char)(x >> ((k & 7) * 8));
	}
}

/* One operation of the current phase on object @i; 0 or -errno. */
static int ob_one(struct ob_run *r, uint64_t i, char *data, struct buf *got)
{
	char key[128];
	struct obj_info info;
	int rc;

	ob_key(r, i, key, sizeof(key));
	switch (r->phase) {
	case OB_PUT:
		ob_fill(data, r->size, i);
		return obj_put(r->s, key, data, r->size);
	case OB_HEAD:
		rc = obj_head(r->s, key, &info);
		if (rc == 0 && info.size != r->size)
			rc = log_fail(-EIO, "head of '%s' says %llu bytes, "
				      "not %llu", key,
				      (unsigned long long)info.size,
				      (unsigned long long)r->size);
		return rc;
	case OB_GET:
		rc = obj_get(r->s, key, 0, OBJ_TO_END, got);
		if (rc < 0)
			return rc;
		ob_fill(data, r->size, i);
		if (got->len != r->size || memcmp(got->data, data, r->size))
			return log_fail(-EIO, "get of '%s' returned wrong "
					"bytes", key);
		return 0;
	case OB_DEL:
		return obj_del(r->s, key);
	default:
		return -EINVAL;
	}
}

static void *ob_worker(void *arg)
{
	struct ob_run *r = arg;
	struct buf got = BUF_INIT;
	char *data = malloc(r->size ? r->size : 1);

	if (!data) {
		atomic_fetch_add(&r->errors, 1);
		return NULL;
	}
	for (;;) {
		uint64_t i = atomic_fetch_add(&r->next, 1), t0;
		int rc;

		if (i >= r->objects || atomic_load(&r->errors) >= OB_MAX_ERRORS)
			break;
		t0 = ob_now_ns();
		rc = ob_one(r, i, data, &got);
		atomic_fetch_add(&r->lat_ns, ob_now_ns() - t0);
		atomic_fetch_add(&r->count, 1);
		if (rc < 0)
			atomic_fetch_add(&r->errors, 1);
		else if (r->phase != OB_HEAD && r->phase != OB_DEL)
			atomic_fetch_add(&r->bytes, r->size);
	}
	free(data);
	buf_release(&got);
	return NULL;
}

/*
 * List everything under the prefix; with @del, delete what is found.
 * Returns 0, or -errno when a page could not be listed.
 */
static int ob_list(struct ob_run *r, bool del, uint64_t *nkeys)
{
	struct obj_list l;
	char *token = NULL;
	int rc = 0;

	obj_list_init(&l);
	*nkeys = 0;
	for (;;) {
		uint64_t t0 = ob_now_ns();

		rc = obj_list(r->s, r->prefix, NULL, token, 1000, &l);
		atomic_fetch_add(&r->lat_ns, ob_now_ns() - t0);
		atomic_fetch_add(&r->count, 1);
		free(token);
		token = NULL;
		if (rc < 0) {
			atomic_fetch_add(&r->errors, 1);
			break;
		}
		*nkeys += l.n;
		for (size_t i = 0; del && i < l.n; i++)
			obj_del(r->s, l.items[i].key);
		if (!l.truncated || !l.next_token)
			break;
		token = strdup(l.next_token);
		if (!token) {
			rc = -ENOMEM;
			break;
		}
	}
	obj_list_release(&l);
	return rc;
}

static void ob_phase(struct ob_run *r, enum ob_phase ph, struct ob_result *out)
{
	pthread_t th[OB_MAX_THREADS];
	int started = 0;
	uint64_t t0 = ob_now_ns(), nkeys;

	r->phase = ph;
	atomic_store(&r->next, 0);
	atomic_store(&r->count, 0);
	atomic_store(&r->errors, 0);
	atomic_store(&r->bytes, 0);
	atomic_store(&r->lat_ns, 0);
	if (ph == OB_LIST) {
		if (ob_list(r, false, &nkeys) == 0 && nkeys != r->objects) {
			log_error("listing found %llu objects, not %llu",
				  (unsigned long long)nkeys,
				  (unsigned long long)r->objects);
			atomic_fetch_add(&r->errors, 1);
		}
	} else {
		for (int i = 0; i < r->threads; i++)
			if (pthread_create(&th[started], NULL, ob_worker, r) ==
			    0)
				started++;
		if (started == 0)
			ob_worker(r);
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
	}
	out->wall_ns = ob_now_ns() - t0;
	out->count = atomic_load(&r->count);
	out->errors = atomic_load(&r->errors);
	out->bytes = atomic_load(&r->bytes);
	out->lat_ns = atomic_load(&r->lat_ns);
	out->ran = true;
}

static void ob_print(const struct ob_run *r, const struct ob_result *res)
{
	printf("storage: %s\nobjects: %llu of %llu bytes, %d threads\n\n",
	       obj_describe(r->s), (unsigned long long)r->objects,
	       (unsigned long long)r->size, r->threads);
	printf("%-8s %10s %8s %12s %10s %10s\n", "op", "count", "errors",
	       "ops/s", "MiB/s", "avg ms");
	for (int p = 0; p < OB_NPHASES; p++) {
		const struct ob_result *x = &res[p];
		double secs = (double)x->wall_ns / 1e9;
		char mib[32];

		if (!x->ran)
			continue;
		if (p == OB_HEAD || p == OB_LIST || p == OB_DEL)
			snprintf(mib, sizeof(mib), "-");
		else
			snprintf(mib, sizeof(mib), "%.2f",
				 secs > 0 ? (double)x->bytes / MiB / secs : 0);
		printf("%-8s %10llu %8llu %12.1f %10s %10.2f\n", ob_names[p],
		       (unsigned long long)x->count,
		       (unsigned long long)x->errors,
		       secs > 0 ? (double)x->count / secs : 0, mib,
		       x->count ? (double)x->lat_ns / 1e6 / (double)x->count
				: 0);
	}
}

struct ob_opts {
	const char *url;
	uint64_t objects;
	uint64_t size;
	uint64_t threads;
};

static int ob_parse(int argc, char **argv, struct ob_opts *o)
{
	static const struct option opts[] = {
		{ "objects", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":n:s:p:", opts, NULL)) != -1) {
		if (c == 'n' && (cli_parse_uint(optarg, &o->objects) < 0 ||
				 o->objects == 0 ||
				 o->objects > OB_MAX_OBJECTS))
			return cli_usage_error("objbench", "bad --objects '%s' "
					       "(1 to %llu)", optarg,
					       OB_MAX_OBJECTS);
		if (c == 's' && (cli_parse_size(optarg, &o->size) < 0 ||
				 o->size > OB_MAX_SIZE))
			return cli_usage_error("objbench", "bad --size '%s' "
					       "(0 to 1G)", optarg);
		if (c == 'p' && (cli_parse_uint(optarg, &o->threads) < 0 ||
				 o->threads == 0 ||
				 o->threads > OB_MAX_THREADS))
			return cli_usage_error("objbench", "bad --threads '%s' "
					       "(1 to %d)", optarg,
					       OB_MAX_THREADS);
		if (c == '?')
			return cli_usage_error("objbench", "unknown option "
					       "'%s'", argv[optind - 1]);
		if (c == ':')
			return cli_usage_error("objbench", "option '%s' needs "
					       "a value", argv[optind - 1]);
	}
	if (optind >= argc)
		return cli_usage_error("objbench", "missing STORAGE-URL");
	if (optind + 1 < argc)
		return cli_usage_error("objbench", "unexpected argument '%s'",
				       argv[optind + 1]);
	o->url = argv[optind];
	return 0;
}

int cmd_objbench(int argc, char **argv)
{
	struct ob_opts o = { NULL, 100, 1 * MiB, 4 };
	struct ob_result res[OB_NPHASES];
	struct ob_run *r;
	uint64_t errors = 0, left;
	int rc;

	rc = ob_parse(argc, argv, &o);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return EXIT_ERR;
	if (obj_open(o.url, false, &r->s) < 0) {
		free(r);
		return EXIT_ERR;
	}
	r->objects = o.objects;
	r->size = o.size;
	r->threads = (int)o.threads;
	snprintf(r->prefix, sizeof(r->prefix), "objbench-%d-%lld/",
		 (int)getpid(), (long long)time(NULL));
	memset(res, 0, sizeof(res));
	for (int p = 0; p < OB_NPHASES; p++) {
		/* After a failed put, only cleaning up is worth doing. */
		if (p != OB_PUT && p != OB_DEL && res[OB_PUT].errors)
			continue;
		ob_phase(r, (enum ob_phase)p, &res[p]);
		errors += res[p].errors;
	}
	/* Whatever a failed delete left (a few rounds: deletes may fail). */
	for (int round = 0; round < 5; round++) {
		rc = ob_list(r, true, &left);
		if (rc == 0 && left == 0)
			break;
		if (left)
			log_warn("deleting %llu objects left under '%s'",
				 (unsigned long long)left, r->prefix);
	}
	ob_print(r, res);
	obj_close(r->s);
	free(r);
	if (errors)
		log_error("objbench: %llu operations failed",
			  (unsigned long long)errors);
	return errors ? EXIT_ERR : EXIT_OK;
}
