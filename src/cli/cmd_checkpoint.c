/*
 * cmd_checkpoint.c - `tessera checkpoint create|list|restore|delete VOLUME
 * [NAME] [--force]`: named snapshots of a volume's metadata (repl.h).
 *
 * Design: the command opens the volume's kv engine and its object store
 * itself (the settings record gives the volume name and storage URL).  On
 * a replicated volume (SQLite metadata) every change goes through
 * repl_wrap, which takes the volume's lease: a live mount makes the
 * command fail with the lease holder's name (--force takes the lease, and
 * that mount stops writing), and the checkpoint record is shipped like any
 * other txn.  restore swaps the metadata on the plain engine while holding
 * the lease, then replicates once more so the object store holds the new
 * state as the base of a new generation.  On other engines there is no
 * lease; restore refuses while sessions exist.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/kv.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"
#include "util/url.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>

struct ckpt_args {
	bool force;
};

struct ckpt_vol {
	struct cli_volume vol;
	char name[256];
	struct kv_engine *e;
	struct obj_store *store;
	bool replicated;
};

static const struct option ckpt_opts[] = {
    {"force", no_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

static int ckpt_opt(void *arg, int c, const char *optarg)
{
	UNUSED(optarg);
	if (c == 'f') {
		((struct ckpt_args *)arg)->force = true;
		return 0;
	}
	return EXIT_USAGE;
}

/* Read name, storage URL and the replicate flag from the settings. */
static int ckpt_settings(struct ckpt_vol *v, char *storage, size_t n)
{
	struct buf b = BUF_INIT;
	const char *name = NULL, *st = NULL;
	char red[1200];
	struct kv_txn *t;
	json_t *j = NULL;
	int rc = kv_begin(v->e, false, &t), repl = 1;

	if (rc == 0) {
		rc = kv_get(t, KV_SETTING, "volume", 6, &b);
		kv_rollback(t);
	}
	url_redact(v->vol.meta_url, red, sizeof(red));
	if (rc == 0)
		j = json_loadb(b.data, b.len, 0, NULL);
	buf_release(&b);
	if (rc == 0 &&
	    (!j || json_unpack(j, "{s:s, s:s, s?b}", "name", &name, "storage",
			       &st, "replicate", &repl) < 0))
		rc = -EINVAL;
	if (rc == 0) {
		snprintf(v->name, sizeof(v->name), "%s", name);
		snprintf(storage, n, "%s", st);
		v->replicated =
		    repl && !strncmp(v->vol.meta_url, "sqlite3:", 8);
	} else if (rc == -ENOENT || rc == -EINVAL) {
		log_error("no volume in '%s' (run 'tessera format')", red);
	} else {
		log_fail(rc, "cannot read the settings in '%s'", red);
	}
	json_decref(j);
	return rc;
}

static int ckpt_open(const char *arg, struct ckpt_vol *v)
{
	char storage[1200];
	int rc;

	memset(v, 0, sizeof(*v));
	rc = cli_resolve_volume(arg, &v->vol);
	if (rc < 0)
		return rc;
	rc = kv_open(v->vol.meta_url, false, &v->e);
	if (rc < 0)
		return rc; /* the engine said why */
	rc = ckpt_settings(v, storage, sizeof(storage));
	if (rc == 0)
		rc = obj_open(storage, false, &v->store);
	if (rc < 0) {
		kv_close(v->e);
		v->e = NULL;
	}
	return rc;
}

static void ckpt_close(struct ckpt_vol *v)
{
	kv_close(v->e);
	obj_close(v->store);
}

/* Wrap v->e with replication (takes the lease); v->e becomes the wrapper. */
static int ckpt_wrap(struct ckpt_vol *v, const struct ckpt_args *a,
		     const struct repl_holder *h)
{
	struct repl_conf conf;
	struct kv_engine *w;
	int rc;

	memset(&conf, 0, sizeof(conf));
	conf.force = a->force;
	if (h)
		conf.holder = *h;
	rc = repl_wrap(v->e, v->store, v->name, &conf, &w);
	if (rc == 0)
		v->e = w;
	return rc;
}

static void ckpt_time(int64_t ns, char *out, size_t n)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) || !strftime(out, n, "%F %T", &tm))
		snprintf(out, n, "-");
}

static int ckpt_list(struct ckpt_vol *v)
{
	struct repl_ckpt *c;
	char when[64];
	size_t n;

	if (repl_ckpt_list(v->store, v->name, &c, &n) < 0)
		return EXIT_ERR;
	if (n == 0)
		printf("no checkpoints of volume '%s'\n", v->name);
	else
		printf("%-24s %-19s %10s %12s %10s\n", "NAME", "CREATED", "TXN",
		       "NEXT SLICE", "BYTES");
	for (size_t i = 0; i < n; i++) {
		ckpt_time(c[i].time_ns, when, sizeof(when));
		printf("%-24s %-19s %10llu %12llu %10llu\n", c[i].name, when,
		       (unsigned long long)c[i].txn_seq,
		       (unsigned long long)c[i].next_slice,
		       (unsigned long long)c[i].size);
	}
	free(c);
	return EXIT_OK;
}

static int ckpt_create(struct ckpt_vol *v, const struct ckpt_args *a,
		       const char *name)
{
	struct repl_ckpt c;
	int rc = v->replicated ? ckpt_wrap(v, a, NULL) : 0;

	if (rc == 0)
		rc = repl_ckpt_create(v->e, v->store, v->name, name, &c);
	if (rc == 0 && v->replicated)
		rc = kv_sync(v->e);
	if (rc < 0)
		return EXIT_ERR;
	printf("created checkpoint '%s' of volume '%s' (txn %llu, next slice "
	       "%llu)\n",
	       name, v->name, (unsigned long long)c.txn_seq,
	       (unsigned long long)c.next_slice);
	return EXIT_OK;
}

static int ckpt_delete(struct ckpt_vol *v, const struct ckpt_args *a,
		       const char *name)
{
	int rc = v->replicated ? ckpt_wrap(v, a, NULL) : 0;

	if (rc == 0)
		rc = repl_ckpt_delete(v->e, v->store, v->name, name);
	if (rc == 0 && v->replicated)
		rc = kv_sync(v->e);
	if (rc < 0)
		return EXIT_ERR;
	printf("deleted checkpoint '%s' of volume '%s'\n", name, v->name);
	return EXIT_OK;
}

static int count_one(void *arg, const void *key, size_t klen, const void *val,
		     size_t vlen)
{
	UNUSED(key);
	UNUSED(klen);
	UNUSED(val);
	UNUSED(vlen);
	(*(uint64_t *)arg)++;
	return 0;
}

/* Non-replicated engines: refuse while sessions (mounts) exist. */
static int ckpt_no_sessions(struct ckpt_vol *v)
{
	uint64_t n = 0;
	struct kv_txn *t;
	int rc = kv_begin(v->e, false, &t);

	if (rc < 0)
		return rc;
	rc = kv_scan(t, KV_SESSION, NULL, 0, NULL, 0, 0, count_one, &n);
	kv_rollback(t);
	if (rc == 0 && n > 0) {
		log_error("volume '%s' has %llu active sessions: unmount it "
			  "first",
			  v->name, (unsigned long long)n);
		rc = -EBUSY;
	}
	return rc;
}

static int ckpt_restore(struct ckpt_vol *v, const struct ckpt_args *a,
			const char *name)
{
	struct repl_holder h;
	int rc;

	repl_holder_init(&h);
	if (!v->replicated)
		rc = ckpt_no_sessions(v);
	else
		rc = repl_lease_acquire(v->store, v->name, &h, a->force);
	if (rc < 0)
		return EXIT_ERR;
	rc = repl_ckpt_restore(v->e, v->store, v->name, name);
	/* Ship the new state as the base of a new generation. */
	if (rc == 0 && v->replicated) {
		rc = ckpt_wrap(v, a, &h);
		if (rc == 0)
			rc = kv_sync(v->e);
	} else if (v->replicated) {
		repl_lease_release(v->store, v->name, &h);
	}
	if (rc < 0)
		return EXIT_ERR;
	printf("restored checkpoint '%s' of volume '%s'\n", name, v->name);
	return EXIT_OK;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const char *const subs[] = {"create", "list", "restore",
					   "delete"};
	struct ckpt_args a = {false};
	struct ckpt_vol v;
	const char *pos[3];
	int npos, rc, sub = -1;

	rc = cli_getopt("checkpoint", argc, argv, NULL, ckpt_opts, ckpt_opt, &a,
			pos, 3, &npos);
	if (rc)
		return rc;
	for (int i = 0; npos > 0 && i < (int)ARRAY_SIZE(subs); i++)
		if (strcmp(pos[0], subs[i]) == 0)
			sub = i;
	if (npos == 0)
		return cli_usage_error("checkpoint", "missing action");
	if (sub < 0)
		return cli_usage_error("checkpoint", "unknown action '%s'",
				       pos[0]);
	if (npos < 2)
		return cli_usage_error("checkpoint", "missing volume");
	if (sub == 1 && npos > 2)
		return cli_usage_error("checkpoint", "unexpected argument '%s'",
				       pos[2]);
	if (sub != 1 && npos < 3)
		return cli_usage_error("checkpoint", "missing checkpoint name");
	if (ckpt_open(pos[1], &v) < 0)
		return EXIT_ERR;
	switch (sub) {
	case 0:
		rc = ckpt_create(&v, &a, pos[2]);
		break;
	case 1:
		rc = ckpt_list(&v);
		break;
	case 2:
		rc = ckpt_restore(&v, &a, pos[2]);
		break;
	default:
		rc = ckpt_delete(&v, &a, pos[2]);
		break;
	}
	ckpt_close(&v);
	return rc;
}
