/*
 * cmd_checkpoint.c - `tessera checkpoint create|list|restore|delete VOLUME
 * [NAME] [--force]`: named snapshots of a volume's metadata (repl.h).
 *
 * Design: the command opens the volume with cli_vol_open (cli.h), which
 * for a replicated volume (SQLite metadata) brings the local copy up to
 * date from the object store and, for create, delete and restore, takes
 * the volume's lease: a live mount elsewhere makes the command fail with
 * the lease holder's name (--force takes the lease, and that mount stops
 * writing).  create and delete then go through the replication wrapper,
 * so the checkpoint record is shipped like any other txn.  When the volume
 * is mounted on this host (its mount lock is held), create and delete are
 * sent to that mount instead, through its ".control" file: the mount is
 * the writer, commits its open files first and answers.  restore swaps
 * the metadata on the plain engine while holding the lease, then wraps,
 * which starts a new generation whose base snapshot holds the restored
 * state; it refuses while the volume is mounted on this host (the mount
 * lock), even with --force, since the mount has the same database file
 * open.  list needs only the object store.  On other engines there is no
 * lease; restore refuses while sessions exist.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"
#include "util/url.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct ckpt_args {
	bool force;
};

struct ckpt_vol {
	struct cli_vol cv;
	struct meta_format f;
	const char *name;	 /* the volume's name */
	struct kv_engine *e;	 /* cv.kv: plain, or the wrapper */
	struct obj_store *store; /* checkpoint objects */
	bool replicated;
	int lock_fd; /* restore: the mount lock of this host */
};

static const struct option ckpt_opts[] = {
    {"force", no_argument, NULL, 'f'},
    {NULL, 0, NULL, 0},
};

static int ckpt_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'f') {
		((struct ckpt_args *)arg)->force = true;
		return 0;
	}
	return EXIT_USAGE;
}

static int ckpt_open(const char *arg, bool write, bool force,
		     struct ckpt_vol *v)
{
	struct cli_open_opts o = {.write = write, .force = force};
	int rc;

	memset(v, 0, sizeof(*v));
	v->lock_fd = -1;
	rc = cli_vol_open(arg, &o, &v->cv, &v->f);
	if (rc < 0)
		return rc;
	v->name = v->f.name;
	v->replicated = v->cv.replicated;
	v->e = v->cv.kv;
	rc = obj_open(cli_vol_storage(&v->cv, &v->f), false, &v->store);
	if (rc < 0)
		cli_vol_close(&v->cv);
	return rc;
}

static void ckpt_close(struct ckpt_vol *v)
{
	v->cv.kv = v->e;
	cli_vol_close(&v->cv);
	obj_close(v->store);
	if (v->lock_fd >= 0)
		close(v->lock_fd);
}

/* Replicated volumes: put the wrapper in front; v->e becomes it. */
static int ckpt_wrap(struct ckpt_vol *v)
{
	int rc;

	v->cv.kv = v->e;
	rc = cli_vol_wrap(&v->cv);
	v->e = v->cv.kv;
	return rc;
}

/*
 * Refuse while this host mounts the volume (before touching its lease);
 * hold its mount lock until the end.  *fd: the lock, or -1.
 */
static int ckpt_lock(const char *arg, int *fd_out)
{
	struct cli_volume vol;
	char path[PATH_MAX + 300];
	int fd;

	*fd_out = -1;
	if (cli_resolve_volume(arg, &vol) < 0)
		return -EINVAL;
	if (!vol.embedded)
		return 0;
	snprintf(path, sizeof(path), "%s/%s/mount.lock", cli_home(),
		 vol.name);
	if (access(path, F_OK) < 0)
		return 0; /* never mounted here */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return log_fail(-errno, "cannot open mount lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		log_error("volume '%s' is mounted on this host: unmount it "
			  "first",
			  vol.name);
		return -EBUSY;
	}
	*fd_out = fd;
	return 0;
}

/* The mountpoint of @arg when this host mounts it; "" otherwise. */
static void local_mount(const char *arg, char *mp, size_t n)
{
	struct cli_volume vol;

	mp[0] = '\0';
	if (cli_resolve_volume(arg, &vol) == 0)
		cli_local_mount(&vol, mp, n);
}

/* create|delete through the mount at @mp. */
static int via_mount(const char *mp, const char *verb, const char *name)
{
	char path[PATH_MAX + 16], req[400], ans[1024];
	ssize_t got;
	int fd, n, rc;

	snprintf(path, sizeof(path), "%s/.control", mp);
	n = snprintf(req, sizeof(req), "checkpoint %s %zu\n%s", verb,
		     strlen(name), name);
	if (n >= (int)sizeof(req)) {
		log_error("invalid checkpoint name '%s'", name);
		return EXIT_ERR;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot reach the mount at '%s': %s", mp,
			  strerror(errno));
		return EXIT_ERR;
	}
	got = pwrite(fd, req, (size_t)n, 0) == n
		  ? pread(fd, ans, sizeof(ans) - 1, 0)
		  : -1;
	rc = got > 0 ? 0 : -errno;
	close(fd);
	if (rc < 0 || got <= 0) {
		log_error("request to the mount at '%s' failed: %s", mp,
			  strerror(rc < 0 ? -rc : EIO));
		return EXIT_ERR;
	}
	ans[got] = '\0';
	ans[strcspn(ans, "\n")] = '\0';
	if (atoi(ans) < 0) {
		log_error("cannot %s checkpoint '%s': %s", verb, name,
			  strchr(ans, ' ') ? strchr(ans, ' ') + 1 : ans);
		return EXIT_ERR;
	}
	printf("%sd checkpoint '%s' through the mount at '%s' (%s)\n", verb,
	       name, mp, ans + 2);
	return EXIT_OK;
}

static void ckpt_time(int64_t ns, char *out, size_t n)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) || !strftime(out, n, "%F %T", &tm))
		snprintf(out, n, "-");
}

static int ckpt_list(const char *arg)
{
	struct cli_open_opts o = {.quiet = true};
	struct cli_volume vol;
	struct ckpt_vol v;
	struct repl_ckpt *c;
	struct obj_store *store = NULL;
	char when[64];
	const char *name;
	size_t n;
	int rc;

	/* STORAGE-URL/NAME: the store alone answers */
	if (cli_resolve_volume(arg, &vol) < 0)
		return EXIT_ERR;
	memset(&v, 0, sizeof(v));
	v.lock_fd = -1;
	if (vol.from_store) {
		name = vol.name;
		rc = obj_open(vol.storage_url, false, &store);
	} else {
		rc = cli_vol_open(arg, &o, &v.cv, &v.f);
		name = v.f.name;
		v.e = v.cv.kv;
		if (rc == 0)
			rc = obj_open(v.f.storage, false, &store);
	}
	if (rc == 0)
		rc = repl_ckpt_list(store, name, &c, &n);
	if (rc == 0 && n == 0)
		printf("no checkpoints of volume '%s'\n", name);
	else if (rc == 0)
		printf("%-24s %-19s %10s %12s %10s\n", "NAME", "CREATED",
		       "TXN", "NEXT SLICE", "BYTES");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		ckpt_time(c[i].time_ns, when, sizeof(when));
		printf("%-24s %-19s %10llu %12llu %10llu\n", c[i].name, when,
		       (unsigned long long)c[i].txn_seq,
		       (unsigned long long)c[i].next_slice,
		       (unsigned long long)c[i].size);
	}
	if (rc == 0)
		free(c);
	obj_close(store);
	if (!vol.from_store)
		ckpt_close(&v);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}

static int ckpt_create(struct ckpt_vol *v, const char *name)
{
	struct repl_ckpt c;
	int rc = ckpt_wrap(v);

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

static int ckpt_delete(struct ckpt_vol *v, const char *name)
{
	int rc = ckpt_wrap(v);

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

static int ckpt_restore(struct ckpt_vol *v, const char *name)
{
	int rc = 0;

	if (!v->replicated)
		rc = ckpt_no_sessions(v);
	/* the lease is ours already (cli_vol_open) */
	if (rc == 0)
		rc = repl_ckpt_restore(v->e, v->store, v->name, name);
	/* Ship the new state as the base of a new generation. */
	if (rc == 0 && v->replicated)
		rc = ckpt_wrap(v);
	if (rc == 0 && v->replicated)
		rc = kv_sync(v->e);
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
	int npos, rc, sub = -1, lock_fd = -1;

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
	if (sub == 1)
		return ckpt_list(pos[1]);
	if (sub != 2) {
		char mp[PATH_MAX];

		local_mount(pos[1], mp, sizeof(mp));
		if (mp[0])
			return via_mount(mp, sub == 0 ? "create" : "delete",
					 pos[2]);
	}
	if (sub == 2 && ckpt_lock(pos[1], &lock_fd) < 0)
		return EXIT_ERR;
	if (ckpt_open(pos[1], true, a.force, &v) < 0) {
		if (lock_fd >= 0)
			close(lock_fd);
		return EXIT_ERR;
	}
	v.lock_fd = lock_fd;
	switch (sub) {
	case 0:
		rc = ckpt_create(&v, pos[2]);
		break;
	case 2:
		rc = ckpt_restore(&v, pos[2]);
		break;
	default:
		rc = ckpt_delete(&v, pos[2]);
		break;
	}
	ckpt_close(&v);
	return rc;
}
